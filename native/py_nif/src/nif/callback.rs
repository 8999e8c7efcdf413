//! Callbacks: the names Python may call, their answers (from a call's
//! process or a Python thread's), and a call's callback route.
use crate::atoms;
use crate::job::JobRes;
use crate::{callback, copy_cost};
use rustler::{Encoder, Env, LocalPid, ResourceArc, Term};

/// Makes `name` callable from Python (`erlang.name`, `erlang.call`).
#[rustler::nif]
fn callback_register(name: String) -> rustler::Atom {
    callback::register(name);
    atoms::ok()
}

#[rustler::nif]
fn callback_unregister(name: String) -> rustler::Atom {
    callback::unregister(&name);
    atoms::ok()
}

/// The answer to a callback: `{:ok, value}` or `{:error, message}`.
/// `:large` (nothing sent) when it is too large to copy here: repeat it
/// with `callback_reply_large`.
#[rustler::nif]
fn callback_reply(handle: ResourceArc<callback::CallbackRes>, result: Term) -> rustler::Atom {
    if !copy_cost::cheap(result) {
        return atoms::large();
    }
    callback::reply(&handle, result);
    atoms::ok()
}

/// `callback_reply` of a large answer, copied on a dirty scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn callback_reply_large(handle: ResourceArc<callback::CallbackRes>, result: Term) -> rustler::Atom {
    callback::reply(&handle, result);
    atoms::ok()
}

/// Whether a callback's answer was delivered (its process is then free).
#[rustler::nif]
fn callback_answered(handle: ResourceArc<callback::CallbackRes>) -> bool {
    handle.answered()
}

/// Sends the job's later callbacks straight to `worker`, the process its
/// caller started for them (`erlang/callback_route.rs`).
#[rustler::nif]
fn callback_route(job: ResourceArc<JobRes>, worker: LocalPid) -> rustler::Atom {
    job.0.callback_route.set(worker);
    atoms::ok()
}

/// Takes the job's callback route back (its process died): `{handle, name}`
/// of the callback it had been sent and not answered, or `nil`.
#[rustler::nif]
fn callback_unroute(env: Env, job: ResourceArc<JobRes>) -> Term {
    match job.0.callback_route.take() {
        Some((handle, name)) => (handle, name).encode(env),
        None => atoms::nil().encode(env),
    }
}

/// The event sink's answer to an `erlang.state_*` call from a thread
/// outside any call: `{:ok, value}` or `{:error, message}`.
/// `:large` as `callback_reply`.
#[rustler::nif]
fn thread_reply(
    env: Env,
    handle: ResourceArc<callback::ThreadReplyRes>,
    result: Term,
) -> rustler::Atom {
    if !copy_cost::cheap(result) {
        return atoms::large();
    }
    callback::thread_reply(&handle, result, env.pid());
    atoms::ok()
}

/// `thread_reply` of a large answer, copied on a dirty scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn thread_reply_large(
    env: Env,
    handle: ResourceArc<callback::ThreadReplyRes>,
    result: Term,
) -> rustler::Atom {
    callback::thread_reply(&handle, result, env.pid());
    atoms::ok()
}
