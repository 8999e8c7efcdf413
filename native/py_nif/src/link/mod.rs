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
use crate::worker::{Context, Job, JobRes, JobState, NamespaceRes};
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
        })
    }

    fn fd(&self) -> Option<i32> {
        let fd = self.fd.load(Ordering::Acquire);
        (fd >= 0 && self.open.load(Ordering::Acquire)).then_some(fd)
    }

    fn close(&self) {
        self.open.store(false, Ordering::Release);
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
/// process's connection in a thread (for up to a minute) and reads its
/// replies. Returns the link and the name to connect to.
pub fn listen() -> Result<(Arc<Link>, String), String> {
    let (listener, name) = socket::listen()?;
    let link = Link::new(-1);
    let line = link.clone();
    std::thread::Builder::new()
        .name("py-link-origin".into())
        .spawn(move || match socket::accept(listener, 60_000) {
            Some(fd) => {
                line.fd.store(fd, Ordering::Release);
                line.open.store(true, Ordering::Release);
                read_replies(fd);
                line.close();
            }
            None => line.close(),
        })
        .map_err(|e| e.to_string())?;
    Ok((link, name))
}

/// The isolated process's end: connects to `name` and serves request frames
/// on `context`.
pub fn connect(name: &str, context: Arc<Context>) -> Result<Arc<Link>, String> {
    let fd = socket::connect(name)?;
    let link = Link::new(fd);
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

/// Sends a request frame from a BEAM scheduler (never blocks): `:ok`,
/// `:busy`, `:too_large` or `:closed`; the caller takes the distribution
/// path on anything but `:ok`.
pub fn send_request<'a>(env: rustler::Env<'a>, link: &Link, frame: Term<'a>) -> Term<'a> {
    if link.fd().is_none() {
        return atoms::closed().encode(env);
    }
    let binary = frame.to_binary();
    match link.send(binary.as_slice(), false) {
        SendResult::Sent => atoms::ok().encode(env),
        SendResult::Busy => atoms::busy().encode(env),
        SendResult::TooLarge => atoms::too_large().encode(env),
        SendResult::Closed => atoms::closed().encode(env),
    }
}

fn read_replies(fd: i32) {
    let mut buffer = vec![0u8; MAX_FRAME + 1];
    let mut owned = OwnedEnv::new();
    while let Some(n) = socket::recv(fd, &mut buffer) {
        let frame = &buffer[..n];
        let decoded = owned.run(|env| {
            // SAFETY: written by `Link::reply`, py's own NIF in the
            // isolated process.
            let (term, _) = unsafe { env.binary_to_term_trusted(frame) }?;
            let (reply_ref, result): (Term, Term) = term.decode().ok()?;
            let (tag, caller): (Term, LocalPid) = reply_ref.decode().ok()?;
            Some((caller, owned.save(tag), owned.save(result)))
        });
        match decoded {
            Some((caller, tag, result)) => {
                let _ = owned.send_and_clear(&caller, |env| {
                    (tag.load(env), atoms::py_fast(), result.load(env)).encode(env)
                });
            }
            None => owned.clear(),
        }
    }
}

fn read_requests(link: &Arc<Link>, fd: i32, context: &Arc<Context>) {
    let mut buffer = vec![0u8; MAX_FRAME + 1];
    while let Some(n) = socket::recv(fd, &mut buffer) {
        queue_request(link, context, &buffer[..n]);
    }
}

fn queue_request(link: &Arc<Link>, context: &Arc<Context>, frame: &[u8]) {
    let owned = OwnedEnv::new();
    let parts = owned.run(|env| {
        // SAFETY: written by `send_request` in the origin VM.
        let (term, _) = unsafe { env.binary_to_term_trusted(frame) }?;
        let (reply_ref, standin, group_leader, namespace, job_id, request): (
            Term,
            LocalPid,
            LocalPid,
            u64,
            u64,
            Term,
        ) = term.decode().ok()?;
        Some((
            owned.save(reply_ref),
            standin,
            group_leader,
            namespace,
            job_id,
            owned.save(request),
        ))
    });
    let Some((reply_ref, standin, group_leader, namespace, job_id, request)) = parts else {
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
        env: owned,
        caller: standin,
        group_leader,
        namespace,
        handle,
        queued_at: std::time::Instant::now(),
        watched: false,
        link: Some((link.clone(), job_id)),
    };
    // A closed context drops the job; its stand-in answers the caller.
    let _ = context.submit(job);
}
