//! Quantization: [`Model::quantize`] writes a model file with its weights in another type
//! (`llama_model_quantize`).
//!
//! The input passes the same pure-Rust pre-flight as [`Model::load`] before llama.cpp reads it;
//! llama.cpp catches its own exceptions inside `llama_model_quantize` (it returns 1), so a
//! refusal becomes [`Error::Quantize`].

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::ffi::ftype as sys;
use crate::ffi::{strings, Api};
use crate::loader::LlamaLibrary;

use super::Model;

/// The file types [`Model::quantize`] writes (`enum llama_ftype`): the type of most weights,
/// with llama.cpp's per-tensor choices for the mixed (`_K_M`) types.
///
/// Only types that need no importance matrix are offered (the very low-bit `IQ*` types need
/// one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[doc(alias = "llama_ftype")]
#[allow(non_camel_case_types)] // the names llama.cpp uses (`Q4_K_M`)
pub enum QuantType {
    /// `LLAMA_FTYPE_MOSTLY_Q4_0`.
    Q4_0,
    /// `LLAMA_FTYPE_MOSTLY_Q4_1`.
    Q4_1,
    /// `LLAMA_FTYPE_MOSTLY_Q5_0`.
    Q5_0,
    /// `LLAMA_FTYPE_MOSTLY_Q5_1`.
    Q5_1,
    /// `LLAMA_FTYPE_MOSTLY_Q8_0`.
    Q8_0,
    /// `LLAMA_FTYPE_MOSTLY_Q3_K_M`.
    Q3_K_M,
    /// `LLAMA_FTYPE_MOSTLY_Q4_K_S`.
    Q4_K_S,
    /// `LLAMA_FTYPE_MOSTLY_Q4_K_M`.
    Q4_K_M,
    /// `LLAMA_FTYPE_MOSTLY_Q5_K_S`.
    Q5_K_S,
    /// `LLAMA_FTYPE_MOSTLY_Q5_K_M`.
    Q5_K_M,
    /// `LLAMA_FTYPE_MOSTLY_Q6_K`.
    Q6_K,
    /// `LLAMA_FTYPE_MOSTLY_F16`.
    F16,
    /// `LLAMA_FTYPE_MOSTLY_BF16`.
    BF16,
    /// `LLAMA_FTYPE_ALL_F32`.
    F32,
    /// `LLAMA_FTYPE_MOSTLY_TQ1_0`: ternary weights (BitNet b1.58 models), 1.69 bits each.
    TQ1_0,
    /// `LLAMA_FTYPE_MOSTLY_TQ2_0`: ternary weights (BitNet b1.58 models), 2.06 bits each;
    /// the ternary type upstream's Vulkan backend runs.
    TQ2_0,
}

impl QuantType {
    /// The `llama_ftype` value.
    pub fn ftype(self) -> i32 {
        match self {
            QuantType::Q4_0 => sys::LLAMA_FTYPE_MOSTLY_Q4_0,
            QuantType::Q4_1 => sys::LLAMA_FTYPE_MOSTLY_Q4_1,
            QuantType::Q5_0 => sys::LLAMA_FTYPE_MOSTLY_Q5_0,
            QuantType::Q5_1 => sys::LLAMA_FTYPE_MOSTLY_Q5_1,
            QuantType::Q8_0 => sys::LLAMA_FTYPE_MOSTLY_Q8_0,
            QuantType::Q3_K_M => sys::LLAMA_FTYPE_MOSTLY_Q3_K_M,
            QuantType::Q4_K_S => sys::LLAMA_FTYPE_MOSTLY_Q4_K_S,
            QuantType::Q4_K_M => sys::LLAMA_FTYPE_MOSTLY_Q4_K_M,
            QuantType::Q5_K_S => sys::LLAMA_FTYPE_MOSTLY_Q5_K_S,
            QuantType::Q5_K_M => sys::LLAMA_FTYPE_MOSTLY_Q5_K_M,
            QuantType::Q6_K => sys::LLAMA_FTYPE_MOSTLY_Q6_K,
            QuantType::F16 => sys::LLAMA_FTYPE_MOSTLY_F16,
            QuantType::BF16 => sys::LLAMA_FTYPE_MOSTLY_BF16,
            QuantType::F32 => sys::LLAMA_FTYPE_ALL_F32,
            QuantType::TQ1_0 => sys::LLAMA_FTYPE_MOSTLY_TQ1_0,
            QuantType::TQ2_0 => sys::LLAMA_FTYPE_MOSTLY_TQ2_0,
        }
    }

    /// The name llama.cpp's `llama-quantize` tool uses (`Q4_K_M`).
    pub fn name(self) -> &'static str {
        match self {
            QuantType::Q4_0 => "Q4_0",
            QuantType::Q4_1 => "Q4_1",
            QuantType::Q5_0 => "Q5_0",
            QuantType::Q5_1 => "Q5_1",
            QuantType::Q8_0 => "Q8_0",
            QuantType::Q3_K_M => "Q3_K_M",
            QuantType::Q4_K_S => "Q4_K_S",
            QuantType::Q4_K_M => "Q4_K_M",
            QuantType::Q5_K_S => "Q5_K_S",
            QuantType::Q5_K_M => "Q5_K_M",
            QuantType::Q6_K => "Q6_K",
            QuantType::F16 => "F16",
            QuantType::BF16 => "BF16",
            QuantType::F32 => "F32",
            QuantType::TQ1_0 => "TQ1_0",
            QuantType::TQ2_0 => "TQ2_0",
        }
    }
}

impl std::str::FromStr for QuantType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        const ALL: [QuantType; 16] = [
            QuantType::Q4_0,
            QuantType::Q4_1,
            QuantType::Q5_0,
            QuantType::Q5_1,
            QuantType::Q8_0,
            QuantType::Q3_K_M,
            QuantType::Q4_K_S,
            QuantType::Q4_K_M,
            QuantType::Q5_K_S,
            QuantType::Q5_K_M,
            QuantType::Q6_K,
            QuantType::F16,
            QuantType::BF16,
            QuantType::F32,
            QuantType::TQ1_0,
            QuantType::TQ2_0,
        ];
        ALL.into_iter()
            .find(|q| q.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::InvalidArgument {
                parameter: "quant type",
                reason: format!(
                    "{s:?} is not one of {}",
                    ALL.map(QuantType::name).join(", ")
                ),
            })
    }
}

fn quantize_error(input: &Path, output: &Path, reason: impl Into<String>) -> Error {
    Error::Quantize {
        input: input.into(),
        output: output.into(),
        reason: reason.into(),
    }
}

/// `path` made absolute with its directory resolved (the file itself need not exist).
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?,
    };
    Some(dir.join(name))
}

impl Model {
    /// Writes `output`: the model in `input` with its weights quantized to `ftype`, using every
    /// available core. See [`Model::quantize_with_threads`].
    ///
    /// # Errors
    /// As [`Model::quantize_with_threads`].
    #[doc(alias = "llama_model_quantize")]
    pub fn quantize(
        library: &LlamaLibrary,
        input: impl AsRef<Path>,
        output: impl AsRef<Path>,
        ftype: QuantType,
    ) -> Result<()> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Self::quantize_with_threads(library, input, output, ftype, threads)
    }

    /// Writes `output`: the model in `input` with its weights quantized to `ftype` (already
    /// quantized weights are requantized), with `threads` threads. The input need not be
    /// loaded; the library does the work on the calling thread and its workers.
    ///
    /// Checked first, in Rust: the input is a regular file that passes the pre-flight of
    /// [`Model::load`] ([`crate::gguf::inspect`] and the hyper-parameter checks) and is not a
    /// BitNet-fork model; the output is not the input (nor a directory) and its directory
    /// exists; `threads` is at least 1.
    ///
    /// Do not quantize into a file that a loaded [`Model`] maps: the output is truncated and
    /// rewritten.
    ///
    /// # Errors
    /// `ModelLoad` for a missing input, `Gguf` for an input that fails the pre-flight,
    /// `InvalidArgument` for bad paths or `threads`, `Quantize` when llama.cpp refuses
    /// (unknown architecture, a tensor type it cannot convert) or cannot write the output,
    /// `Unsupported` when `library` is the BitNet fork (quantize with an upstream build: it
    /// writes the ternary TQ1_0 / TQ2_0 types for BitNet models).
    #[doc(alias = "llama_model_quantize")]
    pub fn quantize_with_threads(
        library: &LlamaLibrary,
        input: impl AsRef<Path>,
        output: impl AsRef<Path>,
        ftype: QuantType,
        threads: usize,
    ) -> Result<()> {
        let (input, output) = (input.as_ref(), output.as_ref());
        let nthread = i32::try_from(threads)
            .ok()
            .filter(|t| *t >= 1)
            .ok_or_else(|| Error::InvalidArgument {
                parameter: "threads",
                reason: format!("{threads} is not in 1..={}", i32::MAX),
            })?;
        let metadata = std::fs::metadata(input).map_err(|e| Error::ModelLoad {
            path: input.into(),
            reason: e.to_string(),
        })?;
        if !metadata.is_file() {
            return Err(Error::ModelLoad {
                path: input.into(),
                reason: "not a regular file".into(),
            });
        }
        let file = crate::gguf::inspect(input)?;
        if file.family == crate::gguf::Family::BitNet {
            return Err(quantize_error(
                input,
                output,
                format!(
                    "a BitNet-fork model (architecture {:?}) cannot be quantized by upstream llama.cpp",
                    file.architecture().unwrap_or("?")
                ),
            ));
        }
        crate::gguf::check_hyperparameters(&file, &[])?;
        crate::gguf::check_vocabulary(&file)?;

        let invalid = |reason: String| Error::InvalidArgument {
            parameter: "output",
            reason,
        };
        if output.as_os_str().is_empty() {
            return Err(invalid("is empty".into()));
        }
        if output.is_dir() {
            return Err(invalid(format!("{} is a directory", output.display())));
        }
        let dir = match output.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(invalid(format!(
                "its directory {} does not exist",
                dir.display()
            )));
        }
        let same = match (resolved(input), resolved(output)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        if same {
            return Err(invalid(format!(
                "{} is the input file (or cannot be told apart from it)",
                output.display()
            )));
        }
        if resolved(output).is_some_and(|out| super::is_loaded(&out)) {
            // llama.cpp maps model files: rewriting one that is mapped crashes the process.
            return Err(invalid(format!(
                "{} is the file of a model loaded in this process (drop it first)",
                output.display()
            )));
        }
        let input_c =
            strings::path(input).map_err(|e| quantize_error(input, output, e.reason()))?;
        let output_c =
            strings::path(output).map_err(|e| quantize_error(input, output, e.reason()))?;

        let api = Api::of(library);
        let mut params = api.model_quantize_default_params()?;
        params.nthread = nthread;
        params.ftype = ftype.ftype();
        // Quantized inputs (the usual case) are dequantized and quantized again.
        params.allow_requantize = true;
        // SAFETY: both paths are C strings alive for the call; `params` is llama.cpp's
        // defaults with a thread count ≥ 1, a valid ftype that needs no importance matrix, and
        // no imatrix/overrides/prune list (NULL); the input passed the pre-flight above, and
        // llama_model_quantize catches the exceptions it throws.
        let code = unsafe { api.model_quantize(input_c.as_ptr(), output_c.as_ptr(), &params) }?;
        if code != 0 {
            return Err(quantize_error(
                input,
                output,
                format!(
                    "llama_model_quantize returned {code} (see the llama.cpp log for the cause)"
                ),
            ));
        }
        Ok(())
    }
}
