//! A context: one dedicated OS thread, its own globals, a job queue.
//!
//! The thread attaches to the interpreter once for its whole life and only
//! detaches while it waits for the next message, so no thread state is
//! created per call. Replies go straight to the caller with
//! `OwnedEnv::send_and_clear` (legal here: this is not a BEAM thread).
use crate::atoms;
use crate::error::{Failure, JobResult};
use crate::io;
use crate::pyptr::PyPtr;
use crate::request;
use crate::runtime::{self, RuntimeMsg};
use parking_lot::{Condvar, Mutex};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustler::env::SavedTerm;
use rustler::{Encoder, LocalPid, OwnedEnv, Resource, ResourceArc};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Worker threads get a large stack (reserved, not committed) so that
/// converting deeply nested values and deep Python recursion stay safe.
pub const STACK_SIZE: usize = 512 << 20;

static NEXT_CONTEXT: AtomicU64 = AtomicU64::new(1);

pub enum Msg {
    Job(Box<Job>),
    Release(PyPtr),
    Wake,
}

/// What the BEAM side and the thread share.
pub struct Shared {
    pub id: u64,
    tx: flume::Sender<Msg>,
    pub closed: AtomicBool,
    /// Id of the job running now; 0 when idle.
    pub current_job: AtomicU64,
    /// Python's ident of the worker thread, for async interrupts.
    pub thread_ident: AtomicU64,
    next_job: AtomicU64,
    exited: Mutex<bool>,
    exited_cv: Condvar,
}

impl Shared {
    /// Queues a decref on this context's thread, or on the runtime thread
    /// once this context has ended.
    pub fn release(&self, ptr: PyPtr) {
        if let Err(flume::SendError(Msg::Release(ptr))) = self.tx.send(Msg::Release(ptr)) {
            if let Some(rt) = runtime::get() {
                rt.send(RuntimeMsg::Release(ptr));
            }
        }
    }

    /// Stops accepting jobs, interrupts the running one and lets the thread
    /// end. Idempotent.
    pub fn close(self: &Arc<Self>) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.tx.send(Msg::Wake);
        let job = self.current_job.load(Ordering::Acquire);
        if job != 0 {
            if let Some(rt) = runtime::get() {
                rt.send(RuntimeMsg::Interrupt {
                    ctx: self.clone(),
                    job,
                });
            }
        }
    }

    /// Waits until the thread has ended; false on timeout.
    pub fn wait_exited(&self, timeout: Duration) -> bool {
        let mut exited = self.exited.lock();
        if !*exited {
            let _ = self.exited_cv.wait_for(&mut exited, timeout);
        }
        *exited
    }

    pub fn submit(&self, job: Job) -> Result<(), ()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(());
        }
        self.tx.send(Msg::Job(Box::new(job))).map_err(|_| ())
    }

    pub fn next_job_id(&self) -> u64 {
        self.next_job.fetch_add(1, Ordering::Relaxed)
    }
}

/// The native context as Elixir holds it. It watches its owner (the
/// `Py.Context` process): when the owner dies, the context closes.
pub struct ContextRes {
    pub shared: Arc<Shared>,
}

#[rustler::resource_impl]
impl Resource for ContextRes {
    fn down<'a>(&'a self, _env: rustler::Env<'a>, _pid: LocalPid, _mon: rustler::Monitor) {
        self.shared.close();
    }
}

impl Drop for ContextRes {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// A process's namespace on one context (its globals dict, made on first
/// use by the context's thread).
pub struct NamespaceRes {
    pub owner: Arc<Shared>,
    pub dict: Mutex<Option<PyPtr>>,
}

#[rustler::resource_impl]
impl Resource for NamespaceRes {}

impl Drop for NamespaceRes {
    fn drop(&mut self) {
        if let Some(ptr) = self.dict.get_mut().take() {
            self.owner.release(ptr);
        }
    }
}

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;
const CANCELLED: u8 = 3;

/// Lets the caller cancel a job after a timeout and learn whether its reply
/// was already sent.
pub struct JobState {
    status: AtomicU8,
    pub id: u64,
    pub ctx: Arc<Shared>,
}

pub struct JobRes(pub Arc<JobState>);

#[rustler::resource_impl]
impl Resource for JobRes {}

pub enum Cancel {
    /// The job had not started and never will: safe to retry elsewhere.
    Dequeued,
    /// The job was running and is being interrupted; no reply will come.
    Cancelled,
    /// The reply is (or is about to be) in the caller's mailbox.
    AlreadySent,
}

impl JobState {
    pub fn new(ctx: Arc<Shared>) -> Arc<JobState> {
        let id = ctx.next_job_id();
        Arc::new(JobState {
            status: AtomicU8::new(QUEUED),
            id,
            ctx,
        })
    }

    fn transition(&self, from: u8, to: u8) -> bool {
        self.status
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub fn cancel(&self) -> Cancel {
        if self.transition(QUEUED, CANCELLED) {
            return Cancel::Dequeued;
        }
        if self.transition(RUNNING, CANCELLED) {
            if let Some(rt) = runtime::get() {
                rt.send(RuntimeMsg::Interrupt {
                    ctx: self.ctx.clone(),
                    job: self.id,
                });
            }
            return Cancel::Cancelled;
        }
        match self.status.load(Ordering::Acquire) {
            DONE => Cancel::AlreadySent,
            _ => Cancel::Cancelled,
        }
    }
}

pub struct Job {
    pub state: Arc<JobState>,
    pub env: OwnedEnv,
    pub caller: LocalPid,
    pub group_leader: LocalPid,
    pub reply_ref: SavedTerm,
    pub request: SavedTerm,
    pub namespace: Option<ResourceArc<NamespaceRes>>,
}

/// Starts a context thread.
pub fn spawn() -> Result<Arc<Shared>, String> {
    let (tx, rx) = flume::unbounded();
    let shared = Arc::new(Shared {
        id: NEXT_CONTEXT.fetch_add(1, Ordering::Relaxed),
        tx,
        closed: AtomicBool::new(false),
        current_job: AtomicU64::new(0),
        thread_ident: AtomicU64::new(0),
        next_job: AtomicU64::new(1),
        exited: Mutex::new(false),
        exited_cv: Condvar::new(),
    });
    let thread_shared = shared.clone();
    std::thread::Builder::new()
        .name(format!("py-ctx-{}", shared.id))
        .stack_size(STACK_SIZE)
        .spawn(move || {
            let done = thread_shared.clone();
            let _ = catch_unwind(AssertUnwindSafe(|| run(thread_shared, rx)));
            *done.exited.lock() = true;
            done.exited_cv.notify_all();
        })
        .map_err(|e| format!("cannot spawn a context thread: {e}"))?;
    Ok(shared)
}

fn run(shared: Arc<Shared>, rx: flume::Receiver<Msg>) {
    Python::attach(|py| {
        // SAFETY: attached; returns this thread's ident.
        let ident = unsafe { ffi::PyThread_get_thread_ident() };
        shared.thread_ident.store(ident as u64, Ordering::Release);
        let globals = match new_namespace(py) {
            Ok(g) => g,
            Err(_) => return,
        };
        let mut cache = request::CodeCache::new();
        while !shared.closed.load(Ordering::Acquire) {
            let msg = match py.detach(|| next_message(&rx)) {
                Ok(msg) => msg,
                Err(_) => break,
            };
            match msg {
                Msg::Release(ptr) => ptr.release(py),
                Msg::Wake => {}
                Msg::Job(job) => {
                    if !shared.closed.load(Ordering::Acquire) {
                        run_job(py, &shared, &globals, &mut cache, *job);
                    }
                }
            }
        }
        // Closed: drop queued jobs (their callers see the owner's exit) and
        // release what was queued for release.
        while let Ok(msg) = rx.try_recv() {
            if let Msg::Release(ptr) = msg {
                ptr.release(py);
            }
        }
    });
}

/// How long an idle worker polls its queue before it sleeps. Calls that
/// arrive back to back then skip a futex wake-up, which dominates the cost
/// of a short call.
const SPIN: Duration = Duration::from_micros(50);

fn next_message(rx: &flume::Receiver<Msg>) -> Result<Msg, flume::RecvError> {
    let start = std::time::Instant::now();
    loop {
        for _ in 0..64 {
            match rx.try_recv() {
                Ok(msg) => return Ok(msg),
                Err(flume::TryRecvError::Disconnected) => {
                    return Err(flume::RecvError::Disconnected)
                }
                Err(flume::TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
        if start.elapsed() >= SPIN {
            return rx.recv();
        }
    }
}

pub fn new_namespace(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("__builtins__", py.import("builtins")?)?;
    dict.set_item("__name__", "__main__")?;
    Ok(dict)
}

fn run_job<'py>(
    py: Python<'py>,
    shared: &Arc<Shared>,
    globals: &Bound<'py, PyDict>,
    cache: &mut request::CodeCache<'py>,
    mut job: Job,
) {
    if !job.state.transition(QUEUED, RUNNING) {
        return;
    }
    shared.current_job.store(job.state.id, Ordering::Release);
    io::begin(
        job.caller,
        job.group_leader,
        &job.env,
        job.reply_ref.clone(),
    );
    let reply = catch_unwind(AssertUnwindSafe(|| {
        job.env.run(|env| {
            let request = job.request.load(env);
            let result = namespace_dict(py, job.namespace.as_deref(), globals)
                .and_then(|ns| request::execute(py, env, shared, &ns, cache, request));
            let result = match result {
                Ok(term) => (atoms::ok(), term).encode(env),
                // A job that failed because its context is closing was
                // (almost certainly) interrupted by the close.
                Err(_) if shared.closed.load(Ordering::Acquire) => closed_error(env),
                Err(f) => f.encode(py, env),
            };
            job.env.save(result)
        })
    }));
    let io_requests = io::end();
    // Under the GIL: the job is over, and an interrupt that was not
    // delivered must not reach the next one.
    shared.current_job.store(0, Ordering::Release);
    // SAFETY: attached; clears this thread's pending async exception.
    unsafe {
        ffi::PyThreadState_SetAsyncExc(
            shared.thread_ident.load(Ordering::Acquire) as _,
            std::ptr::null_mut(),
        );
    }
    let _ = PyErr::take(py);
    if !job.state.transition(RUNNING, DONE) {
        return; // cancelled: the caller has gone on
    }
    let reply_ref = job.reply_ref.clone();
    let _ = job.env.send_and_clear(&job.caller, |env| {
        let result = match &reply {
            Ok(saved) => saved.load(env),
            Err(_) => (
                atoms::error(),
                (atoms::internal(), "the call panicked in the native code"),
            )
                .encode(env),
        };
        (reply_ref.load(env), result, io_requests).encode(env)
    });
}

fn closed_error(env: rustler::Env<'_>) -> rustler::Term<'_> {
    (
        atoms::error(),
        (
            atoms::closed(),
            "the Python context stopped before the call finished; start a new one or retry",
        ),
    )
        .encode(env)
}

fn namespace_dict<'py>(
    py: Python<'py>,
    ns: Option<&NamespaceRes>,
    globals: &Bound<'py, PyDict>,
) -> JobResult<Bound<'py, PyDict>> {
    let Some(ns) = ns else {
        return Ok(globals.clone());
    };
    let mut slot = ns.dict.lock();
    if let Some(ptr) = slot.as_ref() {
        return ptr
            .bind(py)
            .cast_into::<PyDict>()
            .map_err(|_| Failure::Invalid("namespace is not a dict".into()));
    }
    let dict = new_namespace(py)?;
    *slot = Some(PyPtr::new(dict.as_any()));
    Ok(dict)
}
