//! One error type for everything a job can fail with, and its Elixir form.
//!
//! Elixir receives `{:error, {kind, ...}}` and builds `%Py.Error{}`:
//! - `{:python, type, message, traceback}` for a Python exception
//! - `{:conversion, message}` when a value cannot cross (the message says where)
//! - `{:invalid, message}` for a malformed request
use crate::atoms;
use pyo3::prelude::*;
use pyo3::types::PyTraceback;
use rustler::{Encoder, Env, Term};

pub enum Failure {
    Python(PyErr),
    /// A Python exception whose object the caller asked to keep (see
    /// `keep`): it comes back as a `%Py.Object{}` too.
    Kept(PyErr),
    /// `path` is innermost-last after `at` calls on the way out.
    Conversion {
        message: String,
        path: Vec<String>,
    },
    Invalid(String),
}

pub type JobResult<T> = Result<T, Failure>;

impl From<PyErr> for Failure {
    fn from(err: PyErr) -> Self {
        Failure::Python(err)
    }
}

impl From<std::convert::Infallible> for Failure {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl Failure {
    pub fn conversion(message: impl Into<String>) -> Failure {
        Failure::Conversion {
            message: message.into(),
            path: Vec::new(),
        }
    }

    /// A Python exception's object is to be returned with the error.
    pub fn keep(self) -> Failure {
        match self {
            Failure::Python(err) => Failure::Kept(err),
            other => other,
        }
    }

    /// Records that the failure happened inside element `step`.
    pub fn at(mut self, step: impl FnOnce() -> String) -> Failure {
        if let Failure::Conversion { path, .. } = &mut self {
            path.push(step());
        }
        self
    }

    pub fn encode<'a>(self, py: Python<'_>, env: Env<'a>) -> Term<'a> {
        let reason = match self {
            Failure::Python(err) => python_reason(py, env, &err, false),
            Failure::Kept(err) => python_reason(py, env, &err, true),
            Failure::Conversion { message, path } => {
                (atoms::conversion(), with_path(message, &path)).encode(env)
            }
            Failure::Invalid(message) => (atoms::invalid(), message).encode(env),
        };
        (atoms::error(), reason).encode(env)
    }

    /// The failure as plain text, for a Python exception's message.
    pub fn describe(self, py: Python<'_>) -> String {
        match self {
            Failure::Python(err) | Failure::Kept(err) => {
                let (kind, message, _) = python_parts(py, &err);
                format!("{kind}: {message}")
            }
            Failure::Conversion { message, path } => with_path(message, &path),
            Failure::Invalid(message) => message,
        }
    }
}

/// `{:python, type, message, traceback}`, with a fifth element, a map,
/// when there is more to say: a SyntaxError's `line`, `offset` and `text`,
/// the exception itself as `exception` when it is kept.
fn python_reason<'a>(py: Python<'_>, env: Env<'a>, err: &PyErr, keep: bool) -> Term<'a> {
    let (kind, message, traceback) = python_parts(py, err);
    let mut extra: Vec<(Term<'a>, Term<'a>)> = Vec::new();
    let value = err.value(py);
    if value.is_instance_of::<pyo3::exceptions::PySyntaxError>() {
        let int = |name: &str| {
            value
                .getattr(name)
                .ok()
                .and_then(|v| v.extract::<i64>().ok())
        };
        if let Some(line) = int("lineno") {
            extra.push((atoms::line().encode(env), line.encode(env)));
        }
        if let Some(offset) = int("offset") {
            extra.push((atoms::offset().encode(env), offset.encode(env)));
        }
        if let Some(text) = value
            .getattr("text")
            .ok()
            .and_then(|t| t.extract::<String>().ok())
        {
            extra.push((atoms::text().encode(env), text.encode(env)));
        }
    }
    if keep {
        if let Some(runner) = crate::worker::current_runner() {
            let object = crate::object::wrap(env, value.as_any(), &runner);
            extra.push((atoms::exception().encode(env), object));
        }
    }
    if extra.is_empty() {
        return (atoms::python(), kind, message, traceback).encode(env);
    }
    let map = Term::map_from_pairs(env, &extra).unwrap_or_else(|_| Term::map_new(env));
    (atoms::python(), kind, message, traceback, map).encode(env)
}

/// Steps of a path shown at each end; a deeper one is elided in between
/// (a value nested 10,000 deep would make a message of hundreds of kB).
const PATH_ENDS: usize = 8;

fn with_path(message: String, path: &[String]) -> String {
    if path.is_empty() {
        return message;
    }
    let at: Vec<&str> = path.iter().rev().map(String::as_str).collect();
    let at = if at.len() > 2 * PATH_ENDS {
        let hidden = at.len() - 2 * PATH_ENDS;
        format!(
            "{} -> ... {hidden} more ... -> {}",
            at[..PATH_ENDS].join(" -> "),
            at[at.len() - PATH_ENDS..].join(" -> ")
        )
    } else {
        at.join(" -> ")
    };
    format!("{message} (at {at})")
}

/// Exception type name (module-qualified unless builtin), message, and the
/// formatted traceback (None when there is none).
pub fn python_parts(py: Python<'_>, err: &PyErr) -> (String, String, Option<String>) {
    let kind = crate::object::qualified_name(&err.get_type(py));
    let value = err.value(py);
    let message = value
        .str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "<exception str() failed>".into());
    let traceback = err
        .traceback(py)
        .and_then(|tb: Bound<'_, PyTraceback>| format_exception(py, err, &tb).ok());
    let message = match refused_subinterpreter(&message, traceback.as_deref()) {
        Some(module) => format!(
            "the module {module} does not support sub-interpreters, and this context runs in \
             one (the parallel pool). Run it on a context in the main interpreter: \
             {{:ok, ctx}} = Py.Context.start_link(interpreter: :main), then pass \
             context: ctx. (Python: {})",
            message.trim()
        ),
        None => message,
    };
    (kind, message, traceback)
}

/// The top-level module named by CPython's "module X does not support
/// loading in subinterpreters", if the error (or its cause) says so.
fn refused_subinterpreter(message: &str, traceback: Option<&str>) -> Option<String> {
    const MARK: &str = " does not support loading in subinterpreters";
    [Some(message), traceback]
        .into_iter()
        .flatten()
        .find_map(|text| {
            let end = text.find(MARK)?;
            let start = text[..end].rfind("module ")? + "module ".len();
            let full = &text[start..end];
            Some(full.split('.').next().unwrap_or(full).to_string())
        })
}

fn format_exception(py: Python<'_>, err: &PyErr, tb: &Bound<'_, PyTraceback>) -> PyResult<String> {
    let lines = py
        .import("traceback")?
        .getattr("format_exception")?
        .call1((err.get_type(py), err.value(py), tb))?;
    let joined = pyo3::types::PyString::new(py, "").call_method1("join", (lines,))?;
    joined.extract()
}

/// A one-line description of a Python error, for start-up failures.
pub fn describe(py: Python<'_>, err: &PyErr) -> String {
    let (kind, message, _) = python_parts(py, err);
    format!("{kind}: {message}")
}
