//! Variant ranking on injected hardware profiles (pure: no library is loaded; the fake
//! directories below fail at dlopen, before any llama.cpp code could run).

use std::collections::BTreeSet;

use gguf_loader::hardware::{
    cuda_devices_from, CpuFeature, CpuInfo, CudaDriver, GpuApi, GpuInfo, GpuType, HardwareProfile,
};
use gguf_loader::loader::variant::{best_cpu_module, cpu_isa_variants, CPU_MODULES};
use gguf_loader::loader::{load_best, rank, Backend, LibraryVariant, SearchPaths, SelectOptions};
use gguf_loader::LoadError;

use CpuFeature::*;

const HASWELL: &[CpuFeature] = &[Sse42, Avx, Avx2, Fma, F16c, Bmi2];
const AVX512: &[CpuFeature] = &[Avx512F, Avx512Cd, Avx512Vl, Avx512Dq, Avx512Bw];

fn cpu(arch: &str, features: &[&[CpuFeature]]) -> CpuInfo {
    CpuInfo {
        arch: arch.into(),
        vendor: String::new(),
        brand: String::new(),
        family: 0,
        model: 0,
        features: features
            .iter()
            .flat_map(|f| f.iter().copied())
            .collect::<BTreeSet<_>>(),
        logical_cores: 8,
        physical_cores: 4,
    }
}

fn gpu(api: GpuApi, vendor_id: u32, device_type: GpuType, name: &str) -> GpuInfo {
    GpuInfo {
        api,
        vendor_id,
        name: name.into(),
        device_type,
        memory_bytes: 8 << 30,
        driver_version: 1,
        compute_capability: None,
        free_bytes: None,
    }
}

fn profile(os: &str, cpu: CpuInfo, gpus: Vec<GpuInfo>, cuda: CudaDriver) -> HardwareProfile {
    HardwareProfile {
        os: os.into(),
        cpu,
        gpus,
        cuda_driver: cuda,
        memory_bytes: 16 << 30,
    }
}

fn options(hardware: HardwareProfile) -> SelectOptions {
    SelectOptions {
        search: SearchPaths::new().only_explicit(),
        force: None,
        gpu_enabled: true,
        preference: Vec::new(),
        hardware,
        smoke_test: None,
        fallback: true,
        family: gguf_loader::loader::Family::Upstream,
    }
}

fn no_cuda() -> CudaDriver {
    CudaDriver::Missing("driver library not found".into())
}

/// The first runnable candidate, and the reasons given for every rejected one.
fn pick(options: &SelectOptions) -> (String, Vec<(String, String)>) {
    let mut chosen = None;
    let mut rejected = Vec::new();
    for candidate in rank(options) {
        match candidate.verdict {
            Ok(()) => {
                chosen.get_or_insert_with(|| candidate.variant.name().to_string());
            }
            Err(reason) => rejected.push((candidate.variant.name().to_string(), reason)),
        }
    }
    (
        chosen.unwrap_or_else(|| panic!("nothing runnable; rejected: {rejected:?}")),
        rejected,
    )
}

fn reason<'a>(rejected: &'a [(String, String)], name: &str) -> &'a str {
    &rejected
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} not rejected: {rejected:?}"))
        .1
}

/// Among runnable CPU modules the choice is the one with the highest ggml score, and no module
/// needing a missing feature is ever runnable.
fn assert_cpu_choice_agrees_with_ggml(hardware: &HardwareProfile, expected: &str) {
    let best = best_cpu_module(hardware).expect("some CPU module runs");
    assert_eq!(best.name(), expected);
    for variant in cpu_isa_variants() {
        let runnable = variant.check_hardware(hardware).is_ok();
        assert_eq!(
            runnable,
            hardware.cpu.has_all(variant.required_features()),
            "{}",
            variant.name()
        );
        if runnable {
            assert!(
                variant.ggml_score(hardware) <= best.ggml_score(hardware),
                "{} outscores {}",
                variant.name(),
                expected
            );
        } else {
            assert_eq!(variant.ggml_score(hardware), 0);
        }
    }
}

#[test]
fn zen4_picks_the_zen4_module() {
    let hw = profile(
        "linux",
        cpu(
            "x86_64",
            &[HASWELL, AVX512, &[Avx512Vbmi, Avx512Vnni, Avx512Bf16]],
        ),
        vec![],
        no_cuda(),
    );
    assert_cpu_choice_agrees_with_ggml(&hw, "cpu-zen4");
    let (chosen, rejected) = pick(&options(hw));
    assert_eq!(chosen, "cpu-zen4");
    assert!(reason(&rejected, "cpu-sapphirerapids").contains("AmxTile"));
}

#[test]
fn icelake_server_picks_icelake() {
    let hw = profile(
        "linux",
        cpu("x86_64", &[HASWELL, AVX512, &[Avx512Vbmi, Avx512Vnni]]),
        vec![],
        no_cuda(),
    );
    assert_cpu_choice_agrees_with_ggml(&hw, "cpu-icelake");
    assert_eq!(pick(&options(hw)).0, "cpu-icelake");
}

#[test]
fn haswell_desktop_picks_haswell() {
    let hw = profile("linux", cpu("x86_64", &[HASWELL]), vec![], no_cuda());
    assert_cpu_choice_agrees_with_ggml(&hw, "cpu-haswell");
    let (chosen, rejected) = pick(&options(hw));
    assert_eq!(chosen, "cpu-haswell");
    assert!(reason(&rejected, "cpu-skylakex").contains("Avx512F"));
    assert!(reason(&rejected, "cpu-alderlake").contains("AvxVnni"));
}

#[test]
fn cpu_without_avx_picks_sse42() {
    let hw = profile("linux", cpu("x86_64", &[&[Sse42]]), vec![], no_cuda());
    assert_cpu_choice_agrees_with_ggml(&hw, "cpu-sse42");
    let (chosen, rejected) = pick(&options(hw));
    assert_eq!(chosen, "cpu-sse42");
    assert!(reason(&rejected, "cpu-sandybridge").contains("Avx"));
}

#[test]
fn ancient_cpu_falls_back_to_portable_x64() {
    let hw = profile("linux", cpu("x86_64", &[]), vec![], no_cuda());
    assert_cpu_choice_agrees_with_ggml(&hw, "cpu-x64");
}

#[test]
fn apple_m_series_picks_metal() {
    let hw = profile(
        "macos",
        cpu("aarch64", &[&[Neon, Dotprod]]),
        vec![],
        no_cuda(),
    );
    let (chosen, rejected) = pick(&options(hw.clone()));
    assert_eq!(chosen, "metal");
    assert!(
        best_cpu_module(&hw).is_none(),
        "x86-64 modules never run on arm"
    );
    assert!(reason(&rejected, "cuda").contains("no NVIDIA GPU"));
}

#[test]
fn nvidia_gpu_without_driver_library_falls_back() {
    let (driver, devices) = cuda_devices_from("libcuda-that-does-not-exist.so.1");
    assert_eq!(
        driver,
        CudaDriver::Missing("driver library not found".into())
    );
    assert!(devices.is_empty());
    let nvidia = gpu(
        GpuApi::Vulkan,
        0x10de,
        GpuType::Discrete,
        "NVIDIA GeForce RTX 4090",
    );
    let hw = profile("linux", cpu("x86_64", &[HASWELL]), vec![nvidia], driver);
    let (chosen, rejected) = pick(&options(hw));
    assert_eq!(reason(&rejected, "cuda"), "CUDA driver library not found");
    assert_eq!(
        chosen, "vulkan",
        "the next candidate (the GPU is still reachable through Vulkan)"
    );
}

#[test]
fn nvidia_gpu_with_driver_picks_cuda() {
    let nvidia = gpu(GpuApi::Cuda, 0x10de, GpuType::Discrete, "NVIDIA H100");
    let hw = profile(
        "linux",
        cpu("x86_64", &[HASWELL]),
        vec![nvidia],
        CudaDriver::Present { version: 12040 },
    );
    assert_eq!(pick(&options(hw)).0, "cuda");
}

#[test]
fn amd_gpu_through_vulkan_picks_vulkan() {
    let amd = gpu(
        GpuApi::Vulkan,
        0x1002,
        GpuType::Discrete,
        "AMD Radeon RX 7900 XTX",
    );
    let hw = profile(
        "linux",
        cpu("x86_64", &[HASWELL, AVX512]),
        vec![amd],
        no_cuda(),
    );
    let (chosen, rejected) = pick(&options(hw));
    assert_eq!(chosen, "vulkan");
    assert!(reason(&rejected, "cuda").contains("no NVIDIA GPU"));
}

#[test]
fn lavapipe_only_is_not_preferred_over_the_cpu() {
    let lavapipe = gpu(
        GpuApi::Vulkan,
        0x10005,
        GpuType::Cpu,
        "llvmpipe (LLVM 15.0.6, 256 bits)",
    );
    let hw = profile(
        "linux",
        cpu("x86_64", &[HASWELL]),
        vec![lavapipe],
        no_cuda(),
    );
    let (chosen, rejected) = pick(&options(hw));
    assert_eq!(chosen, "cpu-haswell");
    assert!(reason(&rejected, "vulkan").contains("lavapipe"));
}

#[test]
fn no_gpu_at_all_picks_the_cpu() {
    let hw = profile("linux", cpu("x86_64", &[HASWELL]), vec![], no_cuda());
    let (chosen, rejected) = pick(&options(hw));
    assert_eq!(chosen, "cpu-haswell");
    assert!(reason(&rejected, "vulkan").contains("no Vulkan GPU"));
    assert!(reason(&rejected, "metal").contains("macOS"));
}

#[test]
fn gpus_can_be_disabled_and_variants_forced_or_preferred() {
    let amd = gpu(GpuApi::Vulkan, 0x1002, GpuType::Discrete, "AMD");
    let hw = profile("linux", cpu("x86_64", &[HASWELL]), vec![amd], no_cuda());
    let mut opts = options(hw);
    opts.gpu_enabled = false;
    let (chosen, rejected) = pick(&opts);
    assert_eq!(chosen, "cpu-haswell");
    assert!(reason(&rejected, "vulkan").contains("GPUs disabled"));

    opts.gpu_enabled = true;
    opts.force = Some("cpu-x64".into());
    let ranked = rank(&opts);
    assert_eq!(ranked.len(), 1, "a forced variant is the only candidate");
    assert_eq!(ranked[0].variant.name(), "cpu-x64");

    opts.force = None;
    opts.preference = vec!["cpu-sse42".into(), "vulkan".into()];
    let names: Vec<String> = rank(&opts)
        .iter()
        .map(|c| c.variant.name().to_string())
        .collect();
    assert_eq!(
        &names[..2],
        &["cpu-sse42".to_string(), "vulkan".to_string()]
    );
}

/// The BitNet fork's builds serve BitNet models only: an upstream model skips them (with the
/// reason), a BitNet model skips upstream's, picks the widest build the CPU runs, and names
/// the missing features of the others; `bitnet-gpu` is declared, not provided.
#[test]
fn bitnet_builds_are_ranked_by_model_family_and_isa() {
    let haswell = profile("linux", cpu("x86_64", &[HASWELL]), vec![], no_cuda());
    let upstream = rank(&options(haswell.clone()));
    let bitnet_avx2 = upstream
        .iter()
        .find(|c| c.variant.name() == "bitnet-cpu-avx2")
        .expect("declared");
    assert!(
        bitnet_avx2
            .verdict
            .as_ref()
            .unwrap_err()
            .contains("BitNet models"),
        "{:?}",
        bitnet_avx2.verdict
    );
    let mut opts = options(haswell);
    opts.family = gguf_loader::loader::Family::BitNet;
    let (chosen, rejected) = pick(&opts);
    assert_eq!(chosen, "bitnet-cpu-avx2");
    assert!(reason(&rejected, "cpu-haswell").contains("BitNet-fork model"));
    assert!(reason(&rejected, "bitnet-gpu").contains("TQ2_0"));

    // Without AVX2 (the fork's I2_S kernels have no other x86 path) no BitNet build runs.
    let mut sandybridge = options(profile(
        "linux",
        cpu("x86_64", &[&[Sse42, Avx]]),
        vec![],
        no_cuda(),
    ));
    sandybridge.family = gguf_loader::loader::Family::BitNet;
    let ranked = rank(&sandybridge);
    let avx2 = ranked
        .iter()
        .find(|c| c.variant.name() == "bitnet-cpu-avx2")
        .unwrap();
    assert!(
        avx2.verdict.as_ref().unwrap_err().contains("Avx2"),
        "{:?}",
        avx2.verdict
    );
    assert!(ranked.iter().all(|c| c.verdict.is_err()));

    let mut skylake = options(profile(
        "linux",
        cpu("x86_64", &[HASWELL, AVX512]),
        vec![],
        no_cuda(),
    ));
    skylake.family = gguf_loader::loader::Family::BitNet;
    assert_eq!(pick(&skylake).0, "bitnet-cpu-avx2");
    // `bitnet-cpu` forces the best build, also for an upstream model.
    skylake.family = gguf_loader::loader::Family::Upstream;
    skylake.force = Some("bitnet-cpu".into());
    let forced = rank(&skylake);
    assert_eq!(forced.len(), 1);
    assert_eq!(forced[0].variant.name(), "bitnet-cpu-avx2");
    assert!(forced[0].verdict.is_ok());
    gguf_loader::loader::select::check_name("GGUF_BACKEND", "bitnet-cpu").unwrap();
}

#[test]
fn unknown_forced_variant_is_a_configuration_error() {
    let error = gguf_loader::loader::select::check_name("GGUF_BACKEND", "tpu").unwrap_err();
    assert_eq!(error.category(), gguf_loader::Category::Configuration);
    assert!(error.to_string().contains("cpu-haswell"), "{error}");
}

/// The rejections of a selection that found nothing.
fn rejections(options: &SelectOptions) -> (Vec<(String, String)>, String) {
    match load_best(options) {
        Err(error @ LoadError::NoUsableVariant { .. }) => {
            let message = error.to_string();
            let LoadError::NoUsableVariant { rejected } = error else {
                unreachable!()
            };
            (rejected, message)
        }
        Err(other) => panic!("expected NoUsableVariant, got {other}"),
        Ok(selection) => panic!("nothing should load, got {}", selection.variant),
    }
}

#[test]
fn a_directory_that_fails_as_a_whole_is_named_once() {
    // A "cpu" directory of empty files: every CPU module present, no library opens.
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![
        "libggml-base.so".to_string(),
        "libggml.so".into(),
        "libllama.so".into(),
    ];
    files.extend(
        CPU_MODULES
            .iter()
            .map(|(isa, _)| format!("lib{}.so", Backend::cpu_module_stem(isa))),
    );
    for name in &files {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    let hw = profile("linux", cpu("x86_64", &[HASWELL]), vec![], no_cuda());
    let runnable: Vec<String> = rank(&options(hw.clone()))
        .into_iter()
        .filter(|c| c.verdict.is_ok())
        .map(|c| c.variant.name().to_string())
        .collect();
    assert!(runnable.len() > 2, "{runnable:?}");
    let mut opts = options(hw);
    opts.search = SearchPaths::new().with_dir(dir.path()).only_explicit();
    let (rejected, message) = rejections(&opts);
    assert_eq!(
        message.matches("cannot open").count(),
        1,
        "the broken directory is named once: {message}"
    );
    assert_eq!(
        reason(&rejected, "cpu-haswell")
            .matches("cannot open")
            .count(),
        1,
        "the best CPU module finds out: {message}"
    );
    for name in &runnable[1..] {
        assert_eq!(
            reason(&rejected, name),
            "same directory as cpu-haswell: rejected above",
            "{message}"
        );
    }
}

#[test]
fn a_missing_directory_kind_is_reported_in_full_once() {
    let hw = profile("linux", cpu("x86_64", &[HASWELL]), vec![], no_cuda());
    let mut opts = options(hw);
    opts.search = SearchPaths::new()
        .with_dir("/nonexistent/gguf-loader-variants")
        .only_explicit();
    let (rejected, message) = rejections(&opts);
    assert_eq!(
        message
            .matches(
                "no `cpu` variant directory found (searched /nonexistent/gguf-loader-variants)"
            )
            .count(),
        1,
        "{message}"
    );
    assert_eq!(
        reason(&rejected, "cpu-x64"),
        "no `cpu` variant directory found (as for cpu-haswell above)"
    );
}

#[test]
fn backends_come_from_one_table() {
    assert_eq!(
        Backend::ALL.map(Backend::name),
        ["cuda", "metal", "vulkan", "cpu"]
    );
    assert_eq!(Backend::from_name("Vulkan"), Some(Backend::Vulkan));
    assert_eq!(Backend::Vulkan.plugin_stem(), "ggml-vulkan");
    // ggml registers Metal as "MTL" (GGML_METAL_NAME): device checks must use that name.
    assert!(Backend::Metal.is_registry("MTL"));
    assert!(Backend::Cpu.is_registry("CPU"));
    assert!(!Backend::Cuda.is_registry("Vulkan"));
    let gpu_variants: Vec<String> = gguf_loader::loader::catalogue()
        .iter()
        .filter(|v| v.family() == gguf_loader::loader::Family::Upstream)
        .filter(|v| v.kind() == gguf_loader::loader::VariantKind::Gpu)
        .map(|v| v.name().to_string())
        .collect();
    let gpu_backends: Vec<String> = Backend::ALL
        .iter()
        .filter(|b| b.kind() == gguf_loader::loader::VariantKind::Gpu)
        .map(|b| b.name().to_string())
        .collect();
    assert_eq!(gpu_variants, gpu_backends);
}
