#!/usr/bin/env python3
"""Writes tiny synthetic GGUF models for gguf-loader's fast tests.

tiny-llama.gguf: a 2-layer llama-architecture model (n_embd 64, 4 heads, vocabulary of 300 SPM
tokens: <unk>, <s>, </s>, the 256 byte tokens and a few words) with seeded random F32 weights.
Real llama.cpp loads it, tokenizes with it and generates from it; its output is noise, but it is
deterministic for a given seed, which is what token-exactness tests need.
"""
import os
import sys

import gguf
import numpy as np

N_EMBD = 64
N_HEAD = 4
N_LAYER = 2
N_FF = 128
N_CTX_TRAIN = 256
WORDS = ["▁the", "▁a", "▁hello", "▁world", "▁cat", "▁dog", "▁is", "▁on", "▁mat", "▁and",
         "▁of", "▁to", "ing", "ed", "s", "▁", ".", ",", "!", "?", "▁Once", "▁upon", "▁time",
         "▁there", "▁was", "▁little", "▁girl", "▁boy", "▁who", "▁liked", "▁to", "▁play",
         "▁in", "▁park", "▁sun", "▁day", "▁happy", "▁big", "▁red", "▁ball", "▁tree"]


def vocabulary():
    tokens, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(6)  # BYTE
    seen = set(tokens)
    for i, word in enumerate(WORDS):
        if word in seen:
            continue
        seen.add(word)
        tokens.append(word)
        scores.append(-float(i + 1))
        types.append(1)  # NORMAL
    return tokens, scores, types


def write_tiny_llama(path, seed=1234):
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("gguf-loader tiny llama")
    writer.add_context_length(N_CTX_TRAIN)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(
        "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<s>assistant: {% endif %}")

    def weight(*shape, scale=0.08):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    # numpy shapes are the reverse of ggml's ne[]: (rows, columns) = (ne[1], ne[0]).
    writer.add_tensor("token_embd.weight", weight(n_vocab, N_EMBD, scale=0.5))
    for i in range(N_LAYER):
        p = f"blk.{i}."
        writer.add_tensor(p + "attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(p + name + ".weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(p + "ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(p + "ffn_gate.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(p + "ffn_up.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(p + "ffn_down.weight", weight(N_EMBD, N_FF))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", weight(n_vocab, N_EMBD, scale=0.5))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {n_vocab} tokens)")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write_tiny_llama(os.path.join(out, "tiny-llama.gguf"))


if __name__ == "__main__":
    main()
