#!/usr/bin/env python3
"""Reference image preprocessing (spec qwen25-omni-thinker.md §6.1): qwen-omni-utils fetch_image followed by the
slow Qwen2VL image processor, with PIL and numpy.

    python3 tools/reference/image_preprocess.py --image P --out DIR [--min-pixels N] [--max-pixels N]
        [--preprocessor-config FILE]

Steps: PIL open (no EXIF transpose); RGBA is pasted onto a white RGB background with its alpha band as the
mask, any other mode goes through convert("RGB"); smart_resize (Python round = half to even, clamp to >= one
factor, aspect ratio > 200 refused); Image.resize((w, h), BICUBIC); (x/255 - mean)/std in float32; the frame
duplicated to temporal_patch_size frames; patchify to [gt*h*w, C*tps*P*P] in the processor order of §4.2.

DIR receives decoded.npy (uint8 [H, W, 3], after the RGB conversion), resized.npy (uint8 [h, w, 3]),
pixel_values.npy (float32 [rows, 1176]) and image_grid_thw.npy (int64 [1, 3]).
"""

import argparse
import json
import math
import os
import sys

import numpy as np
from PIL import Image

DEFAULTS = {
    "min_pixels": 4 * 28 * 28,            # 3,136
    "max_pixels": 16384 * 28 * 28,        # 12,845,056
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "rescale_factor": 1.0 / 255.0,
}
MAX_RATIO = 200

BICUBIC = getattr(Image, "Resampling", Image).BICUBIC


class ImageError(Exception):
    pass


def smart_resize(height, width, factor=28, min_pixels=DEFAULTS["min_pixels"], max_pixels=DEFAULTS["max_pixels"]):
    """Spec §6.1.2 in double precision; Python's round() is round-half-to-even. Returns (h, w), multiples of
    factor, each at least factor."""
    if height <= 0 or width <= 0:
        raise ImageError("image has no pixels (%d x %d)" % (width, height))
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ImageError("absolute aspect ratio must be at most %d, got %.6g"
                         % (MAX_RATIO, max(height, width) / min(height, width)))
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return int(h_bar), int(w_bar)


def to_rgb(image):
    """RGBA: composited onto white through paste with the alpha band as mask; anything else: convert("RGB")."""
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.split()[3])
        return background
    return image.convert("RGB")


def load_processor_config(path):
    """Settings from a preprocessor_config.json (missing keys keep the defaults; None = defaults only)."""
    cfg = dict(DEFAULTS)
    if path is None:
        return cfg
    with open(path, "r", encoding="utf-8") as f:
        raw = json.load(f)
    for key in DEFAULTS:
        if raw.get(key) is not None:
            cfg[key] = raw[key]
    size = raw.get("size") or {}
    # newer processor configs carry the limits as size.shortest_edge / size.longest_edge (pixel counts)
    if raw.get("min_pixels") is None and size.get("shortest_edge") is not None:
        cfg["min_pixels"] = size["shortest_edge"]
    if raw.get("max_pixels") is None and size.get("longest_edge") is not None:
        cfg["max_pixels"] = size["longest_edge"]
    return cfg


def normalize(rgb_u8, mean, std, rescale_factor=DEFAULTS["rescale_factor"]):
    """uint8 [h, w, C] -> float32 [C, h, w]: x * (1/255) as the slow processor's rescale (float64 product rounded
    to float32; the same float32 as x/255), then (x - mean)/std in float32 with float32 mean and std."""
    x = (rgb_u8.astype(np.float64) * float(rescale_factor)).astype(np.float32)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.astype(np.float32).transpose(2, 0, 1))


def patchify(frames, patch_size, temporal_patch_size, merge_size):
    """frames float32 [T, C, H, W] -> (pixel_values [gt*h*w, C*tps*P*P], grid (gt, h, w)) following spec §6.1.3
    step 4: the frame count is padded to a multiple of tps by repeating the last frame, the array viewed as
    [gt, tps, C, h/m, m, P, w/m, m, P] and permuted to (gt, h/m, w/m, m, m, C, tps, P, P)."""
    frames = np.asarray(frames, np.float32)
    n_frames, channels, height, width = frames.shape
    if n_frames % temporal_patch_size:
        pad = temporal_patch_size - n_frames % temporal_patch_size
        frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)], axis=0)
    unit = patch_size * merge_size
    if height % unit or width % unit:
        raise ImageError("frame size %dx%d is not a multiple of %d" % (width, height, unit))
    gt, gh, gw = frames.shape[0] // temporal_patch_size, height // patch_size, width // patch_size
    m, p = merge_size, patch_size
    x = frames.reshape(gt, temporal_patch_size, channels, gh // m, m, p, gw // m, m, p)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    pixel_values = np.ascontiguousarray(x.reshape(gt * gh * gw, channels * temporal_patch_size * p * p))
    return pixel_values, np.array([[gt, gh, gw]], dtype=np.int64)


def preprocess_image(image, min_pixels=None, max_pixels=None, processor_config=None):
    """image: a path or a PIL image. ``processor_config`` is a dict from load_processor_config (defaults when
    None); explicit min/max pixels override it. Returns decoded, resized, pixel_values, image_grid_thw."""
    cfg = processor_config or dict(DEFAULTS)
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as im:
                im.load()
                rgb = to_rgb(im)
        except (OSError, ValueError) as e:
            raise ImageError("%s: cannot decode the image: %s" % (image, e))
    else:
        rgb = to_rgb(image)
    decoded = np.asarray(rgb, dtype=np.uint8)
    width, height = rgb.size
    factor = int(cfg["patch_size"]) * int(cfg["merge_size"])
    lo = int(cfg["min_pixels"] if min_pixels is None else min_pixels)
    hi = int(cfg["max_pixels"] if max_pixels is None else max_pixels)
    if lo > hi:
        raise ImageError("min_pixels %d is larger than max_pixels %d" % (lo, hi))
    new_h, new_w = smart_resize(height, width, factor, lo, hi)
    resized_image = rgb.resize((new_w, new_h), BICUBIC)     # PIL returns a copy when the size is unchanged
    resized = np.asarray(resized_image, dtype=np.uint8)
    frame = normalize(resized, cfg["image_mean"], cfg["image_std"], cfg["rescale_factor"])
    frames = np.repeat(frame[None], int(cfg["temporal_patch_size"]), axis=0)   # one image = tps identical frames
    pixel_values, grid = patchify(frames, int(cfg["patch_size"]), int(cfg["temporal_patch_size"]),
                                  int(cfg["merge_size"]))
    return {"decoded": decoded, "resized": resized, "pixel_values": pixel_values, "image_grid_thw": grid}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--min-pixels", type=int, default=None)
    parser.add_argument("--max-pixels", type=int, default=None)
    parser.add_argument("--preprocessor-config", default=None,
                        help="preprocessor_config.json (image_mean, image_std, min/max_pixels, patch sizes)")
    args = parser.parse_args(argv)
    try:
        cfg = load_processor_config(args.preprocessor_config)
        result = preprocess_image(args.image, args.min_pixels, args.max_pixels, cfg)
    except (OSError, ValueError, KeyError, ImageError) as e:
        print("image_preprocess: error: %s" % e, file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    for name, array in result.items():
        np.save(os.path.join(args.out, name + ".npy"), array)
    return 0


if __name__ == "__main__":
    sys.exit(main())
