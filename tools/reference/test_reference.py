#!/usr/bin/env python3
"""Self-tests of the numpy reference. Run: python3 tools/reference/test_reference.py
Prints one line per test and "N passed, M failed"; exits non-zero on any failure."""

import math
import os
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from checkpoint import Checkpoint, CheckpointError  # noqa: E402
from make_toy_checkpoint import make_toy  # noqa: E402
from numerics import Numerics, f32_to_bf16_bits, round_bf16  # noqa: E402
from safetensors_np import SafetensorsError, SafetensorsFile, save_file  # noqa: E402
from selftest import cosine, py_bf16, py_f32, run_selftests  # noqa: E402
from text_embed import embed  # noqa: E402
from text_model import TextConfig, TextModel, rope_inv_freq  # noqa: E402

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Toy:
    dir = None
    ids = None
    pos = None
    config = None




# ------------------------------------------------------------------ numerics and file format

@test
def bf16_rounding_known_values():
    e = 2.0 ** -8
    cases = [(1.0, 1.0), (1.0 + e, 1.0), (1.0 + 3 * e, 1.0 + 4 * e),
             (1.0 + e + 2.0 ** -20, 1.0 + 2 * e),
             (-(1.0 + 3 * e), -(1.0 + 4 * e)), (0.0, 0.0), (1e-45, 0.0),
             (2.0 ** 128 - 2.0 ** 120, 2.0 ** 128 - 2.0 ** 120),
             (2.0 ** 128 - 2.0 ** 119 - 2.0 ** 104, 2.0 ** 128 - 2.0 ** 120), (2.0 ** 128 - 2.0 ** 119, math.inf),
             (float(np.finfo(np.float32).max), math.inf), (math.inf, math.inf), (-math.inf, -math.inf)]
    for x, want in cases:
        got = float(round_bf16(np.float32(x)))
        assert got == want, (x, got, want)
    assert np.isnan(round_bf16(np.float32(np.nan)))
    assert f32_to_bf16_bits(np.float32(1.0)) == 0x3F80


@test
def bf16_rounding_matches_scalar_oracle():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(3000).astype(np.float32) * 10.0 ** rng.integers(-30, 30, 3000),
                        # exact ties and neighbours of ties
                        (np.arange(1, 400, dtype=np.uint32) << 15 | np.uint32(0x3F800000)).view(np.float32)])
    got = round_bf16(x.astype(np.float32))
    want = np.array([py_bf16(float(v)) for v in x], dtype=np.float32)
    assert np.array_equal(got, want), np.flatnonzero(got != want)[:5]


@test
def safetensors_roundtrip():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((7,)).astype(np.float32)
    c = rng.standard_normal((2, 2, 2)).astype(np.float32)
    d = np.arange(6, dtype=np.int64).reshape(2, 3)
    path = os.path.join(Toy.dir, "rt.safetensors")
    save_file(path, {"a": ("F32", a), "b": ("BF16", b), "c": ("F16", c), "d": ("I64", d)}, {"format": "pt"})
    f = SafetensorsFile(path)
    assert f.metadata == {"format": "pt"}
    assert np.array_equal(f.get_f32("a"), a)
    assert np.array_equal(f.get_f32("b"), np.array([py_bf16(float(v)) for v in b], np.float32))
    assert np.array_equal(f.get_f32("c"), c.astype(np.float16).astype(np.float32))
    assert np.array_equal(f.raw("d"), d)
    assert np.array_equal(f.get_f32("a", rows=[2, 0]), a[[2, 0]])
    with open(path, "rb") as fh:                          # data block must start 8-byte aligned
        n = struct.unpack("<Q", fh.read(8))[0]
    assert n % 8 == 0
    bad = os.path.join(Toy.dir, "bad.safetensors")
    with open(bad, "wb") as fh:
        fh.write(struct.pack("<Q", 1 << 40))
    try:
        SafetensorsFile(bad)
        raise AssertionError("absurd header length accepted")
    except SafetensorsError:
        pass


@test
def checkpoint_layouts_and_errors():
    flat = Checkpoint(os.path.join(Toy.dir, "flat"))
    base = Checkpoint(os.path.join(Toy.dir, "base"))
    assert (flat.layout, flat.prefix, base.layout, base.prefix) == ("flat", "", "base", "thinker.")
    name = "model.layers.1.self_attn.k_proj.bias"
    assert np.array_equal(flat.get(name), base.get(name))
    assert not base.has("talker.model.embed_tokens.weight")
    try:
        flat.get(name, shape=(3,))
        raise AssertionError("shape mismatch accepted")
    except CheckpointError as e:
        assert name in str(e) and "(32,)" in str(e), str(e)
    try:
        flat.get("model.layers.9.mlp.up_proj.weight")
        raise AssertionError("missing tensor accepted")
    except CheckpointError as e:
        assert "model.layers.9.mlp.up_proj.weight" in str(e)
    raw = dict(Toy.config)
    raw["rope_scaling"] = {"mrope_section": [2, 3, 2]}
    try:
        TextConfig(raw)
        raise AssertionError("bad mrope_section accepted")
    except ValueError as e:
        assert "mrope_section" in str(e)


# ------------------------------------------------------------------ model-level checks

def run(layout="flat", attention="bidirectional", precision="fp32", ids=None, pos=None):
    return embed(os.path.join(Toy.dir, layout), Toy.ids if ids is None else ids,
                 Toy.pos if pos is None else pos, attention, precision)


@test
def both_layouts_identical():
    for precision in ("fp32", "bf16"):
        a, b = run("flat", precision=precision), run("base", precision=precision)
        for k in a:
            assert np.array_equal(a[k], b[k]), (precision, k)
    out = run()
    n_tokens = Toy.ids.shape[1]
    assert out["inputs_embeds"].shape == (n_tokens, 64)
    assert out["layer_outputs"].shape == (3, n_tokens, 64)
    assert out["last_hidden_state"].shape == (n_tokens, 64)
    assert out["embedding"].shape == (64,) and all(v.dtype == np.float32 for v in out.values())


@test
def bidirectional_differs_from_causal():
    ids2 = Toy.ids.copy()
    ids2[0, -1] = (ids2[0, -1] + 1) % Toy.config["vocab_size"]
    for precision in ("fp32", "bf16"):
        bi, ca = run(precision=precision), run(attention="causal", precision=precision)
        assert cosine(bi["embedding"], ca["embedding"]) < 0.999
        assert not np.allclose(bi["layer_outputs"][0, 0], ca["layer_outputs"][0, 0])
        # the last token sees every token in both modes, so layer 0 agrees there exactly
        assert np.array_equal(bi["layer_outputs"][0, -1], ca["layer_outputs"][0, -1])
        # causal: changing the last token leaves the earlier rows untouched; bidirectional: it does not
        ca2 = run(attention="causal", precision=precision, ids=ids2)
        bi2 = run(precision=precision, ids=ids2)
        assert np.array_equal(ca["layer_outputs"][:, :-1], ca2["layer_outputs"][:, :-1])
        assert not np.allclose(bi["layer_outputs"][:, :-1], bi2["layer_outputs"][:, :-1])


@test
def inv_freq_like_torch():
    inv = rope_inv_freq(16, 1e6)
    assert inv.dtype == np.float32 and inv.shape == (8,) and inv[0] == 1.0
    exact = np.array([1.0 / 1e6 ** (2 * f / 16) for f in range(8)])
    ulp = np.spacing(inv.astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(inv - exact) <= 2 * ulp), (inv, exact)


def rope_1d_tables(positions, inv_freq):
    """Independent ordinary 1-D RoPE: angle = f32(p) * inv_freq[f] (one f32 multiply), per token."""
    half = len(inv_freq)
    cos = np.zeros((len(positions), 2 * half))
    sin = np.zeros((len(positions), 2 * half))
    for t, p in enumerate(positions):
        for f in range(half):
            ang = py_f32(py_f32(float(p)) * float(inv_freq[f]))
            cos[t, f] = cos[t, f + half] = math.cos(ang)
            sin[t, f] = sin[t, f + half] = math.sin(ang)
    return cos, sin


@test
def mrope_equal_rows_is_1d_rope():
    ckpt = Checkpoint(os.path.join(Toy.dir, "flat"))
    n_tokens = Toy.ids.shape[1]
    positions = np.arange(n_tokens) * 997 + 3          # large positions exercise the f32 angle
    pos3 = np.stack([positions] * 3)
    for precision in ("fp32", "bf16"):
        model = TextModel(ckpt, precision)
        cos, sin = rope_1d_tables(positions, model.inv_freq)
        if precision == "bf16":
            cos = np.array([[py_bf16(v) for v in row] for row in cos], np.float32)
            sin = np.array([[py_bf16(v) for v in row] for row in sin], np.float32)
        mc, ms = model.rope_tables(pos3)
        assert np.array_equal(mc, cos) and np.array_equal(ms, sin), precision
        a = model.forward(Toy.ids[0], pos3)
        b = model.forward(Toy.ids[0], None, cos_sin=(cos, sin))
        assert np.array_equal(a["last_hidden_state"], b["last_hidden_state"])
        # distinct rows (the toy image block) change the result
        c = model.forward(Toy.ids[0], Toy.pos[:, 0, :])
        d = model.forward(Toy.ids[0], np.stack([Toy.pos[0, 0]] * 3))
        assert not np.allclose(c["last_hidden_state"], d["last_hidden_state"])


@test
def mrope_sections_select_rows():
    model = TextModel(Checkpoint(os.path.join(Toy.dir, "flat")), "fp32")
    p = np.arange(1, 6)
    zero = np.zeros_like(p)
    sections = [(0, 2), (2, 5), (5, 8)]                 # mrope_section [2, 3, 3]
    for row, (lo, hi) in enumerate(sections):
        pos3 = np.stack([p if r == row else zero for r in range(3)])
        cos, _ = model.rope_tables(pos3)
        moving = np.flatnonzero(np.any(cos != 1.0, axis=0))
        assert list(moving) == list(range(lo, hi)) + list(range(lo + 8, hi + 8)), (row, moving)


def hand_attention_row(model_dir, ids, pos, t, head, precision, causal):
    """Layer-0 attention context of token t, query head `head`, from the checkpoint with scalar loops."""
    ckpt = Checkpoint(model_dir)
    cfg = TextConfig(ckpt.sub_config("text_config"))
    bf = precision == "bf16"
    r = py_bf16 if bf else float
    n = len(ids)
    d, dh, half = cfg.d_model, cfg.d_head, cfg.d_head // 2
    g = head // (cfg.n_heads // cfg.n_kv_heads)
    emb = ckpt.get("model.embed_tokens.weight", rows=ids).tolist()
    w_in = ckpt.get("model.layers.0.input_layernorm.weight").tolist()
    W = {k: ckpt.get("model.layers.0.self_attn.%s_proj.weight" % k).tolist() for k in "qkv"}
    B = {k: ckpt.get("model.layers.0.self_attn.%s_proj.bias" % k).tolist() for k in "qkv"}

    def norm(x):
        ms = math.fsum(v * v for v in x) / d
        if bf:
            rr = py_f32(1.0 / math.sqrt(py_f32(py_f32(ms) + py_f32(cfg.eps))))
            return [py_bf16(py_bf16(py_f32(v * rr)) * w) for v, w in zip(x, w_in)]
        rr = 1.0 / math.sqrt(ms + cfg.eps)
        return [v * rr * w for v, w in zip(x, w_in)]

    def proj(h, k, row0):
        return [r(math.fsum(h[i] * W[k][row0 + o][i] for i in range(d)) + B[k][row0 + o]) for o in range(dh)]

    section_row = []
    for row, count in enumerate(cfg.mrope_section):
        section_row += [row] * count
    inv = [py_f32(1.0 / py_f32(py_f32(cfg.rope_theta) ** py_f32(2 * f / dh))) for f in range(half)]

    def rope(x, tok):
        out = [0.0] * dh
        for f in range(half):
            ang = py_f32(py_f32(float(pos[section_row[f], tok])) * inv[f])
            c, s = r(math.cos(ang)), r(math.sin(ang))
            out[f] = r(r(x[f] * c) + r(-x[f + half] * s))
            out[f + half] = r(r(x[f + half] * c) + r(x[f] * s))
        return out

    hs = [norm([r(v) for v in emb[j]]) for j in range(n)]
    q = rope(proj(hs[t], "q", head * dh), t)
    keys = range(t + 1) if causal else range(n)
    scores = []
    for j in keys:
        kj = rope(proj(hs[j], "k", g * dh), j)
        s = math.fsum(q[i] * kj[i] for i in range(dh))
        scores.append(py_bf16(r(s) * py_f32(1.0 / math.sqrt(dh))) if bf else s / math.sqrt(dh))
    m = max(scores)
    e = [math.exp(s - m) for s in scores]
    z = math.fsum(e)
    p = [r(py_f32(v / z)) if bf else v / z for v in e]
    vs = [proj(hs[j], "v", g * dh) for j in keys]
    return [r(math.fsum(p[a] * vs[a][i] for a in range(len(p)))) for i in range(dh)]


@test
def hand_check_attention_row():
    # The toy (head_dim 16, scale 1/4 exact) and a second one with head_dim 8 (scale 1/sqrt(8) inexact,
    # as 1/sqrt(128) of the real model) and 3 query heads per kv head.
    small_dir = os.path.join(Toy.dir, "small")
    _, small_ids, small_pos = make_toy(small_dir, seed=5, overrides={
        "hidden_size": 24, "num_attention_heads": 3, "num_key_value_heads": 1, "num_hidden_layers": 1,
        "intermediate_size": 32, "vocab_size": 50, "rope_scaling": {"mrope_section": [1, 1, 2]}})
    cases = [(os.path.join(Toy.dir, "flat"), Toy.ids[0], Toy.pos[:, 0, :], 16, ((7, 3), (2, 0), (9, 1))),
             (os.path.join(small_dir, "flat"), small_ids[0], small_pos[:, 0, :], 8, ((7, 2), (12, 1)))]
    for precision, attention, (model_dir, ids, pos, dh, rows) in (
            (p, a, c) for p in ("fp32", "bf16") for a in ("bidirectional", "causal") for c in cases):
        model = TextModel(Checkpoint(model_dir), precision)
        traces = []
        model.forward(ids, pos, attention_mode=attention, traces=traces)
        for t, head in rows:                 # image (distinct T/H/W) and text tokens; several kv heads
            want = np.array(hand_attention_row(model_dir, ids, pos, t, head, precision,
                                               attention == "causal"))
            got = traces[0]["context"][t, head * dh:(head + 1) * dh].astype(np.float64)
            if precision == "fp32":
                assert np.allclose(got, want, rtol=1e-12, atol=1e-12), (t, head, got - want)
            else:
                # Exact: float64 BLAS and fsum differ by ~1e-16 relative, which flips a bf16
                # rounding with probability ~1e-9 per element.
                assert np.array_equal(got, want), (attention, t, head, got - want)


def independent_forward_fp64(layout, ids, pos, causal):
    """A second, loop-per-token float64 implementation of the whole text tower (fp32 mode)."""
    ckpt = Checkpoint(os.path.join(Toy.dir, layout))
    cfg = TextConfig(ckpt.sub_config("text_config"))
    n, dh, half = len(ids), cfg.d_head, cfg.d_head // 2
    group = cfg.n_heads // cfg.n_kv_heads
    rows = []
    for row, count in enumerate(cfg.mrope_section):
        rows += [row] * count
    inv = [py_f32(1.0 / py_f32(py_f32(cfg.rope_theta) ** py_f32(2 * f / dh))) for f in range(half)]

    def rope(vec, tok):
        out = np.empty(dh)
        for f in range(half):
            ang = py_f32(py_f32(float(pos[rows[f], tok])) * inv[f])
            c, s = math.cos(ang), math.sin(ang)
            out[f] = vec[f] * c - vec[f + half] * s
            out[f + half] = vec[f + half] * c + vec[f] * s
        return out

    def norm(vec, w):
        return vec / math.sqrt(float(np.dot(vec, vec)) / len(vec) + cfg.eps) * w

    def get(name):
        return ckpt.get(name).astype(np.float64)

    x = list(ckpt.get("model.embed_tokens.weight", rows=ids).astype(np.float64))
    outs = []
    for il in range(cfg.n_layers):
        p = "model.layers.%d." % il
        wq, wk, wv, wo = (get(p + "self_attn.%s_proj.weight" % k) for k in "qkvo")
        bq, bk, bv = (get(p + "self_attn.%s_proj.bias" % k) for k in "qkv")
        hs = [norm(v, get(p + "input_layernorm.weight")) for v in x]
        q = [wq.dot(h) + bq for h in hs]
        k = [wk.dot(h) + bk for h in hs]
        v = [wv.dot(h) + bv for h in hs]
        new_x = []
        for t in range(n):
            ctx = []
            for head in range(cfg.n_heads):
                g = head // group
                qt = rope(q[t][head * dh:(head + 1) * dh], t)
                keys = range(t + 1) if causal else range(n)
                sc = np.array([qt.dot(rope(k[j][g * dh:(g + 1) * dh], j)) / math.sqrt(dh) for j in keys])
                pr = np.exp(sc - sc.max())
                pr /= pr.sum()
                ctx.append(sum(pr[a] * v[j][g * dh:(g + 1) * dh] for a, j in enumerate(keys)))
            y = x[t] + wo.dot(np.concatenate(ctx))
            h2 = norm(y, get(p + "post_attention_layernorm.weight"))
            gate, up = get(p + "mlp.gate_proj.weight").dot(h2), get(p + "mlp.up_proj.weight").dot(h2)
            new_x.append(y + get(p + "mlp.down_proj.weight").dot(gate / (1.0 + np.exp(-gate)) * up))
        x = new_x
        outs.append(np.stack(x))
    last = np.stack([norm(v, get("model.norm.weight")) for v in x])
    mean = last.mean(axis=0)
    return np.stack(outs), last, mean / np.linalg.norm(mean)


@test
def independent_fp64_forward():
    for layout, attention in (("flat", "bidirectional"), ("base", "causal")):
        layers, last, emb = independent_forward_fp64(layout, Toy.ids[0], Toy.pos[:, 0, :],
                                                      attention == "causal")
        ckpt = Checkpoint(os.path.join(Toy.dir, layout))
        out = TextModel(ckpt, "fp32").forward(Toy.ids[0], Toy.pos[:, 0, :], attention_mode=attention)
        assert np.allclose(out["layer_outputs"], layers, rtol=1e-11, atol=1e-11), attention
        assert np.allclose(out["last_hidden_state"], last, rtol=1e-11, atol=1e-11), attention
        got = run(layout, attention=attention)["embedding"]
        assert np.allclose(got, emb, rtol=0, atol=1e-7), attention        # float32 output


@test
def final_norm_and_pooling():
    out = run()
    x = out["layer_outputs"][-1].astype(np.float64)
    w = Checkpoint(os.path.join(Toy.dir, "flat")).get("model.norm.weight").astype(np.float64)
    y = x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + 1e-6) * w
    assert np.allclose(out["last_hidden_state"], y, rtol=1e-5, atol=1e-6)
    mean = out["last_hidden_state"].astype(np.float64).mean(axis=0)
    assert np.allclose(out["embedding"], mean / np.linalg.norm(mean), atol=1e-7)
    assert abs(np.linalg.norm(out["embedding"].astype(np.float64)) - 1.0) < 1e-6


@test
def bf16_close_to_fp32():
    a, b = run(precision="fp32"), run(precision="bf16")
    c = cosine(a["embedding"], b["embedding"])
    assert c > 0.999, c
    assert not np.array_equal(a["embedding"], b["embedding"])
    assert np.array_equal(b["inputs_embeds"], round_bf16(b["inputs_embeds"]))     # bf16 values
    assert np.array_equal(b["layer_outputs"], round_bf16(b["layer_outputs"]))
    for il in range(3):
        for t in range(Toy.ids.shape[1]):
            assert cosine(a["layer_outputs"][il, t], b["layer_outputs"][il, t]) > 0.999, (il, t)


@test
def numerics_modes():
    n32, n16 = Numerics("fp32"), Numerics("bf16")
    assert n32.round(np.float32(1.0 + 2 ** -10)).dtype == np.float64
    assert float(n16.add(np.float32(1.0), np.float32(2 ** -9))) == 1.0
    x = np.array([[1.0, 2.0]], np.float32)
    w = np.array([[1.0, 2.0 ** -8]], np.float32)
    assert float(n16.linear(x, w, np.array([2.0 ** -9], np.float32))[0, 0]) == 1.0 + 2 ** -7
    try:
        Numerics("fp16")
        raise AssertionError("bad precision accepted")
    except ValueError:
        pass


@test
def cli_end_to_end():
    script = os.path.join(HERE, "text_embed.py")
    for precision, attention in (("fp32", "bidirectional"), ("bf16", "causal")):
        out_dir = os.path.join(Toy.dir, "cli_%s_%s" % (precision, attention))
        subprocess.run([sys.executable, script, "--model", os.path.join(Toy.dir, "base"),
                        "--inputs", os.path.join(Toy.dir, "inputs"), "--out", out_dir,
                        "--precision", precision, "--attention", attention], check=True)
        want = run(attention=attention, precision=precision)
        for name, array in want.items():
            got = np.load(os.path.join(out_dir, name + ".npy"))
            assert got.dtype == np.float32 and np.array_equal(got, array), name
    bad_inputs = os.path.join(Toy.dir, "bad_inputs")
    os.makedirs(bad_inputs, exist_ok=True)
    np.save(os.path.join(bad_inputs, "input_ids.npy"), Toy.ids)
    np.save(os.path.join(bad_inputs, "position_ids.npy"), Toy.pos[:, :, :-1])
    proc = subprocess.run([sys.executable, script, "--model", os.path.join(Toy.dir, "flat"), "--inputs",
                           bad_inputs, "--out", os.path.join(Toy.dir, "cli_bad")],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "position_ids" in proc.stderr, proc.stderr


def main():
    def setup(tmp):
        Toy.dir = tmp
        Toy.config, Toy.ids, Toy.pos = make_toy(tmp, seed=0)
    return run_selftests(TESTS, setup, "oe_reference_test_", name_width=40)


if __name__ == "__main__":
    sys.exit(main())
