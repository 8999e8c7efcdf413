//! Channels: Elixir sends terms, Python receives them.
//!
//! A channel is a queue of terms, each copied into an `OwnedEnv` by
//! `Py.Channel.send/2` (on the sender's scheduler, no Python involved) and
//! converted to Python on the thread that receives it. Python holds the
//! channel through a capsule (an `Arc` clone) wrapped in `erlang.Channel`
//! (bootstrap.py), whose methods call the builtins below:
//!
//! - `_chan_receive(c, timeout)`: the next message; blocks, GIL released;
//!   raises `erlang.ChannelClosed` once closed and drained, `TimeoutError`,
//!   or `erlang.Interrupted` when the running call is cancelled or closed
//! - `_chan_next(c)`: the same for iteration (StopIteration once closed)
//! - `_chan_poll(c)`: `(0, msg)`, `(1, None)` if empty, `(2, None)` if closed
//! - `_chan_fd(c)`: a file descriptor that is readable while the channel
//!   has messages or is closed, for `loop.add_reader` (made on first use,
//!   so synchronous receivers never pay for it)
//! - `_chan_watch(c, True)`: while an asyncio wait is on, a cancel of the
//!   running job sets the pipe, so the loop wakes and the wait ends; returns
//!   the token (the job id, or None outside a job) that
//!   `_chan_watch(c, False, token)` takes to end exactly that watch
//! - `_chan_close(c)`, `_chan_info(c)`: `(queued, closed)`
//!
//! The Elixir resource monitors its owner: when the owner exits, or the
//! last Elixir reference is dropped, the channel closes, so a Python loop
//! over it always ends.
use crate::blocking::{self, OnWake, Shared, Stop};
use crate::builtins::{self, builtin};
use crate::convert::to_py;
use pyo3::exceptions::{PyStopIteration, PyTimeoutError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rustler::env::SavedTerm;
use rustler::{LocalPid, OwnedEnv, Resource, Term};
use std::collections::VecDeque;
use std::ffi::CStr;
use std::sync::Arc;

pub const CAPSULE: &CStr = c"py.channel";

struct Message {
    env: OwnedEnv,
    term: SavedTerm,
}

pub struct ChannelState {
    queue: VecDeque<Message>,
    closed: bool,
    /// Maximum number of queued messages; 0 for no limit.
    capacity: usize,
    /// For asyncio: readable while `queue` is not empty or `closed`.
    notifier: Option<Notifier>,
}

pub type Channel = Shared<ChannelState>;

impl OnWake for ChannelState {
    /// A cancelled job may await this channel on an asyncio loop: make the
    /// loop wake up (the next poll raises `erlang.Interrupted`, and an empty
    /// poll clears the pipe again).
    fn on_wake(&mut self) {
        if let Some(notifier) = &self.notifier {
            notifier.set();
        }
    }
}

pub enum SendError {
    Full,
    Closed,
}

pub fn new(capacity: usize) -> Arc<Channel> {
    Arc::new(Shared::new(ChannelState {
        queue: VecDeque::new(),
        closed: false,
        capacity,
        notifier: None,
    }))
}

/// Copies `term` and queues it.
pub fn send(channel: &Channel, term: Term) -> Result<(), SendError> {
    let env = OwnedEnv::new();
    let term = env.save(term);
    let mut state = channel.state.lock();
    if state.closed {
        return Err(SendError::Closed);
    }
    if state.capacity > 0 && state.queue.len() >= state.capacity {
        return Err(SendError::Full);
    }
    if state.queue.is_empty() {
        if let Some(notifier) = &state.notifier {
            notifier.set();
        }
    }
    state.queue.push_back(Message { env, term });
    drop(state);
    channel.notify();
    Ok(())
}

/// No more messages; receivers drain what is queued, then stop.
pub fn close(channel: &Channel) {
    let mut state = channel.state.lock();
    if !state.closed {
        state.closed = true;
        if let Some(notifier) = &state.notifier {
            notifier.set();
        }
    }
    drop(state);
    channel.notify();
}

enum Next {
    Message(Message),
    Closed,
}

/// The next message, or `Closed`, or None when the caller must wait.
fn pop(state: &mut ChannelState) -> Option<Next> {
    match state.queue.pop_front() {
        Some(message) => {
            if state.queue.is_empty() && !state.closed {
                if let Some(notifier) = &state.notifier {
                    notifier.clear();
                }
            }
            Some(Next::Message(message))
        }
        None if state.closed => Some(Next::Closed),
        None => None,
    }
}

fn to_python(py: Python<'_>, message: Message) -> PyResult<Py<PyAny>> {
    message.env.run(|env| {
        to_py(py, message.term.load(env), 0)
            .map(Bound::unbind)
            .map_err(|failure| {
                let text = failure.describe(py);
                PyTypeError::new_err(format!(
                    "a message on the channel cannot cross into Python: {text}"
                ))
            })
    })
}

/// Blocks for the next message. `Ok(None)`: closed and drained.
fn receive(
    py: Python<'_>,
    channel: &Arc<Channel>,
    timeout: &Bound<'_, PyAny>,
) -> PyResult<Option<Py<PyAny>>> {
    match blocking::wait(channel, builtins::deadline(timeout)?, pop) {
        Ok(Next::Message(message)) => to_python(py, message).map(Some),
        Ok(Next::Closed) => Ok(None),
        Err(Stop::TimedOut) => Err(PyTimeoutError::new_err(
            "no message arrived on the channel within the timeout",
        )),
        Err(Stop::Interrupted) => Err(interrupted(py)),
    }
}

fn interrupted(py: Python<'_>) -> PyErr {
    builtins::erlang_error(
        py,
        "Interrupted",
        "the call was cancelled while it waited on a channel".into(),
    )
}

fn closed_error(py: Python<'_>) -> PyErr {
    builtins::erlang_error(py, "ChannelClosed", "the channel is closed".into())
}

/// The channel as Elixir holds it (`%Py.Channel{ref: ...}`).
pub struct ChannelRes(pub Arc<Channel>);

#[rustler::resource_impl]
impl Resource for ChannelRes {
    fn down<'a>(&'a self, _env: rustler::Env<'a>, _pid: LocalPid, _mon: rustler::Monitor) {
        close(&self.0);
    }
}

impl Drop for ChannelRes {
    fn drop(&mut self) {
        // Nobody in Elixir can send any more.
        close(&self.0);
    }
}

/// `erlang.Channel(capsule)` for a channel crossing into Python.
pub fn to_python_object<'py>(
    py: Python<'py>,
    channel: &Arc<Channel>,
) -> PyResult<Bound<'py, PyAny>> {
    let capsule = builtins::capsule(py, channel, CAPSULE)?;
    builtins::erlang_object(py, "Channel", capsule)
}

// ------------------------------------------------------------ asyncio

/// A non-blocking pipe: readable while set.
struct Notifier {
    read: i32,
    write: i32,
}

impl Notifier {
    fn new() -> Option<Notifier> {
        let mut fds = [0i32; 2];
        // Close-on-exec from the start: a fork+exec on another thread
        // cannot inherit the descriptors.
        // SAFETY: pipe2 writes two descriptors into the live array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return None;
        }
        Some(Notifier {
            read: fds[0],
            write: fds[1],
        })
    }

    fn set(&self) {
        // A full pipe is still readable: the result does not matter.
        // SAFETY: writes one byte from a live buffer to our descriptor.
        unsafe {
            let _ = libc::write(self.write, b"x".as_ptr() as *const _, 1);
        }
    }

    fn clear(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a live buffer from our non-blocking descriptor.
        unsafe { while libc::read(self.read, buf.as_mut_ptr() as *mut _, buf.len()) > 0 {} }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // SAFETY: closes the descriptors this struct owns.
        unsafe {
            libc::close(self.read);
            libc::close(self.write);
        }
    }
}

// ------------------------------------------------------------ builtins

fn channel_arg(args: &Bound<'_, PyTuple>) -> PyResult<Arc<Channel>> {
    builtins::from_capsule(&args.get_item(0)?, CAPSULE)
}

builtin!(
    RECEIVE_DEF,
    c"_chan_receive",
    c"_chan_receive(c, timeout): internal",
    |py, args| {
        let channel = channel_arg(args)?;
        match receive(py, &channel, &args.get_item(1)?)? {
            Some(message) => Ok(message),
            None => Err(closed_error(py)),
        }
    }
);

builtin!(
    NEXT_DEF,
    c"_chan_next",
    c"_chan_next(c): internal",
    |py, args| {
        let channel = channel_arg(args)?;
        match receive(py, &channel, &py.None().into_bound(py))? {
            Some(message) => Ok(message),
            None => Err(PyStopIteration::new_err(())),
        }
    }
);

builtin!(
    POLL_DEF,
    c"_chan_poll",
    c"_chan_poll(c): internal",
    |py, args| {
        let channel = channel_arg(args)?;
        if blocking::job_stopped() {
            return Err(interrupted(py));
        }
        let next = {
            let mut state = channel.state.lock();
            let next = pop(&mut state);
            if next.is_none() {
                // Empty and open: the pipe must not stay readable (a
                // cancel's wake-up may have set it).
                if let Some(notifier) = &state.notifier {
                    notifier.clear();
                }
            }
            next
        };
        let (status, value): (i64, Py<PyAny>) = match next {
            Some(Next::Message(message)) => (0, to_python(py, message)?),
            Some(Next::Closed) => (2, py.None()),
            None => (1, py.None()),
        };
        Ok(
            PyTuple::new(py, [status.into_pyobject(py)?.into_any().unbind(), value])?
                .into_any()
                .unbind(),
        )
    }
);

builtin!(FD_DEF, c"_chan_fd", c"_chan_fd(c): internal", |py, args| {
    let channel = channel_arg(args)?;
    let mut state = channel.state.lock();
    if state.notifier.is_none() {
        let notifier = Notifier::new().ok_or_else(|| {
            pyo3::exceptions::PyOSError::new_err("cannot make a pipe for the channel")
        })?;
        if !state.queue.is_empty() || state.closed {
            notifier.set();
        }
        state.notifier = Some(notifier);
    }
    let fd = state.notifier.as_ref().map_or(-1, |n| n.read);
    Ok(fd.into_pyobject(py)?.into_any().unbind())
});

builtin!(
    WATCH_DEF,
    c"_chan_watch",
    c"_chan_watch(c, True) -> token; _chan_watch(c, False, token): internal",
    |py, args| {
        let channel = channel_arg(args)?;
        if args.get_item(1)?.is_truthy()? {
            let token = blocking::watch(&channel);
            return Ok(token.into_pyobject(py)?.into_any().unbind());
        }
        // The job the watch was registered under, which need not be the
        // running one (a task can resume in a later call).
        let token: Option<u64> = args.get_item(2)?.extract()?;
        if let Some(job) = token {
            blocking::unwatch(&channel, job);
        }
        Ok(py.None())
    }
);

builtin!(
    CLOSE_DEF,
    c"_chan_close",
    c"_chan_close(c): internal",
    |py, args| {
        let channel = channel_arg(args)?;
        close(&channel);
        Ok(py.None())
    }
);

builtin!(
    INFO_DEF,
    c"_chan_info",
    c"_chan_info(c): internal",
    |py, args| {
        let channel = channel_arg(args)?;
        let (queued, closed) = {
            let state = channel.state.lock();
            (state.queue.len(), state.closed)
        };
        Ok((queued, closed).into_pyobject(py)?.into_any().unbind())
    }
);

/// Adds the channel builtins to the `erlang` module's dict.
pub fn install(py: Python<'_>, dict: &Bound<'_, PyDict>) -> PyResult<()> {
    builtins::install(
        py,
        dict,
        &[
            ("_chan_receive", &RECEIVE_DEF),
            ("_chan_next", &NEXT_DEF),
            ("_chan_poll", &POLL_DEF),
            ("_chan_fd", &FD_DEF),
            ("_chan_watch", &WATCH_DEF),
            ("_chan_close", &CLOSE_DEF),
            ("_chan_info", &INFO_DEF),
        ],
    )
}
