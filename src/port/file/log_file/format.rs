//! The bytes of the history file: the header, one record, and the CRC-32 both carry
//! (see the format table in `log_file.rs`).

use crate::envelope::Envelope;
use crate::hub::history::Retained;
use crate::sse::Frame;
use crate::topic::Topic;

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"ssehubhf";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Bytes of the header.
pub const HEADER_LEN: u64 = 32;
/// Bytes before a record's payload (length and checksum).
pub const RECORD_HEAD: u64 = 8;
/// The smallest payload: offset, flags and topic length.
pub const MIN_RECORD: u32 = 11;
/// A record's flag: the event is private (replayed only to subscribers whose rights
/// cover its topic).
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
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&epoch.to_le_bytes());
    h[20..28].copy_from_slice(&base.to_le_bytes());
    let crc = crc32(0, &h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The epoch and base of a header, or what is wrong with it (naming the byte).
pub fn parse_header(h: &[u8; HEADER_LEN as usize]) -> Result<(u64, u64), String> {
    if &h[..8] != MAGIC {
        return Err("at byte 0: not an ssehub history file".into());
    }
    let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!(
            "at byte 8: format version {version}, this build reads {VERSION}"
        ));
    }
    if crc32(0, &h[..28]).to_le_bytes() != h[28..32] {
        return Err("at byte 28: header checksum mismatch".into());
    }
    let epoch = u64::from_le_bytes(h[12..20].try_into().expect("8 bytes"));
    let base = u64::from_le_bytes(h[20..28].try_into().expect("8 bytes"));
    Ok((epoch, base))
}

/// One event as a record holds it.
#[derive(Debug, Clone, Copy)]
pub struct Rec<'a> {
    /// Its offset in the history.
    pub offset: u64,
    pub topic: &'a Topic,
    pub frame: &'a Frame,
    pub private: bool,
}

impl<'a> Rec<'a> {
    /// The record of a retained event.
    pub fn of(e: &'a Retained) -> Rec<'a> {
        Rec {
            offset: e.id.offset,
            topic: e.envelope.topic(),
            frame: &e.frame,
            private: e.envelope.is_private(),
        }
    }
}

/// Appends the record of one event to `buf`.
pub fn encode_record(buf: &mut Vec<u8>, r: Rec<'_>) {
    let topic = r.topic.as_str().as_bytes();
    let len = 8 + 1 + 2 + topic.len() + r.frame.len();
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    let start = buf.len();
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&r.offset.to_le_bytes());
    buf.push(if r.private { FLAG_PRIVATE } else { 0 });
    buf.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    buf.extend_from_slice(topic);
    buf.extend_from_slice(r.frame.as_bytes());
    let crc = record_crc(&len.to_le_bytes(), &buf[start + 8..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The checksum of a record: its length field and its payload.
pub fn record_crc(len: &[u8], payload: &[u8]) -> u32 {
    crc32(crc32(0, len), payload)
}

/// A record's payload (at least [`MIN_RECORD`] bytes) that passed its checksum: the
/// offset, and the topic, frame and privacy (`None`: unknown flags or an invalid topic,
/// which no writer produces).
pub fn decode_payload(payload: &[u8]) -> (u64, Option<(Envelope, Frame)>) {
    let offset = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    let flags = payload[8];
    let tlen = usize::from(u16::from_le_bytes(payload[9..11].try_into().expect("2")));
    let rest = payload
        .get(11..11 + tlen)
        .filter(|_| flags & !FLAG_PRIVATE == 0)
        .and_then(|t| std::str::from_utf8(t).ok())
        .and_then(|t| Topic::new(t).ok())
        .map(|topic| {
            let frame = Frame::from_encoded(payload[11 + tlen..].to_vec());
            let envelope = Envelope::on(topic).with_private(flags & FLAG_PRIVATE != 0);
            (envelope, frame)
        });
    (offset, rest)
}
