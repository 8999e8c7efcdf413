//! A runner's asyncio event loop, run while the runner has nothing to do,
//! so that tasks and servers that calls started keep making progress
//! between calls.
//!
//! After a job that ran the thread's event loop (`erlang._await` marks
//! it), the runner asks Python (`erlang._loop_idle`) whether that loop has
//! work left (tasks, callbacks, timers, watched sockets). If it has, the
//! loop runs until a message for the runner arrives: whoever queues one
//! writes a byte to the runner's wake pipe, which the loop watches; after
//! that message the runner asks again. The pipe is armed only while the
//! loop runs, and the question is asked only after the loop ran, so calls
//! that do not use asyncio pay nothing but a thread-local read (and the
//! sender one atomic load).
use crate::builtins::builtin;
use pyo3::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

/// The wake pipe of one runner.
pub struct Wake {
    /// (read end, write end), made on first use.
    pipe: OnceLock<Option<(i32, i32)>>,
    /// The write end while the loop runs; -1 otherwise.
    armed: AtomicI32,
}

impl Wake {
    pub fn new() -> Wake {
        Wake {
            pipe: OnceLock::new(),
            armed: AtomicI32::new(-1),
        }
    }

    fn pipe(&self) -> Option<(i32, i32)> {
        *self.pipe.get_or_init(|| {
            let mut fds = [0i32; 2];
            // SAFETY: two ints for pipe2 to fill.
            let made =
                unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } == 0;
            made.then_some((fds[0], fds[1]))
        })
    }

    /// Wakes the loop if it runs (after a message was queued).
    pub fn wake(&self) {
        let fd = self.armed.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: the pipe lives as long as `self`; a full pipe (the loop
            // is being woken already) returns EAGAIN, which is fine.
            unsafe { libc::write(fd, [1u8].as_ptr() as *const libc::c_void, 1) };
        }
    }

    fn drain(read: i32) {
        let mut buf = [0u8; 64];
        // SAFETY: a non-blocking pipe; stops at EAGAIN.
        while unsafe { libc::read(read, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) } > 0 {}
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        if let Some(Some((read, write))) = self.pipe.get() {
            // SAFETY: ours, closed once.
            unsafe {
                libc::close(*read);
                libc::close(*write);
            }
        }
    }
}

thread_local! {
    /// This thread's event loop ran since it last had no work left.
    static CHECK: Cell<bool> = const { Cell::new(false) };
}

/// Called when this thread's event loop runs (a job awaits on it): it may
/// keep tasks that have not finished.
pub fn loop_used() {
    CHECK.with(|c| c.set(true));
}

/// Runs the thread's loop while it has work and `idle()` holds (nothing is
/// queued). Attached.
pub fn run(py: Python<'_>, wake: &Wake, idle: impl Fn() -> bool) {
    let Some((read, write)) = wake.pipe() else {
        return;
    };
    // Until a message is queued: a wake-up with nothing queued (a byte
    // written just before the last disarm) runs the loop again.
    while CHECK.with(Cell::get) {
        // Armed first, then checked: a message queued after the check finds
        // the pipe armed and wakes the loop.
        wake.armed.store(write, Ordering::SeqCst);
        let queued = !idle();
        if !queued {
            let ran = py
                .import("erlang")
                .and_then(|m| m.getattr("_loop_idle"))
                .and_then(|f| f.call1((read,)))
                .and_then(|ran| ran.is_truthy());
            match ran {
                Ok(true) => {}
                Ok(false) => CHECK.with(|c| c.set(false)),
                Err(err) => {
                    CHECK.with(|c| c.set(false));
                    err.print(py);
                }
            }
        }
        wake.armed.store(-1, Ordering::SeqCst);
        Wake::drain(read);
        if queued {
            return;
        }
    }
}

builtin!(
    LOOP_USED_DEF,
    c"_loop_used",
    c"_loop_used(): internal, this thread's event loop runs",
    |py, _| {
        loop_used();
        Ok(py.None())
    }
);

/// Adds `_loop_used` to the `erlang` module's dict.
pub fn install(py: Python<'_>, dict: &Bound<'_, pyo3::types::PyDict>) -> PyResult<()> {
    crate::builtins::install(py, dict, &[("_loop_used", &LOOP_USED_DEF)])
}
