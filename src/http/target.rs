//! Request-target parsing (RFC 9112 §3.2) and query-string decoding.

use std::borrow::Cow;

use super::error::ParseError;

/// The scheme of an absolute-form target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`
    Http,
    /// `https://`: ssehub's socket is cleartext, so the caller refuses it (RFC 9110 §7.4).
    Https,
}

/// A request-target split into path and query.
///
/// Accepted forms (RFC 9112 §3.2):
/// - origin-form `/path?query`;
/// - absolute-form `http://host[:port]/path?query` (also `https://`, scheme
///   case-insensitive, reported in `scheme`), where the authority is validated
///   and then ignored (RFC 9112 §3.2.2); an empty path becomes `/`;
/// - asterisk-form `*`, reported with `asterisk == true` and path `*`.
///
/// Both `path` and `query` are raw (still percent-encoded) slices of the
/// input; the query excludes the `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'b> {
    /// The path component, as sent (not percent-decoded). Always starts with
    /// `/` except for asterisk-form, where it is `*`.
    pub path: &'b str,
    /// The query component without the leading `?`, if a `?` was present.
    pub query: Option<&'b str>,
    /// Whether the target was the asterisk-form `*` (only meaningful for
    /// `OPTIONS`).
    pub asterisk: bool,
    /// The scheme of an absolute-form target; `None` for the other forms.
    pub scheme: Option<Scheme>,
}

/// Splits a raw request-target into path and query.
///
/// Every byte must be visible ASCII (0x21..=0x7E); characters that RFC 3986
/// does not allow in a path but that are visible ASCII (e.g. `"` or `|`) are
/// accepted as sent.
///
/// # Errors
///
/// Returns [`ParseError::InvalidTarget`] if `raw` is empty, contains a byte
/// outside 0x21..=0x7E, contains a fragment (`#`), is in authority-form
/// (e.g. `example.com:443`, only used with `CONNECT`), uses a scheme other
/// than `http`/`https`, or is an absolute-form target whose authority is
/// empty, carries userinfo, or is not a valid `host[:port]`.
pub fn parse_target(raw: &str) -> Result<Target<'_>, ParseError> {
    if raw.is_empty() || !raw.bytes().all(|b| (0x21..=0x7E).contains(&b) && b != b'#') {
        return Err(ParseError::InvalidTarget);
    }
    if raw == "*" {
        return Ok(Target {
            path: "*",
            query: None,
            asterisk: true,
            scheme: None,
        });
    }
    let (scheme, rest) = if raw.starts_with('/') {
        (None, raw)
    } else {
        let (scheme, after_scheme) = strip_prefix_ignore_case(raw, "http://")
            .map(|rest| (Scheme::Http, rest))
            .or_else(|| strip_prefix_ignore_case(raw, "https://").map(|rest| (Scheme::Https, rest)))
            .ok_or(ParseError::InvalidTarget)?;
        let end = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
        let (authority, rest) = after_scheme
            .split_at_checked(end)
            .unwrap_or((after_scheme, ""));
        if authority.is_empty() || !is_valid_host_port(authority.as_bytes()) {
            return Err(ParseError::InvalidTarget);
        }
        (Some(scheme), rest)
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    Ok(Target {
        path: if path.is_empty() { "/" } else { path },
        query,
        asterisk: false,
        scheme,
    })
}

/// Whether `raw` is an authority-form target, `uri-host ":" port` (RFC 9112 §3.2.3), the
/// form `CONNECT` uses.
pub fn is_authority_form(raw: &str) -> bool {
    let port = if raw.starts_with('[') {
        raw.find(']').and_then(|i| raw.get(i + 1..))
    } else {
        raw.find(':').and_then(|i| raw.get(i..))
    };
    port.is_some_and(|p| p.len() > 1 && p.starts_with(':')) && is_valid_host_port(raw.as_bytes())
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Whether `a` is a valid `uri-host [ ":" port ]` (RFC 3986 §3.2.2, §3.2.3)
/// with a non-empty host. IP literals are accepted as `[` hex digits, `:`
/// and `.` `]`; the port, if present, is at most 65535 (an empty port after
/// `:` is allowed, as RFC 3986 does).
pub(crate) fn is_valid_host_port(a: &[u8]) -> bool {
    let port = if let Some(rest) = a.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let (literal, after) = rest.split_at(close);
        if literal.is_empty()
            || !literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after.get(1..).unwrap_or_default() {
            [] => None,
            [b':', port @ ..] => Some(port),
            _ => return false,
        }
    } else {
        let (host, port) = match a.iter().position(|&b| b == b':') {
            Some(colon) => {
                let (host, port) = a.split_at(colon);
                (host, Some(port.get(1..).unwrap_or_default()))
            }
            None => (a, None),
        };
        if host.is_empty() || !is_reg_name(host) {
            return false;
        }
        port
    };
    match port {
        None => true,
        Some(p) => {
            p.len() <= 5
                && p.iter().all(u8::is_ascii_digit)
                && p.iter()
                    .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'))
                    <= 65535
        }
    }
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`.
fn is_reg_name(host: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = host.get(i) {
        match b {
            b'%' => {
                let hex = |j: usize| host.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
                continue;
            }
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'=' => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// Iterates the `key=value` pairs of a query string (without the `?`).
///
/// Pairs are separated by `&`; empty pairs are skipped; a pair without `=`
/// yields an empty value. Keys and values are percent-decoded with `+`
/// meaning space (`application/x-www-form-urlencoded` style). Malformed
/// percent escapes are kept literally, and invalid UTF-8 after decoding is
/// replaced lossily with U+FFFD. Values are borrowed when nothing needed
/// decoding.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key, true), decode(value, true))
    })
}

/// Percent-decodes `s` (RFC 3986 §2.1), leaving `+` as is.
///
/// Malformed escapes (a `%` not followed by two hex digits) are kept
/// literally; invalid UTF-8 after decoding is replaced lossily with U+FFFD.
/// Returns the input borrowed when it contains no `%`.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    decode(s, false)
}

fn decode(s: &str, plus_as_space: bool) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    if !bytes
        .iter()
        .any(|&b| b == b'%' || (plus_as_space && b == b'+'))
    {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&h| hex_value(h));
                let lo = bytes.get(i + 2).and_then(|&l| hex_value(l));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push((hi << 4) | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_as_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `target!(name, raw, path, query)` for origin-form, `target!(name, raw, scheme,
    /// path, query)` for absolute-form.
    macro_rules! target {
        ($name:ident, $raw:expr, $path:expr, $query:expr) => {
            target!(@ $name, $raw, None, $path, $query);
        };
        ($name:ident, $raw:expr, $scheme:ident, $path:expr, $query:expr) => {
            target!(@ $name, $raw, Some(Scheme::$scheme), $path, $query);
        };
        (@ $name:ident, $raw:expr, $scheme:expr, $path:expr, $query:expr) => {
            #[test]
            fn $name() {
                assert_eq!(
                    parse_target($raw),
                    Ok(Target {
                        path: $path,
                        query: $query,
                        asterisk: false,
                        scheme: $scheme,
                    })
                );
            }
        };
    }

    macro_rules! bad_target {
        ($name:ident, $raw:expr) => {
            #[test]
            fn $name() {
                assert_eq!(parse_target($raw), Err(ParseError::InvalidTarget));
            }
        };
    }

    target!(origin_root, "/", "/", None);
    target!(
        origin_path_query,
        "/events?topic=a&x",
        "/events",
        Some("topic=a&x")
    );
    target!(origin_empty_query, "/p?", "/p", Some(""));
    target!(origin_query_with_question, "/p?a?b", "/p", Some("a?b"));
    target!(
        absolute_form,
        "http://example.com/p?q=1",
        Http,
        "/p",
        Some("q=1")
    );
    target!(
        absolute_form_port,
        "http://example.com:8080/p",
        Http,
        "/p",
        None
    );
    target!(
        absolute_form_https_upper,
        "HTTPS://Example.com/x",
        Https,
        "/x",
        None
    );
    target!(
        absolute_form_http_upper,
        "HTTP://Example.com/x",
        Http,
        "/x",
        None
    );
    target!(
        absolute_form_empty_path,
        "http://example.com",
        Http,
        "/",
        None
    );
    target!(
        absolute_form_empty_path_query,
        "http://example.com?a=b",
        Http,
        "/",
        Some("a=b")
    );
    target!(absolute_form_ipv6, "http://[::1]:80/", Http, "/", None);
    target!(absolute_form_ipv4, "http://127.0.0.1/s", Http, "/s", None);

    bad_target!(empty, "");
    bad_target!(authority_form, "example.com:443");
    bad_target!(relative, "events");
    bad_target!(fragment, "/p#frag");
    bad_target!(fragment_in_query, "/p?a#frag");
    bad_target!(space, "/a b");
    bad_target!(non_ascii, "/caf\u{e9}");
    bad_target!(other_scheme, "ftp://example.com/");
    bad_target!(absolute_empty_authority, "http:///p");
    bad_target!(absolute_userinfo, "http://user@example.com/");
    bad_target!(absolute_bad_port, "http://example.com:99999/");
    bad_target!(absolute_port_letters, "http://example.com:8a/");
    bad_target!(absolute_unclosed_ipv6, "http://[::1/");
    bad_target!(absolute_bad_pct, "http://exa%zzmple/");

    #[test]
    fn asterisk_form() {
        assert_eq!(
            parse_target("*"),
            Ok(Target {
                path: "*",
                query: None,
                asterisk: true,
                scheme: None,
            })
        );
        assert_eq!(parse_target("**"), Err(ParseError::InvalidTarget));
    }

    #[test]
    fn authority_form_is_host_and_port() {
        for ok in ["example.com:443", "[::1]:80", "127.0.0.1:8080"] {
            assert!(is_authority_form(ok), "{ok}");
        }
        for bad in [
            "example.com",
            "example.com:",
            ":443",
            "/p",
            "*",
            "u@h:1",
            "[::1]",
        ] {
            assert!(!is_authority_form(bad), "{bad}");
        }
    }

    #[test]
    fn host_port_validation() {
        for ok in [
            &b"example.com"[..],
            b"example.com:",
            b"example.com:65535",
            b"[::1]",
            b"[::1]:443",
            b"a%20b",
            b"127.0.0.1:8080",
        ] {
            assert!(is_valid_host_port(ok), "{ok:?}");
        }
        for bad in [
            &b""[..],
            b":80",
            b"a b",
            b"a/b",
            b"u@h",
            b"h:65536",
            b"h:1:2",
            b"[]",
            b"[::1]x",
            b"[::1",
            b"h%2",
        ] {
            assert!(!is_valid_host_port(bad), "{bad:?}");
        }
    }

    #[test]
    fn percent_decode_cases() {
        assert!(matches!(percent_decode("/plain"), Cow::Borrowed("/plain")));
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("a+b"), "a+b");
        assert_eq!(percent_decode("%41%6a"), "Aj");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "\u{e9}");
        assert_eq!(percent_decode("%FF"), "\u{fffd}");
    }

    #[test]
    fn query_pairs_cases() {
        let pairs: Vec<(String, String)> = query_pairs("a=1&&b=x+y&c&d=%2B%26&=e&f=%zz")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let expected: Vec<(String, String)> = [
            ("a", "1"),
            ("b", "x y"),
            ("c", ""),
            ("d", "+&"),
            ("", "e"),
            ("f", "%zz"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(pairs, expected);
        assert_eq!(query_pairs("").count(), 0);
        assert!(
            query_pairs("k=v")
                .all(|(k, v)| matches!((k, v), (Cow::Borrowed("k"), Cow::Borrowed("v"))))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_target_never_panics(raw in "\\PC{0,40}") {
            if let Ok(t) = parse_target(&raw) {
                prop_assert!(t.asterisk || t.path.starts_with('/'));
            }
        }

        #[test]
        fn decode_roundtrips_unreserved(s in "[A-Za-z0-9._~-]{0,30}") {
            prop_assert_eq!(percent_decode(&s), s.as_str());
            let encoded: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
            prop_assert_eq!(percent_decode(&encoded), s.as_str());
        }

        #[test]
        fn query_pairs_never_panic(q in "\\PC{0,40}") {
            for (k, v) in query_pairs(&q) {
                prop_assert!(k.len() + v.len() <= q.len() * 3);
            }
        }
    }
}
