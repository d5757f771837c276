//! The BitNet fork's ABI generation: Microsoft's bitnet.cpp (October 2024), whose vendored
//! llama.cpp (build ~3947) has the old llama.h, as patched in the source of the registry crate
//! `bitnet-cpp-sys = "=0.0.5"`.
//!
//! Its llama.h is older than [`crate::sys::upstream`]'s: the same names often stand for other
//! layouts (see [`types`]), and many functions have other names or signatures. The fork builds
//! one `libllama` and one `libggml` (no `libggml-base`, no loadable backends), and neither has a
//! version function: [`FORK_VERSION`] is what manifests record instead, and the symbol
//! fingerprints below identify a build.

pub mod ggml;
pub mod llama;
pub mod types;

pub use ggml::GgmlFunctions;
pub use llama::LlamaFunctions;
pub use types::*;

/// The version manifests record for the fork (its libraries have no version function).
pub const FORK_VERSION: &str = "bitnet-b3947";
/// The source the tables mirror.
pub const SOURCE: &str = "bitnet-cpp-sys 0.0.5";

/// `libllama` symbols of the fork's generation that the pinned upstream llama.h no longer has:
/// a fork build exports all of them. `llama_sampler_init_softmax` also dates the build after the
/// September 2024 sampling rework.
///
/// Deprecated names upstream still exports (`llama_load_model_from_file`,
/// `llama_new_context_with_model`, `llama_n_vocab`, ...) are left out: they tell nothing apart.
/// No `libllama` symbol separates the fork from a plain llama.cpp build of the same weeks; the
/// fork's ggml types do ([`GGML_PRESENT_MARKERS`]).
pub const PRESENT_MARKERS: &[&str] = &[
    "llama_kv_cache_clear",
    "llama_kv_cache_view_init",
    "llama_lora_adapter_init",
    "llama_control_vector_apply",
    "llama_get_model_tensor",
    "llama_sampler_init_softmax",
    "llama_sampler_init_tail_free",
    "llama_perf_dump_yaml",
];

/// `libllama` symbols of the pinned upstream generation that a fork build must not export. The
/// last two (added to llama.cpp in mid-October 2024, before `llama_batch` lost `all_pos_0`,
/// `all_pos_1` and `all_seq_id`) also reject plain llama.cpp builds whose `llama_batch` no
/// longer matches the fork's.
pub const ABSENT_MARKERS: &[&str] = &[
    "llama_version",
    "llama_model_load_from_file",
    "llama_init_from_model",
    "llama_model_get_vocab",
    "llama_vocab_n_tokens",
    "llama_get_memory",
    "llama_adapter_lora_init",
    "llama_sampler_init_infill",
    "llama_sampler_init_xtc",
];

/// `libggml` symbols of the fork's I2_S/I8_S kernels (`GGML_TYPE_I2_S` = 36, `GGML_TYPE_I8_S` =
/// 37), which no plain llama.cpp build has.
pub const GGML_PRESENT_MARKERS: &[&str] =
    &["quantize_i2_s", "ggml_vec_dot_i2_i8_s", "quantize_row_i8_s"];
