//! What every task of a run shares: the [`Rt`] with its configuration, counters,
//! signals and server samples. It sits on top of the parts it holds ([`ClusterRt`],
//! [`Restart`], [`Dialer`]), which take only what they need, never an `Rt`.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use async_net::TcpStream;

use crate::args::{Config, EVENT_NAME, Style};
use crate::cluster::ClusterRt;
use crate::counters::{Counters, Slot};
use crate::dial::Dialer;
use crate::histogram::Histogram;
use crate::procfs::{self, Sample};
use crate::server::Restart;
use crate::signal::Signal;

/// Error messages kept for the report.
const MAX_ERRORS: usize = 10;

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
    /// Connects with a limit on handshakes in progress.
    pub(crate) dial: Dialer,
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
            dial: Dialer::new(cfg.bind_sources.clone()),
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

/// Connects to the next destination (`--url`'s addresses in turn).
pub(crate) async fn connect(rt: &Rt, stop: &Signal) -> io::Result<TcpStream> {
    rt.dial.connect(rt.dest(), stop).await
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
