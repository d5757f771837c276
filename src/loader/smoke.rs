//! Smoke-testing a GPU variant in a child process, so that a crashing driver takes down the child
//! and not the application.
//!
//! The child is a program that calls [`run_if_requested`] first thing in `main` (the crate's
//! examples do): when the environment asks for a smoke test it loads the variant, checks for a
//! device of the wanted backend, and exits; otherwise it returns and `main` goes on.
//!
//! A child never spawns a child of its own. A program that forgot `run_if_requested` runs its
//! normal `main` in the child, but the first selection it makes
//! ([`crate::loader::load_best`], [`crate::loader::load_best_with`], and so
//! `Model::load_best`) answers the smoke test in process and exits instead of selecting; and
//! [`SmokeTest::run`] refuses to start a child from inside a child.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::loader::discovery::VariantDirectory;
use crate::loader::library::{LlamaLibrary, PluginSelection};
use crate::loader::variant::Backend;

/// Environment variable naming the variant directory a child must smoke-test.
pub const SMOKE_DIR_ENV: &str = "GGUF_LOADER_SMOKE_DIR";
/// Environment variable naming the backend whose device the child must find.
pub const SMOKE_BACKEND_ENV: &str = "GGUF_LOADER_SMOKE_BACKEND";

/// How to run the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeTest {
    /// The program (it must call [`run_if_requested`] at the start of `main`).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// How long the child may take.
    pub timeout: Duration,
}

impl SmokeTest {
    /// The current executable as the child.
    pub fn current_exe() -> Option<Self> {
        Some(SmokeTest {
            program: std::env::current_exe().ok()?,
            args: Vec::new(),
            timeout: Duration::from_secs(120),
        })
    }

    /// Runs the child for `dir` and `backend`; `Err` says how it failed (exit code, signal,
    /// time-out, its last stderr line). In a smoke-test child ([`requested`]) it starts
    /// nothing and says so: children never spawn children.
    ///
    /// # Errors
    /// The child's failure as text.
    pub fn run(&self, dir: &Path, backend: &str) -> Result<(), String> {
        if requested() {
            return Err(format!(
                "smoke test unavailable: this process is itself a smoke-test child ({SMOKE_DIR_ENV} is set) and starts no child of its own"
            ));
        }
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env(SMOKE_DIR_ENV, dir)
            .env(SMOKE_BACKEND_ENV, backend)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start smoke-test child {}: {e}",
                    self.program.display()
                )
            })?;
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "smoke-test child timed out after {:?}",
                        self.timeout
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("waiting for the smoke-test child: {e}")),
            }
        };
        if status.success() {
            return Ok(());
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            use std::io::Read;
            let _ = pipe.read_to_string(&mut stderr);
        }
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(signal) = status.signal() {
                return Err(
                    format!("smoke-test child was killed by signal {signal} {last}")
                        .trim()
                        .to_string(),
                );
            }
        }
        Err(format!("smoke-test child failed ({status}) {last}")
            .trim()
            .to_string())
    }
}

/// Whether this process is a smoke-test child (the parent set [`SMOKE_DIR_ENV`]).
pub fn requested() -> bool {
    std::env::var_os(SMOKE_DIR_ENV).is_some()
}

/// In a smoke-test child: loads the variant named by the environment, requires a device of the
/// wanted backend and exits the process (0 on success, 1 with a message on stderr otherwise).
/// Elsewhere: returns at once.
///
/// Selection calls it too, so a child whose program forgot to call it still exits at its first
/// selection instead of selecting (and smoke-testing, and spawning) again.
pub fn run_if_requested() {
    let Some(dir) = std::env::var_os(SMOKE_DIR_ENV) else {
        return;
    };
    let backend = std::env::var(SMOKE_BACKEND_ENV).unwrap_or_default();
    let result = VariantDirectory::open(Path::new(&dir))
        .and_then(|d| LlamaLibrary::load(&d, PluginSelection::AllInDirectory))
        .map_err(|e| e.to_string())
        .and_then(|library| {
            let devices = library.devices();
            let wanted = |registry: &str| match Backend::from_name(&backend) {
                Some(known) => known.is_registry(registry),
                None => registry.eq_ignore_ascii_case(&backend),
            };
            if backend.is_empty() || devices.iter().any(|d| wanted(&d.backend)) {
                Ok(())
            } else {
                Err(format!(
                    "no {backend} device among {:?}",
                    devices.iter().map(|d| &d.name).collect::<Vec<_>>()
                ))
            }
        });
    match result {
        Ok(()) => std::process::exit(0),
        Err(message) => {
            eprintln!("smoke test failed: {message}");
            std::process::exit(1)
        }
    }
}
