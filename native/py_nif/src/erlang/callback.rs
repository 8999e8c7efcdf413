//! The `erlang` module's way back into the BEAM: calls to registered
//! Elixir functions, `erlang.send`, `erlang.self`.
//!
//! A call sends `{reply_ref, :callback, handle, name, args}` to the process
//! that made the running call (it waits in `receive` and runs the function
//! in a process of its own); the answer comes back through
//! `callback_reply/2` as a message on this runner's queue. While it waits,
//! the runner keeps serving its queue, so Elixir code in the callback can
//! call Python again on the same context, to any depth. Once the caller
//! has started that process, the call's later callbacks go to it directly,
//! as `{:py_callback, handle, name, args}` (`callback_route`).
use crate::atoms;
use crate::builtins::{self, builtin};
use crate::convert::{to_py, to_term_in};
use crate::interp::changes::Changes;
use crate::io;
use crate::thread_route;
use crate::worker::{self, Msg, Runner};
use parking_lot::RwLock;
use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rustler::env::SavedTerm;
use rustler::types::tuple::get_tuple;
use rustler::{Atom, Encoder, LocalPid, OwnedEnv, Resource, ResourceArc};
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

static NAMES: RwLock<Option<HashSet<String>>> = RwLock::new(None);

pub fn register(name: String) {
    NAMES.write().get_or_insert_with(HashSet::new).insert(name);
}

pub fn unregister(name: &str) {
    if let Some(names) = NAMES.write().as_mut() {
        names.remove(name);
    }
    UNREGISTERED.note();
}

/// Unregistrations: the `erlang` module keeps the function it made for a
/// registered name (see `__getattr__` in bootstrap.py), which must go when
/// the name does.
static UNREGISTERED: Changes = Changes::new(&UNREGISTERED_APPLIED);

thread_local! {
    static UNREGISTERED_APPLIED: Cell<u64> = const { Cell::new(0) };
}

/// Called by a runner before each job: drops the functions kept for names
/// unregistered since this thread last looked.
pub fn sync(py: Python<'_>) {
    if UNREGISTERED.take() {
        builtins::call_erlang_quietly(py, "_forget_unregistered");
    }
}

fn registered(name: &str) -> bool {
    NAMES.read().as_ref().is_some_and(|n| n.contains(name))
}

/// Where a callback's answer goes.
pub struct CallbackRes {
    runner: Arc<Runner>,
    id: u64,
    /// Set once an answer was delivered: the process that ran the callback
    /// may serve the call's next one (see `Py.Callbacks`).
    answered: AtomicBool,
}

impl CallbackRes {
    pub fn answered(&self) -> bool {
        self.answered.load(Ordering::Acquire)
    }
}

#[rustler::resource_impl]
impl Resource for CallbackRes {}

/// Delivers a callback's answer (`{:ok, value}` or `{:error, message}`).
pub fn reply(handle: &CallbackRes, result: rustler::Term) {
    handle.answered.store(true, Ordering::Release);
    let env = crate::interp::env_pool::take();
    let result = env.save(result);
    handle.runner.deliver(Msg::CallbackReply {
        id: handle.id,
        env,
        result,
    });
}

/// `internal` calls are py's own (the `erlang.state_*` functions): their
/// name goes to Elixir as `{:internal, name}`, which no registered function
/// can be, and the calling process serves them itself.
fn call(
    py: Python<'_>,
    name: String,
    args: &Bound<'_, PyTuple>,
    internal: bool,
) -> PyResult<Py<PyAny>> {
    if !internal && !registered(&name) {
        return Err(builtins::erlang_error(
            py,
            "UnknownFunctionError",
            format!(
                "no Elixir function is registered as {name:?}; register it with Py.register_function/2"
            ),
        ));
    }
    let outside = || {
        let what = if internal {
            format!("erlang.{name}")
        } else {
            "erlang.call".to_string()
        };
        PyRuntimeError::new_err(format!(
            "{what} runs only inside a call from Elixir (not in a thread that Python code started)"
        ))
    };
    // A thread Python code started (it runs no job): the event sink
    // process serves the call, and the thread waits without the GIL.
    let in_job = io::with_frame(|_| ()).is_some();
    if !in_job {
        return call_via_sink(py, &name, args, internal);
    }
    let runner = worker::current_runner().ok_or_else(outside)?;
    let id = worker::next_id();
    let handle = ResourceArc::new(CallbackRes {
        runner: runner.clone(),
        id,
        answered: AtomicBool::new(false),
    });
    // Convert first, outside the job frame's borrow: a failing conversion
    // may run Python code (a repr), which may print (and so use the frame).
    // The message is built in the arguments' env, and sent from it.
    let (mut converted, saved) = save_args(py, &name, args, Some(&runner))?;
    let sent = io::with_frame(|frame| {
        let state = frame.state.clone();
        // Not to a caller that has cancelled (it would be a stray message);
        // the wait below then ends at once with erlang.Interrupted.
        let sent = state.send_to_caller(false, || {
            // Once the caller started a process for the call's callbacks,
            // straight to it (see `callback_route`).
            let routed = !internal
                && state.callback_route.send(&handle, &name, |worker| {
                    let _ = converted.send_and_clear(worker, |env| {
                        let args = saved.load(env);
                        (
                            atoms::py_callback(),
                            handle.encode(env),
                            name.as_str(),
                            args,
                        )
                            .encode(env)
                    });
                });
            routed
                || converted
                    .send_and_clear(&frame.caller, |env| {
                        let args = saved.load(env);
                        let target = if internal {
                            (atoms::internal(), name.as_str()).encode(env)
                        } else {
                            name.as_str().encode(env)
                        };
                        (
                            io::reply_ref_in(frame, env),
                            atoms::callback(),
                            handle.encode(env),
                            target,
                            args,
                        )
                            .encode(env)
                    })
                    .is_ok()
        });
        (sent || state.is_cancelled(), state)
    });
    crate::interp::env_pool::give(converted);
    let Some((sent, state)) = sent else {
        return Err(outside());
    };
    if !sent {
        return Err(builtins::erlang_error(
            py,
            "Error",
            "the calling Elixir process has exited".into(),
        ));
    }
    let Some((env, result)) = worker::await_callback(py, id, &state) else {
        return Err(builtins::erlang_error(
            py,
            "Interrupted",
            "the call was cancelled".into(),
        ));
    };
    let answer = decode_answer(py, &name, &env, &result);
    crate::interp::env_pool::give(env);
    answer
}

/// A callback's answer, `{:ok, value}` or `{:error, message}`, as Python's
/// result or exception.
fn decode_answer(
    py: Python<'_>,
    name: &str,
    env: &OwnedEnv,
    result: &SavedTerm,
) -> PyResult<Py<PyAny>> {
    env.run(|env| {
        let result = result.load(env);
        let parts = get_tuple(result).unwrap_or_default();
        match parts.as_slice() {
            [tag, value] if tag.decode::<Atom>().ok() == Some(atoms::ok()) => {
                to_py(py, *value, 0).map(|v| v.unbind()).map_err(|f| {
                    let text = f.describe(py);
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "the result of erlang.{name} cannot cross into Python: {text}"
                    ))
                })
            }
            [_, message] => Err(builtins::erlang_error(
                py,
                "Error",
                message
                    .decode::<String>()
                    .unwrap_or_else(|_| format!("{message:?}")),
            )),
            _ => Err(builtins::erlang_error(
                py,
                "Error",
                format!("bad answer: {result:?}"),
            )),
        }
    })
}

/// The answer to a call from a thread outside any call, and the process
/// that answered it.
type ThreadAnswer = (OwnedEnv, SavedTerm, LocalPid);

/// Where the answer to a call from a thread outside any call goes: the
/// waiting thread's channel.
pub struct ThreadReplyRes(parking_lot::Mutex<Option<flume::Sender<ThreadAnswer>>>);

#[rustler::resource_impl]
impl Resource for ThreadReplyRes {}

/// Delivers an answer to a waiting thread; `server` is the process that
/// answered (a registered function's: it serves the thread's next call).
pub fn thread_reply(handle: &ThreadReplyRes, result: rustler::Term, server: LocalPid) {
    if let Some(tx) = handle.0.lock().take() {
        let env = crate::interp::env_pool::take();
        let saved = env.save(result);
        let _ = tx.send((env, saved, server));
    }
}

/// The arguments of `erlang.<name>(...)` as an Elixir list, saved in an env
/// of their own (objects without a counterpart become handles owned by
/// `owner`'s thread).
fn save_args(
    py: Python<'_>,
    name: &str,
    args: &Bound<'_, PyTuple>,
    owner: Option<&Arc<Runner>>,
) -> PyResult<(OwnedEnv, SavedTerm)> {
    let converted = crate::interp::env_pool::take();
    let saved = converted.run(|env| match to_term_in(py, env, args.as_any(), owner, 0) {
        Ok(args) => {
            let args = match get_tuple(args) {
                Ok(items) => items.encode(env),
                Err(_) => args,
            };
            Ok(converted.save(args))
        }
        Err(f) => Err(f.describe(py)),
    });
    let saved = saved.map_err(|term| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "cannot pass the arguments of erlang.{name} to Elixir: {term}"
        ))
    })?;
    Ok((converted, saved))
}

/// The most a thread polls for a callback's answer before it sleeps.
const THREAD_ANSWER_SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// A call into Elixir from a thread that runs no job (a thread Python code
/// started: `threading`, `concurrent.futures`, a library's): the event sink
/// process serves it (py's own functions at once, a registered function in
/// a process of its own, which then serves the thread's later calls, so
/// calls from several threads run concurrently; see `thread_route`), while
/// this thread waits without the GIL.
fn call_via_sink(
    py: Python<'_>,
    name: &str,
    args: &Bound<'_, PyTuple>,
    internal: bool,
) -> PyResult<Py<PyAny>> {
    let Some(sink) = crate::observe::sink() else {
        return Err(builtins::erlang_error(
            py,
            "Error",
            format!(
                "erlang.{name}: py's event sink is not running (is the :py application started?)"
            ),
        ));
    };
    let (converted, saved) = save_args(py, name, args, None)?;
    let (tx, rx) = flume::bounded(1);
    let handle = ResourceArc::new(ThreadReplyRes(parking_lot::Mutex::new(Some(tx))));
    // A thread started during a call that still runs: the callback's
    // output goes to that call's group leader.
    let group_leader = crate::threads::group_leader();
    let mut env = crate::interp::env_pool::take();
    let mut send_to = |to: &LocalPid| {
        env.send_and_clear(to, |env| {
            let args = converted.run(|own| saved.load(own).in_env(env));
            if internal {
                (atoms::py_state(), handle.encode(env), name, args).encode(env)
            } else {
                let group_leader = match group_leader {
                    Some(pid) => pid.encode(env),
                    None => atoms::nil().encode(env),
                };
                (
                    atoms::py_thread_call(),
                    handle.encode(env),
                    name,
                    args,
                    group_leader,
                )
                    .encode(env)
            }
        })
    };
    // The process that served this thread's last call, else the sink (see
    // `thread_route`).
    let server = if internal {
        None
    } else {
        thread_route::server()
    };
    let sent = match server {
        Some(server) if send_to(&server).is_ok() => Ok(()),
        Some(_) => {
            thread_route::forget();
            send_to(&sink)
        }
        None => send_to(&sink),
    };
    // If the sink drops the request, the handle (and the sender) go with it.
    drop(handle);
    crate::interp::env_pool::give(env);
    crate::interp::env_pool::give(converted);
    if sent.is_err() {
        return Err(builtins::erlang_error(
            py,
            "Error",
            format!("erlang.{name}: py's event sink has exited"),
        ));
    }
    // SAFETY: attached on entry; nothing touches Python while detached.
    let answer = unsafe {
        let tstate = ffi::PyEval_SaveThread();
        // Polled for this thread's learned budget first, as a runner polls
        // its queue (see `interp::spin`): a thread making callbacks back to
        // back skips a futex sleep per answer on a quiet machine.
        let answer = crate::interp::spin::recv(&rx, THREAD_ANSWER_SPIN);
        ffi::PyEval_RestoreThread(tstate);
        answer
    };
    match answer {
        Ok((env, result, server)) => {
            if !internal {
                thread_route::answered_by(server);
            }
            let answer = decode_answer(py, name, &env, &result);
            crate::interp::env_pool::give(env);
            answer
        }
        Err(_) => {
            // The process that had the call ended without answering: the
            // next call goes to the sink again.
            thread_route::forget();
            Err(builtins::erlang_error(
                py,
                "Error",
                format!("erlang.{name}: the process serving this call ended before it answered"),
            ))
        }
    }
}

fn send(py: Python<'_>, pid: &Bound<'_, PyAny>, message: &Bound<'_, PyAny>) -> PyResult<()> {
    // On a thread Python code started there is no runner: values convert
    // as usual, but no object handle can be made.
    let runner = worker::current_runner();
    let mut owned = OwnedEnv::new();
    // A pid of this node is sent to directly; one of another node (an
    // isolated context's caller is on the origin) goes through py's event
    // sink, which sends it from Erlang.
    let target = owned.run(|env| {
        let term = to_term_in(py, env, pid, runner.as_ref(), 0).ok()?;
        match term.decode::<LocalPid>() {
            Ok(local) => Some((local, None)),
            Err(_) if term.get_type() == rustler::TermType::Pid => {
                Some((crate::observe::sink()?, Some(owned.save(term))))
            }
            Err(_) => None,
        }
    });
    let Some((target, remote)) = target else {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "erlang.send needs an erlang.Pid as its first argument",
        ));
    };
    let mut failure = None;
    // Sending to a dead process is not an error, as in Erlang.
    let _ = owned.send_and_clear(&target, |env| {
        let message = match to_term_in(py, env, message, runner.as_ref(), 0) {
            Ok(term) => term,
            Err(f) => {
                failure = Some(f.describe(py));
                atoms::nil().encode(env)
            }
        };
        match &remote {
            Some(to) => (atoms::py_send(), to.load(env), message).encode(env),
            None => message,
        }
    });
    match failure {
        None => Ok(()),
        Some(text) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "erlang.send: the message cannot cross into Elixir: {text}"
        ))),
    }
}

fn self_pid(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let env = OwnedEnv::new();
    let made = env.run(|env| {
        io::with_frame(|frame| {
            to_py(py, io::self_in(frame, env), 0)
                .map(|p| p.unbind())
                .map_err(|_| PyRuntimeError::new_err("cannot make an erlang.Pid"))
        })
    });
    made.unwrap_or_else(|| {
        // A thread Python code started during a call: that call's process.
        env.run(|env| match crate::threads::self_in(env) {
            Some(pid) => to_py(py, pid, 0)
                .map(|p| p.unbind())
                .map_err(|_| PyRuntimeError::new_err("cannot make an erlang.Pid")),
            None => Err(PyRuntimeError::new_err(
                "erlang.self runs only inside a call from Elixir, or in a thread started during one",
            )),
        })
    })
}

// ------------------------------------------------------------ builtins

builtin!(
    CALL_DEF,
    c"_call",
    c"_call(name, args): internal",
    |py, args| {
        let name: String = args.get_item(0)?.extract()?;
        let rest = args.get_item(1)?;
        let rest = rest.cast::<PyTuple>().map_err(PyErr::from)?;
        call(py, name, rest, false)
    }
);

builtin!(
    CALL_INTERNAL_DEF,
    c"_call_internal",
    c"_call_internal(name, args): internal",
    |py, args| {
        let name: String = args.get_item(0)?.extract()?;
        let rest = args.get_item(1)?;
        let rest = rest.cast::<PyTuple>().map_err(PyErr::from)?;
        call(py, name, rest, true)
    }
);

builtin!(
    SEND_DEF,
    c"_send",
    c"_send(pid, term): internal",
    |py, args| {
        send(py, &args.get_item(0)?, &args.get_item(1)?)?;
        Ok(py.None())
    }
);

builtin!(SELF_DEF, c"_self", c"_self(): internal", |py, _| self_pid(
    py
));

builtin!(
    REGISTERED_DEF,
    c"_registered",
    c"_registered(name): internal",
    |py, args| {
        let name: String = args.get_item(0)?.extract()?;
        Ok(pyo3::types::PyBool::new(py, registered(&name))
            .to_owned()
            .into_any()
            .unbind())
    }
);

/// Adds the builtins to the `erlang` module's dict (in any interpreter).
pub fn install(py: Python<'_>, dict: &Bound<'_, PyDict>) -> PyResult<()> {
    builtins::install(
        py,
        dict,
        &[
            ("_call", &CALL_DEF),
            ("_call_internal", &CALL_INTERNAL_DEF),
            ("_send", &SEND_DEF),
            ("_self", &SELF_DEF),
            ("_registered", &REGISTERED_DEF),
        ],
    )
}
