//! Layer 1: raw `repr(C)` types and function-pointer tables for one pinned llama.h.
//!
//! Each ABI generation lives in its own module. [`upstream`] mirrors the llama.h shipped in the
//! source of the registry crate `llama-cpp-sys-2 = "=0.1.161"` (llama.cpp 0.6.0-dev, ggml 0.26.0).
//! [`bitnet`] mirrors the older llama.h of Microsoft's BitNet fork (bitnet.cpp, llama.cpp ~b3947)
//! as patched in `bitnet-cpp-sys = "=0.0.5"`.
//! Field and function names are the C names, so they grep against the header.
//!
//! Tables are declared with [`function_table!`](crate::function_table) from C-like signatures and
//! resolved by one non-generic function, [`SymbolSource::resolve`]. A missing required symbol is a
//! [`MissingSymbol`] naming the library and the symbol;
//! optional (deprecated) ones are `Option`.

#[macro_use]
mod table;
pub mod bitnet;
pub mod upstream;

pub use table::{MissingSymbol, Signature, SymbolSource};
