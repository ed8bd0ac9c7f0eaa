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
//! The body object takes `data`, `event`, `topic`, `retry` and `private`, each at most
//! once. An
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

use crate::sse::{Event, FieldError};
use crate::topic::{Topic, TopicError};

/// A checked publish request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Where it goes.
    pub topic: Topic,
    /// What it carries.
    pub event: Event,
    /// Whether only subscribers whose token covers the topic receive it.
    pub private: bool,
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
                    "unknown field {shown:?} (expected data, event, topic, retry, private)"
                )
            }
            PublishError::DuplicateField(name) => write!(
                f,
                "duplicate field \"{name}\" (data, event, topic, retry and private may each appear once)"
            ),
            PublishError::Field(e) => e.fmt(f),
            PublishError::Topic(e) => e.fmt(f),
            PublishError::NotUtf8 => f.write_str("body is not valid UTF-8"),
            PublishError::Retry => {
                f.write_str("retry must be a whole number of milliseconds up to 4294967295")
            }
            PublishError::Private => f.write_str("private must be 1, 0, true or false"),
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
/// "retry"?: integer, "private"?: boolean}`, each field at most once. String `data` is sent decoded; any other
/// `data` is sent as the publisher's exact JSON text (see the [module docs](self)).
///
/// # Errors
///
/// [`PublishError`] naming the first problem.
///
/// # Examples
///
/// ```
/// let p = ssehub::publish::from_json(br#"{"data":{"b":1,"a":2},"event":"tick","topic":"t"}"#).unwrap();
/// assert_eq!(p.event.data(), r#"{"b":1,"a":2}"#);
/// assert_eq!(p.topic.as_str(), "t");
/// let p = ssehub::publish::from_json(br#"{"data":"hi"}"#).unwrap();
/// assert_eq!(p.event.data(), "hi");
/// assert!(ssehub::publish::from_json(br#"{"data":"x","event":"a\nb"}"#).is_err());
/// assert!(ssehub::publish::from_json(br#"{"data":"x","data":"y"}"#).is_err());
/// assert!(ssehub::publish::from_json(br#"{"data":"x","private":true}"#).unwrap().private);
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
    let topic = opt_str(body, fields.topic, "topic")?;
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
    build(data, event.as_deref(), topic.as_deref(), retry, private)
}

/// The body object's fields, as raw JSON text borrowed from the body.
#[derive(Default)]
struct Fields<'a> {
    data: Option<&'a RawValue>,
    event: Option<&'a RawValue>,
    topic: Option<&'a RawValue>,
    retry: Option<&'a RawValue>,
    private: Option<&'a RawValue>,
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

/// Builds a request from a plain-text body and the `event`, `topic`, `retry` and
/// `private` query parameters.
///
/// # Errors
///
/// [`PublishError`] naming the first problem.
pub fn from_text(
    body: &[u8],
    event: Option<&str>,
    topic: Option<&str>,
    retry: Option<&str>,
    private: Option<&str>,
) -> Result<Publish, PublishError> {
    let data = std::str::from_utf8(body).map_err(|_| PublishError::NotUtf8)?;
    let retry = match retry {
        None => None,
        Some(r) => Some(r.parse::<u32>().map_err(|_| PublishError::Retry)?),
    };
    let private = match private {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => return Err(PublishError::Private),
    };
    build(data.to_owned(), event, topic, retry, private)
}

fn build(
    data: String,
    event: Option<&str>,
    topic: Option<&str>,
    retry: Option<u32>,
    private: bool,
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
    Ok(Publish {
        topic,
        event: ev,
        private,
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
mod tests {
    use proptest::prelude::*;

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
            (br#"{"data":"x","data":"y"}"#, "duplicate field \"data\""),
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

    /// The event data `body` gives, or the error message.
    fn data(body: &str) -> Result<String, String> {
        from_json(body.as_bytes())
            .map(|p| p.event.data().to_owned())
            .map_err(|e| e.to_string())
    }

    /// Asserts `{"data":<text>}` sends `text` itself.
    #[track_caller]
    fn verbatim(text: &str) {
        assert_eq!(data(&format!(r#"{{"data":{text}}}"#)).as_deref(), Ok(text));
    }

    #[test]
    fn non_string_data_is_the_publishers_exact_text() {
        // Big integers are not rounded, keys not sorted, nesting and spacing kept.
        verbatim("12345678901234567890123");
        verbatim(r#"{"b":1,"a":12345678901234567890123}"#);
        verbatim(r#"{"b":1,"a":2}"#);
        verbatim(r#"[[1,[2,[]]],{"a":[null,true,false]},[]]"#);
        verbatim(r#"{ "a" : [ 1 ,2 ] ,"b":{}}"#);
        verbatim("{\n  \"a\": 1,\n\t\"b\": [\n    true\n  ]\n}");
        verbatim("null");
        verbatim("true");
        verbatim("{}");
        // Escapes stay escapes; raw UTF-8 stays raw.
        verbatim(r#"{"s":"\u00e9"}"#);
        assert_eq!(r#"{"s":"\u00e9"}"#.len(), 14);
        verbatim(r#"{"s":"é \"q\" \\ \/ \n \ud83d\ude00"}"#);
        // A string data is decoded, escapes included.
        assert_eq!(
            data(r#"{"data":"\u00e9\ud83d\ude00"}"#).as_deref(),
            Ok("é😀")
        );
        assert_eq!(data(r#"{"data":"hi"}"#).as_deref(), Ok("hi"));
    }

    #[test]
    fn numbers_are_sent_as_spelled_whatever_their_range() {
        for n in [
            "1.0", "-0", "-0.0", "0", "1e400", "-1e400", "1e-400", "1E+2", "2.50e-3",
        ] {
            verbatim(n);
            verbatim(&format!("[{n}]"));
        }
        // The grammar is still checked.
        for bad in ["01", "1.", ".5", "+1", "-", "1e", "NaN", "Infinity", "0x10"] {
            let e = data(&format!(r#"{{"data":{bad}}}"#)).unwrap_err();
            assert!(e.starts_with("body is not valid JSON"), "{bad}: {e}");
        }
        // retry is a number the hub reads: out of range is a retry error.
        for bad in ["1e400", "1.0", "-0.5", "4294967296", "\"5\""] {
            let e = data(&format!(r#"{{"data":"x","retry":{bad}}}"#)).unwrap_err();
            assert!(e.starts_with("retry must be"), "{bad}: {e}");
        }
        let p = from_json(br#"{"data":"x","retry":4294967295}"#).unwrap();
        assert_eq!(p.event.retry(), Some(u32::MAX));
        assert_eq!(
            from_json(br#"{"data":"x","retry":null}"#)
                .unwrap()
                .event
                .retry(),
            None
        );
    }

    #[test]
    fn whitespace_around_the_value_is_not_part_of_it() {
        assert_eq!(
            data("{\"data\" :  \n\t[1, 2] \r\n , \"event\":\"e\"}").as_deref(),
            Ok("[1, 2]")
        );
        assert_eq!(
            data("  {\"data\":{\"a\":1}\n}\n").as_deref(),
            Ok(r#"{"a":1}"#)
        );
    }

    #[test]
    fn cr_in_the_text_is_kept_and_goes_out_as_lf() {
        let lf = "{\n  \"a\": [\n    1\n  ]\n}";
        for text in [
            lf.to_owned(),
            lf.replace('\n', "\r\n"),
            lf.replace('\n', "\r"),
        ] {
            let p = from_json(format!(r#"{{"data":{text}}}"#).as_bytes()).unwrap();
            assert_eq!(p.event.data(), text);
            let frame = crate::sse::encode(&p.event, None);
            assert_eq!(
                frame.as_bytes(),
                b"data: {\ndata:   \"a\": [\ndata:     1\ndata:   ]\ndata: }\n\n"
            );
        }
    }

    #[test]
    fn repeated_top_level_names_are_refused_nested_ones_kept() {
        for (body, name) in [
            (r#"{"data":1,"data":1}"#, "data"),
            (r#"{"data":"x","event":"a","event":"b"}"#, "event"),
            (r#"{"topic":null,"data":"x","topic":"b"}"#, "topic"),
            (r#"{"data":"x","retry":1,"retry":2}"#, "retry"),
            (r#"{"data":"x","d\u0061ta":"y"}"#, "data"),
        ] {
            assert_eq!(
                from_json(body.as_bytes()),
                Err(PublishError::DuplicateField(name)),
                "{body}"
            );
            let e = data(body).unwrap_err();
            assert!(
                e.starts_with(&format!("duplicate field \"{name}\" (")),
                "{e}"
            );
        }
        // The first problem in the body's order is the one named.
        assert_eq!(
            from_json(br#"{"data":1,"x":1,"data":2}"#),
            Err(PublishError::UnknownField("x".into()))
        );
        // The rest of the body must still be JSON.
        let e = data(r#"{"data":1,"data":2,"event":}"#).unwrap_err();
        assert!(e.starts_with("body is not valid JSON"), "{e}");
        // Inside data, names are the publisher's business.
        verbatim(r#"{"k":1,"k":2,"k":{"k":3,"k":3}}"#);
        verbatim(r#"[{"data":1,"data":2}]"#);
    }

    #[test]
    fn data_text_is_checked_against_the_json_grammar() {
        for bad in [
            r#"{"data":{"a":}}"#,
            r#"{"data":[1,]}"#,
            r#"{"data":{"a" 1}}"#,
            r#"{"data":{a:1}}"#,
            "{\"data\":{\"a\":\"tab\tinside\"}}",
            r#"{"data":"bad \x escape"}"#,
            r#"{"data":{"s":"\u12"}}"#,
            r#"{"data":1} x"#,
            r#"{"data":1"#,
            r#"{"data":1,}"#,
            "",
            "   ",
        ] {
            let e = data(bad).unwrap_err();
            assert!(e.starts_with("body is not valid JSON"), "{bad:?}: {e}");
        }
        assert_eq!(
            from_json(b"\xff"),
            Err(PublishError::Json(
                serde_json::from_slice::<Value>(b"\xff")
                    .unwrap_err()
                    .to_string()
            ))
        );
        for not_object in [&b"[1]"[..], b" 1e400", b"\"x\"", b"null", b"[[[1]]]"] {
            assert_eq!(from_json(not_object), Err(PublishError::NotAnObject));
        }
        // Invalid UTF-8 anywhere is refused, inside data too.
        assert!(matches!(
            from_json(b"{\"data\":{\"s\":\"\xc3\x28\"}}"),
            Err(PublishError::Json(_))
        ));
    }

    #[test]
    fn lone_surrogates_pass_in_json_text_and_are_refused_where_decoded() {
        verbatim(r#"{"s":"\ud800"}"#);
        verbatim(r#"["\udc00x"]"#);
        for body in [
            "{\"data\":\"a\\ud800\"}",
            "{\n  \"event\": \"e\",\n  \"data\": \"x\",  \"topic\": \"\\udc00\"\n}",
            "{\"data\":\"x\",\n\"event\":\"\\ud800\\u0041\"}",
            "{\"data\":1,\"\\ud800\":1}",
        ] {
            // The same message, position included, as a parse of the whole body gives.
            let want = serde_json::from_str::<Value>(body).unwrap_err().to_string();
            assert_eq!(
                data(body),
                Err(format!("body is not valid JSON: {want}")),
                "{body}"
            );
        }
    }

    #[test]
    fn deep_nesting_in_data_is_sent_without_recursion() {
        let depth = 100_000;
        verbatim(&format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
        let e = data(&format!(
            r#"{{"data":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth - 1)
        ))
        .unwrap_err();
        assert!(e.starts_with("body is not valid JSON"), "{e}");
    }

    /// Any JSON value, with big and small numbers, escapes and non-ASCII text.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_json_value_round_trips_byte_exact(value in json_value()) {
            let compact = serde_json::to_string(&value).unwrap();
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            for text in [compact, pretty.clone(), pretty.replace('\n', "\r\n")] {
                for body in [format!(r#"{{"data":{text}}}"#), format!("{{ \"data\" :\n{text}\n}}")] {
                    let got = from_json(body.as_bytes());
                    match &value {
                        // NUL is refused in any data; a string data is sent decoded.
                        Value::String(s) if s.contains('\0') => {
                            prop_assert!(got.is_err());
                        }
                        Value::String(s) => {
                            let got = got.unwrap();
                            prop_assert_eq!(got.event.data(), s.as_str());
                        }
                        _ => {
                            let got = got.unwrap();
                            prop_assert_eq!(got.event.data(), text.as_str());
                            // On the wire, after a subscriber joins the data lines: the LF text.
                            let frame = crate::sse::encode(&got.event, None);
                            let wire = std::str::from_utf8(frame.as_bytes()).unwrap();
                            let joined: Vec<&str> = wire
                                .lines()
                                .filter_map(|l| l.strip_prefix("data: "))
                                .collect();
                            let lf = text.replace("\r\n", "\n").replace('\r', "\n");
                            prop_assert_eq!(joined.join("\n"), lf);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn text_body_with_query_fields() {
        let p = from_text(b"hello", Some("greet"), Some("t1"), Some("100"), None).unwrap();
        assert_eq!(p.event.data(), "hello");
        assert_eq!(p.event.name(), Some("greet"));
        assert_eq!(p.event.retry(), Some(100));
        assert_eq!(
            from_text(b"\xff", None, None, None, None),
            Err(PublishError::NotUtf8)
        );
    }

    #[test]
    fn private_is_a_boolean_field_or_a_query_flag() {
        let private = |body: &str| from_json(body.as_bytes()).map(|p| p.private);
        assert_eq!(private(r#"{"data":"x"}"#), Ok(false));
        assert_eq!(private(r#"{"data":"x","private":true}"#), Ok(true));
        assert_eq!(private(r#"{"private" : true ,"data":"x"}"#), Ok(true));
        assert_eq!(private(r#"{"data":"x","private":false}"#), Ok(false));
        assert_eq!(private(r#"{"data":"x","private":null}"#), Ok(false));
        for bad in ["1", "\"true\"", "[]", "0"] {
            let e = private(&format!(r#"{{"data":"x","private":{bad}}}"#)).unwrap_err();
            assert_eq!(e.to_string(), "\"private\" must be true or false", "{bad}");
        }
        assert_eq!(
            private(r#"{"data":"x","private":true,"private":false}"#),
            Err(PublishError::DuplicateField("private"))
        );
        let e = private(r#"{"data":"x","privat":true}"#).unwrap_err();
        assert!(e.to_string().contains("retry, private)"), "{e}");
        let text = |flag| from_text(b"x", None, None, None, flag).map(|p| p.private);
        assert_eq!(text(None), Ok(false));
        assert_eq!(text(Some("1")), Ok(true));
        assert_eq!(text(Some("true")), Ok(true));
        assert_eq!(text(Some("0")), Ok(false));
        assert_eq!(text(Some("false")), Ok(false));
        assert_eq!(text(Some("yes")), Err(PublishError::Private));
        assert_eq!(
            PublishError::Private.to_string(),
            "private must be 1, 0, true or false"
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
