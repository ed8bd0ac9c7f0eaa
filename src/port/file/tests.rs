//! Tests of a hub with a history file: restarts, refused publishes, the file's bound,
//! and the two locks (nobody but publishers waits for the disk).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::envelope::PublisherId;
use crate::event_id::{EventId, Resume};
use crate::hub::tests::{ev, framed, only, resume, texts};
use crate::hub::{Delivery, Visibility};
use crate::sse::Frame;
use crate::topic::{Topic, Topics};

/// A hub fed by a history file, with the publish calls these tests make (the file's
/// publish path, as the port runs it off the request thread).
#[derive(Clone)]
struct FileHub(Arc<FileLog>);

impl std::ops::Deref for FileHub {
    type Target = Hub;
    fn deref(&self) -> &Hub {
        self.0.hub()
    }
}

impl FileHub {
    fn open(limits: HubLimits, path: &Path, fsync: Fsync) -> FileHub {
        let stats = Arc::new(Stats::new());
        FileHub(Arc::new(
            FileLog::open(path, fsync, limits, stats, Log::silent()).unwrap(),
        ))
    }

    fn try_publish(
        &self,
        topic: &Topic,
        event: &Event,
        visibility: Visibility,
    ) -> Result<Published, HistoryFileError> {
        let env = Envelope::on(topic.clone()).with_private(visibility == Visibility::Private);
        match self.0.try_publish(env, event)? {
            Outcome::Published(p, _) => Ok(p),
            Outcome::Repeated(id) => panic!("not a retry: {id}"),
        }
    }

    /// Refused publishes say so in the result (logged and counted by the file).
    fn publish_as(&self, topic: &Topic, event: &Event, visibility: Visibility) -> Published {
        self.try_publish(topic, event, visibility)
            .unwrap_or(Published {
                id: EventId::new(self.epoch(), 0),
                delivery: Delivery::default(),
                refused: true,
            })
    }

    fn publish(&self, topic: &Topic, event: &Event) -> Published {
        self.publish_as(topic, event, Visibility::Public)
    }

    async fn try_publish_async(
        &self,
        topic: Topic,
        event: Event,
        visibility: Visibility,
    ) -> Result<Published, HistoryFileError> {
        let me = self.clone();
        smol::unblock(move || me.try_publish(&topic, &event, visibility)).await
    }

    fn fail_next_history_write(&self) {
        self.0.fail_next_write();
    }

    fn history_file_len(&self) -> Option<u64> {
        Some(self.0.len())
    }
}

/// A fresh directory for a history file, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ssehub-hub-{}-{}-{name}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("history")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn file_hub(path: &Path, history: usize, fsync: Fsync) -> FileHub {
    let limits = HubLimits {
        queue_len: 10,
        history_events: history,
        history_bytes: usize::MAX,
    };
    FileHub::open(limits, path, fsync)
}

fn default_topic() -> Topic {
    Topic::default_topic()
}

#[test]
fn a_history_file_keeps_the_epoch_offsets_and_events_across_a_restart() {
    let dir = TempDir::new("restart");
    let first = file_hub(&dir.file(), 100, Fsync::Never);
    let a = Topic::new("a").unwrap();
    let b = Topic::new("b").unwrap();
    for i in 1..=5 {
        first.publish(if i % 2 == 0 { &b } else { &a }, &ev(&i.to_string()));
    }
    let epoch = first.epoch();
    drop(first);
    let second = file_hub(&dir.file(), 100, Fsync::Never);
    assert_eq!(second.epoch(), epoch);
    assert_eq!(second.last_id(), Some(EventId::new(epoch, 5)));
    // A client from before the restart continues with exactly what it missed.
    let (r, backlog) = resume(&second, only(&a), Some(&format!("{epoch}-1")));
    assert_eq!(r, Resume::Continue);
    assert_eq!(
        texts(&backlog),
        [framed(&second, 3, "3"), framed(&second, 5, "5")]
    );
    // Ids continue.
    let p = second
        .try_publish(&a, &ev("6"), Visibility::Public)
        .unwrap();
    assert_eq!(p.id, EventId::new(epoch, 6));
}

#[test]
fn a_failed_write_refuses_the_publish_and_the_hub_goes_on() {
    let dir = TempDir::new("fail");
    let h = file_hub(&dir.file(), 100, Fsync::Always);
    let s = h.subscribe(Topics::All, None, None).unwrap();
    h.publish(&default_topic(), &ev("1"));
    h.fail_next_history_write();
    let e = h
        .try_publish(&default_topic(), &ev("lost"), Visibility::Public)
        .unwrap_err();
    assert_eq!(e.op(), FileOp::Write);
    let shown = e.to_string();
    assert!(
        shown.contains("history file") && shown.contains("injected"),
        "{shown}"
    );
    assert!(
        !shown.contains('\n') && !e.reason().contains("history"),
        "{shown}"
    );
    // `publish` says it too, without panicking, and names no event.
    h.fail_next_history_write();
    let p = h.publish(&default_topic(), &ev("lost too"));
    assert!(p.refused);
    assert_eq!(
        (p.id, p.delivery),
        (EventId::new(h.epoch(), 0), Delivery::default())
    );
    // No id used, nobody got them, counted.
    assert_eq!(h.last_id().map(|i| i.offset), Some(1));
    assert_eq!(texts(&[s.try_recv().unwrap()]), [framed(&h, 1, "1")]);
    assert!(s.try_recv().is_none());
    let snap = h.stats().snapshot();
    assert_eq!(snap.history_file_errors, [2, 0, 0]);
    assert_eq!(snap.events_published, 1);
    // The next publish works and takes the next offset; the file loads whole.
    let p = h
        .try_publish(&default_topic(), &ev("2"), Visibility::Public)
        .unwrap();
    assert_eq!((p.id.offset, p.refused), (2, false));
    assert_eq!(texts(&[s.try_recv().unwrap()]), [framed(&h, 2, "2")]);
    drop(s);
    drop(h);
    let again = file_hub(&dir.file(), 100, Fsync::Never);
    assert_eq!(again.last_id().map(|i| i.offset), Some(2));
    assert_eq!(again.history_len(), 2);
}

#[test]
fn the_history_file_stays_within_twice_the_caps() {
    let dir = TempDir::new("compact");
    let h = file_hub(&dir.file(), 10, Fsync::Never);
    let mut sizes = Vec::new();
    for i in 1..=200 {
        h.try_publish(
            &default_topic(),
            &ev(&format!("{i:05}")),
            Visibility::Public,
        )
        .unwrap();
        sizes.push(h.history_file_len().unwrap());
    }
    // One record is 12 + 16 + 7 (topic) + the frame; the header 32 bytes.
    let record = 12 + 16 + "default".len() as u64 + framed(&h, 200, "00200").len() as u64;
    let most = *sizes.iter().max().unwrap();
    assert!(most <= 32 + 20 * record, "{most} > {}", 32 + 20 * record);
    assert_eq!(
        std::fs::metadata(dir.file()).unwrap().len(),
        *sizes.last().unwrap()
    );
    drop(h);
    let again = file_hub(&dir.file(), 10, Fsync::Interval);
    assert_eq!(again.last_id().map(|i| i.offset), Some(200));
    assert_eq!(again.history_len(), 10);
    // Replay off: the file keeps only the last offset, ids still continue.
    drop(again);
    let off = file_hub(&dir.file(), 0, Fsync::Never);
    assert_eq!(off.history_len(), 0);
    assert_eq!(off.publish(&default_topic(), &ev("x")).id.offset, 201);
    drop(off);
    let back = file_hub(&dir.file(), 10, Fsync::Never);
    assert_eq!(back.last_id().map(|i| i.offset), Some(201));
}

#[test]
fn a_restart_with_smaller_caps_keeps_the_tail_and_compacts_at_once() {
    let dir = TempDir::new("smaller");
    let h = file_hub(&dir.file(), 100, Fsync::Never);
    for i in 1..=50 {
        h.publish(&default_topic(), &ev(&i.to_string()));
    }
    let big = h.history_file_len().unwrap();
    drop(h);
    let small = file_hub(&dir.file(), 5, Fsync::Never);
    assert_eq!(small.history_len(), 5);
    assert!(small.history_file_len().unwrap() < big / 4);
    let (r, backlog) = resume(&small, Topics::All, Some(&format!("{}-45", small.epoch())));
    assert_eq!(r, Resume::Continue);
    assert_eq!(backlog.len(), 5);
}

/// Runs `f` on a thread of its own; whether it finished within `within`.
fn finishes(within: Duration, f: impl FnOnce() + Send + 'static) -> bool {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(within).is_ok()
}

#[test]
fn only_publishers_wait_while_the_publish_lock_is_held() {
    let dir = TempDir::new("locks");
    let h = file_hub(&dir.file(), 100, Fsync::Always);
    h.publish(&default_topic(), &ev("1"));
    let sub = h.subscribe(Topics::All, None, None).unwrap();
    // A publisher stuck in a slow write holds the publish lock, and only it.
    let stuck = lock(&h.0.writer);
    let others = h.clone();
    let epoch = h.epoch();
    assert!(
        finishes(Duration::from_secs(10), move || {
            let late = others.subscribe(Topics::All, Some(&format!("{epoch}-0")), None);
            assert_eq!(late.unwrap().take_backlog().len(), 1);
            others.broadcast(&Frame::comment("ping").unwrap());
            let _ = (others.queue_load(), others.len(), others.topic_counts());
            let _ = (others.last_id(), others.epoch(), others.history_file_len());
            let _ = (others.history_len(), others.resume_outcome(None));
        }),
        "subscribers, heartbeats and scrapes waited for the publish lock"
    );
    assert!(
        sub.try_recv().is_some(),
        "the heartbeat reached the subscriber"
    );
    let publisher = h.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let p = publisher.publish(&default_topic(), &ev("2"));
        let _ = tx.send(p.id.offset);
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "a publisher did not wait"
    );
    drop(stuck);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(2));
    assert_eq!(texts(&[sub.try_recv().unwrap()]), [framed(&h, 2, "2")]);
}

#[test]
fn concurrent_publishers_fan_out_in_id_order() {
    let dir = TempDir::new("order");
    let limits = HubLimits {
        queue_len: 2000,
        history_events: 50,
        history_bytes: usize::MAX,
    };
    let h = FileHub::open(limits, &dir.file(), Fsync::Never);
    let sub = h.subscribe(Topics::All, None, None).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    h.try_publish(
                        &default_topic(),
                        &ev(&format!("{t}-{i}")),
                        Visibility::Public,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut offsets = Vec::new();
    while let Some(f) = sub.try_recv() {
        let text = texts(&[f]).remove(0);
        let id = text
            .strip_prefix("id: ")
            .unwrap()
            .split('\n')
            .next()
            .unwrap();
        offsets.push(id.parse::<EventId>().unwrap().offset);
    }
    assert_eq!(offsets, (1..=1000).collect::<Vec<u64>>());
    // Compacted as it went (50 retained, so at 100 records), and loads whole.
    assert!(h.history_file_len().unwrap() < 200 * 60);
    drop(h);
    let again = FileHub::open(limits, &dir.file(), Fsync::Never);
    assert_eq!(again.last_id().map(|i| i.offset), Some(1000));
}

#[test]
fn async_publishing_runs_the_disk_work_elsewhere_and_says_why_it_failed() {
    let dir = TempDir::new("async");
    let h = file_hub(&dir.file(), 10, Fsync::Always);
    let p = futures_lite::future::block_on(h.try_publish_async(
        default_topic(),
        ev("a"),
        Visibility::Public,
    ));
    assert_eq!(p.unwrap().id.offset, 1);
    h.fail_next_history_write();
    let e = futures_lite::future::block_on(h.try_publish_async(
        default_topic(),
        ev("b"),
        Visibility::Public,
    ));
    assert_eq!(e.unwrap_err().op(), FileOp::Write);
    // Without a file: at once, and never an error.
    let mem = Hub::new(HubLimits::default(), Arc::new(Stats::new()));
    let port = crate::port::Port::memory(&mem);
    let p = futures_lite::future::block_on(port.publish(Envelope::on(default_topic()), ev("c")));
    assert_eq!(p.unwrap().id, format!("{}-1", mem.epoch()));
    assert_eq!(port.status().file_bytes, None);
}

#[test]
fn a_private_event_stays_private_across_a_restart() {
    let dir = TempDir::new("private");
    let h = file_hub(&dir.file(), 10, Fsync::Never);
    h.publish(&default_topic(), &ev("public"));
    h.publish_as(&default_topic(), &ev("secret"), Visibility::Private);
    let epoch = h.epoch();
    drop(h);
    let h = file_hub(&dir.file(), 10, Fsync::Never);
    let from = format!("{epoch}-0");
    let rights = Some(Arc::new(crate::auth::Selectors::new(["*"])));
    let mut allowed = h
        .subscribe_as(Topics::All, rights, Some(&from), None)
        .unwrap();
    assert_eq!(
        texts(&allowed.take_backlog()),
        [framed(&h, 1, "public"), framed(&h, 2, "secret")]
    );
    let mut anyone = h.subscribe(Topics::All, Some(&from), None).unwrap();
    assert_eq!(texts(&anyone.take_backlog()), [framed(&h, 1, "public")]);
}

impl FileHub {
    /// Publishes `envelope` through the file: the outcome (a publish or a retry's answer).
    fn put(&self, envelope: Envelope, data: &str) -> Outcome {
        self.0.try_publish(envelope, &ev(data)).unwrap()
    }
}

#[test]
fn publisher_ids_keys_and_alternates_come_back_after_a_restart() {
    let dir = TempDir::new("envelopes");
    let h = file_hub(&dir.file(), 100, Fsync::Always);
    let (a, b) = (Topic::new("a").unwrap(), Topic::new("b").unwrap());
    let id = PublisherId::new("urn:uuid:1").unwrap();
    let key = PublisherId::named("key-2", "Idempotency-Key").unwrap();
    let with_id = Envelope::new(vec![a.clone(), b.clone()])
        .unwrap()
        .with_id(id.clone());
    let with_key = Envelope::on(a.clone())
        .with_key(key.clone())
        .with_private(true);
    assert!(matches!(h.put(with_id.clone(), "1"), Outcome::Published(_, w) if w == "urn:uuid:1"));
    let Outcome::Published(_, second) = h.put(with_key.clone(), "2") else {
        panic!("not published");
    };
    h.put(Envelope::on(a.clone()), "3");
    let epoch = h.epoch();
    drop(h);
    let h = file_hub(&dir.file(), 100, Fsync::Always);
    // Retries are recognised across the restart, by publisher id and by key.
    let retry = Envelope::on(b.clone()).with_id(id.clone());
    assert_eq!(
        h.put(retry, "again"),
        Outcome::Repeated("urn:uuid:1".into())
    );
    let retry = Envelope::on(b.clone()).with_key(key);
    assert_eq!(h.put(retry, "again"), Outcome::Repeated(second.clone()));
    assert_eq!(h.last_id(), Some(EventId::new(epoch, 3)));
    // A client resumes from the publisher's id.
    let (r, backlog) = resume(&h, only(&a), Some("urn:uuid:1"));
    assert_eq!(r, Resume::Continue);
    assert_eq!(
        texts(&backlog),
        [framed(&h, 3, "3")],
        "the private one withheld"
    );
    // The alternate topic still reaches its subscribers.
    let (_, backlog) = resume(&h, only(&b), Some(&format!("{epoch}-0")));
    assert_eq!(texts(&backlog), ["id: urn:uuid:1\ndata: 1\n\n"]);
    // Privacy too, and the next id follows.
    let rights = Some(Arc::new(crate::auth::Selectors::new(["a"])));
    let mut s = h
        .subscribe_as(only(&a), rights, Some(&format!("{epoch}-1")), None)
        .unwrap();
    assert_eq!(
        texts(&s.take_backlog()),
        [framed(&h, 2, "2"), framed(&h, 3, "3")]
    );
    assert!(matches!(h.put(Envelope::on(a), "4"), Outcome::Published(p, _) if p.id.offset == 4));
}

#[test]
fn concurrent_publishers_with_fsync_always_share_syncs_and_fan_out_in_id_order() {
    let dir = TempDir::new("group");
    let limits = HubLimits {
        queue_len: 1000,
        history_events: 40,
        history_bytes: usize::MAX,
    };
    let h = FileHub::open(limits, &dir.file(), Fsync::Always);
    // A slow disk, so that publishes pile up behind each sync.
    h.0.group().unwrap().set_delay(Duration::from_millis(2));
    let sub = h.subscribe(Topics::All, None, None).unwrap();
    let (threads, each) = (8, 40);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..each {
                    let p = h.publish(&default_topic(), &ev(&format!("{t}-{i}")));
                    assert!(!p.refused);
                }
            })
        })
        .collect();
    for t in handles {
        t.join().unwrap();
    }
    let total = threads * each;
    let mut offsets = Vec::new();
    while let Some(f) = sub.try_recv() {
        let text = texts(&[f]).remove(0);
        let id = text.strip_prefix("id: ").unwrap().split('\n').next();
        offsets.push(id.unwrap().parse::<EventId>().unwrap().offset);
    }
    assert_eq!(offsets, (1..=total).collect::<Vec<u64>>());
    let syncs = h.0.status().syncs.unwrap();
    assert!(
        syncs > 0 && syncs < total,
        "{syncs} syncs for {total} publishes"
    );
    // Compacted along the way (40 retained), and everything loads back.
    drop((sub, h));
    let again = FileHub::open(limits, &dir.file(), Fsync::Always);
    assert_eq!(again.last_id().map(|i| i.offset), Some(total));
    assert_eq!(again.history_len(), 40);
}

#[test]
fn a_failed_group_sync_refuses_the_queued_publishes_and_reissues_their_ids() {
    let dir = TempDir::new("group-fail");
    let h = file_hub(&dir.file(), 100, Fsync::Always);
    let sub = h.subscribe(Topics::All, None, None).unwrap();
    h.publish(&default_topic(), &ev("1"));
    let g = h.0.group().unwrap();
    g.fail_next
        .store(true, std::sync::atomic::Ordering::Release);
    let e = h
        .try_publish(&default_topic(), &ev("lost"), Visibility::Public)
        .unwrap_err();
    assert_eq!(e.op(), FileOp::Sync);
    assert!(e.to_string().contains("injected sync failure"), "{e}");
    // Nobody got it, it is not in the file, and its id is issued again.
    assert_eq!(texts(&[sub.try_recv().unwrap()]), [framed(&h, 1, "1")]);
    assert!(sub.try_recv().is_none());
    assert_eq!(h.stats().snapshot().history_file_errors, [0, 1, 0]);
    let p = h.publish(&default_topic(), &ev("2"));
    assert_eq!((p.id.offset, p.refused), (2, false));
    assert_eq!(texts(&[sub.try_recv().unwrap()]), [framed(&h, 2, "2")]);
    drop((sub, h));
    let again = file_hub(&dir.file(), 100, Fsync::Never);
    let (_, backlog) = resume(&again, Topics::All, Some(&format!("{}-0", again.epoch())));
    assert_eq!(
        texts(&backlog),
        [framed(&again, 1, "1"), framed(&again, 2, "2")]
    );
}
