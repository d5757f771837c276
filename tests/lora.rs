//! LoRA adapters and control vectors on the real libraries and models: token-exact with the C
//! API (tests/c/greedy.c with GREEDY_LORA), changed and removed between requests, and every misuse a typed error
//! (each in a child process, so an abort fails one test and not the run).

#[macro_use]
mod common;
mod gguf_build;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gguf_build::{Builder, Value};
use gguf_loader::adapter::AdapterProblem;
use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{
    Context, ContextParams, ControlVector, Error, GenerateOptions, LoraAdapter, Model, ModelParams,
    Sampler,
};

/// One thread per context (two tests run at once on the two cores).
const THREADS: i32 = 1;
const N_CTX: u32 = 256;
const N_BATCH: u32 = 256;
const N_PREDICT: usize = 16;
const PROMPT: &str = "The capital of France is Paris. The capital of Germany is";

fn library() -> &'static LlamaLibrary {
    static LIBRARY: OnceLock<LlamaLibrary> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
        LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant")
    })
}

fn load(path: &Path) -> Model {
    Model::load(library(), path, ModelParams::new()).expect("load model")
}

fn smollm2() -> Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| load(&common::smollm2())).clone()
}

fn context(model: &Model) -> Context {
    Context::new(
        model,
        ContextParams::default()
            .with_n_ctx(N_CTX)
            .with_n_batch(N_BATCH)
            .with_threads(THREADS),
    )
    .expect("context")
}

/// Greedy ids of a fresh generation (the memory is cleared first).
fn greedy(ctx: &mut Context, prompt: &str) -> Vec<i32> {
    ctx.clear_memory();
    let mut sampler = Sampler::greedy(ctx.model()).unwrap();
    ctx.generate(
        prompt,
        &mut sampler,
        GenerateOptions::default().with_max_tokens(N_PREDICT),
    )
    .unwrap()
    .map(|p| p.unwrap())
    .filter_map(|p| p.token)
    .map(|t| t.id())
    .collect()
}

/// Greedy ids from the C reference (tests/c/greedy.c with `GREEDY_LORA`) with `adapter` at
/// `scale`; it uses the CPU's extra buffer types exactly when the crate does.
fn c_ids(adapter: &Path, scale: f32) -> Vec<i32> {
    library();
    common::c_greedy_lora_ids(
        &common::cpu_dir(),
        &common::smollm2(),
        N_PREDICT,
        THREADS,
        N_CTX,
        N_BATCH,
        PROMPT,
        (adapter, scale),
    )
}

fn base_ids() -> Vec<i32> {
    let _ = library();
    common::c_greedy_ids(
        &common::cpu_dir(),
        &common::smollm2(),
        N_PREDICT,
        THREADS,
        N_CTX,
        N_BATCH,
        PROMPT,
    )
}

#[test]
fn lora_at_scale_1_is_token_exact_with_c_and_changes_the_output() {
    let model = smollm2();
    let adapter = LoraAdapter::load(&model, common::smollm2_lora()).unwrap();
    assert_eq!(adapter.n_tensors(), 2 * model.n_layer() as usize);
    assert_eq!(adapter.alpha(), Some(4.0));
    assert_eq!(adapter.model(), &model);
    let mut ctx = context(&model);
    ctx.set_lora_adapters(&[(&adapter, 1.0)]).unwrap();
    assert_eq!(ctx.lora_adapters().len(), 1);
    let rust = greedy(&mut ctx, PROMPT);
    let c = c_ids(&common::smollm2_lora(), 1.0);
    assert!(!rust.is_empty());
    assert_eq!(
        rust, c,
        "Rust and C greedy ids differ with the adapter at 1.0"
    );
    assert_ne!(
        rust,
        base_ids(),
        "the adapter at 1.0 must change the output"
    );
}

#[test]
fn lora_at_scale_0_is_the_base_model() {
    let model = smollm2();
    let adapter = LoraAdapter::load(&model, common::smollm2_lora()).unwrap();
    let mut ctx = context(&model);
    ctx.set_lora_adapters(&[(&adapter, 0.0)]).unwrap();
    let rust = greedy(&mut ctx, PROMPT);
    let base = base_ids();
    assert!(!base.is_empty());
    assert_eq!(rust, c_ids(&common::smollm2_lora(), 0.0));
    assert_eq!(rust, base, "scale 0 must give the base model's output");
}

#[test]
fn adapters_change_and_go_between_requests() {
    let model = smollm2();
    let mut ctx = context(&model);
    let base = greedy(&mut ctx, PROMPT);
    let with = {
        // The context keeps the adapter alive after the caller's handle is gone.
        let adapter = LoraAdapter::load(&model, common::smollm2_lora()).unwrap();
        ctx.set_lora_adapters(&[(&adapter, 1.0)]).unwrap();
        greedy(&mut ctx, PROMPT)
    };
    assert_ne!(with, base);
    assert_eq!(with, greedy(&mut ctx, PROMPT), "the adapter stays set");
    let kept: Vec<LoraAdapter> = ctx.lora_adapters().map(|(a, _)| a.clone()).collect();
    ctx.clear_lora_adapters();
    assert_eq!(ctx.lora_adapters().len(), 0);
    assert_eq!(
        greedy(&mut ctx, PROMPT),
        base,
        "removed: the base model again"
    );
    // Two adapters at once (two loads of the same file), then one of them with a new scale.
    let second = LoraAdapter::load(&model, common::smollm2_lora()).unwrap();
    assert_ne!(kept[0], second);
    ctx.set_lora_adapters(&[(&kept[0], 0.5), (&second, 0.5)])
        .unwrap();
    let both = greedy(&mut ctx, PROMPT);
    assert_eq!(both.len(), N_PREDICT);
    ctx.set_lora_adapters(&[(&second, 1.0)]).unwrap();
    assert_eq!(greedy(&mut ctx, PROMPT), with);
    // The adapter outlives the context and is freed before its model.
    drop(ctx);
    drop(kept);
    drop(second);
}

#[test]
fn example_generate_applies_lora() {
    let model = smollm2();
    let adapter = LoraAdapter::load(&model, common::smollm2_lora()).unwrap();
    let mut ctx = Context::new(
        &model,
        ContextParams::default()
            .with_n_ctx(4096)
            .with_threads(THREADS),
    )
    .unwrap();
    ctx.set_lora_adapters(&[(&adapter, 1.0)]).unwrap();
    let expected = greedy(&mut ctx, PROMPT);
    drop(ctx);
    let run = |extra: &[String]| {
        let output = Command::new(common::example("generate"))
            .args(["--model".into(), common::smollm2().display().to_string()])
            .args(["--greedy", "--token-ids", "--threads", "1", "-n"])
            .arg(N_PREDICT.to_string())
            .args(extra)
            .arg(PROMPT)
            .env("GGUF_LOADER_VARIANTS_DIR", common::cpu_dir())
            .env_remove("GGUF_LOADER_SMOKE_DIR")
            .output()
            .expect("running the example");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let ids: Vec<i32> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().parse().unwrap())
            .collect();
        (output.status.success(), ids, stderr)
    };
    let lora = common::smollm2_lora().display().to_string();
    let (ok, ids, stderr) = run(&["--lora".into(), format!("{lora}:1.0")]);
    assert!(ok, "generate --lora failed: {stderr}");
    assert_eq!(ids, expected);
    let (ok, ids_default_scale, stderr) = run(&["--lora".into(), lora.clone()]);
    assert!(ok, "{stderr}");
    assert_eq!(ids_default_scale, expected, "SCALE defaults to 1.0");
    let (ok, ids_zero, stderr) = run(&["--lora".into(), format!("{lora}:0")]);
    assert!(ok, "{stderr}");
    assert_ne!(ids_zero, expected);
    let (ok, _, stderr) = run(&["--lora".into(), "/nonexistent/adapter.gguf".into()]);
    assert!(!ok, "a missing adapter must fail");
    assert!(stderr.contains("adapter.gguf"), "{stderr}");
}

// --- misuse: typed errors, each in a child process ----------------------------------------------

fn tiny() -> Model {
    load(&common::tiny_llama())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A LoRA adapter for the tiny llama (n_embd 64) with `extra` keys and `tensors` (F32).
fn crafted(kv: Vec<(&str, Value)>, tensors: &[(&str, &[u64])]) -> Vec<u8> {
    let mut b = Builder::new("llama")
        .kv("general.type", Value::Str("adapter".into()))
        .kv("adapter.type", Value::Str("lora".into()));
    for (k, v) in kv {
        b = b.kv(k, v);
    }
    for (name, dims) in tensors {
        b = b.f32_tensor(name, dims);
    }
    b.build()
}

const Q_PAIR: &[(&str, &[u64])] = &[
    ("blk.0.attn_q.weight.lora_a", &[64, 2]),
    ("blk.0.attn_q.weight.lora_b", &[2, 64]),
];

fn adapter_problem(result: Result<LoraAdapter, Error>) -> AdapterProblem {
    match result {
        Err(Error::Adapter { problem, .. }) => problem,
        other => panic!("expected Error::Adapter, got {other:?}"),
    }
}

fn invalid_parameter<T: std::fmt::Debug>(result: Result<T, Error>) -> &'static str {
    match result {
        Err(Error::InvalidArgument { parameter, .. }) => parameter,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

child_cases! {
    fn missing_and_corrupt_adapter_files_are_typed_errors() {
        let model = tiny();
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            LoraAdapter::load(&model, dir.path().join("missing.gguf")),
            Err(Error::Gguf(_))
        ));
        let garbage = write(dir.path(), "garbage.gguf", b"this is not a gguf file at all");
        assert!(matches!(LoraAdapter::load(&model, &garbage), Err(Error::Gguf(_))));
        let whole = std::fs::read(common::tiny_llama_lora()).unwrap();
        let truncated = write(dir.path(), "truncated.gguf", &whole[..whole.len() / 2]);
        assert!(matches!(LoraAdapter::load(&model, &truncated), Err(Error::Gguf(_))));
        // A model is not an adapter.
        assert_eq!(
            adapter_problem(LoraAdapter::load(&model, common::tiny_llama())),
            AdapterProblem::NotAnAdapter
        );
        // The real adapter still loads, and the model still works.
        LoraAdapter::load(&model, common::tiny_llama_lora()).unwrap();
    }

    fn adapters_of_other_models_are_refused() {
        let tiny = tiny();
        let smol = smollm2();
        // Same architecture, other shapes.
        assert_eq!(
            adapter_problem(LoraAdapter::load(&smol, common::tiny_llama_lora())),
            AdapterProblem::Shape
        );
        assert_eq!(
            adapter_problem(LoraAdapter::load(&tiny, common::smollm2_lora())),
            AdapterProblem::Shape
        );
        // A token_embd pair on a model with tied embeddings (SmolLM2: no output.weight): llama.cpp
        // would apply it to the output head too, with the wrong shapes, and abort.
        let dir = tempfile::tempdir().unwrap();
        let tied = crafted(
            vec![],
            &[
                ("token_embd.weight.lora_a", &[2, smol.n_vocab() as u64]),
                ("token_embd.weight.lora_b", &[2, smol.n_embd() as u64]),
            ],
        );
        assert_eq!(
            adapter_problem(LoraAdapter::load(&smol, write(dir.path(), "tied.gguf", &tied))),
            AdapterProblem::Unsupported
        );
        // Another architecture.
        let bert = load(&common::tiny_bert());
        assert_eq!(
            adapter_problem(LoraAdapter::load(&bert, common::tiny_llama_lora())),
            AdapterProblem::Architecture
        );
    }

    fn crafted_adapters_that_would_abort_are_refused() {
        let model = tiny();
        let n_vocab = model.n_vocab() as u64;
        let dir = tempfile::tempdir().unwrap();
        let case = |name: &str, bytes: Vec<u8>| {
            let path = write(dir.path(), name, &bytes);
            LoraAdapter::load(&model, path)
        };
        // A valid crafted adapter loads (so the refusals below are about what they change).
        case("ok.gguf", crafted(vec![("adapter.lora.alpha", Value::F32(2.0))], Q_PAIR)).unwrap();
        // gguf_get_val_f32 / gguf_get_val_str assert the key's type: refused before.
        assert_eq!(
            adapter_problem(case("alpha.gguf", crafted(vec![("adapter.lora.alpha", Value::U32(2))], Q_PAIR))),
            AdapterProblem::NotAnAdapter
        );
        assert_eq!(
            adapter_problem(case("nan-alpha.gguf", crafted(vec![("adapter.lora.alpha", Value::F32(f32::NAN))], Q_PAIR))),
            AdapterProblem::NotAnAdapter
        );
        let typed = Builder::new("llama")
            .kv("general.type", Value::U32(7))
            .kv("adapter.type", Value::Str("lora".into()))
            .f32_tensor("blk.0.attn_q.weight.lora_a", &[64, 2])
            .f32_tensor("blk.0.attn_q.weight.lora_b", &[2, 64])
            .build();
        assert_eq!(adapter_problem(case("type.gguf", typed)), AdapterProblem::NotAnAdapter);
        let no_adapter_type = Builder::new("llama")
            .kv("general.type", Value::Str("adapter".into()))
            .f32_tensor("blk.0.attn_q.weight.lora_a", &[64, 2])
            .f32_tensor("blk.0.attn_q.weight.lora_b", &[2, 64])
            .build();
        assert_eq!(adapter_problem(case("no-type.gguf", no_adapter_type)), AdapterProblem::NotAnAdapter);
        // token_embd pairs: llama.cpp does not check the rank, ggml_mul_mat would abort.
        let embd = crafted(vec![], &[
            ("token_embd.weight.lora_a", &[2, n_vocab]),
            ("token_embd.weight.lora_b", &[3, 64]),
        ]);
        assert_eq!(adapter_problem(case("embd.gguf", embd)), AdapterProblem::Shape);
        // Unpaired, oddly named, transposed, 3-D.
        assert_eq!(
            adapter_problem(case("half.gguf", crafted(vec![], &Q_PAIR[..1]))),
            AdapterProblem::NotAnAdapter
        );
        assert_eq!(
            adapter_problem(case("name.gguf", crafted(vec![], &[("blk.0.attn_q.weight", &[64, 64])]))),
            AdapterProblem::NotAnAdapter
        );
        let transposed = crafted(vec![], &[
            ("blk.0.attn_q.weight.lora_a", &[2, 64]),
            ("blk.0.attn_q.weight.lora_b", &[64, 2]),
        ]);
        assert_eq!(adapter_problem(case("transposed.gguf", transposed)), AdapterProblem::Shape);
        let cube = crafted(vec![], &[
            ("blk.0.attn_q.weight.lora_a", &[64, 2, 2]),
            ("blk.0.attn_q.weight.lora_b", &[2, 64, 2]),
        ]);
        assert_eq!(adapter_problem(case("cube.gguf", cube)), AdapterProblem::Unsupported);
        let missing = crafted(vec![], &[
            ("blk.9.attn_q.weight.lora_a", &[64, 2]),
            ("blk.9.attn_q.weight.lora_b", &[2, 64]),
        ]);
        assert_eq!(adapter_problem(case("missing.gguf", missing)), AdapterProblem::Shape);
        // A well-formed token_embd pair loads and decodes.
        let embd_ok = crafted(vec![], &[
            ("token_embd.weight.lora_a", &[2, n_vocab]),
            ("token_embd.weight.lora_b", &[2, 64]),
        ]);
        let adapter = case("embd-ok.gguf", embd_ok).unwrap();
        let mut ctx = context(&model);
        ctx.set_lora_adapters(&[(&adapter, 1.0)]).unwrap();
        assert_eq!(greedy(&mut ctx, "hello world").len(), N_PREDICT);
    }

    fn bad_scales_and_foreign_adapters_are_refused() {
        let a = tiny();
        let b = tiny(); // the same file loaded twice: two models
        let adapter = LoraAdapter::load(&a, common::tiny_llama_lora()).unwrap();
        let mut ctx = context(&b);
        match ctx.set_lora_adapters(&[(&adapter, 1.0)]) {
            Err(Error::Adapter { problem: AdapterProblem::OtherModel, .. }) => {}
            other => panic!("expected OtherModel, got {other:?}"),
        }
        let mut ctx = context(&a);
        for scale in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(invalid_parameter(ctx.set_lora_adapters(&[(&adapter, scale)])), "scale");
        }
        assert_eq!(
            invalid_parameter(ctx.set_lora_adapters(&[(&adapter, 1.0), (&adapter, 0.5)])),
            "adapters"
        );
        assert_eq!(ctx.lora_adapters().len(), 0, "a refused call changes nothing");
        // Negative scales are finite: allowed.
        ctx.set_lora_adapters(&[(&adapter, -1.0)]).unwrap();
        assert_eq!(greedy(&mut ctx, "hello world").len(), N_PREDICT);
    }

    fn control_vectors_are_checked_and_applied() {
        let model = tiny();
        let n_embd = model.n_embd() as usize;
        let n_layer = model.n_layer() as usize;
        let rows = n_layer - 1;
        for len in [0, n_embd * rows - 1, n_embd * n_layer, n_embd * rows + 1] {
            assert_eq!(invalid_parameter(ControlVector::new(&model, vec![0.5; len])), "control_vector");
        }
        let mut data = vec![0.5; n_embd * rows];
        data[3] = f32::NAN;
        assert_eq!(invalid_parameter(ControlVector::new(&model, data.clone())), "control_vector");
        data[3] = f32::INFINITY;
        assert_eq!(invalid_parameter(ControlVector::new(&model, data)), "control_vector");

        let mut ctx = context(&model);
        let base = greedy(&mut ctx, "hello world");
        let vector = ControlVector::new(&model, vec![2.0; n_embd * rows]).unwrap();
        let last = n_layer as i32 - 1;
        for (start, end) in [(0, last), (1, last + 1), (-1, -1), (2, 1), (last + 1, last + 1)] {
            assert_eq!(invalid_parameter(ctx.set_control_vector(&vector, start..=end)), "layers");
        }
        // A vector built for another model's sizes.
        let smol = smollm2();
        let other = ControlVector::new(
            &smol,
            vec![0.0; smol.n_embd() as usize * (smol.n_layer() as usize - 1)],
        )
        .unwrap();
        assert_eq!(invalid_parameter(ctx.set_control_vector(&other, 1..=last)), "control_vector");
        assert!(!ctx.has_control_vector());

        ctx.set_control_vector(&vector, 1..=last).unwrap();
        assert!(ctx.has_control_vector());
        let steered = greedy(&mut ctx, "hello world");
        assert_ne!(steered, base, "the control vector must change the output");
        ctx.clear_control_vector();
        assert!(!ctx.has_control_vector());
        assert_eq!(greedy(&mut ctx, "hello world"), base, "cleared: the base output again");
    }

    fn vocab_only_models_cannot_load_adapters() {
        let model = Model::load(library(), common::tiny_llama(), ModelParams::new().vocab_only(true)).unwrap();
        assert!(matches!(
            LoraAdapter::load(&model, common::tiny_llama_lora()),
            Err(Error::NotSupported { .. })
        ));
    }
}
