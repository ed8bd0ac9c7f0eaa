//! Every byte of the handover's snapshot: the history, the listeners' routes and each
//! live stream's state, in one length-prefixed binary blob (the descriptors travel
//! beside it, see `transfer.rs`).
//!
//! Integers are little-endian; a text or a byte string is a `u32` length and its bytes;
//! an optional value is a `0`/`1` byte and the value. The blob opens with [`MAGIC`], so a
//! successor of another format refuses it instead of misreading it (and the old process
//! rolls back). A successor also reads the format before it ([`MAGIC_V1`]: streams
//! without their token's cap key or Mercure subscriber), so an upgrade from a release
//! that wrote it keeps every stream.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Selector, Selectors};
use crate::envelope::{Envelope, PublisherId};
use crate::event_id::EventId;
use crate::hub::HistoryState;
use crate::hub::history::Retained;
use crate::mercure::subscriptions::{
    MAX_TRACKED_SELECTORS, MatchType, Subscriber, Subscription, Version,
};
use crate::mercure::{Pattern, Syntax};
use crate::server::router::Scope;
use crate::sse::Frame;
use crate::topic::{Matching, Topic, Topics};

/// The first bytes of a snapshot, with the format's version.
pub(crate) const MAGIC: &[u8] = b"SSEHUB-HANDOVER/2\n";

/// The first bytes of the format before: a stream ends at its owed bytes.
pub(crate) const MAGIC_V1: &[u8] = b"SSEHUB-HANDOVER/1\n";

/// One live stream's state, without its socket.
#[derive(Debug, Clone)]
pub(crate) struct StreamState {
    /// Its topic filter.
    pub(crate) topics: Topics,
    /// Its token's rights (`None`: public events only).
    pub(crate) rights: Option<Arc<Selectors>>,
    /// Opened on the Mercure path (`false`: `/stream`).
    pub(crate) mercure: bool,
    /// It gets tagged frames (`?tagged=1`).
    pub(crate) tagged: bool,
    /// How long its token is still good (`None`: no expiry).
    pub(crate) ends_in: Option<Duration>,
    /// The `token-expiring` event not sent yet, and how long until it is due.
    pub(crate) notice: Option<(Duration, Frame)>,
    /// The bytes the socket is still owed: the rest of a frame written in part and
    /// every frame queued for it, in order.
    pub(crate) owed: Frame,
    /// The key its token's stream count is under (`--max-streams-per-token`): the
    /// token's `sub`, or a digest of the token, never the token.
    pub(crate) quota_key: Option<String>,
    /// Its listing among Mercure's active subscriptions (`--mercure-subscriptions`):
    /// the same subscriber id goes on in the successor, and is announced inactive
    /// when the stream ends there.
    pub(crate) subscriber: Option<Subscriber>,
}

/// What a successor rebuilds the server from.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// The in-memory history.
    pub(crate) history: HistoryState,
    /// The routes each listener serves, in descriptor order.
    pub(crate) listeners: Vec<Scope>,
    /// The live streams, in descriptor order after the listeners.
    pub(crate) streams: Vec<StreamState>,
    /// With a broker (`--redis`): the id of the last event the streams were handed (the
    /// history is the broker's, and the successor reads on from it).
    pub(crate) resume_after: Option<String>,
}

/// Why a snapshot could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed handover snapshot: {}", self.0)
    }
}

/// Encodes `snap`.
pub(crate) fn encode(snap: &Snapshot) -> Vec<u8> {
    let mut w = Vec::with_capacity(4096);
    w.extend_from_slice(MAGIC);
    put_u64(&mut w, snap.history.epoch);
    put_u64(&mut w, snap.history.base);
    put_u32(&mut w, snap.history.events.len() as u32);
    for e in &snap.history.events {
        put_event(&mut w, e);
    }
    put_u32(&mut w, snap.listeners.len() as u32);
    for s in &snap.listeners {
        w.push(matches!(s, Scope::Public) as u8);
    }
    put_opt_str(&mut w, snap.resume_after.as_deref());
    put_u32(&mut w, snap.streams.len() as u32);
    for s in &snap.streams {
        put_stream(&mut w, s);
    }
    w
}

/// Decodes a snapshot.
///
/// # Errors
///
/// [`Malformed`] when the bytes are not one whole snapshot of this format.
pub(crate) fn decode(bytes: &[u8]) -> Result<Snapshot, Malformed> {
    let mut r = Reader(bytes);
    let v1 = match r.take(MAGIC.len())? {
        m if m == MAGIC => false,
        m if m == MAGIC_V1 => true,
        _ => return Err(Malformed("not a handover snapshot of this version")),
    };
    let epoch = r.u64()?;
    let base = r.u64()?;
    let n = r.u32()?;
    let mut events = Vec::with_capacity((n as usize).min(1 << 16));
    for next in (base + 1..).take(n as usize) {
        let e = r.event(epoch)?;
        if e.id.offset != next {
            return Err(Malformed("history offsets are not dense"));
        }
        events.push(e);
    }
    let n = r.u32()?;
    let mut listeners = Vec::with_capacity((n as usize).min(64));
    for _ in 0..n {
        listeners.push(match r.u8()? {
            0 => Scope::All,
            1 => Scope::Public,
            _ => return Err(Malformed("unknown listener scope")),
        });
    }
    let resume_after = if r.flag()? {
        Some(r.text()?.to_owned())
    } else {
        None
    };
    let n = r.u32()?;
    let mut streams = Vec::with_capacity((n as usize).min(1 << 16));
    for _ in 0..n {
        streams.push(r.stream(v1)?);
    }
    if !r.0.is_empty() {
        return Err(Malformed("bytes after the last stream"));
    }
    Ok(Snapshot {
        history: HistoryState {
            epoch,
            base,
            events,
        },
        listeners,
        streams,
        resume_after,
    })
}

fn put_u32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    put_u32(w, b.len() as u32);
    w.extend_from_slice(b);
}

fn put_opt_str(w: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            w.push(1);
            put_bytes(w, s.as_bytes());
        }
        None => w.push(0),
    }
}

fn put_pattern(w: &mut Vec<u8>, p: &Pattern) {
    w.push(match p.syntax() {
        Syntax::UriTemplate => 0,
        Syntax::UrlPattern => 1,
    });
    put_bytes(w, p.source().as_bytes());
}

fn put_event(w: &mut Vec<u8>, e: &Retained) {
    put_u64(w, e.id.offset);
    let env = &e.envelope;
    put_u32(w, env.topics().len() as u32);
    for t in env.topics() {
        put_bytes(w, t.as_str().as_bytes());
    }
    w.push(env.is_private() as u8);
    put_opt_str(w, env.id().map(PublisherId::as_str));
    put_opt_str(w, env.key().map(PublisherId::as_str));
    put_bytes(w, e.frame.as_bytes());
}

fn put_topics(w: &mut Vec<u8>, topics: &Topics) {
    match topics {
        Topics::All => w.push(0),
        Topics::Only(list) => {
            w.push(1);
            put_u32(w, list.len() as u32);
            for t in list.iter() {
                put_bytes(w, t.as_str().as_bytes());
            }
        }
        Topics::Matching(m) => {
            w.push(2);
            let (names, patterns) = m.parts();
            put_u32(w, names.len() as u32);
            for t in names {
                put_bytes(w, t.as_str().as_bytes());
            }
            put_u32(w, patterns.len() as u32);
            for p in patterns {
                put_pattern(w, p);
            }
        }
    }
}

fn put_selector(w: &mut Vec<u8>, s: &Selector) {
    match s {
        Selector::Any => w.push(0),
        Selector::Exact(t) => {
            w.push(1);
            put_bytes(w, t.as_bytes());
        }
        Selector::Prefix(t) => {
            w.push(2);
            put_bytes(w, t.as_bytes());
        }
        Selector::Template(p) => {
            w.push(3);
            put_pattern(w, p);
        }
        Selector::Literal(t) => {
            w.push(4);
            put_bytes(w, t.as_bytes());
        }
    }
}

fn put_duration(w: &mut Vec<u8>, d: Duration) {
    put_u64(w, d.as_millis().min(u64::MAX as u128) as u64);
}

fn put_stream(w: &mut Vec<u8>, s: &StreamState) {
    w.push(s.mercure as u8);
    w.push(s.tagged as u8);
    put_topics(w, &s.topics);
    match &s.rights {
        Some(r) => {
            w.push(1);
            put_u32(w, r.as_slice().len() as u32);
            for sel in r.as_slice() {
                put_selector(w, sel);
            }
        }
        None => w.push(0),
    }
    match s.ends_in {
        Some(d) => {
            w.push(1);
            put_duration(w, d);
        }
        None => w.push(0),
    }
    match &s.notice {
        Some((d, frame)) => {
            w.push(1);
            put_duration(w, *d);
            put_bytes(w, frame.as_bytes());
        }
        None => w.push(0),
    }
    put_bytes(w, s.owed.as_bytes());
    put_opt_str(w, s.quota_key.as_deref());
    match &s.subscriber {
        Some(sub) => {
            w.push(1);
            put_subscriber(w, sub);
        }
        None => w.push(0),
    }
}

fn put_subscriber(w: &mut Vec<u8>, sub: &Subscriber) {
    put_bytes(w, sub.id.as_bytes());
    w.push(match sub.version {
        Version::V0 => 0,
        Version::V1 => 1,
    });
    put_u32(w, sub.subscriptions.len() as u32);
    for s in &sub.subscriptions {
        w.push(match s.match_type {
            MatchType::Exact => 0,
            MatchType::UrlPattern => 1,
            MatchType::UriTemplate => 2,
        });
        put_bytes(w, s.selector.as_bytes());
        put_opt_str(w, s.payload.as_deref());
    }
}

/// The unread rest of a snapshot.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed("cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn text(&mut self) -> Result<&'a str, Malformed> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Malformed("text is not UTF-8"))
    }

    fn flag(&mut self) -> Result<bool, Malformed> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Malformed("a flag is neither 0 nor 1")),
        }
    }

    fn topic(&mut self) -> Result<Topic, Malformed> {
        Topic::new(self.text()?).map_err(|_| Malformed("a topic is not valid"))
    }

    fn publisher_id(&mut self) -> Result<Option<PublisherId>, Malformed> {
        if !self.flag()? {
            return Ok(None);
        }
        PublisherId::new(self.text()?)
            .map(Some)
            .map_err(|_| Malformed("a publisher id or key is not valid"))
    }

    fn pattern(&mut self) -> Result<Pattern, Malformed> {
        let syntax = match self.u8()? {
            0 => Syntax::UriTemplate,
            1 => Syntax::UrlPattern,
            _ => return Err(Malformed("unknown pattern syntax")),
        };
        Pattern::new(self.text()?, syntax).map_err(|_| Malformed("a pattern is not valid"))
    }

    fn duration(&mut self) -> Result<Duration, Malformed> {
        Ok(Duration::from_millis(self.u64()?))
    }

    fn event(&mut self, epoch: u64) -> Result<Retained, Malformed> {
        let offset = self.u64()?;
        let n = self.u32()?;
        let mut topics = Vec::with_capacity((n as usize).min(16));
        for _ in 0..n {
            topics.push(self.topic()?);
        }
        let mut envelope = Envelope::new(topics)
            .map_err(|_| Malformed("an event's topics are not valid"))?
            .with_private(self.flag()?);
        if let Some(id) = self.publisher_id()? {
            envelope = envelope.with_id(id);
        }
        if let Some(key) = self.publisher_id()? {
            envelope = envelope.with_key(key);
        }
        let frame = Frame::from_encoded(self.bytes()?.to_vec());
        Ok(Retained {
            id: EventId::new(epoch, offset),
            envelope,
            frame,
        })
    }

    fn topics(&mut self) -> Result<Topics, Malformed> {
        match self.u8()? {
            0 => Ok(Topics::All),
            1 => {
                let n = self.u32()?;
                let mut list = Vec::with_capacity((n as usize).min(64));
                for _ in 0..n {
                    list.push(self.topic()?);
                }
                Ok(Topics::Only(list.into()))
            }
            2 => {
                let n = self.u32()?;
                let mut names = Vec::with_capacity((n as usize).min(64));
                for _ in 0..n {
                    names.push(self.topic()?);
                }
                let n = self.u32()?;
                let mut patterns = Vec::with_capacity((n as usize).min(64));
                for _ in 0..n {
                    patterns.push(self.pattern()?);
                }
                let m = Matching::new(names, patterns)
                    .map_err(|_| Malformed("a topic filter is not valid"))?;
                Ok(Topics::Matching(Arc::new(m)))
            }
            _ => Err(Malformed("unknown topic filter")),
        }
    }

    fn selector(&mut self) -> Result<Selector, Malformed> {
        Ok(match self.u8()? {
            0 => Selector::Any,
            1 => Selector::Exact(self.text()?.into()),
            2 => Selector::Prefix(self.text()?.into()),
            3 => Selector::Template(Box::new(self.pattern()?)),
            4 => Selector::Literal(self.text()?.into()),
            _ => return Err(Malformed("unknown selector")),
        })
    }

    fn opt_text(&mut self) -> Result<Option<&'a str>, Malformed> {
        if self.flag()? {
            Ok(Some(self.text()?))
        } else {
            Ok(None)
        }
    }

    fn subscriber(&mut self) -> Result<Subscriber, Malformed> {
        let id = self.text()?;
        if !id.starts_with("urn:uuid:") {
            return Err(Malformed("a subscriber id is not a urn:uuid"));
        }
        let version = match self.u8()? {
            0 => Version::V0,
            1 => Version::V1,
            _ => return Err(Malformed("unknown Mercure version")),
        };
        let n = self.u32()? as usize;
        if n > MAX_TRACKED_SELECTORS {
            return Err(Malformed("a subscriber has too many subscriptions"));
        }
        let mut subscriptions = Vec::with_capacity(n);
        for _ in 0..n {
            let match_type = match self.u8()? {
                0 => MatchType::Exact,
                1 => MatchType::UrlPattern,
                2 => MatchType::UriTemplate,
                _ => return Err(Malformed("unknown match type")),
            };
            subscriptions.push(Subscription {
                match_type,
                selector: self.text()?.into(),
                payload: self.opt_text()?.map(Into::into),
            });
        }
        Ok(Subscriber {
            id: id.into(),
            version,
            subscriptions,
        })
    }

    fn stream(&mut self, v1: bool) -> Result<StreamState, Malformed> {
        let mercure = self.flag()?;
        let tagged = self.flag()?;
        let topics = self.topics()?;
        let rights = if self.flag()? {
            let n = self.u32()?;
            let mut list = Vec::with_capacity((n as usize).min(64));
            for _ in 0..n {
                list.push(self.selector()?);
            }
            Some(Arc::new(list.into_iter().collect()))
        } else {
            None
        };
        let ends_in = if self.flag()? {
            Some(self.duration()?)
        } else {
            None
        };
        let notice = if self.flag()? {
            let d = self.duration()?;
            Some((d, Frame::from_encoded(self.bytes()?.to_vec())))
        } else {
            None
        };
        let owed = Frame::from_encoded(self.bytes()?.to_vec());
        let (quota_key, subscriber) = if v1 {
            (None, None)
        } else {
            let key = self.opt_text()?.map(str::to_owned);
            let sub = if self.flag()? {
                Some(self.subscriber()?)
            } else {
                None
            };
            (key, sub)
        };
        Ok(StreamState {
            topics,
            rights,
            mercure,
            tagged,
            ends_in,
            notice,
            owed,
            quota_key,
            subscriber,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Topic {
        Topic::new(s).unwrap()
    }

    fn sample() -> Snapshot {
        let env = Envelope::new(vec![t("a"), t("b")])
            .unwrap()
            .with_private(true)
            .with_id(PublisherId::new("mine").unwrap());
        let event = crate::sse::Event::new("x\ny").unwrap();
        let events = vec![
            Retained::encode(EventId::new(7, 3), env, &event),
            Retained::encode(EventId::new(7, 4), Envelope::on(t("c")), &event),
        ];
        let matching = Matching::new(
            vec![t("n")],
            vec![Pattern::new("https://e.com/{id}", Syntax::UriTemplate).unwrap()],
        )
        .unwrap();
        Snapshot {
            history: HistoryState {
                epoch: 7,
                base: 2,
                events,
            },
            listeners: vec![Scope::All, Scope::Public],
            streams: vec![
                StreamState {
                    topics: Topics::Only([t("a")].into()),
                    rights: Some(Arc::new(Selectors::new(["orders/*", "*", "x"]))),
                    mercure: false,
                    tagged: true,
                    ends_in: Some(Duration::from_millis(1500)),
                    notice: Some((Duration::from_millis(500), Frame::comment("n").unwrap())),
                    owed: Frame::from_encoded(b"a: 1\n\nid: 2\n".to_vec()),
                    quota_key: Some("sub:alice".to_owned()),
                    subscriber: None,
                },
                StreamState {
                    topics: Topics::Matching(Arc::new(matching)),
                    rights: None,
                    mercure: true,
                    tagged: false,
                    ends_in: None,
                    notice: None,
                    owed: Frame::from_encoded(Vec::new()),
                    quota_key: None,
                    subscriber: Some(Subscriber {
                        id: "urn:uuid:5f0c6d1e-8c1a-4a43-9c41-0d1b0a7e9f11".into(),
                        version: Version::V1,
                        subscriptions: vec![
                            Subscription {
                                match_type: MatchType::UriTemplate,
                                selector: "https://e.com/{id}".into(),
                                payload: Some(r#"{"u":1}"#.into()),
                            },
                            Subscription {
                                match_type: MatchType::Exact,
                                selector: "*".into(),
                                payload: None,
                            },
                        ],
                    }),
                },
            ],
            resume_after: Some("1796627756772-7".to_owned()),
        }
    }

    #[test]
    fn a_snapshot_survives_its_round_trip() {
        let snap = sample();
        let back = decode(&encode(&snap)).unwrap();
        assert_eq!(back.history.epoch, 7);
        assert_eq!(back.history.base, 2);
        let ids: Vec<_> = back.history.events.iter().map(|e| e.id).collect();
        assert_eq!(ids, [EventId::new(7, 3), EventId::new(7, 4)]);
        let (a, b) = (&back.history.events[0], &snap.history.events[0]);
        assert_eq!(a.envelope, b.envelope);
        assert_eq!(a.frame.as_bytes(), b.frame.as_bytes());
        assert_eq!(back.listeners, snap.listeners);
        assert_eq!(back.resume_after, snap.resume_after);
        assert_eq!(back.streams.len(), 2);
        for (x, y) in back.streams.iter().zip(&snap.streams) {
            assert_eq!(x.topics, y.topics);
            assert_eq!(x.rights, y.rights);
            assert_eq!((x.mercure, x.tagged), (y.mercure, y.tagged));
            assert_eq!(x.ends_in, y.ends_in);
            assert_eq!(x.owed.as_bytes(), y.owed.as_bytes());
            assert_eq!(x.quota_key, y.quota_key);
            assert_eq!(x.subscriber, y.subscriber);
            assert_eq!(
                x.notice.as_ref().map(|n| (n.0, n.1.as_bytes().to_vec())),
                y.notice.as_ref().map(|n| (n.0, n.1.as_bytes().to_vec()))
            );
        }
    }

    /// The format before (`/1`): what a stream's state ended at, then no cap key and
    /// no subscriber. A successor reads it, so an upgrade from it keeps every stream.
    #[test]
    fn the_format_before_is_still_read() {
        let mut snap = sample();
        for s in &mut snap.streams {
            s.quota_key = None;
            s.subscriber = None;
        }
        let now = encode(&snap);
        // A v1 snapshot is today's with the magic of then and each stream's last two
        // bytes (two `0` flags) cut: rebuild it stream by stream.
        let mut v1 = MAGIC_V1.to_vec();
        let mut w = now[MAGIC.len()..].to_vec();
        let streams_at = {
            let mut tail = Vec::new();
            put_u32(&mut tail, snap.streams.len() as u32);
            for s in &snap.streams {
                put_stream(&mut tail, s);
            }
            w.len() - tail.len()
        };
        w.truncate(streams_at);
        put_u32(&mut w, snap.streams.len() as u32);
        for s in &snap.streams {
            let mut one = Vec::new();
            put_stream(&mut one, s);
            one.truncate(one.len() - 2);
            w.extend_from_slice(&one);
        }
        v1.extend_from_slice(&w);
        let back = decode(&v1).unwrap();
        assert_eq!(back.streams.len(), 2);
        for (x, y) in back.streams.iter().zip(&snap.streams) {
            assert_eq!(x.topics, y.topics);
            assert_eq!(x.owed.as_bytes(), y.owed.as_bytes());
            assert_eq!((x.quota_key.as_ref(), x.subscriber.as_ref()), (None, None));
        }
        assert!(decode(&v1[..v1.len() - 1]).is_err(), "cut");
    }

    #[test]
    fn a_cut_or_foreign_snapshot_is_refused() {
        let bytes = encode(&sample());
        for cut in [0, 5, MAGIC.len() + 3, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut other = bytes.clone();
        other[MAGIC.len() - 2] = b'9';
        assert_eq!(
            decode(&other).unwrap_err(),
            Malformed("not a handover snapshot of this version")
        );
        let mut long = bytes;
        long.push(0);
        assert!(decode(&long).is_err());
    }
}
