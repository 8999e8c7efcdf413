//! The `erlang` module's way back into the BEAM: calls to registered
//! Elixir functions, `erlang.send`, `erlang.self`.
//!
//! A call sends `{reply_ref, :callback, handle, name, args}` to the process
//! that made the running call (it waits in `receive` and runs the function
//! in a process of its own); the answer comes back through
//! `callback_reply/2` as a message on this runner's queue. While it waits,
//! the runner keeps serving its queue, so Elixir code in the callback can
//! call Python again on the same context, to any depth.
use crate::atoms;
use crate::convert::{to_py, to_term, to_term_in};
use crate::io;
use crate::worker::{self, Msg, Runner};
use parking_lot::RwLock;
use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use rustler::env::SavedTerm;
use rustler::types::tuple::get_tuple;
use rustler::{Atom, Encoder, LocalPid, OwnedEnv, Resource, ResourceArc};
use std::collections::HashSet;
use std::os::raw::c_char;
use std::sync::Arc;

static NAMES: RwLock<Option<HashSet<String>>> = RwLock::new(None);

pub fn register(name: String) {
    NAMES.write().get_or_insert_with(HashSet::new).insert(name);
}

pub fn unregister(name: &str) {
    if let Some(names) = NAMES.write().as_mut() {
        names.remove(name);
    }
}

fn registered(name: &str) -> bool {
    NAMES.read().as_ref().is_some_and(|n| n.contains(name))
}

/// Where a callback's answer goes.
pub struct CallbackRes {
    runner: Arc<Runner>,
    id: u64,
}

#[rustler::resource_impl]
impl Resource for CallbackRes {}

/// Delivers a callback's answer (`{:ok, value}` or `{:error, message}`).
pub fn reply(handle: &CallbackRes, result: rustler::Term) {
    let env = OwnedEnv::new();
    let result = env.save(result);
    handle.runner.deliver(Msg::CallbackReply {
        id: handle.id,
        env,
        result,
    });
}

fn raise_from_erlang(py: Python<'_>, class: &str, message: String) -> PyErr {
    match py.import("erlang").and_then(|m| m.getattr(class)) {
        Ok(class) => match class.call1((message,)) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        },
        Err(e) => e,
    }
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
        return Err(raise_from_erlang(
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
    let in_job = io::with_frame(|_| ()).is_some();
    if internal && !in_job {
        return call_via_sink(py, &name, args);
    }
    let runner = worker::current_runner().ok_or_else(outside)?;
    let id = worker::next_id();
    let handle = ResourceArc::new(CallbackRes {
        runner: runner.clone(),
        id,
    });
    // Convert first, outside the job frame's borrow: a failing conversion
    // may run Python code (a repr), which may print (and so use the frame).
    let converted = OwnedEnv::new();
    let saved = converted.run(|env| match to_term(py, env, args.as_any(), &runner, 0) {
        Ok(args) => {
            let args = match get_tuple(args) {
                Ok(items) => items.encode(env),
                Err(_) => args,
            };
            Ok(converted.save(args))
        }
        Err(f) => Err(format!("{:?}", f.encode(py, env))),
    });
    let saved = saved.map_err(|term| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "cannot pass the arguments of erlang.{name} to Elixir: {term}"
        ))
    })?;
    let sent = io::with_frame(|frame| {
        let mut env = OwnedEnv::new();
        let state = frame.state.clone();
        let sent = env.send_and_clear(&frame.caller, |env| {
            let args = converted.run(|own| saved.load(own).in_env(env));
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
        });
        (sent.is_ok(), state)
    });
    let Some((sent, state)) = sent else {
        return Err(outside());
    };
    if !sent {
        return Err(raise_from_erlang(
            py,
            "Error",
            "the calling Elixir process has exited".into(),
        ));
    }
    let Some((env, result)) = worker::await_callback(py, id, &state) else {
        return Err(raise_from_erlang(
            py,
            "Interrupted",
            "the call was cancelled".into(),
        ));
    };
    decode_answer(py, &name, &env, &result)
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
                    let mut scratch = OwnedEnv::new();
                    let text = scratch.run(|e| format!("{:?}", f.encode(py, e)));
                    scratch.clear();
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "the result of erlang.{name} cannot cross into Python: {text}"
                    ))
                })
            }
            [_, message] => Err(raise_from_erlang(
                py,
                "Error",
                message
                    .decode::<String>()
                    .unwrap_or_else(|_| format!("{message:?}")),
            )),
            _ => Err(raise_from_erlang(
                py,
                "Error",
                format!("bad answer: {result:?}"),
            )),
        }
    })
}

/// Where the sink's answer to an internal call from a thread outside any
/// call goes: the waiting thread's channel.
pub struct ThreadReplyRes(parking_lot::Mutex<Option<flume::Sender<(OwnedEnv, SavedTerm)>>>);

#[rustler::resource_impl]
impl Resource for ThreadReplyRes {}

/// Delivers the sink's answer to a waiting thread.
pub fn thread_reply(handle: &ThreadReplyRes, result: rustler::Term) {
    if let Some(tx) = handle.0.lock().take() {
        let env = OwnedEnv::new();
        let saved = env.save(result);
        let _ = tx.send((env, saved));
    }
}

/// py's own functions (`erlang.state_*`) called from a thread that runs no
/// job (a thread Python code started): served by the event sink process,
/// while this thread waits without the GIL.
fn call_via_sink(py: Python<'_>, name: &str, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
    let Some(sink) = crate::observe::sink() else {
        return Err(raise_from_erlang(
            py,
            "Error",
            format!(
                "erlang.{name}: py's event sink is not running (is the :py application started?)"
            ),
        ));
    };
    let converted = OwnedEnv::new();
    let saved = converted.run(|env| match to_term_in(py, env, args.as_any(), None, 0) {
        Ok(args) => {
            let args = match get_tuple(args) {
                Ok(items) => items.encode(env),
                Err(_) => args,
            };
            Ok(converted.save(args))
        }
        Err(f) => Err(format!("{:?}", f.encode(py, env))),
    });
    let saved = saved.map_err(|term| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "cannot pass the arguments of erlang.{name} to Elixir: {term}"
        ))
    })?;
    let (tx, rx) = flume::bounded(1);
    let handle = ResourceArc::new(ThreadReplyRes(parking_lot::Mutex::new(Some(tx))));
    let mut env = OwnedEnv::new();
    let sent = env.send_and_clear(&sink, |env| {
        let args = converted.run(|own| saved.load(own).in_env(env));
        (atoms::py_state(), handle.encode(env), name, args).encode(env)
    });
    // If the sink drops the request, the handle (and the sender) go with it.
    drop(handle);
    if sent.is_err() {
        return Err(raise_from_erlang(
            py,
            "Error",
            format!("erlang.{name}: py's event sink has exited"),
        ));
    }
    // SAFETY: attached on entry; nothing touches Python while detached.
    let answer = unsafe {
        let tstate = ffi::PyEval_SaveThread();
        let answer = rx.recv();
        ffi::PyEval_RestoreThread(tstate);
        answer
    };
    match answer {
        Ok((env, result)) => decode_answer(py, name, &env, &result),
        Err(_) => Err(raise_from_erlang(
            py,
            "Error",
            format!("erlang.{name}: py's event sink stopped before it answered"),
        )),
    }
}

fn send(py: Python<'_>, pid: &Bound<'_, PyAny>, message: &Bound<'_, PyAny>) -> PyResult<()> {
    let runner = worker::current_runner()
        .ok_or_else(|| PyRuntimeError::new_err("erlang.send runs only on a py context"))?;
    let mut env = OwnedEnv::new();
    let target = env.run(|env| {
        to_term(py, env, pid, &runner, 0)
            .ok()
            .and_then(|t| t.decode::<LocalPid>().ok())
    });
    let Some(target) = target else {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "erlang.send needs an erlang.Pid as its first argument",
        ));
    };
    let mut failure = None;
    // Sending to a dead process is not an error, as in Erlang.
    let _ = env.send_and_clear(&target, |env| match to_term(py, env, message, &runner, 0) {
        Ok(term) => term,
        Err(f) => {
            failure = Some(format!("{:?}", f.encode(py, env)));
            atoms::nil().encode(env)
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
    let caller = io::with_frame(|frame| frame.caller).ok_or_else(|| {
        PyRuntimeError::new_err("erlang.self runs only inside a call from Elixir")
    })?;
    let env = OwnedEnv::new();
    env.run(|env| {
        to_py(py, caller.encode(env), 0)
            .map(|p| p.unbind())
            .map_err(|_| PyRuntimeError::new_err("cannot make an erlang.Pid"))
    })
}

// ------------------------------------------------------------ builtins

struct MethodDef(ffi::PyMethodDef);
// SAFETY: immutable static data that CPython only reads.
unsafe impl Sync for MethodDef {}

macro_rules! builtin {
    ($def:ident, $name:literal, $imp:ident, $doc:literal) => {
        static $def: MethodDef = MethodDef(ffi::PyMethodDef {
            ml_name: $name.as_ptr() as *const c_char,
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: $imp },
            ml_flags: ffi::METH_VARARGS,
            ml_doc: $doc.as_ptr() as *const c_char,
        });
    };
}

builtin!(
    CALL_DEF,
    c"_call",
    call_impl,
    c"_call(name, args): internal"
);
builtin!(
    CALL_INTERNAL_DEF,
    c"_call_internal",
    call_internal_impl,
    c"_call_internal(name, args): internal"
);
builtin!(SEND_DEF, c"_send", send_impl, c"_send(pid, term): internal");
builtin!(SELF_DEF, c"_self", self_impl, c"_self(): internal");
builtin!(
    REGISTERED_DEF,
    c"_registered",
    registered_impl,
    c"_registered(name): internal"
);

/// Runs a builtin body, turning its Result into CPython's convention.
pub(crate) unsafe fn wrap(
    args: *mut ffi::PyObject,
    body: impl FnOnce(Python<'_>, &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>>,
) -> *mut ffi::PyObject {
    let py = Python::assume_attached();
    let args = Bound::<PyAny>::from_borrowed_ptr(py, args);
    let result = match args.cast::<PyTuple>() {
        Ok(args) => body(py, args),
        Err(_) => Err(PyRuntimeError::new_err("bad arguments")),
    };
    match result {
        Ok(value) => value.into_ptr(),
        Err(err) => {
            err.restore(py);
            std::ptr::null_mut()
        }
    }
}

unsafe extern "C" fn call_impl(
    _s: *mut ffi::PyObject,
    a: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    wrap(a, |py, args| {
        let name: String = args.get_item(0)?.extract()?;
        let rest = args.get_item(1)?;
        let rest = rest.cast::<PyTuple>().map_err(PyErr::from)?;
        call(py, name, rest, false)
    })
}

unsafe extern "C" fn call_internal_impl(
    _s: *mut ffi::PyObject,
    a: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    wrap(a, |py, args| {
        let name: String = args.get_item(0)?.extract()?;
        let rest = args.get_item(1)?;
        let rest = rest.cast::<PyTuple>().map_err(PyErr::from)?;
        call(py, name, rest, true)
    })
}

unsafe extern "C" fn send_impl(
    _s: *mut ffi::PyObject,
    a: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    wrap(a, |py, args| {
        send(py, &args.get_item(0)?, &args.get_item(1)?)?;
        Ok(py.None())
    })
}

unsafe extern "C" fn self_impl(
    _s: *mut ffi::PyObject,
    a: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    wrap(a, |py, _| self_pid(py))
}

unsafe extern "C" fn registered_impl(
    _s: *mut ffi::PyObject,
    a: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    wrap(a, |py, args| {
        let name: String = args.get_item(0)?.extract()?;
        Ok(pyo3::types::PyBool::new(py, registered(&name))
            .to_owned()
            .into_any()
            .unbind())
    })
}

/// Adds the builtins to the `erlang` module's dict (in any interpreter).
pub fn install(py: Python<'_>, dict: &Bound<'_, PyDict>) -> PyResult<()> {
    for (name, def) in [
        ("_call", &CALL_DEF),
        ("_call_internal", &CALL_INTERNAL_DEF),
        ("_send", &SEND_DEF),
        ("_self", &SELF_DEF),
        ("_registered", &REGISTERED_DEF),
    ] {
        // SAFETY: the definitions are 'static; a null self/module is allowed.
        let function = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyCFunction_NewEx(
                    &def.0 as *const ffi::PyMethodDef as *mut ffi::PyMethodDef,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                ),
            )?
            .cast_into_unchecked::<PyCFunction>()
        };
        dict.set_item(name, function)?;
    }
    Ok(())
}
