//! Cross-origin access (`--cors-origin`): which response headers a request gets.
//!
//! Without any configured origin no CORS header is ever sent, so a browser page from
//! another origin cannot read the stream. With `*`, any origin may; with a list, the
//! request's `Origin` is echoed back when it is on the list (with `Vary: Origin`).
//!
//! Credentials (cookies, such as a subscriber's token, on an `EventSource` opened with
//! `withCredentials: true`) are allowed only to origins named on the list: those answers
//! also carry `Access-Control-Allow-Credentials: true`. With `*` they are never allowed,
//! and browsers refuse a credentialed request that is answered with `*` anyway.

use crate::http::response::Response;

/// How long a browser may cache a preflight answer. **Unit:** seconds.
pub const PREFLIGHT_MAX_AGE: u32 = 600;

/// The allowed origins, as configured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cors {
    origins: Vec<String>,
}

impl Cors {
    /// CORS for the configured `origins` (`*` for any; empty: off).
    pub(crate) fn new(origins: &[String]) -> Cors {
        Cors {
            origins: origins.to_vec(),
        }
    }

    /// Whether `origin` is allowed: `*` or named on the list (Mercure's CSRF rule for a
    /// publish authorized by a cookie). Without an origin, or with CORS off: no.
    pub(crate) fn allows(&self, origin: Option<&str>) -> bool {
        origin.is_some_and(|o| {
            self.origins
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(o))
        })
    }

    /// Header fields to add for a request whose `Origin` header is `origin`.
    pub(crate) fn headers(&self, origin: Option<&str>) -> Vec<(&'static str, String)> {
        let allowed = &self.origins;
        if allowed.is_empty() {
            return Vec::new();
        }
        if allowed.iter().any(|o| o == "*") {
            return vec![("Access-Control-Allow-Origin", "*".to_owned())];
        }
        match origin {
            Some(o) if allowed.iter().any(|a| a.eq_ignore_ascii_case(o)) => vec![
                ("Access-Control-Allow-Origin", o.to_owned()),
                ("Access-Control-Allow-Credentials", "true".to_owned()),
                ("Vary", "Origin".to_owned()),
            ],
            _ => vec![("Vary", "Origin".to_owned())],
        }
    }

    /// The answer to `OPTIONS`: `204` with `Allow`, and, when CORS is on and the origin
    /// is allowed, the preflight fields a browser needs before `POST /publish`.
    pub(crate) fn preflight(&self, origin: Option<&str>, allow: &str) -> Response {
        let mut resp = Response::with_body(204, "text/plain", Vec::new()).header("Allow", allow);
        let cors = self.headers(origin);
        if cors
            .iter()
            .any(|(n, _)| *n == "Access-Control-Allow-Origin")
        {
            resp = resp
                .header("Access-Control-Allow-Methods", allow)
                .header(
                    "Access-Control-Allow-Headers",
                    "Authorization, Content-Type, Last-Event-ID",
                )
                .header("Access-Control-Max-Age", PREFLIGHT_MAX_AGE.to_string());
        }
        // `send` adds the origin fields themselves, as for every short response.
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(origins: &[&str]) -> Cors {
        Cors::new(&origins.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn no_origins_configured_means_no_headers() {
        assert!(ctx(&[]).headers(Some("http://a.test")).is_empty());
        let r = ctx(&[]).preflight(Some("http://a.test"), "POST, OPTIONS");
        assert!(
            !r.headers
                .iter()
                .any(|(n, _)| n.starts_with("Access-Control"))
        );
    }

    #[test]
    fn listed_origin_is_echoed_and_others_are_not() {
        let c = ctx(&["http://a.test"]);
        assert_eq!(
            c.headers(Some("http://a.test")),
            [
                ("Access-Control-Allow-Origin", "http://a.test".to_owned()),
                ("Access-Control-Allow-Credentials", "true".to_owned()),
                ("Vary", "Origin".to_owned())
            ]
        );
        assert_eq!(
            c.headers(Some("http://b.test")),
            [("Vary", "Origin".to_owned())]
        );
        let r = c.preflight(Some("http://a.test"), "POST, OPTIONS");
        assert!(
            r.headers
                .iter()
                .any(|(n, v)| *n == "Access-Control-Allow-Headers" && v.contains("Authorization"))
        );
    }

    #[test]
    fn star_allows_any_origin() {
        assert_eq!(
            ctx(&["*"]).headers(None),
            [("Access-Control-Allow-Origin", "*".to_owned())]
        );
    }

    #[test]
    fn credentials_only_for_named_origins() {
        let credentials = |c: &Cors, origin: &str| {
            c.headers(Some(origin))
                .iter()
                .any(|(n, v)| *n == "Access-Control-Allow-Credentials" && v == "true")
        };
        let named = ctx(&["http://a.test", "https://b.test"]);
        assert!(credentials(&named, "http://a.test"));
        assert!(credentials(&named, "https://b.test"));
        assert!(!credentials(&named, "http://c.test"));
        assert!(!credentials(&ctx(&["*"]), "http://a.test"));
        assert!(!credentials(&ctx(&["*", "http://a.test"]), "http://a.test"));
        assert!(!credentials(&ctx(&[]), "http://a.test"));
        // The preflight of a named origin says so too (send adds the origin fields).
        let r = named.preflight(Some("http://a.test"), "GET, HEAD, OPTIONS");
        assert!(
            r.headers
                .iter()
                .any(|(n, _)| *n == "Access-Control-Allow-Methods")
        );
    }
}
