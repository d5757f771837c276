//! Generation on real models with the real cpu variant: token-exact with the C API, seeded
//! reproducibility, long prompts, split UTF-8, stop strings, cancellation, context exhaustion.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{
    Context, ContextParams, Error, GenerateOptions, Model, ModelParams, Piece, Sampler, StopReason,
    Token,
};

// One thread per context: the test harness runs two tests at once on the two cores, and
// ggml threads spin while waiting, so more would oversubscribe the machine.
const THREADS: i32 = 1;

fn library() -> LlamaLibrary {
    let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
    LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant")
}

fn model(path: &Path) -> Model {
    Model::load(&library(), path, ModelParams::new()).expect("load model")
}

fn smollm2() -> Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| model(&common::smollm2())).clone()
}

fn context(model: &Model, n_ctx: u32, n_batch: u32) -> Context {
    Context::new(
        model,
        ContextParams::default()
            .with_n_ctx(n_ctx)
            .with_n_batch(n_batch)
            .with_threads(THREADS),
    )
    .expect("context")
}

fn c_ids(model: &Path, n: usize, n_ctx: u32, n_batch: u32, prompt: &str) -> Vec<i32> {
    common::c_greedy_ids(
        &common::cpu_dir(),
        model,
        n,
        THREADS,
        n_ctx,
        n_batch,
        prompt,
    )
}

fn rust_ids(model: &Model, n: usize, n_ctx: u32, n_batch: u32, prompt: &str) -> Vec<i32> {
    let mut ctx = context(model, n_ctx, n_batch);
    let mut sampler = Sampler::greedy(model).unwrap();
    let pieces: Vec<Piece> = ctx
        .generate(
            prompt,
            &mut sampler,
            GenerateOptions::default().with_max_tokens(n),
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    pieces
        .iter()
        .filter_map(|p| p.token)
        .map(|t| t.id())
        .collect()
}

/// Greedy sampling that can never end the generation (EOS/EOT banned).
fn greedy_without_end(model: &Model) -> Sampler {
    let ends: Vec<(Token, f32)> = [model.token_eos(), model.token_eot()]
        .into_iter()
        .flatten()
        .map(|t| (t, f32::NEG_INFINITY))
        .collect();
    Sampler::builder(model)
        .logit_bias(&ends)
        .greedy()
        .build()
        .unwrap()
}

const PROMPT: &str = "The capital of France is Paris. The capital of Germany is";

#[test]
fn smollm2_greedy_is_token_exact_with_c() {
    let rust = rust_ids(&smollm2(), 32, 512, 512, PROMPT);
    let c = c_ids(&common::smollm2(), 32, 512, 512, PROMPT);
    assert!(!rust.is_empty());
    assert_eq!(rust, c, "Rust and C greedy ids differ");
}

#[test]
fn gemma3_greedy_is_token_exact_with_c() {
    let gemma = model(&common::gemma3());
    let rust = rust_ids(&gemma, 32, 512, 512, PROMPT);
    let c = c_ids(&common::gemma3(), 32, 512, 512, PROMPT);
    assert!(!rust.is_empty());
    assert_eq!(rust, c, "Rust and C greedy ids differ");
}

#[test]
fn prompt_longer_than_n_batch_is_fed_in_chunks() {
    let prompt =
        "Once upon a time, in a small village by the sea, there lived an old fisherman. ".repeat(6);
    let model = smollm2();
    let n_prompt = model.tokenize(&prompt, true, true).unwrap().len();
    assert!(n_prompt > 3 * 16, "prompt has {n_prompt} tokens");
    let rust = rust_ids(&model, 16, 1024, 16, &prompt);
    let c = c_ids(&common::smollm2(), 16, 1024, 16, &prompt);
    assert_eq!(rust, c);
}

#[test]
fn seeded_sampling_is_reproducible() {
    let model = smollm2();
    let run = |seed: u32| {
        let mut ctx = context(&model, 512, 512);
        let mut sampler = Sampler::builder(&model)
            .top_k(40)
            .top_p(0.95, 1)
            .temp(0.9)
            .dist(seed)
            .build()
            .unwrap();
        ctx.generate(
            "Tell me a story:",
            &mut sampler,
            GenerateOptions::default().with_max_tokens(24),
        )
        .unwrap()
        .filter_map(|p| p.unwrap().token)
        .collect::<Vec<Token>>()
    };
    let first = run(1234);
    assert_eq!(first, run(1234), "same seed, same tokens");
    assert_eq!(first.len(), 24);
}

/// A grammar forces the model to spell out exactly `text`, so its tokens are whatever pieces the
/// tokenizer uses (byte-level pieces for emoji and CJK).
fn forced(model: &Model, text: &str, options: GenerateOptions) -> (Vec<Piece>, StopReason) {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    let grammar = format!("root ::= \"{escaped}\"");
    let mut ctx = context(model, 512, 512);
    let mut sampler = Sampler::builder(model)
        .grammar(&grammar, "root")
        .greedy()
        .build()
        .unwrap();
    let mut generation = ctx
        .generate("Say something:", &mut sampler, options)
        .unwrap();
    let pieces: Vec<Piece> = generation.by_ref().collect::<Result<_, _>>().unwrap();
    let reason = generation.summary().unwrap().stop_reason.clone();
    (pieces, reason)
}

#[test]
fn multibyte_characters_split_across_tokens_are_joined() {
    let model = smollm2();
    let text = "😀 漢字 🎉";
    let (pieces, reason) = forced(&model, text, GenerateOptions::default().with_max_tokens(64));
    let joined: String = pieces.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(joined, text, "stop reason {reason:?}");
    // At least one token was a partial character: its own bytes are not UTF-8.
    let split = pieces
        .iter()
        .filter_map(|p| p.token)
        .any(|t| std::str::from_utf8(&model.token_to_bytes(t, false).unwrap()).is_err());
    assert!(
        split,
        "no token was a partial UTF-8 character; the test proves nothing"
    );
    assert!(
        pieces
            .iter()
            .any(|p| p.token.is_some() && p.text.is_empty()),
        "some piece held bytes back"
    );
}

#[test]
fn stop_string_spanning_tokens_is_not_emitted() {
    let model = smollm2();
    let text = "Hello world, this is the end of it";
    let (pieces, reason) = forced(
        &model,
        text,
        GenerateOptions::default()
            .with_max_tokens(64)
            .with_stop("o wor"),
    );
    let joined: String = pieces.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(reason, StopReason::StopString("o wor".into()));
    assert_eq!(joined, "Hell");
    let tokens = model.tokenize("Hello world", false, false).unwrap();
    assert!(tokens.len() >= 2, "the stop string spans a token boundary");
}

#[test]
fn cancellation_from_another_thread_stops_generation() {
    let model = smollm2();
    let mut ctx = context(&model, 2048, 512);
    let mut sampler = greedy_without_end(&model);
    let handle = ctx.cancel_handle();
    let mut generation = ctx
        .generate(
            "Count:",
            &mut sampler,
            GenerateOptions::default().with_max_tokens(1500),
        )
        .unwrap();
    let mut count = 0;
    for piece in generation.by_ref() {
        piece.unwrap();
        count += 1;
        if count == 3 {
            let handle = handle.clone();
            std::thread::spawn(move || handle.cancel()).join().unwrap();
        }
    }
    let summary = generation.summary().unwrap();
    assert_eq!(summary.stop_reason, StopReason::Cancelled);
    assert!(summary.generated_tokens < 10, "{summary:?}");
}

#[test]
fn context_exhaustion_ends_with_a_typed_reason() {
    let model = smollm2();
    let mut ctx = context(&model, 48, 48);
    let mut sampler = greedy_without_end(&model);
    let prompt_tokens = model.tokenize("Count from one:", true, true).unwrap().len();
    // llama.cpp rounds the context up (to 256 here).
    let n_ctx = ctx.n_ctx() as usize;
    let mut generation = ctx
        .generate(
            "Count from one:",
            &mut sampler,
            GenerateOptions::default().with_max_tokens(1000),
        )
        .unwrap();
    for piece in generation.by_ref() {
        piece.unwrap();
    }
    let summary = generation.summary().unwrap();
    assert_eq!(summary.stop_reason, StopReason::ContextFull, "{summary:?}");
    assert_eq!(
        summary.generated_tokens + prompt_tokens,
        n_ctx + 1,
        "the last token is emitted, not decoded"
    );
}

#[test]
fn prompt_longer_than_the_context_is_a_typed_error() {
    let model = smollm2();
    let mut ctx = context(&model, 32, 32);
    let n_ctx = ctx.n_ctx();
    let mut sampler = Sampler::greedy(&model).unwrap();
    let prompt = "word ".repeat(2 * n_ctx as usize);
    match ctx.generate(prompt.as_str(), &mut sampler, GenerateOptions::default()) {
        Err(Error::ContextOverflow {
            n_ctx: reported, ..
        }) => assert_eq!(reported, n_ctx),
        other => panic!("expected ContextOverflow, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn callback_form_streams_and_can_stop() {
    let model = smollm2();
    let mut ctx = context(&model, 512, 512);
    let mut sampler = Sampler::greedy(&model).unwrap();
    let mut seen = 0;
    let summary = ctx
        .generate_with(
            PROMPT,
            &mut sampler,
            GenerateOptions::default().with_max_tokens(20),
            |_| {
                seen += 1;
                if seen == 5 {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            },
        )
        .unwrap();
    assert_eq!(seen, 5);
    assert_eq!(summary.stop_reason, StopReason::Cancelled);
}

#[test]
fn model_metadata_and_tokens() {
    let model = smollm2();
    assert!(
        model.description().contains("llama"),
        "{}",
        model.description()
    );
    assert_eq!(model.n_vocab(), 49152);
    assert!(model.n_layer() > 0 && model.n_embd() > 0 && model.n_head() > 0);
    assert!(model.n_ctx_train() >= 2048);
    assert!(model.size() > 0 && model.n_params() > 100_000_000);
    assert_eq!(
        model.meta("general.architecture").unwrap().as_deref(),
        Some("llama")
    );
    assert!(model
        .metadata()
        .iter()
        .any(|(k, _)| k == "general.architecture"));
    assert!(model
        .chat_template(None)
        .unwrap()
        .is_some_and(|t| t.contains("im_start")));
    assert!(model.token_eos().is_some());
    let tokens = model.tokenize("Hello world", false, false).unwrap();
    assert_eq!(
        model.detokenize(&tokens, false, false).unwrap(),
        "Hello world"
    );
    assert!(matches!(
        model.token_to_bytes(Token(-1), false),
        Err(Error::TokenOutOfRange { .. })
    ));
    assert!(matches!(
        model.token_to_bytes(Token(49152), false),
        Err(Error::TokenOutOfRange { .. })
    ));
    let with_special = model.tokenize("<|im_start|>user", true, true).unwrap();
    let without = model.tokenize("<|im_start|>user", true, false).unwrap();
    assert!(
        with_special.len() < without.len(),
        "parse_special makes <|im_start|> one token"
    );
}

#[test]
fn progress_callback_can_cancel_and_panics_are_caught() {
    let lib = library();
    let cancelled = Model::load(
        &lib,
        common::smollm2(),
        ModelParams::new().with_progress(|p| p < 0.5),
    );
    assert!(
        matches!(cancelled, Err(Error::ModelLoadCancelled { .. })),
        "{cancelled:?}"
    );
    let panicked = Model::load(
        &lib,
        common::smollm2(),
        ModelParams::new().with_progress(|_| panic!("boom")),
    );
    assert!(
        matches!(
            panicked,
            Err(Error::CallbackPanicked {
                callback: "progress"
            })
        ),
        "{panicked:?}"
    );
}
