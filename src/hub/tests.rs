//! Tests of the hub: fan-out, eviction, replay, waiting and direct writes.

use super::*;
use std::io;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

fn hub(queue: usize, history: usize) -> Hub {
    Hub::new(
        HubLimits {
            queue_len: queue,
            history_events: history,
            history_bytes: usize::MAX,
        },
        Arc::new(Stats::new()),
    )
}

fn ev(data: &str) -> Event {
    Event::new(data).unwrap()
}

fn texts(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| String::from_utf8(f.as_bytes().to_vec()).unwrap())
        .collect()
}

#[test]
fn publish_assigns_increasing_ids_and_encodes_once() {
    let h = hub(10, 10);
    let a = h.subscribe(Topics::All, None, None).unwrap();
    let b = h.subscribe(Topics::All, None, None).unwrap();
    let p = h.publish(&Topic::default_topic(), &ev("x"));
    assert_eq!(p.id, 1);
    assert_eq!(p.delivery.sent, 2);
    let fa = a.receiver().try_recv().unwrap();
    let fb = b.receiver().try_recv().unwrap();
    // The same allocation reaches both: no per-client copy.
    assert!(std::ptr::eq(fa.as_bytes(), fb.as_bytes()));
    assert_eq!(fa.as_bytes(), b"id: 1\ndata: x\n\n");
    assert_eq!(h.publish(&Topic::default_topic(), &ev("y")).id, 2);
}

#[test]
fn slow_subscriber_is_dropped_when_queue_is_full() {
    let h = hub(3, 10);
    let hook_ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = hook_ran.clone();
    let slow = h
        .subscribe(
            Topics::All,
            None,
            Some(Box::new(move || {
                flag.store(true, std::sync::atomic::Ordering::SeqCst)
            })),
        )
        .unwrap();
    let fast = h.subscribe(Topics::All, None, None).unwrap();
    for i in 0..3 {
        h.publish(&Topic::default_topic(), &ev(&i.to_string()));
        fast.receiver().try_recv().unwrap();
    }
    let p = h.publish(&Topic::default_topic(), &ev("3"));
    assert_eq!(
        p.delivery,
        Delivery {
            sent: 1,
            dropped_full: 1,
            dropped_closed: 0,
            behind: 0
        }
    );
    assert!(hook_ran.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(h.len(), 1);
    assert_eq!(h.stats().snapshot().ended[0], 1);
    // The evicted subscriber's queue is closed after what it holds.
    assert_eq!(slow.receiver().len(), 3);
    assert!(slow.receiver().is_closed());
    // Dropping it later does not count it twice.
    drop(slow);
    assert_eq!(h.stats().snapshot().ended, [1, 0, 0, 0, 0, 0]);
}

#[test]
fn broadcast_does_not_block_on_full_client() {
    let h = hub(1, 0);
    let _stuck = h.subscribe(Topics::All, None, None).unwrap();
    let hb = crate::sse::heartbeat();
    // Runs to completion without an executor: nothing here can wait.
    for _ in 0..1000 {
        h.broadcast(&hb);
    }
    assert_eq!(h.len(), 0);
}

#[test]
fn dropped_subscription_is_pruned_at_once() {
    let h = hub(4, 0);
    let s = h.subscribe(Topics::All, None, None).unwrap();
    assert_eq!(h.len(), 1);
    drop(s);
    assert_eq!(h.len(), 0);
    assert_eq!(h.stats().snapshot().ended[2], 1);
}

#[test]
fn topic_filter_selects_events() {
    let h = hub(10, 10);
    let a = Topic::new("a").unwrap();
    let b = Topic::new("b").unwrap();
    let only_a = h
        .subscribe(Topics::Only(vec![a.clone()].into()), None, None)
        .unwrap();
    let all = h.subscribe(Topics::All, None, None).unwrap();
    h.publish(&a, &ev("1"));
    h.publish(&b, &ev("2"));
    assert_eq!(only_a.receiver().len(), 1);
    assert_eq!(all.receiver().len(), 2);
}

#[test]
fn replay_returns_events_after_last_id_on_matching_topics() {
    let h = hub(10, 10);
    let a = Topic::new("a").unwrap();
    let b = Topic::new("b").unwrap();
    for i in 1..=5 {
        h.publish(if i % 2 == 0 { &b } else { &a }, &ev(&i.to_string()));
    }
    let mut s = h
        .subscribe(Topics::Only(vec![a].into()), Some(1), None)
        .unwrap();
    assert_eq!(
        texts(&s.take_backlog()),
        ["id: 3\ndata: 3\n\n", "id: 5\ndata: 5\n\n"]
    );
}

#[test]
fn replay_older_than_history_says_events_were_missed() {
    let h = hub(10, 3);
    for i in 1..=6 {
        h.publish(&Topic::default_topic(), &ev(&i.to_string()));
    }
    let mut s = h.subscribe(Topics::All, Some(1), None).unwrap();
    let got = texts(&s.take_backlog());
    assert_eq!(got.len(), 4);
    assert!(got[0].starts_with(": missed events: history starts at id 4"));
    assert_eq!(got[1], "id: 4\ndata: 4\n\n");
    // Exactly at the edge: nothing was missed.
    let mut s = h.subscribe(Topics::All, Some(3), None).unwrap();
    assert_eq!(s.take_backlog().len(), 3);
}

#[test]
fn future_last_id_is_treated_as_none() {
    let h = hub(10, 10);
    h.publish(&Topic::default_topic(), &ev("1"));
    let mut s = h.subscribe(Topics::All, Some(99), None).unwrap();
    assert!(s.take_backlog().is_empty());
}

#[test]
fn history_respects_byte_cap() {
    let h = Hub::new(
        HubLimits {
            queue_len: 1,
            history_events: 100,
            history_bytes: 40,
        },
        Arc::new(Stats::new()),
    );
    for i in 0..10 {
        h.publish(&Topic::default_topic(), &ev(&format!("{i:010}")));
    }
    // Each frame is 24 bytes: only one fits under 40.
    assert_eq!(h.history_len(), 1);
}

#[test]
fn backlog_counts_subscribers_at_half_a_queue_or_more() {
    let h = hub(4, 0);
    let lagging = h.subscribe(Topics::All, None, None).unwrap();
    let reading = h.subscribe(Topics::All, None, None).unwrap();
    let p = h.publish(&Topic::default_topic(), &ev("1"));
    assert_eq!(p.delivery.behind, 0);
    let p = h.publish(&Topic::default_topic(), &ev("2"));
    // Both hold 2 of 4 now: at half a queue, both count as behind.
    assert_eq!(p.delivery.behind, 2);
    assert!(p.delivery.congested());
    while reading.receiver().try_recv().is_ok() {}
    let b = h.backlog();
    assert_eq!(
        b,
        Backlog {
            subscribers: 2,
            behind: 1,
            queued: 2
        }
    );
    // The lagging one still takes data: the server is behind for it.
    assert!(b.congested());
    // Once its writer reports a full socket, the client is the slow one: no pacing.
    lagging.set_socket_full(true);
    assert!(!h.backlog().congested());
    let p = h.publish(&Topic::default_topic(), &ev("3"));
    assert_eq!(p.delivery.behind, 0);
    lagging.set_socket_full(false);
    assert!(h.backlog().congested());
    drop(lagging);
    assert_eq!(
        h.backlog(),
        Backlog {
            subscribers: 1,
            behind: 0,
            queued: 1
        }
    );
}

/// A waker that counts its wake-ups.
struct Count(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

fn woken(c: &Count) -> usize {
    c.0.load(Ordering::SeqCst)
}

#[test]
fn poll_recv_wakes_once_per_wait_and_on_close() {
    let h = hub(4, 0);
    let s = h.subscribe(Topics::All, None, None).unwrap();
    let (count, waker) = counting();
    let mut cx = Context::from_waker(&waker);
    assert!(s.poll_recv(&mut cx).is_pending());
    // Two frames queued while waiting: one wake-up; both are there to take.
    h.publish(&Topic::default_topic(), &ev("a"));
    h.publish(&Topic::default_topic(), &ev("b"));
    assert_eq!(woken(&count), 1);
    assert!(matches!(s.poll_recv(&mut cx), Poll::Ready(Some(_))));
    assert!(matches!(s.poll_recv(&mut cx), Poll::Ready(Some(_))));
    // Not waiting (a frame was taken on the second look): no wake-up.
    assert!(s.poll_recv(&mut cx).is_pending());
    assert_eq!(woken(&count), 1);
    // Closing wakes the waiting writer, which then sees the end.
    h.close();
    assert_eq!(woken(&count), 2);
    assert!(matches!(s.poll_recv(&mut cx), Poll::Ready(None)));
}

#[test]
fn poll_recv_sees_eviction() {
    let h = hub(2, 0);
    let s = h.subscribe(Topics::All, None, None).unwrap();
    let (count, waker) = counting();
    let mut cx = Context::from_waker(&waker);
    assert!(s.poll_recv(&mut cx).is_pending());
    for d in ["a", "b", "c"] {
        h.publish(&Topic::default_topic(), &ev(d));
    }
    // Woken by the first frame; the third found the queue full and closed it.
    assert!(woken(&count) >= 1);
    assert!(matches!(s.poll_recv(&mut cx), Poll::Ready(Some(_))));
    assert!(matches!(s.poll_recv(&mut cx), Poll::Ready(Some(_))));
    assert!(matches!(s.poll_recv(&mut cx), Poll::Ready(None)));
}

#[test]
fn close_refuses_new_subscribers_and_closes_queues() {
    let h = hub(10, 10);
    let s = h.subscribe(Topics::All, None, None).unwrap();
    h.publish(&Topic::default_topic(), &ev("last"));
    h.close();
    assert!(h.subscribe(Topics::All, None, None).is_err());
    // What was queued is still delivered, then the queue reports closed.
    assert!(s.receiver().try_recv().is_ok());
    assert!(s.receiver().try_recv().is_err());
    assert!(s.receiver().is_closed());
    assert_eq!(h.stats().snapshot().ended[3], 1);
}

/// A socket that takes up to `room` bytes per write and records what it took.
struct FakeSink {
    took: Mutex<Vec<u8>>,
    room: std::sync::atomic::AtomicUsize,
}

impl FakeSink {
    fn new(room: usize) -> Arc<FakeSink> {
        Arc::new(FakeSink {
            took: Mutex::new(Vec::new()),
            room: std::sync::atomic::AtomicUsize::new(room),
        })
    }

    fn text(&self) -> String {
        String::from_utf8(self.took.lock().unwrap().clone()).unwrap()
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
}

/// A hub whose direct jobs are kept for the test to run.
fn direct_hub(queue: usize) -> (Hub, Arc<Mutex<Vec<DirectJob>>>) {
    let h = hub(queue, 0);
    let jobs = Arc::new(Mutex::new(Vec::new()));
    let keep = jobs.clone();
    h.set_direct_runner(move |job| keep.lock().unwrap().push(job));
    (h, jobs)
}

fn run_jobs(jobs: &Mutex<Vec<DirectJob>>) -> usize {
    let taken: Vec<DirectJob> = std::mem::take(&mut *jobs.lock().unwrap());
    let n = taken.len();
    for job in taken {
        job.run();
    }
    n
}

/// A subscriber with `sink` whose writer (woken through the returned waker) waits
/// with an empty queue, so the next publish may write to it directly.
fn waiting_with(h: &Hub, sink: Arc<dyn DirectSink>) -> (Subscription, Arc<Count>, Waker) {
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
    assert_eq!(sink.text(), "id: 1\ndata: a\n\n");
    // The writer was not woken and still waits with an empty queue.
    assert_eq!(woken(&count), 0);
    assert!(s.poll_next(&mut cx).is_pending());
    assert_eq!(s.receiver().len(), 0);
    let st = h.stats().snapshot();
    assert_eq!(
        (st.direct_writes, st.frames_written, st.write_calls),
        (1, 1, 1)
    );
    // Again: the socket was handed back, so the next frame goes direct too.
    h.publish(&Topic::default_topic(), &ev("b"));
    assert_eq!(run_jobs(&jobs), 1);
    assert_eq!(sink.text(), "id: 1\ndata: a\n\nid: 2\ndata: b\n\n");
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
    assert_eq!(s.receiver().len(), 2);
    // The writer may not take them, nor write, while the direct write holds the socket.
    assert!(s.try_recv().is_none());
    assert!(s.poll_next(&mut cx).is_pending());
    assert!(s.poll_own(&mut cx).is_pending());
    assert_eq!(woken(&count), 0);
    run_jobs(&jobs);
    // Handed back with frames queued: the writer is woken and takes them next.
    assert_eq!(woken(&count), 1);
    assert_eq!(sink.text(), "id: 1\ndata: a\n\n");
    let Poll::Ready(Some((b, 0))) = s.poll_next(&mut cx) else {
        panic!("expected b");
    };
    assert_eq!(texts(&[b]), ["id: 2\ndata: b\n\n"]);
    assert_eq!(texts(&[s.try_recv().unwrap()]), ["id: 3\ndata: c\n\n"]);
    // A busy writer was seen: the next publish queues instead of writing directly.
    h.publish(&Topic::default_topic(), &ev("d"));
    assert!(jobs.lock().unwrap().is_empty());
    assert_eq!(texts(&[s.try_recv().unwrap()]), ["id: 4\ndata: d\n\n"]);
}

#[test]
fn a_partial_direct_write_hands_the_rest_to_the_writer() {
    let (h, jobs) = direct_hub(4);
    let sink = FakeSink::new(5);
    let (s, count, waker) = waiting_with(&h, sink.clone());
    let mut cx = Context::from_waker(&waker);
    h.publish(&Topic::default_topic(), &ev("hello"));
    run_jobs(&jobs);
    assert_eq!(sink.text(), "id: 1");
    assert_eq!(woken(&count), 1);
    let Poll::Ready(Some((frame, 5))) = s.poll_next(&mut cx) else {
        panic!("expected the rest of the frame from byte 5");
    };
    assert_eq!(&frame.as_bytes()[5..], b"\ndata: hello\n\n");
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
fn split_keeps_every_target_once() {
    let (h, jobs) = direct_hub(4);
    let subs: Vec<_> = (0..5)
        .map(|_| {
            let s = h.subscribe(Topics::All, None, None).unwrap();
            s.set_direct_sink(FakeSink::new(usize::MAX));
            s
        })
        .collect();
    let (_count, waker) = counting();
    let mut cx = Context::from_waker(&waker);
    for s in &subs {
        assert!(s.poll_next(&mut cx).is_pending());
    }
    h.publish(&Topic::default_topic(), &ev("a"));
    let job = jobs.lock().unwrap().pop().unwrap();
    let parts = job.split(2);
    assert_eq!(parts.iter().map(DirectJob::len).collect::<Vec<_>>(), [3, 2]);
    for p in parts {
        p.run();
    }
    assert_eq!(h.stats().snapshot().direct_writes, 5);
    assert_eq!(
        DirectJob::split(
            DirectJob {
                frame: Frame::from_encoded(Vec::new()),
                targets: Vec::new(),
                stats: h.stats().clone()
            },
            3
        )
        .len(),
        1
    );
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
    drop(h);
    runner.join().unwrap();
    let got = String::from_utf8(socket.lock().unwrap().clone()).unwrap();
    let want: String = (0..EVENTS)
        .map(|i| format!("id: {}\ndata: {i}\n\n", i + 1))
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "frames out of order or torn");
    // Both paths were taken: direct writes (whole or handed over) and the queue.
    assert!(st.direct_writes > 0 && st.direct_writes < EVENTS as u64);
}

fn rights(selectors: &[&str]) -> Option<Arc<Selectors>> {
    Some(Arc::new(Selectors::new(selectors.iter().copied())))
}

#[test]
fn private_events_reach_only_subscribers_whose_rights_match() {
    let h = hub(10, 10);
    let a = Topic::new("a").unwrap();
    let b = Topic::new("b").unwrap();
    let none = h.subscribe(Topics::All, None, None).unwrap();
    let for_a = h
        .subscribe_as(Topics::All, rights(&["a"]), None, None)
        .unwrap();
    let for_all = h
        .subscribe_as(Topics::All, rights(&["*"]), None, None)
        .unwrap();
    // Rights do not widen the topic filter.
    let only_b = h
        .subscribe_as(
            Topics::Only(vec![b.clone()].into()),
            rights(&["*"]),
            None,
            None,
        )
        .unwrap();
    let p = h.publish_as(&a, &ev("secret a"), Visibility::Private);
    assert_eq!(p.delivery.sent, 2);
    let p = h.publish_as(&b, &ev("secret b"), Visibility::Private);
    assert_eq!(p.delivery.sent, 2);
    let p = h.publish(&a, &ev("public a"));
    assert_eq!(p.delivery.sent, 3);
    let got = |s: &Subscription| texts(&std::iter::from_fn(|| s.try_recv()).collect::<Vec<_>>());
    assert_eq!(got(&none), ["id: 3\ndata: public a\n\n"]);
    assert_eq!(
        got(&for_a),
        ["id: 1\ndata: secret a\n\n", "id: 3\ndata: public a\n\n"]
    );
    assert_eq!(got(&for_all).len(), 3);
    assert_eq!(got(&only_b), ["id: 2\ndata: secret b\n\n"]);
}

#[test]
fn replay_never_yields_a_private_event_the_rights_do_not_cover() {
    let h = hub(10, 10);
    let a = Topic::new("a").unwrap();
    let b = Topic::new("b").unwrap();
    h.publish(&a, &ev("1 public a"));
    h.publish_as(&a, &ev("2 private a"), Visibility::Private);
    h.publish_as(&b, &ev("3 private b"), Visibility::Private);
    h.publish(&b, &ev("4 public b"));
    let data = |rights| {
        let mut s = h.subscribe_as(Topics::All, rights, Some(0), None).unwrap();
        texts(&s.take_backlog())
            .iter()
            .map(|f| f.lines().nth(1).unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(data(None), ["data: 1 public a", "data: 4 public b"]);
    assert_eq!(
        data(rights(&["a"])),
        ["data: 1 public a", "data: 2 private a", "data: 4 public b"]
    );
    assert_eq!(data(rights(&["*"])).len(), 4);
    assert_eq!(data(rights(&["c"])).len(), 2);
}
