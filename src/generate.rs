//! Streaming generation: [`Context::generate`] returns an iterator of [`Piece`]s.
//!
//! Prompts longer than `n_batch` are fed in chunks; bytes of a UTF-8 character split across
//! tokens are held until the character is complete; text that could be the start of a stop
//! string is held until it can no longer match, and a matched stop string is never emitted.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::batch::Batch;
use crate::context::Context;
use crate::error::{DecodeError, Error, Result};
use crate::model::Model;
use crate::sampler::Sampler;
use crate::token::Token;

/// What to generate from.
#[derive(Debug, Clone)]
pub enum Prompt {
    /// Text, tokenized with the options' `add_special` / `parse_special`.
    Text(String),
    /// Tokens as they are.
    Tokens(Vec<Token>),
}

impl From<&str> for Prompt {
    fn from(text: &str) -> Self {
        Prompt::Text(text.to_string())
    }
}

impl From<String> for Prompt {
    fn from(text: String) -> Self {
        Prompt::Text(text)
    }
}

impl From<Vec<Token>> for Prompt {
    fn from(tokens: Vec<Token>) -> Self {
        Prompt::Tokens(tokens)
    }
}

/// Generation options.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Stop strings: generation ends when one appears; it is not emitted.
    pub stop: Vec<String>,
    /// Add BOS/EOS to a text prompt as the model wants.
    pub add_special: bool,
    /// Turn special-token text in a text prompt into special tokens.
    pub parse_special: bool,
    /// Render special tokens in the output as text.
    pub render_special: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            stop: Vec::new(),
            add_special: true,
            parse_special: true,
            render_special: false,
        }
    }
}

impl GenerateOptions {
    /// Sets the token limit.
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Adds a stop string.
    pub fn with_stop(mut self, stop: impl Into<String>) -> Self {
        self.stop.push(stop.into());
        self
    }
}

/// Why generation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced an end-of-generation token (not emitted).
    EndOfGeneration(Token),
    /// `max_tokens` were generated.
    MaxTokens,
    /// A stop string appeared (not emitted).
    StopString(String),
    /// The context is full: no room for another token.
    ContextFull,
    /// Cancelled through a [`crate::CancelHandle`].
    Cancelled,
}

/// One step of generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The token generated at this step; `None` for the last piece, which releases text held
    /// back when generation ended.
    pub token: Option<Token>,
    /// Text released by this step (may be empty while text is held back).
    pub text: String,
}

/// Statistics of a finished generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated (the end-of-generation token not counted).
    pub generated_tokens: usize,
    /// Time to process the prompt.
    pub prompt_time: Duration,
    /// Time spent generating.
    pub generation_time: Duration,
    /// Why it ended.
    pub stop_reason: StopReason,
    /// Bytes that were not valid UTF-8 and were replaced by U+FFFD.
    pub invalid_utf8_bytes: usize,
    /// Prompt tokens that were already in the cache and not decoded again (sessions).
    pub reused_tokens: usize,
}

impl Summary {
    /// Generated tokens per second.
    pub fn tokens_per_second(&self) -> f64 {
        let secs = self.generation_time.as_secs_f64();
        if secs > 0.0 {
            self.generated_tokens as f64 / secs
        } else {
            0.0
        }
    }

    /// Prompt tokens per second.
    pub fn prompt_tokens_per_second(&self) -> f64 {
        let secs = self.prompt_time.as_secs_f64();
        if secs > 0.0 {
            self.prompt_tokens as f64 / secs
        } else {
            0.0
        }
    }
}

/// Joins token bytes into UTF-8 text, holding incomplete characters.
#[derive(Debug, Default)]
pub(crate) struct Utf8Carry {
    pending: Vec<u8>,
    invalid: usize,
}

impl Utf8Carry {
    /// Adds bytes; returns the text that is complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix is valid UTF-8 by construction.
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // Incomplete character at the end: keep it for the next token.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.invalid += bad;
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Releases whatever is left (an incomplete character becomes U+FFFD).
    pub(crate) fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            return String::new();
        }
        self.invalid += self.pending.len();
        self.pending.clear();
        char::REPLACEMENT_CHARACTER.to_string()
    }
}

/// Holds back text that may be the start of a stop string.
#[derive(Debug, Default)]
pub(crate) struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    pub(crate) fn new(stops: Vec<String>) -> Self {
        StopMatcher {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
        }
    }

    /// Adds text; returns the text safe to emit and the stop string if one matched.
    pub(crate) fn push(&mut self, text: &str) -> (String, Option<String>) {
        self.held.push_str(text);
        let first_match = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()).map(|i| (i, s.clone())))
            .min_by_key(|(i, _)| *i);
        if let Some((index, stop)) = first_match {
            let emit = self.held[..index].to_string();
            self.held.clear();
            return (emit, Some(stop));
        }
        let keep = self
            .stops
            .iter()
            .map(|s| {
                (1..s.len())
                    .rev()
                    .filter(|k| s.is_char_boundary(*k))
                    .find(|k| self.held.ends_with(&s[..*k]))
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        let split = self.held.len() - keep;
        let emit = self.held[..split].to_string();
        self.held.drain(..split);
        (emit, None)
    }

    /// Releases held text (generation ended for another reason).
    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// Where the prompt left the context, for [`Generation::new`].
pub(crate) struct Feed<'a> {
    /// The next position in sequence 0.
    pub(crate) position: i32,
    /// Prompt tokens (decoded and reused).
    pub(crate) prompt_tokens: usize,
    /// Prompt tokens that were already in the cache.
    pub(crate) reused_tokens: usize,
    pub(crate) prompt_time: Duration,
    pub(crate) history: Option<&'a mut Vec<Token>>,
    pub(crate) shift_keep: Option<usize>,
}

/// A running generation: an iterator of [`Piece`]s. See [`Context::generate`].
pub struct Generation<'a> {
    context: &'a mut Context,
    sampler: &'a mut Sampler,
    /// Tokens in sequence 0's cache, kept by a [`crate::Session`]: decoded tokens are appended.
    history: Option<&'a mut Vec<Token>>,
    /// When the sequence is full: shift it, keeping this many first tokens (sessions only).
    shift_keep: Option<usize>,
    reused_tokens: usize,
    /// The last token sampled (not an end-of-generation token).
    last_sampled: Option<Token>,
    model: Model,
    options: GenerateOptions,
    batch: Batch,
    position: i32,
    pending_decode: Option<Token>,
    generated: usize,
    utf8: Utf8Carry,
    stop: StopMatcher,
    prompt_tokens: usize,
    prompt_time: Duration,
    started: Instant,
    finished: Option<StopReason>,
    summary: Option<Summary>,
    done: bool,
}

impl std::fmt::Debug for Generation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("generated", &self.generated)
            .field("done", &self.done)
            .finish()
    }
}

impl Context {
    /// Starts generating from `prompt` (the context's memory is cleared first, so the prompt
    /// starts at position 0), feeding the prompt in chunks of `n_batch`.
    ///
    /// # Errors
    /// `InvalidArgument` for an empty prompt, `TokenOutOfRange` for invalid tokens,
    /// `ContextOverflow` when the prompt leaves no room in sequence 0 (`n_ctx_seq`),
    /// `NotSupported` for a model without an output head, `ModelMismatch` for a sampler of
    /// another model, decode errors. Encoder-decoder models encode the prompt (it must fit
    /// `n_ubatch`) and decode from their decoder start token.
    pub fn generate<'a>(
        &'a mut self,
        prompt: impl Into<Prompt>,
        sampler: &'a mut Sampler,
        options: GenerateOptions,
    ) -> Result<Generation<'a>> {
        let tokens = self.prompt_tokens(prompt.into(), &options)?;
        self.check_generation(sampler, tokens.len())?;
        self.reset_cancellation();
        self.clear_memory();
        sampler.reset();
        let model = self.model().clone();
        let started = Instant::now();
        let mut batch = Batch::new(self.n_batch() as usize, 1)?;
        let start_token;
        let decoder_prompt: &[Token] = if model.has_encoder() {
            // Encoder-decoder: the prompt is encoded, and the decoder starts from its start
            // token.
            if tokens.len() > self.n_ubatch() as usize {
                return Err(Error::ContextOverflow {
                    needed: tokens.len(),
                    n_ctx: self.n_ubatch(),
                });
            }
            batch.add_sequence(&tokens, 0, 0, false)?;
            self.encode(&mut batch)?;
            let start = model
                .decoder_start_token()
                .or_else(|| model.token_bos())
                .ok_or(Error::NotSupported {
                    operation: "generation",
                    reason: "the model names no decoder start token and no BOS".into(),
                })?;
            start_token = [start];
            &start_token
        } else {
            &tokens
        };
        let position = self.feed(&mut batch, decoder_prompt, 0)?;
        Ok(Generation::new(
            self,
            sampler,
            options,
            batch,
            Feed {
                position,
                prompt_tokens: tokens.len(),
                reused_tokens: 0,
                prompt_time: started.elapsed(),
                history: None,
                shift_keep: None,
            },
        ))
    }

    /// The tokens of `prompt`, checked (not empty, every id in the vocabulary).
    pub(crate) fn prompt_tokens(
        &self,
        prompt: Prompt,
        options: &GenerateOptions,
    ) -> Result<Vec<Token>> {
        let model = self.model();
        let tokens = match prompt {
            Prompt::Text(text) => {
                model.tokenize(&text, options.add_special, options.parse_special)?
            }
            Prompt::Tokens(tokens) => tokens,
        };
        if tokens.is_empty() {
            return Err(Error::InvalidArgument {
                parameter: "prompt",
                reason: "is empty (no tokens)".into(),
            });
        }
        model.check_tokens(&tokens)?;
        Ok(tokens)
    }

    /// Checks that this context can generate after `n_prompt` tokens with `sampler`.
    pub(crate) fn check_generation(&self, sampler: &Sampler, n_prompt: usize) -> Result<()> {
        let model = self.model();
        if !model.has_output_head() {
            return Err(Error::NotSupported {
                operation: "generation",
                reason: format!(
                    "{} ({}) has no output head: it makes embeddings, not text",
                    model.path().display(),
                    model.architecture()
                ),
            });
        }
        sampler.check_model_of(self)?;
        // The prompt goes into sequence 0, which holds n_ctx_seq tokens.
        if n_prompt >= self.n_ctx_seq() as usize {
            return Err(Error::ContextOverflow {
                needed: n_prompt + 1,
                n_ctx: self.n_ctx_seq(),
            });
        }
        Ok(())
    }

    /// Decodes `tokens` into sequence 0 from `start`, in chunks of `n_batch`, with logits for
    /// the last one; returns the next position.
    pub(crate) fn feed(&mut self, batch: &mut Batch, tokens: &[Token], start: i32) -> Result<i32> {
        let n_batch = self.n_batch() as usize;
        let mut position = start;
        let chunks = tokens.chunks(n_batch);
        let n_chunks = chunks.len();
        for (i, chunk) in chunks.enumerate() {
            batch.clear();
            batch.add_sequence(chunk, position, 0, i + 1 == n_chunks)?;
            self.decode(batch)?;
            position += chunk.len() as i32;
        }
        Ok(position)
    }

    /// The callback form of [`Context::generate`]: `on_piece` returns `ControlFlow::Break(())`
    /// to stop (reported as `StopReason::Cancelled`).
    ///
    /// # Errors
    /// As [`Context::generate`], and the first error of a generation step.
    pub fn generate_with(
        &mut self,
        prompt: impl Into<Prompt>,
        sampler: &mut Sampler,
        options: GenerateOptions,
        mut on_piece: impl FnMut(&Piece) -> ControlFlow<()>,
    ) -> Result<Summary> {
        let mut generation = self.generate(prompt, sampler, options)?;
        while let Some(piece) = generation.next() {
            let piece = piece?;
            if on_piece(&piece).is_break() {
                generation.stop_now(StopReason::Cancelled);
                break;
            }
        }
        generation.summary().cloned().ok_or(Error::InvalidArgument {
            parameter: "generation",
            reason: "ended without a summary".into(),
        })
    }
}

impl<'a> Generation<'a> {
    pub(crate) fn new(
        context: &'a mut Context,
        sampler: &'a mut Sampler,
        options: GenerateOptions,
        batch: Batch,
        feed: Feed<'a>,
    ) -> Self {
        Generation {
            model: context.model().clone(),
            context,
            sampler,
            history: feed.history,
            shift_keep: feed.shift_keep,
            reused_tokens: feed.reused_tokens,
            last_sampled: None,
            stop: StopMatcher::new(options.stop.clone()),
            options,
            batch,
            position: feed.position,
            pending_decode: None,
            generated: 0,
            utf8: Utf8Carry::default(),
            prompt_tokens: feed.prompt_tokens,
            prompt_time: feed.prompt_time,
            started: Instant::now(),
            finished: None,
            summary: None,
            done: false,
        }
    }
}

impl Generation<'_> {
    /// The summary, once the iterator has returned `None`.
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    /// The last token sampled that is not in the context yet (generation ended before decoding
    /// it: max tokens, a stop string or a full context). Decode it (e.g.
    /// [`crate::Session::append`]) to continue from exactly here.
    pub fn undecoded_token(&self) -> Option<Token> {
        self.last_sampled.filter(|_| self.pending_decode.is_none())
    }

    /// A handle to cancel this generation from another thread.
    pub fn cancel_handle(&self) -> crate::context::CancelHandle {
        self.context.cancel_handle()
    }

    fn stop_now(&mut self, reason: StopReason) {
        if self.summary.is_none() {
            self.summary = Some(Summary {
                prompt_tokens: self.prompt_tokens,
                generated_tokens: self.generated,
                prompt_time: self.prompt_time,
                generation_time: self.started.elapsed(),
                stop_reason: reason,
                invalid_utf8_bytes: self.utf8.invalid,
                reused_tokens: self.reused_tokens,
            });
        }
        self.done = true;
    }

    /// Ends with `reason`, releasing held text as a final piece if there is any.
    fn end(&mut self, reason: StopReason) -> Option<Piece> {
        let mut text = self.utf8.finish();
        text = self.stop.finish() + &text;
        if matches!(reason, StopReason::StopString(_)) {
            text.clear();
        }
        self.stop_now(reason);
        (!text.is_empty()).then_some(Piece { token: None, text })
    }

    /// Context shift: keeps the first `shift_keep` tokens, discards half of the rest and moves
    /// the remainder back (llama.cpp's `--keep` / context-shift scheme).
    fn shift_context(&mut self) -> Result<()> {
        let keep = self.shift_keep.unwrap_or(0);
        let Some(history) = self.history.as_mut() else {
            return Err(Error::NotSupported {
                operation: "context shift",
                reason: "needs the session's token history".into(),
            });
        };
        let n_past = history.len();
        if keep + 2 > n_past {
            return Err(Error::ContextOverflow {
                needed: n_past + 1,
                n_ctx: self.context.n_ctx_seq(),
            });
        }
        let discard = (n_past - keep) / 2;
        let (keep_i, end_i) = (keep as i32, (keep + discard) as i32);
        if !self
            .context
            .memory_seq_rm(Some(0), Some(keep_i), Some(end_i))?
        {
            return Err(Error::NotSupported {
                operation: "context shift",
                reason: "this model's memory cannot remove part of a sequence".into(),
            });
        }
        self.context
            .memory_seq_add(0, Some(end_i), None, -(discard as i32))?;
        history.drain(keep..keep + discard);
        self.position -= discard as i32;
        log::debug!(
            "context shift: kept {keep}, discarded {discard}, {} left",
            history.len()
        );
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Piece>> {
        if let Some(reason) = self.finished.take() {
            return Ok(self.end(reason));
        }
        if self.context.cancel_handle().is_cancelled() {
            return Ok(self.end(StopReason::Cancelled));
        }
        if let Some(token) = self.pending_decode.take() {
            if self.position as u32 >= self.context.n_ctx_seq() {
                self.shift_context()?;
            }
            self.batch.clear();
            self.batch.add(token, self.position, &[0], true)?;
            match self.context.decode(&mut self.batch) {
                Ok(()) => {
                    self.position += 1;
                    self.last_sampled = None;
                    if let Some(history) = self.history.as_mut() {
                        history.push(token);
                    }
                }
                Err(Error::Decode(DecodeError::Aborted)) => {
                    return Ok(self.end(StopReason::Cancelled))
                }
                Err(Error::Decode(DecodeError::NoKvSlot)) => {
                    return Ok(self.end(StopReason::ContextFull))
                }
                Err(e) => return Err(e),
            }
        }
        let token = self.sampler.sample(self.context, -1)?;
        if self.model.is_end_of_generation(token) {
            return Ok(self.end(StopReason::EndOfGeneration(token)));
        }
        self.generated += 1;
        self.last_sampled = Some(token);
        let bytes = self
            .model
            .token_to_bytes(token, self.options.render_special)?;
        let text = self.utf8.push(&bytes);
        let (text, matched) = self.stop.push(&text);
        if let Some(stop) = matched {
            self.stop_now(StopReason::StopString(stop));
            return Ok(Some(Piece {
                token: Some(token),
                text,
            }));
        }
        if self.generated >= self.options.max_tokens {
            self.finished = Some(StopReason::MaxTokens);
        } else if self.position as u32 >= self.context.n_ctx_seq() && self.shift_keep.is_none() {
            self.finished = Some(StopReason::ContextFull);
        } else {
            self.pending_decode = Some(token);
        }
        Ok(Some(Piece {
            token: Some(token),
            text,
        }))
    }
}

impl Iterator for Generation<'_> {
    type Item = Result<Piece>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.options.max_tokens == 0 && self.generated == 0 && self.finished.is_none() {
            self.finished = Some(StopReason::MaxTokens);
        }
        match self.step() {
            Ok(Some(piece)) => Some(Ok(piece)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_carry_holds_split_characters() {
        let mut carry = Utf8Carry::default();
        let emoji = "😀".as_bytes();
        assert_eq!(carry.push(&emoji[..1]), "");
        assert_eq!(carry.push(&emoji[1..3]), "");
        assert_eq!(carry.push(&emoji[3..]), "😀");
        let cjk = "漢字".as_bytes();
        assert_eq!(carry.push(&cjk[..4]), "漢");
        assert_eq!(carry.push(&cjk[4..]), "字");
        assert_eq!(carry.push(b"a\xffb"), "a\u{FFFD}b");
        assert_eq!(carry.invalid, 1);
        assert_eq!(carry.push(&emoji[..2]), "");
        assert_eq!(carry.finish(), "\u{FFFD}");
    }

    #[test]
    fn stop_strings_are_held_and_never_emitted() {
        let mut m = StopMatcher::new(vec!["</end>".into()]);
        assert_eq!(m.push("hello <"), ("hello ".into(), None));
        assert_eq!(m.push("/e"), (String::new(), None));
        assert_eq!(m.push("nd"), (String::new(), None));
        assert_eq!(m.push("> tail"), (String::new(), Some("</end>".into())));
        let mut m = StopMatcher::new(vec!["STOP".into()]);
        assert_eq!(m.push("ST"), (String::new(), None));
        assert_eq!(m.push("ART"), ("START".into(), None));
        assert_eq!(m.push("S"), (String::new(), None));
        assert_eq!(m.finish(), "S");
    }

    #[test]
    fn earliest_stop_string_wins() {
        let mut m = StopMatcher::new(vec!["b".into(), "a".into()]);
        assert_eq!(m.push("xab"), ("x".into(), Some("a".into())));
    }
}
