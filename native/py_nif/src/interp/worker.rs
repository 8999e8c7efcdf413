//! Runners (threads attached to an interpreter, each with a job queue) and
//! the contexts that run on them.
//!
//! In worker mode every context owns a runner: one dedicated OS thread in
//! the main interpreter. In the parallel pool (see `slot`) many contexts
//! share a runner that hosts an OWN_GIL sub-interpreter; each context keeps
//! its own globals there.
//!
//! A runner attaches to its interpreter once for its whole life and only
//! releases its GIL while it waits for the next message, so no thread state
//! is created per call. Replies go straight to the caller with
//! `OwnedEnv::send_and_clear` (legal here: this is not a BEAM thread).
use super::context::Context;
use super::job::{Job, JobRes, JobState, CANCELLED, QUEUED, RUNNING};
use super::watch::{self, Running};
use crate::atoms;
use crate::io;
use crate::pyptr::PyPtr;
use crate::request;
use crate::runtime::{self, RuntimeMsg};
use parking_lot::{Condvar, Mutex};
use pyo3::ffi;
use pyo3::prelude::*;
use rustler::env::SavedTerm;
use rustler::{Encoder, OwnedEnv, ResourceArc};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Runner threads get a large stack (reserved, not committed) so that
/// converting deeply nested values and deep Python recursion stay safe.
pub const STACK_SIZE: usize = 512 << 20;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    /// Id of the interpreter the current runner thread is attached to.
    static INTERPRETER: Cell<i64> = const { Cell::new(-1) };
}

/// The interpreter id of the calling runner thread (-1 elsewhere).
pub fn current_interpreter() -> i64 {
    INTERPRETER.with(Cell::get)
}

pub enum Msg {
    Job(Box<Job>),
    Release(PyPtr),
    /// Re-check state (a close, or a cancel while a callback is awaited).
    Wake,
    /// A context of this runner closed: its services stop (see `threads`).
    ContextClosed(u64),
    /// The answer to a callback into Elixir (see `callback`).
    CallbackReply {
        id: u64,
        env: OwnedEnv,
        result: SavedTerm,
    },
}

/// What a serving runner thread needs to serve its queue again from inside
/// a callback (set by `serve`).
#[derive(Clone, Copy)]
struct Serving {
    runner: *const Arc<Runner>,
    rx: *const flume::Receiver<Msg>,
    cache: *const (),
}

thread_local! {
    static SERVING: Cell<Option<Serving>> = const { Cell::new(None) };
    /// Ids of the callbacks this thread's (nested) waits are waiting for.
    static WAITING: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Answers for outer waits that arrived while an inner wait was running.
    static ANSWERS: std::cell::RefCell<std::collections::HashMap<u64, (OwnedEnv, SavedTerm)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Waits for the answer to callback `id`, serving the runner's queue
/// meanwhile (jobs run nested: Elixir code in the callback may call Python
/// again on this context). `None` when the job was cancelled or the runner
/// closed: the caller raises `erlang.Interrupted`.
pub fn await_callback<'py>(
    py: Python<'py>,
    id: u64,
    job: &JobState,
) -> Option<(OwnedEnv, SavedTerm)> {
    let serving = SERVING.with(Cell::get)?;
    // SAFETY: set by `serve`, whose frame outlives every job it runs; only
    // this thread uses them.
    let (runner, rx, cache) = unsafe {
        (
            &*serving.runner,
            &*serving.rx,
            &*(serving.cache as *const request::CodeCache<'py>),
        )
    };
    WAITING.with(|w| w.borrow_mut().push(id));
    let answer = serve_until_answer(py, id, job, runner, rx, cache);
    WAITING.with(|w| w.borrow_mut().retain(|&w| w != id));
    ANSWERS.with(|a| a.borrow_mut().remove(&id));
    answer
}

fn serve_until_answer<'py>(
    py: Python<'py>,
    id: u64,
    job: &JobState,
    runner: &Arc<Runner>,
    rx: &flume::Receiver<Msg>,
    cache: &request::CodeCache<'py>,
) -> Option<(OwnedEnv, SavedTerm)> {
    loop {
        if let Some(answer) = ANSWERS.with(|a| a.borrow_mut().remove(&id)) {
            return Some(answer);
        }
        if job.is_cancelled() || runner.closed.load(Ordering::Acquire) {
            return None;
        }
        match wait(rx, &runner.sent) {
            Err(_) => return None,
            Ok(Msg::CallbackReply {
                id: answer_id,
                env,
                result,
            }) => {
                if answer_id == id {
                    return Some((env, result));
                }
                // An outer wait's answer is kept for it (the first one: a
                // callback process killed after answering is answered for
                // again by its caller); a late one that nobody waits for
                // any more is dropped.
                if WAITING.with(|w| w.borrow().contains(&answer_id)) {
                    ANSWERS.with(|a| {
                        a.borrow_mut().entry(answer_id).or_insert((env, result));
                    });
                }
            }
            Ok(Msg::Job(mut nested)) => {
                if nested.caller_gone() {
                    // Dropped: nobody waits for it.
                } else if !nested.state.ctx.closed.load(Ordering::Acquire) {
                    runner.run_job(py, cache, *nested);
                } else if runner.retired.load(Ordering::Acquire) {
                    nested.answer_not_queued_from_thread();
                }
            }
            Ok(Msg::Release(ptr)) => ptr.release(py),
            Ok(Msg::ContextClosed(id)) => crate::threads::stop_services(py, Some(id), false),
            Ok(Msg::Wake) => {}
        }
    }
}

/// The runner this thread serves, if any.
pub fn current_runner() -> Option<Arc<Runner>> {
    // SAFETY: set by `serve`, whose frame outlives every job it runs.
    SERVING
        .with(Cell::get)
        .map(|s| unsafe { (*s.runner).clone() })
}

/// Waits for the next message with the interpreter's GIL released.
fn wait(rx: &flume::Receiver<Msg>, sent: &AtomicU64) -> Result<Msg, flume::RecvError> {
    // SAFETY: set by `serve`, whose frame outlives every job it runs.
    let link = SERVING
        .with(Cell::get)
        .and_then(|s| unsafe { (*s.runner).link() });
    // SAFETY: attached on entry; nothing touches Python while detached.
    unsafe {
        let tstate = ffi::PyEval_SaveThread();
        let msg = match &link {
            Some((link, context)) => next_message_linked(rx, sent, link, context),
            None => next_message(rx, sent),
        };
        ffi::PyEval_RestoreThread(tstate);
        msg
    }
}

/// `next_message` for the runner of an isolated context's process, which
/// also polls its link for requests while it polls (see `crate::link`).
fn next_message_linked(
    rx: &flume::Receiver<Msg>,
    sent: &AtomicU64,
    link: &Arc<crate::link::Link>,
    context: &Arc<Context>,
) -> Result<Msg, flume::RecvError> {
    // The budget is learned as for the plain queue (see `spin`), up to
    // the linked maximum after a job that came over the link.
    let max = if LAST_LINKED.with(Cell::get) {
        LINKED_SPIN
    } else {
        SPIN
    };
    // A window that sleeps at once still looks once (the link included).
    let budget = super::spin::budget(max).unwrap_or(Duration::ZERO);
    let start = std::time::Instant::now();
    link.listen_for_runner(true);
    // The queue is locked only when its send counter moved (see
    // `spin::recv_counted`), and once before the first poll.
    let mut seen = None;
    let msg = loop {
        let now = sent.load(Ordering::Acquire);
        if seen != Some(now) {
            seen = Some(now);
            match rx.try_recv() {
                Ok(msg) => break Ok(msg),
                Err(flume::TryRecvError::Disconnected) => {
                    break Err(flume::RecvError::Disconnected)
                }
                Err(flume::TryRecvError::Empty) => {}
            }
        }
        if link.poll_for_runner(context) {
            continue;
        }
        if start.elapsed() >= budget {
            link.listen_for_runner(false);
            let msg = rx.recv();
            super::spin::learn(start.elapsed(), max, true);
            return msg;
        }
        std::hint::spin_loop();
    };
    link.listen_for_runner(false);
    super::spin::learn(start.elapsed(), max, false);
    msg
}

/// A thread attached to one interpreter, and its queue.
pub struct Runner {
    tx: flume::Sender<Msg>,
    /// Messages sent to the queue so far (see `spin::recv_counted`).
    sent: AtomicU64,
    pub(super) closed: AtomicBool,
    /// Id of the job running now; 0 when idle.
    pub current_job: AtomicU64,
    /// Jobs queued on this runner or running on it: its load.
    pub(super) pending: AtomicI64,
    /// Id of a running job that was cancelled (interrupted) and has not
    /// ended yet; 0 when none. Non-zero for long means the thread is stuck
    /// where interrupts do not reach (in C).
    pub(super) interrupted: AtomicU64,
    /// A second receiver of the queue, for failing queued jobs from another
    /// thread when the runner is retired while stuck.
    rx: flume::Receiver<Msg>,
    /// Set when the runner was retired (stuck) while its contexts' owners
    /// live on: jobs it will not run are answered `:not_queued` then. (A
    /// runner closed because its owner died drops them: their callers see
    /// the owner's exit.)
    retired: AtomicBool,
    /// The jobs running here, outermost first (callbacks nest them), for
    /// the watch on their callers (see `watch`).
    running: Mutex<Vec<Running>>,
    /// Id of the context whose job runs now; 0 when idle.
    pub(super) current_context: AtomicU64,
    /// Python's ident of the thread, for async interrupts.
    pub thread_ident: AtomicU64,
    /// The interpreter's id, set when the thread has attached.
    pub interpreter: AtomicI64,
    /// A sub-interpreter runner's `erlang.Interrupted` class and the thread
    /// state the runtime thread uses to raise it there.
    pub interrupt: Mutex<Option<SubInterrupt>>,
    /// In an isolated context's process: the link its requests come over,
    /// which the runner polls while it polls its queue (`crate::link`).
    link: Mutex<Option<(Arc<crate::link::Link>, std::sync::Weak<Context>)>>,
    linked: AtomicBool,
    exited: Mutex<bool>,
    exited_cv: Condvar,
    /// Wakes the thread's event loop when it runs between jobs.
    idle_loop: super::idle_loop::Wake,
}

pub struct SubInterrupt {
    /// The `PyInterpreterState*`.
    pub interpreter: usize,
    /// The runtime thread's thread state in that interpreter (0 until the
    /// first interrupt makes it).
    pub tstate: usize,
    pub class: PyPtr,
}

impl Runner {
    fn new() -> (Arc<Runner>, flume::Receiver<Msg>) {
        let (tx, rx) = flume::unbounded();
        let runner = Arc::new(Runner {
            tx,
            sent: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            current_job: AtomicU64::new(0),
            pending: AtomicI64::new(0),
            interrupted: AtomicU64::new(0),
            rx: rx.clone(),
            retired: AtomicBool::new(false),
            running: Mutex::new(Vec::new()),
            current_context: AtomicU64::new(0),
            thread_ident: AtomicU64::new(0),
            interpreter: AtomicI64::new(-1),
            interrupt: Mutex::new(None),
            link: Mutex::new(None),
            linked: AtomicBool::new(false),
            exited: Mutex::new(false),
            exited_cv: Condvar::new(),
            idle_loop: super::idle_loop::Wake::new(),
        });
        watch::register(&runner);
        (runner, rx)
    }

    /// Polls `link` for requests of `context` while waiting for work.
    pub fn attach_link(&self, link: Arc<crate::link::Link>, context: &Arc<Context>) {
        *self.link.lock() = Some((link, Arc::downgrade(context)));
        self.linked.store(true, Ordering::Release);
    }

    fn link(&self) -> Option<(Arc<crate::link::Link>, Arc<Context>)> {
        // Only an isolated context's runner has one: others skip the lock.
        if !self.linked.load(Ordering::Acquire) {
            return None;
        }
        let guard = self.link.lock();
        let (link, context) = guard.as_ref()?;
        Some((link.clone(), context.upgrade()?))
    }

    /// Starts a runner thread running `body`, which attaches to an
    /// interpreter and calls `serve`.
    pub fn spawn(
        name: String,
        body: impl FnOnce(Arc<Runner>, flume::Receiver<Msg>) + Send + 'static,
    ) -> Result<Arc<Runner>, String> {
        let (runner, rx) = Runner::new();
        let thread_runner = runner.clone();
        std::thread::Builder::new()
            .name(name)
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let done = thread_runner.clone();
                let _ = catch_unwind(AssertUnwindSafe(|| body(thread_runner, rx)));
                *done.exited.lock() = true;
                done.exited_cv.notify_all();
            })
            .map_err(|e| format!("cannot spawn a Python thread: {e}"))?;
        Ok(runner)
    }

    /// Queues a decref on this runner's thread, or on the runtime thread
    /// once this runner has ended (main interpreter objects only).
    pub fn release(&self, ptr: PyPtr) {
        if let Err(flume::SendError(Msg::Release(ptr))) = self.send(Msg::Release(ptr)) {
            if self.interpreter.load(Ordering::Acquire) == 0 {
                if let Some(rt) = runtime::get() {
                    rt.send(RuntimeMsg::Release(ptr));
                }
            }
            // A sub-interpreter that has ended took its objects with it.
        }
    }

    /// Asks the runner to interrupt `job` if it is still running it.
    pub fn interrupt(self: &Arc<Self>, job: u64) {
        // A job blocked on a channel or buffer re-checks its state.
        crate::blocking::wake_job(job);
        if let Some(rt) = runtime::get() {
            rt.send(RuntimeMsg::Interrupt {
                runner: self.clone(),
                job,
            });
        }
    }

    /// Interrupts the job that context `context` runs on this thread now,
    /// if any (`Py.interrupt/1`): Python raises `erlang.Interrupted` there
    /// and the caller gets the error. Returns whether one was running.
    pub fn interrupt_running(self: &Arc<Self>, context: u64) -> bool {
        if self.current_context.load(Ordering::Acquire) != context {
            return false;
        }
        let job = self.current_job.load(Ordering::Acquire);
        let running = self.running.lock();
        let Some(entry) = running.iter().rev().find(|r| r.handle.0.id == job) else {
            return false;
        };
        entry.handle.0.interrupt_asked.store(true, Ordering::SeqCst);
        drop(running);
        self.interrupt(job);
        true
    }

    /// Stops the thread after the running job (which is interrupted).
    pub fn close(self: &Arc<Self>) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.send(Msg::Wake);
        let job = self.current_job.load(Ordering::Acquire);
        if job != 0 {
            self.interrupt(job);
        }
    }

    /// Jobs queued or running here; a runner with an interrupted job that
    /// has not ended counts as fully loaded (`i64::MAX`), so binding avoids
    /// it.
    pub fn load(&self) -> i64 {
        if self.interrupted.load(Ordering::Acquire) != 0 {
            i64::MAX
        } else {
            self.pending.load(Ordering::Acquire)
        }
    }

    /// Whether `job` was interrupted and is still running.
    pub fn is_stuck_in(&self, job: u64) -> bool {
        job != 0 && self.interrupted.load(Ordering::Acquire) == job
    }

    /// Watches the callers of the jobs that have run here for a tick, and
    /// cancels those whose caller is already dead. On the watch thread.
    pub fn watch_callers(&self, now: std::time::Instant) {
        let orphans: Vec<ResourceArc<JobRes>> = {
            let mut running = self.running.lock();
            running
                .iter_mut()
                .filter_map(|job| (!watch::watch(job, now)).then(|| job.handle.clone()))
                .collect()
        };
        for job in orphans {
            job.0.cancel_and_tell_from_thread();
        }
    }

    /// Retires the runner (stuck in an interrupted job): closes it, and on
    /// this BEAM thread answers every job still queued `:not_queued` (it
    /// never ran, so its caller may run it elsewhere); releases stay queued
    /// for the thread to do when it comes back.
    pub fn retire(self: &Arc<Self>, env: rustler::Env) {
        self.retired.store(true, Ordering::Release);
        self.close();
        self.fail_queued(env);
    }

    fn fail_queued(&self, env: rustler::Env) {
        let mut releases = Vec::new();
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Job(job) => {
                    if job.state.transition(QUEUED, CANCELLED) {
                        let msg = job.env.run(|own| {
                            (job.reply_ref.load(own), atoms::not_queued(), 0)
                                .encode(own)
                                .in_env(env)
                        });
                        let _ = env.send(&job.caller, msg);
                    }
                }
                Msg::Release(ptr) => releases.push(Msg::Release(ptr)),
                Msg::ContextClosed(id) => releases.push(Msg::ContextClosed(id)),
                Msg::Wake | Msg::CallbackReply { .. } => {}
            }
        }
        for msg in releases {
            let _ = self.send(msg);
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

    /// Delivers a message to the runner's queue (dropped if it has ended).
    pub fn deliver(&self, msg: Msg) {
        let _ = self.send(msg);
    }

    /// Queues `msg`, and wakes the thread's event loop if it runs.
    pub(super) fn send(&self, msg: Msg) -> Result<(), flume::SendError<Msg>> {
        let sent = self.tx.send(msg);
        // Counted after the send: see `spin::recv_counted`.
        self.sent.fetch_add(1, Ordering::Release);
        self.idle_loop.wake();
        sent
    }

    /// The runner loop, run by the thread once attached. It releases the
    /// interpreter's GIL only while it waits for the next message.
    pub fn serve<'py>(self: &Arc<Self>, py: Python<'py>, rx: &flume::Receiver<Msg>) {
        // SAFETY: attached; these return the thread's ident and interpreter.
        unsafe {
            let ident = ffi::PyThread_get_thread_ident();
            self.thread_ident.store(ident as u64, Ordering::Release);
            let id = ffi::PyInterpreterState_GetID(ffi::PyInterpreterState_Get());
            self.interpreter.store(id, Ordering::Release);
            INTERPRETER.with(|c| c.set(id));
        }
        let cache = request::CodeCache::new();
        SERVING.with(|s| {
            s.set(Some(Serving {
                runner: self as *const Arc<Runner>,
                rx: rx as *const flume::Receiver<Msg>,
                cache: &cache as *const request::CodeCache<'py> as *const (),
            }))
        });
        while !self.closed.load(Ordering::Acquire) {
            // Tasks that jobs started run while nothing is queued.
            super::idle_loop::run(py, &self.idle_loop, || {
                rx.is_empty() && !self.closed.load(Ordering::Acquire)
            });
            let msg = match wait(rx, &self.sent) {
                Ok(msg) => msg,
                Err(_) => break,
            };
            match msg {
                Msg::Release(ptr) => ptr.release(py),
                Msg::ContextClosed(id) => crate::threads::stop_services(py, Some(id), false),
                Msg::Wake | Msg::CallbackReply { .. } => {}
                Msg::Job(mut job) => {
                    if job.caller_gone() {
                        // Dropped: nobody waits for it.
                    } else if !self.closed.load(Ordering::Acquire)
                        && !job.state.ctx.closed.load(Ordering::Acquire)
                    {
                        self.run_job(py, &cache, *job);
                    } else if self.retired.load(Ordering::Acquire) {
                        job.answer_not_queued_from_thread();
                    }
                }
            }
        }
        SERVING.with(|s| s.set(None));
        // Closed: release what was queued for release; queued jobs never
        // ran: a retired runner answers them `:not_queued`, one closed by
        // its owner's death drops them (their callers see that exit).
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Msg::Release(ptr) => ptr.release(py),
                Msg::Job(job) if self.retired.load(Ordering::Acquire) => {
                    job.answer_not_queued_from_thread()
                }
                // Services stop when the runner ends (see its callers).
                Msg::Job(_) | Msg::Wake | Msg::ContextClosed(_) | Msg::CallbackReply { .. } => {}
            }
        }
        crate::builtins::call_erlang_quietly(py, "_loop_close");
    }

    pub fn run_job<'py>(&self, py: Python<'py>, cache: &request::CodeCache<'py>, mut job: Job) {
        crate::observe::sync(py);
        crate::callback::sync(py);
        crate::venv::sync(py);
        crate::preload::sync(py);
        if !job.state.transition(QUEUED, RUNNING) {
            return;
        }
        let ctx = job.state.ctx.clone();
        // Jobs nest (a callback's Elixir code calls Python again): restore
        // the outer job's ids when this one ends.
        let outer_context = self.current_context.swap(ctx.id, Ordering::SeqCst);
        let outer_job = self.current_job.swap(job.state.id, Ordering::SeqCst);
        // A cancel between the transition and the swap found another job
        // running and interrupted nothing: skip the job (its caller has
        // gone on). After the swap, a cancel's interrupt finds this job.
        if job.state.is_cancelled() {
            self.current_job.store(outer_job, Ordering::Release);
            self.current_context.store(outer_context, Ordering::Release);
            return;
        }
        self.running.lock().push(Running {
            handle: job.handle.clone(),
            caller: job.caller,
            started: std::time::Instant::now(),
            watched: job.watched,
        });
        io::begin(
            job.caller,
            job.group_leader,
            job.state.clone(),
            &job.env,
            job.reply_ref.clone(),
            job.identity.clone(),
        );
        LAST_LINKED.with(|last| last.set(job.link.is_some()));
        let kept_from = super::leftovers::mark();
        let wrapped_before = crate::object::wrapped();
        let events_before = crate::observe::events_sent();
        let reply = catch_unwind(AssertUnwindSafe(|| {
            job.env.run(|env| {
                let request = job.request.load(env);
                let namespace = match job.namespace.as_deref() {
                    Some(ns) => &ns.0,
                    None => &ctx.globals,
                };
                let result = request::execute(py, env, &ctx.runner, namespace, cache, request);
                let result = match result {
                    Ok(term) => (atoms::ok(), term).encode(env),
                    // A job that failed because its context is closing was
                    // (almost certainly) interrupted by the close.
                    Err(_) if ctx.closed.load(Ordering::Acquire) => closed_error(env),
                    Err(f) => f.encode(py, env),
                };
                job.env.save(result)
            })
        }));
        io::end();
        // The io requests sent for the job's output, its threads' included;
        // None when it was cancelled (its caller has gone on).
        if let Some(io_requests) = job.state.finish() {
            let plain = io_requests == 0
                && crate::object::wrapped() == wrapped_before
                && crate::observe::events_sent() == events_before;
            answer(&mut job, &reply, io_requests, plain);
        }
        // After the answer, which the caller is woken by; still under the
        // GIL, and before the next job.
        self.end_job(py, job.state.id, outer_job, outer_context);
        // What the job kept is freed now, with its caller on its way.
        super::leftovers::release(py, kept_from);
    }

    /// A job's end on its runner: it leaves `running`, the outer job's ids
    /// come back (jobs nest), and an interrupt that was not delivered is
    /// cleared, under the GIL, so that it cannot reach the next job.
    fn end_job(&self, py: Python<'_>, id: u64, outer_job: u64, outer_context: u64) {
        {
            let mut running = self.running.lock();
            if let Some(at) = running.iter().rposition(|r| r.handle.0.id == id) {
                running.remove(at);
            }
        }
        self.current_job.store(outer_job, Ordering::Release);
        self.current_context.store(outer_context, Ordering::Release);
        // SAFETY: attached; clears this thread's pending async exception.
        unsafe {
            ffi::PyThreadState_SetAsyncExc(
                self.thread_ident.load(Ordering::Acquire) as _,
                std::ptr::null_mut(),
            );
        }
        let _ = PyErr::take(py);
    }
}

/// Sends a finished job's reply. A call that came over a link
/// (`crate::link`) is answered over it when its reply is `plain` (no
/// objects, output or events: otherwise the caller's stand-in finishes it,
/// as it keeps the objects, gets the replies to the output, and the reply
/// must not overtake what it forwards); any other as a message.
fn answer(job: &mut Job, reply: &std::thread::Result<SavedTerm>, io_requests: u32, plain: bool) {
    if let (Some((link, _)), Ok(result)) = (&job.link, reply) {
        if plain && link.reply(&job.env, &job.reply_ref, result) {
            return;
        }
    }
    let reply_ref = job.reply_ref.clone();
    let _ = job.env.send_and_clear(&job.caller, |env| {
        let result = match reply {
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

/// The most an idle runner polls its queue before it sleeps (the budget
/// it learns stays below; see `spin`). Calls that arrive back to back then
/// skip a futex wake-up, which dominates the cost of a short call.
const SPIN: Duration = Duration::from_micros(50);

thread_local! {
    /// Whether the last job this runner ran came over a link: it polls
    /// longer for the next (see `LINKED_SPIN`).
    static LAST_LINKED: Cell<bool> = const { Cell::new(false) };
}

/// The most the runner of an isolated context's process polls its queue
/// and link before it sleeps: the whole process serves that one context,
/// and a caller's next request comes a round trip after the last reply.
const LINKED_SPIN: Duration = Duration::from_micros(200);

/// The next message, polled for a learned budget (see `spin`) then waited
/// for. Call without the GIL.
pub fn next_message(rx: &flume::Receiver<Msg>, sent: &AtomicU64) -> Result<Msg, flume::RecvError> {
    super::spin::recv_counted(rx, sent, SPIN)
}

/// A worker-mode runner: a new thread in the main interpreter.
pub fn spawn_main_runner(name: String) -> Result<Arc<Runner>, String> {
    Runner::spawn(name, |runner, rx| {
        Python::attach(|py| {
            runner.serve(py, &rx);
            // The context of this runner has closed: the services it
            // started stop with it.
            crate::threads::stop_services(py, None, true);
        });
    })
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
