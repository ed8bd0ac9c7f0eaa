//! Capacity (#25): idle streams rest without a task and still get every event, notice
//! a hang-up and end at shutdown; the A/B knobs for a busy machine (`--threads 0`,
//! `--batch-window 0`) serve the same; and the capacity plan's tools at the scale that
//! fits here: the soak tool spreads its subscribers over several source addresses in
//! 127.0.0.0/8 and several processes from one command, as a machine driving a million
//! would.

use std::process::Command;

use crate::support::{
    Client, MAX_WAIT, SseClient, publish_json, soak_binary, spawn_binary, spawn_binary_via,
    wait_for,
};

/// Subscribers connected now, from `/health`.
pub(crate) fn clients(addr: std::net::SocketAddr) -> u64 {
    let r = Client::connect(addr).request(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    r.json()["clients"].as_u64().expect("a client count")
}

/// Streams resting now, from `/stats`.
pub(crate) fn resting(addr: std::net::SocketAddr) -> u64 {
    let r = Client::connect(addr).request(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n");
    r.json()["streams_resting"]
        .as_u64()
        .expect("streams_resting")
}

/// `streams` subscribers (all resting while idle, when `rest`) get `events` events in
/// order; one hangs up and leaves the hub; SIGTERM ends the others' streams and the
/// server exits 0.
fn serves_and_ends(args: &[&str], streams: usize, events: usize, rest: bool) {
    let mut all = vec!["--bind", "127.0.0.1:0", "--no-demo", "--heartbeat", "0"];
    all.extend_from_slice(&["--publish-token", "t", "--grace", "3"]);
    all.extend_from_slice(args);
    let mut server = spawn_binary_via(env!("CARGO_BIN_EXE_ssehub"), &all);
    let mut subs: Vec<SseClient> = (0..streams)
        .map(|_| SseClient::open(server.addr, "/stream"))
        .collect();
    // Idle: every stream rests (or none does).
    let want = if rest { streams as u64 } else { 0 };
    assert!(
        wait_for(MAX_WAIT, || resting(server.addr) == want).is_ok(),
        "{} streams resting, want {want}",
        resting(server.addr)
    );
    for i in 0..events {
        let r = publish_json(
            server.addr,
            "t",
            &serde_json::json!({ "data": format!("e{i}") }),
        );
        assert_eq!(r.status, 200, "{r:?}");
    }
    for sub in &mut subs {
        let got: Vec<String> = sub
            .expect_events(events)
            .into_iter()
            .map(|e| e.data)
            .collect();
        let want: Vec<String> = (0..events).map(|i| format!("e{i}")).collect();
        assert_eq!(got, want);
    }
    // Direct writes reach resting streams without waking them; so they rest again.
    assert!(wait_for(MAX_WAIT, || resting(server.addr) == want).is_ok());
    // A resting stream whose client hangs up leaves at once (no heartbeat runs).
    drop(subs.pop());
    let left = (streams - 1) as u64;
    assert!(
        wait_for(MAX_WAIT, || clients(server.addr) == left).is_ok(),
        "still {} clients, want {left}",
        clients(server.addr)
    );
    server.signal("TERM");
    for sub in &mut subs {
        assert!(sub.wait_eof(MAX_WAIT), "a stream did not end at shutdown");
    }
    let status = server.wait_exit(MAX_WAIT).expect("the server exits");
    assert!(status.success(), "{status}");
}

#[test]
fn resting_streams_get_every_event_notice_a_hang_up_and_end_at_shutdown() {
    serves_and_ends(&[], 40, 5, true);
}

#[test]
fn streams_that_keep_their_task_serve_the_same() {
    serves_and_ends(&["--no-rest"], 10, 5, false);
}

#[test]
fn one_thread_and_no_batching_serve_the_same() {
    serves_and_ends(&["--threads", "0", "--batch-window", "0"], 10, 5, true);
}

#[test]
fn the_soak_tool_spreads_subscribers_over_source_addresses_and_processes() {
    let server = spawn_binary(&["--no-demo", "--heartbeat", "0"]);
    let out = Command::new(soak_binary())
        .args(["--url", &format!("http://{}", server.addr), "--idle"])
        .args(["--clients", "31", "--bind-sources", "3", "--processes", "2"])
        .args(["--duration", "3", "--progress", "0", "--threads", "1"])
        .output()
        .expect("run ssehub-soak");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        out.status.success(),
        "{}\n{:#}",
        String::from_utf8_lossy(&out.stderr),
        report["failed_checks"]
    );
    // This process keeps the remainder; the other one's report is inside this one's.
    assert_eq!(
        report["clients"]["connected"], 16,
        "{:#}",
        report["clients"]
    );
    let others = report["processes"].as_array().expect("the other reports");
    assert_eq!(others.len(), 1);
    assert_eq!(others[0]["clients"]["connected"], 15);
    assert_eq!(others[0]["ok"], true);
    // The server saw every subscriber come from the three sources, none from 127.0.0.1.
    let lines = server.stderr.lock().unwrap().clone();
    let peers: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split(" connected from ").nth(1))
        .collect();
    assert_eq!(peers.len(), 31, "{lines:#?}");
    for source in ["127.1.0.1:", "127.1.0.2:", "127.1.0.3:"] {
        let n = peers.iter().filter(|p| p.starts_with(source)).count();
        assert!((10..=11).contains(&n), "{n} from {source}: {peers:?}");
    }
}

/// `memory_releases` from `/stats`.
fn releases(addr: std::net::SocketAddr) -> u64 {
    let r = Client::connect(addr).request(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n");
    r.json()["memory_releases"]
        .as_u64()
        .expect("memory_releases")
}

/// `n` connections, one `/health` request each, one after the other.
fn churn(addr: std::net::SocketAddr, n: usize) {
    for _ in 0..n {
        let r = Client::connect(addr).request(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200);
    }
}

#[test]
fn a_burst_of_connections_gives_its_heap_back_once_it_is_over() {
    // The binary hands glibc's `malloc_trim` to the server (`server/release.rs`): it is
    // called once 1,024 connections came and went and then one second was quiet.
    let server = spawn_binary(&["--bind", "127.0.0.1:0", "--no-demo", "--heartbeat", "0"]);
    let quiet = ssehub::server::release::CHECK_EVERY * 5 / 2;
    churn(server.addr, 200);
    std::thread::sleep(quiet);
    assert_eq!(releases(server.addr), 0, "200 connections are not a burst");
    churn(server.addr, 1000);
    // Each look at /stats is a connection too: a few a second, so the server can
    // see a quiet second (`wait_for` looks far more often).
    let deadline = std::time::Instant::now() + MAX_WAIT;
    while releases(server.addr) == 0 {
        assert!(std::time::Instant::now() < deadline, "never released");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    std::thread::sleep(quiet);
    assert_eq!(releases(server.addr), 1, "one release per burst");
}
