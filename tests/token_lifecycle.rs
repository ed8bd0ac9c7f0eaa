//! The token lifecycle (#24): a `token-expiring` event before `exp` on `/stream` and the
//! Mercure path; an expired or invalid token is a `401` on both, even where anonymous
//! streams are served; the per-token cap on streams (`429`); and `/ssehub.js` with its
//! `ETag`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::auth::pyjwt;
use crate::support::{Response, SHORT, SseClient, TestServer, get, start};

const KEY: &str = "token lifecycle test key, 32+ bytes";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hub(extra: &[&str]) -> TestServer {
    let mut args = vec!["--no-demo", "--heartbeat", "0", "--jwt-key", KEY];
    args.extend_from_slice(extra);
    start(&args)
}

fn request(srv: &TestServer, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    srv.client().request(req.as_bytes())
}

fn metric(srv: &TestServer, name: &str) -> u64 {
    let text = srv.client().request(&get("/metrics")).body_text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

const PATHS: [&str; 2] = ["/stream?topic=a", "/.well-known/mercure?topic=a"];

#[test]
fn token_expiring_comes_the_notice_before_exp_on_both_paths() {
    let srv = hub(&["--token-notice", "2"]);
    let exp = now() + 4;
    let token = pyjwt(
        &json!({"mercure": {"subscribe": ["a"]}, "exp": exp}),
        KEY,
        "HS256",
    );
    let cookie = format!("mercureAuthorization={token}");
    let mut streams: Vec<SseClient> = PATHS
        .iter()
        .map(|p| SseClient::connect(srv.addr, p, &[("Cookie", &cookie)]))
        .collect();
    for s in &mut streams {
        let ev = s
            .next_event(Duration::from_secs(5))
            .expect("a token-expiring event before exp");
        assert_eq!(ev.event, "token-expiring");
        let data: Value = serde_json::from_str(&ev.data).unwrap();
        assert_eq!(data["exp"], json!(exp));
        assert!(data["expires_in"].as_u64().unwrap() <= 2, "{data}");
        assert!(now() < exp + 1, "sent before exp");
        assert!(s.wait_eof(Duration::from_secs(5)), "the stream ends at exp");
    }
}

#[test]
fn an_expired_or_invalid_token_is_401_on_both_paths_though_anonymous_is_served() {
    let srv = hub(&[]);
    let expired = pyjwt(
        &json!({"mercure": {"subscribe": ["a"]}, "exp": now() - 120}),
        KEY,
        "HS256",
    );
    let forged = pyjwt(
        &json!({"mercure": {"subscribe": ["a"]}}),
        "another key, also 32+ bytes long",
        "HS256",
    );
    for path in PATHS {
        // Anonymous streams are served here.
        drop(SseClient::open(srv.addr, path));
        for (token, why) in [(&expired, "expired"), (&forged, "signature")] {
            let cookie = format!("mercureAuthorization={token}");
            let bearer = format!("Bearer {token}");
            for header in [
                ("Cookie", cookie.as_str()),
                ("Authorization", bearer.as_str()),
            ] {
                let r = request(&srv, path, &[header]);
                assert_eq!(r.status, 401, "{path} {header:?}: {}", r.body_text());
                assert!(r.body_text().contains(why), "{path}: {}", r.body_text());
            }
        }
    }
}

#[test]
fn the_streams_of_one_token_are_capped_with_429() {
    let srv = hub(&["--max-streams-per-token", "2"]);
    let alice = |n: u64| {
        let t = pyjwt(&json!({"sub": "alice", "n": n}), KEY, "HS256");
        format!("Bearer {t}")
    };
    let bob = pyjwt(&json!({"sub": "bob"}), KEY, "HS256");
    let bob = format!("Bearer {bob}");
    let (a1, a2, a3) = (alice(1), alice(2), alice(3));
    let first = SseClient::connect(srv.addr, "/stream", &[("Authorization", &a1)]);
    let _second = SseClient::connect(srv.addr, PATHS[1], &[("Authorization", &a2)]);
    // Tokens of one sub share the cap, on both paths.
    for path in PATHS {
        let r = request(&srv, path, &[("Authorization", &a3)]);
        assert_eq!(r.status, 429, "{path}: {}", r.body_text());
        assert_eq!(r.header("Retry-After"), Some("5"));
    }
    assert_eq!(metric(&srv, "ssehub_streams_refused_per_token_total"), 2);
    // Another sub is not held back; anonymous streams are not counted.
    let _bob = SseClient::connect(srv.addr, "/stream", &[("Authorization", &bob)]);
    let _anon = SseClient::open(srv.addr, "/stream");
    // A stream that ends gives its slot back.
    drop(first);
    srv.wait_subscribers(3, SHORT);
    let _third = SseClient::connect(srv.addr, "/stream", &[("Authorization", &a3)]);
}

#[test]
fn ssehub_js_is_served_with_an_etag_and_revalidated_with_304() {
    let srv = start(&["--no-demo"]);
    let r = request(&srv, "/ssehub.js", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(r.header("Cache-Control").unwrap().contains("max-age="));
    assert!(r.body_text().contains("class SsehubSource"));
    let etag = r.header("ETag").expect("an ETag").to_owned();
    let again = request(&srv, "/ssehub.js", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("ETag"), Some(etag.as_str()));
    let weak = format!("W/{etag}");
    assert_eq!(
        request(&srv, "/ssehub.js", &[("If-None-Match", &weak)]).status,
        304
    );
    let other = request(&srv, "/ssehub.js", &[("If-None-Match", "\"other\"")]);
    assert_eq!(other.status, 200);
}
