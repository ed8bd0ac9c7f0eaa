//! Real clients against the in-process server: `curl -N` and `nc` with a typed request.

use std::process::{Command, Stdio};

use crate::support::{SseParser, start};

fn demo_server() -> crate::support::TestServer {
    start(&[
        "--min-interval-ms",
        "20",
        "--max-interval-ms",
        "40",
        "--heartbeat",
        "0.2",
    ])
}

#[test]
fn curl_no_buffer_receives_events() {
    let srv = demo_server();
    let out = Command::new("curl")
        .args(["-sN", "--max-time", "1.5"])
        .arg(format!("http://{}/stream", srv.addr))
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    // 28: the --max-time ended the endless stream, as intended.
    assert_eq!(out.status.code(), Some(28), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("retry: "), "{text}");
    assert!(text.contains("event: tick\n"), "{text}");
    let events = SseParser::new().feed(&out.stdout);
    assert!(events.len() >= 5, "only {} events: {text}", events.len());
    assert!(events.iter().all(|e| e.event == "tick"));
}

/// Runs `printf REQUEST | NC_COMMAND 127.0.0.1 PORT` through `sh`; returns stdout.
fn nc(nc_command: &str, port: u16) -> Vec<u8> {
    let script = format!(
        "printf 'GET /stream HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' | {nc_command} 127.0.0.1 {port}"
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("run nc")
        .stdout
}

fn assert_head_and_events(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("Content-Type: text/event-stream\r\n"),
        "{text}"
    );
    let body = &raw[crate::support::find(raw, b"\r\n\r\n").expect("end of head") + 4..];
    let events = SseParser::new().feed(body);
    assert!(events.len() >= 3, "too few events: {text}");
    assert!(events.iter().all(|e| e.event == "tick"));
}

#[test]
fn nc_with_a_typed_request_gets_the_head_and_events() {
    let srv = demo_server();
    assert_head_and_events(&nc("timeout 1.5 nc", srv.addr.port()));
}

/// `nc -q` shuts its sending side down at the end of its input (a TCP half-close) and
/// goes on reading: the stream must go on too.
#[test]
fn nc_that_half_closes_after_its_request_still_gets_events() {
    let srv = demo_server();
    assert_head_and_events(&nc("timeout 3 nc -q 1", srv.addr.port()));
}
