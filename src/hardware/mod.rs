//! Layer 3: what this machine has. Pure data: detection fills a [`HardwareProfile`], and
//! selection reads one, so selection can be tested with injected profiles.
//!
//! This module depends on no other layer of the crate (the loader consumes its data).

mod cpu;
mod gpu;

pub use cpu::{detect_cpu, CpuFeature, CpuInfo};
pub use gpu::{cuda_devices, cuda_devices_from, cuda_library_name, vulkan_devices};

/// Kinds of GPU API a device was seen through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GpuApi {
    /// Seen by the Vulkan loader.
    Vulkan,
    /// Seen by the CUDA driver library.
    Cuda,
    /// Seen through Metal.
    Metal,
}

/// What kind of device a GPU is (Vulkan's `VkPhysicalDeviceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GpuType {
    /// A discrete GPU.
    Discrete,
    /// A GPU sharing memory with the CPU.
    Integrated,
    /// A virtual GPU.
    Virtual,
    /// A software rasteriser running on the CPU (e.g. Mesa's lavapipe).
    Cpu,
    /// Anything else.
    Other,
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    /// The API the device was found through.
    pub api: GpuApi,
    /// PCI vendor id (0x10de NVIDIA, 0x1002 AMD, 0x8086 Intel, 0x10005 Mesa).
    pub vendor_id: u32,
    /// Device name.
    pub name: String,
    /// Device type.
    pub device_type: GpuType,
    /// Device-local memory in bytes.
    pub memory_bytes: u64,
    /// Driver version as the API reports it.
    pub driver_version: u32,
    /// CUDA compute capability (major, minor), for devices seen through CUDA.
    pub compute_capability: Option<(i32, i32)>,
    /// Free device memory in bytes, where the API reports it (CUDA).
    pub free_bytes: Option<u64>,
}

/// Whether the NVIDIA CUDA driver library could be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CudaDriver {
    /// `libcuda` was loaded and initialised.
    Present {
        /// `cuDriverGetVersion` (e.g. 12040).
        version: i32,
    },
    /// Not usable, with the reason (e.g. "driver library not found").
    Missing(String),
}

/// Everything selection needs to know about a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardwareProfile {
    /// `linux`, `macos`, `windows`, ...
    pub os: String,
    /// The CPU.
    pub cpu: CpuInfo,
    /// GPUs found.
    pub gpus: Vec<GpuInfo>,
    /// State of the CUDA driver.
    pub cuda_driver: CudaDriver,
    /// Installed memory in bytes (0 when unknown).
    pub memory_bytes: u64,
}

impl HardwareProfile {
    /// Detects this machine: CPU features, Vulkan devices, the CUDA driver and its devices.
    pub fn detect() -> Self {
        let (cuda_driver, mut gpus) = cuda_devices();
        match vulkan_devices() {
            Ok(devices) => gpus.extend(devices),
            Err(reason) => log::debug!("no Vulkan devices: {reason}"),
        }
        HardwareProfile {
            os: std::env::consts::OS.to_string(),
            cpu: detect_cpu(),
            gpus,
            cuda_driver,
            memory_bytes: system_memory(),
        }
    }
}

/// Memory available to new allocations now (`MemAvailable` in `/proc/meminfo`, Linux);
/// `None` elsewhere.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Installed memory from `/proc/meminfo` (Linux); 0 elsewhere.
pub fn system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}
