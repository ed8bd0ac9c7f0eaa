//! What a Mercure request says, read from its query or form pairs: a subscriber's
//! selectors and resume id, a publisher's update. Strings in, typed values out; the
//! routes (`server/mercure.rs`) turn them into topics, envelopes and events.

use std::fmt;

use super::selector::{Pattern, PatternError, Syntax};

/// Most selectors one subscriber may send. **Why:** as for `/stream`, each is matched
/// against every event's topics.
pub const MAX_SELECTORS: usize = 64;

/// The query parameters a resume id is read from when the `Last-Event-ID` header is
/// absent, in this order (Mercure 0.x's, Mercure 1.0's, and the header's own name).
pub const LAST_EVENT_ID_PARAMS: [&str; 3] = ["lastEventID", "last_event_id", "Last-Event-ID"];

/// The resume id that asks for every retained event.
pub const EARLIEST: &str = "earliest";

/// One subscriber selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A bare `*`: every topic.
    All,
    /// This topic only.
    Exact(String),
    /// The topics this pattern matches.
    Pattern(Pattern),
}

/// A subscribe request: its selectors (at least one) and the id it resumes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The selectors, in the order sent.
    pub selectors: Vec<Selector>,
    /// The resume id (header first, then the query); [`EARLIEST`] for every retained
    /// event.
    pub last_event_id: Option<String>,
}

/// Why a request was refused (a `400`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QueryError {}

impl From<PatternError> for QueryError {
    fn from(e: PatternError) -> QueryError {
        QueryError(e.0)
    }
}

/// Reads a subscribe request's query `pairs`; `header` is its `Last-Event-ID` field.
///
/// `topic` (0.x) is an exact name, `*`, or a URI template (when it holds `{`); `match`
/// and `match_exact` are exact names or `*`; `match_urlpattern` is a URL pattern,
/// `match_uritemplate` a URI template. Matcher names after `match_` are
/// case-insensitive; any other parameter starting with `match` is refused.
///
/// # Errors
///
/// [`QueryError`]: no selector, too many, an unknown matcher, a pattern not supported.
///
/// # Examples
///
/// ```
/// use ssehub::mercure::query::{subscribe, Selector};
/// let s = subscribe([("topic", "a"), ("lastEventID", "7")].into_iter(), None).unwrap();
/// assert_eq!(s.selectors, [Selector::Exact("a".into())]);
/// assert_eq!(s.last_event_id.as_deref(), Some("7"));
/// assert!(subscribe([("match_regexp", "a")].into_iter(), None).is_err());
/// ```
pub fn subscribe<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
    header: Option<&str>,
) -> Result<Subscribe, QueryError> {
    let mut selectors = Vec::new();
    let mut from_query: Option<(usize, &str)> = None;
    for (name, value) in pairs {
        if let Some(rank) = LAST_EVENT_ID_PARAMS.iter().position(|p| *p == name) {
            if from_query.is_none_or(|(r, _)| rank < r) {
                from_query = Some((rank, value));
            }
            continue;
        }
        let Some(selector) = selector(name, value)? else {
            continue;
        };
        if selectors.len() == MAX_SELECTORS {
            return Err(QueryError(format!(
                "at most {MAX_SELECTORS} topic selectors per subscription"
            )));
        }
        selectors.push(selector);
    }
    if selectors.is_empty() {
        return Err(QueryError(
            "missing topic selector: send topic= (0.x) or match= (1.0)".into(),
        ));
    }
    let last_event_id = header
        .or(from_query.map(|(_, v)| v))
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    Ok(Subscribe {
        selectors,
        last_event_id,
    })
}

/// The selector a query pair carries (`None`: the pair is not a selector).
fn selector(name: &str, value: &str) -> Result<Option<Selector>, QueryError> {
    let syntax = if name == "topic" {
        value.contains('{').then_some(Syntax::UriTemplate)
    } else if name.len() >= 5 && name[..5].eq_ignore_ascii_case("match") {
        match name[5..].to_ascii_lowercase().as_str() {
            "" | "_exact" => None,
            "_urlpattern" => Some(Syntax::UrlPattern),
            "_uritemplate" => Some(Syntax::UriTemplate),
            _ => {
                return Err(QueryError(format!(
                    "unknown topic matcher {name:?}: use match, match_exact or match_urlpattern"
                )));
            }
        }
    } else {
        return Ok(None);
    };
    if value.is_empty() {
        return Err(QueryError(format!("empty topic selector in {name}=")));
    }
    Ok(Some(match syntax {
        _ if value == "*" => Selector::All,
        None => Selector::Exact(value.to_owned()),
        Some(syntax) => Selector::Pattern(Pattern::new(value, syntax)?),
    }))
}

/// A form publish: `topic` (one or more, the first canonical), `data`, `private`
/// (present: private, whatever its value), `id`, `type`, `retry` (digits only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// The topics, the first canonical.
    pub topics: Vec<String>,
    /// The data (empty when absent).
    pub data: String,
    /// Whether it is private.
    pub private: bool,
    /// The publisher's id.
    pub id: Option<String>,
    /// The SSE event name.
    pub event_type: Option<String>,
    /// The SSE `retry:`. **Unit:** ms.
    pub retry: Option<u32>,
}

/// Reads a form publish's `pairs` (the first of a repeated field other than `topic`
/// counts; unknown fields are ignored, as Mercure does).
///
/// # Errors
///
/// [`QueryError`]: no topic, a `retry` that is not digits.
///
/// # Examples
///
/// ```
/// use ssehub::mercure::query::update;
/// let u = update([("topic", "a"), ("topic", "b"), ("data", "x"), ("private", "")].into_iter()).unwrap();
/// assert_eq!(u.topics, ["a", "b"]);
/// assert!(u.private);
/// assert!(update([("topic", "a"), ("retry", "-1")].into_iter()).is_err());
/// ```
pub fn update<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Result<Update, QueryError> {
    let mut u = Update::default();
    let mut data = None;
    for (name, value) in pairs {
        match name {
            "topic" => u.topics.push(value.to_owned()),
            "data" if data.is_none() => data = Some(value.to_owned()),
            "private" => u.private = true,
            "id" if u.id.is_none() => u.id = Some(value.to_owned()),
            "type" if u.event_type.is_none() => u.event_type = Some(value.to_owned()),
            "retry" if u.retry.is_none() => {
                let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                u.retry = Some(value.parse().ok().filter(|_| ok).ok_or_else(|| {
                    QueryError(format!(
                        "retry must be digits (milliseconds), got {value:?}"
                    ))
                })?);
            }
            _ => {}
        }
    }
    if u.topics.is_empty() {
        return Err(QueryError("missing topic".into()));
    }
    u.data = data.unwrap_or_default();
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(pairs: &[(&str, &str)], header: Option<&str>) -> Result<Subscribe, QueryError> {
        subscribe(pairs.iter().copied(), header)
    }

    #[test]
    fn selectors_of_both_versions() {
        let s = sub(
            &[
                ("topic", "a"),
                ("topic", "*"),
                ("topic", "https://e.com/{id}"),
                ("match", "b"),
                ("match_exact", "c"),
                ("MATCH_URLPattern", "https://e.com/:id"),
                ("match_uritemplate", "https://e.com/{+p}"),
                ("other", "x"),
            ],
            None,
        )
        .unwrap();
        let kinds: Vec<String> = s
            .selectors
            .iter()
            .map(|s| match s {
                Selector::All => "*".into(),
                Selector::Exact(e) => format!("={e}"),
                Selector::Pattern(p) => format!("{:?}", p.syntax()),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "=a",
                "*",
                "UriTemplate",
                "=b",
                "=c",
                "UrlPattern",
                "UriTemplate"
            ]
        );
    }

    #[test]
    fn refusals() {
        for pairs in [
            &[][..],
            &[("lastEventID", "1")],
            &[("match_regexp", "a")],
            &[("matchx", "a")],
            &[("topic", "")],
            &[("topic", "a{?q}")],
            &[("match_urlpattern", "/a/(\\d+)")],
        ] {
            assert!(sub(pairs, None).is_err(), "{pairs:?}");
        }
        let many: Vec<(&str, &str)> = (0..=MAX_SELECTORS).map(|_| ("topic", "a")).collect();
        assert!(sub(&many, None).is_err());
    }

    #[test]
    fn the_resume_id_header_first_then_the_query_names_in_order() {
        let q = |pairs: &[(&str, &str)], h| sub(pairs, h).unwrap().last_event_id;
        let t = ("topic", "a");
        assert_eq!(q(&[t], None), None);
        assert_eq!(
            q(&[t, ("Last-Event-ID", "3"), ("lastEventID", "1")], None).as_deref(),
            Some("1")
        );
        assert_eq!(
            q(&[t, ("last_event_id", "2"), ("Last-Event-ID", "3")], None).as_deref(),
            Some("2")
        );
        assert_eq!(
            q(&[t, ("lastEventID", "1")], Some("h")).as_deref(),
            Some("h")
        );
        assert_eq!(
            q(&[t, ("lastEventID", "earliest")], None).as_deref(),
            Some(EARLIEST)
        );
        assert_eq!(q(&[t, ("lastEventID", "")], None), None);
    }

    #[test]
    fn updates() {
        let u = update(
            [
                ("topic", "a"),
                ("topic", "b"),
                ("data", "x\ny"),
                ("data", "ignored"),
                ("private", "off"),
                ("id", "i"),
                ("type", "t"),
                ("retry", "10"),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(
            u,
            Update {
                topics: vec!["a".into(), "b".into()],
                data: "x\ny".into(),
                private: true,
                id: Some("i".into()),
                event_type: Some("t".into()),
                retry: Some(10),
            }
        );
        for bad in ["", "1.5", "+1", "99999999999"] {
            assert!(
                update([("topic", "a"), ("retry", bad)].into_iter()).is_err(),
                "{bad}"
            );
        }
        assert!(update([("data", "a")].into_iter()).is_err());
    }
}
