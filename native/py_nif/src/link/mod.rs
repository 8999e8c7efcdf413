//! A direct line between py's NIF in this VM and py's NIF in an isolated
//! context's OS process, beside Erlang distribution: requests and replies
//! of plain calls go through it between threads of this library on both
//! sides, never waiting on a BEAM scheduler's poll set (the cost of the
//! distribution path is its two sleeping wake-ups, not the copy).
//!
//! One Unix `SOCK_SEQPACKET` socket (an abstract name on the same host):
//! each frame is one packet holding one term in the external term format,
//! at most [`MAX_FRAME`] bytes. The origin's side (`listen`) accepts the
//! isolated process's connection (`connect`).
//!
//! * A request frame, origin to isolated: `{reply_ref, standin, group_leader,
//!   namespace_id, job_id, request}`. The isolated side queues it on its
//!   context as `submit` would, for the caller's stand-in process there
//!   (which serves the callbacks, output and events of the call; see
//!   `Py.Isolated.Standin`).
//! * A reply frame, isolated to origin: `{reply_ref, result}` with
//!   `reply_ref = {tag, caller}`; the origin sends `{tag, :py_fast,
//!   result}` to the caller. A reply that holds objects or follows output
//!   goes to the stand-in instead (`worker.rs`), which finishes it.
//!
//! Both readers poll their socket briefly before they block, as runners do
//! their queues.
mod socket;

use crate::atoms;
use crate::context::{Context, NamespaceRes};
use crate::job::{Job, JobRes, JobState};
use parking_lot::Mutex;
use rustler::env::SavedTerm;
use rustler::{Encoder, LocalPid, OwnedEnv, Resource, ResourceArc, Term};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;

/// The largest frame sent on the line; larger requests and replies take
/// the distribution path.
pub const MAX_FRAME: usize = 60 * 1024;

pub struct Link {
    fd: AtomicI32,
    open: AtomicBool,
    /// The isolated side: namespaces of the stand-ins, by id.
    namespaces: Mutex<HashMap<u64, ResourceArc<NamespaceRes>>>,
    /// The isolated side: jobs queued or running, by the caller's job id
    /// (a stand-in cancels them on a timeout).
    jobs: Mutex<HashMap<u64, ResourceArc<JobRes>>>,
    next_namespace: AtomicU64,
    send_lock: Mutex<()>,
    /// The origin's side: replies that callers stopped polling for and wait
    /// for as messages (see `call`); the reader thread reads while any do.
    /// The isolated side: whether the context's runner is polling the
    /// socket itself now (see `Link::poll_for_runner`); the reader thread
    /// reads while it is not.
    waiting: Mutex<i64>,
    wake: parking_lot::Condvar,
    /// The origin's side: the callers waiting for their reply as a message,
    /// and the tag each waits with; told `{tag, :py_link_down}` if the line
    /// goes down first.
    waiters: Mutex<Vec<(LocalPid, OwnedEnv, SavedTerm)>>,
}

pub struct LinkRes(pub Arc<Link>);

#[rustler::resource_impl]
impl Resource for LinkRes {}

impl Drop for Link {
    fn drop(&mut self) {
        let fd = self.fd.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            socket::close(fd);
        }
    }
}

impl Link {
    fn new(fd: i32) -> Arc<Link> {
        Arc::new(Link {
            fd: AtomicI32::new(fd),
            open: AtomicBool::new(fd >= 0),
            namespaces: Mutex::new(HashMap::new()),
            jobs: Mutex::new(HashMap::new()),
            next_namespace: AtomicU64::new(1),
            send_lock: Mutex::new(()),
            waiting: Mutex::new(0),
            wake: parking_lot::Condvar::new(),
            waiters: Mutex::new(Vec::new()),
        })
    }

    fn fd(&self) -> Option<i32> {
        let fd = self.fd.load(Ordering::Acquire);
        (fd >= 0 && self.open.load(Ordering::Acquire)).then_some(fd)
    }

    fn close(&self) {
        self.open.store(false, Ordering::Release);
        self.wake.notify_all();
        let fd = self.fd.load(Ordering::Acquire);
        if fd >= 0 {
            socket::shutdown(fd);
        }
    }

    /// Sends one frame; `wait` says whether it may block (never on a BEAM
    /// scheduler thread).
    fn send(&self, frame: &[u8], wait: bool) -> SendResult {
        if frame.len() > MAX_FRAME {
            return SendResult::TooLarge;
        }
        let Some(fd) = self.fd() else {
            return SendResult::Closed;
        };
        let _guard = self.send_lock.lock();
        match socket::send(fd, frame, wait) {
            Ok(true) => SendResult::Sent,
            Ok(false) => SendResult::Busy,
            Err(()) => {
                self.close();
                SendResult::Closed
            }
        }
    }

    /// Waits up to `timeout` for the origin's end to have accepted the
    /// connection; whether it has.
    pub fn await_open(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut waiting = self.waiting.lock();
        while self.fd().is_none() {
            if self.wake.wait_until(&mut waiting, deadline).timed_out() {
                break;
            }
        }
        self.fd().is_some()
    }

    /// The job a request frame queued, while it is queued or running.
    pub fn job(&self, id: u64) -> Option<ResourceArc<JobRes>> {
        self.jobs.lock().get(&id).cloned()
    }

    pub fn forget_job(&self, id: u64) {
        self.jobs.lock().remove(&id);
    }

    pub fn add_namespace(&self, namespace: ResourceArc<NamespaceRes>) -> u64 {
        let id = self.next_namespace.fetch_add(1, Ordering::Relaxed);
        self.namespaces.lock().insert(id, namespace);
        id
    }

    pub fn drop_namespace(&self, id: u64) {
        self.namespaces.lock().remove(&id);
    }

    /// Sends a job's reply `{reply_ref, result}` back; false if it could
    /// not (the caller's stand-in gets it then). On a runner thread.
    pub fn reply(&self, env: &OwnedEnv, reply_ref: &SavedTerm, result: &SavedTerm) -> bool {
        let frame = env.run(|env| {
            let term = (reply_ref.load(env), result.load(env)).encode(env);
            term.to_binary()
        });
        matches!(self.send(frame.as_slice(), true), SendResult::Sent)
    }
}

pub enum SendResult {
    Sent,
    Busy,
    TooLarge,
    Closed,
}

/// The origin's end: listens on a fresh abstract name, accepts the isolated
/// process's connection in a thread (for up to a minute), which then reads
/// the replies nobody polls for. Returns the link and the name to connect
/// to.
pub fn listen() -> Result<(Arc<Link>, String), String> {
    let (listener, name) = socket::listen()?;
    let link = Link::new(-1);
    let line = link.clone();
    std::thread::Builder::new()
        .name("py-link-origin".into())
        .spawn(move || {
            if let Some(fd) = socket::accept(listener, 60_000) {
                line.fd.store(fd, Ordering::Release);
                {
                    let _waiting = line.waiting.lock();
                    line.open.store(true, Ordering::Release);
                }
                line.wake.notify_all();
                read_replies(&line, fd);
            }
            line.close();
            tell_down(&line);
        })
        .map_err(|e| e.to_string())?;
    Ok((link, name))
}

/// The isolated process's end: connects to `name` and serves request frames
/// on `context` (its runner reads them itself while it polls for work; a
/// thread reads them while it does not).
pub fn connect(name: &str, context: Arc<Context>) -> Result<Arc<Link>, String> {
    let fd = socket::connect(name)?;
    let link = Link::new(fd);
    context.runner.attach_link(link.clone(), &context);
    let line = link.clone();
    std::thread::Builder::new()
        .name("py-link-isolated".into())
        .spawn(move || {
            read_requests(&line, fd, &context);
            line.close();
        })
        .map_err(|e| e.to_string())?;
    Ok(link)
}

/// How long a caller polls for its reply on its scheduler thread before it
/// waits for a message instead (well under a NIF's time budget).
const CALLER_POLL: std::time::Duration = std::time::Duration::from_micros(100);

thread_local! {
    static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; MAX_FRAME + 1]);
}

/// Sends a request frame from a BEAM scheduler without blocking, then polls
/// briefly for its reply: `{:py_fast, result}` (the reply), `:pending` (it
/// will come as `{tag, :py_fast, result}`), or `:busy`, `:too_large`,
/// `:closed` (not sent: the caller takes the distribution path). Replies
/// for other callers read meanwhile are sent to them.
pub fn call<'a>(env: rustler::Env<'a>, link: &Link, frame: Term<'a>) -> Term<'a> {
    let Some(fd) = link.fd() else {
        return atoms::closed().encode(env);
    };
    let binary = frame.to_binary();
    match link.send(binary.as_slice(), false) {
        SendResult::Sent => {}
        SendResult::Busy => return atoms::busy().encode(env),
        SendResult::TooLarge => return atoms::too_large().encode(env),
        SendResult::Closed => return atoms::closed().encode(env),
    }
    let me = env.pid();
    let start = std::time::Instant::now();
    let mut down = false;
    let own = BUFFER.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        while start.elapsed() < CALLER_POLL {
            match socket::try_recv(fd, &mut buffer) {
                Ok(Some(n)) => {
                    // SAFETY: written by `Link::reply` on the other side.
                    let Some((term, _)) = (unsafe { env.binary_to_term_trusted(&buffer[..n]) })
                    else {
                        continue;
                    };
                    let Some((reply_ref, result)) = term.decode::<(Term, Term)>().ok() else {
                        continue;
                    };
                    match reply_ref.decode::<(Term, LocalPid)>() {
                        Ok((_tag, pid)) if pid == me => return Some(result),
                        // Another caller's: sent from this process's env
                        // (this is a scheduler thread).
                        Ok((tag, pid)) => {
                            remove_waiter(link, pid);
                            let _ = env.send(&pid, (tag, atoms::py_fast(), result).encode(env));
                            *link.waiting.lock() -= 1;
                        }
                        Err(_) => {}
                    }
                }
                Ok(None) => std::hint::spin_loop(),
                Err(()) => {
                    down = true;
                    break;
                }
            }
        }
        None
    });
    if let Some(result) = own {
        return (atoms::py_fast(), result).encode(env);
    }
    // The request went out and the line is down: the process at the other
    // end has ended (its owner tells how).
    if down {
        link.close();
        return atoms::down().encode(env);
    }
    // Wait for the reply as a message: the reader thread reads while any
    // caller waits, and tells waiters if the line goes down.
    let tag = frame
        .decode::<(Term, Term, Term, Term, Term, Term)>()
        .ok()
        .and_then(|(reply_ref, ..)| reply_ref.decode::<(Term, Term)>().ok())
        .map(|(tag, _)| tag);
    if let Some(tag) = tag {
        let owned = OwnedEnv::new();
        let saved = owned.save(tag);
        link.waiters.lock().push((me, owned, saved));
    }
    *link.waiting.lock() += 1;
    link.wake.notify_all();
    // The reader thread may have told the waiters already, before this one
    // was among them: tell it here (a scheduler thread: from this env).
    if !link.open.load(Ordering::Acquire) && remove_waiter(link, me) {
        return atoms::down().encode(env);
    }
    atoms::pending().encode(env)
}

/// The calling process no longer waits for a reply over the link (the
/// stand-in answered it: it printed, returned objects or timed out).
pub fn forget(link: &Link, me: LocalPid) {
    if remove_waiter(link, me) {
        *link.waiting.lock() -= 1;
    }
}

/// Drops `pid`'s waiter entry; whether it had one.
fn remove_waiter(link: &Link, pid: LocalPid) -> bool {
    let mut waiters = link.waiters.lock();
    let before = waiters.len();
    waiters.retain(|(waiter, _, _)| *waiter != pid);
    waiters.len() != before
}

/// The line went down: every caller still waiting is told. On a thread of
/// this library.
fn tell_down(link: &Link) {
    let waiters = std::mem::take(&mut *link.waiters.lock());
    for (pid, mut owned, tag) in waiters {
        let _ = owned.send_and_clear(&pid, |env| {
            (tag.load(env), atoms::py_link_down()).encode(env)
        });
    }
}

/// Sends a reply frame to its caller, which waits for it as a message. On
/// the reader thread.
fn dispatch(link: &Link, frame: &[u8]) {
    let mut owned = OwnedEnv::new();
    let decoded = owned.run(|env| {
        // SAFETY: written by `Link::reply`, py's own NIF in the isolated
        // process.
        let (term, _) = unsafe { env.binary_to_term_trusted(frame) }?;
        let (reply_ref, result): (Term, Term) = term.decode().ok()?;
        let (tag, caller): (Term, LocalPid) = reply_ref.decode().ok()?;
        Some((caller, owned.save(tag), owned.save(result)))
    });
    if let Some((caller, tag, result)) = decoded {
        remove_waiter(link, caller);
        let _ = owned.send_and_clear(&caller, |env| {
            (tag.load(env), atoms::py_fast(), result.load(env)).encode(env)
        });
    }
    *link.waiting.lock() -= 1;
}

/// The origin's reader: while callers wait for replies as messages, reads
/// and sends them.
fn read_replies(link: &Link, fd: i32) {
    let mut buffer = vec![0u8; MAX_FRAME + 1];
    loop {
        {
            let mut waiting = link.waiting.lock();
            while *waiting <= 0 && link.open.load(Ordering::Acquire) {
                link.wake.wait(&mut waiting);
            }
        }
        if !link.open.load(Ordering::Acquire) {
            return;
        }
        match socket::recv_wait(fd, &mut buffer, 100) {
            Ok(Some(n)) => dispatch(link, &buffer[..n]),
            Ok(None) => {}
            Err(()) => return,
        }
    }
}

/// The isolated process's reader: reads request frames while the runner
/// does not poll the socket itself.
fn read_requests(link: &Arc<Link>, fd: i32, context: &Arc<Context>) {
    let mut buffer = vec![0u8; MAX_FRAME + 1];
    loop {
        {
            let mut listening = link.waiting.lock();
            while *listening > 0 && link.open.load(Ordering::Acquire) {
                link.wake.wait(&mut listening);
            }
        }
        if !link.open.load(Ordering::Acquire) {
            return;
        }
        match socket::recv_wait(fd, &mut buffer, 100) {
            Ok(Some(n)) => queue_request(link, context, &buffer[..n]),
            Ok(None) => {}
            Err(()) => return,
        }
    }
}

impl Link {
    /// The runner of the isolated process polls the socket while it polls
    /// its queue (`worker::next_message`): a request read here is queued,
    /// and the runner takes it at once. Between `listen(true)` and
    /// `listen(false)` the reader thread leaves the socket alone.
    pub fn listen_for_runner(&self, on: bool) {
        *self.waiting.lock() = i64::from(on);
        if !on {
            self.wake.notify_all();
        }
    }

    /// One poll of the socket by the runner; true if a request was queued.
    pub fn poll_for_runner(self: &Arc<Self>, context: &Arc<Context>) -> bool {
        let Some(fd) = self.fd() else {
            return false;
        };
        BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            match socket::try_recv(fd, &mut buffer) {
                Ok(Some(n)) => {
                    queue_request(self, context, &buffer[..n]);
                    true
                }
                _ => false,
            }
        })
    }
}

fn queue_request(link: &Arc<Link>, context: &Arc<Context>, frame: &[u8]) {
    let owned = crate::interp::env_pool::take();
    let parts = owned.run(|env| {
        // SAFETY: written by `call` in the origin VM.
        let (term, _) = unsafe { env.binary_to_term_trusted(frame) }?;
        let (reply_ref, standin, group_leader, namespace, job_id, request): (
            Term,
            LocalPid,
            LocalPid,
            u64,
            u64,
            Term,
        ) = term.decode().ok()?;
        // erlang.self() is the origin's caller, named in the reply ref.
        let (_tag, caller): (Term, Term) = reply_ref.decode().ok()?;
        Some((
            owned.save(reply_ref),
            standin,
            group_leader,
            namespace,
            job_id,
            owned.save(request),
            owned.save(caller),
        ))
    });
    let Some((reply_ref, standin, group_leader, namespace, job_id, request, caller)) = parts else {
        return;
    };
    // A context closed under the link (its thread was retired): the call
    // never ran; the caller takes the distribution path, which renews it.
    if !context.is_open() {
        let frame = owned.run(|env| {
            (reply_ref.load(env), atoms::not_queued())
                .encode(env)
                .to_binary()
        });
        let _ = link.send(frame.as_slice(), true);
        return;
    }
    let namespace = match namespace {
        0 => None,
        id => link.namespaces.lock().get(&id).cloned(),
    };
    let handle = ResourceArc::new(JobRes(JobState::new(context.clone())));
    link.jobs.lock().insert(job_id, handle.clone());
    let job = Job {
        state: handle.0.clone(),
        reply_ref,
        request,
        env: std::mem::ManuallyDrop::new(owned),
        caller: standin,
        group_leader,
        namespace,
        handle,
        queued_at: std::time::Instant::now(),
        watched: false,
        link: Some((link.clone(), job_id)),
        identity: Some(caller),
    };
    // A closed context drops the job; its stand-in answers the caller.
    let _ = context.submit(job);
}
