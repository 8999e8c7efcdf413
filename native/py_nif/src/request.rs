//! Decodes a request tuple and runs it on the context's thread.
//!
//! Requests (built by `Py.Context`):
//! - `{:call, target, name | nil, args, kwargs, ret}`
//! - `{:eval, code, bindings, ret}`
//! - `{:exec, code}`
//! - `{:cell, code, bindings, ret, assigned}`: statements then a last
//!   expression (its value is the result; `{value, assigned_names}` when
//!   `assigned`); `:eval` of code that is not one expression runs as a cell
//! - `{:stream_start, call_or_eval, count}`: the first chunk of a stream
//!   with the call that makes it (see `stream_start`)
//! - `{:keep_exception, request}`: `request`, whose Python error keeps the
//!   exception object
//! - `{:getattr, target, name, ret}`
//! - `{:repr, value}`: repr() of any value, converted (an object is itself)
//! - `{:next_chunk, iterator, count}`: up to `count` items, `{items, done}`
//! - `{:close, target}`: calls `target.close()` if it has one
//!
//! `target` is a module name (string or atom) or a `%Py.Object{}`; `ret` is
//! `:auto` (convert the result), `:object` (return a `%Py.Object{}`) or
//! `:array` (a `%Py.Array{}` of a buffer-protocol object).
use crate::atoms;
use crate::context::Namespace;
use crate::convert::{to_py, to_term};
use crate::error::{Failure, JobResult};
use crate::interp::leftovers;
use crate::object;
use crate::worker::Runner;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use rustler::types::tuple::get_tuple;
use rustler::{Atom, Encoder, Env, MapIterator, Term, TermType};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::c_int;
use std::sync::Arc;

/// A compiled code object; None when the text is not one expression (see
/// `CodeCache::compile_expression`).
type Compiled<'py> = Option<Bound<'py, PyAny>>;

/// Compiled code objects of a context, keyed by source and mode, so that
/// repeated `eval`/`exec` of the same text skip the compiler.
pub struct CodeCache<'py> {
    // Shared by nested jobs on one thread (a callback's Elixir code may call
    // Python again), hence a RefCell borrowed only inside `compile`.
    entries: std::cell::RefCell<HashMap<(c_int, String), Compiled<'py>>>,
    /// Module, function and attribute names given as atoms, as interned
    /// strs, by the atom's term (an atom lives as long as the VM): a call
    /// by atoms skips decoding them, making strs and hashing them.
    names: std::cell::RefCell<HashMap<rustler::sys::ErlNifTerm, Bound<'py, PyString>>>,
}

const CODE_CACHE_SIZE: usize = 1024;
const NAME_CACHE_SIZE: usize = 4096;

impl<'py> CodeCache<'py> {
    pub fn new() -> Self {
        CodeCache {
            entries: std::cell::RefCell::new(HashMap::new()),
            names: std::cell::RefCell::new(HashMap::new()),
        }
    }

    /// A name given as an atom or a string (the `what` of an error), as a
    /// Python str.
    fn name(&self, py: Python<'py>, term: Term, what: &str) -> JobResult<Bound<'py, PyString>> {
        if term.get_type() != TermType::Atom {
            return Ok(PyString::new(py, &text(term, what)?));
        }
        let key = term.as_c_arg();
        if let Some(name) = self.names.borrow().get(&key) {
            return Ok(name.clone());
        }
        let name = PyString::intern(py, &text(term, what)?);
        let mut names = self.names.borrow_mut();
        if names.len() >= NAME_CACHE_SIZE {
            names.clear();
        }
        names.insert(key, name.clone());
        Ok(name)
    }

    /// The code compiled as one expression, or None when it is not one (a
    /// code cell; remembered, so the compiler is not tried again).
    fn compile_expression(
        &self,
        py: Python<'py>,
        code: Term,
    ) -> JobResult<Option<Bound<'py, PyAny>>> {
        let key = (ffi::Py_eval_input, text(code, "code")?);
        if let Some(compiled) = self.entries.borrow().get(&key) {
            return Ok(compiled.clone());
        }
        match self.compile(py, code, ffi::Py_eval_input) {
            Ok(compiled) => Ok(Some(compiled)),
            Err(Failure::Python(err))
                if err.is_instance_of::<pyo3::exceptions::PySyntaxError>(py) =>
            {
                let mut entries = self.entries.borrow_mut();
                if entries.len() >= CODE_CACHE_SIZE {
                    entries.clear();
                }
                entries.insert(key, None);
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }

    fn compile(&self, py: Python<'py>, code: Term, mode: c_int) -> JobResult<Bound<'py, PyAny>> {
        let text = text(code, "code")?;
        if let Some(Some(compiled)) = self.entries.borrow().get(&(mode, text.clone())) {
            return Ok(compiled.clone());
        }
        let source =
            CString::new(text.as_str()).map_err(|_| invalid("the code contains a NUL byte"))?;
        // SAFETY: attached; both strings are NUL-terminated.
        let compiled = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::Py_CompileString(source.as_ptr(), c"<string>".as_ptr(), mode),
            )?
        };
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= CODE_CACHE_SIZE {
            entries.clear();
        }
        entries.insert((mode, text), Some(compiled.clone()));
        Ok(compiled)
    }
}

/// What `module.function(*args, **kwargs)` (or an object's call) returns.
fn call_value<'py>(
    py: Python<'py>,
    namespace: &Namespace,
    cache: &CodeCache<'py>,
    target: Term,
    name: Term,
    args: Term,
    kwargs: Term,
) -> JobResult<Bound<'py, PyAny>> {
    let callable = match name.get_type() {
        TermType::Atom if name.decode::<Atom>().ok() == Some(atoms::nil()) => {
            resolve_target(py, cache, target)?
        }
        _ => {
            let name = cache.name(py, name, "function name")?;
            match in_namespace(py, namespace, target, &name)? {
                Some(found) => found,
                None => resolve_target(py, cache, target)?.getattr(name)?,
            }
        }
    };
    let args = args_tuple(py, args)?;
    let kwargs = kwargs_dict(py, kwargs)?;
    let result = callable.call(&args, kwargs.as_ref());
    // Freed after the reply (see `leftovers`).
    leftovers::keep(args.into_any());
    if let Some(kwargs) = kwargs {
        leftovers::keep(kwargs.into_any());
    }
    Ok(result?)
}

/// `{:stream_start, call_or_eval, count}`: runs the request, takes an
/// iterator over what it returns and its first `count` items, in one round
/// trip: `{items, done, iterator}` (the iterator a `%Py.Object{}`, or nil
/// when the iterable ended within the chunk).
fn stream_start<'a, 'py>(
    py: Python<'py>,
    env: Env<'a>,
    ctx: &Arc<Runner>,
    namespace: &Namespace,
    cache: &CodeCache<'py>,
    inner: Term<'a>,
    count: Term<'a>,
) -> JobResult<Term<'a>> {
    let count: usize = count
        .decode()
        .map_err(|_| invalid("the chunk size must be a positive integer"))?;
    let parts = get_tuple(inner).map_err(|_| invalid("a stream starts from a call or an eval"))?;
    let tag: Option<Atom> = parts.first().and_then(|t| t.decode().ok());
    let value = match parts.as_slice() {
        [_, target, name, args, kwargs, _ret] if tag == Some(atoms::call()) => {
            call_value(py, namespace, cache, *target, *name, *args, *kwargs)?
        }
        [_, code, bindings, _ret] if tag == Some(atoms::eval()) => {
            match cache.compile_expression(py, *code)? {
                Some(compiled) => {
                    let globals = with_bindings(py, &namespace.dict(py)?, *bindings)?;
                    run_code(py, &compiled, &globals)?
                }
                None => run_cell(py, namespace, *code, *bindings, false)?.0,
            }
        }
        _ => return Err(invalid("a stream starts from a call or an eval")),
    };
    let value = if is_awaitable(&value) {
        crate::builtins::erlang_attr(py, "_await")?.call1((value,))?
    } else {
        value
    };
    let iterator = iterator_over(py, value)?;
    let (items, done) = chunk(py, env, ctx, &iterator, count)?;
    let iterator = if done {
        atoms::nil().encode(env)
    } else {
        object::wrap(env, &iterator, ctx)
    };
    Ok((items, done, iterator).encode(env))
}

/// Runs a code cell (`erlang._cell`): statements, then the last
/// expression's value; with `assigned`, also the names the cell assigned,
/// as `{value, %{name => value}}` (a value that cannot convert comes back
/// as a `%Py.Object{}`).
#[allow(clippy::too_many_arguments)]
fn cell<'a>(
    py: Python<'_>,
    env: Env<'a>,
    ctx: &Arc<Runner>,
    namespace: &Namespace,
    code: Term<'a>,
    bindings: Term<'a>,
    ret: Term<'a>,
    assigned: bool,
) -> JobResult<Term<'a>> {
    let (value, names) = run_cell(py, namespace, code, bindings, assigned)?;
    let value = respond(py, env, ctx, &value, ret)?;
    if !assigned {
        return Ok(value);
    }
    let names = names.cast::<PyDict>().map_err(PyErr::from)?;
    let mut pairs = Vec::with_capacity(names.len());
    for (name, item) in names.iter() {
        let name: String = name.extract()?;
        let item = match to_term(py, env, &item, ctx, 0) {
            Ok(term) => term,
            Err(_) => object::wrap(env, &item, ctx),
        };
        pairs.push((name.encode(env), item));
    }
    let map = Term::map_from_pairs(env, &pairs)
        .map_err(|_| invalid("a cell assigned the same name twice"))?;
    Ok((value, map).encode(env))
}

/// `erlang._cell`'s (value, assigned names or None).
fn run_cell<'py>(
    py: Python<'py>,
    namespace: &Namespace,
    code: Term,
    bindings: Term,
    assigned: bool,
) -> JobResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let source = text(code, "code")?;
    let bindings = kwargs_dict(py, bindings)?;
    let out = crate::builtins::erlang_attr(py, "_cell")?.call1((
        source,
        namespace.dict(py)?,
        bindings,
        assigned,
    ))?;
    Ok(out.extract()?)
}

/// Runs a code object with `globals` as globals and locals.
fn run_code<'py>(
    py: Python<'py>,
    code: &Bound<'py, PyAny>,
    globals: &Bound<'py, PyDict>,
) -> JobResult<Bound<'py, PyAny>> {
    // SAFETY: attached; `code` is a code object, `globals` a dict.
    unsafe {
        Ok(Bound::from_owned_ptr_or_err(
            py,
            ffi::PyEval_EvalCode(code.as_ptr(), globals.as_ptr(), globals.as_ptr()),
        )?)
    }
}

pub fn execute<'a, 'py>(
    py: Python<'py>,
    env: Env<'a>,
    ctx: &Arc<Runner>,
    namespace: &Namespace,
    cache: &CodeCache<'py>,
    request: Term<'a>,
) -> JobResult<Term<'a>> {
    let parts = get_tuple(request).map_err(|_| invalid("request is not a tuple"))?;
    let tag: Atom = parts
        .first()
        .and_then(|t| t.decode().ok())
        .ok_or_else(|| invalid("request has no tag"))?;
    match parts.as_slice() {
        [_, inner] if tag == atoms::keep_exception() => {
            execute(py, env, ctx, namespace, cache, *inner).map_err(Failure::keep)
        }
        [_, inner, count] if tag == atoms::stream_start() => {
            stream_start(py, env, ctx, namespace, cache, *inner, *count)
        }
        [_, target, name, args, kwargs, ret] if tag == atoms::call() => {
            let result = call_value(py, namespace, cache, *target, *name, *args, *kwargs)?;
            let reply = respond(py, env, ctx, &result, *ret);
            leftovers::keep(result);
            reply
        }
        [_, code, bindings, ret] if tag == atoms::eval() => {
            // Code that is not one expression runs as a cell.
            let Some(compiled) = cache.compile_expression(py, *code)? else {
                return cell(py, env, ctx, namespace, *code, *bindings, *ret, false);
            };
            let globals = with_bindings(py, &namespace.dict(py)?, *bindings)?;
            let result = run_code(py, &compiled, &globals);
            leftovers::keep(globals.into_any());
            let result = result?;
            let reply = respond(py, env, ctx, &result, *ret);
            leftovers::keep(result);
            reply
        }
        [_, code, bindings, ret, assigned] if tag == atoms::cell() => {
            let assigned = assigned.decode::<bool>().unwrap_or(false);
            cell(py, env, ctx, namespace, *code, *bindings, *ret, assigned)
        }
        [_, code] if tag == atoms::exec() => {
            let code = cache.compile(py, *code, ffi::Py_file_input)?;
            run_code(py, &code, &namespace.dict(py)?)?;
            Ok(atoms::nil().encode(env))
        }
        [_, target, name, ret] if tag == atoms::getattr() => {
            let name = cache.name(py, *name, "attribute name")?;
            let result = match in_namespace(py, namespace, *target, &name)? {
                Some(found) => found,
                None => resolve_target(py, cache, *target)?.getattr(name)?,
            };
            respond(py, env, ctx, &result, *ret)
        }
        [_, iterator, count] if tag == atoms::next_chunk() => {
            let iterator = resolve_target(py, cache, *iterator)?;
            let count: usize = count
                .decode()
                .map_err(|_| invalid("the chunk size must be a positive integer"))?;
            next_chunk(py, env, ctx, &iterator, count)
        }
        [_, target] if tag == atoms::close() => {
            let target = resolve_target(py, cache, *target)?;
            crate::builtins::erlang_attr(py, "_close")?.call1((target,))?;
            Ok(atoms::nil().encode(env))
        }
        [_, target] if tag == atoms::repr() => {
            // Any value, converted (a %Py.Object{} is the object itself);
            // not a module name.
            let target = to_py(py, *target, 0).map_err(|e| e.at(|| "the value".to_string()))?;
            let repr = target.repr()?;
            Ok(repr.to_str()?.encode(env))
        }
        _ => Err(invalid("unknown request")),
    }
}

/// Whether the object's type implements `__await__` (a type slot read: no
/// attribute lookup on the hot path).
fn is_awaitable(obj: &Bound<'_, PyAny>) -> bool {
    type_slot(obj, |a| a.am_await.is_some())
}

fn is_async_iterator(obj: &Bound<'_, PyAny>) -> bool {
    type_slot(obj, |a| a.am_anext.is_some())
}

/// An iterator or async iterator over `value`, as `erlang._iterator` makes
/// one: decided by the type's slots, without that Python function (whose
/// `hasattr` tests made and dropped two AttributeErrors, with formatted
/// messages, for every plain iterable).
fn iterator_over<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if is_async_iterator(&value) {
        Ok(value)
    } else if type_slot(&value, |a| a.am_aiter.is_some()) {
        crate::builtins::erlang_attr(py, "_iterator")?.call1((value,))
    } else {
        Ok(value.try_iter()?.into_any())
    }
}

fn type_slot(obj: &Bound<'_, PyAny>, check: impl Fn(&ffi::PyAsyncMethods) -> bool) -> bool {
    // SAFETY: attached; a live object's type and its async slots are valid.
    unsafe {
        let async_methods = (*ffi::Py_TYPE(obj.as_ptr())).tp_as_async;
        !async_methods.is_null() && check(&*async_methods)
    }
}

/// A helper function of the `erlang` module (bootstrap.py).
/// Up to `count` items from an iterator: `{items, done}`.
fn next_chunk<'a>(
    py: Python<'_>,
    env: Env<'a>,
    ctx: &Arc<Runner>,
    iterator: &Bound<'_, PyAny>,
    count: usize,
) -> JobResult<Term<'a>> {
    let (items, done) = chunk(py, env, ctx, iterator, count)?;
    Ok((items, done).encode(env))
}

/// Up to `count` items of `iterator`, and whether it has ended. A sync
/// iterator is looked at once more after `count` items, so one that ends
/// there says so now (its last chunk costs no extra round trip); an item
/// found then goes with the chunk.
fn chunk<'a>(
    py: Python<'_>,
    env: Env<'a>,
    ctx: &Arc<Runner>,
    iterator: &Bound<'_, PyAny>,
    count: usize,
) -> JobResult<(Vec<Term<'a>>, bool)> {
    if is_async_iterator(iterator) {
        let chunk = crate::builtins::erlang_attr(py, "_anext_chunk")?.call1((iterator, count))?;
        let (items, done): (Vec<Bound<'_, PyAny>>, bool) = chunk.extract()?;
        let items = items
            .iter()
            .map(|item| to_term(py, env, item, ctx, 0))
            .collect::<JobResult<Vec<_>>>()?;
        return Ok((items, done));
    }
    let mut items = Vec::with_capacity(count.min(4096) + 1);
    let mut iter = iterator.try_iter()?;
    let mut done = false;
    while items.len() <= count {
        match iter.next() {
            Some(item) => items.push(to_term(py, env, &item?, ctx, 0)?),
            None => {
                done = true;
                break;
            }
        }
    }
    Ok((items, done))
}

fn invalid(message: &str) -> Failure {
    Failure::Invalid(message.to_string())
}

fn respond<'a>(
    py: Python<'_>,
    env: Env<'a>,
    ctx: &Arc<Runner>,
    result: &Bound<'_, PyAny>,
    ret: Term<'a>,
) -> JobResult<Term<'a>> {
    // A coroutine (or any awaitable) is run to completion on the thread's
    // event loop.
    let awaited;
    let result = if is_awaitable(result) {
        awaited = crate::builtins::erlang_attr(py, "_await")?.call1((result,))?;
        &awaited
    } else {
        result
    };
    match ret.decode::<Atom>().ok() {
        Some(r) if r == atoms::py_object_ret() => Ok(object::wrap(env, result, ctx)),
        Some(r) if r == atoms::array() => crate::convert::array::to_term(py, env, result),
        _ => to_term(py, env, result, ctx, 0),
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

/// `__main__.name` is looked up first in the namespace the request runs
/// in (the caller's, or the context's globals), where `Py.exec/2` defines
/// names, then in the real `__main__` module.
fn in_namespace<'py>(
    py: Python<'py>,
    namespace: &Namespace,
    target: Term,
    name: &Bound<'py, PyString>,
) -> JobResult<Option<Bound<'py, PyAny>>> {
    let is_main = match target.get_type() {
        TermType::Atom => target.decode::<Atom>().ok() == Some(atoms::main_module()),
        TermType::Binary => text(target, "module name")? == "__main__",
        _ => false,
    };
    if !is_main {
        return Ok(None);
    }
    Ok(namespace.dict(py)?.get_item(name)?)
}

fn resolve_target<'py>(
    py: Python<'py>,
    cache: &CodeCache<'py>,
    term: Term,
) -> JobResult<Bound<'py, PyAny>> {
    match term.get_type() {
        TermType::Map => to_py(py, term, 0),
        _ => {
            let name = cache.name(py, term, "module name")?;
            // sys.modules first: an already imported module costs a dict lookup.
            // SAFETY: attached; returns a borrowed reference to sys.modules.
            let modules = unsafe { Bound::from_borrowed_ptr(py, ffi::PyImport_GetModuleDict()) };
            if let Ok(Ok(Some(module))) = modules.cast::<PyDict>().map(|m| m.get_item(&name)) {
                if !module.is_none() {
                    return Ok(module);
                }
            }
            Ok(py.import(name)?.into_any())
        }
    }
}

fn args_tuple<'py>(py: Python<'py>, args: Term) -> JobResult<Bound<'py, PyTuple>> {
    if args.get_type() != TermType::List {
        return Err(Failure::Invalid(format!(
            "args must be a list, got: {args:?}"
        )));
    }
    let items = proper_list(args, "args")?;
    let count = args.list_length().unwrap_or(0);
    // SAFETY: attached; a new tuple of `count` slots, each set once below
    // (a tuple dropped with slots still empty is valid: they are NULL).
    let tuple = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyTuple_New(count as ffi::Py_ssize_t))?
            .cast_into_unchecked::<PyTuple>()
    };
    for (i, arg) in items.enumerate().take(count) {
        let item = to_py(py, arg, 1).map_err(|e| e.at(|| format!("argument {}", i + 1)))?;
        // SAFETY: `i` < `count`; the tuple is new and not shared yet;
        // SET_ITEM steals the reference `into_ptr` gives up.
        unsafe { ffi::PyTuple_SET_ITEM(tuple.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr()) };
    }
    Ok(tuple)
}

/// The items of a list; an improper list (rustler's iterator panics at its
/// tail) is an invalid request.
fn proper_list<'a>(list: Term<'a>, what: &str) -> JobResult<rustler::ListIterator<'a>> {
    list.list_length()
        .and_then(|_| list.into_list_iterator())
        .map_err(|_| invalid(&format!("{what} must be a proper list, got: {list:?}")))
}

/// Keyword arguments: a map or keyword list with atom or string keys.
fn kwargs_dict<'py>(py: Python<'py>, kwargs: Term) -> JobResult<Option<Bound<'py, PyDict>>> {
    if kwargs.is_empty_list() {
        return Ok(None);
    }
    let pairs: Vec<(Term, Term)> = match kwargs.get_type() {
        TermType::Map => MapIterator::new(kwargs)
            .ok_or_else(|| invalid("bad kwargs map"))?
            .collect(),
        TermType::List => {
            let mut pairs = Vec::new();
            for item in proper_list(kwargs, "kwargs")? {
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
    for (k, v) in &pairs {
        let key = text(*k, "keyword argument name")?;
        let value = to_py(py, *v, 1).map_err(|e| e.at(|| format!("keyword argument {key}")))?;
        dict.set_item(PyString::new(py, &key), value)?;
    }
    if dict.len() != pairs.len() {
        return Err(repeated_name(&pairs));
    }
    Ok(Some(dict))
}

/// The first name given twice in kwargs or bindings (`"x"` and `:x`, or a
/// keyword list with `x:` twice): Python would keep one value. Looked for
/// only once the sizes differ.
fn repeated_name(pairs: &[(Term, Term)]) -> Failure {
    let mut seen: std::collections::HashMap<String, Term> = std::collections::HashMap::new();
    for (k, _) in pairs {
        let Ok(key) = text(*k, "keyword argument name") else {
            continue;
        };
        if let Some(first) = seen.get(&key) {
            return Failure::conversion(format!(
                "the name {key} is given twice in the keyword arguments or bindings \
                 (as {first:?} and {k:?}), so one value would be lost; give it once"
            ));
        }
        seen.insert(key, *k);
    }
    Failure::conversion(
        "a name is given twice in the keyword arguments or bindings; give each once",
    )
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
