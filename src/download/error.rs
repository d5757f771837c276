//! [`DownloadError`]: why a download failed, naming the URL, repository, file or status at fault.

use std::path::PathBuf;

use crate::Category;

/// Why a file could not be fetched from a URL or the Hugging Face hub (or found in the cache).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The source string is neither an `http(s)://` URL nor `hf://OWNER/REPO/FILE[@REVISION]`.
    #[error("invalid download source {input:?}: {reason}")]
    InvalidSource {
        /// The string given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An option or environment variable has an unusable value (`HF_ENDPOINT`, `sha256`, ...).
    #[error("invalid {name} {value:?}: {reason}")]
    InvalidConfiguration {
        /// The option or variable.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server answered 404: the repository, revision or file does not exist.
    #[error("{what} not found (HTTP 404 from {url})")]
    NotFound {
        /// The URL asked.
        url: String,
        /// What is missing (the repository, revision or file, as far as the server said).
        what: String,
    },
    /// The server answered 401 or 403: the file is private or gated, or the token is wrong.
    #[error("access to {what} denied (HTTP {status} from {url})")]
    Unauthorized {
        /// The URL asked.
        url: String,
        /// What was asked for.
        what: String,
        /// 401 or 403.
        status: u16,
    },
    /// Any other unsuccessful HTTP status.
    #[error("HTTP {status} from {url}")]
    Http {
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The connection failed, timed out or broke off (after the retries).
    #[error("network error for {url}: {reason}")]
    Network {
        /// The URL asked.
        url: String,
        /// The transport's message.
        reason: String,
    },
    /// The server's answer cannot be used: a hub response without `X-Repo-Commit` or ETag, a
    /// body longer than announced, a malformed `Content-Range`, too many redirects.
    #[error("unusable response from {url}: {reason}")]
    InvalidResponse {
        /// The URL asked.
        url: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// The downloaded bytes do not have the expected sha256 (the caller's, or the hub's). Nothing
    /// was left at the final path and the partial data was deleted.
    #[error("sha256 mismatch for {url}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The URL the bytes came from.
        url: String,
        /// The expected sha256 (hex).
        expected: String,
        /// The sha256 of what arrived (or what the hub announced, when it contradicts the
        /// caller's value before any transfer).
        actual: String,
    },
    /// Offline mode (`HF_HUB_OFFLINE=1`, `GGUF_LOADER_OFFLINE=1` or the option), and the hub
    /// cache lacks this file at this revision.
    #[error("offline: {file} of {repo} at revision {revision} is not in the hub cache {}", cache.display())]
    Offline {
        /// `OWNER/REPO`.
        repo: String,
        /// The file in the repository.
        file: String,
        /// The revision asked for (a branch, tag or commit hash).
        revision: String,
        /// The cache (or directory) that was searched.
        cache: PathBuf,
    },
    /// Offline mode, and the URL has not been downloaded to its destination yet.
    #[error("offline: {url} has not been downloaded to {}", path.display())]
    OfflineUrl {
        /// The URL.
        url: String,
        /// Where the file would be.
        path: PathBuf,
    },
    /// The caller's cancellation flag was set; the partial data is kept for a later resume.
    #[error("download of {url} was cancelled")]
    Cancelled {
        /// The URL being fetched.
        url: String,
    },
    /// Reading or writing a local file failed.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl DownloadError {
    /// Which kind of problem this is: a name, token, endpoint or setting to fix
    /// ([`Category::Configuration`]), or a missing or corrupt model file ([`Category::Model`]).
    pub fn category(&self) -> Category {
        match self {
            DownloadError::NotFound { .. } | DownloadError::ChecksumMismatch { .. } => {
                Category::Model
            }
            _ => Category::Configuration,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            DownloadError::InvalidSource { .. } => {
                "use an http(s):// URL or hf://OWNER/REPO/FILE[@REVISION] (FILE may contain '/')"
            }
            DownloadError::InvalidConfiguration { .. } => "fix the value named in the message",
            DownloadError::NotFound { .. } => {
                "check the repository, file name and revision (or the URL); names are case-sensitive"
            }
            DownloadError::Unauthorized { .. } => {
                "set HF_TOKEN to a Hugging Face token with read access (and accept the model's terms on its page if it is gated)"
            }
            DownloadError::Http { .. } | DownloadError::Network { .. } => {
                "check the network connection, proxy settings and HF_ENDPOINT, then try again (a partial file is resumed)"
            }
            DownloadError::InvalidResponse { .. } => {
                "check that HF_ENDPOINT (or the URL) points at a Hugging Face hub or a plain file server"
            }
            DownloadError::ChecksumMismatch { .. } => {
                "check the expected sha256; if it is right, the server sent other bytes: download again"
            }
            DownloadError::Offline { .. } | DownloadError::OfflineUrl { .. } => {
                "download the file once with network access (unset HF_HUB_OFFLINE and GGUF_LOADER_OFFLINE), or check the revision"
            }
            DownloadError::Cancelled { .. } => "the download was cancelled; fetching again resumes it",
            DownloadError::Io { .. } => {
                "check that the directory is writable and has enough free space"
            }
        }
    }

    /// Whether trying again may help (a network failure, 408, 429 or a 5xx status).
    pub fn is_transient(&self) -> bool {
        match self {
            DownloadError::Network { .. } => true,
            DownloadError::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DownloadError::Io {
            path: path.into(),
            source,
        }
    }
}
