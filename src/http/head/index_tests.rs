//! The header index of a [`HeadParser`]: allocated on the first field, reused across
//! keep-alive requests, grown for a long head up to the limit.

use super::tests::LIMITS;
use super::*;

#[test]
fn reset_reuses_the_header_index() {
    let mut buf =
        b"GET /a HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n".to_vec();
    let mut parser = HeadParser::new(LIMITS);
    assert_eq!(parser.limits(), LIMITS);
    assert_eq!(
        parser.fields.capacity(),
        0,
        "nothing allocated before a field"
    );
    let Ok(Status::Complete(head)) = parser.parse(&buf) else {
        panic!("first head");
    };
    assert_eq!((head.target, head.headers.len()), ("/a", 2));
    assert_eq!(
        head.headers.get(1),
        Some(Header {
            name: "X",
            value: b"1"
        })
    );
    assert_eq!(head.headers.get(2), None);
    let len = head.len;
    let index = (parser.fields.as_ptr(), parser.fields.capacity());
    assert_eq!(index.1, INITIAL_FIELDS.min(DEFAULT_MAX_HEADERS));

    buf.drain(..len);
    parser.reset();
    assert_eq!(parser.head(&buf), None);
    let Ok(Status::Complete(head)) = parser.parse(&buf) else {
        panic!("second head");
    };
    assert_eq!((head.target, head.header("host")), ("/b", Some(&b"b"[..])));
    assert_eq!(head.headers.len(), 1);
    assert_eq!(head.len, buf.len());
    assert_eq!((parser.fields.as_ptr(), parser.fields.capacity()), index);
    assert_eq!(parser.examined, buf.len());
}

#[test]
fn a_long_head_grows_the_index_up_to_the_limit() {
    let fields = DEFAULT_MAX_HEADERS;
    let mut head = String::from("GET / HTTP/1.1\r\n");
    for i in 0..fields {
        head.push_str(&format!("X-{i}: {i}\r\n"));
    }
    head.push_str("\r\n");
    let mut parser = HeadParser::new(LIMITS);
    let Ok(Status::Complete(parsed)) = parser.parse(head.as_bytes()) else {
        panic!("a head of exactly max_headers fields");
    };
    assert_eq!(parsed.headers.len(), fields);
    assert_eq!(
        parsed.headers.get(fields - 1).map(|h| h.value),
        Some(format!("{}", fields - 1).as_bytes())
    );
    assert!(parser.fields.capacity() >= fields);
    // One field more is still refused.
    let mut over = head.trim_end_matches("\r\n").to_owned();
    over.push_str("\r\nX-over: 1\r\n\r\n");
    let mut parser = HeadParser::new(LIMITS);
    assert!(parser.parse(over.as_bytes()).is_err());
}
