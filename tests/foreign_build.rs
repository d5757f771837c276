//! A real foreign llama.cpp build (v0.4.0 libraries from the npm package
//! @node-llama-cpp/linux-x64@3.21.1) must be refused by the ABI check, in process, without a
//! crash, with an error that names what was found and what was expected.

mod common;

use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{Category, LoadError};

#[test]
fn foreign_build_is_refused_with_found_and_expected() {
    let dir = common::required_path("GGUF_LOADER_FOREIGN_DIR");
    let directory =
        VariantDirectory::open(&dir).expect("the foreign directory has llama libraries");
    assert!(
        directory.libraries.llama.ends_with("libllama.v0.4.0.so"),
        "{:?}",
        directory.libraries
    );
    assert!(directory.manifest.is_none());
    assert_eq!(directory.kind, "cpu", "kind inferred from plugins");
    assert!(directory.cpu_modules.iter().any(|m| m == "haswell"));

    let error = LlamaLibrary::load(&directory, PluginSelection::AllInDirectory).unwrap_err();
    match &error {
        LoadError::AbiMismatch {
            path,
            check,
            found,
            expected,
        } => {
            assert!(path.starts_with(&dir), "{path:?}");
            assert!(
                check == "ggml_version()" || check == "llama_version()",
                "{check}"
            );
            assert_ne!(found, expected);
            assert!(
                expected == "0.26.0" || expected == "0.6.0-dev",
                "{expected}"
            );
        }
        other => panic!("expected AbiMismatch, got {other:?}"),
    }
    assert_eq!(error.category(), Category::Installation);
    let message = error.to_string();
    assert!(message.contains("foreign"), "{message}");
    eprintln!("foreign build refused: {message}");
    assert!(LlamaLibrary::current().is_none(), "nothing was initialised");
}
