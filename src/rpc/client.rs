//! Adding RPC servers for a model load: each endpoint checked and probed in Rust, then
//! `ggml_backend_rpc_add_server` and `ggml_backend_register` (what llama.cpp's `--rpc` does).

use std::ffi::CString;

use super::probe::probe_address;
use super::{error, ProbeOptions, RpcEndpoint, RpcProblem, MAX_SERVERS};
use crate::error::{Error, Result};
use crate::loader::rpc::RegisteredDevice;
use crate::loader::LlamaLibrary;

/// The servers a loaded model uses, counted while it lives (see
/// `LlamaLibrary::rpc_acquire`).
pub(crate) struct RpcLease {
    library: LlamaLibrary,
    endpoints: Vec<String>,
}

impl RpcLease {
    pub(crate) fn new(library: &LlamaLibrary, endpoints: Vec<String>) -> Self {
        library.rpc_acquire(&endpoints);
        RpcLease {
            library: library.clone(),
            endpoints,
        }
    }
}

impl Drop for RpcLease {
    fn drop(&mut self) {
        self.library.rpc_release(&self.endpoints);
    }
}

/// Makes the servers of `endpoints` known to ggml, in order, and returns each one's key (the
/// endpoint string ggml knows it by: its resolved IPv4 address) with its devices.
///
/// Everything the C client aborts on is checked first: the syntax (done by the type), IPv4,
/// name resolution, duplicates, the count, the RPC plugin, and for a server not already in use
/// by a loaded model the TCP connection, the HELLO exchange and the device count
/// ([`super::probe`]). A server already in use keeps its open connection: the pinned server
/// answers one client at a time, so a probe would wait behind it.
pub(crate) fn attach(
    library: &LlamaLibrary,
    endpoints: &[RpcEndpoint],
    options: &ProbeOptions,
) -> Result<Vec<(String, Vec<RegisteredDevice>)>> {
    if endpoints.len() > MAX_SERVERS {
        return Err(error(
            format!("{} servers", endpoints.len()),
            RpcProblem::ServerList,
            format!("at most {MAX_SERVERS} servers (GGML_RPC_MAX_SERVERS)"),
        ));
    }
    let mut resolved = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let address = endpoint.resolve()?;
        if let Some((other, _)) = resolved.iter().find(|(_, a)| *a == address) {
            return Err(error(
                endpoint,
                RpcProblem::ServerList,
                format!("the same server ({address}) as {other} (listed twice)"),
            ));
        }
        resolved.push((endpoint, address));
    }
    library
        .load_rpc_plugin()
        .map_err(|e| error(joined(endpoints), RpcProblem::NoPlugin, e.to_string()))?;
    let mut attached = Vec::with_capacity(resolved.len());
    for (endpoint, address) in resolved {
        let key = address.to_string();
        if let Some((devices, users)) = library.rpc_registered(&key) {
            if users > 0 {
                log::debug!("RPC server {endpoint} is in use by a loaded model: not probed again");
                attached.push((key, devices));
                continue;
            }
        }
        let info = probe_address(endpoint, address, options)?;
        let key_c = CString::new(key.clone())
            .map_err(|_| error(endpoint, RpcProblem::Malformed, "contains a NUL byte"))?;
        let memory: Vec<(u64, u64)> = info.devices.iter().map(|d| (d.free, d.total)).collect();
        let devices = library.rpc_add_server(&key_c, &memory).map_err(|reason| {
            let problem = if reason == crate::loader::rpc::NO_DEVICES {
                RpcProblem::NoDevices
            } else {
                // The plugin failed, or the registry is being read on this thread.
                RpcProblem::NoPlugin
            };
            error(endpoint, problem, reason)
        })?;
        log::info!(
            "RPC server {endpoint} ({key}): protocol {}.{}.{}, {} device(s)",
            info.version.0,
            info.version.1,
            info.version.2,
            devices.len()
        );
        attached.push((key, devices));
    }
    Ok(attached)
}

/// The error for a model load with RPC servers that did not accept in-process use.
pub(crate) fn in_process_refused(endpoints: &[RpcEndpoint]) -> Error {
    error(
        joined(endpoints),
        RpcProblem::InProcess,
        "the pinned ggml-rpc aborts the process when a server is lost, and blocks it when a server stops answering",
    )
}

/// The endpoints as one comma-separated list, for errors about all of them.
fn joined(endpoints: &[RpcEndpoint]) -> String {
    endpoints
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
