//! The replay history: the last published events, bounded in count and in bytes, with
//! the ids it issued and the resume decision (see `event_id.rs` for the contract).

use std::collections::VecDeque;

use super::HubLimits;
use crate::event_id::{EventId, Reset, ResetReason, Resume};
use crate::sse::{self, Frame};
use crate::topic::{Topic, Topics};

/// One retained event.
#[derive(Clone)]
pub(super) struct Retained {
    /// Its offset in this history (the id is `<epoch>-<offset>`).
    pub(super) offset: u64,
    pub(super) topic: Topic,
    pub(super) frame: Frame,
}

/// The bounded replay history, oldest first.
#[derive(Clone)]
pub(super) struct History {
    /// Fixed for the life of the history: its start time in Unix ms.
    epoch: u64,
    /// The offset of the last event issued (0: none yet).
    last: u64,
    events: VecDeque<Retained>,
    bytes: usize,
    /// The highest offset dropped from the history (0: none).
    dropped_upto: u64,
}

impl History {
    /// An empty history of `epoch`.
    pub(super) fn new(epoch: u64) -> History {
        History {
            epoch,
            last: 0,
            events: VecDeque::new(),
            bytes: 0,
            dropped_upto: 0,
        }
    }

    /// The history's epoch.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The id of the last event issued.
    pub(super) fn last_id(&self) -> Option<EventId> {
        (self.last > 0).then(|| EventId::new(self.epoch, self.last))
    }

    /// Events retained now.
    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    /// The id the next event gets: it is issued when its event is
    /// [`push`](History::push)ed (a publish whose record cannot be written issues none).
    pub(super) fn next_id(&self) -> EventId {
        EventId::new(self.epoch, self.last + 1)
    }

    /// An empty history of `epoch` whose events start after `base` (a history file's
    /// header: the offsets before it were issued and are gone).
    pub(super) fn after(epoch: u64, base: u64) -> History {
        History {
            last: base,
            dropped_upto: base,
            ..History::new(epoch)
        }
    }

    /// The highest offset no longer retained (0: none): the base of a compacted file.
    pub(super) fn dropped_upto(&self) -> u64 {
        self.dropped_upto
    }

    /// The retained events, oldest first, as (offset, topic, frame).
    pub(super) fn retained(&self) -> impl Iterator<Item = (u64, &Topic, &Frame)> {
        self.events.iter().map(|e| (e.offset, &e.topic, &e.frame))
    }

    /// Keeps `entry` (the event of [`next_id`](History::next_id), which it issues),
    /// dropping the oldest events while over either cap.
    pub(super) fn push(&mut self, entry: Retained, limits: HubLimits) {
        debug_assert_eq!(entry.offset, self.last + 1);
        self.last = entry.offset;
        if limits.history_events == 0 {
            self.dropped_upto = entry.offset;
            return;
        }
        self.bytes += entry.frame.len();
        self.events.push_back(entry);
        while self.events.len() > limits.history_events
            || (self.bytes > limits.history_bytes && self.events.len() > 1)
        {
            if let Some(old) = self.events.pop_front() {
                self.bytes -= old.frame.len();
                self.dropped_upto = old.offset;
            }
        }
    }

    /// Where a client that sent `last_event_id` stands (an empty text is no id, as a
    /// browser never sends one).
    pub(super) fn place(&self, last_event_id: Option<&str>) -> Placed {
        let Some(sent) = last_event_id.filter(|s| !s.is_empty()) else {
            return Placed::Initialized;
        };
        let Ok(id) = sent.parse::<EventId>() else {
            return Placed::Reset(ResetReason::Unknown);
        };
        if id.epoch != self.epoch {
            Placed::Reset(ResetReason::OtherEpoch)
        } else if id.offset > self.last {
            Placed::Reset(ResetReason::Future)
        } else if id.offset < self.dropped_upto {
            // The oldest kept is `dropped_upto + 1`: an id right before it misses
            // nothing, an older one missed what was dropped.
            Placed::Reset(ResetReason::Evicted)
        } else {
            Placed::After(id.offset)
        }
    }

    /// The outcome and the backlog for a client that sent `last_event_id` and asks for
    /// `topics`: the retained events after it, or a reset event and whatever retained
    /// events are certainly after the client's position.
    pub(super) fn resume(
        &self,
        last_event_id: Option<&str>,
        topics: &Topics,
    ) -> (Resume, Vec<Frame>) {
        let matching = |after: u64| {
            let start = self.events.partition_point(|e| e.offset <= after);
            self.events
                .range(start..)
                .filter(|e| topics.matches(&e.topic))
        };
        match self.place(last_event_id) {
            Placed::Initialized => (Resume::Initialized, Vec::new()),
            Placed::After(offset) => (
                Resume::Continue,
                matching(offset).map(|e| e.frame.clone()).collect(),
            ),
            Placed::Reset(reason) => {
                let replay: Vec<&Retained> = if reason.replays() {
                    matching(0).collect()
                } else {
                    Vec::new()
                };
                let mut out = Vec::with_capacity(replay.len() + 1);
                out.push(sse::reset_event(&Reset {
                    reason,
                    last_event_id: last_event_id.unwrap_or_default(),
                    replay_from: replay.first().map(|e| EventId::new(self.epoch, e.offset)),
                    first_retained: self
                        .events
                        .front()
                        .map(|e| EventId::new(self.epoch, e.offset)),
                    last: self.last_id(),
                }));
                out.extend(replay.into_iter().map(|e| e.frame.clone()));
                (Resume::Reset(reason), out)
            }
        }
    }
}

/// Where a client's id places it in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placed {
    /// No id.
    Initialized,
    /// Right after this offset, with nothing after it dropped.
    After(u64),
    /// Nowhere the stream can continue from.
    Reset(ResetReason),
}

impl Placed {
    /// The outcome a subscription placed here gets.
    pub(super) fn outcome(self) -> Resume {
        match self {
            Placed::Initialized => Resume::Initialized,
            Placed::After(_) => Resume::Continue,
            Placed::Reset(reason) => Resume::Reset(reason),
        }
    }
}
