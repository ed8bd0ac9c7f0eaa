//! Reading a request head (and body) from a stream: bounded in bytes and in time.
//!
//! This is the only I/O of the HTTP layer. The byte limit holds while reading: the buffer
//! never grows past the head limit plus one read, whatever the client sends, because the
//! parser resumes after every read and reports an oversized head while it is still
//! partial.

use std::fmt;
use std::io;
use std::time::Instant;

use async_io::Timer;
use futures_lite::{AsyncRead, AsyncReadExt, FutureExt};

use super::chunked::ChunkedDecoder;
use super::error::ParseError;
use super::framing::BodyKind;
use super::head::{HeadParser, Status};

/// Bytes asked of the socket per read.
pub const READ_CHUNK: usize = 2048;

/// Why a connection stopped before a request was complete.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnError {
    /// The peer closed the connection before sending any byte of a request.
    Closed,
    /// The socket failed (reset, broken pipe…) or closed in the middle of a request.
    Io(io::Error),
    /// The request is malformed or over a limit.
    Parse(ParseError),
    /// The deadline passed; `partial` says whether some bytes of the request had arrived.
    Timeout {
        /// Whether part of a request had been received.
        partial: bool,
    },
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Closed => f.write_str("connection closed"),
            ConnError::Io(e) => write!(f, "i/o error: {e}"),
            ConnError::Parse(e) => write!(f, "bad request: {e}"),
            ConnError::Timeout { .. } => f.write_str("request timed out"),
        }
    }
}

impl std::error::Error for ConnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnError::Io(e) => Some(e),
            ConnError::Parse(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ParseError> for ConnError {
    fn from(e: ParseError) -> Self {
        ConnError::Parse(e)
    }
}

/// Whether an I/O error is an ordinary disconnect (not worth logging as a failure).
pub fn is_disconnect(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof | NotConnected
    )
}

/// Reads once into the spare room of `buf` (at most `max` new bytes), by `deadline`.
/// Returns the number of bytes read (0 at end of stream).
pub async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
) -> Result<usize, ConnError> {
    let start = buf.len();
    buf.resize(start + max.max(1), 0);
    let partial = start > 0;
    let res = async { stream.read(&mut buf[start..]).await.map_err(ConnError::Io) }
        .or(async {
            Timer::at(deadline).await;
            Err(ConnError::Timeout { partial })
        })
        .await;
    let n = *res.as_ref().unwrap_or(&0);
    buf.truncate(start + n);
    res
}

/// Reads until `buf` starts with a complete request head, or fails.
///
/// `parser` holds the scan of the head in `buf` so far and resumes it: each read's new
/// bytes are examined once, and nothing is allocated per read. `buf` may already hold
/// bytes (a pipelined request); `parser` must then be fresh or [reset](HeadParser::reset)
/// (after the previous head was removed from `buf`), or describe those same bytes.
///
/// On success the head is `buf[..len]`, returned; [`HeadParser::head`] lends it without
/// parsing again. The buffer never holds more than `max_head_bytes + READ_CHUNK`.
///
/// # Errors
///
/// [`ConnError::Closed`] on a clean end of stream before any byte, [`ConnError::Parse`]
/// as soon as the bytes so far are invalid or over a limit, [`ConnError::Timeout`] at the
/// deadline, [`ConnError::Io`] otherwise.
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    parser: &mut HeadParser,
    deadline: Instant,
) -> Result<usize, ConnError> {
    let max_head_bytes = parser.limits().max_head_bytes;
    loop {
        if let Status::Complete(head) = parser.parse(buf)? {
            return Ok(head.len);
        }
        let room = (max_head_bytes + 1)
            .saturating_sub(buf.len())
            .clamp(1, READ_CHUNK);
        let n = read_some(stream, buf, room, deadline).await?;
        if n == 0 {
            return Err(if buf.is_empty() {
                ConnError::Closed
            } else {
                ConnError::Io(io::ErrorKind::UnexpectedEof.into())
            });
        }
    }
}

/// Whether the request in `buf` (its first bytes are enough, whole or not, valid or not)
/// has the method `HEAD`, after the empty lines a request may start with. A refusal of
/// it must then have no content (RFC 9110 §9.3.2).
pub fn is_head_request(buf: &[u8]) -> bool {
    skip_empty_lines(buf).starts_with(b"HEAD ")
}

fn skip_empty_lines(mut buf: &[u8]) -> &[u8] {
    while let [b'\r', b'\n', rest @ ..] = buf {
        buf = rest;
    }
    buf
}

/// Reads into `buf` until it holds the end of a request line (after the empty lines a
/// request may start with), `max` bytes, the end of the stream, an error or `deadline`,
/// whichever comes first: enough to answer a request that is refused unread (the
/// connection cap) as its method requires. Never fails: what was read is in `buf`.
pub async fn read_request_line<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
) {
    while !skip_empty_lines(buf).contains(&b'\n') && buf.len() < max {
        let room = (max - buf.len()).min(READ_CHUNK);
        if !matches!(read_some(stream, buf, room, deadline).await, Ok(n) if n > 0) {
            return;
        }
    }
}

/// Reads a request body framed by `kind` from `buf` (bytes already read) and the stream,
/// by `deadline`. Bytes after the body stay in `buf` (a pipelined request).
///
/// # Errors
///
/// [`ParseError::BodyTooLarge`] past `max_body`, [`ParseError::InvalidChunk`] for bad
/// chunked framing, a timeout or an I/O error.
pub async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    kind: BodyKind,
    max_body: usize,
    deadline: Instant,
) -> Result<Vec<u8>, ConnError> {
    match kind {
        BodyKind::None => Ok(Vec::new()),
        BodyKind::Length(n) => {
            let n = usize::try_from(n).map_err(|_| ParseError::BodyTooLarge { limit: max_body })?;
            if n > max_body {
                return Err(ParseError::BodyTooLarge { limit: max_body }.into());
            }
            while buf.len() < n {
                let want = (n - buf.len()).min(64 * 1024);
                if read_some(stream, buf, want, deadline).await? == 0 {
                    return Err(ConnError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
            }
            Ok(buf.drain(..n).collect())
        }
        BodyKind::Chunked => {
            let mut decoder = ChunkedDecoder::new(max_body);
            let mut out = Vec::new();
            loop {
                let (used, done) = decoder.decode(buf, &mut out)?;
                buf.drain(..used);
                if done {
                    return Ok(out);
                }
                if read_some(stream, buf, READ_CHUNK, deadline).await? == 0 {
                    return Err(ConnError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_requests_are_known_by_their_first_bytes() {
        for yes in [&b"HEAD / HTTP/1.1\r\n"[..], b"HEAD ", b"\r\n\r\nHEAD /x"] {
            assert!(is_head_request(yes), "{yes:?}");
        }
        for no in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"HEAD",
            b"HEADER /",
            b"head /",
            b"\nHEAD /",
            b"",
        ] {
            assert!(!is_head_request(no), "{no:?}");
        }
    }

    #[test]
    fn a_request_line_is_read_up_to_its_end_or_the_limit() {
        let read = |input: &[u8], max: usize| {
            let mut stream = futures_lite::io::Cursor::new(input.to_vec());
            let mut buf = Vec::new();
            let deadline = Instant::now() + std::time::Duration::from_secs(1);
            futures_lite::future::block_on(read_request_line(&mut stream, &mut buf, max, deadline));
            buf
        };
        // One read takes what is there; the line's end stops the reading.
        let whole = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(read(whole, 100), whole);
        // Leading empty lines are not the end of the request line.
        assert_eq!(read(b"\r\n\r\nHEAD /", 100), b"\r\n\r\nHEAD /");
        assert_eq!(read(&[b'a'; 5000], 10).len(), 10);
        assert_eq!(read(b"", 10), b"");
    }
}
