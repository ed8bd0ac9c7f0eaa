//! Fuzzes the token parser's header and claims JSON: both fuzz-chosen and correctly
//! signed, so every shape reaches the strict types. Never panics; a token passes only
//! when serde_json, read independently, sees a header object with `alg` "HS256" and no
//! `crit`, and a claims object whose dates are numbers and whose lists are strings.
//! Run: `cargo fuzz run jose -- -max_total_time=600`
#![no_main]
use std::time::UNIX_EPOCH;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sha2::Sha256;
use ssehub::auth::{verify, Key};

const KEY: &[u8] = b"fuzzing key, at least thirty-two bytes";

fuzz_target!(|input: (&[u8], &[u8])| {
    let (header, claims) = input;
    let signed = format!("{}.{}", B64.encode(header), B64.encode(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
    mac.update(signed.as_bytes());
    let token = format!("{signed}.{}", B64.encode(mac.finalize().into_bytes()));
    if verify(&token, &Key::new(KEY), UNIX_EPOCH).is_ok() {
        let h: Value = serde_json::from_slice(header).unwrap();
        let c: Value = serde_json::from_slice(claims).unwrap();
        assert!(h.is_object() && h["alg"] == "HS256" && h.get("crit").is_none());
        assert!(c.is_object() && c.get("mercure").is_none_or(Value::is_object));
        let dates = ["exp", "nbf", "iat"].map(|k| c.get(k).is_none_or(Value::is_number));
        let strings = |l: &Value| l.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        let lists = ["subscribe", "publish"].map(|k| c["mercure"].get(k).is_none_or(strings));
        assert!(dates.iter().chain(&lists).all(|ok| *ok), "{c}");
    }
});
