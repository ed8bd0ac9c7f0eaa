//! The Server-Sent Events wire format: events, validated fields, and the encoder.
//!
//! An [`Event`] is encoded **once** into a [`Frame`], an immutable, reference-counted
//! byte buffer that every subscriber's queue shares: fan-out clones a pointer, never the
//! bytes.
//!
//! # Line breaks
//!
//! The WHATWG event-stream format ends a line at CRLF, at a lone LF or at a lone CR
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream>).
//! The encoder therefore splits `data` at each of the three and writes one `data:` line per
//! piece, terminated by a single LF. A subscriber's parser joins the pieces with LF, so
//! `"a\r\nb"` and `"a\rb"` arrive as `"a\nb"`: that is all the format can carry.
//!
//! Single-line fields (`id`, `event`) and comments can never hold CR, LF or NUL; their
//! constructors refuse such text, so no publisher can forge a field or an extra event.
//! NUL is refused in `data` too: it is never useful in text, and some clients truncate at it.

use std::fmt;
use std::sync::Arc;

use crate::event_id::Reset;

/// The longest event name accepted, in bytes.
pub const MAX_EVENT_NAME_BYTES: usize = 128;

/// One encoded, immutable piece of the event stream, shared by every subscriber.
///
/// Cloning a `Frame` clones a pointer (one atomic increment), never the bytes. The pointer
/// is thin (8 bytes) so that each slot of a subscriber's bounded queue stays small.
#[derive(Clone)]
pub struct Frame(Arc<Box<[u8]>>);

impl Frame {
    /// Wraps already encoded bytes. The caller guarantees they are a well-formed
    /// sequence of event-stream lines (each ending in LF).
    pub fn from_encoded(bytes: Vec<u8>) -> Frame {
        Frame(Arc::new(bytes.into_boxed_slice()))
    }

    /// A frame holding one comment line (`: text`) followed by a blank line.
    ///
    /// # Errors
    ///
    /// [`FieldError`] when `text` holds CR, LF or NUL.
    ///
    /// # Examples
    ///
    /// ```
    /// let f = ssehub::sse::Frame::comment("hello").unwrap();
    /// assert_eq!(f.as_bytes(), b": hello\n\n");
    /// assert!(ssehub::sse::Frame::comment("a\nb").is_err());
    /// ```
    pub fn comment(text: &str) -> Result<Frame, FieldError> {
        check_line("comment", text)?;
        let mut buf = Vec::with_capacity(text.len() + 4);
        push_comment(&mut buf, text);
        buf.push(b'\n');
        Ok(Frame::from_encoded(buf))
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length of the encoded bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the frame is empty (never true for frames built by this module).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never dump payloads into logs.
        write!(f, "Frame({} bytes)", self.0.len())
    }
}

/// The heartbeat: a comment line that keeps proxies from timing the stream out and, going
/// through every subscriber's bounded queue, doubles as a liveness probe.
pub fn heartbeat() -> Frame {
    Frame::from_encoded(b": heartbeat\n\n".to_vec())
}

/// The first frame of every stream: the response `head`, a `retry:` line with the
/// reconnect delay `retry_ms` and a comment naming the `client`, flushed at once so
/// that the client (and any proxy) sees the stream open before the first event.
pub fn preamble(head: Vec<u8>, retry_ms: u32, client: impl fmt::Display) -> Frame {
    let mut buf = head;
    push_field(&mut buf, b"retry", &retry_ms.to_string());
    push_comment(&mut buf, &format!("connected, client {client}"));
    buf.push(b'\n');
    Frame::from_encoded(buf)
}

/// An empty comment line, which SSE clients ignore: the writer's probe of a
/// half-closed connection.
pub const PROBE: &[u8] = b":\n";

/// The longest part of a client's `Last-Event-ID` echoed in a reset event.
/// **Unit:** characters. Why: the event stays small whatever the client sent.
pub const MAX_ECHOED_ID_CHARS: usize = 64;

/// The reset event at the start of a resumed stream that cannot continue where the
/// client left off: `event: reset` and one line of JSON data, **no** `id:` line (so it
/// does not move the client's last event id).
///
/// The data is `{"reason", "last_event_id", "replay_from", "first_retained", "last"}`
/// in that order (`reason` first, so a client reading a prefix sees it): the reason's
/// label, what the client sent (at most [`MAX_ECHOED_ID_CHARS`] characters of it), and
/// the ids of the first event replayed after the reset, the oldest kept and the last
/// published, each `null` when there is none. A browser's `EventSource` dispatches it
/// as an event of type `reset`; a comment it would discard.
///
/// # Examples
///
/// ```
/// use ssehub::event_id::{EventId, Reset, ResetReason};
/// let f = ssehub::sse::reset_event(&Reset {
///     reason: ResetReason::OtherEpoch,
///     last_event_id: "1700000000000-3",
///     replay_from: Some(EventId::new(1700000009000, 1)),
///     first_retained: Some(EventId::new(1700000009000, 1)),
///     last: Some(EventId::new(1700000009000, 2)),
/// });
/// assert_eq!(
///     f.as_bytes(),
///     b"event: reset\ndata: {\"reason\":\"other-epoch\",\"last_event_id\":\"1700000000000-3\",\
///       \"replay_from\":\"1700000009000-1\",\"first_retained\":\"1700000009000-1\",\
///       \"last\":\"1700000009000-2\"}\n\n"
/// );
/// ```
pub fn reset_event(reset: &Reset<'_>) -> Frame {
    #[derive(serde::Serialize)]
    struct Data<'a> {
        reason: &'a str,
        last_event_id: &'a str,
        replay_from: Option<String>,
        first_retained: Option<String>,
        last: Option<String>,
    }
    let sent = match reset.last_event_id.char_indices().nth(MAX_ECHOED_ID_CHARS) {
        Some((i, _)) => &reset.last_event_id[..i],
        None => reset.last_event_id,
    };
    let data = Data {
        reason: reset.reason.label(),
        last_event_id: sent,
        replay_from: reset.replay_from.map(|id| id.to_string()),
        first_retained: reset.first_retained.map(|id| id.to_string()),
        last: reset.last.map(|id| id.to_string()),
    };
    // serde_json escapes every control character, so the text is one line.
    let json = serde_json::to_string(&data).unwrap_or_else(|_| String::from("{}"));
    let mut buf = Vec::with_capacity(json.len() + 24);
    push_field(&mut buf, b"event", "reset");
    push_field(&mut buf, b"data", &json);
    buf.push(b'\n');
    Frame::from_encoded(buf)
}

/// The query parameter that asks `GET /stream` for tagged frames (`?tagged=1`).
pub const TAGGED_PARAM: &str = "tagged";

/// The tagged twin of an event's `frame`, for subscribers that asked for tags
/// ([`TAGGED_PARAM`]): a `topic:` line for each of the event's `topics` (its own first,
/// then its alternates), a `private: 1` line when it is `private`, then the frame's own
/// lines. A browser's `EventSource` ignores these field names, as the format says of
/// unknown fields; a parser of its own (`ssehub.js`'s) reads them, so that tabs sharing a
/// wider stream can each keep the events of their own topics, and a page can show which
/// events are private.
///
/// Made once per event, and only when some subscriber is tagged: the hub hands the same
/// tagged frame to every tagged subscriber. Topics never hold CR, LF or NUL (see
/// `Topic::new`), so each stays one line.
///
/// # Examples
///
/// ```
/// use ssehub::sse::{encode, tagged, Event};
/// let plain = encode(&Event::new("hi").unwrap(), Some("7"));
/// let t = tagged(&plain, ["orders/1", "orders"], true);
/// assert_eq!(
///     t.as_bytes(),
///     b"topic: orders/1\ntopic: orders\nprivate: 1\nid: 7\ndata: hi\n\n"
/// );
/// ```
pub fn tagged<'a>(
    frame: &Frame,
    topics: impl IntoIterator<Item = &'a str>,
    private: bool,
) -> Frame {
    let mut buf = Vec::with_capacity(frame.len() + 48);
    for topic in topics {
        debug_assert!(check_line("topic", topic).is_ok());
        push_field(&mut buf, b"topic", topic);
    }
    if private {
        push_field(&mut buf, b"private", "1");
    }
    buf.extend_from_slice(frame.as_bytes());
    Frame::from_encoded(buf)
}

/// Why a field value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldError {
    /// The value holds a CR, LF or NUL, which would end the line early or be truncated.
    LineBreak {
        /// Which field (`"event"`, `"id"`, `"comment"`, `"data"`).
        field: &'static str,
    },
    /// The value is empty where a value is required.
    Empty {
        /// Which field.
        field: &'static str,
    },
    /// The value is longer than allowed.
    TooLong {
        /// Which field.
        field: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::LineBreak { field } if *field == "data" => {
                write!(f, "data must not contain NUL")
            }
            FieldError::LineBreak { field } => {
                write!(f, "{field} must not contain CR, LF or NUL")
            }
            FieldError::Empty { field } => write!(f, "{field} must not be empty"),
            FieldError::TooLong { field, limit } => {
                write!(f, "{field} exceeds {limit} bytes")
            }
        }
    }
}

impl std::error::Error for FieldError {}

/// Refuses text that would break out of a single line.
fn check_line(field: &'static str, text: &str) -> Result<(), FieldError> {
    if text.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(FieldError::LineBreak { field });
    }
    Ok(())
}

/// A structured event, validated on construction, not yet encoded.
///
/// The hub assigns the `id` when it publishes; see [`encode`].
///
/// # Examples
///
/// ```
/// use ssehub::sse::{encode, Event};
/// let ev = Event::new("line one\nline two").unwrap().with_name("tick").unwrap();
/// let frame = encode(&ev, Some("7"));
/// assert_eq!(
///     frame.as_bytes(),
///     b"id: 7\nevent: tick\ndata: line one\ndata: line two\n\n"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    name: Option<String>,
    data: String,
    retry: Option<u32>,
}

impl Event {
    /// An unnamed event (dispatched as `message` by browsers) carrying `data`.
    ///
    /// # Errors
    ///
    /// [`FieldError::LineBreak`] when `data` holds NUL. Line breaks are fine: they become
    /// several `data:` lines.
    pub fn new(data: impl Into<String>) -> Result<Event, FieldError> {
        let data = data.into();
        if data.as_bytes().contains(&0) {
            return Err(FieldError::LineBreak { field: "data" });
        }
        Ok(Event {
            name: None,
            data,
            retry: None,
        })
    }

    /// Sets the event name (the `event:` field).
    ///
    /// # Errors
    ///
    /// [`FieldError`] when the name is empty, longer than [`MAX_EVENT_NAME_BYTES`], or holds
    /// CR, LF or NUL.
    pub fn with_name(mut self, name: &str) -> Result<Event, FieldError> {
        if name.is_empty() {
            return Err(FieldError::Empty { field: "event" });
        }
        if name.len() > MAX_EVENT_NAME_BYTES {
            return Err(FieldError::TooLong {
                field: "event",
                limit: MAX_EVENT_NAME_BYTES,
            });
        }
        check_line("event", name)?;
        self.name = Some(name.to_owned());
        Ok(self)
    }

    /// Sets the reconnection time the client should use, in milliseconds.
    pub fn with_retry(mut self, ms: u32) -> Event {
        self.retry = Some(ms);
        self
    }

    /// The event name, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The data, as given.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The retry time in milliseconds, if any.
    pub fn retry(&self) -> Option<u32> {
        self.retry
    }
}

/// Encodes `event` with the given id into one shared [`Frame`].
///
/// `id` must not hold CR, LF or NUL; the hub only passes its own ids (`<epoch>-<offset>`). Field order
/// is `id`, `event`, `retry`, then the `data` lines, then a blank line.
pub fn encode(event: &Event, id: Option<&str>) -> Frame {
    let mut buf = Vec::with_capacity(event.data.len() + 32);
    encode_into(&mut buf, event, id);
    Frame::from_encoded(buf)
}

/// Appends the encoding of `event` to `buf` (see [`encode`]).
pub fn encode_into(buf: &mut Vec<u8>, event: &Event, id: Option<&str>) {
    if let Some(id) = id {
        debug_assert!(check_line("id", id).is_ok());
        push_field(buf, b"id", id);
    }
    if let Some(name) = &event.name {
        push_field(buf, b"event", name);
    }
    if let Some(ms) = event.retry {
        push_field(buf, b"retry", &ms.to_string());
    }
    for line in split_lines(&event.data) {
        push_field(buf, b"data", line);
    }
    buf.push(b'\n');
}

/// Appends `: text\n`.
pub(crate) fn push_comment(buf: &mut Vec<u8>, text: &str) {
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(text.as_bytes());
    buf.push(b'\n');
}

/// Appends `name: value\n`.
fn push_field(buf: &mut Vec<u8>, name: &[u8], value: &str) {
    buf.extend_from_slice(name);
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value.as_bytes());
    buf.push(b'\n');
}

/// Splits at CRLF, lone CR and lone LF, as the WHATWG parser does. Always yields at least
/// one piece (the empty string for empty data), so an event with empty data still
/// dispatches.
pub fn split_lines(data: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(s)
            }
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(data: &str, name: Option<&str>, id: Option<&str>) -> Vec<u8> {
        let mut ev = Event::new(data).unwrap();
        if let Some(n) = name {
            ev = ev.with_name(n).unwrap();
        }
        encode(&ev, id).as_bytes().to_vec()
    }

    #[test]
    fn preamble_exact_bytes() {
        let p = preamble(b"HEAD\r\n\r\n".to_vec(), 2500, "#7");
        assert_eq!(
            p.as_bytes(),
            b"HEAD\r\n\r\nretry: 2500\n: connected, client #7\n\n"
        );
    }

    fn reset_data(reset: &Reset<'_>) -> serde_json::Value {
        let f = reset_event(reset);
        let text = std::str::from_utf8(f.as_bytes()).unwrap();
        let rest = text.strip_prefix("event: reset\ndata: ").expect(text);
        let json = rest.strip_suffix("\n\n").expect(text);
        assert!(!json.contains(['\r', '\n']), "{text:?}");
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reset_event_is_one_named_event_without_an_id_and_nulls_for_none() {
        use crate::event_id::ResetReason;
        let v = reset_data(&Reset {
            reason: ResetReason::Unknown,
            last_event_id: "3",
            replay_from: None,
            first_retained: None,
            last: None,
        });
        assert_eq!(
            v,
            serde_json::json!({"reason": "unknown", "last_event_id": "3", "replay_from": null,
                "first_retained": null, "last": null})
        );
    }

    #[test]
    fn reset_event_escapes_and_truncates_what_the_client_sent() {
        use crate::event_id::ResetReason;
        let sent = format!("\"\n\0\\é{}", "x".repeat(100));
        let v = reset_data(&Reset {
            reason: ResetReason::Unknown,
            last_event_id: &sent,
            replay_from: None,
            first_retained: None,
            last: None,
        });
        let echoed = v["last_event_id"].as_str().unwrap();
        assert_eq!(echoed.chars().count(), MAX_ECHOED_ID_CHARS);
        assert!(sent.starts_with(echoed));
    }

    #[test]
    fn tagged_frame_exact_bytes() {
        let ev = Event::new("a\nb").unwrap().with_name("tick").unwrap();
        let plain = encode(&ev, Some("1-2"));
        assert_eq!(
            tagged(&plain, ["news"], false).as_bytes(),
            b"topic: news\nid: 1-2\nevent: tick\ndata: a\ndata: b\n\n"
        );
        assert_eq!(
            tagged(&plain, ["https://e.com/b/1", "b"], true).as_bytes(),
            b"topic: https://e.com/b/1\ntopic: b\nprivate: 1\nid: 1-2\nevent: tick\ndata: a\ndata: b\n\n"
        );
        // The plain frame is untouched: untagged subscribers share it.
        assert_eq!(
            plain.as_bytes(),
            b"id: 1-2\nevent: tick\ndata: a\ndata: b\n\n"
        );
    }

    #[test]
    fn single_line_event_exact_bytes() {
        assert_eq!(
            enc("{\"seq\":42}", Some("tick"), Some("42")),
            b"id: 42\nevent: tick\ndata: {\"seq\":42}\n\n"
        );
    }

    #[test]
    fn data_only_event() {
        assert_eq!(enc("x", None, None), b"data: x\n\n");
    }

    #[test]
    fn empty_data_still_has_one_data_line() {
        assert_eq!(enc("", None, None), b"data: \n\n");
    }

    #[test]
    fn lf_cr_and_crlf_each_start_a_new_data_line() {
        assert_eq!(
            enc("a\nb\rc\r\nd", None, None),
            b"data: a\ndata: b\ndata: c\ndata: d\n\n"
        );
    }

    #[test]
    fn trailing_newline_gives_trailing_empty_data_line() {
        assert_eq!(enc("a\n", None, None), b"data: a\ndata: \n\n");
    }

    #[test]
    fn cr_lf_as_separate_breaks_when_reversed() {
        // "\n\r" is two line breaks, not one.
        assert_eq!(enc("a\n\rb", None, None), b"data: a\ndata: \ndata: b\n\n");
    }

    #[test]
    fn leading_space_in_data_survives() {
        // The parser strips exactly one space after the colon; we always write one.
        assert_eq!(enc(" x", None, None), b"data:  x\n\n");
    }

    #[test]
    fn retry_field() {
        let ev = Event::new("x").unwrap().with_retry(1500);
        assert_eq!(encode(&ev, None).as_bytes(), b"retry: 1500\ndata: x\n\n");
    }

    #[test]
    fn event_name_injection_is_refused() {
        for bad in ["a\nb", "a\rb", "a\0b", "x\n\ndata: forged"] {
            assert_eq!(
                Event::new("d").unwrap().with_name(bad),
                Err(FieldError::LineBreak { field: "event" })
            );
        }
        assert!(Event::new("d").unwrap().with_name("").is_err());
        assert!(
            Event::new("d")
                .unwrap()
                .with_name(&"n".repeat(129))
                .is_err()
        );
    }

    #[test]
    fn nul_in_data_is_refused() {
        assert!(Event::new("a\0b").is_err());
    }

    #[test]
    fn comment_frames() {
        assert_eq!(Frame::comment("hi").unwrap().as_bytes(), b": hi\n\n");
        assert!(Frame::comment("a\rb").is_err());
        assert_eq!(heartbeat().as_bytes(), b": heartbeat\n\n");
    }

    #[test]
    fn frame_debug_does_not_dump_payload() {
        let f = Frame::from_encoded(b"data: secret\n\n".to_vec());
        assert_eq!(format!("{f:?}"), "Frame(14 bytes)");
    }

    #[test]
    fn split_lines_matches_naive_oracle() {
        // Oracle: normalise CRLF and CR to LF, then split on LF.
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2000 {
            let len = rng.usize(0..12);
            let s: String = (0..len)
                .map(|_| ['a', '\r', '\n', 'b', ' '][rng.usize(0..5)])
                .collect();
            let naive = s.replace("\r\n", "\n").replace('\r', "\n");
            let want: Vec<&str> = naive.split('\n').collect();
            let got: Vec<&str> = split_lines(&s).collect();
            assert_eq!(got, want, "input {s:?}");
        }
    }
}
