"""Reference audio encoder of the Qwen2.5-Omni thinker (spec qwen25-omni-thinker.md §1.3, §2.3, §5, §10).

A Whisper-style encoder run chunk by chunk, in numpy, following the spec literally. Per audio (only its T valid
mel frames, [n_mel, T]):
    split into chunks of 2*n_window frames (the last one 1..2*n_window frames), each processed on its own:
        conv1 (k3, s1, zero pad 1) + exact GELU, conv2 (k3, s2, zero pad 1) + exact GELU
        + sinusoid table rows 0..mc-1 (positions restart in every chunk)
    -> concatenation of the chunks: M = (T - 1)//2 + 1 frames
    -> n_layers x pre-LN layer [LayerNorm, MHA (q/v/out bias, no k bias, non-causal, restricted to the frames of
       one chunk), residual, LayerNorm, fc1, exact GELU, fc2, residual]
    -> average pooling k2 s2 over the audio's frames (an odd last frame is dropped), ln_post, proj.
Audios are independent; several are encoded in one call and their rows concatenated in order.
The precision policy comes from ``numerics.Numerics`` (``fp32``: float64; ``bf16``: the eager bf16 flow of §10).
Every hyper-parameter is read from audio_config.
"""

import math

import numpy as np

from numerics import Numerics
from rope_index import audio_output_length
from text_model import attention
from vision_model import gelu_erf

AUDIO_NORM_EPS = 1e-5            # PyTorch LayerNorm default, used by the reference (spec §1.3 [V])
SINUSOID_MAX_TIMESCALE = 10000.0  # spec §5.3
CONV_KERNEL = 3                   # conv1 / conv2 kernel (spec §2.3 shapes), zero padding (k - 1)/2
CONV2_STRIDE = 2


class AudioConfig:
    """Typed audio_config (spec §1.3)."""

    def __init__(self, raw):
        def need(key):
            if key not in raw or raw[key] is None:
                raise ValueError("audio_config: missing required key %r" % key)
            return raw[key]

        self.n_mel = int(need("num_mel_bins"))
        self.d_model = int(need("d_model"))
        self.n_layers = int(need("encoder_layers"))
        self.n_heads = int(need("encoder_attention_heads"))
        self.d_ff = int(need("encoder_ffn_dim"))
        self.max_source_positions = int(need("max_source_positions"))
        self.n_window = int(need("n_window"))
        self.output_dim = int(need("output_dim"))
        act = raw.get("activation_function", "gelu")
        if act != "gelu":
            raise ValueError("audio_config: activation_function %r is not supported (only exact gelu)" % act)
        if raw.get("scale_embedding"):
            raise ValueError("audio_config: scale_embedding = true is not supported (the thinker uses false)")
        self.eps = AUDIO_NORM_EPS
        self._validate()

    def _validate(self):
        if self.d_model % self.n_heads != 0:
            raise ValueError("audio_config: d_model %d is not a multiple of encoder_attention_heads %d"
                             % (self.d_model, self.n_heads))
        if self.d_model % 2 != 0 or self.d_model < 4:
            raise ValueError("audio_config: d_model %d must be even and >= 4 (sin and cos halves)" % self.d_model)
        if self.n_window < 1:
            raise ValueError("audio_config: n_window %d must be positive" % self.n_window)
        if conv_output_length(self.chunk_frames) > self.max_source_positions:
            raise ValueError("audio_config: a chunk of %d frames gives %d positions, more than "
                             "max_source_positions %d" % (self.chunk_frames, conv_output_length(self.chunk_frames),
                                                         self.max_source_positions))

    @property
    def d_head(self):
        return self.d_model // self.n_heads

    @property
    def chunk_frames(self):
        """Mel frames per attention / conv chunk (2 * n_window = 200)."""
        return 2 * self.n_window


# ----------------------------------------------------------------------------------------------- lengths

def conv_output_length(n_frames):
    """Frames after the stride-2 conv stem: (L - 1)//2 + 1 (spec §5.2)."""
    return (int(n_frames) - 1) // 2 + 1


def chunk_lengths(n_frames, chunk_frames):
    """Spec §5.1: ceil(T / chunk) chunks, all of chunk_frames frames except the last (1..chunk_frames)."""
    n_frames = int(n_frames)
    if n_frames < 1:
        raise ValueError("an audio needs at least one mel frame, got %d" % n_frames)
    n_full, rest = divmod(n_frames, chunk_frames)
    return [chunk_frames] * n_full + ([rest] if rest else [])


def frame_count(n_frames):
    """M: encoder frames of an audio of T mel frames, the sum of the per-chunk conv outputs = (T - 1)//2 + 1."""
    return conv_output_length(n_frames)


def token_count(n_frames):
    """Audio tokens (rows after the pooling) of an audio of T mel frames (spec §5.5, §8.2)."""
    return audio_output_length(n_frames)


# ----------------------------------------------------------------------------------------------- pieces

def sinusoid_table(n_positions, channels, num):
    """Rows 0..n_positions-1 of the sinusoid table (spec §5.3), [n_positions, channels]: sin half then cos half.
    inc = ln(10000)/(channels/2 - 1) rounded to float32; inv_i = exp(-inc * i) with the product and the exp in
    float32 (libm exp in double, then rounded); angle = float32(t * inv_i) (one fp32 multiply). fp32 mode takes
    sin/cos of that angle in float64; bf16 mode takes the float32 sin/cos and rounds them to bf16 (the table is
    cast to the activation dtype before the add). libm (math) is used so the table is the same on every CPU."""
    half = channels // 2
    inc = np.float32(math.log(SINUSOID_MAX_TIMESCALE) / (half - 1))
    exponent = (-inc * np.arange(half, dtype=np.float32)).astype(np.float32)
    inv = np.array([math.exp(float(e)) for e in exponent]).astype(np.float32)
    angles = (np.arange(n_positions, dtype=np.float32)[:, None] * inv[None, :]).astype(np.float32)
    flat = angles.astype(np.float64).ravel().tolist()
    sin = np.array([math.sin(a) for a in flat]).reshape(angles.shape)
    cos = np.array([math.cos(a) for a in flat]).reshape(angles.shape)
    table = np.concatenate([sin, cos], axis=1)
    if num.is_bf16:
        return num.round(table.astype(np.float32))
    return table


def conv1d(x, w, b, stride, num):
    """x [L, c_in] (time-major) -> [L_out, c_out]: Conv1d with weight w [c_out, c_in, k], zero padding (k - 1)/2
    at both ends, as one linear map over the im2col patches (inner index (c_in, k), k fastest, the order of the
    flattened weight); float64 accumulation, bias added before the single output rounding."""
    c_out, c_in, k = w.shape
    pad = (k - 1) // 2
    n = x.shape[0]
    n_out = (n + 2 * pad - k) // stride + 1
    xp = np.zeros((n + 2 * pad, c_in), dtype=np.float64)
    xp[pad:pad + n] = x
    taps = [xp[j:j + stride * (n_out - 1) + 1:stride] for j in range(k)]     # k x [n_out, c_in]
    patches = np.stack(taps, axis=2).reshape(n_out, c_in * k)               # [n_out, c_in * k]
    return num.linear(patches, w.reshape(c_out, c_in * k), b)


def layer_norm(x, w, b, eps, num):
    """LayerNorm over the last axis (biased variance). The reference computes it in fp32 internally with one
    bf16 rounding of the output; here the statistics and the affine map are float64, rounded once."""
    x64 = np.asarray(x, np.float64)
    mean = np.mean(x64, axis=-1, keepdims=True)
    var = np.mean((x64 - mean) ** 2, axis=-1, keepdims=True)
    y = (x64 - mean) / np.sqrt(var + eps) * np.asarray(w, np.float64) + np.asarray(b, np.float64)
    return num.round(y)


def avg_pool_pairs(x, num):
    """Average pooling k2 s2 over time on x [M, d]: (x[2i] + x[2i+1]) / 2 for i < M//2 (odd last frame
    dropped); bf16 in, bf16 out."""
    m = x.shape[0] // 2
    pairs = np.asarray(x[:2 * m], np.float64).reshape(m, 2, x.shape[1])
    return num.round((pairs[:, 0] + pairs[:, 1]) / 2.0)


def layer_weight_table(cfg, il):
    """Key -> (flat tensor name, shape) of encoder layer il (spec §2.3)."""
    p = "audio_tower.layers.%d." % il
    d, f = cfg.d_model, cfg.d_ff
    table = {}
    for key, norm in (("ln1", "self_attn_layer_norm"), ("ln2", "final_layer_norm")):
        table[key + "_w"] = (p + norm + ".weight", (d,))
        table[key + "_b"] = (p + norm + ".bias", (d,))
    for key in ("q", "k", "v", "out"):
        table["w" + key] = (p + "self_attn.%s_proj.weight" % key, (d, d))
        if key != "k":                                  # k_proj has no bias
            table["b" + key] = (p + "self_attn.%s_proj.bias" % key, (d,))
    table["w_fc1"], table["b_fc1"] = (p + "fc1.weight", (f, d)), (p + "fc1.bias", (f,))
    table["w_fc2"], table["b_fc2"] = (p + "fc2.weight", (d, f)), (p + "fc2.bias", (d,))
    return table


# ----------------------------------------------------------------------------------------------- model

class AudioModel:
    def __init__(self, checkpoint, precision="fp32"):
        self.ckpt = checkpoint
        self.cfg = AudioConfig(checkpoint.sub_config("audio_config"))
        self.num = precision if isinstance(precision, Numerics) else Numerics(precision)
        self.table = sinusoid_table(conv_output_length(self.cfg.chunk_frames), self.cfg.d_model, self.num)

    def _w(self, name, shape):
        return self.num.weight(self.ckpt.get(name, shape=shape))

    def layer_weights(self, il):
        return {key: self._w(name, shape) for key, (name, shape) in layer_weight_table(self.cfg, il).items()}

    def stem_weights(self):
        cfg, d, k = self.cfg, self.cfg.d_model, CONV_KERNEL
        return {"w1": self._w("audio_tower.conv1.weight", (d, cfg.n_mel, k)),
                "b1": self._w("audio_tower.conv1.bias", (d,)),
                "w2": self._w("audio_tower.conv2.weight", (d, d, k)),
                "b2": self._w("audio_tower.conv2.bias", (d,))}

    def conv_stem(self, chunk, w):
        """One chunk of mel frames [Lc, n_mel] (time-major, already in the working precision) ->
        [mc, d_model]: conv1 + GELU, conv2 + GELU, + table rows 0..mc-1."""
        num = self.num
        a = gelu_erf(conv1d(chunk, w["w1"], w["b1"], 1, num), num)              # [Lc, d_model]
        b = gelu_erf(conv1d(a, w["w2"], w["b2"], CONV2_STRIDE, num), num)       # [mc, d_model]
        return num.add(b, self.table[:b.shape[0]])

    def layer(self, x, w, cu_seqlens, trace=None):
        """One pre-LN encoder layer on x [M, d_model]; attention restricted to [cu[i], cu[i+1]) (the chunks)."""
        cfg, num = self.cfg, self.num
        n = x.shape[0]
        h = layer_norm(x, w["ln1_w"], w["ln1_b"], cfg.eps, num)
        q = num.linear(h, w["wq"], w["bq"]).reshape(n, cfg.n_heads, cfg.d_head)
        k = num.linear(h, w["wk"]).reshape(n, cfg.n_heads, cfg.d_head)
        v = num.linear(h, w["wv"], w["bv"]).reshape(n, cfg.n_heads, cfg.d_head)
        parts = []
        for a, b in zip(cu_seqlens[:-1], cu_seqlens[1:]):      # scale 1/sqrt(d_head), non-causal, per chunk
            parts.append(attention(q[a:b], k[a:b], v[a:b], False, num))
        context = np.concatenate(parts, axis=0)                 # [M, d_model]
        x = num.add(x, num.linear(context, w["wout"], w["bout"]))
        h2 = layer_norm(x, w["ln2_w"], w["ln2_b"], cfg.eps, num)
        ff = gelu_erf(num.linear(h2, w["w_fc1"], w["b_fc1"]), num)
        x = num.add(x, num.linear(ff, w["w_fc2"], w["b_fc2"]))
        if trace is not None:
            trace.update(h=h, q=q, k=k, v=v, context=context, h2=h2, ff=ff, out=x)
        return x

    def head(self, x):
        """Pooled frames of one audio [M, d_model] -> [M//2, output_dim]: avg pool, ln_post, proj."""
        cfg, num = self.cfg, self.num
        d = cfg.d_model
        z = avg_pool_pairs(x, num)
        z = layer_norm(z, self._w("audio_tower.ln_post.weight", (d,)), self._w("audio_tower.ln_post.bias", (d,)),
                       cfg.eps, num)
        return num.linear(z, self._w("audio_tower.proj.weight", (cfg.output_dim, d)),
                          self._w("audio_tower.proj.bias", (cfg.output_dim,)))

    def check_features(self, features):
        if isinstance(features, np.ndarray):
            raise ValueError("audio features: expected a list of [n_mel, T] arrays (valid frames only), got one "
                             "array of shape %s (features_from_padded reads the padded [n_audio, n_mel, n_frames] "
                             "layout)" % (features.shape,))
        out = []
        for i, f in enumerate(features):
            f = np.asarray(f)
            if f.ndim != 2 or f.shape[0] != self.cfg.n_mel or f.shape[1] < 1:
                raise ValueError("audio %d: expected features [%d, T] with T >= 1 valid frames, got shape %s"
                                 % (i, self.cfg.n_mel, f.shape))
            if not np.issubdtype(f.dtype, np.floating) or not np.all(np.isfinite(f)):
                raise ValueError("audio %d: features must be finite floats (dtype %s)" % (i, f.dtype))
            out.append(f)
        if not out:
            raise ValueError("audio features: the list is empty")
        return out

    def forward(self, features, traces=None):
        """features: list of [n_mel, T_i] arrays (valid frames only). Chunks are processed one at a time; the
        frames of all audios are concatenated, and attention segments never cross a chunk (nor an audio)."""
        cfg, num = self.cfg, self.num
        features = self.check_features(features)
        stem_w = self.stem_weights()
        stems, frames, tokens, cu = [], [], [], [0]
        for f in features:
            x = num.round(np.asarray(f, np.float32).T)          # [T, n_mel], cast to bf16 before conv1
            start = 0
            for length in chunk_lengths(x.shape[0], cfg.chunk_frames):
                stem = self.conv_stem(x[start:start + length], stem_w)  # [mc, d_model]
                stems.append(stem)
                cu.append(cu[-1] + stem.shape[0])
                start += length
            frames.append(frame_count(x.shape[0]))
            tokens.append(token_count(x.shape[0]))
        x = np.concatenate(stems, axis=0)                       # [sum M_i, d_model]
        if x.shape[0] != sum(frames):
            raise AssertionError("internal: %d stem frames, expected %d" % (x.shape[0], sum(frames)))
        layer_input = x
        layer_outputs = []
        for il in range(cfg.n_layers):
            trace = {} if traces is not None else None
            x = self.layer(x, self.layer_weights(il), cu, trace)
            if traces is not None:
                trace.update(cu_seqlens=list(cu))
                traces.append(trace)
            layer_outputs.append(x)
        bounds = np.cumsum([0] + frames)
        embeds = [self.head(x[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]   # pooling per audio
        embeds = np.concatenate(embeds, axis=0)                 # [sum tokens, output_dim]
        return {
            "layer_input": layer_input,
            "layer_outputs": np.stack(layer_outputs),
            "embeds": embeds,
            "frame_counts": np.array(frames, dtype=np.int64),
            "token_counts": np.array(tokens, dtype=np.int64),
            "cu_seqlens": np.array(cu, dtype=np.int64),
        }


def features_from_padded(input_features, feature_attention_mask, n_mel=None):
    """Hugging Face layout -> list of [n_mel, T_i]: input_features [n_audio, n_mel, n_frames] (padded) and
    feature_attention_mask [n_audio, n_frames] (1 for the valid frames, which come first); audio i keeps its
    first T_i = sum(mask_i) frames."""
    feats = np.asarray(input_features)
    mask = np.asarray(feature_attention_mask)
    if feats.ndim != 3 or feats.shape[0] == 0:
        raise ValueError("input_features: expected [n_audio, n_mel, n_frames], got shape %s" % (feats.shape,))
    if n_mel is not None and feats.shape[1] != n_mel:
        raise ValueError("input_features: expected %d mel bins (audio_config.num_mel_bins), got shape %s"
                         % (n_mel, feats.shape))
    if mask.shape != (feats.shape[0], feats.shape[2]):
        raise ValueError("feature_attention_mask: expected shape %s (n_audio, n_frames), got %s"
                         % ((feats.shape[0], feats.shape[2]), mask.shape))
    if not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == np.bool_) or np.any((mask != 0) & (mask != 1)):
        raise ValueError("feature_attention_mask: expected 0/1 integers, got dtype %s" % mask.dtype)
    out = []
    for i in range(feats.shape[0]):
        n_valid = int(mask[i].sum())
        if np.any(mask[i, :n_valid] != 1):
            raise ValueError("feature_attention_mask[%d]: the valid frames must come first (a run of 1s, then 0s)"
                             % i)
        out.append(feats[i, :, :n_valid])
    return out


def encode_audios(ckpt, features, numerics="fp32", traces=None):
    """Audio tower on a list of per-audio features [n_mel, T_i] (valid frames only). ``numerics`` is a Numerics or
    a precision name. Returns (float64 in fp32 mode, bf16-valued float32 in bf16 mode):
      layer_input    [sum M_i, d_model]            conv stem + sinusoid rows (the input of layer 0);
      layer_outputs  [n_layers, sum M_i, d_model]  after each layer;
      embeds         [sum tokens_i, output_dim]    pooled, ln_post, proj (audio order);
      frame_counts   int64 [n_audio]  M_i = (T_i - 1)//2 + 1;  token_counts int64 [n_audio];
      cu_seqlens     int64 [n_chunks + 1]  chunk (attention segment) boundaries over the sum M_i frames.
    An audio of T < 3 frames gives no row."""
    return AudioModel(ckpt, numerics).forward(features, traces=traces)
