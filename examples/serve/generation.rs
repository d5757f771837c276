//! Chat and text completions on the parallel engine.
//!
//! A request is submitted from a blocking thread, which then pumps the engine's events (a
//! std receiver) into a tokio channel; when that send fails (the client is gone) it cancels
//! the request. The handler side holds a [`CancelGuard`]: a response dropped before its last
//! event (a client that disconnects, a stream that is dropped) cancels the request too.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;

use gguf_loader::engine::parallel::{Event, Request, RequestId};
use gguf_loader::{GenerateOptions, Prompt, Sampler, StopReason, Summary};

use crate::openai::{
    finish_reason, now, parse_messages, parse_object, parse_sampling, take, ApiError, Sampling,
};
use crate::state::{App, Loaded};

/// Events buffered between the pump thread and the response.
const CHANNEL_CAPACITY: usize = 64;

/// Which endpoint a response is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Chat,
    Text,
}

/// Cancels the request when dropped before the request ended.
struct CancelGuard {
    loaded: Arc<Loaded>,
    id: RequestId,
    done: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.done {
            eprintln!(
                "request {}: response dropped before the end (client disconnected); cancelling",
                self.id
            );
            if let Some(engine) = self.loaded.engine() {
                engine.cancel(self.id);
            }
        }
    }
}

/// A submitted request: its events and its guard.
struct Running {
    events: mpsc::Receiver<Event>,
    guard: CancelGuard,
}

/// Submits `request` and starts pumping its events; fails as the submission does.
async fn start(loaded: Arc<Loaded>, request: Request) -> Result<Running, ApiError> {
    let (id_tx, id_rx) = oneshot::channel();
    let (tx, events) = mpsc::channel(CHANNEL_CAPACITY);
    let pumped = loaded.clone();
    tokio::task::spawn_blocking(move || pump(pumped, request, id_tx, tx));
    let id = id_rx
        .await
        .map_err(|_| ApiError::internal("the generation thread stopped"))??;
    Ok(Running {
        events,
        guard: CancelGuard {
            loaded,
            id,
            done: false,
        },
    })
}

/// The blocking side: submit, then forward events until the last one; cancel when the
/// receiving side is gone.
fn pump(
    loaded: Arc<Loaded>,
    request: Request,
    id_tx: oneshot::Sender<Result<RequestId, ApiError>>,
    tx: mpsc::Sender<Event>,
) {
    let Some(engine) = loaded.engine() else {
        let _ = id_tx.send(Err(ApiError::internal("the model is being released")));
        return;
    };
    let (id, events) = match engine.submit(request) {
        Ok(submitted) => submitted,
        Err(error) => {
            let _ = id_tx.send(Err(ApiError::from(error)));
            return;
        }
    };
    let mut gone = id_tx.send(Ok(id)).is_err();
    if gone {
        eprintln!("request {id}: client disconnected before the start; cancelling");
        engine.cancel(id);
    }
    for event in events.iter() {
        let last = matches!(event, Event::Finished { .. } | Event::Failed { .. });
        if let Event::Finished { summary, .. } = &event {
            if summary.stop_reason == StopReason::Cancelled {
                eprintln!(
                    "request {id}: cancelled after {} generated tokens",
                    summary.generated_tokens
                );
            }
        }
        if !gone && tx.blocking_send(event).is_err() {
            gone = true;
            eprintln!("request {id}: client disconnected; cancelling");
            engine.cancel(id);
        }
        if last {
            break;
        }
    }
}

/// Waits for the whole completion.
async fn collect(mut running: Running) -> Result<(String, Summary), ApiError> {
    let mut text = String::new();
    while let Some(event) = running.events.recv().await {
        match event {
            Event::Piece { piece, .. } => text.push_str(&piece.text),
            Event::Finished { summary, .. } => {
                running.guard.done = true;
                return Ok((text, summary));
            }
            Event::Failed { error, .. } => {
                running.guard.done = true;
                return Err(ApiError::from(error));
            }
            _ => {}
        }
    }
    running.guard.done = true;
    Err(ApiError::internal(
        "the engine stopped before the request ended",
    ))
}

/// The SSE chunks of a running request; dropping it (the client went away) cancels the
/// request through its guard.
struct ChunkStream {
    running: Running,
    flavor: Flavor,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    pending: VecDeque<SseEvent>,
    ended: bool,
}

impl ChunkStream {
    fn new(
        running: Running,
        flavor: Flavor,
        id: String,
        model: String,
        include_usage: bool,
    ) -> Self {
        let mut stream = ChunkStream {
            running,
            flavor,
            id,
            created: now(),
            model,
            include_usage,
            pending: VecDeque::new(),
            ended: false,
        };
        if flavor == Flavor::Chat {
            stream.push_choice(json!({"role": "assistant", "content": ""}), None);
        }
        stream
    }

    fn push_json(&mut self, value: &Value) {
        self.pending
            .push_back(SseEvent::default().data(value.to_string()));
    }

    /// One chunk with one choice: a delta (chat) or text (completions).
    fn push_choice(&mut self, delta: Value, finish: Option<&str>) {
        let chunk = match self.flavor {
            Flavor::Chat => json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            }),
            Flavor::Text => json!({
                "id": self.id,
                "object": "text_completion",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "text": delta, "logprobs": null, "finish_reason": finish}],
            }),
        };
        self.push_json(&chunk);
    }

    fn finish(&mut self) {
        self.running.guard.done = true;
        self.ended = true;
        self.pending.push_back(SseEvent::default().data("[DONE]"));
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Piece { piece, .. } if !piece.text.is_empty() => {
                let delta = match self.flavor {
                    Flavor::Chat => json!({"content": piece.text}),
                    Flavor::Text => Value::String(piece.text),
                };
                self.push_choice(delta, None);
            }
            Event::Finished { summary, .. } => {
                let empty = match self.flavor {
                    Flavor::Chat => json!({}),
                    Flavor::Text => json!(""),
                };
                self.push_choice(empty, Some(finish_reason(&summary.stop_reason)));
                if self.include_usage {
                    let object = match self.flavor {
                        Flavor::Chat => "chat.completion.chunk",
                        Flavor::Text => "text_completion",
                    };
                    let chunk = json!({
                        "id": self.id,
                        "object": object,
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": usage(&summary),
                    });
                    self.push_json(&chunk);
                }
                self.finish();
            }
            Event::Failed { error, .. } => {
                let error = ApiError::from(error);
                eprintln!(
                    "request {}: failed: {}",
                    self.running.guard.id, error.message
                );
                self.push_json(&error.body());
                self.finish();
            }
            _ => {}
        }
    }
}

impl Stream for ChunkStream {
    type Item = Result<SseEvent, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match this.running.events.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(event)) => this.on_event(event),
                Poll::Ready(None) => {
                    let error = ApiError::internal("the engine stopped before the request ended");
                    this.push_json(&error.body());
                    this.finish();
                }
            }
        }
    }
}

fn usage(summary: &Summary) -> Value {
    json!({
        "prompt_tokens": summary.prompt_tokens,
        "completion_tokens": summary.generated_tokens,
        "total_tokens": summary.prompt_tokens + summary.generated_tokens,
    })
}

/// A seed for requests that give none.
fn random_seed() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as u32
}

/// The engine request for `prompt` with `sampling`.
fn build_request(
    loaded: &Loaded,
    prompt: String,
    sampling: &Sampling,
) -> Result<Request, ApiError> {
    let max_tokens = match sampling.max_tokens {
        Some(n) if n as usize > loaded.n_ctx_seq => {
            return Err(ApiError::invalid(
                format!(
                    "`max_tokens` {n} is above the context of {} tokens per request",
                    loaded.n_ctx_seq
                ),
                Some("max_tokens"),
            ))
        }
        Some(n) => n as usize,
        // Until the end of generation or of the request's context.
        None => loaded.n_ctx_seq,
    };
    let mut builder = Sampler::builder(&loaded.model);
    // The grammar first: the filters after it see only the tokens it allows.
    if let Some(grammar) = &sampling.grammar {
        builder = builder.grammar(grammar, "root");
    }
    if sampling.frequency_penalty != 0.0 || sampling.presence_penalty != 0.0 {
        builder = builder.penalties(
            64,
            1.0,
            sampling.frequency_penalty,
            sampling.presence_penalty,
        );
    }
    let built = if sampling.temperature == 0.0 {
        builder.greedy().build()
    } else {
        builder
            .top_p(sampling.top_p, 1)
            .temp(sampling.temperature)
            .dist(sampling.seed.unwrap_or_else(random_seed))
            .build()
    };
    let sampler = built.map_err(|error| {
        let grammar = matches!(
            &error,
            gguf_loader::Error::InvalidArgument { parameter, .. } if parameter.starts_with("grammar")
        );
        let error = ApiError::from(error);
        if grammar {
            error.with_param("response_format")
        } else {
            error
        }
    })?;
    let options = GenerateOptions {
        max_tokens,
        stop: sampling.stop.clone(),
        add_special: loaded.add_special(&prompt),
        ..GenerateOptions::default()
    };
    Ok(Request {
        prompt: Prompt::Text(prompt),
        sampler,
        options,
    })
}

/// Runs `request` and answers as one object or as an SSE stream.
async fn respond(
    app: &App,
    loaded: Arc<Loaded>,
    request: Request,
    sampling: &Sampling,
    flavor: Flavor,
) -> Result<Response, ApiError> {
    let running = start(loaded.clone(), request).await?;
    let id = match flavor {
        Flavor::Chat => format!("chatcmpl-{}", app.next_id()),
        Flavor::Text => format!("cmpl-{}", app.next_id()),
    };
    if sampling.stream {
        let stream = ChunkStream::new(
            running,
            flavor,
            id,
            loaded.id.clone(),
            sampling.include_usage,
        );
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let (text, summary) = collect(running).await?;
    let finish = finish_reason(&summary.stop_reason);
    let body = match flavor {
        Flavor::Chat => json!({
            "id": id,
            "object": "chat.completion",
            "created": now(),
            "model": loaded.id,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": null,
                "finish_reason": finish,
            }],
            "usage": usage(&summary),
        }),
        Flavor::Text => json!({
            "id": id,
            "object": "text_completion",
            "created": now(),
            "model": loaded.id,
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish}],
            "usage": usage(&summary),
        }),
    };
    Ok(Json(body).into_response())
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    chat(&app, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn chat(app: &App, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let mut map = parse_object(body)?;
    let loaded = app.loaded()?;
    let messages = parse_messages(&mut map)?;
    let tools: Option<Vec<Value>> = take(&mut map, "tools")?;
    let sampling = parse_sampling(&mut map)?;
    let prompt = loaded.render(&messages, tools.map(Value::Array))?;
    let request = build_request(&loaded, prompt, &sampling)?;
    respond(app, loaded, request, &sampling, Flavor::Chat).await
}

/// `POST /v1/completions`.
pub async fn completions(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    text_completion(&app, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn text_completion(
    app: &App,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let mut map = parse_object(body)?;
    let loaded = app.loaded()?;
    let prompt = prompt_text(&mut map)?;
    if take::<bool>(&mut map, "echo")?.unwrap_or(false) {
        return Err(ApiError::invalid("`echo` is not supported", Some("echo")));
    }
    if take::<String>(&mut map, "suffix")?.is_some() {
        return Err(ApiError::invalid(
            "`suffix` is not supported",
            Some("suffix"),
        ));
    }
    let sampling = parse_sampling(&mut map)?;
    let request = build_request(&loaded, prompt, &sampling)?;
    respond(app, loaded, request, &sampling, Flavor::Text).await
}

/// `prompt`: a string, or an array of one string.
fn prompt_text(map: &mut Map<String, Value>) -> Result<String, ApiError> {
    let invalid = |what: &str| ApiError::invalid(what.to_string(), Some("prompt"));
    match map.remove("prompt") {
        None | Some(Value::Null) => Err(invalid("missing required parameter `prompt`")),
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        Some(Value::String(_)) => Err(invalid("`prompt` is empty")),
        Some(Value::Array(mut list)) if list.len() == 1 && list[0].is_string() => {
            match list.pop() {
                Some(Value::String(text)) if !text.is_empty() => Ok(text),
                _ => Err(invalid("`prompt` is empty")),
            }
        }
        Some(_) => Err(invalid(
            "`prompt` must be a string (or an array of one string; several prompts and token arrays are not supported)",
        )),
    }
}
