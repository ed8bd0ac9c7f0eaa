//! Malformed, oversized and hostile requests: each gets its precise status with a one-line
//! body and `Connection: close`, the connection closes, and the server goes on serving.
//! Attack tests carry a one-line comment naming the attack.

use std::time::{Duration, Instant};

use crate::support::{
    Client, SHORT, SseClient, TestServer, assert_healthy, get, post_publish, start,
};

/// Sends `request` to a fresh server started with `args` and checks the refusal contract.
fn refused_on(srv: &TestServer, request: &[u8], status: u16) -> crate::support::Response {
    let mut c = Client::connect(srv.addr);
    // The server may answer and close before it has read everything.
    let _ = c.try_send(request);
    let r = c.read_response();
    r.assert_refusal(status);
    c.assert_closed();
    assert_healthy(srv.addr);
    r
}

fn refused(request: &[u8], status: u16) -> crate::support::Response {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    refused_on(&srv, request, status)
}

/// One `#[test]` per case: name, request bytes, expected status.
macro_rules! refused {
    ($($name:ident: $req:expr => $status:expr;)*) => {
        $(
            #[test]
            fn $name() {
                refused(&$req, $status);
            }
        )*
    };
}

fn with_headers(n: usize, value_len: usize) -> Vec<u8> {
    let mut req = String::from("GET /health HTTP/1.1\r\nHost: test\r\n");
    for i in 0..n {
        req.push_str(&format!("X-H{i}: {}\r\n", "v".repeat(value_len)));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

refused! {
    garbage_request_line_is_400: *b"this is not http\r\n\r\n" => 400;
    tls_client_hello_is_400: *b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n" => 400;
    request_line_over_8k_is_414:
        format!("GET /{} HTTP/1.1\r\nHost: test\r\n\r\n", "a".repeat(9000)).into_bytes() => 414;
    hundred_headers_get_431: with_headers(100, 4) => 431;
    head_over_8k_in_headers_gets_431: with_headers(3, 3000) => 431;
    endless_header_line_gets_431: with_headers(1, 20_000) => 431;
    bare_lf_line_ends_are_400: *b"GET /health HTTP/1.1\nHost: test\n\n" => 400;
    obs_fold_is_400: *b"GET /health HTTP/1.1\r\nHost: test\r\nX-A: a\r\n b\r\n\r\n" => 400;
    nul_in_a_header_value_is_400: *b"GET /health HTTP/1.1\r\nHost: test\r\nX-A: a\0b\r\n\r\n" => 400;
    http2_version_is_505: *b"GET /health HTTP/2.0\r\nHost: test\r\n\r\n" => 505;
    http11_without_host_is_400: *b"GET /health HTTP/1.1\r\nAccept: */*\r\n\r\n" => 400;
    two_host_headers_are_400: *b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" => 400;
    content_length_with_transfer_encoding_is_400:
        *b"POST /publish HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\
           Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" => 400;
    differing_content_lengths_are_400:
        *b"POST /publish HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\
           Content-Length: 6\r\n\r\nhello!" => 400;
    transfer_encoding_gzip_is_400:
        *b"POST /publish HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\n" => 400;
    unknown_method_is_501: *b"FOO / HTTP/1.1\r\nHost: test\r\n\r\n" => 501;
    unknown_path_is_404: *b"GET /nope HTTP/1.1\r\nHost: test\r\n\r\n" => 404;
    unsupported_expectation_is_417:
        *b"POST /publish HTTP/1.1\r\nHost: test\r\nExpect: coffee\r\nContent-Length: 1\r\n\r\nx" => 417;
    body_on_get_stream_is_400:
        *b"GET /stream HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc" => 400;
}

#[test]
fn delete_on_stream_is_405_with_allow() {
    let r = refused(b"DELETE /stream HTTP/1.1\r\nHost: test\r\n\r\n", 405);
    let allow = r.header("Allow").expect("Allow header");
    assert!(allow.contains("GET"), "{allow}");
    assert!(!allow.contains("DELETE"), "{allow}");
}

#[test]
fn stalled_half_head_gets_408_and_close() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--header-timeout", "0.5"]);
    let mut c = Client::connect(srv.addr);
    c.send(b"GET /health HTTP/1.1\r\nHo");
    let sent = Instant::now();
    let r = c.read_response();
    assert!(
        sent.elapsed() < Duration::from_millis(1500),
        "{:?}",
        sent.elapsed()
    );
    r.assert_refusal(408);
    c.assert_closed();
    assert_healthy(srv.addr);
}

#[test]
fn idle_connection_is_closed_after_the_header_timeout() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--header-timeout", "0.5"]);
    let mut c = Client::connect(srv.addr);
    assert!(
        c.read_to_end(Instant::now() + SHORT),
        "idle connection kept open"
    );
}

// Attack: CRLF flood before the request line to hold a connection without a head.
#[test]
fn leading_crlf_flood_counts_against_the_head_limit() {
    refused(&b"\r\n".repeat(6000), 431);
}

// Attack: response splitting through an encoded CRLF echoed in an error body.
#[test]
fn encoded_crlf_in_the_path_cannot_split_the_error_body() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let r = Client::connect(srv.addr)
        .request(b"GET /a%0D%0ASet-Cookie:%20x=1 HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(r.status, 404);
    assert!(r.header("Set-Cookie").is_none());
    let body = r.body_text();
    assert_eq!(body.matches('\n').count(), 1, "{body:?}");
    assert!(!body.contains('\r'), "{body:?}");
}

// Attack: SSE field injection through the event name, by JSON or by query.
#[test]
fn header_injection_via_event_name_is_refused() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--publish-token", "k"]);
    let mut s = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(1, SHORT);
    let json_body = br#"{"data":"x","event":"tick\n\nid: 999\ndata: forged"}"#;
    let r = Client::connect(srv.addr).request(&post_publish(
        "",
        Some("k"),
        "application/json",
        json_body,
    ));
    assert_eq!(r.status, 400, "{r:?}");
    let r = Client::connect(srv.addr).request(&post_publish(
        "?event=tick%0D%0Adata:%20forged",
        Some("k"),
        "text/plain",
        b"x",
    ));
    assert_eq!(r.status, 400, "{r:?}");
    s.assert_no_event(Duration::from_millis(100));
    assert!(!s.raw.windows(6).any(|w| w == b"forged"));
    assert_eq!(srv.hub.last_id(), None);
}

// Attack: slowloris, many heads trickling in one byte at a time to tie the server up.
#[test]
fn slowloris_heads_do_not_delay_a_normal_subscriber() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let addr = srv.addr;
    let trickle = std::thread::spawn(move || {
        let mut clients: Vec<Client> = (0..10).map(|_| Client::connect(addr)).collect();
        let head = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: yes\r\n";
        for byte in head.iter().take(12) {
            for c in &mut clients {
                let _ = c.try_send(&[*byte]);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        clients
    });
    std::thread::sleep(Duration::from_millis(150));
    let started = Instant::now();
    let mut s = SseClient::open(srv.addr, "/stream");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    for i in 0..5 {
        let sent = Instant::now();
        srv.publish("default", None, &format!("e{i}"));
        assert_eq!(s.expect_event().data, format!("e{i}"));
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "{:?}",
            sent.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_healthy(srv.addr);
    let clients = trickle.join().unwrap();
    assert_eq!(clients.len(), 10);
}

// Attack: a subscriber that floods its request side with garbage after GET /stream.
#[test]
fn garbage_after_a_stream_request_does_not_disturb_others() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut good = SseClient::open(srv.addr, "/stream");
    let mut noisy = Client::connect(srv.addr);
    noisy.send(&get("/stream"));
    srv.wait_subscribers(2, SHORT);
    let flood = std::thread::spawn(move || {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut chunk = vec![0u8; 64 * 1024];
        for _ in 0..16 {
            rng.fill(&mut chunk);
            if noisy.try_send(&chunk).is_err() {
                return (noisy, false);
            }
        }
        (noisy, true)
    });
    for i in 0..50 {
        srv.publish("default", None, &format!("g{i}"));
    }
    let got: Vec<String> = good.expect_events(50).into_iter().map(|e| e.data).collect();
    assert_eq!(got, (0..50).map(|i| format!("g{i}")).collect::<Vec<_>>());
    let (mut noisy, _) = flood.join().unwrap();
    // The noisy client gets its stream head, then its stream ends: past the read
    // allowance, a client that keeps sending on an open stream is cut off (and counted),
    // so it can never hold the writer thread the others share.
    let head = noisy.read_until(b"\r\n\r\n", SHORT);
    assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(noisy.drain_to_end(SHORT), "the noisy stream was not ended");
    crate::support::wait_for(SHORT, || srv.handle.snapshot().ended[4] == 1)
        .expect("counted as unexpected_input");
    assert_healthy(srv.addr);
}

// Attack: request smuggling, a second request pipelined behind GET /stream.
#[test]
fn request_pipelined_after_a_stream_is_never_executed() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--publish-token", "k"]);
    let mut c = Client::connect(srv.addr);
    let mut req = get("/stream");
    req.extend(post_publish("", Some("k"), "text/plain", b"smuggled"));
    c.send(&req);
    c.read_until(b"\r\n\r\n", SHORT);
    srv.wait_subscribers(1, SHORT);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(srv.hub.last_id(), None, "the smuggled publish ran");
}

// Attack: connection churn, clients that connect and vanish without a byte.
#[test]
fn connect_and_vanish_churn_leaves_the_server_serving() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    for _ in 0..200 {
        drop(std::net::TcpStream::connect(srv.addr).unwrap());
    }
    assert_healthy(srv.addr);
    crate::support::wait_for(SHORT, || srv.handle.connections() == 0).expect("slots released");
}

fn token_server() -> TestServer {
    start(&[
        "--no-demo",
        "--heartbeat",
        "0",
        "--publish-token",
        "k",
        "--header-timeout",
        "0.5",
    ])
}

// Attack: malformed chunk framing, to desynchronise the connection's request boundaries.
#[test]
fn malformed_chunk_size_is_400_and_close() {
    let srv = token_server();
    let req = b"POST /publish HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer k\r\n\
                Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    refused_on(&srv, req, 400);
    assert_eq!(srv.hub.last_id(), None);
}

// Attack: a publisher that sends a head announcing a body and then stalls (slow POST).
#[test]
fn stalled_request_body_gets_408_and_close() {
    let srv = token_server();
    let mut c = Client::connect(srv.addr);
    c.send(
        b"POST /publish HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer k\r\n\
          Content-Type: text/plain\r\nContent-Length: 10\r\n\r\n",
    );
    let r = c.read_response();
    r.assert_refusal(408);
    c.assert_closed();
    assert_eq!(srv.hub.last_id(), None);
}

#[test]
fn partly_sent_request_body_gets_408_and_close() {
    let srv = token_server();
    let mut c = Client::connect(srv.addr);
    c.send(
        b"POST /publish HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer k\r\n\
          Content-Type: text/plain\r\nContent-Length: 10\r\n\r\nabc",
    );
    let r = c.read_response();
    r.assert_refusal(408);
    c.assert_closed();
    assert_eq!(srv.hub.last_id(), None);
}
