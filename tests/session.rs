//! Sessions: prefix reuse across turns, the policies for a full sequence.

mod common;

use std::sync::OnceLock;

use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{
    Context, ContextParams, Error, GenerateOptions, Model, ModelParams, Sampler, Session,
    StopReason, Token, WhenFull,
};

fn library() -> &'static LlamaLibrary {
    static LIBRARY: OnceLock<LlamaLibrary> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
        LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant")
    })
}

fn params(n_ctx: u32) -> ContextParams {
    ContextParams::default()
        .with_n_ctx(n_ctx)
        .with_n_batch(256)
        .with_threads(1)
}

fn greedy_ids(generation: gguf_loader::Generation<'_>) -> (Vec<i32>, gguf_loader::Summary) {
    let mut generation = generation;
    let ids = generation
        .by_ref()
        .filter_map(|p| p.unwrap().token)
        .map(|t| t.id())
        .collect();
    (ids, generation.summary().unwrap().clone())
}

#[test]
fn later_turns_decode_only_their_new_tokens() {
    let model = Model::load(library(), common::smollm2(), ModelParams::new()).unwrap();
    let mut session = Session::new(Context::new(&model, params(1024)).unwrap());
    let mut sampler = Sampler::greedy(&model).unwrap();
    let options = GenerateOptions::default().with_max_tokens(12);
    let turn1 = "<|im_start|>user\nName three colors.<|im_end|>\n<|im_start|>assistant\n";
    let (ids1, s1) = greedy_ids(
        session
            .generate(turn1, &mut sampler, options.clone())
            .unwrap(),
    );
    assert_eq!(s1.reused_tokens, 0);
    let reply = model
        .detokenize(
            &ids1.iter().map(|i| Token(*i)).collect::<Vec<_>>(),
            false,
            false,
        )
        .unwrap();
    let conversation = format!(
        "{turn1}{reply}<|im_end|>\n<|im_start|>user\nAnd three animals?<|im_end|>\n<|im_start|>assistant\n"
    );
    let total = model.tokenize(&conversation, true, true).unwrap().len();
    let (ids2, s2) = greedy_ids(
        session
            .generate(conversation.as_str(), &mut sampler, options.clone())
            .unwrap(),
    );
    println!(
        "turn 2: decoded {} reused {} of {total}",
        s2.prompt_tokens, s2.reused_tokens
    );
    assert!(s2.reused_tokens >= model.tokenize(turn1, true, true).unwrap().len() - 1);
    assert_eq!(s2.prompt_tokens + s2.reused_tokens, total);
    // The same conversation from scratch gives the same greedy reply.
    let mut fresh = Context::new(&model, params(1024)).unwrap();
    let (ids_fresh, _) = greedy_ids(
        fresh
            .generate(conversation.as_str(), &mut sampler, options.clone())
            .unwrap(),
    );
    assert_eq!(ids2, ids_fresh);
    // The same turn again reuses everything but the last prompt token.
    let (_, s3) = greedy_ids(
        session
            .generate(conversation.as_str(), &mut sampler, options)
            .unwrap(),
    );
    assert_eq!((s3.prompt_tokens, s3.reused_tokens), (1, total - 1));
}

/// Greedy sampling that never ends the generation (EOS banned).
fn endless(model: &Model) -> Sampler {
    let eos = model.token_eos().unwrap();
    Sampler::builder(model)
        .logit_bias(&[(eos, f32::NEG_INFINITY)])
        .top_k(20)
        .dist(7)
        .build()
        .unwrap()
}

#[test]
fn a_full_sequence_stops_or_shifts() {
    let model = Model::load(library(), common::tiny_llama(), ModelParams::new()).unwrap();
    let mut session = Session::new(Context::new(&model, params(256)).unwrap());
    let n_ctx = session.context().n_ctx_seq() as usize;
    let mut sampler = endless(&model);
    let options = GenerateOptions::default().with_max_tokens(3 * n_ctx);
    let (_, stopped) = greedy_ids(
        session
            .generate("hello world", &mut sampler, options.clone())
            .unwrap(),
    );
    assert_eq!(stopped.stop_reason, StopReason::ContextFull);

    let mut session = Session::new(Context::new(&model, params(256)).unwrap())
        .when_full(WhenFull::Shift { keep: 4 });
    let (ids, shifted) = greedy_ids(
        session
            .generate("hello world", &mut sampler, options)
            .unwrap(),
    );
    assert_eq!(shifted.stop_reason, StopReason::MaxTokens, "{shifted:?}");
    assert_eq!(ids.len(), 3 * n_ctx);
    assert!(session.tokens().len() <= n_ctx);
    // The kept prefix is still the prompt's start.
    let prompt = model.tokenize("hello world", true, true).unwrap();
    assert_eq!(&session.tokens()[..4], &prompt[..4]);
}

#[test]
fn sessions_refuse_what_generate_refuses() {
    let model = Model::load(library(), common::tiny_llama(), ModelParams::new()).unwrap();
    let other = Model::load(library(), common::tiny_llama(), ModelParams::new()).unwrap();
    let mut session = Session::new(Context::new(&model, params(256)).unwrap());
    let mut foreign = Sampler::greedy(&other).unwrap();
    assert!(matches!(
        session.generate("hi", &mut foreign, GenerateOptions::default()),
        Err(Error::ModelMismatch { .. })
    ));
    let mut sampler = Sampler::greedy(&model).unwrap();
    let long: Vec<Token> = vec![Token(20); 300];
    assert!(matches!(
        session.generate(long, &mut sampler, GenerateOptions::default()),
        Err(Error::ContextOverflow { .. })
    ));
}
