//! Fuzzes token verification: arbitrary text as a token, and arbitrary bytes as the
//! claims of a correctly signed token (so the claims parser is reached past the
//! signature check). Never panics; what passes stays within the caps.
//! Run: `cargo fuzz run jwt -- -max_total_time=600`
#![no_main]
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use ssehub::auth::{bearer, cookie, verify, Key, MAX_SELECTORS};

const KEY: &[u8] = b"fuzzing key, at least thirty-two bytes";

fuzz_target!(|data: &[u8]| {
    let key = Key::new(KEY);
    let now = SystemTime::now();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = verify(text, &key, now);
        let _ = cookie(text, "mercureAuthorization");
        let _ = bearer(text);
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
        URL_SAFE_NO_PAD.encode(data)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    if let Ok(claims) = verify(&format!("{signing_input}.{sig}"), &key, now) {
        assert!(claims.subscribe.as_slice().len() <= MAX_SELECTORS);
        assert!(claims.publish.as_slice().len() <= MAX_SELECTORS);
    }
});
