//! Changes that every runner applies on its own thread before its next job
//! (a log level, an unregistered callback name, a venv): a count of the
//! changes made, and per thread the count that thread has applied. Checking
//! costs an atomic load and a thread-local read when nothing changed.
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::LocalKey;

pub struct Changes {
    made: AtomicU64,
    applied: &'static LocalKey<Cell<u64>>,
}

impl Changes {
    /// `applied`: a thread-local of this kind of change alone.
    pub const fn new(applied: &'static LocalKey<Cell<u64>>) -> Changes {
        Changes {
            made: AtomicU64::new(0),
            applied,
        }
    }

    /// Notes a change, once it is made.
    pub fn note(&self) {
        self.made.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether this thread has changes to apply; they count as applied
    /// from now on.
    pub fn take(&self) -> bool {
        let made = self.made.load(Ordering::Acquire);
        if self.applied.with(Cell::get) == made {
            return false;
        }
        self.applied.with(|a| a.set(made));
        true
    }

    /// Counts every change so far as applied on this thread (a slot thread,
    /// which starts from the current state).
    #[cfg(all(feature = "parallel", Py_3_12))]
    pub fn mark_applied(&self) {
        self.applied
            .with(|a| a.set(self.made.load(Ordering::Acquire)));
    }
}
