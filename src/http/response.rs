//! Bytes of responses: short responses with a body, and the SSE stream preamble. Every
//! head carries `Date` (RFC 9110 §6.6.1), except the interim [`CONTINUE`].

use std::fmt::Write as _;

use super::date;

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The interim response sent before reading a body the client holds back.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A short (non-streaming) response.
///
/// # Examples
///
/// ```
/// use ssehub::http::response::Response;
/// let date = "Sun, 06 Nov 1994 08:49:37 GMT";
/// let bytes = Response::text(404, "no route for /x").close().to_bytes_at(false, date);
/// assert_eq!(
///     String::from_utf8(bytes).unwrap(),
///     "HTTP/1.1 404 Not Found\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
///      Content-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\n\
///      Connection: close\r\n\r\nno route for /x\n"
/// );
/// // No content fields where there can be no content (RFC 9110 §8.6, §15.3.5, §15.4.5).
/// let bytes = Response::with_body(204, "text/plain", Vec::new()).to_bytes_at(false, date);
/// assert_eq!(
///     String::from_utf8(bytes).unwrap(),
///     "HTTP/1.1 204 No Content\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra header fields (name, value); values never hold CR or LF.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The content type of the body.
    pub content_type: &'static str,
    /// Close the connection after this response.
    pub close: bool,
}

impl Response {
    /// A one-line plain-text response (a newline is appended).
    pub fn text(status: u16, message: &str) -> Response {
        let mut body = Vec::with_capacity(message.len() + 1);
        body.extend_from_slice(message.as_bytes());
        body.push(b'\n');
        Response::with_body(status, "text/plain; charset=utf-8", body)
    }

    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        let mut body = value.to_string().into_bytes();
        body.push(b'\n');
        Response::with_body(status, "application/json", body)
    }

    /// A response with the given body and content type.
    pub fn with_body(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body,
            content_type,
            close: false,
        }
    }

    /// Adds a header field. CR and LF in `value` are replaced by spaces.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        let value: String = value
            .into()
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .collect();
        self.headers.push((name, value));
        self
    }

    /// Marks the response as the last on its connection.
    pub fn close(mut self) -> Response {
        self.close = true;
        self
    }

    /// The bytes on the wire, dated now; `head_only` for a `HEAD` request (same headers,
    /// no body).
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        self.to_bytes_at(head_only, &date::now())
    }

    /// The bytes on the wire with `date` (an IMF-fixdate) as the `Date` field.
    ///
    /// A 1xx, 204 or 304 has no content: it gets neither `Content-Type` nor
    /// `Content-Length` (RFC 9110 §8.6), and no body is written.
    pub fn to_bytes_at(&self, head_only: bool, date: &str) -> Vec<u8> {
        let mut head = String::with_capacity(160);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nDate: {date}\r\n",
            self.status,
            reason(self.status),
        );
        let no_content = matches!(self.status, 100..=199 | 204 | 304);
        if !no_content {
            let _ = write!(
                head,
                "Content-Type: {}\r\nContent-Length: {}\r\n",
                self.content_type,
                self.body.len()
            );
        }
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if self.close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !head_only && !no_content {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The `Cache-Control` of the stream (also sent with a `304` for it, RFC 9110 §15.4.5).
pub const STREAM_CACHE_CONTROL: &str = "no-cache, no-transform";

/// The head of an SSE response, dated now: `200`, `text/event-stream`, no caching, no
/// proxy buffering, no `Content-Length`: the body ends when the connection closes.
pub fn stream_head(extra: &[(&'static str, String)]) -> Vec<u8> {
    stream_head_at(extra, &date::now())
}

/// [`stream_head`] with `date` (an IMF-fixdate) as the `Date` field.
pub fn stream_head_at(extra: &[(&'static str, String)], date: &str) -> Vec<u8> {
    let mut head = String::with_capacity(192);
    let _ = write!(
        head,
        "HTTP/1.1 200 OK\r\n\
         Date: {date}\r\n\
         Content-Type: text/event-stream\r\n\
         Cache-Control: {STREAM_CACHE_CONTROL}\r\n\
         X-Accel-Buffering: no\r\n\
         Connection: close\r\n",
    );
    for (name, value) in extra {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_only_keeps_content_length_and_drops_body() {
        let r = Response::text(200, "ok");
        let s = String::from_utf8(r.to_bytes(true)).unwrap();
        assert!(s.contains("Content-Length: 3\r\n"));
        assert!(s.ends_with("\r\n\r\n"));
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let r = Response::text(200, "").header("X-A", "a\r\nSet-Cookie: x");
        let s = String::from_utf8(r.to_bytes(false)).unwrap();
        assert!(s.contains("X-A: a  Set-Cookie: x\r\n"));
    }

    #[test]
    fn stream_head_exact() {
        assert_eq!(
            stream_head_at(&[], "Sun, 06 Nov 1994 08:49:37 GMT"),
            b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
              Content-Type: text/event-stream\r\n\
              Cache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\n\
              Connection: close\r\n\r\n"
        );
    }

    #[test]
    fn now_is_dated_like_the_injected_date() {
        let s = String::from_utf8(Response::text(200, "ok").to_bytes(false)).unwrap();
        let date = s.lines().nth(1).unwrap().strip_prefix("Date: ").unwrap();
        assert_eq!((date.len(), &date[25..]), (29, " GMT"), "{s}");
        let s = String::from_utf8(stream_head(&[])).unwrap();
        assert!(s.lines().nth(1).unwrap().starts_with("Date: "), "{s}");
    }

    #[test]
    fn no_content_fields_without_content() {
        for status in [100, 204, 304] {
            let r = Response::text(status, "dropped");
            let s = String::from_utf8(r.to_bytes_at(false, "D")).unwrap();
            assert!(!s.contains("Content-"), "{s}");
            assert!(s.ends_with("\r\n\r\n"), "{s}");
        }
    }

    #[test]
    fn every_error_status_has_a_reason() {
        for s in crate::stats::COUNTED_STATUSES {
            assert_ne!(reason(s), "Unknown", "{s}");
        }
    }
}
