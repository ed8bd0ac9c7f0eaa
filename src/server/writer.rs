//! The subscriber's writer: moves frames from its bounded queue to its socket.
//!
//! One [`Writer`] runs per subscriber, inside that connection's task. It is a hand-written
//! future because it lives as long as the stream and every byte of its state is paid once
//! per subscriber: the state is a few pointers, the batch, a cursor and one timer.
//!
//! # States
//!
//! - **Waiting**: polls the queue for a frame and, in the same poll, the socket's read
//!   side, so a client that hangs up is noticed at once, not at the next heartbeat. Up to
//!   [`STREAM_READ_ALLOWANCE`] bytes a client sends after its request are read and
//!   dropped; past it the stream ends ([`Reason::UnexpectedInput`]). A read error is a hang-up
//!   ([`Reason::HungUp`]). End of stream is a hang-up or a half-close (`nc -q`,
//!   `shutdown(SHUT_WR)`: the client still reads), and TCP cannot tell them apart without
//!   writing: the writer sends a probe (an empty comment line, which SSE clients ignore)
//!   and another after [`PROBE_DELAY`]. A peer that is gone answers the first with a
//!   reset, so the second fails and the subscriber is removed; a half-closed client takes
//!   both and keeps its stream.
//! - **Writing**: once a frame arrives, everything else already queued (up to
//!   [`MAX_WRITE_BATCH`] frames) joins the batch, and the batch goes out in vectored
//!   writes, the slices built on the stack inside `poll`. A write that completes at once
//!   costs no timer; one that has to wait arms the write deadline and tells the hub the
//!   client's socket is full (publish pacing then does not wait for this subscriber),
//!   and if no byte moves before the deadline passes, the subscriber is evicted
//!   ([`Reason::WriteTimeout`]).
//! - **Direct writes**: while the writer waits with an empty queue, the hub may write a
//!   frame to the socket itself (see the hub's "Direct writes"). The writer then takes
//!   frames with [`Subscription::poll_next`], which also yields the rest of a frame such a
//!   write could not put out whole, and before writing anything checks with
//!   [`Subscription::poll_own`] that no direct write holds the socket.
//! - **Budget**: one poll writes at most [`WRITE_BATCHES_PER_POLL`] batches, then
//!   yields, so one subscriber cannot keep its thread from the others.
//! - **Handover**: when a handover pauses the hub, the writer stops at its next poll,
//!   wherever it stands ([`Writer::stopped_for_handover`]); what it still owed the
//!   socket ([`Writer::into_owed`]) travels with the stream. A resting stream has no
//!   writer: the pause wakes it like a frame would, and the writer started for it stops
//!   at once the same way.
//! - **Idle**: with nothing owed, no timer armed, the read side open and no notice due,
//!   a writer that [may rest](Writer::may_rest) returns [`Stop::Idle`] instead of
//!   waiting: the stream then rests without a task (see `rest.rs`) and a new writer
//!   ([`Writer::resume`]) starts when something wakes it. A writer that wrote within
//!   [`REST_AFTER`] (other than its first run) waits first, for a tick of the server's
//!   rest clock (`rest_clock.rs`: one timer for every writer, not one each), so a busy
//!   stream does not rest and wake for every burst.
//! - **Done**: the queue reports closed once drained (hub shutdown, or eviction on a full
//!   queue), a write failed, or the deadline passed; the future returns the [`Reason`].

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::Timer;

use super::rest_clock::RestClock;
use super::socket::Conn;
use crate::hub::Subscription;
use crate::sse::{Frame, PROBE};
use crate::stats::{Reason, Stats};

/// Most frames handed to the kernel in one vectored write.
pub const MAX_WRITE_BATCH: usize = 64;

/// Bytes a client may send on an open stream, after its request, before the stream is
/// ended ([`Reason::UnexpectedInput`]). **Default:** 4 KiB. **Unit:** bytes. **Why:** a
/// client has nothing to send on an open stream; a few stray bytes (a CRLF after the
/// head, a proxy's keep-alive) are tolerated, and a flood costs at most a few reads
/// before it ends, so it can never hold the writer thread the other subscribers share.
pub const STREAM_READ_ALLOWANCE: usize = 4096;

/// Bytes read (and dropped) per read call on the client's read side.
const SINK_BYTES: usize = 512;

/// Most batches one writer writes in one poll before it yields to the other tasks of
/// its thread. **Unit:** batches of up to [`MAX_WRITE_BATCH`] frames. **Why:** a
/// subscriber whose socket always takes data while a fast publisher keeps its queue
/// full would otherwise keep the thread in one poll.
pub const WRITE_BATCHES_PER_POLL: usize = 4;

/// How long a writer (past its first run) must have written nothing before its stream
/// rests. **Default:** 1 s. **Why:** resting and waking cost a few system calls and a
/// task each time (the read side moves between the server's epoll set and the
/// reactor): with a publisher at full speed, writers that rested between bursts took
/// 15–20 % more CPU per delivered event (W2, 1,000 subscribers, two A/B pairs on a busy
/// machine); one quiet for a second is idle.
pub const REST_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Time between the two probes sent when the read side reaches end of stream.
pub const PROBE_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// Why a writer returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The stream ended.
    End(Reason),
    /// Nothing to write and nothing to wait for but a frame or the client's read side:
    /// the stream may rest without a task (only a writer that [may rest](Writer::may_rest)).
    Idle,
    /// A [first run](Writer::first_run) wrote what it could and has more to do, or
    /// would wait for something else than a frame or the read side: the stream goes on
    /// in a writer of the stream executor.
    Busy,
}

/// Where the writer stands on the client's read side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadSide {
    /// Still open: watch it.
    Open,
    /// End of stream seen, first probe sent; the second goes out when the timer fires.
    Probing,
    /// Half-closed and still reading: stop watching.
    HalfClosed,
}

/// The writer loop of one subscriber, as a future that yields why the stream ended.
#[derive(Debug)]
pub(super) struct Writer<'a, S> {
    stream: &'a mut S,
    sub: &'a Subscription,
    stats: &'a Stats,
    /// How long one write may wait for the socket.
    write_timeout: std::time::Duration,
    /// A writer whose last write was this recent is busy: it yields once before its
    /// next write to gather more frames into it (`--batch-window`; zero: never).
    batch_window: std::time::Duration,
    /// Frames to write; `batch[idx..]` are still owed, the first from byte `off`.
    batch: Vec<Frame>,
    idx: usize,
    off: usize,
    /// The write deadline, armed only while a write waits (`armed`); while probing, the
    /// second probe's time.
    deadline: Timer,
    armed: bool,
    /// The server's rest clock, and the tick at which this writer last asked it for a
    /// wake-up (see [`REST_AFTER`]).
    clock: &'a RestClock,
    rest_asked: Option<u64>,
    read_side: ReadSide,
    /// Frames arrived and the writer yielded once before writing them (see `poll`).
    deferred: bool,
    /// When the last batch went out.
    last_write: Option<Instant>,
    /// Bytes the client has sent since the stream started (see
    /// [`STREAM_READ_ALLOWANCE`]).
    received: u32,
    /// A frame of the server's own due at a time (the `token-expiring` event); boxed,
    /// so a stream without one pays a pointer.
    notice: Option<Box<(Timer, Frame, Instant)>>,
    /// It stopped because a handover paused the hub.
    handover: bool,
    /// Whether the writer returns [`Stop::Idle`] when it would only wait.
    may_rest: bool,
    /// The stream's first run, in the connection's request task: never waits but to
    /// finish a write (see [`Writer::first_run`]).
    first_run: bool,
    /// Read the client's side once without asking the reactor first: a writer resumed
    /// after its stream rested has no registration that could say it is readable (the
    /// wake-up may have been the read side's).
    read_first: bool,
}

impl<'a, S: Conn> Writer<'a, S> {
    /// A writer that first writes `preamble`, then the subscriber's replay backlog, then
    /// whatever arrives on its queue.
    pub(super) fn new(
        stream: &'a mut S,
        sub: &'a mut Subscription,
        preamble: Frame,
        stats: &'a Stats,
        clock: &'a RestClock,
        limits: &crate::config::Limits,
    ) -> Self {
        let backlog = sub.take_backlog();
        let mut batch = Vec::with_capacity(backlog.len() + 1);
        if !preamble.is_empty() {
            // (A stream handed over with nothing owed resumes with an empty one.)
            batch.push(preamble);
        }
        batch.extend(backlog);
        Writer::with_batch(stream, sub, stats, clock, limits, batch, 0)
    }

    /// A writer for a stream that rested: nothing owed, `received` bytes of the client's
    /// allowance already spent.
    pub(super) fn resume(
        stream: &'a mut S,
        sub: &'a Subscription,
        stats: &'a Stats,
        clock: &'a RestClock,
        limits: &crate::config::Limits,
        received: u32,
    ) -> Self {
        let mut w = Writer::with_batch(stream, sub, stats, clock, limits, Vec::new(), received);
        w.read_first = true;
        w
    }

    fn with_batch(
        stream: &'a mut S,
        sub: &'a Subscription,
        stats: &'a Stats,
        clock: &'a RestClock,
        limits: &crate::config::Limits,
        batch: Vec<Frame>,
        received: u32,
    ) -> Self {
        Writer {
            stream,
            sub,
            stats,
            write_timeout: limits.write_timeout,
            batch_window: limits.batch_window,
            batch,
            idx: 0,
            off: 0,
            deadline: Timer::never(),
            armed: false,
            clock,
            rest_asked: None,
            read_side: ReadSide::Open,
            deferred: false,
            last_write: None,
            received,
            notice: None,
            handover: false,
            may_rest: false,
            first_run: false,
            read_first: false,
        }
    }

    /// Whether it stopped because a handover paused the hub (its output is then
    /// `Stop::End(Reason::Shutdown)`, which the caller does not count).
    pub(super) fn stopped_for_handover(&self) -> bool {
        self.handover
    }

    /// What the socket is still owed, in order: the rest of the frame written in part,
    /// the frames after it in the batch; and the `token-expiring` notice still due.
    pub(super) fn into_owed(self) -> (Vec<u8>, Option<(Instant, Frame)>) {
        let mut owed = Vec::new();
        for (i, frame) in self.batch.iter().enumerate().skip(self.idx) {
            let from = if i == self.idx { self.off } else { 0 };
            owed.extend_from_slice(frame.as_bytes().get(from..).unwrap_or(&[]));
        }
        let notice = self.notice.map(|n| {
            let (_, frame, at) = *n;
            (at, frame)
        });
        (owed, notice)
    }

    /// Counts `received` bytes of the client's allowance as spent already (a writer
    /// started again after a handover rolled back).
    pub(super) fn spent(&mut self, received: u32) {
        self.received = received;
    }

    /// Writes `frame` before anything else (what a handover that rolled back left
    /// owed); an empty one is nothing.
    pub(super) fn owe(&mut self, frame: Frame) {
        if !frame.is_empty() {
            self.batch.insert(0, frame);
        }
    }

    /// Lets the writer return [`Stop::Idle`] when it would only wait (see "Idle").
    pub(super) fn may_rest(&mut self) {
        self.may_rest = true;
    }

    /// Makes this the stream's first run, in the task that answered its request: it
    /// writes the preamble and backlog (and what is already queued, within one poll's
    /// budget), then returns [`Stop::Idle`] or [`Stop::Busy`] rather than waiting for
    /// frames, and does not hold frames back to batch them. So a burst of new streams
    /// never piles up writer tasks: most go from their request straight to rest.
    pub(super) fn first_run(&mut self) {
        self.first_run = true;
        self.batch_window = std::time::Duration::ZERO;
    }

    /// Bytes the client has sent since the stream started.
    pub(super) fn received(&self) -> u32 {
        self.received
    }

    /// Whether an idle writer may rest now: on its first run, or after [`REST_AFTER`]
    /// without a write. Otherwise the rest clock wakes it at its next tick, to look
    /// again: asked once, and again only once that tick has passed, so a busy writer
    /// costs one push per tick, and no timer of its own.
    fn quiet_long_enough(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(last) = self.last_write.filter(|_| !self.first_run) else {
            return true;
        };
        if last.elapsed() >= REST_AFTER {
            return true;
        }
        if self.rest_asked.is_none_or(|t| self.clock.now() > t) {
            self.rest_asked = Some(self.clock.wake_later(cx.waker()));
        }
        false
    }

    /// Whether the writer only waits: for a frame (or a direct write's end) and on the
    /// client's read side, with no timer of its own.
    fn idle(&self) -> bool {
        self.batch.is_empty()
            && !self.armed
            && !self.deferred
            && self.read_side == ReadSide::Open
            && self.notice.is_none()
    }

    /// Writes `frame` at `at` (at once if past), between two batches.
    pub(super) fn notice(&mut self, at: Instant, frame: Frame) {
        self.notice = Some(Box::new((Timer::at(at), frame, at)));
    }

    /// Writes what is owed until done or the socket would block.
    fn poll_write_batch(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Reason>> {
        while self.idx < self.batch.len() {
            let mut slices = [IoSlice::new(&[]); MAX_WRITE_BATCH];
            let mut n = 0;
            for (slot, frame) in slices.iter_mut().zip(&self.batch[self.idx..]) {
                let bytes = frame.as_bytes();
                *slot = IoSlice::new(if n == 0 {
                    bytes.get(self.off..).unwrap_or(&[])
                } else {
                    bytes
                });
                n += 1;
            }
            match Pin::new(&mut *self.stream).poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(Reason::HungUp)),
                Poll::Ready(Ok(written)) => {
                    self.advance(written);
                    if self.armed {
                        self.armed = false;
                        self.sub.set_socket_full(false);
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(failure(&e))),
                Poll::Pending => {
                    if !self.armed {
                        self.deadline.set_at(Instant::now() + self.write_timeout);
                        self.armed = true;
                        self.sub.set_socket_full(true);
                        self.sub.watch(cx);
                    }
                    return match Pin::new(&mut self.deadline).poll(cx) {
                        Poll::Ready(_) => Poll::Ready(Err(Reason::WriteTimeout)),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
        self.batch.clear();
        self.last_write = Some(Instant::now());
        if self.batch.capacity() > MAX_WRITE_BATCH {
            // A large replay backlog must not stay allocated for the life of the stream.
            self.batch.shrink_to(MAX_WRITE_BATCH);
        }
        (self.idx, self.off) = (0, 0);
        Poll::Ready(Ok(()))
    }

    /// Moves the cursor past `written` bytes and counts the frames completed.
    fn advance(&mut self, written: usize) {
        let mut left = self.off + written;
        let mut done = 0u64;
        while let Some(frame) = self.batch.get(self.idx) {
            if left < frame.len() {
                break;
            }
            left -= frame.len();
            self.idx += 1;
            done += 1;
        }
        self.off = left;
        self.stats.wrote(done, written as u64);
    }

    /// Adds what is already queued to the batch, up to [`MAX_WRITE_BATCH`].
    fn top_up(&mut self) {
        while self.batch.len() < MAX_WRITE_BATCH {
            match self.sub.try_recv() {
                Some(f) => self.batch.push(f),
                None => break,
            }
        }
    }

    /// Waits for frames; `Ready(Err)` when the stream must end.
    fn poll_fill_batch(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Reason>> {
        // Before the queue: a busy queue must not hold the notice back.
        if let Some(notice) = &mut self.notice
            && Pin::new(&mut notice.0).poll(cx).is_ready()
        {
            let (_, frame, _) = *self.notice.take().expect("just polled");
            self.batch.push(frame);
            return Poll::Ready(Ok(()));
        }
        match self.sub.poll_next(cx) {
            Poll::Ready(Some((frame, written))) => {
                // `written` > 0: the rest of a frame a direct write could not put out whole.
                self.batch.push(frame);
                self.off = written;
                self.top_up();
                let busy = self
                    .last_write
                    .is_some_and(|t| t.elapsed() < self.batch_window);
                if busy && self.batch.len() < MAX_WRITE_BATCH {
                    // Frames are coming fast: yield once before writing, so that what
                    // the tasks queued ahead of this one publish meanwhile goes out in
                    // the same write. After a quiet spell, write at once (latency).
                    self.deferred = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(None) => {
                let reason = if self.sub.hub_closed() {
                    Reason::Shutdown
                } else {
                    Reason::QueueFull
                };
                return Poll::Ready(Err(reason));
            }
            Poll::Pending => {}
        }
        match self.read_side {
            ReadSide::Open => self.poll_read_side(cx),
            ReadSide::Probing => match Pin::new(&mut self.deadline).poll(cx) {
                Poll::Ready(_) => {
                    self.read_side = ReadSide::HalfClosed;
                    self.batch.push(Frame::from_encoded(PROBE.to_vec()));
                    Poll::Ready(Ok(()))
                }
                Poll::Pending => Poll::Pending,
            },
            ReadSide::HalfClosed => Poll::Pending,
        }
    }

    /// Drops what the client sends, up to [`STREAM_READ_ALLOWANCE`] in all; at end of
    /// stream, starts probing.
    fn poll_read_side(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Reason>> {
        // Ask the reactor first: an idle client costs no read call per wake-up (but see
        // `read_first`).
        if !std::mem::take(&mut self.read_first) {
            match self.stream.poll_readable(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(Reason::HungUp)),
                Poll::Ready(Ok(())) => {}
            }
        }
        let mut sink = [0u8; SINK_BYTES];
        loop {
            match Pin::new(&mut *self.stream).poll_read(cx, &mut sink) {
                Poll::Ready(Ok(0)) => {
                    self.read_side = ReadSide::Probing;
                    self.deadline.set_after(PROBE_DELAY);
                    self.batch.push(Frame::from_encoded(PROBE.to_vec()));
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Err(_)) => return Poll::Ready(Err(Reason::HungUp)),
                Poll::Ready(Ok(n)) => {
                    // Bounded: every read takes at least a byte of the allowance.
                    self.received = self.received.saturating_add(n as u32);
                    if self.received as usize > STREAM_READ_ALLOWANCE {
                        return Poll::Ready(Err(Reason::UnexpectedInput));
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: Conn> Future for Writer<'_, S> {
    type Output = Stop;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Stop> {
        let this = self.get_mut();
        if this.sub.handover_requested() {
            this.handover = true;
            return Poll::Ready(Stop::End(Reason::Shutdown));
        }
        let mut written = 0;
        loop {
            if written == WRITE_BATCHES_PER_POLL {
                if this.first_run {
                    return Poll::Ready(Stop::Busy);
                }
                // The budget of this poll is spent: let the thread's other tasks run.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let step = if this.idx < this.batch.len() {
                // The socket is ours unless a direct write holds it (only possible for
                // frames of our own, such as a probe, made while the writer waited).
                if this.sub.poll_own(cx).is_pending() {
                    return Poll::Pending;
                }
                if std::mem::take(&mut this.deferred) {
                    this.top_up();
                }
                let step = this.poll_write_batch(cx);
                if step.is_ready() {
                    written += 1;
                }
                step
            } else {
                this.poll_fill_batch(cx)
            };
            match step {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(reason)) => return Poll::Ready(Stop::End(reason)),
                Poll::Pending if this.may_rest && this.idle() => {
                    if this.quiet_long_enough(cx) {
                        return Poll::Ready(Stop::Idle);
                    }
                    return Poll::Pending;
                }
                Poll::Pending if this.first_run && this.batch.is_empty() && !this.armed => {
                    return Poll::Ready(Stop::Busy);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A failed write: the client is gone (or its socket was shut down by an eviction).
fn failure(e: &io::Error) -> Reason {
    if e.kind() == io::ErrorKind::TimedOut {
        Reason::WriteTimeout
    } else {
        Reason::HungUp
    }
}
