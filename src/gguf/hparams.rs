//! Hyper-parameter pre-flight: values that make the pinned llama.cpp abort (`GGML_ASSERT`,
//! `GGML_ABORT`, division by zero) while loading a model, creating a context or decoding, found
//! in Rust first so that they become a typed error instead of a dead process.
//!
//! Only what crashes is checked. What llama.cpp refuses cleanly by itself (a missing key, a key
//! of the wrong type, a tensor whose shape does not match the hyper-parameters, a per-layer array
//! of the wrong length) is left to it: its refusal is already an error, not a crash.
//!
//! Values are read the way llama.cpp reads them (`llama_model_loader::get_key` /
//! `get_key_or_arr` in `src/llama-model-loader.cpp`), metadata overrides included:
//! - an override replaces a scalar key when its type matches the key's (integer keys take
//!   [`MetadataValue::Int`], truncated to 32 bits; float keys take [`MetadataValue::Float`] as a
//!   32-bit float; string keys [`MetadataValue::Str`]); an override of another type is ignored
//!   with a warning, and so the file's value is used;
//! - a per-layer key (`get_key_or_arr`: head counts, feed-forward length, experts used) is only
//!   overridden when the file holds it as a scalar; when the file lacks it, or holds an array, the
//!   override is ignored;
//! - the first override of a key wins.

use std::fmt::Display;

use super::{GgufError, GgufFile, GgufValue, MetadataValue};

/// `LLAMA_MAX_LAYERS` (src/llama-hparams.h).
const MAX_LAYERS: u32 = 512;
/// `LLAMA_MAX_EXPERTS` (src/llama-hparams.h).
const MAX_EXPERTS: u32 = 1024;
/// The names `llama_rope_scaling_type_from_string` knows (src/llama-model.cpp).
const ROPE_SCALING_TYPES: [&str; 4] = ["none", "linear", "yarn", "longrope"];

/// Architectures whose graph builder asserts, unconditionally at context creation,
/// `GGML_ASSERT(n_embd_head == hparams.n_embd_head_k())` with `n_embd_head = n_embd_head_v()`:
/// the key and value head sizes must be equal (src/models/<arch>.cpp, `graph::graph`).
const KEY_EQUALS_VALUE_LENGTH: &[&str] = &[
    "afmoe",
    "apertus",
    "arcee",
    "arctic",
    "baichuan",
    "bert",
    "bitnet",
    "bloom",
    "chameleon",
    "chatglm",
    "codeshell",
    "cohere2",
    "dbrx",
    "deci",
    "eurobert",
    "falcon",
    "glm4",
    "gpt2",
    "gptneox",
    "grok",
    "hunyuan-moe",
    "hunyuan_vl",
    "internlm2",
    "jais",
    "jais2",
    "laguna",
    "llada",
    "llada-moe",
    "llama",
    "llama4",
    "maincoder",
    "mellum",
    "minimax-01",
    "minimax-m2",
    "minimax-m3",
    "mistral3",
    "mpt",
    "nemotron",
    "neo-bert",
    "olmo",
    "olmo2",
    "olmoe",
    "openelm",
    "orion",
    "pangu-embedded",
    "phi2",
    "phi3",
    "plamo",
    "pockettts",
    "qwen",
    "qwen2",
    "qwen2moe",
    "qwen2vl",
    "qwen3",
    "qwen3moe",
    "qwen3vl",
    "qwen3vlmoe",
    "refact",
    "rnd1",
    "seed_oss",
    "smallthinker",
    "smollm3",
    "spark2_5",
    "stablelm",
    "starcoder",
    "starcoder2",
    "xverse",
];

/// Architectures of [`KEY_EQUALS_VALUE_LENGTH`] that allow layers without attention heads (their
/// graph builders skip attention for them); in the others a layer with zero query or key/value
/// heads, next to layers with heads, trips a shape assertion when the graph is built.
const ZERO_HEAD_LAYERS_ALLOWED: &[&str] = &["deci"];

/// Architectures whose graph builder also asserts `GGML_ASSERT(n_embd_head == n_rot)`: the
/// rotary dimension count must equal the (value) head size, and (as ggml's RoPE asserts
/// `n_dims % 2 == 0` at the first decode) be even.
const ROPE_EQUALS_HEAD_LENGTH: &[&str] = &[
    "apertus",
    "arcee",
    "arctic",
    "baichuan",
    "chameleon",
    "codeshell",
    "dbrx",
    "deci",
    "falcon",
    "grok",
    "hunyuan-moe",
    "hunyuan_vl",
    "internlm2",
    "jais2",
    "llada",
    "llada-moe",
    "llama",
    "llama4",
    "maincoder",
    "mellum",
    "mistral3",
    "olmo",
    "olmo2",
    "olmoe",
    "orion",
    "pangu-embedded",
    "plamo",
    "pockettts",
    "qwen2",
    "qwen2moe",
    "qwen2vl",
    "qwen3",
    "qwen3moe",
    "qwen3vl",
    "qwen3vlmoe",
    "rnd1",
    "seed_oss",
    "smallthinker",
    "smollm3",
    "starcoder2",
    "xverse",
];

/// Checks the hyper-parameters of `file`, with `overrides` replacing the file's values as
/// llama.cpp would apply them, for values the pinned llama.cpp crashes on instead of refusing.
/// Run it before `llama_model_load_from_file` for a full (not vocabulary-only) load.
///
/// Checked (`key` stands for `{arch}.key`; source lines of the pinned llama.cpp):
/// - `block_count` is 1..=512 (`load_hparams`, src/llama-model.cpp: `GGML_ASSERT(n_layer_all > 0
///   && n_layer_all <= LLAMA_MAX_LAYERS)`);
/// - `nextn_predict_layers` is at most `block_count`; for `wavtokenizer-dec`,
///   `posnet.block_count` and `convnext.block_count` too;
/// - experts (`load_hparams`' `GGML_ASSERT`s on `n_expert`): `expert_count` is at most 1024;
///   with experts, the largest `expert_used_count` over the layers is 1..=`expert_count` and
///   `expert_group_count` is below `expert_count` (with more than one group: dividing it, and
///   `expert_group_used_count` 1..`expert_group_count`); without experts, neither
///   `expert_used_count` nor `expert_group_count` is above 0;
/// - `rope.scaling.type` is `none`, `linear`, `yarn` or `longrope`;
/// - `attention.layer_norm_rms_epsilon` and `attention.layer_norm_epsilon` are finite and not
///   negative (ggml's `norm`/`rms_norm` assert `eps >= 0` at the first decode);
/// - in every layer with attention heads, `attention.head_count_kv` divides
///   `attention.head_count` (ggml's matrix product asserts it when the first graph is built);
/// - for the plain-attention architectures (llama, qwen2, phi3, ...; see the lists in the
///   source), every layer has query and key/value heads when the first one has, the key and value
///   head sizes are equal, and for those with RoPE the rotary dimension count equals the head
///   size and is even (their graph builders and ggml's RoPE assert it; skipped when the file has
///   sliding-window head sizes);
/// - the vocabulary, as [`check_vocabulary`] does.
///
/// # Errors
/// [`GgufError::BadHyperparameter`] naming the first bad key and its value.
pub fn check_hyperparameters(
    file: &GgufFile,
    overrides: &[(String, MetadataValue)],
) -> Result<(), GgufError> {
    let mut params = Params {
        file,
        overrides,
        arch: String::new(),
    };
    let Some((arch, _)) = params.string("general.architecture") else {
        // llama.cpp refuses a file without an architecture by itself.
        return Ok(());
    };
    if arch == "clip" {
        // llama.cpp loads no hyper-parameters for it (and refuses it as a main model).
        return Ok(());
    }
    params.arch = arch;
    params.check()?;
    check_vocabulary(file)
}

/// Checks the vocabulary of `file` for what the pinned llama.cpp aborts on while loading it, also
/// for a vocabulary-only load: two equal entries in `tokenizer.ggml.tokens`
/// (`GGML_ASSERT(id_to_token.size() == token_to_id.size())` in `llama_vocab::impl::load`,
/// src/llama-vocab.cpp; empty entries count as llama.cpp renames them, `[EMPTY_<index>]`).
///
/// # Errors
/// [`GgufError::BadHyperparameter`] for `tokenizer.ggml.tokens`, naming the repeated token.
pub fn check_vocabulary(file: &GgufFile) -> Result<(), GgufError> {
    const KEY: &str = "tokenizer.ggml.tokens";
    let Some(GgufValue::Array(tokens)) = file.get(KEY) else {
        return Ok(());
    };
    let mut seen = std::collections::HashMap::with_capacity(tokens.len());
    for (index, token) in tokens.iter().enumerate() {
        let GgufValue::String(text) = token else {
            // Not a string array: llama.cpp refuses it by itself.
            return Ok(());
        };
        let text = if text.is_empty() {
            std::borrow::Cow::Owned(format!("[EMPTY_{index}]"))
        } else {
            std::borrow::Cow::Borrowed(text.as_str())
        };
        if let Some(first) = seen.insert(text.clone(), index) {
            return Err(GgufError::BadHyperparameter {
                path: file.path.clone(),
                key: KEY.into(),
                value: format!("{text:?}"),
                reason: format!(
                    "token {index} repeats token {first} (llama.cpp asserts that tokens are unique)"
                ),
                overridden: false,
            });
        }
    }
    Ok(())
}

struct Params<'a> {
    file: &'a GgufFile,
    overrides: &'a [(String, MetadataValue)],
    arch: String,
}

impl Params<'_> {
    /// `{arch}.suffix`.
    fn key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.arch)
    }

    fn override_of(&self, key: &str) -> Option<&MetadataValue> {
        self.overrides
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// A key as `get_key` reads it, and whether an override set it: the first override of the
    /// right type wins, else the file's value of the right type; `None` when absent, or of a
    /// type llama.cpp refuses for it (it then fails cleanly).
    fn lookup<T>(
        &self,
        key: &str,
        from_override: impl Fn(&MetadataValue) -> Option<T>,
        from_file: impl Fn(&GgufValue) -> Option<T>,
    ) -> Option<(T, bool)> {
        if let Some(v) = self.override_of(key).and_then(from_override) {
            return Some((v, true));
        }
        from_file(self.file.get(key)?).map(|v| (v, false))
    }

    /// A `uint32_t` key (an integer override is truncated to its low 32 bits, as llama.cpp
    /// assigns `val_i64` to a `uint32_t`).
    fn u32(&self, key: &str) -> Option<(u32, bool)> {
        self.lookup(
            key,
            |o| match o {
                MetadataValue::Int(v) => Some(*v as u32),
                _ => None,
            },
            |f| match f {
                GgufValue::U32(v) => Some(*v),
                _ => None,
            },
        )
    }

    /// A `float` key.
    fn f32(&self, key: &str) -> Option<(f32, bool)> {
        self.lookup(
            key,
            |o| match o {
                MetadataValue::Float(v) => Some(*v as f32),
                _ => None,
            },
            |f| match f {
                GgufValue::F32(v) => Some(*v),
                _ => None,
            },
        )
    }

    /// A string key.
    fn string(&self, key: &str) -> Option<(String, bool)> {
        self.lookup(
            key,
            |o| match o {
                MetadataValue::Str(v) => Some(v.clone()),
                _ => None,
            },
            |f| match f {
                GgufValue::String(v) => Some(v.clone()),
                _ => None,
            },
        )
    }

    /// A per-layer `uint32_t` key as `get_key_or_arr` reads it for `n_layer` layers: `None`
    /// when absent or refused by llama.cpp (wrong type, wrong array length).
    fn per_layer(&self, key: &str, n_layer: u32) -> Option<(Vec<u32>, bool)> {
        match self.file.get(key)? {
            GgufValue::Array(values) => {
                if values.len() != n_layer as usize {
                    return None;
                }
                // `get_arr` into std::array<uint32_t>: u32, i32 (reinterpreted) or bool.
                values
                    .iter()
                    .map(|v| match v {
                        GgufValue::U32(v) => Some(*v),
                        GgufValue::I32(v) => Some(*v as u32),
                        GgufValue::Bool(v) => Some(u32::from(*v)),
                        _ => None,
                    })
                    .collect::<Option<Vec<u32>>>()
                    .map(|v| (v, false))
            }
            _ => {
                let (value, overridden) = self.u32(key)?;
                Some((vec![value; n_layer as usize], overridden))
            }
        }
    }

    fn bad(
        &self,
        key: &str,
        value: impl Display,
        overridden: bool,
        reason: impl Into<String>,
    ) -> GgufError {
        GgufError::BadHyperparameter {
            path: self.file.path.clone(),
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
            overridden,
        }
    }

    fn check(&self) -> Result<(), GgufError> {
        let block_count = self.key("block_count");
        let Some((n_layer, layer_overridden)) = self.u32(&block_count) else {
            // Required: llama.cpp refuses a file without it ("key not found").
            return Ok(());
        };
        if n_layer == 0 || n_layer > MAX_LAYERS {
            return Err(self.bad(
                &block_count,
                n_layer,
                layer_overridden,
                format!("the layer count must be 1..={MAX_LAYERS} (llama.cpp asserts it)"),
            ));
        }
        let mut layer_limited = vec![self.key("nextn_predict_layers")];
        if self.arch == "wavtokenizer-dec" {
            layer_limited.push(self.key("posnet.block_count"));
            layer_limited.push(self.key("convnext.block_count"));
        }
        for key in &layer_limited {
            if let Some((n, overridden)) = self.u32(key) {
                if n > n_layer {
                    return Err(self.bad(
                        key,
                        n,
                        overridden || layer_overridden,
                        format!("more than the {n_layer} layers of {block_count}"),
                    ));
                }
            }
        }
        self.check_experts(n_layer)?;
        let rope_scaling = self.key("rope.scaling.type");
        if let Some((name, overridden)) = self.string(&rope_scaling) {
            if !ROPE_SCALING_TYPES.contains(&name.as_str()) {
                return Err(self.bad(
                    &rope_scaling,
                    format!("{name:?}"),
                    overridden,
                    format!(
                        "not a RoPE scaling type llama.cpp knows ({})",
                        ROPE_SCALING_TYPES.join(", ")
                    ),
                ));
            }
        }
        for suffix in [
            "attention.layer_norm_rms_epsilon",
            "attention.layer_norm_epsilon",
        ] {
            let key = self.key(suffix);
            if let Some((eps, overridden)) = self.f32(&key) {
                if !eps.is_finite() || eps < 0.0 {
                    return Err(self.bad(
                        &key,
                        eps,
                        overridden,
                        "a normalisation epsilon must be finite and not negative (ggml asserts eps >= 0 when decoding)",
                    ));
                }
            }
        }
        self.check_heads(n_layer)
    }

    fn check_experts(&self, n_layer: u32) -> Result<(), GgufError> {
        let expert_count = self.key("expert_count");
        let (mut n_expert, expert_overridden) = self.u32(&expert_count).unwrap_or((0, false));
        let used_key = self.key("expert_used_count");
        let (mut used, used_overridden) = self
            .per_layer(&used_key, n_layer)
            .map(|(v, o)| (v.into_iter().max().unwrap_or(0), o))
            .unwrap_or((0, false));
        if matches!(self.arch.as_str(), "hunyuan_vl" | "hunyuan-dense") && n_expert <= 1 {
            // load_hparams resets these for the dense Hunyuan architectures.
            n_expert = 0;
            used = 0;
        }
        if n_expert > MAX_EXPERTS {
            return Err(self.bad(
                &expert_count,
                n_expert,
                expert_overridden,
                format!("more than llama.cpp's limit of {MAX_EXPERTS} experts"),
            ));
        }
        if used > n_expert {
            return Err(self.bad(
                &used_key,
                used,
                used_overridden || expert_overridden,
                format!("more experts used than the {n_expert} of {expert_count}"),
            ));
        }
        let groups_key = self.key("expert_group_count");
        let (groups, groups_overridden) = self.u32(&groups_key).unwrap_or((0, false));
        if n_expert == 0 {
            if groups != 0 {
                return Err(self.bad(
                    &groups_key,
                    groups,
                    groups_overridden || expert_overridden,
                    format!("expert groups without experts ({expert_count} is 0 or missing)"),
                ));
            }
            return Ok(());
        }
        if used == 0 {
            return Err(self.bad(
                &used_key,
                used,
                used_overridden || expert_overridden,
                format!("{expert_count} is {n_expert} but no expert is used (0 or missing)"),
            ));
        }
        if groups >= n_expert {
            return Err(self.bad(
                &groups_key,
                groups,
                groups_overridden || expert_overridden,
                format!("must be below the {n_expert} experts of {expert_count}"),
            ));
        }
        if groups > 1 {
            if n_expert % groups != 0 {
                return Err(self.bad(
                    &groups_key,
                    groups,
                    groups_overridden || expert_overridden,
                    format!("does not divide the {n_expert} experts of {expert_count}"),
                ));
            }
            let group_used_key = self.key("expert_group_used_count");
            let (group_used, overridden) = self.u32(&group_used_key).unwrap_or((0, false));
            if group_used == 0 || group_used >= groups {
                return Err(self.bad(
                    &group_used_key,
                    group_used,
                    overridden || groups_overridden,
                    format!("must be 1..{groups} (the groups of {groups_key})"),
                ));
            }
        }
        Ok(())
    }

    fn check_heads(&self, n_layer: u32) -> Result<(), GgufError> {
        let head_key = self.key("attention.head_count");
        let Some((heads, heads_overridden)) = self.per_layer(&head_key, n_layer) else {
            return Ok(());
        };
        let kv_key = self.key("attention.head_count_kv");
        let (kv_heads, kv_overridden) = self
            .per_layer(&kv_key, n_layer)
            .unwrap_or_else(|| (heads.clone(), heads_overridden));
        for (layer, (&n_head, &n_head_kv)) in heads.iter().zip(&kv_heads).enumerate() {
            if n_head > 0 && n_head_kv > 0 && n_head % n_head_kv != 0 {
                return Err(self.bad(
                    &kv_key,
                    n_head_kv,
                    kv_overridden || heads_overridden,
                    format!(
                        "does not divide the {n_head} heads of {head_key} (layer {layer}); ggml asserts it when building the attention graph"
                    ),
                ));
            }
        }
        let n_head = heads[0];
        if n_head == 0 {
            return Ok(());
        }
        let plain_attention = KEY_EQUALS_VALUE_LENGTH.contains(&self.arch.as_str())
            && !ZERO_HEAD_LAYERS_ALLOWED.contains(&self.arch.as_str());
        if plain_attention {
            for (layer, (&n_head, &n_head_kv)) in heads.iter().zip(&kv_heads).enumerate() {
                let (key, value, overridden) = if n_head == 0 {
                    (&head_key, n_head, heads_overridden)
                } else if n_head_kv == 0 {
                    (&kv_key, n_head_kv, kv_overridden)
                } else {
                    continue;
                };
                return Err(self.bad(
                    key,
                    value,
                    overridden,
                    format!(
                        "layer {layer} of the {} architecture has no attention heads (llama.cpp asserts on it when building the graph)",
                        self.arch
                    ),
                ));
            }
        }
        let swa_keys = [
            "attention.key_length_swa",
            "attention.value_length_swa",
            "rope.dimension_count_swa",
        ];
        if swa_keys
            .iter()
            .any(|k| self.file.get(&self.key(k)).is_some())
        {
            // Layer 0 may use the sliding-window sizes: not modelled here.
            return Ok(());
        }
        let asserts_kv = KEY_EQUALS_VALUE_LENGTH.contains(&self.arch.as_str());
        let asserts_rope = ROPE_EQUALS_HEAD_LENGTH.contains(&self.arch.as_str());
        if !asserts_kv && !asserts_rope {
            return Ok(());
        }
        let embd_key = self.key("embedding_length");
        let Some((n_embd, _)) = self.u32(&embd_key) else {
            return Ok(());
        };
        // load_hparams: head sizes default to n_embd / n_head(0), the rotary count to the key
        // head size.
        let default_head = n_embd / n_head;
        let key_key = self.key("attention.key_length");
        let value_key = self.key("attention.value_length");
        let rope_key = self.key("rope.dimension_count");
        let (head_k, k_overridden) = self.u32(&key_key).unwrap_or((default_head, false));
        let (head_v, v_overridden) = self.u32(&value_key).unwrap_or((default_head, false));
        let (n_rot, rot_overridden) = self.u32(&rope_key).unwrap_or((head_k, false));
        if asserts_kv && head_k != head_v {
            return Err(self.bad(
                &value_key,
                head_v,
                v_overridden || k_overridden,
                format!(
                    "the {} architecture needs equal key and value head sizes, and the key head size is {head_k} (llama.cpp asserts it when building the graph)",
                    self.arch
                ),
            ));
        }
        if asserts_rope && n_rot != head_v {
            return Err(self.bad(
                &rope_key,
                n_rot,
                rot_overridden || v_overridden,
                format!(
                    "the {} architecture needs a rotary dimension count equal to the head size {head_v} (llama.cpp asserts it when building the graph)",
                    self.arch
                ),
            ));
        }
        if asserts_rope && n_rot % 2 != 0 {
            // Without an explicit count, the rotary dimension is the head size n_embd / n_head.
            let (key, value, overridden) = if self.u32(&rope_key).is_some() {
                (&rope_key, n_rot, rot_overridden)
            } else if self.u32(&key_key).is_some() {
                (&key_key, head_k, k_overridden)
            } else {
                (&head_key, n_head, heads_overridden)
            };
            return Err(self.bad(
                key,
                value,
                overridden,
                format!(
                    "makes the rotary dimension count {n_rot}, which is odd ({embd_key} is {n_embd}; ggml's RoPE asserts an even count when decoding)"
                ),
            ));
        }
        Ok(())
    }
}
