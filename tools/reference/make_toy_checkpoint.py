#!/usr/bin/env python3
"""Write a small random thinker text checkpoint in both layouts, plus engine-style input dumps.

    python3 tools/reference/make_toy_checkpoint.py --out DIR [--seed N] [--vocab N]

DIR/flat   Omni-Embed-Nemotron layout: flat config (no head_dim key), one model.safetensors;
DIR/base   Qwen2.5-Omni layout: thinker_config (explicit head_dim), tensors under thinker., split in two
           shards with model.safetensors.index.json, plus talker.* / token2wav.* tensors to be ignored;
DIR/inputs input_ids.npy int64 [1, n_tokens], position_ids.npy int64 [3, 1, n_tokens] (text, a 2x3
           image block with distinct T/H/W rows, text).
DIR/mm_inputs  a multimodal dump: input_ids.npy with two images (<|vision_bos|> <|IMAGE|>... <|vision_eos|>),
           pixel_values.npy float32 [N, 1176], image_grid_thw.npy int64 [2, 3].
Weights are bf16: 4 heads / 2 kv heads, head_dim 16, mrope_section [2, 3, 3], biases on q/k/v only.
Vision tower (spec §2.2 names and shapes): hidden 32, 2 heads (head_dim 16), depth 4, full attention in
blocks 1 and 3, window 112 px, out_hidden_size = the text hidden size; drawn from its own random stream, so
the text weights do not depend on it.
Audio tower (spec §2.3 names and shapes): 128 mel bins, d_model 32, 2 layers, 2 heads (head_dim 16), ffn 64,
n_window 100 (chunks of 200 mel frames, as the real config), max_source_positions 1500, output_dim = the text
hidden size; from a third random stream.
DIR/audio_inputs  text, an audio block (<|audio_bos|> <|AUDIO|>... <|audio_eos|>), an image block, text:
           input_ids.npy, input_features.npy float32 [1, 128, 480] (437 valid frames, then padding),
           feature_attention_mask.npy int64 [1, 480], pixel_values.npy, image_grid_thw.npy ([[1, 4, 6]]).
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rope_index import audio_output_length  # noqa: E402
from safetensors_np import save_file  # noqa: E402

TOY_TEXT_CONFIG = {
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 151936,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "rope_scaling": {"mrope_section": [2, 3, 3], "rope_type": "default", "type": "default"},
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
}

TOY_VISION_CONFIG = {
    "model_type": "qwen2_5_omni_vision_encoder",
    "depth": 4,
    "hidden_size": 32,
    "num_heads": 2,
    "intermediate_size": 48,
    "hidden_act": "silu",
    "in_channels": 3,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "spatial_merge_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [1, 3],
    "out_hidden_size": 64,
    "tokens_per_second": 25,
}

TOY_MM_GRIDS = [(1, 4, 6), (1, 10, 14)]

TOY_AUDIO_CONFIG = {
    "model_type": "qwen2_5_omni_audio_encoder",
    "num_mel_bins": 128,
    "d_model": 32,
    "encoder_layers": 2,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "max_source_positions": 1500,
    "n_window": 100,
    "output_dim": 64,
    "activation_function": "gelu",
    "scale_embedding": False,
}

# The audio dump: valid mel frames of its audio (3 chunks of 200, 200 and 37 frames: M = 219 encoder frames, an odd
# count, so the last one is dropped by the pooling; 109 tokens), the padded frame count, and the image grid.
TOY_AUDIO_FRAMES = 437
TOY_AUDIO_PADDED_FRAMES = 480
TOY_AUDIO_IMAGE_GRID = (1, 4, 6)

TOKEN_IDS = {
    "audio_token_index": 151646, "image_token_index": 151655, "video_token_index": 151656,
    "vision_start_token_id": 151652, "vision_end_token_id": 151653, "audio_start_token_id": 151647,
    "audio_end_token_id": 151648, "position_id_per_seconds": 25, "seconds_per_chunk": 2,
}


def initialisers(rng):
    """Random initialisers drawing from `rng`: linear weights scaled by 1/sqrt(fan-in) (the product of all but the
    first dimension), small biases, norm weights near 1."""

    def lin(*shape):
        n_in = int(np.prod(shape[1:]))
        return rng.standard_normal(shape, dtype=np.float32) / np.float32(np.sqrt(n_in))

    def bias(n):
        return (0.1 * rng.standard_normal(n)).astype(np.float32)

    def norm_w(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    return lin, bias, norm_w


def toy_text_weights(text_config, rng):
    """{flat tensor name: float32 array} for a random text decoder (and an untied lm_head)."""
    d = text_config["hidden_size"]
    n_heads, n_kv = text_config["num_attention_heads"], text_config["num_key_value_heads"]
    d_head = text_config.get("head_dim") or d // n_heads
    d_ff, n_vocab = text_config["intermediate_size"], text_config["vocab_size"]

    lin, bias, norm_w = initialisers(rng)

    w = {"model.embed_tokens.weight": 0.5 * rng.standard_normal((n_vocab, d), dtype=np.float32)}
    for il in range(text_config["num_hidden_layers"]):
        p = "model.layers.%d." % il
        w[p + "input_layernorm.weight"] = norm_w(d)
        for proj, n_out in (("q", n_heads * d_head), ("k", n_kv * d_head), ("v", n_kv * d_head)):
            w[p + "self_attn.%s_proj.weight" % proj] = lin(n_out, d)
            w[p + "self_attn.%s_proj.bias" % proj] = bias(n_out)
        w[p + "self_attn.o_proj.weight"] = lin(d, n_heads * d_head)
        w[p + "post_attention_layernorm.weight"] = norm_w(d)
        w[p + "mlp.gate_proj.weight"] = lin(d_ff, d)
        w[p + "mlp.up_proj.weight"] = lin(d_ff, d)
        w[p + "mlp.down_proj.weight"] = lin(d, d_ff)
    w["model.norm.weight"] = norm_w(d)
    w["lm_head.weight"] = lin(n_vocab, d)
    return w


def toy_vision_weights(vision_config, rng):
    """{flat tensor name: float32 array} for a random vision tower (spec §2.2 names and shapes)."""
    d, f = vision_config["hidden_size"], vision_config["intermediate_size"]
    c, t, p = vision_config["in_channels"], vision_config["temporal_patch_size"], vision_config["patch_size"]
    m = d * vision_config["spatial_merge_size"] ** 2
    out = vision_config["out_hidden_size"]

    lin, bias, norm_w = initialisers(rng)

    w = {"visual.patch_embed.proj.weight": lin(d, c, t, p, p)}
    for j in range(vision_config["depth"]):
        b = "visual.blocks.%d." % j
        w[b + "norm1.weight"] = norm_w(d)
        w[b + "norm2.weight"] = norm_w(d)
        for key in ("q", "k", "v", "proj"):
            w[b + "attn.%s.weight" % key] = lin(d, d)
            w[b + "attn.%s.bias" % key] = bias(d)
        w[b + "mlp.gate_proj.weight"] = lin(f, d)
        w[b + "mlp.gate_proj.bias"] = bias(f)
        w[b + "mlp.up_proj.weight"] = lin(f, d)
        w[b + "mlp.up_proj.bias"] = bias(f)
        w[b + "mlp.down_proj.weight"] = lin(d, f)
        w[b + "mlp.down_proj.bias"] = bias(d)
    w["visual.merger.ln_q.weight"] = norm_w(d)
    w["visual.merger.mlp.0.weight"] = lin(m, m)
    w["visual.merger.mlp.0.bias"] = bias(m)
    w["visual.merger.mlp.2.weight"] = lin(out, m)
    w["visual.merger.mlp.2.bias"] = bias(out)
    return w


def toy_audio_weights(audio_config, rng):
    """{flat tensor name: float32 array} for a random audio tower (spec §2.3 names and shapes; k_proj has no
    bias; audio_bos_eos_token is stored but unused)."""
    d, f, n_mel = audio_config["d_model"], audio_config["encoder_ffn_dim"], audio_config["num_mel_bins"]
    out = audio_config["output_dim"]

    lin, bias, norm_w = initialisers(rng)

    w = {"audio_tower.conv1.weight": lin(d, n_mel, 3), "audio_tower.conv1.bias": bias(d),
         "audio_tower.conv2.weight": lin(d, d, 3), "audio_tower.conv2.bias": bias(d),
         "audio_tower.audio_bos_eos_token.weight": rng.standard_normal((2, out), dtype=np.float32)}
    for il in range(audio_config["encoder_layers"]):
        p = "audio_tower.layers.%d." % il
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            w[p + norm + ".weight"] = norm_w(d)
            w[p + norm + ".bias"] = bias(d)
        for proj in ("q", "k", "v", "out"):
            w[p + "self_attn.%s_proj.weight" % proj] = lin(d, d)
            if proj != "k":
                w[p + "self_attn.%s_proj.bias" % proj] = bias(d)
        w[p + "fc1.weight"], w[p + "fc1.bias"] = lin(f, d), bias(f)
        w[p + "fc2.weight"], w[p + "fc2.bias"] = lin(d, f), bias(d)
    w["audio_tower.ln_post.weight"] = norm_w(d)
    w["audio_tower.ln_post.bias"] = bias(d)
    w["audio_tower.proj.weight"] = lin(out, d)
    w["audio_tower.proj.bias"] = bias(out)
    return w


def toy_audio_features(n_mel, valid_frames, n_frames, rng, pad_value=-0.6):
    """input_features [n_audio, n_mel, n_frames] (log-mel-like values in the valid frames, a constant after them,
    as the processor's padding gives) and feature_attention_mask int64 [n_audio, n_frames]."""
    feats = np.full((len(valid_frames), n_mel, n_frames), pad_value, dtype=np.float32)
    mask = np.zeros((len(valid_frames), n_frames), dtype=np.int64)
    for i, t in enumerate(valid_frames):
        feats[i, :, :t] = rng.uniform(-1.2, 1.6, size=(n_mel, t)).astype(np.float32)
        mask[i, :t] = 1
    return feats, mask


def toy_audio_inputs(vision_config, audio_config, rng):
    """Document layout of omni-embed-nemotron §2: text, the audio block, the image block, text."""
    merge = vision_config["spatial_merge_size"]
    t, h, w = TOY_AUDIO_IMAGE_GRID
    patch_dim = (vision_config["in_channels"] * vision_config["temporal_patch_size"]
                 * vision_config["patch_size"] ** 2)
    ids = rng.integers(0, 151643, size=4, dtype=np.int64).tolist()
    ids += [TOKEN_IDS["audio_start_token_id"]] + [TOKEN_IDS["audio_token_index"]] * audio_output_length(
        TOY_AUDIO_FRAMES) + [TOKEN_IDS["audio_end_token_id"]]
    ids += [TOKEN_IDS["vision_start_token_id"]] + [TOKEN_IDS["image_token_index"]] * (t * h * w // merge // merge)
    ids += [TOKEN_IDS["vision_end_token_id"]] + rng.integers(0, 151643, size=2, dtype=np.int64).tolist()
    feats, mask = toy_audio_features(audio_config["num_mel_bins"], [TOY_AUDIO_FRAMES], TOY_AUDIO_PADDED_FRAMES, rng)
    pixel_values = rng.uniform(-1.8, 2.1, size=(t * h * w, patch_dim)).astype(np.float32)
    return {"input_ids": np.array([ids], dtype=np.int64), "input_features": feats, "feature_attention_mask": mask,
            "pixel_values": pixel_values, "image_grid_thw": np.array([TOY_AUDIO_IMAGE_GRID], dtype=np.int64)}


def toy_mm_inputs(vision_config, grids, rng):
    """Text, image 0 block, text, image 1 block, text (spec §7.2 layout), with ordinary-token ids below the
    special range; pixel values drawn like normalised pixels."""
    merge = vision_config["spatial_merge_size"]
    patch_dim = (vision_config["in_channels"] * vision_config["temporal_patch_size"]
                 * vision_config["patch_size"] ** 2)

    def text(n):
        return rng.integers(0, 151643, size=n, dtype=np.int64).tolist()

    ids = text(4)
    for i, (t, h, w) in enumerate(grids):
        ids += [TOKEN_IDS["vision_start_token_id"]]
        ids += [TOKEN_IDS["image_token_index"]] * (t * h * w // merge // merge)
        ids += [TOKEN_IDS["vision_end_token_id"]] + text(3 if i == 0 else 2)
    n_rows = sum(t * h * w for t, h, w in grids)
    pixel_values = rng.uniform(-1.8, 2.1, size=(n_rows, patch_dim)).astype(np.float32)
    return np.array([ids], dtype=np.int64), pixel_values, np.array(grids, dtype=np.int64)


def toy_inputs(n_vocab, rng):
    """5 text tokens, <vision_bos>, a 2x3 merged image grid, <vision_eos>, 3 text tokens (spec §8.2)."""
    n_text0, grid_h, grid_w, n_text1 = 5, 2, 3, 3
    rows = [[p, p, p] for p in range(n_text0 + 1)]            # text + bos
    base = n_text0 + 1
    rows += [[base, base + y, base + x] for y in range(grid_h) for x in range(grid_w)]
    nxt = base + max(grid_h - 1, grid_w - 1) + 1
    rows += [[p, p, p] for p in range(nxt, nxt + 1 + n_text1)]  # eos + text
    pos = np.array(rows, dtype=np.int64).T[:, None, :]          # [3, 1, n_tokens]
    ids = rng.integers(0, n_vocab, size=(1, pos.shape[2]), dtype=np.int64)
    return ids, pos


def write_flat(path, text_config, weights, vision_config=None, audio_config=None):
    os.makedirs(path, exist_ok=True)
    config = {"architectures": ["NVOmniEmbedModel"], "model_type": "nvomniembed",
              "text_config": dict(text_config), "vision_config": dict(vision_config or {}),
              "audio_config": dict(audio_config or {})}
    config.update(TOKEN_IDS)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    save_file(os.path.join(path, "model.safetensors"), {n: ("BF16", a) for n, a in weights.items()})


def write_base(path, text_config, weights, rng, vision_config=None, audio_config=None):
    os.makedirs(path, exist_ok=True)
    tc = dict(text_config)
    tc["head_dim"] = tc["hidden_size"] // tc["num_attention_heads"]
    thinker = {"model_type": "qwen2_5_omni_thinker", "text_config": tc,
               "vision_config": dict(vision_config or {}), "audio_config": dict(audio_config or {})}
    thinker.update(TOKEN_IDS)
    config = {"architectures": ["Qwen2_5OmniModel"], "model_type": "qwen2_5_omni",
              "thinker_config": thinker, "talker_config": {"hidden_size": 8}, "token2wav_config": {}}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    names = ["thinker." + n for n in weights]
    extra = {"talker.model.embed_tokens.weight": rng.standard_normal((16, 8), dtype=np.float32),
             "token2wav.code2wav_dit_model.proj.weight": rng.standard_normal((4, 4), dtype=np.float32)}
    shards = [names[: len(names) // 2], names[len(names) // 2:] + list(extra)]
    weight_map = {}
    for i, shard in enumerate(shards):
        filename = "model-%05d-of-%05d.safetensors" % (i + 1, len(shards))
        tensors = {}
        for n in shard:
            tensors[n] = ("BF16", extra[n] if n in extra else weights[n[len("thinker."):]])
            weight_map[n] = filename
        save_file(os.path.join(path, filename), tensors)
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)


def make_toy(out_dir, seed=0, n_vocab=None, overrides=None, vision_overrides=None, audio_overrides=None):
    """Write DIR/flat, DIR/base, DIR/inputs, DIR/mm_inputs and DIR/audio_inputs; returns (text_config, input_ids,
    position_ids). ``overrides`` / ``vision_overrides`` / ``audio_overrides`` replace entries of the default text /
    vision / audio config (the vision out_hidden_size and the audio output_dim follow the text hidden size unless
    overridden)."""
    rng = np.random.default_rng(seed)
    text_config = dict(TOY_TEXT_CONFIG)
    text_config.update(overrides or {})
    if n_vocab is not None:
        text_config["vocab_size"] = int(n_vocab)
    vision_config = dict(TOY_VISION_CONFIG)
    vision_config["out_hidden_size"] = text_config["hidden_size"]
    vision_config.update(vision_overrides or {})
    weights = toy_text_weights(text_config, rng)
    vision_rng = np.random.default_rng([seed, 1])        # separate stream: the text weights stay as they were
    weights.update(toy_vision_weights(vision_config, vision_rng))
    audio_config = dict(TOY_AUDIO_CONFIG)
    audio_config["output_dim"] = text_config["hidden_size"]
    audio_config.update(audio_overrides or {})
    audio_rng = np.random.default_rng([seed, 2])         # its own stream too
    weights.update(toy_audio_weights(audio_config, audio_rng))
    write_flat(os.path.join(out_dir, "flat"), text_config, weights, vision_config, audio_config)
    write_base(os.path.join(out_dir, "base"), text_config, weights, rng, vision_config, audio_config)
    ids, pos = toy_inputs(text_config["vocab_size"], rng)
    inputs = os.path.join(out_dir, "inputs")
    os.makedirs(inputs, exist_ok=True)
    np.save(os.path.join(inputs, "input_ids.npy"), ids)
    np.save(os.path.join(inputs, "position_ids.npy"), pos)
    if text_config["vocab_size"] > max(TOKEN_IDS.values()):
        mm_ids, pixel_values, grids = toy_mm_inputs(vision_config, TOY_MM_GRIDS, vision_rng)
        mm = os.path.join(out_dir, "mm_inputs")
        os.makedirs(mm, exist_ok=True)
        np.save(os.path.join(mm, "input_ids.npy"), mm_ids)
        np.save(os.path.join(mm, "pixel_values.npy"), pixel_values)
        np.save(os.path.join(mm, "image_grid_thw.npy"), grids)
        audio_dir = os.path.join(out_dir, "audio_inputs")
        os.makedirs(audio_dir, exist_ok=True)
        for name, array in toy_audio_inputs(vision_config, audio_config, audio_rng).items():
            np.save(os.path.join(audio_dir, name + ".npy"), array)
    return text_config, ids, pos


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab", type=int, default=None, help="vocabulary size (default 151936)")
    args = parser.parse_args()
    make_toy(args.out, args.seed, args.vocab)
    print("wrote %s/{flat,base,inputs,mm_inputs,audio_inputs}" % args.out)


if __name__ == "__main__":
    main()
