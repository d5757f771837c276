//! Downloads of models from URLs and the Hugging Face hub (feature `download`).
//!
//! A [`Source`] is an `http(s)://` URL or `hf://OWNER/REPO/FILE[@REVISION]`. [`fetch`] puts hub
//! files into the Hugging Face hub cache (the layout huggingface_hub uses, so each finds the
//! other's files) and URLs into [`DownloadOptions::download_dir`]; [`fetch_to_dir`] puts either
//! into a directory of the caller's. Both return the final path.
//!
//! - **Resume**: bytes go to a partial file (`<final>.part`, or `blobs/<etag>.incomplete` in the
//!   hub cache) that a retry or a later call continues with `Range: bytes=N-`; a server that
//!   answers 200 instead of 206 restarts it from byte 0. Failures are retried with backoff.
//! - **Integrity**: the sha256 is checked against the caller's value and the hub's (an LFS
//!   file's ETag is its sha256). A mismatch is [`DownloadError::ChecksumMismatch`]: nothing is
//!   left at the final path and the partial data is deleted. Files appear at their final path
//!   only by a rename, and a lock file keeps two processes from writing the same partial file.
//! - **Split models**: for `NAME-0000K-of-0000N.gguf` all N parts are fetched (into the same
//!   snapshot or directory) and the first part's path is returned; llama.cpp loads the others
//!   when given the first.
//! - **Offline**: with [`DownloadOptions::offline`] (`HF_HUB_OFFLINE=1`, `GGUF_LOADER_OFFLINE=1`)
//!   hub files resolve from the cache only and no connection is opened. Online, a hub that
//!   cannot be reached falls back to a cached copy.
//!
//! ```no_run
//! use gguf_loader::download::{fetch, DownloadOptions, Source};
//!
//! let source = Source::parse("hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf")?;
//! let options = DownloadOptions::from_env().with_progress(|p| {
//!     eprintln!("{}: {} of {:?} bytes", p.file, p.downloaded, p.total);
//! });
//! let path = fetch(&source, &options)?;
//! println!("{}", path.display());
//! # Ok::<(), gguf_loader::download::DownloadError>(())
//! ```
//!
//! Everything is logged through the `log` crate; transfers report progress through the
//! callback only.

mod error;
mod http;
mod hub;
mod lock;
mod options;
mod source;
mod transfer;

use std::path::{Path, PathBuf};

use reqwest::Url;

pub use error::DownloadError;
pub use options::{DownloadOptions, Progress, ProgressCallback, DEFAULT_ENDPOINT};
pub use source::{HubFile, Source, DEFAULT_REVISION};

use http::Http;
use source::{url_file_name, SplitName};

/// Fetches `source`: a hub file into the hub cache ([`DownloadOptions::hub_cache`]), a URL into
/// [`DownloadOptions::download_dir`]. Returns the file's path (for a split model, its first
/// part's). A file already there is not downloaded again.
///
/// # Errors
/// [`DownloadError`]: the source or an option is invalid, the server refused (404, 401/403, other
/// statuses), the network failed after the retries, the sha256 does not match, offline mode and
/// the file is not cached, the cancellation flag was set, or a local file could not be written.
pub fn fetch(source: &Source, options: &DownloadOptions) -> Result<PathBuf, DownloadError> {
    match source {
        Source::Hub(file) => fetch_hub_cached(file, options),
        Source::Url(_) => fetch_to_dir(source, &options.download_dir, options),
    }
}

/// Fetches `source` into `dir` (created if needed) under its own file name (the URL's last path
/// segment, or the hub file's last component); returns the path (for a split model, the first
/// part's). A file already there is kept (when [`DownloadOptions::sha256`] is set, only if it
/// matches).
///
/// # Errors
/// As [`fetch`]; offline, a missing file is [`DownloadError::OfflineUrl`] (URLs) or
/// [`DownloadError::Offline`] (hub files).
pub fn fetch_to_dir(
    source: &Source,
    dir: &Path,
    options: &DownloadOptions,
) -> Result<PathBuf, DownloadError> {
    match source {
        Source::Url(url) => fetch_url_to_dir(url, dir, options),
        Source::Hub(file) => fetch_hub_to_dir(file, dir, options),
    }
}

/// The cached copy of a hub file in `hub_cache` (its revision resolved through `refs/`, as
/// huggingface_hub does), without any network access; `None` when it is not cached.
pub fn cached_hub_file(file: &HubFile, hub_cache: &Path) -> Option<PathBuf> {
    hub::cached_file(hub_cache, file)
}

/// The other parts of a split model named by `file`, at `revision` (none when it is not split).
fn other_parts(file: &HubFile, revision: &str) -> Vec<HubFile> {
    let Some(split) = SplitName::parse(file.file_name()) else {
        return Vec::new();
    };
    let dir = file
        .file
        .rsplit_once('/')
        .map_or(String::new(), |(dir, _)| format!("{dir}/"));
    (1..=split.count)
        .filter(|&index| index != split.index)
        .map(|index| file.sibling(format!("{dir}{}", split.part(index)), revision))
        .collect()
}

/// The index (1-based) of the part a name denotes: 1 when it is not split.
fn part_index(name: &str) -> u32 {
    SplitName::parse(name).map_or(1, |split| split.index)
}

fn fetch_hub_cached(file: &HubFile, options: &DownloadOptions) -> Result<PathBuf, DownloadError> {
    let expected = options.expected_sha256()?;
    let mut first = None;
    if options.offline {
        let path = hub::offline(&options.hub_cache, file)?;
        if part_index(file.file_name()) == 1 {
            first = Some(path.clone());
        }
        for part in other_parts(file, &file.revision).iter() {
            let part_path = hub::offline(&options.hub_cache, part)?;
            if part_index(part.file_name()) == 1 {
                first = Some(part_path);
            }
        }
        return Ok(first.unwrap_or(path));
    }
    let http = Http::new(options)?;
    let (path, commit) = hub::fetch_into_cache(&http, file, options, expected.as_deref())?;
    if part_index(file.file_name()) == 1 {
        first = Some(path.clone());
    }
    // The other parts from the same commit, so that they land in the same snapshot.
    let revision = if commit.is_empty() {
        file.revision.as_str()
    } else {
        commit.as_str()
    };
    for part in other_parts(file, revision).iter() {
        let (part_path, _) = hub::fetch_into_cache(&http, part, options, None)?;
        if part_index(part.file_name()) == 1 {
            first = Some(part_path);
        }
    }
    Ok(first.unwrap_or(path))
}

fn fetch_hub_to_dir(
    file: &HubFile,
    dir: &Path,
    options: &DownloadOptions,
) -> Result<PathBuf, DownloadError> {
    let expected = options.expected_sha256()?;
    if options.offline {
        let mut first = None;
        let parts = std::iter::once(file.clone()).chain(other_parts(file, &file.revision));
        for part in parts {
            let path = dir.join(part.file_name());
            if !path.is_file() {
                return Err(DownloadError::Offline {
                    repo: part.repo_id(),
                    file: part.file.clone(),
                    revision: part.revision.clone(),
                    cache: dir.to_path_buf(),
                });
            }
            if first.is_none() || part_index(part.file_name()) == 1 {
                first = Some(path);
            }
        }
        return Ok(first.unwrap_or_else(|| dir.join(file.file_name())));
    }
    let http = Http::new(options)?;
    let (path, commit) = hub::fetch_to_dir(&http, file, dir, options, expected.as_deref())?;
    let mut first = path;
    let revision = if commit.is_empty() {
        file.revision.as_str()
    } else {
        commit.as_str()
    };
    for part in other_parts(file, revision).iter() {
        let (part_path, _) = hub::fetch_to_dir(&http, part, dir, options, None)?;
        if part_index(part.file_name()) == 1 {
            first = part_path;
        }
    }
    Ok(first)
}

fn fetch_url_to_dir(
    url_text: &str,
    dir: &Path,
    options: &DownloadOptions,
) -> Result<PathBuf, DownloadError> {
    let invalid = |reason: String| DownloadError::InvalidSource {
        input: url_text.to_string(),
        reason,
    };
    let url = Url::parse(url_text).map_err(|e| invalid(e.to_string()))?;
    let name = url_file_name(&url).map_err(invalid)?;
    let expected = options.expected_sha256()?;
    let mut urls = vec![(url.clone(), name.clone())];
    if let Some(split) = SplitName::parse(&name) {
        for index in (1..=split.count).filter(|&index| index != split.index) {
            let part = split.part(index);
            let mut part_url = url.clone();
            part_url
                .path_segments_mut()
                .map_err(|()| invalid("the URL cannot have a path".into()))?
                .pop()
                .push(&part);
            urls.push((part_url, part));
        }
    }
    let http = if options.offline {
        None
    } else {
        Some(Http::new(options)?)
    };
    let mut first = None;
    for (index, (url, name)) in urls.iter().enumerate() {
        let expected = if index == 0 {
            expected.as_deref()
        } else {
            None
        };
        let path = fetch_url_file(http.as_ref(), url, &dir.join(name), options, expected)?;
        if first.is_none() || part_index(name) == 1 {
            first = Some(path);
        }
    }
    Ok(first.expect("at least one file"))
}

/// One URL to `dest`: kept when already there (and matching `expected`), else transferred under
/// the lock.
fn fetch_url_file(
    http: Option<&Http>,
    url: &Url,
    dest: &Path,
    options: &DownloadOptions,
    expected: Option<&str>,
) -> Result<PathBuf, DownloadError> {
    let present = |dest: &Path| {
        dest.is_file()
            && match expected {
                None => true,
                Some(expected) => match hub::check_file(dest, expected, url.as_str()) {
                    Ok(()) => true,
                    Err(e) => {
                        log::warn!("{e}: downloading {} again", dest.display());
                        false
                    }
                },
            }
    };
    if present(dest) {
        return Ok(dest.to_path_buf());
    }
    let Some(http) = http else {
        return Err(DownloadError::OfflineUrl {
            url: url.to_string(),
            path: dest.to_path_buf(),
        });
    };
    let _lock = lock::FileLock::acquire(&hub::lock_path_for(dest), options, url.as_str())?;
    // Another process may have finished it while this one waited.
    if expected.is_none() && dest.is_file() {
        return Ok(dest.to_path_buf());
    }
    transfer::Transfer {
        http,
        url: url.clone(),
        part: hub::part_path_for(dest),
        dest: dest.to_path_buf(),
        size: None,
        sha256: expected.map(str::to_string).into_iter().collect(),
        name: dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        options,
    }
    .run()?;
    Ok(dest.to_path_buf())
}
