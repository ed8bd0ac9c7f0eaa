//! The token flags: `--jwt-alg`, `--jwt-key` / `--jwt-key-file` / `--jwt-public-key-file`,
//! `--jwt-issuer`, `--jwt-audience`,
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
            "--subscribe-auth required needs --jwt-key, --jwt-key-file or --jwt-public-key-file"
                .into(),
        ));
    }
    Ok((jwt_key, jwt_cookie, subscribe_auth))
}

/// The key of the algorithm `--jwt-alg` pins (`HS256`, the default: from `--jwt-key` or
/// `--jwt-key-file`; `RS256`, `ES256`: from `--jwt-public-key-file`). A key flag of the
/// other kind is refused, never ignored.
fn jwt_key(raw: &Raw) -> Result<Option<Key>, ConfigError> {
    let public = raw.get("jwt-public-key-file");
    let secret = raw.get("jwt-key").or(raw.get("jwt-key-file")).is_some();
    let alg = match raw.get("jwt-alg") {
        None | Some("HS256") => "HS256",
        Some(alg @ ("RS256" | "ES256")) => alg,
        Some(v) => {
            return Err(ConfigError(format!(
                "--jwt-alg: expected HS256, RS256 or ES256, got '{v}'"
            )));
        }
    };
    let Some(path) = public else {
        if alg != "HS256" {
            return Err(ConfigError(format!(
                "--jwt-alg {alg} needs --jwt-public-key-file PATH (a PEM public key)"
            )));
        }
        return secret_key(raw);
    };
    if alg == "HS256" {
        return Err(ConfigError(
            "--jwt-public-key-file needs --jwt-alg RS256 or ES256".into(),
        ));
    }
    if secret {
        return Err(ConfigError(format!(
            "--jwt-alg {alg} takes --jwt-public-key-file, not --jwt-key or --jwt-key-file"
        )));
    }
    let pem = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("--jwt-public-key-file: cannot read '{path}': {e}")))?;
    let key = if alg == "RS256" {
        Key::rs256_pem(&pem)
    } else {
        Key::es256_pem(&pem)
    };
    key.map(Some)
        .map_err(|e| ConfigError(format!("--jwt-public-key-file '{path}' for {alg}: {e}")))
}

/// The HS256 key from `--jwt-key` or `--jwt-key-file` (not both), at least
/// [`MIN_KEY_BYTES`]. The error names the flag, never the key.
fn secret_key(raw: &Raw) -> Result<Option<Key>, ConfigError> {
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
