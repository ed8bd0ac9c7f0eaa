//! The server: it binds, accepts, serves each connection (short routes, or a stream),
//! and shuts down within its grace period.
//!
//! | file | phase |
//! |---|---|
//! | `mod.rs` (this) | bind, run, shutdown; the state every connection shares |
//! | `accept.rs` | the accept loop and the connection cap |
//! | `connection.rs` | one connection: read a head, route, answer or refuse, or become a stream |
//! | `router.rs` | method × path → route (pure) |
//! | `access.rs` | a subscriber's token: its rights and expiry, or the `401` |
//! | `publish.rs` | `POST /publish`: authorization, body, publish, pacing |
//! | `stream.rs` | `GET /stream`: subscribe, preamble, the writer, the end reason |
//! | `writer.rs` | the subscriber's writer loop |
//! | `socket.rs` | the connection type, `sendmsg`, the direct sink |
//! | `cors.rs` | cross-origin headers and preflights |
//! | `status.rs` | `/health`, `/stats` and `/metrics` |

mod accept;
mod access;
mod connection;
mod cors;
mod mercure;
mod publish;
mod router;
mod socket;
mod status;
mod stream;
mod writer;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_executor::Executor;
use async_io::Timer;
use async_net::TcpListener;
use futures_lite::FutureExt;

pub(crate) use connection::serve_connection;
pub(crate) use socket::Conn;

use crate::config::Config;
use crate::hub::Hub;
use crate::log::Log;
use crate::port::{Port, PortError, Store};
use crate::producer::Producers;
use crate::shutdown::{Guard, Shutdown};
use crate::stats::{Snapshot, Stats};

/// Connections the kernel queues for `accept`.
pub const LISTEN_BACKLOG: i32 = 4096;

/// A start-up or run-time failure of the server.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The listen address could not be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The publish port could not be opened: the history file cannot be used, or the
    /// shared stream (`--redis`) could not be reached or refused the node.
    Port(PortError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Port(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } => Some(source),
            Error::Port(e) => Some(e),
        }
    }
}

/// What every connection task shares (private to the server: the parts below it take
/// the narrow arguments they read).
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) config: Config,
    pub(crate) hub: Hub,
    pub(crate) stats: Arc<Stats>,
    pub(crate) log: Log,
    pub(crate) shutdown: Shutdown,
    pub(crate) cors: cors::Cors,
    /// Where every publish goes (memory, the history file, or Redis).
    pub(crate) port: Port,
    connections: Arc<AtomicUsize>,
}

impl Ctx {
    /// Shared state for a server with `config`.
    pub(crate) fn new(config: Config, log: Log, shutdown: Shutdown) -> Arc<Ctx> {
        let stats = Arc::new(Stats::new());
        let hub = Hub::with_log(config.hub, stats.clone(), log.clone());
        let port = Port::memory(&hub);
        Ctx::with(config, log, shutdown, stats, hub, port)
    }

    fn with(
        config: Config,
        log: Log,
        shutdown: Shutdown,
        stats: Arc<Stats>,
        hub: Hub,
        port: Port,
    ) -> Arc<Ctx> {
        let cors = cors::Cors::new(&config.cors_origins);
        Arc::new(Ctx {
            config,
            hub,
            stats,
            log,
            shutdown,
            cors,
            port,
            connections: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Open connections now.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// A cheap, cloneable view of a running server's counters, for the embedding program
/// (and tests): open connections and a snapshot of the statistics.
#[derive(Debug, Clone)]
pub struct Handle {
    stats: Arc<Stats>,
    connections: Arc<AtomicUsize>,
}

impl Handle {
    /// TCP connections open now.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        self.stats.snapshot()
    }
}

/// A bound server, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    ctx: Arc<Ctx>,
}

impl Server {
    /// Binds the listen address of `config` and opens the publish port it names (with a
    /// history file, opens and reads it; with Redis, connects and loads the tail).
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when the address is in use or not available; [`Error::Port`] when
    /// the history file cannot be used or the shared stream cannot be reached.
    pub fn bind(config: Config, log: Log, shutdown: Shutdown) -> Result<Server, Error> {
        let addr = config.bind;
        let bind_err = |source| Error::Bind { addr, source };
        let std = StdListener::bind(addr).map_err(bind_err)?;
        // std listens with a backlog of 128: too few for thousands of subscribers
        // reconnecting at once after a restart. Listening again raises it (the kernel
        // caps it at net.core.somaxconn); if that fails, the old backlog stays.
        let _ = rustix::net::listen(&std, LISTEN_BACKLOG);
        let local = std.local_addr().map_err(bind_err)?;
        let listener = TcpListener::try_from(std).map_err(bind_err)?;
        // The port (memory, history file or Redis) is chosen here, once. With Redis the
        // node starts only once it has reached Redis and loaded the stream's tail.
        let stats = Arc::new(Stats::new());
        let store = match (&config.redis, &config.history_file) {
            // (`Config` refuses --history-file with --redis: Redis keeps that history.)
            (Some(redis), _) => Store::Redis(redis.clone()),
            (None, Some(path)) => Store::File {
                path: path.clone(),
                fsync: config.fsync,
            },
            (None, None) => Store::Memory,
        };
        let (hub, port) =
            Port::open(&store, config.hub, stats.clone(), log.clone()).map_err(Error::Port)?;
        let ctx = Ctx::with(config, log, shutdown, stats, hub, port);
        Ok(Server {
            listener,
            addr: local,
            ctx,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub, e.g. to subscribe from the embedding program.
    pub fn hub(&self) -> &Hub {
        &self.ctx.hub
    }

    /// The publish port: publish from the embedding program through it.
    pub fn port(&self) -> &Port {
        &self.ctx.port
    }

    /// A handle on the server's counters that outlives [`Server::run`].
    pub fn handle(&self) -> Handle {
        Handle {
            stats: self.ctx.stats.clone(),
            connections: self.ctx.connections.clone(),
        }
    }

    /// Serves until the shutdown signal fires, then stops accepting, stops the producers,
    /// lets every stream flush what it has queued, and returns the final counters once all
    /// connections are closed or the grace period is over.
    ///
    /// `ex` runs the accept loop, the request phase of every connection and the producers;
    /// `streams` runs the subscribers' writers. They may be one executor. Kept apart (as
    /// [`Server::run_threaded`] does), publishers and new connections never queue behind
    /// thousands of writers: publishing stays fast under fan-out load, and the writers,
    /// woken less often per event, carry more frames per write.
    pub async fn run(
        self,
        ex: Arc<Executor<'static>>,
        streams: Arc<Executor<'static>>,
    ) -> Snapshot {
        let ctx = self.ctx.clone();
        // A direct write job is split in one part per writer thread plus one that the
        // publishing thread writes itself, so the burst is spread over every core. (A
        // weak handle: the hub lives in tasks of that executor.)
        let writers = Arc::downgrade(&streams);
        let parts = ctx.config.threads.max(1) + 1;
        ctx.hub
            .set_direct_runner(move |job| match writers.upgrade() {
                Some(ex) => {
                    let mut split = job.split(parts);
                    let mine = split.pop();
                    for part in split {
                        ex.spawn(async move { part.run() }).detach();
                    }
                    if let Some(mine) = mine {
                        mine.run();
                    }
                }
                None => job.run(),
            });
        let producers = Producers::spawn(&ex, &ctx.config, &ctx.hub, &ctx.port, &ctx.log);
        let reader = ctx.port.start(&ex, &ctx.shutdown);
        let (guard, all_done) = Guard::new();
        ctx.log.line(format_args!("listening on {}", self.addr));
        accept::accept_loop(&self.listener, &ex, &streams, &ctx, &guard).await;
        drop(self.listener);
        ctx.log.line(format_args!(
            "shutting down: {} clients, grace {:?}",
            ctx.hub.len(),
            ctx.config.grace
        ));
        drop(producers);
        drop(reader);
        ctx.hub.close();
        drop(guard);
        let finished = async {
            all_done.wait_all_dropped().await;
            true
        }
        .or(async {
            Timer::after(ctx.config.grace).await;
            false
        })
        .await;
        if !finished {
            ctx.log.line(format_args!(
                "grace period over: cancelling {} connections",
                all_done.alive()
            ));
        }
        ctx.stats.snapshot()
    }

    /// Runs the server until shutdown completes: the request executor on the calling
    /// thread, the stream executor on `config.threads` threads of its own.
    pub fn run_threaded(self) -> Snapshot {
        let ex = Arc::new(Executor::new());
        let streams = Arc::new(Executor::new());
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let threads: Vec<_> = (0..self.ctx.config.threads)
            .filter_map(|i| {
                let ex = streams.clone();
                let stop = stop_rx.clone();
                std::thread::Builder::new()
                    .name(format!("ssehub-{i}"))
                    .spawn(move || futures_lite::future::block_on(ex.run(stop.recv())))
                    .ok()
            })
            .collect();
        let snapshot =
            futures_lite::future::block_on(ex.run(self.run(ex.clone(), streams.clone())));
        stop_tx.close();
        for t in threads {
            let _ = t.join();
        }
        // Dropping the executors cancels whatever is left.
        drop((ex, streams));
        snapshot
    }
}
