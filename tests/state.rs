//! Saving and restoring context states (whole context and single sequences), on the real
//! llama.cpp libraries and models.
//!
//! - a restored context continues exactly where the saved one stopped (greedy tokens equal
//!   an uninterrupted run), through files and through memory;
//! - every bad state (another model, another build, truncated, flipped bytes, empty, missing,
//!   a directory, the wrong kind, a sequence out of range, a history too long) is a typed
//!   error naming the file, never an abort.
//!
//! Each case runs in a child process (this test binary, re-executed with `GGUF_LOADER_TEST_CASE` set), so
//! a case that aborts inside llama.cpp fails alone and the others still run.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gguf_loader::error::StateProblem;
use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{Batch, Context, ContextParams, Error, Model, ModelParams, Sampler, Token};
use sha2::{Digest, Sha256};

/// Greedy tokens before the save and after the restore.
const BEFORE: usize = 20;
const AFTER: usize = 12;

fn library() -> &'static LlamaLibrary {
    static LIBRARY: OnceLock<LlamaLibrary> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
        LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant")
    })
}

fn load(path: PathBuf) -> Model {
    Model::load(library(), path, ModelParams::new()).expect("model")
}

fn params() -> ContextParams {
    ContextParams::default()
        .with_n_ctx(256)
        .with_n_batch(64)
        .with_threads(1)
}

fn ctx(model: &Model) -> Context {
    Context::new(model, params()).expect("context")
}

fn prompt(model: &Model) -> Vec<Token> {
    model
        .tokenize("The three most important rivers of Europe are", true, false)
        .unwrap()
}

/// Decodes `tokens` into `seq` from position 0 (logits for the last one).
fn start(context: &mut Context, seq: i32, tokens: &[Token]) {
    let mut batch = Batch::new(64, 1).unwrap();
    batch.add_sequence(tokens, 0, seq, true).unwrap();
    context.decode(&mut batch).unwrap();
}

/// `n` greedy tokens in `seq`, each decoded after it is sampled (so `history` stays "every
/// token in the memory" and the last one's logits are ready at -1).
fn generate(context: &mut Context, seq: i32, history: &mut Vec<Token>, n: usize) -> Vec<Token> {
    let mut sampler = Sampler::greedy(context.model()).unwrap();
    let mut batch = Batch::new(1, 1).unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let token = sampler.sample(context, -1).unwrap();
        out.push(token);
        history.push(token);
        batch.clear();
        batch
            .add(token, history.len() as i32 - 1, &[seq], true)
            .unwrap();
        context.decode(&mut batch).unwrap();
    }
    out
}

/// The uninterrupted reference: prompt, then `BEFORE + AFTER` greedy tokens.
fn reference(model: &Model) -> Vec<Token> {
    let mut context = ctx(model);
    let mut history = prompt(model);
    start(&mut context, 0, &history);
    generate(&mut context, 0, &mut history, BEFORE + AFTER)
}

/// A context that generated `BEFORE` tokens; returns it with its history and those tokens.
fn interrupted(model: &Model) -> (Context, Vec<Token>, Vec<Token>) {
    let mut context = ctx(model);
    let mut history = prompt(model);
    start(&mut context, 0, &history);
    let first = generate(&mut context, 0, &mut history, BEFORE);
    (context, history, first)
}

/// Whole-context states through a file and through memory, each into a fresh context.
fn whole_state_resumes(model: &Model) {
    let expected = reference(model);
    let (mut saved, history, first) = interrupted(model);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("session.state");
    saved.save_state_file(&file, &history).unwrap();
    let bytes = saved.state_to_bytes(&history).unwrap();
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes,
        "file and memory hold the same state"
    );
    drop(saved);

    for via_file in [true, false] {
        let mut context = ctx(model);
        let mut restored = if via_file {
            context.load_state_file(&file).unwrap()
        } else {
            context.state_from_bytes(&bytes).unwrap()
        };
        assert_eq!(restored, history);
        assert_eq!(
            context.memory_pos_max(0).unwrap(),
            Some(history.len() as i32 - 1)
        );
        let rest = generate(&mut context, 0, &mut restored, AFTER);
        let mut all = first.clone();
        all.extend(rest);
        assert_eq!(
            all,
            expected,
            "{} via {}: resumed generation differs from the uninterrupted one",
            model.path().display(),
            if via_file { "file" } else { "memory" }
        );
    }
    println!(
        "{}: {} tokens of state ({} bytes) resumed exactly",
        model.path().display(),
        history.len(),
        bytes.len()
    );
}

/// Sequence 0 of a two-sequence context, restored into sequence 1 of another two-sequence
/// context whose sequence 0 holds another conversation (llama.cpp needs the same number of
/// KV streams on both sides: both unified, or both split per sequence).
fn seq_state_resumes(model: &Model, kv_unified: bool) {
    let expected = reference(model);
    let two = || ContextParams {
        kv_unified: Some(kv_unified),
        ..params().with_n_ctx(512).with_n_seq_max(2)
    };
    let mut saved = Context::new(model, two()).unwrap();
    let mut history = prompt(model);
    start(&mut saved, 0, &history);
    let first = generate(&mut saved, 0, &mut history, BEFORE);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seq.state");
    saved.save_seq_state_file(0, &file, &history).unwrap();
    let bytes = saved.seq_state_to_bytes(0, &history).unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
    drop(saved);

    for via_file in [true, false] {
        let mut context = Context::new(model, two()).unwrap();
        let other = model.tokenize("Once upon a time", true, false).unwrap();
        start(&mut context, 0, &other);
        let mut restored = if via_file {
            context.load_seq_state_file(1, &file).unwrap()
        } else {
            context.seq_state_from_bytes(1, &bytes).unwrap()
        };
        assert_eq!(restored, history);
        assert_eq!(
            context.memory_pos_max(1).unwrap(),
            Some(history.len() as i32 - 1)
        );
        assert_eq!(
            context.memory_pos_max(0).unwrap(),
            Some(other.len() as i32 - 1),
            "sequence 0 is untouched"
        );
        let rest = generate(&mut context, 1, &mut restored, AFTER);
        let mut all = first.clone();
        all.extend(rest);
        assert_eq!(
            all,
            expected,
            "{} (kv_unified {kv_unified}) via {}: resumed sequence differs",
            model.path().display(),
            if via_file { "file" } else { "memory" }
        );
    }
}

/// The state error of `result`, which must name `path` (when given).
fn state_problem<T: std::fmt::Debug>(
    result: Result<T, Error>,
    path: Option<&Path>,
) -> (StateProblem, String) {
    match result {
        Err(e @ Error::State { .. }) => {
            let message = e.to_string();
            if let Some(path) = path {
                assert!(
                    message.contains(&path.display().to_string()),
                    "{message} does not name {}",
                    path.display()
                );
            }
            assert!(!e.hint().is_empty());
            let Error::State { problem, .. } = e else {
                unreachable!()
            };
            (problem, message)
        }
        other => panic!("expected a state error, got {other:?}"),
    }
}

fn expect_problem<T: std::fmt::Debug>(
    result: Result<T, Error>,
    path: Option<&Path>,
    expected: StateProblem,
) -> String {
    let (problem, message) = state_problem(result, path);
    assert_eq!(problem, expected, "{message}");
    println!("{message}");
    message
}

/// A small whole-context state of `model` (prompt plus two tokens) and its history.
fn small_state(model: &Model) -> (Vec<u8>, Vec<Token>) {
    let mut context = ctx(model);
    let mut history = prompt(model);
    start(&mut context, 0, &history);
    generate(&mut context, 0, &mut history, 2);
    (context.state_to_bytes(&history).unwrap(), history)
}

/// Offset of the llama.cpp version string in the container (after magic, format version,
/// kind, sequence id and the string's length).
const LLAMA_VERSION_AT: usize = 8 + 4 + 1 + 4 + 4;

/// Recomputes the checksum after a deliberate edit.
fn reseal(bytes: &mut [u8]) {
    let body = bytes.len() - 32;
    let digest = Sha256::digest(&bytes[..body]);
    bytes[body..].copy_from_slice(&digest);
}

child_cases! {
    fn whole_state_resumes_smollm2() {
        whole_state_resumes(&load(common::smollm2()));
    }

    fn whole_state_resumes_gemma3() {
        whole_state_resumes(&load(common::gemma3()));
    }

    fn seq_state_resumes_in_another_sequence_smollm2() {
        let model = load(common::smollm2());
        seq_state_resumes(&model, false);
        seq_state_resumes(&model, true);
    }

    fn seq_state_resumes_in_another_sequence_gemma3() {
        let model = load(common::gemma3());
        seq_state_resumes(&model, false);
        seq_state_resumes(&model, true);
    }

    fn empty_history_round_trips() {
        let model = load(common::tiny_llama());
        let mut context = ctx(&model);
        let bytes = context.state_to_bytes(&[]).unwrap();
        let mut fresh = ctx(&model);
        assert_eq!(fresh.state_from_bytes(&bytes).unwrap(), Vec::<Token>::new());
        assert_eq!(fresh.memory_pos_max(0).unwrap(), None);
        assert!(fresh.logits(-1).is_err(), "no logits without a history");
    }

    fn a_state_of_another_model_is_refused() {
        let tiny = load(common::tiny_llama());
        let smol = load(common::smollm2());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tiny.state");
        let (bytes, _) = small_state(&tiny);
        std::fs::write(&file, &bytes).unwrap();
        let mut context = ctx(&smol);
        let message = expect_problem(context.load_state_file(&file), Some(&file), StateProblem::OtherModel);
        assert!(message.contains("n_vocab"), "{message}");
        expect_problem(context.state_from_bytes(&bytes), None, StateProblem::OtherModel);
        // And the other way round, for a sequence state.
        let mut smol_context = ctx(&smol);
        let mut history = prompt(&smol);
        start(&mut smol_context, 0, &history);
        generate(&mut smol_context, 0, &mut history, 1);
        let seq = smol_context.seq_state_to_bytes(0, &history).unwrap();
        let mut tiny_context = ctx(&tiny);
        expect_problem(tiny_context.seq_state_from_bytes(0, &seq), None, StateProblem::OtherModel);
        assert_eq!(context.memory_pos_max(0).unwrap(), None, "nothing reached the memory");
    }

    fn a_state_of_another_build_is_refused() {
        let model = load(common::tiny_llama());
        let (mut bytes, _) = small_state(&model);
        let version = library().llama_version().to_string();
        assert_eq!(&bytes[LLAMA_VERSION_AT..LLAMA_VERSION_AT + version.len()], version.as_bytes());
        let last = LLAMA_VERSION_AT + version.len() - 1;
        bytes[last] = if bytes[last] == b'9' { b'8' } else { b'9' };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("other-build.state");
        // Without resealing, the checksum catches the edit.
        std::fs::write(&file, &bytes).unwrap();
        let mut context = ctx(&model);
        expect_problem(context.load_state_file(&file), Some(&file), StateProblem::Corrupt);
        reseal(&mut bytes);
        std::fs::write(&file, &bytes).unwrap();
        let message = expect_problem(context.load_state_file(&file), Some(&file), StateProblem::OtherBuild);
        assert!(message.contains(&version), "{message}");
        let error = context.state_from_bytes(&bytes).unwrap_err();
        assert_eq!(error.category(), gguf_loader::Category::Installation);
    }

    fn truncated_states_are_refused_at_every_cut() {
        let model = load(common::tiny_llama());
        let (bytes, history) = small_state(&model);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cut.state");
        let mut context = ctx(&model);
        // Every cut in the header and the history, then every 97th byte, then the tail.
        let header = 200 + history.len() * 4;
        let mut cuts: Vec<usize> = (0..header.min(bytes.len())).collect();
        cuts.extend((header..bytes.len()).step_by(97));
        cuts.extend(bytes.len() - 40..bytes.len());
        for &cut in &cuts {
            std::fs::write(&file, &bytes[..cut]).unwrap();
            let (problem, message) = state_problem(context.load_state_file(&file), Some(&file));
            assert_eq!(problem, StateProblem::Truncated, "cut at {cut}: {message}");
        }
        println!("{} cut points refused", cuts.len());
        // Trailing garbage is corrupt too.
        let mut longer = bytes.clone();
        longer.push(0);
        expect_problem(context.state_from_bytes(&longer), None, StateProblem::Corrupt);
        // The whole state still loads.
        assert_eq!(context.state_from_bytes(&bytes).unwrap(), history);
    }

    fn flipped_bytes_are_refused() {
        let model = load(common::tiny_llama());
        let (bytes, history) = small_state(&model);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("flipped.state");
        let mut context = ctx(&model);
        let mut positions: Vec<usize> = (0..bytes.len()).step_by(13).collect();
        positions.extend(bytes.len() - 32..bytes.len());
        for &at in &positions {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x5a;
            std::fs::write(&file, &flipped).unwrap();
            let (problem, message) = state_problem(context.load_state_file(&file), Some(&file));
            let allowed: &[StateProblem] = match at {
                0..=7 => &[StateProblem::NotAState],
                8..=11 => &[StateProblem::FormatVersion],
                // Lengths may now claim more than there is.
                _ => &[StateProblem::Corrupt, StateProblem::Truncated],
            };
            assert!(allowed.contains(&problem), "flip at {at}: {message}");
        }
        println!("{} flipped bytes refused", positions.len());
        assert_eq!(context.state_from_bytes(&bytes).unwrap(), history);
    }

    fn empty_missing_and_directory_paths_are_refused() {
        let model = load(common::tiny_llama());
        let mut context = ctx(&model);
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.state");
        std::fs::write(&empty, b"").unwrap();
        expect_problem(context.load_state_file(&empty), Some(&empty), StateProblem::Truncated);
        let missing = dir.path().join("missing.state");
        expect_problem(context.load_state_file(&missing), Some(&missing), StateProblem::Io);
        expect_problem(context.load_seq_state_file(0, &missing), Some(&missing), StateProblem::Io);
        expect_problem(context.load_state_file(dir.path()), Some(dir.path()), StateProblem::Io);
        expect_problem(context.save_state_file(dir.path(), &[]), Some(dir.path()), StateProblem::Io);
        let nowhere = dir.path().join("no-such-dir").join("x.state");
        expect_problem(context.save_state_file(&nowhere, &[]), Some(&nowhere), StateProblem::Io);
        let text = dir.path().join("text.state");
        std::fs::write(&text, b"hello, this is not a state").unwrap();
        expect_problem(context.load_state_file(&text), Some(&text), StateProblem::NotAState);
        // A model file is not a state either.
        let gguf = common::tiny_llama();
        expect_problem(context.load_state_file(&gguf), Some(&gguf), StateProblem::NotAState);
        // No temporary files are left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    fn whole_and_sequence_states_are_not_interchangeable() {
        let model = load(common::tiny_llama());
        let (whole, _) = small_state(&model);
        let mut context = ctx(&model);
        let mut history = prompt(&model);
        start(&mut context, 0, &history);
        generate(&mut context, 0, &mut history, 2);
        let seq = context.seq_state_to_bytes(0, &history).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (whole_file, seq_file) = (dir.path().join("whole.state"), dir.path().join("seq.state"));
        context.save_state_file(&whole_file, &history).unwrap();
        context.save_seq_state_file(0, &seq_file, &history).unwrap();
        let mut fresh = ctx(&model);
        expect_problem(fresh.state_from_bytes(&seq), None, StateProblem::WrongKind);
        expect_problem(fresh.seq_state_from_bytes(0, &whole), None, StateProblem::WrongKind);
        expect_problem(fresh.load_state_file(&seq_file), Some(&seq_file), StateProblem::WrongKind);
        expect_problem(fresh.load_seq_state_file(0, &whole_file), Some(&whole_file), StateProblem::WrongKind);
        assert_eq!(fresh.load_seq_state_file(0, &seq_file).unwrap(), history);
        assert_eq!(fresh.load_state_file(&whole_file).unwrap(), history);
    }

    fn sequence_ids_out_of_range_are_refused() {
        let model = load(common::tiny_llama());
        let mut context = ctx(&model);
        let seq = context.seq_state_to_bytes(0, &[]).unwrap();
        for bad in [-1, 1, 7, i32::MAX] {
            assert!(matches!(context.seq_state_to_bytes(bad, &[]), Err(Error::SequenceOutOfRange { .. })));
            assert!(matches!(context.seq_state_from_bytes(bad, &seq), Err(Error::SequenceOutOfRange { .. })));
            assert!(matches!(context.load_seq_state_file(bad, "x"), Err(Error::SequenceOutOfRange { .. })));
        }
    }

    fn histories_that_do_not_fit_are_refused() {
        let model = load(common::tiny_llama());
        // llama.cpp pads n_ctx to multiples of 256.
        let mut context = Context::new(&model, params().with_n_ctx(512)).unwrap();
        let mut history = prompt(&model);
        start(&mut context, 0, &history);
        generate(&mut context, 0, &mut history, 280);
        assert!(history.len() > 256);
        let dir = tempfile::tempdir().unwrap();
        let seq_file = dir.path().join("long-seq.state");
        let whole_file = dir.path().join("long.state");
        context.save_seq_state_file(0, &seq_file, &history).unwrap();
        context.save_state_file(&whole_file, &history).unwrap();
        let mut small = ctx(&model);
        assert_eq!(small.n_ctx_seq(), 256);
        let message = expect_problem(small.load_seq_state_file(0, &seq_file), Some(&seq_file), StateProblem::History);
        assert!(message.contains(&history.len().to_string()), "{message}");
        expect_problem(small.load_state_file(&whole_file), Some(&whole_file), StateProblem::ContextMismatch);
        // A history that is not what the memory holds cannot be saved.
        let file = dir.path().join("wrong.state");
        expect_problem(context.save_state_file(&file, &history[..10]), Some(&file), StateProblem::History);
        expect_problem(context.seq_state_to_bytes(0, &[]), None, StateProblem::History);
        assert!(!file.exists());
        let mut bad = history.clone();
        *bad.last_mut().unwrap() = Token(model.n_vocab());
        assert!(matches!(context.state_to_bytes(&bad), Err(Error::TokenOutOfRange { .. })));
    }

    fn other_context_shapes_are_refused_for_whole_states() {
        let model = load(common::tiny_llama());
        let (bytes, _) = small_state(&model);
        for other in [
            params().with_n_seq_max(2),
            params().with_n_ctx(512),
            ContextParams { kv_unified: Some(true), ..params().with_n_seq_max(2) },
        ] {
            let mut context = Context::new(&model, other).unwrap();
            expect_problem(context.state_from_bytes(&bytes), None, StateProblem::ContextMismatch);
        }
        // A sequence state of a one-stream context cannot go into a context with a KV stream
        // per sequence (llama.cpp stores the stream count), but can into a unified one.
        let mut one = ctx(&model);
        let mut history = prompt(&model);
        start(&mut one, 0, &history);
        generate(&mut one, 0, &mut history, 2);
        let seq = one.seq_state_to_bytes(0, &history).unwrap();
        let mut split = Context::new(
            &model,
            ContextParams { kv_unified: Some(false), ..params().with_n_ctx(512).with_n_seq_max(2) },
        )
        .unwrap();
        let message = expect_problem(split.seq_state_from_bytes(1, &seq), None, StateProblem::ContextMismatch);
        assert!(message.contains("stream"), "{message}");
        let mut unified = Context::new(
            &model,
            ContextParams { kv_unified: Some(true), ..params().with_n_seq_max(2) },
        )
        .unwrap();
        assert_eq!(unified.seq_state_from_bytes(1, &seq).unwrap(), history);
        assert_eq!(unified.memory_pos_max(1).unwrap(), Some(history.len() as i32 - 1));
    }

    fn models_without_restorable_memory_are_refused() {
        for path in [common::tiny_t5(), common::tiny_bert()] {
            let model = load(path);
            let mut context = ctx(&model);
            match context.state_to_bytes(&[]) {
                Err(Error::NotSupported { .. }) => {}
                other => panic!("{other:?}"),
            }
            match context.state_from_bytes(b"GGUFLST\0") {
                Err(Error::NotSupported { .. }) => {}
                other => panic!("{other:?}"),
            }
        }
    }
}
