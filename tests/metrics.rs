//! `/stats` and `/metrics` after real traffic: both agree with what happened, and the
//! Prometheus text passes a real parser of the format (prometheus-parse) and a strict
//! line check.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::support::{Client, SHORT, SseClient, get, start};

/// Samples by `name{labels}` as written, from a strict read of the exposition format.
fn strict_samples(text: &str) -> HashMap<String, f64> {
    let name_ok = |n: &str| {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut helped = HashSet::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has text");
            assert!(name_ok(name) && !help.is_empty(), "{line}");
            assert!(helped.insert(name.to_owned()), "HELP twice for {name}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(matches!(kind, "counter" | "gauge"), "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            assert!(
                typed.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE twice: {name}"
            );
        } else {
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let name = series.split('{').next().unwrap();
            assert!(name_ok(name), "{line}");
            assert!(typed.contains_key(name), "sample before its TYPE: {line}");
            if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                for pair in labels[1..labels.len() - 1].split(',') {
                    let (k, v) = pair.split_once('=').expect("label k=v");
                    assert!(
                        name_ok(k) && v.starts_with('"') && v.ends_with('"'),
                        "{line}"
                    );
                }
            }
            let v: f64 = value.parse().expect("numeric value");
            assert!(
                samples.insert(series.to_owned(), v).is_none(),
                "duplicate series {series}"
            );
        }
    }
    samples
}

#[test]
fn stats_and_metrics_agree_with_real_traffic() {
    let srv = start(&[
        "--no-demo",
        "--heartbeat",
        "0",
        "--queue",
        "4",
        "--publish-token",
        "t",
    ]);
    // Two readers (one on topic a), and one subscriber that never reads.
    let mut all = SseClient::open(srv.addr, "/stream");
    let mut only_a = SseClient::open(srv.addr, "/stream?topic=a");
    let mut slow = Client::connect(srv.addr);
    slow.send(&get("/stream"));
    srv.wait_subscribers(3, SHORT);

    // Enough large events on topic b to fill the slow one's socket and queue.
    let big = "y".repeat(64 * 1024);
    let mut published = 0u64;
    for _ in 0..100 {
        srv.publish("b", None, &big);
        published += 1;
        all.next_event(Duration::from_secs(5))
            .expect("reader gets every event");
        if srv.hub.len() == 2 {
            break;
        }
    }
    assert_eq!(srv.hub.len(), 2, "the slow subscriber was not evicted");
    srv.publish("a", None, "for a");
    published += 1;
    assert_eq!(
        only_a.next_event(SHORT).expect("topic a event").data,
        "for a"
    );
    all.next_event(SHORT)
        .expect("reader gets the topic a event");
    // One refused request.
    let r = Client::connect(srv.addr).request(&get("/no-such-route"));
    assert_eq!(r.status, 404);

    let stats = Client::connect(srv.addr).request(&get("/stats")).json();
    assert_eq!(stats["clients"], 2, "{stats}");
    assert_eq!(stats["peak_clients"], 3, "{stats}");
    assert_eq!(stats["events_published"], published, "{stats}");
    assert_eq!(stats["streams_ended"]["queue_full"], 1, "{stats}");
    assert_eq!(stats["rejected"]["404"], 1, "{stats}");
    assert_eq!(stats["topics"]["a"], 1, "{stats}");
    assert_eq!(stats["topics"]["*"], 1, "{stats}");
    let epoch = stats["history"]["epoch"].as_u64().expect("numeric epoch");
    assert_eq!(
        stats["history"]["last_id"],
        format!("{epoch}-{published}"),
        "{stats}"
    );

    let resp = Client::connect(srv.addr).request(&get("/metrics"));
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("Content-Type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.body_text();
    let strict = strict_samples(&text);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("prometheus-parse reads it");
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no sample {name} {label:?}"));
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        scrape.samples.len(),
        strict.len(),
        "both parsers see every sample"
    );
    assert_eq!(value("ssehub_clients", None), 2.0);
    assert_eq!(value("ssehub_clients_peak", None), 3.0);
    assert_eq!(
        value("ssehub_events_published_total", None),
        published as f64
    );
    assert_eq!(
        value("ssehub_streams_ended_total", Some(("reason", "queue_full"))),
        1.0
    );
    assert_eq!(
        value("ssehub_requests_rejected_total", Some(("status", "404"))),
        1.0
    );
    assert_eq!(value("ssehub_topic_subscribers", Some(("topic", "a"))), 1.0);
    assert_eq!(value("ssehub_last_event_id", None), published as f64);
    assert_eq!(value("ssehub_history_epoch", None), epoch as f64);
    // Counters only grow, and the two documents were taken one after the other.
    assert!(
        value("ssehub_frames_written_total", None) >= stats["frames_written"].as_f64().unwrap()
    );
    assert!(value("ssehub_bytes_written_total", None) >= stats["bytes_written"].as_f64().unwrap());
    // Direct writes are a part of all writes; those handed over a part of direct writes.
    let (calls, direct, handed) = (
        value("ssehub_write_calls_total", None),
        value("ssehub_direct_writes_total", None),
        value("ssehub_direct_handoffs_total", None),
    );
    assert!(
        handed <= direct && direct <= calls,
        "{handed} {direct} {calls}"
    );
    assert!(stats["direct_writes"].as_f64().unwrap() <= direct);
    assert!(matches!(
        scrape
            .samples
            .iter()
            .find(|s| s.metric == "ssehub_events_published_total")
            .unwrap()
            .value,
        prometheus_parse::Value::Counter(_)
    ));
}

#[test]
fn stream_with_a_repeated_topic_counts_one_subscriber() {
    // The bug: `?topic=D&topic=D` got each event once but counted two subscribers of D.
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut s = SseClient::open(srv.addr, "/stream?topic=D&topic=D&topic=E");
    srv.wait_subscribers(1, SHORT);
    srv.publish("D", None, "one");
    srv.publish("E", None, "two");
    assert_eq!(s.next_event(SHORT).expect("the D event").data, "one");
    assert_eq!(s.next_event(SHORT).expect("the E event, once").data, "two");

    let stats = Client::connect(srv.addr).request(&get("/stats")).json();
    assert_eq!(stats["topics"]["D"], 1, "{stats}");
    assert_eq!(stats["topics"]["E"], 1, "{stats}");
    let text = Client::connect(srv.addr)
        .request(&get("/metrics"))
        .body_text();
    let samples = strict_samples(&text);
    assert_eq!(
        samples["ssehub_topic_subscribers{topic=\"D\"}"], 1.0,
        "{text}"
    );
    assert_eq!(
        samples["ssehub_topic_subscribers{topic=\"E\"}"], 1.0,
        "{text}"
    );
}

#[test]
fn head_on_short_routes_has_headers_and_no_body() {
    let srv = start(&["--no-demo"]);
    for path in ["/health", "/stats", "/metrics", "/"] {
        let mut c = Client::connect(srv.addr);
        c.send(format!("HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
        let mut raw = Vec::new();
        assert!(c.read_to_end(std::time::Instant::now() + SHORT));
        raw.extend_from_slice(&c.buf);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {text}");
        assert!(text.contains("Content-Length: "), "{path}");
        assert!(
            text.ends_with("\r\n\r\n"),
            "{path}: HEAD carried a body: {text}"
        );
    }
}
