//! The older app's configuration file, `~/.gguf-loader/backend_config.json`.
//!
//! ```json
//! {
//!   "preferred_backend": "vulkan",
//!   "gpu_enabled": true,
//!   "fallback_enabled": true,
//!   "backends": { "vulkan": { "gpu_layers": 20, "context_size": 4096, "batch_size": 512, "use_mlock": false } },
//!   "model_path": "models/model.gguf", "n_gpu_layers": 0, "n_ctx": 2048, "n_batch": 512, "use_mlock": false
//! }
//! ```
//!
//! Every key is optional. The top-level `n_gpu_layers`, `n_ctx`, `n_batch`, `use_mlock` are the
//! legacy form of the per-backend settings: they apply to every variant, and `backends.<name>`
//! overrides them for the variant `<name>` (`cpu` matches every CPU variant). The environment
//! overrides the file: `GGUF_BACKEND` (forces a variant; the file's `preferred_backend` only puts
//! one first), `GGUF_GPU_ENABLED`, `GGUF_DEBUG`. `GGUF_LOADER_CONFIG` names another file (empty:
//! no file). An unknown key is logged as a warning and kept in [`BackendConfig::warnings`]; a
//! value of the wrong type is a [`LoadError::ConfigFile`] naming the key.
//!
//! [`BackendConfig::load`] is what [`SelectOptions::from_env`](crate::loader::SelectOptions::from_env)
//! uses; the doctor prints [`BackendConfig::entries`] with the source of each value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::LoadError;
use crate::loader::select::{BACKEND_ENV, DEBUG_ENV, GPU_ENABLED_ENV};

/// Environment variable naming the configuration file (empty: read none).
pub const CONFIG_ENV: &str = "GGUF_LOADER_CONFIG";

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Nothing set it.
    Default,
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Environment(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Environment(name) => write!(f, "environment {name}"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The effective value.
    pub value: T,
    /// Its source.
    pub source: Source,
}

impl<T> Setting<T> {
    fn default(value: T) -> Self {
        Setting {
            value,
            source: Source::Default,
        }
    }
}

/// Model and context settings of one backend (or, at the top level, of all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendSettings {
    /// Layers to offload (`gpu_layers`, legacy `n_gpu_layers`); negative: all.
    pub gpu_layers: Option<i32>,
    /// Context size in tokens (`context_size`, legacy `n_ctx`).
    pub context_size: Option<u32>,
    /// Logical batch size (`batch_size`, legacy `n_batch`).
    pub batch_size: Option<u32>,
    /// Lock the model in memory (`use_mlock`).
    pub use_mlock: Option<bool>,
}

impl BackendSettings {
    /// `other`'s values where it has them, else these.
    fn overridden_by(&self, other: &BackendSettings) -> BackendSettings {
        BackendSettings {
            gpu_layers: other.gpu_layers.or(self.gpu_layers),
            context_size: other.context_size.or(self.context_size),
            batch_size: other.batch_size.or(self.batch_size),
            use_mlock: other.use_mlock.or(self.use_mlock),
        }
    }
}

/// The effective configuration: the file's values under the environment's.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// The file read, if one was found.
    pub path: Option<PathBuf>,
    /// A variant forced by `GGUF_BACKEND` (the only candidate).
    pub forced_backend: Setting<Option<String>>,
    /// The variant tried first (`preferred_backend`).
    pub preferred_backend: Setting<Option<String>>,
    /// Whether GPU variants may be chosen (`gpu_enabled`, `GGUF_GPU_ENABLED`).
    pub gpu_enabled: Setting<bool>,
    /// Whether selection goes on to the next candidate when one fails (`fallback_enabled`).
    pub fallback_enabled: Setting<bool>,
    /// Verbose selection logging (`GGUF_DEBUG`).
    pub debug: Setting<bool>,
    /// The legacy `model_path`.
    pub model_path: Setting<Option<PathBuf>>,
    /// The legacy top-level settings, for every backend.
    pub defaults: BackendSettings,
    /// `backends.<name>` settings.
    pub backends: BTreeMap<String, BackendSettings>,
    /// Unknown keys, as `key: ...` lines (also logged as warnings).
    pub warnings: Vec<String>,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            path: None,
            forced_backend: Setting::default(None),
            preferred_backend: Setting::default(None),
            gpu_enabled: Setting::default(true),
            fallback_enabled: Setting::default(true),
            debug: Setting::default(false),
            model_path: Setting::default(None),
            defaults: BackendSettings::default(),
            backends: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }
}

/// The default file: `~/.gguf-loader/backend_config.json` (none without a home directory).
pub fn default_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| {
            PathBuf::from(home)
                .join(".gguf-loader")
                .join("backend_config.json")
        })
}

impl BackendConfig {
    /// The file named by `GGUF_LOADER_CONFIG` (else the default path; a missing default file is
    /// no error), under the environment variables.
    ///
    /// # Errors
    /// [`LoadError::ConfigFile`] for an unreadable or invalid file, or a file named by
    /// `GGUF_LOADER_CONFIG` that does not exist; `InvalidConfiguration` for a bad
    /// environment variable.
    pub fn load() -> Result<Self, LoadError> {
        let file = match std::env::var_os(CONFIG_ENV) {
            Some(path) if path.is_empty() => None,
            Some(path) => Some(Self::from_file(Path::new(&path))?),
            None => match default_path().filter(|p| p.exists()) {
                Some(path) => Some(Self::from_file(&path)?),
                None => None,
            },
        };
        file.unwrap_or_default()
            .with_environment(|name| std::env::var(name).ok())
    }

    /// The configuration in the file at `path` (without the environment).
    ///
    /// # Errors
    /// [`LoadError::ConfigFile`] when the file cannot be read, is not JSON, or a key has a
    /// value of the wrong type.
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|e| LoadError::ConfigFile {
            path: path.to_path_buf(),
            key: String::new(),
            reason: format!("cannot read it: {e}"),
        })?;
        Self::from_json(&text, path)
    }

    /// The configuration in `text`, JSON read from `path` (named in errors and sources).
    ///
    /// # Errors
    /// As [`BackendConfig::from_file`].
    pub fn from_json(text: &str, path: &Path) -> Result<Self, LoadError> {
        let bad = |key: &str, reason: String| LoadError::ConfigFile {
            path: path.to_path_buf(),
            key: key.to_string(),
            reason,
        };
        let root: Value =
            serde_json::from_str(text).map_err(|e| bad("", format!("not valid JSON: {e}")))?;
        let Value::Object(root) = root else {
            return Err(bad("", "the top level is not a JSON object".into()));
        };
        let from_file = || Source::File(path.to_path_buf());
        let mut config = BackendConfig {
            path: Some(path.to_path_buf()),
            ..BackendConfig::default()
        };
        let mut reader = KeyReader {
            path,
            warnings: Vec::new(),
        };
        for (key, value) in &root {
            match key.as_str() {
                "preferred_backend" => {
                    let name = reader.string(key, value)?;
                    crate::loader::select::check_name("preferred_backend", &name)
                        .map_err(|e| bad(key, e.to_string()))?;
                    config.preferred_backend = Setting {
                        value: Some(name),
                        source: from_file(),
                    };
                }
                "gpu_enabled" => {
                    config.gpu_enabled = Setting {
                        value: reader.boolean(key, value)?,
                        source: from_file(),
                    }
                }
                "fallback_enabled" => {
                    config.fallback_enabled = Setting {
                        value: reader.boolean(key, value)?,
                        source: from_file(),
                    }
                }
                "model_path" => {
                    config.model_path = Setting {
                        value: Some(PathBuf::from(reader.string(key, value)?)),
                        source: from_file(),
                    }
                }
                "n_gpu_layers" => config.defaults.gpu_layers = Some(reader.int(key, value)?),
                "n_ctx" => config.defaults.context_size = Some(reader.count(key, value)?),
                "n_batch" => config.defaults.batch_size = Some(reader.count(key, value)?),
                "use_mlock" => config.defaults.use_mlock = Some(reader.boolean(key, value)?),
                "backends" => {
                    let Value::Object(backends) = value else {
                        return Err(bad(key, format!("expected an object, found {value}")));
                    };
                    for (name, settings) in backends {
                        let prefix = format!("backends.{name}");
                        if crate::loader::select::check_name(&prefix, name).is_err() {
                            reader.warn(&prefix, "names no known variant");
                        }
                        let settings = reader.backend(&prefix, settings)?;
                        config.backends.insert(name.clone(), settings);
                    }
                }
                _ => reader.warn(key, "unknown key (ignored)"),
            }
        }
        config.warnings = reader.warnings;
        Ok(config)
    }

    /// These values under the environment (`lookup` reads a variable).
    ///
    /// # Errors
    /// `InvalidConfiguration` when `GGUF_BACKEND` names no known variant or `GGUF_GPU_ENABLED`
    /// is not a boolean.
    pub fn with_environment(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LoadError> {
        if let Some(name) = lookup(BACKEND_ENV).filter(|v| !v.trim().is_empty()) {
            crate::loader::select::check_name(BACKEND_ENV, &name)?;
            self.forced_backend = Setting {
                value: Some(name),
                source: Source::Environment(BACKEND_ENV),
            };
        }
        if let Some(value) = lookup(GPU_ENABLED_ENV) {
            let enabled = parse_bool(&value).ok_or_else(|| LoadError::InvalidConfiguration {
                name: GPU_ENABLED_ENV.into(),
                value: value.clone(),
                reason: "expected 1/0, true/false, yes/no or on/off".into(),
            })?;
            self.gpu_enabled = Setting {
                value: enabled,
                source: Source::Environment(GPU_ENABLED_ENV),
            };
        }
        if let Some(value) = lookup(DEBUG_ENV) {
            self.debug = Setting {
                value: value != "0" && parse_bool(&value) != Some(false),
                source: Source::Environment(DEBUG_ENV),
            };
        }
        Ok(self)
    }

    /// The settings for variant `name`: `backends.<name>` (or `backends.cpu` for a CPU
    /// variant `cpu-*`) over the legacy top-level values.
    pub fn settings_for(&self, name: &str) -> BackendSettings {
        let family = name.split('-').next().unwrap_or(name);
        let mut settings = self.defaults.clone();
        if family != name {
            if let Some(general) = self.backends.get(family) {
                settings = settings.overridden_by(general);
            }
        }
        if let Some(own) = self.backends.get(name) {
            settings = settings.overridden_by(own);
        }
        settings
    }

    /// Every effective value as `(key, JSON value, source)`, for reports.
    pub fn entries(&self) -> Vec<(String, Value, Source)> {
        let file = || self.path.clone().map_or(Source::Default, Source::File);
        let mut entries = vec![
            entry("forced_backend", &self.forced_backend),
            entry("preferred_backend", &self.preferred_backend),
            entry("gpu_enabled", &self.gpu_enabled),
            entry("fallback_enabled", &self.fallback_enabled),
            entry("debug", &self.debug),
            (
                "model_path".into(),
                self.model_path
                    .value
                    .as_ref()
                    .map_or(Value::Null, |p| Value::from(p.display().to_string())),
                self.model_path.source.clone(),
            ),
        ];
        let mut push_settings = |prefix: &str, settings: &BackendSettings| {
            let values = [
                ("gpu_layers", settings.gpu_layers.map(Value::from)),
                ("context_size", settings.context_size.map(Value::from)),
                ("batch_size", settings.batch_size.map(Value::from)),
                ("use_mlock", settings.use_mlock.map(Value::from)),
            ];
            for (key, value) in values {
                if let Some(value) = value {
                    entries.push((format!("{prefix}{key}"), value, file()));
                }
            }
        };
        push_settings("", &self.defaults);
        for (name, settings) in &self.backends {
            push_settings(&format!("backends.{name}."), settings);
        }
        entries
    }
}

fn entry<T: Clone + Into<Value>>(key: &str, setting: &Setting<T>) -> (String, Value, Source) {
    (
        key.to_string(),
        setting.value.clone().into(),
        setting.source.clone(),
    )
}

/// Reads typed values, naming the key in errors and collecting warnings.
struct KeyReader<'a> {
    path: &'a Path,
    warnings: Vec<String>,
}

impl KeyReader<'_> {
    fn error(&self, key: &str, expected: &str, value: &Value) -> LoadError {
        LoadError::ConfigFile {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            reason: format!("expected {expected}, found {value}"),
        }
    }

    fn warn(&mut self, key: &str, what: &str) {
        log::warn!("{}: {key}: {what}", self.path.display());
        self.warnings.push(format!("{key}: {what}"));
    }

    fn string(&self, key: &str, value: &Value) -> Result<String, LoadError> {
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.error(key, "a string", value))
    }

    fn boolean(&self, key: &str, value: &Value) -> Result<bool, LoadError> {
        value
            .as_bool()
            .ok_or_else(|| self.error(key, "true or false", value))
    }

    fn int(&self, key: &str, value: &Value) -> Result<i32, LoadError> {
        value
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| self.error(key, "an integer", value))
    }

    fn count(&self, key: &str, value: &Value) -> Result<u32, LoadError> {
        value
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
            .ok_or_else(|| self.error(key, "a positive integer", value))
    }

    fn backend(&mut self, prefix: &str, value: &Value) -> Result<BackendSettings, LoadError> {
        let Value::Object(fields) = value else {
            return Err(self.error(prefix, "an object", value));
        };
        let mut settings = BackendSettings::default();
        for (key, value) in fields {
            let full = format!("{prefix}.{key}");
            match key.as_str() {
                "gpu_layers" => settings.gpu_layers = Some(self.int(&full, value)?),
                "context_size" => settings.context_size = Some(self.count(&full, value)?),
                "batch_size" => settings.batch_size = Some(self.count(&full, value)?),
                "use_mlock" => settings.use_mlock = Some(self.boolean(&full, value)?),
                _ => self.warn(&full, "unknown key (ignored)"),
            }
        }
        Ok(settings)
    }
}

/// `1/0`, `true/false`, `yes/no`, `on/off` (any case).
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BackendConfig, LoadError> {
        BackendConfig::from_json(text, Path::new("backend_config.json"))
    }

    #[test]
    fn reads_every_key_and_keeps_sources() {
        let config = parse(
            r#"{"preferred_backend": "vulkan", "gpu_enabled": false, "fallback_enabled": false,
                "backends": {"vulkan": {"gpu_layers": 20, "context_size": 4096},
                             "cpu": {"batch_size": 256, "use_mlock": true}},
                "model_path": "m.gguf", "n_gpu_layers": 5, "n_ctx": 2048, "n_batch": 512,
                "use_mlock": false}"#,
        )
        .unwrap();
        assert_eq!(config.preferred_backend.value.as_deref(), Some("vulkan"));
        assert!(!config.gpu_enabled.value && !config.fallback_enabled.value);
        let vulkan = config.settings_for("vulkan");
        assert_eq!(vulkan.gpu_layers, Some(20));
        assert_eq!(vulkan.context_size, Some(4096));
        assert_eq!(vulkan.batch_size, Some(512), "legacy n_batch applies");
        let haswell = config.settings_for("cpu-haswell");
        assert_eq!(haswell.batch_size, Some(256), "backends.cpu covers cpu-*");
        assert_eq!(haswell.use_mlock, Some(true));
        assert_eq!(haswell.context_size, Some(2048));
        assert!(config.warnings.is_empty());
        let env = config
            .with_environment(|name| (name == GPU_ENABLED_ENV).then(|| "1".to_string()))
            .unwrap();
        assert!(env.gpu_enabled.value);
        assert_eq!(env.gpu_enabled.source, Source::Environment(GPU_ENABLED_ENV));
        assert_eq!(
            env.fallback_enabled.source,
            Source::File(PathBuf::from("backend_config.json"))
        );
    }

    #[test]
    fn unknown_keys_warn_and_wrong_types_name_the_key() {
        let config =
            parse(r#"{"colour": "blue", "backends": {"vulkan": {"threads": 4}}}"#).unwrap();
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        assert!(
            config.warnings[0].starts_with("colour"),
            "{:?}",
            config.warnings
        );
        assert!(config.warnings[1].starts_with("backends.vulkan.threads"));
        let error = parse(r#"{"backends": {"vulkan": {"gpu_layers": "all"}}}"#).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("backends.vulkan.gpu_layers"), "{text}");
        assert!(text.contains("backend_config.json"), "{text}");
        for bad in [
            r#"{"gpu_enabled": "yes"}"#,
            r#"{"n_ctx": -1}"#,
            r#"{"preferred_backend": "warp-drive"}"#,
            "[1]",
            "{",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn environment_forces_and_checks() {
        let config = BackendConfig::default()
            .with_environment(|name| (name == BACKEND_ENV).then(|| "cpu".to_string()))
            .unwrap();
        assert_eq!(config.forced_backend.value.as_deref(), Some("cpu"));
        assert!(BackendConfig::default()
            .with_environment(|name| (name == GPU_ENABLED_ENV).then(|| "maybe".to_string()))
            .is_err());
    }
}
