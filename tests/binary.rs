//! The `ssehub` binary: exit codes and messages for flags, graceful shutdown on SIGTERM
//! and SIGINT, and the `--stdin` producers.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ssehub::EventId;

use crate::support::{Client, SHORT, SseClient, get, publish_json, run_binary, spawn_binary};

fn signal_stops_gracefully(signal: &str) {
    let mut bin = spawn_binary(&[
        "--heartbeat",
        "0",
        "--grace",
        "2",
        "--min-interval-ms",
        "20",
        "--max-interval-ms",
        "40",
    ]);
    let mut a = SseClient::open(bin.addr, "/stream");
    let mut b = SseClient::open(bin.addr, "/stream");
    a.expect_event();
    b.expect_event();
    let sent = Instant::now();
    bin.signal(signal);
    for s in [&mut a, &mut b] {
        assert!(s.wait_eof(Duration::from_secs(3)), "stream still open");
    }
    let status = bin
        .wait_exit(Duration::from_secs(3))
        .expect("exited after the signal");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        sent.elapsed() < Duration::from_millis(2500),
        "took {:?}, grace is 2 s",
        sent.elapsed()
    );
    assert!(
        TcpStream::connect_timeout(&bin.addr, SHORT).is_err(),
        "still accepting"
    );
    assert!(bin.stderr_has("received", SHORT), "{:?}", bin.stderr);
}

#[test]
fn sigterm_ends_every_stream_and_exits_0_within_grace() {
    signal_stops_gracefully("TERM");
}

#[test]
fn sigint_ends_every_stream_and_exits_0_within_grace() {
    signal_stops_gracefully("INT");
}

#[test]
fn zero_queue_is_a_usage_error_with_exit_2_naming_the_flag() {
    let out = run_binary(&["--queue", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{:?}", out.stderr);
    assert!(out.stderr.contains("--queue"), "{:?}", out.stderr);
}

#[test]
fn unknown_flag_and_bad_values_are_usage_errors() {
    for args in [
        &["--frobnicate"][..],
        &["--heartbeat", "soon"],
        &["--bind", "nowhere"],
        &["--min-interval-ms", "50", "--max-interval-ms", "10"],
        &["--queue"],
    ] {
        let out = run_binary(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {:?}", out.stderr);
    }
}

#[test]
fn port_in_use_exits_1_with_one_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_binary(&["--bind", &addr]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{:?}", out.stderr);
    assert!(out.stderr.contains(&addr), "{:?}", out.stderr);
}

#[test]
fn help_exits_0_and_lists_the_flags() {
    let out = run_binary(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    for flag in [
        "--bind",
        "--queue",
        "--heartbeat",
        "--publish-token",
        "--stdin",
    ] {
        assert!(out.stdout.contains(flag), "{flag} missing from help");
    }
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
}

#[test]
fn version_exits_0_and_prints_the_version() {
    let out = run_binary(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        out.stdout.trim(),
        format!("ssehub {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn stdin_lines_become_events_and_end_of_input_keeps_serving() {
    let mut bin = spawn_binary(&["--stdin", "--no-demo", "--heartbeat", "0"]);
    let mut s = SseClient::open(bin.addr, "/stream");
    let mut input = bin.child.stdin.take().expect("stdin pipe");
    input.write_all(b"first line\nsecond: line\r\n").unwrap();
    input.flush().unwrap();
    let got: Vec<String> = s.expect_events(2).into_iter().map(|e| e.data).collect();
    assert_eq!(got, ["first line", "second: line"]);
    drop(input);
    assert!(
        bin.stderr_has("end of input", SHORT),
        "{:?}",
        bin.stderr.lock().unwrap()
    );
    let r = Client::connect(bin.addr).request(&get("/health"));
    assert_eq!(r.status, 200);
    assert!(bin.child.try_wait().unwrap().is_none(), "server exited");
    // The stream is still open, too.
    s.assert_no_event(Duration::from_millis(50));
    assert!(!s.eof);
}

#[test]
fn stdin_json_lines_carry_event_and_topic() {
    let mut bin = spawn_binary(&["--stdin-json", "--no-demo", "--heartbeat", "0"]);
    let mut t = SseClient::open(bin.addr, "/stream?topic=t");
    let mut input = bin.child.stdin.take().expect("stdin pipe");
    input
        .write_all(
            b"{\"data\":\"skip me\",\"topic\":\"other\"}\nnot json\n\
              {\"data\":{\"x\":1},\"event\":\"e\",\"topic\":\"t\"}\n",
        )
        .unwrap();
    input.flush().unwrap();
    let ev = t.expect_event();
    assert_eq!(ev.event, "e");
    assert_eq!(ev.offset(), 2, "the bad line must not take an id");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ev.data).unwrap(),
        serde_json::json!({"x": 1})
    );
    assert!(bin.stderr_has("skipped", SHORT));
}

#[test]
fn shutdown_with_a_stuck_subscriber_ends_within_the_grace_period() {
    let mut bin = spawn_binary(&[
        "--no-demo",
        "--heartbeat",
        "0",
        "--grace",
        "1",
        "--queue",
        "1000",
        "--publish-token",
        "k",
    ]);
    // Never reads: whatever is queued for it can never be flushed.
    let mut stuck = Client::connect(bin.addr);
    stuck.send(&get("/stream"));
    let body = vec![b'z'; 60_000];
    let mut publisher = Client::connect(bin.addr);
    for _ in 0..120 {
        let r = publisher.request(&crate::support::post_publish(
            "",
            Some("k"),
            "text/plain",
            &body,
        ));
        assert_eq!(r.status, 200);
    }
    let sent = Instant::now();
    bin.signal("TERM");
    let status = bin.wait_exit(Duration::from_secs(4)).expect("exited");
    assert!(status.success(), "{status:?}");
    assert!(
        sent.elapsed() < Duration::from_millis(2500),
        "took {:?} with a 1 s grace",
        sent.elapsed()
    );
    assert!(stuck.drain_to_end(Duration::from_secs(5)));
}

#[test]
fn environment_twin_of_a_flag_is_validated_too() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .env("SSEHUB_QUEUE", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ssehub");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.contains("queue"), "{err:?}");
}

#[test]
fn config_file_sets_the_server_below_its_flags() {
    let dir = std::env::temp_dir().join(format!("ssehub-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ssehub.env");
    // systemd's EnvironmentFile= format. The address is the flag's (flags win); the
    // queue and the history are the file's.
    std::fs::write(
        &file,
        "# ssehub\n; for the test\n\nSSEHUB_BIND=127.0.0.1:9\nSSEHUB_QUEUE=7\n\
         SSEHUB_HISTORY=\"3\"\nSSEHUB_NO_DEMO='yes'\nSSEHUB_HEARTBEAT=0\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let bin = spawn_binary(&["--config", path]);
    let stats = Client::connect(bin.addr).request(&get("/stats")).json();
    assert_eq!(stats["config"]["queue"], 7, "{stats}");
    assert_eq!(stats["config"]["history"], 3, "{stats}");
    assert_ne!(bin.addr.port(), 9);
    drop(bin);

    // A name no flag has: exit 2, one line naming the file and the line.
    std::fs::write(&file, "SSEHUB_QUEUE=7\nSSEHUB_QUEUEE=8\n").unwrap();
    let out = run_binary(&["--config", path]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{:?}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{path} line 2: unknown setting SSEHUB_QUEUEE")),
        "{:?}",
        out.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // A file that is not there: exit 2, one line naming it.
    let out = run_binary(&["--config", path]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{:?}", out.stderr);
    assert!(
        out.stderr.contains(&format!("cannot read '{path}'")),
        "{:?}",
        out.stderr
    );
}

#[test]
fn overlong_stdin_line_is_skipped_and_the_next_one_published() {
    let mut bin = spawn_binary(&[
        "--stdin",
        "--no-demo",
        "--heartbeat",
        "0",
        "--max-body",
        "64",
    ]);
    let mut s = SseClient::open(bin.addr, "/stream");
    let mut input = bin.child.stdin.take().expect("stdin pipe");
    let mut lines = "L".repeat(5000).into_bytes();
    lines.extend_from_slice(b"\nshort\n");
    input.write_all(&lines).unwrap();
    input.flush().unwrap();
    let ev = s.expect_event();
    assert_eq!((ev.offset(), ev.data.as_str()), (1, "short"));
    assert!(bin.stderr_has("exceeds", SHORT));
}

/// Publishes `data` to the server at `addr` with the token `t`; the id it answered.
fn publish_data(addr: std::net::SocketAddr, data: &str) -> String {
    let r = publish_json(addr, "t", &serde_json::json!({ "data": data }));
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["id"]
        .as_str()
        .expect("the id is a string")
        .to_owned()
}

#[test]
fn restart_with_the_in_memory_history_resets_with_other_epoch_then_sends_what_is_new() {
    let args = ["--no-demo", "--heartbeat", "0", "--publish-token", "t"];
    let mut first = spawn_binary(&args);
    let before: Vec<String> = (1..=3)
        .map(|i| publish_data(first.addr, &format!("before {i}")))
        .collect();
    // Killed, as a crash would: nothing survives but the clients' ids.
    first.child.kill().expect("kill the first server");
    first
        .wait_exit(Duration::from_secs(5))
        .expect("the first server exited");
    let second = spawn_binary(&args);
    let after: Vec<String> = (1..=2)
        .map(|i| publish_data(second.addr, &format!("after {i}")))
        .collect();

    let mut s = SseClient::connect(second.addr, "/stream", &[("Last-Event-ID", &before[2])]);
    assert_eq!(s.head.header("SSE-Resume"), Some("reset"));
    let reset = s.expect_event();
    assert_eq!(reset.event, "reset", "{reset:?}");
    assert_eq!(
        reset.json(),
        serde_json::json!({"reason": "other-epoch", "last_event_id": before[2],
            "replay_from": after[0], "first_retained": after[0], "last": after[1]})
    );
    // Exactly the events published since the restart, then live ones.
    let replayed = s.expect_events(2);
    let got: Vec<(&str, &str)> = replayed
        .iter()
        .map(|e| (e.id.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(
        got,
        [(&*after[0], "after 1"), (&*after[1], "after 2")],
        "{replayed:?}"
    );
    let live = publish_data(second.addr, "live");
    let ev = s.expect_event();
    assert_eq!((ev.id.as_str(), ev.data.as_str()), (&*live, "live"));
    s.assert_no_event(Duration::from_millis(100));

    // No id was issued twice across the restart; offsets are dense in each epoch and
    // the second epoch is later.
    let mut all: Vec<&String> = before.iter().chain(&after).chain([&live]).collect();
    let ids: Vec<EventId> = all.iter().map(|i| i.parse().expect("an id")).collect();
    let offsets: Vec<u64> = ids.iter().map(|i| i.offset).collect();
    assert_eq!(offsets, [1, 2, 3, 1, 2, 3]);
    assert!(ids[..3].iter().all(|i| i.epoch == ids[0].epoch));
    assert!(ids[3..].iter().all(|i| i.epoch == ids[3].epoch));
    assert!(ids[3].epoch > ids[0].epoch, "{ids:?}");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 6, "an id was issued twice: {all:?}");
}
