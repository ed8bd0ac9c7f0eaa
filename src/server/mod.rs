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
//! | `expiring.rs` | the `token-expiring` event before a token's `exp` |
//! | `quota.rs` | the per-token cap on concurrent streams (`429`) |
//! | `script.rs` | `GET /ssehub.js`, the browser client, with its `ETag` |
//! | `publish.rs` | `POST /publish`: authorization, body, publish, pacing |
//! | `stream.rs` | `GET /stream`: subscribe, preamble, the writer, the end reason |
//! | `subscriptions.rs` | Mercure's active subscriptions: the list, the events |
//! | `writer.rs` | the subscriber's writer loop |
//! | `rest.rs` | an idle stream at rest: no task, started again by its waker |
//! | `watch.rs` | resting streams' read sides in the server's own epoll set |
//! | `socket.rs` | the connection type, `sendmsg`, the direct sink, the registration made on demand |
//! | `cors.rs` | cross-origin headers and preflights |
//! | `status.rs` | `/health`, `/stats` and `/metrics` |
//! | `watchdog.rs` | systemd: `READY`, `STATUS`, `WATCHDOG` only on progress, `STOPPING` |
//! | `handover/` | `SIGUSR2`: listeners, history and live streams handed to a successor |

mod accept;
mod access;
mod connection;
mod cors;
mod expiring;
pub mod handover;
mod mercure;
mod publish;
mod quota;
pub mod release;
mod request;
mod rest;
mod rest_clock;
mod resume_fields;
mod router;
mod script;
mod socket;
mod status;
mod stream;
mod subscriptions;
mod watch;
mod watchdog;
mod writer;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_executor::Executor;
use async_io::Timer;
use async_net::TcpListener;
use futures_lite::FutureExt;

pub(crate) use connection::serve_connection;
pub(crate) use socket::Conn;
pub use watchdog::STATUS_INTERVAL;

use router::Scope;
use watchdog::{Probes, Systemd};

use crate::config::Config;
use crate::daemon::{Inherited, Notifier};
use crate::hub::{Hub, SharedJob};
use crate::log::Log;
use crate::port::{Port, PortError, Store};
use crate::producer::Producers;
use crate::shutdown::{Guard, Shutdown};
use crate::stats::{Snapshot, Stats};

/// Connections the kernel queues for `accept` (the `listen(2)` argument). **Unit:**
/// connections.
pub const ACCEPT_QUEUE: i32 = 4096;

/// How often the shutdown looks whether the last stream has ended, once every request
/// phase has. **Unit:** ms. **Why:** a stream keeps no waker for the shutdown (that would
/// cost every resting subscriber a pointer); the drain's own spread is seconds, so a
/// look every 10 ms adds at most that to a shutdown.
pub const STREAMS_GONE_POLL: Duration = Duration::from_millis(10);

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
    /// An inherited listener's address could not be read.
    Inherited {
        /// Its `FileDescriptorName=`.
        name: String,
        /// Why.
        source: io::Error,
    },
    /// What a predecessor handed over cannot be used.
    Handover(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Port(e) => write!(f, "{e}"),
            Error::Inherited { name, source } => {
                write!(f, "inherited listener {name}: {source}")
            }
            Error::Handover(why) => write!(f, "handover: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } => Some(source),
            Error::Port(e) => Some(e),
            Error::Inherited { source, .. } => Some(source),
            Error::Handover(_) => None,
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
    /// Open streams per token, under `--max-streams-per-token`.
    quota: Arc<quota::Quota>,
    connections: Arc<AtomicUsize>,
    /// Streams past their request phase that keep a connection's count (see
    /// `accept.rs`'s `Counted`): the shutdown waits for these as for its guards.
    streams_alive: AtomicUsize,
    /// Serving, or handing over to a successor (see `handover/`).
    pub(crate) handover: handover::Phase,
    /// Mercure's active subscriptions, with `--mercure-subscriptions`.
    pub(crate) subscriptions: Option<Arc<subscriptions::Tracker>>,
    /// The read sides of resting streams (`None`: streams rest on the reactor's
    /// registration, or do not rest).
    pub(crate) watch: Option<watch::Watch>,
    /// The stream executor, once the server runs: where a resting stream's writer
    /// starts again (weak: the executor's tasks hold this context).
    pub(crate) streams: std::sync::OnceLock<std::sync::Weak<Executor<'static>>>,
    /// Wakes writers waiting to rest (see `rest_clock.rs`).
    pub(crate) rest_clock: rest_clock::RestClock,
}

/// Sockets up to which a direct write job is shared with the writer threads (see
/// [`Server::run`]); a bigger one is written by the request thread alone, unless the
/// job before it is not all taken when it comes (the server is behind: the writer
/// threads then help with both). **Unit:** sockets. **Why:** a small job (W5: 100
/// subscribers of 8 KiB events) finishes sooner on every core; a big one costs more
/// CPU that way: W3 (10,000 subscribers) on two cores beside its load tool and a CPU
/// hog cost 1.03-1.18x the floor's CPU per event written by two threads, 0.97-1.01x by
/// the request thread alone (likely the sockets and the shared descriptor table moving
/// between cores, and the two threads preempting each other and the hog). But alone,
/// one late job (the load tool or the hog held the thread) made the next overlap it:
/// frames queued for every socket still lent, p99 up to 1.20x the floor in W3 quiet
/// and 1.38x beside the hog. Helping only then: p99 0.80-1.05x quiet, 0.90-1.09x
/// beside the hog, CPU 0.87-1.06x (BENCHMARKS.md).
const SHARE_UP_TO: usize = 1024;

/// Helps write the direct jobs sent to `jobs`, in the order they come, one chunk of
/// sockets per poll (see [`Server::run`]).
async fn help_with(jobs: async_channel::Receiver<Arc<SharedJob>>) {
    while let Ok(job) = jobs.recv().await {
        while job.help_once() {
            futures_lite::future::yield_now().await;
        }
    }
}

/// The watch of resting streams' read sides, when streams rest and the kernel gives one.
fn config_watch(rest_idle: bool) -> Option<watch::Watch> {
    rest_idle.then(watch::Watch::new).and_then(Result::ok)
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
        let rest_idle = config.rest_idle;
        let quota = quota::Quota::new(config.max_streams_per_token);
        let subscriptions = match (&config.mercure_path, config.mercure_subscriptions) {
            (Some(hub), true) => Some(Arc::new(subscriptions::Tracker::new(hub))),
            _ => None,
        };
        Arc::new(Ctx {
            subscriptions,
            config,
            hub,
            stats,
            log,
            shutdown,
            cors,
            port,
            quota,
            connections: Arc::new(AtomicUsize::new(0)),
            streams_alive: AtomicUsize::new(0),
            handover: handover::Phase::default(),
            watch: config_watch(rest_idle),
            streams: std::sync::OnceLock::new(),
            rest_clock: rest_clock::RestClock::new(writer::REST_AFTER),
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
    /// Every listener with the routes it serves; the first is [`Server::local_addr`].
    listeners: Vec<(TcpListener, SocketAddr, Scope)>,
    ctx: Arc<Ctx>,
    systemd: Option<Systemd>,
    /// What `SIGUSR2` starts, and where its requests arrive.
    upgrade: Option<(handover::Upgrade, async_channel::Receiver<()>)>,
    /// A successor's streams, rebuilt, and the channel to confirm on.
    inherited: Option<Successor>,
    /// Gives free heap pages back after a burst of connections (see `release.rs`).
    release: Option<release::Release>,
}

/// What a successor took over, to start serving in [`Server::run`].
struct Successor {
    streams: Vec<(socket::TcpConn, stream::Opened)>,
    channel: std::os::unix::net::UnixStream,
}

impl fmt::Debug for Successor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Successor")
            .field("streams", &self.streams.len())
            .finish()
    }
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
        // std listens with an accept queue of 128: too few for thousands of subscribers
        // reconnecting at once after a restart. Listening again raises it (the kernel
        // caps it at net.core.somaxconn); if that fails, the old queue stays.
        let _ = rustix::net::listen(&std, ACCEPT_QUEUE);
        let local = std.local_addr().map_err(bind_err)?;
        let listener = TcpListener::try_from(std).map_err(bind_err)?;
        Server::open(config, vec![(listener, local, Scope::All)], log, shutdown)
    }

    /// Serves on listeners the service manager opened (socket activation,
    /// [`crate::daemon::inherited`]) instead of binding `config.bind`. A listener named
    /// `public` serves only `/stream`, `/health` and `/` (the rest answers `404`
    /// there); any other name serves every route. The publish port is opened as in
    /// [`Server::bind`].
    ///
    /// # Errors
    ///
    /// [`Error::Inherited`] when a listener's address cannot be read; [`Error::Port`] as
    /// in [`Server::bind`].
    pub fn from_inherited(
        config: Config,
        inherited: Vec<Inherited>,
        log: Log,
        shutdown: Shutdown,
    ) -> Result<Server, Error> {
        let mut listeners = Vec::with_capacity(inherited.len());
        for Inherited { name, listener } in inherited {
            let err = |source| Error::Inherited {
                name: name.clone(),
                source,
            };
            let addr = listener.local_addr().map_err(err)?;
            let listener = TcpListener::try_from(listener).map_err(err)?;
            listeners.push((listener, addr, Scope::of_name(&name)));
        }
        Server::open(config, listeners, log, shutdown)
    }

    /// Opens the publish port for a server on `listeners`.
    fn open(
        config: Config,
        listeners: Vec<(TcpListener, SocketAddr, Scope)>,
        log: Log,
        shutdown: Shutdown,
    ) -> Result<Server, Error> {
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
            listeners,
            ctx,
            systemd: None,
            upgrade: None,
            inherited: None,
            release: None,
        })
    }

    /// A successor's server: it serves on the listeners, the history and the live
    /// streams its predecessor handed over ([`handover::receive`]), and confirms once it
    /// runs ([`Server::run`]). The publish port is the in-memory one, going on from the
    /// predecessor's history, or with `--history-file` the file, read again.
    ///
    /// # Errors
    ///
    /// [`Error::Handover`] when what was received cannot be used; [`Error::Port`] when
    /// the history file cannot be opened.
    pub fn from_handover(
        config: Config,
        received: handover::Received,
        log: Log,
        shutdown: Shutdown,
    ) -> Result<Server, Error> {
        let got = handover::inherit(received).map_err(Error::Handover)?;
        let mut listeners = Vec::with_capacity(got.listeners.len());
        for (std, scope) in got.listeners {
            let err = |e: io::Error| Error::Handover(format!("a handed listener: {e}"));
            let addr = std.local_addr().map_err(err)?;
            listeners.push((TcpListener::try_from(std).map_err(err)?, addr, scope));
        }
        let stats = Arc::new(Stats::new());
        let store = match (&config.redis, &config.history_file) {
            (Some(redis), _) => Some(Store::Redis(redis.clone())),
            (None, Some(path)) => Some(Store::File {
                path: path.clone(),
                fsync: config.fsync,
            }),
            (None, None) => None,
        };
        let (hub, port) = match store {
            // The file holds what the predecessor's history held: it is read again; a
            // broker's node loads the stream's tail and reads on.
            Some(store) => {
                Port::open(&store, config.hub, stats.clone(), log.clone()).map_err(Error::Port)?
            }
            None => {
                let hub = Hub::resumed(config.hub, stats.clone(), log.clone(), got.history);
                let port = Port::memory(&hub);
                (hub, port)
            }
        };
        let ctx = Ctx::with(config, log, shutdown, stats, hub, port);
        let mut streams = Vec::with_capacity(got.streams.len());
        for (std, state) in got.streams {
            // A socket that cannot be registered is dropped (its client reconnects).
            let Ok(conn) = socket::TcpConn::from_std(std) else {
                continue;
            };
            let after = got.resume_after.as_deref();
            if let Some(opened) = handover::rebuild_stream(&ctx, &conn, state, after) {
                streams.push((conn, opened));
            }
        }
        Ok(Server {
            listeners,
            ctx,
            systemd: None,
            upgrade: None,
            inherited: Some(Successor {
                streams,
                channel: got.channel,
            }),
            release: None,
        })
    }

    /// Hands over to `upgrade` (a new process of the binary) whenever the returned
    /// trigger is pulled (the binary pulls it on `SIGUSR2`): see `server/handover/`.
    pub fn upgrade_on(mut self, upgrade: handover::Upgrade) -> (Server, handover::UpgradeTrigger) {
        let (trigger, requests) = handover::trigger();
        self.upgrade = Some((upgrade, requests));
        (self, trigger)
    }

    /// Calls `release` (the binary passes glibc's `malloc_trim(0)`) once a burst of
    /// connections is over, so the heap's free pages between the subscribers that stayed
    /// go back to the system (see `server/release.rs` for when). Without it the holes a
    /// burst leaves stay resident.
    pub fn release_memory_with(mut self, release: release::Release) -> Server {
        self.release = Some(release);
        self
    }

    /// Tells the service manager through `notifier`: `READY=1` once serving, `STATUS=`
    /// (clients and events) every period, `STOPPING=1` at shutdown; with `watchdog`
    /// (`WATCHDOG_USEC`), `WATCHDOG=1` every half of it while the accept loops and the
    /// writers make progress (see `server/watchdog.rs` for what that means).
    /// `stall_file` is the test hook [`crate::daemon::STALL_ACCEPT_HOOK`].
    pub fn notify(
        mut self,
        notifier: Notifier,
        watchdog: Option<Duration>,
        stall_file: Option<PathBuf>,
    ) -> Server {
        self.systemd = Some(Systemd {
            notifier,
            watchdog,
            stall_file,
        });
        self
    }

    /// The address actually bound (useful with port 0); with several listeners, the
    /// first one's.
    ///
    /// # Panics
    ///
    /// When socket activation handed down no listener (the binary refuses that).
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0].1
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
        // Direct write jobs are written by one task on the request thread, in the order
        // they come, one chunk of sockets per poll (`help_with`): the publish is
        // answered at once, and the next one is taken in between chunks (its frames
        // then go out with this one's, in one write per socket, to the sockets not yet
        // written). Taken in turns, two jobs would delay the first one's last sockets
        // by the whole second job. A job of up to `SHARE_UP_TO` sockets is shared with
        // a task on each writer thread, in the same order; a bigger one is not (see
        // there). Each socket is in one job at most (it is lent), so the jobs waiting
        // hold at most one entry per subscriber.
        let _ = ctx.streams.set(Arc::downgrade(&streams));
        let helpers = ctx.config.threads;
        let (to_write, jobs) = async_channel::unbounded::<Arc<SharedJob>>();
        let (to_help, helps) = async_channel::unbounded::<Arc<SharedJob>>();
        let _writing = ex.spawn(help_with(jobs));
        let _helping: Vec<_> = (0..helpers)
            .map(|_| streams.spawn(help_with(helps.clone())))
            .collect();
        // The job the request thread was given last: while it is not all taken when
        // the next one comes, the server is behind, and the writer threads help with
        // both (see `SHARE_UP_TO`).
        let last = std::sync::Mutex::new(std::sync::Weak::<SharedJob>::new());
        ctx.hub.set_direct_runner(move |job| {
            let small = job.len() <= SHARE_UP_TO;
            let job = Arc::new(job.shared());
            let behind = {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                let before = last.upgrade().filter(|j| !j.all_taken());
                *last = Arc::downgrade(&job);
                before
            };
            let this = (small || behind.is_some()).then_some(&job);
            for shared in behind.iter().chain(this) {
                for _ in 0..helpers {
                    let _ = to_help.try_send(shared.clone());
                }
            }
            // Closed only once the server has returned: then write it here.
            if let Err(e) = to_write.try_send(job) {
                e.into_inner().help_all();
            }
        });
        let producers = Producers::spawn(&ex, &ctx.config, &ctx.hub, &ctx.port, &ctx.log);
        // Resting streams' read sides (`watch.rs`), and the clock that wakes writers
        // waiting to rest (`rest_clock.rs`), until the server returns.
        let watching = {
            let ctx = ctx.clone();
            ex.spawn(async move {
                let clock = ctx.rest_clock.run();
                match &ctx.watch {
                    Some(w) => w.run().or(clock).await,
                    None => clock.await,
                }
            })
        };
        let releaser = self.release.map(|f| {
            let ctx = ctx.clone();
            ex.spawn(async move { release::run(&ctx.stats, &ctx.log, f).await })
        });
        let reader = ctx.port.start(&ex, &ctx.shutdown);
        let announcer = ctx
            .subscriptions
            .clone()
            .map(|tracker| ex.spawn(subscriptions::run(tracker, ctx.port.clone())));
        let (guard, all_done) = Guard::new();
        let mut probes = Probes::default();
        let stall = self.systemd.as_ref().and_then(|s| s.stall_file.clone());
        let mut loops = Vec::with_capacity(self.listeners.len());
        let upgrader = self.upgrade.map(|(upgrade, requests)| {
            let listeners = self
                .listeners
                .iter()
                .map(|(l, _, s)| (l.clone(), *s))
                .collect();
            let notifier = self
                .systemd
                .as_ref()
                .and_then(|s| s.notifier.try_clone().ok());
            let driver = handover::Driver {
                upgrade,
                listeners,
                notifier,
            };
            ex.spawn(handover::serve_requests(ctx.clone(), requests, driver))
        });
        for (listener, addr, scope) in self.listeners {
            match scope {
                Scope::All => ctx.log.line(format_args!("listening on {addr}")),
                Scope::Public => ctx.log.line(format_args!("listening on {addr} (public)")),
            }
            let pulse = self.systemd.as_ref().map(|_| probes.pulse(stall.clone()));
            let accept = accept::accept_loop(
                listener,
                scope,
                pulse,
                ex.clone(),
                streams.clone(),
                ctx.clone(),
                guard.clone(),
            );
            loops.push(ex.spawn(accept));
        }
        if let Some(mut successor) = self.inherited {
            let n = successor.streams.len();
            for (conn, opened) in successor.streams {
                // A handed stream may rest again here, like any other (see `rest.rs`).
                let (slot, _) = accept::Slot::take(&ctx);
                let home = rest::Home::new(ctx.clone(), slot.into_counted(&ctx));
                streams
                    .spawn(stream::write_stream(conn, opened, home))
                    .detach();
            }
            if let Some(systemd) = &self.systemd {
                // Before the confirmation: the predecessor exits right after it, and
                // the manager must know the service's new main process by then.
                let _ = systemd.notifier.main_pid();
            }
            match handover::confirm(&mut successor.channel) {
                Ok(()) => ctx.log.line(format_args!("took over {n} streams")),
                Err(e) => ctx.log.line(format_args!(
                    "could not confirm the handover ({e}); the predecessor serves on"
                )),
            }
        }
        let watcher = self.systemd.map(|systemd| {
            let (ctx, streams) = (ctx.clone(), streams.clone());
            let _ = systemd
                .notifier
                .ready(&format!("serving: {}", watchdog::status_line(&ctx)));
            ex.spawn(async move {
                watchdog::watch(&systemd, probes, &ctx, streams).await;
                systemd
            })
        });
        for accept in loops {
            accept.await;
        }
        let handed = ctx.handover.committed();
        if let Some(watcher) = watcher {
            let systemd = watcher.await;
            if !handed {
                // (After a handover the successor is the service: it says so itself.)
                let _ = systemd
                    .notifier
                    .stopping(&format!("stopping: {}", watchdog::status_line(&ctx)));
            }
        }
        drop(upgrader);
        drop(releaser);
        if handed {
            // The successor writes the streams now: no task here may touch a socket
            // again (no close, no shutdown), so none is waited for. Dropping the
            // executors closes this process's descriptors only.
            drop(producers);
            drop(reader);
            drop(announcer);
            ctx.hub.forget_all();
            return ctx.stats.snapshot();
        }
        drop(producers);
        drop(reader);
        drop(announcer);
        drop(guard);
        // Without a handover, the streams end at random times over the drain's spread
        // (`hub/drain.rs`), so their clients do not all reconnect at once.
        let finished = async {
            ctx.hub.close_spread(ctx.config.drain_spread()).await;
            all_done.wait_all_dropped().await;
            // The streams past their request phase keep no guard: counted instead.
            while ctx.streams_alive.load(Ordering::Acquire) > 0 {
                Timer::after(STREAMS_GONE_POLL).await;
            }
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
                all_done.alive() + ctx.streams_alive.load(Ordering::Acquire)
            ));
        }
        drop(watching);
        ctx.stats.snapshot()
    }

    /// Runs the server until shutdown completes: the request executor on the calling
    /// thread, the stream executor on `config.threads` threads of its own (with 0, or
    /// when no thread could be started, on the calling thread as well).
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
        let serve = self.run(ex.clone(), streams.clone());
        // `--threads 0`: the stream executor runs on this thread too.
        let snapshot = if threads.is_empty() {
            futures_lite::future::block_on(ex.run(streams.run(serve)))
        } else {
            futures_lite::future::block_on(ex.run(serve))
        };
        stop_tx.close();
        for t in threads {
            let _ = t.join();
        }
        // Dropping the executors cancels whatever is left.
        drop((ex, streams));
        snapshot
    }
}
