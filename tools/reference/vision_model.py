"""Reference vision encoder of the Qwen2.5-Omni thinker (spec qwen25-omni-thinker.md §1.2, §2.2, §4, §10).

A Qwen2.5-VL style ViT with window attention, in numpy, following the reference mechanics literally:
    patch embed (Conv3d as one linear map over the 1176-long patch vectors, no bias)
    -> 2-D rotary angles per patch (row half, column half)
    -> window_index / cu_window_seqlens (padding rule, deduplication), physical permutation of the hidden
       states and of the rotary angles in groups of spatial_merge_unit (= 4) tokens
    -> depth x block [RMSNorm, attention restricted to segments (window or full), residual, RMSNorm,
       SiLU MLP with biases, residual]; blocks in fullatt_block_indexes use the full segments (one per
       temporal slice of each image), the others the window segments
    -> merger [RMSNorm ln_q, concat of the 4 tokens of a 2x2 block, Linear, exact GELU, Linear]
    -> un-permutation with argsort(window_index).
The precision policy comes from ``numerics.Numerics`` (``fp32``: float64; ``bf16``: the eager bf16 flow of §10).
Every hyper-parameter is read from vision_config.
"""

import math

import numpy as np

from numerics import Numerics, round_bf16
from text_model import attention, rms_norm, silu

VISION_NORM_EPS = 1e-6          # hard-coded in the reference (spec §1.2 [V])
VISION_ROPE_THETA = 10000.0     # hard-coded in the reference (spec §1.2 [V])


class VisionConfig:
    """Typed vision_config (spec §1.2)."""

    def __init__(self, raw):
        def need(*keys):
            for key in keys:
                if key in raw and raw[key] is not None:
                    return raw[key]
            raise ValueError("vision_config: missing required key %r" % keys[0])

        self.depth = int(need("depth"))
        self.d_model = int(need("hidden_size", "embed_dim"))
        self.n_heads = int(need("num_heads"))
        self.d_ff = int(need("intermediate_size"))
        self.patch_size = int(need("patch_size"))
        self.temporal_patch_size = int(need("temporal_patch_size"))
        self.merge = int(need("spatial_merge_size"))
        self.window_size = int(need("window_size"))
        self.fullatt_block_indexes = [int(v) for v in need("fullatt_block_indexes")]
        self.out_d_model = int(need("out_hidden_size"))
        self.in_channels = int(need("in_channels", "in_chans"))
        act = raw.get("hidden_act", "silu")
        if act != "silu":
            raise ValueError("vision_config: hidden_act %r is not supported (only silu)" % act)
        self.eps = VISION_NORM_EPS
        self.rope_theta = VISION_ROPE_THETA
        self._validate()

    def _validate(self):
        if self.d_model % self.n_heads != 0:
            raise ValueError("vision_config: hidden_size %d is not a multiple of num_heads %d"
                             % (self.d_model, self.n_heads))
        if self.d_head % 4 != 0:
            raise ValueError("vision_config: head_dim %d must be a multiple of 4 (row and column rotary halves)"
                             % self.d_head)
        if self.window_merged < 1:
            raise ValueError("vision_config: window_size %d is smaller than one merged token (%d pixels)"
                             % (self.window_size, self.merge * self.patch_size))
        bad = [j for j in self.fullatt_block_indexes if not 0 <= j < self.depth]
        if bad:
            raise ValueError("vision_config: fullatt_block_indexes %s outside [0, depth=%d)" % (bad, self.depth))

    @property
    def d_head(self):
        return self.d_model // self.n_heads

    @property
    def merge_unit(self):
        """Tokens per merged token (spatial_merge_unit)."""
        return self.merge * self.merge

    @property
    def window_merged(self):
        """Window edge in merged tokens (window_size / merge / patch, 112/2/14 = 4)."""
        return self.window_size // self.merge // self.patch_size

    @property
    def patch_dim(self):
        return self.in_channels * self.temporal_patch_size * self.patch_size * self.patch_size

    @property
    def merged_dim(self):
        return self.d_model * self.merge_unit


# ----------------------------------------------------------------------------------------------- grids

def check_grid(grid_thw, merge, n_rows=None):
    """grid_thw [n, 3] int (t, h, w in patches) -> int64 array; h and w must be multiples of merge."""
    grid = np.asarray(grid_thw)
    if grid.ndim == 1 and grid.shape[0] == 3:
        grid = grid[None, :]
    if grid.ndim != 2 or grid.shape[1] != 3 or grid.shape[0] == 0:
        raise ValueError("grid_thw: expected [n_images, 3], got shape %s" % (grid.shape,))
    if not np.issubdtype(grid.dtype, np.integer):
        raise ValueError("grid_thw: expected integers, got %s" % grid.dtype)
    grid = grid.astype(np.int64)
    for i, (t, h, w) in enumerate(grid.tolist()):
        if t < 1 or h < merge or w < merge or h % merge or w % merge:
            raise ValueError("grid_thw[%d] = (%d, %d, %d): t must be >= 1 and h, w positive multiples of "
                             "spatial_merge_size %d" % (i, t, h, w, merge))
    if n_rows is not None:
        total = int(np.sum(np.prod(grid, axis=1)))
        if total != n_rows:
            raise ValueError("pixel_values has %d rows but grid_thw describes sum(t*h*w) = %d patches"
                             % (n_rows, total))
    return grid


def patch_positions(grid_thw, merge):
    """(row, col) patch coordinates of every token in processor order (spec §4.2), [N, 2] int64.
    Inside one image: blocks of merge x merge patches, row-major inside a block; blocks ordered by merged
    row then merged column; the same coordinates repeat for every temporal slice."""
    out = []
    for t, h, w in np.asarray(grid_thw).tolist():
        rows = np.broadcast_to(np.arange(h)[:, None], (h, w))
        cols = np.broadcast_to(np.arange(w)[None, :], (h, w))

        def blocked(a):
            # [h, w] -> [h/m, m, w/m, m] -> (block row, block col, row in block, col in block)
            return a.reshape(h // merge, merge, w // merge, merge).transpose(0, 2, 1, 3).reshape(-1)

        one = np.stack([blocked(rows), blocked(cols)], axis=1)
        out.append(np.tile(one, (t, 1)))
    return np.concatenate(out, axis=0).astype(np.int64)


def vision_inv_freq(d_head, theta=VISION_ROPE_THETA):
    """The rotary table is head_dim/2 wide: a rotary embedding of dim = head_dim/2, i.e. head_dim/4
    frequencies inv_freq[j] = 1/theta^(2j/(head_dim/2)), in float32 the torch way: the exponent
    float32(2j)/float32(dim) rounded to float32, the power in float32, the reciprocal in float32.
    The float32 power is taken as the correctly rounded value (libm double pow, then rounded), not numpy's
    float32 power, whose SIMD kernel is not correctly rounded and differs between CPUs (torch's vectorised
    powf may itself be 1 ulp off at some j)."""
    dim = d_head // 2
    exponent = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
    power = np.array([math.pow(float(np.float32(theta)), float(e)) for e in exponent]).astype(np.float32)
    return (np.float32(1.0) / power).astype(np.float32)


def rotary_angles(grid_thw, cfg):
    """Angles [N, d_head/2] float32 in processor order: the table outer(arange(max grid), inv_freq) in
    float32 (a single fp32 multiply), gathered at the row (first half) and the column (second half)."""
    grid = np.asarray(grid_thw)
    inv_freq = vision_inv_freq(cfg.d_head, cfg.rope_theta)
    max_grid = int(grid[:, 1:].max())
    table = (np.arange(max_grid, dtype=np.float32)[:, None] * inv_freq[None, :]).astype(np.float32)
    pos = patch_positions(grid, cfg.merge)
    return np.concatenate([table[pos[:, 0]], table[pos[:, 1]]], axis=1)


def vision_cos_sin(angles, num):
    """cos/sin of cat(angle, angle): [N, d_head]. cos/sin are computed in fp32 by the reference and never
    rounded to bf16 (spec §4.3): bf16 mode keeps them as float32 values; fp32 mode keeps float64."""
    flat = angles.astype(np.float64).ravel().tolist()
    cos_half = np.array([math.cos(a) for a in flat]).reshape(angles.shape)
    sin_half = np.array([math.sin(a) for a in flat]).reshape(angles.shape)
    cos = np.concatenate([cos_half, cos_half], axis=-1)
    sin = np.concatenate([sin_half, sin_half], axis=-1)
    if num.is_bf16:
        return cos.astype(np.float32), sin.astype(np.float32)
    return cos, sin


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_vision_rope(x, cos, sin, num):
    """x [N, n_heads, d_head]. bf16 mode: upcast to fp32, (x*cos) + (rotate_half(x)*sin) with each op in
    float32, result rounded to bf16. fp32 mode: the same in float64."""
    c, s = cos[:, None, :], sin[:, None, :]
    if num.is_bf16:
        x32 = np.asarray(x, np.float32)
        a = x32 * c.astype(np.float32)                      # fp32 product
        b = rotate_half(x32) * s.astype(np.float32)         # fp32 product
        return round_bf16((a + b).astype(np.float32))       # fp32 sum, then the cast back to bf16
    x64 = np.asarray(x, np.float64)
    return x64 * c + rotate_half(x64) * s


def get_window_index(grid_thw, window_merged, merge):
    """Reference window construction (spec §4.4 steps 1-2).

    For every image and every temporal slice, the H' x W' merged grid is padded at the bottom/right by
    window_merged - (H' mod window_merged) rows (and the same for columns: a whole empty window row/column
    when H' is a multiple), cut into window_merged x window_merged windows enumerated row-major, and the valid
    merged tokens of each window are listed row-major. Returns
      window_index       int64 [N / merge^2]: permuted position -> merged token index in processor order;
      cu_window_seqlens  list of ints: 0 then the running sum of merge^2 * (valid tokens) over every window,
                         empty windows included (so the list repeats values; see dedupe_consecutive)."""
    unit = merge * merge
    ws = window_merged
    window_index = []
    cu = [0]
    offset = 0
    for t, h, w in np.asarray(grid_thw).tolist():
        hm, wm = h // merge, w // merge
        pad_h = ws - hm % ws
        pad_w = ws - wm % ws
        nwh, nww = (hm + pad_h) // ws, (wm + pad_w) // ws
        index = np.full((t, hm + pad_h, wm + pad_w), -1, dtype=np.int64)
        index[:, :hm, :wm] = np.arange(t * hm * wm, dtype=np.int64).reshape(t, hm, wm)
        # [t, window row, row in window, window col, col in window] -> windows row-major, then tokens row-major
        windows = index.reshape(t, nwh, ws, nww, ws).transpose(0, 1, 3, 2, 4).reshape(t * nwh * nww, ws * ws)
        for win in windows:
            valid = win[win >= 0]
            window_index.extend((valid + offset).tolist())
            cu.append(cu[-1] + unit * len(valid))
        offset += t * hm * wm
    return np.array(window_index, dtype=np.int64), cu


def dedupe_consecutive(values):
    """Drop consecutive repeats (torch.unique_consecutive): empty windows disappear."""
    out = []
    for v in values:
        if not out or out[-1] != v:
            out.append(int(v))
    return out


def full_cu_seqlens(grid_thw):
    """Full-attention segments: h*w patches for every temporal slice of every image, running sum from 0."""
    lens = []
    for t, h, w in np.asarray(grid_thw).tolist():
        lens.extend([h * w] * t)
    return [0] + np.cumsum(lens).astype(np.int64).tolist()


def permute_groups(x, window_index, unit):
    """Reorder the rows of x [N, ...] in groups of ``unit`` rows: group i of the result is group
    window_index[i] of x."""
    n = x.shape[0]
    return x.reshape(n // unit, unit, *x.shape[1:])[window_index].reshape(x.shape)


def unpermute_groups(x, window_index, unit):
    """Inverse of permute_groups (the reference uses argsort(window_index))."""
    return permute_groups(x, np.argsort(window_index, kind="stable"), unit)


def gelu_erf(x, num):
    """Exact (erf) GELU; bf16 mode rounds the result to bf16 (torch computes bf16 GELU in fp32)."""
    x64 = np.asarray(x, np.float64)
    erf = np.frompyfunc(math.erf, 1, 1)
    y = 0.5 * x64 * (1.0 + erf(x64 / math.sqrt(2.0)).astype(np.float64))
    return num.round(y)


# ----------------------------------------------------------------------------------------------- model

def block_weight_table(cfg, j):
    """Name -> (flat tensor name, shape) of vision block j (spec §2.2)."""
    p = "visual.blocks.%d." % j
    d, f = cfg.d_model, cfg.d_ff
    table = {"norm1": (p + "norm1.weight", (d,)), "norm2": (p + "norm2.weight", (d,))}
    for key in ("q", "k", "v", "proj"):
        table["w" + key] = (p + "attn.%s.weight" % key, (d, d))
        table["b" + key] = (p + "attn.%s.bias" % key, (d,))
    for key, shape in (("gate_proj", (f, d)), ("up_proj", (f, d)), ("down_proj", (d, f))):
        table["w_" + key] = (p + "mlp.%s.weight" % key, shape)
        table["b_" + key] = (p + "mlp.%s.bias" % key, (shape[0],))
    return table


class VisionModel:
    def __init__(self, checkpoint, precision="fp32"):
        self.ckpt = checkpoint
        self.cfg = VisionConfig(checkpoint.sub_config("vision_config"))
        self.num = precision if isinstance(precision, Numerics) else Numerics(precision)

    def _w(self, name, shape):
        return self.num.weight(self.ckpt.get(name, shape=shape))

    def block_weights(self, j):
        return {key: self._w(name, shape) for key, (name, shape) in block_weight_table(self.cfg, j).items()}

    def patch_embed(self, pixel_values):
        """pixel_values [N, C*T*P*P] -> [N, d]. bf16 mode rounds the input to bf16 first (the reference casts
        pixel_values to the vision dtype); the Conv3d with stride = kernel is one linear map per patch."""
        cfg = self.cfg
        w = self._w("visual.patch_embed.proj.weight",
                    (cfg.d_model, cfg.in_channels, cfg.temporal_patch_size, cfg.patch_size, cfg.patch_size))
        x = self.num.round(np.asarray(pixel_values, np.float32))
        return self.num.linear(x, w.reshape(cfg.d_model, cfg.patch_dim))

    def block(self, x, w, cos, sin, cu_seqlens, trace=None):
        """One vision block on x [N, d] (in the permuted order), attention restricted to the segments
        [cu_seqlens[i], cu_seqlens[i+1])."""
        cfg, num = self.cfg, self.num
        n = x.shape[0]
        h = rms_norm(x, w["norm1"], cfg.eps, num)
        q = num.linear(h, w["wq"], w["bq"]).reshape(n, cfg.n_heads, cfg.d_head)
        k = num.linear(h, w["wk"], w["bk"]).reshape(n, cfg.n_heads, cfg.d_head)
        v = num.linear(h, w["wv"], w["bv"]).reshape(n, cfg.n_heads, cfg.d_head)
        q_rot = apply_vision_rope(q, cos, sin, num)
        k_rot = apply_vision_rope(k, cos, sin, num)
        parts = []
        for a, b in zip(cu_seqlens[:-1], cu_seqlens[1:]):      # one eager attention call per segment
            parts.append(attention(q_rot[a:b], k_rot[a:b], v[a:b], False, num))
        context = np.concatenate(parts, axis=0)
        x = num.add(x, num.linear(context, w["wproj"], w["bproj"]))
        h2 = rms_norm(x, w["norm2"], cfg.eps, num)
        gate = num.linear(h2, w["w_gate_proj"], w["b_gate_proj"])
        up = num.linear(h2, w["w_up_proj"], w["b_up_proj"])
        x = num.add(x, num.linear(num.mul(silu(gate, num), up), w["w_down_proj"], w["b_down_proj"]))
        if trace is not None:
            trace.update(h=h, q=q, k=k, v=v, q_rot=q_rot, k_rot=k_rot, context=context, out=x)
        return x

    def merger(self, x):
        """x [N, d] -> [N / merge^2, out_d_model]: ln_q, concat each group of merge^2 tokens, Linear, GELU,
        Linear."""
        cfg, num = self.cfg, self.num
        m = cfg.merged_dim
        ln = self._w("visual.merger.ln_q.weight", (cfg.d_model,))
        z = rms_norm(x, ln, cfg.eps, num).reshape(-1, m)
        z = num.linear(z, self._w("visual.merger.mlp.0.weight", (m, m)), self._w("visual.merger.mlp.0.bias", (m,)))
        z = gelu_erf(z, num)
        return num.linear(z, self._w("visual.merger.mlp.2.weight", (cfg.out_d_model, m)),
                          self._w("visual.merger.mlp.2.bias", (cfg.out_d_model,)))

    def forward(self, pixel_values, grid_thw, traces=None):
        cfg = self.cfg
        pixel_values = np.asarray(pixel_values)
        if pixel_values.ndim != 2 or pixel_values.shape[1] != cfg.patch_dim:
            raise ValueError("pixel_values: expected [n_patches, %d], got shape %s"
                             % (cfg.patch_dim, pixel_values.shape))
        grid = check_grid(grid_thw, cfg.merge, pixel_values.shape[0])
        unit = cfg.merge_unit

        patch_embeds = self.patch_embed(pixel_values)                       # processor order
        angles = rotary_angles(grid, cfg)                                  # processor order
        window_index, cu_window = get_window_index(grid, cfg.window_merged, cfg.merge)
        cu_window = dedupe_consecutive(cu_window)
        cu_full = full_cu_seqlens(grid)

        x = permute_groups(patch_embeds, window_index, unit)               # window order from here on
        cos, sin = vision_cos_sin(permute_groups(angles, window_index, unit), self.num)
        block_outputs = []
        for j in range(cfg.depth):
            segments = cu_full if j in cfg.fullatt_block_indexes else cu_window
            trace = {} if traces is not None else None
            x = self.block(x, self.block_weights(j), cos, sin, segments, trace)
            if traces is not None:
                trace.update(window_index=window_index, cu_seqlens=segments)
                traces.append(trace)
            block_outputs.append(unpermute_groups(x, window_index, unit))
        merged_permuted = self.merger(x)
        merged = merged_permuted[np.argsort(window_index, kind="stable")]  # back to processor order
        return {
            "patch_embeds": patch_embeds,
            "block_outputs": np.stack(block_outputs),
            "merged": merged,
        }


def encode_images(ckpt, pixel_values, grid_thw, numerics="fp32", traces=None):
    """Vision tower on pixel_values [N, patch_dim] with grid_thw [n, 3] (several images or videos in one call;
    segments never cross images, each temporal slice is its own full-attention segment). ``numerics`` is a
    Numerics or a precision name. Returns patch_embeds [N, d], block_outputs [depth, N, d] (processor order)
    and merged [N / merge^2, out_d_model] (processor order)."""
    return VisionModel(ckpt, numerics).forward(pixel_values, grid_thw, traces=traces)
