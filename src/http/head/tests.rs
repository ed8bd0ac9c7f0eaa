use super::*;
use crate::http::framing::framing;
use proptest::prelude::*;

pub(super) const LIMITS: HeadLimits = HeadLimits {
    max_request_line: DEFAULT_MAX_REQUEST_LINE,
    max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
    max_headers: DEFAULT_MAX_HEADERS,
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

const SIMPLE: &[u8] =
    b"GET /events?topic=a HTTP/1.1\r\nHost: example.com\r\nAccept: text/event-stream\r\n\r\n";

req!(simple_get, SIMPLE, |head| {
    assert_eq!(head.method, "GET");
    assert_eq!(head.target, "/events?topic=a");
    assert_eq!(head.minor_version, 1);
    assert_eq!(head.headers.len(), 2);
    let headers: Vec<Header<'_>> = head.headers.iter().collect();
    assert_eq!(headers[0].name, "Host");
    assert_eq!(headers[0].value, b"example.com");
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
        assert_eq!(head.headers.get(1).map(|h| h.name), Some("HOST"));
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
        max_headers: 2,
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

// The resumable parser.

/// Small limits, to reach each of them in a few bytes.
const SMALL: HeadLimits = HeadLimits {
    max_request_line: 14,
    max_head_bytes: 40,
    max_headers: 2,
};

/// Feeds `buf` to one [`HeadParser`] in reads of the sizes in `reads` (cycled) and checks,
/// after each read, that the outcome is `parse_head`'s on the bytes so far and that each
/// byte so far was examined exactly once. Returns the first outcome that is not partial
/// (or partial at the end), as `outcome` gives it, and the bytes given by then.
fn feed(
    buf: &[u8],
    reads: &[usize],
    limits: HeadLimits,
) -> (Result<Option<usize>, ParseError>, usize) {
    let mut parser = HeadParser::new(limits);
    let mut end = 0;
    for read in reads.iter().cycle() {
        end = (end + read).min(buf.len());
        let mut headers = vec![EMPTY_HEADER; limits.max_headers];
        let want = parse_head(&buf[..end], &mut headers, limits);
        let got = parser.parse(&buf[..end]);
        assert_eq!(got, want, "reads of {reads:?}, {end} bytes given");
        let got = got.map(|status| match status {
            Status::Complete(head) => Some(head.len),
            Status::Partial => None,
        });
        // No byte examined twice, and none past the head or the first bad byte.
        assert_eq!(parser.examined, parser.pos);
        match got {
            Ok(None) => assert_eq!(parser.pos, end),
            Ok(Some(len)) => assert_eq!(parser.pos, len),
            Err(_) => assert!(parser.pos <= end),
        }
        if got != Ok(None) || end == buf.len() {
            return (got, end);
        }
    }
    unreachable!("reads is not empty")
}

#[test]
fn resumable_byte_at_a_time_gives_the_same_head() {
    let bufs: [&[u8]; 4] = [
        SIMPLE,
        b"\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET",
        b"GET / HTTP/1.1\r\nA: \t x  y \t\r\nB:\r\nC: caf\xc3\xa9\r\n\r\n",
    ];
    for buf in bufs {
        let mut headers = [EMPTY_HEADER; DEFAULT_MAX_HEADERS];
        let whole = complete(buf, &mut headers);
        let mut parser = HeadParser::new(LIMITS);
        for end in 0..whole.len {
            assert_eq!(parser.parse(&buf[..end]), Ok(Status::Partial), "{end}");
            assert_eq!(parser.head(&buf[..end]), None);
        }
        assert_eq!(parser.parse(&buf[..whole.len]), Ok(Status::Complete(whole)));
        assert_eq!(parser.head(buf), Some(whole));
        assert_eq!(parser.examined, whole.len);
        // Complete: the head again, nothing examined, the body left alone.
        assert_eq!(parser.parse(buf), Ok(Status::Complete(whole)));
        assert_eq!(parser.examined, whole.len);
    }
}

#[test]
fn resumable_every_read_size_matches_parse_head() {
    let cases: [(&[u8], HeadLimits); 16] = [
        (SIMPLE, LIMITS),
        (b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nbody", LIMITS),
        (b"GET / HTTP/1.1\nHost: a\n\n", LIMITS),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\n", LIMITS),
        (b"\rGET / HTTP/1.1\r\n\r\n", LIMITS),
        (b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", LIMITS),
        (b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", LIMITS),
        (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", LIMITS),
        (b"GET /a\0 HTTP/1.1\r\n\r\n", LIMITS),
        (b"GET / HTTP/2.0\r\n\r\n", LIMITS),
        (b"GET / HTTP/1.10\r\n\r\n", LIMITS),
        (b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", SMALL),
        (b"GET /abcdefghijklmnop HTTP/1.1\r\n\r\n", SMALL),
        (b"GET /abcdefgh HTTP/1.1\r\n\r\n", SMALL),
        (
            b"GET / HTTP/1.1\r\nA: 12345678901234567890123\r\n\r\n",
            SMALL,
        ),
        (b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n", SMALL),
    ];
    for (buf, limits) in cases {
        let mut headers = vec![EMPTY_HEADER; limits.max_headers];
        let whole = outcome_with(parse_head(buf, &mut headers, limits));
        for read in 1..=buf.len() {
            let (got, _) = feed(buf, &[read], limits);
            match whole {
                Ok(_) => assert_eq!(got, whole, "{read}-byte reads"),
                Err(_) => assert!(got.is_err(), "{read}-byte reads: {got:?}"),
            }
        }
    }
}

fn outcome_with(
    result: Result<Status<Head<'_, '_>>, ParseError>,
) -> Result<Option<usize>, ParseError> {
    result.map(|status| match status {
        Status::Complete(head) => Some(head.len),
        Status::Partial => None,
    })
}

#[test]
fn resumable_errors_stay() {
    let mut parser = HeadParser::new(LIMITS);
    assert_eq!(parser.parse(b"GE\0"), Err(ParseError::InvalidMethod));
    let examined = parser.examined;
    assert_eq!(
        parser.parse(b"GE\0 / HTTP/1.1\r\n\r\n"),
        Err(ParseError::InvalidMethod)
    );
    assert_eq!(parser.examined, examined);
    assert_eq!(parser.head(b"GE\0 / HTTP/1.1\r\n\r\n"), None);
    parser.reset();
    assert!(matches!(
        parser.parse(b"GET / HTTP/1.0\r\n\r\n"),
        Ok(Status::Complete(_))
    ));
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

/// Pieces of heads, valid and not, for inputs that reach every state and error.
fn soup() -> impl Strategy<Value = &'static [u8]> {
    prop::sample::select(vec![
        &b"\r\n"[..],
        b"\r",
        b"\n",
        b" ",
        b"\t",
        b":",
        b"GET",
        b"/",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"HTTP/2.0",
        b"HTTP/1.",
        b"GET / HTTP/1.1\r\n",
        b"Host: a\r\n",
        b"X",
        b"\0",
        b"\x7f",
        b"\xff",
        b"abc",
        b"(",
    ])
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
        let limits = HeadLimits { max_request_line: 100, max_head_bytes: 300, max_headers: 4 };
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
    fn resumable_split_invariance(
        buf in prop_oneof![
            generated().prop_map(|r| r.bytes()),
            prop::collection::vec(soup(), 0..40).prop_map(|t| t.concat()),
        ],
        reads in prop::collection::vec(1usize..24, 1..8),
        small in any::<bool>(),
    ) {
        let limits = if small { SMALL } else { LIMITS };
        let mut headers = vec![EMPTY_HEADER; limits.max_headers];
        let whole = parse_head(&buf, &mut headers, limits);
        let (outcome, _) = feed(&buf, &reads, limits);
        match whole {
            Ok(Status::Complete(head)) => prop_assert_eq!(outcome, Ok(Some(head.len))),
            Ok(Status::Partial) => prop_assert_eq!(outcome, Ok(None)),
            // An earlier read may have stopped at a limit before the byte that decides
            // the whole buffer's error: an error all the same.
            Err(_) => prop_assert!(outcome.is_err()),
        }
    }
}
