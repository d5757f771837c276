//! Fault paths of the loader, with fake libraries built by the test: dlopen failure, missing
//! directory, wrong versions, missing symbols. Each error must be typed and name what is at fault.

mod common;
mod fake;

use fake::FakeBuild;
use gguf_loader::loader::{LlamaLibrary, PluginSelection, SearchPaths, VariantDirectory};
use gguf_loader::{Category, LoadError};

/// Builds `fake` in a new directory (sonames made unique with `tag`) and returns the error
/// loading it gives.
fn load_fake(fake: FakeBuild, tag: &str) -> LoadError {
    let dir = tempfile::tempdir().unwrap();
    fake.build(dir.path(), tag);
    load(dir.path()).expect_err("the fake build must not load")
}

fn load(dir: &std::path::Path) -> Result<LlamaLibrary, LoadError> {
    let directory = VariantDirectory::open(dir)?;
    LlamaLibrary::load(&directory, PluginSelection::AllInDirectory)
}

#[test]
fn missing_directory_lists_the_places_searched() {
    let missing = std::path::PathBuf::from("/nonexistent/gguf-loader-variants");
    let error = SearchPaths::new()
        .with_dir(&missing)
        .only_explicit()
        .find_kind("cpu")
        .unwrap_err();
    match &error {
        LoadError::NotFound { searched, .. } => assert_eq!(searched, &vec![missing.clone()]),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("/nonexistent/gguf-loader-variants"),
        "{error}"
    );
    assert_eq!(error.category(), Category::Installation);
}

#[test]
fn directory_without_llama_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let error = VariantDirectory::open(dir.path()).unwrap_err();
    assert!(matches!(error, LoadError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("libggml-base.so"), "{error}");
}

#[test]
fn dlopen_failure_names_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["libggml-base.so", "libggml.so", "libllama.so"] {
        std::fs::write(dir.path().join(name), b"this is not an ELF file").unwrap();
    }
    let error = load(dir.path()).unwrap_err();
    match &error {
        LoadError::Open { path, reason } => {
            assert!(path.ends_with("libggml-base.so"), "{path:?}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected Open, got {other:?}"),
    }
    assert!(!error.hint().is_empty());
}

#[test]
fn wrong_ggml_version_is_an_abi_mismatch() {
    match load_fake(
        FakeBuild {
            ggml_version: "0.9.9".into(),
            ..Default::default()
        },
        "ggmlver",
    ) {
        LoadError::AbiMismatch {
            path,
            check,
            found,
            expected,
        } => {
            assert!(path.ends_with("libggml-base.so"));
            assert_eq!(check, "ggml_version()");
            assert_eq!(found, "0.9.9");
            assert_eq!(expected, "0.26.0");
        }
        other => panic!("expected AbiMismatch, got {other:?}"),
    }
}

#[test]
fn wrong_llama_version_is_an_abi_mismatch() {
    let error = load_fake(
        FakeBuild {
            llama_version: "0.5.1".into(),
            ..Default::default()
        },
        "llamaver",
    );
    match &error {
        LoadError::AbiMismatch {
            path,
            check,
            found,
            expected,
        } => {
            assert!(path.ends_with("libllama.so"));
            assert_eq!(check, "llama_version()");
            assert_eq!(found, "0.5.1");
            assert_eq!(expected, "0.6.0-dev");
        }
        other => panic!("expected AbiMismatch, got {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("0.5.1") && text.contains("0.6.0-dev"),
        "{text}"
    );
}

#[test]
fn absent_version_function_is_reported_as_foreign() {
    match load_fake(
        FakeBuild {
            omit: vec!["llama_version".into()],
            ..Default::default()
        },
        "nover",
    ) {
        LoadError::AbiMismatch { check, found, .. } => {
            assert_eq!(check, "llama_version()");
            assert!(found.contains("not exported"), "{found}");
        }
        other => panic!("expected AbiMismatch, got {other:?}"),
    }
}

#[test]
fn missing_fingerprint_symbol_is_an_abi_mismatch() {
    match load_fake(
        FakeBuild {
            omit: vec!["llama_batch_ext_init".into()],
            ..Default::default()
        },
        "finger",
    ) {
        LoadError::AbiMismatch { check, found, .. } => {
            assert_eq!(check, "symbol fingerprint");
            assert!(found.contains("llama_batch_ext_init"), "{found}");
        }
        other => panic!("expected AbiMismatch, got {other:?}"),
    }
}

#[test]
fn missing_required_symbol_names_library_and_symbol() {
    match load_fake(
        FakeBuild {
            omit: vec!["llama_decode".into()],
            ..Default::default()
        },
        "nodecode",
    ) {
        LoadError::MissingSymbol { path, symbol } => {
            assert!(path.ends_with("libllama.so"), "{path:?}");
            assert_eq!(symbol, "llama_decode");
        }
        other => panic!("expected MissingSymbol, got {other:?}"),
    }
}

#[test]
fn missing_optional_symbol_is_none() {
    let dir = tempfile::tempdir().unwrap();
    // A deprecated function is optional: its absence is not an error. This fake then reaches
    // backend initialisation, which it fails (no device): that is checked in fault_init.rs, so
    // here only the table is loaded.
    FakeBuild {
        omit: vec!["llama_free_model".into()],
        ..Default::default()
    }
    .build(dir.path(), "optional");
    // SAFETY: a fake library built by this test; its constructors do nothing.
    let raw =
        unsafe { gguf_loader::loader::RawLibrary::open(&dir.path().join("libllama.so")) }.unwrap();
    let table = gguf_loader::sys::upstream::LlamaFunctions::load(&raw).unwrap();
    assert!(table.llama_free_model.is_none());
    assert!(
        table.llama_new_context_with_model.is_some(),
        "other optional symbols still resolve"
    );
}
