//! Quantization (`Model::quantize`) and greedy speculative decoding with a draft model.

mod common;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gguf_loader::engine::speculative::{Speculative, SpeculativeSummary};
use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::model::QuantType;
use gguf_loader::{Context, ContextParams, Error, GenerateOptions, Model, ModelParams, Sampler};

fn library() -> &'static LlamaLibrary {
    static LIBRARY: OnceLock<LlamaLibrary> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
        LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant")
    })
}

fn params() -> ContextParams {
    ContextParams::default()
        .with_n_ctx(512)
        .with_n_batch(64)
        .with_threads(1)
}

const PROMPTS: [&str; 2] = [
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "Once upon a time, in a small village by the sea,",
];

/// SmolLM2 (Q4_1) quantized to the lower-bit Q4_0 once per test binary: a draft that
/// disagrees with the target now and then.
fn quantized_draft() -> &'static Path {
    static DRAFT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DRAFT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("smollm2-q4_0.gguf");
        Model::quantize_with_threads(library(), common::smollm2(), &out, QuantType::Q4_0, 2)
            .expect("quantize SmolLM2 to Q4_0");
        (dir, out)
    });
    path
}

fn plain_greedy(model: &Model, prompt: &str, max_tokens: usize) -> Vec<i32> {
    let mut context = Context::new(model, params()).unwrap();
    let mut sampler = Sampler::greedy(model).unwrap();
    let mut ids = Vec::new();
    context
        .generate_with(
            prompt,
            &mut sampler,
            GenerateOptions::default().with_max_tokens(max_tokens),
            |p| {
                if let Some(t) = p.token {
                    ids.push(t.id());
                }
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    ids
}

fn speculative(
    target: &Model,
    draft: &Model,
    prompt: &str,
    max_tokens: usize,
    draft_max: usize,
) -> (Vec<i32>, String, SpeculativeSummary) {
    let mut target_ctx = Context::new(target, params()).unwrap();
    let mut draft_ctx = Context::new(draft, params()).unwrap();
    let mut spec = Speculative::new(&mut target_ctx, &mut draft_ctx, draft_max).unwrap();
    let (mut ids, mut text) = (Vec::new(), String::new());
    let summary = spec
        .generate_with(
            prompt,
            GenerateOptions::default().with_max_tokens(max_tokens),
            |p| {
                if let Some(t) = p.token {
                    ids.push(t.id());
                }
                text.push_str(&p.text);
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    (ids, text, summary)
}

#[test]
fn quantize_refuses_bad_inputs_with_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.gguf");
    let err = Model::quantize(
        library(),
        &missing,
        dir.path().join("out.gguf"),
        QuantType::Q8_0,
    )
    .unwrap_err();
    assert!(matches!(err, Error::ModelLoad { .. }), "{err:?}");

    let input = common::smollm2();
    let err = Model::quantize(library(), &input, &input, QuantType::Q8_0).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                parameter: "output",
                ..
            }
        ),
        "{err:?}"
    );

    let err = Model::quantize(
        library(),
        &input,
        dir.path().join("no-such-dir").join("out.gguf"),
        QuantType::Q8_0,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                parameter: "output",
                ..
            }
        ),
        "{err:?}"
    );

    // The file of a model loaded in this process is mapped: it cannot be the output.
    let tiny = dir.path().join("tiny.gguf");
    std::fs::copy(common::tiny_llama(), &tiny).unwrap();
    let loaded = Model::load(library(), &tiny, gguf_loader::ModelParams::new()).unwrap();
    let err = Model::quantize(library(), &input, &tiny, QuantType::Q8_0).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { parameter: "output", reason } if reason.contains("loaded")),
        "{err:?}"
    );
    drop(loaded);

    let err = Model::quantize(library(), &input, dir.path(), QuantType::Q8_0).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                parameter: "output",
                ..
            }
        ),
        "{err:?}"
    );

    let err = Model::quantize_with_threads(
        library(),
        &input,
        dir.path().join("out.gguf"),
        QuantType::Q8_0,
        0,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                parameter: "threads",
                ..
            }
        ),
        "{err:?}"
    );

    // Not a GGUF file: the pre-flight refuses it before llama.cpp reads it.
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a gguf file at all").unwrap();
    let err = Model::quantize(
        library(),
        &junk,
        dir.path().join("out.gguf"),
        QuantType::Q8_0,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Gguf(_)), "{err:?}");
    assert!(!dir.path().join("out.gguf").exists());

    assert_eq!("q4_k_m".parse::<QuantType>().unwrap(), QuantType::Q4_K_M);
    assert!("q9_9".parse::<QuantType>().is_err());
}

#[test]
fn quantized_draft_matches_plain_greedy() {
    let draft_path = quantized_draft();
    let file = gguf_loader::gguf::inspect(draft_path).unwrap();
    assert_eq!(
        file.get("general.file_type").and_then(|v| v.as_u64()),
        Some(QuantType::Q4_0.ftype() as u64)
    );
    let target = Model::load(library(), common::smollm2(), ModelParams::new()).unwrap();
    let draft = Model::load(library(), draft_path, ModelParams::new()).unwrap();
    for prompt in PROMPTS {
        let expected = plain_greedy(&target, prompt, 32);
        let (ids, text, summary) = speculative(&target, &draft, prompt, 32, 4);
        eprintln!(
            "Q4_0 draft: accepted {} of {} ({:.0}%) in {} rounds: {text:?}",
            summary.accepted,
            summary.drafted,
            100.0 * summary.acceptance_rate(),
            summary.rounds
        );
        assert_eq!(ids, expected, "prompt {prompt:?}");
        assert_eq!(summary.summary.generated_tokens, ids.len());
        assert!(summary.drafted > 0);
        assert!(summary.rounds < ids.len(), "no round accepted a draft");
    }
}

#[test]
fn self_draft_accepts_everything() {
    let target = Model::load(library(), common::smollm2(), ModelParams::new()).unwrap();
    for prompt in PROMPTS {
        let expected = plain_greedy(&target, prompt, 32);
        let (ids, _, summary) = speculative(&target, &target, prompt, 32, 5);
        eprintln!(
            "self draft: accepted {} of {} ({:.0}%) in {} rounds",
            summary.accepted,
            summary.drafted,
            100.0 * summary.acceptance_rate(),
            summary.rounds
        );
        assert_eq!(ids, expected, "prompt {prompt:?}");
        assert!(
            summary.acceptance_rate() >= 0.9,
            "acceptance {}",
            summary.acceptance_rate()
        );
    }
}

#[test]
fn a_draft_with_another_vocabulary_is_refused() {
    let target = Model::load(library(), common::smollm2(), ModelParams::new()).unwrap();
    for other in [common::tiny_llama(), common::gemma3()] {
        let draft = Model::load(library(), &other, ModelParams::new()).unwrap();
        let mut target_ctx = Context::new(&target, params()).unwrap();
        let mut draft_ctx = Context::new(&draft, params()).unwrap();
        let err = Speculative::new(&mut target_ctx, &mut draft_ctx, 4).unwrap_err();
        assert!(
            matches!(err, Error::VocabularyMismatch { .. }),
            "{}: {err:?}",
            other.display()
        );
        eprintln!("{err}");
    }
    // draft_max must fit the target's batch.
    let mut a = Context::new(&target, params()).unwrap();
    let mut b = Context::new(&target, params()).unwrap();
    let err = Speculative::new(&mut a, &mut b, 64).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                parameter: "draft_max",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn generate_example_decodes_speculatively() {
    let model = common::smollm2();
    let run = |extra: &[&std::ffi::OsStr]| {
        let mut command = std::process::Command::new(common::example("generate"));
        command
            .arg("--variant-dir")
            .arg(common::cpu_dir().parent().unwrap())
            .args(["--variant", "cpu", "-t", "1", "-n", "20", "--model"])
            .arg(&model)
            .args(extra)
            .arg("Once upon a time");
        command.output().unwrap()
    };
    let plain = run(&["--greedy".as_ref()]);
    assert!(plain.status.success(), "{plain:?}");
    let spec = run(&["--draft-model".as_ref(), quantized_draft().as_os_str()]);
    let stderr = String::from_utf8_lossy(&spec.stderr);
    assert!(spec.status.success(), "{stderr}");
    assert_eq!(spec.stdout, plain.stdout, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("draft: accepted "))
        .unwrap_or_else(|| panic!("no summary line: {stderr}"));
    eprintln!("{line}");

    let refused = run(&[
        "--draft-model".as_ref(),
        quantized_draft().as_os_str(),
        "--temp".as_ref(),
        "0.7".as_ref(),
    ]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("greedily"));
}
