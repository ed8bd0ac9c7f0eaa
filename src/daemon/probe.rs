//! `ssehub probe URL`: one `GET` over HTTP/1.1, for a container's health check (a
//! `FROM scratch` image has no shell and no curl). Success is a `2xx` status line.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Longest status line read. **Unit:** bytes.
const MAX_STATUS_LINE: usize = 1024;

/// Why a probe failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProbeError {
    /// The URL is not `http://host[:port][/path]`.
    Url(String),
    /// Connecting, writing or reading failed, or the deadline passed.
    Io(io::Error),
    /// The answer does not start with an HTTP/1.x status line.
    Malformed,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Url(u) => write!(f, "not an http:// URL: {u}"),
            ProbeError::Io(e) => write!(f, "{e}"),
            ProbeError::Malformed => write!(f, "the answer is not HTTP/1.x"),
        }
    }
}

impl std::error::Error for ProbeError {}

impl From<io::Error> for ProbeError {
    fn from(e: io::Error) -> Self {
        ProbeError::Io(e)
    }
}

/// Sends `GET` to `url` (`http://host[:port][/path]`, port 80 by default) and returns
/// the answer's status code; the whole exchange must end within `timeout`.
///
/// # Errors
///
/// [`ProbeError`] for a bad URL, a failed or slow connection, or an answer that is not
/// HTTP/1.x.
///
/// # Examples
///
/// ```no_run
/// let status = ssehub::daemon::probe("http://127.0.0.1:8080/health", std::time::Duration::from_secs(2))?;
/// assert!((200..300).contains(&status));
/// # Ok::<(), ssehub::daemon::ProbeError>(())
/// ```
pub fn probe(url: &str, timeout: Duration) -> Result<u16, ProbeError> {
    let deadline = Instant::now() + timeout;
    let (authority, path) = split_url(url).ok_or_else(|| ProbeError::Url(url.to_owned()))?;
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'))
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| ProbeError::Url(url.to_owned()))?;
    let mut stream = TcpStream::connect_timeout(&addr, left(deadline)?)?;
    stream.set_write_timeout(Some(left(deadline)?))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: ssehub-probe\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < MAX_STATUS_LINE {
        stream.set_read_timeout(Some(left(deadline)?))?;
        match stream.read(&mut chunk)? {
            0 => break,
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
    status_of(&buf).ok_or(ProbeError::Malformed)
}

/// Time left before `deadline`, or a `TimedOut` error.
fn left(deadline: Instant) -> io::Result<Duration> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
    }
    Ok(d)
}

/// `http://host:port/path?q` → (`host:port`, `/path?q`).
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let clean = |s: &str| !s.is_empty() && !s.bytes().any(|b| b <= b' ' || b == 0x7f);
    (clean(authority) && clean(path) && !authority.contains('@')).then_some((authority, path))
}

/// The status code of an `HTTP/1.x NNN …` line at the start of `buf`.
fn status_of(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|&b| b == b'\n').next()?;
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    if rest.get(1) != Some(&b' ') || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_table() {
        let table: &[(&str, Option<(&str, &str)>)] = &[
            (
                "http://127.0.0.1:8080/health",
                Some(("127.0.0.1:8080", "/health")),
            ),
            ("http://localhost", Some(("localhost", "/"))),
            ("http://[::1]:80/x?y=1", Some(("[::1]:80", "/x?y=1"))),
            ("https://a/health", None),
            ("http:///health", None),
            ("http://a b/", None),
            ("http://u@a/", None),
            ("127.0.0.1:8080/health", None),
        ];
        for (url, want) in table {
            assert_eq!(split_url(url), *want, "{url}");
        }
    }

    #[test]
    fn status_lines_table() {
        let table: &[(&[u8], Option<u16>)] = &[
            (b"HTTP/1.1 200 OK\r\n", Some(200)),
            (b"HTTP/1.0 503 Service Unavailable\r\n", Some(503)),
            (b"HTTP/1.1 204\r\n", Some(204)),
            (b"HTTP/2 200\r\n", None),
            (b"HTTP/1.1 2x0 OK\r\n", None),
            (b"SSH-2.0-OpenSSH\r\n", None),
            (b"", None),
        ];
        for (line, want) in table {
            assert_eq!(status_of(line), *want, "{line:?}");
        }
    }

    #[test]
    fn a_closed_port_is_an_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = probe(
            &format!("http://127.0.0.1:{port}/health"),
            Duration::from_secs(2),
        );
        assert!(matches!(r, Err(ProbeError::Io(_))), "{r:?}");
    }
}
