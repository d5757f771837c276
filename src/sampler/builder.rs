//! [`SamplerBuilder`]: filters in any order, then exactly one picker, then `build`.
//!
//! The state parameter makes the shape a compile-time fact:
//!
//! ```compile_fail
//! # fn f(model: &gguf_loader::Model) {
//! // A chain of filters only has no `build`.
//! let _ = gguf_loader::Sampler::builder(model).top_k(40).build();
//! # }
//! ```
//!
//! ```compile_fail
//! # fn f(model: &gguf_loader::Model) {
//! // Nothing can follow the picker.
//! let _ = gguf_loader::Sampler::builder(model).greedy().top_k(40);
//! # }
//! ```
//!
//! ```no_run
//! # fn f(model: &gguf_loader::Model) -> gguf_loader::Result<()> {
//! let sampler = gguf_loader::Sampler::builder(model).top_k(40).temp(0.8).dist(42).build()?;
//! # Ok(()) }
//! ```

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

use super::checks::{self, finite, in_range, invalid};
use super::lazy::LazyTrigger;
use super::{Kind, Sampler};
use crate::error::{Error, Result};
use crate::ffi::LogitBias;
use crate::ffi::{strings, Api, RawSampler};
use crate::model::Model;
use crate::token::Token;

/// The smallest positive temperature (a logit divided by less overflows to infinity).
pub const MIN_TEMPERATURE: f32 = 1e-6;

/// At most this many candidates may reach the infill sampler, which compares every pair.
pub const MAX_INFILL_CANDIDATES: i32 = 1000;

/// Builder state: filters may be added; a picker finishes the chain.
#[derive(Debug)]
pub struct Open;

/// Builder state: the chain ends with a picker; only [`SamplerBuilder::build`] is left.
#[derive(Debug)]
pub struct Complete;

/// Builds a sampler chain. Each method appends one sampler; the first error (an invalid
/// parameter, a NULL from llama.cpp, a grammar that does not parse) is kept and returned by
/// [`Self::build`].
pub struct SamplerBuilder<State = Open> {
    chain: Option<Sampler>,
    model: Model,
    error: Option<Error>,
    _state: PhantomData<State>,
}

impl<S> std::fmt::Debug for SamplerBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamplerBuilder")
            .field("chain", &self.chain)
            .field("error", &self.error)
            .finish()
    }
}

impl SamplerBuilder<Open> {
    pub(super) fn new(model: &Model) -> Self {
        let api = model.api();
        // SAFETY: plain value arguments; returns a new chain or NULL.
        let raw = unsafe { api.sampler_chain_init(false) };
        let (chain, error) = match NonNull::new(raw) {
            Some(raw) => (
                Some(Sampler {
                    model: model.clone(),
                    raw,
                    kinds: Vec::new(),
                    lazy: None,
                    candidates: Vec::new(),
                    smallest_top_k: None,
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
            chain,
            model: model.clone(),
            error,
            _state: PhantomData,
        }
    }

    /// Appends the sampler `make` returns (unless an error is pending).
    fn push(
        self,
        kind: Kind,
        function: &'static str,
        make: impl FnOnce(Api<'_>) -> *mut RawSampler,
    ) -> Self {
        self.push_checked(kind, function, |api| Ok(make(api)))
    }

    /// As [`Self::push`], for a sampler the loaded build may lack (`Unsupported`).
    fn push_checked(
        mut self,
        kind: Kind,
        function: &'static str,
        make: impl FnOnce(Api<'_>) -> Result<*mut RawSampler>,
    ) -> Self {
        if self.error.is_some() {
            return self;
        }
        let Some(chain) = self.chain.as_mut() else {
            return self;
        };
        let api = chain.model.api();
        let raw = match make(api) {
            Ok(raw) => raw,
            Err(e) => {
                self.error = Some(e);
                return self;
            }
        };
        let Some(sampler) = NonNull::new(raw) else {
            self.error = Some(Error::Null {
                function,
                detail: String::new(),
            });
            return self;
        };
        // SAFETY: both live; the chain takes ownership of `sampler` (freed with the chain).
        unsafe { api.sampler_chain_add(chain.raw.as_ptr(), sampler.as_ptr()) };
        chain.kinds.push(kind);
        self
    }

    /// Runs `check`; on error keeps it (the chain is not extended) and returns `None`.
    fn check<T>(&mut self, check: impl FnOnce(&Model) -> Result<T>) -> Option<T> {
        if self.error.is_some() {
            return None;
        }
        match check(&self.model) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    fn fail(mut self, error: Error) -> Self {
        self.error.get_or_insert(error);
        self
    }

    /// Keeps the `k` most likely tokens (`k >= 1`; llama.cpp ignores `k <= 0`).
    #[doc(alias = "llama_sampler_init_top_k")]
    pub fn top_k(mut self, k: i32) -> Self {
        if self.check(|_| if k >= 1 { Ok(()) } else { Err(invalid("top_k", format!("{k} must be >= 1 (llama.cpp ignores k <= 0: leave the sampler out to keep every token)"))) }).is_none() {
            return self;
        }
        if let Some(chain) = self.chain.as_mut() {
            chain.smallest_top_k = Some(chain.smallest_top_k.map_or(k, |s| s.min(k)));
        }
        // SAFETY: a value argument in range.
        self.push(Kind::Filter, "llama_sampler_init_top_k", |a| unsafe {
            a.sampler_init_top_k(k)
        })
    }

    /// Nucleus sampling: the smallest set of tokens whose probabilities reach `p` (`0 < p <= 1`;
    /// 1 keeps every token, so nothing is added).
    #[doc(alias = "llama_sampler_init_top_p")]
    pub fn top_p(mut self, p: f32, min_keep: usize) -> Self {
        let Some(p) = self.check(|_| in_range("top_p", p, f32::MIN_POSITIVE, 1.0)) else {
            return self;
        };
        if p >= 1.0 {
            return self;
        }
        // SAFETY: value arguments in range.
        self.push(Kind::Filter, "llama_sampler_init_top_p", |a| unsafe {
            a.sampler_init_top_p(p, min_keep)
        })
    }

    /// Min-p sampling: drops tokens below `p` times the best one's probability (`0..=1`; 0
    /// keeps every token, so nothing is added).
    #[doc(alias = "llama_sampler_init_min_p")]
    pub fn min_p(mut self, p: f32, min_keep: usize) -> Self {
        let Some(p) = self.check(|_| in_range("min_p", p, 0.0, 1.0)) else {
            return self;
        };
        if p <= 0.0 {
            return self;
        }
        // SAFETY: value arguments in range.
        self.push(Kind::Filter, "llama_sampler_init_min_p", |a| unsafe {
            a.sampler_init_min_p(p, min_keep)
        })
    }

    /// Locally typical sampling (`0 < p <= 1`; 1 keeps every token, so nothing is added).
    #[doc(alias = "llama_sampler_init_typical")]
    pub fn typical(mut self, p: f32, min_keep: usize) -> Self {
        let Some(p) = self.check(|_| in_range("typical_p", p, f32::MIN_POSITIVE, 1.0)) else {
            return self;
        };
        if p >= 1.0 {
            return self;
        }
        // SAFETY: value arguments in range.
        self.push(Kind::Filter, "llama_sampler_init_typical", |a| unsafe {
            a.sampler_init_typical(p, min_keep)
        })
    }

    /// Temperature (finite, `>= 0`; 0 keeps only the most likely token; 1 changes nothing,
    /// so nothing is added).
    #[doc(alias = "llama_sampler_init_temp")]
    pub fn temp(mut self, t: f32) -> Self {
        let Some(t) = self.check(|_| {
            finite("temperature", t)?;
            if t < 0.0 || (t > 0.0 && t < MIN_TEMPERATURE) {
                return Err(invalid(
                    "temperature",
                    format!("{t} must be 0 or at least {MIN_TEMPERATURE} (logits / t overflows to NaN below)"),
                ));
            }
            Ok(t)
        }) else {
            return self;
        };
        if t == 1.0 {
            return self;
        }
        // SAFETY: a value argument in range.
        self.push(Kind::Filter, "llama_sampler_init_temp", |a| unsafe {
            a.sampler_init_temp(t)
        })
    }

    /// Dynamic temperature: `t ± delta`, shaped by `exponent` (all finite; `t, delta >= 0`,
    /// `exponent > 0`).
    #[doc(alias = "llama_sampler_init_temp_ext")]
    pub fn temp_ext(mut self, t: f32, delta: f32, exponent: f32) -> Self {
        if self
            .check(|_| {
                finite("temperature", t)?;
                finite("dynatemp_range", delta)?;
                finite("dynatemp_exponent", exponent)?;
                if t < 0.0 || delta < 0.0 || exponent <= 0.0 {
                    return Err(invalid(
                        "temperature",
                        format!("t {t} and delta {delta} must be >= 0, exponent {exponent} > 0"),
                    ));
                }
                Ok(())
            })
            .is_none()
        {
            return self;
        }
        if t == 1.0 && delta == 0.0 {
            return self;
        }
        // SAFETY: value arguments in range.
        self.push(Kind::Filter, "llama_sampler_init_temp_ext", |a| unsafe {
            a.sampler_init_temp_ext(t, delta, exponent)
        })
    }

    /// Exclude-top-choices: with probability `p` (`0 < p <= 1`), drops the tokens above
    /// `threshold` (`0..=0.5`; llama.cpp ignores larger thresholds) but the least likely of
    /// them.
    #[doc(alias = "llama_sampler_init_xtc")]
    pub fn xtc(mut self, p: f32, threshold: f32, min_keep: usize, seed: u32) -> Self {
        if self
            .check(|_| {
                in_range("xtc_probability", p, f32::MIN_POSITIVE, 1.0)?;
                in_range("xtc_threshold", threshold, 0.0, 0.5)
            })
            .is_none()
        {
            return self;
        }
        // SAFETY: value arguments in range.
        self.push_checked(Kind::Filter, "llama_sampler_init_xtc", |a| unsafe {
            a.sampler_init_xtc(p, threshold, min_keep, seed)
        })
    }

    /// Top-n-sigma: keeps tokens within `n` standard deviations of the best logit (finite,
    /// `> 0`; llama.cpp ignores `n <= 0`).
    #[doc(alias = "llama_sampler_init_top_n_sigma")]
    pub fn top_n_sigma(mut self, n: f32) -> Self {
        if self
            .check(|_| {
                finite("top_n_sigma", n)?;
                if n <= 0.0 {
                    return Err(invalid(
                        "top_n_sigma",
                        format!("{n} must be > 0 (llama.cpp ignores n <= 0)"),
                    ));
                }
                Ok(())
            })
            .is_none()
        {
            return self;
        }
        // SAFETY: a value argument in range.
        self.push_checked(Kind::Filter, "llama_sampler_init_top_n_sigma", |a| unsafe {
            a.sampler_init_top_n_sigma(n)
        })
    }

    /// Repetition penalties over the last `last_n` tokens (`1..=n_ctx_train`): `repeat > 0`
    /// (1: none), `frequency` and `presence` finite (0: none). All neutral adds nothing.
    #[doc(alias = "llama_sampler_init_penalties")]
    pub fn penalties(mut self, last_n: i32, repeat: f32, frequency: f32, presence: f32) -> Self {
        let Some(n_vocab) = self.check(|m| {
            checks::last_n("penalty_last_n", last_n, m.n_ctx_train().max(1))?;
            finite("repeat_penalty", repeat)?;
            finite("frequency_penalty", frequency)?;
            finite("presence_penalty", presence)?;
            if repeat <= 0.0 {
                return Err(invalid("repeat_penalty", format!("{repeat} must be > 0")));
            }
            Ok(m.n_vocab())
        }) else {
            return self;
        };
        if repeat == 1.0 && frequency == 0.0 && presence == 0.0 {
            return self;
        }
        // SAFETY: value arguments in range; last_n bounded (it sizes a ring buffer).
        self.push(Kind::Filter, "llama_sampler_init_penalties", |a| unsafe {
            a.sampler_init_penalties(n_vocab, last_n, repeat, frequency, presence)
        })
    }

    /// DRY ("don't repeat yourself"): penalises extending a repetition longer than
    /// `allowed_length` tokens by `multiplier * base^(length - allowed_length)`, looking back
    /// `last_n` tokens (`1..=n_ctx_train`); `breakers` (at most 64, each 1..=40 bytes) end a
    /// repetition. `multiplier` 0 adds nothing; `base >= 1`.
    #[doc(alias = "llama_sampler_init_dry")]
    pub fn dry(
        mut self,
        multiplier: f32,
        base: f32,
        allowed_length: i32,
        last_n: i32,
        breakers: &[&str],
    ) -> Self {
        let checked = self.check(|m| {
            finite("dry_multiplier", multiplier)?;
            finite("dry_base", base)?;
            if multiplier < 0.0 {
                return Err(invalid(
                    "dry_multiplier",
                    format!("{multiplier} must be >= 0"),
                ));
            }
            if base < 1.0 {
                return Err(invalid(
                    "dry_base",
                    format!("{base} must be >= 1 (llama.cpp silently disables DRY below 1)"),
                ));
            }
            if allowed_length < 0 {
                return Err(invalid(
                    "dry_allowed_length",
                    format!("{allowed_length} must be >= 0"),
                ));
            }
            checks::last_n("dry_penalty_last_n", last_n, m.n_ctx_train().max(1))?;
            if allowed_length > last_n {
                return Err(invalid(
                    "dry_allowed_length",
                    format!("{allowed_length} is longer than dry_penalty_last_n {last_n}"),
                ));
            }
            checks::dry_breakers(breakers)?;
            breakers
                .iter()
                .map(|b| strings::text(b).map_err(|e| invalid("dry_sequence_breakers", e.reason())))
                .collect::<Result<Vec<CString>>>()
        });
        let Some(breakers) = checked else {
            return self;
        };
        if multiplier == 0.0 {
            return self;
        }
        let mut pointers: Vec<*const std::ffi::c_char> =
            breakers.iter().map(|b| b.as_ptr()).collect();
        let vocab = self.model.vocab();
        // SAFETY: a live vocab; `pointers` holds breakers.len() (<= 64) valid C strings that
        // live for the call (llama.cpp copies them); every value checked above.
        self.push_checked(Kind::Filter, "llama_sampler_init_dry", |a| unsafe {
            a.sampler_init_dry(
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

    /// Adds `bias` to the logits of the given tokens (ids in the vocabulary; biases finite, or
    /// `-inf` to ban a token; an empty list adds nothing).
    #[doc(alias = "llama_sampler_init_logit_bias")]
    pub fn logit_bias(mut self, biases: &[(Token, f32)]) -> Self {
        let Some(n_vocab) = self.check(|m| {
            for (token, bias) in biases {
                m.check_token(*token)?;
                if bias.is_nan() || *bias == f32::INFINITY {
                    return Err(invalid(
                        "logit_bias",
                        format!("{bias} for token {token}: finite, or -inf to ban the token"),
                    ));
                }
            }
            i32::try_from(biases.len()).map_err(|_| invalid("logit_bias", "too many biases"))?;
            Ok(m.n_vocab())
        }) else {
            return self;
        };
        if biases.is_empty() {
            return self;
        }
        let raw: Vec<LogitBias> = biases
            .iter()
            .map(|(t, b)| LogitBias {
                token: t.0,
                bias: *b,
            })
            .collect();
        // SAFETY: `raw` has len entries with in-range tokens; llama.cpp copies them.
        self.push(Kind::Filter, "llama_sampler_init_logit_bias", |a| unsafe {
            a.sampler_init_logit_bias(n_vocab, raw.len() as i32, raw.as_ptr())
        })
    }

    fn has_grammar(&self) -> bool {
        self.chain.as_ref().is_some_and(|c| {
            c.kinds
                .iter()
                .any(|k| matches!(k, Kind::Grammar | Kind::LazyGrammar))
        })
    }

    /// Appends an eager grammar sampler of `kind`.
    fn push_grammar(mut self, kind: Kind, grammar: &str, root: &str) -> Self {
        let checked = self.check(|_| {
            checks::grammar(grammar, root)?;
            let g = strings::text(grammar).map_err(|e| invalid("grammar", e.reason()))?;
            let r = strings::text(root).map_err(|e| invalid("grammar root", e.reason()))?;
            Ok((g, r))
        });
        let Some((grammar_c, root_c)) = checked else {
            return self;
        };
        if self.has_grammar() {
            return self.fail(invalid("grammar", "a chain takes one grammar"));
        }
        let vocab = self.model.vocab();
        // SAFETY: a live vocab and valid C strings for the call; the grammar text was
        // pre-checked (size, nesting); llama.cpp catches its parser's exceptions and returns
        // NULL for a grammar that does not parse.
        let this = self.push_checked(kind, "llama_sampler_init_grammar", |a| unsafe {
            a.sampler_init_grammar(vocab, grammar_c.as_ptr(), root_c.as_ptr())
        });
        this.grammar_error()
    }

    /// Constrains output to a GBNF grammar starting at rule `root`. A grammar that does not
    /// parse is an `InvalidArgument` error from [`Self::build`].
    #[doc(alias = "llama_sampler_init_grammar")]
    pub fn grammar(self, grammar: &str, root: &str) -> Self {
        self.push_grammar(Kind::Grammar, grammar, root)
    }

    /// A grammar that applies only once one of `trigger_patterns` (regular expressions of the
    /// `regex` crate; `^...$` must match all text generated so far, others anywhere in it) or
    /// `trigger_tokens` appears. The text from the trigger on (the first non-empty capture
    /// group, else the match) must fit the grammar.
    #[doc(alias = "llama_sampler_init_grammar_lazy_patterns")]
    pub fn grammar_lazy(
        mut self,
        grammar: &str,
        root: &str,
        trigger_patterns: &[&str],
        trigger_tokens: &[Token],
    ) -> Self {
        let trigger = self.check(|m| {
            m.check_tokens(trigger_tokens)?;
            LazyTrigger::new(trigger_patterns, trigger_tokens)
        });
        let Some(trigger) = trigger else {
            return self;
        };
        let mut this = self.push_grammar(Kind::LazyGrammar, grammar, root);
        if this.error.is_none() {
            if let Some(chain) = this.chain.as_mut() {
                chain.lazy = Some(trigger);
            }
        }
        this
    }

    /// Fill-in-the-middle helper sampler. It compares every pair of candidates, so a
    /// `top_k` of at most [`MAX_INFILL_CANDIDATES`] must come before it; the model needs an EOT
    /// or EOS token and token pieces of at most 512 bytes (llama.cpp's scratch buffers).
    #[doc(alias = "llama_sampler_init_infill")]
    pub fn infill(mut self) -> Self {
        let bounded = self.chain.as_ref().and_then(|c| c.smallest_top_k);
        let checked = self.check(|m| {
            if !bounded.is_some_and(|k| k <= MAX_INFILL_CANDIDATES) {
                return Err(invalid(
                    "infill",
                    format!("needs top_k(k <= {MAX_INFILL_CANDIDATES}) before it (it compares every pair of candidates)"),
                ));
            }
            if m.token_eot().is_none() && m.token_eos().is_none() {
                return Err(Error::NotSupported {
                    operation: "infill",
                    reason: "the model has neither an EOT nor an EOS token".into(),
                });
            }
            if let Some(long) = (0..m.n_vocab())
                .map(Token)
                .find(|t| m.token_to_bytes(*t, false).map_or(true, |b| b.len() > 512))
            {
                return Err(Error::NotSupported {
                    operation: "infill",
                    reason: format!("token {long}'s text is longer than 512 bytes"),
                });
            }
            Ok(())
        });
        if checked.is_none() {
            return self;
        }
        let vocab = self.model.vocab();
        // SAFETY: a live vocab.
        self.push_checked(Kind::Filter, "llama_sampler_init_infill", |a| unsafe {
            a.sampler_init_infill(vocab)
        })
    }

    fn finish(
        self,
        function: &'static str,
        make: impl FnOnce(Api<'_>) -> *mut RawSampler,
    ) -> SamplerBuilder<Complete> {
        let SamplerBuilder {
            chain,
            model,
            error,
            ..
        } = self.push(Kind::Picker, function, make);
        SamplerBuilder {
            chain,
            model,
            error,
            _state: PhantomData,
        }
    }

    /// Picks the most likely token.
    #[doc(alias = "llama_sampler_init_greedy")]
    pub fn greedy(self) -> SamplerBuilder<Complete> {
        // SAFETY: no arguments.
        self.finish("llama_sampler_init_greedy", |a| unsafe {
            a.sampler_init_greedy()
        })
    }

    /// Picks at random from the distribution, seeded (same seed, same choices).
    #[doc(alias = "llama_sampler_init_dist")]
    pub fn dist(self, seed: u32) -> SamplerBuilder<Complete> {
        // SAFETY: a value argument.
        self.finish("llama_sampler_init_dist", |a| unsafe {
            a.sampler_init_dist(seed)
        })
    }

    fn mirostat_params(&mut self, tau: f32, eta: f32) -> bool {
        self.check(|_| {
            finite("mirostat_tau", tau)?;
            finite("mirostat_eta", eta)?;
            if tau < 0.0 || eta < 0.0 {
                return Err(invalid(
                    "mirostat_tau",
                    format!("tau {tau} and eta {eta} must be >= 0"),
                ));
            }
            Ok(())
        })
        .is_some()
    }

    /// Mirostat v1: picks aiming at surprise `tau`, learning rate `eta`, estimating from the
    /// `m` most likely tokens (`2..=n_vocab`).
    #[doc(alias = "llama_sampler_init_mirostat")]
    pub fn mirostat(mut self, seed: u32, tau: f32, eta: f32, m: i32) -> SamplerBuilder<Complete> {
        let n_vocab = self.model.n_vocab();
        if self.mirostat_params(tau, eta) && !(2..=n_vocab.max(2)).contains(&m) {
            self = self.fail(invalid(
                "mirostat_m",
                format!("{m} must be 2..={n_vocab} (m = 1 estimates 0/0)"),
            ));
        }
        // SAFETY: value arguments in range.
        self.finish("llama_sampler_init_mirostat", |a| unsafe {
            a.sampler_init_mirostat(n_vocab, seed, tau, eta, m)
        })
    }

    /// Mirostat v2: picks aiming at surprise `tau` with learning rate `eta`.
    #[doc(alias = "llama_sampler_init_mirostat_v2")]
    pub fn mirostat_v2(mut self, seed: u32, tau: f32, eta: f32) -> SamplerBuilder<Complete> {
        self.mirostat_params(tau, eta);
        // SAFETY: value arguments in range.
        self.finish("llama_sampler_init_mirostat_v2", |a| unsafe {
            a.sampler_init_mirostat_v2(seed, tau, eta)
        })
    }
}

impl<S> SamplerBuilder<S> {
    fn grammar_error(mut self) -> Self {
        if let Some(Error::Null { .. }) = self.error {
            self.error = Some(invalid(
                "grammar",
                "llama.cpp could not parse it (see the llama.cpp log for the position)",
            ));
        }
        self
    }
}

impl SamplerBuilder<Complete> {
    /// Finishes the chain.
    ///
    /// # Errors
    /// The first error met while building.
    pub fn build(self) -> Result<Sampler> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.chain.ok_or(Error::Null {
            function: "llama_sampler_chain_init",
            detail: String::new(),
        })
    }
}
