#!/usr/bin/env python3
"""Self-tests of the audio part of the numpy reference (audio_model.py and the audio path of text_embed.py).
Run: python3 tools/reference/test_audio_reference.py
Prints one line per test and "N passed, M failed"; exits non-zero on any failure."""

import math
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from audio_model import (AudioConfig, AudioModel, chunk_lengths, conv1d, encode_audios,  # noqa: E402
                         features_from_padded, frame_count, sinusoid_table, token_count)
from checkpoint import Checkpoint  # noqa: E402
from make_toy_checkpoint import (TOKEN_IDS, TOY_AUDIO_FRAMES, TOY_AUDIO_IMAGE_GRID,  # noqa: E402
                                 toy_audio_features, make_toy)
from numerics import Numerics, round_bf16  # noqa: E402
from rope_index import TokenIds, get_rope_index  # noqa: E402
from selftest import cosine, py_bf16, py_f32, run_selftests  # noqa: E402
from text_embed import embed  # noqa: E402
from vision_model import encode_images  # noqa: E402

TESTS = []
IDS = TokenIds(TOKEN_IDS)
BOS, EOS, IMG, VID = IDS.vision_start, IDS.vision_end, IDS.image, IDS.video
ABOS, AEOS, AUD = IDS.audio_start, IDS.audio_end, IDS.audio
N_MEL, D_AUDIO, N_LAYERS = 128, 32, 2          # the toy's audio tower (make_toy_checkpoint.TOY_AUDIO_CONFIG)


def test(fn):
    TESTS.append(fn)
    return fn


class Toy:
    dir = None


def toy_ckpt(layout="flat"):
    return Checkpoint(os.path.join(Toy.dir, layout))


def mel(n_frames, seed):
    return np.random.default_rng(seed).uniform(-1.2, 1.6, size=(N_MEL, n_frames)).astype(np.float32)


def table_entry_f32(t, i, channels):
    """The §5.3 table entry by scalar float32 steps: (angle, sin-half value, cos-half value)."""
    half = channels // 2
    inc = py_f32(math.log(10000.0) / (half - 1))
    inv = py_f32(math.exp(py_f32(-inc * i)))
    angle = py_f32(t * inv)
    return angle, math.sin(angle), math.cos(angle)


def gelu(v):
    return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))


# ------------------------------------------------------------------ formulas and small pieces

@test
def sinusoid_table_formula():
    for channels in (1280, D_AUDIO):
        half = channels // 2
        f64 = sinusoid_table(100, channels, Numerics("fp32"))
        bf = sinusoid_table(100, channels, Numerics("bf16"))
        assert f64.shape == (100, channels) and bf.shape == (100, channels)
        assert np.all(f64[0, :half] == 0.0) and np.all(f64[0, half:] == 1.0)      # sin first, then cos
        for t, i in ((1, 0), (1, 1), (7, 3), (50, half // 2), (99, half - 1), (99, 1), (63, 17 % half)):
            exact = t * math.exp(-i * math.log(10000.0) / (half - 1))            # the formula in float64
            assert abs(f64[t, i] - math.sin(exact)) < 2e-5 and abs(f64[t, half + i] - math.cos(exact)) < 2e-5
            angle, s, c = table_entry_f32(t, i, channels)                         # the fp32 recipe, exactly
            assert f64[t, i] == s and f64[t, half + i] == c, (channels, t, i)
            assert bf[t, i] == py_bf16(py_f32(s)) and bf[t, half + i] == py_bf16(py_f32(c)), (channels, t, i)
    # the last frequency of the 1280 table is 1/10000 (inc = ln(10000)/639)
    f64 = sinusoid_table(100, 1280, Numerics("fp32"))
    assert abs(f64[99, 639] - math.sin(99e-4)) < 1e-9


@test
def chunk_frame_and_token_counts():
    cases = [200 * k + r for k in (1, 2, 3) for r in (0, 1, 2, 199)] + [1, 2, 3, 4, 5, 6, 100, 199, 200, 30000]
    for t in cases:
        chunks = chunk_lengths(t, 200)
        assert sum(chunks) == t and len(chunks) == -(-t // 200), t
        assert all(c == 200 for c in chunks[:-1]) and 1 <= chunks[-1] <= 200, (t, chunks)
        m = sum((c - 1) // 2 + 1 for c in chunks)
        assert m == frame_count(t) == (t - 1) // 2 + 1, t
        assert token_count(t) == ((t - 1) // 2 + 1 - 2) // 2 + 1 == (m // 2 if m >= 2 else 0), t
    assert chunk_lengths(401, 200) == [200, 200, 1]
    assert chunk_lengths(400, 200) == [200, 200]
    # spec §5.5 examples: 1 s, 10 s, 300 s; T < 3 gives no token
    assert (frame_count(100), token_count(100)) == (50, 25)
    assert (len(chunk_lengths(1000, 200)), frame_count(1000), token_count(1000)) == (5, 500, 250)
    assert token_count(30000) == 7500
    assert [token_count(t) for t in (1, 2, 3, 4, 5, 6, 7)] == [0, 0, 1, 1, 1, 1, 2]


@test
def tower_shapes_at_chunk_boundaries():
    ckpt = toy_ckpt()
    model = AudioModel(ckpt, "fp32")
    for t in (200, 201, 202, 399, 400, 401, 402, 599):
        out = model.forward([mel(t, t)])
        chunks = chunk_lengths(t, 200)
        mcs = [(c - 1) // 2 + 1 for c in chunks]
        m = frame_count(t)
        assert out["layer_input"].shape == (m, D_AUDIO), t
        assert out["layer_outputs"].shape == (N_LAYERS, m, D_AUDIO), t
        assert out["embeds"].shape == (token_count(t), 64), t
        assert out["cu_seqlens"].tolist() == np.cumsum([0] + mcs).tolist(), t
        assert out["frame_counts"].tolist() == [m] and out["token_counts"].tolist() == [token_count(t)]


@test
def conv1d_against_direct_loop():
    rng = np.random.default_rng(11)
    num = Numerics("fp32")
    for stride in (1, 2):
        for n in (1, 2, 3, 5, 8):
            x = rng.standard_normal((n, 4))
            w = rng.standard_normal((3, 4, 3))
            b = rng.standard_normal(3)
            got = conv1d(x, w, b, stride, num)
            n_out = (n + 2 - 3) // stride + 1
            assert got.shape == (n_out, 3), (stride, n, got.shape)
            for j in range(n_out):
                for o in range(3):
                    terms = [w[o, c, k] * x[j * stride + k - 1, c]
                             for c in range(4) for k in range(3) if 0 <= j * stride + k - 1 < n]
                    want = math.fsum(terms) + b[o]
                    assert abs(got[j, o] - want) < 1e-12, (stride, n, j, o)


# ------------------------------------------------------------------ chunk locality

@test
def attention_and_conv_restricted_per_chunk():
    # T = 450: chunks of 200, 200, 50 mel frames -> encoder frames [0, 100), [100, 200), [200, 225)
    ckpt = toy_ckpt()
    x = mel(450, 1)
    y = x.copy()
    y[:, 200:400] = mel(200, 2)                    # chunk 2 changed, its first and last frames included
    for precision in ("fp32", "bf16"):
        a = encode_audios(ckpt, [x], precision)
        b = encode_audios(ckpt, [y], precision)
        for key in ("layer_input", "layer_outputs"):
            pa, pb = a[key].reshape(-1, 225, D_AUDIO), b[key].reshape(-1, 225, D_AUDIO)
            assert np.array_equal(pa[:, :100], pb[:, :100]), (precision, key)       # chunk 1: untouched
            assert np.array_equal(pa[:, 200:], pb[:, 200:]), (precision, key)       # chunk 3: untouched
            assert not np.any(np.all(pa[:, 100:200] == pb[:, 100:200], axis=-1)), (precision, key)
        assert np.array_equal(a["embeds"][:50], b["embeds"][:50]) and np.array_equal(a["embeds"][100:],
                                                                                     b["embeds"][100:])
        assert not np.array_equal(a["embeds"][50:100], b["embeds"][50:100])


@test
def last_chunk_of_one_frame_and_odd_frame_dropped():
    # T = 201: chunks of 200 and 1 frames -> M = 101 (odd): frame 100 (the 1-frame chunk) is dropped by the pooling
    ckpt = toy_ckpt()
    x = mel(201, 3)
    y = x.copy()
    y[:, 200] = -y[:, 200] + 0.5
    for precision in ("fp32", "bf16"):
        a = encode_audios(ckpt, [x], precision)
        b = encode_audios(ckpt, [y], precision)
        assert a["cu_seqlens"].tolist() == [0, 100, 101]
        assert np.array_equal(a["layer_outputs"][:, :100], b["layer_outputs"][:, :100])
        assert not np.array_equal(a["layer_outputs"][:, 100], b["layer_outputs"][:, 100])
        assert a["embeds"].shape == (50, 64) and np.array_equal(a["embeds"], b["embeds"])
        # the single frame of the last chunk sits at position 0 of the table
        model = AudioModel(ckpt, precision)
        stem = model.conv_stem(model.num.round(x.T[200:201]), model.stem_weights())
        assert np.array_equal(stem, a["layer_input"][100:101])


@test
def positions_restart_in_every_chunk():
    ckpt = toy_ckpt()
    x = mel(200, 4)
    twice = np.concatenate([x, x], axis=1)                   # two identical chunks
    for precision in ("fp32", "bf16"):
        out = encode_audios(ckpt, [twice], precision)
        li = out["layer_input"]
        assert np.array_equal(li[:100], li[100:]), precision
        assert np.array_equal(out["layer_outputs"][:, :100], out["layer_outputs"][:, 100:]), precision
        alone = encode_audios(ckpt, [x], precision)
        assert np.array_equal(alone["layer_input"], li[:100])
    # a positive control: the rows of one chunk do differ (the table rows and the conv outputs vary over time)
    assert not np.array_equal(li[:50], li[50:100])


@test
def audios_are_independent_in_one_call():
    ckpt = toy_ckpt()
    feats = [mel(437, 5), mel(100, 6), mel(3, 7)]
    for precision in ("fp32", "bf16"):
        together = encode_audios(ckpt, feats, precision)
        rows = frame_row = 0
        for f in feats:
            alone = encode_audios(ckpt, [f], precision)
            m, n = alone["layer_input"].shape[0], alone["embeds"].shape[0]
            assert np.array_equal(together["layer_input"][frame_row:frame_row + m], alone["layer_input"])
            assert np.array_equal(together["layer_outputs"][:, frame_row:frame_row + m], alone["layer_outputs"])
            assert np.array_equal(together["embeds"][rows:rows + n], alone["embeds"])
            rows += n
            frame_row += m
        assert together["token_counts"].tolist() == [109, 25, 1]
        assert together["embeds"].shape[0] == rows == 135


# ------------------------------------------------------------------ independent loop implementation

def loop_audio_fp64(ckpt, feats):
    """A second float64 implementation: the conv stem by explicit taps per output frame, the table from scalar
    float32 steps, attention per token over the explicit member list of its chunk, pooling by pairs per audio."""
    raw = ckpt.sub_config("audio_config")
    d, heads, chunk = raw["d_model"], raw["encoder_attention_heads"], 2 * raw["n_window"]
    dh = d // heads

    def get(name):
        return ckpt.get("audio_tower." + name).astype(np.float64)

    def ln(x, w, b):
        mu = x.mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + 1e-5) * w + b

    def conv(x, w, b, stride):                      # x [L, c_in]
        n_out = (len(x) - 1) // stride + 1
        out = np.zeros((n_out, w.shape[0]))
        for j in range(n_out):
            acc = b.copy()
            for k in range(3):
                src = j * stride + k - 1
                if 0 <= src < len(x):
                    acc += w[:, :, k] @ x[src]
            out[j] = acc
        return out

    gelu_v = np.vectorize(gelu)
    stems, chunk_of, audio_of = [], [], []
    for a, f in enumerate(feats):
        x = f.astype(np.float64).T
        for c0 in range(0, len(x), chunk):
            h = gelu_v(conv(x[c0:c0 + chunk], get("conv1.weight"), get("conv1.bias"), 1))
            h = gelu_v(conv(h, get("conv2.weight"), get("conv2.bias"), 2))
            for t in range(len(h)):
                h[t] += [table_entry_f32(t, i, d)[1] for i in range(d // 2)] + \
                        [table_entry_f32(t, i, d)[2] for i in range(d // 2)]
            stems.append(h)
            chunk_of += [(a, c0)] * len(h)
            audio_of += [a] * len(h)
    x = np.concatenate(stems)
    layer_input = x.copy()
    members = {}
    for n, key in enumerate(chunk_of):
        members.setdefault(key, []).append(n)
    outs = []
    for il in range(raw["encoder_layers"]):
        p = "layers.%d." % il
        h = ln(x, get(p + "self_attn_layer_norm.weight"), get(p + "self_attn_layer_norm.bias"))
        q = h @ get(p + "self_attn.q_proj.weight").T + get(p + "self_attn.q_proj.bias")
        k = h @ get(p + "self_attn.k_proj.weight").T
        v = h @ get(p + "self_attn.v_proj.weight").T + get(p + "self_attn.v_proj.bias")
        ctx = np.zeros_like(x)
        for n in range(len(x)):
            mem = members[chunk_of[n]]
            for hd in range(heads):
                sl = slice(hd * dh, (hd + 1) * dh)
                s = k[mem, sl] @ q[n, sl] / math.sqrt(dh)
                e = np.exp(s - s.max())
                ctx[n, sl] = (e / e.sum()) @ v[mem, sl]
        x = x + ctx @ get(p + "self_attn.out_proj.weight").T + get(p + "self_attn.out_proj.bias")
        h2 = ln(x, get(p + "final_layer_norm.weight"), get(p + "final_layer_norm.bias"))
        ff = gelu_v(h2 @ get(p + "fc1.weight").T + get(p + "fc1.bias"))
        x = x + ff @ get(p + "fc2.weight").T + get(p + "fc2.bias")
        outs.append(x.copy())
    rows = []
    for a in range(len(feats)):
        idx = [n for n in range(len(x)) if audio_of[n] == a]
        for i in range(len(idx) // 2):
            rows.append((x[idx[2 * i]] + x[idx[2 * i + 1]]) / 2)
    z = ln(np.array(rows), get("ln_post.weight"), get("ln_post.bias"))
    return layer_input, np.stack(outs), z @ get("proj.weight").T + get("proj.bias")


@test
def tower_equals_loop_implementation():
    ckpt = toy_ckpt("base")
    feats = [mel(201, 8), mel(437, 9), mel(5, 10)]
    got = encode_audios(ckpt, feats, "fp32")
    want = loop_audio_fp64(ckpt, feats)
    for key, ref in zip(("layer_input", "layer_outputs", "embeds"), want):
        assert got[key].shape == ref.shape, (key, got[key].shape, ref.shape)
        err = np.max(np.abs(got[key] - ref)) / np.max(np.abs(ref))
        assert err < 1e-10, (key, err)


# ------------------------------------------------------------------ bf16

@test
def bf16_close_to_fp32_and_bf16_valued():
    ckpt = toy_ckpt()
    feats = [mel(437, 12), mel(150, 13)]
    a = encode_audios(ckpt, feats, "fp32")
    b = encode_audios(ckpt, feats, "bf16")
    for key in ("layer_input", "embeds"):
        assert b[key].dtype == np.float32 and np.array_equal(b[key], round_bf16(b[key])), key
        assert min(cosine(ra, rb) for ra, rb in zip(a[key], b[key])) > 0.999, key
    assert np.array_equal(b["layer_outputs"], round_bf16(b["layer_outputs"]))
    for il in range(N_LAYERS):
        assert min(cosine(ra, rb) for ra, rb in zip(a["layer_outputs"][il], b["layer_outputs"][il])) > 0.999, il
    assert not np.array_equal(a["embeds"], b["embeds"])


@test
def bf16_conv_stem_scalar_check():
    # bf16 features, conv1 + bias rounded, GELU rounded, conv2 + bias rounded, GELU rounded, + bf16 table, rounded
    ckpt = toy_ckpt()
    x = mel(37, 14)
    out = encode_audios(ckpt, [x], "bf16")
    xb = [[py_bf16(float(v)) for v in row] for row in x.T.tolist()]               # [T][n_mel]
    w1 = round_bf16(ckpt.get("audio_tower.conv1.weight")).tolist()
    b1 = round_bf16(ckpt.get("audio_tower.conv1.bias")).tolist()
    w2 = round_bf16(ckpt.get("audio_tower.conv2.weight")).tolist()
    b2 = round_bf16(ckpt.get("audio_tower.conv2.bias")).tolist()

    def conv1_frame(t):
        if not 0 <= t < len(xb):
            return [0.0] * D_AUDIO
        return [py_bf16(gelu(py_bf16(math.fsum([w1[o][c][k] * xb[t + k - 1][c] for c in range(N_MEL)
                                                for k in range(3) if 0 <= t + k - 1 < len(xb)]) + b1[o])))
                for o in range(D_AUDIO)]

    for j in (0, 7, 18):                         # 18 = the last frame (T = 37 -> 19 frames), right edge padded
        a = {t: conv1_frame(t) for t in (2 * j - 1, 2 * j, 2 * j + 1)}
        for o in range(D_AUDIO):
            s = math.fsum([w2[o][c][k] * a[2 * j + k - 1][c] for c in range(D_AUDIO) for k in range(3)]) + b2[o]
            stem = py_bf16(gelu(py_bf16(s)))
            _, sn, cs = table_entry_f32(j, o % (D_AUDIO // 2), D_AUDIO)
            pe = py_bf16(py_f32(sn if o < D_AUDIO // 2 else cs))
            want = py_bf16(py_f32(stem + pe))
            assert float(out["layer_input"][j, o]) == want, (j, o, float(out["layer_input"][j, o]), want)


@test
def bf16_layer_scalar_check():
    # layer 0 by scalars: LayerNorm rounded once, q/v/out with bias and k without, scores then x 1/sqrt(d_head)
    # (two bf16 ops), fp32 softmax, P rounded, P.V rounded, residual rounded, fc1, GELU, fc2, residual
    ckpt = toy_ckpt()
    traces = []
    out = encode_audios(ckpt, [mel(230, 18)], "bf16", traces=traces)     # chunks of 200 and 30 frames
    tr, x = traces[0], out["layer_input"].astype(np.float64).tolist()
    d, dh = D_AUDIO, D_AUDIO // 2

    def w(name):
        return round_bf16(ckpt.get("audio_tower.layers.0." + name)).astype(np.float64).tolist()

    def ln_row(row, g, b):
        mean = math.fsum(row) / d
        var = math.fsum([(v - mean) ** 2 for v in row]) / d
        return [py_bf16((v - mean) / math.sqrt(var + 1e-5) * g[i] + b[i]) for i, v in enumerate(row)]

    def lin_row(row, m, b=None):
        return [py_bf16(math.fsum([m[o][i] * row[i] for i in range(len(row))]) + (b[o] if b else 0.0))
                for o in range(len(m))]

    ln1, ln2 = (w("self_attn_layer_norm.weight"), w("self_attn_layer_norm.bias")), \
        (w("final_layer_norm.weight"), w("final_layer_norm.bias"))
    wq, bq, wk, wv, bv = (w("self_attn.q_proj.weight"), w("self_attn.q_proj.bias"), w("self_attn.k_proj.weight"),
                          w("self_attn.v_proj.weight"), w("self_attn.v_proj.bias"))
    for n, members in ((3, range(0, 100)), (107, range(100, 115))):     # a row of each chunk
        hs = {m: ln_row(x[m], *ln1) for m in members}
        assert hs[n] == tr["h"][n].tolist(), n
        q = lin_row(hs[n], wq, bq)
        ks = {m: lin_row(hs[m], wk) for m in members}
        vs = {m: lin_row(hs[m], wv, bv) for m in members}
        assert q == tr["q"][n].ravel().tolist() and ks[n] == tr["k"][n].ravel().tolist(), n
        ctx = []
        for hd in range(2):
            sl = slice(hd * dh, (hd + 1) * dh)
            s = [py_bf16(py_bf16(math.fsum([a * b for a, b in zip(q[sl], ks[m][sl])])) * py_f32(1 / math.sqrt(dh)))
                 for m in members]
            e = [math.exp(v - max(s)) for v in s]
            z = math.fsum(e)
            p = [py_bf16(py_f32(v / z)) for v in e]
            ctx += [py_bf16(math.fsum([p[j] * vs[m][sl][i] for j, m in enumerate(members)])) for i in range(dh)]
        assert ctx == tr["context"][n].tolist(), n
        x1 = [py_bf16(py_f32(a + b)) for a, b in zip(x[n], lin_row(ctx, w("self_attn.out_proj.weight"),
                                                                     w("self_attn.out_proj.bias")))]
        ff = [py_bf16(gelu(v)) for v in lin_row(ln_row(x1, *ln2), w("fc1.weight"), w("fc1.bias"))]
        x2 = [py_bf16(py_f32(a + b)) for a, b in zip(x1, lin_row(ff, w("fc2.weight"), w("fc2.bias")))]
        assert x2 == out["layer_outputs"][0, n].tolist(), n
    # the head: pairs averaged and rounded (frame 114, the odd last one, dropped), ln_post, proj
    last = out["layer_outputs"][-1].astype(np.float64).tolist()
    post = [round_bf16(ckpt.get("audio_tower.ln_post." + k)).astype(np.float64).tolist() for k in ("weight", "bias")]
    proj = [round_bf16(ckpt.get("audio_tower.proj." + k)).astype(np.float64).tolist() for k in ("weight", "bias")]
    assert out["embeds"].shape == (57, 64)
    for i in range(57):
        pooled = [py_bf16((a + b) / 2) for a, b in zip(last[2 * i], last[2 * i + 1])]
        assert lin_row(ln_row(pooled, *post), *proj) == out["embeds"][i].tolist(), i


# ------------------------------------------------------------------ inputs and config

@test
def padded_features_and_mask():
    feats, mask = toy_audio_features(N_MEL, [437, 100], 480, np.random.default_rng(15))
    got = features_from_padded(feats, mask, N_MEL)
    assert [g.shape for g in got] == [(N_MEL, 437), (N_MEL, 100)]
    assert np.array_equal(got[1], feats[1, :, :100])
    other = feats.copy()
    other[:, :, 437:] = 3.0                         # padding is never read
    other[1, :, 100:] = -7.0
    ckpt = toy_ckpt()
    a = encode_audios(ckpt, features_from_padded(feats, mask), "bf16")
    b = encode_audios(ckpt, features_from_padded(other, mask), "bf16")
    assert np.array_equal(a["embeds"], b["embeds"])
    bad_mask = mask.copy()
    bad_mask[0, 3] = 0
    for args, needle in (((feats, bad_mask), "come first"), ((feats, mask[:, :-1]), "feature_attention_mask"),
                         ((feats[0], mask), "input_features"), ((feats, mask * 2), "0/1"),
                         ((feats[:, :64], mask), "mel bins")):
        try:
            features_from_padded(*args, n_mel=N_MEL)
            raise AssertionError("accepted: %s" % needle)
        except ValueError as e:
            assert needle in str(e), str(e)


@test
def config_and_input_errors():
    raw = toy_ckpt().sub_config("audio_config")
    for change, needle in (({"encoder_attention_heads": 3}, "multiple"), ({"n_window": 0}, "n_window"),
                           ({"activation_function": "gelu_new"}, "activation_function"),
                           ({"scale_embedding": True}, "scale_embedding"), ({"d_model": None}, "d_model"),
                           ({"max_source_positions": 50}, "max_source_positions")):
        try:
            AudioConfig(dict(raw, **change))
            raise AssertionError("accepted: %s" % change)
        except ValueError as e:
            assert needle in str(e), str(e)
    cfg = AudioConfig(raw)
    assert (cfg.chunk_frames, cfg.d_head, cfg.eps) == (200, 16, 1e-5)
    ckpt = toy_ckpt()
    for feats, needle in (([mel(10, 0)[:64]], "expected features"), ([np.zeros((N_MEL, 0), np.float32)], "T >= 1"),
                          ([], "empty"), (mel(10, 0), "list"), (mel(10, 0)[None], "features_from_padded")):
        try:
            encode_audios(ckpt, feats)
            raise AssertionError("accepted: %s" % needle)
        except ValueError as e:
            assert needle in str(e), str(e)


# ------------------------------------------------------------------ embedding

def audio_dump():
    d = os.path.join(Toy.dir, "audio_inputs")
    return {name: np.load(os.path.join(d, name + ".npy")) for name in
            ("input_ids", "input_features", "feature_attention_mask", "pixel_values", "image_grid_thw")}


def embed_dump(layout, dump, precision="fp32", **override):
    args = dict(dump, **override)
    return embed(os.path.join(Toy.dir, layout), args["input_ids"], None, precision=precision,
                 pixel_values=args.get("pixel_values"), image_grid_thw=args.get("image_grid_thw"),
                 input_features=args.get("input_features"),
                 feature_attention_mask=args.get("feature_attention_mask"))


@test
def embed_text_audio_image():
    dump = audio_dump()
    ids = dump["input_ids"][0]
    n_aud = token_count(TOY_AUDIO_FRAMES)
    results = {}
    for precision in ("fp32", "bf16"):
        a = embed_dump("flat", dump, precision)
        b = embed_dump("base", dump, precision)
        assert set(a) == set(b) and {"audio_embeds", "audio_layer_input", "audio_layer_outputs"} <= set(a)
        for k in a:
            assert np.array_equal(a[k], b[k]), (precision, k)
        emb = a["embedding"].astype(np.float64)
        assert emb.shape == (64,) and abs(np.linalg.norm(emb) - 1) < 1e-6
        audio = encode_audios(toy_ckpt(), features_from_padded(dump["input_features"],
                                                                dump["feature_attention_mask"]), precision)
        assert np.array_equal(a["audio_embeds"], audio["embeds"].astype(np.float32))
        assert np.array_equal(a["audio_layer_input"], audio["layer_input"].astype(np.float32))
        assert np.array_equal(a["audio_layer_outputs"], audio["layer_outputs"].astype(np.float32))
        assert a["audio_embeds"].shape == (n_aud, 64) and a["audio_layer_outputs"].shape == (N_LAYERS, 219, 32)
        assert np.array_equal(a["inputs_embeds"][ids == AUD], a["audio_embeds"])       # merged in order
        assert np.array_equal(a["inputs_embeds"][ids == IMG], a["vision_embeds"])
        vision = encode_images(toy_ckpt(), dump["pixel_values"], dump["image_grid_thw"], precision)
        assert np.array_equal(a["vision_embeds"], vision["merged"].astype(np.float32))
        results[precision] = a
    assert cosine(results["fp32"]["embedding"], results["bf16"]["embedding"]) > 0.999
    # positions by hand: 4 text, <|audio_bos|> 4, audio 5..113, eos 114, <|vision_bos|> 115, image 2x3 at 116,
    # eos 119, text 120, 121
    pos = results["fp32"]["position_ids"][:, 0, :]
    t, h, w = TOY_AUDIO_IMAGE_GRID
    want = [[p] * 3 for p in range(4 + 1 + n_aud + 1 + 1)]
    want += [[116, 116 + y, 116 + x] for y in range(h // 2) for x in range(w // 2)]
    want += [[p] * 3 for p in (119, 120, 121)]
    assert pos.T.tolist() == want
    assert np.array_equal(pos, get_rope_index(ids, TOKEN_IDS, 2, image_grid_thw=dump["image_grid_thw"],
                                              audio_seqlens=[TOY_AUDIO_FRAMES])[0])
    # the audio content matters
    other = dump["input_features"].copy()
    other[0, :, :100] = other[0, ::-1, :100]
    changed = embed_dump("flat", dump, input_features=other)
    assert not np.allclose(changed["embedding"], results["fp32"]["embedding"])


@test
def embed_two_audios_without_images():
    feats, mask = toy_audio_features(N_MEL, [100, 201], 250, np.random.default_rng(16))
    ids = np.array([[11, 12, ABOS] + [AUD] * 25 + [AEOS, 13, ABOS] + [AUD] * 50 + [AEOS, 14]], dtype=np.int64)
    out = embed(os.path.join(Toy.dir, "flat"), ids, np.zeros((3, 1, ids.shape[1]), np.int64), precision="bf16",
                input_features=feats, feature_attention_mask=mask)
    assert "vision_embeds" not in out
    assert out["position_ids"][:, 0, :].tolist() == [list(range(ids.shape[1]))] * 3     # §8.1, given ids ignored
    rows = np.flatnonzero(ids[0] == AUD)
    for k, (t, a, b) in enumerate(((100, 0, 25), (201, 25, 75))):
        alone = encode_audios(toy_ckpt(), [feats[k, :, :t]], "bf16")
        assert np.array_equal(out["inputs_embeds"][rows[a:b]], alone["embeds"]), k
    assert out["audio_layer_input"].shape == (50 + 101, 32)


@test
def embed_audio_errors():
    dump = audio_dump()
    ids = dump["input_ids"]
    short_mask = np.zeros_like(dump["feature_attention_mask"])
    short_mask[0, :2] = 1
    # 25 + 50 placeholders (the right total) for audios of 201 then 100 frames (50 then 25 tokens)
    two_feats, two_mask = toy_audio_features(N_MEL, [201, 100], 250, np.random.default_rng(17))
    swapped = np.array([[ABOS] + [AUD] * 25 + [AEOS, ABOS] + [AUD] * 50 + [AEOS]], dtype=np.int64)
    for bad_ids, override, needle in (
            (np.concatenate([ids, [[AUD]]], axis=1), {}, "<|AUDIO|>"),                  # one placeholder too many
            (np.delete(ids, [6]), {}, "<|AUDIO|>"),                                     # one too few
            (ids, {"feature_attention_mask": short_mask}, "no audio token"),            # T = 2
            (ids, {"feature_attention_mask": None}, "feature_attention_mask"),
            (ids, {"input_features": None, "feature_attention_mask": None}, "no audio features"),
            (np.concatenate([ids, [[BOS, VID, EOS]]], axis=1), {}, "<|VIDEO|>"),        # video still refused
            (swapped, {"input_features": two_feats, "feature_attention_mask": two_mask, "pixel_values": None,
                       "image_grid_thw": None}, "consecutive <|AUDIO|>")):              # runs do not match lengths
        try:
            embed_dump("flat", dump, input_ids=bad_ids[None] if bad_ids.ndim == 1 else bad_ids, **override)
            raise AssertionError("accepted: %s" % needle)
        except ValueError as e:
            assert needle in str(e), str(e)


@test
def cli_end_to_end():
    script = os.path.join(HERE, "text_embed.py")
    dump = audio_dump()
    inputs = os.path.join(Toy.dir, "audio_cli_inputs")
    shutil.copytree(os.path.join(Toy.dir, "audio_inputs"), inputs)
    n_tokens = dump["input_ids"].shape[1]
    np.save(os.path.join(inputs, "position_ids.npy"), np.zeros((3, 1, n_tokens), np.int64))   # ignored
    for layout, precision in (("base", "fp32"), ("flat", "bf16")):
        out_dir = os.path.join(Toy.dir, "audio_cli_%s" % precision)
        subprocess.run([sys.executable, script, "--model", os.path.join(Toy.dir, layout), "--inputs", inputs,
                        "--out", out_dir, "--precision", precision], check=True)
        want = embed_dump("flat", dump, precision)
        assert set(os.listdir(out_dir)) == {n + ".npy" for n in want}, os.listdir(out_dir)
        for name, array in want.items():
            got = np.load(os.path.join(out_dir, name + ".npy"))
            assert got.dtype == (np.int64 if name == "position_ids" else np.float32), name
            assert np.array_equal(got, array), name
    # audio only (no image files): the audio outputs, no vision outputs
    audio_only = os.path.join(Toy.dir, "audio_only_inputs")
    os.makedirs(audio_only)
    ids = np.array([[100, ABOS] + [AUD] * token_count(TOY_AUDIO_FRAMES) + [AEOS, 200]], dtype=np.int64)
    np.save(os.path.join(audio_only, "input_ids.npy"), ids)
    for name in ("input_features", "feature_attention_mask"):
        np.save(os.path.join(audio_only, name + ".npy"), dump[name])
    out_dir = os.path.join(Toy.dir, "audio_only_out")
    subprocess.run([sys.executable, script, "--model", os.path.join(Toy.dir, "flat"), "--inputs", audio_only,
                    "--out", out_dir], check=True)
    names = set(os.listdir(out_dir))
    assert "audio_embeds.npy" in names and "vision_embeds.npy" not in names, names
    emb = np.load(os.path.join(out_dir, "embedding.npy")).astype(np.float64)
    assert abs(np.linalg.norm(emb) - 1) < 1e-6
    # only one of the two audio files: an error naming the other
    os.remove(os.path.join(audio_only, "feature_attention_mask.npy"))
    proc = subprocess.run([sys.executable, script, "--model", os.path.join(Toy.dir, "flat"), "--inputs",
                           audio_only, "--out", os.path.join(Toy.dir, "audio_half_out")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "feature_attention_mask.npy" in proc.stderr, proc.stderr


def main():
    def setup(tmp):
        Toy.dir = tmp
        make_toy(tmp, seed=0)
    return run_selftests(TESTS, setup, "oe_audio_reference_test_", name_width=48)


if __name__ == "__main__":
    sys.exit(main())
