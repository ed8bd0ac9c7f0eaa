//! The soak run: subscribers, slow clients, churn and reconnect sessions, the publisher,
//! the progress line and the phases that end it.
//!
//! Phases (all bounded by `--duration`, which is also the hard cap):
//! 1. **Active** (`duration - tail`): the publisher runs from the start; initial clients
//!    connect at `--connect-rate`; once they all have (or failed), the server baseline
//!    is sampled and churn and reconnect sessions start.
//! 2. **Tail** (`tail = clamp(duration / 10, 1.5 s, 5 s)`): publishing, churn and
//!    reconnects stop; slow clients drain their sockets to see whether the server closed
//!    them; steady clients get until the tail's end to receive the last published event;
//!    then the server is sampled once more and the report is built.

use std::cell::RefCell;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_channel::{Receiver, Sender};
use async_executor::Executor;
use async_io::{Async, Timer};
use async_net::TcpStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt, Future, FutureExt, future};
use serde::{Deserialize, Serialize};

use crate::args::{Config, EVENT_NAME, Rate, Style};
use crate::check::{SeqChecker, Verdict, numeric_id, payload};
use crate::histogram::{Histogram, Sum};
use crate::http::{self, Dechunker, Framing};
use crate::procfs::{self, Sample};
use crate::sse::{Caps, Item, Parser};

/// Buffer for a response head (and a slow client's drain). **Unit:** bytes.
pub const READ_BUF: usize = 4096;
/// Deadline for a TCP connect, a request write, or a response head.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connection handshakes in progress at once (keeps the server's accept backlog
/// from overflowing when `--connect-rate` is 0).
const MAX_HANDSHAKES: usize = 256;
/// Most churn plus reconnect sessions alive at once.
const MAX_SESSIONS: u64 = 2000;
/// How long a slow client may take to drain its socket to the server's close.
const SLOW_DRAIN: Duration = Duration::from_secs(2);
/// Error messages kept for the report.
const MAX_ERRORS: usize = 10;

/// A one-shot broadcast signal.
#[derive(Debug)]
pub struct Signal {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Default for Signal {
    fn default() -> Self {
        let (tx, rx) = async_channel::bounded(1);
        Signal { tx, rx }
    }
}

impl Signal {
    /// Fires the signal (idempotent).
    pub fn fire(&self) {
        self.tx.close();
    }

    /// Whether it has fired.
    pub fn fired(&self) -> bool {
        self.rx.is_closed()
    }

    /// Waits until it fires.
    pub async fn wait(&self) {
        let _ = self.rx.recv().await;
    }
}

/// Runs `fut` until it finishes (`Some`), `stop` fires or `deadline` passes (`None`).
async fn until<T>(
    fut: impl Future<Output = T>,
    stop: &Signal,
    deadline: Option<Instant>,
) -> Option<T> {
    async { Some(fut.await) }
        .or(async {
            stop.wait().await;
            None
        })
        .or(async {
            match deadline {
                Some(d) => {
                    Timer::at(d).await;
                }
                None => futures_lite::future::pending::<()>().await,
            }
            None
        })
        .await
}

/// Sleeps until `at`; false when `stop` fired first.
async fn sleep_until(at: Instant, stop: &Signal) -> bool {
    until(Timer::at(at), stop, None).await.is_some()
}

/// Microseconds since the Unix epoch.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The kind of a subscriber, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A steady subscriber.
    Steady = 0,
    /// A short-lived churn client.
    Churn = 1,
    /// A client that hangs up and resumes with `Last-Event-ID`.
    Reconnect = 2,
}

/// Counters per [`Role`].
#[derive(Debug, Default)]
pub struct PerRole {
    /// Missing events.
    pub gaps: AtomicU64,
    /// Events seen twice.
    pub duplicates: AtomicU64,
    /// Events older than one already seen.
    pub out_of_order: AtomicU64,
}

/// All counters of a run.
#[derive(Debug, Default)]
pub struct Counters {
    /// Checks per role.
    pub roles: [PerRole; 3],
    /// Steady clients that got a `200 text/event-stream` head.
    pub connected: AtomicU64,
    /// Steady clients connected right now.
    pub connected_now: AtomicU64,
    /// Steady clients that could not connect.
    pub connect_failures: AtomicU64,
    /// Steady clients whose stream the server closed.
    pub dropped: AtomicU64,
    /// Initial (steady and slow) clients that connected or failed.
    pub initial_resolved: AtomicU64,
    /// Own events received by steady and churn clients.
    pub received: Sum,
    /// Events received by all subscribers that were not the tool's own.
    pub foreign: Sum,
    /// Comment lines received (heartbeats and others).
    pub comments: Sum,
    /// Body bytes received by subscribers.
    pub bytes: Sum,
    /// Events whose id was not a decimal number (`--no-publish` checks).
    pub non_numeric_ids: AtomicU64,
    /// Events published (answered 200).
    pub published: AtomicU64,
    /// Failed publish requests.
    pub publish_errors: AtomicU64,
    /// Sum of `delivered_to` in publish answers.
    pub delivered_to: AtomicU64,
    /// Slow clients that connected and sent their request.
    pub slow_connected: AtomicU64,
    /// Slow clients that could not connect.
    pub slow_failed: AtomicU64,
    /// Slow clients whose connection the server closed.
    pub slow_evicted: AtomicU64,
    /// Slow clients still served at the check.
    pub slow_not_evicted: AtomicU64,
    /// Slow clients whose check finished.
    pub slow_done: AtomicU64,
    /// Bytes slow clients drained at the check.
    pub slow_drained_bytes: AtomicU64,
    /// Churn sessions that connected.
    pub churn_sessions: AtomicU64,
    /// Churn sessions that could not connect.
    pub churn_failed: AtomicU64,
    /// Churn sessions the server closed early.
    pub churn_dropped: AtomicU64,
    /// Reconnect sessions started.
    pub reconnect_sessions: AtomicU64,
    /// Reconnections made with a `Last-Event-ID`.
    pub reconnects: AtomicU64,
    /// Reconnections after which at least one own event arrived (continuity checked).
    pub reconnects_checked: AtomicU64,
    /// Reconnect sessions that could not connect or were closed by the server.
    pub reconnect_failed: AtomicU64,
    /// Reconnect sessions that saw no event id before hanging up (nothing to resume).
    pub reconnect_no_id: AtomicU64,
    /// `: missed events` comments seen after a reconnect.
    pub missed_comments: AtomicU64,
    /// Churn and reconnect sessions alive.
    pub in_flight: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// State of a steady subscriber, visible to the tail check. On a cache line of its own:
/// the slots of subscribers served by different threads do not share one.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Slot {
    /// 0 pending, 1 connected, 2 failed, 3 closed by the server, 4 stopped.
    pub state: AtomicU8,
    /// The first sequence number it must see.
    pub must_from: AtomicU64,
    /// The newest own sequence number it saw (0: none).
    pub last_seq: AtomicU64,
}

const CONNECTED: u8 = 1;

/// Server samples taken during the run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Samples {
    /// At start.
    pub start: Option<Sample>,
    /// Once all initial clients were connected.
    pub baseline: Option<Sample>,
    /// At the end.
    pub end: Option<Sample>,
    /// Highest RSS seen. **Unit:** KiB.
    pub peak_rss_kib: Option<u64>,
    /// Seconds from start to the baseline sample.
    pub baseline_at_secs: Option<f64>,
    /// Whether all initial clients were resolved when the baseline was taken.
    pub baseline_complete: bool,
}

/// What every task of the run shares.
#[derive(Debug)]
pub struct Rt {
    /// The configuration.
    pub cfg: Config,
    /// The counters.
    pub c: Counters,
    /// Publish → receive latency. **Unit:** microseconds.
    pub latency: Histogram,
    /// Steady subscriber slots.
    pub slots: Vec<Slot>,
    /// Highest sequence number whose publish request was started.
    pub sent_seq: AtomicU64,
    /// Highest sequence number the server acknowledged.
    pub acked_seq: AtomicU64,
    /// Fires at the end of the active phase.
    pub active: Signal,
    /// Fires when everything must stop.
    pub stop: Signal,
    /// Fires once the initial clients are connected and the baseline was sampled.
    pub baseline_taken: Signal,
    /// When the first publish request was sent.
    pub publish_started: Mutex<Option<Instant>>,
    /// Server samples.
    pub samples: Mutex<Samples>,
    /// The first error messages.
    pub errors: Mutex<Vec<String>>,
    /// When the run started.
    pub t0: Instant,
    /// End of the active phase.
    pub active_end: Instant,
    /// The hard end of the run.
    pub end_at: Instant,
    stream_target: String,
    next_dest: AtomicUsize,
    handshakes: (Sender<()>, Receiver<()>),
}

impl Rt {
    /// Shared state for a run of `cfg` starting now.
    pub fn new(cfg: Config) -> Rt {
        let t0 = Instant::now();
        let d = cfg.duration;
        let tail = (d / 10).clamp(Duration::from_millis(1500), Duration::from_secs(5));
        let stream_target =
            http::stream_target_at(&cfg.base.prefix, &cfg.subscribe_path, &cfg.topics);
        Rt {
            slots: (0..cfg.clients).map(|_| Slot::default()).collect(),
            c: Counters::default(),
            latency: Histogram::new(),
            sent_seq: AtomicU64::new(0),
            acked_seq: AtomicU64::new(0),
            active: Signal::default(),
            stop: Signal::default(),
            baseline_taken: Signal::default(),
            publish_started: Mutex::new(None),
            samples: Mutex::new(Samples::default()),
            errors: Mutex::new(Vec::new()),
            t0,
            active_end: t0 + d - tail,
            end_at: t0 + d,
            stream_target,
            next_dest: AtomicUsize::new(0),
            handshakes: async_channel::bounded(MAX_HANDSHAKES),
            cfg,
        }
    }

    /// Whether the tool publishes (own events carry `seq`).
    fn publishing(&self) -> bool {
        self.cfg.publish.is_some()
    }

    /// Whether an event with this type is one of the tool's own: named `soak`, or, when
    /// publishing to nchan (which may not name its events), unnamed.
    fn own_event_name(&self, event: &[u8]) -> bool {
        event == EVENT_NAME.as_bytes()
            || (event.is_empty()
                && self
                    .cfg
                    .publish
                    .as_ref()
                    .is_some_and(|p| p.style == Style::Nchan))
    }

    /// Whether a gap in what a subscriber sees is an error: always for own events; for
    /// server ids (`--no-publish`) only without a topic filter, since ids are global.
    fn count_gaps(&self) -> bool {
        self.publishing() || self.cfg.topics.is_empty()
    }

    /// Keeps an error message for the report (the first few) and logs it.
    fn error(&self, msg: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() < MAX_ERRORS {
            eprintln!("ssehub-soak: {msg}");
            errors.push(msg);
        }
    }

    fn dest(&self) -> SocketAddr {
        let i = self.next_dest.fetch_add(1, Ordering::Relaxed);
        self.cfg.dests[i % self.cfg.dests.len()]
    }

    fn sample_server(&self) -> Option<Sample> {
        let pid = self.cfg.server_pid?;
        match procfs::sample(&pid.to_string()) {
            Ok(s) => {
                let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
                samples.peak_rss_kib = Some(samples.peak_rss_kib.unwrap_or(0).max(s.rss_kib));
                Some(s)
            }
            Err(e) => {
                self.error(format!("cannot sample server pid {pid}: {e}"));
                None
            }
        }
    }

    fn secs(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }
}

/// Connects to the next destination, with the handshake limit and [`IO_TIMEOUT`].
async fn connect(rt: &Rt, stop: &Signal) -> io::Result<TcpStream> {
    connect_to(rt, rt.dest(), stop).await
}

/// Connects to `dest`, with the handshake limit and [`IO_TIMEOUT`].
async fn connect_to(rt: &Rt, dest: SocketAddr, stop: &Signal) -> io::Result<TcpStream> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let gone = || io::Error::new(io::ErrorKind::Interrupted, "stopped");
    match until(rt.handshakes.0.send(()), stop, Some(deadline)).await {
        Some(Ok(())) => {}
        None if !stop.fired() => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "connect {dest}: no handshake slot within 5 s ({MAX_HANDSHAKES} connections still in their handshake)"
                ),
            ));
        }
        _ => return Err(gone()),
    }
    let r = until(TcpStream::connect(dest), stop, Some(deadline)).await;
    let _ = rt.handshakes.1.try_recv();
    match r {
        Some(Ok(s)) => Ok(s),
        Some(Err(e)) => Err(io::Error::new(e.kind(), format!("connect {dest}: {e}"))),
        None if stop.fired() => Err(gone()),
        None => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connect {dest}: timed out"),
        )),
    }
}

/// Writes all of `bytes` within [`IO_TIMEOUT`].
async fn write_timed(s: &mut TcpStream, bytes: &[u8], stop: &Signal) -> io::Result<()> {
    match until(s.write_all(bytes), stop, Some(Instant::now() + IO_TIMEOUT)).await {
        Some(r) => r,
        None => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Why a stream session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The stop signal fired.
    Stopped,
    /// Its planned time was up.
    Deadline,
    /// The server closed the stream (or reset it).
    ServerClosed,
    /// It never got a stream: the reason.
    Failed(String),
}

/// The per-subscriber state that lives across reconnects.
#[derive(Debug)]
pub struct StreamState {
    role: Role,
    parser: Parser,
    checker: SeqChecker,
    /// Own events (or, without publishing, events) seen in the current session.
    events_seen: u64,
}

impl StreamState {
    fn new(role: Role, count_gaps: bool) -> StreamState {
        StreamState {
            role,
            parser: Parser::new(Caps::SMALL),
            checker: SeqChecker::new(count_gaps),
            events_seen: 0,
        }
    }
}

/// Handles what the parser reports for one subscriber.
struct Handler<'a, 's> {
    rt: &'a Rt,
    role: Role,
    checker: &'a mut SeqChecker,
    events_seen: &'a mut u64,
    tally: &'a mut Tally<'s>,
}

impl Handler<'_, '_> {
    fn on(&mut self, item: Item<'_>) {
        let c = &self.rt.c;
        match item {
            Item::Comment(text) => {
                self.tally.comments += 1;
                if text.trim_ascii_start().starts_with(b"missed") && self.role == Role::Reconnect {
                    self.tally.missed_comments += 1;
                }
            }
            Item::Event(e) => {
                let n = if self.rt.publishing() {
                    match payload(e.data).filter(|_| self.rt.own_event_name(e.event)) {
                        Some(p) => {
                            if self.role != Role::Reconnect {
                                self.tally.received += 1;
                                self.rt
                                    .latency
                                    .record(self.tally.now_us.saturating_sub(p.sent_us));
                            }
                            p.seq
                        }
                        None => {
                            self.tally.foreign += 1;
                            return;
                        }
                    }
                } else {
                    if self.role != Role::Reconnect {
                        self.tally.received += 1;
                    }
                    match numeric_id(e.id) {
                        Some(id) => id,
                        None => {
                            self.tally.non_numeric_ids += 1;
                            return;
                        }
                    }
                };
                *self.events_seen += 1;
                let r = &c.roles[self.role as usize];
                let prev = self.checker.last();
                match self.checker.observe(n) {
                    Verdict::InOrder => {}
                    Verdict::Gap(k) => {
                        add(&r.gaps, k);
                        self.rt.error(format!(
                            "{:?} client: {k} missing before {n} (previous {prev:?}, event {} of this connection, id {:?})",
                            self.role,
                            self.events_seen,
                            String::from_utf8_lossy(e.id)
                        ));
                    }
                    Verdict::Duplicate => add(&r.duplicates, 1),
                    Verdict::OutOfOrder { filled } => {
                        add(&r.out_of_order, 1);
                        if filled {
                            r.gaps.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
                self.tally.max_seq = self.tally.max_seq.max(n);
            }
        }
    }
}

/// When a session should end by itself, counted from the moment it got its stream.
#[derive(Debug, Clone, Copy, Default)]
struct Plan {
    /// Not before this long (when set) ...
    min_dwell: Option<Duration>,
    /// ... and only once an event was seen (when true) ...
    need_event: bool,
    /// ... but at the latest after this long.
    max_dwell: Option<Duration>,
}

/// One connection of a subscriber: request, head, then parse until `stop`, the plan's
/// end, or the server's close.
async fn session(
    rt: &Rt,
    st: &mut StreamState,
    last_id: Option<&[u8]>,
    stop: &Signal,
    plan: Plan,
    slot: Option<&Slot>,
    on_connected: impl FnOnce(),
) -> End {
    let mut stream = match connect(rt, stop).await {
        Ok(s) => s,
        Err(_) if stop.fired() => return End::Stopped,
        Err(e) => return End::Failed(e.to_string()),
    };
    let req = http::stream_request(&rt.stream_target, &rt.cfg.base.host, last_id);
    if let Err(e) = write_timed(&mut stream, &req, stop).await {
        return End::Failed(format!("writing the request: {e}"));
    }
    // Read the response head.
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut head_buf = vec![0; READ_BUF];
    let mut filled = 0;
    let head_len = loop {
        if let Some(n) = http::head_len(&head_buf[..filled]) {
            break n;
        }
        if filled == head_buf.len() {
            return End::Failed("response head larger than the read buffer".into());
        }
        match until(stream.read(&mut head_buf[filled..]), stop, Some(deadline)).await {
            Some(Ok(0)) => return End::Failed("connection closed before a response".into()),
            Some(Ok(n)) => filled += n,
            Some(Err(e)) => return End::Failed(format!("reading the response: {e}")),
            None if stop.fired() => return End::Stopped,
            None => return End::Failed("no response head within 5 s".into()),
        }
    };
    let head = match http::parse_head(&head_buf[..head_len]) {
        Ok(h) => h,
        Err(e) => return End::Failed(e),
    };
    let is_sse = head
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"));
    if head.status != 200 || !is_sse {
        let body = String::from_utf8_lossy(&head_buf[head_len..filled]);
        return End::Failed(format!(
            "GET /stream answered {} ({}): {}",
            head.status,
            head.content_type.as_deref().unwrap_or("no content type"),
            body.trim()
        ));
    }
    if rt.publishing() {
        // Everything whose publish starts from now on was published after the server
        // subscribed this client (it sent the head after subscribing).
        let must = rt.sent_seq.load(Ordering::SeqCst) + 1;
        st.checker.must_see_from(must);
        if let Some(slot) = slot {
            slot.must_from.store(must, Ordering::Relaxed);
        }
    }
    st.events_seen = 0;
    on_connected();
    let connected_at = Instant::now();
    let min_until = plan.min_dwell.map(|d| connected_at + d);
    let hard = plan.max_dwell.map(|d| connected_at + d);

    let mut body = Body {
        framing: head.framing,
        dechunker: Dechunker::default(),
        length_left: match head.framing {
            Framing::Length(n) => n,
            _ => 0,
        },
    };
    if head_len < filled {
        let mut tally = Tally::new(slot);
        let end = tally.feed(rt, st, &mut body, &head_buf[head_len..filled]);
        tally.flush(rt);
        if let Some(end) = end {
            return end;
        }
    }
    drop(head_buf);
    let stream: Arc<Async<std::net::TcpStream>> = stream.into();
    // The stop signal's listener is registered once per session (and again only if
    // the task's waker changes); the deadline timer exists only when the plan has one.
    let mut stop_wait = pin!(stop.wait());
    let mut stop_waker: Option<Waker> = None;
    let mut timer: Option<(Timer, Instant)> = None;
    future::poll_fn(|cx| {
        loop {
            // Read while the reactor says the socket is readable: one read syscall per
            // wake-up when it drains the socket (a short read), into the thread's scratch
            // buffer; the parser keeps what spans reads.
            loop {
                match stream.poll_readable(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Err(_)) => return Poll::Ready(End::ServerClosed),
                    Poll::Ready(Ok(())) => {}
                }
                let r = SCRATCH.with_borrow_mut(|buf| -> Result<(), End> {
                    loop {
                        let n = match stream.get_ref().read(buf) {
                            Ok(0) => return Err(End::ServerClosed),
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                            Err(_) => return Err(End::ServerClosed),
                        };
                        let mut tally = Tally::new(slot);
                        let end = tally.feed(rt, st, &mut body, &buf[..n]);
                        tally.flush(rt);
                        if let Some(end) = end {
                            return Err(end);
                        }
                        if n < buf.len() {
                            return Ok(());
                        }
                    }
                });
                if let Err(end) = r {
                    return Poll::Ready(end);
                }
            }
            // Decide how long to wait for more.
            let wait_until = if min_until.is_none() && hard.is_none() {
                None
            } else {
                let now = Instant::now();
                let wait_until = match min_until {
                    Some(m) if now >= m => {
                        if !plan.need_event || st.events_seen > 0 {
                            return Poll::Ready(End::Deadline);
                        }
                        hard
                    }
                    Some(m) => Some(m),
                    None => hard,
                };
                if hard.is_some_and(|h| now >= h) {
                    return Poll::Ready(End::Deadline);
                }
                wait_until
            };
            if stop.fired() {
                return Poll::Ready(End::Stopped);
            }
            if !stop_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                if stop_wait.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(End::Stopped);
                }
                stop_waker = Some(cx.waker().clone());
            }
            let Some(at) = wait_until else {
                return Poll::Pending;
            };
            let (t, t_at) = timer.get_or_insert_with(|| (Timer::at(at), at));
            if *t_at != at {
                t.set_at(at);
                *t_at = at;
            }
            if Pin::new(t).poll(cx).is_pending() {
                return Poll::Pending;
            }
            // The timer fired: the loop decides again (and re-arms it if need be).
            timer = None;
        }
    })
    .await
}

/// Per-thread read buffer of the subscribers: parsing works straight from it, so a
/// subscriber keeps no read buffer of its own. **Unit:** bytes.
const SCRATCH_LEN: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_LEN]);
}

/// How a stream's body is framed, and how far it got.
struct Body {
    framing: Framing,
    dechunker: Dechunker,
    /// Bytes left with `Framing::Length`.
    length_left: u64,
}

/// What the subscriber saw in one batch of bytes, added to the shared counters once.
struct Tally<'a> {
    slot: Option<&'a Slot>,
    /// When the batch was read. **Unit:** microseconds since the Unix epoch.
    now_us: u64,
    received: u64,
    foreign: u64,
    comments: u64,
    missed_comments: u64,
    non_numeric_ids: u64,
    bytes: u64,
    /// Highest sequence number seen in the batch.
    max_seq: u64,
}

impl<'a> Tally<'a> {
    fn new(slot: Option<&'a Slot>) -> Tally<'a> {
        Tally {
            slot,
            now_us: unix_us(),
            received: 0,
            foreign: 0,
            comments: 0,
            missed_comments: 0,
            non_numeric_ids: 0,
            bytes: 0,
            max_seq: 0,
        }
    }

    /// Feeds body bytes to the parser and checks what it reports; `Some` when the body
    /// ended (or was malformed).
    fn feed(
        &mut self,
        rt: &Rt,
        st: &mut StreamState,
        body: &mut Body,
        bytes: &[u8],
    ) -> Option<End> {
        self.bytes += bytes.len() as u64;
        let mut h = Handler {
            rt,
            role: st.role,
            checker: &mut st.checker,
            events_seen: &mut st.events_seen,
            tally: self,
        };
        let parser = &mut st.parser;
        let mut sink = |item: Item<'_>| h.on(item);
        match body.framing {
            Framing::Chunked => {
                if let Err(e) = body
                    .dechunker
                    .feed(bytes, |piece| parser.feed(piece, &mut sink))
                {
                    return Some(End::Failed(format!("bad chunked body: {e}")));
                }
                if body.dechunker.is_done() {
                    return Some(End::ServerClosed);
                }
            }
            Framing::Length(_) => {
                let left = body.length_left;
                let n = bytes.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                parser.feed(&bytes[..n], &mut sink);
                body.length_left = left - n as u64;
                if left == n as u64 {
                    return Some(End::ServerClosed);
                }
            }
            Framing::Close => parser.feed(bytes, &mut sink),
        }
        None
    }

    /// Adds the batch to the shared counters.
    fn flush(&self, rt: &Rt) {
        let c = &rt.c;
        for (counter, n) in [
            (&c.received, self.received),
            (&c.foreign, self.foreign),
            (&c.comments, self.comments),
            (&c.bytes, self.bytes),
        ] {
            if n > 0 {
                counter.add(n);
            }
        }
        for (counter, n) in [
            (&c.missed_comments, self.missed_comments),
            (&c.non_numeric_ids, self.non_numeric_ids),
        ] {
            if n > 0 {
                add(counter, n);
            }
        }
        if let Some(slot) = self.slot.filter(|_| self.max_seq > 0) {
            slot.last_seq.fetch_max(self.max_seq, Ordering::Relaxed);
        }
    }
}

/// A steady subscriber: connects once and reads until the run stops.
async fn steady_client(rt: Arc<Rt>, idx: usize) {
    let slot = &rt.slots[idx];
    let mut st = StreamState::new(Role::Steady, rt.count_gaps());
    let mut connected = false;
    let end = session(
        &rt,
        &mut st,
        None,
        &rt.stop,
        Plan::default(),
        Some(slot),
        || {
            connected = true;
            slot.state.store(CONNECTED, Ordering::Relaxed);
            add(&rt.c.connected, 1);
            add(&rt.c.connected_now, 1);
            add(&rt.c.initial_resolved, 1);
        },
    )
    .await;
    if connected {
        rt.c.connected_now.fetch_sub(1, Ordering::Relaxed);
    }
    let state = match end {
        End::Failed(e) => {
            add(&rt.c.connect_failures, 1);
            add(&rt.c.initial_resolved, 1);
            rt.error(format!("client {idx}: {e}"));
            2
        }
        End::ServerClosed => {
            if !rt.stop.fired() {
                add(&rt.c.dropped, 1);
                rt.error(format!("client {idx}: the server closed the stream"));
            }
            3
        }
        End::Stopped | End::Deadline => 4,
    };
    slot.state.store(state, Ordering::Relaxed);
}

/// A client that sends its request and never reads, until the slow check: then it drains
/// its socket and expects the server's close.
async fn slow_client(rt: Arc<Rt>, idx: usize) {
    let started = async {
        let mut s = connect(&rt, &rt.active).await?;
        let req = http::stream_request(&rt.stream_target, &rt.cfg.base.host, None);
        write_timed(&mut s, &req, &rt.active).await?;
        io::Result::Ok(s)
    }
    .await;
    add(&rt.c.initial_resolved, 1);
    let mut stream = match started {
        Ok(s) => s,
        Err(e) => {
            add(&rt.c.slow_failed, 1);
            add(&rt.c.slow_done, 1);
            rt.error(format!("slow client {idx}: {e}"));
            return;
        }
    };
    add(&rt.c.slow_connected, 1);
    rt.active.wait().await;
    let deadline = (Instant::now() + SLOW_DRAIN).min(rt.end_at - Duration::from_millis(700));
    let mut buf = [0u8; READ_BUF];
    let mut first = Vec::new();
    let mut drained = 0u64;
    let evicted = loop {
        match until(stream.read(&mut buf), &rt.stop, Some(deadline)).await {
            Some(Ok(0)) | Some(Err(_)) => break true,
            Some(Ok(n)) => {
                if first.len() < 12 {
                    first.extend_from_slice(&buf[..n.min(12)]);
                }
                drained += n as u64;
            }
            None => break false,
        }
    };
    add(&rt.c.slow_drained_bytes, drained);
    let ok_head = first.starts_with(b"HTTP/1.1 200") || first.starts_with(b"HTTP/1.0 200");
    if !ok_head {
        add(&rt.c.slow_failed, 1);
        rt.error(format!(
            "slow client {idx}: no 200 response (got {:?})",
            String::from_utf8_lossy(&first)
        ));
    } else if evicted {
        add(&rt.c.slow_evicted, 1);
    } else {
        add(&rt.c.slow_not_evicted, 1);
    }
    add(&rt.c.slow_done, 1);
}

/// Decrements the in-flight session count when a session task ends.
struct InFlight(Arc<Rt>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.c.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn millis(lo: u64, hi: u64) -> Duration {
    Duration::from_millis(fastrand::u64(lo..hi))
}

/// A churn client: connects, reads for 100–500 ms, hangs up.
async fn churn_client(rt: Arc<Rt>) {
    let _guard = InFlight(rt.clone());
    let mut st = StreamState::new(Role::Churn, rt.count_gaps());
    let plan = Plan {
        max_dwell: Some(millis(100, 500)),
        ..Plan::default()
    };
    let end = session(&rt, &mut st, None, &rt.active, plan, None, || {
        add(&rt.c.churn_sessions, 1)
    })
    .await;
    match end {
        End::Failed(e) => {
            add(&rt.c.churn_failed, 1);
            rt.error(format!("churn client: {e}"));
        }
        End::ServerClosed => {
            add(&rt.c.churn_dropped, 1);
            rt.error("churn client: the server closed the stream early".into());
        }
        End::Stopped | End::Deadline => {}
    }
}

/// A reconnecting client: reads until it saw an event, hangs up, waits 100 ms, resumes
/// with `Last-Event-ID` and must continue without a gap.
async fn reconnect_client(rt: Arc<Rt>) {
    let _guard = InFlight(rt.clone());
    add(&rt.c.reconnect_sessions, 1);
    let mut st = StreamState::new(Role::Reconnect, rt.count_gaps());
    let plan = |lo, hi| Plan {
        min_dwell: Some(millis(lo, hi)),
        need_event: true,
        max_dwell: Some(Duration::from_secs(3)),
    };
    let first = session(&rt, &mut st, None, &rt.active, plan(300, 800), None, || {}).await;
    match first {
        End::Deadline => {}
        End::Stopped => return,
        End::Failed(e) => {
            add(&rt.c.reconnect_failed, 1);
            rt.error(format!("reconnect client: {e}"));
            return;
        }
        End::ServerClosed => {
            add(&rt.c.reconnect_failed, 1);
            rt.error("reconnect client: the server closed the stream".into());
            return;
        }
    }
    let last_id = st.parser.last_id().to_vec();
    if last_id.is_empty() || st.events_seen == 0 {
        add(&rt.c.reconnect_no_id, 1);
        return;
    }
    if !sleep_until(Instant::now() + Duration::from_millis(100), &rt.active).await {
        return;
    }
    st.parser.reconnect();
    let second = session(
        &rt,
        &mut st,
        Some(&last_id),
        &rt.active,
        plan(200, 600),
        None,
        || add(&rt.c.reconnects, 1),
    )
    .await;
    if st.events_seen > 0 {
        add(&rt.c.reconnects_checked, 1);
    }
    match second {
        End::Failed(e) => {
            add(&rt.c.reconnect_failed, 1);
            rt.error(format!("reconnect client (resuming): {e}"));
        }
        End::ServerClosed => {
            add(&rt.c.reconnect_failed, 1);
            rt.error("reconnect client: the server closed the resumed stream".into());
        }
        _ => {}
    }
}

/// Spawns `task` `rate` times per second until the active phase ends.
async fn spawner<F, Fut>(rt: Arc<Rt>, ex: Arc<Executor<'static>>, rate: f64, task: F)
where
    F: Fn(Arc<Rt>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if rate <= 0.0 {
        return;
    }
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut next = Instant::now();
    loop {
        next += interval;
        if !sleep_until(next, &rt.active).await {
            return;
        }
        if get(&rt.c.in_flight) < MAX_SESSIONS {
            add(&rt.c.in_flight, 1);
            ex.spawn(task(rt.clone())).detach();
        }
    }
}

/// Connects the initial clients (slow ones first, so that they have the longest time to
/// be evicted), takes the baseline sample, then starts churn and reconnects.
async fn connector(rt: Arc<Rt>, ex: Arc<Executor<'static>>) {
    let total = rt.cfg.slow + rt.cfg.clients;
    let start = Instant::now();
    for i in 0..total {
        if rt.cfg.connect_rate > 0.0 {
            let due = start + Duration::from_secs_f64(i as f64 / rt.cfg.connect_rate);
            if !sleep_until(due, &rt.active).await {
                break;
            }
        } else if rt.active.fired() {
            break;
        }
        if i < rt.cfg.slow {
            ex.spawn(slow_client(rt.clone(), i)).detach();
        } else {
            ex.spawn(steady_client(rt.clone(), i - rt.cfg.slow))
                .detach();
        }
        if i % 64 == 63 {
            futures_lite::future::yield_now().await;
        }
    }
    let mut complete = false;
    while !rt.active.fired() {
        if get(&rt.c.initial_resolved) >= total as u64 {
            complete = true;
            break;
        }
        sleep_until(Instant::now() + Duration::from_millis(20), &rt.active).await;
    }
    let baseline = rt.sample_server();
    {
        let mut s = rt.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.baseline = baseline;
        s.baseline_at_secs = Some(rt.secs());
        s.baseline_complete = complete;
    }
    rt.baseline_taken.fire();
    if rt.active.fired() {
        return;
    }
    let churn = ex.spawn(spawner(rt.clone(), ex.clone(), rt.cfg.churn, churn_client));
    let reconnect = ex.spawn(spawner(
        rt.clone(),
        ex.clone(),
        rt.cfg.reconnect,
        reconnect_client,
    ));
    churn.await;
    reconnect.await;
}

/// The publish answer of ssehub.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    delivered_to: u64,
}

/// The publish request body.
#[derive(Debug, Serialize)]
struct PublishBody<'a> {
    data: &'a str,
    event: &'a str,
    topic: &'a str,
}

/// The event data for `seq`: `{"seq":N,"sent_us":M,"pad":"xx…"}` padded to `size` bytes.
pub fn event_data(seq: u64, sent_us: u64, size: usize) -> String {
    let base = format!("{{\"seq\":{seq},\"sent_us\":{sent_us},\"pad\":\"\"}}");
    let pad = size.saturating_sub(base.len());
    let mut s = String::with_capacity(base.len() + pad);
    s.push_str(&base[..base.len() - 2]);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str("\"}");
    s
}

/// Sends one request on a keep-alive connection and reads the answer: (status, body,
/// whether the server closes the connection).
async fn exchange(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    req: &[u8],
) -> io::Result<(u16, Vec<u8>, bool)> {
    s.write_all(req).await?;
    let mut chunk = [0u8; 4096];
    let head_len = loop {
        if let Some(n) = http::head_len(buf) {
            break n;
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::other("response head too large"));
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = http::parse_head(&buf[..head_len]).map_err(io::Error::other)?;
    buf.drain(..head_len);
    let mut body = Vec::new();
    match head.framing {
        Framing::Length(n) => {
            let n = usize::try_from(n).map_err(io::Error::other)?;
            while buf.len() < n {
                let k = s.read(&mut chunk).await?;
                if k == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..k]);
            }
            body.extend(buf.drain(..n));
        }
        Framing::Chunked => {
            let mut d = Dechunker::default();
            loop {
                d.feed(buf, |p| body.extend_from_slice(p))
                    .map_err(io::Error::other)?;
                buf.clear();
                if d.is_done() {
                    break;
                }
                let k = s.read(&mut chunk).await?;
                if k == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..k]);
            }
        }
        Framing::Close => {
            body.append(buf);
            loop {
                let k = s.read(&mut chunk).await?;
                if k == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..k]);
            }
        }
    }
    Ok((
        head.status,
        body,
        head.close || head.framing == Framing::Close,
    ))
}

/// Whether a publish answer with `status` means the event was published.
fn accepted(style: Style, status: u16) -> bool {
    match style {
        Style::Ssehub => status == 200,
        Style::Nchan => (200..300).contains(&status),
    }
}

/// The publisher: one keep-alive connection, one request at a time, at the set rate.
async fn publisher(rt: Arc<Rt>) {
    let Some(p) = rt.cfg.publish.clone() else {
        return;
    };
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::new();
    let mut seq = 1u64;
    let start = Instant::now();
    let mut attempts = 0u64;
    if p.wait_connected {
        until(rt.baseline_taken.wait(), &rt.active, None).await;
        if rt.active.fired() {
            return;
        }
    }
    let start = if p.wait_connected {
        Instant::now()
    } else {
        start
    };
    *rt.publish_started.lock().unwrap_or_else(|e| e.into_inner()) = Some(start);
    while !rt.active.fired() {
        if let Rate::PerSec(r) = p.rate {
            let due = start + Duration::from_secs_f64(attempts as f64 / r);
            if due > Instant::now() && !sleep_until(due, &rt.active).await {
                break;
            }
        }
        attempts += 1;
        let stream = match &mut conn {
            Some(s) => s,
            None => match match p.addr {
                Some(addr) => connect_to(&rt, addr, &rt.active).await,
                None => connect(&rt, &rt.active).await,
            } {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    buf.clear();
                    conn.insert(s)
                }
                Err(e) => {
                    if !rt.active.fired() {
                        add(&rt.c.publish_errors, 1);
                        rt.error(format!("publisher: {e}"));
                        sleep_until(Instant::now() + Duration::from_millis(200), &rt.active).await;
                    }
                    continue;
                }
            },
        };
        rt.sent_seq.store(seq, Ordering::SeqCst);
        let data = event_data(seq, unix_us(), p.body_size);
        let body = match p.style {
            Style::Ssehub => serde_json::to_vec(&PublishBody {
                data: &data,
                event: EVENT_NAME,
                topic: &p.topic,
            })
            .unwrap_or_default(),
            Style::Nchan => data.into_bytes(),
        };
        let req = http::post_json(&p.target, &p.host, p.token.as_deref(), &body);
        // The request in flight is finished even when the phase ends (bounded by the
        // timeout), so that the acknowledged sequence number is exact.
        let answer = exchange(stream, &mut buf, &req)
            .or(async {
                Timer::after(IO_TIMEOUT).await;
                Err(io::ErrorKind::TimedOut.into())
            })
            .await;
        match answer {
            Ok((status, body, close)) if accepted(p.style, status) => {
                add(&rt.c.published, 1);
                rt.acked_seq.store(seq, Ordering::SeqCst);
                if let Ok(a) = serde_json::from_slice::<Answer>(&body) {
                    add(&rt.c.delivered_to, a.delivered_to);
                }
                seq += 1;
                if close {
                    conn = None;
                }
            }
            Ok((status, body, close)) => {
                // Not published: the same seq is used again.
                add(&rt.c.publish_errors, 1);
                rt.error(format!(
                    "publisher: POST {} answered {status}: {}",
                    p.target,
                    String::from_utf8_lossy(&body).trim()
                ));
                if close {
                    conn = None;
                }
                sleep_until(Instant::now() + Duration::from_millis(100), &rt.active).await;
            }
            Err(e) => {
                // Unknown whether it was published: the same seq is used again (a
                // subscriber may then see a duplicate, reported as such).
                add(&rt.c.publish_errors, 1);
                rt.error(format!("publisher: {e}"));
                conn = None;
            }
        }
    }
}

/// Prints a progress line every `--progress` seconds.
async fn progress(rt: Arc<Rt>) {
    let every = rt.cfg.progress;
    if every.is_zero() {
        return;
    }
    let mut next = Instant::now();
    let (mut last_pub, mut last_recv) = (0, 0);
    loop {
        next += every;
        if !sleep_until(next, &rt.stop).await {
            return;
        }
        let c = &rt.c;
        let (published, received) = (get(&c.published), c.received.get());
        let secs = every.as_secs_f64();
        let roles = |f: fn(&PerRole) -> &AtomicU64| c.roles.iter().map(|r| get(f(r))).sum::<u64>();
        let server = rt
            .sample_server()
            .map(|s| {
                format!(
                    " | server rss {} KiB cpu {:.2} s fds {}",
                    s.rss_kib, s.cpu_secs, s.fds
                )
            })
            .unwrap_or_default();
        eprintln!(
            "[{:6.1}s] clients {}/{} slow {}/{} | pub {} ({:.0}/s) err {} | recv {} ({:.0}/s) | gaps {} dup {} ooo {} | p50 {:.2} p99 {:.2} max {:.2} ms | churn {} reconnects {}{}",
            rt.secs(),
            get(&c.connected_now),
            rt.cfg.clients,
            get(&c.slow_connected),
            rt.cfg.slow,
            published,
            (published - last_pub) as f64 / secs,
            get(&c.publish_errors),
            received,
            (received - last_recv) as f64 / secs,
            roles(|r| &r.gaps),
            roles(|r| &r.duplicates),
            roles(|r| &r.out_of_order),
            rt.latency.quantile(0.5) as f64 / 1000.0,
            rt.latency.quantile(0.99) as f64 / 1000.0,
            rt.latency.max() as f64 / 1000.0,
            get(&c.churn_sessions),
            get(&c.reconnects),
            server,
        );
        (last_pub, last_recv) = (published, received);
    }
}

/// What the tail phase found.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tail {
    /// The last acknowledged sequence number.
    pub final_seq: u64,
    /// Own events connected steady clients had still not received at the end.
    pub missing: u64,
    /// Steady clients that had not caught up.
    pub behind: u64,
    /// Seconds from the end of the active phase until all caught up (if they did).
    pub caught_up_after_secs: Option<f64>,
    /// Steady clients still connected at the end.
    pub connected_at_end: u64,
}

/// Sums what connected steady clients still miss of `final_seq`: (events, clients).
fn behind(rt: &Rt, final_seq: u64) -> (u64, u64) {
    let (mut missing, mut clients) = (0, 0);
    for s in &rt.slots {
        if s.state.load(Ordering::Relaxed) != CONNECTED {
            continue;
        }
        let must = s.must_from.load(Ordering::Relaxed);
        let last = s.last_seq.load(Ordering::Relaxed);
        let have = last.max(must.saturating_sub(1));
        if must <= final_seq && have < final_seq {
            missing += final_seq - have;
            clients += 1;
        }
    }
    (missing, clients)
}

/// Runs the publisher on a thread of its own and returns a future that completes when it
/// has finished. On the executor it shared a queue with every subscriber's reader, so with
/// 1,000 subscribers "publish again as soon as the answer arrives" waited behind the
/// readers woken by the previous event: the tool, not the server, set the pace. (Should the
/// thread not start, it runs on the executor as before.)
fn spawn_publisher(rt: Arc<Rt>) -> impl Future<Output = ()> + Send + 'static {
    let (done_tx, done_rx) = async_channel::bounded::<()>(1);
    let thread_rt = rt.clone();
    let started = std::thread::Builder::new()
        .name("soak-publisher".into())
        .spawn(move || {
            async_io::block_on(publisher(thread_rt));
            drop(done_tx);
        });
    let fallback = match started {
        Ok(_) => None,
        Err(e) => {
            rt.error(format!(
                "publisher thread: {e}; publishing from the executor"
            ));
            Some(publisher(rt))
        }
    };
    async move {
        match fallback {
            Some(fut) => fut.await,
            None => {
                let _ = done_rx.recv().await;
            }
        }
    }
}

/// Runs the whole soak test; returns the tail findings.
pub async fn run(rt: Arc<Rt>, ex: Arc<Executor<'static>>) -> Tail {
    let start = rt.sample_server();
    rt.samples.lock().unwrap_or_else(|e| e.into_inner()).start = start;
    let publisher = spawn_publisher(rt.clone());
    ex.spawn(progress(rt.clone())).detach();
    let connector = ex.spawn(connector(rt.clone(), ex.clone()));

    Timer::at(rt.active_end).await;
    rt.active.fire();
    let tail_start = Instant::now();
    let _ = until(
        publisher,
        &rt.stop,
        Some(rt.end_at - Duration::from_millis(1200)),
    )
    .await;
    let _ = until(
        connector,
        &rt.stop,
        Some(rt.end_at - Duration::from_millis(1200)),
    )
    .await;
    let final_seq = rt.acked_seq.load(Ordering::SeqCst);
    let wait_end = rt.end_at - Duration::from_millis(600);
    let mut caught_up_after = None;
    loop {
        let sessions_done = get(&rt.c.in_flight) == 0;
        let slow_done = get(&rt.c.slow_done) >= (rt.cfg.slow as u64);
        let caught_up = !rt.publishing() || behind(&rt, final_seq).1 == 0;
        if caught_up && caught_up_after.is_none() {
            caught_up_after = Some(tail_start.elapsed().as_secs_f64());
        }
        if (sessions_done && slow_done && caught_up) || Instant::now() >= wait_end {
            break;
        }
        Timer::after(Duration::from_millis(25)).await;
    }
    let (missing, behind_clients) = if rt.publishing() {
        behind(&rt, final_seq)
    } else {
        (0, 0)
    };
    // Let the server notice the hang-ups of the last churn clients before sampling.
    Timer::at(
        (Instant::now() + Duration::from_millis(200)).min(rt.end_at - Duration::from_millis(300)),
    )
    .await;
    let end = rt.sample_server();
    rt.samples.lock().unwrap_or_else(|e| e.into_inner()).end = end;
    let connected_at_end = get(&rt.c.connected_now);
    rt.stop.fire();
    Tail {
        final_seq,
        missing,
        behind: behind_clients,
        caught_up_after_secs: caught_up_after,
        connected_at_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_data_is_padded_json() {
        let d = event_data(7, 123, 0);
        assert_eq!(d, r#"{"seq":7,"sent_us":123,"pad":""}"#);
        let d = event_data(7, 123, 100);
        assert_eq!(d.len(), 100);
        let v: serde_json::Value = serde_json::from_str(&d).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(payload(d.as_bytes()).unwrap().sent_us, 123);
    }

    #[test]
    fn publish_answers_and_own_events() {
        assert!(accepted(Style::Ssehub, 200));
        assert!(!accepted(Style::Ssehub, 202));
        assert!(accepted(Style::Nchan, 201) && accepted(Style::Nchan, 202));
        assert!(!accepted(Style::Nchan, 403) && !accepted(Style::Nchan, 199));

        let rt = |args: &[&str]| match crate::args::parse(args.iter().copied()) {
            Ok(crate::args::Command::Run(c)) => Rt::new(*c),
            other => panic!("{other:?}"),
        };
        let ssehub = rt(&["--duration", "5"]);
        assert!(ssehub.own_event_name(b"soak"));
        assert!(!ssehub.own_event_name(b"") && !ssehub.own_event_name(b"tick"));
        assert_eq!(ssehub.stream_target, "/stream");
        let nchan = rt(&[
            "--duration",
            "5",
            "--publish-style",
            "nchan",
            "--subscribe-path",
            "/sub",
        ]);
        assert!(nchan.own_event_name(b"soak") && nchan.own_event_name(b""));
        assert!(!nchan.own_event_name(b"tick"));
        assert_eq!(nchan.stream_target, "/sub");
    }
}
