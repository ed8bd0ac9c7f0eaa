//! One request as the routes see it: its method, path, query and the header fields they
//! read, copied out of the read buffer once the head is parsed. Every route file imports
//! it from here, and nothing else from the connection that read it.

use crate::config::Limits;
use crate::http::ParseError;
use crate::http::framing::{Framing, framing};
use crate::http::head::HeadParser;
use crate::http::target::{Scheme, Target, is_authority_form, parse_target, query_pairs};

/// A parsed request: what the routes use of it, copied out of the read buffer (the
/// buffer is read into again for the body while the request is in use).
#[derive(Debug)]
pub(super) struct Request {
    pub(super) method: String,
    pub(super) path: String,
    query: Option<String>,
    pub(super) framing: Framing,
    /// `Origin` (CORS).
    pub(super) origin: Option<String>,
    /// `Authorization` (publishing; a subscriber's token).
    pub(super) authorization: Option<String>,
    /// `Cookie` (a subscriber's token).
    pub(super) cookie: Option<String>,
    /// `Content-Type` (publishing).
    pub(super) content_type: Option<String>,
    /// `Last-Event-ID` (resuming a stream).
    pub(super) last_event_id: Option<String>,
    /// `If-Match`, every field line joined with `, ` (preconditions).
    pub(super) if_match: Option<String>,
    /// `If-None-Match`, every field line joined with `, ` (preconditions).
    pub(super) if_none_match: Option<String>,
    /// `Idempotency-Key` (publishing: a retry is answered, not published again).
    pub(super) idempotency_key: Option<String>,
}

impl Request {
    /// The query's pairs, decoded.
    pub(super) fn params(
        &self,
    ) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
        query_pairs(self.query.as_deref().unwrap_or(""))
    }

    /// The first query parameter named `name`, decoded.
    pub(super) fn param(&self, name: &str) -> Option<String> {
        self.params()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Whether this is a `HEAD` request (answered without a body).
    pub(super) fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Takes the head `parser` found at the start of `buf`: checks its framing and target,
/// copies what the routes use, removes it from `buf` and resets `parser` for the next.
pub(super) fn take_request(
    buf: &mut Vec<u8>,
    parser: &mut HeadParser,
    limits: &Limits,
) -> Result<Request, ParseError> {
    // Not reached: read_head returned once `parser` had the complete head.
    let head = parser.head(buf).ok_or(ParseError::HeadTooLarge {
        limit: limits.head.max_head_bytes,
    })?;
    let framing = framing(&head, limits.max_body)?;
    let target = if head.method == "CONNECT" && is_authority_form(head.target) {
        // Well-formed for CONNECT (RFC 9112 §3.2.3); the router answers 501.
        Target {
            path: head.target,
            query: None,
            asterisk: false,
            scheme: None,
        }
    } else {
        parse_target(head.target)?
    };
    if target.asterisk && head.method != "OPTIONS" {
        return Err(ParseError::InvalidTarget);
    }
    if target.scheme == Some(Scheme::Https) {
        // This socket is cleartext: an https resource is not served here (RFC 9110 §7.4).
        return Err(ParseError::HttpsOverCleartext);
    }
    let field = |name: &str| {
        head.header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let list_field = |name: &str| {
        let lines: Vec<_> = head
            .headers_named(name)
            .map(String::from_utf8_lossy)
            .collect();
        (!lines.is_empty()).then(|| lines.join(", "))
    };
    let req = Request {
        method: head.method.to_owned(),
        path: if target.asterisk {
            "*".to_owned()
        } else {
            target.path.to_owned()
        },
        query: target.query.map(str::to_owned),
        framing,
        origin: field("Origin"),
        authorization: field("Authorization"),
        cookie: field("Cookie"),
        content_type: field("Content-Type"),
        last_event_id: field("Last-Event-ID"),
        if_match: list_field("If-Match"),
        if_none_match: list_field("If-None-Match"),
        idempotency_key: field("Idempotency-Key"),
    };
    let len = head.len;
    buf.drain(..len);
    parser.reset();
    Ok(req)
}
