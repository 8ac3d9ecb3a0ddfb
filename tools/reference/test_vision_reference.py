#!/usr/bin/env python3
"""Self-tests of the vision / multimodal part of the numpy reference (vision_model.py, rope_index.py,
image_preprocess.py, the image path of text_embed.py). Run: python3 tools/reference/test_vision_reference.py
Prints one line per test and "N passed, M failed"; exits non-zero on any failure."""

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from checkpoint import Checkpoint  # noqa: E402
from image_preprocess import (BICUBIC, ImageError, load_processor_config, patchify,  # noqa: E402
                              preprocess_image, smart_resize)
from make_toy_checkpoint import TOKEN_IDS, make_toy  # noqa: E402
from numerics import round_bf16  # noqa: E402
from selftest import cosine, py_bf16, py_f32, run_selftests  # noqa: E402
from rope_index import (TokenIds, audio_output_length, get_chunked_index, get_rope_index,  # noqa: E402
                        text_positions)
from text_embed import embed  # noqa: E402
from vision_model import (VisionConfig, dedupe_consecutive, encode_images, full_cu_seqlens,  # noqa: E402
                          get_window_index, patch_positions, rotary_angles, vision_inv_freq)

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Toy:
    dir = None
    rng = None


def toy_ckpt(layout="flat"):
    return Checkpoint(os.path.join(Toy.dir, layout))


def pixels(grids, seed):
    rng = np.random.default_rng(seed)
    n = sum(t * h * w for t, h, w in grids)
    return rng.uniform(-1.8, 2.1, size=(n, 1176)).astype(np.float32)


# ------------------------------------------------------------------ windows and rotary (hand-computed)

@test
def window_index_hand_cases():
    # (grid list, window_index, raw cu_window_seqlens, deduplicated); window edge 4 merged tokens, merge 2
    def rows(r0, r1, c0, c1, width, offset=0):
        return [offset + r * width + c for r in range(r0, r1) for c in range(c0, c1)]

    cases = [
        # H'=2, W'=3: pad 2 rows / 1 col -> a single window with all 6 merged tokens
        ([(1, 4, 6)], list(range(6)), [0, 24], [0, 24]),
        # H'=5, W'=7: pad 3 / 1 -> 2x2 windows: 4x4 (16), 4x3 (12), 1x4 (4), 1x3 (3)
        ([(1, 10, 14)], rows(0, 4, 0, 4, 7) + rows(0, 4, 4, 7, 7) + rows(4, 5, 0, 4, 7) + rows(4, 5, 4, 7, 7),
         [0, 64, 112, 128, 140], [0, 64, 112, 128, 140]),
        # H'=W'=4 (multiples of 4): a whole empty window row and column -> 3 empty windows per frame
        ([(2, 8, 8)], list(range(32)), [0, 64, 64, 64, 64, 128, 128, 128, 128], [0, 64, 128]),
        # H'=8, W'=6: 3 window rows (the last empty), 2 window columns (the second 2 wide)
        ([(1, 16, 12)], rows(0, 4, 0, 4, 6) + rows(0, 4, 4, 6, 6) + rows(4, 8, 0, 4, 6) + rows(4, 8, 4, 6, 6),
         [0, 64, 96, 160, 192, 192, 192], [0, 64, 96, 160, 192]),
        # two images: indices of the second are offset by the 16 merged tokens of the first
        ([(1, 8, 8), (1, 4, 6)], list(range(16)) + list(range(16, 22)), [0, 64, 64, 64, 64, 88], [0, 64, 88]),
        # H'=1, W'=9 (a strip): windows of 1x4, 1x4, 1x1
        ([(1, 2, 18)], list(range(9)), [0, 16, 32, 36], [0, 16, 32, 36]),
    ]
    for grids, want_index, want_cu, want_dedup in cases:
        index, cu = get_window_index(np.array(grids), 4, 2)
        assert index.tolist() == want_index, (grids, index.tolist())
        assert cu == want_cu, (grids, cu)
        assert dedupe_consecutive(cu) == want_dedup, (grids, dedupe_consecutive(cu))
    assert full_cu_seqlens(np.array([(2, 8, 8), (1, 4, 6)])) == [0, 64, 128, 152]


@test
def processor_order_positions():
    # spec §4.2: n = (((ti*H' + bi)*W' + bj)*2 + ii)*2 + jj  ->  row 2*bi+ii, column 2*bj+jj
    for grid in ((1, 4, 6), (2, 6, 4), (1, 10, 14)):
        t, h, w = grid
        hm, wm = h // 2, w // 2
        want = []
        for ti in range(t):
            for bi in range(hm):
                for bj in range(wm):
                    for ii in range(2):
                        for jj in range(2):
                            want.append((2 * bi + ii, 2 * bj + jj))
        assert patch_positions(np.array([grid]), 2).tolist() == [list(p) for p in want], grid


@test
def vision_rotary_table_formula():
    # 3B shape: head_dim 80 -> a 40-wide table, 20 frequencies 1/10000^(2j/40)
    inv = vision_inv_freq(80)
    assert inv.dtype == np.float32 and inv.shape == (20,) and inv[0] == 1.0
    # torch rounds the exponent 2j/40 to float32 first (worth up to ~3 ulp of 10000^e), then a float32 power
    # (here the correctly rounded one) and a float32 reciprocal; within 1e-6 relative of the exact formula
    want = [py_f32(1.0 / py_f32(py_f32(10000.0) ** py_f32(2 * j / 40))) for j in range(20)]
    assert inv.tolist() == want, np.array(want) - inv
    exact = np.array([1.0 / 10000.0 ** (2 * j / 40) for j in range(20)])
    assert np.all(np.abs(inv / exact - 1) < 1e-6), inv / exact - 1
    raw = {"depth": 32, "hidden_size": 1280, "num_heads": 16, "intermediate_size": 3420, "patch_size": 14,
           "temporal_patch_size": 2, "spatial_merge_size": 2, "window_size": 112, "in_chans": 3,
           "fullatt_block_indexes": [7, 15, 23, 31], "out_hidden_size": 2048}
    big = VisionConfig(raw)
    assert (big.d_head, big.window_merged, big.merged_dim, big.patch_dim) == (80, 4, 5120, 1176)
    grid = np.array([(1, 6, 10), (2, 4, 4)])
    angles = rotary_angles(grid, big)
    assert angles.shape == (6 * 10 + 2 * 16, 40) and angles.dtype == np.float32
    pos = patch_positions(grid, 2)
    for n in (0, 3, 17, 59, 60, 91):
        r, c = pos[n]
        want = [py_f32(py_f32(float(r)) * float(inv[j])) for j in range(20)]
        want += [py_f32(py_f32(float(c)) * float(inv[j])) for j in range(20)]
        assert angles[n].tolist() == want, n
    # the tiny toy: head_dim 16 -> 4 frequencies 1, 1/10, 1/100, 1/1000 (exact powers)
    cfg = VisionConfig(toy_ckpt().sub_config("vision_config"))
    assert vision_inv_freq(cfg.d_head).tolist() == [py_f32(v) for v in (1.0, 0.1, 0.01, 0.001)]


# ------------------------------------------------------------------ independent loop implementation

def loop_vision_fp64(ckpt, pixel_values, grids):
    """A second float64 implementation: processor order throughout, attention by explicit window / slice
    membership sets per token (no permutation), rotary from the formula, merger on consecutive groups."""
    raw = ckpt.sub_config("vision_config")
    d, heads = raw["hidden_size"], raw["num_heads"]
    dh = d // heads
    quarter = dh // 4
    ws = raw["window_size"] // raw["spatial_merge_size"] // raw["patch_size"]
    full_blocks = set(raw["fullatt_block_indexes"])

    meta = []                                       # (image, ti, row, col) per token from the §4.2 index formula
    for img, (t, h, w) in enumerate(grids):
        hm, wm = h // 2, w // 2
        for n in range(t * h * w):
            jj, ii, rest = n % 2, (n // 2) % 2, n // 4
            bj, bi, ti = rest % wm, (rest // wm) % hm, rest // (wm * hm)
            meta.append((img, ti, 2 * bi + ii, 2 * bj + jj))
    windows, slices = {}, {}
    for n, (img, ti, r, c) in enumerate(meta):
        windows.setdefault((img, ti, (r // 2) // ws, (c // 2) // ws), []).append(n)
        slices.setdefault((img, ti), []).append(n)
    win_of = {n: key for key, members in windows.items() for n in members}

    inv = [py_f32(1.0 / py_f32(py_f32(10000.0) ** py_f32(2 * j / (dh // 2)))) for j in range(quarter)]
    cos = np.zeros((len(meta), dh))
    sin = np.zeros((len(meta), dh))
    for n, (_, _, r, c) in enumerate(meta):
        ang = [py_f32(py_f32(float(r)) * inv[j]) for j in range(quarter)]
        ang += [py_f32(py_f32(float(c)) * inv[j]) for j in range(quarter)]
        for f, a in enumerate(ang):
            cos[n, f] = cos[n, f + dh // 2] = math.cos(a)
            sin[n, f] = sin[n, f + dh // 2] = math.sin(a)

    def get(name):
        return ckpt.get(name).astype(np.float64)

    def norm(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6) * w

    def rope(vec, n):
        half = dh // 2
        rot = np.concatenate([-vec[half:], vec[:half]])
        return vec * cos[n] + rot * sin[n]

    x = pixel_values.astype(np.float64) @ get("visual.patch_embed.proj.weight").reshape(d, -1).T
    patch = x.copy()
    outs = []
    for j in range(raw["depth"]):
        p = "visual.blocks.%d." % j
        h = norm(x, get(p + "norm1.weight"))
        q, k, v = (h @ get(p + "attn.%s.weight" % s).T + get(p + "attn.%s.bias" % s) for s in "qkv")
        ctx = np.zeros_like(x)
        for n in range(len(meta)):
            members = slices[meta[n][:2]] if j in full_blocks else windows[win_of[n]]
            for hd in range(heads):
                sl = slice(hd * dh, (hd + 1) * dh)
                qn = rope(q[n, sl], n)
                keys = np.stack([rope(k[m, sl], m) for m in members])
                s = keys @ qn / math.sqrt(dh)
                e = np.exp(s - s.max())
                ctx[n, sl] = (e / e.sum()) @ v[members, sl]
        x = x + ctx @ get(p + "attn.proj.weight").T + get(p + "attn.proj.bias")
        h2 = norm(x, get(p + "norm2.weight"))
        g = h2 @ get(p + "mlp.gate_proj.weight").T + get(p + "mlp.gate_proj.bias")
        u = h2 @ get(p + "mlp.up_proj.weight").T + get(p + "mlp.up_proj.bias")
        x = x + (g / (1.0 + np.exp(-g)) * u) @ get(p + "mlp.down_proj.weight").T + get(p + "mlp.down_proj.bias")
        outs.append(x.copy())
    z = norm(x, get("visual.merger.ln_q.weight")).reshape(len(meta) // 4, 4 * d)
    z = z @ get("visual.merger.mlp.0.weight").T + get("visual.merger.mlp.0.bias")
    z = np.array([[0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in row] for row in z])
    merged = z @ get("visual.merger.mlp.2.weight").T + get("visual.merger.mlp.2.bias")
    return patch, np.stack(outs), merged


@test
def permuted_equals_loop_implementation():
    ckpt = toy_ckpt("base")
    for seed, grids in enumerate(([(1, 4, 6)], [(1, 10, 14)], [(2, 8, 8)], [(1, 4, 6), (1, 16, 12)])):
        pv = pixels(grids, seed)
        out = encode_images(ckpt, pv, np.array(grids), "fp32")
        patch, blocks, merged = loop_vision_fp64(ckpt, pv, grids)
        assert out["patch_embeds"].shape == patch.shape and out["block_outputs"].shape == blocks.shape
        assert out["merged"].shape == (sum(t * h * w for t, h, w in grids) // 4, 64)
        assert np.allclose(out["patch_embeds"], patch, rtol=0, atol=1e-10), grids
        err = np.abs(out["block_outputs"] - blocks).max()
        assert err < 1e-10, (grids, err)
        err = np.abs(out["merged"] - merged).max()
        assert err < 1e-10, (grids, err)
    # head_dim 80 as in the real model (a 40-wide rotary table, 20 frequencies), window 56 px = 2 merged
    # tokens, full attention in block 0 only
    other = os.path.join(Toy.dir, "hd80")
    make_toy(other, seed=3, n_vocab=64, vision_overrides={
        "hidden_size": 160, "num_heads": 2, "intermediate_size": 96, "depth": 2, "window_size": 56,
        "fullatt_block_indexes": [0]})
    ckpt80 = Checkpoint(os.path.join(other, "base"))
    assert VisionConfig(ckpt80.sub_config("vision_config")).window_merged == 2
    for seed, grids in enumerate(([(1, 10, 14)], [(2, 4, 6), (1, 6, 2)])):
        pv = pixels(grids, 10 + seed)
        out = encode_images(ckpt80, pv, np.array(grids), "fp32")
        patch, blocks, merged = loop_vision_fp64(ckpt80, pv, grids)
        assert np.abs(out["block_outputs"] - blocks).max() < 1e-10, grids
        assert np.abs(out["merged"] - merged).max() < 1e-10, grids
    # windows matter: full attention everywhere would give something else
    grids = [(1, 10, 14)]
    pv = pixels(grids, 1)
    raw = json.load(open(os.path.join(Toy.dir, "flat", "config.json")))
    raw["vision_config"]["window_size"] = 112 * 4
    alt = os.path.join(Toy.dir, "flat_bigwindow")
    shutil.copytree(os.path.join(Toy.dir, "flat"), alt)
    with open(os.path.join(alt, "config.json"), "w") as f:
        json.dump(raw, f)
    a = encode_images(toy_ckpt(), pv, np.array(grids), "fp32")["merged"]
    b = encode_images(Checkpoint(alt), pv, np.array(grids), "fp32")["merged"]
    assert not np.allclose(a, b)


@test
def images_are_independent_in_one_call():
    ckpt = toy_ckpt()
    grids = [(1, 4, 6), (2, 8, 8), (1, 10, 14)]
    pv = pixels(grids, 7)
    for precision in ("fp32", "bf16"):
        together = encode_images(ckpt, pv, np.array(grids), precision)
        row = merged_row = 0
        for g in grids:
            n = g[0] * g[1] * g[2]
            alone = encode_images(ckpt, pv[row:row + n], np.array([g]), precision)
            got = together["merged"][merged_row:merged_row + n // 4]
            blocks = together["block_outputs"][:, row:row + n]
            if precision == "fp32":
                assert np.allclose(got, alone["merged"], rtol=0, atol=1e-12), g
                assert np.allclose(blocks, alone["block_outputs"], rtol=0, atol=1e-12), g
            else:   # bf16: identical up to a rare last-bit flip from a different BLAS summation order
                assert np.mean(got != alone["merged"]) < 0.01, g
                assert all(cosine(a, b) > 0.99999 for a, b in zip(got, alone["merged"])), g
            row += n
            merged_row += n // 4


@test
def bf16_close_to_fp32_and_bf16_valued():
    ckpt = toy_ckpt()
    grids = [(1, 10, 14), (2, 8, 8)]
    pv = pixels(grids, 3)
    a = encode_images(ckpt, pv, np.array(grids), "fp32")
    b = encode_images(ckpt, pv, np.array(grids), "bf16")
    for key in ("patch_embeds", "merged"):
        assert np.array_equal(b[key], round_bf16(b[key])), key
        for ra, rb in zip(a[key], b[key]):
            assert cosine(ra, rb) > 0.999, key
    assert np.array_equal(b["block_outputs"], round_bf16(b["block_outputs"]))
    for j in range(a["block_outputs"].shape[0]):
        for ra, rb in zip(a["block_outputs"][j], b["block_outputs"][j]):
            assert cosine(ra, rb) > 0.999, j
    assert not np.array_equal(a["merged"], b["merged"])
    # the patch embed sees bf16-rounded pixel values in bf16 mode
    w = ckpt.get("visual.patch_embed.proj.weight").reshape(32, -1).astype(np.float64)
    want = round_bf16(round_bf16(pv).astype(np.float64) @ round_bf16(w).astype(np.float64).T)
    assert np.array_equal(b["patch_embeds"], want)


@test
def bf16_vision_rope_scalar_check():
    # fp32 rotation of bf16 q with fp32 (unrounded) cos/sin, result rounded to bf16 (spec §4.3, §10)
    ckpt = toy_ckpt()
    grids = [(1, 10, 14)]
    traces = []
    encode_images(ckpt, pixels(grids, 4), np.array(grids), "bf16", traces=traces)
    tr = traces[0]
    pos = patch_positions(np.array(grids), 2)
    inv = vision_inv_freq(16)
    for i in (0, 5, 33, 77, 139):
        n = int(tr["window_index"][i // 4]) * 4 + i % 4      # permuted row -> processor token
        r, c = pos[n]
        ang = [py_f32(py_f32(float(r)) * float(f)) for f in inv] + [py_f32(py_f32(float(c)) * float(f)) for f in inv]
        for head in range(2):
            q = tr["q"][i, head].tolist()
            for dd in range(16):
                a = ang[dd % 8]
                cs, sn = py_f32(math.cos(a)), py_f32(math.sin(a))
                rot = -q[dd + 8] if dd < 8 else q[dd - 8]
                want = py_bf16(py_f32(py_f32(q[dd] * cs) + py_f32(rot * sn)))
                assert float(tr["q_rot"][i, head, dd]) == want, (i, head, dd)


@test
def vision_input_errors():
    ckpt = toy_ckpt()
    for pv, grid, needle in ((pixels([(1, 4, 6)], 0), [(1, 4, 4)], "sum(t*h*w)"),
                             (pixels([(1, 4, 6)], 0)[:, :100], [(1, 4, 6)], "1176"),
                             (pixels([(1, 3, 8)], 0), [(1, 3, 8)], "multiples")):
        try:
            encode_images(ckpt, pv, np.array(grid), "fp32")
            raise AssertionError("accepted %s" % (grid,))
        except ValueError as e:
            assert needle in str(e), str(e)


# ------------------------------------------------------------------ TMRoPE positions

IDS = TokenIds(TOKEN_IDS)
BOS, EOS, IMG, VID = IDS.vision_start, IDS.vision_end, IDS.image, IDS.video
ABOS, AEOS, AUD = IDS.audio_start, IDS.audio_end, IDS.audio


@test
def rope_index_worked_example_image():
    # spec §8.5: n0 text, bos, 16x16 merged image, eos, r text
    n0, r = 5, 3
    ids = [7] * n0 + [BOS] + [IMG] * 256 + [EOS] + [9] * r
    pos, delta = get_rope_index(ids, TOKEN_IDS, 2, image_grid_thw=[[1, 32, 32]])
    want = [[p, p, p] for p in range(n0)] + [[n0] * 3]
    want += [[n0 + 1, n0 + 1 + y, n0 + 1 + x] for y in range(16) for x in range(16)]
    want += [[n0 + 17] * 3] + [[n0 + 18 + i] * 3 for i in range(r)]
    assert pos.tolist() == np.array(want).T.tolist()
    assert delta == -240 and pos.max() == n0 + 17 + r and pos.shape == (3, n0 + 258 + r)


@test
def rope_index_worked_example_video_with_audio():
    # spec §8.6: grid (4, 4, 4), spg 1.0, 4 s of audio = 100 tokens (400 mel frames), interleaved 8V 50A 8V 50A
    assert audio_output_length(400) == 100
    b = 4
    ids = [11] * b + [BOS, ABOS] + [VID] * 8 + [AUD] * 50 + [VID] * 8 + [AUD] * 50 + [AEOS, EOS] + [12, 13]
    pos, delta = get_rope_index(ids, TOKEN_IDS, 2, video_grid_thw=[[4, 4, 4]], audio_seqlens=[400],
                                second_per_grids=[1.0], use_audio_in_video=True)
    yy, xx = [0, 0, 1, 1, 0, 0, 1, 1], [0, 1, 0, 1, 0, 1, 0, 1]
    cols = [[p, p, p] for p in range(b)] + [[b] * 3] * 2
    cols += [[b + 1 + t, b + 1 + y, b + 1 + x] for t, y, x in zip([0] * 4 + [25] * 4, yy, xx)]
    cols += [[b + 1 + a] * 3 for a in range(50)]
    cols += [[b + 1 + t, b + 1 + y, b + 1 + x] for t, y, x in zip([50] * 4 + [75] * 4, yy, xx)]
    cols += [[b + 1 + a] * 3 for a in range(50, 100)]
    cols += [[b + 101] * 3] * 2 + [[b + 102] * 3, [b + 103] * 3]
    assert pos.tolist() == np.array(cols).T.tolist()
    assert delta == (b + 103) + 1 - len(ids)
    # the same tokens not interleaved are rejected (placeholder order is part of the contract)
    bad = [11] * b + [BOS, ABOS] + [VID] * 16 + [AUD] * 100 + [AEOS, EOS]
    try:
        get_rope_index(bad, TOKEN_IDS, 2, video_grid_thw=[[4, 4, 4]], audio_seqlens=[400],
                       use_audio_in_video=True)
        raise AssertionError("non-interleaved layout accepted")
    except ValueError as e:
        assert "<|AUDIO|>" in str(e), str(e)


@test
def rope_index_video_then_audio_and_images():
    # card default (use_audio_in_video false): video block then audio block; spg 0.7 -> T offsets 0, 17, 35, 52
    a_len = audio_output_length(101)                 # (100//2 + 1 - 2)//2 + 1 = 25
    assert a_len == 25
    ids = [5, 6, 7] + [BOS] + [VID] * 24 + [EOS] + [ABOS] + [AUD] * a_len + [AEOS] + [8, 9]
    pos, delta = get_rope_index(ids, TOKEN_IDS, 2, video_grid_thw=[[4, 4, 6]], audio_seqlens=[101],
                                second_per_grids=[0.7])
    want = [[0] * 3, [1] * 3, [2] * 3, [3] * 3]
    want += [[4 + t, 4 + y, 4 + x] for t in (0, 17, 35, 52) for y in range(2) for x in range(3)]
    want += [[57] * 3, [58] * 3] + [[59 + a] * 3 for a in range(25)] + [[84] * 3, [85] * 3, [86] * 3]
    assert pos.tolist() == np.array(want).T.tolist()
    assert delta == 87 - len(ids)
    # two images with text between (the toy mm layout): the eos is base + max(H'-1, W'-1) + 1
    ids = [1] * 4 + [BOS] + [IMG] * 6 + [EOS] + [2] * 3 + [BOS] + [IMG] * 35 + [EOS] + [3] * 2
    pos, delta = get_rope_index(ids, TOKEN_IDS, 2, image_grid_thw=[[1, 4, 6], [1, 10, 14]])
    want = [[p] * 3 for p in range(5)] + [[5, 5 + y, 5 + x] for y in range(2) for x in range(3)]
    want += [[8] * 3, [9] * 3, [10] * 3, [11] * 3, [12] * 3]
    want += [[13, 13 + y, 13 + x] for y in range(5) for x in range(7)] + [[20] * 3, [21] * 3, [22] * 3]
    assert pos.tolist() == np.array(want).T.tolist() and delta == 23 - len(ids)
    # a placeholder count that does not match the grid is an error
    try:
        get_rope_index([BOS] + [IMG] * 5 + [EOS], TOKEN_IDS, 2, image_grid_thw=[[1, 4, 6]])
        raise AssertionError("short image run accepted")
    except ValueError as e:
        assert "<|IMAGE|>" in str(e), str(e)


@test
def rope_index_text_and_audio_only():
    pos, delta = text_positions(6)
    assert pos.tolist() == [list(range(6))] * 3 and delta == 0
    ids = [3, 4, ABOS] + [AUD] * 25 + [AEOS, 5, ABOS] + [AUD] * 3 + [AEOS]
    a, da = get_rope_index(ids, TOKEN_IDS, 2, audio_seqlens=[101, 13])   # no grid: the §8.1 branch
    g, dg = get_rope_index(ids, TOKEN_IDS, 2, audio_seqlens=[101, 13], general=True)
    assert audio_output_length(13) == 3
    assert np.array_equal(a, g) and da == dg == 0 and a.tolist() == [list(range(len(ids)))] * 3


@test
def chunked_index_rules():
    assert get_chunked_index(list(range(100)), 50, 0) == [(0, 50), (50, 100)]
    assert get_chunked_index([0, 0, 200, 200], 50, 0) == [(0, 2), (2, 3), (3, 4)]   # one boundary per element
    assert get_chunked_index([10, 10, 59, 60], 50, 10) == [(0, 3), (3, 4)]
    assert get_chunked_index([], 50, 0) == [(0, 0)]
    assert get_chunked_index([0, 0, 0, 0, 25, 25, 25, 25, 50, 50, 50, 50, 75, 75, 75, 75], 50, 0) == [(0, 8), (8, 16)]


# ------------------------------------------------------------------ image preprocessing

@test
def smart_resize_cases():
    assert smart_resize(350, 350) == (336, 336)                    # 12.5 -> 12 (half to even)
    assert smart_resize(42, 70) == (56, 56)                        # 1.5 -> 2, 2.5 -> 2
    assert smart_resize(20, 30) == (56, 84)                        # min_pixels path: beta = sqrt(3136/600)
    assert smart_resize(10, 10, min_pixels=784) == (28, 28)        # clamp to one factor
    assert smart_resize(5000, 4000) == (4004, 3192)                # max_pixels path
    assert smart_resize(4000, 3000) == (4004, 2996)                # rounding only
    assert smart_resize(448, 448, max_pixels=50176) == (224, 224)  # overridden budget: beta = 2
    assert smart_resize(10, 2000) == (28, 1988)                    # ratio 200 is allowed
    for h, w in ((10, 2010), (2010, 10)):
        try:
            smart_resize(h, w)
            raise AssertionError("ratio > 200 accepted")
        except ImageError as e:
            assert "aspect ratio" in str(e)


def write_png(path, array, mode=None):
    Image.fromarray(array, mode).save(path)
    return path


@test
def preprocess_patch_order_and_normalisation():
    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, size=(45, 61, 3), dtype=np.uint8)        # H 45, W 61 -> 56 x 56
    path = write_png(os.path.join(Toy.dir, "rgb.png"), img)
    out = preprocess_image(path)
    assert np.array_equal(out["decoded"], img)
    want_resized = np.asarray(Image.fromarray(img).resize((56, 56), BICUBIC))
    assert out["resized"].dtype == np.uint8 and np.array_equal(out["resized"], want_resized)
    assert out["image_grid_thw"].tolist() == [[1, 4, 4]] and out["image_grid_thw"].dtype == np.int64
    pv = out["pixel_values"]
    assert pv.shape == (16, 1176) and pv.dtype == np.float32
    mean = [0.48145466, 0.4578275, 0.40821073]
    std = [0.26862954, 0.26130258, 0.27577711]
    res = out["resized"]
    for n in (0, 1, 2, 3, 4, 9, 15):                                     # §4.2 token -> patch (row, col)
        jj, ii, rest = n % 2, (n // 2) % 2, n // 4
        row, col = 2 * (rest // 2) + ii, 2 * (rest % 2) + jj
        for c in range(3):
            for t in range(2):                                          # the frame twice
                for y in (0, 5, 13):
                    for x in (0, 7, 13):
                        v = int(res[row * 14 + y, col * 14 + x, c])
                        want = np.float32((np.float32(v / 255.0) - np.float32(mean[c])) / np.float32(std[c]))
                        got = pv[n, c * 392 + t * 196 + y * 14 + x]
                        assert got == want, (n, c, t, y, x)
    # a preprocessor_config with another mean changes only the normalisation
    cfg_path = os.path.join(Toy.dir, "pp.json")
    with open(cfg_path, "w") as f:
        json.dump({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "min_pixels": 3136}, f)
    out2 = preprocess_image(path, processor_config=load_processor_config(cfg_path))
    assert np.array_equal(out2["resized"], out["resized"])
    assert np.isclose(out2["pixel_values"][0, 0], res[0, 0, 0] / 255.0 * 2 - 1, atol=1e-6)
    # patchify pads an odd frame count by repeating the last frame
    frames = rng.standard_normal((3, 3, 28, 56)).astype(np.float32)
    pv3, grid3 = patchify(frames, 14, 2, 2)
    pv4, _ = patchify(np.concatenate([frames, frames[-1:]]), 14, 2, 2)
    assert grid3.tolist() == [[2, 2, 4]] and np.array_equal(pv3, pv4)


@test
def preprocess_modes_and_cli():
    rgba = np.zeros((30, 40, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 200, 10, 60
    rgba[:10, :, 3] = 0             # transparent -> white
    rgba[10:20, :, 3] = 255         # opaque -> the colour
    rgba[20:, :, 3] = 128           # half -> a blend
    path = write_png(os.path.join(Toy.dir, "rgba.png"), rgba, "RGBA")
    dec = preprocess_image(path)["decoded"]
    assert dec.shape == (30, 40, 3)
    assert (dec[:10] == 255).all() and (dec[10:20] == [200, 10, 60]).all()
    blend = np.array([200, 10, 60]) * 128 / 255 + 255 * 127 / 255
    assert np.abs(dec[20:].astype(float) - blend).max() <= 1.0
    gray = write_png(os.path.join(Toy.dir, "gray.png"), np.arange(900, dtype=np.uint8).reshape(30, 30) % 251, "L")
    dg = preprocess_image(gray)["decoded"]
    assert dg.shape == (30, 30, 3) and (dg[..., 0] == dg[..., 2]).all()

    script = os.path.join(HERE, "image_preprocess.py")
    out_dir = os.path.join(Toy.dir, "pp_cli")
    subprocess.run([sys.executable, script, "--image", path, "--out", out_dir, "--min-pixels", "784",
                    "--max-pixels", "50176"], check=True)
    want = preprocess_image(path, 784, 50176)
    assert want["resized"].shape == (28, 28, 3)     # 30x40 rounds to 28x28 = 784, which meets min_pixels
    for name, array in want.items():
        got = np.load(os.path.join(out_dir, name + ".npy"))
        assert got.dtype == array.dtype and np.array_equal(got, array), name
    assert np.load(os.path.join(out_dir, "pixel_values.npy")).dtype == np.float32
    thin = write_png(os.path.join(Toy.dir, "thin.png"), np.zeros((1, 250, 3), np.uint8))
    proc = subprocess.run([sys.executable, script, "--image", thin, "--out", os.path.join(Toy.dir, "pp_bad")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "aspect ratio" in proc.stderr, proc.stderr


# ------------------------------------------------------------------ multimodal embedding

def mm_inputs():
    d = os.path.join(Toy.dir, "mm_inputs")
    return (np.load(os.path.join(d, "input_ids.npy")), np.load(os.path.join(d, "pixel_values.npy")),
            np.load(os.path.join(d, "image_grid_thw.npy")))


@test
def mm_embed_merge_and_positions():
    ids, pv, grid = mm_inputs()
    for precision in ("fp32", "bf16"):
        a = embed(os.path.join(Toy.dir, "flat"), ids, None, precision=precision, pixel_values=pv,
                  image_grid_thw=grid)
        b = embed(os.path.join(Toy.dir, "base"), ids, None, precision=precision, pixel_values=pv,
                  image_grid_thw=grid)
        for k in a:
            assert np.array_equal(a[k], b[k]), (precision, k)
        rows = np.flatnonzero(ids[0] == IMG)
        assert np.array_equal(a["inputs_embeds"][rows], a["vision_embeds"])          # merged in order
        vis = encode_images(toy_ckpt(), pv, grid, precision)
        assert np.array_equal(a["vision_embeds"], vis["merged"].astype(np.float32))
        text_rows = np.flatnonzero(ids[0] != IMG)
        emb = toy_ckpt().get("model.embed_tokens.weight", rows=ids[0][text_rows])
        want = round_bf16(emb) if precision == "bf16" else emb
        assert np.array_equal(a["inputs_embeds"][text_rows], want)
        pos, _ = get_rope_index(ids[0], TOKEN_IDS, 2, image_grid_thw=grid)
        assert a["position_ids"].dtype == np.int64 and np.array_equal(a["position_ids"][:, 0, :], pos)
        assert a["vision_block_outputs"].shape == (4, pv.shape[0], 32)
        assert a["vision_patch_embeds"].shape == (pv.shape[0], 32)
    f32 = embed(os.path.join(Toy.dir, "flat"), ids, None, precision="fp32", pixel_values=pv, image_grid_thw=grid)
    assert cosine(f32["embedding"], a["embedding"]) > 0.999
    # the image content matters, and positions are the computed ones (a given position_ids is ignored)
    other = embed(os.path.join(Toy.dir, "flat"), ids, np.zeros((3, 1, ids.shape[1]), np.int64),
                  pixel_values=pv[::-1].copy(), image_grid_thw=grid)
    assert not np.allclose(other["embedding"], f32["embedding"])
    same = embed(os.path.join(Toy.dir, "flat"), ids, np.zeros((3, 1, ids.shape[1]), np.int64),
                 pixel_values=pv, image_grid_thw=grid)
    assert np.array_equal(same["embedding"], f32["embedding"])
    # the text-only path without position_ids computes 0..S-1 and reports them
    t = embed(os.path.join(Toy.dir, "flat"), ids[:, :4], None)
    assert t["position_ids"][:, 0, :].tolist() == [[0, 1, 2, 3]] * 3
    # placeholder count mismatch and missing features are clear errors
    for bad_ids, kwargs, needle in (
            (np.concatenate([ids, [[IMG]]], axis=1), {"pixel_values": pv, "image_grid_thw": grid}, "<|IMAGE|>"),
            (ids, {}, "no image features"),
            (np.array([[1, ABOS, AUD, AEOS]]), {}, "audio")):
        try:
            embed(os.path.join(Toy.dir, "flat"), bad_ids, None, **kwargs)
            raise AssertionError("accepted: %s" % needle)
        except ValueError as e:
            assert needle in str(e), str(e)


@test
def mm_cli_end_to_end():
    script = os.path.join(HERE, "text_embed.py")
    ids, pv, grid = mm_inputs()
    inputs = os.path.join(Toy.dir, "mm_cli_inputs")
    shutil.copytree(os.path.join(Toy.dir, "mm_inputs"), inputs)
    np.save(os.path.join(inputs, "position_ids.npy"), np.zeros((3, 1, ids.shape[1]), np.int64))  # ignored
    for layout, precision in (("base", "fp32"), ("flat", "bf16")):
        out_dir = os.path.join(Toy.dir, "mm_cli_%s" % precision)
        subprocess.run([sys.executable, script, "--model", os.path.join(Toy.dir, layout), "--inputs", inputs,
                        "--out", out_dir, "--precision", precision], check=True)
        want = embed(os.path.join(Toy.dir, "flat"), ids, None, precision=precision, pixel_values=pv,
                     image_grid_thw=grid)
        names = set(os.listdir(out_dir))
        assert names == {n + ".npy" for n in want}, names
        for name, array in want.items():
            got = np.load(os.path.join(out_dir, name + ".npy"))
            assert got.dtype == (np.int64 if name == "position_ids" else np.float32), name
            assert np.array_equal(got, array), name
        assert np.load(os.path.join(out_dir, "position_ids.npy")).shape == (3, 1, ids.shape[1])
    # an end-to-end image file -> preprocess -> embed
    rng = np.random.default_rng(2)
    png = write_png(os.path.join(Toy.dir, "e2e.png"), rng.integers(0, 256, (60, 90, 3), dtype=np.uint8))
    pre = preprocess_image(png)
    n_img = int(np.prod(pre["image_grid_thw"][0])) // 4
    e2e_ids = np.array([[100, 200, BOS] + [IMG] * n_img + [EOS, 300]], dtype=np.int64)
    e2e = os.path.join(Toy.dir, "e2e_inputs")
    os.makedirs(e2e)
    np.save(os.path.join(e2e, "input_ids.npy"), e2e_ids)
    np.save(os.path.join(e2e, "pixel_values.npy"), pre["pixel_values"])
    np.save(os.path.join(e2e, "image_grid_thw.npy"), pre["image_grid_thw"])
    subprocess.run([sys.executable, script, "--model", os.path.join(Toy.dir, "flat"), "--inputs", e2e,
                    "--out", os.path.join(Toy.dir, "e2e_out")], check=True)
    emb = np.load(os.path.join(Toy.dir, "e2e_out", "embedding.npy"))
    assert emb.shape == (64,) and abs(np.linalg.norm(emb.astype(np.float64)) - 1) < 1e-6
    # only one of the two image files: an error
    half = os.path.join(Toy.dir, "half_inputs")
    os.makedirs(half)
    np.save(os.path.join(half, "input_ids.npy"), ids)
    np.save(os.path.join(half, "pixel_values.npy"), pv)
    proc = subprocess.run([sys.executable, script, "--model", os.path.join(Toy.dir, "flat"), "--inputs", half,
                           "--out", os.path.join(Toy.dir, "half_out")], capture_output=True, text=True)
    assert proc.returncode == 1 and "image_grid_thw" in proc.stderr, proc.stderr


def main():
    def setup(tmp):
        Toy.dir = tmp
        make_toy(tmp, seed=0)
    return run_selftests(TESTS, setup, "oe_vision_reference_test_")


if __name__ == "__main__":
    sys.exit(main())
