#!/usr/bin/env python3
"""Reference for the video tests of src/media (spec qwen25-omni-thinker.md §6.2, omni-embed-nemotron.md §2 item 4).

The two pipelines, computed independently of the C++ code:
  card: qwen-omni-utils fetch_video: smart_nframes (fps, even counts, min/max frames), indices
        torch.linspace(0, total - 1, n, dtype=float32).round(), a first resize with torchvision's
        F.resize(uint8 video, (h, w), BICUBIC, antialias=True) (for uint8 input on this torch that is
        interpolate(x.float(), bicubic, antialias=True).clamp(0, 255).round() cast to uint8) to the per-frame budget
        max(min(602112, total_pixels / n * 2), int(100352 * 1.05)); then the processor's second resize,
        smart_resize(min_pixels, max_pixels) + Pillow's BICUBIC on the uint8 frame;
  st:   transformers' BaseVideoProcessor.sample_frames: n = int(total / video_fps * fps),
        torch.arange(0, total, total / n).int(); one antialiased bicubic resize to smart_resize(min, max).
Frame counts and rates come from ffprobe (-count_packets, avg_frame_rate); frames from the ffmpeg CLI as rgb24.

Indices of the card pipeline: torch >= 2.0 computes linspace with a scalar loop, start + step*i below n/2 and
end - step*(n-1-i) from there on, and its AVX2/AVX-512 kernels fuse each multiply-add. The torch here (1.13)
still vectorises that loop, so "card_ref" is that rule written out in numpy (exactly: the products and sums are
exact in float64, then rounded once to float32) and "card_torch" is what this torch gives, for information.

Sub-commands:
  indices CASES.json OUT.json   CASES: [{total, video_fps, fps, min_frames, max_frames, max_frames_option,
                                height, width, min_pixels, max_pixels, total_pixels}]; OUT: per case the card and
                                st plans (indices, sizes) or the error the reference raises
  ranges CASES.json OUT.json    CASES: [{total, video_fps, fps, min_frames, video_start, video_end, height, width,
                                total_pixels}]: per case the frame range of qwen-vl-utils' video_start/video_end,
                                the card indices over it and the first resize, or the error it raises
  resize CASES.json DIR         CASES: [{name, in_h, in_w, out_h, out_w, seed, kind}]: DIR/NAME.in.npy (uint8
                                [H, W, 3]) and DIR/NAME.torch.npy, the antialiased bicubic resize
  videos LIST.json DIR          LIST: [{name, path, pixels, fps, min_pixels, max_pixels, min_frames, max_frames,
                                total_pixels}]: DIR/NAME.json (ffprobe facts, both plans) and, when pixels is
                                true, DIR/NAME.raw.npy (the CLI's frames at raw_indices), NAME.card_first.npy,
                                NAME.card_final.npy, NAME.st.npy
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch
# smart_resize is the independent reference's (tools/reference/image_preprocess.py), shared rather than copied.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "reference"))
from image_preprocess import smart_resize  # noqa: E402
from PIL import Image  # noqa: E402

FACTOR = 28
FRAME_FACTOR = 2
VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28
FPS_MAX_FRAMES = 768


# ----------------------------------------------------------------------------------------------------------------
# Frame plans


def smart_nframes(total_frames, video_fps, fps, min_frames, max_frames):
    """qwen-omni-utils smart_nframes with the element keys fps, min_frames, max_frames (max_frames None: the
    default min(FPS_MAX_FRAMES, total_frames))."""
    min_f = math.ceil(min_frames / FRAME_FACTOR) * FRAME_FACTOR
    if max_frames is None:
        max_frames = min(FPS_MAX_FRAMES, total_frames)
    max_f = math.floor(max_frames / FRAME_FACTOR) * FRAME_FACTOR
    nframes = total_frames / video_fps * fps
    nframes = min(min(max(nframes, min_f), max_f), total_frames)
    nframes = math.floor(nframes / FRAME_FACTOR) * FRAME_FACTOR
    if not (FRAME_FACTOR <= nframes <= total_frames):
        raise ValueError("nframes should in interval [%d, %d], but got %d." % (FRAME_FACTOR, total_frames, nframes))
    return int(nframes)


def linspace_round_ref(total, n, first=0):
    """torch >= 2.0 linspace(first, first + total - 1, n, float32) on x86 (scalar loop, fused multiply-add), then
    round()."""
    start = np.float32(first)
    end = np.float32(first + total - 1)
    step = np.float32((end - start) / np.float32(n - 1))
    i = np.arange(n, dtype=np.int64)
    low = (np.float64(start) + np.float64(step) * i).astype(np.float32)
    high = (np.float64(end) - np.float64(step) * (n - 1 - i)).astype(np.float32)
    return np.round(np.where(i < n // 2, low, high)).astype(np.int64)


def st_indices(total, video_fps, fps, max_frames):
    """BaseVideoProcessor.sample_frames; the C++ keeps n in 1..total (the reference raises) and caps it at
    max_frames. Returns (indices, truncated)."""
    n = int(total / video_fps * fps)
    n = min(max(n, 1), total)
    truncated = n > max_frames
    n = min(n, max_frames)
    idx = torch.arange(0, total, total / n).int().numpy().astype(np.int64)
    return idx[idx < total], truncated


def card_first_size(height, width, n, total_pixels):
    max_pixels = max(min(VIDEO_MAX_PIXELS, total_pixels / n * FRAME_FACTOR), int(VIDEO_MIN_PIXELS * 1.05))
    return smart_resize(height, width, FACTOR, VIDEO_MIN_PIXELS, max_pixels)


def plans(c):
    """Both plans of one case (keys as in the module doc)."""
    out = {}
    try:
        n = smart_nframes(c["total"], c["video_fps"], c["fps"], c["min_frames"], c.get("max_frames_option"))
        uncapped = smart_nframes(c["total"], c["video_fps"], c["fps"], c["min_frames"], 1 << 60)
        card = {"n": n, "indices": linspace_round_ref(c["total"], n).tolist(), "truncated": uncapped > n,
                "torch": torch.linspace(0, c["total"] - 1, n).round().long().tolist()}
        if "height" in c:
            h1, w1 = card_first_size(c["height"], c["width"], n, c["total_pixels"])
            card["first"] = [h1, w1]
            card["second"] = list(smart_resize(h1, w1, FACTOR, c["min_pixels"], c["max_pixels"]))
        out["card"] = card
    except ValueError as e:
        out["card"] = {"error": str(e)}
    idx, truncated = st_indices(c["total"], c["video_fps"], c["fps"], c["max_frames"])
    out["st"] = {"indices": idx.tolist(), "truncated": truncated}
    if "height" in c:
        out["st"]["size"] = list(smart_resize(c["height"], c["width"], FACTOR, c["min_pixels"], c["max_pixels"]))
    return out


def video_frame_range(total, video_fps, video_start, video_end):
    """qwen-vl-utils' calculate_video_frame_range (decord and torchcodec readers): (start_frame, end_frame)."""
    max_duration = total / video_fps
    start_frame = math.ceil(max(0.0, min(video_start, max_duration)) * video_fps)
    end_frame = min(math.floor(max(0.0, min(video_end, max_duration)) * video_fps), total - 1)
    if start_frame >= end_frame:
        raise ValueError("Invalid time range: start frame %d exceeds end frame %d" % (start_frame, end_frame))
    return start_frame, end_frame


def range_plan(c):
    """The card plan of a time range, as that reader samples it: smart_nframes of the range's frame count, then
    linspace(start_frame, end_frame, n) rounded."""
    try:
        first, last = video_frame_range(c["total"], c["video_fps"], c["video_start"], c["video_end"])
        count = last - first + 1
        n = smart_nframes(count, c["video_fps"], c["fps"], c["min_frames"], None)
        h1, w1 = card_first_size(c["height"], c["width"], n, c["total_pixels"])
        return {"first": first, "last": last, "indices": linspace_round_ref(count, n, first).tolist(),
                "size": [h1, w1]}
    except ValueError as e:
        return {"error": str(e)}


# ----------------------------------------------------------------------------------------------------------------
# Resizes


def torch_resize(frames, h, w):
    """torchvision F.resize(uint8 TCHW, (h, w), BICUBIC, antialias=True) on this torch; frames uint8 [N, H, W, 3]."""
    if frames.shape[1] == h and frames.shape[2] == w:
        return frames.copy()
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)  # as qwen-omni-utils: decord's THWC permuted to TCHW
    y = torch.nn.functional.interpolate(x.float(), size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    y = y.clamp(0, 255).round().to(torch.uint8)
    return y.permute(0, 2, 3, 1).contiguous().numpy()


def pil_resize(frames, h, w):
    return np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.BICUBIC)) for f in frames])


def make_image(kind, h, w, rng):
    if kind == "noise":
        return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    y, x = np.mgrid[0:h, 0:w]
    smooth = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1), 127.5 + 127.5 * np.sin(x / 7.0 + y / 5.0)],
                      axis=-1)
    return np.clip(np.round(smooth), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------------
# Videos through the CLI


def ffprobe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                          "stream=nb_read_packets,avg_frame_rate,width,height", "-of", "json", path],
                         check=True, capture_output=True, text=True).stdout
    s = json.loads(out)["streams"][0]
    num, den = (int(v) for v in s["avg_frame_rate"].split("/"))
    return int(s["nb_read_packets"]), num / den, int(s["width"]), int(s["height"])


def cli_frames(path, indices, width, height):
    """The frames `indices` (sorted, unique) of `ffmpeg -i path -fps_mode passthrough -f rawvideo -pix_fmt rgb24 -`,
    read as a stream (only the wanted frames are kept)."""
    frame_bytes = width * height * 3
    wanted = set(indices)
    frames = []
    proc = subprocess.Popen(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", path, "-fps_mode",
                             "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE)
    k = 0
    while len(frames) < len(indices):
        data = proc.stdout.read(frame_bytes)
        if len(data) < frame_bytes:
            break
        if k in wanted:
            frames.append(np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3))
        k += 1
    proc.stdout.close()
    proc.kill()
    proc.wait()
    if len(frames) != len(indices):
        raise RuntimeError("%s: the CLI gave %d frames, %d wanted up to frame %d" % (path, k, len(indices),
                                                                                   indices[-1]))
    return np.stack(frames)


def video_case(v, out_dir):
    total, video_fps, width, height = ffprobe(v["path"])
    case = dict(v, total=total, video_fps=video_fps, height=height, width=width)
    result = {"total": total, "video_fps": video_fps, "width": width, "height": height}
    result.update(plans(case))
    if v.get("pixels"):
        card, st = result["card"], result["st"]
        uniq = sorted(set(card.get("indices", [])) | set(st["indices"]))
        raw = cli_frames(v["path"], uniq, width, height)
        pos = {k: i for i, k in enumerate(uniq)}
        result["raw_indices"] = uniq
        prefix = os.path.join(out_dir, v["name"])
        np.save(prefix + ".raw.npy", raw)
        if "indices" in card:
            first = torch_resize(raw[[pos[k] for k in card["indices"]]], *card["first"])
            np.save(prefix + ".card_first.npy", first)
            np.save(prefix + ".card_final.npy", pil_resize(first, *card["second"]))
        np.save(prefix + ".st.npy", torch_resize(raw[[pos[k] for k in st["indices"]]], *st["size"]))
    with open(os.path.join(out_dir, v["name"] + ".json"), "w") as f:
        json.dump(result, f)


def main(argv):
    cmd = argv[1]
    with open(argv[2]) as f:
        cases = json.load(f)
    if cmd == "indices":
        with open(argv[3], "w") as f:
            json.dump([plans(c) for c in cases], f)
    elif cmd == "ranges":
        with open(argv[3], "w") as f:
            json.dump([range_plan(c) for c in cases], f)
    elif cmd == "resize":
        for c in cases:
            rng = np.random.default_rng(c["seed"])
            img = make_image(c["kind"], c["in_h"], c["in_w"], rng)
            np.save(os.path.join(argv[3], c["name"] + ".in.npy"), img)
            np.save(os.path.join(argv[3], c["name"] + ".torch.npy"), torch_resize(img[None], c["out_h"], c["out_w"])[0])
    elif cmd == "videos":
        for v in cases:
            video_case(v, argv[3])
    else:
        raise SystemExit("unknown sub-command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
