//! GPU variants smoke-tested in a child process: a healthy variant passes; a child that crashes
//! (as a broken driver would) is rejected with its signal and selection falls back to the CPU,
//! while the host process carries on; a child whose program forgot `run_if_requested` still
//! answers the smoke test and never spawns a grandchild.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use gguf_loader::loader::smoke::{run_if_requested, SmokeTest, SMOKE_DIR_ENV};
use gguf_loader::loader::{load_best, SearchPaths, SelectOptions};

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

/// Where the forgetful children below record that they started (one file per process).
const MARKERS_ENV: &str = "GGUF_LOADER_TEST_SMOKE_MARKERS";
/// The fake vulkan directory the forgetful children select from.
const FAKE_DIR_ENV: &str = "GGUF_LOADER_TEST_SMOKE_FAKE_DIR";
/// How deep in the process tree a forgetful child is (1: the child, 2: a grandchild).
const DEPTH_ENV: &str = "GGUF_LOADER_TEST_SMOKE_DEPTH";

/// A variant directory that looks like a vulkan build (empty files): discovery accepts it, and
/// loading it fails at dlopen, before any llama.cpp code runs.
fn fake_vulkan_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "libggml-base.so",
        "libggml.so",
        "libllama.so",
        "libggml-vulkan.so",
    ] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    dir
}

/// This test binary as a smoke-test child running the test `entry` (through `sh`, which puts
/// the marker and fake directories into the child's environment).
fn self_as_child(entry: &str, markers: &Path, fake_dir: &Path) -> SmokeTest {
    let script = format!(
        "{MARKERS_ENV}=\"$1\" {FAKE_DIR_ENV}=\"$2\" exec \"$0\" --exact {entry} --test-threads=1 --nocapture"
    );
    SmokeTest {
        program: "sh".into(),
        args: vec![
            "-c".into(),
            script,
            std::env::current_exe().unwrap().display().to_string(),
            markers.display().to_string(),
            fake_dir.display().to_string(),
        ],
        timeout: Duration::from_secs(120),
    }
}

/// Selection options whose first candidate is the vulkan variant of `fake_dir` (a pretend
/// discrete GPU), smoke-tested with `smoke`.
fn forgetful_options(fake_dir: &Path, smoke: SmokeTest) -> SelectOptions {
    let hardware = common::hardware_with_pretend_gpu();
    SelectOptions {
        search: SearchPaths::new().with_dir(fake_dir).only_explicit(),
        force: None,
        gpu_enabled: true,
        preference: Vec::new(),
        hardware,
        smoke_test: Some(smoke),
        fallback: true,
        family: gguf_loader::loader::Family::Upstream,
    }
}

/// In a smoke-test child: records this process in the markers directory and returns its depth
/// (a grandchild, which must never exist, exits at once so a regression cannot recurse).
/// Elsewhere: `None`.
fn enter_forgetful_child() -> Option<(PathBuf, PathBuf)> {
    std::env::var_os(SMOKE_DIR_ENV)?;
    let markers = PathBuf::from(std::env::var_os(MARKERS_ENV).expect("markers directory"));
    let fake_dir = PathBuf::from(std::env::var_os(FAKE_DIR_ENV).expect("fake directory"));
    let depth = std::env::var(DEPTH_ENV)
        .ok()
        .and_then(|d| d.parse::<u32>().ok())
        .unwrap_or(0)
        + 1;
    // Inherited by any process this one starts.
    std::env::set_var(DEPTH_ENV, depth.to_string());
    std::fs::write(
        markers.join(format!("depth-{depth}-pid-{}", std::process::id())),
        b"",
    )
    .unwrap();
    if depth > 1 {
        std::process::exit(3);
    }
    Some((markers, fake_dir))
}

/// The child side of `a_forgetful_child_never_spawns_a_grandchild`: a program whose `main`
/// forgot `run_if_requested` and selects a variant with smoke tests on, as its parent did.
#[test]
fn forgetful_child_entry() {
    let Some((markers, fake_dir)) = enter_forgetful_child() else {
        return;
    };
    let smoke = self_as_child("forgetful_child_entry", &markers, &fake_dir);
    let _ = load_best(&forgetful_options(&fake_dir, smoke));
    // Reaching this point means selection ran in the child instead of the smoke test.
}

/// The child side of `a_smoke_child_refuses_to_start_a_child`: calls `SmokeTest::run` itself.
#[test]
fn spawning_child_entry() {
    let Some((markers, fake_dir)) = enter_forgetful_child() else {
        return;
    };
    let error = self_as_child("spawning_child_entry", &markers, &fake_dir)
        .run(&fake_dir, "vulkan")
        .unwrap_err();
    if error.contains("smoke test unavailable") && error.contains(SMOKE_DIR_ENV) {
        std::process::exit(0);
    }
    eprintln!("unexpected: {error}");
    std::process::exit(1);
}

/// The process tree's markers: one name per process that entered a forgetful child.
fn markers_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_forgetful_child_never_spawns_a_grandchild() {
    let markers = tempfile::tempdir().unwrap();
    let fake = fake_vulkan_dir();
    let smoke = self_as_child("forgetful_child_entry", markers.path(), fake.path());
    // The parent's own selection: the vulkan candidate is smoke-tested in the forgetful child.
    let outcome = load_best(&forgetful_options(fake.path(), smoke));
    let rejected = match &outcome {
        Ok(selection) => &selection.rejected,
        Err(gguf_loader::LoadError::NoUsableVariant { rejected }) => rejected,
        Err(other) => panic!("unexpected error {other}"),
    };
    let names = markers_in(markers.path());
    assert_eq!(
        names.len(),
        1,
        "exactly one child, no grandchild: {names:?}"
    );
    assert!(names[0].starts_with("depth-1-"), "{names:?}");
    // The child answered the smoke test (its dlopen of the fake build failed) rather than
    // running its main to the end.
    let (_, reason) = rejected
        .iter()
        .find(|(n, _)| n == "vulkan")
        .expect("vulkan was tried");
    assert!(
        reason.contains("smoke test failed") && reason.contains("cannot open"),
        "{reason}"
    );
}

#[test]
fn a_smoke_child_refuses_to_start_a_child() {
    let markers = tempfile::tempdir().unwrap();
    let fake = fake_vulkan_dir();
    self_as_child("spawning_child_entry", markers.path(), fake.path())
        .run(fake.path(), "vulkan")
        .expect("the child's own SmokeTest::run refused to spawn");
    let names = markers_in(markers.path());
    assert_eq!(
        names.len(),
        1,
        "exactly one child, no grandchild: {names:?}"
    );
}
