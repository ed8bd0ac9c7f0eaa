//! The service manager's side of a running server: `READY=1`, `STATUS=`, `WATCHDOG=1`
//! only while the server makes progress, `STOPPING=1` (the protocol is in
//! `daemon/notify.rs`; this file decides what to say and when).
//!
//! # What "progress" means
//!
//! A wedged server must stop sending `WATCHDOG=1`, so that systemd restarts it; an idle
//! one must keep sending it. Counting accepted connections or written frames cannot tell
//! the two apart (an idle server has neither), so the watchdog **asks**:
//!
//! - every accept loop has a turn counter and a ping channel; it counts one turn each
//!   time it wakes (a connection, an accept error, or a ping);
//! - the writer executor (the subscribers' threads) gets a probe task that counts one
//!   writer turn when some writer thread runs it.
//!
//! Each period (`WATCHDOG_USEC / 2`) the watchdog checks that **every** accept loop and
//! the writer executor moved since the last check, sends `WATCHDOG=1` only then, and
//! pings them all again. A busy server moves by itself; an idle one moves on the ping.
//! What stops the pulse: an accept loop stuck inside a turn (or paused, see the test hook
//! [`STALL_ACCEPT_HOOK`](crate::daemon::STALL_ACCEPT_HOOK)), every writer thread
//! blocked, the request thread blocked (the watchdog itself runs there), or the hub's
//! lock held forever (the `STATUS=` line reads the hub first). One missed period is
//! tolerated by the factor 2; two in a row and systemd acts.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use async_executor::Executor;
use async_io::Timer;
use futures_lite::FutureExt;

use super::Ctx;
use crate::daemon::Notifier;

/// How often `STATUS=` is sent when systemd asked for no watchdog. **Unit:** seconds.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// How long a stalled accept loop sleeps between looks at the hook's file. **Unit:** ms.
const STALL_POLL: Duration = Duration::from_millis(10);

/// The systemd side of a server: where to notify, and how often the watchdog wants a
/// sign of life.
#[derive(Debug)]
pub(super) struct Systemd {
    pub(super) notifier: Notifier,
    /// `WATCHDOG_USEC`; `None`: no watchdog, `STATUS=` only.
    pub(super) watchdog: Option<Duration>,
    /// The test hook's file ([`crate::daemon::STALL_ACCEPT_HOOK`]).
    pub(super) stall_file: Option<PathBuf>,
}

/// One accept loop's side of the watchdog: it counts its turns and answers pings.
#[derive(Debug)]
pub(super) struct Pulse {
    turns: Arc<AtomicU64>,
    ping: Receiver<()>,
    stall_file: Option<PathBuf>,
}

impl Pulse {
    /// Counts one turn of the loop.
    pub(super) fn turn(&self) {
        self.turns.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits for the watchdog's next ping (forever if the watchdog is gone).
    pub(super) async fn pinged(&self) {
        if self.ping.recv().await.is_err() {
            futures_lite::future::pending::<()>().await;
        }
    }

    /// The test hook: pauses while the hook's file exists.
    pub(super) async fn stall_hook(&self) {
        if let Some(path) = &self.stall_file {
            while path.exists() {
                Timer::after(STALL_POLL).await;
            }
        }
    }
}

/// The watchdog's side: every accept loop's counter and ping, and the writers' counter.
#[derive(Debug, Default)]
pub(super) struct Probes {
    loops: Vec<(Arc<AtomicU64>, Sender<()>)>,
    writer_turns: Arc<AtomicU64>,
}

impl Probes {
    /// A pulse for one more accept loop.
    pub(super) fn pulse(&mut self, stall_file: Option<PathBuf>) -> Pulse {
        let turns = Arc::new(AtomicU64::new(0));
        let (tx, rx) = async_channel::bounded(1);
        self.loops.push((turns.clone(), tx));
        Pulse {
            turns,
            ping: rx,
            stall_file,
        }
    }

    /// Every counter now: the accept loops', then the writers'.
    fn read(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .loops
            .iter()
            .map(|(t, _)| t.load(Ordering::Relaxed))
            .collect();
        v.push(self.writer_turns.load(Ordering::Relaxed));
        v
    }

    /// Pings every accept loop and sends a probe task to the writer executor.
    fn ping(&self, streams: &Executor<'static>) {
        for (_, tx) in &self.loops {
            // Full: the last ping is still unanswered; one is enough.
            let _ = tx.try_send(());
        }
        let writers = self.writer_turns.clone();
        streams
            .spawn(async move {
                writers.fetch_add(1, Ordering::Relaxed);
            })
            .detach();
    }
}

/// The `STATUS=` line: subscribers and events.
pub(super) fn status_line(ctx: &Ctx) -> String {
    format!(
        "{} clients, {} connections, {} events published",
        ctx.hub.len(),
        ctx.connections(),
        ctx.stats.snapshot().events_published
    )
}

/// Sends `STATUS=` every period and, with a watchdog, `WATCHDOG=1` whenever every probe
/// moved since the last period; returns at shutdown.
pub(super) async fn watch(
    systemd: &Systemd,
    probes: Probes,
    ctx: &Ctx,
    streams: Arc<Executor<'static>>,
) {
    let period = systemd.watchdog.map_or(STATUS_INTERVAL, |w| w / 2);
    let mut last = probes.read();
    probes.ping(&streams);
    loop {
        let stopped = async {
            Timer::after(period).await;
            false
        }
        .or(async {
            ctx.shutdown.wait().await;
            true
        })
        .await;
        if stopped {
            return;
        }
        let _ = systemd.notifier.status(&status_line(ctx));
        if systemd.watchdog.is_some() {
            let now = probes.read();
            if now.iter().zip(&last).all(|(n, l)| n != l) {
                let _ = systemd.notifier.watchdog();
            }
            last = now;
            probes.ping(&streams);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_moves_only_when_its_loop_answers() {
        let ex = Arc::new(Executor::new());
        let mut probes = Probes::default();
        let pulse = probes.pulse(None);
        let before = probes.read();
        probes.ping(&ex);
        // Nobody ran: nothing moved.
        assert_eq!(probes.read(), before);
        // The writer executor runs its probe; the loop answers its ping.
        while ex.try_tick() {}
        futures_lite::future::block_on(pulse.pinged());
        pulse.turn();
        let after = probes.read();
        assert!(after.iter().zip(&before).all(|(a, b)| a != b), "{after:?}");
    }
}
