//! Elixir terms to Python objects (the table in `convert`).
use super::{array, datetime, describe, mapset, too_deep, MAX_DEPTH};
use crate::atoms;
use crate::error::{Failure, JobResult};
use crate::object::ObjectRes;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PySet, PyString, PyTuple};
use rustler::types::tuple::get_tuple;
use rustler::{Atom, Binary, MapIterator, ResourceArc, Term, TermType};

/// `term` as a Python object. The commonest items (small integers, floats,
/// binaries) take the fewest BEAM calls; rare kinds are out of line, so the
/// frame a list's items recurse through stays small.
pub fn to_py<'py>(py: Python<'py>, term: Term, depth: usize) -> JobResult<Bound<'py, PyAny>> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    // One BEAM call decides a small integer, the commonest item of all.
    if let Ok(i) = term.decode::<i64>() {
        return small_int_to_py(py, i);
    }
    not_small_int_to_py(py, term, depth)
}

fn small_int_to_py(py: Python<'_>, i: i64) -> JobResult<Bound<'_, PyAny>> {
    // SAFETY: attached; a new reference or NULL with an exception set.
    Ok(unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromLongLong(i))? })
}

/// `to_py` for a term that is no 64-bit integer.
fn not_small_int_to_py<'py>(
    py: Python<'py>,
    term: Term,
    depth: usize,
) -> JobResult<Bound<'py, PyAny>> {
    match term.get_type() {
        TermType::Binary => binary_to_py(py, term),
        TermType::Float => float_to_py(py, term),
        TermType::List => list_to_py(py, term, depth),
        TermType::Atom => atom_to_py(py, term),
        TermType::Integer => big_int_to_py(py, term),
        TermType::Tuple => tuple_to_py(py, term, depth),
        TermType::Map => map_to_py(py, term, depth),
        TermType::Pid => pid_to_py(py, term),
        _ => Err(Failure::conversion(format!(
            "cannot convert {} to Python: it has no Python counterpart (functions, ports and references cannot cross; pass data or a %Py.Object{{}})",
            describe(term)
        ))),
    }
}

fn binary_to_py<'py>(py: Python<'py>, term: Term) -> JobResult<Bound<'py, PyAny>> {
    let bin = Binary::from_term(term).map_err(|_| {
        Failure::conversion(format!(
            "cannot convert the bitstring {} to Python: its size is not a whole number of bytes",
            describe(term)
        ))
    })?;
    Ok(match std::str::from_utf8(bin.as_slice()) {
        Ok(text) => PyString::new(py, text).into_any(),
        Err(_) => PyBytes::new(py, bin.as_slice()).into_any(),
    })
}

fn float_to_py<'py>(py: Python<'py>, term: Term) -> JobResult<Bound<'py, PyAny>> {
    let f: f64 = term
        .decode()
        .map_err(|_| Failure::conversion("cannot decode float"))?;
    Ok(PyFloat::new(py, f).into_any())
}

/// An integer past 64 bits, through two's-complement bytes and
/// `int.from_bytes`: no process-global pyo3 state, so this works in any
/// interpreter.
#[inline(never)]
fn big_int_to_py<'py>(py: Python<'py>, term: Term) -> JobResult<Bound<'py, PyAny>> {
    let bytes = term
        .decode::<rustler::BigInt>()
        .map_err(|_| Failure::conversion("cannot decode integer"))?
        .to_signed_bytes_le();
    let kwargs = PyDict::new(py);
    kwargs.set_item("signed", true)?;
    Ok(py.get_type::<PyInt>().call_method(
        "from_bytes",
        (PyBytes::new(py, &bytes), "little"),
        Some(&kwargs),
    )?)
}

#[inline(never)]
fn tuple_to_py<'py>(py: Python<'py>, term: Term, depth: usize) -> JobResult<Bound<'py, PyAny>> {
    let items = get_tuple(term).map_err(|_| Failure::conversion("bad tuple"))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        out.push(to_py(py, item, depth + 1).map_err(|e| e.at(|| format!("elem {i}")))?);
    }
    Ok(PyTuple::new(py, out)?.into_any())
}

#[inline(never)]
fn atom_to_py<'py>(py: Python<'py>, term: Term) -> JobResult<Bound<'py, PyAny>> {
    let atom: Atom = term.decode().map_err(|_| Failure::conversion("bad atom"))?;
    if atom == atoms::nil() {
        Ok(py.None().into_bound(py))
    } else if atom == atoms::r#true() {
        Ok(PyBool::new(py, true).to_owned().into_any())
    } else if atom == atoms::r#false() {
        Ok(PyBool::new(py, false).to_owned().into_any())
    } else if atom == atoms::nan() {
        Ok(PyFloat::new(py, f64::NAN).into_any())
    } else if atom == atoms::infinity() {
        Ok(PyFloat::new(py, f64::INFINITY).into_any())
    } else if atom == atoms::neg_infinity() {
        Ok(PyFloat::new(py, f64::NEG_INFINITY).into_any())
    } else {
        let name = term
            .atom_to_string()
            .map_err(|_| Failure::conversion("bad atom"))?;
        Ok(PyString::new(py, &name).into_any())
    }
}

fn list_to_py<'py>(py: Python<'py>, term: Term, depth: usize) -> JobResult<Bound<'py, PyAny>> {
    let len = term.list_length().map_err(|_| {
        Failure::conversion(format!(
            "cannot convert the improper list {} to Python",
            describe(term)
        ))
    })?;
    let iter = term
        .into_list_iterator()
        .map_err(|_| Failure::conversion("bad list"))?;
    // Filled in place: no intermediate vector, each item's reference moved
    // into its slot. A list left part-filled by an error holds NULLs, which
    // list deallocation skips.
    // SAFETY: attached; a new list of `len` empty slots, owned here.
    let list =
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyList_New(len as ffi::Py_ssize_t))? };
    let items_deep = depth + 1 > MAX_DEPTH;
    for (i, item) in iter.enumerate() {
        // A small integer, the commonest item, is decided here, without
        // the call down the general path.
        let value = match item.decode::<i64>() {
            _ if items_deep => Err(too_deep()),
            Ok(value) => small_int_to_py(py, value),
            Err(_) => not_small_int_to_py(py, item, depth + 1),
        }
        .map_err(|e| e.at(|| format!("[{i}]")))?
        .into_ptr();
        // SAFETY: `i < len` (the list's length was counted above); the slot
        // is empty, and SET_ITEM takes the reference.
        unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, value) };
    }
    Ok(list)
}

#[inline(never)]
fn map_to_py<'py>(py: Python<'py>, term: Term, depth: usize) -> JobResult<Bound<'py, PyAny>> {
    if let Ok(tag) = term.map_get(atoms::struct_()) {
        if let Ok(tag) = tag.decode::<Atom>() {
            if tag == atoms::py_object() {
                return object_to_py(py, term);
            }
            if tag == atoms::map_set() {
                return mapset_to_py(py, term, depth);
            }
            if tag == atoms::py_channel() {
                return channel_to_py(py, term);
            }
            if tag == atoms::py_buffer() {
                return buffer_to_py(py, term);
            }
            if tag == atoms::py_array() {
                return array::to_py(py, term);
            }
            if let Some(value) = datetime::to_py(py, term, tag)? {
                return Ok(value);
            }
        }
    }
    let dict = PyDict::new(py);
    let iter = MapIterator::new(term).ok_or_else(|| Failure::conversion("bad map"))?;
    let mut count = 0;
    for (k, v) in iter {
        let key = to_py(py, k, depth + 1).map_err(|e| e.at(|| format!("key {}", describe(k))))?;
        let value = to_py(py, v, depth + 1)
            .map_err(|e| e.at(|| format!("value at key {}", describe(k))))?;
        dict.set_item(key, value)
            .map_err(|err| unhashable(py, "map key", k, "a Python dict key", &err))?;
        count += 1;
    }
    if dict.len() != count {
        let keys = MapIterator::new(term).into_iter().flatten().map(|(k, _)| k);
        return Err(collision(py, keys, depth, "map keys", "Python dict key"));
    }
    Ok(dict.into_any())
}

/// Two Elixir terms that are one key in Python (`:a` and `"a"`, `1` and
/// `1.0`): Python would keep one of them. Looked for only once the sizes
/// differ, so a map or set without a collision pays nothing for it.
fn collision<'a>(
    py: Python<'_>,
    keys: impl Iterator<Item = Term<'a>>,
    depth: usize,
    what: &str,
    role: &str,
) -> Failure {
    let seen = PyDict::new(py);
    let mut terms: Vec<Term<'a>> = Vec::new();
    for k in keys {
        let Ok(key) = to_py(py, k, depth + 1) else {
            continue;
        };
        match seen.get_item(&key) {
            Ok(Some(index)) => {
                let first = index.extract::<usize>().ok().and_then(|i| terms.get(i));
                if let Some(first) = first {
                    let shown = key
                        .repr()
                        .ok()
                        .and_then(|r| r.extract::<String>().ok())
                        .unwrap_or_else(|| "?".into());
                    return Failure::conversion(format!(
                        "the {what} {} and {} are the same {role} ({shown}), so one would be lost; \
                         make them distinct",
                        describe(*first),
                        describe(k)
                    ));
                }
            }
            Ok(None) => {
                if seen.set_item(&key, terms.len()).is_ok() {
                    terms.push(k);
                }
            }
            Err(_) => {}
        }
    }
    Failure::conversion(format!(
        "two {what} are the same {role}, so one would be lost; make them distinct"
    ))
}

fn mapset_to_py<'py>(py: Python<'py>, term: Term, depth: usize) -> JobResult<Bound<'py, PyAny>> {
    let members = mapset::members(term)?;
    let iter = MapIterator::new(members).ok_or_else(|| Failure::conversion("malformed MapSet"))?;
    let set = PySet::empty(py)?;
    let mut count = 0;
    for (k, _) in iter {
        let key =
            to_py(py, k, depth + 1).map_err(|e| e.at(|| format!("member {}", describe(k))))?;
        set.add(key)
            .map_err(|err| unhashable(py, "MapSet member", k, "in a Python set", &err))?;
        count += 1;
    }
    if set.len() != count {
        let keys = MapIterator::new(members)
            .into_iter()
            .flatten()
            .map(|(k, _)| k);
        return Err(collision(
            py,
            keys,
            depth,
            "MapSet members",
            "Python set member",
        ));
    }
    Ok(set.into_any())
}

fn unhashable(py: Python<'_>, what: &str, term: Term, role: &str, err: &PyErr) -> Failure {
    Failure::conversion(format!(
        "the {what} {} cannot be {role}: {}",
        describe(term),
        crate::error::describe(py, err)
    ))
}

fn object_to_py<'py>(py: Python<'py>, term: Term) -> JobResult<Bound<'py, PyAny>> {
    let resource: ResourceArc<ObjectRes> = term
        .map_get(atoms::r#ref())
        .and_then(|r| r.decode())
        .map_err(|_| Failure::conversion("malformed %Py.Object{}: its :ref is not a py handle"))?;
    if resource.interpreter() != crate::worker::current_interpreter() {
        return Err(Failure::conversion(format!(
            "this %Py.Object{{}} lives in another Python interpreter (#{}) and cannot be used here (#{}); \
             convert it to Elixir data first, or run both calls on contexts of the same interpreter",
            resource.interpreter(),
            crate::worker::current_interpreter()
        )));
    }
    resource
        .bind(py)
        .ok_or_else(|| Failure::conversion("the %Py.Object{} has been released"))
}

fn channel_to_py<'py>(py: Python<'py>, term: Term) -> JobResult<Bound<'py, PyAny>> {
    let resource: ResourceArc<crate::channel::ChannelRes> = term
        .map_get(atoms::r#ref())
        .and_then(|r| r.decode())
        .map_err(|_| {
            Failure::conversion("malformed %Py.Channel{}: make one with Py.Channel.new/1")
        })?;
    Ok(crate::channel::to_python_object(py, &resource.0)?)
}

fn buffer_to_py<'py>(py: Python<'py>, term: Term) -> JobResult<Bound<'py, PyAny>> {
    let resource: ResourceArc<crate::buffer::BufferRes> = term
        .map_get(atoms::r#ref())
        .and_then(|r| r.decode())
        .map_err(|_| {
            Failure::conversion("malformed %Py.Buffer{}: make one with Py.Buffer.new/1")
        })?;
    Ok(crate::buffer::to_python_object(py, &resource.0)?)
}

fn pid_to_py<'py>(py: Python<'py>, term: Term) -> JobResult<Bound<'py, PyAny>> {
    let bytes = term.to_binary();
    let class = py.import("erlang")?.getattr("Pid")?;
    let text = format!("{term:?}");
    Ok(class.call1((PyBytes::new(py, bytes.as_slice()), text))?)
}
