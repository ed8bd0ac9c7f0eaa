//! The little HTTP/1.1 client side the tool needs: loopback-only URL parsing, request
//! heads, response head parsing and a streaming chunked-body decoder.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A parsed `http://` base URL on a loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header value.
    pub host: String,
    /// Path prefix without a trailing slash (`""` for the root).
    pub prefix: String,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError(pub String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses `http://HOST[:PORT][/prefix]`. HOST must be a loopback address (127.0.0.0/8,
/// `[::1]`) or `localhost` (taken as 127.0.0.1, no name lookup): this tool must never
/// send traffic anywhere else.
pub fn parse_url(url: &str) -> Result<BaseUrl, UrlError> {
    let err = |m: &str| UrlError(format!("--url {url}: {m}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| err("only http:// URLs are supported"))?;
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if path.contains(['?', '#']) {
        return Err(err("no query or fragment allowed in the base URL"));
    }
    if authority.contains('@') {
        return Err(err("user info is not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(|| err("unclosed [ in host"))?;
        let port = &v6[end + 1..];
        (&v6[..end], port.strip_prefix(':').unwrap_or(port))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => (authority, ""),
        }
    };
    let port: u16 = if port.is_empty() {
        80
    } else {
        port.parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| err("bad port"))?
    };
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse()
            .map_err(|_| err("host must be an IP literal on loopback (or localhost)"))?
    };
    let loopback = match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    };
    if !loopback {
        return Err(err(
            "refusing a non-loopback address: only 127.0.0.0/8 and ::1 are allowed",
        ));
    }
    Ok(BaseUrl {
        addr: SocketAddr::new(ip, port),
        host: authority.to_string(),
        prefix: path.trim_end_matches('/').to_string(),
    })
}

/// Percent-encodes `s` for a query component (everything but unreserved characters).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request target for `GET /stream` with `topics`.
#[cfg(test)]
pub fn stream_target(prefix: &str, topics: &[String]) -> String {
    stream_target_at(prefix, "/stream", topics)
}

/// The request target for `GET {prefix}{path}` with `topics`.
pub fn stream_target_at(prefix: &str, path: &str, topics: &[String]) -> String {
    let mut t = format!("{prefix}{path}");
    for (i, topic) in topics.iter().enumerate() {
        t.push(if i == 0 { '?' } else { '&' });
        t.push_str("topic=");
        t.push_str(&encode_component(topic));
    }
    t
}

/// A `GET` request head for an event stream, with `Last-Event-ID` when given.
pub fn stream_request(target: &str, host: &str, last_id: Option<&[u8]>) -> Vec<u8> {
    let mut r = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: ssehub-soak\r\n"
    )
    .into_bytes();
    if let Some(id) = last_id {
        r.extend_from_slice(b"Last-Event-ID: ");
        r.extend_from_slice(id);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"\r\n");
    r
}

/// A keep-alive `POST` request with a JSON body.
pub fn post_json(target: &str, host: &str, token: Option<&str>, body: &[u8]) -> Vec<u8> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut r = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ssehub-soak\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes.
    Close,
}

/// The parts of a response head the tool uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` value, if any.
    pub content_type: Option<String>,
    /// Body framing.
    pub framing: Framing,
    /// `Connection: close` was given (or HTTP/1.0 without keep-alive).
    pub close: bool,
}

/// The length of the response head in `buf` (through the blank line), if complete.
pub fn head_len(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses a complete response head (as found by [`head_len`]).
pub fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {status_line:?}"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut head = Head {
        status,
        content_type: None,
        framing: Framing::Close,
        close: version == "HTTP/1.0",
    };
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-type") {
            head.content_type = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().contains("chunked") {
                head.framing = Framing::Chunked;
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if head.framing != Framing::Chunked {
                head.framing = Framing::Length(
                    value
                        .parse()
                        .map_err(|_| format!("bad Content-Length {value:?}"))?,
                );
            }
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                head.close = true;
            } else if v.contains("keep-alive") {
                head.close = false;
            }
        }
    }
    Ok(head)
}

/// Where a [`Dechunker`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size; `any` digits seen; `ext` inside an extension.
    Size { size: u64, any: bool, ext: bool },
    /// Inside chunk data with this many bytes left.
    Data(u64),
    /// After chunk data, expecting CRLF.
    DataEnd,
    /// In the trailer section; `blank` the current line is still empty.
    Trailer { blank: bool },
    /// After the last chunk.
    Done,
}

/// A streaming decoder of `Transfer-Encoding: chunked` bodies.
#[derive(Debug, Clone, Copy)]
pub struct Dechunker {
    state: Chunk,
}

impl Default for Dechunker {
    fn default() -> Self {
        Dechunker {
            state: Chunk::Size {
                size: 0,
                any: false,
                ext: false,
            },
        }
    }
}

impl Dechunker {
    /// Whether the final chunk and trailer were read.
    pub fn is_done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Decodes `input`, passing body pieces to `out`. Errors on malformed framing.
    pub fn feed(&mut self, mut input: &[u8], mut out: impl FnMut(&[u8])) -> Result<(), String> {
        while let Some(&b) = input.first() {
            match &mut self.state {
                Chunk::Size { size, any, ext } => {
                    input = &input[1..];
                    match b {
                        b'\n' => {
                            if !*any {
                                return Err("chunk size missing".into());
                            }
                            self.state = if *size == 0 {
                                Chunk::Trailer { blank: true }
                            } else {
                                Chunk::Data(*size)
                            };
                        }
                        b'\r' => {}
                        _ if *ext => {}
                        b';' | b' ' | b'\t' => *ext = true,
                        _ => {
                            let d = char::from(b).to_digit(16).ok_or("bad chunk size digit")?;
                            *size = size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(u64::from(d)))
                                .ok_or("chunk size overflow")?;
                            *any = true;
                        }
                    }
                }
                Chunk::Data(left) => {
                    let n = input
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    out(&input[..n]);
                    input = &input[n..];
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = Chunk::DataEnd;
                    }
                }
                Chunk::DataEnd => {
                    input = &input[1..];
                    match b {
                        b'\r' => {}
                        b'\n' => {
                            self.state = Chunk::Size {
                                size: 0,
                                any: false,
                                ext: false,
                            }
                        }
                        _ => return Err("missing CRLF after chunk data".into()),
                    }
                }
                Chunk::Trailer { blank } => {
                    input = &input[1..];
                    match b {
                        b'\r' => {}
                        b'\n' if *blank => self.state = Chunk::Done,
                        b'\n' => *blank = true,
                        _ => *blank = false,
                    }
                }
                Chunk::Done => return Ok(()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(u.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(u.prefix, "");
        let u = parse_url("http://[::1]:9/hub/").unwrap();
        assert_eq!(u.addr, "[::1]:9".parse().unwrap());
        assert_eq!(u.prefix, "/hub");
        assert_eq!(parse_url("http://localhost").unwrap().addr.port(), 80);
        assert!(parse_url("http://127.9.8.7:1").is_ok());
        for bad in [
            "https://127.0.0.1:1",
            "http://10.0.0.1:80",
            "http://example.com:80",
            "http://[::2]:80",
            "http://0.0.0.0:80",
            "http://127.0.0.1:0",
            "http://127.0.0.1:x",
            "http://127.0.0.1:80/?a=b",
            "127.0.0.1:80",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn targets_and_requests() {
        assert_eq!(
            stream_target("/p", &["a b".into(), "x&y".into()]),
            "/p/stream?topic=a%20b&topic=x%26y"
        );
        assert_eq!(stream_target_at("", "/sub", &[]), "/sub");
        assert_eq!(
            stream_target_at("/p", "/sub", &["t".into()]),
            "/p/sub?topic=t"
        );
        let r = stream_request("/stream", "h:1", Some(b"42"));
        assert!(
            String::from_utf8(r)
                .unwrap()
                .contains("Last-Event-ID: 42\r\n\r\n")
        );
        let r = String::from_utf8(post_json("/publish", "h", Some("t"), b"{}")).unwrap();
        assert!(r.contains("Authorization: Bearer t\r\n"));
        assert!(r.ends_with("Content-Length: 2\r\n\r\n{}"));
    }

    #[test]
    fn heads() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\nretry: 1";
        let n = head_len(raw).unwrap();
        let h = parse_head(&raw[..n]).unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Close);
        assert_eq!(h.content_type.as_deref(), Some("text/event-stream"));
        assert_eq!(&raw[n..], b"retry: 1");
        let h = parse_head(b"HTTP/1.1 503 Busy\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(
            (h.status, h.framing, h.close),
            (503, Framing::Length(5), true)
        );
        let h = parse_head(b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n").unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
        assert_eq!(head_len(b"HTTP/1.1 200 OK\r\n"), None);
    }

    #[test]
    fn dechunking_any_split() {
        let raw = b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut d = Dechunker::default();
            let mut body = Vec::new();
            let mut at = 0;
            while at < raw.len() {
                let n = rng.usize(1..=(raw.len() - at).min(7));
                d.feed(&raw[at..at + n], |p| body.extend_from_slice(p))
                    .unwrap();
                at += n;
            }
            assert_eq!(body, b"hello 0123456789");
            assert!(d.is_done());
        }
        assert!(Dechunker::default().feed(b"zz\r\n", |_| {}).is_err());
    }
}
