//! One clock for every writer that waits to rest: a writer that wrote within
//! [`REST_AFTER`](super::writer::REST_AFTER) and has nothing to do asks to be woken at
//! the clock's next tick ([`RestClock::wake_later`]) instead of arming a timer of its
//! own, and looks again then.
//!
//! A timer per writer cost a reactor timer insert each time one was armed, and async-io
//! wakes its reactor thread for every insert (an `eventfd` write, a context switch, a
//! `timerfd_settime`): with 10,000 subscribers at 10 events/s on a machine whose other
//! core was busy, writers that ran for every event armed 10,000 timers a second, and
//! the server spent 8–10 % more CPU per delivered event than with resting off (W3
//! beside `stress-ng --cpu 1`, two A/B pairs). Here a request is a push on one vector,
//! and one timer wakes them all once per tick. A writer then rests between one and two
//! ticks after its last write, instead of exactly one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;
use std::time::Duration;

use async_io::Timer;

/// Wakers woken per poll of the clock's task before it yields. **Unit:** wakers.
/// **Why:** a tick may wake every writer of the server; waking is a queue push each,
/// and 1,024 at a time keeps one poll under about a tenth of a millisecond.
pub const WAKES_PER_POLL: usize = 1024;

/// The writers waiting for the next tick.
#[derive(Debug)]
pub(crate) struct RestClock {
    /// Time between ticks.
    tick: Duration,
    /// Ticks so far: a writer that asked during tick `n` has been woken once it reads
    /// more than `n`.
    ticks: AtomicU64,
    waiting: Mutex<Vec<Waker>>,
}

impl RestClock {
    /// A clock that ticks every `tick`.
    pub(crate) fn new(tick: Duration) -> RestClock {
        RestClock {
            tick,
            ticks: AtomicU64::new(0),
            waiting: Mutex::new(Vec::new()),
        }
    }

    /// The tick now (see [`RestClock::wake_later`]).
    pub(crate) fn now(&self) -> u64 {
        self.ticks.load(Ordering::SeqCst)
    }

    /// Wakes `waker` at the next tick; returns the tick it asked in. A writer asks once
    /// and again only once the tick moved past that one (it was woken): each writer is
    /// in the list at most once, so the list is bounded by the writers.
    pub(crate) fn wake_later(&self, waker: &Waker) -> u64 {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.push(waker.clone());
        // Read under the lock: the tick cannot move between the push and the read.
        self.now()
    }

    /// Ticks until dropped: each tick takes the list and wakes everyone in it, at most
    /// [`WAKES_PER_POLL`] per poll.
    pub(crate) async fn run(&self) {
        loop {
            Timer::after(self.tick).await;
            let woken = {
                let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
                self.ticks.fetch_add(1, Ordering::SeqCst);
                std::mem::take(&mut *waiting)
            };
            for chunk in woken.chunks(WAKES_PER_POLL) {
                for w in chunk {
                    w.wake_by_ref();
                }
                futures_lite::future::yield_now().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::tests::{counting, woken};
    use futures_lite::FutureExt;
    use std::sync::Arc;

    #[test]
    fn a_tick_wakes_each_asker_once_and_moves_the_tick() {
        let clock = Arc::new(RestClock::new(Duration::from_millis(20)));
        let (count, waker) = counting();
        let asked = clock.wake_later(&waker);
        clock.wake_later(&waker);
        let ticker = {
            let clock = clock.clone();
            std::thread::spawn(move || {
                futures_lite::future::block_on(clock.run().or(async {
                    Timer::after(Duration::from_millis(70)).await;
                }))
            })
        };
        ticker.join().unwrap();
        assert_eq!(woken(&count), 2, "each ask once");
        assert!(clock.now() > asked, "the tick moved past the ask");
        assert!(clock.waiting.lock().unwrap().is_empty());
    }
}
