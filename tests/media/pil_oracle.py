#!/usr/bin/env python3
"""Pillow reference for the image tests of src/media (spec qwen25-omni-thinker.md §6.1).

The reference path is qwen-omni-utils `fetch_image` followed by the Qwen2VL image processor:
  PIL.Image.open(path); RGBA is pasted onto white with its alpha as the mask, any other mode goes through
  convert("RGB"); smart_resize; Image.resize((w, h), BICUBIC); x * (1/255) then (x - mean) / std in float32;
  the single frame duplicated to 2; patchify to [grid_t * grid_h * grid_w, 3 * 2 * 14 * 14].

Sub-commands:
  generate DIR                write the test images (seeded, varied modes and formats) and DIR/manifest.json
  reference DIR               for every manifest case write CASE.decoded.npy (uint8 [H, W, 3]), CASE.resized.npy
                              (uint8 [h, w, 3]), CASE.grid.npy (int64 [3]) and, for outputs up to 4 Mpx,
                              CASE.pixel_values.npy (float32 [n, 1176]); DIR/reference.json lists PIL's modes
  suite DIR                   generate, then reference
  image FILE PREFIX [--exif] [--size W H] [--min-pixels N] [--max-pixels N]
                              the reference outputs of one file (for debugging a mismatch)
  resize-cases DIR [--count N] [--seed S]
                              random uint8 RGB inputs and their Pillow BICUBIC resizes, DIR/cases.json
"""
import argparse
import io
import json
import os
import struct
import sys
import warnings
import zlib

import numpy as np
# smart_resize is the independent reference's (tools/reference/image_preprocess.py), shared rather than copied.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "reference"))
from image_preprocess import smart_resize  # noqa: E402
from PIL import Image, ImageOps

FACTOR = 28
MIN_PIXELS = 4 * 28 * 28
MAX_PIXELS = 16384 * 28 * 28
PATCH = 14
TEMPORAL = 2
MERGE = 2
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
PIXEL_VALUES_LIMIT = 4_000_000


# ----------------------------------------------------------------------------------------------------------------
# The reference path


def load_rgb(path, exif=False):
    """PIL.Image.open + the qwen-omni-utils RGB conversion. Returns (image, mode PIL opened it as)."""
    img = Image.open(path)
    mode = img.mode
    # Pillow 9.4 applies a TIFF's Orientation tag itself when it loads the pixels (TiffImagePlugin.load_end), so
    # exif_transpose would turn a TIFF a second time; the upright image is what load gives.
    if exif and img.format != "TIFF":
        img = ImageOps.exif_transpose(img)
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.split()[3])
        return background, mode
    return img.convert("RGB"), mode


def pixel_values(resized):
    """Qwen2VLImageProcessor on an already resized uint8 [H, W, 3] array: rescale, normalise, patchify."""
    x = (resized.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - MEAN) / STD                                      # [H, W, C] float32
    x = x.transpose(2, 0, 1)[None]                            # [T=1, C, H, W]
    x = np.concatenate([x, x], axis=0)                        # [T=2, C, H, W]: one frame padded to temporal 2
    t, c, h_px, w_px = x.shape
    gt, gh, gw = t // TEMPORAL, h_px // PATCH, w_px // PATCH
    x = x.reshape(gt, TEMPORAL, c, gh // MERGE, MERGE, PATCH, gw // MERGE, MERGE, PATCH)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(gt * gh * gw, c * TEMPORAL * PATCH * PATCH)), np.array(
        [gt, gh, gw], dtype=np.int64)


def write_reference(path, prefix, exif=False, size=None, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS):
    img, mode = load_rgb(path, exif)
    np.save(prefix + ".decoded.npy", np.asarray(img, dtype=np.uint8))
    if size is None:
        h, w = smart_resize(img.height, img.width, FACTOR, min_pixels, max_pixels)
    else:
        w, h = size
    resized = np.asarray(img.resize((w, h), Image.BICUBIC), dtype=np.uint8)
    np.save(prefix + ".resized.npy", resized)
    pv, grid = pixel_values(resized)
    np.save(prefix + ".grid.npy", grid)
    if w * h <= PIXEL_VALUES_LIMIT:
        np.save(prefix + ".pixel_values.npy", pv)
    return mode


# ----------------------------------------------------------------------------------------------------------------
# Test image generation


def noise(rng, h, w, c=3):
    return rng.integers(0, 256, size=(h, w, c) if c > 1 else (h, w), dtype=np.uint8)


def photo_like(rng, h, w):
    """Smooth content plus noise: JPEG-friendly, still exercises every rounding path."""
    small = Image.fromarray(noise(rng, max(2, h // 40), max(2, w // 40)))
    base = np.asarray(small.resize((w, h), Image.BILINEAR), dtype=np.int16)
    jitter = rng.integers(-12, 13, size=(h, w, 3), dtype=np.int16)
    return np.clip(base + jitter, 0, 255).astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png_raw(path, width, height, depth, color_type, rows, extra_chunks=()):
    """A PNG written by hand, for the layouts PIL cannot save (16-bit RGB, LA and RGBA; 2- and 4-bit)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr))
        for kind, data in extra_chunks:
            f.write(png_chunk(kind, data))
        f.write(png_chunk(b"IDAT", zlib.compress(raw, 6)) + png_chunk(b"IEND", b""))


def write_png_adam7(path, pixels):
    """An interlaced (Adam7) 8-bit RGB PNG: seven passes of sub-images, each row with filter type None."""
    h, w, _ = pixels.shape
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                           (0, 1, 1, 2)):
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw, 6)) +
                png_chunk(b"IEND", b""))


def pack_bits(values, bits):
    """Packs a row of small integers MSB first, as PNG stores samples of 1, 2 and 4 bits."""
    per_byte = 8 // bits
    out = bytearray()
    for i in range(0, len(values), per_byte):
        byte = 0
        for j in range(per_byte):
            v = int(values[i + j]) if i + j < len(values) else 0
            byte |= v << (8 - bits * (j + 1))
        out.append(byte)
    return bytes(out)


def gif_codes_uncompressed(indices, min_code_size):
    """LZW stream without compression: every index is a literal, a clear code before the code width would grow."""
    clear, end = 1 << min_code_size, (1 << min_code_size) + 1
    width = min_code_size + 1
    # Each literal after the first one following a clear code adds a table entry; stop one short of the entry
    # count at which a decoder widens its codes.
    budget = (1 << width) - (clear + 2) - 1
    codes = [clear]
    for n, v in enumerate(indices):
        if n and n % budget == 0:
            codes.append(clear)
        codes.append(int(v))
    codes.append(end)
    acc = nbits = 0
    out = bytearray()
    for code in codes:
        acc |= code << nbits
        nbits += width
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    blocks = bytearray([min_code_size])
    for i in range(0, len(out), 255):
        part = out[i:i + 255]
        blocks += bytes([len(part)]) + part
    return bytes(blocks + b"\x00")


def write_gif_partial(path, rng):
    """A GIF whose first frame covers part of the canvas, with a local palette and a transparent index: what
    Pillow shows outside the frame and for the transparent pixels is not what FFmpeg paints."""
    cw, ch, left, top, fw, fh = 40, 30, 5, 4, 20, 15
    global_pal = noise(rng, 16, 3, 1).tobytes()
    local_pal = noise(rng, 16, 3, 1).tobytes()
    indices = rng.integers(0, 16, size=fw * fh)
    out = bytearray(b"GIF89a" + struct.pack("<HH", cw, ch) + bytes([0x80 | 0x33, 5, 0]) + global_pal)
    out += bytes([0x21, 0xF9, 4, 0x01, 0, 0, 7, 0])  # graphic control: transparent index 7
    out += bytes([0x2C]) + struct.pack("<HHHH", left, top, fw, fh) + bytes([0x80 | 0x03]) + local_pal
    out += gif_codes_uncompressed(indices, 4) + b"\x3B"
    with open(path, "wb") as f:
        f.write(out)


def write_bmp_v5_rgba(path, rng, w=23, h=17):
    """32-bit BITFIELDS BMP with a V5 header and an alpha mask: Pillow opens it as RGBA."""
    pixels = noise(rng, h, w, 4)
    bgra = pixels[:, :, [2, 1, 0, 3]][::-1].tobytes()  # bottom-up rows, B G R A bytes
    header = struct.pack("<IiiHHIIiiII", 124, w, h, 1, 32, 3, len(bgra), 2835, 2835, 0, 0)
    header += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)
    header += b"BGRs" + bytes(36) + bytes(12) + struct.pack("<IIII", 4, 0, 0, 0)
    assert len(header) == 124
    offset = 14 + len(header)
    with open(path, "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", offset + len(bgra), 0, 0, offset) + header + bgra)


def write_bmp_16(path, rng, bitfields, w=29, h=13):
    """16-bit BMP: 5-5-5 without compression, or 5-6-5 with BITFIELDS masks."""
    values = rng.integers(0, 1 << 16, size=(h, w)).astype("<u2")
    if not bitfields:
        values &= 0x7FFF
    stride = (w * 2 + 3) & ~3
    rows = b"".join(values[y].tobytes().ljust(stride, b"\0") for y in range(h - 1, -1, -1))
    masks = struct.pack("<III", 0xF800, 0x07E0, 0x001F) if bitfields else b""
    header = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 16, 3 if bitfields else 0, len(rows), 2835, 2835, 0, 0)
    offset = 14 + len(header) + len(masks)
    with open(path, "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + header + masks + rows)


def write_tiff_raw(path, w, h, spp, bits, photometric, extra_samples, data):
    """An uncompressed little-endian single-strip TIFF, for the sample layouts PIL does not write."""
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, spp, None), (259, 3, 1, 1), (262, 3, 1, photometric),
               (273, 4, 1, 0), (277, 3, 1, spp), (278, 4, 1, h), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    if extra_samples is not None:
        entries.append((338, 3, 1, extra_samples))
    ifd_size = 2 + 12 * len(entries) + 4
    bits_offset = 8 + ifd_size
    data_offset = bits_offset + 2 * spp
    out = bytearray(b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        if tag == 258:  # BitsPerSample: inline when the values fit in 4 bytes, else stored after the IFD
            packed = struct.pack("<HH", bits, bits if spp > 1 else 0) if spp <= 2 else struct.pack("<I", bits_offset)
        elif tag == 273:
            packed = struct.pack("<I", data_offset)
        else:
            packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + packed
    out += struct.pack("<I", 0) + struct.pack("<" + "H" * spp, *([bits] * spp)) + data
    with open(path, "wb") as f:
        f.write(out)


def exif_bytes(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def generate(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(20240611)
    cases = []

    def add(name, **extra):
        cases.append(dict({"file": name}, **extra))

    def save(name, img, **kw):
        img.save(os.path.join(out_dir, name), **kw)
        add(name)

    p = lambda name: os.path.join(out_dir, name)  # noqa: E731

    # sizes: round-half-to-even, extreme ratios, below min_pixels, above max_pixels
    save("rgb_350x350.png", Image.fromarray(noise(rng, 350, 350)))
    save("rgb_378x350.png", Image.fromarray(noise(rng, 350, 378)))
    save("rgb_406x434.png", Image.fromarray(noise(rng, 434, 406)))
    save("tall_40x7000.png", Image.fromarray(noise(rng, 7000, 40)))
    save("wide_3000x17.png", Image.fromarray(noise(rng, 17, 3000)))
    save("tiny_10x10.png", Image.fromarray(noise(rng, 10, 10)))
    save("tiny_28x28.png", Image.fromarray(noise(rng, 28, 28)))
    save("one_1x1.png", Image.fromarray(noise(rng, 1, 1)))
    save("large_4000x3300.jpg", Image.fromarray(photo_like(rng, 3300, 4000)), quality=90)
    Image.fromarray(noise(rng, 800, 1000)).save(p("medium_1000x800.png"))
    add("medium_1000x800.png", max_pixels=256 * 28 * 28)
    Image.fromarray(noise(rng, 90, 120)).save(p("small_120x90.png"))
    add("small_120x90.png", min_pixels=512 * 28 * 28)

    # PNG modes
    save("grey_L.png", Image.fromarray(noise(rng, 61, 83, 1), "L"))
    save("bilevel_1.png", Image.fromarray(noise(rng, 45, 70, 1) > 127))
    pal = Image.fromarray(noise(rng, 57, 91, 1) % 200, "L").convert("P")
    pal.putpalette(noise(rng, 200, 3, 1).tobytes())
    save("palette_P.png", pal)
    pal_t = Image.fromarray(noise(rng, 64, 48, 1), "L").convert("P")
    pal_t.putpalette(noise(rng, 256, 3, 1).tobytes())
    save("palette_P_trns.png", pal_t, transparency=bytes(noise(rng, 256, 1, 1).tobytes()))
    save("grey_LA.png", Image.fromarray(noise(rng, 53, 77, 2), "LA"))
    save("rgba_alpha.png", Image.fromarray(noise(rng, 71, 97, 4), "RGBA"))
    rgba_edges = noise(rng, 40, 64, 4)
    rgba_edges[:, :, 3] = rng.choice(np.array([0, 1, 127, 128, 254, 255], dtype=np.uint8), size=(40, 64))
    save("rgba_edge_alpha.png", Image.fromarray(rgba_edges, "RGBA"))
    save("rgb_trns.png", Image.fromarray(noise(rng, 33, 45)), transparency=(10, 20, 30))
    h, w = 47, 59
    write_png_raw(p("rgb16.png"), w, h, 16, 2, [noise(rng, 1, w * 6, 1).tobytes() for _ in range(h)])
    add("rgb16.png")
    grey16 = rng.integers(0, 600, size=(h, w)).astype(">u2")
    write_png_raw(p("grey16.png"), w, h, 16, 0, [grey16[y].tobytes() for y in range(h)])
    add("grey16.png")
    write_png_raw(p("la16.png"), w, h, 16, 4, [noise(rng, 1, w * 4, 1).tobytes() for _ in range(h)])
    add("la16.png")
    write_png_raw(p("rgba16.png"), w, h, 16, 6, [noise(rng, 1, w * 8, 1).tobytes() for _ in range(h)])
    add("rgba16.png")
    write_png_raw(p("grey4.png"), w, h, 4, 0, [pack_bits(rng.integers(0, 16, size=w), 4) for _ in range(h)])
    add("grey4.png")
    write_png_raw(p("grey2.png"), w, h, 2, 0, [pack_bits(rng.integers(0, 4, size=w), 2) for _ in range(h)])
    add("grey2.png")
    write_png_adam7(p("interlaced.png"), noise(rng, 37, 43))
    add("interlaced.png")
    write_png_raw(p("palette2.png"), w, h, 2, 3, [pack_bits(rng.integers(0, 4, size=w), 2) for _ in range(h)],
                  extra_chunks=[(b"PLTE", noise(rng, 4, 3, 1).tobytes())])
    add("palette2.png")

    # JPEG: chroma subsampling, progressive, grey, CMYK (Adobe inverted), odd sizes
    photo = Image.fromarray(photo_like(rng, 251, 333))
    save("jpeg_420.jpg", photo, quality=85, subsampling=2)
    save("jpeg_422.jpg", photo, quality=85, subsampling=1)
    save("jpeg_444.jpg", photo, quality=95, subsampling=0)
    save("jpeg_progressive.jpg", photo, quality=80, progressive=True)
    save("jpeg_grey.jpg", photo.convert("L"), quality=90)
    save("jpeg_cmyk.jpg", Image.fromarray(noise(rng, 77, 91, 4), "CMYK"), quality=90)
    save("jpeg_noise_odd.jpg", Image.fromarray(noise(rng, 113, 97)), quality=75)

    # WebP lossy and lossless, with and without alpha
    save("webp_lossy.webp", Image.fromarray(photo_like(rng, 143, 211)), quality=80)
    save("webp_lossless.webp", Image.fromarray(noise(rng, 67, 89)), lossless=True)
    save("webp_lossy_alpha.webp", Image.fromarray(noise(rng, 75, 65, 4), "RGBA"), quality=70)
    save("webp_lossless_alpha.webp", Image.fromarray(noise(rng, 51, 73, 4), "RGBA"), lossless=True)

    # BMP, TIFF, GIF
    save("rgb.bmp", Image.fromarray(noise(rng, 39, 61)))
    save("palette.bmp", pal)
    save("grey.bmp", Image.fromarray(noise(rng, 29, 31, 1), "L"))
    save("rgba_bgra32.bmp", Image.fromarray(noise(rng, 26, 35, 4), "RGBA"))
    write_bmp_v5_rgba(p("rgba_v5.bmp"), rng)
    add("rgba_v5.bmp")
    write_bmp_16(p("rgb555.bmp"), rng, bitfields=False)
    add("rgb555.bmp")
    write_bmp_16(p("rgb565.bmp"), rng, bitfields=True)
    add("rgb565.bmp")
    save("bilevel.bmp", Image.fromarray(noise(rng, 21, 45, 1) > 127))
    pal4 = Image.fromarray(noise(rng, 19, 23, 1) % 16, "L").convert("P")
    pal4.putpalette(noise(rng, 16, 3, 1).tobytes())
    save("palette4.bmp", pal4, bits=4)
    save("grey16.tif", Image.fromarray(rng.integers(0, 700, size=(21, 30)).astype(np.uint16), "I;16"))
    save("palette.tif", pal)
    save("grey_LA.tif", Image.fromarray(noise(rng, 22, 26, 2), "LA"))
    save("cmyk.tif", Image.fromarray(noise(rng, 24, 28, 4), "CMYK"))
    # FFmpeg converts CMYK TIFF to RGB itself, as (255 - c) * (255 - k) * 257 >> 16, where Pillow computes
    # nk - round(c * nk / 255) with nk = 255 - k; the raw CMYK never leaves the decoder, so about half the samples
    # are 1 apart.
    cases[-1]["decode_tolerance"] = 1
    write_tiff_raw(p("rgba_associated.tif"), 19, 11, 4, 8, 2, 1, noise(rng, 11, 19, 4).tobytes())
    add("rgba_associated.tif")
    write_tiff_raw(p("rgba_unspecified.tif"), 19, 11, 4, 8, 2, 0, noise(rng, 11, 19, 4).tobytes())
    add("rgba_unspecified.tif")
    write_tiff_raw(p("rgb48.tif"), 17, 13, 3, 16, 2, None, noise(rng, 13, 17 * 6, 1).tobytes())
    add("rgb48.tif")
    save("bilevel.tif", Image.fromarray(noise(rng, 21, 45, 1) > 127))
    save("rgb_deflate.tif", Image.fromarray(noise(rng, 30, 20)), compression="tiff_adobe_deflate")
    save("rgb_packbits.tif", Image.fromarray(noise(rng, 30, 20)), compression="packbits")
    save("rgb.tif", Image.fromarray(noise(rng, 43, 57)))
    save("rgb_lzw.tif", Image.fromarray(photo_like(rng, 64, 80)), compression="tiff_lzw")
    save("rgba.tif", Image.fromarray(noise(rng, 37, 41, 4), "RGBA"))
    save("grey.tif", Image.fromarray(noise(rng, 33, 47, 1), "L"))
    frames = []
    for _ in range(3):
        f = Image.fromarray(noise(rng, 45, 66, 1) % 64, "L").convert("P")
        f.putpalette(noise(rng, 64, 3, 1).tobytes())
        frames.append(f)
    frames[0].save(p("animated.gif"), save_all=True, append_images=frames[1:], duration=50, loop=0)
    add("animated.gif")
    gif_t = Image.fromarray(noise(rng, 38, 52, 1) % 32, "L").convert("P")
    gif_t.putpalette(noise(rng, 32, 3, 1).tobytes())
    save("transparent.gif", gif_t, transparency=5)
    save("grey.gif", Image.fromarray(noise(rng, 31, 29, 1), "L"))
    write_gif_partial(p("partial_frame.gif"), rng)
    add("partial_frame.gif")

    # EXIF orientation: all eight in JPEG (applied), 6 also without the option, and PNG/WebP containers
    oriented = Image.fromarray(photo_like(rng, 23, 37))
    for k in range(1, 9):
        oriented.save(p(f"exif_o{k}.jpg"), quality=92, exif=exif_bytes(k))
        add(f"exif_o{k}.jpg", exif=True)
    add("exif_o6.jpg", exif=False, tag="noexif")
    Image.fromarray(noise(rng, 19, 30)).save(p("exif_o6.png"), exif=exif_bytes(6))
    add("exif_o6.png", exif=True)
    Image.fromarray(noise(rng, 21, 34)).save(p("exif_o8.webp"), lossless=True, exif=exif_bytes(8))
    add("exif_o8.webp", exif=True)
    Image.fromarray(noise(rng, 18, 27)).save(p("exif_o3.tif"), tiffinfo={0x0112: 3})
    add("exif_o3.tif", exif=True)
    # TIFF is turned upright by Image.open itself, so also without the option
    Image.fromarray(photo_like(rng, 22, 35)).save(p("orient_o6.tif"), tiffinfo={0x0112: 6}, compression="tiff_lzw")
    add("orient_o6.tif")

    # a PNG-content file with a misleading extension: the format comes from the bytes
    Image.fromarray(noise(rng, 20, 30)).save(p("png_named.jpg"), format="PNG")
    add("png_named.jpg")

    with open(p("manifest.json"), "w") as f:
        json.dump({"cases": cases}, f, indent=1)
    return cases


def case_prefix(out_dir, case):
    stem = case["file"].replace(".", "_") + ("_" + case["tag"] if "tag" in case else "")
    return os.path.join(out_dir, stem)


def reference(out_dir):
    with open(os.path.join(out_dir, "manifest.json")) as f:
        cases = json.load(f)["cases"]
    modes = {}
    for case in cases:
        prefix = case_prefix(out_dir, case)
        modes[os.path.basename(prefix)] = write_reference(
            os.path.join(out_dir, case["file"]), prefix, exif=case.get("exif", False),
            min_pixels=case.get("min_pixels", MIN_PIXELS), max_pixels=case.get("max_pixels", MAX_PIXELS))
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump({"pillow_version": Image.__version__, "modes": modes}, f, indent=1)


def resize_cases(out_dir, count, seed):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    fixed = [  # (in_w, in_h, out_w, out_h): 1-pixel sides, identity, one-axis, large factors both ways
        (1, 1, 1, 1), (1, 1, 7, 5), (5, 7, 1, 1), (1, 40, 3, 9), (40, 1, 9, 3), (64, 48, 64, 48),
        (64, 48, 64, 20), (64, 48, 20, 48), (300, 200, 3, 2), (997, 13, 11, 5), (3, 2, 451, 317),
        (17, 301, 160, 29), (256, 256, 255, 257), (101, 99, 336, 336), (350, 350, 336, 336),
    ]
    sizes = list(fixed)
    while len(sizes) < count:
        in_w, in_h = (int(v) for v in rng.integers(1, 320, size=2))
        scale = rng.choice([0.05, 0.3, 0.7, 1.0, 1.3, 2.5, 6.0], size=2)
        sizes.append((in_w, in_h, max(1, int(in_w * scale[0] + rng.integers(0, 3))),
                      max(1, int(in_h * scale[1] + rng.integers(0, 3)))))
    listed = []
    for i, (in_w, in_h, out_w, out_h) in enumerate(sizes):
        src = noise(rng, in_h, in_w)
        out = np.asarray(Image.fromarray(src).resize((out_w, out_h), Image.BICUBIC), dtype=np.uint8)
        np.save(os.path.join(out_dir, f"case{i}.in.npy"), src)
        np.save(os.path.join(out_dir, f"case{i}.out.npy"), out)
        listed.append({"name": f"case{i}", "in": [in_w, in_h], "out": [out_w, out_h]})
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump({"cases": listed}, f, indent=1)


def main(argv):
    # Pillow warns when a palette image with per-entry transparency is converted; that is the reference's path.
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("generate", "reference", "suite"):
        sub.add_parser(name).add_argument("dir")
    one = sub.add_parser("image")
    one.add_argument("file")
    one.add_argument("prefix")
    one.add_argument("--exif", action="store_true")
    one.add_argument("--size", type=int, nargs=2, metavar=("W", "H"))
    one.add_argument("--min-pixels", type=int, default=MIN_PIXELS)
    one.add_argument("--max-pixels", type=int, default=MAX_PIXELS)
    rc = sub.add_parser("resize-cases")
    rc.add_argument("dir")
    rc.add_argument("--count", type=int, default=60)
    rc.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.command in ("generate", "suite"):
        generate(args.dir)
    if args.command in ("reference", "suite"):
        reference(args.dir)
    if args.command == "image":
        mode = write_reference(args.file, args.prefix, args.exif, tuple(args.size) if args.size else None,
                               args.min_pixels, args.max_pixels)
        print(mode)
    if args.command == "resize-cases":
        resize_cases(args.dir, args.count, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
