//! The real vulkan variant: versions equal to the manifest's, and its plugin enumerates Mesa's
//! lavapipe device (a CPU-type Vulkan device, so GGML_VK_VISIBLE_DEVICES=0 is needed).

mod common;

use gguf_loader::loader::{Backend, LlamaLibrary, Manifest, PluginSelection, VariantDirectory};

#[test]
fn vulkan_plugin_enumerates_lavapipe() {
    // SAFETY: set before any thread of this test binary reads the environment (this binary has
    // one test) and before llama.cpp is loaded.
    std::env::set_var("GGML_VK_VISIBLE_DEVICES", "0");
    let dir = VariantDirectory::open(&common::vulkan_dir()).expect("vulkan variant directory");
    assert_eq!(dir.kind, "vulkan");
    assert!(
        dir.backends.contains(&Backend::Vulkan),
        "{:?}",
        dir.backends
    );
    let library = LlamaLibrary::load(&dir, PluginSelection::AllInDirectory)
        .expect("loading the vulkan variant");

    let manifest = Manifest::read(&common::vulkan_dir())
        .unwrap()
        .expect("vulkan variant has a manifest");
    assert_eq!(library.llama_version(), manifest.llama_version);
    assert_eq!(library.ggml_version(), manifest.ggml_version);
    // The RPC plugin comes with the build (an auxiliary backend, not a variant).
    assert_eq!(
        manifest.backends,
        vec!["cpu".to_string(), "vulkan".to_string(), "rpc".to_string()]
    );
    assert_eq!(
        dir.aux_backends(),
        vec![gguf_loader::loader::AuxBackend::Rpc]
    );
    assert!(library.supports_rpc() && library.llama_supports_rpc());

    let devices = library.devices();
    let vulkan: Vec<_> = devices.iter().filter(|d| d.backend == "Vulkan").collect();
    assert!(!vulkan.is_empty(), "no Vulkan device; devices: {devices:?}");
    assert!(
        vulkan
            .iter()
            .any(|d| d.description.to_lowercase().contains("llvmpipe")),
        "lavapipe (llvmpipe) not among {vulkan:?}"
    );
    assert!(
        devices.iter().any(|d| d.backend == "CPU"),
        "the CPU backend is loaded too: {devices:?}"
    );
}
