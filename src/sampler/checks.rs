//! Parameter checks for the samplers: everything llama.cpp would assert on, throw for,
//! allocate without bound for, silently ignore, or turn into NaN arithmetic is refused here,
//! naming the parameter.

use crate::error::{Error, Result};

/// Most DRY sequence breakers (each is tokenized every way it can overlap a token).
pub(crate) const MAX_DRY_BREAKERS: usize = 64;
/// Longest DRY breaker in bytes (llama.cpp truncates longer ones silently: `MAX_CHAR_LEN`).
pub(crate) const MAX_DRY_BREAKER_LEN: usize = 40;
/// Largest grammar text in bytes.
pub(crate) const MAX_GRAMMAR_LEN: usize = 1 << 20;
/// Deepest nesting of groups in a grammar (llama.cpp's parser recurses once per level).
pub(crate) const MAX_GRAMMAR_DEPTH: usize = 128;
/// Most lazy-grammar trigger patterns and tokens.
pub(crate) const MAX_TRIGGERS: usize = 256;

pub(crate) fn invalid(parameter: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        parameter,
        reason: reason.into(),
    }
}

/// A finite value.
pub(crate) fn finite(parameter: &'static str, v: f32) -> Result<f32> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(invalid(parameter, format!("{v} is not a finite number")))
    }
}

/// A finite value in `lo..=hi`.
pub(crate) fn in_range(parameter: &'static str, v: f32, lo: f32, hi: f32) -> Result<f32> {
    finite(parameter, v)?;
    if v < lo || v > hi {
        return Err(invalid(parameter, format!("{v} must be in {lo}..={hi}")));
    }
    Ok(v)
}

/// A history length: 1..=`max` (llama.cpp sizes a ring buffer with it and turns negative
/// values into 0, which disables the sampler).
pub(crate) fn last_n(parameter: &'static str, n: i32, max: i32) -> Result<i32> {
    if n < 1 || n > max {
        return Err(invalid(
            parameter,
            format!(
                "{n} must be 1..={max} (the model's training context; llama.cpp treats 0 and negative values as 'disabled')"
            ),
        ));
    }
    Ok(n)
}

/// The text of a DRY sequence breaker.
pub(crate) fn dry_breakers(breakers: &[&str]) -> Result<()> {
    if breakers.len() > MAX_DRY_BREAKERS {
        return Err(invalid(
            "dry_sequence_breakers",
            format!("{} breakers; at most {MAX_DRY_BREAKERS}", breakers.len()),
        ));
    }
    for b in breakers {
        if b.is_empty() || b.len() > MAX_DRY_BREAKER_LEN || b.contains('\0') {
            return Err(invalid(
                "dry_sequence_breakers",
                format!(
                    "{b:?} must be 1..={MAX_DRY_BREAKER_LEN} bytes without NUL (llama.cpp skips empty ones and truncates longer ones)"
                ),
            ));
        }
    }
    Ok(())
}

/// Pre-checks a GBNF grammar: size, nesting depth (llama.cpp's recursive-descent parser would
/// overflow the stack), NUL bytes. The grammar itself is parsed by llama.cpp, which reports
/// syntax errors by returning NULL.
pub(crate) fn grammar(text: &str, root: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(invalid(
            "grammar",
            "is empty (llama.cpp would build a sampler that constrains nothing)",
        ));
    }
    if text.len() > MAX_GRAMMAR_LEN {
        return Err(invalid(
            "grammar",
            format!("{} bytes; at most {MAX_GRAMMAR_LEN}", text.len()),
        ));
    }
    if let Some(at) = text.find('\0') {
        return Err(invalid(
            "grammar",
            format!("contains a NUL byte at position {at}"),
        ));
    }
    if root.is_empty() || root.contains('\0') {
        return Err(invalid("grammar root", "must be a rule name without NUL"));
    }
    let depth = nesting_depth(text);
    if depth > MAX_GRAMMAR_DEPTH {
        return Err(invalid(
            "grammar",
            format!("groups nest {depth} deep; at most {MAX_GRAMMAR_DEPTH}"),
        ));
    }
    Ok(())
}

/// The deepest `(` nesting outside string literals, character classes and comments.
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '[' => {
                let close = if c == '"' { '"' } else { ']' };
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == close {
                        break;
                    }
                }
            }
            '#' => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '(' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_depth_ignores_literals_and_comments() {
        assert_eq!(nesting_depth(r#"root ::= ("(" [(] ( "x" ))  # ((((("#), 2);
        assert!(grammar(
            &format!("root ::= {}\"a\"{}", "(".repeat(200), ")".repeat(200)),
            "root"
        )
        .is_err());
        assert!(grammar("root ::= \"a\"", "root").is_ok());
        assert!(grammar("  ", "root").is_err());
        assert!(grammar("root ::= \"a\"", "").is_err());
    }

    #[test]
    fn numbers_and_lengths() {
        assert!(finite("t", f32::NAN).is_err());
        assert!(in_range("p", 1.5, 0.0, 1.0).is_err());
        assert!(last_n("last_n", -1, 100).is_err());
        assert!(last_n("last_n", 0, 100).is_err());
        assert!(last_n("last_n", 101, 100).is_err());
        assert_eq!(last_n("last_n", 64, 100).unwrap(), 64);
        assert!(dry_breakers(&["\n", ":"]).is_ok());
        assert!(dry_breakers(&[""]).is_err());
        assert!(dry_breakers(&[&"x".repeat(41)]).is_err());
        assert!(dry_breakers(&["x"; 65]).is_err());
    }
}
