//! Logits and embeddings of the last computation, read through the rows it produced.
//!
//! llama.cpp indexes outputs by the token's index in the last batch (or from the end when
//! negative) and aborts in debug builds on a bad index; the rows are recorded here after each
//! successful decode/encode and every index is checked against them before the C call.

use super::{Context, Pooling};
use crate::error::{Error, Result};

/// The rows the last successful computation produced.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outputs {
    /// Batch indices with an output row, ascending.
    rows: Vec<i32>,
    /// Whether those rows have logits.
    logits: bool,
    /// Whether those rows have embeddings.
    embeddings: bool,
    /// Sequences of the last batch (for pooled embeddings).
    sequences: Vec<i32>,
}

impl Outputs {
    pub(crate) fn new(rows: Vec<i32>, logits: bool, embeddings: bool, sequences: Vec<i32>) -> Self {
        Outputs {
            rows,
            logits,
            embeddings,
            sequences,
        }
    }

    /// Checks `i` (batch index, or negative from the last output).
    fn check(&self, i: i32, what: &'static str) -> Result<()> {
        let n = self.rows.len();
        let ok = if i < 0 {
            (i.unsigned_abs() as usize) <= n
        } else {
            self.rows.binary_search(&i).is_ok()
        };
        if ok {
            Ok(())
        } else {
            Err(Error::OutputOutOfRange {
                what,
                index: i,
                rows: self.rows.clone(),
            })
        }
    }
}

impl Context {
    /// Output rows of the last decode: the batch indices that asked for logits (every token
    /// for embedding contexts and after `encode`).
    pub fn output_rows(&self) -> &[i32] {
        &self.outputs.rows
    }

    /// Logits of output `i` of the last decode: `i` is the token's index in that batch, or
    /// negative to count from the last output (`-1`: the last one). `n_vocab` floats.
    ///
    /// # Errors
    /// `NotSupported` for a model without an output head (embedding models), and with the
    /// BitNet fork in a context with embeddings (it computes none there); `OutputOutOfRange`
    /// when `i` is not an output row of the last decode (or nothing was decoded since).
    #[doc(alias = "llama_get_logits_ith")]
    pub fn logits(&self, i: i32) -> Result<&[f32]> {
        if !self.model.has_output_head() {
            return Err(Error::NotSupported {
                operation: "logits",
                reason: format!(
                    "{} ({}) has no output head; read embeddings instead",
                    self.model.path().display(),
                    self.model.architecture()
                ),
            });
        }
        if self.sizes.embeddings && self.api().quirks().embeddings_without_logits {
            return Err(Error::NotSupported {
                operation: "logits",
                reason: format!(
                    "the {} build computes no logits in a context with embeddings (create one without embeddings to sample)",
                    self.model().library().generation()
                ),
            });
        }
        if !self.outputs.logits {
            return Err(Error::OutputOutOfRange {
                what: "logits",
                index: i,
                rows: Vec::new(),
            });
        }
        self.outputs.check(i, "logits")?;
        let n_vocab = self.model.n_vocab() as usize;
        // SAFETY: a live context; `i` is an output row of the last decode (checked above).
        let ptr = unsafe { self.api().get_logits_ith(self.raw.as_ptr(), i) };
        if ptr.is_null() {
            return Err(Error::Null {
                function: "llama_get_logits_ith",
                detail: format!("output {i}"),
            });
        }
        // SAFETY: llama.cpp's logits buffer holds n_vocab floats per output row (llama-context
        // reserves n_vocab * n_outputs_max) and stays valid until the next decode, which needs
        // &mut self, so the borrow prevents it.
        Ok(unsafe { std::slice::from_raw_parts(ptr, n_vocab) })
    }

    /// The embedding of output `i` of the last decode (contexts with embeddings and
    /// [`Pooling::None`]). `n_embd_out` floats.
    ///
    /// # Errors
    /// `NotSupported` without embeddings or with pooling; `OutputOutOfRange` for an index that
    /// is not an output row.
    #[doc(alias = "llama_get_embeddings_ith")]
    pub fn embeddings_ith(&self, i: i32) -> Result<&[f32]> {
        self.require_embeddings("per-token embeddings")?;
        if self.sizes.pooling != Pooling::None {
            // llama.cpp fills the per-token buffer only without pooling; the rows would be
            // stale or zero.
            return Err(Error::NotSupported {
                operation: "per-token embeddings",
                reason: format!(
                    "the context pools ({:?}): read embeddings_seq, or create it with Pooling::None",
                    self.sizes.pooling
                ),
            });
        }
        if !self.outputs.embeddings {
            return Err(Error::OutputOutOfRange {
                what: "embeddings",
                index: i,
                rows: Vec::new(),
            });
        }
        self.outputs.check(i, "embeddings")?;
        let n = self.model.n_embd_out().max(0) as usize;
        // SAFETY: a live context; `i` is an output row (checked).
        let ptr = unsafe { self.api().get_embeddings_ith(self.raw.as_ptr(), i) };
        if ptr.is_null() {
            return Err(Error::Null {
                function: "llama_get_embeddings_ith",
                detail: format!("output {i}"),
            });
        }
        // SAFETY: the embeddings buffer holds n_embd_out floats per output row and stays valid
        // until the next decode (&mut self).
        Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
    }

    /// The pooled embedding of sequence `seq_id` from the last decode (contexts with
    /// embeddings and pooling): `n_cls_out` scores for [`Pooling::Rank`], `n_embd_out` floats
    /// otherwise.
    ///
    /// # Errors
    /// `NotSupported` without embeddings or with `Pooling::None`; `InvalidArgument` for a
    /// sequence that was not in the last batch.
    #[doc(alias = "llama_get_embeddings_seq")]
    pub fn embeddings_seq(&self, seq_id: i32) -> Result<&[f32]> {
        self.require_embeddings("pooled embeddings")?;
        let len = match self.sizes.pooling {
            Pooling::None | Pooling::Unspecified => {
                return Err(Error::NotSupported {
                    operation: "pooled embeddings",
                    reason: "the context has no pooling (use embeddings_ith)".into(),
                })
            }
            Pooling::Rank => self.model.n_cls_out() as usize,
            _ => self.model.n_embd_out().max(0) as usize,
        };
        self.check_seq(seq_id)?;
        if !self.outputs.embeddings || !self.outputs.sequences.contains(&seq_id) {
            return Err(Error::InvalidArgument {
                parameter: "seq_id",
                reason: format!("sequence {seq_id} was not in the last decoded batch"),
            });
        }
        // SAFETY: a live context; a sequence id in range.
        let ptr = unsafe { self.api().get_embeddings_seq(self.raw.as_ptr(), seq_id) };
        if ptr.is_null() {
            return Err(Error::Null {
                function: "llama_get_embeddings_seq",
                detail: format!("sequence {seq_id}"),
            });
        }
        // SAFETY: llama.cpp stores n_cls_out floats per sequence for rank pooling and
        // n_embd_out otherwise (llama-context's embd_seq); valid until the next decode.
        Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
    }

    fn require_embeddings(&self, operation: &'static str) -> Result<()> {
        if self.sizes.embeddings {
            Ok(())
        } else {
            Err(Error::NotSupported {
                operation,
                reason: "the context was created without embeddings (ContextParams::embeddings)"
                    .into(),
            })
        }
    }
}
