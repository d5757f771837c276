//! C strings: one rule for text and one for paths, both refusing interior NUL bytes.

use std::ffi::{CStr, CString};
use std::path::Path;

/// Why a Rust string or path cannot become a C string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CStringError {
    /// An interior NUL byte at this byte offset.
    Nul(usize),
    /// A path that is not valid UTF-8 on a platform whose C API takes UTF-8 paths.
    #[cfg_attr(unix, allow(dead_code))]
    NotUtf8,
}

impl CStringError {
    /// A human-readable reason.
    pub(crate) fn reason(&self) -> String {
        match self {
            CStringError::Nul(at) => format!("contains a NUL byte at position {at}"),
            CStringError::NotUtf8 => "is not valid UTF-8".into(),
        }
    }
}

/// A C string from text.
pub(crate) fn text(text: &str) -> Result<CString, CStringError> {
    CString::new(text).map_err(|e| CStringError::Nul(e.nul_position()))
}

/// A C string from a path: its bytes as they are on Unix (any bytes but NUL), UTF-8 elsewhere.
pub(crate) fn path(path: &Path) -> Result<CString, CStringError> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path
        .to_str()
        .ok_or(CStringError::NotUtf8)?
        .as_bytes()
        .to_vec();
    CString::new(bytes).map_err(|e| CStringError::Nul(e.nul_position()))
}

/// Copies a NUL-terminated C string owned by llama.cpp (lossy UTF-8); `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid during the call.
pub(crate) unsafe fn owned(ptr: *const std::ffi::c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated, as the caller guarantees.
    Some(
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_are_refused_with_their_position() {
        assert_eq!(text("ab\0c"), Err(CStringError::Nul(2)));
        assert_eq!(path(Path::new("a\0")), Err(CStringError::Nul(1)));
        assert_eq!(text("héllo").unwrap().as_bytes(), "héllo".as_bytes());
    }
}
