//! The Hugging Face hub: resolving a file (HEAD on `/resolve/`), and the cache layout shared with
//! huggingface_hub:
//!
//! ```text
//! <hub cache>/models--OWNER--REPO/
//!     blobs/<etag>                    the bytes (etag: the sha256 for LFS files)
//!     blobs/<etag>.incomplete         a partial download (resumed)
//!     refs/<revision>                 the commit hash the revision pointed at
//!     snapshots/<commit>/<file>       a relative symlink to ../../blobs/<etag>
//! <hub cache>/.locks/models--OWNER--REPO/<etag>.gguf-loader.lock
//! ```

use std::path::{Path, PathBuf};

use reqwest::header::{CONTENT_LENGTH, ETAG};
use reqwest::{Method, Url};

use super::http::{self, Http};
use super::lock::FileLock;
use super::options::is_sha256;
use super::source::percent_encode;
use super::transfer::{self, Transfer};
use super::{DownloadError, DownloadOptions, HubFile};

/// What the hub says about a file.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    /// The commit the revision resolves to.
    pub commit: String,
    /// The blob's name: the sha256 for LFS files, the git blob hash otherwise.
    pub etag: String,
    /// The size, when announced.
    pub size: Option<u64>,
    /// Where the bytes are (the `Location` of an LFS redirect, else the resolve URL).
    pub location: Url,
    /// The resolve URL asked.
    pub resolve_url: Url,
}

impl Metadata {
    /// The sha256 the hub vouches for (LFS files).
    pub fn sha256(&self) -> Option<&str> {
        is_sha256(&self.etag).then_some(self.etag.as_str())
    }
}

/// `{endpoint}/{owner}/{repo}/resolve/{revision}/{file}`.
pub(crate) fn resolve_url(endpoint: &Url, file: &HubFile) -> Result<Url, DownloadError> {
    let base = endpoint.as_str().trim_end_matches('/');
    let text = format!(
        "{base}/{}/{}/resolve/{}/{}",
        file.owner,
        file.repo,
        percent_encode(&file.revision, false),
        percent_encode(&file.file, true)
    );
    Url::parse(&text).map_err(|e| DownloadError::InvalidSource {
        input: file.to_string(),
        reason: format!("cannot form the URL {text:?}: {e}"),
    })
}

/// Asks the hub about `file`: HEAD on its resolve URL, following redirects that stay on the same
/// origin (a renamed repository) and stopping at one to another host (the LFS storage).
pub(crate) fn resolve(http: &Http, file: &HubFile) -> Result<Metadata, DownloadError> {
    let resolve_url = resolve_url(http.endpoint(), file)?;
    let mut url = resolve_url.clone();
    for _ in 0..http::max_redirects() {
        let response = http.send(Method::HEAD, &url, None)?;
        let target = http::redirect_target(&url, &response)?;
        if let Some(target) = &target {
            if http::same_origin(&url, target) && !has_metadata(&response) {
                log::debug!("{url} redirects to {target}");
                url = target.clone();
                continue;
            }
        } else if !response.status().is_success() {
            return Err(http::status_error(&url, &response, &describe(file)));
        }
        let invalid = |reason: &str| DownloadError::InvalidResponse {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let commit = http::header(&response, "x-repo-commit")
            .ok_or_else(|| invalid("no X-Repo-Commit header: is HF_ENDPOINT a Hugging Face hub?"))?
            .to_string();
        let etag = http::header(&response, "x-linked-etag")
            .or_else(|| http::header(&response, ETAG))
            .map(normalize_etag)
            .ok_or_else(|| invalid("no X-Linked-Etag or ETag header"))?;
        if !is_plain_name(&commit) || !is_plain_name(&etag) {
            return Err(invalid(
                "X-Repo-Commit or ETag is not a plain hexadecimal name",
            ));
        }
        let size = http::header_u64(&response, "x-linked-size").or_else(|| {
            target
                .is_none()
                .then(|| http::header_u64(&response, CONTENT_LENGTH))
                .flatten()
        });
        let metadata = Metadata {
            commit,
            etag,
            size,
            location: target.unwrap_or_else(|| url.clone()),
            resolve_url,
        };
        log::debug!("{file}: {metadata:?}");
        return Ok(metadata);
    }
    Err(http::too_many_redirects(&url))
}

/// Whether a redirect response already carries the file's metadata (the hub's LFS redirects do).
fn has_metadata(response: &reqwest::blocking::Response) -> bool {
    http::header(response, "x-repo-commit").is_some()
        && http::header(response, "x-linked-etag").is_some()
}

/// `"abc"`, `W/"abc"` -> `abc`.
fn normalize_etag(etag: &str) -> String {
    let etag = etag.trim();
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.trim_matches('"').to_string()
}

/// Safe as one path component: ASCII letters, digits, `-` and `_`, not empty.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How a file is named in messages: `FILE of OWNER/REPO at revision REV`.
pub(crate) fn describe(file: &HubFile) -> String {
    format!(
        "{} of {} at revision {}",
        file.file,
        file.repo_id(),
        file.revision
    )
}

/// `<cache>/models--OWNER--REPO`.
pub(crate) fn repo_dir(cache: &Path, file: &HubFile) -> PathBuf {
    cache.join(format!("models--{}--{}", file.owner, file.repo))
}

fn relative(file: &str) -> PathBuf {
    file.split('/').collect()
}

/// `snapshots/<commit>/<file>` in the repository's cache directory.
fn pointer_path(repo_dir: &Path, commit: &str, file: &str) -> PathBuf {
    repo_dir.join("snapshots").join(commit).join(relative(file))
}

/// Whether `revision` is a full commit hash.
fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The cached file for `file` (its revision resolved through `refs/` unless it is a commit
/// hash), without any network access.
pub(crate) fn cached_file(hub_cache: &Path, file: &HubFile) -> Option<PathBuf> {
    let repo_dir = repo_dir(hub_cache, file);
    let commit = if is_commit_hash(&file.revision) {
        file.revision.clone()
    } else {
        let reference = repo_dir.join("refs").join(relative(&file.revision));
        std::fs::read_to_string(reference).ok()?.trim().to_string()
    };
    if !is_plain_name(&commit) {
        return None;
    }
    let pointer = pointer_path(&repo_dir, &commit, &file.file);
    pointer.is_file().then_some(pointer)
}

/// The offline answer: the cached file, or [`DownloadError::Offline`] naming what is missing.
pub(crate) fn offline(hub_cache: &Path, file: &HubFile) -> Result<PathBuf, DownloadError> {
    cached_file(hub_cache, file).ok_or_else(|| DownloadError::Offline {
        repo: file.repo_id(),
        file: file.file.clone(),
        revision: file.revision.clone(),
        cache: hub_cache.to_path_buf(),
    })
}

/// What [`resolve_or_fallback`] found.
pub(crate) enum Resolved {
    /// The hub's answer.
    Hub(Box<Metadata>),
    /// The hub could not be reached, but the file is already here.
    Local(PathBuf),
}

/// Resolves `file`, retrying transient failures with backoff; when the hub cannot be reached
/// and `fallback` finds the file locally, that path is the answer.
pub(crate) fn resolve_or_fallback(
    http: &Http,
    file: &HubFile,
    options: &DownloadOptions,
    fallback: impl Fn() -> Option<PathBuf>,
) -> Result<Resolved, DownloadError> {
    let mut failures = 0;
    loop {
        match resolve(http, file) {
            Ok(metadata) => return Ok(Resolved::Hub(Box::new(metadata))),
            Err(error) if error.is_transient() => {
                if let Some(path) = fallback() {
                    log::warn!("{error}; using {}", path.display());
                    return Ok(Resolved::Local(path));
                }
                failures += 1;
                if failures > options.retries {
                    return Err(error);
                }
                log::warn!("{error}; trying again ({failures} of {})", options.retries);
                let url = resolve_url(http.endpoint(), file)?;
                http::backoff(options, failures, url.as_str())?;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Fetches `file` into the hub cache; returns the snapshot path and the commit.
pub(crate) fn fetch_into_cache(
    http: &Http,
    file: &HubFile,
    options: &DownloadOptions,
    expected: Option<&str>,
) -> Result<(PathBuf, String), DownloadError> {
    let cache = options.hub_cache.as_path();
    let metadata = match resolve_or_fallback(http, file, options, || cached_file(cache, file))? {
        Resolved::Hub(metadata) => metadata,
        Resolved::Local(path) => {
            if let Some(expected) = expected {
                check_file(&path, expected, &file.to_string())?;
            }
            let commit = commit_of(&path).unwrap_or_default();
            return Ok((path, commit));
        }
    };
    check_announced(&metadata, expected)?;
    let repo_dir = repo_dir(cache, file);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| DownloadError::io(path, e)
    };
    if file.revision != metadata.commit {
        write_ref(&repo_dir, &file.revision, &metadata.commit)?;
    }
    let pointer = pointer_path(&repo_dir, &metadata.commit, &file.file);
    if pointer.is_file() {
        if let (Some(expected), None) = (expected, metadata.sha256()) {
            check_file(&pointer, expected, metadata.location.as_str())?;
        }
        return Ok((pointer, metadata.commit));
    }
    let blobs = repo_dir.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
    let blob = blobs.join(&metadata.etag);
    let lock_path = cache
        .join(".locks")
        .join(repo_dir.file_name().unwrap_or_default())
        .join(format!("{}.gguf-loader.lock", metadata.etag));
    let url_text = metadata.location.to_string();
    let _lock = FileLock::acquire(&lock_path, options, &url_text)?;
    if !blob.is_file() {
        let mut sha256: Vec<String> = metadata.sha256().map(str::to_string).into_iter().collect();
        sha256.extend(expected.map(str::to_string));
        sha256.dedup();
        Transfer {
            http,
            url: metadata.location.clone(),
            part: blobs.join(format!("{}.incomplete", metadata.etag)),
            dest: blob.clone(),
            size: metadata.size,
            sha256,
            name: file.file_name().to_string(),
            options,
        }
        .run()?;
    } else if let (Some(expected), None) = (expected, metadata.sha256()) {
        check_file(&blob, expected, &url_text)?;
    }
    link(&blob, &pointer, &file.file)?;
    Ok((pointer, metadata.commit))
}

/// Fetches `file` into `dir` (not the cache), verified against the hub's sha256.
pub(crate) fn fetch_to_dir(
    http: &Http,
    file: &HubFile,
    dir: &Path,
    options: &DownloadOptions,
    expected: Option<&str>,
) -> Result<(PathBuf, String), DownloadError> {
    let dest = dir.join(file.file_name());
    let metadata =
        match resolve_or_fallback(http, file, options, || dest.is_file().then(|| dest.clone()))? {
            Resolved::Hub(metadata) => metadata,
            Resolved::Local(path) => {
                if let Some(expected) = expected {
                    check_file(&path, expected, &file.to_string())?;
                }
                return Ok((path, String::new()));
            }
        };
    check_announced(&metadata, expected)?;
    let url_text = metadata.location.to_string();
    let sized = |path: &Path| {
        path.metadata()
            .is_ok_and(|m| m.is_file() && metadata.size.map_or(true, |size| m.len() == size))
    };
    if sized(&dest)
        && expected
            .map_or(Ok(()), |e| check_file(&dest, e, &url_text))
            .is_ok()
    {
        return Ok((dest, metadata.commit));
    }
    let lock_path = lock_path_for(&dest);
    let _lock = FileLock::acquire(&lock_path, options, &url_text)?;
    let mut sha256: Vec<String> = metadata.sha256().map(str::to_string).into_iter().collect();
    sha256.extend(expected.map(str::to_string));
    sha256.dedup();
    Transfer {
        http,
        url: metadata.location.clone(),
        part: part_path_for(&dest),
        dest: dest.clone(),
        size: metadata.size,
        sha256,
        name: file.file_name().to_string(),
        options,
    }
    .run()?;
    Ok((dest, metadata.commit))
}

/// The caller's sha256 against the one the hub announces (before any byte moves).
fn check_announced(metadata: &Metadata, expected: Option<&str>) -> Result<(), DownloadError> {
    match (expected, metadata.sha256()) {
        (Some(expected), Some(announced)) if expected != announced => {
            Err(DownloadError::ChecksumMismatch {
                url: metadata.resolve_url.to_string(),
                expected: expected.to_string(),
                actual: announced.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// Hashes an existing file and compares.
pub(crate) fn check_file(path: &Path, expected: &str, url: &str) -> Result<(), DownloadError> {
    let actual = transfer::sha256_file(path)?;
    if actual == expected {
        Ok(())
    } else {
        Err(DownloadError::ChecksumMismatch {
            url: url.to_string(),
            expected: expected.to_string(),
            actual,
        })
    }
}

/// `<dest>.part`.
pub(crate) fn part_path_for(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// `<dest>.lock`.
pub(crate) fn lock_path_for(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    dest.with_file_name(name)
}

/// The commit directory of a snapshot path (`.../snapshots/<commit>/<file>`).
fn commit_of(pointer: &Path) -> Option<String> {
    let mut components = pointer.components().rev().map(|c| c.as_os_str());
    let mut previous = None;
    for component in components.by_ref() {
        if component == "snapshots" {
            return previous
                .and_then(|c: &std::ffi::OsStr| c.to_str())
                .map(str::to_string);
        }
        previous = Some(component);
    }
    None
}

/// Writes `refs/<revision>` (atomically: a temporary file renamed into place).
fn write_ref(repo_dir: &Path, revision: &str, commit: &str) -> Result<(), DownloadError> {
    let path = repo_dir.join("refs").join(relative(revision));
    if std::fs::read_to_string(&path).is_ok_and(|current| current == commit) {
        return Ok(());
    }
    let parent = path.parent().unwrap_or(repo_dir);
    std::fs::create_dir_all(parent).map_err(|e| DownloadError::io(parent, e))?;
    // Unique per process and call: two threads may write the same reference at once.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".{}-{call}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, commit).map_err(|e| DownloadError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| DownloadError::io(&path, e))
}

/// Points `snapshots/<commit>/<file>` at the blob with a relative symlink (a copy where symlinks
/// are not available).
fn link(blob: &Path, pointer: &Path, file: &str) -> Result<(), DownloadError> {
    let parent = pointer.parent().expect("a snapshot path has a parent");
    std::fs::create_dir_all(parent).map_err(|e| DownloadError::io(parent, e))?;
    // snapshots/<commit>/<dirs of file>/: up to the repository directory, then into blobs/.
    let depth = 2 + file.matches('/').count();
    let mut target = PathBuf::new();
    for _ in 0..depth {
        target.push("..");
    }
    target.push("blobs");
    target.push(blob.file_name().unwrap_or_default());
    match std::fs::remove_file(pointer) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(DownloadError::io(pointer, e)),
    }
    match symlink(&target, pointer) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && pointer.is_file() => Ok(()),
        Err(e) => {
            log::debug!("cannot symlink {}: {e}; copying", pointer.display());
            std::fs::copy(blob, pointer)
                .map(drop)
                .map_err(|e| DownloadError::io(pointer, e))
        }
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(not(any(unix, windows)))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_and_paths() {
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert!(!is_plain_name("../x") && is_plain_name("a1B_-"));
        let file = HubFile::new("o", "r", "d/e/f.gguf", "refs/pr/1").unwrap();
        let url = resolve_url(&Url::parse("http://h:1/").unwrap(), &file).unwrap();
        assert_eq!(
            url.as_str(),
            "http://h:1/o/r/resolve/refs%2Fpr%2F1/d/e/f.gguf"
        );
        assert_eq!(
            commit_of(Path::new("/c/models--o--r/snapshots/abc/d/f.gguf")).as_deref(),
            Some("abc")
        );
    }

    #[cfg(unix)]
    #[test]
    fn cache_layout_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = HubFile::new("o", "r", "sub/m.gguf", "main").unwrap();
        let repo = repo_dir(dir.path(), &file);
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert!(cached_file(dir.path(), &file).is_none());
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs/e1"), b"bytes").unwrap();
        write_ref(&repo, "main", commit).unwrap();
        let pointer = pointer_path(&repo, commit, &file.file);
        link(&repo.join("blobs/e1"), &pointer, &file.file).unwrap();
        assert_eq!(
            std::fs::read_link(&pointer).unwrap(),
            PathBuf::from("../../../blobs/e1")
        );
        assert_eq!(cached_file(dir.path(), &file), Some(pointer.clone()));
        let by_commit = file.sibling(file.file.clone(), commit);
        assert_eq!(cached_file(dir.path(), &by_commit), Some(pointer));
        match offline(dir.path(), &file.sibling("other.gguf".into(), "main")) {
            Err(DownloadError::Offline {
                repo,
                file,
                revision,
                ..
            }) => assert_eq!(
                (repo.as_str(), file.as_str(), revision.as_str()),
                ("o/r", "other.gguf", "main")
            ),
            other => panic!("{other:?}"),
        }
    }
}
