//! The cuda variant on a machine without a usable NVIDIA GPU (CI has none, and the real cuda
//! variant is not built by the test command): with a cuda variant directory present, the doctor
//! reports the variant unavailable with the reason, forcing it (`GGUF_BACKEND=cuda`) is a typed
//! error, and selection falls back to a CPU variant.
//!
//! The cuda directory is made here the way `variants/provision cuda` lays out the real one: the
//! real cpu build's libraries, a `libggml-cuda.so` that needs `libcuda.so.1` (the driver, absent
//! from the directory, as in the real plugin) and a bundled `libcudart.so.13` next to it, and a
//! manifest written by `variants/manifest.py` with the bundled library recorded. The plugin is not
//! a real ggml backend: where a driver exists it loads but registers nothing, so the directory
//! offers no CUDA device on any machine. What a real GPU machine shows is `variants/gpu-check`'s
//! job, outside this suite.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gguf_loader::hardware::{CudaDriver, GpuApi, GpuInfo, GpuType, HardwareProfile};
use gguf_loader::loader::{
    load_best, Backend, Manifest, SearchPaths, SelectOptions, VariantDirectory, VariantKind,
};
use gguf_loader::{GpuLayers, LoadError, Model, ModelParams};

const NVIDIA: u32 = 0x10de;

/// Hard-links (or copies) every file of `from` into `to`.
fn link_files(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("reading the cpu variant") {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "manifest.json" || name == ".complete" || !entry.path().is_file() {
            continue;
        }
        let target = to.join(&name);
        if std::fs::hard_link(entry.path(), &target).is_err() {
            std::fs::copy(entry.path(), &target).expect("copying a cpu library");
        }
    }
}

/// Builds a cuda variant directory `dir` (see the module comment); returns `dir`.
fn make_cuda_variant(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    link_files(&common::cpu_dir(), dir);
    // The driver exists only at link time, as the toolkit's stub does.
    let stub_dir = dir.with_extension("driver-stub");
    std::fs::create_dir_all(&stub_dir).unwrap();
    common::compile_c(
        "int cuInit(unsigned int flags) { (void)flags; return 100; }\n",
        &stub_dir.join("libcuda.so"),
        &["-shared", "-fPIC", "-Wl,-soname,libcuda.so.1"],
    );
    common::compile_c(
        "int cudaRuntimeGetVersion(int *v) { *v = 13000; return 0; }\n",
        &dir.join("libcudart.so.13"),
        &["-shared", "-fPIC", "-Wl,-soname,libcudart.so.13"],
    );
    let lib_dirs = [
        format!("-L{}", dir.display()),
        format!("-L{}", stub_dir.display()),
    ];
    common::compile_c(
        "int cuInit(unsigned int); int cudaRuntimeGetVersion(int *);\n\
         int fake_cuda_plugin(void) { int v; return cudaRuntimeGetVersion(&v) + cuInit(0); }\n",
        &dir.join("libggml-cuda.so"),
        &[
            "-shared",
            "-fPIC",
            &lib_dirs[0],
            &lib_dirs[1],
            "-l:libcudart.so.13",
            "-lcuda",
            "-Wl,-rpath,$ORIGIN",
            "-Wl,--no-as-needed",
        ],
    );
    std::fs::remove_dir_all(&stub_dir).unwrap();
    for leftover in ["libcudart.so.13.c", "libggml-cuda.so.c"] {
        let _ = std::fs::remove_file(dir.join(leftover));
    }
    let output = Command::new("python3")
        .arg(common::repo_root().join("variants/manifest.py"))
        .arg("write")
        .arg(dir)
        .args([
            "--name",
            "cuda",
            "--kind",
            "gpu",
            "--backends",
            r#"["cpu","cuda","rpc"]"#,
        ])
        .args([
            "--source-crate",
            "llama-cpp-sys-2",
            "--source-version",
            "test",
        ])
        .args(["--build-seconds", "0"])
        .args(["--expect-llama", gguf_loader::sys::upstream::LLAMA_VERSION])
        .args(["--expect-ggml", gguf_loader::sys::upstream::GGML_VERSION])
        .arg("--bundled-library=libcudart.so.13=nvidia-cuda-runtime==13.0.96")
        .arg("--cmake-flag=-DGGML_CUDA=ON")
        .output()
        .expect("running variants/manifest.py (python3)");
    assert!(
        output.status.success(),
        "manifest.py write failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(dir.join(".complete"), "").unwrap();
    dir.to_path_buf()
}

/// Per process: `<tmp>/variants/{cuda, cpu -> the real cpu variant}` and an empty cache.
struct Fixture {
    variants: PathBuf,
    cuda: PathBuf,
    empty_cache: PathBuf,
}

/// Removes the fixtures of test processes that have exited (one per process, see [`fixture`]).
fn remove_stale_fixtures() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("variant-cuda-")
            .map(|rest| rest.trim_start_matches("verify-"))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        remove_stale_fixtures();
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("variant-cuda-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let variants = root.join("variants");
        let cuda = make_cuda_variant(&variants.join("cuda"));
        std::os::unix::fs::symlink(common::cpu_dir(), variants.join("cpu")).unwrap();
        let empty_cache = root.join("empty-cache");
        std::fs::create_dir_all(&empty_cache).unwrap();
        Fixture {
            variants,
            cuda,
            empty_cache,
        }
    })
}

/// Points discovery at the fixture only and clears every selection setting (in a child process,
/// before anything reads the environment).
fn use_fixture_environment() {
    let fixture = fixture();
    std::env::set_var("GGUF_LOADER_VARIANTS_DIR", &fixture.variants);
    std::env::set_var("GGUF_LOADER_CACHE", &fixture.empty_cache);
    std::env::set_var("GGUF_LOADER_CONFIG", "");
    for name in [
        "GGUF_BACKEND",
        "GGUF_BACKEND_PREFERENCE",
        "GGUF_GPU_ENABLED",
        "GGUF_SMOKE_TEST",
    ] {
        std::env::remove_var(name);
    }
}

/// Why this machine cannot run the cuda variant, worked out from the detected hardware
/// independently of the selection code; `None` on a machine with an NVIDIA GPU and its driver.
fn expected_cuda_reason(hardware: &HardwareProfile) -> Option<String> {
    if !hardware.gpus.iter().any(|g| g.vendor_id == NVIDIA) {
        return Some("no NVIDIA GPU".into());
    }
    match &hardware.cuda_driver {
        CudaDriver::Missing(reason) => Some(format!("CUDA {reason}")),
        CudaDriver::Present { .. } => None,
    }
}

#[test]
fn the_cuda_directory_is_a_cuda_variant_with_its_bundled_runtime_recorded() {
    let cuda = &fixture().cuda;
    let directory = VariantDirectory::open(cuda).expect("opening the cuda directory");
    assert_eq!(directory.kind, "cuda");
    assert!(
        directory.backends.contains(&Backend::Cuda) && directory.backends.contains(&Backend::Cpu),
        "{:?}",
        directory.backends
    );
    assert!(!directory.cpu_modules.is_empty());
    let manifest = Manifest::read(cuda).unwrap().expect("a manifest");
    assert!(manifest.libraries.contains_key("libcudart.so.13"));
    assert!(manifest.libraries.contains_key("libggml-cuda.so"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cuda.join("manifest.json")).unwrap())
            .unwrap();
    let bundled = &json["bundled_libraries"]["libcudart.so.13"];
    assert_eq!(bundled["version"], "13.0.96");
    assert_eq!(bundled["package"], "nvidia-cuda-runtime");
    assert_eq!(
        bundled["sha256"].as_str(),
        manifest
            .libraries
            .get("libcudart.so.13")
            .map(String::as_str)
    );
}

#[test]
fn manifest_verify_checks_the_bundled_runtime() {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("variant-cuda-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = make_cuda_variant(&root.join("cuda"));
    let verify = || {
        Command::new("python3")
            .arg(common::repo_root().join("variants/manifest.py"))
            .arg("verify")
            .arg(&root)
            .args(["--expect-llama", gguf_loader::sys::upstream::LLAMA_VERSION])
            .args(["--expect-ggml", gguf_loader::sys::upstream::GGML_VERSION])
            .output()
            .expect("running variants/manifest.py")
    };
    let output = verify();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Another runtime library in place of the recorded one.
    std::fs::remove_file(dir.join("libcudart.so.13")).unwrap();
    std::fs::write(dir.join("libcudart.so.13"), b"not the bundled library").unwrap();
    let output = verify();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("libcudart.so.13"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_doctor_reports_cuda_unavailable_with_the_reason() {
    let fixture = fixture();
    let output = Command::new(common::example("doctor"))
        .arg("--json")
        .env("GGUF_LOADER_VARIANTS_DIR", &fixture.variants)
        .env("GGUF_LOADER_CACHE", &fixture.empty_cache)
        .env("GGUF_LOADER_CONFIG", "")
        .env_remove("GGUF_BACKEND")
        .env_remove("GGUF_BACKEND_PREFERENCE")
        .env_remove("GGUF_GPU_ENABLED")
        .env_remove("GGUF_SMOKE_TEST")
        .output()
        .expect("running the doctor");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "doctor failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("doctor --json");
    let cuda = report["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "cuda")
        .expect("the doctor lists cuda");
    match expected_cuda_reason(&HardwareProfile::detect()) {
        Some(reason) => {
            assert_eq!(cuda["available"], false, "{cuda}");
            assert_eq!(cuda["reason"], reason.as_str(), "{cuda}");
        }
        // An NVIDIA GPU with its driver: the directory is found (its plugin then offers no
        // device, which the pick shows).
        None => {
            assert_eq!(cuda["available"], true, "{cuda}");
            assert!(cuda["reason"].as_str().unwrap().contains("cuda"), "{cuda}");
        }
    }
    let pick = report["pick"]["variant"].as_str().unwrap_or_default();
    assert!(pick.starts_with("cpu-"), "pick: {}", report["pick"]);
}

child_cases! {
    fn forcing_cuda_is_a_typed_error() {
        use_fixture_environment();
        std::env::set_var("GGUF_BACKEND", "cuda");
        let options = SelectOptions::from_env().expect("GGUF_BACKEND=cuda is a known variant");
        assert_eq!(options.force.as_deref(), Some("cuda"));
        match load_best(&options) {
            Err(LoadError::NoUsableVariant { rejected }) => {
                // Forced, so it is the only candidate, and loading it finds no CUDA device.
                assert_eq!(rejected.len(), 1, "{rejected:?}");
                assert_eq!(rejected[0].0, "cuda");
                assert_eq!(rejected[0].1, "loaded, but its cuda backend has no device");
            }
            other => panic!("expected NoUsableVariant, got {other:?}"),
        }
    }

    fn selection_falls_back_to_a_cpu_variant() {
        use_fixture_environment();
        let options = SelectOptions::from_env().expect("options");
        let expected = expected_cuda_reason(&options.hardware);
        let (selection, model) = Model::load_best(&options, common::tiny_llama(), |variant| {
            let layers = if variant.kind() == VariantKind::Gpu {
                GpuLayers::Auto { n_ctx: 256 }
            } else {
                GpuLayers::None
            };
            ModelParams::new().with_gpu_layers(layers)
        })
        .expect("a CPU variant");
        assert!(selection.variant.starts_with("cpu-"), "{}", selection.variant);
        let (_, reason) = selection
            .rejected
            .iter()
            .find(|(name, _)| name == "cuda")
            .expect("cuda was a candidate");
        match expected {
            Some(expected) => {
                assert_eq!(reason, &expected);
                assert_eq!(
                    selection.library.directory().path.canonicalize().unwrap(),
                    common::cpu_dir().canonicalize().unwrap(),
                    "served by the cpu variant"
                );
            }
            None => assert_eq!(reason, "loaded, but its cuda backend has no device"),
        }
        assert!(!model.tokenize("hello", true, false).unwrap().is_empty());
    }

    fn an_nvidia_gpu_whose_cuda_plugin_finds_no_device_falls_back_to_the_cpu() {
        // The hardware probe says "NVIDIA GPU, driver present", but the plugin registers no
        // device (a driver too old for CUDA 13, a GPU older than Turing, a broken install):
        // the cuda directory is loaded, rejected, and its CPU backend serves.
        let mut hardware = HardwareProfile::detect();
        hardware.gpus.push(GpuInfo {
            api: GpuApi::Cuda,
            vendor_id: NVIDIA,
            name: "a pretend NVIDIA GPU".into(),
            device_type: GpuType::Discrete,
            memory_bytes: 8 << 30,
            driver_version: 57_000,
            compute_capability: Some((6, 1)),
            free_bytes: Some(8 << 30),
        });
        hardware.cuda_driver = CudaDriver::Present { version: 12080 };
        let fixture = fixture();
        let options = SelectOptions {
            search: SearchPaths::new()
                .with_dir(&fixture.variants)
                .only_explicit(),
            force: None,
            gpu_enabled: true,
            preference: Vec::new(),
            hardware,
            smoke_test: None,
            fallback: true,
            family: gguf_loader::loader::Family::Upstream,
        };
        let selection = load_best(&options).expect("falls back to the CPU");
        assert_eq!(
            selection.rejected.first().map(|(n, r)| (n.as_str(), r.as_str())),
            Some(("cuda", "loaded, but its cuda backend has no device"))
        );
        assert!(
            selection.variant.starts_with("cpu-") && selection.variant.contains("cuda libraries"),
            "{}",
            selection.variant
        );
        assert_eq!(selection.library.directory().path, fixture.cuda);
    }
}
