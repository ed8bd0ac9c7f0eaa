//! A hub fed by a broker: the ids are the broker's (Redis stream ids, `<ms>-<seq>`), and
//! events are delivered in the broker's order, on every node the same.
//!
//! The contract is the local one (see `event_id.rs`): a resume gets exactly the events
//! after its id, or a reset saying why. What differs is where the id is placed: an id
//! this history still holds continues; an older one continues only if the broker still
//! holds the events between it and this history (the caller reads them and passes them
//! to [`Hub::subscribe_bridged`]); an id from before a loss (the stream trimmed past this
//! node's cursor, flushed, or restarted without persistence) gets a `lost` reset.

use std::sync::Arc;

use super::history::{History, Retained};
use super::{
    CloseHook, Delivery, DirectSink, Hub, HubLimits, Joining, SubscribeError, Subscription,
};
use crate::auth::Selectors;
use crate::envelope::Envelope;
use crate::event_id::{EventId, Reset, ResetReason};
use crate::log::Log;
use crate::sse::{self, Event};
use crate::stats::Stats;
use crate::topic::Topics;

impl Hub {
    /// A hub whose event ids a broker assigns: events arrive through [`Hub::commit`],
    /// in the broker's order.
    ///
    /// # Panics
    ///
    /// If `limits.queue_len` is 0.
    pub(crate) fn with_external_ids(limits: HubLimits, stats: Arc<Stats>, log: Log) -> Hub {
        Hub::with_history(limits, stats, log, History::external())
    }

    /// Whether a broker assigns this hub's ids.
    pub fn has_external_ids(&self) -> bool {
        self.lock().history.is_external()
    }

    /// The broker lost events after the last one delivered (`next`: the first id read
    /// after the loss, if any). Every live subscriber gets a `lost` reset event now (its
    /// app must reload its state), and a later resume from an id before the loss gets one
    /// too. The events that follow are delivered as usual.
    pub fn lost(&self, next: Option<EventId>) -> Delivery {
        let frame = {
            let mut state = self.lock();
            state.history.mark_lost(next);
            sse::reset_event(&Reset {
                reason: ResetReason::Lost,
                last_event_id: "",
                replay_from: None,
                first_retained: state.history.first_retained(),
                last: state.history.last_id(),
            })
        };
        self.broadcast(&frame)
    }

    /// Whether a client resuming from `last_event_id` needs the broker's events older
    /// than this history (then read them from its id on and pass them to
    /// `Hub::subscribe_bridged`, which the server calls).
    pub fn needs_older(&self, last_event_id: &str) -> bool {
        let Ok(id) = last_event_id.parse::<EventId>() else {
            return false;
        };
        let state = self.lock();
        state.history.is_external()
            && state
                .history
                .first_retained()
                .is_none_or(|first| id < first)
            && state.history.last_id().is_some_and(|last| id < last)
    }

    /// Loads events the broker kept from before this node started (oldest first), as
    /// history only: nobody is subscribed yet to receive them live. `whole`: they are
    /// every entry the stream ever had (the broker counted none added before them), so
    /// a client at the stream's start (`0-0`) continues with all of them rather than
    /// getting an `evicted` reset (a handover from a node that had delivered nothing
    /// hands its streams that position).
    pub(crate) fn preload(&self, events: Vec<(EventId, Envelope, Event)>, whole: bool) {
        let mut state = self.lock();
        state.history.set_from_start(whole);
        for (id, envelope, event) in events {
            if state.history.last_id().is_some_and(|last| id <= last) {
                continue;
            }
            let entry = Retained::encode(id, envelope, &event);
            state.history.push(entry, self.inner.limits);
        }
    }

    /// [`Hub::subscribe_as`] (with the subscriber's `rights`) for a client whose id is
    /// older than this history, with the broker's events from that id on (`older`,
    /// oldest first, starting with the client's own event when the broker still has it).
    /// They bridge the client to the history when they start at its id and reach the
    /// history's start; otherwise the client gets an `evicted` reset, as without them.
    ///
    /// `unread`: the broker holds the client's id (asked of it), but this node has not
    /// read that far yet (the client came from a node that is ahead). Its `future` reset
    /// is then followed only by the events after its id: it has the others. Otherwise a
    /// `future` reset (an id beyond the stream, or the broker could not be asked) is
    /// followed by every live event from now.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] once the hub is closed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn subscribe_bridged(
        &self,
        topics: Topics,
        rights: Option<Arc<Selectors>>,
        last_id: Option<&str>,
        older: Vec<(EventId, Envelope, Event)>,
        unread: bool,
        on_evict: Option<CloseHook>,
        sink: Option<Arc<dyn DirectSink>>,
        tagged: bool,
    ) -> Result<Subscription, SubscribeError> {
        // Encoded for this client alone: a replay older than the history is rare.
        let older: Vec<Retained> = older
            .into_iter()
            .map(|(id, envelope, event)| Retained::encode(id, envelope, &event))
            .collect();
        let joining = Joining {
            older: &older,
            unread,
            sink,
            tagged,
        };
        self.subscribe_with(topics, rights, last_id, on_evict, joining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_id::Resume;

    /// A plain subscriber on every topic resuming from `last` with the broker's `older`.
    fn bridged(h: &Hub, last: &str, older: Vec<(EventId, Envelope, Event)>) -> Subscription {
        h.subscribe_bridged(
            Topics::All,
            None,
            Some(last),
            older,
            false,
            None,
            None,
            false,
        )
        .unwrap()
    }

    fn hub(history: usize) -> Hub {
        Hub::with_external_ids(
            HubLimits {
                queue_len: 16,
                history_events: history,
                history_bytes: usize::MAX,
            },
            Arc::new(Stats::new()),
            Log::silent(),
        )
    }

    fn id(ms: u64, seq: u64) -> EventId {
        EventId::new(ms, seq)
    }

    fn ev(s: &str) -> Event {
        Event::new(s).unwrap()
    }

    fn t() -> Envelope {
        Envelope::on(crate::topic::Topic::default_topic())
    }

    impl Hub {
        /// A broker's event, as the reader commits it.
        fn deliver(&self, id: EventId, env: &Envelope, event: &Event) -> Option<Delivery> {
            self.commit(Retained::encode(id, env.clone(), event))
        }
    }

    fn texts(frames: &[crate::sse::Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| String::from_utf8_lossy(f.as_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn delivers_in_the_brokers_order_and_skips_rereads() {
        let h = hub(10);
        let s = h.subscribe(Topics::All, None, None).unwrap();
        assert!(h.deliver(id(5, 0), &t(), &ev("a")).is_some());
        assert!(h.deliver(id(5, 3), &t(), &ev("b")).is_some());
        assert!(h.deliver(id(5, 3), &t(), &ev("b again")).is_none());
        assert!(h.deliver(id(4, 9), &t(), &ev("older")).is_none());
        let got: Vec<_> = std::iter::from_fn(|| s.try_recv()).collect();
        assert_eq!(
            texts(&got),
            ["id: 5-0\ndata: a\n\n", "id: 5-3\ndata: b\n\n"]
        );
        assert_eq!(h.last_id(), Some(id(5, 3)));
    }

    #[test]
    fn resumes_continue_from_an_id_the_history_holds() {
        let h = hub(10);
        for (i, ms) in [10u64, 20, 30].into_iter().enumerate() {
            h.deliver(id(ms, 0), &t(), &ev(&i.to_string()));
        }
        let mut s = h.subscribe(Topics::All, Some("20-0"), None).unwrap();
        assert_eq!(s.resume(), Resume::Continue);
        assert_eq!(texts(&s.take_backlog()), ["id: 30-0\ndata: 2\n\n"]);
        // Not one of its ids, future, garbage.
        for (sent, reason) in [
            ("25-0", ResetReason::Unknown),
            ("31-0", ResetReason::Future),
            ("x", ResetReason::Unknown),
        ] {
            let s = h.subscribe(Topics::All, Some(sent), None).unwrap();
            assert_eq!(s.resume(), Resume::Reset(reason), "{sent}");
        }
    }

    #[test]
    fn an_older_id_is_bridged_by_the_brokers_events_or_reset_as_evicted() {
        let h = hub(2);
        for ms in [10u64, 20, 30, 40] {
            h.deliver(id(ms, 0), &t(), &ev(&ms.to_string()));
        }
        // Kept: 30, 40 (20 was the newest dropped). A client at 10 needs 20 from the broker.
        assert!(h.needs_older("10-0"));
        assert!(!h.needs_older("30-0"));
        let older = vec![
            (id(10, 0), t(), ev("10")),
            (id(20, 0), t(), ev("20")),
            (id(30, 0), t(), ev("30")),
        ];
        let mut s = bridged(&h, "10-0", older);
        assert_eq!(s.resume(), Resume::Continue);
        assert_eq!(
            texts(&s.take_backlog()),
            [
                "id: 20-0\ndata: 20\n\n",
                "id: 30-0\ndata: 30\n\n",
                "id: 40-0\ndata: 40\n\n"
            ]
        );
        // The broker no longer has the client's event: evicted, then what is kept.
        let older = vec![(id(20, 0), t(), ev("20"))];
        let mut s = bridged(&h, "10-0", older);
        assert_eq!(s.resume(), Resume::Reset(ResetReason::Evicted));
        let got = texts(&s.take_backlog());
        assert!(got[0].starts_with("event: reset\ndata: {\"reason\":\"evicted\""));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn a_loss_resets_live_subscribers_and_resumes_from_before_it() {
        let h = hub(10);
        h.deliver(id(10, 0), &t(), &ev("a"));
        let live = h.subscribe(Topics::All, None, None).unwrap();
        h.lost(Some(id(50, 0)));
        h.deliver(id(50, 0), &t(), &ev("b"));
        let got: Vec<_> = std::iter::from_fn(|| live.try_recv()).collect();
        let got = texts(&got);
        assert!(
            got[0].starts_with("event: reset\ndata: {\"reason\":\"lost\""),
            "{got:?}"
        );
        assert_eq!(got[1], "id: 50-0\ndata: b\n\n");
        let mut s = h.subscribe(Topics::All, Some("10-0"), None).unwrap();
        assert_eq!(s.resume(), Resume::Reset(ResetReason::Lost));
        let back = texts(&s.take_backlog());
        assert_eq!(back.len(), 2);
        assert_eq!(back[1], "id: 50-0\ndata: b\n\n");
        // After the loss, its ids continue as usual.
        let s = h.subscribe(Topics::All, Some("50-0"), None).unwrap();
        assert_eq!(s.resume(), Resume::Continue);
    }

    #[test]
    fn an_id_this_node_has_not_read_yet_gets_nothing_it_already_has() {
        // The client came from a node that is ahead (this one was reconnecting to
        // Redis): a future reset, then only the events after its id, never those it had.
        let h = hub(10);
        h.deliver(id(10, 0), &t(), &ev("a"));
        // The server asked Redis: it holds 30-0.
        let mut s = h
            .subscribe_bridged(
                Topics::All,
                None,
                Some("30-0"),
                Vec::new(),
                true,
                None,
                None,
                false,
            )
            .unwrap();
        assert_eq!(s.resume(), Resume::Reset(ResetReason::Future));
        assert_eq!(s.take_backlog().len(), 1, "the reset only");
        let live = h.subscribe(Topics::All, None, None).unwrap();
        h.lost(Some(id(20, 0)));
        for (ms, d) in [(20, "b"), (30, "c"), (40, "d"), (50, "e")] {
            h.deliver(id(ms, 0), &t(), &ev(d));
        }
        let got = texts(&std::iter::from_fn(|| s.try_recv()).collect::<Vec<_>>());
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with("event: reset\ndata: {\"reason\":\"lost\""));
        assert_eq!(got[1..], ["id: 40-0\ndata: d\n\n", "id: 50-0\ndata: e\n\n"]);
        // Other subscribers get everything.
        assert_eq!(std::iter::from_fn(|| live.try_recv()).count(), 5);
    }

    #[test]
    fn an_id_the_broker_does_not_hold_goes_live_after_its_reset() {
        // Beyond the stream (or the broker could not be asked): a future reset, then
        // every live event, as on a single node; never withheld until the clock passes.
        let h = hub(10);
        h.deliver(id(10, 0), &t(), &ev("a"));
        let beyond = h.subscribe(Topics::All, Some("9999999-0"), None).unwrap();
        let unasked = h
            .subscribe_bridged(
                Topics::All,
                None,
                Some("30-0"),
                Vec::new(),
                false,
                None,
                None,
                false,
            )
            .unwrap();
        h.deliver(id(20, 0), &t(), &ev("live"));
        for mut s in [beyond, unasked] {
            assert_eq!(s.resume(), Resume::Reset(ResetReason::Future));
            assert_eq!(s.take_backlog().len(), 1, "the reset only");
            let got = texts(&std::iter::from_fn(|| s.try_recv()).collect::<Vec<_>>());
            assert_eq!(got, ["id: 20-0\ndata: live\n\n"]);
        }
    }

    #[test]
    fn preload_fills_the_history_without_subscribers() {
        let h = hub(10);
        h.preload(
            vec![(id(1, 0), t(), ev("x")), (id(2, 0), t(), ev("y"))],
            false,
        );
        assert_eq!(h.history_len(), 2);
        let mut s = h.subscribe(Topics::All, Some("1-0"), None).unwrap();
        assert_eq!(texts(&s.take_backlog()), ["id: 2-0\ndata: y\n\n"]);
        // A local publish on a broker-fed hub is refused: only the broker issues ids
        // (it used to be delivered here alone, answered with the id 0-0).
        let live = h.subscribe(Topics::All, None, None).unwrap();
        assert!(h.publish(t().topic(), &ev("z")).refused);
        assert!(live.try_recv().is_none());
        assert_eq!(h.history_len(), 2);
    }

    #[test]
    fn a_client_at_the_streams_start_continues_only_from_a_whole_stream() {
        let events = || vec![(id(1, 0), t(), ev("x")), (id(2, 0), t(), ev("y"))];
        // Every entry the stream ever had: all of it, no reset.
        let h = hub(10);
        h.preload(events(), true);
        let mut s = h.subscribe(Topics::All, Some("0-0"), None).unwrap();
        assert_eq!(s.resume(), Resume::Continue);
        assert_eq!(texts(&s.take_backlog()).len(), 2);
        // An empty stream: nothing yet, then live.
        let h = hub(10);
        h.preload(Vec::new(), true);
        let mut s = h.subscribe(Topics::All, Some("0-0"), None).unwrap();
        assert_eq!(s.resume(), Resume::Continue);
        assert!(s.take_backlog().is_empty());
        h.deliver(id(3, 0), &t(), &ev("live"));
        assert!(s.try_recv().is_some());
        // Entries may be missing before the tail, or the history dropped one: a reset.
        for (whole, cap) in [(false, 10), (true, 1)] {
            let h = hub(cap);
            h.preload(events(), whole);
            let s = h.subscribe(Topics::All, Some("0-0"), None).unwrap();
            assert_eq!(
                s.resume(),
                Resume::Reset(ResetReason::Evicted),
                "{whole} {cap}"
            );
        }
    }
}
