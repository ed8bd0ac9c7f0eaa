//! Every kind of event through every backend of the publish port (#19): alternate topics,
//! private events, publisher-supplied ids and idempotent retries, published over TCP and
//! read back live and in replay, on the in-memory port, with a history file (and across a
//! restart), and on three nodes sharing one real Redis (and on another node).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::redis::RedisServer;
use crate::support::{Client, Response, SHORT, SseClient, TestServer, start};

const TOKEN: &str = "events-token";
const KEY: &str = "events test key, at least 32 bytes long";

fn server(extra: &[&str]) -> TestServer {
    let mut args = vec![
        "--no-demo",
        "--heartbeat",
        "0",
        "--publish-token",
        TOKEN,
        "--jwt-key",
        KEY,
    ];
    args.extend_from_slice(extra);
    start(&args)
}

/// A subscribe token for `selectors`, signed by PyJWT.
fn token(selectors: &[&str]) -> String {
    let claims = json!({"mercure": {"subscribe": selectors}});
    let script = "import jwt, json, sys; print(jwt.encode(json.loads(sys.argv[1]), sys.argv[2], algorithm='HS256'))";
    let out = Command::new("python3")
        .args(["-W", "ignore", "-c", script, &claims.to_string(), KEY])
        .output()
        .expect("python3 with PyJWT (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `POST /publish` of JSON `body` with extra `headers`.
fn post(addr: SocketAddr, body: &Value, headers: &[(&str, &str)]) -> Response {
    let body = body.to_string();
    let mut req = format!(
        "POST /publish HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    Client::connect(addr).request(req.as_bytes())
}

/// Publishes and returns the answer's id.
fn publish(addr: SocketAddr, body: Value) -> String {
    let r = post(addr, &body, &[]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(r.header("Idempotent-Replayed"), None);
    r.json()["id"].as_str().expect("id").to_owned()
}

/// The (id, data) of the next `n` events (resets left out), waiting up to 5 s for them,
/// then of any that arrive within 300 ms more (there should be none).
fn take(sub: &mut SseClient, n: usize) -> Vec<(String, String)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(ev) = sub.next_event(left) else {
            break;
        };
        if ev.event != "reset" {
            got.push((ev.id, ev.data));
        }
    }
    while let Some(ev) = sub.next_event(Duration::from_millis(300)) {
        if ev.event != "reset" {
            got.push((ev.id, ev.data));
        }
    }
    got
}

fn datas(got: &[(String, String)]) -> Vec<&str> {
    got.iter().map(|(_, d)| d.as_str()).collect()
}

/// Waits until `srv` holds `n` subscribers (any node's hub).
fn wait_subscribers(srv: &TestServer, n: usize) {
    srv.wait_subscribers(n, SHORT);
}

/// The checks, publishing through `into` and reading from `from` (the same server, or
/// another node of the same Redis). Returns the publisher id given to "named".
fn every_kind(into: &TestServer, from: &TestServer) {
    let bearer = format!("Bearer {}", token(&["b"]));
    let mut on_a = SseClient::open(from.addr, "/stream?topic=a");
    let mut on_b = SseClient::open(from.addr, "/stream?topic=b");
    let mut on_ab = SseClient::open(from.addr, "/stream?topic=a&topic=b");
    let mut on_c = SseClient::open(from.addr, "/stream?topic=c");
    let mut may_b = SseClient::connect(from.addr, "/stream", &[("Authorization", &bearer)]);
    let mut anyone = SseClient::open(from.addr, "/stream");
    wait_subscribers(from, 6);

    // Alternate topics: a subscriber of any of them gets the event once.
    publish(into.addr, json!({"data": "alt", "topic": ["a", "b"]}));
    // Private, on topics x and b: only the token for b reads it.
    publish(
        into.addr,
        json!({"data": "secret", "topic": ["x", "b"], "private": true}),
    );
    // A publisher's id is the wire id.
    let named = publish(
        into.addr,
        json!({"data": "named", "topic": "a", "id": "book-1"}),
    );
    assert_eq!(named, "book-1");
    publish(into.addr, json!({"data": "after", "topic": "a"}));
    // Idempotent retries: the same key, then the same publisher id, answered with the
    // first id and published once.
    let once = json!({"data": "once", "topic": "a"});
    let first = post(into.addr, &once, &[("Idempotency-Key", "k-1")]);
    assert_eq!(first.status, 200, "{}", first.body_text());
    let again = post(into.addr, &once, &[("Idempotency-Key", "k-1")]);
    assert_eq!(again.status, 200, "{}", again.body_text());
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(again.json()["id"], first.json()["id"]);
    let retry = post(
        into.addr,
        &json!({"data": "named", "topic": "a", "id": "book-1"}),
        &[],
    );
    assert_eq!(retry.status, 200, "{}", retry.body_text());
    assert_eq!(retry.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(retry.json()["id"], "book-1");

    let got_a = take(&mut on_a, 4);
    assert_eq!(datas(&got_a), ["alt", "named", "after", "once"]);
    assert_eq!(got_a[1].0, "book-1", "the publisher's id on the wire");
    assert_eq!(datas(&take(&mut on_b, 1)), ["alt"]);
    assert_eq!(
        datas(&take(&mut on_ab, 4)),
        ["alt", "named", "after", "once"]
    );
    assert_eq!(datas(&take(&mut on_c, 0)), Vec::<&str>::new());
    assert_eq!(
        datas(&take(&mut may_b, 5)),
        ["alt", "secret", "named", "after", "once"]
    );
    assert_eq!(
        datas(&take(&mut anyone, 4)),
        ["alt", "named", "after", "once"]
    );
}

/// A resume from the publisher's id `book-1` on `srv` gets exactly what followed it.
fn resume_from_publisher_id(srv: &TestServer) {
    let mut late = SseClient::connect(srv.addr, "/stream?topic=a", &[("Last-Event-ID", "book-1")]);
    let got = take(&mut late, 2);
    assert_eq!(datas(&got), ["after", "once"]);
}

/// A retry after `srv` restarted or on another node is still recognised.
fn retry_is_recognised(srv: &TestServer) {
    let once = json!({"data": "once", "topic": "a"});
    let again = post(srv.addr, &once, &[("Idempotency-Key", "k-1")]);
    assert_eq!(again.status, 200, "{}", again.body_text());
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
}

#[test]
fn every_kind_of_event_through_memory() {
    let srv = server(&[]);
    every_kind(&srv, &srv);
    resume_from_publisher_id(&srv);
    retry_is_recognised(&srv);
}

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ssehub-events-{}-{}-{name}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_kind_of_event_through_a_history_file_and_across_a_restart() {
    let dir = TempDir::new("file");
    let file = dir.0.join("history");
    let path = file.to_str().unwrap().to_owned();
    let srv = server(&["--history-file", &path]);
    every_kind(&srv, &srv);
    resume_from_publisher_id(&srv);
    // The restart waits for the first server to be gone: it holds the file's lock.
    assert!(srv.stop(Duration::from_secs(15)).is_some());
    let srv = server(&["--history-file", &path]);
    resume_from_publisher_id(&srv);
    retry_is_recognised(&srv);
    // The private event was replayed only to a token that may read it.
    let bearer = format!("Bearer {}", token(&["b"]));
    let first = {
        let mut all = SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", "book-1")]);
        take(&mut all, 2)
    };
    assert_eq!(datas(&first), ["after", "once"]);
    let epoch_start = format!("{}-0", srv.hub.epoch());
    let mut may_b = SseClient::connect(
        srv.addr,
        "/stream",
        &[("Authorization", &bearer), ("Last-Event-ID", &epoch_start)],
    );
    assert_eq!(
        datas(&take(&mut may_b, 5)),
        ["alt", "secret", "named", "after", "once"]
    );
}

#[test]
fn every_kind_of_event_through_three_nodes_on_redis() {
    let redis = RedisServer::start(&[]);
    let url = redis.unix_url("");
    let nodes: Vec<TestServer> = (0..3).map(|_| server(&["--redis", &url])).collect();
    // Published on node 0, read on node 1.
    every_kind(&nodes[0], &nodes[1]);
    // Replayed on node 2, which saw it all through its own reader, and a retry on
    // node 2 of what node 0 published is recognised.
    resume_from_publisher_id(&nodes[2]);
    retry_is_recognised(&nodes[2]);
    // A node started after it all loads the events, publisher ids included.
    let late = server(&["--redis", &url]);
    let deadline = Instant::now() + SHORT;
    while late.hub.history_len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    resume_from_publisher_id(&late);
}

/// A TCP proxy to Redis that, once armed, forwards the next script that adds an entry
/// (the guarded `XADD`) and then closes that connection without passing the reply on: Redis applied the `XADD`,
/// the node never hears so (a reply lost to a network fault or a failover).
struct LossyProxy {
    addr: SocketAddr,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LossyProxy {
    fn start(upstream: SocketAddr) -> LossyProxy {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let armed = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (arm, drops) = (armed.clone(), dropped.clone());
        std::thread::spawn(move || {
            // At most a handful of connections (a node's writer, reader and replays).
            for client in listener.incoming().take(64) {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(upstream) else {
                    return;
                };
                let (arm, drops) = (arm.clone(), drops.clone());
                let lost = Arc::new(AtomicBool::new(false));
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let lost_up = lost.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        // Marked before it is forwarded, so the reply cannot race past.
                        // Only the publish's script adds (the reader runs scripts too).
                        let eval = buf[..n].windows(6).any(|w| w == b"'XADD'");
                        if eval && arm.swap(false, Ordering::SeqCst) {
                            lost_up.store(true, Ordering::SeqCst);
                        }
                        if s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_out.shutdown(Shutdown::Write);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if lost.load(Ordering::SeqCst) {
                            // The reply to the armed EVAL: dropped, and the connection cut.
                            drops.fetch_add(1, Ordering::SeqCst);
                            let _ = c_out.shutdown(Shutdown::Both);
                            let _ = s_in.shutdown(Shutdown::Both);
                            break;
                        }
                        if c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        LossyProxy {
            addr,
            armed,
            dropped,
        }
    }
}

#[test]
fn a_retry_after_a_lost_xadd_reply_publishes_nothing_twice() {
    use std::sync::atomic::Ordering;
    let redis = RedisServer::start_tcp(&[]);
    let direct = redis.tcp_addr();
    let proxy = LossyProxy::start(direct);
    let via = format!("redis://{}", proxy.addr);
    let node = server(&["--redis", &via]);
    let reader = server(&["--redis", &redis.unix_url("")]);
    let mut sub = SseClient::open(reader.addr, "/stream");
    wait_subscribers(&reader, 1);
    let body = json!({"data": "pay once", "topic": "orders"});
    proxy.armed.store(true, Ordering::SeqCst);
    let first = post(node.addr, &body, &[("Idempotency-Key", "order-7")]);
    assert_eq!(
        first.status,
        503,
        "the reply was lost: {}",
        first.body_text()
    );
    assert_eq!(proxy.dropped.load(Ordering::SeqCst), 1);
    // The publisher tries again (after Retry-After, here sooner) until it is answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let r = post(node.addr, &body, &[("Idempotency-Key", "order-7")]);
        if r.status == 200 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(answer.status, 200, "{}", answer.body_text());
    assert_eq!(answer.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(redis.cli(&["XLEN", "ssehub:events"]), "1");
    let got = take(&mut sub, 1);
    assert_eq!(datas(&got), ["pay once"]);
    assert_eq!(got[0].0, answer.json()["id"].as_str().unwrap());
}
