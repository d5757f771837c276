//! Prints the relevance score of each DOC for the query, one per line, in order.
//!
//! ```text
//! rerank --model PATH --query Q [--threads T] [--n-ctx N] [--variant NAME] [--variant-dir DIR]
//!        DOC...
//! ```
//! The model must be a reranker (rank pooling, a classifier head); the documents are scored
//! together by [`gguf_loader::engine::embed::Embedder::rerank`] (several per decode). The chosen variant goes to stderr. Any failure exits non-zero with a one-line error;
//! bad arguments exit 2.

mod support;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use gguf_loader::Pooling;

const USAGE: &str = "usage: rerank --model PATH --query Q [--threads T] [--n-ctx N] [--variant NAME] [--variant-dir DIR] DOC...";

const OPTIONS: &str = "\
Prints the score of each DOC for the query Q (the classifier's first output), one per line.

options:
  -m, --model PATH          GGUF model (required)
  -q, --query Q             the query (required)
  -t, --threads T           threads (default: the available cores)
  -c, --n-ctx N             context size = most tokens per pair (default: the model's, at most 1024)
      --variant NAME        force a variant (cpu, cpu-haswell, vulkan, ...)
      --variant-dir DIR     search only this directory for variants
  -h, --help                print this help";

struct Args {
    model: PathBuf,
    query: Option<String>,
    threads: Option<i32>,
    n_ctx: Option<u32>,
    variant: Option<String>,
    variant_dir: Option<PathBuf>,
    texts: Vec<String>,
}

fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut parser = lexopt::Parser::from_args(raw);
    let mut model = None;
    let mut args = Args {
        model: PathBuf::new(),
        query: None,
        threads: None,
        n_ctx: None,
        variant: None,
        variant_dir: None,
        texts: Vec::new(),
    };
    while let Some(arg) = parser.next().map_err(|e| format!("{e}\n{USAGE}"))? {
        let flag = support::flag_name(&arg);
        match arg {
            Long("model") | Short('m') => model = Some(support::path(&mut parser, &flag)?),
            Long("query") | Short('q') => args.query = Some(support::text(&mut parser, &flag)?),
            Long("threads") | Short('t') => {
                args.threads = Some(support::parsed(&mut parser, &flag)?)
            }
            Long("n-ctx") | Short('c') => args.n_ctx = Some(support::parsed(&mut parser, &flag)?),
            Long("variant") => args.variant = Some(support::text(&mut parser, &flag)?),
            Long("variant-dir") => args.variant_dir = Some(support::path(&mut parser, &flag)?),
            Short('h') | Long("help") => return Ok(None),
            Value(text) => args.texts.push(
                text.into_string()
                    .map_err(|text| format!("DOC is not valid UTF-8: {text:?}"))?,
            ),
            Short(_) | Long(_) => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    args.model = model.ok_or(format!("missing --model\n{USAGE}"))?;
    if args.query.is_none() {
        return Err(format!("missing --query\n{USAGE}"));
    }
    if args.texts.is_empty() {
        return Err(format!("missing DOC\n{USAGE}"));
    }
    Ok(Some(args))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let setup = support::EmbedderArgs {
        variant: args.variant.as_deref(),
        variant_dir: args.variant_dir.as_deref(),
        model: &args.model,
        n_ctx: args.n_ctx,
        threads: args.threads,
    };
    let mut embedder = support::cpu_embedder(&setup, Pooling::Rank, false)?;
    let documents: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    let query = args.query.as_deref().unwrap_or_default();
    let scores = embedder.rerank(query, &documents)?;
    let mut stdout = std::io::stdout().lock();
    for score in scores {
        writeln!(stdout, "{score}")?;
    }
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
