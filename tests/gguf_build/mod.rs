//! A minimal GGUF writer for crafting valid and broken files in tests.
#![allow(dead_code)]

/// A metadata value to write.
pub enum Value {
    U32(u32),
    Str(String),
    StrArray(Vec<String>),
    F32(f32),
    Bool(bool),
    U32Array(Vec<u32>),
    I32Array(Vec<i32>),
    F32Array(Vec<f32>),
    /// An array header declaring `count` elements of GGUF type `element_type`, followed by
    /// `bytes` as they are (for crafted, hostile arrays).
    RawArray {
        element_type: u32,
        count: u64,
        bytes: Vec<u8>,
    },
}

/// A tensor to write (F32 data of zeros).
pub struct Tensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub type_id: u32,
    pub bytes: u64,
}

/// Builds a GGUF v3 file.
pub struct Builder {
    pub version: u32,
    pub kv: Vec<(String, Value)>,
    pub tensors: Vec<Tensor>,
}

impl Builder {
    pub fn new(arch: &str) -> Self {
        Builder {
            version: 3,
            kv: vec![("general.architecture".into(), Value::Str(arch.into()))],
            tensors: Vec::new(),
        }
    }

    pub fn kv(mut self, key: &str, value: Value) -> Self {
        self.kv.push((key.into(), value));
        self
    }

    pub fn f32_tensor(mut self, name: &str, dims: &[u64]) -> Self {
        let n: u64 = dims.iter().product();
        self.tensors.push(Tensor {
            name: name.into(),
            dims: dims.to_vec(),
            type_id: 0,
            bytes: n * 4,
        });
        self
    }

    pub fn raw_tensor(mut self, name: &str, dims: &[u64], type_id: u32, bytes: u64) -> Self {
        self.tensors.push(Tensor {
            name: name.into(),
            dims: dims.to_vec(),
            type_id,
            bytes,
        });
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        let array_header = |out: &mut Vec<u8>, element_type: u32, count: u64| {
            out.extend_from_slice(&9u32.to_le_bytes());
            out.extend_from_slice(&element_type.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        };
        for (key, value) in &self.kv {
            string(&mut out, key);
            match value {
                Value::U32(v) => {
                    out.extend_from_slice(&4u32.to_le_bytes());
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Value::Str(s) => {
                    out.extend_from_slice(&8u32.to_le_bytes());
                    string(&mut out, s);
                }
                Value::StrArray(items) => {
                    out.extend_from_slice(&9u32.to_le_bytes());
                    out.extend_from_slice(&8u32.to_le_bytes());
                    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    for s in items {
                        string(&mut out, s);
                    }
                }
                Value::F32(v) => {
                    out.extend_from_slice(&6u32.to_le_bytes());
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Value::Bool(v) => {
                    out.extend_from_slice(&7u32.to_le_bytes());
                    out.push(u8::from(*v));
                }
                Value::U32Array(items) => {
                    array_header(&mut out, 4, items.len() as u64);
                    for v in items {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
                Value::I32Array(items) => {
                    array_header(&mut out, 5, items.len() as u64);
                    for v in items {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
                Value::F32Array(items) => {
                    array_header(&mut out, 6, items.len() as u64);
                    for v in items {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
                Value::RawArray {
                    element_type,
                    count,
                    bytes,
                } => {
                    array_header(&mut out, *element_type, *count);
                    out.extend_from_slice(bytes);
                }
            }
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.type_id.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset += t.bytes.div_ceil(32) * 32;
        }
        while out.len() % 32 != 0 {
            out.push(0);
        }
        out.resize(out.len() + offset as usize, 0);
        out
    }
}
