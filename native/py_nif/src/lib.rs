//! `py_nif`: CPython inside the BEAM. Thin NIF entry points only; the work
//! happens on threads this library owns (see `worker` and `runtime`).
mod atoms;
mod convert;
mod copy_cost;
mod erlang;
mod error;
mod interp;
mod link;
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

use context::{Context, ContextRes, Namespace, NamespaceRes};
use job::{Cancel, Job, JobRes, JobState};
use rustler::{Encoder, Env, LocalPid, OwnedEnv, ResourceArc, Term};
use std::time::Duration;

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

/// Whether the context still accepts jobs (its runner is alive and it was
/// not closed).
#[rustler::nif]
fn context_open(ctx: ResourceArc<ContextRes>) -> bool {
    ctx.0.is_open()
}

fn new_context(main: bool, owner: LocalPid) -> Result<std::sync::Arc<Context>, String> {
    #[cfg(all(feature = "parallel", Py_3_12))]
    if !main {
        if let Some(runner) = slot::next() {
            return Ok(Context::new(runner, false, Some(owner)));
        }
    }
    let _ = main;
    let runner = worker::spawn_main_runner(format!("py-ctx-{}", next_context_number()))?;
    Ok(Context::new(runner, true, Some(owner)))
}

fn next_context_number() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A new context owned (and monitored) by the calling process. `:main`
/// gives it a thread of its own in the main interpreter; `:auto` puts it on
/// the next sub-interpreter slot in parallel builds (else as `:main`).
#[rustler::nif]
fn context_new(env: Env, interpreter: rustler::Atom) -> Term {
    if runtime::get().is_none() {
        return (atoms::error(), "the Python runtime is not started").encode(env);
    }
    let context = match new_context(interpreter == atoms::main(), env.pid()) {
        Ok(context) => context,
        Err(message) => return (atoms::error(), message).encode(env),
    };
    let ctx = ResourceArc::new(ContextRes(context));
    if ctx.monitor(Some(env), &env.pid()).is_none() {
        ctx.0.close();
        return (atoms::error(), "cannot monitor the owner process").encode(env);
    }
    (atoms::ok(), ctx).encode(env)
}

#[rustler::nif]
fn context_close(ctx: ResourceArc<ContextRes>) -> rustler::Atom {
    ctx.0.close();
    atoms::ok()
}

/// The context's load: jobs queued or running on its thread, or -1 when it
/// is closed. A thread stuck in an interrupted job counts as `i64::MAX`.
#[rustler::nif]
fn context_load(ctx: ResourceArc<ContextRes>) -> i64 {
    if ctx.0.is_open() {
        ctx.0.runner.load()
    } else {
        -1
    }
}

/// Whether `job` (an id from `{:py_interrupted, job}`) was interrupted on
/// this context's thread and is still running there.
#[rustler::nif]
fn context_stuck(ctx: ResourceArc<ContextRes>, job: u64) -> bool {
    ctx.0.runner.is_stuck_in(job)
}

/// Retires a context whose thread is stuck: the context is closed, the jobs
/// queued on its thread are answered `:not_queued`, and the thread is left
/// to end by itself when it returns to Python. In the parallel pool the
/// whole slot is replaced by a fresh one (its other contexts are closed and
/// renewed by their owners). On a dirty scheduler: a new slot starts here.
#[rustler::nif(schedule = "DirtyIo")]
fn context_retire(env: Env, ctx: ResourceArc<ContextRes>) -> Term {
    let context = &ctx.0;
    if !context.owns_runner() {
        // A slot's runner (the only shared kind a Py.Context has).
        #[cfg(all(feature = "parallel", Py_3_12))]
        if let Err(message) = slot::replace(&context.runner) {
            return (atoms::error(), message).encode(env);
        }
    }
    context.close();
    context.runner.retire(env);
    atoms::ok().encode(env)
}

/// Waits (on a dirty scheduler) until the context's thread has ended.
#[rustler::nif(schedule = "DirtyIo")]
fn context_wait(ctx: ResourceArc<ContextRes>, timeout_ms: u64) -> bool {
    ctx.0.wait_closed(Duration::from_millis(timeout_ms))
}

#[rustler::nif]
fn namespace_new(env: Env, ctx: ResourceArc<ContextRes>) -> Term {
    ResourceArc::new(NamespaceRes(Namespace::new(ctx.0.runner.clone()))).encode(env)
}

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

/// Settings each interpreter reads as it starts: the log level (Python's
/// level number, -1 for off), tracing on or off, whether Python code may
/// fork or exec, and whether it may end or signal the VM's process (the
/// process guard off). Call before `runtime_start`.
#[rustler::nif]
fn observe_configure(
    log_level: i64,
    tracing: bool,
    allow_fork: bool,
    allow_process_exit: bool,
) -> rustler::Atom {
    observe::configure(log_level, tracing, allow_fork, allow_process_exit);
    atoms::ok()
}

/// Changes the forwarded log level; each interpreter applies it before its
/// next call.
#[rustler::nif]
fn log_level_set(level: i64) -> rustler::Atom {
    observe::set_log_level(level);
    atoms::ok()
}

#[rustler::nif]
fn tracing_set(on: bool) -> rustler::Atom {
    observe::set_tracing(on);
    atoms::ok()
}

/// The process that receives events from Python threads outside any call
/// (`nil` to drop them).
#[rustler::nif]
fn sink_set(pid: Option<LocalPid>) -> rustler::Atom {
    observe::set_sink(pid);
    atoms::ok()
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

// ------------------------------------------------------------ channels

/// A channel owned (and monitored) by the calling process; `capacity` 0
/// means no limit.
#[rustler::nif]
fn channel_new(env: Env, capacity: usize) -> Term {
    let channel = ResourceArc::new(channel::ChannelRes(channel::new(capacity)));
    if channel.monitor(Some(env), &env.pid()).is_none() {
        channel::close(&channel.0);
        return (atoms::error(), "cannot monitor the owner process").encode(env);
    }
    (atoms::ok(), channel).encode(env)
}

/// `:ok`, `{:error, :full}` or `{:error, :closed}`; `:large` (nothing
/// sent) for a term too large to copy here: repeat it with
/// `channel_send_large`.
#[rustler::nif]
fn channel_send<'a>(
    env: Env<'a>,
    ch: ResourceArc<channel::ChannelRes>,
    term: Term<'a>,
) -> Term<'a> {
    if !copy_cost::cheap(term) {
        return atoms::large().encode(env);
    }
    channel_send_now(env, &ch, term)
}

/// `channel_send` of a large term, copied on a dirty scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn channel_send_large<'a>(
    env: Env<'a>,
    ch: ResourceArc<channel::ChannelRes>,
    term: Term<'a>,
) -> Term<'a> {
    channel_send_now(env, &ch, term)
}

fn channel_send_now<'a>(env: Env<'a>, ch: &channel::ChannelRes, term: Term<'a>) -> Term<'a> {
    match channel::send(&ch.0, term) {
        Ok(()) => atoms::ok().encode(env),
        Err(channel::SendError::Full) => (atoms::error(), atoms::full()).encode(env),
        Err(channel::SendError::Closed) => (atoms::error(), atoms::closed()).encode(env),
    }
}

#[rustler::nif]
fn channel_close(ch: ResourceArc<channel::ChannelRes>) -> rustler::Atom {
    channel::close(&ch.0);
    atoms::ok()
}

// ------------------------------------------------------------ buffers

/// A buffer owned (and monitored) by the calling process; `max_size` 0
/// means no limit.
#[rustler::nif]
fn buffer_new(env: Env, max_size: usize) -> Term {
    let buffer = ResourceArc::new(buffer::BufferRes(buffer::new(max_size)));
    if buffer.monitor(Some(env), &env.pid()).is_none() {
        buffer::close(&buffer.0);
        return (atoms::error(), "cannot monitor the owner process").encode(env);
    }
    (atoms::ok(), buffer).encode(env)
}

/// `:ok`, `{:error, :full}`, `{:error, :closed}` or `{:error, :not_binary}`.
#[rustler::nif]
fn buffer_write<'a>(env: Env<'a>, buf: ResourceArc<buffer::BufferRes>, data: Term<'a>) -> Term<'a> {
    match buffer::write(&buf.0, data) {
        Ok(()) => atoms::ok().encode(env),
        Err(buffer::WriteError::Full) => (atoms::error(), atoms::full()).encode(env),
        Err(buffer::WriteError::Closed) => (atoms::error(), atoms::closed()).encode(env),
        Err(buffer::WriteError::NotBinary) => (atoms::error(), atoms::not_binary()).encode(env),
    }
}

#[rustler::nif]
fn buffer_close(buf: ResourceArc<buffer::BufferRes>) -> rustler::Atom {
    buffer::close(&buf.0);
    atoms::ok()
}

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

/// Interrupts what the context runs now (`Py.interrupt/1`): `:ok`, or
/// `:idle` when it runs nothing.
#[rustler::nif]
fn context_interrupt(ctx: ResourceArc<ContextRes>) -> rustler::Atom {
    if ctx.0.runner.interrupt_running(ctx.0.id) {
        atoms::ok()
    } else {
        atoms::idle()
    }
}

/// Conversion settings that depend on the running VM: whether large maps
/// may be built in one go off a scheduler thread (see `convert`).
#[rustler::nif]
fn convert_configure(large_maps_in_one_go: bool) -> rustler::Atom {
    convert::set_large_maps_in_one_go(large_maps_in_one_go);
    atoms::ok()
}

/// Runs `erlang.<function>(arg)` (one of `interp::beside`'s) on a thread of
/// its own, attached to the context's interpreter beside its runner, which
/// may be busy: `:ok`, and `{tag, {:ok, value} | {:error, text}}` comes to
/// the caller; `{:error, text}` when it cannot start.
#[rustler::nif]
fn context_beside<'a>(
    env: Env<'a>,
    ctx: ResourceArc<ContextRes>,
    function: String,
    arg: String,
    tag: Term<'a>,
) -> Term<'a> {
    let Some(function) = interp::beside::function(&function) else {
        return (
            atoms::error(),
            format!("{function} cannot run beside a runner"),
        )
            .encode(env);
    };
    let owned = OwnedEnv::new();
    let saved = owned.save(tag);
    match interp::beside::spawn(
        ctx.0.runner.clone(),
        function,
        arg,
        env.pid(),
        (owned, saved),
    ) {
        Ok(()) => atoms::ok().encode(env),
        Err(why) => (atoms::error(), why).encode(env),
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

/// The load info is `MapSet.new([:__py_mapset_probe__])`, from which
/// conversion learns how this Elixir lays out a MapSet.
fn load(_env: Env, load_info: Term) -> bool {
    convert::mapset::learn(load_info);
    true
}

rustler::init!("Elixir.Py.Native", load = load);
