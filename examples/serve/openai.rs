//! The OpenAI wire format: errors, request bodies checked field by field (so a wrong type names
//! its parameter), and the parameters every generation endpoint shares.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use gguf_loader::sampler::json_schema::{gbnf_any_json_object, gbnf_from_json_schema};
use gguf_loader::{ChatMessage, Error};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// Most messages in one chat request.
pub const MAX_MESSAGES: usize = 4096;
/// Most stop strings in one request.
pub const MAX_STOP: usize = 16;
/// Most texts in one embeddings request.
pub const MAX_INPUTS: usize = 2048;

/// An error answered as OpenAI does: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_string),
            code: None,
        }
    }

    /// 401 for a missing or wrong API key.
    pub fn unauthorized() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "Incorrect API key provided (send `Authorization: Bearer KEY`)".into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("not_found"),
        }
    }

    /// 503: no model is loaded.
    pub fn no_model() -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "no model is loaded (POST /v1/models/load {\"model\": PATH})".into(),
            kind: "server_error",
            param: None,
            code: Some("model_not_loaded"),
        }
    }

    /// 500 for what should not happen (an engine thread that stopped, a task that panicked).
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    /// A crate error: what the request got wrong is a 400, the rest a 500.
    pub fn from_crate(error: Error) -> Self {
        let message = error.to_string();
        let (status, code) = match &error {
            Error::ContextOverflow { .. } => {
                (StatusCode::BAD_REQUEST, Some("context_length_exceeded"))
            }
            Error::InvalidArgument { .. }
            | Error::TokenOutOfRange { .. }
            | Error::ChatTemplate { .. }
            | Error::ChatMessages { .. }
            | Error::InvalidUtf8 { .. }
            | Error::NotSupported { .. }
            | Error::Gguf(_)
            | Error::ModelLoad { .. } => (StatusCode::BAD_REQUEST, None),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        ApiError {
            status,
            message,
            kind: if status == StatusCode::BAD_REQUEST {
                "invalid_request_error"
            } else {
                "server_error"
            },
            param: None,
            code,
        }
    }

    /// Names the parameter at fault.
    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_string());
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError::from_crate(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            eprintln!("error {}: {}", self.status.as_u16(), self.message);
        }
        (self.status, Json(self.body())).into_response()
    }
}

/// The request body as a JSON object.
pub fn parse_object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ApiError> {
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        let mut error = ApiError::invalid(
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("the request body is larger than {MAX_BODY_BYTES} bytes")
            } else {
                format!("cannot read the request body: {rejection}")
            },
            None,
        );
        error.status = status;
        error
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        let mut error = ApiError::invalid(format!("the request body is not valid JSON: {e}"), None);
        error.code = Some("invalid_json");
        error
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid(
            "the request body must be a JSON object",
            None,
        )),
    }
}

/// Field `name` (absent or `null`: `None`), of type `T`.
pub fn take<T: DeserializeOwned>(
    map: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    match map.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| ApiError::invalid(format!("invalid `{name}`: {e}"), Some(name))),
    }
}

/// Field `name`, required.
pub fn require<T: DeserializeOwned>(
    map: &mut Map<String, Value>,
    name: &str,
) -> Result<T, ApiError> {
    take(map, name)?.ok_or_else(|| {
        ApiError::invalid(format!("missing required parameter `{name}`"), Some(name))
    })
}

/// The sampling and stopping parameters of chat and text completions.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// 0: greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub seed: Option<u32>,
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    pub stream: bool,
    pub include_usage: bool,
    /// A GBNF grammar from `response_format`.
    pub grammar: Option<String>,
}

fn in_range(value: f32, low: f32, high: f32, name: &str) -> Result<f32, ApiError> {
    if value.is_finite() && value >= low && value <= high {
        Ok(value)
    } else {
        Err(ApiError::invalid(
            format!("`{name}` must be between {low} and {high}, got {value}"),
            Some(name),
        ))
    }
}

/// Reads the shared parameters (and refuses the OpenAI ones this server does not implement).
pub fn parse_sampling(map: &mut Map<String, Value>) -> Result<Sampling, ApiError> {
    let temperature = in_range(
        take(map, "temperature")?.unwrap_or(1.0),
        0.0,
        2.0,
        "temperature",
    )?;
    let top_p: f32 = take(map, "top_p")?.unwrap_or(1.0);
    if !(top_p.is_finite() && top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(
            format!("`top_p` must be above 0 and at most 1, got {top_p}"),
            Some("top_p"),
        ));
    }
    let max_tokens: Option<u32> = take(map, "max_tokens")?;
    let max_completion_tokens: Option<u32> = take(map, "max_completion_tokens")?;
    let max_tokens = max_completion_tokens.or(max_tokens);
    if max_tokens == Some(0) {
        return Err(ApiError::invalid(
            "`max_tokens` must be at least 1",
            Some("max_tokens"),
        ));
    }
    let stop = match map.remove("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(list)) => list
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(()),
            })
            .collect::<Result<Vec<_>, ()>>()
            .map_err(|_| {
                ApiError::invalid(
                    "`stop` must be a string or an array of strings",
                    Some("stop"),
                )
            })?,
        Some(_) => {
            return Err(ApiError::invalid(
                "`stop` must be a string or an array of strings",
                Some("stop"),
            ))
        }
    };
    if stop.len() > MAX_STOP || stop.iter().any(|s| s.is_empty() || s.len() > 256) {
        return Err(ApiError::invalid(
            format!("`stop` takes at most {MAX_STOP} non-empty strings of at most 256 bytes"),
            Some("stop"),
        ));
    }
    // OpenAI's seeds are 64-bit; the sampler's are 32-bit (the low bits are used).
    let seed: Option<i64> = take(map, "seed")?;
    let frequency_penalty = in_range(
        take(map, "frequency_penalty")?.unwrap_or(0.0),
        -2.0,
        2.0,
        "frequency_penalty",
    )?;
    let presence_penalty = in_range(
        take(map, "presence_penalty")?.unwrap_or(0.0),
        -2.0,
        2.0,
        "presence_penalty",
    )?;
    let stream = take(map, "stream")?.unwrap_or(false);
    let include_usage = match take::<Map<String, Value>>(map, "stream_options")? {
        Some(mut options) => take(&mut options, "include_usage")
            .map_err(|e| e.with_param("stream_options.include_usage"))?
            .unwrap_or(false),
        None => false,
    };
    let n: u32 = take(map, "n")?.unwrap_or(1);
    if n != 1 {
        return Err(ApiError::invalid("only `n` = 1 is supported", Some("n")));
    }
    let best_of: u32 = take(map, "best_of")?.unwrap_or(1);
    if best_of != 1 {
        return Err(ApiError::invalid(
            "only `best_of` = 1 is supported",
            Some("best_of"),
        ));
    }
    match map.remove("logprobs") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(_) => {
            return Err(ApiError::invalid(
                "`logprobs` is not supported",
                Some("logprobs"),
            ))
        }
    }
    let grammar = response_format(map)?;
    Ok(Sampling {
        temperature,
        top_p,
        max_tokens,
        stop,
        seed: seed.map(|s| s as u32),
        frequency_penalty,
        presence_penalty,
        stream,
        include_usage,
        grammar,
    })
}

/// The grammar `response_format` asks for: `{"type": "text"}` none, `{"type": "json_object"}`
/// any object, `{"type": "json_schema", "json_schema": {"schema": ...}}` the schema's.
fn response_format(map: &mut Map<String, Value>) -> Result<Option<String>, ApiError> {
    let Some(mut format) = take::<Map<String, Value>>(map, "response_format")? else {
        return Ok(None);
    };
    let kind: String =
        require(&mut format, "type").map_err(|e| e.with_param("response_format.type"))?;
    match kind.as_str() {
        "text" => Ok(None),
        "json_object" => Ok(Some(gbnf_any_json_object())),
        "json_schema" => {
            let mut spec: Map<String, Value> = require(&mut format, "json_schema")
                .map_err(|e| e.with_param("response_format.json_schema"))?;
            let schema: Value = require(&mut spec, "schema")
                .map_err(|e| e.with_param("response_format.json_schema.schema"))?;
            gbnf_from_json_schema(&schema).map(Some).map_err(|e| {
                ApiError::invalid(e.to_string(), Some("response_format.json_schema.schema"))
            })
        }
        other => Err(ApiError::invalid(
            format!("unknown `response_format` type `{other}` (text, json_object or json_schema)"),
            Some("response_format.type"),
        )),
    }
}

/// `messages`: each `{"role", "content"}`, content a string, an array of text parts or null.
pub fn parse_messages(map: &mut Map<String, Value>) -> Result<Vec<ChatMessage>, ApiError> {
    let list: Vec<Value> = require(map, "messages")?;
    if list.is_empty() || list.len() > MAX_MESSAGES {
        return Err(ApiError::invalid(
            format!("`messages` must hold 1 to {MAX_MESSAGES} messages"),
            Some("messages"),
        ));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, message)| {
            let param = format!("messages[{i}]");
            let bad = |what: &str| ApiError::invalid(format!("`{param}`: {what}"), Some(&param));
            let Value::Object(mut message) = message else {
                return Err(bad("a message must be an object"));
            };
            let role = match message.remove("role") {
                Some(Value::String(role)) => role,
                _ => return Err(bad("`role` must be a string")),
            };
            let role = match role.as_str() {
                "developer" => "system".to_string(),
                "system" | "user" | "assistant" | "tool" => role,
                other => {
                    return Err(bad(&format!(
                        "unknown role `{other}` (system, developer, user, assistant or tool)"
                    )))
                }
            };
            let content = match message.remove("content") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(text)) => text,
                Some(Value::Array(parts)) => {
                    let mut text = String::new();
                    for part in parts {
                        match (part.get("type").and_then(Value::as_str), part.get("text")) {
                            (Some("text"), Some(Value::String(t))) => text.push_str(t),
                            _ => {
                                return Err(bad(
                                    "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported",
                                ))
                            }
                        }
                    }
                    text
                }
                Some(_) => return Err(bad("`content` must be a string or an array of text parts")),
            };
            Ok(ChatMessage::new(role, content))
        })
        .collect()
}

/// `finish_reason` of a stop reason.
pub fn finish_reason(reason: &gguf_loader::StopReason) -> &'static str {
    use gguf_loader::StopReason;
    match reason {
        StopReason::MaxTokens | StopReason::ContextFull => "length",
        StopReason::EndOfGeneration(_) | StopReason::StopString(_) | StopReason::Cancelled => {
            "stop"
        }
    }
}

/// Standard base64 (with padding) of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
