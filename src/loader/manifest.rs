//! `manifest.json`: what `variants/provision` records about a variant directory.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::LoadError;

/// The file name of a variant directory's manifest.
pub const MANIFEST_FILE: &str = "manifest.json";

/// A variant directory's manifest.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct Manifest {
    /// Manifest format version.
    pub format: u32,
    /// Variant name (`cpu`, `vulkan`, ...).
    pub name: String,
    /// `cpu` or `gpu`.
    pub kind: String,
    /// Backends the directory brings (`cpu`, `vulkan`, ...).
    pub backends: Vec<String>,
    /// CPU ISA modules present (`x64`, `haswell`, ...).
    #[serde(default)]
    pub cpu_modules: Vec<String>,
    /// The source the libraries were built from.
    pub source: ManifestSource,
    /// What `llama_version()` reported at build time.
    pub llama_version: String,
    /// What `ggml_version()` reported at build time.
    pub ggml_version: String,
    /// What `ggml_commit()` reported at build time.
    #[serde(default)]
    pub ggml_commit: String,
    /// The cmake flags used.
    pub cmake_flags: Vec<String>,
    /// sha256 of every library file.
    pub libraries: BTreeMap<String, String>,
    /// Symbolic links (alias -> target).
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// When and how long the build took.
    pub build: ManifestBuild,
    /// The ABI generation (`upstream` when absent; `bitnet-2024` for the BitNet fork).
    #[serde(default)]
    pub abi: Option<String>,
    /// The x86-64 ISA level the libraries were compiled for (`avx2`, `avx512`), for builds
    /// that are not split into per-ISA CPU modules (the BitNet fork's).
    #[serde(default)]
    pub isa: Option<String>,
}

/// The manifest `abi` value of the BitNet fork's builds.
pub const ABI_BITNET_2024: &str = "bitnet-2024";

/// Where a variant's libraries were built from.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct ManifestSource {
    /// Registry crate holding the llama.cpp source.
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// Its version.
    pub version: String,
}

/// Build facts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct ManifestBuild {
    /// UTC time the build finished.
    pub finished_utc: String,
    /// Build duration in seconds.
    pub seconds: u64,
}

impl Manifest {
    /// Reads `dir/manifest.json`; `Ok(None)` when the directory has none.
    ///
    /// # Errors
    /// `LoadError::InvalidManifest` when the file exists but cannot be read or parsed.
    pub fn read(dir: &Path) -> Result<Option<Self>, LoadError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(LoadError::InvalidManifest {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LoadError::InvalidManifest {
                path,
                reason: e.to_string(),
            })
    }
}
