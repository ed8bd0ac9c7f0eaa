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
//!   calls). The entries are taken with the stream's `XINFO` in one atomic script, and
//!   a `lost` reset goes to the node's subscribers exactly when an entry added after the
//!   cursor was removed before this node read it (trimmed, deleted, flushed, or Redis
//!   restarted without persistence): Redis's `entries-added` counter, less the entries
//!   this node accounted for, against the entries after the cursor the stream still
//!   holds (the rule: [`stream::Position`]). The cursor's own entry being gone is no
//!   loss: with `--redis-maxlen 1` it is trimmed as soon as the next entry is added
//!   (checking for it gave 399 `lost` resets for 400 events read in full). Before Redis
//!   7 (no counter) the rule falls back to that check. Each entry is delivered to the hub
//!   ([`Hub::deliver`]), which encodes it once. A node delivers its own publishes when
//!   its reader sees them, so every node delivers in the stream's order.
//! - **Replay on any node**: at start the node loads the stream's tail into its history;
//!   an id older than the history is looked up in Redis (`XRANGE key id + COUNT n`),
//!   and the client continues only if Redis still has that very entry.
//! - **Outages** are loud and temporary: `/health` and publishing answer `503` with the
//!   reason, `/metrics` shows the broker's state, and both connections reconnect with
//!   exponential backoff and full jitter ([`backoff`]), the reader from its cursor.

mod acked;
mod entry;
mod failover;
mod fence;
mod reader;

pub use entry::entry_event;
use entry::entry_fields;

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use async_executor::{Executor, Task};
use futures_lite::FutureExt;

use super::{Backend, BoxFuture, PortError, Receipt, Refused, Status};
use crate::envelope::Envelope;
use crate::event_id::EventId;
use crate::hub::{Hub, HubLimits};
use crate::log::Log;
use crate::redis::stream;
use crate::redis::{Connection, ErrorKind, RedisError, RedisUrl};
use crate::shutdown::Shutdown;
use crate::sse::Event;
use crate::stats::Stats;

/// Where the shared stream is (`--redis`, `--redis-stream`, `--redis-maxlen`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The server and the credentials (never shown).
    pub url: RedisUrl,
    /// The stream key.
    pub stream: String,
    /// Entries the stream keeps (`XADD ... MAXLEN ~ N`).
    pub maxlen: usize,
    /// Replicas that must have an entry before its publish is answered (`WAIT N`,
    /// `--redis-wait-replicas`; 0: no wait).
    pub wait_replicas: usize,
}

/// Longest a publish through Redis waits for this node's reader to deliver it before it
/// is answered. **Unit:** ms. **Why:** a publisher that sends its next event after the
/// answer (as HTTP clients do) then goes at the pace this node reads and writes, instead
/// of piling entries into Redis that every node must then deliver at once (the fast
/// publisher of `scripts/bench-cluster.sh` got a p99 of 5.6 s and 77 healthy readers
/// evicted without it). Past it the publish is answered anyway: it is in Redis.
pub const MAX_READER_LAG: Duration = Duration::from_millis(2000);

/// How long Redis remembers an idempotency key or a publisher id, so that a retry is
/// recognised on any node even after the entry was trimmed from the stream. **Unit:**
/// seconds (one day).
pub const IDEMPOTENCY_TTL: u64 = 24 * 60 * 60;

/// Why a publish is refused while a sentinel fails the master over (`fence.rs`).
const FENCED: &str = "a Sentinel failover of the master is under way: publishing resumes on \
the new master";

/// Why a publish written while a failover began is refused: it may or may not survive.
const FENCED_DURING: &str = "a Sentinel failover began while the entry was written: it may \
exist or be lost (a retry with the same Idempotency-Key is safe)";

/// What `Retry-After` says while the shared stream is unreachable. **Unit:** seconds.
pub const BROKER_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Longest a resume waits to ask Redis for the stream's newest id (connecting
/// included), when a client sends an id this node has not read. **Unit:** ms. **Why:**
/// the client waits for its stream head meanwhile; past it the id is taken as one that
/// cannot be placed (a `future` reset, then live events), never as one to wait for.
pub const ASK_TIMEOUT: Duration = Duration::from_millis(1000);

/// How long connecting and logging in may take. **Unit:** seconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one command (other than the reader's blocking read) may take. **Unit:** s.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest a publish waits for `--redis-wait-replicas` replicas to acknowledge its entry
/// (`WAIT N timeout`). **Unit:** ms. **Why:** replicas on a local network acknowledge
/// within a millisecond or two; past a second one of them is down or far behind, and
/// the publisher is better told (`503`, retry with the same idempotency key) than kept
/// waiting.
pub const WAIT_TIMEOUT: Duration = Duration::from_millis(1000);

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

/// Waits `wait`, or until `shutdown`: whether it was the shutdown (the caller stops).
pub(crate) async fn pause_or_stop(wait: Duration, shutdown: &crate::shutdown::Shutdown) -> bool {
    use futures_lite::FutureExt;
    async {
        async_io::Timer::after(wait).await;
        false
    }
    .or(async {
        shutdown.wait().await;
        true
    })
    .await
}

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
    /// The reader's `XREAD` and its checked read (`EVAL`).
    Xread,
    /// `XRANGE` for a resume older than the history, or `XREVRANGE` for the newest id
    /// (a resume from an id this node has not read).
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
    /// Losses noticed (entries removed before this node read them).
    pub gaps: u64,
    /// Seconds since the reader last heard from Redis.
    pub last_read_age_secs: Option<f64>,
    /// The reader's cursor.
    pub cursor: String,
    /// Times the node's reader moved to another master (Sentinel failovers it followed).
    pub failovers: u64,
    /// Seconds the reader spent without a master (Redis unreachable, or a failover under
    /// way), all outages together, the current one included.
    pub down_secs: f64,
    /// Entries lost (removed before this node read them, or missing on a new master).
    pub lost_entries: u64,
    /// The master the reader reads from (`host:port`; with Sentinel, the one named).
    pub master: Option<String>,
    /// Publishes refused because a Sentinel failover of the master was under way.
    pub fenced: u64,
    /// Loss markers this node added: entries it acknowledged that a new master lacked.
    pub loss_markers: u64,
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
    lost_entries: AtomicU64,
    failovers: AtomicU64,
    /// Publishes refused by the fence (see [`BrokerStatus::fenced`]).
    fenced: AtomicU64,
    /// Loss markers written (see [`BrokerStatus::loss_markers`]).
    loss_markers: AtomicU64,
    /// Bumped when the master moved (`+switch-master`, or a `READONLY` answer): the
    /// connections made before it are dropped and made again through the sentinels.
    generation: AtomicU64,
    /// The reader's connection and cursor until [`Backend::start`] takes them.
    reader: Mutex<Option<Reader>>,
    /// Publishing is refused while a sentinel fails our master over (`fence.rs`).
    fence: fence::Fence,
    /// The master a sentinel last announced, tried first when connecting.
    hint: Mutex<Option<crate::redis::Endpoint>>,
    /// The ids this node acknowledged lately, checked on a new master (`acked.rs`).
    acked: acked::Acked,
}

struct State {
    up: bool,
    reason: Option<String>,
    last_read: Option<Instant>,
    cursor: String,
    /// The writer's reconnect attempts since it last worked, and when it may try again.
    writer_attempts: u32,
    writer_retry_at: Option<Instant>,
    /// The [`Inner::generation`] the writer connected in.
    writer_generation: u64,
    /// Since when the reader is without a master, and the time of earlier outages.
    down_since: Option<Instant>,
    down_total: Duration,
    /// The master the reader reads from.
    master: Option<String>,
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
            format!("{e} (a read-only replica: point --redis at the primary, or use Sentinel)")
        }
        Some(ErrorKind::NoAuth | ErrorKind::WrongPass) => {
            format!("{e} (check the user and password in --redis)")
        }
        Some(ErrorKind::Oom) => {
            format!("{e} (Redis is out of memory: raise maxmemory or lower --redis-maxlen)")
        }
        Some(ErrorKind::Cluster) => {
            format!("{e} (Redis Cluster is not supported: use one primary, or Sentinel)")
        }
        _ => e.to_string(),
    }
}

/// Connects to Redis and opens the hub it feeds (see [`Broker::connect`]).
///
/// # Errors
///
/// [`PortError::Broker`] with a one-line reason.
pub(super) fn open(
    cfg: RedisConfig,
    limits: HubLimits,
    stats: Arc<Stats>,
    log: Log,
) -> Result<(Hub, Arc<dyn Backend>), PortError> {
    let hub = Hub::with_external_ids(limits, stats, log.clone());
    let broker = futures_lite::future::block_on(Broker::connect(cfg, hub.clone(), log))
        .map_err(PortError::Broker)?;
    Ok((hub, Arc::new(broker)))
}

impl Backend for Broker {
    fn publish(&self, envelope: Envelope, event: Event) -> BoxFuture<'_, Result<Receipt, Refused>> {
        Box::pin(async move {
            let refused = |e: Unavailable| Refused {
                reason: e.to_string(),
                retry_after: BROKER_RETRY_AFTER,
            };
            let (id, repeated) = self.publish(&envelope, &event).await.map_err(refused)?;
            let wire = match envelope.id() {
                Some(p) => p.as_str().to_owned(),
                None => id.to_string(),
            };
            if repeated {
                return Ok(Receipt::replay(wire));
            }
            self.inner.acked.remember(id);
            // Answered once this node's reader delivered it (or after MAX_READER_LAG).
            let seen = self.hub().wait_committed(id, MAX_READER_LAG).await;
            let backlog = self.hub().queue_load();
            Ok(Receipt {
                id: wire,
                delivered_to: None,
                replayed: false,
                congested: seen && backlog.congested(),
            })
        })
    }

    fn status(&self) -> Status {
        let b = self.status();
        Status {
            backend: "redis",
            up: b.up,
            reason: b.reason.clone(),
            file_bytes: None,
            syncs: None,
            broker: Some(b),
        }
    }

    fn older(&self, from: EventId) -> BoxFuture<'_, Vec<(EventId, Envelope, Event)>> {
        Box::pin(self.older(from))
    }

    fn newest(&self) -> BoxFuture<'_, Result<Option<EventId>, String>> {
        Box::pin(self.newest())
    }

    fn start(&self, ex: &Executor<'static>, shutdown: &Shutdown) -> Vec<Task<()>> {
        let taken = self
            .inner
            .reader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut tasks: Vec<Task<()>> = taken
            .map(|r| ex.spawn(self.clone().run_reader(r, shutdown.clone())))
            .into_iter()
            .collect();
        if let Some(s) = &self.inner.cfg.url.sentinel {
            for i in 0..s.addrs.len() {
                tasks.push(ex.spawn(self.clone().watch_sentinel(i, shutdown.clone())));
            }
        }
        tasks
    }
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
    pub async fn connect(cfg: RedisConfig, hub: Hub, log: Log) -> Result<Broker, String> {
        let where_ = cfg.url.to_string();
        let fail = |e: RedisError| format!("redis at {where_}: {}", explain(&e));
        let mut writer = Connection::connect(&cfg.url, "ssehub-publish", CONNECT_TIMEOUT)
            .await
            .map_err(fail)?;
        let mut reader = Connection::connect(&cfg.url, "ssehub-read", CONNECT_TIMEOUT)
            .await
            .map_err(fail)?;
        // A cluster answers MOVED to commands on keys it does not own: refuse loudly.
        let (tail, shape) = stream::tail(&mut reader, &cfg.stream, cfg.maxlen, COMMAND_TIMEOUT)
            .await
            .map_err(fail)?;
        let position = stream::Position::after_tail(&tail, shape.as_ref());
        let master = reader.endpoint().to_string();
        let _ = writer
            .call(&["PING"], COMMAND_TIMEOUT)
            .await
            .map_err(fail)?;
        let mut events = Vec::with_capacity(tail.len());
        let cursor = position.cursor.clone();
        let mut skipped = 0;
        for e in &tail {
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
        // Every entry the stream ever had is in the tail (none trimmed or deleted, all
        // loaded): a client at its start continues (see `Hub::preload`).
        let whole = shape
            .as_ref()
            .is_none_or(|s| s.entries_added == Some(s.length) && tail.len() as u64 == s.length);
        hub.preload(events, whole);
        let sentinels = cfg.url.sentinel.as_ref().map_or(0, |s| s.addrs.len());
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
                    writer_generation: 0,
                    down_since: None,
                    down_total: Duration::ZERO,
                    master: Some(master),
                }),
                reconnects: AtomicU64::new(0),
                errors: Default::default(),
                gaps: AtomicU64::new(0),
                lost_entries: AtomicU64::new(0),
                failovers: AtomicU64::new(0),
                fenced: AtomicU64::new(0),
                loss_markers: AtomicU64::new(0),
                generation: AtomicU64::new(0),
                reader: Mutex::new(Some(Reader {
                    conn: Some(reader),
                    position,
                    left_at: None,
                    recent: acked::Recent::default(),
                    unchecked: false,
                })),
                fence: fence::Fence::new(sentinels),
                hint: Mutex::new(None),
                acked: acked::Acked::default(),
            }),
        };
        Ok(broker)
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
            failovers: self.inner.failovers.load(Relaxed),
            down_secs: (s.down_total + s.down_since.map_or(Duration::ZERO, |t| t.elapsed()))
                .as_secs_f64(),
            lost_entries: self.inner.lost_entries.load(Relaxed),
            master: s.master.clone(),
            fenced: self.inner.fenced.load(Relaxed),
            loss_markers: self.inner.loss_markers.load(Relaxed),
        }
    }

    /// Publishes `event` with `envelope`: `XADD`, answered with the id Redis assigned
    /// once it accepted the entry, and whether it was a retry (`true`: an entry with
    /// the same idempotency key, or the same publisher id, was added within
    /// [`IDEMPOTENCY_TTL`]; nothing was added and the id is that entry's). The event
    /// reaches subscribers (on every node, this one included) when the readers see it.
    /// Never queues: while Redis is unreachable it fails at once.
    ///
    /// With a key or a publisher id the guard and the entry are written by one script,
    /// atomically: a retry after a reply that was lost (Redis applied the `XADD`, the
    /// connection broke before the answer) finds the guard and adds nothing.
    ///
    /// # Errors
    ///
    /// [`Unavailable`] with the reason.
    pub async fn publish(
        &self,
        envelope: &Envelope,
        event: &Event,
    ) -> Result<(EventId, bool), Unavailable> {
        let mut writer = self.inner.writer.lock().await;
        // The epoch first: a fence raised after this read either shows in `is_up` now
        // or moves the epoch before the answer (then the publish is refused too).
        let epoch = self.inner.fence.epoch();
        if self.inner.fence.is_up() {
            self.inner.fenced.fetch_add(1, Relaxed);
            return Err(Unavailable(FENCED.to_owned()));
        }
        let generation = self.inner.generation.load(Relaxed);
        if writer.is_some() && self.state().writer_generation != generation {
            // The master moved since this connection was made: ask the sentinels again.
            *writer = None;
        }
        if writer.as_ref().is_none_or(Connection::is_broken) {
            *writer = None;
            // Do not try again before the backoff allows: a publisher retrying in a loop
            // must not turn into a connect storm.
            let due = self.state().writer_retry_at;
            if due.is_some_and(|at| Instant::now() < at) {
                return Err(Unavailable(self.down_reason()));
            }
            match self.connect_master("ssehub-publish", CONNECT_TIMEOUT).await {
                Ok(c) => {
                    self.inner.reconnects.fetch_add(1, Relaxed);
                    let mut s = self.state();
                    s.writer_attempts = 0;
                    s.writer_generation = generation;
                    drop(s);
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
        let fields = entry_fields(envelope, event, &retry);
        let cfg = &self.inner.cfg;
        let guard = match (envelope.key(), envelope.id()) {
            (Some(k), _) => Some(format!("{}:key:{k}", cfg.stream)),
            (None, Some(i)) => Some(format!("{}:id:{i}", cfg.stream)),
            (None, None) => None,
        };
        let added = match &guard {
            Some(g) => {
                let t = COMMAND_TIMEOUT;
                stream::xadd_once(
                    conn,
                    &cfg.stream,
                    g,
                    IDEMPOTENCY_TTL,
                    cfg.maxlen,
                    &fields,
                    t,
                )
                .await
            }
            None => stream::xadd(conn, &cfg.stream, cfg.maxlen, &fields, COMMAND_TIMEOUT)
                .await
                .map(|id| (id, false)),
        };
        let added = match added {
            Ok(got) if cfg.wait_replicas > 0 => {
                stream::wait_replicas(conn, cfg.wait_replicas, WAIT_TIMEOUT, COMMAND_TIMEOUT)
                    .await
                    .map(|acked| (got, acked))
            }
            Ok(got) => Ok((got, cfg.wait_replicas)),
            Err(e) => Err(e),
        };
        match added {
            Ok((_, acked)) if acked < cfg.wait_replicas => {
                self.count(Op::Xadd);
                Err(Unavailable(format!(
                    "{acked} of {} replicas acknowledged the entry within {} ms (it may \
                     exist: a retry with the same Idempotency-Key is safe)",
                    cfg.wait_replicas,
                    WAIT_TIMEOUT.as_millis()
                )))
            }
            Ok(_) if self.inner.fence.epoch() != epoch => {
                self.inner.fenced.fetch_add(1, Relaxed);
                Err(Unavailable(FENCED_DURING.to_owned()))
            }
            Ok(((id, repeated), _)) => id
                .parse()
                .map(|id| (id, repeated))
                .map_err(|_| Unavailable(format!("Redis answered the id {id:?}"))),
            Err(e) => {
                self.count(Op::Xadd);
                if e.kind() == Some(ErrorKind::ReadOnly) {
                    // The master became a replica: the next publish asks the sentinels
                    // again, and so does the reader.
                    *writer = None;
                    self.moved();
                } else if conn.is_broken() {
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

    /// The id of the stream's newest entry (`XREVRANGE key + - COUNT 1` on a connection of
    /// its own, within [`ASK_TIMEOUT`]), for a client whose id this node has not read:
    /// `Ok(None)` when the stream is empty or absent, `Err` with the reason when Redis
    /// cannot be asked in time.
    pub async fn newest(&self) -> Result<Option<EventId>, String> {
        let cfg = &self.inner.cfg;
        let ask = async {
            let mut c = self.connect_master("ssehub-replay", ASK_TIMEOUT).await?;
            stream::newest(&mut c, &cfg.stream, ASK_TIMEOUT).await
        };
        let got = ask
            .or(async {
                async_io::Timer::after(ASK_TIMEOUT).await;
                Err(RedisError::Timeout)
            })
            .await;
        match got {
            Ok(id) => Ok(id.and_then(|id| id.parse().ok())),
            Err(e) => {
                self.count(Op::Xrange);
                let why = explain(&e);
                self.inner.log.line(format_args!(
                    "redis: asking for the newest id for a resume failed: {why}"
                ));
                Err(why)
            }
        }
    }

    /// The events from `from` on (inclusive), for a client whose id is older than the
    /// history: empty when Redis cannot be asked (the client then gets a reset).
    pub async fn older(&self, from: EventId) -> Vec<(EventId, Envelope, Event)> {
        let cfg = &self.inner.cfg;
        let conn = self.connect_master("ssehub-replay", CONNECT_TIMEOUT).await;
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

/// The reader's connection and position, handed from [`Broker::connect`] to
/// [`Broker::run_reader`].
pub struct Reader {
    conn: Option<Connection>,
    position: stream::Position,
    /// The cursor when the reader last left a master for another (a loss marker's ids
    /// after it are ones this node never read).
    left_at: Option<EventId>,
    /// The ids this reader read lately, checked on a new master.
    recent: acked::Recent,
    /// Moved to another master, and [`Reader::recent`] not checked there yet.
    unchecked: bool,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("position", &self.position)
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
}
