//! # gguf-loader
//!
//! Runs GGUF language models through llama.cpp shared libraries that are loaded **at run time**
//! (never linked at build time): one binary detects the machine, picks the best llama.cpp build
//! ("variant"), verifies that it is the build this crate was written against, and calls it.
//!
//! ## Layers
//! 1. [`sys`]: `repr(C)` types and function tables of the pinned llama.h (one module per ABI
//!    generation).
//! 2. [`loader`]: variants, discovery, dlopen order, ABI verification, backend plugins.
//! 3. [`hardware`]: CPU features, cores, memory and GPUs (Vulkan via ash, CUDA via the driver
//!    library), as plain data.
//! 4. [`gguf`]: a pure-Rust GGUF reader: validation, metadata, tensor table, memory estimate.
//! 5. The safe API: [`Model`] (Send + Sync, cheap clone), [`Context`] (Send, not Sync),
//!    [`Batch`], [`Sampler`] chains and streaming [`Context::generate`]. Every object keeps the
//!    loaded library alive.
//!
//! Errors: [`LoadError`] (finding, opening and verifying libraries), [`Error`] (the safe API) and
//! [`gguf::GgufError`] (model files); each names what is at fault and has a
//! [`Category`] and a hint.
//!
//! ## Quick start
//! ```no_run
//! use gguf_loader::loader::{LlamaLibrary, SearchPaths, PluginSelection};
//!
//! let dir = SearchPaths::new().find_kind("cpu")?;
//! let library = LlamaLibrary::load(&dir, PluginSelection::AllInDirectory)?;
//! println!("llama.cpp {} / ggml {}", library.llama_version(), library.ggml_version());
//! for device in library.devices() {
//!     println!("{}: {}", device.name, device.description);
//! }
//! # Ok::<(), gguf_loader::LoadError>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod category;
pub mod error;
pub mod gguf;
pub mod hardware;
pub mod loader;
pub mod sys;

pub use error::{Category, LoadError};
pub mod adapter;
pub mod batch;
pub mod chat;
pub mod context;
#[cfg(feature = "download")]
pub mod download;
pub mod engine;
mod ffi;
pub mod generate;
pub mod model;
pub mod rpc;
pub mod sampler;
pub mod session;
pub mod token;
pub mod worker;

pub use adapter::{ControlVector, LoraAdapter};
pub use batch::Batch;
pub use chat::{ChatMessage, ChatRequest, ChatTemplate};
pub use context::{CacheType, CancelHandle, Context, ContextParams, FlashAttention, Perf, Pooling};
pub use error::{DecodeError, Error, Result};
pub use generate::{GenerateOptions, Generation, Piece, Prompt, StopReason, Summary};
pub use model::{GpuLayers, MetadataValue, Model, ModelParams, SamplingDefaults, SplitMode};
pub use sampler::{Sampler, SamplerBuilder};
pub use session::{Session, WhenFull};
pub use token::Token;

/// The README's examples, compiled as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
