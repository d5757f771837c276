#!/usr/bin/env python3
"""Writes tiny synthetic GGUF models for gguf-loader's fast tests.

tiny-llama.gguf: a 2-layer llama-architecture model (n_embd 64, 4 heads, vocabulary of 300 SPM
tokens: <unk>, <s>, </s>, the 256 byte tokens and a few words) with seeded random F32 weights.
Real llama.cpp loads it, tokenizes with it and generates from it; its output is noise, but it is
deterministic for a given seed, which is what token-exactness tests need.

tiny-bert.gguf: a 2-layer BERT embedding model (architecture "bert", n_embd 32, 4 heads):
non-causal, mean pooling in its metadata, a WordPiece ("bert") vocabulary with [PAD] [UNK] [CLS]
[SEP] [MASK], whole words and ## continuation pieces, two token types, and no output head: with
embeddings enabled llama.cpp gives one pooled vector of n_embd floats per sequence.

tiny-reranker.gguf: a 2-layer BERT reranker (n_embd 48, 3 heads) with the same vocabulary: rank
pooling and a classification head (cls, cls.output) with two output labels, so llama.cpp gives
n_cls_out = 2 scores per sequence (taken at the [CLS] token).

tiny-t5.gguf: a T5 encoder-decoder model (architecture "t5", n_embd 32, 4 heads, 2 encoder and 2
decoder layers, relative position buckets) with a unigram ("t5") vocabulary of <pad> </s> <unk>,
pieces and sentinel tokens; the decoder starts from <pad>. llama_model_has_encoder is true for it:
llama_encode runs the encoder, then llama_decode the decoder.

tiny-bitnet-f32.gguf: a 2-layer BitNet b1.58 model (architecture "bitnet", the 1bitLLM layout
that both upstream llama.cpp and Microsoft's BitNet fork load: sub-norms after attention and after
the gated FFN, no output head, the token embeddings doubling as one; n_embd 256, 4 heads, n_ff 512,
the tiny-llama vocabulary). Its seven linear matrices per layer are ternary (-1/0/+1) times one
scale per tensor, stored as F32; the embeddings are F32 values that F16 holds exactly, the norms
ordinary F32. Every row length is a multiple of 256, so upstream can quantize it to TQ2_0.

tiny-bitnet.gguf: the same model as the fork's I2_S files are (what its llama-quantize writes for
LLAMA_FTYPE_MOSTLY_I2_S): the linear matrices in I2_S (ggml type 36, which only the fork knows),
the token embeddings in F16, the norms in F32. Upstream llama.cpp refuses it (unknown type).

Every model has seeded random weights and is written the same, byte for byte, on each run.
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

# The file names main() writes, in order (variants/provision checks for each).
MODEL_FILES = ["tiny-llama.gguf", "tiny-bert.gguf", "tiny-reranker.gguf", "tiny-t5.gguf",
               "tiny-bitnet-f32.gguf", "tiny-bitnet.gguf"]
# LoRA adapters, written when the SmolLM2 path is given (second argument).
LORA_FILES = ["smollm2-lora.gguf", "tiny-llama-lora.gguf"]


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


# --- shared by the models below ------------------------------------------------------------------

# Lower-case English words for the BERT and T5 vocabularies.
COMMON_WORDS = (
    "the a an and or but of to in on at by for with from as is are was were be been has have had "
    "do does did not no yes it its this that these those he she they we you i me my your his her "
    "their our who what which where when why how all any some one two three four five many more "
    "most other such only own same so than too very can will just should now hello world cat dog "
    "mat sun day time tree ball red big little happy girl boy park play liked once upon there "
    "house water food book city music paris france capital river blue green fast slow good bad "
    "new old first last long great small right left high low man woman child people year way "
    "thing name word question answer search query document text model test").split()


def _weights(rng):
    def weight(*shape, scale=0.08):
        return (rng.standard_normal(shape) * scale).astype(np.float32)
    return weight


def _finish(writer, path, n_vocab):
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {n_vocab} tokens)")


# --- BERT: embedding model and reranker ----------------------------------------------------------

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4
BERT_PAD, BERT_UNK, BERT_CLS, BERT_SEP, BERT_MASK = range(5)
BERT_CTX_TRAIN = 512
BERT_TOKEN_TYPES = 2


def bert_vocabulary():
    """A WordPiece vocabulary, written as convert_hf_to_gguf.py writes BERT's: special tokens as
    they are, '##' continuation pieces without the '##', every other piece with the phantom space
    '▁' in front (llama.cpp's WPM tokenizer puts '▁' before each word it looks up)."""
    pieces = list(COMMON_WORDS)
    pieces += ["##s", "##es", "##ed", "##ing", "##er", "##ly", "##y", "##est", "##ness", "##ful"]
    pieces += list("abcdefghijklmnopqrstuvwxyz0123456789")
    pieces += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    pieces += list(".,!?;:'\"()-/")
    tokens, types = list(BERT_SPECIALS), [3] * len(BERT_SPECIALS)  # CONTROL
    seen = set(tokens)
    for piece in pieces:
        text = piece[2:] if piece.startswith("##") else "\u2581" + piece
        if text in seen:
            continue
        seen.add(text)
        tokens.append(text)
        types.append(1)  # NORMAL
    return tokens, types


def write_tiny_bert(path, seed, name, n_embd, n_head, n_ff, n_layer, pooling, cls_labels=None):
    rng = np.random.default_rng(seed)
    weight = _weights(rng)
    tokens, types = bert_vocabulary()
    n_vocab = len(tokens)
    writer = gguf.GGUFWriter(path, "bert")
    writer.add_name(name)
    writer.add_context_length(BERT_CTX_TRAIN)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_layer_norm_eps(1e-12)
    writer.add_causal_attention(False)
    writer.add_pooling_type(pooling)
    if cls_labels:
        writer.add_classifier_output_labels(cls_labels)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_token_type_count(BERT_TOKEN_TYPES)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_pad_token_id(BERT_PAD)
    writer.add_unk_token_id(BERT_UNK)
    writer.add_bos_token_id(BERT_CLS)  # [CLS] starts every sequence
    writer.add_sep_token_id(BERT_SEP)
    writer.add_mask_token_id(BERT_MASK)
    writer.add_add_bos_token(True)
    writer.add_add_sep_token(True)

    ones = np.ones(n_embd, dtype=np.float32)
    zeros = np.zeros(n_embd, dtype=np.float32)
    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd, scale=0.5))
    writer.add_tensor("token_types.weight", weight(BERT_TOKEN_TYPES, n_embd, scale=0.1))
    writer.add_tensor("position_embd.weight", weight(BERT_CTX_TRAIN, n_embd, scale=0.1))
    writer.add_tensor("token_embd_norm.weight", ones)
    writer.add_tensor("token_embd_norm.bias", zeros)
    for i in range(n_layer):
        p = f"blk.{i}."
        for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(p + t + ".weight", weight(n_embd, n_embd))
            writer.add_tensor(p + t + ".bias", weight(n_embd, scale=0.02))
        writer.add_tensor(p + "attn_output_norm.weight", ones)
        writer.add_tensor(p + "attn_output_norm.bias", zeros)
        writer.add_tensor(p + "ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(p + "ffn_up.bias", weight(n_ff, scale=0.02))
        writer.add_tensor(p + "ffn_down.weight", weight(n_embd, n_ff))
        writer.add_tensor(p + "ffn_down.bias", weight(n_embd, scale=0.02))
        writer.add_tensor(p + "layer_output_norm.weight", ones)
        writer.add_tensor(p + "layer_output_norm.bias", zeros)
    if cls_labels:
        # The classification head: dense + tanh (cls), then one row per label (cls.output).
        writer.add_tensor("cls.weight", weight(n_embd, n_embd, scale=0.3))
        writer.add_tensor("cls.bias", weight(n_embd, scale=0.02))
        writer.add_tensor("cls.output.weight", weight(len(cls_labels), n_embd, scale=0.5))
        writer.add_tensor("cls.output.bias", weight(len(cls_labels), scale=0.1))
    _finish(writer, path, n_vocab)


# --- T5: encoder-decoder -------------------------------------------------------------------------

T5_EMBD = 32
T5_HEAD = 4
T5_FF = 64
T5_LAYER = 2
T5_DEC_LAYER = 2
T5_BUCKETS = 32
T5_CTX_TRAIN = 512
T5_PAD, T5_EOS, T5_UNK = 0, 1, 2


def t5_vocabulary():
    """A unigram vocabulary in T5's layout: <pad> </s> <unk>, scored pieces ('▁' marks a word
    start), then sentinel tokens."""
    tokens, scores, types = ["<pad>", "</s>", "<unk>"], [0.0, 0.0, 0.0], [3, 3, 2]
    pieces = ["\u2581"] + ["\u2581" + w for w in COMMON_WORDS]
    pieces += ["s", "es", "ed", "ing", "er", "ly", "y"]
    pieces += list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    pieces += list(".,!?;:'\"()-/")
    seen = set(tokens)
    for i, piece in enumerate(pieces):
        if piece in seen:
            continue
        seen.add(piece)
        tokens.append(piece)
        # Whole words score higher than pieces, so the Viterbi search prefers them.
        scores.append(-2.0 - 0.01 * i if piece.startswith("\u2581") else -6.0 - 0.01 * i)
        types.append(1)  # NORMAL
    for i in range(3):
        tokens.append(f"<extra_id_{i}>")
        scores.append(0.0)
        types.append(3)  # CONTROL
    return tokens, scores, types


def write_tiny_t5(path, seed=4321):
    rng = np.random.default_rng(seed)
    weight = _weights(rng)
    tokens, scores, types = t5_vocabulary()
    n_vocab = len(tokens)
    head_dim = T5_EMBD // T5_HEAD
    writer = gguf.GGUFWriter(path, "t5")
    writer.add_name("gguf-loader tiny t5")
    writer.add_context_length(T5_CTX_TRAIN)
    writer.add_embedding_length(T5_EMBD)
    writer.add_feed_forward_length(T5_FF)
    writer.add_block_count(T5_LAYER)
    writer.add_decoder_block_count(T5_DEC_LAYER)
    writer.add_head_count(T5_HEAD)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_relative_attn_buckets_count(T5_BUCKETS)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_decoder_start_token_id(T5_PAD)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("t5")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_pad_token_id(T5_PAD)
    writer.add_eos_token_id(T5_EOS)
    writer.add_unk_token_id(T5_UNK)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(True)
    writer.add_add_space_prefix(True)
    writer.add_remove_extra_whitespaces(True)

    ones = np.ones(T5_EMBD, dtype=np.float32)
    writer.add_tensor("token_embd.weight", weight(n_vocab, T5_EMBD, scale=0.5))
    for i in range(T5_LAYER):
        p = f"enc.blk.{i}."
        writer.add_tensor(p + "attn_norm.weight", ones)
        if i == 0:  # T5 keeps the relative position bias in the first layer only
            writer.add_tensor(p + "attn_rel_b.weight", weight(T5_BUCKETS, T5_HEAD, scale=0.1))
        for t in ("attn_q", "attn_k", "attn_v", "attn_o"):
            writer.add_tensor(p + t + ".weight", weight(T5_EMBD, T5_EMBD))
        writer.add_tensor(p + "ffn_norm.weight", ones)
        writer.add_tensor(p + "ffn_up.weight", weight(T5_FF, T5_EMBD))
        writer.add_tensor(p + "ffn_down.weight", weight(T5_EMBD, T5_FF))
    writer.add_tensor("enc.output_norm.weight", ones)
    for i in range(T5_DEC_LAYER):
        p = f"dec.blk.{i}."
        writer.add_tensor(p + "attn_norm.weight", ones)
        if i == 0:
            writer.add_tensor(p + "attn_rel_b.weight", weight(T5_BUCKETS, T5_HEAD, scale=0.1))
        for t in ("attn_q", "attn_k", "attn_v", "attn_o"):
            writer.add_tensor(p + t + ".weight", weight(T5_EMBD, T5_EMBD))
        writer.add_tensor(p + "cross_attn_norm.weight", ones)
        for t in ("cross_attn_q", "cross_attn_k", "cross_attn_v", "cross_attn_o"):
            writer.add_tensor(p + t + ".weight", weight(T5_EMBD, T5_EMBD))
        writer.add_tensor(p + "ffn_norm.weight", ones)
        writer.add_tensor(p + "ffn_up.weight", weight(T5_FF, T5_EMBD))
        writer.add_tensor(p + "ffn_down.weight", weight(T5_EMBD, T5_FF))
    writer.add_tensor("dec.output_norm.weight", ones)
    writer.add_tensor("output.weight", weight(n_vocab, T5_EMBD, scale=0.5))
    _finish(writer, path, n_vocab)


# --- BitNet b1.58: ternary weights, F32 and the fork's I2_S ---------------------------------------

# The BitNet fork's ternary type (not in gguf-py, nor in upstream ggml) and file type.
GGML_TYPE_I2_S = 36
LLAMA_FTYPE_MOSTLY_I2_S = 40  # the fork's llama.h
QK_I2_S = 128  # values per I2_S block (32 bytes)
QK_TQ2_0 = 256  # upstream's TQ2_0 block, which the F32 model's rows must fill


def pack_i2_s(ternary, scale):
    """The fork's I2_S bytes of a ternary matrix (numpy shape (ne1, ne0), values -1/0/+1) with
    per-tensor `scale`, as its quantize_i2_s writes them (bitnet/src/ggml-bitnet-mad.cpp): codes
    0/1/2 for -1/0/+1, blocks of 128 consecutive values in 32 bytes, value j of a block in byte
    j % 32 at bit shift 6 - 2 * (j // 32); after all blocks the f32 scale, padded to 32 bytes.
    That is ne/4 + 32 bytes: what the fork's ggml_nbytes gives an I2_S tensor (its type traits
    say 1 byte per value; ggml_nbytes divides by 4 and adds 32), so the loader reads exactly
    this; ggml_vec_dot_i2_i8_s reads a row at ne0/4 bytes per row, the scale after the last."""
    assert ternary.size % QK_I2_S == 0 and ternary.shape[-1] % QK_I2_S == 0
    codes = (ternary.astype(np.int8) + 1).astype(np.uint8).reshape(-1, 4, 32)
    packed = (codes[:, 0] << 6) | (codes[:, 1] << 4) | (codes[:, 2] << 2) | codes[:, 3]
    out = packed.astype(np.uint8).tobytes() + np.float32(scale).tobytes()
    return out + bytes(32 - 4)


def unpack_i2_s(data, shape):
    """The inverse of pack_i2_s: (ternary values, scale)."""
    n = int(np.prod(shape))
    packed = np.frombuffer(data[:n // 4], dtype=np.uint8).reshape(-1, 1, 32)
    shifts = np.array([6, 4, 2, 0], dtype=np.uint8).reshape(1, 4, 1)
    codes = (packed >> shifts) & 3
    scale = float(np.frombuffer(data[n // 4:n // 4 + 4], dtype=np.float32)[0])
    return (codes.astype(np.int8) - 1).reshape(shape), scale


def bitnet_weights(seed, n_vocab, n_embd, n_ff, n_layer):
    """{name: (kind, array[, scale])} in file order. kind "ternary": int8 values -1/0/+1 of numpy
    shape (ne1, ne0) and a float32 scale; "embd": float32 values exact in F16; "norm": float32.

    Random weights give near-ties among the logits, where another build (F32 against I2_S or
    TQ2_0, with their 8-bit activations) picks the runner-up. So the last layer's FFN is a
    lookup instead: FFN unit j has gate and up rows sign(E[j % n_vocab]) (E the embeddings,
    entries under 0.4 in size made 0), so it fires for that token, and down column
    sign(E[next(j % n_vocab)]), so the output points at the embedding of the next token: `next` is
    one cycle through the vocabulary's normal tokens (words and pieces, no byte or special
    tokens) in seeded order; the other tokens lead to a random one of them.
    The attention (random) is weak enough to keep clear logit leads (with seed 15 over 64 tokens
    of a few prompts: at least about 1, mostly tens, and the same ids from the fork's F32 and
    I2_S and upstream's F32 and TQ2_0), and strong enough that the context changes the
    continuation."""
    rng = np.random.default_rng(seed)

    def ternary(n_out, n_in, scale):
        values = rng.integers(-1, 2, size=(n_out, n_in), dtype=np.int8)
        return ("ternary", values, np.float32(scale))

    def norm(n, spread=0.2):
        return ("norm", (1.0 + spread * rng.standard_normal(n)).astype(np.float32))

    weights = {}
    embd = rng.standard_normal((n_vocab, n_embd)).astype(np.float16).astype(np.float32)
    weights["token_embd.weight"] = ("embd", embd)
    sign = np.where(np.abs(embd) > 0.4, np.sign(embd), 0).astype(np.int8)
    words = [i for i, kind in enumerate(vocabulary()[2]) if kind == 1]  # NORMAL: no bytes, no specials
    assert words and all(i < n_vocab for i in words)
    order = rng.permutation(words)
    successor = {int(a): int(b) for a, b in zip(order, np.roll(order, -1))}
    following = np.array([successor.get(v, int(order[rng.integers(len(order))])) for v in range(n_vocab)])
    detects = np.arange(n_ff) % n_vocab
    for i in range(n_layer):
        p = f"blk.{i}."
        weights[p + "attn_norm.weight"] = norm(n_embd)
        weights[p + "attn_q.weight"] = ternary(n_embd, n_embd, 0.25)
        weights[p + "attn_k.weight"] = ternary(n_embd, n_embd, 0.25)
        weights[p + "attn_v.weight"] = ternary(n_embd, n_embd, 0.5)
        weights[p + "attn_sub_norm.weight"] = norm(n_embd)
        weights[p + "attn_output.weight"] = ternary(n_embd, n_embd, 0.09375)
        weights[p + "ffn_norm.weight"] = norm(n_embd)
        if i == n_layer - 1:
            weights[p + "ffn_gate.weight"] = ("ternary", sign[detects], np.float32(0.0625))
            weights[p + "ffn_up.weight"] = ("ternary", sign[detects], np.float32(0.0625))
            weights[p + "ffn_sub_norm.weight"] = norm(n_ff)
            down = np.ascontiguousarray(sign[following[detects]].T)
            weights[p + "ffn_down.weight"] = ("ternary", down, np.float32(0.5))
        else:
            weights[p + "ffn_gate.weight"] = ternary(n_ff, n_embd, 0.125)
            weights[p + "ffn_up.weight"] = ternary(n_ff, n_embd, 0.125)
            weights[p + "ffn_sub_norm.weight"] = norm(n_ff)
            weights[p + "ffn_down.weight"] = ternary(n_embd, n_ff, 0.03125)
    weights["output_norm.weight"] = norm(n_embd, spread=0.0)
    # The scales are exact in F16, as TQ2_0 keeps its block scales, so quantizing the F32 model
    # to TQ2_0 (or to I2_S, whose scale is F32) gives back the same weights.
    for _, _, *scale in weights.values():
        assert not scale or float(np.float16(scale[0])) == float(scale[0]), "scales must be exact in F16"
    return weights


def write_bitnet(path, i2_s, seed=15, n_embd=256, n_head=4, n_ff=512, n_layer=2,
                 n_ctx_train=N_CTX_TRAIN, name="gguf-loader tiny bitnet"):
    """A BitNet b1.58 model (architecture "bitnet"): F32 linear weights, or with `i2_s` the
    fork's I2_S for them and F16 token embeddings (as the fork's llama-quantize does)."""
    for n in (n_embd, n_ff):
        assert n % QK_TQ2_0 == 0 and n % QK_I2_S == 0, "row lengths must fill TQ2_0 and I2_S blocks"
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)
    weights = bitnet_weights(seed, n_vocab, n_embd, n_ff, n_layer)
    writer = gguf.GGUFWriter(path, "bitnet")
    writer.add_name(name)
    writer.add_context_length(n_ctx_train)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(LLAMA_FTYPE_MOSTLY_I2_S if i2_s else gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    for tensor, (kind, values, *scale) in weights.items():
        if kind == "ternary" and i2_s:
            packed = pack_i2_s(values, scale[0])
            back, back_scale = unpack_i2_s(packed, values.shape)
            assert np.array_equal(back, values) and back_scale == scale[0], tensor
            data = np.frombuffer(packed, dtype=np.int8)
            # gguf-py has no I2_S: an int8 byte array with the raw type id and the logical
            # shape (int8 data keeps raw_shape as it is) gives the fork's tensor info.
            writer.add_tensor(tensor, data, raw_shape=values.shape, raw_dtype=GGML_TYPE_I2_S)
        elif kind == "ternary":
            writer.add_tensor(tensor, values.astype(np.float32) * scale[0])
        elif kind == "embd" and i2_s:
            writer.add_tensor(tensor, values.astype(np.float16))
        else:
            writer.add_tensor(tensor, values)
    _finish(writer, path, n_vocab)


# --- LoRA adapters -------------------------------------------------------------------------------

# The base tensors each adapter changes (every layer).
LORA_TARGETS = ("attn_q", "attn_v")


def write_lora(path, base_shapes, seed, rank=4, alpha=4.0, scale=0.15, name="lora"):
    """A GGUF LoRA adapter (as convert_lora_to_gguf.py writes them) with seeded random A/B for
    blk.*.{attn_q,attn_v}.weight of the base model whose ggml shapes (ne) are `base_shapes`.
    For a base tensor of ne [n_in, n_out]: lora_a has ne [n_in, rank], lora_b ne [rank, n_out]
    (numpy shapes reversed); llama.cpp adds B(A x) * scale * alpha / rank."""
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_name(name)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    n = 0
    for tensor, ne in sorted(base_shapes.items()):
        if not tensor.startswith("blk.") or tensor.split(".")[2] not in LORA_TARGETS:
            continue
        n_in, n_out = int(ne[0]), int(ne[1])
        a = (rng.standard_normal((rank, n_in)) * scale).astype(np.float32)
        b = (rng.standard_normal((n_out, rank)) * scale).astype(np.float32)
        writer.add_tensor(tensor + ".lora_a", a)
        writer.add_tensor(tensor + ".lora_b", b)
        n += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {n} adapted tensors)")


def gguf_shapes(path):
    reader = gguf.GGUFReader(path)
    return {t.name: [int(d) for d in t.shape] for t in reader.tensors}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write_tiny_llama(os.path.join(out, "tiny-llama.gguf"))
    write_tiny_bert(os.path.join(out, "tiny-bert.gguf"), seed=2345, name="gguf-loader tiny bert",
                    n_embd=32, n_head=4, n_ff=64, n_layer=2, pooling=gguf.PoolingType.MEAN)
    write_tiny_bert(os.path.join(out, "tiny-reranker.gguf"), seed=3456,
                    name="gguf-loader tiny reranker", n_embd=48, n_head=3, n_ff=96, n_layer=2,
                    pooling=gguf.PoolingType.RANK, cls_labels=["irrelevant", "relevant"])
    write_tiny_t5(os.path.join(out, "tiny-t5.gguf"))
    write_bitnet(os.path.join(out, "tiny-bitnet-f32.gguf"), i2_s=False)
    write_bitnet(os.path.join(out, "tiny-bitnet.gguf"), i2_s=True)
    files = list(MODEL_FILES)
    if len(sys.argv) > 2:
        write_lora(os.path.join(out, "smollm2-lora.gguf"), gguf_shapes(sys.argv[2]), seed=5678,
                   name="gguf-loader random SmolLM2 lora")
        write_lora(os.path.join(out, "tiny-llama-lora.gguf"),
                   gguf_shapes(os.path.join(out, "tiny-llama.gguf")), seed=6789,
                   name="gguf-loader random tiny llama lora")
        files += LORA_FILES
    missing = [f for f in files if not os.path.isfile(os.path.join(out, f))]
    if missing:
        sys.exit(f"not written: {missing}")


if __name__ == "__main__":
    main()
