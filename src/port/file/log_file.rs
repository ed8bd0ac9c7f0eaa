//! The optional durable history (`--history-file PATH`): an append-only file of the
//! retained events, so that a restart keeps the epoch, the offsets and the history.
//!
//! # Format (version 2, little-endian; `format.rs`)
//!
//! ```text
//! header   (32 bytes)  magic "ssehubhf" | version u32 = 2 | epoch u64 | base u64 | crc32 u32
//! record   (repeated)  magic F1 5E 52 32 | len u32 | crc32 u32 | payload (len bytes)
//! payload              offset u64 | flags u8 | topic count u8 | id_len u16 | key_len u16
//!                      | (topic_len u16 | topic) per topic, the event's own first
//!                      | id (the publisher's, id_len bytes, 0: none)
//!                      | key (the idempotency key, key_len bytes, 0: none)
//!                      | frame (the encoded SSE bytes)
//! flags                bit 0: private (replayed only to subscribers whose rights cover a topic)
//! ```
//!
//! `base` is the offset of the last event issued before the first record (0 for a new
//! file): it keeps the offsets going when compaction dropped every record. A record's
//! CRC-32 covers its magic, its `len` and its payload (so a flipped length bit is caught);
//! the header's covers the 28 bytes before it. Offsets are consecutive from `base + 1`.
//! The record magic (`F1 5E` never occurs in UTF-8 text) lets the loader find the
//! records after a damaged one.
//!
//! Version 1 (until 0.x; one topic, no publisher id or key, no record magic:
//! `len u32 | crc32 u32 | offset u64 | flags u8 | topic_len u16 | topic | frame`) is still
//! read. Such a file is rewritten in version 2 (as compaction writes it: the retained
//! tail, to `PATH.tmp`, renamed over `PATH`) as soon as it is loaded, so a file never
//! mixes versions and everything appended is version 2.
//!
//! # Loading (`load.rs`)
//!
//! At start the file is read once, record by record, into a history that keeps only the
//! tail within the caps (publisher ids and idempotency keys indexed again, so resumes by
//! the publisher's id and retried publishes work across a restart). A *bad* record
//! (short, a wrong magic or length, or failing its checksum) is a torn last write only
//! if no whole record passing its checksum follows it anywhere in the file: then it is
//! cut off and logged. A bad record followed by a valid one, a bad header, offsets out of
//! sequence, or a record that passed its checksum but does not decode, is corruption:
//! an error naming the file and the byte offset, the server does not start (rather than
//! reuse ids), and the file is left byte for byte as it was.
//!
//! # One server per file (`lock.rs`)
//!
//! Opening takes an exclusive `flock` on `PATH.lock` for the process's life and writes
//! the PID into it; a second server on the same file stops at start with one line
//! naming the file and the holder's PID.
//!
//! # Writing
//!
//! Each event is appended as one record before anyone gets it. A failed write is cut
//! back off the file (so the file stays loadable; until the cut succeeds nothing more is
//! appended) and the publish is refused. When the file holds twice the caps' worth of
//! records or bytes it is compacted: the retained events are written to `PATH.tmp`
//! (created afresh, never through a symlink or an existing file: `O_CREAT | O_EXCL |
//! O_NOFOLLOW`, whatever was there removed first), synced, and renamed over `PATH`
//! (then the directory is synced), so the file never grows past about twice the caps.
//! The caller (`port/file.rs`) does all of this under
//! the publish lock, never under the hub's lock.
//!
//! # Durability ([`Fsync`])
//!
//! - `always`: each record is synced (`fdatasync`) before the event is delivered and the
//!   publish answered; every acknowledged event survives a crash or a power cut. The
//!   sync is shared (group commit, `file/group.rs`): records appended while one sync
//!   runs are covered by the next.
//! - `interval` (default): a thread syncs the file every [`FSYNC_INTERVAL`] (1000 ms)
//!   when it changed. A process crash (`kill -9`) loses nothing that was acknowledged
//!   (the kernel has it); a power cut loses up to about a second of events.
//! - `never`: the kernel writes when it likes. A process crash loses nothing
//!   acknowledged; a power cut loses what the kernel had not written (often tens of
//!   seconds), and may leave a tail the loader refuses as corrupt.

mod format;
mod load;
mod lock;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use format::{HEADER_LEN, MAGIC, VERSION_1};
use load::{Failed, read_full};

use crate::event_id::new_epoch;
use crate::hub::HubLimits;
use crate::hub::history::{History, Retained};
use crate::stats::FileOp;

/// How often `--fsync interval` syncs a changed file. **Unit:** ms (1000).
pub const FSYNC_INTERVAL: Duration = Duration::from_millis(1000);

/// When the history file is synced to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Never explicitly (the kernel decides).
    Never,
    /// Every [`FSYNC_INTERVAL`], when the file changed, by a thread of its own.
    #[default]
    Interval,
    /// After every record, before the event is delivered and the publish answered.
    Always,
}

impl Fsync {
    /// The flag value.
    pub fn label(self) -> &'static str {
        match self {
            Fsync::Never => "never",
            Fsync::Interval => "interval",
            Fsync::Always => "always",
        }
    }
}

impl FromStr for Fsync {
    type Err = String;

    fn from_str(s: &str) -> Result<Fsync, String> {
        match s {
            "never" => Ok(Fsync::Never),
            "interval" => Ok(Fsync::Interval),
            "always" => Ok(Fsync::Always),
            _ => Err(format!("{s:?} is not one of never, interval, always")),
        }
    }
}

/// Why the history file could not be opened or loaded: one line naming the file.
#[derive(Debug)]
pub struct OpenError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong, including the byte offset for a corrupt file.
    pub what: String,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "history file {}: {}", self.path.display(), self.what)
    }
}

impl std::error::Error for OpenError {}

/// What loading found.
pub(super) struct Loaded {
    /// The history read back: its epoch and last offset, and the tail within the caps.
    pub(super) history: History,
    /// Records read from the file.
    pub(super) read: u64,
    /// Notes for the log (a new file, a torn record cut off).
    pub(super) notes: Vec<String>,
}

/// The open history file, positioned at its end.
#[derive(Debug)]
pub(super) struct LogFile {
    path: PathBuf,
    file: Arc<File>,
    fsync: Fsync,
    epoch: u64,
    /// Bytes of whole records and header: where the next record goes.
    len: u64,
    /// Records in the file.
    records: u64,
    /// Record bytes in the file (without the header).
    record_bytes: u64,
    /// After a failed write whose record could not be cut off again: cut it before
    /// anything else is appended.
    torn: bool,
    /// After a compaction that could not open the file it renamed into place: open it
    /// before anything else is appended (the old descriptor names the replaced file).
    stale: bool,
    /// After a failed compaction: not again before the file holds this many records.
    compact_not_before: u64,
    /// For `interval`: whether the file changed since the last sync, and the file the
    /// syncer thread syncs (replaced by compaction).
    dirty: Arc<AtomicBool>,
    sync_target: Arc<Mutex<Arc<File>>>,
    /// Syncs made (by `interval`'s thread, or `always`'s group commit).
    syncs: Arc<AtomicU64>,
    /// Set by tests to make the next write fail.
    #[cfg(test)]
    pub(super) fail_next: bool,
    /// The open `PATH.lock`, holding the exclusive lock (dropped last).
    held_lock: File,
}

/// Creates the file at `path` afresh for writing, never through a symlink or into an
/// existing file (`O_CREAT | O_EXCL | O_NOFOLLOW`): whatever is there (a stale temporary
/// file, a planted symlink) is removed first (a symlink itself, not what it points to).
fn create_new(path: &Path) -> io::Result<File> {
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(lock::no_follow())
            .open(path)
    };
    match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            create()
        }
        other => other,
    }
}

/// Syncs the directory holding `path`, so that a create or a rename in it is durable.
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

impl LogFile {
    /// Releases `PATH.lock` for a successor process (see `server/handover/`).
    pub(super) fn release_lock(&self) -> io::Result<()> {
        lock::release(&self.held_lock)
    }

    /// Takes `PATH.lock` again after a handover rolled back.
    pub(super) fn retake_lock(&self) -> Result<(), String> {
        lock::retake(&self.held_lock)
    }

    /// Opens (or creates) the history file at `path` and reads it back into a history
    /// that keeps the tail within `limits`.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when the file cannot be created, opened for writing, read, or is
    /// corrupt (with the byte offset).
    pub(super) fn open(
        path: &Path,
        fsync: Fsync,
        limits: HubLimits,
    ) -> Result<(LogFile, Loaded), OpenError> {
        let err = |what: String| OpenError {
            path: path.to_owned(),
            what,
        };
        let io_err = |doing: &str, e: io::Error| err(format!("cannot {doing}: {e}"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_err("open it for writing", e))?;
        let meta = file
            .metadata()
            .map_err(|e| io_err("read its metadata", e))?;
        if !meta.is_file() {
            return Err(err("not a regular file".into()));
        }
        // Before anything is read or cut: another server may be writing it.
        let lock = lock::take(path).map_err(err)?;
        let size = file
            .metadata()
            .map_err(|e| io_err("read its metadata", e))?
            .len();
        let mut notes = Vec::new();
        if size < HEADER_LEN {
            let mut start = vec![0u8; size as usize];
            read_full(&mut &file, &mut start).map_err(|e| io_err("read it", e))?;
            let n = start.len().min(MAGIC.len());
            if start[..n] != MAGIC[..n] {
                return Err(err("at byte 0: not an ssehub history file".into()));
            }
            // New, or a header torn while it was first written: no record was ever
            // written after it, so nothing is lost by a new history.
            if size > 0 {
                notes.push(format!("dropped a torn header ({size} bytes)"));
            }
            let epoch = new_epoch();
            file.set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)))
                .and_then(|_| file.write_all(&format::header(epoch, 0)))
                .and_then(|()| file.sync_all())
                .and_then(|()| sync_dir(path))
                .map_err(|e| io_err("write its header", e))?;
            notes.push(format!("new history, epoch {epoch}"));
            let log = LogFile::new(path, file, fsync, (epoch, HEADER_LEN, 0), lock);
            let history = History::after(epoch, 0);
            let read = 0;
            return Ok((
                log,
                Loaded {
                    history,
                    read,
                    notes,
                },
            ));
        }
        let mut h = [0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut h, 0)
            .map_err(|e| io_err("read it", e))?;
        let (version, epoch, base) = format::parse_header(&h).map_err(err)?;
        let found = match load::records(&file, size, version, (epoch, base), limits) {
            Ok(found) => found,
            Err(Failed::Io(e)) => return Err(io_err("read it", e)),
            Err(Failed::Corrupt(what)) => return Err(err(what)),
        };
        let (history, read, good_end) = (found.history, found.read, found.good_end);
        if let Some(torn) = found.torn {
            notes.push(torn);
            file.set_len(good_end)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_err("cut off its torn last record", e))?;
        }
        file.seek(SeekFrom::Start(good_end))
            .map_err(|e| io_err("seek to its end", e))?;
        let mut log = LogFile::new(path, file, fsync, (epoch, good_end, read), lock);
        if version == VERSION_1 {
            log.compact(history.dropped_upto(), history.retained())
                .map_err(|e| io_err("rewrite it in format version 2", e))?;
            notes.push(format!(
                "rewrote the format version 1 file in version {}",
                format::VERSION
            ));
        }
        Ok((
            log,
            Loaded {
                history,
                read,
                notes,
            },
        ))
    }

    fn new(path: &Path, file: File, fsync: Fsync, at: (u64, u64, u64), lock: File) -> Self {
        let (epoch, len, records) = at;
        let file = Arc::new(file);
        LogFile {
            path: path.to_owned(),
            file: file.clone(),
            fsync,
            epoch,
            len,
            records,
            record_bytes: len - HEADER_LEN,
            torn: false,
            stale: false,
            compact_not_before: 0,
            dirty: Arc::new(AtomicBool::new(false)),
            sync_target: Arc::new(Mutex::new(file)),
            syncs: Arc::new(AtomicU64::new(0)),
            #[cfg(test)]
            fail_next: false,
            held_lock: lock,
        }
    }

    /// For `interval`: starts a thread that syncs the file every [`FSYNC_INTERVAL`] when
    /// it changed, calling `report` when a sync fails (the next one tries again). It
    /// takes no lock but the one naming the current file, and ends once the log file
    /// is dropped.
    pub(super) fn start_syncer(&self, report: impl Fn(&io::Error) + Send + 'static) {
        let dirty: Weak<AtomicBool> = Arc::downgrade(&self.dirty);
        let target: Weak<Mutex<Arc<File>>> = Arc::downgrade(&self.sync_target);
        let syncs = self.syncs.clone();
        let _ = std::thread::Builder::new()
            .name("ssehub-fsync".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(FSYNC_INTERVAL);
                    let (Some(dirty), Some(target)) = (dirty.upgrade(), target.upgrade()) else {
                        return;
                    };
                    if dirty.swap(false, Ordering::AcqRel) {
                        let file = target.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        syncs.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = file.sync_data() {
                            dirty.store(true, Ordering::Release);
                            report(&e);
                        }
                    }
                }
            });
    }

    /// The file's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// When the file is synced.
    pub(super) fn fsync(&self) -> Fsync {
        self.fsync
    }

    /// The history's epoch, from the file.
    #[cfg(test)]
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Bytes in the file now.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Appends the record of one event (not synced: `interval`'s thread or `always`'s
    /// group commit syncs it). On failure the file is cut back to where it was, so it
    /// stays loadable; the error says which step failed.
    pub(super) fn append(&mut self, entry: &Retained) -> Result<(), (FileOp, io::Error)> {
        if self.stale {
            // A compaction replaced the file and could not open the new one.
            self.reopen().map_err(|e| (FileOp::Write, e))?;
        }
        if self.torn {
            // A record half written by an earlier failure is still at the end.
            self.cut_back().map_err(|e| (FileOp::Write, e))?;
        }
        let mut buf = Vec::with_capacity(entry.frame.len() + 64);
        format::encode_record(&mut buf, entry);
        if let Err(e) = self.write(&buf) {
            // Leave no partial record behind; the next append starts where this one did.
            if self.cut_back().is_err() {
                self.torn = true;
            }
            return Err(e);
        }
        self.len += buf.len() as u64;
        self.records += 1;
        self.record_bytes += buf.len() as u64;
        if self.fsync == Fsync::Interval {
            self.dirty.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Cuts the file back to its last whole record.
    fn cut_back(&mut self) -> io::Result<()> {
        self.file.set_len(self.len)?;
        (&*self.file).seek(SeekFrom::Start(self.len))?;
        self.torn = false;
        Ok(())
    }

    fn write(&mut self, buf: &[u8]) -> Result<(), (FileOp, io::Error)> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next) {
            // Half a record reaches the file, as a full disk would leave it.
            let _ = (&*self.file).write_all(&buf[..buf.len() / 2]);
            let e = io::Error::new(io::ErrorKind::StorageFull, "injected write failure");
            return Err((FileOp::Write, e));
        }
        (&*self.file).write_all(buf).map_err(|e| (FileOp::Write, e))
    }

    /// The open file, for a sync made without the publish lock (`always`'s group
    /// commit). Records appended before this call are covered by its `sync_data`.
    pub(super) fn handle(&self) -> Arc<File> {
        self.file.clone()
    }

    /// The syncs counter (shared with `interval`'s thread).
    pub(super) fn syncs(&self) -> Arc<AtomicU64> {
        self.syncs.clone()
    }

    /// Cuts the last `records` records off, back to byte `len` (after a failed group
    /// sync: those events were refused). If the cut fails it is made before the next
    /// append.
    pub(super) fn cut_to(&mut self, len: u64, records: u64) -> io::Result<()> {
        self.record_bytes -= self.len - len;
        self.len = len;
        self.records -= records;
        let cut = self.cut_back();
        self.torn = cut.is_err();
        cut
    }

    /// Whether the file holds twice the caps' worth of records or bytes.
    pub(super) fn wants_compaction(&self, limits: HubLimits) -> bool {
        self.records >= self.compact_not_before
            && (self.records >= (limits.history_events.max(1) as u64).saturating_mul(2)
                || self.record_bytes >= (limits.history_bytes.max(1) as u64).saturating_mul(2))
    }

    /// After a failed compaction: try again once `more` records were appended (not at
    /// every publish).
    pub(super) fn defer_compaction(&mut self, more: u64) {
        self.compact_not_before = self.records + more.max(1);
    }

    /// Rewrites the file with only `retained` (oldest first, after `base`): written to
    /// `PATH.tmp`, synced, renamed over `PATH`, directory synced.
    pub(super) fn compact<'a>(
        &mut self,
        base: u64,
        retained: impl Iterator<Item = &'a Retained>,
    ) -> io::Result<()> {
        let tmp_path = lock::beside(&self.path, ".tmp");
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.extend_from_slice(&format::header(self.epoch, base));
        let mut records = 0;
        for entry in retained {
            format::encode_record(&mut buf, entry);
            records += 1;
        }
        let staged = (|| {
            let mut tmp = create_new(&tmp_path)?;
            tmp.write_all(&buf)?;
            tmp.sync_all()
        })()
        .and_then(|()| fs::rename(&tmp_path, &self.path));
        if let Err(e) = staged {
            let _ = fs::remove_file(&tmp_path);
            return Err(e);
        }
        // From here `PATH` is the compacted file, whatever fails next.
        self.len = buf.len() as u64;
        self.records = records;
        self.record_bytes = self.len - HEADER_LEN;
        self.torn = false;
        self.compact_not_before = 0;
        let synced = sync_dir(&self.path);
        // The old descriptor names the file the rename replaced.
        self.stale = true;
        self.reopen()?;
        synced
    }

    /// Opens `PATH` again after a compaction replaced it, positioned at its end.
    fn reopen(&mut self) -> io::Result<()> {
        let mut file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        file.seek(SeekFrom::Start(self.len))?;
        let file = Arc::new(file);
        self.file = file.clone();
        *self.sync_target.lock().unwrap_or_else(|p| p.into_inner()) = file;
        self.stale = false;
        Ok(())
    }
}

impl Drop for LogFile {
    /// A clean stop syncs what `interval` had not synced yet.
    fn drop(&mut self) {
        if self.fsync == Fsync::Interval && self.dirty.load(Ordering::Acquire) {
            let _ = self.file.sync_data();
        }
    }
}
