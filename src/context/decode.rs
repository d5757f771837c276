//! `decode` and `encode`: every batch is checked against the context before llama.cpp sees it.

use super::outputs::Outputs;
use super::Context;
use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::ffi::codes;

/// Which computation a batch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Decode,
    Encode,
}

impl Context {
    /// Checks `batch` for `pass` (llama.cpp asserts on most of these).
    fn check_batch(&self, batch: &Batch, pass: Pass) -> Result<()> {
        let invalid = |reason: String| Error::InvalidArgument {
            parameter: "batch",
            reason,
        };
        if batch.is_empty() {
            return Err(invalid("is empty".into()));
        }
        if batch.len() > self.sizes.n_batch as usize {
            return Err(invalid(format!(
                "{} tokens exceed n_batch {}",
                batch.len(),
                self.sizes.n_batch
            )));
        }
        let facts = self.model.facts();
        let whole_ubatch = match pass {
            Pass::Encode => Some("the encoder"),
            Pass::Decode if !facts.causal_attention => Some("a non-causal model"),
            Pass::Decode if !facts.has_output_head => Some("an embedding model"),
            // A pooled sequence split across physical batches would be pooled over its last
            // part only (llama.cpp overwrites the sequence's embedding per ubatch).
            Pass::Decode if self.sizes.embeddings && self.sizes.pooling != super::Pooling::None => {
                Some("pooled embeddings")
            }
            Pass::Decode => None,
        };
        if let Some(who) = whole_ubatch {
            if batch.len() > self.sizes.n_ubatch as usize {
                return Err(invalid(format!(
                    "{} tokens exceed n_ubatch {}: {who} takes a whole batch at once (raise n_ubatch or split the input)",
                    batch.len(),
                    self.sizes.n_ubatch
                )));
            }
        }
        for token in batch.tokens() {
            self.model.check_token(token)?;
        }
        for i in 0..batch.len() {
            for &seq in batch.seq_ids(i) {
                self.check_seq(seq)?;
            }
        }
        if self.api().quirks().pooling_needs_sequence_below_token_count
            && pass == Pass::Decode
            && self.sizes.embeddings
            && self.sizes.pooling != super::Pooling::None
        {
            // Such a build pools into one row per sequence id of the physical batch (which is
            // the whole batch here, checked above).
            let n = batch.len();
            if let Some(seq) = (0..n)
                .flat_map(|i| batch.seq_ids(i).iter().copied())
                .find(|s| *s as usize >= n)
            {
                return Err(invalid(format!(
                    "sequence {seq} in a batch of {n} tokens: the {} build pools only sequence ids below the batch's token count",
                    self.model.library().generation()
                )));
            }
        }
        Ok(())
    }

    /// The output rows a successful computation of `batch` produced.
    fn outputs_of(&self, batch: &Batch, pass: Pass) -> Outputs {
        let all = pass == Pass::Encode || self.sizes.embeddings;
        let rows: Vec<i32> = if all {
            (0..batch.len() as i32).collect()
        } else {
            batch.output_indices().map(|i| i as i32).collect()
        };
        let mut sequences: Vec<i32> = (0..batch.len())
            .flat_map(|i| batch.seq_ids(i).iter().copied())
            .collect();
        sequences.sort_unstable();
        sequences.dedup();
        let logits = pass == Pass::Decode
            && self.model.has_output_head()
            && !(self.api().quirks().embeddings_without_logits && self.sizes.embeddings);
        Outputs::new(rows, logits, self.sizes.embeddings, sequences)
    }

    /// Runs a checked batch through llama.cpp and records the rows it produced.
    fn compute(&mut self, batch: &mut Batch, pass: Pass) -> Result<()> {
        self.outputs = Outputs::default();
        let ctx = self.raw.as_ptr();
        // Upstream outputs every row of a batch in a context with embeddings; a build that
        // outputs only the rows flagged for logits (unless it pools) gets them all flagged.
        let all_rows = self.api().quirks().embeddings_without_logits
            && pass == Pass::Decode
            && self.sizes.embeddings
            && self.sizes.pooling == super::Pooling::None;
        self.abort.take_aborted();
        let code = {
            let model = &self.model;
            let api = model.api();
            // A computation may re-plan the graph, which reads the model's adapter set: no
            // adapter of the model changes meanwhile (read side of the model's lock).
            let _reading = model
                .inner
                .shared_state
                .read()
                .unwrap_or_else(|p| p.into_inner());
            let run = |batch: &mut Batch| {
                batch.with_arrays(|arrays| match pass {
                    // SAFETY: a live context used from this thread only (&mut self); the batch
                    // was validated for this pass and its arrays hold `n_tokens` entries that
                    // live for the call.
                    Pass::Decode => unsafe { api.decode(ctx, arrays) },
                    // SAFETY: as above; the model has an encoder and the batch fits n_ubatch.
                    Pass::Encode => unsafe { api.encode(ctx, arrays) },
                })
            };
            if all_rows {
                batch.with_all_outputs(run)
            } else {
                run(batch)
            }
        };
        let aborted = self.abort.take_aborted();
        let code = if code == 0 && aborted && self.api().quirks().decode_hides_abort {
            // A build whose decode hides the abort (`Quirks::decode_hides_abort`) returns 0
            // when ggml aborted the computation: the outputs are partial and the batch's cells
            // hold what was computed so far (upstream returns 2 itself). Remove the batch's positions from memory, as upstream does for the
            // failed physical batch, and report the abort as upstream's code 2 (no shift is
            // pending: such a build applies shifts at once, see `memory_seq_add`).
            if pass == Pass::Decode {
                self.forget_batch(batch);
            }
            2
        } else {
            code
        };
        self.finish_compute(code)?;
        self.outputs = self.outputs_of(batch, pass);
        Ok(())
    }

    /// Removes from memory, per sequence of `batch`, every position from the batch's first one
    /// in that sequence on.
    fn forget_batch(&mut self, batch: &Batch) {
        let mut first: std::collections::BTreeMap<i32, i32> = std::collections::BTreeMap::new();
        for (i, &pos) in batch.positions().iter().enumerate() {
            for &seq in batch.seq_ids(i) {
                let p = first.entry(seq).or_insert(pos);
                *p = (*p).min(pos);
            }
        }
        for (seq, pos) in first {
            // The ids were checked and the range is open-ended: this cannot fail.
            let _ = self.memory_seq_rm(Some(seq), Some(pos), None);
        }
    }

    fn finish_compute(&mut self, code: i32) -> Result<()> {
        if self.abort.take_panicked() {
            return Err(Error::CallbackPanicked { callback: "abort" });
        }
        codes::decode_result(code).map_err(Error::Decode)
    }

    /// Runs the model on `batch` (validated first: token ids, sequence ids, sizes).
    ///
    /// # Errors
    /// `InvalidArgument` / `TokenOutOfRange` / `SequenceOutOfRange` for a batch that does not
    /// fit the context (with the BitNet fork, pooled embeddings also need every sequence id
    /// below the batch's token count); `NotSupported` when an encoder-decoder model has not
    /// encoded yet; `Decode` for llama.cpp's codes (context full, aborted, ...);
    /// `CallbackPanicked`.
    #[doc(alias = "llama_decode")]
    pub fn decode(&mut self, batch: &mut Batch) -> Result<()> {
        self.check_batch(batch, Pass::Decode)?;
        if self.model.has_encoder() && !self.encoded {
            return Err(Error::NotSupported {
                operation: "decode",
                reason: "this encoder-decoder model needs encode() first".into(),
            });
        }
        if self.model.has_encoder() && !self.model.has_decoder() {
            return Err(Error::NotSupported {
                operation: "decode",
                reason: "this model is an encoder only: use encode()".into(),
            });
        }
        self.compute(batch, Pass::Decode)
    }

    /// Runs the encoder on `batch` (encoder-decoder models such as T5); the whole batch must fit
    /// into `n_ubatch`.
    ///
    /// # Errors
    /// `NotSupported` for a model without an encoder; as [`Self::decode`] otherwise.
    #[doc(alias = "llama_encode")]
    pub fn encode(&mut self, batch: &mut Batch) -> Result<()> {
        if !self.model.has_encoder() {
            return Err(Error::NotSupported {
                operation: "encode",
                reason: format!(
                    "{} ({}) has no encoder: use decode()",
                    self.model.path().display(),
                    self.model.architecture()
                ),
            });
        }
        self.check_batch(batch, Pass::Encode)?;
        self.compute(batch, Pass::Encode)?;
        self.encoded = true;
        Ok(())
    }
}
