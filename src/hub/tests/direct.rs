//! Direct writes: a waiting writer's socket lent to the hub for one frame, the frames
//! queued meanwhile, partial writes handed to the writer, and order under concurrency.

use super::*;

/// A socket that takes up to `room` bytes per write and records what it took.
pub(crate) struct FakeSink {
    took: Mutex<Vec<u8>>,
    room: std::sync::atomic::AtomicUsize,
}

impl FakeSink {
    pub(crate) fn new(room: usize) -> Arc<FakeSink> {
        Arc::new(FakeSink {
            took: Mutex::new(Vec::new()),
            room: std::sync::atomic::AtomicUsize::new(room),
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.took.lock().unwrap().clone()).unwrap()
    }

    /// Lets each later write take up to `room` bytes.
    pub(crate) fn set_room(&self, room: usize) {
        self.room.store(room, Ordering::SeqCst);
    }
}

impl DirectSink for FakeSink {
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        let n = bytes.len().min(self.room.load(Ordering::SeqCst));
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.took.lock().unwrap().extend_from_slice(&bytes[..n]);
        Ok(n)
    }
    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.try_write(&joined(bufs))
    }
    fn shut_down(&self) {}
}

/// The bytes of a gathered write, in order (what a test sink takes a part of).
fn joined(bufs: &[io::IoSlice<'_>]) -> Vec<u8> {
    bufs.iter().flat_map(|b| b.iter().copied()).collect()
}

/// A hub whose direct jobs are kept for the test to run.
pub(super) fn direct_hub(queue: usize) -> (Hub, Arc<Mutex<Vec<DirectJob>>>) {
    let h = hub(queue, 0);
    let jobs = Arc::new(Mutex::new(Vec::new()));
    let keep = jobs.clone();
    h.set_direct_runner(move |job| keep.lock().unwrap().push(job));
    (h, jobs)
}

pub(super) fn run_jobs(jobs: &Mutex<Vec<DirectJob>>) -> usize {
    let taken: Vec<DirectJob> = std::mem::take(&mut *jobs.lock().unwrap());
    let n = taken.len();
    for job in taken {
        job.run();
    }
    n
}

/// A subscriber with `sink` whose writer (woken through the returned waker) waits
/// with an empty queue, so the next publish may write to it directly.
pub(super) fn waiting_with(
    h: &Hub,
    sink: Arc<dyn DirectSink>,
) -> (Subscription, Arc<Count>, Waker) {
    let s = h.subscribe(Topics::All, None, None).unwrap();
    s.set_direct_sink(sink);
    let (count, waker) = counting();
    assert!(s.poll_next(&mut Context::from_waker(&waker)).is_pending());
    (s, count, waker)
}

#[test]
fn waiting_writer_gets_a_direct_write_and_stays_waiting() {
    let (h, jobs) = direct_hub(4);
    let sink = FakeSink::new(usize::MAX);
    let (s, count, waker) = waiting_with(&h, sink.clone());
    let mut cx = Context::from_waker(&waker);
    let p = h.publish(&Topic::default_topic(), &ev("a"));
    assert_eq!(p.delivery.sent, 1);
    assert_eq!(run_jobs(&jobs), 1);
    assert_eq!(sink.text(), framed(&h, 1, "a"));
    // The writer was not woken and still waits with an empty queue.
    assert_eq!(woken(&count), 0);
    assert!(s.poll_next(&mut cx).is_pending());
    assert_eq!(s.receiver().unwrap().len(), 0);
    let st = h.stats().snapshot();
    assert_eq!(
        (st.direct_writes, st.frames_written, st.write_calls),
        (1, 1, 1)
    );
    // Again: the socket was handed back, so the next frame goes direct too.
    h.publish(&Topic::default_topic(), &ev("b"));
    assert_eq!(run_jobs(&jobs), 1);
    assert_eq!(sink.text(), framed(&h, 1, "a") + &framed(&h, 2, "b"));
}

#[test]
fn frames_published_during_a_direct_write_follow_it_in_order() {
    let (h, jobs) = direct_hub(4);
    let sink = FakeSink::new(usize::MAX);
    let (s, count, waker) = waiting_with(&h, sink.clone());
    let mut cx = Context::from_waker(&waker);
    h.publish(&Topic::default_topic(), &ev("a"));
    // The direct write of "a" has not run yet: "b" and "c" are queued behind it.
    h.publish(&Topic::default_topic(), &ev("b"));
    h.publish(&Topic::default_topic(), &ev("c"));
    assert_eq!(jobs.lock().unwrap().len(), 1);
    assert_eq!(s.receiver().unwrap().len(), 2);
    // The writer may not take them, nor write, while the direct write holds the socket.
    assert!(s.try_recv().is_none());
    assert!(s.poll_next(&mut cx).is_pending());
    assert_eq!(woken(&count), 0);
    run_jobs(&jobs);
    // The direct write wrote them after its own (row 15), in order and in one write,
    // and gave the socket back with nothing left for the writer: not woken.
    assert_eq!(
        sink.text(),
        framed(&h, 1, "a") + &framed(&h, 2, "b") + &framed(&h, 3, "c")
    );
    assert_eq!(woken(&count), 0);
    assert_eq!(s.receiver().unwrap().len(), 0);
    assert!(s.poll_next(&mut cx).is_pending());
    let st = h.stats().snapshot();
    assert_eq!((st.direct_writes, st.frames_written), (1, 3));
    // The socket is back: the next frame goes direct too.
    h.publish(&Topic::default_topic(), &ev("d"));
    assert_eq!(run_jobs(&jobs), 1);
    assert!(sink.text().ends_with(&framed(&h, 4, "d")));
}

#[test]
fn a_gathered_write_the_socket_takes_in_part_hands_the_rest_over_in_order() {
    let (h, jobs) = direct_hub(8);
    let sink = FakeSink::new(usize::MAX);
    let (s, count, waker) = waiting_with(&h, sink.clone());
    let mut cx = Context::from_waker(&waker);
    h.publish(&Topic::default_topic(), &ev("a"));
    h.publish(&Topic::default_topic(), &ev("b"));
    h.publish(&Topic::default_topic(), &ev("c"));
    // The socket takes "a" and three bytes of "b": one write, then the rest goes over.
    let a = framed(&h, 1, "a");
    sink.set_room(a.len() + 3);
    run_jobs(&jobs);
    assert_eq!(woken(&count), 1, "woken for the rest");
    let st = h.stats().snapshot();
    assert_eq!(
        (st.direct_writes, st.frames_written, st.direct_handoffs),
        (1, 1, 1)
    );
    let b = framed(&h, 2, "b");
    let mut rest = Vec::new();
    for _ in 0..2 {
        match s.poll_next(&mut cx) {
            Poll::Ready(Some((f, off))) => rest.push((f.as_bytes()[off..].to_vec(), off)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        rest,
        [
            (b.as_bytes()[3..].to_vec(), 3),
            (framed(&h, 3, "c").into_bytes(), 0)
        ]
    );
    assert!(s.poll_next(&mut cx).is_pending(), "nothing else queued");
    assert_eq!(sink.text(), a + &b[..3]);
}

#[test]
fn a_writer_that_waits_for_a_lent_socket_is_woken_when_it_is_given_back() {
    let (h, jobs) = direct_hub(4);
    let sink = FakeSink::new(usize::MAX);
    let (s, count, waker) = waiting_with(&h, sink.clone());
    let mut cx = Context::from_waker(&waker);
    h.publish(&Topic::default_topic(), &ev("a"));
    h.publish(&Topic::default_topic(), &ev("b"));
    // The writer has a frame of its own to write (a probe): it waits for the socket.
    assert!(s.poll_own(&mut cx).is_pending());
    run_jobs(&jobs);
    assert_eq!(sink.text(), framed(&h, 1, "a") + &framed(&h, 2, "b"));
    assert_eq!(woken(&count), 1, "woken for its own write");
    assert!(s.poll_own(&mut cx).is_ready());
    // A busy writer was seen: the next publish queues instead of writing directly.
    h.publish(&Topic::default_topic(), &ev("c"));
    assert!(jobs.lock().unwrap().is_empty());
    assert_eq!(texts(&[s.try_recv().unwrap()]), [framed(&h, 3, "c")]);
}

#[test]
fn a_partial_direct_write_hands_the_rest_to_the_writer() {
    let (h, jobs) = direct_hub(4);
    let sink = FakeSink::new(5);
    let (s, count, waker) = waiting_with(&h, sink.clone());
    let mut cx = Context::from_waker(&waker);
    h.publish(&Topic::default_topic(), &ev("hello"));
    run_jobs(&jobs);
    let whole = framed(&h, 1, "hello");
    assert_eq!(sink.text(), whole[..5]);
    assert_eq!(woken(&count), 1);
    let Poll::Ready(Some((frame, 5))) = s.poll_next(&mut cx) else {
        panic!("expected the rest of the frame from byte 5");
    };
    assert_eq!(&frame.as_bytes()[5..], &whole.as_bytes()[5..]);
    let st = h.stats().snapshot();
    assert_eq!(
        (st.direct_writes, st.frames_written, st.bytes_written),
        (1, 0, 5)
    );
    assert_eq!(st.direct_handoffs, 1);
    // A socket that takes nothing hands the whole frame over.
    sink.room.store(0, Ordering::SeqCst);
    assert!(s.poll_next(&mut cx).is_pending());
    h.publish(&Topic::default_topic(), &ev("x"));
    run_jobs(&jobs);
    assert!(matches!(s.poll_next(&mut cx), Poll::Ready(Some((_, 0)))));
}

#[test]
fn own_write_waits_for_a_direct_write_and_takes_back_an_idle_socket() {
    let (h, jobs) = direct_hub(4);
    let (s, count, waker) = waiting_with(&h, FakeSink::new(usize::MAX));
    let mut cx = Context::from_waker(&waker);
    h.publish(&Topic::default_topic(), &ev("a"));
    assert!(s.poll_own(&mut cx).is_pending());
    run_jobs(&jobs);
    assert_eq!(woken(&count), 1);
    assert!(s.poll_own(&mut cx).is_ready());
    // Owned by the writer (not waiting): the next publish is queued for it.
    h.publish(&Topic::default_topic(), &ev("b"));
    assert!(jobs.lock().unwrap().is_empty());
    assert!(s.try_recv().is_some());
}

#[test]
fn eviction_during_a_direct_write_reaches_the_writer_after_it() {
    let (h, jobs) = direct_hub(4);
    let (s, count, waker) = waiting_with(&h, FakeSink::new(usize::MAX));
    let mut cx = Context::from_waker(&waker);
    h.publish(&Topic::default_topic(), &ev("a"));
    h.close();
    assert_eq!(woken(&count), 0);
    run_jobs(&jobs);
    assert_eq!(woken(&count), 1);
    assert!(matches!(s.poll_next(&mut cx), Poll::Ready(None)));
}

#[test]
fn subscribers_without_a_sink_are_always_queued() {
    let (h, jobs) = direct_hub(4);
    let plain = h.subscribe(Topics::All, None, None).unwrap();
    let direct = h.subscribe(Topics::All, None, None).unwrap();
    direct.set_direct_sink(FakeSink::new(usize::MAX));
    let (_count, waker) = counting();
    let mut cx = Context::from_waker(&waker);
    assert!(plain.poll_recv(&mut cx).is_pending());
    assert!(direct.poll_next(&mut cx).is_pending());
    let p = h.publish(&Topic::default_topic(), &ev("a"));
    assert_eq!(p.delivery.sent, 2);
    assert_eq!(jobs.lock().unwrap()[0].len(), 1);
    assert!(matches!(plain.poll_recv(&mut cx), Poll::Ready(Some(_))));
}

#[test]
fn a_shared_job_writes_every_socket_once_whichever_threads_help() {
    use crate::hub::direct::SHARED_CHUNK;
    const SUBS: usize = 5 * SHARED_CHUNK + 3;
    let (h, jobs) = direct_hub(4);
    let sinks: Vec<_> = (0..SUBS).map(|_| FakeSink::new(usize::MAX)).collect();
    let subs: Vec<_> = sinks
        .iter()
        .map(|sink| {
            let s = h.subscribe(Topics::All, None, None).unwrap();
            s.set_direct_sink(sink.clone());
            s
        })
        .collect();
    let (_count, waker) = counting();
    let mut cx = Context::from_waker(&waker);
    for s in &subs {
        assert!(s.poll_next(&mut cx).is_pending());
    }
    h.publish(&Topic::default_topic(), &ev("a"));
    let job = Arc::new(jobs.lock().unwrap().pop().unwrap().shared());
    // Not all taken until the last chunk is (what tells the server it is behind).
    assert!(!job.all_taken());
    for _ in 0..5 {
        assert!(job.help_once());
        assert!(!job.all_taken());
    }
    // Four threads help at once; a fifth comes when all is taken and finds nothing.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let job = job.clone();
            scope.spawn(move || job.help_all());
        }
    });
    job.help_all();
    assert!(job.all_taken());
    assert_eq!(h.stats().snapshot().direct_writes, SUBS as u64);
    for sink in &sinks {
        assert_eq!(
            sink.text().matches("data: a\n\n").count(),
            1,
            "each socket written once"
        );
    }
    // Every socket was given back: the next frame is lent again, to all of them.
    h.publish(&Topic::default_topic(), &ev("b"));
    let again = jobs.lock().unwrap().pop().unwrap();
    assert_eq!(again.len(), SUBS);
    // A job with no socket is done at once.
    let empty = DirectJob {
        frame: Frame::from_encoded(Vec::new()),
        targets: Vec::new(),
        stats: h.stats().clone(),
    }
    .shared();
    assert!(empty.all_taken());
    empty.help_all();
    assert_eq!(h.stats().snapshot().direct_writes, SUBS as u64);
}

/// A socket shared by the direct writes and the writer thread, taking a random number
/// of bytes per write (sometimes none): what reaches it must be every frame, whole,
/// once and in order, whichever of the two wrote it.
struct RandomSink(Arc<Mutex<Vec<u8>>>);

impl DirectSink for RandomSink {
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        let n = match fastrand::u8(0..4) {
            0 => 0,
            1 => fastrand::usize(0..=bytes.len()),
            _ => bytes.len(),
        };
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.0.lock().unwrap().extend_from_slice(&bytes[..n]);
        Ok(n)
    }

    /// Takes a random part of all of them, across the frames' boundaries.
    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.try_write(&joined(bufs))
    }

    fn shut_down(&self) {}
}

struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

#[test]
fn direct_writes_and_the_writer_keep_order_under_concurrency() {
    const EVENTS: usize = 20_000;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let h = hub(1 << 16, 0);
    let (job_tx, job_rx) = std::sync::mpsc::channel::<DirectJob>();
    let job_tx = Mutex::new(job_tx);
    h.set_direct_runner(move |job| {
        let _ = job_tx.lock().unwrap().send(job);
    });
    let runner = std::thread::spawn(move || {
        while let Ok(job) = job_rx.recv() {
            job.run();
        }
    });
    let socket = Arc::new(Mutex::new(Vec::new()));
    let s = h.subscribe(Topics::All, None, None).unwrap();
    s.set_direct_sink(Arc::new(RandomSink(socket.clone())));
    let writer_socket = socket.clone();
    let writer = std::thread::spawn(move || {
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            assert!(std::time::Instant::now() < deadline, "writer timed out");
            match s.poll_next(&mut cx) {
                Poll::Ready(Some((frame, off))) => {
                    assert!(s.poll_own(&mut cx).is_ready());
                    writer_socket
                        .lock()
                        .unwrap()
                        .extend_from_slice(&frame.as_bytes()[off..]);
                }
                Poll::Ready(None) => return,
                Poll::Pending => std::thread::park_timeout(std::time::Duration::from_millis(50)),
            }
        }
    });
    for i in 0..EVENTS {
        let p = h.publish(&Topic::default_topic(), &ev(&i.to_string()));
        assert_eq!(p.delivery.dropped_full, 0);
        if fastrand::u8(0..16) == 0 {
            std::thread::yield_now();
        }
    }
    // The writer drains the queue after the last direct write and ends.
    h.close();
    writer.join().unwrap();
    let st = h.stats().snapshot();
    let want: String = (0..EVENTS)
        .map(|i| framed(&h, i as u64 + 1, &i.to_string()))
        .collect();
    drop(h);
    runner.join().unwrap();
    let got = String::from_utf8(socket.lock().unwrap().clone()).unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "frames out of order or torn");
    // Both paths were taken: direct writes (whole or handed over) and the queue.
    assert!(st.direct_writes > 0 && st.direct_writes < EVENTS as u64);
}

// Private events, live and in replay.
