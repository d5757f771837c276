//! Prints what gguf-loader sees on this machine: hardware, every known variant (available or
//! not, and why), ggml's score for each CPU module found, the effective configuration (the
//! configuration file under the environment, with where each value came from) and the variant it
//! would pick.
//!
//! ```text
//! doctor [--json] [--rpc HOST:PORT[,HOST:PORT...]]
//! ```
//! With `--rpc` (or `GGUF_RPC_SERVERS=HOST:PORT,...`) it also probes those RPC servers from
//! Rust (TCP connect, the protocol's HELLO, device count and memory; nothing reaches
//! ggml-rpc, which would abort on an unreachable server) and lists their devices.

use std::ffi::OsString;
use std::process::ExitCode;

use gguf_loader::hardware::{CudaDriver, HardwareProfile};
use gguf_loader::loader::config::BackendConfig;
use gguf_loader::loader::{
    cpu_module_score, discovery, load_best, rank, Backend, Family, SelectOptions,
};
use serde_json::json;

const USAGE: &str = "usage: doctor [--json] [--rpc HOST:PORT[,HOST:PORT...]]";

/// Environment variable listing RPC servers to probe (as `--rpc`).
const RPC_ENV: &str = "GGUF_RPC_SERVERS";

const OPTIONS: &str = "\
Prints the detected hardware, every known variant with the reason it is (un)available, ggml's
score for each CPU module found, the effective configuration (~/.gguf-loader/backend_config.json
or $GGUF_LOADER_CONFIG under GGUF_BACKEND / GGUF_GPU_ENABLED / GGUF_DEBUG, each value with its
source) and the variant that would be picked. Exits 1 when none loads.

options:
      --json                print the report as JSON
      --rpc HOST:PORT,...   probe these RPC servers and list their devices (default:
                            $GGUF_RPC_SERVERS)
  -h, --help                print this help";

/// Parses the arguments (without the program name): `Ok(Some((as_json, rpc servers)))`, or
/// `Ok(None)` when help was asked for.
fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Option<(bool, String)>, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut parser = lexopt::Parser::from_args(raw);
    let mut as_json = false;
    let mut rpc = std::env::var(RPC_ENV).unwrap_or_default();
    while let Some(arg) = parser.next().map_err(|e| format!("{e}\n{USAGE}"))? {
        match arg {
            Long("json") => as_json = true,
            Long("rpc") => {
                rpc = parser
                    .value()
                    .map_err(|_| "--rpc needs a value".to_string())?
                    .into_string()
                    .map_err(|v| format!("invalid value for --rpc: {v:?}"))?;
            }
            Short('h') | Long("help") => return Ok(None),
            Short(c) => return Err(format!("unknown option -{c}\n{USAGE}")),
            Long(name) => return Err(format!("unknown option --{name}\n{USAGE}")),
            Value(value) => {
                return Err(format!("unexpected argument {value:?}\n{USAGE}"));
            }
        }
    }
    if !rpc.trim().is_empty() {
        gguf_loader::rpc::RpcEndpoint::parse_list(&rpc).map_err(|e| format!("--rpc: {e}"))?;
    }
    Ok(Some((as_json, rpc)))
}

/// Probes each server (Rust only) and describes it for the report.
fn rpc_report(list: &str) -> Vec<serde_json::Value> {
    use gguf_loader::rpc::{probe, ProbeOptions, RpcEndpoint};
    if list.trim().is_empty() {
        return Vec::new();
    }
    let Ok(endpoints) = RpcEndpoint::parse_list(list) else {
        return Vec::new();
    };
    endpoints
        .iter()
        .map(|endpoint| match probe(endpoint, &ProbeOptions::default()) {
            Ok(info) => json!({
                "endpoint": endpoint.to_string(),
                "address": info.address.to_string(),
                "version": format!("{}.{}.{}", info.version.0, info.version.1, info.version.2),
                "devices": info.devices.iter().map(|d| json!({
                    "index": d.index, "memory_free": d.free, "memory_total": d.total,
                })).collect::<Vec<_>>(),
            }),
            Err(error) => json!({ "endpoint": endpoint.to_string(), "error": error.to_string() }),
        })
        .collect()
}

fn main() -> ExitCode {
    gguf_loader::loader::smoke::run_if_requested();
    let (as_json, rpc) = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}\n\n{OPTIONS}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let options = match BackendConfig::load().and_then(|c| Ok((SelectOptions::from_config(&c)?, c)))
    {
        Ok(options) => options,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (options, config) = options;
    let hardware: &HardwareProfile = &options.hardware;
    let (directories, broken) = options.search.discover();

    // Upstream's variants as ranked for an ordinary model, then the BitNet fork's as ranked for
    // a BitNet model (each list says why its variants are (un)available for those models).
    let mut bitnet_options = options.clone();
    bitnet_options.family = Family::BitNet;
    let ranked = rank(&options)
        .into_iter()
        .filter(|c| c.variant.family() == Family::Upstream)
        .chain(
            rank(&bitnet_options)
                .into_iter()
                .filter(|c| c.variant.family() == Family::BitNet),
        );
    let variants: Vec<serde_json::Value> = ranked
        .map(|candidate| {
            let name = candidate.variant.name().to_string();
            let directory = directories
                .iter()
                .find(|d| d.kind == candidate.variant.directory_kind());
            let (available, reason) = match (&candidate.verdict, directory) {
                (Err(reason), _) => (false, reason.clone()),
                (Ok(()), None) => (
                    false,
                    format!(
                        "no `{}` variant directory",
                        candidate.variant.directory_kind()
                    ),
                ),
                (Ok(()), Some(d)) => match candidate.variant.cpu_module() {
                    Some(m) if !d.cpu_modules.iter().any(|x| x == m) => {
                        (false, format!("no libggml-cpu-{m} in {}", d.path.display()))
                    }
                    _ => (true, format!("in {}", d.path.display())),
                },
            };
            let family = match candidate.variant.family() {
                Family::BitNet => "bitnet",
                _ => "upstream",
            };
            json!({ "name": name, "family": family, "available": available, "reason": reason })
        })
        .collect();

    let mut scores = Vec::new();
    if let Some(cpu_dir) = directories.iter().find(|d| d.kind == Backend::Cpu.name()) {
        for module in &cpu_dir.cpu_modules {
            let path = discovery::cpu_module_path(&cpu_dir.path, module);
            let score = cpu_module_score(&path).map_err(|e| e.to_string());
            scores.push(json!({ "module": module, "score": score.as_ref().ok(), "error": score.as_ref().err() }));
        }
    }

    let pick = load_best(&options);
    let pick_json = match &pick {
        Ok(selection) => json!({
            "variant": selection.variant,
            "directory": selection.library.directory().path,
            "llama_version": selection.library.llama_version(),
            "ggml_version": selection.library.ggml_version(),
            "rpc": selection.library.supports_rpc(),
            "devices": selection.library.devices().iter().map(|d| json!({
                "name": d.name, "description": d.description, "backend": d.backend,
                "memory_total": d.memory_total, "memory_free": d.memory_free,
            })).collect::<Vec<_>>(),
            "rejected": selection.rejected.iter().map(|(n, r)| json!({"name": n, "reason": r})).collect::<Vec<_>>(),
        }),
        Err(error) => json!({ "error": error.to_string() }),
    };
    let picked_settings = pick
        .as_ref()
        .ok()
        .map(|selection| config.settings_for(&selection.variant));
    let configuration = json!({
        "file": config.path,
        "values": config.entries().into_iter().map(|(key, value, source)| {
            json!({ "key": key, "value": value, "source": source.to_string() })
        }).collect::<Vec<_>>(),
        "warnings": config.warnings,
        "for_pick": picked_settings.map(|s| json!({
            "gpu_layers": s.gpu_layers, "context_size": s.context_size,
            "batch_size": s.batch_size, "use_mlock": s.use_mlock,
        })),
    });

    let report = json!({
        "hardware": {
            "os": hardware.os,
            "memory_bytes": hardware.memory_bytes,
            "cpu": {
                "arch": hardware.cpu.arch, "vendor": hardware.cpu.vendor, "brand": hardware.cpu.brand,
                "family": hardware.cpu.family, "model": hardware.cpu.model,
                "logical_cores": hardware.cpu.logical_cores,
                "physical_cores": hardware.cpu.physical_cores,
                "features": hardware.cpu.features.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>(),
            },
            "gpus": hardware.gpus.iter().map(|g| json!({
                "api": format!("{:?}", g.api), "vendor_id": format!("{:#06x}", g.vendor_id), "name": g.name,
                "type": format!("{:?}", g.device_type), "memory_bytes": g.memory_bytes,
                "driver_version": g.driver_version,
                "compute_capability": g.compute_capability.map(|(a, b)| format!("{a}.{b}")),
                "free_bytes": g.free_bytes,
            })).collect::<Vec<_>>(),
            "cuda_driver": match &hardware.cuda_driver {
                CudaDriver::Present { version } => json!({"present": true, "version": version}),
                CudaDriver::Missing(reason) => json!({"present": false, "reason": reason}),
            },
        },
        "search_roots": options.search.roots(),
        "broken_directories": broken.iter().map(|(p, e)| json!({"path": p, "error": e.to_string()})).collect::<Vec<_>>(),
        "variants": variants,
        "cpu_module_scores": scores,
        "configuration": configuration,
        "pick": pick_json,
        "rpc_servers": rpc_report(&rpc),
    });

    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_text(&report);
    }
    if pick.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_text(report: &serde_json::Value) {
    let hw = &report["hardware"];
    let cpu = &hw["cpu"];
    println!(
        "OS: {}, {} MiB RAM",
        hw["os"].as_str().unwrap_or(""),
        hw["memory_bytes"].as_u64().unwrap_or(0) >> 20
    );
    println!(
        "CPU: {} ({}, family {} model {}), {} physical / {} logical cores",
        cpu["brand"].as_str().unwrap_or(""),
        cpu["vendor"].as_str().unwrap_or(""),
        cpu["family"],
        cpu["model"],
        cpu["physical_cores"],
        cpu["logical_cores"]
    );
    let features: Vec<&str> = cpu["features"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .collect();
    println!("  features: {}", features.join(" "));
    let gpus = hw["gpus"].as_array().cloned().unwrap_or_default();
    if gpus.is_empty() {
        println!("GPUs: none");
    }
    for g in &gpus {
        println!(
            "GPU: {} [{} {}, vendor {}], {} MiB",
            g["name"].as_str().unwrap_or(""),
            g["api"].as_str().unwrap_or(""),
            g["type"].as_str().unwrap_or(""),
            g["vendor_id"].as_str().unwrap_or(""),
            g["memory_bytes"].as_u64().unwrap_or(0) >> 20
        );
    }
    println!("CUDA driver: {}", hw["cuda_driver"]);
    println!("\nVariants (in preference order; the BitNet fork's serve BitNet models):");
    for v in report["variants"].as_array().into_iter().flatten() {
        let mark = if v["available"].as_bool() == Some(true) {
            "available  "
        } else {
            "unavailable"
        };
        println!(
            "  {mark} {:<20} {}",
            v["name"].as_str().unwrap_or(""),
            v["reason"].as_str().unwrap_or("")
        );
    }
    println!("\nggml CPU module scores (0 = cannot run here):");
    for s in report["cpu_module_scores"].as_array().into_iter().flatten() {
        match s["score"].as_i64() {
            Some(score) => println!("  {:<16} {score}", s["module"].as_str().unwrap_or("")),
            None => println!(
                "  {:<16} error: {}",
                s["module"].as_str().unwrap_or(""),
                s["error"]
            ),
        }
    }
    let configuration = &report["configuration"];
    match configuration["file"].as_str() {
        Some(file) => println!("\nConfiguration (file {file}):"),
        None => println!("\nConfiguration (no file):"),
    }
    for v in configuration["values"].as_array().into_iter().flatten() {
        println!(
            "  {:<28} {:<12} ({})",
            v["key"].as_str().unwrap_or(""),
            v["value"].to_string(),
            v["source"].as_str().unwrap_or("")
        );
    }
    for w in configuration["warnings"].as_array().into_iter().flatten() {
        println!("  warning: {}", w.as_str().unwrap_or(""));
    }
    let servers = report["rpc_servers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !servers.is_empty() {
        println!("\nRPC servers (probed from Rust):");
    }
    for server in &servers {
        let endpoint = server["endpoint"].as_str().unwrap_or("");
        if let Some(error) = server["error"].as_str() {
            println!("  {endpoint}: {error}");
            continue;
        }
        println!(
            "  {endpoint} ({}), protocol {}",
            server["address"].as_str().unwrap_or(""),
            server["version"].as_str().unwrap_or("")
        );
        for d in server["devices"].as_array().into_iter().flatten() {
            println!(
                "    remote device {}: {} MiB free of {} MiB",
                d["index"],
                d["memory_free"].as_u64().unwrap_or(0) >> 20,
                d["memory_total"].as_u64().unwrap_or(0) >> 20
            );
        }
    }
    let pick = &report["pick"];
    println!();
    if let Some(error) = pick["error"].as_str() {
        println!("Pick: none: {error}");
        return;
    }
    println!(
        "Pick: {} from {} (llama {}, ggml {})",
        pick["variant"].as_str().unwrap_or(""),
        pick["directory"].as_str().unwrap_or(""),
        pick["llama_version"].as_str().unwrap_or(""),
        pick["ggml_version"].as_str().unwrap_or("")
    );
    println!(
        "  RPC: {}",
        if pick["rpc"].as_bool() == Some(true) {
            "supported (libggml-rpc present)"
        } else {
            "not in this build"
        }
    );
    for d in pick["devices"].as_array().into_iter().flatten() {
        println!(
            "  device {} ({}): {}",
            d["name"].as_str().unwrap_or(""),
            d["backend"].as_str().unwrap_or(""),
            d["description"].as_str().unwrap_or("")
        );
    }
}
