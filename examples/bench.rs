//! Benchmark (not a test): prompt-processing and generation speed of the chosen CPU module
//! against the portable x64 module, and of this crate's generation loop against the same loop
//! written in C, on the same libraries, model and threads, in one run.
//!
//! ```text
//! bench [--model PATH] [--threads T] [--prompt-tokens N] [--gen-tokens N] [--repeat R]
//! ```
//! Each configuration runs in its own child process (one llama.cpp build per process). The C
//! reference (tests/c/greedy.c) is compiled with `cc` against the pinned headers.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use gguf_loader::loader::{best_cpu, LlamaLibrary, PluginSelection, SearchPaths};
use gguf_loader::{
    Batch, Context, ContextParams, GenerateOptions, Model, ModelParams, Sampler, Token,
};

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
the same loop in C, on the same libraries, model and threads.

options:
      --model PATH          GGUF model (default: $GGUF_LOADER_SMOLLM2, else the cached SmolLM2)
      --threads T           threads (default 2)
      --prompt-tokens N     prompt length for prompt processing (default 256)
      --gen-tokens N        tokens to generate (default 64)
      --repeat R            runs per configuration, the best counts (default 3)
  -h, --help                print this help";

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

/// Runs in a child: loads one CPU module (`auto`: every plugin, ggml picks) and prints
/// "pp_tps tg_tps" (best of `repeat`). `auto` measures the crate's own streaming `generate`
/// on the same prompt and settings as the C loop.
fn child(options: &Options, module: &str) -> Result<(), Box<dyn std::error::Error>> {
    let dir = SearchPaths::new().find_kind("cpu")?;
    let selection = if module == "auto" {
        PluginSelection::AllInDirectory
    } else {
        PluginSelection::CpuModule(module.into())
    };
    let library = LlamaLibrary::load(&dir, selection)?;
    let model = Model::load(&library, &options.model, ModelParams::new())?;
    // The C loop must run the same kernels: the crate turns the CPU's extra buffer types off
    // where the build has a faulty one (AMX).
    let extra = u8::from(library.extra_buffer_types_are_safe());
    let (mut best_pp, mut best_tg) = (0f64, 0f64);
    if module == "auto" {
        let mut context = Context::new(
            &model,
            ContextParams::default()
                .with_n_ctx(1024)
                .with_n_batch(512)
                .with_threads(options.threads),
        )?;
        for _ in 0..options.repeat {
            let mut sampler = Sampler::greedy(&model)?;
            let mut generation = context.generate(
                text_prompt(),
                &mut sampler,
                GenerateOptions::default().with_max_tokens(options.gen_tokens),
            )?;
            for piece in generation.by_ref() {
                piece?;
            }
            let summary = generation.summary().ok_or("no summary")?;
            best_pp = best_pp.max(summary.prompt_tokens_per_second());
            best_tg = best_tg.max(summary.tokens_per_second());
        }
        println!("{best_pp:.3} {best_tg:.3} {extra}");
        return Ok(());
    }
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
        best_pp = best_pp.max(options.prompt_tokens as f64 / started.elapsed().as_secs_f64());
        let mut sampler = Sampler::greedy(&model)?;
        let mut one = Batch::new(1, 1)?;
        let started = Instant::now();
        for i in 0..options.gen_tokens {
            let token = sampler.sample(&mut context, -1)?;
            one.clear();
            one.add(token, (options.prompt_tokens + i) as i32, &[0], true)?;
            context.decode(&mut one)?;
        }
        best_tg = best_tg.max(options.gen_tokens as f64 / started.elapsed().as_secs_f64());
    }
    println!("{best_pp:.3} {best_tg:.3} {extra}");
    Ok(())
}

/// Runs a child; returns (prompt tok/s, generation tok/s, whether the CPU's extra buffer types
/// were on).
fn run_child(options: &Options, module: &str) -> Result<(f64, f64, bool), String> {
    let output = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["--model", &options.model.display().to_string()])
        .args(["--threads", &options.threads.to_string()])
        .args(["--prompt-tokens", &options.prompt_tokens.to_string()])
        .args(["--gen-tokens", &options.gen_tokens.to_string()])
        .args(["--repeat", &options.repeat.to_string()])
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
    let mut parts = text.split_whitespace();
    let pp = parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or("no pp figure")?;
    let tg = parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or("no tg figure")?;
    let extra = parts.next() != Some("0");
    Ok((pp, tg, extra))
}

/// The C loop (tests/c/greedy.c) on the cpu directory's best module: generation tok/s.
fn c_generation(options: &Options, dir: &Path, extra: bool) -> Result<f64, String> {
    let cache = gguf_loader::loader::discovery::cache_root();
    let source = cache.join("source/llama-cpp-sys-2-0.1.161");
    let out = std::env::temp_dir().join(format!("gguf-loader-bench-greedy-{}", std::process::id()));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/greedy.c");
    let status = Command::new("cc")
        .arg(&src)
        .arg("-O2")
        .arg("-o")
        .arg(&out)
        .arg(format!("-I{}", source.join("include").display()))
        .arg(format!("-I{}", source.join("ggml/include").display()))
        .arg(format!("-L{}", dir.display()))
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .args(["-lllama", "-lggml", "-lggml-base"])
        .status()
        .map_err(|e| format!("cc: {e}"))?;
    if !status.success() {
        return Err("compiling tests/c/greedy.c failed".into());
    }
    let prompt = text_prompt();
    let mut best = 0f64;
    for _ in 0..options.repeat {
        let output = Command::new(&out)
            .arg(dir)
            .arg(&options.model)
            .args([
                options.gen_tokens.to_string(),
                options.threads.to_string(),
                "1024".into(),
                "512".into(),
            ])
            .arg(&prompt)
            .env("GREEDY_TIMING", "1")
            .env("GREEDY_EXTRA_BUFTS", if extra { "1" } else { "0" })
            .output()
            .map_err(|e| e.to_string())?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr
            .lines()
            .find(|l| l.starts_with("timing"))
            .ok_or("no timing line")?;
        let field = |name: &str| -> f64 {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        let generated = field("generated=");
        let ms = field("gen_ms=");
        if ms > 0.0 {
            best = best.max(generated / (ms / 1000.0));
        }
    }
    let _ = std::fs::remove_file(&out);
    Ok(best)
}

fn main() -> ExitCode {
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
        return match child(&options, &module) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
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
        match run_child(&options, module) {
            Ok((pp, tg, _)) => {
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
    let rust = run_child(&options, "auto");
    let extra = rust.as_ref().map_or(true, |(_, _, extra)| *extra);
    match (rust, c_generation(&options, &dir, extra)) {
        (Ok((_, rust_tg, _)), Ok(c_tg)) => {
            println!("  generation loop, same libraries (best module): Rust {rust_tg:.1} tok/s, C {c_tg:.1} tok/s, ratio Rust/C {:.3}", rust_tg / c_tg);
        }
        (Err(e), _) | (_, Err(e)) => eprintln!("warning: Rust-vs-C comparison skipped: {e}"),
    }
    ExitCode::SUCCESS
}
