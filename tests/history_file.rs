//! `--history-file`: restarts that keep the history, `kill -9` with `--fsync always`, a
//! corrupt file, unusable paths and a full disk, all with the real binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ssehub::EventId;

use crate::support::{
    Client, MAX_WAIT, SHORT, SseClient, get, publish_json, run_binary, soak_binary, spawn_binary,
};

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ssehub-it-{}-{}-{name}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("history")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// Publishes `data` with the token `t`; the id it answered.
fn publish(addr: SocketAddr, data: &str) -> String {
    let r = publish_json(addr, "t", &serde_json::json!({ "data": data }));
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["id"].as_str().expect("a string id").to_owned()
}

#[test]
fn a_restart_with_a_history_file_resumes_with_exactly_the_missed_events() {
    let dir = TempDir::new("restart");
    let path = dir.file();
    let args = [
        "--no-demo",
        "--heartbeat",
        "0",
        "--publish-token",
        "t",
        "--history-file",
        arg(&path),
    ];
    let mut first = spawn_binary(&args);
    let before: Vec<String> = (1..=3)
        .map(|i| publish(first.addr, &format!("b{i}")))
        .collect();
    first.child.kill().expect("kill");
    first.wait_exit(Duration::from_secs(5)).expect("exited");
    let second = spawn_binary(&args);
    assert!(
        second.stderr_has("3 events read", SHORT),
        "{:?}",
        second.stderr
    );
    let after: Vec<String> = (4..=5)
        .map(|i| publish(second.addr, &format!("a{i}")))
        .collect();
    // The same epoch, the offsets going on.
    let ids: Vec<EventId> = before
        .iter()
        .chain(&after)
        .map(|i| i.parse().unwrap())
        .collect();
    assert!(ids.iter().all(|i| i.epoch == ids[0].epoch), "{ids:?}");
    assert_eq!(
        ids.iter().map(|i| i.offset).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    // A client that saw the second event gets exactly what it missed, in order, once.
    let mut s = SseClient::connect(second.addr, "/stream", &[("Last-Event-ID", &before[1])]);
    assert_eq!(s.head.header("SSE-Resume"), Some("continue"));
    let got: Vec<(String, String)> = s
        .expect_events(3)
        .into_iter()
        .map(|e| (e.id, e.data))
        .collect();
    assert_eq!(
        got,
        [
            (before[2].clone(), "b3".to_owned()),
            (after[0].clone(), "a4".to_owned()),
            (after[1].clone(), "a5".to_owned())
        ]
    );
    s.assert_no_event(Duration::from_millis(100));
}

/// Posts events back to back on one keep-alive connection until it fails; the ids the
/// server answered, in order.
fn publish_until_it_fails(addr: SocketAddr, acked: &Mutex<Vec<String>>) {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, SHORT) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(MAX_WAIT));
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    for i in 0u64.. {
        let body = format!("{{\"data\":\"burst {i}\"}}");
        let req = format!(
            "POST /publish HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer t\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(req.as_bytes()).is_err() {
            return;
        }
        let mut len = None;
        let mut status = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if status.is_empty() {
                status = line.clone();
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse::<usize>().ok();
            }
        }
        let mut body = vec![0; len.unwrap_or(0)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON answer");
        acked
            .lock()
            .unwrap()
            .push(v["id"].as_str().expect("string id").to_owned());
    }
}

#[test]
fn kill_9_during_a_publish_burst_with_fsync_always_loses_no_acknowledged_event() {
    let dir = TempDir::new("kill9");
    let path = dir.file();
    let args = [
        "--no-demo",
        "--heartbeat",
        "0",
        "--publish-token",
        "t",
        "--history",
        "100000",
        "--history-bytes",
        "100000000",
        "--history-file",
        arg(&path),
        "--fsync",
        "always",
    ];
    let mut first = spawn_binary(&args);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let publishers: Vec<_> = (0..2)
        .map(|_| {
            let acked = acked.clone();
            let addr = first.addr;
            std::thread::spawn(move || publish_until_it_fails(addr, &acked))
        })
        .collect();
    let deadline = Instant::now() + MAX_WAIT;
    while acked.lock().unwrap().len() < 300 {
        assert!(Instant::now() < deadline, "the burst did not get going");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SIGKILL in the middle of the burst.
    first.child.kill().expect("kill -9");
    first.wait_exit(Duration::from_secs(5)).expect("exited");
    for p in publishers {
        p.join().expect("publisher thread");
    }
    // Two publishers: their answers interleave, so put the ids in offset order.
    let mut acked = acked.lock().unwrap().clone();
    acked.sort_by_key(|i| i.parse::<EventId>().expect("an id").offset);
    let second = spawn_binary(&args);
    let epoch = acked[0].parse::<EventId>().unwrap().epoch;
    let mut s = SseClient::connect(
        second.addr,
        "/stream",
        &[("Last-Event-ID", &format!("{epoch}-0"))],
    );
    assert_eq!(s.head.header("SSE-Resume"), Some("continue"));
    s.keep_raw = false;
    // Every acknowledged event comes back, in order, once; the offsets are dense (an
    // event written but not yet answered may come too).
    let mut replayed = Vec::new();
    let mut want = acked.iter().peekable();
    while want.peek().is_some() {
        let ev = s
            .next_event(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("replay stalled after {} events", replayed.len()));
        if want.peek() == Some(&&ev.id) {
            want.next();
        }
        replayed.push(ev.event_id());
    }
    let offsets: Vec<u64> = replayed.iter().map(|i| i.offset).collect();
    assert_eq!(offsets, (1..=replayed.len() as u64).collect::<Vec<_>>());
    assert!(replayed.iter().all(|i| i.epoch == epoch));
    // Ids continue after whatever was written.
    let stats = Client::connect(second.addr).request(&get("/stats")).json();
    let last: EventId = stats["history"]["last_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        last.offset >= acked.len() as u64,
        "{last} < {}",
        acked.len()
    );
    let next: EventId = publish(second.addr, "after").parse().unwrap();
    assert_eq!((next.epoch, next.offset), (epoch, last.offset + 1));
}

#[test]
fn a_corrupt_history_file_stops_the_start_with_one_line_naming_the_file_and_byte() {
    let dir = TempDir::new("corrupt");
    let path = dir.file();
    let args = [
        "--no-demo",
        "--publish-token",
        "t",
        "--history-file",
        arg(&path),
    ];
    let bin = spawn_binary(&args);
    for i in 1..=3 {
        publish(bin.addr, &format!("e{i}"));
    }
    drop(bin);
    let mut bytes = std::fs::read(&path).unwrap();
    // A byte inside the first record (the header is 32 bytes).
    bytes[32 + 12] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let mut all = vec!["--bind", "127.0.0.1:0"];
    all.extend_from_slice(&args);
    let out = run_binary(&all);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{:?}", out.stderr);
    assert!(out.stderr.contains(arg(&path)), "{:?}", out.stderr);
    assert!(out.stderr.contains("at byte 32"), "{:?}", out.stderr);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is left as it was"
    );
}

#[test]
fn a_second_server_on_the_same_file_stops_at_start_naming_the_holder() {
    let dir = TempDir::new("two-servers");
    let path = dir.file();
    let args = [
        "--no-demo",
        "--publish-token",
        "t",
        "--history-file",
        arg(&path),
    ];
    let mut first = spawn_binary(&args);
    publish(first.addr, "one");
    let mut all = vec!["--bind", "127.0.0.1:0"];
    all.extend_from_slice(&args);
    let before = std::fs::read(&path).unwrap();
    let out = run_binary(&all);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{:?}", out.stderr);
    assert!(out.stderr.contains(arg(&path)), "{:?}", out.stderr);
    let pid = format!("pid {}", first.child.id());
    assert!(out.stderr.contains(&pid), "{:?}", out.stderr);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file is left as it was"
    );
    // The first still serves; once it is gone, the next one starts.
    publish(first.addr, "two");
    first.child.kill().expect("kill");
    first.wait_exit(Duration::from_secs(5)).expect("exited");
    let second = spawn_binary(&args);
    assert!(
        second.stderr_has("2 events read", SHORT),
        "{:?}",
        second.stderr
    );
}

#[test]
fn an_unusable_history_path_is_one_line_at_start() {
    let dir = TempDir::new("paths");
    let missing = dir.0.join("no/such/dir/history");
    let mut paths = vec![missing, dir.0.clone()];
    // Permissions do not stop root; elsewhere a read-only directory must.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root {
        let ro = dir.0.join("read-only");
        std::fs::create_dir(&ro).unwrap();
        let _ = Command::new("chmod").args(["0500", arg(&ro)]).status();
        paths.push(ro.join("history"));
    }
    for p in paths {
        let out = run_binary(&["--bind", "127.0.0.1:0", "--history-file", arg(&p)]);
        assert_eq!(out.status.code(), Some(1), "{p:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{p:?}: {:?}", out.stderr);
        assert!(out.stderr.contains("history file"), "{:?}", out.stderr);
        assert!(out.stderr.contains(arg(&p)), "{:?}", out.stderr);
    }
    let out = run_binary(&["--fsync", "sometimes"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--fsync"), "{:?}", out.stderr);
}

/// A small tmpfs mounted for a test (root only), unmounted when dropped.
struct SmallFs(TempDir);

impl SmallFs {
    fn mount(kib: u32) -> Option<SmallFs> {
        let dir = TempDir::new("tmpfs");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k"),
                "tmpfs",
                arg(&dir.0),
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallFs(dir))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(arg(&self.0.0)).status();
    }
}

#[test]
fn a_full_disk_answers_503_and_the_server_keeps_serving() {
    let Some(fs) = SmallFs::mount(16) else {
        eprintln!("skipped: cannot mount a tmpfs here (the hub's unit tests inject the error)");
        return;
    };
    let path = fs.0.file();
    let mut bin = spawn_binary(&[
        "--no-demo",
        "--heartbeat",
        "0",
        "--publish-token",
        "t",
        "--history-file",
        arg(&path),
    ]);
    let mut s = SseClient::open(bin.addr, "/stream");
    let big = "x".repeat(1000);
    let mut ok = 0u64;
    let refused = loop {
        let r = publish_json(bin.addr, "t", &serde_json::json!({ "data": big }));
        if r.status != 200 {
            break r;
        }
        ok += 1;
        assert!(ok < 1000, "a 16 KiB file system never filled");
    };
    refused.assert_refusal(503);
    assert_eq!(refused.header("Retry-After"), Some("1"), "{refused:?}");
    let reason = refused.body_text();
    assert!(reason.contains("history file"), "{refused:?}");
    // The publisher learns why, not where the server keeps its files.
    assert!(!reason.contains(arg(&path)), "{reason:?}");
    // Everything acknowledged reached the subscriber, and nothing else.
    let mut epoch = 0;
    for i in 1..=ok {
        let ev = s.expect_event();
        assert_eq!(ev.offset(), i);
        epoch = ev.event_id().epoch;
    }
    s.assert_no_event(Duration::from_millis(100));
    // Still serving: health, a new subscriber resuming from the history, the counter.
    let health = Client::connect(bin.addr).request(&get("/health"));
    assert_eq!(health.status, 200);
    let mut late = SseClient::connect(
        bin.addr,
        "/stream",
        &[("Last-Event-ID", &format!("{epoch}-0"))],
    );
    assert_eq!(late.expect_events(ok as usize).len(), ok as usize);
    let metrics = Client::connect(bin.addr)
        .request(&get("/metrics"))
        .body_text();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("ssehub_history_file_errors_total{op=\"write\"} ")
                && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
    assert!(
        bin.stderr_has("cannot write the record", SHORT)
            && bin.stderr_has("publish refused", SHORT),
        "{:?}",
        bin.stderr
    );
    // The file still loads: the refused record left nothing behind.
    bin.child.kill().unwrap();
    bin.wait_exit(Duration::from_secs(5));
    let again = spawn_binary(&["--no-demo", "--history-file", arg(&path)]);
    assert!(
        again.stderr_has(&format!("{ok} events read"), SHORT),
        "{:?}",
        again.stderr
    );
    drop(again);
}

/// A free port on loopback (free now: the restart mode needs a fixed one).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// ssehub-soak's restart mode against the debug server: its JSON report.
fn soak_with_a_restart(dir: &TempDir, server_flags: &str) -> serde_json::Value {
    let port = free_port();
    let server = format!(
        "{} --bind 127.0.0.1:{port} --no-demo --publish-token t --heartbeat 1 --grace 1 {server_flags}",
        env!("CARGO_BIN_EXE_ssehub")
    );
    let log = dir.0.join("server.log");
    let out = Command::new(soak_binary())
        .args(["--url", &format!("http://127.0.0.1:{port}"), "--token", "t"])
        .args([
            "--clients",
            "20",
            "--reconnect",
            "2",
            "--publish-rate",
            "100",
        ])
        .args(["--duration", "6", "--progress", "0", "--threads", "1"])
        .args(["--server-cmd", &server, "--restart-after", "2"])
        .args(["--restart-signal", "kill", "--server-log", arg(&log)])
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
    assert_eq!(report["restart"]["restarts"], 1, "{:#}", report["restart"]);
    assert_eq!(report["checks"]["gaps"], 0);
    report
}

#[test]
fn the_soak_tools_restart_mode_sees_a_reset_without_a_file_and_none_with_one() {
    let dir = TempDir::new("soak-restart");
    // In memory: every steady client resumes with a reset (the restart lost its epoch).
    let r = soak_with_a_restart(&dir, "");
    let resets = r["checks"]["resets"]["other-epoch"].as_u64().unwrap();
    assert!(resets >= 20, "{:#}", r["checks"]);
    // With a history file, killed: every client continues with exactly what it missed.
    let file = dir.file();
    let r = soak_with_a_restart(&dir, &format!("--history-file {}", arg(&file)));
    let resets: u64 = r["checks"]["resets"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(resets, 0, "{:#}", r["checks"]);
    assert!(
        r["reconnect"]["checked"].as_u64().unwrap() > 0,
        "{:#}",
        r["reconnect"]
    );
}
