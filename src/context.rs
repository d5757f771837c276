//! [`Context`]: the state of one inference session (KV cache, logits) over a [`Model`].

use std::cell::Cell;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::batch::Batch;
use crate::error::{DecodeError, Error, Result};
use crate::model::Model;
use crate::sys::upstream::{self as sys, llama_context};
use crate::token::Token;

/// When to use flash attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashAttention {
    /// llama.cpp decides.
    Auto,
    /// Never.
    Disabled,
    /// Always.
    Enabled,
}

/// How embeddings are pooled per sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pooling {
    /// The model's default.
    Unspecified,
    /// No pooling: per-token embeddings.
    None,
    /// Mean over the sequence.
    Mean,
    /// The CLS token.
    Cls,
    /// The last token.
    Last,
    /// Reranking score.
    Rank,
}

/// K/V cache element types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheType {
    /// 32-bit float.
    F32,
    /// 16-bit float (llama.cpp's default).
    F16,
    /// bfloat16.
    Bf16,
    /// 8-bit quantized.
    Q8_0,
    /// 4-bit quantized.
    Q4_0,
}

impl CacheType {
    fn raw(self) -> sys::ggml_type {
        match self {
            CacheType::F32 => sys::GGML_TYPE_F32,
            CacheType::F16 => sys::GGML_TYPE_F16,
            CacheType::Bf16 => sys::GGML_TYPE_BF16,
            CacheType::Q8_0 => sys::GGML_TYPE_Q8_0,
            CacheType::Q4_0 => sys::GGML_TYPE_Q4_0,
        }
    }
}

/// Parameters for [`Context::new`]; `None` keeps llama.cpp's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextParams {
    /// Context size in tokens (`None`: the model's training context). Must not be 0.
    pub n_ctx: Option<u32>,
    /// Logical batch size: most tokens per `decode`.
    pub n_batch: Option<u32>,
    /// Physical batch size.
    pub n_ubatch: Option<u32>,
    /// Number of sequences.
    pub n_seq_max: Option<u32>,
    /// Threads for generation (default: the available cores).
    pub n_threads: Option<i32>,
    /// Threads for prompt processing (default: the available cores).
    pub n_threads_batch: Option<i32>,
    /// Flash attention.
    pub flash_attention: Option<FlashAttention>,
    /// Extract embeddings.
    pub embeddings: Option<bool>,
    /// Embedding pooling.
    pub pooling: Option<Pooling>,
    /// RoPE base frequency (0: from the model).
    pub rope_freq_base: Option<f32>,
    /// RoPE frequency scale (0: from the model).
    pub rope_freq_scale: Option<f32>,
    /// YaRN extrapolation mix factor (negative: from the model).
    pub yarn_ext_factor: Option<f32>,
    /// YaRN original context.
    pub yarn_orig_ctx: Option<u32>,
    /// K cache type.
    pub type_k: Option<CacheType>,
    /// V cache type.
    pub type_v: Option<CacheType>,
    /// Offload the KQV ops and KV cache to the GPU.
    pub offload_kqv: Option<bool>,
    /// Offload host tensor operations to the device.
    pub op_offload: Option<bool>,
    /// Skip performance counters.
    pub no_perf: Option<bool>,
}

impl ContextParams {
    /// Context size.
    pub fn with_n_ctx(mut self, n_ctx: u32) -> Self {
        self.n_ctx = Some(n_ctx);
        self
    }
    /// Logical batch size.
    pub fn with_n_batch(mut self, n_batch: u32) -> Self {
        self.n_batch = Some(n_batch);
        self
    }
    /// Threads for both generation and prompt processing.
    pub fn with_threads(mut self, threads: i32) -> Self {
        self.n_threads = Some(threads);
        self.n_threads_batch = Some(threads);
        self
    }
    /// Number of sequences.
    pub fn with_n_seq_max(mut self, n_seq_max: u32) -> Self {
        self.n_seq_max = Some(n_seq_max);
        self
    }
}

type AbortCallback = Box<dyn Fn() -> bool + Send + Sync>;

struct AbortState {
    cancelled: AtomicBool,
    callback: Mutex<Option<AbortCallback>>,
    panicked: AtomicBool,
}

unsafe extern "C" fn abort_trampoline(data: *mut c_void) -> bool {
    // SAFETY: `data` is the AbortState that the Context keeps alive (in an Arc) until after
    // llama_free; it is only read here.
    let state = unsafe { &*(data as *const AbortState) };
    if state.cancelled.load(Ordering::Relaxed) {
        return true;
    }
    let Ok(guard) = state.callback.try_lock() else {
        return false;
    };
    match guard.as_ref() {
        None => false,
        Some(callback) => match catch_unwind(AssertUnwindSafe(callback)) {
            Ok(abort) => abort,
            Err(_) => {
                state.panicked.store(true, Ordering::Relaxed);
                true
            }
        },
    }
}

/// Cancels a [`Context`]'s computation from any thread. Cheap to clone.
#[derive(Clone)]
pub struct CancelHandle {
    state: Arc<AbortState>,
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelHandle {
    /// Requests cancellation: a running decode aborts ([`DecodeError::Aborted`]) and a running
    /// generation stops with `StopReason::Cancelled`.
    pub fn cancel(&self) {
        self.state.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.state.cancelled.load(Ordering::Relaxed)
    }
}

/// Timing counters of a context.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Perf {
    /// Milliseconds spent loading.
    pub load_ms: f64,
    /// Milliseconds spent on prompt tokens.
    pub prompt_ms: f64,
    /// Prompt tokens processed.
    pub prompt_tokens: i32,
    /// Milliseconds spent generating.
    pub eval_ms: f64,
    /// Tokens generated (decoded one at a time).
    pub eval_tokens: i32,
}

/// An inference session over a [`Model`].
///
/// # Thread-safety
/// `Send` but not `Sync`: llama.cpp's context may be moved between threads but not used from
/// two at once. Cancel from another thread with [`Context::cancel_handle`].
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<gguf_loader::Context>();
/// ```
///
/// ```
/// fn movable_between_threads<T: Send>() {}
/// movable_between_threads::<gguf_loader::Context>();
/// fn shareable<T: Send + Sync + Clone>() {}
/// shareable::<gguf_loader::Model>();
/// shareable::<gguf_loader::loader::LlamaLibrary>();
/// ```
pub struct Context {
    model: Model,
    raw: NonNull<llama_context>,
    abort: Arc<AbortState>,
    n_ctx: u32,
    n_batch: u32,
    n_seq_max: u32,
    _not_sync: PhantomData<Cell<()>>,
}

// SAFETY: a llama_context may be used from any one thread at a time; `Context` is !Sync (the
// PhantomData<Cell>) and every method that touches the context takes `&mut self` or only reads
// immutable sizes, so it is never used from two threads at once.
unsafe impl Send for Context {}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("n_ctx", &self.n_ctx)
            .field("n_batch", &self.n_batch)
            .finish()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: created by llama_init_from_model, freed exactly once; the model outlives it
        // (held in `self.model`) and the abort state is dropped after this.
        unsafe { (self.model.library().llama().llama_free)(self.raw.as_ptr()) };
    }
}

impl Context {
    /// Creates a context.
    ///
    /// # Errors
    /// `InvalidArgument` for out-of-range parameters (checked before the C call); `Null` when
    /// llama.cpp cannot create it (e.g. out of memory).
    pub fn new(model: &Model, params: ContextParams) -> Result<Self> {
        let library = model.library();
        let llama = library.llama();
        // SAFETY: returns a struct by value; ABI verified.
        let mut raw = unsafe { (llama.llama_context_default_params)() };
        if params.n_ctx == Some(0) {
            return Err(Error::InvalidArgument {
                parameter: "n_ctx",
                reason:
                    "0 is not a context size (leave it None to use the model's training context)"
                        .into(),
            });
        }
        let n_ctx_train = u32::try_from(model.n_ctx_train().max(1)).unwrap_or(1);
        raw.n_ctx = params.n_ctx.unwrap_or(n_ctx_train);
        if let Some(v) = params.n_batch {
            raw.n_batch = v;
        }
        raw.n_batch = raw.n_batch.min(raw.n_ctx);
        if raw.n_batch == 0 {
            return Err(Error::InvalidArgument {
                parameter: "n_batch",
                reason: "must be at least 1".into(),
            });
        }
        if let Some(v) = params.n_ubatch {
            if v == 0 {
                return Err(Error::InvalidArgument {
                    parameter: "n_ubatch",
                    reason: "must be at least 1".into(),
                });
            }
            raw.n_ubatch = v;
        }
        raw.n_ubatch = raw.n_ubatch.min(raw.n_batch);
        // SAFETY: no arguments.
        let max_seq = unsafe { (llama.llama_max_parallel_sequences)() };
        if let Some(v) = params.n_seq_max {
            if v == 0 || v as usize > max_seq {
                return Err(Error::InvalidArgument {
                    parameter: "n_seq_max",
                    reason: format!("{v} must be 1..={max_seq}"),
                });
            }
            raw.n_seq_max = v;
        }
        for (name, threads) in [
            ("n_threads", params.n_threads),
            ("n_threads_batch", params.n_threads_batch),
        ] {
            if let Some(t) = threads {
                if t <= 0 {
                    return Err(Error::InvalidArgument {
                        parameter: name,
                        reason: format!("{t} must be at least 1"),
                    });
                }
            }
        }
        // Default: one thread per available core (llama.cpp's own default is a fixed 4, which
        // oversubscribes small machines: ggml's threads spin while they wait).
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get()) as i32;
        raw.n_threads = params.n_threads.unwrap_or(cores);
        raw.n_threads_batch = params.n_threads_batch.unwrap_or(cores);
        if let Some(v) = params.flash_attention {
            raw.flash_attn_type = match v {
                FlashAttention::Auto => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
                FlashAttention::Disabled => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
                FlashAttention::Enabled => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            };
        }
        if let Some(v) = params.embeddings {
            raw.embeddings = v;
        }
        if let Some(v) = params.pooling {
            raw.pooling_type = match v {
                Pooling::Unspecified => sys::LLAMA_POOLING_TYPE_UNSPECIFIED,
                Pooling::None => sys::LLAMA_POOLING_TYPE_NONE,
                Pooling::Mean => sys::LLAMA_POOLING_TYPE_MEAN,
                Pooling::Cls => sys::LLAMA_POOLING_TYPE_CLS,
                Pooling::Last => sys::LLAMA_POOLING_TYPE_LAST,
                Pooling::Rank => sys::LLAMA_POOLING_TYPE_RANK,
            };
        }
        for (name, value) in [
            ("rope_freq_base", params.rope_freq_base),
            ("rope_freq_scale", params.rope_freq_scale),
        ] {
            if let Some(v) = value {
                if !v.is_finite() || v < 0.0 {
                    return Err(Error::InvalidArgument {
                        parameter: name,
                        reason: format!("{v} must be finite and >= 0"),
                    });
                }
            }
        }
        if let Some(v) = params.rope_freq_base {
            raw.rope_freq_base = v;
        }
        if let Some(v) = params.rope_freq_scale {
            raw.rope_freq_scale = v;
        }
        if let Some(v) = params.yarn_ext_factor {
            raw.yarn_ext_factor = v;
        }
        if let Some(v) = params.yarn_orig_ctx {
            raw.yarn_orig_ctx = v;
        }
        if let Some(v) = params.type_k {
            raw.type_k = v.raw();
        }
        if let Some(v) = params.type_v {
            raw.type_v = v.raw();
        }
        if let Some(v) = params.offload_kqv {
            raw.offload_kqv = v;
        }
        if let Some(v) = params.op_offload {
            raw.op_offload = v;
        }
        if let Some(v) = params.no_perf {
            raw.no_perf = v;
        }
        let abort = Arc::new(AbortState {
            cancelled: AtomicBool::new(false),
            callback: Mutex::new(None),
            panicked: AtomicBool::new(false),
        });
        raw.abort_callback = Some(abort_trampoline);
        raw.abort_callback_data = Arc::as_ptr(&abort) as *mut c_void;
        // SAFETY: a live model; `raw` is llama.cpp's defaults with validated fields; the abort
        // state outlives the context (dropped after llama_free in Drop).
        let ctx = unsafe { (llama.llama_init_from_model)(model.raw(), raw) };
        let ctx = NonNull::new(ctx).ok_or(Error::Null {
            function: "llama_init_from_model",
            detail: format!(
                "n_ctx {} (out of memory or unsupported parameters; see the llama.cpp log)",
                raw.n_ctx
            ),
        })?;
        // SAFETY: a live context.
        let (n_ctx, n_batch, n_seq_max) = unsafe {
            (
                (llama.llama_n_ctx)(ctx.as_ptr()),
                (llama.llama_n_batch)(ctx.as_ptr()),
                (llama.llama_n_seq_max)(ctx.as_ptr()),
            )
        };
        Ok(Context {
            model: model.clone(),
            raw: ctx,
            abort,
            n_ctx,
            n_batch,
            n_seq_max,
            _not_sync: PhantomData,
        })
    }

    fn llama(&self) -> &sys::LlamaFunctions {
        self.model.library().llama()
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Context size in tokens.
    pub fn n_ctx(&self) -> u32 {
        self.n_ctx
    }

    /// Most tokens per decode.
    pub fn n_batch(&self) -> u32 {
        self.n_batch
    }

    /// Number of sequences.
    pub fn n_seq_max(&self) -> u32 {
        self.n_seq_max
    }

    /// A handle that cancels this context's computation from any thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle {
            state: self.abort.clone(),
        }
    }

    /// Clears a previous cancellation.
    pub fn reset_cancellation(&self) {
        self.abort.cancelled.store(false, Ordering::Relaxed);
    }

    /// Sets a callback polled during computation; returning `true` aborts it. A panic inside
    /// it is caught and aborts the computation ([`Error::CallbackPanicked`]).
    pub fn set_abort_callback(&mut self, callback: impl Fn() -> bool + Send + Sync + 'static) {
        *self
            .abort
            .callback
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Box::new(callback));
    }

    /// Changes the thread counts.
    pub fn set_threads(&mut self, n_threads: i32, n_threads_batch: i32) -> Result<()> {
        if n_threads <= 0 || n_threads_batch <= 0 {
            return Err(Error::InvalidArgument {
                parameter: "threads",
                reason: "must be at least 1".into(),
            });
        }
        // SAFETY: a live context, used from this thread only (&mut self).
        unsafe {
            (self.llama().llama_set_n_threads)(self.raw.as_ptr(), n_threads, n_threads_batch)
        };
        Ok(())
    }

    /// Thread counts (generation, batch).
    pub fn threads(&self) -> (i32, i32) {
        // SAFETY: a live context; reads two integers.
        unsafe {
            (
                (self.llama().llama_n_threads)(self.raw.as_ptr()),
                (self.llama().llama_n_threads_batch)(self.raw.as_ptr()),
            )
        }
    }

    fn check_batch(&self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Err(Error::InvalidArgument {
                parameter: "batch",
                reason: "is empty".into(),
            });
        }
        if batch.len() > self.n_batch as usize {
            return Err(Error::InvalidArgument {
                parameter: "batch",
                reason: format!("{} tokens exceed n_batch {}", batch.len(), self.n_batch),
            });
        }
        for token in batch.tokens() {
            self.model.check_token(token)?;
        }
        for i in 0..batch.len() {
            if let Some(bad) = batch
                .seq_ids(i)
                .iter()
                .find(|s| **s as u32 >= self.n_seq_max)
            {
                return Err(Error::InvalidArgument {
                    parameter: "seq_ids",
                    reason: format!("sequence id {bad} is beyond n_seq_max {}", self.n_seq_max),
                });
            }
        }
        Ok(())
    }

    fn finish_compute(&self, code: i32) -> Result<()> {
        if self.abort.panicked.swap(false, Ordering::Relaxed) {
            return Err(Error::CallbackPanicked { callback: "abort" });
        }
        if code == 0 {
            Ok(())
        } else {
            Err(Error::Decode(DecodeError::from_code(code)))
        }
    }

    /// Runs the model on `batch` (validated first: token ids, sequence ids, size).
    pub fn decode(&mut self, batch: &mut Batch) -> Result<()> {
        self.check_batch(batch)?;
        let ctx = self.raw.as_ptr();
        let decode = self.llama().llama_decode;
        // SAFETY: a live context used from this thread only; the batch view's arrays hold
        // `n_tokens` validated entries and live for the call.
        let code = batch.with_raw(|raw| unsafe { decode(ctx, raw) });
        self.finish_compute(code)
    }

    /// Runs the encoder on `batch` (encoder-decoder models).
    pub fn encode(&mut self, batch: &mut Batch) -> Result<()> {
        self.check_batch(batch)?;
        let ctx = self.raw.as_ptr();
        let encode = self.llama().llama_encode;
        // SAFETY: as for decode.
        let code = batch.with_raw(|raw| unsafe { encode(ctx, raw) });
        self.finish_compute(code)
    }

    /// Logits of output `i` of the last decode (`-1`: the last output).
    pub fn logits(&self, i: i32) -> Result<&[f32]> {
        let n_vocab = self.model.n_vocab() as usize;
        // SAFETY: a live context; llama.cpp returns NULL for an index without logits.
        let ptr = unsafe { (self.llama().llama_get_logits_ith)(self.raw.as_ptr(), i) };
        if ptr.is_null() {
            return Err(Error::InvalidArgument {
                parameter: "i",
                reason: format!("output {i} has no logits"),
            });
        }
        // SAFETY: llama.cpp's logits row has n_vocab floats and stays valid until the next
        // decode, which needs &mut self (so the borrow prevents it).
        Ok(unsafe { std::slice::from_raw_parts(ptr, n_vocab) })
    }

    /// Pooled embedding of sequence `seq_id` (contexts with embeddings and pooling).
    pub fn embeddings_seq(&self, seq_id: i32) -> Result<&[f32]> {
        let n_embd = self.model.n_embd() as usize;
        // SAFETY: a live context; NULL when unavailable.
        let ptr = unsafe { (self.llama().llama_get_embeddings_seq)(self.raw.as_ptr(), seq_id) };
        if ptr.is_null() {
            return Err(Error::InvalidArgument {
                parameter: "seq_id",
                reason: format!("no embedding for sequence {seq_id}"),
            });
        }
        // SAFETY: n_embd floats, valid until the next decode (which needs &mut self).
        Ok(unsafe { std::slice::from_raw_parts(ptr, n_embd) })
    }

    /// Clears the KV cache (all sequences).
    pub fn clear_memory(&mut self) {
        // SAFETY: a live context; the memory handle belongs to it.
        unsafe {
            let memory = (self.llama().llama_get_memory)(self.raw.as_ptr());
            if !memory.is_null() {
                (self.llama().llama_memory_clear)(memory, true);
            }
        }
    }

    /// Largest position stored for `seq_id` (`None` when empty).
    pub fn memory_pos_max(&self, seq_id: i32) -> Option<i32> {
        // SAFETY: a live context.
        let pos = unsafe {
            let memory = (self.llama().llama_get_memory)(self.raw.as_ptr());
            if memory.is_null() {
                return None;
            }
            (self.llama().llama_memory_seq_pos_max)(memory, seq_id)
        };
        (pos >= 0).then_some(pos)
    }

    /// Performance counters.
    pub fn perf(&self) -> Perf {
        // SAFETY: a live context; returns a struct by value.
        let data = unsafe { (self.llama().llama_perf_context)(self.raw.as_ptr()) };
        Perf {
            load_ms: data.t_load_ms,
            prompt_ms: data.t_p_eval_ms,
            prompt_tokens: data.n_p_eval,
            eval_ms: data.t_eval_ms,
            eval_tokens: data.n_eval,
        }
    }

    /// Resets the performance counters.
    pub fn reset_perf(&mut self) {
        // SAFETY: a live context.
        unsafe { (self.llama().llama_perf_context_reset)(self.raw.as_ptr()) };
    }

    pub(crate) fn raw(&mut self) -> *mut llama_context {
        self.raw.as_ptr()
    }

    /// Samples with `sampler` from output `idx` of the last decode (validated).
    pub fn sample(&mut self, sampler: &mut crate::sampler::Sampler, idx: i32) -> Result<Token> {
        sampler.sample(self, idx)
    }
}
