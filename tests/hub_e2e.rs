//! Fan-out end to end: every subscriber gets the same events in the same order, and a
//! subscriber that stops reading is evicted (queue full, or write timeout) without
//! costing the others a single event.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{Client, SHORT, SseClient, get, post_publish, publish_json, start, wait_for};

#[test]
fn two_subscribers_get_the_same_events_in_the_same_order() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut a = SseClient::open(srv.addr, "/stream");
    let mut b = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(2, SHORT);
    for i in 0..50 {
        srv.publish("default", Some("n"), &format!("event {i}"));
    }
    let ea = a.expect_events(50);
    let eb = b.expect_events(50);
    assert_eq!(ea, eb);
    for (i, ev) in ea.iter().enumerate() {
        assert_eq!(ev.data, format!("event {i}"));
        assert_eq!(ev.offset(), i as u64 + 1);
        assert_eq!(ev.event_id().epoch, srv.hub.epoch());
        assert_eq!(ev.event, "n");
    }
}

#[test]
fn post_publish_reaches_every_subscriber_in_order() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--publish-token", "s3cret"]);
    let mut a = SseClient::open(srv.addr, "/stream");
    let mut b = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(2, SHORT);
    for i in 0..10 {
        let r = publish_json(srv.addr, "s3cret", &serde_json::json!({"data": i}));
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json()["delivered_to"], 2);
    }
    let ea = a.expect_events(10);
    assert_eq!(ea, b.expect_events(10));
    let data: Vec<String> = ea.into_iter().map(|e| e.data).collect();
    assert_eq!(data, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[test]
fn slow_subscriber_is_evicted_when_queue_is_full_while_a_reader_misses_nothing() {
    const EVENTS: u64 = 200;
    let srv = start(&["--no-demo", "--heartbeat", "0", "--queue", "8"]);
    let mut fast = SseClient::open(srv.addr, "/stream");
    fast.keep_raw = false;
    // The slow subscriber asks for the stream and never reads a byte.
    let mut slow = Client::connect(srv.addr);
    slow.send(&get("/stream"));
    srv.wait_subscribers(2, SHORT);

    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for _ in 0..EVENTS {
            match fast.next_event(Duration::from_secs(5)) {
                Some(ev) => {
                    if tx.send((ev.event_id(), ev.data.len())).is_err() {
                        break;
                    }
                }
                None => break,
            }
        }
        // Still connected: hand the stream back.
        fast
    });
    let big = "x".repeat(64 * 1024);
    for _ in 0..EVENTS {
        let id = srv.publish("default", None, &big);
        // Lockstep with the reader: its queue never holds more than one frame.
        let (got, len) = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("reader missed event {id}"));
        assert_eq!(got, id, "reader saw a gap or a duplicate");
        assert_eq!(len, big.len());
    }
    let _fast = reader.join().unwrap();
    assert_eq!(srv.hub.len(), 1, "slow subscriber still registered");
    let stats = Client::connect(srv.addr).request(&get("/stats")).json();
    assert!(
        stats["streams_ended"]["queue_full"].as_u64() >= Some(1),
        "{stats}"
    );
    // Its socket is closed: after what the kernel buffered, end of stream (or reset).
    assert!(
        slow.drain_to_end(Duration::from_secs(10)),
        "slow socket still open"
    );
}

#[test]
fn stuck_subscriber_is_evicted_by_write_timeout_before_its_queue_fills() {
    let srv = start(&[
        "--no-demo",
        "--heartbeat",
        "0",
        "--queue",
        "1000",
        "--write-timeout",
        "0.5",
    ]);
    let mut stuck = Client::connect(srv.addr);
    stuck.send(&get("/stream"));
    srv.wait_subscribers(1, SHORT);
    // 12.5 MiB: more than loopback's kernel buffers hold, in far fewer frames than the queue.
    let big = "y".repeat(128 * 1024);
    for _ in 0..100 {
        srv.publish("default", None, &big);
    }
    let published = Instant::now();
    wait_for(Duration::from_secs(4), || srv.hub.is_empty()).expect("stuck subscriber evicted");
    assert!(published.elapsed() < Duration::from_secs(3));
    let snap = srv.handle.snapshot();
    assert_eq!(snap.ended[1], 1, "write_timeout not counted: {snap:?}");
    assert_eq!(snap.ended[0], 0, "counted as queue_full: {snap:?}");
    assert!(
        stuck.drain_to_end(Duration::from_secs(10)),
        "stuck socket still open"
    );
}

#[test]
fn library_shutdown_ends_every_stream_and_run_returns() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--grace", "2"]);
    let mut a = SseClient::open(srv.addr, "/stream");
    let mut b = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(2, SHORT);
    srv.publish("default", None, "last words");
    let stopped = Instant::now();
    let addr = srv.addr;
    let hub = srv.hub.clone();
    let snap = srv
        .stop(Duration::from_secs(3))
        .expect("run returned within grace");
    assert!(stopped.elapsed() < Duration::from_secs(2));
    assert_eq!(snap.ended[3], 2, "{snap:?}");
    // What was queued is flushed before the end of stream.
    for s in [&mut a, &mut b] {
        assert_eq!(s.expect_event().data, "last words");
        assert!(s.wait_eof(SHORT));
    }
    assert!(hub.is_closed());
    assert!(std::net::TcpStream::connect_timeout(&addr, SHORT).is_err());
}

#[test]
fn concurrent_publishers_give_every_subscriber_one_global_order() {
    let srv = start(&[
        "--no-demo",
        "--heartbeat",
        "0",
        "--threads",
        "2",
        "--queue",
        "1000",
    ]);
    let mut a = SseClient::open(srv.addr, "/stream");
    let mut b = SseClient::open(srv.addr, "/stream?topic=p0&topic=p1");
    srv.wait_subscribers(2, SHORT);
    let publishers: Vec<_> = (0..2)
        .map(|p| {
            let hub = srv.hub.clone();
            std::thread::spawn(move || {
                let topic = ssehub::Topic::new(&format!("p{p}")).unwrap();
                for i in 0..200 {
                    hub.publish(
                        &topic,
                        &ssehub::sse::Event::new(format!("{p}-{i}")).unwrap(),
                    );
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    let ea = a.expect_events(400);
    assert_eq!(ea, b.expect_events(400));
    let ids: Vec<u64> = ea.iter().map(|e| e.offset()).collect();
    assert_eq!(ids, (1..=400).collect::<Vec<_>>());
    for p in 0..2 {
        let mine: Vec<&str> = ea
            .iter()
            .filter(|e| e.data.starts_with(&format!("{p}-")))
            .map(|e| e.data.as_str())
            .collect();
        let want: Vec<String> = (0..200).map(|i| format!("{p}-{i}")).collect();
        assert_eq!(mine, want);
    }
}

#[test]
fn waiting_subscribers_get_direct_writes_and_bursts_stay_in_order() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--queue", "1000"]);
    let mut a = SseClient::open(srv.addr, "/stream");
    let mut b = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(2, SHORT);
    // Paced: each event finds both writers waiting and goes out by a direct write
    // (half of them is enough to pass: a loaded machine may be late to re-arm one).
    for i in 0..20 {
        srv.publish("default", None, &format!("slow {i}"));
        std::thread::sleep(Duration::from_millis(10));
    }
    // Back to back: the writers are busy, so most of these are queued and batched.
    for i in 0..300 {
        srv.publish("default", None, &format!("fast {i}"));
    }
    let ea = a.expect_events(320);
    assert_eq!(ea, b.expect_events(320));
    let data: Vec<String> = ea.into_iter().map(|e| e.data).collect();
    let want: Vec<String> = (0..20)
        .map(|i| format!("slow {i}"))
        .chain((0..300).map(|i| format!("fast {i}")))
        .collect();
    assert_eq!(data, want);
    let stats = srv.stop(Duration::from_secs(10)).expect("server stops");
    // Whether the back-to-back burst outran the writers depends on the scheduler: beside
    // a CPU hog the publishing thread ran slower than both writers, and all 640 frames
    // went out directly (1 run in 20). That a busy writer makes the next publish queue
    // is checked deterministically in the hub's unit tests
    // (`frames_published_during_a_direct_write_follow_it_in_order`).
    assert!(
        stats.direct_writes >= 10 && stats.direct_writes <= 640,
        "direct writes: {}",
        stats.direct_writes
    );
    // At most one write per frame (these are small), plus the two preambles.
    assert!(
        stats.write_calls <= 640 + 2,
        "write calls: {}",
        stats.write_calls
    );
    assert_eq!(
        stats.frames_written,
        640 + 2,
        "every frame plus the two preambles"
    );
}

#[test]
fn direct_writes_larger_than_the_socket_buffer_arrive_whole_and_in_order() {
    // The first event goes out by a direct write (the writer waits) to a client that does
    // not read yet, and is larger than its socket can take (send buffer at most 4 MiB
    // plus an unread receive buffer): the socket takes part of it and the writer writes
    // the rest. The others queue behind it. The client reads once all are published.
    const EVENTS: usize = 4;
    const SIZE: usize = 8 << 20;
    // The client reads only once all four are published, and a write that waits longer
    // than --write-timeout evicts it: on a loaded machine, publishing 32 MiB in a debug
    // build took longer than the default 10 s (seen in 2 of 20 runs beside a CPU hog).
    let srv = start(&[
        "--no-demo",
        "--heartbeat",
        "0",
        "--history",
        "0",
        "--write-timeout",
        "120",
    ]);
    let mut sub = SseClient::open(srv.addr, "/stream");
    sub.keep_raw = false;
    srv.wait_subscribers(1, SHORT);
    // The head arrived, so the writer has written it; give it time to start waiting.
    std::thread::sleep(Duration::from_millis(100));
    let body = |i: usize| {
        format!(
            "{i}:{}",
            char::from(b'a' + i as u8).to_string().repeat(SIZE)
        )
    };
    let (go, wait) = mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let _ = wait.recv_timeout(Duration::from_secs(30));
        (0..EVENTS)
            .map(|_| sub.next_event(Duration::from_secs(60)).map(|e| e.data))
            .collect::<Vec<_>>()
    });
    for i in 0..EVENTS {
        srv.publish("default", None, &body(i));
    }
    let _ = go.send(());
    let got = reader.join().expect("reader");
    for (i, data) in got.into_iter().enumerate() {
        let data = data.unwrap_or_else(|| panic!("event {i} did not arrive"));
        assert!(data == body(i), "event {i} arrived torn or out of order");
    }
    let stats = srv.stop(Duration::from_secs(10)).expect("server stops");
    assert!(
        stats.direct_handoffs >= 1 && stats.direct_writes >= stats.direct_handoffs,
        "direct writes: {}, handed over: {}",
        stats.direct_writes,
        stats.direct_handoffs
    );
    // The preamble and every event; plus the end-of-stream probe once the reader hung up.
    assert!(
        (EVENTS as u64 + 1..=EVENTS as u64 + 3).contains(&stats.frames_written),
        "frames written: {}",
        stats.frames_written
    );
}

#[test]
fn a_reader_slower_than_a_burst_is_waited_for_not_evicted() {
    // A publisher posting 8 KiB events back to back on one connection (a producer
    // catching up after an outage) against a subscriber that reads, only slower: about
    // 4 MB/s, 64 KiB every 16 ms. Its socket is full most of the time, drained again and
    // again; the publish answers wait for it (pacing) instead of its queue of 64 filling.
    const EVENTS: usize = 1500;
    const TOKEN: &str = "burst";
    let srv = start(&[
        "--no-demo",
        "--heartbeat",
        "0",
        "--queue",
        "64",
        "--publish-token",
        TOKEN,
    ]);
    let mut reader = Client::connect(srv.addr);
    reader.send(&get("/stream"));
    reader.read_until(b"\r\n\r\n", SHORT);
    srv.wait_subscribers(1, SHORT);
    let deadline = Instant::now() + Duration::from_secs(60);
    let slow = std::thread::spawn(move || {
        let mut parser = crate::support::SseParser::new();
        let mut seen = Vec::with_capacity(EVENTS);
        loop {
            let bytes = std::mem::take(&mut reader.buf);
            seen.extend(parser.feed(&bytes).into_iter().map(|ev| ev.data));
            if seen.len() >= EVENTS {
                break;
            }
            std::thread::sleep(Duration::from_millis(16));
            match reader.fill(deadline) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        seen
    });
    let body = "y".repeat(8 * 1024);
    let mut publisher = Client::connect(srv.addr);
    for i in 0..EVENTS {
        let r = publisher.request(&post_publish(
            "",
            Some(TOKEN),
            "text/plain",
            format!("{i} {body}").as_bytes(),
        ));
        assert_eq!(r.status, 200, "publish {i}: {r:?}");
        assert!(Instant::now() < deadline, "the burst took over 60 s");
    }
    let seen = slow.join().unwrap();
    assert_eq!(seen.len(), EVENTS, "the reader was cut off: {}", seen.len());
    for (i, data) in seen.iter().enumerate() {
        assert!(data.starts_with(&format!("{i} ")), "event {i} out of place");
    }
    assert_eq!(srv.hub.len(), 1, "the reader was evicted");
    let stats = Client::connect(srv.addr).request(&get("/stats")).json();
    assert_eq!(stats["streams_ended"]["queue_full"], 0, "{stats}");
}
