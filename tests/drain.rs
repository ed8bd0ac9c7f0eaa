//! The jittered drain (#22): on SIGTERM without a handover, the real binary ends its
//! streams at random times spread over `--drain-spread` (by default four fifths of
//! `--grace`, at most 10 ms per stream), all within the grace period, and the `retry:`
//! each stream was sent is jittered; `--drain-spread 0` ends them all at once.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{Binary, spawn_binary};

/// Streams opened for each run.
const STREAMS: usize = 200;

/// Opens `n` streams on `srv`; each with the `retry:` its preamble carried.
fn open_streams(srv: &Binary, n: usize) -> Vec<(TcpStream, u32)> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(srv.addr).expect("connect");
            s.write_all(b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n")
                .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.windows(7).any(|w| w == b"retry: ") || !got.ends_with(b"\n") {
                let k = s.read(&mut buf).expect("the stream's preamble");
                assert!(k > 0, "closed before the preamble");
                got.extend_from_slice(&buf[..k]);
            }
            let text = String::from_utf8_lossy(&got);
            let retry = text
                .lines()
                .find_map(|l| l.strip_prefix("retry: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("a retry field");
            s.set_nonblocking(true).unwrap();
            (s, retry)
        })
        .collect()
}

/// Sends SIGTERM and returns when each stream saw its end of stream, in ms after the
/// signal (polling every 2 ms; within `within`).
fn end_times_after_sigterm(
    srv: &Binary,
    streams: &mut [(TcpStream, u32)],
    within: Duration,
) -> Vec<u64> {
    let start = Instant::now();
    srv.signal("TERM");
    let mut ends: Vec<Option<u64>> = vec![None; streams.len()];
    let mut buf = [0u8; 4096];
    while ends.iter().any(Option::is_none) {
        assert!(
            start.elapsed() < within,
            "streams still open after {within:?}"
        );
        for (i, (s, _)) in streams.iter_mut().enumerate() {
            if ends[i].is_some() {
                continue;
            }
            match s.read(&mut buf) {
                Ok(0) => ends[i] = Some(start.elapsed().as_millis() as u64),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => ends[i] = Some(start.elapsed().as_millis() as u64),
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    ends.into_iter().map(Option::unwrap).collect()
}

#[test]
fn on_sigterm_streams_end_spread_over_the_drain_within_grace() {
    let mut srv = spawn_binary(&["--no-demo", "--heartbeat", "0", "--grace", "3"]);
    let mut streams = open_streams(&srv, STREAMS);
    // The retry each was sent: 3000 ms ± a fifth, not one value for all.
    let retries: BTreeSet<u32> = streams.iter().map(|(_, r)| *r).collect();
    assert!(
        retries.iter().all(|r| (2400..=3600).contains(r)),
        "{retries:?}"
    );
    assert!(
        retries.len() > 20,
        "{} distinct retry values",
        retries.len()
    );
    let ends = end_times_after_sigterm(&srv, &mut streams, Duration::from_secs(10));
    let status = srv.wait_exit(Duration::from_secs(10)).expect("exited");
    assert!(status.success(), "{status:?}");
    // 200 streams: a spread of 200 × 10 ms = 2 s (under 4/5 of the 3 s grace).
    let buckets: BTreeSet<u64> = ends.iter().map(|ms| ms / 100).collect();
    let (first, last) = (ends.iter().min().unwrap(), ends.iter().max().unwrap());
    assert!(
        buckets.len() >= 10,
        "ends in {} buckets of 100 ms: {ends:?}",
        buckets.len()
    );
    assert!(last - first >= 1000, "ends from {first} to {last} ms");
    assert!(
        *last <= 3000 + 500,
        "an end at {last} ms, past the 3 s grace"
    );
    // No bucket holds a burst: at most a quarter of the streams in any 100 ms (10 are
    // expected; a busy machine may fire a few slots late, together).
    let most = buckets
        .iter()
        .map(|b| ends.iter().filter(|ms| *ms / 100 == *b).count())
        .max()
        .unwrap();
    assert!(most <= STREAMS / 4, "{most} ends in one 100 ms bucket");
}

#[test]
fn drain_spread_zero_ends_every_stream_at_once() {
    let mut srv = spawn_binary(&[
        "--no-demo",
        "--heartbeat",
        "0",
        "--grace",
        "3",
        "--drain-spread",
        "0",
    ]);
    let mut streams = open_streams(&srv, STREAMS);
    let ends = end_times_after_sigterm(&srv, &mut streams, Duration::from_secs(10));
    assert!(
        srv.wait_exit(Duration::from_secs(10))
            .expect("exited")
            .success()
    );
    let (first, last) = (ends.iter().min().unwrap(), ends.iter().max().unwrap());
    assert!(last - first < 500, "ends from {first} to {last} ms");
}
