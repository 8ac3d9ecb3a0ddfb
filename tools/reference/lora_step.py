"""Independent reference of one contrastive training step's loss and LoRA gradients (omni-embed-nemotron.md §5).

Written from the specs with torch autograd in float64, for text items: the text decoder of qwen25-omni-thinker.md
§3 with bidirectional attention, each targeted projection replaced by PEFT's LoRA layer y = x·Wᵀ + b +
(alpha/r)·(x·Aᵀ)·Bᵀ (no dropout), mean pooling over every token, L2 normalisation, and InfoNCE over the queries
against all documents: L = mean_b −log softmax_n(q_b·d_n / τ)[positive_b]. Each item is its own sequence.

usage: lora_step.py --model DIR --adapter DIR --items DIR --queries B --positives I,J,... --temperature T --out DIR
  DIR/items/<k>/input_ids.npy and position_ids.npy: the items, queries first (as write_prepared_input dumps them).
Writes OUT/loss.npy (float32 [1]) and OUT/grads.safetensors: the gradient of every LoRA tensor under its PEFT name.
"""

import argparse
import json
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint import Checkpoint  # noqa: E402
from numerics import Numerics  # noqa: E402
from safetensors_np import SafetensorsFile, save_file  # noqa: E402
from text_model import TextConfig, mrope_angles, rope_cos_sin, rope_inv_freq  # noqa: E402

MODULES = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
           "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}


def load_adapter(adapter_dir):
    with open(os.path.join(adapter_dir, "adapter_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    st = SafetensorsFile(os.path.join(adapter_dir, "adapter_model.safetensors"))
    lora = {}
    pat = re.compile(r"^base_model\.model\.(?:thinker\.)?model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")
    for name in st.tensors:
        m = pat.match(name)
        if not m:
            raise ValueError("unexpected adapter tensor %s" % name)
        key = (int(m.group(1)), m.group(3))
        lora.setdefault(key, {})[m.group(4)] = (name, torch.tensor(st.get_f32(name).astype(np.float64),
                                                                    requires_grad=True))
    return cfg["lora_alpha"] / cfg["r"], lora


def main(argv=None):
    ap = argparse.ArgumentParser()
    for a in ("--model", "--adapter", "--items", "--out", "--positives"):
        ap.add_argument(a, required=True)
    ap.add_argument("--queries", type=int, required=True)
    ap.add_argument("--temperature", type=float, required=True)
    a = ap.parse_args(argv)

    ck = Checkpoint(a.model)
    cfg = TextConfig(ck.sub_config("text_config"))
    scale, lora = load_adapter(a.adapter)

    def w(name):
        return torch.tensor(ck.get(name).astype(np.float64))

    def linear(il, mod, x, bias=None):
        base = "model.layers.%d.%s.%s." % (il, MODULES[mod], mod)
        y = x @ w(base + "weight").T
        if bias:
            y = y + w(base + "bias")
        if (il, mod) in lora:
            A, B = lora[(il, mod)]["A"][1], lora[(il, mod)]["B"][1]
            y = y + scale * ((x @ A.T) @ B.T)
        return y

    def rms(x, weight):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + cfg.eps) * weight

    def rope(x, cos, sin):  # x [S, heads, dh]
        half = x.shape[-1] // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos[:, None, :] + rot * sin[:, None, :]

    num = Numerics("fp32")
    inv_freq = rope_inv_freq(cfg.d_head, cfg.rope_theta)
    item_dirs = sorted(os.listdir(os.path.join(a.items, "items")), key=int)
    vectors = []
    for k in item_dirs:
        d = os.path.join(a.items, "items", k)
        ids = np.load(os.path.join(d, "input_ids.npy")).reshape(-1)
        pos = np.load(os.path.join(d, "position_ids.npy")).reshape(3, -1)
        cos, sin = rope_cos_sin(mrope_angles(pos, inv_freq, cfg.mrope_section), num)
        cos, sin = torch.tensor(cos), torch.tensor(sin)
        x = torch.tensor(ck.get("model.embed_tokens.weight", rows=ids).astype(np.float64))
        S = x.shape[0]
        group = cfg.n_heads // cfg.n_kv_heads
        for il in range(cfg.n_layers):
            p = "model.layers.%d." % il
            h = rms(x, w(p + "input_layernorm.weight"))
            q = rope(linear(il, "q_proj", h, True).view(S, cfg.n_heads, cfg.d_head), cos, sin)
            kk = rope(linear(il, "k_proj", h, True).view(S, cfg.n_kv_heads, cfg.d_head), cos, sin)
            v = linear(il, "v_proj", h, True).view(S, cfg.n_kv_heads, cfg.d_head)
            kk = kk.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
            scores = torch.einsum("qhd,khd->hqk", q, kk) / np.sqrt(cfg.d_head)  # bidirectional: no mask
            attn = torch.einsum("hqk,khd->qhd", torch.softmax(scores, dim=-1), v).reshape(S, -1)
            x = x + linear(il, "o_proj", attn)
            h = rms(x, w(p + "post_attention_layernorm.weight"))
            g, u = linear(il, "gate_proj", h), linear(il, "up_proj", h)
            x = x + linear(il, "down_proj", torch.nn.functional.silu(g) * u)
        x = rms(x, w("model.norm.weight"))
        e = x.mean(0)
        vectors.append(e / e.norm())
    V = torch.stack(vectors)
    Q, D = V[: a.queries], V[a.queries:]
    logits = Q @ D.T / a.temperature
    target = torch.tensor([int(t) for t in a.positives.split(",")])
    loss = torch.nn.functional.cross_entropy(logits, target)
    loss.backward()
    os.makedirs(a.out, exist_ok=True)
    np.save(os.path.join(a.out, "loss.npy"), np.array([loss.item()], dtype=np.float32))
    grads = {}
    for parts in lora.values():
        for name, t in parts.values():
            grads[name] = ("F32", t.grad.numpy().astype(np.float32))
    save_file(os.path.join(a.out, "grads.safetensors"), grads)


if __name__ == "__main__":
    main()
