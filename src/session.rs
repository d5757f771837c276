//! [`Session`]: a conversation over one [`Context`] that remembers what is in its KV cache.
//!
//! Each turn gives the whole conversation (usually rendered by a chat template); the session
//! keeps the longest common prefix with the tokens already in the cache, removes the rest,
//! and decodes only the new suffix. When the sequence fills up, [`WhenFull`] says what to do.

use std::time::Instant;

use crate::batch::Batch;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::generate::{Feed, GenerateOptions, Generation, Prompt};
use crate::sampler::Sampler;
use crate::token::Token;

/// What a session does when its sequence is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Stop generating with `StopReason::ContextFull`.
    #[default]
    Stop,
    /// Keep the first `keep` tokens, discard half of the rest and go on (context shift; not
    /// for models whose memory cannot shift, such as M-RoPE or recurrent ones).
    Shift {
        /// Tokens at the start that are never discarded (a system prompt, say).
        keep: usize,
    },
}

/// A multi-turn session: a [`Context`] plus the tokens in its sequence 0.
pub struct Session {
    context: Context,
    tokens: Vec<Token>,
    when_full: WhenFull,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("tokens", &self.tokens.len())
            .field("when_full", &self.when_full)
            .finish()
    }
}

impl Session {
    /// A session over `context` (its memory is cleared).
    pub fn new(mut context: Context) -> Self {
        context.clear_memory();
        Session {
            context,
            tokens: Vec::new(),
            when_full: WhenFull::Stop,
        }
    }

    /// Sets what happens when the sequence is full.
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.when_full = policy;
        self
    }

    /// The context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The context, mutably (clearing its memory by hand desynchronises the session: call
    /// [`Self::reset`] instead).
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.context
    }

    /// The tokens in the cache, in order (positions 0..len).
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Forgets the conversation (clears the cache).
    pub fn reset(&mut self) {
        self.context.clear_memory();
        self.tokens.clear();
    }

    /// Decodes `tokens` after the cached ones (e.g. the last generated token, which a finished
    /// generation has sampled but not decoded), so that the cache holds them too.
    ///
    /// # Errors
    /// `ContextOverflow` when they do not fit the sequence; as [`Context::decode`].
    pub fn append(&mut self, tokens: &[Token]) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        self.context.model().check_tokens(tokens)?;
        let needed = self.tokens.len() + tokens.len();
        if needed > self.context.n_ctx_seq() as usize {
            return Err(Error::ContextOverflow {
                needed,
                n_ctx: self.context.n_ctx_seq(),
            });
        }
        let mut batch = Batch::new(self.context.n_batch() as usize, 1)?;
        let start = self.tokens.len() as i32;
        if let Err(e) = self.context.feed(&mut batch, tokens, start) {
            self.reset();
            return Err(e);
        }
        self.tokens.extend_from_slice(tokens);
        Ok(())
    }

    /// Saves the session (the context's state and the cached tokens) to `path`.
    ///
    /// # Errors
    /// As [`Context::save_state_file`].
    pub fn save_state_file(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let tokens = self.tokens.clone();
        self.context.save_state_file(path, &tokens)
    }

    /// Restores a session saved by [`Self::save_state_file`]; the next turn reuses its tokens.
    ///
    /// # Errors
    /// As [`Context::load_state_file`] (a state of another model, build or shape, or a
    /// damaged file); the session is then empty.
    pub fn load_state_file(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.tokens.clear();
        match self.context.load_state_file(path) {
            Ok(tokens) => {
                self.tokens = tokens;
                Ok(())
            }
            Err(e) => {
                self.context.clear_memory();
                Err(e)
            }
        }
    }

    /// The session as bytes (see [`Self::save_state_file`]).
    ///
    /// # Errors
    /// As [`Context::state_to_bytes`].
    pub fn state_to_bytes(&mut self) -> Result<Vec<u8>> {
        let tokens = self.tokens.clone();
        self.context.state_to_bytes(&tokens)
    }

    /// Restores a session from [`Self::state_to_bytes`].
    ///
    /// # Errors
    /// As [`Context::state_from_bytes`]; the session is then empty.
    pub fn state_from_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.tokens.clear();
        match self.context.state_from_bytes(bytes) {
            Ok(tokens) => {
                self.tokens = tokens;
                Ok(())
            }
            Err(e) => {
                self.context.clear_memory();
                Err(e)
            }
        }
    }

    /// Takes the context back.
    pub fn into_context(self) -> Context {
        self.context
    }

    /// Continues the conversation: `prompt` is the whole conversation so far. The longest
    /// common prefix with the cached tokens is kept, the rest is removed from the cache and
    /// only the new suffix is decoded; then generation streams as with [`Context::generate`]
    /// (the summary's `reused_tokens` says how many prompt tokens were kept).
    ///
    /// # Errors
    /// As [`Context::generate`]; `NotSupported` for encoder-decoder models.
    pub fn generate<'a>(
        &'a mut self,
        prompt: impl Into<Prompt>,
        sampler: &'a mut Sampler,
        options: GenerateOptions,
    ) -> Result<Generation<'a>> {
        if self.context.model().has_encoder() {
            return Err(Error::NotSupported {
                operation: "sessions",
                reason: "encoder-decoder models encode each prompt anew: use Context::generate"
                    .into(),
            });
        }
        let tokens = self.context.prompt_tokens(prompt.into(), &options)?;
        self.context.check_generation(sampler, tokens.len())?;
        self.context.reset_cancellation();
        sampler.reset();
        let started = Instant::now();
        let mut common = self
            .tokens
            .iter()
            .zip(&tokens)
            .take_while(|(a, b)| a == b)
            .count();
        // The last prompt token is always decoded again: its logits start the generation.
        common = common.min(tokens.len() - 1);
        if common < self.tokens.len()
            && !self
                .context
                .memory_seq_rm(Some(0), Some(common as i32), None)?
        {
            // A memory that cannot drop a tail (recurrent models) starts over.
            common = 0;
            self.context.clear_memory();
        }
        self.tokens.truncate(common);
        let mut batch = Batch::new(self.context.n_batch() as usize, 1)?;
        let suffix = &tokens[common..];
        let position = match self.context.feed(&mut batch, suffix, common as i32) {
            Ok(position) => position,
            Err(e) => {
                // What was decoded of the suffix is unknown: start over next time.
                self.reset();
                return Err(e);
            }
        };
        self.tokens.extend_from_slice(suffix);
        let shift_keep = match self.when_full {
            WhenFull::Stop => None,
            WhenFull::Shift { keep } => Some(keep),
        };
        Ok(Generation::new(
            &mut self.context,
            sampler,
            options,
            batch,
            Feed {
                position,
                prompt_tokens: suffix.len(),
                reused_tokens: common,
                prompt_time: started.elapsed(),
                history: Some(&mut self.tokens),
                shift_keep,
            },
        ))
    }
}
