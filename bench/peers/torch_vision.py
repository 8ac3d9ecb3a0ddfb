#!/usr/bin/env python3
"""PyTorch eager peer: one IMAGE document end to end on the Qwen2.5-Omni-3B shapes, bf16, random weights.

Written plainly, the way the Hugging Face reference computes it:
  1. preprocessing (thinker spec §6.1): smart_resize (a no-op for sizes that are multiples of 28), rescale by 1/255
     and CLIP mean/std in fp32, the image duplicated to 2 frames, patchified into [h*w, 1176] rows;
  2. the vision encoder (§4): the patch embedding as a linear on the 1176-long rows, 2-D rotary applied in fp32,
     the window_index permutation with cu_window_seqlens (4x4 merged tokens per window, padding and dedup as the
     reference), 32 blocks whose attention LOOPS over the segments of cu_seqlens (q.k^T * scale, softmax in fp32,
     .v), window segments except in blocks 7, 15, 23, 31 (one segment per temporal slice), the SwiGLU MLP with
     biases, then the merger (RMSNorm, concatenation of 4, Linear, exact GELU, Linear) and the un-permutation;
  3. the text decoder of torch_eager.py over the chat sequence of a document (system/user head, <|vision_bos|>, the
     image rows written over the <|IMAGE|> placeholders, <|vision_eos|>, 2 closing tokens), with TMRoPE positions
     (§8), bidirectional attention, final norm, mean pooling and L2 normalisation.

Prints ONE JSON object per image size on stdout; everything else goes to stderr. If torch cannot be imported it
prints {"peer": "pytorch-eager", "skipped": "..."} and exits 0. Run it with Debian's interpreter (/usr/bin/python3)
after `apt-get install python3-torch`.
"""

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_eager  # noqa: E402  (imports no torch at module level)
REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "reference")


def smart_resize(height, width, factor, min_pixels, max_pixels):
    """The processor's target size, from the project's reference implementation (imported on first use, so that
    an interpreter without numpy still reaches the "skipped" line)."""
    sys.path.insert(0, REFERENCE_DIR)
    from image_preprocess import smart_resize as reference_smart_resize
    return reference_smart_resize(height, width, factor, min_pixels, max_pixels)

PEER = "pytorch-eager"

# token ids (thinker spec §1.4 and §7.1)
IM_END = 151645
NEWLINE = 198
VISION_BOS = 151652
VISION_EOS = 151653
IMAGE = 151655
ORDINARY = 1000  # any ordinary id: the head's token embeddings are random anyway

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

emit = torch_eager.emit
positive_int = torch_eager.positive_int
non_negative_int = torch_eager.non_negative_int
parse_int_list = torch_eager.parse_int_list


def log(msg):
    sys.stderr.write(f"[torch_vision] {msg}\n")
    sys.stderr.flush()


def parse_index_list(text):
    values = [int(v) for v in text.split(",") if v.strip()]
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of block indexes, got '{text}'")
    return values


def add_vision_args(p):
    """The vision encoder's shape and patching options (defaults: the 3B, thinker spec §1.2). torch_video.py
    shares them."""
    p.add_argument("--vision-depth", type=positive_int, default=32)
    p.add_argument("--vision-hidden", type=positive_int, default=1280)
    p.add_argument("--vision-heads", type=positive_int, default=16)
    p.add_argument("--vision-ffn", type=positive_int, default=3420)
    p.add_argument("--vision-fullatt", type=parse_index_list, default=[7, 15, 23, 31],
                   help="blocks with full attention (default 7,15,23,31; indexes >= --vision-depth are ignored)")
    p.add_argument("--vision-rope-theta", type=float, default=10000.0)
    p.add_argument("--patch", type=positive_int, default=14)
    p.add_argument("--temporal-patch", type=positive_int, default=2)
    p.add_argument("--merge", type=positive_int, default=2)
    p.add_argument("--window", type=positive_int, default=112, help="attention window edge in pixels")


def check_vision_args(p, args):
    """Validates the options of add_vision_args."""
    if args.vision_hidden % args.vision_heads != 0:
        p.error(f"--vision-hidden {args.vision_hidden} is not a multiple of --vision-heads {args.vision_heads}")
    if (args.vision_hidden // args.vision_heads) % 4 != 0:
        p.error("the vision head dimension must be a multiple of 4 (2-D rotary: rows and columns, cos and sin)")
    if args.window % (args.merge * args.patch) != 0:
        p.error(f"--window {args.window} is not a multiple of merge*patch = {args.merge * args.patch}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=parse_int_list, default=[448, 1344],
                   help="comma-separated square image sizes in pixels (default 448,1344)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--repeats", type=positive_int, default=3, help="timed runs per image size")
    p.add_argument("--warmup", type=non_negative_int, default=1, help="untimed runs per image size")
    p.add_argument("--head-tokens", type=positive_int, default=17,
                   help="text tokens before <|vision_bos|> (default 17: the default system turn, '<|im_start|>user\\n' "
                        "and 'passage: ')")
    # the text decoder (defaults: the 3B); its hidden size is also the merger's output size
    torch_eager.add_decoder_args(p)
    # the vision encoder (defaults: the 3B, thinker spec §1.2)
    add_vision_args(p)
    p.add_argument("--min-pixels", type=positive_int, default=3136)
    p.add_argument("--max-pixels", type=positive_int, default=12845056)
    p.add_argument("--score-chunk-bytes", type=positive_int, default=1 << 30,
                   help="attention heads are processed in chunks whose scores (bf16 + fp32 + bf16 probabilities) "
                        "fit this budget (default 1 GiB); only the full-attention segments of large images split")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch_eager.check_decoder_args(p, args)
    check_vision_args(p, args)
    return args


def normalize(torch, x):
    """Pixel values in [0, 255] [..., 3, H, W] (any dtype) -> fp32: rescale by 1/255, then CLIP mean and std
    (thinker spec §6.1.3 step 2)."""
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(3, 1, 1)
    x = x.to(torch.float32) * (1.0 / 255.0)
    return (x - mean) / std


def patchify(frames, args):
    """fp32 frames [T, 3, H, W] (T a multiple of --temporal-patch, H and W multiples of merge*patch) ->
    pixel_values [gt*h*w, 3*tp*P*P] in the processor's order (merge blocks of 2x2, then (c, t, y, x)) and the grid
    (gt, h, w) in patches (thinker spec §6.1.3 step 4). Frames 2k and 2k+1 form temporal slice k."""
    P, m, tp = args.patch, args.merge, args.temporal_patch
    n_frames, _, height, width = frames.shape
    gt, h, w = n_frames // tp, height // P, width // P
    x = frames.reshape(gt, tp, 3, h // m, m, P, w // m, m, P)
    # -> (gt, h/m, w/m, row in block, col in block, channel, frame, y, x)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(gt * h * w, 3 * tp * P * P)
    return x, (gt, h, w)


def tmrope_positions(torch, ids, grids, merge, vision_ids=(IMAGE,), position_id_per_seconds=25):
    """[3, S] positions for text and vision blocks (thinker spec §8.2 with use_audio_in_video false): text (and
    audio, which counts on like text) counts on; a vision block (a run of `vision_ids` placeholders, one grid each,
    in order) puts T = base + ti * 25, H = base + y, W = base + x over its merged grid, and the text after it
    resumes at base + max(25 * (t-1), H'-1, W'-1) + 1. The seconds per temporal grid are 1.0 (the processor's
    default for videos; ti is 0 for an image)."""
    rows = [[], [], []]
    nxt = 0
    i = 0
    blocks = iter(grids)
    while i < len(ids):
        if ids[i] not in vision_ids:
            for r in rows:
                r.append(nxt)
            nxt += 1
            i += 1
            continue
        t, h, w = next(blocks)
        hm, wm = h // merge, w // merge
        base = nxt
        for ti in range(t):
            for y in range(hm):
                for x in range(wm):
                    rows[0].append(base + ti * position_id_per_seconds)
                    rows[1].append(base + y)
                    rows[2].append(base + x)
        i += t * hm * wm
        nxt = base + max((t - 1) * position_id_per_seconds, hm - 1, wm - 1) + 1
    return torch.tensor(rows, dtype=torch.int64)


def build_vision_encoder(torch, args, log):
    """Allocates the vision tower's random bf16 weights and returns encode_image(pixel_values, grid): fp32
    [t*h*w, 1176] patch rows in the processor's order and the grid (t, h, w) in patches -> bf16 [t*h*w/4, hidden]
    decoder rows in the processor's order (thinker spec §4). A video is a grid with t > 1: the windows and the
    full-attention segments are per temporal slice. Call torch.manual_seed before it for reproducible weights."""
    import torch.nn.functional as F
    dt = torch.bfloat16

    # ---- vision weights (random) ------------------------------------------------------------------------------------
    D = args.vision_hidden
    nh = args.vision_heads
    hd = D // nh
    I = args.vision_ffn
    m = args.merge
    g = m * m                                   # patches per merged token
    P = args.patch
    tp = args.temporal_patch
    in_dim = 3 * tp * P * P                     # 1176
    out_dim = args.hidden                       # 2048: the merger writes decoder rows
    fullatt = {j for j in args.vision_fullatt if j < args.vision_depth}
    win = args.window // m // P                 # window edge in merged tokens (4)
    scale = 1.0 / math.sqrt(hd)

    t0 = time.perf_counter()
    rand = torch_eager.random_source(torch, dt, max(g * D * g * D, out_dim * g * D, I * D, D * in_dim) + 4096)

    def ones(n):
        return torch.ones(n, dtype=dt)

    patch_w = rand(D, in_dim)                   # the Conv3d weight [D, 3, 2, 14, 14] flattened: (c, t, y, x)
    blocks = []
    for _ in range(args.vision_depth):
        blocks.append({
            "norm1": ones(D),
            "q_w": rand(D, D), "q_b": rand(D),
            "k_w": rand(D, D), "k_b": rand(D),
            "v_w": rand(D, D), "v_b": rand(D),
            "proj_w": rand(D, D), "proj_b": rand(D),
            "norm2": ones(D),
            "gate_w": rand(I, D), "gate_b": rand(I),
            "up_w": rand(I, D), "up_b": rand(I),
            "down_w": rand(D, I), "down_b": rand(D),
        })
    merger = {
        "ln_q": ones(D),
        "fc0_w": rand(g * D, g * D), "fc0_b": rand(g * D),
        "fc2_w": rand(out_dim, g * D), "fc2_b": rand(out_dim),
    }
    del rand  # frees the pool
    log(f"vision weights ready in {time.perf_counter() - t0:.1f} s ({args.vision_depth} blocks, hidden {D}, "
        f"heads {nh}x{hd}, ffn {I}, full attention in blocks {sorted(fullatt)})")

    # ---- the vision encoder (thinker spec §4) ----------------------------------------------------------------------
    def rms_norm(x, w):
        in_dtype = x.dtype
        x = x.to(torch.float32)
        var = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + 1e-6)
        return w * x.to(in_dtype)

    rot_dim = hd // 2                                                                # 40: 20 row + 20 column angles
    inv_freq = 1.0 / (args.vision_rope_theta ** (torch.arange(0, rot_dim, 2, dtype=torch.float32) / rot_dim))

    def rotary_angles(grid):
        """[t*h*w, hd/2] fp32 angles, in the processor's token order: row angles, then column angles."""
        t, h, w = grid
        rows = torch.arange(h).unsqueeze(1).expand(h, w)
        cols = torch.arange(w).unsqueeze(0).expand(h, w)

        def merge_order(a):
            return a.reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).reshape(-1)

        rc = torch.stack((merge_order(rows), merge_order(cols)), dim=-1).repeat(t, 1)   # [N, 2]
        table = torch.outer(torch.arange(max(h, w), dtype=torch.float32), inv_freq)      # [max(h, w), hd/4]
        return table[rc].flatten(1)

    def window_layout(grid):
        """window_index over merged tokens and cu_window_seqlens in patches (one image, each frame apart)."""
        t, h, w = grid
        hm, wm = h // m, w // m
        index = torch.arange(t * hm * wm).view(t, hm, wm)
        pad_h = win - hm % win                                                        # a whole empty row of windows
        pad_w = win - wm % win                                                        # when already aligned
        nwh, nww = (hm + pad_h) // win, (wm + pad_w) // win
        padded = F.pad(index, (0, pad_w, 0, pad_h), value=-1)
        padded = padded.view(t, nwh, win, nww, win).permute(0, 1, 3, 2, 4).reshape(t, nwh * nww, win * win)
        valid = padded >= 0
        window_index = padded[valid]
        lengths = valid.sum(-1).reshape(-1) * g
        cu = torch.cat((torch.zeros(1, dtype=lengths.dtype), lengths.cumsum(0)))
        return window_index, torch.unique_consecutive(cu)                             # empty windows vanish

    def rotate_half(x):
        x1 = x[..., : x.shape[-1] // 2]
        x2 = x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def apply_rotary(x, cos, sin):
        xf = x.to(torch.float32)
        return (xf * cos + rotate_half(xf) * sin).to(dt)

    def segment_attention(q, k, v):
        """q, k, v [nh, L, hd] of one segment: eager attention, in head chunks when the scores would be large."""
        length = q.shape[1]
        chunk = max(1, min(nh, args.score_chunk_bytes // (length * length * 8)))
        outs = []
        for h0 in range(0, nh, chunk):
            qc, kc, vc = q[h0:h0 + chunk], k[h0:h0 + chunk], v[h0:h0 + chunk]
            scores = torch.matmul(qc, kc.transpose(1, 2)) * scale                      # [c, L, L], no mask
            probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(dt)
            outs.append(torch.matmul(probs, vc))
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def attention(x, B, cos, sin, cu_seqlens):
        n = x.shape[0]
        q = apply_rotary(F.linear(x, B["q_w"], B["q_b"]).view(n, nh, hd), cos, sin)
        k = apply_rotary(F.linear(x, B["k_w"], B["k_b"]).view(n, nh, hd), cos, sin)
        v = F.linear(x, B["v_w"], B["v_b"]).view(n, nh, hd)
        bounds = cu_seqlens.tolist()
        outs = []
        for s, e in zip(bounds[:-1], bounds[1:]):                                     # the reference's segment loop
            o = segment_attention(q[s:e].transpose(0, 1), k[s:e].transpose(0, 1), v[s:e].transpose(0, 1))
            outs.append(o.transpose(0, 1).reshape(e - s, D))
        return F.linear(torch.cat(outs), B["proj_w"], B["proj_b"])

    def encode_image(pixel_values, grid):
        t, h, w = grid
        n = t * h * w
        x = F.linear(pixel_values.to(dt), patch_w)                                    # [N, D], no bias
        angles = rotary_angles(grid)
        window_index, cu_window = window_layout(grid)
        cu_full = torch.tensor([0] + [h * w * (i + 1) for i in range(t)])             # one segment per frame
        # window order, moving whole merge blocks of g patches
        x = x.view(n // g, g, D)[window_index].reshape(n, D)
        angles = angles.view(n // g, g, -1)[window_index].reshape(n, -1)
        emb = torch.cat((angles, angles), dim=-1)                                     # [N, hd] fp32
        cos, sin = emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)                     # [N, 1, hd] for heads
        for j, B in enumerate(blocks):
            cu = cu_full if j in fullatt else cu_window
            x = x + attention(rms_norm(x, B["norm1"]), B, cos, sin, cu)
            y = rms_norm(x, B["norm2"])
            x = x + F.linear(F.silu(F.linear(y, B["gate_w"], B["gate_b"])) * F.linear(y, B["up_w"], B["up_b"]),
                             B["down_w"], B["down_b"])
        z = rms_norm(x, merger["ln_q"]).view(n // g, g * D)
        z = F.linear(F.gelu(F.linear(z, merger["fc0_w"], merger["fc0_b"])), merger["fc2_w"], merger["fc2_b"])
        return z[torch.argsort(window_index)]                                         # back to processor order

    return encode_image


def main(argv):
    args = parse_args(argv)

    torch = torch_eager.start_torch(args, emit, log)
    if torch is None:
        return 0
    import torch.nn.functional as F
    dt = torch.bfloat16
    P = args.patch
    m = args.merge
    g = m * m                                   # patches per merged token
    tp = args.temporal_patch

    # ---- the text decoder: torch_eager.py's ------------------------------------------------------------------------
    decode = torch_eager.build_decoder(torch, args, log)

    # ---- the vision encoder ------------------------------------------------------------------------------------------
    encode_image = build_vision_encoder(torch, args, log)

    # ---- preprocessing (thinker spec §6.1) ---------------------------------------------------------------------------
    def preprocess(image):
        """uint8 [H, W, 3] -> fp32 pixel_values [t*h*w, 1176] and the grid (t, h, w) in patches."""
        height, width = image.shape[0], image.shape[1]
        rh, rw = smart_resize(height, width, P * m, args.min_pixels, args.max_pixels)
        x = image.permute(2, 0, 1)                                                   # [3, H, W]
        if (rh, rw) != (height, width):
            # Not bit-exact with Pillow's uint8 bicubic; sizes that are multiples of 28 never come here.
            x = F.interpolate(x.unsqueeze(0).to(torch.float32), size=(rh, rw), mode="bicubic", align_corners=False,
                              antialias=True)[0].round().clamp(0, 255)
        x = normalize(torch, x)
        frames = x.unsqueeze(0).expand(tp, 3, rh, rw)                                 # one image = tp equal frames
        return patchify(frames, args)

    # ---- the document sequence and its TMRoPE positions (thinker spec §7, §8) --------------------------------------
    def document_ids(n_image):
        return ([ORDINARY] * args.head_tokens + [VISION_BOS] + [IMAGE] * n_image + [VISION_EOS]
                + [IM_END, NEWLINE])

    def embed_document(token_embeds, ids, image_rows, grid):
        mask = (torch.tensor(ids) == IMAGE).unsqueeze(-1).expand_as(token_embeds)
        x = token_embeds.masked_scatter(mask, image_rows.to(dt))
        return decode(x, tmrope_positions(torch, ids, [grid], m))

    # ---- measure ----------------------------------------------------------------------------------------------------
    version = torch.__version__
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for size in args.images:
            image = torch.randint(0, 256, (size, size, 3), dtype=torch.uint8, generator=gen)
            rh, rw = smart_resize(size, size, P * m, args.min_pixels, args.max_pixels)
            n_image = (rh // P) * (rw // P) // g
            ids = document_ids(n_image)
            # the embedding lookup costs nothing; random [S, hidden] bf16 rows stand in for it
            token_embeds = (torch.randn(len(ids), args.hidden, generator=gen) * 0.02).to(dt)
            log(f"image {size}: resized to {rh}x{rw}, {n_image * g} patches, {n_image} image tokens, "
                f"{len(ids)} tokens in all")

            def run():
                t0 = time.perf_counter()
                pixel_values, grid = preprocess(image)
                t1 = time.perf_counter()
                rows = encode_image(pixel_values, grid)
                t2 = time.perf_counter()
                out = embed_document(token_embeds, ids, rows, grid)
                t3 = time.perf_counter()
                return out, grid, (t1 - t0, t2 - t1, t3 - t2)

            out, grid, totals, (pre, vis, dec), peak = torch_eager.time_stages(
                torch, run, args.warmup, args.repeats, f"image {size}", ("preprocess", "vision", "decoder"), log)
            emit({"peer": PEER, "version": version, "dtype": "bf16", "image": size, "grid": list(grid),
                  "tokens": len(ids), "image_tokens": n_image, "threads": args.threads,
                  "layers": args.layers, "vision_depth": args.vision_depth,
                  "seconds_median": statistics.median(totals), "seconds_min": min(totals),
                  "seconds_max": max(totals), "seconds_all": totals,
                  "preprocess_seconds": statistics.median(pre), "vision_seconds": statistics.median(vis),
                  "decoder_seconds": statistics.median(dec), "peak_rss_bytes": peak})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
