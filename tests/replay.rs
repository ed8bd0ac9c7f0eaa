//! Resuming a stream from the replay history with `Last-Event-ID` (or `?lastEventId=`).

use std::time::Duration;

use ssehub::Topic;
use ssehub::sse::Event;

use crate::support::{SHORT, SseClient, start};

/// Reads 10 events, hangs up while a publisher keeps going, resumes from the last id seen
/// (by header or query) and checks every later event arrives exactly once, in order.
fn resume_sees_every_later_event_once(by_header: bool) {
    const TOTAL: u64 = 300;
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    let mut first = SseClient::open(srv.addr, "/stream");
    srv.wait_subscribers(1, SHORT);
    let hub = srv.hub.clone();
    let publisher = std::thread::spawn(move || {
        let topic = Topic::default_topic();
        for i in 1..=TOTAL {
            hub.publish(&topic, &Event::new(format!("n{i}")).unwrap());
            std::thread::sleep(Duration::from_micros(700));
        }
    });
    let seen = first.expect_events(10);
    let last = seen.last().unwrap().num_id();
    assert_eq!(last, 10);
    drop(first);
    std::thread::sleep(Duration::from_millis(30));
    let last_s = last.to_string();
    let mut second = if by_header {
        SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", &last_s)])
    } else {
        SseClient::open(srv.addr, &format!("/stream?lastEventId={last}"))
    };
    let mut ids = Vec::new();
    while ids.last() != Some(&TOTAL) {
        let ev = second
            .next_event(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("stalled after ids {ids:?}"));
        assert_eq!(ev.data, format!("n{}", ev.num_id()));
        ids.push(ev.num_id());
        assert!(ids.len() as u64 <= TOTAL, "too many events");
    }
    publisher.join().unwrap();
    let want: Vec<u64> = (last + 1..=TOTAL).collect();
    assert_eq!(ids, want);
    second.assert_no_event(Duration::from_millis(50));
}

#[test]
fn resume_with_last_event_id_header_gets_every_later_event_exactly_once() {
    resume_sees_every_later_event_once(true);
}

#[test]
fn resume_with_last_event_id_query_gets_every_later_event_exactly_once() {
    resume_sees_every_later_event_once(false);
}

#[test]
fn id_older_than_the_history_gets_missed_events_comment_then_what_is_retained() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--history", "5"]);
    for i in 1..=20 {
        srv.publish("default", None, &i.to_string());
    }
    let mut s = SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", "2")]);
    let ids: Vec<u64> = s.expect_events(5).iter().map(|e| e.num_id()).collect();
    assert_eq!(ids, [16, 17, 18, 19, 20]);
    let missed: Vec<_> = s
        .parser
        .comments
        .iter()
        .filter(|(_, c)| c.starts_with("missed events"))
        .collect();
    assert_eq!(missed.len(), 1, "comments: {:?}", s.parser.comments);
    assert_eq!(
        missed[0].0, 0,
        "the comment must come before the replayed events"
    );
    s.assert_no_event(Duration::from_millis(100));
}

#[test]
fn id_exactly_at_the_history_edge_misses_nothing() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--history", "5"]);
    for i in 1..=20 {
        srv.publish("default", None, &i.to_string());
    }
    let mut s = SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", "15")]);
    let ids: Vec<u64> = s.expect_events(5).iter().map(|e| e.num_id()).collect();
    assert_eq!(ids, [16, 17, 18, 19, 20]);
    assert!(
        !s.parser
            .comments
            .iter()
            .any(|(_, c)| c.starts_with("missed")),
        "{:?}",
        s.parser.comments
    );
}

#[test]
fn future_or_non_numeric_id_is_treated_as_no_id() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    for i in 1..=3 {
        srv.publish("default", None, &i.to_string());
    }
    let mut subs = vec![
        SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", "999")]),
        SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", "abc")]),
        SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", "-1")]),
        SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", "")]),
        SseClient::open(srv.addr, "/stream?lastEventId=99999999999999999999999"),
        SseClient::open(srv.addr, "/stream?lastEventId=x1"),
    ];
    srv.wait_subscribers(subs.len(), SHORT);
    srv.publish("default", None, "fresh");
    for s in &mut subs {
        let ev = s.expect_event();
        assert_eq!((ev.id.as_str(), ev.data.as_str()), ("4", "fresh"));
    }
}

#[test]
fn replay_respects_the_topic_filter() {
    let srv = start(&["--no-demo", "--heartbeat", "0"]);
    for (i, t) in ["a", "b", "a", "c", "a"].iter().enumerate() {
        srv.publish(t, None, &format!("{t}{}", i + 1));
    }
    let mut s = SseClient::connect(srv.addr, "/stream?topic=a", &[("Last-Event-ID", "1")]);
    let got: Vec<String> = s.expect_events(2).into_iter().map(|e| e.data).collect();
    assert_eq!(got, ["a3", "a5"]);
    s.assert_no_event(Duration::from_millis(50));
}

#[test]
fn replay_backlog_larger_than_the_queue_is_delivered_whole() {
    let srv = start(&["--no-demo", "--heartbeat", "0", "--queue", "8"]);
    for i in 1..=500 {
        srv.publish("default", None, &format!("h{i}"));
    }
    let mut s = SseClient::connect(srv.addr, "/stream", &[("Last-Event-ID", "0")]);
    for i in 501..=510 {
        srv.publish("default", None, &format!("h{i}"));
        std::thread::sleep(Duration::from_millis(2));
    }
    let ids: Vec<u64> = s.expect_events(510).iter().map(|e| e.num_id()).collect();
    assert_eq!(ids, (1..=510).collect::<Vec<_>>());
}
