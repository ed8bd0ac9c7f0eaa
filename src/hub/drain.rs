//! The jittered drain: closing the hub with its streams ending at random times over a
//! spread, so that the clients of a restarted server (without a handover) do not all
//! reconnect in the same instant.
//!
//! The hub is closed to new subscribers at once; each current subscriber is given a
//! random slot of [`DRAIN_TICK`] within the spread, and at each slot's time the
//! subscribers of that slot are removed as [`Hub::close`] removes them (their queues
//! closed, so each writer flushes what it holds, then ends; counted as
//! [`Reason::Shutdown`]). The spread shrinks to [`DRAIN_PER_STREAM`] per subscriber when
//! that is shorter: a handful of streams has no storm to spread and need not hold the
//! shutdown for seconds.

use std::time::{Duration, Instant};

use async_io::Timer;

use super::{ClientId, Hub};
use crate::stats::Reason;

/// The drain's granularity: streams due in the same tick end together. **Unit:** ms.
/// **Why:** fine enough that a reconnect-rate count per 100 ms sees an even spread,
/// coarse enough that 10,000 streams over 4 s cost 400 timer wake-ups, not 10,000.
pub const DRAIN_TICK: Duration = Duration::from_millis(10);

/// The spread a drain takes per stream, when that is shorter than the one asked for.
/// **Unit:** ms. **Why:** about 100 streams ending per second is a rate any upstream
/// takes back easily; more streams than that use the whole spread asked for.
pub const DRAIN_PER_STREAM: Duration = Duration::from_millis(10);

impl Hub {
    /// Closes the hub as [`Hub::close`] does, with the current subscribers' streams
    /// ending at random times within `spread` (at most [`DRAIN_PER_STREAM`] per
    /// subscriber); returns once every one has been removed. New subscribers are refused
    /// from the first moment. A zero `spread` closes every stream at once.
    pub async fn close_spread(&self, spread: Duration) {
        let ids: Vec<ClientId> = {
            let mut state = self.lock();
            state.closed = true;
            state.clients.keys().copied().collect()
        };
        let spread = spread.min(DRAIN_PER_STREAM * ids.len().min(u32::MAX as usize) as u32);
        let slots = (spread.as_millis() / DRAIN_TICK.as_millis()) as u64;
        if slots > 1 {
            let start = Instant::now();
            for (slot, due) in schedule(ids, slots) {
                Timer::at(start + DRAIN_TICK * slot as u32).await;
                for id in due {
                    self.remove(id, Reason::Shutdown);
                }
            }
        }
        // Whoever is left (every subscriber, without a spread).
        self.close();
    }
}

/// The subscribers by slot: each given a random slot in `0..slots`, the slots in order,
/// empty ones left out.
fn schedule(ids: Vec<ClientId>, slots: u64) -> Vec<(u64, Vec<ClientId>)> {
    let mut by_slot: std::collections::BTreeMap<u64, Vec<ClientId>> = Default::default();
    for id in ids {
        by_slot.entry(fastrand::u64(0..slots)).or_default().push(id);
    }
    by_slot.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::hub::HubLimits;
    use crate::stats::Stats;
    use crate::topic::Topics;

    /// A hub with `n` subscribers of every topic, and them.
    fn hub_with(n: usize) -> (Hub, Vec<crate::hub::Subscription>) {
        let hub = Hub::new(
            HubLimits {
                queue_len: 4,
                history_events: 10,
                history_bytes: usize::MAX,
            },
            Arc::new(Stats::new()),
        );
        let subs = (0..n)
            .map(|_| hub.subscribe(Topics::All, None, None).unwrap())
            .collect();
        (hub, subs)
    }

    #[test]
    fn the_schedule_places_every_subscriber_once_in_order() {
        let ids: Vec<ClientId> = (0..1000).map(ClientId).collect();
        let plan = schedule(ids, 100);
        let slots: Vec<u64> = plan.iter().map(|(s, _)| *s).collect();
        assert!(slots.windows(2).all(|w| w[0] < w[1]), "{slots:?}");
        assert!(slots.iter().all(|s| *s < 100));
        // 1,000 over 100 slots: nearly every slot is used (all but a few by chance).
        assert!(slots.len() > 90, "{}", slots.len());
        let mut all: Vec<u64> = plan.into_iter().flat_map(|(_, d)| d).map(|c| c.0).collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn subscribers_end_spread_over_the_spread_and_new_ones_are_refused() {
        let (hub, subs) = hub_with(50);
        let start = Instant::now();
        let drain = std::thread::spawn({
            let hub = hub.clone();
            move || futures_lite::future::block_on(hub.close_spread(Duration::from_secs(10)))
        });
        // 50 subscribers: a spread of 50 × 10 ms, not the 10 s asked for.
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            hub.subscribe(Topics::All, None, None).is_err(),
            "refused while draining"
        );
        let left = hub.len();
        assert!(
            left > 0 && left < 50,
            "{left} of 50 still open after 100 ms"
        );
        drain.join().unwrap();
        let took = start.elapsed();
        assert!(took < Duration::from_millis(1000), "{took:?}");
        assert_eq!(hub.len(), 0);
        assert!(hub.is_closed());
        drop(subs);
    }

    #[test]
    fn a_zero_spread_closes_every_stream_at_once() {
        let (hub, _subs) = hub_with(20);
        futures_lite::future::block_on(hub.close_spread(Duration::ZERO));
        assert_eq!(hub.len(), 0);
    }
}
