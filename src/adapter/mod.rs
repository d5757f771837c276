//! Adapters that change what a model computes, set per [`Context`](crate::Context):
//!
//! - [`LoraAdapter`]: a GGUF LoRA adapter loaded for one [`Model`](crate::Model)
//!   (`llama_adapter_lora_init`), applied to contexts with a scale each
//!   ([`Context::set_lora_adapters`](crate::Context::set_lora_adapters));
//! - [`ControlVector`]: one direction per layer added to the hidden state
//!   ([`Context::set_control_vector`](crate::Context::set_control_vector)).
//!
//! # Safety
//! An adapter file passes a pure-Rust pre-flight before llama.cpp reads it: the keys llama.cpp
//! reads with type assertions (`general.type`, `general.architecture`, `adapter.type`,
//! `adapter.lora.alpha`) have the types it asserts, every tensor is a `lora_a`/`lora_b` pair
//! of a base tensor the model has, of the shapes the graph multiplies (including the rank of
//! `token_embd` pairs, which llama.cpp does not check and which would abort in `ggml_mul_mat`),
//! and `token_embd` pairs are refused on models with tied embeddings (llama.cpp would apply
//! them to the output head as well, and abort).
//!
//! Lifetimes: a [`LoraAdapter`] holds its [`Model`](crate::Model) (llama.cpp frees adapters
//! still registered when the model is freed, so the adapter must go first, and it does), and a
//! context holds every adapter set on it until they are replaced or the context is freed.
//!
//! # Concurrency
//! `llama_adapter_lora_init` and `llama_adapter_lora_free` insert into and erase from a set
//! that the model shares with all its contexts. They hold the write side of the model's
//! `shared_state` lock; context creation and every decode/encode (which may re-plan the graph
//! and read that set) hold its read side. So contexts of one model decode concurrently, and an
//! adapter is loaded or dropped only while none of them is inside llama.cpp.

mod cvec;
mod lora;

pub use crate::error::AdapterProblem;
pub use cvec::ControlVector;
pub use lora::LoraAdapter;
