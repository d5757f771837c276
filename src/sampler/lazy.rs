//! Lazy grammars, driven from Rust.
//!
//! llama.cpp's own lazy grammar compiles its trigger patterns with `std::regex` (which throws on
//! a pattern it does not accept, across `extern "C"`), and when a trigger fires it replays the
//! triggering text into the grammar, which throws again when that text does not fit the
//! grammar. Here the grammar is an ordinary (eager) grammar sampler that the chain skips until
//! a trigger fires; the patterns are compiled and matched with the `regex` crate, and the
//! triggering text is checked token by token before the grammar accepts it.

use regex::Regex;

use super::checks::{invalid, MAX_TRIGGERS};
use crate::error::Result;
use crate::token::Token;

/// One trigger pattern (llama.cpp's rules: `^...$` must match the whole text so far, anything
/// else is searched; the constrained text starts at the first non-empty capture group, or at
/// the match).
#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    whole: bool,
}

/// The trigger state of a lazy grammar.
#[derive(Debug, Clone)]
pub(crate) struct LazyTrigger {
    patterns: Vec<Pattern>,
    tokens: Vec<Token>,
    /// Text generated while waiting for a trigger.
    buffer: String,
    triggered: bool,
}

impl LazyTrigger {
    /// Compiles the patterns.
    ///
    /// # Errors
    /// `InvalidArgument` for a pattern that does not compile, or when there is no trigger at
    /// all (the grammar would never apply).
    pub(crate) fn new(patterns: &[&str], tokens: &[Token]) -> Result<Self> {
        if patterns.is_empty() && tokens.is_empty() {
            return Err(invalid(
                "grammar triggers",
                "a lazy grammar needs at least one trigger pattern or token (it would never apply)",
            ));
        }
        if patterns.len() > MAX_TRIGGERS || tokens.len() > MAX_TRIGGERS {
            return Err(invalid(
                "grammar triggers",
                format!("at most {MAX_TRIGGERS} patterns and {MAX_TRIGGERS} tokens"),
            ));
        }
        let patterns = patterns
            .iter()
            .map(|p| {
                let regex = Regex::new(p).map_err(|e| {
                    invalid("trigger pattern", format!("{p:?} does not compile: {e}"))
                })?;
                Ok(Pattern {
                    regex,
                    whole: p.starts_with('^') && p.ends_with('$'),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LazyTrigger {
            patterns,
            tokens: tokens.to_vec(),
            buffer: String::new(),
            triggered: false,
        })
    }

    /// Whether the grammar applies now.
    pub(crate) fn is_triggered(&self) -> bool {
        self.triggered
    }

    /// Back to waiting.
    pub(crate) fn reset(&mut self) {
        self.triggered = false;
        self.buffer.clear();
    }

    /// Records `token` (whose text is `piece`) while waiting. Returns what the grammar must now
    /// accept, if this token fires a trigger: the token itself (a trigger token), or the text
    /// from where a pattern matched.
    pub(crate) fn observe(&mut self, token: Token, piece: &str) -> Option<Fired> {
        if self.triggered {
            return None;
        }
        if self.tokens.contains(&token) {
            self.triggered = true;
            self.buffer.clear();
            return Some(Fired::Token(token));
        }
        self.buffer.push_str(piece);
        for pattern in &self.patterns {
            if let Some(start) = pattern.start_in(&self.buffer) {
                self.triggered = true;
                let text = self.buffer[start..].to_string();
                self.buffer.clear();
                return Some(Fired::Text(text));
            }
        }
        None
    }
}

/// What fired a lazy grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fired {
    /// A trigger token: the grammar accepts it.
    Token(Token),
    /// A pattern: the grammar accepts this text.
    Text(String),
}

impl Pattern {
    fn start_in(&self, text: &str) -> Option<usize> {
        let captures = if self.whole {
            self.regex.captures(text).filter(|c| {
                c.get(0)
                    .is_some_and(|m| m.start() == 0 && m.end() == text.len())
            })
        } else {
            self.regex.captures(text)
        }?;
        let group = captures
            .iter()
            .skip(1)
            .flatten()
            .find(|m| !m.is_empty())
            .or_else(|| captures.get(0))?;
        Some(group.start())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_fire_at_the_first_group() {
        let mut t = LazyTrigger::new(&[r"[\s\S]*?(<tool>)[\s\S]*"], &[]).unwrap();
        assert_eq!(t.observe(Token(1), "hello "), None);
        assert_eq!(
            t.observe(Token(2), "<tool>{"),
            Some(Fired::Text("<tool>{".into()))
        );
        assert!(t.is_triggered());
        t.reset();
        assert!(!t.is_triggered());
    }

    #[test]
    fn tokens_fire_and_bad_patterns_are_refused() {
        let mut t = LazyTrigger::new(&[], &[Token(7)]).unwrap();
        assert_eq!(t.observe(Token(7), "x"), Some(Fired::Token(Token(7))));
        assert!(LazyTrigger::new(&["(unclosed"], &[]).is_err());
        assert!(LazyTrigger::new(&[], &[]).is_err());
    }

    #[test]
    fn anchored_patterns_match_the_whole_text() {
        let mut t = LazyTrigger::new(&["^a+$"], &[]).unwrap();
        assert_eq!(t.observe(Token(1), "ab"), None);
        let mut t = LazyTrigger::new(&["^a+$"], &[]).unwrap();
        assert_eq!(t.observe(Token(1), "aa"), Some(Fired::Text("aa".into())));
    }
}
