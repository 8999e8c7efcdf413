//! `%Py.Array{data, type, shape}`: an n-dimensional array's bytes with its
//! element type spelled as Nx spells it (`{:f, 32}`, `{:s, 64}`, `{:u, 8}`,
//! `{:c, 64}`), so `Nx.from_binary(data, type) |> Nx.reshape(shape)` works.
//!
//! Python to Elixir, on request (`return: :array`): any object with the
//! buffer protocol (a numpy array, `array.array`, `bytes`, a memoryview),
//! copied once, into C order, straight into a new binary. Elixir to
//! Python: the data copied once into a `bytearray`, viewed by
//! `numpy.frombuffer(...).reshape(shape)` when numpy imports (a writable
//! array), else by a memoryview cast to the type and shape. No per-element
//! work either way.
use crate::atoms;
use crate::error::{Failure, JobResult};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyTuple};
use rustler::types::tuple::{get_tuple, make_tuple};
use rustler::{Atom, Binary, Encoder, Env, Term};
use std::ffi::CStr;

/// (Nx kind, bits) for a struct-module format character; None for formats
/// with no Nx counterpart.
fn nx_type(format: &str) -> Option<(Atom, u32)> {
    // Native or little-endian byte order only (the BEAM's platforms are
    // little-endian); '@' and '=' mean native.
    if let Some(complex) = complex(format) {
        return Some(complex);
    }
    let code = match format.as_bytes() {
        [c] => *c,
        [b'@' | b'=' | b'<', c] => *c,
        _ => return None,
    };
    Some(match code {
        b'e' => (atoms::f(), 16),
        b'f' => (atoms::f(), 32),
        b'd' => (atoms::f(), 64),
        b'b' => (atoms::s(), 8),
        b'h' => (atoms::s(), 16),
        b'i' => (atoms::s(), 32),
        b'l' | b'q' | b'n' => (atoms::s(), 64),
        b'B' | b'?' | b'c' => (atoms::u(), 8),
        b'H' => (atoms::u(), 16),
        b'I' => (atoms::u(), 32),
        b'L' | b'Q' | b'N' => (atoms::u(), 64),
        _ => return None,
    })
}

fn complex(format: &str) -> Option<(Atom, u32)> {
    match format.trim_start_matches(['@', '=', '<']) {
        "Zf" => Some((atoms::c(), 64)),
        "Zd" => Some((atoms::c(), 128)),
        _ => None,
    }
}

/// The `%Py.Array{}` of an object with the buffer protocol.
pub fn to_term<'a>(py: Python<'_>, env: Env<'a>, obj: &Bound<'_, PyAny>) -> JobResult<Term<'a>> {
    let mut view = ffi::Py_buffer::new();
    // SAFETY: attached; `view` is filled on success and released below.
    if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut view, ffi::PyBUF_FULL_RO) } != 0 {
        let err = PyErr::fetch(py);
        return Err(Failure::conversion(format!(
            "return: :array needs an object with the buffer protocol (a numpy array, array.array, \
             bytes), got {} ({})",
            crate::object::qualified_name(&obj.get_type()),
            crate::error::describe(py, &err)
        )));
    }
    let result = array_of(env, &mut view);
    // SAFETY: the view taken above, released once.
    unsafe { ffi::PyBuffer_Release(&mut view) };
    result
}

// `&mut`: PyBuffer_ToContiguous takes a mutable view before Python 3.11.
fn array_of<'a>(env: Env<'a>, view: &mut ffi::Py_buffer) -> JobResult<Term<'a>> {
    let format = if view.format.is_null() {
        "B".to_string()
    } else {
        // SAFETY: a NUL-terminated string owned by the view.
        unsafe { CStr::from_ptr(view.format) }
            .to_string_lossy()
            .into_owned()
    };
    let (kind, bits) = nx_type(&format).ok_or_else(|| {
        Failure::conversion(format!(
            "the array's element format {format:?} has no Nx type (numbers of 8 to 64 bits, \
             native byte order, complex64/128)"
        ))
    })?;
    if view.itemsize as u32 * 8 != bits {
        return Err(Failure::conversion(format!(
            "the array's element format {format:?} has {} bytes per item, not {}",
            view.itemsize,
            bits / 8
        )));
    }
    let ndim = view.ndim.max(0) as usize;
    let shape: Vec<Term<'a>> = if ndim == 0 || view.shape.is_null() {
        if ndim == 0 {
            Vec::new()
        } else {
            vec![(view.len / view.itemsize.max(1)).encode(env)]
        }
    } else {
        // SAFETY: `ndim` dimensions, owned by the view.
        unsafe { std::slice::from_raw_parts(view.shape, ndim) }
            .iter()
            .map(|d| (*d as i64).encode(env))
            .collect()
    };
    let len = view.len.max(0) as usize;
    let mut data = rustler::NewBinary::new(env, len);
    if len > 0 {
        // SAFETY: `data` has `len` bytes; the view describes `len` bytes.
        let copied = unsafe {
            ffi::PyBuffer_ToContiguous(
                data.as_mut_slice().as_mut_ptr() as *mut _,
                view,
                view.len,
                b'C' as _,
            )
        };
        if copied != 0 {
            return Err(Failure::conversion("cannot copy the array's data"));
        }
    }
    let data: Binary = data.into();
    let pairs = [
        (atoms::struct_().encode(env), atoms::py_array().encode(env)),
        (atoms::data().encode(env), data.encode(env)),
        (atoms::r#type().encode(env), (kind, bits).encode(env)),
        (atoms::shape().encode(env), make_tuple(env, &shape)),
    ];
    Term::map_from_pairs(env, &pairs).map_err(|_| Failure::conversion("cannot build a %Py.Array{}"))
}

/// numpy's dtype and the struct format for an Nx type.
fn formats(kind: Atom, bits: u32) -> Option<(&'static str, &'static str)> {
    let pairs: [(Atom, u32, &str, &str); 13] = [
        (atoms::f(), 16, "<f2", "e"),
        (atoms::f(), 32, "<f4", "f"),
        (atoms::f(), 64, "<f8", "d"),
        (atoms::s(), 8, "i1", "b"),
        (atoms::s(), 16, "<i2", "h"),
        (atoms::s(), 32, "<i4", "i"),
        (atoms::s(), 64, "<i8", "q"),
        (atoms::u(), 8, "u1", "B"),
        (atoms::u(), 16, "<u2", "H"),
        (atoms::u(), 32, "<u4", "I"),
        (atoms::u(), 64, "<u8", "Q"),
        (atoms::c(), 64, "<c8", "Zf"),
        (atoms::c(), 128, "<c16", "Zd"),
    ];
    pairs
        .iter()
        .find(|(k, b, _, _)| *k == kind && *b == bits)
        .map(|(_, _, dtype, format)| (*dtype, *format))
}

/// The Python array (numpy's if numpy imports, else a memoryview) of a
/// `%Py.Array{}`.
pub fn to_py<'py>(py: Python<'py>, term: Term) -> JobResult<Bound<'py, PyAny>> {
    let bad = |why: &str| {
        Failure::conversion(format!(
            "a %Py.Array{{}} needs data (a binary), type ({{:f, 32}} and the like) and shape (a \
             tuple of sizes): {why}"
        ))
    };
    let data: Binary = term
        .map_get(atoms::data())
        .ok()
        .and_then(|d| d.decode().ok())
        .ok_or_else(|| bad("data is not a binary"))?;
    let (kind, bits): (Atom, u32) = term
        .map_get(atoms::r#type())
        .ok()
        .and_then(|t| t.decode().ok())
        .ok_or_else(|| bad("type is not {kind, bits}"))?;
    let shape: Vec<i64> = term
        .map_get(atoms::shape())
        .ok()
        .and_then(|s| get_tuple(s).ok())
        .and_then(|dims| dims.iter().map(|d| d.decode::<i64>().ok()).collect())
        .ok_or_else(|| bad("shape is not a tuple of integers"))?;
    let (dtype, format) = formats(kind, bits)
        .ok_or_else(|| bad(&format!("no Python element type for {{{kind:?}, {bits}}}")))?;
    let count = shape
        .iter()
        .try_fold(1i64, |n, d| if *d < 0 { None } else { n.checked_mul(*d) });
    let expected = count.and_then(|n| n.checked_mul(bits as i64 / 8));
    if expected != Some(data.len() as i64) {
        return Err(bad(&format!(
            "{} bytes of data do not make shape {shape:?} of {bits}-bit items",
            data.len()
        )));
    }
    let bytes = PyByteArray::new(py, data.as_slice());
    let dims = PyTuple::new(py, &shape)?;
    // numpy cannot load in the parallel pool's sub-interpreters: there,
    // only a numpy already imported is used (an import would fail each time).
    let numpy = if crate::worker::current_interpreter() <= 0 {
        py.import("numpy")
    } else {
        py.import("sys")
            .and_then(|sys| sys.getattr("modules"))
            .and_then(|modules| modules.get_item("numpy"))
            .and_then(|numpy| Ok(numpy.cast_into::<pyo3::types::PyModule>()?))
    };
    match numpy {
        Ok(numpy) => {
            let flat = numpy.call_method1("frombuffer", (bytes, dtype))?;
            Ok(flat.call_method1("reshape", (dims,))?)
        }
        Err(_) => {
            let view = pyo3::types::PyMemoryView::from(&bytes)?;
            Ok(view.call_method1("cast", (format, dims))?)
        }
    }
}
