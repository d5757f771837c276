//! ABI verification: before any call that passes a struct, the libraries must report the pinned
//! versions and carry the pinned header's symbol fingerprint.

use std::ffi::{c_char, CStr};

use crate::error::LoadError;
use crate::sys::{upstream, SymbolSource};

/// Symbols that the pinned llama.h added recently: a build without them is older.
#[doc(hidden)]
pub const PRESENT_MARKERS: &[&str] = &[
    "llama_batch_ext_init",
    "llama_process",
    "llama_model_n_layer_nextn",
    "llama_n_rs_seq",
    "llama_sampler_init_adaptive_p",
    "llama_state_seq_get_size_ext",
    "llama_model_load_from_file_ptr",
];

/// Symbols that the pinned llama.h no longer has: a build with them is older.
#[doc(hidden)]
pub const ABSENT_MARKERS: &[&str] = &[
    "llama_kv_self_clear",
    "llama_sampler_init_softmax",
    "llama_get_kv_self",
];

/// Calls a `const char * f(void)` version function resolved from `source`.
fn call_version(source: &dyn SymbolSource, symbol: &CStr) -> Result<String, LoadError> {
    let address = source.resolve(symbol)?;
    // SAFETY: the symbol is a `const char * (void)` function in every llama.cpp/ggml release that
    // exports it (llama_version, ggml_version, ggml_commit); it takes no arguments, so even a
    // foreign build can be called safely.
    let function = unsafe {
        std::mem::transmute::<*const std::ffi::c_void, unsafe extern "C" fn() -> *const c_char>(
            address,
        )
    };
    // SAFETY: see above; the call has no preconditions.
    let text = unsafe { function() };
    if text.is_null() {
        return Ok(String::from("(null)"));
    }
    // SAFETY: the function returns a pointer to a static NUL-terminated string.
    Ok(unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned())
}

/// Reads and checks `ggml_version()` of libggml-base; returns (version, commit).
///
/// # Errors
/// `MissingSymbol` or `AbiMismatch` naming the library, found and expected.
pub fn verify_ggml(base: &dyn SymbolSource) -> Result<(String, String), LoadError> {
    let found = call_version(base, c"ggml_version")
        .map_err(|e| missing_as_mismatch(e, "ggml_version()", upstream::GGML_VERSION))?;
    if found != upstream::GGML_VERSION {
        return Err(LoadError::AbiMismatch {
            path: base.path().to_path_buf(),
            check: "ggml_version()".into(),
            found,
            expected: upstream::GGML_VERSION.into(),
        });
    }
    let commit = call_version(base, c"ggml_commit").unwrap_or_default();
    Ok((found, commit))
}

/// Reads and checks `llama_version()` and the symbol fingerprint of libllama.
///
/// # Errors
/// `MissingSymbol` or `AbiMismatch` naming the library, found and expected.
pub fn verify_llama(llama: &dyn SymbolSource) -> Result<String, LoadError> {
    let found = call_version(llama, c"llama_version")
        .map_err(|e| missing_as_mismatch(e, "llama_version()", upstream::LLAMA_VERSION))?;
    if found != upstream::LLAMA_VERSION {
        return Err(LoadError::AbiMismatch {
            path: llama.path().to_path_buf(),
            check: "llama_version()".into(),
            found,
            expected: upstream::LLAMA_VERSION.into(),
        });
    }
    verify_fingerprint(llama)?;
    Ok(found)
}

/// Checks that the marker symbols are present or absent as in the pinned header.
///
/// # Errors
/// `AbiMismatch` naming the first marker that is wrong.
#[doc(hidden)]
pub fn verify_fingerprint(llama: &dyn SymbolSource) -> Result<(), LoadError> {
    let lookup = |name: &str| {
        let name = std::ffi::CString::new(name).expect("marker names have no NUL");
        llama.lookup(&name).is_some()
    };
    let missing: Vec<&str> = PRESENT_MARKERS
        .iter()
        .copied()
        .filter(|s| !lookup(s))
        .collect();
    let unexpected: Vec<&str> = ABSENT_MARKERS
        .iter()
        .copied()
        .filter(|s| lookup(s))
        .collect();
    if missing.is_empty() && unexpected.is_empty() {
        return Ok(());
    }
    let mut found = Vec::new();
    if !missing.is_empty() {
        found.push(format!("lacks {}", missing.join(", ")));
    }
    if !unexpected.is_empty() {
        found.push(format!("exports removed {}", unexpected.join(", ")));
    }
    Err(LoadError::AbiMismatch {
        path: llama.path().to_path_buf(),
        check: "symbol fingerprint".into(),
        found: found.join("; "),
        expected: format!(
            "the symbols of {} (llama {})",
            upstream::SOURCE,
            upstream::LLAMA_VERSION
        ),
    })
}

fn missing_as_mismatch(error: LoadError, check: &str, expected: &str) -> LoadError {
    match error {
        LoadError::MissingSymbol { path, symbol } => LoadError::AbiMismatch {
            path,
            check: check.into(),
            found: format!(
                "not exported (no `{symbol}`: a build older than the version functions)"
            ),
            expected: expected.into(),
        },
        other => other,
    }
}
