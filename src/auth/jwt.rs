//! JWT verification: the algorithm the key pins, Mercure's claim shapes (0.x `mercure`,
//! 1.0 RFC 9068 access tokens), size caps, `exp`/`nbf` with a leeway.
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

pub use self::jose::MAX_PAYLOAD_BYTES;
use self::jose::{ClaimsSet, Detail, DetailTopic, Header};

use super::selector::{MAX_SELECTOR_BYTES, MAX_SELECTORS, Selector, Selectors};
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

/// What tokens are checked against: the key, the algorithm it pins, and the issuer
/// and audience an RFC 9068 access token must carry. Its secret bytes are never shown:
/// `Debug` prints `Key(HS256, ..)`.
#[derive(Clone)]
pub struct Key(Arc<KeyInner>);

/// The parts of a [`Key`].
#[derive(Clone)]
struct KeyInner {
    /// The key material, which pins the algorithm.
    material: Material,
    /// `--jwt-issuer`: the `iss` an access token must carry.
    issuer: Option<String>,
    /// `--jwt-audience`: what an access token's `aud` must hold.
    audience: Option<String>,
}

/// The key material: one algorithm each.
#[derive(Clone)]
enum Material {
    /// HS256: the shared secret.
    Hs256(Box<[u8]>),
    /// RS256 (RSASSA-PKCS1-v1_5 with SHA-256): the public key, and its PEM text.
    Rs256(Box<rsa::pkcs1v15::VerifyingKey<Sha256>>, Box<str>),
    /// ES256 (ECDSA on P-256 with SHA-256): the public key, and its PEM text.
    Es256(Box<p256::ecdsa::VerifyingKey>, Box<str>),
}

impl PartialEq for Material {
    fn eq(&self, other: &Material) -> bool {
        match (self, other) {
            (Material::Hs256(a), Material::Hs256(b)) => a == b,
            (Material::Rs256(_, a), Material::Rs256(_, b))
            | (Material::Es256(_, a), Material::Es256(_, b)) => a == b,
            _ => false,
        }
    }
}

/// Shortest RSA modulus accepted. **Unit:** bits. **Why:** RFC 7518 §3.3: an RS256 key
/// must be 2048 bits or larger.
pub const MIN_RSA_BITS: usize = 2048;

impl Key {
    /// An HS256 key of these bytes. See [`MIN_KEY_BYTES`] (the configuration refuses
    /// shorter keys; this constructor does not, for tests).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Key {
        Key::of(Material::Hs256(bytes.into().into()))
    }

    /// An RS256 key from the PEM text of an RSA public key (`BEGIN PUBLIC KEY`, as
    /// `openssl rsa -pubout` writes it, or `BEGIN RSA PUBLIC KEY`), at least
    /// [`MIN_RSA_BITS`].
    ///
    /// # Errors
    ///
    /// Why the text is not such a key.
    pub fn rs256_pem(pem: &str) -> Result<Key, String> {
        use rsa::pkcs1::DecodeRsaPublicKey as _;
        use rsa::pkcs8::DecodePublicKey as _;
        use rsa::traits::PublicKeyParts as _;
        let key = rsa::PublicKey::from_public_key_pem(pem)
            .or_else(|_| rsa::PublicKey::from_pkcs1_pem(pem))
            .map_err(|e| format!("not a PEM RSA public key ({e})"))?;
        let bits = key.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "an RS256 key must be at least {MIN_RSA_BITS} bits (RFC 7518 §3.3), this one has {bits}"
            ));
        }
        let verifying = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key);
        Ok(Key::of(Material::Rs256(
            Box::new(verifying),
            pem.trim().into(),
        )))
    }

    /// An ES256 key from the PEM text of a P-256 public key (`BEGIN PUBLIC KEY`, as
    /// `openssl ec -pubout` writes it).
    ///
    /// # Errors
    ///
    /// Why the text is not such a key.
    pub fn es256_pem(pem: &str) -> Result<Key, String> {
        use p256::pkcs8::DecodePublicKey as _;
        let key = p256::PublicKey::from_public_key_pem(pem)
            .map_err(|e| format!("not a PEM P-256 public key ({e})"))?;
        let verifying = p256::ecdsa::VerifyingKey::from(key);
        Ok(Key::of(Material::Es256(
            Box::new(verifying),
            pem.trim().into(),
        )))
    }

    /// A key of this material, expecting no issuer or audience yet.
    fn of(material: Material) -> Key {
        Key(Arc::new(KeyInner {
            material,
            issuer: None,
            audience: None,
        }))
    }

    /// The same key, requiring access tokens (`typ: at+jwt`) to carry `iss` equal to
    /// `issuer` and an `aud` holding `audience`. Without both, access tokens are refused.
    pub fn expecting(self, issuer: Option<String>, audience: Option<String>) -> Key {
        let inner = Arc::unwrap_or_clone(self.0);
        Key(Arc::new(KeyInner {
            issuer,
            audience,
            ..inner
        }))
    }

    /// The algorithm the key pins (`HS256`, `RS256`, `ES256`).
    pub fn alg(&self) -> &'static str {
        match self.0.material {
            Material::Hs256(_) => "HS256",
            Material::Rs256(..) => "RS256",
            Material::Es256(..) => "ES256",
        }
    }

    /// The key's length in bytes (an HS256 secret's; 0 for a public key).
    pub fn len(&self) -> usize {
        match &self.0.material {
            Material::Hs256(bytes) => bytes.len(),
            Material::Rs256(..) | Material::Es256(..) => 0,
        }
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.0.material == other.0.material
            && self.0.issuer == other.0.issuer
            && self.0.audience == other.0.audience
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}, ..)", self.alg())
    }
}

/// What a verified token grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Whether it is an RFC 9068 access token (Mercure 1.0, `typ: at+jwt`): its
    /// selectors are already read by Mercure's rules (a `match` is exact unless its
    /// `match_type` is `urlpattern`), where a 0.x token's are read by ssehub's until
    /// [`Selectors::mercure`] turns them.
    pub access_token: bool,
    /// The payloads Mercure's active subscriptions carry: 0.x `mercure.payload` (for
    /// every subscription), or the `payload` of each 1.0 authorization detail that
    /// grants `subscribe` (for the subscriptions its topics cover), in token order.
    pub payloads: Vec<Payload>,
}

/// A `payload` a token attaches to its subscriptions (Mercure's active subscriptions):
/// any JSON but `null`, at most [`MAX_PAYLOAD_BYTES`] as compact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The subscribe selectors of the 1.0 detail it came from; `None` (0.x): every
    /// subscription.
    pub topics: Option<Selectors>,
    /// The payload, compact JSON text.
    pub json: Arc<str>,
}

impl Claims {
    /// The payload of a subscription to `selector` (the selector's text as the
    /// subscriber sent it): the first of [`Claims::payloads`] for every subscription, or
    /// whose topics hold `*`, the same text, or a selector matching the text as a topic.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ssehub::auth::{Payload, Selectors};
    /// # let mut claims = ssehub::auth::Claims::default();
    /// claims.payloads.push(Payload { topics: Some(Selectors::new(["a"])), json: Arc::from("1") });
    /// claims.payloads.push(Payload { topics: None, json: Arc::from("2") });
    /// assert_eq!(claims.payload_for("a").as_deref(), Some("1"));
    /// assert_eq!(claims.payload_for("b").as_deref(), Some("2"));
    /// ```
    pub fn payload_for(&self, selector: &str) -> Option<Arc<str>> {
        Payload::first_for(&self.payloads, selector)
    }
}

impl Payload {
    /// The payload of a subscription to `selector` among `payloads`, as
    /// [`Claims::payload_for`] picks it.
    pub fn first_for(payloads: &[Payload], selector: &str) -> Option<Arc<str>> {
        payloads
            .iter()
            .find(|p| {
                p.topics.as_ref().is_none_or(|topics| {
                    topics.as_slice().iter().any(|s| match s {
                        Selector::Any => true,
                        Selector::Template(t) => t.source() == selector || t.matches(selector),
                        other => other.matches(selector),
                    })
                })
            })
            .map(|p| p.json.clone())
    }
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
    /// A `payload` longer than [`MAX_PAYLOAD_BYTES`] as compact JSON.
    PayloadTooLong,
}

impl TokenError {
    /// The counter this failure is counted under.
    pub fn reason(self) -> AuthFailure {
        match self {
            TokenError::TooLong
            | TokenError::Malformed(_)
            | TokenError::TooManySelectors
            | TokenError::SelectorTooLong
            | TokenError::PayloadTooLong => AuthFailure::Malformed,
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
            TokenError::PayloadTooLong => write!(
                f,
                "malformed: a payload exceeds {MAX_PAYLOAD_BYTES} bytes as compact JSON"
            ),
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
/// 3. the algorithm: `alg` must be the one the key pins ([`Key::alg`], `--jwt-alg`).
///    `none`, any other algorithm, a missing `alg` and a `crit` header are refused before
///    any key is used, so no token chooses how it is checked; `typ` (if present) a
///    string, `at+jwt` marking an RFC 9068 access token;
/// 4. the signature of the first two parts under the key: HMAC-SHA256 compared in
///    constant time (RustCrypto's `verify_slice`), RSASSA-PKCS1-v1_5 with SHA-256
///    (`rsa`), or ECDSA P-256 with SHA-256, `R || S` (`p256`); nothing of the payload is
///    read before it has passed;
/// 5. the claims: a JSON object; `mercure` an object whose `subscribe` and `publish` are
///    arrays of at most [`MAX_SELECTORS`] strings of at most [`MAX_SELECTOR_BYTES`]
///    bytes; `exp`, `nbf` and `iat` NumericDates (any JSON number of seconds since the
///    epoch: RFC 7519 §2 allows fractions, as `jsonwebtoken` and Mercure do); `exp` and
///    `nbf` checked with [`LEEWAY`]; `iss` a string, `aud` a string or an array of
///    strings, `authorization_details` an array of objects;
/// 6. an access token (`typ: at+jwt`) needs `iss` equal to the key's issuer, `aud`
///    holding its audience, and `exp` ([`Key::expecting`]; a key expecting none refuses
///    access tokens); its rights are the `topics` of its `authorization_details` entries
///    of type `https://mercure.rocks/authorization-detail` whose `actions` hold
///    `subscribe` or `publish` (same caps). Any other token carrying
///    `authorization_details` is refused: no 1.0 shape without `at+jwt`.
///
/// The header and the claims are parsed into strict types (`jwt/jose.rs`): a member this
/// hub reads that has another JSON type, `null` included, refuses the token with a reason
/// naming it (`malformed: exp must be a NumericDate (a number)`); it never reads as
/// absent. `payload` (0.x `mercure.payload`, or a 1.0 detail's) is any JSON, kept as
/// compact text of at most [`MAX_PAYLOAD_BYTES`] (`null`: none). Other claims (`jti`,
/// `client_id`, …) and header
/// parameters (`kid`, …) are ignored, whatever their type, so a token minted for a Mercure
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
    let access_token = check_header(header, key)?;
    let signature = decode(signature, "signature is not base64url")?;
    check_signature(key, header, payload, &signature)?;
    let claims = ClaimsSet::parse(&decode(payload, "payload is not base64url")?)?;
    check_times(&claims, now)?;
    let (subscribe, publish, payloads) = if access_token {
        check_access_token(&claims, key)?;
        let details = claims.details.as_deref().unwrap_or_default();
        let (subscribe, publish) = rights(details)?;
        (subscribe, publish, detail_payloads(details)?)
    } else if claims.details.is_some() {
        return Err(TokenError::NotAllowed(
            "authorization_details needs the header typ at+jwt (RFC 9068)",
        ));
    } else {
        let payload = claims.mercure.payload.as_deref().map(|json| Payload {
            topics: None,
            json: json.into(),
        });
        (
            selectors(&claims.mercure.subscribe)?,
            selectors(&claims.mercure.publish)?,
            payload.into_iter().collect(),
        )
    };
    Ok(Claims {
        subscribe,
        publish,
        expires: claims.exp.and_then(to_time),
        sub: claims.sub,
        access_token,
        payloads,
    })
}

/// The payloads of the Mercure details that grant `subscribe`, each for its topics.
fn detail_payloads(details: &[Detail]) -> Result<Vec<Payload>, TokenError> {
    details
        .iter()
        .filter(|d| d.actions.iter().any(|a| a == "subscribe"))
        .filter_map(|d| Some((d, d.payload.as_deref()?)))
        .map(|(d, json)| {
            let topics = d
                .topics
                .iter()
                .map(|t| Selector::access_token(&t.pattern, t.url_pattern))
                .collect::<Result<Selectors, _>>()
                .map_err(|_| {
                    TokenError::Malformed(
                        "authorization_details: a urlpattern this hub does not support",
                    )
                })?;
            Ok(Payload {
                topics: Some(topics),
                json: json.into(),
            })
        })
        .collect()
}

/// Whether `token`'s header says it is an RFC 9068 access token (`typ: at+jwt`), read
/// before any verification (to refuse one sent in the query: Mercure 1.0 takes none
/// there). A token whose header does not parse is not one.
pub fn is_access_token(token: &str) -> bool {
    token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| Header::parse(&h).ok())
        .is_some_and(|h| h.typ.as_deref().is_some_and(is_at_jwt))
}

/// Whether a `typ` names an access token: `at+jwt` or `application/at+jwt`, in any case
/// (RFC 9068 §2.1, RFC 7515 §4.1.9).
fn is_at_jwt(typ: &str) -> bool {
    let typ = typ
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    typ.eq_ignore_ascii_case("at+jwt")
}

/// The signature of `header.payload` under `key`, by the algorithm the key pins.
fn check_signature(
    key: &Key,
    header: &str,
    payload: &str,
    signature: &[u8],
) -> Result<(), TokenError> {
    match &key.0.material {
        Material::Hs256(secret) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret)
                .map_err(|_| TokenError::Malformed("unusable key"))?;
            mac.update(header.as_bytes());
            mac.update(b".");
            mac.update(payload.as_bytes());
            mac.verify_slice(signature)
                .map_err(|_| TokenError::BadSignature)
        }
        Material::Rs256(key, _) => {
            use rsa::signature::Verifier as _;
            let signature = rsa::pkcs1v15::Signature::try_from(signature)
                .map_err(|_| TokenError::BadSignature)?;
            key.verify(format!("{header}.{payload}").as_bytes(), &signature)
                .map_err(|_| TokenError::BadSignature)
        }
        Material::Es256(key, _) => {
            use p256::ecdsa::signature::Verifier as _;
            // JWS carries R || S, 32 bytes each (RFC 7518 §3.4), not DER.
            let signature = p256::ecdsa::Signature::from_slice(signature)
                .map_err(|_| TokenError::BadSignature)?;
            key.verify(format!("{header}.{payload}").as_bytes(), &signature)
                .map_err(|_| TokenError::BadSignature)
        }
    }
}

/// RFC 9068 §4: an access token carries `iss` (the configured issuer), `aud` (holding the
/// configured audience) and `exp`.
fn check_access_token(claims: &ClaimsSet, key: &Key) -> Result<(), TokenError> {
    let (Some(issuer), Some(audience)) = (&key.0.issuer, &key.0.audience) else {
        return Err(TokenError::NotAllowed(
            "at+jwt tokens need --jwt-issuer and --jwt-audience on the hub",
        ));
    };
    let Some(iss) = &claims.iss else {
        return Err(TokenError::Malformed("an at+jwt token needs iss"));
    };
    let Some(aud) = &claims.aud else {
        return Err(TokenError::Malformed("an at+jwt token needs aud"));
    };
    if claims.exp.is_none() {
        return Err(TokenError::Malformed("an at+jwt token needs exp"));
    }
    if iss != issuer {
        return Err(TokenError::NotAllowed("iss is not this hub's issuer"));
    }
    if !aud.iter().any(|a| a == audience) {
        return Err(TokenError::NotAllowed("aud does not name this hub"));
    }
    Ok(())
}

/// The `subscribe` and `publish` rights of an access token's Mercure
/// `authorization_details` entries, within the caps.
fn rights(details: &[Detail]) -> Result<(Selectors, Selectors), TokenError> {
    let list = |action: &str| -> Result<Selectors, TokenError> {
        let topics: Vec<&DetailTopic> = details
            .iter()
            .filter(|d| d.actions.iter().any(|a| a == action))
            .flat_map(|d| &d.topics)
            .collect();
        if topics.len() > MAX_SELECTORS {
            return Err(TokenError::TooManySelectors);
        }
        topics
            .into_iter()
            .map(|t| {
                if t.pattern.len() > MAX_SELECTOR_BYTES {
                    return Err(TokenError::SelectorTooLong);
                }
                Selector::access_token(&t.pattern, t.url_pattern).map_err(|_| {
                    TokenError::Malformed(
                        "authorization_details: a urlpattern this hub does not support",
                    )
                })
            })
            .collect()
    };
    Ok((list("subscribe")?, list("publish")?))
}

/// Decodes one base64url part (no padding).
fn decode(part: &str, what: &'static str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed(what))
}

/// Refuses any header but `{"alg": <the key's>, ...}` without `crit`; whether `typ`
/// marks an access token.
fn check_header(part: &str, key: &Key) -> Result<bool, TokenError> {
    let header = Header::parse(&decode(part, "header is not base64url")?)?;
    if header.crit {
        return Err(TokenError::NotAllowed("crit header extensions"));
    }
    match header.alg.as_deref() {
        Some(alg) if alg == key.alg() => {}
        Some("none") => return Err(TokenError::NotAllowed("alg none")),
        Some(_) => {
            return Err(TokenError::NotAllowed(match key.alg() {
                "HS256" => "alg must be HS256",
                "RS256" => "alg must be RS256",
                _ => "alg must be ES256",
            }));
        }
        None => return Err(TokenError::NotAllowed("no alg")),
    }
    Ok(header.typ.as_deref().is_some_and(is_at_jwt))
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
