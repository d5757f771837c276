//! Choosing and loading the best variant for this machine, with fallback.
//!
//! [`rank`] is pure (hardware profile in, ordered candidates out) so it is unit-testable with
//! injected hardware; [`load_best`] walks the ranking, loading each candidate until one works and
//! recording why every other was rejected.
//!
//! Environment (names kept from the older app):
//! - `GGUF_BACKEND`: force a variant by name (`cpu`, `cpu-haswell`, `vulkan`, `cuda`, ...);
//! - `GGUF_GPU_ENABLED=0`: never choose a GPU variant;
//! - `GGUF_BACKEND_PREFERENCE=vulkan,cpu-haswell`: variants to try first, in order;
//! - `GGUF_SMOKE_TEST=1`: smoke-test GPU variants in a child process first;
//! - `GGUF_DEBUG=1`: log every selection step at `info` instead of `debug`.
//!
//! The configuration file `~/.gguf-loader/backend_config.json` ([`crate::loader::config`])
//! sets `preferred_backend`, `gpu_enabled` and `fallback_enabled` under these variables.

use std::path::PathBuf;

use crate::error::LoadError;
use crate::hardware::HardwareProfile;
use crate::loader::config::parse_bool;
use crate::loader::discovery::{SearchPaths, VariantDirectory};
use crate::loader::library::{LlamaLibrary, PluginSelection};
use crate::loader::variant::{
    best_bitnet_cpu, best_cpu_module, catalogue, Backend, Family, LibraryVariant, VariantKind,
    BITNET_CPU,
};

/// Environment variable forcing a variant.
pub const BACKEND_ENV: &str = "GGUF_BACKEND";
/// Environment variable disabling GPUs when `0`/`false`/`no`/`off`.
pub const GPU_ENABLED_ENV: &str = "GGUF_GPU_ENABLED";
/// Environment variable giving variant names to try first, comma-separated.
pub const PREFERENCE_ENV: &str = "GGUF_BACKEND_PREFERENCE";
/// Environment variable making selection verbose.
pub const DEBUG_ENV: &str = "GGUF_DEBUG";

/// What selection may choose from.
#[derive(Debug, Clone)]
pub struct SelectOptions {
    /// Where variant directories are searched.
    pub search: SearchPaths,
    /// A forced variant name (overrides ranking).
    pub force: Option<String>,
    /// Whether GPU variants may be chosen.
    pub gpu_enabled: bool,
    /// Variant names to try first, in order, before the ranking.
    pub preference: Vec<String>,
    /// The machine.
    pub hardware: HardwareProfile,
    /// Run each GPU candidate in a child process first (see [`crate::loader::smoke`]); a
    /// candidate whose child crashes, hangs or finds no device is rejected. Off by default;
    /// `GGUF_SMOKE_TEST=1` turns it on with the current executable as the child.
    pub smoke_test: Option<crate::loader::smoke::SmokeTest>,
    /// Go on to the next candidate when one cannot be used (`fallback_enabled`, default on).
    /// Off: the first candidate that the hardware allows is the only one tried.
    pub fallback: bool,
    /// The code base the variants must come from: upstream (the default), or the BitNet fork
    /// for a BitNet-fork model ([`crate::Model::load_best`] sets it from the GGUF file). Variants
    /// of the other family are listed with the reason they are skipped.
    pub family: Family,
}

impl SelectOptions {
    /// Options from the configuration file and the environment (`GGUF_BACKEND`,
    /// `GGUF_GPU_ENABLED`, `GGUF_BACKEND_PREFERENCE`, which override the file), with the
    /// detected hardware.
    ///
    /// # Errors
    /// `InvalidConfiguration` when `GGUF_BACKEND` names no known variant or `GGUF_GPU_ENABLED`
    /// is not a boolean; `ConfigFile` for a bad configuration file.
    pub fn from_env() -> Result<Self, LoadError> {
        Self::from_config(&crate::loader::config::BackendConfig::load()?)
    }

    /// Options from an effective configuration (see [`crate::loader::config`]), with
    /// `GGUF_BACKEND_PREFERENCE` and `GGUF_SMOKE_TEST` from the environment and the detected
    /// hardware.
    ///
    /// # Errors
    /// `InvalidConfiguration` when `GGUF_BACKEND_PREFERENCE` names an unknown variant.
    pub fn from_config(config: &crate::loader::config::BackendConfig) -> Result<Self, LoadError> {
        let mut preference: Vec<String> = std::env::var(PREFERENCE_ENV)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for name in &preference {
            check_name(PREFERENCE_ENV, name)?;
        }
        if let Some(name) = &config.preferred_backend.value {
            if !preference.contains(name) {
                preference.push(name.clone());
            }
        }
        let smoke = std::env::var("GGUF_SMOKE_TEST")
            .ok()
            .and_then(|v| parse_bool(&v))
            .unwrap_or(false);
        Ok(SelectOptions {
            search: SearchPaths::new(),
            force: config.forced_backend.value.clone(),
            gpu_enabled: config.gpu_enabled.value,
            preference,
            hardware: HardwareProfile::detect(),
            smoke_test: if smoke {
                crate::loader::smoke::SmokeTest::current_exe()
            } else {
                None
            },
            fallback: config.fallback_enabled.value,
            family: Family::Upstream,
        })
    }
}

/// Checks that `name` is a known variant (or `cpu`, meaning the best CPU module).
///
/// # Errors
/// `InvalidConfiguration` naming `setting` and listing the known names.
pub fn check_name(setting: &str, name: &str) -> Result<(), LoadError> {
    if name == Backend::Cpu.name()
        || name == BITNET_CPU
        || catalogue().iter().any(|v| v.name() == name)
    {
        return Ok(());
    }
    let known: Vec<String> = [Backend::Cpu.name(), BITNET_CPU]
        .into_iter()
        .map(str::to_string)
        .chain(catalogue().iter().map(|v| v.name().to_string()))
        .collect();
    Err(LoadError::InvalidConfiguration {
        name: setting.into(),
        value: name.into(),
        reason: format!("unknown variant; known: {}", known.join(", ")),
    })
}

/// One ranked candidate.
#[derive(Debug)]
pub struct Candidate {
    /// The variant.
    pub variant: Box<dyn LibraryVariant>,
    /// `Ok` if it may be tried, else why not.
    pub verdict: Result<(), String>,
}

/// Orders every known variant for `options.hardware`: forced/preferred first, then CUDA >
/// Metal > Vulkan (a real GPU) > the best CPU module by ggml's score > other runnable CPU modules
/// by score > portable x64; each with the reason it cannot run, if any. Pure.
pub fn rank(options: &SelectOptions) -> Vec<Candidate> {
    let hardware = &options.hardware;
    let best_cpu = best_cpu_module(hardware).map(|v| v.name().to_string());
    // `cpu` / `bitnet-cpu` name the best build of their kind.
    let resolve = |name: &str| -> String {
        if name == Backend::Cpu.name() {
            best_cpu
                .clone()
                .unwrap_or_else(|| format!("{}-x64", Backend::Cpu.name()))
        } else if name == BITNET_CPU {
            // The best build the CPU runs, else the baseline one (its verdict says why not).
            best_bitnet_cpu(hardware).unwrap_or_else(|| "bitnet-cpu-avx2".into())
        } else {
            name.to_string()
        }
    };
    let forced = options.force.as_deref().map(resolve);
    let mut candidates: Vec<Candidate> = catalogue()
        .into_iter()
        .map(|variant| {
            // A forced GPU variant skips the preference checks (a software Vulkan device is
            // usable when asked for); loading still requires a device. CPU modules keep their
            // instruction-set check: running one the CPU lacks would crash.
            let is_forced = forced.as_deref() == Some(variant.name());
            let forced_gpu = is_forced && variant.kind() == VariantKind::Gpu;
            let verdict = variant
                .loadable()
                .and_then(|_| {
                    if forced_gpu {
                        Ok(())
                    } else {
                        variant.check_hardware(hardware)
                    }
                })
                .and_then(|_| {
                    if variant.kind() == VariantKind::Gpu && !options.gpu_enabled {
                        Err(format!("GPUs disabled ({GPU_ENABLED_ENV}=0)"))
                    } else {
                        Ok(())
                    }
                })
                .and_then(|_| match (variant.family(), options.family) {
                    // A forced variant is loaded whatever the model (loading a model of the
                    // other code base on it is then a typed error).
                    (a, b) if a == b || is_forced => Ok(()),
                    (Family::BitNet, _) => Err(
                        "a BitNet-fork build: it serves BitNet models (I2_S tensors) only".into(),
                    ),
                    (_, _) => Err("an upstream build: the model is a BitNet-fork model".into()),
                });
            Candidate { variant, verdict }
        })
        .collect();
    // ggml's score of each CPU module on this hardware, computed once (0 for other variants).
    let cpu_scores: Vec<(String, u32)> = crate::loader::variant::cpu_isa_variants()
        .into_iter()
        .map(|v| (v.name().to_string(), v.ggml_score(hardware)))
        .collect();
    let score = |c: &Candidate| -> (u32, u32) {
        let cpu_score = cpu_scores
            .iter()
            .find(|(name, _)| name == c.variant.name())
            .map_or(0, |(_, score)| *score);
        (c.variant.priority(), cpu_score)
    };
    candidates.sort_by_cached_key(|c| std::cmp::Reverse(score(c)));
    // Names asked for come first: forced, then preference order.
    let wanted: Vec<String> = options
        .force
        .iter()
        .cloned()
        .chain(options.preference.iter().cloned())
        .collect();
    let mut ordered = Vec::new();
    for name in &wanted {
        let name = resolve(name);
        if let Some(index) = candidates.iter().position(|c| c.variant.name() == name) {
            ordered.push(candidates.remove(index));
        }
    }
    if options.force.is_some() {
        // A forced variant is the only candidate.
        ordered.truncate(1);
        return ordered;
    }
    ordered.extend(candidates);
    if !options.fallback {
        // Only the first candidate the hardware allows is tried.
        let mut first = true;
        for candidate in &mut ordered {
            if candidate.verdict.is_ok() {
                if !first {
                    candidate.verdict = Err("fallback disabled (fallback_enabled is false)".into());
                }
                first = false;
            }
        }
    }
    ordered
}

/// The loaded variant and what selection did.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The loaded library.
    pub library: LlamaLibrary,
    /// The chosen variant's name.
    pub variant: String,
    /// Every candidate tried or skipped before it, with the reason.
    pub rejected: Vec<(String, String)>,
}

/// Loads the best variant: walks [`rank`], skipping candidates that cannot run and falling back
/// when one fails to load (libraries not found, dlopen, ABI, backend init, no device).
///
/// # Errors
/// `NoUsableVariant` with every candidate's reason.
pub fn load_best(options: &SelectOptions) -> Result<Selection, LoadError> {
    load_best_with(options, |_, _| Ok(())).map(|(selection, ())| selection)
}

/// Like [`load_best`], but `accept` has the last word on each loaded candidate (the safe API
/// uses it to require that the model loads on the variant): its `Err(reason)` rejects the
/// candidate and the walk goes on.
///
/// A directory that fails as a whole (a foreign or broken build: ABI mismatch, a core library
/// that does not open or lacks a symbol, a build conflicting with the one loaded) is tried once:
/// the other candidates it would serve are looked for in the remaining directories, or skipped
/// with `same directory as <first candidate>: rejected above`. Likewise a missing directory kind
/// is reported in full once.
///
/// In a smoke-test child (see [`crate::loader::smoke`]) this runs the smoke test in process and
/// exits, as [`crate::loader::smoke::run_if_requested`] does: a child never selects, so it never
/// spawns a child of its own, even when the program forgot to call `run_if_requested`.
///
/// # Errors
/// `NoUsableVariant` with every candidate's reason.
pub fn load_best_with<T>(
    options: &SelectOptions,
    mut accept: impl FnMut(&LlamaLibrary, &dyn LibraryVariant) -> Result<T, String>,
) -> Result<(Selection, T), LoadError> {
    // A smoke-test child must answer the smoke test, not select (selecting could spawn another
    // child, and so on).
    crate::loader::smoke::run_if_requested();
    let verbose = std::env::var_os(DEBUG_ENV).is_some_and(|v| v != "0");
    let level = if verbose {
        log::Level::Info
    } else {
        log::Level::Debug
    };
    let mut rejected = Vec::new();
    // Directories that failed as a whole, with the candidate that found out.
    let mut failed_directories: Vec<(PathBuf, String)> = Vec::new();
    // Directory kinds found nowhere, with the first candidate that looked.
    let mut missing_kinds: Vec<(String, String)> = Vec::new();
    let (directories, broken) = options.search.discover();
    for (path, error) in &broken {
        log::log!(
            level,
            "skipping variant directory {}: {error}",
            path.display()
        );
    }
    for candidate in rank(options) {
        let name = candidate.variant.name().to_string();
        let variant = candidate.variant.as_ref();
        if let Err(reason) = candidate.verdict {
            reject(&mut rejected, level, name, reason);
            continue;
        }
        let abi = variant.family().abi();
        // After a GPU candidate was loaded and then rejected, its libraries stay in the process
        // (one build per process); they carry the CPU backend, so CPU candidates of the same
        // code base run on them.
        if let Some(current) = LlamaLibrary::current()
            .filter(|current| variant.kind() == VariantKind::Cpu && current.generation() == abi)
        {
            if current
                .devices()
                .iter()
                .any(|d| Backend::Cpu.is_registry(&d.backend))
            {
                let name = format!(
                    "{name} (CPU backend of the loaded {} libraries)",
                    current.directory().kind
                );
                match accept(&current, variant) {
                    Ok(value) => {
                        return Ok((
                            Selection {
                                library: current,
                                variant: name,
                                rejected,
                            },
                            value,
                        ))
                    }
                    Err(reason) => {
                        reject(&mut rejected, level, name, reason);
                        continue;
                    }
                }
            }
        }
        let kind = variant.directory_kind();
        // A directory of the variant's own kind first; CPU variants can also be served by any
        // directory that has their module (a GPU directory carries the CPU modules too).
        let serves = |d: &&VariantDirectory| match variant.cpu_module() {
            Some(module) => d.cpu_modules.iter().any(|m| m == module),
            None => variant.kind() == VariantKind::Cpu && d.backends.contains(&Backend::Cpu),
        };
        let pick = |usable: &dyn Fn(&VariantDirectory) -> bool| {
            let candidates = || directories.iter().filter(|d| d.abi == abi && usable(d));
            candidates()
                .find(|d| d.kind == kind)
                .or_else(|| candidates().find(serves))
        };
        let failed_first = |d: &VariantDirectory| {
            failed_directories
                .iter()
                .find(|(path, _)| *path == d.path)
                .map(|(_, first)| first.clone())
        };
        let Some(directory) = pick(&|d| failed_first(d).is_none()) else {
            // Only directories that already failed as a whole (or none) would serve it.
            let reason = match pick(&|_| true).and_then(failed_first) {
                Some(first) => format!("same directory as {first}: rejected above"),
                None => match missing_kinds.iter().find(|(k, _)| k == kind) {
                    Some((_, first)) => {
                        format!("no `{kind}` variant directory found (as for {first} above)")
                    }
                    None => {
                        missing_kinds.push((kind.to_string(), name.clone()));
                        format!(
                            "no `{kind}` variant directory found (searched {})",
                            display_roots(&options.search)
                        )
                    }
                },
            };
            reject(&mut rejected, level, name, reason);
            continue;
        };
        let selection = match variant.cpu_module() {
            Some(module) => {
                if !directory.cpu_modules.iter().any(|m| m == module) {
                    let reason = format!(
                        "{} has no lib{}",
                        directory.path.display(),
                        Backend::cpu_module_stem(module)
                    );
                    reject(&mut rejected, level, name, reason);
                    continue;
                }
                PluginSelection::CpuModule(module.to_string())
            }
            None => PluginSelection::AllInDirectory,
        };
        let gpu_backend = variant
            .backends()
            .iter()
            .copied()
            .find(|b| b.kind() == VariantKind::Gpu)
            .filter(|_| variant.kind() == VariantKind::Gpu);
        if let (Some(smoke), Some(backend)) = (&options.smoke_test, gpu_backend) {
            if let Err(reason) = smoke.run(&directory.path, backend.name()) {
                reject(&mut rejected, level, name, reason);
                continue;
            }
        }
        let library = match LlamaLibrary::load(directory, selection) {
            Ok(library) => library,
            Err(error) => {
                if fails_whole_directory(&error) {
                    failed_directories.push((directory.path.clone(), name.clone()));
                }
                reject(&mut rejected, level, name, error.to_string());
                continue;
            }
        };
        if let Some(backend) = gpu_backend {
            if !library
                .devices()
                .iter()
                .any(|d| backend.is_registry(&d.backend))
            {
                let reason = format!("loaded, but its {backend} backend has no device");
                reject(&mut rejected, level, name, reason);
                continue;
            }
        }
        match accept(&library, variant) {
            Ok(value) => {
                log::log!(
                    level,
                    "variant {name}: loaded from {}",
                    directory.path.display()
                );
                return Ok((
                    Selection {
                        library,
                        variant: name,
                        rejected,
                    },
                    value,
                ));
            }
            Err(reason) => {
                reject(&mut rejected, level, name, reason);
            }
        }
    }
    Err(LoadError::NoUsableVariant { rejected })
}

/// Whether a load error condemns the whole directory rather than one plugin selection: the
/// core libraries are foreign, broken or blocked by another build, so every other candidate it
/// would serve fails the same way.
fn fails_whole_directory(error: &LoadError) -> bool {
    matches!(
        error,
        LoadError::AbiMismatch { .. }
            | LoadError::Open { .. }
            | LoadError::MissingSymbol { .. }
            | LoadError::InvalidManifest { .. }
            | LoadError::ConflictingBuild { .. }
    )
}

/// Records why candidate `name` was rejected, and logs it.
fn reject(rejected: &mut Vec<(String, String)>, level: log::Level, name: String, reason: String) {
    log::log!(level, "variant {name}: {reason}");
    rejected.push((name, reason));
}

fn display_roots(search: &SearchPaths) -> String {
    search
        .roots()
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
