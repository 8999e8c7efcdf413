//! `py_nif`: CPython inside the BEAM. The NIF entry points are in `nif`,
//! one file per concern, and are thin: the work happens on threads this
//! library owns (see `interp::worker` and `interp::runtime`).
mod atoms;
mod convert;
mod copy_cost;
mod erlang;
mod error;
mod interp;
mod link;
mod nif;
mod object;
mod preload;
mod pyptr;
mod remote_object;
mod request;
mod venv;

// The crate's paths name these modules directly (`crate::worker`, ...).
use erlang::{
    blocking, buffer, builtins, callback, callback_route, channel, io, observe, thread_route,
    threads,
};
#[cfg(all(feature = "parallel", Py_3_12))]
use interp::slot;
use interp::{context, job, runtime, worker};

use rustler::{Env, Term};

/// The load info is `MapSet.new([:__py_mapset_probe__])`, from which
/// conversion learns how this Elixir lays out a MapSet.
fn load(_env: Env, load_info: Term) -> bool {
    convert::mapset::learn(load_info);
    true
}

rustler::init!("Elixir.Py.Native", load = load);
