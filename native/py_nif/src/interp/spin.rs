//! How long a waiting runner polls before it sleeps: a budget learned from
//! the gaps it has seen, per thread.
//!
//! Polling pays when the next message comes within the budget: the thread
//! skips a futex sleep and wake-up, which dominate a short call. It costs a
//! core meanwhile, and on a busy machine that core is what the caller
//! needed to send the next message: the gap grows past the budget, the
//! poll was wasted, and the caller came later for it. So after each wait
//! the budget follows the gap: a gap the full budget would have covered
//! doubles it (up to the maximum), a longer one halves it (down to none).
//! On a quiet machine back-to-back calls keep it at the maximum; on a busy
//! one, or between calls far apart, it falls to zero within a few waits and
//! the thread yields once and sleeps.
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The smallest budget worth polling for, when it grows from none.
const FLOOR: Duration = Duration::from_micros(4);

thread_local! {
    /// The current budget, per maximum (the plain and the linked one).
    static BUDGET: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// The budget to poll for now, at most `max`.
pub fn budget(max: Duration) -> Duration {
    BUDGET.with(|b| b.get().unwrap_or(max).min(max))
}

/// Learns from a wait that took `gap` under a budget of at most `max`.
pub fn learn(gap: Duration, max: Duration) {
    BUDGET.with(|b| {
        let current = b.get().unwrap_or(max).min(max);
        let next = if gap <= max {
            (current * 2).max(FLOOR).min(max)
        } else if current <= FLOOR {
            Duration::ZERO
        } else {
            current / 2
        };
        b.set(Some(next));
    });
}

/// Polls `ready` for up to the learned budget, then, if nothing came,
/// yields once and calls `sleep`; learns from the whole wait.
pub fn wait<T>(
    max: Duration,
    mut ready: impl FnMut() -> Option<T>,
    sleep: impl FnOnce() -> T,
) -> T {
    let start = Instant::now();
    let budget = budget(max);
    loop {
        for _ in 0..64 {
            if let Some(value) = ready() {
                learn(start.elapsed(), max);
                return value;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= budget {
            break;
        }
    }
    std::thread::yield_now();
    let value = match ready() {
        Some(value) => value,
        None => sleep(),
    };
    learn(start.elapsed(), max);
    value
}

/// `wait` on a flume queue: its next item, polled for the learned budget
/// (at most `max`) before the thread sleeps on it.
pub fn recv<T>(rx: &flume::Receiver<T>, max: Duration) -> Result<T, flume::RecvError> {
    wait(
        max,
        || match rx.try_recv() {
            Ok(item) => Some(Ok(item)),
            Err(flume::TryRecvError::Disconnected) => Some(Err(flume::RecvError::Disconnected)),
            Err(flume::TryRecvError::Empty) => None,
        },
        || rx.recv(),
    )
}

/// `recv` on a queue whose senders count their sends in `sent` (after
/// sending): while it polls, the thread reads that counter and takes the
/// queue's lock only when it has moved. A flume queue is behind a mutex:
/// polled with `try_recv` back to back, the poller holds it so often that
/// a sender finds it locked, parks, and has to be woken, which made
/// queueing a call cost more than running it.
pub fn recv_counted<T>(
    rx: &flume::Receiver<T>,
    sent: &AtomicU64,
    max: Duration,
) -> Result<T, flume::RecvError> {
    // Read before the first look: a message sent after that look moves
    // the counter past this value (its sender counts after sending).
    let mut seen = sent.load(Ordering::Acquire);
    let take = |rx: &flume::Receiver<T>| match rx.try_recv() {
        Ok(item) => Some(Ok(item)),
        Err(flume::TryRecvError::Disconnected) => Some(Err(flume::RecvError::Disconnected)),
        Err(flume::TryRecvError::Empty) => None,
    };
    if let Some(item) = take(rx) {
        return item;
    }
    wait(
        max,
        || {
            let now = sent.load(Ordering::Acquire);
            if now == seen {
                return None;
            }
            seen = now;
            take(rx)
        },
        || rx.recv(),
    )
}
