//! The ggml functions a loader needs, each table resolved from the library that defines it:
//! `libggml-base` (versions, logging, devices and registries), `libggml` (the backend registry and
//! plugin loading) and each CPU module (`ggml_backend_score`).

use std::ffi::{c_char, c_void};

use super::types::*;

crate::function_table! {
    /// Functions exported by `libggml-base`.
    pub struct GgmlBaseFunctions {
        required {
            fn ggml_version() -> *const c_char;
            fn ggml_commit() -> *const c_char;
            fn ggml_log_set(log_callback: ggml_log_callback, user_data: *mut c_void);
            fn ggml_backend_dev_name(device: ggml_backend_dev_t) -> *const c_char;
            fn ggml_backend_dev_description(device: ggml_backend_dev_t) -> *const c_char;
            fn ggml_backend_dev_memory(device: ggml_backend_dev_t, free: *mut usize, total: *mut usize);
            fn ggml_backend_dev_type(device: ggml_backend_dev_t) -> ggml_backend_dev_type;
            fn ggml_backend_dev_get_props(device: ggml_backend_dev_t, props: *mut ggml_backend_dev_props);
            fn ggml_backend_dev_backend_reg(device: ggml_backend_dev_t) -> ggml_backend_reg_t;
            fn ggml_backend_reg_name(reg: ggml_backend_reg_t) -> *const c_char;
            fn ggml_backend_reg_dev_count(reg: ggml_backend_reg_t) -> usize;
            fn ggml_backend_reg_dev_get(reg: ggml_backend_reg_t, index: usize) -> ggml_backend_dev_t;
            fn ggml_backend_reg_get_proc_address(reg: ggml_backend_reg_t, name: *const c_char) -> *mut c_void;
            fn ggml_backend_buft_name(buft: ggml_backend_buffer_type_t) -> *const c_char;
        }
        optional {}
    }
}

crate::function_table! {
    /// Functions exported by `libggml` (the backend registry).
    pub struct GgmlFunctions {
        required {
            fn ggml_backend_load(path: *const c_char) -> ggml_backend_reg_t;
            fn ggml_backend_unload(reg: ggml_backend_reg_t);
            fn ggml_backend_load_all_from_path(dir_path: *const c_char);
            fn ggml_backend_reg_count() -> usize;
            fn ggml_backend_reg_get(index: usize) -> ggml_backend_reg_t;
            fn ggml_backend_reg_by_name(name: *const c_char) -> ggml_backend_reg_t;
            fn ggml_backend_dev_count() -> usize;
            fn ggml_backend_dev_get(index: usize) -> ggml_backend_dev_t;
            fn ggml_backend_dev_by_type(r#type: ggml_backend_dev_type) -> ggml_backend_dev_t;
            fn ggml_backend_register(reg: ggml_backend_reg_t);
            fn ggml_backend_device_register(device: ggml_backend_dev_t);
        }
        optional {}
    }
}

crate::function_table! {
    /// Functions exported by each CPU ISA module (`libggml-cpu-<isa>.so`) built with
    /// `GGML_BACKEND_DL`.
    pub struct CpuModuleFunctions {
        required {
            fn ggml_backend_score() -> std::ffi::c_int;
            fn ggml_backend_init() -> ggml_backend_reg_t;
        }
        optional {}
    }
}
