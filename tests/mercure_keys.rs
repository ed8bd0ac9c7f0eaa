//! A key per role, as Mercure's `publisher_jwt` and `subscriber_jwt`:
//! `--jwt-publisher-key` and `--jwt-subscriber-key` (tokens minted by PyJWT). A token
//! signed with the subscriber key must not publish, one signed with the publisher key
//! must not subscribe, on the Mercure path and on ssehub's own routes; a role without a
//! key of its own takes `--jwt-key`.

use std::time::Duration;

use serde_json::json;

use crate::auth::pyjwt;
use crate::mercure::{form_post, get, hub_url};
use crate::support::{Client, SseClient, TestServer, start};

/// The hub path subscribing to topic `t`.
const HUB_T: &str = "/.well-known/mercure?topic=t";
const SHARED: &str = "the shared key of both roles, 32+ bytes";
const PUBLISHER: &str = "the publisher's own key, at least 32 bytes";
const SUBSCRIBER: &str = "the subscriber's own key, at least 32 bytes";

/// A token granting both rights on every topic, signed with `key`.
fn token(key: &str) -> String {
    pyjwt(
        &json!({"mercure": {"subscribe": ["*"], "publish": ["*"]}}),
        key,
        "HS256",
    )
}

fn hub(extra: &[&str]) -> TestServer {
    let mut args = vec!["--no-demo", "--heartbeat", "0"];
    args.extend_from_slice(extra);
    start(&args)
}

/// A form publish of `data` to topic `t` on the hub path with `token`: its status.
fn mercure_publish(t: &TestServer, token: &str, data: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    let r = form_post(
        t,
        &[("Authorization", &bearer)],
        &[("topic", "t"), ("private", "on"), ("data", data)],
    );
    r.status
}

/// A plain-text `POST /publish` of `data` to topic `t` with `token`: its status.
fn native_publish(t: &TestServer, token: &str, data: &str) -> u16 {
    let req = format!(
        "POST /publish?topic=t&private=1 HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{data}",
        data.len()
    );
    Client::connect(t.addr).request(req.as_bytes()).status
}

/// The status of a subscribe to `path` with `headers`, read from the head alone (a
/// stream that opens does not end).
fn subscribe_status(t: &TestServer, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut c = Client::connect(t.addr);
    c.send(req.as_bytes());
    let head = c.read_until(b"\r\n\r\n", Duration::from_secs(5));
    let head = String::from_utf8_lossy(&head);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The status of a subscribe with `token` on the hub path and on `/stream`.
fn subscribe_statuses(t: &TestServer, token: &str) -> [u16; 2] {
    let bearer = format!("Bearer {token}");
    let headers = [("Authorization", bearer.as_str())];
    [
        subscribe_status(t, &hub_url(&[("topic", "t")]), &headers),
        subscribe_status(t, "/stream?topic=t", &headers),
    ]
}

#[test]
fn a_token_of_one_role_does_not_serve_the_other() {
    let t = hub(&[
        "--jwt-publisher-key",
        PUBLISHER,
        "--jwt-subscriber-key",
        SUBSCRIBER,
    ]);
    let (publisher, subscriber) = (token(PUBLISHER), token(SUBSCRIBER));
    // A subscriber's token does not publish, on either route: 401 invalid_token.
    assert_eq!(mercure_publish(&t, &subscriber, "forged"), 401);
    assert_eq!(native_publish(&t, &subscriber, "forged"), 401);
    // A publisher's token does not subscribe, on either route.
    assert_eq!(subscribe_statuses(&t, &publisher), [401, 401]);
    let bearer = format!("Bearer {publisher}");
    let r = get(
        &t,
        &hub_url(&[("topic", "t")]),
        &[("Authorization", &bearer)],
    );
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    // Each token in its own role: the private update reaches the subscriber, on both.
    let bearer = format!("Bearer {subscriber}");
    let headers = [("Authorization", bearer.as_str())];
    let mut mercure = SseClient::connect(t.addr, &hub_url(&[("topic", "t")]), &headers);
    let mut native = SseClient::connect(t.addr, "/stream?topic=t", &headers);
    t.wait_subscribers(2, Duration::from_secs(5));
    assert_eq!(mercure_publish(&t, &publisher, "one"), 200);
    assert_eq!(native_publish(&t, &publisher, "two"), 200);
    for s in [&mut mercure, &mut native] {
        let got: Vec<String> = s.expect_events(2).into_iter().map(|e| e.data).collect();
        assert_eq!(got, ["one", "two"]);
    }
}

#[test]
fn a_role_without_its_own_key_takes_the_shared_one() {
    // Only the publisher has a key of its own: subscribers' tokens use --jwt-key.
    let t = hub(&["--jwt-key", SHARED, "--jwt-publisher-key", PUBLISHER]);
    assert_eq!(mercure_publish(&t, &token(SHARED), "x"), 401);
    assert_eq!(subscribe_statuses(&t, &token(SHARED)), [200, 200]);
    assert_eq!(subscribe_statuses(&t, &token(PUBLISHER)), [401, 401]);
    assert_eq!(mercure_publish(&t, &token(PUBLISHER), "x"), 200);
    drop(t);
    // Only the subscriber has one: publishers' tokens use --jwt-key.
    let t = hub(&["--jwt-key", SHARED, "--jwt-subscriber-key", SUBSCRIBER]);
    assert_eq!(mercure_publish(&t, &token(SUBSCRIBER), "x"), 401);
    assert_eq!(native_publish(&t, &token(SHARED), "x"), 200);
    assert_eq!(subscribe_statuses(&t, &token(SHARED)), [401, 401]);
    assert_eq!(subscribe_statuses(&t, &token(SUBSCRIBER)), [200, 200]);
    drop(t);
    // A publisher key alone: publishing works; no subscriber token is read, so a
    // subscriber is anonymous (public events only) and HUB still answers.
    let t = hub(&["--jwt-publisher-key", PUBLISHER]);
    assert_eq!(mercure_publish(&t, &token(PUBLISHER), "x"), 200);
    assert_eq!(subscribe_status(&t, HUB_T, &[]), 200);
}

#[test]
fn each_role_pins_its_own_algorithm() {
    // Publishers sign with an ES256 key pair (the hub holds the public key), subscribers'
    // tokens are HS256, as Mercure's `publisher_jwt KEY ES256` beside `subscriber_jwt KEY`.
    let (private, public) = crate::mercure_tokens::key_pair("ES256");
    let t = hub(&[
        "--jwt-publisher-alg",
        "ES256",
        "--jwt-publisher-public-key-file",
        &public,
        "--jwt-subscriber-key",
        SUBSCRIBER,
    ]);
    let claims = json!({"mercure": {"subscribe": ["*"], "publish": ["*"]}});
    let publisher = pyjwt(&claims, &private, "ES256");
    let subscriber = token(SUBSCRIBER);
    // An HS256 token does not publish, however signed; an ES256 one does not subscribe.
    let bearer = format!("Bearer {subscriber}");
    let r = form_post(
        &t,
        &[("Authorization", &bearer)],
        &[("topic", "t"), ("data", "x")],
    );
    assert_eq!(r.status, 401);
    assert!(
        r.body_text().contains("alg must be ES256"),
        "{}",
        r.body_text()
    );
    let bearer = format!("Bearer {publisher}");
    let r = get(
        &t,
        &hub_url(&[("topic", "t")]),
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 401);
    assert!(
        r.body_text().contains("alg must be HS256"),
        "{}",
        r.body_text()
    );
    // Each in its role: the private update arrives.
    let bearer = format!("Bearer {subscriber}");
    let mut s = SseClient::connect(
        t.addr,
        &hub_url(&[("topic", "t")]),
        &[("Authorization", &bearer)],
    );
    t.wait_subscribers(1, Duration::from_secs(5));
    assert_eq!(mercure_publish(&t, &publisher, "signed ES256"), 200);
    assert_eq!(native_publish(&t, &publisher, "again"), 200);
    let got: Vec<String> = s.expect_events(2).into_iter().map(|e| e.data).collect();
    assert_eq!(got, ["signed ES256", "again"]);
}
