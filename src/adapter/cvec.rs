//! [`ControlVector`]: one direction per layer, added to the hidden state after each layer.

use crate::error::{Error, Result};
use crate::model::Model;

/// A control vector: `n_embd` floats for each layer `1..n_layer` of a model (layer 0 never has
/// one: llama.cpp's buffer starts at layer 1), row after row. Plain data, checked against the
/// model when built and against the context's model when set
/// ([`Context::set_control_vector`](crate::Context::set_control_vector)).
#[derive(Debug, Clone, PartialEq)]
pub struct ControlVector {
    data: Vec<f32>,
    n_embd: i32,
    n_layer: i32,
}

fn invalid(parameter: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        parameter,
        reason: reason.into(),
    }
}

impl ControlVector {
    /// A control vector for `model` from `data`: `model.n_embd()` finite floats for each of
    /// the layers `1..model.n_layer()`, layer 1 first (`n_embd * (n_layer - 1)` floats).
    ///
    /// # Errors
    /// `InvalidArgument` (`control_vector`) when the length is not `n_embd * (n_layer - 1)` or
    /// a value is NaN or infinite; `NotSupported` for a model with fewer than two layers.
    pub fn new(model: &Model, data: Vec<f32>) -> Result<Self> {
        let n_embd = model.n_embd();
        let n_layer = model.n_layer();
        if n_layer < 2 || n_embd < 1 {
            return Err(Error::NotSupported {
                operation: "control vectors",
                reason: format!(
                    "the model has {n_layer} layers (control vectors apply from layer 1)"
                ),
            });
        }
        let expected = n_embd as usize * (n_layer as usize - 1);
        if data.len() != expected {
            return Err(invalid(
                "control_vector",
                format!(
                    "{} floats given; the model needs n_embd {n_embd} x (n_layer {n_layer} - 1) = {expected} (one row per layer 1..{n_layer})",
                    data.len()
                ),
            ));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(invalid(
                "control_vector",
                format!(
                    "value {} (layer {}, element {}) is not finite",
                    data[i],
                    i / n_embd as usize + 1,
                    i % n_embd as usize
                ),
            ));
        }
        Ok(ControlVector {
            data,
            n_embd,
            n_layer,
        })
    }

    /// The floats, layer 1 first.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Floats per layer.
    pub fn n_embd(&self) -> i32 {
        self.n_embd
    }

    /// The model's number of layers (the vector has rows for `1..n_layer`).
    pub fn n_layer(&self) -> i32 {
        self.n_layer
    }
}
