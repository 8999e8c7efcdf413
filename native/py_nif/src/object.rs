//! `%Py.Object{}`: a handle to a live Python object.
//!
//! The resource is freed by the BEAM on whatever thread collects the last
//! reference; its `Drop` never touches Python, it queues the decref to the
//! context that made the object (or to the runtime thread when that context
//! has ended).
use crate::atoms;
use crate::pyptr::PyPtr;
use crate::worker::Shared;
use pyo3::prelude::*;
use rustler::{Encoder, Env, Resource, ResourceArc, Term};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

static LIVE: AtomicI64 = AtomicI64::new(0);

pub struct ObjectRes {
    ptr: Option<PyPtr>,
    owner: Arc<Shared>,
}

#[rustler::resource_impl]
impl Resource for ObjectRes {}

impl Drop for ObjectRes {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        if let Some(ptr) = self.ptr.take() {
            self.owner.release(ptr);
        }
    }
}

impl ObjectRes {
    pub fn bind<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.ptr.as_ref().map(|p| p.bind(py))
    }
}

/// Number of `%Py.Object{}` handles alive in the VM.
pub fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// Wraps `obj` as `%Py.Object{ref: resource, type: "module.Name"}`.
pub fn wrap<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>, owner: &Arc<Shared>) -> Term<'a> {
    LIVE.fetch_add(1, Ordering::Relaxed);
    let resource = ResourceArc::new(ObjectRes {
        ptr: Some(PyPtr::new(obj)),
        owner: owner.clone(),
    });
    let ty = type_name(obj);
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

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    let ty = obj.get_type();
    let name = ty.qualname().map(|n| n.to_string()).unwrap_or_default();
    match ty.module().map(|m| m.to_string()) {
        Ok(module) if module != "builtins" => format!("{module}.{name}"),
        _ => name,
    }
}
