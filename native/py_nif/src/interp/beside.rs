//! Short internal calls run beside a context's runner, on a thread of their
//! own attached to the runner's interpreter, so that a runner busy with a
//! long job does not hold them up: stopping a `Py.Service` (and waiting for
//! its thread's end) while calls run on its context.
//!
//! The thread takes the interpreter's GIL, which a runner running Python
//! hands over at its switch interval; a runner stuck in C code keeps it,
//! and the call waits for it (its Elixir caller times out; the thread ends
//! when the GIL comes back). In a sub-interpreter the thread makes a thread
//! state of its own there and deletes it before it lets go of the slot's
//! interrupt lock, which the slot's teardown takes before the interpreter
//! ends.
use super::worker::Runner;
use pyo3::ffi;
use pyo3::prelude::*;
use rustler::env::SavedTerm;
use rustler::{Encoder, LocalPid, OwnedEnv};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The functions of the `erlang` module that may run beside a runner, each
/// taking one string.
const FUNCTIONS: &[&str] = &["_service_stop", "_service_forget"];

/// The allowed function named `name`, if it is one.
pub fn function(name: &str) -> Option<&'static str> {
    FUNCTIONS.iter().copied().find(|f| *f == name)
}

/// Starts `erlang.<function>(arg)` beside `runner`; its outcome comes to
/// `to` as `{tag, {:ok, true | false | nil}}` or `{tag, {:error, text}}`.
pub fn spawn(
    runner: Arc<Runner>,
    function: &'static str,
    arg: String,
    to: LocalPid,
    tag: (OwnedEnv, SavedTerm),
) -> Result<(), String> {
    std::thread::Builder::new()
        .name("py-beside".into())
        .spawn(move || {
            let outcome = run(&runner, function, &arg);
            let (mut env, tag) = tag;
            let _ = env.send_and_clear(&to, |env| {
                let outcome = match outcome {
                    Ok(Some(flag)) => (crate::atoms::ok(), flag).encode(env),
                    Ok(None) => (crate::atoms::ok(), crate::atoms::nil()).encode(env),
                    Err(text) => (crate::atoms::error(), text).encode(env),
                };
                (tag.load(env), outcome).encode(env)
            });
        })
        .map(|_| ())
        .map_err(|e| format!("cannot spawn a thread: {e}"))
}

fn run(runner: &Runner, function: &str, arg: &str) -> Result<Option<bool>, String> {
    let sub = runner.interrupt.lock();
    let Some(interpreter) = sub.as_ref().map(|s| s.interpreter) else {
        // Not a slot: the lock is not held while this thread waits for the
        // GIL (the runtime thread takes it to raise interrupts).
        drop(sub);
        // The main interpreter's runners have id 0; -1 is a runner not
        // attached yet, another id a sub-interpreter that has ended.
        if runner.interpreter.load(Ordering::Acquire) != 0 {
            return Err("the context's interpreter is not running".into());
        }
        return Python::attach(|py| call(py, function, arg));
    };
    // SAFETY: the interpreter lives while its slot's interrupt lock (`sub`)
    // is held (see the module doc); this thread state is this thread's,
    // made, used and deleted here.
    unsafe {
        let tstate = ffi::PyThreadState_New(interpreter as *mut ffi::PyInterpreterState);
        ffi::PyEval_RestoreThread(tstate);
        let result = Python::attach(|py| call(py, function, arg));
        ffi::PyThreadState_Clear(tstate);
        ffi::PyThreadState_DeleteCurrent();
        drop(sub);
        result
    }
}

fn call(py: Python<'_>, function: &str, arg: &str) -> Result<Option<bool>, String> {
    crate::builtins::erlang_attr(py, function)
        .and_then(|f| f.call1((arg,)))
        .map(|result| result.extract::<bool>().ok())
        .map_err(|e| crate::error::describe(py, &e))
}
