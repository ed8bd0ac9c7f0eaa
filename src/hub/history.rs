//! The replay history: the last published events, bounded in count and in bytes, with
//! the ids it issued and the resume decision (see `event_id.rs` for the contract).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};

use super::HubLimits;
use crate::auth::Selectors;
use crate::envelope::{Envelope, PublisherId};
use crate::event_id::{EventId, Reset, ResetReason, Resume};
use crate::sse::{self, Frame};
use crate::topic::Topics;

/// One event in the hub's order: its position, its addressing, its encoded frame.
#[derive(Clone)]
pub(crate) struct Retained {
    /// Its position: `<epoch>-<offset>` issued here, or the broker's stream id.
    pub(crate) id: EventId,
    /// Its topics, visibility, publisher id and idempotency key.
    pub(crate) envelope: Envelope,
    /// The SSE bytes, encoded once, with its wire id.
    pub(crate) frame: Frame,
}

impl Retained {
    /// `event` at position `id` with `envelope`, encoded once with its wire id.
    pub(crate) fn encode(id: EventId, envelope: Envelope, event: &crate::sse::Event) -> Retained {
        let frame = match envelope.id() {
            Some(wire) => sse::encode(event, Some(wire.as_str())),
            None => sse::encode(event, Some(&id.to_string())),
        };
        Retained {
            id,
            envelope,
            frame,
        }
    }

    /// Its frame with its topics and visibility before the event's lines, for a
    /// tagged subscriber (see [`sse::tagged`]).
    pub(crate) fn tagged_frame(&self) -> Frame {
        let topics = self.envelope.topics().iter().map(|t| t.as_str());
        sse::tagged(&self.frame, topics, self.envelope.is_private())
    }

    /// Its frame for a subscriber that is `tagged` or not.
    fn frame_for(&self, tagged: bool) -> Frame {
        if tagged {
            self.tagged_frame()
        } else {
            self.frame.clone()
        }
    }

    /// The id its subscribers see: the publisher's, or the position.
    pub(crate) fn wire_id(&self) -> Cow<'_, str> {
        match self.envelope.id() {
            Some(id) => Cow::Borrowed(id.as_str()),
            None => Cow::Owned(self.id.to_string()),
        }
    }

    /// Whether a subscriber with `topics` and `rights` may have it.
    fn readable(&self, topics: &Topics, rights: Option<&Selectors>) -> bool {
        self.envelope.wanted_by(topics)
            && (!self.envelope.is_private()
                || rights.is_some_and(|r| self.envelope.readable_by(|t| r.matches(t))))
    }
}

/// Where the ids come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// Issued here: `<epoch>-<offset>`, the offset dense from 1.
    Local,
    /// Issued by a broker (Redis stream ids, `<ms>-<seq>`): increasing, not dense.
    External,
}

/// The bounded replay history, oldest first.
#[derive(Clone)]
pub(crate) struct History {
    ids: Ids,
    /// Fixed for the life of the history: its start time in Unix ms.
    epoch: u64,
    /// The offset of the last event issued (0: none yet).
    last: u64,
    events: VecDeque<Retained>,
    bytes: usize,
    /// The highest offset dropped from the history (0: none).
    dropped_upto: u64,
    /// External ids: the last event's id, the newest id dropped from the history, and the
    /// first id after the latest loss (ids before it cannot continue).
    ext_last: Option<EventId>,
    ext_dropped: Option<EventId>,
    lost_before: Option<EventId>,
    /// External ids: the broker said, when this history was loaded, that it held every
    /// entry the stream ever had; with nothing dropped or lost since, a client at the
    /// stream's start (`0-0`, "I have nothing of it") continues with all of it.
    from_start: bool,
    /// The retained events' publisher ids and idempotency keys, to their positions.
    by_wire_id: HashMap<PublisherId, EventId>,
    by_key: HashMap<PublisherId, EventId>,
}

impl History {
    /// An empty history of `epoch`.
    pub(crate) fn new(epoch: u64) -> History {
        History {
            ids: Ids::Local,
            epoch,
            last: 0,
            events: VecDeque::new(),
            bytes: 0,
            dropped_upto: 0,
            ext_last: None,
            ext_dropped: None,
            lost_before: None,
            from_start: false,
            by_wire_id: HashMap::new(),
            by_key: HashMap::new(),
        }
    }

    /// An empty history whose ids a broker assigns.
    pub(crate) fn external() -> History {
        History {
            ids: Ids::External,
            ..History::new(0)
        }
    }

    /// Whether a broker assigns the ids.
    pub(crate) fn is_external(&self) -> bool {
        self.ids == Ids::External
    }

    /// Notes that events after the last one may have been lost (a broker gap); `next` is
    /// the first id read after the loss, if one was. Clients whose id is older than it
    /// get a `lost` reset.
    pub(crate) fn mark_lost(&mut self, next: Option<EventId>) {
        let floor = next.or_else(|| self.ext_last.map(|l| EventId::new(l.epoch, l.offset + 1)));
        self.lost_before = floor;
    }

    /// The history's epoch.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The id of the last event issued (or, external, delivered).
    pub(crate) fn last_id(&self) -> Option<EventId> {
        match self.ids {
            Ids::Local => (self.last > 0).then(|| EventId::new(self.epoch, self.last)),
            Ids::External => self.ext_last,
        }
    }

    /// The oldest id still kept.
    pub(crate) fn first_retained(&self) -> Option<EventId> {
        self.events.front().map(|e| e.id)
    }

    /// Events retained now.
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// The id the next event gets: it is issued when its event is
    /// [`push`](History::push)ed (a publish whose record cannot be written issues none).
    pub(crate) fn next_id(&self) -> EventId {
        EventId::new(self.epoch, self.last + 1)
    }

    /// An empty history of `epoch` whose events start after `base` (a history file's
    /// header: the offsets before it were issued and are gone).
    pub(crate) fn after(epoch: u64, base: u64) -> History {
        History {
            last: base,
            dropped_upto: base,
            ..History::new(epoch)
        }
    }

    /// The highest offset no longer retained (0: none): the base of a compacted file.
    pub(crate) fn dropped_upto(&self) -> u64 {
        self.dropped_upto
    }

    /// The retained events, oldest first.
    pub(crate) fn retained(&self) -> impl Iterator<Item = &Retained> {
        self.events.iter()
    }

    /// The wire id of the retained event that `envelope` repeats (the same idempotency
    /// key, or the same publisher id), if there is one: a retried publish.
    pub(crate) fn repeated(&self, envelope: &Envelope) -> Option<String> {
        let pos = envelope
            .key()
            .and_then(|k| self.by_key.get(k))
            .or_else(|| envelope.id().and_then(|i| self.by_wire_id.get(i)))?;
        let at = self.events.binary_search_by(|e| e.id.cmp(pos)).ok()?;
        Some(self.events[at].wire_id().into_owned())
    }

    /// Keeps `entry`, dropping the oldest events while over either cap. A local id
    /// must be the one of [`next_id`](History::next_id), which this issues; external
    /// ids must increase (the caller skips the others).
    pub(crate) fn push(&mut self, entry: Retained, limits: HubLimits) {
        match self.ids {
            Ids::Local => {
                debug_assert_eq!(entry.id.offset, self.last + 1);
                self.last = entry.id.offset;
            }
            Ids::External => self.ext_last = Some(entry.id),
        }
        if limits.history_events == 0 {
            self.dropped(entry.id);
            return;
        }
        self.bytes += entry.frame.len();
        if let Some(id) = entry.envelope.id() {
            self.by_wire_id.insert(id.clone(), entry.id);
        }
        if let Some(key) = entry.envelope.key() {
            self.by_key.insert(key.clone(), entry.id);
        }
        self.events.push_back(entry);
        while self.events.len() > limits.history_events
            || (self.bytes > limits.history_bytes && self.events.len() > 1)
        {
            if let Some(old) = self.events.pop_front() {
                self.bytes -= old.frame.len();
                self.unindex(&old);
                self.dropped(old.id);
            }
        }
    }

    fn unindex(&mut self, old: &Retained) {
        if let Some(id) = old.envelope.id()
            && self.by_wire_id.get(id) == Some(&old.id)
        {
            self.by_wire_id.remove(id);
        }
        if let Some(key) = old.envelope.key()
            && self.by_key.get(key) == Some(&old.id)
        {
            self.by_key.remove(key);
        }
    }

    fn dropped(&mut self, id: EventId) {
        match self.ids {
            Ids::Local => self.dropped_upto = id.offset,
            Ids::External => self.ext_dropped = Some(id),
        }
    }

    /// Notes that this (external) history holds the broker's stream from its start
    /// (see `from_start`).
    pub(crate) fn set_from_start(&mut self, whole: bool) {
        self.from_start = whole;
    }

    /// Where a client that sent `last_event_id` stands (an empty text is no id, as a
    /// browser never sends one).
    pub(crate) fn place(&self, last_event_id: Option<&str>) -> Placed {
        let Some(sent) = last_event_id.filter(|s| !s.is_empty()) else {
            return Placed::Initialized;
        };
        // A publisher's id names the event it was given to, while it is retained.
        if let Some(id) = PublisherId::new(sent)
            .ok()
            .and_then(|p| self.by_wire_id.get(&p))
        {
            return Placed::After(*id);
        }
        let Ok(id) = sent.parse::<EventId>() else {
            return Placed::Reset(ResetReason::Unknown);
        };
        if self.ids == Ids::External {
            return self.place_external(id);
        }
        if id.epoch != self.epoch {
            Placed::Reset(ResetReason::OtherEpoch)
        } else if id.offset > self.last {
            Placed::Reset(ResetReason::Future)
        } else if id.offset < self.dropped_upto {
            // The oldest kept is `dropped_upto + 1`: an id right before it misses
            // nothing, an older one missed what was dropped.
            Placed::Reset(ResetReason::Evicted)
        } else {
            Placed::After(id)
        }
    }

    /// [`History::place`] for broker ids: continue only from an id this history still
    /// holds (or the one just before its oldest), with no loss after it.
    fn place_external(&self, id: EventId) -> Placed {
        if id == EventId::new(0, 0)
            && self.from_start
            && self.ext_dropped.is_none()
            && self.lost_before.is_none()
        {
            return Placed::After(id);
        }
        match self.ext_last {
            Some(last) if id <= last => {}
            _ => return Placed::Reset(ResetReason::Future),
        }
        if self.lost_before.is_some_and(|floor| id < floor) {
            return Placed::Reset(ResetReason::Lost);
        }
        if self.ext_dropped == Some(id) || self.events.binary_search_by(|e| e.id.cmp(&id)).is_ok() {
            return Placed::After(id);
        }
        match self.events.front() {
            Some(oldest) if id < oldest.id => Placed::Reset(ResetReason::Evicted),
            None if self.ext_dropped.is_some_and(|d| id < d) => Placed::Reset(ResetReason::Evicted),
            // Inside the history but not one of its ids: another stream's.
            _ => Placed::Reset(ResetReason::Unknown),
        }
    }

    /// The outcome and the backlog for a client that sent `last_event_id` and asks for
    /// `topics`: the retained events after it, or a reset event and whatever retained
    /// events are certainly after the client's position. Private events are in it only
    /// where `rights` cover their topic. A `tagged` subscriber's backlog is tagged (each
    /// frame made for it: a replay is its own).
    pub(crate) fn resume(
        &self,
        last_event_id: Option<&str>,
        topics: &Topics,
        rights: Option<&Selectors>,
        older: &[Retained],
        tagged: bool,
    ) -> (Resume, Vec<Frame>) {
        let readable = |e: &Retained| e.readable(topics, rights);
        let matching = |after: Option<EventId>| {
            let start = match after {
                Some(a) => self.events.partition_point(|e| e.id <= a),
                None => 0,
            };
            self.events.range(start..).filter(move |e| readable(e))
        };
        let mut placed = self.place(last_event_id);
        // A broker's events older than this history, read for this client: they bridge
        // the gap when they start at its id and reach what the history still holds.
        let mut bridge: Vec<Frame> = Vec::new();
        if placed == Placed::Reset(ResetReason::Evicted)
            && let Some(sent) = last_event_id.and_then(|s| s.parse::<EventId>().ok())
            && older.first().is_some_and(|e| e.id == sent)
            && older.last().is_some_and(|l| {
                // It reaches what the history holds: up to its oldest event, or up to
                // the newest one it dropped.
                self.first_retained().is_none_or(|f| l.id >= f)
                    || self.ext_dropped.is_some_and(|d| l.id >= d)
            })
        {
            let oldest = self.first_retained();
            bridge = older
                .iter()
                .skip(1)
                .filter(|e| oldest.is_none_or(|o| e.id < o) && readable(e))
                .map(|e| e.frame_for(tagged))
                .collect();
            placed = Placed::After(self.ext_dropped.unwrap_or(sent));
        }
        match placed {
            Placed::Initialized => (Resume::Initialized, Vec::new()),
            Placed::After(id) => {
                bridge.extend(matching(Some(id)).map(|e| e.frame_for(tagged)));
                (Resume::Continue, bridge)
            }
            Placed::Reset(reason) => {
                let after = match reason {
                    // Certainly after the client: what follows its id here.
                    ResetReason::Lost => last_event_id.and_then(|s| s.parse::<EventId>().ok()),
                    _ => None,
                };
                let replay: Vec<&Retained> = if reason.replays() {
                    matching(after).collect()
                } else {
                    Vec::new()
                };
                let mut out = Vec::with_capacity(replay.len() + 1);
                out.push(sse::reset_event(&Reset {
                    reason,
                    last_event_id: last_event_id.unwrap_or_default(),
                    replay_from: replay.first().map(|e| e.id),
                    first_retained: self.first_retained(),
                    last: self.last_id(),
                }));
                out.extend(replay.into_iter().map(|e| e.frame_for(tagged)));
                (Resume::Reset(reason), out)
            }
        }
    }
}

/// Where a client's id places it in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// No id.
    Initialized,
    /// Right after this id, with nothing after it dropped.
    After(EventId),
    /// Nowhere the stream can continue from.
    Reset(ResetReason),
}

impl Placed {
    /// The outcome a subscription placed here gets.
    pub(crate) fn outcome(self) -> Resume {
        match self {
            Placed::Initialized => Resume::Initialized,
            Placed::After(_) => Resume::Continue,
            Placed::Reset(reason) => Resume::Reset(reason),
        }
    }
}
