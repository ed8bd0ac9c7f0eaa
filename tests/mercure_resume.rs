//! A Mercure client resuming where the history outlives one process: on another ssehub
//! node sharing one real Redis, and on a server restarted with `--history-file`. Each
//! resume form a Mercure client sends (0.x: the `Last-Event-ID` header, the query's
//! `lastEventID`; 1.0: `last_event_id`; both: `earliest`; and the id the hub named in its
//! own `Last-Event-ID` head field) gets exactly what it missed: the publisher's ids, in
//! order, no gap, no duplicate, then live; with the `Mercure-Last-Event-ID` and
//! `Last-Event-ID` head fields each version reads.

use std::time::{Duration, Instant};

use crate::mercure::{form_post, hub_url};
use crate::support::redis::{NODE_TOKEN, RedisServer, node};
use crate::support::{SseClient, SseEvent, TestServer, start, wait_for};

/// The topic of every update here, and a 0.x URI template and a 1.0 URL pattern that
/// match it.
const TOPIC: &str = "https://example.com/books/1";
const TEMPLATE: &str = "https://example.com/books/{id}";
const PATTERN: &str = "https://example.com/books/:id";
/// How long a stream must stay silent to show nothing more (no duplicate) came.
const QUIET: Duration = Duration::from_millis(300);

/// Publishes `id` (its data `data-<id>`) on the hub path of `t` with the static token.
fn publish(t: &TestServer, id: &str) {
    let bearer = format!("Bearer {NODE_TOKEN}");
    let data = format!("data-{id}");
    let r = form_post(
        t,
        &[("Authorization", &bearer)],
        &[("topic", TOPIC), ("id", id), ("data", &data)],
    );
    assert_eq!((r.status, r.body_text()), (200, id.to_owned()), "{r:?}");
}

/// The next `n` updates (a `reset` notice before them is counted, not returned).
fn updates(s: &mut SseClient, n: usize) -> (Vec<SseEvent>, usize) {
    let (mut got, mut resets) = (Vec::new(), 0);
    while got.len() < n {
        let ev = s.expect_event();
        if ev.event == "reset" {
            resets += 1;
        } else {
            got.push(ev);
        }
    }
    (got, resets)
}

/// Asserts the next updates are exactly `ids` (with their data), then nothing; the
/// number of `reset` notices before them.
fn assert_exactly(s: &mut SseClient, ids: &[&str]) -> usize {
    let (got, resets) = updates(s, ids.len());
    let got: Vec<(&str, &str)> = got
        .iter()
        .map(|e| (e.id.as_str(), e.data.as_str()))
        .collect();
    let want: Vec<(&str, String)> = ids.iter().map(|id| (*id, format!("data-{id}"))).collect();
    let want: Vec<(&str, &str)> = want.iter().map(|(i, d)| (*i, d.as_str())).collect();
    assert_eq!(got, want);
    s.assert_no_event(QUIET);
    resets
}

/// One way of asking to resume: what it is, the path, the headers.
type Resume = (&'static str, String, Vec<(&'static str, String)>);

/// The ways a Mercure client asks to resume after `id`: the path and headers of each.
fn resumes_after(id: &str) -> Vec<Resume> {
    vec![
        (
            "0.x Last-Event-ID header",
            hub_url(&[("topic", TEMPLATE)]),
            vec![("Last-Event-ID", id.to_owned())],
        ),
        (
            "0.x lastEventID query",
            hub_url(&[("topic", TOPIC), ("lastEventID", id)]),
            vec![],
        ),
        (
            "1.0 last_event_id query",
            hub_url(&[("match_urlpattern", PATTERN), ("last_event_id", id)]),
            vec![],
        ),
        (
            "1.0 Last-Event-ID header",
            hub_url(&[("match", TOPIC)]),
            vec![("Last-Event-ID", id.to_owned())],
        ),
    ]
}

/// Opens a Mercure stream at `path` with `headers`.
fn open(t: &TestServer, path: &str, headers: &[(&str, String)]) -> SseClient {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    SseClient::connect(t.addr, path, &headers)
}

/// On `t`, which has seen `missed` after `seen`: every resume form after the publisher
/// id `seen` gets exactly `missed`, with `Mercure-Last-Event-ID: seen` and the newest
/// id in `Last-Event-ID`; and none of them gets the next live update twice.
fn every_resume_gets_exactly(t: &TestServer, seen: &str, missed: &[&str], live: &str) {
    let newest = t.hub.last_id().expect("an event").to_string();
    let mut streams = Vec::new();
    for (how, path, headers) in resumes_after(seen) {
        let mut s = open(t, &path, &headers);
        assert_eq!(s.head.header("Mercure-Last-Event-ID"), Some(seen), "{how}");
        assert_eq!(
            s.head.header("Last-Event-ID"),
            Some(newest.as_str()),
            "{how}"
        );
        assert_eq!(s.head.header("SSE-Resume"), Some("continue"), "{how}");
        assert_eq!(assert_exactly(&mut s, missed), 0, "{how}: a reset");
        streams.push(s);
    }
    publish(t, live);
    for s in &mut streams {
        assert_exactly(s, &[live]);
    }
}

/// Waits until `t` and `other` have read the same newest event (ssehub's id, in
/// `Last-Event-ID`). Both are read again at each look: a publish answers before its
/// own node's reader has read the event back, so either node may be the one behind.
fn wait_caught_up(t: &TestServer, other: &TestServer) {
    wait_for(Duration::from_secs(10), || {
        let want = other.hub.last_id();
        want.is_some() && t.hub.last_id() == want
    })
    .unwrap_or_else(|_| {
        panic!(
            "{:?} and {:?} never met",
            t.hub.last_id(),
            other.hub.last_id()
        )
    });
}

#[test]
fn a_mercure_client_resumes_on_another_node_with_exactly_what_it_missed() {
    let redis = RedisServer::start(&[]);
    let url = redis.unix_url("");
    let (a, b) = (node(&url, &[]), node(&url, &[]));
    // A 0.x client on node A sees p-1 and p-2, and the newest id when it opened.
    publish(&a, "p-1");
    let mut first = SseClient::open(a.addr, &hub_url(&[("topic", TEMPLATE)]));
    let named = first.head.header("Last-Event-ID").unwrap().to_owned();
    publish(&a, "p-2");
    assert_exactly(&mut first, &["p-2"]);
    drop(first);
    // It is gone while p-3 (through A) and p-4 (through B) are published.
    publish(&a, "p-3");
    publish(&b, "p-4");
    wait_caught_up(&b, &a);
    // On node B, every way of saying "after p-2" gets p-3 and p-4, then p-5 once.
    every_resume_gets_exactly(&b, "p-2", &["p-3", "p-4"], "p-5");
    wait_caught_up(&a, &b);
    // The id the hub named in Last-Event-ID when the client first opened (p-1's, in
    // Redis's form) resumes on the other node too.
    let mut s = open(
        &b,
        &hub_url(&[("topic", TOPIC)]),
        &[("Last-Event-ID", named.clone())],
    );
    assert_eq!(s.head.header("Mercure-Last-Event-ID"), Some(named.as_str()));
    assert_exactly(&mut s, &["p-2", "p-3", "p-4", "p-5"]);
    // earliest, both versions: every retained update. Node A loaded the whole stream
    // at start (empty then: Redis's entries-added matched its length) and has dropped
    // nothing since, so it knows nothing came before: no notice.
    let earliest = [
        [("topic", TEMPLATE), ("lastEventID", "earliest")],
        [("match", TOPIC), ("last_event_id", "earliest")],
    ];
    for pairs in earliest {
        let mut s = SseClient::open(a.addr, &hub_url(&pairs));
        assert_eq!(s.head.header("Mercure-Last-Event-ID"), Some("earliest"));
        let resets = assert_exactly(&mut s, &["p-1", "p-2", "p-3", "p-4", "p-5"]);
        assert_eq!(resets, 0);
    }
    // A node that keeps two events loaded only the tail: it cannot prove nothing came
    // before its oldest, so it says so with one `reset` notice first (never a silent
    // gap), then what it retains.
    let c = node(&url, &["--history", "2"]);
    for pairs in earliest {
        let mut s = SseClient::open(c.addr, &hub_url(&pairs));
        let resets = assert_exactly(&mut s, &["p-4", "p-5"]);
        assert_eq!(resets, 1);
    }
}

#[test]
fn a_mercure_client_resumes_on_a_restarted_server_with_a_history_file() {
    let dir = std::env::temp_dir().join(format!(
        "ssehub-mercure-resume-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("history");
    let path = file.to_str().unwrap().to_owned();
    let flags = [
        "--no-demo",
        "--heartbeat",
        "0",
        "--publish-token",
        NODE_TOKEN,
        "--history-file",
        &path,
    ];
    let first = start(&flags);
    publish(&first, "p-1");
    let named = SseClient::open(first.addr, &hub_url(&[("topic", TOPIC)]))
        .head
        .header("Last-Event-ID")
        .unwrap()
        .to_owned();
    publish(&first, "p-2");
    publish(&first, "p-3");
    // The restart: the second server waits for the first to release the file's lock.
    assert!(first.stop(Duration::from_secs(15)).is_some());
    let second = start(&flags);
    publish(&second, "p-4");
    every_resume_gets_exactly(&second, "p-2", &["p-3", "p-4"], "p-5");
    // The hub's own id from before the restart.
    let mut s = open(
        &second,
        &hub_url(&[("match", TOPIC)]),
        &[("Last-Event-ID", named)],
    );
    assert_eq!(s.head.header("SSE-Resume"), Some("continue"));
    assert_exactly(&mut s, &["p-2", "p-3", "p-4", "p-5"]);
    // earliest, both versions: all five, and no reset (the file keeps the epoch).
    let started = Instant::now();
    for pairs in [
        [("topic", TEMPLATE), ("lastEventID", "earliest")],
        [("match", TOPIC), ("last_event_id", "earliest")],
    ] {
        let mut s = SseClient::open(second.addr, &hub_url(&pairs));
        assert_eq!(s.head.header("Mercure-Last-Event-ID"), Some("earliest"));
        let resets = assert_exactly(&mut s, &["p-1", "p-2", "p-3", "p-4", "p-5"]);
        assert_eq!(resets, 0);
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}
