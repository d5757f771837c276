//! Threads and performance counters.

use super::Context;
use crate::error::{Error, Result};

/// Timing counters of a context.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Perf {
    /// Milliseconds spent loading.
    pub load_ms: f64,
    /// Milliseconds spent on prompt tokens.
    pub prompt_ms: f64,
    /// Prompt tokens processed.
    pub prompt_tokens: i32,
    /// Milliseconds spent generating.
    pub eval_ms: f64,
    /// Tokens generated (decoded one at a time).
    pub eval_tokens: i32,
}

impl Context {
    /// Changes the thread counts (each `1..=`[`Context::max_threads`]).
    ///
    /// # Errors
    /// `InvalidArgument` naming the count out of range.
    #[doc(alias = "llama_set_n_threads")]
    pub fn set_threads(&mut self, n_threads: i32, n_threads_batch: i32) -> Result<()> {
        for (parameter, t) in [
            ("n_threads", n_threads),
            ("n_threads_batch", n_threads_batch),
        ] {
            let max = Context::max_threads();
            if !(1..=max).contains(&t) {
                return Err(Error::InvalidArgument {
                    parameter,
                    reason: format!("{t} must be 1..={max} (twice this machine's cores)"),
                });
            }
        }
        let ctx = self.raw();
        // SAFETY: a live context, used from this thread only (&mut self); counts in range.
        unsafe { self.api().set_n_threads(ctx, n_threads, n_threads_batch) };
        Ok(())
    }

    /// Thread counts (generation, batch).
    #[doc(alias = "llama_n_threads")]
    #[doc(alias = "llama_n_threads_batch")]
    pub fn threads(&self) -> (i32, i32) {
        let ctx = self.raw.as_ptr();
        // SAFETY: a live context; reads two integers.
        unsafe { (self.api().n_threads(ctx), self.api().n_threads_batch(ctx)) }
    }

    /// Performance counters.
    #[doc(alias = "llama_perf_context")]
    pub fn perf(&self) -> Perf {
        // SAFETY: a live context; returns a struct by value.
        unsafe { self.api().perf_context(self.raw.as_ptr()) }
    }

    /// Resets the performance counters.
    #[doc(alias = "llama_perf_context_reset")]
    pub fn reset_perf(&mut self) {
        let ctx = self.raw();
        // SAFETY: a live context.
        unsafe { self.api().perf_context_reset(ctx) };
    }
}
