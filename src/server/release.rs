//! Gives the allocator's free pages back to the system once a burst of connections is
//! over.
//!
//! Every connection's request phase borrows about 8 KB of heap for a moment (its task,
//! its read buffer, the parser's index, the response head) while the subscriber it
//! becomes keeps about 0.5 KB for as long as it stays. In a burst (10,000 clients
//! connecting after a restart) the long-lived pieces land between the freed ones, and
//! the allocator keeps the holes: they count in the process's resident memory although
//! nothing uses them (glibc returns only the top of its heap by itself). With 10,000
//! idle subscribers the holes were 0.5 to 1.7 MB, 10 to 35 % of what the subscribers
//! hold, and different in every run (malloc_stats, five runs).
//!
//! The library cannot reach the allocator (it has no `unsafe`); the binary can, and
//! hands a [`Release`] function in ([`crate::Server::release_memory_with`]). This task
//! calls it once churn (connections accepted plus streams ended) since the last call
//! reaches [`RELEASE_AFTER`] and the last [`CHECK_EVERY`] saw fewer than
//! [`QUIET_BELOW`], so a burst is released once, after it; under churn that never
//! stops it is called at most every [`RELEASE_AT_MOST_EVERY`].

use std::time::{Duration, Instant};

use async_io::Timer;

use crate::log::Log;
use crate::stats::Stats;

/// What the binary hands in: returns free memory to the system (glibc's
/// `malloc_trim(0)`). It must not block for long: it runs on the request executor.
pub type Release = fn();

/// Time between two looks at the churn. **Default:** 1 s. **Why:** a burst is over when
/// one such interval was quiet; the server's rest clock wakes it this often anyway.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Churn (connections accepted plus streams ended) since the last release that makes
/// the next one due. **Unit:** connections. **Why:** at about 8 KB lent per request
/// phase, 1,024 of them can leave up to 8 MB of holes; fewer leave too little to be
/// worth a walk over the allocator's free lists.
pub const RELEASE_AFTER: u64 = 1024;

/// Churn in one [`CHECK_EVERY`] below which the burst is over. **Unit:** connections.
pub const QUIET_BELOW: u64 = 64;

/// Under churn that never quiets down, the longest time between two releases that are
/// due. **Default:** 30 s.
pub const RELEASE_AT_MOST_EVERY: Duration = Duration::from_secs(30);

/// When to release, from the churn counter's readings (see the module docs).
#[derive(Debug)]
pub(super) struct Schedule {
    /// The churn at the last release.
    released_at: u64,
    /// The churn at the last look.
    last: u64,
    /// When the last release was (or the schedule started).
    since: Instant,
}

impl Schedule {
    /// A schedule that starts counting from `churn`, at `now`.
    pub(super) fn new(churn: u64, now: Instant) -> Schedule {
        Schedule {
            released_at: churn,
            last: churn,
            since: now,
        }
    }

    /// Takes a look: the churn is `churn` at `now`. `true` when a release is due now
    /// (it is then counted as done).
    pub(super) fn look(&mut self, churn: u64, now: Instant) -> bool {
        let recent = churn.saturating_sub(self.last);
        self.last = churn;
        let owed = churn.saturating_sub(self.released_at);
        let over = recent < QUIET_BELOW;
        let overdue = now.duration_since(self.since) >= RELEASE_AT_MOST_EVERY;
        if owed >= RELEASE_AFTER && (over || overdue) {
            self.released_at = churn;
            self.since = now;
            return true;
        }
        false
    }
}

/// Connections accepted plus streams ended, so far.
fn churn(stats: &Stats) -> u64 {
    let s = stats.snapshot();
    s.connections + s.ended.iter().sum::<u64>()
}

/// The process's resident memory now (`VmRSS` of `/proc/self/status`). **Unit:** KiB.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Looks every [`CHECK_EVERY`] and calls `release` when it is due, logging what it gave
/// back and how long it took; until dropped.
pub(super) async fn run(stats: &Stats, log: &Log, release: Release) {
    let mut schedule = Schedule::new(churn(stats), Instant::now());
    loop {
        Timer::after(CHECK_EVERY).await;
        if schedule.look(churn(stats), Instant::now()) {
            let before = rss_kib();
            let t0 = Instant::now();
            release();
            let took = t0.elapsed();
            stats.memory_released();
            if let (Some(b), Some(a)) = (before, rss_kib()) {
                log.line(format_args!(
                    "after a burst of connections: gave {} KiB of free heap back \
                     (RSS {b} -> {a} KiB) in {:.1} ms",
                    b.saturating_sub(a),
                    took.as_secs_f64() * 1000.0
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_released_once_after_it_ends() {
        let t0 = Instant::now();
        let mut s = Schedule::new(0, t0);
        let at = |n: u64| t0 + CHECK_EVERY * n as u32;
        // 3,000 connections over three seconds: due, but the burst goes on.
        assert!(!s.look(1000, at(1)));
        assert!(!s.look(2000, at(2)));
        assert!(!s.look(3000, at(3)));
        // A quiet second: released, once.
        assert!(s.look(3010, at(4)));
        assert!(!s.look(3020, at(5)));
        assert!(!s.look(3030, at(6)));
    }

    #[test]
    fn a_trickle_never_adds_up_to_a_release_before_it_is_due() {
        let t0 = Instant::now();
        let mut s = Schedule::new(0, t0);
        for i in 1..=20u64 {
            assert!(
                !s.look(i * 50, t0 + CHECK_EVERY * i as u32),
                "at {}",
                i * 50
            );
        }
        // 1,050 in all by now, each second quiet: the next look releases.
        assert!(s.look(1050, t0 + CHECK_EVERY * 21));
    }

    #[test]
    fn churn_that_never_stops_is_released_at_most_every_period() {
        let t0 = Instant::now();
        let mut s = Schedule::new(0, t0);
        let secs = RELEASE_AT_MOST_EVERY.as_secs();
        let mut released = Vec::new();
        for i in 1..=3 * secs {
            if s.look(i * 500, t0 + Duration::from_secs(i)) {
                released.push(i);
            }
        }
        assert_eq!(released, vec![secs, 2 * secs, 3 * secs]);
    }
}
