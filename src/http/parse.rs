//! Push-style HTTP/1.1 request-head parser (RFC 9112 §2–§5), message
//! framing (RFC 9112 §6, RFC 9110 §7.2, §10.1.1) and an incremental chunked
//! body decoder (RFC 9112 §7.1).
//!
//! Everything here is pure: it looks only at the bytes it is given, never
//! performs I/O, never panics on input and runs in time linear in its input.

use super::error::ParseError;
use super::target::is_valid_host_port;

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

/// Longest chunk-size line (size digits plus extensions, excluding CRLF)
/// the [`ChunkedDecoder`] accepts, in bytes.
pub const MAX_CHUNK_LINE: usize = 1024;

/// Largest trailer section (all trailer lines with their CRLFs, excluding the
/// final empty line) the [`ChunkedDecoder`] accepts, in bytes.
pub const MAX_TRAILER_BYTES: usize = 8 * 1024;

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
fn is_tchar(b: u8) -> bool {
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
fn is_field_vchar(b: u8) -> bool {
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

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: neither `Content-Length` nor `Transfer-Encoding` was sent.
    None,
    /// Exactly this many bytes follow the head (possibly 0), already checked
    /// against the body limit.
    Length(u64),
    /// A chunked body follows; decode it with [`ChunkedDecoder`].
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
///   elements ignored) must be exactly `chunked`.
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
        if codings != 1 || !last_is_chunked {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading chunk-size hex digits.
    Size,
    /// Whitespace after the size; only `;` may follow.
    SizeWs,
    /// Inside chunk extensions, until CR.
    Ext,
    /// CR of the size line seen; LF expected.
    SizeLf,
    /// Copying chunk data.
    Data,
    /// Chunk data done; CR expected.
    DataCr,
    /// CR after chunk data seen; LF expected.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer line, until CR.
    Trailer,
    /// CR of a trailer line seen; LF expected.
    TrailerLf,
    /// CR of the final empty line seen; LF expected.
    EndLf,
    /// The body is complete.
    Done,
}

/// Decodes a chunked request body incrementally (RFC 9112 §7.1).
///
/// Chunk extensions are validated loosely and ignored; a chunk-size line
/// may be at most [`MAX_CHUNK_LINE`] bytes. Trailer fields are discarded;
/// the trailer section may be at most [`MAX_TRAILER_BYTES`] bytes. Lines
/// must end in CRLF. Decoding stops right after the final CRLF, so bytes of
/// a pipelined next request are never consumed. After an error the decoder
/// is in an unspecified state and must be discarded.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: ChunkState,
    max_body: u64,
    /// Decoded bytes so far (including announced bytes of the current chunk).
    total: u64,
    /// Size being parsed on the current size line.
    size: u64,
    /// Bytes on the current size line.
    line_len: usize,
    /// Data bytes left in the current chunk.
    remaining: u64,
    /// Trailer bytes so far.
    trailer_len: usize,
}

impl ChunkedDecoder {
    /// Creates a decoder that refuses bodies decoding to more than
    /// `max_body` bytes.
    #[must_use]
    pub fn new(max_body: usize) -> Self {
        Self {
            state: ChunkState::Size,
            max_body: u64::try_from(max_body).unwrap_or(u64::MAX),
            total: 0,
            size: 0,
            line_len: 0,
            remaining: 0,
            trailer_len: 0,
        }
    }

    /// Whether the whole body, including trailers, has been decoded.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Consumes bytes from `input`, appending decoded data to `out`.
    ///
    /// Returns how many input bytes were consumed and whether the body is
    /// complete (after the final CRLF following the trailers). Partial input
    /// is fine: all bytes are consumed and the call can be repeated with the
    /// following bytes. Once complete, the remaining input (e.g. a pipelined
    /// request) is left unconsumed and further calls consume nothing.
    ///
    /// # Errors
    ///
    /// - [`ParseError::InvalidChunk`] for a malformed size line (no hex
    ///   digits, a non-hex character, a size overflowing 64 bits, a line
    ///   longer than [`MAX_CHUNK_LINE`]), missing CRLF after chunk data,
    ///   a bare LF, invalid bytes in extensions or trailers, or trailers
    ///   longer than [`MAX_TRAILER_BYTES`];
    /// - [`ParseError::BodyTooLarge`] as soon as a chunk size would take the
    ///   decoded body beyond `max_body`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), ParseError> {
        let mut i = 0;
        while self.state != ChunkState::Done {
            if self.state == ChunkState::Data {
                let rest = input.get(i..).unwrap_or_default();
                if rest.is_empty() {
                    break;
                }
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                out.extend_from_slice(rest.get(..take).unwrap_or_default());
                i += take;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.state = ChunkState::DataCr;
                }
                continue;
            }
            let Some(&b) = input.get(i) else { break };
            i += 1;
            self.step(b)?;
        }
        Ok((i, self.state == ChunkState::Done))
    }

    /// Advances the state machine by one byte outside chunk data.
    fn step(&mut self, b: u8) -> Result<(), ParseError> {
        use ChunkState::*;
        let has_digits = self.line_len > 0;
        if matches!(self.state, Size | SizeWs | Ext) && b != b'\r' {
            self.line_len += 1;
            if self.line_len > MAX_CHUNK_LINE {
                return Err(ParseError::InvalidChunk);
            }
        }
        if matches!(self.state, Trailer | TrailerLf) || (self.state == TrailerStart && b != b'\r') {
            self.trailer_len += 1;
            if self.trailer_len > MAX_TRAILER_BYTES {
                return Err(ParseError::InvalidChunk);
            }
        }
        self.state = match (self.state, b) {
            (Size, _) if b.is_ascii_hexdigit() => {
                let digit = match b {
                    b'0'..=b'9' => b - b'0',
                    b'a'..=b'f' => b - b'a' + 10,
                    _ => b.wrapping_sub(b'A').wrapping_add(10),
                };
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(u64::from(digit)))
                    .ok_or(ParseError::InvalidChunk)?;
                Size
            }
            (Size, b';') if has_digits => Ext,
            (Size, b' ' | b'\t') if has_digits => SizeWs,
            (Size, b'\r') if has_digits => SizeLf,
            (SizeWs, b' ' | b'\t') => SizeWs,
            (SizeWs, b';') => Ext,
            (Ext, b'\r') => SizeLf,
            (Ext, b'\t' | b' ') => Ext,
            (Ext, _) if is_field_vchar(b) => Ext,
            (SizeLf, b'\n') => self.end_size_line()?,
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size,
            (TrailerStart, b'\r') => EndLf,
            (TrailerStart, _) if is_tchar(b) => Trailer,
            (Trailer, b'\r') => TrailerLf,
            (Trailer, b'\t' | b' ') => Trailer,
            (Trailer, _) if is_field_vchar(b) => Trailer,
            (TrailerLf, b'\n') => TrailerStart,
            (EndLf, b'\n') => Done,
            _ => return Err(ParseError::InvalidChunk),
        };
        Ok(())
    }

    /// The size line is complete: start the chunk data or the trailers.
    fn end_size_line(&mut self) -> Result<ChunkState, ParseError> {
        let size = std::mem::take(&mut self.size);
        self.line_len = 0;
        if size == 0 {
            return Ok(ChunkState::TrailerStart);
        }
        match self.total.checked_add(size) {
            Some(total) if total <= self.max_body => {
                self.total = total;
                self.remaining = size;
                Ok(ChunkState::Data)
            }
            _ => Err(ParseError::BodyTooLarge {
                limit: usize::try_from(self.max_body).unwrap_or(usize::MAX),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_request_line: DEFAULT_MAX_REQUEST_LINE,
        max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
    };

    /// Parses with default limits; `Ok(Some(len))` when complete.
    fn outcome(buf: &[u8]) -> Result<Option<usize>, ParseError> {
        let mut headers = [EMPTY_HEADER; DEFAULT_MAX_HEADERS];
        match parse_head(buf, &mut headers, LIMITS)? {
            Status::Complete(head) => Ok(Some(head.len)),
            Status::Partial => Ok(None),
        }
    }

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

    /// `req!(name, bytes, |head| { assertions })`: a complete head.
    macro_rules! req {
        ($name:ident, $buf:expr, |$head:ident| $body:block) => {
            #[test]
            fn $name() {
                let buf: &[u8] = $buf;
                let mut headers = [EMPTY_HEADER; DEFAULT_MAX_HEADERS];
                let $head = complete(buf, &mut headers);
                $body
            }
        };
    }

    /// `err!(name, bytes, error)`: parse_head fails with `error`.
    macro_rules! err {
        ($name:ident, $buf:expr, $err:expr) => {
            #[test]
            fn $name() {
                let buf: Vec<u8> = $buf.into();
                assert_eq!(outcome(&buf), Err($err));
            }
        };
    }

    /// `partial!(name, bytes)`: parse_head wants more bytes.
    macro_rules! partial {
        ($name:ident, $buf:expr) => {
            #[test]
            fn $name() {
                let buf: Vec<u8> = $buf.into();
                assert_eq!(outcome(&buf), Ok(None));
            }
        };
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

    req!(simple_get, SIMPLE, |head| {
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/events?topic=a");
        assert_eq!(head.minor_version, 1);
        assert_eq!(head.headers.len(), 2);
        assert_eq!(head.headers[0].name, "Host");
        assert_eq!(head.headers[0].value, b"example.com");
        assert_eq!(head.header("accept"), Some(&b"text/event-stream"[..]));
        assert_eq!(head.len, SIMPLE.len());
    });

    req!(http_10, b"GET / HTTP/1.0\r\n\r\n", |head| {
        assert_eq!(head.minor_version, 0);
        assert!(head.headers.is_empty());
        assert_eq!(head.len, 18);
    });

    req!(
        leading_crlfs,
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        |head| {
            assert_eq!(head.method, "GET");
            assert_eq!(head.len, 4 + 16 + 9 + 2);
        }
    );

    req!(
        body_not_consumed,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET",
        |head| {
            assert_eq!(head.len, 47);
        }
    );

    req!(
        case_insensitive_lookup,
        b"GET / HTTP/1.1\r\nX-Tag: 1\r\nHOST: h\r\nx-tag: 2\r\n\r\n",
        |head| {
            assert_eq!(head.header("host"), Some(&b"h"[..]));
            assert_eq!(head.header("Host"), Some(&b"h"[..]));
            assert_eq!(head.header("X-TAG"), Some(&b"1"[..]));
            let all: Vec<&[u8]> = head.headers_named("x-tag").collect();
            assert_eq!(all, [&b"1"[..], &b"2"[..]]);
            assert_eq!(head.header("missing"), None);
            assert_eq!(head.headers[1].name, "HOST");
        }
    );

    req!(
        ows_trimmed,
        b"GET / HTTP/1.1\r\nA: \t x  y \t\r\nB:\r\nC:   \r\nD:z\r\n\r\n",
        |head| {
            assert_eq!(head.header("a"), Some(&b"x  y"[..]));
            assert_eq!(head.header("b"), Some(&b""[..]));
            assert_eq!(head.header("c"), Some(&b""[..]));
            assert_eq!(head.header("d"), Some(&b"z"[..]));
        }
    );

    req!(
        obs_text_in_value,
        b"GET / HTTP/1.1\r\nX: caf\xc3\xa9 \xff\r\n\r\n",
        |head| {
            assert_eq!(head.header("x"), Some(&b"caf\xc3\xa9 \xff"[..]));
        }
    );

    req!(method_case_kept, b"get /x HTTP/1.1\r\n\r\n", |head| {
        assert_eq!(head.method, "get");
    });

    req!(
        absolute_form_target,
        b"GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
        |head| {
            assert_eq!(head.target, "http://example.com/p?q");
            let t = crate::http::target::parse_target(head.target);
            assert_eq!(t.map(|t| (t.path, t.query)), Ok(("/p", Some("q"))));
        }
    );

    req!(
        authority_form_refused_by_target,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        |head| {
            assert_eq!(
                crate::http::target::parse_target(head.target),
                Err(ParseError::InvalidTarget)
            );
        }
    );

    #[test]
    fn partial_at_every_prefix() {
        for end in 0..SIMPLE.len() {
            assert_eq!(outcome(&SIMPLE[..end]), Ok(None), "prefix {end}");
        }
        assert_eq!(outcome(SIMPLE), Ok(Some(SIMPLE.len())));
        let leading = b"\r\n\r\nGET / HTTP/1.0\r\n\r\n";
        for end in 0..leading.len() {
            assert_eq!(outcome(&leading[..end]), Ok(None), "prefix {end}");
        }
    }

    partial!(empty_input, b"".to_vec());
    partial!(partial_version, b"GET / HTTP/1.".to_vec());
    partial!(partial_cr, b"GET / HTTP/1.1\r\nHost: a\r".to_vec());

    // Hostile and malformed inputs.
    err!(
        endless_request_line,
        [b"GET /".as_slice(), &[b'a'; 9000]].concat(),
        ParseError::RequestLineTooLong { limit: 8192 }
    );
    err!(
        complete_request_line_too_long,
        [b"GET /".as_slice(), &[b'a'; 8190], b" HTTP/1.1\r\n\r\n"].concat(),
        ParseError::RequestLineTooLong { limit: 8192 }
    );
    err!(
        endless_header,
        [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 9000]].concat(),
        ParseError::HeadTooLarge { limit: 8192 }
    );
    err!(
        complete_head_too_large,
        [
            b"GET / HTTP/1.1\r\nX: ".as_slice(),
            &[b'a'; 9000],
            b"\r\n\r\n"
        ]
        .concat(),
        ParseError::HeadTooLarge { limit: 8192 }
    );
    err!(
        leading_crlf_flood,
        b"\r\n".repeat(5000),
        ParseError::HeadTooLarge { limit: 8192 }
    );
    err!(
        thousand_headers,
        [
            b"GET / HTTP/1.1\r\n".to_vec(),
            b"X: y\r\n".repeat(1000),
            b"\r\n".to_vec()
        ]
        .concat(),
        ParseError::TooManyHeaders { limit: 32 }
    );
    err!(
        too_many_headers_while_partial,
        [
            b"GET / HTTP/1.1\r\n".to_vec(),
            b"X: y\r\n".repeat(32),
            b"Y".to_vec()
        ]
        .concat(),
        ParseError::TooManyHeaders { limit: 32 }
    );
    err!(
        bare_lf_request_line,
        b"GET / HTTP/1.1\nHost: a\n\n".to_vec(),
        ParseError::InvalidLineEnding
    );
    err!(
        bare_lf_header,
        b"GET / HTTP/1.1\r\nHost: a\n\r\n".to_vec(),
        ParseError::InvalidLineEnding
    );
    err!(
        bare_lf_end,
        b"GET / HTTP/1.1\r\nHost: a\r\n\n".to_vec(),
        ParseError::InvalidLineEnding
    );
    err!(
        bare_lf_leading,
        b"\nGET / HTTP/1.1\r\n\r\n".to_vec(),
        ParseError::InvalidLineEnding
    );
    err!(
        cr_without_lf_leading,
        b"\rGET / HTTP/1.1\r\n\r\n".to_vec(),
        ParseError::InvalidLineEnding
    );
    err!(
        nul_in_target_partial,
        b"GET /a\0".to_vec(),
        ParseError::InvalidTarget
    );
    err!(
        nul_in_method_partial,
        b"GE\0".to_vec(),
        ParseError::InvalidMethod
    );
    err!(
        nul_in_header_value_partial,
        b"GET / HTTP/1.1\r\nX: a\0".to_vec(),
        ParseError::InvalidHeaderValue
    );
    err!(
        del_in_header_value,
        b"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n".to_vec(),
        ParseError::InvalidHeaderValue
    );
    err!(
        bare_cr_in_header_value,
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n".to_vec(),
        ParseError::InvalidHeaderValue
    );
    err!(
        obs_fold,
        b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n".to_vec(),
        ParseError::ObsFold
    );
    err!(
        obs_fold_tab_first_line,
        b"GET / HTTP/1.1\r\n\tX: a\r\n\r\n".to_vec(),
        ParseError::ObsFold
    );
    err!(
        space_before_colon,
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n".to_vec(),
        ParseError::InvalidHeaderName
    );
    err!(
        empty_header_name,
        b"GET / HTTP/1.1\r\n: a\r\n\r\n".to_vec(),
        ParseError::InvalidHeaderName
    );
    err!(
        header_without_colon,
        b"GET / HTTP/1.1\r\nHost\r\n\r\n".to_vec(),
        ParseError::InvalidHeaderName
    );
    err!(
        non_token_header_name,
        b"GET / HTTP/1.1\r\nA(b): c\r\n".to_vec(),
        ParseError::InvalidHeaderName
    );
    err!(
        http_2,
        b"GET / HTTP/2.0\r\n\r\n".to_vec(),
        ParseError::UnsupportedVersion
    );
    err!(
        http_09,
        b"GET / HTTP/0.9\r\n\r\n".to_vec(),
        ParseError::UnsupportedVersion
    );
    err!(
        http_12,
        b"GET / HTTP/1.2\r\n\r\n".to_vec(),
        ParseError::UnsupportedVersion
    );
    err!(
        lowercase_http,
        b"GET / http/1.1\r\n\r\n".to_vec(),
        ParseError::InvalidVersion
    );
    err!(
        htp,
        b"GET / HTP/1.1\r\n\r\n".to_vec(),
        ParseError::InvalidVersion
    );
    err!(
        truncated_version,
        b"GET / HTTP/1.\r\n\r\n".to_vec(),
        ParseError::InvalidVersion
    );
    err!(
        long_version,
        b"GET / HTTP/1.10\r\n\r\n".to_vec(),
        ParseError::InvalidVersion
    );
    err!(
        missing_version,
        b"GET /\r\n\r\n".to_vec(),
        ParseError::InvalidRequestLine
    );
    err!(
        empty_version,
        b"GET / \r\n\r\n".to_vec(),
        ParseError::InvalidRequestLine
    );
    err!(
        missing_target,
        b"GET\r\n\r\n".to_vec(),
        ParseError::InvalidRequestLine
    );
    err!(
        double_space,
        b"GET  / HTTP/1.1\r\n\r\n".to_vec(),
        ParseError::InvalidRequestLine
    );
    err!(
        leading_space,
        b" GET / HTTP/1.1\r\n\r\n".to_vec(),
        ParseError::InvalidRequestLine
    );
    err!(
        trailing_space,
        b"GET / HTTP/1.1 \r\n\r\n".to_vec(),
        ParseError::InvalidRequestLine
    );
    err!(
        tab_separator,
        b"GET\t/ HTTP/1.1\r\n\r\n".to_vec(),
        ParseError::InvalidMethod
    );
    err!(
        non_ascii_target,
        b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n".to_vec(),
        ParseError::InvalidTarget
    );
    err!(
        cr_after_version_not_lf,
        b"GET / HTTP/1.1\rX".to_vec(),
        ParseError::InvalidLineEnding
    );

    #[test]
    fn limits_are_configurable() {
        let mut headers = [EMPTY_HEADER; 2];
        let limits = HeadLimits {
            max_request_line: 14,
            max_head_bytes: 30,
        };
        let ok = b"GET / HTTP/1.1\r\n\r\n";
        assert!(matches!(
            parse_head(ok, &mut headers, limits),
            Ok(Status::Complete(_))
        ));
        // Exactly at the request-line limit while partial, then one more byte.
        assert_eq!(
            parse_head(b"GET /abcdefghi", &mut headers, limits),
            Ok(Status::Partial)
        );
        assert_eq!(
            parse_head(b"GET /abcdefghij", &mut headers, limits),
            Err(ParseError::RequestLineTooLong { limit: 14 })
        );
        let three = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC";
        assert_eq!(
            parse_head(three, &mut headers, limits),
            Err(ParseError::TooManyHeaders { limit: 2 })
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nA: 12345678901234", &mut headers, limits),
            Err(ParseError::HeadTooLarge { limit: 30 })
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\n", &mut [], limits),
            Ok(Status::Partial)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nA", &mut [], limits),
            Err(ParseError::TooManyHeaders { limit: 0 })
        );
    }

    // Framing.
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
        Err(ParseError::UnsupportedTransferEncoding)
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
        Err(ParseError::UnsupportedTransferEncoding)
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

    // Chunked decoder.

    /// Decodes `input` in one call.
    fn dechunk(input: &[u8], max_body: usize) -> Result<(Vec<u8>, usize, bool), ParseError> {
        let mut decoder = ChunkedDecoder::new(max_body);
        let mut out = Vec::new();
        let (used, done) = decoder.decode(input, &mut out)?;
        Ok((out, used, done))
    }

    macro_rules! chunked {
        ($name:ident, $input:expr, $expected:expr) => {
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let expected: Result<&[u8], ParseError> = $expected;
                let got = dechunk(input, 64);
                match expected {
                    Ok(body) => {
                        assert_eq!(got, Ok((body.to_vec(), input.len(), true)));
                        // Also byte by byte and at every split point.
                        for split in 0..=input.len() {
                            let mut decoder = ChunkedDecoder::new(64);
                            let mut out = Vec::new();
                            let (a, done_a) = decoder.decode(&input[..split], &mut out).unwrap();
                            assert_eq!(a, split);
                            assert_eq!(done_a, split == input.len() && !input.is_empty());
                            let (b, done_b) = decoder.decode(&input[split..], &mut out).unwrap();
                            assert_eq!((a + b, done_b, out.as_slice()), (input.len(), true, body));
                        }
                        let mut decoder = ChunkedDecoder::new(64);
                        let mut out = Vec::new();
                        for byte in input.chunks(1) {
                            assert_eq!(decoder.decode(byte, &mut out).map(|r| r.0), Ok(1));
                        }
                        assert!(decoder.is_done());
                        assert_eq!(out, body);
                    }
                    Err(e) => assert_eq!(got.map(|_| ()), Err(e)),
                }
            }
        };
    }

    chunked!(
        chunked_simple,
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        Ok(b"hello world")
    );
    chunked!(chunked_empty, b"0\r\n\r\n", Ok(b""));
    chunked!(
        chunked_upper_hex_leading_zero,
        b"000A\r\n0123456789\r\n00\r\n\r\n",
        Ok(b"0123456789")
    );
    chunked!(
        chunked_extensions,
        b"5;name=val;x=\"q s\"\r\nhello\r\n0 ; last\r\n\r\n",
        Ok(b"hello")
    );
    chunked!(
        chunked_trailers,
        b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n",
        Ok(b"abc")
    );
    chunked!(
        chunked_bad_hex,
        b"5g\r\nhello\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_no_digits,
        b"\r\nhello\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_ext_without_digits,
        b";x\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_sign,
        b"+5\r\nhello\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_overflow,
        b"ffffffffffffffffffff\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_oversize,
        b"41\r\n",
        Err(ParseError::BodyTooLarge { limit: 64 })
    );
    chunked!(
        chunked_oversize_total,
        b"20\r\n01234567890123456789012345678901\r\n21\r\n",
        Err(ParseError::BodyTooLarge { limit: 64 })
    );
    chunked!(
        chunked_missing_crlf_after_data,
        b"3\r\nabcd\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_bare_lf_size,
        b"3\nabc\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_bare_lf_data,
        b"3\r\nabc\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_space_without_ext,
        b"3 x\r\nabc\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_nul_in_ext,
        b"3;a\0\r\nabc\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_bad_trailer,
        b"0\r\n: x\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );

    #[test]
    fn chunked_stops_at_end() {
        let input = b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        let mut decoder = ChunkedDecoder::new(64);
        let mut out = Vec::new();
        assert_eq!(decoder.decode(input, &mut out), Ok((13, true)));
        assert_eq!(out, b"abc");
        assert_eq!(decoder.decode(b"more", &mut out), Ok((0, true)));
    }

    #[test]
    fn chunked_exact_limit() {
        assert_eq!(
            dechunk(b"40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n0\r\n\r\n", 64)
                .map(|r| r.2),
            Ok(true)
        );
    }

    #[test]
    fn chunked_line_limits() {
        let long_ext = [b"1;".as_slice(), &[b'a'; MAX_CHUNK_LINE]].concat();
        assert_eq!(
            dechunk(&long_ext, 64).map(|_| ()),
            Err(ParseError::InvalidChunk)
        );
        let ok_ext = [
            b"1;".as_slice(),
            &[b'a'; MAX_CHUNK_LINE - 2],
            b"\r\nx\r\n0\r\n\r\n",
        ]
        .concat();
        assert_eq!(dechunk(&ok_ext, 64).map(|r| r.0), Ok(b"x".to_vec()));
        let zeros = [&[b'0'; MAX_CHUNK_LINE + 1][..], b"\r\n"].concat();
        assert_eq!(
            dechunk(&zeros, 64).map(|_| ()),
            Err(ParseError::InvalidChunk)
        );
        let trailers = [
            b"0\r\n".to_vec(),
            b"X: yyyyyyyyyyyyyyyyyyyyyy\r\n".repeat(400),
        ]
        .concat();
        assert_eq!(
            dechunk(&trailers, 64).map(|_| ()),
            Err(ParseError::InvalidChunk)
        );
    }

    // Property tests.

    #[derive(Debug, Clone)]
    struct Generated {
        leading: usize,
        method: String,
        target: String,
        minor: u8,
        /// name, value, whitespace before, whitespace after
        headers: Vec<(String, String, String, String)>,
    }

    impl Generated {
        fn bytes(&self) -> Vec<u8> {
            let mut s = "\r\n".repeat(self.leading);
            s.push_str(&format!(
                "{} {} HTTP/1.{}\r\n",
                self.method, self.target, self.minor
            ));
            for (name, value, before, after) in &self.headers {
                s.push_str(&format!("{name}:{before}{value}{after}\r\n"));
            }
            s.push_str("\r\n");
            s.into_bytes()
        }
    }

    fn generated() -> impl Strategy<Value = Generated> {
        let token = "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}";
        let header = (
            token,
            "([!-~]([ -~]{0,20}[!-~])?)?",
            "[ \t]{0,2}",
            "[ \t]{0,2}",
        );
        (
            0usize..3,
            token,
            "/[A-Za-z0-9/?=&%._~-]{0,20}",
            0u8..2,
            prop::collection::vec(header, 0..DEFAULT_MAX_HEADERS),
        )
            .prop_map(|(leading, method, target, minor, headers)| Generated {
                leading,
                method,
                target,
                minor,
                headers,
            })
    }

    /// Naive reference parser for well-formed requests.
    #[allow(clippy::type_complexity)]
    fn oracle(buf: &str) -> (String, String, String, Vec<(String, String)>) {
        let buf = buf.trim_start_matches("\r\n");
        let (head, _) = buf.split_once("\r\n\r\n").expect("end of head");
        let mut lines = head.split("\r\n");
        let request_line = lines.next().expect("request line");
        let parts: Vec<&str> = request_line.split(' ').collect();
        assert_eq!(parts.len(), 3);
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').expect("colon");
                (n.to_owned(), v.trim_matches([' ', '\t']).to_owned())
            })
            .collect();
        (
            parts[0].to_owned(),
            parts[1].to_owned(),
            parts[2].to_owned(),
            headers,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..600)) {
            let mut headers = [EMPTY_HEADER; 4];
            let limits = HeadLimits { max_request_line: 100, max_head_bytes: 300 };
            if let Ok(Status::Complete(head)) = parse_head(&buf, &mut headers, limits) {
                prop_assert!(head.len <= buf.len());
                let _ = framing(&head, 100);
            }
        }

        #[test]
        fn request_prefix_then_arbitrary_bytes(tail in prop::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b':'), Just(b' '), any::<u8>()], 0..300)) {
            let buf = [b"GET / HTTP/1.1\r\nHost: a\r\n".as_slice(), &tail].concat();
            let mut headers = [EMPTY_HEADER; DEFAULT_MAX_HEADERS];
            if let Ok(Status::Complete(head)) = parse_head(&buf, &mut headers, LIMITS) {
                prop_assert!(head.len <= buf.len());
                prop_assert!(buf[..head.len].ends_with(b"\r\n\r\n"));
                let _ = framing(&head, 100);
            }
        }

        #[test]
        fn chunked_arbitrary_bytes_never_panic(input in prop::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'5'), Just(b';'), any::<u8>()], 0..300)) {
            let mut decoder = ChunkedDecoder::new(100);
            let mut out = Vec::new();
            if let Ok((used, _)) = decoder.decode(&input, &mut out) {
                prop_assert!(used <= input.len());
                prop_assert!(out.len() <= 100);
            }
        }

        #[test]
        fn split_invariance(
            request in generated(),
            splits in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
            body in prop::collection::vec(any::<u8>(), 0..8),
        ) {
            let head_bytes = request.bytes();
            let full = [head_bytes.as_slice(), &body].concat();
            let mut whole_headers = [EMPTY_HEADER; DEFAULT_MAX_HEADERS];
            let whole = parse_head(&full, &mut whole_headers, LIMITS);
            let Ok(Status::Complete(whole)) = whole else {
                return Err(TestCaseError::fail(format!("{whole:?}")));
            };
            prop_assert_eq!(whole.len, head_bytes.len());
            let mut points: Vec<usize> = splits.iter().map(|i| i.index(head_bytes.len())).collect();
            points.sort_unstable();
            for end in points {
                let mut headers = [EMPTY_HEADER; DEFAULT_MAX_HEADERS];
                prop_assert_eq!(parse_head(&full[..end], &mut headers, LIMITS), Ok(Status::Partial));
            }
            for end in [head_bytes.len(), full.len()] {
                let mut headers = [EMPTY_HEADER; DEFAULT_MAX_HEADERS];
                prop_assert_eq!(parse_head(&full[..end], &mut headers, LIMITS), Ok(Status::Complete(whole)));
            }
        }

        #[test]
        fn agrees_with_oracle(request in generated()) {
            let bytes = request.bytes();
            let text = String::from_utf8(bytes.clone()).expect("ascii");
            let (method, target, version, expected_headers) = oracle(&text);
            let mut headers = [EMPTY_HEADER; DEFAULT_MAX_HEADERS];
            let Ok(Status::Complete(head)) = parse_head(&bytes, &mut headers, LIMITS) else {
                return Err(TestCaseError::fail("not complete"));
            };
            prop_assert_eq!(head.method, method);
            prop_assert_eq!(head.target, target);
            prop_assert_eq!(format!("HTTP/1.{}", head.minor_version), version);
            let got: Vec<(String, String)> = head
                .headers
                .iter()
                .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
                .collect();
            prop_assert_eq!(got, expected_headers);
            prop_assert_eq!(head.len, bytes.len());
        }

        #[test]
        fn chunked_split_invariance(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..20), 0..6),
            split in any::<prop::sample::Index>(),
        ) {
            let mut encoded = Vec::new();
            for chunk in &chunks {
                encoded.extend_from_slice(format!("{:x};e=1\r\n", chunk.len()).as_bytes());
                encoded.extend_from_slice(chunk);
                encoded.extend_from_slice(b"\r\n");
            }
            encoded.extend_from_slice(b"0\r\nT: v\r\n\r\n");
            let at = split.index(encoded.len());
            let mut decoder = ChunkedDecoder::new(1000);
            let mut out = Vec::new();
            let (a, _) = decoder.decode(&encoded[..at], &mut out).expect("first half");
            let (b, done) = decoder.decode(&encoded[at..], &mut out).expect("second half");
            prop_assert_eq!(a + b, encoded.len());
            prop_assert!(done);
            prop_assert_eq!(out, chunks.concat());
        }
    }
}
