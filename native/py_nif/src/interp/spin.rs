//! How long a waiting runner polls before it sleeps: learned per thread
//! from the waits it has seen.
//!
//! Polling pays when the next message comes within the budget: the thread
//! skips a futex sleep and wake-up, which dominate a short call. It costs a
//! core meanwhile, and on a busy machine that core is what the caller
//! needed to send the next message. Two things are learned:
//!
//! - **The budget**, while polling: after each wait it follows the gap. A
//!   gap the full budget would have covered doubles it (up to the maximum),
//!   a longer one halves it (down to none, where the thread yields once and
//!   sleeps). Calls far apart bring it to none.
//! - **Whether to poll at all.** On a busy machine back-to-back calls still
//!   come within the budget, so the budget alone keeps polling, yet the
//!   polling is what makes them late: the poller and the caller share the
//!   busy cores, and the poller has used up its share of them when its
//!   turn to run comes (a runner with two busy loops beside it spent 8-10
//!   us of CPU per call polling, and waited up to milliseconds to run).
//!   So the thread measures what it is after, the mean wait, in windows of
//!   [`WINDOW`] waits, polling in some and sleeping at once (no poll, no
//!   yield) in others, and keeps the mode whose windows were shorter. It
//!   tries the other mode again after [`FIRST_PROBE`] windows, and half as
//!   often each time the other mode loses, so a settled choice costs little;
//!   two windows in a row much slower than before have it tried at once
//!   (the machine changed). A wait that ended asleep counts [`WAKE_COST`]
//!   more, for the wake-up its sender paid.
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The smallest budget worth polling for, when it grows from none.
const FLOOR: Duration = Duration::from_micros(4);

/// Waits per measured window.
const WINDOW: u32 = 64;

/// A wait counts as at most this in a window's mean: a wait longer than
/// this is a pause between calls, which sleeps in either mode.
const GAP_CAP: Duration = Duration::from_micros(200);

/// What a wait that ended asleep adds to its window besides its length:
/// the futex wake-up its sender paid, on the sender's thread (a BEAM
/// scheduler), which the sleeper does not see. Without it, many callers on
/// a busy machine chose sleeping, and paid in their schedulers' time.
const WAKE_COST: u64 = 2_000;

/// Waits a probe runs at least before it can end early (see `probe_lost`).
const PROBE_MIN: u32 = 8;

/// How much slower (besides twice as slow) than the last calm window a
/// window of the chosen mode must be to count as slow (`watch_for_change`).
const SLOWER: u64 = 5_000;

/// Windows in the chosen mode before the other is tried again, at first
/// and at most.
const FIRST_PROBE: u32 = 4;
const LAST_PROBE: u32 = 512;

#[derive(Clone, Copy)]
struct Learned {
    /// The polling budget (`None`: the maximum).
    budget: Option<Duration>,
    /// Poll (`true`) or sleep at once in this window.
    polling: bool,
    /// The chosen mode; the window runs the other one when probing.
    prefer_polling: bool,
    /// Waits and their capped sum (ns) in this window.
    waits: u32,
    sum: u64,
    /// The last window's mean wait (ns) in each mode.
    mean_polling: Option<u64>,
    mean_sleeping: Option<u64>,
    /// The chosen mode's last calm window (ns), and the slow ones since.
    calm: Option<u64>,
    slow: u32,
    /// Windows left before the next probe, and the interval it was set to.
    until_probe: u32,
    probe_every: u32,
}

impl Learned {
    const START: Learned = Learned {
        budget: None,
        polling: true,
        prefer_polling: true,
        waits: 0,
        sum: 0,
        mean_polling: None,
        mean_sleeping: None,
        calm: None,
        slow: 0,
        until_probe: 1,
        probe_every: FIRST_PROBE,
    };

    /// A probe already far behind the chosen mode: it ends early, so that
    /// trying the losing mode now and then costs little (sleeping at once
    /// on a quiet machine makes each wait about 50 us here, not 3).
    fn probe_lost(&self) -> bool {
        let chosen = if self.prefer_polling {
            self.mean_polling
        } else {
            self.mean_sleeping
        };
        match chosen {
            Some(chosen) if self.polling != self.prefer_polling && self.waits >= PROBE_MIN => {
                self.sum > u64::from(self.waits) * chosen * 2
            }
            _ => false,
        }
    }

    /// After a window of the chosen mode: two in a row much slower than
    /// the calm ones before them mean the machine changed (it got busy, or
    /// quiet): the other mode is tried at once. One slow window is this
    /// machine's noise, and probing on each would cost more than it finds.
    fn watch_for_change(&mut self, mean: u64) {
        match self.calm {
            Some(calm) if mean > calm * 2 && mean > calm + SLOWER => {
                self.slow += 1;
                if self.slow >= 2 {
                    self.until_probe = 1;
                    self.slow = 0;
                    // The new normal, if the other mode loses.
                    self.calm = Some(mean);
                }
            }
            _ => {
                self.calm = Some(mean);
                self.slow = 0;
            }
        }
    }

    /// Ends a window: records its mean, picks the next window's mode.
    fn end_window(&mut self) {
        let mean = self.sum / u64::from(self.waits.max(1));
        let probing = self.polling != self.prefer_polling;
        if self.polling {
            self.mean_polling = Some(mean);
        } else {
            self.mean_sleeping = Some(mean);
        }
        if !probing {
            self.watch_for_change(mean);
        }
        self.waits = 0;
        self.sum = 0;
        if probing {
            if let (Some(p), Some(s)) = (self.mean_polling, self.mean_sleeping) {
                let better = p <= s;
                if better == self.prefer_polling {
                    // The choice held: probe half as often.
                    self.probe_every = (self.probe_every * 2).min(LAST_PROBE);
                } else {
                    self.prefer_polling = better;
                    self.probe_every = FIRST_PROBE;
                    self.calm = None;
                    self.slow = 0;
                }
            }
            self.until_probe = self.probe_every;
            self.polling = self.prefer_polling;
        } else if self.until_probe <= 1 {
            self.polling = !self.prefer_polling;
            if self.polling {
                // A probe of polling polls as long as it may: a budget left
                // at none would only yield and sleep, and lose for that.
                self.budget = None;
            }
        } else {
            self.until_probe -= 1;
        }
    }
}

thread_local! {
    static LEARNED: Cell<Learned> = const { Cell::new(Learned::START) };
}

/// The budget to poll for now, at most `max`; `None` when this wait
/// should sleep at once, without polling or yielding.
pub fn budget(max: Duration) -> Option<Duration> {
    let learned = LEARNED.with(Cell::get);
    learned
        .polling
        .then(|| learned.budget.unwrap_or(max).min(max))
}

/// Learns from a wait that took `gap` under a budget of at most `max`;
/// `slept`: it ended asleep, so its sender paid a wake-up.
pub fn learn(gap: Duration, max: Duration, slept: bool) {
    LEARNED.with(|cell| {
        let mut learned = cell.get();
        if learned.polling {
            let current = learned.budget.unwrap_or(max).min(max);
            learned.budget = Some(if gap <= max {
                (current * 2).max(FLOOR).min(max)
            } else if current <= FLOOR {
                Duration::ZERO
            } else {
                current / 2
            });
        }
        learned.waits += 1;
        learned.sum += gap.min(GAP_CAP).as_nanos() as u64 + if slept { WAKE_COST } else { 0 };
        if learned.waits >= WINDOW || learned.probe_lost() {
            learned.end_window();
        }
        cell.set(learned);
    });
}

/// Polls `ready` for up to the learned budget, then, if nothing came,
/// yields once and calls `sleep` (or sleeps at once when this window does
/// not poll); learns from the whole wait.
pub fn wait<T>(
    max: Duration,
    mut ready: impl FnMut() -> Option<T>,
    sleep: impl FnOnce() -> T,
) -> T {
    let start = Instant::now();
    if let Some(budget) = budget(max) {
        loop {
            for _ in 0..64 {
                if let Some(value) = ready() {
                    learn(start.elapsed(), max, false);
                    return value;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= budget {
                break;
            }
        }
        std::thread::yield_now();
    }
    let (value, slept) = match ready() {
        Some(value) => (value, false),
        None => (sleep(), true),
    };
    learn(start.elapsed(), max, slept);
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
