//! [`Source`]: what to download, parsed from an `http(s)://` URL or
//! `hf://OWNER/REPO/FILE[@REVISION]`.

use std::fmt;
use std::str::FromStr;

use super::DownloadError;

/// The revision used when an `hf://` source names none.
pub const DEFAULT_REVISION: &str = "main";

/// Where a file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A plain `http://` or `https://` URL (its last path segment is the file name).
    Url(String),
    /// A file of a Hugging Face hub model repository.
    Hub(HubFile),
}

/// A file of a Hugging Face hub model repository at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubFile {
    /// The repository's owner (user or organisation).
    pub owner: String,
    /// The repository's name.
    pub repo: String,
    /// The file's path in the repository (may contain `/`).
    pub file: String,
    /// A branch, tag or commit hash ([`DEFAULT_REVISION`] when not given).
    pub revision: String,
}

impl Source {
    /// Parses `https://...`, `http://...` or `hf://OWNER/REPO/FILE[@REVISION]`.
    ///
    /// # Errors
    /// [`DownloadError::InvalidSource`] naming what is wrong: another scheme, a URL without a
    /// host or file name, a repository name or file path the hub would refuse (empty parts,
    /// `..`, characters outside `A-Z a-z 0-9 - _ .` in names), an empty revision.
    pub fn parse(text: &str) -> Result<Source, DownloadError> {
        let invalid = |reason: &str| DownloadError::InvalidSource {
            input: text.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = text.strip_prefix("hf://") {
            let (path, revision) = match rest.rsplit_once('@') {
                Some((path, revision)) => (path, revision),
                None => (rest, DEFAULT_REVISION),
            };
            let mut parts = path.splitn(3, '/');
            let (Some(owner), Some(repo), Some(file)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(invalid("expected hf://OWNER/REPO/FILE[@REVISION]"));
            };
            return HubFile::new(owner, repo, file, revision)
                .map(Source::Hub)
                .map_err(|e| match e {
                    DownloadError::InvalidSource { reason, .. } => invalid(&reason),
                    other => other,
                });
        }
        let lower = text.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(invalid(
                "expected an http:// or https:// URL or hf://OWNER/REPO/FILE[@REVISION]",
            ));
        }
        let url = reqwest::Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
        if url.host_str().map_or(true, str::is_empty) {
            return Err(invalid("the URL has no host"));
        }
        url_file_name(&url).map_err(|reason| invalid(&reason))?;
        Ok(Source::Url(url.to_string()))
    }

    /// Whether `text` names something to download (starts with `hf://`, `http://` or
    /// `https://`) rather than a local path.
    pub fn is_remote(text: &str) -> bool {
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        lower.starts_with("hf://") || lower.starts_with("http://") || lower.starts_with("https://")
    }

    /// The name the file gets on disk: the URL's last path segment, or the last component of
    /// the hub file's path.
    pub fn file_name(&self) -> String {
        match self {
            Source::Url(url) => reqwest::Url::parse(url)
                .ok()
                .and_then(|u| url_file_name(&u).ok())
                .unwrap_or_default(),
            Source::Hub(file) => file.file_name().to_string(),
        }
    }
}

impl FromStr for Source {
    type Err = DownloadError;

    fn from_str(text: &str) -> Result<Source, DownloadError> {
        Source::parse(text)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Url(url) => f.write_str(url),
            Source::Hub(file) => fmt::Display::fmt(file, f),
        }
    }
}

impl HubFile {
    /// A hub file, validated as [`Source::parse`] validates `hf://` sources.
    ///
    /// # Errors
    /// [`DownloadError::InvalidSource`] when a part is empty or not a valid hub name or path.
    pub fn new(
        owner: &str,
        repo: &str,
        file: &str,
        revision: &str,
    ) -> Result<HubFile, DownloadError> {
        let display = format!("hf://{owner}/{repo}/{file}@{revision}");
        let invalid = |reason: String| DownloadError::InvalidSource {
            input: display.clone(),
            reason,
        };
        check_repo_name("owner", owner).map_err(invalid)?;
        check_repo_name("repository", repo).map_err(invalid)?;
        check_file_path(file).map_err(invalid)?;
        check_revision(revision).map_err(invalid)?;
        Ok(HubFile {
            owner: owner.to_string(),
            repo: repo.to_string(),
            file: file.to_string(),
            revision: revision.to_string(),
        })
    }

    /// `OWNER/REPO`.
    pub fn repo_id(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    /// The last component of [`file`](HubFile::file).
    pub fn file_name(&self) -> &str {
        self.file.rsplit('/').next().unwrap_or(&self.file)
    }

    /// The same repository and revision, another file.
    pub(crate) fn sibling(&self, file: String, revision: &str) -> HubFile {
        HubFile {
            owner: self.owner.clone(),
            repo: self.repo.clone(),
            file,
            revision: revision.to_string(),
        }
    }
}

impl fmt::Display for HubFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hf://{}/{}/{}@{}",
            self.owner, self.repo, self.file, self.revision
        )
    }
}

/// The last path segment of a URL, percent-decoded, as a safe file name.
pub(crate) fn url_file_name(url: &reqwest::Url) -> Result<String, String> {
    let segment = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .unwrap_or("");
    let name = percent_decode(segment).ok_or("the URL's file name is not valid UTF-8")?;
    if name.is_empty() {
        return Err("the URL has no file name (its path ends with '/')".into());
    }
    if name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(format!("the URL's file name {name:?} is not usable"));
    }
    Ok(name)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes `text` for a URL path; `/` is kept when `keep_slash`.
pub(crate) fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn check_repo_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 96 {
        return Err(format!("the {what} name must have 1 to 96 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "the {what} name {name:?} may only contain A-Z a-z 0-9 - _ ."
        ));
    }
    if name.contains("--") || name.contains("..") || name.starts_with(['-', '.']) {
        return Err(format!(
            "the {what} name {name:?} must not contain '--' or '..' nor start with '-' or '.'"
        ));
    }
    Ok(())
}

fn check_file_path(file: &str) -> Result<(), String> {
    if file.is_empty() {
        return Err("the file path is empty".into());
    }
    if file.contains(['\\', '\0']) {
        return Err(format!("the file path {file:?} contains '\\' or NUL"));
    }
    if file
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "the file path {file:?} has an empty, '.' or '..' component"
        ));
    }
    Ok(())
}

fn check_revision(revision: &str) -> Result<(), String> {
    if revision.is_empty() {
        return Err("the revision after '@' is empty".into());
    }
    if revision
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
        || revision.contains('\\')
        || revision
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!("the revision {revision:?} is not a valid git name"));
    }
    Ok(())
}

/// One part of a split GGUF model: `PREFIX-00002-of-00005.gguf` (llama.cpp's naming).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitName {
    /// Everything before `-NNNNN-of-NNNNN.gguf`.
    pub prefix: String,
    /// This part's number (1-based).
    pub index: u32,
    /// How many parts there are.
    pub count: u32,
}

impl SplitName {
    /// Parses a file name; `None` when it is not a split part (or the numbers are inconsistent).
    pub fn parse(name: &str) -> Option<SplitName> {
        let stem = name.strip_suffix(".gguf")?;
        let (rest, count) = stem.rsplit_once("-of-")?;
        let (prefix, index) = rest.rsplit_once('-')?;
        let number = |digits: &str| -> Option<u32> {
            (digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse().ok())
                .flatten()
        };
        let (index, count) = (number(index)?, number(count)?);
        (!prefix.is_empty() && index >= 1 && index <= count).then(|| SplitName {
            prefix: prefix.to_string(),
            index,
            count,
        })
    }

    /// The file name of part `index` (1-based).
    pub fn part(&self, index: u32) -> String {
        format!("{}-{index:05}-of-{:05}.gguf", self.prefix, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hub_sources() {
        let Source::Hub(file) = Source::parse("hf://org/model-GGUF/sub/dir/m.gguf@v1.0").unwrap()
        else {
            panic!("not a hub source")
        };
        assert_eq!(
            (
                file.repo_id().as_str(),
                file.file.as_str(),
                file.revision.as_str()
            ),
            ("org/model-GGUF", "sub/dir/m.gguf", "v1.0")
        );
        assert_eq!(file.file_name(), "m.gguf");
        let Source::Hub(file) = Source::parse("hf://a/b/c.gguf").unwrap() else {
            panic!()
        };
        assert_eq!(file.revision, "main");
        let Source::Hub(file) = Source::parse("hf://a/b/c.gguf@refs/pr/1").unwrap() else {
            panic!()
        };
        assert_eq!(file.revision, "refs/pr/1");
        for bad in [
            "hf://a/b",
            "hf://a//c",
            "hf://a/b/../c",
            "hf://a/b/c@",
            "hf://a b/c/d",
            "hf://a/b/c/",
            "ftp://x/y",
            "model.gguf",
            "https:///x.gguf",
            "https://host/dir/",
        ] {
            assert!(
                matches!(Source::parse(bad), Err(DownloadError::InvalidSource { .. })),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn url_file_names() {
        let source = Source::parse("https://example.org/a/my%20model.gguf?download=1").unwrap();
        assert_eq!(source.file_name(), "my model.gguf");
        assert!(Source::is_remote("HF://x") && !Source::is_remote("/tmp/x.gguf"));
    }

    #[test]
    fn split_names() {
        let split = SplitName::parse("big-Q4-00002-of-00003.gguf").unwrap();
        assert_eq!(
            (split.prefix.as_str(), split.index, split.count),
            ("big-Q4", 2, 3)
        );
        assert_eq!(split.part(1), "big-Q4-00001-of-00003.gguf");
        assert!(SplitName::parse("big-00004-of-00003.gguf").is_none());
        assert!(SplitName::parse("big-1-of-3.gguf").is_none());
        assert!(SplitName::parse("model.gguf").is_none());
        assert_eq!(percent_encode("a b/c", true), "a%20b/c");
        assert_eq!(percent_encode("refs/pr/1", false), "refs%2Fpr%2F1");
    }
}
