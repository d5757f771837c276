//! The GGUF parser: header, metadata and tensor table, validated against the file, without
//! reading tensor data and without ever allocating from an untrusted count.
//!
//! Memory is bounded twice: every count must fit in the bytes left in the file, and the whole
//! in-memory header (metadata values, strings, tensor records) is charged against
//! [`HEADER_MEMORY_LIMIT`] *before* anything is allocated for it. The second bound matters
//! because one byte of file can become a 32-byte [`GgufValue`]: a 4 GiB file declaring four
//! billion one-byte array elements would otherwise ask for 128 GiB.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::types::TensorType;
use super::{Family, GgufError, GgufFile, GgufValue, TensorInfo};

/// Longest string accepted in a header (keys, values, tensor names): 16 MiB.
const MAX_STRING: u64 = 16 << 20;
/// Most dimensions a ggml tensor has.
const MAX_DIMS: u32 = 4;
/// Deepest nesting of arrays accepted.
const MAX_ARRAY_DEPTH: u32 = 4;

/// Most memory the in-memory form of one GGUF header may take, in bytes (256 MiB): each
/// metadata entry, array element and tensor record counts its Rust size plus the bytes of its
/// strings. Real models need far less (Gemma 3's 262 144-token vocabulary, the largest in common
/// use, about 30 MiB); a file over the limit fails with [`GgufError::HeaderTooLarge`] naming the
/// key being read, before the memory is reserved.
pub const HEADER_MEMORY_LIMIT: u64 = 256 << 20;

/// Rust size of one metadata value (array element).
const VALUE_SIZE: u64 = std::mem::size_of::<GgufValue>() as u64;
/// Rust size of one metadata entry, plus its copy of the key in the duplicate check.
const ENTRY_SIZE: u64 =
    (std::mem::size_of::<(String, GgufValue)>() + std::mem::size_of::<String>()) as u64;
/// Rust size of one tensor record, plus its name's copy in the duplicate check.
const TENSOR_SIZE: u64 = (std::mem::size_of::<TensorInfo>()
    + std::mem::size_of::<String>()
    + std::mem::size_of::<(u64, u64, &str)>()) as u64;

struct Cursor<R> {
    inner: R,
    position: u64,
    file_size: u64,
    path: PathBuf,
    /// Bytes of [`HEADER_MEMORY_LIMIT`] not yet charged.
    budget: u64,
}

impl<R: Read> Cursor<R> {
    fn remaining(&self) -> u64 {
        self.file_size.saturating_sub(self.position)
    }

    /// Charges `bytes` of in-memory header to the budget, before they are allocated; `key`
    /// names what is being read in the error.
    fn charge(&mut self, bytes: u64, key: &str) -> Result<(), GgufError> {
        if bytes > self.budget {
            return Err(GgufError::HeaderTooLarge {
                path: self.path.clone(),
                key: key.to_string(),
                needed: (HEADER_MEMORY_LIMIT - self.budget).saturating_add(bytes),
                limit: HEADER_MEMORY_LIMIT,
            });
        }
        self.budget -= bytes;
        Ok(())
    }

    fn error(&self, what: impl Into<String>) -> GgufError {
        GgufError::Corrupt {
            path: self.path.clone(),
            offset: self.position,
            reason: what.into(),
        }
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        if self.remaining() < N as u64 {
            return Err(self.truncated(what));
        }
        let mut buffer = [0u8; N];
        self.fill(&mut buffer)?;
        Ok(buffer)
    }

    /// Reads exactly `buffer.len()` bytes (the caller checked they are within the file).
    fn fill(&mut self, buffer: &mut [u8]) -> Result<(), GgufError> {
        self.inner.read_exact(buffer).map_err(|e| GgufError::Io {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        self.position += buffer.len() as u64;
        Ok(())
    }

    fn truncated(&self, what: &str) -> GgufError {
        GgufError::Truncated {
            path: self.path.clone(),
            offset: self.position,
            what: what.to_string(),
        }
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    /// A count that must fit in the rest of the file at `min_size` bytes per item.
    fn count(&mut self, what: &str, min_size: u64) -> Result<u64, GgufError> {
        let at = self.position;
        let count = self.u64(what)?;
        let most = self.remaining() / min_size.max(1);
        if count > most {
            return Err(GgufError::Corrupt {
                path: self.path.clone(),
                offset: at,
                reason: format!(
                    "{what} {count} cannot fit in the {} bytes left",
                    self.remaining()
                ),
            });
        }
        Ok(count)
    }

    /// Reads a string, charging its bytes to the budget in the name of `key`.
    fn string(&mut self, what: &str, key: &str) -> Result<String, GgufError> {
        let at = self.position;
        let len = self.u64(what)?;
        if len > MAX_STRING || len > self.remaining() {
            return Err(GgufError::Corrupt {
                path: self.path.clone(),
                offset: at,
                reason: format!(
                    "{what} length {len} exceeds the {} bytes left (or 16 MiB)",
                    self.remaining()
                ),
            });
        }
        self.charge(len, key)?;
        let mut buffer = vec![0u8; len as usize];
        self.fill(&mut buffer)?;
        String::from_utf8(buffer).map_err(|e| GgufError::Corrupt {
            path: self.path.clone(),
            offset: at,
            reason: format!(
                "{what} is not UTF-8 (valid up to byte {})",
                e.utf8_error().valid_up_to()
            ),
        })
    }

    /// Reads a value of `value_type` for metadata key `key` (its entry already charged).
    fn value(&mut self, value_type: u32, depth: u32, key: &str) -> Result<GgufValue, GgufError> {
        Ok(match value_type {
            0 => GgufValue::U8(self.bytes::<1>("u8")?[0]),
            1 => GgufValue::I8(self.bytes::<1>("i8")?[0] as i8),
            2 => GgufValue::U16(u16::from_le_bytes(self.bytes("u16")?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.bytes("i16")?)),
            4 => GgufValue::U32(self.u32("u32")?),
            5 => GgufValue::I32(i32::from_le_bytes(self.bytes("i32")?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.bytes("f32")?)),
            7 => match self.bytes::<1>("bool")?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                other => return Err(self.error(format!("bool value {other}"))),
            },
            8 => GgufValue::String(self.string("string value", key)?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.error("arrays nested too deeply"));
                }
                let element_type = self.u32("array element type")?;
                let min_size = element_size(element_type)
                    .ok_or_else(|| self.error(format!("array element type {element_type}")))?;
                let count = self.count("array length", min_size)?;
                // The count is bounded by the bytes left in the file, and its elements' Rust
                // size by the memory budget, charged before the allocation.
                self.charge(count.saturating_mul(VALUE_SIZE), key)?;
                let mut values = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    values.push(self.value(element_type, depth + 1, key)?);
                }
                GgufValue::Array(values)
            }
            10 => GgufValue::U64(self.u64("u64")?),
            11 => GgufValue::I64(i64::from_le_bytes(self.bytes("i64")?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.bytes("f64")?)),
            other => return Err(self.error(format!("unknown metadata value type {other}"))),
        })
    }
}

/// Smallest encoded size of a value of `value_type` (for bounding counts).
fn element_size(value_type: u32) -> Option<u64> {
    Some(match value_type {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10 | 11 | 12 | 8 => 8,
        9 => 12,
        _ => return None,
    })
}

/// Recognises other model formats from their first bytes.
fn foreign_format(path: &Path, head: &[u8]) -> Option<GgufError> {
    let old = |name: &str| GgufError::OldFormat {
        path: path.into(),
        format: name.into(),
    };
    match head.get(..4) {
        Some(b"lmgg") => return Some(old("GGML (unversioned)")),
        Some(b"fmgg") => return Some(old("GGMF")),
        Some(b"tjgg") => return Some(old("GGJT")),
        Some(b"algg") => return Some(old("GGLA (LoRA adapter)")),
        Some(b"PK\x03\x04") => {
            return Some(GgufError::OtherFormat {
                path: path.into(),
                format: "a PyTorch checkpoint (zip)".into(),
            })
        }
        _ => {}
    }
    if head.first() == Some(&0x80) && head.get(1).is_some_and(|v| (2..=5).contains(v)) {
        return Some(GgufError::OtherFormat {
            path: path.into(),
            format: "a PyTorch checkpoint (pickle)".into(),
        });
    }
    if head.len() >= 9 {
        let header_len = u64::from_le_bytes(head[..8].try_into().ok()?);
        if head[8] == b'{' && header_len > 1 && header_len < (100 << 20) {
            return Some(GgufError::OtherFormat {
                path: path.into(),
                format: "safetensors".into(),
            });
        }
    }
    None
}

/// Reads and validates `path`.
///
/// # Errors
/// A [`GgufError`] naming what is wrong with the file (missing, truncated, corrupt, too large).
pub fn read(path: &Path) -> Result<GgufFile, GgufError> {
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => GgufError::NotFound { path: path.into() },
        _ => GgufError::Io {
            path: path.into(),
            reason: e.to_string(),
        },
    })?;
    if metadata.is_dir() {
        return Err(GgufError::NotAFile {
            path: path.into(),
            reason: "is a directory".into(),
        });
    }
    if !metadata.is_file() {
        return Err(GgufError::NotAFile {
            path: path.into(),
            reason: "is not a regular file".into(),
        });
    }
    let file_size = metadata.len();
    let file = File::open(path).map_err(|e| GgufError::Io {
        path: path.into(),
        reason: e.to_string(),
    })?;
    parse(file, file_size, path)
}

/// Parses GGUF bytes held in memory (`path` only names them in errors).
///
/// # Errors
/// As [`read`].
pub fn parse_bytes(bytes: &[u8], path: &Path) -> Result<GgufFile, GgufError> {
    parse(std::io::Cursor::new(bytes), bytes.len() as u64, path)
}

/// Parses a GGUF stream of `file_size` bytes.
fn parse<R: Read + Seek>(mut file: R, file_size: u64, path: &Path) -> Result<GgufFile, GgufError> {
    let mut head = [0u8; 16];
    let n = read_up_to(&mut file, &mut head).map_err(|e| GgufError::Io {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if n == 0 {
        return Err(GgufError::Truncated {
            path: path.into(),
            offset: 0,
            what: "magic (the file is empty)".into(),
        });
    }
    if head[..n.min(4)] != b"GGUF"[..n.min(4)] || n < 4 {
        if let Some(error) = foreign_format(path, &head[..n]) {
            return Err(error);
        }
        if n < 4 {
            return Err(GgufError::Truncated {
                path: path.into(),
                offset: n as u64,
                what: "magic".into(),
            });
        }
        return Err(GgufError::NotGguf {
            path: path.into(),
            magic: head[..4].to_vec(),
        });
    }
    file.seek(SeekFrom::Start(4)).map_err(|e| GgufError::Io {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let mut c = Cursor {
        inner: BufReader::new(file),
        position: 4,
        file_size,
        path: path.into(),
        budget: HEADER_MEMORY_LIMIT,
    };
    let version = c.u32("version")?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(GgufError::OldFormat {
                path: path.into(),
                format: "GGUF v1".into(),
            })
        }
        other => {
            return Err(GgufError::UnsupportedVersion {
                path: path.into(),
                version: other,
            })
        }
    }
    // A tensor-table entry takes at least 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 + 8.
    let n_tensors = c.count("tensor count", 32)?;
    let n_kv = c.count("metadata count", 8 + 4 + 1)?;
    // Entries are charged as they are read; reserve only what the budget could hold.
    let mut kv = Vec::with_capacity((n_kv as usize).min(1024));
    let mut seen = std::collections::HashSet::new();
    for index in 0..n_kv {
        c.charge(ENTRY_SIZE, &format!("metadata entry {index}"))?;
        let key = c.string("metadata key", &format!("metadata key {index}"))?;
        if key.is_empty() {
            return Err(c.error("empty metadata key"));
        }
        // The key is held twice (entry and duplicate check).
        c.charge(key.len() as u64, &key)?;
        let value_type = c.u32("metadata value type")?;
        let value = c.value(value_type, 0, &key)?;
        if !seen.insert(key.clone()) {
            return Err(c.error(format!("duplicate metadata key {key:?}")));
        }
        kv.push((key, value));
    }
    let alignment = match kv
        .iter()
        .find(|(k, _)| k == "general.alignment")
        .map(|(_, v)| v)
    {
        None => 32,
        Some(GgufValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(other) => {
            return Err(c.error(format!(
                "general.alignment {other:?} is not a power-of-two u32"
            )))
        }
    };
    let mut tensors = Vec::with_capacity((n_tensors as usize).min(1024));
    let mut names = std::collections::HashSet::new();
    for index in 0..n_tensors {
        let label = format!("tensor {index}");
        c.charge(TENSOR_SIZE, &label)?;
        let name = c.string("tensor name", &label)?;
        let label = format!("tensor {name}");
        // The name is held twice (record and duplicate check), and so are its dimensions.
        c.charge(name.len() as u64 + 8 * u64::from(MAX_DIMS), &label)?;
        let n_dims = c.u32("tensor dimension count")?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(c.error(format!(
                "tensor {name:?} has {n_dims} dimensions (1..=4 allowed)"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        let mut n_elements: u64 = 1;
        for _ in 0..n_dims {
            let d = c.u64("tensor dimension")?;
            if d == 0 || d > i64::MAX as u64 {
                return Err(c.error(format!("tensor {name:?} has dimension {d}")));
            }
            n_elements = n_elements
                .checked_mul(d)
                .filter(|n| *n <= i64::MAX as u64)
                .ok_or_else(|| c.error(format!("tensor {name:?} has too many elements")))?;
            dims.push(d);
        }
        let tensor_type = TensorType(c.u32("tensor type")?);
        let offset = c.u64("tensor offset")?;
        if offset % alignment != 0 {
            return Err(c.error(format!(
                "tensor {name:?} offset {offset} is not aligned to {alignment}"
            )));
        }
        if !names.insert(name.clone()) {
            return Err(c.error(format!("duplicate tensor {name:?}")));
        }
        let size_bytes = match (tensor_type.upstream(), tensor_type.bitnet_name()) {
            (Some(_), _) => Some(tensor_type.bytes_for(dims[0], n_elements).ok_or_else(|| {
                c.error(format!(
                    "tensor {name:?}: row length {} does not fit type {}",
                    dims[0],
                    tensor_type.name()
                ))
            })?),
            (None, Some("I2_S")) => Some(
                tensor_type
                    .bitnet_bytes_for(dims[0], n_elements)
                    .ok_or_else(|| {
                        c.error(format!(
                            "tensor {name:?}: row length {} does not fit type {} (whole blocks of 128)",
                            dims[0],
                            tensor_type.name()
                        ))
                    })?,
            ),
            // The fork's lookup-table types are laid out per model: not sized here.
            (None, Some(_)) => None,
            (None, None) => {
                return Err(GgufError::UnknownTensorType {
                    path: path.into(),
                    tensor: name,
                    type_id: tensor_type.0,
                })
            }
        };
        tensors.push(TensorInfo {
            name,
            dims,
            tensor_type,
            offset,
            size_bytes,
            n_elements,
        });
    }
    let header_end = c.position;
    let data_offset = header_end
        .div_ceil(alignment)
        .checked_mul(alignment)
        .ok_or_else(|| c.error("data offset overflows"))?;
    if data_offset > file_size && !tensors.is_empty() {
        return Err(GgufError::Truncated {
            path: path.into(),
            offset: file_size,
            what: "tensor data".into(),
        });
    }
    let data_size = file_size.saturating_sub(data_offset);
    // Every tensor inside the data section, and none overlapping.
    let mut spans: Vec<(u64, u64, &str)> = Vec::with_capacity(tensors.len());
    for t in &tensors {
        let size = t.size_bytes.unwrap_or(0);
        let end = t
            .offset
            .checked_add(size)
            .ok_or_else(|| c.error(format!("tensor {:?} end overflows", t.name)))?;
        if end > data_size {
            return Err(GgufError::Truncated {
                path: path.into(),
                offset: file_size,
                what: format!(
                    "data of tensor {:?} ({} bytes at data offset {})",
                    t.name, size, t.offset
                ),
            });
        }
        spans.push((t.offset, end, &t.name));
    }
    spans.sort_unstable();
    for pair in spans.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(c.error(format!(
                "tensors {:?} and {:?} overlap",
                pair[0].2, pair[1].2
            )));
        }
    }
    let family = detect_family(&kv, &tensors);
    Ok(GgufFile {
        path: path.into(),
        version,
        file_size,
        alignment,
        data_offset,
        metadata: kv,
        tensors,
        family,
    })
}

fn read_up_to(file: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn detect_family(kv: &[(String, GgufValue)], tensors: &[TensorInfo]) -> Family {
    let arch = kv
        .iter()
        .find(|(k, _)| k == "general.architecture")
        .and_then(|(_, v)| v.as_str());
    if matches!(arch, Some("bitnet-b1.58") | Some("bitnet-25")) {
        return Family::BitNet;
    }
    if tensors
        .iter()
        .any(|t| t.tensor_type.upstream().is_none() && t.tensor_type.bitnet_name().is_some())
    {
        return Family::BitNet;
    }
    Family::Upstream
}
