//! [`RpcServer`]: this process's devices served to RPC clients.

use std::convert::Infallible;
use std::ffi::CString;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};

use super::{error, RpcEndpoint, RpcProblem};
use crate::error::{Error, Result};
use crate::loader::rpc::DevicePtr;
use crate::loader::{Device, DeviceType, LlamaLibrary};

/// How to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcServerOptions {
    /// The address to listen on (an IPv4 address of this machine; ggml-rpc listens over IPv4
    /// only). Default `127.0.0.1`.
    pub host: Ipv4Addr,
    /// The port (1..=65535). Default 50052.
    pub port: u16,
    /// Names of the local devices to serve (`CPU`, `Vulkan0`, ...; case-insensitive). Empty:
    /// every GPU of the loaded build, else the CPU (as upstream's `rpc-server` does).
    pub devices: Vec<String>,
    /// Threads of the CPU backend (at least 1). Default: the available parallelism.
    pub threads: usize,
    /// Where the server caches large tensors by hash, so that a client's reload skips sending
    /// them (created when missing). `None`: no cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RpcServerOptions {
    fn default() -> Self {
        RpcServerOptions {
            host: Ipv4Addr::LOCALHOST,
            port: 50052,
            devices: Vec::new(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cache_dir: None,
        }
    }
}

/// An RPC server of local devices, checked and ready to [`serve`](RpcServer::serve).
///
/// ```no_run
/// use gguf_loader::loader::LlamaLibrary;
/// use gguf_loader::rpc::{RpcServer, RpcServerOptions};
/// # fn demo(library: &LlamaLibrary) -> gguf_loader::Result<()> {
/// let server = RpcServer::new(library, RpcServerOptions { port: 50052, threads: 4, ..Default::default() })?;
/// eprintln!("listening on {}", server.endpoint());
/// match server.serve()? {} // blocks for the rest of the process
/// # }
/// ```
#[derive(Debug)]
pub struct RpcServer {
    library: LlamaLibrary,
    endpoint: RpcEndpoint,
    address: SocketAddrV4,
    endpoint_c: CString,
    cache_dir: Option<PathBuf>,
    cache_dir_c: Option<CString>,
    devices: Vec<(Device, DevicePtr)>,
    threads: usize,
}

impl RpcServer {
    /// Checks everything `ggml_backend_rpc_start_server` would fail or stop on, in Rust: the
    /// RPC plugin (loaded on demand), the thread count, the devices (local devices of the
    /// loaded build, by name), the cache directory (created, and written to once), and the
    /// address (bound once and released).
    ///
    /// # Errors
    /// `Error::Load` when the build has no RPC plugin; [`Error::Rpc`] with `Threads`,
    /// `Device`, `CacheDir`, `Malformed` (port 0, the broadcast address) or `Bind` (in use,
    /// not an address of this machine, no permission), naming the endpoint.
    #[doc(alias = "ggml_backend_rpc_start_server")]
    pub fn new(library: &LlamaLibrary, options: RpcServerOptions) -> Result<Self> {
        let endpoint = RpcEndpoint::ipv4(options.host, options.port);
        library.load_rpc_plugin()?;
        let max_threads = crate::Context::max_threads().max(1) as usize;
        if options.threads == 0 || options.threads > max_threads {
            return Err(error(
                &endpoint,
                RpcProblem::Threads,
                format!("{} threads (1..={max_threads})", options.threads),
            ));
        }
        if options.port == 0 {
            return Err(error(
                &endpoint,
                RpcProblem::Malformed,
                "port 0 would listen on a port the clients cannot know",
            ));
        }
        if options.host == Ipv4Addr::BROADCAST {
            return Err(error(
                &endpoint,
                RpcProblem::Malformed,
                "255.255.255.255 is not an address to listen on (ggml's inet_addr refuses it)",
            ));
        }
        let devices = choose_devices(library, &endpoint, &options.devices)?;
        let cache_dir_c = match &options.cache_dir {
            Some(dir) => Some(check_cache_dir(&endpoint, dir)?),
            None => None,
        };
        let address = SocketAddrV4::new(options.host, options.port);
        check_bind(&endpoint, address)?;
        let endpoint_c = CString::new(endpoint.to_string())
            .map_err(|_| error(&endpoint, RpcProblem::Malformed, "contains a NUL byte"))?;
        Ok(RpcServer {
            library: library.clone(),
            endpoint,
            address,
            endpoint_c,
            cache_dir: options.cache_dir,
            cache_dir_c,
            devices,
            threads: options.threads,
        })
    }

    /// The endpoint clients connect to.
    pub fn endpoint(&self) -> &RpcEndpoint {
        &self.endpoint
    }

    /// The devices served, in the order clients see them (remote device 0, 1, ...).
    pub fn devices(&self) -> Vec<Device> {
        self.devices.iter().map(|(d, _)| d.clone()).collect()
    }

    /// The CPU backend's thread count.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The tensor cache directory.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    /// Serves on the calling thread for the rest of the process: ggml-rpc accepts one client
    /// at a time and serves it until it disconnects, then waits for the next. It prints its
    /// banner and each connection on stdout.
    ///
    /// The address is bound once more from Rust right before ggml binds it, so a port taken
    /// since [`Self::new`] is reported here; ggml's own failures after that (the port taken in
    /// between, `accept` failing) return too. A client sending malformed requests can abort
    /// the server process (ggml-rpc asserts on some of them): serve trusted clients only.
    ///
    /// # Errors
    /// Returns only with an error: [`Error::Rpc`] with `Bind` (checked again first) or
    /// `Stopped` (ggml-rpc returned; it printed why on stderr).
    #[doc(alias = "ggml_backend_rpc_start_server")]
    pub fn serve(self) -> Result<Infallible> {
        check_bind(&self.endpoint, self.address)?;
        let handles: Vec<DevicePtr> = self.devices.iter().map(|(_, d)| *d).collect();
        log::info!(
            "serving {} on {} with {} threads",
            self.devices
                .iter()
                .map(|(d, _)| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            self.endpoint,
            self.threads
        );
        self.library
            .rpc_start_server(
                &self.endpoint_c,
                self.cache_dir_c.as_deref(),
                self.threads,
                &handles,
            )
            .map_err(|reason| error(&self.endpoint, RpcProblem::Stopped, reason))?;
        Err(error(
            &self.endpoint,
            RpcProblem::Stopped,
            "ggml-rpc returned: it could not create its server socket, a device backend did not start, or accept failed (see stderr)",
        ))
    }
}

fn choose_devices(
    library: &LlamaLibrary,
    endpoint: &RpcEndpoint,
    names: &[String],
) -> Result<Vec<(Device, DevicePtr)>> {
    let local = {
        let _read = crate::loader::rpc::registry_read();
        library.local_device_handles()
    };
    let list = || {
        local
            .iter()
            .map(|(d, _)| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if names.is_empty() {
        let gpus: Vec<_> = local
            .iter()
            .filter(|(d, _)| matches!(d.device_type, DeviceType::Gpu | DeviceType::IntegratedGpu))
            .cloned()
            .collect();
        if !gpus.is_empty() {
            return Ok(gpus);
        }
        return local
            .iter()
            .find(|(d, _)| d.device_type == DeviceType::Cpu)
            .cloned()
            .map(|d| vec![d])
            .ok_or_else(|| {
                error(
                    endpoint,
                    RpcProblem::Device,
                    format!("no GPU and no CPU device to serve (devices: {})", list()),
                )
            });
    }
    let mut chosen: Vec<(Device, DevicePtr)> = Vec::new();
    for name in names {
        let found = local
            .iter()
            .find(|(d, _)| d.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                error(
                    endpoint,
                    RpcProblem::Device,
                    format!("no local device named {name:?} (devices: {})", list()),
                )
            })?;
        if chosen.iter().any(|(d, _)| d.index == found.0.index) {
            return Err(error(
                endpoint,
                RpcProblem::Device,
                format!("device {name:?} is named twice"),
            ));
        }
        chosen.push(found.clone());
    }
    Ok(chosen)
}

fn check_cache_dir(endpoint: &RpcEndpoint, dir: &Path) -> Result<CString> {
    let bad = |reason: String| {
        error(
            endpoint,
            RpcProblem::CacheDir,
            format!("{}: {reason}", dir.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| bad(format!("cannot create it: {e}")))?;
    if !dir.is_dir() {
        return Err(bad("not a directory".into()));
    }
    let probe = dir.join(format!(".gguf-loader-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| bad(format!("cannot write into it: {e}")))?;
    crate::ffi::strings::path(dir).map_err(|e| bad(e.reason()))
}

/// Binds `address` and releases it at once (std sets `SO_REUSEADDR` as ggml does, so the same
/// bind succeeds for ggml unless another socket takes the port in between).
fn check_bind(endpoint: &RpcEndpoint, address: SocketAddrV4) -> Result<()> {
    match TcpListener::bind(address) {
        Ok(listener) => {
            drop(listener);
            Ok(())
        }
        Err(e) => {
            let reason = match e.kind() {
                ErrorKind::AddrInUse => format!("port {} is in use", address.port()),
                ErrorKind::AddrNotAvailable => {
                    format!("{} is not an address of this machine", address.ip())
                }
                ErrorKind::PermissionDenied => {
                    format!("no permission to listen on port {}", address.port())
                }
                _ => format!("cannot listen on {address}: {e}"),
            };
            Err(Error::Rpc {
                endpoint: endpoint.to_string(),
                problem: RpcProblem::Bind,
                reason,
            })
        }
    }
}
