//! Process-independent envs for jobs, kept for reuse. A call needs one (its
//! request is copied into it by the caller's scheduler, its reply is built
//! in it by the runner); allocating one costs a `Process`-sized structure
//! and freeing it as much again, on the caller's path. A job's env comes
//! back here cleared when the job is dropped; at most `KEPT` wait.
use parking_lot::Mutex;
use rustler::OwnedEnv;

const KEPT: usize = 64;

static ENVS: Mutex<Vec<OwnedEnv>> = Mutex::new(Vec::new());

/// A cleared env: a kept one, or a new one.
pub fn take() -> OwnedEnv {
    ENVS.lock().pop().unwrap_or_default()
}

/// Clears `env` (terms saved in it can no longer be loaded) and keeps it,
/// unless enough are kept already.
pub fn give(mut env: OwnedEnv) {
    env.clear();
    let mut envs = ENVS.lock();
    if envs.len() < KEPT {
        envs.push(env);
    }
}
