//! The BitNet fork (bitnet.cpp, 2024 llama.h) as the crate's second ABI generation.
//!
//! - Token-exact greedy ids of the tiny I2_S BitNet model through the crate equal the C
//!   reference over the fork's own libraries (`tests/c/greedy_bitnet.c`), on every built BitNet
//!   variant (`avx2`).
//! - Each generation's ABI check refuses the other's libraries with a typed error naming what
//!   the library reports.
//! - One `generate` run completes with an upstream and a BitNet model (the second code base in
//!   a worker process); a corrupt model or a killed worker is that model's typed error while
//!   the other keeps generating.
//! - The ternary model quantized to TQ2_0 by upstream: CPU and Vulkan (lavapipe) agree on every
//!   token whose lead over the runner-up is clear.
//! - What the fork lacks is `Unsupported`, and models of the other code base are refused before
//!   any C call.
//!
//! One build is loaded per process, so every case that loads one runs in a child process.

#[macro_use]
mod common;
mod gguf_build;

use std::path::{Path, PathBuf};
use std::process::Command;

use gguf_loader::loader::{LlamaLibrary, PluginSelection, RawLibrary, VariantDirectory};
use gguf_loader::model::QuantType;
use gguf_loader::{
    Batch, Context, ContextParams, Error, GenerateOptions, GpuLayers, Model, ModelParams, Sampler,
    Token,
};

/// The prompt of every greedy comparison.
const PROMPT: &str = "The three primary colors are";
/// A lead over the runner-up above which backends must agree on the top token.
const CLEAR_MARGIN: f32 = 0.5;

/// The C reference over the fork (tests/c/greedy_bitnet.c), built against the fork's headers
/// and linked with the libraries of `variant_dir`.
fn c_greedy_bitnet(variant_dir: &Path) -> PathBuf {
    let source = common::bitnet_source_dir().join("3rdparty/llama.cpp");
    common::c_reference(
        "greedy_bitnet.c",
        variant_dir,
        &[source.join("include"), source.join("ggml/include")],
        &["-lllama", "-lggml"],
    )
}

/// Greedy ids (with each one's lead over the runner-up) from the fork's C reference.
fn c_bitnet_ids(variant_dir: &Path, model: &Path, n: usize, n_ctx: u32) -> Vec<(i32, f32)> {
    let output = Command::new(c_greedy_bitnet(variant_dir))
        .env("GREEDY_MARGINS", "1")
        .arg(variant_dir)
        .arg(model)
        .args([
            n.to_string(),
            "1".into(),
            n_ctx.to_string(),
            n_ctx.to_string(),
        ])
        .arg(PROMPT)
        .output()
        .expect("running the fork's C reference");
    assert!(
        output.status.success(),
        "the fork's C reference failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    common::parse_greedy_output(&String::from_utf8_lossy(&output.stdout))
}

/// Loads the fork's build in `dir` (this process then holds it).
fn load_fork(dir: &Path) -> LlamaLibrary {
    let directory = VariantDirectory::open(dir).expect("BitNet variant directory");
    assert_eq!(
        directory.abi,
        gguf_loader::loader::AbiGeneration::BitNet2024
    );
    LlamaLibrary::load(&directory, PluginSelection::AllInDirectory).expect("load the fork")
}

/// Greedy ids through the crate, one thread.
fn crate_greedy(model: &Model, n: usize, n_ctx: u32) -> Vec<i32> {
    let mut context = Context::new(
        model,
        ContextParams::default()
            .with_n_ctx(n_ctx)
            .with_n_batch(n_ctx)
            .with_threads(1),
    )
    .unwrap();
    common::greedy_ids(&mut context, PROMPT, n)
}

/// The crate on `dir` (in this process) against the C reference on the same libraries.
fn crate_matches_c_on(isa: &str) {
    let dir = common::bitnet_dirs()
        .into_iter()
        .find(|(i, _)| *i == isa)
        .unwrap()
        .1;
    let library = load_fork(&dir);
    assert_eq!(
        library.generation(),
        gguf_loader::loader::AbiGeneration::BitNet2024
    );
    assert_eq!(library.llama_version(), "bitnet-b3947");
    let path = common::tiny_bitnet();
    let model = Model::load(&library, &path, ModelParams::new()).unwrap();
    assert_eq!(model.architecture(), "bitnet");
    let n = 24;
    let ours = crate_greedy(&model, n, 256);
    let theirs: Vec<i32> = c_bitnet_ids(&dir, &path, n, 256)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    println!("{isa}: crate {ours:?}\n{isa}: C     {theirs:?}");
    assert_eq!(ours.len(), n, "the tiny model generates {n} tokens");
    assert_eq!(ours, theirs, "token-exact on {isa}");
    let distinct: std::collections::BTreeSet<i32> = ours.iter().copied().collect();
    assert!(distinct.len() > 3, "a non-degenerate sequence: {ours:?}");
}

/// The logits after `tokens` (from position 0), and the top token with its lead.
fn top_after(context: &mut Context, tokens: &[Token]) -> (i32, f32) {
    context.clear_memory();
    let mut batch = Batch::new(tokens.len(), 1).unwrap();
    batch.add_sequence(tokens, 0, 0, true).unwrap();
    context.decode(&mut batch).unwrap();
    let last = *context.output_rows().last().unwrap();
    let logits = context.logits(last).unwrap();
    let mut sorted: Vec<(usize, f32)> = logits.iter().copied().enumerate().collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    (sorted[0].0 as i32, sorted[0].1 - sorted[1].1)
}

/// Each step's top token and lead with `model` fed `ids` after the prompt (teacher forcing).
fn tops_along(model: &Model, ids: &[i32]) -> Vec<(i32, f32)> {
    let mut context = Context::new(
        model,
        ContextParams::default()
            .with_n_ctx(256)
            .with_n_batch(256)
            .with_threads(1),
    )
    .unwrap();
    let mut tokens = model.tokenize(PROMPT, true, true).unwrap();
    let mut out = Vec::new();
    for &id in ids {
        out.push(top_after(&mut context, &tokens));
        tokens.push(Token(id));
    }
    out
}

/// Greedy ids and margins through the crate over `library` with every layer offloaded.
fn greedy_with_margins(library: &LlamaLibrary, path: &Path, n: usize) -> Vec<(i32, f32)> {
    let model = Model::load(
        library,
        path,
        ModelParams::new().with_gpu_layers(GpuLayers::All),
    )
    .unwrap();
    let mut context = Context::new(
        &model,
        ContextParams::default()
            .with_n_ctx(256)
            .with_n_batch(256)
            .with_threads(1),
    )
    .unwrap();
    let ids = common::greedy_ids(&mut context, PROMPT, n);
    drop(context);
    let tops = tops_along(&model, &ids);
    for ((top, _), id) in tops.iter().zip(&ids) {
        assert_eq!(top, id, "the replayed greedy choice");
    }
    tops
}

/// A copy of the fork's variant directory whose manifest claims `abi` (or that has none).
fn relabelled_copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if name != "manifest.json" {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// Runs `generate` with these arguments; (exit success, stdout, stderr).
fn generate(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let output = Command::new(common::example("generate"))
        .args(args)
        .env("GGML_NO_BACKTRACE", "1")
        .output()
        .expect("running generate");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// One `generate` run with an upstream model and a BitNet model: both generate, each on its own
/// variant (the BitNet one in a worker process), and the BitNet ids equal the fork's C
/// reference on the variant the worker chose.
#[test]
fn one_generate_run_uses_an_upstream_and_a_bitnet_model() {
    let smollm2 = common::smollm2();
    let bitnet = common::tiny_bitnet();
    let (ok, stdout, stderr) = generate(&[
        "--model".as_ref(),
        smollm2.as_os_str(),
        "--model".as_ref(),
        bitnet.as_os_str(),
        "--greedy".as_ref(),
        "-n".as_ref(),
        "12".as_ref(),
        "--threads".as_ref(),
        "1".as_ref(),
        "--token-ids".as_ref(),
        PROMPT.as_ref(),
    ]);
    println!("{stderr}");
    assert!(ok, "{stderr}");
    let variants: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("variant: "))
        .collect();
    assert_eq!(variants.len(), 2, "{stderr}");
    assert!(variants[0].starts_with("variant: cpu-"), "{}", variants[0]);
    assert!(
        variants[1].starts_with("variant: bitnet-cpu-"),
        "{}",
        variants[1]
    );
    assert!(variants[1].contains("worker: "), "{}", variants[1]);
    let ids: Vec<i32> = stdout.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(ids.len(), 24, "{stdout}");
    let chosen = variants[1]
        .trim_start_matches("variant: bitnet-cpu-")
        .split_whitespace()
        .next()
        .unwrap();
    let dir = common::bitnet_dirs()
        .into_iter()
        .find(|(isa, _)| *isa == chosen)
        .unwrap()
        .1;
    let reference: Vec<i32> = c_bitnet_ids(&dir, &bitnet, 12, 256)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(&ids[12..], &reference[..], "BitNet ids through the worker");
}

/// A corrupt second model is that model's typed error; the other models still generate and
/// the run exits 1 naming the failed one.
#[test]
fn a_corrupt_model_in_a_multi_model_run_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt-bitnet.gguf");
    let bytes = std::fs::read(common::tiny_bitnet()).unwrap();
    std::fs::write(&corrupt, &bytes[..bytes.len() / 2]).unwrap();
    let smollm2 = common::smollm2();
    let (ok, stdout, stderr) = generate(&[
        "--model".as_ref(),
        smollm2.as_os_str(),
        "--model".as_ref(),
        corrupt.as_os_str(),
        "--model".as_ref(),
        smollm2.as_os_str(),
        "--greedy".as_ref(),
        "-n".as_ref(),
        "4".as_ref(),
        "--threads".as_ref(),
        "1".as_ref(),
        "--token-ids".as_ref(),
        PROMPT.as_ref(),
    ]);
    println!("{stderr}");
    assert!(!ok);
    assert!(stderr.contains("error: model 2"), "{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("variant: cpu-"))
            .count(),
        2,
        "{stderr}"
    );
    assert_eq!(stdout.lines().count(), 8, "{stdout}");
    assert!(stderr.contains("1 of 3 models failed"), "{stderr}");
}

child_cases! {
    /// An upstream model in this process and a BitNet-fork build in a worker, at the same time:
    /// killing the worker mid-generation is `WorkerDied`, and the upstream model keeps working.
    fn a_killed_bitnet_worker_is_a_typed_error_and_upstream_keeps_working() {
        use gguf_loader::worker::{WorkerModel, WorkerOptions, WorkerRequest, WorkerSpec};
        let options = gguf_loader::loader::SelectOptions::from_env().unwrap();
        let (selection, model) =
            Model::load_best(&options, common::smollm2(), |_| ModelParams::new()).unwrap();
        assert!(selection.variant.starts_with("cpu-"), "{}", selection.variant);
        let before = crate_greedy(&model, 8, 256);
        // SmolLM2 on the fork's build (forced) generates slowly enough to be killed mid-way.
        let mut spec = WorkerSpec::new(common::smollm2());
        spec.variant = Some("bitnet-cpu".into());
        spec.threads = Some(1);
        spec.n_ctx = Some(512);
        let mut worker = WorkerModel::spawn(
            WorkerOptions::new(spec).with_program(common::example("generate"), Vec::new()),
        )
        .unwrap();
        assert!(worker.info().variant.starts_with("bitnet-cpu-"), "{:?}", worker.info());
        assert_eq!(worker.info().llama_version, "bitnet-b3947");
        let pid = worker.info().pid;
        let mut generation = worker.generate(WorkerRequest::greedy(PROMPT, 400)).unwrap();
        let first = generation.next().unwrap().unwrap();
        println!("first piece from the fork: {first:?}");
        let status = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        assert!(status.success());
        let error = generation
            .find_map(|piece| piece.err())
            .expect("the generation ends with an error");
        println!("{error}");
        assert!(matches!(error, Error::WorkerDied { .. }), "{error:?}");
        drop(generation);
        let after = crate_greedy(&model, 8, 256);
        assert_eq!(before, after, "the upstream model keeps working");
    }


    fn crate_matches_c_on_avx2() {
        crate_matches_c_on("avx2");
    }

    /// Upstream's checks refuse the fork's libraries, and the fork's refuse upstream's, each
    /// naming what the library reports; nothing is called before.
    fn each_generation_refuses_the_other_generations_libraries() {
        let (_, fork_dir) = common::bitnet_dirs().remove(0);
        // SAFETY: a llama.cpp library of a provisioned build; opening it runs only its static
        // constructors, and only version and symbol lookups follow.
        let fork_ggml = unsafe { RawLibrary::open(&fork_dir.join("libggml.so")) }.unwrap();
        // SAFETY: a llama.cpp library of a provisioned build; opening it runs only its static
        // constructors, and only version and symbol lookups follow.
        let fork_llama = unsafe { RawLibrary::open(&fork_dir.join("libllama.so")) }.unwrap();
        let error = gguf_loader::loader::verify_llama(&fork_llama).unwrap_err();
        let text = error.to_string();
        println!("upstream check on the fork: {text}");
        assert!(matches!(error, gguf_loader::LoadError::AbiMismatch { .. }), "{error:?}");
        assert!(text.contains("llama_version") && text.contains("0.6.0-dev"), "{text}");
        assert!(text.contains("BitNet fork") && text.contains("bitnet-b3947"), "{text}");
        let error = gguf_loader::loader::verify_ggml(&fork_ggml).unwrap_err();
        assert!(error.to_string().contains("ggml_version"), "{error}");
        gguf_loader::loader::verify_bitnet(&fork_ggml, &fork_llama).unwrap();

        let cpu = common::cpu_dir();
        // SAFETY: a llama.cpp library of a provisioned build; opening it runs only its static
        // constructors, and only version and symbol lookups follow.
        let up_ggml = unsafe { RawLibrary::open(&cpu.join("libggml.so")) }.unwrap();
        // SAFETY: a llama.cpp library of a provisioned build; opening it runs only its static
        // constructors, and only version and symbol lookups follow.
        let up_llama = unsafe { RawLibrary::open(&cpu.join("libllama.so")) }.unwrap();
        let error = gguf_loader::loader::verify_bitnet(&up_ggml, &up_llama).unwrap_err();
        let text = error.to_string();
        println!("fork check on upstream: {text}");
        assert!(matches!(error, gguf_loader::LoadError::AbiMismatch { .. }), "{error:?}");
        assert!(text.contains("ggml_version() = 0.26.0"), "{text}");
        assert!(text.contains("quantize_i2_s"), "{text}");
        let error = gguf_loader::loader::verify_bitnet(&fork_ggml, &up_llama).unwrap_err();
        assert!(error.to_string().contains("llama_version() = 0.6.0-dev"), "{error}");
        assert_eq!(error.category(), gguf_loader::Category::Installation);
    }

    /// Through `LlamaLibrary::load`: a directory of upstream's libraries that claims to be the
    /// fork, and one of the fork's that claims to be upstream, are typed errors; the process
    /// can then still load the real thing.
    fn mislabelled_directories_are_refused_at_load() {
        let tmp = tempfile::tempdir().unwrap();
        // The fork's libraries beside a libggml-base from upstream: the directory looks like an
        // upstream one.
        let fork_as_upstream = tmp.path().join("fork-as-upstream");
        relabelled_copy(&common::bitnet_dirs()[0].1, &fork_as_upstream);
        std::fs::copy(
            common::cpu_dir().join("libggml-base.so"),
            fork_as_upstream.join("libggml-base.so"),
        )
        .unwrap();
        let directory = VariantDirectory::open(&fork_as_upstream).unwrap();
        assert_eq!(directory.abi, gguf_loader::loader::AbiGeneration::Upstream);
        let error = LlamaLibrary::load(&directory, PluginSelection::AllInDirectory).unwrap_err();
        println!("{error}");
        assert!(matches!(error, gguf_loader::LoadError::AbiMismatch { .. }), "{error:?}");

        // Upstream's core libraries without libggml-base's neighbours: no manifest, no
        // libggml-base, so it is taken for the fork, whose check names upstream's version.
        let upstream_as_fork = tmp.path().join("upstream-as-fork");
        std::fs::create_dir_all(&upstream_as_fork).unwrap();
        for name in ["libllama.so", "libggml.so"] {
            std::fs::copy(common::cpu_dir().join(name), upstream_as_fork.join(name)).unwrap();
        }
        let directory = VariantDirectory::open(&upstream_as_fork).unwrap();
        assert_eq!(directory.abi, gguf_loader::loader::AbiGeneration::BitNet2024);
        let error = LlamaLibrary::load(&directory, PluginSelection::AllInDirectory).unwrap_err();
        println!("{error}");
        assert!(error.to_string().contains("version"), "{error}");

        let library = load_fork(&common::bitnet_dirs()[0].1);
        assert!(!library.devices().is_empty());
    }

    /// What the fork has no counterpart for is `Unsupported` naming the C function, and an
    /// upstream-only tensor type is refused before llama.cpp reads the file.
    fn what_the_fork_lacks_is_unsupported() {
        let library = load_fork(&common::bitnet_dirs()[0].1);
        let model = Model::load(&library, common::tiny_bitnet(), ModelParams::new()).unwrap();
        let unsupported = |result: gguf_loader::Result<Sampler>, symbol: &str| match result {
            Err(Error::Unsupported { symbol: s }) => assert_eq!(s, symbol),
            other => panic!("{symbol}: {other:?}"),
        };
        unsupported(
            Sampler::builder(&model).xtc(0.5, 0.1, 1, 1).greedy().build(),
            "llama_sampler_init_xtc",
        );
        unsupported(
            Sampler::builder(&model).top_n_sigma(1.0).greedy().build(),
            "llama_sampler_init_top_n_sigma",
        );
        unsupported(
            Sampler::builder(&model).grammar("root ::= \"a\"", "root").greedy().build(),
            "llama_sampler_init_grammar",
        );
        unsupported(
            Sampler::builder(&model).dry(0.8, 1.75, 2, 64, &["\n"]).greedy().build(),
            "llama_sampler_init_dry",
        );
        match gguf_loader::chat::builtin_template_names(&library) {
            Err(Error::Unsupported { symbol }) => assert_eq!(symbol, "llama_chat_builtin_templates"),
            other => panic!("{other:?}"),
        }
        let mut context = Context::new(&model, ContextParams::default().with_n_ctx(128).with_threads(1)).unwrap();
        top_after(&mut context, &model.tokenize("hello", true, false).unwrap());
        // The fork has no pos_min: it is read from its KV-cache view.
        assert_eq!(context.memory_pos_min(0).unwrap(), Some(0));
        context.memory_seq_rm(Some(0), Some(0), Some(1)).unwrap();
        assert_eq!(context.memory_pos_min(0).unwrap(), Some(1));
        assert_eq!(context.memory_pos_min(1).unwrap_or(None), None);
        assert!(context.memory_pos_max(0).unwrap().is_some());
        let out = tempfile::tempdir().unwrap();
        match Model::quantize(&library, common::tiny_bitnet_f32(), out.path().join("q.gguf"), QuantType::TQ2_0) {
            Err(Error::Unsupported { symbol }) => assert_eq!(symbol, "llama_model_quantize"),
            other => panic!("{other:?}"),
        }
        // Samplers the fork has work: top-k, top-p, min-p, temperature, penalties, dist.
        let mut sampler = Sampler::builder(&model)
            .penalties(64, 1.1, 0.0, 0.0)
            .top_k(40)
            .top_p(0.95, 1)
            .min_p(0.05, 1)
            .temp(0.8)
            .dist(7)
            .build()
            .unwrap();
        let generated: Vec<_> = context
            .generate("The", &mut sampler, GenerateOptions::default().with_max_tokens(8))
            .unwrap()
            .map(|p| p.unwrap())
            .collect();
        assert_eq!(generated.len(), 8);
        // An upstream model whose tensor types the fork numbers differently is refused.
        let mxfp4 = out.path().join("mxfp4.gguf");
        std::fs::write(&mxfp4, gguf_build::Builder::new("llama").raw_tensor("t", &[32, 2], 39, 34).build()).unwrap();
        match Model::load(&library, &mxfp4, ModelParams::new()) {
            Err(Error::ModelLoad { reason, .. }) => assert!(reason.contains("TL1/TL2"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    /// What issues 8-9 added works over the fork too: parallel sequences stream what each
    /// prompt gives alone, a session saved to a file continues exactly, and chat templates
    /// render (the model's own through minijinja, a built-in one through the fork).
    fn engine_sessions_and_chat_work_on_the_fork() {
        use gguf_loader::engine::parallel::{ParallelEngine, Request};
        use gguf_loader::{Prompt, Session};
        let library = load_fork(&common::bitnet_dirs()[0].1);
        let model = Model::load(&library, common::tiny_bitnet(), ModelParams::new()).unwrap();
        let prompts = ["The three primary colors are", "Once upon a time", "the big red ball"];
        let n = 12;
        let params = |n_seq_max: u32| {
            ContextParams::default()
                .with_n_ctx(512)
                .with_n_batch(64)
                .with_n_seq_max(n_seq_max)
                .with_threads(1)
        };
        let alone = |prompt: &str| -> Vec<i32> {
            let mut context = Context::new(&model, params(1)).unwrap();
            common::greedy_ids(&mut context, prompt, n)
        };
        let mut engine = ParallelEngine::new(Context::new(&model, params(2)).unwrap()).unwrap();
        let ids: Vec<_> = prompts
            .iter()
            .map(|p| {
                engine
                    .submit(Request {
                        prompt: Prompt::from(*p),
                        sampler: Sampler::greedy(&model).unwrap(),
                        options: GenerateOptions::default().with_max_tokens(n),
                    })
                    .unwrap()
            })
            .collect();
        let events = engine.run_to_completion().unwrap();
        for (prompt, id) in prompts.iter().zip(&ids) {
            let tokens = common::streamed_ids(&events, id);
            assert_eq!(tokens, alone(prompt), "{prompt}");
        }

        // A session saved after 6 tokens and loaded into a new context continues as one run.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("session.bin");
        let whole = alone(PROMPT);
        let mut session = Session::new(Context::new(&model, params(1)).unwrap());
        let mut sampler = Sampler::greedy(&model).unwrap();
        let mut generation = session
            .generate(PROMPT, &mut sampler, GenerateOptions::default().with_max_tokens(6))
            .unwrap();
        let first: Vec<i32> = generation.by_ref().filter_map(|p| p.unwrap().token).map(|t| t.id()).collect();
        let undecoded = generation.undecoded_token();
        drop(generation);
        session.append(undecoded.as_slice()).unwrap();
        session.save_state_file(&file).unwrap();
        let mut resumed = Session::new(Context::new(&model, params(1)).unwrap());
        resumed.load_state_file(&file).unwrap();
        let tokens = resumed.tokens().to_vec();
        let mut sampler = Sampler::greedy(&model).unwrap();
        let rest: Vec<i32> = resumed
            .generate(Prompt::Tokens(tokens), &mut sampler, GenerateOptions::default().with_max_tokens(n - 6))
            .unwrap()
            .filter_map(|p| p.unwrap().token)
            .map(|t| t.id())
            .collect();
        assert_eq!(first, whole[..6]);
        assert_eq!(rest, whole[6..], "the resumed session continues exactly");

        // Chat: the tiny model has no template of its own; the fork's built-in chatml renders.
        assert!(model.chat_template(None).unwrap().is_none());
        let messages = [gguf_loader::ChatMessage::new("user", "hi")];
        let text = gguf_loader::chat::apply_builtin(&library, "chatml", &messages, true).unwrap();
        assert_eq!(text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    }

    /// Upstream refuses a BitNet-fork model before llama.cpp reads it, naming the way to run it.
    fn upstream_refuses_a_bitnet_model() {
        let directory = VariantDirectory::open(&common::cpu_dir()).unwrap();
        let library = LlamaLibrary::load(&directory, PluginSelection::AllInDirectory).unwrap();
        match Model::load(&library, common::tiny_bitnet(), ModelParams::new()) {
            Err(Error::ModelLoad { reason, .. }) => {
                assert!(reason.contains("BitNet variant") && reason.contains("I2_S"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// `Model::load_best` sends the I2_S model to a BitNet build and an ordinary one upstream.
    fn load_best_routes_by_model() {
        let options = gguf_loader::loader::SelectOptions::from_env().unwrap();
        let (selection, model) =
            Model::load_best(&options, common::tiny_bitnet(), |_| ModelParams::new()).unwrap();
        assert!(selection.variant.starts_with("bitnet-cpu-"), "{}", selection.variant);
        assert_eq!(model.library().generation(), gguf_loader::loader::AbiGeneration::BitNet2024);
        // The process now holds the fork: an upstream model is refused, typed, not loaded there.
        match Model::load_best(&options, common::smollm2(), |_| ModelParams::new()) {
            Err(Error::Load(gguf_loader::LoadError::NoUsableVariant { rejected })) => {
                println!("{rejected:?}");
                assert!(rejected.iter().any(|(name, reason)| name.starts_with("cpu-") && reason.contains("bitnet")));
            }
            other => panic!("{other:?}"),
        }
    }

    /// The ternary model quantized to TQ2_0 by upstream runs on the CPU and on Vulkan
    /// (lavapipe); they agree on every clear-margin token.
    fn tq2_0_runs_on_vulkan_as_on_the_cpu() {
        std::env::set_var("GGML_VK_VISIBLE_DEVICES", "0");
        let out = tempfile::tempdir().unwrap();
        let tq2 = out.path().join("tiny-bitnet-tq2_0.gguf");
        let directory = VariantDirectory::open(&common::vulkan_dir()).unwrap();
        let library = LlamaLibrary::load(&directory, PluginSelection::AllInDirectory).unwrap();
        Model::quantize_with_threads(&library, common::tiny_bitnet_f32(), &tq2, QuantType::TQ2_0, 1)
            .unwrap();
        let file = gguf_loader::gguf::inspect(&tq2).unwrap();
        let ternary = file.tensors.iter().filter(|t| t.tensor_type.name() == "TQ2_0").count();
        assert!(ternary >= 7, "the linear layers are TQ2_0 ({ternary})");
        common::capture_llama_log(log::LevelFilter::Info);
        let vulkan = greedy_with_margins(&library, &tq2, 16);
        assert!(
            common::LLAMA_LOG.lock().unwrap().iter().any(|l| l.contains("offloaded")),
            "llama.cpp reports offloading"
        );
        let ids: Vec<i32> = vulkan.iter().map(|(id, _)| *id).collect();
        let cpu = {
            let model = Model::load(&library, &tq2, ModelParams::new().with_gpu_layers(GpuLayers::None)).unwrap();
            tops_along(&model, &ids)
        };
        let mut clear = 0;
        for (step, (v, c)) in vulkan.iter().zip(&cpu).enumerate() {
            println!("step {step}: vulkan {} (+{:.3}) cpu {} (+{:.3})", v.0, v.1, c.0, c.1);
            if c.1 > CLEAR_MARGIN {
                clear += 1;
                assert_eq!(v.0, c.0, "step {step}: clear-margin token differs");
            }
        }
        assert!(clear >= 8, "most steps have a clear margin ({clear})");
    }
}
