//! Streams a completion from a GGUF model.
//!
//! ```text
//! generate [--model PATH]... [-n N] [--greedy | --temp T --top-k K --top-p P --min-p P --repeat-penalty R]
//!          [--seed S] [--threads T] [--variant NAME] [--variant-dir DIR] [--token-ids]
//!          [--lora PATH[:SCALE]]... [--save-state FILE] [--draft-model PATH [--draft-max K]]
//!          [--rpc HOST:PORT[,HOST:PORT...]] (PROMPT | --resume FILE)
//! ```
//! With `--rpc` the model runs in a worker process (`gguf_loader::worker`) whose layers go to
//! the listed RPC servers' devices (all layers unless `--gpu-layers` says otherwise); stderr
//! reports `devices: NAME (ENDPOINT): N layers, ...`. A server lost mid-generation ends the
//! worker, and this program exits with an error instead of aborting.
//! With `--draft-model` the completion is greedy and decoded speculatively: the draft model
//! proposes up to K tokens that the model checks in one batch; stderr reports
//! `draft: accepted A of D`.
//! Built with `--features download`, a `--model` of `hf://OWNER/REPO/FILE[@REVISION]` or an
//! `http(s)://` URL is fetched first (into the hub cache, or the crate's cache for URLs).
//! With `--model` given more than once, the same prompt is completed by each model in turn, in
//! one run: each model goes to the variant its file calls for (a BitNet-fork model to a
//! `bitnet-cpu-*` build, any other to upstream's), and stderr has `model: PATH` before and a
//! `variant:` line after each. The first model's code base runs in this process; a model of the
//! other code base runs in a worker process (`gguf_loader::worker`), so a crash there is that
//! model's error (`error: model N (PATH): ...`) and the other models keep generating. The run
//! then exits 1 if any model failed.
//! The prompt is tokenized as is (special tokens added and parsed, no chat template). Text is
//! streamed to stdout; the chosen variant and tokens/s go to stderr. Any failure exits non-zero
//! with a one-line error.

mod support;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use gguf_loader::loader::VariantKind;
use gguf_loader::{
    Context, ContextParams, GenerateOptions, GpuLayers, Model, ModelParams, Prompt, Sampler,
    Session,
};

const USAGE: &str = "usage: generate [--model PATH]... [-n N] [--greedy | --temp T --top-k K --top-p P --min-p P --repeat-penalty R] [--seed S] [--threads T] [--variant NAME] [--variant-dir DIR] [--gpu-layers N|all|auto] [--token-ids] [--lora PATH[:SCALE]]... [--save-state FILE] [--draft-model PATH [--draft-max K]] [--rpc HOST:PORT[,HOST:PORT...]] (PROMPT | --resume FILE)";

const OPTIONS: &str = "\
Streams a completion of PROMPT (tokenized as is, no chat template) to stdout; the chosen variant
and tokens/s go to stderr.

options:
  -m, --model PATH          GGUF model (default: $GGUF_LOADER_SMOLLM2, else the cached SmolLM2);
                            built with --features download also hf://OWNER/REPO/FILE[@REV] or
                            an http(s):// URL, fetched first (resumed, sha256-checked); repeat
                            it to complete PROMPT with each model in turn (a model of the other
                            code base than the first, upstream or BitNet, runs in a worker
                            process); excludes --lora, --save-state, --resume, --draft-model
                            and --rpc
  -n, --n-predict N         tokens to generate (default 64)
      --greedy              greedy sampling (excludes the sampling options below)
      --temp T              temperature (default 0.8)
      --top-k K             top-k (default 40)
      --top-p P             top-p (default 0.95)
      --min-p P             min-p (default 0.05)
      --repeat-penalty R    repetition penalty over the last 64 tokens (default 1.0)
      --seed S              sampling seed (default 42)
  -t, --threads T           threads (default: llama.cpp's)
      --variant NAME        force a variant (cpu, cpu-haswell, vulkan, ...)
      --variant-dir DIR     search only this directory for variants
  -ngl, --gpu-layers N      layers to offload on a GPU variant: a number, all or auto (default)
      --token-ids           print token ids, one per line, instead of text
      --lora PATH[:SCALE]   apply a GGUF LoRA adapter with SCALE (default 1.0); repeatable
      --save-state FILE     save the session (context state and tokens) after generating
      --resume FILE         load a saved session and continue generating -n more tokens
                            (no PROMPT; only the new tokens are printed)
      --draft-model PATH    speculative decoding with this draft model (same vocabulary);
                            greedy only (excludes the sampling options, --lora, --save-state
                            and --resume)
      --draft-max K         tokens the draft proposes per round (default 4)
      --rpc HOST:PORT,...   offload onto these RPC servers' devices (rpc_server example), in a
                            worker process; --gpu-layers defaults to all (excludes --lora,
                            --save-state, --resume and --draft-model)
  -h, --help                print this help";

#[derive(Debug)]
struct Args {
    model: Option<PathBuf>,
    /// Every `--model`, in order (more than one: each generates in turn).
    models: Vec<PathBuf>,
    n: usize,
    greedy: bool,
    temp: f32,
    top_k: i32,
    top_p: f32,
    min_p: f32,
    repeat_penalty: f32,
    seed: u32,
    threads: Option<i32>,
    variant: Option<String>,
    variant_dir: Option<PathBuf>,
    gpu_layers: Option<String>,
    token_ids: bool,
    lora: Vec<(PathBuf, f32)>,
    save_state: Option<PathBuf>,
    resume: Option<PathBuf>,
    draft_model: Option<PathBuf>,
    draft_max: Option<usize>,
    rpc: Vec<gguf_loader::rpc::RpcEndpoint>,
    prompt: String,
}

/// Parses the arguments (without the program name); `Ok(None)` when help was asked for.
fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut args = Args {
        model: None,
        models: Vec::new(),
        n: 64,
        greedy: false,
        temp: 0.8,
        top_k: 40,
        top_p: 0.95,
        min_p: 0.05,
        repeat_penalty: 1.0,
        seed: 42,
        threads: None,
        variant: None,
        variant_dir: None,
        gpu_layers: None,
        token_ids: false,
        lora: Vec::new(),
        save_state: None,
        resume: None,
        draft_model: None,
        draft_max: None,
        rpc: Vec::new(),
        prompt: String::new(),
    };
    // llama.cpp's `-ngl` is one option, not -n -g -l: spell it the long way for the parser.
    let raw = raw.into_iter().map(|arg| {
        if arg == "-ngl" {
            OsString::from("--gpu-layers")
        } else {
            arg
        }
    });
    let mut parser = lexopt::Parser::from_args(raw);
    let mut prompt = None;
    let mut sampling_flag = false;
    while let Some(arg) = parser.next().map_err(|e| format!("{e}\n{USAGE}"))? {
        let flag = support::flag_name(&arg);
        match arg {
            Long("model") | Short('m') => {
                let path = support::path(&mut parser, &flag)?;
                args.models.push(path.clone());
                args.model = Some(path);
            }
            Short('n') | Long("n-predict") => args.n = support::parsed(&mut parser, &flag)?,
            Long("greedy") => args.greedy = true,
            Long("temp") => {
                args.temp = support::parsed(&mut parser, &flag)?;
                sampling_flag = true;
            }
            Long("top-k") => {
                args.top_k = support::parsed(&mut parser, &flag)?;
                sampling_flag = true;
            }
            Long("top-p") => {
                args.top_p = support::parsed(&mut parser, &flag)?;
                sampling_flag = true;
            }
            Long("min-p") => {
                args.min_p = support::parsed(&mut parser, &flag)?;
                sampling_flag = true;
            }
            Long("repeat-penalty") => {
                args.repeat_penalty = support::parsed(&mut parser, &flag)?;
                sampling_flag = true;
            }
            Long("seed") => args.seed = support::parsed(&mut parser, &flag)?,
            Long("threads") | Short('t') => {
                args.threads = Some(support::parsed(&mut parser, &flag)?)
            }
            Long("variant") => args.variant = Some(support::parsed(&mut parser, &flag)?),
            Long("variant-dir") => args.variant_dir = Some(support::path(&mut parser, &flag)?),
            Long("token-ids") => args.token_ids = true,
            Long("lora") => args.lora.push(lora_value(&mut parser, &flag)?),
            Long("save-state") => args.save_state = Some(support::path(&mut parser, &flag)?),
            Long("resume") => args.resume = Some(support::path(&mut parser, &flag)?),
            Long("draft-model") => args.draft_model = Some(support::path(&mut parser, &flag)?),
            Long("draft-max") => args.draft_max = Some(support::parsed(&mut parser, &flag)?),
            Long("gpu-layers") => args.gpu_layers = Some(support::parsed(&mut parser, &flag)?),
            Long("rpc") => {
                let list = support::text(&mut parser, &flag)?;
                args.rpc = gguf_loader::rpc::RpcEndpoint::parse_list(&list)
                    .map_err(|e| format!("--rpc: {e}"))?;
            }
            Short('h') | Long("help") => return Ok(None),
            Value(text) => {
                let text = text
                    .into_string()
                    .map_err(|text| format!("PROMPT is not valid UTF-8: {text:?}"))?;
                if prompt.replace(text).is_some() {
                    return Err(format!("only one PROMPT argument (quote it)\n{USAGE}"));
                }
            }
            Short(_) | Long(_) => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if !args.rpc.is_empty()
        && (!args.lora.is_empty()
            || args.save_state.is_some()
            || args.resume.is_some()
            || args.draft_model.is_some())
    {
        return Err("--rpc excludes --lora, --save-state, --resume and --draft-model".into());
    }
    if args.models.len() > 1
        && (!args.lora.is_empty()
            || args.save_state.is_some()
            || args.resume.is_some()
            || args.draft_model.is_some()
            || !args.rpc.is_empty())
    {
        return Err(
            "several --model exclude --lora, --save-state, --resume, --draft-model and --rpc"
                .into(),
        );
    }
    if args.greedy && sampling_flag {
        return Err("--greedy excludes --temp/--top-k/--top-p/--min-p/--repeat-penalty".into());
    }
    if args.draft_model.is_some() {
        if sampling_flag {
            return Err("--draft-model decodes greedily: it excludes --temp/--top-k/--top-p/--min-p/--repeat-penalty".into());
        }
        if !args.lora.is_empty() || args.save_state.is_some() || args.resume.is_some() {
            return Err("--draft-model excludes --lora, --save-state and --resume".into());
        }
        args.greedy = true;
    } else if args.draft_max.is_some() {
        return Err("--draft-max needs --draft-model".into());
    }
    match (prompt, &args.resume) {
        (Some(_), Some(_)) => return Err("--resume continues a saved session: no PROMPT".into()),
        (None, None) => return Err(format!("missing PROMPT\n{USAGE}")),
        (prompt, _) => args.prompt = prompt.unwrap_or_default(),
    }
    Ok(Some(args))
}

/// `PATH[:SCALE]`: the scale is what follows the last `:` when it parses as a number.
fn lora_value(parser: &mut lexopt::Parser, flag: &str) -> Result<(PathBuf, f32), String> {
    let path = support::path(parser, flag)?;
    let text = path.to_string_lossy();
    if let Some((file, scale)) = text.rsplit_once(':') {
        if let Ok(scale) = scale.parse::<f32>() {
            if !scale.is_finite() {
                return Err(format!("{flag}: scale {scale} must be finite"));
            }
            return Ok((PathBuf::from(file), scale));
        }
    }
    Ok((path, 1.0))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if !args.rpc.is_empty() {
        return run_rpc(&args);
    }
    if args.models.len() > 1 {
        return run_models(&args);
    }
    let model_path = args.model.clone().unwrap_or_else(support::default_model);
    #[cfg(feature = "download")]
    let model_path = fetch_model(model_path)?;
    let Loaded {
        selection,
        model,
        params,
        gpu_layers: chosen_layers,
    } = load(&args, &model_path)?;
    let mut context = Context::new(&model, params.clone())?;
    if !args.lora.is_empty() {
        let adapters = args
            .lora
            .iter()
            .map(|(path, scale)| Ok((gguf_loader::LoraAdapter::load(&model, path)?, *scale)))
            .collect::<Result<Vec<_>, gguf_loader::Error>>()?;
        let with_scales: Vec<_> = adapters.iter().map(|(a, s)| (a, *s)).collect();
        context.set_lora_adapters(&with_scales)?;
    }
    if let Some(draft_path) = &args.draft_model {
        // The draft is offloaded as the model is.
        let layers = chosen_layers.unwrap_or(GpuLayers::None);
        return run_speculative(&args, &selection, context, draft_path, params, layers);
    }
    let mut session = Session::new(context);
    let mut sampler = sampler_for(&args, &model)?;
    let mut stdout = std::io::stdout().lock();
    let prompt = match &args.resume {
        Some(path) => {
            session.load_state_file(path)?;
            Prompt::Tokens(session.tokens().to_vec())
        }
        None => Prompt::from(args.prompt.as_str()),
    };
    let mut generation = session.generate(
        prompt,
        &mut sampler,
        GenerateOptions::default().with_max_tokens(args.n),
    )?;
    print_pieces(&mut stdout, generation.by_ref(), args.token_ids)?;
    let summary = generation
        .summary()
        .cloned()
        .ok_or("generation ended without a summary")?;
    let undecoded = generation.undecoded_token();
    drop(generation);
    if let Some(path) = &args.save_state {
        // The last token was sampled but not decoded: decode it so the saved session continues
        // exactly from here.
        session.append(undecoded.as_slice())?;
        session.save_state_file(path)?;
    }
    let devices: Vec<String> = selection
        .library
        .devices()
        .iter()
        .map(|d| d.name.clone())
        .collect();
    eprintln!(
        "variant: {} ({}) devices: {} | {}",
        selection.variant,
        selection.library.directory().path.display(),
        devices.join(","),
        rates(&summary)
    );
    Ok(())
}

/// Several `--model`: each completes the prompt in turn. The first model's code base (upstream
/// or BitNet fork) is loaded in this process; a model of the other one runs in a worker
/// process. A model that fails is reported and the next one runs.
fn run_models(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut in_process: Option<gguf_loader::gguf::Family> = None;
    let mut failed = 0;
    for (index, path) in args.models.iter().enumerate() {
        #[cfg(feature = "download")]
        let path = &fetch_model(path.clone())?;
        eprintln!("model: {}", path.display());
        // The pre-flight tells the code base; a file that fails it is this model's error.
        let outcome = gguf_loader::gguf::inspect(path)
            .map_err(|e| Box::new(gguf_loader::Error::from(e)) as Box<dyn std::error::Error>)
            .and_then(|file| {
                let family = *in_process.get_or_insert(file.family);
                if file.family == family {
                    run_in_process(args, path)
                } else {
                    run_in_worker(args, path)
                }
            });
        if let Err(error) = outcome {
            failed += 1;
            eprintln!("error: model {} ({}): {error}", index + 1, path.display());
        }
    }
    if failed > 0 {
        return Err(format!("{failed} of {} models failed", args.models.len()).into());
    }
    Ok(())
}

/// The context size asked for (at most the model's training context).
const N_CTX: u32 = 4096;

/// A model loaded on the best variant, with the context parameters to run it.
struct Loaded {
    selection: gguf_loader::loader::Selection,
    model: Model,
    params: ContextParams,
    /// The layers offloaded on the chosen variant.
    gpu_layers: Option<GpuLayers>,
}

/// `--gpu-layers`: `None` for auto (GPU variants offload what fits).
fn gpu_layers_arg(args: &Args) -> Result<Option<GpuLayers>, String> {
    match args.gpu_layers.as_deref() {
        None | Some("auto") => Ok(None),
        Some("all") => Ok(Some(GpuLayers::All)),
        Some(n) => n
            .parse()
            .map(|n| Some(GpuLayers::Count(n)))
            .map_err(|_| format!("invalid --gpu-layers {n:?} (a number, all or auto)")),
    }
}

/// Loads `path` on the best variant the options allow: GPU variants offload what fits unless
/// `--gpu-layers` says otherwise, CPU variants nothing; a variant the model cannot load on is
/// skipped for the next one.
fn load(args: &Args, path: &std::path::Path) -> Result<Loaded, Box<dyn std::error::Error>> {
    let options = support::select_options(args.variant.as_deref(), args.variant_dir.as_deref())?;
    let gpu_layers = gpu_layers_arg(args)?;
    let mut chosen = None;
    let (selection, model) = Model::load_best(&options, path, |variant| {
        let layers = match variant.kind() {
            VariantKind::Gpu => gpu_layers.unwrap_or(GpuLayers::Auto { n_ctx: N_CTX }),
            VariantKind::Cpu => GpuLayers::None,
        };
        chosen = Some(layers);
        ModelParams::new().with_gpu_layers(layers)
    })?;
    let mut params =
        ContextParams::default().with_n_ctx(N_CTX.min(model.n_ctx_train().max(256) as u32));
    if let Some(threads) = args.threads {
        params = params.with_threads(threads);
    }
    Ok(Loaded {
        selection,
        model,
        params,
        gpu_layers: chosen,
    })
}

/// One model of several, in this process (the library loaded by the first stays loaded).
fn run_in_process(args: &Args, path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let Loaded {
        selection,
        model,
        params,
        ..
    } = load(args, path)?;
    let mut session = Session::new(Context::new(&model, params)?);
    let mut sampler = sampler_for(args, &model)?;
    let mut stdout = std::io::stdout().lock();
    let mut generation = session.generate(
        Prompt::from(args.prompt.as_str()),
        &mut sampler,
        GenerateOptions::default().with_max_tokens(args.n),
    )?;
    print_pieces(&mut stdout, generation.by_ref(), args.token_ids)?;
    let summary = generation
        .summary()
        .cloned()
        .ok_or("generation ended without a summary")?;
    eprintln!(
        "variant: {} ({}) | {}",
        selection.variant,
        selection.library.directory().path.display(),
        rates(&summary)
    );
    Ok(())
}

/// One model of several, of the other code base: in a worker process.
fn run_in_worker(args: &Args, path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    use gguf_loader::worker::{WorkerModel, WorkerOptions, WorkerSpec};
    let mut spec = WorkerSpec::new(path);
    spec.variant_dir = args.variant_dir.clone();
    spec.threads = args.threads;
    spec.n_ctx = Some(N_CTX);
    let worker = WorkerModel::spawn(WorkerOptions::new(spec))?;
    eprintln!("worker: {} ({})", worker.info().pid, worker.info().variant);
    finish_in_worker(args, worker)
}

/// The sampler the options describe.
fn sampler_for(args: &Args, model: &Model) -> gguf_loader::Result<Sampler> {
    if args.greedy {
        Sampler::builder(model).greedy().build()
    } else {
        Sampler::builder(model)
            .penalties(64, args.repeat_penalty, 0.0, 0.0)
            .top_k(args.top_k)
            .top_p(args.top_p, 1)
            .min_p(args.min_p, 1)
            .temp(args.temp)
            .dist(args.seed)
            .build()
    }
}

/// The worker request the options describe.
fn worker_request(args: &Args) -> gguf_loader::worker::WorkerRequest {
    use gguf_loader::worker::{Sampling, WorkerRequest};
    let sampling = if args.greedy {
        Sampling::Greedy
    } else {
        Sampling::Sample {
            temp: args.temp,
            top_k: args.top_k,
            top_p: args.top_p,
            min_p: args.min_p,
            repeat_penalty: args.repeat_penalty,
            seed: args.seed,
        }
    };
    WorkerRequest::greedy(args.prompt.clone(), args.n).with_sampling(sampling)
}

/// A `--model` naming something to download (`hf://`, `http(s)://`) is fetched first: hub files
/// into the hub cache, URLs into the crate's cache (`downloads/`); other paths are kept as given.
#[cfg(feature = "download")]
fn fetch_model(path: PathBuf) -> Result<PathBuf, Box<dyn std::error::Error>> {
    use gguf_loader::download::{fetch, DownloadOptions, Source};
    let text = path.to_string_lossy();
    if !Source::is_remote(&text) {
        return Ok(path);
    }
    let source = Source::parse(&text)?;
    let options = DownloadOptions::from_env()
        .with_download_dir(gguf_loader::loader::discovery::cache_root().join("downloads"));
    eprintln!("fetching {source}");
    Ok(fetch(&source, &options)?)
}

/// `--rpc`: the model runs in a worker process with its layers on the servers' devices; a lost
/// server ends the worker and is reported here as an error.
fn run_rpc(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    use gguf_loader::worker::{WorkerModel, WorkerOptions, WorkerSpec};
    let model_path = args.model.clone().unwrap_or_else(support::default_model);
    #[cfg(feature = "download")]
    let model_path = fetch_model(model_path)?;
    let mut spec = WorkerSpec::new(model_path);
    spec.variant = args.variant.clone();
    spec.variant_dir = args.variant_dir.clone();
    spec.rpc_servers = args.rpc.clone();
    // Auto offloads everything here: the servers are the point.
    spec.gpu_layers = gpu_layers_arg(args)?.unwrap_or(GpuLayers::All);
    spec.threads = args.threads;
    spec.n_ctx = Some(N_CTX);
    let worker = WorkerModel::spawn(WorkerOptions::new(spec))?;
    let info = worker.info().clone();
    let used: Vec<String> = info
        .devices
        .iter()
        .filter(|d| d.layers > 0)
        .map(|d| {
            let place = if d.backend == "RPC" {
                format!(" ({})", d.description)
            } else {
                String::new()
            };
            let memory = if d.memory_total > 0 {
                format!(", {} MiB free", d.memory_free >> 20)
            } else {
                String::new()
            };
            format!("{}{place}: {} layers{memory}", d.name, d.layers)
        })
        .collect();
    eprintln!(
        "devices: {} (of {} layers + output)",
        if used.is_empty() {
            "unknown".to_string()
        } else {
            used.join(", ")
        },
        info.n_layer
    );
    finish_in_worker(args, worker)
}

/// `--draft-model`: greedy speculative decoding of the prompt.
fn run_speculative(
    args: &Args,
    selection: &gguf_loader::loader::Selection,
    mut context: Context,
    draft_path: &std::path::Path,
    params: ContextParams,
    gpu_layers: GpuLayers,
) -> Result<(), Box<dyn std::error::Error>> {
    let draft = Model::load(
        &selection.library,
        draft_path,
        ModelParams::new().with_gpu_layers(gpu_layers),
    )?;
    let mut draft_context = Context::new(&draft, params)?;
    let mut speculative = gguf_loader::engine::speculative::Speculative::new(
        &mut context,
        &mut draft_context,
        args.draft_max.unwrap_or(4),
    )?;
    let mut stdout = std::io::stdout().lock();
    let mut write_error = None;
    let result = speculative.generate_with(
        args.prompt.as_str(),
        GenerateOptions::default().with_max_tokens(args.n),
        |piece| {
            let written = if args.token_ids {
                piece
                    .token
                    .map_or(Ok(()), |token| writeln!(stdout, "{token}"))
            } else {
                write!(stdout, "{}", piece.text).and_then(|()| stdout.flush())
            };
            match written {
                Ok(()) => std::ops::ControlFlow::Continue(()),
                Err(e) => {
                    write_error = Some(e);
                    std::ops::ControlFlow::Break(())
                }
            }
        },
    )?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if !args.token_ids {
        writeln!(stdout)?;
    }
    let summary = &result.summary;
    eprintln!(
        "variant: {} ({}) | prompt: {} tokens, {:.1} tok/s | generated: {} tokens, {:.1} tok/s | draft: accepted {} of {} ({:.0}%) in {} rounds | stop: {:?}",
        selection.variant,
        selection.library.directory().path.display(),
        summary.prompt_tokens,
        summary.prompt_tokens_per_second(),
        summary.generated_tokens,
        summary.tokens_per_second(),
        result.accepted,
        result.drafted,
        100.0 * result.acceptance_rate(),
        result.rounds,
        summary.stop_reason
    );
    Ok(())
}

fn main() -> ExitCode {
    support::main_with(
        USAGE,
        OPTIONS,
        || parse_args(std::env::args_os().skip(1)),
        run,
    )
}

/// `prompt: N tokens, X tok/s | generated: N tokens, X tok/s | stop: REASON`: the end of every
/// `variant:` line.
fn rates(summary: &gguf_loader::Summary) -> String {
    format!(
        "prompt: {} tokens, {:.1} tok/s | generated: {} tokens, {:.1} tok/s | stop: {:?}",
        summary.prompt_tokens,
        summary.prompt_tokens_per_second(),
        summary.generated_tokens,
        summary.tokens_per_second(),
        summary.stop_reason
    )
}

/// Streams the worker's completion of the prompt to stdout, reports its `variant:` line and
/// shuts the worker down.
fn finish_in_worker(
    args: &Args,
    mut worker: gguf_loader::worker::WorkerModel,
) -> Result<(), Box<dyn std::error::Error>> {
    let info = worker.info().clone();
    let mut stdout = std::io::stdout().lock();
    let mut generation = worker.generate(worker_request(args))?;
    print_pieces(&mut stdout, generation.by_ref(), args.token_ids)?;
    let summary = generation
        .summary()
        .cloned()
        .ok_or("generation ended without a summary")?;
    drop(generation);
    eprintln!(
        "variant: {} ({}) worker: {} | {}",
        info.variant,
        info.directory.display(),
        info.pid,
        rates(&summary)
    );
    worker.shutdown();
    Ok(())
}

/// Streams pieces to `out`: their text, or with `token_ids` one token id per line; a final
/// newline after text.
fn print_pieces(
    out: &mut impl Write,
    pieces: impl Iterator<Item = gguf_loader::Result<gguf_loader::Piece>>,
    token_ids: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    for piece in pieces {
        let piece = piece?;
        if token_ids {
            if let Some(token) = piece.token {
                writeln!(out, "{token}")?;
            }
        } else {
            write!(out, "{}", piece.text)?;
        }
        out.flush()?;
    }
    if !token_ids {
        writeln!(out)?;
    }
    Ok(())
}
