//! `repr(C)` mirrors of the pinned llama.h types (and the ggml types it uses).
//!
//! Field names are the C names. Every struct's size, alignment and field offsets are checked
//! against the real header by `tests/layout.rs`, which compiles a C probe.
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
    /// `struct llama_vocab` (opaque).
    llama_vocab;
    /// `struct llama_model` (opaque).
    llama_model;
    /// `struct llama_context` (opaque).
    llama_context;
    /// `struct llama_adapter_lora` (opaque).
    llama_adapter_lora;
    /// `struct llama_memory_i` (opaque).
    llama_memory_i;
    /// `struct llama_batch_ext` (opaque).
    llama_batch_ext;
    /// `struct ggml_tensor` (opaque here).
    ggml_tensor;
    /// `struct ggml_context` (opaque).
    ggml_context;
    /// `struct ggml_cgraph` (opaque).
    ggml_cgraph;
    /// `struct gguf_context` (opaque).
    gguf_context;
    /// `struct ggml_threadpool` (opaque).
    ggml_threadpool;
    /// `struct ggml_backend_buffer_type` (opaque).
    ggml_backend_buffer_type;
    /// `struct ggml_backend_device` (opaque).
    ggml_backend_device;
    /// `struct ggml_backend_reg` (opaque).
    ggml_backend_reg;
    /// `struct ggml_backend` (opaque).
    ggml_backend;
    /// `struct ggml_opt_dataset` (opaque).
    ggml_opt_dataset;
    /// `struct ggml_opt_result` (opaque).
    ggml_opt_result;
    /// `struct ggml_opt_context` (opaque).
    ggml_opt_context;
    /// C's `FILE` (opaque).
    FILE;
}

/// `llama_memory_t`
pub type llama_memory_t = *mut llama_memory_i;
/// `llama_pos`
pub type llama_pos = i32;
/// `llama_token`
pub type llama_token = i32;
/// `llama_seq_id`
pub type llama_seq_id = i32;
/// `llama_state_seq_flags`
pub type llama_state_seq_flags = u32;
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
/// `ggml_opt_dataset_t`
pub type ggml_opt_dataset_t = *mut ggml_opt_dataset;
/// `ggml_opt_result_t`
pub type ggml_opt_result_t = *mut ggml_opt_result;
/// `ggml_opt_context_t`
pub type ggml_opt_context_t = *mut ggml_opt_context;

/// `LLAMA_DEFAULT_SEED`
pub const LLAMA_DEFAULT_SEED: u32 = 0xFFFF_FFFF;
/// `LLAMA_TOKEN_NULL`
pub const LLAMA_TOKEN_NULL: llama_token = -1;
/// `LLAMA_SESSION_VERSION`
pub const LLAMA_SESSION_VERSION: u32 = 11;
/// `LLAMA_STATE_SEQ_VERSION`
pub const LLAMA_STATE_SEQ_VERSION: u32 = 4;

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
    LLAMA_VOCAB_TYPE_PLAMO2 = 6, LLAMA_VOCAB_TYPE_TEST = 7,
});
c_enum!(/// `enum llama_rope_type`
llama_rope_type {
    LLAMA_ROPE_TYPE_NONE = -1, LLAMA_ROPE_TYPE_NORM = 0, LLAMA_ROPE_TYPE_NEOX = 2,
    LLAMA_ROPE_TYPE_MROPE = 8, LLAMA_ROPE_TYPE_IMROPE = 40, LLAMA_ROPE_TYPE_VISION = 24,
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
c_enum!(/// `enum llama_ftype`
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
    LLAMA_FTYPE_MOSTLY_TQ1_0 = 36, LLAMA_FTYPE_MOSTLY_TQ2_0 = 37,
    LLAMA_FTYPE_MOSTLY_MXFP4_MOE = 38, LLAMA_FTYPE_MOSTLY_NVFP4 = 39,
    LLAMA_FTYPE_MOSTLY_Q1_0 = 40, LLAMA_FTYPE_MOSTLY_Q2_0 = 41, LLAMA_FTYPE_GUESSED = 1024,
});
c_enum!(/// `enum llama_rope_scaling_type`
llama_rope_scaling_type {
    LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED = -1, LLAMA_ROPE_SCALING_TYPE_NONE = 0,
    LLAMA_ROPE_SCALING_TYPE_LINEAR = 1, LLAMA_ROPE_SCALING_TYPE_YARN = 2,
    LLAMA_ROPE_SCALING_TYPE_LONGROPE = 3, LLAMA_ROPE_SCALING_TYPE_MAX_VALUE = 3,
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
c_enum!(/// `enum llama_flash_attn_type`
llama_flash_attn_type {
    LLAMA_FLASH_ATTN_TYPE_AUTO = -1, LLAMA_FLASH_ATTN_TYPE_DISABLED = 0,
    LLAMA_FLASH_ATTN_TYPE_ENABLED = 1,
});
c_enum!(/// `enum llama_split_mode`
llama_split_mode {
    LLAMA_SPLIT_MODE_NONE = 0, LLAMA_SPLIT_MODE_LAYER = 1, LLAMA_SPLIT_MODE_ROW = 2,
    LLAMA_SPLIT_MODE_TENSOR = 3,
});
c_enum!(/// `enum llama_load_mode`
llama_load_mode {
    LLAMA_LOAD_MODE_AUTO = -1, LLAMA_LOAD_MODE_NONE = 0, LLAMA_LOAD_MODE_MMAP = 1,
    LLAMA_LOAD_MODE_MLOCK = 2, LLAMA_LOAD_MODE_MMAP_MLOCK = 3, LLAMA_LOAD_MODE_DIRECT_IO = 4,
});
c_enum!(/// `enum llama_lazy_mode`
llama_lazy_mode {
    LLAMA_LAZY_MODE_OFF = 0, LLAMA_LAZY_MODE_AUTO = 1, LLAMA_LAZY_MODE_ON = 2,
});
c_enum!(/// `enum llama_context_type`
llama_context_type { LLAMA_CONTEXT_TYPE_DEFAULT = 0, LLAMA_CONTEXT_TYPE_MTP = 1, });
c_enum!(/// `enum llama_model_kv_override_type`
llama_model_kv_override_type {
    LLAMA_KV_OVERRIDE_TYPE_INT = 0, LLAMA_KV_OVERRIDE_TYPE_FLOAT = 1,
    LLAMA_KV_OVERRIDE_TYPE_BOOL = 2, LLAMA_KV_OVERRIDE_TYPE_STR = 3,
});
c_enum!(/// `enum llama_model_meta_key`
llama_model_meta_key {
    LLAMA_MODEL_META_KEY_SAMPLING_SEQUENCE = 0, LLAMA_MODEL_META_KEY_SAMPLING_TOP_K = 1,
    LLAMA_MODEL_META_KEY_SAMPLING_TOP_P = 2, LLAMA_MODEL_META_KEY_SAMPLING_MIN_P = 3,
    LLAMA_MODEL_META_KEY_SAMPLING_XTC_PROBABILITY = 4, LLAMA_MODEL_META_KEY_SAMPLING_XTC_THRESHOLD = 5,
    LLAMA_MODEL_META_KEY_SAMPLING_TEMP = 6, LLAMA_MODEL_META_KEY_SAMPLING_PENALTY_LAST_N = 7,
    LLAMA_MODEL_META_KEY_SAMPLING_PENALTY_REPEAT = 8, LLAMA_MODEL_META_KEY_SAMPLING_MIROSTAT = 9,
    LLAMA_MODEL_META_KEY_SAMPLING_MIROSTAT_TAU = 10, LLAMA_MODEL_META_KEY_SAMPLING_MIROSTAT_ETA = 11,
});
c_enum!(/// `enum llama_process_type`
llama_process_type { LLAMA_PROCESS_TYPE_ENCODE = 0, LLAMA_PROCESS_TYPE_DECODE = 1, });
c_enum!(/// `enum ggml_type` (the values llama.h users need; see ggml.h for all)
ggml_type {
    GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1, GGML_TYPE_Q4_0 = 2, GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6, GGML_TYPE_Q5_1 = 7, GGML_TYPE_Q8_0 = 8, GGML_TYPE_BF16 = 30,
});
c_enum!(/// `enum ggml_numa_strategy`
ggml_numa_strategy {
    GGML_NUMA_STRATEGY_DISABLED = 0, GGML_NUMA_STRATEGY_DISTRIBUTE = 1,
    GGML_NUMA_STRATEGY_ISOLATE = 2, GGML_NUMA_STRATEGY_NUMACTL = 3, GGML_NUMA_STRATEGY_MIRROR = 4,
});
c_enum!(/// `enum ggml_log_level`
ggml_log_level {
    GGML_LOG_LEVEL_NONE = 0, GGML_LOG_LEVEL_DEBUG = 1, GGML_LOG_LEVEL_INFO = 2,
    GGML_LOG_LEVEL_WARN = 3, GGML_LOG_LEVEL_ERROR = 4, GGML_LOG_LEVEL_CONT = 5,
});
c_enum!(/// `enum ggml_backend_dev_type`
ggml_backend_dev_type {
    GGML_BACKEND_DEVICE_TYPE_CPU = 0, GGML_BACKEND_DEVICE_TYPE_GPU = 1,
    GGML_BACKEND_DEVICE_TYPE_IGPU = 2, GGML_BACKEND_DEVICE_TYPE_ACCEL = 3,
    GGML_BACKEND_DEVICE_TYPE_META = 4,
});
c_enum!(/// `enum ggml_opt_optimizer_type`
ggml_opt_optimizer_type {
    GGML_OPT_OPTIMIZER_TYPE_ADAMW = 0, GGML_OPT_OPTIMIZER_TYPE_SGD = 1,
    GGML_OPT_OPTIMIZER_TYPE_COUNT = 2,
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
/// `llama_model_set_tensor_data_t`
pub type llama_model_set_tensor_data_t =
    Option<unsafe extern "C" fn(tensor: *mut ggml_tensor, userdata: *mut c_void)>;
/// `llama_opt_param_filter`
pub type llama_opt_param_filter =
    Option<unsafe extern "C" fn(tensor: *const ggml_tensor, userdata: *mut c_void) -> bool>;
/// `ggml_opt_get_optimizer_params`
pub type ggml_opt_get_optimizer_params =
    Option<unsafe extern "C" fn(userdata: *mut c_void) -> ggml_opt_optimizer_params>;
/// `ggml_opt_epoch_callback`
pub type ggml_opt_epoch_callback = Option<
    unsafe extern "C" fn(
        train: bool,
        opt_ctx: ggml_opt_context_t,
        dataset: ggml_opt_dataset_t,
        result: ggml_opt_result_t,
        ibatch: i64,
        ibatch_max: i64,
        t_start_us: i64,
    ),
>;

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

/// `llama_batch`
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

/// `struct llama_model_tensor_buft_override`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_model_tensor_buft_override {
    /// regex of tensor names
    pub pattern: *const c_char,
    /// buffer type to place them in
    pub buft: ggml_backend_buffer_type_t,
}

/// `struct llama_model_params`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_model_params {
    /// NULL-terminated list of devices to use for offloading (NULL = all available)
    pub devices: *mut ggml_backend_dev_t,
    /// NULL-terminated list of buffer type overrides
    pub tensor_buft_overrides: *const llama_model_tensor_buft_override,
    /// layers to store in VRAM; negative = all
    pub n_gpu_layers: i32,
    /// how to split the model across GPUs
    pub split_mode: llama_split_mode,
    /// how to load the model
    pub load_mode: llama_load_mode,
    /// on-demand reading of tensors
    pub lazy_mode: llama_lazy_mode,
    /// the GPU used when split_mode is NONE
    pub main_gpu: i32,
    /// proportion of the model per device (llama_max_devices() entries)
    pub tensor_split: *const f32,
    /// progress callback; returning false cancels the load
    pub progress_callback: llama_progress_callback,
    /// user data for progress_callback
    pub progress_callback_user_data: *mut c_void,
    /// metadata overrides, terminated by an entry with an empty key
    pub kv_overrides: *const llama_model_kv_override,
    /// only load the vocabulary
    pub vocab_only: bool,
    /// validate tensor data
    pub check_tensors: bool,
    /// use extra buffer types (weight repacking)
    pub use_extra_bufts: bool,
    /// bypass host buffer
    pub no_host: bool,
    /// only load metadata and simulate allocations
    pub no_alloc: bool,
    /// load MTP layers
    pub load_mtp: bool,
}

/// `struct llama_sampler_seq_config`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_sampler_seq_config {
    /// sequence id
    pub seq_id: llama_seq_id,
    /// sampler for that sequence
    pub sampler: *mut llama_sampler,
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
    /// recurrent-state snapshots per sequence
    pub n_rs_seq: u32,
    /// max outputs in a ubatch (0 = n_batch)
    pub n_outputs_max: u32,
    /// max outputs per sequence
    pub n_outputs_max_per_seq: u32,
    /// threads for generation
    pub n_threads: i32,
    /// threads for batch processing
    pub n_threads_batch: i32,
    /// context type
    pub ctx_type: llama_context_type,
    /// RoPE scaling type
    pub rope_scaling_type: llama_rope_scaling_type,
    /// pooling of embeddings by sequence
    pub pooling_type: llama_pooling_type,
    /// attention type for embeddings
    pub attention_type: llama_attention_type,
    /// when to enable flash attention
    pub flash_attn_type: llama_flash_attn_type,
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
    /// deprecated
    pub defrag_thold: f32,
    /// scheduler eval callback
    pub cb_eval: ggml_backend_sched_eval_callback,
    /// user data for cb_eval
    pub cb_eval_user_data: *mut c_void,
    /// K cache type
    pub type_k: ggml_type,
    /// V cache type
    pub type_v: ggml_type,
    /// abort callback
    pub abort_callback: ggml_abort_callback,
    /// user data for abort_callback
    pub abort_callback_data: *mut c_void,
    /// extract embeddings
    pub embeddings: bool,
    /// offload KQV ops to GPU
    pub offload_kqv: bool,
    /// disable performance timings
    pub no_perf: bool,
    /// offload host tensor operations to device
    pub op_offload: bool,
    /// full-size SWA cache
    pub swa_full: bool,
    /// unified KV buffer across sequences
    pub kv_unified: bool,
    /// per-sequence backend samplers
    pub samplers: *mut llama_sampler_seq_config,
    /// number of entries in samplers
    pub n_samplers: usize,
    /// another context to share with
    pub ctx_other: *mut llama_context,
}

/// `struct llama_model_tensor_override`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_model_tensor_override {
    /// regex of tensor names
    pub pattern: *const c_char,
    /// type to quantize them to
    pub r#type: ggml_type,
}

/// `struct llama_model_imatrix_data`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_model_imatrix_data {
    /// tensor name
    pub name: *const c_char,
    /// importance values
    pub data: *const f32,
    /// number of values
    pub size: usize,
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
    /// only compute the final size
    pub dry_run: bool,
    /// importance matrix
    pub imatrix: *const llama_model_imatrix_data,
    /// metadata overrides
    pub kv_overrides: *const llama_model_kv_override,
    /// tensor type overrides
    pub tt_overrides: *const llama_model_tensor_override,
    /// layer indices to prune
    pub prune_layers: *const i32,
    /// max bytes of tensor rows in memory at once
    pub max_buf_size: usize,
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

/// `struct llama_embd`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_embd {
    /// rows of floats
    pub data: *const f32,
    /// number of rows
    pub n_rows: usize,
    /// size of one row
    pub n_embd: usize,
}

/// `struct llama_sampler_data`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_sampler_data {
    /// logits tensor
    pub logits: *mut ggml_tensor,
    /// probabilities tensor
    pub probs: *mut ggml_tensor,
    /// sampled tensor
    pub sampled: *mut ggml_tensor,
    /// candidates tensor
    pub candidates: *mut ggml_tensor,
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
    /// backend sampling: init
    pub backend_init: Option<
        unsafe extern "C" fn(
            smpl: *mut llama_sampler,
            buft: ggml_backend_buffer_type_t,
            n_outputs_max_per_seq: u32,
        ) -> bool,
    >,
    /// backend sampling: accept
    pub backend_accept: Option<
        unsafe extern "C" fn(
            smpl: *mut llama_sampler,
            ctx: *mut ggml_context,
            gf: *mut ggml_cgraph,
            selected_token: *mut ggml_tensor,
        ),
    >,
    /// backend sampling: apply
    pub backend_apply: Option<
        unsafe extern "C" fn(
            smpl: *mut llama_sampler,
            ctx: *mut ggml_context,
            gf: *mut ggml_cgraph,
            data: *mut llama_sampler_data,
        ),
    >,
    /// backend sampling: set input
    pub backend_set_input: Option<unsafe extern "C" fn(smpl: *mut llama_sampler)>,
    /// backend sampling: reset
    pub backend_reset: Option<unsafe extern "C" fn(smpl: *mut llama_sampler)>,
    /// copy state from src to dst
    pub copy_state:
        Option<unsafe extern "C" fn(src: *const llama_sampler, dst: *mut llama_sampler)>,
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
    /// graph reuses
    pub n_reused: i32,
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

/// The `adamw` member of `struct ggml_opt_optimizer_params`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ggml_opt_optimizer_params_adamw {
    /// learning rate
    pub alpha: f32,
    /// first momentum
    pub beta1: f32,
    /// second momentum
    pub beta2: f32,
    /// epsilon
    pub eps: f32,
    /// weight decay
    pub wd: f32,
}

/// The `sgd` member of `struct ggml_opt_optimizer_params`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ggml_opt_optimizer_params_sgd {
    /// learning rate
    pub alpha: f32,
    /// weight decay
    pub wd: f32,
}

/// `struct ggml_opt_optimizer_params`
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ggml_opt_optimizer_params {
    /// AdamW parameters
    pub adamw: ggml_opt_optimizer_params_adamw,
    /// SGD parameters
    pub sgd: ggml_opt_optimizer_params_sgd,
}

/// `struct llama_opt_params`
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct llama_opt_params {
    /// assumed context size after training
    pub n_ctx_train: u32,
    /// which tensors are trainable
    pub param_filter: llama_opt_param_filter,
    /// user data for param_filter
    pub param_filter_ud: *mut c_void,
    /// optimizer parameters callback
    pub get_opt_pars: ggml_opt_get_optimizer_params,
    /// user data for get_opt_pars
    pub get_opt_pars_ud: *mut c_void,
    /// optimizer type
    pub optimizer_type: ggml_opt_optimizer_type,
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
    /// mmap supported for loading
    pub mmap_support: bool,
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
    /// PCI bus id or NULL
    pub device_id: *const c_char,
    /// capabilities
    pub caps: ggml_backend_dev_caps,
}
