//! Mercure's active subscriptions, without I/O: who is subscribed to what on this node
//! ([`Registry`]), the topic of each subscription's events and the JSON documents that
//! describe it, in Mercure 0.x's shape and in 1.0's (draft-dunglas-mercure-08).
//!
//! One [`Subscription`] is one selector of one subscriber (`topic=`, `match=`, …), as
//! Mercure counts them. Its events' topic and its document differ by protocol version:
//!
//! | | 0.x | 1.0 |
//! |---|---|---|
//! | topic and `id` | `{hub}/subscriptions/{topic}/{subscriber}` | `{hub}/subscriptions/{match_type}/{match}/{subscriber}` |
//! | selector fields | `topic` | `match_type`, `match` |
//! | list's event id | `lastEventID` | `last_event_id` |
//!
//! Both carry `@context` (`https://mercure.rocks/`), `type` (`Subscription`),
//! `subscriber`, `active` and, when the token has one, `payload`. `{topic}`, `{match}`
//! and `{subscriber}` are percent-encoded once, every byte but RFC 3986's unreserved
//! ones. The routes and the events are `server/subscriptions.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value, json};

/// The JSON-LD context of every document.
pub const CONTEXT: &str = "https://mercure.rocks/";

/// Most selectors of one subscriber that become subscriptions (listed, with events
/// when it comes and goes); the others still select events but are not tracked.
/// **Why:** a connect or a disconnect then costs at most this many events, however many
/// selectors (up to 64) the subscriber sends, so a subscriber storm costs the publish
/// path a known amount per connection.
pub const MAX_TRACKED_SELECTORS: usize = 8;

/// Most subscriptions one list answer holds (Mercure allows a hub to truncate). **Why:**
/// an answer is built in memory; 10,000 entries are about 3 MB of JSON at most-size
/// selectors and payloads, and far more than a dashboard shows.
pub const MAX_LISTED: usize = 10_000;

/// The protocol version a subscriber or a reader of the list speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Mercure 0.x: `topic=` selectors, `mercure` claims.
    V0,
    /// Mercure 1.0: `match*=` selectors, `at+jwt` access tokens.
    V1,
}

/// How a subscription's selector matches topics (1.0's `match_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    /// The topic itself, or `*` for every topic.
    Exact,
    /// A WHATWG URL pattern (`match_urlpattern=`).
    UrlPattern,
    /// An RFC 6570 URI template (0.x `topic=` holding `{`, `match_uritemplate=`).
    UriTemplate,
}

impl MatchType {
    /// Its name in 1.0 topics and documents: `exact`, `urlpattern`, `uritemplate`.
    pub fn name(self) -> &'static str {
        match self {
            MatchType::Exact => "exact",
            MatchType::UrlPattern => "urlpattern",
            MatchType::UriTemplate => "uritemplate",
        }
    }

    /// The match type named `name` (as in a 1.0 list path).
    pub fn named(name: &str) -> Option<MatchType> {
        [
            MatchType::Exact,
            MatchType::UrlPattern,
            MatchType::UriTemplate,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// One subscription: a selector of a subscriber, and the payload its token gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// How the selector matches.
    pub match_type: MatchType,
    /// The selector as sent (`*` for every topic).
    pub selector: Box<str>,
    /// The token's payload for it, compact JSON text.
    pub payload: Option<Arc<str>>,
}

/// A subscriber: its id, the version it spoke, its tracked subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// `urn:uuid:` and a random version 4 UUID, made by the hub: never from the client,
    /// and no token's `sub` shown to the other readers of the events.
    pub id: Arc<str>,
    /// What its selectors were written in: the version of its events' topics.
    pub version: Version,
    /// At most [`MAX_TRACKED_SELECTORS`].
    pub subscriptions: Vec<Subscription>,
}

impl Subscriber {
    /// A subscriber with a new id.
    pub fn new(version: Version, mut subscriptions: Vec<Subscription>) -> Subscriber {
        subscriptions.truncate(MAX_TRACKED_SELECTORS);
        Subscriber {
            id: new_id().into(),
            version,
            subscriptions,
        }
    }
}

/// A new subscriber id: `urn:uuid:` and a random (version 4) UUID.
pub fn new_id() -> String {
    let mut b: [u8; 16] = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `s` with every byte but RFC 3986's unreserved ones (`A-Z a-z 0-9 - . _ ~`) written
/// `%XX`: one path segment, encoded once.
///
/// # Examples
///
/// ```
/// use ssehub::mercure::subscriptions::encode;
/// assert_eq!(encode("https://e.com/b/{id}"), "https%3A%2F%2Fe.com%2Fb%2F%7Bid%7D");
/// assert_eq!(encode("100%"), "100%25");
/// ```
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Subscription {
    /// Its topic (and document `id`) in `version`'s shape, for `subscriber`, under the
    /// hub path `hub`.
    pub fn topic(&self, hub: &str, subscriber: &str, version: Version) -> String {
        let (selector, subscriber) = (encode(&self.selector), encode(subscriber));
        match version {
            Version::V0 => format!("{hub}/subscriptions/{selector}/{subscriber}"),
            Version::V1 => format!(
                "{hub}/subscriptions/{}/{selector}/{subscriber}",
                self.match_type.name()
            ),
        }
    }

    /// Its document in `version`'s shape.
    pub fn document(&self, hub: &str, subscriber: &str, version: Version, active: bool) -> Value {
        let mut doc = Map::new();
        doc.insert("@context".into(), CONTEXT.into());
        doc.insert("id".into(), self.topic(hub, subscriber, version).into());
        doc.insert("type".into(), "Subscription".into());
        self.selector_fields(version, &mut doc);
        doc.insert("subscriber".into(), subscriber.into());
        doc.insert("active".into(), active.into());
        if let Some(p) = &self.payload {
            doc.insert("payload".into(), payload_value(p));
        }
        Value::Object(doc)
    }

    /// The document of an event: `version`'s shape, with the other version's selector
    /// fields too, since the event is also sent on the other version's topic.
    pub fn event_document(
        &self,
        hub: &str,
        subscriber: &str,
        version: Version,
        active: bool,
    ) -> Value {
        let mut doc = self.document(hub, subscriber, version, active);
        if let Value::Object(map) = &mut doc {
            self.selector_fields(other(version), map);
        }
        doc
    }

    /// `topic`, or `match_type` and `match`.
    fn selector_fields(&self, version: Version, doc: &mut Map<String, Value>) {
        match version {
            Version::V0 => {
                doc.insert("topic".into(), (*self.selector).into());
            }
            Version::V1 => {
                doc.insert("match_type".into(), self.match_type.name().into());
                doc.insert("match".into(), (*self.selector).into());
            }
        }
    }
}

/// The other version.
pub fn other(version: Version) -> Version {
    match version {
        Version::V0 => Version::V1,
        Version::V1 => Version::V0,
    }
}

/// A payload's text as JSON (it was written from JSON by the token's parser).
fn payload_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Which subscriptions a list request asks for (the parts of its path after
/// `/subscriptions`, decoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this match type (1.0 paths).
    pub match_type: Option<MatchType>,
    /// Only this selector.
    pub selector: Option<String>,
    /// Only this subscriber.
    pub subscriber: Option<String>,
}

impl Filter {
    /// Whether `s` of `subscriber` is asked for.
    fn wants(&self, subscriber: &str, s: &Subscription) -> bool {
        self.match_type.is_none_or(|m| m == s.match_type)
            && self.selector.as_deref().is_none_or(|t| t == &*s.selector)
            && self.subscriber.as_deref().is_none_or(|id| id == subscriber)
    }
}

/// The list document: `id` (the path asked), `type` `Subscriptions`, the id of the
/// newest event (`earliest` when none), and the subscriptions, each in `version`'s
/// shape.
pub fn list_document(
    id: &str,
    version: Version,
    last_event_id: &str,
    subscriptions: Vec<Value>,
) -> Value {
    let last = match version {
        Version::V0 => "lastEventID",
        Version::V1 => "last_event_id",
    };
    json!({
        "@context": CONTEXT,
        "id": id,
        "type": "Subscriptions",
        last: last_event_id,
        "subscriptions": subscriptions,
    })
}

/// The one-subscription document: [`Subscription::document`] with the newest event's
/// id.
pub fn single_document(mut doc: Value, version: Version, last_event_id: &str) -> Value {
    let last = match version {
        Version::V0 => "lastEventID",
        Version::V1 => "last_event_id",
    };
    if let Value::Object(map) = &mut doc {
        map.insert(last.into(), last_event_id.into());
    }
    doc
}

/// The subscribers with a live stream on this node, each under a key. Bounded by the
/// streams the node holds (`--max-connections`), each entry by
/// [`MAX_TRACKED_SELECTORS`]. The lock is held only to insert, remove, or copy out the
/// entries' handles, never while rendering or writing.
#[derive(Debug, Default)]
pub struct Registry {
    /// The subscribers by key, and the next key.
    inner: Mutex<(HashMap<u64, Arc<Subscriber>>, u64)>,
}

impl Registry {
    /// Adds `subscriber`; its key, to remove it.
    pub fn insert(&self, subscriber: Arc<Subscriber>) -> u64 {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.1 += 1;
        let key = inner.1;
        inner.0.insert(key, subscriber);
        key
    }

    /// Removes the subscriber under `key`.
    pub fn remove(&self, key: u64) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .remove(&key);
    }

    /// How many subscribers it holds.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The subscriptions `filter` asks for, each as `(subscriber id, subscription)`,
    /// at most [`MAX_LISTED`], oldest subscriber first.
    pub fn select(&self, filter: &Filter) -> Vec<(Arc<str>, Subscription)> {
        let mut subscribers: Vec<(u64, Arc<Subscriber>)> = {
            let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner.0.iter().map(|(k, s)| (*k, s.clone())).collect()
        };
        subscribers.sort_unstable_by_key(|(k, _)| *k);
        subscribers
            .iter()
            .flat_map(|(_, s)| {
                s.subscriptions
                    .iter()
                    .filter(|x| filter.wants(&s.id, x))
                    .map(|x| (s.id.clone(), x.clone()))
            })
            .take(MAX_LISTED)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(match_type: MatchType, selector: &str, payload: Option<&str>) -> Subscription {
        Subscription {
            match_type,
            selector: selector.into(),
            payload: payload.map(Arc::from),
        }
    }

    #[test]
    fn ids_are_version_4_uuid_urns() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        let uuid = a.strip_prefix("urn:uuid:").unwrap();
        let parts: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert!(uuid.bytes().all(|c| c == b'-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn topics_encode_each_variable_once() {
        let s = sub(MatchType::UrlPattern, "https://e.com/:id", None);
        assert_eq!(
            s.topic("/.well-known/mercure", "urn:uuid:1", Version::V1),
            "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fe.com%2F%3Aid/urn%3Auuid%3A1"
        );
        let s = sub(MatchType::UriTemplate, "a/{id}%", None);
        assert_eq!(
            s.topic("/hub", "x y", Version::V0),
            "/hub/subscriptions/a%2F%7Bid%7D%25/x%20y"
        );
    }

    #[test]
    fn documents_have_each_versions_fields() {
        let s = sub(MatchType::Exact, "a", Some(r#"{"u":1}"#));
        assert_eq!(
            s.document("/h", "s", Version::V0, true),
            json!({"@context": CONTEXT, "id": "/h/subscriptions/a/s", "type": "Subscription",
                   "topic": "a", "subscriber": "s", "active": true, "payload": {"u": 1}})
        );
        let s = sub(MatchType::Exact, "a", None);
        assert_eq!(
            s.document("/h", "s", Version::V1, false),
            json!({"@context": CONTEXT, "id": "/h/subscriptions/exact/a/s", "type": "Subscription",
                   "match_type": "exact", "match": "a", "subscriber": "s", "active": false})
        );
        let e = s.event_document("/h", "s", Version::V1, true);
        assert_eq!(e["topic"], "a");
        assert_eq!(e["match_type"], "exact");
    }

    #[test]
    fn the_registry_lists_what_the_filter_asks_and_forgets_the_removed() {
        let r = Registry::default();
        let a = Arc::new(Subscriber::new(
            Version::V1,
            vec![
                sub(MatchType::Exact, "a", None),
                sub(MatchType::UrlPattern, "/b/:x", None),
            ],
        ));
        let b = Arc::new(Subscriber::new(
            Version::V0,
            vec![sub(MatchType::Exact, "a", None)],
        ));
        let ka = r.insert(a.clone());
        r.insert(b.clone());
        assert_eq!(r.select(&Filter::default()).len(), 3);
        let only_a = Filter {
            selector: Some("a".into()),
            ..Filter::default()
        };
        let ids: Vec<Arc<str>> = r.select(&only_a).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [a.id.clone(), b.id.clone()]);
        let pattern = Filter {
            match_type: Some(MatchType::UrlPattern),
            ..Filter::default()
        };
        assert_eq!(r.select(&pattern).len(), 1);
        r.remove(ka);
        assert_eq!(r.len(), 1);
        assert_eq!(r.select(&pattern).len(), 0);
    }

    #[test]
    fn a_subscriber_tracks_at_most_the_cap() {
        let many = (0..20)
            .map(|i| sub(MatchType::Exact, &i.to_string(), None))
            .collect();
        assert_eq!(
            Subscriber::new(Version::V0, many).subscriptions.len(),
            MAX_TRACKED_SELECTORS
        );
        assert_eq!(MatchType::named("urlpattern"), Some(MatchType::UrlPattern));
        assert_eq!(MatchType::named("URLPattern"), None);
    }
}
