//! Layer 2: finding, opening, verifying and initialising llama.cpp builds.
//!
//! - [`variant`]: the [`LibraryVariant`] trait and the catalogue (CPU per ISA, CUDA, Vulkan,
//!   Metal, BitNet).
//! - [`config`]: the configuration file `~/.gguf-loader/backend_config.json` under the
//!   environment.
//! - [`discovery`]: where variant directories are looked for, and what one contains.
//! - [`LlamaLibrary`]: dlopen in the order ggml-base -> ggml -> llama (`RTLD_NOW | RTLD_LOCAL`),
//!   ABI verification before any call that passes a struct, log routing, backend plugins, then
//!   `llama_backend_init`.

mod abi;
pub mod config;
mod cpu_extras;
pub mod discovery;
mod library;
pub mod log;
pub mod manifest;
mod raw;
pub(crate) mod rpc;
pub mod select;
pub mod smoke;
pub mod variant;

// Test-only: the ABI fingerprint and the raw dlopen wrapper are public for the test suite, not
// part of the documented API.
pub use abi::AbiGeneration;
#[doc(hidden)]
pub use abi::{
    verify_bitnet, verify_fingerprint, verify_ggml, verify_llama, ABSENT_MARKERS, PRESENT_MARKERS,
};
pub use cpu_extras::FAULTY_EXTRA_BUFFER_TYPES;
pub use discovery::{SearchPaths, VariantDirectory};
pub use library::{cpu_module_score, Device, DeviceType, LlamaLibrary, PluginSelection};
pub use manifest::Manifest;
#[doc(hidden)]
pub use raw::RawLibrary;
pub use select::{load_best, load_best_with, rank, SelectOptions, Selection};
pub use variant::{best_cpu, catalogue, AuxBackend, Backend, Family, LibraryVariant, VariantKind};
