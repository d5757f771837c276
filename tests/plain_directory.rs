//! A plain directory of llama.cpp libraries without a manifest (as an official release or a
//! user's own cmake build ships them) loads: its kind is inferred from the plugins present and
//! its ABI is checked the same way. (Its own binary: one build per process.)

mod common;

use gguf_loader::loader::{Backend, LlamaLibrary, PluginSelection, VariantDirectory};

#[test]
fn directory_without_manifest_is_inferred_and_verified() {
    let plain = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::cpu_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "manifest.json" || name == ".complete" {
            continue;
        }
        std::fs::copy(entry.path(), plain.path().join(&name)).unwrap();
    }
    let directory = VariantDirectory::open(plain.path()).unwrap();
    assert!(directory.manifest.is_none());
    assert_eq!(directory.kind, "cpu");
    assert_eq!(directory.backends, vec![Backend::Cpu]);
    assert_eq!(directory.cpu_modules.len(), 14);
    let library = LlamaLibrary::load(&directory, PluginSelection::CpuModule("x64".into())).unwrap();
    assert_eq!(library.llama_version(), "0.6.0-dev");
    assert_eq!(library.ggml_version(), "0.26.0");
    assert_eq!(library.plugins().len(), 1);
    assert!(library.devices().iter().any(|d| d.backend == "CPU"));
}
