//! Cancellation: a [`CancelHandle`] any thread can use, and an abort callback.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::Context;

type AbortCallback = Box<dyn Fn() -> bool + Send + Sync>;

pub(crate) struct AbortState {
    cancelled: AtomicBool,
    callback: Mutex<Option<AbortCallback>>,
    panicked: AtomicBool,
    /// Whether the callback told ggml to abort since the last call to `take_aborted`.
    aborted: AtomicBool,
}

impl AbortState {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(AbortState {
            cancelled: AtomicBool::new(false),
            callback: Mutex::new(None),
            panicked: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
        })
    }

    /// Whether the callback panicked since the last call (and clears the flag).
    pub(crate) fn take_panicked(&self) -> bool {
        self.panicked.swap(false, Ordering::Relaxed)
    }

    /// Whether the callback asked ggml to abort since the last call (and clears the flag).
    /// The BitNet fork's decode returns 0 for an aborted computation, so this is how the
    /// crate learns of it there.
    pub(crate) fn take_aborted(&self) -> bool {
        self.aborted.swap(false, Ordering::Relaxed)
    }
}

/// ggml's abort callback: polled during computation; `true` aborts.
pub(crate) unsafe extern "C" fn abort_trampoline(data: *mut c_void) -> bool {
    // SAFETY: `data` is the AbortState that the Context keeps alive (in an Arc) until after
    // llama_free; it is only read here.
    let state = unsafe { &*(data as *const AbortState) };
    let abort = should_abort(state);
    if abort {
        state.aborted.store(true, Ordering::Relaxed);
    }
    abort
}

fn should_abort(state: &AbortState) -> bool {
    if state.cancelled.load(Ordering::Relaxed) {
        return true;
    }
    let Ok(guard) = state.callback.try_lock() else {
        return false;
    };
    match guard.as_ref() {
        None => false,
        Some(callback) => match catch_unwind(AssertUnwindSafe(callback)) {
            Ok(abort) => abort,
            Err(_) => {
                state.panicked.store(true, Ordering::Relaxed);
                true
            }
        },
    }
}

/// Cancels a [`Context`]'s computation from any thread. Cheap to clone.
#[derive(Clone)]
pub struct CancelHandle {
    pub(crate) state: Arc<AbortState>,
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelHandle {
    /// Requests cancellation: a running decode aborts ([`crate::DecodeError::Aborted`]) and a
    /// running generation stops with `StopReason::Cancelled`.
    pub fn cancel(&self) {
        self.state.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.state.cancelled.load(Ordering::Relaxed)
    }
}

impl Context {
    /// A handle that cancels this context's computation from any thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle {
            state: self.abort.clone(),
        }
    }

    /// Whether cancellation was requested (and not reset).
    pub fn is_cancelled(&self) -> bool {
        self.abort.cancelled.load(Ordering::Relaxed)
    }

    /// Clears a previous cancellation.
    pub fn reset_cancellation(&self) {
        self.abort.cancelled.store(false, Ordering::Relaxed);
    }

    /// Sets a callback polled during computation; returning `true` aborts it. A panic inside
    /// it is caught and aborts the computation ([`crate::Error::CallbackPanicked`]).
    #[doc(alias = "llama_set_abort_callback")]
    pub fn set_abort_callback(&mut self, callback: impl Fn() -> bool + Send + Sync + 'static) {
        *self
            .abort
            .callback
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Box::new(callback));
    }
}
