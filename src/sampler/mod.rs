//! Samplers: a chain built with [`SamplerBuilder`], owned as one [`Sampler`].
//!
//! A chain is filters (top-k, temperature, grammar, penalties, ...) followed by exactly one
//! token picker (greedy, dist, mirostat, mirostat v2): the builder's type only offers
//! [`SamplerBuilder::build`] after a picker, and offers nothing after it, so an empty chain, a
//! chain of filters only and a filter after the picker cannot be written.
//!
//! A [`Sampler`] is bound to the [`Model`] it was built for (grammars, logit biases, DRY and
//! infill read its vocabulary): sampling from a context of another model is
//! [`Error::ModelMismatch`]. Sampling and [`Sampler::accept`] check token ids, and a grammar
//! that rejects a token, or an end-of-generation token before it is complete, gives
//! [`Error::GrammarRejected`] instead of llama.cpp's abort.

mod builder;
mod checks;
pub mod json_schema;
mod lazy;

use std::ptr::NonNull;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::ffi::{strings, Api, RawSampler, TokenData, TokenDataArray};
use crate::model::Model;
use crate::token::Token;

pub use builder::{Complete, Open, SamplerBuilder, MAX_INFILL_CANDIDATES, MIN_TEMPERATURE};
use lazy::{Fired, LazyTrigger};

/// What one sampler of the chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Changes the candidates.
    Filter,
    /// A grammar (applied before the picker; its accept can reject).
    Grammar,
    /// A grammar that applies once its trigger fired (see `lazy`).
    LazyGrammar,
    /// Selects the token (always last).
    Picker,
}

/// A sampler chain. Dropping it frees the chain and every sampler in it (the chain owns them),
/// before the model it holds is released.
pub struct Sampler {
    /// The model the chain was built for: `Drop` frees the chain first, so the vocabulary
    /// outlives the samplers that read it.
    model: Model,
    raw: NonNull<RawSampler>,
    kinds: Vec<Kind>,
    lazy: Option<LazyTrigger>,
    /// Candidate buffer reused between steps.
    candidates: Vec<TokenData>,
    /// The smallest `top_k` in the chain (bounds what later samplers see).
    smallest_top_k: Option<i32>,
}

// SAFETY: a sampler chain is plain state owned by this value; llama.cpp has no thread
// affinity for it, and all methods that touch it take `&mut self`.
unsafe impl Send for Sampler {}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("samplers", &self.names())
            .finish()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: the chain was created by llama_sampler_chain_init (or clone) and is freed once;
        // freeing a chain frees the samplers added to it. `self.model` (and so the vocabulary
        // they reference) is dropped only after this body, with the other fields.
        unsafe { self.api().sampler_free(self.raw.as_ptr()) };
    }
}

impl Sampler {
    /// Starts a chain for `model`.
    pub fn builder(model: &Model) -> SamplerBuilder<Open> {
        SamplerBuilder::new(model)
    }

    /// Greedy decoding.
    ///
    /// # Errors
    /// `Null` when llama.cpp cannot create the chain.
    #[doc(alias = "llama_sampler_init_greedy")]
    pub fn greedy(model: &Model) -> Result<Self> {
        Self::builder(model).greedy().build()
    }

    /// The model this chain is bound to.
    pub fn model(&self) -> &Model {
        &self.model
    }

    fn api(&self) -> Api<'_> {
        self.model.api()
    }

    fn nth(&self, i: usize) -> Result<*mut RawSampler> {
        // SAFETY: a live chain; i < kinds.len() == the chain's length.
        let s = unsafe { self.api().sampler_chain_get(self.raw.as_ptr(), i as i32) };
        if s.is_null() {
            return Err(Error::Null {
                function: "llama_sampler_chain_get",
                detail: format!("sampler {i}"),
            });
        }
        Ok(s)
    }

    /// A deep copy of the chain and its state.
    ///
    /// # Errors
    /// `Null` when llama.cpp cannot copy it.
    #[doc(alias = "llama_sampler_clone")]
    pub fn try_clone(&self) -> Result<Self> {
        // SAFETY: a live chain; llama_sampler_clone deep-copies it.
        let raw = unsafe { self.api().sampler_clone(self.raw.as_ptr()) };
        let raw = NonNull::new(raw).ok_or(Error::Null {
            function: "llama_sampler_clone",
            detail: String::new(),
        })?;
        Ok(Sampler {
            model: self.model.clone(),
            raw,
            kinds: self.kinds.clone(),
            lazy: self.lazy.clone(),
            candidates: Vec::new(),
            smallest_top_k: self.smallest_top_k,
        })
    }

    /// `Ok` when `context` runs this sampler's model.
    ///
    /// # Errors
    /// [`Error::ModelMismatch`].
    pub fn check_model_of(&self, context: &Context) -> Result<()> {
        if context.model() != &self.model {
            return Err(Error::ModelMismatch {
                sampler_model: self.model.path().to_path_buf(),
                context_model: context.model().path().to_path_buf(),
            });
        }
        Ok(())
    }

    /// Samples a token from output `idx` of the context's last decode and accepts it.
    ///
    /// The chain is applied sampler by sampler, as `llama_sampler_sample` does, with checks
    /// between: the picker must find a candidate the filters left (a grammar can rule out
    /// every token), and must select one.
    ///
    /// # Errors
    /// `ModelMismatch` for a context of another model; `OutputOutOfRange` when `idx` has no
    /// logits; `GrammarRejected` when the grammar leaves no candidate (or a lazy grammar's
    /// trigger text does not fit it).
    #[doc(alias = "llama_sampler_sample")]
    #[doc(alias = "llama_sampler_apply")]
    pub fn sample(&mut self, context: &mut Context, idx: i32) -> Result<Token> {
        self.check_model_of(context)?;
        let logits = context.logits(idx)?;
        if let Some(bad) = logits.iter().position(|l| l.is_nan()) {
            // llama.cpp sorts candidates with `>`: NaN breaks the ordering its sorts rely on.
            return Err(Error::Sampling {
                reason: format!("the model produced NaN logits (token {bad} and maybe others)"),
            });
        }
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        candidates.extend(logits.iter().enumerate().map(|(id, &logit)| TokenData {
            id: id as i32,
            logit,
            p: 0.0,
        }));
        let result = self.apply_chain(&mut candidates);
        self.candidates = candidates;
        let token = result?;
        self.accept_checked(token, false)?;
        Ok(token)
    }

    fn apply_chain(&mut self, candidates: &mut [TokenData]) -> Result<Token> {
        let mut array = TokenDataArray {
            data: candidates.as_mut_ptr(),
            size: candidates.len(),
            selected: -1,
            sorted: false,
        };
        let lazy_waiting = self.lazy.as_ref().is_some_and(|l| !l.is_triggered());
        for i in 0..self.kinds.len() {
            match self.kinds[i] {
                Kind::LazyGrammar if lazy_waiting => continue,
                Kind::Picker => {
                    // SAFETY: llama.cpp's samplers shrink `size`, reorder in place, or advance
                    // `data` within the array (xtc), so `data..data + size` stays inside
                    // `candidates`.
                    let left = unsafe { std::slice::from_raw_parts(array.data, array.size) };
                    if !left.iter().any(|c| c.logit.is_finite()) {
                        return Err(if self.grammar_index().is_some() {
                            Error::GrammarRejected {
                                token: None,
                                reason: "the grammar rules out every token here".into(),
                            }
                        } else {
                            Error::Sampling {
                                reason: "every candidate's logit is -inf or NaN".into(),
                            }
                        });
                    }
                }
                _ => {}
            }
            let sampler = self.nth(i)?;
            // SAFETY: a live sampler of this chain; `array` describes `candidates`, which lives
            // across the call; the candidates are non-empty.
            unsafe { self.api().sampler_apply(sampler, &mut array) };
        }
        let selected = usize::try_from(array.selected)
            .ok()
            .filter(|s| *s < array.size)
            .ok_or_else(|| Error::Null {
                function: "llama_sampler_apply",
                detail: format!(
                    "the picker selected index {} of {} candidates",
                    array.selected, array.size
                ),
            })?;
        // SAFETY: `data..data + size` lies inside `candidates` (see above); `selected` < size.
        let chosen = unsafe { *array.data.add(selected) };
        if chosen.logit.is_nan() || chosen.logit == f32::NEG_INFINITY {
            return Err(Error::Sampling {
                reason: format!(
                    "the picker chose token {} whose logit is {}",
                    chosen.id, chosen.logit
                ),
            });
        }
        Ok(Token(chosen.id))
    }

    /// Tells the chain that `token` was chosen (penalties, grammar, ... update their state).
    /// [`Self::sample`] already does this.
    ///
    /// # Errors
    /// `TokenOutOfRange`; `GrammarRejected` when the chain's grammar does not allow `token` here
    /// (including an end-of-generation token before the grammar is complete).
    #[doc(alias = "llama_sampler_accept")]
    pub fn accept(&mut self, token: Token) -> Result<()> {
        self.accept_checked(token, true)
    }

    fn grammar_index(&self) -> Option<usize> {
        self.kinds
            .iter()
            .position(|k| matches!(k, Kind::Grammar | Kind::LazyGrammar))
    }

    /// Whether the grammar sampler allows `token` next: a one-candidate apply, which marks a
    /// rejected token with -inf (the same test llama.cpp's accept would fail by throwing).
    fn grammar_allows(&self, grammar: *mut RawSampler, token: Token) -> bool {
        let mut one = [TokenData {
            id: token.0,
            logit: 0.0,
            p: 0.0,
        }];
        let mut array = TokenDataArray {
            data: one.as_mut_ptr(),
            size: 1,
            selected: -1,
            sorted: false,
        };
        // SAFETY: a live grammar sampler of this chain; a one-element array over `one`; the
        // token id is in range (checked by the callers).
        unsafe { self.api().sampler_apply(grammar, &mut array) };
        one[0].logit.is_finite()
    }

    fn accept_checked(&mut self, token: Token, check_grammar: bool) -> Result<()> {
        self.model.check_token(token)?;
        let grammar = match self.grammar_index() {
            Some(i) => Some((i, self.nth(i)?)),
            None => None,
        };
        let waiting = self.lazy.as_ref().is_some_and(|l| !l.is_triggered());
        if let Some((_, g)) = grammar {
            if check_grammar && !waiting && !self.grammar_allows(g, token) {
                return Err(self.rejected(token));
            }
        }
        // The lazy grammar's trigger: what the grammar must accept once it fires.
        let fired = if waiting {
            let piece = self.model.token_to_bytes(token, true)?;
            let piece = String::from_utf8_lossy(&piece).into_owned();
            self.lazy.as_mut().and_then(|l| l.observe(token, &piece))
        } else {
            None
        };
        let replay = match &fired {
            Some(Fired::Token(t)) => vec![*t],
            Some(Fired::Text(text)) => self.model.tokenize(text, false, true)?,
            None => Vec::new(),
        };
        if let Some((_, g)) = grammar {
            // Each token of the replay is checked before the grammar accepts it; on a rejection
            // the grammar is re-initialised and waits for a trigger again.
            for t in &replay {
                if !self.grammar_allows(g, *t) {
                    // SAFETY: a live grammar sampler; reset re-initialises its grammar.
                    unsafe { self.api().sampler_reset(g) };
                    if let Some(l) = self.lazy.as_mut() {
                        l.reset();
                    }
                    return Err(Error::GrammarRejected {
                        token: Some(*t),
                        reason: "the text that fired the lazy grammar's trigger does not fit the grammar".into(),
                    });
                }
                // SAFETY: a live grammar sampler; the token is in range and allowed (checked).
                unsafe { self.api().sampler_accept(g, t.0) };
            }
        }
        for i in 0..self.kinds.len() {
            let skip_grammar = matches!(self.kinds[i], Kind::Grammar | Kind::LazyGrammar)
                && (waiting || fired.is_some());
            if skip_grammar {
                continue;
            }
            let sampler = self.nth(i)?;
            // SAFETY: a live sampler of this chain; the token is in range, and allowed by the
            // grammar when this is the grammar (checked above, or chosen after its apply).
            unsafe { self.api().sampler_accept(sampler, token.0) };
        }
        Ok(())
    }

    fn rejected(&self, token: Token) -> Error {
        let eog = self.model.is_end_of_generation(token);
        Error::GrammarRejected {
            token: Some(token),
            reason: if eog {
                "end of generation before the grammar is complete".into()
            } else {
                let piece = self
                    .model
                    .token_to_bytes(token, true)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                format!("the grammar does not allow {piece:?} here")
            },
        }
    }

    /// Resets the chain's state (and re-arms a lazy grammar).
    #[doc(alias = "llama_sampler_reset")]
    pub fn reset(&mut self) {
        // SAFETY: a live chain.
        unsafe { self.api().sampler_reset(self.raw.as_ptr()) };
        if let Some(l) = self.lazy.as_mut() {
            l.reset();
        }
    }

    /// The seed of the chain's random sampler (`LLAMA_DEFAULT_SEED` when none).
    #[doc(alias = "llama_sampler_get_seed")]
    pub fn seed(&self) -> u32 {
        // SAFETY: a live chain.
        unsafe { self.api().sampler_get_seed(self.raw.as_ptr()) }
    }

    /// Names of the samplers in the chain.
    #[doc(alias = "llama_sampler_name")]
    pub fn names(&self) -> Vec<String> {
        (0..self.kinds.len())
            .map(|i| {
                self.nth(i)
                    .ok()
                    // SAFETY: a live sampler; its name is a static string (or NULL).
                    .and_then(|s| unsafe { strings::owned(self.api().sampler_name(s)) })
                    .unwrap_or_default()
            })
            .collect()
    }
}
