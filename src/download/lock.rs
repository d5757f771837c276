//! A cross-process lock: a `.lock` file created exclusively (`O_EXCL`), holding the owner's pid,
//! host and a unique token. A thread refreshes its modification time while the lock is held, so a
//! lock whose time is old (its owner died without removing it, or hangs) is stale and taken over;
//! on the same host a lock whose process is gone is stale at once.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::{DownloadError, DownloadOptions};

/// How often the owner refreshes the lock's modification time.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A lock not refreshed for this long is stale.
const STALE_AFTER: Duration = Duration::from_secs(60);
/// How often a waiter looks again.
const POLL: Duration = Duration::from_millis(100);

/// A held lock; dropping it stops the heartbeat and removes the file (when it is still ours).
pub(crate) struct FileLock {
    path: PathBuf,
    token: String,
    stop: Option<mpsc::Sender<()>>,
    heartbeat: Option<JoinHandle<()>>,
}

impl FileLock {
    /// Takes the lock at `path`, waiting while another live owner holds it (checking the
    /// cancellation flag of `options`; `url` names the download in errors and logs).
    pub fn acquire(
        path: &Path,
        options: &DownloadOptions,
        url: &str,
    ) -> Result<FileLock, DownloadError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DownloadError::io(parent, e))?;
        }
        let token = unique_token();
        let mut announced = false;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    let content = format!(
                        "pid {}\nhost {}\ntoken {token}\n",
                        std::process::id(),
                        host_name()
                    );
                    file.write_all(content.as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| DownloadError::io(path, e))?;
                    let (stop, heartbeat) = start_heartbeat(file);
                    return Ok(FileLock {
                        path: path.to_path_buf(),
                        token,
                        stop: Some(stop),
                        heartbeat: Some(heartbeat),
                    });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if let Some(reason) = stale(path) {
                        log::warn!("removing the stale lock {} ({reason})", path.display());
                        match std::fs::remove_file(path) {
                            Ok(()) => continue,
                            Err(e) if e.kind() == ErrorKind::NotFound => continue,
                            Err(e) => return Err(DownloadError::io(path, e)),
                        }
                    }
                    if !announced {
                        log::info!(
                            "waiting for another download of {url} (lock {})",
                            path.display()
                        );
                        announced = true;
                    }
                    if options.cancelled() {
                        return Err(DownloadError::Cancelled {
                            url: url.to_string(),
                        });
                    }
                    std::thread::sleep(POLL);
                }
                Err(e) => return Err(DownloadError::io(path, e)),
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(heartbeat) = self.heartbeat.take() {
            let _ = heartbeat.join();
        }
        // Another process may have taken over a lock it judged stale: remove only our own.
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|content| content.contains(&format!("token {}\n", self.token)));
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                log::warn!("cannot remove the lock {}: {e}", self.path.display());
            }
        }
    }
}

/// Refreshes the lock file's modification time every [`HEARTBEAT`] until the sender is dropped.
fn start_heartbeat(file: File) -> (mpsc::Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let heartbeat = std::thread::spawn(move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
            if let Err(e) = file.set_modified(SystemTime::now()) {
                log::warn!("cannot refresh a download lock: {e}");
            }
        }
    });
    (stop, heartbeat)
}

/// Why the lock at `path` is stale, or `None` when its owner looks alive.
fn stale(path: &Path) -> Option<String> {
    let metadata = std::fs::metadata(path).ok()?;
    let age = metadata
        .modified()
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .unwrap_or_default();
    if age > STALE_AFTER {
        return Some(format!("not refreshed for {} s", age.as_secs()));
    }
    let content = std::fs::read_to_string(path).ok()?;
    let field = |name: &str| {
        content
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map(str::to_string)
    };
    let (Some(pid), Some(host)) = (field("pid"), field("host")) else {
        // Being written right now (or not ours): the age decides.
        return None;
    };
    if host == host_name() && process_is_gone(&pid) {
        return Some(format!("its process {pid} is gone"));
    }
    None
}

/// Whether process `pid` of this host has ended (only known where `/proc` exists).
fn process_is_gone(pid: &str) -> bool {
    let proc = Path::new("/proc");
    pid.parse::<u32>().is_ok() && proc.join("self").exists() && !proc.join(pid).exists()
}

fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty() && !name.contains('\n'))
        .unwrap_or_else(|| "unknown".into())
}

fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn excludes_and_takes_over_dead_owners() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let options = DownloadOptions::new();
        let first = FileLock::acquire(&path, &options, "u").unwrap();
        // A second taker waits while the first lives: cancel it to stop waiting.
        let cancel = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let waiting = DownloadOptions::new().with_cancel(cancel);
        assert!(matches!(
            FileLock::acquire(&path, &waiting, "u"),
            Err(DownloadError::Cancelled { .. })
        ));
        drop(first);
        assert!(!path.exists());
        // A lock left by a process that no longer exists is taken over at once.
        std::fs::write(
            &path,
            format!("pid 4294967295\nhost {}\ntoken t\n", host_name()),
        )
        .unwrap();
        let second = FileLock::acquire(&path, &options, "u").unwrap();
        drop(second);
        // So is one that has not been refreshed for long.
        std::fs::write(&path, "pid 1\nhost elsewhere\ntoken t\n").unwrap();
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(5);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        drop(FileLock::acquire(&path, &options, "u").unwrap());
        assert!(!path.exists());
    }
}
