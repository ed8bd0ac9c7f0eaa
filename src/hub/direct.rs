//! Direct writes: one frame written straight to the sockets of subscribers whose
//! writers wait with an empty queue.
//!
//! A waiting writer has nothing to batch: the next frame would wake its task only for
//! that task to write one frame. When the subscriber registered a [`DirectSink`] (its
//! socket) and the hub has a [`DirectRunner`], a publish that finds **every** writer
//! waiting (none is behind; one whose socket a direct write still holds is not behind
//! either) lends the waiting writers' sockets for that one frame instead (row 3 of
//! the writer state table): the fan-out marks each one, outside the lock the runner
//! writes the frame to each in a tight loop (the server writes it on its request thread,
//! a chunk per poll: see [`SharedJob`]), and gives each socket back (rows 4–5). A socket
//! that does not take the whole frame hands the rest to its writer (row 6), which goes
//! on from there; frames published meanwhile are queued as usual, and the direct write
//! gathers up to [`DRAIN_WHILE_LENT`] of them and writes them after its own frame in the
//! same `sendmsg` before it gives the socket back (row 15; the writer is woken for any
//! left), so order is kept and a
//! subscriber still falls behind, and is evicted, through its bounded queue. When a writer was
//! busy at the last publish, every frame is queued, so a fast publisher still gets
//! frames batched into one write per subscriber. A queue made
//! this way is given back after `QUEUE_RELEASE_AFTER` direct writes in a row find its
//! writer waiting. No lock is held while a direct write runs.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::writer_state::WriterState;
use crate::sse::Frame;
use crate::stats::Stats;

/// A subscriber's socket as a direct write sees it. The server's TCP streams implement
/// it.
pub(crate) trait DirectSink: Send + Sync {
    /// Writes as much of `bytes` as the socket takes now, without waiting: the count, or
    /// `WouldBlock` when it takes nothing, or the error.
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize>;

    /// Writes as much of `bufs`, in order, as the socket takes now, without waiting (as
    /// [`try_write`](DirectSink::try_write)); by default only the first non-empty one.
    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(b) => self.try_write(b),
            None => Ok(0),
        }
    }

    /// Shuts both directions down, so that a writer blocked on the socket wakes up: what
    /// the hub does to a subscriber it evicts when it registered no close hook.
    fn shut_down(&self);
}

/// Frames queued meanwhile that a direct write gathers and writes to a socket after its
/// own, in the same write, before it gives the socket back. **Unit:** frames. **Why:** a
/// fan-out that overlaps the last one's direct write queues a frame or two for the
/// sockets still lent; writing them here costs no more than the direct write's own
/// `sendmsg`, where waking the writer cost a task poll and a write of its own (W3 beside
/// a CPU hog); past a few, the writer batches them as well.
pub const DRAIN_WHILE_LENT: usize = 4;

/// A subscriber lent for a direct write: its state word and its socket.
pub(crate) type DirectTarget = (Arc<WriterState>, Arc<dyn DirectSink>);

/// Runs [`DirectJob`]s; see [`Hub::set_direct_runner`](super::Hub::set_direct_runner).
pub(crate) type DirectRunner = Box<dyn Fn(DirectJob) + Send + Sync>;

/// One frame to write directly to the sockets of subscribers whose writers were waiting.
/// Run it with [`DirectJob::run`] (on any thread; it never waits).
pub(crate) struct DirectJob {
    pub(super) frame: Frame,
    pub(super) targets: Vec<DirectTarget>,
    pub(super) stats: Arc<Stats>,
}

impl fmt::Debug for DirectJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectJob")
            .field("frame_len", &self.frame.len())
            .field("targets", &self.targets.len())
            .finish()
    }
}

impl DirectJob {
    /// Subscribers this job writes to.
    pub(crate) fn len(&self) -> usize {
        self.targets.len()
    }

    /// Makes the job one that several threads write together: see [`SharedJob`].
    pub(crate) fn shared(self) -> SharedJob {
        SharedJob {
            job: self,
            next: AtomicUsize::new(0),
        }
    }

    /// Writes the frame to each socket once, without waiting, then up to
    /// [`DRAIN_WHILE_LENT`] frames queued for it meanwhile (row 15 of the writer state's
    /// table), and gives each socket back to its writer (with the rest of a frame the
    /// socket did not take whole).
    pub(crate) fn run(self) {
        let mut count = Count::default();
        write_all(&self.frame, &self.targets, &mut count);
        count.report(&self.stats);
    }
}

/// Sockets written per [`SharedJob::help_once`]. **Unit:** sockets. **Why:** about 0.1
/// ms of writing: the thread's other tasks (the next publish, new connections) wait no
/// longer than that, and a thread the scheduler stops halfway through holds few sockets
/// lent (a frame published meanwhile is queued for each); the cursor is touched once
/// per chunk.
pub(crate) const SHARED_CHUNK: usize = 32;

/// A [`DirectJob`] written a chunk of [`SHARED_CHUNK`] sockets at a time
/// ([`SharedJob::help_once`]), by one task or by any number of threads together, each
/// taking the next chunk until none is left.
///
/// **Why chunks:** written whole, a 10,000-subscriber job held its thread for 30-60
/// ms; the server's task writes one chunk per poll, so the next publish is answered
/// and fanned out in between (its frames go out with this one's to the sockets not yet
/// written). **Why not fixed parts:** a job split in one part per thread is as late
/// as its slowest thread: beside a busy neighbour, the writer thread's part waited
/// behind it for more than the 100 ms between W3's events, and every frame published
/// meanwhile was queued for each of its sockets (17-48 MB of queues, p99 up to 1.5x
/// the floor).
pub(crate) struct SharedJob {
    job: DirectJob,
    /// The first socket no thread has taken yet (past the end once all are taken).
    next: AtomicUsize,
}

impl fmt::Debug for SharedJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedJob")
            .field("job", &self.job)
            .field("next", &self.next.load(Ordering::Relaxed))
            .finish()
    }
}

impl SharedJob {
    /// Whether every socket of the job has been taken by some thread.
    pub(crate) fn all_taken(&self) -> bool {
        self.next.load(Ordering::Relaxed) >= self.job.targets.len()
    }

    /// Writes chunks of the job until no socket is left to take; each socket is
    /// written by exactly one thread. Never waits.
    pub(crate) fn help_all(&self) {
        while self.help_once() {}
    }

    /// Writes the next [`SHARED_CHUNK`] sockets no thread has taken yet: false when none
    /// was left. Never waits. A task calls it once per poll, so that a 10,000-socket
    /// job lets the thread's other tasks (the next publish among them) run between
    /// chunks.
    pub(crate) fn help_once(&self) -> bool {
        let targets = &self.job.targets;
        let from = self.next.fetch_add(SHARED_CHUNK, Ordering::Relaxed);
        if from >= targets.len() {
            return false;
        }
        let to = (from + SHARED_CHUNK).min(targets.len());
        let mut count = Count::default();
        write_all(&self.job.frame, &targets[from..to], &mut count);
        count.report(&self.job.stats);
        to < targets.len()
    }
}

/// What some direct writes did, for [`Stats::wrote_direct`].
#[derive(Default)]
struct Count {
    calls: u64,
    frames: u64,
    bytes: u64,
    handoffs: u64,
}

impl Count {
    fn report(&self, stats: &Stats) {
        if self.calls > 0 {
            stats.wrote_direct(self.calls, self.frames, self.bytes, self.handoffs);
        }
    }
}

/// Writes `frame` to each target's socket, with up to [`DRAIN_WHILE_LENT`] frames queued
/// for it meanwhile (row 15 of the writer state's table) in the same write, without
/// waiting, and gives each socket back to its writer (with what the socket did not
/// take).
fn write_all(frame: &Frame, targets: &[DirectTarget], count: &mut Count) {
    let mut batch: Vec<Frame> = Vec::new();
    for (state, sink) in targets {
        batch.push(frame.clone());
        while batch.len() <= DRAIN_WHILE_LENT {
            match state.take_while_lent() {
                Some(next) => batch.push(next),
                None => break,
            }
        }
        count.calls += 1;
        let result = if let [one] = batch.as_slice() {
            sink.try_write(one.as_bytes())
        } else {
            let slices: [io::IoSlice<'_>; DRAIN_WHILE_LENT + 1] = std::array::from_fn(|i| {
                io::IoSlice::new(batch.get(i).map_or(&[][..], Frame::as_bytes))
            });
            sink.try_write_vectored(&slices[..batch.len()])
        };
        let mut written = result.unwrap_or(0);
        count.bytes += written as u64;
        // The frames out whole, then the one the socket took in part, if any.
        let mut rest = batch.drain(..);
        let partial = loop {
            match rest.next() {
                Some(f) if written >= f.len() => {
                    written -= f.len();
                    count.frames += 1;
                }
                other => break other,
            }
        };
        match partial {
            None => state.give_back(),
            Some(f) => {
                count.handoffs += 1;
                state.hand_off(f, written, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::hub::{Hub, HubLimits};
    use crate::sse::Event;
    use crate::topic::{Topic, Topics};

    struct Sink(Mutex<Vec<u8>>);

    impl DirectSink for Sink {
        fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
            let mut n = 0;
            for b in bufs {
                n += self.try_write(b)?;
            }
            Ok(n)
        }

        fn shut_down(&self) {}
    }

    fn hub() -> Hub {
        let h = Hub::new(HubLimits::default(), Arc::new(Stats::new()));
        h.set_direct_runner(|job| job.run());
        h
    }

    #[test]
    fn a_direct_subscriber_gets_a_queue_only_when_a_frame_must_wait() {
        let h = hub();
        let sink = Arc::new(Sink(Mutex::new(Vec::new())));
        let s = h
            .subscribe_direct(Topics::All, None, None, None, Some(sink.clone()), false)
            .unwrap();
        assert!(s.receiver().is_none(), "no queue while idle");
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(s.poll_next(&mut cx).is_pending());
        // The writer waits: the frame goes straight to the socket, still no queue.
        h.publish(&Topic::default_topic(), &Event::new("a").unwrap());
        assert!(s.receiver().is_none());
        assert!(sink.0.lock().unwrap().ends_with(b"-1\ndata: a\n\n"));
        // The writer runs (it owns the socket): the next frame must be queued.
        assert!(s.poll_own(&mut cx).is_ready());
        h.publish(&Topic::default_topic(), &Event::new("b").unwrap());
        assert_eq!(s.receiver().map(|r| r.len()), Some(1));
        assert!(matches!(s.poll_next(&mut cx), Poll::Ready(Some(_))));
    }

    #[test]
    fn a_queue_is_given_back_once_the_writer_keeps_up_and_order_is_kept() {
        use crate::hub::QUEUE_RELEASE_AFTER;
        let h = hub();
        let sink = Arc::new(Sink(Mutex::new(Vec::new())));
        let s = h
            .subscribe_direct(Topics::All, None, None, None, Some(sink.clone()), false)
            .unwrap();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let publish = |data: &str| h.publish(&Topic::default_topic(), &Event::new(data).unwrap());
        let written = |s: &crate::hub::Subscription, cx: &mut Context<'_>| -> Vec<Vec<u8>> {
            let mut out = Vec::new();
            while let Poll::Ready(Some((f, 0))) = s.poll_next(cx) {
                out.push(f.as_bytes().to_vec());
            }
            out
        };
        // The writer runs: frames wait, in a queue made for them.
        assert!(s.poll_own(&mut cx).is_ready());
        publish("q1");
        publish("q2");
        assert_eq!(s.receiver().map(|r| r.len()), Some(2));
        assert_eq!(
            written(&s, &mut cx).len(),
            2,
            "the writer takes both, then parks"
        );
        // The hub saw a busy writer last time: the next frame is still queued.
        publish("q3");
        assert_eq!(written(&s, &mut cx).len(), 1);
        // Direct writes from now on; the queue stays until the last of them.
        for i in 1..QUEUE_RELEASE_AFTER {
            publish(&format!("d{i}"));
            assert!(s.receiver().is_some(), "still held after {i} direct writes");
            assert!(s.poll_next(&mut cx).is_pending());
        }
        publish("last");
        assert!(s.receiver().is_none(), "given back");
        // The writer finds no queue: it waits, it does not end.
        assert!(s.poll_next(&mut cx).is_pending());
        assert!(s.try_recv().is_none());
        // Busy again: a new queue, which the writer reads.
        assert!(s.poll_own(&mut cx).is_ready());
        publish("again");
        let again = written(&s, &mut cx);
        assert_eq!(again.len(), 1);
        assert!(again[0].ends_with(b"data: again\n\n"));
        // The socket got the direct frames, in order, and none of the queued ones.
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let mut at = 0;
        for i in 1..QUEUE_RELEASE_AFTER {
            let needle = format!("data: d{i}\n\n");
            at += out[at..].find(&needle).expect("in order") + needle.len();
        }
        assert!(out[at..].starts_with("id: ") && out[at..].ends_with("data: last\n\n"));
        assert!(!out.contains("data: q") && !out.contains("again"));
        // Closing the hub ends it, through its new queue.
        drop(again);
        assert!(s.poll_next(&mut cx).is_pending());
        h.close();
        assert!(matches!(s.poll_next(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn a_direct_write_that_overlaps_the_next_publish_does_not_switch_to_queueing() {
        // A runner that holds the jobs: each direct write overlaps the next publish.
        let held: Arc<Mutex<Vec<DirectJob>>> = Arc::default();
        let h = Hub::new(HubLimits::default(), Arc::new(Stats::new()));
        let jobs = held.clone();
        h.set_direct_runner(move |job| jobs.lock().unwrap().push(job));
        let sink = || Arc::new(Sink(Mutex::new(Vec::new())));
        let (sa, sb) = (sink(), sink());
        let a = h
            .subscribe_direct(Topics::All, None, None, None, Some(sa.clone()), false)
            .unwrap();
        let b = h
            .subscribe_direct(Topics::All, None, None, None, Some(sb.clone()), false)
            .unwrap();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let publish = |data: &str| h.publish(&Topic::default_topic(), &Event::new(data).unwrap());
        assert!(a.poll_next(&mut cx).is_pending());
        assert!(b.poll_next(&mut cx).is_pending());
        publish("1");
        assert_eq!(held.lock().unwrap().len(), 1, "both lent");
        // The first write still holds both sockets: this frame waits in their queues.
        publish("2");
        assert_eq!(held.lock().unwrap().len(), 1);
        assert_eq!(a.receiver().map(|r| r.len()), Some(1));
        for job in held.lock().unwrap().drain(..) {
            job.run();
        }
        // The direct write wrote frame 2 after frame 1 (row 15): nothing is left for
        // the writers, which still wait.
        for s in [&a, &b] {
            assert!(s.poll_next(&mut cx).is_pending());
            assert!(s.receiver().is_none_or(|r| r.is_empty()));
        }
        // No writer was busy (they were lent): the next frame is a direct write again.
        publish("3");
        let jobs: Vec<DirectJob> = held.lock().unwrap().drain(..).collect();
        assert_eq!(jobs.iter().map(DirectJob::len).sum::<usize>(), 2);
        jobs.into_iter().for_each(DirectJob::run);
        for s in [&sa, &sb] {
            let out = String::from_utf8(s.0.lock().unwrap().clone()).unwrap();
            let (one, two) = (out.find("data: 1\n\n"), out.find("data: 2\n\n"));
            assert!(one.is_some() && one < two, "1 then 2: {out:?}");
            assert!(out.ends_with("data: 3\n\n"));
        }
    }

    #[test]
    fn a_direct_subscriber_without_a_queue_still_sees_its_end() {
        let h = hub();
        let sink = Arc::new(Sink(Mutex::new(Vec::new())));
        let s = h
            .subscribe_direct(Topics::All, None, None, None, Some(sink), false)
            .unwrap();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(s.poll_next(&mut cx).is_pending());
        h.close();
        assert!(s.receiver().is_none());
        assert!(matches!(s.poll_next(&mut cx), Poll::Ready(None)));
        assert!(s.try_recv().is_none());
    }
}
