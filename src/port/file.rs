//! The history-file backend (`--history-file`): the publish lock it runs under, and the
//! path of one publish through it.
//!
//! Such a hub has two locks, always taken in this order:
//!
//! 1. the **publish lock** (`Mutex<LogWriter>`), taken by publishers only: the next id
//!    and the record's append run under it alone;
//! 2. the **hub lock** (the registry), taken while still holding the publish lock, for
//!    the in-memory push and the fan-out only, so that fan-out order is id order.
//!
//! With `--fsync always` the sync and the commit run after the publish lock is released,
//! shared by every publish that arrived meanwhile (group commit, `file/group.rs`).
//!
//! Subscribers, evictions, heartbeats and scrapes take only the hub lock, which is never
//! held during file I/O: a slow disk delays publishers, one after the other (inherent to
//! ordered ids), and nobody else. Compaction takes the publish lock alone, after the
//! fan-out: the writer keeps its own copy of the retained tail (the frames and topics are
//! shared, so a few pointers per event) to write the compacted file from. With
//! `--fsync interval`, a thread of the file's own syncs it every
//! [`FSYNC_INTERVAL`](super::FSYNC_INTERVAL) and takes neither lock.

mod group;
mod log_file;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use group::Group;
use log_file::LogFile;
pub use log_file::{FSYNC_INTERVAL, Fsync, OpenError};

use super::{Backend, BoxFuture, PortError, Receipt, Refused, Status};
use crate::envelope::Envelope;
use crate::hub::history::{History, Retained};
use crate::hub::{Hub, HubLimits, Published};
use crate::log::Log;
use crate::sse::Event;
use crate::stats::{FileOp, Stats};

/// What the publish lock guards: the file and the writer's copy of the retained tail,
/// whose last offset is the one authority for the next id.
pub(super) struct LogWriter {
    file: LogFile,
    tail: History,
    limits: HubLimits,
}

/// An I/O error on the history file while the hub runs: a refused publish (`write`, or
/// `sync` with `--fsync always`), or a failed compaction.
#[derive(Debug)]
pub struct HistoryFileError {
    path: PathBuf,
    op: FileOp,
    source: io::Error,
}

impl HistoryFileError {
    /// The step that failed.
    pub fn op(&self) -> FileOp {
        self.op
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What failed, in one line without the file's name (for a publisher, who need not
    /// know the server's paths).
    pub fn reason(&self) -> String {
        let what = match self.op {
            FileOp::Write => "cannot write the record",
            FileOp::Sync => "cannot sync the record",
            FileOp::Compact => "cannot compact the file",
        };
        format!("{what}: {}", self.source)
    }
}

impl fmt::Display for HistoryFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "history file {}: {}", self.path.display(), self.reason())
    }
}

impl std::error::Error for HistoryFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl LogWriter {
    fn error(&self, op: FileOp, source: io::Error) -> HistoryFileError {
        HistoryFileError {
            path: self.file.path().to_owned(),
            op,
            source,
        }
    }

    /// Bytes in the file now.
    pub(super) fn len(&self) -> u64 {
        self.file.len()
    }

    /// Appends `entry` (at the writer's next id) and keeps it in the tail.
    fn append(&mut self, entry: &Retained) -> Result<(), HistoryFileError> {
        self.file
            .append(entry)
            .map_err(|(op, e)| self.error(op, e))?;
        self.tail.push(entry.clone(), self.limits);
        Ok(())
    }

    fn wants_compaction(&self) -> bool {
        self.file.wants_compaction(self.limits)
    }

    /// Rewrites the file with the retained tail, if it is due.
    fn compact(&mut self) -> Result<(), HistoryFileError> {
        if !self.wants_compaction() {
            return Ok(());
        }
        let result = self
            .file
            .compact(self.tail.dropped_upto(), self.tail.retained());
        result.map_err(|e| {
            // Not again at every publish: once the caps' worth of events more.
            let more = self.limits.history_events.max(1) as u64;
            self.file.defer_compaction(more);
            self.error(FileOp::Compact, e)
        })
    }

    /// Test hook: the next append fails as a full disk would.
    #[cfg(test)]
    pub(super) fn fail_next_write(&mut self) {
        self.file.fail_next = true;
    }
}

fn lock(writer: &Mutex<LogWriter>) -> MutexGuard<'_, LogWriter> {
    // A panic under the publish lock leaves the file as the last whole append left it.
    writer.lock().unwrap_or_else(|p| p.into_inner())
}

/// The history-file backend: the publish lock (the writer) and the hub it feeds.
pub(super) struct FileLog {
    hub: Hub,
    writer: Mutex<LogWriter>,
    /// The file's size, for scrapes that must not wait for the publish lock.
    file_bytes: AtomicU64,
    /// With `--fsync always`: the group commit.
    group: Option<Group>,
    /// Syncs made.
    syncs: Arc<AtomicU64>,
    /// With `--fsync always`: compaction is due, for the next leader's turn.
    compact_due: AtomicBool,
    stats: Arc<Stats>,
    log: Log,
}

/// What a publish through the file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Appended and committed.
    Published(Published, String),
    /// A retry of a retained event: its wire id.
    Repeated(String),
}

/// Opens (or creates) the history file at `path` and the hub it feeds: the file's
/// epoch, offsets and retained events survive a restart. See [`Fsync`] for what each
/// mode keeps through a crash.
///
/// # Errors
///
/// [`PortError::HistoryFile`] (one line, naming the file) when the file cannot be
/// created, written or compacted, or is corrupt other than in its last record.
///
/// # Panics
///
/// If `limits.queue_len` is 0.
pub(super) fn open(
    path: &Path,
    fsync: Fsync,
    limits: HubLimits,
    stats: Arc<Stats>,
    log: Log,
) -> Result<(Hub, Arc<dyn Backend>), PortError> {
    let file = FileLog::open(path, fsync, limits, stats, log).map_err(PortError::HistoryFile)?;
    Ok((file.hub.clone(), Arc::new(Arc::new(file))))
}

impl FileLog {
    /// See [`open`].
    pub(super) fn open(
        path: &Path,
        fsync: Fsync,
        limits: HubLimits,
        stats: Arc<Stats>,
        log: Log,
    ) -> Result<FileLog, OpenError> {
        assert!(limits.queue_len > 0, "queue_len must be at least 1");
        let (file, loaded) = LogFile::open(path, fsync, limits)?;
        for note in &loaded.notes {
            log.line(format_args!("history file {}: {note}", path.display()));
        }
        let history = loaded.history;
        log.line(format_args!(
            "history file {}: epoch {}, {} events read, {} kept, last offset {}",
            path.display(),
            history.epoch(),
            loaded.read,
            history.len(),
            history.last_id().map_or(0, |id| id.offset),
        ));
        let mut writer = LogWriter {
            file,
            tail: history.clone(),
            limits,
        };
        writer.compact().map_err(|e| OpenError {
            path: path.to_owned(),
            what: e.reason(),
        })?;
        if writer.file.fsync() == Fsync::Interval {
            let (stats, log, shown) = (stats.clone(), log.clone(), path.display().to_string());
            writer.file.start_syncer(move |e| {
                stats.history_file_failed(FileOp::Sync);
                log.line(format_args!(
                    "history file {shown}: cannot sync it (tried again in a second): {e}"
                ));
            });
        }
        let hub = Hub::with_history(limits, stats.clone(), log.clone(), history);
        let syncs = writer.file.syncs();
        let group = (writer.file.fsync() == Fsync::Always).then(|| {
            let last = writer.tail.next_id().offset - 1;
            Group::new(path.to_owned(), writer.file.handle(), last, syncs.clone())
        });
        Ok(FileLog {
            hub,
            group,
            syncs,
            compact_due: AtomicBool::new(false),
            file_bytes: AtomicU64::new(writer.len()),
            writer: Mutex::new(writer),
            stats,
            log,
        })
    }

    /// The hub this file feeds.
    #[cfg(test)]
    pub(super) fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Publishes through the file, on the calling thread (which waits for the disk).
    ///
    /// Publishers take the **publish lock** first: a retry is recognised, the id issued,
    /// the record appended under it alone; then, still holding it so that fan-out
    /// follows id order, the hub lock for the in-memory history and the fan-out only
    /// ([`Hub::commit`]). With [`Fsync::Always`] the event is queued instead and the
    /// publish lock released: it is committed once a sync covered its record (see
    /// `file/group.rs`), and a retry is answered once the event it repeats is durable. Subscribers, evictions
    /// and scrapes never wait for the disk; concurrent publishers wait for each other.
    /// Compaction takes the publish lock alone, after the fan-out.
    ///
    /// # Errors
    ///
    /// [`HistoryFileError`] when the record could not be written (or, with `always`,
    /// synced): the event got no id and reached nobody; it is logged and counted and the
    /// hub serves on.
    pub(super) fn try_publish(
        &self,
        envelope: Envelope,
        event: &Event,
    ) -> Result<Outcome, HistoryFileError> {
        let mut w = lock(&self.writer);
        if let Some(first) = w.tail.repeated(&envelope) {
            if let Some(group) = &self.group {
                let upto = w.tail.next_id().offset - 1;
                drop(w);
                self.durable_upto(group, upto)?;
            }
            return Ok(Outcome::Repeated(first));
        }
        let id = w.tail.next_id();
        let entry = Retained::encode(id, envelope, event);
        let wire = entry.wire_id().into_owned();
        let at = w.len();
        if let Err(e) = w.append(&entry) {
            drop(w);
            self.file_failed(&e, "publish refused");
            return Err(e);
        }
        self.file_bytes.store(w.len(), Ordering::Relaxed);
        let compact = w.wants_compaction();
        if let Some(group) = &self.group {
            group.queue(entry, at, w.file.handle());
            if compact {
                self.compact_due.store(true, Ordering::Release);
            }
            drop(w);
            let delivery = self.durable(group, id.offset)?;
            let published = Published {
                id,
                delivery,
                refused: false,
            };
            return Ok(Outcome::Published(published, wire));
        }
        let delivery = self.hub.commit(entry).unwrap_or_default();
        drop(w);
        if compact {
            self.compact();
        }
        Ok(Outcome::Published(
            Published {
                id,
                delivery,
                refused: false,
            },
            wire,
        ))
    }

    /// Compacts the file if it is still due, under the publish lock alone. A failure is
    /// logged and counted; the file grows on and compaction is tried again later.
    fn compact(&self) {
        let mut w = lock(&self.writer);
        let result = w.compact();
        self.file_bytes.store(w.len(), Ordering::Relaxed);
        drop(w);
        if let Err(e) = result {
            self.file_failed(&e, "the file grows on; tried again later");
        }
    }

    fn file_failed(&self, e: &HistoryFileError, then: &str) {
        self.stats.history_file_failed(e.op());
        self.log.line(format_args!("{e}; {then}"));
    }

    /// The file's size now. **Unit:** bytes. Takes no lock.
    pub(super) fn len(&self) -> u64 {
        self.file_bytes.load(Ordering::Relaxed)
    }

    /// With `--fsync always`, the group commit (for tests).
    #[cfg(test)]
    fn group(&self) -> Option<&Group> {
        self.group.as_ref()
    }

    /// Test hook: the next append to the history file fails.
    #[cfg(test)]
    pub(super) fn fail_next_write(&self) {
        lock(&self.writer).fail_next_write();
    }
}

impl Drop for FileLog {
    /// A stop says how many syncs the file took (with `always`, each covered a group).
    fn drop(&mut self) {
        let syncs = self.syncs.load(Ordering::Relaxed);
        if syncs > 0 {
            let w = lock(&self.writer);
            let last = w.tail.next_id().offset - 1;
            self.log.line(format_args!(
                "history file {}: {syncs} syncs, last offset {last}",
                w.file.path().display()
            ));
        }
    }
}

/// Loads the history file at `path` as a start would (created when missing, a proven
/// torn tail cut, a version-1 file rewritten) with the default caps, and closes it: the
/// records read. For the fuzz target and tools; a server uses [`Port::open`](super::Port::open).
///
/// # Errors
///
/// [`OpenError`] as at start: the file is then left as it was.
#[doc(hidden)]
pub fn load_history_file(path: &Path) -> Result<u64, OpenError> {
    let (_, loaded) = LogFile::open(path, Fsync::Never, HubLimits::default())?;
    Ok(loaded.read)
}

/// What `Retry-After` says when the history file could not take an event. **Unit:**
/// seconds.
pub const HISTORY_FILE_RETRY_AFTER: Duration = Duration::from_secs(1);

impl Backend for Arc<FileLog> {
    fn release(&self) -> Result<(), String> {
        let w = lock(&self.writer);
        w.file
            .release_lock()
            .map_err(|e| format!("cannot release the history file's lock: {e}"))
    }

    fn retake(&self) -> Result<(), String> {
        lock(&self.writer).file.retake_lock()
    }

    fn publish(&self, envelope: Envelope, event: Event) -> BoxFuture<'_, Result<Receipt, Refused>> {
        let file = self.clone();
        Box::pin(async move {
            // The disk work runs on the blocking pool, never on the thread that accepts
            // and answers everyone else.
            let done = smol::unblock(move || file.try_publish(envelope, &event)).await;
            match done {
                Ok(Outcome::Published(p, id)) => Ok(Receipt {
                    id,
                    delivered_to: Some(p.delivery.sent),
                    replayed: false,
                    congested: p.delivery.congested(),
                }),
                Ok(Outcome::Repeated(id)) => Ok(Receipt::replay(id)),
                Err(e) => Err(Refused {
                    reason: format!("history file: {}", e.reason()),
                    retry_after: HISTORY_FILE_RETRY_AFTER,
                }),
            }
        })
    }

    fn status(&self) -> Status {
        Status {
            backend: "file",
            up: true,
            reason: None,
            file_bytes: Some(self.len()),
            syncs: Some(self.syncs.load(Ordering::Relaxed)),
            broker: None,
        }
    }
}

#[cfg(test)]
mod tests;
