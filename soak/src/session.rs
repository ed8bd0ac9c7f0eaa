//! One subscriber connection: the request, the response head, then every event checked
//! as it is parsed, until the stop signal, the session's [`Plan`] or the server ends it.

use std::cell::RefCell;
use std::io::{self, Read};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, Future, future};

use crate::check::{RESET_EVENT, SeqChecker, Verdict, payload, reset_reason, seq_of};
use crate::cluster::StreamExtra;
use crate::counters::{Role, Slot, add};
use crate::dial::{IO_TIMEOUT, READ_BUF, write_timed};
use crate::http::{self, Dechunker, Framing};
use crate::runtime::Rt;
use crate::signal::{Signal, unix_us, until};
use crate::sse::{Caps, Item, Parser};

/// Why a stream session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
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
pub(crate) struct StreamState {
    role: Role,
    /// The event-stream parser; it keeps the last event id across reconnects.
    pub(crate) parser: Parser,
    checker: SeqChecker,
    /// Own events (or, without publishing, events) seen in the current session.
    pub(crate) events_seen: u64,
    /// Whether the current session resumed with a `Last-Event-ID` (only such a stream
    /// may start with a reset event, other than `lost`).
    resumed: bool,
    /// Its node, the order digest (`cluster.rs`).
    pub(crate) extra: StreamExtra,
}

impl StreamState {
    pub(crate) fn new(role: Role, count_gaps: bool) -> StreamState {
        StreamState {
            role,
            parser: Parser::new(Caps::SMALL),
            checker: SeqChecker::new(count_gaps),
            events_seen: 0,
            resumed: false,
            extra: StreamExtra::default(),
        }
    }
}

/// Handles what the parser reports for one subscriber.
struct Handler<'a, 's> {
    rt: &'a Rt,
    role: Role,
    resumed: bool,
    checker: &'a mut SeqChecker,
    events_seen: &'a mut u64,
    extra: &'a mut StreamExtra,
    tally: &'a mut Tally<'s>,
}

impl Handler<'_, '_> {
    fn on(&mut self, item: Item<'_>) {
        let c = &self.rt.c;
        match item {
            Item::Comment(_) => self.tally.comments += 1,
            Item::Event(e) if e.event == RESET_EVENT => {
                // The server could not continue where this stream left off, and says so:
                // a gap before the next event is announced, not silent.
                let reason = reset_reason(e.data);
                add(&c.resets[reason.index()], 1);
                let lost = self.rt.cluster.on_reset(self.role, self.extra, reason);
                if !self.resumed && !lost {
                    add(&c.unexpected_resets, 1);
                    self.rt.error(format!(
                        "{:?} client: a reset event on a stream that sent no Last-Event-ID: {}",
                        self.role,
                        String::from_utf8_lossy(e.data)
                    ));
                }
                self.checker.announce();
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
                    // Ids are opaque: order is checked on the demo events' `seq`.
                    match seq_of(e.data) {
                        Some(seq) => seq,
                        None => {
                            self.tally.unsequenced += 1;
                            return;
                        }
                    }
                };
                *self.events_seen += 1;
                let r = &c.roles[self.role as usize];
                let prev = self.checker.last();
                let expected = self.checker.expected();
                // Refused publishes that may not have been published are not missing.
                let optional = |k: u64| k - self.rt.cluster.optional_in(expected, n).min(k);
                match self.checker.observe(n) {
                    Verdict::InOrder => {}
                    Verdict::Gap(k) if optional(k) == 0 => {}
                    Verdict::Gap(k) => {
                        let k = optional(k);
                        add(&r.gaps, k);
                        self.rt.error(format!(
                            "{:?} client: {k} missing before {n} (previous {prev:?}, event {} of this connection, id {:?})",
                            self.role,
                            self.events_seen,
                            String::from_utf8_lossy(e.id)
                        ));
                    }
                    Verdict::AnnouncedGap(k) => add(&r.announced_gaps, optional(k)),
                    Verdict::Duplicate if self.rt.restart.is_ambiguous(n) => {
                        // Published again after a restart cut its answer off.
                        add(&self.rt.restart.duplicates, 1);
                    }
                    Verdict::Duplicate => {
                        add(&r.duplicates, 1);
                        let at = self.rt.cluster.disorder(
                            self.role,
                            self.extra,
                            "a duplicate",
                            n,
                            prev,
                            e.id,
                        );
                        self.rt.error(at);
                    }
                    Verdict::OutOfOrder { filled } => {
                        add(&r.out_of_order, 1);
                        let at = self.rt.cluster.disorder(
                            self.role,
                            self.extra,
                            "out of order",
                            n,
                            prev,
                            e.id,
                        );
                        self.rt.error(at);
                        if filled {
                            // (Saturating: the gap it fills may have been an announced one.)
                            let _ =
                                r.gaps
                                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |g| {
                                        Some(g.saturating_sub(1))
                                    });
                        }
                    }
                }
                if let Err(e) = self.rt.cluster.on_event(self.role, self.extra, n, e.id) {
                    self.rt.error(e);
                }
                self.tally.max_seq = self.tally.max_seq.max(n);
            }
        }
    }
}

/// When a session should end by itself, counted from the moment it got its stream.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Plan {
    /// Not before this long (when set) ...
    pub(crate) min_dwell: Option<Duration>,
    /// ... and only once an event was seen (when true) ...
    pub(crate) need_event: bool,
    /// ... but at the latest after this long.
    pub(crate) max_dwell: Option<Duration>,
}

/// One connection of a subscriber: request, head, then parse until `stop`, the plan's
/// end, or the server's close.
pub(crate) async fn session(
    rt: &Rt,
    st: &mut StreamState,
    last_id: Option<&[u8]>,
    stop: &Signal,
    plan: Plan,
    slot: Option<&Slot>,
    on_connected: impl FnOnce(),
) -> End {
    let mut stream = match rt.cluster.connect(&rt.dial, st.extra.node, stop).await {
        Ok(s) => s,
        Err(_) if stop.fired() => return End::Stopped,
        Err(e) => return End::Failed(e.to_string()),
    };
    st.resumed = last_id.is_some();
    let req = rt.cluster.stream_request(st.extra.node, last_id);
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
        // (Only before the first event: a stream that resumes must continue from it.)
        if let Some(slot) = slot.filter(|_| !st.checker.started()) {
            slot.must_from.store(must, Ordering::Relaxed);
        }
        st.checker.must_see_from(must);
    }
    st.events_seen = 0;
    rt.cluster
        .count_connected(st.role, st.extra.node, st.resumed);
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
    unsequenced: u64,
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
            unsequenced: 0,
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
            resumed: st.resumed,
            checker: &mut st.checker,
            events_seen: &mut st.events_seen,
            extra: &mut st.extra,
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
        if self.unsequenced > 0 {
            add(&c.unsequenced, self.unsequenced);
        }
        if let Some(slot) = self.slot.filter(|_| self.max_seq > 0) {
            slot.last_seq.fetch_max(self.max_seq, Ordering::Relaxed);
        }
    }
}
