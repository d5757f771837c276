//! The real cpu variant: dlopen, ABI check, versions equal to the manifest's, CPU device,
//! llama.cpp's log routed into the `log` crate and nothing printed to stderr by the C side.

mod common;

use std::sync::Mutex;

use gguf_loader::loader::{LlamaLibrary, Manifest, PluginSelection, VariantDirectory};

static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct CaptureLogger;

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        RECORDS.lock().unwrap().push((
            record.level(),
            record.target().to_string(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

fn load_cpu() -> LlamaLibrary {
    static LOGGER: CaptureLogger = CaptureLogger;
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Trace);
    let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant directory");
    LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("loading the cpu variant")
}

#[test]
fn versions_match_the_manifest() {
    let library = load_cpu();
    let manifest = Manifest::read(&common::cpu_dir())
        .unwrap()
        .expect("cpu variant has a manifest");
    assert_eq!(manifest.name, "cpu");
    assert_eq!(library.llama_version(), manifest.llama_version);
    assert_eq!(library.ggml_version(), manifest.ggml_version);
    assert_eq!(library.llama_version(), "0.6.0-dev");
    assert_eq!(library.ggml_version(), "0.26.0");
    assert_eq!(manifest.source.crate_name, "llama-cpp-sys-2");
    assert_eq!(manifest.source.version, "0.1.161");
    for module in [
        "x64",
        "sse42",
        "haswell",
        "icelake",
        "zen4",
        "sapphirerapids",
    ] {
        assert!(
            manifest.cpu_modules.iter().any(|m| m == module),
            "missing cpu module {module}"
        );
    }
}

#[test]
fn cpu_device_is_enumerated() {
    let library = load_cpu();
    let devices = library.devices();
    assert!(
        devices.iter().any(|d| d.backend == "CPU"),
        "devices: {devices:?}"
    );
    assert!(library.backend_names().iter().any(|b| b == "CPU"));
}

#[test]
fn loading_twice_and_from_threads_returns_the_same_library() {
    let handles: Vec<_> = (0..4).map(|_| std::thread::spawn(load_cpu)).collect();
    let first = load_cpu();
    for handle in handles {
        let library = handle.join().unwrap();
        assert!(
            std::ptr::eq(library.llama().unwrap(), first.llama().unwrap()),
            "one initialisation per process"
        );
    }
}

#[test]
fn another_directory_is_refused_after_load() {
    let _library = load_cpu();
    let other = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::cpu_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), other.path().join(entry.file_name())).unwrap();
    }
    let directory = VariantDirectory::open(other.path()).unwrap();
    let error = LlamaLibrary::load(&directory, PluginSelection::AllInDirectory).unwrap_err();
    assert!(
        matches!(error, gguf_loader::LoadError::ConflictingBuild { .. }),
        "{error:?}"
    );
}

#[test]
fn llama_log_goes_to_the_log_crate() {
    let library = load_cpu();
    // Loading the CPU plugin logs at INFO; the backend init logs too.
    let _ = library;
    let records = RECORDS.lock().unwrap();
    assert!(
        records.iter().any(|(_, target, _)| target == "llama.cpp"),
        "no record with target llama.cpp among {} records",
        records.len()
    );
}

/// The C side must print nothing by itself: run a child process that loads the variant with no
/// logger installed and check its stderr.
#[test]
fn c_side_prints_nothing_to_stderr() {
    if std::env::var_os("GGUF_LOADER_CHILD_LOAD").is_some() {
        let dir = VariantDirectory::open(&common::cpu_dir()).unwrap();
        let library = LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).unwrap();
        assert!(!library.devices().is_empty());
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "c_side_prints_nothing_to_stderr",
            "--test-threads=1",
            "--quiet",
        ])
        .env("GGUF_LOADER_CHILD_LOAD", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.trim().is_empty(), "C side wrote to stderr: {stderr}");
}

/// For every CPU module of the variant, the crate's score (from detected features) equals the
/// score ggml's own module computes, and the crate's pick is the module ggml ranks highest.
#[test]
fn cpu_module_choice_agrees_with_ggml_scores() {
    use gguf_loader::hardware::HardwareProfile;
    use gguf_loader::loader::variant::{best_cpu_module, cpu_isa_variants};
    use gguf_loader::loader::{cpu_module_score, discovery, LibraryVariant};
    let _library = load_cpu();
    let hardware = HardwareProfile::detect();
    let dir = common::cpu_dir();
    let mut best = (0, String::new());
    for variant in cpu_isa_variants() {
        let module = variant.cpu_module().unwrap();
        let real =
            cpu_module_score(&discovery::plugin_path(&dir, &format!("ggml-cpu-{module}"))).unwrap();
        assert_eq!(
            real as u32,
            variant.ggml_score(&hardware),
            "score of {module}"
        );
        if real > best.0 {
            best = (real, variant.name().to_string());
        }
    }
    assert_eq!(best_cpu_module(&hardware).unwrap().name(), best.1);
}
