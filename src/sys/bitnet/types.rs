//! `repr(C)` mirrors of the BitNet fork's llama.h types (and the ggml types it and the loader use).
//!
//! Field names are the C names. Every struct's size, alignment and field offsets are checked
//! against the fork's header by `tests/layout.rs`, which compiles a C probe.
//!
//! Many names are shared with [`crate::sys::upstream`] but are different types: the fork's
//! `llama_batch`, `llama_model_params`, `llama_context_params`, `llama_model_quantize_params`,
//! `llama_perf_context_data`, `ggml_backend_dev_caps` and `ggml_backend_dev_props` have other
//! fields or layouts, and several enums give other meanings to the same numbers
//! (`llama_ftype` 38..40, `ggml_log_level`, `ggml_backend_dev_type`).
#![allow(non_camel_case_types, non_upper_case_globals)]

use std::ffi::{c_char, c_int, c_void};

// ---------------------------------------------------------------------------------------------
// Opaque handles.

macro_rules! opaque {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
            _not_send_sync_unpin: ::core::marker::PhantomData<(*mut u8, ::core::marker::PhantomPinned)>,
        }
    )*};
}

opaque! {
    /// `struct llama_model` (opaque).
    llama_model;
    /// `struct llama_context` (opaque).
    llama_context;
    /// `struct llama_lora_adapter` (opaque; upstream renamed it `llama_adapter_lora`).
    llama_lora_adapter;
    /// `struct ggml_tensor` (opaque here).
    ggml_tensor;
    /// `struct ggml_threadpool` (opaque).
    ggml_threadpool;
    /// `struct gguf_context` (opaque).
    gguf_context;
    /// `struct ggml_backend_buffer_type` (opaque).
    ggml_backend_buffer_type;
    /// `struct ggml_backend_device` (opaque).
    ggml_backend_device;
    /// `struct ggml_backend_reg` (opaque).
    ggml_backend_reg;
    /// `struct ggml_backend` (opaque).
    ggml_backend;
    /// C's `FILE` (opaque).
    FILE;
}

/// `llama_pos`
pub type llama_pos = i32;
/// `llama_token`
pub type llama_token = i32;
/// `llama_seq_id`
pub type llama_seq_id = i32;
/// `llama_sampler_context_t`
pub type llama_sampler_context_t = *mut c_void;
/// `ggml_threadpool_t`
pub type ggml_threadpool_t = *mut ggml_threadpool;
/// `ggml_backend_buffer_type_t`
pub type ggml_backend_buffer_type_t = *mut ggml_backend_buffer_type;
/// `ggml_backend_dev_t`
pub type ggml_backend_dev_t = *mut ggml_backend_device;
/// `ggml_backend_reg_t`
pub type ggml_backend_reg_t = *mut ggml_backend_reg;
/// `ggml_backend_t`
pub type ggml_backend_t = *mut ggml_backend;

/// `LLAMA_DEFAULT_SEED`
pub const LLAMA_DEFAULT_SEED: u32 = 0xFFFF_FFFF;
/// `LLAMA_TOKEN_NULL`
pub const LLAMA_TOKEN_NULL: llama_token = -1;
/// `LLAMA_FILE_MAGIC_GGLA` (`'ggla'`)
pub const LLAMA_FILE_MAGIC_GGLA: u32 = 0x6767_6c61;
/// `LLAMA_FILE_MAGIC_GGSN` (`'ggsn'`)
pub const LLAMA_FILE_MAGIC_GGSN: u32 = 0x6767_736e;
/// `LLAMA_FILE_MAGIC_GGSQ` (`'ggsq'`)
pub const LLAMA_FILE_MAGIC_GGSQ: u32 = 0x6767_7371;
/// `LLAMA_SESSION_MAGIC`
pub const LLAMA_SESSION_MAGIC: u32 = LLAMA_FILE_MAGIC_GGSN;
/// `LLAMA_SESSION_VERSION` (upstream: 11)
pub const LLAMA_SESSION_VERSION: u32 = 9;
/// `LLAMA_STATE_SEQ_MAGIC`
pub const LLAMA_STATE_SEQ_MAGIC: u32 = LLAMA_FILE_MAGIC_GGSQ;
/// `LLAMA_STATE_SEQ_VERSION` (upstream: 4)
pub const LLAMA_STATE_SEQ_VERSION: u32 = 2;
/// `GGML_ROPE_TYPE_NEOX` (ggml.h; the value of `LLAMA_ROPE_TYPE_NEOX`)
pub const GGML_ROPE_TYPE_NEOX: c_int = 2;

// ---------------------------------------------------------------------------------------------
// Enums: C enums are `int`-sized; each is a type alias plus its named values.

macro_rules! c_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:expr,)* }) => {
        $(#[$doc])*
        pub type $name = c_int;
        $( $(#[$vdoc])* #[doc = concat!("`", stringify!($variant), "`")] pub const $variant: $name = $value; )*
    };
}

c_enum!(/// `enum llama_vocab_type`
llama_vocab_type {
    LLAMA_VOCAB_TYPE_NONE = 0, LLAMA_VOCAB_TYPE_SPM = 1, LLAMA_VOCAB_TYPE_BPE = 2,
    LLAMA_VOCAB_TYPE_WPM = 3, LLAMA_VOCAB_TYPE_UGM = 4, LLAMA_VOCAB_TYPE_RWKV = 5,
});
c_enum!(/// `enum llama_vocab_pre_type` (pre-tokenization types; upstream no longer declares it in
/// llama.h)
llama_vocab_pre_type {
    LLAMA_VOCAB_PRE_TYPE_DEFAULT = 0, LLAMA_VOCAB_PRE_TYPE_LLAMA3 = 1,
    LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM = 2, LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_CODER = 3,
    LLAMA_VOCAB_PRE_TYPE_FALCON = 4, LLAMA_VOCAB_PRE_TYPE_MPT = 5,
    LLAMA_VOCAB_PRE_TYPE_STARCODER = 6, LLAMA_VOCAB_PRE_TYPE_GPT2 = 7,
    LLAMA_VOCAB_PRE_TYPE_REFACT = 8, LLAMA_VOCAB_PRE_TYPE_COMMAND_R = 9,
    LLAMA_VOCAB_PRE_TYPE_STABLELM2 = 10, LLAMA_VOCAB_PRE_TYPE_QWEN2 = 11,
    LLAMA_VOCAB_PRE_TYPE_OLMO = 12, LLAMA_VOCAB_PRE_TYPE_DBRX = 13,
    LLAMA_VOCAB_PRE_TYPE_SMAUG = 14, LLAMA_VOCAB_PRE_TYPE_PORO = 15,
    LLAMA_VOCAB_PRE_TYPE_CHATGLM3 = 16, LLAMA_VOCAB_PRE_TYPE_CHATGLM4 = 17,
    LLAMA_VOCAB_PRE_TYPE_VIKING = 18, LLAMA_VOCAB_PRE_TYPE_JAIS = 19,
    LLAMA_VOCAB_PRE_TYPE_TEKKEN = 20, LLAMA_VOCAB_PRE_TYPE_SMOLLM = 21,
    LLAMA_VOCAB_PRE_TYPE_CODESHELL = 22, LLAMA_VOCAB_PRE_TYPE_BLOOM = 23,
    LLAMA_VOCAB_PRE_TYPE_GPT3_FINNISH = 24, LLAMA_VOCAB_PRE_TYPE_EXAONE = 25,
    LLAMA_VOCAB_PRE_TYPE_CHAMELEON = 26, LLAMA_VOCAB_PRE_TYPE_FALCON_3 = 27,
});
c_enum!(/// `enum llama_rope_type`
llama_rope_type {
    LLAMA_ROPE_TYPE_NONE = -1, LLAMA_ROPE_TYPE_NORM = 0, LLAMA_ROPE_TYPE_NEOX = GGML_ROPE_TYPE_NEOX,
});
c_enum!(/// `enum llama_token_type`
llama_token_type {
    LLAMA_TOKEN_TYPE_UNDEFINED = 0, LLAMA_TOKEN_TYPE_NORMAL = 1, LLAMA_TOKEN_TYPE_UNKNOWN = 2,
    LLAMA_TOKEN_TYPE_CONTROL = 3, LLAMA_TOKEN_TYPE_USER_DEFINED = 4, LLAMA_TOKEN_TYPE_UNUSED = 5,
    LLAMA_TOKEN_TYPE_BYTE = 6,
});
c_enum!(/// `enum llama_token_attr` (bit flags)
llama_token_attr {
    LLAMA_TOKEN_ATTR_UNDEFINED = 0, LLAMA_TOKEN_ATTR_UNKNOWN = 1 << 0,
    LLAMA_TOKEN_ATTR_UNUSED = 1 << 1, LLAMA_TOKEN_ATTR_NORMAL = 1 << 2,
    LLAMA_TOKEN_ATTR_CONTROL = 1 << 3, LLAMA_TOKEN_ATTR_USER_DEFINED = 1 << 4,
    LLAMA_TOKEN_ATTR_BYTE = 1 << 5, LLAMA_TOKEN_ATTR_NORMALIZED = 1 << 6,
    LLAMA_TOKEN_ATTR_LSTRIP = 1 << 7, LLAMA_TOKEN_ATTR_RSTRIP = 1 << 8,
    LLAMA_TOKEN_ATTR_SINGLE_WORD = 1 << 9,
});
c_enum!(/// `enum llama_ftype`. 33..=35 are the (later removed) Q4_0 repackings; the fork's own
/// ternary types are 38 (TL1), 39 (TL2) and 40 (I2_S), numbers upstream gives to MXFP4_MOE, NVFP4
/// and Q1_0.
llama_ftype {
    LLAMA_FTYPE_ALL_F32 = 0, LLAMA_FTYPE_MOSTLY_F16 = 1, LLAMA_FTYPE_MOSTLY_Q4_0 = 2,
    LLAMA_FTYPE_MOSTLY_Q4_1 = 3, LLAMA_FTYPE_MOSTLY_Q8_0 = 7, LLAMA_FTYPE_MOSTLY_Q5_0 = 8,
    LLAMA_FTYPE_MOSTLY_Q5_1 = 9, LLAMA_FTYPE_MOSTLY_Q2_K = 10, LLAMA_FTYPE_MOSTLY_Q3_K_S = 11,
    LLAMA_FTYPE_MOSTLY_Q3_K_M = 12, LLAMA_FTYPE_MOSTLY_Q3_K_L = 13, LLAMA_FTYPE_MOSTLY_Q4_K_S = 14,
    LLAMA_FTYPE_MOSTLY_Q4_K_M = 15, LLAMA_FTYPE_MOSTLY_Q5_K_S = 16, LLAMA_FTYPE_MOSTLY_Q5_K_M = 17,
    LLAMA_FTYPE_MOSTLY_Q6_K = 18, LLAMA_FTYPE_MOSTLY_IQ2_XXS = 19, LLAMA_FTYPE_MOSTLY_IQ2_XS = 20,
    LLAMA_FTYPE_MOSTLY_Q2_K_S = 21, LLAMA_FTYPE_MOSTLY_IQ3_XS = 22, LLAMA_FTYPE_MOSTLY_IQ3_XXS = 23,
    LLAMA_FTYPE_MOSTLY_IQ1_S = 24, LLAMA_FTYPE_MOSTLY_IQ4_NL = 25, LLAMA_FTYPE_MOSTLY_IQ3_S = 26,
    LLAMA_FTYPE_MOSTLY_IQ3_M = 27, LLAMA_FTYPE_MOSTLY_IQ2_S = 28, LLAMA_FTYPE_MOSTLY_IQ2_M = 29,
    LLAMA_FTYPE_MOSTLY_IQ4_XS = 30, LLAMA_FTYPE_MOSTLY_IQ1_M = 31, LLAMA_FTYPE_MOSTLY_BF16 = 32,
    LLAMA_FTYPE_MOSTLY_Q4_0_4_4 = 33, LLAMA_FTYPE_MOSTLY_Q4_0_4_8 = 34,
    LLAMA_FTYPE_MOSTLY_Q4_0_8_8 = 35, LLAMA_FTYPE_MOSTLY_TQ1_0 = 36, LLAMA_FTYPE_MOSTLY_TQ2_0 = 37,
    LLAMA_FTYPE_MOSTLY_TL1 = 38, LLAMA_FTYPE_MOSTLY_TL2 = 39, LLAMA_FTYPE_MOSTLY_I2_S = 40,
    LLAMA_FTYPE_GUESSED = 1024,
});
c_enum!(/// `enum llama_rope_scaling_type` (no LONGROPE: MAX_VALUE is YARN)
llama_rope_scaling_type {
    LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED = -1, LLAMA_ROPE_SCALING_TYPE_NONE = 0,
    LLAMA_ROPE_SCALING_TYPE_LINEAR = 1, LLAMA_ROPE_SCALING_TYPE_YARN = 2,
    LLAMA_ROPE_SCALING_TYPE_MAX_VALUE = 2,
});
c_enum!(/// `enum llama_pooling_type`
llama_pooling_type {
    LLAMA_POOLING_TYPE_UNSPECIFIED = -1, LLAMA_POOLING_TYPE_NONE = 0, LLAMA_POOLING_TYPE_MEAN = 1,
    LLAMA_POOLING_TYPE_CLS = 2, LLAMA_POOLING_TYPE_LAST = 3, LLAMA_POOLING_TYPE_RANK = 4,
});
c_enum!(/// `enum llama_attention_type`
llama_attention_type {
    LLAMA_ATTENTION_TYPE_UNSPECIFIED = -1, LLAMA_ATTENTION_TYPE_CAUSAL = 0,
    LLAMA_ATTENTION_TYPE_NON_CAUSAL = 1,
});
c_enum!(/// `enum llama_split_mode`
llama_split_mode {
    LLAMA_SPLIT_MODE_NONE = 0, LLAMA_SPLIT_MODE_LAYER = 1, LLAMA_SPLIT_MODE_ROW = 2,
});
c_enum!(/// `enum llama_model_kv_override_type`
llama_model_kv_override_type {
    LLAMA_KV_OVERRIDE_TYPE_INT = 0, LLAMA_KV_OVERRIDE_TYPE_FLOAT = 1,
    LLAMA_KV_OVERRIDE_TYPE_BOOL = 2, LLAMA_KV_OVERRIDE_TYPE_STR = 3,
});
c_enum!(/// `enum ggml_type` (all of the fork's ggml.h, with its ternary types 36..=39: numbers that
/// upstream ggml leaves unused or gives to other types)
ggml_type {
    GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1, GGML_TYPE_Q4_0 = 2, GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6, GGML_TYPE_Q5_1 = 7, GGML_TYPE_Q8_0 = 8, GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10, GGML_TYPE_Q3_K = 11, GGML_TYPE_Q4_K = 12, GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14, GGML_TYPE_Q8_K = 15, GGML_TYPE_IQ2_XXS = 16, GGML_TYPE_IQ2_XS = 17,
    GGML_TYPE_IQ3_XXS = 18, GGML_TYPE_IQ1_S = 19, GGML_TYPE_IQ4_NL = 20, GGML_TYPE_IQ3_S = 21,
    GGML_TYPE_IQ2_S = 22, GGML_TYPE_IQ4_XS = 23, GGML_TYPE_I8 = 24, GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26, GGML_TYPE_I64 = 27, GGML_TYPE_F64 = 28, GGML_TYPE_IQ1_M = 29,
    GGML_TYPE_BF16 = 30, GGML_TYPE_Q4_0_4_4 = 31, GGML_TYPE_Q4_0_4_8 = 32,
    GGML_TYPE_Q4_0_8_8 = 33, GGML_TYPE_TQ1_0 = 34, GGML_TYPE_TQ2_0 = 35,
    /// 2-bit ternary weights with a per-tensor scale (BitNet b1.58 on x86 and ARM)
    GGML_TYPE_I2_S = 36,
    /// 8-bit activations with a per-row scale (the fork's internal vec-dot partner of I2_S)
    GGML_TYPE_I8_S = 37,
    /// lookup-table ternary kernels for ARM (preset-kernel builds only)
    GGML_TYPE_TL1 = 38,
    /// lookup-table ternary kernels for x86 (preset-kernel builds only)
    GGML_TYPE_TL2 = 39,
    GGML_TYPE_COUNT = 40,
});
c_enum!(/// `enum ggml_numa_strategy`
ggml_numa_strategy {
    GGML_NUMA_STRATEGY_DISABLED = 0, GGML_NUMA_STRATEGY_DISTRIBUTE = 1,
    GGML_NUMA_STRATEGY_ISOLATE = 2, GGML_NUMA_STRATEGY_NUMACTL = 3, GGML_NUMA_STRATEGY_MIRROR = 4,
    GGML_NUMA_STRATEGY_COUNT = 5,
});
c_enum!(/// `enum ggml_log_level`. The order differs from upstream's (there DEBUG is 1 and
/// INFO..ERROR are 2..4).
ggml_log_level {
    GGML_LOG_LEVEL_NONE = 0, GGML_LOG_LEVEL_INFO = 1, GGML_LOG_LEVEL_WARN = 2,
    GGML_LOG_LEVEL_ERROR = 3, GGML_LOG_LEVEL_DEBUG = 4, GGML_LOG_LEVEL_CONT = 5,
});
c_enum!(/// `enum ggml_backend_dev_type`. 2 and 3 mean other things than upstream's (IGPU, ACCEL).
ggml_backend_dev_type {
    GGML_BACKEND_DEVICE_TYPE_CPU = 0, GGML_BACKEND_DEVICE_TYPE_GPU = 1,
    GGML_BACKEND_DEVICE_TYPE_CPU_FULL = 2, GGML_BACKEND_DEVICE_TYPE_GPU_FULL = 3,
});

// ---------------------------------------------------------------------------------------------
// Callbacks.

/// `llama_progress_callback`: return `false` to cancel the load.
pub type llama_progress_callback =
    Option<unsafe extern "C" fn(progress: f32, user_data: *mut c_void) -> bool>;
/// `ggml_log_callback`
pub type ggml_log_callback = Option<
    unsafe extern "C" fn(level: ggml_log_level, text: *const c_char, user_data: *mut c_void),
>;
/// `ggml_abort_callback`: return `true` to abort the computation.
pub type ggml_abort_callback = Option<unsafe extern "C" fn(data: *mut c_void) -> bool>;
/// `ggml_backend_sched_eval_callback`
pub type ggml_backend_sched_eval_callback =
    Option<unsafe extern "C" fn(t: *mut ggml_tensor, ask: bool, user_data: *mut c_void) -> bool>;

// ---------------------------------------------------------------------------------------------
// Structs.

/// `llama_token_data`
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct llama_token_data {
    /// token id
    pub id: llama_token,
    /// log-odds of the token
    pub logit: f32,
    /// probability of the token
    pub p: f32,
}

/// `llama_token_data_array`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_token_data_array {
    /// candidates
    pub data: *mut llama_token_data,
    /// number of candidates
    pub size: usize,
    /// index in `data` of the selected candidate (not a token id)
    pub selected: i64,
    /// whether `data` is sorted by logit, descending
    pub sorted: bool,
}

/// `llama_batch`: upstream's fields plus the transition helpers `all_pos_0`, `all_pos_1` and
/// `all_seq_id` (used where `pos` / `seq_id` are NULL).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_batch {
    /// number of tokens (or embedding rows)
    pub n_tokens: i32,
    /// token ids (when `embd` is null)
    pub token: *mut llama_token,
    /// embeddings (when `token` is null)
    pub embd: *mut f32,
    /// positions
    pub pos: *mut llama_pos,
    /// number of sequence ids per token
    pub n_seq_id: *mut i32,
    /// sequence ids per token
    pub seq_id: *mut *mut llama_seq_id,
    /// whether to output logits for each token
    pub logits: *mut i8,
    /// `pos[i] = all_pos_0 + i*all_pos_1` when `pos` is NULL
    pub all_pos_0: llama_pos,
    /// see `all_pos_0`
    pub all_pos_1: llama_pos,
    /// the sequence of every token when `seq_id` is NULL
    pub all_seq_id: llama_seq_id,
}

/// The anonymous union of `llama_model_kv_override` (named `value` here; C has no name for it).
#[repr(C)]
#[derive(Clone, Copy)]
pub union llama_model_kv_override_value {
    /// `val_i64`
    pub val_i64: i64,
    /// `val_f64`
    pub val_f64: f64,
    /// `val_bool`
    pub val_bool: bool,
    /// `val_str`
    pub val_str: [c_char; 128],
}

/// `struct llama_model_kv_override`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct llama_model_kv_override {
    /// which member of `value` is set
    pub tag: llama_model_kv_override_type,
    /// NUL-terminated key
    pub key: [c_char; 128],
    /// the value (the C struct's anonymous union)
    pub value: llama_model_kv_override_value,
}

/// `struct llama_model_params`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_model_params {
    /// layers to store in VRAM
    pub n_gpu_layers: i32,
    /// how to split the model across GPUs
    pub split_mode: llama_split_mode,
    /// the GPU used when split_mode is NONE (or for small tensors with ROW)
    pub main_gpu: i32,
    /// proportion of the model per device (llama_max_devices() entries)
    pub tensor_split: *const f32,
    /// comma-separated list of RPC servers to offload to
    pub rpc_servers: *const c_char,
    /// progress callback; returning false cancels the load
    pub progress_callback: llama_progress_callback,
    /// user data for progress_callback
    pub progress_callback_user_data: *mut c_void,
    /// metadata overrides, terminated by an entry with an empty key
    pub kv_overrides: *const llama_model_kv_override,
    /// only load the vocabulary
    pub vocab_only: bool,
    /// use mmap if possible
    pub use_mmap: bool,
    /// force the model to stay in RAM
    pub use_mlock: bool,
    /// validate tensor data
    pub check_tensors: bool,
}

/// `struct llama_context_params`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_context_params {
    /// text context, 0 = from model
    pub n_ctx: u32,
    /// logical maximum batch size for llama_decode
    pub n_batch: u32,
    /// physical maximum batch size
    pub n_ubatch: u32,
    /// max number of sequences
    pub n_seq_max: u32,
    /// threads for generation
    pub n_threads: i32,
    /// threads for batch processing
    pub n_threads_batch: i32,
    /// RoPE scaling type
    pub rope_scaling_type: llama_rope_scaling_type,
    /// pooling of embeddings by sequence
    pub pooling_type: llama_pooling_type,
    /// attention type for embeddings
    pub attention_type: llama_attention_type,
    /// RoPE base frequency, 0 = from model
    pub rope_freq_base: f32,
    /// RoPE frequency scaling factor, 0 = from model
    pub rope_freq_scale: f32,
    /// YaRN extrapolation mix factor, negative = from model
    pub yarn_ext_factor: f32,
    /// YaRN magnitude scaling factor
    pub yarn_attn_factor: f32,
    /// YaRN low correction dim
    pub yarn_beta_fast: f32,
    /// YaRN high correction dim
    pub yarn_beta_slow: f32,
    /// YaRN original context size
    pub yarn_orig_ctx: u32,
    /// defragment the KV cache if holes/size > thold, < 0 disabled
    pub defrag_thold: f32,
    /// scheduler eval callback
    pub cb_eval: ggml_backend_sched_eval_callback,
    /// user data for cb_eval
    pub cb_eval_user_data: *mut c_void,
    /// K cache type
    pub type_k: ggml_type,
    /// V cache type
    pub type_v: ggml_type,
    /// compute all logits, not just the last one (deprecated: set llama_batch.logits)
    pub logits_all: bool,
    /// extract embeddings
    pub embeddings: bool,
    /// offload KQV ops to GPU
    pub offload_kqv: bool,
    /// use flash attention
    pub flash_attn: bool,
    /// disable performance timings
    pub no_perf: bool,
    /// abort callback
    pub abort_callback: ggml_abort_callback,
    /// user data for abort_callback
    pub abort_callback_data: *mut c_void,
}

/// `llama_model_quantize_params`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_model_quantize_params {
    /// threads for quantizing
    pub nthread: i32,
    /// target file type
    pub ftype: llama_ftype,
    /// output tensor type
    pub output_tensor_type: ggml_type,
    /// token embedding type
    pub token_embedding_type: ggml_type,
    /// allow requantizing
    pub allow_requantize: bool,
    /// quantize output.weight
    pub quantize_output_tensor: bool,
    /// only copy tensors
    pub only_copy: bool,
    /// quantize all tensors to the default type
    pub pure: bool,
    /// keep the same number of shards
    pub keep_split: bool,
    /// importance matrix (a C++ container, opaque here)
    pub imatrix: *mut c_void,
    /// metadata overrides (a C++ vector, opaque here)
    pub kv_overrides: *mut c_void,
}

/// `llama_logit_bias`
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct llama_logit_bias {
    /// token id
    pub token: llama_token,
    /// bias added to its logit
    pub bias: f32,
}

/// `llama_sampler_chain_params`
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct llama_sampler_chain_params {
    /// whether to skip performance timings
    pub no_perf: bool,
}

/// `llama_chat_message`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_chat_message {
    /// role, NUL-terminated
    pub role: *const c_char,
    /// content, NUL-terminated
    pub content: *const c_char,
}

/// `struct llama_kv_cache_view_cell`
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct llama_kv_cache_view_cell {
    /// the cell's position (negative when the cell is empty)
    pub pos: llama_pos,
}

/// `struct llama_kv_cache_view` (debugging view of the KV cache)
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_kv_cache_view {
    /// number of KV cache cells
    pub n_cells: i32,
    /// maximum sequences per cell shown in `cells_sequences`
    pub n_seq_max: i32,
    /// number of tokens in the cache
    pub token_count: i32,
    /// number of populated cells
    pub used_cells: i32,
    /// maximum contiguous empty slots
    pub max_contiguous: i32,
    /// start of the max_contiguous range (may be negative)
    pub max_contiguous_idx: i32,
    /// one entry per cell
    pub cells: *mut llama_kv_cache_view_cell,
    /// n_seq_max sequence ids per cell
    pub cells_sequences: *mut llama_seq_id,
}

/// `struct llama_sampler_i`: a sampler's virtual table.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_sampler_i {
    /// can be NULL
    pub name: Option<unsafe extern "C" fn(smpl: *const llama_sampler) -> *const c_char>,
    /// can be NULL
    pub accept: Option<unsafe extern "C" fn(smpl: *mut llama_sampler, token: llama_token)>,
    /// required
    pub apply:
        Option<unsafe extern "C" fn(smpl: *mut llama_sampler, cur_p: *mut llama_token_data_array)>,
    /// can be NULL
    pub reset: Option<unsafe extern "C" fn(smpl: *mut llama_sampler)>,
    /// can be NULL if ctx is NULL
    pub clone: Option<unsafe extern "C" fn(smpl: *const llama_sampler) -> *mut llama_sampler>,
    /// can be NULL if ctx is NULL
    pub free: Option<unsafe extern "C" fn(smpl: *mut llama_sampler)>,
}

/// `struct llama_sampler`
#[repr(C)]
#[derive(Debug)]
pub struct llama_sampler {
    /// virtual table
    pub iface: *mut llama_sampler_i,
    /// sampler state
    pub ctx: llama_sampler_context_t,
}

/// `struct llama_perf_context_data`
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct llama_perf_context_data {
    /// absolute start time
    pub t_start_ms: f64,
    /// time to load the model
    pub t_load_ms: f64,
    /// time to process the prompt
    pub t_p_eval_ms: f64,
    /// time to generate tokens
    pub t_eval_ms: f64,
    /// prompt tokens
    pub n_p_eval: i32,
    /// generated tokens
    pub n_eval: i32,
}

/// `struct llama_perf_sampler_data`
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct llama_perf_sampler_data {
    /// time spent sampling
    pub t_sample_ms: f64,
    /// sampled tokens
    pub n_sample: i32,
}

/// `struct ggml_backend_dev_caps`
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ggml_backend_dev_caps {
    /// asynchronous operations
    pub r#async: bool,
    /// pinned host buffer
    pub host_buffer: bool,
    /// buffers from host pointers
    pub buffer_from_host_ptr: bool,
    /// event synchronization
    pub events: bool,
}

/// `struct ggml_backend_dev_props`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ggml_backend_dev_props {
    /// device name
    pub name: *const c_char,
    /// device description
    pub description: *const c_char,
    /// free memory in bytes
    pub memory_free: usize,
    /// total memory in bytes
    pub memory_total: usize,
    /// device type
    pub r#type: ggml_backend_dev_type,
    /// capabilities
    pub caps: ggml_backend_dev_caps,
}
