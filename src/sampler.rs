//! Samplers: a chain built with [`SamplerBuilder`], owned as one [`Sampler`].

use std::ffi::CString;
use std::ptr::NonNull;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::loader::LlamaLibrary;
use crate::model::{to_cstring, Model};
use crate::sys::upstream::{self as sys, llama_sampler};
use crate::token::Token;

/// A sampler chain. Dropping it frees the chain and every sampler in it (the chain owns them).
pub struct Sampler {
    library: LlamaLibrary,
    raw: NonNull<llama_sampler>,
    /// Samplers that reference a vocabulary keep the model alive.
    _model: Option<Model>,
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
        // freeing a chain frees the samplers added to it.
        unsafe { (self.library.llama().llama_sampler_free)(self.raw.as_ptr()) };
    }
}

impl Sampler {
    /// Starts a chain for `model`.
    pub fn builder(model: &Model) -> SamplerBuilder {
        SamplerBuilder::new(model)
    }

    /// Greedy decoding.
    pub fn greedy(model: &Model) -> Result<Self> {
        Self::builder(model).greedy().build()
    }

    /// A deep copy of the chain and its state.
    ///
    /// # Errors
    /// `Null` when llama.cpp cannot copy it.
    pub fn try_clone(&self) -> Result<Self> {
        // SAFETY: a live chain; llama_sampler_clone deep-copies it.
        let raw = unsafe { (self.library.llama().llama_sampler_clone)(self.raw.as_ptr()) };
        let raw = NonNull::new(raw).ok_or(Error::Null {
            function: "llama_sampler_clone",
            detail: String::new(),
        })?;
        Ok(Sampler {
            library: self.library.clone(),
            raw,
            _model: self._model.clone(),
        })
    }

    /// Samples a token from output `idx` of the context's last decode and accepts it.
    pub fn sample(&mut self, context: &mut Context, idx: i32) -> Result<Token> {
        // Validate the index first: llama.cpp aborts on an output without logits.
        context.logits(idx)?;
        let ctx = context.raw();
        // SAFETY: live chain and context, both used from this thread only; idx has logits.
        let token =
            unsafe { (self.library.llama().llama_sampler_sample)(self.raw.as_ptr(), ctx, idx) };
        Ok(Token(token))
    }

    /// Tells the chain that `token` was chosen (penalties, grammar, ... update their state).
    /// [`Self::sample`] already does this.
    pub fn accept(&mut self, token: Token) {
        // SAFETY: a live chain.
        unsafe { (self.library.llama().llama_sampler_accept)(self.raw.as_ptr(), token.0) };
    }

    /// Resets the chain's state.
    pub fn reset(&mut self) {
        // SAFETY: a live chain.
        unsafe { (self.library.llama().llama_sampler_reset)(self.raw.as_ptr()) };
    }

    /// The seed of the chain's random sampler (`LLAMA_DEFAULT_SEED` when none).
    pub fn seed(&self) -> u32 {
        // SAFETY: a live chain.
        unsafe { (self.library.llama().llama_sampler_get_seed)(self.raw.as_ptr()) }
    }

    /// Names of the samplers in the chain.
    pub fn names(&self) -> Vec<String> {
        let llama = self.library.llama();
        // SAFETY: a live chain.
        let n = unsafe { (llama.llama_sampler_chain_n)(self.raw.as_ptr()) };
        (0..n)
            .map(|i| {
                // SAFETY: i < n; names are static strings.
                unsafe {
                    let s = (llama.llama_sampler_chain_get)(self.raw.as_ptr(), i);
                    let name = (llama.llama_sampler_name)(s);
                    if name.is_null() {
                        String::new()
                    } else {
                        std::ffi::CStr::from_ptr(name)
                            .to_string_lossy()
                            .into_owned()
                    }
                }
            })
            .collect()
    }
}

/// Builds a sampler chain. Each method appends one sampler; errors (a NULL from llama.cpp, an
/// invalid parameter, a grammar that does not parse) are kept and returned by [`Self::build`].
pub struct SamplerBuilder {
    model: Model,
    chain: Option<Sampler>,
    error: Option<Error>,
    needs_model: bool,
}

impl std::fmt::Debug for SamplerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamplerBuilder")
            .field("chain", &self.chain)
            .field("error", &self.error)
            .finish()
    }
}

impl SamplerBuilder {
    fn new(model: &Model) -> Self {
        let library = model.library().clone();
        let llama = library.llama();
        // SAFETY: plain value arguments; returns a new chain or NULL.
        let raw = unsafe {
            (llama.llama_sampler_chain_init)(sys::llama_sampler_chain_params { no_perf: false })
        };
        let (chain, error) = match NonNull::new(raw) {
            Some(raw) => (
                Some(Sampler {
                    library,
                    raw,
                    _model: None,
                }),
                None,
            ),
            None => (
                None,
                Some(Error::Null {
                    function: "llama_sampler_chain_init",
                    detail: String::new(),
                }),
            ),
        };
        SamplerBuilder {
            model: model.clone(),
            chain,
            error,
            needs_model: false,
        }
    }

    fn push(
        mut self,
        function: &'static str,
        make: impl FnOnce(&sys::LlamaFunctions) -> *mut llama_sampler,
    ) -> Self {
        if self.error.is_some() {
            return self;
        }
        let Some(chain) = &self.chain else {
            return self;
        };
        let llama = chain.library.llama();
        let sampler = make(llama);
        if sampler.is_null() {
            self.error = Some(Error::Null {
                function,
                detail: String::new(),
            });
            return self;
        }
        // SAFETY: both live; the chain takes ownership of `sampler` (freed with the chain).
        unsafe { (llama.llama_sampler_chain_add)(chain.raw.as_ptr(), sampler) };
        self
    }

    fn invalid(mut self, parameter: &'static str, reason: String) -> Self {
        if self.error.is_none() {
            self.error = Some(Error::InvalidArgument { parameter, reason });
        }
        self
    }

    /// Always the most likely token.
    pub fn greedy(self) -> Self {
        // SAFETY: no arguments.
        self.push("llama_sampler_init_greedy", |l| unsafe {
            (l.llama_sampler_init_greedy)()
        })
    }

    /// Random sampling from the distribution with `seed` (same seed, same choices).
    pub fn dist(self, seed: u32) -> Self {
        // SAFETY: value argument.
        self.push("llama_sampler_init_dist", |l| unsafe {
            (l.llama_sampler_init_dist)(seed)
        })
    }

    /// Keeps the `k` most likely tokens.
    pub fn top_k(self, k: i32) -> Self {
        // SAFETY: value argument (k <= 0 disables it in llama.cpp).
        self.push("llama_sampler_init_top_k", |l| unsafe {
            (l.llama_sampler_init_top_k)(k)
        })
    }

    fn with_probability(self, name: &'static str, p: f32, then: impl FnOnce(Self) -> Self) -> Self {
        if !(0.0..=1.0).contains(&p) {
            return self.invalid(name, format!("{p} must be in 0..=1"));
        }
        then(self)
    }

    /// Nucleus sampling.
    pub fn top_p(self, p: f32, min_keep: usize) -> Self {
        self.with_probability("top_p", p, |s| {
            // SAFETY: value arguments.
            s.push("llama_sampler_init_top_p", |l| unsafe {
                (l.llama_sampler_init_top_p)(p, min_keep)
            })
        })
    }

    /// Min-p sampling.
    pub fn min_p(self, p: f32, min_keep: usize) -> Self {
        self.with_probability("min_p", p, |s| {
            // SAFETY: value arguments.
            s.push("llama_sampler_init_min_p", |l| unsafe {
                (l.llama_sampler_init_min_p)(p, min_keep)
            })
        })
    }

    /// Locally typical sampling.
    pub fn typical(self, p: f32, min_keep: usize) -> Self {
        self.with_probability("typical_p", p, |s| {
            // SAFETY: value arguments.
            s.push("llama_sampler_init_typical", |l| unsafe {
                (l.llama_sampler_init_typical)(p, min_keep)
            })
        })
    }

    /// Temperature.
    pub fn temp(self, t: f32) -> Self {
        if !t.is_finite() || t < 0.0 {
            return self.invalid("temperature", format!("{t} must be finite and >= 0"));
        }
        // SAFETY: value argument.
        self.push("llama_sampler_init_temp", |l| unsafe {
            (l.llama_sampler_init_temp)(t)
        })
    }

    /// Dynamic temperature.
    pub fn temp_ext(self, t: f32, delta: f32, exponent: f32) -> Self {
        if !t.is_finite() || t < 0.0 || !delta.is_finite() || !exponent.is_finite() {
            return self.invalid(
                "temperature",
                format!("{t}/{delta}/{exponent} must be finite, t >= 0"),
            );
        }
        // SAFETY: value arguments.
        self.push("llama_sampler_init_temp_ext", |l| unsafe {
            (l.llama_sampler_init_temp_ext)(t, delta, exponent)
        })
    }

    /// Exclude-top-choices sampling.
    pub fn xtc(self, p: f32, t: f32, min_keep: usize, seed: u32) -> Self {
        self.with_probability("xtc_probability", p, |s| {
            // SAFETY: value arguments.
            s.push("llama_sampler_init_xtc", |l| unsafe {
                (l.llama_sampler_init_xtc)(p, t, min_keep, seed)
            })
        })
    }

    /// Top-n-sigma sampling.
    pub fn top_n_sigma(self, n: f32) -> Self {
        // SAFETY: value argument.
        self.push("llama_sampler_init_top_n_sigma", |l| unsafe {
            (l.llama_sampler_init_top_n_sigma)(n)
        })
    }

    /// Mirostat v1 (selects the token itself: put it last).
    pub fn mirostat(self, seed: u32, tau: f32, eta: f32, m: i32) -> Self {
        let n_vocab = self.model.n_vocab();
        // SAFETY: value arguments.
        self.push("llama_sampler_init_mirostat", |l| unsafe {
            (l.llama_sampler_init_mirostat)(n_vocab, seed, tau, eta, m)
        })
    }

    /// Mirostat v2 (selects the token itself: put it last).
    pub fn mirostat_v2(self, seed: u32, tau: f32, eta: f32) -> Self {
        // SAFETY: value arguments.
        self.push("llama_sampler_init_mirostat_v2", |l| unsafe {
            (l.llama_sampler_init_mirostat_v2)(seed, tau, eta)
        })
    }

    /// Repetition penalties over the last `last_n` tokens.
    pub fn penalties(self, last_n: i32, repeat: f32, frequency: f32, presence: f32) -> Self {
        if repeat <= 0.0
            || !repeat.is_finite()
            || !frequency.is_finite()
            || !presence.is_finite()
            || last_n < -1
        {
            return self.invalid(
                "penalties",
                format!("repeat {repeat} must be > 0, all finite, last_n >= -1"),
            );
        }
        let n_vocab = self.model.n_vocab();
        // SAFETY: value arguments.
        self.push("llama_sampler_init_penalties", |l| unsafe {
            (l.llama_sampler_init_penalties)(n_vocab, last_n, repeat, frequency, presence)
        })
    }

    /// DRY ("don't repeat yourself") penalty.
    pub fn dry(
        mut self,
        multiplier: f32,
        base: f32,
        allowed_length: i32,
        last_n: i32,
        breakers: &[&str],
    ) -> Self {
        let breakers: std::result::Result<Vec<CString>, Error> = breakers
            .iter()
            .map(|b| to_cstring("dry sequence breaker", b))
            .collect();
        let breakers = match breakers {
            Ok(b) => b,
            Err(e) => {
                self.error.get_or_insert(e);
                return self;
            }
        };
        let mut pointers: Vec<*const std::ffi::c_char> =
            breakers.iter().map(|b| b.as_ptr()).collect();
        let vocab = self.model.vocab();
        self.needs_model = true;
        // SAFETY: live vocab; `pointers` holds breakers.len() valid C strings that live for the
        // call (llama.cpp copies them).
        self.push("llama_sampler_init_dry", |l| unsafe {
            (l.llama_sampler_init_dry)(
                vocab,
                multiplier,
                base,
                allowed_length,
                last_n,
                pointers.as_mut_ptr(),
                pointers.len(),
            )
        })
    }

    /// Adds `bias` to the logits of the given tokens.
    pub fn logit_bias(mut self, biases: &[(Token, f32)]) -> Self {
        for (token, _) in biases {
            if let Err(e) = self.model.check_token(*token) {
                self.error.get_or_insert(e);
                return self;
            }
        }
        let raw: Vec<sys::llama_logit_bias> = biases
            .iter()
            .map(|(t, b)| sys::llama_logit_bias {
                token: t.0,
                bias: *b,
            })
            .collect();
        let n_vocab = self.model.n_vocab();
        // SAFETY: `raw` has len entries with in-range tokens; llama.cpp copies them.
        self.push("llama_sampler_init_logit_bias", |l| unsafe {
            (l.llama_sampler_init_logit_bias)(n_vocab, raw.len() as i32, raw.as_ptr())
        })
    }

    /// Constrains output to a GBNF grammar starting at rule `root`. A grammar that does not parse
    /// is an `InvalidArgument` error from [`Self::build`].
    pub fn grammar(mut self, grammar: &str, root: &str) -> Self {
        let (grammar_c, root_c) = match (
            to_cstring("grammar", grammar),
            to_cstring("grammar root", root),
        ) {
            (Ok(g), Ok(r)) => (g, r),
            (Err(e), _) | (_, Err(e)) => {
                self.error.get_or_insert(e);
                return self;
            }
        };
        let vocab = self.model.vocab();
        self.needs_model = true;
        // SAFETY: live vocab and valid C strings for the call.
        let this = self.push("llama_sampler_init_grammar", |l| unsafe {
            (l.llama_sampler_init_grammar)(vocab, grammar_c.as_ptr(), root_c.as_ptr())
        });
        grammar_error(this, "grammar")
    }

    /// A grammar that activates only after one of `trigger_patterns` (regexes) or
    /// `trigger_tokens` appears.
    pub fn grammar_lazy(
        mut self,
        grammar: &str,
        root: &str,
        trigger_patterns: &[&str],
        trigger_tokens: &[Token],
    ) -> Self {
        let strings: std::result::Result<Vec<CString>, Error> =
            std::iter::once(to_cstring("grammar", grammar))
                .chain(std::iter::once(to_cstring("grammar root", root)))
                .chain(
                    trigger_patterns
                        .iter()
                        .map(|p| to_cstring("trigger pattern", p)),
                )
                .collect();
        let strings = match strings {
            Ok(s) => s,
            Err(e) => {
                self.error.get_or_insert(e);
                return self;
            }
        };
        for token in trigger_tokens {
            if let Err(e) = self.model.check_token(*token) {
                self.error.get_or_insert(e);
                return self;
            }
        }
        let mut patterns: Vec<*const std::ffi::c_char> =
            strings[2..].iter().map(|s| s.as_ptr()).collect();
        let vocab = self.model.vocab();
        self.needs_model = true;
        // SAFETY: live vocab; valid C strings and token array for the call (Token is
        // repr(transparent) over llama_token).
        let this = self.push("llama_sampler_init_grammar_lazy_patterns", |l| unsafe {
            (l.llama_sampler_init_grammar_lazy_patterns)(
                vocab,
                strings[0].as_ptr(),
                strings[1].as_ptr(),
                patterns.as_mut_ptr(),
                patterns.len(),
                trigger_tokens.as_ptr().cast(),
                trigger_tokens.len(),
            )
        });
        grammar_error(this, "lazy grammar")
    }

    /// Fill-in-the-middle helper sampler.
    pub fn infill(mut self) -> Self {
        let vocab = self.model.vocab();
        self.needs_model = true;
        // SAFETY: live vocab.
        self.push("llama_sampler_init_infill", |l| unsafe {
            (l.llama_sampler_init_infill)(vocab)
        })
    }

    /// Finishes the chain.
    ///
    /// # Errors
    /// The first error met while building.
    pub fn build(self) -> Result<Sampler> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut chain = self.chain.ok_or(Error::Null {
            function: "llama_sampler_chain_init",
            detail: String::new(),
        })?;
        if self.needs_model {
            chain._model = Some(self.model);
        }
        Ok(chain)
    }
}

fn grammar_error(mut builder: SamplerBuilder, what: &'static str) -> SamplerBuilder {
    if let Some(Error::Null { .. }) = builder.error {
        builder.error = Some(Error::InvalidArgument {
            parameter: what,
            reason: "llama.cpp could not parse it (see the llama.cpp log for the position)".into(),
        });
    }
    builder
}
