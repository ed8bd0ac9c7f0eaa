//! The hub's side of a handover to a successor process (see `server/handover/`): pause
//! every fan-out, give the history away as it stands, and rebuild a hub from it.
//!
//! While paused, [`Hub::broadcast`] hands nothing out (heartbeats need not carry over)
//! and no direct write starts, so once the in-flight ones have given their sockets
//! back (the writer state word says when), nobody but a stream's own task may write
//! its socket. The publish port stops taking publishes before the pause (`port/`), so
//! no event is committed while paused either.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::history::{History, Retained};
use super::{Hub, HubLimits, Subscription};
use crate::auth::Selectors;
use crate::log::Log;
use crate::stats::Stats;
use crate::topic::Topics;

/// The retained history as it stood when the hub was paused: what a successor needs
/// to go on issuing ids after the last one and to answer resumes as this hub would.
#[derive(Clone)]
pub(crate) struct HistoryState {
    /// The history's epoch.
    pub(crate) epoch: u64,
    /// The offset before the first retained event (or the last issued, when none is
    /// retained).
    pub(crate) base: u64,
    /// The retained events, oldest first.
    pub(crate) events: Vec<Retained>,
}

impl std::fmt::Debug for HistoryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryState")
            .field("epoch", &self.epoch)
            .field("base", &self.base)
            .field("events", &self.events.len())
            .finish()
    }
}

impl Hub {
    /// Pauses every fan-out for a handover and wakes every writer, so each sees the
    /// pause at its next poll ([`Subscription::handover_requested`]).
    pub(crate) fn pause(&self) {
        let states: Vec<_> = {
            let state = self.lock();
            self.inner.paused.store(true, Ordering::SeqCst);
            state.clients.values().map(|c| c.state.clone()).collect()
        };
        for s in states {
            s.wake();
        }
    }

    /// Ends the pause (a handover rolled back).
    pub(crate) fn unpause(&self) {
        let _state = self.lock();
        self.inner.paused.store(false, Ordering::SeqCst);
    }

    /// Whether a handover paused the hub.
    pub(crate) fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::SeqCst)
    }

    /// The retained history now (taken under the hub lock).
    ///
    /// `None` on a hub whose ids a broker issues: its successor reads on from the broker.
    pub(crate) fn history_state(&self) -> Option<HistoryState> {
        let state = self.lock();
        if state.history.is_external() {
            return None;
        }
        let events: Vec<Retained> = state.history.retained().cloned().collect();
        let last = state
            .history
            .last_id()
            .map_or(state.history.dropped_upto(), |l| l.offset);
        let base = events.first().map_or(last, |e| e.id.offset - 1);
        Some(HistoryState {
            epoch: state.history.epoch(),
            base,
            events,
        })
    }

    /// An in-memory hub that goes on from `history` (a predecessor's): the same epoch,
    /// the same retained events, the next id after its last.
    ///
    /// # Panics
    ///
    /// If `limits.queue_len` is 0.
    pub(crate) fn resumed(
        limits: HubLimits,
        stats: Arc<Stats>,
        log: Log,
        history: HistoryState,
    ) -> Hub {
        let mut h = History::after(history.epoch, history.base);
        for entry in history.events {
            h.push(entry, limits);
        }
        Hub::build(limits, stats, log, h, false)
    }
}

impl Subscription {
    /// Lets a handover's pause wake this writer while it waits for its socket (it is
    /// woken by the hub only while it waits for its queue).
    pub(crate) fn watch(&self, cx: &std::task::Context<'_>) {
        self.state.watch(cx.waker());
    }

    /// Whether a handover asks this subscriber's writer to stop where it stands.
    pub(crate) fn handover_requested(&self) -> bool {
        self.hub.is_paused()
    }

    /// What this subscriber reads: its topic filter and its rights (`None` once the hub
    /// has removed it).
    pub(crate) fn filter(&self) -> Option<(Topics, Option<Arc<Selectors>>)> {
        let state = self.hub.lock();
        let c = state.clients.get(&self.id)?;
        Some((c.topics.clone(), c.rights.clone()))
    }
}
