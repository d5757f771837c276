//! The tokenizer: text <-> token ids, special tokens, token checks.

use super::Model;
use crate::error::{Error, Result};
use crate::ffi::{buffers, RawToken, TOKEN_NULL};
use crate::token::Token;

/// `LLAMA_VOCAB_TYPE_NONE`: no tokenizer.
const VOCAB_TYPE_NONE: i32 = 0;
/// `LLAMA_VOCAB_TYPE_WPM`: BERT's WordPiece (always adds CLS/BOS and SEP).
const VOCAB_TYPE_WPM: i32 = 3;

impl Model {
    /// Vocabulary size.
    #[doc(alias = "llama_vocab_n_tokens")]
    pub fn n_vocab(&self) -> i32 {
        self.inner.facts.n_vocab
    }

    /// Vocabulary type (`LLAMA_VOCAB_TYPE_*`: 1 SPM, 2 BPE, 3 WPM, 4 UGM, 5 RWKV, 6 PLAMO2).
    #[doc(alias = "llama_vocab_type")]
    pub fn vocab_type(&self) -> i32 {
        // SAFETY: a live vocab.
        unsafe { self.api().vocab_type(self.vocab()) }
    }

    fn special(&self, id: RawToken) -> Option<Token> {
        (id != TOKEN_NULL && self.check_token(Token(id)).is_ok()).then_some(Token(id))
    }

    /// Beginning-of-sequence token.
    #[doc(alias = "llama_vocab_bos")]
    pub fn token_bos(&self) -> Option<Token> {
        // SAFETY: a live vocab.
        self.special(unsafe { self.api().vocab_bos(self.vocab()) })
    }
    /// End-of-sequence token.
    #[doc(alias = "llama_vocab_eos")]
    pub fn token_eos(&self) -> Option<Token> {
        // SAFETY: a live vocab.
        self.special(unsafe { self.api().vocab_eos(self.vocab()) })
    }
    /// End-of-turn token.
    #[doc(alias = "llama_vocab_eot")]
    pub fn token_eot(&self) -> Option<Token> {
        // SAFETY: a live vocab.
        self.special(unsafe { self.api().vocab_eot(self.vocab()) })
    }
    /// Sentence separator token.
    #[doc(alias = "llama_vocab_sep")]
    pub fn token_sep(&self) -> Option<Token> {
        // SAFETY: a live vocab.
        self.special(unsafe { self.api().vocab_sep(self.vocab()) })
    }
    /// Newline token.
    #[doc(alias = "llama_vocab_nl")]
    pub fn token_nl(&self) -> Option<Token> {
        // SAFETY: a live vocab.
        self.special(unsafe { self.api().vocab_nl(self.vocab()) })
    }
    /// Padding token.
    #[doc(alias = "llama_vocab_pad")]
    pub fn token_pad(&self) -> Option<Token> {
        // SAFETY: a live vocab.
        self.special(unsafe { self.api().vocab_pad(self.vocab()) })
    }
    /// Fill-in-the-middle prefix token.
    #[doc(alias = "llama_vocab_fim_pre")]
    pub fn token_fim_pre(&self) -> Option<Token> {
        // SAFETY: a live vocab.
        self.special(unsafe { self.api().vocab_fim_pre(self.vocab()) })
    }
    /// Fill-in-the-middle suffix token.
    #[doc(alias = "llama_vocab_fim_suf")]
    pub fn token_fim_suf(&self) -> Option<Token> {
        // SAFETY: a live vocab.
        self.special(unsafe { self.api().vocab_fim_suf(self.vocab()) })
    }
    /// Fill-in-the-middle middle token.
    #[doc(alias = "llama_vocab_fim_mid")]
    pub fn token_fim_mid(&self) -> Option<Token> {
        // SAFETY: a live vocab.
        self.special(unsafe { self.api().vocab_fim_mid(self.vocab()) })
    }

    /// Whether `token` ends generation (EOS, EOT, ...); `false` for ids outside the vocabulary.
    #[doc(alias = "llama_vocab_is_eog")]
    pub fn is_end_of_generation(&self, token: Token) -> bool {
        if self.check_token(token).is_err() {
            return false;
        }
        // SAFETY: a live vocab; token checked to be in range (the C side indexes with `.at()`).
        unsafe { self.api().vocab_is_eog(self.vocab(), token.0) }
    }

    /// `Ok` when the model has a tokenizer (llama.cpp asserts on one whose vocabulary type is
    /// `none`).
    fn require_tokenizer(&self) -> Result<()> {
        if self.vocab_type() == VOCAB_TYPE_NONE {
            return Err(Error::NotSupported {
                operation: "tokenization",
                reason: format!(
                    "{} has no tokenizer (vocabulary type none)",
                    self.path().display()
                ),
            });
        }
        Ok(())
    }

    /// `Ok` when the special tokens `add_special` would add exist (llama.cpp asserts on a
    /// model that asks for a BOS, EOS or SEP it does not have; WPM always adds CLS and SEP).
    fn check_add_special(&self) -> Result<()> {
        let api = self.api();
        let vocab = self.vocab();
        // SAFETY: a live vocab; plain getters.
        let (add_bos, add_eos, add_sep) = unsafe {
            (
                api.vocab_get_add_bos(vocab),
                api.vocab_get_add_eos(vocab),
                api.vocab_get_add_sep(vocab),
            )
        };
        let wpm = self.vocab_type() == VOCAB_TYPE_WPM;
        let missing = [
            ("BOS", add_bos || wpm, self.token_bos()),
            ("EOS", add_eos && !wpm, self.token_eos()),
            ("SEP", add_sep || wpm, self.token_sep()),
        ]
        .into_iter()
        .find(|(_, wanted, token)| *wanted && token.is_none());
        match missing {
            Some((name, _, _)) => Err(Error::InvalidArgument {
                parameter: "add_special",
                reason: format!(
                    "{} asks for a {name} token it does not define (tokenize with add_special = false)",
                    self.path().display()
                ),
            }),
            None => Ok(()),
        }
    }

    /// `Ok` if `token` is in the vocabulary.
    ///
    /// # Errors
    /// [`Error::TokenOutOfRange`] otherwise.
    pub fn check_token(&self, token: Token) -> Result<()> {
        let n_vocab = self.n_vocab();
        if token.0 < 0 || token.0 >= n_vocab {
            return Err(Error::TokenOutOfRange {
                token: token.0,
                n_vocab,
            });
        }
        Ok(())
    }

    /// Checks every token of `tokens`.
    ///
    /// # Errors
    /// [`Error::TokenOutOfRange`] for the first id outside the vocabulary.
    pub fn check_tokens(&self, tokens: &[Token]) -> Result<()> {
        tokens.iter().try_for_each(|t| self.check_token(*t))
    }

    /// Tokenizes `text`. `add_special` adds BOS/EOS as the model wants; `parse_special` turns
    /// special-token text (`<|im_start|>`) into special tokens. Interior NUL bytes are ordinary
    /// characters here (the text is passed with its length).
    ///
    /// # Errors
    /// `InvalidArgument` for text over 2 GiB or one that gives more tokens than can be counted,
    /// `add_special` on a model that lacks a special token it asks for, or, with a
    /// SentencePiece vocabulary that lacks some byte tokens, text with a character only those
    /// could spell (llama.cpp's tokenizer would throw); `NotSupported` for a
    /// model without a tokenizer; `TokenOutOfRange` with the BitNet fork when its tokenizer
    /// adds a special id outside the vocabulary (its WordPiece CLS/SEP defaults).
    #[doc(alias = "llama_tokenize")]
    pub fn tokenize(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<Token>> {
        self.require_tokenizer()?;
        if add_special {
            self.check_add_special()?;
        }
        if let Some(guard) = &self.inner.facts.byte_fallback {
            guard.check(text).map_err(|reason| Error::InvalidArgument {
                parameter: "text",
                reason,
            })?;
        }
        let len = i32::try_from(text.len()).map_err(|_| Error::InvalidArgument {
            parameter: "text",
            reason: format!("{} bytes is longer than 2 GiB", text.len()),
        })?;
        let tokens = buffers::negated_length::<RawToken>(text.len() / 2 + 8, |buf, capacity| {
            // SAFETY: a live vocab; `text` has `len` bytes; `buf` has `capacity` slots.
            unsafe {
                self.api().tokenize(
                    self.vocab(),
                    text.as_ptr().cast(),
                    len,
                    buf,
                    capacity,
                    add_special,
                    parse_special,
                )
            }
        })
        .ok_or(Error::InvalidArgument {
            parameter: "text",
            reason: "gives more tokens than llama.cpp can count".into(),
        })?;
        let tokens: Vec<Token> = tokens.into_iter().map(Token).collect();
        if self.api().quirks().tokenizer_ids_unchecked {
            self.check_tokens(&tokens)?;
        }
        Ok(tokens)
    }

    /// The bytes of one token (`special`: render special tokens as text).
    ///
    /// # Errors
    /// [`Error::TokenOutOfRange`].
    #[doc(alias = "llama_token_to_piece")]
    pub fn token_to_bytes(&self, token: Token, special: bool) -> Result<Vec<u8>> {
        self.check_token(token)?;
        self.require_tokenizer()?;
        buffers::negated_length::<u8>(32, |buf, capacity| {
            // SAFETY: a live vocab; token in range; `buf` has `capacity` bytes.
            unsafe {
                self.api()
                    .token_to_piece(self.vocab(), token.0, buf.cast(), capacity, 0, special)
            }
        })
        .ok_or(Error::InvalidArgument {
            parameter: "token",
            reason: format!("llama.cpp could not render token {token}"),
        })
    }

    /// The text of one token.
    ///
    /// # Errors
    /// [`Error::TokenOutOfRange`]; `InvalidUtf8` when the token is a partial character (use
    /// [`Self::token_to_bytes`] or the streaming generator, which joins pieces).
    #[doc(alias = "llama_token_to_piece")]
    pub fn token_to_piece(&self, token: Token, special: bool) -> Result<String> {
        let bytes = self.token_to_bytes(token, special)?;
        String::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
            what: "token piece",
            valid_up_to: e.utf8_error().valid_up_to(),
        })
    }

    /// Turns tokens back into text.
    ///
    /// # Errors
    /// [`Error::TokenOutOfRange`]; `InvalidUtf8` when the bytes are not UTF-8.
    #[doc(alias = "llama_detokenize")]
    pub fn detokenize(
        &self,
        tokens: &[Token],
        remove_special: bool,
        unparse_special: bool,
    ) -> Result<String> {
        self.check_tokens(tokens)?;
        self.require_tokenizer()?;
        let n_tokens = i32::try_from(tokens.len()).map_err(|_| Error::InvalidArgument {
            parameter: "tokens",
            reason: format!("{} tokens are more than llama.cpp can take", tokens.len()),
        })?;
        let bytes = buffers::negated_length::<u8>(tokens.len() * 8 + 16, |buf, capacity| {
            // SAFETY: Token is repr(transparent) over the C token type; all ids checked; `buf`
            // has `capacity` bytes.
            unsafe {
                self.api().detokenize(
                    self.vocab(),
                    tokens.as_ptr().cast(),
                    n_tokens,
                    buf.cast(),
                    capacity,
                    remove_special,
                    unparse_special,
                )
            }
        })
        .ok_or(Error::InvalidArgument {
            parameter: "tokens",
            reason: "llama.cpp could not detokenize them".into(),
        })?;
        String::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
            what: "detokenized text",
            valid_up_to: e.utf8_error().valid_up_to(),
        })
    }
}
