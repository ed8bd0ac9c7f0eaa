//! The publish gate: a handover stops taking publishes, lets the ones in flight finish,
//! and opens again if it rolls back.
//!
//! A publish counts itself in, then looks at the gate; the handover closes the gate,
//! then waits for the count to reach zero. Both sides use sequentially consistent
//! atomics, so either the publish sees the gate closed (and is refused), or the
//! handover sees it in flight (and waits for it): none is committed after the wait.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_io::Timer;

/// How often a closing gate looks at the publishes in flight. **Unit:** ms.
const DRAIN_POLL: Duration = Duration::from_millis(1);

/// What `Retry-After` says to a publish refused during a handover. **Unit:** seconds.
/// **Why:** a handover takes well under a second; the successor answers the retry.
pub const HANDOVER_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The gate (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Gate {
    closed: AtomicBool,
    in_flight: AtomicUsize,
}

/// One publish in flight; leaves the count when dropped.
#[derive(Debug)]
pub(crate) struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    /// Lets one publish through, or `None` while the gate is closed.
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let pass = Pass(self);
        (!self.closed.load(Ordering::SeqCst)).then_some(pass)
    }

    /// Closes the gate and waits (at most `max`) until no publish is in flight: whether
    /// none is.
    pub(crate) async fn close(&self, max: Duration) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        let until = Instant::now() + max;
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= until {
                return false;
            }
            Timer::after(DRAIN_POLL).await;
        }
        true
    }

    /// Opens the gate again.
    pub(crate) fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_gate_refuses_and_waits_for_the_publishes_in_flight() {
        let gate = Gate::default();
        let pass = gate.enter().expect("open");
        let waited = futures_lite::future::block_on(gate.close(Duration::from_millis(20)));
        assert!(!waited, "a publish is still in flight");
        assert!(gate.enter().is_none(), "closed");
        drop(pass);
        assert!(futures_lite::future::block_on(
            gate.close(Duration::from_millis(20))
        ));
        gate.open();
        assert!(gate.enter().is_some());
    }
}
