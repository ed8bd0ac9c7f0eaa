//! `/health`, `/stats` (JSON) and `/metrics` (Prometheus text exposition format 0.0.4).
//!
//! `/stats` and `/metrics` are both written from one table of counters, [`COUNTERS`]
//! (`status/counters.rs`): each row says where the counter sits in `/stats`, its name,
//! type and help in `/metrics`, and how it is read from one snapshot of the lock-free
//! counters and the hub.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::Ctx;
use crate::config::Config;
use crate::http::response::Response;

mod counters;

#[cfg(test)]
use counters::Kind;
use counters::{COUNTERS, Reading, View};

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

/// The `/stats` document: every row of [`COUNTERS`] at its place, and the settings.
fn stats_json(ctx: &Ctx) -> Value {
    stats_doc(&View::now(ctx))
}

/// The `/stats` document of one view.
fn stats_doc(view: &View<'_>) -> Value {
    let mut doc = Map::new();
    for c in COUNTERS {
        put(&mut doc, c.stats, (c.read)(view));
    }
    doc.insert("config".into(), config_json(&view.ctx.config));
    Value::Object(doc)
}

/// Puts a reading at its dot-separated `path` in `doc`, making the objects on the way.
fn put(doc: &mut Map<String, Value>, path: &str, reading: Reading) {
    let (parents, key) = match path.rsplit_once('.') {
        Some((parents, key)) => (Some(parents), key),
        None => (None, path),
    };
    if reading == Reading::Off {
        // The whole section is null (a section with rows that are there stays).
        let section = path.split('.').next().unwrap_or(path);
        doc.entry(section).or_insert(Value::Null);
        return;
    }
    let mut here = doc;
    for k in parents.into_iter().flat_map(|p| p.split('.')) {
        let next = here.entry(k).or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        here = next.as_object_mut().expect("made an object above");
    }
    let value = match reading {
        Reading::Number(n) => json!(n),
        Reading::Flag(b) => json!(b),
        Reading::Seconds(s) => json!(s),
        Reading::ByLabel(_, pairs) => {
            Value::Object(pairs.into_iter().map(|(l, n)| (l, json!(n))).collect())
        }
        Reading::Id(id) => json!(id.map(|id| id.to_string())),
        Reading::Text(t) => json!(t),
        Reading::Null | Reading::Off => Value::Null,
    };
    // A section written before its parent's own counts keeps them (`resumes.resets`).
    match (here.get_mut(key), value) {
        (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
        (_, value) => {
            here.insert(key.to_owned(), value);
        }
    }
}

/// The settings `/stats` shows (never a token or the key).
fn config_json(cfg: &Config) -> Value {
    json!({
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
        "publishing": cfg.publish_token.is_some() || cfg.publisher_key().is_some(),
        // Whether tokens are checked; never the key itself.
        "jwt": cfg.publisher_key().is_some() || cfg.subscriber_key().is_some(),
        "jwt_cookie": cfg.jwt_cookie,
        "subscribe_auth": cfg.subscribe_auth.label(),
        "threads": cfg.threads,
    })
}

/// The `/metrics` text: every row of [`COUNTERS`] that is there now, as `ssehub_NAME`.
fn prometheus(ctx: &Ctx) -> String {
    prometheus_text(&View::now(ctx))
}

/// The `/metrics` text of one view.
fn prometheus_text(view: &View<'_>) -> String {
    let mut out = String::with_capacity(4096);
    for c in COUNTERS {
        let Some(kind) = c.kind.label() else {
            continue;
        };
        let samples: Vec<(String, String)> = match (c.read)(view) {
            Reading::Null | Reading::Off | Reading::Text(_) => continue,
            Reading::Number(n) => vec![(String::new(), n.to_string())],
            Reading::Flag(b) => vec![(String::new(), u64::from(b).to_string())],
            Reading::Seconds(s) => vec![(String::new(), format!("{:.3}", s.unwrap_or(f64::NAN)))],
            Reading::Id(id) => vec![(String::new(), id.map_or(0, |id| id.offset).to_string())],
            Reading::ByLabel(label, pairs) => pairs
                .into_iter()
                .map(|(v, n)| {
                    (
                        format!("{{{label}=\"{}\"}}", escape_label(&v)),
                        n.to_string(),
                    )
                })
                .collect(),
        };
        let name = c.metric;
        let _ = writeln!(out, "# HELP ssehub_{name} {}", c.help);
        let _ = writeln!(out, "# TYPE ssehub_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "ssehub_{name}{labels} {v}");
        }
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
    use crate::stats::AuthFailure;
    use crate::topic::{Topic, Topics};
    use std::collections::HashSet;

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
    fn every_counter_is_one_row_in_both_documents() {
        let ctx = Ctx::new(Config::default(), Log::silent(), Shutdown::new());
        let view = View::now(&ctx);
        let (doc, text) = (stats_doc(&view), prometheus_text(&view));
        let (mut paths, mut names) = (HashSet::new(), HashSet::new());
        for c in COUNTERS {
            assert!(paths.insert(c.stats), "{} twice in /stats", c.stats);
            let reading = (c.read)(&view);
            // Every key on the path is there (the last one maybe null), or for a feature
            // that is off, its section is null.
            let mut at = Some(&doc);
            for k in c.stats.split('.') {
                at = at.and_then(|v| v.get(k));
                if reading == Reading::Off {
                    break;
                }
            }
            match at {
                Some(v) if reading == Reading::Off => assert!(v.is_null(), "{}", c.stats),
                Some(_) => {}
                None => panic!("{} missing from /stats", c.stats),
            }
            assert_eq!(c.kind == Kind::Detail, c.metric.is_empty(), "{}", c.stats);
            if c.metric.is_empty() {
                continue;
            }
            assert!(names.insert(c.metric), "{} twice in /metrics", c.metric);
            assert_eq!(
                c.kind == Kind::Counter,
                c.metric.ends_with("_total"),
                "{}",
                c.metric
            );
            let typed = format!("# TYPE ssehub_{} {}\n", c.metric, c.kind.label().unwrap());
            let there = !matches!(reading, Reading::Off | Reading::Null);
            assert_eq!(text.contains(&typed), there, "{}", c.metric);
        }
    }

    #[test]
    fn broker_rows_are_null_without_a_broker_and_written_with_one() {
        let ctx = Ctx::new(Config::default(), Log::silent(), Shutdown::new());
        let mut view = View::now(&ctx);
        assert_eq!(stats_doc(&view)["broker"], Value::Null);
        assert!(!prometheus_text(&view).contains("ssehub_broker"));
        view.broker = Some(crate::port::BrokerStatus {
            up: true,
            reason: None,
            reconnects: 2,
            errors: [0, 3, 0, 0, 1],
            gaps: 4,
            last_read_age_secs: Some(0.25),
            cursor: "5-0".into(),
            failovers: 1,
            down_secs: 1.5,
            lost_entries: 6,
            master: Some("127.0.0.1:6380".into()),
            fenced: 7,
            loss_markers: 1,
        });
        let doc = stats_doc(&view);
        assert_eq!(
            doc["broker"],
            json!({
                "up": true, "reason": null, "reconnects": 2,
                "errors": {"connect": 0, "xadd": 3, "xread": 0, "xrange": 0, "decode": 1},
                "gaps": 4, "last_read_age_secs": 0.25, "cursor": "5-0",
                "lost_entries": 6, "failovers": 1, "fenced": 7, "loss_markers": 1,
                "down_secs": 1.5,
                "master": "127.0.0.1:6380",
            })
        );
        let text = prometheus_text(&view);
        for line in [
            "ssehub_broker_up 1",
            "ssehub_broker_reconnects_total 2",
            "ssehub_broker_errors_total{op=\"xadd\"} 3",
            "ssehub_broker_gaps_total 4",
            "ssehub_broker_lost_entries_total 6",
            "ssehub_broker_failovers_total 1",
            "ssehub_broker_fenced_total 7",
            "ssehub_broker_loss_markers_total 1",
            "ssehub_broker_down_seconds_total 1.500",
            "ssehub_broker_last_read_age_seconds 0.250",
            "# TYPE ssehub_broker_last_read_age_seconds gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        view.broker.as_mut().unwrap().last_read_age_secs = None;
        assert_eq!(
            stats_doc(&view)["broker"]["last_read_age_secs"],
            Value::Null
        );
        let text = prometheus_text(&view);
        assert!(
            text.contains("\nssehub_broker_last_read_age_seconds NaN\n"),
            "{text}"
        );
    }

    #[test]
    fn stream_with_a_repeated_topic_counts_one_subscriber() {
        let ctx = Ctx::new(Config::default(), Log::silent(), Shutdown::new());
        let d = Topic::new("D").unwrap();
        let _sub = ctx
            .hub
            .subscribe(Topics::requested([d.clone(), d]), None, None)
            .unwrap();
        assert_eq!(stats_json(&ctx)["topics"], json!({"D": 1}));
        let text = prometheus(&ctx);
        assert!(
            text.lines()
                .any(|l| l == "ssehub_topic_subscribers{topic=\"D\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
