//! Reading one cookie out of a `Cookie` request header (RFC 6265 §5.4, §4.2).

/// The value of the first cookie named `name` in `header` (a `Cookie` field value), or
/// `None`.
///
/// The header is `name=value` pairs separated by `;`: each pair is trimmed of spaces and
/// tabs, split at its first `=`, and names are compared exactly (cookie names are
/// case-sensitive). The first pair with the name wins, as a browser sends the cookie with
/// the longest path first. A value in double quotes loses them. A pair without `=` is no
/// cookie.
///
/// # Examples
///
/// ```
/// use ssehub::auth::cookie;
/// let h = "theme=dark; mercureAuthorization=abc.def.ghi; x=1";
/// assert_eq!(cookie(h, "mercureAuthorization"), Some("abc.def.ghi"));
/// assert_eq!(cookie(h, "MercureAuthorization"), None);
/// assert_eq!(cookie("a=\"quoted\"", "a"), Some("quoted"));
/// ```
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        (n.trim_matches([' ', '\t']) == name).then(|| unquote(v.trim_matches([' ', '\t'])))
    })
}

/// `"v"` → `v`; anything else as it is.
fn unquote(v: &str) -> &str {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner,
        None => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("a=1", "a", Some("1")),
            ("a=1; b=2", "b", Some("2")),
            ("a=1;b=2", "b", Some("2")),
            ("  a = 1 ;\tb=2\t", "a", Some("1")),
            ("a=1; a=2", "a", Some("1")),
            ("b=1", "a", None),
            ("", "a", None),
            ("a", "a", None),
            ("a; a=3", "a", Some("3")),
            ("aa=1; a=2", "a", Some("2")),
            ("A=1", "a", None),
            ("a=", "a", Some("")),
            ("a=x=y", "a", Some("x=y")),
            ("a=\"q\"", "a", Some("q")),
            ("a=\"", "a", Some("\"")),
            ("t=eyJ.eyJ.sig; other=1", "t", Some("eyJ.eyJ.sig")),
        ];
        for &(header, name, want) in cases {
            assert_eq!(cookie(header, name), want, "{header:?} {name:?}");
        }
    }
}
