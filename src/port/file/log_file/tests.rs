//! Tests of the history file: the format, loading (torn tails, corruption), failed
//! writes and compaction.

use super::format::{HEADER_LEN, MAGIC, crc32, header, header_of, record_crc};
use super::*;
use crate::envelope::{Envelope, PublisherId};
use crate::event_id::EventId;
use crate::sse::Frame;
use crate::topic::Topic;

/// A history file path in a fresh directory, removed when dropped.
struct Tmp(PathBuf);

impl std::ops::Deref for Tmp {
    type Target = Path;
    fn deref(&self) -> &Path {
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

/// Appends the event at `offset` as the writer does.
fn put(
    log: &mut LogFile,
    offset: u64,
    topic: &Topic,
    frame: &Frame,
    private: bool,
) -> Result<(), (FileOp, io::Error)> {
    let entry = Retained {
        id: EventId::new(log.epoch(), offset),
        envelope: Envelope::on(topic.clone()).with_private(private),
        frame: frame.clone(),
    };
    log.append(&entry)
}

/// Caps that keep everything.
const ALL: HubLimits = HubLimits {
    queue_len: 1,
    history_events: usize::MAX,
    history_bytes: usize::MAX,
};

fn open(path: &Path) -> Result<(LogFile, Loaded), OpenError> {
    LogFile::open(path, Fsync::Never, ALL)
}

fn last(l: &Loaded) -> u64 {
    l.history.last_id().map_or(0, |id| id.offset)
}

/// The retained events, as (offset, frame text).
fn kept(l: &Loaded) -> Vec<(u64, String)> {
    l.history
        .retained()
        .map(|r| {
            let text = String::from_utf8(r.frame.as_bytes().to_vec()).unwrap();
            (r.id.offset, text)
        })
        .collect()
}

/// A file holding events 1..=n.
fn with_events(name: &str, n: u64) -> (Tmp, u64) {
    let path = tmp(name);
    let (mut log, loaded) = open(&path).unwrap();
    assert_eq!((last(&loaded), loaded.read), (0, 0));
    for i in 1..=n {
        put(
            &mut log,
            i,
            &topic(),
            &frame(&format!("data: {i}\n\n")),
            false,
        )
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
    let (log, loaded) = open(&path).unwrap();
    assert_eq!(loaded.history.epoch(), epoch);
    assert_eq!(log.epoch(), epoch);
    assert_eq!((last(&loaded), loaded.read), (3, 3));
    assert_eq!(
        kept(&loaded),
        [
            (1, "data: 1\n\n".into()),
            (2, "data: 2\n\n".into()),
            (3, "data: 3\n\n".into())
        ]
    );
    assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
}

#[test]
fn a_private_event_stays_private_through_the_file_and_compaction() {
    let path = tmp("private");
    let (mut log, _) = open(&path).unwrap();
    put(&mut log, 1, &topic(), &frame("data: a\n\n"), false).unwrap();
    put(&mut log, 2, &topic(), &frame("data: b\n\n"), true).unwrap();
    drop(log);
    let (mut log, loaded) = open(&path).unwrap();
    let private: Vec<bool> = loaded
        .history
        .retained()
        .map(|r| r.envelope.is_private())
        .collect();
    assert_eq!(private, [false, true]);
    log.compact(0, loaded.history.retained()).unwrap();
    drop(log);
    let (_, again) = open(&path).unwrap();
    let private: Vec<bool> = again
        .history
        .retained()
        .map(|r| r.envelope.is_private())
        .collect();
    assert_eq!(private, [false, true]);
    // A flag this build does not know is corruption, not a guess.
    let mut bytes = fs::read(&*path).unwrap();
    let flags_at = HEADER_LEN as usize + 12 + 8;
    bytes[flags_at] = 0x80;
    let len = u32::from_le_bytes(bytes[36..40].try_into().unwrap()) as usize;
    let crc = super::format::record_crc(&bytes[32..40], &bytes[44..44 + len]);
    bytes[40..44].copy_from_slice(&crc.to_le_bytes());
    fs::write(&*path, &bytes).unwrap();
    let e = open(&path).map(|_| ()).unwrap_err().to_string();
    assert!(
        e.contains("at byte 32: corrupt record (flags, topics, id or key)"),
        "{e}"
    );
}

#[test]
fn loading_keeps_only_the_tail_within_the_caps() {
    let (path, _) = with_events("tail", 10);
    let caps = HubLimits {
        queue_len: 1,
        history_events: 3,
        history_bytes: usize::MAX,
    };
    let (_, loaded) = LogFile::open(&path, Fsync::Never, caps).unwrap();
    assert_eq!((last(&loaded), loaded.read), (10, 10));
    let offsets: Vec<u64> = kept(&loaded).into_iter().map(|(o, _)| o).collect();
    assert_eq!(offsets, [8, 9, 10]);
    assert_eq!(loaded.history.dropped_upto(), 7);
}

#[test]
fn a_torn_last_record_is_cut_off_and_logged_whatever_was_torn() {
    for cut in [1u64, 4, 8, 12, 20] {
        let (path, _) = with_events(&format!("torn{cut}"), 3);
        let full = fs::metadata(&*path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&*path).unwrap();
        f.set_len(full - cut).unwrap();
        let (mut log, loaded) = open(&path).unwrap();
        assert_eq!(last(&loaded), 2, "cut {cut}");
        assert_eq!(loaded.notes.len(), 1, "cut {cut}");
        assert!(
            loaded.notes[0].contains("torn last record"),
            "{:?}",
            loaded.notes
        );
        // Ids continue after the last whole record, and the file loads again.
        put(&mut log, 3, &topic(), &frame("data: again\n\n"), false).unwrap();
        drop(log);
        let (_, again) = open(&path).unwrap();
        assert_eq!(last(&again), 3);
        assert!(again.notes.is_empty());
    }
}

#[test]
fn a_flipped_byte_in_the_last_record_is_a_torn_write() {
    let (path, _) = with_events("flip-last", 3);
    let mut bytes = fs::read(&*path).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 0x20;
    fs::write(&*path, &bytes).unwrap();
    let (_, loaded) = open(&path).unwrap();
    assert_eq!(last(&loaded), 2);
    assert!(loaded.notes[0].contains("checksum"), "{:?}", loaded.notes);
}

#[test]
fn corruption_before_the_end_is_an_error_naming_the_byte() {
    let (path, _) = with_events("corrupt", 3);
    let mut bytes = fs::read(&*path).unwrap();
    // Inside the first record's payload.
    let at = HEADER_LEN as usize + 8 + 3;
    bytes[at] ^= 0xFF;
    fs::write(&*path, &bytes).unwrap();
    let msg = open(&path).map(|_| ()).unwrap_err().to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("at byte {HEADER_LEN}")), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    // The file is left as it was, for whoever looks into it.
    assert_eq!(fs::read(&*path).unwrap(), bytes);
}

#[test]
fn a_header_torn_at_creation_starts_a_new_history() {
    let path = tmp("torn-header");
    fs::write(&*path, &MAGIC[..5]).unwrap();
    let (mut log, loaded) = open(&path).unwrap();
    assert_eq!((last(&loaded), loaded.read), (0, 0));
    assert!(
        loaded.notes[0].contains("torn header"),
        "{:?}",
        loaded.notes
    );
    put(&mut log, 1, &topic(), &frame("data: 1\n\n"), false).unwrap();
    drop(log);
    assert_eq!(last(&open(&path).unwrap().1), 1);
}

#[test]
fn a_bad_header_or_another_kind_of_file_is_refused() {
    let path = tmp("header");
    let refused = |p: &Path| open(p).map(|_| ()).unwrap_err().to_string();
    for other in [&b"not a history file at all, but long enough"[..], b"short"] {
        fs::write(&*path, other).unwrap();
        let e = refused(&path);
        assert!(e.contains("at byte 0: not an ssehub history file"), "{e}");
        assert_eq!(fs::read(&*path).unwrap(), other, "left as it was");
    }
    let mut h = header(5, 0);
    h[12] ^= 1;
    fs::write(&*path, h).unwrap();
    assert!(refused(&path).contains("header checksum"));
    let mut h = header(5, 0);
    h[8] = 9;
    fs::write(&*path, h).unwrap();
    assert!(refused(&path).contains("format version 9"));
    let dir = path.parent().unwrap();
    assert!(refused(dir).contains("history file"));
    let e = refused(&dir.join("no/such/dir/h"));
    assert!(e.contains("cannot open it for writing"), "{e}");
}

#[test]
fn offsets_out_of_sequence_are_corruption() {
    let path = tmp("sequence");
    let (mut log, _) = open(&path).unwrap();
    put(&mut log, 1, &topic(), &frame("data: a\n\n"), false).unwrap();
    put(&mut log, 3, &topic(), &frame("data: c\n\n"), false).unwrap();
    put(&mut log, 4, &topic(), &frame("data: d\n\n"), false).unwrap();
    drop(log);
    let e = open(&path).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("record offset 3, expected 2"), "{e}");
}

#[test]
fn a_failed_write_leaves_no_partial_record() {
    let (path, _) = with_events("fail", 2);
    let (mut log, _) = LogFile::open(&path, Fsync::Always, ALL).unwrap();
    let before = log.len();
    log.fail_next = true;
    let (op, _) = put(&mut log, 3, &topic(), &frame("data: lost\n\n"), false).unwrap_err();
    assert_eq!(op, FileOp::Write);
    assert_eq!(fs::metadata(&*path).unwrap().len(), before);
    put(&mut log, 3, &topic(), &frame("data: kept\n\n"), false).unwrap();
    drop(log);
    let (_, loaded) = open(&path).unwrap();
    assert_eq!(last(&loaded), 3);
    assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
    assert_eq!(kept(&loaded)[2].1, "data: kept\n\n");
}

#[test]
fn compaction_keeps_the_epoch_and_the_offsets_even_with_no_record() {
    let (path, epoch) = with_events("compact", 10);
    let (mut log, loaded) = open(&path).unwrap();
    let five = HubLimits {
        history_events: 5,
        ..ALL
    };
    assert!(log.wants_compaction(five));
    let tail: Vec<_> = loaded.history.retained().skip(7).collect();
    log.compact(7, tail.into_iter()).unwrap();
    assert!(!log.wants_compaction(five));
    put(&mut log, 11, &topic(), &frame("data: 11\n\n"), false).unwrap();
    drop(log);
    let (mut log, loaded) = open(&path).unwrap();
    assert_eq!(loaded.history.epoch(), epoch);
    let offsets: Vec<u64> = kept(&loaded).into_iter().map(|(o, _)| o).collect();
    assert_eq!(offsets, [8, 9, 10, 11]);
    // Nothing retained (replay off): the header still carries the last offset.
    log.compact(11, std::iter::empty()).unwrap();
    drop(log);
    let (_, loaded) = open(&path).unwrap();
    assert_eq!((last(&loaded), loaded.read), (11, 0));
    assert!(!path.with_file_name("history.tmp").exists());
}

#[test]
fn a_failed_compaction_leaves_the_file_as_it_was() {
    let (path, _) = with_events("compact-fail", 4);
    let (mut log, loaded) = open(&path).unwrap();
    let before = fs::read(&*path).unwrap();
    // The temporary file cannot be created: a directory is in its place.
    let tmp_path = path.with_file_name("history.tmp");
    fs::create_dir(&tmp_path).unwrap();
    assert!(log.compact(2, loaded.history.retained().skip(2)).is_err());
    assert_eq!(fs::read(&*path).unwrap(), before);
    fs::remove_dir(&tmp_path).unwrap();
    put(&mut log, 5, &topic(), &frame("data: 5\n\n"), false).unwrap();
    drop(log);
    assert_eq!(last(&open(&path).unwrap().1), 5);
}

#[test]
fn fsync_values() {
    for f in [Fsync::Never, Fsync::Interval, Fsync::Always] {
        assert_eq!(f.label().parse::<Fsync>(), Ok(f));
    }
    assert!("sometimes".parse::<Fsync>().is_err());
    assert_eq!(Fsync::default(), Fsync::Interval);
}

/// The byte where each record starts (version 2), and the file's end.
fn record_starts(bytes: &[u8]) -> Vec<usize> {
    let mut at = HEADER_LEN as usize;
    let mut starts = Vec::new();
    while at < bytes.len() {
        starts.push(at);
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 12 + len;
    }
    starts
}

#[test]
fn a_flipped_length_bit_in_record_4_of_10_is_corruption_and_the_file_stays_as_it_was() {
    // Issue #20 item 4: it used to be taken for a torn tail and cut (reissuing offset 4).
    for bit in [0u32, 3, 9, 17, 30] {
        let (path, _) = with_events(&format!("len-bit-{bit}"), 10);
        let mut bytes = fs::read(&*path).unwrap();
        let fourth = record_starts(&bytes)[3];
        let len = u32::from_le_bytes(bytes[fourth + 4..fourth + 8].try_into().unwrap());
        bytes[fourth + 4..fourth + 8].copy_from_slice(&(len ^ (1 << bit)).to_le_bytes());
        fs::write(&*path, &bytes).unwrap();
        let e = open(&path).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(
            e.contains(&format!("at byte {fourth}: corrupt record")),
            "{e}"
        );
        assert!(e.contains("a valid record follows"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        assert_eq!(
            fs::read(&*path).unwrap(),
            bytes,
            "bit {bit}: left untouched"
        );
    }
    // A damaged last record with nothing valid after it is still a torn tail.
    let (path, _) = with_events("len-bit-last", 10);
    let mut bytes = fs::read(&*path).unwrap();
    let tenth = record_starts(&bytes)[9];
    bytes[tenth + 6] ^= 1;
    fs::write(&*path, &bytes).unwrap();
    let (_, loaded) = open(&path).unwrap();
    assert_eq!(last(&loaded), 9);
    assert_eq!(fs::metadata(&*path).unwrap().len(), tenth as u64);
}

#[test]
fn a_torn_last_record_of_ten_is_cut_and_garbage_after_it_does_not_matter() {
    let (path, _) = with_events("torn-10", 10);
    let bytes = fs::read(&*path).unwrap();
    let tenth = record_starts(&bytes)[9];
    let mut torn = bytes[..tenth + 15].to_vec();
    // What a crash may leave after a torn write: zeros, or bytes of no record.
    torn.extend_from_slice(&[0; 300]);
    fs::write(&*path, &torn).unwrap();
    let (_, loaded) = open(&path).unwrap();
    assert_eq!((last(&loaded), loaded.read), (9, 9));
    assert!(
        loaded.notes[0].contains(&format!("at byte {tenth}")),
        "{:?}",
        loaded.notes
    );
    assert_eq!(fs::read(&*path).unwrap(), bytes[..tenth]);
}

fn envelope_of(topics: &[&str], private: bool, id: Option<&str>, key: Option<&str>) -> Envelope {
    let topics = topics.iter().map(|t| Topic::new(t).unwrap()).collect();
    let mut env = Envelope::new(topics).unwrap().with_private(private);
    if let Some(id) = id {
        env = env.with_id(PublisherId::new(id).unwrap());
    }
    if let Some(key) = key {
        env = env.with_key(PublisherId::named(key, "Idempotency-Key").unwrap());
    }
    env
}

#[test]
fn the_whole_envelope_survives_the_file_and_compaction() {
    let path = tmp("envelope");
    let (mut log, _) = open(&path).unwrap();
    let envelopes = [
        envelope_of(&["a"], false, None, None),
        envelope_of(
            &["books/1", "books", "shelf/2"],
            true,
            Some("urn:uuid:1"),
            None,
        ),
        envelope_of(&["b"], false, None, Some("k-1")),
        envelope_of(&["c", "d"], true, Some(&"x".repeat(256)), Some("k 2")),
    ];
    for (i, env) in envelopes.iter().enumerate() {
        let entry = Retained {
            id: EventId::new(log.epoch(), i as u64 + 1),
            envelope: env.clone(),
            frame: frame(&format!("data: {i}\n\n")),
        };
        log.append(&entry).unwrap();
    }
    drop(log);
    let back = |loaded: &Loaded| -> Vec<Envelope> {
        loaded
            .history
            .retained()
            .map(|r| r.envelope.clone())
            .collect()
    };
    let (mut log, loaded) = open(&path).unwrap();
    assert_eq!(back(&loaded), envelopes);
    log.compact(0, loaded.history.retained()).unwrap();
    drop(log);
    let (_, again) = open(&path).unwrap();
    assert_eq!(back(&again), envelopes);
    assert_eq!(kept(&again)[3].1, "data: 3\n\n");
}

/// The version-1 record of an event, as builds before format version 2 wrote it.
fn v1_record(buf: &mut Vec<u8>, offset: u64, topic: &str, frame: &str, private: bool) {
    let mut payload = offset.to_le_bytes().to_vec();
    payload.push(u8::from(private));
    payload.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    payload.extend_from_slice(topic.as_bytes());
    payload.extend_from_slice(frame.as_bytes());
    let len = (payload.len() as u32).to_le_bytes();
    buf.extend_from_slice(&len);
    buf.extend_from_slice(&record_crc(&len, &payload).to_le_bytes());
    buf.extend_from_slice(&payload);
}

/// A version-1 file of events 1..=n (the third private), after `base` 0.
fn v1_file(name: &str, epoch: u64, n: u64) -> (Tmp, Vec<u8>) {
    let path = tmp(name);
    let mut bytes = header_of(1, epoch, 0).to_vec();
    for i in 1..=n {
        v1_record(&mut bytes, i, "t", &format!("data: {i}\n\n"), i == 3);
    }
    fs::write(&*path, &bytes).unwrap();
    (path, bytes)
}

#[test]
fn a_version_1_file_loads_and_is_rewritten_in_version_2() {
    let (path, _) = v1_file("v1", 77, 4);
    let (mut log, loaded) = open(&path).unwrap();
    assert_eq!(
        (loaded.history.epoch(), last(&loaded), loaded.read),
        (77, 4, 4)
    );
    assert_eq!(kept(&loaded)[1], (2, "data: 2\n\n".into()));
    let private: Vec<bool> = loaded
        .history
        .retained()
        .map(|r| r.envelope.is_private())
        .collect();
    assert_eq!(private, [false, false, true, false]);
    assert!(
        loaded.notes.iter().any(|n| n.contains("rewrote")),
        "{:?}",
        loaded.notes
    );
    let bytes = fs::read(&*path).unwrap();
    assert_eq!(bytes[8..12], 2u32.to_le_bytes(), "now version 2");
    // What is appended next is version 2 too, and the whole file loads.
    put(&mut log, 5, &topic(), &frame("data: 5\n\n"), false).unwrap();
    drop(log);
    let (_, again) = open(&path).unwrap();
    assert_eq!((again.history.epoch(), last(&again)), (77, 5));
    assert!(again.notes.is_empty(), "{:?}", again.notes);
}

#[test]
fn a_version_1_file_is_cut_only_at_a_torn_tail() {
    let (path, bytes) = v1_file("v1-torn", 5, 4);
    fs::write(&*path, &bytes[..bytes.len() - 3]).unwrap();
    let (_, loaded) = open(&path).unwrap();
    assert_eq!(last(&loaded), 3);
    drop(loaded);
    // Damage in the second record, with whole records after it: refused, untouched.
    let (path, mut bytes) = v1_file("v1-corrupt", 5, 4);
    let second = HEADER_LEN as usize + bytes[32] as usize + 8;
    bytes[second] ^= 0x04;
    fs::write(&*path, &bytes).unwrap();
    let e = open(&path).map(|_| ()).unwrap_err().to_string();
    assert!(
        e.contains(&format!("at byte {second}: corrupt record")),
        "{e}"
    );
    assert_eq!(fs::read(&*path).unwrap(), bytes);
}

#[test]
fn a_second_open_of_the_same_file_is_refused_naming_the_holder() {
    let (path, _) = with_events("lock", 2);
    let (first, _) = open(&path).unwrap();
    let e = open(&path).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains(&path.display().to_string()), "{e}");
    assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
    assert!(
        e.contains("in use by another process") && !e.contains('\n'),
        "{e}"
    );
    drop(first);
    assert_eq!(last(&open(&path).unwrap().1), 2);
}

#[test]
fn compaction_never_writes_through_a_symlink_planted_at_the_temporary_path() {
    let (path, _) = with_events("symlink", 6);
    let victim = path.with_file_name("victim");
    fs::write(&victim, b"precious").unwrap();
    let tmp_path = path.with_file_name("history.tmp");
    std::os::unix::fs::symlink(&victim, &tmp_path).unwrap();
    let (mut log, loaded) = open(&path).unwrap();
    log.compact(3, loaded.history.retained().skip(3)).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert!(!tmp_path.exists() && fs::symlink_metadata(&tmp_path).is_err());
    drop(log);
    let (_, again) = open(&path).unwrap();
    assert_eq!((last(&again), again.read), (6, 3));
}
