//! Runs several prompts as concurrent sequences of one context (continuous batching).
//!
//! ```text
//! batch [--model PATH] [-n N] [--greedy] [--token-ids] [--threads T] [--variant NAME]
//!       [--variant-dir DIR] PROMPT...
//! ```
//! Prints one line per prompt, in order: `I: text` (or `I: id id id ...` with `--token-ids`),
//! I being the prompt's index from 0; stderr ends with the aggregate tokens/s.

mod support;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use gguf_loader::engine::parallel::{Event, ParallelEngine, Request};
use gguf_loader::{Context, ContextParams, GenerateOptions, Model, ModelParams, Prompt, Sampler};

const USAGE: &str = "usage: batch [--model PATH] [-n N] [--greedy] [--token-ids] [--threads T] [--variant NAME] [--variant-dir DIR] PROMPT...";

const OPTIONS: &str = "\
Runs every PROMPT as a concurrent sequence of one context and prints one line per prompt, in
order: `I: text`, or `I: id id ...` with --token-ids; stderr ends with the aggregate tokens/s.

options:
  -m, --model PATH          GGUF model (default: $GGUF_LOADER_SMOLLM2, else the cached SmolLM2)
  -n, --n-predict N         tokens per prompt (default 32)
      --greedy              greedy sampling (default: temperature 0.8, top-k 40, seed 42 + index)
      --token-ids           print token ids instead of text
  -t, --threads T           threads
      --variant NAME        force a variant (cpu, cpu-haswell, vulkan, ...)
      --variant-dir DIR     search only this directory for variants
  -h, --help                print this help";

#[derive(Debug, Default)]
struct Args {
    model: Option<PathBuf>,
    n: usize,
    greedy: bool,
    token_ids: bool,
    threads: Option<i32>,
    variant: Option<String>,
    variant_dir: Option<PathBuf>,
    prompts: Vec<String>,
}

fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut args = Args {
        n: 32,
        ..Args::default()
    };
    let mut parser = lexopt::Parser::from_args(raw);
    while let Some(arg) = parser.next().map_err(|e| format!("{e}\n{USAGE}"))? {
        let flag = support::flag_name(&arg);
        match arg {
            Short('m') | Long("model") => args.model = Some(support::path(&mut parser, &flag)?),
            Short('n') | Long("n-predict") => args.n = support::parsed(&mut parser, &flag)?,
            Long("greedy") => args.greedy = true,
            Long("token-ids") => args.token_ids = true,
            Short('t') | Long("threads") => {
                args.threads = Some(support::parsed(&mut parser, &flag)?)
            }
            Long("variant") => args.variant = Some(support::text(&mut parser, &flag)?),
            Long("variant-dir") => args.variant_dir = Some(support::path(&mut parser, &flag)?),
            Short('h') | Long("help") => return Ok(None),
            Value(v) => args.prompts.push(
                v.into_string()
                    .map_err(|v| format!("PROMPT is not valid UTF-8: {v:?}"))?,
            ),
            Short(_) | Long(_) => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if args.prompts.is_empty() {
        return Err(format!("missing PROMPT\n{USAGE}"));
    }
    Ok(Some(args))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let options = support::select_options(args.variant.as_deref(), args.variant_dir.as_deref())?;
    let model_path = args.model.clone().unwrap_or_else(|| {
        std::env::var_os("GGUF_LOADER_SMOLLM2")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                gguf_loader::loader::discovery::cache_root()
                    .join("models/SmolLM2-135M-Instruct-Q4_1.gguf")
            })
    });
    let (_, model) = Model::load_best(&options, &model_path, |_| ModelParams::new())?;
    let n_seq = args.prompts.len().min(64) as u32;
    let mut params = ContextParams {
        kv_unified: Some(true),
        ..ContextParams::default()
            .with_n_ctx(4096)
            .with_n_batch(512.max(n_seq))
            .with_n_seq_max(n_seq)
    };
    if let Some(threads) = args.threads {
        params = params.with_threads(threads);
    }
    let mut engine = ParallelEngine::new(Context::new(&model, params)?)?;
    let mut ids = Vec::new();
    for (i, prompt) in args.prompts.iter().enumerate() {
        let sampler = if args.greedy {
            Sampler::greedy(&model)?
        } else {
            Sampler::builder(&model)
                .top_k(40)
                .temp(0.8)
                .dist(42 + i as u32)
                .build()?
        };
        ids.push(engine.submit(Request {
            prompt: Prompt::from(prompt.as_str()),
            sampler,
            options: GenerateOptions::default().with_max_tokens(args.n),
        })?);
    }
    let started = Instant::now();
    let events = engine.run_to_completion()?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut generated = 0;
    for (i, id) in ids.iter().enumerate() {
        let mut line = String::new();
        for event in &events {
            match event {
                Event::Piece { request, piece } if request == id => {
                    if args.token_ids {
                        if let Some(token) = piece.token {
                            line.push_str(&format!(" {token}"));
                            generated += 1;
                        }
                    } else {
                        generated += usize::from(piece.token.is_some());
                        line.push_str(&piece.text);
                    }
                }
                Event::Failed { request, error } if request == id => {
                    return Err(format!("prompt {i}: {error}").into());
                }
                _ => {}
            }
        }
        if args.token_ids {
            println!("{i}:{line}");
        } else {
            println!("{i}: {}", line.replace('\n', " "));
        }
    }
    eprintln!(
        "{} sequences, {generated} tokens in {elapsed:.2} s: {:.1} tok/s aggregate",
        ids.len(),
        generated as f64 / elapsed
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
