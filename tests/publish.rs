//! `POST /publish`: authentication, JSON and plain-text bodies, chunked bodies, limits,
//! refused input that reaches nobody, multi-line data, and topic filtering.

use std::cell::RefCell;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use serde_json::json;

use crate::support::{Client, SHORT, SseClient, get, post_publish, publish_json, start};

const TOKEN: &str = "tok-123";

fn publisher() -> crate::support::TestServer {
    start(&["--no-demo", "--heartbeat", "0", "--publish-token", TOKEN])
}

#[test]
fn publish_without_a_configured_token_is_403_naming_the_flag() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut c = Client::connect(srv.addr);
    let r = c.request(&post_publish(
        "",
        Some("x"),
        "application/json",
        br#"{"data":1}"#,
    ));
    r.assert_refusal(403);
    assert!(
        r.body_text().contains("--publish-token"),
        "{}",
        r.body_text()
    );
    assert_eq!(srv.hub.last_id(), None);
}

#[test]
fn publish_without_a_token_is_401_with_www_authenticate() {
    let srv = publisher();
    let r = Client::connect(srv.addr).request(&post_publish(
        "",
        None,
        "application/json",
        br#"{"data":1}"#,
    ));
    r.assert_refusal(401);
    assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
    assert_eq!(srv.hub.last_id(), None);
}

#[test]
fn publish_with_a_wrong_token_is_401() {
    let srv = publisher();
    for wrong in ["tok-124", "tok-12", "tok-1234", "TOK-123"] {
        let r = Client::connect(srv.addr).request(&post_publish(
            "",
            Some(wrong),
            "application/json",
            br#"{"data":1}"#,
        ));
        r.assert_refusal(401);
        assert_eq!(
            r.header("WWW-Authenticate"),
            Some("Bearer error=\"invalid_token\"")
        );
    }
    assert_eq!(srv.hub.last_id(), None);
}

#[test]
fn publish_json_answers_the_id_and_the_number_of_subscribers_reached() {
    let srv = publisher();
    let mut all1 = SseClient::open(srv.addr, "/stream");
    let mut all2 = SseClient::open(srv.addr, "/stream");
    let mut news = SseClient::open(srv.addr, "/stream?topic=news");
    srv.wait_subscribers(3, SHORT);
    let r = publish_json(
        srv.addr,
        TOKEN,
        &json!({"data": {"k": [1, 2]}, "event": "upd"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    // Ids are strings: `<epoch>-<offset>`, the offset dense from 1.
    let epoch = srv.hub.epoch();
    let (first, second) = (format!("{epoch}-1"), format!("{epoch}-2"));
    assert_eq!(r.json(), json!({"id": first, "delivered_to": 2}));
    let r = publish_json(srv.addr, TOKEN, &json!({"data": "hot", "topic": "news"}));
    assert_eq!(r.json(), json!({"id": second, "delivered_to": 3}));
    for s in [&mut all1, &mut all2] {
        let ev = s.expect_event();
        assert_eq!((ev.id.as_str(), ev.event.as_str()), (first.as_str(), "upd"));
        let v: serde_json::Value = serde_json::from_str(&ev.data).unwrap();
        assert_eq!(v, json!({"k": [1, 2]}));
        assert_eq!(s.expect_event().data, "hot");
    }
    let ev = news.expect_event();
    assert_eq!(
        (ev.id.as_str(), ev.data.as_str(), ev.event.as_str()),
        (second.as_str(), "hot", "message")
    );
}

#[test]
fn plain_text_body_takes_event_and_topic_from_the_query() {
    let srv = publisher();
    let mut s = SseClient::open(srv.addr, "/stream?topic=t");
    srv.wait_subscribers(1, SHORT);
    let r = Client::connect(srv.addr).request(&post_publish(
        "?event=x&topic=t",
        Some(TOKEN),
        "text/plain",
        b"hello text",
    ));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["delivered_to"], 1);
    let ev = s.expect_event();
    assert_eq!((ev.event.as_str(), ev.data.as_str()), ("x", "hello text"));
}

#[test]
fn chunked_request_body_is_published() {
    let srv = publisher();
    let mut s = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(1, SHORT);
    let mut c = Client::connect(srv.addr);
    c.send(
        format!(
            "POST /publish HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
             5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(s.expect_event().data, "hello world");
    // The connection stays usable after a chunked body.
    assert_eq!(c.request(&get("/health")).status, 200);
}

#[test]
fn body_over_max_body_is_413_by_length_and_by_chunks() {
    let srv = start(&[
        "--no-demo",
        "--heartbeat",
        "0",
        "--publish-token",
        TOKEN,
        "--max-body",
        "1024",
    ]);
    let big = vec![b'a'; 2000];
    let r = Client::connect(srv.addr).request(&post_publish("", Some(TOKEN), "text/plain", &big));
    r.assert_refusal(413);
    let mut c = Client::connect(srv.addr);
    let mut req = format!(
        "POST /publish HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..4 {
        req.extend_from_slice(b"200\r\n");
        req.extend_from_slice(&[b'b'; 0x200]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = c.request(&req);
    r.assert_refusal(413);
    c.assert_closed();
    // Exactly at the limit is fine.
    let r = Client::connect(srv.addr).request(&post_publish(
        "",
        Some(TOKEN),
        "text/plain",
        &[b'c'; 1024],
    ));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(srv.hub.last_id().map(|id| id.offset), Some(1));
}

#[test]
fn refused_publish_bodies_get_400_and_reach_nobody() {
    let srv = publisher();
    let mut s = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(1, SHORT);
    let json_cases: &[&[u8]] = &[
        b"{",
        b"not json at all",
        b"[1,2]",
        b"{}",
        br#"{"data":"x","event":5}"#,
        br#"{"data":"x","topic":[]}"#,
        br#"{"data":"x","event":"a\nb"}"#,
        br#"{"data":"x","event":"a\r\nid: 99"}"#,
        br#"{"data":"x","topic":"a b"}"#,
        br#"{"data":"x","topic":""}"#,
        br#"{"data":"nul \u0000 inside"}"#,
        br#"{"data":"x","extra":1}"#,
    ];
    for body in json_cases {
        let r = Client::connect(srv.addr).request(&post_publish(
            "",
            Some(TOKEN),
            "application/json",
            body,
        ));
        assert_eq!(r.status, 400, "{:?}: {r:?}", String::from_utf8_lossy(body));
        let text = r.body_text();
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "not one line: {text:?}"
        );
    }
    for query in ["?event=a%0Ab", "?topic=a%20b", "?event="] {
        let r = Client::connect(srv.addr).request(&post_publish(
            query,
            Some(TOKEN),
            "text/plain",
            b"x",
        ));
        assert_eq!(r.status, 400, "{query}: {r:?}");
    }
    let r = Client::connect(srv.addr).request(&post_publish(
        "",
        Some(TOKEN),
        "text/plain",
        b"\xff\xfe not utf-8",
    ));
    assert_eq!(r.status, 400, "{r:?}");
    // Nothing of the above went out; the stream still works.
    assert_eq!(srv.hub.last_id(), None);
    publish_json(srv.addr, TOKEN, &json!({"data": "good"}));
    let ev = s.expect_event();
    assert_eq!((ev.offset(), ev.data.as_str()), (1, "good"));
}

#[test]
fn multi_line_data_arrives_with_lf_line_breaks() {
    let srv = publisher();
    let mut s = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(1, SHORT);
    publish_json(srv.addr, TOKEN, &json!({"data": "a\nb\r\nc\rd"}));
    publish_json(srv.addr, TOKEN, &json!({"data": "\n lead\n\ntrail\n"}));
    publish_json(srv.addr, TOKEN, &json!({"data": ""}));
    assert_eq!(s.expect_event().data, "a\nb\nc\nd");
    assert_eq!(s.expect_event().data, "\n lead\n\ntrail\n");
    assert_eq!(s.expect_event().data, "");
    assert!(s.wait_raw(b"data: a\ndata: b\ndata: c\ndata: d\n\n", SHORT));
}

/// Publishes `body` as `application/json` with the token; the answer's id.
fn publish_raw_json(srv: &crate::support::TestServer, body: &[u8]) -> String {
    let r =
        Client::connect(srv.addr).request(&post_publish("", Some(TOKEN), "application/json", body));
    assert_eq!(r.status, 200, "{:?}: {r:?}", String::from_utf8_lossy(body));
    r.json()["id"]
        .as_str()
        .expect("the id is a string")
        .to_owned()
}

#[test]
fn json_data_arrives_as_the_publishers_exact_text() {
    let srv = publisher();
    let mut s = SseClient::open(srv.addr, "/stream");
    s.keep_raw = true;
    srv.wait_subscribers(1, SHORT);
    // Key order and a number no float can hold: kept as written, not re-serialised.
    let compact = r#"{"b":1,"a":12345678901234567890123}"#;
    // Pretty-printed, with a tab, an escape and an inner blank-free layout.
    let pretty = "{\n  \"z\": [\n    1.0,\n    -0,\n\t\"\\u00e9\"\n  ],\n  \"a\": {}\n}";
    // The same text with CRLF line breaks: CR can only be whitespace in JSON text.
    let crlf = pretty.replace('\n', "\r\n");
    let bodies = [
        format!(r#"{{"data":{compact}}}"#),
        format!("{{\"data\":  {pretty}  \n}}"),
        format!("{{\r\n\"data\": {crlf}\r\n}}"),
    ];
    for body in &bodies {
        publish_raw_json(&srv, body.as_bytes());
    }
    let got: Vec<String> = s.expect_events(3).into_iter().map(|e| e.data).collect();
    assert_eq!(got[0], compact);
    assert_eq!(got[1], pretty);
    // CRLF arrives as LF, which is all SSE carries: the pretty text, byte for byte.
    assert_eq!(got[2], pretty);
    // On the wire: one data line per line of the text, leading whitespace kept.
    assert!(s.wait_raw(
        b"data: {\ndata:   \"z\": [\ndata:     1.0,\ndata:     -0,\ndata: \t\"\\u00e9\"\n",
        SHORT
    ));
}

#[test]
fn duplicate_top_level_keys_are_refused_naming_the_key() {
    let srv = publisher();
    let mut s = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(1, SHORT);
    for (body, key) in [
        (r#"{"data":"a","data":"b"}"#, "data"),
        (r#"{"data":"x","topic":"a","topic":"b"}"#, "topic"),
        (r#"{"event":"e","data":1,"ev\u0065nt":"f"}"#, "event"),
    ] {
        let r = Client::connect(srv.addr).request(&post_publish(
            "",
            Some(TOKEN),
            "application/json",
            body.as_bytes(),
        ));
        assert_eq!(r.status, 400, "{body}: {r:?}");
        let text = r.body_text();
        assert!(
            text.contains(&format!("duplicate field \"{key}\"")),
            "{body}: {text:?}"
        );
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "{text:?}"
        );
    }
    assert_eq!(srv.hub.last_id(), None);
    // Inside data, duplicates are the publisher's text and go out as written.
    let id = publish_raw_json(&srv, br#"{"data":{"k":1,"k":2}}"#);
    let ev = s.expect_event();
    assert_eq!((ev.id, ev.data.as_str()), (id, r#"{"k":1,"k":2}"#));
}

fn data_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>().prop_filter("no NUL", |c| *c != '\0'),
        1 => Just('\r'),
        1 => Just('\n'),
        1 => Just(' '),
        1 => Just(':'),
    ]
}

#[test]
fn published_data_round_trips_except_cr_and_crlf_become_lf() {
    let srv = publisher();
    let sub = RefCell::new(SseClient::open(srv.addr, "/stream"));
    srv.wait_subscribers(1, SHORT);
    let publisher = RefCell::new(Client::connect(srv.addr));
    let mut runner = TestRunner::new(PropConfig {
        cases: 64,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..PropConfig::default()
    });
    let strategy = proptest::collection::vec(data_char(), 0..200)
        .prop_map(|cs| cs.into_iter().collect::<String>());
    let result = runner.run(&strategy, |data| {
        let body = json!({ "data": data }).to_string();
        let r = publisher.borrow_mut().request(&post_publish(
            "",
            Some(TOKEN),
            "application/json",
            body.as_bytes(),
        ));
        prop_assert_eq!(r.status, 200, "{:?}", r);
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let ev = sub
            .borrow_mut()
            .next_event(Duration::from_secs(5))
            .expect("event");
        prop_assert_eq!(ev.id, id);
        let want = data.replace("\r\n", "\n").replace('\r', "\n");
        prop_assert_eq!(ev.data, want);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn topic_filters_select_events_per_subscriber() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut only_a = SseClient::open(srv.addr, "/stream?topic=a");
    let mut a_and_b = SseClient::open(srv.addr, "/stream?topic=a&topic=b");
    let mut all = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(3, SHORT);
    srv.publish("a", None, "1");
    srv.publish("b", None, "2");
    srv.publish("c", None, "3");
    srv.publish("a", None, "4");
    let data = |s: &mut SseClient, n| -> Vec<String> {
        s.expect_events(n).into_iter().map(|e| e.data).collect()
    };
    assert_eq!(data(&mut only_a, 2), ["1", "4"]);
    assert_eq!(data(&mut a_and_b, 3), ["1", "2", "4"]);
    assert_eq!(data(&mut all, 4), ["1", "2", "3", "4"]);
    // Ids stay the hub's: a filtered subscriber sees the gaps.
    let stats = Client::connect(srv.addr).request(&get("/stats")).json();
    assert_eq!(stats["topics"]["a"], 2, "{stats}");
}

#[test]
fn bad_topic_in_stream_query_is_400() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let long = format!(
        "/stream?topic={}",
        "t".repeat(ssehub::topic::MAX_TOPIC_BYTES + 1)
    );
    for path in [
        "/stream?topic=a%20b",
        "/stream?topic=",
        "/stream?topic=a%0Ab",
        &long,
    ] {
        let r = Client::connect(srv.addr).request(&get(path));
        assert_eq!(r.status, 400, "{path}: {r:?}");
        let text = r.body_text();
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "{text:?}"
        );
    }
    assert!(srv.hub.is_empty());
}
