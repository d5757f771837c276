//! `ggml-rpc.h` of the pinned source: the RPC backend plugin (`libggml-rpc`, registry name
//! `RPC`). Its two entry points that take no live ggml object are reached through the
//! registry's proc-address table (`ggml_backend_reg_get_proc_address`), as llama.cpp's own
//! tools do, so they are function-pointer types here rather than a symbol table. The wire
//! constants mirror `ggml-rpc.cpp` and `transport.h` (checked by `tests/rpc.rs`).

#![allow(non_camel_case_types)]

use std::ffi::c_char;

use super::types::{ggml_backend_dev_t, ggml_backend_reg_t};

/// `RPC_PROTO_MAJOR_VERSION`: a server must answer HELLO with exactly this major version.
pub const RPC_PROTO_MAJOR_VERSION: u8 = 7;
/// `RPC_PROTO_MINOR_VERSION`: a server's minor version may not be above this one.
pub const RPC_PROTO_MINOR_VERSION: u8 = 0;
/// `RPC_PROTO_PATCH_VERSION`.
pub const RPC_PROTO_PATCH_VERSION: u8 = 0;
/// `GGML_RPC_MAX_SERVERS`.
pub const GGML_RPC_MAX_SERVERS: usize = 16;

/// `RPC_CMD_GET_DEVICE_MEMORY` (`enum rpc_cmd`).
pub const RPC_CMD_GET_DEVICE_MEMORY: u8 = 11;
/// `RPC_CMD_HELLO` (always 14, `static_assert`ed upstream).
pub const RPC_CMD_HELLO: u8 = 14;
/// `RPC_CMD_DEVICE_COUNT`.
pub const RPC_CMD_DEVICE_COUNT: u8 = 15;
/// `RPC_CONN_CAPS_SIZE` (`transport.h`): the transport capabilities carried by HELLO.
pub const RPC_CONN_CAPS_SIZE: usize = 24;
/// `sizeof(rpc_msg_hello_req)`: the connection capabilities.
pub const RPC_HELLO_REQ_SIZE: usize = RPC_CONN_CAPS_SIZE;
/// `sizeof(rpc_msg_hello_rsp)`: major, minor, patch, padding, connection capabilities.
pub const RPC_HELLO_RSP_SIZE: usize = 4 + RPC_CONN_CAPS_SIZE;
/// `sizeof(rpc_msg_device_count_rsp)`.
pub const RPC_DEVICE_COUNT_RSP_SIZE: usize = 4;
/// `sizeof(rpc_msg_get_device_memory_req)`.
pub const RPC_GET_DEVICE_MEMORY_REQ_SIZE: usize = 4;
/// `sizeof(rpc_msg_get_device_memory_rsp)`: free and total bytes.
pub const RPC_GET_DEVICE_MEMORY_RSP_SIZE: usize = 16;

/// The registry name of the RPC plugin (`ggml_backend_rpc_reg_get_name` without a server).
pub const RPC_REGISTRY_NAME: &str = "RPC";

/// `ggml_backend_rpc_add_server`, as returned by the proc-address table under that name:
/// connects to `endpoint` (`host:port`), asks its device count, and returns a registry whose
/// devices are the server's. Aborts the process when it cannot connect or the handshake fails.
pub type ggml_backend_rpc_add_server_t =
    unsafe extern "C" fn(endpoint: *const c_char) -> ggml_backend_reg_t;

/// `ggml_backend_rpc_start_server`, as returned by the proc-address table under that name:
/// serves `n_devices` devices on `endpoint` (an IPv4 literal and a port) until the process
/// ends; returns only when it cannot start (bad arguments, a backend that does not initialise,
/// a socket it cannot bind) or `accept` fails.
pub type ggml_backend_rpc_start_server_t = unsafe extern "C" fn(
    endpoint: *const c_char,
    cache_dir: *const c_char,
    n_threads: usize,
    n_devices: usize,
    devices: *mut ggml_backend_dev_t,
);
