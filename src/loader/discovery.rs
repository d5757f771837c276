//! Finding variant directories.
//!
//! Search order (first match wins for each variant directory kind):
//! 1. directories given in code ([`SearchPaths::with_dir`]);
//! 2. `GGUF_LOADER_VARIANTS_DIR`: a directory of variant directories, or one variant directory;
//! 3. next to the executable: `<exe dir>/gguf-variants/`, then `<exe dir>` itself;
//! 4. the provisioning cache: `$GGUF_LOADER_CACHE/variants` (default
//!    `$XDG_CACHE_HOME/gguf-loader/variants`, else `~/.cache/gguf-loader/variants`).
//!
//! A variant directory holds `libllama`, `libggml`, `libggml-base` and backend plugins (the
//! BitNet fork's: `libllama` and `libggml` only); a
//! `manifest.json` is optional (an official release or a user's own cmake build has none, and its
//! kind is then inferred from the plugins present).

use std::path::{Path, PathBuf};

use crate::error::LoadError;
use crate::loader::abi::AbiGeneration;
use crate::loader::manifest::{Manifest, ABI_BITNET_2024};
use crate::loader::variant::{AuxBackend, Backend, VariantKind};

/// Environment variable naming a directory of variant directories (or one variant directory).
pub const VARIANTS_DIR_ENV: &str = "GGUF_LOADER_VARIANTS_DIR";
/// Environment variable naming the provisioning cache root.
pub const CACHE_ENV: &str = "GGUF_LOADER_CACHE";

/// The three core libraries of a variant directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreLibraries {
    /// `libggml-base` (for the BitNet fork, whose `libggml` holds everything: `libggml`)
    pub ggml_base: PathBuf,
    /// `libggml`
    pub ggml: PathBuf,
    /// `libllama`
    pub llama: PathBuf,
}

/// One directory of llama.cpp libraries.
#[derive(Debug, Clone)]
pub struct VariantDirectory {
    /// The directory.
    pub path: PathBuf,
    /// Its manifest, when it has one.
    pub manifest: Option<Manifest>,
    /// The directory kind: the manifest's name, or inferred from plugins (the most preferred GPU
    /// backend present in [`Backend::ALL`] order: `cuda`, `metal`, `vulkan`; else `cpu`).
    pub kind: String,
    /// Backends whose plugins are present.
    pub backends: Vec<Backend>,
    /// CPU ISA modules present (`x64`, `haswell`, ...).
    pub cpu_modules: Vec<String>,
    /// The core libraries.
    pub libraries: CoreLibraries,
    /// The ABI generation the directory declares (its manifest's `abi`), or, without a
    /// manifest, the BitNet fork when it has no `libggml-base` (the loader's ABI check has the
    /// last word either way).
    pub abi: AbiGeneration,
}

fn platform_library_name(stem: &str) -> String {
    if cfg!(target_os = "windows") {
        format!("{stem}.dll")
    } else if cfg!(target_os = "macos") {
        format!("lib{stem}.dylib")
    } else {
        format!("lib{stem}.so")
    }
}

/// Finds the file for library `stem` (`llama`, `ggml`, `ggml-base`) in `dir`: the plain name
/// first, else a versioned one (`libllama.so.0`, `libllama.v0.4.0.so`).
pub fn find_library(dir: &Path, stem: &str) -> Option<PathBuf> {
    let plain = dir.join(platform_library_name(stem));
    if plain.is_file() {
        return Some(plain);
    }
    let prefix = if cfg!(target_os = "windows") {
        format!("{stem}.")
    } else {
        format!("lib{stem}.")
    };
    let suffix = if cfg!(target_os = "windows") {
        ".dll"
    } else if cfg!(target_os = "macos") {
        ".dylib"
    } else {
        ".so"
    };
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.contains(suffix))
        })
        .filter(|p| p.is_file())
        .collect();
    candidates.sort_by_key(|p| p.as_os_str().len());
    candidates.into_iter().next()
}

/// File-name prefix and suffix of backend plugins (ggml names them `libggml-<name>.so` on every
/// Unix, `ggml-<name>.dll` on Windows).
fn plugin_affixes() -> (&'static str, &'static str) {
    if cfg!(target_os = "windows") {
        ("", ".dll")
    } else {
        ("lib", ".so")
    }
}

/// The path of a backend plugin or CPU module (`ggml-vulkan`, `ggml-cpu-haswell`) in `dir`.
pub fn plugin_path(dir: &Path, stem: &str) -> PathBuf {
    let (prefix, suffix) = plugin_affixes();
    dir.join(format!("{prefix}{stem}{suffix}"))
}

/// The path of the CPU ISA module `isa` (`haswell` for `libggml-cpu-haswell.so`) in `dir`.
pub fn cpu_module_path(dir: &Path, isa: &str) -> PathBuf {
    plugin_path(dir, &Backend::cpu_module_stem(isa))
}

impl VariantDirectory {
    /// The plugin file of the auxiliary backend `aux` (`libggml-rpc.so`), if the directory has
    /// it.
    pub fn aux_plugin(&self, aux: AuxBackend) -> Option<PathBuf> {
        Some(plugin_path(&self.path, aux.plugin_stem())).filter(|p| p.is_file())
    }

    /// The auxiliary backends whose plugins are present (not variants of their own; see
    /// [`AuxBackend`]).
    pub fn aux_backends(&self) -> Vec<AuxBackend> {
        AuxBackend::ALL
            .into_iter()
            .filter(|aux| self.aux_plugin(*aux).is_some())
            .collect()
    }

    /// Inspects `dir`: finds the core libraries and plugins and reads the manifest if any.
    ///
    /// # Errors
    /// `NotFound` when a core library is missing; `InvalidManifest` for a broken manifest.
    pub fn open(dir: &Path) -> Result<Self, LoadError> {
        let find = |stem: &str| {
            find_library(dir, stem).ok_or_else(|| LoadError::NotFound {
                what: format!("{} (llama.cpp core library)", platform_library_name(stem)),
                searched: vec![dir.to_path_buf()],
            })
        };
        let manifest = Manifest::read(dir)?;
        let abi = match manifest.as_ref().and_then(|m| m.abi.as_deref()) {
            Some(ABI_BITNET_2024) => AbiGeneration::BitNet2024,
            Some(_) => AbiGeneration::Upstream,
            // The fork's pair without upstream's libggml-base (an empty or partial directory
            // is reported as a missing upstream library).
            None if manifest.is_none()
                && find_library(dir, "ggml-base").is_none()
                && find_library(dir, "ggml").is_some()
                && find_library(dir, "llama").is_some() =>
            {
                AbiGeneration::BitNet2024
            }
            None => AbiGeneration::Upstream,
        };
        // Looked for in load order: libggml-base (upstream only), libggml, libllama.
        let ggml_base = match abi {
            AbiGeneration::Upstream => Some(find("ggml-base")?),
            AbiGeneration::BitNet2024 => None,
        };
        let ggml = find("ggml")?;
        let libraries = CoreLibraries {
            ggml_base: ggml_base.unwrap_or_else(|| ggml.clone()),
            ggml,
            llama: find("llama")?,
        };
        let mut cpu_modules = Vec::new();
        let (prefix, suffix) = plugin_affixes();
        let cpu_prefix = format!("{prefix}{}-", Backend::Cpu.plugin_stem());
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(module) = name
                    .strip_prefix(&cpu_prefix)
                    .and_then(|rest| rest.strip_suffix(suffix))
                {
                    cpu_modules.push(module.to_string());
                }
            }
        }
        cpu_modules.sort();
        // A backend is present when its plugin is; the CPU backend also when it comes as
        // per-ISA modules only.
        let mut backends: Vec<Backend> = Backend::ALL
            .into_iter()
            .filter(|b| {
                plugin_path(dir, b.plugin_stem()).is_file()
                    || (*b == Backend::Cpu && !cpu_modules.is_empty())
            })
            .collect();
        // The directory kind without a manifest: its most preferred GPU backend, else the CPU.
        let inferred = backends
            .iter()
            .copied()
            .find(|b| b.kind() == VariantKind::Gpu)
            .unwrap_or(Backend::Cpu);
        backends.sort();
        let kind = match (&manifest, abi) {
            (Some(m), _) => m.name.clone(),
            (None, AbiGeneration::BitNet2024) => "bitnet-cpu".to_string(),
            (None, AbiGeneration::Upstream) => inferred.name().to_string(),
        };
        if abi == AbiGeneration::BitNet2024 && backends.is_empty() {
            // The fork's libggml has the CPU backend built in.
            backends.push(Backend::Cpu);
        }
        if let Some(m) = &manifest {
            for lib in [&libraries.ggml_base, &libraries.ggml, &libraries.llama] {
                let name = lib
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let listed = m.libraries.contains_key(&name) || m.aliases.contains_key(&name);
                if !listed {
                    return Err(LoadError::InvalidManifest {
                        path: dir.join(crate::loader::manifest::MANIFEST_FILE),
                        reason: format!("{name} is in the directory but not in the manifest"),
                    });
                }
            }
        }
        Ok(Self {
            path: dir.to_path_buf(),
            manifest,
            kind,
            backends,
            cpu_modules,
            libraries,
            abi,
        })
    }
}

/// Where to look for variant directories.
#[derive(Debug, Clone, Default)]
pub struct SearchPaths {
    explicit: Vec<PathBuf>,
    skip_environment: bool,
}

impl SearchPaths {
    /// The default search (environment, executable directory, cache).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory searched before everything else: a variant directory, or a directory of
    /// variant directories.
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.explicit.push(dir.into());
        self
    }

    /// Ignores `GGUF_LOADER_VARIANTS_DIR`, the executable's directory and the cache: only the
    /// explicit directories are searched.
    pub fn only_explicit(mut self) -> Self {
        self.skip_environment = true;
        self
    }

    /// The roots searched, in order.
    pub fn roots(&self) -> Vec<PathBuf> {
        let mut roots = self.explicit.clone();
        if self.skip_environment {
            return roots;
        }
        if let Some(dir) = std::env::var_os(VARIANTS_DIR_ENV) {
            roots.push(PathBuf::from(dir));
        }
        if let Some(exe_dir) = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            roots.push(exe_dir.join("gguf-variants"));
            roots.push(exe_dir);
        }
        roots.push(cache_root().join("variants"));
        roots
    }

    /// Every variant directory found, in search order (a root that is itself a variant directory
    /// comes before its subdirectories). Directories that fail to open are skipped and returned
    /// with their error.
    pub fn discover(&self) -> (Vec<VariantDirectory>, Vec<(PathBuf, LoadError)>) {
        let mut found = Vec::new();
        let mut broken = Vec::new();
        for root in self.roots() {
            let mut candidates = vec![root.clone()];
            if let Ok(entries) = std::fs::read_dir(&root) {
                let mut subdirs: Vec<PathBuf> = entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect();
                subdirs.sort();
                candidates.extend(subdirs);
            }
            for dir in candidates {
                if find_library(&dir, "llama").is_none() {
                    continue;
                }
                match VariantDirectory::open(&dir) {
                    Ok(v) => found.push(v),
                    Err(e) => broken.push((dir, e)),
                }
            }
        }
        (found, broken)
    }

    /// The first directory of `kind` (`cpu`, `vulkan`, ...).
    ///
    /// # Errors
    /// `NotFound` listing every root searched.
    pub fn find_kind(&self, kind: &str) -> Result<VariantDirectory, LoadError> {
        let (found, _) = self.discover();
        found
            .into_iter()
            .find(|v| v.kind == kind)
            .ok_or_else(|| LoadError::NotFound {
                what: format!("a `{kind}` variant directory"),
                searched: self.roots(),
            })
    }
}

/// The provisioning cache root.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("gguf-loader");
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache").join("gguf-loader"))
        .unwrap_or_else(|| std::env::temp_dir().join("gguf-loader"))
}
