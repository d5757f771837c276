//! `engine::embed::Embedder` on the real libraries and models: embeddings and rerank scores
//! against a C program that embeds each text alone (tests/c/embed.c), typed errors for bad
//! input, packing of many texts into several decodes, and the `embed` / `rerank` examples.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use gguf_loader::engine::embed::{l2_normalize, Embedder};
use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{ContextParams, Error, Model, ModelParams, Pooling};

fn library() -> &'static LlamaLibrary {
    static LIBRARY: OnceLock<LlamaLibrary> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
        LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant")
    })
}

fn load(path: &Path) -> Model {
    Model::load(library(), path, ModelParams::new()).unwrap()
}

/// One thread; `n_ctx` = `n_batch` = `n_ubatch`; `n_seq` sequences per decode.
fn params(n_ctx: u32, n_seq: u32) -> ContextParams {
    ContextParams::default()
        .with_n_ctx(n_ctx)
        .with_n_batch(n_ctx)
        .with_n_ubatch(n_ctx)
        .with_n_seq_max(n_seq)
        .with_threads(1)
}

/// tests/c/embed.c, compiled once against the pinned headers and the cpu variant.
fn c_embed_bin() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap();
    if let Some(bin) = built.as_ref() {
        return bin.clone();
    }
    let variant_dir = common::cpu_dir();
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-embed");
    std::fs::create_dir_all(&out_dir).unwrap();
    let bin = out_dir.join(format!("embed-{}", std::process::id()));
    let src = std::fs::read_to_string(common::repo_root().join("tests/c/embed.c")).unwrap();
    let source = common::source_dir();
    common::compile_c(
        &src,
        &bin,
        &[
            &format!("-I{}", source.join("include").display()),
            &format!("-I{}", source.join("ggml/include").display()),
            &format!("-L{}", variant_dir.display()),
            &format!("-Wl,-rpath,{}", variant_dir.display()),
            "-lllama",
            "-lggml",
            "-lggml-base",
        ],
    );
    *built = Some(bin.clone());
    bin
}

/// The C reference: `mode` is a pooling name or `rerank` (then `texts[0]` is the query). One
/// vector per text (rerank: one score each).
fn c_embed(model: &Path, mode: &str, n_ctx: u32, texts: &[&str]) -> Vec<Vec<f32>> {
    // The same kernels as the crate: extra buffer types exactly when the crate uses them.
    let extra = library().extra_buffer_types_are_safe();
    let output = Command::new(c_embed_bin())
        .env("GREEDY_EXTRA_BUFTS", if extra { "1" } else { "0" })
        .arg(common::cpu_dir())
        .arg(model)
        .args([mode, "1", &n_ctx.to_string()])
        .args(texts)
        .output()
        .expect("running the C reference");
    assert!(
        output.status.success(),
        "C reference failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
        .collect()
}

/// Largest absolute difference and smallest cosine over pairs of vectors; asserts 1e-4 and
/// cosine > 0.9999.
fn assert_close(what: &str, ours: &[Vec<f32>], reference: &[Vec<f32>]) {
    assert_within(what, ours, reference, 1e-4);
}

/// As [`assert_close`] with the largest absolute difference `tolerance`.
fn assert_within(what: &str, ours: &[Vec<f32>], reference: &[Vec<f32>], tolerance: f32) {
    assert_eq!(ours.len(), reference.len(), "{what}: number of vectors");
    let mut max_diff = 0f32;
    let mut min_cos = 1f64;
    for (a, b) in ours.iter().zip(reference) {
        assert_eq!(a.len(), b.len(), "{what}: dimension");
        for (x, y) in a.iter().zip(b) {
            assert!(x.is_finite(), "{what}: {x}");
            max_diff = max_diff.max((x - y).abs());
        }
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        if na > 0.0 && nb > 0.0 {
            min_cos = min_cos.min(dot / (na * nb));
        }
    }
    eprintln!("{what}: max abs diff {max_diff:e}, min cosine {min_cos:.9}");
    assert!(max_diff <= tolerance, "{what}: max abs diff {max_diff}");
    assert!(min_cos > 0.9999, "{what}: cosine {min_cos}");
}

fn normalized(vectors: &[Vec<f32>]) -> Vec<Vec<f32>> {
    vectors
        .iter()
        .map(|v| {
            let mut v = v.clone();
            l2_normalize(&mut v);
            v
        })
        .collect()
}

const TEXTS: &[&str] = &[
    "The quick brown fox jumps over the lazy dog.",
    "hello",
    "Embeddings map text to vectors; similar texts get similar vectors.",
    "a b c d e f g",
    "Paris is the capital of France, and Rome is the capital of Italy.",
];

/// Our embeddings (several texts per decode) against the C program (each text alone), raw and
/// normalised.
fn check_against_c(model_path: &Path, pooling: Pooling, mode: &str, n_ctx: u32, n_seq: u32) {
    check_against_c_within(model_path, pooling, mode, n_ctx, n_seq, 1e-4);
}

fn check_against_c_within(
    model_path: &Path,
    pooling: Pooling,
    mode: &str,
    n_ctx: u32,
    n_seq: u32,
    tolerance: f32,
) {
    let model = load(model_path);
    let reference = c_embed(model_path, mode, n_ctx, TEXTS);
    let mut embedder = Embedder::new(&model, pooling, false, params(n_ctx, n_seq)).unwrap();
    assert_eq!(embedder.pooling(), pooling);
    let ours = embedder.embed(TEXTS).unwrap();
    assert_eq!(ours[0].len(), embedder.dimension());
    let name = model_path.file_name().unwrap().to_string_lossy();
    assert_within(&format!("{name} {mode}"), &ours, &reference, tolerance);
    // A second call on the same embedder gives the same (the memory is cleared in between).
    let again = embedder.embed(&TEXTS[1..3]).unwrap();
    assert_within(
        &format!("{name} {mode} again"),
        &again,
        &reference[1..3],
        tolerance,
    );
    let mut normalizing = Embedder::new(&model, pooling, true, params(n_ctx, n_seq)).unwrap();
    let ours = normalizing.embed(TEXTS).unwrap();
    for v in &ours {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    assert_within(
        &format!("{name} {mode} normalized"),
        &ours,
        &normalized(&reference),
        tolerance,
    );
}

#[test]
fn smollm2_mean_matches_c() {
    check_against_c(&common::smollm2(), Pooling::Mean, "mean", 256, 4);
}

#[test]
fn smollm2_last_matches_c() {
    check_against_c(&common::smollm2(), Pooling::Last, "last", 256, 4);
}

#[test]
fn tiny_bert_mean_matches_c() {
    check_against_c(&common::tiny_bert(), Pooling::Mean, "mean", 128, 2);
}

/// CLS embeddings of several texts in one larger batch differ from the single-text path by
/// up to about 2e-4 (values up to 2.7, cosine 0.999999997): ggml computes larger batches with
/// other matrix kernels. Two texts per decode stay below 1e-7.
#[test]
fn tiny_bert_cls_matches_c() {
    check_against_c(&common::tiny_bert(), Pooling::Cls, "cls", 128, 2);
    check_against_c_within(&common::tiny_bert(), Pooling::Cls, "cls", 128, 4, 1e-3);
}

#[test]
fn gemma3_mean_matches_c() {
    check_against_c(&common::gemma3(), Pooling::Mean, "mean", 128, 4);
}

const QUERY: &str = "what is the capital of france";
const DOCS: &[&str] = &[
    "paris is the capital of france",
    "the weather is nice today",
    "france has many cities",
    "capital",
];

#[test]
fn tiny_reranker_scores_match_c() {
    let path = common::tiny_reranker();
    let model = load(&path);
    let mut c_args = vec![QUERY];
    c_args.extend_from_slice(DOCS);
    let reference = c_embed(&path, "rerank", 128, &c_args);
    let mut embedder = Embedder::new(&model, Pooling::Rank, false, params(128, 2)).unwrap();
    let scores = embedder.rerank(QUERY, DOCS).unwrap();
    let ours: Vec<Vec<f32>> = scores.iter().map(|s| vec![*s]).collect();
    assert_close("tiny-reranker scores", &ours, &reference);
    // All four pairs in one decode: ggml computes the larger batch with other kernels, and the
    // scores (about 2.7) move by up to about 1e-3.
    let mut four = Embedder::new(&model, Pooling::Rank, false, params(128, 4)).unwrap();
    let together: Vec<Vec<f32>> = four
        .rerank(QUERY, DOCS)
        .unwrap()
        .into_iter()
        .map(|s| vec![s])
        .collect();
    assert_within(
        "tiny-reranker scores, 4 per decode",
        &together,
        &reference,
        2e-3,
    );
    // The model's default pooling is rank: Unspecified gives a reranker as well.
    let mut default = Embedder::new(&model, Pooling::Unspecified, false, params(128, 2)).unwrap();
    assert_eq!(default.pooling(), Pooling::Rank);
    let again = default.rerank(QUERY, DOCS).unwrap();
    let again: Vec<Vec<f32>> = again.iter().map(|s| vec![*s]).collect();
    assert_close("tiny-reranker scores, 2 per decode", &again, &reference);
    assert_eq!(embedder.rerank(QUERY, &[]).unwrap(), Vec::<f32>::new());
    // The pair is [CLS] query [SEP] document [SEP].
    let cls = model.token_bos().unwrap();
    let sep = model.token_sep().unwrap();
    let q = model.tokenize(QUERY, false, false).unwrap();
    let d = model.tokenize(DOCS[0], false, false).unwrap();
    let mut pair = vec![cls];
    pair.extend(&q);
    pair.push(sep);
    pair.extend(&d);
    pair.push(sep);
    assert_eq!(
        model.tokenize(QUERY, true, false).unwrap(),
        [vec![cls], q.clone(), vec![sep]].concat()
    );
    let mut one = Embedder::new(&model, Pooling::Rank, false, params(128, 1)).unwrap();
    let single = one.rerank(QUERY, &DOCS[..1]).unwrap();
    assert!((single[0] - scores[0]).abs() < 1e-5);
}

fn assert_names_index(error: Error, parameter: &str, needle: &str) {
    match &error {
        Error::InvalidArgument {
            parameter: p,
            reason,
        } => {
            assert_eq!(*p, parameter, "{error}");
            assert!(reason.starts_with(needle), "{error}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let model = load(&common::tiny_bert());
    let mut embedder = Embedder::new(&model, Pooling::Mean, false, params(32, 4)).unwrap();
    // No texts: nothing to do.
    assert!(embedder.embed(&[]).unwrap().is_empty());
    // An empty text, by index.
    let error = embedder.embed(&["fine", "", "also fine"]).unwrap_err();
    assert_names_index(error, "texts", "text 1 is empty");
    // A text longer than n_ubatch for pooled embeddings, by index.
    let long = "word ".repeat(100);
    let error = embedder.embed(&["short", "short", &long]).unwrap_err();
    assert_names_index(error, "texts", "text 2 has");
    // The embedder still works afterwards.
    assert_eq!(embedder.embed(&["short"]).unwrap().len(), 1);
    // Rank pooling on a model without a classifier.
    let error = Embedder::new(&model, Pooling::Rank, false, params(32, 1)).unwrap_err();
    assert!(matches!(error, Error::NotSupported { .. }), "{error:?}");
    // Reranking with an embedder that is not a reranker.
    let error = embedder.rerank("query", &["doc"]).unwrap_err();
    assert!(
        matches!(
            error,
            Error::NotSupported {
                operation: "rerank",
                ..
            }
        ),
        "{error:?}"
    );
    // Pooled embeddings from a context without pooling, and the other way round.
    let mut none = Embedder::new(&model, Pooling::None, false, params(32, 2)).unwrap();
    assert!(matches!(
        none.embed(&["x"]).unwrap_err(),
        Error::NotSupported { .. }
    ));
    assert!(matches!(
        embedder.embed_tokens(&["x"]).unwrap_err(),
        Error::NotSupported { .. }
    ));
    // Reranker: an empty document by index, an empty query, a pair too long.
    let reranker_model = load(&common::tiny_reranker());
    let mut reranker = Embedder::new(&reranker_model, Pooling::Rank, false, params(32, 2)).unwrap();
    let error = reranker.rerank("query", &["doc", "doc", ""]).unwrap_err();
    assert_names_index(error, "documents", "document 2 is empty");
    let error = reranker.rerank("", &["doc"]).unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidArgument {
                parameter: "query",
                ..
            }
        ),
        "{error:?}"
    );
    let error = reranker.rerank("query", &[&long]).unwrap_err();
    assert_names_index(error, "documents", "document 0 has");
}

/// llama.cpp aborts creating a mean-pooling context whose n_ubatch is not a multiple of
/// n_seq_max: a given n_seq_max is checked, a default one is chosen to divide n_ubatch.
#[test]
fn sequences_divide_the_physical_batch() {
    let model = load(&common::tiny_bert());
    let error = Embedder::new(&model, Pooling::Mean, false, params(128, 3)).unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidArgument {
                parameter: "n_seq_max",
                ..
            }
        ),
        "{error:?}"
    );
    let params = ContextParams::default()
        .with_n_ctx(255)
        .with_n_batch(255)
        .with_n_ubatch(255)
        .with_threads(1);
    let mut embedder = Embedder::new(&model, Pooling::Mean, false, params).unwrap();
    assert_eq!(embedder.context().n_seq_max(), 5);
    assert_eq!(embedder.embed(TEXTS).unwrap().len(), TEXTS.len());
}

#[test]
fn many_texts_take_several_decodes() {
    let model = load(&common::tiny_bert());
    let texts: Vec<String> = (0..50)
        .map(|i| format!("text number {i} {}", "more ".repeat(i % 7)))
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    // 4 sequences and 64 tokens per decode: at least 13 decodes.
    let mut embedder = Embedder::new(&model, Pooling::Mean, true, params(64, 4)).unwrap();
    let all = embedder.embed(&texts).unwrap();
    assert_eq!(all.len(), 50);
    // Each equals the text embedded alone.
    let mut alone = Embedder::new(&model, Pooling::Mean, true, params(64, 1)).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let single = alone.embed(&[text]).unwrap();
        assert_close(&format!("text {i}"), &all[i..=i], &single);
    }
    // Different texts differ.
    assert_ne!(all[0], all[1]);
}

#[test]
fn per_token_embeddings_without_pooling() {
    let model = load(&common::tiny_bert());
    let mut none = Embedder::new(&model, Pooling::None, false, params(64, 2)).unwrap();
    let texts = ["hello world", "a b c"];
    let tokens = none.embed_tokens(&texts).unwrap();
    assert_eq!(tokens.len(), 2);
    for (text, vectors) in texts.iter().zip(&tokens) {
        let n = model.tokenize(text, true, false).unwrap().len();
        assert_eq!(vectors.len(), n);
        assert!(vectors
            .iter()
            .all(|v| v.len() == model.n_embd_out() as usize));
    }
    // Their mean is the mean-pooled embedding.
    let mut mean = Embedder::new(&model, Pooling::Mean, false, params(64, 2)).unwrap();
    let pooled = mean.embed(&texts).unwrap();
    for (vectors, pooled) in tokens.iter().zip(&pooled) {
        let n = vectors.len() as f32;
        let average: Vec<f32> = (0..pooled.len())
            .map(|k| vectors.iter().map(|v| v[k]).sum::<f32>() / n)
            .collect();
        assert_close(
            "mean of per-token",
            &[average],
            std::slice::from_ref(pooled),
        );
    }
}

fn run_example(name: &str, args: &[&str]) -> Output {
    Command::new(common::example(name))
        .args(args)
        .env("GGUF_LOADER_VARIANTS_DIR", common::cpu_dir())
        .env_remove("GGUF_LOADER_SMOKE_DIR")
        .output()
        .expect("running the example")
}

#[test]
fn embed_example_prints_one_array_per_text() {
    let path = common::tiny_bert();
    let texts = ["first text", "second, longer text here", "third"];
    let mut args = vec![
        "--model",
        path.to_str().unwrap(),
        "--pooling",
        "mean",
        "--normalize",
        "--threads",
        "1",
    ];
    args.extend_from_slice(&texts);
    let out = run_example("embed", &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let printed: Vec<Vec<f32>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(printed.len(), texts.len());
    let model = load(&path);
    let mut embedder = Embedder::new(&model, Pooling::Mean, true, params(512, 8)).unwrap();
    let expected = embedder.embed(&texts).unwrap();
    assert_close("embed example", &printed, &expected);
}

#[test]
fn rerank_example_prints_one_score_per_document() {
    let path = common::tiny_reranker();
    let mut args = vec![
        "--model",
        path.to_str().unwrap(),
        "--query",
        QUERY,
        "--threads",
        "1",
    ];
    args.extend_from_slice(DOCS);
    let out = run_example("rerank", &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let printed: Vec<Vec<f32>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| vec![l.trim().parse().unwrap()])
        .collect();
    let model = load(&path);
    let mut embedder = Embedder::new(&model, Pooling::Rank, false, params(512, 8)).unwrap();
    let expected: Vec<Vec<f32>> = embedder
        .rerank(QUERY, DOCS)
        .unwrap()
        .into_iter()
        .map(|s| vec![s])
        .collect();
    assert_close("rerank example", &printed, &expected);
}

#[test]
fn examples_help_and_bad_arguments() {
    for name in ["embed", "rerank"] {
        let out = run_example(name, &["--help"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("usage: {name}")));
        let out = run_example(name, &["--bogus"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("error: unknown option --bogus"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A reranker example on a model that is not a reranker fails with a message.
    let bert = common::tiny_bert();
    let out = run_example(
        "rerank",
        &[
            "--model",
            bert.to_str().unwrap(),
            "--query",
            "q",
            "--threads",
            "1",
            "doc",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rank pooling"));
}
