//! Vulkan end to end on Mesa's lavapipe: with every layer offloaded, generation runs on the
//! Vulkan device (listed, and llama.cpp assigns the layers to it), and its greedy tokens equal
//! the CPU run's (the C reference over the cpu variant). Gemma 3 is used: its greedy choices have
//! clear margins, so CPU and Vulkan arithmetic agree on them.

mod common;

use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{
    Context, ContextParams, GenerateOptions, GpuLayers, Model, ModelParams, Sampler,
};

#[test]
fn generation_runs_on_lavapipe_and_matches_the_cpu() {
    common::capture_llama_log(log::LevelFilter::Info);
    // Set before llama.cpp is loaded; this binary has one test.
    std::env::set_var("GGML_VK_VISIBLE_DEVICES", "0");
    let dir = VariantDirectory::open(&common::vulkan_dir()).expect("vulkan variant");
    let library =
        LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load vulkan variant");
    let devices = library.devices();
    assert!(
        devices
            .iter()
            .any(|d| d.backend == "Vulkan" && d.description.contains("llvmpipe")),
        "{devices:?}"
    );

    let path = common::gemma3();
    let model = Model::load(
        &library,
        &path,
        ModelParams::new().with_gpu_layers(GpuLayers::All),
    )
    .unwrap();
    let n_layer = model.n_layer();
    {
        let lines = common::LLAMA_LOG.lock().unwrap();
        let offload = lines
            .iter()
            .find(|l| l.contains("offloaded"))
            .expect("llama.cpp reports offloading");
        assert!(
            offload.contains(&format!("{}/{} layers", n_layer + 1, n_layer + 1)),
            "{offload}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("Vulkan0") && l.contains("buffer size")),
            "weights on Vulkan0"
        );
    }
    let prompt = "The capital of France is";
    let n = 12;
    let mut context = Context::new(
        &model,
        ContextParams::default()
            .with_n_ctx(256)
            .with_n_batch(256)
            .with_threads(2),
    )
    .unwrap();
    let mut sampler = Sampler::greedy(&model).unwrap();
    let mut generation = context
        .generate(
            prompt,
            &mut sampler,
            GenerateOptions::default().with_max_tokens(n),
        )
        .unwrap();
    let vulkan: Vec<i32> = generation
        .by_ref()
        .filter_map(|p| p.unwrap().token)
        .map(|t| t.id())
        .collect();
    let summary = generation.summary().unwrap().clone();
    println!(
        "lavapipe: {} tokens at {:.2} tok/s",
        summary.generated_tokens,
        summary.tokens_per_second()
    );
    let cpu = common::c_greedy_ids(&common::cpu_dir(), &path, n, 2, 256, 256, prompt);
    assert_eq!(
        vulkan, cpu,
        "Vulkan (lavapipe) and CPU greedy tokens differ"
    );
}
