//! [`LlamaLibrary`]: one verified, initialised llama.cpp build, shared by every safe wrapper.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::LoadError;
use crate::loader::discovery::{cpu_module_path, VariantDirectory};
use crate::loader::raw::RawLibrary;
use crate::loader::AbiGeneration;
use crate::loader::{abi, log as llama_log};
use crate::sys::bitnet;
use crate::sys::upstream::{
    self, ggml_backend_dev_t, GgmlBaseFunctions, GgmlFunctions, LlamaFunctions,
    GGML_BACKEND_DEVICE_TYPE_ACCEL, GGML_BACKEND_DEVICE_TYPE_CPU, GGML_BACKEND_DEVICE_TYPE_GPU,
    GGML_BACKEND_DEVICE_TYPE_IGPU,
};

/// Which backend plugins of a variant directory to load before `llama_backend_init`.
///
/// The RPC plugin (`libggml-rpc`, an [`AuxBackend`](crate::loader::AuxBackend)) comes with
/// [`Self::AllInDirectory`]; with the other selections it is loaded on demand, when RPC is
/// first used ([`LlamaLibrary::load_rpc_plugin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSelection {
    /// `ggml_backend_load_all_from_path(dir)`: every plugin (RPC included), and the
    /// best-scoring CPU module.
    AllInDirectory,
    /// Exactly one CPU module, `libggml-cpu-<isa>.so` (no GPU plugin).
    CpuModule(String),
    /// These plugin files, in order, with `ggml_backend_load`.
    Files(Vec<PathBuf>),
}

/// What kind of device ggml reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceType {
    /// The CPU.
    Cpu,
    /// A discrete GPU (lavapipe reports itself as one).
    Gpu,
    /// An integrated GPU.
    IntegratedGpu,
    /// An accelerator used with the CPU backend.
    Accelerator,
    /// Anything else.
    Other,
}

/// One device a loaded backend offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Index in ggml's device list.
    pub index: usize,
    /// Device name (`CPU`, `Vulkan0`, ...).
    pub name: String,
    /// Human-readable description.
    pub description: String,
    /// Backend (registry) name (`CPU`, `Vulkan`, ...).
    pub backend: String,
    /// Device type.
    pub device_type: DeviceType,
    /// Free memory in bytes.
    pub memory_free: usize,
    /// Total memory in bytes.
    pub memory_total: usize,
}

/// The resolved tables of the loaded generation (one per process, so the size difference of
/// the variants costs nothing).
#[allow(clippy::large_enum_variant)]
enum Tables {
    Upstream {
        llama: LlamaFunctions,
        ggml: GgmlFunctions,
        ggml_base: GgmlBaseFunctions,
    },
    Bitnet {
        llama: bitnet::LlamaFunctions,
        ggml: bitnet::GgmlFunctions,
    },
}

struct Inner {
    directory: VariantDirectory,
    canonical: PathBuf,
    selection: PluginSelection,
    tables: Tables,
    llama_version: String,
    ggml_version: String,
    ggml_commit: String,
    plugins: Vec<PathBuf>,
}

/// A verified and initialised llama.cpp build.
///
/// Cheap to clone (an `Arc`); every safe wrapper holds one, so the libraries outlive every
/// model, context and sampler.
///
/// # Thread-safety
/// `Send + Sync`: it holds only function pointers and immutable data. Loading is serialised by a
/// process-wide lock, so several threads may load at once: the first initialises, the others get
/// the same library.
///
/// # Platform-specific behaviour
/// One build (one directory) is loaded per process; asking for another afterwards is
/// `LoadError::ConflictingBuild`. Builds of one code base share sonames (`libggml-base.so.0`
/// of two upstream variants), and glibc binds a second build's dependencies to the first's
/// by soname, silently; the upstream and BitNet-fork builds have different sonames and were
/// measured to work side by side (`tests/c/two_builds.c`), but an abort in either would end
/// both, so the second code base runs in a [`crate::worker::WorkerModel`] instead. Once
/// initialised, the libraries stay mapped until the process exits (llama.cpp keeps threads and
/// registries in them).
#[derive(Clone)]
pub struct LlamaLibrary {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LlamaLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaLibrary")
            .field("directory", &self.inner.directory.path)
            .field("kind", &self.inner.directory.kind)
            .field("selection", &self.inner.selection)
            .field("llama_version", &self.inner.llama_version)
            .field("ggml_version", &self.inner.ggml_version)
            .finish()
    }
}

/// What this process has loaded (one build per process).
enum ProcessState {
    Empty,
    Loaded(LlamaLibrary),
    /// A load failed after C code ran: its libraries stay mapped and block other builds.
    Mapped(PathBuf),
}

static PROCESS: Mutex<ProcessState> = Mutex::new(ProcessState::Empty);

impl LlamaLibrary {
    /// Loads, verifies and initialises the build in `directory`.
    ///
    /// Order: `libggml-base` (then `ggml_version()` is checked), `libggml`, `libllama` (then
    /// `llama_version()` and the symbol fingerprint), every table resolved, logging routed into
    /// the `log` crate, backend plugins loaded as `selection` says, `llama_backend_init`, and at
    /// least one device required.
    ///
    /// # Errors
    /// Any [`LoadError`]; nothing is initialised when the build is foreign or incomplete.
    pub fn load(
        directory: &VariantDirectory,
        selection: PluginSelection,
    ) -> Result<Self, LoadError> {
        let canonical = directory
            .path
            .canonicalize()
            .unwrap_or_else(|_| directory.path.clone());
        let mut state = PROCESS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*state {
            ProcessState::Loaded(library) => {
                return if library.inner.canonical == canonical
                    && library.inner.selection == selection
                {
                    Ok(library.clone())
                } else {
                    Err(LoadError::ConflictingBuild {
                        loaded: library.inner.directory.path.clone(),
                        requested: directory.path.clone(),
                    })
                };
            }
            ProcessState::Mapped(path) if *path != canonical => {
                return Err(LoadError::ConflictingBuild {
                    loaded: path.clone(),
                    requested: directory.path.clone(),
                });
            }
            _ => {}
        }
        if let Some(manifest) = &directory.manifest {
            let (llama_expected, ggml_expected) = match directory.abi {
                AbiGeneration::Upstream => (upstream::LLAMA_VERSION, upstream::GGML_VERSION),
                AbiGeneration::BitNet2024 => (bitnet::FORK_VERSION, bitnet::FORK_VERSION),
            };
            for (check, found, expected) in [
                (
                    "manifest llama_version",
                    &manifest.llama_version,
                    llama_expected,
                ),
                (
                    "manifest ggml_version",
                    &manifest.ggml_version,
                    ggml_expected,
                ),
            ] {
                if found != expected {
                    return Err(LoadError::AbiMismatch {
                        path: directory.path.join(crate::loader::manifest::MANIFEST_FILE),
                        check: check.into(),
                        found: found.clone(),
                        expected: expected.into(),
                    });
                }
            }
        }
        match Self::load_unlocked(directory, canonical.clone(), selection) {
            Ok(library) => {
                *state = ProcessState::Loaded(library.clone());
                Ok(library)
            }
            Err((error, initialised)) => {
                if initialised {
                    *state = ProcessState::Mapped(canonical);
                }
                Err(error)
            }
        }
    }

    /// Loads the build in `dir` with every plugin it has (a convenience over [`Self::load`]).
    ///
    /// # Errors
    /// As [`Self::load`], plus those of [`VariantDirectory::open`].
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<Self, LoadError> {
        let directory = VariantDirectory::open(dir.as_ref())?;
        Self::load(&directory, PluginSelection::AllInDirectory)
    }

    /// The library loaded in this process, if any.
    pub fn current() -> Option<Self> {
        match &*PROCESS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
        {
            ProcessState::Loaded(library) => Some(library.clone()),
            _ => None,
        }
    }

    /// The second element of the error says whether C code ran (the libraries must then stay).
    fn load_unlocked(
        directory: &VariantDirectory,
        canonical: PathBuf,
        selection: PluginSelection,
    ) -> Result<Self, (LoadError, bool)> {
        if directory.abi == AbiGeneration::BitNet2024 {
            return Self::load_bitnet(directory, canonical, selection);
        }
        let early = |e: LoadError| (e, false);
        // SAFETY: these are the core libraries of a llama.cpp variant directory; opening them
        // runs only their C++ static constructors. Nothing is called until the versions match.
        let ggml_base =
            unsafe { RawLibrary::open(&directory.libraries.ggml_base) }.map_err(early)?;
        let (ggml_version, ggml_commit) = abi::verify_ggml(&ggml_base).map_err(early)?;
        // SAFETY: as above.
        let ggml = unsafe { RawLibrary::open(&directory.libraries.ggml) }.map_err(early)?;
        // SAFETY: as above.
        let llama = unsafe { RawLibrary::open(&directory.libraries.llama) }.map_err(early)?;
        let llama_version = abi::verify_llama(&llama).map_err(early)?;
        let missing = |e: crate::sys::MissingSymbol| (LoadError::from(e), false);
        let ggml_base_table = GgmlBaseFunctions::load(&ggml_base).map_err(missing)?;
        let ggml_table = GgmlFunctions::load(&ggml).map_err(missing)?;
        let llama_table = LlamaFunctions::load(&llama).map_err(missing)?;

        // From here on C state refers to these libraries: they stay mapped.
        ggml_base.leak();
        ggml.leak();
        llama.leak();
        let late = |e: LoadError| (e, true);

        // SAFETY: the ABI is verified; the callback is a plain function of this crate that never
        // unwinds, and it needs no user data.
        unsafe {
            (ggml_base_table.ggml_log_set)(Some(llama_log::log_callback), std::ptr::null_mut());
            (llama_table.llama_log_set)(Some(llama_log::log_callback), std::ptr::null_mut());
        }

        let plugins = load_plugins(&directory.path, &selection, &ggml_table).map_err(late)?;
        // SAFETY: ABI verified; llama_backend_init takes no arguments and is called once per
        // process (the process lock is held and the state records the load).
        unsafe { (llama_table.llama_backend_init)() };

        let library = LlamaLibrary {
            inner: Arc::new(Inner {
                directory: directory.clone(),
                canonical,
                selection,
                tables: Tables::Upstream {
                    llama: llama_table,
                    ggml: ggml_table,
                    ggml_base: ggml_base_table,
                },
                llama_version,
                ggml_version,
                ggml_commit,
                plugins,
            }),
        };
        library.finish(directory)
    }

    /// Loads the BitNet fork's build: `libggml` (CPU backend and I2_S kernels built in, no
    /// plugins), then `libllama`; both fingerprints checked before any call.
    fn load_bitnet(
        directory: &VariantDirectory,
        canonical: PathBuf,
        selection: PluginSelection,
    ) -> Result<Self, (LoadError, bool)> {
        let early = |e: LoadError| (e, false);
        if selection != PluginSelection::AllInDirectory {
            return Err(early(LoadError::InvalidConfiguration {
                name: "plugin selection".into(),
                value: format!("{selection:?}"),
                reason: "the BitNet fork's build has no backend plugins (its CPU backend is built into libggml)".into(),
            }));
        }
        // SAFETY: the fork's core libraries; opening them runs only their C++ static
        // constructors. Nothing is called until both fingerprints match.
        let ggml = unsafe { RawLibrary::open(&directory.libraries.ggml) }.map_err(early)?;
        // SAFETY: as above.
        let llama = unsafe { RawLibrary::open(&directory.libraries.llama) }.map_err(early)?;
        abi::verify_bitnet(&ggml, &llama).map_err(early)?;
        let missing = |e: crate::sys::MissingSymbol| (LoadError::from(e), false);
        let ggml_table = bitnet::GgmlFunctions::load(&ggml).map_err(missing)?;
        let llama_table = bitnet::LlamaFunctions::load(&llama).map_err(missing)?;
        ggml.leak();
        llama.leak();
        // SAFETY: the fork's ABI is verified; the callback is a plain function of this crate
        // that never unwinds, written for the fork's log levels.
        unsafe {
            (ggml_table.ggml_log_set)(Some(llama_log::bitnet_log_callback), std::ptr::null_mut());
            (llama_table.llama_log_set)(Some(llama_log::bitnet_log_callback), std::ptr::null_mut());
            // No arguments; once per process (the process lock is held).
            (llama_table.llama_backend_init)();
        }
        let library = LlamaLibrary {
            inner: Arc::new(Inner {
                directory: directory.clone(),
                canonical,
                selection,
                tables: Tables::Bitnet {
                    llama: llama_table,
                    ggml: ggml_table,
                },
                llama_version: bitnet::FORK_VERSION.into(),
                ggml_version: bitnet::FORK_VERSION.into(),
                ggml_commit: String::new(),
                plugins: Vec::new(),
            }),
        };
        library.finish(directory)
    }

    /// The last step of a load: at least one device.
    fn finish(self, directory: &VariantDirectory) -> Result<Self, (LoadError, bool)> {
        let late = |e: LoadError| (e, true);
        let library = self;
        if library.devices().is_empty() {
            return Err(late(LoadError::NoDevice {
                variant: directory.kind.clone(),
                backend: "any".into(),
            }));
        }
        log::debug!(
            "loaded llama.cpp {} / ggml {} from {} ({} devices)",
            library.inner.llama_version,
            library.inner.ggml_version,
            directory.path.display(),
            library.devices().len()
        );
        Ok(library)
    }

    /// The ABI generation of the loaded build.
    pub fn generation(&self) -> AbiGeneration {
        match self.inner.tables {
            Tables::Upstream { .. } => AbiGeneration::Upstream,
            Tables::Bitnet { .. } => AbiGeneration::BitNet2024,
        }
    }

    /// The raw llama.h table of an upstream build (`None` for the BitNet fork). Calling it is
    /// `unsafe`: the safe API is the way in.
    pub fn llama(&self) -> Option<&LlamaFunctions> {
        match &self.inner.tables {
            Tables::Upstream { llama, .. } => Some(llama),
            Tables::Bitnet { .. } => None,
        }
    }

    /// The raw llama.h table of a BitNet-fork build (`None` for upstream).
    pub fn bitnet_llama(&self) -> Option<&bitnet::LlamaFunctions> {
        match &self.inner.tables {
            Tables::Bitnet { llama, .. } => Some(llama),
            Tables::Upstream { .. } => None,
        }
    }

    /// The raw libggml table of an upstream build.
    pub fn ggml(&self) -> Option<&GgmlFunctions> {
        match &self.inner.tables {
            Tables::Upstream { ggml, .. } => Some(ggml),
            Tables::Bitnet { .. } => None,
        }
    }

    /// The raw libggml-base table of an upstream build.
    pub fn ggml_base(&self) -> Option<&GgmlBaseFunctions> {
        match &self.inner.tables {
            Tables::Upstream { ggml_base, .. } => Some(ggml_base),
            Tables::Bitnet { .. } => None,
        }
    }

    /// The table the safe layer's ABI-neutral interface dispatches on.
    pub(crate) fn tables(&self) -> crate::ffi::Tables<'_> {
        match &self.inner.tables {
            Tables::Upstream { llama, .. } => crate::ffi::Tables::Upstream(llama),
            Tables::Bitnet { llama, .. } => crate::ffi::Tables::Bitnet(llama),
        }
    }

    /// What `llama_version()` returned.
    pub fn llama_version(&self) -> &str {
        &self.inner.llama_version
    }

    /// What `ggml_version()` returned.
    pub fn ggml_version(&self) -> &str {
        &self.inner.ggml_version
    }

    /// What `ggml_commit()` returned.
    pub fn ggml_commit(&self) -> &str {
        &self.inner.ggml_commit
    }

    /// The variant directory loaded.
    pub fn directory(&self) -> &VariantDirectory {
        &self.inner.directory
    }

    /// The plugin selection used.
    pub fn selection(&self) -> &PluginSelection {
        &self.inner.selection
    }

    /// Plugin files loaded explicitly (empty for [`PluginSelection::AllInDirectory`]).
    pub fn plugins(&self) -> &[PathBuf] {
        &self.inner.plugins
    }

    /// Names of the registered backends (`CPU`, `Vulkan`, ...).
    #[doc(alias = "ggml_backend_reg_name")]
    pub fn backend_names(&self) -> Vec<String> {
        let _read = crate::loader::rpc::registry_read();
        match &self.inner.tables {
            Tables::Upstream {
                ggml, ggml_base, ..
            } => {
                // SAFETY: the registry functions take no pointers; indices are below the count.
                let count = unsafe { (ggml.ggml_backend_reg_count)() };
                (0..count)
                    .map(|i| {
                        // SAFETY: i < count, so the registry exists; its name is a static C
                        // string.
                        unsafe {
                            c_string((ggml_base.ggml_backend_reg_name)((ggml
                                .ggml_backend_reg_get)(
                                i
                            )))
                        }
                    })
                    .collect()
            }
            Tables::Bitnet { ggml, .. } => {
                // SAFETY: as above, with the fork's registry.
                let count = unsafe { (ggml.ggml_backend_reg_count)() };
                (0..count)
                    .map(|i| {
                        // SAFETY: as above.
                        unsafe {
                            c_string((ggml.ggml_backend_reg_name)((ggml.ggml_backend_reg_get)(i)))
                        }
                    })
                    .collect()
            }
        }
    }

    /// Every device the loaded backends offer, remote RPC devices included once a server was
    /// added (their memory is what the Rust-side probe read when the server was added: asking
    /// ggml would open a connection to the server).
    #[doc(alias = "ggml_backend_dev_get")]
    #[doc(alias = "ggml_backend_dev_memory")]
    pub fn devices(&self) -> Vec<Device> {
        let _read = crate::loader::rpc::registry_read();
        self.device_handles()
            .into_iter()
            .map(|(index, device)| self.describe_device(index, device))
            .collect()
    }

    /// Every registered device handle with its registry index (NULL handles left out). The
    /// caller holds [`crate::loader::rpc::registry_read`], so the count cannot change.
    pub(crate) fn device_handles(&self) -> Vec<(usize, ggml_backend_dev_t)> {
        let (count, get): (usize, unsafe extern "C" fn(usize) -> ggml_backend_dev_t) =
            match &self.inner.tables {
                // SAFETY: no arguments.
                Tables::Upstream { ggml, .. } => unsafe {
                    ((ggml.ggml_backend_dev_count)(), ggml.ggml_backend_dev_get)
                },
                // SAFETY: no arguments; the fork's device handles are opaque pointers too.
                Tables::Bitnet { ggml, .. } => unsafe {
                    (
                        (ggml.ggml_backend_dev_count)(),
                        std::mem::transmute::<
                            unsafe extern "C" fn(usize) -> bitnet::ggml_backend_dev_t,
                            unsafe extern "C" fn(usize) -> ggml_backend_dev_t,
                        >(ggml.ggml_backend_dev_get),
                    )
                },
            };
        (0..count)
            .filter_map(|index| {
                // SAFETY: index < count (ggml asserts it).
                let device = unsafe { get(index) };
                (!device.is_null()).then_some((index, device))
            })
            .collect()
    }

    /// Describes one device. For an RPC device the memory comes from the probe (ggml's query
    /// would go over the network, where a busy server blocks and a lost one aborts).
    pub(crate) fn describe_device(&self, index: usize, device: ggml_backend_dev_t) -> Device {
        let base = match &self.inner.tables {
            Tables::Upstream { ggml_base, .. } => ggml_base,
            Tables::Bitnet { ggml, .. } => return describe_bitnet_device(ggml, index, device),
        };
        let (mut free, mut total) = (0usize, 0usize);
        let remote = crate::loader::rpc::is_rpc_device(self, device);
        if remote {
            if let Some((f, t)) = crate::loader::rpc::registered_memory(device) {
                (free, total) = (f as usize, t as usize);
            }
        }
        // SAFETY: `device` is a live device handle from ggml_backend_dev_get; the out-pointers
        // point to local variables; returned strings are owned by the device and copied at once.
        // Name, description, type and registry of an RPC device are local data.
        unsafe {
            if !remote {
                (base.ggml_backend_dev_memory)(device, &mut free, &mut total);
            }
            let device_type = match (base.ggml_backend_dev_type)(device) {
                GGML_BACKEND_DEVICE_TYPE_CPU => DeviceType::Cpu,
                GGML_BACKEND_DEVICE_TYPE_GPU => DeviceType::Gpu,
                GGML_BACKEND_DEVICE_TYPE_IGPU => DeviceType::IntegratedGpu,
                GGML_BACKEND_DEVICE_TYPE_ACCEL => DeviceType::Accelerator,
                _ => DeviceType::Other,
            };
            Device {
                index,
                name: c_string((base.ggml_backend_dev_name)(device)),
                description: c_string((base.ggml_backend_dev_description)(device)),
                backend: c_string((base.ggml_backend_reg_name)((base
                    .ggml_backend_dev_backend_reg)(
                    device
                ))),
                device_type,
                memory_free: free,
                memory_total: total,
            }
        }
    }
}

/// Describes a device of the fork's registry (its device-type enum is older: CPU, GPU,
/// CPU_FULL, GPU_FULL).
fn describe_bitnet_device(
    ggml: &bitnet::GgmlFunctions,
    index: usize,
    device: ggml_backend_dev_t,
) -> Device {
    let device: bitnet::ggml_backend_dev_t = device.cast();
    let (mut free, mut total) = (0usize, 0usize);
    // SAFETY: a live device handle of the fork's registry; out-pointers to locals; strings
    // owned by the device, copied at once.
    unsafe {
        (ggml.ggml_backend_dev_memory)(device, &mut free, &mut total);
        let device_type =
            match (ggml.ggml_backend_dev_type)(device) {
                bitnet::GGML_BACKEND_DEVICE_TYPE_CPU
                | bitnet::GGML_BACKEND_DEVICE_TYPE_CPU_FULL => DeviceType::Cpu,
                bitnet::GGML_BACKEND_DEVICE_TYPE_GPU
                | bitnet::GGML_BACKEND_DEVICE_TYPE_GPU_FULL => DeviceType::Gpu,
                _ => DeviceType::Other,
            };
        Device {
            index,
            name: c_string((ggml.ggml_backend_dev_name)(device)),
            description: c_string((ggml.ggml_backend_dev_description)(device)),
            backend: c_string((ggml.ggml_backend_reg_name)((ggml
                .ggml_backend_dev_backend_reg)(
                device
            ))),
            device_type,
            memory_free: free,
            memory_total: total,
        }
    }
}

/// Copies a C string, mapping NULL to an empty string.
///
/// # Safety
/// `text` is NULL or a valid NUL-terminated string.
unsafe fn c_string(text: *const c_char) -> String {
    if text.is_null() {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

fn load_plugins(
    dir: &Path,
    selection: &PluginSelection,
    ggml: &GgmlFunctions,
) -> Result<Vec<PathBuf>, LoadError> {
    let files = match selection {
        PluginSelection::AllInDirectory => {
            let dir_c = path_to_c(dir)?;
            // SAFETY: a valid NUL-terminated path; ggml copies what it needs.
            unsafe { (ggml.ggml_backend_load_all_from_path)(dir_c.as_ptr()) };
            return Ok(Vec::new());
        }
        PluginSelection::CpuModule(isa) => vec![cpu_module_path(dir, isa)],
        PluginSelection::Files(files) => files.clone(),
    };
    for file in &files {
        if !file.is_file() {
            return Err(LoadError::NotFound {
                what: format!("backend plugin {}", file.display()),
                searched: vec![dir.into()],
            });
        }
        let file_c = path_to_c(file)?;
        // SAFETY: a valid NUL-terminated path of a plugin of this same build.
        let reg = unsafe { (ggml.ggml_backend_load)(file_c.as_ptr()) };
        if reg.is_null() {
            return Err(LoadError::BackendInit {
                path: file.clone(),
                reason: "ggml_backend_load returned no backend (unsupported CPU or missing driver; see the llama.cpp log)".into(),
            });
        }
    }
    Ok(files)
}

/// A C string for a plugin path, through the crate's one path rule (`ffi::strings::path`).
fn path_to_c(path: &Path) -> Result<CString, LoadError> {
    crate::ffi::strings::path(path).map_err(|e| LoadError::InvalidConfiguration {
        name: "path".into(),
        value: path.display().to_string(),
        reason: e.reason(),
    })
}

/// ggml's score for one CPU module file (0: this CPU cannot run it), read by dlopening the module
/// and calling its `ggml_backend_score`.
///
/// # Errors
/// `Open` / `MissingSymbol` when the file is not a ggml CPU module.
pub fn cpu_module_score(path: &Path) -> Result<i32, LoadError> {
    // SAFETY: a ggml CPU module's constructors only set up static tables; the score function
    // reads CPUID and takes no arguments. The module is closed again afterwards.
    let module = unsafe { RawLibrary::open(path) }?;
    let table = upstream::CpuModuleFunctions::load(&module)?;
    // SAFETY: see above.
    Ok(unsafe { (table.ggml_backend_score)() })
}
