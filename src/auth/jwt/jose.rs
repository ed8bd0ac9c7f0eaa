//! The JOSE header (RFC 7515 §4) and the claims set (RFC 7519 §4), parsed into strict
//! types.
//!
//! Each is a JSON object (RFC 7515 §5.2, RFC 7519 §7.2). Every member this hub reads has
//! one JSON type, and a member of another type, `null` included, refuses the token with a
//! one-line reason: a wrong type never reads as absent. Members this hub does not read
//! are ignored, whatever their type. A name given twice in any object refuses the token
//! (both RFCs allow a parser to refuse duplicates). To read a new member, add a field and
//! take it with [`take`], which has no way to skip a wrong type.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::TokenError;

/// The JOSE header, as far as it decides how a token is checked. Other parameters
/// (`kid`, `jku`, …) are not read: the key is always the hub's own.
#[derive(Debug)]
pub(super) struct Header {
    /// `alg`, a string (`None`: absent).
    pub(super) alg: Option<String>,
    /// `typ`, a string (`None`: absent): `at+jwt` marks an RFC 9068 access token.
    pub(super) typ: Option<String>,
    /// Whether `crit` is present, whatever its value: no extension is understood.
    pub(super) crit: bool,
}

impl Header {
    /// The header of this JSON text.
    pub(super) fn parse(json: &[u8]) -> Result<Header, TokenError> {
        let mut header = object(
            json,
            "header is not JSON, or repeats a name",
            "header must be a JSON object",
        )?;
        Ok(Header {
            alg: take(&mut header, "alg", string, "alg must be a string")?,
            typ: take(&mut header, "typ", string, "typ must be a string")?,
            crit: header.contains_key("crit"),
        })
    }
}

/// The type of the `authorization_details` entries (RFC 9396) that carry Mercure rights.
pub(super) const MERCURE_DETAIL: &str = "https://mercure.rocks/authorization-detail";

/// The claims this hub reads. Other claims (`jti`, `client_id`, …) are ignored.
#[derive(Debug)]
pub(super) struct ClaimsSet {
    /// `iss`, a string.
    pub(super) iss: Option<String>,
    /// `aud`, a string or an array of strings (RFC 7519 §4.1.3), as a list.
    pub(super) aud: Option<Vec<String>>,
    /// `authorization_details` (RFC 9396), an array of objects: the Mercure entries
    /// among them (entries of other types are skipped, whatever their members).
    pub(super) details: Option<Vec<Detail>>,
    /// `mercure` (an absent claim reads as one with no lists).
    pub(super) mercure: Mercure,
    /// `exp`, a NumericDate: seconds since the epoch, any JSON number (RFC 7519 §2
    /// allows fractions).
    pub(super) exp: Option<f64>,
    /// `nbf`, a NumericDate.
    pub(super) nbf: Option<f64>,
    /// `sub`, a string: whose token it is (the per-token stream cap counts by it).
    pub(super) sub: Option<String>,
}

/// The `mercure` claim. Other members are not read.
#[derive(Debug, Default)]
pub(super) struct Mercure {
    /// `subscribe`, an array of strings (empty when absent).
    pub(super) subscribe: Vec<String>,
    /// `publish`, an array of strings (empty when absent).
    pub(super) publish: Vec<String>,
    /// `payload`, any JSON but `null`, as compact JSON text of at most
    /// [`MAX_PAYLOAD_BYTES`] (`None`: absent or `null`).
    pub(super) payload: Option<Box<str>>,
}

/// Longest `payload` (0.x `mercure.payload`, or one 1.0 authorization detail's), as
/// compact JSON text. **Unit:** bytes. **Why:** a payload is kept for as long as its
/// subscriber's stream lives and copied into each of its subscription events and list
/// entries; 2 KiB holds the labels and ids it is meant for (the token itself is at most
/// 7 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 2048;

impl ClaimsSet {
    /// The claims of this JSON text.
    pub(super) fn parse(json: &[u8]) -> Result<ClaimsSet, TokenError> {
        let mut claims = object(
            json,
            "payload is not JSON, or repeats a name",
            "payload must be a JSON object",
        )?;
        // `iat` is not used, but a token whose `iat` is no date is not well formed.
        take(
            &mut claims,
            "iat",
            date,
            "iat must be a NumericDate (a number)",
        )?;
        let mercure = take(
            &mut claims,
            "mercure",
            object_value,
            "mercure must be a JSON object",
        )?;
        Ok(ClaimsSet {
            iss: take(&mut claims, "iss", string, "iss must be a string")?,
            aud: take(
                &mut claims,
                "aud",
                audience,
                "aud must be a string or an array of strings",
            )?,
            details: take(
                &mut claims,
                "authorization_details",
                array,
                "authorization_details must be an array",
            )?
            .map(|entries| {
                entries
                    .into_iter()
                    .filter_map(Detail::read)
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?,
            mercure: mercure.map(Mercure::read).transpose()?.unwrap_or_default(),
            exp: take(
                &mut claims,
                "exp",
                date,
                "exp must be a NumericDate (a number)",
            )?,
            nbf: take(
                &mut claims,
                "nbf",
                date,
                "nbf must be a NumericDate (a number)",
            )?,
            sub: take(&mut claims, "sub", string, "sub must be a string")?,
        })
    }
}

/// One `authorization_details` entry of type [`MERCURE_DETAIL`]. Other members are not
/// read.
#[derive(Debug, Default)]
pub(super) struct Detail {
    /// `actions`, an array of strings (`subscribe`, `publish`; others grant nothing).
    pub(super) actions: Vec<String>,
    /// `topics`, an array of `{"match": string, "match_type": "exact" | "urlpattern"}`.
    pub(super) topics: Vec<DetailTopic>,
    /// `payload`, as [`Mercure::payload`]: what the subscriptions this entry grants
    /// carry in Mercure's active subscriptions.
    pub(super) payload: Option<Box<str>>,
}

/// One entry of a [`Detail`]'s `topics`.
#[derive(Debug)]
pub(super) struct DetailTopic {
    /// `match`, a string (required).
    pub(super) pattern: String,
    /// Whether `match_type` is `urlpattern` (`exact`, the default, otherwise).
    pub(super) url_pattern: bool,
}

impl Detail {
    /// The entry in `value`: `None` when its `type` is another than [`MERCURE_DETAIL`].
    fn read(value: Value) -> Option<Result<Detail, TokenError>> {
        let Some(mut entry) = object_value(value) else {
            return Some(Err(TokenError::Malformed(
                "authorization_details must hold JSON objects",
            )));
        };
        match take(
            &mut entry,
            "type",
            string,
            "authorization_details type must be a string",
        ) {
            Err(e) => Some(Err(e)),
            Ok(None) => Some(Err(TokenError::Malformed(
                "authorization_details entries need a type",
            ))),
            Ok(Some(t)) if t != MERCURE_DETAIL => None,
            Ok(Some(_)) => Some(Detail::read_mercure(entry)),
        }
    }

    /// A Mercure entry's `actions` and `topics`.
    fn read_mercure(mut entry: Map<String, Value>) -> Result<Detail, TokenError> {
        let actions = take(
            &mut entry,
            "actions",
            strings,
            "authorization_details actions must be an array of strings",
        )?
        .unwrap_or_default();
        let topics = take(
            &mut entry,
            "topics",
            array,
            "authorization_details topics must be an array",
        )?
        .unwrap_or_default()
        .into_iter()
        .map(DetailTopic::read)
        .collect::<Result<_, _>>()?;
        let payload = payload(&mut entry)?;
        Ok(Detail {
            actions,
            topics,
            payload,
        })
    }
}

impl DetailTopic {
    /// One `topics` entry.
    fn read(value: Value) -> Result<DetailTopic, TokenError> {
        let mut topic = object_value(value).ok_or(TokenError::Malformed(
            "authorization_details topics must hold JSON objects",
        ))?;
        let pattern = take(
            &mut topic,
            "match",
            string,
            "authorization_details match must be a string",
        )?
        .ok_or(TokenError::Malformed(
            "authorization_details topics need a match",
        ))?;
        let url_pattern = match take(
            &mut topic,
            "match_type",
            string,
            "authorization_details match_type must be a string",
        )?
        .as_deref()
        {
            None | Some("exact") => false,
            Some("urlpattern") => true,
            Some(_) => {
                return Err(TokenError::Malformed(
                    "authorization_details match_type must be exact or urlpattern",
                ));
            }
        };
        Ok(DetailTopic {
            pattern,
            url_pattern,
        })
    }
}

impl Mercure {
    /// The claim from its object.
    fn read(mut mercure: Map<String, Value>) -> Result<Mercure, TokenError> {
        let mut list = |name: &str, wrong| -> Result<Vec<String>, TokenError> {
            Ok(take(&mut mercure, name, strings, wrong)?.unwrap_or_default())
        };
        let subscribe = list("subscribe", "mercure.subscribe must be an array of strings")?;
        let publish = list("publish", "mercure.publish must be an array of strings")?;
        Ok(Mercure {
            subscribe,
            publish,
            payload: payload(&mut mercure)?,
        })
    }
}

/// The `payload` member of `object`: any JSON, kept as compact text; `null` reads as
/// absent (Mercure leaves a `null` payload out of its documents too).
fn payload(object: &mut Map<String, Value>) -> Result<Option<Box<str>>, TokenError> {
    match object.remove("payload") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            let text = value.to_string();
            if text.len() > MAX_PAYLOAD_BYTES {
                return Err(TokenError::PayloadTooLong);
            }
            Ok(Some(text.into()))
        }
    }
}

/// Member `name` of `object` as read by `read` (`None` when absent), or `wrong` when it
/// is present but `read` does not take it.
fn take<T>(
    object: &mut Map<String, Value>,
    name: &str,
    read: fn(Value) -> Option<T>,
    wrong: &'static str,
) -> Result<Option<T>, TokenError> {
    match object.remove(name) {
        None => Ok(None),
        Some(value) => read(value).map(Some).ok_or(TokenError::Malformed(wrong)),
    }
}

/// A JSON string.
fn string(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// A NumericDate: any JSON number.
fn date(value: Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// A JSON array of strings.
fn strings(value: Value) -> Option<Vec<String>> {
    match value {
        Value::Array(items) => items.into_iter().map(string).collect(),
        _ => None,
    }
}

/// A JSON array.
fn array(value: Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

/// An audience: a string, or an array of strings.
fn audience(value: Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s]),
        other => strings(other),
    }
}

/// A JSON object.
fn object_value(value: Value) -> Option<Map<String, Value>> {
    match value {
        Value::Object(members) => Some(members),
        _ => None,
    }
}

/// `json` as an object: `not_json` when it is no JSON text (or repeats a name),
/// `not_object` when it is JSON of another type.
fn object(
    json: &[u8],
    not_json: &'static str,
    not_object: &'static str,
) -> Result<Map<String, Value>, TokenError> {
    match serde_json::from_slice::<Unique>(json) {
        Ok(Unique(Value::Object(members))) => Ok(members),
        Ok(Unique(_)) => Err(TokenError::Malformed(not_object)),
        Err(_) => Err(TokenError::Malformed(not_json)),
    }
}

/// A JSON value in which no object repeats a name, at any depth (`serde_json::Value`
/// keeps the last silently).
struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Unique, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

/// Builds a [`Unique`].
struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON without repeated names")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let Unique(value) = map.next_value()?;
            if members.insert(name, value).is_some() {
                return Err(de::Error::custom("a name given twice"));
            }
        }
        Ok(Value::Object(members))
    }
}
