//! Mercure's active subscriptions on the hub path (`--mercure-subscriptions`, off by
//! default as in Mercure): the list under `{hub}/subscriptions`, and a private event each
//! time a subscriber comes or goes.
//!
//! - **Events**: when a stream opens on the hub path, and when it ends, each of its
//!   tracked selectors (the first [`MAX_TRACKED_SELECTORS`]) gives one private update
//!   whose topic is the subscription's in its own version's shape, with the other
//!   version's shape as an alternate topic, and whose data is the subscription's
//!   document (`active: true`, then `false`; see `mercure/subscriptions.rs`). So a
//!   connect costs at most 8 events, and a disconnect 8 more. They go through the one
//!   port (`Port::publish`): with Redis every node delivers them, in the one order.
//! - **Never blocking a connect**: the events wait in one bounded queue
//!   ([`EVENT_QUEUE`]) that one task empties into the port. When it is full (the port
//!   is slower than subscribers come and go), an event is dropped and counted
//!   (`mercure.subscription_events.dropped`); the subscriber is served as ever. An
//!   event whose topic would pass the topic cap (a selector of hundreds of bytes,
//!   encoded) is dropped and counted the same way.
//! - **The list** is this node's subscribers (each node lists the streams it holds),
//!   bounded by its streams and [`MAX_LISTED`](subs::MAX_LISTED). A reader needs a token whose subscribe
//!   selectors, read by Mercure's rules, cover the path asked (as a topic): no token is
//!   `401`, one that does not cover it `403 insufficient_scope`, as Mercure answers. The
//!   version is the token's: an `at+jwt` access token reads 1.0's shape and paths
//!   (`/subscriptions/{match_type}/{match}[/{subscriber}]`), a 0.x token 0.x's
//!   (`/subscriptions/{topic}[/{subscriber}]`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use async_channel::{Receiver, Sender, TrySendError};

use super::Ctx;
use super::access;
use super::request::Request;
use crate::auth::Payload;
use crate::envelope::Envelope;
use crate::http::response::Response;
use crate::http::target::percent_decode;
use crate::mercure::Syntax;
use crate::mercure::query::Selector;
use crate::mercure::subscriptions::{
    self as subs, Filter, MAX_TRACKED_SELECTORS, MatchType, Registry, Subscriber, Subscription,
    Version,
};
use crate::port::Port;
use crate::sse::Event;
use crate::topic::Topic;

/// Subscription events waiting for the port. **Unit:** events. **Why:** 1,024 holds the
/// events of 64 subscribers connecting at once with every tracked selector, or of
/// 1,024 one-selector subscribers; past it a storm sheds its own events, not the
/// publishers' throughput. About 1 KB each: at most about 1 MB waits.
pub const EVENT_QUEUE: usize = 1024;

/// The content type of the list's answers (JSON-LD, as Mercure answers).
const CONTENT_TYPE: &str = "application/ld+json";

/// The active subscriptions of this node, and the queue of their events.
#[derive(Debug)]
pub(crate) struct Tracker {
    /// The hub path (`--mercure-path`), the start of every topic.
    hub: String,
    registry: Registry,
    queue: Sender<(Envelope, Event)>,
    /// Taken once by [`run`].
    waiting: Receiver<(Envelope, Event)>,
    /// Events put in the queue.
    pub(crate) queued: AtomicU64,
    /// Events dropped: the queue was full, or the topic too long.
    pub(crate) dropped: AtomicU64,
    /// Events the port published.
    pub(crate) published: AtomicU64,
    /// Events the port refused (Redis down, the history file failing).
    pub(crate) failed: AtomicU64,
}

impl Tracker {
    /// A tracker for the hub at `hub`.
    pub(crate) fn new(hub: &str) -> Tracker {
        let (queue, waiting) = async_channel::bounded(EVENT_QUEUE);
        Tracker {
            hub: hub.to_owned(),
            registry: Registry::default(),
            queue,
            waiting,
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            published: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// Subscribers listed now.
    pub(crate) fn subscribers(&self) -> usize {
        self.registry.len()
    }

    /// Queues the events saying that each of `subscriber`'s subscriptions is `active`
    /// or no longer; never waits.
    fn announce(&self, subscriber: &Subscriber, active: bool) {
        for s in &subscriber.subscriptions {
            match self.event(subscriber, s, active) {
                Some(event) => match self.queue.try_send(event) {
                    Ok(()) => self.queued.fetch_add(1, Relaxed),
                    Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                        self.dropped.fetch_add(1, Relaxed)
                    }
                },
                None => self.dropped.fetch_add(1, Relaxed),
            };
        }
    }

    /// The private update for `s`: its topic in the subscriber's version, the other
    /// version's as an alternate; `None` when a topic would be too long.
    fn event(
        &self,
        subscriber: &Subscriber,
        s: &Subscription,
        active: bool,
    ) -> Option<(Envelope, Event)> {
        let version = subscriber.version;
        let topics = [version, subs::other(version)]
            .map(|v| Topic::new(&s.topic(&self.hub, &subscriber.id, v)).ok());
        let [Some(own), Some(alternate)] = topics else {
            return None;
        };
        let envelope = Envelope::new(vec![own, alternate]).ok()?.with_private(true);
        let doc = s.event_document(&self.hub, &subscriber.id, version, active);
        let event = Event::new(doc.to_string()).ok()?;
        Some((envelope, event))
    }
}

/// Publishes the queued subscription events through `port` until the queue closes or
/// the task is dropped (at shutdown): one at a time, so the port sees them in order.
pub(crate) async fn run(tracker: Arc<Tracker>, port: Port) {
    while let Ok((envelope, event)) = tracker.waiting.recv().await {
        match port.publish(envelope, event).await {
            Ok(_) => tracker.published.fetch_add(1, Relaxed),
            Err(_) => tracker.failed.fetch_add(1, Relaxed),
        };
    }
}

/// A subscriber about to be served on the hub path: what will be listed and announced
/// once its stream is open.
#[derive(Debug)]
pub(super) struct Pending {
    tracker: Arc<Tracker>,
    subscriber: Subscriber,
}

/// A subscriber listed and announced: when dropped (its stream ended), it is unlisted
/// and its subscriptions announced inactive.
#[derive(Debug)]
pub(super) struct Registration {
    tracker: Arc<Tracker>,
    key: u64,
    subscriber: Arc<Subscriber>,
}

impl Pending {
    /// What a subscribe request on the hub path will track, when the feature is on:
    /// its first [`MAX_TRACKED_SELECTORS`] selectors, in the version of the parameters
    /// (`topic` is 0.x, `match*` 1.0), each with its payload from the token.
    pub(super) fn of(
        ctx: &Ctx,
        version: Version,
        selectors: &[Selector],
        payloads: &[Payload],
    ) -> Option<Pending> {
        let tracker = ctx.subscriptions.clone()?;
        let subscriptions = selectors
            .iter()
            .take(MAX_TRACKED_SELECTORS)
            .map(|s| {
                let (match_type, text) = match s {
                    Selector::All => (MatchType::Exact, "*"),
                    Selector::Exact(name) => (MatchType::Exact, name.as_str()),
                    Selector::Pattern(p) => match p.syntax() {
                        Syntax::UrlPattern => (MatchType::UrlPattern, p.source()),
                        Syntax::UriTemplate => (MatchType::UriTemplate, p.source()),
                    },
                };
                Subscription {
                    match_type,
                    selector: text.into(),
                    payload: Payload::first_for(payloads, text),
                }
            })
            .collect();
        Some(Pending {
            tracker,
            subscriber: Subscriber::new(version, subscriptions),
        })
    }

    /// Lists the subscriber and announces its subscriptions.
    pub(super) fn register(self) -> Registration {
        let subscriber = Arc::new(self.subscriber);
        let key = self.tracker.registry.insert(subscriber.clone());
        self.tracker.announce(&subscriber, true);
        Registration {
            tracker: self.tracker,
            key,
            subscriber,
        }
    }
}

impl Registration {
    /// The subscriber listed (its id, version and subscriptions): what a handover
    /// carries to the successor.
    pub(super) fn subscriber(&self) -> &Subscriber {
        &self.subscriber
    }

    /// Lists a subscriber a predecessor listed and announced (a handed stream), without
    /// announcing it again; it is announced inactive when its stream ends here.
    pub(super) fn adopt(tracker: Arc<Tracker>, subscriber: Subscriber) -> Registration {
        let subscriber = Arc::new(subscriber);
        let key = tracker.registry.insert(subscriber.clone());
        Registration {
            tracker,
            key,
            subscriber,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.tracker.registry.remove(self.key);
        self.tracker.announce(&self.subscriber, false);
    }
}

/// Refuses (`403`) a publish on a topic of the subscription events, `{hub}/subscriptions`
/// or below, when the feature is on: those are the hub's own, and no publisher may forge
/// one, whatever its rights (Mercure's rule for its reserved namespace). A topic is read
/// by its path: an absolute IRI's after its authority, without query or fragment.
pub(super) fn refuse_reserved<'t>(
    ctx: &Ctx,
    topics: impl IntoIterator<Item = &'t Topic>,
) -> Result<(), Response> {
    let Some(tracker) = &ctx.subscriptions else {
        return Ok(());
    };
    let reserved = format!("{}/subscriptions", tracker.hub);
    let forged = topics.into_iter().any(|t| {
        let path = topic_path(t.as_str());
        path.strip_prefix(reserved.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    if forged {
        return Err(Response::text(
            403,
            &format!("topics under {reserved} are the hub's own subscription events"),
        ));
    }
    Ok(())
}

/// The path of a topic: after `scheme://authority` when it has them, up to a `?` or `#`.
fn topic_path(topic: &str) -> &str {
    let path = match topic.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => topic,
    };
    path.split(['?', '#']).next().unwrap_or_default()
}

/// Whether `path` is the list's (`{hub}/subscriptions` or below) on this server.
pub(super) fn serves(ctx: &Ctx, path: &str) -> bool {
    let (Some(_), Some(hub)) = (&ctx.subscriptions, &ctx.config.mercure_path) else {
        return false;
    };
    path.strip_prefix(hub.as_str())
        .and_then(|rest| rest.strip_prefix("/subscriptions"))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `GET {hub}/subscriptions[...]`: the token, the path, the rights, then the document.
pub(super) fn list(ctx: &Ctx, req: &Request) -> Response {
    match answer(ctx, req) {
        Ok(resp) | Err(resp) => resp,
    }
}

/// The list's answer, or its refusal.
fn answer(ctx: &Ctx, req: &Request) -> Result<Response, Response> {
    let (Some(tracker), Some(key)) = (&ctx.subscriptions, ctx.config.subscriber_key()) else {
        return Err(access::unauthorized(
            None,
            "the subscriptions API needs a token, and this hub reads none (no --jwt-key or --jwt-subscriber-key)",
        ));
    };
    let claims = access::with_token(ctx, req, |found| {
        let Some((source, token)) = found else {
            ctx.stats.auth_failed(crate::stats::AuthFailure::Missing);
            return Err(access::unauthorized(
                None,
                "the subscriptions API needs a token whose subscribe selectors cover this path",
            ));
        };
        access::refuse_query_access_token(source, token)?;
        access::verified(ctx, token, key)
    })?;
    let version = if claims.access_token {
        Version::V1
    } else {
        Version::V0
    };
    let rest = &req.path[tracker.hub.len() + "/subscriptions".len()..];
    let (filter, single) = filter(version, rest)?;
    let topic = Topic::new(&req.path).map_err(|e| Response::text(400, &e.to_string()))?;
    if !claims.subscribe.mercure().matches(&topic) {
        return Err(access::insufficient_scope(
            "the token's subscribe selectors do not cover this subscriptions path",
        ));
    }
    let last = ctx.hub.last_id().map_or_else(
        || crate::mercure::query::EARLIEST.to_owned(),
        |id| id.to_string(),
    );
    let hub = &tracker.hub;
    let found = tracker.registry.select(&filter);
    let doc = if single {
        let Some((id, s)) = found.first() else {
            return Err(Response::text(404, "no such subscription on this node"));
        };
        subs::single_document(s.document(hub, id, version, true), version, &last)
    } else {
        let docs = found
            .iter()
            .map(|(id, s)| s.document(hub, id, version, true))
            .collect();
        subs::list_document(&req.path, version, &last, docs)
    };
    Ok(
        Response::with_body(200, CONTENT_TYPE, doc.to_string().into_bytes())
            .header("Cache-Control", "no-cache"),
    )
}

/// The filter a list path asks for (after `/subscriptions`, still encoded), and whether
/// it names one subscription; or the `404` (no such path in `version`) or `400`.
fn filter(version: Version, rest: &str) -> Result<(Filter, bool), Response> {
    let not_found = || Response::text(404, "no such subscriptions path");
    let segments: Vec<String> = match rest.strip_prefix('/') {
        None => Vec::new(),
        Some(rest) => rest
            .split('/')
            .map(|s| percent_decode(s).into_owned())
            .collect(),
    };
    if segments.iter().any(String::is_empty) {
        return Err(not_found());
    }
    let mut s = segments.into_iter();
    let filter = match (version, s.len()) {
        (_, 0) => Filter::default(),
        (Version::V0, 1 | 2) => Filter {
            match_type: None,
            selector: s.next(),
            subscriber: s.next(),
        },
        (Version::V1, 2 | 3) => {
            let name = s.next().unwrap_or_default();
            let Some(match_type) = MatchType::named(&name) else {
                return Err(Response::text(
                    400,
                    "unknown match_type: use exact, urlpattern or uritemplate",
                ));
            };
            Filter {
                match_type: Some(match_type),
                selector: s.next(),
                subscriber: s.next(),
            }
        }
        _ => return Err(not_found()),
    };
    let single = filter.subscriber.is_some();
    Ok((filter, single))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(selector: &str, n: usize) -> Subscriber {
        let s = Subscription {
            match_type: MatchType::Exact,
            selector: selector.into(),
            payload: None,
        };
        Subscriber::new(Version::V0, vec![s; n])
    }

    #[test]
    fn a_full_queue_drops_and_counts_never_waits() {
        let t = Tracker::new("/hub");
        let s = subscriber("a", MAX_TRACKED_SELECTORS);
        let rounds = EVENT_QUEUE / MAX_TRACKED_SELECTORS + 1;
        for _ in 0..rounds {
            t.announce(&s, true);
        }
        assert_eq!(t.queued.load(Relaxed), EVENT_QUEUE as u64);
        assert_eq!(
            t.dropped.load(Relaxed),
            (rounds * MAX_TRACKED_SELECTORS - EVENT_QUEUE) as u64
        );
        assert_eq!(t.waiting.len(), EVENT_QUEUE);
    }

    #[test]
    fn an_event_is_private_on_both_versions_topics_or_dropped_when_too_long() {
        let t = Tracker::new("/hub");
        let s = subscriber("https://e.com/a", 1);
        let (envelope, event) = t.event(&s, &s.subscriptions[0], false).unwrap();
        assert!(envelope.is_private());
        let topics: Vec<&str> = envelope.topics().iter().map(|t| t.as_str()).collect();
        assert_eq!(
            topics,
            [
                s.subscriptions[0].topic("/hub", &s.id, Version::V0),
                s.subscriptions[0].topic("/hub", &s.id, Version::V1),
            ]
        );
        let doc: serde_json::Value = serde_json::from_str(event.data()).unwrap();
        assert_eq!(doc["active"], false);
        // 700 bytes encoded three times over pass the topic cap: dropped, counted.
        let long = subscriber(&"é".repeat(350), 1);
        assert!(t.event(&long, &long.subscriptions[0], true).is_none());
        t.announce(&long, true);
        assert_eq!(t.dropped.load(Relaxed), 1);
    }

    #[test]
    fn a_topics_path_is_read_past_its_authority() {
        assert_eq!(
            topic_path("https://e.com/.well-known/mercure/subscriptions/a?x#y"),
            "/.well-known/mercure/subscriptions/a"
        );
        assert_eq!(topic_path("/h/subscriptions"), "/h/subscriptions");
        assert_eq!(topic_path("https://e.com"), "");
        assert_eq!(topic_path("urn:x:y"), "urn:x:y");
    }

    #[test]
    fn list_paths_by_version() {
        let f = |v, rest| filter(v, rest).map_err(|r| r.status);
        assert_eq!(f(Version::V0, ""), Ok((Filter::default(), false)));
        assert_eq!(
            f(Version::V0, "/a%2Fb/urn%3Ax"),
            Ok((
                Filter {
                    match_type: None,
                    selector: Some("a/b".into()),
                    subscriber: Some("urn:x".into()),
                },
                true
            ))
        );
        assert_eq!(f(Version::V0, "/a/b/c"), Err(404));
        assert_eq!(f(Version::V0, "/"), Err(404));
        assert_eq!(f(Version::V1, "/a"), Err(404));
        assert_eq!(f(Version::V1, "/regexp/a"), Err(400));
        assert_eq!(
            f(Version::V1, "/urlpattern/%2Fb%2F%3Aid"),
            Ok((
                Filter {
                    match_type: Some(MatchType::UrlPattern),
                    selector: Some("/b/:id".into()),
                    subscriber: None,
                },
                false
            ))
        );
        assert!(matches!(f(Version::V1, "/exact/a/s"), Ok((_, true))));
        assert_eq!(f(Version::V1, "/exact/a/s/x"), Err(404));
    }
}
