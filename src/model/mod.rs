//! [`Model`]: a loaded GGUF model (weights + vocabulary).
//!
//! - [`params`]: [`ModelParams`], [`GpuLayers`], [`SplitMode`], metadata overrides;
//! - `load`: pre-flight, parameter checks, `llama_model_load_from_file`, progress callback;
//! - `vocab`: tokenizer, special tokens, token ids;
//! - `metadata`: description, metadata, chat template, sampling defaults.

mod byte_fallback;
mod load;
mod metadata;
pub mod params;
mod quantize;
mod vocab;

use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, RwLock};

use crate::error::{Error, Result};
use crate::ffi::{Api, RawModel, RawVocab};
use crate::loader::LlamaLibrary;

pub use metadata::SamplingDefaults;
pub use params::{GpuLayers, MetadataValue, ModelParams, SplitMode};
pub use quantize::QuantType;

/// Architectures whose graphs produce embeddings only: no output head, so no logits.
const EMBEDDING_ONLY_ARCHITECTURES: &[&str] = &[
    "bert",
    "modern-bert",
    "nomic-bert",
    "nomic-bert-moe",
    "neo-bert",
    "jina-bert-v2",
    "jina-bert-v3",
    "eurobert",
    "gemma-embedding",
    "t5encoder",
    "llama-embed",
    "wavtokenizer-dec",
];

/// What the safe layer learned about a model at load time (immutable afterwards).
#[derive(Debug, Clone)]
pub(crate) struct ModelFacts {
    pub(crate) path: PathBuf,
    pub(crate) architecture: String,
    pub(crate) vocab_only: bool,
    pub(crate) n_vocab: i32,
    pub(crate) has_output_head: bool,
    /// Classifier tensors (`cls.*`, `cls.output.*`): what rank pooling needs.
    pub(crate) has_classifier: bool,
    /// Causal attention (`{arch}.attention.causal`, false for embedding architectures): a
    /// non-causal model takes each batch in one physical batch.
    pub(crate) causal_attention: bool,
    /// `{arch}.rope.scaling.type` is `yarn` (in the file or an override).
    pub(crate) rope_yarn: bool,
    /// Estimated F16 KV-cache bytes for 1 Ki and 1 Mi tokens (from the file), to refuse
    /// contexts whose cache cannot fit into memory before llama.cpp allocates and clears it.
    pub(crate) kv_estimate: (u64, u64),
    /// Layers offloaded to a GPU (0: the KV cache lives in host memory).
    pub(crate) n_gpu_layers: i32,
    pub(crate) has_encoder: bool,
    pub(crate) has_decoder: bool,
    /// A SentencePiece vocabulary without the byte tokens of some bytes: the text that would
    /// make llama.cpp's tokenizer throw is refused first.
    pub(crate) byte_fallback: Option<std::sync::Arc<byte_fallback::ByteFallbackGuard>>,
}

pub(crate) struct ModelInner {
    pub(crate) library: LlamaLibrary,
    pub(crate) raw: NonNull<RawModel>,
    pub(crate) vocab: NonNull<RawVocab>,
    pub(crate) facts: ModelFacts,
    /// Guards the model's mutable state in llama.cpp (its set of LoRA adapters): loading or
    /// freeing an adapter writes it (`write`); creating a context and decoding read it
    /// (`read`), so they run concurrently with each other but never with an adapter change.
    pub(crate) shared_state: RwLock<()>,
    /// The RPC servers the model uses, counted while it lives (dropped after the model is
    /// freed: fields drop after `Drop::drop`).
    pub(crate) _rpc_lease: Option<crate::rpc::RpcLease>,
}

// SAFETY: after loading, a llama_model (and its vocab) is only read by the functions the safe
// layer calls, except llama_adapter_lora_init/_free, which write its adapter set under the
// write side of `shared_state`, while context creation and decoding (which read that set) hold
// its read side (llama_init_from_model's other write, for YaRN scales, is refused). Tokenization is thread-safe in llama.cpp (the
// vocab's caches are built at load). Freeing happens once, in Drop, when no handle is left.
unsafe impl Send for ModelInner {}
// SAFETY: see above: every method takes `&self` and calls read-only llama.cpp functions, or
// holds the per-model lock.
unsafe impl Sync for ModelInner {}

impl Drop for ModelInner {
    fn drop(&mut self) {
        // SAFETY: the pointer came from llama_model_load_from_file and is freed exactly once;
        // every Context and Sampler holds a Model, so none outlives it.
        unsafe { Api::of(&self.library).model_free(self.raw.as_ptr()) };
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
            .field("path", &self.inner.facts.path)
            .field("architecture", &self.inner.facts.architecture)
            .finish()
    }
}

impl PartialEq for Model {
    /// Two handles are equal when they are the same loaded model (not the same file).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Model {}

impl Model {
    /// The library this model was loaded with.
    pub fn library(&self) -> &LlamaLibrary {
        &self.inner.library
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.facts.path
    }

    /// `general.architecture` of the file (`llama`, `gemma3`, `bert`, ...).
    pub fn architecture(&self) -> &str {
        &self.inner.facts.architecture
    }

    /// Whether only the vocabulary was loaded ([`ModelParams::vocab_only`]).
    pub fn is_vocab_only(&self) -> bool {
        self.inner.facts.vocab_only
    }

    /// Whether the model produces logits (a language-model head). Embedding-only
    /// architectures (BERT and relatives, T5 encoders) do not.
    pub fn has_output_head(&self) -> bool {
        self.inner.facts.has_output_head
    }

    pub(crate) fn raw(&self) -> *mut RawModel {
        self.inner.raw.as_ptr()
    }

    pub(crate) fn vocab(&self) -> *const RawVocab {
        self.inner.vocab.as_ptr()
    }

    pub(crate) fn api(&self) -> Api<'_> {
        Api::of(&self.inner.library)
    }

    pub(crate) fn facts(&self) -> &ModelFacts {
        &self.inner.facts
    }

    /// Total size of the tensors in bytes.
    #[doc(alias = "llama_model_size")]
    pub fn size(&self) -> u64 {
        // SAFETY: a live model.
        unsafe { self.api().model_size(self.raw()) }
    }

    /// Number of parameters.
    #[doc(alias = "llama_model_n_params")]
    pub fn n_params(&self) -> u64 {
        // SAFETY: a live model.
        unsafe { self.api().model_n_params(self.raw()) }
    }

    /// Context length the model was trained with.
    #[doc(alias = "llama_model_n_ctx_train")]
    pub fn n_ctx_train(&self) -> i32 {
        // SAFETY: a live model.
        unsafe { self.api().model_n_ctx_train(self.raw()) }
    }

    /// Embedding size.
    #[doc(alias = "llama_model_n_embd")]
    pub fn n_embd(&self) -> i32 {
        // SAFETY: a live model.
        unsafe { self.api().model_n_embd(self.raw()) }
    }

    /// Size of the embeddings the model outputs (pooled or per token).
    #[doc(alias = "llama_model_n_embd_out")]
    pub fn n_embd_out(&self) -> i32 {
        // SAFETY: a live model.
        unsafe { self.api().model_n_embd_out(self.raw()) }
    }

    /// Number of classifier outputs (rerankers: scores per sequence with rank pooling).
    #[doc(alias = "llama_model_n_cls_out")]
    pub fn n_cls_out(&self) -> u32 {
        // SAFETY: a live model.
        unsafe { self.api().model_n_cls_out(self.raw()) }
    }

    /// Number of layers.
    #[doc(alias = "llama_model_n_layer")]
    pub fn n_layer(&self) -> i32 {
        // SAFETY: a live model.
        unsafe { self.api().model_n_layer(self.raw()) }
    }

    /// Number of attention heads.
    #[doc(alias = "llama_model_n_head")]
    pub fn n_head(&self) -> i32 {
        // SAFETY: a live model.
        unsafe { self.api().model_n_head(self.raw()) }
    }

    /// Number of key/value heads.
    #[doc(alias = "llama_model_n_head_kv")]
    pub fn n_head_kv(&self) -> i32 {
        // SAFETY: a live model.
        unsafe { self.api().model_n_head_kv(self.raw()) }
    }

    /// Whether the model has an encoder (then [`crate::Context::encode`] comes first).
    #[doc(alias = "llama_model_has_encoder")]
    pub fn has_encoder(&self) -> bool {
        self.inner.facts.has_encoder
    }

    /// Whether the model has a decoder.
    #[doc(alias = "llama_model_has_decoder")]
    pub fn has_decoder(&self) -> bool {
        self.inner.facts.has_decoder
    }

    /// The token an encoder-decoder model's decoder starts from (`None`: use BOS).
    #[doc(alias = "llama_model_decoder_start_token")]
    pub fn decoder_start_token(&self) -> Option<crate::Token> {
        // SAFETY: a live model.
        let id = unsafe { self.api().model_decoder_start_token(self.raw()) };
        (id != crate::ffi::TOKEN_NULL && self.check_token(crate::Token(id)).is_ok())
            .then_some(crate::Token(id))
    }

    /// Whether the model is recurrent (Mamba, RWKV): its memory cannot be partially removed.
    #[doc(alias = "llama_model_is_recurrent")]
    pub fn is_recurrent(&self) -> bool {
        // SAFETY: a live model.
        unsafe { self.api().model_is_recurrent(self.raw()) }
    }

    /// `Ok` unless this is a vocab-only model (which has no weights to run).
    pub(crate) fn require_weights(&self, what: &'static str) -> Result<()> {
        if self.is_vocab_only() {
            return Err(Error::NotSupported {
                operation: what,
                reason: format!(
                    "{} was loaded with vocab_only: it has no weights",
                    self.path().display()
                ),
            });
        }
        Ok(())
    }

    fn from_inner(inner: ModelInner) -> Self {
        let inner = Arc::new(inner);
        register_loaded(&inner.facts.path, &inner);
        Model { inner }
    }
}

/// Architectures whose loader turns causal attention off whatever the file says.
const NON_CAUSAL_ARCHITECTURES: &[&str] =
    &["dream", "gemma-embedding", "llada", "llada-moe", "rnd1"];

pub(crate) fn is_causal(architecture: &str, declared: Option<bool>) -> bool {
    declared.unwrap_or(true) && !NON_CAUSAL_ARCHITECTURES.contains(&architecture)
}

/// Files of the models loaded in this process (llama.cpp maps them: overwriting one while it is
/// mapped would crash the process on the next read).
static LOADED_FILES: Mutex<Vec<(PathBuf, std::sync::Weak<ModelInner>)>> = Mutex::new(Vec::new());

/// Records that `inner`'s file is mapped while `inner` lives.
pub(crate) fn register_loaded(path: &Path, inner: &Arc<ModelInner>) {
    let Ok(canonical) = path.canonicalize() else {
        return;
    };
    let mut files = LOADED_FILES.lock().unwrap_or_else(|p| p.into_inner());
    files.retain(|(_, weak)| weak.strong_count() > 0);
    files.push((canonical, Arc::downgrade(inner)));
}

/// Whether a live model of this process was loaded from `canonical`.
pub(crate) fn is_loaded(canonical: &Path) -> bool {
    let files = LOADED_FILES.lock().unwrap_or_else(|p| p.into_inner());
    files
        .iter()
        .any(|(path, weak)| path == canonical && weak.strong_count() > 0)
}

pub(crate) fn has_output_head(architecture: &str) -> bool {
    !EMBEDDING_ONLY_ARCHITECTURES.contains(&architecture)
}
