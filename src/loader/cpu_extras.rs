//! The CPU backend's extra buffer types (weight repacking, AMX), and which of them the pinned
//! build cannot be trusted with.

use std::ffi::{c_void, CStr};

use crate::loader::LlamaLibrary;
use crate::sys::upstream::{ggml_backend_buffer_type_t, ggml_backend_dev_t};

/// `ggml_backend_dev_get_extra_bufts_t`: a NULL-terminated list of buffer types.
type GetExtraBufts = unsafe extern "C" fn(ggml_backend_dev_t) -> *mut ggml_backend_buffer_type_t;

/// Extra buffer types whose kernels crash in the pinned build: the AMX matrix kernels load a
/// tile configuration that the compiler may drop and run on worker threads that never asked
/// the kernel for tile-data permission (SIGILL on `tilezero`; reported upstream, unfixed in
/// llama.cpp 0.6.0-dev).
pub const FAULTY_EXTRA_BUFFER_TYPES: &[&str] = &["AMX"];

impl LlamaLibrary {
    /// Names of the extra buffer types the CPU backend offers for weights (`CPU_REPACK`,
    /// `AMX`, ...); empty when the backend exports none.
    #[doc(alias = "ggml_backend_dev_get_extra_bufts")]
    pub fn cpu_extra_buffer_types(&self) -> Vec<String> {
        let (Some(ggml), Some(base)) = (self.ggml(), self.ggml_base()) else {
            // The BitNet fork's CPU backend has no extra buffer types.
            return Vec::new();
        };
        let name = c"CPU";
        let _read = crate::loader::rpc::registry_read();
        // SAFETY: a NUL-terminated name; the registry lookup returns NULL when absent.
        let reg = unsafe { (ggml.ggml_backend_reg_by_name)(name.as_ptr()) };
        if reg.is_null() {
            return Vec::new();
        }
        // SAFETY: a live registry; NUL-terminated symbol name.
        let proc = unsafe {
            (base.ggml_backend_reg_get_proc_address)(
                reg,
                c"ggml_backend_dev_get_extra_bufts".as_ptr(),
            )
        };
        // SAFETY: a live registry with at least this many devices.
        let n_dev = unsafe { (base.ggml_backend_reg_dev_count)(reg) };
        if proc.is_null() || n_dev == 0 {
            return Vec::new();
        }
        // SAFETY: the CPU registry exports this name with the ggml-backend.h typedef
        // `ggml_backend_dev_get_extra_bufts_t`.
        let get: GetExtraBufts = unsafe { std::mem::transmute::<*mut c_void, GetExtraBufts>(proc) };
        // SAFETY: index 0 < n_dev.
        let device = unsafe { (base.ggml_backend_reg_dev_get)(reg, 0) };
        // SAFETY: a live CPU device; the list is static and NULL-terminated.
        let mut list = unsafe { get(device) };
        let mut names = Vec::new();
        while !list.is_null() {
            // SAFETY: `list` points into the NULL-terminated array.
            let buft = unsafe { *list };
            if buft.is_null() || names.len() > 64 {
                break;
            }
            // SAFETY: a live buffer type; its name is a static string.
            let name = unsafe { (base.ggml_backend_buft_name)(buft) };
            if !name.is_null() {
                // SAFETY: NUL-terminated static string.
                names.push(
                    unsafe { CStr::from_ptr(name) }
                        .to_string_lossy()
                        .into_owned(),
                );
            }
            // SAFETY: not past the terminator (checked above).
            list = unsafe { list.add(1) };
        }
        names
    }

    /// Whether models loaded with this library may use the CPU's extra buffer types: `false`
    /// when one of them is known to crash in the pinned build ([`FAULTY_EXTRA_BUFFER_TYPES`]).
    pub fn extra_buffer_types_are_safe(&self) -> bool {
        !self
            .cpu_extra_buffer_types()
            .iter()
            .any(|n| FAULTY_EXTRA_BUFFER_TYPES.contains(&n.as_str()))
    }
}
