//! Watching callers of long jobs, so that a caller's death cancels its job.
//!
//! Monitoring every caller at submit cost about 0.8 us a call (the monitor,
//! then its removal when the job's handle goes), a fifth of a short call.
//! Most calls end long before their caller could die, so callers are
//! watched lazily instead: a runner lists the jobs it runs (nested ones
//! too), and this module's thread, every `TICK`, monitors the caller of
//! each job that has run for a tick. A caller found dead then is cancelled
//! at once; one that dies later is cancelled by the monitor's `down`
//! callback (`JobRes::down`). A job that waited a tick or more in the queue
//! is checked the same way when it is taken (`Job::caller_gone`). So a
//! dead caller's job stops within about two ticks, and calls shorter than a
//! tick pay two clock reads and a short lock.
use super::job::JobRes;
use super::worker::Runner;
use parking_lot::Mutex;
use rustler::{LocalPid, ResourceArc};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

/// How often running jobs are looked at, and how long a job runs (or
/// waits) before its caller is watched.
pub const TICK: Duration = Duration::from_millis(20);

/// A running job whose caller may need watching.
pub struct Running {
    pub handle: ResourceArc<JobRes>,
    pub caller: LocalPid,
    pub started: Instant,
    pub watched: bool,
}

static RUNNERS: Mutex<Vec<Weak<Runner>>> = Mutex::new(Vec::new());
static THREAD: OnceLock<()> = OnceLock::new();

/// Puts a new runner under watch (and starts the watching thread once).
pub fn register(runner: &Arc<Runner>) {
    RUNNERS.lock().push(Arc::downgrade(runner));
    THREAD.get_or_init(|| {
        // Without the thread callers are not watched; nothing else breaks.
        let _ = std::thread::Builder::new()
            .name("py-watch".into())
            .spawn(watch_loop);
    });
}

fn watch_loop() {
    loop {
        std::thread::sleep(TICK);
        let runners: Vec<Arc<Runner>> = {
            let mut list = RUNNERS.lock();
            list.retain(|weak| weak.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        let now = Instant::now();
        for runner in runners {
            runner.watch_callers(now);
        }
    }
}

/// Watches `running`'s caller if it has run for a tick; false when the
/// caller is dead (the job should be cancelled). Off any BEAM thread.
pub fn watch(running: &mut Running, now: Instant) -> bool {
    if running.watched || now.duration_since(running.started) < TICK {
        return true;
    }
    running.watched = true;
    // Fails only for a process that is not alive (JobRes has a `down`).
    running.handle.monitor(None, &running.caller).is_some()
}
