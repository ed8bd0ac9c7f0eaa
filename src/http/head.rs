//! The request head: a push-style HTTP/1.1 request-head parser (RFC 9112 §2–§5).
//!
//! Everything here is pure: it looks only at the bytes it is given, never
//! performs I/O, never panics on input and runs in time linear in its input.

use super::error::ParseError;

/// Default limit on the request line, in bytes, excluding its CRLF.
///
/// Unit: bytes. 8 KiB is the minimum RFC 9112 §3 recommends supporting and
/// far more than any target this server routes needs.
pub const DEFAULT_MAX_REQUEST_LINE: usize = 8 * 1024;

/// Default limit on the whole request head, in bytes, counting leading empty
/// lines, the request line, all header lines and the final empty line.
///
/// Unit: bytes. 8 KiB bounds the memory a connection can pin before its
/// request is understood; SSE subscriptions carry few, short headers.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 8 * 1024;

/// Default number of header fields accepted; callers pass a header slice of
/// this length to [`parse_head`].
///
/// Unit: header fields (lines). 32 is ample for browsers and proxies.
pub const DEFAULT_MAX_HEADERS: usize = 32;

/// Outcome of a push parse that succeeded so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The input held a complete item.
    Complete(T),
    /// The input is a valid prefix; call again with more bytes.
    Partial,
}

impl<T> Status<T> {
    /// Whether this is [`Status::Partial`].
    #[must_use]
    pub fn is_partial(&self) -> bool {
        matches!(self, Self::Partial)
    }
}

/// One header field as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header<'b> {
    /// The field name, a validated token in its original case.
    pub name: &'b str,
    /// The field value with optional whitespace (SP / HTAB) trimmed on both
    /// sides. May contain obs-text (0x80..=0xFF), so it is bytes.
    pub value: &'b [u8],
}

/// An empty header, for initialising the slice passed to [`parse_head`].
pub const EMPTY_HEADER: Header<'static> = Header {
    name: "",
    value: b"",
};

/// A parsed request head borrowing from the input buffer (`'b`) and from the
/// caller's header slice (`'h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head<'b, 'h> {
    /// The method, a validated token, case-sensitive as sent.
    pub method: &'b str,
    /// The raw request-target as sent (visible ASCII only, non-empty); see
    /// [`parse_target`](super::target::parse_target).
    pub target: &'b str,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The header fields in the order sent.
    pub headers: &'h [Header<'b>],
    /// Bytes consumed, including leading empty lines and the final CRLF CRLF;
    /// any body starts at this offset.
    pub len: usize,
}

impl<'b> Head<'b, '_> {
    /// Returns the value of the first header named `name` (ASCII
    /// case-insensitive), if any.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers_named(name).next()
    }

    /// Iterates the values of all headers named `name` (ASCII
    /// case-insensitive), in the order sent.
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Limits the parser enforces on the bytes it is given.
///
/// The caller enforces time limits and must stop reading once it buffers
/// more than `max_head_bytes` without a complete head (the parser then
/// reports [`ParseError::HeadTooLarge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Longest request line accepted, in bytes, excluding its CRLF.
    pub max_request_line: usize,
    /// Longest head accepted, in bytes, including leading empty lines and
    /// the final CRLF CRLF.
    pub max_head_bytes: usize,
}

impl Default for HeadLimits {
    /// [`DEFAULT_MAX_REQUEST_LINE`] and [`DEFAULT_MAX_HEAD_BYTES`].
    fn default() -> Self {
        Self {
            max_request_line: DEFAULT_MAX_REQUEST_LINE,
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
        }
    }
}

/// Parses a request head from the start of `buf`.
///
/// Empty lines (CRLF) before the request line are skipped (RFC 9112 §2.2)
/// but count toward `max_head_bytes` and [`Head::len`]. Every line must end
/// in CRLF: unlike what RFC 9112 §2.2 permits, a bare LF is refused
/// ([`ParseError::InvalidLineEnding`]) so this parser can never disagree
/// with another one about where the head ends (request smuggling).
///
/// Returns [`Status::Partial`] if `buf` is a valid, within-limits prefix of
/// a head; call again with the same bytes plus more. Errors in bytes already
/// present, and exceeded limits, are reported immediately, even while the
/// head is incomplete, so a client cannot make the caller wait for more.
/// Bytes after the head (a body or a pipelined request) are not examined.
///
/// # Errors
///
/// - [`ParseError::RequestLineTooLong`] once the request line (complete or
///   so far) exceeds `limits.max_request_line`;
/// - [`ParseError::HeadTooLarge`] if the complete head, or `buf` while no
///   complete head is present, exceeds `limits.max_head_bytes`;
/// - [`ParseError::TooManyHeaders`] (with `limit: headers.len()`) once a
///   header field beyond the slice's length starts;
/// - [`ParseError::InvalidMethod`], [`ParseError::InvalidTarget`],
///   [`ParseError::InvalidVersion`], [`ParseError::InvalidRequestLine`] for a
///   malformed request line, [`ParseError::UnsupportedVersion`] for a
///   well-formed version other than 1.0 / 1.1;
/// - [`ParseError::InvalidHeaderName`], [`ParseError::InvalidHeaderValue`],
///   [`ParseError::ObsFold`] for malformed header lines, and
///   [`ParseError::InvalidLineEnding`] for any line not ending in CRLF.
pub fn parse_head<'b, 'h>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    limits: HeadLimits,
) -> Result<Status<Head<'b, 'h>>, ParseError> {
    // Leading empty lines.
    let mut pos = 0;
    loop {
        match (buf.get(pos), buf.get(pos + 1)) {
            (Some(b'\r'), Some(b'\n')) => pos += 2,
            (None, _) | (Some(b'\r'), None) => return partial(buf, limits),
            (Some(b'\r' | b'\n'), _) => return Err(ParseError::InvalidLineEnding),
            _ => break,
        }
    }

    let line_start = pos;
    let Some(line) = request_line(buf, line_start)? else {
        let mut so_far = buf.len().saturating_sub(line_start);
        if buf.last() == Some(&b'\r') {
            so_far = so_far.saturating_sub(1);
        }
        if so_far > limits.max_request_line {
            return Err(ParseError::RequestLineTooLong {
                limit: limits.max_request_line,
            });
        }
        return partial(buf, limits);
    };
    if line.content_len > limits.max_request_line {
        return Err(ParseError::RequestLineTooLong {
            limit: limits.max_request_line,
        });
    }
    pos = line.next;

    let max_headers = headers.len();
    let mut count = 0;
    let len = loop {
        if count == max_headers && buf.get(pos).copied().is_some_and(is_tchar) {
            return Err(ParseError::TooManyHeaders { limit: max_headers });
        }
        match header_line(buf, pos)? {
            None => return partial(buf, limits),
            Some(HeaderLine::End { next }) => break next,
            Some(HeaderLine::Field { header, next }) => {
                let slot = headers
                    .get_mut(count)
                    .ok_or(ParseError::TooManyHeaders { limit: max_headers })?;
                *slot = header;
                count += 1;
                pos = next;
            }
        }
    };
    if len > limits.max_head_bytes {
        return Err(ParseError::HeadTooLarge {
            limit: limits.max_head_bytes,
        });
    }
    let headers: &'h [Header<'b>] = headers;
    Ok(Status::Complete(Head {
        method: line.method,
        target: line.target,
        minor_version: line.minor_version,
        headers: headers.get(..count).unwrap_or_default(),
        len,
    }))
}

/// The head is incomplete: report `Partial` unless the buffered bytes
/// already exceed the head limit.
fn partial<T>(buf: &[u8], limits: HeadLimits) -> Result<Status<T>, ParseError> {
    if buf.len() > limits.max_head_bytes {
        Err(ParseError::HeadTooLarge {
            limit: limits.max_head_bytes,
        })
    } else {
        Ok(Status::Partial)
    }
}

/// `tchar` (RFC 9110 §5.6.2).
pub(super) fn is_tchar(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'#'
            | b'$'
            | b'%'
            | b'&'
            | b'\''
            | b'*'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~'
    ) || b.is_ascii_alphanumeric()
}

/// A byte allowed inside a field value besides SP / HTAB: VCHAR or obs-text.
pub(super) fn is_field_vchar(b: u8) -> bool {
    matches!(b, 0x21..=0x7E | 0x80..=0xFF)
}

fn slice(buf: &[u8], start: usize, end: usize) -> &[u8] {
    buf.get(start..end).unwrap_or_default()
}

fn ascii_str(bytes: &[u8], err: ParseError) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|_| err)
}

struct RequestLine<'b> {
    method: &'b str,
    target: &'b str,
    minor_version: u8,
    /// Length of the line excluding CRLF.
    content_len: usize,
    /// Offset just past the CRLF.
    next: usize,
}

/// Parses the request line starting at `start`; `Ok(None)` means the bytes
/// so far are a valid prefix.
fn request_line(buf: &[u8], start: usize) -> Result<Option<RequestLine<'_>>, ParseError> {
    // method SP
    let mut i = start;
    loop {
        match buf.get(i) {
            None => return Ok(None),
            Some(b' ') => break,
            Some(&b) if is_tchar(b) => i += 1,
            Some(b'\r' | b'\n') => return Err(ParseError::InvalidRequestLine),
            Some(_) => return Err(ParseError::InvalidMethod),
        }
    }
    if i == start {
        return Err(ParseError::InvalidRequestLine);
    }
    let method = ascii_str(slice(buf, start, i), ParseError::InvalidMethod)?;

    // request-target SP
    let target_start = i + 1;
    i = target_start;
    loop {
        match buf.get(i) {
            None => return Ok(None),
            Some(b' ') => break,
            Some(0x21..=0x7E) => i += 1,
            Some(b'\r' | b'\n') => return Err(ParseError::InvalidRequestLine),
            Some(_) => return Err(ParseError::InvalidTarget),
        }
    }
    if i == target_start {
        return Err(ParseError::InvalidRequestLine);
    }
    let target = ascii_str(slice(buf, target_start, i), ParseError::InvalidTarget)?;

    // HTTP-version CRLF
    let version_start = i + 1;
    i = version_start;
    loop {
        let k = i - version_start;
        match buf.get(i) {
            None => return Ok(None),
            Some(b'\r' | b'\n') => break,
            Some(b' ') => return Err(ParseError::InvalidRequestLine),
            Some(&b) => {
                let ok = match k {
                    0..=4 => b"HTTP/".get(k) == Some(&b),
                    5 | 7 => b.is_ascii_digit(),
                    6 => b == b'.',
                    _ => false,
                };
                if !ok {
                    return Err(ParseError::InvalidVersion);
                }
                i += 1;
            }
        }
    }
    match i - version_start {
        0 => return Err(ParseError::InvalidRequestLine),
        8 => {}
        _ => return Err(ParseError::InvalidVersion),
    }
    match (buf.get(i), buf.get(i + 1)) {
        (Some(b'\r'), Some(b'\n')) => {}
        (Some(b'\r'), None) => return Ok(None),
        _ => return Err(ParseError::InvalidLineEnding),
    }
    let minor_version = match (buf.get(version_start + 5), buf.get(version_start + 7)) {
        (Some(b'1'), Some(b'0')) => 0,
        (Some(b'1'), Some(b'1')) => 1,
        _ => return Err(ParseError::UnsupportedVersion),
    };
    Ok(Some(RequestLine {
        method,
        target,
        minor_version,
        content_len: i - start,
        next: i + 2,
    }))
}

enum HeaderLine<'b> {
    /// The empty line ending the head; `next` is just past it.
    End { next: usize },
    /// A field line; `next` is just past its CRLF.
    Field { header: Header<'b>, next: usize },
}

/// Parses one header line (or the final empty line) starting at `start`;
/// `Ok(None)` means the bytes so far are a valid prefix.
fn header_line(buf: &[u8], start: usize) -> Result<Option<HeaderLine<'_>>, ParseError> {
    match buf.get(start) {
        None => return Ok(None),
        Some(b'\r') => {
            return match buf.get(start + 1) {
                None => Ok(None),
                Some(b'\n') => Ok(Some(HeaderLine::End { next: start + 2 })),
                Some(_) => Err(ParseError::InvalidLineEnding),
            };
        }
        Some(b'\n') => return Err(ParseError::InvalidLineEnding),
        Some(b' ' | b'\t') => return Err(ParseError::ObsFold),
        Some(_) => {}
    }

    let mut i = start;
    loop {
        match buf.get(i) {
            None => return Ok(None),
            Some(b':') => break,
            Some(&b) if is_tchar(b) => i += 1,
            Some(_) => return Err(ParseError::InvalidHeaderName),
        }
    }
    if i == start {
        return Err(ParseError::InvalidHeaderName);
    }
    let name = ascii_str(slice(buf, start, i), ParseError::InvalidHeaderName)?;

    i += 1;
    let mut value_start = None;
    let mut value_end = i;
    let next = loop {
        match buf.get(i) {
            None => return Ok(None),
            Some(b'\r') => match buf.get(i + 1) {
                None => return Ok(None),
                Some(b'\n') => break i + 2,
                Some(_) => return Err(ParseError::InvalidHeaderValue),
            },
            Some(b'\n') => return Err(ParseError::InvalidLineEnding),
            Some(b' ' | b'\t') => i += 1,
            Some(&b) if is_field_vchar(b) => {
                if value_start.is_none() {
                    value_start = Some(i);
                }
                i += 1;
                value_end = i;
            }
            Some(_) => return Err(ParseError::InvalidHeaderValue),
        }
    };
    let value = match value_start {
        Some(s) => slice(buf, s, value_end),
        None => b"",
    };
    Ok(Some(HeaderLine::Field {
        header: Header { name, value },
        next,
    }))
}

#[cfg(test)]
mod tests;
