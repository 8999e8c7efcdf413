//! `py_nif`: CPython inside the BEAM. Thin NIF entry points only; the work
//! happens on threads this library owns (see `worker` and `runtime`).
mod atoms;
mod convert;
mod error;
mod io;
mod object;
mod pyptr;
mod request;
mod runtime;
mod worker;

use rustler::{Encoder, Env, LocalPid, NifResult, OwnedEnv, ResourceArc, Term};
use std::time::Duration;
use worker::{Cancel, ContextRes, Job, JobRes, JobState, NamespaceRes};

/// Starts the interpreter for `executable` (once per VM). Returns the
/// Python version and the libpython path that was made globally visible.
#[rustler::nif(schedule = "DirtyIo")]
fn runtime_start(executable: String) -> Result<(String, String), String> {
    let rt = runtime::start(&executable)?;
    Ok((rt.version.clone(), rt.libpython.clone()))
}

/// A new context owned (and monitored) by the calling process.
#[rustler::nif]
fn context_new(env: Env) -> Term {
    if runtime::get().is_none() {
        return (atoms::error(), "the Python runtime is not started").encode(env);
    }
    let shared = match worker::spawn() {
        Ok(shared) => shared,
        Err(message) => return (atoms::error(), message).encode(env),
    };
    let ctx = ResourceArc::new(ContextRes { shared });
    if ctx.monitor(Some(env), &env.pid()).is_none() {
        ctx.shared.close();
        return (atoms::error(), "cannot monitor the owner process").encode(env);
    }
    (atoms::ok(), ctx).encode(env)
}

#[rustler::nif]
fn context_close(ctx: ResourceArc<ContextRes>) -> rustler::Atom {
    ctx.shared.close();
    atoms::ok()
}

/// Waits (on a dirty scheduler) until the context's thread has ended.
#[rustler::nif(schedule = "DirtyIo")]
fn context_wait(ctx: ResourceArc<ContextRes>, timeout_ms: u64) -> bool {
    ctx.shared.wait_exited(Duration::from_millis(timeout_ms))
}

#[rustler::nif]
fn namespace_new(env: Env, ctx: ResourceArc<ContextRes>) -> Term {
    ResourceArc::new(NamespaceRes {
        owner: ctx.shared.clone(),
        dict: parking_lot::Mutex::new(None),
    })
    .encode(env)
}

/// Queues `request` on the context. The reply arrives as
/// `{reply_ref, result, io_requests}`.
#[rustler::nif]
fn submit<'a>(
    env: Env<'a>,
    ctx: ResourceArc<ContextRes>,
    namespace: Option<ResourceArc<NamespaceRes>>,
    reply_ref: Term<'a>,
    group_leader: LocalPid,
    request: Term<'a>,
) -> NifResult<Term<'a>> {
    let state = JobState::new(ctx.shared.clone());
    let owned = OwnedEnv::new();
    let job = Job {
        state: state.clone(),
        reply_ref: owned.save(reply_ref),
        request: owned.save(request),
        env: owned,
        caller: env.pid(),
        group_leader,
        namespace,
    };
    match ctx.shared.submit(job) {
        Ok(()) => Ok((atoms::ok(), ResourceArc::new(JobRes(state))).encode(env)),
        Err(()) => Ok((atoms::error(), atoms::closed()).encode(env)),
    }
}

/// Cancels a job whose caller gave up: `:dequeued` (it never ran),
/// `:cancelled` (it was interrupted), or `:sent` (its reply is already in,
/// or on its way to, the caller's mailbox).
#[rustler::nif]
fn cancel(job: ResourceArc<JobRes>) -> rustler::Atom {
    match job.0.cancel() {
        Cancel::Dequeued => atoms::dequeued(),
        Cancel::Cancelled => atoms::cancelled(),
        Cancel::AlreadySent => atoms::sent(),
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

rustler::init!("Elixir.Py.Native");
