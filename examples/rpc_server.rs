//! Serves this machine's devices to llama.cpp RPC clients (`generate --rpc HOST:PORT`).
//!
//! ```text
//! rpc_server [--host H] [--port P] [--threads T] [--device NAME]... [--cache-dir DIR]
//!            [--variant NAME] [--variant-dir DIR] [--allow-remote]
//! ```
//! Listens on 127.0.0.1:50052 by default. The RPC protocol has no authentication and no
//! encryption, and the server trusts its clients: an address other than a loopback one is
//! refused unless `--allow-remote` is given, and then a warning goes to stderr. Once every
//! check passed (devices, threads, cache directory, the port bound once from Rust), it prints
//! `listening on HOST:PORT` on stderr and serves until killed; ggml-rpc prints its banner and
//! each connection on stdout.

mod support;

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use gguf_loader::loader::load_best;
use gguf_loader::rpc::{RpcServer, RpcServerOptions};

const USAGE: &str = "usage: rpc_server [--host H] [--port P] [--threads T] [--device NAME]... [--cache-dir DIR] [--variant NAME] [--variant-dir DIR] [--allow-remote]";

const OPTIONS: &str = "\
Serves local devices to llama.cpp RPC clients until killed. The protocol has no authentication
and no encryption: keep it on loopback or a trusted network.

options:
      --host H            IPv4 address to listen on (default 127.0.0.1)
  -p, --port P            port (default 50052)
  -t, --threads T         CPU backend threads (default: available cores)
  -d, --device NAME       a device to serve (CPU, Vulkan0, ...); repeatable (default: every
                          GPU, else the CPU)
  -c, --cache-dir DIR     cache large tensors by hash in DIR (created when missing)
      --variant NAME      force a variant (cpu, cpu-haswell, vulkan, ...)
      --variant-dir DIR   search only this directory for variants
      --allow-remote      allow a non-loopback --host (prints a warning)
  -h, --help              print this help";

const REMOTE_WARNING: &str = "warning: the RPC protocol has no authentication and no encryption, and a client can crash the server: anyone who can reach this port can use (and read) the served devices. Never expose it on an open network.";

#[derive(Debug)]
struct Args {
    host: Ipv4Addr,
    port: u16,
    threads: Option<usize>,
    devices: Vec<String>,
    cache_dir: Option<PathBuf>,
    variant: Option<String>,
    variant_dir: Option<PathBuf>,
}

fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut args = Args {
        host: Ipv4Addr::LOCALHOST,
        port: 50052,
        threads: None,
        devices: Vec::new(),
        cache_dir: None,
        variant: None,
        variant_dir: None,
    };
    let mut allow_remote = false;
    let mut parser = lexopt::Parser::from_args(raw);
    while let Some(arg) = parser.next().map_err(|e| format!("{e}\n{USAGE}"))? {
        let flag = support::flag_name(&arg);
        match arg {
            Long("host") => {
                let text = support::text(&mut parser, &flag)?;
                args.host = text.parse().map_err(|_| {
                    format!("--host {text:?} is not an IPv4 address (the pinned ggml-rpc listens over IPv4 only)")
                })?;
            }
            Long("port") | Short('p') => {
                let port: u16 = support::parsed(&mut parser, &flag)?;
                if port == 0 {
                    return Err("--port must be 1..=65535".into());
                }
                args.port = port;
            }
            Long("threads") | Short('t') => {
                let threads: usize = support::parsed(&mut parser, &flag)?;
                if threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
                args.threads = Some(threads);
            }
            Long("device") | Short('d') => args.devices.push(support::text(&mut parser, &flag)?),
            Long("cache-dir") | Short('c') => {
                args.cache_dir = Some(support::path(&mut parser, &flag)?)
            }
            Long("variant") => args.variant = Some(support::text(&mut parser, &flag)?),
            Long("variant-dir") => args.variant_dir = Some(support::path(&mut parser, &flag)?),
            Long("allow-remote") => allow_remote = true,
            Short('h') | Long("help") => return Ok(None),
            Value(value) => {
                return Err(format!("unexpected argument {value:?}\n{USAGE}"));
            }
            Short(_) | Long(_) => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if !args.host.is_loopback() {
        if !allow_remote {
            return Err(format!(
                "--host {} is not a loopback address: the RPC protocol has no authentication and no encryption; pass --allow-remote to serve on it anyway",
                args.host
            ));
        }
        eprintln!("{REMOTE_WARNING}");
    }
    Ok(Some(args))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let options = support::select_options(args.variant.as_deref(), args.variant_dir.as_deref())?;
    let selection = load_best(&options)?;
    let mut server_options = RpcServerOptions {
        host: args.host,
        port: args.port,
        devices: args.devices,
        cache_dir: args.cache_dir,
        ..RpcServerOptions::default()
    };
    if let Some(threads) = args.threads {
        server_options.threads = threads;
    }
    let server = RpcServer::new(&selection.library, server_options)?;
    let devices: Vec<String> = server
        .devices()
        .iter()
        .map(|d| {
            format!(
                "{} ({}, {} MiB free)",
                d.name,
                d.description,
                d.memory_free >> 20
            )
        })
        .collect();
    eprintln!(
        "variant: {} ({}) serving: {} threads: {}",
        selection.variant,
        selection.library.directory().path.display(),
        devices.join(", "),
        server.threads()
    );
    eprintln!("listening on {}", server.endpoint());
    match server.serve()? {}
}

fn main() -> ExitCode {
    support::main_with(
        USAGE,
        OPTIONS,
        || parse_args(std::env::args_os().skip(1)),
        run,
    )
}
