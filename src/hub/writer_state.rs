//! The writer's state word: how the hub wakes a subscriber's writer, and who may write
//! its socket.
//!
//! One [`WriterState`] sits beside each subscriber's queue: an atomic byte, a waker slot,
//! the queue and the rest of a direct write the socket did not take whole (under one
//! lock), and the writer's word on its socket. Every change of the byte goes through the methods of this file; the
//! table below is the whole protocol.
//!
//! # Why not the channel's own waiting
//!
//! The writer takes frames with `try_recv`. Waiting on the channel itself would allocate
//! and register an `event_listener` entry, under the channel's listener lock, on every
//! wait, and every `try_send` would take that lock to notify it: with 10,000 subscribers
//! that was about 5 % of the server's CPU. Here, a wait stores one waker (no allocation
//! when it is the same task's) and the hub wakes only a writer that is waiting.
//!
//! # States
//!
//! The byte is a mode and three flags.
//!
//! | mode | meaning |
//! |---|---|
//! | `RUNNING` | the writer runs, or has been woken and will run |
//! | `WAITING` | the writer is parked and its queue was empty when it parked |
//! | `LENT` | a direct write holds the socket; the writer is parked |
//!
//! | flag | meaning |
//! |---|---|
//! | `QUEUED` | a frame was queued, or the queue closed, while the writer was not `WAITING` |
//! | `HANDOFF` | a direct write left the rest of its frames in the hand-off slot |
//! | `WANTS` | the writer waits for a lent socket, to write a frame of its own (row 12) |
//!
//! `WAITING` implies an empty queue: only the writer parks, right after finding its
//! queue empty, and parking fails when `QUEUED` was set since. So the hub may lend a
//! waiting writer's socket to a direct write: no queued frame can be overtaken.
//!
//! # Transitions
//!
//! | # | who | method | from | to | effect |
//! |---|---|---|---|---|---|
//! | 1 | hub, after `try_send` or closing the queue | [`notify`](WriterState::notify) | `WAITING` | `RUNNING` | wakes the writer |
//! | 2 | hub | [`notify`](WriterState::notify) | `RUNNING` or `LENT` | same, `+QUEUED` | none |
//! | 3 | hub, under its lock | [`lend`](WriterState::lend) | `WAITING` | `LENT` | true; from any other state: false, no change |
//! | 4 | direct write, whole frame out | [`give_back`](WriterState::give_back) | `LENT` | `WAITING` | none |
//! | 5 | direct write, whole frame out | [`give_back`](WriterState::give_back) | `LENT+QUEUED` or `LENT+WANTS` | `RUNNING` | wakes the writer |
//! | 6 | direct write, frames not all out | [`hand_off`](WriterState::hand_off) | `LENT` (any flags) | `RUNNING+HANDOFF` | stores the rest (the frame taken in part, then those gathered after it), wakes the writer |
//! | 7 | writer | [`poll_next`](WriterState::poll_next) | `RUNNING+HANDOFF` | `RUNNING` with the last | yields the rest, one frame per call |
//! | 8 | writer | [`poll_next`](WriterState::poll_next) | `RUNNING+QUEUED` | `RUNNING` | then looks at the queue |
//! | 9 | writer, queue empty | [`poll_next`](WriterState::poll_next) | `RUNNING` | `WAITING` | parks; fails (looks again) if a flag was set meanwhile |
//! | 10 | writer | [`poll_next`](WriterState::poll_next) | `WAITING` or `LENT` | same | stays parked (a spurious wake-up) |
//! | 11 | writer, before a write of its own | [`poll_own`](WriterState::poll_own) | `WAITING` | `RUNNING` | the socket is the writer's |
//! | 12 | writer, before a write of its own | [`poll_own`](WriterState::poll_own) | `LENT` | `LENT+WANTS` | parks until the socket is given back |
//! | 13 | writer, before a write of its own | [`poll_own`](WriterState::poll_own) | `RUNNING` | `RUNNING` | the socket is the writer's |
//! | 14 | writer, giving up its task while idle | [`rest`](WriterState::rest) | `WAITING` or `LENT` (any flags) | same | stores the waker that starts it again: true; from `RUNNING`: false, no change |
//! | 15 | direct write, before it writes or before giving back | [`take_while_lent`](WriterState::take_while_lent) | `LENT+QUEUED` | `LENT`, `+QUEUED` while frames remain or the queue closed | yields the next queued frame, which the direct write writes after its own (in the same write when taken before it) |
//!
//! Row 15 keeps an overlap cheap: a fan-out that finds a socket still lent to the
//! last one's direct write queues its frame, and the direct write gathers the queued
//! ones before it writes and puts them out with its own in one `sendmsg`, instead of
//! waking the writer for them (beside a CPU hog, W3's fan-outs overlapped and every
//! overlapped subscriber cost a task wake-up and a poll, which slowed the next fan-out
//! further; a send per frame cost the kernel about as much again). The frames are
//! later than the direct write's, since the socket was lent only with an empty queue,
//! so taking them before the direct write's own frame is out changes no order.
//!
//! Row 14 is how an idle subscriber holds no task (see the server's `rest.rs`): the
//! waker it stores is the resting stream's own, and whatever would have woken the
//! writer (rows 1, 5, 6) starts a new one instead. It changes no mode, so rows 1–13
//! hold as they are; `false` means something for the writer happened since it parked,
//! and it must not rest.
//!
//! Each row has a unit test below, named after it. [`watch`](WriterState::watch) and
//! [`wake`](WriterState::wake) (a handover's pause) only keep and wake the writer's
//! task and change no state.

use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use async_channel::{Receiver, TryRecvError};

use crate::sse::Frame;

/// How long a subscriber's socket must stay full before publish pacing takes the client
/// for one that stopped reading (and stops waiting for it). **Unit:** ms. **Why:** a
/// client that reads, but slower than a burst comes (a publisher catching up after a
/// restart), sees its socket full for a while at a time: the kernel reports it writable
/// only once about a third of its send buffer (up to 4 MiB) has drained. Not counted
/// at all, the publisher ran on and readers were evicted with full queues (the restart
/// soak: 3–93 in some runs; `a_reader_slower_than_a_burst_is_waited_for_not_evicted`:
/// cut off after 149–203 of 1,500 events). At about 4 MB/s, a third of a 4 MiB buffer
/// takes over 300 ms to drain, so 100 ms would still take such a reader for stopped.
/// A client that stopped reading stays full for good: it holds a publisher only while
/// its queue is half full and this has not passed (each paced wait also ends after 5 ms
/// without any drain), then fills its queue and is evicted as before.
pub(crate) const STOPPED_READING_AFTER: u32 = 1000;

/// Milliseconds since the process first asked (never 0: 0 marks "not full"), wrapping
/// after 49 days (compared with `wrapping_sub`).
fn now_ms() -> u32 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    (EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u32).max(1)
}

/// Mode: the writer runs, or will run.
const RUNNING: u8 = 0;
/// Mode: the writer is parked; its queue was empty.
const WAITING: u8 = 1;
/// Mode: a direct write holds the socket; the writer is parked.
const LENT: u8 = 2;
/// The mode bits.
const MODE: u8 = 3;
/// Flag: something for the writer happened while it was not `WAITING`.
const QUEUED: u8 = 4;
/// Flag: the rest of a direct write waits in the hand-off slot.
const HANDOFF: u8 = 8;
/// Flag: the writer waits for a lent socket (row 12).
const WANTS: u8 = 16;

/// A subscriber's writer state (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct WriterState {
    word: AtomicU8,
    waker: Mutex<Option<Waker>>,
    /// The queue and the hand-off slot, under one lock (each subscriber pays for a lock).
    held: Mutex<Held>,
    /// The writer's word on its socket: since when (on [`now_ms`]'s clock) it has been
    /// full, the writer waiting for the client to read; 0 while it takes data. Publish
    /// pacing does not count a subscriber whose socket stayed full for
    /// [`STOPPED_READING_AFTER`] as one the server is behind for.
    full_since: AtomicU32,
    /// The hub ended this subscriber before it had a queue (with one, closing the queue
    /// says so).
    ended: AtomicBool,
}

/// What the writer state holds for the writer besides the word.
#[derive(Debug, Default)]
struct Held {
    /// The subscriber's bounded queue, while it has one. A subscriber with a direct sink
    /// gets it only when the hub first has to queue a frame for it (its writer was busy):
    /// an idle subscriber never pays for a queue (about 2 KiB at 100 frames). The hub
    /// takes it back once the writer has kept up for a while (see
    /// [`release_queue`](WriterState::release_queue)), so one slow fan-out does not leave
    /// every subscriber holding a queue for good.
    /// Boxed: a `Receiver` is two words, and an idle subscriber has none.
    queue: Option<Box<Receiver<Frame>>>,
    /// The rest of a direct write the socket did not take whole; boxed, as it is rare.
    handoff: Option<Box<HandOff>>,
}

/// The rest of a direct write: the frame the socket took in part (`written` bytes of
/// it), then the frames the write had gathered after it (row 15) and not put out, in
/// order.
#[derive(Debug)]
struct HandOff {
    first: Frame,
    written: usize,
    then: std::collections::VecDeque<Frame>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl WriterState {
    fn load(&self) -> u8 {
        self.word.load(Ordering::SeqCst)
    }

    fn cas(&self, from: u8, to: u8) -> Result<u8, u8> {
        self.word
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
    }

    /// Keeps `waker` as the one to wake (no clone when it is the same task's).
    fn store_waker(&self, waker: &Waker) {
        let mut slot = lock(&self.waker);
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    fn wake_writer(&self) {
        if let Some(w) = lock(&self.waker).as_ref() {
            w.wake_by_ref();
        }
    }

    /// The queue, while there is one (a handle to it).
    pub(crate) fn queue(&self) -> Option<Receiver<Frame>> {
        lock(&self.held).queue.as_deref().cloned()
    }

    /// The number of frames queued (0 without a queue).
    pub(crate) fn queued(&self) -> usize {
        lock(&self.held).queue.as_deref().map_or(0, Receiver::len)
    }

    /// Gives the subscriber its queue (the hub does it under its lock, when it has none).
    pub(crate) fn set_queue(&self, rx: Receiver<Frame>) {
        let mut held = lock(&self.held);
        if held.queue.is_none() {
            held.queue = Some(Box::new(rx));
        }
    }

    /// The hub takes the queue back, under its lock, right after [`lend`](Self::lend)
    /// succeeded: the writer was `WAITING`, so the queue is empty, and it stays parked
    /// without looking at the queue until the socket is given back; it then finds no
    /// queue (`Empty`), and the hub makes a new one when a frame must wait again. The
    /// hub drops its sending end at the same time, so nothing sees the channel close.
    pub(crate) fn release_queue(&self) {
        debug_assert!(self.is_lent(), "the queue is taken back only while lent");
        let rx = lock(&self.held).queue.take();
        debug_assert!(rx.as_deref().is_none_or(Receiver::is_empty));
        drop(rx);
    }

    /// The hub ended a subscriber that has no queue: its writer sees the end next.
    pub(crate) fn end_without_queue(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }

    /// The next queued frame: `Empty` with no queue yet, `Closed` once ended.
    pub(crate) fn take_queued(&self) -> Result<Frame, TryRecvError> {
        // The frames of a hand-off come before anything queued: a writer topping up its
        // batch stops here, and its next `poll_next` yields them (row 7).
        if self.load() & HANDOFF != 0 {
            return Err(TryRecvError::Empty);
        }
        match lock(&self.held).queue.as_deref() {
            Some(rx) => rx.try_recv(),
            None if self.ended.load(Ordering::SeqCst) => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Whether the writer is parked with an empty queue (the hub's test for "not busy").
    pub(crate) fn is_waiting(&self) -> bool {
        self.load() & MODE == WAITING
    }

    /// Whether a direct write holds the socket.
    pub(crate) fn is_lent(&self) -> bool {
        self.load() & MODE == LENT
    }

    /// Whether the writer said its socket is full.
    pub(crate) fn socket_full(&self) -> bool {
        self.full_since.load(Ordering::Relaxed) != 0
    }

    /// Whether the client looks to have stopped reading: its socket has been full for
    /// [`STOPPED_READING_AFTER`] or longer. A client that reads, only slower than a
    /// burst comes, drains its socket again and again, and each write it takes starts
    /// the count anew.
    pub(crate) fn stopped_reading(&self) -> bool {
        match self.full_since.load(Ordering::Relaxed) {
            0 => false,
            since => now_ms().wrapping_sub(since) >= STOPPED_READING_AFTER,
        }
    }

    /// The writer's word on its socket: full (from now on), or taking data again.
    pub(crate) fn set_socket_full(&self, full: bool) {
        self.full_since
            .store(if full { now_ms() } else { 0 }, Ordering::Relaxed);
    }

    /// Marks the socket full since `ago` ms (for tests of the pacing rule).
    #[cfg(test)]
    pub(crate) fn set_socket_full_since(&self, ago: u32) {
        self.full_since
            .store(now_ms().wrapping_sub(ago).max(1), Ordering::Relaxed);
    }

    /// Not a transition: keeps `waker` as the writer's, e.g. while it waits for its
    /// socket rather than its queue, so that [`wake`](Self::wake) reaches it there too.
    pub(crate) fn watch(&self, waker: &Waker) {
        self.store_waker(waker);
    }

    /// Not a transition: wakes the writer's task (if it ever parked) so that it looks at
    /// the hub again, e.g. for a handover's pause. The word is left as it is.
    pub(crate) fn wake(&self) {
        self.wake_writer();
    }

    /// Rows 1–2: the hub queued a frame or closed the queue.
    pub(crate) fn notify(&self) {
        let mut s = self.load();
        loop {
            let (to, wake) = if s & MODE == WAITING {
                (RUNNING, true)
            } else {
                (s | QUEUED, false)
            };
            if to == s {
                return;
            }
            match self.cas(s, to) {
                Ok(_) => {
                    if wake {
                        self.wake_writer();
                    }
                    return;
                }
                Err(now) => s = now,
            }
        }
    }

    /// Row 3: the hub takes a waiting writer's socket for one direct write.
    pub(crate) fn lend(&self) -> bool {
        self.cas(WAITING, LENT).is_ok()
    }

    /// Rows 4–5: a direct write put its whole frame out and gives the socket back.
    pub(crate) fn give_back(&self) {
        let mut s = self.load();
        loop {
            let queued = s & (QUEUED | WANTS) != 0;
            match self.cas(s, if queued { RUNNING } else { WAITING }) {
                Ok(_) => {
                    if queued {
                        self.wake_writer();
                    }
                    return;
                }
                Err(now) => s = now,
            }
        }
    }

    /// Row 15: a direct write still holds the socket: the next frame queued meanwhile,
    /// for it to write after its own, or `None` (then, once what it took is out, it
    /// gives the socket back, row 4 or 5). `QUEUED` is cleared before the look and set again
    /// while frames remain, so a frame queued at any point is either taken here or
    /// seen by `give_back`; a closed queue leaves it set, for the writer to see.
    pub(crate) fn take_while_lent(&self) -> Option<Frame> {
        let s = self.load();
        if s & MODE != LENT || s & QUEUED == 0 || self.cas(s, s & !QUEUED).is_err() {
            return None;
        }
        let held = lock(&self.held);
        let queue = held.queue.as_deref();
        let taken = queue.map(Receiver::try_recv);
        let more = queue.is_some_and(|q| !q.is_empty() || q.is_closed());
        drop(held);
        if more || !matches!(taken, Some(Ok(_)) | Some(Err(TryRecvError::Empty))) {
            self.word.fetch_or(QUEUED, Ordering::SeqCst);
        }
        taken.and_then(Result::ok)
    }

    /// Row 6: a direct write put out only `written` bytes of `frame` (or failed), and
    /// none of `then` (frames it had gathered after it, row 15): the writer is woken to
    /// write the rest, then `then`, then what is still queued.
    pub(crate) fn hand_off(
        &self,
        frame: Frame,
        written: usize,
        then: impl IntoIterator<Item = Frame>,
    ) {
        lock(&self.held).handoff = Some(Box::new(HandOff {
            first: frame,
            written,
            then: then.into_iter().collect(),
        }));
        let mut s = self.load();
        loop {
            match self.cas(s, RUNNING | HANDOFF) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        self.wake_writer();
    }

    /// Rows 7–10: the writer's next frame, with the number of its bytes already written
    /// (non-zero only for the rest of a direct write). `try_recv` takes from the queue;
    /// `Pending` parks the writer, which is woken by row 1, 5 or 6.
    pub(crate) fn poll_next(
        &self,
        cx: &mut Context<'_>,
        mut try_recv: impl FnMut() -> Result<Frame, TryRecvError>,
    ) -> Poll<Option<(Frame, usize)>> {
        loop {
            let s = self.load();
            if s & MODE != RUNNING {
                // Row 10: parked; the hub or the direct write wakes us.
                self.store_waker(cx.waker());
                if self.load() == s {
                    return Poll::Pending;
                }
                continue;
            }
            if s & HANDOFF != 0 {
                // Row 7: the frames of the hand-off one by one; the flag is cleared
                // with the last.
                let mut held = lock(&self.held);
                let Some(rest) = held.handoff.as_deref_mut() else {
                    drop(held);
                    self.word.fetch_and(!HANDOFF, Ordering::SeqCst);
                    continue;
                };
                let out = match rest.then.pop_front() {
                    Some(next) => (
                        std::mem::replace(&mut rest.first, next),
                        std::mem::take(&mut rest.written),
                    ),
                    None => {
                        let last = held.handoff.take().map(|b| (b.first, b.written));
                        drop(held);
                        self.word.fetch_and(!HANDOFF, Ordering::SeqCst);
                        match last {
                            Some(last) => last,
                            None => continue,
                        }
                    }
                };
                return Poll::Ready(Some(out));
            }
            if s & QUEUED != 0 {
                // Row 8. Clear first: a frame queued after this sets it again.
                let _ = self.cas(s, s & !QUEUED);
                continue;
            }
            match try_recv() {
                Ok(frame) => return Poll::Ready(Some((frame, 0))),
                Err(TryRecvError::Closed) => return Poll::Ready(None),
                Err(TryRecvError::Empty) => {}
            }
            // Row 9: fails if a frame was queued (or the queue closed) since the look.
            self.store_waker(cx.waker());
            if self.cas(RUNNING, WAITING).is_ok() {
                return Poll::Pending;
            }
        }
    }

    /// Row 14: the parked writer hands its wake-up to `waker` (a resting stream's): true
    /// while it is still parked (`WAITING` or `LENT`), so that every later wake-up goes
    /// to `waker`; false once it is `RUNNING` (woken since it parked: it must run).
    pub(crate) fn rest(&self, waker: &Waker) -> bool {
        self.store_waker(waker);
        self.load() & MODE != RUNNING
    }

    /// Rows 11–13: makes sure no direct write holds the socket before the writer writes
    /// to it itself. `Pending` while one does; the writer is woken when it is given back.
    pub(crate) fn poll_own(&self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let s = self.load();
            match s & MODE {
                RUNNING => return Poll::Ready(()),
                WAITING => {
                    // The queue is empty: stop waiting, so no direct write starts.
                    if self.cas(s, RUNNING).is_ok() {
                        return Poll::Ready(());
                    }
                }
                _ => {
                    self.store_waker(cx.waker());
                    if self.cas(s, s | WANTS).is_ok() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// A waker that counts its wake-ups.
    struct Count(AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A state word set to `word`, with a counting waker stored in it.
    fn at(word: u8) -> (WriterState, Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let st = WriterState::default();
        st.store_waker(&waker);
        st.word.store(word, Ordering::SeqCst);
        (st, count, waker)
    }

    fn woken(c: &Count) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    fn frame() -> Frame {
        Frame::from_encoded(b"data: x\n\n".to_vec())
    }

    fn empty() -> Result<Frame, TryRecvError> {
        Err(TryRecvError::Empty)
    }

    #[test]
    fn watch_and_wake_reach_the_writer_in_any_state_and_change_none() {
        for mode in [RUNNING, WAITING, LENT, LENT | QUEUED, RUNNING | HANDOFF] {
            let (st, c, _) = at(mode);
            st.wake();
            assert_eq!((st.load(), woken(&c)), (mode, 1));
            // A writer waiting on its socket keeps another task's waker: it is woken.
            let other = Arc::new(Count(AtomicUsize::new(0)));
            st.watch(&Waker::from(other.clone()));
            st.wake();
            assert_eq!((st.load(), woken(&other)), (mode, 1));
        }
    }

    #[test]
    fn row_1_notify_wakes_a_waiting_writer() {
        let (st, c, _) = at(WAITING);
        st.notify();
        assert_eq!((st.load(), woken(&c)), (RUNNING, 1));
    }

    #[test]
    fn row_2_notify_flags_a_running_or_lent_writer() {
        for mode in [RUNNING, LENT, LENT | QUEUED, RUNNING | HANDOFF] {
            let (st, c, _) = at(mode);
            st.notify();
            assert_eq!((st.load(), woken(&c)), (mode | QUEUED, 0), "from {mode}");
        }
    }

    #[test]
    fn row_3_lend_takes_only_a_waiting_writer() {
        let (st, _, _) = at(WAITING);
        assert!(st.lend());
        assert_eq!(st.load(), LENT);
        for word in [RUNNING, RUNNING | QUEUED, LENT, WAITING | QUEUED] {
            let (st, _, _) = at(word);
            assert!(!st.lend(), "from {word}");
            assert_eq!(st.load(), word);
        }
    }

    #[test]
    fn row_4_give_back_leaves_the_writer_waiting() {
        let (st, c, _) = at(LENT);
        st.give_back();
        assert_eq!((st.load(), woken(&c)), (WAITING, 0));
    }

    #[test]
    fn row_5_give_back_with_frames_queued_wakes_the_writer() {
        for word in [LENT | QUEUED, LENT | WANTS] {
            let (st, c, _) = at(word);
            st.give_back();
            assert_eq!((st.load(), woken(&c)), (RUNNING, 1), "from {word}");
        }
    }

    #[test]
    fn row_6_hand_off_stores_the_rest_and_wakes_the_writer() {
        for word in [LENT, LENT | QUEUED] {
            let (st, c, _) = at(word);
            st.hand_off(frame(), 3, []);
            assert_eq!((st.load(), woken(&c)), (RUNNING | HANDOFF, 1));
            assert_eq!(lock(&st.held).handoff.as_ref().map(|b| b.written), Some(3));
        }
    }

    #[test]
    fn row_7_poll_next_yields_the_hand_off_first() {
        let (st, _, w) = at(RUNNING | HANDOFF);
        lock(&st.held).handoff = Some(Box::new(HandOff {
            first: frame(),
            written: 4,
            then: Default::default(),
        }));
        let mut cx = Context::from_waker(&w);
        let got = st.poll_next(&mut cx, || panic!("the queue comes after the hand-off"));
        assert!(matches!(got, Poll::Ready(Some((_, 4)))));
        assert_eq!(st.load(), RUNNING);
    }

    #[test]
    fn a_writer_topping_up_its_batch_takes_nothing_queued_before_the_hand_off() {
        // The restart soak's fault: a writer took the rest of a gathered direct write,
        // topped its batch up from the queue, and wrote a queued frame before the
        // hand-off's later ones (event 1773 after 1774-1778).
        let (st, _, w) = at(LENT | QUEUED);
        let f = |t: &str| Frame::from_encoded(t.as_bytes().to_vec());
        let (tx, rx) = async_channel::bounded(4);
        st.set_queue(rx);
        tx.try_send(f("c")).unwrap();
        st.hand_off(f("a"), 1, [f("b")]);
        let mut cx = Context::from_waker(&w);
        let mut out = Vec::new();
        for _ in 0..2 {
            match st.poll_next(&mut cx, || st.take_queued()) {
                Poll::Ready(Some((fr, _))) => out.push(fr.as_bytes().to_vec()),
                other => panic!("{other:?}"),
            }
            // What a writer's top-up does after each frame it takes.
            while let Ok(fr) = st.take_queued() {
                out.push(fr.as_bytes().to_vec());
            }
        }
        assert_eq!(out, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn row_7_poll_next_yields_every_frame_of_the_hand_off_in_order() {
        let (st, c, w) = at(LENT | QUEUED);
        let f = |t: &str| Frame::from_encoded(t.as_bytes().to_vec());
        st.hand_off(f("ab"), 1, [f("c"), f("d")]);
        assert_eq!(woken(&c), 1);
        let mut cx = Context::from_waker(&w);
        let mut got = Vec::new();
        for _ in 0..3 {
            match st.poll_next(&mut cx, || panic!("the queue comes after the hand-off")) {
                Poll::Ready(Some((fr, off))) => got.push((fr.as_bytes().to_vec(), off)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            got,
            [(b"ab".to_vec(), 1), (b"c".to_vec(), 0), (b"d".to_vec(), 0)]
        );
        assert_eq!(st.load(), RUNNING);
        assert!(lock(&st.held).handoff.is_none());
    }

    #[test]
    fn row_8_poll_next_clears_queued_then_takes_from_the_queue() {
        let (st, _, w) = at(RUNNING | QUEUED);
        let mut cx = Context::from_waker(&w);
        assert!(matches!(
            st.poll_next(&mut cx, || Ok(frame())),
            Poll::Ready(Some((_, 0)))
        ));
        assert_eq!(st.load(), RUNNING);
    }

    #[test]
    fn row_9_poll_next_parks_on_an_empty_queue_and_sees_the_end() {
        let (st, c, w) = at(RUNNING);
        let mut cx = Context::from_waker(&w);
        assert!(st.poll_next(&mut cx, empty).is_pending());
        assert_eq!((st.load(), woken(&c)), (WAITING, 0));
        let (st, _, _) = at(RUNNING);
        assert!(matches!(
            st.poll_next(&mut cx, || Err(TryRecvError::Closed)),
            Poll::Ready(None)
        ));
        // A frame queued between the look and the park: the park fails, the writer
        // looks again and takes it.
        let (st, _, _) = at(RUNNING);
        let mut looks = 0;
        let got = st.poll_next(&mut cx, || {
            looks += 1;
            if looks == 1 {
                st.notify();
                Err(TryRecvError::Empty)
            } else {
                Ok(frame())
            }
        });
        assert!(matches!(got, Poll::Ready(Some(_))));
        assert_eq!(looks, 2);
    }

    #[test]
    fn row_10_poll_next_stays_parked_while_waiting_or_lent() {
        for word in [WAITING, LENT, LENT | QUEUED] {
            let (st, _, w) = at(word);
            let mut cx = Context::from_waker(&w);
            assert!(st.poll_next(&mut cx, || panic!("parked")).is_pending());
            assert_eq!(st.load(), word);
        }
    }

    #[test]
    fn row_11_poll_own_takes_back_a_waiting_socket() {
        let (st, _, w) = at(WAITING);
        assert!(st.poll_own(&mut Context::from_waker(&w)).is_ready());
        assert_eq!(st.load(), RUNNING);
        // Not waiting any more: the hub lends it no more.
        assert!(!st.lend());
    }

    #[test]
    fn row_12_poll_own_waits_for_a_lent_socket() {
        let (st, c, w) = at(LENT);
        assert!(st.poll_own(&mut Context::from_waker(&w)).is_pending());
        assert_eq!(st.load(), LENT | WANTS);
        // A direct write takes no frame for it: the writer's own wait is not a frame.
        assert!(st.take_while_lent().is_none());
        assert_eq!(st.load(), LENT | WANTS);
        // Given back: woken (row 5), and the socket is the writer's.
        st.give_back();
        assert_eq!(woken(&c), 1);
        assert!(st.poll_own(&mut Context::from_waker(&w)).is_ready());
    }

    #[test]
    fn row_15_a_lent_socket_takes_the_frames_queued_meanwhile_then_is_given_back() {
        let (st, c, _) = at(LENT);
        let (tx, rx) = async_channel::bounded(4);
        st.set_queue(rx);
        for _ in 0..2 {
            tx.try_send(frame()).unwrap();
            st.notify();
        }
        assert_eq!(st.load(), LENT | QUEUED);
        assert!(st.take_while_lent().is_some());
        assert_eq!(st.load(), LENT | QUEUED, "one remains");
        assert!(st.take_while_lent().is_some());
        assert_eq!(st.load(), LENT, "drained");
        assert!(st.take_while_lent().is_none());
        // Nothing left for the writer: given back waiting, not woken (row 4).
        st.give_back();
        assert_eq!((st.load(), woken(&c)), (WAITING, 0));
        // Not lent, or nothing queued: no frame, no change.
        for word in [RUNNING | QUEUED, WAITING, LENT] {
            let (st, _, _) = at(word);
            assert!(st.take_while_lent().is_none());
            assert_eq!(st.load(), word);
        }
        // A closed queue stays flagged, so the writer is woken to see it end.
        let (st, c, _) = at(LENT);
        let (tx, rx) = async_channel::bounded::<Frame>(4);
        st.set_queue(rx);
        tx.close();
        st.notify();
        assert!(st.take_while_lent().is_none());
        assert_eq!(st.load(), LENT | QUEUED);
        st.give_back();
        assert_eq!((st.load(), woken(&c)), (RUNNING, 1));
    }

    #[test]
    fn row_14_rest_hands_the_wake_up_of_a_parked_writer_to_its_new_waker() {
        for word in [WAITING, LENT, LENT | QUEUED] {
            let (st, old, _) = at(word);
            let new = Arc::new(Count(AtomicUsize::new(0)));
            assert!(st.rest(&Waker::from(new.clone())), "from {word}");
            assert_eq!(st.load(), word);
            // What would have woken the writer wakes the new waker, not the old.
            if word == LENT {
                st.hand_off(frame(), 1, []);
            } else {
                st.notify();
                st.give_back();
            }
            assert_eq!((woken(&old), woken(&new)), (0, 1), "from {word}");
        }
        for word in [RUNNING, RUNNING | QUEUED, RUNNING | HANDOFF] {
            let (st, _, _) = at(word);
            let new = Arc::new(Count(AtomicUsize::new(0)));
            assert!(!st.rest(&Waker::from(new)), "from {word}");
            assert_eq!(st.load(), word);
        }
    }

    #[test]
    fn row_13_poll_own_keeps_a_running_writer_running() {
        for word in [RUNNING, RUNNING | QUEUED] {
            let (st, _, w) = at(word);
            assert!(st.poll_own(&mut Context::from_waker(&w)).is_ready());
            assert_eq!(st.load(), word);
        }
    }
}
