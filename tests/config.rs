//! The configuration file (`backend_config.json`): read into the selection options under the
//! environment, unknown keys warned about, wrong types refused naming the key, and the doctor
//! showing every effective value with its source.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use gguf_loader::hardware::HardwareProfile;
use gguf_loader::loader::config::{BackendConfig, Source};
use gguf_loader::loader::{rank, SelectOptions};
use gguf_loader::{ContextParams, GpuLayers, ModelParams};

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("backend_config.json");
    std::fs::write(&path, text).unwrap();
    path
}

fn doctor(config: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(common::example("doctor"));
    command
        .arg("--json")
        .env("GGUF_LOADER_CONFIG", config)
        .env_remove("GGUF_BACKEND")
        .env_remove("GGUF_GPU_ENABLED")
        .env_remove("GGUF_DEBUG")
        .env_remove("GGUF_BACKEND_PREFERENCE")
        .env("GGUF_LOADER_VARIANTS_DIR", common::cpu_dir());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("running the doctor")
}

#[test]
fn doctor_shows_each_value_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        r#"{"preferred_backend": "cpu-haswell", "gpu_enabled": true, "fallback_enabled": true,
            "backends": {"cpu": {"context_size": 1024, "batch_size": 128}, "vulkan": {"gpu_layers": 99}},
            "n_ctx": 4096, "use_mlock": false, "colour": "blue"}"#,
    );
    let output = doctor(&path, &[("GGUF_GPU_ENABLED", "0")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json: {e}\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let configuration = &report["configuration"];
    assert_eq!(configuration["file"].as_str(), path.to_str());
    let value = |key: &str| {
        configuration["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {configuration}"))
            .clone()
    };
    assert_eq!(value("gpu_enabled")["value"], false);
    assert_eq!(
        value("gpu_enabled")["source"],
        "environment GGUF_GPU_ENABLED"
    );
    assert_eq!(value("preferred_backend")["value"], "cpu-haswell");
    assert!(value("preferred_backend")["source"]
        .as_str()
        .unwrap()
        .starts_with("file "));
    assert_eq!(value("backends.vulkan.gpu_layers")["value"], 99);
    assert_eq!(value("context_size")["value"], 4096);
    assert_eq!(value("debug")["source"], "default");
    let warnings = configuration["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("colour")),
        "{warnings:?}"
    );
    // The preferred backend is what the doctor picks, with the file's cpu settings.
    assert_eq!(
        report["pick"]["variant"], "cpu-haswell",
        "{}",
        report["pick"]
    );
    assert_eq!(configuration["for_pick"]["context_size"], 1024);
    assert_eq!(configuration["for_pick"]["batch_size"], 128);
}

#[test]
fn wrong_types_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        (
            r#"{"backends": {"vulkan": {"gpu_layers": "all"}}}"#,
            "backends.vulkan.gpu_layers",
        ),
        (r#"{"gpu_enabled": "yes"}"#, "gpu_enabled"),
        (r#"{"n_ctx": 0}"#, "n_ctx"),
        (
            r#"{"preferred_backend": "warp-drive"}"#,
            "preferred_backend",
        ),
    ] {
        let path = write_config(dir.path(), text);
        let output = doctor(&path, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{text}: {stderr}");
        assert!(stderr.contains(key), "{text}: {stderr}");
        assert!(stderr.contains("backend_config.json"), "{text}: {stderr}");
    }
    let path = write_config(dir.path(), "{ not json");
    let output = doctor(&path, &[]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("not valid JSON"));
    // A named file that does not exist is an error; an empty name means no file.
    let output = doctor(&dir.path().join("missing.json"), &[]);
    assert_eq!(output.status.code(), Some(1));
    let output = doctor(Path::new(""), &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn environment_overrides_the_file() {
    let config = BackendConfig::from_json(
        r#"{"preferred_backend": "vulkan", "gpu_enabled": false}"#,
        Path::new("backend_config.json"),
    )
    .unwrap()
    .with_environment(|name| match name {
        "GGUF_BACKEND" => Some("cpu".into()),
        "GGUF_GPU_ENABLED" => Some("yes".into()),
        "GGUF_DEBUG" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(config.forced_backend.value.as_deref(), Some("cpu"));
    assert!(config.gpu_enabled.value);
    assert_eq!(
        config.gpu_enabled.source,
        Source::Environment("GGUF_GPU_ENABLED")
    );
    assert!(config.debug.value);
    let options = SelectOptions::from_config(&config).unwrap();
    assert_eq!(options.force.as_deref(), Some("cpu"));
    assert!(options.gpu_enabled);
}

fn options(config: &BackendConfig) -> SelectOptions {
    let mut options = SelectOptions::from_config(config).unwrap();
    options.hardware = HardwareProfile::detect();
    options
}

#[test]
fn fallback_disabled_tries_one_candidate() {
    let on = BackendConfig::from_json("{}", Path::new("c.json")).unwrap();
    let off =
        BackendConfig::from_json(r#"{"fallback_enabled": false}"#, Path::new("c.json")).unwrap();
    let usable =
        |options: &SelectOptions| rank(options).iter().filter(|c| c.verdict.is_ok()).count();
    assert!(
        usable(&options(&on)) > 1,
        "this machine runs several CPU variants"
    );
    assert_eq!(usable(&options(&off)), 1);
    let ranked = rank(&options(&off));
    assert!(ranked.iter().any(|c| c
        .verdict
        .as_ref()
        .err()
        .is_some_and(|r| r.contains("fallback disabled"))));
}

#[test]
fn settings_reach_model_and_context_params() {
    let config = BackendConfig::from_json(
        r#"{"n_gpu_layers": -1, "n_ctx": 2048, "n_batch": 256, "use_mlock": true,
            "backends": {"vulkan": {"gpu_layers": 12, "context_size": 8192}}}"#,
        Path::new("c.json"),
    )
    .unwrap();
    let vulkan = config.settings_for("vulkan");
    let model = ModelParams::new().with_backend_settings(&vulkan);
    assert_eq!(model.gpu_layers, GpuLayers::Count(12));
    assert!(model.use_mlock);
    let context = ContextParams::default().with_backend_settings(&vulkan);
    assert_eq!((context.n_ctx, context.n_batch), (Some(8192), Some(256)));
    let cpu = ModelParams::new().with_backend_settings(&config.settings_for("cpu-haswell"));
    assert_eq!(
        cpu.gpu_layers,
        GpuLayers::All,
        "legacy n_gpu_layers -1 means all"
    );
}
