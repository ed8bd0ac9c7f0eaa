//! Topic names and the topic filter of a subscriber.

use std::fmt;
use std::sync::Arc;

use crate::mercure::Pattern;

/// The longest topic name, in bytes. **Why:** Mercure topics are IRIs
/// (`https://example.com/books/1`); 2 KiB holds any URL a browser keeps, and every
/// record and frame stays small.
pub const MAX_TOPIC_BYTES: usize = 2048;
/// The topic of events published without one.
pub const DEFAULT_TOPIC: &str = "default";

/// A validated topic name: 1 to [`MAX_TOPIC_BYTES`] bytes of any characters but control
/// characters (so never CR, LF, NUL or DEL) and white space (which no IRI holds: it is
/// written `%20`): a plain name (`orders/eu-1`) or an IRI, as Mercure's topics are
/// (`https://example.com/livres/été?x={y}`).
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
    /// assert!(Topic::new("https://example.com/été/{c}?d=1#e").is_ok());
    /// assert!(Topic::new("a b").is_err());
    /// assert!(Topic::new("a\nb").is_err());
    /// assert!(Topic::new("").is_err());
    /// ```
    pub fn new(name: &str) -> Result<Topic, TopicError> {
        if name.is_empty() {
            return Err(TopicError::Empty);
        }
        if name.len() > MAX_TOPIC_BYTES {
            return Err(TopicError::TooLong);
        }
        if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
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
    /// The name holds a control character or white space.
    InvalidChar,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::Empty => write!(f, "topic must not be empty"),
            TopicError::TooLong => write!(f, "topic exceeds {MAX_TOPIC_BYTES} bytes"),
            TopicError::InvalidChar => {
                write!(f, "topic must not hold control characters or white space")
            }
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
    /// Mercure selectors with patterns (URI templates, URL patterns) among them: see
    /// [`Matching`]. A Mercure subscriber with exact names only is [`Topics::Only`].
    Matching(Arc<Matching>),
}

/// A filter of exact names and patterns: an event is wanted when any of them matches
/// any of its topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matching {
    /// The exact names.
    names: Box<[Topic]>,
    /// The patterns.
    patterns: Box<[Pattern]>,
    /// What `/stats` and `/metrics` count this subscriber under: its names, then each
    /// pattern's text.
    counted: Box<[Topic]>,
}

impl Matching {
    /// The filter of `names` (each kept once) and `patterns`.
    ///
    /// # Errors
    ///
    /// [`TopicError`] when a pattern's text could not be a topic name (it is counted
    /// under it).
    pub fn new(names: Vec<Topic>, patterns: Vec<Pattern>) -> Result<Matching, TopicError> {
        Matching::build(names, patterns)
    }

    /// Its exact names and its patterns (what [`Matching::new`] was given, each name
    /// once), e.g. to rebuild it in a successor process.
    pub(crate) fn parts(&self) -> (&[Topic], &[Pattern]) {
        (&self.names, &self.patterns)
    }

    fn build(names: Vec<Topic>, patterns: Vec<Pattern>) -> Result<Matching, TopicError> {
        let mut unique: Vec<Topic> = Vec::with_capacity(names.len());
        for t in names {
            if !unique.contains(&t) {
                unique.push(t);
            }
        }
        let mut counted = unique.clone();
        for p in &patterns {
            let t = Topic::new(p.source())?;
            if !counted.contains(&t) {
                counted.push(t);
            }
        }
        Ok(Matching {
            names: unique.into(),
            patterns: patterns.into(),
            counted: counted.into(),
        })
    }

    /// Whether any name or pattern matches `topic`.
    pub fn matches(&self, topic: &Topic) -> bool {
        self.names.iter().any(|t| t == topic)
            || self.patterns.iter().any(|p| p.matches(topic.as_str()))
    }

    /// What the subscriber is counted under in `/stats` and `/metrics`: its names and
    /// its patterns' texts.
    pub fn counted(&self) -> &[Topic] {
        &self.counted
    }
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
            Topics::Matching(m) => m.matches(topic),
        }
    }

    /// The names a subscriber is counted under in `/stats` and `/metrics` (`None`:
    /// every topic, counted as `*`).
    pub fn counted(&self) -> Option<&[Topic]> {
        match self {
            Topics::All => None,
            Topics::Only(list) => Some(list),
            Topics::Matching(m) => Some(m.counted()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mercure::Syntax;

    #[test]
    fn topics_are_any_text_without_control_characters_or_white_space() {
        for ok in [
            "a",
            "https://example.com/a%20b/{c}?d=é#e",
            "will-not-match}",
            &"x".repeat(MAX_TOPIC_BYTES),
        ] {
            assert!(Topic::new(ok).is_ok(), "{ok:?}");
        }
        for (bad, why) in [
            ("", TopicError::Empty),
            ("a\rb", TopicError::InvalidChar),
            ("a b", TopicError::InvalidChar),
            ("a\u{a0}b", TopicError::InvalidChar),
            ("a\nb", TopicError::InvalidChar),
            ("a\0b", TopicError::InvalidChar),
            ("a\u{7f}", TopicError::InvalidChar),
            ("a\u{85}", TopicError::InvalidChar),
            (&"x".repeat(MAX_TOPIC_BYTES + 1), TopicError::TooLong),
        ] {
            assert_eq!(Topic::new(bad), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn a_matching_filter_takes_names_and_patterns() {
        let t = |n: &str| Topic::new(n).unwrap();
        let p = Pattern::new("https://e.com/{id}", Syntax::UriTemplate).unwrap();
        let m = Topics::Matching(Arc::new(
            Matching::new(vec![t("a"), t("a")], vec![p]).unwrap(),
        ));
        assert!(m.matches(&t("a")));
        assert!(m.matches(&t("https://e.com/1")));
        assert!(!m.matches(&t("https://e.com/1/2")));
        assert_eq!(m.counted().unwrap(), [t("a"), t("https://e.com/{id}")]);
        assert_eq!(Topics::All.counted(), None);
    }

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
