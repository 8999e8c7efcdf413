//! Where a Python thread that runs no job (one that Python code started)
//! sends its calls to registered functions. Its first call goes to py's
//! event sink, which starts a process for it; that process answers, and
//! the answer tells the thread who it is. The thread's later calls go to
//! that process directly (`Py.Callbacks.serve_thread/4`), which saves the
//! sink's hop and a process spawn per call.
//!
//! The process ends when the thread does (this thread-local's destructor
//! tells it) or after a minute without a call. The thread sends to it only
//! within `FRESH` of its last answer, well inside that minute, so a call
//! never reaches a process that is about to end; a send to one that has
//! died (killed) fails, and the call goes to the sink again.
use crate::atoms;
use rustler::{Encoder, LocalPid, OwnedEnv};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Half of the serving process's idle time (`Py.Callbacks`, 60 s).
const FRESH: Duration = Duration::from_secs(30);

struct Route(Cell<Option<(LocalPid, Instant)>>);

impl Drop for Route {
    fn drop(&mut self) {
        if let Some((server, _)) = self.0.get() {
            let mut env = OwnedEnv::new();
            let _ = env.send_and_clear(&server, |env| atoms::py_thread_ended().encode(env));
        }
    }
}

thread_local! {
    static ROUTE: Route = const { Route(Cell::new(None)) };
}

/// The process serving this thread's calls, if it answered one lately.
pub fn server() -> Option<LocalPid> {
    ROUTE
        .try_with(|route| route.0.get())
        .ok()
        .flatten()
        .filter(|(_, answered)| answered.elapsed() < FRESH)
        .map(|(server, _)| server)
}

/// `server` answered this thread's call just now.
pub fn answered_by(server: LocalPid) {
    let _ = ROUTE.try_with(|route| route.0.set(Some((server, Instant::now()))));
}

/// The serving process is gone: the next call goes to the sink.
pub fn forget() {
    let _ = ROUTE.try_with(|route| route.0.set(None));
}
