//! Parallel sequences: each greedy stream of a batched run equals that prompt run alone.

mod common;

use std::sync::OnceLock;

use gguf_loader::engine::parallel::{EngineHandle, Event, ParallelEngine, Request};
use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{
    Context, ContextParams, Error, GenerateOptions, Model, ModelParams, Prompt, Sampler, StopReason,
};

fn library() -> &'static LlamaLibrary {
    static LIBRARY: OnceLock<LlamaLibrary> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
        LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant")
    })
}

const PROMPTS: [&str; 4] = [
    "The capital of France is",
    "Once upon a time, in a small village,",
    "The three primary colors are",
    "def fibonacci(n):",
];

fn params(n_seq_max: u32) -> ContextParams {
    ContextParams {
        kv_unified: Some(true),
        ..ContextParams::default()
            .with_n_ctx(1024)
            .with_n_batch(64)
            .with_n_seq_max(n_seq_max)
            .with_threads(1)
    }
}

fn alone(model: &Model, prompt: &str, n: usize) -> Vec<i32> {
    let mut context = Context::new(model, params(1)).unwrap();
    let mut sampler = Sampler::greedy(model).unwrap();
    context
        .generate(
            prompt,
            &mut sampler,
            GenerateOptions::default().with_max_tokens(n),
        )
        .unwrap()
        .filter_map(|p| p.unwrap().token)
        .map(|t| t.id())
        .collect()
}

fn request(model: &Model, prompt: &str, n: usize) -> Request {
    Request {
        prompt: Prompt::from(prompt),
        sampler: Sampler::greedy(model).unwrap(),
        options: GenerateOptions::default().with_max_tokens(n),
    }
}

#[test]
fn parallel_greedy_streams_equal_each_prompt_alone() {
    let model = Model::load(library(), common::smollm2(), ModelParams::new()).unwrap();
    let n = 16;
    // Three sequences for four prompts: the fourth joins when one ends.
    let mut engine = ParallelEngine::new(Context::new(&model, params(3)).unwrap()).unwrap();
    let ids: Vec<_> = PROMPTS
        .iter()
        .map(|p| engine.submit(request(&model, p, n)).unwrap())
        .collect();
    let events = engine.run_to_completion().unwrap();
    for (prompt, id) in PROMPTS.iter().zip(&ids) {
        let tokens = common::streamed_ids(&events, id);
        let finished = events.iter().any(|e| {
            matches!(e, Event::Finished { request, summary } if request == id
                && matches!(summary.stop_reason, StopReason::MaxTokens | StopReason::EndOfGeneration(_)))
        });
        assert!(finished, "{prompt}");
        assert_eq!(tokens, alone(&model, prompt, n), "{prompt}");
    }
}

#[test]
fn requests_from_other_threads_stream_and_cancel() {
    let model = Model::load(library(), common::tiny_llama(), ModelParams::new()).unwrap();
    let engine = ParallelEngine::new(Context::new(&model, params(2)).unwrap()).unwrap();
    let handle = EngineHandle::spawn(engine);
    std::thread::scope(|scope| {
        for prompt in ["hello world", "the cat", "a dog"] {
            let handle = &handle;
            let model = &model;
            scope.spawn(move || {
                let (_, events) = handle.submit(request(model, prompt, 8)).unwrap();
                let last = events.iter().last().unwrap();
                assert!(matches!(last, Event::Finished { .. }), "{last:?}");
            });
        }
    });
    // A long request cancelled from here ends with Cancelled.
    let (id, events) = handle.submit(request(&model, "hello", 10_000)).unwrap();
    handle.cancel(id);
    let last = events.iter().last().unwrap();
    assert!(
        matches!(&last, Event::Finished { summary, .. } if summary.stop_reason == StopReason::Cancelled),
        "{last:?}"
    );
}

#[test]
fn bad_requests_are_typed_errors() {
    let model = Model::load(library(), common::tiny_llama(), ModelParams::new()).unwrap();
    let other = Model::load(library(), common::tiny_llama(), ModelParams::new()).unwrap();
    let mut engine = ParallelEngine::new(Context::new(&model, params(2)).unwrap()).unwrap();
    assert!(matches!(
        engine.submit(Request {
            prompt: Prompt::from("hi"),
            sampler: Sampler::greedy(&other).unwrap(),
            options: GenerateOptions::default(),
        }),
        Err(Error::ModelMismatch { .. })
    ));
    assert!(matches!(
        engine.submit(Request {
            prompt: Prompt::Tokens(vec![]),
            sampler: Sampler::greedy(&model).unwrap(),
            options: GenerateOptions::default(),
        }),
        Err(Error::InvalidArgument { .. })
    ));
    let too_long = Prompt::Tokens(vec![gguf_loader::Token(20); 5000]);
    assert!(matches!(
        engine.submit(Request {
            prompt: too_long,
            sampler: Sampler::greedy(&model).unwrap(),
            options: GenerateOptions::default(),
        }),
        Err(Error::ContextOverflow { .. })
    ));
    let bert = Model::load(library(), common::tiny_bert(), ModelParams::new()).unwrap();
    assert!(matches!(
        ParallelEngine::new(Context::new(&bert, params(2)).unwrap()),
        Err(Error::NotSupported { .. })
    ));
}

#[test]
fn batch_example_prints_one_line_per_prompt() {
    let model = Model::load(library(), common::smollm2(), ModelParams::new()).unwrap();
    let smollm2 = common::smollm2();
    let mut args = vec![
        "--model",
        smollm2.to_str().unwrap(),
        "--greedy",
        "--token-ids",
        "-n",
        "8",
        "--threads",
        "1",
    ];
    args.extend(PROMPTS);
    let out = std::process::Command::new(common::example("batch"))
        .args(&args)
        .env("GGUF_LOADER_VARIANTS_DIR", common::cpu_dir())
        .env_remove("GGUF_LOADER_SMOKE_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim_end().ends_with("tok/s aggregate"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), PROMPTS.len(), "{stdout}");
    for (i, (line, prompt)) in lines.iter().zip(PROMPTS).enumerate() {
        let (index, ids) = line.split_once(':').unwrap();
        assert_eq!(index, i.to_string());
        let ids: Vec<i32> = ids.split_whitespace().map(|t| t.parse().unwrap()).collect();
        assert_eq!(ids, alone(&model, prompt, 8), "{prompt}");
    }
}

#[test]
fn sequences_sharing_a_small_cache_end_with_context_full() {
    let model = Model::load(library(), common::tiny_llama(), ModelParams::new()).unwrap();
    let eos = model.token_eos().unwrap();
    let shared = ContextParams {
        kv_unified: Some(true),
        ..ContextParams::default()
            .with_n_ctx(256)
            .with_n_batch(64)
            .with_n_seq_max(3)
            .with_threads(1)
    };
    let mut engine = ParallelEngine::new(Context::new(&model, shared).unwrap()).unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let sampler = Sampler::builder(&model)
            .logit_bias(&[(eos, f32::NEG_INFINITY)])
            .dist(i)
            .build()
            .unwrap();
        ids.push(
            engine
                .submit(Request {
                    prompt: Prompt::from("hello world"),
                    sampler,
                    options: GenerateOptions::default().with_max_tokens(200),
                })
                .unwrap(),
        );
    }
    let events = engine.run_to_completion().unwrap();
    let mut full = 0;
    for id in ids {
        let summary = events
            .iter()
            .find_map(|e| match e {
                Event::Finished { request, summary } if *request == id => Some(summary),
                _ => None,
            })
            .unwrap_or_else(|| panic!("request {id} did not finish: {events:?}"));
        full += usize::from(summary.stop_reason == StopReason::ContextFull);
    }
    assert!(
        full >= 1,
        "three 200-token streams cannot all fit 256 shared cells"
    );
}
