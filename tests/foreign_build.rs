//! A real foreign llama.cpp build (v0.4.0 libraries from the npm package
//! @node-llama-cpp/linux-x64@3.21.1) must be refused by the ABI check, in process, without a
//! crash, with an error that names what was found and what was expected; and selection from
//! that one directory names the foreign build once, not once per CPU candidate.

mod common;

use gguf_loader::hardware::HardwareProfile;
use gguf_loader::loader::{
    load_best, LlamaLibrary, PluginSelection, SearchPaths, SelectOptions, VariantDirectory,
};
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

#[test]
fn selection_from_a_foreign_directory_names_it_once() {
    let dir = common::required_path("GGUF_LOADER_FOREIGN_DIR");
    let options = SelectOptions {
        search: SearchPaths::new().with_dir(&dir).only_explicit(),
        force: None,
        gpu_enabled: false,
        preference: Vec::new(),
        hardware: HardwareProfile::detect(),
        smoke_test: None,
        fallback: true,
        family: gguf_loader::loader::Family::Upstream,
    };
    let error = load_best(&options).unwrap_err();
    let message = error.to_string();
    eprintln!("{message}");
    let LoadError::NoUsableVariant { rejected } = &error else {
        panic!("expected NoUsableVariant, got {error:?}");
    };
    assert_eq!(
        message.matches("is a foreign llama.cpp build").count(),
        1,
        "the foreign build is named exactly once: {message}"
    );
    let (first, _) = rejected
        .iter()
        .find(|(_, reason)| reason.contains("is a foreign llama.cpp build"))
        .expect("a CPU candidate tried the directory");
    let same = format!("same directory as {first}: rejected above");
    let same_directory: Vec<&String> = rejected
        .iter()
        .filter(|(_, reason)| *reason == same)
        .map(|(name, _)| name)
        .collect();
    // At least cpu-auto (every plugin, served by any directory with a CPU backend) and cpu-x64
    // (runs on every x86-64) come after the first.
    assert!(
        same_directory.iter().any(|n| *n == "cpu-auto"),
        "{same_directory:?}: {message}"
    );
    assert!(
        first == "cpu-x64" || same_directory.iter().any(|n| *n == "cpu-x64"),
        "{first} {same_directory:?}: {message}"
    );
    assert!(LlamaLibrary::current().is_none(), "nothing was initialised");
}
