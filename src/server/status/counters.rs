//! The counters in one table, [`COUNTERS`]: where each sits in `/stats`, its name, type
//! and help in `/metrics`, and how it is read. Both documents are written from it (in
//! `status.rs`), so a counter is added with one row.

use crate::event_id::{EventId, ResetReason, Resume};
use crate::hub::TopicListing;
use crate::port::{self, BrokerStatus, Op};
use crate::stats::{AuthFailure, COUNTED_STATUSES, FileOp, Reason, Snapshot};

use std::sync::atomic::Ordering::Relaxed;

use super::Ctx;

/// What the rows read from: one snapshot of the counters and of the hub, taken once per
/// document so every row sees the same moment.
pub(super) struct View<'a> {
    /// The server.
    pub(super) ctx: &'a Ctx,
    /// The lock-free counters.
    pub(super) s: Snapshot,
    /// Subscribers per topic.
    pub(super) topics: TopicListing,
    /// The shared stream's state, with `--redis`.
    pub(super) broker: Option<BrokerStatus>,
    /// The publish port's state (the history file's size and syncs).
    pub(super) port: port::Status,
}

impl<'a> View<'a> {
    /// Reads everything the rows need, now.
    pub(super) fn now(ctx: &'a Ctx) -> View<'a> {
        let port = ctx.port.status();
        View {
            ctx,
            s: ctx.stats.snapshot(),
            topics: ctx.hub.topic_counts(),
            broker: port.broker.clone(),
            port,
        }
    }
}

/// A row's type in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Only grows; the name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Only in `/stats`: a detail no metric carries (a path, a reason, a cursor).
    Detail,
}

impl Kind {
    /// The `# TYPE` word; `None` for a row `/metrics` leaves out.
    pub(super) fn label(self) -> Option<&'static str> {
        match self {
            Kind::Counter => Some("counter"),
            Kind::Gauge => Some("gauge"),
            Kind::Detail => None,
        }
    }
}

/// What a row reads now.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reading {
    /// A count or a level.
    Number(u64),
    /// Yes or no: JSON `true`/`false`, Prometheus `1`/`0`.
    Flag(bool),
    /// Seconds, fractional, maybe unknown: JSON a number or `null`, Prometheus three
    /// decimals or `NaN`.
    Seconds(Option<f64>),
    /// One count per value of the label: a JSON object by value, a Prometheus sample each.
    ByLabel(&'static str, Vec<(String, u64)>),
    /// An event id: JSON the id (or `null`), Prometheus its offset (`0` without one).
    Id(Option<EventId>),
    /// Text (a detail row): JSON a string or `null`.
    Text(Option<String>),
    /// Not known now (no history file): JSON `null`, no Prometheus sample.
    Null,
    /// The feature is off on this server (no `--redis`): JSON `null` in place of the
    /// row's whole section (the first key of its path), no Prometheus sample.
    Off,
}

/// One counter.
pub(super) struct Counter {
    /// Where it sits in `/stats`: the keys from the top, dot-separated (`history.events`).
    pub(super) stats: &'static str,
    /// Its name in `/metrics`, after `ssehub_`; empty for a [`Kind::Detail`].
    pub(super) metric: &'static str,
    /// Its type.
    pub(super) kind: Kind,
    /// The `# HELP` text.
    pub(super) help: &'static str,
    /// How it is read.
    pub(super) read: fn(&View<'_>) -> Reading,
}

/// One count per label value, in the order of `labels`.
fn by_label<'l>(
    label: &'static str,
    labels: impl IntoIterator<Item = &'l str>,
    counts: &[u64],
) -> Reading {
    let pairs = labels
        .into_iter()
        .zip(counts)
        .map(|(l, n)| (l.to_owned(), *n))
        .collect();
    Reading::ByLabel(label, pairs)
}

/// A reading of the shared stream's state, or [`Reading::Off`] without one.
fn broker(v: &View<'_>, read: fn(&BrokerStatus) -> Reading) -> Reading {
    v.broker.as_ref().map_or(Reading::Off, read)
}

/// A reading of Mercure's active subscriptions, or [`Reading::Off`] without
/// `--mercure-subscriptions`.
fn tracked(v: &View<'_>, read: fn(&super::super::subscriptions::Tracker) -> u64) -> Reading {
    v.ctx
        .subscriptions
        .as_deref()
        .map_or(Reading::Off, |t| Reading::Number(read(t)))
}

/// Every counter, in the order of `/metrics`.
pub(super) const COUNTERS: &[Counter] = &[
    Counter {
        stats: "uptime_secs",
        metric: "uptime_seconds",
        kind: Kind::Gauge,
        help: "Seconds since the server started.",
        read: |v| Reading::Number(v.s.uptime_secs),
    },
    Counter {
        stats: "clients",
        metric: "clients",
        kind: Kind::Gauge,
        help: "Subscribers connected now.",
        read: |v| Reading::Number(v.s.clients),
    },
    Counter {
        stats: "peak_clients",
        metric: "clients_peak",
        kind: Kind::Gauge,
        help: "Most subscribers connected at once.",
        read: |v| Reading::Number(v.s.peak_clients),
    },
    Counter {
        stats: "connections_open",
        metric: "connections_open",
        kind: Kind::Gauge,
        help: "TCP connections open now.",
        read: |v| Reading::Number(v.ctx.connections() as u64),
    },
    Counter {
        stats: "streams_resting",
        metric: "streams_resting",
        kind: Kind::Gauge,
        help: "Idle streams resting without a task or a reactor registration (their read side in the server's own epoll set).",
        read: |v| Reading::Number(v.ctx.watch.as_ref().map_or(0, |w| w.len()) as u64),
    },
    Counter {
        stats: "connections_total",
        metric: "connections_accepted_total",
        kind: Kind::Counter,
        help: "TCP connections accepted.",
        read: |v| Reading::Number(v.s.connections),
    },
    Counter {
        stats: "events_published",
        metric: "events_published_total",
        kind: Kind::Counter,
        help: "Events published (each got an id).",
        read: |v| Reading::Number(v.s.events_published),
    },
    Counter {
        stats: "frames_queued",
        metric: "frames_queued_total",
        kind: Kind::Counter,
        help: "Frames handed to subscriber queues.",
        read: |v| Reading::Number(v.s.frames_queued),
    },
    Counter {
        stats: "frames_written",
        metric: "frames_written_total",
        kind: Kind::Counter,
        help: "Frames written to subscriber sockets.",
        read: |v| Reading::Number(v.s.frames_written),
    },
    Counter {
        stats: "bytes_written",
        metric: "bytes_written_total",
        kind: Kind::Counter,
        help: "Bytes written to subscriber sockets.",
        read: |v| Reading::Number(v.s.bytes_written),
    },
    Counter {
        stats: "write_calls",
        metric: "write_calls_total",
        kind: Kind::Counter,
        help: "Write calls made to subscriber sockets.",
        read: |v| Reading::Number(v.s.write_calls),
    },
    Counter {
        stats: "direct_writes",
        metric: "direct_writes_total",
        kind: Kind::Counter,
        help: "Writes of one frame made directly while the subscriber's writer waited.",
        read: |v| Reading::Number(v.s.direct_writes),
    },
    Counter {
        stats: "direct_handoffs",
        metric: "direct_handoffs_total",
        kind: Kind::Counter,
        help: "Direct writes the socket did not take whole; the writer wrote the rest.",
        read: |v| Reading::Number(v.s.direct_handoffs),
    },
    Counter {
        stats: "publishes_paced",
        metric: "publishes_paced_total",
        kind: Kind::Counter,
        help: "Publish answers held while the writers were behind subscribers that still read.",
        read: |v| Reading::Number(v.s.publishes_paced),
    },
    Counter {
        stats: "publishes_replayed",
        metric: "publishes_replayed_total",
        kind: Kind::Counter,
        help: "Publishes answered as retries of a retained event (same Idempotency-Key or publisher id): nothing published again.",
        read: |v| Reading::Number(v.s.publishes_replayed),
    },
    Counter {
        stats: "memory_releases",
        metric: "memory_releases_total",
        kind: Kind::Counter,
        help: "Times free heap pages were given back to the system after a burst of connections.",
        read: |v| Reading::Number(v.s.memory_releases),
    },
    Counter {
        stats: "streams_ended",
        metric: "streams_ended_total",
        kind: Kind::Counter,
        help: "Subscriber streams ended, by reason.",
        read: |v| by_label("reason", Reason::ALL.iter().map(|r| r.label()), &v.s.ended),
    },
    Counter {
        stats: "auth_failures",
        metric: "auth_failures_total",
        kind: Kind::Counter,
        help: "Tokens refused (401), by reason; missing = none sent where one is required.",
        read: |v| {
            let labels = AuthFailure::ALL.iter().map(|r| r.label());
            by_label("reason", labels, &v.s.auth_failures)
        },
    },
    Counter {
        stats: "streams_refused_per_token",
        metric: "streams_refused_per_token_total",
        kind: Kind::Counter,
        help: "Streams refused (429) because their token had --max-streams-per-token open.",
        read: |v| Reading::Number(v.ctx.quota.refused()),
    },
    Counter {
        stats: "rejected",
        metric: "requests_rejected_total",
        kind: Kind::Counter,
        help: "Requests refused, by status.",
        read: |v| {
            let statuses: Vec<String> = COUNTED_STATUSES
                .iter()
                .map(|c| c.to_string())
                .chain(["other".to_owned()])
                .collect();
            by_label("status", statuses.iter().map(String::as_str), &v.s.rejected)
        },
    },
    Counter {
        stats: "history.events",
        metric: "history_events",
        kind: Kind::Gauge,
        help: "Events kept for replay.",
        read: |v| Reading::Number(v.ctx.hub.history_len() as u64),
    },
    Counter {
        stats: "resumes",
        metric: "resumes_total",
        kind: Kind::Counter,
        help: "Streams started, by resume outcome (the SSE-Resume header).",
        read: |v| by_label("outcome", Resume::LABELS, &v.s.resumes),
    },
    Counter {
        stats: "resumes.resets",
        metric: "resets_total",
        kind: Kind::Counter,
        help: "Streams started with a reset event, by reason.",
        read: |v| {
            let labels = ResetReason::ALL.iter().map(|r| r.label());
            by_label("reason", labels, &v.s.resets)
        },
    },
    Counter {
        stats: "history.last_id",
        metric: "last_event_id",
        kind: Kind::Gauge,
        help: "Offset of the last event published in this history (the id is <epoch>-<offset>).",
        read: |v| Reading::Id(v.ctx.hub.last_id()),
    },
    Counter {
        stats: "history.file",
        metric: "",
        kind: Kind::Detail,
        help: "The history file's path (--history-file).",
        read: |v| {
            let path = v.ctx.config.history_file.as_ref();
            Reading::Text(path.map(|p| p.display().to_string()))
        },
    },
    Counter {
        stats: "history.file_bytes",
        metric: "history_file_bytes",
        kind: Kind::Gauge,
        help: "Size of the history file.",
        read: |v| v.port.file_bytes.map_or(Reading::Null, Reading::Number),
    },
    Counter {
        stats: "history.syncs",
        metric: "history_syncs_total",
        kind: Kind::Counter,
        help: "Syncs of the history file (with --fsync always, each may cover several publishes).",
        read: |v| v.port.syncs.map_or(Reading::Null, Reading::Number),
    },
    Counter {
        stats: "history.file_errors",
        metric: "history_file_errors_total",
        kind: Kind::Counter,
        help: "I/O errors on the history file, by step (a write, or a sync with --fsync always, refused a publish).",
        read: |v| {
            let labels = FileOp::ALL.iter().map(|op| op.label());
            by_label("op", labels, &v.s.history_file_errors)
        },
    },
    Counter {
        stats: "history.epoch",
        metric: "history_epoch",
        kind: Kind::Gauge,
        help: "The history's epoch: its start time in Unix milliseconds.",
        read: |v| Reading::Number(v.ctx.hub.epoch()),
    },
    Counter {
        stats: "topics",
        metric: "topic_subscribers",
        kind: Kind::Gauge,
        help: "Subscribers per requested topic (* = all topics), for the first topics up to the listing cap.",
        read: |v| {
            let listed = v.topics.listed.iter();
            Reading::ByLabel(
                "topic",
                listed.map(|(t, n)| (t.clone(), *n as u64)).collect(),
            )
        },
    },
    Counter {
        stats: "topics_unlisted.subscribers",
        metric: "topic_subscribers_unlisted",
        kind: Kind::Gauge,
        help: "Subscriptions to topics past the listing cap, all together.",
        read: |v| Reading::Number(v.topics.unlisted_subscribers as u64),
    },
    Counter {
        stats: "topics_unlisted.topics",
        metric: "topics_unlisted",
        kind: Kind::Gauge,
        help: "Topics with subscribers past the listing cap.",
        read: |v| Reading::Number(v.topics.unlisted_topics as u64),
    },
    Counter {
        stats: "mercure.subscriptions",
        metric: "mercure_subscribers",
        kind: Kind::Gauge,
        help: "Subscribers listed among Mercure's active subscriptions on this node (--mercure-subscriptions).",
        read: |v| tracked(v, |t| t.subscribers() as u64),
    },
    Counter {
        stats: "mercure.subscription_events.queued",
        metric: "mercure_subscription_events_queued_total",
        kind: Kind::Counter,
        help: "Subscription events (a subscriber came or went) queued for the publish port.",
        read: |v| tracked(v, |t| t.queued.load(Relaxed)),
    },
    Counter {
        stats: "mercure.subscription_events.published",
        metric: "mercure_subscription_events_published_total",
        kind: Kind::Counter,
        help: "Subscription events the publish port took.",
        read: |v| tracked(v, |t| t.published.load(Relaxed)),
    },
    Counter {
        stats: "mercure.subscription_events.dropped",
        metric: "mercure_subscription_events_dropped_total",
        kind: Kind::Counter,
        help: "Subscription events dropped: their queue was full (subscribers came and went faster than the port publishes) or their topic too long.",
        read: |v| tracked(v, |t| t.dropped.load(Relaxed)),
    },
    Counter {
        stats: "mercure.subscription_events.failed",
        metric: "mercure_subscription_events_failed_total",
        kind: Kind::Counter,
        help: "Subscription events the publish port refused (Redis or the history file failing).",
        read: |v| tracked(v, |t| t.failed.load(Relaxed)),
    },
    Counter {
        stats: "broker.up",
        metric: "broker_up",
        kind: Kind::Gauge,
        help: "1 while the shared Redis stream answers the reader, 0 while it does not.",
        read: |v| broker(v, |b| Reading::Flag(b.up)),
    },
    Counter {
        stats: "broker.reason",
        metric: "",
        kind: Kind::Detail,
        help: "Why the shared stream is down.",
        read: |v| broker(v, |b| Reading::Text(b.reason.clone())),
    },
    Counter {
        stats: "broker.reconnects",
        metric: "broker_reconnects_total",
        kind: Kind::Counter,
        help: "Reconnections to Redis, reader and publisher together.",
        read: |v| broker(v, |b| Reading::Number(b.reconnects)),
    },
    Counter {
        stats: "broker.errors",
        metric: "broker_errors_total",
        kind: Kind::Counter,
        help: "Failed exchanges with Redis, by operation.",
        read: |v| {
            broker(v, |b| {
                let counts: Vec<u64> = Op::ALL.iter().map(|op| b.errors[*op as usize]).collect();
                by_label("op", Op::ALL.iter().map(|op| op.label()), &counts)
            })
        },
    },
    Counter {
        stats: "broker.gaps",
        metric: "broker_gaps_total",
        kind: Kind::Counter,
        help: "Losses noticed: entries added after the reader's cursor were removed before it read them (subscribers got a lost reset).",
        read: |v| broker(v, |b| Reading::Number(b.gaps)),
    },
    Counter {
        stats: "broker.last_read_age_secs",
        metric: "broker_last_read_age_seconds",
        kind: Kind::Gauge,
        help: "Seconds since the reader last heard from Redis.",
        read: |v| broker(v, |b| Reading::Seconds(b.last_read_age_secs)),
    },
    Counter {
        stats: "broker.cursor",
        metric: "",
        kind: Kind::Detail,
        help: "The reader's position in the shared stream.",
        read: |v| broker(v, |b| Reading::Text(Some(b.cursor.clone()))),
    },
    Counter {
        stats: "broker.lost_entries",
        metric: "broker_lost_entries_total",
        kind: Kind::Counter,
        help: "Entries lost: removed before the reader read them, or missing on a new master after a failover (subscribers got a lost reset).",
        read: |v| broker(v, |b| Reading::Number(b.lost_entries)),
    },
    Counter {
        stats: "broker.failovers",
        metric: "broker_failovers_total",
        kind: Kind::Counter,
        help: "Times the reader moved to another master (Sentinel failovers followed).",
        read: |v| broker(v, |b| Reading::Number(b.failovers)),
    },
    Counter {
        stats: "broker.fenced",
        metric: "broker_fenced_total",
        kind: Kind::Counter,
        help: "Publishes refused (503) because a Sentinel failover of the master was under way.",
        read: |v| broker(v, |b| Reading::Number(b.fenced)),
    },
    Counter {
        stats: "broker.loss_markers",
        metric: "broker_loss_markers_total",
        kind: Kind::Counter,
        help: "Loss markers this node added: entries it acknowledged that a new master lacked (every node got a lost reset).",
        read: |v| broker(v, |b| Reading::Number(b.loss_markers)),
    },
    Counter {
        stats: "broker.down_secs",
        metric: "broker_down_seconds_total",
        kind: Kind::Counter,
        help: "Seconds the reader was without a master (Redis unreachable or a failover under way), all outages together.",
        read: |v| broker(v, |b| Reading::Seconds(Some(b.down_secs))),
    },
    Counter {
        stats: "broker.master",
        metric: "",
        kind: Kind::Detail,
        help: "The master the reader reads from (with Sentinel, the one the sentinels named).",
        read: |v| broker(v, |b| Reading::Text(b.master.clone())),
    },
];
