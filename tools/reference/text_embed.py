#!/usr/bin/env python3
"""Reference embedding (spec omni-embed-nemotron.md §2): thinker text decoder, bidirectional by default, mean
over all tokens of the final-normed hidden state, L2-normalised; images and videos go through the vision tower
(one call each), audios through the audio tower, and are merged into the placeholder rows (thinker spec §3.4)
with TMRoPE positions (§8).

    python3 tools/reference/text_embed.py --model DIR --inputs DUMP_DIR --out OUT_DIR \
        [--attention bidirectional|causal] [--precision fp32|bf16]

DUMP_DIR holds input_ids.npy (int64 [1, n_tokens]) and, for text, position_ids.npy (int64 [3, 1, n_tokens];
rows T, H, W). It may also hold pixel_values.npy (float32 [N, 1176]) and image_grid_thw.npy (int64 [n, 3]),
pixel_values_videos.npy (float32 [N_v, 1176]) and video_grid_thw.npy (int64 [n_videos, 3]) with the optional
video_second_per_grid.npy (float32 [n_videos], default 1.0 each) and use_audio_in_video.npy (int64 [1], 0 or 1,
default 0: 1 means each video's audio is interleaved with it, §7.3), and input_features.npy (float32 [n_audio,
n_mel, n_frames], padded) with feature_attention_mask.npy (int64 [n_audio, n_frames], 1 for the valid frames,
which come first): then the towers run, the <|IMAGE|>, <|VIDEO|> and <|AUDIO|> rows are replaced by their
outputs (in placeholder order per modality), and the position ids are computed here with get_rope_index (a
position_ids.npy in DUMP_DIR is ignored). Without position_ids.npy a text-only input gets 0..n_tokens-1.
OUT_DIR receives inputs_embeds.npy [n_tokens, d_model], layer_outputs.npy [n_layers, n_tokens, d_model]
(residual stream after each layer), last_hidden_state.npy [n_tokens, d_model] and embedding.npy [d_model], all
float32; with images also vision_embeds.npy [N/4, out_hidden_size], vision_patch_embeds.npy [N, d_vision],
vision_block_outputs.npy [depth, N, d_vision] (float32, processor order); with videos also video_embeds.npy
[N_v/4, out_hidden_size] (float32, processor order); with audio also audio_embeds.npy
[sum tokens, output_dim], audio_layer_input.npy [sum M_i, d_audio] (conv stem + sinusoid rows),
audio_layer_outputs.npy [n_layers, sum M_i, d_audio] (float32, audio order); and position_ids.npy (int64
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
from audio_model import AudioConfig, encode_audios, features_from_padded, token_count  # noqa: E402

OUTPUT_NAMES = ("inputs_embeds", "layer_outputs", "last_hidden_state", "embedding")
VISION_OUTPUT_NAMES = ("vision_embeds", "vision_patch_embeds", "vision_block_outputs")
VIDEO_OUTPUT_NAMES = ("video_embeds",)
AUDIO_OUTPUT_NAMES = ("audio_embeds", "audio_layer_input", "audio_layer_outputs")


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
    """Placeholders whose features are not given cannot be embedded."""
    names = {"image": (token_ids.image, "<|IMAGE|>"), "video": (token_ids.video, "<|VIDEO|>"),
             "audio": (token_ids.audio, "<|AUDIO|>")}
    for kind, (token, name) in names.items():
        if kind not in fed and np.any(ids == token):
            raise ValueError("input_ids contain %s placeholders (id %d) but no %s features are given"
                             % (name, token, kind))


def _scatter(embeds, ids, token, name, rows, what, num):
    """Row k of ``rows`` replaces the k-th ``token`` embedding (masked scatter, spec §3.4)."""
    where = np.flatnonzero(ids == token)
    if len(where) != rows.shape[0]:
        raise ValueError("input_ids have %d %s tokens (id %d) but the %s give %d rows"
                         % (len(where), name, token, what, rows.shape[0]))
    embeds[where] = num.round(rows)


def _encode_images(ckpt, model, pixel_values, image_grid_thw, what="images", names=("pixel_values",
                                                                                   "image_grid_thw")):
    """One vision-tower call (all images, or all videos: the thinker encodes them separately, spec §4.6)."""
    if pixel_values is None or image_grid_thw is None:
        raise ValueError("%s need both %s and %s" % (what, names[0], names[1]))
    vcfg = VisionConfig(ckpt.sub_config("vision_config"))
    if vcfg.out_d_model != model.cfg.d_model:
        raise ValueError("vision_config.out_hidden_size %d differs from the text hidden size %d"
                         % (vcfg.out_d_model, model.cfg.d_model))
    return vcfg, encode_images(ckpt, pixel_values, image_grid_thw, model.num)


def _video_options(video_grid_thw, video_second_per_grid, use_audio_in_video):
    """second_per_grid as float32 [n_videos] (default 1.0 each, spec §6.2.2) and the use_audio_in_video flag."""
    flag = np.asarray(use_audio_in_video).reshape(-1)
    if flag.shape != (1,) or flag[0] not in (0, 1):
        raise ValueError("use_audio_in_video: expected one value, 0 or 1, got %s" % (flag.tolist(),))
    n_videos = 0 if video_grid_thw is None else np.asarray(video_grid_thw).reshape(-1, 3).shape[0]
    if video_second_per_grid is None:
        return np.ones(n_videos, np.float32), bool(flag[0])
    spg = np.asarray(video_second_per_grid, np.float32).reshape(-1)
    if spg.shape[0] != n_videos:
        raise ValueError("video_second_per_grid has %d entries for %d videos" % (spg.shape[0], n_videos))
    if not np.all(np.isfinite(spg) & (spg > 0)):
        raise ValueError("video_second_per_grid: expected finite positive values, got %s" % spg.tolist())
    return spg, bool(flag[0])


def _check_video_blocks(ids, token_ids, n_videos, use_audio_in_video):
    """Every video must open with <|vision_bos|> <|VIDEO|> (or <|vision_bos|> <|audio_bos|> when its audio is
    interleaved, §7.3); get_rope_index would otherwise leave a mislabelled video to the text numbering."""
    second = token_ids.audio_start if use_audio_in_video else token_ids.video
    found = int(np.sum((ids[:-1] == token_ids.vision_start) & (ids[1:] == second)))
    if found != n_videos:
        raise ValueError("input_ids have %d video blocks starting <|vision_bos|> %s but video_grid_thw has %d rows "
                         "(use_audio_in_video = %d)" % (found, "<|audio_bos|>" if use_audio_in_video
                                                        else "<|VIDEO|>", n_videos, use_audio_in_video))


def _encode_audios(ckpt, model, input_features, feature_attention_mask):
    """Valid frames of each audio (HF padded layout + mask) through the audio tower; T < 3 is refused."""
    if input_features is None or feature_attention_mask is None:
        raise ValueError("audio needs both input_features and feature_attention_mask")
    acfg = AudioConfig(ckpt.sub_config("audio_config"))
    if acfg.output_dim != model.cfg.d_model:
        raise ValueError("audio_config.output_dim %d differs from the text hidden size %d"
                         % (acfg.output_dim, model.cfg.d_model))
    features = features_from_padded(input_features, feature_attention_mask, acfg.n_mel)
    seqlens = [f.shape[1] for f in features]
    for i, n_frames in enumerate(seqlens):
        if token_count(n_frames) < 1:
            raise ValueError("audio %d has %d valid mel frames, which yields no audio token (at least 3 frames, "
                             "321 samples at 16 kHz, are needed)" % (i, n_frames))
    return seqlens, encode_audios(ckpt, features, model.num)


def embed(model_dir, input_ids, position_ids=None, attention="bidirectional", precision="fp32",
          checkpoint=None, pixel_values=None, image_grid_thw=None, input_features=None,
          feature_attention_mask=None, pixel_values_videos=None, video_grid_thw=None,
          video_second_per_grid=None, use_audio_in_video=False):
    """Run the reference towers and pooling. Returns {name: array}: OUTPUT_NAMES (float32); with images also
    VISION_OUTPUT_NAMES, with videos VIDEO_OUTPUT_NAMES, with audio AUDIO_OUTPUT_NAMES (float32); "position_ids"
    (int64 [3, 1, n_tokens]) when they were computed here (any media, or position_ids=None). ``model_dir`` may be
    None when an open ``checkpoint`` is passed. With media the given position_ids are ignored.
    Audio: input_features [n_audio, n_mel, n_frames] (padded) with feature_attention_mask [n_audio, n_frames]
    (1 for the valid frames, first); audio i uses its first sum(mask_i) frames.
    Videos: pixel_values_videos [N_v, 1176] with video_grid_thw [n_videos, 3], video_second_per_grid [n_videos]
    (default 1.0 each); use_audio_in_video: the audios include each video's own track, interleaved with it in
    input_ids (§7.3; the audios are numbered in order of appearance)."""
    ckpt = checkpoint if checkpoint is not None else Checkpoint(model_dir)
    with_images = pixel_values is not None or image_grid_thw is not None
    with_videos = pixel_values_videos is not None or video_grid_thw is not None
    with_audio = input_features is not None or feature_attention_mask is not None
    if with_videos and (pixel_values_videos is None or video_grid_thw is None):
        raise ValueError("videos need both pixel_values_videos and video_grid_thw")
    # use_audio_in_video without videos changes nothing (as in the thinker: no interleaved block to lay out)
    spg, use_audio_in_video = _video_options(video_grid_thw, video_second_per_grid, use_audio_in_video)
    if not with_images and not with_videos and not with_audio and position_ids is not None:
        ids, pos = _squeeze_inputs(input_ids, position_ids)
        out = TextModel(ckpt, precision).forward(ids, pos, attention_mode=attention)
        out["embedding"] = mean_pool_normalize(out["last_hidden_state"])
        return {name: np.asarray(out[name], dtype=np.float32) for name in OUTPUT_NAMES}

    ids = _squeeze_ids(input_ids)
    token_ids = TokenIds(ckpt.thinker_config)
    model = TextModel(ckpt, precision)
    _refuse_unfed_placeholders(ids, token_ids, fed=("image",) * with_images + ("video",) * with_videos
                               + ("audio",) * with_audio)
    vision = video = audio = None
    if not with_images and not with_videos and not with_audio:
        pos, _ = text_positions(len(ids))
        out = model.forward(ids, pos, attention_mode=attention)
    else:
        embeds = model.embed_tokens(ids).astype(model.num.dtype, copy=True)
        merge, seqlens = 1, None          # merge is unused without images / videos
        if with_images:
            vcfg, vision = _encode_images(ckpt, model, pixel_values, image_grid_thw)
            merge = vcfg.merge
            _scatter(embeds, ids, token_ids.image, "<|IMAGE|>", vision["merged"],
                     "images (sum of t*h*w/%d over image_grid_thw)" % vcfg.merge_unit, model.num)
        if with_videos:
            vcfg, video = _encode_images(ckpt, model, pixel_values_videos, video_grid_thw, "videos",
                                         ("pixel_values_videos", "video_grid_thw"))
            merge = vcfg.merge
            _scatter(embeds, ids, token_ids.video, "<|VIDEO|>", video["merged"],
                     "videos (sum of t*h*w/%d over video_grid_thw)" % vcfg.merge_unit, model.num)
            _check_video_blocks(ids, token_ids, len(spg), use_audio_in_video)
        if with_audio:
            seqlens, audio = _encode_audios(ckpt, model, input_features, feature_attention_mask)
            _scatter(embeds, ids, token_ids.audio, "<|AUDIO|>", audio["embeds"],
                     "audios (sum of ((T - 1)//2 + 1 - 2)//2 + 1 over their valid frames T = %s)" % seqlens,
                     model.num)
        # The general §8.2 walk also for audio without images: it gives 0..S-1 there (§8.1) and checks every
        # <|audio_bos|> <|AUDIO|> x n run against its audio's length (and, interleaved, every chunk's run).
        pos, _ = get_rope_index(ids, token_ids, merge,
                                image_grid_thw=None if vision is None else np.asarray(image_grid_thw),
                                video_grid_thw=None if video is None else np.asarray(video_grid_thw),
                                audio_seqlens=seqlens, second_per_grids=spg if video is not None else None,
                                use_audio_in_video=use_audio_in_video and video is not None, general=True)
        out = model.forward(ids, pos, attention_mode=attention, inputs_embeds=embeds)
    out["embedding"] = mean_pool_normalize(out["last_hidden_state"])
    result = {name: np.asarray(out[name], dtype=np.float32) for name in OUTPUT_NAMES}
    if vision is not None:
        result["vision_embeds"] = np.asarray(vision["merged"], dtype=np.float32)
        result["vision_patch_embeds"] = np.asarray(vision["patch_embeds"], dtype=np.float32)
        result["vision_block_outputs"] = np.asarray(vision["block_outputs"], dtype=np.float32)
    if video is not None:
        result["video_embeds"] = np.asarray(video["merged"], dtype=np.float32)
    if audio is not None:
        result["audio_embeds"] = np.asarray(audio["embeds"], dtype=np.float32)
        result["audio_layer_input"] = np.asarray(audio["layer_input"], dtype=np.float32)
        result["audio_layer_outputs"] = np.asarray(audio["layer_outputs"], dtype=np.float32)
    result["position_ids"] = np.asarray(pos, dtype=np.int64)[:, None, :]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder (config.json + safetensors)")
    parser.add_argument("--inputs", required=True,
                        help="folder with input_ids.npy and position_ids.npy, pixel_values.npy and "
                             "image_grid_thw.npy for images, pixel_values_videos.npy and video_grid_thw.npy "
                             "(+ video_second_per_grid.npy, use_audio_in_video.npy) for videos, "
                             "input_features.npy and feature_attention_mask.npy for audio")
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
        pixel_values_videos = optional("pixel_values_videos.npy")
        video_grid_thw = optional("video_grid_thw.npy")
        if (pixel_values_videos is None) != (video_grid_thw is None):
            raise ValueError("%s: pixel_values_videos.npy and video_grid_thw.npy must come together" % args.inputs)
        video_second_per_grid = optional("video_second_per_grid.npy")
        use_audio_in_video = optional("use_audio_in_video.npy")
        input_features = optional("input_features.npy")
        feature_attention_mask = optional("feature_attention_mask.npy")
        if (input_features is None) != (feature_attention_mask is None):
            raise ValueError("%s: input_features.npy and feature_attention_mask.npy must come together"
                             % args.inputs)
        # with media the positions are computed here and a dumped position_ids.npy is ignored
        media = pixel_values is not None or pixel_values_videos is not None or input_features is not None
        position_ids = None if media else optional("position_ids.npy")
        result = embed(args.model, input_ids, position_ids, args.attention, args.precision,
                       pixel_values=pixel_values, image_grid_thw=image_grid_thw, input_features=input_features,
                       feature_attention_mask=feature_attention_mask, pixel_values_videos=pixel_values_videos,
                       video_grid_thw=video_grid_thw, video_second_per_grid=video_second_per_grid,
                       use_audio_in_video=0 if use_audio_in_video is None else use_audio_in_video)
    except (OSError, ValueError, KeyError, CheckpointError, SafetensorsError) as e:
        print("text_embed: error: %s" % e, file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    for name, array in result.items():
        np.save(os.path.join(args.out, name + ".npy"), array)
    return 0


if __name__ == "__main__":
    sys.exit(main())
