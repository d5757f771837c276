//! Vulkan end to end on Mesa's lavapipe: with every layer offloaded, generation runs on the
//! Vulkan device (listed, and llama.cpp assigns the layers to it), and its choices agree with the
//! CPU run's (the C reference over the cpu variant): the first token is equal, and with the CPU's
//! tokens fed to both, Vulkan's top-1 equals the CPU's at every step where the CPU's choice leads
//! by more than `CLEAR_MARGIN` (near-ties may split between backends and are listed).

mod common;

use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{
    Batch, Context, ContextParams, GenerateOptions, GpuLayers, Model, ModelParams, Sampler, Token,
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
    // The CPU reference (the C program over the cpu variant), with each step's margin.
    let cpu = common::c_greedy_with_margins(&common::cpu_dir(), &path, n, 2, 256, 256, prompt);
    assert_eq!(vulkan.first(), cpu.first().map(|(id, _)| id), "first token");
    // Teacher-forced on Vulkan: feed the CPU's tokens and compare Vulkan's top-1 at every step
    // where the CPU's choice leads the runner-up clearly. Across backends, greedy ids may split
    // on near-ties (different summation order), after which free-running sequences diverge.
    let prompt_tokens = model.tokenize(prompt, true, true).unwrap();
    context.clear_memory();
    let mut batch = Batch::new(256, 1).unwrap();
    batch.add_sequence(&prompt_tokens, 0, 0, true).unwrap();
    context.decode(&mut batch).unwrap();
    let start = prompt_tokens.len() as i32;
    let (mut compared, mut near_ties) = (0, 0);
    for (step, (id, margin)) in cpu.iter().enumerate() {
        let position = start + step as i32;
        let logits = context.logits(-1).unwrap();
        let top = (0..logits.len())
            .max_by(|a, b| logits[*a].total_cmp(&logits[*b]))
            .unwrap() as i32;
        if *margin > CLEAR_MARGIN {
            compared += 1;
            assert_eq!(
                top, *id,
                "step {step}: Vulkan picks {top}, the CPU {id} with a lead of {margin}"
            );
        } else {
            near_ties += 1;
            println!("step {step}: near-tie (CPU lead {margin}), Vulkan {top}, CPU {id}");
        }
        batch.clear();
        batch.add(Token(*id), position, &[0], true).unwrap();
        context.decode(&mut batch).unwrap();
    }
    println!("{compared} steps compared on top-1, {near_ties} near-ties listed above");
    assert!(compared * 2 >= cpu.len(), "too few clear steps to compare");
}

/// A CPU lead (in logits) above which Vulkan must pick the same token.
const CLEAR_MARGIN: f32 = 0.5;
