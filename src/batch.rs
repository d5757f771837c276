//! [`Batch`]: tokens to decode, owned and capacity-checked in Rust.

use crate::error::{Error, Result};
use crate::ffi::params::BatchArrays;
use crate::token::Token;

/// The C `llama_token`, `llama_pos` and `llama_seq_id` (all `int32_t`).
type CInt = i32;

/// A batch of tokens for [`crate::Context::decode`].
///
/// All storage is owned by Rust and sized at construction; [`Batch::add`] checks the token
/// capacity and the number of sequence ids per token before writing, so safe code can never
/// write past what was allocated.
#[derive(Debug, Clone)]
pub struct Batch {
    capacity: usize,
    n_seq_max: usize,
    tokens: Vec<CInt>,
    positions: Vec<CInt>,
    n_seq_id: Vec<CInt>,
    /// Where token i's sequence ids start in `seq_ids`.
    seq_offsets: Vec<usize>,
    /// Every token's sequence ids, one after the other (at most `capacity * n_seq_max`).
    seq_ids: Vec<CInt>,
    logits: Vec<i8>,
}

impl Batch {
    /// Most tokens a batch holds (no context takes more per decode).
    pub const MAX_TOKENS: usize = 1 << 24;
    /// Most sequences one token can belong to (llama.cpp's `LLAMA_MAX_SEQ`).
    pub const MAX_SEQUENCES: usize = 256;

    /// A batch of up to `capacity` tokens, each in up to `n_seq_max` sequences.
    ///
    /// # Errors
    /// `InvalidArgument` when either is zero or above its limit ([`Batch::MAX_TOKENS`],
    /// [`Batch::MAX_SEQUENCES`]), or when the memory cannot be reserved.
    pub fn new(capacity: usize, n_seq_max: usize) -> Result<Self> {
        if capacity == 0 || capacity > Self::MAX_TOKENS {
            return Err(Error::InvalidArgument {
                parameter: "capacity",
                reason: format!("{capacity} must be 1..={}", Self::MAX_TOKENS),
            });
        }
        if n_seq_max == 0 || n_seq_max > Self::MAX_SEQUENCES {
            return Err(Error::InvalidArgument {
                parameter: "n_seq_max",
                reason: format!("{n_seq_max} must be 1..={}", Self::MAX_SEQUENCES),
            });
        }
        Ok(Batch {
            capacity,
            n_seq_max,
            tokens: reserve(capacity)?,
            positions: reserve(capacity)?,
            n_seq_id: reserve(capacity)?,
            seq_offsets: reserve(capacity)?,
            seq_ids: reserve(capacity)?,
            logits: reserve(capacity)?,
        })
    }

    /// Appends a token at `position`, belonging to `seq_ids`, with or without output logits.
    ///
    /// # Errors
    /// `InvalidArgument` when the batch is full, `seq_ids` is empty or longer than `n_seq_max`,
    /// or a position/sequence id is negative.
    pub fn add(
        &mut self,
        token: Token,
        position: i32,
        seq_ids: &[i32],
        logits: bool,
    ) -> Result<()> {
        if self.tokens.len() >= self.capacity {
            return Err(Error::InvalidArgument {
                parameter: "batch",
                reason: format!("full ({} tokens)", self.capacity),
            });
        }
        if seq_ids.is_empty() || seq_ids.len() > self.n_seq_max {
            return Err(Error::InvalidArgument {
                parameter: "seq_ids",
                reason: format!(
                    "{} ids given, this batch takes 1..={} per token",
                    seq_ids.len(),
                    self.n_seq_max
                ),
            });
        }
        if position < 0 {
            return Err(Error::InvalidArgument {
                parameter: "position",
                reason: format!("{position} is negative"),
            });
        }
        if let Some(bad) = seq_ids.iter().find(|s| **s < 0) {
            return Err(Error::InvalidArgument {
                parameter: "seq_ids",
                reason: format!("{bad} is negative"),
            });
        }
        self.seq_offsets.push(self.seq_ids.len());
        self.seq_ids.extend_from_slice(seq_ids);
        self.tokens.push(token.0);
        self.positions.push(position);
        self.n_seq_id.push(seq_ids.len() as i32);
        self.logits.push(i8::from(logits));
        Ok(())
    }

    /// Appends `tokens` at consecutive positions from `start` in sequence `seq_id`; only the last
    /// one outputs logits when `logits_last` is set.
    ///
    /// # Errors
    /// `InvalidArgument` when the tokens do not all fit (nothing is written then), or as
    /// [`Self::add`].
    pub fn add_sequence(
        &mut self,
        tokens: &[Token],
        start: i32,
        seq_id: i32,
        logits_last: bool,
    ) -> Result<()> {
        if tokens.len() > self.capacity - self.tokens.len() {
            return Err(Error::InvalidArgument {
                parameter: "batch",
                reason: format!(
                    "{} tokens do not fit ({} free)",
                    tokens.len(),
                    self.capacity - self.tokens.len()
                ),
            });
        }
        for (i, token) in tokens.iter().enumerate() {
            let position = start.checked_add(i as i32).ok_or(Error::InvalidArgument {
                parameter: "position",
                reason: "overflows".into(),
            })?;
            self.add(
                *token,
                position,
                &[seq_id],
                logits_last && i + 1 == tokens.len(),
            )?;
        }
        Ok(())
    }

    /// Removes every token (the capacity stays).
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.positions.clear();
        self.n_seq_id.clear();
        self.seq_offsets.clear();
        self.seq_ids.clear();
        self.logits.clear();
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the batch has no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Maximum number of tokens.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The tokens.
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.tokens.iter().map(|t| Token(*t))
    }

    /// Sequence ids of token `i`.
    pub fn seq_ids(&self, i: usize) -> &[i32] {
        let start = self.seq_offsets[i];
        &self.seq_ids[start..start + self.n_seq_id[i] as usize]
    }

    /// Indices of tokens that output logits.
    pub fn output_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.logits
            .iter()
            .enumerate()
            .filter(|(_, l)| **l != 0)
            .map(|(i, _)| i)
    }

    /// The positions, one per token.
    pub(crate) fn positions(&self) -> &[i32] {
        &self.positions
    }

    /// Calls `f` with every token flagged for output, then restores the flags.
    pub(crate) fn with_all_outputs<R>(&mut self, f: impl FnOnce(&mut Batch) -> R) -> R {
        let saved = self.logits.clone();
        self.logits.iter_mut().for_each(|l| *l = 1);
        let result = f(self);
        self.logits = saved;
        result
    }

    /// Calls `f` with C arrays over this batch; the pointers are valid only during the call.
    pub(crate) fn with_arrays<R>(&mut self, f: impl FnOnce(&BatchArrays) -> R) -> R {
        let base = self.seq_ids.as_mut_ptr();
        let mut rows: Vec<*mut CInt> = self
            .seq_offsets
            .iter()
            // SAFETY: every offset is the start of a token's ids inside `seq_ids` (pushed
            // together in `add`), so it is in bounds.
            .map(|&start| unsafe { base.add(start) })
            .collect();
        let arrays = BatchArrays {
            n_tokens: self.tokens.len() as i32,
            token: self.tokens.as_mut_ptr(),
            pos: self.positions.as_mut_ptr(),
            n_seq_id: self.n_seq_id.as_mut_ptr(),
            seq_id: rows.as_mut_ptr(),
            logits: self.logits.as_mut_ptr(),
        };
        f(&arrays)
    }
}

/// An empty vector with room for `n` elements, or a typed error when it cannot be had.
fn reserve<T>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|e| Error::InvalidArgument {
        parameter: "capacity",
        reason: format!("cannot reserve {n} entries: {e}"),
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_and_sequence_ids_are_checked() {
        let mut batch = Batch::new(2, 2).unwrap();
        batch.add(Token(1), 0, &[0, 1], false).unwrap();
        assert!(
            batch.add(Token(2), 1, &[0, 1, 2], false).is_err(),
            "three ids in a 2-sequence batch"
        );
        assert!(batch.add(Token(2), 1, &[], false).is_err());
        assert!(batch.add(Token(2), -1, &[0], false).is_err());
        batch.add(Token(2), 1, &[1], true).unwrap();
        assert!(batch.add(Token(3), 2, &[0], false).is_err(), "full");
        assert_eq!(batch.seq_ids(0), &[0, 1]);
        assert_eq!(batch.seq_ids(1), &[1]);
        assert_eq!(batch.output_indices().collect::<Vec<_>>(), vec![1]);
        batch.clear();
        assert!(batch.is_empty());
        assert!(Batch::new(0, 1).is_err());
        assert!(Batch::new(1, 0).is_err());
    }

    #[test]
    fn add_sequence_checks_room_first() {
        let mut batch = Batch::new(3, 1).unwrap();
        assert!(batch.add_sequence(&[Token(1); 4], 0, 0, true).is_err());
        assert!(batch.is_empty(), "nothing written on error");
        batch.add_sequence(&[Token(1); 3], 5, 0, true).unwrap();
        assert_eq!(batch.output_indices().collect::<Vec<_>>(), vec![2]);
    }
}
