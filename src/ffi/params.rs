//! Rust-side parameters turned into the loaded generation's C structs. The pointers a C struct
//! holds point into the holder returned here, which must outlive the call it is passed to.

use std::ffi::{c_char, c_void};

use super::api::Tables;
use super::Api;
use crate::context::params::{CacheType, FlashAttention, Pooling};
use crate::model::params::{MetadataValue, SplitMode};
use crate::sys::bitnet as fork;
use crate::sys::upstream::{
    self as sys, llama_batch, llama_context_params, llama_model_kv_override,
    llama_model_kv_override_value, llama_model_params,
};

/// The loaded generation's `llama_model_params`.
#[derive(Clone, Copy)]
pub(crate) enum ModelParamsRaw {
    /// Upstream's struct.
    Upstream(llama_model_params),
    /// The fork's struct.
    Bitnet(fork::llama_model_params),
}

/// `llama_model_params` with the storage its pointers refer to.
pub(crate) struct ModelParamsC {
    raw: ModelParamsRaw,
    _devices: Vec<super::RawDevice>,
    _tensor_split: Vec<f32>,
    _overrides: Vec<llama_model_kv_override>,
}

/// What `Model::load` decided, ready to be laid out for C.
pub(crate) struct ModelLoadSettings<'a> {
    pub(crate) n_gpu_layers: i32,
    pub(crate) main_gpu: i32,
    pub(crate) split_mode: SplitMode,
    pub(crate) use_mmap: bool,
    pub(crate) use_mlock: bool,
    pub(crate) vocab_only: bool,
    pub(crate) check_tensors: bool,
    pub(crate) extra_buffer_types: bool,
    /// Already padded to `llama_max_devices()` entries (or empty).
    pub(crate) tensor_split: Vec<f32>,
    /// Already validated (key 1..=127 bytes, no NUL; strings at most 127 bytes).
    pub(crate) overrides: &'a [(String, MetadataValue)],
    /// The devices to offload to, in order (`None`: llama.cpp's default selection). Live
    /// device handles of the loaded build; laid out NULL-terminated.
    pub(crate) devices: Option<Vec<super::RawDevice>>,
}

impl ModelParamsC {
    /// Lays `settings` out over llama.cpp's defaults, as the generation of `api` declares them.
    ///
    /// # Errors
    /// `Unsupported` when the fork is asked for what its struct cannot say (an explicit device
    /// list).
    pub(crate) fn new(api: Api<'_>, settings: ModelLoadSettings<'_>) -> crate::Result<Self> {
        let tensor_split = settings.tensor_split;
        let overrides = if settings.overrides.is_empty() {
            Vec::new()
        } else {
            let mut list: Vec<_> = settings.overrides.iter().map(kv_override).collect();
            // Terminator: an entry with an empty key.
            list.push(empty_override());
            list
        };
        let mut devices = Vec::new();
        let raw = match api.tables {
            Tables::Upstream(t) => {
                // SAFETY: returns a struct by value; the ABI was verified at load.
                let mut raw = unsafe { (t.llama_model_default_params)() };
                raw.n_gpu_layers = settings.n_gpu_layers;
                raw.main_gpu = settings.main_gpu;
                raw.split_mode = match settings.split_mode {
                    SplitMode::None => sys::LLAMA_SPLIT_MODE_NONE,
                    SplitMode::Layer => sys::LLAMA_SPLIT_MODE_LAYER,
                    SplitMode::Row => sys::LLAMA_SPLIT_MODE_ROW,
                };
                raw.load_mode = match (settings.use_mmap, settings.use_mlock) {
                    (true, true) => sys::LLAMA_LOAD_MODE_MMAP_MLOCK,
                    (true, false) => sys::LLAMA_LOAD_MODE_MMAP,
                    (false, true) => sys::LLAMA_LOAD_MODE_MLOCK,
                    (false, false) => sys::LLAMA_LOAD_MODE_NONE,
                };
                raw.vocab_only = settings.vocab_only;
                raw.check_tensors = settings.check_tensors;
                raw.use_extra_bufts = settings.extra_buffer_types;
                if let Some(mut list) = settings.devices {
                    list.push(std::ptr::null_mut());
                    raw.devices = list.as_mut_ptr();
                    devices = list;
                }
                if !tensor_split.is_empty() {
                    raw.tensor_split = tensor_split.as_ptr();
                }
                if !overrides.is_empty() {
                    raw.kv_overrides = overrides.as_ptr();
                }
                ModelParamsRaw::Upstream(raw)
            }
            Tables::Bitnet(t) => {
                if settings.devices.is_some() {
                    return Err(super::api::unsupported("llama_model_params.devices"));
                }
                // SAFETY: returns a struct by value; the ABI was verified at load.
                let mut raw = unsafe { (t.llama_model_default_params)() };
                raw.n_gpu_layers = settings.n_gpu_layers;
                raw.main_gpu = settings.main_gpu;
                raw.split_mode = match settings.split_mode {
                    SplitMode::None => fork::LLAMA_SPLIT_MODE_NONE,
                    SplitMode::Layer => fork::LLAMA_SPLIT_MODE_LAYER,
                    SplitMode::Row => fork::LLAMA_SPLIT_MODE_ROW,
                };
                raw.use_mmap = settings.use_mmap;
                raw.use_mlock = settings.use_mlock;
                raw.vocab_only = settings.vocab_only;
                raw.check_tensors = settings.check_tensors;
                if !tensor_split.is_empty() {
                    raw.tensor_split = tensor_split.as_ptr();
                }
                if !overrides.is_empty() {
                    // The override struct is declared alike in both generations (checked by
                    // tests/layout.rs for each).
                    raw.kv_overrides = overrides.as_ptr().cast();
                }
                ModelParamsRaw::Bitnet(raw)
            }
        };
        Ok(ModelParamsC {
            raw,
            _devices: devices,
            _tensor_split: tensor_split,
            _overrides: overrides,
        })
    }

    /// Installs a progress callback.
    pub(crate) fn set_progress(
        &mut self,
        callback: unsafe extern "C" fn(f32, *mut c_void) -> bool,
        data: *mut c_void,
    ) {
        match &mut self.raw {
            ModelParamsRaw::Upstream(raw) => {
                raw.progress_callback = Some(callback);
                raw.progress_callback_user_data = data;
            }
            ModelParamsRaw::Bitnet(raw) => {
                raw.progress_callback = Some(callback);
                raw.progress_callback_user_data = data;
            }
        }
    }

    /// The struct to pass (valid while `self` lives).
    pub(crate) fn raw(&self) -> ModelParamsRaw {
        self.raw
    }
}

fn empty_override() -> llama_model_kv_override {
    llama_model_kv_override {
        tag: 0,
        key: [0; 128],
        value: llama_model_kv_override_value { val_i64: 0 },
    }
}

fn copy_into(dst: &mut [c_char; 128], src: &str) {
    for (d, s) in dst.iter_mut().zip(src.bytes().take(127)) {
        *d = s as c_char;
    }
}

fn kv_override((key, value): &(String, MetadataValue)) -> llama_model_kv_override {
    let mut entry = empty_override();
    copy_into(&mut entry.key, key);
    match value {
        MetadataValue::Int(v) => {
            entry.tag = sys::LLAMA_KV_OVERRIDE_TYPE_INT;
            entry.value.val_i64 = *v;
        }
        MetadataValue::Float(v) => {
            entry.tag = sys::LLAMA_KV_OVERRIDE_TYPE_FLOAT;
            entry.value.val_f64 = *v;
        }
        MetadataValue::Bool(v) => {
            entry.tag = sys::LLAMA_KV_OVERRIDE_TYPE_BOOL;
            entry.value.val_bool = *v;
        }
        MetadataValue::Str(s) => {
            entry.tag = sys::LLAMA_KV_OVERRIDE_TYPE_STR;
            let mut text = [0 as c_char; 128];
            copy_into(&mut text, s);
            entry.value.val_str = text;
        }
    }
    entry
}

/// What `Context::new` decided, ready to be laid out for C (every value validated).
#[derive(Debug, Clone)]
pub(crate) struct ContextSettings {
    pub(crate) n_ctx: u32,
    pub(crate) n_batch: u32,
    pub(crate) n_ubatch: u32,
    pub(crate) n_seq_max: u32,
    pub(crate) n_threads: i32,
    pub(crate) n_threads_batch: i32,
    pub(crate) flash_attention: Option<FlashAttention>,
    pub(crate) embeddings: Option<bool>,
    pub(crate) pooling: Option<Pooling>,
    pub(crate) rope_freq_base: Option<f32>,
    pub(crate) rope_freq_scale: Option<f32>,
    pub(crate) yarn_ext_factor: Option<f32>,
    pub(crate) yarn_orig_ctx: Option<u32>,
    pub(crate) type_k: Option<CacheType>,
    pub(crate) type_v: Option<CacheType>,
    pub(crate) offload_kqv: Option<bool>,
    pub(crate) op_offload: Option<bool>,
    pub(crate) no_perf: Option<bool>,
    pub(crate) kv_unified: Option<bool>,
}

/// llama.cpp's default context parameters (to read its defaults before deciding).
pub(crate) fn context_defaults(api: Api<'_>) -> ContextDefaults {
    match api.tables {
        Tables::Upstream(t) => {
            // SAFETY: returns a struct by value; ABI verified.
            let raw = unsafe { (t.llama_context_default_params)() };
            ContextDefaults {
                n_batch: raw.n_batch,
                n_ubatch: raw.n_ubatch,
                n_seq_max: raw.n_seq_max,
                kv_unified: raw.kv_unified,
                embeddings: raw.embeddings,
            }
        }
        Tables::Bitnet(t) => {
            // SAFETY: as above.
            let raw = unsafe { (t.llama_context_default_params)() };
            ContextDefaults {
                n_batch: raw.n_batch,
                n_ubatch: raw.n_ubatch,
                n_seq_max: raw.n_seq_max,
                // The fork's KV cache is always one buffer shared by every sequence.
                kv_unified: true,
                embeddings: raw.embeddings,
            }
        }
    }
}

/// The defaults `Context::new` needs to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ContextDefaults {
    pub(crate) n_batch: u32,
    pub(crate) n_ubatch: u32,
    pub(crate) n_seq_max: u32,
    pub(crate) kv_unified: bool,
    pub(crate) embeddings: bool,
}

/// The loaded generation's `llama_context_params`.
#[derive(Clone, Copy)]
pub(crate) enum ContextParamsRaw {
    /// Upstream's struct.
    Upstream(llama_context_params),
    /// The fork's struct.
    Bitnet(fork::llama_context_params),
}

/// `llama_context_params` for the loaded generation (it holds no pointers into Rust storage
/// but the abort callback's data, which the caller keeps alive).
pub(crate) struct ContextParamsC {
    raw: ContextParamsRaw,
}

impl ContextParamsC {
    /// The struct to pass.
    pub(crate) fn raw(&self) -> ContextParamsRaw {
        self.raw
    }
}

/// Sets the fields both generations' `llama_context_params` have, with the same names and
/// meanings (the pooling and cache-type enums have the same values in both), and the abort
/// callback.
macro_rules! set_shared_context_fields {
    ($raw:ident, $s:ident, $abort:ident, $abort_data:ident) => {{
        $raw.n_ctx = $s.n_ctx;
        $raw.n_batch = $s.n_batch;
        $raw.n_ubatch = $s.n_ubatch;
        $raw.n_seq_max = $s.n_seq_max;
        $raw.n_threads = $s.n_threads;
        $raw.n_threads_batch = $s.n_threads_batch;
        if let Some(v) = $s.embeddings {
            $raw.embeddings = v;
        }
        if let Some(v) = $s.pooling {
            $raw.pooling_type = pooling_to_c(v);
        }
        if let Some(v) = $s.rope_freq_base {
            $raw.rope_freq_base = v;
        }
        if let Some(v) = $s.rope_freq_scale {
            $raw.rope_freq_scale = v;
        }
        if let Some(v) = $s.yarn_ext_factor {
            $raw.yarn_ext_factor = v;
        }
        if let Some(v) = $s.yarn_orig_ctx {
            $raw.yarn_orig_ctx = v;
        }
        if let Some(v) = $s.type_k {
            $raw.type_k = cache_type_to_c(v);
        }
        if let Some(v) = $s.type_v {
            $raw.type_v = cache_type_to_c(v);
        }
        if let Some(v) = $s.offload_kqv {
            $raw.offload_kqv = v;
        }
        if let Some(v) = $s.no_perf {
            $raw.no_perf = v;
        }
        $raw.abort_callback = Some($abort);
        $raw.abort_callback_data = $abort_data;
    }};
}

/// Lays `settings` out over llama.cpp's defaults, with the abort callback installed.
pub(crate) fn context_params(
    api: Api<'_>,
    s: &ContextSettings,
    abort: unsafe extern "C" fn(*mut c_void) -> bool,
    abort_data: *mut c_void,
) -> ContextParamsC {
    let raw = match api.tables {
        Tables::Upstream(t) => {
            // SAFETY: returns a struct by value; ABI verified.
            let mut raw = unsafe { (t.llama_context_default_params)() };
            set_shared_context_fields!(raw, s, abort, abort_data);
            if let Some(v) = s.flash_attention {
                raw.flash_attn_type = match v {
                    FlashAttention::Auto => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
                    FlashAttention::Disabled => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
                    FlashAttention::Enabled => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
                };
            }
            if let Some(v) = s.op_offload {
                raw.op_offload = v;
            }
            if let Some(v) = s.kv_unified {
                raw.kv_unified = v;
            }
            ContextParamsRaw::Upstream(raw)
        }
        Tables::Bitnet(t) => {
            // SAFETY: as above.
            let mut raw = unsafe { (t.llama_context_default_params)() };
            set_shared_context_fields!(raw, s, abort, abort_data);
            if let Some(v) = s.flash_attention {
                // The fork has an on/off switch: "auto" keeps it off, its default.
                raw.flash_attn = matches!(v, FlashAttention::Enabled);
            }
            // op_offload and kv_unified have no counterpart: the fork offloads as it always
            // did and shares one KV buffer between sequences.
            ContextParamsRaw::Bitnet(raw)
        }
    };
    ContextParamsC { raw }
}

fn pooling_to_c(pooling: Pooling) -> sys::llama_pooling_type {
    match pooling {
        Pooling::Unspecified => sys::LLAMA_POOLING_TYPE_UNSPECIFIED,
        Pooling::None => sys::LLAMA_POOLING_TYPE_NONE,
        Pooling::Mean => sys::LLAMA_POOLING_TYPE_MEAN,
        Pooling::Cls => sys::LLAMA_POOLING_TYPE_CLS,
        Pooling::Last => sys::LLAMA_POOLING_TYPE_LAST,
        Pooling::Rank => sys::LLAMA_POOLING_TYPE_RANK,
    }
}

/// The pooling a context reports.
pub(crate) fn pooling_from_c(pooling: sys::llama_pooling_type) -> Pooling {
    match pooling {
        sys::LLAMA_POOLING_TYPE_NONE => Pooling::None,
        sys::LLAMA_POOLING_TYPE_MEAN => Pooling::Mean,
        sys::LLAMA_POOLING_TYPE_CLS => Pooling::Cls,
        sys::LLAMA_POOLING_TYPE_LAST => Pooling::Last,
        sys::LLAMA_POOLING_TYPE_RANK => Pooling::Rank,
        _ => Pooling::Unspecified,
    }
}

fn cache_type_to_c(cache: CacheType) -> sys::ggml_type {
    match cache {
        CacheType::F32 => sys::GGML_TYPE_F32,
        CacheType::F16 => sys::GGML_TYPE_F16,
        CacheType::Bf16 => sys::GGML_TYPE_BF16,
        CacheType::Q8_0 => sys::GGML_TYPE_Q8_0,
        CacheType::Q4_0 => sys::GGML_TYPE_Q4_0,
    }
}

/// Performance counters, generation-neutral.
pub(crate) fn perf(
    load_ms: f64,
    prompt_ms: f64,
    prompt_tokens: i32,
    eval_ms: f64,
    eval_tokens: i32,
) -> crate::context::Perf {
    crate::context::Perf {
        load_ms,
        prompt_ms,
        prompt_tokens,
        eval_ms,
        eval_tokens,
    }
}

/// A `llama_batch` view over Rust-owned arrays (valid while they are).
pub(crate) struct BatchArrays {
    pub(crate) n_tokens: i32,
    pub(crate) token: *mut i32,
    pub(crate) pos: *mut i32,
    pub(crate) n_seq_id: *mut i32,
    pub(crate) seq_id: *mut *mut i32,
    pub(crate) logits: *mut i8,
}

impl BatchArrays {
    /// The C struct.
    pub(crate) fn to_c(&self) -> llama_batch {
        llama_batch {
            n_tokens: self.n_tokens,
            token: self.token,
            embd: std::ptr::null_mut(),
            pos: self.pos,
            n_seq_id: self.n_seq_id,
            seq_id: self.seq_id,
            logits: self.logits,
        }
    }
}
