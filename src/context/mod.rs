//! [`Context`]: the state of one inference session (KV cache, logits) over a [`Model`].
//!
//! - [`params`]: [`ContextParams`] and its enums;
//! - `decode`: batches checked against the context, `decode` / `encode`;
//! - `outputs`: logits and embeddings of the last computation, indexed safely;
//! - `memory`: the KV cache per sequence;
//! - `cancel`: [`CancelHandle`] and the abort callback;
//! - `perf`: threads and performance counters.

mod adapters;
mod cancel;
mod decode;
mod memory;
mod outputs;
pub mod params;
mod perf;
mod state;

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ffi::params::{context_defaults, context_params, pooling_from_c, ContextSettings};
use crate::ffi::{Api, RawContext};
use crate::model::Model;

pub use cancel::CancelHandle;
pub use params::{CacheType, ContextParams, FlashAttention, Pooling};
pub use perf::Perf;

use cancel::{abort_trampoline, AbortState};
use outputs::Outputs;

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
    raw: NonNull<RawContext>,
    abort: Arc<AbortState>,
    sizes: Sizes,
    /// Which rows the last computation produced (logits and embeddings are read through it).
    outputs: Outputs,
    /// Encoder-decoder models: whether `encode` ran since the memory was cleared.
    encoded: bool,
    /// LoRA adapters set on the context, kept alive while llama.cpp points to them (dropped
    /// after `llama_free`).
    adapters: adapters::Applied,
    _not_sync: PhantomData<Cell<()>>,
}

/// The context's sizes and modes as llama.cpp settled them.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    n_ctx: u32,
    n_ctx_seq: u32,
    n_batch: u32,
    n_ubatch: u32,
    n_seq_max: u32,
    embeddings: bool,
    pooling: Pooling,
}

// SAFETY: a llama_context may be used from any one thread at a time; `Context` is !Sync (the
// PhantomData<Cell>) and every method that touches the context takes `&mut self` or only reads
// immutable sizes, so it is never used from two threads at once.
unsafe impl Send for Context {}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("n_ctx", &self.sizes.n_ctx)
            .field("n_batch", &self.sizes.n_batch)
            .field("n_seq_max", &self.sizes.n_seq_max)
            .finish()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: created by llama_init_from_model, freed exactly once; the model outlives it
        // (held in `self.model`) and the abort state is dropped after this.
        unsafe { self.api().free(self.raw.as_ptr()) };
    }
}

fn invalid(parameter: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        parameter,
        reason: reason.into(),
    }
}

/// The largest context this crate asks llama.cpp for (positions are `int32_t`; far beyond any
/// model's training context).
const MAX_N_CTX: u32 = 1 << 30;

impl Context {
    /// Most threads a context may use on this machine: twice the available cores, at least
    /// 4, at most ggml's `GGML_MAX_N_THREADS` (512). ggml starts that many threads for every
    /// graph and they spin while they wait, so more only slow it down (64 threads on 2 cores
    /// made a decode ten times slower; 600 did not finish), and far more exhaust memory.
    pub fn max_threads() -> i32 {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        (cores.saturating_mul(2)).clamp(4, 512) as i32
    }

    /// Creates a context.
    ///
    /// # Errors
    /// `InvalidArgument` for out-of-range parameters (checked before the C call, naming the
    /// parameter); `NotSupported` for a vocab-only model, or rank pooling on a model without a
    /// classifier head; `Null` when llama.cpp cannot create it (e.g. out of memory).
    #[doc(alias = "llama_init_from_model")]
    pub fn new(model: &Model, params: ContextParams) -> Result<Self> {
        model.require_weights("creating a context")?;
        let api = model.api();
        let settings = settle(model, &params)?;
        let abort = AbortState::new();
        let raw_params = context_params(
            api,
            &settings,
            abort_trampoline,
            Arc::as_ptr(&abort) as *mut std::ffi::c_void,
        );
        let ctx = {
            // Context creation reads the model's adapter set: no adapter may change meanwhile
            // (the YaRN write of llama_init_from_model is refused above).
            let _creating = model
                .inner
                .shared_state
                .read()
                .unwrap_or_else(|p| p.into_inner());
            // Context creation walks ggml's device registry: no plugin or RPC server may be
            // registered meanwhile.
            let _registry = crate::loader::rpc::registry_read();
            // SAFETY: a live model with weights; validated parameters laid over llama.cpp's
            // defaults; the abort state outlives the context (dropped after llama_free).
            unsafe { api.init_from_model(model.raw(), &raw_params) }
        };
        let ctx = NonNull::new(ctx).ok_or(Error::Null {
            function: "llama_init_from_model",
            detail: format!(
                "n_ctx {} (out of memory or unsupported parameters; see the llama.cpp log)",
                settings.n_ctx
            ),
        })?;
        let raw = ctx.as_ptr();
        // SAFETY: a live context; plain getters.
        let sizes = unsafe {
            Sizes {
                n_ctx: api.n_ctx(raw),
                n_ctx_seq: api.n_ctx_seq(raw),
                n_batch: api.n_batch(raw),
                n_ubatch: api.n_ubatch(raw),
                // A build whose llama_n_seq_max returns its KV cache's size uses the
                // requested n_seq_max as given (at least 1, as settled here).
                n_seq_max: if api.quirks().n_seq_max_is_cache_size {
                    settings.n_seq_max
                } else {
                    api.n_seq_max(raw)
                },
                embeddings: settings.embeddings.unwrap_or(false),
                pooling: pooling_from_c(api.pooling_type(raw)),
            }
        };
        let context = Context {
            model: model.clone(),
            raw: ctx,
            abort,
            sizes,
            outputs: Outputs::default(),
            encoded: false,
            adapters: adapters::Applied::default(),
            _not_sync: PhantomData,
        };
        if context.sizes.embeddings
            && context.sizes.pooling == Pooling::Rank
            && !model.facts().has_classifier
        {
            // The model's own default pooling is rank, but it has no classifier: the scores
            // would be read from the pooled hidden state (garbage). Dropping frees the context.
            return Err(Error::NotSupported {
                operation: "rank pooling",
                reason: format!(
                    "{} declares rank pooling but has no classifier tensors (cls / cls.output)",
                    model.path().display()
                ),
            });
        }
        Ok(context)
    }

    pub(crate) fn api(&self) -> Api<'_> {
        self.model.api()
    }

    pub(crate) fn raw(&mut self) -> *mut RawContext {
        self.raw.as_ptr()
    }

    /// The model.
    #[doc(alias = "llama_get_model")]
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Context size in tokens (all sequences together).
    #[doc(alias = "llama_n_ctx")]
    pub fn n_ctx(&self) -> u32 {
        self.sizes.n_ctx
    }

    /// Tokens one sequence can hold: `n_ctx` with a unified KV cache, `n_ctx / n_seq_max`
    /// otherwise.
    #[doc(alias = "llama_n_ctx_seq")]
    pub fn n_ctx_seq(&self) -> u32 {
        self.sizes.n_ctx_seq
    }

    /// Most tokens per decode.
    #[doc(alias = "llama_n_batch")]
    pub fn n_batch(&self) -> u32 {
        self.sizes.n_batch
    }

    /// Most tokens per physical batch (and per `encode`, and per decode of an embedding model).
    #[doc(alias = "llama_n_ubatch")]
    pub fn n_ubatch(&self) -> u32 {
        self.sizes.n_ubatch
    }

    /// Number of sequences.
    #[doc(alias = "llama_n_seq_max")]
    pub fn n_seq_max(&self) -> u32 {
        self.sizes.n_seq_max
    }

    /// Whether this context outputs embeddings.
    pub fn embeddings_enabled(&self) -> bool {
        self.sizes.embeddings
    }

    /// The pooling llama.cpp settled on.
    #[doc(alias = "llama_pooling_type")]
    pub fn pooling(&self) -> Pooling {
        self.sizes.pooling
    }
}

/// Validates `params` against the model and llama.cpp's limits and decides every value.
fn settle(model: &Model, params: &ContextParams) -> Result<ContextSettings> {
    let api = model.api();
    let defaults = context_defaults(api);
    let n_ctx = match params.n_ctx {
        Some(0) => {
            return Err(invalid(
                "n_ctx",
                "0 is not a context size (leave it None to use the model's training context)",
            ))
        }
        Some(n) if n > MAX_N_CTX => {
            return Err(invalid("n_ctx", format!("{n} is larger than {MAX_N_CTX}")))
        }
        Some(n) => n,
        None => u32::try_from(model.n_ctx_train().max(1))
            .unwrap_or(1)
            .min(MAX_N_CTX),
    };
    let n_batch = match params.n_batch {
        Some(0) => return Err(invalid("n_batch", "must be at least 1")),
        Some(n) => n,
        None => defaults.n_batch,
    }
    .min(n_ctx);
    let n_ubatch = match params.n_ubatch {
        Some(0) => return Err(invalid("n_ubatch", "must be at least 1")),
        Some(n) => n,
        None => defaults.n_ubatch,
    }
    .min(n_batch);
    // SAFETY: no arguments.
    let max_seq = unsafe { api.max_parallel_sequences() };
    let n_seq_max = match params.n_seq_max {
        Some(v) if v == 0 || v as usize > max_seq => {
            return Err(invalid("n_seq_max", format!("{v} must be 1..={max_seq}")))
        }
        Some(v) => v,
        None => defaults.n_seq_max,
    };
    if n_seq_max > n_batch {
        // llama.cpp reserves one output row per sequence within n_batch:
        // GGML_ASSERT(n_outputs_max <= cparams.n_outputs_max) in output_reserve.
        return Err(invalid(
            "n_seq_max",
            format!("{n_seq_max} sequences need n_batch >= {n_seq_max} (n_batch is {n_batch})"),
        ));
    }
    let kv_unified = params.kv_unified.unwrap_or(defaults.kv_unified);
    let pooled =
        params.embeddings.unwrap_or(defaults.embeddings) && params.pooling != Some(Pooling::None);
    if pooled && n_seq_max > 1 && n_ubatch % n_seq_max != 0 {
        // llama.cpp rounds the physical batch up to a multiple of n_seq_max for the pooling
        // graph but reserves n_ubatch outputs: GGML_ASSERT(ggml_can_mul_mat) in build_pooling.
        return Err(invalid(
            "n_ubatch",
            format!("{n_ubatch} must be a multiple of n_seq_max {n_seq_max} for pooled embeddings"),
        ));
    }
    if !kv_unified && n_seq_max > n_ctx {
        return Err(invalid(
            "n_seq_max",
            format!("{n_seq_max} sequences cannot each get a share of n_ctx {n_ctx}"),
        ));
    }
    if model.has_encoder() && n_seq_max > 1 && !kv_unified {
        // llama.cpp's relative-position attention (T5) cannot split the batch into
        // per-sequence streams: GGML_ASSERT(ggml_can_repeat(b, a)) in build_attn_mha.
        return Err(invalid(
            "n_seq_max",
            format!("{n_seq_max} sequences of an encoder-decoder model need kv_unified = true"),
        ));
    }
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get()) as i32;
    let mut threads = [0i32; 2];
    for (slot, (name, value)) in threads.iter_mut().zip([
        ("n_threads", params.n_threads),
        ("n_threads_batch", params.n_threads_batch),
    ]) {
        // Default: one thread per available core (llama.cpp's own default is a fixed 4, which
        // oversubscribes small machines: ggml's threads spin while they wait).
        let max = Context::max_threads();
        let t = value.unwrap_or(cores.min(max));
        if !(1..=max).contains(&t) {
            return Err(invalid(
                name,
                format!("{t} must be 1..={max} (twice this machine's cores)"),
            ));
        }
        *slot = t;
    }
    for (name, value) in [
        ("rope_freq_base", params.rope_freq_base),
        ("rope_freq_scale", params.rope_freq_scale),
    ] {
        if let Some(v) = value {
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(name, format!("{v} must be finite and >= 0")));
            }
        }
    }
    if let Some(v) = params.yarn_ext_factor {
        if v.is_nan() || v.is_infinite() {
            return Err(invalid(
                "yarn_ext_factor",
                format!("{v} must be finite (negative: from the model)"),
            ));
        }
    }
    check_yarn_rewrite(model, params)?;
    check_host_memory(model, n_ctx, params)?;
    let embeddings = params.embeddings.unwrap_or(defaults.embeddings);
    if params.pooling == Some(Pooling::Rank) && model.n_cls_out() == 0 {
        return Err(Error::NotSupported {
            operation: "rank pooling",
            reason: format!(
                "{} has no classifier head (it is not a reranker)",
                model.path().display()
            ),
        });
    }
    if params.pooling == Some(Pooling::Rank) && !model.facts().has_classifier {
        return Err(Error::NotSupported {
            operation: "rank pooling",
            reason: format!(
                "{} has no classifier tensors (cls / cls.output)",
                model.path().display()
            ),
        });
    }
    if params.flash_attention == Some(FlashAttention::Disabled)
        && matches!(params.type_v, Some(CacheType::Q8_0 | CacheType::Q4_0))
    {
        return Err(invalid(
            "type_v",
            "a quantized V cache needs flash attention (not Disabled)",
        ));
    }
    Ok(ContextSettings {
        n_ctx,
        n_batch,
        n_ubatch,
        n_seq_max,
        n_threads: threads[0],
        n_threads_batch: threads[1],
        flash_attention: params.flash_attention,
        embeddings: Some(embeddings),
        pooling: params.pooling,
        rope_freq_base: params.rope_freq_base,
        rope_freq_scale: params.rope_freq_scale,
        yarn_ext_factor: params.yarn_ext_factor,
        yarn_orig_ctx: params.yarn_orig_ctx,
        type_k: params.type_k,
        type_v: params.type_v,
        offload_kqv: params.offload_kqv,
        op_offload: params.op_offload,
        no_perf: params.no_perf,
        kv_unified: Some(kv_unified),
    })
}

/// llama.cpp allocates the KV cache and then clears it; in host memory an allocation larger
/// than what is available can succeed (overcommit) and the clearing then gets the process
/// killed. A cache estimated above the available memory is refused first.
fn check_host_memory(model: &Model, n_ctx: u32, params: &ContextParams) -> Result<()> {
    let facts = model.facts();
    let has_gpu = model.library().devices().iter().any(|d| {
        matches!(
            d.device_type,
            crate::loader::DeviceType::Gpu | crate::loader::DeviceType::IntegratedGpu
        )
    });
    let on_host = !has_gpu || facts.n_gpu_layers == 0 || params.offload_kqv == Some(false);
    let Some(available) = crate::hardware::available_memory().filter(|_| on_host) else {
        return Ok(());
    };
    let (small, large) = facts.kv_estimate;
    let per_element = |t: Option<CacheType>| match t {
        Some(CacheType::F32) => 4.0,
        Some(CacheType::Q8_0) => 1.07,
        Some(CacheType::Q4_0) => 0.57,
        _ => 2.0,
    };
    let scale = (per_element(params.type_k) + per_element(params.type_v)) / 4.0;
    // Linear between the two estimates (sliding-window layers saturate early).
    let slope = (large.saturating_sub(small)) as f64 / ((1u64 << 20) - (1 << 10)) as f64;
    let estimate = (small as f64 + slope * (f64::from(n_ctx) - 1024.0).max(0.0)) * scale;
    if estimate > available as f64 {
        return Err(Error::InvalidArgument {
            parameter: "n_ctx",
            reason: format!(
                "{n_ctx} tokens need about {:.1} GiB of KV cache in host memory, more than the {:.1} GiB available",
                estimate / f64::from(1u32 << 30),
                available as f64 / f64::from(1u32 << 30)
            ),
        });
    }
    Ok(())
}

/// llama_init_from_model rewrites the shared model's `n_ctx_train` when a YaRN model gets a
/// frequency scale other than its trained one; other threads may be reading it, so that
/// combination is refused.
fn check_yarn_rewrite(model: &Model, params: &ContextParams) -> Result<()> {
    let Some(scale) = params.rope_freq_scale.filter(|s| *s != 0.0) else {
        return Ok(());
    };
    let yarn = model.facts().rope_yarn;
    // SAFETY: a live model; a plain getter.
    let trained = unsafe { model.api().model_rope_freq_scale_train(model.raw()) };
    if yarn && scale != trained {
        return Err(invalid(
            "rope_freq_scale",
            format!(
                "{scale} differs from this YaRN model's trained scale {trained}: llama.cpp would rewrite the shared model's training context"
            ),
        ));
    }
    Ok(())
}
