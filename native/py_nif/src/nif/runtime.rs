//! The runtime and the settings every interpreter shares: start-up, the
//! mode and its slots, object counts, virtual environments, preloads,
//! conversion settings.
use crate::atoms;
use crate::{convert, object, preload, runtime, venv};
use rustler::{Encoder, Env, Term};
use std::time::Duration;

#[cfg(all(feature = "parallel", Py_3_12))]
use crate::slot;

/// Starts the interpreter for `executable` (once per VM). Returns the
/// Python version and the libpython path that was made globally visible.
#[rustler::nif(schedule = "DirtyIo")]
fn runtime_start(executable: String, slots: usize) -> Result<(String, String), String> {
    let rt = runtime::start(&executable)?;
    #[cfg(all(feature = "parallel", Py_3_12))]
    slot::start(slots.max(1))?;
    #[cfg(not(all(feature = "parallel", Py_3_12)))]
    let _ = slots;
    Ok((rt.version.clone(), rt.libpython.clone()))
}

/// `:parallel` (sub-interpreter slots), `:free_threaded` (no GIL) or
/// `:worker`.
#[rustler::nif]
fn mode() -> rustler::Atom {
    if cfg!(all(feature = "parallel", Py_3_12)) {
        atoms::parallel()
    } else if cfg!(Py_GIL_DISABLED) {
        atoms::free_threaded()
    } else {
        atoms::worker()
    }
}

/// Number of sub-interpreter slots (0 outside the parallel pool).
#[rustler::nif]
fn slot_count() -> usize {
    #[cfg(all(feature = "parallel", Py_3_12))]
    return slot::count();
    #[cfg(not(all(feature = "parallel", Py_3_12)))]
    0
}

/// Ends a slot's interpreter and starts a fresh one (for tests and
/// recovery). Contexts on the old slot are closed.
#[rustler::nif(schedule = "DirtyIo")]
fn slot_recreate(env: Env, index: usize) -> Term {
    #[cfg(all(feature = "parallel", Py_3_12))]
    let result = slot::recreate(index);
    #[cfg(not(all(feature = "parallel", Py_3_12)))]
    let result: Result<(), String> = Err(format!(
        "there is no slot {index}: this build has no parallel pool"
    ));
    match result {
        Ok(()) => atoms::ok().encode(env),
        Err(message) => (atoms::error(), message).encode(env),
    }
}

/// Number of `%Py.Object{}` handles alive.
#[rustler::nif]
fn live_objects() -> i64 {
    object::live()
}

/// Waits (on a dirty scheduler) until at most `limit` handles are alive.
#[rustler::nif(schedule = "DirtyIo")]
fn await_live_objects(limit: i64, timeout_ms: u64) -> bool {
    object::wait_live_at_most(limit, Duration::from_millis(timeout_ms))
}

/// Makes `{prefix, site_dirs}` the active virtual environment in every
/// interpreter (`nil` deactivates): `:ok` or `{:error, message}`.
#[rustler::nif(schedule = "DirtyIo")]
fn venv_set(env: Env, spec: Option<(String, Vec<String>)>) -> Term {
    if runtime::get().is_none() {
        return (atoms::error(), "the Python runtime is not started").encode(env);
    }
    let spec = spec.map(|(prefix, site_dirs)| venv::Spec { prefix, site_dirs });
    match venv::set(spec) {
        Ok(()) => atoms::ok().encode(env),
        Err(message) => (atoms::error(), message).encode(env),
    }
}

/// The active virtual environment's prefix, or `nil`.
#[rustler::nif]
fn venv_current() -> Option<String> {
    venv::current()
}

/// Adds a preload (`Py.preload/1`): applied in the main interpreter now
/// (its failure returned), then in every sub-interpreter slot.
#[rustler::nif(schedule = "DirtyIo")]
fn preload_add(
    paths: Vec<String>,
    imports: Vec<String>,
    code: Option<String>,
) -> Result<(), String> {
    preload::add(preload::Spec {
        paths,
        imports,
        code,
    })
}

/// Conversion settings that depend on the running VM: whether large maps
/// may be built in one go off a scheduler thread (see `convert`).
#[rustler::nif]
fn convert_configure(large_maps_in_one_go: bool) -> rustler::Atom {
    convert::set_large_maps_in_one_go(large_maps_in_one_go);
    atoms::ok()
}
