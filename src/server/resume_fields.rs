//! The head fields of a Mercure stream's resume: `Last-Event-ID` (0.x) and
//! `Mercure-Last-Event-ID` (1.0), decided from what the subscriber asked for and the
//! newest id just before it subscribed. Both the Mercure route (`mercure.rs`), which
//! reads the request, and the stream (`stream.rs`), which writes the head, use it.

use super::Ctx;
use crate::event_id::{EventId, ResetReason, Resume};
use crate::mercure::query::EARLIEST;

/// The head fields a browser page may read from a Mercure stream.
pub(super) const EXPOSED_HEADERS: &str = "SSE-Resume, Last-Event-ID, Mercure-Last-Event-ID";

/// The 1.0 response header: the id of the event before the first one sent.
pub const MERCURE_LAST_EVENT_ID: &str = "Mercure-Last-Event-ID";

/// What a Mercure subscriber's resume headers need, from its request.
#[derive(Debug)]
pub(super) struct Resuming {
    /// The resume id, as sent.
    asked: Option<String>,
    /// It asked for `earliest`.
    earliest: bool,
}

impl Resuming {
    /// A resume from `asked` (as sent; `earliest` when it asked for every retained
    /// event).
    pub(super) fn new(asked: Option<String>, earliest: bool) -> Resuming {
        Resuming { asked, earliest }
    }

    /// Whether it asked for every retained event.
    pub(super) fn earliest(&self) -> bool {
        self.earliest
    }

    /// Reads the newest id, just before the subscription is made.
    pub(super) fn before(&self, ctx: &Ctx) -> Before {
        Before {
            asked: self.asked.clone(),
            earliest: self.earliest,
            newest: ctx.hub.last_id(),
        }
    }
}

/// A Mercure subscriber's resume, and the newest id just before it subscribed.
#[derive(Debug)]
pub(super) struct Before {
    asked: Option<String>,
    earliest: bool,
    newest: Option<EventId>,
}

impl Before {
    /// Adds `Last-Event-ID` (0.x: the newest event when it subscribed) and
    /// `Mercure-Last-Event-ID` (1.0: the event before the first one sent) for a stream
    /// that started with `resume`; `earliest` where that is before every retained event.
    /// An id this hub names is ssehub's own (`<epoch>-<offset>`), which it accepts back
    /// like the publisher's.
    pub(super) fn head_fields(&self, resume: Resume, fields: &mut Vec<(&'static str, String)>) {
        let newest = self
            .newest
            .map_or_else(|| EARLIEST.to_owned(), |id| id.to_string());
        let before_first = match resume {
            _ if self.earliest => EARLIEST.to_owned(),
            Resume::Continue | Resume::Reset(ResetReason::Lost) => {
                self.asked.clone().unwrap_or_else(|| newest.clone())
            }
            Resume::Reset(reason) if reason.replays() => EARLIEST.to_owned(),
            _ => newest.clone(),
        };
        fields.push(("Last-Event-ID", newest));
        fields.push((MERCURE_LAST_EVENT_ID, before_first));
    }
}
