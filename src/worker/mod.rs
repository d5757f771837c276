//! Running a model in a child process, so that what llama.cpp does to its process (an abort
//! when an RPC server is lost, a hang when one stops answering, a crashing driver) happens to
//! the child and becomes a typed error here.
//!
//! The child is the current executable (or any program) that calls [`run_if_requested`] at the
//! start of `main`, as the crate's examples do. [`WorkerModel::spawn`] starts it with
//! [`WORKER_ENV`] set; the child loads the model described by a [`WorkerSpec`] and then serves
//! [`WorkerRequest`]s one at a time over its stdin and stdout:
//!
//! - parent to child, one JSON object per line: `{"op":"load","spec":{...}}` (first),
//!   `{"op":"generate","request":{"prompt":...,"max_tokens":...,"sampling":{"kind":"greedy"},
//!   "stop":[...]}}`, `{"op":"cancel"}`, `{"op":"shutdown"}`;
//! - child to parent: `{"event":"ready","info":{...}}` after loading, then per request
//!   `{"event":"piece","token":ID,"text":"..."}` events and one `{"event":"done",
//!   "summary":{...}}` or `{"event":"error","category":"...","message":"..."}`; also
//!   `{"event":"log",...}` for the child's log records (re-logged here under their target).
//!
//! The parent reads events on a thread and waits for each with a watchdog: no event for
//! [`WorkerOptions::stall_timeout`] (30 s by default) kills the child and is
//! [`Error::WorkerStalled`](crate::Error::WorkerStalled); the child's end of output is
//! [`Error::WorkerDied`](crate::Error::WorkerDied) with its exit status or signal and the end
//! of its stderr. Cancellation is forwarded ([`WorkerGeneration::cancel`],
//! [`WorkerCancel`]). The child exits when its stdin closes, so a dropped `WorkerModel`
//! leaves no process behind.
//!
//! Nothing in the protocol is specific to RPC: the spec names the variant (or a variant
//! directory), so a worker can host another llama.cpp build than the parent's.

mod child;
mod parent;
mod protocol;

pub use parent::{WorkerCancel, WorkerGeneration, WorkerModel, WorkerOptions};
pub use protocol::{Sampling, WorkerDevice, WorkerInfo, WorkerRequest, WorkerSpec};

/// Environment variable that makes a process a worker (set by [`WorkerModel::spawn`]).
pub const WORKER_ENV: &str = "GGUF_LOADER_WORKER";

/// Whether this process is a worker child.
pub fn is_worker() -> bool {
    std::env::var_os(WORKER_ENV).is_some()
}

/// In a worker child: serves the parent over stdin/stdout and exits the process when the
/// parent closes stdin or asks it to shut down (0), or when the model cannot be loaded (1).
/// Elsewhere: returns at once. Call it at the start of `main`, next to
/// [`crate::loader::smoke::run_if_requested`].
pub fn run_if_requested() {
    if !is_worker() {
        return;
    }
    let code = child::serve();
    std::process::exit(code);
}
