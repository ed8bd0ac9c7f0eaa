//! The replay history: the last published events, bounded in count and in bytes.

use std::collections::VecDeque;

use super::HubLimits;
use crate::auth::Selectors;
use crate::sse::{self, Frame};
use crate::topic::{Topic, Topics};

/// One retained event.
pub(super) struct Retained {
    pub(super) id: u64,
    pub(super) topic: Topic,
    pub(super) frame: Frame,
    /// Replayed only to subscribers whose rights cover the topic.
    pub(super) private: bool,
}

/// The bounded replay history, oldest first.
#[derive(Default)]
pub(super) struct History {
    events: VecDeque<Retained>,
    bytes: usize,
    /// The highest id dropped from the history (0: none).
    dropped_upto: u64,
}

impl History {
    /// Events retained now.
    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    /// Keeps `entry`, dropping the oldest events while over either cap.
    pub(super) fn push(&mut self, entry: Retained, limits: HubLimits) {
        if limits.history_events == 0 {
            self.dropped_upto = entry.id;
            return;
        }
        self.bytes += entry.frame.len();
        self.events.push_back(entry);
        while self.events.len() > limits.history_events
            || (self.bytes > limits.history_bytes && self.events.len() > 1)
        {
            if let Some(old) = self.events.pop_front() {
                self.bytes -= old.frame.len();
                self.dropped_upto = old.id;
            }
        }
    }

    /// Frames after `last` on `topics` (private ones only where `rights` cover their
    /// topic), preceded by a notice when some were dropped.
    pub(super) fn backlog(
        &self,
        last: u64,
        topics: &Topics,
        rights: Option<&Selectors>,
    ) -> Vec<Frame> {
        let mut out = Vec::new();
        if last < self.dropped_upto {
            let oldest = self.events.front().map_or(self.dropped_upto + 1, |e| e.id);
            out.push(sse::missed_events(oldest, last));
        }
        let start = self.events.partition_point(|e| e.id <= last);
        out.extend(
            self.events
                .range(start..)
                .filter(|e| {
                    topics.matches(&e.topic)
                        && (!e.private || rights.is_some_and(|r| r.matches(&e.topic)))
                })
                .map(|e| e.frame.clone()),
        );
        out
    }
}
