//! SentencePiece vocabularies without byte tokens: llama.cpp's SPM tokenizer spells a character
//! that is not a token with the byte tokens `<0xXX>`, and when a byte has none (nor a
//! one-character token of its own) `llama_vocab::byte_to_token` throws from `std::map::at`
//! inside `llama_tokenize`, which cannot cross into Rust: the process aborts. Both ABI
//! generations do this. [`ByteFallbackGuard`] knows, from the GGUF file, which bytes lack a
//! fallback, and refuses text that would need one before llama.cpp sees it.

use std::collections::HashSet;

use crate::gguf::{GgufFile, GgufValue};

/// The tokens of an SPM vocabulary that lacks the fallback of some bytes.
#[derive(Debug)]
pub(crate) struct ByteFallbackGuard {
    tokens: HashSet<String>,
    missing: [bool; 256],
}

/// What the SPM tokenizer turns a space into before it looks for tokens.
const SPACE: &str = "\u{2581}";

impl ByteFallbackGuard {
    /// `None` for a vocabulary that is not SentencePiece (`tokenizer.ggml.model` `llama`) or
    /// that has every byte's fallback: the usual case, where nothing needs guarding.
    pub(crate) fn from_file(file: &GgufFile) -> Option<Self> {
        if file.get("tokenizer.ggml.model").and_then(GgufValue::as_str) != Some("llama") {
            return None;
        }
        let Some(GgufValue::Array(list)) = file.get("tokenizer.ggml.tokens") else {
            return None;
        };
        // Borrowed for the scan: the usual vocabulary has every fallback and is not copied.
        let tokens: HashSet<&str> = list
            .iter()
            .filter_map(|t| match t {
                GgufValue::String(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let mut missing = [false; 256];
        for (byte, missing) in missing.iter_mut().enumerate() {
            let hex = format!("<0x{byte:02X}>");
            // The fallback of the fallback: the byte as a one-character string (ASCII only:
            // other single bytes are not UTF-8, so no GGUF token can be one).
            let plain = (byte < 0x80).then(|| char::from(byte as u8).to_string());
            *missing = !tokens.contains(hex.as_str())
                && !plain.is_some_and(|p| tokens.contains(p.as_str()));
        }
        missing.iter().any(|m| *m).then(|| ByteFallbackGuard {
            tokens: tokens.into_iter().map(str::to_owned).collect(),
            missing,
        })
    }

    /// Checks that tokenizing `text` needs no missing fallback: every character (a space as
    /// the tokenizer's `▁`, which it may also add in front) is a token, or all its bytes have
    /// one. A symbol the tokenizer merged is a token by construction, so a single character is
    /// the only thing it spells with bytes. Conservative: a character that is no token but
    /// always merges with its neighbours is refused too (only in vocabularies that lack byte
    /// tokens, where the alternative is an abort).
    ///
    /// # Errors
    /// The reason, naming the character and the byte.
    pub(crate) fn check(&self, text: &str) -> Result<(), String> {
        for piece in std::iter::once(SPACE.to_string()).chain(text.chars().map(|c| {
            if c == ' ' {
                SPACE.to_string()
            } else {
                c.to_string()
            }
        })) {
            if self.tokens.contains(&piece) {
                continue;
            }
            if let Some(byte) = piece.bytes().find(|b| self.missing[usize::from(*b)]) {
                return Err(format!(
                    "{piece:?} is not in the vocabulary and its byte 0x{byte:02X} has no <0x{byte:02X}> token: llama.cpp's tokenizer would throw"
                ));
            }
        }
        Ok(())
    }
}
