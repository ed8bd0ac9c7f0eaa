//! Resets on Redis nodes mean what they say (#20): a short stream gives no `lost` reset
//! for entries the node read; an id that cannot be placed is followed by live events;
//! a client ahead of a lagging node still gets nothing twice.

use std::time::Instant;

use serde_json::json;

use crate::support::redis::RedisServer;
use crate::support::{Client, MAX_WAIT, SHORT, SseClient, TestServer, get, publish_json, start};

const TOKEN: &str = "k";

fn node(url: &str, extra: &[&str]) -> TestServer {
    let mut args = vec![
        "--no-demo",
        "--heartbeat",
        "1",
        "--publish-token",
        TOKEN,
        "--redis",
        url,
    ];
    args.extend_from_slice(extra);
    start(&args)
}

fn metric(srv: &TestServer, name: &str) -> Option<String> {
    let m = Client::connect(srv.addr)
        .request(&get("/metrics"))
        .body_text();
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ').map(str::to_owned))
}

#[test]
fn a_stream_of_one_entry_gives_no_lost_reset_for_what_the_node_read() {
    // `--redis-maxlen 1`: each entry is trimmed as soon as the next is added (entries of
    // 5,000 bytes fill a Redis stream node of 4 KiB each, so `MAXLEN ~ 1` cuts every
    // one). The node read each before it was cut: nothing was lost, so no reset.
    let redis = RedisServer::start(&[]);
    let n = node(&redis.unix_url(""), &["--redis-maxlen", "1"]);
    let mut sub = SseClient::open(n.addr, "/stream");
    n.wait_subscribers(1, SHORT);
    // Published at the pace the node answers, read at the same time.
    let addr = n.addr;
    let publisher = std::thread::spawn(move || {
        let pad = "x".repeat(5000);
        (0..400)
            .map(|i| {
                let r = publish_json(addr, TOKEN, &json!({"data": format!("{i} {pad}")}));
                assert_eq!(r.status, 200, "{r:?}");
                r.json()["id"].as_str().expect("id").to_owned()
            })
            .collect::<Vec<String>>()
    });
    let mut resets = 0;
    let mut got = Vec::new();
    let deadline = Instant::now() + MAX_WAIT;
    while got.len() < 400 && Instant::now() < deadline {
        let Some(ev) = sub.next_event(deadline.saturating_duration_since(Instant::now())) else {
            break;
        };
        if ev.event == "reset" {
            resets += 1;
        } else {
            got.push(ev.id);
        }
    }
    let sent = publisher.join().expect("publisher");
    assert_eq!((got.len(), resets), (400, 0), "events, resets");
    assert_eq!(got, sent);
    assert_eq!(metric(&n, "ssehub_broker_gaps_total").as_deref(), Some("0"));
    // A real gap on the same short stream is still told: two entries added and the
    // stream cut to one before the node could read the first.
    let cli = |args: &[&str]| redis.cli(args);
    let script = "redis.call('XADD', KEYS[1], '*', 'topic', 'default', 'data', 'gone') \
                  redis.call('XADD', KEYS[1], '*', 'topic', 'default', 'data', 'kept') \
                  redis.call('XTRIM', KEYS[1], 'MAXLEN', '1') return 1";
    cli(&["EVAL", script, "1", "ssehub:events"]);
    let reset = sub.expect_event();
    assert_eq!(reset.json()["reason"], "lost", "{reset:?}");
    assert_eq!(sub.expect_event().data, "kept");
}
