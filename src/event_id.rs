//! Event ids and the resume contract: what an id is, and what a client that resumes
//! with one gets.
//!
//! # Ids
//!
//! An id is **opaque text** on the wire: clients only echo it back (in `Last-Event-ID`
//! or `?lastEventId=`). The in-memory hub writes `<epoch>-<offset>`:
//!
//! - the **epoch** is the history's start time in Unix milliseconds, fixed for the life
//!   of one history (one hub, so one server process). A restart starts a new history
//!   with a later epoch, so an id is never issued twice and an id from before the
//!   restart is recognised as another history's. Two hubs in one process never share an
//!   epoch (a later one takes at least the previous epoch + 1). An in-memory hub cannot
//!   know its predecessor in an earlier process, so the limit is the clock: a restart
//!   with the system clock set back to or before the previous start reuses epochs.
//! - the **offset** counts the history's events, dense from 1.
//!
//! # Resuming
//!
//! A subscriber that passes an id gets one of three [`Resume`] outcomes (see
//! `Hub::subscribe`): **continue** (exactly the retained events after the id),
//! **reset** (first a named `reset` event saying why, then whatever retained events are
//! certainly after the client's position, then live) or, without an id,
//! **initialized** (live only).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// One event's id: the history's epoch and the event's offset in it.
///
/// # Examples
///
/// ```
/// use ssehub::EventId;
/// let id: EventId = "1796157594950-42".parse().unwrap();
/// assert_eq!((id.epoch, id.offset), (1796157594950, 42));
/// assert_eq!(id.to_string(), "1796157594950-42");
/// // Only the canonical form parses: no sign, no spaces, no leading zeros.
/// for bad in ["42", "1-", "-1", "1-+2", " 1-2", "01-2", "1-02", "1-2-3", "x"] {
///     assert!(bad.parse::<EventId>().is_err(), "{bad}");
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    /// The history's start time. **Unit:** ms since the Unix epoch.
    pub epoch: u64,
    /// The event's place in the history, from 1 (0: before the first event).
    pub offset: u64,
}

impl EventId {
    /// The id of the event at `offset` in the history of `epoch`.
    pub fn new(epoch: u64, offset: u64) -> EventId {
        EventId { epoch, offset }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.offset)
    }
}

/// Text that is not an id in the canonical `<epoch>-<offset>` form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnId;

impl fmt::Display for NotAnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an id of the form <epoch>-<offset>")
    }
}

impl std::error::Error for NotAnId {}

impl FromStr for EventId {
    type Err = NotAnId;

    /// Parses the canonical form only (what [`Display`](fmt::Display) writes), so that
    /// one event has exactly one id text.
    fn from_str(s: &str) -> Result<EventId, NotAnId> {
        let (epoch, offset) = s.split_once('-').ok_or(NotAnId)?;
        Ok(EventId {
            epoch: canonical_u64(epoch)?,
            offset: canonical_u64(offset)?,
        })
    }
}

/// A decimal `u64` without sign, spaces or leading zeros.
fn canonical_u64(s: &str) -> Result<u64, NotAnId> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return Err(NotAnId);
    }
    s.parse().map_err(|_| NotAnId)
}

/// The epoch of a history started now: the time in Unix milliseconds, but always later
/// than any epoch handed out before in this process.
pub fn new_epoch() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev.saturating_add(1));
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => prev = seen,
        }
    }
}

/// How a subscription started, decided under the hub's lock together with its backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resume {
    /// The id belongs to this history and nothing after it was dropped: the backlog is
    /// exactly the retained events after it.
    Continue,
    /// The backlog starts with a `reset` event, for this reason.
    Reset(ResetReason),
    /// No id: live events only.
    Initialized,
}

impl Resume {
    /// Every outcome label, in the order of [`Resume::index`].
    pub const LABELS: [&'static str; 3] = ["continue", "reset", "initialized"];

    /// The label used in the `SSE-Resume` header, `/stats` and `/metrics`.
    pub fn label(self) -> &'static str {
        Resume::LABELS[self.index()]
    }

    /// The position of this outcome's counter.
    pub fn index(self) -> usize {
        match self {
            Resume::Continue => 0,
            Resume::Reset(_) => 1,
            Resume::Initialized => 2,
        }
    }
}

/// Why a resume could not continue where the client left off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetReason {
    /// The id is of this history, but events after it were dropped from it (the caps):
    /// every retained event follows.
    Evicted,
    /// The id is of another history (an earlier process, before a restart): every
    /// retained event follows.
    OtherEpoch,
    /// The text is not an id this hub could have issued (`3`, `abc`): it cannot be
    /// placed, so nothing is replayed.
    Unknown,
    /// The id is of this history but later than its last event: nothing is replayed.
    Future,
    /// Events after the id were lost before this node could read them (with a broker:
    /// the stream was trimmed past the node's cursor, flushed, or restarted without
    /// persistence): every retained event after the id follows.
    Lost,
}

impl ResetReason {
    /// Every reason, in the order of [`ResetReason::index`].
    pub const ALL: [ResetReason; 5] = [
        ResetReason::Evicted,
        ResetReason::OtherEpoch,
        ResetReason::Unknown,
        ResetReason::Future,
        ResetReason::Lost,
    ];

    /// The label used in the reset event, `/stats` and `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            ResetReason::Evicted => "evicted",
            ResetReason::OtherEpoch => "other-epoch",
            ResetReason::Unknown => "unknown",
            ResetReason::Future => "future",
            ResetReason::Lost => "lost",
        }
    }

    /// The position of this reason in [`ResetReason::ALL`].
    pub fn index(self) -> usize {
        match self {
            ResetReason::Evicted => 0,
            ResetReason::OtherEpoch => 1,
            ResetReason::Unknown => 2,
            ResetReason::Future => 3,
            ResetReason::Lost => 4,
        }
    }

    /// Whether every retained event follows the reset (`false`: none does).
    pub fn replays(self) -> bool {
        matches!(
            self,
            ResetReason::Evicted | ResetReason::OtherEpoch | ResetReason::Lost
        )
    }
}

/// What a reset event says: why, what the client sent, and where things stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset<'a> {
    /// Why the stream could not continue.
    pub reason: ResetReason,
    /// The `Last-Event-ID` the client sent, as sent (the encoder truncates it).
    pub last_event_id: &'a str,
    /// The first event replayed after the reset, if any.
    pub replay_from: Option<EventId>,
    /// The oldest event the history still keeps, if any.
    pub first_retained: Option<EventId>,
    /// The last event published, if any.
    pub last: Option<EventId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        for (e, o) in [(0, 0), (1, 1), (1796157594950, 42), (u64::MAX, u64::MAX)] {
            let id = EventId::new(e, o);
            assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
        }
        assert_eq!("0-0".parse::<EventId>(), Ok(EventId::new(0, 0)));
    }

    #[test]
    fn only_the_canonical_form_parses() {
        for bad in [
            "",
            "3",
            "-",
            "1-",
            "-1",
            "+1-2",
            "1-+2",
            "1 -2",
            "1-2 ",
            "00-1",
            "1-00",
            "1-2-3",
            "18446744073709551616-1",
            "1-18446744073709551616",
            "abc",
            "１-２",
        ] {
            assert_eq!(bad.parse::<EventId>(), Err(NotAnId), "{bad:?}");
        }
    }

    #[test]
    fn epochs_in_one_process_are_increasing_and_near_now() {
        let a = new_epoch();
        let b = new_epoch();
        assert!(b > a);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(a.abs_diff(now) < 60_000, "{a} vs {now}");
    }

    #[test]
    fn labels_and_indexes_agree() {
        for (i, r) in ResetReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        for r in [
            Resume::Continue,
            Resume::Reset(ResetReason::Future),
            Resume::Initialized,
        ] {
            assert_eq!(Resume::LABELS[r.index()], r.label());
        }
    }
}
