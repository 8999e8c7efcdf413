//! The active virtual environment, applied to every interpreter.
//!
//! The interpreter is started once, for the Python the NIF was built for;
//! a venv is "activated" by putting its site-packages on `sys.path` (with
//! `site.addsitedir`, so `.pth` files are honoured) and pointing
//! `sys.prefix` and `VIRTUAL_ENV` at it. Each interpreter has its own `sys`,
//! so the change is made in the main interpreter and in every parallel-pool
//! slot, and a slot made later applies the current one when it starts. The
//! Python side is `erlang._set_venv` in bootstrap.py, which undoes the
//! previous activation first, so applying is idempotent.
use parking_lot::{Mutex, MutexGuard};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

/// A venv: its prefix and the site directories to add.
#[derive(Clone)]
pub struct Spec {
    pub prefix: String,
    pub site_dirs: Vec<String>,
}

static CURRENT: Mutex<Option<Spec>> = Mutex::new(None);

/// Held while a change is applied everywhere and while slots are made, so a
/// slot is never made with a venv that is being replaced.
static CHANGE: Mutex<()> = Mutex::new(());

pub fn change_lock() -> MutexGuard<'static, ()> {
    CHANGE.lock()
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

/// Makes `spec` the active venv (or deactivates with `None`) in every
/// interpreter, and waits until they all have it. Blocks: dirty scheduler.
/// If an interpreter fails, the previous venv is restored everywhere.
pub fn set(spec: Option<Spec>) -> Result<(), String> {
    let _change = change_lock();
    let previous = std::mem::replace(&mut *CURRENT.lock(), spec);
    let failed = apply_everywhere().err();
    match failed {
        None => Ok(()),
        Some(message) => {
            *CURRENT.lock() = previous;
            let _ = apply_everywhere();
            Err(message)
        }
    }
}

fn apply_everywhere() -> Result<(), String> {
    // The main interpreter, on a short-lived thread of our own (never on a
    // BEAM scheduler thread).
    let main = std::thread::Builder::new()
        .name("py-venv".into())
        .spawn(|| Python::attach(apply_current))
        .map_err(|e| format!("cannot spawn a thread: {e}"))?
        .join()
        .map_err(|_| "applying the venv panicked".to_string())?;
    main.map_err(|e| format!("main interpreter: {e}"))?;
    #[cfg(all(feature = "parallel", Py_3_12))]
    crate::slot::apply_venv()?;
    Ok(())
}
