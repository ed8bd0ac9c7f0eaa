//! The publish path of a hub with a history file, and the publish lock it runs under.
//!
//! Such a hub has two locks, always taken in this order:
//!
//! 1. the **publish lock** (`Mutex<LogWriter>`), taken by publishers only: the next id,
//!    the record's append (and with `--fsync always` its sync) run under it alone;
//! 2. the **hub lock** (the registry), taken while still holding the publish lock, for
//!    the in-memory push and the fan-out only, so that fan-out order is id order.
//!
//! Subscribers, evictions, heartbeats and scrapes take only the hub lock, which is never
//! held during file I/O: a slow disk delays publishers, one after the other (inherent to
//! ordered ids), and nobody else. Compaction takes the publish lock alone, after the
//! fan-out: the writer keeps its own copy of the retained tail (the frames and topics are
//! shared, so a few pointers per event) to write the compacted file from. With
//! `--fsync interval`, a thread of the file's own syncs it every
//! [`FSYNC_INTERVAL`](super::FSYNC_INTERVAL) and takes neither lock.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use super::history::{History, Retained};
use super::log_file::{Fsync, LogFile, OpenError};
use super::{Delivery, Hub, HubLimits, Published, Visibility};
use crate::event_id::EventId;
use crate::log::Log;
use crate::sse::{Event, Frame, encode};
use crate::stats::{FileOp, Stats};
use crate::topic::Topic;

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

    /// Appends the event of `id` (the writer's next) and keeps it in the tail.
    fn append(
        &mut self,
        id: EventId,
        topic: &Topic,
        frame: &Frame,
        private: bool,
    ) -> Result<(), HistoryFileError> {
        self.file
            .append(id.offset, topic, frame, private)
            .map_err(|(op, e)| self.error(op, e))?;
        let entry = Retained {
            id,
            topic: topic.clone(),
            frame: frame.clone(),
            private,
        };
        self.tail.push(entry, self.limits);
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

impl Hub {
    /// Like [`Hub::with_log`], with the history kept in the file at `path` (created if
    /// it does not exist): its epoch, offsets and retained events survive a restart. See
    /// [`Fsync`] for what each mode keeps through a crash, and [`Hub::try_publish`] for
    /// the locking.
    ///
    /// # Errors
    ///
    /// [`OpenError`] (one line, naming the file) when the file cannot be created,
    /// written or compacted, or is corrupt other than in its last record.
    ///
    /// # Panics
    ///
    /// If `limits.queue_len` is 0.
    pub fn with_history_file(
        limits: HubLimits,
        stats: Arc<Stats>,
        log: Log,
        path: &Path,
        fsync: Fsync,
    ) -> Result<Hub, OpenError> {
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
        Ok(Hub::build(limits, stats, log, history, Some(writer)))
    }

    /// Like [`Hub::publish_as`], saying why a hub with a history file refused the event.
    ///
    /// With a history file, publishers take the **publish lock** first: the id, the
    /// append (and with [`Fsync::Always`] the sync) happen under it alone; then, still
    /// holding it so that fan-out follows id order, the hub lock for the in-memory
    /// history and the fan-out only. Subscribers, evictions and scrapes never wait for
    /// the disk; concurrent publishers wait for each other. Compaction takes the publish
    /// lock alone, after the fan-out.
    ///
    /// # Errors
    ///
    /// [`HistoryFileError`] when the record could not be written (or, with `always`,
    /// synced): the event got no id and reached nobody; the hub logged and counted it
    /// and serves on. Never without a history file.
    pub fn try_publish(
        &self,
        topic: &Topic,
        event: &Event,
        visibility: Visibility,
    ) -> Result<Published, HistoryFileError> {
        match &self.inner.writer {
            None => Ok(self.publish_in_memory(topic, event, visibility)),
            Some(writer) => self.publish_logged(writer, topic, event, visibility),
        }
    }

    /// [`Hub::try_publish`] for async callers (the server's `POST /publish`, the
    /// producers): without a history file it publishes at once, as `publish` does; with
    /// one, the disk work runs on the blocking thread pool, so the caller's executor
    /// thread (which accepts and answers everyone else) never waits for the disk.
    ///
    /// # Errors
    ///
    /// As [`Hub::try_publish`].
    pub async fn try_publish_async(
        &self,
        topic: Topic,
        event: Event,
        visibility: Visibility,
    ) -> Result<Published, HistoryFileError> {
        if self.inner.writer.is_none() {
            return Ok(self.publish_in_memory(&topic, &event, visibility));
        }
        let hub = self.clone();
        smol::unblock(move || hub.try_publish(&topic, &event, visibility)).await
    }

    /// Whether the hub keeps its history in a file.
    pub fn has_history_file(&self) -> bool {
        self.inner.writer.is_some()
    }

    /// The size of the history file now, with one. **Unit:** bytes. Takes no lock.
    pub fn history_file_len(&self) -> Option<u64> {
        self.inner
            .writer
            .as_ref()
            .map(|_| self.inner.file_bytes.load(Ordering::Relaxed))
    }

    /// The publish path with a history file (see `try_publish` and the module docs).
    pub(super) fn publish_logged(
        &self,
        writer: &Mutex<LogWriter>,
        topic: &Topic,
        event: &Event,
        visibility: Visibility,
    ) -> Result<Published, HistoryFileError> {
        let private = visibility == Visibility::Private;
        let mut w = lock(writer);
        let id = w.tail.next_id();
        let frame = encode(event, Some(&id.to_string()));
        if let Err(e) = w.append(id, topic, &frame, private) {
            drop(w);
            self.file_failed(&e, "publish refused");
            return Err(e);
        }
        self.inner.file_bytes.store(w.len(), Ordering::Relaxed);
        let compact = w.wants_compaction();
        let mut evicted = Vec::new();
        let mut direct = Vec::new();
        let delivery: Delivery = {
            let mut state = self.lock();
            let event = (id, topic, &frame, private);
            self.keep_and_fan_out(&mut state, event, &mut evicted, &mut direct)
        };
        drop(w);
        self.inner.stats.event_published();
        self.run_direct(frame, direct);
        self.finish_delivery(&delivery, evicted);
        if compact {
            self.compact_history_file(writer);
        }
        Ok(Published {
            id,
            delivery,
            refused: false,
        })
    }

    /// Compacts the file if it is still due, under the publish lock alone. A failure is
    /// logged and counted; the file grows on and compaction is tried again later.
    fn compact_history_file(&self, writer: &Mutex<LogWriter>) {
        let mut w = lock(writer);
        let result = w.compact();
        self.inner.file_bytes.store(w.len(), Ordering::Relaxed);
        drop(w);
        if let Err(e) = result {
            self.file_failed(&e, "the file grows on; tried again later");
        }
    }

    fn file_failed(&self, e: &HistoryFileError, then: &str) {
        self.inner.stats.history_file_failed(e.op());
        self.inner.log.line(format_args!("{e}; {then}"));
    }

    /// Test hook: the next append to the history file fails.
    #[cfg(test)]
    pub(super) fn fail_next_history_write(&self) {
        lock(self.inner.writer.as_ref().expect("a history file")).fail_next_write();
    }
}

#[cfg(test)]
mod tests;
