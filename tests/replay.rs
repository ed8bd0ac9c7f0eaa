//! Resuming a stream from the replay history with `Last-Event-ID` (or `?lastEventId=`):
//! continue, reset (with its reasons) and initialized, in the body and in the
//! `SSE-Resume` header.

use std::time::Duration;

use ssehub::Topic;
use ssehub::sse::Event;

use crate::support::{Client, SHORT, SseClient, SseEvent, SseParser, TestServer, get, start};

/// Checks that `ev` is a reset event for `reason` after the client sent `sent`, and
/// returns its JSON data.
fn assert_reset(ev: &SseEvent, reason: &str, sent: &str) -> serde_json::Value {
    assert_eq!(ev.event, "reset", "{ev:?}");
    let j = ev.json();
    assert_eq!(j["reason"], reason, "{ev:?}");
    assert_eq!(j["last_event_id"], sent, "{ev:?}");
    let keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 5, "{ev:?}");
    j
}

/// The `SSE-Resume` header of a stream.
fn outcome(s: &SseClient) -> &str {
    s.head.header("SSE-Resume").expect("SSE-Resume header")
}

/// `<epoch>-<offset>` of the server's history.
fn id(srv: &TestServer, offset: u64) -> String {
    format!("{}-{offset}", srv.hub.epoch())
}

/// Reads 10 events, hangs up while a publisher keeps going, resumes from the last id seen
/// (by header or query) and checks every later event arrives exactly once, in order.
fn resume_sees_every_later_event_once(by_header: bool) {
    const TOTAL: u64 = 300;
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut first = SseClient::open(srv.addr, "/stream");
    assert_eq!(outcome(&first), "initialized");
    srv.wait_subscribers(1, SHORT);
    let hub = srv.hub.clone();
    let publisher = std::thread::spawn(move || {
        let topic = Topic::default_topic();
        for i in 1..=TOTAL {
            hub.publish(&topic, &Event::new(format!("n{i}")).unwrap());
            std::thread::sleep(Duration::from_micros(700));
        }
    });
    let seen = first.expect_events(10);
    let last = seen.last().unwrap().clone();
    assert_eq!(last.offset(), 10);
    assert_eq!(last.id, id(&srv, 10));
    drop(first);
    std::thread::sleep(Duration::from_millis(30));
    let mut second = if by_header {
        SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", &last.id)])
    } else {
        SseClient::open(srv.addr, &format!("/stream?lastEventId={}", last.id))
    };
    assert_eq!(outcome(&second), "continue");
    let mut ids = Vec::new();
    while ids.last() != Some(&TOTAL) {
        let ev = second
            .next_event(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("stalled after ids {ids:?}"));
        assert_eq!(ev.data, format!("n{}", ev.offset()));
        assert_eq!(ev.event_id().epoch, srv.hub.epoch());
        ids.push(ev.offset());
        assert!(ids.len() as u64 <= TOTAL, "too many events");
    }
    publisher.join().unwrap();
    let want: Vec<u64> = (11..=TOTAL).collect();
    assert_eq!(ids, want);
    second.assert_no_event(Duration::from_millis(50));
}

#[test]
fn resume_with_last_event_id_header_gets_every_later_event_exactly_once() {
    resume_sees_every_later_event_once(true);
}

#[test]
fn resume_with_last_event_id_query_gets_every_later_event_exactly_once() {
    resume_sees_every_later_event_once(false);
}

#[test]
fn id_older_than_the_history_gets_an_evicted_reset_then_what_is_retained() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--history", "5"]);
    for i in 1..=20 {
        srv.publish("default", None, &i.to_string());
    }
    let sent = id(&srv, 2);
    let mut s = SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", &sent)]);
    assert_eq!(outcome(&s), "reset");
    let reset = s.expect_event();
    let j = assert_reset(&reset, "evicted", &sent);
    assert_eq!(j["replay_from"], id(&srv, 16));
    assert_eq!(j["first_retained"], id(&srv, 16));
    assert_eq!(j["last"], id(&srv, 20));
    // No `id:` line: the reset does not move the last event id.
    assert_eq!(reset.id, "");
    let ids: Vec<u64> = s.expect_events(5).iter().map(|e| e.offset()).collect();
    assert_eq!(ids, [16, 17, 18, 19, 20]);
    s.assert_no_event(Duration::from_millis(100));
    // Then live.
    srv.publish("default", None, "21");
    assert_eq!(s.expect_event().offset(), 21);
}

#[test]
fn id_exactly_at_the_history_edge_continues_without_a_reset() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--history", "5"]);
    for i in 1..=20 {
        srv.publish("default", None, &i.to_string());
    }
    let mut s = SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", &id(&srv, 15))]);
    assert_eq!(outcome(&s), "continue");
    let got = s.expect_events(5);
    assert!(got.iter().all(|e| e.event == "message"), "{got:?}");
    let ids: Vec<u64> = got.iter().map(|e| e.offset()).collect();
    assert_eq!(ids, [16, 17, 18, 19, 20]);
}

#[test]
fn ids_that_cannot_be_placed_get_a_reset_and_no_replay_then_live() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    for i in 1..=3 {
        srv.publish("default", None, &i.to_string());
    }
    let future = id(&srv, 999);
    // (how it is sent, what the hub sees, the reason)
    let cases: Vec<(SseClient, String, &str)> = vec![
        (
            SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", "3")]),
            "3".into(),
            "unknown",
        ),
        (
            SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", "abc")]),
            "abc".into(),
            "unknown",
        ),
        (
            SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", "-1")]),
            "-1".into(),
            "unknown",
        ),
        (
            SseClient::open(srv.addr, "/stream?lastEventId=99999999999999999999999"),
            "99999999999999999999999".into(),
            "unknown",
        ),
        (
            SseClient::open(srv.addr, "/stream?lastEventId=x%201"),
            "x 1".into(),
            "unknown",
        ),
        (
            SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", &future)]),
            future.clone(),
            "future",
        ),
    ];
    let mut subs = Vec::new();
    for (mut s, sent, reason) in cases {
        assert_eq!(outcome(&s), "reset", "{sent}");
        let j = assert_reset(&s.expect_event(), reason, &sent);
        assert!(j["replay_from"].is_null(), "{sent}: nothing is replayed");
        assert_eq!(j["first_retained"], id(&srv, 1));
        assert_eq!(j["last"], id(&srv, 3));
        subs.push(s);
    }
    let empty = SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", "")]);
    assert_eq!(outcome(&empty), "initialized");
    subs.push(empty);
    srv.wait_subscribers(subs.len(), SHORT);
    srv.publish("default", None, "fresh");
    for s in &mut subs {
        let ev = s.expect_event();
        assert_eq!((ev.offset(), ev.data.as_str()), (4, "fresh"));
    }
    let stats = Client::connect(srv.addr).request(&get("/stats")).json();
    assert_eq!(stats["resumes"]["reset"], 6, "{stats}");
    assert_eq!(stats["resumes"]["initialized"], 1, "{stats}");
    assert_eq!(stats["resumes"]["resets"]["unknown"], 5, "{stats}");
    assert_eq!(stats["resumes"]["resets"]["future"], 1, "{stats}");
}

#[test]
fn sse_resume_header_on_get_and_head_and_the_header_wins_over_the_query() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    srv.publish("default", None, "1");
    srv.publish("default", None, "2");
    let good = id(&srv, 1);
    let head = |path: &str, headers: &[(&str, &str)]| {
        let mut req = format!("HEAD {path} HTTP/1.1\r\nHost: test\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut c = Client::connect(srv.addr);
        c.send(req.as_bytes());
        let r = c.read_response_within(SHORT);
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.is_empty(), "{r:?}");
        r.header("SSE-Resume").map(str::to_owned)
    };
    // (path, request headers, the outcome)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: &[Case<'_>] = &[
        ("/stream".into(), vec![], "initialized"),
        ("/stream".into(), vec![("Last-Event-ID", &good)], "continue"),
        (format!("/stream?lastEventId={good}"), vec![], "continue"),
        ("/stream?lastEventId=3".into(), vec![], "reset"),
        // The header wins over the query, either way round.
        (
            "/stream?lastEventId=garbage".into(),
            vec![("Last-Event-ID", &good)],
            "continue",
        ),
        (
            format!("/stream?lastEventId={good}"),
            vec![("Last-Event-ID", "garbage")],
            "reset",
        ),
    ];
    for (path, headers, want) in cases {
        assert_eq!(
            head(path, headers).as_deref(),
            Some(*want),
            "HEAD {path} {headers:?}"
        );
        let mut s = SseClient::connect(srv.addr, path, headers);
        assert_eq!(outcome(&s), *want, "GET {path} {headers:?}");
        match *want {
            "continue" => assert_eq!(s.expect_event().offset(), 2),
            "reset" => assert_eq!(s.expect_event().event, "reset"),
            _ => s.assert_no_event(Duration::from_millis(50)),
        }
    }
    // HEAD does not count as a resume; every GET does.
    let stats = Client::connect(srv.addr).request(&get("/stats")).json();
    assert_eq!(stats["resumes"]["continue"], 3, "{stats}");
    assert_eq!(stats["resumes"]["reset"], 2, "{stats}");
    assert_eq!(stats["resumes"]["initialized"], 1, "{stats}");
    let metrics = Client::connect(srv.addr)
        .request(&get("/metrics"))
        .body_text();
    for line in [
        "ssehub_resumes_total{outcome=\"continue\"} 3",
        "ssehub_resumes_total{outcome=\"reset\"} 2",
        "ssehub_resets_total{reason=\"unknown\"} 2",
        "ssehub_resets_total{reason=\"other-epoch\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in {metrics}"
        );
    }
}

#[test]
fn the_reset_is_an_event_a_whatwg_parser_dispatches_as_reset_without_moving_the_id() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    srv.publish("default", None, "kept");
    let sent = "1700000000000-7";
    let mut s = SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", sent)]);
    // The reset and the replayed event, as raw bytes of the body.
    s.expect_events(2);
    let body = s.raw.clone();
    // A browser that resumed with `sent` holds it as its last event id: feed a parser
    // that state, then the body one byte at a time.
    let mut p = SseParser::new();
    let before = p.feed(format!("id: {sent}\ndata: before\n\n").as_bytes());
    assert_eq!(before.len(), 1);
    let mut got = Vec::new();
    for b in &body {
        got.extend(p.feed(std::slice::from_ref(b)));
    }
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].event, "reset");
    assert_eq!(got[0].id, sent, "the reset must not move the last event id");
    let j = assert_reset(&got[0], "other-epoch", sent);
    assert_eq!(j["replay_from"], id(&srv, 1));
    assert!(!got[0].data.contains('\n'), "one line of JSON");
    // The replayed event carries its own id, which the client then holds.
    assert_eq!(
        (got[1].event.as_str(), got[1].data.as_str()),
        ("message", "kept")
    );
    assert_eq!(got[1].id, id(&srv, 1));
}

#[test]
fn replay_respects_the_topic_filter() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    for (i, t) in ["a", "b", "a", "c", "a"].iter().enumerate() {
        srv.publish(t, None, &format!("{t}{}", i + 1));
    }
    let mut s = SseClient::connect(
        srv.addr,
        "/stream?topic=a",
        &[("Last-Event-ID", &id(&srv, 1))],
    );
    let got: Vec<String> = s.expect_events(2).into_iter().map(|e| e.data).collect();
    assert_eq!(got, ["a3", "a5"]);
    s.assert_no_event(Duration::from_millis(50));
    // A reset replays only the client's topics too.
    let mut s = SseClient::connect(srv.addr, "/stream?topic=a", &[("Last-Event-ID", "1-1")]);
    let j = assert_reset(&s.expect_event(), "other-epoch", "1-1");
    assert_eq!(j["replay_from"], id(&srv, 1));
    let got: Vec<String> = s.expect_events(3).into_iter().map(|e| e.data).collect();
    assert_eq!(got, ["a1", "a3", "a5"]);
    s.assert_no_event(Duration::from_millis(50));
}

#[test]
fn replay_backlog_larger_than_the_queue_is_delivered_whole() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--queue", "8"]);
    for i in 1..=500 {
        srv.publish("default", None, &format!("h{i}"));
    }
    // Offset 0 of this epoch: before the first event.
    let mut s = SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", &id(&srv, 0))]);
    assert_eq!(outcome(&s), "continue");
    for i in 501..=510 {
        srv.publish("default", None, &format!("h{i}"));
        std::thread::sleep(Duration::from_millis(2));
    }
    let ids: Vec<u64> = s.expect_events(510).iter().map(|e| e.offset()).collect();
    assert_eq!(ids, (1..=510).collect::<Vec<_>>());
}

#[test]
fn other_origins_allowed_by_cors_may_read_the_sse_resume_header() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--cors-origin", "*"]);
    let s = SseClient::connect(srv.addr, "/stream", &[("Origin", "http://app.test")]);
    assert_eq!(s.head.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(
        s.head.header("Access-Control-Expose-Headers"),
        Some("SSE-Resume")
    );
    assert_eq!(outcome(&s), "initialized");
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let s = SseClient::connect(srv.addr, "/stream", &[("Origin", "http://app.test")]);
    assert_eq!(s.head.header("Access-Control-Expose-Headers"), None);
}
