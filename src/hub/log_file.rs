//! The optional durable history (`--history-file PATH`): an append-only file of the
//! retained events, so that a restart keeps the epoch, the offsets and the history.
//!
//! # Format (version 1, little-endian)
//!
//! ```text
//! header  (32 bytes)  magic "ssehubhf" | version u32 = 1 | epoch u64 | base u64 | crc32 u32
//! record  (repeated)  len u32 | crc32 u32 | payload (len bytes)
//! payload             offset u64 | topic_len u16 | topic | frame (the encoded SSE bytes)
//! ```
//!
//! `base` is the offset of the last event issued before the first record (0 for a new
//! file): it keeps the offsets going when compaction dropped every record. A record's
//! CRC-32 covers its `len` and its payload; the header's covers the 28 bytes before it.
//! Offsets are consecutive from `base + 1`.
//!
//! # Loading
//!
//! At start the file is read once; the tail within the history caps is kept. A bad
//! record that reaches the end of the file (short, or failing its checksum) is a torn
//! last write: it is cut off and logged. Anything else that is wrong (a bad header, a bad
//! record followed by more data, offsets out of sequence) is an error naming the file
//! and the byte offset: the server does not start rather than reuse ids.
//!
//! # Writing
//!
//! Each event is appended as one record before it is delivered. A failed write is cut
//! back off the file (so the file stays loadable) and the publish is refused. When the
//! file holds twice the caps' worth of records or bytes, it is compacted: the retained
//! events are written to `PATH.tmp`, synced, and renamed over `PATH` (then the directory
//! is synced), so the file never grows past about twice the caps.
//!
//! # Durability ([`Fsync`])
//!
//! - `always`: each record is synced (`fdatasync`) before the publish is answered;
//!   every acknowledged event survives a crash or a power cut. Publishes wait for the
//!   disk, one at a time.
//! - `interval` (default): a thread syncs the file once a second when it changed. A
//!   process crash (`kill -9`) loses nothing that was acknowledged (the kernel has it);
//!   a power cut loses up to about a second of events.
//! - `never`: the kernel writes when it likes. A process crash loses nothing
//!   acknowledged; a power cut loses what the kernel had not written (often tens of
//!   seconds), and may leave a tail the loader refuses as corrupt.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::event_id::new_epoch;
use crate::sse::Frame;
use crate::topic::Topic;

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"ssehubhf";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Bytes of the header.
pub const HEADER_LEN: u64 = 32;
/// Bytes before a record's payload (length and checksum).
const RECORD_HEAD: u64 = 8;
/// The largest payload a record may have. **Unit:** bytes. Why: a corrupt length must
/// not make the loader allocate gigabytes.
pub const MAX_RECORD: u32 = 64 * 1024 * 1024;
/// How often `--fsync interval` syncs a changed file.
pub const FSYNC_INTERVAL: Duration = Duration::from_secs(1);

/// When the history file is synced to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Never explicitly (the kernel decides).
    Never,
    /// Once a second, when the file changed.
    #[default]
    Interval,
    /// After every record, before the publish is answered.
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

/// One event read back from the file.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) offset: u64,
    pub(crate) topic: Topic,
    pub(crate) frame: Frame,
}

/// What loading found.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The history's epoch (new for a new file).
    pub(crate) epoch: u64,
    /// The offset of the last event issued (0: none).
    pub(crate) last: u64,
    /// Every record of the file, oldest first (the caller keeps the tail it can hold).
    pub(crate) records: Vec<Record>,
    /// Notes for the log (a new file, a torn record cut off).
    pub(crate) notes: Vec<String>,
}

/// The open history file, positioned at its end.
#[derive(Debug)]
pub(crate) struct LogFile {
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
    /// After a failed compaction: not again before the file holds this many records.
    compact_not_before: u64,
    /// For `interval`: whether the file changed since the last sync, and the file the
    /// syncer thread syncs (replaced by compaction).
    dirty: Arc<AtomicBool>,
    sync_target: Arc<Mutex<Arc<File>>>,
    /// Set by tests to make the next write fail.
    #[cfg(test)]
    pub(crate) fail_next: bool,
}

fn crc_table() -> &'static [u32; 256] {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    })
}

/// CRC-32 (IEEE 802.3, as zlib and PNG), continued from `crc` (0 to start). A checksum
/// against torn and flipped bytes, not a defence against tampering.
pub fn crc32(crc: u32, bytes: &[u8]) -> u32 {
    let t = crc_table();
    let mut c = !crc;
    for &b in bytes {
        c = t[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

fn header(epoch: u64, base: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&epoch.to_le_bytes());
    h[20..28].copy_from_slice(&base.to_le_bytes());
    let crc = crc32(0, &h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends the record of one event to `buf`.
fn encode_record(buf: &mut Vec<u8>, offset: u64, topic: &Topic, frame: &Frame) {
    let topic = topic.as_str().as_bytes();
    let len = 8 + 2 + topic.len() + frame.len();
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    let start = buf.len();
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    buf.extend_from_slice(topic);
    buf.extend_from_slice(frame.as_bytes());
    let crc = crc32(crc32(0, &len.to_le_bytes()), &buf[start + 8..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Syncs the directory holding `path`, so that a create or a rename in it is durable.
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Reads as much of `buf` as the reader has; the count.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl LogFile {
    /// Opens (or creates) the history file at `path` and reads it back.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when the file cannot be created, opened for writing, read, or is
    /// corrupt (with the byte offset).
    pub(crate) fn open(path: &Path, fsync: Fsync) -> Result<(LogFile, Loaded), OpenError> {
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
        let size = meta.len();
        let mut notes = Vec::new();
        if size < HEADER_LEN {
            let mut start = vec![0u8; size as usize];
            read_full(&mut file, &mut start).map_err(|e| io_err("read it", e))?;
            let n = start.len().min(MAGIC.len());
            if start[..n] != MAGIC[..n] {
                return Err(err("at byte 0: not an ssehub history file".into()));
            }
        }
        if size < HEADER_LEN {
            // New, or a header torn while it was first written: no record was ever
            // written after it, so nothing is lost by a new history.
            if size > 0 {
                notes.push(format!("dropped a torn header ({size} bytes)"));
            }
            let epoch = new_epoch();
            file.set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)))
                .and_then(|_| file.write_all(&header(epoch, 0)))
                .and_then(|()| file.sync_all())
                .and_then(|()| sync_dir(path))
                .map_err(|e| io_err("write its header", e))?;
            notes.push(format!("new history, epoch {epoch}"));
            let log = LogFile::new(path, file, fsync, epoch, HEADER_LEN, 0, 0);
            let loaded = Loaded {
                epoch,
                last: 0,
                records: Vec::new(),
                notes,
            };
            return Ok((log, loaded));
        }
        let mut r = BufReader::with_capacity(256 * 1024, &mut file);
        let mut h = [0u8; HEADER_LEN as usize];
        let got = read_full(&mut r, &mut h).map_err(|e| io_err("read it", e))?;
        if got < h.len() || &h[..8] != MAGIC {
            return Err(err("at byte 0: not an ssehub history file".into()));
        }
        let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(err(format!(
                "at byte 8: format version {version}, this build reads {VERSION}"
            )));
        }
        if crc32(0, &h[..28]).to_le_bytes() != h[28..32] {
            return Err(err("at byte 28: header checksum mismatch".into()));
        }
        let epoch = u64::from_le_bytes(h[12..20].try_into().expect("8 bytes"));
        let base = u64::from_le_bytes(h[20..28].try_into().expect("8 bytes"));
        let mut records = Vec::new();
        let mut pos = HEADER_LEN;
        let mut last = base;
        let mut payload = Vec::new();
        let good_end = loop {
            let mut rh = [0u8; RECORD_HEAD as usize];
            let n = read_full(&mut r, &mut rh).map_err(|e| io_err("read it", e))?;
            if n == 0 {
                break pos;
            }
            let torn = |pos: u64, why: &str| {
                format!(
                    "dropped a torn last record at byte {pos} ({} bytes, {why})",
                    size - pos
                )
            };
            if n < rh.len() {
                notes.push(torn(pos, "short header"));
                break pos;
            }
            let len = u32::from_le_bytes(rh[..4].try_into().expect("4 bytes"));
            let crc = u32::from_le_bytes(rh[4..].try_into().expect("4 bytes"));
            let end = pos + RECORD_HEAD + u64::from(len);
            if !(10..=MAX_RECORD).contains(&len) {
                if end >= size {
                    notes.push(torn(pos, "bad length"));
                    break pos;
                }
                return Err(err(format!("at byte {pos}: corrupt record (length {len})")));
            }
            payload.resize(len as usize, 0);
            let n = read_full(&mut r, &mut payload).map_err(|e| io_err("read it", e))?;
            if n < payload.len() {
                notes.push(torn(pos, "short record"));
                break pos;
            }
            if crc32(crc32(0, &rh[..4]), &payload) != crc {
                if end == size {
                    notes.push(torn(pos, "checksum mismatch"));
                    break pos;
                }
                return Err(err(format!(
                    "at byte {pos}: corrupt record (checksum mismatch)"
                )));
            }
            let offset = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
            if offset != last + 1 {
                return Err(err(format!(
                    "at byte {pos}: record offset {offset}, expected {}",
                    last + 1
                )));
            }
            let tlen = usize::from(u16::from_le_bytes(payload[8..10].try_into().expect("2")));
            let topic = payload
                .get(10..10 + tlen)
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| Topic::new(t).ok())
                .ok_or_else(|| err(format!("at byte {pos}: corrupt record (topic)")))?;
            let frame = Frame::from_encoded(payload[10 + tlen..].to_vec());
            records.push(Record {
                offset,
                topic,
                frame,
            });
            last = offset;
            pos = end;
        };
        drop(r);
        if good_end < size {
            file.set_len(good_end)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_err("cut off its torn last record", e))?;
        }
        file.seek(SeekFrom::Start(good_end))
            .map_err(|e| io_err("seek to its end", e))?;
        let count = records.len() as u64;
        let log = LogFile::new(
            path,
            file,
            fsync,
            epoch,
            good_end,
            count,
            good_end - HEADER_LEN,
        );
        Ok((
            log,
            Loaded {
                epoch,
                last,
                records,
                notes,
            },
        ))
    }

    fn new(
        path: &Path,
        file: File,
        fsync: Fsync,
        epoch: u64,
        len: u64,
        records: u64,
        record_bytes: u64,
    ) -> LogFile {
        let file = Arc::new(file);
        let log = LogFile {
            path: path.to_owned(),
            file: file.clone(),
            fsync,
            epoch,
            len,
            records,
            record_bytes,
            compact_not_before: 0,
            dirty: Arc::new(AtomicBool::new(false)),
            sync_target: Arc::new(Mutex::new(file)),
            #[cfg(test)]
            fail_next: false,
        };
        if fsync == Fsync::Interval {
            log.start_syncer();
        }
        log
    }

    /// For `interval`: a thread that syncs the file once a second when it changed; it
    /// ends when the log is dropped.
    fn start_syncer(&self) {
        let dirty = Arc::downgrade(&self.dirty);
        let target: Weak<Mutex<Arc<File>>> = Arc::downgrade(&self.sync_target);
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
                        // A failure here is seen again by the next write's own error.
                        let _ = file.sync_data();
                    }
                }
            });
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The history's epoch, from the file.
    #[cfg(test)]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Bytes in the file now.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends the record of one event (and syncs it with `always`). On failure the file
    /// is cut back to where it was, so it stays loadable.
    pub(crate) fn append(&mut self, offset: u64, topic: &Topic, frame: &Frame) -> io::Result<()> {
        let mut buf = Vec::with_capacity(frame.len() + 64);
        encode_record(&mut buf, offset, topic, frame);
        let result = self.write_synced(&buf);
        if let Err(e) = result {
            // Leave no partial record behind; the next append starts where this one did.
            let _ = self.file.set_len(self.len);
            let _ = (&*self.file).seek(SeekFrom::Start(self.len));
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

    fn write_synced(&mut self, buf: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next) {
            // Half a record reaches the file, as a full disk would leave it.
            (&*self.file).write_all(&buf[..buf.len() / 2])?;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "injected write failure",
            ));
        }
        (&*self.file).write_all(buf)?;
        if self.fsync == Fsync::Always {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Whether the file holds twice the caps' worth of records or bytes.
    pub(crate) fn wants_compaction(&self, max_events: usize, max_bytes: usize) -> bool {
        self.records >= self.compact_not_before
            && (self.records >= (max_events.max(1) as u64).saturating_mul(2)
                || self.record_bytes >= (max_bytes.max(1) as u64).saturating_mul(2))
    }

    /// After a failed compaction: try again once `more` records were appended (not at
    /// every publish).
    pub(crate) fn defer_compaction(&mut self, more: u64) {
        self.compact_not_before = self.records + more.max(1);
    }

    /// Rewrites the file with only `retained` (oldest first, after `base`): written to
    /// `PATH.tmp`, synced, renamed over `PATH`, directory synced.
    pub(crate) fn compact<'a>(
        &mut self,
        base: u64,
        retained: impl Iterator<Item = (u64, &'a Topic, &'a Frame)>,
    ) -> io::Result<()> {
        let mut tmp_name = self.path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp_path = PathBuf::from(tmp_name);
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.extend_from_slice(&header(self.epoch, base));
        let mut records = 0;
        for (offset, topic, frame) in retained {
            encode_record(&mut buf, offset, topic, frame);
            records += 1;
        }
        let written = (|| {
            let mut tmp = File::create(&tmp_path)?;
            tmp.write_all(&buf)?;
            tmp.sync_all()?;
            fs::rename(&tmp_path, &self.path)?;
            sync_dir(&self.path)?;
            // Reopen: the old descriptor names the file the rename replaced.
            let mut file = OpenOptions::new().read(true).write(true).open(&self.path)?;
            file.seek(SeekFrom::End(0))?;
            Ok::<File, io::Error>(file)
        })();
        let file = match written {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_file(&tmp_path);
                return Err(e);
            }
        };
        let file = Arc::new(file);
        self.file = file.clone();
        *self.sync_target.lock().unwrap_or_else(|p| p.into_inner()) = file;
        self.len = buf.len() as u64;
        self.records = records;
        self.record_bytes = self.len - HEADER_LEN;
        self.compact_not_before = 0;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A history file path in a fresh directory, removed when dropped.
    struct Tmp(PathBuf);

    impl std::ops::Deref for Tmp {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl AsRef<Path> for Tmp {
        fn as_ref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = fs::remove_dir_all(dir);
            }
        }
    }

    fn tmp(name: &str) -> Tmp {
        let dir = std::env::temp_dir().join(format!(
            "ssehub-logfile-{}-{}-{name}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&dir).unwrap();
        Tmp(dir.join("history"))
    }

    fn frame(s: &str) -> Frame {
        Frame::from_encoded(s.as_bytes().to_vec())
    }

    fn topic() -> Topic {
        Topic::new("t").unwrap()
    }

    /// A file holding events 1..=n.
    fn with_events(name: &str, n: u64) -> (Tmp, u64) {
        let path = tmp(name);
        let (mut log, loaded) = LogFile::open(&path, Fsync::Never).unwrap();
        assert_eq!((loaded.last, loaded.records.len()), (0, 0));
        for i in 1..=n {
            log.append(i, &topic(), &frame(&format!("data: {i}\n\n")))
                .unwrap();
        }
        let epoch = log.epoch();
        drop(log);
        (path, epoch)
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(0, b""), 0);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xCBF4_3926);
    }

    #[test]
    fn records_come_back_with_the_epoch_and_offsets() {
        let (path, epoch) = with_events("roundtrip", 3);
        let (log, loaded) = LogFile::open(&path, Fsync::Never).unwrap();
        assert_eq!(loaded.epoch, epoch);
        assert_eq!(log.epoch(), epoch);
        assert_eq!(loaded.last, 3);
        let got: Vec<(u64, String)> = loaded
            .records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8(r.frame.as_bytes().to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, "data: 1\n\n".into()),
                (2, "data: 2\n\n".into()),
                (3, "data: 3\n\n".into())
            ]
        );
        assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
    }

    #[test]
    fn a_torn_last_record_is_cut_off_and_logged_whatever_was_torn() {
        for cut in [1u64, 4, 8, 12, 20] {
            let (path, _) = with_events(&format!("torn{cut}"), 3);
            let full = fs::metadata(&path).unwrap().len();
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(full - cut).unwrap();
            let (mut log, loaded) = LogFile::open(&path, Fsync::Never).unwrap();
            assert_eq!(loaded.last, 2, "cut {cut}");
            assert_eq!(loaded.notes.len(), 1, "cut {cut}");
            assert!(
                loaded.notes[0].contains("torn last record"),
                "{:?}",
                loaded.notes
            );
            // Ids continue after the last whole record, and the file loads again.
            log.append(3, &topic(), &frame("data: again\n\n")).unwrap();
            drop(log);
            let (_, again) = LogFile::open(&path, Fsync::Never).unwrap();
            assert_eq!(again.last, 3);
            assert!(again.notes.is_empty());
        }
    }

    #[test]
    fn a_flipped_byte_in_the_last_record_is_a_torn_write() {
        let (path, _) = with_events("flip-last", 3);
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 2] ^= 0x20;
        fs::write(&path, &bytes).unwrap();
        let (_, loaded) = LogFile::open(&path, Fsync::Never).unwrap();
        assert_eq!(loaded.last, 2);
        assert!(loaded.notes[0].contains("checksum"), "{:?}", loaded.notes);
    }

    #[test]
    fn corruption_before_the_end_is_an_error_naming_the_byte() {
        let (path, _) = with_events("corrupt", 3);
        let mut bytes = fs::read(&path).unwrap();
        // Inside the first record's payload.
        let at = HEADER_LEN as usize + 8 + 3;
        bytes[at] ^= 0xFF;
        fs::write(&path, &bytes).unwrap();
        let e = LogFile::open(&path, Fsync::Never).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("at byte {HEADER_LEN}")), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        // The file is left as it was, for whoever looks into it.
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_header_torn_at_creation_starts_a_new_history() {
        let path = tmp("torn-header");
        fs::write(&path, &MAGIC[..5]).unwrap();
        let (mut log, loaded) = LogFile::open(&path, Fsync::Never).unwrap();
        assert_eq!((loaded.last, loaded.records.len()), (0, 0));
        assert!(
            loaded.notes[0].contains("torn header"),
            "{:?}",
            loaded.notes
        );
        log.append(1, &topic(), &frame("data: 1\n\n")).unwrap();
        drop(log);
        assert_eq!(LogFile::open(&path, Fsync::Never).unwrap().1.last, 1);
    }

    #[test]
    fn a_bad_header_or_another_kind_of_file_is_refused() {
        let path = tmp("header");
        for other in [&b"not a history file at all, but long enough"[..], b"short"] {
            fs::write(&path, other).unwrap();
            let e = LogFile::open(&path, Fsync::Never).unwrap_err().to_string();
            assert!(e.contains("at byte 0: not an ssehub history file"), "{e}");
            assert_eq!(fs::read(&path).unwrap(), other, "left as it was");
        }
        let mut h = header(5, 0);
        h[12] ^= 1;
        fs::write(&path, h).unwrap();
        let e = LogFile::open(&path, Fsync::Never).unwrap_err().to_string();
        assert!(e.contains("header checksum"), "{e}");
        let dir = path.parent().unwrap();
        let e = LogFile::open(dir, Fsync::Never).unwrap_err().to_string();
        assert!(e.contains("history file"), "{e}");
        let e = LogFile::open(&dir.join("no/such/dir/h"), Fsync::Never)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot open it for writing"), "{e}");
    }

    #[test]
    fn offsets_out_of_sequence_are_corruption() {
        let path = tmp("sequence");
        let (mut log, _) = LogFile::open(&path, Fsync::Never).unwrap();
        log.append(1, &topic(), &frame("data: a\n\n")).unwrap();
        log.append(3, &topic(), &frame("data: c\n\n")).unwrap();
        log.append(4, &topic(), &frame("data: d\n\n")).unwrap();
        drop(log);
        let e = LogFile::open(&path, Fsync::Never).unwrap_err().to_string();
        assert!(e.contains("record offset 3, expected 2"), "{e}");
    }

    #[test]
    fn a_failed_write_leaves_no_partial_record() {
        let (path, _) = with_events("fail", 2);
        let (mut log, _) = LogFile::open(&path, Fsync::Always).unwrap();
        let before = log.len();
        log.fail_next = true;
        assert!(log.append(3, &topic(), &frame("data: lost\n\n")).is_err());
        assert_eq!(fs::metadata(&path).unwrap().len(), before);
        log.append(3, &topic(), &frame("data: kept\n\n")).unwrap();
        drop(log);
        let (_, loaded) = LogFile::open(&path, Fsync::Never).unwrap();
        assert_eq!(loaded.last, 3);
        assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
        assert_eq!(loaded.records[2].frame.as_bytes(), b"data: kept\n\n");
    }

    #[test]
    fn compaction_keeps_the_epoch_and_the_offsets_even_with_no_record() {
        let (path, epoch) = with_events("compact", 10);
        let (mut log, loaded) = LogFile::open(&path, Fsync::Never).unwrap();
        assert!(log.wants_compaction(5, usize::MAX));
        let kept = &loaded.records[7..];
        log.compact(7, kept.iter().map(|r| (r.offset, &r.topic, &r.frame)))
            .unwrap();
        assert!(!log.wants_compaction(5, usize::MAX));
        log.append(11, &topic(), &frame("data: 11\n\n")).unwrap();
        drop(log);
        let (mut log, loaded) = LogFile::open(&path, Fsync::Never).unwrap();
        assert_eq!(loaded.epoch, epoch);
        let offsets: Vec<u64> = loaded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [8, 9, 10, 11]);
        // Nothing retained (replay off): the header still carries the last offset.
        log.compact(11, std::iter::empty()).unwrap();
        drop(log);
        let (_, loaded) = LogFile::open(&path, Fsync::Never).unwrap();
        assert_eq!((loaded.last, loaded.records.len()), (11, 0));
        assert!(!path.with_file_name("history.tmp").exists());
    }

    #[test]
    fn fsync_values() {
        for f in [Fsync::Never, Fsync::Interval, Fsync::Always] {
            assert_eq!(f.label().parse::<Fsync>(), Ok(f));
        }
        assert!("sometimes".parse::<Fsync>().is_err());
        assert_eq!(Fsync::default(), Fsync::Interval);
    }
}
