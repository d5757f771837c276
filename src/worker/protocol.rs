//! The worker protocol's messages (line-delimited JSON).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::generate::{StopReason, Summary};
use crate::rpc::RpcEndpoint;
use crate::{Category, GpuLayers, SplitMode, Token};

/// What a worker loads: the variant, the model and how it is offloaded, the context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerSpec {
    /// The GGUF file.
    pub model: PathBuf,
    /// Force this variant (`cpu`, `cpu-haswell`, `vulkan`, ...); `None`: the best one.
    #[serde(default)]
    pub variant: Option<String>,
    /// Search only this directory for variants.
    #[serde(default)]
    pub variant_dir: Option<PathBuf>,
    /// Layers to offload (to GPUs and RPC servers).
    #[serde(default)]
    pub gpu_layers: GpuLayers,
    /// The main device with [`SplitMode::None`].
    #[serde(default)]
    pub main_gpu: i32,
    /// How to split across devices.
    #[serde(default)]
    pub split_mode: SplitMode,
    /// Proportion per device (empty: by free memory).
    #[serde(default)]
    pub tensor_split: Vec<f32>,
    /// RPC servers whose devices the model is offloaded to (in-process use is accepted in the
    /// worker: it is the isolation).
    #[serde(default)]
    pub rpc_servers: Vec<RpcEndpoint>,
    /// Context size (default: 4096, at most the model's training context).
    #[serde(default)]
    pub n_ctx: Option<u32>,
    /// Threads (default: the context's default).
    #[serde(default)]
    pub threads: Option<i32>,
}

impl WorkerSpec {
    /// Loads `model` with the defaults (best variant, nothing offloaded).
    pub fn new(model: impl Into<PathBuf>) -> Self {
        WorkerSpec {
            model: model.into(),
            variant: None,
            variant_dir: None,
            gpu_layers: GpuLayers::None,
            main_gpu: 0,
            split_mode: SplitMode::Layer,
            tensor_split: Vec::new(),
            rpc_servers: Vec::new(),
            n_ctx: None,
            threads: None,
        }
    }
}

/// How a worker samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Sampling {
    /// The most likely token.
    Greedy,
    /// `penalties(64, repeat_penalty)`, `top_k`, `top_p`, `min_p`, `temp`, then a seeded draw
    /// (the chain of `examples/generate.rs`).
    Sample {
        /// Temperature.
        temp: f32,
        /// Top-k.
        top_k: i32,
        /// Top-p.
        top_p: f32,
        /// Min-p.
        min_p: f32,
        /// Repetition penalty over the last 64 tokens (1.0: none).
        repeat_penalty: f32,
        /// Seed of the draw.
        seed: u32,
    },
}

/// One generation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerRequest {
    /// The prompt, tokenized as is (special tokens added and parsed).
    pub prompt: String,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// The sampler.
    pub sampling: Sampling,
    /// Stop strings.
    #[serde(default)]
    pub stop: Vec<String>,
}

impl WorkerRequest {
    /// A greedy request.
    pub fn greedy(prompt: impl Into<String>, max_tokens: usize) -> Self {
        WorkerRequest {
            prompt: prompt.into(),
            max_tokens,
            sampling: Sampling::Greedy,
            stop: Vec::new(),
        }
    }

    /// Sets the sampler.
    pub fn with_sampling(mut self, sampling: Sampling) -> Self {
        self.sampling = sampling;
        self
    }

    /// Adds a stop string.
    pub fn with_stop(mut self, stop: impl Into<String>) -> Self {
        self.stop.push(stop.into());
        self
    }
}

/// One device of a worker's library, with the layers of its model placed there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerDevice {
    /// Device name (`CPU`, `Vulkan0`, `RPC0`).
    pub name: String,
    /// Description (an RPC device's is its server's endpoint).
    pub description: String,
    /// Backend (registry) name (`CPU`, `Vulkan`, `RPC`).
    pub backend: String,
    /// Free bytes (an RPC device's as probed when its server was added).
    pub memory_free: u64,
    /// Total bytes.
    pub memory_total: u64,
    /// Layers of the model placed on it, as llama.cpp logged the assignment (the output layer
    /// counts as one); 0 when unknown.
    pub layers: u32,
}

/// What a worker loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// The variant chosen.
    pub variant: String,
    /// Its directory.
    pub directory: PathBuf,
    /// `llama_version()` of its library.
    pub llama_version: String,
    /// Every device of its library.
    pub devices: Vec<WorkerDevice>,
    /// The model's layer count.
    pub n_layer: i32,
    /// The context size.
    pub n_ctx: u32,
    /// The worker's process id.
    pub pid: u32,
}

/// Parent to child.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Command {
    Load { spec: WorkerSpec },
    Generate { request: WorkerRequest },
    Cancel,
    Shutdown,
}

/// Child to parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    Ready {
        info: WorkerInfo,
    },
    Log {
        level: String,
        target: String,
        message: String,
    },
    Piece {
        token: Option<i32>,
        text: String,
    },
    Done {
        summary: WireSummary,
    },
    Error {
        category: String,
        message: String,
    },
}

/// [`Summary`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireSummary {
    prompt_tokens: usize,
    generated_tokens: usize,
    prompt_ms: f64,
    generation_ms: f64,
    stop: WireStop,
    invalid_utf8_bytes: usize,
    reused_tokens: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireStop {
    EndOfGeneration { token: i32 },
    MaxTokens,
    StopString { stop: String },
    ContextFull,
    Cancelled,
}

impl From<&Summary> for WireSummary {
    fn from(s: &Summary) -> Self {
        WireSummary {
            prompt_tokens: s.prompt_tokens,
            generated_tokens: s.generated_tokens,
            prompt_ms: s.prompt_time.as_secs_f64() * 1e3,
            generation_ms: s.generation_time.as_secs_f64() * 1e3,
            stop: match &s.stop_reason {
                StopReason::EndOfGeneration(t) => WireStop::EndOfGeneration { token: t.0 },
                StopReason::MaxTokens => WireStop::MaxTokens,
                StopReason::StopString(stop) => WireStop::StopString { stop: stop.clone() },
                StopReason::ContextFull => WireStop::ContextFull,
                StopReason::Cancelled => WireStop::Cancelled,
            },
            invalid_utf8_bytes: s.invalid_utf8_bytes,
            reused_tokens: s.reused_tokens,
        }
    }
}

impl From<WireSummary> for Summary {
    fn from(w: WireSummary) -> Self {
        let ms = |v: f64| Duration::from_secs_f64((v / 1e3).max(0.0));
        Summary {
            prompt_tokens: w.prompt_tokens,
            generated_tokens: w.generated_tokens,
            prompt_time: ms(w.prompt_ms),
            generation_time: ms(w.generation_ms),
            stop_reason: match w.stop {
                WireStop::EndOfGeneration { token } => StopReason::EndOfGeneration(Token(token)),
                WireStop::MaxTokens => StopReason::MaxTokens,
                WireStop::StopString { stop } => StopReason::StopString(stop),
                WireStop::ContextFull => StopReason::ContextFull,
                WireStop::Cancelled => StopReason::Cancelled,
            },
            invalid_utf8_bytes: w.invalid_utf8_bytes,
            reused_tokens: w.reused_tokens,
        }
    }
}

/// A category from its `Display` form.
pub(crate) fn category_from_name(name: &str) -> Category {
    match name {
        "installation" => Category::Installation,
        "hardware" => Category::Hardware,
        "model" => Category::Model,
        _ => Category::Configuration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let mut spec = WorkerSpec::new("m.gguf");
        spec.rpc_servers = vec!["127.0.0.1:50052".parse().unwrap()];
        spec.gpu_layers = GpuLayers::All;
        let line = serde_json::to_string(&Command::Load { spec: spec.clone() }).unwrap();
        assert!(line.contains(r#""op":"load""#) && line.contains(r#""127.0.0.1:50052""#));
        match serde_json::from_str::<Command>(&line).unwrap() {
            Command::Load { spec: back } => assert_eq!(back, spec),
            other => panic!("{other:?}"),
        }
        let bad = r#"{"op":"load","spec":{"model":"m","rpc_servers":["nope"]}}"#;
        assert!(serde_json::from_str::<Command>(bad).is_err());
        let request = WorkerRequest::greedy("hi", 4).with_stop("\n");
        let line = serde_json::to_string(&Command::Generate { request }).unwrap();
        assert!(line.contains(r#""kind":"greedy""#));
        let summary = Summary {
            prompt_tokens: 3,
            generated_tokens: 2,
            prompt_time: Duration::from_millis(5),
            generation_time: Duration::from_millis(7),
            stop_reason: StopReason::EndOfGeneration(Token(2)),
            invalid_utf8_bytes: 0,
            reused_tokens: 0,
        };
        let wire = serde_json::to_string(&Event::Done {
            summary: WireSummary::from(&summary),
        })
        .unwrap();
        match serde_json::from_str::<Event>(&wire).unwrap() {
            Event::Done { summary: back } => {
                let back = Summary::from(back);
                assert_eq!(back.stop_reason, summary.stop_reason);
                assert_eq!(back.generated_tokens, 2);
            }
            other => panic!("{other:?}"),
        }
        for category in [
            Category::Installation,
            Category::Hardware,
            Category::Model,
            Category::Configuration,
        ] {
            assert_eq!(category_from_name(&category.to_string()), category);
        }
    }
}
