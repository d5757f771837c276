//! Engines: higher-level drivers over a [`crate::Context`].
//!
//! - [`embed`]: [`embed::Embedder`], embeddings and rerank scores of many texts in few decodes.
//! - [`parallel`]: [`parallel::ParallelEngine`], many generation requests as sequences of one
//!   context (continuous batching), and [`parallel::EngineHandle`] to use it from any thread.
//! - [`speculative`]: [`speculative::Speculative`], greedy speculative decoding with a draft model.

pub mod embed;
pub mod parallel;
pub mod speculative;
