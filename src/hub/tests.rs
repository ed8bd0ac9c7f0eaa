//! Tests of the hub: fan-out, eviction, replay, waiting and direct writes.

use super::*;
use crate::event_id::ResetReason;
use crate::sse::Event;
use crate::topic::Topic;
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

pub(crate) fn ev(data: &str) -> Event {
    Event::new(data).unwrap()
}

/// The frame text the hub `h` encodes for `data` at `offset`.
pub(crate) fn framed(h: &Hub, offset: u64, data: &str) -> String {
    format!("id: {}-{offset}\ndata: {data}\n\n", h.epoch())
}

pub(crate) fn texts(frames: &[Frame]) -> Vec<String> {
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
    assert_eq!(p.id, EventId::new(h.epoch(), 1));
    assert_eq!(h.last_id(), Some(p.id));
    assert_eq!(p.delivery.sent, 2);
    let fa = a.receiver().unwrap().try_recv().unwrap();
    let fb = b.receiver().unwrap().try_recv().unwrap();
    // The same allocation reaches both: no per-client copy.
    assert!(std::ptr::eq(fa.as_bytes(), fb.as_bytes()));
    assert_eq!(texts(&[fa]), [framed(&h, 1, "x")]);
    assert_eq!(
        h.publish(&Topic::default_topic(), &ev("y")).id,
        EventId::new(h.epoch(), 2)
    );
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
        fast.receiver().unwrap().try_recv().unwrap();
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
    assert_eq!(slow.receiver().unwrap().len(), 3);
    assert!(slow.receiver().unwrap().is_closed());
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
    assert_eq!(only_a.receiver().unwrap().len(), 1);
    assert_eq!(all.receiver().unwrap().len(), 2);
}

/// The reset event's JSON data, when `frame` is one.
fn reset_json(frame: &Frame) -> Option<serde_json::Value> {
    let text = std::str::from_utf8(frame.as_bytes()).ok()?;
    let data = text
        .strip_prefix("event: reset\ndata: ")?
        .strip_suffix("\n\n")?;
    serde_json::from_str(data).ok()
}

/// A hub holding events 1..=5 on topics a, b, a, b, a (data "1" ... "5"), keeping
/// `history` of them.
fn five_on_two_topics(history: usize) -> (Hub, Topic, Topic) {
    let h = hub(10, history);
    let a = Topic::new("a").unwrap();
    let b = Topic::new("b").unwrap();
    for i in 1..=5 {
        h.publish(if i % 2 == 0 { &b } else { &a }, &ev(&i.to_string()));
    }
    (h, a, b)
}

/// Subscribes to `topics` with `last`, returns the outcome and the backlog, and checks
/// that the hub counted the outcome and that `resume_outcome` would have said the same.
pub(crate) fn resume(h: &Hub, topics: Topics, last: Option<&str>) -> (Resume, Vec<Frame>) {
    let before = h.stats().snapshot();
    let peek = h.resume_outcome(last);
    let mut s = h.subscribe(topics, last, None).unwrap();
    let after = h.stats().snapshot();
    assert_eq!(s.resume(), peek, "resume_outcome disagrees for {last:?}");
    let i = s.resume().index();
    assert_eq!(after.resumes[i], before.resumes[i] + 1);
    if let Resume::Reset(r) = s.resume() {
        assert_eq!(after.resets[r.index()], before.resets[r.index()] + 1);
    }
    (s.resume(), s.take_backlog())
}

pub(crate) fn only(t: &Topic) -> Topics {
    Topics::Only(vec![t.clone()].into())
}

#[test]
fn no_id_starts_live_without_a_reset() {
    let (h, a, _) = five_on_two_topics(10);
    for last in [None, Some("")] {
        let (r, backlog) = resume(&h, only(&a), last);
        assert_eq!(r, Resume::Initialized, "{last:?}");
        assert!(backlog.is_empty());
    }
}

#[test]
fn id_of_this_epoch_continues_with_exactly_the_later_events_on_its_topics() {
    let (h, a, b) = five_on_two_topics(10);
    let id = |n| format!("{}-{n}", h.epoch());
    let (r, backlog) = resume(&h, only(&a), Some(&id(1)));
    assert_eq!(r, Resume::Continue);
    assert_eq!(texts(&backlog), [framed(&h, 3, "3"), framed(&h, 5, "5")]);
    let (r, backlog) = resume(&h, only(&b), Some(&id(2)));
    assert_eq!(r, Resume::Continue);
    assert_eq!(texts(&backlog), [framed(&h, 4, "4")]);
    // At the last id: nothing to replay, still a continue.
    let (r, backlog) = resume(&h, Topics::All, Some(&id(5)));
    assert_eq!(r, Resume::Continue);
    assert!(backlog.is_empty());
    // Offset 0 is "before the first event": everything, when nothing was dropped.
    let (r, backlog) = resume(&h, Topics::All, Some(&id(0)));
    assert_eq!(r, Resume::Continue);
    assert_eq!(backlog.len(), 5);
}

#[test]
fn id_older_than_the_history_is_an_evicted_reset_then_every_retained_event() {
    // History of 3: events 3, 4, 5 kept, 1 and 2 dropped.
    let (h, a, _) = five_on_two_topics(3);
    let id = |n| format!("{}-{n}", h.epoch());
    let (r, backlog) = resume(&h, only(&a), Some(&id(1)));
    assert_eq!(r, Resume::Reset(ResetReason::Evicted));
    assert_eq!(
        reset_json(&backlog[0]).unwrap(),
        serde_json::json!({"reason": "evicted", "last_event_id": id(1),
            "replay_from": id(3), "first_retained": id(3), "last": id(5)})
    );
    assert_eq!(
        texts(&backlog[1..]),
        [framed(&h, 3, "3"), framed(&h, 5, "5")]
    );
    // Right before the oldest kept: nothing was missed.
    let (r, backlog) = resume(&h, only(&a), Some(&id(2)));
    assert_eq!(r, Resume::Continue);
    assert_eq!(texts(&backlog), [framed(&h, 3, "3"), framed(&h, 5, "5")]);
    let (r, _) = resume(&h, Topics::All, Some(&id(0)));
    assert_eq!(r, Resume::Reset(ResetReason::Evicted));
}

#[test]
fn replay_from_names_the_first_event_on_the_clients_topics() {
    let (h, _, b) = five_on_two_topics(3);
    let id = |n| format!("{}-{n}", h.epoch());
    let (r, backlog) = resume(&h, only(&b), Some(&id(1)));
    assert_eq!(r, Resume::Reset(ResetReason::Evicted));
    let j = reset_json(&backlog[0]).unwrap();
    assert_eq!(
        (j["replay_from"].as_str(), j["first_retained"].as_str()),
        (Some(&*id(4)), Some(&*id(3)))
    );
    assert_eq!(texts(&backlog[1..]), [framed(&h, 4, "4")]);
    // No retained event on the client's topics: replay_from is null.
    let c = Topic::new("c").unwrap();
    let (_, backlog) = resume(&h, only(&c), Some(&id(1)));
    assert_eq!(backlog.len(), 1);
    assert!(reset_json(&backlog[0]).unwrap()["replay_from"].is_null());
}

#[test]
fn id_of_another_epoch_is_a_reset_then_every_retained_event_on_its_topics() {
    let (h, a, _) = five_on_two_topics(10);
    let older = format!("{}-3", h.epoch() - 1);
    let (r, backlog) = resume(&h, only(&a), Some(&older));
    assert_eq!(r, Resume::Reset(ResetReason::OtherEpoch));
    let id = |n| format!("{}-{n}", h.epoch());
    assert_eq!(
        reset_json(&backlog[0]).unwrap(),
        serde_json::json!({"reason": "other-epoch", "last_event_id": older,
            "replay_from": id(1), "first_retained": id(1), "last": id(5)})
    );
    assert_eq!(
        texts(&backlog[1..]),
        [framed(&h, 1, "1"), framed(&h, 3, "3"), framed(&h, 5, "5")]
    );
    // A later epoch (a clock set back) cannot be placed either: all retained follow.
    let later = format!("{}-1", h.epoch() + 1);
    let (r, backlog) = resume(&h, Topics::All, Some(&later));
    assert_eq!(r, Resume::Reset(ResetReason::OtherEpoch));
    assert_eq!(backlog.len(), 6);
}

#[test]
fn another_epoch_with_an_empty_history_is_a_reset_with_nulls() {
    let h = hub(10, 10);
    let (r, backlog) = resume(&h, Topics::All, Some("1700000000000-9"));
    assert_eq!(r, Resume::Reset(ResetReason::OtherEpoch));
    assert_eq!(
        reset_json(&backlog[0]).unwrap(),
        serde_json::json!({"reason": "other-epoch", "last_event_id": "1700000000000-9",
            "replay_from": null, "first_retained": null, "last": null})
    );
    assert_eq!(backlog.len(), 1);
}

#[test]
fn text_that_is_not_an_id_is_an_unknown_reset_and_replays_nothing() {
    let (h, a, _) = five_on_two_topics(10);
    let epoch = h.epoch();
    let leading_zero = format!("{epoch}-03");
    for sent in ["3", "0", "garbage", "-1", " 3", &leading_zero, "1-2-3"] {
        let (r, backlog) = resume(&h, only(&a), Some(sent));
        assert_eq!(r, Resume::Reset(ResetReason::Unknown), "{sent:?}");
        assert_eq!(backlog.len(), 1, "{sent:?}: nothing replayed");
        let j = reset_json(&backlog[0]).unwrap();
        assert_eq!(j["reason"], "unknown");
        assert_eq!(j["last_event_id"], sent);
        assert!(j["replay_from"].is_null());
        assert_eq!(j["first_retained"], format!("{epoch}-1"));
        assert_eq!(j["last"], format!("{epoch}-5"));
    }
}

#[test]
fn id_of_this_epoch_after_the_last_is_a_future_reset_and_replays_nothing() {
    let (h, _, _) = five_on_two_topics(10);
    let ahead = format!("{}-6", h.epoch());
    let (r, backlog) = resume(&h, Topics::All, Some(&ahead));
    assert_eq!(r, Resume::Reset(ResetReason::Future));
    assert_eq!(backlog.len(), 1);
    let j = reset_json(&backlog[0]).unwrap();
    assert_eq!(
        (j["reason"].as_str(), j["last_event_id"].as_str()),
        (Some("future"), Some(&*ahead))
    );
    // Then live: the next event is queued as usual.
    let mut s = h.subscribe(Topics::All, Some(&ahead), None).unwrap();
    s.take_backlog();
    h.publish(&Topic::default_topic(), &ev("6"));
    assert_eq!(texts(&[s.try_recv().unwrap()]), [framed(&h, 6, "6")]);
}

#[test]
fn with_replay_off_only_the_last_id_continues() {
    let (h, _, _) = five_on_two_topics(0);
    assert_eq!(h.history_len(), 0);
    let id = |n| format!("{}-{n}", h.epoch());
    assert_eq!(resume(&h, Topics::All, Some(&id(5))).0, Resume::Continue);
    let (r, backlog) = resume(&h, Topics::All, Some(&id(4)));
    assert_eq!(r, Resume::Reset(ResetReason::Evicted));
    let j = reset_json(&backlog[0]).unwrap();
    assert!(j["replay_from"].is_null() && j["first_retained"].is_null());
    assert_eq!(j["last"], id(5));
}

#[test]
fn two_hubs_never_issue_the_same_id() {
    let first = hub(10, 10);
    let a = first.publish(&Topic::default_topic(), &ev("x")).id;
    drop(first);
    // A "restart" in the same process, however soon: a later epoch.
    let second = hub(10, 10);
    let b = second.publish(&Topic::default_topic(), &ev("x")).id;
    assert_eq!(a.offset, b.offset);
    assert!(b.epoch > a.epoch);
    assert_ne!(a.to_string(), b.to_string());
    let (r, backlog) = resume(&second, Topics::All, Some(&a.to_string()));
    assert_eq!(r, Resume::Reset(ResetReason::OtherEpoch));
    assert_eq!(texts(&backlog[1..]), [framed(&second, 1, "x")]);
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
    while reading.receiver().unwrap().try_recv().is_ok() {}
    let b = h.queue_load();
    assert_eq!(
        b,
        QueueLoad {
            subscribers: 2,
            behind: 1,
            queued: 2
        }
    );
    // The lagging one still takes data: the server is behind for it.
    assert!(b.congested());
    // A socket full just now: a client that reads, but slower than the burst comes.
    // The server still paces for it.
    lagging.set_socket_full(true);
    assert!(h.queue_load().congested());
    // Once its socket has stayed full that long, the client is the slow one: no pacing.
    lagging
        .state
        .set_socket_full_since(super::writer_state::STOPPED_READING_AFTER);
    assert!(!h.queue_load().congested());
    let p = h.publish(&Topic::default_topic(), &ev("3"));
    assert_eq!(p.delivery.behind, 0);
    // It took data again: behind once more.
    lagging.set_socket_full(false);
    assert!(h.queue_load().congested());
    drop(lagging);
    assert_eq!(
        h.queue_load(),
        QueueLoad {
            subscribers: 1,
            behind: 0,
            queued: 1
        }
    );
}

/// A waker that counts its wake-ups (for the hub's tests, and the server's).
pub(crate) struct Count(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A new counting waker, and its count.
pub(crate) fn counting() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

/// The wake-ups `c` counted.
pub(crate) fn woken(c: &Count) -> usize {
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
    assert!(s.receiver().unwrap().try_recv().is_ok());
    assert!(s.receiver().unwrap().try_recv().is_err());
    assert!(s.receiver().unwrap().is_closed());
    assert_eq!(h.stats().snapshot().ended[3], 1);
}

pub(crate) mod direct;
mod private;
mod tagged;
