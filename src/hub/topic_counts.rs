//! Subscribers per topic, kept as subscribers come and go, with a bounded listing.
//!
//! `/metrics` and `/stats` show subscribers per topic. Counting them by walking every
//! subscriber under the hub's lock would delay publishing by the length of the walk at
//! each scrape, and topic names are chosen by subscribers, so listing every one would let
//! anyone grow the scrape without bound. Here each subscribe and each removal updates the
//! counts (O(topics of that subscriber)), and the listing holds at most
//! [`LISTED_TOPICS`] topics: the first ones to get a subscriber, while they keep one.
//! Subscribers of the other topics are only summed.

use std::collections::HashMap;

use crate::topic::{Topic, Topics};

/// Most topics listed by name in `/metrics` and `/stats`. **Default:** 100. **Unit:**
/// topics. **Why:** a scrape stays a few KiB whatever subscribers ask for; the rest are
/// summed in `ssehub_topic_subscribers_unlisted`.
pub const LISTED_TOPICS: usize = 100;

/// The counts (see the module docs).
#[derive(Debug, Default)]
pub(super) struct TopicCounts {
    /// Subscribers to every topic (`*`), always listed.
    all: usize,
    /// Topics with a place in the listing, and their subscribers.
    listed: HashMap<Topic, usize>,
    /// The other topics with subscribers.
    unlisted: HashMap<Topic, usize>,
    /// Subscriptions to unlisted topics, all together.
    unlisted_subscribers: usize,
}

/// What `/metrics` and `/stats` show: listed topics by name (`*` for subscribers to
/// every topic), sorted, and the unlisted ones summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicListing {
    /// `(topic, subscribers)`, sorted by topic; `*` when some subscribe to every topic.
    pub listed: Vec<(String, usize)>,
    /// Topics that have subscribers but no place in the listing.
    pub unlisted_topics: usize,
    /// Subscriptions to those topics, all together.
    pub unlisted_subscribers: usize,
}

impl TopicCounts {
    /// A subscriber to `topics` joined.
    pub(super) fn add(&mut self, topics: &Topics) {
        let Some(list) = topics.counted() else {
            self.all += 1;
            return;
        };
        for t in list.iter() {
            if let Some(n) = self.listed.get_mut(t) {
                *n += 1;
            } else if let Some(n) = self.unlisted.get_mut(t) {
                *n += 1;
                self.unlisted_subscribers += 1;
            } else if self.listed.len() < LISTED_TOPICS {
                self.listed.insert(t.clone(), 1);
            } else {
                self.unlisted.insert(t.clone(), 1);
                self.unlisted_subscribers += 1;
            }
        }
    }

    /// A subscriber to `topics` left.
    pub(super) fn remove(&mut self, topics: &Topics) {
        let Some(list) = topics.counted() else {
            self.all = self.all.saturating_sub(1);
            return;
        };
        for t in list.iter() {
            if let Some(n) = self.listed.get_mut(t) {
                *n -= 1;
                if *n == 0 {
                    self.listed.remove(t);
                }
            } else if let Some(n) = self.unlisted.get_mut(t) {
                *n -= 1;
                self.unlisted_subscribers -= 1;
                if *n == 0 {
                    self.unlisted.remove(t);
                }
            }
        }
    }

    /// The listing: O([`LISTED_TOPICS`]), whatever the number of subscribers.
    pub(super) fn listing(&self) -> TopicListing {
        let mut listed: Vec<(String, usize)> = self
            .listed
            .iter()
            .map(|(t, n)| (t.as_str().to_owned(), *n))
            .collect();
        if self.all > 0 {
            listed.push(("*".to_owned(), self.all));
        }
        listed.sort();
        TopicListing {
            listed,
            unlisted_topics: self.unlisted.len(),
            unlisted_subscribers: self.unlisted_subscribers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(names: &[&str]) -> Topics {
        Topics::Only(names.iter().map(|n| Topic::new(n).unwrap()).collect())
    }

    #[test]
    fn counts_follow_joins_and_leaves() {
        let mut c = TopicCounts::default();
        c.add(&Topics::All);
        c.add(&only(&["a", "b"]));
        c.add(&only(&["a"]));
        assert_eq!(
            c.listing().listed,
            [("*".into(), 1), ("a".into(), 2), ("b".into(), 1)]
        );
        c.remove(&only(&["a", "b"]));
        c.remove(&Topics::All);
        assert_eq!(c.listing().listed, [("a".into(), 1)]);
        c.remove(&only(&["a"]));
        assert_eq!(c.listing(), TopicListing::default());
        assert!(c.listed.is_empty() && c.unlisted.is_empty());
    }

    #[test]
    fn the_listing_is_bounded_and_the_rest_is_summed() {
        let mut c = TopicCounts::default();
        let names: Vec<String> = (0..LISTED_TOPICS + 50).map(|i| format!("t{i}")).collect();
        for n in &names {
            c.add(&only(&[n]));
            c.add(&only(&[n]));
        }
        let l = c.listing();
        assert_eq!(l.listed.len(), LISTED_TOPICS);
        assert_eq!((l.unlisted_topics, l.unlisted_subscribers), (50, 100));
        // A listed topic that loses its last subscriber frees its place for the next
        // topic to get one; unlisted topics keep being summed.
        c.remove(&only(&["t0"]));
        c.remove(&only(&["t0"]));
        c.add(&only(&["fresh"]));
        let l = c.listing();
        assert!(l.listed.iter().any(|(t, n)| t == "fresh" && *n == 1));
        assert_eq!(l.listed.len(), LISTED_TOPICS);
        assert_eq!((l.unlisted_topics, l.unlisted_subscribers), (50, 100));
        for n in &names {
            c.remove(&only(&[n]));
            c.remove(&only(&[n]));
        }
        c.remove(&only(&["fresh"]));
        assert_eq!(c.listing(), TopicListing::default());
    }
}
