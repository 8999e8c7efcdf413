//! Python threads that run no job: who they speak for, and how a service
//! thread is told to stop.
//!
//! A thread Python code starts during a call (`threading.Thread.start`,
//! patched in `threads.py`) adopts that call's *origin*: its output goes to
//! the call's group leader while the call runs (counted, like the call's
//! own output, so it is complete when the call returns), then to the group
//! leader of a later process (the context's owner, or a service's watcher)
//! through py's event sink; `erlang.self()` names the call's process. The
//! origin copies what it needs out of the job, so it outlives the job.
//!
//! A service thread (see `Py.Service`) also holds a *stop token*: a wait on
//! a channel or buffer in that thread ends when the token is set, as a
//! job's does when it is cancelled (see `blocking`).
use crate::atoms;
use crate::builtins::{self, builtin};
use crate::io;
use crate::job::JobState;
use crate::worker;
use parking_lot::Mutex;
use pyo3::ffi;
use pyo3::prelude::*;
use rustler::env::SavedTerm;
use rustler::{Encoder, LocalPid, OwnedEnv};
use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const FLUSH_AT: usize = 8 * 1024;

/// The call a thread was started in.
pub struct Origin {
    caller: LocalPid,
    group_leader: LocalPid,
    call: Arc<JobState>,
    /// The process whose group leader gets the output once the call is over.
    later: Option<LocalPid>,
    /// The call's reply reference and identity, copied into an env of
    /// their own.
    saved: Mutex<Saved>,
}

struct Saved {
    env: OwnedEnv,
    reply_ref: SavedTerm,
    identity: Option<SavedTerm>,
}

/// Set to stop a service thread; waits register under `id`.
pub struct StopToken {
    pub id: u64,
    stopped: AtomicBool,
    /// The service runs its event loop: a stop cancels its main task (an
    /// exception raised into the loop's own code would break the loop).
    in_loop: AtomicBool,
}

/// Stop tokens alive (one per service): when none, there is nothing to stop.
static TOKENS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for StopToken {
    fn drop(&mut self) {
        TOKENS.fetch_sub(1, Ordering::SeqCst);
    }
}

impl StopToken {
    pub fn is_set(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

struct Adopted {
    origin: Arc<Origin>,
    buf: Vec<u8>,
}

thread_local! {
    static ADOPTED: RefCell<Option<Adopted>> = const { RefCell::new(None) };
    static STOP: RefCell<Option<Arc<StopToken>>> = const { RefCell::new(None) };
}

/// The stop token of this thread, if it runs a service.
pub fn stop_token() -> Option<Arc<StopToken>> {
    STOP.with(|s| s.borrow().clone())
}

/// The origin of the running call, if this thread runs one; else the one
/// this thread adopted. `later`: where output goes after the call (a
/// service's watcher) instead of the context owner's group leader.
fn current_origin(later: Option<LocalPid>) -> Option<Arc<Origin>> {
    let from_frame = io::with_frame(|frame| {
        let env = OwnedEnv::new();
        let (reply_ref, identity) = env.run(|e| {
            let reply_ref = env.save(io::reply_ref_in(frame, e));
            let identity = io::identity_in(frame, e).map(|id| env.save(id));
            (reply_ref, identity)
        });
        Arc::new(Origin {
            caller: frame.caller,
            group_leader: frame.group_leader,
            call: frame.state.clone(),
            later: later.or(frame.state.ctx.owner),
            saved: Mutex::new(Saved {
                env,
                reply_ref,
                identity,
            }),
        })
    });
    from_frame.or_else(|| ADOPTED.with(|a| a.borrow().as_ref().map(|a| a.origin.clone())))
}

impl Origin {
    /// Sends `text` to the call's group leader while the call runs, else to
    /// the later process's group leader through the sink; to the OS process's
    /// stdout when neither can take it.
    fn output(&self, text: Vec<u8>) {
        let sent = self.call.send_while_running(|| {
            let saved = self.saved.lock();
            let mut env = OwnedEnv::new();
            env.send_and_clear(&self.group_leader, |env| {
                let reply_ref = saved.env.run(|own| saved.reply_ref.load(own).in_env(env));
                (
                    atoms::io_request(),
                    self.caller,
                    reply_ref,
                    (atoms::put_chars(), atoms::unicode(), binary(env, &text)),
                )
                    .encode(env)
            })
            .is_ok()
        });
        if sent {
            return;
        }
        if let (Some(sink), Some(later)) = (crate::observe::sink(), self.later) {
            let mut env = OwnedEnv::new();
            let sent = env.send_and_clear(&sink, |env| {
                (atoms::py_output(), later, binary(env, &text)).encode(env)
            });
            if sent.is_ok() {
                return;
            }
        }
        let _ = std::io::stdout().write_all(&text);
    }

    fn self_in<'a>(&self, env: rustler::Env<'a>) -> rustler::Term<'a> {
        let saved = self.saved.lock();
        match &saved.identity {
            Some(identity) => saved.env.run(|own| identity.load(own).in_env(env)),
            None => self.caller.encode(env),
        }
    }
}

fn binary<'a>(env: rustler::Env<'a>, bytes: &[u8]) -> rustler::Term<'a> {
    let mut bin = rustler::NewBinary::new(env, bytes.len());
    bin.as_mut_slice().copy_from_slice(bytes);
    let bin: rustler::Binary = bin.into();
    bin.encode(env)
}

fn flush(adopted: &mut Adopted) {
    if !adopted.buf.is_empty() {
        let text = std::mem::take(&mut adopted.buf);
        adopted.origin.output(text);
    }
}

/// Appends output of this thread; false when it adopted no origin.
pub fn write(text: &[u8]) -> bool {
    ADOPTED.with(|a| {
        let mut guard = a.borrow_mut();
        let Some(adopted) = guard.as_mut() else {
            return false;
        };
        adopted.buf.extend_from_slice(text);
        if adopted.buf.len() >= FLUSH_AT || text.contains(&b'\n') {
            flush(adopted);
        }
        true
    })
}

/// The pid `erlang.self()` names in a thread that adopted an origin.
pub fn self_in<'a>(env: rustler::Env<'a>) -> Option<rustler::Term<'a>> {
    ADOPTED.with(|a| a.borrow().as_ref().map(|a| a.origin.self_in(env)))
}

/// The group leader a callback from this thread should use: the call's
/// while it runs.
pub fn group_leader() -> Option<LocalPid> {
    ADOPTED.with(|a| {
        a.borrow()
            .as_ref()
            .filter(|a| a.origin.call.is_running())
            .map(|a| a.origin.group_leader)
    })
}

fn capsule_or_none(py: Python<'_>, origin: Option<Arc<Origin>>) -> PyResult<Py<PyAny>> {
    match origin {
        Some(origin) => Ok(builtins::capsule(py, &origin, ORIGIN)?.unbind()),
        None => Ok(py.None()),
    }
}

fn local_pid(py: Python<'_>, pid: &Bound<'_, PyAny>) -> Option<LocalPid> {
    let env = OwnedEnv::new();
    env.run(|env| {
        crate::convert::to_term_in(py, env, pid, None, 0)
            .ok()
            .and_then(|term| term.decode::<LocalPid>().ok())
    })
}

/// None for Python's None, else the capsule's value.
fn optional_capsule<T>(
    obj: &Bound<'_, PyAny>,
    name: &'static std::ffi::CStr,
) -> PyResult<Option<Arc<T>>> {
    if obj.is_none() {
        Ok(None)
    } else {
        builtins::from_capsule::<T>(obj, name).map(Some)
    }
}

const ORIGIN: &std::ffi::CStr = c"erlang.origin";
const STOP_TOKEN: &std::ffi::CStr = c"erlang.stop_token";

builtin!(
    ORIGIN_DEF,
    c"_origin",
    c"_origin(later=None): internal, the running call's origin or None",
    |py, args| {
        let later = match args.get_item(0) {
            // A pid of another node (the watcher of a service in an
            // isolated context): the owner's group leader, here.
            Ok(pid) if !pid.is_none() => local_pid(py, &pid),
            _ => None,
        };
        capsule_or_none(py, current_origin(later))
    }
);

builtin!(
    ADOPT_DEF,
    c"_adopt",
    c"_adopt(origin or None): internal, returns the origin adopted before",
    |py, args| {
        let origin = optional_capsule::<Origin>(&args.get_item(0)?, ORIGIN)?;
        let before = ADOPTED.with(|a| {
            let mut guard = a.borrow_mut();
            if let Some(adopted) = guard.as_mut() {
                flush(adopted);
            }
            let before = guard.take().map(|a| a.origin);
            *guard = origin.map(|origin| Adopted {
                origin,
                buf: Vec::new(),
            });
            before
        });
        capsule_or_none(py, before)
    }
);

builtin!(
    STOP_TOKEN_DEF,
    c"_stop_token",
    c"_stop_token(): internal, a new service stop token",
    |py, _| {
        TOKENS.fetch_add(1, Ordering::SeqCst);
        let token = Arc::new(StopToken {
            id: worker::next_id(),
            stopped: AtomicBool::new(false),
            in_loop: AtomicBool::new(false),
        });
        Ok(builtins::capsule(py, &token, STOP_TOKEN)?.unbind())
    }
);

builtin!(
    STOP_ENTER_DEF,
    c"_stop_enter",
    c"_stop_enter(token or None): internal, the stop token of this thread",
    |py, args| {
        let token = optional_capsule::<StopToken>(&args.get_item(0)?, STOP_TOKEN)?;
        if token.is_none() {
            // A stop's exception that the service ended without.
            clear_async_exception();
        }
        STOP.with(|s| *s.borrow_mut() = token);
        Ok(py.None())
    }
);

builtin!(
    STOP_SET_DEF,
    c"_stop_set",
    c"_stop_set(token, thread_ident): internal, stops a service thread",
    |py, args| {
        let token = builtins::from_capsule::<StopToken>(&args.get_item(0)?, STOP_TOKEN)?;
        token.stopped.store(true, Ordering::SeqCst);
        crate::blocking::wake_job(token.id);
        // Python code of the thread raises erlang.Interrupted at its next
        // bytecode (a wait in native code ends through the token). Under
        // the GIL, as `_stop_loop` is: one of the two sees the other.
        let ident = args.get_item(1).and_then(|i| i.extract::<u64>());
        if let (Ok(ident), false) = (ident, token.in_loop.load(Ordering::SeqCst)) {
            let class = py.import("erlang")?.getattr("Interrupted")?;
            // SAFETY: attached to the interpreter the thread runs in (the
            // token's thread was started from it); `class` lives there.
            unsafe {
                ffi::PyThreadState_SetAsyncExc(ident as _, class.as_ptr());
            }
        }
        Ok(py.None())
    }
);

builtin!(
    STOP_LOOP_DEF,
    c"_stop_loop",
    c"_stop_loop(token): internal, the service enters its event loop; true if stopped already",
    |py, args| {
        let token = builtins::from_capsule::<StopToken>(&args.get_item(0)?, STOP_TOKEN)?;
        token.in_loop.store(true, Ordering::SeqCst);
        let stopped = token.is_set();
        if stopped {
            clear_async_exception();
        }
        Ok(pyo3::types::PyBool::new(py, stopped)
            .to_owned()
            .into_any()
            .unbind())
    }
);

/// Clears this thread's pending async exception (a stop's). Attached.
pub fn clear_async_exception() {
    // SAFETY: attached (a builtin's body).
    unsafe {
        ffi::PyThreadState_SetAsyncExc(ffi::PyThread_get_thread_ident() as _, std::ptr::null_mut());
    }
}

builtin!(
    CONTEXT_ID_DEF,
    c"_context_id",
    c"_context_id(): internal, the id of the context of the running call",
    |py, _| {
        let id = io::with_frame(|frame| frame.state.ctx.id).unwrap_or(0);
        Ok(id.into_pyobject(py)?.into_any().unbind())
    }
);

/// Stops the services of context `context` (every service when None) and
/// waits a little for their threads. On a runner thread, attached.
pub fn stop_services(py: Python<'_>, context: Option<u64>, runner_thread: bool) {
    if TOKENS.load(Ordering::SeqCst) == 0 {
        return;
    }
    let stop = py
        .import("erlang")
        .and_then(|m| m.getattr("_services_stop"))
        .and_then(|f| f.call1((context, runner_thread)));
    if let Err(err) = stop {
        err.print(py);
    }
}

/// Adds the builtins to the `erlang` module's dict and runs the Python half
/// (`threads.py`) there. Runs in every interpreter.
pub fn install(py: Python<'_>, dict: &Bound<'_, pyo3::types::PyDict>) -> PyResult<()> {
    builtins::install(
        py,
        dict,
        &[
            ("_origin", &ORIGIN_DEF),
            ("_adopt", &ADOPT_DEF),
            ("_stop_token", &STOP_TOKEN_DEF),
            ("_stop_enter", &STOP_ENTER_DEF),
            ("_stop_set", &STOP_SET_DEF),
            ("_stop_loop", &STOP_LOOP_DEF),
            ("_context_id", &CONTEXT_ID_DEF),
        ],
    )?;
    builtins::run_part(py, dict, include_str!("threads.py"), "threads.py")
}
