//! Downloads against a local stand-in for the Hugging Face hub (tests/python/mock_hub.py), never
//! the internet: resume, integrity, status codes, tokens, redirects, servers without range
//! support, cancellation, split models, offline mode, the cache layout shared with
//! huggingface_hub (both ways), concurrent downloads, the `pull` example, and loading a fetched
//! model. Every case starts its own server and uses its own directories; no environment variable
//! of this process is changed (the options get their values explicitly).
#![cfg(feature = "download")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gguf_loader::download::{
    cached_hub_file, fetch, fetch_to_dir, DownloadError, DownloadOptions, HubFile, Source,
};
use gguf_loader::Category;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Fixtures

/// Deterministic pseudo-random bytes.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sha256_file(path: &Path) -> String {
    sha256(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

const MODEL: &str = "org/repo/model.gguf";
const MODEL_SIZE: usize = 400_000;

/// A directory of repositories as the mock serves them.
struct Repos {
    dir: tempfile::TempDir,
}

impl Repos {
    fn new() -> Repos {
        let dir = tempfile::tempdir().unwrap();
        let files: [(&str, Vec<u8>); 6] = [
            (MODEL, bytes(1, MODEL_SIZE)),
            ("org/repo/sub/nested.gguf", bytes(2, 70_000)),
            (
                "org/repo/config.json",
                b"{\"architectures\": [\"Llama\"]}\n".to_vec(),
            ),
            ("org/split/m-00001-of-00003.gguf", bytes(3, 50_000)),
            ("org/split/m-00002-of-00003.gguf", bytes(4, 50_000)),
            ("org/split/m-00003-of-00003.gguf", bytes(5, 50_000)),
        ];
        for (path, content) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        Repos { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn sha(&self, file: &str) -> String {
        sha256_file(&self.dir.path().join(file))
    }
}

/// The mock hub, stopped when dropped.
struct Mock {
    child: Child,
    port: u16,
    /// The server's stdout, kept open for its lifetime.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Mock {
    fn start(root: &Path, args: &[&str]) -> Mock {
        let mut child = Command::new(common::python())
            .arg(common::repo_root().join("tests/python/mock_hub.py"))
            .arg("--root")
            .arg(root)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting tests/python/mock_hub.py");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("mock_hub.py printed {line:?} instead of its port"));
        Mock {
            child,
            port,
            _stdout: stdout,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request the mock has seen (reading the log is not one).
    fn log(&self) -> Vec<serde_json::Value> {
        let text = reqwest::blocking::get(format!("{}/_mock/log", self.endpoint()))
            .and_then(|r| r.text())
            .expect("reading the mock's log");
        serde_json::from_str(&text).unwrap()
    }

    /// The `Range` header of each GET of a file body (on either origin), in order.
    fn body_ranges(&self) -> Vec<Option<String>> {
        self.log()
            .iter()
            .filter(|r| {
                r["method"] == "GET" && r["path"].as_str().unwrap().contains("/lfs-objects/")
            })
            .map(|r| r["range"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Options for `mock` with everything explicit: no variable of this process is read.
fn options(mock: &Mock, cache: &Path) -> DownloadOptions {
    DownloadOptions::new()
        .with_endpoint(mock.endpoint())
        .with_hub_cache(cache.join("hub"))
        .with_download_dir(cache.join("downloads"))
        .with_retries(3)
        .with_backoff(Duration::from_millis(20))
        .with_timeout(Duration::from_secs(20))
}

fn hub(path: &str) -> Source {
    Source::parse(&format!("hf://{path}")).unwrap()
}

fn blob_dir(cache: &Path, repo: &str) -> PathBuf {
    cache
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")))
        .join("blobs")
}

// ---------------------------------------------------------------------------------------------
// Resume

#[test]
fn a_cut_transfer_resumes_with_a_range_request() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &["--cut-after", "100000", "--cut-count", "2"]);
    let cache = tempfile::tempdir().unwrap();
    let path = fetch(&hub(MODEL), &options(&mock, cache.path())).unwrap();
    let sha = repos.sha(MODEL);
    assert_eq!(sha256_file(&path), sha);
    assert_eq!(
        mock.body_ranges(),
        [
            None,
            Some("bytes=100000-".into()),
            Some("bytes=200000-".into())
        ]
    );
    // The hub cache layout: blob named by the sha256, relative symlink, refs/main.
    let blobs = blob_dir(cache.path(), "org/repo");
    assert!(blobs.join(&sha).is_file());
    assert!(!blobs.join(format!("{sha}.incomplete")).exists());
    assert_eq!(
        std::fs::read_link(&path).unwrap(),
        PathBuf::from(format!("../../blobs/{sha}"))
    );
    let commit = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let repo_dir = blobs.parent().unwrap();
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        commit
    );
    assert_eq!(
        path,
        repo_dir.join("snapshots").join(commit).join("model.gguf")
    );
}

#[test]
fn a_later_call_resumes_the_partial_file() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &["--cut-after", "150000", "--cut-count", "1"]);
    let cache = tempfile::tempdir().unwrap();
    let no_retries = options(&mock, cache.path()).with_retries(0);
    let error = fetch(&hub(MODEL), &no_retries).unwrap_err();
    assert!(
        matches!(error, DownloadError::Network { .. }) && error.is_transient(),
        "{error:?}"
    );
    let sha = repos.sha(MODEL);
    let incomplete = blob_dir(cache.path(), "org/repo").join(format!("{sha}.incomplete"));
    assert_eq!(std::fs::metadata(&incomplete).unwrap().len(), 150_000);
    let path = fetch(&hub(MODEL), &options(&mock, cache.path())).unwrap();
    assert_eq!(sha256_file(&path), sha);
    assert_eq!(mock.body_ranges(), [None, Some("bytes=150000-".into())]);
    assert!(!incomplete.exists());
}

#[test]
fn a_server_without_range_support_restarts_from_zero() {
    let repos = Repos::new();
    let mock = Mock::start(
        repos.path(),
        &["--no-range", "--cut-after", "100000", "--cut-count", "1"],
    );
    let cache = tempfile::tempdir().unwrap();
    let path = fetch(&hub(MODEL), &options(&mock, cache.path())).unwrap();
    assert_eq!(sha256_file(&path), repos.sha(MODEL));
    // The range was asked for, answered with 200 and the whole body.
    assert_eq!(mock.body_ranges(), [None, Some("bytes=100000-".into())]);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), MODEL_SIZE as u64);
}

// ---------------------------------------------------------------------------------------------
// Integrity

#[test]
fn a_wrong_sha256_is_refused_and_its_partial_data_is_not_trusted() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let url = Source::parse(&format!(
        "{}/org/repo/resolve/main/model.gguf",
        mock.endpoint()
    ))
    .unwrap();
    let right = repos.sha(MODEL);
    let wrong = "0".repeat(64);
    let base = options(&mock, dir.path());
    match fetch_to_dir(&url, dir.path(), &base.clone().with_sha256(&wrong)) {
        Err(DownloadError::ChecksumMismatch {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (wrong.clone(), right.clone())),
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    let dest = dir.path().join("model.gguf");
    assert!(!dest.exists(), "nothing may be left at the final path");
    assert!(
        !dir.path().join("model.gguf.part").exists(),
        "the partial data must be deleted"
    );

    // Bytes left by something else: resumed, found wrong by the checksum, fetched again whole.
    std::fs::write(dir.path().join("model.gguf.part"), vec![0xFF; 1000]).unwrap();
    let path = fetch_to_dir(&url, dir.path(), &base.clone().with_sha256(&right)).unwrap();
    assert_eq!(path, dest);
    assert_eq!(sha256_file(&path), right);
    assert_eq!(
        mock.body_ranges(),
        [None, Some("bytes=1000-".into()), None],
        "the untrusted partial data must be fetched again from byte 0"
    );
    // The file is there: a later call with the right sha256 checks it and makes no request.
    let before = mock.log().len();
    fetch_to_dir(&url, dir.path(), &base.with_sha256(&right)).unwrap();
    assert_eq!(mock.log().len(), before, "no request");
}

#[test]
fn the_hubs_sha256_is_checked() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &["--wrong-sha"]);
    let cache = tempfile::tempdir().unwrap();
    let error = fetch(&hub(MODEL), &options(&mock, cache.path())).unwrap_err();
    let DownloadError::ChecksumMismatch {
        ref expected,
        ref actual,
        ..
    } = error
    else {
        panic!("expected ChecksumMismatch, got {error:?}");
    };
    assert_eq!(actual, &repos.sha(MODEL));
    assert_eq!(error.category(), Category::Model);
    let blobs = blob_dir(cache.path(), "org/repo");
    assert!(!blobs.join(expected).exists());
    assert!(!blobs.join(format!("{expected}.incomplete")).exists());
    assert!(cached_hub_file(
        &HubFile::new("org", "repo", "model.gguf", "main").unwrap(),
        &cache.path().join("hub")
    )
    .is_none());
}

#[test]
fn a_sha256_contradicting_the_hub_fails_before_any_transfer() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &[]);
    let cache = tempfile::tempdir().unwrap();
    let error = fetch(
        &hub(MODEL),
        &options(&mock, cache.path()).with_sha256("1".repeat(64)),
    )
    .unwrap_err();
    assert!(
        matches!(error, DownloadError::ChecksumMismatch { .. }),
        "{error:?}"
    );
    assert!(mock.body_ranges().is_empty());
    let bad = options(&mock, cache.path()).with_sha256("not hex");
    assert!(matches!(
        fetch(&hub(MODEL), &bad),
        Err(DownloadError::InvalidConfiguration { .. })
    ));
}

#[test]
fn files_stored_in_git_are_named_by_their_etag() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &[]);
    let cache = tempfile::tempdir().unwrap();
    let path = fetch(&hub("org/repo/config.json"), &options(&mock, cache.path())).unwrap();
    assert_eq!(sha256_file(&path), repos.sha("org/repo/config.json"));
    let target = std::fs::read_link(&path).unwrap();
    let blob = target.file_name().unwrap().to_str().unwrap();
    assert_eq!(blob.len(), 40, "the git blob hash: {blob}");
}

// ---------------------------------------------------------------------------------------------
// Status codes, tokens, redirects

#[test]
fn missing_repositories_revisions_and_files_are_not_found() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &[]);
    let cache = tempfile::tempdir().unwrap();
    let o = options(&mock, cache.path());
    for (source, part) in [
        ("org/repo/missing.gguf", "(the file)"),
        ("org/nothing/model.gguf", "(the repository)"),
        ("org/repo/model.gguf@v9", "(the revision)"),
    ] {
        match fetch(&hub(source), &o) {
            Err(DownloadError::NotFound { what, url }) => {
                assert!(what.contains(part), "{source}: {what}");
                assert!(url.starts_with(&mock.endpoint()), "{url}");
            }
            other => panic!("{source}: expected NotFound, got {other:?}"),
        }
    }
    let url = Source::parse(&format!(
        "{}/lfs-objects/{}",
        mock.endpoint(),
        "0".repeat(64)
    ))
    .unwrap();
    let error = fetch_to_dir(&url, cache.path(), &o).unwrap_err();
    assert!(matches!(error, DownloadError::NotFound { .. }), "{error:?}");
    // Through the crate's error type.
    let error = gguf_loader::Error::from(error);
    assert_eq!(error.category(), Category::Model);
    assert!(!error.hint().is_empty());
}

#[test]
fn a_token_is_needed_and_sent_to_the_hub_only() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &["--token", "secret-token"]);
    let cache = tempfile::tempdir().unwrap();
    let error = fetch(&hub(MODEL), &options(&mock, cache.path())).unwrap_err();
    assert!(
        matches!(error, DownloadError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    assert!(error.hint().contains("HF_TOKEN"));
    assert_eq!(error.category(), Category::Configuration);

    // HF_TOKEN as the environment would give it (through from_vars: no variable is changed).
    let endpoint = mock.endpoint();
    let hub_cache = cache.path().join("hub").to_string_lossy().into_owned();
    let from_env = DownloadOptions::from_vars(|name| match name {
        "HF_ENDPOINT" => Some(endpoint.clone()),
        "HF_HUB_CACHE" => Some(hub_cache.clone()),
        "HF_TOKEN" => Some("secret-token".into()),
        _ => None,
    })
    .with_backoff(Duration::from_millis(20));
    let path = fetch(&hub(MODEL), &from_env).unwrap();
    assert_eq!(sha256_file(&path), repos.sha(MODEL));
    let log = mock.log();
    let sent = |server: &str| {
        log.iter()
            .filter(|r| r["server"] == server)
            .map(|r| r["authorization"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sent("hub"),
        [None, Some("Bearer secret-token".into())],
        "the hub gets the token"
    );
    assert_eq!(
        sent("cdn"),
        [None],
        "the storage host (another origin) never does"
    );
}

#[test]
fn a_redirect_to_another_path_is_followed() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &["--rename", "old/name=org/repo"]);
    let cache = tempfile::tempdir().unwrap();
    let path = fetch(&hub("old/name/model.gguf"), &options(&mock, cache.path())).unwrap();
    assert_eq!(sha256_file(&path), repos.sha(MODEL));
    assert!(path.starts_with(cache.path().join("hub/models--old--name")));
    let heads: Vec<String> = mock
        .log()
        .iter()
        .filter(|r| r["method"] == "HEAD")
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        heads,
        [
            "/old/name/resolve/main/model.gguf",
            "/org/repo/resolve/main/model.gguf"
        ]
    );
    // A plain URL that redirects is followed as well.
    let url = Source::parse(&format!(
        "{}/old/name/resolve/main/model.gguf",
        mock.endpoint()
    ))
    .unwrap();
    let path = fetch_to_dir(
        &url,
        &cache.path().join("plain"),
        &options(&mock, cache.path()),
    )
    .unwrap();
    assert_eq!(sha256_file(&path), repos.sha(MODEL));
}

// ---------------------------------------------------------------------------------------------
// Cancellation, split models, offline mode

#[test]
fn a_cancelled_download_keeps_its_partial_file_for_later() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &["--throttle-ms", "20"]);
    let cache = tempfile::tempdir().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let o = options(&mock, cache.path())
        .with_cancel(cancel)
        .with_progress(move |p| {
            if p.downloaded >= 32 * 1024 {
                flag.store(true, Ordering::Relaxed);
            }
        });
    let error = fetch(&hub(MODEL), &o).unwrap_err();
    assert!(
        matches!(error, DownloadError::Cancelled { .. }),
        "{error:?}"
    );
    let sha = repos.sha(MODEL);
    let partial = blob_dir(cache.path(), "org/repo").join(format!("{sha}.incomplete"));
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept > 0 && kept < MODEL_SIZE as u64, "kept {kept} bytes");
    let path = fetch(&hub(MODEL), &options(&mock, cache.path())).unwrap();
    assert_eq!(sha256_file(&path), sha);
    assert_eq!(mock.body_ranges(), [None, Some(format!("bytes={kept}-"))]);
}

#[test]
fn every_part_of_a_split_model_is_fetched() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &[]);
    let cache = tempfile::tempdir().unwrap();
    let o = options(&mock, cache.path());
    // Naming the second part fetches all three and answers the first.
    let first = fetch(&hub("org/split/m-00002-of-00003.gguf"), &o).unwrap();
    assert_eq!(first.file_name().unwrap(), "m-00001-of-00003.gguf");
    for index in 1..=3 {
        let name = format!("m-0000{index}-of-00003.gguf");
        let part = first.with_file_name(&name);
        assert_eq!(sha256_file(&part), repos.sha(&format!("org/split/{name}")));
    }
    // The same into a directory, from a plain URL.
    let url = Source::parse(&format!(
        "{}/org/split/resolve/main/m-00001-of-00003.gguf",
        mock.endpoint()
    ))
    .unwrap();
    let dir = cache.path().join("plain");
    let first = fetch_to_dir(&url, &dir, &o).unwrap();
    assert_eq!(first, dir.join("m-00001-of-00003.gguf"));
    for index in 1..=3 {
        let name = format!("m-0000{index}-of-00003.gguf");
        assert_eq!(
            sha256_file(&dir.join(&name)),
            repos.sha(&format!("org/split/{name}"))
        );
    }
    // Offline, the cached parts are found.
    let offline = options(&mock, cache.path()).with_offline(true);
    let again = fetch(&hub("org/split/m-00001-of-00003.gguf"), &offline).unwrap();
    assert_eq!(again.file_name().unwrap(), "m-00001-of-00003.gguf");
}

#[test]
fn offline_mode_uses_the_cache_and_names_what_is_missing() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &[]);
    let cache = tempfile::tempdir().unwrap();
    let online = fetch(&hub(MODEL), &options(&mock, cache.path())).unwrap();
    let commit = online
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    drop(mock);
    // No server at all now: the offline flag must keep every request away.
    let hub_cache = cache.path().join("hub").to_string_lossy().into_owned();
    let offline = DownloadOptions::from_vars(|name| match name {
        "HF_HUB_CACHE" => Some(hub_cache.clone()),
        "GGUF_LOADER_OFFLINE" => Some("1".into()),
        "HF_ENDPOINT" => Some("http://127.0.0.1:9".into()),
        _ => None,
    });
    assert!(offline.offline);
    assert_eq!(fetch(&hub(MODEL), &offline).unwrap(), online);
    assert_eq!(
        fetch(&hub(&format!("{MODEL}@{commit}")), &offline).unwrap(),
        online
    );
    match fetch(&hub("org/repo/other.gguf@v2"), &offline) {
        Err(error @ DownloadError::Offline { .. }) => {
            let DownloadError::Offline {
                ref repo,
                ref file,
                ref revision,
                ..
            } = error
            else {
                unreachable!()
            };
            assert_eq!(
                (repo.as_str(), file.as_str(), revision.as_str()),
                ("org/repo", "other.gguf", "v2")
            );
            let message = error.to_string();
            assert!(
                message.contains("org/repo")
                    && message.contains("other.gguf")
                    && message.contains("v2")
            );
        }
        other => panic!("expected Offline, got {other:?}"),
    }
    let url = Source::parse("http://127.0.0.1:9/x/model.gguf").unwrap();
    assert!(matches!(
        fetch_to_dir(&url, cache.path(), &offline),
        Err(DownloadError::OfflineUrl { .. })
    ));
    // HF_HUB_OFFLINE does the same.
    let hf_offline =
        DownloadOptions::from_vars(|name| (name == "HF_HUB_OFFLINE").then(|| "1".into()));
    assert!(hf_offline.offline);
}

// ---------------------------------------------------------------------------------------------
// Sharing the cache with huggingface_hub

fn python_with_hub(mock: &Mock, hf_home: &Path, code: &str, extra_env: &[(&str, &str)]) -> String {
    let output = Command::new(common::python())
        .args(["-c", code])
        .env("HF_ENDPOINT", mock.endpoint())
        .env("HF_HOME", hf_home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .envs(extra_env.iter().copied())
        .output()
        .expect("running python");
    assert!(
        output.status.success(),
        "python failed (is huggingface_hub installed? `variants/provision tiny`):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

#[test]
fn files_huggingface_hub_downloaded_are_found_offline() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &[]);
    let hf_home = tempfile::tempdir().unwrap();
    let theirs = python_with_hub(
        &mock,
        hf_home.path(),
        "from huggingface_hub import hf_hub_download\nprint(hf_hub_download('org/repo', 'sub/nested.gguf'))",
        &[],
    );
    let home = hf_home.path().to_string_lossy().into_owned();
    let offline = DownloadOptions::from_vars(|name| match name {
        "HF_HOME" => Some(home.clone()),
        "HF_HUB_OFFLINE" => Some("1".into()),
        _ => None,
    });
    assert_eq!(offline.hub_cache, hf_home.path().join("hub"));
    let ours = fetch(&hub("org/repo/sub/nested.gguf"), &offline).unwrap();
    assert_eq!(ours, PathBuf::from(theirs));
    assert_eq!(sha256_file(&ours), repos.sha("org/repo/sub/nested.gguf"));
    // Online, the cached file is used as is: one HEAD, no transfer.
    let before = mock.body_ranges().len();
    let online = options(&mock, hf_home.path());
    assert_eq!(
        fetch(&hub("org/repo/sub/nested.gguf"), &online).unwrap(),
        ours
    );
    assert_eq!(mock.body_ranges().len(), before);
}

#[test]
fn files_downloaded_here_are_found_by_huggingface_hub() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &[]);
    let hf_home = tempfile::tempdir().unwrap();
    let ours = fetch(
        &hub("org/repo/sub/nested.gguf"),
        &options(&mock, hf_home.path()),
    )
    .unwrap();
    let cache_dir = hf_home.path().join("hub");
    let found = python_with_hub(
        &mock,
        hf_home.path(),
        &format!(
            "from huggingface_hub import try_to_load_from_cache\nprint(try_to_load_from_cache('org/repo', 'sub/nested.gguf', cache_dir={:?}))",
            cache_dir.to_string_lossy()
        ),
        &[],
    );
    assert_eq!(PathBuf::from(found), ours);
    // hf_hub_download offline and online (the blob is there: no transfer) agree too.
    let code = "from huggingface_hub import hf_hub_download\nprint(hf_hub_download('org/repo', 'sub/nested.gguf'))";
    let offline = python_with_hub(&mock, hf_home.path(), code, &[("HF_HUB_OFFLINE", "1")]);
    assert_eq!(PathBuf::from(offline), ours);
    let before = mock.body_ranges().len();
    let online = python_with_hub(&mock, hf_home.path(), code, &[]);
    assert_eq!(PathBuf::from(online), ours);
    assert_eq!(mock.body_ranges().len(), before);
}

// ---------------------------------------------------------------------------------------------
// Concurrency and the example

#[test]
fn two_threads_fetching_one_file_transfer_it_once() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &["--throttle-ms", "5"]);
    let cache = tempfile::tempdir().unwrap();
    let o = options(&mock, cache.path());
    let paths: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| fetch(&hub(MODEL), &o).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(paths[0], paths[1]);
    assert_eq!(sha256_file(&paths[0]), repos.sha(MODEL));
    assert_eq!(
        mock.body_ranges(),
        [None],
        "the waiting thread uses the finished blob"
    );
    let locks = cache.path().join("hub/.locks/models--org--repo");
    assert_eq!(
        std::fs::read_dir(locks).unwrap().count(),
        0,
        "the lock is removed"
    );
}

/// The `pull` example, built with the `download` feature (once per test run).
fn pull() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile_dir = common::profile_dir();
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .args([
                    "build",
                    "--quiet",
                    "--example",
                    "pull",
                    "--features",
                    "download",
                ])
                .arg("--manifest-path")
                .arg(common::repo_root().join("Cargo.toml"))
                .arg("--target-dir")
                .arg(profile_dir.parent().unwrap());
            match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => {}
                Some("release") => {
                    cargo.arg("--release");
                }
                Some(profile) => {
                    cargo.args(["--profile", profile]);
                }
            }
            let output = cargo.output().expect("running cargo");
            assert!(
                output.status.success(),
                "building the pull example failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            profile_dir
                .join("examples")
                .join(format!("pull{}", std::env::consts::EXE_SUFFIX))
        })
        .clone()
}

fn run_pull(mock: &Mock, hf_home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(pull())
        .args(args)
        .env("HF_ENDPOINT", mock.endpoint())
        .env("HF_HOME", hf_home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("GGUF_LOADER_OFFLINE")
        .output()
        .expect("running pull")
}

#[test]
fn the_pull_example_prints_the_path_last() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &[]);
    let home = tempfile::tempdir().unwrap();
    let sha = repos.sha(MODEL);
    let output = run_pull(
        &mock,
        home.path(),
        &[&format!("hf://{MODEL}"), "--sha256", &sha],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let path = PathBuf::from(stdout.lines().last().unwrap());
    assert!(
        path.starts_with(home.path().join("hub")),
        "{}",
        path.display()
    );
    assert_eq!(sha256_file(&path), sha);
    assert!(
        stderr.contains("model.gguf: "),
        "progress lines on stderr: {stderr}"
    );

    // --to DIR, and failures.
    let dir = home.path().join("to");
    let output = run_pull(
        &mock,
        home.path(),
        &["hf://org/repo/config.json", "--to", dir.to_str().unwrap()],
    );
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().last(),
        Some(dir.join("config.json").to_str().unwrap())
    );
    let output = run_pull(&mock, home.path(), &["hf://org/repo/missing.gguf"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("error: "));
    for args in [&[][..], &["hf://too/short"], &["x", "--bogus"]] {
        assert_eq!(
            run_pull(&mock, home.path(), args).status.code(),
            Some(2),
            "{args:?}"
        );
    }
    assert_eq!(
        run_pull(&mock, home.path(), &["--help"]).status.code(),
        Some(0)
    );
}

#[test]
fn two_processes_pulling_one_url_do_not_corrupt_it() {
    let repos = Repos::new();
    let mock = Mock::start(repos.path(), &["--throttle-ms", "2"]);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("to");
    let url = format!("{}/org/repo/resolve/main/model.gguf", mock.endpoint());
    let binary = pull();
    let children: Vec<Child> = (0..2)
        .map(|_| {
            Command::new(&binary)
                .args([url.as_str(), "--to", dir.to_str().unwrap()])
                .env("HF_ENDPOINT", mock.endpoint())
                .env("HF_HOME", home.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).lines().last(),
            Some(dir.join("model.gguf").to_str().unwrap())
        );
    }
    assert_eq!(sha256_file(&dir.join("model.gguf")), repos.sha(MODEL));
    assert_eq!(
        mock.body_ranges(),
        [None],
        "one transfer; the other process waited"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name != "model.gguf")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---------------------------------------------------------------------------------------------
// A real model, end to end

#[test]
fn a_fetched_model_loads() {
    use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
    use gguf_loader::{Model, ModelParams};

    let repos = Repos::new();
    let tiny = common::tiny_llama();
    let served = repos.path().join("org/tiny/tiny-llama.gguf");
    std::fs::create_dir_all(served.parent().unwrap()).unwrap();
    std::fs::copy(&tiny, &served).unwrap();
    let mock = Mock::start(repos.path(), &["--cut-after", "4096", "--cut-count", "1"]);
    let cache = tempfile::tempdir().unwrap();
    let path = fetch(
        &hub("org/tiny/tiny-llama.gguf"),
        &options(&mock, cache.path()),
    )
    .unwrap();
    assert_eq!(sha256_file(&path), sha256_file(&tiny));
    let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
    let library =
        LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant");
    let model = Model::load(&library, &path, ModelParams::new()).expect("load the fetched model");
    assert!(model.n_vocab() > 0);
}
