//! [`DownloadOptions`]: the hub endpoint, cache, token and offline flag (from the environment or
//! set explicitly), the expected sha256, retries, progress and cancellation.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::DownloadError;

/// The Hugging Face hub used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How far a transfer has come, passed to the [progress callback](DownloadOptions::with_progress).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The file being transferred (its name on disk).
    pub file: String,
    /// Bytes on disk so far, including those of a resumed partial file.
    pub downloaded: u64,
    /// The file's size, when the server announced it.
    pub total: Option<u64>,
    /// The transfer rate of this call so far, in bytes per second.
    pub bytes_per_second: f64,
}

/// The progress callback: called when a transfer starts, at most every 100 ms while it runs, and
/// when it completes. It runs on the downloading thread, so it should return quickly.
pub type ProgressCallback = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How to download: where the hub and its cache are, credentials, integrity, retries, progress and
/// cancellation. [`DownloadOptions::from_env`] reads the Hugging Face variables;
/// [`DownloadOptions::new`] reads none of them, so callers (and tests) can set every field
/// explicitly.
#[derive(Clone)]
pub struct DownloadOptions {
    /// The hub's base URL (`HF_ENDPOINT`, default [`DEFAULT_ENDPOINT`]).
    pub endpoint: String,
    /// The hub cache shared with huggingface_hub (`HF_HUB_CACHE`, else `HF_HOME/hub`, else
    /// `~/.cache/huggingface/hub`).
    pub hub_cache: PathBuf,
    /// Where [`fetch`](super::fetch) puts files of plain URLs (default: the crate's cache,
    /// `downloads/`).
    pub download_dir: PathBuf,
    /// Sent as `Authorization: Bearer` to the hub endpoint's origin only (`HF_TOKEN`): never to
    /// a redirect target or URL on another host.
    pub token: Option<String>,
    /// Resolve hub files from the cache only and never open a connection (`HF_HUB_OFFLINE=1` or
    /// `GGUF_LOADER_OFFLINE=1`).
    pub offline: bool,
    /// The expected sha256 of the file named by the source (hex), checked in addition to the
    /// hub's own.
    pub sha256: Option<String>,
    /// How many times a failing request is tried again (a transfer that makes progress resets
    /// the count).
    pub retries: u32,
    /// The wait before the first retry; it doubles with each further failure (at most 30 s).
    pub backoff: Duration,
    /// The connect timeout and the longest wait for any single read or write.
    pub timeout: Duration,
    /// When set to `true`, the transfer stops at the next chunk with
    /// [`DownloadError::Cancelled`]; the partial file stays for a later resume.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Called with the [`Progress`] of each transfer.
    pub progress: Option<ProgressCallback>,
}

impl DownloadOptions {
    /// Defaults that read no Hugging Face variable: the default endpoint, the default hub cache
    /// under the home directory, no token, online, 5 retries from 1 s, a 30 s timeout.
    pub fn new() -> DownloadOptions {
        DownloadOptions {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            hub_cache: default_hub_cache(|_| None),
            download_dir: crate::loader::discovery::cache_root().join("downloads"),
            token: None,
            offline: false,
            sha256: None,
            retries: 5,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            cancel: None,
            progress: None,
        }
    }

    /// [`new`](DownloadOptions::new) with what the environment says, as huggingface_hub reads
    /// it: `HF_ENDPOINT`; `HF_HUB_CACHE` (or the older `HUGGINGFACE_HUB_CACHE`), else
    /// `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`;
    /// `HF_TOKEN`, else the token file (`HF_TOKEN_PATH`, else `HF_HOME/token`); offline when
    /// `HF_HUB_OFFLINE` or `GGUF_LOADER_OFFLINE` is `1`, `on`, `yes` or `true`.
    pub fn from_env() -> DownloadOptions {
        DownloadOptions::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// As [`from_env`](DownloadOptions::from_env), with the variables looked up through `var`
    /// (for callers that keep their own environment, and tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> DownloadOptions {
        let mut options = DownloadOptions::new();
        if let Some(endpoint) = var("HF_ENDPOINT") {
            options.endpoint = endpoint.trim_end_matches('/').to_string();
        }
        options.hub_cache = default_hub_cache(&var);
        options.token = var("HF_TOKEN").or_else(|| {
            let path = var("HF_TOKEN_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| hf_home(&var).join("token"));
            std::fs::read_to_string(path)
                .ok()
                .map(|token| token.trim().to_string())
                .filter(|token| !token.is_empty())
        });
        let truthy = |name: &str| {
            var(name).is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "on" | "yes" | "true"
                )
            })
        };
        options.offline = truthy("HF_HUB_OFFLINE") || truthy("GGUF_LOADER_OFFLINE");
        options
    }

    /// Sets the hub's base URL.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into().trim_end_matches('/').to_string();
        self
    }

    /// Sets the hub cache directory.
    pub fn with_hub_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.hub_cache = dir.into();
        self
    }

    /// Sets where [`fetch`](super::fetch) puts files of plain URLs.
    pub fn with_download_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.download_dir = dir.into();
        self
    }

    /// Sets (or clears) the hub token.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Sets offline mode.
    pub fn with_offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// Sets the expected sha256 (hex; checked when the download starts).
    pub fn with_sha256(mut self, sha256: impl Into<String>) -> Self {
        self.sha256 = Some(sha256.into());
        self
    }

    /// Sets the number of retries.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the first retry's wait.
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the connect and read timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the cancellation flag.
    pub fn with_cancel(mut self, cancel: Arc<AtomicBool>) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Sets the progress callback.
    pub fn with_progress(mut self, progress: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// Whether the cancellation flag is set.
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    }

    /// The caller's sha256, validated and in lower case.
    pub(crate) fn expected_sha256(&self) -> Result<Option<String>, DownloadError> {
        let Some(hex) = &self.sha256 else {
            return Ok(None);
        };
        let hex = hex.trim().to_ascii_lowercase();
        if !is_sha256(&hex) {
            return Err(DownloadError::InvalidConfiguration {
                name: "sha256".into(),
                value: hex,
                reason: "expected 64 hexadecimal digits".into(),
            });
        }
        Ok(Some(hex))
    }
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions::new()
    }
}

impl fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("endpoint", &self.endpoint)
            .field("hub_cache", &self.hub_cache)
            .field("download_dir", &self.download_dir)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("offline", &self.offline)
            .field("sha256", &self.sha256)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .field("timeout", &self.timeout)
            .field("cancel", &self.cancel.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Whether `text` is a lower-case sha256 in hex.
pub(crate) fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

fn expand_home(path: String) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home().join(rest),
        None if path == "~" => home(),
        None => PathBuf::from(path),
    }
}

fn hf_home(var: impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = var("HF_HOME") {
        return expand_home(dir);
    }
    let cache = var("XDG_CACHE_HOME")
        .map(expand_home)
        .unwrap_or_else(|| home().join(".cache"));
    cache.join("huggingface")
}

/// The hub cache directory as huggingface_hub computes it from the variables.
fn default_hub_cache(var: impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
        return expand_home(dir);
    }
    hf_home(var).join("hub")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn cache_and_flags_from_variables() {
        let o = DownloadOptions::from_vars(vars(&[("HF_HOME", "/h"), ("HF_TOKEN", "t")]));
        assert_eq!(o.hub_cache, PathBuf::from("/h/hub"));
        assert_eq!(o.token.as_deref(), Some("t"));
        assert!(!o.offline);
        let o = DownloadOptions::from_vars(vars(&[
            ("HF_HOME", "/h"),
            ("HF_HUB_CACHE", "/c"),
            ("GGUF_LOADER_OFFLINE", "TRUE"),
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
        ]));
        assert_eq!(o.hub_cache, PathBuf::from("/c"));
        assert!(o.offline);
        assert_eq!(o.endpoint, "http://127.0.0.1:9");
        let o = DownloadOptions::from_vars(vars(&[("XDG_CACHE_HOME", "/x")]));
        assert_eq!(o.hub_cache, PathBuf::from("/x/huggingface/hub"));
        let o = o.with_token(Some("secret-token".into()));
        assert!(!format!("{o:?}").contains("secret-token"));
    }

    #[test]
    fn sha256_is_validated() {
        let o = DownloadOptions::new().with_sha256("AB".repeat(32));
        assert_eq!(o.expected_sha256().unwrap(), Some("ab".repeat(32)));
        let o = DownloadOptions::new().with_sha256("xyz");
        assert!(matches!(
            o.expected_sha256(),
            Err(DownloadError::InvalidConfiguration { .. })
        ));
    }
}
