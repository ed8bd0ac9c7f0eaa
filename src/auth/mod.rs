//! Subscriber and publisher authorization with signed tokens (JWT: HS256, RS256 or ES256,
//! pinned by configuration), in the claim shapes Mercure uses, so tokens minted for a
//! Mercure hub work here unchanged. Mercure 0.x:
//!
//! ```json
//! {"mercure": {"subscribe": ["orders/*", "alerts"], "publish": ["alerts"]},
//!  "exp": 1900000000, "nbf": 1700000000}
//! ```
//!
//! Mercure 1.0: an RFC 9068 access token (header `typ: at+jwt`) with `iss`, `aud` and
//! `exp` (the issuer and audience the hub expects: `--jwt-issuer`, `--jwt-audience`) and
//! its rights in RFC 9396 `authorization_details`:
//!
//! ```json
//! {"iss": "https://example.com", "aud": "https://hub.example.com/.well-known/mercure",
//!  "exp": 1900000000, "authorization_details": [
//!   {"type": "https://mercure.rocks/authorization-detail", "actions": ["subscribe"],
//!    "topics": [{"match": "alerts"}, {"match": "/books/:id", "match_type": "urlpattern"}]}]}
//! ```
//!
//! | file | concept |
//! |---|---|
//! | `mod.rs` (this) | where a token comes from, the subscribe mode |
//! | `jwt.rs` | verification: the pinned algorithm (HS256, RS256, ES256), both claim shapes, size caps, `exp`/`nbf` with a leeway |
//! | `jwt/jose.rs` | the header and the claims as strict types: a wrong type refuses the token |
//! | `selector.rs` | selectors: exact names, `*`, prefixes like `orders/*`; by Mercure's rules on its path (`*` only, URI templates) |
//! | `cookie.rs` | one cookie out of a `Cookie` header |
//!
//! # Where a subscriber's token comes from
//!
//! The first one found wins, in this order ([`Credentials::token`]):
//!
//! 1. `Authorization: Bearer <token>` (curl, servers);
//! 2. the cookie (default name [`DEFAULT_COOKIE`], as Mercure's), since a browser's
//!    `EventSource` cannot send a header; then Mercure 1.0's [`ACCESS_COOKIE`];
//! 3. the query parameter `?authorization=<token>`, for clients that can do neither.
//!    URLs end up in access logs, proxies and browser history: prefer the others. A
//!    Mercure 1.0 access token (`typ: at+jwt`) is refused there with `400
//!    invalid_request`, as Mercure 1.0 takes none in the query ([`is_access_token`]).
//!
//! # What a token grants
//!
//! A private event reaches only subscribers whose token's `subscribe` selectors match
//! its topic; public events reach everyone. A stream opened with a token ends when the
//! token expires. A token whose `publish` selectors match a topic may publish there.
//! Verification uses RustCrypto's `hmac`, `sha2`, `rsa` and `p256` and the `base64`
//! crate; nothing cryptographic is written here.

mod cookie;
mod jwt;
mod selector;

pub use cookie::cookie;
pub use jwt::{
    Claims, Key, LEEWAY, MAX_PAYLOAD_BYTES, MAX_TOKEN_BYTES, MIN_KEY_BYTES, MIN_RSA_BITS, Payload,
    TokenError, is_access_token, verify,
};
pub use selector::{MAX_SELECTOR_BYTES, MAX_SELECTORS, Selector, Selectors};

/// The cookie a subscriber's token is read from unless `--jwt-cookie` names another:
/// Mercure's, so pages written for Mercure work unchanged.
pub const DEFAULT_COOKIE: &str = "mercureAuthorization";

/// The cookie Mercure 1.0 reads an access token from, looked at after the configured
/// one (`--jwt-cookie`).
pub const ACCESS_COOKIE: &str = "__Secure-mercure_access_token";

/// The query parameter a subscriber's token is read from.
pub const QUERY_PARAM: &str = "authorization";

/// Whether `GET /stream` needs a token (`--subscribe-auth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubscribeAuth {
    /// Without a token a stream gets public events only (the default: streams opened
    /// before tokens existed go on working). A token that is sent must still be valid.
    #[default]
    Optional,
    /// Every stream needs a valid token: `401` without one.
    Required,
}

impl SubscribeAuth {
    /// The name used in flags and `/stats`.
    pub fn label(self) -> &'static str {
        match self {
            SubscribeAuth::Optional => "optional",
            SubscribeAuth::Required => "required",
        }
    }
}

/// Where a token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `Authorization: Bearer`.
    Header,
    /// The cookie.
    Cookie,
    /// `?authorization=`.
    Query,
}

/// The parts of a request a token may come from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The `Authorization` header field value.
    pub authorization: Option<&'a str>,
    /// The `Cookie` header field value.
    pub cookie: Option<&'a str>,
    /// The name of the cookie that holds the token.
    pub cookie_name: &'a str,
    /// The decoded `?authorization=` query parameter.
    pub query: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    /// The token and where it came from: the first non-empty one of the bearer header,
    /// the cookie and the query parameter (see the [module docs](self)).
    ///
    /// # Examples
    ///
    /// ```
    /// use ssehub::auth::{Credentials, Source};
    /// let c = Credentials {
    ///     authorization: Some("Basic dXNlcg=="),
    ///     cookie: Some("mercureAuthorization=from.the.cookie"),
    ///     cookie_name: "mercureAuthorization",
    ///     query: Some("from.the.query"),
    /// };
    /// // Not a bearer header: the cookie comes next.
    /// assert_eq!(c.token(), Some((Source::Cookie, "from.the.cookie")));
    /// ```
    pub fn token(&self) -> Option<(Source, &'a str)> {
        let header = self
            .authorization
            .and_then(bearer)
            .map(|t| (Source::Header, t));
        let cookie = |name| {
            self.cookie
                .and_then(|c| cookie(c, name))
                .map(|t| (Source::Cookie, t))
        };
        let query = || self.query.map(|t| (Source::Query, t.trim()));
        [
            header,
            cookie(self.cookie_name),
            cookie(ACCESS_COOKIE),
            query(),
        ]
        .into_iter()
        .flatten()
        .find(|(_, t)| !t.is_empty())
    }
}

/// The token of an `Authorization: Bearer <token>` field value, or `None` for another
/// scheme. The scheme is case-insensitive (RFC 9110 §11.1); the token is trimmed.
///
/// # Examples
///
/// ```
/// use ssehub::auth::bearer;
/// assert_eq!(bearer("Bearer abc"), Some("abc"));
/// assert_eq!(bearer("bEaReR   abc "), Some("abc"));
/// assert_eq!(bearer("Basic abc"), None);
/// assert_eq!(bearer("Bearerabc"), None);
/// ```
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once([' ', '\t'])?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches([' ', '\t']))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds<'a>(
        authorization: Option<&'a str>,
        cookie: Option<&'a str>,
        query: Option<&'a str>,
    ) -> Credentials<'a> {
        Credentials {
            authorization,
            cookie,
            cookie_name: DEFAULT_COOKIE,
            query,
        }
    }

    #[test]
    fn the_first_source_found_wins() {
        let cookie = Some("mercureAuthorization=c");
        let table: &[(Credentials<'_>, Option<(Source, &str)>)] = &[
            (creds(None, None, None), None),
            (
                creds(Some("Bearer h"), cookie, Some("q")),
                Some((Source::Header, "h")),
            ),
            (
                creds(Some("Basic x"), cookie, Some("q")),
                Some((Source::Cookie, "c")),
            ),
            (creds(None, cookie, Some("q")), Some((Source::Cookie, "c"))),
            (
                creds(None, Some("other=c"), Some("q")),
                Some((Source::Query, "q")),
            ),
            (creds(None, None, Some("q")), Some((Source::Query, "q"))),
            // Empty values are no token: the next source is looked at.
            (
                creds(Some("Bearer "), Some("mercureAuthorization="), Some("q")),
                Some((Source::Query, "q")),
            ),
            (creds(Some("Bearer"), None, Some("")), None),
        ];
        for (c, want) in table {
            assert_eq!(c.token(), *want, "{c:?}");
        }
    }

    #[test]
    fn the_cookie_name_is_configurable() {
        let c = Credentials {
            cookie: Some("mercureAuthorization=a; mine=b"),
            cookie_name: "mine",
            ..Credentials::default()
        };
        assert_eq!(c.token(), Some((Source::Cookie, "b")));
    }

    #[test]
    fn bearer_schemes() {
        for (value, want) in [
            ("Bearer t", Some("t")),
            ("bearer t", Some("t")),
            ("BEARER t", Some("t")),
            ("Bearer\tt", Some("t")),
            ("  Bearer  t  ", Some("t")),
            ("Bearer ", Some("")),
            ("Bearer", None),
            ("Basic t", None),
            ("Bearerx t", None),
            ("", None),
        ] {
            assert_eq!(bearer(value), want, "{value:?}");
        }
    }

    #[test]
    fn subscribe_auth_labels() {
        assert_eq!(SubscribeAuth::default(), SubscribeAuth::Optional);
        assert_eq!(SubscribeAuth::Required.label(), "required");
        assert_eq!(SubscribeAuth::Optional.label(), "optional");
    }
}
