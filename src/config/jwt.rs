//! The token flags: `--jwt-alg`, `--jwt-key` / `--jwt-key-file` / `--jwt-public-key-file`,
//! the same four for one role (`--jwt-publisher-…`, `--jwt-subscriber-…`, as Mercure's
//! `publisher_jwt` and `subscriber_jwt`), `--jwt-issuer`, `--jwt-audience`,
//! `--jwt-cookie`, `--subscribe-auth`.

use super::{ConfigError, Raw};
use crate::auth::{DEFAULT_COOKIE, Key, MIN_KEY_BYTES, SubscribeAuth};

/// The token settings, checked together.
pub(super) struct Settings {
    /// `--jwt-key` and friends: the key of both roles, unless a role has its own.
    pub(super) shared: Option<Key>,
    /// `--jwt-publisher-key` and friends: the key of publisher tokens.
    pub(super) publisher: Option<Key>,
    /// `--jwt-subscriber-key` and friends: the key of subscriber tokens.
    pub(super) subscriber: Option<Key>,
    /// `--jwt-cookie`.
    pub(super) cookie: String,
    /// `--subscribe-auth`.
    pub(super) subscribe_auth: SubscribeAuth,
}

/// The keys, the cookie name and the subscribe mode, checked together (required mode
/// needs a subscriber key).
pub(super) fn settings(raw: &Raw) -> Result<Settings, ConfigError> {
    let shared = jwt_key(raw, "jwt")?;
    let publisher = jwt_key(raw, "jwt-publisher")?;
    let subscriber = jwt_key(raw, "jwt-subscriber")?;
    let any_key = shared.is_some() || publisher.is_some() || subscriber.is_some();
    let issuer = raw.get("jwt-issuer").map(str::to_owned);
    let audience = raw.get("jwt-audience").map(str::to_owned);
    if issuer.is_some() != audience.is_some() {
        return Err(ConfigError(
            "--jwt-issuer and --jwt-audience: give both (what a Mercure 1.0 access token must carry)".into(),
        ));
    }
    if issuer.is_some() && !any_key {
        return Err(ConfigError(
            "--jwt-issuer and --jwt-audience need --jwt-key, --jwt-key-file or --jwt-public-key-file"
                .into(),
        ));
    }
    if [&issuer, &audience]
        .iter()
        .any(|v| v.as_deref() == Some(""))
    {
        return Err(ConfigError(
            "--jwt-issuer and --jwt-audience: expected a non-empty value".into(),
        ));
    }
    let expecting = |k: Option<Key>| k.map(|k| k.expecting(issuer.clone(), audience.clone()));
    let (shared, publisher, subscriber) = (
        expecting(shared),
        expecting(publisher),
        expecting(subscriber),
    );
    let jwt_cookie = raw.get("jwt-cookie").unwrap_or(DEFAULT_COOKIE).to_owned();
    if jwt_cookie.is_empty() || !jwt_cookie.bytes().all(is_cookie_name_byte) {
        return Err(ConfigError(format!(
            "--jwt-cookie: expected a cookie name (letters, digits, !#$%&'*+-.^_`|~), got '{jwt_cookie}'"
        )));
    }
    let subscribe_auth = match raw.get("subscribe-auth") {
        None | Some("optional") => SubscribeAuth::Optional,
        Some("required") => SubscribeAuth::Required,
        Some(v) => {
            return Err(ConfigError(format!(
                "--subscribe-auth: expected required or optional, got '{v}'"
            )));
        }
    };
    if subscribe_auth == SubscribeAuth::Required && subscriber.is_none() && shared.is_none() {
        return Err(ConfigError(
            "--subscribe-auth required needs --jwt-key, --jwt-key-file or --jwt-public-key-file \
             (or their --jwt-subscriber-… twins)"
                .into(),
        ));
    }
    Ok(Settings {
        shared,
        publisher,
        subscriber,
        cookie: jwt_cookie,
        subscribe_auth,
    })
}

/// The key of the algorithm `--{role}-alg` pins (`HS256`, the default: from
/// `--{role}-key` or `--{role}-key-file`; `RS256`, `ES256`: from
/// `--{role}-public-key-file`), where `role` is `jwt`, `jwt-publisher` or
/// `jwt-subscriber`. A key flag of the other kind is refused, never ignored; an alg with
/// no key flag of the role too.
fn jwt_key(raw: &Raw, role: &str) -> Result<Option<Key>, ConfigError> {
    let name = |suffix: &str| format!("{role}-{suffix}");
    let public = raw.get(&name("public-key-file"));
    let secret = raw
        .get(&name("key"))
        .or(raw.get(&name("key-file")))
        .is_some();
    let alg = match raw.get(&name("alg")) {
        None | Some("HS256") => "HS256",
        Some(alg @ ("RS256" | "ES256")) => alg,
        Some(v) => {
            return Err(ConfigError(format!(
                "--{role}-alg: expected HS256, RS256 or ES256, got '{v}'"
            )));
        }
    };
    let Some(path) = public else {
        if alg != "HS256" {
            return Err(ConfigError(format!(
                "--{role}-alg {alg} needs --{role}-public-key-file PATH (a PEM public key)"
            )));
        }
        return secret_key(raw, role);
    };
    if alg == "HS256" {
        return Err(ConfigError(format!(
            "--{role}-public-key-file needs --{role}-alg RS256 or ES256"
        )));
    }
    if secret {
        return Err(ConfigError(format!(
            "--{role}-alg {alg} takes --{role}-public-key-file, not --{role}-key or --{role}-key-file"
        )));
    }
    let pem = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "--{role}-public-key-file: cannot read '{path}': {e}"
        ))
    })?;
    let key = if alg == "RS256" {
        Key::rs256_pem(&pem)
    } else {
        Key::es256_pem(&pem)
    };
    key.map(Some)
        .map_err(|e| ConfigError(format!("--{role}-public-key-file '{path}' for {alg}: {e}")))
}

/// The HS256 key from `--{role}-key` or `--{role}-key-file` (not both), at least
/// [`MIN_KEY_BYTES`]. The error names the flag, never the key.
fn secret_key(raw: &Raw, role: &str) -> Result<Option<Key>, ConfigError> {
    let (key_flag, file_flag) = (format!("{role}-key"), format!("{role}-key-file"));
    let (flag, bytes) = match (raw.get(&key_flag), raw.get(&file_flag)) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(ConfigError(format!(
                "--{key_flag} and --{file_flag}: give one of them, not both"
            )));
        }
        (Some(key), None) => (key_flag, key.as_bytes().to_vec()),
        (None, Some(path)) => {
            let mut bytes = std::fs::read(path)
                .map_err(|e| ConfigError(format!("--{file_flag}: cannot read '{path}': {e}")))?;
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
            }
            (file_flag, bytes)
        }
    };
    if bytes.len() < MIN_KEY_BYTES {
        return Err(ConfigError(format!(
            "--{flag}: an HS256 key must be at least {MIN_KEY_BYTES} bytes (RFC 7518 §3.2), this one has {}",
            bytes.len()
        )));
    }
    Ok(Some(Key::new(bytes)))
}

/// A byte of a cookie name: an RFC 9110 token character.
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
