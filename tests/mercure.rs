//! The Mercure path (`/.well-known/mercure`) with a Mercure client we did not write:
//! Symfony's own publisher (Debian's `php-symfony-mercure`, run by `php`) publishes
//! public, private, alternate-topic, typed, retried and multi-line updates; subscribers
//! holding 0.x and 1.0 selectors check each arrives exactly. Then the refusals and rules
//! a Mercure client meets: unknown matchers, anonymous subscribers, `orders/*` as a
//! literal, the CSRF rule of cookie publishes, and the resume headers.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::auth::pyjwt;
use crate::support::{Client, Response, SseClient, TestServer, start};

const KEY: &str = "mercure test key, at least 32 bytes long";
pub(crate) const HUB: &str = "/.well-known/mercure";
const QUIET: Duration = Duration::from_millis(300);

fn hub(extra: &[&str]) -> TestServer {
    let mut args = vec!["--no-demo", "--heartbeat", "0", "--jwt-key", KEY];
    args.extend_from_slice(extra);
    start(&args)
}

/// A 0.x token with these `subscribe` and `publish` selectors, minted by PyJWT.
fn token(subscribe: &[&str], publish: &[&str]) -> String {
    pyjwt(
        &json!({"mercure": {"subscribe": subscribe, "publish": publish}}),
        KEY,
        "HS256",
    )
}

/// Percent-encodes a query or form value (everything but unreserved characters).
pub(crate) fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `HUB?` and the pairs, encoded.
pub(crate) fn hub_url(pairs: &[(&str, &str)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    format!("{HUB}?{}", q.join("&"))
}

/// A form publish on the hub path with `headers`.
pub(crate) fn form_post(
    t: &TestServer,
    headers: &[(&str, &str)],
    pairs: &[(&str, &str)],
) -> Response {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let body = body.join("&");
    let mut req = format!(
        "POST {HUB} HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    t.client().request(req.as_bytes())
}

pub(crate) fn get(t: &TestServer, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut c = Client::connect(t.addr);
    c.send(req.as_bytes());
    c.read_response()
}

#[test]
fn symfonys_publisher_reaches_0x_and_1_0_subscribers_exactly() {
    let t = hub(&[]);
    // 0.x, anonymous: a URI template, an exact private topic, an exact canonical topic.
    let mut anon = SseClient::open(
        t.addr,
        &hub_url(&[
            ("topic", "https://example.com/books/{id}"),
            ("topic", "https://example.com/users/7"),
            ("topic", "https://example.com/reviews/3"),
        ]),
    );
    // 1.0, with a token whose subscribe selector is a URI template: a URL pattern and an
    // exact alternate topic.
    let reader = token(&["https://example.com/users/{id}"], &[]);
    let bearer = format!("Bearer {reader}");
    let mut user = SseClient::connect(
        t.addr,
        &hub_url(&[
            ("match_urlpattern", "https://example.com/users/:id"),
            ("match", "https://example.com/books/1/reviews"),
        ]),
        &[("Authorization", &bearer)],
    );
    t.wait_subscribers(2, Duration::from_secs(5));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mercure/symfony_publish.php");
    let url = format!("http://{}{HUB}", t.addr);
    let out = Command::new("php")
        .arg(&script)
        .args([&url, &token(&[], &["*"])])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run php ({e}); scripts/test.sh installs php-cli and php-symfony-mercure")
        });
    assert!(
        out.status.success(),
        "Symfony's publisher failed (scripts/test.sh installs php-cli and php-symfony-mercure): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(
        ids[..3],
        ["urn:uuid:book-1", "urn:uuid:user-7", "urn:uuid:review-3"]
    );
    assert!(!ids[3].is_empty());

    let got = anon.expect_events(3);
    assert_eq!(
        (
            got[0].id.as_str(),
            got[0].event.as_str(),
            got[0].data.as_str()
        ),
        (
            "urn:uuid:book-1",
            "book.updated",
            "line one\nline two\n\nline four"
        )
    );
    // The private update never reaches the anonymous page; the review comes once.
    assert_eq!(
        (got[1].id.as_str(), got[1].data.as_str()),
        ("urn:uuid:review-3", "a review")
    );
    assert_eq!(
        (got[2].id.as_str(), got[2].data.as_str()),
        (ids[3].as_str(), "plain")
    );
    assert_eq!(got[2].event, "message");
    assert_eq!(anon.parser.retry, Some(2500), "the update's retry");
    anon.assert_no_event(QUIET);

    let got = user.expect_events(2);
    assert_eq!(
        (got[0].id.as_str(), got[0].data.as_str()),
        ("urn:uuid:user-7", r#"{"secret":true}"#)
    );
    // Reached through its alternate topic.
    assert_eq!(got[1].id, "urn:uuid:review-3");
    user.assert_no_event(QUIET);
}

#[test]
fn form_publish_answers_the_id_as_text_and_refuses_precisely() {
    let t = hub(&["--cors-origin", "https://app.example"]);
    let publisher = token(&[], &["https://example.com/{+any}"]);
    let bearer = format!("Bearer {publisher}");
    let auth = [("Authorization", bearer.as_str())];
    let ok = form_post(
        &t,
        &auth,
        &[("topic", "https://example.com/a"), ("data", "x")],
    );
    assert_eq!(ok.status, 200, "{}", ok.body_text());
    assert_eq!(ok.header("Content-Type"), Some("text/plain; charset=utf-8"));
    let with_id = form_post(
        &t,
        &auth,
        &[
            ("topic", "https://example.com/a"),
            ("id", "p-1"),
            ("data", "y"),
        ],
    );
    assert_eq!(with_id.body, b"p-1");
    for (pairs, status) in [
        (&[("data", "no topic")][..], 400),
        (&[("topic", "https://example.com/a"), ("retry", "1s")], 400),
        (&[("topic", "a b")], 400),
        (&[("topic", "https://other.example/a")], 403),
    ] {
        assert_eq!(form_post(&t, &auth, pairs).status, status, "{pairs:?}");
    }
    let json = t.client().request(
        format!(
            "POST {HUB} HTTP/1.1\r\nHost: test\r\nAuthorization: {bearer}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        )
        .as_bytes(),
    );
    assert_eq!(json.status, 415);
    assert_eq!(form_post(&t, &[], &[("topic", "a")]).status, 401);

    // Mercure's CSRF rule: a cookie-authorized publish from an allowed Origin only.
    let cookie = format!("mercureAuthorization={publisher}");
    let pairs = [("topic", "https://example.com/c"), ("data", "z")];
    for (origin, status) in [
        (None, 403),
        (Some("https://evil.example"), 403),
        (Some("https://app.example"), 200),
    ] {
        let mut headers = vec![("Cookie", cookie.as_str())];
        headers.extend(origin.map(|o| ("Origin", o)));
        assert_eq!(form_post(&t, &headers, &pairs).status, status, "{origin:?}");
    }
}

#[test]
fn subscribe_refusals_and_the_anonymous_switch() {
    let t = hub(&[]);
    for (path, status) in [
        (HUB.to_owned(), 400),
        (hub_url(&[("match_regexp", "a")]), 400),
        (hub_url(&[("matchall", "a")]), 400),
        (hub_url(&[("topic", "https://e.com/{?q}")]), 400),
        (hub_url(&[("match_urlpattern", "/a/(\\d+)")]), 400),
        (hub_url(&[("topic", "a\u{1}b")]), 400),
    ] {
        assert_eq!(get(&t, &path, &[]).status, status, "{path}");
    }
    drop(t);
    let t = hub(&["--subscribe-auth", "required"]);
    let r = get(&t, &hub_url(&[("topic", "a")]), &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
    let q = hub_url(&[("topic", "a"), ("authorization", &token(&["a"], &[]))]);
    let mut s = SseClient::open(t.addr, &q);
    t.publish("a", None, "hi");
    assert_eq!(s.expect_event().data, "hi");
}

#[test]
fn a_prefix_selector_is_a_literal_on_the_mercure_path_only() {
    let t = hub(&["--publish-token", "pub"]);
    let reader = format!("Bearer {}", token(&["orders/*"], &[]));
    let headers = [("Authorization", reader.as_str())];
    let mut native = SseClient::connect(t.addr, "/stream?topic=orders/1", &headers);
    let mut mercure = SseClient::connect(t.addr, &hub_url(&[("topic", "orders/1")]), &headers);
    t.wait_subscribers(2, Duration::from_secs(5));
    let publish = [("Authorization", "Bearer pub")];
    let private = [("topic", "orders/1"), ("private", ""), ("data", "secret")];
    assert_eq!(form_post(&t, &publish, &private).status, 200);
    let public = [("topic", "orders/1"), ("data", "public")];
    assert_eq!(form_post(&t, &publish, &public).status, 200);
    // ssehub's own rule on /stream: orders/* covers orders/1.
    assert_eq!(native.expect_events(2)[0].data, "secret");
    // Mercure's on its path: orders/* is the topic named "orders/*", not a wildcard.
    assert_eq!(mercure.expect_event().data, "public");
    mercure.assert_no_event(QUIET);
}

#[test]
fn resume_by_publisher_id_or_earliest_with_both_versions_headers() {
    let t = hub(&["--publish-token", "pub"]);
    let publish = [("Authorization", "Bearer pub")];
    for (id, data) in [("p-1", "one"), ("p-2", "two"), ("p-3", "three")] {
        let r = form_post(&t, &publish, &[("topic", "t"), ("id", id), ("data", data)]);
        assert_eq!(r.body_text(), id);
    }
    let newest = t.hub.last_id().unwrap().to_string();

    // 1.0's query name, and the header winning over the query.
    for (pairs, headers) in [
        (vec![("match", "t"), ("last_event_id", "p-1")], vec![]),
        (
            vec![("topic", "t"), ("lastEventID", "p-3")],
            vec![("Last-Event-ID", "p-1")],
        ),
    ] {
        let mut s = SseClient::connect(t.addr, &hub_url(&pairs), &headers);
        assert_eq!(s.head.header("Mercure-Last-Event-ID"), Some("p-1"));
        assert_eq!(s.head.header("Last-Event-ID"), Some(newest.as_str()));
        let got: Vec<String> = s.expect_events(2).into_iter().map(|e| e.id).collect();
        assert_eq!(got, ["p-2", "p-3"]);
    }

    let mut s = SseClient::open(
        t.addr,
        &hub_url(&[("topic", "t"), ("lastEventID", "earliest")]),
    );
    assert_eq!(s.head.header("Mercure-Last-Event-ID"), Some("earliest"));
    let got: Vec<String> = s.expect_events(3).into_iter().map(|e| e.data).collect();
    assert_eq!(got, ["one", "two", "three"]);

    // No id: live only, and the headers name the newest event.
    let mut s = SseClient::open(t.addr, &hub_url(&[("topic", "*")]));
    assert_eq!(
        s.head.header("Mercure-Last-Event-ID"),
        Some(newest.as_str())
    );
    s.assert_no_event(QUIET);
    // An id nobody issued: ssehub's honest reset event, then live.
    let mut s = SseClient::open(t.addr, &hub_url(&[("topic", "t"), ("lastEventID", "nope")]));
    assert_eq!(s.expect_event().event, "reset");
}
