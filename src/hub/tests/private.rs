//! Private events: only subscribers whose rights cover the topic get them, live and in
//! replay.

use super::*;

/// The data lines of `frames`, joined per frame.
fn data(frames: &[Frame]) -> Vec<String> {
    texts(frames)
        .iter()
        .map(|f| {
            f.lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
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
    let got = |s: &Subscription| data(&std::iter::from_fn(|| s.try_recv()).collect::<Vec<_>>());
    assert_eq!(got(&none), ["public a"]);
    assert_eq!(got(&for_a), ["secret a", "public a"]);
    assert_eq!(got(&for_all).len(), 3);
    assert_eq!(got(&only_b), ["secret b"]);
}

#[test]
fn replay_never_yields_a_private_event_the_rights_do_not_cover() {
    let h = hub(10, 10);
    let a = Topic::new("a").unwrap();
    let b = Topic::new("b").unwrap();
    let first = h.publish(&a, &ev("0 start")).id.to_string();
    h.publish(&a, &ev("1 public a"));
    h.publish_as(&a, &ev("2 private a"), Visibility::Private);
    h.publish_as(&b, &ev("3 private b"), Visibility::Private);
    h.publish(&b, &ev("4 public b"));
    let replay = |rights| {
        let mut s = h
            .subscribe_as(Topics::All, rights, Some(&first), None)
            .unwrap();
        data(&s.take_backlog())
    };
    assert_eq!(replay(None), ["1 public a", "4 public b"]);
    assert_eq!(
        replay(rights(&["a"])),
        ["1 public a", "2 private a", "4 public b"]
    );
    assert_eq!(replay(rights(&["*"])).len(), 4);
    assert_eq!(replay(rights(&["c"])).len(), 2);
}
