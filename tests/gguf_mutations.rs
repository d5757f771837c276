//! A deterministic mutation run over the GGUF reader (the cargo-fuzz target's body without
//! libFuzzer, so it runs on any toolchain): seeds are valid files, mutations flip, insert, delete
//! and overwrite bytes with interesting values. Nothing may panic; accepted files must be
//! self-consistent.

mod common;

use gguf_loader::gguf::{inspect_bytes, MemoryEstimate};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8], header: usize) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(header.min(data.len()).max(1));
        match rng.below(5) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = [0u8, 0xff, 0x7f, 0x80, 1][rng.below(5)],
            2 => {
                let value = [0u64, u64::MAX, 1 << 32, 1 << 62, 0x7fff_ffff][rng.below(5)];
                let end = (at + 8).min(data.len());
                data[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
            }
            3 => {
                data.insert(at, rng.next() as u8);
            }
            _ => {
                if data.len() > 1 {
                    data.remove(at);
                }
            }
        }
    }
    if rng.below(8) == 0 {
        let cut = rng.below(data.len());
        data.truncate(cut);
    }
    data
}

#[test]
fn mutated_headers_never_panic() {
    let tiny = std::fs::read(common::tiny_llama()).unwrap();
    let header = inspect_bytes(&tiny).unwrap().data_offset as usize;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut rejected) = (0, 0);
    let runs: usize = std::env::var("GGUF_MUTATION_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    for _ in 0..runs {
        let input = mutate(&mut rng, &tiny, header);
        let started = std::time::Instant::now();
        let result = inspect_bytes(&input);
        assert!(
            started.elapsed().as_secs() < 2,
            "an input took {:?}",
            started.elapsed()
        );
        match result {
            Ok(file) => {
                accepted += 1;
                for t in &file.tensors {
                    if let Some(size) = t.size_bytes {
                        assert!(file.data_offset + t.offset + size <= file.file_size);
                    }
                }
                let _ = MemoryEstimate::new(&file, 512, 2);
                let _ = gguf_loader::gguf::check_hyperparameters(&file, &[]);
            }
            Err(_) => rejected += 1,
        }
    }
    println!("{runs} mutated inputs: {accepted} accepted, {rejected} rejected, no panic");
    assert_eq!(accepted + rejected, runs);
    assert!(rejected > runs / 2);
}
