//! Isolated contexts: the link to their OS process, and handles for
//! their objects.
use crate::atoms;
use crate::context::{ContextRes, NamespaceRes};
use crate::{link, remote_object};
use rustler::{Encoder, Env, LocalPid, ResourceArc, Term};

/// A handle (`%Py.Object{}`'s ref) for object `id` of the isolated context
/// that `owner` runs, in its `generation`.
#[rustler::nif]
fn remote_object_new(
    owner: LocalPid,
    generation: u64,
    id: u64,
) -> ResourceArc<remote_object::RemoteObjectRes> {
    remote_object::new(owner, generation, id)
}

/// `{owner, generation, id}` of an isolated context's object handle, or
/// `nil` for any other term.
#[rustler::nif]
fn remote_object_info<'a>(env: Env<'a>, term: Term<'a>) -> Term<'a> {
    match term.decode::<ResourceArc<remote_object::RemoteObjectRes>>() {
        Ok(handle) => (handle.owner, handle.generation, handle.id).encode(env),
        Err(_) => atoms::nil().encode(env),
    }
}

/// The origin's end of a link to an isolated context's process:
/// `{:ok, link, name}` (the process connects to `name`) or `{:error, why}`.
#[rustler::nif]
fn link_listen(env: Env) -> Term {
    match link::listen() {
        Ok((line, name)) => (atoms::ok(), ResourceArc::new(link::LinkRes(line)), name).encode(env),
        Err(why) => (atoms::error(), why).encode(env),
    }
}

/// The isolated process's end, serving request frames on `ctx`.
#[rustler::nif]
fn link_connect(env: Env, name: String, ctx: ResourceArc<ContextRes>) -> Term {
    match link::connect(&name, ctx.0.clone()) {
        Ok(line) => (atoms::ok(), ResourceArc::new(link::LinkRes(line))).encode(env),
        Err(why) => (atoms::error(), why).encode(env),
    }
}

/// Sends a request frame without blocking and polls briefly for its reply:
/// `{:py_fast, result}`, `:pending`, `:busy`, `:too_large` or `:closed`.
#[rustler::nif]
fn link_call<'a>(env: Env<'a>, line: ResourceArc<link::LinkRes>, frame: Term<'a>) -> Term<'a> {
    link::call(env, &line.0, frame)
}

/// Waits up to `timeout_ms` for the isolated process's connection to be
/// accepted; whether it was.
#[rustler::nif(schedule = "DirtyIo")]
fn link_await(line: ResourceArc<link::LinkRes>, timeout_ms: u64) -> bool {
    line.0
        .await_open(std::time::Duration::from_millis(timeout_ms))
}

/// The calling process no longer waits for its reply over the link.
#[rustler::nif]
fn link_forget(env: Env, line: ResourceArc<link::LinkRes>) -> rustler::Atom {
    link::forget(&line.0, env.pid());
    atoms::ok()
}

/// Registers a stand-in's namespace for request frames; returns its id.
#[rustler::nif]
fn link_namespace(line: ResourceArc<link::LinkRes>, namespace: ResourceArc<NamespaceRes>) -> u64 {
    line.0.add_namespace(namespace)
}

#[rustler::nif]
fn link_namespace_drop(line: ResourceArc<link::LinkRes>, id: u64) -> rustler::Atom {
    line.0.drop_namespace(id);
    atoms::ok()
}

/// The job that request frame `id` queued, while it is queued or running.
#[rustler::nif]
fn link_job(env: Env, line: ResourceArc<link::LinkRes>, id: u64) -> Term {
    match line.0.job(id) {
        Some(job) => job.encode(env),
        None => atoms::nil().encode(env),
    }
}
