#!/usr/bin/env python3
"""PyTorch eager peer: the Qwen2.5-Omni-3B text decoder, bidirectional, bf16, random weights.

Written plainly, the way the Hugging Face reference code computes it: RMSNorm with fp32 statistics, F.linear with
q/k/v biases, M-RoPE with text positions (all three position rows equal), matmul + softmax attention over K/V
repeated per head group with no mask, SwiGLU MLP, final norm, mean pooling and L2 normalisation.

Prints ONE JSON object per token count on stdout; everything else goes to stderr. If torch cannot be imported it
prints {"peer": "pytorch-eager", "skipped": "..."} and exits 0. Run it with Debian's interpreter (/usr/bin/python3)
after `apt-get install python3-torch`.
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

PEER = "pytorch-eager"


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(msg):
    sys.stderr.write(f"[torch_eager] {msg}\n")
    sys.stderr.flush()


def parse_int_list(text):
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of positive integers, got '{text}'")
    return values


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got '{text}'")
    return value


def add_decoder_args(p):
    """The decoder's shape options (defaults: the 3B). torch_vision.py shares them."""
    p.add_argument("--layers", type=positive_int, default=36)
    p.add_argument("--hidden", type=positive_int, default=2048)
    p.add_argument("--heads", type=positive_int, default=16)
    p.add_argument("--kv-heads", type=positive_int, default=2)
    p.add_argument("--ffn", type=positive_int, default=11008)
    p.add_argument("--rope-theta", type=float, default=1000000.0)
    p.add_argument("--rms-eps", type=float, default=1e-6)
    p.add_argument("--mrope-section", default="16,24,24",
                   help="M-RoPE split of head_dim/2 over the (temporal, height, width) rows (default 16,24,24)")


def check_decoder_args(p, args):
    """Validates the options of add_decoder_args; turns --mrope-section into a list."""
    if args.hidden % args.heads != 0:
        p.error(f"--hidden {args.hidden} is not a multiple of --heads {args.heads}")
    if args.heads % args.kv_heads != 0:
        p.error(f"--heads {args.heads} is not a multiple of --kv-heads {args.kv_heads}")
    head_dim = args.hidden // args.heads
    if head_dim % 2 != 0:
        p.error(f"head dimension {head_dim} must be even")
    try:
        args.mrope_section = parse_int_list(args.mrope_section)
    except (ValueError, argparse.ArgumentTypeError) as e:
        p.error(f"--mrope-section: {e}")
    if sum(args.mrope_section) != head_dim // 2:
        p.error(f"--mrope-section {args.mrope_section} must sum to head_dim/2 = {head_dim // 2}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=parse_int_list, default=[16, 128, 512, 2048],
                   help="comma-separated sequence lengths (default 16,128,512,2048)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--repeats", type=positive_int, default=3, help="timed runs per token count")
    p.add_argument("--warmup", type=non_negative_int, default=1, help="untimed runs per token count")
    add_decoder_args(p)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    check_decoder_args(p, args)
    return args


def time_stages(torch, run, warmup, repeats, label, stage_names, log_line):
    """The media peers' timing loop: run() returns (embedding, extra, seconds of each stage); it is called `warmup`
    times, then `repeats` timed times, each logged with log_line. Checks the last embedding and returns it with the
    last extra, the totals, the per-stage lists and the process's peak RSS in bytes."""
    def parts_text(parts):
        return ", ".join(f"{name} {t:.3f}" for name, t in zip(stage_names, parts))

    for i in range(warmup):
        _, _, parts = run()
        log_line(f"{label}: warm-up {i + 1}/{warmup} {sum(parts):.3f} s ({parts_text(parts)})")
    totals, stages = [], [[] for _ in stage_names]
    for i in range(repeats):
        out, extra, parts = run()
        for lst, t in zip(stages, parts):
            lst.append(t)
        totals.append(sum(parts))
        log_line(f"{label}: run {i + 1}/{repeats} {totals[-1]:.3f} s ({parts_text(parts)})")
    norm = float(out.norm())
    finite = bool(torch.isfinite(out).all())
    log_line(f"{label}: embedding dim {out.numel()}, norm {norm:.6f}, finite {finite}")
    if not finite:
        log_line(f"{label}: warning: the embedding has non-finite values")
    # ru_maxrss is in KiB on Linux: the peak of the whole process so far (weights included)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out, extra, totals, stages, peak


def random_source(torch, dt, pool_n):
    """rand(*shape): a bf16 tensor of that shape with its own memory, cut from one random pool of pool_n values.

    Every tensor owns distinct memory (as a real model's do), but filling billions of values with randn would take
    longer than the benchmark. Values do not affect speed. Each call shifts the window so that neighbours differ.
    """
    pool = (torch.randn(pool_n, dtype=torch.float32) * 0.02).to(dt)
    cursor = [0]

    def rand(*shape):
        n = math.prod(shape)
        start = cursor[0] % (pool_n - n + 1)
        cursor[0] += 7919
        return pool[start:start + n].view(*shape).clone()

    return rand


def build_decoder(torch, args, log):
    """Allocates the decoder's random bf16 weights and returns embed(inputs_embeds, positions=None).

    embed takes the [S, hidden] bf16 input embeddings and, optionally, the [3, S] M-RoPE position rows (temporal,
    height, width; text positions 0..S-1 on all three rows when omitted), and returns the L2-normalised mean-pooled
    fp32 embedding. torch_vision.py reuses it. Call torch.manual_seed before it for reproducible weights.
    """
    import torch.nn.functional as F

    dt = torch.bfloat16
    H = args.hidden
    nh = args.heads
    nkv = args.kv_heads
    hd = H // nh
    groups = nh // nkv

    # ---- random weights -------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    rand = random_source(torch, dt, max(args.ffn * H, H * H) + 4096)

    def ones(n):
        return torch.ones(n, dtype=dt)

    layers = []
    for _ in range(args.layers):
        layers.append({
            "in_norm": ones(H),
            "q_w": rand(nh * hd, H), "q_b": rand(nh * hd),
            "k_w": rand(nkv * hd, H), "k_b": rand(nkv * hd),
            "v_w": rand(nkv * hd, H), "v_b": rand(nkv * hd),
            "o_w": rand(H, nh * hd),
            "post_norm": ones(H),
            "gate_w": rand(args.ffn, H), "up_w": rand(args.ffn, H), "down_w": rand(H, args.ffn),
        })
    final_norm = ones(H)
    del rand  # frees the pool
    log(f"weights ready in {time.perf_counter() - t0:.1f} s "
        f"({args.layers} layers, hidden {H}, heads {nh}/{nkv}, ffn {args.ffn})")

    # ---- the decoder, as the reference writes it ------------------------------------------------------------------
    def rms_norm(x, w):
        in_dtype = x.dtype
        x = x.to(torch.float32)
        var = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + args.rms_eps)
        return w * x.to(in_dtype)

    inv_freq = 1.0 / (args.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))

    def mrope_cos_sin(positions):
        pos = positions.to(torch.float32)                                               # [3, S]
        freqs = pos.unsqueeze(-1) * inv_freq.view(1, 1, -1)                           # [3, S, hd/2]
        emb = torch.cat((freqs, freqs), dim=-1)                                        # [3, S, hd]
        cos, sin = emb.cos().to(dt), emb.sin().to(dt)
        sections = args.mrope_section * 2
        cos = torch.cat([c[i % 3] for i, c in enumerate(cos.split(sections, dim=-1))], dim=-1)  # [S, hd]
        sin = torch.cat([s[i % 3] for i, s in enumerate(sin.split(sections, dim=-1))], dim=-1)
        return cos.unsqueeze(0), sin.unsqueeze(0)                                       # [1, S, hd] for heads

    def rotate_half(x):
        x1 = x[..., : x.shape[-1] // 2]
        x2 = x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def repeat_kv(x):
        n, s, d = x.shape
        if groups == 1:
            return x
        return x[:, None, :, :].expand(n, groups, s, d).reshape(n * groups, s, d)

    def layer_forward(x, L, cos, sin):
        S = x.shape[0]
        h = rms_norm(x, L["in_norm"])
        q = F.linear(h, L["q_w"], L["q_b"]).view(S, nh, hd).transpose(0, 1)     # [nh, S, hd]
        k = F.linear(h, L["k_w"], L["k_b"]).view(S, nkv, hd).transpose(0, 1)    # [nkv, S, hd]
        v = F.linear(h, L["v_w"], L["v_b"]).view(S, nkv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = repeat_kv(k)
        v = repeat_kv(v)
        scores = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(hd)              # [nh, S, S], no mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(dt)
        attn = torch.matmul(probs, v).transpose(0, 1).reshape(S, nh * hd)
        x = x + F.linear(attn, L["o_w"])
        h = rms_norm(x, L["post_norm"])
        x = x + F.linear(F.silu(F.linear(h, L["gate_w"])) * F.linear(h, L["up_w"]), L["down_w"])
        return x

    def embed(inputs_embeds, positions=None):
        seq = inputs_embeds.shape[0]
        if positions is None:
            # text positions: the temporal, height and width rows are all 0..S-1
            positions = torch.arange(seq, dtype=torch.float32).unsqueeze(0).expand(3, seq)
        cos, sin = mrope_cos_sin(positions)
        x = inputs_embeds
        for L in layers:
            x = layer_forward(x, L, cos, sin)
        x = rms_norm(x, final_norm)
        pooled = x.to(torch.float32).mean(dim=0)
        return pooled / pooled.norm().clamp_min(1e-12)

    return embed


def start_torch(args, emit_line, log_line):
    """Imports torch and sets threads and seed; returns None after printing the "skipped" line when torch cannot
    be imported (the peers then exit 0)."""
    # The bf16 matmuls go to oneDNN (OpenMP); nothing here runs on OpenBLAS, but keep its pool from spinning.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install raising anything else
        emit_line({"peer": PEER, "skipped": f"cannot import torch with {sys.executable}: {e}"})
        return None
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    log_line(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
             f"mkldnn={torch.backends.mkldnn.is_available()}")
    return torch


def main(argv):
    args = parse_args(argv)

    torch = start_torch(args, emit, log)
    if torch is None:
        return 0
    dt = torch.bfloat16
    H = args.hidden
    embed = build_decoder(torch, args, log)

    # ---- measure --------------------------------------------------------------------------------------------------
    version = torch.__version__
    with torch.no_grad():
        for seq in args.tokens:
            # the embedding lookup costs nothing; random [S, hidden] bf16 token embeddings stand in for it
            x = (torch.randn(seq, H, dtype=torch.float32) * 0.02).to(dt)
            for i in range(args.warmup):
                t = time.perf_counter()
                out = embed(x)
                log(f"tokens {seq}: warm-up {i + 1}/{args.warmup} {time.perf_counter() - t:.3f} s")
            times = []
            for i in range(args.repeats):
                t = time.perf_counter()
                out = embed(x)
                times.append(time.perf_counter() - t)
                log(f"tokens {seq}: run {i + 1}/{args.repeats} {times[-1]:.3f} s")
            if not bool(torch.isfinite(out).all()):
                log(f"tokens {seq}: warning: the embedding has non-finite values")
            # ru_maxrss is in KiB on Linux: the peak of the whole process so far (weights included)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            emit({"peer": PEER, "version": version, "dtype": "bf16", "tokens": seq, "threads": args.threads,
                  "seconds_median": statistics.median(times), "seconds_all": times, "peak_rss_bytes": peak})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
