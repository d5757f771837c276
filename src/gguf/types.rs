//! ggml tensor types as stored in GGUF files: block size and bytes per block.

/// A tensor element type (`enum ggml_type`), with the BitNet fork's types named separately
/// because their numbers collide with upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TensorType(pub u32);

/// (id, name, elements per block, bytes per block) for every type upstream ggml 0.26.0 knows.
/// Checked against the real `ggml_blck_size` / `ggml_type_size` by `tests/gguf_types.rs`.
pub const UPSTREAM_TYPES: &[(u32, &str, u64, u64)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 36),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
    (42, "Q2_0", 128, 34),
];

/// Type ids of Microsoft's BitNet fork (I2_S, I8_S, TL1, TL2, as its ggml.h numbers them),
/// which reuse numbers upstream gives to other types (39 is upstream's MXFP4) or leaves
/// unassigned.
pub const BITNET_TYPES: &[(u32, &str)] = &[(36, "I2_S"), (37, "I8_S"), (38, "TL1"), (39, "TL2")];

impl TensorType {
    /// Upstream name, block size and block bytes, if upstream knows the id.
    pub fn upstream(self) -> Option<(&'static str, u64, u64)> {
        UPSTREAM_TYPES
            .iter()
            .find(|(id, ..)| *id == self.0)
            .map(|(_, name, block, bytes)| (*name, *block, *bytes))
    }

    /// The BitNet fork's name for the id, if it is one of its types.
    pub fn bitnet_name(self) -> Option<&'static str> {
        BITNET_TYPES
            .iter()
            .find(|(id, _)| *id == self.0)
            .map(|(_, name)| *name)
    }

    /// A readable name.
    pub fn name(self) -> String {
        match (self.upstream(), self.bitnet_name()) {
            (Some((name, ..)), _) => name.to_string(),
            (None, Some(name)) => format!("{name} (BitNet)"),
            _ => format!("type {}", self.0),
        }
    }

    /// Bytes of a BitNet-fork tensor of `n_elements` elements, where its layout is known: I2_S
    /// packs four ternary values per byte in rows of whole 128-value blocks, then one f32 scale
    /// padded to 32 bytes (what the fork's `ggml_nbytes` gives). `None` for the other fork
    /// types, a row length that is not a multiple of 128, or overflow.
    pub fn bitnet_bytes_for(self, row_length: u64, n_elements: u64) -> Option<u64> {
        if self.bitnet_name() != Some("I2_S") || row_length % 128 != 0 {
            return None;
        }
        (n_elements / 4).checked_add(32)
    }

    /// Bytes for `n_elements` elements (`None` for unknown types, a row length that is not a
    /// multiple of the block size, or overflow).
    pub fn bytes_for(self, row_length: u64, n_elements: u64) -> Option<u64> {
        let (_, block, bytes) = self.upstream()?;
        if row_length % block != 0 {
            return None;
        }
        (n_elements / block).checked_mul(bytes)
    }
}
