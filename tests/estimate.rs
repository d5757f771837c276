//! The memory estimate against what llama.cpp actually allocates (read from its log).

mod common;

use gguf_loader::gguf::{auto_gpu_layers, inspect, MemoryEstimate};
use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{Context, ContextParams, Model, ModelParams};

/// The sum of the MiB figures of the log lines containing `needle` (Gemma 3 logs one KV buffer
/// for its global layers and one for its sliding-window layers).
fn logged_mib(needle: &str) -> f64 {
    let lines = common::LLAMA_LOG.lock().unwrap();
    let figures: Vec<f64> = lines
        .iter()
        .filter(|l| l.contains(needle))
        .map(|line| {
            let after = line
                .split('=')
                .nth(1)
                .unwrap_or_else(|| panic!("no '=' in {line:?}"));
            after
                .trim()
                .trim_end_matches("MiB")
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("no number in {line:?}"))
        })
        .collect();
    assert!(!figures.is_empty(), "no log line with {needle:?}");
    figures.iter().sum()
}

/// Weights: the estimate equals llama.cpp's llama_model_size. KV cache: within 2 % of the KV
/// buffer llama.cpp allocates for the same n_ctx (n_ctx below Gemma 3's sliding window, whose
/// smaller per-layer caches the estimate does not model).
#[test]
fn estimate_matches_what_llama_cpp_allocates() {
    common::capture_llama_log(log::LevelFilter::Trace);
    let dir = VariantDirectory::open(&common::cpu_dir()).unwrap();
    let library = LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).unwrap();
    for path in [common::smollm2(), common::gemma3()] {
        let file = inspect(&path).unwrap();
        let n_ctx = 512;
        let estimate = MemoryEstimate::new(&file, n_ctx, 2);
        let model = Model::load(&library, &path, ModelParams::new()).unwrap();
        assert_eq!(estimate.weight_bytes(), model.size(), "{}", path.display());
        common::LLAMA_LOG.lock().unwrap().clear();
        let _context =
            Context::new(&model, ContextParams::default().with_n_ctx(n_ctx as u32)).unwrap();
        let kv_mib = logged_mib("KV buffer size");
        let estimated_mib = estimate.kv_bytes() as f64 / (1 << 20) as f64;
        let error = (estimated_mib - kv_mib).abs() / kv_mib;
        println!(
            "{}: KV estimate {estimated_mib:.2} MiB, llama.cpp {kv_mib:.2} MiB ({:.2} %)",
            path.display(),
            error * 100.0
        );
        assert!(error < 0.02, "KV estimate off by {:.1} %", error * 100.0);
        let n_layer = file.arch_u64("block_count").unwrap() as u32;
        assert_eq!(auto_gpu_layers(&file, 0, n_ctx), 0);
        assert_eq!(
            auto_gpu_layers(&file, 64 << 30, n_ctx),
            n_layer + 1,
            "everything fits in 64 GiB"
        );
        // Room for the reserve (compute buffer, 5 % margin) and about half of the layers.
        let half_layers: u64 = estimate
            .layer_weights
            .iter()
            .zip(&estimate.layer_kv)
            .map(|(w, k)| w + k)
            .sum::<u64>()
            / 2;
        let half = ((estimate.compute_bytes + half_layers) as f64 / 0.95) as u64;
        let some = auto_gpu_layers(&file, half, n_ctx);
        assert!(
            some > 0 && some < n_layer,
            "{some} layers of {n_layer} in {half} bytes"
        );
    }
}
