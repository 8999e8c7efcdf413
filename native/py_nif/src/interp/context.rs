//! A context: its runner, its own globals, and whether it is closed; and
//! the namespaces (globals dicts) a process keeps on a context's runner.
use super::job::Job;
use super::worker::{current_interpreter, next_id, Msg, Runner};
use crate::error::{Failure, JobResult};
use crate::pyptr::PyPtr;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustler::{LocalPid, Resource};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A globals dict, made on first use by the runner's thread and released
/// to it when dropped.
pub struct Namespace {
    pub owner: Arc<Runner>,
    dict: Mutex<Option<PyPtr>>,
}

impl Namespace {
    pub fn new(owner: Arc<Runner>) -> Namespace {
        Namespace {
            owner,
            dict: Mutex::new(None),
        }
    }

    pub fn dict<'py>(&self, py: Python<'py>) -> JobResult<Bound<'py, PyDict>> {
        if self.owner.interpreter.load(Ordering::Acquire) != current_interpreter() {
            return Err(Failure::Invalid(
                "this namespace belongs to another interpreter".into(),
            ));
        }
        let mut slot = self.dict.lock();
        if let Some(ptr) = slot.as_ref() {
            return ptr
                .bind(py)
                .cast_into::<PyDict>()
                .map_err(|_| Failure::Invalid("namespace is not a dict".into()));
        }
        let dict = new_namespace(py)?;
        *slot = Some(PyPtr::new(dict.as_any()));
        Ok(dict)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(ptr) = self.dict.get_mut().take() {
            self.owner.release(ptr);
        }
    }
}

fn new_namespace(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("__builtins__", py.import("builtins")?)?;
    dict.set_item("__name__", "__main__")?;
    Ok(dict)
}

/// A context: its runner, its own globals, and whether it is closed.
pub struct Context {
    pub id: u64,
    pub runner: Arc<Runner>,
    pub closed: AtomicBool,
    /// The `Py.Context` process, told when one of its jobs is interrupted
    /// (it retires the context if the job does not end). None for the
    /// ad-hoc contexts of requests on objects.
    pub owner: Option<LocalPid>,
    /// Worker mode: the runner is this context's alone.
    owns_runner: bool,
    pub(super) globals: Namespace,
}

impl Context {
    pub fn new(runner: Arc<Runner>, owns_runner: bool, owner: Option<LocalPid>) -> Arc<Context> {
        Arc::new(Context {
            id: next_id(),
            globals: Namespace::new(runner.clone()),
            runner,
            closed: AtomicBool::new(false),
            owner,
            owns_runner,
        })
    }

    /// Stops accepting jobs and interrupts the running one. Idempotent.
    pub fn close(self: &Arc<Self>) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if self.owns_runner {
            self.runner.close();
        } else {
            if self.runner.current_context.load(Ordering::Acquire) == self.id {
                self.runner
                    .interrupt(self.runner.current_job.load(Ordering::Acquire));
            }
            self.runner.deliver(Msg::ContextClosed(self.id));
        }
    }

    pub fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && !self.runner.closed.load(Ordering::Acquire)
    }

    /// Whether this context's runner is its own (worker mode, `:main`).
    pub fn owns_runner(&self) -> bool {
        self.owns_runner
    }

    /// Queues `job`. Counted in the runner's load from here until the job
    /// is dropped (run, skipped or refused).
    pub fn submit(&self, job: Job) -> Result<(), ()> {
        self.runner.pending.fetch_add(1, Ordering::AcqRel);
        if !self.is_open() {
            return Err(());
        }
        self.runner.send(Msg::Job(Box::new(job))).map_err(|_| ())
    }

    /// Waits until the context can no longer run anything: its thread has
    /// ended (worker mode) or it runs none of its jobs (shared runner).
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        if self.owns_runner {
            return self.runner.wait_exited(timeout);
        }
        let deadline = std::time::Instant::now() + timeout;
        while self.runner.current_context.load(Ordering::Acquire) == self.id {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }
}

/// The native context as Elixir holds it. It watches its owner (the
/// `Py.Context` process): when the owner dies, the context closes.
pub struct ContextRes(pub Arc<Context>);

#[rustler::resource_impl]
impl Resource for ContextRes {
    fn down<'a>(&'a self, _env: rustler::Env<'a>, _pid: LocalPid, _mon: rustler::Monitor) {
        self.0.close();
    }
}

impl Drop for ContextRes {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A process's private namespace on a context's runner.
pub struct NamespaceRes(pub Namespace);

#[rustler::resource_impl]
impl Resource for NamespaceRes {}
