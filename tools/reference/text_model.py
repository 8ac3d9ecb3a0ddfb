"""Reference text decoder of the Qwen2.5-Omni thinker (spec qwen25-omni-thinker.md §1.1, §2.1, §3, §10).

Mirrors the Hugging Face text model (Qwen2-style decoder with M-RoPE) in numpy, for one unpadded sequence:
    embed -> n_layers x [RMSNorm, GQA attention with M-RoPE, residual, RMSNorm, SwiGLU MLP, residual]
          -> final RMSNorm
The attention is bidirectional (no mask, the embedding model) or causal. The precision policy comes from
``numerics.Numerics``: ``fp32`` computes in float64, ``bf16`` replays the bf16 dtype flow of the eager
reference (see the comments at each rounding point).
"""

import math

import numpy as np

from numerics import Numerics, round_bf16

ATTENTION_MODES = ("bidirectional", "causal")


class TextConfig:
    """Typed text_config. Names follow the project's dimension vocabulary."""

    def __init__(self, raw):
        def need(key):
            if key not in raw:
                raise ValueError("text_config: missing required key %r" % key)
            return raw[key]

        self.d_model = int(need("hidden_size"))
        self.n_layers = int(need("num_hidden_layers"))
        self.n_heads = int(need("num_attention_heads"))
        self.n_kv_heads = int(raw.get("num_key_value_heads") or self.n_heads)
        head_dim = raw.get("head_dim")
        self.d_head = int(head_dim) if head_dim else self.d_model // self.n_heads
        self.d_ff = int(need("intermediate_size"))
        self.n_vocab = int(need("vocab_size"))
        self.eps = float(raw.get("rms_norm_eps", 1e-6))
        rope = raw.get("rope_scaling") or raw.get("rope_parameters") or {}
        self.rope_theta = float(raw.get("rope_theta", rope.get("rope_theta", 1e6)))
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type not in ("default", "mrope"):
            raise ValueError("text_config: rope type %r is not supported (only default M-RoPE)" % rope_type)
        if "mrope_section" not in rope:
            raise ValueError("text_config: rope_scaling.mrope_section is missing")
        self.mrope_section = [int(v) for v in rope["mrope_section"]]
        self._validate()

    def _validate(self):
        if self.n_heads % self.n_kv_heads != 0:
            raise ValueError("text_config: num_attention_heads %d is not a multiple of num_key_value_heads %d"
                             % (self.n_heads, self.n_kv_heads))
        if self.d_head % 2 != 0:
            raise ValueError("text_config: head_dim %d must be even" % self.d_head)
        if len(self.mrope_section) != 3 or sum(self.mrope_section) != self.d_head // 2:
            raise ValueError("text_config: mrope_section %s must have 3 entries summing to head_dim/2 = %d"
                             % (self.mrope_section, self.d_head // 2))


# ----------------------------------------------------------------------------------------------- rotary

def rope_inv_freq(d_head, theta):
    """inv_freq[f] = 1 / theta^(2f/d_head), f < d_head/2, the way torch builds it: the exponent
    arange(0, d, 2)/d in float32, the power in float32, the reciprocal in float32."""
    exponent = np.arange(0, d_head, 2, dtype=np.int64).astype(np.float32) / np.float32(d_head)
    power = np.power(np.float32(theta), exponent, dtype=np.float32)
    return (np.float32(1.0) / power).astype(np.float32)


def mrope_section_of_freq(mrope_section):
    """Row of position_ids (0 = T, 1 = H, 2 = W) that drives each of the d_head/2 frequencies."""
    return np.repeat(np.arange(3), mrope_section)


def mrope_angles(position_ids, inv_freq, mrope_section):
    """position_ids [3, n_tokens] -> angles [n_tokens, d_head/2] in float32 (a single fp32 multiply
    pos * inv_freq; frequency f uses the row of its section)."""
    pos = np.asarray(position_ids).astype(np.float32)               # [3, n_tokens]
    rows = mrope_section_of_freq(mrope_section)                     # [d_head/2]
    return (pos[rows, :].T * inv_freq[None, :]).astype(np.float32)  # [n_tokens, d_head/2]


def rope_cos_sin(angles, num):
    """angles [n_tokens, d_head/2] -> cos, sin [n_tokens, d_head] (cat(angle, angle)). fp32 mode keeps
    float64 cos/sin of the float32 angle; bf16 mode takes the fp32 cos/sin and rounds them to bf16."""
    # libm cos/sin (math module) rather than numpy's SIMD kernels: < 1 ulp and the same on every CPU.
    flat = angles.astype(np.float64).ravel().tolist()
    cos_half = np.array([math.cos(a) for a in flat]).reshape(angles.shape)
    sin_half = np.array([math.sin(a) for a in flat]).reshape(angles.shape)
    cos = np.concatenate([cos_half, cos_half], axis=-1)
    sin = np.concatenate([sin_half, sin_half], axis=-1)
    if num.is_bf16:
        return round_bf16(cos.astype(np.float32)), round_bf16(sin.astype(np.float32))
    return cos, sin


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x, cos, sin, num):
    """x [n_tokens, n_heads, d_head]; (x*cos) + (rotate_half(x)*sin), each product and the sum rounded."""
    c, s = cos[:, None, :], sin[:, None, :]
    return num.add(num.mul(x, c), num.mul(rotate_half(x), s))


# ----------------------------------------------------------------------------------------------- blocks

def rms_norm(x, weight, eps, num):
    """Qwen2RMSNorm: fp32 statistics, x_hat cast to the activation dtype, then x_hat * weight."""
    if not num.is_bf16:
        x = np.asarray(x, np.float64)
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight
    x32 = np.asarray(x, np.float32)
    x64 = x32.astype(np.float64)
    var = np.mean(x64 * x64, axis=-1, keepdims=True).astype(np.float32)     # fp32 mean of squares
    r = (1.0 / np.sqrt((var + np.float32(eps)).astype(np.float64))).astype(np.float32)  # fp32 rsqrt
    x_hat = round_bf16(x32 * r)                                             # fp32 product -> bf16
    return num.mul(x_hat, weight)                                           # bf16 * bf16 -> bf16


def softmax_rows(scores, num):
    """Softmax over the last axis in (at least) fp32; bf16 mode rounds P to bf16 before P.V."""
    s = np.asarray(scores, np.float64)
    m = np.max(s, axis=-1, keepdims=True)
    e = np.exp(s - m)
    p = e / np.sum(e, axis=-1, keepdims=True)
    if num.is_bf16:
        return round_bf16(p.astype(np.float32))
    return p


def attention(q, k, v, causal, num):
    """Grouped-query attention for one sequence (the eager reference path).
    q [n_tokens, n_heads, d_head], k/v [n_tokens, n_kv_heads, d_head] -> context [n_tokens, n_heads*d_head].
    Query head i reads kv head i // (n_heads / n_kv_heads)."""
    n_tokens, n_heads, d_head = q.shape
    group = n_heads // k.shape[1]
    kv_of_head = np.arange(n_heads) // group
    qh = np.transpose(q, (1, 0, 2)).astype(np.float64)                   # [n_heads, n_tokens, d_head]
    kh = np.transpose(k, (1, 0, 2))[kv_of_head].astype(np.float64)      # [n_heads, n_tokens, d_head]
    vh = np.transpose(v, (1, 0, 2))[kv_of_head].astype(np.float64)
    scale = 1.0 / np.sqrt(d_head)
    if num.is_bf16:
        # matmul(q, k^T) is a bf16 tensor, then "* scaling" is another bf16 op.
        scores = round_bf16(qh @ np.transpose(kh, (0, 2, 1)))
        scores = round_bf16(scores * np.float32(scale))
    else:
        scores = (qh @ np.transpose(kh, (0, 2, 1))) * scale
    if causal:
        future = np.triu(np.ones((n_tokens, n_tokens), dtype=bool), k=1)
        scores = np.where(future[None, :, :], -np.inf, scores)   # masked probabilities are exactly 0
    p = softmax_rows(scores, num)
    context = num.round(p.astype(np.float64) @ vh)                     # [n_heads, n_tokens, d_head]
    return np.transpose(context, (1, 0, 2)).reshape(n_tokens, n_heads * d_head)


def silu(x, num):
    x64 = np.asarray(x, np.float64)
    return num.round(x64 / (1.0 + np.exp(-x64)))


# ----------------------------------------------------------------------------------------------- model

def layer_weight_table(cfg, il):
    """Name -> expected shape of every tensor of decoder layer ``il`` (flat naming)."""
    p = "model.layers.%d." % il
    d, dq, dkv = cfg.d_model, cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head
    return {
        "input_layernorm": (p + "input_layernorm.weight", (d,)),
        "wq": (p + "self_attn.q_proj.weight", (dq, d)),
        "bq": (p + "self_attn.q_proj.bias", (dq,)),
        "wk": (p + "self_attn.k_proj.weight", (dkv, d)),
        "bk": (p + "self_attn.k_proj.bias", (dkv,)),
        "wv": (p + "self_attn.v_proj.weight", (dkv, d)),
        "bv": (p + "self_attn.v_proj.bias", (dkv,)),
        "wo": (p + "self_attn.o_proj.weight", (d, dq)),
        "post_attention_layernorm": (p + "post_attention_layernorm.weight", (d,)),
        "w_gate": (p + "mlp.gate_proj.weight", (cfg.d_ff, d)),
        "w_up": (p + "mlp.up_proj.weight", (cfg.d_ff, d)),
        "w_down": (p + "mlp.down_proj.weight", (d, cfg.d_ff)),
    }


class TextModel:
    def __init__(self, checkpoint, precision="fp32"):
        self.ckpt = checkpoint
        self.cfg = TextConfig(checkpoint.sub_config("text_config"))
        self.num = Numerics(precision)
        self.inv_freq = rope_inv_freq(self.cfg.d_head, self.cfg.rope_theta)

    def _layer_weights(self, il):
        return {key: self.num.weight(self.ckpt.get(name, shape=shape))
                for key, (name, shape) in layer_weight_table(self.cfg, il).items()}

    def embed_tokens(self, input_ids):
        cfg = self.cfg
        name = "model.embed_tokens.weight"
        if tuple(self.ckpt.shape(name)) != (cfg.n_vocab, cfg.d_model):
            raise ValueError("tensor %s: expected shape %s, found %s"
                             % (name, (cfg.n_vocab, cfg.d_model), self.ckpt.shape(name)))
        ids = np.asarray(input_ids, dtype=np.int64)
        bad = (ids < 0) | (ids >= cfg.n_vocab)
        if bad.any():
            raise ValueError("input_ids: id %d at index %d is outside the vocabulary [0, %d)"
                             % (ids[bad][0], int(np.argmax(bad)), cfg.n_vocab))
        return self.num.round(self.ckpt.get(name, rows=ids))   # [n_tokens, d_model]

    def rope_tables(self, position_ids):
        angles = mrope_angles(position_ids, self.inv_freq, self.cfg.mrope_section)
        return rope_cos_sin(angles, self.num)

    def decoder_layer(self, x, w, cos, sin, causal, trace=None):
        """One decoder layer on the residual stream x [n_tokens, d_model] (Qwen2 decoder layer order)."""
        cfg, num = self.cfg, self.num
        n_tokens = x.shape[0]
        h = rms_norm(x, w["input_layernorm"], cfg.eps, num)
        q = num.linear(h, w["wq"], w["bq"]).reshape(n_tokens, cfg.n_heads, cfg.d_head)
        k = num.linear(h, w["wk"], w["bk"]).reshape(n_tokens, cfg.n_kv_heads, cfg.d_head)
        v = num.linear(h, w["wv"], w["bv"]).reshape(n_tokens, cfg.n_kv_heads, cfg.d_head)
        q_rot = apply_rope(q, cos, sin, num)
        k_rot = apply_rope(k, cos, sin, num)
        context = attention(q_rot, k_rot, v, causal, num)        # [n_tokens, n_heads*d_head]
        x = num.add(x, num.linear(context, w["wo"]))
        h2 = rms_norm(x, w["post_attention_layernorm"], cfg.eps, num)
        gate = num.linear(h2, w["w_gate"])
        up = num.linear(h2, w["w_up"])
        x = num.add(x, num.linear(num.mul(silu(gate, num), up), w["w_down"]))
        if trace is not None:
            trace.update(h=h, q=q, k=k, v=v, q_rot=q_rot, k_rot=k_rot, context=context, out=x)
        return x

    def forward(self, input_ids, position_ids, attention_mode="bidirectional", cos_sin=None, traces=None,
                inputs_embeds=None):
        """input_ids [n_tokens], position_ids [3, n_tokens] -> dict of float arrays.
        ``cos_sin`` overrides the rotary tables (for tests); ``traces`` (a list) receives one dict of
        intermediates per layer; ``inputs_embeds`` [n_tokens, d_model] replaces the token embedding lookup
        (the multimodal merge of spec §3.4 builds it; it is rounded to the working precision here)."""
        if attention_mode not in ATTENTION_MODES:
            raise ValueError("attention must be one of %s, got %r" % (ATTENTION_MODES, attention_mode))
        causal = attention_mode == "causal"
        if inputs_embeds is None:
            x = self.embed_tokens(input_ids)
        else:
            x = self.num.round(inputs_embeds)
            if x.ndim != 2 or x.shape[1] != self.cfg.d_model:
                raise ValueError("inputs_embeds: expected [n_tokens, %d], got shape %s"
                                 % (self.cfg.d_model, x.shape))
        inputs_embeds = x
        cos, sin = cos_sin if cos_sin is not None else self.rope_tables(position_ids)
        layer_outputs = []
        for il in range(self.cfg.n_layers):
            trace = {} if traces is not None else None
            x = self.decoder_layer(x, self._layer_weights(il), cos, sin, causal, trace)
            if traces is not None:
                traces.append(trace)
            layer_outputs.append(x)
        w_norm = self.num.weight(self.ckpt.get("model.norm.weight", shape=(self.cfg.d_model,)))
        last = rms_norm(x, w_norm, self.cfg.eps, self.num)
        return {
            "inputs_embeds": inputs_embeds,
            "layer_outputs": np.stack(layer_outputs),
            "last_hidden_state": last,
        }
