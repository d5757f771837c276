//! The parent side: [`WorkerModel`].

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command as Process, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::protocol::{category_from_name, Command, Event, WorkerInfo, WorkerRequest, WorkerSpec};
use super::{is_worker, WORKER_ENV};
use crate::error::{Error, Result};
use crate::generate::{Piece, Summary};
use crate::{Category, Token};

/// Lines of the worker's stderr kept for error reports.
const STDERR_LINES: usize = 40;

/// How to start a worker.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerOptions {
    /// What the worker loads.
    pub spec: WorkerSpec,
    /// The program (it must call [`super::run_if_requested`] first thing in `main`); `None`:
    /// the current executable.
    pub program: Option<PathBuf>,
    /// Its arguments (the worker ignores them; a test harness may need some).
    pub args: Vec<OsString>,
    /// Extra environment variables for it.
    pub env: Vec<(OsString, OsString)>,
    /// A worker that sends no event for this long while it is expected to is killed
    /// ([`Error::WorkerStalled`]). Default 30 s; a single event can take long for a long
    /// prompt on a slow device.
    pub stall_timeout: Duration,
    /// How long loading may take (until the worker reports it is ready). Default 600 s.
    pub load_timeout: Duration,
    /// Let ggml print a backtrace when the worker aborts (it may attach a debugger, which
    /// takes seconds). Default `false` (`GGML_NO_BACKTRACE=1`).
    pub backtraces: bool,
}

impl WorkerOptions {
    /// The current executable as the worker, loading `spec`.
    pub fn new(spec: WorkerSpec) -> Self {
        WorkerOptions {
            spec,
            program: None,
            args: Vec::new(),
            env: Vec::new(),
            stall_timeout: Duration::from_secs(30),
            load_timeout: Duration::from_secs(600),
            backtraces: false,
        }
    }

    /// Sets the stall timeout.
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Sets the load timeout.
    pub fn with_load_timeout(mut self, timeout: Duration) -> Self {
        self.load_timeout = timeout;
        self
    }

    /// Sets the program and its arguments.
    pub fn with_program(mut self, program: impl Into<PathBuf>, args: Vec<OsString>) -> Self {
        self.program = Some(program.into());
        self.args = args;
        self
    }
}

/// What the reader thread passes on.
enum Incoming {
    Event(Event),
    /// The worker's stdout ended (it exited, or closed it).
    End,
}

/// How the worker ended, kept for later calls.
#[derive(Debug, Clone)]
struct Ended {
    stalled: Option<Duration>,
    status: String,
    stderr_tail: String,
}

impl Ended {
    fn error(&self) -> Error {
        match self.stalled {
            Some(waited) => Error::WorkerStalled {
                waited,
                stderr_tail: self.stderr_tail.clone(),
            },
            None => Error::WorkerDied {
                status: self.status.clone(),
                stderr_tail: self.stderr_tail.clone(),
            },
        }
    }
}

/// Forwards cancellation to a worker's running generation from any thread.
#[derive(Debug, Clone)]
pub struct WorkerCancel {
    stdin: Arc<Mutex<Option<ChildStdin>>>,
}

impl WorkerCancel {
    /// Asks the worker to stop the running generation (it ends with
    /// [`crate::StopReason::Cancelled`]); nothing happens when none runs.
    pub fn cancel(&self) {
        let _ = send(&self.stdin, &Command::Cancel);
    }
}

fn send(stdin: &Mutex<Option<ChildStdin>>, command: &Command) -> std::io::Result<()> {
    let mut line = serde_json::to_string(command).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut guard = stdin.lock().unwrap_or_else(|p| p.into_inner());
    let pipe = guard
        .as_mut()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin closed"))?;
    pipe.write_all(line.as_bytes())?;
    pipe.flush()
}

/// A model loaded in a worker process.
///
/// ```no_run
/// use gguf_loader::worker::{WorkerModel, WorkerOptions, WorkerRequest, WorkerSpec};
/// # fn demo() -> gguf_loader::Result<()> {
/// // main() calls gguf_loader::worker::run_if_requested() first.
/// let mut spec = WorkerSpec::new("model.gguf");
/// spec.rpc_servers = vec!["127.0.0.1:50052".parse()?];
/// spec.gpu_layers = gguf_loader::GpuLayers::All;
/// let mut worker = WorkerModel::spawn(WorkerOptions::new(spec))?;
/// for piece in worker.generate(WorkerRequest::greedy("Once upon a time", 32))? {
///     print!("{}", piece?.text); // a lost server is an Err here, not an abort
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WorkerModel {
    child: Child,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    events: Receiver<Incoming>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_done: Receiver<()>,
    info: WorkerInfo,
    stall_timeout: Duration,
    ended: Option<Ended>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Incoming::Event(e) => write!(f, "{e:?}"),
            Incoming::End => f.write_str("End"),
        }
    }
}

fn worker_error(category: Category, message: impl Into<String>) -> Error {
    Error::Worker {
        category,
        message: message.into(),
    }
}

impl WorkerModel {
    /// Starts the worker and waits until it has loaded the model.
    ///
    /// The spec's RPC endpoints were parsed when it was built; the worker probes the servers
    /// from Rust before its llama.cpp sees them, so an unreachable server, another protocol
    /// or a malformed endpoint come back as the worker's typed error ([`Error::Worker`] with
    /// the original category and message).
    ///
    /// # Errors
    /// [`Error::Worker`] when the program cannot be started, when called inside a worker, or
    /// with the worker's own error (model or variant not loadable, an RPC server refused);
    /// [`Error::WorkerDied`] / [`Error::WorkerStalled`] when it died or hung while loading.
    pub fn spawn(options: WorkerOptions) -> Result<Self> {
        if is_worker() {
            return Err(worker_error(
                Category::Configuration,
                "a worker process starts no worker of its own",
            ));
        }
        let program = match &options.program {
            Some(program) => program.clone(),
            None => std::env::current_exe().map_err(|e| {
                worker_error(
                    Category::Installation,
                    format!("cannot find the current executable: {e}"),
                )
            })?,
        };
        let mut process = Process::new(&program);
        process
            .args(&options.args)
            .env(WORKER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !options.backtraces && std::env::var_os("GGML_NO_BACKTRACE").is_none() {
            process.env("GGML_NO_BACKTRACE", "1");
        }
        for (key, value) in &options.env {
            process.env(key, value);
        }
        let mut child = process.spawn().map_err(|e| {
            worker_error(
                Category::Installation,
                format!("cannot start the worker {}: {e}", program.display()),
            )
        })?;
        let stdout = child.stdout.take();
        let stderr_pipe = child.stderr.take();
        let stdin = Arc::new(Mutex::new(child.stdin.take()));
        let (events_tx, events) = mpsc::channel();
        if let Some(stdout) = stdout {
            std::thread::spawn(move || read_events(stdout, events_tx));
        }
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (done_tx, stderr_done) = mpsc::channel();
        if let Some(pipe) = stderr_pipe {
            let tail = Arc::clone(&stderr);
            std::thread::spawn(move || {
                read_stderr(pipe, &tail);
                let _ = done_tx.send(());
            });
        }
        let mut worker = WorkerModel {
            child,
            stdin,
            events,
            stderr,
            stderr_done,
            info: WorkerInfo {
                variant: String::new(),
                directory: PathBuf::new(),
                llama_version: String::new(),
                devices: Vec::new(),
                n_layer: 0,
                n_ctx: 0,
                pid: 0,
            },
            stall_timeout: options.stall_timeout,
            ended: None,
        };
        worker.info.pid = worker.child.id();
        worker.send(&Command::Load {
            spec: options.spec.clone(),
        })?;
        match worker.next_event(options.load_timeout)? {
            Event::Ready { info } => {
                worker.info = WorkerInfo {
                    pid: worker.child.id(),
                    ..info
                };
                log::debug!(
                    "worker {} ready: variant {}, {} devices",
                    worker.info.pid,
                    worker.info.variant,
                    worker.info.devices.len()
                );
                Ok(worker)
            }
            Event::Error { category, message } => {
                worker.shut_down();
                Err(worker_error(category_from_name(&category), message))
            }
            other => {
                worker.shut_down();
                Err(worker_error(
                    Category::Installation,
                    format!("unexpected worker event while loading: {other:?}"),
                ))
            }
        }
    }

    /// What the worker loaded (variant, devices with their layers, context size, pid).
    pub fn info(&self) -> &WorkerInfo {
        &self.info
    }

    /// A handle that cancels the running generation from any thread.
    pub fn cancel_handle(&self) -> WorkerCancel {
        WorkerCancel {
            stdin: Arc::clone(&self.stdin),
        }
    }

    /// Starts a generation: an iterator of pieces, each waited for with the stall watchdog.
    /// Dropping it before the end cancels the generation and waits for the worker to finish
    /// it.
    ///
    /// # Errors
    /// [`Error::WorkerDied`] / [`Error::WorkerStalled`] when the worker has ended (now or
    /// before).
    pub fn generate(&mut self, request: WorkerRequest) -> Result<WorkerGeneration<'_>> {
        self.send(&Command::Generate { request })?;
        Ok(WorkerGeneration {
            worker: self,
            done: false,
            summary: None,
        })
    }

    /// Asks the worker to exit and waits for it (at most 5 s, then it is killed).
    pub fn shutdown(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let _ = send(&self.stdin, &Command::Shutdown);
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    fn send(&mut self, command: &Command) -> Result<()> {
        if let Some(ended) = &self.ended {
            return Err(ended.error());
        }
        if send(&self.stdin, command).is_err() {
            // The worker is gone: report how it ended.
            return Err(self.died());
        }
        Ok(())
    }

    /// The next event other than a log record, waiting at most `timeout` between events.
    fn next_event(&mut self, timeout: Duration) -> Result<Event> {
        if let Some(ended) = &self.ended {
            return Err(ended.error());
        }
        loop {
            match self.events.recv_timeout(timeout) {
                Ok(Incoming::Event(Event::Log {
                    level,
                    target,
                    message,
                })) => {
                    let level = level.parse().unwrap_or(log::Level::Info);
                    log::log!(target: &target, level, "{message}");
                }
                Ok(Incoming::Event(event)) => return Ok(event),
                Ok(Incoming::End) | Err(RecvTimeoutError::Disconnected) => return Err(self.died()),
                Err(RecvTimeoutError::Timeout) => return Err(self.stalled(timeout)),
            }
        }
    }

    /// The worker's output ended: waits for its exit (killing it after 5 s) and reports it.
    fn died(&mut self) -> Error {
        if let Some(ended) = &self.ended {
            return ended.error();
        }
        let status = wait_or_kill(&mut self.child, Duration::from_secs(5));
        let ended = Ended {
            stalled: None,
            status: describe_status(status),
            stderr_tail: self.stderr_tail(),
        };
        log::debug!("worker {} died: {}", self.info.pid, ended.status);
        let error = ended.error();
        self.ended = Some(ended);
        error
    }

    /// No event for `waited`: kills the worker and reports it.
    fn stalled(&mut self, waited: Duration) -> Error {
        let _ = self.child.kill();
        let status = wait_or_kill(&mut self.child, Duration::from_secs(5));
        let ended = Ended {
            stalled: Some(waited),
            status: describe_status(status),
            stderr_tail: self.stderr_tail(),
        };
        log::debug!("worker {} stalled for {waited:?}: killed", self.info.pid);
        let error = ended.error();
        self.ended = Some(ended);
        error
    }

    /// The end of the worker's stderr (waits up to 1 s for it to be read to its end).
    fn stderr_tail(&self) -> String {
        let _ = self.stderr_done.recv_timeout(Duration::from_secs(1));
        let lines = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for WorkerModel {
    fn drop(&mut self) {
        if self.ended.is_none() {
            self.shut_down();
        } else {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_or_kill(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Err(_) => return None,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                return child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// `exit status 1`, `killed by signal 6 (SIGABRT)`.
fn describe_status(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "exit status unknown".into();
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                4 => " (SIGILL)",
                6 => " (SIGABRT)",
                7 => " (SIGBUS)",
                8 => " (SIGFPE)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            let core = if status.core_dumped() {
                ", core dumped"
            } else {
                ""
            };
            return format!("killed by signal {signal}{name}{core}");
        }
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => status.to_string(),
    }
}

/// Reads events line by line. Text before an event on the same line (something in the
/// worker that wrote to stdout without a newline) is skipped; other lines are logged.
fn read_events(stdout: impl Read, events: mpsc::Sender<Incoming>) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let parsed = text
            .find("{\"event\":")
            .and_then(|start| serde_json::from_str::<Event>(text[start..].trim()).ok());
        match parsed {
            Some(event) => {
                if events.send(Incoming::Event(event)).is_err() {
                    return;
                }
            }
            None => {
                log::debug!(target: "gguf_loader::worker", "worker stdout: {}", text.trim_end())
            }
        }
    }
    let _ = events.send(Incoming::End);
}

fn read_stderr(stderr: impl Read, tail: &Mutex<VecDeque<String>>) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        log::debug!(target: "gguf_loader::worker", "worker stderr: {text}");
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        if tail.len() == STDERR_LINES {
            tail.pop_front();
        }
        tail.push_back(text);
    }
}

/// A running generation in a worker: an iterator of pieces (see [`WorkerModel::generate`]).
#[derive(Debug)]
pub struct WorkerGeneration<'a> {
    worker: &'a mut WorkerModel,
    done: bool,
    summary: Option<Summary>,
}

impl WorkerGeneration<'_> {
    /// The summary, once the iterator has returned `None`.
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    /// Asks the worker to stop (the generation then ends with `StopReason::Cancelled`).
    pub fn cancel(&self) {
        self.worker.cancel_handle().cancel();
    }
}

impl Iterator for WorkerGeneration<'_> {
    type Item = Result<Piece>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let timeout = self.worker.stall_timeout;
        match self.worker.next_event(timeout) {
            Ok(Event::Piece { token, text }) => Some(Ok(Piece {
                token: token.map(Token),
                text,
            })),
            Ok(Event::Done { summary }) => {
                self.summary = Some(summary.into());
                self.done = true;
                None
            }
            Ok(Event::Error { category, message }) => {
                self.done = true;
                Some(Err(worker_error(category_from_name(&category), message)))
            }
            Ok(other) => {
                self.done = true;
                Some(Err(worker_error(
                    Category::Installation,
                    format!("unexpected worker event during generation: {other:?}"),
                )))
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

impl Drop for WorkerGeneration<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Keep the worker in step: cancel, and read what it still sends up to the end.
        self.cancel();
        while self.next().is_some() {}
    }
}
