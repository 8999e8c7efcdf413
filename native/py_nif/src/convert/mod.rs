//! Elixir term <-> Python object, both directions.
//!
//! | Elixir                         | Python                     |
//! |--------------------------------|----------------------------|
//! | nil / true / false             | None / True / False        |
//! | integer (any size)             | int                        |
//! | float, :nan, :infinity, :neg_infinity | float               |
//! | binary, valid UTF-8            | str                        |
//! | binary, not UTF-8              | bytes                      |
//! | other atom                     | str                        |
//! | list / tuple / map             | list / tuple / dict        |
//! | MapSet                         | set (frozenset -> MapSet)  |
//! | pid                            | erlang.Pid                 |
//! | %Py.Object{}                   | the object itself          |
//! | %Py.Channel{} / %Py.Buffer{}   | erlang.Channel / .Buffer   |
//! | %Py.Array{}                    | numpy array (memoryview without numpy); see `array` |
//! | Date, Time, NaiveDateTime, DateTime, %Py.Timedelta{}, %Py.Decimal{} | datetime's and decimal's types (see `datetime`) |
//!
//! Python bytes and bytearray come back as binaries. Anything else comes back
//! as `%Py.Object{}`. Nesting is limited to `MAX_DEPTH`; worker threads have
//! a stack large enough for it.
pub mod array;
pub mod datetime;
pub mod mapset;

use crate::atoms;
use crate::error::{Failure, JobResult};
use crate::object::{self, ObjectRes};
use crate::worker::Runner;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString,
    PyTuple,
};
use rustler::types::tuple::{get_tuple, make_tuple};
use rustler::{Atom, Binary, Encoder, Env, MapIterator, ResourceArc, Term, TermType};
use std::sync::Arc;

pub const MAX_DEPTH: usize = 100_000;

/// Maps up to this size are flatmaps in the BEAM.
const SMALL_MAP: usize = 32;

fn describe(term: Term) -> String {
    let mut text = format!("{term:?}");
    if text.len() > 120 {
        let mut cut = 117;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

fn too_deep() -> Failure {
    Failure::conversion(format!("value is nested deeper than {MAX_DEPTH} levels"))
}

// ---------------------------------------------------------------- to Python

pub fn to_py<'py>(py: Python<'py>, term: Term, depth: usize) -> JobResult<Bound<'py, PyAny>> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    match term.get_type() {
        TermType::Atom => atom_to_py(py, term),
        TermType::Binary => {
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
        TermType::Integer => match term.decode::<i64>() {
            Ok(i) => Ok(i.into_pyobject(py)?.into_any()),
            Err(_) => {
                // Through two's-complement bytes and int.from_bytes: no
                // process-global pyo3 state, so this works in any interpreter.
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
        },
        TermType::Float => {
            let f: f64 = term
                .decode()
                .map_err(|_| Failure::conversion("cannot decode float"))?;
            Ok(PyFloat::new(py, f).into_any())
        }
        TermType::List => list_to_py(py, term, depth),
        TermType::Tuple => {
            let items = get_tuple(term).map_err(|_| Failure::conversion("bad tuple"))?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                out.push(to_py(py, item, depth + 1).map_err(|e| e.at(|| format!("elem {i}")))?);
            }
            Ok(PyTuple::new(py, out)?.into_any())
        }
        TermType::Map => map_to_py(py, term, depth),
        TermType::Pid => pid_to_py(py, term),
        _ => Err(Failure::conversion(format!(
            "cannot convert {} to Python: it has no Python counterpart (functions, ports and references cannot cross; pass data or a %Py.Object{{}})",
            describe(term)
        ))),
    }
}

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
    for (i, item) in iter.enumerate() {
        let value = to_py(py, item, depth + 1).map_err(|e| e.at(|| format!("[{i}]")))?;
        // SAFETY: `i < len` (the list's length was counted above); the slot
        // is empty, and SET_ITEM takes the reference.
        unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, value.into_ptr()) };
    }
    Ok(list)
}

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

// ---------------------------------------------------------------- to Elixir

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
        let text = s.to_str().map_err(|err| {
            Failure::conversion(format!(
                "a Python str is not valid UTF-8 ({}); encode it to bytes first",
                crate::error::describe(py, &err)
            ))
        })?;
        return Ok(binary(env, text.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(binary(env, b.as_bytes()));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        let mut items = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            items.push(
                to_term_in(py, env, &item, owner, depth + 1)
                    .map_err(|e| e.at(|| format!("[{i}]")))?,
            );
        }
        return Ok(items.encode(env));
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        let mut items = Vec::with_capacity(tuple.len());
        for (i, item) in tuple.iter().enumerate() {
            items.push(
                to_term_in(py, env, &item, owner, depth + 1)
                    .map_err(|e| e.at(|| format!("elem {i}")))?,
            );
        }
        return Ok(make_tuple(env, &items));
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
    let mut overflow: std::os::raw::c_int = 0;
    // SAFETY: `i` is a live int and the GIL is held.
    let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(i.as_ptr(), &mut overflow) };
    if overflow == 0 && !(value == -1 && PyErr::occurred(i.py())) {
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

fn dict_to_term<'a>(
    py: Python<'_>,
    env: Env<'a>,
    dict: &Bound<'_, PyDict>,
    owner: Option<&Arc<Runner>>,
    depth: usize,
) -> JobResult<Term<'a>> {
    let mut keys = Vec::with_capacity(dict.len());
    let mut values = Vec::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let key = to_term_in(py, env, &k, owner, depth + 1)
            .map_err(|e| e.at(|| format!("key {}", short_repr(&k))))?;
        let value = to_term_in(py, env, &v, owner, depth + 1)
            .map_err(|e| e.at(|| format!("value at key {}", short_repr(&k))))?;
        keys.push(key);
        values.push(value);
    }
    let count = keys.len();
    // enif_make_map_from_arrays crashes the VM for large maps when called
    // off a scheduler thread (OTP 25); map_put does not. Small maps use the
    // one-shot call.
    let map = if count <= SMALL_MAP {
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

fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    let text = obj
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unrepresentable>".into());
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}
