//! What the examples share: the `main` shape (help, usage errors, exit codes), variant
//! selection from `--variant` / `--variant-dir`, and the default model. Included by each example
//! with `mod support;` (not an example itself).
#![allow(dead_code)]

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gguf_loader::loader::config::{BackendConfig, BackendSettings};
use gguf_loader::loader::{SearchPaths, SelectOptions};

/// How an option is written on the command line, for messages.
pub fn flag_name(arg: &lexopt::Arg) -> String {
    match arg {
        lexopt::Arg::Short(c) => format!("-{c}"),
        lexopt::Arg::Long(name) => format!("--{name}"),
        lexopt::Arg::Value(value) => value.to_string_lossy().into_owned(),
    }
}

/// The value of option `flag` as UTF-8 text.
pub fn text(parser: &mut lexopt::Parser, flag: &str) -> Result<String, String> {
    parser
        .value()
        .map_err(|_| format!("{flag} needs a value"))?
        .into_string()
        .map_err(|v| format!("invalid value for {flag}: {v:?}"))
}

/// The value of option `flag`, parsed.
pub fn parsed<T: std::str::FromStr>(parser: &mut lexopt::Parser, flag: &str) -> Result<T, String> {
    let value = text(parser, flag)?;
    value
        .parse()
        .map_err(|_| format!("invalid value for {flag}: {value:?}"))
}

/// The value of option `flag` as a path (any bytes).
pub fn path(parser: &mut lexopt::Parser, flag: &str) -> Result<PathBuf, String> {
    parser
        .value()
        .map(PathBuf::from)
        .map_err(|_| format!("{flag} needs a value"))
}

/// `$GGUF_LOADER_SMOLLM2`, else the configuration file's `model_path`, else the cached SmolLM2.
pub fn default_model() -> PathBuf {
    std::env::var_os("GGUF_LOADER_SMOLLM2")
        .map(PathBuf::from)
        .or_else(|| BackendConfig::load().ok().and_then(|c| c.model_path.value))
        .unwrap_or_else(|| {
            gguf_loader::loader::discovery::cache_root()
                .join("models")
                .join("SmolLM2-135M-Instruct-Q4_1.gguf")
        })
}

/// The configuration file's model and context settings for `variant` (none when there is no
/// file; a bad file was already reported by [`select_options`]).
pub fn backend_settings(variant: &str) -> BackendSettings {
    BackendConfig::load()
        .map(|config| config.settings_for(variant))
        .unwrap_or_default()
}

/// Selection options from the configuration file and the environment, narrowed by `--variant` and `--variant-dir`.
pub fn select_options(
    variant: Option<&str>,
    variant_dir: Option<&Path>,
) -> Result<SelectOptions, Box<dyn Error>> {
    let mut options = SelectOptions::from_env()?;
    if let Some(dir) = variant_dir {
        options.search = SearchPaths::new().with_dir(dir).only_explicit();
    }
    if let Some(name) = variant {
        gguf_loader::loader::select::check_name("--variant", name)?;
        options.force = Some(name.to_string());
    }
    Ok(options)
}

/// The examples' `main`: answers a smoke-test request, serves as a worker when started as
/// one (`gguf_loader::worker`), parses the arguments (help: usage and
/// exit 0; a usage error: `error: ...` and exit 2), runs, and turns a failure into a one-line
/// `error: ...` with exit 1.
pub fn main_with<A>(
    usage: &str,
    options: &str,
    parse: impl FnOnce() -> Result<Option<A>, String>,
    run: impl FnOnce(A) -> Result<(), Box<dyn Error>>,
) -> ExitCode {
    gguf_loader::loader::smoke::run_if_requested();
    // A worker child (gguf_loader::worker) serves its parent and exits here.
    gguf_loader::worker::run_if_requested();
    let args = match parse() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{usage}\n\n{options}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error.to_string().replace('\n', "; "));
            ExitCode::FAILURE
        }
    }
}

/// What the embed and rerank examples take from their command lines to set up an embedder.
pub struct EmbedderArgs<'a> {
    /// `--variant`.
    pub variant: Option<&'a str>,
    /// `--variant-dir`.
    pub variant_dir: Option<&'a Path>,
    /// `--model`.
    pub model: &'a Path,
    /// `--n-ctx` (default: the model's training context, at most 1024).
    pub n_ctx: Option<u32>,
    /// `--threads`.
    pub threads: Option<i32>,
}

/// Loads the model on the best variant (CPU only), prints the `variant:` line on stderr and
/// makes an embedder whose one decode takes all of a pooled sequence (n_batch = n_ubatch =
/// n_ctx).
pub fn cpu_embedder(
    args: &EmbedderArgs<'_>,
    pooling: gguf_loader::Pooling,
    normalize: bool,
) -> Result<gguf_loader::engine::embed::Embedder, Box<dyn Error>> {
    let options = select_options(args.variant, args.variant_dir)?;
    let (selection, model) = gguf_loader::Model::load_best(&options, args.model, |_| {
        gguf_loader::ModelParams::new().with_gpu_layers(gguf_loader::GpuLayers::None)
    })?;
    eprintln!("variant: {}", selection.variant);
    let n_ctx = args
        .n_ctx
        .unwrap_or_else(|| model.n_ctx_train().clamp(1, 1024) as u32);
    let mut params = gguf_loader::ContextParams::default()
        .with_n_ctx(n_ctx)
        .with_n_batch(n_ctx)
        .with_n_ubatch(n_ctx);
    if let Some(threads) = args.threads {
        params = params.with_threads(threads);
    }
    Ok(gguf_loader::engine::embed::Embedder::new(
        &model, pooling, normalize, params,
    )?)
}
