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
