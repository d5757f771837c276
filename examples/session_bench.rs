//! Time of a conversation's turn N with a [`Session`] (prefix reuse: only the new tokens are
//! decoded) against generating the same turn in a fresh context (the whole conversation decoded
//! again), for several conversation lengths, on the same libraries, model and threads.
//!
//! `cargo run --release --example session_bench -- [--model PATH] [--threads T] [--reply-tokens N]`

mod support;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use gguf_loader::loader::{LlamaLibrary, PluginSelection, SearchPaths};
use gguf_loader::{Context, ContextParams, GenerateOptions, Model, ModelParams, Sampler, Session};

const USAGE: &str = "usage: session_bench [--model PATH] [--threads T] [--reply-tokens N]";

const OPTIONS: &str = "\
Times turn N of a conversation with a Session (prefix reuse) against the same turn in a fresh
context, for several conversation lengths.

options:
  -m, --model PATH          GGUF model (default: $GGUF_LOADER_SMOLLM2, else the cached SmolLM2)
  -t, --threads T           threads (default 2)
      --reply-tokens N      tokens generated per turn (default 8)
  -h, --help                print this help";

struct Options {
    model: std::path::PathBuf,
    threads: i32,
    reply_tokens: usize,
}

fn parse() -> Result<Option<Options>, String> {
    use lexopt::prelude::*;
    let mut options = Options {
        model: std::env::var_os("GGUF_LOADER_SMOLLM2")
            .map(Into::into)
            .unwrap_or_else(|| {
                gguf_loader::loader::discovery::cache_root()
                    .join("models/SmolLM2-135M-Instruct-Q4_1.gguf")
            }),
        threads: 2,
        reply_tokens: 8,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('m') | Long("model") => {
                options.model = parser.value().map_err(|e| e.to_string())?.into()
            }
            Short('t') | Long("threads") => {
                options.threads = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .parse()
                    .map_err(|e| format!("bad --threads: {e}"))?
            }
            Long("reply-tokens") => {
                options.reply_tokens = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .parse()
                    .map_err(|e| format!("bad --reply-tokens: {e}"))?
            }
            Short('h') | Long("help") => return Ok(None),
            Short(_) | Long(_) => {
                return Err(format!(
                    "unknown option {}\n{USAGE}",
                    support::flag_name(&arg)
                ))
            }
            Value(v) => return Err(format!("unexpected argument {v:?}\n{USAGE}")),
        }
    }
    Ok(Some(options))
}

/// The conversation after `turns` user messages, each but the last answered by a fixed reply,
/// in ChatML (SmolLM2's format), ending with the assistant's turn.
fn conversation(turns: usize) -> String {
    let mut text = String::from("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n");
    for i in 0..turns {
        text.push_str(&format!(
            "<|im_start|>user\nTell me one fact about the number {i}, briefly.<|im_end|>\n<|im_start|>assistant\n"
        ));
        if i + 1 < turns {
            text.push_str(&format!(
                "The number {i} is a whole number that comes right after {} when counting up.<|im_end|>\n",
                i as i64 - 1
            ));
        }
    }
    text
}

fn main() -> ExitCode {
    support::main_with(USAGE, OPTIONS, parse, |options| run(&options))
}

fn run(options: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let dir = SearchPaths::new().find_kind("cpu")?;
    let library = LlamaLibrary::load(&dir, PluginSelection::AllInDirectory)?;
    let model = Model::load(&library, &options.model, ModelParams::new())?;
    let params = ContextParams::default()
        .with_n_ctx(4096)
        .with_n_batch(512)
        .with_threads(options.threads);
    let generate = GenerateOptions::default().with_max_tokens(options.reply_tokens);
    println!(
        "model {}, {} threads, {} reply tokens per turn",
        options.model.display(),
        options.threads,
        options.reply_tokens
    );
    for turns in [2, 4, 8, 16, 32] {
        let mut sampler = Sampler::greedy(&model)?;
        // Session: turns 1..N, timing turn N.
        let mut session = Session::new(Context::new(&model, params.clone())?);
        let mut session_time = Duration::ZERO;
        let mut decoded = 0;
        for turn in 1..=turns {
            let started = Instant::now();
            let mut generation =
                session.generate(conversation(turn), &mut sampler, generate.clone())?;
            for piece in generation.by_ref() {
                piece?;
            }
            decoded = generation.summary().map_or(0, |s| s.prompt_tokens);
            session_time = started.elapsed();
        }
        // Fresh context: the whole conversation at turn N.
        let mut context = Context::new(&model, params.clone())?;
        let started = Instant::now();
        let mut generation =
            context.generate(conversation(turns), &mut sampler, generate.clone())?;
        for piece in generation.by_ref() {
            piece?;
        }
        let total = generation.summary().map_or(0, |s| s.prompt_tokens);
        let fresh_time = started.elapsed();
        println!(
            "  turn {turns:>2}: session {:7.1} ms ({decoded:>4} tokens decoded), fresh {:7.1} ms ({total:>4} tokens), ratio fresh/session {:.2}",
            session_time.as_secs_f64() * 1e3,
            fresh_time.as_secs_f64() * 1e3,
            fresh_time.as_secs_f64() / session_time.as_secs_f64()
        );
    }
    Ok(())
}
