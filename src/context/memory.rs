//! The KV cache ("memory") per sequence. Every sequence id is checked against `n_seq_max`
//! before the call: llama.cpp's KV cache asserts on ids outside its streams.

use super::Context;
use crate::error::{Error, Result};

/// Rope types whose positions have several components (M-RoPE): llama.cpp's `seq_add`
/// asserts `n_pos_per_embd() == 1`, which these break.
const MULTI_POSITION_ROPE_TYPES: &[i32] = &[8, 24, 40];

impl Context {
    /// `Ok` when `seq_id` is in `0..n_seq_max`.
    ///
    /// # Errors
    /// [`Error::SequenceOutOfRange`].
    pub fn check_seq(&self, seq_id: i32) -> Result<()> {
        if seq_id < 0 || seq_id as u32 >= self.sizes.n_seq_max {
            return Err(Error::SequenceOutOfRange {
                seq_id,
                n_seq_max: self.sizes.n_seq_max,
            });
        }
        Ok(())
    }

    /// The memory handle, or `None` for models without one (embedding models).
    fn memory(&self) -> Option<*mut crate::ffi::RawMemory> {
        // SAFETY: a live context (not shared between threads: Context is !Sync); the handle
        // belongs to it.
        let memory = unsafe { self.api().get_memory(self.raw.as_ptr()) };
        (!memory.is_null()).then_some(memory)
    }

    /// Clears the KV cache (all sequences).
    #[doc(alias = "llama_memory_clear")]
    pub fn clear_memory(&mut self) {
        if let Some(memory) = self.memory() {
            // SAFETY: a live memory handle of this context.
            unsafe { self.api().memory_clear(memory, true) };
        }
        self.encoded = false;
    }

    /// Smallest position stored for `seq_id` (`None` when empty).
    ///
    /// # Errors
    /// [`Error::SequenceOutOfRange`].
    #[doc(alias = "llama_memory_seq_pos_min")]
    pub fn memory_pos_min(&self, seq_id: i32) -> Result<Option<i32>> {
        self.check_seq(seq_id)?;
        let Some(memory) = self.memory() else {
            return Ok(None);
        };
        // SAFETY: a live memory handle; seq_id in range; the context's sequence count.
        let pos = unsafe {
            self.api()
                .memory_seq_pos_min(memory, seq_id, self.sequence_count())
        };
        Ok((pos >= 0).then_some(pos))
    }

    /// Largest position stored for `seq_id` (`None` when empty).
    ///
    /// # Errors
    /// [`Error::SequenceOutOfRange`].
    #[doc(alias = "llama_memory_seq_pos_max")]
    pub fn memory_pos_max(&self, seq_id: i32) -> Result<Option<i32>> {
        self.check_seq(seq_id)?;
        let Some(memory) = self.memory() else {
            return Ok(None);
        };
        // SAFETY: a live memory handle; seq_id in range; the context's sequence count.
        let pos = unsafe {
            self.api()
                .memory_seq_pos_max(memory, seq_id, self.sequence_count())
        };
        Ok((pos >= 0).then_some(pos))
    }

    /// Removes positions `p0..p1` of `seq_id` (`None` for all sequences; `p0`/`p1` `None` for
    /// open ends). Returns `false` when the memory cannot remove a partial range (recurrent
    /// models).
    ///
    /// # Errors
    /// [`Error::SequenceOutOfRange`]; `InvalidArgument` for an empty or negative range.
    #[doc(alias = "llama_memory_seq_rm")]
    pub fn memory_seq_rm(
        &mut self,
        seq_id: Option<i32>,
        p0: Option<i32>,
        p1: Option<i32>,
    ) -> Result<bool> {
        if let Some(seq) = seq_id {
            self.check_seq(seq)?;
        }
        let (p0, p1) = check_range(p0, p1)?;
        let Some(memory) = self.memory() else {
            return Ok(true);
        };
        // SAFETY: a live memory handle; seq_id in range or -1 (all); positions checked.
        Ok(unsafe {
            self.api()
                .memory_seq_rm(memory, seq_id.unwrap_or(-1), p0, p1)
        })
    }

    /// Copies positions `p0..p1` of `src` into `dst` (shares the cells).
    ///
    /// # Errors
    /// [`Error::SequenceOutOfRange`]; `InvalidArgument` for a bad range, or a partial range
    /// between sequences of a non-unified cache (llama.cpp copies whole streams only).
    #[doc(alias = "llama_memory_seq_cp")]
    pub fn memory_seq_cp(
        &mut self,
        src: i32,
        dst: i32,
        p0: Option<i32>,
        p1: Option<i32>,
    ) -> Result<()> {
        self.check_seq(src)?;
        self.check_seq(dst)?;
        let (p0, p1) = check_range(p0, p1)?;
        let unified = self.sizes.n_ctx_seq == self.sizes.n_ctx;
        if !unified && src != dst && (p0 > 0 || p1 >= 0) {
            return Err(Error::InvalidArgument {
                parameter: "p0/p1",
                reason: "a non-unified KV cache copies whole sequences only (pass p0 None or 0, p1 None)"
                    .into(),
            });
        }
        if let Some(memory) = self.memory() {
            // SAFETY: a live memory handle; both ids in range; range checked.
            unsafe { self.api().memory_seq_cp(memory, src, dst, p0, p1) };
        }
        Ok(())
    }

    /// Removes every sequence but `seq_id`.
    ///
    /// # Errors
    /// [`Error::SequenceOutOfRange`].
    #[doc(alias = "llama_memory_seq_keep")]
    pub fn memory_seq_keep(&mut self, seq_id: i32) -> Result<()> {
        self.check_seq(seq_id)?;
        if let Some(memory) = self.memory() {
            // SAFETY: a live memory handle; seq_id in range.
            unsafe { self.api().memory_seq_keep(memory, seq_id) };
        }
        Ok(())
    }

    /// Adds `delta` to the positions `p0..p1` of `seq_id` (context shifting).
    ///
    /// # Errors
    /// [`Error::SequenceOutOfRange`]; `InvalidArgument` for a bad range; `NotSupported` for
    /// memories that cannot shift and models with multi-component positions (M-RoPE). With the
    /// BitNet fork, which shifts the cached keys at once, `Decode(Aborted)` /
    /// `CallbackPanicked` when the abort callback stopped that computation: the memory is then
    /// cleared.
    #[doc(alias = "llama_memory_seq_add")]
    pub fn memory_seq_add(
        &mut self,
        seq_id: i32,
        p0: Option<i32>,
        p1: Option<i32>,
        delta: i32,
    ) -> Result<()> {
        self.check_seq(seq_id)?;
        let (p0, p1) = check_range(p0, p1)?;
        let model = self.model.clone();
        // SAFETY: a live model; a plain getter.
        let rope_type = unsafe { model.api().model_rope_type(model.raw()) };
        if MULTI_POSITION_ROPE_TYPES.contains(&rope_type) {
            return Err(Error::NotSupported {
                operation: "shifting positions",
                reason: "this model's positions have several components (M-RoPE)".into(),
            });
        }
        let Some(memory) = self.memory() else {
            return Ok(());
        };
        // Positions are i32 in llama.cpp, shifted with signed arithmetic (overflow is UB there).
        let max = self.memory_pos_max(seq_id)?.unwrap_or(-1);
        if max >= 0 && max.checked_add(delta).is_none() {
            return Err(Error::InvalidArgument {
                parameter: "delta",
                reason: format!("{delta} would overflow position {max}"),
            });
        }
        // SAFETY: a live memory handle.
        if !unsafe { self.api().memory_can_shift(memory) } {
            return Err(Error::NotSupported {
                operation: "shifting positions",
                reason: "this model's memory cannot shift".into(),
            });
        }
        self.abort.take_aborted();
        // SAFETY: a live memory handle that can shift; seq_id in range; range checked.
        unsafe { self.api().memory_seq_add(memory, seq_id, p0, p1, delta) };
        // The BitNet fork applies the shift at once, a computation its abort callback can cut
        // short; it then marks the shift done however far it got, so the cache cannot be
        // trusted: cleared.
        if self.abort.take_panicked() {
            self.clear_memory();
            return Err(Error::CallbackPanicked { callback: "abort" });
        }
        if self.abort.take_aborted() {
            self.clear_memory();
            return Err(Error::Decode(crate::error::DecodeError::Aborted));
        }
        Ok(())
    }

    /// `n_seq_max` as llama.h takes it.
    fn sequence_count(&self) -> i32 {
        i32::try_from(self.sizes.n_seq_max).unwrap_or(i32::MAX)
    }
}

/// Positions as llama.h takes them (negative: open end), checked to be a real range.
fn check_range(p0: Option<i32>, p1: Option<i32>) -> Result<(i32, i32)> {
    let invalid = |reason: String| Error::InvalidArgument {
        parameter: "p0/p1",
        reason,
    };
    match (p0, p1) {
        (Some(a), _) if a < 0 => Err(invalid(format!("p0 {a} is negative (use None)"))),
        (_, Some(b)) if b < 0 => Err(invalid(format!("p1 {b} is negative (use None)"))),
        (Some(a), Some(b)) if a > b => Err(invalid(format!("p0 {a} is after p1 {b}"))),
        _ => Ok((p0.unwrap_or(-1), p1.unwrap_or(-1))),
    }
}
