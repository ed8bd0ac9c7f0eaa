//! The token flags: `--jwt-key` / `--jwt-key-file`, `--jwt-issuer`, `--jwt-audience`,
//! `--jwt-cookie`, `--subscribe-auth`.

use super::{ConfigError, Raw};
use crate::auth::{DEFAULT_COOKIE, Key, MIN_KEY_BYTES, SubscribeAuth};

/// The key, the cookie name and the subscribe mode, checked together (required mode
/// needs a key).
pub(super) fn settings(raw: &Raw) -> Result<(Option<Key>, String, SubscribeAuth), ConfigError> {
    let jwt_key = jwt_key(raw)?;
    let issuer = raw.get("jwt-issuer").map(str::to_owned);
    let audience = raw.get("jwt-audience").map(str::to_owned);
    if issuer.is_some() != audience.is_some() {
        return Err(ConfigError(
            "--jwt-issuer and --jwt-audience: give both (what a Mercure 1.0 access token must carry)".into(),
        ));
    }
    if issuer.is_some() && jwt_key.is_none() {
        return Err(ConfigError(
            "--jwt-issuer and --jwt-audience need --jwt-key or --jwt-key-file".into(),
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
    let jwt_key = jwt_key.map(|k| k.expecting(issuer, audience));
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
    if subscribe_auth == SubscribeAuth::Required && jwt_key.is_none() {
        return Err(ConfigError(
            "--subscribe-auth required needs --jwt-key or --jwt-key-file".into(),
        ));
    }
    Ok((jwt_key, jwt_cookie, subscribe_auth))
}

/// The key from `--jwt-key` or `--jwt-key-file` (not both), at least [`MIN_KEY_BYTES`].
/// The error names the flag, never the key.
fn jwt_key(raw: &Raw) -> Result<Option<Key>, ConfigError> {
    let (flag, bytes) = match (raw.get("jwt-key"), raw.get("jwt-key-file")) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(ConfigError(
                "--jwt-key and --jwt-key-file: give one of them, not both".into(),
            ));
        }
        (Some(key), None) => ("--jwt-key", key.as_bytes().to_vec()),
        (None, Some(path)) => {
            let mut bytes = std::fs::read(path)
                .map_err(|e| ConfigError(format!("--jwt-key-file: cannot read '{path}': {e}")))?;
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
            }
            ("--jwt-key-file", bytes)
        }
    };
    if bytes.len() < MIN_KEY_BYTES {
        return Err(ConfigError(format!(
            "{flag}: an HS256 key must be at least {MIN_KEY_BYTES} bytes (RFC 7518 §3.2), this one has {}",
            bytes.len()
        )));
    }
    Ok(Some(Key::new(bytes)))
}

/// A byte of a cookie name: an RFC 9110 token character.
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
