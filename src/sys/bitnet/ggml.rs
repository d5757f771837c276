//! The ggml functions a loader needs from the fork's single `libggml` (it has no `libggml-base`,
//! no dynamically loaded backends and no `ggml_version`/`ggml_commit`). Checked against the fork's
//! ggml.h and ggml-backend.h by `tests/header_table.rs`.

use std::ffi::{c_char, c_int, c_void};

use super::types::*;

crate::function_table! {
    /// Functions exported by the fork's `libggml`.
    pub struct GgmlFunctions {
        required {
            fn ggml_log_set(log_callback: ggml_log_callback, user_data: *mut c_void);
            fn ggml_type_name(r#type: ggml_type) -> *const c_char;
            fn ggml_cpu_has_avx2() -> c_int;
            fn ggml_cpu_has_avx512() -> c_int;
            fn gguf_get_version(ctx: *const gguf_context) -> c_int;
            fn ggml_backend_reg_count() -> usize;
            fn ggml_backend_reg_get(index: usize) -> ggml_backend_reg_t;
            fn ggml_backend_reg_name(reg: ggml_backend_reg_t) -> *const c_char;
            fn ggml_backend_reg_dev_count(reg: ggml_backend_reg_t) -> usize;
            fn ggml_backend_reg_dev_get(reg: ggml_backend_reg_t, index: usize) -> ggml_backend_dev_t;
            fn ggml_backend_dev_count() -> usize;
            fn ggml_backend_dev_get(index: usize) -> ggml_backend_dev_t;
            fn ggml_backend_dev_by_type(r#type: ggml_backend_dev_type) -> ggml_backend_dev_t;
            fn ggml_backend_dev_name(device: ggml_backend_dev_t) -> *const c_char;
            fn ggml_backend_dev_description(device: ggml_backend_dev_t) -> *const c_char;
            fn ggml_backend_dev_memory(device: ggml_backend_dev_t, free: *mut usize, total: *mut usize);
            fn ggml_backend_dev_type(device: ggml_backend_dev_t) -> ggml_backend_dev_type;
            fn ggml_backend_dev_get_props(device: ggml_backend_dev_t, props: *mut ggml_backend_dev_props);
            fn ggml_backend_dev_backend_reg(device: ggml_backend_dev_t) -> ggml_backend_reg_t;
        }
        optional {}
    }
}
