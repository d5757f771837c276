//! ABI verification: before any call that passes a struct, the libraries must report the pinned
//! versions and carry the pinned header's symbol fingerprint. Each ABI generation accepts only
//! its own builds: upstream checks `ggml_version()`, `llama_version()` and its fingerprint; the
//! BitNet fork (no version functions) checks its own fingerprints, and a build that reports a
//! version is refused naming it.

use std::ffi::{c_char, CStr};

use crate::error::LoadError;
use crate::sys::{bitnet, upstream, SymbolSource};

/// The ABI generations this crate can call (each has its `sys` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AbiGeneration {
    /// The pinned upstream llama.h (`llama-cpp-sys-2 0.1.161`: llama.cpp 0.6.0-dev, ggml
    /// 0.26.0).
    Upstream,
    /// Microsoft's BitNet fork (bitnet.cpp, October 2024; `bitnet-cpp-sys 0.0.5`, llama.cpp
    /// build 3947): the old llama.h, I2_S kernels.
    BitNet2024,
}

impl AbiGeneration {
    /// A short name (`upstream`, `bitnet-2024`), as manifests record it.
    pub fn name(self) -> &'static str {
        match self {
            AbiGeneration::Upstream => "upstream",
            AbiGeneration::BitNet2024 => crate::loader::manifest::ABI_BITNET_2024,
        }
    }

    /// The version string its libraries report (the fork reports none: the pinned tag).
    pub fn llama_version(self) -> &'static str {
        match self {
            AbiGeneration::Upstream => upstream::LLAMA_VERSION,
            AbiGeneration::BitNet2024 => bitnet::FORK_VERSION,
        }
    }

    /// The source its tables mirror.
    pub fn source(self) -> &'static str {
        match self {
            AbiGeneration::Upstream => upstream::SOURCE,
            AbiGeneration::BitNet2024 => bitnet::SOURCE,
        }
    }
}

impl std::fmt::Display for AbiGeneration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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
        .map_err(|e| missing_as_mismatch(base, e, "ggml_version()", upstream::GGML_VERSION))?;
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
        .map_err(|e| missing_as_mismatch(llama, e, "llama_version()", upstream::LLAMA_VERSION))?;
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

/// A missing version function as a mismatch; a library of the BitNet fork's build (its ggml
/// kernels are visible through the library's dependencies) is named as such.
fn missing_as_mismatch(
    source: &dyn SymbolSource,
    error: LoadError,
    check: &str,
    expected: &str,
) -> LoadError {
    match error {
        LoadError::MissingSymbol { path, symbol } => {
            let fork = bitnet::GGML_PRESENT_MARKERS.iter().all(|marker| {
                let name = std::ffi::CString::new(*marker).expect("marker names have no NUL");
                source.lookup(&name).is_some()
            });
            let found = if fork {
                format!(
                    "not exported: the BitNet fork's build ({}, which has no version functions)",
                    bitnet::FORK_VERSION
                )
            } else {
                format!("not exported (no `{symbol}`: a build older than the version functions)")
            };
            LoadError::AbiMismatch {
                path,
                check: check.into(),
                found,
                expected: expected.into(),
            }
        }
        other => other,
    }
}

/// What a library says of its version, for errors: `llama_version()` / `ggml_version()` when
/// exported (they take no arguments, so any build can be asked), else "no version function".
fn reported_version(source: &dyn SymbolSource) -> String {
    for symbol in [c"llama_version", c"ggml_version"] {
        if source.lookup(symbol).is_some() {
            if let Ok(v) = call_version(source, symbol) {
                return format!("{}() = {v}", symbol.to_string_lossy());
            }
        }
    }
    String::from("no version function")
}

/// Checks that `ggml` (the fork's single libggml) and `llama` are the BitNet fork's build of
/// [`bitnet::SOURCE`]: no version functions, the fork's I2_S kernel symbols in libggml, and the
/// fork generation's llama.h fingerprint.
///
/// # Errors
/// `AbiMismatch` naming the library, what it reports (an upstream build names its version)
/// and the first fingerprint difference.
pub fn verify_bitnet(ggml: &dyn SymbolSource, llama: &dyn SymbolSource) -> Result<(), LoadError> {
    let lookup = |source: &dyn SymbolSource, name: &str| {
        let name = std::ffi::CString::new(name).expect("marker names have no NUL");
        source.lookup(&name).is_some()
    };
    let expected = format!(
        "the BitNet fork's build ({}, {})",
        bitnet::SOURCE,
        bitnet::FORK_VERSION
    );
    for (source, present, absent) in [
        (
            ggml,
            bitnet::GGML_PRESENT_MARKERS,
            &["ggml_version", "ggml_backend_load"][..],
        ),
        (llama, bitnet::PRESENT_MARKERS, bitnet::ABSENT_MARKERS),
    ] {
        let missing: Vec<&str> = present
            .iter()
            .copied()
            .filter(|s| !lookup(source, s))
            .collect();
        let unexpected: Vec<&str> = absent
            .iter()
            .copied()
            .filter(|s| lookup(source, s))
            .collect();
        if missing.is_empty() && unexpected.is_empty() {
            continue;
        }
        let mut found = vec![reported_version(source)];
        if !missing.is_empty() {
            found.push(format!("lacks {}", missing.join(", ")));
        }
        if !unexpected.is_empty() {
            found.push(format!("exports {}", unexpected.join(", ")));
        }
        return Err(LoadError::AbiMismatch {
            path: source.path().to_path_buf(),
            check: "BitNet fork fingerprint".into(),
            found: found.join("; "),
            expected,
        });
    }
    Ok(())
}
