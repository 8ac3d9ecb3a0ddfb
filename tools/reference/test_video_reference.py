#!/usr/bin/env python3
"""Self-tests of the video part of the numpy reference (the vision tower on t > 1 grids and the video path of
text_embed.py: merge, TMRoPE positions with and without use_audio_in_video, the CLI dump files).
Run: python3 tools/reference/test_video_reference.py
Prints one line per test and "N passed, M failed"; exits non-zero on any failure."""

import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from audio_model import encode_audios, features_from_padded, token_count  # noqa: E402
from checkpoint import Checkpoint  # noqa: E402
from make_toy_checkpoint import TOKEN_IDS, make_toy, toy_audio_features  # noqa: E402
from rope_index import TokenIds, get_rope_index  # noqa: E402
from selftest import cosine, run_selftests  # noqa: E402
from text_embed import embed  # noqa: E402
from vision_model import encode_images, full_cu_seqlens, get_window_index, rotary_angles, VisionConfig  # noqa: E402

TESTS = []
IDS = TokenIds(TOKEN_IDS)
BOS, EOS, IMG, VID = IDS.vision_start, IDS.vision_end, IDS.image, IDS.video
ABOS, AEOS, AUD = IDS.audio_start, IDS.audio_end, IDS.audio
N_MEL = 128


def test(fn):
    TESTS.append(fn)
    return fn


class Toy:
    dir = None


def toy_ckpt(layout="flat"):
    return Checkpoint(os.path.join(Toy.dir, layout))


def pixels(grids, seed):
    n = sum(t * h * w for t, h, w in grids)
    return np.random.default_rng(seed).uniform(-1.8, 2.1, size=(n, 1176)).astype(np.float32)


def run_embed(ids, layout="flat", precision="fp32", **media):
    return embed(os.path.join(Toy.dir, layout), np.asarray([ids], np.int64), None, precision=precision, **media)


def expect_error(needle, fn):
    try:
        fn()
    except ValueError as e:
        assert needle in str(e), str(e)
        return
    raise AssertionError("accepted: %s" % needle)


# §8.6 media: grid (4, 4, 4) (H' = W' = 2, 4 tokens per slice, 16 in all), 400 valid mel frames = 100 tokens
GRID86 = (4, 4, 4)
FRAMES86 = 400


def media86(seed=5):
    feats, mask = toy_audio_features(N_MEL, [FRAMES86], 450, np.random.default_rng(seed))
    return {"pixel_values_videos": pixels([GRID86], seed), "video_grid_thw": np.array([GRID86], np.int64),
            "input_features": feats, "feature_attention_mask": mask}


def interleaved_ids(b):
    return [11 + i for i in range(b)] + [BOS, ABOS] + [VID] * 8 + [AUD] * 50 + [VID] * 8 + [AUD] * 50 \
        + [AEOS, EOS] + [21, 22]


def separate_ids(b):
    return [11 + i for i in range(b)] + [BOS] + [VID] * 16 + [EOS] + [ABOS] + [AUD] * 100 + [AEOS] + [21, 22]


# ------------------------------------------------------------------ vision tower on t > 1

@test
def video_slices_are_independent_images():
    # §4.3: rotary uses (row, col) only, the same for every slice; §4.4: windows and full segments never span two
    # temporal slices. So slice k of a video is encoded exactly as an image made of that slice's patch rows.
    cfg = VisionConfig(toy_ckpt().sub_config("vision_config"))
    grids = [(2, 8, 8), (3, 4, 6), (2, 10, 14)]
    for g in grids:
        t, h, w = g
        ang = rotary_angles(np.array([g]), cfg)
        for k in range(1, t):
            assert np.array_equal(ang[k * h * w:(k + 1) * h * w], ang[:h * w]), g
    assert full_cu_seqlens(np.array([(3, 4, 6)])) == [0, 24, 48, 72]
    index, cu = get_window_index(np.array([(2, 4, 6)]), 4, 2)
    assert index.tolist() == list(range(12)) and cu == [0, 24, 48]
    pv = pixels(grids, 1)
    for precision in ("fp32", "bf16"):
        together = encode_images(toy_ckpt(), pv, np.array(grids), precision)
        row = 0
        for g in grids:
            t, h, w = g
            n = h * w
            for k in range(t):
                alone = encode_images(toy_ckpt(), pv[row:row + n], np.array([(1, h, w)]), precision)
                got = together["merged"][row // 4:(row + n) // 4]
                blocks = together["block_outputs"][:, row:row + n]
                if precision == "fp32":
                    assert np.abs(got - alone["merged"]).max() < 1e-12, (g, k)
                    assert np.abs(blocks - alone["block_outputs"]).max() < 1e-12, (g, k)
                else:   # identical up to a rare last-bit flip from a different BLAS summation order
                    assert np.mean(got != alone["merged"]) < 0.01, (g, k)
                    assert all(cosine(a, b) > 0.99999 for a, b in zip(got, alone["merged"])), (g, k)
                row += n
    # and the slices do differ from one another (the check above is not vacuous)
    out = encode_images(toy_ckpt(), pixels([(2, 4, 6)], 2), np.array([(2, 4, 6)]), "fp32")["merged"]
    assert not np.allclose(out[:6], out[6:])


# ------------------------------------------------------------------ positions

@test
def video_only_positions_formula():
    # <|vision_bos|> at b, tokens (T = b+1 + trunc(ti*spg*25), H = b+1 + y, W = b+1 + x),
    # eos = b+1 + max(T_offset_max, H'-1, W'-1) + 1, then text (§8.2)
    t, h, w = 3, 4, 6
    pv = pixels([(t, h, w)], 3)
    b = 5
    ids = [30 + i for i in range(b)] + [BOS] + [VID] * (t * h * w // 4) + [EOS, 40, 41]
    for spg, offsets in ((None, [0, 25, 50]), (1.0, [0, 25, 50]), (0.5, [0, 12, 25]), (0.1, [0, 2, 5])):
        extra = {} if spg is None else {"video_second_per_grid": np.array([spg], np.float32)}
        out = run_embed(ids, pixel_values_videos=pv, video_grid_thw=np.array([(t, h, w)]), **extra)
        base = b + 1
        want = [[p] * 3 for p in range(b + 1)]
        want += [[base + o, base + y, base + x] for o in offsets for y in range(h // 2) for x in range(w // 2)]
        eos = base + max(offsets[-1], h // 2 - 1, w // 2 - 1) + 1
        want += [[eos] * 3, [eos + 1] * 3, [eos + 2] * 3]
        assert out["position_ids"][:, 0, :].T.tolist() == want, spg
        assert "vision_embeds" not in out and "audio_embeds" not in out
        assert out["video_embeds"].shape == (t * h * w // 4, 64)
        assert np.array_equal(out["inputs_embeds"][np.array(ids) == VID], out["video_embeds"])
        alone = encode_images(toy_ckpt(), pv, np.array([(t, h, w)]), "fp32")["merged"].astype(np.float32)
        assert np.array_equal(out["video_embeds"], alone)
        assert abs(np.linalg.norm(out["embedding"].astype(np.float64)) - 1) < 1e-6


@test
def interleaved_worked_example_8_6():
    # spec §8.6, end to end on the toy: 8 V, 50 A, 8 V, 50 A between the shared bos / eos positions
    b = 4
    ids = interleaved_ids(b)
    media = media86()
    results = {}
    for precision in ("fp32", "bf16"):
        out = run_embed(ids, precision=precision, use_audio_in_video=True, **media)
        same = run_embed(ids, "base", precision, use_audio_in_video=np.array([1], np.int64), **media)
        assert set(out) == set(same) and all(np.array_equal(out[k], same[k]) for k in out), precision
        yy, xx = [0, 0, 1, 1, 0, 0, 1, 1], [0, 1, 0, 1, 0, 1, 0, 1]
        table = [[p] * 3 for p in range(b)] + [[b] * 3, [b] * 3]
        table += [[b + 1 + t, b + 1 + y, b + 1 + x] for t, y, x in zip([0] * 4 + [25] * 4, yy, xx)]
        table += [[b + 1 + a] * 3 for a in range(50)]
        table += [[b + 1 + t, b + 1 + y, b + 1 + x] for t, y, x in zip([50] * 4 + [75] * 4, yy, xx)]
        table += [[b + 1 + a] * 3 for a in range(50, 100)]
        table += [[b + 101] * 3, [b + 101] * 3, [b + 102] * 3, [b + 103] * 3]
        assert out["position_ids"][:, 0, :].T.tolist() == table, precision
        assert out["video_embeds"].shape == (16, 64) and out["audio_embeds"].shape == (100, 64)
        arr = np.array(ids)
        assert np.array_equal(out["inputs_embeds"][arr == VID], out["video_embeds"])     # processor order
        assert np.array_equal(out["inputs_embeds"][arr == AUD], out["audio_embeds"])     # audio order
        video = encode_images(toy_ckpt(), media["pixel_values_videos"], media["video_grid_thw"], precision)
        assert np.array_equal(out["video_embeds"], video["merged"].astype(np.float32))
        audio = encode_audios(toy_ckpt(), features_from_padded(media["input_features"],
                                                               media["feature_attention_mask"]), precision)
        assert np.array_equal(out["audio_embeds"], audio["embeds"].astype(np.float32))
        assert abs(np.linalg.norm(out["embedding"].astype(np.float64)) - 1) < 1e-6
        results[precision] = out
    assert cosine(results["fp32"]["embedding"], results["bf16"]["embedding"]) > 0.999


@test
def separate_layout_differs_from_interleaved():
    # omni-embed-nemotron §2.5 default: video block then audio block (use_audio_in_video false)
    b = 4
    media = media86()
    sep = run_embed(separate_ids(b), **media)
    fused = run_embed(interleaved_ids(b), use_audio_in_video=True, **media)
    want = [[p] * 3 for p in range(b + 1)]
    want += [[b + 1 + 25 * t, b + 1 + y, b + 1 + x] for t in range(4) for y in range(2) for x in range(2)]
    eos = b + 1 + 75 + 1
    want += [[eos] * 3, [eos + 1] * 3] + [[eos + 2 + a] * 3 for a in range(100)]
    want += [[eos + 102] * 3, [eos + 103] * 3, [eos + 104] * 3]
    assert sep["position_ids"][:, 0, :].T.tolist() == want
    assert not np.array_equal(sep["position_ids"], fused["position_ids"])
    # same towers' outputs, different sequence: a different embedding
    assert np.array_equal(sep["video_embeds"], fused["video_embeds"])
    assert np.array_equal(sep["audio_embeds"], fused["audio_embeds"])
    assert not np.allclose(sep["embedding"], fused["embedding"])
    # the layout must match the flag; inside the fused block the chunks must be interleaved (8 V, 50 A, ...)
    expect_error("video blocks", lambda: run_embed(interleaved_ids(b), **media))
    expect_error("video blocks", lambda: run_embed(separate_ids(b), use_audio_in_video=True, **media))
    unchunked = [11] * b + [BOS, ABOS] + [VID] * 16 + [AUD] * 100 + [AEOS, EOS]
    expect_error("consecutive <|AUDIO|>", lambda: run_embed(unchunked, use_audio_in_video=True, **media))


@test
def images_videos_and_audio_together():
    img_grid, vid_grid = (1, 4, 6), (2, 4, 6)
    feats, mask = toy_audio_features(N_MEL, [201], 240, np.random.default_rng(8))
    n_aud = token_count(201)
    ids = [1, 2, BOS] + [VID] * 12 + [EOS, ABOS] + [AUD] * n_aud + [AEOS, BOS] + [IMG] * 6 + [EOS, 3]
    media = {"pixel_values": pixels([img_grid], 8), "image_grid_thw": np.array([img_grid]),
             "pixel_values_videos": pixels([vid_grid], 9), "video_grid_thw": np.array([vid_grid]),
             "video_second_per_grid": np.array([0.7], np.float32),
             "input_features": feats, "feature_attention_mask": mask}
    for precision in ("fp32", "bf16"):
        out = run_embed(ids, precision=precision, **media)
        arr = np.array(ids)
        for key, token, pv, grid in (("vision_embeds", IMG, "pixel_values", "image_grid_thw"),
                                     ("video_embeds", VID, "pixel_values_videos", "video_grid_thw")):
            alone = encode_images(toy_ckpt(), media[pv], media[grid], precision)["merged"].astype(np.float32)
            assert np.array_equal(out[key], alone) and np.array_equal(out["inputs_embeds"][arr == token], alone)
        assert np.array_equal(out["inputs_embeds"][arr == AUD], out["audio_embeds"])
        pos, _ = get_rope_index(arr, TOKEN_IDS, 2, image_grid_thw=[img_grid], video_grid_thw=[vid_grid],
                                audio_seqlens=[201], second_per_grids=[0.7])
        assert np.array_equal(out["position_ids"][:, 0, :], pos)
        # video T offsets trunc(0.7*25) = 17 for slice 1; eos = 3 + 17 + 1
        assert pos[:, 3:15].T.tolist() == [[3 + o, 3 + y, 3 + x] for o in (0, 17) for y in range(2)
                                           for x in range(3)]
        assert pos[:, 15].tolist() == [21] * 3


@test
def video_input_errors():
    t, h, w = 2, 4, 6
    pv, grid = pixels([(t, h, w)], 4), np.array([(t, h, w)])
    ids = [1, BOS] + [VID] * 12 + [EOS]
    for bad_ids, media, needle in (
            (ids[:2] + [VID] + ids[2:], {}, "<|VIDEO|>"),                       # one placeholder too many
            (ids[:2] + ids[3:], {}, "<|VIDEO|>"),                               # one too few
            (ids, {"video_grid_thw": None}, "video_grid_thw"),
            (ids, {"pixel_values_videos": None}, "pixel_values_videos"),
            (ids, {"pixel_values_videos": None, "video_grid_thw": None}, "no video features"),
            (ids, {"video_grid_thw": np.array([(t, h, w), (1, 2, 2)])}, "sum(t*h*w)"),
            (ids, {"video_second_per_grid": np.array([1.0, 1.0], np.float32)}, "video_second_per_grid"),
            (ids, {"video_second_per_grid": np.array([0.0], np.float32)}, "positive"),
            (ids, {"use_audio_in_video": np.array([2])}, "use_audio_in_video"),
            ([1] + [VID] * 12 + [EOS], {}, "video blocks")):                    # no <|vision_bos|>
        args = dict({"pixel_values_videos": pv, "video_grid_thw": grid}, **media)
        expect_error(needle, lambda: run_embed(bad_ids, **{k: v for k, v in args.items() if v is not None}))
    # use_audio_in_video without any video is accepted and changes nothing (the thinker ignores it there)
    a = run_embed([1, 2, 3], use_audio_in_video=True)
    assert a["position_ids"][:, 0, :].tolist() == [[0, 1, 2]] * 3


@test
def cli_end_to_end():
    script = os.path.join(HERE, "text_embed.py")
    b = 3
    media = media86(seed=6)
    inputs = os.path.join(Toy.dir, "video_cli_inputs")
    os.makedirs(inputs)
    ids = np.array([interleaved_ids(b)], np.int64)
    np.save(os.path.join(inputs, "input_ids.npy"), ids)
    np.save(os.path.join(inputs, "position_ids.npy"), np.zeros((3, 1, ids.shape[1]), np.int64))   # ignored
    np.save(os.path.join(inputs, "video_second_per_grid.npy"), np.array([1.0], np.float32))
    np.save(os.path.join(inputs, "use_audio_in_video.npy"), np.array([1], np.int64))
    for name, array in media.items():
        np.save(os.path.join(inputs, name + ".npy"), array)

    def cli(folder, out_dir, layout="flat", precision="fp32"):
        return subprocess.run([sys.executable, script, "--model", os.path.join(Toy.dir, layout), "--inputs", folder,
                               "--out", out_dir, "--precision", precision], capture_output=True, text=True)

    for layout, precision in (("base", "fp32"), ("flat", "bf16")):
        out_dir = os.path.join(Toy.dir, "video_cli_%s" % precision)
        proc = cli(inputs, out_dir, layout, precision)
        assert proc.returncode == 0, proc.stderr
        want = embed(os.path.join(Toy.dir, "flat"), ids, None, precision=precision, use_audio_in_video=True,
                     **media)
        assert set(os.listdir(out_dir)) == {n + ".npy" for n in want}, os.listdir(out_dir)
        assert "video_embeds" in want and "vision_embeds" not in want
        for name, array in want.items():
            got = np.load(os.path.join(out_dir, name + ".npy"))
            assert got.dtype == (np.int64 if name == "position_ids" else np.float32), name
            assert np.array_equal(got, array), name
    # without use_audio_in_video.npy the default 0 applies: this interleaved dump is then refused
    flag0 = os.path.join(Toy.dir, "video_cli_flag0")
    shutil.copytree(inputs, flag0)
    os.remove(os.path.join(flag0, "use_audio_in_video.npy"))
    proc = cli(flag0, os.path.join(Toy.dir, "video_cli_flag0_out"))
    assert proc.returncode == 1 and "video blocks" in proc.stderr, proc.stderr
    # the separate layout with only the two required video files
    sep = os.path.join(Toy.dir, "video_cli_sep")
    os.makedirs(sep)
    np.save(os.path.join(sep, "input_ids.npy"), np.array([separate_ids(b)], np.int64))
    for name, array in media.items():
        np.save(os.path.join(sep, name + ".npy"), array)
    proc = cli(sep, os.path.join(Toy.dir, "video_cli_sep_out"))
    assert proc.returncode == 0, proc.stderr
    emb = np.load(os.path.join(Toy.dir, "video_cli_sep_out", "embedding.npy")).astype(np.float64)
    assert abs(np.linalg.norm(emb) - 1) < 1e-6
    # only one of the two video files, or a bad flag: errors naming them
    os.remove(os.path.join(sep, "video_grid_thw.npy"))
    proc = cli(sep, os.path.join(Toy.dir, "video_cli_half_out"))
    assert proc.returncode == 1 and "video_grid_thw.npy" in proc.stderr, proc.stderr
    np.save(os.path.join(flag0, "use_audio_in_video.npy"), np.array([2], np.int64))
    proc = cli(flag0, os.path.join(Toy.dir, "video_cli_bad_flag_out"))
    assert proc.returncode == 1 and "use_audio_in_video" in proc.stderr, proc.stderr


def main():
    def setup(tmp):
        Toy.dir = tmp
        make_toy(tmp, seed=0)
    return run_selftests(TESTS, setup, "oe_video_reference_test_", name_width=45)


if __name__ == "__main__":
    sys.exit(main())
