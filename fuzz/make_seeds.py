#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/): for each parser a few small valid inputs and
a few slightly broken ones, all made here (Pillow for the images, the standard library for the rest).

    /usr/bin/python3 fuzz/make_seeds.py [CORPUS_DIR]      default: fuzz/corpus next to this script

Seeds named `regress-*` are inputs the fuzzer once found to crash a parser; they are kept as they are and never
rewritten here. Everything else in a target's folder is replaced by what this script writes, byte for byte the same
on every run with the same Pillow.
"""
import io
import json
import math
import os
import struct
import sys

from PIL import Image

QWEN2_PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+")


def compact(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------------------- safetensors

def safetensors(tensors, metadata=None, header_len=None, cut=0):
    """tensors: [(name, dtype, shape, bytes)] laid out in order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = compact(header)
    text += b" " * (-len(text) % 8)
    blob = struct.pack("<Q", len(text) if header_len is None else header_len) + text + data
    return blob[:len(blob) - cut]


def safetensors_seeds():
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.25)
    bf16 = bytes([0x80, 0x3F, 0x00, 0xC0, 0x00, 0x00])
    seeds = {
        "two_tensors": safetensors([("a", "F32", [2, 2], f32), ("b", "BF16", [3], bf16)], {"format": "pt"}),
        "empty_header": safetensors([]),
        "scalar_and_empty": safetensors([("s", "I64", [], b"\x07" * 8), ("z", "U8", [0, 4], b"")]),
        "truncated": safetensors([("a", "F32", [2, 2], f32)], cut=3),
        "header_too_long": safetensors([("a", "F32", [1], f32[:4])], header_len=1 << 40),
        "f64_unsupported": safetensors([("d", "F64", [1], b"\0" * 8)]),
    }
    overlap = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
               "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    text = compact(overlap)
    seeds["overlap"] = struct.pack("<Q", len(text)) + text + b"\0" * 12
    # model.safetensors.index.json of the sharded folder the target prepares (fuzz/safetensors.cc).
    shard1, shard2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    weight_map = {"a": shard1, "b": shard1, "c": shard2, "d": shard2, "e.w": shard2}
    seeds["index"] = compact({"metadata": {"total_size": 42}, "weight_map": weight_map}) + b"\n"
    seeds["index_missing_shard"] = compact({"weight_map": {"a": "model-00003-of-00003.safetensors"}})
    seeds["index_wrong_shard"] = compact({"weight_map": {"c": shard1}})
    seeds["index_escapes"] = compact({"weight_map": {"a": "../" + shard1}})
    return {name + (".json" if name.startswith("index") else ".safetensors"): blob for name, blob in seeds.items()}


# ---------------------------------------------------------------------------------------------------------- config

def model_config():
    text = {"hidden_size": 64, "intermediate_size": 160, "max_position_embeddings": 32768, "num_attention_heads": 4,
            "num_hidden_layers": 3, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
            "rope_scaling": {"mrope_section": [2, 3, 3], "rope_type": "default", "type": "default"},
            "hidden_act": "silu", "vocab_size": 151936}
    vision = {"depth": 4, "fullatt_block_indexes": [1, 3], "hidden_act": "silu", "hidden_size": 32, "in_channels": 3,
              "intermediate_size": 48, "num_heads": 2, "out_hidden_size": 64, "patch_size": 14,
              "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112}
    audio = {"d_model": 32, "encoder_attention_heads": 2, "encoder_ffn_dim": 64, "encoder_layers": 2,
             "max_source_positions": 1500, "n_window": 100, "num_mel_bins": 128, "output_dim": 64}
    tokens = {"audio_end_token_id": 151648, "audio_start_token_id": 151647, "audio_token_index": 151646,
              "image_token_index": 151655, "video_token_index": 151656, "vision_end_token_id": 151653,
              "vision_start_token_id": 151652, "position_id_per_seconds": 25, "seconds_per_chunk": 2}
    return text, vision, audio, tokens


def config_seeds():
    text, vision, audio, tokens = model_config()
    flat = dict(tokens, model_type="nvomniembed", text_config=text, vision_config=vision, audio_config=audio)
    nested = {"model_type": "qwen2_5_omni",
              "thinker_config": dict(tokens, text_config=dict(text, rope_scaling=None,
                                                              rope_parameters={"mrope_section": [2, 3, 3]}),
                                     vision_config=dict(vision, in_chans=3), audio_config=audio)}
    del nested["thinker_config"]["vision_config"]["in_channels"]
    bad_sum = json.loads(json.dumps(flat))
    bad_sum["text_config"]["rope_scaling"]["mrope_section"] = [2, 3, 4]
    bad_type = json.loads(json.dumps(flat))
    bad_type["vision_config"]["depth"] = "4"
    preprocessor = {"feature_size": 128, "hop_length": 160, "n_fft": 400, "n_samples": 4800000, "sampling_rate": 16000,
                    "image_mean": [0.48145466, 0.4578275, 0.40821073],
                    "image_std": [0.26862954, 0.26130258, 0.27577711],
                    "max_pixels": 12845056, "min_pixels": 3136, "merge_size": 2, "patch_size": 14,
                    "temporal_patch_size": 2}
    newer = dict(preprocessor, size={"shortest_edge": 3136.0, "longest_edge": 1003520})
    del newer["min_pixels"], newer["max_pixels"]
    return {
        "config_flat.json": compact(flat),
        "config_nested.json": compact(nested),
        "config_mrope_sum.json": compact(bad_sum),
        "config_depth_string.json": compact(bad_type),
        "preprocessor.json": compact(preprocessor),
        "preprocessor_size.json": compact(newer),
        "preprocessor_bad_std.json": compact(dict(preprocessor, image_std=[0.2, 0, 0.3])),
        "preprocessor_hop.json": compact(dict(preprocessor, hop_length=0)),
        "not_object.json": b"[1, 2, 3]",
    }


# ---------------------------------------------------------------------------------------------------------- tokenizer

def byte_level(b):
    """GPT-2 bytes_to_unicode of one byte."""
    kept = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    if b in kept:
        return chr(b)
    return chr(256 + [x for x in range(256) if x not in kept].index(b))


def tokenizer(merges, extra, added=("<|im_start|>", "<|im_end|>", "<|x|>"), **changes):
    vocab = {byte_level(b): b for b in range(256)}
    for t in extra:
        vocab[t] = len(vocab)
    added_tokens = [{"id": 300 + i, "content": c, "special": c != "<|x|>", "lstrip": False, "rstrip": False,
                     "single_word": False, "normalized": False} for i, c in enumerate(added)]
    doc = {"version": "1.0", "added_tokens": added_tokens, "normalizer": {"type": "NFC"},
           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
               {"type": "Split", "pattern": {"Regex": QWEN2_PRETOKENIZE_PATTERN}, "behavior": "Isolated",
                "invert": False},
               {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
           "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                     "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                     "merges": merges}}
    doc.update(changes)
    return compact(doc)


def tokenizer_seeds():
    extra = ["ab", "bc", "abc", "\u0120t", "he", "the", "\u0120the", "12"]
    pairs = [["a", "b"], ["b", "c"], ["a", "bc"], ["\u0120", "t"], ["h", "e"], ["t", "he"], ["\u0120t", "he"],
             ["1", "2"]]
    return {
        "pairs.json": tokenizer(pairs, extra),
        "strings.json": tokenizer([" ".join(p) for p in pairs], extra),
        "no_added.json": tokenizer(pairs[:2], extra[:2], added=()),
        "merge_oov.json": tokenizer(pairs + [["x", "yz"]], extra),
        "nfkc.json": tokenizer(pairs, extra, normalizer={"type": "NFKC"}),
        "not_object.json": b'["model"]',
    }


# ---------------------------------------------------------------------------------------------------------- items

def item_seeds():
    lines = {
        "embed.jsonl": [{"text": "hello world"}, {"id": 7, "role": "query", "text": "what is this?"},
                        {"id": {"k": [1, 2]}, "text": "", "image": "a.png"},
                        {"image": ["a.png", "/abs/b.jpg"], "audio": "c.wav", "video": "d.mp4", "text": "mixed"}],
        "beir.jsonl": [{"_id": "d1", "title": "Title", "text": "  body text "}, {"_id": 2, "text": "two"},
                       {"id": "d3", "title": None, "text": None, "image": None, "audio": "x.wav"}],
    }
    seeds = {name: "\n".join(json.dumps(line, ensure_ascii=False) for line in entries).encode() + b"\n"
             for name, entries in lines.items()}
    seeds["broken.jsonl"] = (b'{"text": "ok"}\r\n\n   \n{"text": 1}\n{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n'
                             b'{"role": "assistant", "text": "r"}\n{"image": ""}\n{"role": "query"}\nnot json\n'
                             b'{"text": "\xc3\x28"}\n[1]\n')
    return seeds


def request_seeds():
    png = "data:image/png;base64,iVBORw0KGgo="
    bodies = {
        "string.json": {"model": "m", "input": "hello"},
        "list.json": {"input": ["a", "b"], "input_type": "query", "encoding_format": "base64", "dimensions": 2048},
        "parts.json": {"input": [{"role": "document", "content": [
            {"type": "text", "text": "t"}, {"type": "image_url", "image_url": {"url": png}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "video_url", "video_url": {"url": "sub/a.png"}}, {"type": "audio_url", "audio_url": "file:sub/a.png"}]}],
            "fusion": "late", "truncate": False},
        "paths_out.json": {"input": [{"content": [{"type": "image_url", "image_url": {"url": "../outside.txt"}},
                                                  {"type": "image_url", "image_url": {"url": "out.png"}}]}]},
        "search.json": {"query": [{"type": "text", "text": "q"}], "k": 5, "modality": ["image", "video"],
                        "late_weight": 0.3},
        "wrong_types.json": {"input": [1, 2], "encoding_format": 3, "k": "x"},
        "like.json": {"like": 3, "k": 2, "modality": "audio"},
        "like_and_query.json": {"like": -1, "query": "q"},
    }
    seeds = {name: json.dumps(body).encode() for name, body in bodies.items()}
    seeds["broken.json"] = b'{"input": ["a", {"content": [{"type": "text"'
    return seeds


# ---------------------------------------------------------------------------------------------------------- images

def gradient(mode, size=(8, 6)):
    img = Image.new("RGBA", size)
    img.putdata([(x * 30 % 256, y * 40 % 256, (x * y * 9) % 256, 255 if (x + y) % 3 else 60)
                 for y in range(size[1]) for x in range(size[0])])
    return img.convert(mode)


def encode(img, fmt, **options):
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def exif_with_orientation(value):
    exif = Image.Exif()
    exif[274] = value
    return exif.tobytes()


def image_seeds():
    rgb = gradient("RGB")
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    palette.info["transparency"] = 2
    tiff_oriented = encode(rgb, "TIFF", tiffinfo={274: 6})
    grey16 = Image.new("I;16", (5, 4))
    grey16.putdata([i * 3000 for i in range(20)])
    seeds = {
        "rgb.png": encode(rgb, "PNG"),
        "rgba.png": encode(gradient("RGBA"), "PNG"),
        "palette_transparent.png": encode(palette, "PNG"),
        "grey16.png": encode(grey16, "PNG"),
        "exif6.png": encode(rgb, "PNG", exif=exif_with_orientation(6)),
        "rgb.jpg": encode(rgb, "JPEG", quality=90),
        "grey_progressive.jpg": encode(gradient("L"), "JPEG", progressive=True),
        "cmyk.jpg": encode(gradient("CMYK"), "JPEG"),
        "exif8.jpg": encode(rgb, "JPEG", exif=exif_with_orientation(8)),
        "lossy.webp": encode(rgb, "WEBP", quality=50),
        "lossless_alpha.webp": encode(gradient("RGBA"), "WEBP", lossless=True, exif=exif_with_orientation(3)),
        "rgb24.bmp": encode(rgb, "BMP"),
        "rgb.tif": encode(rgb, "TIFF"),
        "rgba_oriented.tif": encode(gradient("RGBA"), "TIFF", tiffinfo={274: 6}),
        "oriented.tif": tiff_oriented,
        "transparent.gif": encode(palette, "GIF", transparency=2),
        "truncated.png": encode(rgb, "PNG")[:-20],
        "truncated.jpg": encode(rgb, "JPEG")[:-40],
        "big_header.png": encode(Image.new("RGB", (200, 200)), "PNG"),
    }
    # 32-bit BMP with BITFIELDS and an alpha mask (Pillow opens it as RGBA): written by hand.
    w, h = 3, 2
    pixels = b"".join(struct.pack("<I", 0x80000000 | (x * 80) << 16 | (y * 120) << 8 | 0x40)
                      for y in range(h) for x in range(w))
    info = struct.pack("<IiiHHIIiiII", 108, w, -h, 1, 32, 3, len(pixels), 2835, 2835, 0, 0)
    info += struct.pack("<IIII", 0xFF0000, 0xFF00, 0xFF, 0xFF000000) + b"BGRs" + b"\0" * 48
    seeds["bitfields_alpha.bmp"] = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0,
                                                        14 + len(info)) + info + pixels
    # A GIF whose first frame sits inside a larger canvas (Pillow keeps palette index 0 outside it).
    frame = gradient("P").crop((0, 0, 4, 3))
    gif = bytearray(encode(frame, "GIF"))
    struct.pack_into("<HH", gif, 6, 8, 6)
    descriptor = gif.index(b"\x2c")
    struct.pack_into("<HH", gif, descriptor + 1, 2, 1)
    seeds["offset_frame.gif"] = bytes(gif)
    return seeds


# ---------------------------------------------------------------------------------------------------------- audio

def wav(samples, rate, channels, bits, float_format=False, data_len=None):
    """Interleaved samples in [-1, 1] as a RIFF/WAVE file."""
    if float_format:
        data = struct.pack(f"<{len(samples)}{'f' if bits == 32 else 'd'}", *samples)
    elif bits == 8:
        data = bytes(max(0, min(255, int(round(s * 127 + 128)))) for s in samples)
    else:
        scale = 2 ** (bits - 1) - 1
        data = b"".join(int(round(s * scale)).to_bytes(bits // 8, "little", signed=True) for s in samples)
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 3 if float_format else 1, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data) if data_len is None else data_len) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def tone(n, rate, hz, channels=1):
    """n frames of a sine, each channel shifted in phase, interleaved."""
    return [0.5 * math.sin(2 * math.pi * hz * i / rate + c) for i in range(n) for c in range(channels)]


def audio_seeds():
    return {
        "mono16k_s16.wav": wav(tone(800, 16000, 440), 16000, 1, 16),
        "stereo8k_u8.wav": wav(tone(400, 8000, 300, 2), 8000, 2, 8),
        "stereo44k_s24.wav": wav(tone(441, 44100, 1000, 2), 44100, 2, 24),
        "mono22k_f32.wav": wav(tone(300, 22050, 200), 22050, 1, 32, float_format=True),
        "mono48k_f64.wav": wav(tone(200, 48000, 100), 48000, 1, 64, float_format=True),
        "five_channels.wav": wav(tone(100, 16000, 700, 5), 16000, 5, 16),
        "data_past_end.wav": wav(tone(100, 16000, 440), 16000, 1, 16, data_len=1 << 20),
        "truncated.wav": wav(tone(100, 16000, 440), 16000, 1, 16)[:30],
        "silent_empty.wav": wav([], 16000, 1, 16),
    }


# ---------------------------------------------------------------------------------------------------------- npy

def npy(descr, shape, data, fortran=False, version=1):
    shape_text = f"({shape[0]},)" if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"
    header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_text}, }}"
    prefix = 6 + 2 + (2 if version == 1 else 4)
    header += " " * (-(prefix + len(header) + 1) % 64) + "\n"
    size = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode() + data


def npy_seeds():
    return {
        "f4_2x3.npy": npy("<f4", (2, 3), struct.pack("<6f", 0, 1.5, -2, 3, 4, 5)),
        "i8_vector.npy": npy("<i8", (4,), struct.pack("<4q", 1, -2, 3, 1 << 40)),
        "u1_scalar.npy": npy("|u1", (), b"\x07"),
        "f8_2x2.npy": npy("<f8", (2, 2), struct.pack("<4d", 0.1, 1e300, -0.0, 7)),
        "f2_zero_dim.npy": npy("<f2", (0, 3), b""),
        "i4_v2.npy": npy("<i4", (2,), struct.pack("<2i", 5, -5), version=2),
        "fortran.npy": npy("<f4", (1, 2), b"\0" * 8, fortran=True),
        "big_endian.npy": npy(">f4", (1,), b"\0" * 4),
        "short_data.npy": npy("<f4", (3,), b"\0" * 8),
    }


# ---------------------------------------------------------------------------------------------------------- trec

def trec_seeds():
    return {
        "qrels.trec": b"q1 0 d1 1\nq1 0 d2 0\n# comment\n\nq2 0 d1 2\nq2 0 d3 -1\n",
        "qrels_beir.tsv": b"query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td 2\t0\nq1\td1\t2\r\n",
        "run.trec": b"q1 Q0 d1 1 12.5 tag\nq1 Q0 d2 2 -3e2 tag extra\nq2 Q0 d1 1 +1 tag\nq2 Q0 d3 2 1e999 tag\n",
        "run_duplicate.trec": b"q1 Q0 d1 1 2 t\nq1 Q0 d1 2 1 t\n",
        "run_bad_score.trec": b"q1 Q0 d1 1 nan t\n",
        "qrels_bad_rel.trec": b"q1 0 d1 x\n",
    }


# ---------------------------------------------------------------------------------------------------------- settings

def settings_seeds():
    embedding = {"system_prompt": "You are a helpful assistant.", "query_prefix": "query: ",
                 "document_prefix": "passage: ", "attention": "bidirectional", "max_tokens": 0,
                 "image_min_pixels": 0, "image_max_pixels": 0, "exif_orientation": False,
                 "audio_max_samples": 2048000}
    video = dict(embedding, video={"fusion": "late", "pipeline": "st", "fps": 2.0, "min_pixels": 3136,
                                   "max_pixels": 602112, "max_frames": 64})
    index = {"model": "nvidia/omni-embed-nemotron-3b", "model_fingerprint": "0123abcd", "embedding": compact(embedding).decode(),
             "dim": 2048, "vectors": "flat", "hnsw_m": 32, "hnsw_ef_construction": 80, "text_window": 512,
             "text_overlap": 64, "media_window": 30.0, "media_overlap": 0.0}
    return {
        "embedding.json": compact(embedding),
        "embedding_video.json": compact(video),
        "embedding_bad_fusion.json": compact(dict(embedding, video=dict(video["video"], fusion="early"))),
        "embedding_missing.json": compact({k: v for k, v in embedding.items() if k != "attention"}),
        "index.json": compact(index),
        "index_hnsw_video.json": compact(dict(index, vectors="hnsw", embedding=compact(video).decode())),
        "index_dim_string.json": compact(dict(index, dim="2048")),
    }


def browse_seeds():
    """4 bytes of file size, then a Range header / query string / Cookie header (fuzz/browse.cc)."""
    size = lambda n: n.to_bytes(4, "little")
    return {
        "range.txt": size(1000) + b"bytes=0-499",
        "suffix.txt": size(1000) + b"bytes=-200",
        "open.txt": size(0) + b"bytes=5-",
        "several.txt": size(4096) + b"bytes=10-20, 30-, -5",
        "query.txt": size(10) + b"item=12&t=3.5&path=%2Fa%20b%2Fc+d.png&size=320",
        "cookie.txt": size(10) + b"a=1; omni_embed_key=sk%2Dx; b",
    }


# ---------------------------------------------------------------------------------------------------------- main

TARGETS = {
    "safetensors": safetensors_seeds, "config": config_seeds, "tokenizer": tokenizer_seeds, "item": item_seeds,
    "image": image_seeds, "audio": audio_seeds, "npy": npy_seeds, "trec": trec_seeds, "settings": settings_seeds,
    "request": request_seeds, "browse": browse_seeds,
}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for target, make in TARGETS.items():
        folder = os.path.join(root, target)
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if not name.startswith("regress-"):
                os.remove(os.path.join(folder, name))
        seeds = make()
        for name, blob in seeds.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(blob)
        print(f"{target}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    main()
