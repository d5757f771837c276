//! LoRA adapters and control vectors set on a context (see [`crate::adapter`]).

use std::ops::RangeInclusive;

use super::{invalid, Context};
use crate::adapter::{AdapterProblem, ControlVector, LoraAdapter};
use crate::error::{Error, Result};

/// What the context holds while llama.cpp points to it.
#[derive(Default)]
pub(super) struct Applied {
    lora: Vec<(LoraAdapter, f32)>,
    control_vector: bool,
}

impl Context {
    /// Sets the LoRA adapters of this context, each with its scale, replacing the ones set
    /// before (an empty slice removes them all). The next decode uses them; the context keeps
    /// them alive until they are replaced or it is dropped. A scale of 0 leaves an adapter
    /// out, as llama.cpp does.
    ///
    /// The KV cache is not cleared: tokens decoded before were computed with the adapters
    /// of that time (clear the memory to recompute them).
    ///
    /// # Errors
    /// `InvalidArgument` (`scale`) for a NaN or infinite scale, (`adapters`) for the same
    /// adapter twice; [`Error::Adapter`] with [`AdapterProblem::OtherModel`] for an adapter
    /// loaded for another model than this context's.
    #[doc(alias = "llama_set_adapters_lora")]
    pub fn set_lora_adapters(&mut self, adapters: &[(&LoraAdapter, f32)]) -> Result<()> {
        for (i, (adapter, scale)) in adapters.iter().enumerate() {
            if adapter.model() != self.model() {
                return Err(Error::Adapter {
                    path: adapter.path().to_path_buf(),
                    problem: AdapterProblem::OtherModel,
                    reason: format!(
                        "loaded for {} (a different loaded model), the context runs {}",
                        adapter.model().path().display(),
                        self.model().path().display()
                    ),
                });
            }
            if !scale.is_finite() {
                return Err(invalid(
                    "scale",
                    format!(
                        "{scale} (adapter {i}, {}) must be finite",
                        adapter.path().display()
                    ),
                ));
            }
            if adapters[..i].iter().any(|(other, _)| other == adapter) {
                return Err(invalid(
                    "adapters",
                    format!("{} is given twice", adapter.path().display()),
                ));
            }
        }
        let mut raw: Vec<_> = adapters.iter().map(|(a, _)| a.raw()).collect();
        let mut scales: Vec<f32> = adapters.iter().map(|(_, s)| *s).collect();
        let (raw_ptr, scales_ptr) = if adapters.is_empty() {
            (std::ptr::null_mut(), std::ptr::null_mut())
        } else {
            (raw.as_mut_ptr(), scales.as_mut_ptr())
        };
        let ctx = self.raw();
        // SAFETY: a live context; `raw` and `scales` hold `adapters.len()` entries (NULL only
        // with 0): live adapters of this context's model, distinct, with finite scales.
        // llama.cpp copies the pointers and scales; the adapters are kept alive below, in
        // `self.adapters`, for as long as the context may use them.
        unsafe {
            self.api()
                .set_adapters_lora(ctx, raw_ptr, adapters.len(), scales_ptr)
        };
        self.adapters.lora = adapters.iter().map(|(a, s)| ((*a).clone(), *s)).collect();
        Ok(())
    }

    /// Removes every LoRA adapter from this context.
    #[doc(alias = "llama_set_adapters_lora")]
    pub fn clear_lora_adapters(&mut self) {
        // Cannot fail: no adapters, no scales.
        let _ = self.set_lora_adapters(&[]);
    }

    /// The LoRA adapters set on this context, with their scales.
    pub fn lora_adapters(&self) -> impl ExactSizeIterator<Item = (&LoraAdapter, f32)> {
        self.adapters.lora.iter().map(|(a, s)| (a, *s))
    }

    /// Applies a control vector to the layers `layers` (inclusive, within `1..n_layer`),
    /// replacing the one set before.
    ///
    /// # Errors
    /// `InvalidArgument` (`control_vector`) when the vector was built for a model of another
    /// size (`n_embd`, `n_layer`), (`layers`) for an empty range or one outside
    /// `1..=n_layer - 1`; `NotSupported` with the BitNet fork for an architecture whose graph
    /// there ignores control vectors (`bitnet`, BERT, T5, ...); `Null` when llama.cpp cannot
    /// allocate the vector.
    #[doc(alias = "llama_set_adapter_cvec")]
    pub fn set_control_vector(
        &mut self,
        vector: &ControlVector,
        layers: RangeInclusive<i32>,
    ) -> Result<()> {
        let n_embd = self.model().n_embd();
        let n_layer = self.model().n_layer();
        if vector.n_embd() != n_embd || vector.n_layer() != n_layer {
            return Err(invalid(
                "control_vector",
                format!(
                    "built for n_embd {} and {} layers; the context's model has n_embd {n_embd} and {n_layer} layers",
                    vector.n_embd(),
                    vector.n_layer()
                ),
            ));
        }
        let architecture = self.model().architecture();
        let quirks = self.api().quirks();
        if quirks
            .graphs_without_control_vectors
            .contains(&architecture)
        {
            // The library accepts the vector but its graph for these never adds it: refused
            // rather than silently ignored.
            return Err(Error::NotSupported {
                operation: "control vectors",
                reason: format!(
                    "the {} build's {architecture} graph does not apply control vectors",
                    self.model().library().generation()
                ),
            });
        }
        let (start, end) = (*layers.start(), *layers.end());
        if start < 1 || end >= n_layer || start > end {
            return Err(invalid(
                "layers",
                format!(
                    "{start}..={end} must be a non-empty range within 1..={} (layer 0 has no control vector)",
                    n_layer - 1
                ),
            ));
        }
        let data = vector.data();
        let ctx = self.raw();
        // SAFETY: a live context; `data` holds `data.len()` = n_embd * (n_layer - 1) finite
        // floats (checked by ControlVector::new for a model of these sizes, checked above);
        // n_embd is the model's and 1 <= start <= end < n_layer. llama.cpp copies the data.
        let rc = unsafe {
            self.api()
                .set_adapter_cvec(ctx, data.as_ptr(), data.len(), n_embd, start, end)
        };
        if rc != 0 {
            return Err(Error::Null {
                function: "llama_set_adapter_cvec",
                detail: "could not allocate the control vector (see the llama.cpp log)".into(),
            });
        }
        self.adapters.control_vector = true;
        Ok(())
    }

    /// Removes the control vector (llama.cpp keeps its buffers for the next one).
    #[doc(alias = "llama_set_adapter_cvec")]
    pub fn clear_control_vector(&mut self) {
        let n_embd = self.model().n_embd();
        let ctx = self.raw();
        // SAFETY: a live context; NULL data clears the vector (no other argument is read).
        unsafe {
            self.api()
                .set_adapter_cvec(ctx, std::ptr::null(), 0, n_embd, -1, -1)
        };
        self.adapters.control_vector = false;
    }

    /// Whether a control vector is set.
    pub fn has_control_vector(&self) -> bool {
        self.adapters.control_vector
    }
}
