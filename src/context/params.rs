//! [`ContextParams`]: sizes, threads, attention, embeddings and cache settings.

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
    /// Reranking score (`n_cls_out` floats per sequence).
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
    /// 8-bit quantized (V needs flash attention).
    Q8_0,
    /// 4-bit quantized (V needs flash attention).
    Q4_0,
}

/// Parameters for [`crate::Context::new`]; `None` keeps llama.cpp's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextParams {
    /// Context size in tokens (`None`: the model's training context). Must not be 0.
    pub n_ctx: Option<u32>,
    /// Logical batch size: most tokens per `decode`.
    pub n_batch: Option<u32>,
    /// Physical batch size (encoders and embedding models take at most this many tokens per
    /// call).
    pub n_ubatch: Option<u32>,
    /// Number of sequences.
    pub n_seq_max: Option<u32>,
    /// One KV buffer shared by all sequences (`false`: each sequence gets `n_ctx / n_seq_max`).
    pub kv_unified: Option<bool>,
    /// Threads for generation (default: the available cores; at most
    /// [`crate::Context::max_threads`]).
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
    /// Applies a configuration file's settings for the chosen variant (see
    /// [`crate::loader::config`]): `context_size` and `batch_size`, where set.
    pub fn with_backend_settings(
        mut self,
        settings: &crate::loader::config::BackendSettings,
    ) -> Self {
        if let Some(n_ctx) = settings.context_size {
            self.n_ctx = Some(n_ctx);
        }
        if let Some(n_batch) = settings.batch_size {
            self.n_batch = Some(n_batch);
        }
        self
    }

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
    /// Physical batch size.
    pub fn with_n_ubatch(mut self, n_ubatch: u32) -> Self {
        self.n_ubatch = Some(n_ubatch);
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
    /// Embeddings output with `pooling`.
    pub fn with_embeddings(mut self, pooling: Pooling) -> Self {
        self.embeddings = Some(true);
        self.pooling = Some(pooling);
        self
    }
}
