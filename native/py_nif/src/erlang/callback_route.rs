//! Where a call's callbacks go once its caller has started a process for
//! them (`Py.Callbacks.start_worker`): straight to that process, instead of
//! through the caller, which would only pass each one on. That saves the
//! caller's wake-up, one of the three hops of a callback.
//!
//! The caller still watches the process: when it dies, the caller takes
//! the route back (`take`) and answers the callback the process had been
//! sent and had not answered. The route and that callback change under one
//! lock, so a callback is either sent before the route is taken back (and
//! then handed to the caller as pending) or goes to the caller itself.
use super::callback::CallbackRes;
use parking_lot::Mutex;
use rustler::{LocalPid, ResourceArc};

#[derive(Default)]
pub struct Route(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    /// The process serving the call's callbacks, once the caller set it.
    worker: Option<LocalPid>,
    /// The last callback sent to it, and its function's name.
    pending: Option<(ResourceArc<CallbackRes>, String)>,
}

impl Route {
    /// Sends callbacks to `worker` from now on.
    pub fn set(&self, worker: LocalPid) {
        *self.0.lock() = Inner {
            worker: Some(worker),
            pending: None,
        };
    }

    /// Runs `send` with the process callbacks go to, if the caller set
    /// one, and returns whether it did (if not, the callback goes to the
    /// caller). The callback is then pending there. A failed send (the
    /// process has just died) counts as sent: the caller, told of the
    /// death, answers it (`take`).
    pub fn send(
        &self,
        handle: &ResourceArc<CallbackRes>,
        name: &str,
        send: impl FnOnce(&LocalPid),
    ) -> bool {
        let mut inner = self.0.lock();
        let Some(worker) = inner.worker else {
            return false;
        };
        send(&worker);
        inner.pending = Some((handle.clone(), name.to_string()));
        true
    }

    /// Takes the route back (its process died): the callback it had been
    /// sent and not answered, if any, for the caller to answer.
    pub fn take(&self) -> Option<(ResourceArc<CallbackRes>, String)> {
        let mut inner = self.0.lock();
        inner.worker = None;
        inner
            .pending
            .take()
            .filter(|(handle, _)| !handle.answered())
    }
}
