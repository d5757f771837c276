//! A model that fails to load on a GPU variant makes selection fall back to the next candidate:
//! here the vulkan variant (lavapipe) is tried first and the load on it fails (cancelled by the
//! progress callback, standing in for "out of device memory"), so the model ends up on the CPU
//! backend of the libraries already loaded.

mod common;

use gguf_loader::loader::VariantKind;
use gguf_loader::{GpuLayers, Model, ModelParams};

#[test]
fn model_load_failure_on_the_gpu_falls_back_to_the_cpu() {
    std::env::set_var("GGML_VK_VISIBLE_DEVICES", "0");
    let options = common::options_with_pretend_gpu(None);
    let (selection, model) = Model::load_best(&options, common::tiny_llama(), |variant| {
        match variant.kind() {
            VariantKind::Gpu => ModelParams::new()
                .with_gpu_layers(GpuLayers::All)
                .with_progress(|_| false),
            VariantKind::Cpu => ModelParams::new(),
        }
    })
    .expect("falls back to the CPU");
    let (_, reason) = selection
        .rejected
        .iter()
        .find(|(n, _)| n == "vulkan")
        .expect("vulkan was tried first");
    assert!(
        reason.starts_with("model load failed") && reason.contains("cancelled"),
        "{reason}"
    );
    assert!(
        selection.variant.starts_with("cpu-") && selection.variant.contains("vulkan libraries"),
        "{}",
        selection.variant
    );
    assert!(!model.tokenize("hello", true, false).unwrap().is_empty());
}
