//! What a publisher sends: a `POST /publish` body (JSON or plain text) or a `--stdin`
//! line, checked and turned into a topic and an [`Event`].
//!
//! # JSON data
//!
//! A string `data` is sent decoded: `{"data":"hi"}` sends `hi`. Any other value is sent as
//! the publisher's own text, byte for byte, never re-serialised: key order, repeated keys
//! inside it, the spelling of numbers (`1.0`, `-0`, `12345678901234567890123`, `1e400`),
//! escapes (`"\u00e9"` stays those six characters) and the whitespace between its tokens
//! all arrive as written. The text is checked against the JSON grammar (RFC 8259) and not
//! interpreted further: a number may have any size or precision, a `\uXXXX` escape need
//! not pair up into a valid character, and nesting is bounded only by the body size
//! limit. A string that must be decoded (`data`, `event`, `topic`, a field name) is
//! refused when it holds such a lone surrogate, as JSON text no Rust string can hold.
//!
//! Whitespace around the value (after the `:` and before the next `,` or `}`) is not part
//! of it and is not sent: `{"data": [1, 2] }` sends `[1, 2]`.
//!
//! # Line breaks in data
//!
//! Data may hold line breaks: each becomes its own `data:` line, and subscribers join the
//! lines with LF. CR and CRLF arrive at subscribers as LF, which is all the SSE format can
//! carry. NUL is refused.
//!
//! So a pretty-printed `data` with LF line breaks arrives byte for byte. In JSON text a CR
//! can only be whitespace between tokens (inside a string it must be written `\r`), so a
//! value laid out with CRLF or CR arrives as the same text with each CRLF and each lone CR
//! replaced by LF: the same JSON value, and the same bytes but for those line breaks.
//!
//! # Field names
//!
//! The body object takes `data`, `event`, `topic`, `retry`, `private` and `id`, each at
//! most once. An
//! unknown name is refused (likely a typo), and so is a repeated one, naming it
//! (`duplicate field "topic"`): RFC 8259 leaves the meaning of repeated names to each
//! parser, so a proxy or audit log that read the first `topic` while the hub took the
//! last would disagree with it about where an event went. Names are compared decoded:
//! `"d\u0061ta"` is `data`.
//!
//! # Private events
//!
//! `"private": true` in JSON (or `?private=1` with a plain-text body) marks the event
//! private: only subscribers whose token's `subscribe` selectors match its topic receive
//! it, live or in replay. `false`, `null` and no field (`?private=0`, no parameter) make
//! it public, as every event was before.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::envelope::{Envelope, EnvelopeError, MAX_EVENT_TOPICS, PublisherId};
use crate::sse::{Event, FieldError};
use crate::topic::{Topic, TopicError};

/// A checked publish request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Where it goes (its first topic).
    pub topic: Topic,
    /// Its other topics: a subscriber of any of them gets it too, once.
    pub alternates: Vec<Topic>,
    /// What it carries.
    pub event: Event,
    /// Whether only subscribers whose token covers one of its topics receive it.
    pub private: bool,
    /// The publisher's own id for it (the SSE `id:` on the wire), if it gave one.
    pub id: Option<PublisherId>,
}

impl Publish {
    /// Its addressing, as the publish port takes it.
    ///
    /// # Errors
    ///
    /// [`PublishError::Envelope`] with more than [`MAX_EVENT_TOPICS`] topics.
    pub fn envelope(&self) -> Result<Envelope, PublishError> {
        let mut topics = Vec::with_capacity(1 + self.alternates.len());
        topics.push(self.topic.clone());
        topics.extend(self.alternates.iter().cloned());
        let mut env = Envelope::new(topics)?.with_private(self.private);
        if let Some(id) = &self.id {
            env = env.with_id(id.clone());
        }
        Ok(env)
    }

    /// Every topic it goes to, its own first.
    pub fn topics(&self) -> impl Iterator<Item = &Topic> {
        std::iter::once(&self.topic).chain(&self.alternates)
    }
}

/// The query parameters a plain-text publish reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params<'a> {
    /// `event`: the SSE event name.
    pub event: Option<&'a str>,
    /// `topic`, repeated: the first is the event's topic, the rest alternates.
    pub topics: Vec<&'a str>,
    /// `retry`: milliseconds.
    pub retry: Option<&'a str>,
    /// `private`: `1`, `0`, `true` or `false`.
    pub private: Option<&'a str>,
    /// `id`: the publisher's id for the event.
    pub id: Option<&'a str>,
}

/// Why a publish request was refused (`400`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// The body is not JSON; the parser's message.
    Json(String),
    /// The JSON is not an object.
    NotAnObject,
    /// No `data` field.
    MissingData,
    /// A field has the wrong JSON type.
    WrongType {
        /// Field name.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A field this API does not know (likely a typo).
    UnknownField(String),
    /// A field given more than once in the body object.
    DuplicateField(&'static str),
    /// An SSE field would break the wire format.
    Field(FieldError),
    /// A bad topic name.
    Topic(TopicError),
    /// A plain-text body that is not UTF-8.
    NotUtf8,
    /// `retry` is not a whole number of milliseconds that fits 32 bits.
    Retry,
    /// `?private=` is not `1`, `0`, `true` or `false`.
    Private,
    /// Too many topics, or a bad publisher id.
    Envelope(EnvelopeError),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Json(e) => write!(f, "body is not valid JSON: {e}"),
            PublishError::NotAnObject => f.write_str("JSON body must be an object"),
            PublishError::MissingData => f.write_str("JSON body needs a \"data\" field"),
            PublishError::WrongType { field, expected } => {
                write!(f, "\"{field}\" must be {expected}")
            }
            PublishError::UnknownField(name) => {
                let shown: String = name.chars().take(40).collect();
                write!(
                    f,
                    "unknown field {shown:?} (expected data, event, topic, retry, private, id)"
                )
            }
            PublishError::DuplicateField(name) => write!(
                f,
                "duplicate field \"{name}\" (data, event, topic, retry, private and id may each appear once)"
            ),
            PublishError::Field(e) => e.fmt(f),
            PublishError::Topic(e) => e.fmt(f),
            PublishError::NotUtf8 => f.write_str("body is not valid UTF-8"),
            PublishError::Retry => {
                f.write_str("retry must be a whole number of milliseconds up to 4294967295")
            }
            PublishError::Private => f.write_str("private must be 1, 0, true or false"),
            PublishError::Envelope(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PublishError {}

impl From<FieldError> for PublishError {
    fn from(e: FieldError) -> Self {
        PublishError::Field(e)
    }
}

impl From<EnvelopeError> for PublishError {
    fn from(e: EnvelopeError) -> Self {
        PublishError::Envelope(e)
    }
}

impl From<TopicError> for PublishError {
    fn from(e: TopicError) -> Self {
        PublishError::Topic(e)
    }
}

/// Parses a JSON body: `{"data": <string or any JSON>, "event"?: string, "topic"?: string
/// or array of strings (the first is the event's topic, the rest alternates), "retry"?:
/// integer, "private"?: boolean, "id"?: string (the publisher's id)}`, each field at most
/// once. String `data` is sent decoded; any other
/// `data` is sent as the publisher's exact JSON text (see the [module docs](self)).
///
/// # Errors
///
/// [`PublishError`] naming the first problem.
///
/// # Examples
///
/// ```
/// let p = ssehub::input::from_json(br#"{"data":{"b":1,"a":2},"event":"tick","topic":"t"}"#).unwrap();
/// assert_eq!(p.event.data(), r#"{"b":1,"a":2}"#);
/// assert_eq!(p.topic.as_str(), "t");
/// let p = ssehub::input::from_json(br#"{"data":"hi"}"#).unwrap();
/// assert_eq!(p.event.data(), "hi");
/// assert!(ssehub::input::from_json(br#"{"data":"x","event":"a\nb"}"#).is_err());
/// assert!(ssehub::input::from_json(br#"{"data":"x","data":"y"}"#).is_err());
/// assert!(ssehub::input::from_json(br#"{"data":"x","private":true}"#).unwrap().private);
/// ```
pub fn from_json(body: &[u8]) -> Result<Publish, PublishError> {
    let json_error = |e: serde_json::Error| PublishError::Json(e.to_string());
    if body.iter().find(|b| !b" \t\n\r".contains(b)) != Some(&b'{') {
        // Not an object: say so only of well-formed JSON.
        serde_json::from_slice::<IgnoredAny>(body).map_err(json_error)?;
        return Err(PublishError::NotAnObject);
    }
    let fields: Fields<'_> = serde_json::from_slice(body).map_err(json_error)?;
    if let Some(problem) = fields.problem {
        return Err(problem);
    }
    let data = match fields.data {
        None => return Err(PublishError::MissingData),
        Some(raw) if raw.get().starts_with('"') => decode_str(body, raw)?,
        Some(raw) => raw.get().to_owned(),
    };
    let event = opt_str(body, fields.event, "event")?;
    let topics = topic_list(body, fields.topic)?;
    let id = opt_str(body, fields.id, "id")?;
    let retry = match fields.retry.map(RawValue::get) {
        None | Some("null") => None,
        Some(text) => Some(
            serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.as_u64())
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(PublishError::Retry)?,
        ),
    };
    let private = match fields.private.map(RawValue::get) {
        None | Some("null" | "false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(PublishError::WrongType {
                field: "private",
                expected: "true or false",
            });
        }
    };
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    build(
        data,
        event.as_deref(),
        &topics,
        retry,
        private,
        id.as_deref(),
    )
}

/// `topic`: absent or `null` (no topic), a string, or a non-empty array of strings.
fn topic_list(body: &[u8], raw: Option<&RawValue>) -> Result<Vec<String>, PublishError> {
    let wrong = || PublishError::WrongType {
        field: "topic",
        expected: "a string or a non-empty array of strings",
    };
    // A string that cannot be decoded keeps its own error (with its position).
    let one = |raw: &RawValue| match opt_str(body, Some(raw), "topic") {
        Ok(Some(t)) => Ok(t),
        Ok(None) | Err(PublishError::WrongType { .. }) => Err(wrong()),
        Err(e) => Err(e),
    };
    match raw {
        None => Ok(Vec::new()),
        Some(r) if r.get() == "null" => Ok(Vec::new()),
        Some(r) if r.get().starts_with('[') => {
            let items: Vec<&RawValue> = serde_json::from_str(r.get()).map_err(|_| wrong())?;
            if items.is_empty() {
                return Err(wrong());
            }
            items.into_iter().map(one).collect()
        }
        Some(r) => Ok(vec![one(r)?]),
    }
}

/// The body object's fields, as raw JSON text borrowed from the body.
#[derive(Default)]
struct Fields<'a> {
    data: Option<&'a RawValue>,
    event: Option<&'a RawValue>,
    topic: Option<&'a RawValue>,
    retry: Option<&'a RawValue>,
    private: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    /// The first unknown or repeated name, in the body's order.
    problem: Option<PublishError>,
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Fields::default();
                while let Some(key) = map.next_key::<Key>()? {
                    let (slot, name) = match key {
                        Key::Data => (&mut fields.data, "data"),
                        Key::Event => (&mut fields.event, "event"),
                        Key::Topic => (&mut fields.topic, "topic"),
                        Key::Retry => (&mut fields.retry, "retry"),
                        Key::Private => (&mut fields.private, "private"),
                        Key::Id => (&mut fields.id, "id"),
                        Key::Unknown(name) => {
                            fields.problem = Some(PublishError::UnknownField(name));
                            break;
                        }
                    };
                    if slot.is_some() {
                        fields.problem = Some(PublishError::DuplicateField(name));
                        break;
                    }
                    *slot = Some(map.next_value()?);
                }
                if fields.problem.is_some() {
                    // The rest must still be well-formed JSON.
                    map.next_value::<IgnoredAny>()?;
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                }
                Ok(fields)
            }
        }
        d.deserialize_map(FieldsVisitor)
    }
}

/// A field name of the body object, decoded.
enum Key {
    Data,
    Event,
    Topic,
    Retry,
    Private,
    Id,
    Unknown(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
                Ok(match name {
                    "data" => Key::Data,
                    "event" => Key::Event,
                    "topic" => Key::Topic,
                    "retry" => Key::Retry,
                    "private" => Key::Private,
                    "id" => Key::Id,
                    other => Key::Unknown(other.to_owned()),
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// An optional string field: absent or `null` is `None`.
fn opt_str(
    body: &[u8],
    raw: Option<&RawValue>,
    field: &'static str,
) -> Result<Option<String>, PublishError> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) if raw.get().starts_with('"') => decode_str(body, raw).map(Some),
        Some(_) => Err(PublishError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

/// Decodes `raw`, a JSON string literal borrowed from `body`.
///
/// The grammar check has passed, so only a `\u` escape that is no character (a lone
/// surrogate) fails here; the error then gives its position in `body`, as a parse of the
/// whole body would.
fn decode_str(body: &[u8], raw: &RawValue) -> Result<String, PublishError> {
    let text = raw.get();
    serde_json::from_str(text).map_err(|e| {
        let start = text.as_ptr().addr().wrapping_sub(body.as_ptr().addr());
        let Some(before) = body.get(..start) else {
            return PublishError::Json(e.to_string());
        };
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = before.iter().filter(|&&b| b == b'\n').count() + e.line();
        let column = match e.line() {
            1 => start - line_start + e.column(),
            _ => e.column(),
        };
        let message = e.to_string();
        let what = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(what, _)| what);
        PublishError::Json(format!("{what} at line {line} column {column}"))
    })
}

/// Builds a request from a plain-text body and the query parameters `params`.
///
/// # Errors
///
/// [`PublishError`] naming the first problem.
///
/// # Examples
///
/// ```
/// use ssehub::input::{Params, from_text};
/// let params = Params { topics: vec!["books/1", "books"], id: Some("b1-v2"), ..Params::default() };
/// let p = from_text(b"hello", &params).unwrap();
/// assert_eq!(p.topic.as_str(), "books/1");
/// assert_eq!(p.alternates[0].as_str(), "books");
/// assert_eq!(p.id.unwrap().as_str(), "b1-v2");
/// ```
pub fn from_text(body: &[u8], params: &Params<'_>) -> Result<Publish, PublishError> {
    let data = std::str::from_utf8(body).map_err(|_| PublishError::NotUtf8)?;
    let retry = match params.retry {
        None => None,
        Some(r) => Some(r.parse::<u32>().map_err(|_| PublishError::Retry)?),
    };
    let private = match params.private {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => return Err(PublishError::Private),
    };
    build(
        data.to_owned(),
        params.event,
        &params.topics,
        retry,
        private,
        params.id,
    )
}

fn build(
    data: String,
    event: Option<&str>,
    topics: &[&str],
    retry: Option<u32>,
    private: bool,
    id: Option<&str>,
) -> Result<Publish, PublishError> {
    let mut ev = Event::new(data)?;
    if let Some(name) = event {
        ev = ev.with_name(name)?;
    }
    if let Some(ms) = retry {
        ev = ev.with_retry(ms);
    }
    let mut topics = topics
        .iter()
        .map(|t| Topic::new(t))
        .collect::<Result<Vec<Topic>, TopicError>>()?;
    if topics.len() > MAX_EVENT_TOPICS {
        return Err(EnvelopeError::TooManyTopics.into());
    }
    let topic = match topics.is_empty() {
        true => Topic::default_topic(),
        false => topics.remove(0),
    };
    topics.retain(|t| *t != topic);
    let id = id.map(PublisherId::new).transpose()?;
    Ok(Publish {
        topic,
        alternates: topics,
        event: ev,
        private,
        id,
    })
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
