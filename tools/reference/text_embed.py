#!/usr/bin/env python3
"""Reference text embedding (spec omni-embed-nemotron.md §2): thinker text decoder, bidirectional by
default, mean over all tokens of the final-normed hidden state, L2-normalised.

    python3 tools/reference/text_embed.py --model DIR --inputs DUMP_DIR --out OUT_DIR \
        [--attention bidirectional|causal] [--precision fp32|bf16]

DUMP_DIR holds input_ids.npy (int64 [1, n_tokens]) and position_ids.npy (int64 [3, 1, n_tokens]; rows T, H, W).
OUT_DIR receives inputs_embeds.npy [n_tokens, d_model], layer_outputs.npy [n_layers, n_tokens, d_model]
(residual stream after each layer), last_hidden_state.npy [n_tokens, d_model] and embedding.npy [d_model],
all float32.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checkpoint import Checkpoint, CheckpointError  # noqa: E402
from numerics import PRECISIONS  # noqa: E402
from safetensors_np import SafetensorsError  # noqa: E402
from text_model import ATTENTION_MODES, TextModel  # noqa: E402

OUTPUT_NAMES = ("inputs_embeds", "layer_outputs", "last_hidden_state", "embedding")


def _squeeze_inputs(input_ids, position_ids):
    ids = np.asarray(input_ids)
    pos = np.asarray(position_ids)
    if ids.ndim == 2:
        if ids.shape[0] != 1:
            raise ValueError("input_ids: only batch size 1 is supported, got shape %s" % (ids.shape,))
        ids = ids[0]
    if pos.ndim == 3:
        if pos.shape[1] != 1:
            raise ValueError("position_ids: only batch size 1 is supported, got shape %s" % (pos.shape,))
        pos = pos[:, 0, :]
    if ids.ndim != 1 or ids.shape[0] == 0:
        raise ValueError("input_ids: expected [1, n_tokens] with n_tokens > 0, got shape %s" % (ids.shape,))
    if pos.shape != (3, ids.shape[0]):
        raise ValueError("position_ids: expected [3, 1, %d], got shape %s"
                         % (ids.shape[0], np.asarray(position_ids).shape))
    return ids.astype(np.int64), pos.astype(np.int64)


def mean_pool_normalize(last_hidden_state):
    """Mean over all tokens (the item is unpadded), then L2 normalisation (accumulated in float64)."""
    mean = np.mean(np.asarray(last_hidden_state, np.float64), axis=0)
    return mean / np.linalg.norm(mean)


def embed(model_dir, input_ids, position_ids, attention="bidirectional", precision="fp32",
          checkpoint=None):
    """Run the reference text tower and pooling. Returns {name: float32 array} for OUTPUT_NAMES.
    ``model_dir`` may be None when an open ``checkpoint`` is passed."""
    ids, pos = _squeeze_inputs(input_ids, position_ids)
    ckpt = checkpoint if checkpoint is not None else Checkpoint(model_dir)
    out = TextModel(ckpt, precision).forward(ids, pos, attention_mode=attention)
    out["embedding"] = mean_pool_normalize(out["last_hidden_state"])
    return {name: np.asarray(out[name], dtype=np.float32) for name in OUTPUT_NAMES}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder (config.json + safetensors)")
    parser.add_argument("--inputs", required=True, help="folder with input_ids.npy and position_ids.npy")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--attention", choices=ATTENTION_MODES, default="bidirectional")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    args = parser.parse_args(argv)

    try:
        input_ids = np.load(os.path.join(args.inputs, "input_ids.npy"))
        position_ids = np.load(os.path.join(args.inputs, "position_ids.npy"))
        result = embed(args.model, input_ids, position_ids, args.attention, args.precision)
    except (OSError, ValueError, KeyError, CheckpointError, SafetensorsError) as e:
        print("text_embed: error: %s" % e, file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    for name, array in result.items():
        np.save(os.path.join(args.out, name + ".npy"), array)
    return 0


if __name__ == "__main__":
    sys.exit(main())
