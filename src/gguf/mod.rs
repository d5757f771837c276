//! Layer 4: a pure-Rust GGUF reader (no C): validation, metadata, tensor table and memory
//! estimates, usable without any llama.cpp library loaded, with the header's memory bounded by
//! [`HEADER_MEMORY_LIMIT`]; and the hyper-parameter pre-flight ([`check_hyperparameters`],
//! [`check_vocabulary`]) that refuses, as a typed error, the values the pinned llama.cpp would
//! crash on.
//!
//! ```no_run
//! let file = gguf_loader::gguf::inspect("model.gguf")?;
//! println!("{} tensors, architecture {:?}", file.tensors.len(), file.architecture());
//! # Ok::<(), gguf_loader::gguf::GgufError>(())
//! ```

mod estimate;
mod hparams;
mod reader;
mod types;

use std::path::{Path, PathBuf};

pub use estimate::{auto_gpu_layers, MemoryEstimate};
pub use hparams::{check_hyperparameters, check_vocabulary};
pub use reader::HEADER_MEMORY_LIMIT;
pub use types::{TensorType, BITNET_TYPES, UPSTREAM_TYPES};

use crate::category::Category;

/// Why a file is not a usable GGUF model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// No such file.
    #[error("{path}: no such file")]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// A directory or special file.
    #[error("{path} {reason}")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// Reading failed.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The file ends early.
    #[error("{path} is truncated: {what} missing at byte {offset}")]
    Truncated {
        /// The path.
        path: PathBuf,
        /// Where the data ran out.
        offset: u64,
        /// What was being read.
        what: String,
    },
    /// Not a GGUF file.
    #[error("{path} is not a GGUF file (magic {magic:02x?})")]
    NotGguf {
        /// The path.
        path: PathBuf,
        /// The first bytes.
        magic: Vec<u8>,
    },
    /// An older llama.cpp format.
    #[error("{path} is in the old {format} format: convert it to GGUF v3 with llama.cpp's conversion scripts")]
    OldFormat {
        /// The path.
        path: PathBuf,
        /// The format found.
        format: String,
    },
    /// Another model format.
    #[error("{path} is {format}, not GGUF: convert it with llama.cpp's convert_hf_to_gguf.py")]
    OtherFormat {
        /// The path.
        path: PathBuf,
        /// The format recognised.
        format: String,
    },
    /// A GGUF version this reader does not know.
    #[error("{path} is GGUF version {version}; versions 2 and 3 are supported")]
    UnsupportedVersion {
        /// The path.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// A tensor type neither upstream nor the BitNet fork defines.
    #[error("{path}: tensor {tensor:?} has unknown type {type_id}")]
    UnknownTensorType {
        /// The path.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The type id.
        type_id: u32,
    },
    /// Inconsistent content.
    #[error("{path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The header's metadata or tensor table would take more memory than
    /// [`HEADER_MEMORY_LIMIT`] (a hostile or corrupt file declaring huge arrays, say).
    #[error("{path}: {key:?} would take the header's in-memory size to {needed} bytes, over the limit of {limit} bytes")]
    HeaderTooLarge {
        /// The path.
        path: PathBuf,
        /// The metadata key (or `tensor <name>` for the tensor table) being read when the
        /// budget ran out.
        key: String,
        /// Bytes the header would need at that point.
        needed: u64,
        /// The budget ([`HEADER_MEMORY_LIMIT`]).
        limit: u64,
    },
    /// A hyper-parameter (or vocabulary entry) the pinned llama.cpp would crash on (abort or
    /// assertion failure while loading the model, creating a context or decoding), found by
    /// [`check_hyperparameters`] or [`check_vocabulary`].
    #[error("{path}: {key} = {value}: {reason}{}", if *.overridden { " (with the metadata overrides applied)" } else { "" })]
    BadHyperparameter {
        /// The path.
        path: PathBuf,
        /// The metadata key, e.g. `llama.block_count`.
        key: String,
        /// Its value as llama.cpp would read it.
        value: String,
        /// What is wrong with it.
        reason: String,
        /// Whether a metadata override is involved: the value itself, or the value it is
        /// checked against (`expert_count` for `expert_used_count`, say), comes from one.
        overridden: bool,
    },
}

impl GgufError {
    /// Which kind of problem this is (always a model problem, but for I/O).
    pub fn category(&self) -> Category {
        Category::Model
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            GgufError::NotFound { .. } | GgufError::NotAFile { .. } | GgufError::Io { .. } => "check the model path",
            GgufError::Truncated { .. } => "the download or copy is incomplete: fetch the file again and check its checksum",
            GgufError::OldFormat { .. } | GgufError::OtherFormat { .. } => "convert the model to GGUF",
            GgufError::UnsupportedVersion { .. } | GgufError::UnknownTensorType { .. } => {
                "the file was written by a newer or different tool; use a GGUF v3 model for llama.cpp 0.6"
            }
            GgufError::NotGguf { .. } | GgufError::Corrupt { .. } => "the file is damaged or not a model: fetch it again",
            GgufError::HeaderTooLarge { .. } => {
                "the file declares absurdly large metadata: it is damaged or hostile; fetch the model from a trusted source"
            }
            GgufError::BadHyperparameter { overridden: true, .. } => {
                "fix or remove the metadata override"
            }
            GgufError::BadHyperparameter { .. } => {
                "the model's hyper-parameters are invalid (damaged or badly converted file): fetch or convert it again"
            }
        }
    }
}

/// A metadata value as stored in a GGUF file (see [`GgufFile::metadata`]).
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// GGUF type 0.
    U8(u8),
    /// GGUF type 1.
    I8(i8),
    /// GGUF type 2.
    U16(u16),
    /// GGUF type 3.
    I16(i16),
    /// GGUF type 4.
    U32(u32),
    /// GGUF type 5.
    I32(i32),
    /// GGUF type 6.
    F32(f32),
    /// GGUF type 7.
    Bool(bool),
    /// GGUF type 8 (UTF-8).
    String(String),
    /// GGUF type 9: elements of one type.
    Array(Vec<GgufValue>),
    /// GGUF type 10.
    U64(u64),
    /// GGUF type 11.
    I64(i64),
    /// GGUF type 12.
    F64(f64),
}

impl GgufValue {
    /// The string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The array, if it is one.
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// A metadata override: a value that replaces the file's value of a key when llama.cpp loads
/// the model (`ModelParams::metadata_overrides`), and that [`check_hyperparameters`] checks in
/// place of the file's value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// An integer (llama.cpp applies it to integer keys, truncating it to the key's width, e.g.
    /// to 32 bits for `{arch}.block_count`).
    Int(i64),
    /// A float (llama.cpp applies it to float keys as a 32-bit float).
    Float(f64),
    /// A boolean (applies to boolean keys).
    Bool(bool),
    /// A string of at most 127 bytes (applies to string keys).
    Str(String),
}

/// Which code base a model needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Upstream llama.cpp.
    Upstream,
    /// Microsoft's BitNet fork (architectures bitnet-b1.58 / bitnet-25, or I2_S/I8_S/TL1/TL2
    /// tensors).
    BitNet,
}

/// One tensor-table entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions, innermost first (ggml's `ne`).
    pub dims: Vec<u64>,
    /// Element type.
    pub tensor_type: TensorType,
    /// Offset inside the data section.
    pub offset: u64,
    /// Size in bytes (`None` for the BitNet fork's lookup-table types TL1/TL2/I8_S, whose
    /// layout depends on the model; I2_S is sized).
    pub size_bytes: Option<u64>,
    /// Number of elements.
    pub n_elements: u64,
}

impl TensorInfo {
    /// The layer index for `blk.N.*` tensors.
    pub fn layer(&self) -> Option<u32> {
        self.name
            .strip_prefix("blk.")?
            .split('.')
            .next()?
            .parse()
            .ok()
    }
}

/// A validated GGUF file's header.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufFile {
    /// The file.
    pub path: PathBuf,
    /// GGUF version (2 or 3).
    pub version: u32,
    /// File size in bytes.
    pub file_size: u64,
    /// Data alignment.
    pub alignment: u64,
    /// Where tensor data starts.
    pub data_offset: u64,
    /// Metadata in file order.
    pub metadata: Vec<(String, GgufValue)>,
    /// The tensor table.
    pub tensors: Vec<TensorInfo>,
    /// Which llama.cpp code base it needs.
    pub family: Family,
}

impl GgufFile {
    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(GgufValue::as_str)
    }

    /// `<architecture>.<suffix>` as an integer.
    pub fn arch_u64(&self, suffix: &str) -> Option<u64> {
        let arch = self.architecture()?;
        self.get(&format!("{arch}.{suffix}"))
            .and_then(GgufValue::as_u64)
    }
}

/// Reads and validates the GGUF file at `path` (header, metadata, tensor table; tensor data is
/// not read).
///
/// # Errors
/// A [`GgufError`] naming the file and what is wrong.
pub fn inspect(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
    reader::read(path.as_ref())
}

/// Reads and validates GGUF bytes held in memory (e.g. a header fetched over the network);
/// errors name the file as `<memory>`.
///
/// # Errors
/// As [`inspect`].
pub fn inspect_bytes(bytes: &[u8]) -> Result<GgufFile, GgufError> {
    reader::parse_bytes(bytes, Path::new("<memory>"))
}
