//! Fuzzes the pure-Rust GGUF reader: any input must give `Ok` or a typed `GgufError`, never a
//! panic, a hang or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = gguf_loader::gguf::inspect_bytes(data) {
        // Whatever was accepted must be self-consistent.
        for tensor in &file.tensors {
            if let Some(size) = tensor.size_bytes {
                assert!(file.data_offset + tensor.offset + size <= file.file_size);
            }
        }
        let _ = gguf_loader::gguf::MemoryEstimate::new(&file, 512, 2);
        // The hyper-parameter checks must never panic either.
        let _ = gguf_loader::gguf::check_hyperparameters(&file, &[]);
    }
});
