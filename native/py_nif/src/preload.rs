//! Preloads: code, import paths and imports every interpreter gets
//! (`config :py, preload:` and `Py.preload/1`).
//!
//! They add up, in order. Each is applied in the main interpreter when it
//! is added (its failure goes to the caller), and in each parallel-pool
//! slot before its next job, or when a slot starts, as the venv is
//! (`venv.rs`). The Python side is `erlang._preload` in bootstrap.py.
use parking_lot::Mutex;
use pyo3::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone)]
pub struct Spec {
    pub paths: Vec<String>,
    pub imports: Vec<String>,
    pub code: Option<String>,
}

static ALL: Mutex<Vec<Spec>> = Mutex::new(Vec::new());
static COUNT: AtomicUsize = AtomicUsize::new(0);
static CHANGE: Mutex<()> = Mutex::new(());

thread_local! {
    /// How many preloads this slot thread has applied.
    static APPLIED: Cell<usize> = const { Cell::new(0) };
}

fn apply(py: Python<'_>, spec: &Spec) -> Result<(), String> {
    let run = || -> PyResult<()> {
        py.import("erlang")?.call_method1(
            "_preload",
            (spec.paths.clone(), spec.imports.clone(), spec.code.clone()),
        )?;
        Ok(())
    };
    run().map_err(|e| crate::error::describe(py, &e))
}

/// Adds `spec`: applied in the main interpreter before this returns (on a
/// short-lived thread of ours, never a BEAM scheduler; a failure there
/// drops it and is returned), then in each slot before its next job.
pub fn add(spec: Spec) -> Result<(), String> {
    let _change = CHANGE.lock();
    let main = spec.clone();
    std::thread::Builder::new()
        .name("py-preload".into())
        .spawn(move || Python::attach(|py| apply(py, &main)))
        .map_err(|e| format!("cannot spawn a thread: {e}"))?
        .join()
        .map_err(|_| "applying the preload panicked".to_string())??;
    ALL.lock().push(spec);
    COUNT.fetch_add(1, Ordering::AcqRel);
    Ok(())
}

fn apply_from(py: Python<'_>, from: usize) {
    let pending: Vec<Spec> = ALL.lock().iter().skip(from).cloned().collect();
    for spec in &pending {
        if let Err(message) = apply(py, spec) {
            eprintln!("py: a preload failed in a sub-interpreter: {message}");
        }
    }
}

/// On a sub-interpreter slot thread, before a job: applies the preloads
/// added since this thread last did.
pub fn sync(py: Python<'_>) {
    if !cfg!(all(feature = "parallel", Py_3_12)) {
        return;
    }
    let count = COUNT.load(Ordering::Acquire);
    let applied = APPLIED.with(Cell::get);
    if applied == count || crate::worker::current_interpreter() == 0 {
        return;
    }
    APPLIED.with(|a| a.set(count));
    apply_from(py, applied);
}

/// On a new slot thread: applies every preload so far.
#[cfg(all(feature = "parallel", Py_3_12))]
pub fn apply_at_start(py: Python<'_>) {
    let count = COUNT.load(Ordering::Acquire);
    APPLIED.with(|a| a.set(count));
    apply_from(py, 0);
}
