//! The active virtual environment, applied to every interpreter.
//!
//! The interpreter is started once, for the Python the NIF was built for;
//! a venv is "activated" by putting its site-packages on `sys.path` (with
//! `site.addsitedir`, so `.pth` files are honoured) and pointing
//! `sys.prefix` and `VIRTUAL_ENV` at it. Each interpreter has its own `sys`:
//! the change is made in the main interpreter at once, and each parallel-pool
//! slot applies it before its next job (a generation counter, as for the log
//! level), so a change never waits for a busy slot; a slot made later
//! applies the current one when it starts. The
//! Python side is `erlang._set_venv` in bootstrap.py, which undoes the
//! previous activation first, so applying is idempotent.
use crate::interp::changes::Changes;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use std::cell::Cell;

/// A venv: its prefix and the site directories to add.
#[derive(Clone)]
pub struct Spec {
    pub prefix: String,
    pub site_dirs: Vec<String>,
}

static CURRENT: Mutex<Option<Spec>> = Mutex::new(None);

/// Serialises changes: two `_set_venv` runs in one interpreter must not
/// interleave.
static CHANGE: Mutex<()> = Mutex::new(());

/// Noted by every change, after `CURRENT` is set.
static CHANGES: Changes = Changes::new(&APPLIED);

thread_local! {
    /// The changes this slot thread has applied.
    static APPLIED: Cell<u64> = const { Cell::new(0) };
}

/// The active venv's prefix.
pub fn current() -> Option<String> {
    CURRENT.lock().as_ref().map(|s| s.prefix.clone())
}

/// Applies the current venv (or none) to the interpreter this thread is
/// attached to. Safe in a sub-interpreter: plain calls on objects of this
/// interpreter, no pyo3 statics.
pub fn apply_current(py: Python<'_>) -> Result<(), String> {
    let spec = CURRENT.lock().clone();
    let run = || -> PyResult<()> {
        let arg = match spec {
            None => py.None(),
            Some(Spec { prefix, site_dirs }) => (prefix, site_dirs).into_py_any(py)?,
        };
        py.import("erlang")?.call_method1("_set_venv", (arg,))?;
        Ok(())
    };
    run().map_err(|e| crate::error::describe(py, &e))
}

/// Makes `spec` the active venv (or deactivates with `None`): applied in the
/// main interpreter before this returns (a failure there restores the
/// previous venv), and in each sub-interpreter slot before its next job.
/// Blocks while it takes the main interpreter's GIL: dirty scheduler.
pub fn set(spec: Option<Spec>) -> Result<(), String> {
    let _change = CHANGE.lock();
    let previous = std::mem::replace(&mut *CURRENT.lock(), spec);
    let result = apply_in_main();
    if result.is_err() {
        *CURRENT.lock() = previous;
        let _ = apply_in_main();
    }
    CHANGES.note();
    result
}

/// The main interpreter, on a short-lived thread of our own (never on a BEAM
/// scheduler thread).
fn apply_in_main() -> Result<(), String> {
    std::thread::Builder::new()
        .name("py-venv".into())
        .spawn(|| Python::attach(apply_current))
        .map_err(|e| format!("cannot spawn a thread: {e}"))?
        .join()
        .map_err(|_| "applying the venv panicked".to_string())?
        .map_err(|e| format!("main interpreter: {e}"))
}

/// On a sub-interpreter slot thread, before a job: applies the current venv
/// if it changed since this thread last did. A failure is reported on
/// stderr (the venv was validated, and the main interpreter took it).
pub fn sync(py: Python<'_>) {
    if !cfg!(all(feature = "parallel", Py_3_12)) {
        return;
    }
    if crate::worker::current_interpreter() == 0 || !CHANGES.take() {
        return;
    }
    if let Err(message) = apply_current(py) {
        eprintln!("py: cannot apply the venv in a sub-interpreter: {message}");
    }
}

/// On a new slot thread: applies the current venv and records its
/// generation.
#[cfg(all(feature = "parallel", Py_3_12))]
pub fn apply_at_start(py: Python<'_>) -> Result<(), String> {
    CHANGES.mark_applied();
    apply_current(py)
}
