//! The loaded model (engine, chat template, embedder) and the server's shared state.
//!
//! The current model is an `Arc<Loaded>` behind a lock; every request clones the `Arc` when it
//! starts, so a hot swap (or unload) only changes what later requests get: requests in flight
//! finish on the model they started with, which is released when the last of them ends.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use gguf_loader::chat::{apply_builtin, builtin_template_names};
use gguf_loader::engine::embed::Embedder;
use gguf_loader::engine::parallel::{EngineHandle, ParallelEngine};
use gguf_loader::loader::LlamaLibrary;
use gguf_loader::{
    ChatMessage, ChatRequest, ChatTemplate, Context, ContextParams, GpuLayers, Model, ModelParams,
    Pooling,
};

use crate::openai::{now, ApiError};

/// How models are loaded and their contexts sized (the command line's settings).
#[derive(Clone)]
pub struct Settings {
    /// The library of the variant chosen at start (hot-swapped models load on it too).
    pub library: LlamaLibrary,
    /// Whether that variant is a GPU one (then layers are offloaded as they fit).
    pub gpu: bool,
    /// Sequences of the generation context (concurrent requests).
    pub parallel: u32,
    /// Tokens per sequence (prompt + completion of one request).
    pub n_ctx: u32,
    /// Threads per context (`None`: llama.cpp's default).
    pub threads: Option<i32>,
}

/// How prompts are rendered: the model's template, or llama.cpp's built-in one when the
/// model has none.
pub enum Template {
    Model(Box<ChatTemplate>),
    Builtin(String),
}

/// One loaded model and what serves it.
pub struct Loaded {
    /// The id answered in responses and `/v1/models` (the file name).
    pub id: String,
    pub created: u64,
    pub model: Model,
    pub template: Template,
    /// Tokens per sequence of the generation context.
    pub n_ctx_seq: usize,
    engine: Option<EngineHandle>,
    /// Created on the first embeddings request.
    pub embedder: Mutex<Option<Embedder>>,
    settings: Settings,
}

impl Loaded {
    /// Creates the generation context and its engine thread for `model`.
    pub fn new(settings: &Settings, model: Model) -> gguf_loader::Result<Loaded> {
        let path = model.path().to_path_buf();
        let per_seq = settings
            .n_ctx
            .min(u32::try_from(model.n_ctx_train().max(64)).unwrap_or(u32::MAX));
        let mut params = ContextParams {
            // One KV stream per sequence: each request gets `per_seq` tokens of its own.
            kv_unified: Some(false),
            ..ContextParams::default()
                .with_n_ctx(per_seq.saturating_mul(settings.parallel))
                .with_n_seq_max(settings.parallel)
                .with_n_batch(512.min(per_seq.saturating_mul(settings.parallel)))
        };
        if let Some(threads) = settings.threads {
            params = params.with_threads(threads);
        }
        let context = Context::new(&model, params)?;
        let n_ctx_seq = context.n_ctx_seq() as usize;
        let engine = EngineHandle::spawn(ParallelEngine::new(context)?);
        let template = match ChatTemplate::from_model(&model) {
            Ok(template) => Template::Model(Box::new(template)),
            Err(error) => {
                let names = builtin_template_names(model.library()).unwrap_or_default();
                let arch = model.architecture().to_string();
                let name = if arch.starts_with("gemma") && names.iter().any(|n| n == "gemma") {
                    "gemma".to_string()
                } else if names.contains(&arch) {
                    arch
                } else {
                    "chatml".to_string()
                };
                eprintln!(
                    "{}: {error}; chat requests use llama.cpp's built-in `{name}` template",
                    path.display()
                );
                Template::Builtin(name)
            }
        };
        Ok(Loaded {
            id: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            created: now(),
            model,
            template,
            n_ctx_seq,
            engine: Some(engine),
            embedder: Mutex::new(None),
            settings: settings.clone(),
        })
    }

    /// Loads `path` with the settings' library.
    pub fn load(settings: &Settings, path: &Path) -> gguf_loader::Result<Loaded> {
        let layers = if settings.gpu {
            GpuLayers::Auto {
                n_ctx: settings.n_ctx.saturating_mul(settings.parallel),
            }
        } else {
            GpuLayers::None
        };
        let model = Model::load(
            &settings.library,
            path,
            ModelParams::new().with_gpu_layers(layers),
        )?;
        Loaded::new(settings, model)
    }

    /// The engine (present until the value is dropped).
    pub fn engine(&self) -> Option<&EngineHandle> {
        self.engine.as_ref()
    }

    /// The chat prompt of `messages` (ending with the assistant's turn).
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: Option<serde_json::Value>,
    ) -> Result<String, ApiError> {
        match &self.template {
            Template::Model(template) => {
                let mut request = ChatRequest::new(messages).with_generation_prompt(true);
                if let Some(tools) = tools {
                    request = request.with_tools(tools);
                }
                template.render(&request).map_err(ApiError::from)
            }
            Template::Builtin(name) => {
                if tools.is_some() {
                    return Err(ApiError::invalid(
                        format!(
                            "{} has no chat template of its own: `tools` cannot be rendered",
                            self.id
                        ),
                        Some("tools"),
                    ));
                }
                apply_builtin(self.model.library(), name, messages, true).map_err(ApiError::from)
            }
        }
    }

    /// Whether a text prompt should get the model's BOS added (not when it starts with it).
    pub fn add_special(&self, prompt: &str) -> bool {
        let bos = self
            .model
            .token_bos()
            .and_then(|t| self.model.token_to_piece(t, true).ok())
            .filter(|b| !b.is_empty());
        !bos.is_some_and(|b| prompt.starts_with(&b))
    }

    /// Embeddings of `texts` (L2-normalised) and their token count; blocking.
    pub fn embed(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, usize), ApiError> {
        let mut slot = self.embedder.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(self.new_embedder()?);
        }
        let Some(embedder) = slot.as_mut() else {
            return Err(ApiError::internal("no embedder"));
        };
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = embedder
            .embed(&refs)
            .map_err(|e| ApiError::from(e).with_param("input"))?;
        let mut tokens = 0;
        for text in texts {
            tokens += self
                .model
                .tokenize(text, true, false)
                .map_or(0, |t| t.len());
        }
        Ok((vectors, tokens))
    }

    fn new_embedder(&self) -> gguf_loader::Result<Embedder> {
        let n_ctx = self
            .settings
            .n_ctx
            .min(u32::try_from(self.model.n_ctx_train().max(64)).unwrap_or(u32::MAX));
        let mut params = ContextParams::default()
            .with_n_ctx(n_ctx)
            .with_n_batch(n_ctx)
            .with_n_ubatch(n_ctx);
        if let Some(threads) = self.settings.threads {
            params = params.with_threads(threads);
        }
        // The model's own pooling; mean pooling for a model without one (a language model).
        let embedder = Embedder::new(&self.model, Pooling::Unspecified, true, params.clone())?;
        if embedder.pooling() == Pooling::None || embedder.pooling() == Pooling::Rank {
            drop(embedder);
            return Embedder::new(&self.model, Pooling::Mean, true, params);
        }
        Ok(embedder)
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // Joining the engine thread waits for it to finish its loop: not on an async worker.
        if let Some(engine) = self.engine.take() {
            let id = self.id.clone();
            let _ = std::thread::Builder::new()
                .name("release-model".into())
                .spawn(move || {
                    drop(engine);
                    eprintln!("released model {id}");
                });
        }
    }
}

/// What every handler shares.
pub struct App {
    current: RwLock<Option<Arc<Loaded>>>,
    pub settings: Settings,
    pub api_key: Option<String>,
    /// One load at a time.
    pub load_lock: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
}

impl App {
    pub fn new(settings: Settings, loaded: Loaded, api_key: Option<String>) -> App {
        App {
            current: RwLock::new(Some(Arc::new(loaded))),
            settings,
            api_key,
            load_lock: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
        }
    }

    /// The current model, if any.
    pub fn current(&self) -> Option<Arc<Loaded>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current model, or 503.
    pub fn loaded(&self) -> Result<Arc<Loaded>, ApiError> {
        self.current().ok_or_else(ApiError::no_model)
    }

    /// Makes `loaded` current (or none); returns the previous one.
    pub fn replace(&self, loaded: Option<Arc<Loaded>>) -> Option<Arc<Loaded>> {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *current, loaded)
    }

    /// A fresh response id suffix.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}
