//! Several nodes on one Redis (a real `redis-server`, one per test): every node delivers
//! every event once, in one order; replay works on any node; outages are loud and
//! temporary; a loss is announced by a reset, never silent.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::redis::RedisServer;
use crate::support::{
    Client, MAX_WAIT, SHORT, SseClient, SseEvent, TestServer, get, publish_json, run_binary,
    wait_for,
};

use crate::support::redis::{NODE_TOKEN as TOKEN, node, publish};

/// The next event that is not a reset (and the resets seen before it).
fn next_data(sub: &mut SseClient, within: Duration) -> Option<SseEvent> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let ev = sub.next_event(deadline.saturating_duration_since(Instant::now()))?;
        if ev.event != "reset" {
            return Some(ev);
        }
    }
    None
}

fn health(srv: &TestServer) -> (u16, serde_json::Value) {
    let r = Client::connect(srv.addr).request(&get("/health"));
    (r.status, r.json())
}

#[test]
fn three_nodes_deliver_every_event_once_in_one_order() {
    let redis = RedisServer::start(&[]);
    let url = redis.unix_url("");
    let nodes: Vec<TestServer> = (0..3).map(|_| node(&url, &[])).collect();
    let mut subs: Vec<SseClient> = nodes
        .iter()
        .flat_map(|n| {
            [
                SseClient::open(n.addr, "/stream"),
                SseClient::open(n.addr, "/stream"),
            ]
        })
        .collect();
    for n in &nodes {
        n.wait_subscribers(2, SHORT);
    }
    let mut sent = Vec::new();
    for i in 0..30 {
        let id = publish(&nodes[i % 3], &format!("e{i}"));
        sent.push(id);
    }
    let mut orders = Vec::new();
    for sub in &mut subs {
        let got: Vec<(String, String)> = (0..30)
            .map(|_| {
                let ev = next_data(sub, MAX_WAIT).expect("event");
                (ev.id, ev.data)
            })
            .collect();
        orders.push(got);
    }
    // One order everywhere, the stream's: ids increase, and are the publish answers'.
    for o in &orders {
        assert_eq!(o, &orders[0]);
    }
    let ids: Vec<String> = orders[0].iter().map(|(id, _)| id.clone()).collect();
    let mut sorted = sent.clone();
    sorted.sort_by_key(|s| s.parse::<ssehub::EventId>().unwrap());
    assert_eq!(ids, sorted);
    let mut data: Vec<String> = orders[0].iter().map(|(_, d)| d.clone()).collect();
    data.sort();
    let mut want: Vec<String> = (0..30).map(|i| format!("e{i}")).collect();
    want.sort();
    assert_eq!(data, want, "every event once");
    // Nothing more, no duplicate.
    for sub in &mut subs {
        assert!(next_data(sub, Duration::from_millis(300)).is_none());
    }
}

#[test]
fn replay_works_on_any_node_even_older_than_its_history() {
    let redis = RedisServer::start(&[]);
    let url = redis.unix_url("");
    let a = node(&url, &[]);
    let b = node(&url, &[]);
    // Node C keeps only 2 events itself; the stream keeps 1000.
    let c = node(&url, &["--history", "2", "--redis-maxlen", "1000"]);
    let mut on_b = SseClient::open(b.addr, "/stream");
    b.wait_subscribers(1, SHORT);
    let ids: Vec<String> = (0..6).map(|i| publish(&a, &format!("r{i}"))).collect();
    let seen: Vec<SseEvent> = (0..2)
        .map(|_| next_data(&mut on_b, MAX_WAIT).unwrap())
        .collect();
    assert_eq!(seen[1].id, ids[1]);
    // Resume on C from B's second event: exactly the four missed, bridged from Redis.
    wait_for(SHORT, || {
        c.hub.last_id().map(|i| i.to_string()) == Some(ids[5].clone())
    })
    .expect("C read everything");
    let mut on_c = SseClient::connect(c.addr, "/stream", &[("Last-Event-ID", &ids[1])]);
    assert_eq!(on_c.head.header("SSE-Resume"), Some("continue"));
    let got: Vec<String> = (0..4).map(|_| on_c.expect_event().data).collect();
    assert_eq!(got, ["r2", "r3", "r4", "r5"]);
    on_c.assert_no_event(Duration::from_millis(300));
    // An id Redis no longer has: an honest reset, then what C keeps.
    redis.cli(&["XTRIM", "ssehub:events", "MAXLEN", "3"]);
    let mut gone = SseClient::connect(c.addr, "/stream", &[("Last-Event-ID", &ids[0])]);
    assert_eq!(gone.head.header("SSE-Resume"), Some("reset"));
    let reset = gone.expect_event();
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.json()["reason"], "evicted");
    assert_eq!(gone.expect_event().data, "r4");
    assert_eq!(gone.expect_event().data, "r5");
}

#[test]
fn a_node_over_tcp_and_the_metrics_of_the_broker() {
    let redis = RedisServer::start_tcp(&["--requirepass", "pw"]);
    let n = node(&redis.tcp_url(":pw@"), &[]);
    let mut sub = SseClient::open(n.addr, "/stream");
    n.wait_subscribers(1, SHORT);
    let id = publish(&n, "over tcp");
    let ev = next_data(&mut sub, MAX_WAIT).unwrap();
    assert_eq!((ev.id, ev.data.as_str()), (id, "over tcp"));
    let m = Client::connect(n.addr)
        .request(&get("/metrics"))
        .body_text();
    assert!(m.lines().any(|l| l == "ssehub_broker_up 1"), "{m}");
    assert!(m.contains("ssehub_broker_errors_total{op=\"xadd\"} 0"));
    let stats = Client::connect(n.addr).request(&get("/stats")).json();
    assert_eq!(stats["broker"]["up"], true);
    assert!(
        !stats.to_string().contains("pw@"),
        "the password leaked: {stats}"
    );
}

#[test]
fn redis_down_and_back_without_persistence_is_loud_then_a_lost_reset() {
    let mut redis = RedisServer::start(&[]);
    let url = redis.unix_url("");
    let n = node(&url, &[]);
    let mut sub = SseClient::open(n.addr, "/stream");
    n.wait_subscribers(1, SHORT);
    publish(&n, "before");
    assert_eq!(next_data(&mut sub, MAX_WAIT).unwrap().data, "before");
    redis.kill();
    // Loud: health 503 with the reason, publishing 503 with Retry-After, metrics say so.
    wait_for(MAX_WAIT, || health(&n).0 == 503).expect("health turns 503");
    let (_, h) = health(&n);
    assert_eq!(h["status"], "broker_down");
    assert!(h["reason"].as_str().is_some_and(|r| !r.is_empty()));
    let r = publish_json(n.addr, TOKEN, &json!({"data": "during"}));
    assert_eq!(r.status, 503);
    assert!(r.header("Retry-After").is_some());
    let m = Client::connect(n.addr)
        .request(&get("/metrics"))
        .body_text();
    assert!(m.lines().any(|l| l == "ssehub_broker_up 0"));
    // The stream stays open: heartbeats keep coming.
    assert!(sub.wait_raw(b": heartbeat\n\n", Duration::from_secs(3)));
    // Back, empty (no persistence): the node reconnects by itself; its cursor entry is
    // gone, so its subscriber hears a lost reset, then new events.
    redis.restart();
    wait_for(MAX_WAIT, || health(&n).0 == 200).expect("health back to 200");
    let reset = sub.next_event(MAX_WAIT).expect("a reset");
    assert_eq!(reset.event, "reset", "{reset:?}");
    assert_eq!(reset.json()["reason"], "lost");
    let ok = wait_for(MAX_WAIT, || {
        publish_json(n.addr, TOKEN, &json!({"data": "after"})).status == 200
    });
    assert!(ok.is_ok(), "publishing did not recover");
    assert_eq!(next_data(&mut sub, MAX_WAIT).unwrap().data, "after");
    let m = Client::connect(n.addr)
        .request(&get("/metrics"))
        .body_text();
    assert!(m.lines().any(|l| l == "ssehub_broker_gaps_total 1"), "{m}");
}

#[test]
fn redis_restarted_with_persistence_loses_nothing() {
    let mut redis = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let url = redis.unix_url("");
    let n = node(&url, &[]);
    let mut sub = SseClient::open(n.addr, "/stream");
    n.wait_subscribers(1, SHORT);
    let first = publish(&n, "one");
    assert_eq!(next_data(&mut sub, MAX_WAIT).unwrap().id, first);
    redis.restart();
    let ok = wait_for(MAX_WAIT, || {
        publish_json(n.addr, TOKEN, &json!({"data": "two"})).status == 200
    });
    assert!(ok.is_ok());
    let ev = sub.next_event(MAX_WAIT).expect("event");
    assert_eq!(
        (ev.event.as_str(), ev.data.as_str()),
        ("message", "two"),
        "no reset: {ev:?}"
    );
    // A resume from before the restart continues.
    let mut again = SseClient::connect(n.addr, "/stream", &[("Last-Event-ID", &first)]);
    assert_eq!(again.head.header("SSE-Resume"), Some("continue"));
    assert_eq!(again.expect_event().data, "two");
}

#[test]
fn killed_connections_paused_redis_trims_and_flushes() {
    let redis = RedisServer::start(&[]);
    let url = redis.unix_url("");
    let a = node(&url, &[]);
    let b = node(&url, &[]);
    let mut on_b = SseClient::open(b.addr, "/stream");
    b.wait_subscribers(1, SHORT);
    publish(&a, "x1");
    assert_eq!(next_data(&mut on_b, MAX_WAIT).unwrap().data, "x1");
    // CLIENT KILL of every node connection: they reconnect, nothing is lost or doubled.
    redis.cli(&["CLIENT", "KILL", "TYPE", "normal"]);
    let ok = wait_for(MAX_WAIT, || {
        publish_json(a.addr, TOKEN, &json!({"data": "x2"})).status == 200
    });
    assert!(ok.is_ok());
    assert_eq!(next_data(&mut on_b, MAX_WAIT).unwrap().data, "x2");
    // CLIENT PAUSE: publishing waits (or fails with 503), then everything flows again.
    redis.cli(&["CLIENT", "PAUSE", "1500", "ALL"]);
    let r = publish_json(a.addr, TOKEN, &json!({"data": "x3"}));
    assert!(r.status == 200 || r.status == 503, "{r:?}");
    let ok = wait_for(MAX_WAIT, || {
        publish_json(a.addr, TOKEN, &json!({"data": "x4"})).status == 200
    });
    assert!(ok.is_ok());
    let mut got = Vec::new();
    while let Some(ev) = next_data(&mut on_b, Duration::from_secs(2)) {
        got.push(ev.data);
    }
    assert!(got.ends_with(&["x4".to_owned()]), "{got:?}");
    assert!(got.len() <= 2, "{got:?}");
    // Entries trimmed before a node could read them (in one transaction: two added, then
    // the stream cut to one): a lost reset, never a silent gap.
    {
        use ssehub::redis::{Connection, RedisUrl};
        let url = RedisUrl::parse(&redis.unix_url("")).unwrap();
        let t = Duration::from_secs(5);
        let mut c = futures_lite::future::block_on(Connection::connect(&url, "test", t)).unwrap();
        let cmds: Vec<Vec<&str>> = vec![
            vec!["MULTI"],
            vec![
                "XADD",
                "ssehub:events",
                "*",
                "topic",
                "default",
                "data",
                "lost one",
            ],
            vec![
                "XADD",
                "ssehub:events",
                "*",
                "topic",
                "default",
                "data",
                "kept one",
            ],
            vec!["XTRIM", "ssehub:events", "MAXLEN", "1"],
            vec!["EXEC"],
        ];
        futures_lite::future::block_on(c.pipeline(&cmds, t)).unwrap();
    }
    let reset = on_b.next_event(MAX_WAIT).expect("reset");
    assert_eq!(
        (reset.event.as_str(), reset.json()["reason"].as_str()),
        ("reset", Some("lost"))
    );
    assert_eq!(next_data(&mut on_b, MAX_WAIT).unwrap().data, "kept one");
    // The stream trimmed of what the nodes read: nothing was lost, no reset (#20).
    redis.cli(&["XTRIM", "ssehub:events", "MAXLEN", "0"]);
    publish(&a, "after trim");
    let ev = on_b.next_event(MAX_WAIT).expect("event");
    assert_eq!(
        (ev.event.as_str(), ev.data.as_str()),
        ("message", "after trim")
    );
    // Trimmed past the nodes' cursors, of an entry they had not read: a lost reset,
    // never a silent gap.
    let script = "redis.call('XADD', KEYS[1], '*', 'topic', 'default', 'data', 'unread') \
                  redis.call('XTRIM', KEYS[1], 'MAXLEN', '0') return 1";
    redis.cli(&["EVAL", script, "1", "ssehub:events"]);
    publish(&a, "after cut");
    let reset = on_b.next_event(MAX_WAIT).expect("reset");
    assert_eq!(
        (reset.event.as_str(), reset.json()["reason"].as_str()),
        ("reset", Some("lost"))
    );
    assert_eq!(next_data(&mut on_b, MAX_WAIT).unwrap().data, "after cut");
    // FLUSHALL too.
    redis.cli(&["FLUSHALL"]);
    let ok = wait_for(MAX_WAIT, || {
        publish_json(a.addr, TOKEN, &json!({"data": "after flush"})).status == 200
    });
    assert!(ok.is_ok());
    let reset = on_b.next_event(MAX_WAIT).expect("reset");
    assert_eq!(reset.json()["reason"], "lost", "{reset:?}");
    assert_eq!(next_data(&mut on_b, MAX_WAIT).unwrap().data, "after flush");
}

#[test]
fn a_burst_in_the_stream_is_paced_by_the_writers_not_evicted() {
    // Entries that reach the reader in one XREAD (after an outage, or from a fast
    // publisher on another node) go out as fast as the writers take them: a reading
    // subscriber with a small queue is not evicted (found by scripts/soak-cluster.sh).
    let redis = RedisServer::start(&[]);
    let n = node(&redis.unix_url(""), &["--queue", "8"]);
    let mut subs: Vec<SseClient> = (0..10)
        .map(|_| SseClient::open(n.addr, "/stream"))
        .collect();
    n.wait_subscribers(10, SHORT);
    {
        use ssehub::redis::{Connection, RedisUrl};
        let url = RedisUrl::parse(&redis.unix_url("")).unwrap();
        let t = Duration::from_secs(5);
        let mut c = futures_lite::future::block_on(Connection::connect(&url, "test", t)).unwrap();
        let data: Vec<String> = (0..200).map(|i| format!("b{i}")).collect();
        let mut cmds: Vec<Vec<&str>> = vec![vec!["MULTI"]];
        for d in &data {
            cmds.push(vec![
                "XADD",
                "ssehub:events",
                "*",
                "topic",
                "default",
                "data",
                d,
            ]);
        }
        cmds.push(vec!["EXEC"]);
        futures_lite::future::block_on(c.pipeline(&cmds, t)).unwrap();
    }
    for sub in &mut subs {
        for i in 0..200 {
            let ev = sub.next_event(MAX_WAIT).expect("every event of the burst");
            let want = format!("b{i}");
            assert_eq!(
                (ev.event.as_str(), ev.data.as_str()),
                ("message", want.as_str())
            );
        }
    }
    assert_eq!(n.hub.len(), 10, "every subscriber is still served");
}

#[test]
fn a_wrong_password_or_no_redis_at_start_is_a_one_line_error_exit_1() {
    let redis = RedisServer::start(&["--requirepass", "right"]);
    let wrong = format!("unix://:wrong@{}", redis.socket.display());
    let dir = std::env::temp_dir().join(format!("ssehub-none-{}", std::process::id()));
    let none = format!("unix://{}/nothing.sock", dir.display());
    for url in [wrong.as_str(), none.as_str(), "redis://127.0.0.1:1"] {
        let out = run_binary(&["--no-demo", "--bind", "127.0.0.1:0", "--redis", url]);
        assert_eq!(out.status.code(), Some(1), "{url}: {}", out.stderr);
        let err = out.stderr.trim();
        assert!(
            err.starts_with("ssehub: redis at ") && !err.contains('\n'),
            "{err}"
        );
        assert!(
            !err.contains("wrong") && !err.contains("right"),
            "password shown: {err}"
        );
    }
}
