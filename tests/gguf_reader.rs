//! The pure-Rust GGUF reader: real models, format detection, and a bad-input suite (truncation,
//! flipped bytes, huge counts, wrong magic, empty file, directory, missing file, non-UTF-8 path).
//! No llama.cpp library is loaded here.

mod common;
mod gguf_build;

use std::path::{Path, PathBuf};
use std::time::Instant;

use gguf_build::{Builder, Value};
use gguf_loader::gguf::{
    inspect, inspect_bytes, Family, GgufError, MemoryEstimate, HEADER_MEMORY_LIMIT,
};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn small() -> Builder {
    Builder::new("llama")
        .kv("llama.block_count", Value::U32(1))
        .kv(
            "tokenizer.ggml.tokens",
            Value::StrArray(vec!["a".into(), "b".into()]),
        )
        .f32_tensor("token_embd.weight", &[8, 2])
        .f32_tensor("blk.0.attn_q.weight", &[8, 8])
}

#[test]
fn real_models_are_read_without_loading_llama() {
    for (path, arch, n_layer) in [
        (common::smollm2(), "llama", 30),
        (common::gemma3(), "gemma3", 18),
    ] {
        let file = inspect(&path).unwrap();
        assert_eq!(file.version, 3);
        assert_eq!(file.architecture(), Some(arch));
        assert_eq!(file.arch_u64("block_count"), Some(n_layer));
        assert_eq!(file.family, Family::Upstream);
        assert!(file.tensors.len() > 100);
        let data: u64 = file.tensors.iter().map(|t| t.size_bytes.unwrap()).sum();
        assert!(file.data_offset + data <= file.file_size);
        let estimate = MemoryEstimate::new(&file, 512, 2);
        assert_eq!(
            estimate.weight_bytes(),
            data,
            "every tensor is counted once"
        );
        assert_eq!(estimate.layer_weights.len() as u64, n_layer);
    }
    let tiny = inspect(common::tiny_llama()).unwrap();
    assert_eq!(tiny.tensors.len(), 21);
}

#[test]
fn other_formats_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut v1 = small().build();
    v1[4..8].copy_from_slice(&1u32.to_le_bytes());
    assert!(
        matches!(inspect(write(dir.path(), "v1.gguf", &v1)), Err(GgufError::OldFormat { format, .. }) if format == "GGUF v1")
    );
    let mut v2 = small();
    v2.version = 2;
    assert_eq!(
        inspect(write(dir.path(), "v2.gguf", &v2.build()))
            .unwrap()
            .version,
        2
    );
    let mut v9 = small().build();
    v9[4..8].copy_from_slice(&9u32.to_le_bytes());
    assert!(matches!(
        inspect(write(dir.path(), "v9.gguf", &v9)),
        Err(GgufError::UnsupportedVersion { version: 9, .. })
    ));
    for (magic, name) in [(&b"tjgg"[..], "GGJT"), (b"lmgg", "GGML"), (b"fmgg", "GGMF")] {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&[0; 64]);
        match inspect(write(dir.path(), "old.bin", &bytes)) {
            Err(e @ GgufError::OldFormat { .. }) => assert!(
                e.to_string().contains(name) && e.to_string().contains("convert"),
                "{e}"
            ),
            other => panic!("{name}: {other:?}"),
        }
    }
    let mut safetensors = 20u64.to_le_bytes().to_vec();
    safetensors.extend_from_slice(br#"{"a":{"dtype":"F32"}}"#);
    assert!(
        matches!(inspect(write(dir.path(), "m.safetensors", &safetensors)), Err(GgufError::OtherFormat { format, .. }) if format == "safetensors")
    );
    let zip = b"PK\x03\x04rest of a zip archive".to_vec();
    assert!(
        matches!(inspect(write(dir.path(), "m.pt", &zip)), Err(GgufError::OtherFormat { format, .. }) if format.contains("PyTorch"))
    );
    let pickle = b"\x80\x02}q\x00".to_vec();
    assert!(
        matches!(inspect(write(dir.path(), "m.bin", &pickle)), Err(GgufError::OtherFormat { format, .. }) if format.contains("PyTorch"))
    );
    assert!(matches!(
        inspect(write(dir.path(), "wrong.bin", b"ABCDEFGH12345678")),
        Err(GgufError::NotGguf { .. })
    ));
}

#[test]
fn bitnet_files_are_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let arch = Builder::new("bitnet-b1.58")
        .f32_tensor("token_embd.weight", &[8, 2])
        .build();
    assert_eq!(
        inspect(write(dir.path(), "b.gguf", &arch)).unwrap().family,
        Family::BitNet
    );
    let typed = Builder::new("llama")
        .raw_tensor("blk.0.ffn_up.weight", &[128, 4], 36, 160)
        .build();
    let file = inspect(write(dir.path(), "i2s.gguf", &typed)).unwrap();
    assert_eq!(file.family, Family::BitNet);
    // I2_S: 512 values at 4 per byte, then the f32 scale padded to 32 bytes.
    assert_eq!(file.tensors[0].size_bytes, Some(160));
    // A row that is not whole 128-value blocks is refused.
    let ragged = Builder::new("llama")
        .raw_tensor("blk.0.ffn_up.weight", &[96, 4], 36, 128)
        .build();
    assert!(inspect(write(dir.path(), "ragged.gguf", &ragged)).is_err());
    // The lookup-table types are not sized (their layout is per model).
    let tl1 = Builder::new("llama")
        .raw_tensor("blk.0.ffn_up.weight", &[128, 4], 38, 128)
        .build();
    let file = inspect(write(dir.path(), "tl1.gguf", &tl1)).unwrap();
    assert_eq!(file.family, Family::BitNet);
    assert_eq!(file.tensors[0].size_bytes, None);
    let unknown = Builder::new("llama").raw_tensor("x", &[32], 77, 32).build();
    assert!(matches!(
        inspect(write(dir.path(), "u.gguf", &unknown)),
        Err(GgufError::UnknownTensorType { type_id: 77, .. })
    ));
}

#[test]
fn paths_that_are_not_model_files() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        inspect(dir.path()),
        Err(GgufError::NotAFile { .. })
    ));
    assert!(matches!(
        inspect(dir.path().join("missing.gguf")),
        Err(GgufError::NotFound { .. })
    ));
    assert!(matches!(
        inspect(write(dir.path(), "empty.gguf", b"")),
        Err(GgufError::Truncated { .. })
    ));
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"model-\xff\xfe.gguf");
        let path = dir.path().join(name);
        std::fs::write(&path, small().build()).unwrap();
        assert!(inspect(&path).is_ok(), "a non-UTF-8 path is just a path");
    }
}

#[test]
fn truncation_at_every_cut_point_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(common::tiny_llama()).unwrap();
    let file = inspect(common::tiny_llama()).unwrap();
    let header = file.data_offset as usize;
    let mut cuts: Vec<usize> = (0..header).collect();
    cuts.extend((header..bytes.len()).step_by(4099));
    cuts.push(bytes.len() - 1);
    for cut in cuts {
        let path = write(dir.path(), "cut.gguf", &bytes[..cut]);
        match inspect(&path) {
            Err(GgufError::Truncated { .. } | GgufError::Corrupt { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn flipped_bytes_never_crash_and_structural_ones_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = small().build();
    let header = inspect(write(dir.path(), "ok.gguf", &bytes))
        .unwrap()
        .data_offset as usize;
    let mut errors = 0;
    for position in 0..header {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut broken = bytes.clone();
            broken[position] ^= mask;
            let started = Instant::now();
            let result = inspect(write(dir.path(), "flip.gguf", &broken));
            assert!(
                started.elapsed().as_secs() < 2,
                "flip at {position} took too long"
            );
            if result.is_err() {
                errors += 1;
            }
            if position < 24 && !(4..8).contains(&position) {
                // magic, tensor count, kv count
                assert!(result.is_err(), "flip {mask:#x} at {position} accepted");
            }
        }
    }
    assert!(
        errors > header,
        "most header flips are caught ({errors} of {})",
        header * 3
    );
}

#[test]
fn huge_counts_and_lengths_are_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = small().build();
    // Tensor count, metadata count, the first key's length, the token array's length.
    let key_len_at = 24;
    let array_len_at = {
        let needle = b"tokenizer.ggml.tokens";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        at + needle.len() + 4 + 4
    };
    for (at, what) in [
        (8, "tensor count"),
        (16, "metadata count"),
        (key_len_at, "key length"),
        (array_len_at, "array length"),
    ] {
        for huge in [u64::MAX, u64::MAX / 2, 1 << 40] {
            let mut broken = bytes.clone();
            broken[at..at + 8].copy_from_slice(&huge.to_le_bytes());
            let result = inspect(write(dir.path(), "huge.gguf", &broken));
            assert!(
                matches!(result, Err(GgufError::Corrupt { .. })),
                "{what} = {huge}: {result:?}"
            );
        }
    }
}

#[test]
fn inconsistent_tensor_tables_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let check = |builder: Builder, name: &str| {
        let result = inspect(write(dir.path(), name, &builder.build()));
        assert!(
            matches!(
                result,
                Err(GgufError::Corrupt { .. } | GgufError::Truncated { .. })
            ),
            "{name}: {result:?}"
        );
    };
    check(
        Builder::new("llama").f32_tensor("t", &[0, 4]),
        "zero-dim.gguf",
    );
    check(
        Builder::new("llama").f32_tensor("t", &[1, 1, 1, 1, 1]),
        "five-dims.gguf",
    );
    check(
        Builder::new("llama").raw_tensor("t", &[u64::MAX, 4], 0, 16),
        "overflow.gguf",
    );
    check(
        Builder::new("llama")
            .f32_tensor("t", &[4])
            .f32_tensor("t", &[4]),
        "duplicate.gguf",
    );
    check(
        Builder::new("llama").raw_tensor("q", &[33, 1], 2, 32),
        "q4-row.gguf",
    );
    // A tensor claiming more data than the file has.
    let mut b = Builder::new("llama").f32_tensor("t", &[8]);
    b.tensors[0].bytes = 0;
    check(b, "short-data.gguf");
}

/// A metadata array of `count` one-byte (u8) elements, with the elements present in the file.
fn byte_array(count: u64) -> Value {
    Value::RawArray {
        element_type: 0,
        count,
        bytes: vec![7; count as usize],
    }
}

#[test]
fn metadata_arrays_are_bounded_by_a_total_memory_budget() {
    // Each element of an array becomes a Rust value of tens of bytes: ten million one-byte
    // elements (a 10 MB file) would take over 256 MiB. Refused before anything is reserved,
    // naming the key.
    let start = Instant::now();
    let bytes = small().kv("test.bytes", byte_array(10_000_000)).build();
    match inspect_bytes(&bytes) {
        Err(GgufError::HeaderTooLarge {
            key, needed, limit, ..
        }) => {
            assert_eq!(key, "test.bytes");
            assert_eq!(limit, HEADER_MEMORY_LIMIT);
            assert!(needed > limit, "{needed} > {limit}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed().as_secs() < 5,
        "refused without reading the elements"
    );
    // The budget is for the whole header: arrays each within it, together over it, fail at the
    // one that crosses the limit.
    let builder = small()
        .kv("test.bytes.0", byte_array(5_000_000))
        .kv("test.bytes.1", byte_array(5_000_000));
    match inspect_bytes(&builder.build()) {
        Err(GgufError::HeaderTooLarge { key, .. }) => assert_eq!(key, "test.bytes.1"),
        other => panic!("{other:?}"),
    }
    // Below the budget the same kind of array is read.
    let file = inspect_bytes(&small().kv("test.bytes", byte_array(100_000)).build()).unwrap();
    assert_eq!(
        file.get("test.bytes").unwrap().as_array().unwrap().len(),
        100_000
    );
    let error = GgufError::HeaderTooLarge {
        path: "m.gguf".into(),
        key: "k".into(),
        needed: 1,
        limit: 0,
    };
    assert_eq!(error.category(), gguf_loader::Category::Model);
    assert!(!error.hint().is_empty());
}

#[test]
fn four_billion_one_byte_elements_are_refused_without_reserving_memory() {
    // A sparse 5 GiB file whose only content is a header declaring an array of four billion u8
    // elements: the count fits in the bytes left, so only the memory budget stops it (before it
    // would reserve over 100 GiB).
    let dir = tempfile::tempdir().unwrap();
    let bytes = small()
        .kv(
            "tokenizer.ggml.token_type",
            Value::RawArray {
                element_type: 0,
                count: 4_000_000_000,
                bytes: Vec::new(),
            },
        )
        .build();
    let path = dir.path().join("sparse.gguf");
    std::fs::write(&path, &bytes).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(5 << 30)
        .unwrap();
    let start = Instant::now();
    match inspect(&path) {
        Err(GgufError::HeaderTooLarge { key, .. }) => {
            assert_eq!(key, "tokenizer.ggml.token_type")
        }
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed().as_secs() < 5);
}
