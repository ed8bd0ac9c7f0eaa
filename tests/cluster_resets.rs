//! Resets on Redis nodes mean what they say (#20): a short stream gives no `lost` reset
//! for entries the node read; an id that cannot be placed is followed by live events;
//! a client ahead of a lagging node still gets nothing twice.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::support::redis::RedisServer;
use crate::support::{Client, MAX_WAIT, SHORT, SseClient, TestServer, get, publish_json};

use crate::support::redis::{NODE_TOKEN as TOKEN, node, publish};

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

/// A TCP proxy to Redis that can hold back what Redis sends to the connections of a
/// node's reader (those that name themselves `ssehub-read`): the node falls behind the
/// stream while its other connections (publishing, replay) still work.
struct HoldingProxy {
    addr: SocketAddr,
    hold: Arc<AtomicBool>,
}

impl HoldingProxy {
    fn start(upstream: SocketAddr) -> HoldingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = Arc::new(AtomicBool::new(false));
        let held = hold.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().take(256) {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(upstream) else {
                    return;
                };
                let reader = Arc::new(AtomicBool::new(false));
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let is_reader = reader.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if buf[..n].windows(11).any(|w| w == b"ssehub-read") {
                            is_reader.store(true, Ordering::SeqCst);
                        }
                        if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_out.shutdown(Shutdown::Write);
                });
                let held = held.clone();
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        while held.load(Ordering::SeqCst) && reader.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        if c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_out.shutdown(Shutdown::Both);
                });
            }
        });
        HoldingProxy { addr, hold }
    }
}

#[test]
fn an_id_beyond_the_stream_gets_a_future_reset_then_live_events() {
    let redis = RedisServer::start(&[]);
    let n = node(&redis.unix_url(""), &[]);
    publish(&n, "before");
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let future = format!("{}-0", now_ms + 3_600_000);
    let t0 = Instant::now();
    let mut sub = SseClient::connect(n.addr, "/stream", &[("Last-Event-ID", &future)]);
    assert_eq!(sub.head.header("SSE-Resume"), Some("reset"));
    let opened = t0.elapsed();
    let reset = sub.expect_event();
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.json()["reason"], "future");
    n.wait_subscribers(1, SHORT);
    let id = publish(&n, "live");
    let ev = sub.next_event(MAX_WAIT).expect("the next live event");
    assert_eq!((ev.id, ev.data.as_str()), (id, "live"));
    // Redis was asked: no wait for this node to catch up with an id nobody has.
    assert!(opened < Duration::from_millis(900), "{opened:?}");
}

#[test]
fn a_client_ahead_of_a_lagging_node_gets_no_event_twice() {
    // The case of a1ec727: node B still reading what node A already delivered; a client
    // moves from A to B with A's newest id. Redis has that id, so B skips what the
    // client had: a future reset, then only later events.
    let redis = RedisServer::start_tcp(&[]);
    let direct = redis.tcp_addr();
    let proxy = HoldingProxy::start(direct);
    let a = node(&redis.unix_url(""), &[]);
    let b = node(&format!("redis://{}", proxy.addr), &[]);
    let mut on_b = SseClient::open(b.addr, "/stream");
    b.wait_subscribers(1, SHORT);
    publish(&a, "e0");
    assert_eq!(on_b.expect_event().data, "e0");
    proxy.hold.store(true, Ordering::SeqCst);
    let ids: Vec<String> = (1..=3).map(|i| publish(&a, &format!("e{i}"))).collect();
    let mut moved = SseClient::connect(b.addr, "/stream", &[("Last-Event-ID", &ids[2])]);
    assert_eq!(moved.head.header("SSE-Resume"), Some("reset"));
    assert_eq!(moved.expect_event().json()["reason"], "future");
    proxy.hold.store(false, Ordering::SeqCst);
    // B catches up (reconnecting if its read timed out meanwhile), then e4 is live.
    let caught_up = crate::support::wait_for(MAX_WAIT, || {
        b.hub.last_id().map(|i| i.to_string()) == Some(ids[2].clone())
    });
    assert!(caught_up.is_ok(), "B did not catch up");
    let last = publish(&a, "e4");
    let mut got = Vec::new();
    while let Some(ev) = moved.next_event(Duration::from_secs(2)) {
        got.push((ev.event, ev.data));
        if got.last().is_some_and(|(_, d)| d == "e4") {
            break;
        }
    }
    assert_eq!(got, [("message".to_owned(), "e4".to_owned())], "{last}");
}

#[test]
fn an_id_redis_cannot_be_asked_about_gets_a_future_reset_then_live_events() {
    // The fail-safe: Redis is down, so whether it holds the id cannot be known; the
    // client is told `future` and gets every event from then on, none withheld.
    let mut redis = RedisServer::start(&[]);
    let n = node(&redis.unix_url(""), &[]);
    let first = publish(&n, "before");
    redis.kill();
    let (ms, _) = first.split_once('-').unwrap();
    let ahead = format!("{}-0", ms.parse::<u64>().unwrap() + 3_600_000);
    let mut sub = SseClient::connect(n.addr, "/stream", &[("Last-Event-ID", &ahead)]);
    assert_eq!(sub.head.header("SSE-Resume"), Some("reset"));
    assert_eq!(sub.expect_event().json()["reason"], "future");
    redis.restart();
    let ok = crate::support::wait_for(MAX_WAIT, || {
        publish_json(n.addr, TOKEN, &json!({"data": "after"})).status == 200
    });
    assert!(ok.is_ok(), "publishing did not recover");
    let mut got = Vec::new();
    while let Some(ev) = sub.next_event(Duration::from_secs(3)) {
        got.push(ev.data);
        if got.last().is_some_and(|d| d == "after") {
            break;
        }
    }
    assert_eq!(got.last().map(String::as_str), Some("after"), "{got:?}");
}
