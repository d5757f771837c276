//! [`ModelParams`]: how to load a model (offload, split, mmap, overrides, progress).

pub use crate::gguf::MetadataValue;

/// How many layers to offload to GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuLayers {
    /// None: run on the CPU.
    #[default]
    None,
    /// This many layers.
    Count(u32),
    /// Every layer.
    All,
    /// As many as fit into the free memory of the first GPU device, for a context of `n_ctx`
    /// tokens (estimated from the file by [`crate::gguf::auto_gpu_layers`]); 0 without a GPU.
    Auto {
        /// The context size the layers' KV cache is sized for.
        n_ctx: u32,
    },
}

/// How to split a model across several GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMode {
    /// One GPU (`main_gpu`).
    None,
    /// Layers and KV cache split across GPUs.
    #[default]
    Layer,
    /// Rows split across GPUs (tensor parallelism where supported).
    Row,
}

pub(crate) type ProgressCallback = Box<dyn FnMut(f32) -> bool + Send>;

/// Parameters for [`crate::Model::load`].
#[derive(Default)]
pub struct ModelParams {
    /// Layers to offload to GPUs.
    pub gpu_layers: GpuLayers,
    /// The GPU used when `split_mode` is `None`.
    pub main_gpu: i32,
    /// Multi-GPU split.
    pub split_mode: SplitMode,
    /// Proportion of the model per device (empty: llama.cpp decides).
    pub tensor_split: Vec<f32>,
    /// Memory-map the file (default: true, set by [`ModelParams::new`]).
    pub use_mmap: bool,
    /// Lock the model in RAM.
    pub use_mlock: bool,
    /// Load only the vocabulary (such a model tokenizes but cannot create a context).
    pub vocab_only: bool,
    /// Validate tensor data while loading.
    pub check_tensors: bool,
    /// Let the CPU backend repack weights into its extra buffer types (`None`: yes, unless the
    /// loaded build offers one known to crash, see
    /// [`crate::loader::FAULTY_EXTRA_BUFFER_TYPES`]). `Some(true)` with such a build is
    /// refused.
    pub extra_buffer_types: Option<bool>,
    /// Metadata overrides (key, value); keys of at most 127 bytes. They are checked like the
    /// file's own hyper-parameters before llama.cpp sees them.
    pub metadata_overrides: Vec<(String, MetadataValue)>,
    /// RPC servers whose devices join the devices the model is offloaded to (see
    /// [`ModelParams::with_rpc_servers`]).
    pub rpc_servers: Vec<crate::rpc::RpcEndpoint>,
    /// Accepts in-process RPC: a server lost while the model is in use aborts the process
    /// (see [`ModelParams::with_rpc_in_process`]).
    pub rpc_in_process: bool,
    pub(crate) progress: Option<ProgressCallback>,
}

impl std::fmt::Debug for ModelParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelParams")
            .field("gpu_layers", &self.gpu_layers)
            .field("main_gpu", &self.main_gpu)
            .field("split_mode", &self.split_mode)
            .field("use_mmap", &self.use_mmap)
            .field("vocab_only", &self.vocab_only)
            .field("metadata_overrides", &self.metadata_overrides)
            .field("rpc_servers", &self.rpc_servers)
            .field("rpc_in_process", &self.rpc_in_process)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl ModelParams {
    /// Defaults: CPU only, memory-mapped.
    pub fn new() -> Self {
        ModelParams {
            use_mmap: true,
            ..Default::default()
        }
    }

    /// Sets the GPU layers.
    pub fn with_gpu_layers(mut self, layers: GpuLayers) -> Self {
        self.gpu_layers = layers;
        self
    }

    /// Applies a configuration file's settings for the chosen variant (see
    /// [`crate::loader::config`]): `gpu_layers` (negative: all) and `use_mlock`, where set.
    pub fn with_backend_settings(
        mut self,
        settings: &crate::loader::config::BackendSettings,
    ) -> Self {
        if let Some(layers) = settings.gpu_layers {
            self.gpu_layers = match u32::try_from(layers) {
                Ok(0) => GpuLayers::None,
                Ok(count) => GpuLayers::Count(count),
                Err(_) => GpuLayers::All,
            };
        }
        if let Some(lock) = settings.use_mlock {
            self.use_mlock = lock;
        }
        self
    }

    /// Sets a progress callback (0.0..=1.0); returning `false` cancels the load. A panic in it is
    /// caught and cancels the load with [`crate::Error::CallbackPanicked`].
    pub fn with_progress(mut self, callback: impl FnMut(f32) -> bool + Send + 'static) -> Self {
        self.progress = Some(Box::new(callback));
        self
    }

    /// Loads only the vocabulary.
    pub fn vocab_only(mut self, vocab_only: bool) -> Self {
        self.vocab_only = vocab_only;
        self
    }

    /// Offloads onto the devices of these RPC servers too (`rpc-server`s of the same llama.cpp
    /// build; [`crate::rpc`]).
    ///
    /// Before anything reaches C, each endpoint is resolved (IPv4: the pinned ggml-rpc speaks
    /// nothing else), duplicates and more than [`crate::rpc::MAX_SERVERS`] are refused, and
    /// each server is probed from Rust ([`crate::rpc::probe`]: TCP connect with a timeout, the
    /// HELLO exchange, the device count). Then `ggml_backend_rpc_add_server` adds it and its
    /// registry is registered with ggml, as llama.cpp's `--rpc` does.
    ///
    /// The model's devices are then, in llama.cpp's order: the servers' devices (in the order
    /// given), then the local GPUs; the CPU holds the layers not offloaded. `gpu_layers` says
    /// how many layers are offloaded, `tensor_split` gives one proportion per device of that
    /// list (default: by free memory), and with [`SplitMode::None`] `main_gpu` indexes it.
    /// Models of the process without RPC servers get the local devices only.
    ///
    /// Loading refuses RPC servers unless in-process use is accepted
    /// ([`Self::with_rpc_in_process`]); [`crate::worker::WorkerModel`] runs such a model in a
    /// child process instead.
    #[doc(alias = "ggml_backend_rpc_add_server")]
    pub fn with_rpc_servers(mut self, servers: Vec<crate::rpc::RpcEndpoint>) -> Self {
        self.rpc_servers = servers;
        self
    }

    /// Accepts RPC servers in this process. The pinned ggml-rpc aborts the process when a
    /// server is lost while the model is in use, and blocks when a server stops answering: the
    /// Rust checks cover connecting and the handshake, not what happens later. Prefer
    /// [`crate::worker::WorkerModel`], which turns both into errors.
    pub fn with_rpc_in_process(mut self, accept: bool) -> Self {
        self.rpc_in_process = accept;
        self
    }

    /// Adds a metadata override.
    pub fn with_override(mut self, key: impl Into<String>, value: MetadataValue) -> Self {
        self.metadata_overrides.push((key.into(), value));
        self
    }
}
