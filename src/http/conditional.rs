//! Conditional requests (RFC 9110 §13) for a server without validators: ssehub sends no
//! `ETag` and no `Last-Modified` (but on `/ssehub.js`, see [`none_match`]), so no entity
//! tag ever matches, and only `*` can be true.
//!
//! Pure: the caller says whether the target has a current representation and what the
//! method is, and evaluates only when the answer would otherwise be 2xx and the method
//! is not `OPTIONS` (§13.2.1). The date preconditions and `If-Range` are not evaluated:
//! without a modification date a recipient must ignore them (§13.1.3–§13.1.5).

/// A precondition that evaluated to false: the answer instead of performing the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// `304` (If-None-Match on GET or HEAD) or `412`.
    pub status: u16,
    /// The field that was false.
    pub field: &'static str,
}

/// Evaluates `If-Match`, then `If-None-Match` (the order of §13.2.2), given their values
/// (all field lines joined with `, `). `None`: perform the method.
///
/// - `If-Match: *` is true when the target has a current representation; a list of
///   entity tags is always false (§13.1.1). False → `412`.
/// - `If-None-Match: *` is false when the target has a current representation; a list is
///   always true (§13.1.2). False → `304` for GET and HEAD, else `412`.
pub fn evaluate(
    if_match: Option<&str>,
    if_none_match: Option<&str>,
    has_representation: bool,
    get_or_head: bool,
) -> Option<Failed> {
    if let Some(v) = if_match
        && !(is_star(v) && has_representation)
    {
        return Some(Failed {
            status: 412,
            field: "If-Match",
        });
    }
    match if_none_match {
        Some(v) if is_star(v) && has_representation => Some(Failed {
            status: if get_or_head { 304 } else { 412 },
            field: "If-None-Match",
        }),
        _ => None,
    }
}

/// Whether `If-None-Match` (`if_none_match`, all field lines joined) is false for a
/// representation whose entity tag is `etag` (quoted, as sent in `ETag`): `*`, or a
/// listed tag equal to it by the weak comparison (§8.8.3.2, `W/` ignored). A GET or
/// HEAD then gets `304` (§13.1.2).
pub fn none_match(if_none_match: Option<&str>, etag: &str) -> bool {
    let Some(v) = if_none_match else {
        return false;
    };
    let weak = |t: &str| {
        let t = t.trim_matches([' ', '\t']);
        t.strip_prefix("W/").unwrap_or(t).to_owned()
    };
    is_star(v) || v.split(',').any(|t| weak(t) == weak(etag))
}

fn is_star(value: &str) -> bool {
    value.trim_matches([' ', '\t']) == "*"
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn failed(status: u16, field: &'static str) -> Option<Failed> {
        Some(Failed { status, field })
    }

    #[test]
    fn none_match_compares_weakly() {
        let tag = "\"abc\"";
        for (value, want) in [
            (None, false),
            (Some("*"), true),
            (Some("\"abc\""), true),
            (Some("W/\"abc\""), true),
            (Some("\"x\", \"abc\""), true),
            (Some("\"x\""), false),
            (Some("abc"), false),
            (Some(""), false),
        ] {
            assert_eq!(none_match(value, tag), want, "{value:?}");
        }
    }

    #[test]
    fn truth_table() {
        let im = failed(412, "If-Match");
        /// If-Match, If-None-Match, has a representation, GET or HEAD; the outcome.
        type Case = (Option<&'static str>, Option<&'static str>, bool, bool);
        let table: &[(Case, Option<Failed>)] = &[
            ((None, None, true, true), None),
            ((None, None, false, false), None),
            ((Some("*"), None, true, true), None),
            ((Some("*"), None, false, false), im),
            ((Some("\"v1\""), None, true, true), im),
            ((Some("W/\"a\", \"b\""), None, true, false), im),
            ((Some(""), None, true, true), im),
            ((None, Some("*"), true, true), failed(304, "If-None-Match")),
            ((None, Some("*"), true, false), failed(412, "If-None-Match")),
            ((None, Some("*"), false, false), None),
            ((None, Some("\"a\", W/\"b\""), true, true), None),
            ((None, Some("*, *"), true, true), None),
            // If-Match first: its 412 wins over If-None-Match's 304.
            ((Some("\"a\""), Some("*"), true, true), im),
            (
                (Some("*"), Some("*"), true, true),
                failed(304, "If-None-Match"),
            ),
        ];
        for &((if_match, if_none_match, has_rep, get), want) in table {
            assert_eq!(
                evaluate(if_match, if_none_match, has_rep, get),
                want,
                "{if_match:?} {if_none_match:?} {has_rep} {get}"
            );
        }
    }
}
