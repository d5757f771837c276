//! Token ids.

use std::fmt;

use crate::ffi::RawToken as llama_token;

/// A token id of a model's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Token(pub llama_token);

impl Token {
    /// The raw id.
    pub fn id(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<i32> for Token {
    fn from(id: i32) -> Self {
        Token(id)
    }
}
