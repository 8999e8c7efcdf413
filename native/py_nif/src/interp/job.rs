//! A job: one request queued on a context's runner, the env that holds it,
//! and the state its caller and the runner share (cancel, output count,
//! the callback route).
use super::context::{Context, NamespaceRes};
use super::watch;
use super::worker::{next_id, Msg};
use crate::atoms;
use parking_lot::Mutex;
use rustler::env::SavedTerm;
use rustler::{Encoder, LocalPid, OwnedEnv, Resource, ResourceArc};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

pub(super) const QUEUED: u8 = 0;
pub(super) const RUNNING: u8 = 1;
const DONE: u8 = 2;
pub(super) const CANCELLED: u8 = 3;

/// Lets the caller cancel a job after a timeout and learn whether its reply
/// was already sent.
pub struct JobState {
    status: AtomicU8,
    pub id: u64,
    pub ctx: Arc<Context>,
    /// Io requests sent for the job's output (see `send_to_caller`).
    io_sent: Mutex<u32>,
    /// Set when the job is over (run, skipped or dropped).
    ended: AtomicBool,
    /// `Py.interrupt/1` asked to interrupt it (the job goes on to its
    /// caller, with the Interrupted error); a wait on a channel or buffer
    /// takes it (see `blocking::wait`).
    pub interrupt_asked: AtomicBool,
    /// Where its callbacks go once its caller started a process for them.
    pub callback_route: crate::callback_route::Route,
}

pub struct JobRes(pub Arc<JobState>);

/// A job's handle watches the caller: when the caller dies, the job is
/// cancelled as on a timeout (interrupted if running, skipped if queued).
#[rustler::resource_impl]
impl Resource for JobRes {
    fn down<'a>(&'a self, env: rustler::Env<'a>, _pid: LocalPid, _mon: rustler::Monitor) {
        self.0.cancel_and_tell(env);
    }
}

pub enum Cancel {
    /// The job had not started and never will: safe to retry elsewhere.
    Dequeued,
    /// The job was running and is being interrupted; no reply will come,
    /// and no more output: the caller gets replies to the io requests
    /// already sent (this many).
    Cancelled(u32),
    /// The reply is (or is about to be) in the caller's mailbox.
    AlreadySent,
}

impl JobState {
    pub fn new(ctx: Arc<Context>) -> Arc<JobState> {
        Arc::new(JobState {
            status: AtomicU8::new(QUEUED),
            id: next_id(),
            ctx,
            io_sent: Mutex::new(0),
            ended: AtomicBool::new(false),
            interrupt_asked: AtomicBool::new(false),
            callback_route: Default::default(),
        })
    }

    // SeqCst: a cancel (status, then the runner's current job) and
    // `run_job` (current job, then status) must see each other's write.
    pub(super) fn transition(&self, from: u8, to: u8) -> bool {
        self.status
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    pub fn is_cancelled(&self) -> bool {
        self.status.load(Ordering::SeqCst) == CANCELLED
    }

    /// `cancel`, and when that interrupted a running job, a message
    /// `{:py_interrupted, job_id}` to the context's owner, which retires the
    /// context if the job does not end (see `Py.Context`). On a BEAM thread.
    pub fn cancel_and_tell(&self, env: rustler::Env) -> Cancel {
        let cancel = self.cancel();
        if let (Cancel::Cancelled(_), Some(owner)) = (&cancel, &self.ctx.owner) {
            let _ = env.send(owner, (atoms::py_interrupted(), self.id).encode(env));
        }
        cancel
    }

    /// `cancel_and_tell` off the BEAM's threads.
    pub fn cancel_and_tell_from_thread(&self) {
        if let (Cancel::Cancelled(_), Some(owner)) = (self.cancel(), &self.ctx.owner) {
            let id = self.id;
            let _ = OwnedEnv::new()
                .send_and_clear(owner, |env| (atoms::py_interrupted(), id).encode(env));
        }
    }

    pub fn cancel(&self) -> Cancel {
        if self.transition(QUEUED, CANCELLED) {
            return Cancel::Dequeued;
        }
        // Under the io lock: output is sent before the cancel (and counted)
        // or dropped after it (see `send_to_caller`).
        let io_sent = self.io_sent.lock();
        if self.transition(RUNNING, CANCELLED) {
            let sent = *io_sent;
            drop(io_sent);
            // Marked, then undone if the job ended meanwhile: with `Drop for
            // Job` (ended, then clear), one of the two always clears it.
            let runner = &self.ctx.runner;
            runner.interrupted.store(self.id, Ordering::SeqCst);
            if self.ended.load(Ordering::SeqCst) {
                let _ = runner.interrupted.compare_exchange(
                    self.id,
                    0,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
            }
            self.ctx.runner.interrupt(self.id);
            // A runner waiting for a callback's answer re-checks.
            self.ctx.runner.deliver(Msg::Wake);
            return Cancel::Cancelled(sent);
        }
        match self.status.load(Ordering::SeqCst) {
            DONE => Cancel::AlreadySent,
            _ => Cancel::Cancelled(*io_sent),
        }
    }

    /// Runs `send` (a message to the job's caller) unless the job was
    /// cancelled: a cancel and a send are ordered by the lock, so a caller
    /// that has cancelled gets nothing more. An `io_request` that `send`
    /// sent (it returned true) is counted: the caller waits for its reply.
    /// Runs `send` (an io request from a thread the job started) while the
    /// job runs, and counts it: the caller waits for its reply.
    pub fn send_while_running(&self, send: impl FnOnce() -> bool) -> bool {
        let mut io_sent = self.io_sent.lock();
        if self.status.load(Ordering::SeqCst) != RUNNING || !send() {
            return false;
        }
        *io_sent += 1;
        true
    }

    pub fn is_running(&self) -> bool {
        self.status.load(Ordering::SeqCst) == RUNNING
    }

    /// Marks the job done, unless it was cancelled, and returns how many io
    /// requests were sent for it: under the io lock, so that no thread's
    /// output is sent after the count.
    pub(super) fn finish(&self) -> Option<u32> {
        let io_sent = self.io_sent.lock();
        self.transition(RUNNING, DONE).then_some(*io_sent)
    }

    pub fn send_to_caller(&self, io_request: bool, send: impl FnOnce() -> bool) -> bool {
        let mut io_sent = self.io_sent.lock();
        if self.is_cancelled() || !send() {
            return false;
        }
        if io_request {
            *io_sent += 1;
        }
        true
    }
}

pub struct Job {
    pub state: Arc<JobState>,
    /// Taken from, and given back to, `env_pool` (see `Drop`).
    pub env: std::mem::ManuallyDrop<OwnedEnv>,
    pub caller: LocalPid,
    pub group_leader: LocalPid,
    pub reply_ref: SavedTerm,
    pub request: SavedTerm,
    pub namespace: Option<ResourceArc<NamespaceRes>>,
    /// The handle the caller holds, which monitors the caller once the job
    /// has waited or run for a tick (see `watch`); kept alive while the job
    /// is queued or running so that the caller's death still reaches it.
    pub handle: ResourceArc<JobRes>,
    /// When the job was queued.
    pub queued_at: std::time::Instant,
    /// Whether its caller is monitored already.
    pub watched: bool,
    /// The link it came over, and its id there (`crate::link`).
    pub link: Option<(Arc<crate::link::Link>, u64)>,
    /// Who `erlang.self()` is when not the caller (see `io::Target`).
    pub identity: Option<SavedTerm>,
}

impl Job {
    /// For a job taken from the queue: true when it waited a tick or more
    /// and its caller has died meanwhile (the job is then cancelled, and
    /// must be dropped). Else its caller is watched from here on.
    pub(super) fn caller_gone(&mut self) -> bool {
        if self.queued_at.elapsed() < watch::TICK {
            return false;
        }
        self.watched = true;
        if self.handle.monitor(None, &self.caller).is_some() {
            return false;
        }
        self.state.transition(QUEUED, CANCELLED)
    }

    /// Answers a job that never ran, and never will, `{reply_ref,
    /// :not_queued, 0}` (unless its caller gave up on it): its caller may
    /// run it elsewhere. On a runner thread.
    pub(super) fn answer_not_queued_from_thread(mut self) {
        if !self.state.transition(QUEUED, CANCELLED) {
            return;
        }
        let reply_ref = self.reply_ref.clone();
        let caller = self.caller;
        let _ = self.env.send_and_clear(&caller, |env| {
            (reply_ref.load(env), atoms::not_queued(), 0).encode(env)
        });
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: taken once, here; the fields left (saved terms) are never
        // loaded again (they point into the env, cleared as it is kept).
        super::env_pool::give(unsafe { std::mem::ManuallyDrop::take(&mut self.env) });
        if let Some((link, id)) = &self.link {
            link.forget_job(*id);
        }
        self.state.ended.store(true, Ordering::SeqCst);
        let runner = &self.state.ctx.runner;
        let _ = runner.interrupted.compare_exchange(
            self.state.id,
            0,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        runner.pending.fetch_sub(1, Ordering::AcqRel);
    }
}
