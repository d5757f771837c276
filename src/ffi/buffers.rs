//! The "call, learn the size, call again" loops of llama.h, in one place.
//!
//! llama.h reports a too-small buffer in two ways: string getters return the length they need
//! (snprintf style, `>= size` means truncated), token and byte writers return the negated
//! length. Each loop below grows the buffer to exactly what was asked for, at most twice.

use std::ffi::c_char;

/// Reads a string from a snprintf-style function: `call(buf, size)` writes at most `size` bytes
/// including the NUL and returns the full length, or a negative number for "absent".
pub(crate) fn snprintf_string(mut call: impl FnMut(*mut c_char, usize) -> i32) -> Option<String> {
    let mut buffer = vec![0u8; 256];
    for _ in 0..3 {
        let n = call(buffer.as_mut_ptr().cast(), buffer.len());
        let n = usize::try_from(n).ok()?;
        if n < buffer.len() {
            buffer.truncate(n);
            return Some(String::from_utf8_lossy(&buffer).into_owned());
        }
        buffer.resize(n + 1, 0);
    }
    None
}

/// Fills a vector from a function that returns the count written, or `-needed` when the
/// capacity is too small. `None` when the function keeps asking for more (or for
/// `i32::MIN`, which llama.h uses for "too many to count").
pub(crate) fn negated_length<T: Copy + Default>(
    initial: usize,
    mut call: impl FnMut(*mut T, i32) -> i32,
) -> Option<Vec<T>> {
    let mut buffer = vec![T::default(); initial.max(1)];
    for _ in 0..3 {
        let capacity = i32::try_from(buffer.len()).unwrap_or(i32::MAX);
        let n = call(buffer.as_mut_ptr(), capacity);
        if n == i32::MIN {
            return None;
        }
        if n >= 0 {
            // SAFETY-relevant: never trust a count beyond what we allocated.
            let n = (n as usize).min(buffer.len());
            buffer.truncate(n);
            return Some(buffer);
        }
        let needed = n.unsigned_abs() as usize;
        if needed <= buffer.len() {
            return None;
        }
        buffer.resize(needed, T::default());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snprintf_loop_grows_once() {
        let text = "x".repeat(300);
        let mut calls = 0;
        let got = snprintf_string(|buf, len| {
            calls += 1;
            let n = text.len().min(len - 1);
            // SAFETY: `buf` has `len` bytes.
            unsafe { std::ptr::copy_nonoverlapping(text.as_ptr().cast(), buf, n) };
            text.len() as i32
        });
        assert_eq!(got.as_deref(), Some(text.as_str()));
        assert_eq!(calls, 2);
        assert_eq!(snprintf_string(|_, _| -1), None);
    }

    #[test]
    fn negated_length_never_exceeds_the_allocation() {
        let got = negated_length::<u8>(4, |_, cap| if cap < 10 { -10 } else { 10 });
        assert_eq!(got.map(|v| v.len()), Some(10));
        // A function that lies about the count written is clamped to the buffer.
        let got = negated_length::<u8>(4, |_, _| 1000);
        assert_eq!(got.map(|v| v.len()), Some(4));
        assert_eq!(negated_length::<u8>(4, |_, _| i32::MIN), None);
        assert_eq!(
            negated_length::<u8>(4, |_, _| -2),
            None,
            "shrinking request"
        );
    }
}
