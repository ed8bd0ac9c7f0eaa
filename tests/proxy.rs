//! ssehub behind real reverse proxies, from the recipes it ships (`deploy/nginx.conf`,
//! `deploy/Caddyfile`, explained in `docs/deploy.md`), rendered with each test's ports:
//! through Debian's nginx and Caddy an event arrives within 100 ms of its publish, an
//! idle stream outlives the proxy's idle timeout on heartbeats alone, and `Last-Event-ID`
//! passes through; through Caddy over HTTP/2, twelve Chromium tabs on one origin all get
//! every event. Then the soak tool's proxy doctor (`ssehub-soak doctor`) against nginx
//! streaming, buffering, and cutting idle streams.
//!
//! Each test starts its own ssehub (the binary), its own proxy (as the current user, in a
//! temporary directory, on loopback ports) and stops both.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::proxy::{
    Proxy, ProxyStream, caddyfile, free_port, nginx_site, publish_through, start_caddy, start_nginx,
};
use crate::support::{Binary, soak_binary, spawn_binary};

const TOKEN: &str = "proxy-test-token";

/// ssehub with publishing on and heartbeats every `heartbeat` seconds (0: off).
fn hub(heartbeat: &str) -> Binary {
    spawn_binary(&[
        "--no-demo",
        "--publish-token",
        TOKEN,
        "--heartbeat",
        heartbeat,
    ])
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Nginx,
    Caddy,
}

/// The proxy of `kind` in front of `hub`, its idle timeout (toward ssehub) set to
/// `timeout` seconds.
fn proxy(kind: Kind, hub: SocketAddr, timeout: u32) -> Proxy {
    let port = free_port();
    match kind {
        Kind::Nginx => {
            let t = format!("proxy_read_timeout {timeout}s;");
            start_nginx(
                &nginx_site(hub, port, &[("proxy_read_timeout 60s;", &t)]),
                port,
            )
        }
        Kind::Caddy => {
            let tls_port = free_port();
            let t = format!("read_timeout {timeout}s");
            let config = caddyfile(hub, port, tls_port, &[("read_timeout 60s", &t)]);
            start_caddy(&config, port, tls_port)
        }
    }
}

/// Publishes `data` on `topic` through `addr` (the proxy); returns the event's id.
fn publish(addr: SocketAddr, topic: &str, data: &str) -> String {
    let (status, answer) = publish_through(addr, TOKEN, &json!({"topic": topic, "data": data}));
    assert_eq!(status, 200, "publish through {addr}: {answer}");
    answer["id"].as_str().expect("an id").to_owned()
}

/// (a) Each of five events, published through the proxy, arrives through it within
/// 100 ms of the publish request.
fn an_event_arrives_within_100_ms(kind: Kind) {
    let hub = hub("15");
    let proxy = proxy(kind, hub.addr, 60);
    let mut s = ProxyStream::open(proxy.addr, "/stream?topic=fast", &[]);
    for n in 0..5 {
        let data = format!("fast {n}");
        let sent = Instant::now();
        publish(proxy.addr, "fast", &data);
        let ev = s.expect_event();
        let took = sent.elapsed();
        assert_eq!(ev.data, data);
        assert!(
            took < Duration::from_millis(100),
            "{kind:?}: event {n} took {took:?}"
        );
    }
}

/// (b) With the proxy's idle timeout at 2 s and a heartbeat every second, a stream with
/// no event for 5 s stays open, and the next event arrives.
fn an_idle_stream_outlives_the_idle_timeout(kind: Kind) {
    let hub = hub("1");
    let proxy = proxy(kind, hub.addr, 2);
    let mut s = ProxyStream::open(proxy.addr, "/stream?topic=idle", &[]);
    let heartbeats = s.stay_quiet(Duration::from_secs(5));
    assert!(heartbeats >= 4, "{kind:?}: {heartbeats} heartbeats in 5 s");
    publish(proxy.addr, "idle", "still here");
    assert_eq!(s.expect_event().data, "still here");
}

/// (c) A client that resumes through the proxy with `Last-Event-ID` gets exactly the
/// events it missed, then the live ones.
fn last_event_id_passes_through(kind: Kind) {
    let hub = hub("15");
    let proxy = proxy(kind, hub.addr, 60);
    let mut s = ProxyStream::open(proxy.addr, "/stream?topic=resume", &[]);
    publish(proxy.addr, "resume", "seen");
    let seen = s.expect_event();
    assert_eq!(seen.data, "seen");
    drop(s);
    let missed: Vec<String> = (1..=3).map(|n| format!("missed {n}")).collect();
    let ids: Vec<String> = missed
        .iter()
        .map(|d| publish(proxy.addr, "resume", d))
        .collect();
    let mut s = ProxyStream::open(
        proxy.addr,
        "/stream?topic=resume",
        &[("Last-Event-ID", &seen.id)],
    );
    for (data, id) in missed.iter().zip(&ids) {
        let ev = s.expect_event();
        assert_eq!((&ev.data, &ev.id), (data, id), "{kind:?}");
    }
    publish(proxy.addr, "resume", "live");
    assert_eq!(
        s.expect_event().data,
        "live",
        "{kind:?}: a replayed event twice?"
    );
}

#[test]
fn nginx_passes_an_event_within_100_ms() {
    an_event_arrives_within_100_ms(Kind::Nginx);
}

#[test]
fn nginx_keeps_an_idle_stream_open_on_heartbeats() {
    an_idle_stream_outlives_the_idle_timeout(Kind::Nginx);
}

#[test]
fn nginx_passes_last_event_id_through() {
    last_event_id_passes_through(Kind::Nginx);
}

#[test]
fn caddy_passes_an_event_within_100_ms() {
    an_event_arrives_within_100_ms(Kind::Caddy);
}

#[test]
fn caddy_keeps_an_idle_stream_open_on_heartbeats() {
    an_idle_stream_outlives_the_idle_timeout(Kind::Caddy);
}

#[test]
fn caddy_passes_last_event_id_through() {
    last_event_id_passes_through(Kind::Caddy);
}

/// Runs `program` with `args` and `env`, killing it after `cap`; its exit code, stdout,
/// stderr.
fn run_capped(
    program: &str,
    args: &[&str],
    env: &[(&str, String)],
    cap: Duration,
) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("run {program}: {e}"));
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let until = Instant::now() + cap;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
            if std::fs::metadata(format!("/proc/{pid}")).is_err() {
                return;
            }
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().expect("wait");
    let _ = watchdog.join();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn caddy_over_http2_serves_twelve_chromium_tabs_on_one_origin() {
    let hub = hub("15");
    let proxy = proxy(Kind::Caddy, hub.addr, 60);
    let chromium = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let (code, out, err) = run_capped(
        "node",
        &["tests/browser/proxy-tabs.mjs"],
        &[
            (
                "PROXY_ORIGIN",
                format!("https://127.0.0.1:{}", proxy.tls_port),
            ),
            ("PUBLISH_URL", format!("http://{}/publish", hub.addr)),
            ("PUBLISH_TOKEN", TOKEN.to_owned()),
            ("CHROMIUM_BIN", chromium),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(
        code,
        Some(0),
        "proxy-tabs.mjs failed\nstdout:\n{out}\nstderr:\n{err}\ncaddy log:\n{}",
        proxy.log()
    );
    assert!(out.contains("protocols: h2\n"), "{out}");
    assert!(
        out.contains("received: 5 events in each of 12 tabs"),
        "{out}"
    );
}

/// Runs `ssehub-soak doctor` for `duration` seconds through nginx (`deploy/nginx.conf`
/// with `edits`) in front of ssehub with heartbeats every `heartbeat` seconds; its exit
/// code, JSON report and stderr.
fn doctor_through_nginx(
    edits: &[(&str, &str)],
    heartbeat: &str,
    duration: &str,
) -> (Option<i32>, serde_json::Value, String) {
    let soak = soak_binary();
    let hub = hub(heartbeat);
    let port = free_port();
    let nginx = start_nginx(&nginx_site(hub.addr, port, edits), port);
    let started = Instant::now();
    let (code, out, err) = run_capped(
        soak.to_str().expect("a UTF-8 path"),
        &[
            "doctor",
            &format!("http://127.0.0.1:{port}/stream?topic=doctor"),
            "--publish-url",
            &format!("http://127.0.0.1:{port}/publish"),
            "--token",
            TOKEN,
            "--duration",
            duration,
        ],
        &[],
        Duration::from_secs(30),
    );
    let report = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); exit {code:?}\nstdout:\n{out}\nstderr:\n{err}\nnginx:\n{}",
            nginx.log()
        )
    });
    let cap: f64 = duration.parse().expect("seconds");
    assert!(
        started.elapsed() < Duration::from_secs_f64(cap + 2.0),
        "the doctor overran --duration {duration}: {:?}",
        started.elapsed()
    );
    (code, report, err)
}

#[test]
fn doctor_says_streaming_through_nginx_without_buffering() {
    let (code, report, err) = doctor_through_nginx(&[], "15", "4");
    assert_eq!(report["verdict"], "streaming", "{report:#}\n{err}");
    assert_eq!(code, Some(0), "{err}");
    assert!(report["published"].as_u64().unwrap() >= 10, "{report:#}");
    assert_eq!(report["received"], report["published"], "{report:#}");
    assert!(report["max_burst"].as_u64().unwrap() < 4, "{report:#}");
    assert!(
        report["first_byte_ms"].as_f64().unwrap() < 1000.0,
        "{report:#}"
    );
    // nginx's own headers are named; nothing that breaks streaming was added.
    let added = report["added_headers"].to_string();
    assert!(added.contains("Server: nginx"), "{added}");
    assert!(added.contains("Transfer-Encoding: chunked"), "{added}");
    assert_eq!(report["warnings"], json!([]), "{report:#}");
    assert!(err.contains("doctor: verdict: streaming"), "{err}");
}

#[test]
fn doctor_says_buffered_when_nginx_buffers() {
    // `proxy_buffering on` alone still streams: nginx obeys ssehub's
    // `X-Accel-Buffering: no`. Ignoring that header makes it buffer.
    let (code, report, err) = doctor_through_nginx(
        &[(
            "proxy_buffering off;",
            "proxy_buffering on;\n        proxy_ignore_headers X-Accel-Buffering;",
        )],
        "15",
        "6",
    );
    assert_eq!(report["verdict"], "buffered", "{report:#}\n{err}");
    assert_eq!(code, Some(1), "{err}");
    let held_back =
        report["missing"].as_u64().unwrap() > 0 || report["max_burst"].as_u64().unwrap() >= 4;
    assert!(held_back, "{report:#}");
}

#[test]
fn doctor_says_cut_after_5_s_when_nginx_times_out_without_heartbeats() {
    let (code, report, err) = doctor_through_nginx(
        &[("proxy_read_timeout 60s;", "proxy_read_timeout 5s;")],
        "0",
        "12",
    );
    assert_eq!(report["verdict"], "cut after 5 ± 1 s", "{report:#}\n{err}");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(report["cut"], true);
    assert_eq!(report["received"], report["published"], "{report:#}");
}
