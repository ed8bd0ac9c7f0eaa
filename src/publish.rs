//! What a publisher sends: a `POST /publish` body (JSON or plain text) or a `--stdin`
//! line, checked and turned into a topic and an [`Event`].
//!
//! # Line breaks in data
//!
//! Data may hold line breaks: each becomes its own `data:` line. CR and CRLF arrive at
//! subscribers as LF, which is all the SSE format can carry. NUL is refused.

use std::fmt;

use serde_json::Value;

use crate::sse::{Event, FieldError};
use crate::topic::{Topic, TopicError};

/// A checked publish request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Where it goes.
    pub topic: Topic,
    /// What it carries.
    pub event: Event,
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
    /// An SSE field would break the wire format.
    Field(FieldError),
    /// A bad topic name.
    Topic(TopicError),
    /// A plain-text body that is not UTF-8.
    NotUtf8,
    /// `retry` is not a whole number of milliseconds that fits 32 bits.
    Retry,
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
                    "unknown field {shown:?} (expected data, event, topic, retry)"
                )
            }
            PublishError::Field(e) => e.fmt(f),
            PublishError::Topic(e) => e.fmt(f),
            PublishError::NotUtf8 => f.write_str("body is not valid UTF-8"),
            PublishError::Retry => {
                f.write_str("retry must be a whole number of milliseconds up to 4294967295")
            }
        }
    }
}

impl std::error::Error for PublishError {}

impl From<FieldError> for PublishError {
    fn from(e: FieldError) -> Self {
        PublishError::Field(e)
    }
}

impl From<TopicError> for PublishError {
    fn from(e: TopicError) -> Self {
        PublishError::Topic(e)
    }
}

/// Parses a JSON body: `{"data": <string or any JSON>, "event"?: string, "topic"?: string,
/// "retry"?: integer}`. Non-string `data` is sent as its compact JSON text.
///
/// # Errors
///
/// [`PublishError`] naming the first problem.
///
/// # Examples
///
/// ```
/// let p = ssehub::publish::from_json(br#"{"data":{"a":1},"event":"tick","topic":"t"}"#).unwrap();
/// assert_eq!(p.event.data(), r#"{"a":1}"#);
/// assert_eq!(p.topic.as_str(), "t");
/// assert!(ssehub::publish::from_json(br#"{"data":"x","event":"a\nb"}"#).is_err());
/// ```
pub fn from_json(body: &[u8]) -> Result<Publish, PublishError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| PublishError::Json(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(PublishError::NotAnObject);
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "data" | "event" | "topic" | "retry"))
    {
        return Err(PublishError::UnknownField(unknown.clone()));
    }
    let data = match map.get("data") {
        None => return Err(PublishError::MissingData),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let event = opt_str(&map, "event")?;
    let topic = opt_str(&map, "topic")?;
    let retry = match map.get("retry") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(PublishError::Retry)?,
        ),
    };
    build(data, event, topic, retry)
}

/// Builds a request from a plain-text body and the `event`, `topic` and `retry` query
/// parameters.
///
/// # Errors
///
/// [`PublishError`] naming the first problem.
pub fn from_text(
    body: &[u8],
    event: Option<&str>,
    topic: Option<&str>,
    retry: Option<&str>,
) -> Result<Publish, PublishError> {
    let data = std::str::from_utf8(body).map_err(|_| PublishError::NotUtf8)?;
    let retry = match retry {
        None => None,
        Some(r) => Some(r.parse::<u32>().map_err(|_| PublishError::Retry)?),
    };
    build(data.to_owned(), event, topic, retry)
}

fn opt_str<'a>(
    map: &'a serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, PublishError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(PublishError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn build(
    data: String,
    event: Option<&str>,
    topic: Option<&str>,
    retry: Option<u32>,
) -> Result<Publish, PublishError> {
    let mut ev = Event::new(data)?;
    if let Some(name) = event {
        ev = ev.with_name(name)?;
    }
    if let Some(ms) = retry {
        ev = ev.with_retry(ms);
    }
    let topic = match topic {
        None => Topic::default_topic(),
        Some(t) => Topic::new(t)?,
    };
    Ok(Publish { topic, event: ev })
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_string_data_is_taken_verbatim() {
        let p = from_json(br#"{"data":"a\nb"}"#).unwrap();
        assert_eq!(p.event.data(), "a\nb");
        assert_eq!(p.topic.as_str(), "default");
        assert_eq!(p.event.name(), None);
    }

    #[test]
    fn json_errors_are_precise() {
        let cases: &[(&[u8], &str)] = &[
            (b"{", "not valid JSON"),
            (b"[1]", "must be an object"),
            (b"{}", "needs a \"data\""),
            (br#"{"data":"x","event":5}"#, "\"event\" must be a string"),
            (br#"{"data":"x","topics":"a"}"#, "unknown field"),
            (br#"{"data":"x","event":"a\rb"}"#, "CR, LF or NUL"),
            (br#"{"data":"a\u0000b"}"#, "NUL"),
            (br#"{"data":"x","topic":"a b"}"#, "topic may only"),
            (br#"{"data":"x","retry":-1}"#, "retry"),
        ];
        for (body, needle) in cases {
            let e = from_json(body).unwrap_err().to_string();
            assert!(
                e.contains(needle),
                "{:?} -> {e}",
                String::from_utf8_lossy(body)
            );
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn text_body_with_query_fields() {
        let p = from_text(b"hello", Some("greet"), Some("t1"), Some("100")).unwrap();
        assert_eq!(p.event.data(), "hello");
        assert_eq!(p.event.name(), Some("greet"));
        assert_eq!(p.event.retry(), Some(100));
        assert_eq!(
            from_text(b"\xff", None, None, None),
            Err(PublishError::NotUtf8)
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
