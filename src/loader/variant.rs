//! The [`LibraryVariant`] trait and the catalogue of known variants.
//!
//! A variant is one way of running llama.cpp: a CPU build for one instruction set, a GPU backend,
//! or Microsoft's BitNet fork. Several variants can live in one directory (all CPU ISA modules
//! sit in the `cpu` directory); [`LibraryVariant::directory_kind`] says which directory serves it.

use std::fmt;

use crate::hardware::{CpuFeature, CudaDriver, GpuApi, GpuType, HardwareProfile};

/// PCI vendor id of NVIDIA (CUDA and the BitNet GPU build need one of its GPUs).
const NVIDIA_VENDOR_ID: u32 = 0x10de;

/// CPU or GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VariantKind {
    /// Runs on the CPU only.
    Cpu,
    /// Offloads to a GPU (and uses the CPU for the rest).
    Gpu,
}

/// A ggml backend a variant brings.
///
/// This is the one list of backends: every per-backend fact (the name used in directory names
/// and `GGUF_BACKEND`, the plugin file, the name ggml registers, CPU or GPU, the selection
/// priority, the GPU API the hardware probe sees it through) lives in one table row, and the
/// catalogue, discovery, selection and the smoke test derive from [`Backend::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Backend {
    /// The CPU backend.
    Cpu,
    /// NVIDIA CUDA.
    Cuda,
    /// Vulkan.
    Vulkan,
    /// Apple Metal.
    Metal,
}

/// One row of the backend table.
struct BackendInfo {
    /// Directory / manifest / `GGUF_BACKEND` name.
    name: &'static str,
    /// Plugin file stem (`libggml-<stem>.so` without `lib` and the suffix).
    plugin_stem: &'static str,
    /// What `ggml_backend_reg_name` returns for the backend's registry.
    registry_name: &'static str,
    /// CPU or GPU.
    kind: VariantKind,
    /// Selection priority of the variant built around this backend.
    priority: u32,
    /// The backends a variant of this backend brings (a GPU build carries the CPU backend too).
    variant_backends: &'static [Backend],
    /// The API the hardware probe sees such a device through.
    gpu_api: Option<GpuApi>,
}

impl Backend {
    /// Every backend, in selection preference order (GPU backends by priority, then the CPU).
    pub const ALL: [Backend; 4] = [Backend::Cuda, Backend::Metal, Backend::Vulkan, Backend::Cpu];

    /// The table: one row per backend.
    const fn info(self) -> &'static BackendInfo {
        match self {
            Backend::Cpu => &BackendInfo {
                name: "cpu",
                plugin_stem: "ggml-cpu",
                registry_name: "CPU",
                kind: VariantKind::Cpu,
                priority: 100,
                variant_backends: &[Backend::Cpu],
                gpu_api: None,
            },
            Backend::Cuda => &BackendInfo {
                name: "cuda",
                plugin_stem: "ggml-cuda",
                registry_name: "CUDA",
                kind: VariantKind::Gpu,
                priority: 400,
                variant_backends: &[Backend::Cpu, Backend::Cuda],
                gpu_api: Some(GpuApi::Cuda),
            },
            Backend::Vulkan => &BackendInfo {
                name: "vulkan",
                plugin_stem: "ggml-vulkan",
                registry_name: "Vulkan",
                kind: VariantKind::Gpu,
                priority: 300,
                variant_backends: &[Backend::Cpu, Backend::Vulkan],
                gpu_api: Some(GpuApi::Vulkan),
            },
            Backend::Metal => &BackendInfo {
                name: "metal",
                plugin_stem: "ggml-metal",
                // GGML_METAL_NAME in ggml-metal.cpp.
                registry_name: "MTL",
                kind: VariantKind::Gpu,
                priority: 350,
                variant_backends: &[Backend::Cpu, Backend::Metal],
                gpu_api: Some(GpuApi::Metal),
            },
        }
    }

    /// The name used in directory names, manifests and `GGUF_BACKEND`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The backend plugin file stem (`libggml-<stem>.so`).
    pub fn plugin_stem(self) -> &'static str {
        self.info().plugin_stem
    }

    /// The name ggml registers the backend under (`ggml_backend_reg_name`: `CPU`, `CUDA`,
    /// `Vulkan`, `MTL`), which [`crate::loader::Device::backend`] reports.
    pub fn registry_name(self) -> &'static str {
        self.info().registry_name
    }

    /// Whether a device's registry name (as in [`crate::loader::Device::backend`]) is this
    /// backend's (case-insensitive).
    pub fn is_registry(self, registry: &str) -> bool {
        registry.eq_ignore_ascii_case(self.registry_name())
    }

    /// CPU or GPU.
    pub fn kind(self) -> VariantKind {
        self.info().kind
    }

    /// Selection priority of the upstream variant built around this backend (higher first).
    pub fn priority(self) -> u32 {
        self.info().priority
    }

    /// The backends the upstream variant built around this backend brings (a GPU build carries
    /// the CPU backend too).
    pub fn variant_backends(self) -> &'static [Backend] {
        self.info().variant_backends
    }

    /// The API through which the hardware probe sees a device of this backend (`None` for the
    /// CPU).
    pub fn gpu_api(self) -> Option<GpuApi> {
        self.info().gpu_api
    }

    /// Parses a backend name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(name))
    }

    /// The backend whose plugin file stem is `stem` (`ggml-vulkan`).
    pub fn from_plugin_stem(stem: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.plugin_stem() == stem)
    }

    /// The file stem of one CPU ISA module of the CPU backend (`ggml-cpu-haswell`).
    pub fn cpu_module_stem(isa: &str) -> String {
        format!("{}-{isa}", Backend::Cpu.plugin_stem())
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend plugin that comes with a variant directory but is not a variant of its own:
/// selection never picks it and [`Backend::ALL`] does not list it. The RPC backend
/// (`libggml-rpc`) offers the devices of remote `rpc-server`s; it is loaded with every plugin
/// of the directory ([`crate::loader::PluginSelection::AllInDirectory`]) and otherwise on
/// demand ([`crate::loader::LlamaLibrary::load_rpc_plugin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AuxBackend {
    /// ggml's RPC backend: remote devices over TCP.
    Rpc,
}

impl AuxBackend {
    /// Every auxiliary backend.
    pub const ALL: [AuxBackend; 1] = [AuxBackend::Rpc];

    /// The name used in manifests (`rpc`).
    pub fn name(self) -> &'static str {
        match self {
            AuxBackend::Rpc => "rpc",
        }
    }

    /// The plugin file stem (`libggml-<stem>.so` without `lib` and the suffix).
    pub fn plugin_stem(self) -> &'static str {
        match self {
            AuxBackend::Rpc => "ggml-rpc",
        }
    }

    /// The name ggml registers the plugin's registry under (`RPC`; each server added gets a
    /// registry of its own, `RPC[host:port]`, whose devices still report `RPC`).
    pub fn registry_name(self) -> &'static str {
        match self {
            AuxBackend::Rpc => crate::sys::upstream::rpc::RPC_REGISTRY_NAME,
        }
    }

    /// Parses a manifest name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for AuxBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which llama.cpp code base a variant is built from (they have different ABIs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Upstream llama.cpp at the pinned version.
    Upstream,
    /// Microsoft's BitNet fork (2024 llama.cpp ABI).
    BitNet,
}

impl Family {
    /// The ABI generation its builds have.
    pub fn abi(self) -> crate::loader::AbiGeneration {
        match self {
            Family::Upstream => crate::loader::AbiGeneration::Upstream,
            Family::BitNet => crate::loader::AbiGeneration::BitNet2024,
        }
    }
}

/// One way of running llama.cpp.
pub trait LibraryVariant: fmt::Debug + Send + Sync {
    /// Unique name (`cpu-haswell`, `vulkan`, `bitnet-cpu`, ...), as accepted by `GGUF_BACKEND`.
    fn name(&self) -> &str;
    /// CPU or GPU.
    fn kind(&self) -> VariantKind;
    /// The code base and ABI generation.
    fn family(&self) -> Family;
    /// The variant directory that serves it (`cpu`, `vulkan`, `cuda`, `metal`, `bitnet-cpu`).
    fn directory_kind(&self) -> &str;
    /// Backends it brings.
    fn backends(&self) -> &[Backend];
    /// The CPU module it loads (`haswell` for `libggml-cpu-haswell.so`), if it is a CPU ISA
    /// variant; `None` loads every plugin of the directory.
    fn cpu_module(&self) -> Option<&str> {
        None
    }
    /// Higher is preferred when several variants can run.
    fn priority(&self) -> u32;
    /// `Ok` if the hardware can run it, else the reason it cannot.
    fn check_hardware(&self, hardware: &HardwareProfile) -> Result<(), String>;
    /// `Ok` if this crate can load it, else why not.
    fn loadable(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The names of the features in `required` that the CPU of `hardware` lacks.
fn missing_features(hardware: &HardwareProfile, required: &[CpuFeature]) -> Vec<String> {
    required
        .iter()
        .filter(|f| !hardware.cpu.features.contains(f))
        .map(|f| format!("{f:?}"))
        .collect()
}

/// A CPU build for one x86-64 instruction-set level (one `libggml-cpu-<isa>.so`).
#[derive(Debug, Clone)]
pub struct CpuIsaVariant {
    name: String,
    module: &'static str,
    required: &'static [CpuFeature],
}

impl CpuIsaVariant {
    /// The instruction sets the module was compiled for.
    pub fn required_features(&self) -> &'static [CpuFeature] {
        self.required
    }

    /// ggml's own score for this module on a CPU that has every required feature
    /// (mirrors `ggml_backend_cpu_x86_score`); 0 when a feature is missing.
    pub fn ggml_score(&self, hardware: &HardwareProfile) -> u32 {
        if hardware.cpu.arch != "x86_64" || !hardware.cpu.has_all(self.required) {
            return 0;
        }
        use CpuFeature::*;
        let has = |f: CpuFeature| self.required.contains(&f);
        let mut score = 1;
        for (feature, bit) in [
            (Fma, 0),
            (F16c, 1),
            (Sse42, 2),
            (Bmi2, 3),
            (Avx, 4),
            (Avx2, 5),
            (AvxVnni, 6),
            (Avx512F, 7),
            (Avx512Vbmi, 8),
            (Avx512Bf16, 9),
            (Avx512Vnni, 10),
            (AmxInt8, 11),
        ] {
            if has(feature) {
                score += 1 << bit;
            }
        }
        score
    }
}

impl LibraryVariant for CpuIsaVariant {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> VariantKind {
        Backend::Cpu.kind()
    }
    fn family(&self) -> Family {
        Family::Upstream
    }
    fn directory_kind(&self) -> &str {
        Backend::Cpu.name()
    }
    fn backends(&self) -> &[Backend] {
        Backend::Cpu.variant_backends()
    }
    fn cpu_module(&self) -> Option<&str> {
        Some(self.module)
    }
    fn priority(&self) -> u32 {
        // Among CPU modules, ggml's score orders them; all rank below GPUs.
        Backend::Cpu.priority()
    }
    fn check_hardware(&self, hardware: &HardwareProfile) -> Result<(), String> {
        if hardware.cpu.arch != "x86_64" {
            return Err(format!(
                "{} is an x86-64 module; this CPU is {}",
                self.module, hardware.cpu.arch
            ));
        }
        let missing = missing_features(hardware, self.required);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("CPU lacks {}", missing.join(", ")))
        }
    }
}

/// A GPU backend of upstream llama.cpp.
#[derive(Debug, Clone)]
pub struct GpuVariant {
    backend: Backend,
}

impl LibraryVariant for GpuVariant {
    fn name(&self) -> &str {
        self.backend.name()
    }
    fn kind(&self) -> VariantKind {
        self.backend.kind()
    }
    fn family(&self) -> Family {
        Family::Upstream
    }
    fn directory_kind(&self) -> &str {
        self.backend.name()
    }
    fn backends(&self) -> &[Backend] {
        self.backend.variant_backends()
    }
    fn priority(&self) -> u32 {
        self.backend.priority()
    }
    fn check_hardware(&self, hardware: &HardwareProfile) -> Result<(), String> {
        let api = self.backend.gpu_api();
        match self.backend {
            Backend::Cuda => {
                if !hardware
                    .gpus
                    .iter()
                    .any(|g| g.vendor_id == NVIDIA_VENDOR_ID)
                {
                    return Err("no NVIDIA GPU".into());
                }
                match &hardware.cuda_driver {
                    CudaDriver::Present { .. } => Ok(()),
                    CudaDriver::Missing(reason) => Err(format!("CUDA {reason}")),
                }
            }
            Backend::Vulkan => {
                if hardware
                    .gpus
                    .iter()
                    .any(|g| Some(g.api) == api && g.device_type != GpuType::Cpu)
                {
                    Ok(())
                } else {
                    Err(
                        "no Vulkan GPU (software rasterisers such as lavapipe are not preferred)"
                            .into(),
                    )
                }
            }
            Backend::Metal => {
                if hardware.os == "macos" {
                    Ok(())
                } else {
                    Err("Metal exists only on macOS".into())
                }
            }
            Backend::Cpu => Ok(()),
        }
    }
}

/// The CPU backend of a directory without per-ISA modules (an official release or a plain cmake
/// build ships one `libggml-cpu.so`), or with them when ggml should pick: loads every plugin of
/// the directory and lets ggml choose the best CPU module by its own score.
#[derive(Debug, Clone)]
pub struct CpuAutoVariant;

impl LibraryVariant for CpuAutoVariant {
    fn name(&self) -> &str {
        "cpu-auto"
    }
    fn kind(&self) -> VariantKind {
        Backend::Cpu.kind()
    }
    fn family(&self) -> Family {
        Family::Upstream
    }
    fn directory_kind(&self) -> &str {
        Backend::Cpu.name()
    }
    fn backends(&self) -> &[Backend] {
        Backend::Cpu.variant_backends()
    }
    fn priority(&self) -> u32 {
        // After every ISA module: it is the fallback when none of them can be found.
        90
    }
    fn check_hardware(&self, _hardware: &HardwareProfile) -> Result<(), String> {
        Ok(())
    }
}

/// A build of Microsoft's BitNet fork (the 2024 llama.h, `sys::bitnet`): one CPU build per
/// x86-64 ISA level its I2_S kernels run at (`bitnet-cpu-avx2`), and the
/// declared, not provided, GPU build (`bitnet-gpu`). They serve BitNet-fork models only (I2_S
/// tensors); `GGUF_BACKEND=bitnet-cpu` picks the best CPU build the machine runs.
#[derive(Debug, Clone)]
pub struct BitNetVariant {
    name: &'static str,
    isa: Option<&'static str>,
    required: &'static [CpuFeature],
}

impl BitNetVariant {
    /// The ISA level (`avx2`) of a CPU build; `None` for the GPU declaration.
    pub fn isa(&self) -> Option<&'static str> {
        self.isa
    }

    /// The instruction sets the build was compiled for.
    pub fn required_features(&self) -> &'static [CpuFeature] {
        self.required
    }
}

/// The BitNet fork's CPU builds that `variants/provision bitnet` makes: (ISA level, features
/// its compiler flags assume). One per x86-64 level the fork's I2_S kernels support: they have
/// an AVX2 path only (without AVX2 their dot product is empty, so the check is a correctness
/// one). An AVX-512 build of the rest of ggml was measured no faster and is not built.
pub const BITNET_CPU_BUILDS: &[(&str, &[CpuFeature])] = {
    use CpuFeature::*;
    &[("avx2", &[Avx, Avx2, Fma, F16c])]
};

/// `GGUF_BACKEND` value that means "the best BitNet CPU build".
pub const BITNET_CPU: &str = "bitnet-cpu";

impl LibraryVariant for BitNetVariant {
    fn name(&self) -> &str {
        self.name
    }
    fn kind(&self) -> VariantKind {
        if self.isa.is_some() {
            VariantKind::Cpu
        } else {
            VariantKind::Gpu
        }
    }
    fn family(&self) -> Family {
        Family::BitNet
    }
    fn directory_kind(&self) -> &str {
        self.name
    }
    fn backends(&self) -> &[Backend] {
        if self.isa.is_some() {
            Backend::Cpu.variant_backends()
        } else {
            Backend::Cuda.variant_backends()
        }
    }
    fn priority(&self) -> u32 {
        match self.isa {
            // Ranked like the CPU modules: the wider ISA first.
            Some(_) => 40 + self.required.len() as u32,
            None => 50,
        }
    }
    fn check_hardware(&self, hardware: &HardwareProfile) -> Result<(), String> {
        match self.isa {
            Some(isa) => {
                if hardware.cpu.arch != "x86_64" {
                    return Err(format!("an x86-64 build ({} CPU)", hardware.cpu.arch));
                }
                let missing = missing_features(hardware, self.required);
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "the {isa} build needs {} (this CPU lacks it)",
                        missing.join(", ")
                    ))
                }
            }
            None => {
                if hardware
                    .gpus
                    .iter()
                    .any(|g| g.vendor_id == NVIDIA_VENDOR_ID)
                {
                    Ok(())
                } else {
                    Err("no NVIDIA GPU".into())
                }
            }
        }
    }
    fn loadable(&self) -> Result<(), String> {
        match self.isa {
            Some(_) => Ok(()),
            None => Err("no GPU build of the BitNet fork is provided: quantize the model to TQ2_0 (Model::quantize) and run it on an upstream GPU variant".into()),
        }
    }
}

/// The BitNet fork's variants: CPU builds best first, then the GPU declaration.
pub fn bitnet_variants() -> Vec<BitNetVariant> {
    let mut all: Vec<BitNetVariant> = BITNET_CPU_BUILDS
        .iter()
        .rev()
        .map(|(isa, required)| BitNetVariant {
            name: match *isa {
                "avx2" => "bitnet-cpu-avx2",
                _ => "bitnet-cpu",
            },
            isa: Some(isa),
            required,
        })
        .collect();
    all.push(BitNetVariant {
        name: "bitnet-gpu",
        isa: None,
        required: &[],
    });
    all
}

/// The name of the best BitNet CPU build for `hardware` (`bitnet-cpu-avx2`).
pub fn best_bitnet_cpu(hardware: &HardwareProfile) -> Option<String> {
    bitnet_variants()
        .into_iter()
        .filter(|v| v.isa.is_some() && v.check_hardware(hardware).is_ok())
        .max_by_key(|v| v.priority())
        .map(|v| v.name.to_string())
}

/// The x86-64 CPU modules built by `GGML_CPU_ALL_VARIANTS`, with the features each needs
/// (as in ggml's CMake and `ggml_backend_cpu_x86_score`).
pub const CPU_MODULES: &[(&str, &[CpuFeature])] = {
    use CpuFeature::*;
    const AVX512: [CpuFeature; 5] = [Avx512F, Avx512Cd, Avx512Vl, Avx512Dq, Avx512Bw];
    &[
        ("x64", &[]),
        ("sse42", &[Sse42]),
        ("sandybridge", &[Sse42, Avx]),
        ("ivybridge", &[Sse42, Avx, F16c]),
        ("piledriver", &[Sse42, Avx, F16c, Fma]),
        ("haswell", &[Sse42, Avx, F16c, Fma, Avx2, Bmi2]),
        (
            "skylakex",
            &[
                Sse42, Avx, F16c, Fma, Avx2, Bmi2, AVX512[0], AVX512[1], AVX512[2], AVX512[3],
                AVX512[4],
            ],
        ),
        (
            "cannonlake",
            &[
                Sse42, Avx, F16c, Fma, Avx2, Bmi2, AVX512[0], AVX512[1], AVX512[2], AVX512[3],
                AVX512[4], Avx512Vbmi,
            ],
        ),
        (
            "cascadelake",
            &[
                Sse42, Avx, F16c, Fma, Avx2, Bmi2, AVX512[0], AVX512[1], AVX512[2], AVX512[3],
                AVX512[4], Avx512Vnni,
            ],
        ),
        (
            "icelake",
            &[
                Sse42, Avx, F16c, Fma, Avx2, Bmi2, AVX512[0], AVX512[1], AVX512[2], AVX512[3],
                AVX512[4], Avx512Vbmi, Avx512Vnni,
            ],
        ),
        (
            "cooperlake",
            &[
                Sse42, Avx, F16c, Fma, Avx2, Bmi2, AVX512[0], AVX512[1], AVX512[2], AVX512[3],
                AVX512[4], Avx512Vnni, Avx512Bf16,
            ],
        ),
        (
            "zen4",
            &[
                Sse42, Avx, F16c, Fma, Avx2, Bmi2, AVX512[0], AVX512[1], AVX512[2], AVX512[3],
                AVX512[4], Avx512Vbmi, Avx512Vnni, Avx512Bf16,
            ],
        ),
        ("alderlake", &[Sse42, Avx, F16c, Fma, Avx2, Bmi2, AvxVnni]),
        (
            "sapphirerapids",
            &[
                Sse42, Avx, F16c, Fma, Avx2, Bmi2, AVX512[0], AVX512[1], AVX512[2], AVX512[3],
                AVX512[4], Avx512Vbmi, Avx512Vnni, Avx512Bf16, AmxTile, AmxInt8,
            ],
        ),
    ]
};

/// Every variant this crate knows, GPU first.
pub fn catalogue() -> Vec<Box<dyn LibraryVariant>> {
    let mut all: Vec<Box<dyn LibraryVariant>> = Backend::ALL
        .into_iter()
        .filter(|b| b.kind() == VariantKind::Gpu)
        .map(|backend| Box::new(GpuVariant { backend }) as Box<dyn LibraryVariant>)
        .collect();
    for (module, required) in CPU_MODULES.iter().rev() {
        all.push(Box::new(CpuIsaVariant {
            name: format!("{}-{module}", Backend::Cpu.name()),
            module,
            required,
        }));
    }
    all.push(Box::new(CpuAutoVariant));
    for variant in bitnet_variants() {
        all.push(Box::new(variant));
    }
    all
}

/// The CPU ISA variants only, as concrete types (for scores).
pub fn cpu_isa_variants() -> Vec<CpuIsaVariant> {
    CPU_MODULES
        .iter()
        .map(|(module, required)| CpuIsaVariant {
            name: format!("{}-{module}", Backend::Cpu.name()),
            module,
            required,
        })
        .collect()
}

/// The best CPU module for `hardware` by ggml's score (`x64` always runs on x86-64).
pub fn best_cpu_module(hardware: &HardwareProfile) -> Option<CpuIsaVariant> {
    cpu_isa_variants()
        .into_iter()
        .filter(|v| v.check_hardware(hardware).is_ok())
        .max_by_key(|v| v.ggml_score(hardware))
}

/// The name of the best CPU ISA variant for `hardware` (`cpu-icelake`, ...).
pub fn best_cpu(hardware: &HardwareProfile) -> Option<String> {
    best_cpu_module(hardware).map(|v| v.name().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_table_is_consistent() {
        for backend in Backend::ALL {
            assert_eq!(Backend::from_name(backend.name()), Some(backend));
            assert_eq!(
                Backend::from_plugin_stem(backend.plugin_stem()),
                Some(backend)
            );
            assert!(backend.is_registry(backend.registry_name()));
            assert_eq!(
                backend.gpu_api().is_some(),
                backend.kind() == VariantKind::Gpu
            );
            assert!(backend.variant_backends().contains(&backend));
            assert!(backend.variant_backends().contains(&Backend::Cpu));
        }
        let priorities: Vec<u32> = Backend::ALL.iter().map(|b| b.priority()).collect();
        let mut sorted = priorities.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(priorities, sorted, "ALL is in preference order");
        let gpu_names: Vec<String> = catalogue()
            .iter()
            .filter(|v| v.family() == Family::Upstream && v.kind() == VariantKind::Gpu)
            .map(|v| v.name().to_string())
            .collect();
        assert_eq!(gpu_names, ["cuda", "metal", "vulkan"]);
        assert_eq!(Backend::cpu_module_stem("haswell"), "ggml-cpu-haswell");
        for aux in AuxBackend::ALL {
            assert_eq!(AuxBackend::from_name(aux.name()), Some(aux));
            // Not a variant: no backend or catalogue entry has its name.
            assert!(Backend::from_name(aux.name()).is_none());
            assert!(catalogue().iter().all(|v| v.name() != aux.name()));
        }
    }
}
