//! The hub's one entry for an ordered event ([`Hub::commit`]): keep it in the history,
//! fan its frame out, then (outside the lock) run direct writes, count, evict. Every
//! publish port ends here; [`Hub::publish`] is the in-memory port's way in.

use std::time::{Duration, Instant};

use async_io::Timer;

use super::fan_out::{Lent, Outgoing};
use super::history::Retained;
use super::pace::PACE_POLL;
use super::{Client, ClientId, Delivery, Hub, Published, State, Visibility};
use crate::envelope::Envelope;
use crate::event_id::EventId;
use crate::sse::Event;
use crate::stats::Reason;
use crate::topic::Topic;

/// What [`Hub::commit_local`] did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Local {
    /// Published with this position and wire id.
    Published(Published, String),
    /// A retry of a retained event (same idempotency key or publisher id): nothing
    /// published; the first event's wire id.
    Repeated(String),
    /// A publisher id that a retained event already has, with another key: refused.
    Refused,
}

impl Hub {
    /// Publishes `event` on `topic`: assigns the next id, encodes the event **once**, keeps
    /// it in the history, and hands the shared frame to every matching subscriber.
    ///
    /// Never waits: a subscriber whose queue is full is evicted instead. This is the
    /// in-memory publish port, for library users, producers and tests. A hub whose events
    /// another port orders (a history file, a broker: see `port/`) refuses it
    /// ([`Published::refused`]), so no id is ever issued twice; publish through its port.
    pub fn publish(&self, topic: &Topic, event: &Event) -> Published {
        self.publish_as(topic, event, Visibility::Public)
    }

    /// Like [`Hub::publish`], with a [`Visibility`]: a private event reaches (and is
    /// replayed to) only the subscribers whose rights cover `topic`.
    pub fn publish_as(&self, topic: &Topic, event: &Event, visibility: Visibility) -> Published {
        let envelope = Envelope::on(topic.clone()).with_private(visibility == Visibility::Private);
        match self.commit_local(envelope, event) {
            Local::Published(p, _) => p,
            Local::Repeated(_) | Local::Refused => Published {
                id: EventId::new(self.inner.epoch, 0),
                delivery: Delivery::default(),
                refused: true,
            },
        }
    }

    /// The in-memory port's publish: under the hub lock, a retry is recognised, the next
    /// id issued, the event encoded once and committed.
    pub(crate) fn commit_local(&self, envelope: Envelope, event: &Event) -> Local {
        let state = self.lock();
        if self.inner.ported || state.history.is_external() {
            return Local::Refused;
        }
        if let Some(first) = state.history.repeated(&envelope) {
            return Local::Repeated(first);
        }
        let id = state.history.next_id();
        let entry = Retained::encode(id, envelope, event);
        let wire = entry.wire_id().into_owned();
        let delivery = self.commit_locked(state, entry);
        Local::Published(
            Published {
                id,
                delivery,
                refused: false,
            },
            wire,
        )
    }

    /// The one entry for an event whose position its port chose: keeps it in the
    /// history and hands its frame to every subscriber that may have it. A broker's
    /// event not after the last one committed (a reread after a reconnect) is skipped:
    /// `None`. A port holds its own publish lock across this call, so events arrive in
    /// position order.
    pub(crate) fn commit(&self, entry: Retained) -> Option<Delivery> {
        let state = self.lock();
        self.commit_with(state, entry)
    }

    /// [`Hub::commit`] with the hub lock taken.
    pub(super) fn commit_with(
        &self,
        state: std::sync::MutexGuard<'_, State>,
        entry: Retained,
    ) -> Option<Delivery> {
        if state.history.is_external() && state.history.last_id().is_some_and(|l| entry.id <= l) {
            return None;
        }
        Some(self.commit_locked(state, entry))
    }

    /// [`Hub::commit`] under the hub lock, which it releases before the direct writes,
    /// the counting and the evictions.
    fn commit_locked(
        &self,
        mut state: std::sync::MutexGuard<'_, State>,
        entry: Retained,
    ) -> Delivery {
        let mut evicted: Vec<(ClientId, Client, Reason)> = Vec::new();
        let mut lent = Lent::default();
        let frame = entry.frame.clone();
        let envelope = entry.envelope.clone();
        // The tagged twin, once for every tagged subscriber, only while there is one.
        let tagged = (state.tagged > 0).then(|| entry.tagged_frame());
        let broker_id = state.history.is_external().then_some(entry.id);
        state.history.push(entry, self.inner.limits);
        let go_direct = state.direct_now(self.inner.runner.get().is_some());
        let out = Outgoing {
            plain: &frame,
            tagged: tagged.as_ref(),
        };
        let delivery = state.fan_out(
            out,
            Some(&envelope),
            broker_id,
            &mut evicted,
            go_direct.then_some(&mut lent),
        );
        drop(state);
        self.inner.stats.event_published();
        self.run_direct(frame, lent.plain);
        if let Some(tagged) = tagged {
            self.run_direct(tagged, lent.tagged);
        }
        self.finish_delivery(&delivery, evicted);
        delivery
    }

    /// Waits until the event at `id` (or a later one) is committed here, for at most
    /// `max`: whether it was. A broker-fed node answers its own publishes once its
    /// reader delivered them, which paces a publisher to what the node can read.
    pub(crate) async fn wait_committed(&self, id: EventId, max: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.last_id().is_some_and(|l| l >= id) {
                return true;
            }
            if start.elapsed() >= max {
                return false;
            }
            Timer::after(PACE_POLL).await;
        }
    }
}
