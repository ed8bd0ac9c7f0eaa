//! The publish port: the one seam every publisher goes through.
//!
//! Everything that publishes (`POST /publish`, the demo producer, `--stdin`) makes one
//! call, [`Port::publish`], on one port chosen once at start ([`Port::open`]) by what the
//! configuration names:
//!
//! | backend | file | ids | an event is stored | delivered |
//! |---|---|---|---|---|
//! | memory (default) | `memory.rs` | `<epoch>-<offset>`, issued under the hub lock | in the hub's ring | at once |
//! | history file (`--history-file`) | `file.rs` (with `file/`) | `<epoch>-<offset>`, issued under the file's publish lock | as an appended record (and synced with `--fsync always`, in groups) | once the record is written |
//! | Redis (`--redis`) | `redis.rs` (with `redis/`) | the stream's (`<ms>-<seq>`) | by `XADD` | when this node's reader sees it |
//!
//! Each backend assigns or accepts the position, stores the event, and hands it to the
//! hub's single entry for an ordered event, `Hub::commit` (the memory backend through
//! `Hub::commit_local`), which keeps it for replay and fans it out. An event is the same
//! on every backend: an [`Envelope`] (one or more topics, public or private, an optional
//! publisher id and idempotency key) and an [`Event`] (name, retry, data).
//!
//! A retry is harmless on every backend: a publish whose idempotency key or publisher id
//! repeats a retained event's is answered with that event's id ([`Receipt::replayed`])
//! and publishes nothing.
//!
//! A new backend is one file here implementing `Backend` plus one line in
//! [`Port::open`]. Nothing outside this folder names a backend.

mod file;
mod gate;
mod memory;
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_executor::{Executor, Task};

pub use file::{FSYNC_INTERVAL, Fsync, HistoryFileError, OpenError, load_history_file};
pub use gate::HANDOVER_RETRY_AFTER;
pub use redis::{
    BACKOFF_BASE, BACKOFF_CAP, BrokerStatus, COMMAND_TIMEOUT, CONNECT_TIMEOUT, IDEMPOTENCY_TTL,
    MAX_READER_LAG, Op, READ_BLOCK, READ_COUNT, RedisConfig, backoff, entry_event,
};

use std::path::PathBuf;

use crate::envelope::Envelope;
use crate::event_id::EventId;
use crate::hub::{Hub, HubLimits};
use crate::log::Log;
use crate::shutdown::Shutdown;
use crate::sse::Event;
use crate::stats::Stats;

/// A boxed future borrowing the backend, as [`Backend`]'s methods return.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The answer to a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The event's id as its subscribers see it: the publisher's own, or the one the
    /// backend assigned.
    pub id: String,
    /// Subscribers of this node it was handed to (`None`: not known, as for a replay,
    /// or an event this node's reader had not seen yet when answered).
    pub delivered_to: Option<usize>,
    /// A retry of a retained event (same idempotency key or publisher id): nothing was
    /// published, `id` is the first publish's.
    pub replayed: bool,
    /// Whether this node's writers are behind (the caller may pace the publisher).
    pub congested: bool,
}

impl Receipt {
    /// The receipt of a retry.
    pub(crate) fn replay(id: String) -> Receipt {
        Receipt {
            id,
            delivered_to: None,
            replayed: true,
            congested: false,
        }
    }
}

/// Why a publish was not taken: the event got no id and reached nobody, and the
/// publisher may try again after `retry_after` (`503`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// One line, without the server's paths or passwords.
    pub reason: String,
    /// When to try again.
    pub retry_after: Duration,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event not published: {}", self.reason)
    }
}

impl std::error::Error for Refused {}

/// The port's state, for `/health`, `/stats` and `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// `memory`, `file` or `redis`.
    pub backend: &'static str,
    /// Whether publishing can succeed now (`/health` answers `503` while not).
    pub up: bool,
    /// Why not, in one line.
    pub reason: Option<String>,
    /// With a history file: its size now. **Unit:** bytes.
    pub file_bytes: Option<u64>,
    /// With a history file: the syncs made (each may cover several publishes).
    pub syncs: Option<u64>,
    /// With Redis: the link's state.
    pub broker: Option<BrokerStatus>,
}

/// One way to store and order events (see the module docs).
pub(crate) trait Backend: Send + Sync + 'static {
    /// Stores `event` with `envelope` and hands it to the hub, or says why not.
    fn publish(&self, envelope: Envelope, event: Event) -> BoxFuture<'_, Result<Receipt, Refused>>;

    /// The state now.
    fn status(&self) -> Status;

    /// The events from `from` on (inclusive) that are older than the hub's history,
    /// for a resume (only a shared log has them).
    fn older(&self, from: EventId) -> BoxFuture<'_, Vec<(EventId, Envelope, Event)>> {
        let _ = from;
        Box::pin(async { Vec::new() })
    }

    /// The id of the newest event the shared log holds, asked of the log itself (not of
    /// this node's copy), within a bounded time: to tell a client's id this node has not
    /// read yet from one nobody issued. `Ok(None)`: the log is empty; `Err`: it cannot
    /// be asked now (or there is no shared log), with the reason.
    fn newest(&self) -> BoxFuture<'_, Result<Option<EventId>, String>> {
        Box::pin(async { Err("no shared log".to_owned()) })
    }

    /// Starts the backend's own tasks (a broker's reader) on `ex`.
    fn start(&self, ex: &Executor<'static>, shutdown: &Shutdown) -> Vec<Task<()>> {
        let _ = (ex, shutdown);
        Vec::new()
    }

    /// A handover, publishing paused: lets a successor process open the store (the
    /// history file gives up its lock). Memory has nothing to release.
    fn release(&self) -> Result<(), String> {
        Ok(())
    }

    /// The handover rolled back: takes the store again.
    fn retake(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The publish port chosen at start. Cheap to clone.
#[derive(Clone)]
pub struct Port {
    backend: Arc<dyn Backend>,
    /// Closed while a handover takes its snapshot (see `gate.rs`).
    gate: Arc<gate::Gate>,
}

impl fmt::Debug for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Port")
            .field("backend", &self.backend.status().backend)
            .finish()
    }
}

/// Why the port could not be opened (the server does not start).
#[derive(Debug)]
#[non_exhaustive]
pub enum PortError {
    /// The history file cannot be used.
    HistoryFile(OpenError),
    /// The shared stream cannot be reached, or refused the node.
    Broker(String),
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortError::HistoryFile(e) => e.fmt(f),
            PortError::Broker(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for PortError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PortError::HistoryFile(e) => Some(e),
            PortError::Broker(_) => None,
        }
    }
}

/// Which backend a port opens (from `--redis`, `--history-file` and `--fsync`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// The in-memory ring.
    Memory,
    /// The append-only history file at `path`.
    File {
        /// The file.
        path: PathBuf,
        /// When it is synced.
        fsync: Fsync,
    },
    /// A Redis stream shared by several nodes.
    Redis(RedisConfig),
}

impl Port {
    /// Opens the backend `store` names and the hub it feeds, with `limits`.
    ///
    /// # Errors
    ///
    /// [`PortError`] when the file cannot be used or Redis cannot be reached.
    pub fn open(
        store: &Store,
        limits: HubLimits,
        stats: Arc<Stats>,
        log: Log,
    ) -> Result<(Hub, Port), PortError> {
        let (hub, backend): (Hub, Arc<dyn Backend>) = match store {
            Store::Memory => memory::open(limits, stats, log),
            Store::File { path, fsync } => file::open(path, *fsync, limits, stats, log)?,
            Store::Redis(redis) => redis::open(redis.clone(), limits, stats, log)?,
        };
        Ok((
            hub,
            Port {
                backend,
                gate: Arc::default(),
            },
        ))
    }

    /// The memory port of an existing in-memory `hub` (for library users).
    pub fn memory(hub: &Hub) -> Port {
        Port {
            backend: memory::of(hub.clone()),
            gate: Arc::default(),
        }
    }

    /// Publishes one event: stored, ordered and fanned out by the backend.
    ///
    /// # Errors
    ///
    /// [`Refused`] when the backend cannot take it now (a full disk, Redis down, a
    /// node whose reader is too far behind): nothing was published.
    pub async fn publish(&self, envelope: Envelope, event: Event) -> Result<Receipt, Refused> {
        let Some(_pass) = self.gate.enter() else {
            return Err(Refused {
                reason: "the server is handing over to its successor, retry".to_owned(),
                retry_after: HANDOVER_RETRY_AFTER,
            });
        };
        self.backend.publish(envelope, event).await
    }

    /// Stops taking publishes (a handover) and waits, at most `max`, for the ones in
    /// flight: whether they all finished.
    pub(crate) async fn pause(&self, max: Duration) -> bool {
        self.gate.close(max).await
    }

    /// Takes publishes again (a handover rolled back).
    pub(crate) fn unpause(&self) {
        self.gate.open();
    }

    /// While paused for a handover: lets the successor open the store (see
    /// `Backend::release`).
    pub(crate) fn release(&self) -> Result<(), String> {
        self.backend.release()
    }

    /// After a rolled-back handover: takes the store again.
    pub(crate) fn retake(&self) -> Result<(), String> {
        self.backend.retake()
    }

    /// The port's state.
    pub fn status(&self) -> Status {
        self.backend.status()
    }

    /// Retained events older than the hub's history, from `from` on (see [`Backend::older`]).
    pub(crate) async fn older(&self, from: EventId) -> Vec<(EventId, Envelope, Event)> {
        self.backend.older(from).await
    }

    /// The newest id the shared log holds (see [`Backend::newest`]).
    pub(crate) async fn newest(&self) -> Result<Option<EventId>, String> {
        self.backend.newest().await
    }

    /// Starts the backend's own tasks; dropping them stops them.
    pub(crate) fn start(&self, ex: &Executor<'static>, shutdown: &Shutdown) -> Vec<Task<()>> {
        self.backend.start(ex, shutdown)
    }
}
