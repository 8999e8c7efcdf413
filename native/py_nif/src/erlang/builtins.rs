//! Raw-ffi building blocks for the `erlang` module's native builtins (calls
//! into Elixir, output, events, channels, buffers): builtin functions
//! without `#[pyfunction]`, capsules that hold an `Arc` of native state, and
//! raising the `erlang` module's exceptions. All of it works in any
//! interpreter (nothing process-global on the Python side).
use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use std::ffi::CStr;
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

pub struct MethodDef(pub ffi::PyMethodDef);
// SAFETY: immutable static data that CPython only reads.
unsafe impl Sync for MethodDef {}

impl MethodDef {
    pub const fn new(name: &'static CStr, imp: ffi::PyCFunction, doc: &'static CStr) -> MethodDef {
        MethodDef(ffi::PyMethodDef {
            ml_name: name.as_ptr() as *const c_char,
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: imp },
            ml_flags: ffi::METH_VARARGS,
            ml_doc: doc.as_ptr() as *const c_char,
        })
    }

    /// The builtin as a function object of the calling interpreter.
    pub fn function<'py>(&'static self, py: Python<'py>) -> PyResult<Bound<'py, PyCFunction>> {
        // SAFETY: attached; the definition is 'static; a null self and module
        // are allowed.
        unsafe {
            Ok(Bound::from_owned_ptr_or_err(
                py,
                ffi::PyCFunction_NewEx(
                    &self.0 as *const ffi::PyMethodDef as *mut ffi::PyMethodDef,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                ),
            )?
            .cast_into_unchecked())
        }
    }
}

/// Defines `static $def: MethodDef`, a METH_VARARGS builtin named `$name`
/// whose body runs attached, with `(py, args)` (the positional arguments as
/// a tuple), and returns `PyResult<Py<PyAny>>`; an `Err` is raised in Python.
macro_rules! builtin {
    ($def:ident, $name:literal, $doc:literal, |$py:pat_param, $args:pat_param| $body:expr) => {
        static $def: $crate::builtins::MethodDef = {
            unsafe extern "C" fn imp(
                _slf: *mut pyo3::ffi::PyObject,
                args: *mut pyo3::ffi::PyObject,
            ) -> *mut pyo3::ffi::PyObject {
                // CPython calls a METH_VARARGS builtin attached, with its
                // argument tuple: what `wrap` needs.
                $crate::builtins::wrap(args, |$py, $args| $body)
            }
            $crate::builtins::MethodDef::new($name, imp, $doc)
        };
    };
}
pub(crate) use builtin;

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else {
        "a panic"
    }
}

/// Adds builtins to a module dict (in the calling interpreter).
pub fn install(
    py: Python<'_>,
    dict: &Bound<'_, PyDict>,
    defs: &[(&str, &'static MethodDef)],
) -> PyResult<()> {
    for (name, def) in defs {
        dict.set_item(*name, def.function(py)?)?;
    }
    Ok(())
}

/// Runs a builtin body, turning its Result into CPython's convention.
///
/// # Safety
/// Call from a METH_VARARGS builtin, attached, with its `args`.
pub unsafe fn wrap(
    args: *mut ffi::PyObject,
    body: impl FnOnce(Python<'_>, &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>>,
) -> *mut ffi::PyObject {
    let py = Python::assume_attached();
    let args = Bound::<PyAny>::from_borrowed_ptr(py, args);
    let result = match args.cast::<PyTuple>() {
        // A panic must not unwind into CPython (that aborts the process):
        // it becomes a RuntimeError in the calling Python code.
        Ok(args) => catch_unwind(AssertUnwindSafe(|| body(py, args))).unwrap_or_else(|panic| {
            Err(PyRuntimeError::new_err(format!(
                "internal error in py (please report it): {}",
                panic_message(panic.as_ref())
            )))
        }),
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

/// A capsule holding a clone of `value`, dropped with the capsule.
pub fn capsule<'py, T: Send + Sync + 'static>(
    py: Python<'py>,
    value: &Arc<T>,
    name: &'static CStr,
) -> PyResult<Bound<'py, PyAny>> {
    unsafe extern "C" fn destroy<T>(capsule: *mut ffi::PyObject) {
        let name = ffi::PyCapsule_GetName(capsule);
        let ptr = ffi::PyCapsule_GetPointer(capsule, name);
        if !ptr.is_null() {
            drop(Box::from_raw(ptr as *mut Arc<T>));
        }
    }
    let boxed = Box::into_raw(Box::new(value.clone()));
    // SAFETY: attached; `name` is 'static as the capsule API requires.
    unsafe {
        let ptr = ffi::PyCapsule_New(boxed as *mut _, name.as_ptr(), Some(destroy::<T>));
        if ptr.is_null() {
            drop(Box::from_raw(boxed));
        }
        Bound::from_owned_ptr_or_err(py, ptr)
    }
}

/// The `Arc` in a capsule made by `capsule` with the same name.
pub fn from_capsule<T>(obj: &Bound<'_, PyAny>, name: &'static CStr) -> PyResult<Arc<T>> {
    // SAFETY: attached; the name check makes sure the pointer is an Arc<T>
    // made by `capsule`, alive as long as the capsule.
    unsafe {
        if ffi::PyCapsule_IsValid(obj.as_ptr(), name.as_ptr()) == 0 {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "expected a {} handle",
                name.to_string_lossy()
            )));
        }
        let ptr = ffi::PyCapsule_GetPointer(obj.as_ptr(), name.as_ptr()) as *const Arc<T>;
        if ptr.is_null() {
            return Err(PyErr::fetch(obj.py()));
        }
        Ok((*ptr).clone())
    }
}

/// An instance of the `erlang` module's exception `class`.
pub fn erlang_error(py: Python<'_>, class: &str, message: String) -> PyErr {
    match py.import("erlang").and_then(|m| m.getattr(class)) {
        Ok(class) => match class.call1((message,)) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        },
        Err(e) => e,
    }
}

/// `erlang.<name>`: one of the module's own functions (its Python half's
/// helpers included).
pub fn erlang_attr<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("erlang")?.getattr(name)
}

/// Calls `erlang.<name>()`, printing (as Python would) what it raises: for
/// the upkeep a runner does between jobs, which has nobody to report to.
pub fn call_erlang_quietly(py: Python<'_>, name: &str) {
    if let Err(err) = erlang_attr(py, name).and_then(|f| f.call0()) {
        err.print(py);
    }
}

/// A wrapper object of the `erlang` module: `erlang.<class>(capsule)`.
pub fn erlang_object<'py>(
    py: Python<'py>,
    class: &str,
    capsule: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    erlang_attr(py, class)?.call1((capsule,))
}

/// An optional timeout in seconds (None or a number >= 0) as a deadline.
pub fn deadline(timeout: &Bound<'_, PyAny>) -> PyResult<Option<std::time::Instant>> {
    if timeout.is_none() {
        return Ok(None);
    }
    let seconds: f64 = timeout.extract()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "timeout must be None or a finite number of seconds >= 0",
        ));
    }
    // A timeout too long to represent is no timeout.
    Ok(std::time::Duration::try_from_secs_f64(seconds)
        .ok()
        .and_then(|timeout| std::time::Instant::now().checked_add(timeout)))
}

/// Runs one Python part of the `erlang` module (`observe.py`, `threads.py`)
/// in its dict, compiled under a name of its own so that tracebacks
/// through it do not look like the user's "<string>" code.
pub fn run_part(
    py: Python<'_>,
    dict: &Bound<'_, PyDict>,
    source: &str,
    name: &str,
) -> PyResult<()> {
    let builtins = py.import("builtins")?;
    let code = builtins.getattr("compile")?.call1((
        source,
        format!("<py: erlang module, {name}>"),
        "exec",
    ))?;
    builtins.getattr("exec")?.call1((code, dict))?;
    Ok(())
}
