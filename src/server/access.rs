//! Who may read what: the token of a `GET /stream` request, verified, as the rights and
//! the expiry it grants, or the `401` that names why not.
//!
//! Without a subscriber key (`--jwt-subscriber-key`, else `--jwt-key`; or their
//! `-public-key-file` twins for RS256 and ES256) no token is read (streams get public events, as before tokens existed). With a key, a token found in the `Authorization: Bearer` header, the cookie
//! or `?authorization=` (the first found wins) must be valid, whatever
//! `--subscribe-auth` says: a client that sends a token wants its rights, and quietly
//! serving it public events only would hide the error. `--subscribe-auth required`
//! refuses a stream without a token, too. A Mercure 1.0 access token (`typ: at+jwt`)
//! in the query is a `400 invalid_request`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::Ctx;
use super::quota::Slot;
use super::request::Request;
use crate::auth::{self, Credentials, Selectors, Source, SubscribeAuth, TokenError};
use crate::http::head::{DEFAULT_MAX_HEAD_BYTES, DEFAULT_MAX_REQUEST_LINE};
use crate::http::response::Response;
use crate::stats::AuthFailure;

/// Most a stream outlives its token's `exp`, drawn at random for each stream from zero
/// up to this. **Unit:** seconds. **Why:** streams opened with tokens minted at the same
/// moment would otherwise all end, and reconnect, in the same instant.
pub const EXPIRY_JITTER: Duration = Duration::from_secs(1);

/// What the default head keeps beside the longest token for the rest of a request (the
/// request line's method, path and version, `Host`, a browser's other headers and
/// cookies). **Unit:** bytes.
const HEAD_ROOM: usize = 1024;

// Every token the verifier would take fits the default head and request line, with
// HEAD_ROOM to spare: never a 431 or 414 for a token that is not too long (#20).
const _: () = assert!(
    auth::MAX_TOKEN_BYTES + HEAD_ROOM <= DEFAULT_MAX_HEAD_BYTES
        && auth::MAX_TOKEN_BYTES + HEAD_ROOM <= DEFAULT_MAX_REQUEST_LINE
);

/// What a subscriber's valid token grants.
#[derive(Debug, Default)]
pub(super) struct Grant {
    /// Topics whose private events it may read (`None`: none).
    pub(super) rights: Option<Arc<Selectors>>,
    /// When its stream ends (the token's `exp` plus jitter); `None`: never.
    pub(super) ends_at: Option<Instant>,
    /// The token's `exp` (what the `token-expiring` event says).
    pub(super) expires: Option<SystemTime>,
    /// Its place under the token's stream cap, held while the stream lives.
    pub(super) slot: Option<Slot>,
    /// The token's payloads, for Mercure's active subscriptions.
    pub(super) payloads: Vec<auth::Payload>,
}

/// The grant of a stream request: none without a token (where that is allowed), the
/// token's rights, or the `401` to answer.
pub(super) fn subscriber(ctx: &Ctx, req: &Request) -> Result<Grant, Response> {
    let Some(key) = ctx.config.subscriber_key() else {
        return Ok(Grant::default());
    };
    with_token(ctx, req, |found| {
        let Some((source, token)) = found else {
            return anonymous(ctx);
        };
        refuse_query_access_token(source, token)?;
        let claims = verified(ctx, token, key)?;
        let slot = ctx.quota.take(claims.sub.as_deref(), token)?;
        let rights = (!claims.subscribe.is_empty()).then(|| Arc::new(claims.subscribe));
        Ok(Grant {
            rights,
            ends_at: claims.expires.map(stream_end),
            expires: claims.expires,
            slot,
            payloads: claims.payloads,
        })
    })
}

/// Calls `f` with the token `req` carries and where it came from (the bearer header,
/// the cookie, then `?authorization=`; `None`: none).
pub(super) fn with_token<T>(
    ctx: &Ctx,
    req: &Request,
    f: impl FnOnce(Option<(Source, &str)>) -> T,
) -> T {
    let query = req.param(auth::QUERY_PARAM);
    let credentials = Credentials {
        authorization: req.authorization.as_deref(),
        cookie: req.cookie.as_deref(),
        cookie_name: &ctx.config.jwt_cookie,
        query: query.as_deref(),
    };
    f(credentials.token())
}

/// The grant of a stream request without a token: none, or the `401` of
/// `--subscribe-auth required`.
fn anonymous(ctx: &Ctx) -> Result<Grant, Response> {
    if ctx.config.subscribe_auth == SubscribeAuth::Required {
        ctx.stats.auth_failed(AuthFailure::Missing);
        return Err(unauthorized(
            None,
            &format!(
                "a token is required: send Authorization: Bearer, the {} cookie or ?authorization=",
                ctx.config.jwt_cookie
            ),
        ));
    }
    Ok(Grant::default())
}

/// The `400 invalid_request` (RFC 6750 §3.1) for a Mercure 1.0 access token sent in the
/// query: Mercure 1.0 takes none there (RFC 9700 §2.4: URLs leak into logs).
pub(super) fn refuse_query_access_token(source: Source, token: &str) -> Result<(), Response> {
    if source == Source::Query && auth::is_access_token(token) {
        return Err(Response::text(
            400,
            "an at+jwt access token is not taken in the query: send Authorization: Bearer or the cookie",
        )
        .header("WWW-Authenticate", "Bearer error=\"invalid_request\"")
        .close());
    }
    Ok(())
}

/// A `403` with `message` and the RFC 6750 §3.1 challenge `insufficient_scope`: the
/// token is valid but grants too little.
pub(super) fn insufficient_scope(message: &str) -> Response {
    Response::text(403, message)
        .header("WWW-Authenticate", "Bearer error=\"insufficient_scope\"")
        .close()
}

/// Verifies `token`; a failure is counted and becomes the `401`.
pub(super) fn verified(ctx: &Ctx, token: &str, key: &auth::Key) -> Result<auth::Claims, Response> {
    auth::verify(token, key, SystemTime::now()).map_err(|e| {
        ctx.stats.auth_failed(e.reason());
        unauthorized(Some(e), &format!("invalid token: {e}"))
    })
}

/// A `401` with `message` and the `WWW-Authenticate` challenge (RFC 6750 §3: with
/// `error="invalid_token"` when a token was sent and refused).
pub(super) fn unauthorized(error: Option<TokenError>, message: &str) -> Response {
    let challenge = match error {
        Some(_) => "Bearer error=\"invalid_token\"",
        None => "Bearer",
    };
    Response::text(401, message)
        .header("WWW-Authenticate", challenge)
        .close()
}

/// When a stream opened with a token that expires at `exp` ends: then, plus up to
/// [`EXPIRY_JITTER`].
fn stream_end(exp: SystemTime) -> Instant {
    let left = exp
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    let jitter = fastrand::u64(0..=EXPIRY_JITTER.as_millis() as u64);
    Instant::now() + left + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_ends_at_exp_plus_at_most_the_jitter() {
        for _ in 0..100 {
            let before = Instant::now();
            let end = stream_end(SystemTime::now() + Duration::from_secs(10));
            let after = Instant::now();
            assert!(
                end >= before + Duration::from_millis(9_990),
                "{:?}",
                end - before
            );
            assert!(end <= after + Duration::from_secs(10) + EXPIRY_JITTER);
        }
        // Already past (within the leeway): ends within the jitter.
        let end = stream_end(SystemTime::now() - Duration::from_secs(3));
        assert!(end <= Instant::now() + EXPIRY_JITTER);
    }

    #[test]
    fn refusals_carry_the_bearer_challenge() {
        let r = unauthorized(None, "a token is required");
        assert_eq!(r.status, 401);
        assert!(
            r.headers
                .contains(&("WWW-Authenticate", "Bearer".to_owned()))
        );
        let r = unauthorized(Some(TokenError::Expired), "invalid token: expired");
        assert!(r.headers.contains(&(
            "WWW-Authenticate",
            "Bearer error=\"invalid_token\"".to_owned()
        )));
        assert_eq!(r.body, b"invalid token: expired\n");
    }
}
