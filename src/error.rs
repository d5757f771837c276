//! Error types. Every error names what is at fault (path, symbol, version, parameter), belongs to
//! a [`Category`] and carries an actionable [`hint`](LoadError::hint).

use std::fmt;
use std::path::PathBuf;

/// Who can fix an error, roughly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Category {
    /// The llama.cpp libraries are missing, broken or of the wrong build.
    Installation,
    /// The machine cannot run what was asked (CPU features, GPU, driver, memory).
    Hardware,
    /// The model file is missing, corrupt or unsupported.
    Model,
    /// A parameter, environment variable or call sequence is wrong.
    Configuration,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Category::Installation => "installation",
            Category::Hardware => "hardware",
            Category::Model => "model",
            Category::Configuration => "configuration",
        })
    }
}

/// Why a llama.cpp build could not be found, opened, verified or initialised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// No directory with the needed libraries was found.
    #[error("{what} not found; searched: {}", display_paths(.searched))]
    NotFound {
        /// What was looked for (a library file, a variant).
        what: String,
        /// Every place that was searched, in order.
        searched: Vec<PathBuf>,
    },
    /// `dlopen` (or its platform equivalent) failed.
    #[error("cannot open {path}: {reason}")]
    Open {
        /// The library file.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// A required symbol is not exported by the library that should define it.
    #[error("{path} does not export required symbol `{symbol}`")]
    MissingSymbol {
        /// The library searched.
        path: PathBuf,
        /// The C symbol name.
        symbol: String,
    },
    /// The library is not the llama.cpp build this crate was written against.
    #[error("{path} is a foreign llama.cpp build: {check} is {found}, expected {expected}")]
    AbiMismatch {
        /// The library checked.
        path: PathBuf,
        /// What was checked (`llama_version()`, `ggml_version()`, `symbol fingerprint`).
        check: String,
        /// What the library reported.
        found: String,
        /// What this crate requires.
        expected: String,
    },
    /// A variant directory's manifest could not be read or contradicts its contents.
    #[error("invalid variant manifest {path}: {reason}")]
    InvalidManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Backend initialisation failed or produced nothing usable.
    #[error("backend initialisation failed for {path}: {reason}")]
    BackendInit {
        /// The variant directory or plugin.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The libraries loaded but no device of the wanted kind is present.
    #[error("variant `{variant}` found no {backend} device")]
    NoDevice {
        /// The variant.
        variant: String,
        /// The backend that has no device.
        backend: String,
    },
    /// The hardware cannot run this variant.
    #[error("variant `{variant}` cannot run on this machine: {reason}")]
    HardwareUnsupported {
        /// The variant.
        variant: String,
        /// What is missing (instruction sets, GPU, driver).
        reason: String,
    },
    /// The variant is declared but this crate cannot load it yet.
    #[error("variant `{variant}` is not loadable by this version: {reason}")]
    NotLoadable {
        /// The variant.
        variant: String,
        /// Why.
        reason: String,
    },
    /// A different llama.cpp build is already loaded in this process.
    #[error("{requested} cannot be loaded: this process already uses the llama.cpp build in {loaded} (libraries share sonames, so one build per process)")]
    ConflictingBuild {
        /// The directory already loaded.
        loaded: PathBuf,
        /// The directory asked for.
        requested: PathBuf,
    },
    /// An environment variable or option names something that does not exist.
    #[error("invalid configuration {name}={value:?}: {reason}")]
    InvalidConfiguration {
        /// The variable or option.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// Every candidate variant was rejected.
    #[error("no llama.cpp variant could be loaded:{}", display_rejections(.rejected))]
    NoUsableVariant {
        /// Each candidate and why it was rejected, in the order tried.
        rejected: Vec<(String, String)>,
    },
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nowhere".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn display_rejections(rejected: &[(String, String)]) -> String {
    rejected
        .iter()
        .map(|(name, why)| format!("\n  - {name}: {why}"))
        .collect()
}

impl LoadError {
    /// Which kind of problem this is.
    pub fn category(&self) -> Category {
        match self {
            LoadError::NoDevice { .. } | LoadError::HardwareUnsupported { .. } => {
                Category::Hardware
            }
            LoadError::InvalidConfiguration { .. } | LoadError::ConflictingBuild { .. } => {
                Category::Configuration
            }
            _ => Category::Installation,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            LoadError::NotFound { .. } => {
                "run `variants/provision cpu` (or point GGUF_LOADER_VARIANTS_DIR at a directory of llama.cpp libraries)"
            }
            LoadError::Open { .. } => {
                "check that the file is a shared library for this platform and that its dependencies (e.g. GPU drivers) are installed"
            }
            LoadError::MissingSymbol { .. } | LoadError::AbiMismatch { .. } => {
                "use a llama.cpp build of the pinned version (llama 0.6.0-dev / ggml 0.26.0), e.g. one made by `variants/provision`"
            }
            LoadError::InvalidManifest { .. } => "rebuild the variant with `variants/provision`",
            LoadError::BackendInit { .. } | LoadError::NoDevice { .. } => {
                "check the GPU driver, or disable GPUs with GGUF_GPU_ENABLED=0 to use a CPU variant"
            }
            LoadError::HardwareUnsupported { .. } => "choose a variant this machine supports (see `cargo run --example doctor`)",
            LoadError::NotLoadable { .. } => "choose another variant",
            LoadError::ConflictingBuild { .. } => {
                "load one variant per process (run others in a child process)"
            }
            LoadError::InvalidConfiguration { .. } => "fix the value; `cargo run --example doctor` lists the known variants",
            LoadError::NoUsableVariant { .. } => "see each candidate's reason; `variants/provision cpu` builds the CPU variant",
        }
    }
}

/// `llama_decode` / `llama_encode` failures, mapped from their return codes once, here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// 1: no KV-cache slot for the batch (context full).
    #[error("no KV cache slot for the batch (the context is full; use a larger n_ctx or a smaller batch)")]
    NoKvSlot,
    /// 2: the abort callback stopped the computation.
    #[error("aborted by the abort callback")]
    Aborted,
    /// -1: the batch was rejected as invalid.
    #[error("llama.cpp rejected the batch as invalid")]
    InvalidBatch,
    /// Any other code (< -1: fatal error inside llama.cpp).
    #[error("llama.cpp failed with code {0}")]
    Failed(i32),
}

impl DecodeError {
    /// Maps a non-zero return code of `llama_decode`/`llama_encode`.
    pub fn from_code(code: i32) -> Self {
        match code {
            1 => DecodeError::NoKvSlot,
            2 => DecodeError::Aborted,
            -1 => DecodeError::InvalidBatch,
            other => DecodeError::Failed(other),
        }
    }
}

/// Errors of the safe API (model, context, batch, sampler, generation).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The llama.cpp libraries could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The model file failed the pre-flight check (before any byte reached llama.cpp).
    #[error(transparent)]
    Gguf(#[from] crate::gguf::GgufError),
    /// The model file could not be loaded by llama.cpp.
    #[error("cannot load model {path}: {reason}")]
    ModelLoad {
        /// The model file.
        path: std::path::PathBuf,
        /// Why (llama.cpp logs details through the `log` crate).
        reason: String,
    },
    /// The model load was cancelled by the progress callback.
    #[error("loading {path} was cancelled by the progress callback")]
    ModelLoadCancelled {
        /// The model file.
        path: std::path::PathBuf,
    },
    /// A parameter is out of range or malformed.
    #[error("invalid {parameter}: {reason}")]
    InvalidArgument {
        /// The parameter.
        parameter: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A token id outside the vocabulary.
    #[error("token id {token} is outside the vocabulary (0..{n_vocab})")]
    TokenOutOfRange {
        /// The token id.
        token: i32,
        /// Vocabulary size.
        n_vocab: i32,
    },
    /// The input does not fit into the context.
    #[error("{needed} tokens do not fit into the context of {n_ctx} tokens")]
    ContextOverflow {
        /// Tokens needed.
        needed: usize,
        /// Context size.
        n_ctx: u32,
    },
    /// `llama_decode`/`llama_encode` failed.
    #[error("decode failed: {0}")]
    Decode(#[from] DecodeError),
    /// A constructor returned NULL.
    #[error("{function} failed (returned NULL){}", detail_suffix(.detail))]
    Null {
        /// The C function.
        function: &'static str,
        /// What is known about why.
        detail: String,
    },
    /// An optional (deprecated) function is not exported by the loaded build.
    #[error("`{symbol}` is not available in the loaded llama.cpp build")]
    Unsupported {
        /// The C symbol.
        symbol: &'static str,
    },
    /// Text that must be UTF-8 is not.
    #[error("{what} is not valid UTF-8 (valid up to byte {valid_up_to})")]
    InvalidUtf8 {
        /// What was being converted.
        what: &'static str,
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// A user callback panicked; the panic was caught before it could reach C.
    #[error("the {callback} callback panicked")]
    CallbackPanicked {
        /// Which callback.
        callback: &'static str,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl Error {
    /// Which kind of problem this is.
    pub fn category(&self) -> Category {
        match self {
            Error::Load(e) => e.category(),
            Error::ModelLoad { .. } | Error::ModelLoadCancelled { .. } | Error::Gguf(_) => {
                Category::Model
            }
            Error::Unsupported { .. } => Category::Installation,
            Error::Decode(DecodeError::Failed(_)) | Error::Null { .. } => Category::Hardware,
            _ => Category::Configuration,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Error::Load(e) => e.hint(),
            Error::Gguf(e) => e.hint(),
            Error::ModelLoad { .. } => "check that the file is a complete GGUF model of an architecture this llama.cpp supports (see the llama.cpp log)",
            Error::ModelLoadCancelled { .. } => "the application's progress callback returned false",
            Error::InvalidArgument { .. } => "fix the argument named in the message",
            Error::TokenOutOfRange { .. } => "use token ids from this model's tokenizer",
            Error::ContextOverflow { .. } | Error::Decode(DecodeError::NoKvSlot) => "use a larger n_ctx, a shorter prompt or fewer generated tokens",
            Error::Decode(DecodeError::Aborted) => "the abort callback or a cancellation stopped the computation",
            Error::Decode(_) => "see the llama.cpp log (target `llama.cpp`) for the cause",
            Error::Null { .. } => "see the llama.cpp log (target `llama.cpp`); often out of memory or an unsupported parameter",
            Error::Unsupported { .. } => "use the non-deprecated replacement function",
            Error::CallbackPanicked { .. } => "fix the panic in the callback",
            Error::InvalidUtf8 { .. } => "pass valid UTF-8, or use the byte-level function",
        }
    }
}

/// Result of the safe API.
pub type Result<T, E = Error> = std::result::Result<T, E>;
