//! The parameters of each request, checked before anything runs: unknown keys, wrong types and
//! out-of-range values are refused with a message naming the parameter (category `protocol`).

use std::time::{SystemTime, UNIX_EPOCH};

use gguf_loader::{ChatMessage, Model, Sampler};
use serde_json::{Map, Value};

/// The parameters of one request.
pub type Params = Map<String, Value>;

/// The most tokens one request may ask for.
pub const MAX_TOKENS_LIMIT: u64 = 1 << 20;

/// Refuses keys of `params` that are not in `allowed`.
pub fn check_keys(method: &str, params: &Params, allowed: &[&str]) -> Result<(), String> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err(format!(
            "{method}: unknown parameter {key:?} (expected {})",
            if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            }
        )),
    }
}

/// What a JSON value is, for messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `key` as a string (absent or null: `None`).
pub fn string(params: &Params, key: &str) -> Result<Option<String>, String> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "\"{key}\" must be a string, not {}",
            kind_of(other)
        )),
    }
}

/// `key` as a string that must be there.
pub fn required_string(params: &Params, key: &str) -> Result<String, String> {
    string(params, key)?.ok_or_else(|| format!("missing parameter \"{key}\" (a string)"))
}

/// `key` as a boolean.
pub fn boolean(params: &Params, key: &str) -> Result<Option<bool>, String> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!(
            "\"{key}\" must be a boolean, not {}",
            kind_of(other)
        )),
    }
}

/// `key` as an integer in `min..=max`.
pub fn integer(params: &Params, key: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
            _ => Err(format!(
                "\"{key}\" must be an integer from {min} to {max}, not {n}"
            )),
        },
        Some(other) => Err(format!(
            "\"{key}\" must be an integer, not {}",
            kind_of(other)
        )),
    }
}

/// `key` as a finite number in `min..=max` (as `f32`).
pub fn number(params: &Params, key: &str, min: f32, max: f32) -> Result<Option<f32>, String> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let value = n.as_f64().unwrap_or(f64::NAN) as f32;
            if value.is_finite() && value >= min && value <= max {
                Ok(Some(value))
            } else {
                Err(format!(
                    "\"{key}\" must be a number from {min} to {max}, not {n}"
                ))
            }
        }
        Some(other) => Err(format!(
            "\"{key}\" must be a number, not {}",
            kind_of(other)
        )),
    }
}

/// `key` as a list of strings (a single string counts as a list of one).
pub fn strings(params: &Params, key: &str) -> Result<Option<Vec<String>>, String> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "\"{key}\"[{i}] must be a string, not {}",
                    kind_of(other)
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(format!(
            "\"{key}\" must be a list of strings, not {}",
            kind_of(other)
        )),
    }
}

/// How tokens are picked.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// Always the most likely token (`greedy: true`, or `temperature: 0`).
    pub greedy: bool,
    /// Temperature (default 0.8).
    pub temperature: f32,
    /// Top-k (default 40).
    pub top_k: i32,
    /// Top-p (default 0.95).
    pub top_p: f32,
    /// Min-p (default 0.05).
    pub min_p: f32,
    /// Seed of the random picker (default: from the clock).
    pub seed: u32,
}

impl Sampling {
    /// The sampler chain: greedy, or top-k, top-p, min-p, temperature and a seeded pick (as
    /// `examples/generate` builds them).
    pub fn build(&self, model: &Model) -> gguf_loader::Result<Sampler> {
        if self.greedy {
            return Sampler::builder(model).greedy().build();
        }
        Sampler::builder(model)
            .top_k(self.top_k)
            .top_p(self.top_p, 1)
            .min_p(self.min_p, 1)
            .temp(self.temperature)
            .dist(self.seed)
            .build()
    }
}

/// What a generation starts from.
#[derive(Debug, Clone)]
pub enum Input {
    /// `generate`: a prompt, tokenized as is.
    Prompt(String),
    /// `chat`: messages rendered with the model's chat template.
    Messages(Vec<ChatMessage>),
}

/// The parameters of `generate` and `chat`.
#[derive(Debug, Clone)]
pub struct Generation {
    /// The prompt or the messages.
    pub input: Input,
    /// Most tokens to generate (default 256).
    pub max_tokens: usize,
    /// Stop strings.
    pub stop: Vec<String>,
    /// The sampler.
    pub sampling: Sampling,
}

const SAMPLING_KEYS: [&str; 5] = ["temperature", "top_k", "top_p", "min_p", "seed"];

/// A seed from the clock, for requests that name none.
fn clock_seed() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (nanos ^ (nanos >> 32)) as u32
}

/// The parameters of `generate` (`chat` = false: a `prompt`) or `chat` (`messages`).
pub fn generation(method: &str, params: &Params, chat: bool) -> Result<Generation, String> {
    let first = if chat { "messages" } else { "prompt" };
    let mut allowed = vec![first, "max_tokens", "greedy", "stop"];
    allowed.extend(SAMPLING_KEYS);
    check_keys(method, params, &allowed)?;
    let input = if chat {
        let messages = params
            .get("messages")
            .ok_or("missing parameter \"messages\" (a list of {\"role\", \"content\"})")?;
        if !messages.is_array() {
            return Err(format!(
                "\"messages\" must be a list, not {}",
                kind_of(messages)
            ));
        }
        // The library's validation of message lists (roles, string contents, no other keys).
        let (messages, _) = gguf_loader::chat::parse_messages_json(&messages.to_string())
            .map_err(|e| format!("\"messages\": {e}"))?;
        if messages.is_empty() {
            return Err("\"messages\" is empty".into());
        }
        Input::Messages(messages)
    } else {
        Input::Prompt(required_string(params, "prompt")?)
    };
    let max_tokens = integer(params, "max_tokens", 1, MAX_TOKENS_LIMIT)?.unwrap_or(256) as usize;
    let stop = strings(params, "stop")?.unwrap_or_default();
    if stop.iter().any(String::is_empty) {
        return Err("\"stop\" strings must not be empty".into());
    }
    let temperature = number(params, "temperature", 0.0, 1000.0)?;
    let greedy = boolean(params, "greedy")?.unwrap_or(false) || temperature == Some(0.0);
    if greedy {
        let given: Vec<&str> = SAMPLING_KEYS
            .iter()
            .copied()
            .filter(|k| *k != "temperature" && *k != "seed")
            .filter(|k| params.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        if !given.is_empty() {
            return Err(format!(
                "greedy decoding takes no {} (it always picks the most likely token)",
                given.join(", ")
            ));
        }
        if params.get("greedy") == Some(&Value::Bool(true)) && temperature.is_some_and(|t| t != 0.0)
        {
            return Err("\"greedy\": true excludes a non-zero \"temperature\"".into());
        }
    }
    let sampling = Sampling {
        greedy,
        temperature: temperature.unwrap_or(0.8),
        top_k: integer(params, "top_k", 1, i32::MAX as u64)?.unwrap_or(40) as i32,
        top_p: number(params, "top_p", f32::MIN_POSITIVE, 1.0)?.unwrap_or(0.95),
        min_p: number(params, "min_p", 0.0, 1.0)?.unwrap_or(0.05),
        seed: integer(params, "seed", 0, u64::from(u32::MAX))?
            .map_or_else(clock_seed, |s| s as u32),
    };
    Ok(Generation {
        input,
        max_tokens,
        stop,
        sampling,
    })
}
