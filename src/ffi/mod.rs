//! The one internal, ABI-neutral way from the safe layer into llama.cpp.
//!
//! The safe types ([`crate::Model`], [`crate::Context`], [`crate::Sampler`], ...) never name a
//! `sys` generation: they hold the opaque handle types of this module, call the methods of
//! [`Api`], and hand Rust-side parameter structs to the converters in [`params`]. Only this
//! module (and the loader) know which ABI generation was loaded and how its C structs look, so
//! the second generation (the 2024 BitNet fork, [`bitnet`]) lives here beside upstream's
//! forwarding ([`api`]) without the call sites knowing which one runs.
//!
//! The module also owns the FFI idioms that every wrapper needs once (leaf modules with no
//! dependency on the rest of the crate, so the loader uses the same C-string rule):
//! - [`strings`]: C strings from text and paths (interior NUL refused, one rule for paths);
//! - [`buffers`]: the "call, learn the size, call again" loops (strings, tokens, bytes);
//! - [`codes`]: return codes mapped to typed errors.
//!
//! Every method of [`Api`] is `unsafe`: its caller states, in a `// SAFETY:` line, how the
//! C function's preconditions (documented per method where they go beyond "live handles") are
//! met. Those preconditions are checked in Rust before the call; this module does no checking.

mod api;
mod bitnet;
pub(crate) mod buffers;
pub(crate) mod codes;
pub(crate) mod params;
pub(crate) mod strings;

pub(crate) use api::{Api, Quirks, Tables};

/// Opaque handle types shared by every ABI generation (pointers to them are only passed back).
pub(crate) use crate::sys::upstream::{
    llama_context as RawContext, llama_memory_i as RawMemory, llama_model as RawModel,
    llama_sampler as RawSampler, llama_vocab as RawVocab,
};

/// One candidate of a sampling step, laid out as the C `llama_token_data` of every generation
/// (tests/layout.rs checks both).
pub(crate) use crate::sys::upstream::llama_token_data as TokenData;
/// The candidate array of a sampling step (`llama_token_data_array`).
pub(crate) use crate::sys::upstream::llama_token_data_array as TokenDataArray;

/// The C `llama_token` / `llama_pos` / `llama_seq_id` integer types.
pub(crate) type RawToken = i32;

/// The "no token" id of llama.h.
pub(crate) const TOKEN_NULL: RawToken = crate::sys::upstream::LLAMA_TOKEN_NULL;

/// One message as `llama_chat_apply_template` takes it (`role`, `content`: C strings).
pub(crate) use crate::sys::upstream::llama_chat_message as ChatMessageC;

/// A `(token, bias)` pair as `llama_sampler_init_logit_bias` takes it.
pub(crate) use crate::sys::upstream::llama_logit_bias as LogitBias;

/// The loaded generation's model file types (`llama_ftype`), for `Model::quantize`.
pub(crate) mod ftype {
    pub(crate) use crate::sys::upstream::{
        LLAMA_FTYPE_ALL_F32, LLAMA_FTYPE_MOSTLY_BF16, LLAMA_FTYPE_MOSTLY_F16,
        LLAMA_FTYPE_MOSTLY_Q3_K_M, LLAMA_FTYPE_MOSTLY_Q4_0, LLAMA_FTYPE_MOSTLY_Q4_1,
        LLAMA_FTYPE_MOSTLY_Q4_K_M, LLAMA_FTYPE_MOSTLY_Q4_K_S, LLAMA_FTYPE_MOSTLY_Q5_0,
        LLAMA_FTYPE_MOSTLY_Q5_1, LLAMA_FTYPE_MOSTLY_Q5_K_M, LLAMA_FTYPE_MOSTLY_Q5_K_S,
        LLAMA_FTYPE_MOSTLY_Q6_K, LLAMA_FTYPE_MOSTLY_Q8_0, LLAMA_FTYPE_MOSTLY_TQ1_0,
        LLAMA_FTYPE_MOSTLY_TQ2_0,
    };
}

/// A ggml device handle (`ggml_backend_dev_t`), for the device list of a model load.
pub(crate) use crate::sys::upstream::ggml_backend_dev_t as RawDevice;

/// A loaded LoRA adapter (opaque).
pub(crate) use crate::sys::upstream::llama_adapter_lora as RawAdapterLora;
