//! `/health`, `/stats` (JSON) and `/metrics` (Prometheus text exposition format 0.0.4).
//!
//! `/stats` and `/metrics` render one `Snapshot` of the lock-free counters, plus a few
//! figures read from the hub (per-topic subscribers, history size).

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::Ctx;
use crate::event_id::{ResetReason, Resume};
use crate::http::response::Response;
use crate::port::Op;
use crate::stats::{AuthFailure, COUNTED_STATUSES, FileOp, Reason, Snapshot};

/// `GET /health`: `200` while serving, `503` while shutting down.
pub(super) fn health(ctx: &Ctx) -> Response {
    if let Some(s) = ctx.port.status().broker
        && !s.up
        && !ctx.shutdown.is_triggered()
    {
        return Response::json(
            503,
            &json!({"status": "broker_down", "reason": s.reason, "clients": ctx.hub.len()}),
        );
    }
    if ctx.shutdown.is_triggered() {
        Response::json(
            503,
            &json!({"status": "shutting_down", "clients": ctx.hub.len()}),
        )
    } else {
        Response::json(
            200,
            &json!({"status": "ok", "clients": ctx.hub.len(), "uptime_secs": ctx.stats.snapshot().uptime_secs}),
        )
    }
}

/// `GET /stats`.
pub(super) fn stats(ctx: &Ctx) -> Response {
    Response::json(200, &stats_json(ctx))
}

/// `GET /metrics`.
pub(super) fn metrics(ctx: &Ctx) -> Response {
    Response::with_body(
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        prometheus(ctx).into_bytes(),
    )
}

/// The `/stats` document.
fn stats_json(ctx: &Ctx) -> Value {
    let s = ctx.stats.snapshot();
    let mut ended = Map::new();
    for r in Reason::ALL {
        ended.insert(r.label().into(), json!(s.ended[r.index()]));
    }
    let mut auth_failures = Map::new();
    for r in AuthFailure::ALL {
        auth_failures.insert(r.label().into(), json!(s.auth_failures[r.index()]));
    }
    let mut rejected = Map::new();
    for (status, n) in statuses(&s) {
        rejected.insert(status, json!(n));
    }
    let listing = ctx.hub.topic_counts();
    let topics: Map<String, Value> = listing
        .listed
        .iter()
        .map(|(t, n)| (t.clone(), json!(n)))
        .collect();
    let mut resumes: Map<String, Value> = Resume::LABELS
        .iter()
        .zip(s.resumes)
        .map(|(l, n)| ((*l).into(), json!(n)))
        .collect();
    let resets: Map<String, Value> = ResetReason::ALL
        .iter()
        .map(|r| (r.label().into(), json!(s.resets[r.index()])))
        .collect();
    resumes.insert("resets".into(), Value::Object(resets));
    let last_id = ctx.hub.last_id().map(|id| id.to_string());
    let file_errors: Map<String, Value> = FileOp::ALL
        .iter()
        .map(|op| (op.label().into(), json!(s.history_file_errors[op.index()])))
        .collect();
    let cfg = &ctx.config;
    json!({
        "uptime_secs": s.uptime_secs,
        "clients": s.clients,
        "peak_clients": s.peak_clients,
        "connections_open": ctx.connections(),
        "connections_total": s.connections,
        "topics": topics,
        "topics_unlisted": {
            "topics": listing.unlisted_topics,
            "subscribers": listing.unlisted_subscribers,
        },
        "events_published": s.events_published,
        "frames_queued": s.frames_queued,
        "frames_written": s.frames_written,
        "bytes_written": s.bytes_written,
        "write_calls": s.write_calls,
        "direct_writes": s.direct_writes,
        "direct_handoffs": s.direct_handoffs,
        "publishes_paced": s.publishes_paced,
        "streams_ended": ended,
        "auth_failures": auth_failures,
        "rejected": rejected,
        "resumes": resumes,
        "history": {
            "events": ctx.hub.history_len(),
            "epoch": ctx.hub.epoch(),
            "last_id": last_id,
            "file": cfg.history_file.as_ref().map(|p| p.display().to_string()),
            "file_bytes": ctx.port.status().file_bytes,
            "file_errors": file_errors,
        },
        "broker": broker_json(ctx),
        "config": {
            "queue": cfg.hub.queue_len,
            "history": cfg.hub.history_events,
            "history_bytes": cfg.hub.history_bytes,
            "fsync": cfg.history_file.as_ref().map(|_| cfg.fsync.label()),
            "heartbeat_secs": cfg.heartbeat.map_or(0.0, |d| d.as_secs_f64()),
            "write_timeout_secs": cfg.limits.write_timeout.as_secs_f64(),
            "header_timeout_secs": cfg.limits.request_timeout.as_secs_f64(),
            "max_clients": cfg.limits.max_connections,
            "max_head_bytes": cfg.limits.head.max_head_bytes,
            "max_headers": cfg.limits.head.max_headers,
            "max_body": cfg.limits.max_body,
            "publishing": cfg.publish_token.is_some() || cfg.jwt_key.is_some(),
            // Whether tokens are checked; never the key itself.
            "jwt": cfg.jwt_key.is_some(),
            "jwt_cookie": cfg.jwt_cookie,
            "subscribe_auth": cfg.subscribe_auth.label(),
            "threads": cfg.threads,
        },
    })
}

/// The shared stream's state (`null` without `--redis`). Never the password.
fn broker_json(ctx: &Ctx) -> Value {
    let Some(s) = ctx.port.status().broker else {
        return Value::Null;
    };
    let errors: Map<String, Value> = Op::ALL
        .iter()
        .map(|op| (op.label().to_owned(), json!(s.errors[*op as usize])))
        .collect();
    json!({
        "up": s.up,
        "reason": s.reason,
        "reconnects": s.reconnects,
        "errors": errors,
        "gaps": s.gaps,
        "last_read_age_secs": s.last_read_age_secs,
        "cursor": s.cursor,
    })
}

/// Rejected-request counters as (status label, count), "other" last.
fn statuses(s: &Snapshot) -> impl Iterator<Item = (String, u64)> + '_ {
    COUNTED_STATUSES
        .iter()
        .map(|c| c.to_string())
        .chain(std::iter::once("other".to_owned()))
        .zip(s.rejected.iter().copied())
}

/// The `/metrics` text.
fn prometheus(ctx: &Ctx) -> String {
    let s = ctx.stats.snapshot();
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP ssehub_{name} {help}");
        let _ = writeln!(out, "# TYPE ssehub_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "ssehub_{name}{labels} {v}");
        }
    };
    let one = |v: u64| [(String::new(), v)];
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        &one(s.uptime_secs),
    );
    metric(
        "clients",
        "gauge",
        "Subscribers connected now.",
        &one(s.clients),
    );
    metric(
        "clients_peak",
        "gauge",
        "Most subscribers connected at once.",
        &one(s.peak_clients),
    );
    metric(
        "connections_open",
        "gauge",
        "TCP connections open now.",
        &one(ctx.connections() as u64),
    );
    metric(
        "connections_accepted_total",
        "counter",
        "TCP connections accepted.",
        &one(s.connections),
    );
    metric(
        "events_published_total",
        "counter",
        "Events published (each got an id).",
        &one(s.events_published),
    );
    metric(
        "frames_queued_total",
        "counter",
        "Frames handed to subscriber queues.",
        &one(s.frames_queued),
    );
    metric(
        "frames_written_total",
        "counter",
        "Frames written to subscriber sockets.",
        &one(s.frames_written),
    );
    metric(
        "bytes_written_total",
        "counter",
        "Bytes written to subscriber sockets.",
        &one(s.bytes_written),
    );
    metric(
        "write_calls_total",
        "counter",
        "Write calls made to subscriber sockets.",
        &one(s.write_calls),
    );
    metric(
        "direct_writes_total",
        "counter",
        "Writes of one frame made directly while the subscriber's writer waited.",
        &one(s.direct_writes),
    );
    metric(
        "direct_handoffs_total",
        "counter",
        "Direct writes the socket did not take whole; the writer wrote the rest.",
        &one(s.direct_handoffs),
    );
    metric(
        "publishes_paced_total",
        "counter",
        "Publish answers held while the writers were behind subscribers that still read.",
        &one(s.publishes_paced),
    );
    let ended: Vec<(String, u64)> = Reason::ALL
        .iter()
        .map(|r| (format!("{{reason=\"{}\"}}", r.label()), s.ended[r.index()]))
        .collect();
    metric(
        "streams_ended_total",
        "counter",
        "Subscriber streams ended, by reason.",
        &ended,
    );
    let auth_failures: Vec<(String, u64)> = AuthFailure::ALL
        .iter()
        .map(|r| {
            let n = s.auth_failures[r.index()];
            (format!("{{reason=\"{}\"}}", r.label()), n)
        })
        .collect();
    metric(
        "auth_failures_total",
        "counter",
        "Tokens refused (401), by reason; missing = none sent where one is required.",
        &auth_failures,
    );
    let rejected: Vec<(String, u64)> = statuses(&s)
        .map(|(st, n)| (format!("{{status=\"{st}\"}}"), n))
        .collect();
    metric(
        "requests_rejected_total",
        "counter",
        "Requests refused, by status.",
        &rejected,
    );
    metric(
        "history_events",
        "gauge",
        "Events kept for replay.",
        &one(ctx.hub.history_len() as u64),
    );
    let resumes: Vec<(String, u64)> = Resume::LABELS
        .iter()
        .zip(s.resumes)
        .map(|(l, n)| (format!("{{outcome=\"{l}\"}}"), n))
        .collect();
    metric(
        "resumes_total",
        "counter",
        "Streams started, by resume outcome (the SSE-Resume header).",
        &resumes,
    );
    let resets: Vec<(String, u64)> = ResetReason::ALL
        .iter()
        .map(|r| (format!("{{reason=\"{}\"}}", r.label()), s.resets[r.index()]))
        .collect();
    metric(
        "resets_total",
        "counter",
        "Streams started with a reset event, by reason.",
        &resets,
    );
    metric(
        "last_event_id",
        "gauge",
        "Offset of the last event published in this history (the id is <epoch>-<offset>).",
        &one(ctx.hub.last_id().map_or(0, |id| id.offset)),
    );
    if let Some(bytes) = ctx.port.status().file_bytes {
        metric(
            "history_file_bytes",
            "gauge",
            "Size of the history file.",
            &one(bytes),
        );
    }
    let file_errors: Vec<(String, u64)> = FileOp::ALL
        .iter()
        .map(|op| {
            let n = s.history_file_errors[op.index()];
            (format!("{{op=\"{}\"}}", op.label()), n)
        })
        .collect();
    metric(
        "history_file_errors_total",
        "counter",
        "I/O errors on the history file, by step (a write, or a sync with --fsync always, refused a publish).",
        &file_errors,
    );
    metric(
        "history_epoch",
        "gauge",
        "The history's epoch: its start time in Unix milliseconds.",
        &one(ctx.hub.epoch()),
    );
    let listing = ctx.hub.topic_counts();
    let topics: Vec<(String, u64)> = listing
        .listed
        .iter()
        .map(|(t, n)| (format!("{{topic=\"{}\"}}", escape_label(t)), *n as u64))
        .collect();
    metric(
        "topic_subscribers",
        "gauge",
        "Subscribers per requested topic (* = all topics), for the first topics up to the listing cap.",
        &topics,
    );
    metric(
        "topic_subscribers_unlisted",
        "gauge",
        "Subscriptions to topics past the listing cap, all together.",
        &one(listing.unlisted_subscribers as u64),
    );
    metric(
        "topics_unlisted",
        "gauge",
        "Topics with subscribers past the listing cap.",
        &one(listing.unlisted_topics as u64),
    );
    if let Some(st) = ctx.port.status().broker {
        metric(
            "broker_up",
            "gauge",
            "1 while the shared Redis stream answers the reader, 0 while it does not.",
            &one(u64::from(st.up)),
        );
        metric(
            "broker_reconnects_total",
            "counter",
            "Reconnections to Redis, reader and publisher together.",
            &one(st.reconnects),
        );
        let errors: Vec<(String, u64)> = Op::ALL
            .iter()
            .map(|op| {
                (
                    format!("{{op=\"{}\"}}", op.label()),
                    st.errors[*op as usize],
                )
            })
            .collect();
        metric(
            "broker_errors_total",
            "counter",
            "Failed exchanges with Redis, by operation.",
            &errors,
        );
        metric(
            "broker_gaps_total",
            "counter",
            "Losses noticed: the reader's cursor entry was gone (subscribers got a lost reset).",
            &one(st.gaps),
        );
        let _ = writeln!(
            out,
            "# HELP ssehub_broker_last_read_age_seconds Seconds since the reader last heard from Redis.\n\
             # TYPE ssehub_broker_last_read_age_seconds gauge\n\
             ssehub_broker_last_read_age_seconds {:.3}",
            st.last_read_age_secs.unwrap_or(f64::NAN)
        );
    }
    out
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::log::Log;
    use crate::shutdown::Shutdown;
    use crate::sse::Event;
    use crate::topic::{Topic, Topics};

    #[test]
    fn both_encodings_show_the_same_counts() {
        let ctx = Ctx::new(Config::default(), Log::silent(), Shutdown::new());
        let _a = ctx
            .hub
            .subscribe(
                Topics::Only(vec![Topic::new("x").unwrap()].into()),
                None,
                None,
            )
            .unwrap();
        let _b = ctx.hub.subscribe(Topics::All, None, None).unwrap();
        ctx.hub
            .publish(&Topic::new("x").unwrap(), &Event::new("d").unwrap());
        // An old integer id: a reset. Gone again, so the other figures stay as they were.
        drop(ctx.hub.subscribe(Topics::All, Some("3"), None).unwrap());
        ctx.stats.rejected(404);
        let j = stats_json(&ctx);
        let epoch = ctx.hub.epoch();
        assert_eq!(j["clients"], 2);
        assert_eq!(j["events_published"], 1);
        assert_eq!(j["frames_queued"], 2);
        assert_eq!(j["history"]["epoch"], epoch);
        assert_eq!(j["history"]["last_id"], format!("{epoch}-1"));
        assert_eq!(j["resumes"]["initialized"], 2);
        assert_eq!(j["resumes"]["reset"], 1);
        assert_eq!(j["resumes"]["resets"]["unknown"], 1);
        assert_eq!(j["resumes"]["resets"]["other-epoch"], 0);
        assert_eq!(j["rejected"]["404"], 1);
        assert_eq!(j["topics"]["x"], 1);
        assert_eq!(j["topics"]["*"], 1);
        let p = prometheus(&ctx);
        let epoch_line = format!("ssehub_history_epoch {epoch}");
        for line in [
            "ssehub_clients 2",
            "ssehub_last_event_id 1",
            &epoch_line,
            "ssehub_resumes_total{outcome=\"initialized\"} 2",
            "ssehub_resumes_total{outcome=\"reset\"} 1",
            "ssehub_resumes_total{outcome=\"continue\"} 0",
            "ssehub_resets_total{reason=\"unknown\"} 1",
            "ssehub_resets_total{reason=\"other-epoch\"} 0",
            "ssehub_events_published_total 1",
            "ssehub_frames_queued_total 2",
            "ssehub_requests_rejected_total{status=\"404\"} 1",
            "ssehub_streams_ended_total{reason=\"queue_full\"} 0",
            "ssehub_topic_subscribers{topic=\"x\"} 1",
            "# TYPE ssehub_events_published_total counter",
        ] {
            assert!(p.lines().any(|l| l == line), "missing {line:?} in\n{p}");
        }
    }

    #[test]
    fn auth_failures_are_counted_and_the_key_never_shows() {
        let key = "k".repeat(40);
        let Ok(crate::config::Command::Run(config)) =
            Config::from_args(["--jwt-key", key.as_str()], |_| None)
        else {
            panic!("config")
        };
        let ctx = Ctx::new(*config, Log::silent(), Shutdown::new());
        ctx.stats.auth_failed(AuthFailure::BadSignature);
        let j = stats_json(&ctx);
        assert_eq!(j["auth_failures"]["bad_signature"], 1);
        assert_eq!(j["auth_failures"]["expired"], 0);
        assert_eq!(j["config"]["jwt"], true);
        assert_eq!(j["config"]["subscribe_auth"], "optional");
        assert!(!j.to_string().contains(&key));
        let p = prometheus(&ctx);
        assert!(
            p.lines()
                .any(|l| l == "ssehub_auth_failures_total{reason=\"bad_signature\"} 1"),
            "{p}"
        );
        assert!(!p.contains(&key));
        assert!(!format!("{ctx:?}").contains(&key));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
