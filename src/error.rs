//! Error types. Every error names what is at fault (path, symbol, version, parameter), belongs to
//! a [`Category`] and carries an actionable [`hint`](LoadError::hint).

use std::path::PathBuf;

pub use crate::category::Category;

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
    #[error("{requested} cannot be loaded: this process already uses the llama.cpp build in {loaded} (one build per process: run a model that needs another build in a worker::WorkerModel)")]
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
    /// The configuration file (`backend_config.json`) cannot be read, or a key has a value of
    /// the wrong type.
    #[error("configuration file {}: {}{reason}", path.display(), if key.is_empty() { String::new() } else { format!("key `{key}`: ") })]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The key at fault (empty for the whole file).
        key: String,
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

impl From<crate::sys::MissingSymbol> for LoadError {
    fn from(missing: crate::sys::MissingSymbol) -> Self {
        LoadError::MissingSymbol {
            path: missing.path,
            symbol: missing.symbol,
        }
    }
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
            LoadError::InvalidConfiguration { .. }
            | LoadError::ConfigFile { .. }
            | LoadError::ConflictingBuild { .. } => Category::Configuration,
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
            LoadError::ConfigFile { .. } => "fix or remove the key (GGUF_LOADER_CONFIG names another file; empty: none); `cargo run --example doctor` shows the effective configuration",
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
    /// The model (or context) cannot do this: no weights, no encoder, no output head, ...
    #[error("{operation} is not supported here: {reason}")]
    NotSupported {
        /// What was attempted.
        operation: &'static str,
        /// Why it is not possible.
        reason: String,
    },
    /// A sampler was used with a context of another model than the one it was built for.
    #[error("the sampler was built for {sampler_model}, but the context runs {context_model}")]
    ModelMismatch {
        /// The sampler's model file.
        sampler_model: std::path::PathBuf,
        /// The context's model file.
        context_model: std::path::PathBuf,
    },
    /// The chain's grammar does not allow the token (or any token) here.
    #[error("grammar rejected {}: {reason}", token.map_or("every candidate".to_string(), |t| format!("token {t}")))]
    GrammarRejected {
        /// The rejected token (`None`: the grammar left no candidate).
        token: Option<crate::Token>,
        /// Why.
        reason: String,
    },
    /// Sampling produced no usable token.
    #[error("sampling failed: {reason}")]
    Sampling {
        /// Why.
        reason: String,
    },
    /// An output index that the last decode did not produce.
    #[error("{what} index {index} is not an output of the last decode (output rows: {rows:?}; negative indices count from the last output)")]
    OutputOutOfRange {
        /// Logits or embeddings.
        what: &'static str,
        /// The index asked for.
        index: i32,
        /// The batch indices that have outputs.
        rows: Vec<i32>,
    },
    /// A sequence id outside `0..n_seq_max`.
    #[error("sequence id {seq_id} is outside this context's 0..{n_seq_max}")]
    SequenceOutOfRange {
        /// The id.
        seq_id: i32,
        /// The context's number of sequences.
        n_seq_max: u32,
    },
    /// A user callback panicked; the panic was caught before it could reach C.
    #[error("the {callback} callback panicked")]
    CallbackPanicked {
        /// Which callback.
        callback: &'static str,
    },
    /// A chat template is missing, does not parse, failed while rendering, raised an exception
    /// (`raise_exception(...)`), or is not a built-in template of llama.cpp.
    #[error("{}", chat_template_message(.kind, .message, .line))]
    ChatTemplate {
        /// What went wrong.
        kind: crate::chat::TemplateErrorKind,
        /// The template engine's message, or the template's own for
        /// [`TemplateErrorKind::Raised`](crate::chat::TemplateErrorKind::Raised).
        message: String,
        /// The template line (1-based), when known.
        line: Option<usize>,
    },
    /// Chat messages that cannot be used: malformed JSON, a message without role or content, an
    /// unknown role, a NUL byte where C strings are needed.
    #[error("invalid chat messages: {}{reason}", index.map_or(String::new(), |i| format!("message {i}: ")))]
    ChatMessages {
        /// The index of the offending message (`None`: the document as a whole).
        index: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// A saved context state could not be written, or was refused when loading (checked before
    /// any byte reached llama.cpp).
    #[error("context state{}: {problem}: {reason}", path.as_ref().map_or(String::new(), |p| format!(" {}", p.display())))]
    State {
        /// The state file (`None` for states in memory).
        path: Option<PathBuf>,
        /// What kind of problem.
        problem: StateProblem,
        /// The details (which field, what was found and expected).
        reason: String,
    },
    /// `llama_model_quantize` refused the input or failed while writing the output (the inputs
    /// passed the checks in Rust first: see [`crate::Model::quantize`]).
    #[error("cannot quantize {} into {}: {reason}", input.display(), output.display())]
    Quantize {
        /// The model file to quantize.
        input: PathBuf,
        /// The file to write.
        output: PathBuf,
        /// Why.
        reason: String,
    },
    /// Two models that must share a vocabulary (speculative decoding: target and draft) do not.
    #[error("the vocabularies of {} and {} differ: {reason}", target.display(), draft.display())]
    VocabularyMismatch {
        /// The target model's file.
        target: PathBuf,
        /// The draft model's file.
        draft: PathBuf,
        /// The first differing token id, when the difference is a token.
        token: Option<i32>,
        /// What differs.
        reason: String,
    },
    /// A model could not be downloaded (feature `download`).
    #[cfg(feature = "download")]
    #[error(transparent)]
    Download(#[from] crate::download::DownloadError),
    /// An RPC endpoint, server or server configuration was refused, or a server could not be
    /// used (found out in Rust, before ggml-rpc saw the endpoint: see [`crate::rpc`]).
    #[error("RPC {endpoint}: {problem}: {reason}")]
    Rpc {
        /// The endpoint as given (`HOST:PORT`), or the list of them.
        endpoint: String,
        /// What kind of problem.
        problem: crate::rpc::RpcProblem,
        /// The details.
        reason: String,
    },
    /// A worker process ([`crate::worker`]) exited or was killed: an abort in llama.cpp (a
    /// lost RPC server, a crashing driver) ends the worker, not this process.
    #[error("the worker process died ({status}){}", tail_suffix(.stderr_tail))]
    WorkerDied {
        /// How it ended (`exit status 1`, `killed by signal 6 (SIGABRT)`).
        status: String,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// A worker process sent nothing for too long (a stalled device or server) and was killed.
    #[error("the worker process sent nothing for {waited:?} and was killed{}", tail_suffix(.stderr_tail))]
    WorkerStalled {
        /// How long it was silent.
        waited: std::time::Duration,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// A worker process reported an error of its own (its [`Error`]'s category and message),
    /// or could not be started or understood.
    #[error("worker: {message}")]
    Worker {
        /// The category of the worker's error.
        category: Category,
        /// Its message.
        message: String,
    },
    /// A LoRA adapter file was refused (checked before llama.cpp read it), llama.cpp could not
    /// load it, or it was applied to a context of another model.
    #[error("LoRA adapter {}: {problem}: {reason}", path.display())]
    Adapter {
        /// The adapter file.
        path: PathBuf,
        /// What kind of problem.
        problem: AdapterProblem,
        /// The details (which key or tensor, what was found and expected).
        reason: String,
    },
}

/// What is wrong with a LoRA adapter ([`Error::Adapter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterProblem {
    /// Not a LoRA adapter: `general.type` is not `adapter`, `adapter.type` is not `lora`, a key
    /// has the wrong type, or a tensor name or type is not one of a LoRA adapter.
    #[error("not a LoRA adapter")]
    NotAnAdapter,
    /// Made for another architecture than the model's.
    #[error("architecture mismatch")]
    Architecture,
    /// A tensor the model does not have, or of another shape (an adapter for another model).
    #[error("adapter does not fit the model")]
    Shape,
    /// A kind of adapter this crate does not apply (e.g. on 3-D expert tensors).
    #[error("unsupported adapter")]
    Unsupported,
    /// Loaded for another model than the context's.
    #[error("adapter of another model")]
    OtherModel,
    /// llama.cpp refused it (see its log).
    #[error("refused by llama.cpp")]
    Rejected,
}

/// What is wrong with a saved context state ([`Error::State`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateProblem {
    /// Reading or writing the file failed (missing, a directory, no permission, ...).
    #[error("i/o error")]
    Io,
    /// The bytes do not start with the state container's magic.
    #[error("not a gguf-loader state")]
    NotAState,
    /// The container's format version is not the one this crate writes.
    #[error("unsupported state format version")]
    FormatVersion,
    /// The data ends before the container does.
    #[error("truncated")]
    Truncated,
    /// The checksum does not match, or the container's fields contradict each other.
    #[error("corrupt")]
    Corrupt,
    /// Saved by another llama.cpp / ggml build than the loaded one.
    #[error("saved by another llama.cpp build")]
    OtherBuild,
    /// Saved with another model.
    #[error("saved with another model")]
    OtherModel,
    /// The context's shape (sizes, sequences, cache layout) does not fit the state.
    #[error("context mismatch")]
    ContextMismatch,
    /// A whole-context state given where a sequence state is expected, or the reverse.
    #[error("wrong kind of state")]
    WrongKind,
    /// The token history does not fit the state or the context (length, positions, ids).
    #[error("token history mismatch")]
    History,
    /// llama.cpp refused the state (or produced none).
    #[error("refused by llama.cpp")]
    Rejected,
}

fn chat_template_message(
    kind: &crate::chat::TemplateErrorKind,
    message: &str,
    line: &Option<usize>,
) -> String {
    use crate::chat::TemplateErrorKind as K;
    let at = line.map_or(String::new(), |l| format!(" (line {l})"));
    match kind {
        K::Missing => format!("no chat template: {message}"),
        K::Syntax => format!("chat template does not parse{at}: {message}"),
        K::Render => format!("chat template failed to render{at}: {message}"),
        K::Raised => format!("chat template raised an exception{at}: {message}"),
        K::UnknownBuiltin => format!("not a built-in chat template of llama.cpp: {message}"),
    }
}

/// The last few non-empty lines of a worker's stderr, for a one-line message.
fn tail_suffix(tail: &str) -> String {
    let lines: Vec<&str> = tail
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(3);
    format!("; its stderr ended with: {}", lines[start..].join(" | "))
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
            #[cfg(feature = "download")]
            Error::Download(e) => e.category(),
            Error::ModelLoad { .. } | Error::ModelLoadCancelled { .. } | Error::Gguf(_) => {
                Category::Model
            }
            Error::Unsupported { .. } => Category::Installation,
            Error::State {
                problem: StateProblem::OtherBuild,
                ..
            } => Category::Installation,
            Error::NotSupported { .. } => Category::Model,
            Error::Adapter {
                problem: AdapterProblem::OtherModel,
                ..
            } => Category::Configuration,
            Error::Adapter { .. } => Category::Model,
            Error::ChatTemplate {
                kind:
                    crate::chat::TemplateErrorKind::Missing | crate::chat::TemplateErrorKind::Syntax,
                ..
            } => Category::Model,
            Error::Decode(DecodeError::Failed(_)) | Error::Null { .. } => Category::Hardware,
            Error::Rpc { problem, .. } => problem.category(),
            Error::WorkerDied { .. } | Error::WorkerStalled { .. } => Category::Hardware,
            Error::Worker { category, .. } => *category,
            _ => Category::Configuration,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Error::Load(e) => e.hint(),
            Error::Gguf(e) => e.hint(),
            #[cfg(feature = "download")]
            Error::Download(e) => e.hint(),
            Error::ModelLoad { .. } => "check that the file is a complete GGUF model of an architecture this llama.cpp supports (see the llama.cpp log)",
            Error::ModelLoadCancelled { .. } => "the application's progress callback returned false",
            Error::InvalidArgument { .. } => "fix the argument named in the message",
            Error::TokenOutOfRange { .. } => "use token ids from this model's tokenizer",
            Error::ContextOverflow { .. } | Error::Decode(DecodeError::NoKvSlot) => "use a larger n_ctx, a shorter prompt or fewer generated tokens",
            Error::Decode(DecodeError::Aborted) => "the abort callback or a cancellation stopped the computation",
            Error::Decode(_) => "see the llama.cpp log (target `llama.cpp`) for the cause",
            Error::Null { .. } => "see the llama.cpp log (target `llama.cpp`); often out of memory or an unsupported parameter",
            Error::Unsupported { .. } => "use the non-deprecated replacement function",
            Error::NotSupported { .. } => "use a model that supports this (see the message), or another call",
            Error::ModelMismatch { .. } => "build the sampler with the context's model (Sampler::builder(context.model()))",
            Error::GrammarRejected { .. } => "sample with the grammar in the chain, or pass tokens the grammar allows",
            Error::Sampling { .. } => "check the sampler parameters and the model's logits",
            Error::OutputOutOfRange { .. } => "read outputs of tokens added with logits = true in the last decoded batch",
            Error::SequenceOutOfRange { .. } => "use sequence ids below ContextParams::n_seq_max",
            Error::CallbackPanicked { .. } => "fix the panic in the callback",
            Error::ChatTemplate { kind, .. } => match kind {
                crate::chat::TemplateErrorKind::Missing => "pass a template (ChatTemplate::new) or use a built-in one (chat::apply_builtin)",
                crate::chat::TemplateErrorKind::Syntax => "fix the template at the line named (Jinja syntax, as Hugging Face transformers renders it)",
                crate::chat::TemplateErrorKind::Render => "check the messages and variables against what the template expects",
                crate::chat::TemplateErrorKind::Raised => "the template rejected the conversation (see its message): e.g. fix the order of roles",
                crate::chat::TemplateErrorKind::UnknownBuiltin => "use a name from chat::builtin_template_names",
            },
            Error::ChatMessages { .. } => "give each message a role (system, user, assistant or tool) and string content",
            Error::InvalidUtf8 { .. } => "pass valid UTF-8, or use the byte-level function",
            Error::Quantize { .. } => "see the llama.cpp log (target `llama.cpp`) for the cause; check the free space of the output's directory",
            Error::VocabularyMismatch { .. } => "use a draft model of the same family as the target (the same tokenizer)",
            Error::Rpc { problem, .. } => problem.hint(),
            Error::WorkerDied { .. } => "see the worker's stderr (stderr_tail): a lost RPC server or a crashing backend ends the worker, not this process; spawn a new one",
            Error::WorkerStalled { .. } => "a device or RPC server stopped answering; check it, or allow more time (WorkerOptions::stall_timeout) for very long prompts",
            Error::Worker { .. } => "see the message: it is the worker's own error",
            Error::Adapter { problem, .. } => match problem {
                AdapterProblem::OtherModel => "load the adapter with the context's model (LoraAdapter::load(context.model(), ...))",
                AdapterProblem::Rejected => "see the llama.cpp log (target `llama.cpp`) for the cause",
                _ => "use a GGUF LoRA adapter converted for this base model (convert_lora_to_gguf.py with the model's base)",
            },
            Error::State { problem, .. } => match problem {
                StateProblem::Io => "check that the path names a readable state file (or a writable directory when saving)",
                StateProblem::NotAState | StateProblem::FormatVersion => "load a state saved by this version of gguf-loader (Context::save_state_file)",
                StateProblem::Truncated | StateProblem::Corrupt => "the state is damaged: save it again from the original context",
                StateProblem::OtherBuild => "load the state with the llama.cpp build that saved it, or save it again with this one",
                StateProblem::OtherModel => "load the state into a context of the model that saved it",
                StateProblem::ContextMismatch => "create the context with the parameters of the one that saved the state (n_ctx, n_seq_max, kv_unified, embeddings)",
                StateProblem::WrongKind => "load whole-context states with state_from_bytes/load_state_file and sequence states with the seq_ variants",
                StateProblem::History => "pass the tokens that are in the context's memory (every decoded token of the sequence, in order)",
                StateProblem::Rejected => "see the llama.cpp log (target `llama.cpp`) for the cause",
            },
        }
    }
}

/// Result of the safe API.
pub type Result<T, E = Error> = std::result::Result<T, E>;
