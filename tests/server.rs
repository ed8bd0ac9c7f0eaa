//! End to end through the in-process server: the stream head, what a subscriber receives,
//! hang-ups, keep-alive, pipelining and the connection cap.

use std::time::{Duration, Instant};

use crate::support::{Client, SHORT, SseClient, assert_healthy, get, start, wait_for};

#[test]
fn stream_head_is_exact_and_never_compressed() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut c = Client::connect(srv.addr);
    c.send(b"GET /stream HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip, br\r\n\r\n");
    let head = c.read_until(b"\r\n\r\n", SHORT);
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let h = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(h("content-type"), Some("text/event-stream"));
    assert_eq!(h("cache-control"), Some("no-cache, no-transform"));
    assert_eq!(h("x-accel-buffering"), Some("no"));
    assert_eq!(h("content-length"), None, "{head}");
    assert_eq!(h("content-encoding"), None, "{head}");
    assert_eq!(h("transfer-encoding"), None, "{head}");
}

#[test]
fn retry_and_comment_arrive_at_once_before_any_event() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--retry-ms", "1000"]);
    let started = Instant::now();
    let mut s = SseClient::open(srv.addr, "/stream");
    // Nothing is published: whatever arrives is the preamble.
    assert!(s.wait_raw(b"\n\n", SHORT), "raw: {:?}", s.raw);
    assert!(started.elapsed() < Duration::from_secs(1));
    let retry = s.parser.retry.expect("a retry: line");
    assert!((800..=1200).contains(&retry), "retry {retry} not 1000 ±20%");
    assert!(!s.parser.comments.is_empty(), "no comment line");
    assert_eq!(s.parser.comments[0].0, 0, "comment after an event");
    s.assert_no_event(Duration::from_millis(100));
}

#[test]
fn demo_producer_sends_tick_events_with_json_seq() {
    let srv = start(&[
        "--min-interval-ms",
        "20",
        "--max-interval-ms",
        "40",
        "--heartbeat",
        "0",
    ]);
    let mut s = SseClient::open(srv.addr, "/stream");
    let events = s.expect_events(4);
    let mut last: Option<(u64, u64)> = None;
    for ev in &events {
        assert_eq!(ev.event, "tick");
        let v: serde_json::Value = serde_json::from_str(&ev.data).expect("JSON data");
        let seq = v["seq"].as_u64().expect("numeric seq");
        let id = ev.offset();
        if let Some((pid, pseq)) = last {
            assert_eq!(id, pid + 1, "ids not consecutive: {events:?}");
            assert_eq!(seq, pseq + 1, "seq not consecutive: {events:?}");
        }
        last = Some((id, seq));
    }
}

#[test]
fn heartbeat_comment_arrives_on_its_interval() {
    let srv = start(&["--no-demo", "--heartbeat", "0.2"]);
    let started = Instant::now();
    let mut s = SseClient::open(srv.addr, "/stream");
    assert!(s.wait_raw(b": heartbeat\n", SHORT), "raw: {:?}", s.raw);
    assert!(started.elapsed() < Duration::from_secs(1));
    // And again: it is periodic.
    let first = crate::support::find(&s.raw, b": heartbeat").unwrap();
    s.raw.drain(..first + 3);
    assert!(s.wait_raw(b": heartbeat\n", SHORT));
    s.assert_no_event(Duration::from_millis(10));
}

#[test]
fn hung_up_subscriber_leaves_the_hub_at_once() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let s = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(1, SHORT);
    let closed = Instant::now();
    drop(s);
    srv.wait_subscribers(0, SHORT);
    assert!(closed.elapsed() < Duration::from_secs(1));
    let snap = srv.handle.snapshot();
    assert_eq!(snap.ended[2], 1, "hung_up not counted: {snap:?}");
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut c = Client::connect(srv.addr);
    for path in ["/health", "/stats", "/metrics", "/", "/health"] {
        let r = c.request(&get(path));
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_ne!(
            r.header("Connection").map(str::to_ascii_lowercase),
            Some("close".into())
        );
    }
    let stats = c.request(&get("/stats")).json();
    assert_eq!(stats["connections_total"], 1, "{stats}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut c = Client::connect(srv.addr);
    let mut all = get("/health");
    all.extend(get("/metrics"));
    all.extend(get("/health"));
    c.send(&all);
    let a = c.read_response();
    let b = c.read_response();
    let d = c.read_response();
    for r in [&a, &b, &d] {
        assert_eq!(r.status, 200);
    }
    assert_eq!(a.header("Content-Type"), Some("application/json"));
    assert!(b.header("Content-Type").unwrap().starts_with("text/plain"));
    assert_eq!(d.header("Content-Type"), Some("application/json"));
    assert!(b.body_text().contains("ssehub_"), "{}", b.body_text());
}

#[test]
fn http10_request_is_closed_after_the_answer() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut c = Client::connect(srv.addr);
    let r = c.request(b"GET /health HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    c.assert_closed();
}

#[test]
fn leading_crlfs_before_a_request_are_ignored() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut c = Client::connect(srv.addr);
    let r = c.request(b"\r\n\r\n\r\nGET /health HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(r.status, 200);
}

#[test]
fn expect_100_continue_gets_interim_response_then_the_answer() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--publish-token", "t0k"]);
    let mut c = Client::connect(srv.addr);
    let body = br#"{"data":"after continue"}"#;
    c.send(
        format!(
            "POST /publish HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer t0k\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let interim = c.read_response();
    assert_eq!(interim.status_line, "HTTP/1.1 100 Continue");
    c.send(body);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["id"], format!("{}-1", srv.hub.epoch()));
}

#[test]
fn connection_over_max_clients_gets_503_with_retry_after() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--max-clients", "2"]);
    let a = SseClient::open(srv.addr, "/stream");
    let _b = SseClient::open(srv.addr, "/stream");
    let mut c = Client::connect(srv.addr);
    c.send(&get("/stream"));
    let r = c.read_response();
    r.assert_refusal(503);
    assert!(r.header("Retry-After").is_some(), "{r:?}");
    c.assert_closed();
    // A freed slot is usable again.
    drop(a);
    srv.wait_subscribers(1, SHORT);
    wait_for(SHORT, || srv.handle.connections() <= 1).expect("slots released");
    let _again = SseClient::open(srv.addr, "/stream");
}

#[test]
fn health_reports_ok_and_client_count() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let _s = SseClient::open(srv.addr, "/stream");
    let r = Client::connect(srv.addr).request(&get("/health"));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["clients"], 1);
    assert_healthy(srv.addr);
}

/// A client may half-close (shut its sending side down after the request, as `nc -q`
/// does) and still read: only a full close or a reset is a hang-up.
#[test]
fn half_closed_subscriber_keeps_receiving_events() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut s = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(1, SHORT);
    s.client.stream.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    srv.publish("default", None, "still here");
    let ev = s.next_event(SHORT);
    assert_eq!(
        ev.map(|e| e.data),
        Some("still here".to_owned()),
        "stream ended after a half-close (eof: {})",
        s.eof
    );
}

#[test]
fn publish_body_then_pipelined_request_are_both_answered() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--publish-token", "k"]);
    let mut c = Client::connect(srv.addr);
    let mut req = crate::support::post_publish("", Some("k"), "text/plain", b"one");
    req.extend(crate::support::post_publish(
        "",
        Some("k"),
        "text/plain",
        b"two",
    ));
    req.extend(get("/health"));
    c.send(&req);
    let epoch = srv.hub.epoch();
    assert_eq!(c.read_response().json()["id"], format!("{epoch}-1"));
    assert_eq!(c.read_response().json()["id"], format!("{epoch}-2"));
    assert_eq!(c.read_response().json()["status"], "ok");
}

#[test]
fn head_request_on_stream_gets_the_head_only() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut c = Client::connect(srv.addr);
    c.send(b"HEAD /stream HTTP/1.1\r\nHost: test\r\n\r\n");
    let head = c.read_until(b"\r\n\r\n", SHORT);
    assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"));
    c.assert_closed();
    assert!(c.buf.is_empty(), "body after a HEAD: {:?}", c.buf);
    assert!(srv.hub.is_empty());
}

#[test]
fn metrics_are_prometheus_text() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let _s = SseClient::open(srv.addr, "/stream");
    let r = Client::connect(srv.addr).request(&get("/metrics"));
    assert_eq!(r.status, 200);
    let text = r.body_text();
    let mut samples = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').expect("name value");
        assert!(name.starts_with("ssehub_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
        samples += 1;
    }
    assert!(samples > 5, "{text}");
}
