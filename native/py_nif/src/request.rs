//! Decodes a request tuple and runs it on the context's thread.
//!
//! Requests (built by `Py.Context`):
//! - `{:call, target, name | nil, args, kwargs, ret}`
//! - `{:eval, code, bindings, ret}`
//! - `{:exec, code}`
//! - `{:getattr, target, name, ret}`
//! - `{:repr, target}`
//!
//! `target` is a module name (string or atom) or a `%Py.Object{}`; `ret` is
//! `:auto` (convert the result) or `:object` (return a `%Py.Object{}`).
use crate::atoms;
use crate::convert::{to_py, to_term};
use crate::error::{Failure, JobResult};
use crate::object;
use crate::worker::Shared;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use rustler::types::tuple::get_tuple;
use rustler::{Atom, Encoder, Env, MapIterator, Term, TermType};
use std::ffi::CString;
use std::sync::Arc;

pub fn execute<'a>(
    py: Python<'_>,
    env: Env<'a>,
    ctx: &Arc<Shared>,
    namespace: &Bound<'_, PyDict>,
    request: Term<'a>,
) -> JobResult<Term<'a>> {
    let parts = get_tuple(request).map_err(|_| invalid("request is not a tuple"))?;
    let tag: Atom = parts
        .first()
        .and_then(|t| t.decode().ok())
        .ok_or_else(|| invalid("request has no tag"))?;
    match parts.as_slice() {
        [_, target, name, args, kwargs, ret] if tag == atoms::call() => {
            let target = resolve_target(py, *target)?;
            let callable = match name.get_type() {
                TermType::Atom if name.decode::<Atom>().ok() == Some(atoms::nil()) => target,
                _ => target.getattr(text(*name, "function name")?)?,
            };
            let args = args_tuple(py, *args)?;
            let kwargs = kwargs_dict(py, *kwargs)?;
            let result = callable.call(args, kwargs.as_ref())?;
            respond(py, env, ctx, &result, *ret)
        }
        [_, code, bindings, ret] if tag == atoms::eval() => {
            let code = source(*code)?;
            let globals = with_bindings(py, namespace, *bindings)?;
            let result = py.eval(&code, Some(&globals), None)?;
            respond(py, env, ctx, &result, *ret)
        }
        [_, code] if tag == atoms::exec() => {
            let code = source(*code)?;
            py.run(&code, Some(namespace), None)?;
            Ok(atoms::nil().encode(env))
        }
        [_, target, name, ret] if tag == atoms::getattr() => {
            let target = resolve_target(py, *target)?;
            let result = target.getattr(text(*name, "attribute name")?)?;
            respond(py, env, ctx, &result, *ret)
        }
        [_, target] if tag == atoms::repr() => {
            let target = resolve_target(py, *target)?;
            let repr = target.repr()?;
            Ok(repr.to_str()?.encode(env))
        }
        _ => Err(invalid("unknown request")),
    }
}

fn invalid(message: &str) -> Failure {
    Failure::Invalid(message.to_string())
}

fn respond<'a>(
    py: Python<'_>,
    env: Env<'a>,
    ctx: &Arc<Shared>,
    result: &Bound<'_, PyAny>,
    ret: Term<'a>,
) -> JobResult<Term<'a>> {
    if ret.decode::<Atom>().ok() == Some(atoms::py_object_ret()) {
        Ok(object::wrap(env, result, ctx))
    } else {
        to_term(py, env, result, ctx, 0)
    }
}

/// A name given as a string or an atom.
fn text(term: Term, what: &str) -> JobResult<String> {
    match term.get_type() {
        TermType::Binary => term
            .decode::<String>()
            .map_err(|_| invalid(&format!("the {what} is not valid UTF-8"))),
        TermType::Atom => term
            .atom_to_string()
            .map_err(|_| invalid(&format!("bad {what}"))),
        _ => Err(Failure::Invalid(format!(
            "the {what} must be a string or an atom, got: {term:?}"
        ))),
    }
}

fn source(term: Term) -> JobResult<CString> {
    let code = text(term, "code")?;
    CString::new(code).map_err(|_| invalid("the code contains a NUL byte"))
}

fn resolve_target<'py>(py: Python<'py>, term: Term) -> JobResult<Bound<'py, PyAny>> {
    match term.get_type() {
        TermType::Map => to_py(py, term, 0),
        _ => {
            let name = text(term, "module name")?;
            Ok(py.import(name.as_str())?.into_any())
        }
    }
}

fn args_tuple<'py>(py: Python<'py>, args: Term) -> JobResult<Bound<'py, PyTuple>> {
    if args.get_type() != TermType::List {
        return Err(Failure::Invalid(format!(
            "args must be a list, got: {args:?}"
        )));
    }
    let mut out = Vec::new();
    for (i, arg) in args
        .into_list_iterator()
        .map_err(|_| invalid("args must be a proper list"))?
        .enumerate()
    {
        out.push(to_py(py, arg, 1).map_err(|e| e.at(|| format!("argument {}", i + 1)))?);
    }
    Ok(PyTuple::new(py, out)?)
}

/// Keyword arguments: a map or keyword list with atom or string keys.
fn kwargs_dict<'py>(py: Python<'py>, kwargs: Term) -> JobResult<Option<Bound<'py, PyDict>>> {
    let pairs: Vec<(Term, Term)> = match kwargs.get_type() {
        TermType::Map => MapIterator::new(kwargs)
            .ok_or_else(|| invalid("bad kwargs map"))?
            .collect(),
        TermType::List => {
            let mut pairs = Vec::new();
            for item in kwargs
                .into_list_iterator()
                .map_err(|_| invalid("kwargs must be a proper list"))?
            {
                match get_tuple(item).ok().as_deref() {
                    Some([k, v]) => pairs.push((*k, *v)),
                    _ => return Err(invalid("kwargs must be a keyword list or a map")),
                }
            }
            pairs
        }
        _ => return Err(invalid("kwargs must be a keyword list or a map")),
    };
    if pairs.is_empty() {
        return Ok(None);
    }
    let dict = PyDict::new(py);
    for (k, v) in pairs {
        let key = text(k, "keyword argument name")?;
        let value = to_py(py, v, 1).map_err(|e| e.at(|| format!("keyword argument {key}")))?;
        dict.set_item(PyString::new(py, &key), value)?;
    }
    Ok(Some(dict))
}

/// The namespace itself, or a copy of it with `bindings` added.
fn with_bindings<'py>(
    py: Python<'py>,
    namespace: &Bound<'py, PyDict>,
    bindings: Term,
) -> JobResult<Bound<'py, PyDict>> {
    match kwargs_dict(py, bindings)? {
        None => Ok(namespace.clone()),
        Some(extra) => {
            let globals = namespace.copy()?;
            globals.update(extra.as_mapping())?;
            Ok(globals)
        }
    }
}
