//! Python objects a job is done with, freed once its reply is sent.
//!
//! Freeing a large argument or result (a list of 100,000 ints) costs about
//! as much as making it. Freed before the reply, it is time the caller
//! waits for; kept here instead, it is freed by the runner after the
//! answer (still under the GIL, before the next job), while the caller
//! goes on. A `__del__` run by that freeing runs after the reply, outside
//! the job: its output goes where output outside a call goes.
use pyo3::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// What the jobs on this runner thread keep, outer jobs' first.
    static KEPT: RefCell<Vec<Py<PyAny>>> = const { RefCell::new(Vec::new()) };
}

/// Keeps `obj` until the reply of the job running now is sent.
pub fn keep(obj: Bound<'_, PyAny>) {
    KEPT.with(|kept| kept.borrow_mut().push(obj.unbind()));
}

/// Where the job starting now begins in what is kept: jobs nest (a
/// callback's Elixir code calls Python again), and a job frees only its own.
pub fn mark() -> usize {
    KEPT.with(|kept| kept.borrow().len())
}

/// Frees what was kept since `mark`, the last kept first. Each object
/// leaves the list before it is freed, with the list not borrowed: a
/// `__del__` may start a nested job, which keeps and frees its own. Taken
/// one at a time, so the list keeps its capacity and a job allocates
/// nothing here.
pub fn release(py: Python<'_>, mark: usize) {
    while let Some(obj) = KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() > mark {
            kept.pop()
        } else {
            None
        }
    }) {
        drop(obj.into_bound(py));
    }
}
