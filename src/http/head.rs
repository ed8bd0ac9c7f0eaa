//! The request head: a resumable, push-style HTTP/1.1 request-head parser
//! (RFC 9112 §2–§5).
//!
//! [`HeadParser`] keeps the scan of one head across reads: every byte is
//! examined once, when it arrives, and validated lines are never looked at
//! again. It records where the request line and each header field lie in the
//! buffer (offsets, in one reusable index), and once the head is complete it
//! lends it as a [`Head`] of slices of that buffer. [`parse_head`] is the same
//! parser run on one buffer at once.
//!
//! Everything here is pure: it looks only at the bytes it is given, never
//! performs I/O, never panics on input and runs in time linear in its input.

use std::fmt;

use super::error::ParseError;

/// Default limit on the request line ([`HeadLimits::max_request_line`]).
///
/// **Default:** 8 KiB. **Unit:** bytes, excluding the line's CRLF. **Why:**
/// 8 KiB is the minimum RFC 9112 §3 recommends supporting and far more than
/// any target this server routes needs.
pub const DEFAULT_MAX_REQUEST_LINE: usize = 8 * 1024;

/// Default limit on the whole request head ([`HeadLimits::max_head_bytes`]).
///
/// **Default:** 8 KiB. **Unit:** bytes, counting leading empty lines, the
/// request line, all header lines and the final empty line. **Why:** it bounds
/// the memory a connection can pin before its request is understood; SSE
/// subscriptions carry few, short headers.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 8 * 1024;

/// Default limit on the number of header fields ([`HeadLimits::max_headers`]).
///
/// **Default:** 32. **Unit:** header fields (lines). **Why:** ample for
/// browsers and proxies, and it sizes the header index each connection keeps.
pub const DEFAULT_MAX_HEADERS: usize = 32;

/// Header fields a [`HeadParser`]'s index first has room for; it grows for a longer
/// head. **Unit:** header fields. **Why:** the index lives through every connection's
/// request phase, and most requests are short (curl sends 3 fields); half of the
/// default limit of 32 is 512 bytes less per connection, and a longer head grows it.
const INITIAL_FIELDS: usize = 16;

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
/// header storage (`'h`): a [`HeadParser`]'s index, or the slice given to
/// [`parse_head`].
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
    pub headers: Headers<'b, 'h>,
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
        self.headers.named(name)
    }
}

/// The header fields of a [`Head`], in the order sent: a view of the buffer
/// through the parser's index (or of the slice given to [`parse_head`]).
///
/// Two views are equal when they hold the same fields.
#[derive(Clone, Copy)]
pub struct Headers<'b, 'h> {
    fields: Fields<'b, 'h>,
}

#[derive(Debug, Clone, Copy)]
enum Fields<'b, 'h> {
    /// Offsets into `buf`, recorded by a [`HeadParser`].
    Index {
        buf: &'b [u8],
        spans: &'h [FieldSpan],
    },
    /// Fields already sliced, by [`parse_head`].
    Sliced(&'h [Header<'b>]),
}

impl<'b, 'h> Headers<'b, 'h> {
    /// The number of header fields.
    #[must_use]
    pub fn len(&self) -> usize {
        match self.fields {
            Fields::Index { spans, .. } => spans.len(),
            Fields::Sliced(headers) => headers.len(),
        }
    }

    /// Whether there is no header field.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th header field (from 0), if there are that many.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<Header<'b>> {
        let (name, value) = self.raw(i)?;
        // The name was validated as a token: ASCII, so this cannot fail.
        let name = std::str::from_utf8(name).unwrap_or_default();
        Some(Header { name, value })
    }

    /// Iterates the header fields in the order sent.
    #[must_use]
    pub fn iter(&self) -> HeadersIter<'b, 'h> {
        HeadersIter {
            headers: *self,
            next: 0,
        }
    }

    /// Iterates the values of all headers named `name` (ASCII
    /// case-insensitive), in the order sent.
    pub fn named<'s>(&self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + use<'b, 'h, 's> {
        let headers = *self;
        (0..headers.len())
            .filter_map(move |i| headers.raw(i))
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| value)
    }

    /// The name and value bytes of the `i`-th field.
    fn raw(&self, i: usize) -> Option<(&'b [u8], &'b [u8])> {
        match self.fields {
            Fields::Index { buf, spans } => {
                let span = spans.get(i)?;
                Some((
                    slice(buf, span.start, span.colon),
                    slice(buf, span.value_start, span.value_end),
                ))
            }
            Fields::Sliced(headers) => headers.get(i).map(|h| (h.name.as_bytes(), h.value)),
        }
    }
}

impl fmt::Debug for Headers<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Headers<'_, '_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers<'_, '_> {}

impl<'b, 'h> IntoIterator for Headers<'b, 'h> {
    type Item = Header<'b>;
    type IntoIter = HeadersIter<'b, 'h>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over the fields of [`Headers`].
#[derive(Debug, Clone)]
pub struct HeadersIter<'b, 'h> {
    headers: Headers<'b, 'h>,
    next: usize,
}

impl<'b> Iterator for HeadersIter<'b, '_> {
    type Item = Header<'b>;

    fn next(&mut self) -> Option<Header<'b>> {
        let header = self.headers.get(self.next)?;
        self.next += 1;
        Some(header)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.headers.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for HeadersIter<'_, '_> {}

/// The HTTP limits on a request head: the one place they live.
///
/// The parser enforces them on the bytes it is given. The caller enforces
/// time limits and must stop reading once it buffers more than
/// `max_head_bytes` without a complete head (the parser then reports
/// [`ParseError::HeadTooLarge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Longest request line accepted, in bytes, excluding its CRLF.
    pub max_request_line: usize,
    /// Longest head accepted, in bytes, including leading empty lines and
    /// the final CRLF CRLF.
    pub max_head_bytes: usize,
    /// Most header fields accepted; a [`HeadParser`]'s index holds at most this many.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    /// [`DEFAULT_MAX_REQUEST_LINE`], [`DEFAULT_MAX_HEAD_BYTES`] and
    /// [`DEFAULT_MAX_HEADERS`].
    fn default() -> Self {
        Self {
            max_request_line: DEFAULT_MAX_REQUEST_LINE,
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }
}

/// Where one header field lies in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldSpan {
    /// Start of the line, which is the start of the name.
    start: usize,
    /// Offset of the colon ending the name.
    colon: usize,
    /// The value, optional whitespace excluded (empty when `value_start == value_end`).
    value_start: usize,
    value_end: usize,
}

/// Where the scan of a head stands: the kind of the next byte expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line before the request line (leading empty lines).
    Leading,
    /// CR of a leading empty line seen; LF expected.
    LeadingCr,
    /// In the method.
    Method,
    /// In the request-target.
    Target,
    /// In the HTTP-version.
    Version,
    /// CR after the version seen; LF expected.
    VersionCr,
    /// At the start of a header line or of the final empty line.
    LineStart,
    /// In a header name.
    Name,
    /// In a header value.
    Value,
    /// CR after a header value seen; LF expected.
    ValueCr,
    /// CR of the final empty line seen; LF expected.
    EndCr,
    /// The head is complete; it is `len` bytes long.
    Done,
    /// The head is invalid or over a limit.
    Failed(ParseError),
}

/// The resumable scan of one request head: the state a connection keeps
/// across reads while the head arrives.
///
/// Call [`parse`](Self::parse) with the buffer after every read; the buffer
/// must keep the bytes already given (it may only grow at the end). Each call
/// examines only the bytes that arrived since the previous one, each once: a
/// line is validated byte by byte as it arrives, complete when its CRLF does,
/// and never looked at again. So every error and every exceeded limit is
/// reported as soon as the bytes show it, while the head is still partial:
/// after each call the outcome is the one [`parse_head`] gives on the same
/// bytes, however they were split into reads. Once the head is complete,
/// [`head`](Self::head) lends it without parsing again.
///
/// The header index (the offsets of each field) is allocated when the first field
/// arrives, with room for 16 fields (at most [`HeadLimits::max_headers`]), and grows
/// for a longer head; call
/// [`reset`](Self::reset) after removing a head from the buffer to parse the
/// next one with the same index (keep-alive, pipelining).
///
/// After an error, [`parse`](Self::parse) keeps returning that error until
/// [`reset`](Self::reset).
#[derive(Debug, Clone)]
pub struct HeadParser {
    limits: HeadLimits,
    state: State,
    /// Offset of the next byte to examine: every byte before it is validated.
    pos: usize,
    /// Start of the current line: the request line, then each header line.
    line: usize,
    /// The request line: its start, the SP after the method, the SP after the
    /// target, and the version's major and minor digits.
    request: usize,
    method_end: usize,
    target_end: usize,
    major: u8,
    minor: u8,
    /// The current header field's colon and value (see [`FieldSpan`]).
    colon: usize,
    value_start: usize,
    value_end: usize,
    /// The length of the head, once complete.
    len: usize,
    /// The header index.
    fields: Vec<FieldSpan>,
    /// Bytes examined since the last reset (each byte must be examined once).
    #[cfg(test)]
    examined: usize,
}

impl HeadParser {
    /// A parser for a head within `limits`, at the start of its buffer.
    /// Allocates nothing until the first header field.
    #[must_use]
    pub fn new(limits: HeadLimits) -> Self {
        Self {
            limits,
            state: State::Leading,
            pos: 0,
            line: 0,
            request: 0,
            method_end: 0,
            target_end: 0,
            major: 0,
            minor: 0,
            colon: 0,
            value_start: 0,
            value_end: 0,
            len: 0,
            fields: Vec::new(),
            #[cfg(test)]
            examined: 0,
        }
    }

    /// The limits this parser enforces.
    #[must_use]
    pub fn limits(&self) -> HeadLimits {
        self.limits
    }

    /// Forgets the head (complete, partial or failed) to parse a new one from
    /// the start of the buffer; keeps the limits and the header index's
    /// allocation.
    pub fn reset(&mut self) {
        let mut fields = std::mem::take(&mut self.fields);
        fields.clear();
        *self = Self {
            fields,
            ..Self::new(self.limits)
        };
    }

    /// Resumes the scan of the head at the start of `buf`, which holds the
    /// bytes given to the previous calls since [`new`](Self::new) or
    /// [`reset`](Self::reset) followed by new ones.
    ///
    /// Returns the head once complete ([`Status::Partial`] until then), with
    /// the same outcome as [`parse_head`] on `buf`. Bytes after the head (a
    /// body or a pipelined request) are not examined. Once complete, further
    /// calls return the same head without examining anything.
    ///
    /// # Errors
    ///
    /// As [`parse_head`], with `limit: max_headers` for
    /// [`ParseError::TooManyHeaders`]; after an error, the same error again.
    pub fn parse<'b>(&mut self, buf: &'b [u8]) -> Result<Status<Head<'b, '_>>, ParseError> {
        debug_assert!(
            buf.len() >= self.pos,
            "the buffer lost bytes already parsed"
        );
        loop {
            match self.state {
                State::Done => return Ok(Status::Complete(self.complete(buf))),
                State::Failed(e) => return Err(e),
                _ => {}
            }
            let Some(&b) = buf.get(self.pos) else { break };
            #[cfg(test)]
            {
                self.examined += 1;
            }
            if let Err(e) = self.step(b) {
                self.state = State::Failed(e);
            }
        }
        // Out of bytes: a valid prefix, unless it is already over a limit.
        match self.partial_limits(buf.len()) {
            Ok(()) => Ok(Status::Partial),
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
        }
    }

    /// The head, if [`parse`](Self::parse) found it complete in `buf` (the
    /// same buffer): borrowed, without parsing again.
    #[must_use]
    pub fn head<'b>(&self, buf: &'b [u8]) -> Option<Head<'b, '_>> {
        (self.state == State::Done).then(|| self.complete(buf))
    }

    fn complete<'b>(&self, buf: &'b [u8]) -> Head<'b, '_> {
        self.head_with(
            buf,
            Fields::Index {
                buf,
                spans: &self.fields,
            },
        )
    }

    fn head_with<'b, 'h>(&self, buf: &'b [u8], fields: Fields<'b, 'h>) -> Head<'b, 'h> {
        // Validated as a token and as visible ASCII: these cannot fail.
        let ascii = |start, end| std::str::from_utf8(slice(buf, start, end)).unwrap_or_default();
        Head {
            method: ascii(self.request, self.method_end),
            target: ascii(self.method_end + 1, self.target_end),
            minor_version: if self.minor == b'1' { 1 } else { 0 },
            headers: Headers { fields },
            len: self.len,
        }
    }

    /// The limits on a head that is still partial after `buffered` bytes.
    fn partial_limits(&self, buffered: usize) -> Result<(), ParseError> {
        use State::*;
        if matches!(self.state, Method | Target | Version | VersionCr) {
            // The request line so far, its CR excluded.
            let cr = usize::from(self.state == VersionCr);
            if buffered.saturating_sub(self.line + cr) > self.limits.max_request_line {
                return Err(ParseError::RequestLineTooLong {
                    limit: self.limits.max_request_line,
                });
            }
        }
        if buffered > self.limits.max_head_bytes {
            return Err(ParseError::HeadTooLarge {
                limit: self.limits.max_head_bytes,
            });
        }
        Ok(())
    }

    /// Examines the byte `b` at `self.pos` and moves past it.
    fn step(&mut self, b: u8) -> Result<(), ParseError> {
        use State::*;
        let i = self.pos;
        self.pos += 1;
        self.state = match (self.state, b) {
            // Leading empty lines (RFC 9112 §2.2).
            (Leading, b'\r') => LeadingCr,
            (Leading, b'\n') => return Err(ParseError::InvalidLineEnding),
            (LeadingCr, b'\n') => Leading,
            (LeadingCr, _) => return Err(ParseError::InvalidLineEnding),
            (Leading, _) => {
                self.line = i;
                self.request = i;
                self.method_byte(i, b)?
            }

            // The request line: method SP request-target SP HTTP-version CRLF.
            (Method, _) => self.method_byte(i, b)?,
            (Target, b' ') if i == self.method_end + 1 => {
                return Err(ParseError::InvalidRequestLine);
            }
            (Target, b' ') => {
                self.target_end = i;
                Version
            }
            (Target, 0x21..=0x7E) => Target,
            (Target, b'\r' | b'\n') => return Err(ParseError::InvalidRequestLine),
            (Target, _) => return Err(ParseError::InvalidTarget),
            (Version, _) => self.version_byte(i, b)?,
            (VersionCr, b'\n') => {
                if self.major != b'1' || !matches!(self.minor, b'0' | b'1') {
                    return Err(ParseError::UnsupportedVersion);
                }
                if i - 1 - self.line > self.limits.max_request_line {
                    return Err(ParseError::RequestLineTooLong {
                        limit: self.limits.max_request_line,
                    });
                }
                LineStart
            }
            (VersionCr, _) => return Err(ParseError::InvalidLineEnding),

            // Header lines: field-name ":" OWS field-value OWS CRLF, then CRLF.
            (LineStart, b'\r') => EndCr,
            (LineStart, b'\n') => return Err(ParseError::InvalidLineEnding),
            (LineStart, b' ' | b'\t') => return Err(ParseError::ObsFold),
            (LineStart, _) if is_tchar(b) => {
                if self.fields.len() >= self.limits.max_headers {
                    return Err(ParseError::TooManyHeaders {
                        limit: self.limits.max_headers,
                    });
                }
                self.line = i;
                Name
            }
            (LineStart, _) => return Err(ParseError::InvalidHeaderName),
            (Name, b':') => {
                self.colon = i;
                self.value_start = i + 1;
                self.value_end = i + 1;
                Value
            }
            (Name, _) if is_tchar(b) => Name,
            (Name, _) => return Err(ParseError::InvalidHeaderName),
            (Value, b'\r') => ValueCr,
            (Value, b'\n') => return Err(ParseError::InvalidLineEnding),
            (Value, b' ' | b'\t') => Value,
            (Value, _) if is_field_vchar(b) => {
                if self.value_end == self.colon + 1 {
                    self.value_start = i;
                }
                self.value_end = i + 1;
                Value
            }
            (Value, _) => return Err(ParseError::InvalidHeaderValue),
            (ValueCr, b'\n') => {
                self.push_field();
                LineStart
            }
            (ValueCr, _) => return Err(ParseError::InvalidHeaderValue),
            (EndCr, b'\n') => {
                self.len = i + 1;
                if self.len > self.limits.max_head_bytes {
                    return Err(ParseError::HeadTooLarge {
                        limit: self.limits.max_head_bytes,
                    });
                }
                Done
            }
            (EndCr, _) => return Err(ParseError::InvalidLineEnding),
            (Done | Failed(_), _) => self.state,
        };
        Ok(())
    }

    /// A byte of the method (`tchar`s up to SP).
    fn method_byte(&mut self, i: usize, b: u8) -> Result<State, ParseError> {
        match b {
            b' ' if i == self.request => Err(ParseError::InvalidRequestLine),
            b' ' => {
                self.method_end = i;
                Ok(State::Target)
            }
            b'\r' | b'\n' => Err(ParseError::InvalidRequestLine),
            _ if is_tchar(b) => Ok(State::Method),
            _ => Err(ParseError::InvalidMethod),
        }
    }

    /// A byte of the version (`HTTP/` DIGIT `.` DIGIT, then CR).
    fn version_byte(&mut self, i: usize, b: u8) -> Result<State, ParseError> {
        let k = i - (self.target_end + 1);
        match b {
            b'\r' | b'\n' => match k {
                0 => Err(ParseError::InvalidRequestLine),
                8 if b == b'\r' => Ok(State::VersionCr),
                8 => Err(ParseError::InvalidLineEnding),
                _ => Err(ParseError::InvalidVersion),
            },
            b' ' => Err(ParseError::InvalidRequestLine),
            _ => {
                let ok = match k {
                    0..=4 => b"HTTP/".get(k) == Some(&b),
                    5 | 7 => b.is_ascii_digit(),
                    6 => b == b'.',
                    _ => false,
                };
                if !ok {
                    return Err(ParseError::InvalidVersion);
                }
                match k {
                    5 => self.major = b,
                    7 => self.minor = b,
                    _ => {}
                }
                Ok(State::Version)
            }
        }
    }

    /// Records the field whose line just ended.
    fn push_field(&mut self) {
        if self.fields.capacity() == 0 {
            // Start small (see INITIAL_FIELDS); a longer head grows the index, up to
            // `max_headers`, which is checked before this push.
            self.fields
                .reserve_exact(INITIAL_FIELDS.min(self.limits.max_headers));
        }
        self.fields.push(FieldSpan {
            start: self.line,
            colon: self.colon,
            value_start: self.value_start,
            value_end: self.value_end,
        });
    }
}

/// Parses a request head from the start of `buf`, writing its fields to
/// `headers`: [`HeadParser`] run on one buffer at once.
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
/// At most `max` fields are accepted, the smaller of `headers.len()` and
/// `limits.max_headers`.
///
/// # Errors
///
/// - [`ParseError::RequestLineTooLong`] once the request line (complete or
///   so far) exceeds `limits.max_request_line`;
/// - [`ParseError::HeadTooLarge`] if the complete head, or `buf` while no
///   complete head is present, exceeds `limits.max_head_bytes`;
/// - [`ParseError::TooManyHeaders`] (with `limit: max`) once a header field
///   beyond `max` starts;
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
    let mut parser = HeadParser::new(HeadLimits {
        max_headers: limits.max_headers.min(headers.len()),
        ..limits
    });
    let count = match parser.parse(buf)? {
        Status::Partial => return Ok(Status::Partial),
        Status::Complete(head) => {
            for (slot, header) in headers.iter_mut().zip(head.headers) {
                *slot = header;
            }
            head.headers.len()
        }
    };
    let headers: &'h [Header<'b>] = headers;
    Ok(Status::Complete(parser.head_with(
        buf,
        Fields::Sliced(headers.get(..count).unwrap_or_default()),
    )))
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

#[cfg(test)]
mod tests;

#[cfg(test)]
mod index_tests;
