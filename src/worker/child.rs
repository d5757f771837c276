//! The worker side: load, then serve requests until stdin closes.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::protocol::{
    Command, Event, Sampling, WireSummary, WorkerDevice, WorkerInfo, WorkerRequest, WorkerSpec,
};
use crate::context::CancelHandle;
use crate::error::{Error, Result};
use crate::loader::{SearchPaths, SelectOptions};
use crate::{Context, ContextParams, GenerateOptions, Model, ModelParams, Sampler};

/// Layers per device, from llama.cpp's `load_tensors: layer N assigned to device X` lines.
static LAYERS: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());

/// Writes one event as one line. A parent that went away ends the worker.
fn emit(event: &Event) {
    let Ok(mut line) = serde_json::to_string(event) else {
        return;
    };
    line.push('\n');
    let mut out = std::io::stdout().lock();
    if out
        .write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(3);
    }
}

fn emit_error(error: &Error) {
    emit(&Event::Error {
        category: error.category().to_string(),
        message: error.to_string(),
    });
}

/// Forwards log records (info and above) to the parent and counts layer assignments.
struct ForwardLogger;

impl log::Log for ForwardLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Debug
    }

    fn log(&self, record: &log::Record) {
        let message = record.args().to_string();
        if record.target() == crate::loader::log::LOG_TARGET {
            if let Some(device) = assigned_device(&message) {
                *LAYERS
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(device.to_string())
                    .or_default() += 1;
            }
        }
        if record.level() <= log::Level::Info {
            emit(&Event::Log {
                level: record.level().to_string(),
                target: record.target().to_string(),
                message,
            });
        }
    }

    fn flush(&self) {}
}

/// `load_tensors: layer  12 assigned to device RPC0, is_swa = 0` -> `RPC0`.
fn assigned_device(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("load_tensors: layer ")?;
    let (_, rest) = rest.split_once(" assigned to device ")?;
    Some(
        rest.split_once(',')
            .map_or(rest, |(device, _)| device)
            .trim(),
    )
}

/// The worker's main loop; returns the exit code.
pub(super) fn serve() -> i32 {
    static LOGGER: ForwardLogger = ForwardLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    let cancel: Arc<Mutex<Option<CancelHandle>>> = Arc::new(Mutex::new(None));
    let (commands, received) = mpsc::channel::<Command>();
    {
        let cancel = Arc::clone(&cancel);
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            let mut line = String::new();
            let mut input = stdin.lock();
            loop {
                line.clear();
                match input.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                match serde_json::from_str::<Command>(line.trim()) {
                    Ok(Command::Cancel) => {
                        if let Some(handle) =
                            cancel.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
                        {
                            handle.cancel();
                        }
                    }
                    Ok(command) => {
                        if commands.send(command).is_err() {
                            break;
                        }
                    }
                    Err(e) => emit(&Event::Error {
                        category: crate::Category::Configuration.to_string(),
                        message: format!("worker: unreadable command: {e}"),
                    }),
                }
            }
            // The parent is gone (or done): stop what runs.
            if let Some(handle) = cancel.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                handle.cancel();
            }
        });
    }
    let spec = match received.recv() {
        Ok(Command::Load { spec }) => spec,
        Ok(other) => {
            emit(&Event::Error {
                category: crate::Category::Configuration.to_string(),
                message: format!("worker: the first command must be load, not {other:?}"),
            });
            return 2;
        }
        Err(_) => return 0,
    };
    let (info, model, mut context) = match load(&spec) {
        Ok(loaded) => loaded,
        Err(error) => {
            emit_error(&error);
            return 1;
        }
    };
    *cancel.lock().unwrap_or_else(|p| p.into_inner()) = Some(context.cancel_handle());
    emit(&Event::Ready { info });
    while let Ok(command) = received.recv() {
        match command {
            Command::Generate { request } => generate(&model, &mut context, &request),
            Command::Shutdown => break,
            Command::Load { .. } => emit(&Event::Error {
                category: crate::Category::Configuration.to_string(),
                message: "worker: a model is loaded already (spawn another worker)".into(),
            }),
            Command::Cancel => {}
        }
    }
    0
}

fn load(spec: &WorkerSpec) -> Result<(WorkerInfo, Model, Context)> {
    let mut options = SelectOptions::from_env()?;
    if let Some(dir) = &spec.variant_dir {
        options.search = SearchPaths::new().with_dir(dir).only_explicit();
    }
    if let Some(name) = &spec.variant {
        crate::loader::select::check_name("variant", name)?;
        options.force = Some(name.clone());
    }
    let params = || {
        LAYERS.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let mut params = ModelParams::new()
            .with_gpu_layers(spec.gpu_layers)
            .with_rpc_servers(spec.rpc_servers.clone())
            // The worker is the isolation: an abort ends it, and the parent reports.
            .with_rpc_in_process(true);
        params.main_gpu = spec.main_gpu;
        params.split_mode = spec.split_mode;
        params.tensor_split = spec.tensor_split.clone();
        params
    };
    let (selection, model) = if spec.rpc_servers.is_empty() {
        Model::load_best(&options, &spec.model, |_| params())?
    } else {
        // A refused RPC server is no reason to try another variant: the best one loads the
        // model, and its error is the answer.
        let selection = crate::loader::load_best(&options)?;
        let model = Model::load(&selection.library, &spec.model, params())?;
        (selection, model)
    };
    let n_ctx = spec
        .n_ctx
        .unwrap_or(4096)
        .min(model.n_ctx_train().max(256) as u32);
    let mut params = ContextParams::default().with_n_ctx(n_ctx);
    if let Some(threads) = spec.threads {
        params = params.with_threads(threads);
    }
    let context = Context::new(&model, params)?;
    let layers = LAYERS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let devices = selection
        .library
        .devices()
        .into_iter()
        .map(|d| WorkerDevice {
            layers: layers.get(&d.name).copied().unwrap_or(0),
            name: d.name,
            description: d.description,
            backend: d.backend,
            memory_free: d.memory_free as u64,
            memory_total: d.memory_total as u64,
        })
        .collect();
    let info = WorkerInfo {
        variant: selection.variant.clone(),
        directory: selection.library.directory().path.clone(),
        llama_version: selection.library.llama_version().to_string(),
        devices,
        n_layer: model.n_layer(),
        n_ctx: context.n_ctx(),
        pid: std::process::id(),
    };
    Ok((info, model, context))
}

fn sampler(model: &Model, sampling: &Sampling) -> Result<Sampler> {
    match sampling {
        Sampling::Greedy => Sampler::builder(model).greedy().build(),
        Sampling::Sample {
            temp,
            top_k,
            top_p,
            min_p,
            repeat_penalty,
            seed,
        } => Sampler::builder(model)
            .penalties(64, *repeat_penalty, 0.0, 0.0)
            .top_k(*top_k)
            .top_p(*top_p, 1)
            .min_p(*min_p, 1)
            .temp(*temp)
            .dist(*seed)
            .build(),
    }
}

fn generate(model: &Model, context: &mut Context, request: &WorkerRequest) {
    let mut sampler = match sampler(model, &request.sampling) {
        Ok(sampler) => sampler,
        Err(error) => return emit_error(&error),
    };
    let mut options = GenerateOptions::default().with_max_tokens(request.max_tokens);
    options.stop = request.stop.clone();
    let mut generation = match context.generate(request.prompt.as_str(), &mut sampler, options) {
        Ok(generation) => generation,
        Err(error) => return emit_error(&error),
    };
    for piece in generation.by_ref() {
        match piece {
            Ok(piece) => emit(&Event::Piece {
                token: piece.token.map(|t| t.0),
                text: piece.text,
            }),
            Err(error) => return emit_error(&error),
        }
    }
    match generation.summary() {
        Some(summary) => emit(&Event::Done {
            summary: WireSummary::from(summary),
        }),
        None => emit(&Event::Error {
            category: crate::Category::Configuration.to_string(),
            message: "generation ended without a summary".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_assignments_are_read_from_the_log() {
        assert_eq!(
            assigned_device("load_tensors: layer  12 assigned to device RPC0, is_swa = 0"),
            Some("RPC0")
        );
        assert_eq!(
            assigned_device("load_tensors: offloaded 31/31 layers to GPU"),
            None
        );
    }
}
