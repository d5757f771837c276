//! Downloads a model from a URL or the Hugging Face hub and prints its path.
//!
//! ```text
//! pull (URL | hf://OWNER/REPO/FILE[@REVISION]) [--sha256 HEX] [--to DIR]
//! ```
//! Hub files go into the Hugging Face hub cache (shared with huggingface_hub), URLs into the
//! crate's cache (`downloads/`), both unless `--to DIR` names a directory. A partial download is
//! resumed; all parts of a split model are fetched and the first part's path is printed. Progress
//! goes to stderr (a bar on a terminal, else a few lines per second); the path is the last line
//! of stdout. The environment is read as huggingface_hub reads it (`HF_ENDPOINT`, `HF_HOME`,
//! `HF_HUB_CACHE`, `HF_TOKEN`, `HF_HUB_OFFLINE`) plus `GGUF_LOADER_OFFLINE`. Any failure exits
//! 1 with a one-line error; bad arguments exit 2. Needs `--features download`.

mod support;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gguf_loader::download::{fetch, fetch_to_dir, DownloadOptions, Progress, Source};
use indicatif::{ProgressBar, ProgressStyle};

const USAGE: &str = "usage: pull (URL | hf://OWNER/REPO/FILE[@REVISION]) [--sha256 HEX] [--to DIR]";

const OPTIONS: &str = "\
Downloads a file (resuming a partial one, verifying its sha256) and prints its path as the last
line of stdout. For a split model (NAME-00001-of-0000N.gguf) every part is fetched and the first
part's path printed.

arguments:
  URL                       an http:// or https:// URL
  hf://OWNER/REPO/FILE[@REVISION]
                            a file of a Hugging Face hub repository (revision: main)

options:
      --sha256 HEX          the file's expected sha256 (a mismatch is an error)
      --to DIR              download into DIR (default: the hub cache for hf://, the crate's
                            cache for URLs)
  -h, --help                print this help

environment: HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE=1 (cache only),
GGUF_LOADER_OFFLINE=1 (the same)";

struct Args {
    source: Source,
    sha256: Option<String>,
    to: Option<PathBuf>,
}

fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut parser = lexopt::Parser::from_args(raw);
    let mut source = None;
    let mut sha256 = None;
    let mut to = None;
    while let Some(arg) = parser.next().map_err(|e| format!("{e}\n{USAGE}"))? {
        let flag = support::flag_name(&arg);
        match arg {
            Long("sha256") => sha256 = Some(support::text(&mut parser, &flag)?),
            Long("to") => to = Some(support::path(&mut parser, &flag)?),
            Short('h') | Long("help") => return Ok(None),
            Value(text) => {
                let text = text
                    .into_string()
                    .map_err(|text| format!("the source is not valid UTF-8: {text:?}"))?;
                if source.replace(text).is_some() {
                    return Err(format!("only one source\n{USAGE}"));
                }
            }
            Short(_) | Long(_) => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    let source = source.ok_or(format!("missing URL or hf:// source\n{USAGE}"))?;
    let source = Source::parse(&source).map_err(|e| format!("{e}\n{USAGE}"))?;
    Ok(Some(Args { source, sha256, to }))
}

/// Shows [`Progress`] reports on stderr: a bar per file on a terminal, else at most two lines a
/// second (and one when a file completes).
enum Reporter {
    Bar(Mutex<Option<(String, ProgressBar)>>),
    Lines(Mutex<Option<(String, Instant)>>),
}

impl Reporter {
    fn new() -> Reporter {
        if std::io::stderr().is_terminal() {
            Reporter::Bar(Mutex::new(None))
        } else {
            Reporter::Lines(Mutex::new(None))
        }
    }

    fn report(&self, progress: &Progress) {
        match self {
            Reporter::Bar(state) => {
                let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                if state
                    .as_ref()
                    .map_or(true, |(file, _)| *file != progress.file)
                {
                    if let Some((_, bar)) = state.take() {
                        bar.finish();
                    }
                    let bar = ProgressBar::new(progress.total.unwrap_or(0));
                    if let Ok(style) = ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                    ) {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    bar.set_message(progress.file.clone());
                    *state = Some((progress.file.clone(), bar));
                }
                if let Some((_, bar)) = state.as_ref() {
                    if let Some(total) = progress.total {
                        bar.set_length(total);
                    }
                    bar.set_position(progress.downloaded);
                    if progress.total == Some(progress.downloaded) {
                        bar.finish();
                    }
                }
            }
            Reporter::Lines(state) => {
                let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                let done = progress.total == Some(progress.downloaded);
                let due = match state.as_ref() {
                    Some((file, last)) => {
                        *file != progress.file
                            || done
                            || last.elapsed() >= Duration::from_millis(500)
                    }
                    None => true,
                };
                if !due {
                    return;
                }
                *state = Some((progress.file.clone(), Instant::now()));
                let total = progress.total.map_or(String::new(), |total| {
                    let percent = if total == 0 {
                        100.0
                    } else {
                        100.0 * progress.downloaded as f64 / total as f64
                    };
                    format!(" of {} ({percent:.0}%)", mib(total))
                });
                eprintln!(
                    "{}: {}{total}, {}/s",
                    progress.file,
                    mib(progress.downloaded),
                    mib(progress.bytes_per_second as u64)
                );
            }
        }
    }

    fn finish(&self) {
        if let Reporter::Bar(state) = self {
            if let Some((_, bar)) = state.lock().unwrap_or_else(|e| e.into_inner()).take() {
                bar.finish();
            }
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let reporter = std::sync::Arc::new(Reporter::new());
    let mut options = DownloadOptions::from_env().with_progress({
        let reporter = reporter.clone();
        move |progress| reporter.report(progress)
    });
    options.sha256 = args.sha256;
    let path = match &args.to {
        Some(dir) => fetch_to_dir(&args.source, dir, &options),
        None => fetch(&args.source, &options),
    };
    reporter.finish();
    println!("{}", path?.display());
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
