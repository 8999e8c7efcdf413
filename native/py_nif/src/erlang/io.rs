//! The running job's frame, and Python's stdout/stderr during a call going
//! to the caller's group leader.
//!
//! The runner pushes a thread-local frame for the duration of a job (jobs
//! nest when a callback into Elixir calls Python again); the
//! `erlang._write` builtin buffers text there and sends it as
//! `{:io_request, caller, ref, {:put_chars, :unicode, text}}` on each newline
//! (or when the buffer grows), so IEx, Livebook and `ExUnit.CaptureIO` see it.
//! The caller waits for one `{:io_reply, ref, _}` per request before it
//! returns, so output is complete when the call returns.
use crate::atoms;
use crate::builtins::builtin;
use crate::job::JobState;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyCFunction};
use rustler::env::SavedTerm;
use rustler::{Encoder, LocalPid, OwnedEnv};
use std::cell::RefCell;
use std::sync::Arc;

const FLUSH_AT: usize = 8 * 1024;

pub struct Target {
    pub caller: LocalPid,
    pub group_leader: LocalPid,
    pub state: Arc<JobState>,
    /// The caller's reference, saved in the job's env.
    reply_ref: SavedTerm,
    /// The process `erlang.self()` names when it is not the caller: the
    /// origin's caller of a call run for it by a stand-in on an isolated
    /// context's node (saved in the job's env).
    identity: Option<SavedTerm>,
    /// The running job's env; it outlives the target (see `begin`).
    job_env: *const OwnedEnv,
    buf: Vec<u8>,
    requests: u32,
}

thread_local! {
    static TARGET: RefCell<Vec<Target>> = const { RefCell::new(Vec::new()) };
}

/// Pushes the frame of the job about to run on this thread.
///
/// `job_env` must stay alive, unmoved, until `end` is called.
pub fn begin(
    caller: LocalPid,
    group_leader: LocalPid,
    state: Arc<JobState>,
    job_env: &OwnedEnv,
    reply_ref: SavedTerm,
    identity: Option<SavedTerm>,
) {
    TARGET.with(|t| {
        t.borrow_mut().push(Target {
            caller,
            group_leader,
            state,
            reply_ref,
            identity,
            job_env,
            buf: Vec::new(),
            requests: 0,
        })
    });
}

/// Runs `f` with the innermost running job's frame, if any.
pub fn with_frame<R>(f: impl FnOnce(&mut Target) -> R) -> Option<R> {
    TARGET.with(|t| t.borrow_mut().last_mut().map(f))
}

/// The caller's reply reference, copied into `env` (for messages tagged
/// with it).
pub fn reply_ref_in<'a>(target: &Target, env: rustler::Env<'a>) -> rustler::Term<'a> {
    // SAFETY: `begin`'s contract keeps the job env alive until `end`.
    let job_env = unsafe { &*target.job_env };
    job_env.run(|ref_env| target.reply_ref.load(ref_env).in_env(env))
}

/// The pid `erlang.self()` names for the innermost job, copied into `env`:
/// its identity if it has one, else its caller.
pub fn self_in<'a>(target: &Target, env: rustler::Env<'a>) -> rustler::Term<'a> {
    match &target.identity {
        // SAFETY: `begin`'s contract keeps the job env alive until `end`.
        Some(identity) => {
            let job_env = unsafe { &*target.job_env };
            job_env.run(|id_env| identity.load(id_env).in_env(env))
        }
        None => target.caller.encode(env),
    }
}

/// The identity of the innermost job (see `Target::identity`), copied into
/// `env`.
pub fn identity_in<'a>(target: &Target, env: rustler::Env<'a>) -> Option<rustler::Term<'a>> {
    let identity = target.identity.as_ref()?;
    // SAFETY: `begin`'s contract keeps the job env alive until `end`.
    let job_env = unsafe { &*target.job_env };
    Some(job_env.run(|id_env| identity.load(id_env).in_env(env)))
}

/// Flushes and pops the frame; returns how many io requests were sent.
pub fn end() -> u32 {
    TARGET.with(|t| match t.borrow_mut().pop() {
        Some(mut target) => {
            flush(&mut target);
            target.requests
        }
        None => 0,
    })
}

fn flush(target: &mut Target) {
    if target.buf.is_empty() {
        return;
    }
    let text = std::mem::take(&mut target.buf);
    let mut env = OwnedEnv::new();
    let caller = target.caller;
    // SAFETY: `begin`'s contract keeps the job env alive until `end`.
    let job_env = unsafe { &*target.job_env };
    let group_leader = target.group_leader;
    // Output of a job whose caller gave up is dropped: nobody waits for it.
    let sent = target.state.clone().send_to_caller(true, || {
        job_env
            .run(|ref_env| {
                let reply_ref = target.reply_ref.load(ref_env);
                env.send_and_clear(&group_leader, |env| {
                    let mut bin = rustler::NewBinary::new(env, text.len());
                    bin.as_mut_slice().copy_from_slice(&text);
                    let bin: rustler::Binary = bin.into();
                    (
                        atoms::io_request(),
                        caller,
                        reply_ref,
                        (atoms::put_chars(), atoms::unicode(), bin),
                    )
                        .encode(env)
                })
            })
            .is_ok()
    });
    if sent {
        target.requests += 1;
    }
}

/// Appends text for the current job; false when this thread runs no job.
fn write(text: &[u8]) -> bool {
    TARGET.with(|t| {
        let mut guard = t.borrow_mut();
        let Some(target) = guard.last_mut() else {
            // A thread that runs no job: the call it was started in.
            return crate::threads::write(text);
        };
        target.buf.extend_from_slice(text);
        if target.buf.len() >= FLUSH_AT || text.contains(&b'\n') {
            flush(target);
        }
        true
    })
}

builtin!(
    WRITE_DEF,
    c"_write",
    c"_write(fd, text) -> bool: internal, used by sys.stdout/stderr",
    |py, args| {
        let text: Option<String> = args
            .get_item(1)
            .ok()
            .and_then(|t| t.extract::<String>().ok());
        let handled = text.is_some_and(|text| write(text.as_bytes()));
        Ok(PyBool::new(py, handled).to_owned().into_any().unbind())
    }
);

/// The `_write` builtin, created in the calling interpreter.
pub fn write_function(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
    WRITE_DEF.function(py)
}
