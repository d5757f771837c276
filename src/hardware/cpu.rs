//! CPU identification and instruction-set features (raw-cpuid on x86-64, OS support checked
//! with XGETBV).

use std::collections::BTreeSet;

/// An instruction-set feature that some llama.cpp CPU module needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum CpuFeature {
    /// SSE4.2
    Sse42,
    /// AVX (with OS support for YMM state)
    Avx,
    /// AVX2
    Avx2,
    /// FMA3
    Fma,
    /// F16C
    F16c,
    /// BMI2
    Bmi2,
    /// AVX-VNNI (VEX-encoded)
    AvxVnni,
    /// AVX-512 Foundation (with OS support for ZMM state)
    Avx512F,
    /// AVX-512 CD
    Avx512Cd,
    /// AVX-512 VL
    Avx512Vl,
    /// AVX-512 DQ
    Avx512Dq,
    /// AVX-512 BW
    Avx512Bw,
    /// AVX-512 VBMI
    Avx512Vbmi,
    /// AVX-512 VNNI
    Avx512Vnni,
    /// AVX-512 BF16
    Avx512Bf16,
    /// AMX tiles (with OS support for tile state)
    AmxTile,
    /// AMX INT8
    AmxInt8,
    /// AMX BF16
    AmxBf16,
    /// Arm NEON / ASIMD
    Neon,
    /// Arm dot product
    Dotprod,
}

/// The CPU: identification, features and core counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuInfo {
    /// `x86_64`, `aarch64`, ...
    pub arch: String,
    /// Vendor string (`GenuineIntel`, `AuthenticAMD`, ...).
    pub vendor: String,
    /// Brand string.
    pub brand: String,
    /// Display family.
    pub family: u32,
    /// Display model.
    pub model: u32,
    /// Features usable by programs (CPU and OS support both present).
    pub features: BTreeSet<CpuFeature>,
    /// Logical processors.
    pub logical_cores: usize,
    /// Physical cores (logical ones sharing a core counted once; equals `logical_cores` when
    /// the topology is unknown).
    pub physical_cores: usize,
}

impl CpuInfo {
    /// Whether every feature of `required` is present.
    pub fn has_all(&self, required: &[CpuFeature]) -> bool {
        required.iter().all(|f| self.features.contains(f))
    }
}

/// Reads this machine's CPU.
pub fn detect_cpu() -> CpuInfo {
    let logical_cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let physical_cores = physical_cores()
        .unwrap_or(logical_cores)
        .min(logical_cores)
        .max(1);
    #[cfg(target_arch = "x86_64")]
    {
        let mut info = x86::detect();
        info.logical_cores = logical_cores;
        info.physical_cores = physical_cores;
        info
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut features = BTreeSet::new();
        if cfg!(target_arch = "aarch64") {
            features.insert(CpuFeature::Neon);
        }
        CpuInfo {
            arch: std::env::consts::ARCH.to_string(),
            vendor: String::new(),
            brand: String::new(),
            family: 0,
            model: 0,
            features,
            logical_cores,
            physical_cores,
        }
    }
}

/// Distinct (package, core) pairs in `/proc/cpuinfo` (Linux).
fn physical_cores() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mut cores = std::collections::BTreeSet::new();
    let mut package = None;
    for line in text.lines() {
        let mut parts = line.splitn(2, ':');
        let key = parts.next()?.trim();
        let value = parts.next().map(str::trim);
        match key {
            "physical id" => package = value.and_then(|v| v.parse::<u32>().ok()),
            "core id" => {
                if let Some(core) = value.and_then(|v| v.parse::<u32>().ok()) {
                    cores.insert((package.unwrap_or(0), core));
                }
            }
            _ => {}
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use raw_cpuid::CpuId;

    /// XCR0 bits the OS must enable for each register state.
    const XCR0_SSE_AVX: u64 = 0b110;
    const XCR0_AVX512: u64 = 0b1110_0000;
    const XCR0_AMX: u64 = 0b11 << 17;

    fn xcr0(osxsave: bool) -> u64 {
        if !osxsave {
            return 0;
        }
        // SAFETY: XGETBV is available because CPUID reported OSXSAVE (the OS has enabled
        // XSAVE and the instruction); reading XCR0 has no side effects.
        unsafe { xgetbv0() }
    }

    #[target_feature(enable = "xsave")]
    unsafe fn xgetbv0() -> u64 {
        // SAFETY: the caller checked OSXSAVE.
        unsafe { std::arch::x86_64::_xgetbv(0) }
    }

    pub fn detect() -> CpuInfo {
        let cpuid = CpuId::new();
        let vendor = cpuid
            .get_vendor_info()
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let brand = cpuid
            .get_processor_brand_string()
            .map(|b| b.as_str().trim().to_string())
            .unwrap_or_default();
        let mut features = BTreeSet::new();
        let (mut family, mut model) = (0, 0);
        let mut osxsave = false;
        if let Some(fi) = cpuid.get_feature_info() {
            family = u32::from(fi.family_id());
            model = u32::from(fi.model_id());
            osxsave = fi.has_oxsave();
            if fi.has_sse42() {
                features.insert(CpuFeature::Sse42);
            }
            let xcr0 = xcr0(osxsave);
            let ymm = xcr0 & XCR0_SSE_AVX == XCR0_SSE_AVX;
            if fi.has_avx() && ymm {
                features.insert(CpuFeature::Avx);
                if fi.has_fma() {
                    features.insert(CpuFeature::Fma);
                }
                if fi.has_f16c() {
                    features.insert(CpuFeature::F16c);
                }
            }
        }
        let xcr0 = xcr0(osxsave);
        let ymm = xcr0 & XCR0_SSE_AVX == XCR0_SSE_AVX;
        let zmm = ymm && xcr0 & XCR0_AVX512 == XCR0_AVX512;
        let amx = xcr0 & XCR0_AMX == XCR0_AMX;
        if let Some(ef) = cpuid.get_extended_feature_info() {
            if ef.has_bmi2() {
                features.insert(CpuFeature::Bmi2);
            }
            if ymm {
                if ef.has_avx2() {
                    features.insert(CpuFeature::Avx2);
                }
                if ef.has_avx_vnni() {
                    features.insert(CpuFeature::AvxVnni);
                }
            }
            if zmm {
                for (present, feature) in [
                    (ef.has_avx512f(), CpuFeature::Avx512F),
                    (ef.has_avx512cd(), CpuFeature::Avx512Cd),
                    (ef.has_avx512vl(), CpuFeature::Avx512Vl),
                    (ef.has_avx512dq(), CpuFeature::Avx512Dq),
                    (ef.has_avx512bw(), CpuFeature::Avx512Bw),
                    (ef.has_avx512vbmi(), CpuFeature::Avx512Vbmi),
                    (ef.has_avx512vnni(), CpuFeature::Avx512Vnni),
                    (ef.has_avx512_bf16(), CpuFeature::Avx512Bf16),
                ] {
                    if present {
                        features.insert(feature);
                    }
                }
            }
            if amx {
                for (present, feature) in [
                    (ef.has_amx_tile(), CpuFeature::AmxTile),
                    (ef.has_amx_int8(), CpuFeature::AmxInt8),
                    (ef.has_amx_bf16(), CpuFeature::AmxBf16),
                ] {
                    if present {
                        features.insert(feature);
                    }
                }
            }
        }
        CpuInfo {
            arch: "x86_64".into(),
            vendor,
            brand,
            family,
            model,
            features,
            logical_cores: 1,
            physical_cores: 1,
        }
    }
}
