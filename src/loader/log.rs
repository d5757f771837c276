//! Routes llama.cpp's and ggml's log output into the `log` crate.
//!
//! The C side emits fragments (level `GGML_LOG_LEVEL_CONT` continues the previous line); they
//! are joined per thread and emitted one `log` record per line, with target `llama.cpp`.
//! Nothing reaches stderr unless the application's logger prints it.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr};

use crate::sys::bitnet;
use crate::sys::upstream::{
    ggml_log_level, GGML_LOG_LEVEL_CONT, GGML_LOG_LEVEL_DEBUG, GGML_LOG_LEVEL_ERROR,
    GGML_LOG_LEVEL_INFO, GGML_LOG_LEVEL_WARN,
};

/// The `log` target of records that come from llama.cpp and ggml.
pub const LOG_TARGET: &str = "llama.cpp";

thread_local! {
    static PENDING: RefCell<(log::Level, String)> = const { RefCell::new((log::Level::Debug, String::new())) };
}

/// Maps a ggml log level of the BitNet fork's ggml (NONE 0, INFO 1, WARN 2, ERROR 3, DEBUG 4,
/// CONT 5) to a `log` level (`None` for "continue the previous line").
#[doc(hidden)]
pub fn map_bitnet_level(level: bitnet::ggml_log_level) -> Option<log::Level> {
    match level {
        bitnet::GGML_LOG_LEVEL_CONT => None,
        bitnet::GGML_LOG_LEVEL_ERROR => Some(log::Level::Error),
        bitnet::GGML_LOG_LEVEL_WARN => Some(log::Level::Warn),
        bitnet::GGML_LOG_LEVEL_INFO => Some(log::Level::Info),
        bitnet::GGML_LOG_LEVEL_DEBUG => Some(log::Level::Debug),
        _ => Some(log::Level::Trace),
    }
}

/// Maps a ggml log level to a `log` level (`None` for "continue the previous line").
#[doc(hidden)]
pub fn map_level(level: ggml_log_level) -> Option<log::Level> {
    match level {
        GGML_LOG_LEVEL_CONT => None,
        GGML_LOG_LEVEL_ERROR => Some(log::Level::Error),
        GGML_LOG_LEVEL_WARN => Some(log::Level::Warn),
        GGML_LOG_LEVEL_INFO => Some(log::Level::Info),
        GGML_LOG_LEVEL_DEBUG => Some(log::Level::Debug),
        _ => Some(log::Level::Trace),
    }
}

fn take_lines(level: Option<log::Level>, text: &str) {
    PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        if let Some(level) = level {
            if !pending.1.is_empty() {
                let line = std::mem::take(&mut pending.1);
                log::log!(target: LOG_TARGET, pending.0, "{line}");
            }
            pending.0 = level;
        }
        pending.1.push_str(text);
        while let Some(newline) = pending.1.find('\n') {
            let line: String = pending.1.drain(..=newline).collect();
            let line = line.trim_end();
            if !line.is_empty() {
                log::log!(target: LOG_TARGET, pending.0, "{line}");
            }
        }
    });
}

/// The callback handed to `llama_log_set` / `ggml_log_set`. It never unwinds into C.
///
/// Internal plumbing, public only so it can be exercised directly (hidden from the
/// documentation).
///
/// # Safety
/// `text` is NULL or a NUL-terminated string valid for the duration of the call (as ggml
/// guarantees).
#[doc(hidden)]
pub unsafe extern "C" fn log_callback(
    level: ggml_log_level,
    text: *const c_char,
    _user_data: *mut c_void,
) {
    if text.is_null() {
        return;
    }
    // SAFETY: ggml passes a NUL-terminated string that is valid for the duration of the call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let level = map_level(level);
    // A panicking logger must not unwind into C: the record is dropped instead.
    let _ = std::panic::catch_unwind(|| take_lines(level, &text));
}

/// The callback handed to the BitNet fork's `llama_log_set` / `ggml_log_set`: its level
/// numbers differ from upstream's. It never unwinds into C.
///
/// # Safety
/// As [`log_callback`].
#[doc(hidden)]
pub unsafe extern "C" fn bitnet_log_callback(
    level: bitnet::ggml_log_level,
    text: *const c_char,
    _user_data: *mut c_void,
) {
    if text.is_null() {
        return;
    }
    // SAFETY: ggml passes a NUL-terminated string that is valid for the duration of the call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let level = map_bitnet_level(level);
    // A panicking logger must not unwind into C: the record is dropped instead.
    let _ = std::panic::catch_unwind(|| take_lines(level, &text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_log_levels() {
        assert_eq!(map_level(GGML_LOG_LEVEL_ERROR), Some(log::Level::Error));
        assert_eq!(map_level(GGML_LOG_LEVEL_WARN), Some(log::Level::Warn));
        assert_eq!(map_level(GGML_LOG_LEVEL_INFO), Some(log::Level::Info));
        assert_eq!(map_level(GGML_LOG_LEVEL_DEBUG), Some(log::Level::Debug));
        assert_eq!(map_level(GGML_LOG_LEVEL_CONT), None);
        assert_eq!(
            map_bitnet_level(bitnet::GGML_LOG_LEVEL_INFO),
            Some(log::Level::Info)
        );
        assert_eq!(
            map_bitnet_level(bitnet::GGML_LOG_LEVEL_WARN),
            Some(log::Level::Warn)
        );
        assert_eq!(
            map_bitnet_level(bitnet::GGML_LOG_LEVEL_ERROR),
            Some(log::Level::Error)
        );
        assert_eq!(
            map_bitnet_level(bitnet::GGML_LOG_LEVEL_DEBUG),
            Some(log::Level::Debug)
        );
        assert_eq!(map_bitnet_level(bitnet::GGML_LOG_LEVEL_CONT), None);
    }
}
