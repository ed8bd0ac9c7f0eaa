//! Hostile clients and honest answers: one regression test per defect of the hardening
//! issue, each on the wire over real sockets on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    Client, MAX_WAIT, SHORT, SseClient, assert_healthy, get, post_publish, start, wait_for,
};

/// While a client floods its own open stream with bytes, another subscriber on the same
/// (single) writer thread keeps hearing heartbeats and events on time, and the flooding
/// stream is ended and counted as `unexpected_input`.
#[test]
fn a_client_sending_on_its_stream_does_not_stall_the_others() {
    let srv = start(&["--no-demo", "--heartbeat", "1", "--threads", "1"]);
    let mut good = SseClient::open(srv.addr, "/stream");
    let mut noisy = Client::connect(srv.addr);
    noisy.send(&get("/stream"));
    srv.wait_subscribers(2, SHORT);
    let flood = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_millis(2500);
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0usize;
        while Instant::now() < until {
            match noisy.stream.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        (noisy, sent)
    });
    // Heartbeats every second must keep coming: no gap much over the interval.
    let start = Instant::now();
    let mut last = Instant::now();
    let mut worst = Duration::ZERO;
    let mut beats = 0;
    let mut seen = 0;
    while start.elapsed() < Duration::from_millis(2500) {
        let _ = good.client.fill(Instant::now() + Duration::from_millis(20));
        let n = good
            .client
            .buf
            .windows(13)
            .filter(|w| w == b": heartbeat\n\n")
            .count();
        if n > seen {
            seen = n;
            beats += 1;
            worst = worst.max(last.elapsed());
            last = Instant::now();
        }
    }
    good.client.buf.clear();
    assert!(beats >= 2, "heartbeats heard: {beats}");
    assert!(
        worst < Duration::from_millis(1600),
        "a heartbeat gap of {worst:?}"
    );
    // A queued event arrives at once.
    let sent = Instant::now();
    srv.publish("default", None, "on time");
    let ev = good.next_event(SHORT).expect("event");
    assert_eq!(ev.data, "on time");
    assert!(
        sent.elapsed() < Duration::from_millis(500),
        "{:?}",
        sent.elapsed()
    );
    let (mut noisy, _) = flood.join().unwrap();
    // The flooding client's stream was ended, and counted.
    assert!(
        noisy.drain_to_end(SHORT),
        "the flooding stream was not ended"
    );
    wait_for(SHORT, || srv.handle.snapshot().ended[4] >= 1).expect("counted unexpected_input");
    let stats = srv.client().request(&get("/stats")).json();
    assert_eq!(stats["streams_ended"]["unexpected_input"], 1);
    assert_healthy(srv.addr);
}

/// A few stray bytes after the request (within the allowance) do not end a stream.
#[test]
fn a_few_stray_bytes_on_a_stream_are_tolerated() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut c = Client::connect(srv.addr);
    let mut req = get("/stream");
    req.extend_from_slice(b"\r\n\r\n");
    c.send(&req);
    srv.wait_subscribers(1, SHORT);
    c.send(&[b'\n'; 1000]);
    std::thread::sleep(Duration::from_millis(100));
    srv.publish("default", None, "still here");
    c.read_until(b"data: still here\n\n", SHORT);
    assert_eq!(srv.handle.snapshot().ended[4], 0);
}

/// The per-topic series in /metrics are bounded whatever topics subscribers ask for.
#[test]
fn per_topic_metrics_are_bounded() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut subs = Vec::new();
    for i in 0..3 {
        let topics: String = (0..64).map(|j| format!("topic=t{i}-{j}&")).collect();
        subs.push(SseClient::open(srv.addr, &format!("/stream?{topics}")));
    }
    srv.wait_subscribers(3, SHORT);
    let metrics = srv.client().request(&get("/metrics")).body_text();
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("ssehub_topic_subscribers{"))
        .count();
    assert_eq!(series, ssehub::hub::LISTED_TOPICS);
    assert!(
        metrics
            .lines()
            .any(|l| l == "ssehub_topic_subscribers_unlisted 92")
    );
    assert!(metrics.lines().any(|l| l == "ssehub_topics_unlisted 92"));
    let stats = srv.client().request(&get("/stats")).json();
    assert_eq!(
        stats["topics"].as_object().unwrap().len(),
        ssehub::hub::LISTED_TOPICS
    );
    assert_eq!(stats["topics_unlisted"]["subscribers"], 92);
    drop(subs);
    wait_for(SHORT, || srv.hub.is_empty()).expect("subscribers gone");
    let stats = srv.client().request(&get("/stats")).json();
    assert_eq!(stats["topics"].as_object().unwrap().len(), 0);
    assert_eq!(stats["topics_unlisted"]["topics"], 0);
}

/// Reads an answer from a socket whose request the server did not read in full: the
/// status line must arrive, not a reset.
fn answer_after_oversized_send(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.set_write_timeout(Some(SHORT)).unwrap();
    // The server answers before it has read everything; keep sending what it takes.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(Shutdown::Write);
    stream.set_read_timeout(Some(SHORT)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + MAX_WAIT;
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every refusal whose request was not read in full is still readable by the client
/// (a lingering close, not a reset): 414, 431, 413, 401 with a body, 404 with a body.
#[test]
fn refusals_of_unread_requests_are_readable() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--publish-token", "k"]);
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000));
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X-Pad: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n".repeat(3000)
    );
    let body = vec![b'z'; 200_000];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (long_line.into_bytes(), "HTTP/1.1 414 "),
        (big_head.into_bytes(), "HTTP/1.1 431 "),
        (
            post_publish("", Some("k"), "text/plain", &body),
            "HTTP/1.1 413 ",
        ),
        // Under --max-body, so the token is what is refused; the body is never read.
        (
            post_publish("", Some("wrong"), "text/plain", &body[..60_000]),
            "HTTP/1.1 401 ",
        ),
        (
            [
                b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n".to_vec(),
                body[..60_000].to_vec(),
            ]
            .concat(),
            "HTTP/1.1 404 ",
        ),
    ];
    for (request, want) in cases {
        for attempt in 0..5 {
            let mut s = TcpStream::connect(srv.addr).unwrap();
            let got = answer_after_oversized_send(&mut s, &request);
            assert!(
                got.starts_with(want),
                "attempt {attempt}: want {want:?}, got {:?}",
                &got[..got.len().min(80)]
            );
        }
    }
    assert_healthy(srv.addr);
}

/// The same with `nc -q 1` (a real client) and a 100 KB request line.
#[test]
fn nc_with_an_oversized_request_line_reads_the_414() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let request = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000));
    let path = std::env::temp_dir().join(format!("ssehub-414-{}.txt", std::process::id()));
    std::fs::write(&path, request).unwrap();
    for _ in 0..5 {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "timeout 10 nc -q 1 127.0.0.1 {} < {}",
                srv.addr.port(),
                path.display()
            ))
            .output()
            .expect("nc");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("HTTP/1.1 414 "), "nc printed {text:?}");
    }
    let _ = std::fs::remove_file(path);
}

/// At the connection cap the 503 is readable too, although the request is read no further
/// than its request line.
#[test]
fn the_503_at_the_connection_cap_is_readable() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--max-connections", "1"]);
    let _held = SseClient::open(srv.addr, "/stream");
    for _ in 0..5 {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        let mut req = get("/health");
        req.extend(vec![b'x'; 50_000]);
        let got = answer_after_oversized_send(&mut s, &req);
        assert!(
            got.starts_with("HTTP/1.1 503 "),
            "{:?}",
            &got[..got.len().min(80)]
        );
        assert!(got.contains("Retry-After: 1\r\n"));
    }
}

/// A lingering close is bounded: a refused client that keeps its connection open and
/// sends nothing more is closed once it has been silent a moment, and one that keeps
/// sending is closed at the linger time.
#[test]
fn a_lingering_close_is_bounded_in_time() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut c = Client::connect(srv.addr);
    c.send(b"GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n");
    let r = c.read_response_within(SHORT);
    assert_eq!(r.status, 404);
    let started = Instant::now();
    // Say nothing more: closed after the idle wait.
    assert!(c.drain_to_end(SHORT), "not closed");
    assert!(started.elapsed() < Duration::from_millis(1000));
    // Keep sending, slowly, for ever: closed at the linger time (2 s) all the same.
    let mut c = Client::connect(srv.addr);
    c.send(b"GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n");
    assert_eq!(c.read_response_within(SHORT).status, 404);
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(4) {
        if c.try_send(b"x").is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(closed, "still open after 4 s");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    wait_for(SHORT, || srv.handle.connections() == 0).expect("slot released");
}

/// With few descriptors (`ulimit -n 64`) and more clients than that, open streams keep
/// flowing, the accept loop does not spin, and the server recovers once clients leave.
#[test]
fn descriptor_exhaustion_is_survived() {
    let bin = env!("CARGO_BIN_EXE_ssehub");
    let mut server = spawn_binary_with_ulimit(bin, 64);
    let addr = server.addr;
    let mut first = SseClient::open(addr, "/stream");
    // Fill the descriptor table: more connections than descriptors.
    let mut held = Vec::new();
    for _ in 0..100 {
        match TcpStream::connect_timeout(&addr, SHORT) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    // The server's CPU over two seconds of exhaustion: the accept loop backs off.
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let f: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    let before = cpu(server.child.id());
    std::thread::sleep(Duration::from_secs(2));
    let ticks = cpu(server.child.id()) - before;
    assert!(
        ticks < 60,
        "server used {ticks} CPU ticks in 2 s while out of descriptors"
    );
    // The open stream still flows (heartbeats every second).
    assert!(first.wait_raw(b": heartbeat\n\n", Duration::from_secs(3)));
    assert!(
        server.stderr_has("accept failed", SHORT),
        "no accept error logged"
    );
    // Clients leave: new connections are served again.
    drop(held);
    let ok = wait_for(MAX_WAIT, || {
        TcpStream::connect_timeout(&addr, SHORT)
            .ok()
            .map(|mut s| {
                let _ = s.set_read_timeout(Some(SHORT));
                let _ = s.write_all(&get("/health"));
                let mut b = [0u8; 12];
                s.read_exact(&mut b).is_ok() && &b == b"HTTP/1.1 200"
            })
            .unwrap_or(false)
    });
    assert!(ok.is_ok(), "the server did not recover");
    server.signal("TERM");
    assert!(server.wait_exit(MAX_WAIT).is_some_and(|s| s.success()));
}

/// The binary under `ulimit -n n`, on a free port, with heartbeats every second.
fn spawn_binary_with_ulimit(bin: &str, n: u32) -> crate::support::Binary {
    crate::support::spawn_binary_via(
        "sh",
        &[
            "-c",
            &format!(
                "ulimit -n {n} && exec {bin} --bind 127.0.0.1:0 --no-demo --heartbeat 1 --threads 1"
            ),
        ],
    )
}

/// A client that stops reading fills its socket after a few hundred KiB (the send buffer
/// is capped), not after the kernel's autotuned 4 MiB, so the server stops copying into
/// it early and evicts it through its queue. On main before the cap it took about 500
/// events of 8 KiB; the bound here is 150.
#[test]
fn a_stuck_client_fills_up_and_is_evicted_after_little_data() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--queue", "10"]);
    let mut good = SseClient::open(srv.addr, "/stream");
    good.keep_raw = false;
    let mut stuck = Client::connect(srv.addr);
    stuck.send(&get("/stream"));
    srv.wait_subscribers(2, SHORT);
    let body = "x".repeat(8 * 1024);
    let mut published = 0;
    while srv.hub.len() == 2 && published < 2000 {
        srv.publish("default", None, &body);
        published += 1;
        // Let the good reader keep up, and the writers write.
        while good.next_event(Duration::from_millis(200)).is_none() {}
    }
    assert_eq!(srv.hub.len(), 1, "the stuck client was never evicted");
    assert!(
        published < 150,
        "evicted only after {published} events of 8 KiB"
    );
    assert_eq!(srv.handle.snapshot().ended[0], 1, "counted as queue_full");
}
