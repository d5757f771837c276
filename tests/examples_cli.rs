//! The examples' command lines: `--help` prints usage and exits 0; an unknown option is named in
//! the error and exits 2. No llama.cpp is needed (nothing is loaded before the arguments are
//! parsed).
//!
//! The example binaries are the ones `cargo test` builds next to the test executables
//! (`target/<profile>/examples/<name>`). A filtered run (`cargo test --test examples_cli`) does
//! not build examples, so the test runs `cargo build --examples` once for the same target
//! directory and profile (a no-op when they are up to date).

mod common;

use std::process::{Command, Output};

use common::example;

const EXAMPLES: [&str; 11] = [
    "generate",
    "doctor",
    "rpc_server",
    "bench",
    "chat",
    "embed",
    "rerank",
    "batch",
    "session_bench",
    "native_host",
    "serve",
];

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(example(name))
        .args(args)
        // Not a smoke-test child, whatever the environment of the test run says.
        .env_remove("GGUF_LOADER_SMOKE_DIR")
        .env_remove("GGUF_LOADER_SMOKE_BACKEND")
        .output()
        .unwrap_or_else(|e| panic!("running example {name}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_prints_usage_and_exits_0() {
    let pull = cfg!(feature = "download").then_some("pull");
    for name in EXAMPLES.into_iter().chain(pull) {
        for flag in ["--help", "-h"] {
            let output = run(name, &[flag]);
            let stdout = text(&output.stdout);
            assert_eq!(
                output.status.code(),
                Some(0),
                "{name} {flag}: {stdout}{}",
                text(&output.stderr)
            );
            assert!(
                stdout.starts_with(&format!("usage: {name} ")),
                "{name} {flag}: {stdout}"
            );
            assert!(stdout.contains("--help"), "{name} {flag}: {stdout}");
        }
    }
}

#[test]
fn help_lists_every_documented_flag() {
    let expected: [(&str, &[&str]); 4] = [
        (
            "generate",
            &[
                "--model",
                "-n",
                "--greedy",
                "--temp",
                "--top-k",
                "--top-p",
                "--min-p",
                "--repeat-penalty",
                "--seed",
                "--threads",
                "--variant",
                "--variant-dir",
                "--gpu-layers",
                "-ngl",
                "--token-ids",
                "--rpc",
            ],
        ),
        ("doctor", &["--json", "--rpc"]),
        (
            "rpc_server",
            &[
                "--host",
                "--port",
                "--threads",
                "--device",
                "--cache-dir",
                "--variant",
                "--variant-dir",
                "--allow-remote",
            ],
        ),
        (
            "bench",
            &[
                "--model",
                "--threads",
                "--prompt-tokens",
                "--gen-tokens",
                "--repeat",
            ],
        ),
    ];
    for (name, flags) in expected {
        let stdout = text(&run(name, &["--help"]).stdout);
        for flag in flags {
            assert!(
                stdout.contains(flag),
                "{name} --help lacks {flag}: {stdout}"
            );
        }
    }
}

#[test]
fn unknown_option_is_named_and_exits_2() {
    let pull = cfg!(feature = "download").then_some("pull");
    for name in EXAMPLES.into_iter().chain(pull) {
        for (args, named) in [
            (&["--frobnicate"][..], "unknown option --frobnicate"),
            (&["-Z"][..], "unknown option -Z"),
        ] {
            let output = run(name, args);
            let stderr = text(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{name} {args:?}: {stderr}");
            assert!(
                stderr.starts_with(&format!("error: {named}")),
                "{name} {args:?}: {stderr}"
            );
            assert!(output.stdout.is_empty(), "{name} {args:?}");
        }
    }
}

#[test]
fn usage_errors_exit_2_with_the_old_messages() {
    for (name, args, message) in [
        ("generate", &["--temp"][..], "error: --temp needs a value"),
        (
            "generate",
            &["--temp", "warm", "hi"][..],
            "error: invalid value for --temp: \"warm\"",
        ),
        (
            "generate",
            &["--greedy", "--top-k", "5", "hi"][..],
            "error: --greedy excludes --temp/--top-k/--top-p/--min-p/--repeat-penalty",
        ),
        ("generate", &["-n", "3"][..], "error: missing PROMPT"),
        (
            "generate",
            &["one", "two"][..],
            "error: only one PROMPT argument (quote it)",
        ),
        (
            "generate",
            &["-ngl"][..],
            "error: --gpu-layers needs a value",
        ),
        (
            "doctor",
            &["extra"][..],
            "error: unexpected argument \"extra\"",
        ),
        ("bench", &["--threads", "many"][..], "error: bad --threads"),
        ("bench", &["--repeat"][..], "error: --repeat needs a value"),
    ] {
        let output = run(name, args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name} {args:?}: {stderr}");
        assert!(stderr.starts_with(message), "{name} {args:?}: {stderr}");
    }
}
