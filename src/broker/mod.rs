//! Several nodes on one Redis stream: every node delivers every event, in one order.
//!
//! ```text
//!  publisher ─▶ node A ─ XADD ─▶ Redis stream (MAXLEN ~ N, one global order)
//!                                   │ XREAD BLOCK from each node's own cursor
//!                  ┌────────────────┼────────────────┐
//!                node A           node B           node C   (each: encode once, fan out)
//! ```
//!
//! - **Publishing** (`POST /publish`, the producers) is `XADD key MAXLEN ~ N * topic T
//!   data D [event E] [retry R]` on the writer connection; the id Redis returns is the
//!   event's id on every node, and the publisher's answer is sent only once Redis has
//!   accepted the entry. Nothing is queued in memory: while Redis is unreachable a
//!   publish fails at once (`503` with `Retry-After`).
//! - **Reading** (`reader.rs`): one connection per node loops `XREAD COUNT n BLOCK ms`
//!   from the node's own cursor (never `$`, which would skip what arrives between two
//!   calls), with `XRANGE key cursor cursor` pipelined after it: when the cursor's entry
//!   is gone (trimmed, flushed, or Redis restarted without persistence) entries may be
//!   lost, and the node's subscribers get a `lost` reset. (The check comes after the
//!   read, not before as first designed: a trim landing while the read blocks would
//!   otherwise lose entries silently; see `redis/stream.rs`.) Each entry is delivered to the hub
//!   ([`Hub::deliver`]), which encodes it once. A node delivers its own publishes when
//!   its reader sees them, so every node delivers in the stream's order.
//! - **Replay on any node**: at start the node loads the stream's tail into its history;
//!   an id older than the history is looked up in Redis (`XRANGE key id + COUNT n`),
//!   and the client continues only if Redis still has that very entry.
//! - **Outages** are loud and temporary: `/health` and publishing answer `503` with the
//!   reason, `/metrics` shows the broker's state, and both connections reconnect with
//!   exponential backoff and full jitter ([`backoff`]), the reader from its cursor.

mod reader;

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::config::RedisConfig;
use crate::event_id::EventId;
use crate::hub::Hub;
use crate::log::Log;
use crate::redis::stream::{self, Entry};
use crate::redis::{Connection, ErrorKind, RedisError};
use crate::sse::Event;
use crate::topic::Topic;

/// Why a private event is refused on a node with `--redis` (`501`): the stream's entries
/// carry no visibility yet, so every node would deliver it to every subscriber.
pub const NO_PRIVATE_EVENTS: &str =
    "private events cannot go through --redis yet (every node would deliver them to everyone)";

/// How long connecting and logging in may take. **Unit:** seconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one command (other than the reader's blocking read) may take. **Unit:** s.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the reader's `XREAD` blocks in Redis. **Unit:** ms. **Why:** short enough that
/// a dead connection is noticed within a second or two (the read gets `BLOCK` plus
/// [`COMMAND_TIMEOUT`] in all), long enough to cost Redis nothing when idle.
pub const READ_BLOCK: Duration = Duration::from_millis(1000);
/// Most entries one `XREAD` returns. **Unit:** entries.
pub const READ_COUNT: usize = 256;
/// First reconnect delay, doubled per failure up to [`BACKOFF_CAP`]. **Unit:** ms.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest reconnect delay. **Unit:** seconds. **Why:** a node is back within seconds of
/// Redis, and a thousand nodes do not hammer a recovering Redis in step (full jitter).
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// The delay before reconnect attempt `attempt` (0 for the first): exponential backoff
/// with full jitter, a random delay from zero up to `min(cap, base · 2^attempt)`.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(fastrand::f64())
}

/// The operations whose errors are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Connecting and logging in.
    Connect,
    /// `XADD` (publishing).
    Xadd,
    /// The reader's `XRANGE` + `XREAD`.
    Xread,
    /// `XRANGE` for a resume older than the history.
    Xrange,
    /// An entry that is not an event this hub can deliver (skipped).
    Decode,
}

impl Op {
    /// Every operation, in counter order.
    pub const ALL: [Op; 5] = [Op::Connect, Op::Xadd, Op::Xread, Op::Xrange, Op::Decode];

    /// The label in `/metrics` and `/stats`.
    pub fn label(self) -> &'static str {
        match self {
            Op::Connect => "connect",
            Op::Xadd => "xadd",
            Op::Xread => "xread",
            Op::Xrange => "xrange",
            Op::Decode => "decode",
        }
    }
}

/// The broker's state, for `/health`, `/stats` and `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerStatus {
    /// Whether the reader's last exchange with Redis succeeded.
    pub up: bool,
    /// Why it is down (one line, never the password).
    pub reason: Option<String>,
    /// Reconnections made, both connections together.
    pub reconnects: u64,
    /// Errors by operation, in [`Op::ALL`] order.
    pub errors: [u64; Op::ALL.len()],
    /// Losses noticed (the cursor's entry gone).
    pub gaps: u64,
    /// Seconds since the reader last heard from Redis.
    pub last_read_age_secs: Option<f64>,
    /// The reader's cursor.
    pub cursor: String,
}

/// Why a publish through the broker failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message broker unavailable: {}", self.0)
    }
}

impl std::error::Error for Unavailable {}

/// A node's link to the shared stream. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: RedisConfig,
    hub: Hub,
    log: Log,
    /// The publishing connection (`None` until reconnected after a failure).
    writer: smol::lock::Mutex<Option<Connection>>,
    state: Mutex<State>,
    reconnects: AtomicU64,
    errors: [AtomicU64; Op::ALL.len()],
    gaps: AtomicU64,
}

struct State {
    up: bool,
    reason: Option<String>,
    last_read: Option<Instant>,
    cursor: String,
    /// The writer's reconnect attempts since it last worked, and when it may try again.
    writer_attempts: u32,
    writer_retry_at: Option<Instant>,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("url", &self.inner.cfg.url)
            .field("stream", &self.inner.cfg.stream)
            .finish_non_exhaustive()
    }
}

/// One line about a Redis failure, with what to do for the kinds that need a person.
pub fn explain(e: &RedisError) -> String {
    match e.kind() {
        Some(ErrorKind::Loading) => format!("{e} (Redis is loading its data; retrying)"),
        Some(ErrorKind::ReadOnly) => {
            format!("{e} (a read-only replica: point --redis at the primary)")
        }
        Some(ErrorKind::NoAuth | ErrorKind::WrongPass) => {
            format!("{e} (check the user and password in --redis)")
        }
        Some(ErrorKind::Oom) => {
            format!("{e} (Redis is out of memory: raise maxmemory or lower --redis-maxlen)")
        }
        Some(ErrorKind::Cluster) => {
            format!("{e} (Redis Cluster is not supported: use one primary)")
        }
        _ => e.to_string(),
    }
}

/// A stream entry as an event: its id, topic and event, or why it cannot be one.
pub fn entry_event(e: &Entry) -> Result<(EventId, Topic, Event), String> {
    let id: EventId = e.id.parse().map_err(|_| format!("entry id {:?}", e.id))?;
    let text = |f: &str| -> Result<Option<&str>, String> {
        e.field(f)
            .map(|v| {
                std::str::from_utf8(v).map_err(|_| format!("entry {}: {f} is not UTF-8", e.id))
            })
            .transpose()
    };
    let topic = match text("topic")? {
        Some(t) => Topic::new(t).map_err(|err| format!("entry {}: {err}", e.id))?,
        None => Topic::default_topic(),
    };
    let data = text("data")?.ok_or_else(|| format!("entry {}: no data field", e.id))?;
    let mut event = Event::new(data).map_err(|err| format!("entry {}: {err}", e.id))?;
    if let Some(name) = text("event")? {
        event = event
            .with_name(name)
            .map_err(|err| format!("entry {}: {err}", e.id))?;
    }
    if let Some(r) = text("retry")? {
        let ms = r
            .parse()
            .map_err(|_| format!("entry {}: bad retry", e.id))?;
        event = event.with_retry(ms);
    }
    Ok((id, topic, event))
}

impl Broker {
    /// Connects the publishing and reading connections, loads the stream's tail into
    /// `hub` (which must have external ids), and returns the broker and the reader's
    /// connection and cursor for [`Broker::run_reader`].
    ///
    /// # Errors
    ///
    /// A one-line reason when Redis cannot be reached, refuses the credentials, or is
    /// a cluster: the node does not start.
    pub async fn connect(cfg: RedisConfig, hub: Hub, log: Log) -> Result<(Broker, Reader), String> {
        let where_ = cfg.url.to_string();
        let fail = |e: RedisError| format!("redis at {where_}: {}", explain(&e));
        let mut writer = Connection::connect(&cfg.url, "ssehub-publish", CONNECT_TIMEOUT)
            .await
            .map_err(fail)?;
        let mut reader = Connection::connect(&cfg.url, "ssehub-read", CONNECT_TIMEOUT)
            .await
            .map_err(fail)?;
        // A cluster answers MOVED to commands on keys it does not own: refuse loudly.
        let tail = stream::tail(&mut reader, &cfg.stream, cfg.maxlen, COMMAND_TIMEOUT)
            .await
            .map_err(fail)?;
        let _ = writer
            .call(&["PING"], COMMAND_TIMEOUT)
            .await
            .map_err(fail)?;
        let mut events = Vec::with_capacity(tail.len());
        let mut cursor = "0-0".to_owned();
        let mut skipped = 0;
        for e in &tail {
            cursor.clone_from(&e.id);
            match entry_event(e) {
                Ok(ev) => events.push(ev),
                Err(_) => skipped += 1,
            }
        }
        log.line(format_args!(
            "redis: {} stream {} ({} entries loaded{}), cursor {cursor}",
            cfg.url,
            cfg.stream,
            events.len(),
            if skipped > 0 {
                format!(", {skipped} not events, skipped")
            } else {
                String::new()
            }
        ));
        hub.preload(events);
        let broker = Broker {
            inner: Arc::new(Inner {
                cfg,
                hub,
                log,
                writer: smol::lock::Mutex::new(Some(writer)),
                state: Mutex::new(State {
                    up: true,
                    reason: None,
                    last_read: Some(Instant::now()),
                    cursor: cursor.clone(),
                    writer_attempts: 0,
                    writer_retry_at: None,
                }),
                reconnects: AtomicU64::new(0),
                errors: Default::default(),
                gaps: AtomicU64::new(0),
            }),
        };
        Ok((
            broker,
            Reader {
                conn: Some(reader),
                cursor,
            },
        ))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, op: Op) {
        self.inner.errors[op as usize].fetch_add(1, Relaxed);
    }

    /// The hub this broker delivers to.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The state for `/health`, `/stats` and `/metrics`.
    pub fn status(&self) -> BrokerStatus {
        let s = self.state();
        BrokerStatus {
            up: s.up,
            reason: s.reason.clone(),
            reconnects: self.inner.reconnects.load(Relaxed),
            errors: std::array::from_fn(|i| self.inner.errors[i].load(Relaxed)),
            gaps: self.inner.gaps.load(Relaxed),
            last_read_age_secs: s.last_read.map(|t| t.elapsed().as_secs_f64()),
            cursor: s.cursor.clone(),
        }
    }

    /// Publishes `event` on `topic`: `XADD`, answered with the id Redis assigned once it
    /// accepted the entry. The event reaches subscribers (on every node, this one
    /// included) when the readers see it. Never queues: while Redis is unreachable it
    /// fails at once.
    ///
    /// # Errors
    ///
    /// [`Unavailable`] with the reason.
    pub async fn publish(&self, topic: &Topic, event: &Event) -> Result<EventId, Unavailable> {
        let mut writer = self.inner.writer.lock().await;
        if writer.as_ref().is_none_or(Connection::is_broken) {
            *writer = None;
            // Do not try again before the backoff allows: a publisher retrying in a loop
            // must not turn into a connect storm.
            let due = self.state().writer_retry_at;
            if due.is_some_and(|at| Instant::now() < at) {
                return Err(Unavailable(self.down_reason()));
            }
            match Connection::connect(&self.inner.cfg.url, "ssehub-publish", CONNECT_TIMEOUT).await
            {
                Ok(c) => {
                    self.inner.reconnects.fetch_add(1, Relaxed);
                    self.state().writer_attempts = 0;
                    *writer = Some(c);
                }
                Err(e) => {
                    self.count(Op::Connect);
                    let mut s = self.state();
                    s.writer_retry_at = Some(Instant::now() + backoff(s.writer_attempts));
                    s.writer_attempts = s.writer_attempts.saturating_add(1);
                    return Err(Unavailable(explain(&e)));
                }
            }
        }
        let conn = writer.as_mut().expect("connected above");
        let retry = event.retry().map(|r| r.to_string());
        let mut fields: Vec<(&[u8], &[u8])> = vec![
            (b"topic", topic.as_str().as_bytes()),
            (b"data", event.data().as_bytes()),
        ];
        if let Some(name) = event.name() {
            fields.push((b"event", name.as_bytes()));
        }
        if let Some(r) = &retry {
            fields.push((b"retry", r.as_bytes()));
        }
        let cfg = &self.inner.cfg;
        match stream::xadd(conn, &cfg.stream, cfg.maxlen, &fields, COMMAND_TIMEOUT).await {
            Ok(id) => id
                .parse()
                .map_err(|_| Unavailable(format!("Redis answered the id {id:?}"))),
            Err(e) => {
                self.count(Op::Xadd);
                if conn.is_broken() {
                    *writer = None;
                }
                let why = explain(&e);
                self.inner
                    .log
                    .line(format_args!("redis: XADD failed: {why}"));
                Err(Unavailable(why))
            }
        }
    }

    fn down_reason(&self) -> String {
        self.state()
            .reason
            .clone()
            .unwrap_or_else(|| "reconnecting".to_owned())
    }

    /// The events from `from` on (inclusive), for a client whose id is older than the
    /// history: empty when Redis cannot be asked (the client then gets a reset).
    pub async fn older(&self, from: EventId) -> Vec<(EventId, Topic, Event)> {
        let cfg = &self.inner.cfg;
        let conn = Connection::connect(&cfg.url, "ssehub-replay", CONNECT_TIMEOUT).await;
        let got = match conn {
            Ok(mut c) => {
                let n = cfg.maxlen.saturating_add(READ_COUNT);
                stream::range_from(&mut c, &cfg.stream, &from.to_string(), n, COMMAND_TIMEOUT).await
            }
            Err(e) => Err(e),
        };
        match got {
            Ok(entries) => entries.iter().filter_map(|e| entry_event(e).ok()).collect(),
            Err(e) => {
                self.count(Op::Xrange);
                self.inner.log.line(format_args!(
                    "redis: XRANGE for a resume failed: {}",
                    explain(&e)
                ));
                Vec::new()
            }
        }
    }
}

/// The reader's connection and cursor, handed from [`Broker::connect`] to
/// [`Broker::run_reader`].
pub struct Reader {
    conn: Option<Connection>,
    cursor: String,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("cursor", &self.cursor)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_full_jitter() {
        for attempt in 0..40 {
            let d = backoff(attempt);
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << attempt.min(16))
                .min(BACKOFF_CAP);
            assert!(d <= ceiling, "{attempt}: {d:?}");
        }
        let late: Vec<Duration> = (0..200).map(|_| backoff(30)).collect();
        assert!(late.iter().any(|d| *d > Duration::from_secs(2)));
        assert!(late.iter().any(|d| *d < Duration::from_secs(2)));
    }

    #[test]
    fn entries_become_events_or_say_why_not() {
        let e = Entry {
            id: "5-1".into(),
            fields: vec![
                (b"topic".to_vec(), b"news".to_vec()),
                (b"data".to_vec(), b"a\nb".to_vec()),
                (b"event".to_vec(), b"upd".to_vec()),
                (b"retry".to_vec(), b"700".to_vec()),
            ],
        };
        let (id, topic, ev) = entry_event(&e).unwrap();
        assert_eq!((id, topic.as_str()), (EventId::new(5, 1), "news"));
        assert_eq!(
            (ev.data(), ev.name(), ev.retry()),
            ("a\nb", Some("upd"), Some(700))
        );
        for fields in [
            vec![
                (b"topic".to_vec(), b"bad topic".to_vec()),
                (b"data".to_vec(), b"x".to_vec()),
            ],
            vec![(b"topic".to_vec(), b"t".to_vec())],
            vec![(b"data".to_vec(), vec![0xff])],
            vec![
                (b"data".to_vec(), b"x".to_vec()),
                (b"event".to_vec(), b"a\nb".to_vec()),
            ],
        ] {
            let e = Entry {
                id: "1-0".into(),
                fields,
            };
            assert!(entry_event(&e).is_err(), "{e:?}");
        }
        let e = Entry {
            id: "nope".into(),
            fields: vec![(b"data".to_vec(), b"x".to_vec())],
        };
        assert!(entry_event(&e).is_err());
    }
}
