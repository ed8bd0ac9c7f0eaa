//! The publish fence: while a sentinel runs a failover of our master, publishes are not
//! acknowledged.
//!
//! Why: a clean `SENTINEL FAILOVER` sends `REPLICAOF NO ONE` to the chosen replica and
//! learns of the promotion up to a second later (its `INFO` period); the sentinels
//! announce `+promoted-slave` only then. Whatever the old master took in between is
//! lost when it is turned into a replica: 140 to 195 acknowledged events at 200 ev/s in
//! `scripts/soak-cluster.sh --sentinel 20`. The leading sentinel announces each step
//! before it takes it (`+try-failover` … `+failover-state-send-slaveof-noone`, at least
//! one of its timer ticks, 50 to 100 ms, before the `REPLICAOF NO ONE`), so a node that hears the first
//! step stops acknowledging in time.
//!
//! | event                                   | fence of that sentinel | epoch   |
//! |-----------------------------------------|------------------------|---------|
//! | a step of a failover (`raise`)          | up for failover-timeout| +1      |
//! | that sentinel's failover ended (`lower`)| down                   | same    |
//! | a promotion or switch heard (`lower_all`)| all down              | +1      |
//! | failover-timeout passed                 | down (by time)         | same    |
//!
//! A publish is refused while any sentinel's fence is up, and one whose `XADD` was
//! answered after the epoch moved is refused too (`503`; the entry may exist, and a
//! retry with the same `Idempotency-Key` is safe): it may have been written to the old
//! master after the failover began.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// One fence per sentinel, and the epoch that moves when a failover starts or ends in a
/// promotion.
#[derive(Debug)]
pub(super) struct Fence {
    /// Until when each sentinel's failover fences publishing (`None`: it runs none).
    until: Mutex<Vec<Option<Instant>>>,
    /// Bumped by [`Fence::raise`] and [`Fence::lower_all`].
    epoch: AtomicU64,
}

impl Fence {
    /// No fence up, for `sentinels` sentinels.
    pub(super) fn new(sentinels: usize) -> Fence {
        Fence {
            until: Mutex::new(vec![None; sentinels]),
            epoch: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<Instant>>> {
        self.until.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sentinel `i` announced a step of a failover: fenced for `timeout` (its
    /// `failover-timeout`) from now.
    pub(super) fn raise(&self, i: usize, timeout: Duration) {
        if let Some(slot) = self.lock().get_mut(i) {
            *slot = Some(Instant::now() + timeout);
        }
        self.epoch.fetch_add(1, SeqCst);
    }

    /// Sentinel `i`'s failover ended or was given up.
    pub(super) fn lower(&self, i: usize) {
        if let Some(slot) = self.lock().get_mut(i) {
            *slot = None;
        }
    }

    /// A replica was promoted: publishing goes to it from now on.
    pub(super) fn lower_all(&self) {
        self.lock().iter_mut().for_each(|s| *s = None);
        self.epoch.fetch_add(1, SeqCst);
    }

    /// Whether some sentinel's failover fences publishing now.
    pub(super) fn is_up(&self) -> bool {
        let now = Instant::now();
        self.lock().iter().any(|u| u.is_some_and(|t| now < t))
    }

    /// The epoch now (compare before and after a write).
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn a_step_raises_that_sentinel_s_fence_and_moves_the_epoch() {
        let f = Fence::new(3);
        assert!(!f.is_up());
        let e = f.epoch();
        f.raise(1, LONG);
        assert!(f.is_up());
        assert!(f.epoch() > e);
    }

    #[test]
    fn an_end_lowers_only_that_sentinel_s_fence() {
        let f = Fence::new(3);
        f.raise(0, LONG);
        f.raise(2, LONG);
        let e = f.epoch();
        f.lower(0);
        assert!(f.is_up(), "sentinel 2 still fails over");
        f.lower(2);
        assert!(!f.is_up());
        assert_eq!(f.epoch(), e, "an end moves no epoch");
    }

    #[test]
    fn a_promotion_lowers_every_fence_and_moves_the_epoch() {
        let f = Fence::new(2);
        f.raise(0, LONG);
        f.raise(1, LONG);
        let e = f.epoch();
        f.lower_all();
        assert!(!f.is_up());
        assert!(f.epoch() > e);
    }

    #[test]
    fn the_failover_timeout_lowers_a_fence_by_time() {
        let f = Fence::new(1);
        f.raise(0, Duration::ZERO);
        assert!(!f.is_up());
        // An index past the sentinels is ignored, never a panic.
        f.raise(7, LONG);
        f.lower(7);
        assert!(!f.is_up());
    }
}
