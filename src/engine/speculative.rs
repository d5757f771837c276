//! Greedy speculative decoding: a small draft model proposes tokens, the target model checks
//! them all in one batch.
//!
//! Each round the draft decodes greedily up to `draft_max` tokens after the last accepted
//! token; the target decodes `[last, d1, ..., dk]` in one batch with logits for every row and
//! keeps the longest prefix of drafts that equal its own argmax, plus its own next token.
//! Rejected positions are removed from both caches (`llama_memory_seq_rm`). Every emitted
//! token is the target's argmax after the tokens before it, so the output is the target's own
//! greedy output (up to floating-point differences between batch sizes).

use std::ops::ControlFlow;
use std::time::Instant;

use crate::batch::Batch;
use crate::context::Context;
use crate::error::{DecodeError, Error, Result};
use crate::generate::{
    GenerateOptions, Piece, Prompt, StopMatcher, StopReason, Summary, Utf8Carry,
};
use crate::model::Model;
use crate::token::Token;

/// Statistics of a speculative generation.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeculativeSummary {
    /// As for a plain generation, except that `invalid_utf8_bytes` is 1 when the output ends
    /// in an incomplete character and 0 otherwise.
    pub summary: Summary,
    /// Tokens the draft proposed.
    pub drafted: usize,
    /// Drafted tokens the target accepted.
    pub accepted: usize,
    /// Target decodes (verification batches).
    pub rounds: usize,
}

impl SpeculativeSummary {
    /// `accepted / drafted` (0 when nothing was drafted).
    pub fn acceptance_rate(&self) -> f64 {
        if self.drafted == 0 {
            0.0
        } else {
            self.accepted as f64 / self.drafted as f64
        }
    }
}

/// Checks that `draft` can draft for `target`: the same vocabulary size and type, the same
/// bytes for every token id (special tokens rendered), and the same BOS, EOS and EOT.
///
/// # Errors
/// `VocabularyMismatch` naming the first difference (the token id when it is a token),
/// errors of `token_to_bytes`.
pub fn check_vocabularies(target: &Model, draft: &Model) -> Result<()> {
    let mismatch = |token: Option<i32>, reason: String| Error::VocabularyMismatch {
        target: target.path().into(),
        draft: draft.path().into(),
        token,
        reason,
    };
    if target.n_vocab() != draft.n_vocab() {
        return Err(mismatch(
            None,
            format!(
                "{} tokens in the target, {} in the draft",
                target.n_vocab(),
                draft.n_vocab()
            ),
        ));
    }
    if target.vocab_type() != draft.vocab_type() {
        return Err(mismatch(
            None,
            format!(
                "tokenizer type {} in the target, {} in the draft",
                target.vocab_type(),
                draft.vocab_type()
            ),
        ));
    }
    for (name, a, b) in [
        ("BOS", target.token_bos(), draft.token_bos()),
        ("EOS", target.token_eos(), draft.token_eos()),
        ("EOT", target.token_eot(), draft.token_eot()),
    ] {
        if a != b {
            return Err(mismatch(
                a.or(b).map(Token::id),
                format!("{name} is {a:?} in the target, {b:?} in the draft"),
            ));
        }
    }
    for id in 0..target.n_vocab() {
        let token = Token(id);
        let (a, b) = (
            target.token_to_bytes(token, true)?,
            draft.token_to_bytes(token, true)?,
        );
        if a != b {
            return Err(mismatch(
                Some(id),
                format!(
                    "token {id} is {:?} in the target, {:?} in the draft",
                    String::from_utf8_lossy(&a),
                    String::from_utf8_lossy(&b)
                ),
            ));
        }
    }
    Ok(())
}

/// Index of the largest logit (the first one on ties, as llama.cpp's greedy sampler).
fn argmax(logits: &[f32]) -> Token {
    let mut best = 0;
    for (i, v) in logits.iter().enumerate().skip(1) {
        if *v > logits[best] {
            best = i;
        }
    }
    Token(best as i32)
}

/// Greedy speculative decoding over a target and a draft context (of different models, or of
/// the same model).
pub struct Speculative<'a> {
    target: &'a mut Context,
    draft: &'a mut Context,
    draft_max: usize,
}

impl std::fmt::Debug for Speculative<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speculative")
            .field("target", &self.target.model().path())
            .field("draft", &self.draft.model().path())
            .field("draft_max", &self.draft_max)
            .finish()
    }
}

fn not_supported(reason: String) -> Error {
    Error::NotSupported {
        operation: "speculative decoding",
        reason,
    }
}

impl<'a> Speculative<'a> {
    /// Pairs `target` with `draft`, which proposes up to `draft_max` tokens a round.
    ///
    /// Reads every token of both vocabularies once ([`check_vocabularies`]).
    ///
    /// # Errors
    /// `VocabularyMismatch` when the vocabularies differ; `NotSupported` for a model without
    /// an output head, an encoder-decoder or recurrent model; `InvalidArgument` when
    /// `draft_max` is 0 or `draft_max + 1` exceeds the target's `n_batch`, or the draft's
    /// `n_batch` is below 2.
    pub fn new(target: &'a mut Context, draft: &'a mut Context, draft_max: usize) -> Result<Self> {
        for (role, model) in [("target", target.model()), ("draft", draft.model())] {
            if !model.has_output_head() {
                return Err(not_supported(format!(
                    "the {role} {} has no output head",
                    model.path().display()
                )));
            }
            if model.has_encoder() {
                return Err(not_supported(format!(
                    "the {role} {} is an encoder-decoder model",
                    model.path().display()
                )));
            }
            if model.is_recurrent() {
                return Err(not_supported(format!(
                    "the {role} {} is recurrent: its memory cannot drop rejected tokens",
                    model.path().display()
                )));
            }
        }
        if draft_max == 0 || draft_max + 1 > target.n_batch() as usize {
            return Err(Error::InvalidArgument {
                parameter: "draft_max",
                reason: format!(
                    "{draft_max} is not in 1..={} (the target's n_batch - 1)",
                    target.n_batch().saturating_sub(1)
                ),
            });
        }
        if draft.n_batch() < 2 {
            return Err(Error::InvalidArgument {
                parameter: "draft n_batch",
                reason: format!("{} is below 2", draft.n_batch()),
            });
        }
        check_vocabularies(target.model(), draft.model())?;
        Ok(Speculative {
            target,
            draft,
            draft_max,
        })
    }

    /// The most tokens drafted a round.
    pub fn draft_max(&self) -> usize {
        self.draft_max
    }

    /// Generates greedily from `prompt` (both contexts' memories are cleared first), calling
    /// `on_piece` for every generated token as [`Context::generate_with`] does;
    /// `ControlFlow::Break(())` stops (reported as `StopReason::Cancelled`). Honours
    /// `max_tokens`, stop strings, end of generation, the target's cancellation and the
    /// per-sequence context of both contexts.
    ///
    /// # Errors
    /// As [`Context::generate`] (`InvalidArgument` for an empty prompt, `ContextOverflow`
    /// when the prompt leaves no room), decode errors of either context, `NotSupported` when
    /// a memory cannot remove rejected positions.
    pub fn generate_with(
        &mut self,
        prompt: impl Into<Prompt>,
        options: GenerateOptions,
        mut on_piece: impl FnMut(&Piece) -> ControlFlow<()>,
    ) -> Result<SpeculativeSummary> {
        let started = Instant::now();
        let tokens = self.target.prompt_tokens(prompt.into(), &options)?;
        let n_ctx_seq = self.target.n_ctx_seq().min(self.draft.n_ctx_seq()) as usize;
        if tokens.len() >= n_ctx_seq {
            return Err(Error::ContextOverflow {
                needed: tokens.len() + 1,
                n_ctx: n_ctx_seq as u32,
            });
        }
        self.target.reset_cancellation();
        self.target.clear_memory();
        self.draft.clear_memory();
        let model = self.target.model().clone();

        // Both caches hold the prompt but its last token, which each round decodes first.
        let (prefix, last) = tokens.split_at(tokens.len() - 1);
        let mut last = last[0];
        let mut target_batch = Batch::new(self.target.n_batch() as usize, 1)?;
        let mut draft_batch = Batch::new(self.draft.n_batch() as usize, 1)?;
        if !prefix.is_empty() {
            self.target.feed(&mut target_batch, prefix, 0)?;
            self.draft.feed(&mut draft_batch, prefix, 0)?;
        }
        let mut position = prefix.len() as i32; // of `last`
                                                // Accepted tokens not yet in the draft's cache (before `last`), from `draft_position`.
        let mut draft_pending: Vec<Token> = Vec::new();
        let mut draft_position = position;

        let prompt_time = started.elapsed();
        let gen_started = Instant::now();
        let mut utf8 = Utf8Carry::default();
        let mut stop = StopMatcher::new(options.stop.clone());
        let (mut generated, mut drafted, mut accepted, mut rounds) = (0usize, 0, 0, 0);
        let mut drafts: Vec<Token> = Vec::with_capacity(self.draft_max);

        let reason = 'generation: loop {
            if self.target.cancel_handle().is_cancelled() {
                break StopReason::Cancelled;
            }
            if generated >= options.max_tokens {
                break StopReason::MaxTokens;
            }
            if position as usize >= n_ctx_seq {
                break StopReason::ContextFull;
            }
            let room = n_ctx_seq - 1 - position as usize;
            let k = self
                .draft_max
                .min(options.max_tokens - generated - 1)
                .min(room);

            // Draft: catch up, then propose up to k tokens greedily.
            drafts.clear();
            if k > 0 {
                draft_pending.push(last);
                let next = self
                    .draft
                    .feed(&mut draft_batch, &draft_pending, draft_position)?;
                draft_pending.clear();
                draft_position = next;
                loop {
                    let token = argmax(self.draft.logits(-1)?);
                    drafts.push(token);
                    if drafts.len() == k || model.is_end_of_generation(token) {
                        break;
                    }
                    draft_batch.clear();
                    draft_batch.add(token, draft_position, &[0], true)?;
                    self.draft.decode(&mut draft_batch)?;
                    draft_position += 1;
                }
            }

            // Target: verify [last, drafts...] in one batch, logits for every row.
            target_batch.clear();
            target_batch.add(last, position, &[0], true)?;
            for (i, token) in drafts.iter().enumerate() {
                target_batch.add(*token, position + 1 + i as i32, &[0], true)?;
            }
            match self.target.decode(&mut target_batch) {
                Ok(()) => {}
                Err(Error::Decode(DecodeError::Aborted)) => break StopReason::Cancelled,
                Err(Error::Decode(DecodeError::NoKvSlot)) => break StopReason::ContextFull,
                Err(e) => return Err(e),
            }
            rounds += 1;
            let mut m = 0;
            let mut own = argmax(self.target.logits(0)?);
            while m < drafts.len() && own == drafts[m] {
                m += 1;
                own = argmax(self.target.logits(m as i32)?);
            }
            drafted += drafts.len();
            accepted += m;

            // Drop the rejected positions: the target keeps last + m drafts.
            let keep_end = position + 1 + m as i32;
            if m < drafts.len() && !self.target.memory_seq_rm(Some(0), Some(keep_end), None)? {
                return Err(not_supported(
                    "the target's memory cannot remove part of a sequence".into(),
                ));
            }
            if k > 0 {
                // The draft decoded last and drafts[..len-1] (up to draft_position).
                if draft_position > keep_end {
                    if !self.draft.memory_seq_rm(Some(0), Some(keep_end), None)? {
                        return Err(not_supported(
                            "the draft's memory cannot remove part of a sequence".into(),
                        ));
                    }
                    draft_position = keep_end;
                } else if m == drafts.len() {
                    // Every draft accepted: the last one is not in the draft's cache yet.
                    draft_pending.extend_from_slice(&drafts[m - 1..m]);
                }
            } else {
                draft_pending.push(last);
            }
            position = keep_end;
            last = own;

            // Emit the accepted drafts and the target's own token.
            for token in drafts[..m].iter().copied().chain(std::iter::once(own)) {
                if model.is_end_of_generation(token) {
                    break 'generation StopReason::EndOfGeneration(token);
                }
                generated += 1;
                let bytes = model.token_to_bytes(token, options.render_special)?;
                let text = utf8.push(&bytes);
                let (text, matched) = stop.push(&text);
                let piece = Piece {
                    token: Some(token),
                    text,
                };
                if on_piece(&piece).is_break() {
                    break 'generation StopReason::Cancelled;
                }
                if let Some(s) = matched {
                    break 'generation StopReason::StopString(s);
                }
                if generated >= options.max_tokens {
                    break 'generation StopReason::MaxTokens;
                }
            }
        };

        // Release held text, as Generation does.
        let mut text = stop.finish();
        let tail = utf8.finish();
        let invalid = if tail.is_empty() { 0 } else { 1 };
        text.push_str(&tail);
        if !matches!(reason, StopReason::StopString(_) | StopReason::Cancelled) && !text.is_empty()
        {
            let _ = on_piece(&Piece { token: None, text });
        }
        log::debug!(
            "speculative: {generated} tokens, accepted {accepted} of {drafted} drafted in {rounds} rounds"
        );
        Ok(SpeculativeSummary {
            summary: Summary {
                prompt_tokens: tokens.len(),
                generated_tokens: generated,
                prompt_time,
                generation_time: gen_started.elapsed(),
                stop_reason: reason,
                invalid_utf8_bytes: invalid,
                reused_tokens: 0,
            },
            drafted,
            accepted,
            rounds,
        })
    }
}
