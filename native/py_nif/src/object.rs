//! `%Py.Object{}`: a handle to a live Python object.
//!
//! The resource is freed by the BEAM on whatever thread collects the last
//! reference; its `Drop` never touches Python, it queues the decref to the
//! context that made the object (or to the runtime thread when that context
//! has ended).
use crate::atoms;
use crate::pyptr::PyPtr;
use crate::worker::Runner;
use parking_lot::{Condvar, Mutex};
use pyo3::prelude::*;
use pyo3::types::PyType;
use rustler::{Encoder, Env, Resource, ResourceArc, Term};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static LIVE: AtomicI64 = AtomicI64::new(0);
static RELEASED: Mutex<()> = Mutex::new(());
static RELEASED_CV: Condvar = Condvar::new();

pub struct ObjectRes {
    ptr: Option<PyPtr>,
    pub owner: Arc<Runner>,
}

#[rustler::resource_impl]
impl Resource for ObjectRes {}

impl Drop for ObjectRes {
    fn drop(&mut self) {
        if let Some(ptr) = self.ptr.take() {
            self.owner.release(ptr);
        }
        // Counted after the release is queued, so a waiter that sees the
        // count fall knows the decrefs are in their contexts' queues.
        LIVE.fetch_sub(1, Ordering::AcqRel);
        RELEASED_CV.notify_all();
    }
}

impl ObjectRes {
    pub fn bind<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.ptr.as_ref().map(|p| p.bind(py))
    }

    /// The id of the interpreter the object lives in.
    pub fn interpreter(&self) -> i64 {
        self.owner.interpreter.load(Ordering::Acquire)
    }
}

thread_local! {
    /// Handles made on this thread so far (a runner compares it before and
    /// after a job to know whether the reply holds any).
    static WRAPPED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Handles made on this thread so far.
pub fn wrapped() -> u64 {
    WRAPPED.with(|w| w.get())
}

/// Number of `%Py.Object{}` handles alive in the VM.
pub fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// Waits until at most `limit` handles are alive (the BEAM may run resource
/// destructors a little after the garbage collection that freed them).
pub fn wait_live_at_most(limit: i64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut guard = RELEASED.lock();
    while LIVE.load(Ordering::Acquire) > limit {
        if RELEASED_CV.wait_until(&mut guard, deadline).timed_out() {
            break;
        }
    }
    LIVE.load(Ordering::Acquire) <= limit
}

/// Wraps `obj` as `%Py.Object{ref: resource, type: "module.Name"}`.
pub fn wrap<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>, owner: &Arc<Runner>) -> Term<'a> {
    LIVE.fetch_add(1, Ordering::Relaxed);
    WRAPPED.with(|w| w.set(w.get() + 1));
    let resource = ResourceArc::new(ObjectRes {
        ptr: Some(PyPtr::new(obj)),
        owner: owner.clone(),
    });
    let ty = qualified_name(&obj.get_type());
    let keys = [
        atoms::struct_().encode(env),
        atoms::r#ref().encode(env),
        atoms::r#type().encode(env),
    ];
    let values = [
        atoms::py_object().encode(env),
        resource.encode(env),
        ty.encode(env),
    ];
    Term::map_from_term_arrays(env, &keys, &values).unwrap_or_else(|_| resource.encode(env))
}

/// `module.QualName`, or just `QualName` for builtins. (Plain getattr:
/// pyo3's interned names are process-global, wrong for sub-interpreters.)
pub fn qualified_name(ty: &Bound<'_, PyType>) -> String {
    let text = |attr: &str| ty.getattr(attr).and_then(|v| v.extract::<String>()).ok();
    let name = text("__qualname__").unwrap_or_else(|| "object".into());
    match text("__module__") {
        Some(module) if module != "builtins" => format!("{module}.{name}"),
        _ => name,
    }
}
