//! [`Api`]: the llama.h functions the safe layer calls, dispatched to the loaded ABI generation.
//!
//! Most methods keep the upstream signature (upstream's opaque handle types and plain values):
//! the upstream generation forwards them to its table, the BitNet fork's (`super::bitnet`)
//! maps them onto its older functions (a vocabulary handle is the model pointer there, a memory
//! handle the context pointer). Methods whose C structs differ between generations take the
//! Rust-side holders of [`super::params`]. Methods the fork has no counterpart for return
//! `Result`, with [`Error::Unsupported`] naming the C function.

use std::ffi::c_char;

use super::bitnet;
use super::params::{BatchArrays, ContextParamsC, ModelParamsC};
use crate::error::{Error, Result};
use crate::loader::LlamaLibrary;
use crate::sys::upstream::{
    self as sys, llama_context, llama_logit_bias, llama_memory_t, llama_model, llama_pos,
    llama_sampler, llama_seq_id, llama_token, llama_token_data_array, llama_vocab,
};

/// The loaded generation's function table.
#[derive(Clone, Copy)]
pub(crate) enum Tables<'a> {
    /// The pinned upstream llama.h.
    Upstream(&'a sys::LlamaFunctions),
    /// The 2024 BitNet fork's llama.h.
    Bitnet(&'a crate::sys::bitnet::LlamaFunctions),
}

/// The llama.h functions the safe layer calls, for the loaded ABI generation.
///
/// Cheap to copy; borrow it from the [`LlamaLibrary`] every safe object holds.
#[derive(Clone, Copy)]
pub(crate) struct Api<'a> {
    pub(super) tables: Tables<'a>,
}

impl<'a> Api<'a> {
    /// The interface of `library`'s generation.
    pub(crate) fn of(library: &'a LlamaLibrary) -> Self {
        Api {
            tables: library.tables(),
        }
    }

    /// Where the loaded generation's functions behave unlike upstream's in a way the safe
    /// layer must check or compensate for.
    pub(crate) fn quirks(&self) -> &'static Quirks {
        match self.tables {
            Tables::Upstream(_) => &UPSTREAM_QUIRKS,
            Tables::Bitnet(_) => &bitnet::QUIRKS,
        }
    }
}

/// How a generation's functions depart from upstream's where the safe layer has to know (the
/// rest of the difference is mapped in `super::bitnet`). Upstream has none.
#[derive(Debug)]
pub(crate) struct Quirks {
    /// `llama_n_seq_max` returns the KV cache's size, not the context's sequence count (which
    /// is then what was asked for).
    pub(crate) n_seq_max_is_cache_size: bool,
    /// A decode stopped by the abort callback returns 0, as a finished one does.
    pub(crate) decode_hides_abort: bool,
    /// A context with embeddings computes no logits, and outputs only the rows flagged for
    /// logits (unless it pools).
    pub(crate) embeddings_without_logits: bool,
    /// Pooled embeddings need every sequence id below the batch's token count
    /// (`GGML_ASSERT(seq_id < n_tokens)`; the pooled row is read at offset `seq_id`).
    pub(crate) pooling_needs_sequence_below_token_count: bool,
    /// Restoring a sequence state with no cell reads out of bounds (`GGML_ASSERT`s).
    pub(crate) empty_sequence_state_asserts: bool,
    /// `llama_tokenize` may return ids outside the vocabulary (unchecked special ids).
    pub(crate) tokenizer_ids_unchecked: bool,
    /// Architectures whose graphs accept a control vector and never apply it.
    pub(crate) graphs_without_control_vectors: &'static [&'static str],
}

/// Upstream's behaviour, which the safe layer is written for.
static UPSTREAM_QUIRKS: Quirks = Quirks {
    n_seq_max_is_cache_size: false,
    decode_hides_abort: false,
    embeddings_without_logits: false,
    pooling_needs_sequence_below_token_count: false,
    empty_sequence_state_asserts: false,
    tokenizer_ids_unchecked: false,
    graphs_without_control_vectors: &[],
};

/// `Error::Unsupported` for a C function the loaded generation lacks.
pub(crate) fn unsupported(symbol: &'static str) -> Error {
    Error::Unsupported { symbol }
}

/// Declares dispatching methods: `fn name(args) -> ret = upstream_symbol;`. The fork's
/// counterpart is the function of the same name in `super::bitnet`.
macro_rules! dispatch {
    ($( $(#[$meta:meta])* fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)? = $c:ident; )*) => {
        impl Api<'_> {
            $(
                $(#[$meta])*
                #[doc = concat!("`", stringify!($c), "` (or the fork's counterpart).")]
                ///
                /// # Safety
                /// Every handle is live and owned as llama.h requires, and every precondition
                /// of the C function is met (the safe layer checks them before calling).
                #[inline]
                #[allow(clippy::too_many_arguments)]
                pub(crate) unsafe fn $name(&self, $($arg: $ty),*) $(-> $ret)? {
                    match self.tables {
                        // SAFETY: forwarded as is; the caller upholds the function's contract.
                        Tables::Upstream(t) => unsafe { (t.$c)($($arg),*) },
                        // SAFETY: as above; the fork's counterpart has the same contract.
                        Tables::Bitnet(t) => unsafe { bitnet::$name(t, $($arg),*) },
                    }
                }
            )*
        }
    };
}

dispatch! {
    // Library-wide.
    fn max_devices() -> usize = llama_max_devices;

    // Model.
    fn model_free(model: *mut llama_model) = llama_model_free;
    fn model_get_vocab(model: *const llama_model) -> *const llama_vocab = llama_model_get_vocab;
    fn model_desc(model: *const llama_model, buf: *mut c_char, len: usize) -> i32 = llama_model_desc;
    fn model_size(model: *const llama_model) -> u64 = llama_model_size;
    fn model_n_params(model: *const llama_model) -> u64 = llama_model_n_params;
    fn model_n_ctx_train(model: *const llama_model) -> i32 = llama_model_n_ctx_train;
    fn model_n_embd(model: *const llama_model) -> i32 = llama_model_n_embd;
    fn model_n_embd_out(model: *const llama_model) -> i32 = llama_model_n_embd_out;
    fn model_n_layer(model: *const llama_model) -> i32 = llama_model_n_layer;
    fn model_n_head(model: *const llama_model) -> i32 = llama_model_n_head;
    fn model_n_head_kv(model: *const llama_model) -> i32 = llama_model_n_head_kv;
    fn model_n_cls_out(model: *const llama_model) -> u32 = llama_model_n_cls_out;
    fn model_has_encoder(model: *const llama_model) -> bool = llama_model_has_encoder;
    fn model_has_decoder(model: *const llama_model) -> bool = llama_model_has_decoder;
    fn model_decoder_start_token(model: *const llama_model) -> llama_token = llama_model_decoder_start_token;
    fn model_is_recurrent(model: *const llama_model) -> bool = llama_model_is_recurrent;
    fn model_is_hybrid(model: *const llama_model) -> bool = llama_model_is_hybrid;
    fn model_rope_freq_scale_train(model: *const llama_model) -> f32 = llama_model_rope_freq_scale_train;
    fn model_rope_type(model: *const llama_model) -> i32 = llama_model_rope_type;
    fn model_meta_val_str(model: *const llama_model, key: *const c_char, buf: *mut c_char, len: usize) -> i32 = llama_model_meta_val_str;
    fn model_meta_count(model: *const llama_model) -> i32 = llama_model_meta_count;
    fn model_meta_key_by_index(model: *const llama_model, i: i32, buf: *mut c_char, len: usize) -> i32 = llama_model_meta_key_by_index;
    fn model_meta_val_str_by_index(model: *const llama_model, i: i32, buf: *mut c_char, len: usize) -> i32 = llama_model_meta_val_str_by_index;

    // Built-in chat templates (no model needed).
    /// `tmpl` is NULL or a C string; `chat` points to `n_msg` messages whose role and content
    /// are C strings; `buf` has `length` bytes (filled with strncpy: no NUL when truncated).
    fn chat_apply_template(tmpl: *const c_char, chat: *const sys::llama_chat_message, n_msg: usize, add_ass: bool, buf: *mut c_char, length: i32) -> i32 = llama_chat_apply_template;

    // Vocabulary.
    fn vocab_n_tokens(vocab: *const llama_vocab) -> i32 = llama_vocab_n_tokens;
    fn vocab_type(vocab: *const llama_vocab) -> i32 = llama_vocab_type;
    fn vocab_get_add_bos(vocab: *const llama_vocab) -> bool = llama_vocab_get_add_bos;
    fn vocab_get_add_eos(vocab: *const llama_vocab) -> bool = llama_vocab_get_add_eos;
    fn vocab_get_add_sep(vocab: *const llama_vocab) -> bool = llama_vocab_get_add_sep;
    fn vocab_bos(vocab: *const llama_vocab) -> llama_token = llama_vocab_bos;
    fn vocab_eos(vocab: *const llama_vocab) -> llama_token = llama_vocab_eos;
    fn vocab_eot(vocab: *const llama_vocab) -> llama_token = llama_vocab_eot;
    fn vocab_sep(vocab: *const llama_vocab) -> llama_token = llama_vocab_sep;
    fn vocab_nl(vocab: *const llama_vocab) -> llama_token = llama_vocab_nl;
    fn vocab_pad(vocab: *const llama_vocab) -> llama_token = llama_vocab_pad;
    fn vocab_fim_pre(vocab: *const llama_vocab) -> llama_token = llama_vocab_fim_pre;
    fn vocab_fim_suf(vocab: *const llama_vocab) -> llama_token = llama_vocab_fim_suf;
    fn vocab_fim_mid(vocab: *const llama_vocab) -> llama_token = llama_vocab_fim_mid;
    /// `token` must be in `0..n_vocab` (it indexes a vector with `.at()`, which throws).
    fn vocab_is_eog(vocab: *const llama_vocab, token: llama_token) -> bool = llama_vocab_is_eog;
    /// `len` bytes at `text`; `tokens` has room for `capacity` ids.
    fn tokenize(vocab: *const llama_vocab, text: *const c_char, len: i32, tokens: *mut llama_token, capacity: i32, add_special: bool, parse_special: bool) -> i32 = llama_tokenize;
    /// `token` in range (`.at()` throws otherwise); `buf` has `len` bytes.
    fn token_to_piece(vocab: *const llama_vocab, token: llama_token, buf: *mut c_char, len: i32, lstrip: i32, special: bool) -> i32 = llama_token_to_piece;
    /// Every token in range; `text` has `len` bytes.
    fn detokenize(vocab: *const llama_vocab, tokens: *const llama_token, n_tokens: i32, text: *mut c_char, len: i32, remove_special: bool, unparse_special: bool) -> i32 = llama_detokenize;

    // Context.
    fn free(ctx: *mut llama_context) = llama_free;
    fn n_ctx(ctx: *const llama_context) -> u32 = llama_n_ctx;
    fn n_ctx_seq(ctx: *const llama_context) -> u32 = llama_n_ctx_seq;
    fn n_batch(ctx: *const llama_context) -> u32 = llama_n_batch;
    fn n_ubatch(ctx: *const llama_context) -> u32 = llama_n_ubatch;
    fn n_seq_max(ctx: *const llama_context) -> u32 = llama_n_seq_max;
    fn pooling_type(ctx: *const llama_context) -> sys::llama_pooling_type = llama_pooling_type;
    fn n_threads(ctx: *mut llama_context) -> i32 = llama_n_threads;
    fn n_threads_batch(ctx: *mut llama_context) -> i32 = llama_n_threads_batch;
    fn set_n_threads(ctx: *mut llama_context, n_threads: i32, n_threads_batch: i32) = llama_set_n_threads;
    /// `i` is an output row of the last decode.
    fn get_logits_ith(ctx: *mut llama_context, i: i32) -> *mut f32 = llama_get_logits_ith;
    /// `i` is an output row of the last decode of an embeddings context.
    fn get_embeddings_ith(ctx: *mut llama_context, i: i32) -> *mut f32 = llama_get_embeddings_ith;
    fn get_embeddings_seq(ctx: *mut llama_context, seq_id: llama_seq_id) -> *mut f32 = llama_get_embeddings_seq;
    fn get_memory(ctx: *const llama_context) -> llama_memory_t = llama_get_memory;
    fn perf_context_reset(ctx: *mut llama_context) = llama_perf_context_reset;

    // Adapters (src/adapter): init and free run under the write side of the model's `shared_state` lock (they
    // insert into / erase from the model's shared set of adapters).
    /// `path` is a C string naming a file the crate's pre-flight accepted for `model`.
    fn adapter_lora_init(model: *mut llama_model, path: *const std::ffi::c_char) -> *mut sys::llama_adapter_lora = llama_adapter_lora_init;
    /// Freed once, before its model; no context still uses it.
    fn adapter_lora_free(adapter: *mut sys::llama_adapter_lora) = llama_adapter_lora_free;
    /// `n_adapters` live adapters of the context's model and as many finite scales (both NULL
    /// only with 0); the context keeps the adapters alive while they are set.
    fn set_adapters_lora(ctx: *mut llama_context, adapters: *mut *mut sys::llama_adapter_lora, n_adapters: usize, scales: *mut f32) -> i32 = llama_set_adapters_lora;
    /// `data` is NULL (clear) or `len` finite floats, `n_embd` the model's, `1 <= il_start <=
    /// il_end < n_layer`.
    fn set_adapter_cvec(ctx: *mut llama_context, data: *const f32, len: usize, n_embd: i32, il_start: i32, il_end: i32) -> i32 = llama_set_adapter_cvec;

    // State (KV cache) serialisation: `dst`/`src` hold `size` bytes; a blob handed to a
    // `set_data` function was verified by the crate's state container first.
    fn state_get_size(ctx: *mut llama_context) -> usize = llama_state_get_size;
    fn state_get_data(ctx: *mut llama_context, dst: *mut u8, size: usize) -> usize = llama_state_get_data;
    fn state_set_data(ctx: *mut llama_context, src: *const u8, size: usize) -> usize = llama_state_set_data;
    /// `seq_id` in `0..n_seq_max` (asserted by the KV cache).
    fn state_seq_get_size(ctx: *mut llama_context, seq_id: llama_seq_id) -> usize = llama_state_seq_get_size;
    /// `seq_id` in `0..n_seq_max`.
    fn state_seq_get_data(ctx: *mut llama_context, dst: *mut u8, size: usize, seq_id: llama_seq_id) -> usize = llama_state_seq_get_data;
    /// `dest_seq_id` in `0..n_seq_max` (GGML_ASSERT in the KV cache's state_read).
    fn state_seq_set_data(ctx: *mut llama_context, src: *const u8, size: usize, dest_seq_id: llama_seq_id) -> usize = llama_state_seq_set_data;

    // Memory (KV cache): sequence ids in `0..n_seq_max` (or -1 where "all" is allowed).
    fn memory_clear(mem: llama_memory_t, data: bool) = llama_memory_clear;
    fn memory_seq_rm(mem: llama_memory_t, seq_id: llama_seq_id, p0: llama_pos, p1: llama_pos) -> bool = llama_memory_seq_rm;
    fn memory_seq_cp(mem: llama_memory_t, src: llama_seq_id, dst: llama_seq_id, p0: llama_pos, p1: llama_pos) = llama_memory_seq_cp;
    fn memory_seq_keep(mem: llama_memory_t, seq_id: llama_seq_id) = llama_memory_seq_keep;
    fn memory_seq_add(mem: llama_memory_t, seq_id: llama_seq_id, p0: llama_pos, p1: llama_pos, delta: llama_pos) = llama_memory_seq_add;
    fn memory_can_shift(mem: llama_memory_t) -> bool = llama_memory_can_shift;

    // Samplers.
    fn sampler_chain_add(chain: *mut llama_sampler, sampler: *mut llama_sampler) = llama_sampler_chain_add;
    fn sampler_chain_get(chain: *mut llama_sampler, i: i32) -> *mut llama_sampler = llama_sampler_chain_get;
    fn sampler_name(sampler: *const llama_sampler) -> *const c_char = llama_sampler_name;
    /// The token is one the sampler accepts (a grammar throws on a token it rejects).
    fn sampler_accept(sampler: *mut llama_sampler, token: llama_token) = llama_sampler_accept;
    fn sampler_apply(sampler: *mut llama_sampler, candidates: *mut llama_token_data_array) = llama_sampler_apply;
    fn sampler_reset(sampler: *mut llama_sampler) = llama_sampler_reset;
    fn sampler_clone(sampler: *const llama_sampler) -> *mut llama_sampler = llama_sampler_clone;
    fn sampler_free(sampler: *mut llama_sampler) = llama_sampler_free;
    fn sampler_get_seed(sampler: *const llama_sampler) -> u32 = llama_sampler_get_seed;
    fn sampler_init_greedy() -> *mut llama_sampler = llama_sampler_init_greedy;
    fn sampler_init_dist(seed: u32) -> *mut llama_sampler = llama_sampler_init_dist;
    fn sampler_init_top_k(k: i32) -> *mut llama_sampler = llama_sampler_init_top_k;
    fn sampler_init_top_p(p: f32, min_keep: usize) -> *mut llama_sampler = llama_sampler_init_top_p;
    fn sampler_init_min_p(p: f32, min_keep: usize) -> *mut llama_sampler = llama_sampler_init_min_p;
    fn sampler_init_typical(p: f32, min_keep: usize) -> *mut llama_sampler = llama_sampler_init_typical;
    fn sampler_init_temp(t: f32) -> *mut llama_sampler = llama_sampler_init_temp;
    fn sampler_init_temp_ext(t: f32, delta: f32, exponent: f32) -> *mut llama_sampler = llama_sampler_init_temp_ext;
    fn sampler_init_mirostat(n_vocab: i32, seed: u32, tau: f32, eta: f32, m: i32) -> *mut llama_sampler = llama_sampler_init_mirostat;
    fn sampler_init_mirostat_v2(seed: u32, tau: f32, eta: f32) -> *mut llama_sampler = llama_sampler_init_mirostat_v2;
    /// `last_n` was bounded (it sizes a ring buffer).
    fn sampler_init_penalties(n_vocab: i32, last_n: i32, repeat: f32, frequency: f32, presence: f32) -> *mut llama_sampler = llama_sampler_init_penalties;
    /// Every bias's token in range.
    fn sampler_init_logit_bias(n_vocab: i32, n_biases: i32, biases: *const llama_logit_bias) -> *mut llama_sampler = llama_sampler_init_logit_bias;
}

/// The sequence limit of the fork: it has no `llama_max_parallel_sequences`; its KV cells keep
/// a set of sequence ids, and its batch splitter sizes per-sequence arrays by `n_seq_max`, so
/// the crate applies upstream's limit of the same era.
const BITNET_MAX_SEQUENCES: usize = 64;

impl Api<'_> {
    /// `llama_max_parallel_sequences` (the fork: the era's limit of 64).
    ///
    /// # Safety
    /// None beyond a loaded library.
    #[doc(alias = "llama_max_parallel_sequences")]
    pub(crate) unsafe fn max_parallel_sequences(&self) -> usize {
        match self.tables {
            // SAFETY: no arguments.
            Tables::Upstream(t) => unsafe { (t.llama_max_parallel_sequences)() },
            Tables::Bitnet(_) => BITNET_MAX_SEQUENCES,
        }
    }

    /// `llama_model_load_from_file` (the fork: `llama_load_model_from_file`).
    ///
    /// # Safety
    /// `path` is a C string; `params` was laid out for this generation by [`ModelParamsC::new`]
    /// with this `Api`, and outlives the call.
    pub(crate) unsafe fn model_load_from_file(
        &self,
        path: *const c_char,
        params: &ModelParamsC,
    ) -> *mut llama_model {
        match (self.tables, params.raw()) {
            // SAFETY: as documented; the struct matches the generation.
            (Tables::Upstream(t), super::params::ModelParamsRaw::Upstream(raw)) => unsafe {
                (t.llama_model_load_from_file)(path, raw)
            },
            // SAFETY: as above.
            (Tables::Bitnet(t), super::params::ModelParamsRaw::Bitnet(raw)) => unsafe {
                (t.llama_load_model_from_file)(path, raw).cast()
            },
            _ => std::ptr::null_mut(),
        }
    }

    /// `llama_init_from_model` (the fork: `llama_new_context_with_model`).
    ///
    /// # Safety
    /// The model is not used by another context creation at the same time (see
    /// `Context::new`); `params` was laid out for this generation and validated.
    pub(crate) unsafe fn init_from_model(
        &self,
        model: *mut llama_model,
        params: &ContextParamsC,
    ) -> *mut llama_context {
        match (self.tables, params.raw()) {
            // SAFETY: as documented.
            (Tables::Upstream(t), super::params::ContextParamsRaw::Upstream(raw)) => unsafe {
                (t.llama_init_from_model)(model, raw)
            },
            // SAFETY: as above.
            (Tables::Bitnet(t), super::params::ContextParamsRaw::Bitnet(raw)) => unsafe {
                (t.llama_new_context_with_model)(model.cast(), raw).cast()
            },
            _ => std::ptr::null_mut(),
        }
    }

    /// `llama_decode`.
    ///
    /// # Safety
    /// The batch was validated against the context (sizes, ids, sequences, positions) and its
    /// arrays live for the call.
    pub(crate) unsafe fn decode(&self, ctx: *mut llama_context, batch: &BatchArrays) -> i32 {
        match self.tables {
            // SAFETY: as documented.
            Tables::Upstream(t) => unsafe { (t.llama_decode)(ctx, batch.to_c()) },
            // SAFETY: as documented; every array is given, so the fork's `all_*` fields are unused.
            Tables::Bitnet(t) => unsafe { (t.llama_decode)(ctx.cast(), bitnet::batch(batch)) },
        }
    }

    /// `llama_encode`.
    ///
    /// # Safety
    /// As [`Self::decode`], and the model has an encoder and the batch fits `n_ubatch`.
    pub(crate) unsafe fn encode(&self, ctx: *mut llama_context, batch: &BatchArrays) -> i32 {
        match self.tables {
            // SAFETY: as documented.
            Tables::Upstream(t) => unsafe { (t.llama_encode)(ctx, batch.to_c()) },
            // SAFETY: as documented.
            Tables::Bitnet(t) => unsafe { (t.llama_encode)(ctx.cast(), bitnet::batch(batch)) },
        }
    }

    /// `llama_perf_context`, as the crate's counters (the structs differ between generations).
    ///
    /// # Safety
    /// A live context.
    pub(crate) unsafe fn perf_context(&self, ctx: *const llama_context) -> crate::context::Perf {
        match self.tables {
            Tables::Upstream(t) => {
                // SAFETY: a live context.
                let d = unsafe { (t.llama_perf_context)(ctx) };
                super::params::perf(
                    d.t_load_ms,
                    d.t_p_eval_ms,
                    d.n_p_eval,
                    d.t_eval_ms,
                    d.n_eval,
                )
            }
            Tables::Bitnet(t) => {
                // SAFETY: a live context.
                let d = unsafe { (t.llama_perf_context)(ctx.cast()) };
                super::params::perf(
                    d.t_load_ms,
                    d.t_p_eval_ms,
                    d.n_p_eval,
                    d.t_eval_ms,
                    d.n_eval,
                )
            }
        }
    }

    /// `llama_sampler_chain_init`.
    ///
    /// # Safety
    /// None (plain values).
    pub(crate) unsafe fn sampler_chain_init(&self, no_perf: bool) -> *mut llama_sampler {
        match self.tables {
            // SAFETY: a parameter struct by value.
            Tables::Upstream(t) => unsafe {
                (t.llama_sampler_chain_init)(sys::llama_sampler_chain_params { no_perf })
            },
            // SAFETY: as above.
            Tables::Bitnet(t) => unsafe {
                (t.llama_sampler_chain_init)(crate::sys::bitnet::llama_sampler_chain_params {
                    no_perf,
                })
                .cast()
            },
        }
    }

    /// `llama_model_chat_template`, copied (the fork reads `tokenizer.chat_template[.NAME]`
    /// from the metadata, which is what upstream's function returns too).
    ///
    /// # Safety
    /// A live model; `name` is NULL or a C string.
    pub(crate) unsafe fn model_chat_template(
        &self,
        model: *const llama_model,
        name: *const c_char,
    ) -> Option<String> {
        match self.tables {
            // SAFETY: as documented; the result is owned by the model and copied at once.
            Tables::Upstream(t) => unsafe {
                super::strings::owned((t.llama_model_chat_template)(model, name))
            },
            // SAFETY: as documented.
            Tables::Bitnet(t) => unsafe { bitnet::chat_template(t, model, name) },
        }
    }

    /// `llama_chat_builtin_templates` (the fork has none).
    ///
    /// # Safety
    /// `output` has room for `len` pointers.
    ///
    /// # Errors
    /// `Unsupported` on the fork.
    pub(crate) unsafe fn chat_builtin_templates(
        &self,
        output: *mut *const c_char,
        len: usize,
    ) -> Result<i32> {
        match self.tables {
            // SAFETY: as documented.
            Tables::Upstream(t) => Ok(unsafe { (t.llama_chat_builtin_templates)(output, len) }),
            Tables::Bitnet(_) => Err(unsupported("llama_chat_builtin_templates")),
        }
    }

    /// `llama_memory_seq_pos_min` (the fork has no such function: it is read from its
    /// KV-cache view, sized for `n_seq_max` sequences per cell).
    ///
    /// # Safety
    /// A live memory handle; `seq_id` in range; `n_seq_max` the context's sequence count.
    pub(crate) unsafe fn memory_seq_pos_min(
        &self,
        mem: llama_memory_t,
        seq_id: llama_seq_id,
        n_seq_max: i32,
    ) -> llama_pos {
        match self.tables {
            // SAFETY: as documented.
            Tables::Upstream(t) => unsafe { (t.llama_memory_seq_pos_min)(mem, seq_id) },
            // SAFETY: as documented.
            Tables::Bitnet(t) => unsafe { bitnet::memory_seq_pos_min(t, mem, seq_id, n_seq_max) },
        }
    }

    /// `llama_memory_seq_pos_max` (the fork's cannot tell an empty sequence: read from its
    /// KV-cache view, as the minimum).
    ///
    /// # Safety
    /// As [`Self::memory_seq_pos_min`].
    pub(crate) unsafe fn memory_seq_pos_max(
        &self,
        mem: llama_memory_t,
        seq_id: llama_seq_id,
        n_seq_max: i32,
    ) -> llama_pos {
        match self.tables {
            // SAFETY: as documented.
            Tables::Upstream(t) => unsafe { (t.llama_memory_seq_pos_max)(mem, seq_id) },
            // SAFETY: as documented.
            Tables::Bitnet(t) => unsafe { bitnet::memory_seq_pos_max(t, mem, seq_id, n_seq_max) },
        }
    }

    /// `llama_sampler_init_xtc` (not in the fork).
    ///
    /// # Safety
    /// None (plain values).
    ///
    /// # Errors
    /// `Unsupported` on the fork.
    pub(crate) unsafe fn sampler_init_xtc(
        &self,
        p: f32,
        t: f32,
        min_keep: usize,
        seed: u32,
    ) -> Result<*mut llama_sampler> {
        match self.tables {
            // SAFETY: plain values.
            Tables::Upstream(f) => Ok(unsafe { (f.llama_sampler_init_xtc)(p, t, min_keep, seed) }),
            Tables::Bitnet(_) => Err(unsupported("llama_sampler_init_xtc")),
        }
    }

    /// `llama_sampler_init_top_n_sigma` (not in the fork).
    ///
    /// # Safety
    /// None (plain values).
    ///
    /// # Errors
    /// `Unsupported` on the fork.
    pub(crate) unsafe fn sampler_init_top_n_sigma(&self, n: f32) -> Result<*mut llama_sampler> {
        match self.tables {
            // SAFETY: plain values.
            Tables::Upstream(f) => Ok(unsafe { (f.llama_sampler_init_top_n_sigma)(n) }),
            Tables::Bitnet(_) => Err(unsupported("llama_sampler_init_top_n_sigma")),
        }
    }

    /// `llama_sampler_init_dry` (not in the fork).
    ///
    /// # Safety
    /// Breakers counted and bounded; `last_n` bounded.
    ///
    /// # Errors
    /// `Unsupported` on the fork.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn sampler_init_dry(
        &self,
        vocab: *const llama_vocab,
        multiplier: f32,
        base: f32,
        allowed_length: i32,
        last_n: i32,
        breakers: *mut *const c_char,
        n_breakers: usize,
    ) -> Result<*mut llama_sampler> {
        match self.tables {
            // SAFETY: as documented.
            Tables::Upstream(f) => Ok(unsafe {
                (f.llama_sampler_init_dry)(
                    vocab,
                    multiplier,
                    base,
                    allowed_length,
                    last_n,
                    breakers,
                    n_breakers,
                )
            }),
            Tables::Bitnet(_) => Err(unsupported("llama_sampler_init_dry")),
        }
    }

    /// `llama_sampler_init_infill` (not in the fork).
    ///
    /// # Safety
    /// A live vocabulary.
    ///
    /// # Errors
    /// `Unsupported` on the fork.
    pub(crate) unsafe fn sampler_init_infill(
        &self,
        vocab: *const llama_vocab,
    ) -> Result<*mut llama_sampler> {
        match self.tables {
            // SAFETY: a live vocabulary.
            Tables::Upstream(f) => Ok(unsafe { (f.llama_sampler_init_infill)(vocab) }),
            Tables::Bitnet(_) => Err(unsupported("llama_sampler_init_infill")),
        }
    }

    /// `llama_model_quantize_default_params` (upstream only: the crate quantizes with the
    /// upstream build, which also writes the ternary TQ1_0/TQ2_0 types).
    ///
    /// # Errors
    /// `Unsupported` on the fork.
    pub(crate) fn model_quantize_default_params(&self) -> Result<sys::llama_model_quantize_params> {
        match self.tables {
            // SAFETY: returns a struct by value; the ABI was verified at load.
            Tables::Upstream(t) => Ok(unsafe { (t.llama_model_quantize_default_params)() }),
            Tables::Bitnet(_) => Err(unsupported("llama_model_quantize")),
        }
    }

    /// `llama_model_quantize` (upstream only).
    ///
    /// # Safety
    /// Paths are C strings, `params` points to valid parameters; the input passed the
    /// pre-flight (C++ exceptions are caught inside: non-zero on failure).
    ///
    /// # Errors
    /// `Unsupported` on the fork.
    pub(crate) unsafe fn model_quantize(
        &self,
        fname_inp: *const c_char,
        fname_out: *const c_char,
        params: *const sys::llama_model_quantize_params,
    ) -> Result<u32> {
        match self.tables {
            Tables::Upstream(t) => {
                // SAFETY: as documented.
                Ok(unsafe { (t.llama_model_quantize)(fname_inp, fname_out, params) })
            }
            Tables::Bitnet(_) => Err(unsupported("llama_model_quantize")),
        }
    }

    /// `llama_sampler_init_grammar` (upstream only: the fork's returns a sampler that
    /// constrains nothing when the grammar does not parse, where upstream returns NULL).
    ///
    /// # Safety
    /// A live vocabulary; the grammar was pre-checked (size, nesting).
    ///
    /// # Errors
    /// `Unsupported` on the fork.
    pub(crate) unsafe fn sampler_init_grammar(
        &self,
        vocab: *const llama_vocab,
        grammar: *const c_char,
        root: *const c_char,
    ) -> Result<*mut llama_sampler> {
        match self.tables {
            Tables::Upstream(f) => {
                // SAFETY: as documented.
                Ok(unsafe { (f.llama_sampler_init_grammar)(vocab, grammar, root) })
            }
            Tables::Bitnet(_) => Err(unsupported("llama_sampler_init_grammar")),
        }
    }
}
