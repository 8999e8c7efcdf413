//! Observability plumbing: Python log records and trace spans on their way
//! to Elixir, the settings every interpreter reads at start-up (log level,
//! tracing, the fork policy, the process guard), and the sink for events from Python threads
//! that run outside any call.
//!
//! An event raised by code running in a call goes to the process that made
//! the call, tagged with the call's reference (`{ref, :py_event, kind,
//! payload}`), before the call's reply: that process logs it or runs the
//! trace handlers, with its own Logger metadata. An event from any other
//! Python thread goes to the sink process (`{:py_event, kind, payload}`).
//! Both sends happen on threads the BEAM does not own (a runner, or a thread
//! Python started), where `OwnedEnv::send_and_clear` is legal.
use crate::atoms;
use crate::builtins::{self, builtin, MethodDef};
use crate::convert::to_term_in;
use crate::interp::changes::Changes;
use crate::io;
use crate::worker;
use parking_lot::RwLock;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};
use rustler::env::SavedTerm;
use rustler::{Encoder, LocalPid, OwnedEnv};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// Python's level number below which records are not forwarded; -1: off.
static LOG_LEVEL: AtomicI64 = AtomicI64::new(30);
/// Level changes; each thread applies one it has not seen before its next
/// job.
static LOG_CHANGES: Changes = Changes::new(&LOG_APPLIED);
static TRACING: AtomicBool = AtomicBool::new(false);
static ALLOW_FORK: AtomicBool = AtomicBool::new(false);
static ALLOW_PROCESS_EXIT: AtomicBool = AtomicBool::new(false);
static SPAN_IDS: AtomicU64 = AtomicU64::new(1);
static SINK: RwLock<Option<LocalPid>> = RwLock::new(None);

thread_local! {
    static LOG_APPLIED: Cell<u64> = const { Cell::new(0) };
}

/// Settings read by each interpreter as it starts (call before the runtime
/// starts for `allow_fork` and `allow_process_exit` to apply everywhere).
pub fn configure(log_level: i64, tracing: bool, allow_fork: bool, allow_process_exit: bool) {
    set_log_level(log_level);
    TRACING.store(tracing, Ordering::Release);
    ALLOW_FORK.store(allow_fork, Ordering::Release);
    ALLOW_PROCESS_EXIT.store(allow_process_exit, Ordering::Release);
    default_child_signals();
}

/// The BEAM ignores SIGCHLD and SIGFPE (SIG_IGN). With SIGCHLD ignored the
/// kernel reaps every child at once, so waitpid() in Python (subprocess,
/// os.system) fails with ECHILD and the exit status is lost (subprocess then
/// reports 0); and an ignored signal stays ignored across exec in every
/// program Python starts. Both go back to SIG_DFL: for SIGCHLD that still
/// means "ignore", without the reaping (the BEAM's only child is its
/// erl_child_setup, which lives as long as the VM); a SIGFPE from a fault is
/// delivered whatever the disposition, so only a SIGFPE sent by kill()
/// changes. A disposition other than SIG_IGN (a handler set with
/// os:set_signal/2) is left alone.
fn default_child_signals() {
    for signal in [libc::SIGCHLD, libc::SIGFPE] {
        // SAFETY: sigaction with valid pointers to zeroed, then filled, structs.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction != libc::SIG_IGN
            {
                continue;
            }
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut dfl.sa_mask);
            libc::sigaction(signal, &dfl, std::ptr::null_mut());
        }
    }
}

pub fn set_log_level(level: i64) {
    LOG_LEVEL.store(level, Ordering::Release);
    LOG_CHANGES.note();
}

pub fn set_tracing(on: bool) {
    TRACING.store(on, Ordering::Release);
}

pub fn allow_fork() -> bool {
    ALLOW_FORK.load(Ordering::Acquire)
}

pub fn sink() -> Option<LocalPid> {
    *SINK.read()
}

pub fn set_sink(pid: Option<LocalPid>) {
    *SINK.write() = pid;
}

/// Called by a runner before each job: applies a log level change this
/// thread has not applied yet (an atomic load when nothing changed).
pub fn sync(py: Python<'_>) {
    if !LOG_CHANGES.take() {
        return;
    }
    let applied = crate::builtins::erlang_attr(py, "_apply_logging").and_then(|f| f.call0());
    if let Err(err) = applied {
        // Leave the interpreter's logging as it was; say why once.
        eprintln!(
            "py: cannot apply the log level: {}",
            crate::error::describe(py, &err)
        );
    }
}

/// Called by a slot thread before its sub-interpreter ends.
#[cfg(all(feature = "parallel", Py_3_12))]
pub fn before_interpreter_end(py: Python<'_>) {
    let _ = crate::builtins::erlang_attr(py, "_forget_thread").and_then(|f| f.call0());
}

/// Sends an event to the process that made the running call, or to the
/// sink outside calls. False when nobody could take it.
fn emit(py: Python<'_>, kind: rustler::Atom, payload: &Bound<'_, PyAny>) -> PyResult<bool> {
    // Convert first, outside the job frame's borrow: a failing conversion
    // may run Python code (a repr), which may write to stdout (the frame).
    let runner = worker::current_runner();
    let converted = OwnedEnv::new();
    let saved = converted.run(
        |env| match to_term_in(py, env, payload, runner.as_ref(), 0) {
            Ok(term) => Ok(converted.save(term)),
            Err(f) => Err(f.describe(py)),
        },
    );
    let saved = saved.map_err(|text| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "the event cannot cross into Elixir: {text}"
        ))
    })?;
    let sent = io::with_frame(|frame| {
        // A caller that timed out has stopped listening: the sink takes it.
        frame.state.clone().send_to_caller(false, || {
            EVENTS.with(|n| n.set(n.get() + 1));
            let mut env = OwnedEnv::new();
            env.send_and_clear(&frame.caller, |env| {
                let tag = io::reply_ref_in(frame, env);
                (
                    tag,
                    atoms::py_event(),
                    kind,
                    copy_into(&converted, &saved, env),
                )
                    .encode(env)
            })
            .is_ok()
        })
    });
    if sent == Some(true) {
        return Ok(true);
    }
    let Some(sink) = *SINK.read() else {
        return Ok(false);
    };
    let mut env = OwnedEnv::new();
    Ok(env
        .send_and_clear(&sink, |env| {
            (atoms::py_event(), kind, copy_into(&converted, &saved, env)).encode(env)
        })
        .is_ok())
}

/// A copy, made in `env`, of a term saved in another env.
fn copy_into<'a>(from: &OwnedEnv, saved: &SavedTerm, env: rustler::Env<'a>) -> rustler::Term<'a> {
    from.run(|own| saved.load(own).in_env(env))
}

// ------------------------------------------------------------ builtins

static SPAN_BEGIN_DEF: MethodDef = MethodDef::new(
    c"_span_begin",
    span_begin_impl,
    c"_span_begin() -> a new span id, or 0 when tracing is off: internal",
);

builtin!(
    EMIT_DEF,
    c"_emit",
    c"_emit(kind, payload): internal",
    |py, args| {
        let kind = match args.get_item(0)?.extract::<i64>()? {
            0 => atoms::log(),
            1 => atoms::span(),
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown event kind {other}"
                )))
            }
        };
        let sent = emit(py, kind, &args.get_item(1)?)?;
        Ok(PyBool::new(py, sent).to_owned().into_any().unbind())
    }
);

builtin!(
    SETTINGS_DEF,
    c"_settings",
    c"_settings() -> (log_level, allow_fork, allow_process_exit): internal",
    |py, _| {
        let level = LOG_LEVEL.load(Ordering::Acquire);
        let exit = ALLOW_PROCESS_EXIT.load(Ordering::Acquire);
        let value = (level, allow_fork(), exit).into_pyobject(py)?;
        Ok(value.into_any().unbind())
    }
);

unsafe extern "C" fn span_begin_impl(
    _s: *mut ffi::PyObject,
    _a: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let id = if TRACING.load(Ordering::Relaxed) {
        SPAN_IDS.fetch_add(1, Ordering::Relaxed)
    } else {
        0
    };
    // SAFETY: called by CPython with the GIL held.
    ffi::PyLong_FromUnsignedLongLong(id)
}

/// Adds the builtins to the `erlang` module's dict and runs the Python half
/// (`observe.py`) there. Runs in every interpreter.
pub fn install(py: Python<'_>, dict: &Bound<'_, PyDict>) -> PyResult<()> {
    builtins::install(
        py,
        dict,
        &[
            ("_emit", &EMIT_DEF),
            ("_settings", &SETTINGS_DEF),
            ("_span_begin", &SPAN_BEGIN_DEF),
        ],
    )?;
    builtins::run_part(py, dict, include_str!("observe.py"), "observe.py")?;
    Ok(())
}

thread_local! {
    /// Events sent to callers from this thread so far (a reply over a link
    /// must not overtake them; see `worker.rs`).
    static EVENTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Events sent to callers from this thread so far.
pub fn events_sent() -> u64 {
    EVENTS.with(|n| n.get())
}
