//! What an event is besides its SSE fields, the same on every backend: where it goes
//! (one or more topics, the first canonical), who may read it (public or private), the
//! id its publisher chose (if any), and the key that makes a retry of its publish
//! harmless (if any).
//!
//! ```
//! use ssehub::envelope::{Envelope, PublisherId};
//! use ssehub::Topic;
//!
//! let env = Envelope::new(vec![Topic::new("books/1").unwrap(), Topic::new("books").unwrap()])
//!     .unwrap()
//!     .with_id(PublisherId::new("urn:uuid:42").unwrap());
//! assert_eq!(env.topic().as_str(), "books/1");
//! assert_eq!(env.alternates().len(), 1);
//! assert!(PublisherId::new("a\nb").is_err());
//! ```

use std::fmt;
use std::sync::Arc;

use crate::topic::{Topic, Topics};

/// Most topics one event may carry (its own and its alternates). **Unit:** topics.
/// **Why:** every subscriber's filter is matched against each of them during the fan-out.
pub const MAX_EVENT_TOPICS: usize = 16;
/// The longest publisher-supplied id or idempotency key. **Unit:** bytes. **Why:** it is
/// written into every frame and every record, and kept in the history's index.
pub const MAX_KEY_BYTES: usize = 256;

/// An event's addressing and identity. Cheap to clone (shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    topics: Box<[Topic]>,
    private: bool,
    id: Option<PublisherId>,
    key: Option<PublisherId>,
}

/// Why an envelope could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// No topic.
    NoTopic,
    /// More than [`MAX_EVENT_TOPICS`] topics.
    TooManyTopics,
    /// An id or key that is empty, longer than [`MAX_KEY_BYTES`], or holds a control
    /// character.
    BadId(&'static str),
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeError::NoTopic => f.write_str("an event needs at least one topic"),
            EnvelopeError::TooManyTopics => {
                write!(f, "an event may carry at most {MAX_EVENT_TOPICS} topics")
            }
            EnvelopeError::BadId(what) => write!(
                f,
                "{what} must be 1 to {MAX_KEY_BYTES} bytes without control characters"
            ),
        }
    }
}

impl std::error::Error for EnvelopeError {}

/// A publisher-chosen text: an event id (the SSE `id:` on the wire) or an idempotency
/// key. 1 to [`MAX_KEY_BYTES`] bytes, no control characters (so never CR, LF or NUL).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublisherId(Arc<str>);

impl PublisherId {
    /// Checks and wraps `text`.
    ///
    /// # Errors
    ///
    /// [`EnvelopeError::BadId`] when it is empty, too long or holds a control character.
    pub fn new(text: &str) -> Result<PublisherId, EnvelopeError> {
        Self::named(text, "an event id")
    }

    /// [`PublisherId::new`], naming `what` in the error (`"Idempotency-Key"`).
    ///
    /// # Errors
    ///
    /// As [`PublisherId::new`].
    pub fn named(text: &str, what: &'static str) -> Result<PublisherId, EnvelopeError> {
        let ok = !text.is_empty()
            && text.len() <= MAX_KEY_BYTES
            && !text.chars().any(|c| c.is_control());
        if ok {
            Ok(PublisherId(text.into()))
        } else {
            Err(EnvelopeError::BadId(what))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PublisherId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublisherId({:?})", &*self.0)
    }
}

impl fmt::Display for PublisherId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Envelope {
    /// A public event on `topics` (the first is its topic, the rest alternates; a topic
    /// named twice counts once).
    ///
    /// # Errors
    ///
    /// [`EnvelopeError::NoTopic`] or [`EnvelopeError::TooManyTopics`].
    pub fn new(topics: Vec<Topic>) -> Result<Envelope, EnvelopeError> {
        let mut unique: Vec<Topic> = Vec::with_capacity(topics.len());
        for t in topics {
            if !unique.contains(&t) {
                unique.push(t);
            }
        }
        if unique.is_empty() {
            return Err(EnvelopeError::NoTopic);
        }
        if unique.len() > MAX_EVENT_TOPICS {
            return Err(EnvelopeError::TooManyTopics);
        }
        Ok(Envelope {
            inner: Arc::new(Inner {
                topics: unique.into(),
                private: false,
                id: None,
                key: None,
            }),
        })
    }

    /// A public event on the one `topic`.
    pub fn on(topic: Topic) -> Envelope {
        Envelope {
            inner: Arc::new(Inner {
                topics: Box::new([topic]),
                private: false,
                id: None,
                key: None,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Envelope {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// The same, private (`true`) or public.
    pub fn with_private(self, private: bool) -> Envelope {
        self.edit(|i| i.private = private)
    }

    /// The same, with the publisher's id.
    pub fn with_id(self, id: PublisherId) -> Envelope {
        self.edit(|i| i.id = Some(id))
    }

    /// The same, with an idempotency key.
    pub fn with_key(self, key: PublisherId) -> Envelope {
        self.edit(|i| i.key = Some(key))
    }

    /// The event's topic (the first).
    pub fn topic(&self) -> &Topic {
        &self.inner.topics[0]
    }

    /// Its alternate topics.
    pub fn alternates(&self) -> &[Topic] {
        &self.inner.topics[1..]
    }

    /// All its topics, its own first.
    pub fn topics(&self) -> &[Topic] {
        &self.inner.topics
    }

    /// Whether it is private.
    pub fn is_private(&self) -> bool {
        self.inner.private
    }

    /// The publisher's id, if it gave one.
    pub fn id(&self) -> Option<&PublisherId> {
        self.inner.id.as_ref()
    }

    /// The idempotency key, if the publish carried one.
    pub fn key(&self) -> Option<&PublisherId> {
        self.inner.key.as_ref()
    }

    /// Whether a subscriber filtering on `filter` wants it (any of its topics). The arms
    /// for [`Topics::All`] and [`Topics::Only`] are the fan-out's hot path; a Mercure
    /// filter with patterns ([`Topics::Matching`]) tries each topic against its names and
    /// patterns, allocating nothing.
    pub fn wanted_by(&self, filter: &Topics) -> bool {
        match filter {
            Topics::All => true,
            Topics::Only(_) => self.inner.topics.iter().any(|t| filter.matches(t)),
            Topics::Matching(m) => self.inner.topics.iter().any(|t| m.matches(t)),
        }
    }

    /// Whether `may_read` allows any of its topics (for a private event).
    pub fn readable_by(&self, may_read: impl Fn(&Topic) -> bool) -> bool {
        self.inner.topics.iter().any(may_read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Topic {
        Topic::new(s).unwrap()
    }

    #[test]
    fn topics_first_is_canonical_and_repeats_count_once() {
        let e = Envelope::new(vec![t("a"), t("b"), t("a")]).unwrap();
        assert_eq!(e.topics(), &[t("a"), t("b")]);
        assert_eq!(e.topic(), &t("a"));
        assert_eq!(Envelope::new(vec![]), Err(EnvelopeError::NoTopic));
        let many = (0..=MAX_EVENT_TOPICS)
            .map(|i| t(&format!("t{i}")))
            .collect();
        assert_eq!(Envelope::new(many), Err(EnvelopeError::TooManyTopics));
    }

    #[test]
    fn a_subscriber_matching_any_topic_wants_it() {
        let e = Envelope::new(vec![t("a"), t("b")]).unwrap();
        assert!(e.wanted_by(&Topics::Only(Box::new([t("b")]))));
        assert!(!e.wanted_by(&Topics::Only(Box::new([t("c")]))));
        assert!(e.wanted_by(&Topics::All));
    }

    #[test]
    fn publisher_ids_refuse_control_characters_and_size() {
        for bad in [
            "",
            "a\rb",
            "a\nb",
            "a\0b",
            "\u{7f}",
            &"x".repeat(MAX_KEY_BYTES + 1),
        ] {
            assert!(PublisherId::new(bad).is_err(), "{bad:?}");
        }
        assert!(PublisherId::new(&"x".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(PublisherId::new("https://example.com/books/1#é").is_ok());
    }

    #[test]
    fn editing_a_shared_envelope_leaves_the_other_copy() {
        let a = Envelope::on(t("a"));
        let b = a.clone().with_private(true);
        assert!(!a.is_private());
        assert!(b.is_private());
    }
}
