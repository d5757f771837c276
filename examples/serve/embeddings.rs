//! `POST /v1/embeddings`: the model's embedder (its own context, behind a mutex), on a blocking
//! thread.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::openai::{base64, parse_object, take, ApiError, MAX_INPUTS};
use crate::state::App;

/// `POST /v1/embeddings`.
pub async fn embeddings(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    embed(&app, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn embed(app: &App, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let mut map = parse_object(body)?;
    let loaded = app.loaded()?;
    let invalid = |what: String| ApiError::invalid(what, Some("input"));
    let texts: Vec<String> = match map.remove("input") {
        None | Some(Value::Null) => {
            return Err(invalid("missing required parameter `input`".into()))
        }
        Some(Value::String(text)) => vec![text],
        Some(Value::Array(list)) => list
            .into_iter()
            .map(|v| match v {
                Value::String(text) => Ok(text),
                _ => Err(invalid(
                    "`input` must be a string or an array of strings (token arrays are not supported)"
                        .into(),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(invalid(
                "`input` must be a string or an array of strings".into(),
            ))
        }
    };
    if texts.is_empty() || texts.len() > MAX_INPUTS {
        return Err(invalid(format!(
            "`input` must hold 1 to {MAX_INPUTS} texts"
        )));
    }
    if let Some(i) = texts.iter().position(String::is_empty) {
        return Err(invalid(format!("`input` text {i} is empty")));
    }
    let base64_format = match take::<String>(&mut map, "encoding_format")?.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                format!("unknown `encoding_format` `{other}` (float or base64)"),
                Some("encoding_format"),
            ))
        }
    };
    let dimensions: Option<usize> = take(&mut map, "dimensions")?;
    let worker = loaded.clone();
    let (vectors, tokens) = tokio::task::spawn_blocking(move || worker.embed(&texts))
        .await
        .map_err(|e| ApiError::internal(format!("the embedding task failed: {e}")))??;
    if let (Some(wanted), Some(first)) = (dimensions, vectors.first()) {
        if wanted != first.len() {
            return Err(ApiError::invalid(
                format!(
                    "`dimensions` {wanted}: this model's embeddings have {}",
                    first.len()
                ),
                Some("dimensions"),
            ));
        }
    }
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64_format {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64(&bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": loaded.id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response())
}
