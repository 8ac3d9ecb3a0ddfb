#!/usr/bin/env python3
"""Reference embedding (spec omni-embed-nemotron.md §2): thinker text decoder, bidirectional by default, mean
over all tokens of the final-normed hidden state, L2-normalised; images go through the vision tower and are
merged into the placeholder rows (thinker spec §3.4) with TMRoPE positions (§8).

    python3 tools/reference/text_embed.py --model DIR --inputs DUMP_DIR --out OUT_DIR \
        [--attention bidirectional|causal] [--precision fp32|bf16]

DUMP_DIR holds input_ids.npy (int64 [1, n_tokens]) and, for text, position_ids.npy (int64 [3, 1, n_tokens];
rows T, H, W). It may also hold pixel_values.npy (float32 [N, 1176]) and image_grid_thw.npy (int64 [n, 3]):
then the vision tower runs, the <|IMAGE|> rows are replaced by its outputs, and the position ids are computed
here with get_rope_index (a position_ids.npy in DUMP_DIR is ignored). Without position_ids.npy a text-only
input gets 0..n_tokens-1.
OUT_DIR receives inputs_embeds.npy [n_tokens, d_model], layer_outputs.npy [n_layers, n_tokens, d_model]
(residual stream after each layer), last_hidden_state.npy [n_tokens, d_model] and embedding.npy [d_model], all
float32; with images also vision_embeds.npy [N/4, out_hidden_size], vision_patch_embeds.npy [N, d_vision],
vision_block_outputs.npy [depth, N, d_vision] (float32, processor order), and position_ids.npy (int64
[3, 1, n_tokens]) whenever the positions were computed here.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checkpoint import Checkpoint, CheckpointError  # noqa: E402
from numerics import PRECISIONS  # noqa: E402
from safetensors_np import SafetensorsError  # noqa: E402
from rope_index import TokenIds, get_rope_index, text_positions  # noqa: E402
from text_model import ATTENTION_MODES, TextModel  # noqa: E402
from vision_model import VisionConfig, encode_images  # noqa: E402

OUTPUT_NAMES = ("inputs_embeds", "layer_outputs", "last_hidden_state", "embedding")
VISION_OUTPUT_NAMES = ("vision_embeds", "vision_patch_embeds", "vision_block_outputs")


def _squeeze_ids(input_ids):
    ids = np.asarray(input_ids)
    if ids.ndim == 2:
        if ids.shape[0] != 1:
            raise ValueError("input_ids: only batch size 1 is supported, got shape %s" % (ids.shape,))
        ids = ids[0]
    if ids.ndim != 1 or ids.shape[0] == 0:
        raise ValueError("input_ids: expected [1, n_tokens] with n_tokens > 0, got shape %s" % (ids.shape,))
    return ids.astype(np.int64)


def _squeeze_inputs(input_ids, position_ids):
    ids = _squeeze_ids(input_ids)
    pos = np.asarray(position_ids)
    if pos.ndim == 3:
        if pos.shape[1] != 1:
            raise ValueError("position_ids: only batch size 1 is supported, got shape %s" % (pos.shape,))
        pos = pos[:, 0, :]
    if pos.shape != (3, ids.shape[0]):
        raise ValueError("position_ids: expected [3, 1, %d], got shape %s"
                         % (ids.shape[0], np.asarray(position_ids).shape))
    return ids, pos.astype(np.int64)


def mean_pool_normalize(last_hidden_state):
    """Mean over all tokens (the item is unpadded), then L2 normalisation (accumulated in float64)."""
    mean = np.mean(np.asarray(last_hidden_state, np.float64), axis=0)
    return mean / np.linalg.norm(mean)


def _refuse_unfed_placeholders(ids, token_ids, fed):
    """Placeholders whose features are not given (or not implemented here) cannot be embedded."""
    names = {"image": (token_ids.image, "<|IMAGE|>"), "video": (token_ids.video, "<|VIDEO|>"),
             "audio": (token_ids.audio, "<|AUDIO|>")}
    for kind, (token, name) in names.items():
        if kind not in fed and np.any(ids == token):
            raise ValueError("input_ids contain %s placeholders (id %d) but no %s features are given%s"
                             % (name, token, kind, "" if kind == "image" else
                                " (the reference has no %s tower yet)" % kind))


def embed(model_dir, input_ids, position_ids=None, attention="bidirectional", precision="fp32",
          checkpoint=None, pixel_values=None, image_grid_thw=None):
    """Run the reference towers and pooling. Returns {name: array}: OUTPUT_NAMES (float32); with images also
    VISION_OUTPUT_NAMES (float32); "position_ids" (int64 [3, 1, n_tokens]) when they were computed here (images,
    or position_ids=None). ``model_dir`` may be None when an open ``checkpoint`` is passed. With images the
    given position_ids are ignored."""
    ckpt = checkpoint if checkpoint is not None else Checkpoint(model_dir)
    with_images = pixel_values is not None or image_grid_thw is not None
    if not with_images and position_ids is not None:
        ids, pos = _squeeze_inputs(input_ids, position_ids)
        out = TextModel(ckpt, precision).forward(ids, pos, attention_mode=attention)
        out["embedding"] = mean_pool_normalize(out["last_hidden_state"])
        return {name: np.asarray(out[name], dtype=np.float32) for name in OUTPUT_NAMES}

    ids = _squeeze_ids(input_ids)
    token_ids = TokenIds(ckpt.thinker_config)
    model = TextModel(ckpt, precision)
    if not with_images:
        _refuse_unfed_placeholders(ids, token_ids, fed=())
        pos, _ = text_positions(len(ids))
        out = model.forward(ids, pos, attention_mode=attention)
        vision = None
    else:
        if pixel_values is None or image_grid_thw is None:
            raise ValueError("images need both pixel_values and image_grid_thw")
        _refuse_unfed_placeholders(ids, token_ids, fed=("image",))
        vcfg = VisionConfig(ckpt.sub_config("vision_config"))
        if vcfg.out_d_model != model.cfg.d_model:
            raise ValueError("vision_config.out_hidden_size %d differs from the text hidden size %d"
                             % (vcfg.out_d_model, model.cfg.d_model))
        vision = encode_images(ckpt, pixel_values, image_grid_thw, model.num)
        rows = np.flatnonzero(ids == token_ids.image)
        if len(rows) != vision["merged"].shape[0]:
            raise ValueError("input_ids have %d <|IMAGE|> tokens (id %d) but the images give %d rows "
                             "(sum of t*h*w/%d over image_grid_thw)"
                             % (len(rows), token_ids.image, vision["merged"].shape[0], vcfg.merge_unit))
        pos, _ = get_rope_index(ids, token_ids, vcfg.merge, image_grid_thw=np.asarray(image_grid_thw))
        embeds = model.embed_tokens(ids)
        embeds = embeds.astype(model.num.dtype, copy=True)
        embeds[rows] = model.num.round(vision["merged"])   # k-th placeholder gets row k (masked scatter)
        out = model.forward(ids, pos, attention_mode=attention, inputs_embeds=embeds)
    out["embedding"] = mean_pool_normalize(out["last_hidden_state"])
    result = {name: np.asarray(out[name], dtype=np.float32) for name in OUTPUT_NAMES}
    if vision is not None:
        result["vision_embeds"] = np.asarray(vision["merged"], dtype=np.float32)
        result["vision_patch_embeds"] = np.asarray(vision["patch_embeds"], dtype=np.float32)
        result["vision_block_outputs"] = np.asarray(vision["block_outputs"], dtype=np.float32)
    result["position_ids"] = np.asarray(pos, dtype=np.int64)[:, None, :]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder (config.json + safetensors)")
    parser.add_argument("--inputs", required=True,
                        help="folder with input_ids.npy and position_ids.npy, or pixel_values.npy and "
                             "image_grid_thw.npy for images")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--attention", choices=ATTENTION_MODES, default="bidirectional")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    args = parser.parse_args(argv)

    def optional(name):
        path = os.path.join(args.inputs, name)
        return np.load(path) if os.path.isfile(path) else None

    try:
        input_ids = np.load(os.path.join(args.inputs, "input_ids.npy"))
        pixel_values = optional("pixel_values.npy")
        image_grid_thw = optional("image_grid_thw.npy")
        if (pixel_values is None) != (image_grid_thw is None):
            raise ValueError("%s: pixel_values.npy and image_grid_thw.npy must come together" % args.inputs)
        # with images the positions are computed here and a dumped position_ids.npy is ignored
        position_ids = optional("position_ids.npy") if pixel_values is None else None
        result = embed(args.model, input_ids, position_ids, args.attention, args.precision,
                       pixel_values=pixel_values, image_grid_thw=image_grid_thw)
    except (OSError, ValueError, KeyError, CheckpointError, SafetensorsError) as e:
        print("text_embed: error: %s" % e, file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    for name, array in result.items():
        np.save(os.path.join(args.out, name + ".npy"), array)
    return 0


if __name__ == "__main__":
    sys.exit(main())
