//! An OpenAI-compatible HTTP server over the crate's public API.
//!
//! ```text
//! serve [--model PATH] [--host H] [--port P] [--parallel N] [--api-key KEY] [--n-ctx N]
//!       [--threads T] [--variant NAME] [--variant-dir DIR]
//! ```
//!
//! Endpoints:
//! - `POST /v1/chat/completions`: `messages` rendered with the model's chat template (llama.cpp's
//!   built-in one for a model without one; `tools` are passed to the template), `temperature`
//!   (0: greedy), `top_p`, `max_tokens` / `max_completion_tokens`, `stop`, `seed`,
//!   `frequency_penalty`, `presence_penalty`, `response_format` (`json_object`, `json_schema`:
//!   constrained by a GBNF grammar), `stream` (SSE chunks, `stream_options.include_usage`).
//! - `POST /v1/completions`: a `prompt` string (tokenized as is), the same parameters.
//! - `POST /v1/embeddings`: `input` string or array of strings, `encoding_format` float or
//!   base64; L2-normalised vectors of the model's pooling (mean pooling for a language model).
//! - `GET /v1/models`, `GET /health`.
//! - `POST /v1/models/load {"model": PATH}` and `POST /v1/models/unload`: hot swap. New
//!   requests use the new model; requests in flight finish on the old one, which is released
//!   when they end. Without a model, generation and embeddings answer 503.
//!
//! Requests share one model through the crate's parallel engine: one context with `--parallel`
//! sequences (default 4) of `--n-ctx` tokens each (default 2048; the context holds
//! `--n-ctx × --parallel` tokens, one KV stream per sequence); more concurrent requests queue.
//! A client that disconnects cancels its generation. With `--api-key KEY`, `/v1/*` needs
//! `Authorization: Bearer KEY`. Errors are OpenAI's `{"error": {"message", "type", "param",
//! "code"}}`. `listening on http://HOST:PORT` goes to stderr once the socket is bound
//! (`--port 0` picks a free port).
//!
//! Not implemented: `n` > 1, `logprobs`, `echo`, `suffix`, tool-call parsing (the model's text
//! is returned as content), several prompts per completion request. The `model` field of a
//! request is ignored: the loaded model answers.

#[path = "../support/mod.rs"]
mod support;

mod embeddings;
mod generation;
mod openai;
mod state;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use gguf_loader::loader::VariantKind;
use gguf_loader::{GpuLayers, Model, ModelParams};

use openai::{parse_object, require, ApiError, MAX_BODY_BYTES};
use state::{App, Loaded, Settings};

const USAGE: &str = "usage: serve [--model PATH] [--host H] [--port P] [--parallel N] [--api-key KEY] [--n-ctx N] [--threads T] [--variant NAME] [--variant-dir DIR]";

const OPTIONS: &str = "\
An OpenAI-compatible HTTP server: /v1/chat/completions, /v1/completions, /v1/embeddings,
/v1/models, /v1/models/load, /v1/models/unload, /health. Prints `listening on http://HOST:PORT`
on stderr once bound.

options:
  -m, --model PATH          GGUF model (default: $GGUF_LOADER_SMOLLM2, else the cached SmolLM2)
      --host H              address to bind (default 127.0.0.1)
  -p, --port P              port (default 8080; 0 picks a free one)
      --parallel N          concurrent requests: sequences of the context (default 4)
      --api-key KEY         require `Authorization: Bearer KEY` on /v1/*
  -c, --n-ctx N             tokens per request (prompt + completion) (default 2048, at most the
                            model's training context); the context holds N x --parallel
  -t, --threads T           threads per context (default: llama.cpp's)
      --variant NAME        force a variant (cpu, cpu-haswell, vulkan, ...)
      --variant-dir DIR     search only this directory for variants
  -h, --help                print this help";

#[derive(Debug)]
struct Args {
    model: Option<PathBuf>,
    host: String,
    port: u16,
    parallel: u32,
    api_key: Option<String>,
    n_ctx: u32,
    threads: Option<i32>,
    variant: Option<String>,
    variant_dir: Option<PathBuf>,
}

fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut args = Args {
        model: None,
        host: "127.0.0.1".into(),
        port: 8080,
        parallel: 4,
        api_key: None,
        n_ctx: 2048,
        threads: None,
        variant: None,
        variant_dir: None,
    };
    let mut parser = lexopt::Parser::from_args(raw);
    while let Some(arg) = parser.next().map_err(|e| format!("{e}\n{USAGE}"))? {
        let flag = support::flag_name(&arg);
        match arg {
            Short('m') | Long("model") => args.model = Some(support::path(&mut parser, &flag)?),
            Long("host") => args.host = support::text(&mut parser, &flag)?,
            Short('p') | Long("port") => args.port = support::parsed(&mut parser, &flag)?,
            Long("parallel") => args.parallel = support::parsed(&mut parser, &flag)?,
            Long("api-key") => args.api_key = Some(support::text(&mut parser, &flag)?),
            Short('c') | Long("n-ctx") => args.n_ctx = support::parsed(&mut parser, &flag)?,
            Short('t') | Long("threads") => {
                args.threads = Some(support::parsed(&mut parser, &flag)?)
            }
            Long("variant") => args.variant = Some(support::text(&mut parser, &flag)?),
            Long("variant-dir") => args.variant_dir = Some(support::path(&mut parser, &flag)?),
            Short('h') | Long("help") => return Ok(None),
            Value(v) => return Err(format!("unexpected argument {v:?}\n{USAGE}")),
            Short(_) | Long(_) => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if !(1..=256).contains(&args.parallel) {
        return Err(format!("--parallel {} must be 1 to 256", args.parallel));
    }
    if args.n_ctx < 64 {
        return Err(format!("--n-ctx {} must be at least 64", args.n_ctx));
    }
    if args.threads.is_some_and(|t| t < 1) {
        return Err("--threads must be at least 1".into());
    }
    if args.api_key.as_deref() == Some("") {
        return Err("--api-key must not be empty".into());
    }
    Ok(Some(args))
}

/// `Authorization: Bearer KEY` on /v1/* when a key is set.
async fn auth(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if let Some(key) = &app.api_key {
        let path = request.uri().path();
        if path == "/v1" || path.starts_with("/v1/") {
            let given = request
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if !given.is_some_and(|given| same_key(given.trim().as_bytes(), key.as_bytes())) {
                return ApiError::unauthorized().into_response();
            }
        }
    }
    next.run(request).await
}

/// Refuses a body announced larger than [`MAX_BODY_BYTES`] before reading it (bodies without
/// a length are cut at the limit by `DefaultBodyLimit`).
async fn limit_body(request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        let mut error = ApiError::invalid(
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            None,
        );
        error.status = StatusCode::PAYLOAD_TOO_LARGE;
        return error.into_response();
    }
    next.run(request).await
}

/// Compares keys without stopping at the first difference.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn model_object(loaded: &Loaded) -> Value {
    json!({
        "id": loaded.id,
        "object": "model",
        "created": loaded.created,
        "owned_by": "gguf-loader",
    })
}

/// `GET /health`.
async fn health(State(app): State<Arc<App>>) -> Json<Value> {
    Json(json!({"status": "ok", "model": app.current().map(|l| l.id.clone())}))
}

/// `GET /v1/models`.
async fn models(State(app): State<Arc<App>>) -> Json<Value> {
    let data: Vec<Value> = app.current().iter().map(|l| model_object(l)).collect();
    Json(json!({"object": "list", "data": data}))
}

/// `POST /v1/models/load {"model": PATH}`.
async fn load(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    load_model(&app, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn load_model(app: &App, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let mut map = parse_object(body)?;
    let path: PathBuf = require::<String>(&mut map, "model")?.into();
    let _one_at_a_time = app.load_lock.lock().await;
    let settings = app.settings.clone();
    eprintln!("loading {}", path.display());
    let loaded = tokio::task::spawn_blocking(move || Loaded::load(&settings, &path))
        .await
        .map_err(|e| ApiError::internal(format!("the loading task failed: {e}")))?
        .map_err(|e| ApiError::from(e).with_param("model"))?;
    let loaded = Arc::new(loaded);
    let previous = app.replace(Some(loaded.clone()));
    eprintln!(
        "model {} loaded: {} sequences of {} tokens{}",
        loaded.id,
        app.settings.parallel,
        loaded.n_ctx_seq,
        previous.as_ref().map_or(String::new(), |p| format!(
            "; {} is released when its requests end",
            p.id
        ))
    );
    let mut body = model_object(&loaded);
    body["n_ctx"] = json!(loaded.n_ctx_seq);
    body["parallel"] = json!(app.settings.parallel);
    Ok(Json(body).into_response())
}

/// `POST /v1/models/unload`.
async fn unload(State(app): State<Arc<App>>) -> Response {
    match app.replace(None) {
        Some(previous) => {
            eprintln!(
                "model {} unloaded; released when its requests end",
                previous.id
            );
            let mut body = model_object(&previous);
            body["unloaded"] = json!(true);
            Json(body).into_response()
        }
        None => ApiError::not_found("no model is loaded").into_response(),
    }
}

async fn not_found(request: Request) -> Response {
    ApiError::not_found(format!(
        "no endpoint {} {}",
        request.method(),
        request.uri().path()
    ))
    .into_response()
}

async fn method_not_allowed(request: Request) -> Response {
    let mut error = ApiError::invalid(
        format!(
            "method {} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
        None,
    );
    error.status = StatusCode::METHOD_NOT_ALLOWED;
    error.into_response()
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/models/load", post(load))
        .route("/v1/models/unload", post(unload))
        .route("/v1/chat/completions", post(generation::chat_completions))
        .route("/v1/completions", post(generation::completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(limit_body))
        .layer(middleware::from_fn_with_state(app.clone(), auth))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    eprintln!("shutting down");
}

async fn serve(app: Arc<App>, host: &str, port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind((host, port)).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let options = support::select_options(args.variant.as_deref(), args.variant_dir.as_deref())?;
    let model_path = args.model.clone().unwrap_or_else(support::default_model);
    let total = args.n_ctx.saturating_mul(args.parallel);
    let mut gpu = false;
    let (selection, model) = Model::load_best(&options, &model_path, |variant| {
        gpu = variant.kind() == VariantKind::Gpu;
        let layers = if gpu {
            GpuLayers::Auto { n_ctx: total }
        } else {
            GpuLayers::None
        };
        ModelParams::new().with_gpu_layers(layers)
    })?;
    eprintln!("variant: {}", selection.variant);
    let settings = Settings {
        library: selection.library.clone(),
        gpu,
        parallel: args.parallel,
        n_ctx: args.n_ctx,
        threads: args.threads,
    };
    let loaded = Loaded::new(&settings, model)?;
    eprintln!(
        "model {}: {} sequences of {} tokens",
        loaded.id, args.parallel, loaded.n_ctx_seq
    );
    let app = Arc::new(App::new(settings, loaded, args.api_key.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(app, &args.host, args.port))?;
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
