//! The hyper-parameter pre-flight (`gguf::check_hyperparameters`): every value the pinned
//! llama.cpp crashes on (abort in `load_hparams`, assertion when the first graph is built or at
//! the first decode, vocabulary assertion) is a typed error in pure Rust, for file values and
//! metadata overrides alike; the real models pass; and through the safe API each crashing model
//! is refused by `Model::load`, which runs in a child process (the test binary re-executed for one
//! case), so that a crash fails one case instead of the whole run.

mod common;
mod gguf_build;

use std::path::Path;
use std::process::Command;

use gguf_build::{Builder, Value};
use gguf_loader::gguf::{
    check_hyperparameters, check_vocabulary, inspect, inspect_bytes, GgufError, GgufFile,
    MetadataValue,
};

/// A tiny llama model whose tensor shapes follow its hyper-parameters, so that llama.cpp loads
/// it and only the bad value under test can trip it (F32 weights, all zero).
struct Llama {
    n_embd: u64,
    n_head: u64,
    n_head_kv: u64,
    key_length: Option<u64>,
    value_length: Option<u64>,
    n_ff: u64,
    n_layer: u64,
    tokens: Vec<String>,
    /// Keys set after the defaults, replacing them.
    extra: Vec<(String, fn() -> Value)>,
}

fn tokens() -> Vec<String> {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    tokens.extend(["▁a", "▁b", "▁c"].map(String::from));
    tokens
}

impl Default for Llama {
    fn default() -> Self {
        Llama {
            n_embd: 64,
            n_head: 4,
            n_head_kv: 4,
            key_length: None,
            value_length: None,
            n_ff: 128,
            n_layer: 2,
            tokens: tokens(),
            extra: Vec::new(),
        }
    }
}

impl Llama {
    fn with(mut self, key: &str, value: fn() -> Value) -> Self {
        self.extra.push((key.to_string(), value));
        self
    }

    fn build(&self) -> Vec<u8> {
        let head = |explicit: Option<u64>| explicit.unwrap_or(self.n_embd / self.n_head);
        let (head_k, head_v) = (head(self.key_length), head(self.value_length));
        let n_vocab = self.tokens.len() as u64;
        // unknown, control, control, then byte tokens (`<0xXX>`) and normal ones.
        let types: Vec<i32> = self
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| match i {
                0 => 2,
                1 | 2 => 3,
                _ if t.starts_with("<0x") => 6,
                _ => 1,
            })
            .collect();
        let mut kv: Vec<(String, Value)> = vec![
            ("general.name".into(), Value::Str("hparams test".into())),
            ("llama.context_length".into(), Value::U32(256)),
            (
                "llama.embedding_length".into(),
                Value::U32(self.n_embd as u32),
            ),
            ("llama.block_count".into(), Value::U32(self.n_layer as u32)),
            (
                "llama.feed_forward_length".into(),
                Value::U32(self.n_ff as u32),
            ),
            (
                "llama.attention.head_count".into(),
                Value::U32(self.n_head as u32),
            ),
            (
                "llama.attention.head_count_kv".into(),
                Value::U32(self.n_head_kv as u32),
            ),
            (
                "llama.attention.layer_norm_rms_epsilon".into(),
                Value::F32(1e-5),
            ),
            ("general.file_type".into(), Value::U32(0)),
            ("tokenizer.ggml.model".into(), Value::Str("llama".into())),
            (
                "tokenizer.ggml.tokens".into(),
                Value::StrArray(self.tokens.clone()),
            ),
            (
                "tokenizer.ggml.scores".into(),
                Value::F32Array(vec![0.0; self.tokens.len()]),
            ),
            ("tokenizer.ggml.token_type".into(), Value::I32Array(types)),
            ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
            ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
            ("tokenizer.ggml.unknown_token_id".into(), Value::U32(0)),
        ];
        if let Some(k) = self.key_length {
            kv.push(("llama.attention.key_length".into(), Value::U32(k as u32)));
        }
        if let Some(v) = self.value_length {
            kv.push(("llama.attention.value_length".into(), Value::U32(v as u32)));
        }
        for (key, value) in &self.extra {
            kv.retain(|(k, _)| k != key);
            kv.push((key.clone(), value()));
        }
        let mut builder = Builder::new("llama");
        builder.kv.extend(kv);
        let (e, f) = (self.n_embd, self.n_ff);
        builder = builder
            .f32_tensor("token_embd.weight", &[e, n_vocab])
            .f32_tensor("output_norm.weight", &[e])
            .f32_tensor("output.weight", &[e, n_vocab]);
        for i in 0..self.n_layer {
            let t = |name: &str| format!("blk.{i}.{name}.weight");
            builder = builder
                .f32_tensor(&t("attn_norm"), &[e])
                .f32_tensor(&t("attn_q"), &[e, head_k * self.n_head])
                .f32_tensor(&t("attn_k"), &[e, head_k * self.n_head_kv])
                .f32_tensor(&t("attn_v"), &[e, head_v * self.n_head_kv])
                .f32_tensor(&t("attn_output"), &[head_k * self.n_head, e])
                .f32_tensor(&t("ffn_norm"), &[e])
                .f32_tensor(&t("ffn_gate"), &[e, f])
                .f32_tensor(&t("ffn_down"), &[f, e])
                .f32_tensor(&t("ffn_up"), &[e, f]);
        }
        builder.build()
    }

    fn file(&self) -> GgufFile {
        inspect_bytes(&self.build()).expect("the test model is a valid GGUF file")
    }
}

/// A model the pinned llama.cpp (cpu variant) crashes on, and the key the typed error names.
struct Case {
    name: &'static str,
    /// Where llama.cpp crashes (pinned source).
    crash: &'static str,
    model: Llama,
    key: &'static str,
}

/// Every case was seen to crash the cpu variant (SIGABRT) through the raw C API: loading, then
/// creating a context, then decoding three tokens.
fn crashing_cases() -> Vec<Case> {
    let case = |name, crash, model, key| Case {
        name,
        crash,
        model,
        key,
    };
    vec![
        case(
            "block_count_0",
            "llama-model.cpp:1330 GGML_ASSERT(n_layer_all > 0 && ...) at load",
            Llama::default().with("llama.block_count", || Value::U32(0)),
            "llama.block_count",
        ),
        case(
            "block_count_600",
            "llama-model.cpp:1330 GGML_ASSERT(... n_layer_all <= LLAMA_MAX_LAYERS) at load",
            Llama::default().with("llama.block_count", || Value::U32(600)),
            "llama.block_count",
        ),
        case(
            "nextn_over_layers",
            "llama-model.cpp:1332 GGML_ASSERT(n_layer_nextn <= n_layer_all) at load",
            Llama::default().with("llama.nextn_predict_layers", || Value::U32(5)),
            "llama.nextn_predict_layers",
        ),
        case(
            "too_many_experts",
            "llama-model.cpp:1363 GGML_ASSERT(n_expert <= LLAMA_MAX_EXPERTS) at load",
            Llama::default()
                .with("llama.expert_count", || Value::U32(2000))
                .with("llama.expert_used_count", || Value::U32(2)),
            "llama.expert_count",
        ),
        case(
            "experts_none_used",
            "llama-model.cpp:1366 GGML_ASSERT(n_expert_used_max > 0) at load",
            Llama::default().with("llama.expert_count", || Value::U32(4)),
            "llama.expert_used_count",
        ),
        case(
            "experts_used_without_experts",
            "llama-model.cpp:1364 GGML_ASSERT(n_expert_used_max <= n_expert) at load",
            Llama::default().with("llama.expert_used_count", || Value::U32(2)),
            "llama.expert_used_count",
        ),
        case(
            "more_experts_used_than_exist",
            "llama-model.cpp:1364 GGML_ASSERT(n_expert_used_max <= n_expert) at load",
            Llama::default()
                .with("llama.expert_count", || Value::U32(4))
                .with("llama.expert_used_count", || Value::U32(8)),
            "llama.expert_used_count",
        ),
        case(
            "expert_groups_without_experts",
            "llama-model.cpp:1375 GGML_ASSERT(n_expert_groups == 0) at load",
            Llama::default().with("llama.expert_group_count", || Value::U32(2)),
            "llama.expert_group_count",
        ),
        case(
            "unknown_rope_scaling",
            "llama-model.cpp:1422 GGML_ASSERT(rope_scaling_type_train != UNSPECIFIED) at load",
            Llama::default().with("llama.rope.scaling.type", || Value::Str("bogus".into())),
            "llama.rope.scaling.type",
        ),
        case(
            "nan_epsilon",
            "ggml-cpu/ops.cpp:4132 GGML_ASSERT(eps >= 0.0f) at the first decode",
            Llama::default().with("llama.attention.layer_norm_rms_epsilon", || {
                Value::F32(f32::NAN)
            }),
            "llama.attention.layer_norm_rms_epsilon",
        ),
        case(
            "negative_epsilon",
            "ggml-cpu/ops.cpp:4132 GGML_ASSERT(eps >= 0.0f) at the first decode",
            Llama::default().with("llama.attention.layer_norm_rms_epsilon", || {
                Value::F32(-1.0)
            }),
            "llama.attention.layer_norm_rms_epsilon",
        ),
        case(
            "kv_heads_not_dividing_heads",
            "ggml.c:5515 GGML_ASSERT(ggml_can_mul_mat(k, q)) at context creation",
            Llama {
                n_head_kv: 3,
                key_length: Some(16),
                value_length: Some(16),
                ..Llama::default()
            },
            "llama.attention.head_count_kv",
        ),
        case(
            "more_kv_heads_than_heads",
            "ggml.c:5515 GGML_ASSERT(ggml_can_mul_mat(k, q)) at context creation",
            Llama {
                n_head_kv: 8,
                key_length: Some(16),
                value_length: Some(16),
                ..Llama::default()
            },
            "llama.attention.head_count_kv",
        ),
        case(
            "layer_without_heads",
            "ggml.c:4014 GGML_ASSERT(a->ne[0] == b->ne[0]) at context creation",
            Llama::default()
                .with("llama.attention.head_count", || Value::U32Array(vec![4, 0]))
                .with("llama.attention.head_count_kv", || {
                    Value::U32Array(vec![4, 0])
                }),
            "llama.attention.head_count",
        ),
        case(
            "key_and_value_sizes_differ",
            "models/llama.cpp:102 GGML_ASSERT(n_embd_head == n_embd_head_k()) at context creation",
            Llama {
                key_length: Some(16),
                value_length: Some(8),
                ..Llama::default()
            },
            "llama.attention.value_length",
        ),
        case(
            "odd_head_size",
            "ggml-cpu/ops.cpp:6355 GGML_ASSERT(n_dims % 2 == 0) (RoPE) at the first decode",
            Llama {
                n_embd: 60,
                n_head: 8,
                n_head_kv: 8,
                ..Llama::default()
            },
            "llama.attention.head_count",
        ),
        case(
            "odd_rope_dimensions",
            "ggml-cpu/ops.cpp:6355 GGML_ASSERT(n_dims % 2 == 0) (RoPE) at the first decode",
            Llama {
                n_embd: 60,
                ..Llama::default()
            }
            .with("llama.rope.dimension_count", || Value::U32(15)),
            "llama.rope.dimension_count",
        ),
        case(
            "duplicate_tokens",
            "llama-vocab.cpp:2578 GGML_ASSERT(id_to_token.size() == token_to_id.size()) at load",
            Llama {
                tokens: {
                    let mut t = tokens();
                    let n = t.len();
                    t[n - 1] = t[n - 2].clone();
                    t
                },
                ..Llama::default()
            },
            "tokenizer.ggml.tokens",
        ),
    ]
}

fn expect_bad(result: Result<(), GgufError>, key: &str, overridden: bool, what: &str) -> GgufError {
    match result {
        Err(
            ref error @ GgufError::BadHyperparameter {
                key: ref found,
                overridden: found_overridden,
                ref value,
                ..
            },
        ) => {
            assert_eq!(found, key, "{what}: {error}");
            assert_eq!(found_overridden, overridden, "{what}: {error}");
            let message = error.to_string();
            assert!(
                message.contains(key) && message.contains(value.as_str()),
                "{what}: the message names the key and the value: {message}"
            );
            assert_eq!(error.category(), gguf_loader::Category::Model);
            assert!(!error.hint().is_empty());
            error.clone()
        }
        other => panic!("{what}: expected BadHyperparameter for {key}, got {other:?}"),
    }
}

#[test]
fn every_crashing_hyperparameter_is_a_typed_error() {
    assert_eq!(check_hyperparameters(&Llama::default().file(), &[]), Ok(()));
    for case in crashing_cases() {
        let what = format!("{} ({})", case.name, case.crash);
        expect_bad(
            check_hyperparameters(&case.model.file(), &[]),
            case.key,
            false,
            &what,
        );
    }
}

#[test]
fn infinite_epsilons_and_the_plain_layer_norm_key_are_refused() {
    for key in [
        "llama.attention.layer_norm_rms_epsilon",
        "llama.attention.layer_norm_epsilon",
    ] {
        for value in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -1e-6] {
            let mut model = Llama::default();
            model.extra.push((key.to_string(), || Value::F32(0.0)));
            let mut file = model.file();
            for (k, v) in file.metadata.iter_mut() {
                if k == key {
                    *v = gguf_loader::gguf::GgufValue::F32(value);
                }
            }
            expect_bad(check_hyperparameters(&file, &[]), key, false, key);
        }
    }
    // Zero is a valid epsilon.
    let zero = Llama::default().with("llama.attention.layer_norm_rms_epsilon", || Value::F32(0.0));
    assert_eq!(check_hyperparameters(&zero.file(), &[]), Ok(()));
}

#[test]
fn overrides_are_checked_as_llama_cpp_applies_them() {
    let good = Llama::default().file();
    let int = |key: &str, v: i64| (key.to_string(), MetadataValue::Int(v));
    let check = |file: &GgufFile, overrides: &[(String, MetadataValue)]| {
        check_hyperparameters(file, overrides)
    };
    // An override replaces the file's value.
    let error = expect_bad(
        check(&good, &[int("llama.block_count", 0)]),
        "llama.block_count",
        true,
        "block_count override 0",
    );
    assert!(error.to_string().contains("metadata override"), "{error}");
    assert_ne!(
        error.hint(),
        expect_bad(
            check_hyperparameters(
                &Llama::default()
                    .with("llama.block_count", || Value::U32(0))
                    .file(),
                &[]
            ),
            "llama.block_count",
            false,
            "block_count 0 in the file"
        )
        .hint(),
        "the hint says whether to fix the override or the file"
    );
    // Integers are truncated to the key's 32 bits, as llama.cpp assigns them.
    expect_bad(
        check(&good, &[int("llama.block_count", 1 << 32)]),
        "llama.block_count",
        true,
        "block_count override 2^32",
    );
    expect_bad(
        check(&good, &[int("llama.block_count", -1)]),
        "llama.block_count",
        true,
        "block_count override -1",
    );
    // An override can also repair a bad file value.
    let bad = Llama::default()
        .with("llama.block_count", || Value::U32(0))
        .file();
    assert_eq!(check(&bad, &[int("llama.block_count", 2)]), Ok(()));
    // The first override of a key wins (llama.cpp keeps the first in its map).
    assert_eq!(
        check(
            &good,
            &[int("llama.block_count", 2), int("llama.block_count", 0)]
        ),
        Ok(())
    );
    // An override of the wrong type is ignored by llama.cpp: the file's value counts.
    let float = |key: &str, v: f64| (key.to_string(), MetadataValue::Float(v));
    assert_eq!(check(&good, &[float("llama.block_count", 0.0)]), Ok(()));
    expect_bad(
        check(&bad, &[float("llama.block_count", 2.0)]),
        "llama.block_count",
        false,
        "wrong-type override of a bad value",
    );
    // Floats: NaN, and values that become infinite as a 32-bit float.
    for v in [f64::NAN, -0.5, 1e300] {
        expect_bad(
            check(&good, &[float("llama.attention.layer_norm_rms_epsilon", v)]),
            "llama.attention.layer_norm_rms_epsilon",
            true,
            "epsilon override",
        );
    }
    // Strings.
    expect_bad(
        check(
            &good,
            &[(
                "llama.rope.scaling.type".into(),
                MetadataValue::Str("bogus".into()),
            )],
        ),
        "llama.rope.scaling.type",
        true,
        "rope scaling override",
    );
    assert_eq!(
        check(
            &good,
            &[(
                "llama.rope.scaling.type".into(),
                MetadataValue::Str("yarn".into()),
            )],
        ),
        Ok(())
    );
    // Per-layer keys: a scalar in the file is overridden...
    expect_bad(
        check(&good, &[int("llama.attention.head_count_kv", 3)]),
        "llama.attention.head_count_kv",
        true,
        "head_count_kv override",
    );
    let experts = Llama::default()
        .with("llama.expert_count", || Value::U32(4))
        .with("llama.expert_used_count", || Value::U32(2))
        .file();
    assert_eq!(check(&experts, &[]), Ok(()));
    expect_bad(
        check(&experts, &[int("llama.expert_used_count", 8)]),
        "llama.expert_used_count",
        true,
        "expert_used_count override",
    );
    expect_bad(
        check(&experts, &[int("llama.expert_count", 0)]),
        "llama.expert_used_count",
        true,
        "expert_count override 0 under the file's expert_used_count (the override is at fault)",
    );
    // ...but llama.cpp ignores the override when the file holds an array, or lacks the key.
    let arrays = Llama::default()
        .with("llama.attention.head_count", || Value::U32Array(vec![4, 4]))
        .with("llama.attention.head_count_kv", || {
            Value::U32Array(vec![4, 4])
        })
        .file();
    assert_eq!(check_hyperparameters(&arrays, &[]), Ok(()));
    assert_eq!(
        check(&arrays, &[int("llama.attention.head_count_kv", 3)]),
        Ok(())
    );
    let mut no_experts_key = Llama::default().file();
    no_experts_key
        .metadata
        .retain(|(k, _)| k != "llama.expert_used_count");
    assert_eq!(
        check(&no_experts_key, &[int("llama.expert_used_count", 2)]),
        Ok(()),
        "expert_used_count is read with get_key_or_arr: no file key, no override"
    );
}

#[test]
fn vocabulary_checks_also_cover_vocabulary_only_loads() {
    assert_eq!(check_vocabulary(&Llama::default().file()), Ok(()));
    let mut repeated = tokens();
    repeated[259] = "<s>".into();
    let file = Llama {
        tokens: repeated,
        ..Llama::default()
    }
    .file();
    let error = expect_bad(
        check_vocabulary(&file),
        "tokenizer.ggml.tokens",
        false,
        "repeated token",
    );
    assert!(error.to_string().contains("\"<s>\""), "{error}");
    // llama.cpp renames empty tokens to [EMPTY_<index>]: two empty tokens are distinct, an empty
    // token and a literal "[EMPTY_<its index>]" are not.
    let mut empties = tokens();
    empties[259] = String::new();
    empties[260] = String::new();
    let two_empty = Llama {
        tokens: empties.clone(),
        ..Llama::default()
    };
    assert_eq!(check_vocabulary(&two_empty.file()), Ok(()));
    empties[261] = "[EMPTY_259]".into();
    let clash = Llama {
        tokens: empties,
        ..Llama::default()
    };
    expect_bad(
        check_vocabulary(&clash.file()),
        "tokenizer.ggml.tokens",
        false,
        "renamed empty token",
    );
}

#[test]
fn real_models_pass() {
    let mut paths = vec![common::smollm2(), common::gemma3()];
    let tiny_dir = common::required_path("GGUF_LOADER_TINY_DIR");
    let mut tiny: Vec<_> = std::fs::read_dir(&tiny_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    tiny.sort();
    assert!(
        tiny.contains(&common::tiny_llama()),
        "{tiny:?} includes tiny-llama"
    );
    paths.extend(tiny);
    for path in paths {
        let file = inspect(&path).unwrap();
        assert_eq!(
            check_hyperparameters(&file, &[]),
            Ok(()),
            "{}",
            path.display()
        );
        assert_eq!(check_vocabulary(&file), Ok(()), "{}", path.display());
    }
}

/// Environment variables that make [`child_loads_one_model`] load a model.
const CHILD_MODEL: &str = "GGUF_HPARAMS_CHILD_MODEL";
/// The text the child tokenizes after loading (then it prints that outcome).
const CHILD_TOKENIZE: &str = "GGUF_HPARAMS_CHILD_TOKENIZE";
const CHILD_OVERRIDE: &str = "GGUF_HPARAMS_CHILD_OVERRIDE";

/// The child side of [`crashing_models_are_refused_through_the_safe_api`]: does nothing unless
/// the parent named a model; then loads it through the safe API with the cpu variant and prints
/// the outcome.
#[test]
fn child_loads_one_model() {
    let Ok(model) = std::env::var(CHILD_MODEL) else {
        return;
    };
    use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
    use gguf_loader::{Error, Model, ModelParams};
    let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
    let library =
        LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant");
    let mut params = ModelParams::new();
    if let Ok(spec) = std::env::var(CHILD_OVERRIDE) {
        let (key, value) = spec.split_once('=').expect("KEY=INT");
        params.metadata_overrides.push((
            key.into(),
            gguf_loader::MetadataValue::Int(value.parse().unwrap()),
        ));
    }
    match Model::load(&library, Path::new(&model), params) {
        Ok(model) => match std::env::var(CHILD_TOKENIZE) {
            Ok(text) => match model.tokenize(&text, true, false) {
                Ok(tokens) => println!("CHILD-OUTCOME tokenized {}", tokens.len()),
                Err(Error::InvalidArgument { parameter, .. }) => {
                    println!("CHILD-OUTCOME refused {parameter}")
                }
                Err(other) => println!("CHILD-OUTCOME other error: {other}"),
            },
            Err(_) => println!("CHILD-OUTCOME loaded"),
        },
        Err(Error::Gguf(GgufError::BadHyperparameter { key, .. })) => {
            println!("CHILD-OUTCOME refused {key}")
        }
        Err(other) => println!("CHILD-OUTCOME other error: {other}"),
    }
}

/// Runs [`child_loads_one_model`] in a child process; its exit status and outcome line.
fn load_in_child(model: &Path, override_spec: Option<&str>) -> (String, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_loads_one_model",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODEL, model);
    if let Some(spec) = override_spec {
        command.env(CHILD_OVERRIDE, spec);
    }
    let output = command.output().expect("running the child test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let outcome = stdout
        .lines()
        .find_map(|l| l.split_once("CHILD-OUTCOME ").map(|(_, o)| o.to_string()))
        .unwrap_or_else(|| {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<_> = stderr.lines().rev().take(3).collect();
            format!("no outcome (stderr ends: {:?})", tail)
        });
    (format!("{}", output.status), outcome)
}

#[test]
fn crashing_models_are_refused_through_the_safe_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    // The harness itself: a good model of the same shape loads.
    let good = dir.path().join("good.gguf");
    std::fs::write(&good, Llama::default().build()).unwrap();
    let (status, outcome) = load_in_child(&good, None);
    assert_eq!(
        (status.as_str(), outcome.as_str()),
        ("exit status: 0", "loaded"),
        "the good model loads in a child"
    );
    let mut runs: Vec<(String, std::path::PathBuf, Option<&str>, &str)> = Vec::new();
    for case in crashing_cases() {
        let path = dir.path().join(format!("{}.gguf", case.name));
        std::fs::write(&path, case.model.build()).unwrap();
        runs.push((case.name.to_string(), path, None, case.key));
    }
    // Overrides reach llama.cpp the same way: an override that crashes it is refused too.
    runs.push((
        "block_count override 0".into(),
        good.clone(),
        Some("llama.block_count=0"),
        "llama.block_count",
    ));
    runs.push((
        "head_count_kv override 3".into(),
        good.clone(),
        Some("llama.attention.head_count_kv=3"),
        "llama.attention.head_count_kv",
    ));
    for (name, path, override_spec, key) in &runs {
        let (status, outcome) = load_in_child(path, *override_spec);
        let expected = format!("refused {key}");
        if status != "exit status: 0" || outcome != expected {
            failures.push(format!("{name}: {status}, {outcome} (expected {expected})"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases not refused with the typed error:\n{}",
        failures.len(),
        runs.len(),
        failures.join("\n")
    );
}

/// A SentencePiece vocabulary without byte tokens: llama.cpp's tokenizer spells a character
/// that is not a token with `<0xXX>` tokens and throws (`std::map::at`) when there are none,
/// which aborts the process. The crate refuses such text (and tokenizes what needs no bytes).
#[test]
fn text_an_spm_vocabulary_cannot_spell_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-bytes.gguf");
    let model = Llama {
        tokens: [
            "<unk>",
            "<s>",
            "</s>",
            "\u{2581}",
            "\u{2581}a",
            "\u{2581}b",
            "a",
            "b",
        ]
        .map(String::from)
        .to_vec(),
        ..Llama::default()
    };
    std::fs::write(&path, model.build()).unwrap();
    let tokenize = |text: &str| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "child_loads_one_model",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_MODEL, &path)
            .env(CHILD_TOKENIZE, text);
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let outcome = stdout
            .lines()
            .find_map(|l| l.split_once("CHILD-OUTCOME ").map(|(_, o)| o.to_string()));
        (output.status.to_string(), outcome)
    };
    assert_eq!(
        tokenize("a b ab"),
        ("exit status: 0".into(), Some("tokenized 5".into())),
        "text made of tokens and characters that are tokens"
    );
    assert_eq!(
        tokenize("a x"),
        ("exit status: 0".into(), Some("refused text".into())),
        "'x' is no token and has no byte token"
    );
}

#[test]
fn extreme_values_never_panic_the_check() {
    use gguf_loader::gguf::GgufValue as V;
    let good = Llama::default()
        .with("llama.expert_count", || Value::U32(4))
        .with("llama.expert_used_count", || Value::U32(2))
        .with("llama.expert_group_count", || Value::U32(2))
        .with("llama.expert_group_used_count", || Value::U32(1))
        .with("llama.attention.key_length", || Value::U32(16))
        .with("llama.rope.dimension_count", || Value::U32(16))
        .file();
    let extremes = || {
        vec![
            V::U32(0),
            V::U32(1),
            V::U32(3),
            V::U32(u32::MAX),
            V::I32(-1),
            V::U64(u64::MAX),
            V::F32(f32::NAN),
            V::F32(f32::MAX),
            V::String(String::new()),
            V::Array(Vec::new()),
            V::Array(vec![V::U32(0), V::U32(u32::MAX)]),
            V::Array(vec![V::I32(-1), V::I32(0)]),
            V::Array(vec![V::Bool(true), V::Bool(false)]),
        ]
    };
    let keys: Vec<String> = good.metadata.iter().map(|(k, _)| k.clone()).collect();
    for key in &keys {
        for value in extremes() {
            let mut file = good.clone();
            for (k, v) in file.metadata.iter_mut() {
                if k == key {
                    *v = value.clone();
                }
            }
            let _ = check_hyperparameters(&file, &[]);
            let _ = check_vocabulary(&file);
        }
        for value in [
            MetadataValue::Int(i64::MIN),
            MetadataValue::Int(i64::MAX),
            MetadataValue::Int(0),
            MetadataValue::Int(1 << 32),
            MetadataValue::Float(f64::NAN),
            MetadataValue::Float(f64::MAX),
            MetadataValue::Bool(true),
            MetadataValue::Str(String::new()),
        ] {
            let _ = check_hyperparameters(&good, &[(key.clone(), value)]);
        }
    }
}
