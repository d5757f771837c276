//! Prints the embedding of each TEXT as one JSON array per line, in order.
//!
//! ```text
//! embed --model PATH [--pooling mean|cls|last|rank] [--normalize] [--threads T] [--n-ctx N]
//!       [--variant NAME] [--variant-dir DIR] TEXT...
//! ```
//! All texts are embedded together by [`gguf_loader::engine::embed::Embedder`] (several per
//! decode). The chosen variant goes to stderr. Any failure exits non-zero with a one-line error;
//! bad arguments exit 2.

mod support;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use gguf_loader::Pooling;

const USAGE: &str = "usage: embed --model PATH [--pooling mean|cls|last|rank] [--normalize] [--threads T] [--n-ctx N] [--variant NAME] [--variant-dir DIR] TEXT...";

const OPTIONS: &str = "\
Prints one JSON array of floats per TEXT, in order, one per line.

options:
  -m, --model PATH          GGUF model (required)
      --pooling P           mean, cls, last or rank (default: the model's own)
      --normalize           L2-normalise each embedding
  -t, --threads T           threads (default: the available cores)
  -c, --n-ctx N             context size = most tokens per text (default: the model's, at most 1024)
      --variant NAME        force a variant (cpu, cpu-haswell, vulkan, ...)
      --variant-dir DIR     search only this directory for variants
  -h, --help                print this help";

struct Args {
    model: PathBuf,
    pooling: Pooling,
    normalize: bool,
    threads: Option<i32>,
    n_ctx: Option<u32>,
    variant: Option<String>,
    variant_dir: Option<PathBuf>,
    texts: Vec<String>,
}

fn pooling(name: &str) -> Result<Pooling, String> {
    Ok(match name {
        "mean" => Pooling::Mean,
        "cls" => Pooling::Cls,
        "last" => Pooling::Last,
        "rank" => Pooling::Rank,
        other => {
            return Err(format!(
                "invalid --pooling {other:?} (mean, cls, last or rank)"
            ))
        }
    })
}

fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut parser = lexopt::Parser::from_args(raw);
    let mut model = None;
    let mut args = Args {
        model: PathBuf::new(),
        pooling: Pooling::Unspecified,
        normalize: false,
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
            Long("pooling") => args.pooling = pooling(&support::text(&mut parser, &flag)?)?,
            Long("normalize") => args.normalize = true,
            Long("threads") | Short('t') => {
                args.threads = Some(support::parsed(&mut parser, &flag)?)
            }
            Long("n-ctx") | Short('c') => args.n_ctx = Some(support::parsed(&mut parser, &flag)?),
            Long("variant") => args.variant = Some(support::text(&mut parser, &flag)?),
            Long("variant-dir") => args.variant_dir = Some(support::path(&mut parser, &flag)?),
            Short('h') | Long("help") => return Ok(None),
            Value(text) => args.texts.push(
                text.into_string()
                    .map_err(|text| format!("TEXT is not valid UTF-8: {text:?}"))?,
            ),
            Short(_) | Long(_) => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    args.model = model.ok_or(format!("missing --model\n{USAGE}"))?;
    if args.texts.is_empty() {
        return Err(format!("missing TEXT\n{USAGE}"));
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
    let mut embedder = support::cpu_embedder(&setup, args.pooling, args.normalize)?;
    let texts: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    let vectors = embedder.embed(&texts)?;
    let mut stdout = std::io::stdout().lock();
    for vector in vectors {
        writeln!(stdout, "{}", serde_json::to_string(&vector)?)?;
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
