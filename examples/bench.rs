//! Benchmark (not a test): prompt-processing and generation speed of the chosen CPU module
//! against the portable x64 module, and of this crate's generation loop against the same loop
//! written in C, on the same libraries, model and threads, in one run.
//!
//! ```text
//! bench [--model PATH] [--threads T] [--prompt-tokens N] [--gen-tokens N] [--repeat R]
//! ```
//! Each configuration runs in its own child process (one llama.cpp build per process). The C
//! reference (tests/c/greedy.c) is compiled with `cc` against the pinned headers.
//!
//! With a `--model` of the BitNet fork (an I2_S GGUF, [`Family::BitNet`]) the bench runs the
//! `bitnet-cpu-avx2` variant instead and times one greedy generation of the same text prompt
//! (whole words, at least `--prompt-tokens` tokens as the fork tokenizes them) three ways, on
//! the same libraries, model, threads and context size:
//! 1. this crate's streaming `generate` in a child process of its own;
//! 2. tests/c/greedy_bitnet.c, compiled with `cc` against the fork's headers (`GREEDY_TIMING`);
//! 3. this crate in a worker process ([`gguf_loader::worker::WorkerModel`]): the rate its
//!    summary reports, and the rate the parent sees (wall time from sending the request to the
//!    `done` event, less the worker's prompt time, per generated token).
//!
//! The three alternate, `--repeat` times, each in a fresh process; the table gives the
//! min / median / max of each rate and of the per-run ratios crate/C and worker/in-process.
//! Every generation rate is generated tokens over the time from the end of the prompt's decode
//! to the last token sampled: N samplings (the first from the prompt's logits) and N-1 decodes,
//! with the per-token output of each path (nothing, a `printf`, a JSON line to the parent).

use std::error::Error;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use gguf_loader::gguf::Family;
use gguf_loader::loader::{best_cpu, LlamaLibrary, PluginSelection, SearchPaths};
use gguf_loader::{
    Batch, Context, ContextParams, GenerateOptions, Model, ModelParams, Sampler, Summary, Token,
};

/// The command line's options.
struct Options {
    model: PathBuf,
    threads: i32,
    prompt_tokens: usize,
    gen_tokens: usize,
    repeat: usize,
}

const USAGE: &str =
    "usage: bench [--model PATH] [--threads T] [--prompt-tokens N] [--gen-tokens N] [--repeat R]";

const OPTIONS: &str = "\
Compares the chosen CPU module with the portable x64 one, and this crate's generation loop with
the same loop in C, on the same libraries, model and threads. With a BitNet-fork model (I2_S),
compares on the bitnet-cpu-avx2 variant this crate's loop in process, the same loop in C
(tests/c/greedy_bitnet.c) and this crate in a worker process: min / median / max over R
alternating runs, with the ratios crate/C and worker/in-process.

options:
      --model PATH          GGUF model (default: $GGUF_LOADER_SMOLLM2, else the cached SmolLM2)
      --threads T           threads (default 2)
      --prompt-tokens N     prompt length for prompt processing (default 256); BitNet: the
                            text prompt's length (at least N tokens, whole words)
      --gen-tokens N        tokens to generate (default 64)
      --repeat R            runs per configuration, the best counts (default 3); BitNet:
                            alternating runs of each path
  -h, --help                print this help";

/// The variant directory (manifest name) the BitNet mode runs on.
const BITNET_KIND: &str = "bitnet-cpu-avx2";
/// The internal `--child-module` of the BitNet mode's in-process run.
const BITNET_CHILD: &str = "bitnet";

/// The value of option `flag`.
fn value(parser: &mut lexopt::Parser, flag: &str) -> Result<OsString, String> {
    parser.value().map_err(|_| format!("{flag} needs a value"))
}

/// `value` as a number, or "bad --flag".
fn number<T: std::str::FromStr>(value: OsString, flag: &str) -> Result<T, String> {
    value
        .to_str()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("bad {flag}"))
}

/// Parses the arguments (without the program name): the options and the internal
/// `--child-module`, or `Ok(None)` when help was asked for.
fn parse(
    raw: impl IntoIterator<Item = OsString>,
) -> Result<Option<(Options, Option<String>)>, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut options = Options {
        model: std::env::var_os("GGUF_LOADER_SMOLLM2")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                gguf_loader::loader::discovery::cache_root()
                    .join("models/SmolLM2-135M-Instruct-Q4_1.gguf")
            }),
        threads: 2,
        prompt_tokens: 256,
        gen_tokens: 64,
        repeat: 3,
    };
    let mut child = None;
    let mut parser = lexopt::Parser::from_args(raw);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        let flag = match &arg {
            Short(c) => format!("-{c}"),
            Long(name) => format!("--{name}"),
            Value(value) => value.to_string_lossy().into_owned(),
        };
        match arg {
            Long("model") => options.model = value(&mut parser, &flag)?.into(),
            Long("threads") => options.threads = number(value(&mut parser, &flag)?, &flag)?,
            Long("prompt-tokens") => {
                options.prompt_tokens = number(value(&mut parser, &flag)?, &flag)?
            }
            Long("gen-tokens") => options.gen_tokens = number(value(&mut parser, &flag)?, &flag)?,
            Long("repeat") => options.repeat = number(value(&mut parser, &flag)?, &flag)?,
            Long("child-module") => {
                child = Some(
                    value(&mut parser, &flag)?
                        .into_string()
                        .map_err(|v| format!("bad {flag} {v:?}"))?,
                )
            }
            Short('h') | Long("help") => return Ok(None),
            Short(_) | Long(_) => return Err(format!("unknown option {flag}")),
            Value(_) => return Err(format!("unexpected argument {flag:?}")),
        }
    }
    Ok(Some((options, child)))
}

/// The text prompt both generation loops (Rust and C) run on.
fn text_prompt() -> String {
    "The quick brown fox jumps over the lazy dog. ".repeat(4)
}

/// The BitNet mode's prompt: the words of [`text_prompt`], cycled, up to `--prompt-tokens`
/// tokens (BOS included) as `model` tokenizes them; and a context size with room for it and
/// the generated tokens.
fn bitnet_prompt(model: &Model, options: &Options) -> gguf_loader::Result<(String, u32)> {
    let words = text_prompt();
    let mut words = words.split_whitespace().cycle();
    let mut text = String::new();
    loop {
        text.push_str(words.next().unwrap_or_default());
        let n = model.tokenize(&text, true, true)?.len();
        if n >= options.prompt_tokens {
            return Ok((text, (n + options.gen_tokens + 8) as u32));
        }
        text.push(' ');
    }
}

/// One timed generation, or the best of several: tokens and rates (tok/s).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Run {
    prompt_tokens: usize,
    prompt_tps: f64,
    generated: usize,
    gen_tps: f64,
}

impl Run {
    /// The rates of a crate generation's summary.
    fn of(summary: &Summary) -> Self {
        Run {
            prompt_tokens: summary.prompt_tokens,
            prompt_tps: summary.prompt_tokens_per_second(),
            generated: summary.generated_tokens,
            gen_tps: summary.tokens_per_second(),
        }
    }

    /// The best prompt rate and the best generation rate of the two.
    fn best(self, other: Run) -> Run {
        Run {
            prompt_tps: self.prompt_tps.max(other.prompt_tps),
            gen_tps: self.gen_tps.max(other.gen_tps),
            ..other
        }
    }
}

/// Runs in a child: loads one CPU module (`auto`: every plugin, ggml picks; `bitnet`: the
/// bitnet-cpu-avx2 variant) and prints "pp_tps tg_tps extra prompt_tokens generated" (best of
/// `repeat`; `bitnet`: one run, the parent alternates). `auto` and `bitnet` measure the crate's
/// own streaming `generate` on the same prompt and settings as the C loop.
fn child(options: &Options, module: &str) -> Result<(), Box<dyn Error>> {
    let bitnet = module == BITNET_CHILD;
    let dir = SearchPaths::new().find_kind(if bitnet { BITNET_KIND } else { "cpu" })?;
    let selection = if module == "auto" || bitnet {
        PluginSelection::AllInDirectory
    } else {
        PluginSelection::CpuModule(module.into())
    };
    let library = LlamaLibrary::load(&dir, selection)?;
    let model = Model::load(&library, &options.model, ModelParams::new())?;
    // The C loop must run the same kernels: the crate turns the CPU's extra buffer types off
    // where the build has a faulty one (AMX).
    let extra = u8::from(library.extra_buffer_types_are_safe());
    let mut best = Run::default();
    if module == "auto" || bitnet {
        let ((prompt, n_ctx), runs) = if bitnet {
            (bitnet_prompt(&model, options)?, 1)
        } else {
            ((text_prompt(), 1024), options.repeat)
        };
        let mut context = Context::new(
            &model,
            ContextParams::default()
                .with_n_ctx(n_ctx)
                .with_n_batch(512)
                .with_threads(options.threads),
        )?;
        for _ in 0..runs {
            let mut sampler = Sampler::greedy(&model)?;
            let mut generation = context.generate(
                prompt.as_str(),
                &mut sampler,
                GenerateOptions::default().with_max_tokens(options.gen_tokens),
            )?;
            for piece in generation.by_ref() {
                piece?;
            }
            best = best.best(Run::of(generation.summary().ok_or("no summary")?));
        }
    } else {
        let n_ctx = (options.prompt_tokens + options.gen_tokens + 8) as u32;
        let mut context = Context::new(
            &model,
            ContextParams::default()
                .with_n_ctx(n_ctx)
                .with_n_batch(options.prompt_tokens as u32)
                .with_threads(options.threads),
        )?;
        let prompt: Vec<Token> = (0..options.prompt_tokens)
            .map(|i| Token(100 + (i as i32 * 7) % 1000))
            .collect();
        for _ in 0..options.repeat {
            context.clear_memory();
            let mut batch = Batch::new(options.prompt_tokens, 1)?;
            batch.add_sequence(&prompt, 0, 0, true)?;
            let started = Instant::now();
            context.decode(&mut batch)?;
            let prompt_secs = started.elapsed().as_secs_f64();
            let mut sampler = Sampler::greedy(&model)?;
            let mut one = Batch::new(1, 1)?;
            let started = Instant::now();
            for i in 0..options.gen_tokens {
                let token = sampler.sample(&mut context, -1)?;
                one.clear();
                one.add(token, (options.prompt_tokens + i) as i32, &[0], true)?;
                context.decode(&mut one)?;
            }
            best = best.best(Run {
                prompt_tokens: options.prompt_tokens,
                prompt_tps: options.prompt_tokens as f64 / prompt_secs,
                generated: options.gen_tokens,
                gen_tps: options.gen_tokens as f64 / started.elapsed().as_secs_f64(),
            });
        }
    }
    println!(
        "{:.3} {:.3} {extra} {} {}",
        best.prompt_tps, best.gen_tps, best.prompt_tokens, best.generated
    );
    Ok(())
}

/// Runs a child with `repeat` runs; returns its figures and whether the CPU's extra buffer
/// types were on.
fn run_child(options: &Options, module: &str, repeat: usize) -> Result<(Run, bool), String> {
    let output = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["--model", &options.model.display().to_string()])
        .args(["--threads", &options.threads.to_string()])
        .args(["--prompt-tokens", &options.prompt_tokens.to_string()])
        .args(["--gen-tokens", &options.gen_tokens.to_string()])
        .args(["--repeat", &repeat.to_string()])
        .args(["--child-module", module])
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "{module}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Result<Vec<f64>, _> = text.split_whitespace().map(str::parse).collect();
    let Ok([pp, tg, extra, prompt_tokens, generated]) = fields.as_deref() else {
        return Err(format!("{module}: unexpected output {text:?}"));
    };
    let run = Run {
        prompt_tokens: *prompt_tokens as usize,
        prompt_tps: *pp,
        generated: *generated as usize,
        gen_tps: *tg,
    };
    Ok((run, *extra != 0.0))
}

/// Compiles the C reference `tests/c/NAME.c` against the headers of the llama.cpp tree `source`
/// (`include`, `ggml/include`), linked with `libs` of `dir` (with an rpath); the program.
fn compile_c(name: &str, source: &Path, dir: &Path, libs: &[&str]) -> Result<PathBuf, String> {
    let out = std::env::temp_dir().join(format!("gguf-loader-bench-{name}-{}", std::process::id()));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/c/{name}.c"));
    let status = Command::new("cc")
        .arg(&src)
        .arg("-O2")
        .arg("-o")
        .arg(&out)
        .arg(format!("-I{}", source.join("include").display()))
        .arg(format!("-I{}", source.join("ggml/include").display()))
        .arg(format!("-L{}", dir.display()))
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .args(libs.iter().map(|lib| format!("-l{lib}")))
        .status()
        .map_err(|e| format!("cc: {e}"))?;
    if !status.success() {
        return Err(format!("compiling tests/c/{name}.c failed"));
    }
    Ok(out)
}

/// One run of a compiled C reference (`GREEDY_TIMING`): its figures. `extra`: the CPU's extra
/// buffer types on (upstream's greedy.c; the fork's has no such switch).
fn c_run(
    program: &Path,
    dir: &Path,
    options: &Options,
    (prompt, n_ctx): &(String, u32),
    extra: bool,
) -> Result<Run, String> {
    let output = Command::new(program)
        .arg(dir)
        .arg(&options.model)
        .args([
            options.gen_tokens.to_string(),
            options.threads.to_string(),
            n_ctx.to_string(),
            "512".into(),
        ])
        .arg(prompt)
        .env("GREEDY_TIMING", "1")
        .env("GREEDY_EXTRA_BUFTS", if extra { "1" } else { "0" })
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("timing"))
        .ok_or_else(|| format!("no timing line from the C reference: {}", stderr.trim()))?;
    // `timing prompt_tokens=N prompt_ms=X generated=N gen_ms=X`
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let rate = |tokens: f64, ms: f64| if ms > 0.0 { tokens / (ms / 1e3) } else { 0.0 };
    Ok(Run {
        prompt_tokens: field("prompt_tokens") as usize,
        prompt_tps: rate(field("prompt_tokens"), field("prompt_ms")),
        generated: field("generated") as usize,
        gen_tps: rate(field("generated"), field("gen_ms")),
    })
}

/// The C loop (tests/c/greedy.c) on the cpu directory's best module: generation tok/s.
fn c_generation(options: &Options, dir: &Path, extra: bool) -> Result<f64, String> {
    let source =
        gguf_loader::loader::discovery::cache_root().join("source/llama-cpp-sys-2-0.1.161");
    let program = compile_c("greedy", &source, dir, &["llama", "ggml", "ggml-base"])?;
    let prompt = (text_prompt(), 1024);
    let best = (0..options.repeat).try_fold(0f64, |best, _| {
        Ok::<_, String>(best.max(c_run(&program, dir, options, &prompt, extra)?.gen_tps))
    });
    let _ = std::fs::remove_file(&program);
    best
}

/// One generation in a worker process (`gguf_loader::worker`) on the libraries of `dir`: the
/// worker's summary, and the generation rate the parent sees (generated tokens over the wall
/// time from sending the request to the `done` event, less the worker's prompt time).
fn worker_run(
    options: &Options,
    dir: &Path,
    (prompt, n_ctx): &(String, u32),
) -> Result<(Run, f64), Box<dyn Error>> {
    use gguf_loader::worker::{WorkerModel, WorkerOptions, WorkerRequest, WorkerSpec};
    let mut spec = WorkerSpec::new(&options.model);
    spec.variant_dir = Some(dir.to_path_buf());
    spec.threads = Some(options.threads);
    spec.n_ctx = Some(*n_ctx);
    let mut worker = WorkerModel::spawn(WorkerOptions::new(spec))?;
    let info = worker.info();
    if info.directory != dir || info.n_ctx < *n_ctx {
        return Err(format!(
            "the worker loaded {} with a context of {} tokens, not {} with {n_ctx} (a worker's context is at most the model's training context)",
            info.directory.display(),
            info.n_ctx,
            dir.display(),
        )
        .into());
    }
    let started = Instant::now();
    let mut generation =
        worker.generate(WorkerRequest::greedy(prompt.as_str(), options.gen_tokens))?;
    for piece in generation.by_ref() {
        piece?;
    }
    let wall = started.elapsed();
    let summary = generation.summary().cloned().ok_or("no summary")?;
    drop(generation);
    worker.shutdown();
    let secs = wall.saturating_sub(summary.prompt_time).as_secs_f64();
    Ok((Run::of(&summary), summary.generated_tokens as f64 / secs))
}

/// (min, median, max) of `values` (not empty).
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    (
        sorted[0],
        (sorted[(n - 1) / 2] + sorted[n / 2]) / 2.0,
        sorted[n - 1],
    )
}

/// The BitNet mode: the crate in process, C and the crate in a worker on the fork's
/// bitnet-cpu-avx2 variant, `--repeat` alternating runs each.
fn bitnet(options: &Options) -> Result<(), Box<dyn Error>> {
    let dir = SearchPaths::new().find_kind(BITNET_KIND)?;
    let source = dir
        .manifest
        .as_ref()
        .map(|m| format!("{}-{}", m.source.crate_name, m.source.version))
        .ok_or_else(|| format!("{} has no manifest naming its source", dir.path.display()))?;
    let source = gguf_loader::loader::discovery::cache_root()
        .join("source")
        .join(source)
        .join("3rdparty/llama.cpp");
    let program = compile_c("greedy_bitnet", &source, &dir.path, &["llama", "ggml"])?;
    // The same prompt as the in-process child's (the same tokenizer: the fork's).
    let library = LlamaLibrary::load(&dir, PluginSelection::AllInDirectory)?;
    let vocabulary = Model::load(
        &library,
        &options.model,
        ModelParams::new().vocab_only(true),
    )?;
    let prompt = bitnet_prompt(&vocabulary, options)?;
    println!(
        "model {} (BitNet fork), {BITNET_KIND} ({}), {} threads, {} generated tokens, {} alternating runs",
        options.model.display(),
        dir.path.display(),
        options.threads,
        options.gen_tokens,
        options.repeat
    );
    // Per run: crate prompt and generation, C prompt and generation, worker generation by its
    // summary and by the parent's wall clock (tok/s); and each path's (prompt, generated) tokens.
    let (mut rates, mut tokens) = (Vec::<[f64; 6]>::new(), Vec::new());
    let result = (0..options.repeat.max(1)).try_for_each(|_| {
        let (in_process, _) = run_child(options, BITNET_CHILD, 1)?;
        let c = c_run(&program, &dir.path, options, &prompt, true)?;
        let (worker, seen) = worker_run(options, &dir.path, &prompt)?;
        let runs = [in_process, c, worker];
        tokens.push(runs.map(|r| (r.prompt_tokens, r.generated)));
        rates.push([
            in_process.prompt_tps,
            in_process.gen_tps,
            c.prompt_tps,
            c.gen_tps,
            worker.gen_tps,
            seen,
        ]);
        Ok::<_, Box<dyn Error>>(())
    });
    let _ = std::fs::remove_file(&program);
    result?;
    let first = tokens[0][0];
    if tokens.iter().flatten().all(|&t| t == first) {
        println!(
            "  {} prompt tokens, {} generated, in every path and run",
            first.0, first.1
        );
    } else {
        println!("  warning: the paths did not see the same tokens: (prompt, generated) of crate, C, worker per run: {tokens:?}");
    }
    let column = |i: usize| rates.iter().map(|r| r[i]).collect::<Vec<_>>();
    let ratio = |i: usize, j: usize| rates.iter().map(|r| r[i] / r[j]).collect::<Vec<_>>();
    let rows = [
        ("crate in process, prompt tok/s", column(0), 1),
        ("crate in process, generation tok/s", column(1), 1),
        ("C, prompt tok/s", column(2), 1),
        ("C, generation tok/s", column(3), 1),
        ("worker, generation tok/s (its summary)", column(4), 1),
        ("worker, generation tok/s (parent's wall)", column(5), 1),
        ("ratio crate/C, prompt", ratio(0, 2), 3),
        ("ratio crate/C, generation", ratio(1, 3), 3),
        ("ratio worker/in process (summary)", ratio(4, 1), 3),
        ("ratio worker/in process (parent's wall)", ratio(5, 1), 3),
    ];
    println!("  {:<42}{:>10}{:>10}{:>10}", "", "min", "median", "max");
    for (label, values, precision) in rows {
        let (min, median, max) = spread(&values);
        println!("  {label:<42}{min:>10.precision$}{median:>10.precision$}{max:>10.precision$}");
    }
    Ok(())
}

/// Success, or `error: ...` (one line) and failure.
fn exit_code(result: Result<(), Box<dyn Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.to_string().replace('\n', "; "));
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    gguf_loader::loader::smoke::run_if_requested();
    // The BitNet mode's worker process is this program (gguf_loader::worker).
    gguf_loader::worker::run_if_requested();
    let (options, child_module) = match parse(std::env::args_os().skip(1)) {
        Ok(Some(v)) => v,
        Ok(None) => {
            println!("{USAGE}\n\n{OPTIONS}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(module) = child_module {
        return exit_code(child(&options, &module));
    }
    if gguf_loader::gguf::inspect(&options.model).is_ok_and(|f| f.family == Family::BitNet) {
        return exit_code(bitnet(&options));
    }
    let hardware = gguf_loader::hardware::HardwareProfile::detect();
    let Some(best) = best_cpu(&hardware) else {
        eprintln!("error: no x86-64 CPU module runs on this machine");
        return ExitCode::FAILURE;
    };
    let best = best.trim_start_matches("cpu-").to_string();
    println!(
        "model {}, {} threads, {} prompt tokens, {} generated tokens, best of {}",
        options.model.display(),
        options.threads,
        options.prompt_tokens,
        options.gen_tokens,
        options.repeat
    );
    let mut results = Vec::new();
    for module in [best.as_str(), "x64"] {
        match run_child(&options, module, options.repeat) {
            Ok((run, _)) => {
                let (pp, tg) = (run.prompt_tps, run.gen_tps);
                println!("  cpu-{module:<14} prompt {pp:8.1} tok/s   generation {tg:7.1} tok/s");
                results.push((pp, tg));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let [(pp_best, tg_best), (pp_x64, tg_x64)] = results[..] {
        println!(
            "  ratio cpu-{best} / cpu-x64: prompt {:.2}x, generation {:.2}x",
            pp_best / pp_x64,
            tg_best / tg_x64
        );
    }
    let dir = match SearchPaths::new().find_kind("cpu") {
        Ok(d) => d.path,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rust = run_child(&options, "auto", options.repeat);
    let extra = rust.as_ref().map_or(true, |(_, extra)| *extra);
    match (rust, c_generation(&options, &dir, extra)) {
        (Ok((rust, _)), Ok(c_tg)) => {
            let rust_tg = rust.gen_tps;
            println!("  generation loop, same libraries (best module): Rust {rust_tg:.1} tok/s, C {c_tg:.1} tok/s, ratio Rust/C {:.3}", rust_tg / c_tg);
        }
        (Err(e), _) | (_, Err(e)) => eprintln!("warning: Rust-vs-C comparison skipped: {e}"),
    }
    ExitCode::SUCCESS
}
