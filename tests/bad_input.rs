//! Bad input at the safe-API level, against the real cpu variant: every case is a typed error in
//! process (no crash, no abort inside C).

mod common;
mod gguf_build;

use gguf_build::{Builder, Value};
use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{
    Batch, Context, ContextParams, Error, GenerateOptions, Model, ModelParams, Prompt, Sampler,
    Token,
};

fn library() -> LlamaLibrary {
    let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
    LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant")
}

fn tiny() -> Model {
    Model::load(&library(), common::tiny_llama(), ModelParams::new()).expect("tiny model")
}

fn ctx(model: &Model) -> Context {
    Context::new(
        model,
        ContextParams::default()
            .with_n_ctx(128)
            .with_n_batch(64)
            .with_threads(2),
    )
    .unwrap()
}

#[test]
fn tiny_model_generates() {
    let model = tiny();
    let mut context = ctx(&model);
    let mut sampler = Sampler::greedy(&model).unwrap();
    let pieces: Vec<_> = context
        .generate(
            "hello world",
            &mut sampler,
            GenerateOptions::default().with_max_tokens(8),
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!pieces.is_empty());
}

#[test]
fn token_ids_outside_the_vocabulary() {
    let model = tiny();
    let mut context = ctx(&model);
    let n_vocab = model.n_vocab();
    for bad in [n_vocab, n_vocab + 1000, -1, i32::MIN] {
        let mut batch = Batch::new(4, 1).unwrap();
        batch.add(Token(bad), 0, &[0], true).unwrap();
        match context.decode(&mut batch) {
            Err(Error::TokenOutOfRange { token, .. }) => assert_eq!(token, bad),
            other => panic!("token {bad}: {other:?}"),
        }
    }
    let mut sampler = Sampler::greedy(&model).unwrap();
    let result = context.generate(
        Prompt::Tokens(vec![Token(1), Token(n_vocab)]),
        &mut sampler,
        GenerateOptions::default(),
    );
    assert!(matches!(result, Err(Error::TokenOutOfRange { .. })));
    assert!(matches!(
        Sampler::builder(&model)
            .logit_bias(&[(Token(n_vocab), 1.0)])
            .greedy()
            .build(),
        Err(Error::TokenOutOfRange { .. })
    ));
}

#[test]
fn empty_prompt_and_context_overflow() {
    let model = tiny();
    let mut context = ctx(&model);
    let mut sampler = Sampler::greedy(&model).unwrap();
    let empty = context.generate(
        Prompt::Tokens(vec![]),
        &mut sampler,
        GenerateOptions::default(),
    );
    assert!(matches!(
        empty,
        Err(Error::InvalidArgument {
            parameter: "prompt",
            ..
        })
    ));
    let n_ctx = context.n_ctx();
    let long = context.generate(
        Prompt::Tokens(vec![Token(5); 500]),
        &mut sampler,
        GenerateOptions::default(),
    );
    match long {
        Err(Error::ContextOverflow {
            n_ctx: reported,
            needed: 501,
        }) => assert_eq!(reported, n_ctx),
        other => panic!("expected ContextOverflow, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn invalid_context_parameters() {
    let model = tiny();
    let zero = Context::new(&model, ContextParams::default().with_n_ctx(0));
    assert!(
        matches!(
            zero,
            Err(Error::InvalidArgument {
                parameter: "n_ctx",
                ..
            })
        ),
        "{zero:?}"
    );
    let seqs = Context::new(&model, ContextParams::default().with_n_seq_max(100_000));
    assert!(matches!(
        seqs,
        Err(Error::InvalidArgument {
            parameter: "n_seq_max",
            ..
        })
    ));
    let threads = Context::new(
        &model,
        ContextParams {
            n_threads: Some(0),
            ..Default::default()
        },
    );
    assert!(matches!(
        threads,
        Err(Error::InvalidArgument {
            parameter: "n_threads",
            ..
        })
    ));
}

#[test]
fn sequence_ids_beyond_n_seq_max() {
    let model = tiny();
    let mut context = ctx(&model);
    assert_eq!(context.n_seq_max(), 1);
    let mut batch = Batch::new(4, 2).unwrap();
    batch.add(Token(5), 0, &[0, 1], true).unwrap();
    assert!(matches!(
        context.decode(&mut batch),
        Err(Error::SequenceOutOfRange {
            seq_id: 1,
            n_seq_max: 1
        })
    ));
    let mut too_big = Batch::new(200, 1).unwrap();
    for i in 0..100 {
        too_big.add(Token(5), i, &[0], false).unwrap();
    }
    assert!(
        matches!(
            context.decode(&mut too_big),
            Err(Error::InvalidArgument {
                parameter: "batch",
                ..
            })
        ),
        "exceeds n_batch"
    );
}

#[test]
fn interior_nul_bytes() {
    let model = tiny();
    assert!(matches!(
        model.meta("general.\0name"),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        Sampler::builder(&model)
            .grammar("root ::= \"a\0b\"", "root")
            .greedy()
            .build(),
        Err(Error::InvalidArgument {
            parameter: "grammar",
            ..
        })
    ));
    assert!(matches!(
        model.chat_template(Some("a\0b")),
        Err(Error::InvalidArgument { .. })
    ));
    // Text is passed with its length, so a NUL inside a prompt is just a character.
    assert!(model.tokenize("a\0b", false, false).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(b"model\0.gguf"));
        let result = Model::load(&library(), path, ModelParams::new());
        assert!(result.is_err(), "{result:?}");
    }
}

#[test]
fn grammar_that_does_not_parse() {
    let model = tiny();
    let result = Sampler::builder(&model)
        .grammar("root ::= (", "root")
        .greedy()
        .build();
    assert!(
        matches!(
            result,
            Err(Error::InvalidArgument {
                parameter: "grammar",
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn panicking_callbacks_do_not_cross_into_c() {
    let model = tiny();
    let mut context = ctx(&model);
    context.set_abort_callback(|| panic!("abort callback panics"));
    let mut batch = Batch::new(8, 1).unwrap();
    batch
        .add_sequence(&[Token(1), Token(5), Token(6)], 0, 0, true)
        .unwrap();
    let result = context.decode(&mut batch);
    assert!(
        matches!(result, Err(Error::CallbackPanicked { callback: "abort" })),
        "{result:?}"
    );
    let progress = Model::load(
        &library(),
        common::tiny_llama(),
        ModelParams::new().with_progress(|_| panic!("progress")),
    );
    assert!(matches!(
        progress,
        Err(Error::CallbackPanicked {
            callback: "progress"
        })
    ));
}

#[test]
fn context_outlives_every_other_model_handle() {
    let model = tiny();
    let mut context = ctx(&model);
    drop(model);
    let model = context.model().clone();
    let mut sampler = Sampler::greedy(&model).unwrap();
    drop(model);
    let n = context
        .generate(
            Prompt::Tokens(vec![Token(1), Token(5)]),
            &mut sampler,
            GenerateOptions::default().with_max_tokens(4),
        )
        .unwrap()
        .count();
    assert!(n > 0);
}

#[test]
fn corrupt_and_unknown_models_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library();
    let bytes = std::fs::read(common::tiny_llama()).unwrap();
    let truncated = dir.path().join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        Model::load(&lib, &truncated, ModelParams::new()),
        Err(Error::Gguf(_))
    ));
    let martian = dir.path().join("martian.gguf");
    std::fs::write(
        &martian,
        Builder::new("martian")
            .kv("martian.block_count", Value::U32(1))
            .f32_tensor("t", &[4])
            .build(),
    )
    .unwrap();
    match Model::load(&lib, &martian, ModelParams::new()) {
        Err(Error::ModelLoad { path, .. }) => assert_eq!(path, martian),
        other => panic!("{other:?}"),
    }
    let bitnet = dir.path().join("bitnet.gguf");
    std::fs::write(
        &bitnet,
        Builder::new("bitnet-b1.58").f32_tensor("t", &[4]).build(),
    )
    .unwrap();
    match Model::load(&lib, &bitnet, ModelParams::new()) {
        Err(Error::ModelLoad { reason, .. }) => assert!(reason.contains("BitNet"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Model::load(&lib, dir.path(), ModelParams::new()),
        Err(Error::ModelLoad { .. } | Error::Gguf(_))
    ));
}
