//! Group commit for `--fsync always`: publishes that arrive while a sync runs share the
//! next one.
//!
//! A publisher appends its record under the publish lock (not synced), queues the event
//! here and releases the lock. Then it waits until its event is durable and committed.
//! The first waiter when no sync runs becomes the **leader**: it notes the last record
//! appended and the file it went to, syncs that file (`fdatasync`, holding no lock), and
//! hands every queued event up to that record to the hub (`Hub::commit`), in id order,
//! and wakes the others. Only one leader runs at a time, so fan-out follows id order and
//! happens only after durability; the hub lock is never held during file I/O.
//!
//! Compaction runs only in a leader's turn, under the publish lock, after syncing and
//! committing whatever is queued: no sync is in flight and nothing is queued while the
//! file is replaced. A failed sync refuses every queued event: their records are cut off
//! the file (they were never delivered nor answered) and their ids are issued again.
//!
//! Locks, in order: the publish lock, then this group's mutex, then the hub lock (only
//! [`Hub::commit`], never with this mutex held). The leader's turn is a flag, not a lock:
//! nobody holding the publish lock waits for it.
//!
//! **Test hook:** `SSEHUB_TEST_SYNC_DELAY_MS` (read once when the file is opened) sleeps
//! that long before each of these syncs, to show the gain where disks are slow.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::{FileLog, HistoryFileError, LogWriter};
use crate::hub::Delivery;
use crate::hub::history::{History, Retained};
use crate::stats::FileOp;

/// The test hook's variable (see the module docs). **Unit:** ms.
pub const SYNC_DELAY_VAR: &str = "SSEHUB_TEST_SYNC_DELAY_MS";

/// An event appended and waiting for its sync.
struct Queued {
    entry: Retained,
    /// Where its record starts in the file.
    at: u64,
}

/// Why a group sync failed, for each publish it refuses.
#[derive(Clone)]
struct Failure {
    kind: io::ErrorKind,
    text: String,
}

struct State {
    queue: VecDeque<Queued>,
    /// The answers for the waiting publishers, by offset.
    done: HashMap<u64, Result<Delivery, Failure>>,
    /// The last offset appended, and the file it went to.
    appended: u64,
    file: Arc<File>,
    /// The last offset synced and committed.
    committed: u64,
    /// Whether a leader's turn is on.
    leading: bool,
    /// Failed syncs so far (a retry waiting for the event it repeats checks it).
    failures: u64,
}

/// The group commit of one history file.
pub(super) struct Group {
    state: Mutex<State>,
    woken: Condvar,
    path: PathBuf,
    /// The test hook's delay before each sync. **Unit:** µs.
    delay_us: AtomicU64,
    syncs: Arc<AtomicU64>,
    /// Set by tests to make the next sync fail.
    #[cfg(test)]
    pub(super) fail_next: std::sync::atomic::AtomicBool,
}

impl Group {
    /// The group of a file whose last record is `last`, appended to `file`.
    pub(super) fn new(path: PathBuf, file: Arc<File>, last: u64, syncs: Arc<AtomicU64>) -> Group {
        let delay_ms = std::env::var(SYNC_DELAY_VAR)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        Group {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                done: HashMap::new(),
                appended: last,
                file,
                committed: last,
                leading: false,
                failures: 0,
            }),
            woken: Condvar::new(),
            path,
            delay_us: AtomicU64::new(delay_ms.saturating_mul(1000)),
            syncs,
            #[cfg(test)]
            fail_next: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Test hook: sleep `delay` before each sync.
    #[cfg(test)]
    pub(super) fn set_delay(&self, delay: Duration) {
        self.delay_us
            .store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, s: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.woken.wait(s).unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `entry`, just appended at byte `at` of `file`. Called under the publish
    /// lock, so events are queued in id order.
    pub(super) fn queue(&self, entry: Retained, at: u64, file: Arc<File>) {
        let mut s = self.lock();
        s.appended = entry.id.offset;
        s.file = file;
        s.queue.push_back(Queued { entry, at });
    }

    /// Syncs `file` (after the test hook's delay), counted.
    fn sync(&self, file: &File) -> io::Result<()> {
        let delay = self.delay_us.load(Ordering::Relaxed);
        if delay > 0 {
            std::thread::sleep(Duration::from_micros(delay));
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        #[cfg(test)]
        if self.fail_next.swap(false, Ordering::AcqRel) {
            return Err(io::Error::other("injected sync failure"));
        }
        file.sync_data()
    }

    fn error(&self, f: Failure) -> HistoryFileError {
        HistoryFileError {
            path: self.path.clone(),
            op: FileOp::Sync,
            source: io::Error::new(f.kind, f.text),
        }
    }
}

impl FileLog {
    /// Waits until the event at `offset` (queued by this thread) is durable and
    /// committed, leading a sync when none runs; its delivery.
    pub(super) fn durable(&self, g: &Group, offset: u64) -> Result<Delivery, HistoryFileError> {
        let mut s = g.lock();
        loop {
            if let Some(answer) = s.done.remove(&offset) {
                return answer.map_err(|f| g.error(f));
            }
            s = if s.leading {
                g.wait(s)
            } else {
                self.lead(g, s)
            };
        }
    }

    /// Waits until every event up to `offset` is durable (for a retry of a retained
    /// event, answered only once the event it repeats is).
    pub(super) fn durable_upto(&self, g: &Group, offset: u64) -> Result<(), HistoryFileError> {
        let mut s = g.lock();
        let failures = s.failures;
        loop {
            if s.failures != failures {
                let text = "the event it repeats could not be synced".to_owned();
                let kind = io::ErrorKind::Other;
                return Err(g.error(Failure { kind, text }));
            }
            if s.committed >= offset {
                return Ok(());
            }
            s = if s.leading {
                g.wait(s)
            } else {
                self.lead(g, s)
            };
        }
    }

    /// One leader's turn: sync what is appended, commit it, compact if due.
    fn lead<'a>(&'a self, g: &'a Group, mut s: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        s.leading = true;
        let (file, upto, committed) = (s.file.clone(), s.appended, s.committed);
        drop(s);
        if upto > committed {
            match g.sync(&file) {
                Ok(()) => self.commit_upto(g, upto),
                Err(e) => {
                    let mut w = super::lock(&self.writer);
                    self.refuse_queued(g, &mut w, &e);
                }
            }
        }
        if self.compact_due.swap(false, Ordering::AcqRel) {
            self.compact_in_turn(g);
        }
        let mut s = g.lock();
        s.leading = false;
        g.woken.notify_all();
        s
    }

    /// Hands the queued events up to `upto` (synced) to the hub, in order, and posts
    /// their answers.
    fn commit_upto(&self, g: &Group, upto: u64) {
        let batch: Vec<Queued> = {
            let mut s = g.lock();
            let n = s
                .queue
                .iter()
                .take_while(|q| q.entry.id.offset <= upto)
                .count();
            s.queue.drain(..n).collect()
        };
        let answers: Vec<(u64, Delivery)> = batch
            .into_iter()
            .map(|q| {
                (
                    q.entry.id.offset,
                    self.hub.commit(q.entry).unwrap_or_default(),
                )
            })
            .collect();
        let mut s = g.lock();
        s.committed = s.committed.max(upto);
        s.done.extend(answers.into_iter().map(|(o, d)| (o, Ok(d))));
        g.woken.notify_all();
    }

    /// After a failed sync: refuses every queued event, cuts their records off the file
    /// and takes them out of the writer's tail (their ids are issued again). Under the
    /// publish lock (`w`), in the leader's turn.
    fn refuse_queued(&self, g: &Group, w: &mut LogWriter, e: &io::Error) {
        let mut s = g.lock();
        let refused: Vec<Queued> = s.queue.drain(..).collect();
        let failure = Failure {
            kind: e.kind(),
            text: e.to_string(),
        };
        if let Some(first) = refused.first() {
            let from = first.entry.id.offset;
            let _ = w.file.cut_to(first.at, refused.len() as u64);
            w.tail = without_from(&w.tail, from, w.limits);
            s.appended = from - 1;
            s.file = w.file.handle();
            self.file_bytes.store(w.len(), Ordering::Relaxed);
        }
        for q in &refused {
            s.done.insert(q.entry.id.offset, Err(failure.clone()));
        }
        s.failures += 1;
        g.woken.notify_all();
        drop(s);
        let err = g.error(failure);
        let then = format!("{} publishes refused", refused.len());
        self.file_failed(&err, &then);
    }

    /// Compaction in a leader's turn: under the publish lock, what is queued is synced
    /// and committed first, so no record is waiting while the file is replaced.
    fn compact_in_turn(&self, g: &Group) {
        let mut w = super::lock(&self.writer);
        let (upto, committed) = {
            let s = g.lock();
            (s.appended, s.committed)
        };
        if upto > committed {
            match g.sync(&w.file.handle()) {
                Ok(()) => self.commit_upto(g, upto),
                Err(e) => self.refuse_queued(g, &mut w, &e),
            }
        }
        let result = w.compact();
        self.file_bytes.store(w.len(), Ordering::Relaxed);
        g.lock().file = w.file.handle();
        drop(w);
        if let Err(e) = result {
            self.file_failed(&e, "the file grows on; tried again later");
        }
    }
}

/// `tail` without its events from offset `from` on.
fn without_from(tail: &History, from: u64, limits: crate::hub::HubLimits) -> History {
    let keep: Vec<Retained> = tail
        .retained()
        .filter(|r| r.id.offset < from)
        .cloned()
        .collect();
    let base = keep.first().map_or(from - 1, |r| r.id.offset - 1);
    let mut h = History::after(tail.epoch(), base);
    for r in keep {
        h.push(r, limits);
    }
    h
}
