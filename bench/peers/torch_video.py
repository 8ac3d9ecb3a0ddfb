#!/usr/bin/env python3
"""PyTorch eager peer: one VIDEO document with its sound, end to end, on the Qwen2.5-Omni-3B shapes, bf16, random
weights.

The input is a real file: the 640x360, 25 fps H.264 + AAC test clip that `omni-embed-bench` also makes (the same
ffmpeg command), written once per length into a temporary folder before timing. Timed, as a user of the reference
pays it (thinker spec §6.2, §6.3, §7.3, §8; embedding spec §2):
  1. decode (the "decode" stage: everything before the model):
     - frames: the ffmpeg CLI (with --threads decoder threads) pipes rgb24 frames of the whole stream; decord and
       torchvision, the reference's readers, are not used here; the frame count and rate come from ffprobe, as
       decord reads them from the container. Then qwen-omni-utils' sampling at fps 2 (even count, float32
       linspace indices rounded half to even), its first resize to its own per-frame budget (smart_resize to
       100,352..602,112 px: 364x644) with torch's antialiased bicubic on the float frames, clamped and rounded to
       uint8 as torchvision does; then the processor's second resize to the
       model card's budget (smart_resize to 6,272..50,176 px: 168x280) with Pillow's bicubic on uint8, frame by
       frame (`--second-resize torch` uses torch's antialiased bicubic instead); rescale 1/255, CLIP mean/std and
       patchify into [t*12*20, 1176] rows (t = frames/2);
     - sound: the ffmpeg CLI decodes the track to 16 kHz mono float32 (the reference's librosa.load resamples
       with soxr; ffmpeg's own resampler and downmix stand in for it here), truncated to max_length (2,048,000
       samples), then the log-mel front end of torch_audio.py;
  2. the vision tower of torch_vision.py on the video grid (t, 12, 20): windows and full attention per temporal
     slice, 60 merged tokens per slice;
  3. the audio tower of torch_audio.py on the clip;
  4. the text decoder of torch_eager.py over the document's chat sequence (--head-tokens text tokens, the media
     block, <|im_end|> and a newline; random rows stand in for the token embeddings, the towers' rows are
     masked_scatter'ed over the placeholders), with TMRoPE positions (1.0 s per temporal grid, the processor's
     default):
     - separate (the released recipe, use_audio_in_video false): <|vision_bos|> <|VIDEO|>*60t <|vision_eos|>
       <|audio_bos|> <|AUDIO|>*A <|audio_eos|>; video T = base + 25*ti, H = base + y, W = base + x, the
       vision_eos at base + max(25*(t-1), 5, 9) + 1, the audio sequential after it;
     - interleaved (use_audio_in_video true): <|vision_bos|><|audio_bos|>, then per 2 s chunk the video tokens of
       2 temporal slices and 50 audio tokens (leftover chunks alone), <|audio_eos|><|vision_eos|>; both bos at b,
       media from b+1, both eos at (max of the last chunk) + 1;
     bidirectional attention, final norm, mean pooling and L2 normalisation.

Prints ONE JSON object per (video length, fusion) on stdout; everything else goes to stderr. If torch (or numpy,
Pillow, ffmpeg) cannot be had it prints {"peer": "pytorch-eager-video", "skipped": "..."} and exits 0. Run it with
Debian's interpreter (/usr/bin/python3) after `apt-get install python3-torch`.
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_eager  # noqa: E402  (none of the three imports torch at module level)
import torch_vision  # noqa: E402
import torch_audio  # noqa: E402

PEER = "pytorch-eager-video"
REFERENCE_DIR = torch_vision.REFERENCE_DIR

# token ids (thinker spec §1.4 and §7.1)
VIDEO = 151656
IM_END, NEWLINE, ORDINARY = torch_vision.IM_END, torch_vision.NEWLINE, torch_vision.ORDINARY
VISION_BOS, VISION_EOS = torch_vision.VISION_BOS, torch_vision.VISION_EOS
AUDIO, AUDIO_BOS, AUDIO_EOS = torch_audio.AUDIO, torch_audio.AUDIO_BOS, torch_audio.AUDIO_EOS
POSITION_ID_PER_SECONDS = 25                    # TMRoPE: 25 positions per second
SECONDS_PER_CHUNK = 2                           # interleaving: 2 s chunks = 50 positions

positive_int = torch_eager.positive_int
non_negative_int = torch_eager.non_negative_int
parse_int_list = torch_eager.parse_int_list
audio_token_count = torch_audio.audio_token_count


def emit(obj):
    torch_eager.emit(dict(obj, peer=PEER))


def log(msg):
    sys.stderr.write(f"[torch_video] {msg}\n")
    sys.stderr.flush()


def parse_fusion_list(text):
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values or any(v not in ("separate", "interleaved") for v in values):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of separate and interleaved, got '{text}'")
    return values


def positive_float(text):
    value = float(text)
    if not (value > 0) or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'")
    return value


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video-seconds", type=parse_int_list, default=[10, 60],
                   help="comma-separated lengths in whole seconds of the test clip (default 10,60)")
    p.add_argument("--fusion", type=parse_fusion_list, default=["separate", "interleaved"],
                   help="comma-separated layouts of the video and its audio: separate (the released recipe), "
                        "interleaved (use_audio_in_video; default: both)")
    p.add_argument("--threads", type=positive_int, default=2,
                   help="torch threads, and the ffmpeg decoder's threads (default 2)")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed runs per (length, fusion)")
    p.add_argument("--warmup", type=non_negative_int, default=1, help="untimed runs per (length, fusion)")
    p.add_argument("--head-tokens", type=positive_int, default=17,
                   help="text tokens before <|vision_bos|> (default 17: the default system turn, '<|im_start|>user\\n' "
                        "and 'passage: ')")
    # the text decoder (defaults: the 3B); its hidden size is also the merger's and the audio projection's output
    torch_eager.add_decoder_args(p)
    # the vision encoder and the patching (defaults: the 3B, thinker spec §1.2)
    torch_vision.add_vision_args(p)
    # the video sampling and the two resizes (defaults: qwen-omni-utils and the embedding model card)
    p.add_argument("--fps", type=positive_float, default=2.0, help="frames sampled per second of video (default 2)")
    p.add_argument("--min-frames", type=positive_int, default=4)
    p.add_argument("--max-frames", type=positive_int, default=768)
    p.add_argument("--fetch-min-pixels", type=positive_int, default=100352,
                   help="qwen-omni-utils' per-frame minimum for the first resize (default 100,352 = 128*28*28)")
    p.add_argument("--fetch-max-pixels", type=positive_int, default=602112,
                   help="qwen-omni-utils' per-frame maximum for the first resize (default 602,112 = 768*28*28)")
    p.add_argument("--total-pixels", type=positive_int, default=90316800,
                   help="qwen-omni-utils' pixel budget over all frames (default 90,316,800)")
    p.add_argument("--video-min-pixels", type=positive_int, default=6272,
                   help="the processor's per-frame minimum (default 6,272, the model card's)")
    p.add_argument("--video-max-pixels", type=positive_int, default=50176,
                   help="the processor's per-frame maximum (default 50,176, the model card's)")
    p.add_argument("--second-resize", choices=("pillow", "torch"), default="pillow",
                   help="the processor's resize: Pillow's uint8 bicubic per frame (default, as the slow processor) "
                        "or torch's antialiased bicubic on all frames at once")
    # the front end and the audio encoder (defaults: the 3B and the embedding model card)
    torch_audio.add_audio_args(p)
    p.add_argument("--score-chunk-bytes", type=positive_int, default=1 << 30,
                   help="attention is done a few heads at a time when its scores (bf16 + fp32 + bf16 "
                        "probabilities) would exceed this budget (default 1 GiB); the arithmetic is the same")
    p.add_argument("--self-check", action="store_true",
                   help="before timing, compare the patch rows, the log-mel features and the TMRoPE positions with "
                        "the project's numpy reference (tools/reference) on the decoded clip; exit 1 on a mismatch")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch_eager.check_decoder_args(p, args)
    torch_vision.check_vision_args(p, args)
    torch_audio.check_audio_args(p, args)
    return args


# ---- the test clip and ffmpeg --------------------------------------------------------------------------------------
def make_clip(folder, seconds):
    """The 640x360, 25 fps H.264 test clip with a 44.1 kHz stereo AAC tone: the same command as omni-embed-bench's."""
    path = os.path.join(folder, f"bench-{seconds}s.mp4")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
           "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
           "-ac", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", path]
    subprocess.run(cmd, check=True)
    return path


def probe_video(path):
    """(width, height, total frames, average frame rate) of the first video stream, from the container as decord
    reads them (frames counted by demuxing when the container does not say)."""
    def ffprobe(*extra):
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", *extra, "-of", "json", path],
                             check=True, capture_output=True, text=True).stdout
        streams = json.loads(out).get("streams") or []
        if not streams:
            raise RuntimeError(f"{path}: no video stream")
        return streams[0]

    s = ffprobe("-show_entries", "stream=width,height,nb_frames,avg_frame_rate")
    if not str(s.get("nb_frames", "")).isdigit():
        s = dict(s, nb_frames=ffprobe("-count_packets", "-show_entries", "stream=nb_read_packets")["nb_read_packets"])
    return int(s["width"]), int(s["height"]), int(s["nb_frames"]), Fraction(s["avg_frame_rate"])


def sample_indices(torch, total, video_fps, args):
    """qwen-omni-utils' smart_nframes (fps branch) and its float32 linspace indices rounded half to even."""
    def floor_even(v):
        return math.floor(v / 2) * 2

    min_f = math.ceil(args.min_frames / 2) * 2
    max_f = floor_even(min(args.max_frames, total))
    n = total / float(video_fps) * args.fps
    n = floor_even(min(min(max(n, min_f), max_f), total))
    if not 2 <= n <= total:
        raise RuntimeError(f"cannot sample {n} frames from a video of {total}")
    return torch.linspace(0, total - 1, n, dtype=torch.float32).round().long().tolist()


def read_frames(torch, path, width, height, indices, threads):
    """uint8 [n, H, W, 3]: the frames at `indices` (stream order), from rgb24 frames piped by the ffmpeg CLI. Every
    frame is decoded and converted; only the sampled ones are kept."""
    slots = {}
    for k, i in enumerate(indices):
        slots.setdefault(i, []).append(k)
    out = torch.empty(len(indices), height, width, 3, dtype=torch.uint8)
    frame_bytes = width * height * 3
    scratch = bytearray(frame_bytes)
    last = max(indices)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-threads", str(threads), "-i", path, "-map", "0:v:0",
           "-vsync", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    try:
        for i in range(last + 1):
            ks = slots.get(i)
            view = memoryview(out[ks[0]].numpy()).cast("B") if ks else memoryview(scratch)
            got = 0
            while got < frame_bytes:
                n = proc.stdout.readinto(view[got:])
                if not n:
                    raise RuntimeError(f"{path}: the stream ended at frame {i}, before frame {last}")
                got += n
            for k in (ks or [])[1:]:
                out[k].copy_(out[ks[0]])
    finally:
        proc.stdout.close()
        if proc.poll() is None:                     # frames after the last sampled one are not needed
            proc.kill()
        proc.wait()
    return out


def read_audio(torch, path, sample_rate):
    """float32 [L] mono samples at `sample_rate` from the first audio stream, resampled and downmixed by ffmpeg."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0", "-ac", "1", "-ar", str(sample_rate),
           "-f", "f32le", "pipe:1"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return torch.frombuffer(bytearray(raw), dtype=torch.float32)


# ---- the interleaved layout (thinker spec §7.3, §8.2, §8.3) -------------------------------------------------------
def chunk_bounds(values, per_chunk, subtract):
    """get_chunked_index: (start, end) slices of a non-decreasing list, at most one boundary per element."""
    chunks, start, k = [], 0, 1
    for i, v in enumerate(values):
        if v - subtract >= k * per_chunk:
            chunks.append((start, i))
            start = i
            k += 1
    chunks.append((start, len(values)))
    return chunks


def interleaved_sequence(head_tokens, grid, n_audio, merge):
    """Token ids and [3, S] positions (lists) of a document whose video and audio are interleaved per 2 s chunk."""
    t, h, w = grid
    hm, wm = h // merge, w // merge
    ids = [ORDINARY] * head_tokens + [VISION_BOS, AUDIO_BOS]
    rows = [list(range(head_tokens)) + [head_tokens] * 2 for _ in range(3)]      # both bos share position b
    base = head_tokens + 1
    video = [(base + ti * POSITION_ID_PER_SECONDS, base + y, base + x)
             for ti in range(t) for y in range(hm) for x in range(wm)]
    audio = [base + a for a in range(n_audio)]
    per_chunk = POSITION_ID_PER_SECONDS * SECONDS_PER_CHUNK
    v_chunks = chunk_bounds([p[0] for p in video], per_chunk, base)
    a_chunks = chunk_bounds(audio, per_chunk, base)
    last_max = base - 1
    for j in range(max(len(v_chunks), len(a_chunks))):
        if j < len(v_chunks):
            s, e = v_chunks[j]
            ids += [VIDEO] * (e - s)
            for r in range(3):
                rows[r] += [p[r] for p in video[s:e]]
            if e > s:
                last_max = max(max(p) for p in video[s:e])
        if j < len(a_chunks):
            s, e = a_chunks[j]
            ids += [AUDIO] * (e - s)
            for r in range(3):
                rows[r] += audio[s:e]
            if e > s:
                last_max = audio[e - 1]
    eos = last_max + 1                              # (max of the last appended chunk) + 1, for both eos tokens
    ids += [AUDIO_EOS, VISION_EOS, IM_END, NEWLINE]
    for r in range(3):
        rows[r] += [eos, eos, eos + 1, eos + 2]
    return ids, rows


def separate_ids(head_tokens, n_video, n_audio):
    return ([ORDINARY] * head_tokens + [VISION_BOS] + [VIDEO] * n_video + [VISION_EOS]
            + [AUDIO_BOS] + [AUDIO] * n_audio + [AUDIO_EOS] + [IM_END, NEWLINE])


def self_check(torch, args, prepared, frames_u8, signal, fusions):
    """Compares this script's patch rows, features and positions with tools/reference (numpy). Returns a list of
    failure messages."""
    import numpy as np
    sys.path.insert(0, REFERENCE_DIR)
    import image_preprocess
    import audio_features
    import rope_index

    failures = []
    pixel_values, grid, features = prepared["pixel_values"], prepared["grid"], prepared["features"]
    # patch rows: the reference's normalize + patchify of the same resized uint8 frames
    ref_frames = np.stack([image_preprocess.normalize(f, torch_vision.CLIP_MEAN, torch_vision.CLIP_STD)
                           for f in frames_u8.permute(0, 2, 3, 1).contiguous().numpy()])
    ref_rows, ref_grid = image_preprocess.patchify(ref_frames, args.patch, args.temporal_patch, args.merge)
    diff = float(np.abs(ref_rows - pixel_values.numpy()).max())
    log(f"self-check: patch rows {tuple(pixel_values.shape)} grid {grid} vs reference {ref_grid[0].tolist()}, "
        f"max |diff| {diff:.2e}")
    if tuple(ref_grid[0].tolist()) != tuple(grid) or diff > 1e-5:
        failures.append(f"patch rows differ from the reference (max |diff| {diff:.2e})")
    # features: the reference's float64 log-mel of the same samples
    ref_feat, ref_t = audio_features.log_mel(signal.numpy(), max_samples=args.max_samples, n_mel=args.mel_bins,
                                             n_fft=args.n_fft, hop=args.hop, sr=args.sample_rate)
    diff = float(np.abs(ref_feat[:, :ref_t] - features.numpy()).max()) if ref_t == features.shape[1] else math.inf
    log(f"self-check: features {tuple(features.shape)} vs reference T = {ref_t}, max |diff| {diff:.2e}")
    if diff > 1e-4:
        failures.append(f"log-mel features differ from the reference (max |diff| {diff:.2e})")
    # positions: the reference's get_rope_index
    n_frames = features.shape[1]
    for fusion in fusions:
        ids, rows = build_sequence(torch, fusion, args, grid, audio_token_count(n_frames))
        mine = torch.tensor(rows, dtype=torch.int64).numpy()
        ref, _ = rope_index.get_rope_index(np.array(ids), {
            "audio_token_index": AUDIO, "image_token_index": torch_vision.IMAGE, "video_token_index": VIDEO,
            "vision_start_token_id": VISION_BOS, "vision_end_token_id": VISION_EOS,
            "audio_start_token_id": AUDIO_BOS, "audio_end_token_id": AUDIO_EOS,
            "position_id_per_seconds": POSITION_ID_PER_SECONDS, "seconds_per_chunk": SECONDS_PER_CHUNK},
            args.merge, video_grid_thw=[list(grid)], audio_seqlens=[n_frames], second_per_grids=[1.0],
            use_audio_in_video=(fusion == "interleaved"))
        same = ref.shape == mine.shape and bool((ref == mine).all())
        log(f"self-check: {fusion} positions [3, {mine.shape[1]}] equal to the reference: {same}")
        if not same:
            failures.append(f"{fusion} positions differ from the reference")
    return failures


def build_sequence(torch, fusion, args, grid, n_audio):
    """Token ids and [3, S] TMRoPE positions (lists or a tensor's rows) of the document for one fusion."""
    t, h, w = grid
    n_video = t * h * w // (args.merge * args.merge)
    if fusion == "interleaved":
        return interleaved_sequence(args.head_tokens, grid, n_audio, args.merge)
    ids = separate_ids(args.head_tokens, n_video, n_audio)
    # the audio block after the video counts on like text: torch_vision's positions with <|VIDEO|> as the block
    rows = torch_vision.tmrope_positions(torch, ids, [grid], args.merge, vision_ids=(VIDEO,),
                                         position_id_per_seconds=POSITION_ID_PER_SECONDS).tolist()
    return ids, rows


def main(argv):
    args = parse_args(argv)

    torch = torch_eager.start_torch(args, emit, log)
    if torch is None:
        return 0
    try:
        import numpy  # noqa: F401  (torch's .numpy() and the reference's smart_resize)
        from PIL import Image
    except Exception as e:
        emit({"skipped": f"cannot import numpy and Pillow with {sys.executable}: {e}"})
        return 0
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            emit({"skipped": f"the {tool} CLI is not on PATH"})
            return 0
    import torch.nn.functional as F
    dt = torch.bfloat16
    P, m, tp = args.patch, args.merge, args.temporal_patch
    g = m * m

    # ---- the three models: torch_eager.py's decoder, torch_vision.py's and torch_audio.py's towers -------------------
    decode = torch_eager.build_decoder(torch, args, log)
    encode_video = torch_vision.build_vision_encoder(torch, args, log)
    frontend = torch_audio.build_frontend(torch, args)
    encode_audio = torch_audio.build_audio_encoder(torch, args, log)

    # ---- the decode stage ---------------------------------------------------------------------------------------------
    def resize_frames(frames, size):
        """torch's antialiased bicubic on float frames [n, 3, H, W], clamped and rounded to uint8 (torchvision's
        F.resize on a uint8 video, as qwen-omni-utils calls it). Unchanged when the size is."""
        if tuple(frames.shape[-2:]) == tuple(size):
            return frames
        x = F.interpolate(frames.to(torch.float32), size=size, mode="bicubic", align_corners=False, antialias=True)
        return x.clamp(0, 255).round().to(torch.uint8)

    def pillow_resize(frames, size):
        """The slow processor's resize: Pillow's bicubic on each uint8 frame [n, 3, H, W]."""
        if tuple(frames.shape[-2:]) == tuple(size):
            return frames
        hwc = frames.permute(0, 2, 3, 1).contiguous().numpy()
        out = [numpy.asarray(Image.fromarray(f).resize((size[1], size[0]), resample=Image.BICUBIC)) for f in hwc]
        return torch.from_numpy(numpy.stack(out)).permute(0, 3, 1, 2)

    def prepare(path):
        """The file -> fp32 pixel rows, grid, fp32 log-mel features of the valid frames (and the resized uint8
        frames [n, 3, h, w] and the samples, for the self-check)."""
        signal = read_audio(torch, path, args.sample_rate)[:args.max_samples]     # truncation to max_length
        if audio_token_count(-(-signal.shape[0] // args.hop)) < 1:
            raise RuntimeError(f"{path}: {signal.shape[0]} audio samples are too few for one audio token")
        width, height, total, video_fps = probe_video(path)
        indices = sample_indices(torch, total, video_fps, args)
        frames = read_frames(torch, path, width, height, indices, args.threads).permute(0, 3, 1, 2)   # [n, 3, H, W]
        n = len(indices)
        # qwen-omni-utils: its own per-frame budget, then torchvision's antialiased bicubic
        max_px = max(min(args.fetch_max_pixels, args.total_pixels / n * 2), int(args.fetch_min_pixels * 1.05))
        size1 = torch_vision.smart_resize(height, width, P * m, args.fetch_min_pixels, max_px)
        frames = resize_frames(frames, size1)
        # the processor: smart_resize to the model card's budget, then its resize
        size2 = torch_vision.smart_resize(size1[0], size1[1], P * m, args.video_min_pixels, args.video_max_pixels)
        frames = pillow_resize(frames, size2) if args.second_resize == "pillow" else resize_frames(frames, size2)
        if n % tp:                                                               # never with qwen-omni-utils
            frames = torch.cat([frames, frames[-1:].expand(tp - n % tp, *frames.shape[1:])])
        pixel_values, grid = torch_vision.patchify(torch_vision.normalize(torch, frames), args)
        features = frontend(signal)
        return {"pixel_values": pixel_values, "grid": grid, "features": features, "frames": n,
                "total_frames": total, "video_fps": float(video_fps), "size1": size1, "size2": size2,
                "samples": signal.shape[0]}, frames, signal

    # ---- measure --------------------------------------------------------------------------------------------------------
    version = torch.__version__
    gen = torch.Generator().manual_seed(args.seed)
    token_embeds = {}                                # sequence length -> random [S, hidden] bf16 rows
    folder = tempfile.mkdtemp(prefix="omni-embed-torch-video-")
    try:
        with torch.no_grad():
            for seconds in args.video_seconds:
                try:
                    path = make_clip(folder, seconds)
                except (OSError, subprocess.CalledProcessError) as e:
                    emit({"video_seconds": seconds, "skipped": f"cannot write the test clip with the ffmpeg CLI: {e}"})
                    continue
                info, frames_u8, signal = prepare(path)                          # untimed: the sizes, and a check
                grid = info["grid"]
                mel_frames = info["features"].shape[1]
                n_video = grid[0] * grid[1] * grid[2] // g
                n_audio = audio_token_count(mel_frames)
                log(f"video {seconds} s: {info['total_frames']} frames at {info['video_fps']:g} fps, "
                    f"{info['frames']} sampled, resized to {info['size1'][0]}x{info['size1'][1]} then "
                    f"{info['size2'][0]}x{info['size2'][1]} ({args.second_resize}), grid {list(grid)}, "
                    f"{n_video} video tokens; {info['samples']} audio samples, {mel_frames} mel frames, "
                    f"{n_audio} audio tokens")
                if args.self_check:
                    failures = self_check(torch, args, info, frames_u8, signal, args.fusion)
                    if failures:
                        for f in failures:
                            log(f"self-check FAILED: {f}")
                        return 1
                    log("self-check passed")
                total_frames, sampled_frames, n_samples = info["total_frames"], info["frames"], info["samples"]
                del info, frames_u8, signal

                for fusion in args.fusion:
                    label = f"video {seconds} s {fusion}"

                    def run():
                        t0 = time.perf_counter()
                        got = prepare(path)[0]
                        t1 = time.perf_counter()
                        rows_v = encode_video(got["pixel_values"], got["grid"])
                        t2 = time.perf_counter()
                        rows_a = encode_audio(got["features"])
                        t3 = time.perf_counter()
                        if rows_v.shape[0] != n_video or rows_a.shape[0] != n_audio:
                            raise RuntimeError(f"the towers gave {rows_v.shape[0]} video and {rows_a.shape[0]} audio "
                                               f"rows for {n_video} and {n_audio} placeholders")
                        seq = args.head_tokens + n_video + n_audio + 6
                        if seq not in token_embeds:                              # untimed: not part of the work
                            # the embedding lookup costs nothing; random [S, hidden] bf16 rows stand in for it
                            token_embeds[seq] = (torch.randn(seq, args.hidden, generator=gen) * 0.02).to(dt)
                        t4 = time.perf_counter()
                        ids, rows = build_sequence(torch, fusion, args, got["grid"], n_audio)
                        if len(ids) != seq:
                            raise RuntimeError(f"the {fusion} sequence has {len(ids)} tokens, expected {seq}")
                        ids_t = torch.tensor(ids)
                        x = token_embeds[seq]
                        x = x.masked_scatter((ids_t == VIDEO).unsqueeze(-1).expand_as(x), rows_v.to(dt))
                        x = x.masked_scatter((ids_t == AUDIO).unsqueeze(-1).expand_as(x), rows_a.to(dt))
                        out = decode(x, torch.tensor(rows, dtype=torch.int64))
                        t5 = time.perf_counter()
                        return out, len(ids), (t1 - t0, t2 - t1, t3 - t2, t5 - t4)

                    out, seq, totals, (dec_, vis, aud, dcd), peak = torch_eager.time_stages(
                        torch, run, args.warmup, args.repeats, label, ("decode", "vision", "audio encoder", "decoder"),
                        log)
                    emit({"peer": PEER, "version": version, "dtype": "bf16", "video_seconds": seconds,
                          "fusion": fusion, "tokens": seq, "video_tokens": n_video, "audio_tokens": n_audio,
                          "grid": list(grid), "total_frames": total_frames, "sampled_frames": sampled_frames,
                          "audio_samples": n_samples, "mel_frames": mel_frames, "threads": args.threads,
                          "layers": args.layers,
                          "vision_depth": args.vision_depth, "audio_layers": args.audio_layers,
                          "audio_attention": args.audio_attention, "fps": args.fps,
                          "video_max_pixels": args.video_max_pixels, "second_resize": args.second_resize,
                          "seconds_median": statistics.median(totals), "seconds_min": min(totals),
                          "seconds_max": max(totals), "seconds_all": totals,
                          "decode_seconds": statistics.median(dec_), "vision_seconds": statistics.median(vis),
                          "audio_encoder_seconds": statistics.median(aud), "decoder_seconds": statistics.median(dcd),
                          "peak_rss_bytes": peak})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
