//! Misuse of the safe API on the BitNet fork (bitnet.cpp, llama.cpp build 3947, old llama.h):
//! every case must end in a typed error or the right answer, never an abort, a segfault, a
//! C++ exception or a silently wrong value. The upstream counterparts are in tests/negative.rs.
//!
//! The fork checks less than upstream in places (its decode does not validate sequence ids or
//! positions, its KV-cache functions do not assert on ids, its state reader and pooling assert
//! on what upstream reports), and it behaves differently in others (an empty sequence's
//! largest position is 0, an aborted decode returns 0, an embeddings context has no logits,
//! the BitNet graph ignores control vectors): each case pins what the crate does about it.
//!
//! One llama.cpp build per process: every case loads the fork in its own child process
//! (`common::child_cases!`).

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gguf_loader::adapter::AdapterProblem;
use gguf_loader::chat::{self, TemplateErrorKind};
use gguf_loader::error::StateProblem;
use gguf_loader::loader::{AbiGeneration, LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{
    Batch, ChatMessage, ChatRequest, ChatTemplate, Context, ContextParams, ControlVector,
    DecodeError, Error, GenerateOptions, LoraAdapter, Model, ModelParams, Pooling, Prompt, Sampler,
    StopReason, Token,
};
use sha2::{Digest, Sha256};

const PROMPT: &str = "The three primary colors are";

/// The fork's build (the AVX2 variant: every x86-64 machine that runs the fork has AVX2).
fn fork() -> &'static LlamaLibrary {
    static LIBRARY: OnceLock<LlamaLibrary> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = common::required_path("GGUF_LOADER_BITNET_AVX2_DIR");
        let directory = VariantDirectory::open(&dir).expect("BitNet variant directory");
        assert_eq!(directory.abi, AbiGeneration::BitNet2024);
        LlamaLibrary::load(&directory, PluginSelection::AllInDirectory).expect("load the fork")
    })
}

fn load(path: PathBuf) -> Model {
    Model::load(fork(), path, ModelParams::new()).expect("model")
}

/// The tiny I2_S BitNet model (architecture `bitnet`, SPM vocabulary of 299 tokens, 2 layers,
/// no chat template).
fn bitnet() -> Model {
    load(common::tiny_bitnet())
}

/// SmolLM2 (architecture `llama`, Q4_1), which the fork runs too.
fn smollm2() -> Model {
    load(common::smollm2())
}

fn params() -> ContextParams {
    ContextParams::default()
        .with_n_ctx(128)
        .with_n_batch(64)
        .with_threads(1)
}

fn ctx(model: &Model) -> Context {
    Context::new(model, params()).expect("context")
}

fn words(model: &Model, text: &str) -> Vec<Token> {
    model.tokenize(text, true, false).unwrap()
}

/// Decodes `tokens` into `seq` from position 0, logits for the last one.
fn start(context: &mut Context, seq: i32, tokens: &[Token]) {
    let mut batch = Batch::new(tokens.len().max(1), 1).unwrap();
    batch.add_sequence(tokens, 0, seq, true).unwrap();
    context.decode(&mut batch).unwrap();
}

/// A context that decoded `tokens` in sequence 0 with logits for the last one.
fn decoded(model: &Model, tokens: &[Token]) -> Context {
    let mut context = ctx(model);
    start(&mut context, 0, tokens);
    context
}

/// The logits of the last of `tokens` decoded alone after the others (what loading a state
/// recomputes; the fork's I2_S kernels quantize the activations per batch, so a token's logits
/// depend on the batch it was decoded in).
fn last_alone(model: &Model, tokens: &[Token]) -> Vec<f32> {
    let mut reference = ctx(model);
    let n = tokens.len();
    start(&mut reference, 0, &tokens[..n - 1]);
    let mut last = Batch::new(1, 1).unwrap();
    last.add(tokens[n - 1], n as i32 - 1, &[0], true).unwrap();
    reference.decode(&mut last).unwrap();
    reference.logits(-1).unwrap().to_vec()
}

/// `n` greedy ids of `prompt` through `generate`.
fn greedy(context: &mut Context, prompt: &str, n: usize) -> Vec<i32> {
    common::greedy_ids(context, prompt, n)
}

#[track_caller]
fn invalid<T: std::fmt::Debug>(result: gguf_loader::Result<T>, parameter: &str) {
    match result {
        Err(Error::InvalidArgument {
            parameter: p,
            reason,
        }) if p == parameter => println!("{parameter}: {reason}"),
        other => panic!("expected InvalidArgument {{ parameter: {parameter} }}, got {other:?}"),
    }
}

#[track_caller]
fn not_supported<T: std::fmt::Debug>(result: gguf_loader::Result<T>) {
    match result {
        Err(e @ Error::NotSupported { .. }) => println!("{e}"),
        other => panic!("expected NotSupported, got {other:?}"),
    }
}

#[track_caller]
fn unsupported<T: std::fmt::Debug>(result: gguf_loader::Result<T>, symbol: &str) {
    match result {
        Err(Error::Unsupported { symbol: s }) => assert_eq!(s, symbol),
        other => panic!("expected Unsupported {{ {symbol} }}, got {other:?}"),
    }
}

#[track_caller]
fn token_out_of_range<T: std::fmt::Debug>(result: gguf_loader::Result<T>) {
    assert!(
        matches!(result, Err(Error::TokenOutOfRange { .. })),
        "{result:?}"
    );
}

#[track_caller]
fn state_problem<T: std::fmt::Debug>(result: gguf_loader::Result<T>, problem: StateProblem) {
    match result {
        Err(e @ Error::State { .. }) => {
            println!("{e}");
            let Error::State { problem: p, .. } = e else {
                unreachable!()
            };
            assert_eq!(p, problem);
        }
        other => panic!("expected a state error ({problem:?}), got {other:?}"),
    }
}

#[track_caller]
fn adapter_problem<T: std::fmt::Debug>(result: gguf_loader::Result<T>, problem: AdapterProblem) {
    match result {
        Err(Error::Adapter {
            problem: p, reason, ..
        }) => {
            println!("{reason}");
            assert_eq!(p, problem, "{reason}");
        }
        other => panic!("expected an adapter error ({problem:?}), got {other:?}"),
    }
}

/// The crate's state container with its llama.cpp version string replaced (checksum redone):
/// what an upstream build's state looks like to the fork.
fn with_llama_version(state: &[u8], version: &str) -> Vec<u8> {
    // magic (8), format version (4), kind (1), source sequence (4), then the version string.
    let at = 17;
    let len = u32::from_le_bytes(state[at..at + 4].try_into().unwrap()) as usize;
    let body = &state[..state.len() - 32];
    let mut out = body[..at].to_vec();
    out.extend_from_slice(&(version.len() as u32).to_le_bytes());
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(&body[at + 4 + len..]);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// Greedy SmolLM2 ids from upstream's C reference (tests/c/greedy.c over the cpu variant),
/// with `lora` at scale 1. Plain CPU buffers: this process holds the fork, which cannot say
/// whether upstream's extra buffer types are safe here.
fn upstream_greedy(n: usize, lora: Option<&Path>) -> Vec<i32> {
    let mut command = std::process::Command::new(common::c_greedy(&common::cpu_dir()));
    command.env("GREEDY_EXTRA_BUFTS", "0");
    if let Some(path) = lora {
        command.env("GREEDY_LORA", format!("{}:1", path.display()));
    }
    let output = command
        .arg(common::cpu_dir())
        .arg(common::smollm2())
        .args([n.to_string(), "1".into(), "256".into(), "256".into()])
        .arg(PROMPT)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "upstream's C reference: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

/// The environment variable that tells `upstream_state_of_smollm2` where to write its state.
const UPSTREAM_STATE_ENV: &str = "GGUF_LOADER_BITNET_NEGATIVE_STATE";

/// Runs the case `upstream_state_of_smollm2` in a child process (the upstream build), which
/// writes a SmolLM2 state to `out`.
fn upstream_state(out: &Path) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(common::CHILD_CASE_ENV, "upstream_state_of_smollm2")
        .env(UPSTREAM_STATE_ENV, out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the upstream child failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

child_cases! {
    // ---- Token ids.
    fn token_ids_out_of_range_are_refused() {
        let m = bitnet();
        let n = m.n_vocab();
        assert_eq!(n, 299);
        for bad in [-1, n, n + 1, i32::MAX, i32::MIN] {
            token_out_of_range(m.token_to_piece(Token(bad), true));
            token_out_of_range(m.token_to_bytes(Token(bad), false));
            assert!(!m.is_end_of_generation(Token(bad)));
            token_out_of_range(m.detokenize(&[Token(1), Token(bad)], false, false));
            let mut sampler = Sampler::builder(&m).penalties(16, 1.1, 0.0, 0.0).greedy().build().unwrap();
            token_out_of_range(sampler.accept(Token(bad)));
            let mut context = ctx(&m);
            let mut batch = Batch::new(2, 1).unwrap();
            batch.add(Token(1), 0, &[0], false).unwrap();
            batch.add(Token(bad), 1, &[0], true).unwrap();
            token_out_of_range(context.decode(&mut batch));
            assert_eq!(context.memory_pos_max(0).unwrap(), None, "nothing reached the KV cache");
            token_out_of_range(context.generate(Prompt::Tokens(vec![Token(bad)]), &mut sampler, GenerateOptions::default()).map(|_| ()));
            token_out_of_range(context.state_to_bytes(&[Token(bad)]));
        }
        // Every id in range renders, in every mode.
        for t in (0..n).map(Token) {
            m.token_to_bytes(t, true).unwrap();
            m.token_to_bytes(t, false).unwrap();
        }
        let eos = m.token_eos().unwrap();
        assert!(m.is_end_of_generation(eos));
        assert!(!m.is_end_of_generation(m.token_bos().unwrap()));
        let all: Vec<Token> = (0..n).map(Token).collect();
        match m.detokenize(&all, false, true) {
            Ok(text) => assert!(!text.is_empty()),
            Err(Error::InvalidUtf8 { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
        let mut sampler = Sampler::builder(&m).penalties(16, 1.1, 0.0, 0.0).greedy().build().unwrap();
        for t in [0, n - 1] {
            sampler.accept(Token(t)).unwrap();
        }
    }

    // ---- Tokenizer inputs.
    fn tokenize_empty_and_nul_text() {
        for m in [bitnet(), smollm2()] {
            assert_eq!(m.tokenize("", false, false).unwrap(), Vec::<Token>::new());
            let with_special = m.tokenize("", true, true).unwrap();
            assert!(with_special.len() <= 1, "{with_special:?}");
            if let Some(bos) = m.token_bos().filter(|_| !with_special.is_empty()) {
                assert_eq!(with_special, vec![bos]);
            }
            let nul = m.tokenize("a\0b\0", false, false).unwrap();
            assert!(nul.len() >= 2, "{nul:?}");
            m.check_tokens(&nul).unwrap();
            assert_eq!(m.detokenize(&nul, false, false).unwrap(), "a\0b\0");
            let text = "hello world, the cat";
            let tokens = m.tokenize(text, false, false).unwrap();
            assert_eq!(m.detokenize(&tokens, false, false).unwrap().trim_start(), text);
            // Special-token text, parsed and not.
            let eos_text = String::from_utf8(m.token_to_bytes(m.token_eos().unwrap(), true).unwrap()).unwrap();
            assert_eq!(m.tokenize(&eos_text, false, true).unwrap(), vec![m.token_eos().unwrap()]);
            assert!(m.tokenize(&eos_text, false, false).unwrap().len() > 1);
            let long = "word ".repeat(20_000);
            assert!(m.tokenize(&long, true, false).unwrap().len() >= 20_000);
        }
    }

    // ---- Prompts and batches longer than the context.
    fn prompts_longer_than_the_context() {
        let m = bitnet();
        let mut context = ctx(&m);
        assert_eq!(context.n_ctx(), 128);
        assert_eq!(context.n_ctx_seq(), context.n_ctx(), "the fork's cache is unified");
        let mut sampler = Sampler::greedy(&m).unwrap();
        let long = vec![Token(20); context.n_ctx_seq() as usize + 3];
        match context.generate(Prompt::Tokens(long), &mut sampler, GenerateOptions::default()) {
            Err(e @ Error::ContextOverflow { .. }) => println!("{e}"),
            other => panic!("{other:?}"),
        }
        let text = "word ".repeat(400);
        assert!(matches!(
            context.generate(text.as_str(), &mut sampler, GenerateOptions::default()),
            Err(Error::ContextOverflow { .. })
        ));
        // A raw batch longer than n_batch is refused before C.
        let mut batch = Batch::new(200, 1).unwrap();
        batch.add_sequence(&vec![Token(20); 100], 0, 0, true).unwrap();
        invalid(context.decode(&mut batch), "batch");
        // Filling the cache: the third batch of 64 finds no slot.
        for i in 0..2 {
            let mut batch = Batch::new(64, 1).unwrap();
            batch.add_sequence(&vec![Token(20); 64], 64 * i, 0, true).unwrap();
            context.decode(&mut batch).unwrap();
        }
        assert_eq!(context.memory_pos_max(0).unwrap(), Some(127));
        let mut batch = Batch::new(64, 1).unwrap();
        batch.add_sequence(&[Token(20); 4], 128, 0, true).unwrap();
        match context.decode(&mut batch) {
            Err(e @ Error::Decode(DecodeError::NoKvSlot)) => println!("{e}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(context.logits(-1), Err(Error::OutputOutOfRange { .. })), "a failed decode leaves no outputs");
        // Generation stops at the end of the context.
        let prompt = vec![Token(20); context.n_ctx_seq() as usize - 4];
        let mut sampler = Sampler::builder(&m).dist(7).build().unwrap();
        let mut generation = context
            .generate(Prompt::Tokens(prompt), &mut sampler, GenerateOptions::default().with_max_tokens(100))
            .unwrap();
        for piece in generation.by_ref() {
            piece.unwrap();
        }
        let summary = generation.summary().unwrap();
        assert_eq!(summary.stop_reason, StopReason::ContextFull, "{summary:?}");
    }

    // ---- Sequence ids.
    fn sequence_ids_are_checked_in_every_memory_call() {
        let m = bitnet();
        let mut context = Context::new(&m, params().with_n_seq_max(2)).unwrap();
        let seq = |r: gguf_loader::Result<()>| {
            assert!(matches!(r, Err(Error::SequenceOutOfRange { .. })), "{r:?}");
        };
        for bad in [2, 3, 63, 64, 255, 256, 1000, -2, i32::MAX, i32::MIN] {
            seq(context.memory_seq_rm(Some(bad), None, None).map(|_| ()));
            seq(context.memory_seq_cp(0, bad, None, None));
            seq(context.memory_seq_cp(bad, 0, None, None));
            seq(context.memory_seq_keep(bad));
            seq(context.memory_seq_add(bad, None, None, 1));
            seq(context.memory_pos_max(bad).map(|_| ()));
            seq(context.memory_pos_min(bad).map(|_| ()));
            seq(context.seq_state_to_bytes(bad, &[]).map(|_| ()));
            seq(context.seq_state_from_bytes(bad, b"x").map(|_| ()));
            let mut batch = Batch::new(2, 2).unwrap();
            if batch.add(Token(5), 0, &[0, bad], true).is_ok() {
                seq(context.decode(&mut batch));
            }
        }
        // An empty sequence has no largest position (the fork's own function says 0).
        assert_eq!(context.memory_pos_max(0).unwrap(), None);
        assert_eq!(context.memory_pos_max(1).unwrap(), None);
        assert_eq!(context.memory_pos_min(0).unwrap(), None);
        invalid(context.memory_seq_rm(Some(0), Some(5), Some(2)).map(|_| ()), "p0/p1");
        invalid(context.memory_seq_rm(Some(0), Some(-1), None).map(|_| ()), "p0/p1");
        // One token at position 0: its largest position is 0, not "empty".
        start(&mut context, 1, &[Token(5)]);
        assert_eq!(context.memory_pos_max(1).unwrap(), Some(0));
        assert_eq!(context.memory_pos_max(0).unwrap(), None);
        let tokens = words(&m, "hello world");
        start(&mut context, 0, &tokens);
        let last = tokens.len() as i32 - 1;
        assert_eq!(context.memory_pos_max(0).unwrap(), Some(last));
        invalid(context.memory_seq_add(0, None, None, i32::MAX), "delta");
        context.memory_seq_add(0, None, None, 3).unwrap();
        assert_eq!(context.memory_pos_max(0).unwrap(), Some(last + 3));
        // The shifted cache still decodes (the fork's K-shift graph runs for this model).
        let mut batch = Batch::new(1, 1).unwrap();
        batch.add(Token(7), last + 4, &[0], true).unwrap();
        context.decode(&mut batch).unwrap();
        assert!(context.logits(-1).unwrap().iter().all(|v| v.is_finite()));
        context.memory_seq_add(0, None, None, -3).unwrap();
        assert_eq!(context.memory_pos_max(0).unwrap(), Some(last + 1));
        context.memory_seq_cp(0, 1, None, None).unwrap();
        assert_eq!(context.memory_pos_max(1).unwrap(), Some(last + 1));
        context.memory_seq_keep(1).unwrap();
        assert_eq!(context.memory_pos_max(1).unwrap(), Some(last + 1));
        assert!(context.memory_seq_rm(Some(1), Some(1), None).unwrap());
        assert_eq!(context.memory_pos_max(1).unwrap(), Some(0));
        assert!(context.memory_seq_rm(None, None, None).unwrap());
        assert_eq!(context.memory_pos_max(1).unwrap(), None);
        assert_eq!(context.memory_pos_max(0).unwrap(), None);
        // Many sequences in one batch, the highest id included.
        let mut context = Context::new(&m, params().with_n_seq_max(64)).unwrap();
        let mut batch = Batch::new(64, 64).unwrap();
        for s in 0..64 {
            batch.add(Token(10 + s), 0, &[s], true).unwrap();
        }
        context.decode(&mut batch).unwrap();
        assert_eq!(context.output_rows().len(), 64);
        assert_eq!(context.memory_pos_max(63).unwrap(), Some(0));
        let all: Vec<i32> = (0..64).collect();
        let mut batch = Batch::new(1, 64).unwrap();
        batch.add(Token(3), 1, &all, true).unwrap();
        context.decode(&mut batch).unwrap();
        assert_eq!(context.memory_pos_max(17).unwrap(), Some(1));
    }

    fn n_seq_max_is_bounded() {
        let m = bitnet();
        invalid(Context::new(&m, params().with_n_seq_max(0)), "n_seq_max");
        invalid(Context::new(&m, params().with_n_seq_max(65)), "n_seq_max");
        invalid(Context::new(&m, params().with_n_seq_max(100_000)), "n_seq_max");
        invalid(Context::new(&m, params().with_n_batch(2).with_n_seq_max(4)), "n_seq_max");
        let context = Context::new(&m, params().with_n_seq_max(64)).unwrap();
        assert_eq!(context.n_seq_max(), 64);
        // The fork has one KV buffer: kv_unified = false is not available and not pretended.
        let context = Context::new(&m, ContextParams { kv_unified: Some(false), ..params().with_n_seq_max(4) }).unwrap();
        assert_eq!(context.n_ctx_seq(), context.n_ctx());
    }

    // ---- Outputs.
    fn logits_are_checked_against_the_last_outputs() {
        let m = bitnet();
        let mut context = ctx(&m);
        assert!(matches!(context.logits(-1), Err(Error::OutputOutOfRange { .. })), "before any decode");
        assert!(matches!(context.logits(0), Err(Error::OutputOutOfRange { .. })), "before any decode");
        let mut sampler = Sampler::greedy(&m).unwrap();
        assert!(matches!(sampler.sample(&mut context, -1), Err(Error::OutputOutOfRange { .. })));
        let tokens = words(&m, "hello world the cat");
        start(&mut context, 0, &tokens);
        let last = tokens.len() as i32 - 1;
        assert_eq!(context.logits(last).unwrap().len(), m.n_vocab() as usize);
        assert_eq!(context.logits(-1).unwrap(), context.logits(last).unwrap());
        for bad in [0, last - 1, last + 1, 1000, -2, i32::MIN, i32::MAX] {
            match context.logits(bad) {
                Err(Error::OutputOutOfRange { index, .. }) => assert_eq!(index, bad),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(matches!(sampler.sample(&mut context, 0), Err(Error::OutputOutOfRange { .. })));
        m.check_token(sampler.sample(&mut context, -1).unwrap()).unwrap();
        // Several outputs in one batch, read from the end and by index.
        context.clear_memory();
        let mut batch = Batch::new(tokens.len(), 1).unwrap();
        for (i, t) in tokens.iter().enumerate() {
            batch.add(*t, i as i32, &[0], i % 2 == 0).unwrap();
        }
        context.decode(&mut batch).unwrap();
        let rows = context.output_rows().to_vec();
        assert_eq!(rows, (0..tokens.len() as i32).filter(|i| i % 2 == 0).collect::<Vec<_>>());
        assert_eq!(context.logits(-1).unwrap(), context.logits(*rows.last().unwrap()).unwrap());
        assert_eq!(context.logits(-(rows.len() as i32)).unwrap(), context.logits(0).unwrap());
        assert!(context.logits(-(rows.len() as i32) - 1).is_err());
        assert!(context.logits(1).is_err());
        // A batch without outputs leaves none.
        let mut batch = Batch::new(1, 1).unwrap();
        batch.add(Token(9), tokens.len() as i32, &[0], false).unwrap();
        context.decode(&mut batch).unwrap();
        assert!(context.output_rows().is_empty());
        assert!(matches!(context.logits(-1), Err(Error::OutputOutOfRange { .. })));
        // A batch refused before C keeps the last outputs; embeddings were never asked for.
        let mut bad = Batch::new(1, 1).unwrap();
        bad.add(Token(m.n_vocab()), 0, &[0], true).unwrap();
        assert!(context.decode(&mut bad).is_err());
        not_supported(context.embeddings_ith(-1));
        not_supported(context.embeddings_seq(0));
    }

    fn embeddings_on_the_fork() {
        let m = bitnet();
        let tokens = words(&m, "hello world the cat");
        let n = tokens.len();
        // Per-token embeddings: every row, as upstream gives them (the fork outputs only the
        // rows asked for logits unless told otherwise), and no logits.
        let mut context = Context::new(&m, params().with_embeddings(Pooling::None)).unwrap();
        assert!(matches!(context.embeddings_ith(-1), Err(Error::OutputOutOfRange { .. })), "before any decode");
        start(&mut context, 0, &tokens);
        assert_eq!(context.output_rows(), (0..n as i32).collect::<Vec<_>>());
        let mut rows = Vec::new();
        for i in 0..n as i32 {
            let e = context.embeddings_ith(i).unwrap().to_vec();
            assert_eq!(e.len(), m.n_embd_out() as usize);
            assert!(e.iter().all(|v| v.is_finite()));
            rows.push(e);
        }
        assert_eq!(context.embeddings_ith(-1).unwrap(), rows[n - 1].as_slice());
        assert_eq!(context.embeddings_ith(-(n as i32)).unwrap(), rows[0].as_slice());
        assert!(context.embeddings_ith(n as i32).is_err());
        assert!(context.embeddings_ith(-(n as i32) - 1).is_err());
        assert_ne!(rows[0], rows[n - 1]);
        not_supported(context.logits(-1));
        not_supported(context.embeddings_seq(0));
        let mut sampler = Sampler::greedy(&m).unwrap();
        not_supported(sampler.sample(&mut context, -1));
        // Pooled: the mean of the per-token rows.
        let mut pooled = Context::new(&m, params().with_n_seq_max(2).with_embeddings(Pooling::Mean)).unwrap();
        start(&mut pooled, 0, &tokens);
        let mean = pooled.embeddings_seq(0).unwrap();
        for (j, v) in mean.iter().enumerate() {
            let expected = rows.iter().map(|r| r[j]).sum::<f32>() / n as f32;
            assert!((v - expected).abs() <= 1e-3 * (1.0 + expected.abs()), "{j}: {v} vs {expected}");
        }
        not_supported(pooled.embeddings_ith(-1));
        not_supported(pooled.logits(-1));
        invalid(pooled.embeddings_seq(1), "seq_id");
        // Two sequences in one batch.
        pooled.clear_memory();
        let mut batch = Batch::new(tokens.len(), 1).unwrap();
        batch.add_sequence(&tokens[..2], 0, 0, true).unwrap();
        batch.add_sequence(&tokens[2..], 0, 1, true).unwrap();
        pooled.decode(&mut batch).unwrap();
        assert_ne!(pooled.embeddings_seq(0).unwrap(), pooled.embeddings_seq(1).unwrap());
        // A sequence id at or above the batch's token count: the fork's pooling asserts
        // `seq_id < n_tokens`; refused before C.
        for pooling in [Pooling::Mean, Pooling::Cls, Pooling::Last] {
            let mut pooled = Context::new(&m, params().with_n_seq_max(4).with_embeddings(pooling)).unwrap();
            let mut batch = Batch::new(2, 1).unwrap();
            batch.add(tokens[1], 0, &[3], true).unwrap();
            invalid(pooled.decode(&mut batch), "batch");
            batch.add(tokens[2], 1, &[3], true).unwrap();
            invalid(pooled.decode(&mut batch), "batch");
            let mut batch = Batch::new(4, 1).unwrap();
            batch.add_sequence(&tokens[..4], 0, 3, true).unwrap();
            pooled.decode(&mut batch).unwrap();
            assert_eq!(pooled.embeddings_seq(3).unwrap().len(), m.n_embd_out() as usize);
        }
        // Rank pooling needs a classifier head the fork cannot report.
        not_supported(Context::new(&m, params().with_embeddings(Pooling::Rank)));
    }

    fn encode_needs_an_encoder() {
        let m = bitnet();
        assert!(!m.has_encoder());
        let mut context = ctx(&m);
        let mut batch = Batch::new(8, 1).unwrap();
        batch.add_sequence(&words(&m, "hello"), 0, 0, true).unwrap();
        not_supported(context.encode(&mut batch));
        context.decode(&mut batch).unwrap();
    }

    // ---- Context parameters.
    fn context_parameters_are_checked() {
        let m = bitnet();
        invalid(Context::new(&m, params().with_n_ctx(0)), "n_ctx");
        invalid(Context::new(&m, params().with_n_ctx(u32::MAX)), "n_ctx");
        invalid(Context::new(&smollm2(), params().with_n_ctx(1 << 30)), "n_ctx");
        invalid(Context::new(&m, params().with_n_batch(0)), "n_batch");
        invalid(Context::new(&m, params().with_n_ubatch(0)), "n_ubatch");
        invalid(Context::new(&m, ContextParams { rope_freq_base: Some(f32::NAN), ..params() }), "rope_freq_base");
        invalid(Context::new(&m, ContextParams { yarn_ext_factor: Some(f32::INFINITY), ..params() }), "yarn_ext_factor");
        // n_ubatch above n_batch is clamped; a tiny n_ctx is padded by the fork.
        let context = Context::new(&m, params().with_n_ubatch(1000)).unwrap();
        assert!(context.n_ubatch() <= context.n_batch());
        let mut context = Context::new(&m, params().with_n_ctx(1).with_n_batch(1)).unwrap();
        assert!(context.n_ctx() >= 1 && context.n_batch() >= 1);
        let n = greedy(&mut context, "hello", 4);
        assert!(!n.is_empty());
        // Threads.
        invalid(Context::new(&m, params().with_threads(0)), "n_threads");
        invalid(Context::new(&m, params().with_threads(-1)), "n_threads");
        invalid(Context::new(&m, params().with_threads(Context::max_threads() + 1)), "n_threads");
        let mut context = ctx(&m);
        invalid(context.set_threads(1, 1_000_000), "n_threads_batch");
        invalid(context.set_threads(0, 1), "n_threads");
        context.set_threads(1, 2).unwrap();
        assert_eq!(context.threads(), (1, 2));
        assert!(!greedy(&mut context, "hello", 2).is_empty());
        // A quantized V cache needs flash attention (refused before C when disabled).
        invalid(Context::new(&m, ContextParams {
            type_v: Some(gguf_loader::CacheType::Q8_0),
            flash_attention: Some(gguf_loader::FlashAttention::Disabled),
            ..params()
        }), "type_v");
    }

    // ---- State.
    fn states_that_do_not_fit_are_refused() {
        let m = bitnet();
        let tokens = words(&m, "hello world the cat");
        let mut context = decoded(&m, &tokens);
        let bytes = context.state_to_bytes(&tokens).unwrap();
        // Loading recomputes the last token alone; the fork's I2_S kernels quantize the
        // activations per batch, so the reference decodes it alone too.
        let logits = last_alone(&m, &tokens);
        // A history that does not match the memory.
        state_problem(context.state_to_bytes(&tokens[1..]), StateProblem::History);
        state_problem(context.state_to_bytes(&[]), StateProblem::History);
        // Round trip: the logits are recomputed exactly.
        let mut fresh = ctx(&m);
        assert_eq!(fresh.state_from_bytes(&bytes).unwrap(), tokens);
        assert_eq!(fresh.logits(-1).unwrap(), logits.as_slice());
        assert_eq!(fresh.memory_pos_max(0).unwrap(), Some(tokens.len() as i32 - 1));
        // Truncated, empty, corrupt.
        for cut in [0, 3, 8, 20, bytes.len() / 2, bytes.len() - 33, bytes.len() - 1] {
            state_problem(fresh.state_from_bytes(&bytes[..cut]), StateProblem::Truncated);
        }
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        state_problem(fresh.state_from_bytes(&flipped), StateProblem::Corrupt);
        let mut longer = bytes.clone();
        longer.push(0);
        state_problem(fresh.state_from_bytes(&longer), StateProblem::Corrupt);
        state_problem(fresh.state_from_bytes(b"GGUF\x03\0\0\0 not a state"), StateProblem::NotAState);
        // Another build (an upstream build's version string, valid checksum).
        let upstream = with_llama_version(&bytes, AbiGeneration::Upstream.llama_version());
        state_problem(fresh.state_from_bytes(&upstream), StateProblem::OtherBuild);
        // Another model (SmolLM2 on the same fork build), both ways.
        let s = smollm2();
        let mut other = ctx(&s);
        state_problem(other.state_from_bytes(&bytes), StateProblem::OtherModel);
        let s_tokens = words(&s, "hello");
        start(&mut other, 0, &s_tokens);
        let s_bytes = other.state_to_bytes(&s_tokens).unwrap();
        state_problem(fresh.state_from_bytes(&s_bytes), StateProblem::OtherModel);
        // Another context shape, the wrong kind.
        let mut bigger = Context::new(&m, params().with_n_ctx(256)).unwrap();
        state_problem(bigger.state_from_bytes(&bytes), StateProblem::ContextMismatch);
        let mut two = Context::new(&m, params().with_n_seq_max(2)).unwrap();
        state_problem(two.state_from_bytes(&bytes), StateProblem::ContextMismatch);
        state_problem(fresh.seq_state_from_bytes(0, &bytes), StateProblem::WrongKind);
        // After every refusal the context still works.
        assert_eq!(fresh.state_from_bytes(&bytes).unwrap(), tokens);
        m.check_token(Sampler::greedy(&m).unwrap().sample(&mut fresh, -1).unwrap()).unwrap();
    }

    fn empty_and_sequence_states() {
        let m = bitnet();
        // An empty context's state: no history, nothing in memory.
        let mut empty = ctx(&m);
        let bytes = empty.state_to_bytes(&[]).unwrap();
        let mut fresh = decoded(&m, &words(&m, "hello"));
        assert_eq!(fresh.state_from_bytes(&bytes).unwrap(), Vec::<Token>::new());
        assert_eq!(fresh.memory_pos_max(0).unwrap(), None);
        assert!(matches!(fresh.logits(-1), Err(Error::OutputOutOfRange { .. })));
        // Sequence states between contexts of other shapes.
        let tokens = words(&m, "the cat");
        let mut two = Context::new(&m, params().with_n_seq_max(2)).unwrap();
        start(&mut two, 1, &tokens);
        let logits = last_alone(&m, &tokens);
        let seq = two.seq_state_to_bytes(1, &tokens).unwrap();
        state_problem(two.seq_state_to_bytes(0, &tokens), StateProblem::History);
        let mut one = ctx(&m);
        assert_eq!(one.seq_state_from_bytes(0, &seq).unwrap(), tokens);
        assert_eq!(one.logits(-1).unwrap(), logits.as_slice());
        state_problem(one.state_from_bytes(&seq), StateProblem::WrongKind);
        assert!(matches!(one.seq_state_from_bytes(1, &seq), Err(Error::SequenceOutOfRange { .. })));
        // An empty sequence's state (no cells: the fork's reader would index cell -1).
        let empty_seq = two.seq_state_to_bytes(0, &[]).unwrap();
        assert_eq!(one.seq_state_from_bytes(0, &empty_seq).unwrap(), Vec::<Token>::new());
        assert_eq!(one.memory_pos_max(0).unwrap(), None);
        assert_eq!(two.seq_state_from_bytes(1, &empty_seq).unwrap(), Vec::<Token>::new());
        assert_eq!(two.memory_pos_max(1).unwrap(), None);
        // A sequence state whose history does not fit this context.
        let long: Vec<Token> = vec![Token(20); 100];
        let mut big = Context::new(&m, params().with_n_ctx(256).with_n_batch(128)).unwrap();
        start(&mut big, 0, &long);
        let long_state = big.seq_state_to_bytes(0, &long).unwrap();
        let mut small = Context::new(&m, params().with_n_ctx(64)).unwrap();
        state_problem(small.seq_state_from_bytes(0, &long_state), StateProblem::History);
        assert_eq!(one.seq_state_from_bytes(0, &long_state).unwrap(), long);
    }

    fn state_files() {
        let m = bitnet();
        let tokens = words(&m, "hello world");
        let mut context = decoded(&m, &tokens);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("session.state");
        context.save_state_file(&file, &tokens).unwrap();
        let mut fresh = ctx(&m);
        assert_eq!(fresh.load_state_file(&file).unwrap(), tokens);
        state_problem(fresh.load_state_file(dir.path().join("missing")), StateProblem::Io);
        state_problem(fresh.load_state_file(dir.path()), StateProblem::Io);
        state_problem(context.save_state_file(dir.path(), &tokens), StateProblem::Io);
        let bytes = std::fs::read(&file).unwrap();
        let cut = dir.path().join("cut.state");
        std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
        match fresh.load_state_file(&cut) {
            Err(Error::State { path, problem, .. }) => {
                assert_eq!(problem, StateProblem::Truncated);
                assert_eq!(path.as_deref(), Some(cut.as_path()));
            }
            other => panic!("{other:?}"),
        }
        let seq_file = dir.path().join("seq.state");
        context.save_seq_state_file(0, &seq_file, &tokens).unwrap();
        assert_eq!(fresh.load_seq_state_file(0, &seq_file).unwrap(), tokens);
        state_problem(fresh.load_state_file(&seq_file), StateProblem::WrongKind);
        // A state file of an upstream build (SmolLM2, which both builds run): another build.
        let s = smollm2();
        let up = dir.path().join("upstream.state");
        upstream_state(&up);
        let mut other = ctx(&s);
        state_problem(other.load_state_file(&up), StateProblem::OtherBuild);
        let s_tokens = words(&s, "hello world");
        start(&mut other, 0, &s_tokens);
        assert!(other.logits(-1).unwrap().iter().all(|v| v.is_finite()));
    }

    /// The upstream side of `state_files` (run by it with the output path in the environment;
    /// alone, it checks its own state in a temporary directory).
    fn upstream_state_of_smollm2() {
        let dir = VariantDirectory::open(&common::cpu_dir()).unwrap();
        let library = LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).unwrap();
        let m = Model::load(&library, common::smollm2(), ModelParams::new()).unwrap();
        let tokens = words(&m, "hello world");
        let mut context = Context::new(&m, params()).unwrap();
        start(&mut context, 0, &tokens);
        let tmp = tempfile::tempdir().unwrap();
        let out = std::env::var_os(UPSTREAM_STATE_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| tmp.path().join("upstream.state"));
        context.save_state_file(&out, &tokens).unwrap();
        let mut fresh = Context::new(&m, params()).unwrap();
        assert_eq!(fresh.load_state_file(&out).unwrap(), tokens);
    }

    // ---- Adapters.
    fn lora_adapters_on_the_fork() {
        let m = bitnet();
        adapter_problem(LoraAdapter::load(&m, common::tiny_llama_lora()), AdapterProblem::Architecture);
        adapter_problem(LoraAdapter::load(&m, common::smollm2_lora()), AdapterProblem::Architecture);
        let s = smollm2();
        adapter_problem(LoraAdapter::load(&s, common::tiny_llama_lora()), AdapterProblem::Shape);
        let adapter = LoraAdapter::load(&s, common::smollm2_lora()).unwrap();
        assert_eq!(adapter.n_tensors(), 2 * s.n_layer() as usize);
        // An adapter of another model on this context.
        let mut tiny = ctx(&m);
        adapter_problem(tiny.set_lora_adapters(&[(&adapter, 1.0)]), AdapterProblem::OtherModel);
        let mut context = Context::new(&s, params().with_n_ctx(256).with_n_batch(256)).unwrap();
        invalid(context.set_lora_adapters(&[(&adapter, f32::NAN)]), "scale");
        invalid(context.set_lora_adapters(&[(&adapter, 1.0), (&adapter, 0.5)]), "adapters");
        const N: usize = 8;
        let base = greedy(&mut context, PROMPT, N);
        context.set_lora_adapters(&[(&adapter, 1.0)]).unwrap();
        let with = greedy(&mut context, PROMPT, N);
        println!("base {base:?}\nlora {with:?}");
        assert_eq!(with.len(), N);
        assert_ne!(with, base, "the adapter changes the output");
        // Upstream's answer with the same adapter (its C reference over the cpu variant).
        let upstream_base = upstream_greedy(N, None);
        let upstream = upstream_greedy(N, Some(&common::smollm2_lora()));
        println!("upstream base {upstream_base:?}\nupstream lora {upstream:?}");
        for (fork_ids, upstream_ids) in [(&base, &upstream_base), (&with, &upstream)] {
            let agree = fork_ids.iter().zip(upstream_ids).take_while(|(a, b)| a == b).count();
            assert!(agree >= 4, "the fork and upstream agree on the output's start: {fork_ids:?} vs {upstream_ids:?}");
        }
        context.set_lora_adapters(&[(&adapter, 0.0)]).unwrap();
        assert_eq!(greedy(&mut context, PROMPT, N), base, "scale 0 is the base model");
        context.clear_lora_adapters();
        assert_eq!(greedy(&mut context, PROMPT, N), base);
        // The adapter outlives its model and the context that used it.
        context.set_lora_adapters(&[(&adapter, 1.0)]).unwrap();
        drop(s);
        assert_eq!(greedy(&mut context, PROMPT, N), with);
        drop(context);
        assert_eq!(adapter.model().architecture(), "llama");
        drop(adapter);
    }

    fn control_vectors_on_the_fork() {
        let m = bitnet();
        let s = smollm2();
        let n_m = (m.n_embd() * (m.n_layer() - 1)) as usize;
        let n_s = (s.n_embd() * (s.n_layer() - 1)) as usize;
        invalid(ControlVector::new(&m, vec![0.1; n_m + 1]), "control_vector");
        invalid(ControlVector::new(&m, vec![f32::NAN; n_m]), "control_vector");
        let for_m = ControlVector::new(&m, vec![0.5; n_m]).unwrap();
        let for_s = ControlVector::new(&s, vec![0.05; n_s]).unwrap();
        // The fork's BitNet graph never adds a control vector: refused, not ignored.
        let mut tiny = decoded(&m, &words(&m, "hello"));
        not_supported(tiny.set_control_vector(&for_m, 1..=1));
        assert!(!tiny.has_control_vector());
        invalid(tiny.set_control_vector(&for_s, 1..=1), "control_vector");
        tiny.clear_control_vector();
        // SmolLM2 (llama graph) applies it.
        let mut context = ctx(&s);
        invalid(context.set_control_vector(&for_m, 1..=1), "control_vector");
        invalid(context.set_control_vector(&for_s, 0..=3), "layers");
        invalid(context.set_control_vector(&for_s, 1..=s.n_layer()), "layers");
        #[allow(clippy::reversed_empty_ranges)]
        invalid(context.set_control_vector(&for_s, 5..=2), "layers");
        let tokens = words(&s, PROMPT);
        start(&mut context, 0, &tokens);
        let base = context.logits(-1).unwrap().to_vec();
        context.set_control_vector(&for_s, 1..=s.n_layer() - 1).unwrap();
        assert!(context.has_control_vector());
        context.clear_memory();
        start(&mut context, 0, &tokens);
        let steered = context.logits(-1).unwrap().to_vec();
        assert!(steered.iter().all(|v| v.is_finite()));
        assert_ne!(steered, base, "the control vector changes the logits");
        context.clear_control_vector();
        context.clear_memory();
        start(&mut context, 0, &tokens);
        assert_eq!(context.logits(-1).unwrap(), base.as_slice(), "cleared");
    }

    // ---- Chat templates.
    fn chat_templates_on_the_fork() {
        let m = bitnet();
        assert_eq!(m.chat_template(None).unwrap(), None);
        assert_eq!(m.chat_template(Some("tool_use")).unwrap(), None);
        match ChatTemplate::from_model(&m) {
            Err(Error::ChatTemplate { kind: TemplateErrorKind::Missing, message, .. }) => println!("{message}"),
            other => panic!("{other:?}"),
        }
        let messages = vec![ChatMessage::new("system", "Be brief."), ChatMessage::new("user", "Hi")];
        let s = smollm2();
        let template = ChatTemplate::from_model(&s).unwrap();
        let text = template.render(&ChatRequest::new(&messages).with_generation_prompt(true)).unwrap();
        assert!(text.contains("<|im_start|>user\nHi<|im_end|>"), "{text}");
        // The fork's built-in formats: no list, but known names work.
        unsupported(chat::builtin_template_names(fork()), "llama_chat_builtin_templates");
        let chatml = chat::apply_builtin(fork(), "chatml", &messages, true).unwrap();
        assert!(chatml.ends_with("<|im_start|>assistant\n"), "{chatml}");
        for name in ["llama2", "llama3", "gemma", "phi3", "zephyr", "openchat", "vicuna"] {
            chat::apply_builtin(fork(), name, &messages, true).unwrap();
            let odd = vec![ChatMessage::new("", ""), ChatMessage::new("x", "")];
            chat::apply_builtin(fork(), name, &odd, false).unwrap();
            chat::apply_builtin(fork(), name, &[], true).unwrap();
        }
        match chat::apply_builtin(fork(), "no-such-template", &messages, true) {
            Err(Error::ChatTemplate { kind: TemplateErrorKind::UnknownBuiltin, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            chat::apply_builtin(fork(), "chatml", &[ChatMessage::new("us\0er", "x")], true),
            Err(Error::ChatMessages { index: Some(0), .. })
        ));
        invalid(chat::apply_builtin(fork(), "chat\0ml", &messages, true), "chat template name");
        let long = vec![ChatMessage::new("user", "x".repeat(100_000))];
        assert!(chat::apply_builtin(fork(), "chatml", &long, true).unwrap().len() > 100_000);
    }

    // ---- Samplers.
    fn samplers_the_fork_lacks_are_unsupported() {
        let m = bitnet();
        unsupported(Sampler::builder(&m).xtc(0.5, 0.1, 1, 1).dist(1).build(), "llama_sampler_init_xtc");
        unsupported(Sampler::builder(&m).top_n_sigma(1.0).greedy().build(), "llama_sampler_init_top_n_sigma");
        unsupported(Sampler::builder(&m).grammar("root ::= \"a\"", "root").greedy().build(), "llama_sampler_init_grammar");
        unsupported(
            Sampler::builder(&m).grammar_lazy("root ::= \"a\"", "root", &[], &[Token(5)]).greedy().build(),
            "llama_sampler_init_grammar",
        );
        unsupported(Sampler::builder(&m).dry(0.8, 1.75, 2, 64, &["\n"]).greedy().build(), "llama_sampler_init_dry");
        unsupported(Sampler::builder(&m).top_k(40).infill().dist(1).build(), "llama_sampler_init_infill");
        // The parameter checks still come first.
        invalid(Sampler::builder(&m).top_k(0).greedy().build(), "top_k");
        invalid(Sampler::builder(&m).penalties(0, 1.1, 0.0, 0.0).greedy().build(), "penalty_last_n");
        invalid(Sampler::builder(&m).temp(f32::NAN).greedy().build(), "temperature");
        invalid(Sampler::builder(&m).mirostat(1, 5.0, 0.1, m.n_vocab() + 1).build(), "mirostat_m");
        invalid(Sampler::builder(&m).logit_bias(&[(Token(3), f32::NAN)]).greedy().build(), "logit_bias");
        token_out_of_range(Sampler::builder(&m).logit_bias(&[(Token(m.n_vocab()), 1.0)]).greedy().build());
        // What the fork has works, penalties with a long history included.
        let prompt = words(&m, "hello world");
        for sampler in [
            Sampler::builder(&m).greedy().build(),
            Sampler::builder(&m).penalties(64, 1.3, 0.2, 0.2).top_k(10).top_p(0.9, 1).min_p(0.05, 1).typical(0.9, 1).temp(0.7).dist(3).build(),
            Sampler::builder(&m).temp_ext(0.8, 0.5, 1.0).dist(4).build(),
            Sampler::builder(&m).mirostat(3, 5.0, 0.1, 100).build(),
            Sampler::builder(&m).mirostat_v2(3, 5.0, 0.1).build(),
            Sampler::builder(&m).logit_bias(&[(Token(5), 10.0)]).greedy().build(),
        ] {
            let mut sampler = sampler.unwrap();
            let mut context = decoded(&m, &prompt);
            for t in 0..m.n_vocab() {
                sampler.accept(Token(t)).unwrap();
            }
            m.check_token(sampler.sample(&mut context, -1).unwrap()).unwrap();
            let clone = sampler.try_clone().unwrap();
            drop(clone);
        }
        // Banning every token is a typed error.
        let all: Vec<(Token, f32)> = (0..m.n_vocab()).map(|t| (Token(t), f32::NEG_INFINITY)).collect();
        let mut sampler = Sampler::builder(&m).logit_bias(&all).dist(1).build().unwrap();
        let mut context = decoded(&m, &prompt);
        assert!(matches!(sampler.sample(&mut context, -1), Err(Error::Sampling { .. })));
        // A sampler of another model.
        let s = smollm2();
        let mut other = Sampler::greedy(&s).unwrap();
        assert!(matches!(other.sample(&mut context, -1), Err(Error::ModelMismatch { .. })));
    }

    // ---- Cancellation.
    fn an_aborted_decode_is_an_error() {
        let m = bitnet();
        let mut context = ctx(&m);
        let tokens = words(&m, "hello world the cat");
        context.set_abort_callback(|| true);
        let mut batch = Batch::new(tokens.len(), 1).unwrap();
        batch.add_sequence(&tokens, 0, 0, true).unwrap();
        match context.decode(&mut batch) {
            Err(e @ Error::Decode(DecodeError::Aborted)) => println!("{e}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(context.logits(-1), Err(Error::OutputOutOfRange { .. })));
        assert_eq!(context.memory_pos_max(0).unwrap(), None, "the aborted batch left nothing in memory");
        context.set_abort_callback(|| false);
        context.decode(&mut batch).unwrap();
        let logits = context.logits(-1).unwrap().to_vec();
        let reference = decoded(&m, &tokens);
        assert_eq!(logits, reference.logits(-1).unwrap());
        // A cancelled handle aborts too; the next generation resets it.
        let handle = context.cancel_handle();
        handle.cancel();
        let mut one = Batch::new(1, 1).unwrap();
        one.add(Token(7), tokens.len() as i32, &[0], true).unwrap();
        assert!(matches!(context.decode(&mut one), Err(Error::Decode(DecodeError::Aborted))));
        assert_eq!(context.memory_pos_max(0).unwrap(), Some(tokens.len() as i32 - 1));
        assert!(!greedy(&mut context, "hello", 3).is_empty());
        // A panicking callback.
        context.set_abort_callback(|| panic!("boom"));
        assert!(matches!(context.decode(&mut batch), Err(Error::CallbackPanicked { .. })));
    }

    /// The fork applies a shift of positions to the cached keys at once (its KV-cache view
    /// would add a pending shift to the shifted positions again, and a decode aborted while
    /// applying one marks it done anyway): positions read right after a shift are the shifted
    /// ones, a shift the abort callback stops is an error that clears the memory, and a decode
    /// aborted after a shift forgets only its own batch.
    fn shifts_are_applied_at_once_and_an_aborted_shift_clears_the_memory() {
        let m = bitnet();
        let mut context = ctx(&m);
        let tokens = words(&m, "hello world the cat");
        let n = tokens.len() as i32;
        let mut batch = Batch::new(tokens.len(), 1).unwrap();
        batch.add_sequence(&tokens, 0, 0, true).unwrap();
        context.decode(&mut batch).unwrap();
        context.memory_seq_rm(Some(0), Some(0), Some(1)).unwrap();
        context.memory_seq_add(0, Some(1), None, -1).unwrap();
        assert_eq!(context.memory_pos_min(0).unwrap(), Some(0));
        assert_eq!(context.memory_pos_max(0).unwrap(), Some(n - 2));
        // A decode aborted after the shift removes its own position only.
        context.set_abort_callback(|| true);
        let mut one = Batch::new(1, 1).unwrap();
        one.add(Token(7), n - 1, &[0], true).unwrap();
        assert!(matches!(context.decode(&mut one), Err(Error::Decode(DecodeError::Aborted))));
        assert_eq!(context.memory_pos_max(0).unwrap(), Some(n - 2));
        // A shift the callback stops: an error, and the memory cleared.
        assert!(matches!(
            context.memory_seq_add(0, Some(1), None, -1),
            Err(Error::Decode(DecodeError::Aborted))
        ));
        assert_eq!(context.memory_pos_max(0).unwrap(), None, "cleared, not half-shifted");
        context.set_abort_callback(|| false);
        context.decode(&mut batch).unwrap();
        context.memory_seq_rm(Some(0), Some(0), Some(1)).unwrap();
        context.memory_seq_add(0, Some(1), None, -1).unwrap();
        context.decode(&mut one).unwrap();
        assert_eq!(context.memory_pos_max(0).unwrap(), Some(n - 1));
    }

    // ---- The shared model.
    fn many_contexts_from_one_model() {
        let m = bitnet();
        let held: Vec<Context> = (0..8).map(|_| ctx(&m)).collect();
        std::thread::scope(|scope| {
            for i in 0..4 {
                let m = m.clone();
                scope.spawn(move || {
                    for _ in 0..3 {
                        let mut context = Context::new(&m, params()).unwrap();
                        let mut sampler = Sampler::builder(&m).dist(i).build().unwrap();
                        let n = context
                            .generate("hello", &mut sampler, GenerateOptions::default().with_max_tokens(4))
                            .unwrap()
                            .count();
                        assert!(n >= 1);
                    }
                });
            }
        });
        drop(held);
        // Same results from contexts of one model and of the file loaded twice.
        let other = bitnet();
        let a = greedy(&mut ctx(&m), PROMPT, 8);
        let b = greedy(&mut ctx(&other), PROMPT, 8);
        assert_eq!(a, b);
        let mut sampler = Sampler::greedy(&m).unwrap();
        let mut context = decoded(&other, &words(&other, "hello"));
        assert!(matches!(sampler.sample(&mut context, -1), Err(Error::ModelMismatch { .. })));
    }

    // ---- Other architectures the fork runs.
    fn bert_and_t5_on_the_fork() {
        // BERT (WordPiece, non-causal, no output head). The fork adds its CLS id with
        // add_special (101 by default when the file names none); every id stays in range.
        let m = load(common::tiny_bert());
        let tokens = m.tokenize("hello world", true, false).unwrap();
        m.check_tokens(&tokens).unwrap();
        assert_eq!(tokens.last(), m.token_sep().as_ref(), "{tokens:?}");
        let mut pooled = Context::new(&m, params().with_embeddings(Pooling::Mean)).unwrap();
        start(&mut pooled, 0, &tokens);
        assert_eq!(pooled.embeddings_seq(0).unwrap().len(), m.n_embd_out() as usize);
        not_supported(pooled.logits(-1));
        let cvec = ControlVector::new(&m, vec![0.1; (m.n_embd() * (m.n_layer() - 1)) as usize]).unwrap();
        not_supported(pooled.set_control_vector(&cvec, 1..=m.n_layer() - 1));
        let mut small = Context::new(&m, params().with_n_ubatch(4).with_embeddings(Pooling::Mean)).unwrap();
        let mut batch = Batch::new(16, 1).unwrap();
        batch.add_sequence(&[Token(5); 10], 0, 0, true).unwrap();
        invalid(small.decode(&mut batch), "batch");
        let mut sampler = Sampler::greedy(&m).unwrap();
        not_supported(pooled.generate("hello", &mut sampler, GenerateOptions::default()).map(|_| ()));
        // T5 (encoder-decoder).
        let t5 = load(common::tiny_t5());
        assert!(t5.has_encoder());
        let mut context = Context::new(&t5, params().with_n_ubatch(8)).unwrap();
        let mut one = Batch::new(1, 1).unwrap();
        one.add(Token(0), 0, &[0], true).unwrap();
        not_supported(context.decode(&mut one));
        let mut long = Batch::new(16, 1).unwrap();
        long.add_sequence(&[Token(10); 12], 0, 0, false).unwrap();
        invalid(context.encode(&mut long), "batch");
        let mut short = Batch::new(4, 1).unwrap();
        short.add_sequence(&[Token(10), Token(11), Token(12)], 0, 0, false).unwrap();
        context.encode(&mut short).unwrap();
        context.decode(&mut one).unwrap();
        assert!(context.logits(-1).unwrap().iter().all(|v| v.is_finite()));
        not_supported(context.state_to_bytes(&[]));
        let mut sampler = Sampler::greedy(&t5).unwrap();
        assert!(context.generate("hello", &mut sampler, GenerateOptions::default().with_max_tokens(3)).unwrap().count() >= 1);
        // A reranker the fork cannot load is the model's typed error.
        match Model::load(fork(), common::tiny_reranker(), ModelParams::new()) {
            Ok(r) => not_supported(Context::new(&r, params().with_embeddings(Pooling::Rank))),
            Err(e @ Error::ModelLoad { .. }) => println!("{e}"),
            Err(e) => panic!("{e:?}"),
        }
    }

    fn model_dropped_before_context_and_sampler() {
        let m = bitnet();
        let mut context = ctx(&m);
        let mut sampler = Sampler::builder(&m).penalties(16, 1.1, 0.0, 0.0).dist(3).build().unwrap();
        let clone = sampler.try_clone().unwrap();
        let expected = greedy(&mut ctx(&m), PROMPT, 6);
        drop(m);
        assert_eq!(greedy(&mut context, PROMPT, 6), expected);
        let n = context
            .generate(PROMPT, &mut sampler, GenerateOptions::default().with_max_tokens(4))
            .unwrap()
            .count();
        assert!(n >= 1);
        drop(context);
        drop(sampler);
        drop(clone);
    }
}
