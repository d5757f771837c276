//! The unsafe side of ggml's RPC backend: the plugin (loaded with the directory's plugins, or on
//! demand), its proc-address entry points, the servers registered in this process, and the lock
//! that keeps ggml's global backend registry from being changed while it is read.
//!
//! ggml's registry (`ggml_backend_reg_count/get`, `ggml_backend_dev_count/get`) is a pair of
//! plain `std::vector`s without a lock. Loading a plugin or registering a server appends to
//! them, and llama.cpp iterates them while loading models and creating contexts, so every call
//! of this crate that reads the registry holds [`registry_read`] and the two writers hold
//! [`registry_write`]. The safe layer (`crate::rpc`) validates everything first: the functions
//! here only call C.

use std::cell::Cell;
use std::ffi::{c_void, CStr};
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::LoadError;
use crate::loader::library::LlamaLibrary;
use crate::loader::variant::AuxBackend;
use crate::sys::upstream::rpc::{ggml_backend_rpc_add_server_t, ggml_backend_rpc_start_server_t};
use crate::sys::upstream::{
    ggml_backend_dev_props, ggml_backend_dev_t, ggml_backend_reg_t, GGML_BACKEND_DEVICE_TYPE_GPU,
    GGML_BACKEND_DEVICE_TYPE_IGPU,
};
use crate::sys::upstream::{GgmlBaseFunctions, GgmlFunctions};

static REGISTRY: RwLock<()> = RwLock::new(());

thread_local! {
    /// How many [`RegistryRead`] guards this thread holds (nested reads take no second lock, so
    /// a writer waiting in between cannot deadlock a thread against itself).
    static READS_HELD: Cell<usize> = const { Cell::new(0) };
}

/// A read hold on ggml's backend registry (see the module documentation). Not `Send`.
pub(crate) struct RegistryRead {
    _guard: Option<RwLockReadGuard<'static, ()>>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for RegistryRead {
    fn drop(&mut self) {
        READS_HELD.with(|held| held.set(held.get().saturating_sub(1)));
    }
}

/// Holds the registry for reading until the guard is dropped (re-entrant per thread).
pub(crate) fn registry_read() -> RegistryRead {
    let nested = READS_HELD.with(|held| {
        let n = held.get();
        held.set(n + 1);
        n > 0
    });
    RegistryRead {
        _guard: (!nested).then(|| REGISTRY.read().unwrap_or_else(|p| p.into_inner())),
        _not_send: PhantomData,
    }
}

/// Holds the registry for writing; refused on a thread that is reading it (it would wait for
/// itself), e.g. a progress callback of a model load that adds an RPC server.
fn registry_write() -> Result<RwLockWriteGuard<'static, ()>, String> {
    if READS_HELD.with(Cell::get) > 0 {
        return Err(
            "this thread is inside a llama.cpp call that reads the backend registry (a callback?); add RPC servers before loading".into(),
        );
    }
    Ok(REGISTRY.write().unwrap_or_else(|p| p.into_inner()))
}

/// A ggml device handle. ggml never frees devices (registries and their devices live until the
/// process ends), so the handle may move between threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DevicePtr(pub(crate) ggml_backend_dev_t);

// SAFETY: a device handle is an immutable, process-lifetime object of the loaded libraries; the
// functions the crate calls on it are thread-safe (ggml calls them from any thread).
unsafe impl Send for DevicePtr {}
// SAFETY: as above.
unsafe impl Sync for DevicePtr {}

#[derive(Clone, Copy)]
struct RegPtr(ggml_backend_reg_t);

// SAFETY: registries are process-lifetime objects as well (never unregistered by this crate).
unsafe impl Send for RegPtr {}

/// The plugin's entry points.
#[derive(Clone, Copy)]
struct RpcPlugin {
    add_server: ggml_backend_rpc_add_server_t,
    start_server: ggml_backend_rpc_start_server_t,
}

/// [`LlamaLibrary::rpc_add_server`]'s error when ggml found no device on the server.
pub(crate) const NO_DEVICES: &str = "the server reports no devices";

/// One remote device registered in this process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RegisteredDevice {
    pub(crate) device: DevicePtr,
    /// Free and total bytes as the Rust-side probe read them when the server was added.
    pub(crate) memory_free: u64,
    pub(crate) memory_total: u64,
}

struct Registered {
    /// The endpoint string ggml knows the server by (its dispatcher and registry key).
    endpoint: String,
    devices: Vec<RegisteredDevice>,
    /// Loaded models that use the server (while one lives, its connection may be open, and the
    /// pinned server answers one client at a time: a second probe would wait for it).
    users: usize,
}

#[derive(Default)]
struct RpcState {
    plugin: Option<RpcPlugin>,
    servers: Vec<Registered>,
}

static RPC: Mutex<RpcState> = Mutex::new(RpcState {
    plugin: None,
    servers: Vec::new(),
});

fn state() -> std::sync::MutexGuard<'static, RpcState> {
    RPC.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `device` belongs to the RPC backend (its registry is named `RPC`). No network.
pub(crate) fn is_rpc_device(library: &LlamaLibrary, device: ggml_backend_dev_t) -> bool {
    let Some(base) = library.ggml_base() else {
        return false;
    };
    // SAFETY: a live device handle; the registry name is a static string of the plugin.
    let name = unsafe {
        let reg = (base.ggml_backend_dev_backend_reg)(device);
        if reg.is_null() {
            return false;
        }
        (base.ggml_backend_reg_name)(reg)
    };
    if name.is_null() {
        return false;
    }
    // SAFETY: NUL-terminated static string.
    unsafe { CStr::from_ptr(name) }.to_bytes() == AuxBackend::Rpc.registry_name().as_bytes()
}

/// The memory the probe read for a registered remote device (ggml's own query would open a
/// connection: it may block on a busy server or abort on a lost one).
pub(crate) fn registered_memory(device: ggml_backend_dev_t) -> Option<(u64, u64)> {
    state()
        .servers
        .iter()
        .flat_map(|s| s.devices.iter())
        .find(|d| d.device.0 == device)
        .map(|d| (d.memory_free, d.memory_total))
}

impl LlamaLibrary {
    /// The RPC plugin file of the loaded directory, if it has one.
    pub fn rpc_plugin_path(&self) -> Option<PathBuf> {
        self.directory().aux_plugin(AuxBackend::Rpc)
    }

    /// Whether this build can use RPC servers: the RPC plugin is registered, or its file is in
    /// the directory and [`Self::load_rpc_plugin`] would load it.
    #[doc(alias = "llama_supports_rpc")]
    pub fn supports_rpc(&self) -> bool {
        self.rpc_registry().is_some() || self.rpc_plugin_path().is_some()
    }

    /// Whether llama.cpp itself reports RPC support now (`llama_supports_rpc`: the plugin is
    /// registered).
    pub fn llama_supports_rpc(&self) -> bool {
        let _read = registry_read();
        // SAFETY: no arguments; the registry is not being changed (read hold).
        self.llama()
            .is_some_and(|llama| unsafe { (llama.llama_supports_rpc)() })
    }

    fn rpc_registry(&self) -> Option<RegPtr> {
        let _read = registry_read();
        // SAFETY: a NUL-terminated name; NULL when no registry has it.
        let reg = unsafe { (self.ggml()?.ggml_backend_reg_by_name)(c"RPC".as_ptr()) };
        (!reg.is_null()).then_some(RegPtr(reg))
    }

    /// Loads the RPC plugin (`libggml-rpc`) of the directory if it is not registered yet (a
    /// library loaded with one CPU module has only that module), and resolves its entry points.
    ///
    /// # Errors
    /// `NotFound` when the directory has no RPC plugin (a build without `-DGGML_RPC=ON`),
    /// `BackendInit` when ggml refuses it, `MissingSymbol` when its registry does not offer
    /// `ggml_backend_rpc_add_server` / `ggml_backend_rpc_start_server`,
    /// `InvalidConfiguration` when called from inside a llama.cpp call on this thread.
    #[doc(alias = "ggml_backend_load")]
    #[doc(alias = "ggml_backend_rpc_reg")]
    pub fn load_rpc_plugin(&self) -> Result<(), LoadError> {
        self.rpc_plugin().map(|_| ())
    }

    /// The upstream ggml tables (the BitNet fork's build has no RPC backend).
    fn rpc_tables(&self) -> Result<(&GgmlFunctions, &GgmlBaseFunctions), LoadError> {
        match (self.ggml(), self.ggml_base()) {
            (Some(ggml), Some(base)) => Ok((ggml, base)),
            _ => Err(LoadError::InvalidConfiguration {
                name: "rpc".into(),
                value: self.directory().path.display().to_string(),
                reason: "the BitNet fork's build has no RPC backend".into(),
            }),
        }
    }

    fn rpc_plugin(&self) -> Result<RpcPlugin, LoadError> {
        let (ggml, base) = self.rpc_tables()?;
        if let Some(plugin) = state().plugin {
            return Ok(plugin);
        }
        let reg = match self.rpc_registry() {
            Some(reg) => reg,
            None => {
                let path = self.rpc_plugin_path().ok_or_else(|| LoadError::NotFound {
                    what: format!(
                        "the RPC backend plugin lib{}.so (build llama.cpp with -DGGML_RPC=ON)",
                        AuxBackend::Rpc.plugin_stem()
                    ),
                    searched: vec![self.directory().path.clone()],
                })?;
                let path_c = crate::ffi::strings::path(&path).map_err(|e| {
                    LoadError::InvalidConfiguration {
                        name: "path".into(),
                        value: path.display().to_string(),
                        reason: e.reason(),
                    }
                })?;
                let _write =
                    registry_write().map_err(|reason| LoadError::InvalidConfiguration {
                        name: "rpc".into(),
                        value: path.display().to_string(),
                        reason,
                    })?;
                // Another thread may have loaded it while this one waited.
                // SAFETY: a NUL-terminated name; the registry is held (for writing).
                let existing = unsafe { (ggml.ggml_backend_reg_by_name)(c"RPC".as_ptr()) };
                if existing.is_null() {
                    // SAFETY: a NUL-terminated path of the RPC plugin of this same, verified
                    // build (its constructors only set up statics); the registry is held for
                    // writing.
                    let reg = unsafe { (ggml.ggml_backend_load)(path_c.as_ptr()) };
                    if reg.is_null() {
                        return Err(LoadError::BackendInit {
                            path,
                            reason:
                                "ggml_backend_load returned no registry (see the llama.cpp log)"
                                    .into(),
                        });
                    }
                    log::debug!("loaded the RPC plugin {} on demand", path.display());
                    RegPtr(reg)
                } else {
                    RegPtr(existing)
                }
            }
        };
        let lookup = |name: &CStr| -> Result<*mut c_void, LoadError> {
            // SAFETY: a live registry and a NUL-terminated name; the RPC registry answers
            // with a static function address or NULL, without touching the network.
            let address = unsafe { (base.ggml_backend_reg_get_proc_address)(reg.0, name.as_ptr()) };
            if address.is_null() {
                Err(LoadError::MissingSymbol {
                    path: self
                        .rpc_plugin_path()
                        .unwrap_or_else(|| self.directory().path.clone()),
                    symbol: name.to_string_lossy().into_owned(),
                })
            } else {
                Ok(address)
            }
        };
        let add = lookup(c"ggml_backend_rpc_add_server")?;
        let start = lookup(c"ggml_backend_rpc_start_server")?;
        // SAFETY: the RPC registry returns these addresses for exactly these names, with the
        // signatures of ggml-rpc.h (mirrored in sys::upstream::rpc).
        let plugin = unsafe {
            RpcPlugin {
                add_server: std::mem::transmute::<*mut c_void, ggml_backend_rpc_add_server_t>(add),
                start_server: std::mem::transmute::<*mut c_void, ggml_backend_rpc_start_server_t>(
                    start,
                ),
            }
        };
        state().plugin = Some(plugin);
        Ok(plugin)
    }

    /// The devices of `endpoint` if it is registered in this process.
    pub(crate) fn rpc_registered(&self, endpoint: &str) -> Option<(Vec<RegisteredDevice>, usize)> {
        state()
            .servers
            .iter()
            .find(|s| s.endpoint == endpoint)
            .map(|s| (s.devices.clone(), s.users))
    }

    /// Adds the server at `endpoint` (`ggml_backend_rpc_add_server`) and registers its
    /// registry globally (`ggml_backend_register`, as llama.cpp's `--rpc` does). `probed`
    /// holds the memory of each remote device as the Rust probe read it.
    ///
    /// The caller must have probed the endpoint from Rust just before (reachable, protocol
    /// version accepted, at least one device): ggml aborts the process otherwise.
    pub(crate) fn rpc_add_server(
        &self,
        endpoint: &CStr,
        probed: &[(u64, u64)],
    ) -> Result<Vec<RegisteredDevice>, String> {
        let plugin = self.rpc_plugin().map_err(|e| e.to_string())?;
        let key = endpoint.to_string_lossy().into_owned();
        if let Some((devices, _)) = self.rpc_registered(&key) {
            return Ok(devices);
        }
        let _write = registry_write()?;
        if let Some((devices, _)) = self.rpc_registered(&key) {
            return Ok(devices);
        }
        // SAFETY: a NUL-terminated `host:port` that the caller validated and probed (reachable,
        // HELLO answered with an accepted version, device count > 0); the registry is held for
        // writing, since ggml_backend_register appends to it below.
        let reg = unsafe { (plugin.add_server)(endpoint.as_ptr()) };
        if reg.is_null() {
            return Err(NO_DEVICES.into());
        }
        let (ggml, base) = self.rpc_tables().map_err(|e| e.to_string())?;
        // SAFETY: a live registry of the RPC plugin; its device list is local (no network).
        let count = unsafe { (base.ggml_backend_reg_dev_count)(reg) };
        let mut devices = Vec::with_capacity(count);
        for index in 0..count {
            // SAFETY: index < count.
            let device = unsafe { (base.ggml_backend_reg_dev_get)(reg, index) };
            let (memory_free, memory_total) = probed.get(index).copied().unwrap_or((0, 0));
            devices.push(RegisteredDevice {
                device: DevicePtr(device),
                memory_free,
                memory_total,
            });
        }
        // SAFETY: a live registry; the registry is held for writing. Registering reads the
        // device count and handles only (no network).
        unsafe { (ggml.ggml_backend_register)(reg) };
        state().servers.push(Registered {
            endpoint: key,
            devices: devices.clone(),
            users: 0,
        });
        Ok(devices)
    }

    /// Counts a loaded model as a user of `endpoints` (see [`Registered::users`]).
    pub(crate) fn rpc_acquire(&self, endpoints: &[String]) {
        for server in state().servers.iter_mut() {
            if endpoints.contains(&server.endpoint) {
                server.users += 1;
            }
        }
    }

    /// Releases what [`Self::rpc_acquire`] counted.
    pub(crate) fn rpc_release(&self, endpoints: &[String]) {
        for server in state().servers.iter_mut() {
            if endpoints.contains(&server.endpoint) {
                server.users = server.users.saturating_sub(1);
            }
        }
    }

    /// Whether any RPC server is registered in this process (models then get an explicit
    /// device list, so one model's servers are not used by another).
    pub(crate) fn rpc_any_registered(&self) -> bool {
        !state().servers.is_empty()
    }

    /// The local devices llama.cpp would pick by default for offloading, in its order
    /// (`llama_prepare_model_devices` without `devices`): discrete GPUs (one per `device_id`),
    /// else integrated GPUs of one backend; RPC devices left out. The caller holds
    /// [`registry_read`].
    pub(crate) fn default_local_devices(&self) -> Vec<DevicePtr> {
        let Some(base) = self.ggml_base() else {
            // The fork offloads nothing.
            return Vec::new();
        };
        let mut gpus: Vec<(DevicePtr, Option<String>)> = Vec::new();
        let mut igpus: Vec<DevicePtr> = Vec::new();
        for (_, device) in self.device_handles() {
            if is_rpc_device(self, device) {
                continue;
            }
            // SAFETY: a live local device; its type is a constant of the backend.
            let kind = unsafe { (base.ggml_backend_dev_type)(device) };
            if kind == GGML_BACKEND_DEVICE_TYPE_GPU {
                let id = device_id(self, device);
                let duplicate = id.is_some()
                    && gpus
                        .iter()
                        .any(|(_, other)| other.is_some() && *other == id);
                if !duplicate {
                    gpus.push((DevicePtr(device), id));
                }
            } else if kind == GGML_BACKEND_DEVICE_TYPE_IGPU {
                // SAFETY: live devices; registries are static objects.
                let same_reg = igpus.last().map_or(true, |last| unsafe {
                    (base.ggml_backend_dev_backend_reg)(last.0)
                        == (base.ggml_backend_dev_backend_reg)(device)
                });
                if same_reg {
                    igpus.push(DevicePtr(device));
                }
            }
        }
        if gpus.is_empty() {
            igpus
        } else {
            gpus.into_iter().map(|(d, _)| d).collect()
        }
    }

    /// Handles of the local (non-RPC) devices, with their descriptions. The caller holds
    /// [`registry_read`].
    pub(crate) fn local_device_handles(&self) -> Vec<(crate::loader::Device, DevicePtr)> {
        self.device_handles()
            .into_iter()
            .filter(|(_, device)| !is_rpc_device(self, *device))
            .map(|(index, device)| (self.describe_device(index, device), DevicePtr(device)))
            .collect()
    }

    /// Runs `ggml_backend_rpc_start_server` on the calling thread; returns only when the server
    /// could not start or stopped accepting (ggml printed why on stderr).
    ///
    /// The caller checked everything ggml would fail on first: an `endpoint` of an IPv4
    /// literal and a port it could bind a moment ago, `devices` local and not empty, `threads`
    /// above zero, a writable `cache_dir`.
    pub(crate) fn rpc_start_server(
        &self,
        endpoint: &CStr,
        cache_dir: Option<&CStr>,
        threads: usize,
        devices: &[DevicePtr],
    ) -> Result<(), String> {
        if devices.is_empty() || threads == 0 {
            return Err("no device or no thread to serve with".into());
        }
        let plugin = self.rpc_plugin().map_err(|e| e.to_string())?;
        let mut raw: Vec<ggml_backend_dev_t> = devices.iter().map(|d| d.0).collect();
        // SAFETY: NUL-terminated endpoint and cache directory (or NULL) that outlive the call
        // (which only returns on failure); `raw` holds `raw.len()` live local device handles;
        // the endpoint was parsed and its port bound from Rust just before, threads > 0.
        unsafe {
            (plugin.start_server)(
                endpoint.as_ptr(),
                cache_dir.map_or(std::ptr::null(), CStr::as_ptr),
                threads,
                raw.len(),
                raw.as_mut_ptr(),
            )
        };
        Ok(())
    }
}

/// `props.device_id` of a local device (NULL: unknown).
fn device_id(library: &LlamaLibrary, device: ggml_backend_dev_t) -> Option<String> {
    // SAFETY: an all-zero props struct is valid (NULL pointers, zero sizes, type 0, no caps).
    let mut props: ggml_backend_dev_props = unsafe { std::mem::zeroed() };
    // SAFETY: a live local device; props is written by the callee.
    unsafe { (library.ggml_base()?.ggml_backend_dev_get_props)(device, &mut props) };
    if props.device_id.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string owned by the device.
    Some(
        unsafe { CStr::from_ptr(props.device_id) }
            .to_string_lossy()
            .into_owned(),
    )
}
