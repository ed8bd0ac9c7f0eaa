//! The producers: smol tasks owned by the server's lifespan.
//!
//! - the **demo event producer** publishes a JSON `tick` event at random intervals;
//! - the **heartbeat** broadcasts a comment frame every interval; going through each
//!   subscriber's bounded queue, it also finds subscribers that stopped reading;
//! - the **stdin producer** (`--stdin`) publishes each line of standard input.
//!
//! Dropping [`Producers`] cancels them all.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_executor::{Executor, Task};
use async_io::Timer;
use futures_lite::io::BufReader;
use futures_lite::{AsyncBufReadExt, AsyncRead, AsyncReadExt, StreamExt};
use serde_json::json;

use crate::config::Config;
use crate::envelope::Envelope;
use crate::hub::Hub;
use crate::input;
use crate::log::Log;
use crate::port::Port;
use crate::sse::{Event, heartbeat};
use crate::topic::Topic;

/// Most stdin lines published before the producer yields to the other tasks of its
/// thread. **Unit:** lines. **Why:** a fast input (a file piped in) must not keep the
/// request thread from accepting and answering.
pub const LINES_PER_POLL: u64 = 64;

/// The topic of the demo producer's events.
pub const DEMO_TOPIC: &str = "demo";

/// The running producer tasks. Dropping this value cancels them.
#[derive(Debug)]
pub struct Producers {
    _tasks: Vec<Task<()>>,
}

impl Producers {
    /// Spawns the producers that `cfg` turns on, publishing through `port`
    /// (heartbeats are always this `hub`'s own: comments, never events).
    pub fn spawn(
        ex: &Executor<'static>,
        cfg: &Config,
        hub: &Hub,
        port: &Port,
        log: &Log,
    ) -> Producers {
        let mut tasks = Vec::new();
        let publisher = port.clone();
        if cfg.demo {
            let (min, max) = cfg.demo_interval_ms;
            tasks.push(ex.spawn(demo(publisher.clone(), min, max)));
        }
        if let Some(every) = cfg.heartbeat {
            tasks.push(ex.spawn(heartbeats(hub.clone(), every)));
        }
        if cfg.stdin {
            let input = smol::Unblock::new(io::stdin());
            tasks.push(ex.spawn(lines(
                input,
                publisher,
                cfg.stdin_json,
                cfg.limits.max_body,
                log.clone(),
            )));
        }
        Producers { _tasks: tasks }
    }
}

/// Publishes `{"seq":N,"ts":unix_ms,"value":x}` as `event: tick` on [`DEMO_TOPIC`], pausing
/// a random `min_ms..=max_ms` before each.
pub async fn demo(port: Port, min_ms: u64, max_ms: u64) {
    let envelope = Envelope::on(Topic::new(DEMO_TOPIC).expect("valid constant"));
    for seq in 1u64.. {
        Timer::after(Duration::from_millis(fastrand::u64(min_ms..=max_ms))).await;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let value = (fastrand::f64() * 1000.0).round() / 1000.0;
        let data = json!({"seq": seq, "ts": ts, "value": value}).to_string();
        if let Ok(event) = Event::new(data).and_then(|e| e.with_name("tick")) {
            // A refused publish was logged (and counted) where it failed; the demo goes on.
            let _ = port.publish(envelope.clone(), event).await;
        }
    }
}

/// Broadcasts the heartbeat frame every `every`.
pub async fn heartbeats(hub: Hub, every: Duration) {
    let frame = heartbeat();
    let mut ticks = Timer::interval(every);
    while ticks.next().await.is_some() {
        hub.broadcast(&frame);
    }
}

/// Publishes each line of `input` (without its line ending) as one event; with `json`,
/// each line is an object in the `POST /publish` form. Lines longer than `max_line`
/// bytes, and lines that fail the checks, are skipped and logged. End of input ends this
/// producer, not the server.
pub async fn lines<R: AsyncRead + Unpin>(
    input: R,
    port: Port,
    json: bool,
    max_line: usize,
    log: Log,
) {
    let mut reader = BufReader::new(input);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let limit = max_line as u64 + 2;
        let n = match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                log.line(format_args!("stdin: read failed: {e}"));
                break;
            }
        };
        number += 1;
        if number.is_multiple_of(LINES_PER_POLL) {
            futures_lite::future::yield_now().await;
        }
        if !line.ends_with(b"\n") && n as u64 == limit {
            log.line(format_args!(
                "stdin: line {number} exceeds {max_line} bytes, skipped"
            ));
            skip_rest_of_line(&mut reader).await;
            continue;
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let parsed = if json {
            input::from_json(&line)
        } else {
            input::from_text(&line, &input::Params::default())
        };
        match parsed.and_then(|p| Ok((p.envelope()?, p.event))) {
            Ok((envelope, event)) => {
                if let Err(why) = port.publish(envelope, event).await {
                    log.line(format_args!("stdin: line {number} not published: {why}"));
                }
            }
            Err(e) => log.line(format_args!("stdin: line {number} skipped: {e}")),
        }
    }
    log.line(format_args!("stdin: end of input; still serving"));
}

async fn skip_rest_of_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) {
    loop {
        let buf = match reader.fill_buf().await {
            Ok([]) | Err(_) => return,
            Ok(buf) => buf,
        };
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return;
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubLimits;
    use crate::stats::Stats;
    use crate::topic::Topics;
    use std::sync::Arc;

    fn hub() -> Hub {
        Hub::new(HubLimits::default(), Arc::new(Stats::new()))
    }

    fn drain(sub: &crate::hub::Subscription) -> Vec<String> {
        std::iter::from_fn(|| sub.receiver().unwrap().try_recv().ok())
            .map(|f| String::from_utf8(f.as_bytes().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn stdin_lines_become_events_and_bad_lines_are_skipped() {
        let h = hub();
        let sub = h.subscribe(Topics::All, None, None).unwrap();
        let input: &[u8] = b"one\r\ntwo\nbad\0nul\nlast-without-newline";
        futures_lite::future::block_on(lines(input, Port::memory(&h), false, 64, Log::silent()));
        let e = h.epoch();
        assert_eq!(
            drain(&sub),
            [
                format!("id: {e}-1\ndata: one\n\n"),
                format!("id: {e}-2\ndata: two\n\n"),
                format!("id: {e}-3\ndata: last-without-newline\n\n"),
            ]
        );
    }

    #[test]
    fn stdin_json_lines_and_overlong_lines() {
        let h = hub();
        let sub = h.subscribe(Topics::All, None, None).unwrap();
        let long = format!("{{\"data\":\"{}\"}}\n", "x".repeat(100));
        let input =
            format!("{{\"data\":\"a\",\"event\":\"e\"}}\n{long}not json\n{{\"data\":\"b\"}}\n");
        futures_lite::future::block_on(lines(
            input.as_bytes(),
            Port::memory(&h),
            true,
            64,
            Log::silent(),
        ));
        let e = h.epoch();
        assert_eq!(
            drain(&sub),
            [
                format!("id: {e}-1\nevent: e\ndata: a\n\n"),
                format!("id: {e}-2\ndata: b\n\n"),
            ]
        );
    }

    #[test]
    fn heartbeat_reaches_subscribers() {
        let h = hub();
        let sub = h.subscribe(Topics::All, None, None).unwrap();
        futures_lite::future::block_on(async {
            heartbeats(h.clone(), Duration::from_millis(5))
                .or(async {
                    Timer::after(Duration::from_millis(60)).await;
                })
                .await
        });
        let got = drain(&sub);
        assert!(got.len() >= 2, "{got:?}");
        assert!(got.iter().all(|f| f == ": heartbeat\n\n"));
    }

    #[test]
    fn demo_publishes_tick_events_with_json() {
        let h = hub();
        let sub = h.subscribe(Topics::All, None, None).unwrap();
        futures_lite::future::block_on(async {
            demo(Port::memory(&h), 1, 2)
                .or(async {
                    Timer::after(Duration::from_millis(50)).await;
                })
                .await
        });
        let got = drain(&sub);
        assert!(!got.is_empty());
        let first = &got[0];
        let head = format!("id: {}-1\nevent: tick\ndata: {{", h.epoch());
        assert!(first.starts_with(&head), "{first}");
        let json: serde_json::Value = serde_json::from_str(
            first
                .lines()
                .nth(2)
                .unwrap()
                .strip_prefix("data: ")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(json["seq"], 1);
    }

    use futures_lite::FutureExt;
}
