//! Reading a history file back, record by record, and telling a torn tail from damage.
//!
//! A record that is short, has a bad magic or length, or fails its checksum is *bad*.
//! The loader then looks past it for any whole record that passes its checksum: if there
//! is one, the bad record is damage in the middle of the file (an error, and the file is
//! left as it is); if there is none, it is a torn last write and may be cut off. Nothing
//! but such a proven torn tail is ever cut.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;

use super::format::{self, MAX_RECORD, RECORD_MAGIC, VERSION_1};
use crate::event_id::EventId;
use crate::hub::HubLimits;
use crate::hub::history::{History, Retained};

/// What reading the records found.
pub(super) struct Records {
    /// The history: its epoch and last offset, and the tail within the caps.
    pub(super) history: History,
    /// Records read.
    pub(super) read: u64,
    /// The end of the last whole record: where the file is cut if it is longer.
    pub(super) good_end: u64,
    /// Why the rest was cut, for the log.
    pub(super) torn: Option<String>,
}

/// Reads `file` from a byte on, positionally (the descriptor's position is untouched).
struct At<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads as much of `buf` as the reader has; the count.
pub(super) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

/// Why loading stopped: a read error, or damage (one line, naming the byte).
pub(super) enum Failed {
    Io(io::Error),
    Corrupt(String),
}

impl From<io::Error> for Failed {
    fn from(e: io::Error) -> Failed {
        Failed::Io(e)
    }
}

/// Reads the records of a file of `size` bytes and format `version` after its header.
pub(super) fn records(
    file: &File,
    size: u64,
    version: u32,
    (epoch, base): (u64, u64),
    limits: HubLimits,
) -> Result<Records, Failed> {
    let mut r = BufReader::with_capacity(
        256 * 1024,
        At {
            file,
            pos: format::HEADER_LEN,
        },
    );
    let mut history = History::after(epoch, base);
    let (mut read, mut pos) = (0u64, format::HEADER_LEN);
    let head_len = format::record_head(version);
    let mut head = vec![0u8; head_len as usize];
    let mut payload = Vec::new();
    let torn_or_corrupt = |pos: u64, why: &str, expected: u64| -> Result<String, Failed> {
        match next_valid(file, pos + 1, size, version, expected)? {
            Some(at) => Err(Failed::Corrupt(format!(
                "at byte {pos}: corrupt record ({why}), and a valid record follows at byte \
                 {at}: not a torn last write, the file is left as it is"
            ))),
            None => Ok(format!(
                "dropped a torn last record at byte {pos} ({} bytes, {why})",
                size - pos
            )),
        }
    };
    let torn = loop {
        let expected = history.next_id().offset;
        let n = read_full(&mut r, &mut head)?;
        if n == 0 {
            break None;
        }
        if n < head.len() {
            break Some(torn_or_corrupt(pos, "short header", expected)?);
        }
        let Some((len, crc)) = format::parse_record_head(version, &head) else {
            break Some(torn_or_corrupt(pos, "bad magic", expected)?);
        };
        if !(format::min_record(version)..=MAX_RECORD).contains(&len) {
            break Some(torn_or_corrupt(pos, "bad length", expected)?);
        }
        payload.resize(len as usize, 0);
        if read_full(&mut r, &mut payload)? < payload.len() {
            break Some(torn_or_corrupt(pos, "short record", expected)?);
        }
        if format::record_crc(&head[..head.len() - 4], &payload) != crc {
            break Some(torn_or_corrupt(pos, "checksum mismatch", expected)?);
        }
        // A record that passed its checksum was written so: anything wrong inside it
        // is damage, never a torn write.
        let (offset, rest) = format::decode_payload(version, &payload);
        if offset != expected {
            return Err(Failed::Corrupt(format!(
                "at byte {pos}: record offset {offset}, expected {expected}"
            )));
        }
        let Some((envelope, frame)) = rest else {
            return Err(Failed::Corrupt(format!(
                "at byte {pos}: corrupt record (flags, topics, id or key)"
            )));
        };
        let id = EventId::new(epoch, offset);
        history.push(
            Retained {
                id,
                envelope,
                frame,
            },
            limits,
        );
        read += 1;
        pos += head_len + u64::from(len);
    };
    Ok(Records {
        history,
        read,
        good_end: pos,
        torn,
    })
}

/// Bytes read at a time while looking for a valid record.
const SCAN_CHUNK: usize = 1 << 20;

/// The byte of the first whole record at or after `from` that passes its checksum, if
/// any. Version 2 looks for the record magic; version 1 (no magic) for a plausible length
/// and an offset from `expected` on, before checking the checksum.
fn next_valid(
    file: &File,
    from: u64,
    size: u64,
    version: u32,
    expected: u64,
) -> io::Result<Option<u64>> {
    let head = format::record_head(version) as usize;
    // A version-1 record's offset is at most one per 19 bytes past `expected`.
    let most = expected.saturating_add(size / 19 + 1);
    let mut buf = vec![0u8; SCAN_CHUNK + 16];
    let mut at = from;
    while at + head as u64 <= size {
        let want = ((size - at) as usize).min(buf.len());
        let n = read_full(&mut At { file, pos: at }, &mut buf[..want])?;
        let filled = &buf[..n];
        for i in 0..n.min(SCAN_CHUNK) {
            let plausible = if version == VERSION_1 {
                filled.get(i..i + 16).is_some_and(|b| {
                    let len = u32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
                    let off = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
                    (format::min_record(version)..=MAX_RECORD).contains(&len)
                        && (expected..=most).contains(&off)
                })
            } else {
                filled.get(i..i + 4) == Some(&RECORD_MAGIC[..])
            };
            if plausible && whole_at(file, at + i as u64, size, version)? {
                return Ok(Some(at + i as u64));
            }
        }
        if n <= SCAN_CHUNK {
            break;
        }
        at += SCAN_CHUNK as u64;
    }
    Ok(None)
}

/// Whether a whole record that passes its checksum starts at `pos`.
fn whole_at(file: &File, pos: u64, size: u64, version: u32) -> io::Result<bool> {
    let mut head = vec![0u8; format::record_head(version) as usize];
    if read_full(&mut At { file, pos }, &mut head)? < head.len() {
        return Ok(false);
    }
    let Some((len, crc)) = format::parse_record_head(version, &head) else {
        return Ok(false);
    };
    let end = pos + head.len() as u64 + u64::from(len);
    if !(format::min_record(version)..=MAX_RECORD).contains(&len) || end > size {
        return Ok(false);
    }
    let mut payload = vec![0u8; len as usize];
    let at = pos + head.len() as u64;
    if read_full(&mut At { file, pos: at }, &mut payload)? < payload.len() {
        return Ok(false);
    }
    Ok(format::record_crc(&head[..head.len() - 4], &payload) == crc)
}
