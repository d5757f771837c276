//! The BitNet fork's side of [`super::Api`]: each function maps one upstream-shaped call onto
//! the fork's older llama.h (`sys::bitnet`, llama.cpp build 3947).
//!
//! Handles: the fork has no `llama_vocab` and no `llama_memory`; its vocabulary functions take
//! the model and its KV-cache functions take the context. So a vocabulary handle here IS the
//! model pointer ([`model_get_vocab`] returns it) and a memory handle IS the context pointer
//! ([`get_memory`]); both are only ever passed back to these functions. The opaque model,
//! context, sampler and adapter types are cast between the two generations' declarations.
//!
//! Every function has the contract of the upstream function it stands for (the caller checked
//! the preconditions); where the fork's function asserts more, the extra check is here, and a
//! failed check returns what upstream returns for an error.

use std::ffi::{c_char, CStr};

use super::params::BatchArrays;
use crate::sys::bitnet::{self as fork, LlamaFunctions};
use crate::sys::upstream::{
    self as sys, llama_context, llama_logit_bias, llama_memory_t, llama_model, llama_pos,
    llama_sampler, llama_seq_id, llama_token, llama_token_data_array, llama_vocab,
};

/// Where the fork's functions behave unlike upstream's in ways the safe layer checks (each
/// found in its source, build 3947, and covered by `tests/bitnet_negative.rs`).
pub(super) static QUIRKS: super::Quirks = super::Quirks {
    // `llama_n_seq_max` returns `kv_self.size`.
    n_seq_max_is_cache_size: true,
    // Its decode logs ggml's abort status and returns 0.
    decode_hides_abort: true,
    // `llama_decode_internal` skips the output head when `cparams.embeddings` is set, and
    // outputs only the rows of `batch.logits`.
    embeddings_without_logits: true,
    // `llama_set_inputs`: GGML_ASSERT(seq_id < n_tokens) for mean/CLS/last pooling.
    pooling_needs_sequence_below_token_count: true,
    // The sequence-state reader indexes cell `head - 1` and position -1 for zero cells.
    empty_sequence_state_asserts: true,
    // Its WordPiece tokenizer adds CLS/SEP ids that default to 101/102, unchecked.
    tokenizer_ids_unchecked: true,
    // No `cvec.apply_to` in these graph builders (`build_bert`, `build_bitnet`,
    // `build_chatglm`, `build_jais`, `build_rwkv6`, `build_t5_*`).
    graphs_without_control_vectors: &[
        "bert",
        "bitnet",
        "chatglm",
        "jais",
        "jina-bert-v2",
        "nomic-bert",
        "rwkv6",
        "t5",
        "t5encoder",
    ],
};

/// The model behind a vocabulary handle (see the module docs).
fn model_of(vocab: *const llama_vocab) -> *const fork::llama_model {
    vocab.cast()
}

/// The context behind a memory handle (see the module docs).
fn ctx_of(mem: llama_memory_t) -> *mut fork::llama_context {
    mem.cast()
}

/// The fork's `llama_batch` over the same arrays (every array given: `all_*` are unused).
pub(super) fn batch(arrays: &BatchArrays) -> fork::llama_batch {
    fork::llama_batch {
        n_tokens: arrays.n_tokens,
        token: arrays.token,
        embd: std::ptr::null_mut(),
        pos: arrays.pos,
        n_seq_id: arrays.n_seq_id,
        seq_id: arrays.seq_id,
        logits: arrays.logits,
        all_pos_0: 0,
        all_pos_1: 0,
        all_seq_id: 0,
    }
}

/// Reads a metadata value of `model` as a Rust string.
///
/// # Safety
/// A live model; `key` a C string.
unsafe fn meta_string(t: &LlamaFunctions, model: *const llama_model, key: &CStr) -> Option<String> {
    // SAFETY: a live model, a C string key and no buffer: returns the length or -1.
    let len = unsafe {
        (t.llama_model_meta_val_str)(model.cast(), key.as_ptr(), std::ptr::null_mut(), 0)
    };
    let len = usize::try_from(len).ok()?;
    let mut buf = vec![0u8; len + 1];
    // SAFETY: `buf` has len + 1 bytes (the value and its NUL).
    let written = unsafe {
        (t.llama_model_meta_val_str)(
            model.cast(),
            key.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if written < 0 {
        return None;
    }
    buf.truncate(len);
    String::from_utf8(buf).ok()
}

/// `tokenizer.chat_template[.NAME]` from the metadata (upstream's `llama_model_chat_template`
/// reads the same keys).
///
/// # Safety
/// A live model; `name` NULL or a C string.
pub(super) unsafe fn chat_template(
    t: &LlamaFunctions,
    model: *const llama_model,
    name: *const c_char,
) -> Option<String> {
    let key = if name.is_null() {
        String::from("tokenizer.chat_template")
    } else {
        // SAFETY: a C string (the caller's contract).
        let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
        format!("tokenizer.chat_template.{name}")
    };
    let key = std::ffi::CString::new(key).ok()?;
    // SAFETY: a live model and a C string key.
    unsafe { meta_string(t, model, &key) }
}

// Library-wide.

pub(super) unsafe fn max_devices(t: &LlamaFunctions) -> usize {
    // SAFETY: no arguments.
    unsafe { (t.llama_max_devices)() }
}

// Model.

pub(super) unsafe fn model_free(t: &LlamaFunctions, model: *mut llama_model) {
    // SAFETY: a live model, freed once (the caller's contract).
    unsafe { (t.llama_free_model)(model.cast()) }
}

pub(super) unsafe fn model_get_vocab(
    _t: &LlamaFunctions,
    model: *const llama_model,
) -> *const llama_vocab {
    model.cast()
}

pub(super) unsafe fn model_desc(
    t: &LlamaFunctions,
    model: *const llama_model,
    buf: *mut c_char,
    len: usize,
) -> i32 {
    // SAFETY: a live model; `buf` has `len` bytes.
    unsafe { (t.llama_model_desc)(model.cast(), buf, len) }
}

pub(super) unsafe fn model_size(t: &LlamaFunctions, model: *const llama_model) -> u64 {
    // SAFETY: a live model.
    unsafe { (t.llama_model_size)(model.cast()) }
}

pub(super) unsafe fn model_n_params(t: &LlamaFunctions, model: *const llama_model) -> u64 {
    // SAFETY: a live model.
    unsafe { (t.llama_model_n_params)(model.cast()) }
}

pub(super) unsafe fn model_n_ctx_train(t: &LlamaFunctions, model: *const llama_model) -> i32 {
    // SAFETY: a live model.
    unsafe { (t.llama_n_ctx_train)(model.cast()) }
}

pub(super) unsafe fn model_n_embd(t: &LlamaFunctions, model: *const llama_model) -> i32 {
    // SAFETY: a live model.
    unsafe { (t.llama_n_embd)(model.cast()) }
}

/// The fork has no separate output size: its models output `n_embd`.
pub(super) unsafe fn model_n_embd_out(t: &LlamaFunctions, model: *const llama_model) -> i32 {
    // SAFETY: a live model.
    unsafe { (t.llama_n_embd)(model.cast()) }
}

pub(super) unsafe fn model_n_layer(t: &LlamaFunctions, model: *const llama_model) -> i32 {
    // SAFETY: a live model.
    unsafe { (t.llama_n_layer)(model.cast()) }
}

pub(super) unsafe fn model_n_head(t: &LlamaFunctions, model: *const llama_model) -> i32 {
    // SAFETY: a live model.
    unsafe { (t.llama_n_head)(model.cast()) }
}

/// `<arch>.attention.head_count_kv` from the metadata (the fork has no function for it), else
/// `n_head` (llama.cpp's default when the key is absent).
pub(super) unsafe fn model_n_head_kv(t: &LlamaFunctions, model: *const llama_model) -> i32 {
    // SAFETY: a live model and C string keys.
    let value = unsafe { meta_string(t, model, c"general.architecture") }.and_then(|arch| {
        let key = std::ffi::CString::new(format!("{arch}.attention.head_count_kv")).ok()?;
        // SAFETY: as above.
        unsafe { meta_string(t, model, &key) }
    });
    match value.and_then(|v| v.trim().parse::<i32>().ok()) {
        Some(n) => n,
        // SAFETY: a live model.
        None => unsafe { (t.llama_n_head)(model.cast()) },
    }
}

/// The fork has no classifier-output API: no classifier outputs.
pub(super) unsafe fn model_n_cls_out(_t: &LlamaFunctions, _model: *const llama_model) -> u32 {
    0
}

pub(super) unsafe fn model_has_encoder(t: &LlamaFunctions, model: *const llama_model) -> bool {
    // SAFETY: a live model.
    unsafe { (t.llama_model_has_encoder)(model.cast()) }
}

pub(super) unsafe fn model_has_decoder(t: &LlamaFunctions, model: *const llama_model) -> bool {
    // SAFETY: a live model.
    unsafe { (t.llama_model_has_decoder)(model.cast()) }
}

pub(super) unsafe fn model_decoder_start_token(
    t: &LlamaFunctions,
    model: *const llama_model,
) -> llama_token {
    // SAFETY: a live model.
    unsafe { (t.llama_model_decoder_start_token)(model.cast()) }
}

pub(super) unsafe fn model_is_recurrent(t: &LlamaFunctions, model: *const llama_model) -> bool {
    // SAFETY: a live model.
    unsafe { (t.llama_model_is_recurrent)(model.cast()) }
}

/// Hybrid (attention + recurrent) architectures came after the fork: none is.
pub(super) unsafe fn model_is_hybrid(_t: &LlamaFunctions, _model: *const llama_model) -> bool {
    false
}

pub(super) unsafe fn model_rope_freq_scale_train(
    t: &LlamaFunctions,
    model: *const llama_model,
) -> f32 {
    // SAFETY: a live model.
    unsafe { (t.llama_rope_freq_scale_train)(model.cast()) }
}

pub(super) unsafe fn model_rope_type(t: &LlamaFunctions, model: *const llama_model) -> i32 {
    // SAFETY: a live model.
    unsafe { (t.llama_rope_type)(model.cast()) }
}

pub(super) unsafe fn model_meta_val_str(
    t: &LlamaFunctions,
    model: *const llama_model,
    key: *const c_char,
    buf: *mut c_char,
    len: usize,
) -> i32 {
    // SAFETY: a live model, a C string key, `buf` has `len` bytes.
    unsafe { (t.llama_model_meta_val_str)(model.cast(), key, buf, len) }
}

pub(super) unsafe fn model_meta_count(t: &LlamaFunctions, model: *const llama_model) -> i32 {
    // SAFETY: a live model.
    unsafe { (t.llama_model_meta_count)(model.cast()) }
}

pub(super) unsafe fn model_meta_key_by_index(
    t: &LlamaFunctions,
    model: *const llama_model,
    i: i32,
    buf: *mut c_char,
    len: usize,
) -> i32 {
    // SAFETY: a live model; `buf` has `len` bytes (an index out of range returns -1).
    unsafe { (t.llama_model_meta_key_by_index)(model.cast(), i, buf, len) }
}

pub(super) unsafe fn model_meta_val_str_by_index(
    t: &LlamaFunctions,
    model: *const llama_model,
    i: i32,
    buf: *mut c_char,
    len: usize,
) -> i32 {
    // SAFETY: as above.
    unsafe { (t.llama_model_meta_val_str_by_index)(model.cast(), i, buf, len) }
}

/// The fork's function also takes a model, used only when `tmpl` is NULL, where it asserts one
/// is given: without a model, a NULL template is an error (-1) here.
pub(super) unsafe fn chat_apply_template(
    t: &LlamaFunctions,
    tmpl: *const c_char,
    chat: *const sys::llama_chat_message,
    n_msg: usize,
    add_ass: bool,
    buf: *mut c_char,
    length: i32,
) -> i32 {
    if tmpl.is_null() {
        return -1;
    }
    // SAFETY: `tmpl` is a C string, `chat` points to `n_msg` messages of C strings (the two
    // generations declare `llama_chat_message` alike), `buf` has `length` bytes.
    unsafe {
        (t.llama_chat_apply_template)(
            std::ptr::null(),
            tmpl,
            chat.cast(),
            n_msg,
            add_ass,
            buf,
            length,
        )
    }
}

// Vocabulary (the handle is the model).

pub(super) unsafe fn vocab_n_tokens(t: &LlamaFunctions, vocab: *const llama_vocab) -> i32 {
    // SAFETY: a live model.
    unsafe { (t.llama_n_vocab)(model_of(vocab)) }
}

pub(super) unsafe fn vocab_type(t: &LlamaFunctions, vocab: *const llama_vocab) -> i32 {
    // SAFETY: a live model.
    unsafe { (t.llama_vocab_type)(model_of(vocab)) }
}

pub(super) unsafe fn vocab_get_add_bos(t: &LlamaFunctions, vocab: *const llama_vocab) -> bool {
    // SAFETY: a live model.
    unsafe { (t.llama_add_bos_token)(model_of(vocab)) }
}

pub(super) unsafe fn vocab_get_add_eos(t: &LlamaFunctions, vocab: *const llama_vocab) -> bool {
    // SAFETY: a live model.
    unsafe { (t.llama_add_eos_token)(model_of(vocab)) }
}

/// The fork's tokenizer adds a separator only for BERT-style (WPM) vocabularies, with no
/// function to ask; upstream's flag is true exactly for those.
pub(super) unsafe fn vocab_get_add_sep(t: &LlamaFunctions, vocab: *const llama_vocab) -> bool {
    // SAFETY: a live model.
    unsafe { (t.llama_vocab_type)(model_of(vocab)) == fork::LLAMA_VOCAB_TYPE_WPM }
}

macro_rules! special_tokens {
    ($($name:ident = $c:ident;)*) => {
        $(
            pub(super) unsafe fn $name(t: &LlamaFunctions, vocab: *const llama_vocab) -> llama_token {
                // SAFETY: a live model.
                unsafe { (t.$c)(model_of(vocab)) }
            }
        )*
    };
}

special_tokens! {
    vocab_bos = llama_token_bos;
    vocab_eos = llama_token_eos;
    vocab_eot = llama_token_eot;
    vocab_sep = llama_token_sep;
    vocab_nl = llama_token_nl;
    vocab_pad = llama_token_pad;
    vocab_fim_pre = llama_token_fim_pre;
    vocab_fim_suf = llama_token_fim_suf;
    vocab_fim_mid = llama_token_fim_mid;
}

pub(super) unsafe fn vocab_is_eog(
    t: &LlamaFunctions,
    vocab: *const llama_vocab,
    token: llama_token,
) -> bool {
    // SAFETY: a live model; `token` in range (checked by the caller).
    unsafe { (t.llama_token_is_eog)(model_of(vocab), token) }
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tokenize(
    t: &LlamaFunctions,
    vocab: *const llama_vocab,
    text: *const c_char,
    len: i32,
    tokens: *mut llama_token,
    capacity: i32,
    add_special: bool,
    parse_special: bool,
) -> i32 {
    // SAFETY: `len` bytes at `text`; `tokens` has room for `capacity` ids.
    unsafe {
        (t.llama_tokenize)(
            model_of(vocab),
            text,
            len,
            tokens,
            capacity,
            add_special,
            parse_special,
        )
    }
}

pub(super) unsafe fn token_to_piece(
    t: &LlamaFunctions,
    vocab: *const llama_vocab,
    token: llama_token,
    buf: *mut c_char,
    len: i32,
    lstrip: i32,
    special: bool,
) -> i32 {
    // SAFETY: `token` in range; `buf` has `len` bytes.
    unsafe { (t.llama_token_to_piece)(model_of(vocab), token, buf, len, lstrip, special) }
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn detokenize(
    t: &LlamaFunctions,
    vocab: *const llama_vocab,
    tokens: *const llama_token,
    n_tokens: i32,
    text: *mut c_char,
    len: i32,
    remove_special: bool,
    unparse_special: bool,
) -> i32 {
    // SAFETY: every token in range; `text` has `len` bytes.
    unsafe {
        (t.llama_detokenize)(
            model_of(vocab),
            tokens,
            n_tokens,
            text,
            len,
            remove_special,
            unparse_special,
        )
    }
}

// Context.

pub(super) unsafe fn free(t: &LlamaFunctions, ctx: *mut llama_context) {
    // SAFETY: a live context, freed once.
    unsafe { (t.llama_free)(ctx.cast()) }
}

pub(super) unsafe fn n_ctx(t: &LlamaFunctions, ctx: *const llama_context) -> u32 {
    // SAFETY: a live context.
    unsafe { (t.llama_n_ctx)(ctx.cast()) }
}

/// The fork's KV cache is unified: every sequence may use the whole context.
pub(super) unsafe fn n_ctx_seq(t: &LlamaFunctions, ctx: *const llama_context) -> u32 {
    // SAFETY: a live context.
    unsafe { (t.llama_n_ctx)(ctx.cast()) }
}

pub(super) unsafe fn n_batch(t: &LlamaFunctions, ctx: *const llama_context) -> u32 {
    // SAFETY: a live context.
    unsafe { (t.llama_n_batch)(ctx.cast()) }
}

pub(super) unsafe fn n_ubatch(t: &LlamaFunctions, ctx: *const llama_context) -> u32 {
    // SAFETY: a live context.
    unsafe { (t.llama_n_ubatch)(ctx.cast()) }
}

/// Beware: the fork's `llama_n_seq_max` returns the KV cache's size (`kv_self.size`: `n_ctx`
/// for attention models), not the context's `n_seq_max`; `Context::new` keeps the value it
/// asked for instead (the fork uses it as given, at least 1).
pub(super) unsafe fn n_seq_max(t: &LlamaFunctions, ctx: *const llama_context) -> u32 {
    // SAFETY: a live context.
    unsafe { (t.llama_n_seq_max)(ctx.cast()) }
}

pub(super) unsafe fn pooling_type(
    t: &LlamaFunctions,
    ctx: *const llama_context,
) -> sys::llama_pooling_type {
    // SAFETY: a live context; the pooling enums have the same values in both generations.
    unsafe { (t.llama_pooling_type)(ctx.cast()) }
}

pub(super) unsafe fn n_threads(t: &LlamaFunctions, ctx: *mut llama_context) -> i32 {
    // SAFETY: a live context.
    unsafe { (t.llama_n_threads)(ctx.cast()) }
}

pub(super) unsafe fn n_threads_batch(t: &LlamaFunctions, ctx: *mut llama_context) -> i32 {
    // SAFETY: a live context.
    unsafe { (t.llama_n_threads_batch)(ctx.cast()) }
}

pub(super) unsafe fn set_n_threads(
    t: &LlamaFunctions,
    ctx: *mut llama_context,
    n_threads: i32,
    n_threads_batch: i32,
) {
    // SAFETY: a live context; thread counts validated.
    unsafe { (t.llama_set_n_threads)(ctx.cast(), n_threads, n_threads_batch) }
}

pub(super) unsafe fn get_logits_ith(
    t: &LlamaFunctions,
    ctx: *mut llama_context,
    i: i32,
) -> *mut f32 {
    // SAFETY: `i` is an output row of the last decode.
    unsafe { (t.llama_get_logits_ith)(ctx.cast(), i) }
}

pub(super) unsafe fn get_embeddings_ith(
    t: &LlamaFunctions,
    ctx: *mut llama_context,
    i: i32,
) -> *mut f32 {
    // SAFETY: `i` is an output row of the last decode of an embeddings context.
    unsafe { (t.llama_get_embeddings_ith)(ctx.cast(), i) }
}

pub(super) unsafe fn get_embeddings_seq(
    t: &LlamaFunctions,
    ctx: *mut llama_context,
    seq_id: llama_seq_id,
) -> *mut f32 {
    // SAFETY: a live context (NULL when the sequence has no pooled embedding).
    unsafe { (t.llama_get_embeddings_seq)(ctx.cast(), seq_id) }
}

/// The memory handle is the context itself (see the module docs).
pub(super) unsafe fn get_memory(_t: &LlamaFunctions, ctx: *const llama_context) -> llama_memory_t {
    ctx.cast_mut().cast()
}

pub(super) unsafe fn perf_context_reset(t: &LlamaFunctions, ctx: *mut llama_context) {
    // SAFETY: a live context.
    unsafe { (t.llama_perf_context_reset)(ctx.cast()) }
}

// Adapters.

pub(super) unsafe fn adapter_lora_init(
    t: &LlamaFunctions,
    model: *mut llama_model,
    path: *const c_char,
) -> *mut sys::llama_adapter_lora {
    // SAFETY: a live model and a C string path the pre-flight accepted.
    unsafe { (t.llama_lora_adapter_init)(model.cast(), path).cast() }
}

pub(super) unsafe fn adapter_lora_free(t: &LlamaFunctions, adapter: *mut sys::llama_adapter_lora) {
    // SAFETY: a live adapter, freed once.
    unsafe { (t.llama_lora_adapter_free)(adapter.cast()) }
}

/// Upstream sets the whole list at once; the fork clears, then sets each adapter.
pub(super) unsafe fn set_adapters_lora(
    t: &LlamaFunctions,
    ctx: *mut llama_context,
    adapters: *mut *mut sys::llama_adapter_lora,
    n_adapters: usize,
    scales: *mut f32,
) -> i32 {
    // SAFETY: a live context.
    unsafe { (t.llama_lora_adapter_clear)(ctx.cast()) };
    for i in 0..n_adapters {
        // SAFETY: `adapters` and `scales` hold `n_adapters` entries (the caller's contract).
        let code = unsafe {
            (t.llama_lora_adapter_set)(ctx.cast(), (*adapters.add(i)).cast(), *scales.add(i))
        };
        if code != 0 {
            return code;
        }
    }
    0
}

pub(super) unsafe fn set_adapter_cvec(
    t: &LlamaFunctions,
    ctx: *mut llama_context,
    data: *const f32,
    len: usize,
    n_embd: i32,
    il_start: i32,
    il_end: i32,
) -> i32 {
    // SAFETY: as upstream's llama_set_adapter_cvec (same arguments and checks).
    unsafe { (t.llama_control_vector_apply)(ctx.cast(), data, len, n_embd, il_start, il_end) }
}

// State.

pub(super) unsafe fn state_get_size(t: &LlamaFunctions, ctx: *mut llama_context) -> usize {
    // SAFETY: a live context.
    unsafe { (t.llama_state_get_size)(ctx.cast()) }
}

pub(super) unsafe fn state_get_data(
    t: &LlamaFunctions,
    ctx: *mut llama_context,
    dst: *mut u8,
    size: usize,
) -> usize {
    // SAFETY: `dst` holds `size` bytes.
    unsafe { (t.llama_state_get_data)(ctx.cast(), dst, size) }
}

pub(super) unsafe fn state_set_data(
    t: &LlamaFunctions,
    ctx: *mut llama_context,
    src: *const u8,
    size: usize,
) -> usize {
    // SAFETY: `src` holds `size` bytes of a verified state of this build.
    unsafe { (t.llama_state_set_data)(ctx.cast(), src, size) }
}

pub(super) unsafe fn state_seq_get_size(
    t: &LlamaFunctions,
    ctx: *mut llama_context,
    seq_id: llama_seq_id,
) -> usize {
    // SAFETY: `seq_id` in range.
    unsafe { (t.llama_state_seq_get_size)(ctx.cast(), seq_id) }
}

pub(super) unsafe fn state_seq_get_data(
    t: &LlamaFunctions,
    ctx: *mut llama_context,
    dst: *mut u8,
    size: usize,
    seq_id: llama_seq_id,
) -> usize {
    // SAFETY: `dst` holds `size` bytes; `seq_id` in range.
    unsafe { (t.llama_state_seq_get_data)(ctx.cast(), dst, size, seq_id) }
}

pub(super) unsafe fn state_seq_set_data(
    t: &LlamaFunctions,
    ctx: *mut llama_context,
    src: *const u8,
    size: usize,
    dest_seq_id: llama_seq_id,
) -> usize {
    // SAFETY: `src` holds `size` verified bytes; `dest_seq_id` in range.
    unsafe { (t.llama_state_seq_set_data)(ctx.cast(), src, size, dest_seq_id) }
}

// Memory (the handle is the context): the fork's KV-cache functions.

/// The fork always clears the data with the cells.
pub(super) unsafe fn memory_clear(t: &LlamaFunctions, mem: llama_memory_t, _data: bool) {
    // SAFETY: a live context.
    unsafe { (t.llama_kv_cache_clear)(ctx_of(mem)) }
}

pub(super) unsafe fn memory_seq_rm(
    t: &LlamaFunctions,
    mem: llama_memory_t,
    seq_id: llama_seq_id,
    p0: llama_pos,
    p1: llama_pos,
) -> bool {
    // SAFETY: a live context; the sequence id is in range or -1.
    unsafe { (t.llama_kv_cache_seq_rm)(ctx_of(mem), seq_id, p0, p1) }
}

pub(super) unsafe fn memory_seq_cp(
    t: &LlamaFunctions,
    mem: llama_memory_t,
    src: llama_seq_id,
    dst: llama_seq_id,
    p0: llama_pos,
    p1: llama_pos,
) {
    // SAFETY: a live context; both sequence ids in range.
    unsafe { (t.llama_kv_cache_seq_cp)(ctx_of(mem), src, dst, p0, p1) }
}

pub(super) unsafe fn memory_seq_keep(
    t: &LlamaFunctions,
    mem: llama_memory_t,
    seq_id: llama_seq_id,
) {
    // SAFETY: a live context; the sequence id in range.
    unsafe { (t.llama_kv_cache_seq_keep)(ctx_of(mem), seq_id) }
}

/// The fork applies the shift to the cached keys at once (`llama_kv_cache_update`), where
/// upstream leaves it to the next computation: its KV-cache view, which
/// [`memory_seq_extent`] reads, adds a pending shift to the already shifted positions, and a
/// shift run inside an aborted decode is marked done however far it got. The caller learns of
/// an abort of this computation from its abort callback.
pub(super) unsafe fn memory_seq_add(
    t: &LlamaFunctions,
    mem: llama_memory_t,
    seq_id: llama_seq_id,
    p0: llama_pos,
    p1: llama_pos,
    delta: llama_pos,
) {
    let ctx = ctx_of(mem);
    // SAFETY: a live context; the sequence id in range; the model can shift (checked by the
    // caller: the fork's K-shift aborts for DeepSeek-2, see `memory_can_shift`).
    unsafe {
        (t.llama_kv_cache_seq_add)(ctx, seq_id, p0, p1, delta);
        (t.llama_kv_cache_update)(ctx);
    }
}

/// The smallest and largest position of `seq_id`, from the fork's KV-cache view sized for
/// `n_seq_max` sequences per cell (no pending shift: see [`memory_seq_add`]); `None` when the
/// sequence has no cell. The fork's own `llama_kv_cache_seq_pos_max` starts from 0, so it
/// cannot tell an empty sequence from one token at position 0, and it has no minimum.
unsafe fn memory_seq_extent(
    t: &LlamaFunctions,
    mem: llama_memory_t,
    seq_id: llama_seq_id,
    n_seq_max: i32,
) -> Option<(llama_pos, llama_pos)> {
    let ctx = ctx_of(mem);
    let per_cell = n_seq_max.max(1);
    // SAFETY: a live context; the view is freed below (it mallocs its arrays in update).
    let mut view = unsafe { (t.llama_kv_cache_view_init)(ctx, per_cell) };
    // SAFETY: a live context and the view it initialised.
    unsafe { (t.llama_kv_cache_view_update)(ctx, &mut view) };
    let mut extent: Option<(llama_pos, llama_pos)> = None;
    if !view.cells.is_null() && !view.cells_sequences.is_null() && view.n_cells > 0 {
        let n_cells = view.n_cells as usize;
        let per_cell = per_cell as usize;
        // SAFETY: update sized `cells` for `n_cells` entries and `cells_sequences` for
        // `n_cells * n_seq_max` ids, and filled them; nothing else touches the view.
        let (cells, sequences) = unsafe {
            (
                std::slice::from_raw_parts(view.cells, n_cells),
                std::slice::from_raw_parts(view.cells_sequences, n_cells * per_cell),
            )
        };
        for (cell, ids) in cells.iter().zip(sequences.chunks_exact(per_cell)) {
            if ids.contains(&seq_id) {
                extent = Some(match extent {
                    None => (cell.pos, cell.pos),
                    Some((min, max)) => (min.min(cell.pos), max.max(cell.pos)),
                });
            }
        }
    }
    // SAFETY: the view's arrays came from its update; freed once.
    unsafe { (t.llama_kv_cache_view_free)(&mut view) };
    extent
}

/// The smallest position of `seq_id` (-1: empty), as upstream's `llama_memory_seq_pos_min`.
pub(super) unsafe fn memory_seq_pos_min(
    t: &LlamaFunctions,
    mem: llama_memory_t,
    seq_id: llama_seq_id,
    n_seq_max: i32,
) -> llama_pos {
    // SAFETY: the caller's contract (live memory, sequence id in range).
    unsafe { memory_seq_extent(t, mem, seq_id, n_seq_max) }.map_or(-1, |(min, _)| min)
}

/// The largest position of `seq_id` (-1: empty), as upstream's `llama_memory_seq_pos_max`.
pub(super) unsafe fn memory_seq_pos_max(
    t: &LlamaFunctions,
    mem: llama_memory_t,
    seq_id: llama_seq_id,
    n_seq_max: i32,
) -> llama_pos {
    // SAFETY: the caller's contract (live memory, sequence id in range).
    unsafe { memory_seq_extent(t, mem, seq_id, n_seq_max) }.map_or(-1, |(_, max)| max)
}

/// The fork shifts positions of every non-recurrent model but DeepSeek-2, where its K-shift
/// aborts ("Deepseek2 does not support K-shift"); it has no query function.
pub(super) unsafe fn memory_can_shift(t: &LlamaFunctions, mem: llama_memory_t) -> bool {
    // SAFETY: a live context; its model lives as long as it.
    let model = unsafe { (t.llama_get_model)(ctx_of(mem)) };
    // SAFETY: a live model.
    if unsafe { (t.llama_model_is_recurrent)(model) } {
        return false;
    }
    // SAFETY: a live model (the fork's and upstream's opaque model types are the same
    // object) and a C string key.
    let arch = unsafe { meta_string(t, model.cast(), c"general.architecture") };
    arch.as_deref() != Some("deepseek2")
}

// Samplers: the fork's sampler API is the same as upstream's for these.

pub(super) unsafe fn sampler_chain_add(
    t: &LlamaFunctions,
    chain: *mut llama_sampler,
    sampler: *mut llama_sampler,
) {
    // SAFETY: both live; the chain takes ownership.
    unsafe { (t.llama_sampler_chain_add)(chain.cast(), sampler.cast()) }
}

pub(super) unsafe fn sampler_chain_get(
    t: &LlamaFunctions,
    chain: *mut llama_sampler,
    i: i32,
) -> *mut llama_sampler {
    // SAFETY: a live chain; `i` in range.
    unsafe { (t.llama_sampler_chain_get)(chain.cast(), i).cast() }
}

pub(super) unsafe fn sampler_name(
    t: &LlamaFunctions,
    sampler: *const llama_sampler,
) -> *const c_char {
    // SAFETY: a live sampler.
    unsafe { (t.llama_sampler_name)(sampler.cast()) }
}

pub(super) unsafe fn sampler_accept(
    t: &LlamaFunctions,
    sampler: *mut llama_sampler,
    token: llama_token,
) {
    // SAFETY: a live sampler; a token it accepts.
    unsafe { (t.llama_sampler_accept)(sampler.cast(), token) }
}

pub(super) unsafe fn sampler_apply(
    t: &LlamaFunctions,
    sampler: *mut llama_sampler,
    candidates: *mut llama_token_data_array,
) {
    // SAFETY: a live sampler; the candidate arrays are declared alike in both generations.
    unsafe { (t.llama_sampler_apply)(sampler.cast(), candidates.cast()) }
}

pub(super) unsafe fn sampler_reset(t: &LlamaFunctions, sampler: *mut llama_sampler) {
    // SAFETY: a live sampler.
    unsafe { (t.llama_sampler_reset)(sampler.cast()) }
}

pub(super) unsafe fn sampler_clone(
    t: &LlamaFunctions,
    sampler: *const llama_sampler,
) -> *mut llama_sampler {
    // SAFETY: a live sampler.
    unsafe { (t.llama_sampler_clone)(sampler.cast()).cast() }
}

pub(super) unsafe fn sampler_free(t: &LlamaFunctions, sampler: *mut llama_sampler) {
    // SAFETY: a live sampler, freed once.
    unsafe { (t.llama_sampler_free)(sampler.cast()) }
}

pub(super) unsafe fn sampler_get_seed(t: &LlamaFunctions, sampler: *const llama_sampler) -> u32 {
    // SAFETY: a live sampler.
    unsafe { (t.llama_sampler_get_seed)(sampler.cast()) }
}

pub(super) unsafe fn sampler_init_greedy(t: &LlamaFunctions) -> *mut llama_sampler {
    // SAFETY: no arguments.
    unsafe { (t.llama_sampler_init_greedy)().cast() }
}

pub(super) unsafe fn sampler_init_dist(t: &LlamaFunctions, seed: u32) -> *mut llama_sampler {
    // SAFETY: plain values.
    unsafe { (t.llama_sampler_init_dist)(seed).cast() }
}

pub(super) unsafe fn sampler_init_top_k(t: &LlamaFunctions, k: i32) -> *mut llama_sampler {
    // SAFETY: plain values.
    unsafe { (t.llama_sampler_init_top_k)(k).cast() }
}

pub(super) unsafe fn sampler_init_top_p(
    t: &LlamaFunctions,
    p: f32,
    min_keep: usize,
) -> *mut llama_sampler {
    // SAFETY: plain values.
    unsafe { (t.llama_sampler_init_top_p)(p, min_keep).cast() }
}

pub(super) unsafe fn sampler_init_min_p(
    t: &LlamaFunctions,
    p: f32,
    min_keep: usize,
) -> *mut llama_sampler {
    // SAFETY: plain values.
    unsafe { (t.llama_sampler_init_min_p)(p, min_keep).cast() }
}

pub(super) unsafe fn sampler_init_typical(
    t: &LlamaFunctions,
    p: f32,
    min_keep: usize,
) -> *mut llama_sampler {
    // SAFETY: plain values.
    unsafe { (t.llama_sampler_init_typical)(p, min_keep).cast() }
}

pub(super) unsafe fn sampler_init_temp(t: &LlamaFunctions, temp: f32) -> *mut llama_sampler {
    // SAFETY: plain values.
    unsafe { (t.llama_sampler_init_temp)(temp).cast() }
}

pub(super) unsafe fn sampler_init_temp_ext(
    t: &LlamaFunctions,
    temp: f32,
    delta: f32,
    exponent: f32,
) -> *mut llama_sampler {
    // SAFETY: plain values.
    unsafe { (t.llama_sampler_init_temp_ext)(temp, delta, exponent).cast() }
}

pub(super) unsafe fn sampler_init_mirostat(
    t: &LlamaFunctions,
    n_vocab: i32,
    seed: u32,
    tau: f32,
    eta: f32,
    m: i32,
) -> *mut llama_sampler {
    // SAFETY: plain values.
    unsafe { (t.llama_sampler_init_mirostat)(n_vocab, seed, tau, eta, m).cast() }
}

pub(super) unsafe fn sampler_init_mirostat_v2(
    t: &LlamaFunctions,
    seed: u32,
    tau: f32,
    eta: f32,
) -> *mut llama_sampler {
    // SAFETY: plain values.
    unsafe { (t.llama_sampler_init_mirostat_v2)(seed, tau, eta).cast() }
}

/// The fork's penalties also take the end-of-sequence and newline ids, to exempt them; with
/// both `LLAMA_TOKEN_NULL` (and `penalize_nl`, `!ignore_eos`) it penalises every token, as
/// upstream's does.
pub(super) unsafe fn sampler_init_penalties(
    t: &LlamaFunctions,
    n_vocab: i32,
    last_n: i32,
    repeat: f32,
    frequency: f32,
    presence: f32,
) -> *mut llama_sampler {
    // SAFETY: plain values; with NULL ids the fork never indexes by them.
    unsafe {
        (t.llama_sampler_init_penalties)(
            n_vocab,
            fork::LLAMA_TOKEN_NULL,
            fork::LLAMA_TOKEN_NULL,
            last_n,
            repeat,
            frequency,
            presence,
            true,
            false,
        )
        .cast()
    }
}

pub(super) unsafe fn sampler_init_logit_bias(
    t: &LlamaFunctions,
    n_vocab: i32,
    n_biases: i32,
    biases: *const llama_logit_bias,
) -> *mut llama_sampler {
    // SAFETY: `n_biases` entries, tokens in range; `llama_logit_bias` is declared alike.
    unsafe { (t.llama_sampler_init_logit_bias)(n_vocab, n_biases, biases.cast()).cast() }
}
