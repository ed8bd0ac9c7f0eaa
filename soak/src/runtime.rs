//! What every task of a run shares: the [`Rt`] with its configuration, counters,
//! signals and server samples, and the timing and connection helpers.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_channel::{Receiver, Sender};
use async_io::Timer;
use async_net::TcpStream;
use futures_lite::{AsyncWriteExt, Future, FutureExt};

use crate::args::{Config, EVENT_NAME, Style};
use crate::check::ResetReason;
use crate::cluster::ClusterRt;
use crate::histogram::{Histogram, Sum};
use crate::http;
use crate::procfs::{self, Sample};
use crate::server::Restart;

/// Buffer for a response head (and a slow client's drain). **Unit:** bytes.
pub(crate) const READ_BUF: usize = 4096;
/// Deadline for a TCP connect, a request write, or a response head.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connection handshakes in progress at once (keeps the server's accept backlog
/// from overflowing when `--connect-rate` is 0).
const MAX_HANDSHAKES: usize = 256;
/// Error messages kept for the report.
const MAX_ERRORS: usize = 10;

/// A one-shot broadcast signal.
#[derive(Debug)]
pub(crate) struct Signal {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Default for Signal {
    fn default() -> Self {
        let (tx, rx) = async_channel::bounded(1);
        Signal { tx, rx }
    }
}

impl Signal {
    /// Fires the signal (idempotent).
    pub(crate) fn fire(&self) {
        self.tx.close();
    }

    /// Whether it has fired.
    pub(crate) fn fired(&self) -> bool {
        self.rx.is_closed()
    }

    /// Waits until it fires.
    pub(crate) async fn wait(&self) {
        let _ = self.rx.recv().await;
    }
}

/// Runs `fut` until it finishes (`Some`), `stop` fires or `deadline` passes (`None`).
pub(crate) async fn until<T>(
    fut: impl Future<Output = T>,
    stop: &Signal,
    deadline: Option<Instant>,
) -> Option<T> {
    async { Some(fut.await) }
        .or(async {
            stop.wait().await;
            None
        })
        .or(async {
            match deadline {
                Some(d) => {
                    Timer::at(d).await;
                }
                None => futures_lite::future::pending::<()>().await,
            }
            None
        })
        .await
}

/// Sleeps until `at`; false when `stop` fired first.
pub(crate) async fn sleep_until(at: Instant, stop: &Signal) -> bool {
    until(Timer::at(at), stop, None).await.is_some()
}

/// Microseconds since the Unix epoch.
pub(crate) fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The kind of a subscriber, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A steady subscriber.
    Steady = 0,
    /// A short-lived churn client.
    Churn = 1,
    /// A client that hangs up and resumes with `Last-Event-ID`.
    Reconnect = 2,
}

/// Counters per [`Role`].
#[derive(Debug, Default)]
pub(crate) struct PerRole {
    /// Missing events no reset announced (failures).
    pub(crate) gaps: AtomicU64,
    /// Missing events a reset event announced before them.
    pub(crate) announced_gaps: AtomicU64,
    /// Events seen twice.
    pub(crate) duplicates: AtomicU64,
    /// Events older than one already seen.
    pub(crate) out_of_order: AtomicU64,
}

/// All counters of a run.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Checks per role.
    pub(crate) roles: [PerRole; 3],
    /// Steady clients that got a `200 text/event-stream` head.
    pub(crate) connected: AtomicU64,
    /// Steady clients connected right now.
    pub(crate) connected_now: AtomicU64,
    /// Steady clients that could not connect.
    pub(crate) connect_failures: AtomicU64,
    /// Steady clients whose stream the server closed.
    pub(crate) dropped: AtomicU64,
    /// Initial (steady and slow) clients that connected or failed.
    pub(crate) initial_resolved: AtomicU64,
    /// Own events received by steady and churn clients.
    pub(crate) received: Sum,
    /// Events received by all subscribers that were not the tool's own.
    pub(crate) foreign: Sum,
    /// Comment lines received (heartbeats and others).
    pub(crate) comments: Sum,
    /// Body bytes received by subscribers.
    pub(crate) bytes: Sum,
    /// Events without a `seq` in their data (`--no-publish`: not checked).
    pub(crate) unsequenced: AtomicU64,
    /// Reset events received, by reason (in `check::ResetReason::ALL` order).
    pub(crate) resets: [AtomicU64; ResetReason::ALL.len()],
    /// Reset events other than `lost` on streams that sent no `Last-Event-ID` (never
    /// expected).
    pub(crate) unexpected_resets: AtomicU64,
    /// Events published (answered 200).
    pub(crate) published: AtomicU64,
    /// Failed publish requests.
    pub(crate) publish_errors: AtomicU64,
    /// Sum of `delivered_to` in publish answers.
    pub(crate) delivered_to: AtomicU64,
    /// Slow clients that connected and sent their request.
    pub(crate) slow_connected: AtomicU64,
    /// Slow clients that could not connect.
    pub(crate) slow_failed: AtomicU64,
    /// Slow clients whose connection the server closed.
    pub(crate) slow_evicted: AtomicU64,
    /// Slow clients still served at the check.
    pub(crate) slow_not_evicted: AtomicU64,
    /// Slow clients whose check finished.
    pub(crate) slow_done: AtomicU64,
    /// Bytes slow clients drained at the check.
    pub(crate) slow_drained_bytes: AtomicU64,
    /// Churn sessions that connected.
    pub(crate) churn_sessions: AtomicU64,
    /// Churn sessions that could not connect.
    pub(crate) churn_failed: AtomicU64,
    /// Churn sessions the server closed early.
    pub(crate) churn_dropped: AtomicU64,
    /// Reconnect sessions started.
    pub(crate) reconnect_sessions: AtomicU64,
    /// Reconnections made with a `Last-Event-ID`.
    pub(crate) reconnects: AtomicU64,
    /// Reconnections after which at least one own event arrived (continuity checked).
    pub(crate) reconnects_checked: AtomicU64,
    /// Reconnect sessions that could not connect or were closed by the server.
    pub(crate) reconnect_failed: AtomicU64,
    /// Reconnect sessions that saw no event id before hanging up (nothing to resume).
    pub(crate) reconnect_no_id: AtomicU64,
    /// Churn and reconnect sessions alive.
    pub(crate) in_flight: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Reads a counter.
pub(crate) fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// State of a steady subscriber, visible to the tail check. On a cache line of its own:
/// the slots of subscribers served by different threads do not share one.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Slot {
    /// 0 pending, 1 connected, 2 failed, 3 closed by the server, 4 stopped.
    pub(crate) state: AtomicU8,
    /// The first sequence number it must see.
    pub(crate) must_from: AtomicU64,
    /// The newest own sequence number it saw (0: none).
    pub(crate) last_seq: AtomicU64,
}

/// [`Slot::state`] of a subscriber that got its stream.
pub(crate) const CONNECTED: u8 = 1;

/// Server samples taken during the run.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Samples {
    /// At start.
    pub(crate) start: Option<Sample>,
    /// Once all initial clients were connected.
    pub(crate) baseline: Option<Sample>,
    /// At the end.
    pub(crate) end: Option<Sample>,
    /// Highest RSS seen. **Unit:** KiB.
    pub(crate) peak_rss_kib: Option<u64>,
    /// Seconds from start to the baseline sample.
    pub(crate) baseline_at_secs: Option<f64>,
    /// Whether all initial clients were resolved when the baseline was taken.
    pub(crate) baseline_complete: bool,
}

/// What every task of the run shares.
#[derive(Debug)]
pub(crate) struct Rt {
    /// The configuration.
    pub(crate) cfg: Config,
    /// The counters.
    pub(crate) c: Counters,
    /// Publish → receive latency. **Unit:** microseconds.
    pub(crate) latency: Histogram,
    /// Steady subscriber slots.
    pub(crate) slots: Vec<Slot>,
    /// Highest sequence number whose publish request was started.
    pub(crate) sent_seq: AtomicU64,
    /// Highest sequence number the server acknowledged.
    pub(crate) acked_seq: AtomicU64,
    /// Fires at the end of the active phase.
    pub(crate) active: Signal,
    /// Fires when everything must stop.
    pub(crate) stop: Signal,
    /// Fires once the initial clients are connected and the baseline was sampled.
    pub(crate) baseline_taken: Signal,
    /// When the first publish request was sent.
    pub(crate) publish_started: Mutex<Option<Instant>>,
    /// Server samples.
    pub(crate) samples: Mutex<Samples>,
    /// The first error messages.
    pub(crate) errors: Mutex<Vec<String>>,
    /// When the run started.
    pub(crate) t0: Instant,
    /// End of the active phase.
    pub(crate) active_end: Instant,
    /// The hard end of the run.
    pub(crate) end_at: Instant,
    /// Restart mode's shared state (unused without `--server-cmd`).
    pub(crate) restart: Restart,
    next_dest: AtomicUsize,
    handshakes: (Sender<()>, Receiver<()>),
    /// Nodes, the order check, outages, extra processes (`cluster.rs`).
    pub(crate) cluster: ClusterRt,
}

impl Rt {
    /// Shared state for a run of `cfg` starting now.
    pub(crate) fn new(cfg: Config) -> Rt {
        let t0 = Instant::now();
        let d = cfg.duration;
        let tail = crate::args::tail_of(d);
        Rt {
            slots: (0..cfg.clients).map(|_| Slot::default()).collect(),
            c: Counters::default(),
            latency: Histogram::new(),
            sent_seq: AtomicU64::new(0),
            acked_seq: AtomicU64::new(0),
            active: Signal::default(),
            stop: Signal::default(),
            baseline_taken: Signal::default(),
            publish_started: Mutex::new(None),
            samples: Mutex::new(Samples::default()),
            errors: Mutex::new(Vec::new()),
            t0,
            active_end: t0 + d - tail,
            end_at: t0 + d,
            restart: Restart::default(),
            next_dest: AtomicUsize::new(0),
            handshakes: async_channel::bounded(MAX_HANDSHAKES),
            cluster: ClusterRt::new(&cfg),
            cfg,
        }
    }

    /// Whether the tool publishes (own events carry `seq`).
    pub(crate) fn publishing(&self) -> bool {
        self.cfg.publish.is_some()
    }

    /// Whether an event with this type is one of the tool's own: named `soak`, or, when
    /// publishing to nchan (which may not name its events), unnamed.
    pub(crate) fn own_event_name(&self, event: &[u8]) -> bool {
        event == EVENT_NAME.as_bytes()
            || (event.is_empty()
                && self
                    .cfg
                    .publish
                    .as_ref()
                    .is_some_and(|p| p.style == Style::Nchan))
    }

    /// Whether a gap in what a subscriber sees is an error: always for own events; for
    /// server ids (`--no-publish`) only without a topic filter, since ids are global.
    pub(crate) fn count_gaps(&self) -> bool {
        self.publishing() || self.cfg.topics.is_empty()
    }

    /// Keeps an error message for the report (the first few) and logs it.
    pub(crate) fn error(&self, msg: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() < MAX_ERRORS {
            eprintln!("ssehub-soak: {msg}");
            errors.push(msg);
        }
    }

    fn dest(&self) -> SocketAddr {
        let i = self.next_dest.fetch_add(1, Ordering::Relaxed);
        self.cfg.dests[i % self.cfg.dests.len()]
    }

    pub(crate) fn sample_server(&self) -> Option<Sample> {
        let pid = self.cfg.server_pid?;
        match procfs::sample(&pid.to_string()) {
            Ok(s) => {
                let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
                samples.peak_rss_kib = Some(samples.peak_rss_kib.unwrap_or(0).max(s.rss_kib));
                Some(s)
            }
            Err(e) => {
                self.error(format!("cannot sample server pid {pid}: {e}"));
                None
            }
        }
    }

    pub(crate) fn secs(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }
}

/// The request target of the subscribers' `GET` under `prefix` (a node's path prefix):
/// the subscribe path, the topics, and `--subscribe-token` in the query.
pub(crate) fn stream_target(cfg: &Config, prefix: &str) -> String {
    let mut target = http::stream_target_at(prefix, &cfg.subscribe_path, &cfg.topics);
    if let Some(token) = &cfg.subscribe_token {
        let sep = if target.contains('?') { '&' } else { '?' };
        target.push(sep);
        target.push_str("authorization=");
        target.push_str(&http::encode_component(token));
    }
    target
}

/// Connects to the next destination, with the handshake limit and [`IO_TIMEOUT`].
pub(crate) async fn connect(rt: &Rt, stop: &Signal) -> io::Result<TcpStream> {
    connect_to(rt, rt.dest(), stop).await
}

/// Connects to `dest`, with the handshake limit and [`IO_TIMEOUT`].
pub(crate) async fn connect_to(rt: &Rt, dest: SocketAddr, stop: &Signal) -> io::Result<TcpStream> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let gone = || io::Error::new(io::ErrorKind::Interrupted, "stopped");
    match until(rt.handshakes.0.send(()), stop, Some(deadline)).await {
        Some(Ok(())) => {}
        None if !stop.fired() => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "connect {dest}: no handshake slot within 5 s ({MAX_HANDSHAKES} connections still in their handshake)"
                ),
            ));
        }
        _ => return Err(gone()),
    }
    let r = until(TcpStream::connect(dest), stop, Some(deadline)).await;
    let _ = rt.handshakes.1.try_recv();
    match r {
        Some(Ok(s)) => Ok(s),
        Some(Err(e)) => Err(io::Error::new(e.kind(), format!("connect {dest}: {e}"))),
        None if stop.fired() => Err(gone()),
        None => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connect {dest}: timed out"),
        )),
    }
}

/// Writes all of `bytes` within [`IO_TIMEOUT`].
pub(crate) async fn write_timed(s: &mut TcpStream, bytes: &[u8], stop: &Signal) -> io::Result<()> {
    match until(s.write_all(bytes), stop, Some(Instant::now() + IO_TIMEOUT)).await {
        Some(r) => r,
        None => Err(io::ErrorKind::TimedOut.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_events_and_stream_target() {
        let rt = |args: &[&str]| match crate::args::parse(args.iter().copied()) {
            Ok(crate::args::Command::Run(c)) => Rt::new(*c),
            other => panic!("{other:?}"),
        };
        let ssehub = rt(&["--duration", "5"]);
        assert!(ssehub.own_event_name(b"soak"));
        assert!(!ssehub.own_event_name(b"") && !ssehub.own_event_name(b"tick"));
        assert_eq!(ssehub.cluster.stream_target(0), "/stream");
        // A subscriber token rides in the query, after the topics.
        let with_token = rt(&[
            "--duration",
            "5",
            "--topic",
            "a",
            "--subscribe-token",
            "x.y+z",
            "--private-every",
            "10",
        ]);
        assert_eq!(
            with_token.cluster.stream_target(0),
            "/stream?topic=a&authorization=x.y%2Bz"
        );
        assert_eq!(
            with_token.cfg.publish.as_ref().map(|p| p.private_every),
            Some(10)
        );
        let nchan = rt(&[
            "--duration",
            "5",
            "--publish-style",
            "nchan",
            "--subscribe-path",
            "/sub",
        ]);
        assert!(nchan.own_event_name(b"soak") && nchan.own_event_name(b""));
        assert!(!nchan.own_event_name(b"tick"));
        assert_eq!(nchan.cluster.stream_target(0), "/sub");
    }
}
