//! Message framing (RFC 9112 §6, RFC 9110 §7.2, §10.1.1): how the body of a
//! parsed head is delimited, and whether the connection may be reused.
//!
//! Everything here is pure: it looks only at the head it is given.

use super::error::ParseError;
use super::head::Head;
use super::target::is_valid_host_port;

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: neither `Content-Length` nor `Transfer-Encoding` was sent.
    None,
    /// Exactly this many bytes follow the head (possibly 0), already checked
    /// against the body limit.
    Length(u64),
    /// A chunked body follows; decode it with
    /// [`ChunkedDecoder`](super::chunked::ChunkedDecoder).
    Chunked,
}

/// The framing and connection semantics of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// How the body is delimited.
    pub body: BodyKind,
    /// Whether the connection may be reused after this request's response.
    pub keep_alive: bool,
    /// Whether the client sent `Expect: 100-continue` on HTTP/1.1 and waits
    /// for a `100 Continue` before sending the body (ignored for HTTP/1.0,
    /// RFC 9110 §10.1.1).
    pub expect_continue: bool,
}

/// Splits a comma-separated list value into its elements with OWS trimmed,
/// skipping empty elements (RFC 9110 §5.6.1).
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parses `1*DIGIT` into a `u64`.
fn parse_content_length(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &d| {
        if d.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// Applies RFC 9112 §6 message framing and the connection rules to a parsed
/// head.
///
/// - HTTP/1.1 requires exactly one `Host`; HTTP/1.0 allows none. At most one
///   is ever accepted. Its value must be empty or `uri-host [":" port]`.
/// - `Content-Length` must be `1*DIGIT`; repeated fields and the list form
///   (`5, 5`) are accepted when all values are identical. A length above
///   `max_body` is refused up front.
/// - `Transfer-Encoding` (all fields combined, case-insensitive, empty list
///   elements ignored) must be exactly `chunked`: a list that does not end in
///   `chunked` (or is empty) cannot be framed (400), and codings before the
///   final `chunked` are not implemented (501).
/// - `keep_alive`: HTTP/1.1 unless `Connection` lists `close`; HTTP/1.0 only
///   if `Connection` lists `keep-alive` and not `close`.
/// - `Expect` may only list `100-continue` (case-insensitive).
///
/// # Errors
///
/// [`ParseError::MissingHost`], [`ParseError::DuplicateHost`],
/// [`ParseError::InvalidHost`], [`ParseError::InvalidContentLength`],
/// [`ParseError::ConflictingContentLength`],
/// [`ParseError::TransferEncodingInHttp10`],
/// [`ParseError::ContentLengthWithTransferEncoding`],
/// [`ParseError::TransferEncodingNotChunked`],
/// [`ParseError::UnsupportedTransferEncoding`],
/// [`ParseError::BodyTooLarge`] (with `limit: max_body`) and
/// [`ParseError::UnsupportedExpectation`], as described above.
pub fn framing(head: &Head<'_, '_>, max_body: usize) -> Result<Framing, ParseError> {
    let http11 = head.minor_version >= 1;

    // Host (RFC 9112 §3.2, RFC 9110 §7.2).
    let mut hosts = head.headers_named("host");
    match (hosts.next(), hosts.next()) {
        (None, _) if http11 => return Err(ParseError::MissingHost),
        (None, _) => {}
        (Some(_), Some(_)) => return Err(ParseError::DuplicateHost),
        (Some(host), None) => {
            if !host.is_empty() && !is_valid_host_port(host) {
                return Err(ParseError::InvalidHost);
            }
        }
    }

    // Content-Length (RFC 9112 §6.3 item 5, RFC 9110 §8.6).
    let mut content_length: Option<u64> = None;
    for value in head.headers_named("content-length") {
        for element in value.split(|&b| b == b',').map(trim_ows) {
            let n = parse_content_length(element).ok_or(ParseError::InvalidContentLength)?;
            match content_length {
                Some(previous) if previous != n => {
                    return Err(ParseError::ConflictingContentLength);
                }
                _ => content_length = Some(n),
            }
        }
    }

    // Transfer-Encoding (RFC 9112 §6.1, §6.3 items 3 and 4).
    let mut has_te = false;
    let mut codings = 0usize;
    let mut last_is_chunked = false;
    for value in head.headers_named("transfer-encoding") {
        has_te = true;
        for coding in list_elements(value) {
            codings += 1;
            last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
        }
    }
    let body = if has_te {
        if !http11 {
            return Err(ParseError::TransferEncodingInHttp10);
        }
        if content_length.is_some() {
            return Err(ParseError::ContentLengthWithTransferEncoding);
        }
        if !last_is_chunked {
            // No coding at all, or a final one other than chunked: the body has no end
            // we can find (RFC 9112 §6.3 item 4).
            return Err(ParseError::TransferEncodingNotChunked);
        }
        if codings != 1 {
            return Err(ParseError::UnsupportedTransferEncoding);
        }
        BodyKind::Chunked
    } else if let Some(n) = content_length {
        if n > u64::try_from(max_body).unwrap_or(u64::MAX) {
            return Err(ParseError::BodyTooLarge { limit: max_body });
        }
        BodyKind::Length(n)
    } else {
        BodyKind::None
    };

    // Connection (RFC 9112 §9.3).
    let mut close = false;
    let mut keep_alive_token = false;
    for option in head.headers_named("connection").flat_map(list_elements) {
        close |= option.eq_ignore_ascii_case(b"close");
        keep_alive_token |= option.eq_ignore_ascii_case(b"keep-alive");
    }
    let keep_alive = !close && (http11 || keep_alive_token);

    // Expect (RFC 9110 §10.1.1).
    let mut expect_continue = false;
    for expectation in head.headers_named("expect").flat_map(list_elements) {
        if expectation.eq_ignore_ascii_case(b"100-continue") {
            expect_continue = http11;
        } else {
            return Err(ParseError::UnsupportedExpectation);
        }
    }

    Ok(Framing {
        body,
        keep_alive,
        expect_continue,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{
        DEFAULT_MAX_HEAD_BYTES, DEFAULT_MAX_HEADERS, DEFAULT_MAX_REQUEST_LINE, EMPTY_HEADER, Head,
        HeadLimits, Header, Status, parse_head,
    };

    const LIMITS: HeadLimits = HeadLimits {
        max_request_line: DEFAULT_MAX_REQUEST_LINE,
        max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
        max_headers: DEFAULT_MAX_HEADERS,
    };

    fn complete<'b, 'h>(buf: &'b [u8], headers: &'h mut [Header<'b>]) -> Head<'b, 'h> {
        match parse_head(buf, headers, LIMITS) {
            Ok(Status::Complete(head)) => head,
            other => panic!("expected complete head, got {other:?}"),
        }
    }

    fn frame_of(buf: &[u8]) -> Result<Framing, ParseError> {
        let mut headers = [EMPTY_HEADER; DEFAULT_MAX_HEADERS];
        let head = complete(buf, &mut headers);
        framing(&head, 1024)
    }

    /// `frame!(name, bytes, expected_result)`: framing of a complete head
    /// with `max_body` 1024.
    macro_rules! frame {
        ($name:ident, $buf:expr, $expected:expr) => {
            #[test]
            fn $name() {
                assert_eq!(frame_of($buf), $expected);
            }
        };
    }

    fn ok(body: BodyKind, keep_alive: bool, expect_continue: bool) -> Result<Framing, ParseError> {
        Ok(Framing {
            body,
            keep_alive,
            expect_continue,
        })
    }

    const SIMPLE: &[u8] =
        b"GET /events?topic=a HTTP/1.1\r\nHost: example.com\r\nAccept: text/event-stream\r\n\r\n";

    frame!(frame_simple, SIMPLE, ok(BodyKind::None, true, false));
    frame!(
        frame_http10_default_close,
        b"GET / HTTP/1.0\r\n\r\n",
        ok(BodyKind::None, false, false)
    );
    frame!(
        frame_http10_keep_alive,
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        ok(BodyKind::None, true, false)
    );
    frame!(
        frame_http11_close,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, CLOSE\r\n\r\n",
        ok(BodyKind::None, false, false)
    );
    frame!(
        frame_content_length,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
        ok(BodyKind::Length(5), true, false)
    );
    frame!(
        frame_content_length_list,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
        ok(BodyKind::Length(5), true, false)
    );
    frame!(
        frame_content_length_dup,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        ok(BodyKind::Length(5), true, false)
    );
    frame!(
        frame_content_length_differing,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        Err(ParseError::ConflictingContentLength)
    );
    frame!(
        frame_content_length_list_differing,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
        Err(ParseError::ConflictingContentLength)
    );
    frame!(
        frame_content_length_sign,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        Err(ParseError::InvalidContentLength)
    );
    frame!(
        frame_content_length_inner_space,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
        Err(ParseError::InvalidContentLength)
    );
    frame!(
        frame_content_length_empty,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
        Err(ParseError::InvalidContentLength)
    );
    frame!(
        frame_content_length_overflow,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
        Err(ParseError::InvalidContentLength)
    );
    frame!(
        frame_content_length_too_large,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n",
        Err(ParseError::BodyTooLarge { limit: 1024 })
    );
    frame!(
        frame_chunked,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
        ok(BodyKind::Chunked, true, false)
    );
    frame!(
        frame_cl_and_te,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        Err(ParseError::ContentLengthWithTransferEncoding)
    );
    frame!(
        frame_te_gzip,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        Err(ParseError::TransferEncodingNotChunked)
    );
    frame!(
        frame_te_chunked_gzip,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        Err(ParseError::TransferEncodingNotChunked)
    );
    frame!(
        frame_te_identity,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
        Err(ParseError::TransferEncodingNotChunked)
    );
    frame!(
        frame_te_gzip_chunked,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        Err(ParseError::UnsupportedTransferEncoding)
    );
    frame!(frame_te_chunked_twice, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Err(ParseError::UnsupportedTransferEncoding));
    frame!(
        frame_te_empty,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n",
        Err(ParseError::TransferEncodingNotChunked)
    );
    frame!(
        frame_te_http10,
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        Err(ParseError::TransferEncodingInHttp10)
    );
    frame!(
        frame_missing_host,
        b"GET / HTTP/1.1\r\n\r\n",
        Err(ParseError::MissingHost)
    );
    frame!(
        frame_two_hosts,
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
        Err(ParseError::DuplicateHost)
    );
    frame!(
        frame_two_hosts_http10,
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        Err(ParseError::DuplicateHost)
    );
    frame!(
        frame_empty_host,
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        ok(BodyKind::None, true, false)
    );
    frame!(
        frame_host_port,
        b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        ok(BodyKind::None, true, false)
    );
    frame!(
        frame_invalid_host_space,
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        Err(ParseError::InvalidHost)
    );
    frame!(
        frame_invalid_host_slash,
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        Err(ParseError::InvalidHost)
    );
    frame!(
        frame_invalid_host_userinfo,
        b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
        Err(ParseError::InvalidHost)
    );
    frame!(
        frame_expect_continue,
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
        ok(BodyKind::Length(3), true, true)
    );
    frame!(
        frame_expect_continue_http10_ignored,
        b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
        ok(BodyKind::None, false, false)
    );
    frame!(
        frame_expect_foo,
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n",
        Err(ParseError::UnsupportedExpectation)
    );
}
