//! The pinned upstream ABI generation: llama.cpp 0.6.0-dev / ggml 0.26.0, as vendored in the
//! registry crate `llama-cpp-sys-2 = "=0.1.161"`.

pub mod ggml;
pub mod llama;
pub mod rpc;
pub mod types;

pub use ggml::{CpuModuleFunctions, GgmlBaseFunctions, GgmlFunctions};
pub use llama::LlamaFunctions;
pub use types::*;

/// What `llama_version()` returns for the pinned source.
pub const LLAMA_VERSION: &str = "0.6.0-dev";
/// What `ggml_version()` returns for the pinned source.
pub const GGML_VERSION: &str = "0.26.0";
/// The source the tables mirror.
pub const SOURCE: &str = "llama-cpp-sys-2 0.1.161";
