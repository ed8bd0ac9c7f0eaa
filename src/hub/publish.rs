//! Publishing: the one place that issues ids and appends to the history (see "One place
//! to publish" in the module docs). Without a history file, under the hub lock alone;
//! with one, `log_writer.rs` takes the publish lock first and comes back here for the
//! hub-lock part ([`Hub::keep_and_fan_out`]).

use super::direct::DirectTarget;
use super::history::Retained;
use super::{Client, ClientId, Delivery, Hub, Published, State, Visibility};
use crate::event_id::EventId;
use crate::sse::{Event, Frame, encode};
use crate::stats::Reason;
use crate::topic::Topic;

impl Hub {
    /// Publishes `event` on `topic`: assigns the next id, encodes the event **once**, keeps
    /// it in the history, and hands the shared frame to every matching subscriber.
    ///
    /// Never waits: a subscriber whose queue is full is evicted instead. Never fails on a
    /// hub without a history file, which is what this is for (library users, producers,
    /// tests). On a hub with one ([`Hub::with_history_file`]) it is
    /// [`try_publish`](Hub::try_publish) that cannot say why: the record is written
    /// first (the calling thread waits for the disk), and when that fails the event is
    /// not published, the failure is logged and counted, and the result says
    /// [`refused`](Published::refused).
    ///
    /// On a hub whose ids a broker assigns ([`Hub::with_external_ids`]), publish through
    /// the broker instead: this delivers the event to this hub's subscribers only,
    /// without an id and without keeping it (so no id can ever name two events), and
    /// answers the id `0-0`.
    pub fn publish(&self, topic: &Topic, event: &Event) -> Published {
        self.publish_as(topic, event, Visibility::Public)
    }

    /// Like [`Hub::publish`], with a [`Visibility`]: a private event reaches (and is
    /// replayed to) only the subscribers whose rights cover `topic`. On a hub with a
    /// history file, as `publish` says.
    pub fn publish_as(&self, topic: &Topic, event: &Event, visibility: Visibility) -> Published {
        match &self.inner.writer {
            None => self.publish_in_memory(topic, event, visibility),
            Some(writer) => self
                .publish_logged(writer, topic, event, visibility)
                .unwrap_or(Published {
                    id: EventId::new(self.inner.epoch, 0),
                    delivery: Delivery::default(),
                    refused: true,
                }),
        }
    }

    /// The publish path without a history file: the hub lock alone, as ever.
    pub(super) fn publish_in_memory(
        &self,
        topic: &Topic,
        event: &Event,
        visibility: Visibility,
    ) -> Published {
        let private = visibility == Visibility::Private;
        let mut evicted = Vec::new();
        let mut direct = Vec::new();
        let mut state = self.lock();
        if state.history.is_external() {
            drop(state);
            let frame = encode(event, None);
            let delivery = self.fan_out_frame(&frame, Some(topic), private);
            return Published {
                id: EventId::new(0, 0),
                delivery,
                refused: false,
            };
        }
        let id = state.history.next_id();
        let frame = encode(event, Some(&id.to_string()));
        let delivery = self.keep_and_fan_out(
            &mut state,
            (id, topic, &frame, private),
            &mut evicted,
            &mut direct,
        );
        drop(state);
        self.inner.stats.event_published();
        self.run_direct(frame, direct);
        self.finish_delivery(&delivery, evicted);
        Published {
            id,
            delivery,
            refused: false,
        }
    }

    /// Under the hub lock: keeps the event of `id` in the history and fans its frame out
    /// (a `private` one only to subscribers whose rights cover its topic).
    pub(super) fn keep_and_fan_out(
        &self,
        state: &mut State,
        (id, topic, frame, private): (EventId, &Topic, &Frame, bool),
        evicted: &mut Vec<(ClientId, Client, Reason)>,
        direct: &mut Vec<DirectTarget>,
    ) -> Delivery {
        state.history.push(
            Retained {
                id,
                topic: topic.clone(),
                frame: frame.clone(),
                private,
            },
            self.inner.limits,
        );
        let go_direct = state.direct_now(self.inner.runner.get().is_some());
        state.fan_out(
            frame,
            Some(topic),
            private,
            None,
            evicted,
            go_direct.then_some(direct),
        )
    }
}
