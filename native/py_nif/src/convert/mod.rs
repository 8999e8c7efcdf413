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
mod to_elixir;
mod to_python;

pub use to_elixir::{to_term, to_term_in};
pub use to_python::to_py;

use crate::error::Failure;
use pyo3::prelude::*;
use rustler::Term;
use std::sync::atomic::{AtomicBool, Ordering};

pub const MAX_DEPTH: usize = 100_000;

/// Whether large maps (over 32 keys) may be built with one
/// `enif_make_map_from_arrays` on our threads. Before OTP 27.3 that call
/// crashes the VM for a large map off a scheduler thread (OTP issue 8208's
/// root cause, fixed in 27.3; seen on 25.2), so it is set from Elixir only
/// where the running OTP release is new enough (`Py.Config`).
static LARGE_MAPS_IN_ONE_GO: AtomicBool = AtomicBool::new(false);

pub fn set_large_maps_in_one_go(on: bool) {
    LARGE_MAPS_IN_ONE_GO.store(on, Ordering::Relaxed);
}

pub(crate) fn large_maps_in_one_go() -> bool {
    LARGE_MAPS_IN_ONE_GO.load(Ordering::Relaxed)
}

pub(crate) fn describe(term: Term) -> String {
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
