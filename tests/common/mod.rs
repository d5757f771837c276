//! Shared test helpers: where the provisioned libraries, models and sources are.
//!
//! Tests that need real llama.cpp libraries or models FAIL when they are missing (never skip):
//! run `variants/provision test`, which provisions everything and then runs the suite.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The variables `variants/provision env` prints (paths of variants, models, sources), with
/// values already in the environment taking precedence.
pub fn provision_env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let output = Command::new("bash")
            .arg(repo_root().join("variants/provision"))
            .arg("env")
            .output()
            .expect("running variants/provision env");
        assert!(
            output.status.success(),
            "variants/provision env failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut map: HashMap<String, String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (key, value) in map.iter_mut() {
            if let Ok(from_env) = std::env::var(key) {
                *value = from_env;
            }
        }
        map
    })
}

/// A provisioned path; panics (fails the test) with the command to run when it is missing.
pub fn required_path(key: &str) -> PathBuf {
    let value = provision_env()
        .get(key)
        .unwrap_or_else(|| panic!("variants/provision env does not define {key}"));
    let path = PathBuf::from(value);
    assert!(
        path.exists(),
        "{key}: {} does not exist. Provision first: `variants/provision test` (builds the llama.cpp variants, fetches the models)",
        path.display()
    );
    path
}

/// The cpu variant directory.
pub fn cpu_dir() -> PathBuf {
    required_path("GGUF_LOADER_CPU_DIR")
}

/// The vulkan variant directory.
pub fn vulkan_dir() -> PathBuf {
    required_path("GGUF_LOADER_VULKAN_DIR")
}

/// The pinned llama.cpp source tree (include/llama.h, ggml/include).
pub fn source_dir() -> PathBuf {
    required_path("GGUF_LOADER_SOURCE_DIR")
}

/// The patched BitNet fork source (bitnet-cpp-sys 0.0.5's `bitnet/` tree): the fork's llama.h
/// is `3rdparty/llama.cpp/include/llama.h`, its ggml headers `3rdparty/llama.cpp/ggml/include`.
pub fn bitnet_source_dir() -> PathBuf {
    required_path("GGUF_LOADER_BITNET_SOURCE_DIR")
}

/// The BitNet fork's variant directories that provisioning builds, as (ISA level, directory):
/// `avx2` (the fork's I2_S kernels have no other x86 level).
pub fn bitnet_dirs() -> Vec<(&'static str, PathBuf)> {
    vec![("avx2", required_path("GGUF_LOADER_BITNET_AVX2_DIR"))]
}

/// The tiny synthetic BitNet model with I2_S weights (the fork's type 36; only the fork loads it).
pub fn tiny_bitnet() -> PathBuf {
    required_path("GGUF_LOADER_TINY_BITNET")
}

/// The same tiny BitNet model with f32 weights (architecture `bitnet`, ternary values times a
/// per-tensor scale): upstream loads it, and quantizes it to TQ2_0.
pub fn tiny_bitnet_f32() -> PathBuf {
    required_path("GGUF_LOADER_TINY_BITNET_F32")
}

/// SmolLM2-135M-Instruct Q4_1.
pub fn smollm2() -> PathBuf {
    required_path("GGUF_LOADER_SMOLLM2")
}

/// Gemma 3 270M Q4_K_M.
pub fn gemma3() -> PathBuf {
    required_path("GGUF_LOADER_GEMMA3")
}

/// The tiny synthetic llama model.
pub fn tiny_llama() -> PathBuf {
    required_path("GGUF_LOADER_TINY_DIR").join("tiny-llama.gguf")
}

/// The tiny synthetic BERT embedding model (non-causal, mean pooling, WordPiece vocabulary,
/// n_embd 32, no output head).
pub fn tiny_bert() -> PathBuf {
    required_path("GGUF_LOADER_TINY_BERT")
}

/// The tiny synthetic BERT reranker (rank pooling, classification head with two labels:
/// n_cls_out 2, n_embd 48).
pub fn tiny_reranker() -> PathBuf {
    required_path("GGUF_LOADER_TINY_RERANKER")
}

/// The tiny synthetic T5 encoder-decoder model (has an encoder; decoder start token 0).
pub fn tiny_t5() -> PathBuf {
    required_path("GGUF_LOADER_TINY_T5")
}

/// The provisioned Python (a virtual environment with gguf, numpy and jinja2).
pub fn python() -> PathBuf {
    required_path("GGUF_LOADER_PYTHON")
}

/// Compiles C source into a shared library or executable with the system C compiler.
pub fn compile_c(source: &str, output: &Path, extra_args: &[&str]) {
    let dir = output.parent().expect("output has a parent");
    let src = dir.join(format!(
        "{}.c",
        output.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&src, source).expect("writing C source");
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .arg(&src)
        .arg("-o")
        .arg(output)
        .args(extra_args)
        .status()
        .expect("running the C compiler (install gcc)");
    assert!(
        status.success(),
        "C compilation of {} failed",
        src.display()
    );
}

/// The C reference program (tests/c/greedy.c), compiled against the pinned headers and linked
/// with the libraries of `variant_dir`.
pub fn c_greedy(variant_dir: &Path) -> PathBuf {
    let source = source_dir();
    c_reference(
        "greedy.c",
        variant_dir,
        &[source.join("include"), source.join("ggml/include")],
        &["-lllama", "-lggml", "-lggml-base"],
    )
}

/// The C program `tests/c/NAME`, compiled once per (program, variant directory) against the
/// headers in `include_dirs` and linked with `libs` of `variant_dir` (found there at run time).
pub fn c_reference(
    name: &str,
    variant_dir: &Path,
    include_dirs: &[PathBuf],
    libs: &[&str],
) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap();
    if let Some((_, _, bin)) = built
        .iter()
        .find(|(n, dir, _)| n == name && dir == variant_dir)
    {
        return bin.clone();
    }
    let stem = name.trim_end_matches(".c");
    let out_dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("c-{stem}-{}", built.len()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let bin = out_dir.join(format!("{stem}-{}", std::process::id()));
    let src = std::fs::read_to_string(repo_root().join("tests/c").join(name)).unwrap();
    let mut args: Vec<String> = include_dirs
        .iter()
        .map(|d| format!("-I{}", d.display()))
        .collect();
    args.push(format!("-L{}", variant_dir.display()));
    args.push(format!("-Wl,-rpath,{}", variant_dir.display()));
    args.extend(libs.iter().map(|l| l.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    compile_c(&src, &bin, &args);
    built.push((name.to_string(), variant_dir.to_path_buf(), bin.clone()));
    bin
}

/// The token ids a parallel engine streamed for `request`, in order.
pub fn streamed_ids(
    events: &[gguf_loader::engine::parallel::Event],
    request: &gguf_loader::engine::parallel::RequestId,
) -> Vec<i32> {
    events
        .iter()
        .filter_map(|e| match e {
            gguf_loader::engine::parallel::Event::Piece { request: r, piece } if r == request => {
                piece.token.map(|t| t.id())
            }
            _ => None,
        })
        .collect()
}

/// `n` greedy ids of `prompt` through the crate's `generate` on `context`.
pub fn greedy_ids(context: &mut gguf_loader::Context, prompt: &str, n: usize) -> Vec<i32> {
    let mut sampler = gguf_loader::Sampler::greedy(context.model()).unwrap();
    context
        .generate(
            prompt,
            &mut sampler,
            gguf_loader::GenerateOptions::default().with_max_tokens(n),
        )
        .unwrap()
        .filter_map(|p| p.unwrap().token)
        .map(|t| t.id())
        .collect()
}

/// Greedy token ids from the C reference program. It uses the CPU's extra buffer types exactly
/// when the crate does for the same libraries (`LlamaLibrary::extra_buffer_types_are_safe`),
/// so both paths run the same kernels.
pub fn c_greedy_ids(
    variant_dir: &Path,
    model: &Path,
    n: usize,
    threads: i32,
    n_ctx: u32,
    n_batch: u32,
    prompt: &str,
) -> Vec<i32> {
    c_greedy_run(
        variant_dir,
        model,
        n,
        threads,
        n_ctx,
        n_batch,
        prompt,
        false,
        None,
    )
    .into_iter()
    .map(|(id, _)| id)
    .collect()
}

/// As [`c_greedy_ids`], with each token's logit lead over the runner-up.
pub fn c_greedy_with_margins(
    variant_dir: &Path,
    model: &Path,
    n: usize,
    threads: i32,
    n_ctx: u32,
    n_batch: u32,
    prompt: &str,
) -> Vec<(i32, f32)> {
    c_greedy_run(
        variant_dir,
        model,
        n,
        threads,
        n_ctx,
        n_batch,
        prompt,
        true,
        None,
    )
}

/// Greedy ids from the C reference with the LoRA adapter `path` applied at `scale`.
#[allow(clippy::too_many_arguments)]
pub fn c_greedy_lora_ids(
    variant_dir: &Path,
    model: &Path,
    n: usize,
    threads: i32,
    n_ctx: u32,
    n_batch: u32,
    prompt: &str,
    lora: (&Path, f32),
) -> Vec<i32> {
    c_greedy_run(
        variant_dir,
        model,
        n,
        threads,
        n_ctx,
        n_batch,
        prompt,
        false,
        Some(lora),
    )
    .into_iter()
    .map(|(id, _)| id)
    .collect()
}

#[allow(clippy::too_many_arguments)]
fn c_greedy_run(
    variant_dir: &Path,
    model: &Path,
    n: usize,
    threads: i32,
    n_ctx: u32,
    n_batch: u32,
    prompt: &str,
    margins: bool,
    lora: Option<(&Path, f32)>,
) -> Vec<(i32, f32)> {
    let extra = gguf_loader::loader::LlamaLibrary::current()
        .expect("load the library in this process before running the C reference")
        .extra_buffer_types_are_safe();
    let mut command = Command::new(c_greedy(variant_dir));
    command.env("GREEDY_EXTRA_BUFTS", if extra { "1" } else { "0" });
    if margins {
        command.env("GREEDY_MARGINS", "1");
    }
    if let Some((path, scale)) = lora {
        command.env("GREEDY_LORA", format!("{}:{scale}", path.display()));
    }
    let output = command
        .arg(variant_dir)
        .arg(model)
        .args([
            n.to_string(),
            threads.to_string(),
            n_ctx.to_string(),
            n_batch.to_string(),
        ])
        .arg(prompt)
        .output()
        .expect("running the C reference");
    assert!(
        output.status.success(),
        "C reference failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_greedy_output(&String::from_utf8_lossy(&output.stdout))
}

/// The C reference programs' output: one `ID` or `ID MARGIN` per line.
pub fn parse_greedy_output(stdout: &str) -> Vec<(i32, f32)> {
    stdout
        .lines()
        .map(|l| {
            let mut parts = l.split_whitespace();
            let id = parts.next().unwrap().parse().unwrap();
            let margin = parts.next().map_or(f32::INFINITY, |m| m.parse().unwrap());
            (id, margin)
        })
        .collect()
}

/// Removes `/* */` and `//` comments (string and character literals are kept intact).
pub fn strip_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |e| i + 2 + e + 2);
                out.push(' ');
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |e| i + e);
            }
            quote @ (b'"' | b'\'') => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
                out.push_str(&text[start..i]);
            }
            _ => {
                let len = text[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&text[i..i + len]);
                i += len;
            }
        }
    }
    out
}

/// Records of the `llama.cpp` log target, captured by [`capture_llama_log`].
pub static LLAMA_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct LlamaLogCapture;

impl log::Log for LlamaLogCapture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if record.target() == "llama.cpp" {
            LLAMA_LOG.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// Installs a logger that keeps llama.cpp's log lines in [`LLAMA_LOG`] (once per process).
pub fn capture_llama_log(level: log::LevelFilter) {
    static LOGGER: LlamaLogCapture = LlamaLogCapture;
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// This machine's hardware plus one pretend discrete Vulkan GPU (AMD).
pub fn hardware_with_pretend_gpu() -> gguf_loader::hardware::HardwareProfile {
    use gguf_loader::hardware::{GpuApi, GpuInfo, GpuType, HardwareProfile};
    let mut hardware = HardwareProfile::detect();
    hardware.gpus.push(GpuInfo {
        api: GpuApi::Vulkan,
        vendor_id: 0x1002,
        name: "a pretend discrete GPU".into(),
        device_type: GpuType::Discrete,
        memory_bytes: 8 << 30,
        driver_version: 1,
        compute_capability: None,
        free_bytes: None,
    });
    hardware
}

/// Selection options for this machine plus one pretend discrete Vulkan GPU (AMD), searching
/// only the vulkan and cpu variants: the vulkan variant is then the first candidate.
pub fn options_with_pretend_gpu(
    smoke_test: Option<gguf_loader::loader::smoke::SmokeTest>,
) -> gguf_loader::loader::SelectOptions {
    let hardware = hardware_with_pretend_gpu();
    gguf_loader::loader::SelectOptions {
        search: gguf_loader::loader::SearchPaths::new()
            .with_dir(vulkan_dir())
            .with_dir(cpu_dir())
            .only_explicit(),
        force: None,
        gpu_enabled: true,
        preference: Vec::new(),
        hardware,
        smoke_test,
        fallback: true,
        family: gguf_loader::loader::Family::Upstream,
    }
}

/// `target/<profile>`: the directory of the test executable's `deps` directory.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test executable lies in target/<profile>/deps")
        .to_path_buf()
}

/// Builds the examples into [`profile_dir`] once per test run.
pub fn build_examples() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let profile_dir = profile_dir();
        let target_dir = profile_dir.parent().expect("target/<profile> has a parent");
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--examples", "--quiet", "--manifest-path"])
            .arg(repo_root().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir);
        // The features this test was built with, so the examples are not rebuilt without them.
        if cfg!(feature = "download") {
            cargo.args(["--features", "download"]);
        }
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                cargo.arg("--release");
            }
            Some(profile) => {
                cargo.args(["--profile", profile]);
            }
        }
        let output = cargo.output().map_err(|e| format!("running cargo: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`cargo build --examples` failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    if let Err(message) = result {
        panic!("{message}");
    }
}

/// The built example `name`.
pub fn example(name: &str) -> PathBuf {
    build_examples();
    let path = profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "example binary {} is missing after `cargo build --examples`",
        path.display()
    );
    path
}

/// The environment variable that names the case a child process runs (see [`child_cases`]).
pub const CHILD_CASE_ENV: &str = "GGUF_LOADER_TEST_CASE";
/// What a child prints when its case returned.
pub const CHILD_DONE: &str = "child case finished without crashing";

/// Runs case `name` of this test binary in a child process and requires a normal exit with
/// the closing line: an abort or a signal fails this one test, not the whole run.
pub fn run_in_child(name: &str) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_CASE_ENV, name)
        .output()
        .expect("spawning the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = output.status.signal() {
            panic!("case {name}: the child was killed by signal {signal}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
        }
    }
    assert!(
        output.status.success() && stdout.contains(CHILD_DONE),
        "case {name}: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
}

/// Declares test cases that each run in a child process: every `fn name() { body }` becomes a
/// `#[test]` that re-executes this binary with [`CHILD_CASE_ENV`] set to `name`, and the test
/// `child_entry` runs the body there (and does nothing in the parent).
#[allow(unused_macros)]
macro_rules! child_cases {
    ($( $(#[$meta:meta])* fn $name:ident() $body:block )*) => {
        $(
            $(#[$meta])*
            #[test]
            fn $name() {
                common::run_in_child(stringify!($name));
            }
        )*

        /// The child side: runs the case named by the environment (does nothing otherwise).
        #[test]
        fn child_entry() {
            let Ok(case) = std::env::var(common::CHILD_CASE_ENV) else { return };
            mod cases {
                #[allow(unused_imports)]
                use super::*;
                $( pub fn $name() $body )*
            }
            match case.as_str() {
                $( stringify!($name) => cases::$name(), )*
                other => panic!("unknown case {other}"),
            }
            println!("{}", common::CHILD_DONE);
        }
    };
}

/// The seeded random LoRA adapter for SmolLM2 (`variants/tiny_models.py`: rank 4, alpha 4, on
/// `attn_q` and `attn_v` of every layer).
pub fn smollm2_lora() -> PathBuf {
    required_path("GGUF_LOADER_SMOLLM2_LORA")
}

/// The seeded random LoRA adapter for the tiny llama model (same layout as [`smollm2_lora`]).
pub fn tiny_llama_lora() -> PathBuf {
    required_path("GGUF_LOADER_TINY_DIR").join("tiny-llama-lora.gguf")
}
