//! JWT verification: HS256 only, Mercure's claim shape, size caps, `exp`/`nbf` with a
//! leeway.
//!
//! A token is three base64url parts: header, payload, signature. [`verify`] lists the
//! checks, in the order they are made.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use self::jose::{ClaimsSet, Header};

use super::selector::{MAX_SELECTOR_BYTES, MAX_SELECTORS, Selectors};
use crate::stats::AuthFailure;

/// Longest token accepted. **Unit:** bytes. **Why:** a Mercure token with a few dozen
/// selectors is well under 2 KiB. 7 KiB leaves 1 KiB of the default 8 KiB request head
/// and request line (`--max-head-bytes`, `--max-request-line`) for the rest of the
/// request, so every token the verifier would take can arrive in the header, the cookie
/// or the query under the default limits (`server/access.rs` asserts it when compiled);
/// and verification work stays bounded.
pub const MAX_TOKEN_BYTES: usize = 7 * 1024;

/// How far `exp` and `nbf` are stretched for clocks that disagree. **Unit:** seconds.
/// **Why:** the usual few seconds of skew between the machine that mints tokens and the
/// hub; small enough that an expired token is not honoured for long.
pub const LEEWAY: Duration = Duration::from_secs(5);

/// Shortest key accepted. **Unit:** bytes. **Why:** RFC 7518 §3.2: an HS256 key must be
/// at least as long as the hash output (256 bits).
pub const MIN_KEY_BYTES: usize = 32;

/// The HMAC key tokens are signed with. Its bytes are never shown: `Debug` prints
/// `Key(..)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Arc<[u8]>);

impl Key {
    /// A key of these bytes. See [`MIN_KEY_BYTES`] (the configuration refuses shorter
    /// keys; this constructor does not, for tests).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Key {
        Key(bytes.into().into())
    }

    /// The key's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// What a verified token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `mercure.subscribe`: topics whose private events the holder may read (empty when
    /// the claim is missing).
    pub subscribe: Selectors,
    /// `mercure.publish`: topics the holder may publish to (empty when missing).
    pub publish: Selectors,
    /// `exp`: when the token stops being valid (`None`: never). A stream opened with the
    /// token ends then.
    pub expires: Option<SystemTime>,
    /// `sub`: whose token it is (`None` when absent).
    pub sub: Option<String>,
}

/// Why a token was refused. The `Display` text is what the `401` says after
/// `invalid token: `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    TooLong,
    /// Not a well-formed JWT, or a member of the header or claims of the wrong type;
    /// says which part or member.
    Malformed(&'static str),
    /// A list claim with more than [`MAX_SELECTORS`] selectors.
    TooManySelectors,
    /// A selector longer than [`MAX_SELECTOR_BYTES`].
    SelectorTooLong,
    /// `alg` is not `HS256` (or missing, or a `crit` header asks for extensions).
    NotAllowed(&'static str),
    /// The signature does not match the key.
    BadSignature,
    /// Past `exp` + [`LEEWAY`].
    Expired,
    /// Before `nbf` − [`LEEWAY`].
    NotYetValid,
}

impl TokenError {
    /// The counter this failure is counted under.
    pub fn reason(self) -> AuthFailure {
        match self {
            TokenError::TooLong
            | TokenError::Malformed(_)
            | TokenError::TooManySelectors
            | TokenError::SelectorTooLong => AuthFailure::Malformed,
            TokenError::NotAllowed(_) => AuthFailure::NotAllowed,
            TokenError::BadSignature => AuthFailure::BadSignature,
            TokenError::Expired => AuthFailure::Expired,
            TokenError::NotYetValid => AuthFailure::NotYetValid,
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::TooLong => write!(f, "malformed: token exceeds {MAX_TOKEN_BYTES} bytes"),
            TokenError::Malformed(what) => write!(f, "malformed: {what}"),
            TokenError::TooManySelectors => {
                write!(
                    f,
                    "malformed: more than {MAX_SELECTORS} selectors in a list"
                )
            }
            TokenError::SelectorTooLong => {
                write!(
                    f,
                    "malformed: a selector exceeds {MAX_SELECTOR_BYTES} bytes"
                )
            }
            TokenError::NotAllowed(what) => write!(f, "not allowed: {what}"),
            TokenError::BadSignature => f.write_str("bad signature"),
            TokenError::Expired => f.write_str("expired"),
            TokenError::NotYetValid => f.write_str("not yet valid"),
        }
    }
}

impl std::error::Error for TokenError {}

/// Verifies `token` (signed with `key`) at time `now`: its claims, or why it is refused.
///
/// A token is `base64url(header) . base64url(payload) . base64url(signature)` (RFC 7519,
/// RFC 7515 compact form, no padding). These checks are made, in this order, stopping at
/// the first failure:
///
/// 1. the size: at most [`MAX_TOKEN_BYTES`];
/// 2. the form: three parts, each base64url; the header a JSON object, `alg` (if
///    present) a string;
/// 3. the algorithm: `alg` must be `HS256`. `none`, `HS512`, `RS256`, a missing `alg` and
///    a `crit` header are refused before any key is used, so no token chooses how it is
///    checked;
/// 4. the signature: HMAC-SHA256 of the first two parts under the key, compared in
///    constant time (RustCrypto's `verify_slice`); nothing of the payload is read before
///    it has passed;
/// 5. the claims: a JSON object; `mercure` an object whose `subscribe` and `publish` are
///    arrays of at most [`MAX_SELECTORS`] strings of at most [`MAX_SELECTOR_BYTES`]
///    bytes; `exp`, `nbf` and `iat` NumericDates (any JSON number of seconds since the
///    epoch: RFC 7519 §2 allows fractions, as `jsonwebtoken` and Mercure do); `exp` and
///    `nbf` checked with [`LEEWAY`].
///
/// The header and the claims are parsed into strict types (`jwt/jose.rs`): a member this
/// hub reads that has another JSON type, `null` included, refuses the token with a reason
/// naming it (`malformed: exp must be a NumericDate (a number)`); it never reads as
/// absent. Other claims (`sub`, `aud`, Mercure's `payload`, …) and header parameters
/// (`typ`, `kid`, …) are ignored, whatever their type, so a token minted for a Mercure
/// hub works here unchanged. A name given twice in any object is refused as malformed.
/// A token without `exp` does not expire.
///
/// # Errors
///
/// [`TokenError`] naming the first check that failed.
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use ssehub::auth::{Key, TokenError, verify};
/// let key = Key::new("a key of at least thirty-two bytes!");
/// // {"alg":"none"} . {} . (no signature)
/// let none = "eyJhbGciOiJub25lIn0.e30.";
/// assert!(matches!(verify(none, &key, SystemTime::now()), Err(TokenError::NotAllowed(_))));
/// assert!(matches!(verify("x.y", &key, SystemTime::now()), Err(TokenError::Malformed(_))));
/// ```
pub fn verify(token: &str, key: &Key, now: SystemTime) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three dot-separated parts"));
    };
    check_header(header)?;
    let signature = decode(signature, "signature is not base64url")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0)
        .map_err(|_| TokenError::Malformed("unusable key"))?;
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    let claims = ClaimsSet::parse(&decode(payload, "payload is not base64url")?)?;
    check_times(&claims, now)?;
    Ok(Claims {
        subscribe: selectors(&claims.mercure.subscribe)?,
        publish: selectors(&claims.mercure.publish)?,
        expires: claims.exp.and_then(to_time),
        sub: claims.sub,
    })
}

/// Decodes one base64url part (no padding).
fn decode(part: &str, what: &'static str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed(what))
}

/// Refuses any header but `{"alg": "HS256", ...}` without `crit`.
fn check_header(part: &str) -> Result<(), TokenError> {
    let header = Header::parse(&decode(part, "header is not base64url")?)?;
    if header.crit {
        return Err(TokenError::NotAllowed("crit header extensions"));
    }
    match header.alg.as_deref() {
        Some("HS256") => Ok(()),
        Some("none") => Err(TokenError::NotAllowed("alg none")),
        Some(_) => Err(TokenError::NotAllowed("alg must be HS256")),
        None => Err(TokenError::NotAllowed("no alg")),
    }
}

/// `exp` and `nbf` against `now`, each stretched by [`LEEWAY`].
fn check_times(claims: &ClaimsSet, now: SystemTime) -> Result<(), TokenError> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let leeway = LEEWAY.as_secs_f64();
    if claims.exp.is_some_and(|exp| now >= exp + leeway) {
        return Err(TokenError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| now + leeway < nbf) {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// A list claim, within the caps.
fn selectors(list: &[String]) -> Result<Selectors, TokenError> {
    if list.len() > MAX_SELECTORS {
        return Err(TokenError::TooManySelectors);
    }
    if list.iter().any(|s| s.len() > MAX_SELECTOR_BYTES) {
        return Err(TokenError::SelectorTooLong);
    }
    Ok(Selectors::new(list.iter().map(String::as_str)))
}

/// A NumericDate as a time; `None` past what the clock can hold (never, in effect).
fn to_time(secs: f64) -> Option<SystemTime> {
    let since = Duration::try_from_secs_f64(secs.max(0.0)).ok()?;
    UNIX_EPOCH.checked_add(since)
}

mod jose;
#[cfg(test)]
mod tests;
