//! GPU variants smoke-tested in a child process: a healthy variant passes; a child that crashes
//! (as a broken driver would) is rejected with its signal and selection falls back to the CPU,
//! while the host process carries on.

mod common;

use std::time::Duration;

use gguf_loader::loader::load_best;
use gguf_loader::loader::smoke::{run_if_requested, SmokeTest};

/// The child side: exits inside `run_if_requested` when the parent asked for a smoke test.
#[test]
fn smoke_child_entry() {
    run_if_requested();
}

fn child() -> SmokeTest {
    SmokeTest {
        program: std::env::current_exe().unwrap(),
        args: vec![
            "--exact".into(),
            "smoke_child_entry".into(),
            "--test-threads=1".into(),
            "--nocapture".into(),
        ],
        timeout: Duration::from_secs(300),
    }
}

#[test]
fn healthy_vulkan_variant_passes_in_a_child() {
    std::env::set_var("GGML_VK_VISIBLE_DEVICES", "0");
    child()
        .run(&common::vulkan_dir(), "vulkan")
        .expect("lavapipe smoke test");
    let error = child().run(&common::cpu_dir(), "vulkan").unwrap_err();
    assert!(error.contains("no vulkan device"), "{error}");
}

#[test]
fn crashing_child_rejects_the_gpu_variant_and_falls_back() {
    let options = common::options_with_pretend_gpu(Some(SmokeTest {
        program: "sh".into(),
        args: vec!["-c".into(), "kill -SEGV $$".into()],
        timeout: Duration::from_secs(30),
    }));
    let selection = load_best(&options).expect("falls back to a CPU variant");
    let (_, reason) = selection
        .rejected
        .iter()
        .find(|(n, _)| n == "vulkan")
        .expect("vulkan was tried");
    assert!(reason.contains("signal 11"), "{reason}");
    assert!(
        selection.variant.starts_with("cpu-"),
        "{}",
        selection.variant
    );
    assert!(selection
        .library
        .devices()
        .iter()
        .any(|d| d.backend == "CPU"));
}
