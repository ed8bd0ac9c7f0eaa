//! Topic names and the topic filter of a subscriber.

use std::fmt;
use std::sync::Arc;

/// The longest topic name, in bytes.
pub const MAX_TOPIC_BYTES: usize = 128;
/// The topic of events published without one.
pub const DEFAULT_TOPIC: &str = "default";

/// A validated topic name: 1 to [`MAX_TOPIC_BYTES`] bytes of ASCII letters, digits and
/// `- _ . : / ~ @ +`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Checks and wraps a topic name.
    ///
    /// # Errors
    ///
    /// [`TopicError`] naming what is wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssehub::Topic;
    /// assert!(Topic::new("orders/eu-1").is_ok());
    /// assert!(Topic::new("a b").is_err());
    /// assert!(Topic::new("").is_err());
    /// ```
    pub fn new(name: &str) -> Result<Topic, TopicError> {
        if name.is_empty() {
            return Err(TopicError::Empty);
        }
        if name.len() > MAX_TOPIC_BYTES {
            return Err(TopicError::TooLong);
        }
        let ok = |b: u8| b.is_ascii_alphanumeric() || b"-_.:/~@+".contains(&b);
        if !name.bytes().all(ok) {
            return Err(TopicError::InvalidChar);
        }
        Ok(Topic(name.into()))
    }

    /// The topic used when a publisher names none.
    pub fn default_topic() -> Topic {
        Topic(DEFAULT_TOPIC.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({:?})", &*self.0)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a topic name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_TOPIC_BYTES`].
    TooLong,
    /// The name holds a character outside the allowed set.
    InvalidChar,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::Empty => write!(f, "topic must not be empty"),
            TopicError::TooLong => write!(f, "topic exceeds {MAX_TOPIC_BYTES} bytes"),
            TopicError::InvalidChar => write!(
                f,
                "topic may only hold ASCII letters, digits and - _ . : / ~ @ +"
            ),
        }
    }
}

impl std::error::Error for TopicError {}

/// Which topics a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topics {
    /// Every topic.
    All,
    /// Only these (a short list: matching is a linear scan).
    Only(Box<[Topic]>),
}

impl Topics {
    /// The filter of a subscriber that asked for `topics`: each kept once, in the order
    /// first asked (a topic asked twice, `?topic=D&topic=D`, is one subscription and is
    /// counted once in `/stats` and `/metrics`). None asked: every topic.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssehub::{Topic, Topics};
    /// let d = Topic::new("D").unwrap();
    /// assert_eq!(Topics::requested([d.clone(), d.clone()]), Topics::Only([d].into()));
    /// assert_eq!(Topics::requested([]), Topics::All);
    /// ```
    pub fn requested(topics: impl IntoIterator<Item = Topic>) -> Topics {
        let mut list: Vec<Topic> = Vec::new();
        for t in topics {
            if !list.contains(&t) {
                list.push(t);
            }
        }
        if list.is_empty() {
            Topics::All
        } else {
            Topics::Only(list.into())
        }
    }

    /// Whether an event on `topic` goes to this subscriber.
    pub fn matches(&self, topic: &Topic) -> bool {
        match self {
            Topics::All => true,
            Topics::Only(list) => list.iter().any(|t| t == topic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_topic_in_the_query_is_one_topic_of_the_filter() {
        let t = |n: &str| Topic::new(n).unwrap();
        for (asked, kept) in [
            (vec![], None),
            (vec!["D", "D"], Some(vec!["D"])),
            (vec!["a", "b", "a", "c", "b"], Some(vec!["a", "b", "c"])),
            (vec!["b", "a"], Some(vec!["b", "a"])),
        ] {
            let want = kept.map_or(Topics::All, |k| {
                Topics::Only(k.into_iter().map(t).collect())
            });
            assert_eq!(
                Topics::requested(asked.iter().map(|n| t(n))),
                want,
                "{asked:?}"
            );
        }
    }
}
