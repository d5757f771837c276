//! Memory estimates from the tensor table and hyper-parameters, and the number of layers that
//! fit on a device.

use super::{GgufFile, GgufValue};

/// Estimated memory of a model with a context of `n_ctx` tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Weight bytes of each repeating layer (`blk.N.*`).
    pub layer_weights: Vec<u64>,
    /// Token-embedding bytes (`token_embd.*`), kept on the CPU by llama.cpp.
    pub embedding_bytes: u64,
    /// Output head bytes (`output.*`, `output_norm.*`; the tied embedding counts when there is no
    /// separate output matrix).
    pub output_bytes: u64,
    /// Other tensors.
    pub other_bytes: u64,
    /// Whether the output head reuses the token embedding (then `output_bytes` includes it).
    pub tied_output: bool,
    /// KV-cache bytes per layer for `n_ctx` tokens.
    pub layer_kv: Vec<u64>,
    /// A rough compute-buffer estimate for a 512-token micro-batch.
    pub compute_bytes: u64,
}

impl MemoryEstimate {
    /// Estimates `file` with `n_ctx` context tokens and K/V caches of `kv_bytes_per_element`
    /// (2 for F16, llama.cpp's default).
    pub fn new(file: &GgufFile, n_ctx: u64, kv_bytes_per_element: u64) -> Self {
        // The layer count comes from the file: trust it only as far as the tensor table backs
        // it (a layer has at least one tensor), so a corrupt count cannot drive an allocation.
        let tensor_layers = file
            .tensors
            .iter()
            .filter_map(|t| t.layer())
            .max()
            .map_or(0, |l| l as usize + 1);
        let n_layer = match file.arch_u64("block_count") {
            Some(n) if n as usize <= file.tensors.len() => n as usize,
            _ => tensor_layers,
        };
        let mut layer_weights = vec![0u64; n_layer];
        let (mut embedding_bytes, mut output_bytes, mut other_bytes) = (0u64, 0u64, 0u64);
        let mut has_output_matrix = false;
        for t in &file.tensors {
            let size = t.size_bytes.unwrap_or(0);
            match t.layer() {
                Some(layer) if (layer as usize) < n_layer => layer_weights[layer as usize] += size,
                _ if t.name.starts_with("token_embd.") => embedding_bytes += size,
                _ if t.name.starts_with("output.") || t.name.starts_with("output_norm.") => {
                    has_output_matrix |= t.name == "output.weight";
                    output_bytes += size
                }
                _ => other_bytes += size,
            }
        }
        if !has_output_matrix {
            // Tied embeddings: the output head reads token_embd.
            output_bytes += embedding_bytes;
        }
        let n_embd = file.arch_u64("embedding_length").unwrap_or(0);
        let n_head = file.arch_u64("attention.head_count").unwrap_or(1).max(1);
        let n_head_kv = per_layer(file, "attention.head_count_kv", n_layer)
            .unwrap_or_else(|| vec![n_head; n_layer]);
        let key_length = file
            .arch_u64("attention.key_length")
            .unwrap_or(n_embd / n_head);
        let value_length = file
            .arch_u64("attention.value_length")
            .unwrap_or(n_embd / n_head);
        let layer_kv = n_head_kv
            .iter()
            .map(|kv_heads| {
                n_ctx
                    .saturating_mul(
                        kv_heads.saturating_mul(key_length.saturating_add(value_length)),
                    )
                    .saturating_mul(kv_bytes_per_element)
            })
            .collect();
        let n_vocab = file
            .get("tokenizer.ggml.tokens")
            .and_then(GgufValue::as_array)
            .map(|a| a.len() as u64)
            .unwrap_or(0);
        let n_ff = per_layer(file, "feed_forward_length", n_layer)
            .and_then(|v| v.into_iter().max())
            .unwrap_or(4 * n_embd);
        let ubatch = 512u64.min(n_ctx.max(1));
        // Logits, plus the widest activations and attention scores of one micro-batch.
        let widths = n_vocab
            .saturating_add(n_embd.saturating_mul(4))
            .saturating_add(n_ff.saturating_mul(2));
        let compute_bytes = (4 * ubatch)
            .saturating_mul(widths)
            .saturating_add((4 * ubatch * n_ctx.min(4096)).saturating_mul(n_head));
        MemoryEstimate {
            layer_weights,
            embedding_bytes,
            output_bytes,
            other_bytes,
            tied_output: !has_output_matrix,
            layer_kv,
            compute_bytes,
        }
    }

    /// Sum of all weights in the file (a tied output head counted once).
    pub fn weight_bytes(&self) -> u64 {
        let output = if self.tied_output {
            self.output_bytes - self.embedding_bytes
        } else {
            self.output_bytes
        };
        self.layer_weights.iter().sum::<u64>() + self.embedding_bytes + output + self.other_bytes
    }

    /// Sum of the KV cache.
    pub fn kv_bytes(&self) -> u64 {
        self.layer_kv.iter().sum()
    }
}

fn per_layer(file: &GgufFile, suffix: &str, n_layer: usize) -> Option<Vec<u64>> {
    let arch = file.architecture()?;
    match file.get(&format!("{arch}.{suffix}"))? {
        GgufValue::Array(values) => {
            let v: Vec<u64> = values.iter().filter_map(GgufValue::as_u64).collect();
            (v.len() == n_layer).then_some(v)
        }
        other => other.as_u64().map(|v| vec![v; n_layer]),
    }
}

/// How many layers of `file` fit into `free_device_memory` bytes with a context of `n_ctx`:
/// each offloaded layer needs its weights and its KV cache; the compute buffer and a 5 % margin
/// are reserved first. Returns `n_layer + 1` when the output head fits too (llama.cpp's "all").
pub fn auto_gpu_layers(file: &GgufFile, free_device_memory: u64, n_ctx: u64) -> u32 {
    let estimate = MemoryEstimate::new(file, n_ctx, 2);
    let reserve = estimate
        .compute_bytes
        .saturating_add(free_device_memory / 20);
    let mut budget = free_device_memory.saturating_sub(reserve);
    let mut layers = 0u32;
    for (weights, kv) in estimate.layer_weights.iter().zip(&estimate.layer_kv) {
        let need = weights.saturating_add(*kv);
        if need > budget {
            return layers;
        }
        budget -= need;
        layers += 1;
    }
    if estimate.output_bytes <= budget {
        layers + 1
    } else {
        layers
    }
}
