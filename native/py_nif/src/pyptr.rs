//! An owned Python reference that is never released implicitly.
//!
//! `Py<T>` decrefs on drop, and a drop on a BEAM thread would go to pyo3's
//! process-global pool. `PyPtr` has no `Drop`: whoever holds it hands it to
//! the thread that owns its interpreter (`Context::release`), which decrefs
//! it with the GIL held.
use pyo3::ffi;
use pyo3::prelude::*;
use std::ptr::NonNull;

pub struct PyPtr(NonNull<ffi::PyObject>);

// SAFETY: the pointer is only dereferenced by threads attached to the
// interpreter that owns it; moving the pointer value between threads is fine.
unsafe impl Send for PyPtr {}
unsafe impl Sync for PyPtr {}

impl PyPtr {
    /// Takes a new strong reference to `obj`.
    pub fn new(obj: &Bound<'_, PyAny>) -> PyPtr {
        let ptr = obj.clone().into_ptr();
        // SAFETY: a Bound never holds a null pointer.
        PyPtr(unsafe { NonNull::new_unchecked(ptr) })
    }

    /// Borrows the object as a new strong `Bound` (incref).
    pub fn bind<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        // SAFETY: the pointer holds a strong reference that outlives this call,
        // and the caller is attached to the owning interpreter.
        unsafe { Bound::from_borrowed_ptr(py, self.0.as_ptr()) }
    }

    pub fn as_ptr(&self) -> *mut ffi::PyObject {
        self.0.as_ptr()
    }

    /// Releases the reference. Must run on a thread attached to the owner.
    pub fn release(self, _py: Python<'_>) {
        // SAFETY: we own one strong reference and the GIL is held.
        unsafe { ffi::Py_DECREF(self.0.as_ptr()) }
    }
}
