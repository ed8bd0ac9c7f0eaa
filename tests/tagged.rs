//! Tagged streams (#24): `GET /stream?tagged=1` puts a `topic:` line for each of an
//! event's topics and `private: 1` for a private one before the event's lines (live and
//! in replay), so that ssehub.js can share one wider stream among tabs; a stream without
//! it gets the same bytes as before. A bad value is a `400`.

use std::time::Duration;

use serde_json::json;

use crate::auth::pyjwt;
use crate::support::{Client, SHORT, TestServer, publish_json, start};

const KEY: &str = "tagged stream test key, 32+ bytes!";
const TOKEN: &str = "tagged-token";

fn hub() -> TestServer {
    start(&[
        "--no-demo",
        "--heartbeat",
        "0",
        "--jwt-key",
        KEY,
        "--publish-token",
        TOKEN,
    ])
}

/// A raw subscriber on `path` whose stream head and preamble were read.
fn subscribe(srv: &TestServer, path: &str, headers: &[(&str, &str)]) -> Client {
    let mut c = srv.client();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    c.send(req.as_bytes());
    let head = String::from_utf8(c.read_until(b"\r\n\r\n", SHORT)).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let preamble = String::from_utf8(c.read_until(b"\n\n", SHORT)).unwrap();
    assert!(preamble.starts_with("retry: "), "{preamble:?}");
    c
}

/// The next event's bytes, as text.
fn next(c: &mut Client) -> String {
    String::from_utf8(c.read_until(b"\n\n", SHORT)).unwrap()
}

fn publish(srv: &TestServer, body: serde_json::Value) -> String {
    let r = publish_json(srv.addr, TOKEN, &body);
    assert_eq!(r.status, 200, "{}", r.body_text());
    r.json()["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_tagged_stream_names_each_events_topics_and_privacy_and_a_plain_one_is_unchanged() {
    let srv = hub();
    let token = pyjwt(&json!({"mercure": {"subscribe": ["a"]}}), KEY, "HS256");
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let mut tagged = subscribe(&srv, "/stream?topic=a&tagged=1", &auth);
    let mut plain = subscribe(&srv, "/stream?topic=a&tagged=0", &auth);
    srv.wait_subscribers(2, Duration::from_secs(5));
    let one = publish(
        &srv,
        json!({"data": "x", "topic": ["a", "b"], "event": "tick"}),
    );
    let two = publish(&srv, json!({"data": "s\nt", "topic": "a", "private": true}));
    assert_eq!(
        next(&mut tagged),
        format!("topic: a\ntopic: b\nid: {one}\nevent: tick\ndata: x\n\n")
    );
    assert_eq!(
        next(&mut tagged),
        format!("topic: a\nprivate: 1\nid: {two}\ndata: s\ndata: t\n\n")
    );
    assert_eq!(
        next(&mut plain),
        format!("id: {one}\nevent: tick\ndata: x\n\n")
    );
    assert_eq!(next(&mut plain), format!("id: {two}\ndata: s\ndata: t\n\n"));

    // A resume on a tagged stream replays tagged frames.
    let path = format!("/stream?tagged=1&topic=a&lastEventId={one}");
    let mut resumed = subscribe(&srv, &path, &auth);
    assert_eq!(
        next(&mut resumed),
        format!("topic: a\nprivate: 1\nid: {two}\ndata: s\ndata: t\n\n")
    );
}

#[test]
fn a_tagged_value_other_than_0_or_1_is_a_400() {
    let srv = hub();
    for bad in ["yes", "", "2", "true"] {
        let path = format!("/stream?tagged={bad}");
        let r = srv
            .client()
            .request(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert_eq!(r.status, 400, "{bad:?}");
        assert_eq!(r.body_text(), "tagged must be 0 or 1\n", "{bad:?}");
    }
}
