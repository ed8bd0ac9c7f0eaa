//! Tagged subscribers (`?tagged=1`): each event's frame with its topics and visibility,
//! made once per event and only while one is subscribed; the others keep the plain one.

use super::direct::{FakeSink, direct_hub, run_jobs};
use super::*;
use crate::envelope::Envelope;

fn t(name: &str) -> Topic {
    Topic::new(name).unwrap()
}

/// A queued subscriber (no socket) that is `tagged` or not.
fn joined(h: &Hub, topics: Topics, rights: &[&str], tagged: bool) -> Subscription {
    let rights = (!rights.is_empty()).then(|| Arc::new(Selectors::new(rights.iter().copied())));
    h.subscribe_direct(topics, rights, None, None, None, tagged)
        .unwrap()
}

fn publish(h: &Hub, topics: &[&str], private: bool, data: &str) {
    let env = Envelope::new(topics.iter().map(|n| t(n)).collect())
        .unwrap()
        .with_private(private);
    assert!(matches!(
        h.commit_local(env, &ev(data)),
        Local::Published(..)
    ));
}

fn drain(s: &Subscription) -> Vec<Frame> {
    std::iter::from_fn(|| s.try_recv()).collect()
}

#[test]
fn tagged_subscribers_share_one_tagged_frame_and_the_others_the_plain_one() {
    let h = hub(10, 10);
    let (x, y) = (
        joined(&h, Topics::All, &[], true),
        joined(&h, Topics::Only([t("b")].into()), &[], true),
    );
    let plain = joined(&h, Topics::All, &[], false);
    publish(&h, &["a", "b"], false, "one");
    let (fx, fy, fp) = (drain(&x), drain(&y), drain(&plain));
    let e = h.epoch();
    assert_eq!(
        texts(&fx),
        [format!("topic: a\ntopic: b\nid: {e}-1\ndata: one\n\n")]
    );
    // Made once for every tagged subscriber, not once per subscriber.
    assert!(std::ptr::eq(fx[0].as_bytes(), fy[0].as_bytes()));
    assert_eq!(texts(&fp), [framed(&h, 1, "one")]);
}

#[test]
fn a_private_event_says_so_and_reaches_only_readers() {
    let h = hub(10, 10);
    let reader = joined(&h, Topics::All, &["p/*"], true);
    let other = joined(&h, Topics::All, &[], true);
    publish(&h, &["p/1"], true, "secret");
    publish(&h, &["q"], false, "open");
    let e = h.epoch();
    assert_eq!(
        texts(&drain(&reader)),
        [
            format!("topic: p/1\nprivate: 1\nid: {e}-1\ndata: secret\n\n"),
            format!("topic: q\nid: {e}-2\ndata: open\n\n"),
        ]
    );
    assert_eq!(
        texts(&drain(&other)),
        [format!("topic: q\nid: {e}-2\ndata: open\n\n")]
    );
}

#[test]
fn comments_reach_tagged_subscribers_as_they_are() {
    let h = hub(10, 10);
    let s = joined(&h, Topics::All, &[], true);
    h.broadcast(&crate::sse::heartbeat());
    assert_eq!(texts(&drain(&s)), [": heartbeat\n\n"]);
}

#[test]
fn the_count_of_tagged_subscribers_follows_them_and_none_means_no_tagged_frame() {
    let h = hub(10, 10);
    let a = joined(&h, Topics::All, &[], true);
    let b = joined(&h, Topics::All, &[], true);
    let _plain = joined(&h, Topics::All, &[], false);
    assert_eq!(h.lock().tagged, 2);
    drop(a);
    b.end(Reason::QueueFull);
    assert_eq!(h.lock().tagged, 0);
    let c = joined(&h, Topics::All, &[], true);
    h.close();
    assert_eq!(h.lock().tagged, 0);
    drop(c);
}

#[test]
fn a_tagged_backlog_is_tagged_and_its_reset_is_not() {
    let h = hub(10, 10);
    publish(&h, &["a"], false, "1");
    publish(&h, &["b", "a"], false, "2");
    let e = h.epoch();
    let from = format!("{e}-1");
    let mut s = h
        .subscribe_direct(Topics::All, None, Some(&from), None, None, true)
        .unwrap();
    assert_eq!(
        texts(&s.take_backlog()),
        [format!("topic: b\ntopic: a\nid: {e}-2\ndata: 2\n\n")]
    );
    let mut r = h
        .subscribe_direct(
            Topics::Only([t("a")].into()),
            None,
            Some("x"),
            None,
            None,
            true,
        )
        .unwrap();
    let backlog = texts(&r.take_backlog());
    assert_eq!(backlog.len(), 1);
    assert!(
        backlog[0].starts_with("event: reset\ndata: {"),
        "{backlog:?}"
    );
}

#[test]
fn direct_writes_give_tagged_sockets_the_tagged_frame() {
    let (h, jobs) = direct_hub(4);
    let (ts, ps) = (FakeSink::new(usize::MAX), FakeSink::new(usize::MAX));
    let tagged = h
        .subscribe_direct(Topics::All, None, None, None, Some(ts.clone()), true)
        .unwrap();
    let plain = h
        .subscribe_direct(Topics::All, None, None, None, Some(ps.clone()), false)
        .unwrap();
    let (_count, waker) = counting();
    let mut cx = Context::from_waker(&waker);
    assert!(tagged.poll_next(&mut cx).is_pending());
    assert!(plain.poll_next(&mut cx).is_pending());
    publish(&h, &["a"], false, "d");
    assert_eq!(run_jobs(&jobs), 2, "one job per frame");
    let e = h.epoch();
    assert_eq!(ts.text(), format!("topic: a\nid: {e}-1\ndata: d\n\n"));
    assert_eq!(ps.text(), framed(&h, 1, "d"));
}
