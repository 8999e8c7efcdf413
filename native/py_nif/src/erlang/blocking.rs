//! Waiting, with the interpreter's GIL released, for state shared with
//! Elixir (channels and buffers), without outliving the running job.
//!
//! A wait ends when the state is ready, at its deadline, or when the job
//! that waits is cancelled (its caller timed out) or its context or runner
//! closes. Those three all go through `Runner::interrupt`, which calls
//! `wake_job`: the waiter registered under the job's id is notified, so a
//! cancelled wait ends at once instead of at its next periodic check.
use crate::io;
use parking_lot::{Condvar, Mutex};
use pyo3::ffi;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// State guarded by a mutex, with a condition variable for its waiters.
pub struct Shared<S> {
    pub state: Mutex<S>,
    cv: Condvar,
}

impl<S> Shared<S> {
    pub fn new(state: S) -> Shared<S> {
        Shared {
            state: Mutex::new(state),
            cv: Condvar::new(),
        }
    }

    /// Wakes every waiter (call after changing the state).
    pub fn notify(&self) {
        self.cv.notify_all();
    }
}

/// What a state does, besides notifying its condition variable, when a
/// waiting job is cancelled (a channel wakes its asyncio waiters).
pub trait OnWake {
    fn on_wake(&mut self) {}
}

trait Wake: Send + Sync {
    fn wake(&self);
}

impl<S: OnWake + Send> Wake for Shared<S> {
    fn wake(&self) {
        // Taken so that a waiter between its check and its wait cannot miss
        // the notification.
        let mut state = self.state.lock();
        state.on_wake();
        self.cv.notify_all();
    }
}

/// The waiting job ids and what they wait on.
static WAITING: Mutex<BTreeMap<u64, Vec<Arc<dyn Wake>>>> = Mutex::new(BTreeMap::new());

fn register(job: u64, waiter: Arc<dyn Wake>) {
    WAITING.lock().entry(job).or_default().push(waiter);
}

fn unregister(job: u64, waiter: &Arc<dyn Wake>) {
    let mut waiting = WAITING.lock();
    if let Some(list) = waiting.get_mut(&job) {
        if let Some(at) = list.iter().position(|w| Arc::ptr_eq(w, waiter)) {
            list.swap_remove(at);
        }
        if list.is_empty() {
            waiting.remove(&job);
        }
    }
}

/// Wakes the waits of `job`, if it is blocked in any (called on cancel and
/// close, after the flag that ends the wait is set).
pub fn wake_job(job: u64) {
    let waiters = WAITING.lock().get(&job).cloned().unwrap_or_default();
    for waiter in waiters {
        waiter.wake();
    }
}

/// Registers an asyncio wait of the running job on `shared`, so that a
/// cancel wakes it (through `OnWake`). Returns the job id to pass to
/// `unwatch` (the wait may end in a later job), or None outside a job.
pub fn watch<S: OnWake + Send + 'static>(shared: &Arc<Shared<S>>) -> Option<u64> {
    let job = io::with_frame(|frame| frame.state.id)?;
    register(job, shared.clone());
    Some(job)
}

/// Ends a `watch` registered under `job`.
pub fn unwatch<S: OnWake + Send + 'static>(shared: &Arc<Shared<S>>, job: u64) {
    unregister(job, &(shared.clone() as Arc<dyn Wake>));
}

/// Why a wait ended without a value.
pub enum Stop {
    /// The job was cancelled or its context closed: raise `erlang.Interrupted`.
    Interrupted,
    TimedOut,
}

/// A re-check interval: a safety net only, every path that ends a wait
/// also notifies it.
const RECHECK: Duration = Duration::from_millis(500);

/// Returns `ready(state)` as soon as it is `Some`. Call attached to the
/// interpreter; the GIL is released while waiting. `ready` runs with the
/// state locked and must not touch Python.
pub fn wait<S: OnWake + Send + 'static, R>(
    shared: &Arc<Shared<S>>,
    deadline: Option<Instant>,
    mut ready: impl FnMut(&mut S) -> Option<R>,
) -> Result<R, Stop> {
    // A stopped job takes nothing: what arrives after its caller gave up is
    // for the next reader.
    let job = io::with_frame(|frame| frame.state.clone());
    // A service's thread runs no job: its stop token ends the wait.
    let token = match job {
        Some(_) => None,
        None => crate::threads::stop_token(),
    };
    let stopped = || {
        token.as_ref().is_some_and(|token| token.is_set())
            || job.as_ref().is_some_and(|job| {
                job.is_cancelled()
                    || !job.ctx.is_open()
                    || job
                        .interrupt_asked
                        .swap(false, std::sync::atomic::Ordering::SeqCst)
            })
    };
    if stopped() {
        return Err(interrupted());
    }
    if let Some(value) = ready(&mut shared.state.lock()) {
        return Ok(value);
    }
    let waiter = shared.clone() as Arc<dyn Wake>;
    let wait_id = job
        .as_ref()
        .map(|job| job.id)
        .or(token.as_ref().map(|t| t.id));
    if let Some(id) = wait_id {
        register(id, waiter.clone());
    }
    // SAFETY: attached on entry (a builtin's contract); nothing below
    // touches Python until the thread state is restored.
    let tstate = unsafe { ffi::PyEval_SaveThread() };
    let result = loop {
        let mut state = shared.state.lock();
        if stopped() {
            break Err(Stop::Interrupted);
        }
        if let Some(value) = ready(&mut state) {
            break Ok(value);
        }
        let until = match deadline {
            Some(deadline) if deadline <= Instant::now() => break Err(Stop::TimedOut),
            Some(deadline) => deadline.min(Instant::now() + RECHECK),
            None => Instant::now() + RECHECK,
        };
        let _ = shared.cv.wait_until(&mut state, until);
    };
    // SAFETY: the thread state saved above, on this thread.
    unsafe { ffi::PyEval_RestoreThread(tstate) };
    if let Some(id) = wait_id {
        unregister(id, &waiter);
    }
    result.map_err(|stop| match stop {
        Stop::Interrupted => interrupted(),
        other => other,
    })
}

/// The wait raises `erlang.Interrupted` itself: an interrupt also sent as
/// an async exception (a service's stop sends both, under the GIL this
/// thread has just taken back) must not strike again in the code that
/// handles this one (an `except` or `finally` block). Attached.
fn interrupted() -> Stop {
    crate::threads::clear_async_exception();
    Stop::Interrupted
}

/// Whether the running job (if any) has been cancelled or its context
/// closed.
pub fn job_stopped() -> bool {
    io::with_frame(|frame| frame.state.is_cancelled() || !frame.state.ctx.is_open())
        .unwrap_or(false)
}
