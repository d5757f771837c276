//! [`Model`]: a loaded GGUF model (weights + vocabulary).

use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::loader::LlamaLibrary;
use crate::sys::upstream::{
    self as sys, llama_model, llama_model_kv_override, llama_model_kv_override_value, llama_vocab,
    LLAMA_TOKEN_NULL,
};
use crate::token::Token;

/// How many layers to offload to GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitMode {
    /// One GPU (`main_gpu`).
    None,
    /// Layers and KV cache split across GPUs.
    #[default]
    Layer,
    /// Rows split across GPUs (tensor parallelism where supported).
    Row,
}

/// A metadata override value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string of at most 127 bytes.
    Str(String),
}

type ProgressCallback = Box<dyn FnMut(f32) -> bool + Send>;

/// Parameters for [`Model::load`].
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
    /// Load only the vocabulary.
    pub vocab_only: bool,
    /// Validate tensor data while loading.
    pub check_tensors: bool,
    /// Metadata overrides (key, value); keys of at most 127 bytes.
    pub metadata_overrides: Vec<(String, MetadataValue)>,
    progress: Option<ProgressCallback>,
}

impl std::fmt::Debug for ModelParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelParams")
            .field("gpu_layers", &self.gpu_layers)
            .field("main_gpu", &self.main_gpu)
            .field("split_mode", &self.split_mode)
            .field("use_mmap", &self.use_mmap)
            .field("vocab_only", &self.vocab_only)
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

    /// Sets a progress callback (0.0..=1.0); returning `false` cancels the load. A panic in it is
    /// caught and cancels the load with [`Error::CallbackPanicked`].
    pub fn with_progress(mut self, callback: impl FnMut(f32) -> bool + Send + 'static) -> Self {
        self.progress = Some(Box::new(callback));
        self
    }

    /// Loads only the vocabulary.
    pub fn vocab_only(mut self, vocab_only: bool) -> Self {
        self.vocab_only = vocab_only;
        self
    }
}

struct ProgressState {
    callback: ProgressCallback,
    cancelled: bool,
    panicked: bool,
}

unsafe extern "C" fn progress_trampoline(progress: f32, user_data: *mut c_void) -> bool {
    // SAFETY: user_data is the `ProgressState` that `Model::load` keeps alive for the whole
    // llama_model_load_from_file call, and only this callback touches it meanwhile.
    let state = unsafe { &mut *(user_data as *mut ProgressState) };
    match catch_unwind(AssertUnwindSafe(|| (state.callback)(progress))) {
        Ok(true) => true,
        Ok(false) => {
            state.cancelled = true;
            false
        }
        Err(_) => {
            state.panicked = true;
            false
        }
    }
}

pub(crate) struct ModelInner {
    pub(crate) library: LlamaLibrary,
    pub(crate) raw: NonNull<llama_model>,
    pub(crate) vocab: NonNull<llama_vocab>,
    path: PathBuf,
}

// SAFETY: after loading, a llama_model (and its vocab) is only read; llama.cpp documents that
// one model may be shared by contexts on several threads, and tokenization is thread-safe.
// The wrapper exposes no mutation, and freeing happens once, in Drop, when no handle is left.
unsafe impl Send for ModelInner {}
// SAFETY: see above: every method takes `&self` and calls read-only llama.cpp functions.
unsafe impl Sync for ModelInner {}

impl Drop for ModelInner {
    fn drop(&mut self) {
        // SAFETY: the pointer came from llama_model_load_from_file and is freed exactly once;
        // every Context holds a Model, so no context outlives it.
        unsafe { (self.library.llama().llama_model_free)(self.raw.as_ptr()) };
    }
}

/// A loaded model. `Send + Sync`; cloning is cheap (an `Arc`), and every clone keeps the model
/// and the llama.cpp library alive.
#[derive(Clone)]
pub struct Model {
    pub(crate) inner: Arc<ModelInner>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.inner.path)
            .field("description", &self.description())
            .finish()
    }
}

/// A NUL-free C string from a path (any bytes on Unix).
pub(crate) fn path_to_cstring(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path
        .to_str()
        .ok_or(Error::InvalidUtf8 {
            what: "model path",
            valid_up_to: 0,
        })?
        .as_bytes()
        .to_vec();
    CString::new(bytes).map_err(|_| Error::InvalidArgument {
        parameter: "path",
        reason: format!("{} contains a NUL byte", path.display()),
    })
}

/// A C string from text, refusing interior NUL bytes.
pub(crate) fn to_cstring(parameter: &'static str, text: &str) -> Result<CString> {
    CString::new(text).map_err(|e| Error::InvalidArgument {
        parameter,
        reason: format!("contains a NUL byte at position {}", e.nul_position()),
    })
}

/// Calls a llama.cpp "write into buf, return needed length" function until the buffer fits.
pub(crate) fn read_string(mut call: impl FnMut(*mut c_char, usize) -> i32) -> Option<String> {
    let mut buffer = vec![0u8; 256];
    loop {
        let n = call(buffer.as_mut_ptr().cast(), buffer.len());
        if n < 0 {
            return None;
        }
        let n = n as usize;
        if n < buffer.len() {
            buffer.truncate(n);
            return Some(String::from_utf8_lossy(&buffer).into_owned());
        }
        buffer.resize(n + 1, 0);
    }
}

fn overrides(list: &[(String, MetadataValue)]) -> Result<Vec<llama_model_kv_override>> {
    let mut out = Vec::with_capacity(list.len() + 1);
    for (key, value) in list {
        if key.is_empty() || key.len() > 127 || key.contains('\0') {
            return Err(Error::InvalidArgument {
                parameter: "metadata_overrides",
                reason: format!("key {key:?} must be 1..=127 bytes without NUL"),
            });
        }
        let mut entry = llama_model_kv_override {
            tag: 0,
            key: [0; 128],
            value: llama_model_kv_override_value { val_i64: 0 },
        };
        for (dst, src) in entry.key.iter_mut().zip(key.bytes()) {
            *dst = src as c_char;
        }
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
                if s.len() > 127 || s.contains('\0') {
                    return Err(Error::InvalidArgument {
                        parameter: "metadata_overrides",
                        reason: format!("value of {key:?} must be at most 127 bytes without NUL"),
                    });
                }
                entry.tag = sys::LLAMA_KV_OVERRIDE_TYPE_STR;
                let mut text = [0 as c_char; 128];
                for (dst, src) in text.iter_mut().zip(s.bytes()) {
                    *dst = src as c_char;
                }
                entry.value.val_str = text;
            }
        }
        out.push(entry);
    }
    // Terminator: an entry with an empty key.
    out.push(llama_model_kv_override {
        tag: 0,
        key: [0; 128],
        value: llama_model_kv_override_value { val_i64: 0 },
    });
    Ok(out)
}

impl Model {
    /// Loads a GGUF model with `library`.
    ///
    /// # Errors
    /// `InvalidArgument` for bad parameters (checked before any C call), `ModelLoad` when the
    /// file is missing or llama.cpp refuses it, `ModelLoadCancelled` / `CallbackPanicked` from
    /// the progress callback.
    pub fn load(
        library: &LlamaLibrary,
        path: impl AsRef<Path>,
        params: ModelParams,
    ) -> Result<Self> {
        let path = path.as_ref();
        let metadata = std::fs::metadata(path).map_err(|e| Error::ModelLoad {
            path: path.into(),
            reason: e.to_string(),
        })?;
        if !metadata.is_file() {
            return Err(Error::ModelLoad {
                path: path.into(),
                reason: "not a regular file".into(),
            });
        }
        // Pre-flight: the file is read and validated in Rust before llama.cpp sees it.
        let file = crate::gguf::inspect(path)?;
        if file.family == crate::gguf::Family::BitNet {
            return Err(Error::ModelLoad {
                path: path.into(),
                reason: format!(
                    "a BitNet-fork model (architecture {:?}) needs a BitNet variant, which this version cannot load yet",
                    file.architecture().unwrap_or("?")
                ),
            });
        }
        let path_c = path_to_cstring(path)?;
        let llama = library.llama();
        // SAFETY: returns a struct by value; the ABI was verified at load.
        let mut raw = unsafe { (llama.llama_model_default_params)() };
        raw.n_gpu_layers = match params.gpu_layers {
            GpuLayers::None => 0,
            GpuLayers::Count(n) => i32::try_from(n).map_err(|_| Error::InvalidArgument {
                parameter: "gpu_layers",
                reason: format!("{n} is too large"),
            })?,
            GpuLayers::All => -1,
            GpuLayers::Auto { n_ctx } => {
                let free = library
                    .devices()
                    .iter()
                    .find(|d| {
                        matches!(
                            d.device_type,
                            crate::loader::DeviceType::Gpu
                                | crate::loader::DeviceType::IntegratedGpu
                        )
                    })
                    .map(|d| d.memory_free as u64);
                let layers = free.map_or(0, |free| {
                    crate::gguf::auto_gpu_layers(&file, free, u64::from(n_ctx))
                });
                log::debug!(
                    "auto GPU layers for {}: {layers} (free device memory {free:?})",
                    path.display()
                );
                layers as i32
            }
        };
        raw.main_gpu = params.main_gpu;
        raw.split_mode = match params.split_mode {
            SplitMode::None => sys::LLAMA_SPLIT_MODE_NONE,
            SplitMode::Layer => sys::LLAMA_SPLIT_MODE_LAYER,
            SplitMode::Row => sys::LLAMA_SPLIT_MODE_ROW,
        };
        raw.load_mode = match (params.use_mmap, params.use_mlock) {
            (true, true) => sys::LLAMA_LOAD_MODE_MMAP_MLOCK,
            (true, false) => sys::LLAMA_LOAD_MODE_MMAP,
            (false, true) => sys::LLAMA_LOAD_MODE_MLOCK,
            (false, false) => sys::LLAMA_LOAD_MODE_NONE,
        };
        raw.vocab_only = params.vocab_only;
        raw.check_tensors = params.check_tensors;
        // SAFETY: no arguments.
        let max_devices = unsafe { (llama.llama_max_devices)() };
        let mut tensor_split = params.tensor_split.clone();
        if !tensor_split.is_empty() {
            if tensor_split.len() > max_devices
                || tensor_split.iter().any(|v| !v.is_finite() || *v < 0.0)
            {
                return Err(Error::InvalidArgument {
                    parameter: "tensor_split",
                    reason: format!("at most {max_devices} non-negative finite proportions"),
                });
            }
            tensor_split.resize(max_devices, 0.0);
            raw.tensor_split = tensor_split.as_ptr();
        }
        let overrides = if params.metadata_overrides.is_empty() {
            None
        } else {
            Some(overrides(&params.metadata_overrides)?)
        };
        if let Some(list) = &overrides {
            raw.kv_overrides = list.as_ptr();
        }
        let mut progress = params.progress.map(|callback| ProgressState {
            callback,
            cancelled: false,
            panicked: false,
        });
        if let Some(state) = progress.as_mut() {
            raw.progress_callback = Some(progress_trampoline);
            raw.progress_callback_user_data = (state as *mut ProgressState).cast();
        }
        // SAFETY: `raw` comes from llama_model_default_params with fields set to valid values;
        // every pointer in it (path, tensor_split, kv_overrides, progress state) lives until the
        // call returns.
        let model = unsafe { (llama.llama_model_load_from_file)(path_c.as_ptr(), raw) };
        drop(tensor_split);
        if let Some(state) = &progress {
            if state.panicked {
                if let Some(model) = NonNull::new(model) {
                    // SAFETY: a model returned by the load above, freed once.
                    unsafe { (llama.llama_model_free)(model.as_ptr()) };
                }
                return Err(Error::CallbackPanicked {
                    callback: "progress",
                });
            }
            if state.cancelled {
                if let Some(model) = NonNull::new(model) {
                    // SAFETY: as above.
                    unsafe { (llama.llama_model_free)(model.as_ptr()) };
                }
                return Err(Error::ModelLoadCancelled { path: path.into() });
            }
        }
        let raw_model = NonNull::new(model).ok_or_else(|| Error::ModelLoad {
            path: path.into(),
            reason: "llama.cpp could not load it (see the log, target `llama.cpp`)".into(),
        })?;
        // SAFETY: a live model; the vocab lives as long as the model.
        let vocab = unsafe { (llama.llama_model_get_vocab)(raw_model.as_ptr()) };
        let inner = ModelInner {
            library: library.clone(),
            raw: raw_model,
            vocab: NonNull::new(vocab as *mut llama_vocab).ok_or(Error::Null {
                function: "llama_model_get_vocab",
                detail: String::new(),
            })?,
            path: path.into(),
        };
        Ok(Model {
            inner: Arc::new(inner),
        })
    }

    /// Selects a variant and loads the model on it, falling back to the next candidate when the
    /// model fails to load on a variant (e.g. out of GPU memory). `params` makes the parameters
    /// for each variant tried (GPU layers for GPU variants, say).
    ///
    /// # Errors
    /// `Error::Load(LoadError::NoUsableVariant)` listing every candidate and why it was rejected.
    pub fn load_best(
        options: &crate::loader::SelectOptions,
        path: impl AsRef<Path>,
        mut params: impl FnMut(&dyn crate::loader::LibraryVariant) -> ModelParams,
    ) -> Result<(crate::loader::Selection, Model)> {
        let path = path.as_ref();
        // A file that fails the pre-flight fails on every variant: report it as it is.
        crate::gguf::inspect(path)?;
        let (selection, model) = crate::loader::load_best_with(options, |library, variant| {
            Model::load(library, path, params(variant))
                .map_err(|e| format!("model load failed: {e}"))
        })?;
        Ok((selection, model))
    }

    /// The library this model was loaded with.
    pub fn library(&self) -> &LlamaLibrary {
        &self.inner.library
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn raw(&self) -> *mut llama_model {
        self.inner.raw.as_ptr()
    }

    pub(crate) fn vocab(&self) -> *const llama_vocab {
        self.inner.vocab.as_ptr()
    }

    fn llama(&self) -> &sys::LlamaFunctions {
        self.inner.library.llama()
    }

    /// A one-line description (`llama 135M Q4_1`).
    pub fn description(&self) -> String {
        // SAFETY: a live model; the buffer pointer and length come from read_string.
        read_string(|buf, len| unsafe { (self.llama().llama_model_desc)(self.raw(), buf, len) })
            .unwrap_or_default()
    }

    /// Total size of the tensors in bytes.
    pub fn size(&self) -> u64 {
        // SAFETY: a live model.
        unsafe { (self.llama().llama_model_size)(self.raw()) }
    }

    /// Number of parameters.
    pub fn n_params(&self) -> u64 {
        // SAFETY: a live model.
        unsafe { (self.llama().llama_model_n_params)(self.raw()) }
    }

    /// Context length the model was trained with.
    pub fn n_ctx_train(&self) -> i32 {
        // SAFETY: a live model.
        unsafe { (self.llama().llama_model_n_ctx_train)(self.raw()) }
    }

    /// Embedding size.
    pub fn n_embd(&self) -> i32 {
        // SAFETY: a live model.
        unsafe { (self.llama().llama_model_n_embd)(self.raw()) }
    }

    /// Number of layers.
    pub fn n_layer(&self) -> i32 {
        // SAFETY: a live model.
        unsafe { (self.llama().llama_model_n_layer)(self.raw()) }
    }

    /// Number of attention heads.
    pub fn n_head(&self) -> i32 {
        // SAFETY: a live model.
        unsafe { (self.llama().llama_model_n_head)(self.raw()) }
    }

    /// Number of key/value heads.
    pub fn n_head_kv(&self) -> i32 {
        // SAFETY: a live model.
        unsafe { (self.llama().llama_model_n_head_kv)(self.raw()) }
    }

    /// Vocabulary size.
    pub fn n_vocab(&self) -> i32 {
        // SAFETY: a live vocab.
        unsafe { (self.llama().llama_vocab_n_tokens)(self.vocab()) }
    }

    /// Vocabulary type (`LLAMA_VOCAB_TYPE_*`).
    pub fn vocab_type(&self) -> sys::llama_vocab_type {
        // SAFETY: a live vocab.
        unsafe { (self.llama().llama_vocab_type)(self.vocab()) }
    }

    /// Whether the model has an encoder (then [`crate::Context::encode`] comes first).
    pub fn has_encoder(&self) -> bool {
        // SAFETY: a live model.
        unsafe { (self.llama().llama_model_has_encoder)(self.raw()) }
    }

    /// The built-in chat template (`name` = None for the default one).
    pub fn chat_template(&self, name: Option<&str>) -> Result<Option<String>> {
        let name_c = name.map(|n| to_cstring("template name", n)).transpose()?;
        // SAFETY: a live model; name is NULL or a valid C string; the result is owned by the model.
        let text = unsafe {
            (self.llama().llama_model_chat_template)(
                self.raw(),
                name_c.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
            )
        };
        if text.is_null() {
            return Ok(None);
        }
        // SAFETY: a NUL-terminated string owned by the model.
        Ok(Some(
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned(),
        ))
    }

    /// One metadata value as a string.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        let key_c = to_cstring("metadata key", key)?;
        // SAFETY: a live model; key is a valid C string; buffer from read_string.
        Ok(read_string(|buf, len| unsafe {
            (self.llama().llama_model_meta_val_str)(self.raw(), key_c.as_ptr(), buf, len)
        }))
    }

    /// Every metadata key/value (arrays are summarised by llama.cpp).
    pub fn metadata(&self) -> Vec<(String, String)> {
        let llama = self.llama();
        // SAFETY: a live model.
        let count = unsafe { (llama.llama_model_meta_count)(self.raw()) };
        (0..count)
            .filter_map(|i| {
                // SAFETY: i < count; buffers from read_string.
                let key = read_string(|buf, len| unsafe {
                    (llama.llama_model_meta_key_by_index)(self.raw(), i, buf, len)
                })?;
                // SAFETY: as above.
                let value = read_string(|buf, len| unsafe {
                    (llama.llama_model_meta_val_str_by_index)(self.raw(), i, buf, len)
                })?;
                Some((key, value))
            })
            .collect()
    }

    fn special(
        &self,
        f: unsafe extern "C" fn(*const llama_vocab) -> sys::llama_token,
    ) -> Option<Token> {
        // SAFETY: a live vocab.
        let id = unsafe { f(self.vocab()) };
        (id != LLAMA_TOKEN_NULL).then_some(Token(id))
    }

    /// Beginning-of-sequence token.
    pub fn token_bos(&self) -> Option<Token> {
        self.special(self.llama().llama_vocab_bos)
    }
    /// End-of-sequence token.
    pub fn token_eos(&self) -> Option<Token> {
        self.special(self.llama().llama_vocab_eos)
    }
    /// End-of-turn token.
    pub fn token_eot(&self) -> Option<Token> {
        self.special(self.llama().llama_vocab_eot)
    }
    /// Sentence separator token.
    pub fn token_sep(&self) -> Option<Token> {
        self.special(self.llama().llama_vocab_sep)
    }
    /// Newline token.
    pub fn token_nl(&self) -> Option<Token> {
        self.special(self.llama().llama_vocab_nl)
    }
    /// Padding token.
    pub fn token_pad(&self) -> Option<Token> {
        self.special(self.llama().llama_vocab_pad)
    }
    /// Fill-in-the-middle prefix token.
    pub fn token_fim_pre(&self) -> Option<Token> {
        self.special(self.llama().llama_vocab_fim_pre)
    }
    /// Fill-in-the-middle suffix token.
    pub fn token_fim_suf(&self) -> Option<Token> {
        self.special(self.llama().llama_vocab_fim_suf)
    }
    /// Fill-in-the-middle middle token.
    pub fn token_fim_mid(&self) -> Option<Token> {
        self.special(self.llama().llama_vocab_fim_mid)
    }

    /// Whether `token` ends generation (EOS, EOT, ...).
    pub fn is_end_of_generation(&self, token: Token) -> bool {
        if self.check_token(token).is_err() {
            return false;
        }
        // SAFETY: a live vocab; token checked to be in range.
        unsafe { (self.llama().llama_vocab_is_eog)(self.vocab(), token.0) }
    }

    /// `Ok` if `token` is in the vocabulary.
    pub fn check_token(&self, token: Token) -> Result<()> {
        let n_vocab = self.n_vocab();
        if token.0 < 0 || token.0 >= n_vocab {
            return Err(Error::TokenOutOfRange {
                token: token.0,
                n_vocab,
            });
        }
        Ok(())
    }

    /// Tokenizes `text`. `add_special` adds BOS/EOS as the model wants; `parse_special` turns
    /// special-token text (`<|im_start|>`) into special tokens.
    pub fn tokenize(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<Token>> {
        let len = i32::try_from(text.len()).map_err(|_| Error::InvalidArgument {
            parameter: "text",
            reason: "longer than 2 GiB".into(),
        })?;
        let mut tokens: Vec<sys::llama_token> = vec![0; text.len() / 2 + 8];
        loop {
            let capacity = i32::try_from(tokens.len()).unwrap_or(i32::MAX);
            // SAFETY: a live vocab; text points to len bytes; tokens has `capacity` slots.
            let n = unsafe {
                (self.llama().llama_tokenize)(
                    self.vocab(),
                    text.as_ptr().cast(),
                    len,
                    tokens.as_mut_ptr(),
                    capacity,
                    add_special,
                    parse_special,
                )
            };
            if n == i32::MIN {
                return Err(Error::InvalidArgument {
                    parameter: "text",
                    reason: "too many tokens".into(),
                });
            }
            if n >= 0 {
                tokens.truncate(n as usize);
                return Ok(tokens.into_iter().map(Token).collect());
            }
            tokens.resize((-n) as usize, 0);
        }
    }

    /// The bytes of one token (`special`: render special tokens as text).
    pub fn token_to_bytes(&self, token: Token, special: bool) -> Result<Vec<u8>> {
        self.check_token(token)?;
        let mut buffer = vec![0u8; 32];
        loop {
            let capacity = i32::try_from(buffer.len()).unwrap_or(i32::MAX);
            // SAFETY: a live vocab; token in range; buffer has `capacity` bytes.
            let n = unsafe {
                (self.llama().llama_token_to_piece)(
                    self.vocab(),
                    token.0,
                    buffer.as_mut_ptr().cast(),
                    capacity,
                    0,
                    special,
                )
            };
            if n >= 0 {
                buffer.truncate(n as usize);
                return Ok(buffer);
            }
            buffer.resize((-n) as usize, 0);
        }
    }

    /// The text of one token; `InvalidUtf8` when the token is a partial character (use
    /// [`Self::token_to_bytes`] or the streaming generator, which joins pieces).
    pub fn token_to_piece(&self, token: Token, special: bool) -> Result<String> {
        let bytes = self.token_to_bytes(token, special)?;
        String::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
            what: "token piece",
            valid_up_to: e.utf8_error().valid_up_to(),
        })
    }

    /// Turns tokens back into text.
    pub fn detokenize(
        &self,
        tokens: &[Token],
        remove_special: bool,
        unparse_special: bool,
    ) -> Result<String> {
        for token in tokens {
            self.check_token(*token)?;
        }
        let n_tokens = i32::try_from(tokens.len()).map_err(|_| Error::InvalidArgument {
            parameter: "tokens",
            reason: "too many".into(),
        })?;
        let mut buffer = vec![0u8; tokens.len() * 8 + 16];
        loop {
            let capacity = i32::try_from(buffer.len()).unwrap_or(i32::MAX);
            // SAFETY: Token is repr(transparent) over llama_token; all ids checked; buffer has
            // `capacity` bytes.
            let n = unsafe {
                (self.llama().llama_detokenize)(
                    self.vocab(),
                    tokens.as_ptr().cast(),
                    n_tokens,
                    buffer.as_mut_ptr().cast(),
                    capacity,
                    remove_special,
                    unparse_special,
                )
            };
            if n >= 0 {
                buffer.truncate(n as usize);
                return String::from_utf8(buffer).map_err(|e| Error::InvalidUtf8 {
                    what: "detokenized text",
                    valid_up_to: e.utf8_error().valid_up_to(),
                });
            }
            buffer.resize((-n) as usize, 0);
        }
    }

    /// The model's recommended sampling settings from its metadata (`general.sampling.*`).
    pub fn sampling_defaults(&self) -> SamplingDefaults {
        let get = |key: sys::llama_model_meta_key| -> Option<String> {
            // SAFETY: returns a static string for a valid enum value.
            let name = unsafe { (self.llama().llama_model_meta_key_str)(key) };
            if name.is_null() {
                return None;
            }
            // SAFETY: a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned();
            self.meta(&name).ok().flatten()
        };
        let float = |key| get(key).and_then(|v| v.parse::<f32>().ok());
        SamplingDefaults {
            top_k: get(sys::LLAMA_MODEL_META_KEY_SAMPLING_TOP_K).and_then(|v| v.parse().ok()),
            top_p: float(sys::LLAMA_MODEL_META_KEY_SAMPLING_TOP_P),
            min_p: float(sys::LLAMA_MODEL_META_KEY_SAMPLING_MIN_P),
            temperature: float(sys::LLAMA_MODEL_META_KEY_SAMPLING_TEMP),
            repeat_penalty: float(sys::LLAMA_MODEL_META_KEY_SAMPLING_PENALTY_REPEAT),
            penalty_last_n: get(sys::LLAMA_MODEL_META_KEY_SAMPLING_PENALTY_LAST_N)
                .and_then(|v| v.parse().ok()),
        }
    }
}

/// Sampling settings a model recommends in its metadata (absent keys are `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplingDefaults {
    /// `general.sampling.top_k`
    pub top_k: Option<i32>,
    /// `general.sampling.top_p`
    pub top_p: Option<f32>,
    /// `general.sampling.min_p`
    pub min_p: Option<f32>,
    /// `general.sampling.temp`
    pub temperature: Option<f32>,
    /// `general.sampling.penalty_repeat`
    pub repeat_penalty: Option<f32>,
    /// `general.sampling.penalty_last_n`
    pub penalty_last_n: Option<i32>,
}
