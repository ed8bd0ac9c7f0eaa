//! Several nodes, outages and extra processes, at run time and in the report.
//!
//! - **Nodes** (one per `--url`): steady and slow clients go to node `i mod N`, churn
//!   and reconnect clients to the next node in turn, and a reconnecting client resumes
//!   on the node after the one it left, so its `Last-Event-ID` is replayed by another
//!   node. Each node counts its subscribers for the report.
//! - **One order** ([`crate::order`]): with several nodes, every stream's blocks of
//!   events are compared with every other stream's.
//! - **A `lost` reset** (the server's broker lost entries this node had not read, e.g.
//!   Redis restarted without persistence) may come on any stream, resumed or not: it
//!   announces the gap after it. Each node counts its steady subscribers that got one.
//! - **Publishing unavailable** (`503`): counted apart from other publish errors, with
//!   the stretches it lasted; a failure unless `--tolerate-unavailable`, and then still
//!   one when publishing had not recovered at the end.
//! - **Extra processes** (`--extra-pid`): CPU and RSS sampled at start, at the baseline
//!   and at the end, like the server's.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_net::TcpStream;
use serde::Serialize;

use crate::args::{Config, PublishTo};
use crate::check::ResetReason;
use crate::counters::{Role, add, get};
use crate::dial::Dialer;
use crate::http;
use crate::order::{BLOCK, BlockDigest, Offer, OrderTable};
use crate::procfs::{self, Sample};
use crate::signal::Signal;

/// How long the publisher waits after a `503` before it tries again. **Why:** short,
/// so that the report says within a quarter second when publishing recovered (the
/// server's `Retry-After` is in whole seconds).
pub(crate) const UNAVAILABLE_RETRY: Duration = Duration::from_millis(250);

/// Subscribers per node.
#[derive(Debug, Default)]
pub(crate) struct NodeCounters {
    steady: AtomicU64,
    steady_lost: AtomicU64,
    slow: AtomicU64,
    churn: AtomicU64,
    reconnect_first: AtomicU64,
    resumed: AtomicU64,
    resets: AtomicU64,
}

/// One node at run time.
#[derive(Debug)]
pub(crate) struct NodeRt {
    url: String,
    host: String,
    stream_target: String,
    dests: Vec<SocketAddr>,
    next_dest: AtomicUsize,
    c: NodeCounters,
}

/// Samples of one `--extra-pid`.
#[derive(Debug, Clone, Copy, Default)]
struct ExtraSamples {
    pid: u32,
    start: Option<Sample>,
    baseline: Option<Sample>,
    end: Option<Sample>,
}

/// When a sample is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// At the start of the run.
    Start,
    /// Once every initial client connected.
    Baseline,
    /// At the end.
    End,
}

/// `503` answers to publishing.
#[derive(Debug, Default)]
struct Unavailable {
    answers: AtomicU64,
    /// Of those, refused events not tried again (optional).
    abandoned: AtomicU64,
    stretches: AtomicU64,
    total_us: AtomicU64,
    longest_us: AtomicU64,
    /// The publisher's last answer was a `503`.
    now: AtomicBool,
}

/// The run-time state of this file, one per run (in the run's `Rt`). Its methods take
/// what they need besides it (a [`Dialer`]), and hand back what the run keeps (an error
/// message, the report's part), so this file does not know the `Rt`.
#[derive(Debug)]
pub(crate) struct ClusterRt {
    nodes: Vec<NodeRt>,
    /// Where publishing goes (`--publish-to`), for the report.
    publish_to: PublishTo,
    /// Whether `503`s are expected (`--tolerate-unavailable`).
    tolerate_unavailable: bool,
    /// The next node per kind of subscriber, so that each kind is spread evenly.
    next_node: [AtomicUsize; 3],
    /// The shared block digests (with several nodes only).
    order: Option<OrderTable>,
    extra: Mutex<Vec<ExtraSamples>>,
    unavailable: Unavailable,
    /// Sequence numbers whose publish was answered `503` and not tried again (in
    /// order): they may or may not reach subscribers.
    optional: Mutex<Vec<u64>>,
}

/// The request target of the subscribers' `GET` under `prefix` (a node's path prefix):
/// the subscribe path, the topics, and `--subscribe-token` in the query.
fn stream_target(cfg: &Config, prefix: &str) -> String {
    let mut target = http::stream_target_at(prefix, &cfg.subscribe_path, &cfg.topics);
    if let Some(token) = &cfg.subscribe_token {
        let sep = if target.contains('?') { '&' } else { '?' };
        target.push(sep);
        target.push_str("authorization=");
        target.push_str(&http::encode_component(token));
    }
    target
}

/// Per-stream state of this file, in the subscriber's `StreamState`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StreamExtra {
    /// The node it connects to.
    pub(crate) node: usize,
    saw_lost: bool,
    /// The last reset event's reason on this stream, and how many events ago.
    last_reset: Option<(ResetReason, u64)>,
    digest: BlockDigest,
}

impl ClusterRt {
    /// The nodes of `cfg`.
    pub(crate) fn new(cfg: &Config) -> ClusterRt {
        let nodes = cfg
            .cluster
            .nodes
            .iter()
            .map(|n| NodeRt {
                url: n.url.clone(),
                host: n.base.host.clone(),
                stream_target: stream_target(cfg, &n.base.prefix),
                dests: n.dests.clone(),
                next_dest: AtomicUsize::new(0),
                c: NodeCounters::default(),
            })
            .collect();
        ClusterRt {
            nodes,
            publish_to: cfg.cluster.publish_to.unwrap_or(PublishTo::One),
            tolerate_unavailable: cfg.cluster.tolerate_unavailable,
            next_node: Default::default(),
            order: cfg.cluster.several().then(OrderTable::default),
            extra: Mutex::new(
                cfg.cluster
                    .extra_pids
                    .iter()
                    .map(|&pid| ExtraSamples {
                        pid,
                        ..ExtraSamples::default()
                    })
                    .collect(),
            ),
            unavailable: Unavailable::default(),
            optional: Mutex::new(Vec::new()),
        }
    }

    /// The node of the `i`-th steady (or slow) client.
    pub(crate) fn node_of(&self, i: usize) -> usize {
        i % self.nodes.len()
    }

    /// The next node in turn for a client of `role` (churn and reconnect clients).
    pub(crate) fn next_node(&self, role: Role) -> usize {
        self.next_node[role as usize].fetch_add(1, Ordering::Relaxed) % self.nodes.len()
    }

    /// The node a client that left `node` resumes on: another one, when there is one.
    pub(crate) fn other_node(&self, node: usize) -> usize {
        (node + 1) % self.nodes.len()
    }

    /// The request target of the subscribers' `GET` on `node`.
    pub(crate) fn stream_target(&self, node: usize) -> &str {
        &self.nodes[node].stream_target
    }

    /// Connects to `node` (the next of its destinations).
    pub(crate) async fn connect(
        &self,
        dial: &Dialer,
        node: usize,
        stop: &Signal,
    ) -> io::Result<TcpStream> {
        let n = &self.nodes[node];
        let i = n.next_dest.fetch_add(1, Ordering::Relaxed);
        dial.connect(n.dests[i % n.dests.len()], stop).await
    }

    /// The `GET` request of a stream on `node`.
    pub(crate) fn stream_request(&self, node: usize, last_id: Option<&[u8]>) -> Vec<u8> {
        http::stream_request(self.stream_target(node), &self.nodes[node].host, last_id)
    }

    /// What a subscriber of `role` on `node` is counted as, once it has its stream.
    pub(crate) fn count_connected(&self, role: Role, node: usize, resumed: bool) {
        let c = &self.nodes[node].c;
        add(
            match (role, resumed) {
                (Role::Steady, _) => &c.steady,
                (Role::Churn, _) => &c.churn,
                (Role::Reconnect, false) => &c.reconnect_first,
                (Role::Reconnect, true) => &c.resumed,
            },
            1,
        );
    }

    /// A slow client connected to `node`.
    pub(crate) fn count_slow(&self, node: usize) {
        add(&self.nodes[node].c.slow, 1);
    }

    /// A reset event on a stream; whether it may come on a stream that did not resume (a
    /// `lost` reset: the server's broker lost entries, which any stream may be told).
    pub(crate) fn on_reset(
        &self,
        role: Role,
        extra: &mut StreamExtra,
        reason: ResetReason,
    ) -> bool {
        let c = &self.nodes[extra.node].c;
        add(&c.resets, 1);
        extra.last_reset = Some((reason, 0));
        let lost = reason == ResetReason::Lost;
        if lost && role == Role::Steady && !std::mem::replace(&mut extra.saw_lost, true) {
            add(&c.steady_lost, 1);
        }
        lost
    }

    /// An own event `seq` with `id`: folded into the stream's block digest (several
    /// nodes). `Err`: the block it completed differs from another stream's (a failure;
    /// the message is for the report's errors).
    pub(crate) fn on_event(
        &self,
        role: Role,
        extra: &mut StreamExtra,
        seq: u64,
        id: &[u8],
    ) -> Result<(), String> {
        if let Some((_, since)) = &mut extra.last_reset {
            *since += 1;
        }
        let Some(table) = &self.order else {
            return Ok(());
        };
        match extra.digest.observe(table, seq, id) {
            Some((block, Offer::Mismatch)) => Err(format!(
                "order: events {}..={} reached a {role:?} client on {} in another order, or with other ids, than another subscriber",
                block * BLOCK,
                block * BLOCK + BLOCK - 1,
                self.nodes[extra.node].url
            )),
            _ => Ok(()),
        }
    }

    /// Where a duplicate or out-of-order event came, for the report's errors.
    pub(crate) fn disorder(
        &self,
        role: Role,
        extra: &StreamExtra,
        what: &str,
        seq: u64,
        prev: Option<u64>,
        id: &[u8],
    ) -> String {
        let reset = match extra.last_reset {
            Some((reason, since)) => format!(", {since} events after a {reason:?} reset"),
            None => String::new(),
        };
        format!(
            "{role:?} client on {}: {seq} is {what} (previous {prev:?}, id {:?}{reset})",
            self.nodes[extra.node].url,
            String::from_utf8_lossy(id)
        )
    }

    /// The publisher got a `503`: counted, and the first one logged.
    pub(crate) fn on_unavailable(&self, since: &mut Option<Instant>, target: &str, body: &[u8]) {
        let u = &self.unavailable;
        if get(&u.answers) == 0 {
            eprintln!(
                "ssehub-soak: publisher: POST {target} answered 503 (unavailable{}): {}",
                if self.tolerate_unavailable {
                    ", tolerated"
                } else {
                    ""
                },
                String::from_utf8_lossy(body).trim()
            );
        }
        add(&u.answers, 1);
        u.now.store(true, Ordering::Relaxed);
        since.get_or_insert_with(Instant::now);
    }

    /// A publish of `seq` was answered `503` and is not tried again: the next attempt is
    /// a new event. **Why:** a `503` does not prove that nothing was published. A node
    /// whose `XADD` reached Redis just before Redis died (or the connection broke) never
    /// reads the answer, and reports the broker unavailable, while other nodes may
    /// already have delivered the entry. Trying the same `seq` again would then show as
    /// a duplicate at every subscriber; as a new event, the refused one is optional:
    /// neither a gap when it is missing nor a duplicate when it arrives.
    pub(crate) fn abandon(&self, seq: u64) {
        add(&self.unavailable.abandoned, 1);
        self.optional
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(seq);
    }

    /// How many optional sequence numbers lie in `from..to` (`from`: the number a
    /// stream expected next, if known).
    pub(crate) fn optional_in(&self, from: Option<u64>, to: u64) -> u64 {
        let Some(from) = from else {
            return 0;
        };
        let optional = self.optional.lock().unwrap_or_else(|e| e.into_inner());
        let lo = optional.partition_point(|&s| s < from);
        let hi = optional.partition_point(|&s| s < to);
        hi.saturating_sub(lo) as u64
    }

    /// The publisher got an answer that published: ends a stretch of `503`s.
    pub(crate) fn on_published(&self, since: &mut Option<Instant>) {
        let Some(from) = since.take() else {
            return;
        };
        let u = &self.unavailable;
        let us = from.elapsed().as_micros() as u64;
        add(&u.stretches, 1);
        add(&u.total_us, us);
        u.longest_us.fetch_max(us, Ordering::Relaxed);
        u.now.store(false, Ordering::Relaxed);
    }

    /// Samples the `--extra-pid` processes (a process that is gone gives no sample).
    pub(crate) fn sample_extra(&self, phase: Phase) {
        let mut extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        for e in extra.iter_mut() {
            let s = procfs::sample(&e.pid.to_string()).ok();
            match phase {
                Phase::Start => e.start = s,
                Phase::Baseline => e.baseline = s,
                Phase::End => e.end = s,
            }
        }
    }
}

/// One node in the report.
#[derive(Debug, Serialize)]
pub struct NodeReport {
    /// Its URL.
    pub url: String,
    /// Steady subscribers that got their stream here.
    pub steady: u64,
    /// Of those, subscribers that got a `lost` reset.
    pub steady_lost_reset: u64,
    /// Slow clients that connected here.
    pub slow: u64,
    /// Churn sessions here.
    pub churn_sessions: u64,
    /// Reconnecting clients' first sessions here.
    pub reconnect_first_sessions: u64,
    /// Sessions resumed here, with an id from another node.
    pub resumed_here: u64,
    /// Reset events received here (all kinds of subscriber).
    pub resets: u64,
}

/// The order check across nodes.
#[derive(Debug, Serialize)]
pub struct OrderReport {
    /// Events per block.
    pub block_events: u64,
    /// Blocks some subscriber saw whole.
    pub blocks: u64,
    /// Later digests of a block equal to the first.
    pub comparisons_same: u64,
    /// Later digests of a block that differed (a failure).
    pub mismatches: u64,
}

/// Several nodes.
#[derive(Debug, Serialize)]
pub struct ClusterReport {
    /// Where publishing went.
    pub publish_to: PublishTo,
    /// Per node, in `--url` order.
    pub nodes: Vec<NodeReport>,
    /// One order across nodes.
    pub order: OrderReport,
}

/// `503` answers to publishing.
#[derive(Debug, Serialize)]
pub struct UnavailableReport {
    /// `503` answers.
    pub answers: u64,
    /// Refused events not tried again (`--tolerate-unavailable`: the retry is a new
    /// event); each may or may not reach subscribers.
    pub optional_events: u64,
    /// Stretches of `503`s that ended with a published event.
    pub stretches: u64,
    /// Their total length (first `503` to the next published event). **Unit:** s.
    pub total_secs: f64,
    /// The longest of them. **Unit:** s.
    pub longest_secs: f64,
    /// Whether the publisher's last answer published (false: still unavailable at the
    /// end).
    pub recovered: bool,
    /// Whether `503`s were expected (`--tolerate-unavailable`).
    pub tolerated: bool,
}

/// One `--extra-pid`.
#[derive(Debug, Serialize)]
pub struct ExtraProcess {
    /// The process id.
    pub pid: u32,
    /// CPU time from start to end. **Unit:** s.
    pub cpu_secs: Option<f64>,
    /// CPU time from the baseline to the end. **Unit:** s.
    pub cpu_secs_since_baseline: Option<f64>,
    /// `cpu_secs_since_baseline` per published event. **Unit:** µs.
    pub cpu_us_per_published_event: Option<f64>,
    /// `cpu_secs_since_baseline` per event received by a subscriber. **Unit:** µs.
    pub cpu_us_per_delivered_event: Option<f64>,
    /// RSS at the end. **Unit:** KiB.
    pub rss_kib_end: Option<u64>,
}

/// This file's part of the report, flattened into it; each part is left out when it
/// does not apply, so a run with one `--url` reports as before.
#[derive(Debug, Serialize)]
pub struct Extra {
    /// With several nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
    /// When publishing was answered `503`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_unavailable: Option<UnavailableReport>,
    /// With `--extra-pid`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_processes: Vec<ExtraProcess>,
}

fn secs(us: u64) -> f64 {
    (us as f64 / 1e3).round() / 1e3
}

/// `cpu_secs` per event in µs, rounded to 0.001.
fn per_event(cpu_secs: f64, events: u64) -> Option<f64> {
    (events > 0).then(|| (cpu_secs * 1e6 / events as f64 * 1000.0).round() / 1000.0)
}

impl ClusterRt {
    /// This file's part of the report.
    pub(crate) fn report(&self, published: u64, received: u64) -> Extra {
        let cl = self;
        let cluster = cl.order.as_ref().map(|t| ClusterReport {
            publish_to: cl.publish_to,
            nodes: cl
                .nodes
                .iter()
                .map(|n| NodeReport {
                    url: n.url.clone(),
                    steady: get(&n.c.steady),
                    steady_lost_reset: get(&n.c.steady_lost),
                    slow: get(&n.c.slow),
                    churn_sessions: get(&n.c.churn),
                    reconnect_first_sessions: get(&n.c.reconnect_first),
                    resumed_here: get(&n.c.resumed),
                    resets: get(&n.c.resets),
                })
                .collect(),
            order: OrderReport {
                block_events: BLOCK,
                blocks: get(&t.blocks),
                comparisons_same: get(&t.same),
                mismatches: get(&t.mismatches),
            },
        });
        let u = &cl.unavailable;
        let publish_unavailable = (get(&u.answers) > 0).then(|| UnavailableReport {
            answers: get(&u.answers),
            optional_events: get(&u.abandoned),
            stretches: get(&u.stretches),
            total_secs: secs(get(&u.total_us)),
            longest_secs: secs(get(&u.longest_us)),
            recovered: !u.now.load(Ordering::Relaxed),
            tolerated: cl.tolerate_unavailable,
        });
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let extra_processes = cl
            .extra
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|e| {
                let since_baseline = e.end.zip(e.baseline).map(|(e, b)| e.cpu_secs - b.cpu_secs);
                ExtraProcess {
                    pid: e.pid,
                    cpu_secs: e
                        .end
                        .zip(e.start)
                        .map(|(e, s)| round(e.cpu_secs - s.cpu_secs)),
                    cpu_secs_since_baseline: since_baseline.map(round),
                    cpu_us_per_published_event: since_baseline
                        .and_then(|c| per_event(c, published)),
                    cpu_us_per_delivered_event: since_baseline.and_then(|c| per_event(c, received)),
                    rss_kib_end: e.end.map(|s| s.rss_kib),
                }
            })
            .collect();
        Extra {
            cluster,
            publish_unavailable,
            extra_processes,
        }
    }
}

/// The checks of this file that failed.
pub(crate) fn failed_checks(x: &Extra, failed: &mut Vec<String>) {
    if let Some(c) = &x.cluster
        && c.order.mismatches > 0
    {
        failed.push(format!("order_mismatches: {}", c.order.mismatches));
    }
    if let Some(u) = &x.publish_unavailable {
        if !u.tolerated {
            failed.push(format!(
                "publish_unavailable: {} (503 answers; --tolerate-unavailable when an outage is expected)",
                u.answers
            ));
        } else if !u.recovered {
            failed.push("publish_not_recovered: the last publish was answered 503".to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(tolerated: bool, recovered: bool) -> Extra {
        Extra {
            cluster: None,
            publish_unavailable: Some(UnavailableReport {
                answers: 4,
                optional_events: 0,
                stretches: 1,
                total_secs: 1.0,
                longest_secs: 1.0,
                recovered,
                tolerated,
            }),
            extra_processes: Vec::new(),
        }
    }

    fn checks(x: &Extra) -> Vec<String> {
        let mut failed = Vec::new();
        failed_checks(x, &mut failed);
        failed
    }

    #[test]
    fn unavailable_fails_unless_tolerated_and_recovered() {
        assert!(checks(&unavailable(false, true))[0].starts_with("publish_unavailable: 4"));
        assert_eq!(checks(&unavailable(true, true)), Vec::<String>::new());
        assert!(checks(&unavailable(true, false))[0].starts_with("publish_not_recovered"));
        let none = Extra {
            cluster: None,
            publish_unavailable: None,
            extra_processes: Vec::new(),
        };
        assert!(checks(&none).is_empty());
        // A run with one --url reports none of this.
        assert_eq!(serde_json::to_string(&none).unwrap(), "{}");
    }

    #[test]
    fn order_mismatches_fail() {
        let x = Extra {
            cluster: Some(ClusterReport {
                publish_to: PublishTo::One,
                nodes: Vec::new(),
                order: OrderReport {
                    block_events: BLOCK,
                    blocks: 3,
                    comparisons_same: 5,
                    mismatches: 1,
                },
            }),
            publish_unavailable: None,
            extra_processes: Vec::new(),
        };
        assert_eq!(checks(&x), ["order_mismatches: 1"]);
    }

    #[test]
    fn refused_events_are_optional() {
        let cl = match crate::args::parse(["--duration", "5", "--tolerate-unavailable"]) {
            Ok(crate::args::Command::Run(c)) => ClusterRt::new(&c),
            other => panic!("{other:?}"),
        };
        cl.abandon(5);
        cl.abandon(9);
        assert_eq!(cl.optional_in(Some(3), 10), 2);
        assert_eq!(cl.optional_in(Some(6), 9), 0);
        assert_eq!(cl.optional_in(Some(5), 6), 1);
        assert_eq!(cl.optional_in(None, 10), 0);
        let x = cl.report(0, 0);
        assert!(x.publish_unavailable.is_none(), "no 503 was counted");
    }

    #[test]
    fn cpu_per_event() {
        assert_eq!(per_event(2.0, 1_000_000), Some(2.0));
        assert_eq!(per_event(1.0, 0), None);
    }
}
