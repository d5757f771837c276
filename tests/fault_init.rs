//! A build that passes every check but offers no device: `NoDevice`, and afterwards the process
//! refuses any other build (its libraries stay mapped). In its own test binary because it leaves
//! process-wide state behind.

mod common;
mod fake;

use fake::FakeBuild;
use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{Category, LoadError};

#[test]
fn no_device_then_conflicting_build() {
    let dir = tempfile::tempdir().unwrap();
    FakeBuild {
        device_count: 0,
        ..Default::default()
    }
    .build(dir.path(), "nodevice");
    let directory = VariantDirectory::open(dir.path()).unwrap();
    assert_eq!(directory.kind, "cpu");
    let error = LlamaLibrary::load(&directory, PluginSelection::AllInDirectory).unwrap_err();
    assert!(matches!(error, LoadError::NoDevice { .. }), "{error:?}");
    assert_eq!(error.category(), Category::Hardware);

    let other = tempfile::tempdir().unwrap();
    FakeBuild::default().build(other.path(), "other");
    let directory = VariantDirectory::open(other.path()).unwrap();
    let error = LlamaLibrary::load(&directory, PluginSelection::AllInDirectory).unwrap_err();
    match error {
        LoadError::ConflictingBuild { loaded, requested } => {
            assert_eq!(loaded, dir.path().canonicalize().unwrap());
            assert_eq!(requested, other.path());
        }
        other => panic!("expected ConflictingBuild, got {other:?}"),
    }
}
