//! One resumable transfer: bytes go to a partial file (resumed with `Range: bytes=N-`, restarted
//! when the server ignores the range), are hashed on the way, verified against the expected
//! sha256 values and renamed into place. Failures are retried with backoff inside the call.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::blocking::Response;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE};
use reqwest::Url;
use sha2::{Digest, Sha256};

use super::http::{self, Http};
use super::{DownloadError, DownloadOptions, Progress};

/// Bytes read from the network per chunk (the cancellation flag is checked between chunks).
const CHUNK: usize = 64 * 1024;
/// The shortest interval between two progress calls.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// What to transfer and where.
pub(crate) struct Transfer<'a> {
    /// The client.
    pub http: &'a Http,
    /// Where the bytes are (redirects are followed).
    pub url: Url,
    /// The partial file (kept between calls for resuming).
    pub part: PathBuf,
    /// The final path (written only by renaming a verified partial file).
    pub dest: PathBuf,
    /// The size announced beforehand (the hub's `X-Linked-Size`), if any.
    pub size: Option<u64>,
    /// Every sha256 the bytes must have (lower-case hex).
    pub sha256: Vec<String>,
    /// The name shown in progress reports.
    pub name: String,
    /// Retries, backoff, progress and cancellation.
    pub options: &'a DownloadOptions,
}

/// The partial file, the hash of its bytes and its length.
struct Partial {
    file: File,
    path: PathBuf,
    hasher: Sha256,
    len: u64,
    /// Whether the bytes include some from an earlier call (not yet confirmed by a checksum).
    inherited: bool,
}

impl Partial {
    /// Opens (or creates) the partial file and hashes what it holds.
    fn open(path: &Path) -> Result<Partial, DownloadError> {
        let io = |e| DownloadError::io(path, e);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DownloadError::io(parent, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; CHUNK];
        let mut len = 0u64;
        loop {
            let n = match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            };
            hasher.update(&buffer[..n]);
            len += n as u64;
        }
        Ok(Partial {
            file,
            path: path.to_path_buf(),
            hasher,
            len,
            inherited: len > 0,
        })
    }

    /// Empties the file (a restart from byte 0).
    fn truncate(&mut self) -> Result<(), DownloadError> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)).map(drop))
            .map_err(|e| DownloadError::io(&self.path, e))?;
        self.hasher = Sha256::new();
        self.len = 0;
        self.inherited = false;
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), DownloadError> {
        self.file
            .write_all(bytes)
            .map_err(|e| DownloadError::io(&self.path, e))?;
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }
}

/// Throttled progress reports.
struct Meter<'a> {
    options: &'a DownloadOptions,
    name: &'a str,
    started: Instant,
    /// Bytes received by this call.
    received: u64,
    last: Option<Instant>,
}

impl Meter<'_> {
    fn report(&mut self, downloaded: u64, total: Option<u64>, force: bool) {
        let Some(callback) = &self.options.progress else {
            return;
        };
        let now = Instant::now();
        if !force && self.last.is_some_and(|last| now - last < PROGRESS_INTERVAL) {
            return;
        }
        self.last = Some(now);
        let elapsed = (now - self.started).as_secs_f64();
        let moved = self.received as f64;
        callback(&Progress {
            file: self.name.to_string(),
            downloaded,
            total,
            bytes_per_second: if elapsed > 0.0 { moved / elapsed } else { 0.0 },
        });
    }
}

/// How one request ended.
enum Attempt {
    /// The body arrived completely.
    Complete,
    /// Try again (the error says why; `progressed`: bytes arrived before it failed).
    Retry {
        error: DownloadError,
        progressed: bool,
    },
}

impl Transfer<'_> {
    /// Runs the transfer: resumes the partial file, retries with backoff, verifies the sha256
    /// values and renames the result to [`dest`](Transfer::dest).
    pub fn run(&self) -> Result<(), DownloadError> {
        let url_text = self.url.to_string();
        let mut partial = Partial::open(&self.part)?;
        if self.size.is_some_and(|size| partial.len > size) {
            log::info!(
                "{} is longer than {url_text}: starting again",
                self.part.display()
            );
            partial.truncate()?;
        }
        if partial.len > 0 {
            log::info!(
                "resuming {url_text} at byte {} ({})",
                partial.len,
                self.part.display()
            );
        } else {
            log::info!("downloading {url_text} to {}", self.dest.display());
        }
        let mut meter = Meter {
            options: self.options,
            name: &self.name,
            started: Instant::now(),
            received: 0,
            last: None,
        };
        let mut total = self.size;
        meter.report(partial.len, total, true);
        // Bytes from an earlier call are trusted only as far as the checksum agrees: on a
        // mismatch the transfer starts once more from byte 0 before reporting the error.
        loop {
            self.transfer(&mut partial, &mut total, &mut meter)?;
            meter.report(partial.len, total, true);
            match self.mismatch(&partial) {
                None => return self.finish(partial),
                Some(_) if partial.inherited => {
                    log::warn!(
                        "{} does not match its sha256 after resuming an earlier partial file: downloading it again from byte 0",
                        self.url
                    );
                    partial.truncate()?;
                    total = self.size;
                }
                Some((expected, actual)) => {
                    drop(partial.file);
                    if let Err(e) = std::fs::remove_file(&partial.path) {
                        log::warn!("cannot remove {}: {e}", partial.path.display());
                    }
                    return Err(DownloadError::ChecksumMismatch {
                        url: self.url.to_string(),
                        expected,
                        actual,
                    });
                }
            }
        }
    }

    /// Requests until the partial file is complete, retrying with backoff.
    fn transfer(
        &self,
        partial: &mut Partial,
        total: &mut Option<u64>,
        meter: &mut Meter,
    ) -> Result<(), DownloadError> {
        let mut failures = 0u32;
        loop {
            if self.options.cancelled() {
                return Err(DownloadError::Cancelled {
                    url: self.url.to_string(),
                });
            }
            if total.is_some_and(|size| partial.len == size) {
                return Ok(());
            }
            match self.attempt(partial, total, meter)? {
                Attempt::Complete => return Ok(()),
                Attempt::Retry { error, progressed } => {
                    if progressed {
                        failures = 0;
                    }
                    failures += 1;
                    if failures > self.options.retries {
                        return Err(error);
                    }
                    log::warn!(
                        "{error}; trying again ({failures} of {}) from byte {}",
                        self.options.retries,
                        partial.len
                    );
                    http::backoff(self.options, failures, self.url.as_str())?;
                }
            }
        }
    }

    /// One request: asks for the bytes after the partial file and appends them.
    fn attempt(
        &self,
        partial: &mut Partial,
        total: &mut Option<u64>,
        meter: &mut Meter,
    ) -> Result<Attempt, DownloadError> {
        let from = (partial.len > 0).then_some(partial.len);
        let (mut response, url) = match self.http.get(&self.url, from) {
            Ok(answer) => answer,
            Err(error) if error.is_transient() => {
                return Ok(Attempt::Retry {
                    error,
                    progressed: false,
                })
            }
            Err(error) => return Err(error),
        };
        let invalid = |reason: String| DownloadError::InvalidResponse {
            url: url.to_string(),
            reason,
        };
        let announced = match response.status().as_u16() {
            206 => {
                let range = http::header(&response, CONTENT_RANGE).unwrap_or("");
                let (start, size) = parse_content_range(range).ok_or_else(|| {
                    invalid(format!("206 with a malformed Content-Range {range:?}"))
                })?;
                if start != partial.len {
                    log::warn!(
                        "{url} sent bytes from {start} instead of {}: starting again",
                        partial.len
                    );
                    partial.truncate()?;
                    return Ok(Attempt::Retry {
                        error: invalid(format!("206 from byte {start}, not the one asked for")),
                        progressed: false,
                    });
                }
                size
            }
            200 => {
                if partial.len > 0 {
                    log::info!(
                        "{url} ignored the range request (200, not 206): starting from byte 0"
                    );
                    partial.truncate()?;
                }
                http::header_u64(&response, CONTENT_LENGTH)
            }
            416 if partial.len > 0 => {
                // Nothing after the partial file: it is complete if the size says so; the sha256
                // check decides otherwise.
                let range = http::header(&response, CONTENT_RANGE).unwrap_or("");
                let size = range
                    .strip_prefix("bytes */")
                    .and_then(|size| size.parse::<u64>().ok());
                if size.map_or(total.is_none(), |size| size == partial.len) {
                    *total = Some(partial.len);
                    return Ok(Attempt::Complete);
                }
                log::warn!("{url} refused the range request (416): starting again");
                partial.truncate()?;
                return Ok(Attempt::Retry {
                    error: DownloadError::Http {
                        url: url.to_string(),
                        status: 416,
                    },
                    progressed: false,
                });
            }
            _ => {
                let error = http::status_error(&url, &response, &self.name);
                return if error.is_transient() {
                    Ok(Attempt::Retry {
                        error,
                        progressed: false,
                    })
                } else {
                    Err(error)
                };
            }
        };
        match (*total, announced) {
            (Some(expected), Some(size)) if expected != size => {
                return Err(invalid(format!(
                    "the file has {size} bytes, {expected} were announced"
                )))
            }
            (None, Some(size)) => *total = Some(size),
            _ => {}
        }
        self.copy_body(&mut response, &url, partial, *total, meter)
    }

    /// Appends the response body to the partial file.
    fn copy_body(
        &self,
        response: &mut Response,
        url: &Url,
        partial: &mut Partial,
        total: Option<u64>,
        meter: &mut Meter,
    ) -> Result<Attempt, DownloadError> {
        let started_at = partial.len;
        let mut buffer = vec![0u8; CHUNK];
        loop {
            if self.options.cancelled() {
                return Err(DownloadError::Cancelled {
                    url: self.url.to_string(),
                });
            }
            let n = match response.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Ok(Attempt::Retry {
                        error: DownloadError::Network {
                            url: url.to_string(),
                            reason: http::describe(&e),
                        },
                        progressed: partial.len > started_at,
                    })
                }
            };
            if total.is_some_and(|size| partial.len + n as u64 > size) {
                let size = total.unwrap_or_default();
                partial.truncate()?;
                return Err(DownloadError::InvalidResponse {
                    url: url.to_string(),
                    reason: format!("the body is longer than the announced {size} bytes"),
                });
            }
            partial.append(&buffer[..n])?;
            meter.received += n as u64;
            meter.report(partial.len, total, false);
        }
        match total {
            Some(size) if partial.len < size => Ok(Attempt::Retry {
                error: DownloadError::Network {
                    url: url.to_string(),
                    reason: format!("the connection closed after byte {} of {size}", partial.len),
                },
                progressed: partial.len > started_at,
            }),
            _ => Ok(Attempt::Complete),
        }
    }

    /// The first expected sha256 the partial file does not have, with its actual sha256.
    fn mismatch(&self, partial: &Partial) -> Option<(String, String)> {
        if self.sha256.is_empty() {
            return None;
        }
        let actual = hex(&partial.hasher.clone().finalize());
        self.sha256
            .iter()
            .find(|expected| **expected != actual)
            .map(|expected| (expected.clone(), actual))
    }

    /// Makes the verified partial file durable and renames it into place.
    fn finish(&self, partial: Partial) -> Result<(), DownloadError> {
        let Partial { file, path, .. } = partial;
        file.sync_all().map_err(|e| DownloadError::io(&path, e))?;
        drop(file);
        std::fs::rename(&path, &self.dest).map_err(|e| DownloadError::io(&self.dest, e))?;
        log::info!("downloaded {}", self.dest.display());
        Ok(())
    }
}

/// `bytes START-END/SIZE` (SIZE may be `*`) as `(START, SIZE)`.
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, size) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end): (u64, u64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    if end < start {
        return None;
    }
    let size = match size.trim() {
        "*" => None,
        size => Some(size.parse().ok()?),
    };
    Some((start, size))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of a file (hex).
pub(crate) fn sha256_file(path: &Path) -> Result<String, DownloadError> {
    let mut file = File::open(path).map_err(|e| DownloadError::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| DownloadError::io(path, e))?;
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 5-9/10"), Some((5, Some(10))));
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, None)));
        assert_eq!(parse_content_range("bytes 9-5/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
