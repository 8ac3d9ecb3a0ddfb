"""TMRoPE position ids of the Qwen2.5-Omni thinker (spec qwen25-omni-thinker.md §8), for one unpadded sequence.

``get_rope_index`` returns position ids [3, S] (rows T, H, W) and the scalar delta = max + 1 - S:
  * no image grid and no video grid (text only, or audio only): positions 0..S-1 on all three rows (§8.1);
  * otherwise the general block algorithm of §8.2 (images, videos with use_audio_in_video false or true,
    audio), with get_chunked_index of §8.3 for the interleaved video+audio case.
"next" is always (max of the last appended block) + 1, or 0 before the first block.
"""

import numpy as np

TOKEN_KEYS = {
    # attribute: config keys accepted (the checkpoint config uses *_index for the placeholders)
    "image": ("image_token_index", "image_token_id"),
    "video": ("video_token_index", "video_token_id"),
    "audio": ("audio_token_index", "audio_token_id"),
    "vision_start": ("vision_start_token_id",),
    "vision_end": ("vision_end_token_id",),
    "audio_start": ("audio_start_token_id",),
    "audio_end": ("audio_end_token_id",),
    "position_id_per_seconds": ("position_id_per_seconds",),
    "seconds_per_chunk": ("seconds_per_chunk",),
}


class TokenIds:
    """Special token ids and TMRoPE constants, read from the thinker-level config (the top level of the flat
    nvomniembed config, or thinker_config of the qwen2_5_omni config)."""

    def __init__(self, config):
        for attr, keys in TOKEN_KEYS.items():
            value = next((config[k] for k in keys if k in config and config[k] is not None), None)
            if value is None:
                raise ValueError("config: missing %s" % " / ".join(keys))
            setattr(self, attr, value if attr == "seconds_per_chunk" else int(value))

    @property
    def tokens_per_chunk(self):
        return int(self.position_id_per_seconds * self.seconds_per_chunk)


def audio_output_length(n_mel_frames):
    """Audio tokens for T valid mel frames: the two stride-2 stages of the audio tower (spec §8.2)."""
    return ((int(n_mel_frames) - 1) // 2 + 1 - 2) // 2 + 1


def _audio_tokens(n_mel_frames):
    a_len = audio_output_length(n_mel_frames)
    if a_len < 1:
        raise ValueError("an audio of %d mel frames yields no token (at least 3 frames are needed)" % n_mel_frames)
    return a_len


def get_chunked_index(values, tokens_per_chunk, subtract):
    """Spec §8.3: split a non-decreasing list of T values into (start, end) slices; at most one boundary per
    element, even when a value jumps over several chunk widths."""
    chunks = []
    start, k = 0, 1
    for i, value in enumerate(values):
        if value - subtract >= k * tokens_per_chunk:
            chunks.append((start, i))
            start = i
            k += 1
    chunks.append((start, len(values)))
    return chunks


def video_time_offsets(grid_t, second_per_grid, position_id_per_seconds):
    """trunc((ti * spg) * pps) with both products in float32 (spec §8.2, §10 item 7)."""
    spg = np.float32(second_per_grid)
    out = []
    for ti in range(int(grid_t)):
        value = np.float32(np.float32(ti) * spg) * np.float32(position_id_per_seconds)
        out.append(int(np.float32(value)))     # .long() truncates toward zero
    return out


def vision_block(start, t_offsets, grid_h, grid_w, merge):
    """[3, t*H'*W'] positions of a vision item: (T = start + t_offset, H = start + y, W = start + x) for the
    merged tokens in (ti, y, x) row-major order."""
    hm, wm = int(grid_h) // merge, int(grid_w) // merge
    cols = []
    for t_off in t_offsets:
        for y in range(hm):
            for x in range(wm):
                cols.append((start + t_off, start + y, start + x))
    return np.array(cols, dtype=np.int64).T.reshape(3, -1)


def text_block(start, length):
    return np.tile(np.arange(start, start + length, dtype=np.int64), (3, 1))


def text_positions(n_tokens):
    """§8.1: no image or video grid. Positions 0..S-1 on all rows, delta 0."""
    return text_block(0, n_tokens), 0


class _Blocks:
    def __init__(self):
        self.blocks = []

    def next(self):
        return int(self.blocks[-1].max()) + 1 if self.blocks else 0

    def append(self, block):
        self.blocks.append(np.asarray(block, dtype=np.int64).reshape(3, -1))

    def text(self, length):
        if length > 0:
            self.append(text_block(self.next(), length))

    def single(self, count=1, value=None):
        v = self.next() if value is None else value
        for _ in range(count):
            self.append(text_block(v, 1))


def _first_index(tokens, token, start):
    for i in range(start, len(tokens)):
        if tokens[i] == token:
            return i
    return None


def _expect(tokens, index, token, what):
    if not 0 <= index < len(tokens) or tokens[index] != token:
        found = tokens[index] if 0 <= index < len(tokens) else "the end of the sequence"
        raise ValueError("input_ids[%d]: expected %s (%d), found %s" % (index, what, token, found))


def _expect_run(tokens, start, length, token, what):
    end = start + length
    if end > len(tokens) or any(tokens[i] != token for i in range(start, end)):
        got = sum(1 for i in range(start, min(end, len(tokens))) if tokens[i] == token)
        raise ValueError("input_ids: expected %d consecutive %s tokens (%d) at %d, found only %d"
                         % (length, what, token, start, got))


def get_rope_index(input_ids, token_ids, spatial_merge_size, image_grid_thw=None, video_grid_thw=None,
                   audio_seqlens=None, second_per_grids=None, use_audio_in_video=False, general=False):
    """Position ids [3, S] int64 and delta (int) for one unpadded sequence.

    token_ids            a TokenIds or a config dict with the thinker-level keys;
    image_grid_thw       [n_images, 3] (t, h, w in patches) or None;
    video_grid_thw       [n_videos, 3] or None; second_per_grids [n_videos] (default 1.0 each);
    audio_seqlens        valid mel frames per audio, in order of appearance (audio of a video included);
    general              run §8.2 even without grids (the text/audio-only inputs then give 0..S-1 too).
    Placeholder runs are checked against the grids and audio lengths (a clear error instead of garbage)."""
    ids = token_ids if isinstance(token_ids, TokenIds) else TokenIds(token_ids)
    tokens = [int(v) for v in np.asarray(input_ids).reshape(-1).tolist()]
    n = len(tokens)
    if image_grid_thw is None and video_grid_thw is None and not general:
        return text_positions(n)
    merge = int(spatial_merge_size)
    images = np.zeros((0, 3), np.int64) if image_grid_thw is None else np.asarray(image_grid_thw, np.int64).reshape(-1, 3)
    videos = np.zeros((0, 3), np.int64) if video_grid_thw is None else np.asarray(video_grid_thw, np.int64).reshape(-1, 3)
    audios = [] if audio_seqlens is None else [int(v) for v in np.asarray(audio_seqlens).reshape(-1)]
    spgs = [1.0] * len(videos) if second_per_grids is None else [float(v) for v in np.asarray(second_per_grids).reshape(-1)]
    pps, tpc = ids.position_id_per_seconds, ids.tokens_per_chunk

    # counts exactly as §8.2: the token after each <|vision_bos|> decides image / video
    after_bos = [tokens[i + 1] for i in range(n - 1) if tokens[i] == ids.vision_start]
    n_img = after_bos.count(ids.image)
    n_vid = after_bos.count(ids.audio_start if use_audio_in_video else ids.video)
    n_aud = tokens.count(ids.audio_start)
    if n_img > len(images):
        raise ValueError("input_ids has %d images but image_grid_thw has %d rows" % (n_img, len(images)))
    if n_vid > len(videos):
        raise ValueError("input_ids has %d videos but video_grid_thw has %d rows" % (n_vid, len(videos)))
    if n_aud > len(audios):
        raise ValueError("input_ids has %d audios but audio_seqlens has %d entries" % (n_aud, len(audios)))
    if len(spgs) < len(videos):
        raise ValueError("second_per_grids has %d entries for %d videos" % (len(spgs), len(videos)))

    blocks = _Blocks()
    st = 0
    i_img = i_vid = i_aud = 0
    remain = {"image": n_img, "video": n_vid, "audio": n_aud}
    rounds = n_img + n_aud if use_audio_in_video else n_img + n_vid + n_aud
    for _ in range(rounds):
        found = {}
        for kind, token in (("image", ids.image), ("video", ids.video), ("audio", ids.audio)):
            e = _first_index(tokens, token, st) if remain[kind] > 0 else None
            found[kind] = n + 1 if e is None else e
        kind = min(("audio", "image", "video"), key=lambda k: found[k])   # audio first on (impossible) ties
        e = found[kind]
        if e > n:
            raise ValueError("input_ids: fewer placeholders than <|vision_bos|>/<|audio_bos|> markers announce")

        if kind == "audio":
            _expect(tokens, e - 1, ids.audio_start, "<|audio_bos|>")
            blocks.text(e - st - 1)
            blocks.single()
            a_len = _audio_tokens(audios[i_aud])
            _expect_run(tokens, e, a_len, ids.audio, "<|AUDIO|>")
            blocks.append(text_block(blocks.next(), a_len))
            blocks.single()
            st = e + a_len + 1
            i_aud += 1
            remain["audio"] -= 1

        elif kind == "image" or not use_audio_in_video:
            is_image = kind == "image"
            grid = images[i_img] if is_image else videos[i_vid]
            _expect(tokens, e - 1, ids.vision_start, "<|vision_bos|>")
            blocks.text(e - st - 1)
            blocks.single()
            base = blocks.next()
            t, h, w = (int(v) for v in grid)
            if is_image:
                t_off = [ti * 1 * pps for ti in range(t)]
            else:
                t_off = video_time_offsets(t, spgs[i_vid], pps)
            block = vision_block(base, t_off, h, w, merge)
            _expect_run(tokens, e, block.shape[1], ids.image if is_image else ids.video,
                        "<|IMAGE|>" if is_image else "<|VIDEO|>")
            blocks.append(block)
            blocks.single()
            st = e + block.shape[1] + 1
            if is_image:
                i_img += 1
                remain["image"] -= 1
            else:
                i_vid += 1
                remain["video"] -= 1

        else:   # video with its audio interleaved (use_audio_in_video = true)
            _expect(tokens, e - 2, ids.vision_start, "<|vision_bos|>")
            _expect(tokens, e - 1, ids.audio_start, "<|audio_bos|>")
            blocks.text(e - st - 2)
            b = blocks.next()
            blocks.single(2, b)                       # both bos tokens share one position
            base = blocks.next()
            a_len = _audio_tokens(audios[i_aud])
            audio_pos = text_block(base, a_len)
            t, h, w = (int(v) for v in videos[i_vid])
            video_pos = vision_block(base, video_time_offsets(t, spgs[i_vid], pps), h, w, merge)
            v_chunks = get_chunked_index(video_pos[0].tolist(), tpc, base)
            a_chunks = get_chunked_index(audio_pos[0].tolist(), tpc, base)
            cursor = e
            for j in range(max(len(v_chunks), len(a_chunks))):
                if j < len(v_chunks):
                    s0, s1 = v_chunks[j]
                    _expect_run(tokens, cursor, s1 - s0, ids.video, "<|VIDEO|>")
                    cursor += s1 - s0
                    blocks.append(video_pos[:, s0:s1])
                if j < len(a_chunks):
                    s0, s1 = a_chunks[j]
                    _expect_run(tokens, cursor, s1 - s0, ids.audio, "<|AUDIO|>")
                    cursor += s1 - s0
                    blocks.append(audio_pos[:, s0:s1])
            blocks.single(2, blocks.next())            # both eos tokens share one position
            st = e + video_pos.shape[1] + a_len + 2
            i_vid += 1
            i_aud += 1
            remain["video"] -= 1
            remain["audio"] -= 1

    if st < n:
        blocks.text(n - st)
    if st > n:
        raise ValueError("input_ids: the placeholders described by the grids run past the end of the sequence")
    pos = np.concatenate(blocks.blocks, axis=1) if blocks.blocks else np.zeros((3, 0), np.int64)
    if pos.shape[1] != n:
        raise ValueError("internal: %d positions for %d tokens" % (pos.shape[1], n))
    delta = int(pos.max()) + 1 - n if n else 0
    return pos, delta
