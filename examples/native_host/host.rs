//! The host's state and the protocol: one request per frame, dispatched by `method`; every
//! reply carries the request's `id`. Generations run on a [`ParallelEngine`] thread and are
//! forwarded to the frame writer by one thread per request, so the reading thread is free for
//! the next frame (a `cancel`, say) while tokens stream.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;

use gguf_loader::engine::embed::{l2_normalize, Embedder};
use gguf_loader::engine::parallel::{EngineHandle, Event, ParallelEngine, Request, RequestId};
use gguf_loader::loader::{LlamaLibrary, VariantKind};
use gguf_loader::{
    ChatRequest, ChatTemplate, Context, ContextParams, GenerateOptions, GpuLayers, Model,
    ModelParams, Pooling, Prompt, StopReason, Summary,
};
use serde_json::{json, Map, Value};

use crate::frame::{self, error_frame, FrameWriter, Inbound};
use crate::params::{self, Input, Params};
use crate::support;

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Context size of the generation context (all sequences share it).
    pub n_ctx: u32,
    /// Sequences generating at once.
    pub parallel: u32,
    /// Threads per context (llama.cpp's default when `None`).
    pub threads: Option<i32>,
    /// `--variant`.
    pub variant: Option<String>,
    /// `--variant-dir`.
    pub variant_dir: Option<PathBuf>,
    /// Inbound messages above this many bytes are refused.
    pub max_message_bytes: u64,
    /// What the browser passed as arguments (the caller's origin, or the manifest path and
    /// extension id).
    pub caller: Vec<String>,
}

/// Why a request failed: the `error` object of an error frame.
#[derive(Debug, Clone)]
pub struct Failure {
    category: String,
    message: String,
    hint: Option<&'static str>,
}

impl Failure {
    /// A request that breaks the protocol (shape, types, unknown method).
    pub fn protocol(message: impl Into<String>) -> Self {
        Failure {
            category: "protocol".into(),
            message: message.into(),
            hint: None,
        }
    }

    /// A request the host's state or settings cannot serve.
    pub fn configuration(message: impl Into<String>) -> Self {
        Failure {
            category: "configuration".into(),
            message: message.into(),
            hint: None,
        }
    }

    fn frame(&self, id: &Value) -> Value {
        error_frame(id, &self.category, &self.message, self.hint)
    }
}

impl From<gguf_loader::Error> for Failure {
    fn from(error: gguf_loader::Error) -> Self {
        Failure {
            category: error.category().to_string(),
            message: error.to_string().replace('\n', "; "),
            hint: Some(error.hint()),
        }
    }
}

/// A loaded model and what runs on it. Requests hold it in an `Arc`: after a `load` replaces
/// it, it is freed when the last request that uses it ends.
struct Loaded {
    /// The generation engine (an error for models that cannot generate, e.g. embedding-only).
    /// Declared first: dropping it joins the engine thread and frees its context.
    engine: Result<EngineHandle, Failure>,
    /// The embedding context, created by the first `embed`.
    embedder: Mutex<Option<Embedder>>,
    /// The model's chat template, read by the first `chat`.
    template: OnceLock<Result<ChatTemplate, Failure>>,
    model: Model,
    variant: String,
    n_ctx: u32,
}

impl Loaded {
    fn template(&self) -> Result<&ChatTemplate, Failure> {
        self.template
            .get_or_init(|| ChatTemplate::from_model(&self.model).map_err(Failure::from))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The llama.cpp build in use (one per process), chosen by the first load.
struct LibrarySlot {
    library: LlamaLibrary,
    variant: String,
    kind: VariantKind,
}

/// A generation in flight, for `cancel`.
struct Running {
    loaded: Arc<Loaded>,
    request: RequestId,
}

/// The native-messaging host.
pub struct Host {
    settings: Settings,
    writer: Arc<FrameWriter>,
    current: Mutex<Option<Arc<Loaded>>>,
    /// Also serialises loads.
    library: Mutex<Option<LibrarySlot>>,
    /// In-flight generations by the JSON text of their id.
    running: Mutex<HashMap<String, Running>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// GPU variants offload what fits; CPU variants nothing (as the other examples).
fn gpu_layers(kind: VariantKind, n_ctx: u32) -> GpuLayers {
    match kind {
        VariantKind::Gpu => GpuLayers::Auto { n_ctx },
        VariantKind::Cpu => GpuLayers::None,
    }
}

/// The key of an id in the table of running requests.
fn id_key(id: &Value) -> String {
    id.to_string()
}

fn stop_name(reason: &StopReason) -> &'static str {
    match reason {
        StopReason::EndOfGeneration(_) => "end_of_generation",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopString(_) => "stop_string",
        StopReason::ContextFull => "context_full",
        StopReason::Cancelled => "cancelled",
    }
}

fn summary_json(summary: &Summary, seed: Option<u32>) -> Value {
    let mut value = json!({
        "prompt_tokens": summary.prompt_tokens,
        "generated_tokens": summary.generated_tokens,
        "stop": stop_name(&summary.stop_reason),
        "cancelled": summary.stop_reason == StopReason::Cancelled,
        "prompt_ms": summary.prompt_time.as_secs_f64() * 1e3,
        "generation_ms": summary.generation_time.as_secs_f64() * 1e3,
        "tokens_per_second": summary.tokens_per_second(),
    });
    match &summary.stop_reason {
        StopReason::StopString(stop) => value["stop_string"] = Value::from(stop.as_str()),
        StopReason::EndOfGeneration(token) => value["eog_token"] = Value::from(token.id()),
        _ => {}
    }
    if let Some(seed) = seed {
        value["seed"] = Value::from(seed);
    }
    value
}

impl Host {
    /// A host with no model yet, writing through `writer`.
    pub fn new(settings: Settings, writer: Arc<FrameWriter>) -> Arc<Self> {
        Arc::new(Host {
            settings,
            writer,
            current: Mutex::new(None),
            library: Mutex::new(None),
            running: Mutex::new(HashMap::new()),
            workers: Mutex::new(Vec::new()),
        })
    }

    fn send(&self, id: &Value, message: &Value) {
        self.writer.send(id, message);
    }

    fn result(&self, id: &Value, result: Value) {
        self.send(
            id,
            &json!({ "id": id, "event": "result", "result": result }),
        );
    }

    fn fail(&self, id: &Value, failure: &Failure) {
        self.send(id, &failure.frame(id));
    }

    /// Runs `work` on its own thread, joined by [`Self::finish`].
    fn spawn(&self, work: impl FnOnce() + Send + 'static) {
        let mut workers = lock(&self.workers);
        workers.retain(|w| !w.is_finished());
        workers.push(std::thread::spawn(work));
    }

    /// Loads `path` given on the command line; a failure is reported as an error frame with
    /// id `null` and the host serves on without a model.
    pub fn load_at_start(&self, path: &Path) {
        if let Err(failure) = self.load(path) {
            eprintln!("native_host: --model: {}", failure.message);
            self.fail(&Value::Null, &failure);
        }
    }

    /// Serves frames from `input` until it ends.
    pub fn serve(self: &Arc<Self>, input: &mut impl Read) {
        let cap = self.settings.max_message_bytes;
        loop {
            match frame::read_frame(input, cap) {
                Ok(Inbound::Message(body)) => self.handle(&body),
                Ok(Inbound::TooLarge { length }) => self.fail(
                    &Value::Null,
                    &Failure::protocol(format!(
                        "a message of {length} bytes is over the limit of {cap} bytes (--max-message-bytes): refused and skipped"
                    )),
                ),
                Ok(Inbound::End) => break,
                Ok(Inbound::Truncated {
                    in_prefix,
                    expected,
                    got,
                }) => {
                    self.fail(
                        &Value::Null,
                        &Failure::protocol(format!(
                            "the input ended inside a frame: {got} of {expected} bytes{}",
                            if in_prefix { " of the length prefix" } else { "" }
                        )),
                    );
                    break;
                }
                Err(e) => {
                    self.fail(
                        &Value::Null,
                        &Failure::protocol(format!("reading the input: {e}")),
                    );
                    break;
                }
            }
        }
    }

    /// Waits for every request in flight, then releases the model and flushes.
    pub fn finish(&self) {
        loop {
            let workers: Vec<_> = lock(&self.workers).drain(..).collect();
            if workers.is_empty() {
                break;
            }
            for worker in workers {
                let _ = worker.join();
            }
        }
        lock(&self.current).take();
        self.writer.flush();
    }

    /// One message: UTF-8, JSON, an object with `id`, `method` and optional `params`.
    fn handle(self: &Arc<Self>, body: &[u8]) {
        let text = match std::str::from_utf8(body) {
            Ok(text) => text,
            Err(e) => {
                return self.fail(
                    &Value::Null,
                    &Failure::protocol(format!(
                        "the message is not valid UTF-8 (at byte {})",
                        e.valid_up_to()
                    )),
                )
            }
        };
        let request: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                return self.fail(
                    &Value::Null,
                    &Failure::protocol(format!("the message is not valid JSON: {e}")),
                )
            }
        };
        let Value::Object(mut request) = request else {
            return self.fail(
                &Value::Null,
                &Failure::protocol(format!(
                    "a request is a JSON object, not {}",
                    params::kind_of(&request)
                )),
            );
        };
        let Some(id) = request.remove("id") else {
            return self.fail(
                &Value::Null,
                &Failure::protocol("the request has no \"id\""),
            );
        };
        if let Err(failure) = self.dispatch(&id, request) {
            self.fail(&id, &failure);
        }
    }

    fn dispatch(
        self: &Arc<Self>,
        id: &Value,
        mut request: Map<String, Value>,
    ) -> Result<(), Failure> {
        if let Some(key) = request.keys().find(|k| *k != "method" && *k != "params") {
            return Err(Failure::protocol(format!(
                "unknown key {key:?} in the request (expected \"id\", \"method\", \"params\")"
            )));
        }
        let method = match request.remove("method") {
            Some(Value::String(method)) => method,
            Some(other) => {
                return Err(Failure::protocol(format!(
                    "\"method\" must be a string, not {}",
                    params::kind_of(&other)
                )))
            }
            None => return Err(Failure::protocol("the request has no \"method\"")),
        };
        let params: Params = match request.remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(params)) => params,
            Some(other) => {
                return Err(Failure::protocol(format!(
                    "\"params\" must be an object, not {}",
                    params::kind_of(&other)
                )))
            }
        };
        let check = |allowed: &[&str]| {
            params::check_keys(&method, &params, allowed).map_err(Failure::protocol)
        };
        match method.as_str() {
            "info" => {
                check(&[])?;
                self.result(id, self.info());
            }
            "load" => {
                check(&["model"])?;
                let path = PathBuf::from(
                    params::required_string(&params, "model").map_err(Failure::protocol)?,
                );
                let host = Arc::clone(self);
                let id = id.clone();
                self.spawn(move || match host.load(&path) {
                    Ok(()) => host.result(&id, host.info()),
                    Err(failure) => host.fail(&id, &failure),
                });
            }
            "generate" | "chat" => {
                let generation = params::generation(&method, &params, method == "chat")
                    .map_err(|m| Failure::protocol(format!("{method}: {m}")))?;
                self.start_generation(id, generation)?;
            }
            "embed" => {
                check(&["texts", "normalize"])?;
                let texts = params::strings(&params, "texts")
                    .map_err(Failure::protocol)?
                    .ok_or_else(|| {
                        Failure::protocol("missing parameter \"texts\" (a list of strings)")
                    })?;
                let normalize = params::boolean(&params, "normalize")
                    .map_err(Failure::protocol)?
                    .unwrap_or(false);
                let loaded = self.loaded()?;
                let host = Arc::clone(self);
                let id = id.clone();
                self.spawn(move || match host.embed(&loaded, &texts, normalize) {
                    Ok(result) => host.result(&id, result),
                    Err(failure) => host.fail(&id, &failure),
                });
            }
            "cancel" => {
                check(&["target"])?;
                let target = params.get("target").ok_or_else(|| {
                    Failure::protocol("missing parameter \"target\" (the id of a request)")
                })?;
                let found = match lock(&self.running).get(&id_key(target)) {
                    Some(running) => {
                        if let Ok(engine) = &running.loaded.engine {
                            engine.cancel(running.request);
                        }
                        true
                    }
                    None => false,
                };
                self.result(id, json!({ "target": target, "found": found }));
            }
            other => {
                return Err(Failure::protocol(format!(
                    "unknown method {other:?} (info, load, generate, chat, embed, cancel)"
                )))
            }
        }
        Ok(())
    }

    /// The current model, or why there is none.
    fn loaded(&self) -> Result<Arc<Loaded>, Failure> {
        lock(&self.current).clone().ok_or_else(|| {
            Failure::configuration(
                "no model is loaded: start the host with --model PATH or send a \"load\" request",
            )
        })
    }

    fn info(&self) -> Value {
        let loaded = lock(&self.current).clone();
        let running = lock(&self.running).len();
        let mut info = json!({
            "loaded": loaded.is_some(),
            "variant": null,
            "model": null,
            "n_ctx": null,
            "n_vocab": null,
            "parallel": self.settings.parallel,
            "running": running,
            "max_message_bytes": self.settings.max_message_bytes,
            "caller": self.settings.caller,
        });
        if let Some(loaded) = loaded {
            let model = &loaded.model;
            info["variant"] = Value::from(loaded.variant.as_str());
            info["model"] = Value::from(model.path().display().to_string());
            info["n_ctx"] = Value::from(loaded.n_ctx);
            info["n_vocab"] = Value::from(model.n_vocab());
            info["architecture"] = Value::from(model.architecture());
            info["description"] = Value::from(model.description());
            info["n_ctx_train"] = Value::from(model.n_ctx_train());
            info["n_embd"] = Value::from(model.n_embd());
            info["generation"] = Value::from(loaded.engine.is_ok());
            info["chat_template"] = Value::from(loaded.template().is_ok());
        }
        info
    }

    /// Loads `path` (on the build the first load chose) with a fresh engine, and makes it the
    /// current model. The previous one lives on in the requests that still use it.
    fn load(&self, path: &Path) -> Result<(), Failure> {
        let mut slot = lock(&self.library);
        let n_ctx = self.settings.n_ctx;
        let (model, variant) = match slot.as_ref() {
            Some(slot) => {
                let params = ModelParams::new().with_gpu_layers(gpu_layers(slot.kind, n_ctx));
                let model = Model::load(&slot.library, path, params)?;
                (model, slot.variant.clone())
            }
            None => {
                let options = support::select_options(
                    self.settings.variant.as_deref(),
                    self.settings.variant_dir.as_deref(),
                )
                .map_err(|e| Failure::configuration(e.to_string()))?;
                // The closure runs for each variant tried; the last call is the one kept.
                let mut kind = VariantKind::Cpu;
                let (selection, model) = Model::load_best(&options, path, |variant| {
                    kind = variant.kind();
                    ModelParams::new().with_gpu_layers(gpu_layers(kind, n_ctx))
                })?;
                eprintln!("native_host: variant {}", selection.variant);
                *slot = Some(LibrarySlot {
                    library: selection.library,
                    variant: selection.variant.clone(),
                    kind,
                });
                (model, selection.variant)
            }
        };
        drop(slot);
        let n_ctx = n_ctx.min(model.n_ctx_train().max(256) as u32);
        let engine = if model.has_output_head() && !model.has_encoder() {
            // One KV buffer for all sequences: a request may use the whole context.
            let mut params = ContextParams {
                kv_unified: Some(true),
                ..ContextParams::default()
                    .with_n_ctx(n_ctx)
                    .with_n_seq_max(self.settings.parallel)
            };
            if let Some(threads) = self.settings.threads {
                params = params.with_threads(threads);
            }
            let context = Context::new(&model, params)?;
            Ok(EngineHandle::spawn(ParallelEngine::new(context)?))
        } else {
            Err(Failure::from(gguf_loader::Error::NotSupported {
                operation: "generation",
                reason: format!(
                    "{} ({}) is not a decoder-only language model",
                    model.path().display(),
                    model.architecture()
                ),
            }))
        };
        let loaded = Arc::new(Loaded {
            engine,
            embedder: Mutex::new(None),
            template: OnceLock::new(),
            model,
            variant,
            n_ctx,
        });
        let previous = lock(&self.current).replace(loaded);
        // Freed here unless requests still hold it.
        drop(previous);
        Ok(())
    }

    /// Submits a `generate` / `chat` request and starts forwarding its events.
    fn start_generation(
        self: &Arc<Self>,
        id: &Value,
        generation: params::Generation,
    ) -> Result<(), Failure> {
        let key = id_key(id);
        if lock(&self.running).contains_key(&key) {
            return Err(Failure::protocol(format!(
                "the id {key} belongs to a request still running: use another id"
            )));
        }
        let loaded = self.loaded()?;
        let engine = loaded.engine.as_ref().map_err(Clone::clone)?;
        let model = &loaded.model;
        let mut options = GenerateOptions::default();
        let prompt = match generation.input {
            // Tokenized as examples/generate does: special tokens added and parsed.
            Input::Prompt(prompt) => prompt,
            Input::Messages(messages) => {
                let template = loaded.template()?;
                let prompt =
                    template.render(&ChatRequest::new(&messages).with_generation_prompt(true))?;
                // A rendered prompt that already starts with the BOS text gets no second one.
                let bos = model
                    .token_bos()
                    .and_then(|t| model.token_to_piece(t, true).ok())
                    .filter(|b| !b.is_empty());
                options.add_special = !bos.is_some_and(|b| prompt.starts_with(&b));
                prompt
            }
        };
        options.max_tokens = generation.max_tokens;
        options.stop = generation.stop;
        let sampling = generation.sampling;
        let seed = (!sampling.greedy).then_some(sampling.seed);
        let sampler = sampling.build(model)?;
        let (request, events) = engine.submit(Request {
            prompt: Prompt::from(prompt),
            sampler,
            options,
        })?;
        lock(&self.running).insert(
            key.clone(),
            Running {
                loaded: Arc::clone(&loaded),
                request,
            },
        );
        let host = Arc::clone(self);
        let id = id.clone();
        self.spawn(move || host.forward(&id, &key, events, seed));
        Ok(())
    }

    /// Turns one request's events into frames: `token` per piece, then `done` (or `error`).
    fn forward(&self, id: &Value, key: &str, events: Receiver<Event>, seed: Option<u32>) {
        for event in events {
            match event {
                Event::Piece { piece, .. } => {
                    let token = piece.token.map(|t| t.id());
                    self.send(
                        id,
                        &json!({ "id": id, "event": "token", "text": piece.text, "token": token }),
                    );
                }
                Event::Finished { summary, .. } => {
                    // Out of the table before `done`, so the id can be used again at once.
                    let running = lock(&self.running).remove(key);
                    self.send(
                        id,
                        &json!({ "id": id, "event": "done", "summary": summary_json(&summary, seed) }),
                    );
                    // The last holder of a replaced model frees it here.
                    drop(running);
                    return;
                }
                Event::Failed { error, .. } => {
                    let running = lock(&self.running).remove(key);
                    self.fail(id, &Failure::from(error));
                    drop(running);
                    return;
                }
                _ => {}
            }
        }
        let running = lock(&self.running).remove(key);
        self.fail(
            id,
            &Failure::configuration("the generation engine stopped before the request ended"),
        );
        drop(running);
    }

    /// `embed`: one pooled vector per text, on the model's embedding context (created at the
    /// first call: the model's own pooling, mean pooling where it has none).
    fn embed(&self, loaded: &Loaded, texts: &[String], normalize: bool) -> Result<Value, Failure> {
        let mut slot = lock(&loaded.embedder);
        if slot.is_none() {
            let model = &loaded.model;
            // As examples/embed: one decode takes a whole text, n_batch = n_ubatch = n_ctx.
            let n_ctx = self
                .settings
                .n_ctx
                .min(model.n_ctx_train().clamp(1, 1024) as u32);
            let mut params = ContextParams::default()
                .with_n_ctx(n_ctx)
                .with_n_batch(n_ctx)
                .with_n_ubatch(n_ctx);
            if let Some(threads) = self.settings.threads {
                params = params.with_threads(threads);
            }
            let mut embedder = Embedder::new(model, Pooling::Unspecified, false, params.clone())?;
            if embedder.pooling() == Pooling::None {
                drop(embedder);
                embedder = Embedder::new(model, Pooling::Mean, false, params)?;
            }
            *slot = Some(embedder);
        }
        let embedder = slot.as_mut().expect("created above");
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut vectors = embedder.embed(&refs)?;
        if normalize {
            vectors.iter_mut().for_each(|v| l2_normalize(v));
        }
        Ok(json!({
            "vectors": vectors,
            "dimension": embedder.dimension(),
            "pooling": format!("{:?}", embedder.pooling()).to_lowercase(),
            "normalized": normalize,
        }))
    }
}
