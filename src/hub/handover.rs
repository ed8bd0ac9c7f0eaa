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

    /// After a committed handover: forgets every subscriber without ending it (no
    /// close hook, no count, no log line): their sockets belong to the successor now,
    /// and this process only closes its own descriptors.
    pub(crate) fn forget_all(&self) {
        let clients = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.clients)
        };
        drop(clients);
    }

    /// [`Hub::commit`] for a broker's reader, unless a handover paused the hub (tested
    /// under the hub lock, so nothing is committed once the pause is set): then the
    /// entry comes back, to be committed after a rollback (the reader waits).
    pub(crate) fn commit_unless_paused(
        &self,
        entry: super::history::Retained,
    ) -> Result<Option<super::Delivery>, super::history::Retained> {
        let state = self.lock();
        if self.is_paused() {
            return Err(entry);
        }
        Ok(self.commit_with(state, entry))
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

    /// Labels the subscription as opened on the Mercure path (see [`Self::is_mercure`]).
    pub(crate) fn set_mercure(&mut self, mercure: bool) {
        self.mercure = mercure;
    }

    /// Whether the server opened it on the Mercure path (carried by a handover).
    pub(crate) fn is_mercure(&self) -> bool {
        self.mercure
    }

    /// A writer stopped for a handover takes what its socket is still owed: the rest
    /// of a direct write, then every queued frame, appended to `owed`; and it keeps the
    /// socket (its state stays `RUNNING`, row 11 or 13 of the state table). So if the
    /// handover rolls back, the frames published after the unpause are queued behind
    /// the owed bytes its writer writes first, never written directly ahead of them.
    ///
    /// Call it while the hub is paused, once no direct write holds the socket (awaited
    /// with [`Subscription::poll_own`]): nothing is then queued or lent meanwhile.
    pub(crate) fn take_owed(&self, owed: &mut Vec<u8>) {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        while let std::task::Poll::Ready(Some((frame, written))) = self.poll_next(&mut cx) {
            owed.extend_from_slice(frame.as_bytes().get(written..).unwrap_or(&[]));
        }
        // The empty queue parked the writer (`WAITING`): claim the socket back. Paused,
        // no direct write can take it meanwhile, so this is ready at once.
        let claimed = self.poll_own(&mut cx);
        debug_assert!(claimed.is_ready(), "a direct write started while paused");
    }

    /// Whether a handover asks this subscriber's writer to stop where it stands.
    pub(crate) fn handover_requested(&self) -> bool {
        self.hub.is_paused()
    }

    /// What this subscriber reads: its topic filter, its rights, and whether it gets
    /// tagged frames (`None` once the hub has removed it).
    pub(crate) fn filter(&self) -> Option<(Topics, Option<Arc<Selectors>>, bool)> {
        let state = self.hub.lock();
        let c = state.clients.get(&self.id)?;
        Some((
            c.topics.clone(),
            c.rare.as_ref().and_then(|r| r.rights.clone()),
            c.tagged,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::{Event, Frame};
    use crate::topic::Topic;

    fn publish(hub: &Hub, data: &str) -> crate::event_id::EventId {
        hub.publish(&Topic::default_topic(), &Event::new(data).unwrap())
            .id
    }

    #[test]
    fn a_paused_hub_hands_nothing_out_and_asks_writers_to_stop() {
        let hub = Hub::new(HubLimits::default(), Arc::default());
        let sub = hub.subscribe(Topics::All, None, None).unwrap();
        assert!(!sub.handover_requested());
        hub.pause();
        assert!(sub.handover_requested());
        assert_eq!(hub.broadcast(&Frame::comment("hb").unwrap()).sent, 0);
        assert!(sub.try_recv().is_none(), "no heartbeat while paused");
        hub.unpause();
        assert!(!sub.handover_requested());
        assert_eq!(hub.broadcast(&Frame::comment("hb").unwrap()).sent, 1);
    }

    #[test]
    fn a_pause_wakes_a_resting_stream_and_no_stream_rests_while_paused() {
        let hub = Hub::new(HubLimits::default(), Arc::default());
        let (count, waker) = crate::hub::tests::counting();
        let park = |sub: &Subscription| {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(sub.poll_next(&mut cx).is_pending(), "nothing queued");
        };
        // At rest: the pause wakes the rest's waker (it starts a writer that stops).
        let sub = hub.subscribe(Topics::All, None, None).unwrap();
        park(&sub);
        assert!(sub.rest(&waker));
        hub.pause();
        assert_eq!(crate::hub::tests::woken(&count), 1);
        // While paused, a writer with nothing to do may not rest: it must hand in.
        let other = hub.subscribe(Topics::All, None, None).unwrap();
        park(&other);
        assert!(!other.rest(&waker));
        hub.unpause();
        assert!(other.rest(&waker));
    }

    #[test]
    fn after_a_rollback_a_new_frame_waits_behind_what_the_stream_was_owed() {
        let hub = Hub::new(HubLimits::default(), Arc::default());
        hub.set_direct_runner(|job| job.run());
        let sink = crate::hub::tests::direct::FakeSink::new(5);
        let sub = hub
            .subscribe_direct(Topics::All, None, None, None, Some(sink.clone()), false)
            .unwrap();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // The writer waits, so the publish is written directly, but the socket takes
        // only 5 bytes of it: the rest is the writer's. A handover pauses the hub
        // before the writer writes it; the writer takes it as owed.
        assert!(sub.poll_next(&mut cx).is_pending());
        publish(&hub, "owed");
        assert_eq!(sink.text().len(), 5);
        hub.pause();
        let mut owed = Vec::new();
        sub.take_owed(&mut owed);
        assert!(owed.ends_with(b"data: owed\n\n"), "{owed:?}");
        // The rollback, and the socket has room again: the next publish must not go
        // straight to it ahead of the owed bytes the writer has yet to write; it is
        // queued behind them.
        hub.unpause();
        sink.set_room(usize::MAX);
        publish(&hub, "next");
        assert_eq!(sink.text().len(), 5, "written ahead of the owed bytes");
        match sub.poll_next(&mut cx) {
            std::task::Poll::Ready(Some((frame, 0))) => {
                assert!(frame.as_bytes().ends_with(b"data: next\n\n"));
            }
            other => panic!("the next frame is not queued: {other:?}"),
        }
    }

    #[test]
    fn a_resumed_hub_goes_on_from_the_history_it_was_given() {
        let limits = HubLimits {
            history_events: 2,
            ..HubLimits::default()
        };
        let old = Hub::new(limits, Arc::default());
        let ids: Vec<_> = (0..3).map(|i| publish(&old, &i.to_string())).collect();
        let state = old.history_state().unwrap();
        assert_eq!(
            (state.base, state.events.len()),
            (1, 2),
            "the first was dropped"
        );
        let new = Hub::resumed(limits, Arc::default(), Log::silent(), state);
        assert_eq!(new.epoch(), old.epoch());
        assert_eq!(new.last_id(), Some(ids[2]));
        // The next id follows the last; a resume from a retained id continues.
        let next = publish(&new, "3");
        assert_eq!((next.epoch, next.offset), (ids[2].epoch, ids[2].offset + 1));
        let mut sub = new
            .subscribe(Topics::All, Some(&ids[1].to_string()), None)
            .unwrap();
        assert_eq!(sub.resume(), crate::event_id::Resume::Continue);
        assert_eq!(sub.take_backlog().len(), 2);
    }

    #[test]
    fn the_filter_is_what_the_subscriber_asked_for() {
        let hub = Hub::new(HubLimits::default(), Arc::default());
        let only = Topics::Only([Topic::new("a").unwrap()].into());
        let rights = Arc::new(Selectors::new(["a/*"]));
        let sub = hub
            .subscribe_as(only.clone(), Some(rights.clone()), None, None)
            .unwrap();
        assert_eq!(sub.filter(), Some((only, Some(rights), false)));
    }
}
