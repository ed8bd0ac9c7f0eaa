//! `SIGUSR2`: the live streams, the listeners and the history pass to a successor
//! process (the same binary, started by the server), and no stream reconnects, misses
//! or repeats an event; if the successor fails, the old process serves on.
//!
//! Run with `cargo test --test tests handover`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::auth::pyjwt;
use crate::capacity::{clients, resting};
use crate::mercure::{HUB, enc, hub_url};
use crate::support::{Binary, MAX_WAIT, SHORT, SseClient, spawn_binary, wait_for};

const TOKEN: &str = "handover-token";
const KEY: &str = "handover test key, at least 32 bytes long";

/// The successor a handover started (its pid from the old process's log line); killed
/// when dropped, since the test harness started it only indirectly.
struct Successor(u32);

impl Drop for Successor {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.to_string()).status();
    }
}

/// Sends `SIGUSR2`, waits for the old process to log the handover and exit; the
/// successor, and the old process's log line.
fn upgrade(bin: &mut Binary) -> (Successor, String) {
    upgrade_with(bin, || {})
}

/// [`upgrade`], running `meanwhile` right after the signal (a client hanging up
/// while the streams are handed, say).
fn upgrade_with(bin: &mut Binary, meanwhile: impl FnOnce()) -> (Successor, String) {
    let before = bin.stderr.lock().unwrap().len();
    bin.signal("USR2");
    meanwhile();
    let mut line = String::new();
    wait_for(MAX_WAIT, || {
        let lines = bin.stderr.lock().unwrap();
        match lines[before..]
            .iter()
            .find(|l| l.contains("handed over to pid "))
        {
            Some(l) => {
                line = l.clone();
                true
            }
            None => false,
        }
    })
    .unwrap_or_else(|_| panic!("no handover; stderr: {:?}", bin.stderr.lock().unwrap()));
    let pid: u32 = line
        .split("handed over to pid ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a pid in the handover line {line:?}"));
    let status = bin.wait_exit(MAX_WAIT).expect("the old process exits");
    assert!(status.success(), "the old process exited with {status}");
    (Successor(pid), line)
}

/// One publish (with an idempotency key, so a retry after a lost answer publishes
/// once), retried while the server is handing over; the id.
fn publish(addr: SocketAddr, body: &serde_json::Value, key: &str) -> String {
    let body = body.to_string();
    let deadline = Instant::now() + MAX_WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "publish {key} never answered 200"
        );
        let req = format!(
            "POST /publish HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nIdempotency-Key: {key}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let answer = TcpStream::connect(addr).and_then(|mut s| {
            s.set_read_timeout(Some(SHORT))?;
            s.write_all(req.as_bytes())?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        });
        match answer {
            Ok(a) if a.starts_with("HTTP/1.1 200") => {
                let json = &a[a.find("\r\n\r\n").expect("a body") + 4..];
                let v: serde_json::Value = serde_json::from_str(json).expect("JSON answer");
                return v["id"].as_str().expect("an id").to_owned();
            }
            // 503 while handing over, or the old process left mid-request: retry.
            Ok(a) if a.starts_with("HTTP/1.1 503") || a.is_empty() => {}
            Ok(a) => panic!("publish answered {a:?}"),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Publishes `{"data": "<i>", "topic": topic}` for i in 0.. until `stop`, in one thread;
/// the ids in order.
fn publisher(
    addr: SocketAddr,
    topic: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut ids = Vec::new();
        let n = AtomicU64::new(0);
        while !stop.load(Ordering::SeqCst) {
            let i = n.fetch_add(1, Ordering::SeqCst);
            let body = json!({"data": i.to_string(), "topic": topic});
            ids.push(publish(addr, &body, &format!("{topic}-{i}")));
            std::thread::sleep(Duration::from_millis(5));
        }
        ids
    })
}

/// A fresh directory under the system's temporary directory, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ssehub-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hub(extra: &[&str]) -> Binary {
    let mut args = vec!["--no-demo", "--heartbeat", "0", "--publish-token", TOKEN];
    args.extend_from_slice(extra);
    spawn_binary(&args)
}

/// The events' ids a client got, reading until it has `want` of them.
fn ids_of(client: &mut SseClient, want: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < want {
        match client.next_event(Duration::from_secs(5)) {
            Some(ev) => ids.push(ev.id),
            None => panic!(
                "{} of {want} events, then nothing (eof: {})",
                ids.len(),
                client.eof
            ),
        }
    }
    ids
}

#[test]
fn streams_keep_their_connection_across_sigusr2_and_get_every_event_once() {
    let mut bin = hub(&[]);
    let addr = bin.addr;
    let mut all = SseClient::open(addr, "/stream");
    let mut only_a = SseClient::open(addr, "/stream?topic=a");
    let mut curl = Command::new("curl")
        .args(["-sN", "--max-time", "20", &format!("http://{addr}/stream")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    let curl_out = curl.stdout.take().expect("curl's stdout");
    let curl_bytes = Arc::new(Mutex::new(Vec::new()));
    let sink = curl_bytes.clone();
    std::thread::spawn(move || {
        let mut out = curl_out;
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    wait_for(SHORT, || !curl_bytes.lock().unwrap().is_empty()).expect("curl's stream opened");
    let stop = Arc::new(AtomicBool::new(false));
    let on_a = publisher(addr, "a", stop.clone());
    let on_b = publisher(addr, "b", stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    let (_successor, line) = upgrade(&mut bin);
    assert!(line.contains(": 3 streams"), "{line}");
    // The old process leaves the handed streams alone: it ends none of them.
    let lines = bin.stderr.lock().unwrap().clone();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("disconnected") || l.contains("evicted")),
        "{lines:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let (a, b) = (on_a.join().unwrap(), on_b.join().unwrap());
    assert!(
        a.len() > 20 && b.len() > 20,
        "{} and {} published",
        a.len(),
        b.len()
    );
    // Every event exactly once, in the order of the ids (the offsets are dense).
    let got = ids_of(&mut all, a.len() + b.len());
    let mut want: Vec<String> = a.iter().chain(&b).cloned().collect();
    want.sort_by_key(|id| id.split('-').nth(1).unwrap().parse::<u64>().unwrap());
    assert_eq!(got, want, "the /stream subscriber");
    assert_eq!(ids_of(&mut only_a, a.len()), a, "the ?topic=a subscriber");
    all.assert_no_event(Duration::from_millis(200));
    assert!(!all.eof && !only_a.eof, "a stream ended");
    // curl: the same ids, on its one connection.
    wait_for(SHORT, || {
        String::from_utf8_lossy(&curl_bytes.lock().unwrap())
            .contains(&format!("id: {}", want.last().unwrap()))
    })
    .expect("curl got the last event");
    let text = String::from_utf8(curl_bytes.lock().unwrap().clone()).unwrap();
    let curl_ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(
        curl_ids,
        want.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(text.matches("retry:").count(), 1, "curl connected once");
    assert!(
        curl.try_wait().unwrap().is_none(),
        "curl's stream is still open"
    );
    let _ = curl.kill();
    let _ = curl.wait();
}

#[test]
fn private_and_mercure_streams_keep_their_rights_and_filters() {
    let mut bin = hub(&["--jwt-key", KEY]);
    let addr = bin.addr;
    let books = "https://e.com/books/{id}";
    let token = pyjwt(
        &json!({"mercure": {"subscribe": ["a", books]}}),
        KEY,
        "HS256",
    );
    let bearer = format!("Bearer {token}");
    let mut private = SseClient::connect(addr, "/stream", &[("Authorization", &bearer)]);
    let mut public = SseClient::open(addr, "/stream");
    let mut tagged = SseClient::open(addr, "/stream?tagged=1");
    let template = "https%3A%2F%2Fe.com%2Fbooks%2F%7Bid%7D";
    let mut mercure = SseClient::connect(
        addr,
        &format!("/.well-known/mercure?topic={template}"),
        &[("Authorization", &bearer)],
    );
    let (_successor, _) = upgrade(&mut bin);
    let secret_a = publish(
        addr,
        &json!({"data": "s-a", "topic": "a", "private": true}),
        "1",
    );
    let secret_b = publish(
        addr,
        &json!({"data": "s-b", "topic": "b", "private": true}),
        "2",
    );
    let book = publish(
        addr,
        &json!({"data": "s-book", "topic": "https://e.com/books/7", "private": true}),
        "3",
    );
    let open = publish(addr, &json!({"data": "p", "topic": "a"}), "4");
    let _ = secret_b;
    // On /stream a selector follows ssehub's rules (a template is a plain name there);
    // on the Mercure path, Mercure's (the template matches the book).
    let got: Vec<String> = private.expect_events(2).into_iter().map(|e| e.id).collect();
    assert_eq!(got, [secret_a, open.clone()], "private: a only");
    let ev = public.expect_event();
    assert_eq!(
        (ev.id, ev.data),
        (open.clone(), "p".to_owned()),
        "public: no private event"
    );
    let ev = mercure.expect_event();
    assert_eq!(
        (ev.id, ev.data),
        (book, "s-book".to_owned()),
        "Mercure: its template"
    );
    private.assert_no_event(Duration::from_millis(200));
    public.assert_no_event(Duration::from_millis(100));
    mercure.assert_no_event(Duration::from_millis(100));
    // A tagged stream still gets its events' topic lines.
    assert!(
        tagged.wait_raw(format!("topic: a\nid: {open}\n").as_bytes(), SHORT),
        "{:?}",
        String::from_utf8_lossy(&tagged.raw)
    );
}

#[test]
fn a_stream_mid_backlog_gets_the_rest_of_it_from_the_successor() {
    let mut bin = hub(&[
        "--send-buffer",
        "4096",
        "--write-timeout",
        "30",
        "--history-bytes",
        "16000000",
        "--history",
        "2000",
    ]);
    let addr = bin.addr;
    let data = "x".repeat(12_000);
    let first = publish(addr, &json!({"data": "first"}), "first");
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(publish(
            addr,
            &json!({"data": format!("{i}{data}")}),
            &format!("b{i}"),
        ));
    }
    // A resume from the first event: a 3.6 MB backlog, which this client does not read
    // yet, so its writer stands in the middle of it, a frame written in part.
    let mut slow = SseClient::connect(addr, "/stream", &[("Last-Event-ID", &first)]);
    std::thread::sleep(Duration::from_millis(300));
    let (_successor, line) = upgrade(&mut bin);
    let owed: u64 = line
        .split(" bytes owed")
        .next()
        .and_then(|l| l.rsplit('(').next())
        .and_then(|n| n.parse().ok())
        .expect("the owed bytes in the handover line");
    assert!(owed > 1_000_000, "the writer was mid-backlog: {line}");
    let after = publish(addr, &json!({"data": "after"}), "after");
    ids.push(after);
    let got: Vec<String> = (0..ids.len())
        .map(|_| slow.next_event(MAX_WAIT).expect("an event").id)
        .collect();
    assert_eq!(got, ids);
}

#[test]
fn the_old_process_serves_on_when_the_successor_fails() {
    serves_on_after_a_failed_handover(&[]);
}

#[test]
fn with_a_history_file_a_failed_handover_takes_the_lock_back() {
    let dir = TempDir::new("rollback");
    let file = dir.join("history");
    serves_on_after_a_failed_handover(&["--history-file", file.to_str().unwrap()]);
}

/// A successor that exits at start (`/bin/false`): the old process rolls back and goes
/// on accepting and publishing, and its streams miss nothing and get every event in
/// order, the ones published right after the rollback too (a publisher retries every
/// 20 ms while refused).
fn serves_on_after_a_failed_handover(extra: &[&str]) {
    let bin = spawn_binary_with_env(&[("SSEHUB_HANDOVER_EXE", "/bin/false")], extra);
    let addr = bin.addr;
    let mut sub = SseClient::open(addr, "/stream");
    let mut others: Vec<SseClient> = (0..40).map(|_| SseClient::open(addr, "/stream")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let on_a = publisher(addr, "a", stop.clone());
    std::thread::sleep(Duration::from_millis(200));
    bin.signal("USR2");
    assert!(
        bin.stderr_has(
            "handover to /bin/false failed: the successor exited",
            MAX_WAIT
        ),
        "{:?}",
        bin.stderr.lock().unwrap()
    );
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let a = on_a.join().unwrap();
    assert_eq!(ids_of(&mut sub, a.len()), a, "no gap, no duplicate");
    for (i, other) in others.iter_mut().enumerate() {
        assert_eq!(ids_of(other, a.len()), a, "stream {i}: in order, once each");
    }
    let mut late = SseClient::open(addr, "/stream");
    let id = publish(addr, &json!({"data": "late"}), "late");
    assert_eq!(late.expect_event().id, id, "accepting and publishing again");
    assert_eq!(sub.expect_event().id, id);
    let lines = bin.stderr.lock().unwrap().clone();
    assert_eq!(
        lines.iter().filter(|l| l.contains("failed")).count(),
        1,
        "{lines:?}"
    );
}

/// [`hub`] with extra environment variables and flags.
fn spawn_binary_with_env(env: &[(&str, &str)], extra: &[&str]) -> Binary {
    let mut args = vec!["env".to_owned()];
    args.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    args.push(env!("CARGO_BIN_EXE_ssehub").to_owned());
    for a in [
        "--bind",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--no-demo",
        "--heartbeat",
        "0",
        "--publish-token",
        TOKEN,
    ] {
        args.push(a.to_owned());
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    crate::support::spawn_binary_via("env", &refs)
}

#[test]
fn with_a_history_file_the_successor_takes_its_lock_and_goes_on() {
    let dir = TempDir::new("handover");
    let file = dir.join("history");
    let mut bin = hub(&["--history-file", file.to_str().unwrap()]);
    let addr = bin.addr;
    let mut sub = SseClient::open(addr, "/stream");
    let stop = Arc::new(AtomicBool::new(false));
    let on_a = publisher(addr, "a", stop.clone());
    std::thread::sleep(Duration::from_millis(200));
    let (successor, _) = upgrade(&mut bin);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let a = on_a.join().unwrap();
    assert_eq!(ids_of(&mut sub, a.len()), a, "no gap, no duplicate");
    // The successor holds the lock: its pid is in PATH.lock.
    let holder = std::fs::read_to_string(dir.join("history.lock")).unwrap();
    assert_eq!(holder.trim(), successor.0.to_string());
    // The same history: a resume from the first event continues.
    let mut late = SseClient::connect(addr, "/stream", &[("Last-Event-ID", &a[0])]);
    assert_eq!(late.head.header("SSE-Resume"), Some("continue"));
    assert_eq!(ids_of(&mut late, a.len() - 1), a[1..]);
    drop(successor);
}

/// Every notify datagram received within `within` until `stop` says enough.
fn datagrams(
    socket: &std::os::unix::net::UnixDatagram,
    within: Duration,
    mut stop: impl FnMut(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let Ok(n) = socket.recv(&mut buf) else { break };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = stop(&msg);
        got.push(msg);
        if done {
            break;
        }
    }
    got
}

#[test]
fn under_systemd_the_successor_becomes_the_main_pid_and_keeps_the_watchdog() {
    let dir = TempDir::new("notify-ho");
    let path = dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    // WATCHDOG_PID=$$ names the server itself (sh execs it), as systemd would.
    let script = format!(
        "NOTIFY_SOCKET={} WATCHDOG_USEC=400000 WATCHDOG_PID=$$ exec {} --bind 127.0.0.1:0 \
         --threads 1 --no-demo --heartbeat 0 --publish-token {TOKEN}",
        path.display(),
        env!("CARGO_BIN_EXE_ssehub")
    );
    let mut bin = crate::support::spawn_binary_via("sh", &["-c", &script]);
    let old = bin.child.id();
    let mut sub = SseClient::open(bin.addr, "/stream");
    datagrams(&notify, MAX_WAIT, |m| m.contains("READY=1"));
    let (successor, _) = upgrade(&mut bin);
    let got = datagrams(&notify, MAX_WAIT, |m| m.contains("READY=1"));
    let text = got.join("\n");
    let reloading = text.find("RELOADING=1").expect("RELOADING=1");
    let mainpid = text
        .find(&format!("MAINPID={}", successor.0))
        .unwrap_or_else(|| panic!("no MAINPID={} in {got:?}", successor.0));
    assert!(
        reloading < mainpid && mainpid < text.rfind("READY=1").unwrap(),
        "{got:?}"
    );
    assert_ne!(successor.0, old);
    // The old process is gone: WATCHDOG=1 now comes from the successor alone.
    let later = datagrams(&notify, Duration::from_secs(3), |m| {
        m.contains("WATCHDOG=1")
    });
    assert!(later.iter().any(|m| m.contains("WATCHDOG=1")), "{later:?}");
    let id = publish(bin.addr, &json!({"data": "after"}), "after");
    assert_eq!(sub.expect_event().id, id);
}

/// Another node, in process, on the Redis stream at `url`, publishing with [`TOKEN`].
fn peer(url: &str) -> crate::support::TestServer {
    crate::support::start(&[
        "--no-demo",
        "--heartbeat",
        "0",
        "--publish-token",
        TOKEN,
        "--redis",
        url,
    ])
}

#[test]
fn with_redis_the_successor_reads_on_and_streams_miss_nothing() {
    let redis = crate::support::redis::RedisServer::start(&[]);
    let url = redis.unix_url("");
    let mut a = hub(&["--redis", &url]);
    // Node B publishes to the same stream throughout, also while A is handing over.
    let b = peer(&url);
    let mut sub = SseClient::open(a.addr, "/stream");
    let stop = Arc::new(AtomicBool::new(false));
    let via_b = publisher(b.addr, "b", stop.clone());
    let before = publish(a.addr, &json!({"data": "before", "topic": "a"}), "before");
    std::thread::sleep(Duration::from_millis(300));
    let (_successor, line) = upgrade(&mut a);
    assert!(line.contains(": 1 streams"), "{line}");
    let after = publish(a.addr, &json!({"data": "after", "topic": "a"}), "after");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let from_b = via_b.join().unwrap();
    // Redis ids order the stream: every event once, in that order.
    let id_key = |id: &String| -> (u64, u64) {
        let (ms, seq) = id.split_once('-').unwrap();
        (ms.parse().unwrap(), seq.parse().unwrap())
    };
    let mut want: Vec<String> = from_b.iter().cloned().chain([before, after]).collect();
    want.sort_by_key(id_key);
    assert!(from_b.len() > 20, "{} published via B", from_b.len());
    assert_eq!(ids_of(&mut sub, want.len()), want);
    sub.assert_no_event(Duration::from_millis(200));
    assert!(!sub.eof);
}

/// With `--redis`, a node that has delivered no event yet (the stream was empty when it
/// started) still hands its streams a place in the stream: what other nodes publish
/// while it hands over reaches them, whether the successor loads it with the tail or
/// reads it live.
#[test]
fn with_redis_a_node_that_delivered_nothing_yet_hands_over_nothing_missed() {
    delivered_nothing_then_handed(5);
}

/// The same with nothing published during the handover: no reset either.
#[test]
fn with_redis_an_idle_node_on_an_empty_stream_hands_over_without_a_reset() {
    delivered_nothing_then_handed(0);
}

/// A node on an empty Redis stream hands over its one stream while another node
/// publishes `n` events; then one is published on it. The stream gets each once, in
/// order, and nothing else (no reset: it missed nothing).
fn delivered_nothing_then_handed(n: usize) {
    let redis = crate::support::redis::RedisServer::start(&[]);
    let url = redis.unix_url("");
    let mut a = hub(&["--redis", &url]);
    let b = peer(&url);
    let mut sub = SseClient::open(a.addr, "/stream");
    assert!(wait_for(MAX_WAIT, || clients(a.addr) == 1).is_ok());
    let mut during = Vec::new();
    let (_successor, line) = upgrade_with(&mut a, || {
        for i in 0..n {
            let body = json!({"data": i.to_string(), "topic": "b"});
            during.push(publish(b.addr, &body, &format!("during-{i}")));
        }
    });
    assert!(line.contains(": 1 streams"), "{line}");
    let after = publish(a.addr, &json!({"data": "after", "topic": "a"}), "after");
    during.push(after);
    assert_eq!(ids_of(&mut sub, during.len()), during);
    sub.assert_no_event(Duration::from_millis(200));
}

#[test]
fn a_successor_that_never_confirms_is_stopped_and_the_old_process_serves_on() {
    // A "binary" that starts and hangs: it never connects to the handover socket.
    let dir = TempDir::new("hang");
    let exe = dir.join("hang.sh");
    std::fs::write(&exe, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bin = spawn_binary_with_env(&[("SSEHUB_HANDOVER_EXE", exe.to_str().unwrap())], &[]);
    let addr = bin.addr;
    let mut sub = SseClient::open(addr, "/stream");
    let first = publish(addr, &json!({"data": "first"}), "first");
    bin.signal("USR2");
    // Children of the server while it waits: the hung successor.
    let children = || {
        std::fs::read_dir(format!("/proc/{}/task", bin.child.id()))
            .unwrap()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    wait_for(SHORT, || !children().is_empty()).expect("the successor started");
    let hung = children();
    assert!(
        bin.stderr_has(
            "did not confirm within 10 s; serving on",
            Duration::from_secs(15)
        ),
        "{:?}",
        bin.stderr.lock().unwrap()
    );
    // It was stopped (and reaped): no child is left.
    wait_for(SHORT, || children().is_empty()).expect("the hung successor is gone");
    assert!(
        hung.iter()
            .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    );
    let after = publish(addr, &json!({"data": "after"}), "after");
    let got: Vec<String> = sub.expect_events(2).into_iter().map(|e| e.id).collect();
    assert_eq!(got, [first, after]);
}

#[test]
fn a_token_s_expiry_and_its_notice_carry_over() {
    let mut bin = hub(&["--jwt-key", KEY, "--token-notice", "2"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = now + 4;
    let token = pyjwt(
        &json!({"mercure": {"subscribe": ["a"]}, "exp": exp}),
        KEY,
        "HS256",
    );
    let bearer = format!("Bearer {token}");
    let mut s = SseClient::connect(bin.addr, "/stream?topic=a", &[("Authorization", &bearer)]);
    // Handed over before the notice is due (2 s before exp): the successor sends it.
    let (_successor, _) = upgrade(&mut bin);
    let ev = s
        .next_event(Duration::from_secs(5))
        .expect("token-expiring");
    assert_eq!(ev.event, "token-expiring");
    let data: serde_json::Value = serde_json::from_str(&ev.data).unwrap();
    assert_eq!(data["exp"], json!(exp));
    // And the successor ends the stream at exp, as the old process would have.
    assert!(s.wait_eof(Duration::from_secs(5)), "the stream ends at exp");
    let ended = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        ended >= exp && ended <= exp + 1,
        "ended at {ended}, exp {exp}"
    );
}

/// `n` streams on `/stream` (every third on `?topic=a`), each with the one event
/// published first, then left idle until every one rests (no task, no reactor
/// registration: for longer than `REST_AFTER`, as the writers of those that got the
/// event wait that long first).
fn resting_streams(addr: SocketAddr, n: usize) -> (Vec<SseClient>, String) {
    let mut subs: Vec<SseClient> = (0..n)
        .map(|i| {
            let path = if i % 3 == 0 {
                "/stream?topic=a"
            } else {
                "/stream"
            };
            SseClient::open(addr, path)
        })
        .collect();
    let first = publish(addr, &json!({"data": "first", "topic": "a"}), "first");
    for sub in &mut subs {
        assert_eq!(ids_of(sub, 1), std::slice::from_ref(&first));
    }
    std::thread::sleep(Duration::from_millis(1100));
    assert!(
        wait_for(MAX_WAIT, || resting(addr) == n as u64).is_ok(),
        "{} of {n} streams rest",
        resting(addr)
    );
    (subs, first)
}

#[test]
fn resting_streams_are_handed_over_and_get_every_event_once_then_rest_again() {
    let mut bin = hub(&[]);
    let addr = bin.addr;
    let n = 30;
    let (mut subs, first) = resting_streams(addr, n);
    // Still resting: nothing woke them since.
    assert_eq!(resting(addr), n as u64);
    let (_successor, line) = upgrade(&mut bin);
    assert!(line.contains(&format!(": {n} streams")), "{line}");
    let lines = bin.stderr.lock().unwrap().clone();
    assert!(
        !lines.iter().any(|l| l.contains("did not stop in time")),
        "{lines:?}"
    );
    // In the successor: every event once, in order, on the connection each had.
    let ids: Vec<String> = (0..20)
        .map(|i| {
            let topic = if i % 2 == 0 { "a" } else { "b" };
            publish(
                addr,
                &json!({"data": i.to_string(), "topic": topic}),
                &format!("after-{i}"),
            )
        })
        .collect();
    let on_a: Vec<String> = ids.iter().step_by(2).cloned().collect();
    for (i, sub) in subs.iter_mut().enumerate() {
        let want = if i % 3 == 0 { &on_a } else { &ids };
        assert_eq!(&ids_of(sub, want.len()), want, "stream {i}");
        let raw = String::from_utf8_lossy(&sub.raw).into_owned();
        assert_eq!(
            raw.matches("retry:").count(),
            1,
            "stream {i} connected once"
        );
    }
    // The handed streams rest again there, and go on getting events.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(
        wait_for(MAX_WAIT, || resting(addr) == n as u64).is_ok(),
        "{} of {n} handed streams rest in the successor",
        resting(addr)
    );
    let last = publish(addr, &json!({"data": "last", "topic": "a"}), "last");
    for (i, sub) in subs.iter_mut().enumerate() {
        assert_eq!(ids_of(sub, 1), std::slice::from_ref(&last), "stream {i}");
        sub.assert_no_event(Duration::from_millis(50));
        assert!(!sub.eof, "stream {i} ended");
    }
    assert_ne!(first, last);
}

#[test]
fn a_resting_stream_whose_client_hangs_up_around_a_handover_leaves() {
    let mut bin = hub(&[]);
    let addr = bin.addr;
    let n = 12;
    let (mut subs, _) = resting_streams(addr, n);
    // One client hangs up as the handover starts: the old process or the successor
    // ends its stream, and the others go over untouched.
    let during = subs.pop();
    let (_successor, _) = upgrade_with(&mut bin, || drop(during));
    let left = (n - 1) as u64;
    assert!(
        wait_for(MAX_WAIT, || clients(addr) == left).is_ok(),
        "{} clients in the successor, want {left}",
        clients(addr)
    );
    // The others rest again in the successor; one of them hangs up there, at rest.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(
        wait_for(MAX_WAIT, || resting(addr) == left).is_ok(),
        "{} resting, want {left}",
        resting(addr)
    );
    drop(subs.pop());
    let left = left - 1;
    assert!(
        wait_for(MAX_WAIT, || clients(addr) == left).is_ok(),
        "{} clients after a hang-up at rest, want {left}",
        clients(addr)
    );
    let id = publish(addr, &json!({"data": "x", "topic": "a"}), "x");
    for (i, sub) in subs.iter_mut().enumerate() {
        assert_eq!(ids_of(sub, 1), std::slice::from_ref(&id), "stream {i}");
        assert!(!sub.eof, "stream {i} ended");
    }
}

#[test]
fn resting_streams_rest_again_after_a_rollback_and_miss_nothing() {
    let bin = spawn_binary_with_env(&[("SSEHUB_HANDOVER_EXE", "/bin/false")], &[]);
    let addr = bin.addr;
    let n = 10;
    let (mut subs, _) = resting_streams(addr, n);
    bin.signal("USR2");
    assert!(
        bin.stderr_has(
            "handover to /bin/false failed: the successor exited",
            MAX_WAIT
        ),
        "{:?}",
        bin.stderr.lock().unwrap()
    );
    // The pause woke them all (each handed its state in); after the rollback each goes
    // on in a writer task of its own, and rests again once idle.
    assert!(
        wait_for(MAX_WAIT, || resting(addr) == n as u64).is_ok(),
        "{} of {n} rest again after the rollback",
        resting(addr)
    );
    let ids: Vec<String> = (0..6)
        .map(|i| {
            publish(
                addr,
                &json!({"data": i.to_string(), "topic": "a"}),
                &format!("r{i}"),
            )
        })
        .collect();
    for (i, sub) in subs.iter_mut().enumerate() {
        assert_eq!(ids_of(sub, ids.len()), ids, "stream {i}");
        sub.assert_no_event(Duration::from_millis(50));
        assert!(!sub.eof, "stream {i} ended");
    }
    assert_eq!(clients(addr), n as u64);
}

/// A GET on a fresh connection, with `headers`.
fn get_at(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> crate::support::Response {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    crate::support::Client::connect(addr).request(req.as_bytes())
}

/// The subscriber ids the hub lists on `topic`'s subscriptions.
fn listed(addr: SocketAddr, topic: &str, reader: &str) -> BTreeSet<String> {
    let path = format!("{HUB}/subscriptions/{}", enc(topic));
    let list = get_at(
        addr,
        &path,
        &[("Authorization", &format!("Bearer {reader}"))],
    );
    assert_eq!(list.status, 200, "{}", list.body_text());
    list.json()["subscriptions"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["subscriber"].as_str().expect("an id").to_owned())
        .collect()
}

/// Mercure's active subscriptions and the per-token stream cap go on in the successor:
/// a handed subscriber keeps its id in the list, is not announced again, and is
/// announced inactive by the successor when it leaves; its token's streams still count.
#[test]
fn a_mercure_subscriber_keeps_its_listing_and_its_token_its_count() {
    let mut bin = hub(&[
        "--jwt-key",
        KEY,
        "--mercure-subscriptions",
        "--max-streams-per-token",
        "2",
    ]);
    let addr = bin.addr;
    let topic = "https://example.com/a";
    let events = format!("{HUB}/subscriptions/{{+rest}}");
    let mint = |sub: &str, selectors: &[&str]| {
        pyjwt(
            &json!({"sub": sub, "mercure": {"subscribe": selectors}}),
            KEY,
            "HS256",
        )
    };
    let watcher_token = mint("watcher", &[&events]);
    let mut watcher = SseClient::connect(
        addr,
        &hub_url(&[("topic", &events)]),
        &[("Authorization", &format!("Bearer {watcher_token}"))],
    );
    let alice = format!("Bearer {}", mint("alice", &[topic]));
    let open_alice = || {
        SseClient::connect(
            addr,
            &hub_url(&[("topic", topic)]),
            &[("Authorization", &alice)],
        )
    };
    let mut first = open_alice();
    let second = open_alice();
    assert!(wait_for(MAX_WAIT, || clients(addr) == 3).is_ok());
    let reader = mint("reader", &["*"]);
    let ids = listed(addr, topic, &reader);
    assert_eq!(ids.len(), 2, "{ids:?}");
    // The watcher saw both come (and nothing else of them).
    let mut came = BTreeSet::new();
    while came.len() < 2 {
        let doc = watcher.expect_event().json();
        let id = doc["subscriber"].as_str().unwrap().to_owned();
        if ids.contains(&id) {
            assert_eq!(doc["active"], true, "{doc}");
            came.insert(id);
        }
    }

    let (_successor, line) = upgrade(&mut bin);
    assert!(line.contains(": 3 streams"), "{line}");
    assert_eq!(
        listed(addr, topic, &reader),
        ids,
        "the same subscribers listed"
    );
    // Alice's token still holds two streams: a third is refused.
    let third = get_at(
        addr,
        &hub_url(&[("topic", topic)]),
        &[("Authorization", &alice)],
    );
    assert_eq!(third.status, 429, "{}", third.body_text());
    // One leaves: the successor announces it inactive (and never announced it active
    // again), and alice's token has room for one more.
    let before = listed(addr, topic, &reader);
    drop(second);
    assert!(wait_for(MAX_WAIT, || listed(addr, topic, &reader).len() == 1).is_ok());
    let gone: Vec<String> = before
        .difference(&listed(addr, topic, &reader))
        .cloned()
        .collect();
    assert_eq!(gone.len(), 1);
    loop {
        let doc = watcher.expect_event().json();
        let id = doc["subscriber"].as_str().unwrap();
        if !ids.contains(id) {
            continue;
        }
        assert_eq!(doc["active"], false, "announced again: {doc}");
        assert_eq!(id, gone[0]);
        break;
    }
    let mut again = open_alice();
    assert!(wait_for(MAX_WAIT, || clients(addr) == 3).is_ok());
    // The handed stream and the new one get what is published on the topic.
    let id = publish(addr, &json!({"data": "x", "topic": topic}), "after");
    assert_eq!(first.expect_event().id, id);
    assert_eq!(again.expect_event().id, id);
}
