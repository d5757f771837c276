//! GPUs: through the Vulkan loader (ash, loaded at run time) and the NVIDIA CUDA driver library
//! (dlopened at run time). Neither is linked; a machine without them simply reports none.

use super::{CudaDriver, GpuApi, GpuInfo, GpuType};

/// Every Vulkan physical device, or why none could be listed.
///
/// # Errors
/// The reason, as text, when the Vulkan loader is missing or enumeration fails.
pub fn vulkan_devices() -> Result<Vec<GpuInfo>, String> {
    // SAFETY: loading the Vulkan loader library runs its initialisers only; failure is an error
    // value.
    let entry =
        unsafe { ash::Entry::load() }.map_err(|e| format!("Vulkan loader not found ({e})"))?;
    let app = ash::vk::ApplicationInfo::default().api_version(ash::vk::API_VERSION_1_1);
    let create = ash::vk::InstanceCreateInfo::default().application_info(&app);
    // SAFETY: a valid create-info with no layers or extensions; the instance is destroyed below.
    let instance = unsafe { entry.create_instance(&create, None) }
        .map_err(|e| format!("vkCreateInstance failed: {e}"))?;
    // SAFETY: a live instance; handles returned are used only while it lives.
    let result = unsafe { instance.enumerate_physical_devices() }
        .map_err(|e| format!("vkEnumeratePhysicalDevices failed: {e}"))
        .map(|devices| {
            devices
                .into_iter()
                .map(|device| {
                    // SAFETY: `device` belongs to the live instance.
                    let properties = unsafe { instance.get_physical_device_properties(device) };
                    // SAFETY: as above.
                    let memory = unsafe { instance.get_physical_device_memory_properties(device) };
                    let memory_bytes = memory.memory_heaps[..memory.memory_heap_count as usize]
                        .iter()
                        .filter(|h| h.flags.contains(ash::vk::MemoryHeapFlags::DEVICE_LOCAL))
                        .map(|h| h.size)
                        .sum();
                    let name = properties
                        .device_name_as_c_str()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    GpuInfo {
                        api: GpuApi::Vulkan,
                        vendor_id: properties.vendor_id,
                        name,
                        device_type: match properties.device_type {
                            ash::vk::PhysicalDeviceType::DISCRETE_GPU => GpuType::Discrete,
                            ash::vk::PhysicalDeviceType::INTEGRATED_GPU => GpuType::Integrated,
                            ash::vk::PhysicalDeviceType::VIRTUAL_GPU => GpuType::Virtual,
                            ash::vk::PhysicalDeviceType::CPU => GpuType::Cpu,
                            _ => GpuType::Other,
                        },
                        memory_bytes,
                        driver_version: properties.driver_version,
                        compute_capability: None,
                        free_bytes: None,
                    }
                })
                .collect()
        });
    // SAFETY: no object created from the instance is alive any more.
    unsafe { instance.destroy_instance(None) };
    result
}

/// The CUDA driver library's file name on this platform.
pub fn cuda_library_name() -> &'static str {
    if cfg!(target_os = "windows") {
        "nvcuda.dll"
    } else {
        "libcuda.so.1"
    }
}

type CuResult = std::ffi::c_int;

/// NVIDIA GPUs through the CUDA driver API, or the driver's state.
pub fn cuda_devices() -> (CudaDriver, Vec<GpuInfo>) {
    cuda_devices_from(cuda_library_name())
}

/// As [`cuda_devices`], with the driver library's name or path given (tests use a missing one).
pub fn cuda_devices_from(library: &str) -> (CudaDriver, Vec<GpuInfo>) {
    // SAFETY: the NVIDIA driver library's initialisers are safe to run; a missing library is an
    // error value.
    let lib = match unsafe { libloading::Library::new(library) } {
        Ok(lib) => lib,
        Err(_) => {
            return (
                CudaDriver::Missing("driver library not found".into()),
                Vec::new(),
            )
        }
    };
    macro_rules! sym {
        ($name:literal, $ty:ty) => {
            // SAFETY: the symbol has this signature in every CUDA driver since 3.2 (cuda.h).
            match unsafe { lib.get::<$ty>($name) } {
                Ok(s) => *s,
                Err(_) => {
                    return (
                        CudaDriver::Missing(format!(
                            "driver library lacks {}",
                            String::from_utf8_lossy($name)
                        )),
                        Vec::new(),
                    )
                }
            }
        };
    }
    let cu_init = sym!(b"cuInit", unsafe extern "C" fn(u32) -> CuResult);
    let cu_version = sym!(
        b"cuDriverGetVersion",
        unsafe extern "C" fn(*mut i32) -> CuResult
    );
    let cu_count = sym!(
        b"cuDeviceGetCount",
        unsafe extern "C" fn(*mut i32) -> CuResult
    );
    let cu_get = sym!(
        b"cuDeviceGet",
        unsafe extern "C" fn(*mut i32, i32) -> CuResult
    );
    let cu_name = sym!(
        b"cuDeviceGetName",
        unsafe extern "C" fn(*mut std::ffi::c_char, i32, i32) -> CuResult
    );
    let cu_total = sym!(
        b"cuDeviceTotalMem_v2",
        unsafe extern "C" fn(*mut usize, i32) -> CuResult
    );
    let cu_attribute = sym!(
        b"cuDeviceGetAttribute",
        unsafe extern "C" fn(*mut i32, i32, i32) -> CuResult
    );
    let cu_retain = sym!(
        b"cuDevicePrimaryCtxRetain",
        unsafe extern "C" fn(*mut *mut std::ffi::c_void, i32) -> CuResult
    );
    let cu_release = sym!(
        b"cuDevicePrimaryCtxRelease_v2",
        unsafe extern "C" fn(i32) -> CuResult
    );
    let cu_set_current = sym!(
        b"cuCtxSetCurrent",
        unsafe extern "C" fn(*mut std::ffi::c_void) -> CuResult
    );
    let cu_mem_info = sym!(
        b"cuMemGetInfo_v2",
        unsafe extern "C" fn(*mut usize, *mut usize) -> CuResult
    );
    // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR
    const CC_MAJOR: i32 = 75;
    const CC_MINOR: i32 = 76;
    // SAFETY: plain driver calls with valid out-pointers to locals.
    unsafe {
        if cu_init(0) != 0 {
            return (
                CudaDriver::Missing("cuInit failed (no usable NVIDIA device or driver)".into()),
                Vec::new(),
            );
        }
        let mut version = 0;
        cu_version(&mut version);
        let mut count = 0;
        if cu_count(&mut count) != 0 {
            count = 0;
        }
        let mut gpus = Vec::new();
        for ordinal in 0..count {
            let mut device = 0;
            if cu_get(&mut device, ordinal) != 0 {
                continue;
            }
            let mut name = [0 as std::ffi::c_char; 256];
            cu_name(name.as_mut_ptr(), name.len() as i32, device);
            let mut total = 0usize;
            cu_total(&mut total, device);
            let (mut major, mut minor) = (0, 0);
            let capability = (cu_attribute(&mut major, CC_MAJOR, device) == 0
                && cu_attribute(&mut minor, CC_MINOR, device) == 0)
                .then_some((major, minor));
            // Free memory needs a context: retain the primary one briefly.
            let mut free_bytes = None;
            let mut context = std::ptr::null_mut();
            if cu_retain(&mut context, device) == 0 {
                let (mut free, mut total_now) = (0usize, 0usize);
                if cu_set_current(context) == 0 && cu_mem_info(&mut free, &mut total_now) == 0 {
                    free_bytes = Some(free as u64);
                }
                cu_set_current(std::ptr::null_mut());
                cu_release(device);
            }
            gpus.push(GpuInfo {
                api: GpuApi::Cuda,
                vendor_id: 0x10de,
                name: std::ffi::CStr::from_ptr(name.as_ptr())
                    .to_string_lossy()
                    .into_owned(),
                device_type: GpuType::Discrete,
                memory_bytes: total as u64,
                driver_version: version as u32,
                compute_capability: capability,
                free_bytes,
            });
        }
        (CudaDriver::Present { version }, gpus)
    }
}
