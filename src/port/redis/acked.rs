//! What this node acknowledged and read lately, checked on a new master; and the loss
//! marker it writes when something it acknowledged is missing there.
//!
//! What the node **read** and the new master lacks is a `lost` reset for its own
//! subscribers, counted exactly (one `XRANGE` per id in one script,
//! [`stream::missing`]). The stream's `entries-added` counter cannot say it after a
//! failover: the new master counts from its own history, and entries other nodes add
//! there before this node's first read (loss markers, new publishes) hide the entries it
//! lacks (three markers for three lost entries read as "a stream made again").
//!
//! Why: after a `kill -9` failover the readers' rule ([`stream::Position`]) notices the
//! entries a node *read* that the new master lacks. An entry acknowledged to a publisher
//! and lost before any reader read it passes unseen by that rule on every node. The
//! publishing node knows what it acknowledged: it keeps the ids of the last
//! [`ACKED_KEEP`] (at most [`ACKED_MAX`]), and when its reader moves to another master it
//! asks the new master which of them it lacks ([`stream::missing`]). If some are missing
//! it adds a **loss marker** to the stream: an entry with a `lost` field (the count) and
//! an `ids` field (the missing ids), which every node's reader understands. Each node
//! then sends its subscribers a `lost` reset and counts the ids it had not read itself
//! (the ones after its cursor when it left the old master): those it read, its own rule
//! already announced.
//!
//! [`stream::Position`]: crate::redis::stream::Position
//! [`stream::missing`]: crate::redis::stream::missing

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::event_id::EventId;
use crate::redis::stream::Entry;

/// How long an acknowledged id is kept for the check on a new master. **Unit:** s.
/// **Why:** replication on a working link is milliseconds behind; a replica seconds
/// behind is one the sentinels would not promote (or one whose loss the readers' rule
/// sees, as nodes read within milliseconds too).
pub const ACKED_KEEP: Duration = Duration::from_secs(10);

/// Most acknowledged ids kept. **Unit:** ids. **Why:** 10 s at 400 ev/s per node; the
/// check is one script on the new master, one `XRANGE` per id.
pub const ACKED_MAX: usize = 4096;

/// The field that makes an entry a loss marker (its value: how many entries were lost).
pub const MARKER_FIELD: &str = "lost";
/// The marker's field with the missing ids, space-separated.
pub const MARKER_IDS: &str = "ids";

/// Ids seen lately, oldest first: at most [`ACKED_MAX`], none older than [`ACKED_KEEP`].
#[derive(Debug, Default)]
pub struct Recent {
    ids: VecDeque<(EventId, Instant)>,
}

impl Recent {
    /// Notes `id` now, forgetting what is older than [`ACKED_KEEP`] or past
    /// [`ACKED_MAX`].
    pub fn push(&mut self, id: EventId) {
        let now = Instant::now();
        while let Some((_, at)) = self.ids.front() {
            if now.duration_since(*at) <= ACKED_KEEP && self.ids.len() < ACKED_MAX {
                break;
            }
            self.ids.pop_front();
        }
        self.ids.push_back((id, now));
    }

    /// The ids noted within [`ACKED_KEEP`], oldest first.
    pub fn ids(&self) -> Vec<EventId> {
        let now = Instant::now();
        self.ids
            .iter()
            .filter(|(_, at)| now.duration_since(*at) <= ACKED_KEEP)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Forgets every id.
    pub fn clear(&mut self) {
        self.ids.clear();
    }
}

/// The ids this node acknowledged lately (shared by the publishing tasks).
#[derive(Debug, Default)]
pub(super) struct Acked {
    ids: Mutex<Recent>,
}

impl Acked {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that `id` was acknowledged now.
    pub(super) fn remember(&self, id: EventId) {
        self.lock().push(id);
    }

    /// The ids acknowledged within [`ACKED_KEEP`], oldest first; the record is emptied
    /// (each is checked once, on the first master that follows).
    pub(super) fn take(&self) -> Vec<EventId> {
        let mut r = self.lock();
        let ids = r.ids();
        r.clear();
        ids
    }
}

/// The fields of a loss marker for `missing` (with the `ids` text it refers to).
pub(super) fn marker_fields(missing: &[EventId]) -> (String, String) {
    let ids: Vec<String> = missing.iter().map(EventId::to_string).collect();
    (missing.len().to_string(), ids.join(" "))
}

/// The ids a loss marker names, if `e` is one (`None`: an ordinary entry).
pub fn marker_ids(e: &Entry) -> Option<Vec<EventId>> {
    e.field(MARKER_FIELD)?;
    let ids = e.field(MARKER_IDS).unwrap_or_default();
    let text = String::from_utf8_lossy(ids);
    Some(text.split(' ').filter_map(|w| w.parse().ok()).collect())
}

/// How many of a marker's `ids` this node did not read: those after `left_at`, its
/// cursor when it left the old master (`None`: it never moved, so all of them).
pub fn unread(ids: &[EventId], left_at: Option<EventId>) -> u64 {
    ids.iter()
        .filter(|id| left_at.is_none_or(|c| **id > c))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> EventId {
        EventId::new(ms, seq)
    }

    #[test]
    fn the_record_is_bounded_and_taken_once() {
        let a = Acked::default();
        for i in 0..(ACKED_MAX as u64 + 10) {
            a.remember(id(i, 0));
        }
        let got = a.take();
        assert_eq!(got.len(), ACKED_MAX);
        assert_eq!(got[0], id(10, 0), "the oldest went first");
        assert!(a.take().is_empty());
    }

    #[test]
    fn a_marker_round_trips_and_ordinary_entries_are_not_markers() {
        let (n, ids) = marker_fields(&[id(5, 1), id(6, 0)]);
        let e = Entry {
            id: "7-0".into(),
            fields: vec![
                (MARKER_FIELD.into(), n.into_bytes()),
                (MARKER_IDS.into(), ids.into_bytes()),
            ],
        };
        assert_eq!(marker_ids(&e), Some(vec![id(5, 1), id(6, 0)]));
        let plain = Entry {
            id: "8-0".into(),
            fields: vec![(b"data".to_vec(), b"x".to_vec())],
        };
        assert_eq!(marker_ids(&plain), None);
    }

    #[test]
    fn a_node_counts_only_the_ids_it_had_not_read() {
        let ids = [id(5, 0), id(6, 0), id(7, 0)];
        assert_eq!(unread(&ids, None), 3);
        assert_eq!(unread(&ids, Some(id(5, 0))), 2);
        assert_eq!(unread(&ids, Some(id(9, 0))), 0);
    }
}
