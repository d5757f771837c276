//! [`LoraAdapter`]: a GGUF LoRA adapter loaded for one model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{AdapterProblem, Error, Result};
use crate::ffi::strings;
use crate::ffi::RawAdapterLora as llama_adapter_lora;
use crate::gguf::{GgufFile, GgufValue, TensorInfo, TensorType};
use crate::model::Model;

/// Tensor types an adapter may use (what `convert_lora_to_gguf.py` writes).
const ADAPTER_TYPES: &[(u32, &str)] = &[(0, "F32"), (1, "F16"), (8, "Q8_0"), (30, "BF16")];

struct Inner {
    model: Model,
    raw: NonNull<llama_adapter_lora>,
    path: PathBuf,
    alpha: Option<f32>,
    metadata: Vec<(String, GgufValue)>,
    n_tensors: usize,
}

// SAFETY: after loading, llama.cpp only reads an adapter (graph building, metadata getters);
// it is freed once, in Drop, under the model's lock, when no handle (and so no context) uses it.
unsafe impl Send for Inner {}
// SAFETY: see above: the shared methods only read.
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        let _lock = self
            .model
            .inner
            .shared_state
            .write()
            .unwrap_or_else(|p| p.into_inner());
        // SAFETY: created by llama_adapter_lora_init for `self.model`, which is still alive (held
        // here) and so has not freed it; freed exactly once; every context that set it holds a
        // handle, so none uses it any more. The lock keeps other threads' context creation and
        // adapter loading off the model's set of adapters while it is erased from it.
        unsafe { self.model.api().adapter_lora_free(self.raw.as_ptr()) };
    }
}

/// A LoRA adapter (GGUF, `general.type = adapter`, `adapter.type = lora`) loaded for one
/// [`Model`]. `Send + Sync`; cloning is cheap (an `Arc`), and every clone keeps the adapter and
/// its model alive. Apply it with [`Context::set_lora_adapters`](crate::Context::set_lora_adapters).
#[derive(Clone)]
pub struct LoraAdapter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LoraAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoraAdapter")
            .field("path", &self.inner.path)
            .field("alpha", &self.inner.alpha)
            .field("tensors", &self.inner.n_tensors)
            .finish()
    }
}

impl PartialEq for LoraAdapter {
    /// The same loaded adapter (not the same file).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for LoraAdapter {}

fn problem(path: &Path, problem: AdapterProblem, reason: impl Into<String>) -> Error {
    Error::Adapter {
        path: path.to_path_buf(),
        problem,
        reason: reason.into(),
    }
}

impl LoraAdapter {
    /// Loads the LoRA adapter at `path` for `model`.
    ///
    /// The file is checked in Rust first (see the [module docs](crate::adapter)), then read by
    /// llama.cpp under the write side of the model's `shared_state` lock.
    ///
    /// # Errors
    /// [`Error::Gguf`] when the file is missing or not a valid GGUF file; [`Error::Adapter`]
    /// when it is not a LoRA adapter ([`AdapterProblem::NotAnAdapter`]), was made for another
    /// architecture ([`AdapterProblem::Architecture`]) or another model
    /// ([`AdapterProblem::Shape`]), adapts 3-D tensors ([`AdapterProblem::Unsupported`]) or
    /// llama.cpp refuses it ([`AdapterProblem::Rejected`]); `NotSupported` for a vocab-only
    /// model; `InvalidArgument` for a path with a NUL byte.
    #[doc(alias = "llama_adapter_lora_init")]
    pub fn load(model: &Model, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        model.require_weights("loading a LoRA adapter")?;
        let file = crate::gguf::inspect(path)?;
        let alpha = check_metadata(model, &file)?;
        let n_tensors = check_tensors(model, &file)?;
        let path_c = strings::path(path).map_err(|e| Error::InvalidArgument {
            parameter: "path",
            reason: e.reason(),
        })?;
        let raw = {
            let _lock = model
                .inner
                .shared_state
                .write()
                .unwrap_or_else(|p| p.into_inner());
            // SAFETY: a live model with weights; a C string naming a file whose keys and tensors
            // passed the checks above (types llama.cpp asserts, shapes the graph needs); the
            // lock serialises the insertion into the model's adapter set with context creation
            // and other adapters' init/free.
            unsafe { model.api().adapter_lora_init(model.raw(), path_c.as_ptr()) }
        };
        let raw = NonNull::new(raw).ok_or_else(|| {
            problem(
                path,
                AdapterProblem::Rejected,
                "llama_adapter_lora_init returned NULL (see the llama.cpp log)",
            )
        })?;
        Ok(LoraAdapter {
            inner: Arc::new(Inner {
                model: model.clone(),
                raw,
                path: path.to_path_buf(),
                alpha,
                metadata: file.metadata,
                n_tensors,
            }),
        })
    }

    /// The model it was loaded for.
    pub fn model(&self) -> &Model {
        &self.inner.model
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// `adapter.lora.alpha` (`None`: absent or 0, the scale is used as is; otherwise llama.cpp
    /// multiplies the scale by `alpha / rank`).
    pub fn alpha(&self) -> Option<f32> {
        self.inner.alpha
    }

    /// Number of adapted base tensors (`lora_a`/`lora_b` pairs).
    pub fn n_tensors(&self) -> usize {
        self.inner.n_tensors
    }

    /// The adapter file's metadata, in file order.
    #[doc(alias = "llama_adapter_meta_val_str")]
    pub fn metadata(&self) -> &[(String, GgufValue)] {
        &self.inner.metadata
    }

    pub(crate) fn raw(&self) -> *mut llama_adapter_lora {
        self.inner.raw.as_ptr()
    }
}

/// The keys llama.cpp reads (with `gguf_get_val_str` / `gguf_get_val_f32`, which abort on
/// another type). Returns alpha.
fn check_metadata(model: &Model, file: &GgufFile) -> Result<Option<f32>> {
    let path = &file.path;
    let string = |key: &str| -> Result<&str> {
        match file.get(key) {
            Some(GgufValue::String(s)) => Ok(s),
            Some(other) => Err(problem(
                path,
                AdapterProblem::NotAnAdapter,
                format!("{key} must be a string, found {other:?}"),
            )),
            None => Err(problem(
                path,
                AdapterProblem::NotAnAdapter,
                format!("{key} is missing"),
            )),
        }
    };
    let general_type = string("general.type")?;
    if general_type != "adapter" {
        return Err(problem(
            path,
            AdapterProblem::NotAnAdapter,
            format!("general.type is {general_type:?}, not \"adapter\""),
        ));
    }
    let architecture = string("general.architecture")?;
    if architecture != model.architecture() {
        return Err(problem(
            path,
            AdapterProblem::Architecture,
            format!(
                "the adapter is for {architecture:?}, the model is {:?}",
                model.architecture()
            ),
        ));
    }
    let adapter_type = string("adapter.type")?;
    if adapter_type != "lora" {
        return Err(problem(
            path,
            AdapterProblem::NotAnAdapter,
            format!("adapter.type is {adapter_type:?}, not \"lora\""),
        ));
    }
    let alpha = match file.get("adapter.lora.alpha") {
        None => None,
        Some(GgufValue::F32(a)) if a.is_finite() => (*a != 0.0).then_some(*a),
        Some(other) => {
            return Err(problem(
                path,
                AdapterProblem::NotAnAdapter,
                format!("adapter.lora.alpha must be a finite f32, found {other:?}"),
            ))
        }
    };
    if let Some(value) = file.get("adapter.alora.invocation_tokens") {
        let n_vocab = model.facts().n_vocab;
        let ok = value.as_array().is_some_and(|tokens| {
            tokens
                .iter()
                .all(|t| matches!(t, GgufValue::U32(id) if (*id as i64) < i64::from(n_vocab)))
        });
        if !ok {
            return Err(problem(
                path,
                AdapterProblem::NotAnAdapter,
                format!("adapter.alora.invocation_tokens must be an array of u32 token ids below {n_vocab}"),
            ));
        }
    }
    Ok(alpha)
}

/// `ne` with the two dimensions of a 2-D tensor (1 for missing ones); `None` for 3-D or more.
fn dims2(t: &TensorInfo) -> Option<[u64; 2]> {
    if t.dims.iter().skip(2).any(|&d| d != 1) {
        return None;
    }
    Some([
        t.dims.first().copied().unwrap_or(1),
        t.dims.get(1).copied().unwrap_or(1),
    ])
}

/// The tensor table against the model's: pairs, types and shapes. Returns the number of pairs.
fn check_tensors(model: &Model, file: &GgufFile) -> Result<usize> {
    let path = &file.path;
    let mut pairs: BTreeMap<&str, [Option<&TensorInfo>; 2]> = BTreeMap::new();
    for t in &file.tensors {
        let (base, slot) = if let Some(base) = t.name.strip_suffix(".lora_a") {
            (base, 0)
        } else if let Some(base) = t.name.strip_suffix(".lora_b") {
            (base, 1)
        } else if t.name.ends_with("_norm.weight") {
            continue; // llama.cpp ignores norm vectors of adapters
        } else {
            return Err(problem(
                path,
                AdapterProblem::NotAnAdapter,
                format!(
                    "tensor {:?} is neither a .lora_a nor a .lora_b tensor",
                    t.name
                ),
            ));
        };
        if !ADAPTER_TYPES
            .iter()
            .any(|(id, _)| t.tensor_type == TensorType(*id))
        {
            return Err(problem(
                path,
                AdapterProblem::NotAnAdapter,
                format!(
                    "tensor {:?} has type {}; adapters use F32, F16, BF16 or Q8_0",
                    t.name,
                    t.tensor_type.name()
                ),
            ));
        }
        if t.dims.contains(&0) {
            return Err(problem(
                path,
                AdapterProblem::NotAnAdapter,
                format!("tensor {:?} is empty (dims {:?})", t.name, t.dims),
            ));
        }
        pairs.entry(base).or_default()[slot] = Some(t);
    }
    // The base model's tensor table (the header only; the path is the one llama.cpp loaded).
    let base_file = crate::gguf::inspect(model.path())?;
    let split = base_file
        .get("split.count")
        .and_then(GgufValue::as_u64)
        .is_some_and(|n| n > 1);
    for (base, pair) in &pairs {
        let [Some(a), Some(b)] = *pair else {
            return Err(problem(
                path,
                AdapterProblem::NotAnAdapter,
                format!("{base}: the lora_a/lora_b pair is missing one of them"),
            ));
        };
        let (Some(a_ne), Some(b_ne)) = (dims2(a), dims2(b)) else {
            return Err(problem(
                path,
                AdapterProblem::Unsupported,
                format!("{base}: 3-D adapter tensors (experts) are not supported"),
            ));
        };
        let base_tensor = base_file.tensors.iter().find(|t| t.name == *base);
        let Some(base_tensor) = base_tensor else {
            if split {
                // In another split file: llama.cpp checks existence and shape itself (it refuses
                // with an error, not an abort); the rank of a token_embd pair is checked here.
                if base.ends_with("token_embd.weight") && a_ne[0] != b_ne[0] {
                    return Err(shape(path, base, "lora_a and lora_b ranks differ"));
                }
                continue;
            }
            return Err(problem(
                path,
                AdapterProblem::Shape,
                format!("the model has no tensor {base} (an adapter for another model?)"),
            ));
        };
        let Some(m) = dims2(base_tensor) else {
            return Err(problem(
                path,
                AdapterProblem::Unsupported,
                format!("{base} is a 3-D tensor of the model (experts): not supported"),
            ));
        };
        let is_embd = base.ends_with("token_embd.weight");
        if is_embd
            && model.has_output_head()
            && !base_file.tensors.iter().any(|t| t.name == "output.weight")
        {
            // Tied embeddings: llama.cpp uses token_embd as the output head too, and applies the
            // pair there as an ordinary one, with the wrong shapes: GGML_ASSERT in ggml_mul_mat.
            return Err(problem(
                path,
                AdapterProblem::Unsupported,
                format!("{base}: the model's output head is its token embedding (tied, no output.weight): llama.cpp cannot apply a token_embd adapter to it"),
            ));
        }
        let fits = if is_embd {
            // B is not transposed and A and B are swapped (llm_build_inp_embd), and the rank is
            // multiplied in ggml_mul_mat(b, get_rows(a, ids)), which asserts b.ne0 == a.ne0.
            m[0] == b_ne[1] && m[1] == a_ne[1] && a_ne[0] == b_ne[0]
        } else {
            m[0] == a_ne[0] && m[1] == b_ne[1] && a_ne[1] == b_ne[0]
        };
        if !fits {
            return Err(shape(
                path,
                base,
                &format!(
                    "model ne {m:?}, lora_a ne {a_ne:?}, lora_b ne {b_ne:?} (an adapter for another model?)"
                ),
            ));
        }
    }
    Ok(pairs.len())
}

fn shape(path: &Path, base: &str, what: &str) -> Error {
    problem(path, AdapterProblem::Shape, format!("{base}: {what}"))
}
