//! `ssehub-soak doctor URL`: what the path between a client and the hub (a reverse
//! proxy, a load balancer) does to an event stream.
//!
//! It subscribes to `URL` (the stream through the proxy) and, from another thread,
//! publishes small timestamped events through `--publish-url` at a fixed interval for
//! the first half of the run (at most 5 s), then stays quiet. From what arrives it
//! reports the first-byte delay, each event's delay, the burst sizes (events arriving
//! together: something held them back), how long the stream survived with no bytes
//! (the idle cut-off, when the path closed it), and the response headers the path added
//! or that break streaming (`Content-Encoding`, `Content-Length`). The verdict is one of
//! `streaming`, `buffered` or `cut after N ± 1 s`.
//!
//! Blocking sockets and two threads: one stream and one publisher need no executor.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::args::Doctor;
use crate::http::{self, Dechunker, Framing};
use crate::sse::{Caps, Item, Parser};

/// The event type of the doctor's events.
const EVENT: &str = "doctor";
/// Deadline to connect and of one publish exchange.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Publishing starts when the stream's head arrived, or after this long without it
/// (a path that holds the head back until its buffer fills).
const HEAD_WAIT: Duration = Duration::from_secs(1);
/// A burst of this many events is buffering (at 10 events/s: 300 ms held back).
const BURST_BUFFERED: usize = 4;
/// A median delay above this is buffering too.
const DELAY_BUFFERED: Duration = Duration::from_millis(500);
/// Headers ssehub sends on a stream itself; any other came from the path.
const OWN_HEADERS: &[&str] = &[
    "date",
    "content-type",
    "cache-control",
    "x-accel-buffering",
    "connection",
    "sse-resume",
    "vary",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-expose-headers",
];

/// What the publisher thread shares with the reader.
#[derive(Default)]
struct Shared {
    /// Set by the reader: stop publishing.
    stop: AtomicBool,
    /// Each published event (answered `200`): its sequence number and when it was sent,
    /// counted from the run's start.
    published: Mutex<Vec<(u64, Duration)>>,
    /// Why publishing failed, if it did.
    error: Mutex<Option<String>>,
}

/// One event of the doctor's that arrived.
struct Arrival {
    seq: u64,
    /// When it arrived, counted from the run's start.
    at: Duration,
}

/// Delays of the events. **Unit:** milliseconds.
#[derive(Debug, Default, Serialize)]
pub struct Delays {
    /// The median.
    pub p50: f64,
    /// The largest.
    pub max: f64,
}

/// The doctor's report (JSON on stdout).
#[derive(Debug, Serialize)]
pub struct Report {
    /// The run's settings.
    pub config: Doctor,
    /// Status of the stream's response.
    pub status: Option<u16>,
    /// From the request to the first byte of the response. **Unit:** ms.
    pub first_byte_ms: Option<f64>,
    /// Events published (answered `200`).
    pub published: usize,
    /// Of them, how many arrived on the stream.
    pub received: usize,
    /// Published but never arrived while the stream was open.
    pub missing: usize,
    /// From publish to arrival.
    pub delay_ms: Delays,
    /// Events arriving together (less than a third of the interval apart): how many
    /// bursts of each size.
    pub bursts: BTreeMap<usize, usize>,
    /// The largest burst.
    pub max_burst: usize,
    /// How long the stream had carried no byte at the end of the run (or when it was
    /// cut). **Unit:** seconds.
    pub quiet_s: f64,
    /// The path ended the stream after `quiet_s` without a byte.
    pub cut: bool,
    /// Every response header, as received.
    pub headers: Vec<(String, String)>,
    /// The headers ssehub does not send: the path added them.
    pub added_headers: Vec<String>,
    /// What breaks streaming, or what kept the doctor from judging.
    pub warnings: Vec<String>,
    /// `streaming`, `buffered` or `cut after N ± 1 s`.
    pub verdict: String,
}

/// Runs the doctor; prints the report (JSON) on stdout and a summary on stderr.
pub fn run(cfg: Doctor) -> ExitCode {
    match examine(&cfg) {
        Ok(report) => {
            summarize(&report);
            match serde_json::to_string_pretty(&report) {
                Ok(json) => println!("{json}"),
                Err(e) => eprintln!("ssehub-soak: cannot write the report: {e}"),
            }
            if report.verdict == "streaming" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("ssehub-soak doctor: {e}");
            ExitCode::from(3)
        }
    }
}

/// A response head: status, every header, body framing.
type HeadSeen = (u16, Vec<(String, String)>, Framing);

/// The stream as it is read: head, body framing, events.
struct Reading {
    buf: Vec<u8>,
    head: Option<HeadSeen>,
    head_at: Option<Duration>,
    dechunker: Dechunker,
    body_left: Option<u64>,
    parser: Parser,
    arrivals: Vec<Arrival>,
    run_id: String,
}

impl Reading {
    /// Takes `bytes` read at `at`.
    fn take(&mut self, bytes: &[u8], at: Duration) -> Result<(), String> {
        if self.head.is_some() {
            return self.body(bytes, at);
        }
        self.buf.extend_from_slice(bytes);
        let Some(n) = http::head_len(&self.buf) else {
            if self.buf.len() > 64 * 1024 {
                return Err("response head over 64 KiB".into());
            }
            return Ok(());
        };
        let raw: Vec<u8> = self.buf.drain(..n).collect();
        let parsed = http::parse_head(&raw)?;
        let text = String::from_utf8_lossy(&raw);
        let headers = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        if let Framing::Length(n) = parsed.framing {
            self.body_left = Some(n);
        }
        self.head = Some((parsed.status, headers, parsed.framing));
        let rest = std::mem::take(&mut self.buf);
        self.body(&rest, at)
    }

    fn body(&mut self, bytes: &[u8], at: Duration) -> Result<(), String> {
        let mut plain = Vec::new();
        match self.head.as_ref().map(|h| h.2) {
            Some(Framing::Chunked) => self.dechunker.feed(bytes, |p| plain.extend_from_slice(p))?,
            Some(Framing::Length(_)) => {
                let left = self.body_left.unwrap_or(0);
                let n = bytes.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                plain.extend_from_slice(&bytes[..n]);
                self.body_left = Some(left - n as u64);
            }
            _ => plain.extend_from_slice(bytes),
        }
        let (arrivals, run_id) = (&mut self.arrivals, &self.run_id);
        self.parser.feed(&plain, &mut |item| {
            if let Item::Event(ev) = item
                && ev.event == EVENT.as_bytes()
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(ev.data)
                && v["run"].as_str() == Some(run_id)
                && let Some(seq) = v["seq"].as_u64()
            {
                arrivals.push(Arrival { seq, at });
            }
        });
        Ok(())
    }
}

/// Connects, publishes, reads until the run's end or the stream's; the report.
fn examine(cfg: &Doctor) -> Result<Report, String> {
    let t0 = Instant::now();
    let end = t0 + cfg.duration;
    let mut stream = TcpStream::connect_timeout(&cfg.addr, IO_TIMEOUT)
        .map_err(|e| format!("cannot connect to {}: {e}", cfg.url))?;
    let _ = stream.set_nodelay(true);
    stream
        .write_all(&http::stream_request(&cfg.target, &cfg.host, None))
        .map_err(|e| format!("cannot send the request to {}: {e}", cfg.url))?;
    let sent_at = t0.elapsed();
    let shared = Arc::new(Shared::default());
    let run_id = format!("{:016x}", fastrand::u64(..));
    let mut publisher = None;
    let mut r = Reading {
        buf: Vec::new(),
        head: None,
        head_at: None,
        dechunker: Dechunker::default(),
        body_left: None,
        parser: Parser::new(Caps {
            data: 4096,
            ..Caps::SMALL
        }),
        arrivals: Vec::new(),
        run_id: run_id.clone(),
    };
    let mut last_byte = sent_at;
    let mut cut = false;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if publisher.is_none() && (r.head.is_some() || now >= t0 + HEAD_WAIT) {
            let (cfg, shared, run_id) = (cfg.clone(), shared.clone(), run_id.clone());
            publisher = Some(std::thread::spawn(move || {
                publish(&cfg, &shared, &run_id, t0)
            }));
        }
        let wait = (end - now).min(Duration::from_millis(100));
        let _ = stream.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        match stream.read(&mut chunk) {
            Ok(0) => {
                cut = true;
                break;
            }
            Ok(n) => {
                let at = t0.elapsed();
                last_byte = at;
                r.head_at.get_or_insert(at);
                r.take(&chunk[..n], at)?;
                if let Some((status, ..)) = &r.head
                    && *status != 200
                {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => {
                cut = true;
                break;
            }
        }
        if shared.error.lock().is_ok_and(|e| e.is_some()) {
            break;
        }
    }
    let stopped_at = t0.elapsed();
    shared.stop.store(true, Ordering::SeqCst);
    if let Some(p) = publisher {
        let _ = p.join();
    }
    if let Some((status, ..)) = &r.head
        && *status != 200
    {
        return Err(format!("{} answered {status}, not a stream", cfg.url));
    }
    if let Some(e) = shared.error.lock().ok().and_then(|mut e| e.take()) {
        return Err(e);
    }
    let published = shared
        .published
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    Ok(judge(
        cfg, r, published, sent_at, last_byte, stopped_at, cut,
    ))
}

/// The report from what was seen.
fn judge(
    cfg: &Doctor,
    r: Reading,
    published: Vec<(u64, Duration)>,
    sent_at: Duration,
    last_byte: Duration,
    stopped_at: Duration,
    cut: bool,
) -> Report {
    let (status, headers) = match r.head {
        Some((s, h, _)) => (Some(s), h),
        None => (None, Vec::new()),
    };
    let mut warnings = Vec::new();
    let sent: BTreeMap<u64, Duration> = published.iter().copied().collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut delays: Vec<Duration> = Vec::new();
    for a in &r.arrivals {
        if let Some(s) = sent.get(&a.seq)
            && seen.insert(a.seq)
        {
            delays.push(a.at.saturating_sub(*s));
        }
    }
    delays.sort();
    let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
    let delay_ms = Delays {
        p50: delays.get(delays.len() / 2).map_or(0.0, |d| ms(*d)),
        max: delays.last().map_or(0.0, |d| ms(*d)),
    };
    let mut bursts = BTreeMap::new();
    let mut size = 0;
    let mut prev: Option<Duration> = None;
    for a in &r.arrivals {
        if prev.is_some_and(|p| a.at.saturating_sub(p) < cfg.interval / 3) {
            size += 1;
        } else {
            if size > 0 {
                *bursts.entry(size).or_insert(0) += 1;
            }
            size = 1;
        }
        prev = Some(a.at);
    }
    if size > 0 {
        *bursts.entry(size).or_insert(0) += 1;
    }
    let max_burst = bursts.keys().copied().max().unwrap_or(0);
    let missing = sent.len() - seen.len();
    let added_headers: Vec<String> = headers
        .iter()
        .filter(|(n, _)| !OWN_HEADERS.contains(&n.to_ascii_lowercase().as_str()))
        .map(|(n, v)| format!("{n}: {v}"))
        .collect();
    for (n, v) in &headers {
        match n.to_ascii_lowercase().as_str() {
            "content-encoding" => warnings.push(format!(
                "Content-Encoding: {v}: the path compresses the stream, and compression holds events back"
            )),
            "content-length" => warnings.push(format!(
                "Content-Length: {v}: the path gives the stream a length; it will end"
            )),
            "content-type" if !v.starts_with("text/event-stream") => {
                warnings.push(format!("Content-Type: {v}: not an event stream"))
            }
            _ => {}
        }
    }
    if status.is_none() {
        warnings.push("no response head arrived: the path holds the stream back".into());
    }
    if status == Some(200) && !sent.is_empty() && seen.is_empty() && !cut {
        warnings.push(format!(
            "none of the events arrived: is the path buffering, or does the URL not subscribe to topic {}?",
            cfg.topic
        ));
    }
    let quiet = stopped_at.saturating_sub(last_byte);
    let buffered = status.is_none()
        || missing > 0
        || max_burst >= BURST_BUFFERED
        || delays
            .get(delays.len() / 2)
            .is_some_and(|d| *d > DELAY_BUFFERED);
    let verdict = if cut {
        format!("cut after {} ± 1 s", quiet.as_secs_f64().round())
    } else if buffered {
        "buffered".to_string()
    } else {
        "streaming".to_string()
    };
    Report {
        config: cfg.clone(),
        status,
        first_byte_ms: r.head_at.map(|h| ms(h.saturating_sub(sent_at))),
        published: sent.len(),
        received: seen.len(),
        missing: if cut { 0 } else { missing },
        delay_ms,
        bursts,
        max_burst,
        quiet_s: (quiet.as_secs_f64() * 10.0).round() / 10.0,
        cut,
        headers,
        added_headers,
        warnings,
        verdict,
    }
}

/// The human summary, on stderr.
fn summarize(r: &Report) {
    let first = r
        .first_byte_ms
        .map_or("never".to_string(), |ms| format!("after {ms} ms"));
    eprintln!("doctor: first byte {first}");
    eprintln!(
        "doctor: {} events published, {} arrived (delay p50 {} ms, max {} ms)",
        r.published, r.received, r.delay_ms.p50, r.delay_ms.max
    );
    eprintln!(
        "doctor: largest burst: {} (events arriving together; bursts by size: {:?})",
        r.max_burst, r.bursts
    );
    let end = if r.cut { "then cut" } else { "still open" };
    eprintln!("doctor: quiet for {} s at the end, {end}", r.quiet_s);
    if !r.added_headers.is_empty() {
        eprintln!(
            "doctor: headers the path added: {}",
            r.added_headers.join(", ")
        );
    }
    for w in &r.warnings {
        eprintln!("doctor: warning: {w}");
    }
    eprintln!("doctor: verdict: {}", r.verdict);
}

/// The publisher: one keep-alive connection, an event every interval for
/// `publish_for`; stops at the first refusal (recorded in `shared.error`).
fn publish(cfg: &Doctor, shared: &Shared, run_id: &str, t0: Instant) {
    let start = Instant::now();
    let mut conn: Option<TcpStream> = None;
    let mut next = start;
    for seq in 1.. {
        let now = Instant::now();
        if shared.stop.load(Ordering::SeqCst) || now >= start + cfg.publish_for {
            return;
        }
        if next > now {
            std::thread::sleep(next - now);
        }
        // A slow answer delays the next event; it does not bring a burst of catch-ups.
        next = (next + cfg.interval).max(Instant::now());
        let sent = t0.elapsed();
        let base = format!(
            "{{\"run\":\"{run_id}\",\"seq\":{seq},\"sent_us\":{},\"pad\":\"\"}}",
            sent.as_micros()
        );
        let pad = "x".repeat(cfg.body_size.saturating_sub(base.len()));
        let data = base.replace("\"pad\":\"\"", &format!("\"pad\":\"{pad}\""));
        let body =
            serde_json::json!({"topic": cfg.topic, "event": EVENT, "data": data}).to_string();
        let req = http::post_json(
            &cfg.publish_target,
            &cfg.publish_host,
            cfg.token.as_deref(),
            body.as_bytes(),
        );
        match exchange(cfg, &mut conn, &req) {
            Ok(200) => {
                if let Ok(mut p) = shared.published.lock() {
                    p.push((seq, sent));
                }
            }
            Ok(status) => {
                if let Ok(mut e) = shared.error.lock() {
                    *e = Some(format!(
                        "{} answered {status} to a publish",
                        cfg.publish_url
                    ));
                }
                return;
            }
            Err(e) => {
                if let Ok(mut err) = shared.error.lock() {
                    *err = Some(format!("publishing to {}: {e}", cfg.publish_url));
                }
                return;
            }
        }
    }
}

/// Sends one request on the keep-alive connection (opening it when needed) and reads
/// the answer; its status.
fn exchange(cfg: &Doctor, conn: &mut Option<TcpStream>, req: &[u8]) -> Result<u16, String> {
    if conn.is_none() {
        let s =
            TcpStream::connect_timeout(&cfg.publish_addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(IO_TIMEOUT));
        *conn = Some(s);
    }
    let s = conn.as_mut().ok_or("no connection")?;
    s.write_all(req).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head = loop {
        if let Some(n) = http::head_len(&buf) {
            break http::parse_head(&buf[..n]).map(|h| (n, h))?;
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err("the connection closed before the answer".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e.to_string()),
        }
    };
    let (n, h) = head;
    let mut rest = buf.split_off(n);
    match h.framing {
        Framing::Length(len) => {
            while (rest.len() as u64) < len {
                match s.read(&mut chunk) {
                    Ok(0) => return Err("the connection closed inside the answer".into()),
                    Ok(k) => rest.extend_from_slice(&chunk[..k]),
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        Framing::Chunked => {
            let mut d = Dechunker::default();
            d.feed(&rest, |_| {})?;
            while !d.is_done() {
                match s.read(&mut chunk) {
                    Ok(0) => return Err("the connection closed inside the answer".into()),
                    Ok(k) => d.feed(&chunk[..k], |_| {})?,
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        Framing::Close => {
            *conn = None;
            return Ok(h.status);
        }
    }
    if h.close {
        *conn = None;
    }
    Ok(h.status)
}
