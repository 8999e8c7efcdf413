//! Contexts: opening, closing, their load, retiring a stuck one,
//! interrupting, namespaces, and work beside a busy runner.
use crate::atoms;
use crate::context::{Context, ContextRes, Namespace, NamespaceRes};
use crate::{interp, runtime, worker};
use rustler::{Encoder, Env, LocalPid, OwnedEnv, ResourceArc, Term};
use std::time::Duration;

#[cfg(all(feature = "parallel", Py_3_12))]
use crate::slot;

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
