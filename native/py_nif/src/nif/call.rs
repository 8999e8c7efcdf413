//! Calls: queueing a request on a context (or on an object's owner) and
//! cancelling it.
use crate::atoms;
use crate::context::{Context, ContextRes, NamespaceRes};
use crate::job::{Cancel, Job, JobRes, JobState};
use crate::{copy_cost, interp, object};
use rustler::{Encoder, Env, LocalPid, ResourceArc, Term};

/// Queues `request` on the context. The reply arrives as
/// `{reply_ref, result, io_requests}`. A request too large to copy on a
/// scheduler thread is not queued: `:large` (see `copy_cost`), and the
/// caller repeats it with `submit_large`.
#[rustler::nif]
fn submit<'a>(
    env: Env<'a>,
    ctx: ResourceArc<ContextRes>,
    namespace: Option<ResourceArc<NamespaceRes>>,
    reply_ref: Term<'a>,
    group_leader: LocalPid,
    request: Term<'a>,
    identity: Term<'a>,
) -> Term<'a> {
    if !copy_cost::cheap(request) {
        return atoms::large().encode(env);
    }
    queue(
        env,
        &ctx.0,
        namespace,
        reply_ref,
        group_leader,
        request,
        Some(identity),
    )
}

/// `submit` of a large request, copied on a dirty scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn submit_large<'a>(
    env: Env<'a>,
    ctx: ResourceArc<ContextRes>,
    namespace: Option<ResourceArc<NamespaceRes>>,
    reply_ref: Term<'a>,
    group_leader: LocalPid,
    request: Term<'a>,
    identity: Term<'a>,
) -> Term<'a> {
    queue(
        env,
        &ctx.0,
        namespace,
        reply_ref,
        group_leader,
        request,
        Some(identity),
    )
}

/// Queues `request` on the thread that owns `object` (its interpreter),
/// outside any context's namespace: for `repr` and the like on a handle from
/// anywhere. Replies like `submit`, `:large` included.
#[rustler::nif]
fn submit_to_owner<'a>(
    env: Env<'a>,
    object: ResourceArc<object::ObjectRes>,
    reply_ref: Term<'a>,
    group_leader: LocalPid,
    request: Term<'a>,
) -> Term<'a> {
    if !copy_cost::cheap(request) {
        return atoms::large().encode(env);
    }
    queue_on_owner(env, &object, reply_ref, group_leader, request)
}

/// `submit_to_owner` of a large request, copied on a dirty scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn submit_to_owner_large<'a>(
    env: Env<'a>,
    object: ResourceArc<object::ObjectRes>,
    reply_ref: Term<'a>,
    group_leader: LocalPid,
    request: Term<'a>,
) -> Term<'a> {
    queue_on_owner(env, &object, reply_ref, group_leader, request)
}

fn queue_on_owner<'a>(
    env: Env<'a>,
    object: &object::ObjectRes,
    reply_ref: Term<'a>,
    group_leader: LocalPid,
    request: Term<'a>,
) -> Term<'a> {
    let context = Context::new(object.owner.clone(), false, None);
    queue(env, &context, None, reply_ref, group_leader, request, None)
}

/// Copies the request into an owned env and queues it on the context:
/// `{:ok, job}` or `{:error, :closed}`.
fn queue<'a>(
    env: Env<'a>,
    context: &std::sync::Arc<Context>,
    namespace: Option<ResourceArc<NamespaceRes>>,
    reply_ref: Term<'a>,
    group_leader: LocalPid,
    request: Term<'a>,
    identity: Option<Term<'a>>,
) -> Term<'a> {
    // When the caller dies, the job is cancelled (see interp/watch.rs).
    let handle = ResourceArc::new(JobRes(JobState::new(context.clone())));
    let owned = interp::env_pool::take();
    // Who erlang.self() names, when not the caller: a pid (of the origin,
    // for a stand-in on an isolated context's node).
    let identity = identity
        .filter(|t| t.get_type() == rustler::TermType::Pid)
        .map(|t| owned.save(t));
    let job = Job {
        state: handle.0.clone(),
        reply_ref: owned.save(reply_ref),
        request: owned.save(request),
        env: std::mem::ManuallyDrop::new(owned),
        caller: env.pid(),
        group_leader,
        namespace,
        handle: handle.clone(),
        queued_at: std::time::Instant::now(),
        watched: false,
        link: None,
        identity,
    };
    match context.submit(job) {
        Ok(()) => (atoms::ok(), handle).encode(env),
        Err(()) => (atoms::error(), atoms::closed()).encode(env),
    }
}

/// Cancels a job whose caller gave up: `:dequeued` (it never ran),
/// `{:cancelled, io_requests}` (it was interrupted; replies to that many io
/// requests are on their way), or `:sent` (its reply is already in, or on
/// its way to, the caller's mailbox).
#[rustler::nif]
fn cancel(env: Env, job: ResourceArc<JobRes>) -> Term {
    match job.0.cancel_and_tell(env) {
        Cancel::Dequeued => atoms::dequeued().encode(env),
        Cancel::Cancelled(io_requests) => (atoms::cancelled(), io_requests).encode(env),
        Cancel::AlreadySent => atoms::sent().encode(env),
    }
}
