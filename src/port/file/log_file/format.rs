//! The bytes of the history file: the header, one record, and the CRC-32 both carry
//! (see the format table in `log_file.rs`). Version 2 is written; version 1 is read.

use crate::envelope::{Envelope, PublisherId};
use crate::hub::history::Retained;
use crate::sse::Frame;
use crate::topic::Topic;

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"ssehubhf";
/// The format version this build writes.
pub const VERSION: u32 = 2;
/// The older format version this build still reads (one topic, no ids or keys, no record
/// magic); such a file is rewritten as [`VERSION`] when it is opened.
pub const VERSION_1: u32 = 1;
/// Bytes of the header.
pub const HEADER_LEN: u64 = 32;
/// A version-2 record's first 4 bytes. `0xF1` followed by `0x5E` never occurs in UTF-8
/// text, so no frame, topic or id can hold it.
pub const RECORD_MAGIC: [u8; 4] = [0xF1, 0x5E, b'R', b'2'];
/// Bytes before a version-2 record's payload (magic, length and checksum).
pub const RECORD_HEAD: u64 = 12;
/// Bytes before a version-1 record's payload (length and checksum).
pub const RECORD_HEAD_V1: u64 = 8;
/// The smallest version-2 payload: offset, flags, topic count, id and key lengths and
/// one topic length.
pub const MIN_RECORD: u32 = 16;
/// The smallest version-1 payload: offset, flags and topic length.
pub const MIN_RECORD_V1: u32 = 11;
/// A record's flag: the event is private (replayed only to subscribers whose rights
/// cover one of its topics).
pub const FLAG_PRIVATE: u8 = 1;
/// The largest payload a record may have. **Unit:** bytes. Why: a corrupt length must
/// not make the loader allocate gigabytes.
pub const MAX_RECORD: u32 = 64 * 1024 * 1024;

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

/// The header of a history of `epoch` whose first record follows offset `base`.
pub fn header(epoch: u64, base: u64) -> [u8; HEADER_LEN as usize] {
    header_of(VERSION, epoch, base)
}

/// [`header`] of format `version` (tests write version-1 files with it).
pub fn header_of(version: u32, epoch: u64, base: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[12..20].copy_from_slice(&epoch.to_le_bytes());
    h[20..28].copy_from_slice(&base.to_le_bytes());
    let crc = crc32(0, &h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The version, epoch and base of a header, or what is wrong with it (naming the byte).
pub fn parse_header(h: &[u8; HEADER_LEN as usize]) -> Result<(u32, u64, u64), String> {
    if &h[..8] != MAGIC {
        return Err("at byte 0: not an ssehub history file".into());
    }
    let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
    if version != VERSION && version != VERSION_1 {
        return Err(format!(
            "at byte 8: format version {version}, this build reads {VERSION_1} and {VERSION}"
        ));
    }
    if crc32(0, &h[..28]).to_le_bytes() != h[28..32] {
        return Err("at byte 28: header checksum mismatch".into());
    }
    let epoch = u64::from_le_bytes(h[12..20].try_into().expect("8 bytes"));
    let base = u64::from_le_bytes(h[20..28].try_into().expect("8 bytes"));
    Ok((version, epoch, base))
}

fn put_text(buf: &mut Vec<u8>, text: &str) {
    buf.extend_from_slice(&(text.len() as u16).to_le_bytes());
    buf.extend_from_slice(text.as_bytes());
}

/// Appends the version-2 record of `e` to `buf`:
/// `magic | len u32 | crc32 u32 | payload`, the checksum covering the magic, the length
/// and the payload.
pub fn encode_record(buf: &mut Vec<u8>, e: &Retained) {
    let env = &e.envelope;
    let start = buf.len();
    buf.extend_from_slice(&RECORD_MAGIC);
    buf.extend_from_slice(&[0; 8]);
    buf.extend_from_slice(&e.id.offset.to_le_bytes());
    buf.push(if env.is_private() { FLAG_PRIVATE } else { 0 });
    // At most 16 topics, ids and keys of at most 256 bytes, topics shorter than 64 KiB:
    // the envelope's own bounds.
    buf.push(env.topics().len() as u8);
    let id = env.id().map_or("", |i| i.as_str());
    let key = env.key().map_or("", |k| k.as_str());
    buf.extend_from_slice(&(id.len() as u16).to_le_bytes());
    buf.extend_from_slice(&(key.len() as u16).to_le_bytes());
    for t in env.topics() {
        put_text(buf, t.as_str());
    }
    buf.extend_from_slice(id.as_bytes());
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(e.frame.as_bytes());
    let len = u32::try_from(buf.len() - start - RECORD_HEAD as usize).unwrap_or(u32::MAX);
    buf[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    let crc = record_crc(&buf[start..start + 8], &buf[start + 12..]);
    buf[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// The checksum of a record: the bytes of its head before the checksum (version 2: the
/// magic and the length; version 1: the length) and its payload.
pub fn record_crc(head: &[u8], payload: &[u8]) -> u32 {
    crc32(crc32(0, head), payload)
}

/// A record's head, read: its payload length and checksum, or `None` when the magic is
/// wrong (version 2).
pub fn parse_record_head(version: u32, head: &[u8]) -> Option<(u32, u32)> {
    let word = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().expect("4 bytes"));
    if version == VERSION_1 {
        return Some((word(0), word(4)));
    }
    (head[..4] == RECORD_MAGIC).then(|| (word(4), word(8)))
}

/// The smallest payload of a record of `version`.
pub fn min_record(version: u32) -> u32 {
    if version == VERSION_1 {
        MIN_RECORD_V1
    } else {
        MIN_RECORD
    }
}

/// Bytes before a payload of `version`.
pub fn record_head(version: u32) -> u64 {
    if version == VERSION_1 {
        RECORD_HEAD_V1
    } else {
        RECORD_HEAD
    }
}

/// A record's payload (at least [`min_record`] bytes) that passed its checksum: the
/// offset, and the envelope and frame (`None`: unknown flags, an invalid topic, id or
/// key, which no writer produces).
pub fn decode_payload(version: u32, payload: &[u8]) -> (u64, Option<(Envelope, Frame)>) {
    let offset = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    let rest = if version == VERSION_1 {
        decode_v1(payload)
    } else {
        decode_v2(payload)
    };
    (offset, rest)
}

/// Reads little-endian fields off the front of a payload.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, &self.0[n..]);
        self.0 = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<usize> {
        let b = self.take(2)?;
        Some(usize::from(u16::from_le_bytes([b[0], b[1]])))
    }

    fn text(&mut self, n: usize) -> Option<&'a str> {
        std::str::from_utf8(self.take(n)?).ok()
    }
}

fn decode_v1(payload: &[u8]) -> Option<(Envelope, Frame)> {
    let mut c = Cursor(&payload[8..]);
    let flags = c.take(1)?[0];
    let tlen = c.u16()?;
    let topic = Topic::new(c.text(tlen)?).ok()?;
    if flags & !FLAG_PRIVATE != 0 {
        return None;
    }
    let envelope = Envelope::on(topic).with_private(flags & FLAG_PRIVATE != 0);
    Some((envelope, Frame::from_encoded(c.0.to_vec())))
}

fn decode_v2(payload: &[u8]) -> Option<(Envelope, Frame)> {
    let mut c = Cursor(&payload[8..]);
    let flags = c.take(1)?[0];
    let count = usize::from(c.take(1)?[0]);
    let (id_len, key_len) = (c.u16()?, c.u16()?);
    if flags & !FLAG_PRIVATE != 0 {
        return None;
    }
    let mut topics = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        let n = c.u16()?;
        topics.push(Topic::new(c.text(n)?).ok()?);
    }
    let mut envelope = Envelope::new(topics)
        .ok()?
        .with_private(flags & FLAG_PRIVATE != 0);
    if id_len > 0 {
        envelope = envelope.with_id(PublisherId::new(c.text(id_len)?).ok()?);
    }
    if key_len > 0 {
        let key = PublisherId::named(c.text(key_len)?, "Idempotency-Key").ok()?;
        envelope = envelope.with_key(key);
    }
    Some((envelope, Frame::from_encoded(c.0.to_vec())))
}
