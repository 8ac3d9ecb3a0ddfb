#!/usr/bin/env python3
"""PyTorch eager peer: one AUDIO document end to end on the Qwen2.5-Omni-3B shapes, bf16, random weights.

Written plainly, the way the Hugging Face reference computes it:
  1. the front end (thinker spec §6.3), as the WhisperFeatureExtractor's torch path computes it: a 16 kHz mono
     float32 signal zero-padded to max_length (2,048,000 samples, the embedding model card's 128 s), torch.stft
     (n_fft 400, hop 160, periodic Hann window, center=True with reflect padding), power |X|^2 with the last frame
     dropped, a Slaney mel filter bank of 128 filters, log10 with a 1e-10 floor, floor at (clip max) - 8,
     (x + 4) / 4; only the T = ceil(L / 160) valid frames are kept;
  2. the audio encoder (§5): chunks of 200 mel frames padded to the longest chunk and batched, conv1 + GELU (masked
     to the valid frames), conv2 (stride 2) + GELU, the sinusoid table added per chunk (positions restart at 0),
     32 pre-LN layers whose attention is restricted to each chunk by an additive block-diagonal mask over all
     chunks' tokens (the reference's eager path; `--audio-attention loop` loops over the chunks instead), average
     pooling by 2, ln_post and proj 1280 -> 2048;
  3. the text decoder of torch_eager.py over the chat sequence of a document (system/user head and "passage: ",
     <|audio_bos|>, the audio rows written over the <|AUDIO|> placeholders, <|audio_eos|>, 2 closing tokens), with
     sequential positions (§8.1), bidirectional attention, final norm, mean pooling and L2 normalisation.

Prints ONE JSON object per audio length on stdout; everything else goes to stderr. If torch cannot be imported it
prints {"peer": "pytorch-eager-audio", "skipped": "..."} and exits 0. Run it with Debian's interpreter
(/usr/bin/python3) after `apt-get install python3-torch`.
"""

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_eager  # noqa: E402  (imports no torch at module level)

PEER = "pytorch-eager-audio"

# token ids (thinker spec §1.4 and §7.1)
IM_END = 151645
NEWLINE = 198
AUDIO = 151646
AUDIO_BOS = 151647
AUDIO_EOS = 151648
ORDINARY = 1000  # any ordinary id: the head's token embeddings are random anyway

positive_int = torch_eager.positive_int
non_negative_int = torch_eager.non_negative_int


def emit(obj):
    torch_eager.emit(dict(obj, peer=PEER))


def log(msg):
    sys.stderr.write(f"[torch_audio] {msg}\n")
    sys.stderr.flush()


def parse_seconds_list(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not (v > 0) or math.isinf(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of positive durations in seconds, "
                                         f"got '{text}'")
    return values


def fmt_seconds(v):
    """10.0 -> 10 in the JSON and the log; 2.5 stays 2.5."""
    return int(v) if float(v).is_integer() else v


def audio_token_count(frames):
    """<|AUDIO|> placeholders for T valid mel frames (thinker spec §5.5, §6.3): ((T - 1)//2 + 1 - 2)//2 + 1."""
    return ((frames - 1) // 2 + 1 - 2) // 2 + 1


def add_audio_args(p):
    """The front end's and the audio encoder's options (defaults: the 3B and the embedding model card).
    torch_video.py shares them."""
    # the front end (defaults: the Omni WhisperFeatureExtractor settings, max_length from the embedding model card)
    p.add_argument("--sample-rate", type=positive_int, default=16000)
    p.add_argument("--max-samples", type=positive_int, default=2048000,
                   help="the clip is zero-padded to this many samples (default 2,048,000 = 128 s)")
    p.add_argument("--n-fft", type=positive_int, default=400)
    p.add_argument("--hop", type=positive_int, default=160)
    p.add_argument("--mel-bins", type=positive_int, default=128)
    # the audio encoder (defaults: the 3B, thinker spec §1.3)
    p.add_argument("--audio-layers", type=positive_int, default=32)
    p.add_argument("--audio-hidden", type=positive_int, default=1280)
    p.add_argument("--audio-heads", type=positive_int, default=20)
    p.add_argument("--audio-ffn", type=positive_int, default=5120)
    p.add_argument("--n-window", type=positive_int, default=100,
                   help="half the chunk length in mel frames (default 100: chunks of 200 frames = 2 s)")
    p.add_argument("--max-source-positions", type=positive_int, default=1500,
                   help="rows of the sinusoid position table (default 1500)")
    p.add_argument("--audio-attention", choices=("mask", "loop"), default="mask",
                   help="mask (default): one attention over all the audio's tokens with an additive block-diagonal "
                        "mask, as the reference's eager path; loop: one attention per chunk")


def check_audio_args(p, args):
    """Validates the options of add_audio_args (not the lengths)."""
    if args.audio_hidden % args.audio_heads != 0:
        p.error(f"--audio-hidden {args.audio_hidden} is not a multiple of --audio-heads {args.audio_heads}")
    if args.audio_hidden % 2 != 0:
        p.error("--audio-hidden must be even (sin and cos halves of the position table)")
    if args.n_fft % 2 != 0:
        p.error("--n-fft must be even")
    chunk = 2 * args.n_window
    if (chunk - 1) // 2 + 1 > args.max_source_positions:
        p.error(f"a chunk of {chunk} frames needs {(chunk - 1) // 2 + 1} positions, more than "
                f"--max-source-positions {args.max_source_positions}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio-seconds", type=parse_seconds_list, default=[10.0, 30.0, 128.0],
                   help="comma-separated audio lengths in seconds (default 10,30,128; at most --max-samples)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--repeats", type=positive_int, default=3, help="timed runs per audio length")
    p.add_argument("--warmup", type=non_negative_int, default=1, help="untimed runs per audio length")
    p.add_argument("--head-tokens", type=positive_int, default=17,
                   help="text tokens before <|audio_bos|> (default 17: the default system turn, '<|im_start|>user\\n' "
                        "and 'passage: ')")
    # the text decoder (defaults: the 3B); its hidden size is also the audio projection's output size
    torch_eager.add_decoder_args(p)
    add_audio_args(p)
    p.add_argument("--score-chunk-bytes", type=positive_int, default=1 << 30,
                   help="masked attention is done a few heads at a time when its scores (bf16 + fp32 + bf16 "
                        "probabilities) would exceed this budget (default 1 GiB); the arithmetic is the same")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch_eager.check_decoder_args(p, args)
    check_audio_args(p, args)
    for s in args.audio_seconds:
        n = int(round(s * args.sample_rate))
        if n > args.max_samples:
            p.error(f"--audio-seconds {fmt_seconds(s)} is {n} samples, more than --max-samples {args.max_samples}")
        if n <= args.n_fft // 2 or audio_token_count(-(-n // args.hop)) < 1:
            p.error(f"--audio-seconds {fmt_seconds(s)} is too short to give an audio token")
    return args


def build_frontend(torch, args):
    """Returns frontend(signal): float32 [L] samples at 16 kHz -> float32 [n_mel, T] log-mel features of the
    T = ceil(L / hop) valid frames (thinker spec §6.3, the WhisperFeatureExtractor's torch path)."""
    import torch.nn.functional as F
    n_mel = args.mel_bins

    def mel_filter_bank():
        """Slaney-normalised Slaney-scale triangles, built in float64 and used as float32: [n_fft/2 + 1, n_mel]."""
        log_step = 27.0 / math.log(6.4)                 # mel per e-fold above 1 kHz

        def hz_to_mel(f):
            return torch.where(f < 1000.0, 3.0 * f / 200.0,
                               15.0 + torch.log(torch.clamp(f, min=1000.0) / 1000.0) * log_step)

        def mel_to_hz(mel):
            return torch.where(mel < 15.0, 200.0 * mel / 3.0,
                               1000.0 * torch.exp((torch.clamp(mel, min=15.0) - 15.0) / log_step))

        n_bins = args.n_fft // 2 + 1
        nyquist = torch.tensor([args.sample_rate / 2.0], dtype=torch.float64)
        bin_hz = torch.linspace(0.0, args.sample_rate / 2.0, n_bins, dtype=torch.float64)
        edges = mel_to_hz(torch.linspace(0.0, float(hz_to_mel(nyquist)[0]), n_mel + 2, dtype=torch.float64))
        lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]                                # [n_mel] each
        rising = (bin_hz.unsqueeze(1) - lo) / (mid - lo)                                 # [n_bins, n_mel]
        falling = (hi - bin_hz.unsqueeze(1)) / (hi - mid)
        tri = torch.clamp(torch.minimum(rising, falling), min=0.0)
        return (tri * (2.0 / (hi - lo))).to(torch.float32)

    mel_t = mel_filter_bank().t().contiguous()                                          # [n_mel, n_bins] fp32
    window = torch.hann_window(args.n_fft, periodic=True, dtype=torch.float32)

    def frontend(signal):
        """float32 [L] samples -> float32 [n_mel, T] log-mel features of the T = ceil(L / hop) valid frames."""
        n = signal.shape[0]
        clip = F.pad(signal, (0, args.max_samples - n))                                 # padding="max_length"
        spec = torch.stft(clip, args.n_fft, hop_length=args.hop, window=window, center=True, pad_mode="reflect",
                          return_complex=True)                                          # [n_bins, frames + 1]
        power = spec[:, :-1].abs() ** 2                                                 # the last frame dropped
        log_spec = torch.clamp(mel_t @ power, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)                        # max over the whole clip
        features = (log_spec + 4.0) / 4.0
        frames = -(-n // args.hop)                                                      # the attention mask's count
        return features[:, :frames]

    return frontend


def build_audio_encoder(torch, args, log):
    """Allocates the audio tower's random bf16 weights and returns encode_audio(features): float32 [n_mel, T]
    valid log-mel frames -> bf16 [audio tokens, hidden] decoder rows (thinker spec §5). Call
    torch.manual_seed before it for reproducible weights."""
    import torch.nn.functional as F
    dt = torch.bfloat16

    # ---- audio weights (random) -------------------------------------------------------------------------------------
    D = args.audio_hidden
    nh = args.audio_heads
    hd = D // nh
    I = args.audio_ffn
    n_mel = args.mel_bins
    out_dim = args.hidden                       # 2048: proj writes decoder rows
    chunk = 2 * args.n_window                   # mel frames per chunk (200)
    scale = 1.0 / math.sqrt(hd)                 # 1/8

    t0 = time.perf_counter()
    rand = torch_eager.random_source(torch, dt, max(I * D, D * D * 3, out_dim * D, D * n_mel * 3) + 4096)

    def ones(n):
        return torch.ones(n, dtype=dt)

    conv1_w, conv1_b = rand(D, n_mel, 3), rand(D)
    conv2_w, conv2_b = rand(D, D, 3), rand(D)
    layers = []
    for _ in range(args.audio_layers):
        layers.append({
            "ln1_w": ones(D), "ln1_b": rand(D),
            "q_w": rand(D, D), "q_b": rand(D),
            "k_w": rand(D, D),                  # no bias
            "v_w": rand(D, D), "v_b": rand(D),
            "o_w": rand(D, D), "o_b": rand(D),
            "ln2_w": ones(D), "ln2_b": rand(D),
            "fc1_w": rand(I, D), "fc1_b": rand(I),
            "fc2_w": rand(D, I), "fc2_b": rand(D),
        })
    ln_post_w, ln_post_b = ones(D), rand(D)
    proj_w, proj_b = rand(out_dim, D), rand(out_dim)
    del rand  # frees the pool
    log(f"audio weights ready in {time.perf_counter() - t0:.1f} s ({args.audio_layers} layers, hidden {D}, "
        f"heads {nh}x{hd}, ffn {I}, attention: {args.audio_attention})")

    # the sinusoid table (§5.3, not in the checkpoint): sin half then cos half, fp32
    half = D // 2
    inc = math.log(10000.0) / (half - 1)
    inv = torch.exp(-inc * torch.arange(half, dtype=torch.float32))
    angles = torch.arange(args.max_source_positions, dtype=torch.float32).unsqueeze(1) * inv.unsqueeze(0)
    pos_table = torch.cat((torch.sin(angles), torch.cos(angles)), dim=1)             # [1500, D]

    # ---- the encoder, as the reference writes it ------------------------------------------------------------------
    def layer_norm(x, w, b):
        return F.layer_norm(x, (D,), w, b, 1e-5)

    def heads_attention(q, k, v, mask):
        """q, k, v [nh, n, hd]: q.k^T * scale (+ mask), softmax in fp32, cast to bf16, .v; heads in chunks when
        the scores would be large."""
        n = q.shape[1]
        step = max(1, min(nh, args.score_chunk_bytes // (n * n * 8)))
        outs = []
        for h0 in range(0, nh, step):
            scores = torch.matmul(q[h0:h0 + step], k[h0:h0 + step].transpose(1, 2)) * scale
            if mask is not None:
                scores = scores + mask
            probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(dt)
            outs.append(torch.matmul(probs, v[h0:h0 + step]))
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def attention(x, L, mask, bounds):
        n = x.shape[0]
        q = F.linear(x, L["q_w"], L["q_b"]).view(n, nh, hd).transpose(0, 1)            # [nh, n, hd]
        k = F.linear(x, L["k_w"]).view(n, nh, hd).transpose(0, 1)
        v = F.linear(x, L["v_w"], L["v_b"]).view(n, nh, hd).transpose(0, 1)
        if mask is not None:                                                            # the reference's eager path
            o = heads_attention(q, k, v, mask)
        else:                                                                           # one chunk at a time
            o = torch.cat([heads_attention(q[:, s:e], k[:, s:e], v[:, s:e], None)
                           for s, e in zip(bounds[:-1], bounds[1:])], dim=1)
        return F.linear(o.transpose(0, 1).reshape(n, D), L["o_w"], L["o_b"])

    def encode_audio(features):
        """float32 [n_mel, T] -> bf16 [audio tokens, out_dim]."""
        frames = features.shape[1]
        x = features.to(dt)                                                             # input_features in bf16
        n_chunks = -(-frames // chunk)
        lengths = [chunk] * (n_chunks - 1) + [frames - chunk * (n_chunks - 1)]
        longest = max(lengths)
        # chunks padded on the right to the longest one and batched
        batch = torch.zeros(n_chunks, n_mel, longest, dtype=dt)
        for i, (piece, length) in enumerate(zip(x.split(lengths, dim=1), lengths)):
            batch[i, :, :length] = piece
        lens = torch.tensor(lengths)
        valid = (torch.arange(longest).unsqueeze(0) < lens.unsqueeze(1)).unsqueeze(1).to(dt)   # [n, 1, longest]
        lens_after = (lens - 1) // 2 + 1
        valid_after = torch.arange((longest - 1) // 2 + 1).unsqueeze(0) < lens_after.unsqueeze(1)
        h = F.gelu(F.conv1d(batch, conv1_w, conv1_b, padding=1)) * valid
        h = F.gelu(F.conv1d(h, conv2_w, conv2_b, stride=2, padding=1)).transpose(1, 2)   # [n, m, D]
        h = h + pos_table[:h.shape[1]].to(dt).unsqueeze(0)                              # positions restart per chunk
        h = h[valid_after]                                                              # [M, D], the valid rows
        n_rows = h.shape[0]
        bounds = [0] + torch.cumsum(lens_after, 0).tolist()
        mask = None
        if args.audio_attention == "mask":
            # additive block-diagonal mask over all the audio's tokens, built once per forward pass
            mask = torch.full((n_rows, n_rows), torch.finfo(dt).min, dtype=dt)
            for s, e in zip(bounds[:-1], bounds[1:]):
                mask[s:e, s:e] = 0
        for L in layers:
            h = h + attention(layer_norm(h, L["ln1_w"], L["ln1_b"]), L, mask, bounds)
            h = h + F.linear(F.gelu(F.linear(layer_norm(h, L["ln2_w"], L["ln2_b"]), L["fc1_w"], L["fc1_b"])),
                             L["fc2_w"], L["fc2_b"])
        h = F.avg_pool1d(h.t().unsqueeze(0), kernel_size=2, stride=2)[0].t()            # [M // 2, D]
        return F.linear(layer_norm(h, ln_post_w, ln_post_b), proj_w, proj_b)

    return encode_audio


def main(argv):
    args = parse_args(argv)

    torch = torch_eager.start_torch(args, emit, log)
    if torch is None:
        return 0
    dt = torch.bfloat16
    chunk = 2 * args.n_window                   # mel frames per encoder chunk (200)

    # ---- the text decoder: torch_eager.py's ------------------------------------------------------------------------
    decode = torch_eager.build_decoder(torch, args, log)

    # ---- the front end and the audio encoder ------------------------------------------------------------------------
    frontend = build_frontend(torch, args)
    encode_audio = build_audio_encoder(torch, args, log)

    # ---- the document sequence (thinker spec §7, §8.1) ---------------------------------------------------------------
    def document_ids(n_audio):
        return ([ORDINARY] * args.head_tokens + [AUDIO_BOS] + [AUDIO] * n_audio + [AUDIO_EOS]
                + [IM_END, NEWLINE])

    def embed_document(token_embeds, ids, audio_rows):
        mask = (torch.tensor(ids) == AUDIO).unsqueeze(-1).expand_as(token_embeds)
        x = token_embeds.masked_scatter(mask, audio_rows.to(dt))
        seq = len(ids)
        positions = torch.arange(seq, dtype=torch.int64).unsqueeze(0).expand(3, seq)   # audio only: sequential
        return decode(x, positions)

    def test_signal(n, gen):
        """A deterministic linear chirp from 100 Hz to 4 kHz over the clip at amplitude 0.5, plus a little noise."""
        t = torch.arange(n, dtype=torch.float64) / args.sample_rate
        duration = n / args.sample_rate
        f0, f1 = 100.0, 4000.0
        phase = 2.0 * math.pi * (f0 * t + (f1 - f0) * t * t / (2.0 * duration))
        noise = torch.randn(n, generator=gen, dtype=torch.float64) * 0.01
        return (0.5 * torch.sin(phase) + noise).to(torch.float32)

    # ---- measure ----------------------------------------------------------------------------------------------------
    version = torch.__version__
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for seconds in args.audio_seconds:
            label = f"audio {fmt_seconds(seconds)} s"
            n_samples = int(round(seconds * args.sample_rate))
            signal = test_signal(n_samples, gen)
            frames = -(-n_samples // args.hop)
            n_chunks = -(-frames // chunk)
            n_audio = audio_token_count(frames)
            ids = document_ids(n_audio)
            # the embedding lookup costs nothing; random [S, hidden] bf16 rows stand in for it
            token_embeds = (torch.randn(len(ids), args.hidden, generator=gen) * 0.02).to(dt)
            log(f"{label}: {n_samples} samples, {frames} mel frames in {n_chunks} chunks, "
                f"{(frames - 1) // 2 + 1} encoder rows, {n_audio} audio tokens, {len(ids)} tokens in all")

            def run():
                t0 = time.perf_counter()
                features = frontend(signal)
                t1 = time.perf_counter()
                rows = encode_audio(features)
                t2 = time.perf_counter()
                if rows.shape[0] != n_audio:
                    raise RuntimeError(f"the encoder gave {rows.shape[0]} rows for {n_audio} placeholders")
                out = embed_document(token_embeds, ids, rows)
                t3 = time.perf_counter()
                return out, features, (t1 - t0, t2 - t1, t3 - t2)

            out, features, totals, (fe, enc, dec), peak = torch_eager.time_stages(
                torch, run, args.warmup, args.repeats, label, ("front end", "audio encoder", "decoder"), log)
            log(f"{label}: features [{features.shape[0]}, {features.shape[1]}] in "
                f"[{float(features.min()):.3f}, {float(features.max()):.3f}]")
            emit({"peer": PEER, "version": version, "dtype": "bf16", "audio_seconds": fmt_seconds(seconds),
                  "audio_samples": n_samples, "mel_frames": frames, "audio_chunks": n_chunks,
                  "tokens": len(ids), "audio_tokens": n_audio, "threads": args.threads,
                  "layers": args.layers, "audio_layers": args.audio_layers,
                  "audio_attention": args.audio_attention,
                  "seconds_median": statistics.median(totals), "seconds_min": min(totals),
                  "seconds_max": max(totals), "seconds_all": totals,
                  "frontend_seconds": statistics.median(fe), "audio_encoder_seconds": statistics.median(enc),
                  "decoder_seconds": statistics.median(dec), "peak_rss_bytes": peak})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
