//! The function table of the BitNet fork's include/llama.h (llama.cpp build ~3947): every
//! `LLAMA_API` function, deprecated ones as optional entries. Checked against the fork's header
//! by `tests/header_table.rs`.
//!
//! This is the old API: models and vocabularies are one handle (`llama_token_*` take a
//! `llama_model`), the KV cache is managed through `llama_kv_cache_*` on the context, adapters are
//! `llama_lora_adapter_*`, and there is no version function.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};

use super::types::*;

crate::function_table! {
    /// Every function declared by the fork's llama.h, resolved from its `libllama`.
    pub struct LlamaFunctions {
        required {
            fn llama_model_default_params() -> llama_model_params;
            fn llama_context_default_params() -> llama_context_params;
            fn llama_sampler_chain_default_params() -> llama_sampler_chain_params;
            fn llama_model_quantize_default_params() -> llama_model_quantize_params;
            fn llama_backend_init();
            fn llama_numa_init(numa: ggml_numa_strategy);
            fn llama_attach_threadpool(ctx: *mut llama_context, threadpool: ggml_threadpool_t, threadpool_batch: ggml_threadpool_t);
            fn llama_detach_threadpool(ctx: *mut llama_context);
            fn llama_backend_free();
            fn llama_load_model_from_file(path_model: *const c_char, params: llama_model_params) -> *mut llama_model;
            fn llama_free_model(model: *mut llama_model);
            fn llama_new_context_with_model(model: *mut llama_model, params: llama_context_params) -> *mut llama_context;
            fn llama_free(ctx: *mut llama_context);
            fn llama_time_us() -> i64;
            fn llama_max_devices() -> usize;
            fn llama_supports_mmap() -> bool;
            fn llama_supports_mlock() -> bool;
            fn llama_supports_gpu_offload() -> bool;
            fn llama_supports_rpc() -> bool;
            fn llama_n_ctx(ctx: *const llama_context) -> u32;
            fn llama_n_batch(ctx: *const llama_context) -> u32;
            fn llama_n_ubatch(ctx: *const llama_context) -> u32;
            fn llama_n_seq_max(ctx: *const llama_context) -> u32;
            fn llama_n_vocab(model: *const llama_model) -> i32;
            fn llama_n_ctx_train(model: *const llama_model) -> i32;
            fn llama_n_embd(model: *const llama_model) -> i32;
            fn llama_n_layer(model: *const llama_model) -> i32;
            fn llama_n_head(model: *const llama_model) -> i32;
            fn llama_get_model(ctx: *const llama_context) -> *const llama_model;
            fn llama_pooling_type(ctx: *const llama_context) -> llama_pooling_type;
            fn llama_vocab_type(model: *const llama_model) -> llama_vocab_type;
            fn llama_rope_type(model: *const llama_model) -> llama_rope_type;
            fn llama_rope_freq_scale_train(model: *const llama_model) -> f32;
            fn llama_model_meta_val_str(model: *const llama_model, key: *const c_char, buf: *mut c_char, buf_size: usize) -> i32;
            fn llama_model_meta_count(model: *const llama_model) -> i32;
            fn llama_model_meta_key_by_index(model: *const llama_model, i: i32, buf: *mut c_char, buf_size: usize) -> i32;
            fn llama_model_meta_val_str_by_index(model: *const llama_model, i: i32, buf: *mut c_char, buf_size: usize) -> i32;
            fn llama_model_desc(model: *const llama_model, buf: *mut c_char, buf_size: usize) -> i32;
            fn llama_model_size(model: *const llama_model) -> u64;
            fn llama_model_n_params(model: *const llama_model) -> u64;
            fn llama_get_model_tensor(model: *mut llama_model, name: *const c_char) -> *mut ggml_tensor;
            fn llama_model_has_encoder(model: *const llama_model) -> bool;
            fn llama_model_has_decoder(model: *const llama_model) -> bool;
            fn llama_model_decoder_start_token(model: *const llama_model) -> llama_token;
            fn llama_model_is_recurrent(model: *const llama_model) -> bool;
            fn llama_model_quantize(fname_inp: *const c_char, fname_out: *const c_char, params: *const llama_model_quantize_params) -> u32;
            fn llama_lora_adapter_init(model: *mut llama_model, path_lora: *const c_char) -> *mut llama_lora_adapter;
            fn llama_lora_adapter_set(ctx: *mut llama_context, adapter: *mut llama_lora_adapter, scale: f32) -> i32;
            fn llama_lora_adapter_remove(ctx: *mut llama_context, adapter: *mut llama_lora_adapter) -> i32;
            fn llama_lora_adapter_clear(ctx: *mut llama_context);
            fn llama_lora_adapter_free(adapter: *mut llama_lora_adapter);
            fn llama_control_vector_apply(lctx: *mut llama_context, data: *const f32, len: usize, n_embd: i32, il_start: i32, il_end: i32) -> i32;
            fn llama_kv_cache_view_init(ctx: *const llama_context, n_seq_max: i32) -> llama_kv_cache_view;
            fn llama_kv_cache_view_free(view: *mut llama_kv_cache_view);
            fn llama_kv_cache_view_update(ctx: *const llama_context, view: *mut llama_kv_cache_view);
            fn llama_get_kv_cache_token_count(ctx: *const llama_context) -> i32;
            fn llama_get_kv_cache_used_cells(ctx: *const llama_context) -> i32;
            fn llama_kv_cache_clear(ctx: *mut llama_context);
            fn llama_kv_cache_seq_rm(ctx: *mut llama_context, seq_id: llama_seq_id, p0: llama_pos, p1: llama_pos) -> bool;
            fn llama_kv_cache_seq_cp(ctx: *mut llama_context, seq_id_src: llama_seq_id, seq_id_dst: llama_seq_id, p0: llama_pos, p1: llama_pos);
            fn llama_kv_cache_seq_keep(ctx: *mut llama_context, seq_id: llama_seq_id);
            fn llama_kv_cache_seq_add(ctx: *mut llama_context, seq_id: llama_seq_id, p0: llama_pos, p1: llama_pos, delta: llama_pos);
            fn llama_kv_cache_seq_div(ctx: *mut llama_context, seq_id: llama_seq_id, p0: llama_pos, p1: llama_pos, d: c_int);
            fn llama_kv_cache_seq_pos_max(ctx: *mut llama_context, seq_id: llama_seq_id) -> llama_pos;
            fn llama_kv_cache_defrag(ctx: *mut llama_context);
            fn llama_kv_cache_update(ctx: *mut llama_context);
            fn llama_state_get_size(ctx: *mut llama_context) -> usize;
            fn llama_state_get_data(ctx: *mut llama_context, dst: *mut u8, size: usize) -> usize;
            fn llama_state_set_data(ctx: *mut llama_context, src: *const u8, size: usize) -> usize;
            fn llama_state_load_file(ctx: *mut llama_context, path_session: *const c_char, tokens_out: *mut llama_token, n_token_capacity: usize, n_token_count_out: *mut usize) -> bool;
            fn llama_state_save_file(ctx: *mut llama_context, path_session: *const c_char, tokens: *const llama_token, n_token_count: usize) -> bool;
            fn llama_state_seq_get_size(ctx: *mut llama_context, seq_id: llama_seq_id) -> usize;
            fn llama_state_seq_get_data(ctx: *mut llama_context, dst: *mut u8, size: usize, seq_id: llama_seq_id) -> usize;
            fn llama_state_seq_set_data(ctx: *mut llama_context, src: *const u8, size: usize, dest_seq_id: llama_seq_id) -> usize;
            fn llama_state_seq_save_file(ctx: *mut llama_context, filepath: *const c_char, seq_id: llama_seq_id, tokens: *const llama_token, n_token_count: usize) -> usize;
            fn llama_state_seq_load_file(ctx: *mut llama_context, filepath: *const c_char, dest_seq_id: llama_seq_id, tokens_out: *mut llama_token, n_token_capacity: usize, n_token_count_out: *mut usize) -> usize;
            fn llama_batch_get_one(tokens: *mut llama_token, n_tokens: i32, pos_0: llama_pos, seq_id: llama_seq_id) -> llama_batch;
            fn llama_batch_init(n_tokens: i32, embd: i32, n_seq_max: i32) -> llama_batch;
            fn llama_batch_free(batch: llama_batch);
            fn llama_encode(ctx: *mut llama_context, batch: llama_batch) -> i32;
            fn llama_decode(ctx: *mut llama_context, batch: llama_batch) -> i32;
            fn llama_set_n_threads(ctx: *mut llama_context, n_threads: i32, n_threads_batch: i32);
            fn llama_n_threads(ctx: *mut llama_context) -> i32;
            fn llama_n_threads_batch(ctx: *mut llama_context) -> i32;
            fn llama_set_embeddings(ctx: *mut llama_context, embeddings: bool);
            fn llama_set_causal_attn(ctx: *mut llama_context, causal_attn: bool);
            fn llama_set_abort_callback(ctx: *mut llama_context, abort_callback: ggml_abort_callback, abort_callback_data: *mut c_void);
            fn llama_synchronize(ctx: *mut llama_context);
            fn llama_get_logits(ctx: *mut llama_context) -> *mut f32;
            fn llama_get_logits_ith(ctx: *mut llama_context, i: i32) -> *mut f32;
            fn llama_get_embeddings(ctx: *mut llama_context) -> *mut f32;
            fn llama_get_embeddings_ith(ctx: *mut llama_context, i: i32) -> *mut f32;
            fn llama_get_embeddings_seq(ctx: *mut llama_context, seq_id: llama_seq_id) -> *mut f32;
            fn llama_token_get_text(model: *const llama_model, token: llama_token) -> *const c_char;
            fn llama_token_get_score(model: *const llama_model, token: llama_token) -> f32;
            fn llama_token_get_attr(model: *const llama_model, token: llama_token) -> llama_token_attr;
            fn llama_token_is_eog(model: *const llama_model, token: llama_token) -> bool;
            fn llama_token_is_control(model: *const llama_model, token: llama_token) -> bool;
            fn llama_token_bos(model: *const llama_model) -> llama_token;
            fn llama_token_eos(model: *const llama_model) -> llama_token;
            fn llama_token_eot(model: *const llama_model) -> llama_token;
            fn llama_token_cls(model: *const llama_model) -> llama_token;
            fn llama_token_sep(model: *const llama_model) -> llama_token;
            fn llama_token_nl(model: *const llama_model) -> llama_token;
            fn llama_token_pad(model: *const llama_model) -> llama_token;
            fn llama_add_bos_token(model: *const llama_model) -> bool;
            fn llama_add_eos_token(model: *const llama_model) -> bool;
            fn llama_token_fim_pre(model: *const llama_model) -> llama_token;
            fn llama_token_fim_suf(model: *const llama_model) -> llama_token;
            fn llama_token_fim_mid(model: *const llama_model) -> llama_token;
            fn llama_token_fim_pad(model: *const llama_model) -> llama_token;
            fn llama_token_fim_rep(model: *const llama_model) -> llama_token;
            fn llama_token_fim_sep(model: *const llama_model) -> llama_token;
            fn llama_tokenize(model: *const llama_model, text: *const c_char, text_len: i32, tokens: *mut llama_token, n_tokens_max: i32, add_special: bool, parse_special: bool) -> i32;
            fn llama_token_to_piece(model: *const llama_model, token: llama_token, buf: *mut c_char, length: i32, lstrip: i32, special: bool) -> i32;
            fn llama_detokenize(model: *const llama_model, tokens: *const llama_token, n_tokens: i32, text: *mut c_char, text_len_max: i32, remove_special: bool, unparse_special: bool) -> i32;
            fn llama_chat_apply_template(model: *const llama_model, tmpl: *const c_char, chat: *const llama_chat_message, n_msg: usize, add_ass: bool, buf: *mut c_char, length: i32) -> i32;
            fn llama_sampler_name(smpl: *const llama_sampler) -> *const c_char;
            fn llama_sampler_accept(smpl: *mut llama_sampler, token: llama_token);
            fn llama_sampler_apply(smpl: *mut llama_sampler, cur_p: *mut llama_token_data_array);
            fn llama_sampler_reset(smpl: *mut llama_sampler);
            fn llama_sampler_clone(smpl: *const llama_sampler) -> *mut llama_sampler;
            fn llama_sampler_free(smpl: *mut llama_sampler);
            fn llama_sampler_chain_init(params: llama_sampler_chain_params) -> *mut llama_sampler;
            fn llama_sampler_chain_add(chain: *mut llama_sampler, smpl: *mut llama_sampler);
            fn llama_sampler_chain_get(chain: *const llama_sampler, i: i32) -> *mut llama_sampler;
            fn llama_sampler_chain_n(chain: *const llama_sampler) -> c_int;
            fn llama_sampler_chain_remove(chain: *mut llama_sampler, i: i32) -> *mut llama_sampler;
            fn llama_sampler_init_greedy() -> *mut llama_sampler;
            fn llama_sampler_init_dist(seed: u32) -> *mut llama_sampler;
            fn llama_sampler_init_softmax() -> *mut llama_sampler;
            fn llama_sampler_init_top_k(k: i32) -> *mut llama_sampler;
            fn llama_sampler_init_top_p(p: f32, min_keep: usize) -> *mut llama_sampler;
            fn llama_sampler_init_min_p(p: f32, min_keep: usize) -> *mut llama_sampler;
            fn llama_sampler_init_tail_free(z: f32, min_keep: usize) -> *mut llama_sampler;
            fn llama_sampler_init_typical(p: f32, min_keep: usize) -> *mut llama_sampler;
            fn llama_sampler_init_temp(t: f32) -> *mut llama_sampler;
            fn llama_sampler_init_temp_ext(t: f32, delta: f32, exponent: f32) -> *mut llama_sampler;
            fn llama_sampler_init_mirostat(n_vocab: i32, seed: u32, tau: f32, eta: f32, m: i32) -> *mut llama_sampler;
            fn llama_sampler_init_mirostat_v2(seed: u32, tau: f32, eta: f32) -> *mut llama_sampler;
            fn llama_sampler_init_grammar(model: *const llama_model, grammar_str: *const c_char, grammar_root: *const c_char) -> *mut llama_sampler;
            fn llama_sampler_init_penalties(n_vocab: i32, special_eos_id: llama_token, linefeed_id: llama_token, penalty_last_n: i32, penalty_repeat: f32, penalty_freq: f32, penalty_present: f32, penalize_nl: bool, ignore_eos: bool) -> *mut llama_sampler;
            fn llama_sampler_init_logit_bias(n_vocab: i32, n_logit_bias: i32, logit_bias: *const llama_logit_bias) -> *mut llama_sampler;
            fn llama_sampler_get_seed(smpl: *const llama_sampler) -> u32;
            fn llama_sampler_sample(smpl: *mut llama_sampler, ctx: *mut llama_context, idx: i32) -> llama_token;
            fn llama_split_path(split_path: *mut c_char, maxlen: usize, path_prefix: *const c_char, split_no: c_int, split_count: c_int) -> c_int;
            fn llama_split_prefix(split_prefix: *mut c_char, maxlen: usize, split_path: *const c_char, split_no: c_int, split_count: c_int) -> c_int;
            fn llama_print_system_info() -> *const c_char;
            fn llama_log_set(log_callback: ggml_log_callback, user_data: *mut c_void);
            fn llama_perf_context(ctx: *const llama_context) -> llama_perf_context_data;
            fn llama_perf_context_print(ctx: *const llama_context);
            fn llama_perf_context_reset(ctx: *mut llama_context);
            fn llama_perf_sampler(chain: *const llama_sampler) -> llama_perf_sampler_data;
            fn llama_perf_sampler_print(chain: *const llama_sampler);
            fn llama_perf_sampler_reset(chain: *mut llama_sampler);
            fn llama_perf_dump_yaml(stream: *mut FILE, ctx: *const llama_context);
        }
        optional {
            fn llama_get_state_size(ctx: *mut llama_context) -> usize;
            fn llama_copy_state_data(ctx: *mut llama_context, dst: *mut u8) -> usize;
            fn llama_set_state_data(ctx: *mut llama_context, src: *const u8) -> usize;
            fn llama_load_session_file(ctx: *mut llama_context, path_session: *const c_char, tokens_out: *mut llama_token, n_token_capacity: usize, n_token_count_out: *mut usize) -> bool;
            fn llama_save_session_file(ctx: *mut llama_context, path_session: *const c_char, tokens: *const llama_token, n_token_count: usize) -> bool;
            fn llama_token_prefix(model: *const llama_model) -> llama_token;
            fn llama_token_middle(model: *const llama_model) -> llama_token;
            fn llama_token_suffix(model: *const llama_model) -> llama_token;
        }
    }
}
