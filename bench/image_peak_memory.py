#!/usr/bin/env python3
"""Peak memory of `omni-embed embed --image` on large and hostile images, one process per file.

Writes each case's image (noise, so that the file is as large as the format makes it, or smooth where noise would
take minutes to encode), runs `omni-embed embed --model MODEL --image FILE` under GNU time, and prints a Markdown
table: the case, its size, the file's size, what omni-embed said (the vector, or the first line of its error) and
the process's peak resident memory (kB, as time's %M reports it).

  bench/image_peak_memory.py OUT_DIR [--binary build/tools/cli/omni-embed] [--model build/test-models/tiny-f32]
                             [--side 9459] [--cases png-rgb,jpeg,...] [--edge] [--keep]

--side: every case at this side (default 9459: 89.5 megapixels, the largest square image under Pillow's
  decompression-bomb warning; 13376 is the largest under its error, the default --max-image-pixels).
--edge: instead, each case at the largest side --max-image-decode-bytes accepts: the case starts at --side, and when
  refused it is written again at the side the refusal's estimate says fits (two tries at most), then at that side
  and one 2% larger, to show the first accepted and the first refused.
Needs Pillow and NumPy (scripts/setup.sh installs both) and GNU time (/usr/bin/time). Files are deleted after
their run unless --keep. The model's vision tower sets a floor: a 12.8-megapixel resize (the default image max
pixels) is patchified into 308 MB of floats for any image at least that large.
"""
import argparse
import math
import os
import re
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image, ImageFile


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def noise(rng, h, w, c):
    return rng.integers(0, 256, (h, w, c) if c > 1 else (h, w), dtype=np.uint8)


def smooth(h, w):
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    return np.stack([np.broadcast_to(y, (h, w)), np.broadcast_to(x, (h, w)), np.broadcast_to((x + y) / 2, (h, w))],
                    axis=-1).astype(np.uint8)


def png_bytes(samples, depth, colour_type):
    """A PNG of `samples` ([h, w, c] uint8 or uint16) at `depth` bits: filter 0 rows, zlib level 1."""
    h, w = samples.shape[:2]
    rows = samples.reshape(h, -1)
    if depth == 16:
        rows = rows.astype(">u2").view(np.uint8).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data +
                (zlib.crc32(kind + data) & 0xFFFFFFFF).to_bytes(4, "big"))

    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([depth, colour_type, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


def write_case(case, side, path, rng):
    h = w = side
    if case.startswith("png"):
        kinds = {  # colour type, channels, depth
            "png-rgb": (2, 3, 8), "png-rgb-noise": (2, 3, 8), "png-rgba": (6, 4, 8), "png-grey": (0, 1, 8),
            "png-grey16": (0, 1, 16), "png-rgb16": (2, 3, 16), "png-rgba16": (6, 4, 16),
        }
        if case == "png-palette":
            Image.fromarray(noise(rng, h, w, 1), "L").convert("P").save(path, compress_level=1)
            return
        colour_type, channels, depth = kinds[case]
        if case == "png-rgb":
            samples = smooth(h, w)
        elif depth == 16:
            samples = rng.integers(0, 65536, (h, w, channels), dtype=np.uint16)
        else:
            samples = noise(rng, h, w, channels).reshape(h, w, channels)
        with open(path, "wb") as f:
            f.write(png_bytes(samples, depth, colour_type))
        return
    if case.startswith("jpeg"):
        # Pillow's progressive JPEG writer needs the whole file in one buffer; its GIF writer fails with a buffer
        # this large, so the limit is raised for JPEG alone.
        ImageFile.MAXBLOCK = 1 << 31
        progressive = "progressive" in case
        subsampling = 0 if case.endswith("444") else 2
        if case == "jpeg-grey":
            Image.fromarray(noise(rng, h, w, 1), "L").save(path, quality=90)
        elif case == "jpeg-cmyk-progressive":
            Image.fromarray(noise(rng, h, w, 4), "CMYK").save(path, quality=90, progressive=True)
        else:
            Image.fromarray(noise(rng, h, w, 3)).save(path, quality=90, progressive=progressive,
                                                      subsampling=subsampling)
        return
    ImageFile.MAXBLOCK = 65536  # Pillow's default
    if case == "webp":
        Image.fromarray(noise(rng, h, w, 3)).save(path, quality=80, method=0)
    elif case == "webp-rgba":
        Image.fromarray(noise(rng, h, w, 4), "RGBA").save(path, quality=80, method=0)
    elif case == "webp-lossless":
        Image.fromarray(smooth(h, w)).save(path, lossless=True, quality=0, method=0)
    elif case == "gif":
        Image.fromarray(noise(rng, h, w, 1), "L").convert("P").save(path)
    elif case == "bmp-8":
        Image.fromarray(noise(rng, h, w, 1), "L").convert("P").save(path)
    elif case == "bmp-24":
        Image.fromarray(noise(rng, h, w, 3)).save(path)
    elif case == "tiff-rgb":
        Image.fromarray(noise(rng, h, w, 3)).save(path)
    elif case == "tiff-rgba":
        Image.fromarray(noise(rng, h, w, 4), "RGBA").save(path)
    elif case == "tiff-deflate":
        Image.fromarray(smooth(h, w)).save(path, compression="tiff_adobe_deflate")
    else:
        sys.exit(f"unknown case {case}")


EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp", "gif": "gif", "bmp": "bmp", "tiff": "tif"}
CASES = ["png-rgb", "png-rgb-noise", "png-rgba", "png-grey", "png-grey16", "png-palette", "png-rgb16", "png-rgba16",
         "jpeg", "jpeg-grey", "jpeg-progressive-420", "jpeg-progressive-444", "jpeg-cmyk-progressive", "webp",
         "webp-rgba", "webp-lossless", "gif", "bmp-8", "bmp-24", "tiff-rgb", "tiff-rgba", "tiff-deflate"]


def run(binary, model, path):
    """(peak RSS kB, outcome) of one embed."""
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M", binary, "embed", "--model", model, "--threads", "2",
                        "--image", path], capture_output=True, text=True)
    rss = int(re.search(r"MAXRSS (\d+)", p.stderr).group(1))
    if p.returncode == 0:
        return rss, "vector", ""
    lines = [l for l in p.stderr.splitlines() if path in l]  # the error names the file
    return rss, "refused", lines[0] if lines else f"exit {p.returncode}"


def measure(args, case, side, rng):
    path = os.path.join(args.out, f"{case}-{side}.{EXTENSIONS[case.split('-')[0]]}")
    write_case(case, side, path, rng)
    size = os.path.getsize(path)
    rss, outcome, message = run(args.binary, args.model, path)
    if not args.keep:
        os.remove(path)
    return {"case": case, "side": side, "file_mb": size / 1e6, "rss_kb": rss, "outcome": outcome,
            "message": message, "path": path}


def estimate_mib(message):
    m = re.search(r"takes about (\d+) MiB of memory, over the limit of (\d+) MiB", message)
    return (int(m.group(1)), int(m.group(2))) if m else None


def row(r):
    said = r["outcome"] if r["outcome"] == "vector" else r["message"].split(r["path"] + ": ", 1)[-1][:120]
    print(f"| {r['case']} | {r['side']}² | {r['file_mb']:.1f} | {said} | {r['rss_kb']:,} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/tools/cli/omni-embed"))
    ap.add_argument("--model", default=os.path.join(ROOT, "build/test-models/tiny-f32"))
    ap.add_argument("--side", type=int, default=9459)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--edge", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(1)
    base = os.path.join(args.out, "small.png")
    Image.fromarray(smooth(56, 56)).save(base)
    print(f"baseline (56x56 image): {run(args.binary, args.model, base)[0]:,} kB")
    print("| case | size | file MB | omni-embed says | peak RSS kB |\n|---|---|---|---|---|")
    for case in args.cases.split(","):
        side = args.side
        if not args.edge:
            row(measure(args, case, side, rng))
            continue
        for _ in range(2):  # find the side the estimate says fits
            r = measure(args, case, side, rng)
            est = estimate_mib(r["message"])
            if not est:
                break
            side = int(side * math.sqrt(est[1] / est[0]) * 0.995)
        row(measure(args, case, side, rng) if est else r)
        row(measure(args, case, int(side * 1.02), rng))


if __name__ == "__main__":
    main()
