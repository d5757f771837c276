//! A browser native-messaging host: a browser extension talks to a GGUF model through this
//! program, over its standard input and output.
//!
//! ```text
//! native_host [--model PATH] [--n-ctx N] [--parallel N] [--threads T] [--variant NAME]
//!             [--variant-dir DIR] [--max-message-bytes N]
//! native_host --print-manifest --extension-id ID [--browser chrome|firefox] [--host-name NAME]
//! ```
//!
//! # Framing
//! As browsers speak it: every message, both ways, is a 32-bit length in native byte order
//! followed by that many bytes of UTF-8 JSON. Messages from the host stay under 1 MiB (tokens
//! stream as small frames; a result that would be longer becomes an error frame saying so).
//! An inbound message over `--max-message-bytes` (default 64 MiB) is skipped without being held
//! in memory and answered with an error frame (id `null`); the host serves on. A length prefix
//! that promises more bytes than follow is answered with an error frame, and the host ends (its
//! input is over). At the end of the input the host waits for the requests in flight, then
//! exits with status 0.
//!
//! Nothing but frames reaches standard output: before llama.cpp is loaded, file descriptor 1 is
//! duplicated to a private descriptor that only the frame writer uses, and descriptor 1 is
//! pointed at stderr, so a stray `printf` in a native library cannot corrupt the stream.
//!
//! # Protocol
//! One request per frame: `{"id": ANY, "method": M, "params": {...}}`. Every reply carries the
//! request's `id` (any JSON value); `event` says what it is.
//!
//! A model given with `--model` is loaded before the first frame is read; if it cannot be
//! loaded, an error frame with id `null` says why and the host serves on without a model.
//!
//! - `info` → `{"event": "result", "result": {"loaded", "variant", "model", "n_ctx", "n_vocab",
//!   "parallel", "running", ...}}`
//! - `load` `{"model": PATH}` → `result` (as `info`). The new model serves the requests that
//!   follow; the old one is freed when the requests still using it end.
//! - `generate` `{"prompt", "max_tokens", "greedy", "temperature", "top_k", "top_p", "min_p",
//!   "stop", "seed"}` (the prompt tokenized as `examples/generate` does: special tokens added
//!   and parsed) and `chat` `{"messages": [{"role", "content"}...], ...the same}` (rendered
//!   with the model's chat template) → `{"event": "token", "text", "token"}` per token, then
//!   `{"event": "done", "summary": {"prompt_tokens", "generated_tokens", "stop", "cancelled",
//!   ...}}`. Up to `--parallel` requests generate at once (continuous batching); more wait.
//! - `embed` `{"texts": [...], "normalize": bool}` → `result` `{"vectors", "dimension",
//!   "pooling"}`.
//! - `cancel` `{"target": ID}` → `result` `{"target", "found"}`; the target's `done` says
//!   `"cancelled": true`.
//!
//! Anything wrong (framing, UTF-8, JSON, an unknown method or parameter, a bad value, a model
//! without a chat template, ...) is answered with `{"id" (null when unknown), "event":
//! "error", "error": {"category", "message"}}` and the host serves on. Categories: the
//! library's (`installation`, `hardware`, `model`, `configuration`) for its errors, `protocol`
//! for requests the protocol does not allow.
//!
//! A browser starts the host with its own arguments (Chrome: the caller's origin; Firefox: the
//! manifest's path and the extension's id); they are accepted and shown by `info` as
//! `caller`. The extension can load any model file the user can read: install the manifest
//! only for extensions you trust.

#[path = "../support/mod.rs"]
mod support;

mod frame;
mod host;
mod params;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{json, Value};

use host::{Host, Settings};

const USAGE: &str = "usage: native_host [--model PATH] [--n-ctx N] [--parallel N] [--threads T] [--variant NAME] [--variant-dir DIR] [--max-message-bytes N]\n       native_host --print-manifest --extension-id ID [--browser chrome|firefox] [--host-name NAME]";

const OPTIONS: &str = "\
A browser native-messaging host: length-prefixed JSON requests on stdin (info, load, generate,
chat, embed, cancel), length-prefixed JSON replies and token streams on stdout.

options:
  -m, --model PATH            GGUF model to load at start (else: a \"load\" request)
  -c, --n-ctx N               context size shared by the running requests (default 2048)
  -p, --parallel N            requests generating at once (default 4)
  -t, --threads T             threads per context (default: llama.cpp's)
      --variant NAME          force a variant (cpu, cpu-haswell, vulkan, ...)
      --variant-dir DIR       search only this directory for variants
      --max-message-bytes N   refuse inbound messages longer than N bytes (default 64 MiB)
      --print-manifest        print the host manifest for --extension-id and exit
      --extension-id ID       the extension allowed to start the host (Chrome: 32 letters a-p)
      --browser B             chrome (also Chromium, Edge) or firefox (default chrome)
      --host-name NAME        the host's name in the manifest (default gguf_loader)
  -h, --help                  print this help";

/// Which browser a manifest is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Browser {
    Chrome,
    Firefox,
}

#[derive(Debug)]
struct Args {
    model: Option<PathBuf>,
    n_ctx: u32,
    parallel: u32,
    threads: Option<i32>,
    variant: Option<String>,
    variant_dir: Option<PathBuf>,
    max_message_bytes: u64,
    print_manifest: bool,
    extension_id: Option<String>,
    browser: Option<Browser>,
    host_name: Option<String>,
    caller: Vec<String>,
}

/// Parses the arguments (without the program name); `Ok(None)` when help was asked for.
fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut args = Args {
        model: None,
        n_ctx: 2048,
        parallel: 4,
        threads: None,
        variant: None,
        variant_dir: None,
        max_message_bytes: 64 << 20,
        print_manifest: false,
        extension_id: None,
        browser: None,
        host_name: None,
        caller: Vec::new(),
    };
    let mut parser = lexopt::Parser::from_args(raw);
    while let Some(arg) = parser.next().map_err(|e| format!("{e}\n{USAGE}"))? {
        let flag = support::flag_name(&arg);
        match arg {
            Short('m') | Long("model") => args.model = Some(support::path(&mut parser, &flag)?),
            Short('c') | Long("n-ctx") => args.n_ctx = support::parsed(&mut parser, &flag)?,
            Short('p') | Long("parallel") => args.parallel = support::parsed(&mut parser, &flag)?,
            Short('t') | Long("threads") => {
                args.threads = Some(support::parsed(&mut parser, &flag)?)
            }
            Long("variant") => args.variant = Some(support::text(&mut parser, &flag)?),
            Long("variant-dir") => args.variant_dir = Some(support::path(&mut parser, &flag)?),
            Long("max-message-bytes") => {
                args.max_message_bytes = support::parsed(&mut parser, &flag)?
            }
            Long("print-manifest") => args.print_manifest = true,
            Long("extension-id") => args.extension_id = Some(support::text(&mut parser, &flag)?),
            Long("browser") => {
                args.browser = Some(match support::text(&mut parser, &flag)?.as_str() {
                    "chrome" | "chromium" => Browser::Chrome,
                    "firefox" => Browser::Firefox,
                    other => {
                        return Err(format!("invalid --browser {other:?} (chrome or firefox)"))
                    }
                })
            }
            Long("host-name") => args.host_name = Some(support::text(&mut parser, &flag)?),
            // Chrome on Windows passes the handle of the calling window; not used.
            Long("parent-window") => {
                support::text(&mut parser, &flag)?;
            }
            Short('h') | Long("help") => return Ok(None),
            // What the browser passes: Chrome the caller's origin, Firefox the manifest path
            // and the extension id.
            Value(value) => {
                if args.caller.len() == 2 {
                    return Err(format!("unexpected argument {value:?}\n{USAGE}"));
                }
                args.caller.push(value.to_string_lossy().into_owned());
            }
            Short(_) | Long(_) => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if args.print_manifest {
        if args.extension_id.is_none() {
            return Err("--print-manifest needs --extension-id ID".into());
        }
    } else if args.extension_id.is_some() || args.browser.is_some() || args.host_name.is_some() {
        return Err("--extension-id, --browser and --host-name are for --print-manifest".into());
    }
    if args.n_ctx < 16 {
        return Err(format!("--n-ctx {} is too small (at least 16)", args.n_ctx));
    }
    if !(1..=256).contains(&args.parallel) {
        return Err(format!(
            "--parallel {} must be from 1 to 256",
            args.parallel
        ));
    }
    if args.threads.is_some_and(|t| t < 1) {
        return Err("--threads must be at least 1".into());
    }
    if args.max_message_bytes == 0 || args.max_message_bytes > u64::from(u32::MAX) {
        return Err(format!(
            "--max-message-bytes must be from 1 to {} (the length prefix is 32 bits)",
            u32::MAX
        ));
    }
    Ok(Some(args))
}

/// Whether `name` is a valid host name: dot-separated parts of `a-z`, `0-9` and `_`.
fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// The host manifest for `browser`, naming this executable.
fn manifest(args: &Args) -> Result<Value, String> {
    let name = args.host_name.as_deref().unwrap_or("gguf_loader");
    if !valid_host_name(name) {
        return Err(format!(
            "invalid --host-name {name:?}: dot-separated parts of a-z, 0-9 and _"
        ));
    }
    let id = args.extension_id.as_deref().unwrap_or_default();
    let path = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| format!("cannot find this executable's path: {e}"))?;
    let path = path
        .to_str()
        .ok_or_else(|| format!("this executable's path {path:?} is not UTF-8"))?;
    let description = "GGUF models through llama.cpp (gguf-loader)";
    Ok(match args.browser.unwrap_or(Browser::Chrome) {
        Browser::Chrome => {
            if id.len() != 32 || !id.bytes().all(|b| (b'a'..=b'p').contains(&b)) {
                return Err(format!(
                    "invalid Chrome extension id {id:?}: 32 letters from a to p"
                ));
            }
            json!({
                "name": name,
                "description": description,
                "path": path,
                "type": "stdio",
                "allowed_origins": [format!("chrome-extension://{id}/")],
            })
        }
        Browser::Firefox => {
            if id.is_empty() || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(format!(
                    "invalid Firefox extension id {id:?} (e.g. name@example.org)"
                ));
            }
            json!({
                "name": name,
                "description": description,
                "path": path,
                "type": "stdio",
                "allowed_extensions": [id],
            })
        }
    })
}

/// Keeps the original standard output for frames only: a private duplicate of descriptor 1
/// is returned, and descriptor 1 then points at stderr (for whatever else prints).
#[cfg(unix)]
fn private_stdout() -> std::io::Result<Box<dyn Write + Send>> {
    std::io::stdout().flush()?;
    let private = rustix::io::dup(std::io::stdout())?;
    // Children (smoke-test runs of a GPU variant) must not inherit the frame stream.
    rustix::io::fcntl_setfd(&private, rustix::io::FdFlags::CLOEXEC)?;
    rustix::stdio::dup2_stdout(std::io::stderr())?;
    Ok(Box::new(std::fs::File::from(private)))
}

/// Without file descriptors to juggle, frames go to standard output itself.
#[cfg(not(unix))]
fn private_stdout() -> std::io::Result<Box<dyn Write + Send>> {
    Ok(Box::new(std::io::stdout()))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.print_manifest {
        let manifest = manifest(&args)?;
        println!("{}", serde_json::to_string_pretty(&manifest)?);
        return Ok(());
    }
    let out = private_stdout().map_err(|e| format!("cannot set up the frame output: {e}"))?;
    if std::env::var_os("GGUF_LOADER_HOST_STRAY_STDOUT").is_some_and(|v| v == "1") {
        // Testing hook: what a stray printf would do after the redirect (lands on stderr).
        println!("native_host: stray stdout marker");
    }
    let writer = Arc::new(frame::FrameWriter::new(out));
    let host = Host::new(
        Settings {
            n_ctx: args.n_ctx,
            parallel: args.parallel,
            threads: args.threads,
            variant: args.variant,
            variant_dir: args.variant_dir,
            max_message_bytes: args.max_message_bytes,
            caller: args.caller,
        },
        writer,
    );
    if let Some(path) = &args.model {
        host.load_at_start(path);
    }
    let stdin = std::io::stdin();
    host.serve(&mut stdin.lock());
    host.finish();
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
