//! Python objects to Elixir terms (the table in `convert`).
use super::{datetime, mapset, short_repr, too_deep, MAX_DEPTH};
use crate::atoms;
use crate::error::{Failure, JobResult};
use crate::object;
use crate::worker::Runner;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString,
    PyTuple,
};
use rustler::types::tuple::make_tuple;
use rustler::{Binary, Encoder, Env, Term, TermType};
use std::ptr::addr_of_mut;
use std::sync::Arc;

/// Maps up to this size are flatmaps in the BEAM.
const SMALL_MAP: usize = 32;

/// `obj` as a term in `env`; values with no Elixir counterpart become
/// `%Py.Object{}` handles owned by `owner`.
pub fn to_term<'a>(
    py: Python<'_>,
    env: Env<'a>,
    obj: &Bound<'_, PyAny>,
    owner: &Arc<Runner>,
    depth: usize,
) -> JobResult<Term<'a>> {
    to_term_in(py, env, obj, Some(owner), depth)
}

/// Like `to_term`, for threads that are no runner (`owner` is `None`):
/// values with no Elixir counterpart then fail instead of becoming handles.
pub fn to_term_in<'a>(
    py: Python<'_>,
    env: Env<'a>,
    obj: &Bound<'_, PyAny>,
    owner: Option<&Arc<Runner>>,
    depth: usize,
) -> JobResult<Term<'a>> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    // The builtin types themselves first: a pointer comparison each, in
    // the order items are commonest. Subclasses and the rest follow.
    let ty = obj.get_type_ptr();
    // SAFETY: only the addresses of CPython's static type objects are taken.
    unsafe {
        if ty == addr_of_mut!(ffi::PyLong_Type) {
            return int_to_term(env, obj.cast_unchecked());
        }
        if ty == addr_of_mut!(ffi::PyFloat_Type) {
            return Ok(float_to_term(env, obj.cast_unchecked::<PyFloat>().value()));
        }
        if ty == addr_of_mut!(ffi::PyUnicode_Type) {
            return str_to_term(py, env, obj.cast_unchecked());
        }
        if ty == addr_of_mut!(ffi::PyList_Type) {
            return list_to_term(py, env, obj.cast_unchecked(), owner, depth);
        }
        if ty == addr_of_mut!(ffi::PyDict_Type) {
            return dict_to_term(py, env, obj.cast_unchecked(), owner, depth);
        }
        if ty == addr_of_mut!(ffi::PyTuple_Type) {
            return tuple_to_term(py, env, obj.cast_unchecked(), owner, depth);
        }
    }
    other_to_term(py, env, obj, owner, depth)
}

/// Everything but the exact builtin types of the fast path.
#[inline(never)]
fn other_to_term<'a>(
    py: Python<'_>,
    env: Env<'a>,
    obj: &Bound<'_, PyAny>,
    owner: Option<&Arc<Runner>>,
    depth: usize,
) -> JobResult<Term<'a>> {
    if obj.is_none() {
        return Ok(atoms::nil().encode(env));
    }
    if let Ok(b) = obj.cast_exact::<PyBool>() {
        return Ok(b.is_true().encode(env));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return int_to_term(env, i);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(float_to_term(env, f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return str_to_term(py, env, s);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(binary(env, b.as_bytes()));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        return list_to_term(py, env, list, owner, depth);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return tuple_to_term(py, env, tuple, owner, depth);
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        return dict_to_term(py, env, dict, owner, depth);
    }
    if let Ok(set) = obj.cast::<PySet>() {
        return set_to_term(py, env, set.iter(), owner, depth);
    }
    if let Ok(set) = obj.cast::<PyFrozenSet>() {
        return set_to_term(py, env, set.iter(), owner, depth);
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(binary(env, &b.to_vec()));
    }
    if let Some(pid) = pid_to_term(py, env, obj)? {
        return Ok(pid);
    }
    if let Some(value) = datetime::to_term(py, env, obj)? {
        return Ok(value);
    }
    match owner {
        Some(owner) => Ok(object::wrap(env, obj, owner)),
        None => Err(Failure::conversion(format!(
            "{} has no Elixir counterpart and cannot become a handle outside a call; pass plain values",
            short_repr(obj)
        ))),
    }
}

fn str_to_term<'a>(py: Python<'_>, env: Env<'a>, s: &Bound<'_, PyString>) -> JobResult<Term<'a>> {
    let text = s.to_str().map_err(|err| {
        Failure::conversion(format!(
            "a Python str is not valid UTF-8 ({}); encode it to bytes first",
            crate::error::describe(py, &err)
        ))
    })?;
    Ok(binary(env, text.as_bytes()))
}

/// Built from the last item to the first, a cell at a time: no vector of
/// terms in between (for a long list, that vector was fresh memory to fault
/// in on every call). An exact int that fits 64 bits or an exact float, the
/// commonest items, is read through a borrowed pointer and made into a term
/// here, with no reference taken and no call down the general path:
/// converting it runs no Python code, so nothing can change the list
/// meanwhile.
fn list_to_term<'a>(
    py: Python<'_>,
    env: Env<'a>,
    list: &Bound<'_, PyList>,
    owner: Option<&Arc<Runner>>,
    depth: usize,
) -> JobResult<Term<'a>> {
    let mut term = Term::list_new_empty(env);
    let ptr = list.as_ptr();
    // Items past the depth limit take the general path, which refuses them.
    let items_deep = depth + 1 > MAX_DEPTH;
    // SAFETY (the block): the GIL is held; `ptr` is a live list; an item is
    // read only at an index below the list's current length.
    unsafe {
        let mut i = ffi::PyList_GET_SIZE(ptr);
        while i > 0 {
            i -= 1;
            // A conversion can run Python code that shrinks the list: an
            // index past its end is skipped.
            if i >= ffi::PyList_GET_SIZE(ptr) {
                continue;
            }
            let item = ffi::PyList_GET_ITEM(ptr, i);
            let fast = if items_deep { None } else { scalar(env, item) };
            let head = match fast {
                Some(head) => head,
                None => {
                    let item = Bound::from_borrowed_ptr(py, item);
                    to_term_in(py, env, &item, owner, depth + 1)
                        .map_err(|e| e.at(|| format!("[{i}]")))?
                }
            };
            term = Term::new(
                env,
                rustler::sys::enif_make_list_cell(env.as_c_arg(), head.as_c_arg(), term.as_c_arg()),
            );
        }
    }
    Ok(term)
}

/// An exact int that fits 64 bits or an exact float, as a term; `None` for
/// anything else (which then takes the general path, where an error is
/// also reported).
///
/// # Safety
/// `obj` is a live object and the GIL is held.
#[inline(always)]
unsafe fn scalar<'a>(env: Env<'a>, obj: *mut ffi::PyObject) -> Option<Term<'a>> {
    let ty = ffi::Py_TYPE(obj);
    if ty == addr_of_mut!(ffi::PyLong_Type) {
        return small_int(obj).map(|value| value.encode(env));
    }
    if ty == addr_of_mut!(ffi::PyFloat_Type) {
        return Some(float_to_term(env, ffi::PyFloat_AS_DOUBLE(obj)));
    }
    None
}

/// The value of an int (or int subclass) that fits 64 bits; `None` past
/// 64 bits, with any error left set for the caller to clear.
///
/// # Safety
/// `obj` is a live int and the GIL is held.
#[inline(always)]
unsafe fn small_int(obj: *mut ffi::PyObject) -> Option<i64> {
    let mut overflow: std::os::raw::c_int = 0;
    let value = ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow);
    if overflow != 0 || (value == -1 && !ffi::PyErr_Occurred().is_null()) {
        // Left for the general path, which clears and reports it.
        return None;
    }
    Some(value)
}

#[inline(never)]
fn tuple_to_term<'a>(
    py: Python<'_>,
    env: Env<'a>,
    tuple: &Bound<'_, PyTuple>,
    owner: Option<&Arc<Runner>>,
    depth: usize,
) -> JobResult<Term<'a>> {
    let mut items = Vec::with_capacity(tuple.len());
    for (i, item) in tuple.iter().enumerate() {
        items.push(
            to_term_in(py, env, &item, owner, depth + 1)
                .map_err(|e| e.at(|| format!("elem {i}")))?,
        );
    }
    Ok(make_tuple(env, &items))
}

fn binary<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    let mut bin = rustler::NewBinary::new(env, bytes.len());
    bin.as_mut_slice().copy_from_slice(bytes);
    let bin: Binary = bin.into();
    bin.encode(env)
}

fn float_to_term(env: Env, f: f64) -> Term {
    if f.is_nan() {
        atoms::nan().encode(env)
    } else if f == f64::INFINITY {
        atoms::infinity().encode(env)
    } else if f == f64::NEG_INFINITY {
        atoms::neg_infinity().encode(env)
    } else {
        f.encode(env)
    }
}

fn int_to_term<'a>(env: Env<'a>, i: &Bound<'_, PyInt>) -> JobResult<Term<'a>> {
    // SAFETY: `i` is a live int and the GIL is held.
    if let Some(value) = unsafe { small_int(i.as_ptr()) } {
        return Ok(value.encode(env));
    }
    let py = i.py();
    let _ = PyErr::take(py);
    let bits: usize = i.call_method0("bit_length")?.extract()?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("signed", true)?;
    let bytes = i.call_method("to_bytes", (bits / 8 + 1, "little"), Some(&kwargs))?;
    let bytes = bytes.cast::<PyBytes>().map_err(PyErr::from)?;
    Ok(rustler::BigInt::from_signed_bytes_le(bytes.as_bytes()).encode(env))
}

#[inline(never)]
fn dict_to_term<'a>(
    py: Python<'_>,
    env: Env<'a>,
    dict: &Bound<'_, PyDict>,
    owner: Option<&Arc<Runner>>,
    depth: usize,
) -> JobResult<Term<'a>> {
    let mut keys = Vec::with_capacity(dict.len());
    let mut values = Vec::with_capacity(dict.len());
    let mut all_str = true;
    for (k, v) in dict.iter() {
        all_str &= k.is_exact_instance_of::<PyString>();
        let key = to_term_in(py, env, &k, owner, depth + 1)
            .map_err(|e| e.at(|| format!("key {}", short_repr(&k))))?;
        let value = to_term_in(py, env, &v, owner, depth + 1)
            .map_err(|e| e.at(|| format!("value at key {}", short_repr(&k))))?;
        keys.push(key);
        values.push(value);
    }
    let count = keys.len();
    // Large maps are built key by key (each put copies a path of the map's
    // tree, garbage in the env) unless the BEAM can build them in one go
    // off a scheduler thread (see `super::large_maps_in_one_go`). Its
    // one-go build of a large map does not reject duplicate keys (OTP issue
    // 10975); distinct Python strs are distinct binaries, so a dict whose
    // keys are all str (the common JSON-like shape) cannot have any.
    let one_go = count <= SMALL_MAP || (all_str && super::large_maps_in_one_go());
    let map = if one_go {
        Term::map_from_term_arrays(env, &keys, &values).ok()
    } else {
        let mut map = Term::map_new(env);
        for (k, v) in keys.into_iter().zip(values) {
            map = map
                .map_put(k, v)
                .map_err(|_| Failure::conversion("cannot build map"))?;
        }
        (map.map_size().ok() == Some(count)).then_some(map)
    };
    map.ok_or_else(|| {
        Failure::conversion(
            "two keys of a Python dict become the same Elixir term (for example 'a' and b'a'); make the keys distinct",
        )
    })
}

fn set_to_term<'a, 'py>(
    py: Python<'py>,
    env: Env<'a>,
    iter: impl Iterator<Item = Bound<'py, PyAny>>,
    owner: Option<&Arc<Runner>>,
    depth: usize,
) -> JobResult<Term<'a>> {
    let mut keys = Vec::new();
    for item in iter {
        keys.push(
            to_term_in(py, env, &item, owner, depth + 1)
                .map_err(|e| e.at(|| format!("member {}", short_repr(&item))))?,
        );
    }
    mapset::build(env, keys)
}

fn pid_to_term<'a>(
    py: Python<'_>,
    env: Env<'a>,
    obj: &Bound<'_, PyAny>,
) -> JobResult<Option<Term<'a>>> {
    let ty = obj.get_type();
    let is_pid_name = ty
        .getattr("__name__")
        .and_then(|n| n.extract::<String>())
        .is_ok_and(|n| n == "Pid");
    if !is_pid_name {
        return Ok(None);
    }
    let class = py.import("erlang")?.getattr("Pid")?;
    if !ty.is(&class) {
        return Ok(None);
    }
    let bytes: Vec<u8> = obj.getattr("_b")?.extract()?;
    // Safe decoding: never creates atoms, rejects anything malformed.
    match env.binary_to_term(&bytes) {
        Some((term, _)) if term.get_type() == TermType::Pid => Ok(Some(term)),
        _ => Err(Failure::conversion(
            "an erlang.Pid holds bytes that are not a pid",
        )),
    }
}
