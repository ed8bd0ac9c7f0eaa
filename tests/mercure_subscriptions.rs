//! Mercure's active subscriptions (`--mercure-subscriptions`, #21) over real sockets,
//! with tokens minted by PyJWT: the list in 0.x's and 1.0's shapes, checked field by
//! field; the private events when a subscriber comes and goes, reaching an authorized
//! reader of a URI-template or URL-pattern selector and not an anonymous one; the
//! `401`/`403`/`400`/`404`/`405` answers; no forged events; the flag off; two nodes on
//! one Redis (events everywhere, each node lists its own); and a storm of connects that
//! stays within the per-subscriber cap, every event counted.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::auth::pyjwt;
use crate::mercure::{HUB, enc, form_post, get, hub_url};
use crate::mercure_tokens::pyjwt as pyjwt_typed;
use crate::support::{Client, SseClient, SseEvent, TestServer, publish_json, start, wait_for};

const KEY: &str = "mercure subscriptions test key, 32 bytes+";
const ISS: &str = "https://example.com";
const AUD: &str = "https://hub.example.com/.well-known/mercure";
const DETAIL: &str = "https://mercure.rocks/authorization-detail";
const QUIET: Duration = Duration::from_millis(300);
/// What `--mercure-subscriptions` tracks of one subscriber (MAX_TRACKED_SELECTORS).
const TRACKED: usize = 8;

/// A hub with active subscriptions, taking 0.x tokens and 1.0 access tokens.
fn hub(extra: &[&str]) -> TestServer {
    let mut args = vec![
        "--no-demo",
        "--heartbeat",
        "0",
        "--jwt-key",
        KEY,
        "--jwt-issuer",
        ISS,
        "--jwt-audience",
        AUD,
        "--mercure-subscriptions",
    ];
    args.extend_from_slice(extra);
    start(&args)
}

/// A 0.x token with these `subscribe` selectors and `payload` (`None`: none).
fn token(subscribe: &[&str], payload: Option<Value>) -> String {
    let mut mercure = json!({"subscribe": subscribe});
    if let Some(p) = payload {
        mercure["payload"] = p;
    }
    pyjwt(&json!({"mercure": mercure}), KEY, "HS256")
}

/// A 1.0 access token whose one subscribe detail holds `topics` and `payload`.
fn access_token(topics: Value, payload: Option<Value>) -> String {
    let mut detail = json!({"type": DETAIL, "actions": ["subscribe"], "topics": topics});
    if let Some(p) = payload {
        detail["payload"] = p;
    }
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims =
        json!({"iss": ISS, "aud": AUD, "exp": exp, "sub": "u", "authorization_details": [detail]});
    pyjwt_typed(&claims, KEY, "HS256", Some("at+jwt"))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The member names of a JSON object.
fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

/// `/stats` as JSON.
fn stats(t: &TestServer) -> Value {
    get(t, "/stats", &[]).json()
}

/// The newest event's id once every queued subscription event is published (they are
/// events too).
fn settled_last_id(t: &TestServer) -> String {
    wait_for(Duration::from_secs(5), || {
        let e = &stats(t)["mercure"]["subscription_events"];
        e["queued"] == e["published"]
    })
    .expect("subscription events published");
    t.hub.last_id().expect("an event").to_string()
}

/// The subscriber id the hub gave the only subscriber listed, read with `reader`.
fn only_subscriber(t: &TestServer, reader: &str) -> String {
    let list = get(
        t,
        &format!("{HUB}/subscriptions"),
        &[("Authorization", &bearer(reader))],
    );
    assert_eq!(list.status, 200, "{}", list.body_text());
    list.json()["subscriptions"][0]["subscriber"]
        .as_str()
        .expect("a subscriber id")
        .to_owned()
}

#[test]
fn the_0x_list_has_mercures_fields() {
    let t = hub(&[]);
    let subscriber = token(
        &["https://example.com/books/{id}"],
        Some(json!({"user": "ann"})),
    );
    let _s = SseClient::connect(
        t.addr,
        &hub_url(&[
            ("topic", "https://example.com/books/{id}"),
            ("topic", "https://example.com/users/1"),
        ]),
        &[("Authorization", &bearer(&subscriber))],
    );
    t.wait_subscribers(1, Duration::from_secs(5));
    t.publish("news", None, "x");
    let last = settled_last_id(&t);

    let reader = token(&[&format!("{HUB}/subscriptions{{+rest}}")], None);
    let auth = [("Authorization", bearer(&reader))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let resp = get(&t, &format!("{HUB}/subscriptions"), &auth);
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(resp.header("Content-Type"), Some("application/ld+json"));
    let list = resp.json();
    assert_eq!(
        keys(&list),
        set(&["@context", "id", "type", "lastEventID", "subscriptions"])
    );
    assert_eq!(list["@context"], "https://mercure.rocks/");
    assert_eq!(list["id"], format!("{HUB}/subscriptions"));
    assert_eq!(list["type"], "Subscriptions");
    assert_eq!(list["lastEventID"], last);
    let subs = list["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{list}");
    let id = subs[0]["subscriber"].as_str().unwrap().to_owned();
    assert!(id.starts_with("urn:uuid:"), "{id}");
    for (s, topic, payload) in [
        (
            &subs[0],
            "https://example.com/books/{id}",
            json!({"user": "ann"}),
        ),
        // The token's 0.x payload is for every subscription.
        (
            &subs[1],
            "https://example.com/users/1",
            json!({"user": "ann"}),
        ),
    ] {
        assert_eq!(
            keys(s),
            set(&[
                "@context",
                "id",
                "type",
                "topic",
                "subscriber",
                "active",
                "payload"
            ])
        );
        assert_eq!(
            s["id"],
            format!("{HUB}/subscriptions/{}/{}", enc(topic), enc(&id))
        );
        assert_eq!(s["type"], "Subscription");
        assert_eq!(s["topic"], topic);
        assert_eq!(s["subscriber"], id.as_str());
        assert_eq!(s["active"], true);
        assert_eq!(s["payload"], payload);
    }

    // One topic's collection, and one subscription.
    let topic = enc("https://example.com/users/1");
    let one_topic = get(&t, &format!("{HUB}/subscriptions/{topic}"), &auth).json();
    assert_eq!(one_topic["id"], format!("{HUB}/subscriptions/{topic}"));
    assert_eq!(one_topic["subscriptions"].as_array().unwrap().len(), 1);
    let path = format!("{HUB}/subscriptions/{topic}/{}", enc(&id));
    let single = get(&t, &path, &auth).json();
    assert_eq!(
        keys(&single),
        set(&[
            "@context",
            "id",
            "type",
            "topic",
            "subscriber",
            "active",
            "payload",
            "lastEventID"
        ])
    );
    assert_eq!(single["id"], path);
    assert_eq!(single["lastEventID"], last);
    let missing = format!("{HUB}/subscriptions/{topic}/{}", enc("urn:uuid:nobody"));
    get(&t, &missing, &auth).assert_refusal(404);
}

#[test]
fn the_1_0_list_has_the_drafts_fields() {
    let t = hub(&[]);
    let subscriber = access_token(
        json!([{"match": "https://example.com/books/:id", "match_type": "urlpattern"}]),
        Some(json!({"tenant": 7})),
    );
    let _s = SseClient::connect(
        t.addr,
        &hub_url(&[
            ("match_urlpattern", "https://example.com/books/:id"),
            ("match", "https://example.com/news"),
        ]),
        &[("Authorization", &bearer(&subscriber))],
    );
    t.wait_subscribers(1, Duration::from_secs(5));
    let last = settled_last_id(&t);

    let reader = access_token(
        json!([{"match": format!("{HUB}/subscriptions"), "match_type": "exact"},
               {"match": format!("{HUB}/subscriptions/:type/:match"), "match_type": "urlpattern"}]),
        None,
    );
    let auth = bearer(&reader);
    let list = get(
        &t,
        &format!("{HUB}/subscriptions"),
        &[("Authorization", &auth)],
    );
    assert_eq!(list.status, 200, "{}", list.body_text());
    let list = list.json();
    assert_eq!(
        keys(&list),
        set(&["@context", "id", "type", "last_event_id", "subscriptions"])
    );
    assert_eq!(list["last_event_id"], last);
    assert_eq!(list["type"], "Subscriptions");
    let subs = list["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{list}");
    let id = subs[0]["subscriber"].as_str().unwrap().to_owned();
    for (s, match_type, matched, payload) in [
        (
            &subs[0],
            "urlpattern",
            "https://example.com/books/:id",
            Some(json!({"tenant": 7})),
        ),
        // The detail's topics do not cover `news`: no payload.
        (&subs[1], "exact", "https://example.com/news", None),
    ] {
        let mut want = vec![
            "@context",
            "id",
            "type",
            "match_type",
            "match",
            "subscriber",
            "active",
        ];
        if payload.is_some() {
            want.push("payload");
        }
        assert_eq!(keys(s), set(&want), "{s}");
        assert_eq!(
            s["id"],
            format!(
                "{HUB}/subscriptions/{match_type}/{}/{}",
                enc(matched),
                enc(&id)
            )
        );
        assert_eq!(s["type"], "Subscription");
        assert_eq!(s["match_type"], match_type);
        assert_eq!(s["match"], matched);
        assert_eq!(s["active"], true);
        assert_eq!(s.get("payload"), payload.as_ref());
    }
    // One matcher's collection; the reader's URL pattern covers it.
    let path = format!(
        "{HUB}/subscriptions/urlpattern/{}",
        enc("https://example.com/books/:id")
    );
    let one = get(&t, &path, &[("Authorization", &auth)]).json();
    assert_eq!(one["id"], path);
    assert_eq!(one["subscriptions"].as_array().unwrap().len(), 1);
    // A 0.x path is no 1.0 path; an unknown match type is a 400.
    let topic_only = format!("{HUB}/subscriptions/{}", enc("https://example.com/news"));
    get(&t, &topic_only, &[("Authorization", &auth)]).assert_refusal(404);
    let regexp = format!("{HUB}/subscriptions/regexp/a");
    get(&t, &regexp, &[("Authorization", &auth)]).assert_refusal(400);
}

#[test]
fn the_list_needs_a_token_that_covers_its_path() {
    let t = hub(&[]);
    let path = format!("{HUB}/subscriptions");
    let anonymous = get(&t, &path, &[]);
    anonymous.assert_refusal(401);
    assert_eq!(anonymous.header("WWW-Authenticate"), Some("Bearer"));

    let elsewhere = token(&["https://example.com/books/1"], None);
    let refused = get(&t, &path, &[("Authorization", &bearer(&elsewhere))]);
    refused.assert_refusal(403);
    assert_eq!(
        refused.header("WWW-Authenticate"),
        Some("Bearer error=\"insufficient_scope\"")
    );
    // Mercure's rules: `subscriptions/*` is a literal, not a prefix.
    let star = token(&[&format!("{HUB}/subscriptions/*")], None);
    let sub_path = format!("{HUB}/subscriptions/a");
    get(&t, &sub_path, &[("Authorization", &bearer(&star))]).assert_refusal(403);

    let wrong_key = pyjwt(
        &json!({"mercure": {"subscribe": ["*"]}}),
        "another key of at least thirty-two bytes",
        "HS256",
    );
    let bad = get(&t, &path, &[("Authorization", &bearer(&wrong_key))]);
    bad.assert_refusal(401);
    assert_eq!(
        bad.header("WWW-Authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    // Nothing published yet: `earliest`; nobody subscribed: an empty list.
    let all = token(&["*"], None);
    let empty = get(&t, &path, &[("Authorization", &bearer(&all))]).json();
    assert_eq!(empty["lastEventID"], "earliest");
    assert_eq!(empty["subscriptions"], json!([]));
    // Read-only: a POST is 405, naming what is allowed.
    let mut c = Client::connect(t.addr);
    let post = c.request(
        format!("POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    );
    post.assert_refusal(405);
    assert_eq!(post.header("Allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn without_the_flag_there_is_no_list_and_no_event() {
    let t = start(&["--no-demo", "--heartbeat", "0", "--jwt-key", KEY]);
    let all = token(&["*"], None);
    let path = format!("{HUB}/subscriptions");
    get(&t, &path, &[("Authorization", &bearer(&all))]).assert_refusal(404);
    let mut reader = SseClient::connect(
        t.addr,
        &hub_url(&[("topic", "*")]),
        &[("Authorization", &bearer(&all))],
    );
    let _other = SseClient::open(t.addr, &hub_url(&[("topic", "a")]));
    t.wait_subscribers(2, Duration::from_secs(5));
    reader.assert_no_event(QUIET);
    assert_eq!(stats(&t)["mercure"], Value::Null);
}

#[test]
fn no_publisher_may_forge_a_subscription_event() {
    let t = hub(&[]);
    let publisher = pyjwt(&json!({"mercure": {"publish": ["*"]}}), KEY, "HS256");
    let auth = bearer(&publisher);
    for topic in [
        format!("{HUB}/subscriptions/a/urn%3Auuid%3Ax"),
        format!("https://hub.example.com{HUB}/subscriptions"),
    ] {
        let refused = form_post(
            &t,
            &[("Authorization", &auth)],
            &[("topic", &topic), ("data", "{}")],
        );
        refused.assert_refusal(403);
        let native = publish_json(t.addr, &publisher, &json!({"topic": topic, "data": "x"}));
        native.assert_refusal(403);
    }
    // The rest of the hub's own path, and other topics, are the publishers'.
    let other = form_post(
        &t,
        &[("Authorization", &auth)],
        &[("topic", &format!("{HUB}/other")), ("data", "{}")],
    );
    assert_eq!(other.status, 200, "{}", other.body_text());
}

/// The subscription events in `reader`'s stream for `subscriber`, until `n` came.
fn events_of(reader: &mut SseClient, subscriber: &str, n: usize) -> Vec<SseEvent> {
    let mut got = Vec::new();
    while got.len() < n {
        let ev = reader.expect_event();
        if ev.json()["subscriber"] == subscriber {
            got.push(ev);
        }
    }
    got
}

#[test]
fn events_reach_authorized_readers_of_both_versions_and_not_anonymous_ones() {
    let t = hub(&[]);
    // 0.x: a URI template over every subscription event.
    let template = format!("{HUB}/subscriptions/{{+rest}}");
    let v0_token = token(&[&template], None);
    let mut v0 = SseClient::connect(
        t.addr,
        &hub_url(&[("topic", &template)]),
        &[("Authorization", &bearer(&v0_token))],
    );
    // 1.0: a URL pattern over the exact-match events.
    let pattern = format!("{HUB}/subscriptions/exact/:match/:subscriber");
    let v1_token = access_token(
        json!([{"match": pattern, "match_type": "urlpattern"}]),
        None,
    );
    let mut v1 = SseClient::connect(
        t.addr,
        &hub_url(&[("match_urlpattern", &pattern)]),
        &[("Authorization", &bearer(&v1_token))],
    );
    // Anonymous, the same selector: private events never reach it.
    let mut anonymous = SseClient::open(t.addr, &hub_url(&[("topic", &template)]));
    t.wait_subscribers(3, Duration::from_secs(5));

    let payload = json!({"room": "lobby"});
    let s_token = token(&["https://example.com/a"], Some(payload.clone()));
    let s = SseClient::connect(
        t.addr,
        &hub_url(&[("topic", "https://example.com/a")]),
        &[("Authorization", &bearer(&s_token))],
    );
    t.wait_subscribers(4, Duration::from_secs(5));
    let reader = token(&["*"], None);
    let id = {
        let list = get(
            &t,
            &format!("{HUB}/subscriptions/{}", enc("https://example.com/a")),
            &[("Authorization", &bearer(&reader))],
        )
        .json();
        list["subscriptions"][0]["subscriber"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let v0_topic = format!(
        "{HUB}/subscriptions/{}/{}",
        enc("https://example.com/a"),
        enc(&id)
    );
    let came = &events_of(&mut v0, &id, 1)[0];
    let doc = came.json();
    assert_eq!(doc["id"], v0_topic);
    assert_eq!(doc["type"], "Subscription");
    assert_eq!(doc["topic"], "https://example.com/a");
    assert_eq!(doc["match_type"], "exact");
    assert_eq!(doc["match"], "https://example.com/a");
    assert_eq!(doc["active"], true);
    assert_eq!(doc["payload"], payload);
    // The 1.0 reader gets the same update through its alternate topic.
    let came_v1 = &events_of(&mut v1, &id, 1)[0];
    assert_eq!(came_v1.id, came.id);

    drop(s);
    t.wait_subscribers(3, Duration::from_secs(5));
    for reader in [&mut v0, &mut v1] {
        let went = events_of(reader, &id, 1)[0].json();
        assert_eq!(went["active"], false);
        assert_eq!(went["payload"], payload);
    }
    anonymous.assert_no_event(QUIET);
    let counted = &stats(&t)["mercure"]["subscription_events"];
    assert_eq!(counted["dropped"], 0, "{counted}");
}

#[test]
fn with_redis_every_node_sees_the_events_and_each_lists_its_own() {
    let redis = crate::support::redis::RedisServer::start(&[]);
    let url = redis.unix_url("");
    let flags = ["--jwt-key", KEY, "--mercure-subscriptions"];
    let (a, b) = (
        crate::support::redis::node(&url, &flags),
        crate::support::redis::node(&url, &flags),
    );
    let template = format!("{HUB}/subscriptions/{{+rest}}");
    let reader = token(&[&template], None);
    let mut on_b = SseClient::connect(
        b.addr,
        &hub_url(&[("topic", &template)]),
        &[("Authorization", &bearer(&reader))],
    );
    b.wait_subscribers(1, Duration::from_secs(5));
    let s = SseClient::open(a.addr, &hub_url(&[("topic", "https://example.com/a")]));
    a.wait_subscribers(1, Duration::from_secs(5));
    let all = token(&["*"], None);
    let id = only_subscriber(&a, &all);
    let came = events_of(&mut on_b, &id, 1)[0].json();
    assert_eq!(came["active"], true);
    assert_eq!(came["topic"], "https://example.com/a");
    // B lists only its own subscriber (the reader), not A's.
    let on_b_list = get(
        &b,
        &format!("{HUB}/subscriptions"),
        &[("Authorization", &bearer(&all))],
    )
    .json();
    let listed: Vec<&str> = on_b_list["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subscriber"].as_str().unwrap())
        .collect();
    assert!(!listed.contains(&id.as_str()), "{on_b_list}");
    assert_eq!(listed.len(), 1);
    drop(s);
    let went = events_of(&mut on_b, &id, 1)[0].json();
    assert_eq!(went["active"], false);
}

#[test]
fn a_storm_of_subscribers_costs_at_most_the_cap_per_connect_every_event_counted() {
    let t = hub(&[]);
    // Twenty selectors: only the first eight are tracked.
    let topics: Vec<(String, String)> = (0..20)
        .map(|i| ("topic".to_owned(), format!("https://example.com/t/{i}")))
        .collect();
    let pairs: Vec<(&str, &str)> = topics
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let url = hub_url(&pairs);
    let reader = token(&["*"], None);
    let one = SseClient::open(t.addr, &url);
    t.wait_subscribers(1, Duration::from_secs(5));
    let listed = get(
        &t,
        &format!("{HUB}/subscriptions"),
        &[("Authorization", &bearer(&reader))],
    )
    .json();
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), TRACKED);
    assert_eq!(only_subscriber(&t, &reader).len(), "urn:uuid:".len() + 36);
    drop(one);
    t.wait_subscribers(0, Duration::from_secs(5));

    const STORM: usize = 500;
    let began = std::time::Instant::now();
    for _ in 0..STORM {
        let mut c = Client::connect(t.addr);
        c.send(format!("GET {url} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        let head = c.read_until(b"\r\n\r\n", Duration::from_secs(5));
        assert!(
            head.starts_with(b"HTTP/1.1 200 OK"),
            "{:?}",
            String::from_utf8_lossy(&head)
        );
    }
    // Every connect and disconnect made its eight events, queued or dropped, no more;
    // the queue drains into the port; the list is empty again.
    let want = 2 * (STORM + 1) * TRACKED;
    let settled = wait_for(Duration::from_secs(20), || {
        let s = stats(&t);
        let e = &s["mercure"]["subscription_events"];
        let (queued, dropped) = (
            e["queued"].as_u64().unwrap(),
            e["dropped"].as_u64().unwrap(),
        );
        s["mercure"]["subscriptions"] == 0
            && queued + dropped == want as u64
            && e["published"].as_u64().unwrap() + e["failed"].as_u64().unwrap() == queued
    });
    let s = stats(&t);
    assert!(settled.is_ok(), "not settled: {}", s["mercure"]);
    eprintln!(
        "{STORM} connects and disconnects settled in {:?}: {}",
        began.elapsed(),
        s["mercure"]
    );
    assert_eq!(s["mercure"]["subscription_events"]["failed"], 0);
    // Publishers were not starved: a publish after the storm is answered at once.
    let started = std::time::Instant::now();
    t.publish("after", None, "x");
    assert!(started.elapsed() < Duration::from_secs(2));
    let metrics = get(&t, "/metrics", &[]).body_text();
    assert!(metrics.contains("ssehub_mercure_subscription_events_queued_total"));
}
