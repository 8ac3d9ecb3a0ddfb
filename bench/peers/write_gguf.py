#!/usr/bin/env python3
"""Write a random-weight BF16 GGUF of architecture `qwen2` with the Qwen2.5-Omni-3B text decoder's shapes.

Used by llama_cpp.sh. It imports the `gguf` package from the llama.cpp source tree being benchmarked
(--gguf-py DIR), so the file matches that llama.cpp's reader. Needs numpy only.

Tensors: token embedding, 36 layers (RMSNorm weights, q/k/v with biases, o, SwiGLU gate/up/down), final norm and an
untied `output.weight` (as the 3B checkpoint has one). 2-D weights are BF16, 1-D tensors F32 (what the llama.cpp
converter writes for `--outtype bf16`). Values are random: speed does not depend on them.

Tokenizer: a minimal `gpt2` vocabulary with the `qwen2` pre-tokenizer: the 256 byte tokens, one merge (two spaces),
unused padding entries up to the vocabulary size, and Qwen's three chat specials at their real ids. A run of N ASCII
letters then tokenizes to exactly N tokens.

Writes OUT.part and renames it to OUT when complete, so an interrupted run never leaves a file that looks finished.
"""

import argparse
import os
import sys
import time


def log(msg):
    sys.stderr.write(f"[write_gguf] {msg}\n")
    sys.stderr.flush()


def byte_to_unicode_table():
    """GPT-2 byte-level mapping: printable Latin-1 bytes stand for themselves, the rest move to U+0100 onwards."""
    printable = set(range(ord("!"), ord("~") + 1))
    printable |= set(range(0xA1, 0xAC + 1))
    printable |= set(range(0xAE, 0xFF + 1))
    table = {}
    shifted = 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


SPECIALS = {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>"}


def build_vocab(vocab_size, gguf):
    if vocab_size <= max(SPECIALS):
        raise ValueError(f"vocabulary size {vocab_size} must exceed the special token id {max(SPECIALS)}")
    table = byte_to_unicode_table()
    tokens = [table[b] for b in range(256)]
    types = [gguf.TokenType.NORMAL] * 256
    space = table[ord(" ")]
    merges = [f"{space} {space}"]
    tokens.append(space + space)
    types.append(gguf.TokenType.NORMAL)
    while len(tokens) < vocab_size:
        i = len(tokens)
        if i in SPECIALS:
            tokens.append(SPECIALS[i])
            types.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    return tokens, types, merges


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="the .gguf file to write")
    p.add_argument("--gguf-py", required=True, help="the gguf-py folder of the llama.cpp source tree")
    p.add_argument("--layers", type=int, default=36)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--ffn", type=int, default=11008)
    p.add_argument("--vocab", type=int, default=151936)
    p.add_argument("--context", type=int, default=32768)
    p.add_argument("--rope-theta", type=float, default=1000000.0)
    p.add_argument("--rms-eps", type=float, default=1e-6)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for name in ("layers", "hidden", "heads", "kv_heads", "ffn", "vocab", "context"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.hidden % args.heads or args.heads % args.kv_heads:
        p.error(f"--hidden {args.hidden}, --heads {args.heads}, --kv-heads {args.kv_heads} do not divide evenly")

    sys.path.insert(0, args.gguf_py)
    import numpy as np
    import gguf

    H, F, V = args.hidden, args.ffn, args.vocab
    kv = (args.hidden // args.heads) * args.kv_heads
    bf16, f32 = gguf.GGMLQuantizationType.BF16, gguf.GGMLQuantizationType.F32

    # (name, numpy shape [rows, cols] as nn.Linear stores it, dtype); GGUF stores the reversed order
    plan = [("token_embd.weight", (V, H), bf16)]
    for i in range(args.layers):
        b = f"blk.{i}."
        plan += [
            (b + "attn_norm.weight", (H,), f32),
            (b + "attn_q.weight", (H, H), bf16), (b + "attn_q.bias", (H,), f32),
            (b + "attn_k.weight", (kv, H), bf16), (b + "attn_k.bias", (kv,), f32),
            (b + "attn_v.weight", (kv, H), bf16), (b + "attn_v.bias", (kv,), f32),
            (b + "attn_output.weight", (H, H), bf16),
            (b + "ffn_norm.weight", (H,), f32),
            (b + "ffn_gate.weight", (F, H), bf16),
            (b + "ffn_up.weight", (F, H), bf16),
            (b + "ffn_down.weight", (H, F), bf16),
        ]
    plan += [("output_norm.weight", (H,), f32), ("output.weight", (V, H), bf16)]

    tokens, types, merges = build_vocab(V, gguf)

    out = os.path.abspath(args.out)
    part = out + ".part"
    t0 = time.time()
    w = gguf.GGUFWriter(part, "qwen2")
    w.add_name("omni-embed random qwen2 (Qwen2.5-Omni-3B text decoder shapes)")
    w.add_context_length(args.context)
    w.add_embedding_length(H)
    w.add_block_count(args.layers)
    w.add_feed_forward_length(F)
    w.add_head_count(args.heads)
    w.add_head_count_kv(args.kv_heads)
    w.add_rope_freq_base(args.rope_theta)
    w.add_layer_norm_rms_eps(args.rms_eps)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(151643)
    w.add_eos_token_id(151645)
    w.add_pad_token_id(151643)
    w.add_add_bos_token(False)

    def nbytes(shape, dtype):
        n = 1
        for d in shape:
            n *= d
        return n * (2 if dtype == bf16 else 4)

    for name, shape, dtype in plan:
        np_dtype = np.uint16 if dtype == bf16 else np.float32
        w.add_tensor_info(name, shape, np.dtype(np_dtype), nbytes(shape, dtype), raw_dtype=dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()

    # A pool of random bf16 bit patterns (normal * 0.02, truncated from f32), windows of it copied per tensor.
    rng = np.random.default_rng(args.seed)
    pool_n = 1 << 26
    pool = ((rng.standard_normal(pool_n, dtype=np.float32) * 0.02).view(np.uint32) >> 16).astype(np.uint16)
    total = sum(nbytes(s, d) for _, s, d in plan)
    written = 0
    last = time.time()
    for k, (name, shape, dtype) in enumerate(plan):
        n = 1
        for d in shape:
            n *= d
        if dtype == f32:
            # norms are 1 (as initialised), biases small
            data = np.ones(shape, np.float32) if name.endswith("norm.weight") else \
                rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
        else:
            start = (k * 104729) % pool_n
            if n <= pool_n - start:
                data = pool[start:start + n].reshape(shape)
            else:
                data = np.resize(np.roll(pool, -start), n).reshape(shape)
        w.write_tensor_data(data)
        written += data.nbytes
        if time.time() - last > 5:
            log(f"{written / total * 100:.0f}% of {total / 1e9:.1f} GB")
            last = time.time()
    w.close()
    os.replace(part, out)
    log(f"wrote {out} ({total / 1e9:.2f} GB of tensors) in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
