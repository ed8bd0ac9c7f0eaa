//! `GET /ssehub.js`: the browser client (`SsehubSource`, one stream per browser shared by
//! its tabs), embedded in the binary and served with an `ETag`, so a page revalidates it
//! with a `304` instead of downloading it again.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

use super::request::Request;
use crate::http::conditional;
use crate::http::response::Response;

/// The script, as served.
pub const SCRIPT: &str = include_str!("../ssehub.js");

/// How long a browser may use its copy before it asks again (with `If-None-Match`).
/// **Unit:** seconds. **Why:** short, so a hub upgrade reaches pages within minutes;
/// the revalidation is a `304` of a few bytes.
pub const MAX_AGE_SECS: u32 = 300;

/// The script's entity tag: the first 16 hex digits of its SHA-256, quoted.
static ETAG: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(SCRIPT.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
});

/// The answer to `GET`/`HEAD /ssehub.js`: the script, or `304` when the client's
/// `If-None-Match` names its tag (or `412` when an `If-Match` does not, RFC 9110 §13.1.1).
pub(super) fn response(req: &Request) -> Response {
    let etag = ETAG.as_str();
    let cache = format!("public, max-age={MAX_AGE_SECS}");
    if req
        .if_match
        .as_deref()
        .is_some_and(|v| v.trim() != "*" && !v.split(',').any(|t| t.trim() == etag))
    {
        return Response::text(412, "If-Match is false for /ssehub.js");
    }
    let resp = if conditional::none_match(req.if_none_match.as_deref(), etag) {
        Response::with_body(304, "text/plain", Vec::new())
    } else {
        Response::with_body(
            200,
            "text/javascript; charset=utf-8",
            SCRIPT.as_bytes().to_vec(),
        )
    };
    resp.header("ETag", etag).header("Cache-Control", cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_quoted_hex_and_stable() {
        assert_eq!(ETAG.len(), 18);
        assert!(ETAG.starts_with('"') && ETAG.ends_with('"'));
        assert_eq!(*ETAG, *ETAG.clone());
    }

    #[test]
    fn the_script_is_small_and_has_no_imports() {
        assert!(SCRIPT.len() < 24 * 1024, "{} bytes", SCRIPT.len());
        assert!(!SCRIPT.contains("import "), "no dependencies");
        assert!(SCRIPT.contains("class SsehubSource"));
    }
}
