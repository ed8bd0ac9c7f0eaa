//! Pacing: waiting while the server's writers are behind, so that whoever feeds the hub
//! (a publisher's answer, a broker's reader) slows to what the writers can write.

use std::time::{Duration, Instant};

use async_io::Timer;

use super::Hub;
use crate::shutdown::Shutdown;

/// How long the queues may go without draining before a paced wait ends. **Unit:** ms.
/// **Why:** one millisecond was too short: a writer thread preempted for a few
/// milliseconds on a busy machine let the publisher run on, and healthy subscribers
/// were evicted.
pub(crate) const PACE_STALL: Duration = Duration::from_millis(5);

/// How often a paced wait looks at the queues again. **Unit:** ms. **Why:** fine enough
/// that a drained backlog ends the wait within a millisecond, coarse enough to cost
/// nothing next to the writes it waits for.
pub(crate) const PACE_POLL: Duration = Duration::from_millis(1);

impl Hub {
    /// Waits while the writers are behind (some subscriber whose socket still takes data
    /// holds half a queue or more) and the queues are draining, looking every
    /// [`PACE_POLL`], for at most `max`, or until shutdown. Subscribers that stopped
    /// reading cannot hold it: their writers report a full socket, which no longer
    /// counts once full for
    /// [`STOPPED_READING_AFTER`](super::writer_state::STOPPED_READING_AFTER) ms, and
    /// when [`PACE_STALL`] passes with nothing drained the wait ends; they fill their
    /// queues and are evicted as usual. Nothing else waits: the hub and other
    /// connections go on.
    pub(crate) async fn pace(&self, max: Duration, shutdown: &Shutdown) {
        let start = Instant::now();
        let mut before = self.queue_load();
        let mut drained_at = start;
        while start.elapsed() < max && !shutdown.is_triggered() {
            Timer::after(PACE_POLL).await;
            let now = self.queue_load();
            if !now.congested() {
                return;
            }
            if now.queued < before.queued {
                drained_at = Instant::now();
            } else if drained_at.elapsed() >= PACE_STALL {
                return;
            }
            before = now;
        }
    }
}
