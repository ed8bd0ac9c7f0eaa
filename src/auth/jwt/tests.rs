//! Tests of token verification: every rejection path, the leeway, the caps, and fixed
//! tokens minted by PyJWT.

use super::*;
use crate::topic::Topic;

const KEY: &str = "!ChangeThisMercureHubJWTSecretKey!";

/// Minted by PyJWT 2 with [`KEY`]: `{"mercure":{"publish":["*"]}}`.
const PYJWT_PUBLISH_ALL: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJtZXJjdXJlIjp7InB1Ymxpc2giOlsiKiJdfX0.a8cjcSRUAcHdnGNMKifA4BK5epRXxQI0UBp2XpNrBdw";

/// Minted by PyJWT 2 with [`KEY`]: `{"mercure":{"subscribe":["a","orders/*"],
/// "payload":{"user":"x"}},"sub":"u1","exp":4102444800}` (2100-01-01).
const PYJWT_SUBSCRIBE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJtZXJjdXJlIjp7InN1YnNjcmliZSI6WyJhIiwib3JkZXJzLyoiXSwicGF5bG9hZCI6eyJ1c2VyIjoieCJ9fSwic3ViIjoidTEiLCJleHAiOjQxMDI0NDQ4MDB9.dOVDgmnWw6cVNzF1faWGVCM0C3n2_qitcUgPt7BJZcY";

fn key() -> Key {
    Key::new(KEY)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with this header and payload text, signed with `key` (HMAC-SHA256 from
/// RustCrypto, not our verifier).
fn sign(header: &str, payload: &str, key: &str) -> String {
    let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    let sig = mac.finalize().into_bytes();
    format!("{signing_input}.{}", b64(&sig))
}

/// An HS256 token of `payload` under [`KEY`].
fn hs256(payload: &str) -> String {
    sign(r#"{"alg":"HS256","typ":"JWT"}"#, payload, KEY)
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn check(token: &str) -> Result<Claims, TokenError> {
    verify(token, &key(), at(1_000_000))
}

fn topic(t: &str) -> Topic {
    Topic::new(t).unwrap()
}

#[test]
fn tokens_minted_by_pyjwt_verify() {
    let c = verify(PYJWT_PUBLISH_ALL, &key(), SystemTime::now()).unwrap();
    assert!(c.publish.matches(&topic("anything")));
    assert!(c.subscribe.is_empty());
    assert_eq!(c.expires, None);
    let c = verify(PYJWT_SUBSCRIBE, &key(), SystemTime::now()).unwrap();
    assert!(c.subscribe.matches(&topic("a")));
    assert!(c.subscribe.matches(&topic("orders/eu/1")));
    assert!(!c.subscribe.matches(&topic("orders")));
    assert!(c.publish.is_empty());
    assert_eq!(c.expires, Some(at(4_102_444_800)));
}

#[test]
fn the_signature_is_over_the_exact_text() {
    // Flip one character of each part: the header or payload no longer matches the
    // signature, or the signature no longer matches them.
    let t = PYJWT_SUBSCRIBE;
    let dots: Vec<usize> = t.match_indices('.').map(|(i, _)| i).collect();
    for i in [5, dots[0] + 5, dots[1] + 5] {
        let mut bytes = t.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let e = verify(&tampered, &key(), SystemTime::now()).unwrap_err();
        assert!(
            matches!(e, TokenError::BadSignature | TokenError::Malformed(_)),
            "{i}: {e:?}"
        );
    }
    // A different payload with the old signature.
    let forged = format!(
        "{}.{}.{}",
        &t[..dots[0]],
        b64(br#"{"mercure":{"subscribe":["*"]}}"#),
        &t[dots[1] + 1..]
    );
    assert_eq!(
        verify(&forged, &key(), SystemTime::now()),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn the_wrong_key_is_a_bad_signature() {
    let other = Key::new("another key that is also long enough");
    assert_eq!(
        verify(PYJWT_PUBLISH_ALL, &other, SystemTime::now()),
        Err(TokenError::BadSignature)
    );
    // A signature of the wrong length, too.
    let t = hs256("{}");
    let (signed, sig) = t.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    for len in [0, 16, 31] {
        let short = format!("{signed}.{}", b64(&sig[..len]));
        assert_eq!(check(&short), Err(TokenError::BadSignature), "{len}");
    }
    let long = format!("{signed}.{}", b64(&[&sig[..], b"x"].concat()));
    assert_eq!(check(&long), Err(TokenError::BadSignature));
}

#[test]
fn only_hs256_is_allowed() {
    for header in [
        r#"{"alg":"none"}"#,
        r#"{"alg":"HS512"}"#,
        r#"{"alg":"HS384"}"#,
        r#"{"alg":"RS256"}"#,
        r#"{"alg":"hs256"}"#,
        r#"{"typ":"JWT"}"#,
        r#"{"alg":"HS256","crit":["exp"]}"#,
    ] {
        // Correctly signed with the key, whatever the header claims: still refused.
        let t = sign(header, "{}", KEY);
        let e = check(&t).unwrap_err();
        assert!(matches!(e, TokenError::NotAllowed(_)), "{header}: {e:?}");
        assert_eq!(e.reason(), AuthFailure::NotAllowed);
    }
    // alg none with an empty signature, as such tokens are sent.
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(b"{}"));
    assert_eq!(check(&none), Err(TokenError::NotAllowed("alg none")));
    // A null alg is a wrong type, not a missing one; so is a number.
    for header in [r#"{"alg":null}"#, r#"{"alg":256}"#, r#"{"alg":["HS256"]}"#] {
        assert_eq!(
            check(&sign(header, "{}", KEY)),
            Err(TokenError::Malformed("alg must be a string")),
            "{header}"
        );
    }
}

#[test]
fn malformed_tokens_say_which_part() {
    let good = hs256("{}");
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "three"),
        ("abc".into(), "three"),
        (format!("{h}.{p}"), "three"),
        (format!("{good}.x"), "three"),
        (format!("!!.{p}.{s}"), "header is not base64url"),
        (format!("{h}=.{p}.{s}"), "header is not base64url"),
        (
            format!("{}.{p}.{s}", b64(b"not json")),
            "header is not JSON",
        ),
        (
            format!("{}.{p}.{s}", b64(br#"{"alg":"HS256","alg":"HS256"}"#)),
            "header is not JSON, or repeats a name",
        ),
        (
            format!("{}.{p}.{s}", b64(b"[1]")),
            "header must be a JSON object",
        ),
        (format!("{h}.{p}.!!"), "signature is not base64url"),
        (format!("{h}.{p}.{s}="), "signature is not base64url"),
    ];
    for (token, needle) in cases {
        let e = check(&token).unwrap_err();
        assert_eq!(e.reason(), AuthFailure::Malformed, "{token}: {e:?}");
        let text = e.to_string();
        assert!(text.starts_with("malformed: "), "{text}");
        assert!(text.contains(needle), "{token}: {text}");
    }
}

#[test]
fn claims_must_be_json_of_the_right_types() {
    assert_refused(&[
        ("not json", "payload is not JSON, or repeats a name"),
        ("{", "payload is not JSON, or repeats a name"),
        ("[1]", "payload must be a JSON object"),
        (r#"{"exp":"soon"}"#, "exp must be a NumericDate (a number)"),
        (r#"{"nbf":true}"#, "nbf must be a NumericDate (a number)"),
        (r#"{"mercure":"*"}"#, "mercure must be a JSON object"),
        (
            r#"{"mercure":{"subscribe":"*"}}"#,
            "mercure.subscribe must be an array of strings",
        ),
        (
            r#"{"mercure":{"subscribe":[1]}}"#,
            "mercure.subscribe must be an array of strings",
        ),
        (
            r#"{"mercure":{"subscribe":[["a"]]}}"#,
            "mercure.subscribe must be an array of strings",
        ),
        (
            r#"{"mercure":{"publish":[null]}}"#,
            "mercure.publish must be an array of strings",
        ),
        (
            r#"{"mercure":{"publish":{"0":"*"}}}"#,
            "mercure.publish must be an array of strings",
        ),
        (
            r#"{"exp":1,"exp":2}"#,
            "payload is not JSON, or repeats a name",
        ),
        (
            r#"{"mercure":{"subscribe":["a"],"subscribe":["b"]}}"#,
            "payload is not JSON, or repeats a name",
        ),
        // Repeated anywhere, even in a claim that is not read.
        (
            r#"{"mercure":{"payload":{"a":1,"a":2}}}"#,
            "payload is not JSON, or repeats a name",
        ),
    ]);
}

#[test]
fn unknown_members_of_any_type_are_ignored_and_missing_lists_are_empty() {
    let c = check(&hs256(
        r#"{"sub":"u","iat":1.5,"aud":["x"],"jti":null,"mercure":{"payload":[null,{"a":1}],"other":2}}"#,
    ))
    .unwrap();
    assert!(c.subscribe.is_empty() && c.publish.is_empty());
    assert_eq!(c.expires, None);
    let c = check(&hs256(r#"{"mercure":{}}"#)).unwrap();
    assert!(c.subscribe.is_empty() && c.publish.is_empty());
    // Header parameters this hub does not read are not checked either.
    let t = sign(
        r#"{"alg":"HS256","cty":null,"kid":[1],"x5u":{}}"#,
        r#"{"mercure":{"publish":["a"]}}"#,
        KEY,
    );
    assert!(check(&t).unwrap().publish.matches(&topic("a")));
}

#[test]
fn expiry_has_a_five_second_leeway() {
    let t = hs256(r#"{"exp":1000}"#);
    assert!(verify(&t, &key(), at(999)).is_ok());
    assert!(verify(&t, &key(), at(1004)).is_ok());
    assert!(verify(&t, &key(), at(1000) + Duration::from_millis(4999)).is_ok());
    assert_eq!(verify(&t, &key(), at(1005)), Err(TokenError::Expired));
    assert_eq!(verify(&t, &key(), at(5000)), Err(TokenError::Expired));
    assert_eq!(verify(&t, &key(), at(999)).unwrap().expires, Some(at(1000)));
    assert_eq!(TokenError::Expired.to_string(), "expired");
    assert_eq!(TokenError::Expired.reason(), AuthFailure::Expired);
    // Fractional and out-of-range NumericDates.
    let t = hs256(r#"{"exp":1000.5}"#);
    assert_eq!(
        verify(&t, &key(), at(999)).unwrap().expires,
        Some(at(1000) + Duration::from_millis(500))
    );
    assert_eq!(check(&hs256(r#"{"exp":-1}"#)), Err(TokenError::Expired));
    assert_eq!(check(&hs256(r#"{"exp":1e300}"#)).unwrap().expires, None);
}

#[test]
fn not_before_has_a_five_second_leeway() {
    let t = hs256(r#"{"nbf":1000}"#);
    assert_eq!(verify(&t, &key(), at(994)), Err(TokenError::NotYetValid));
    assert!(verify(&t, &key(), at(995)).is_ok());
    assert!(verify(&t, &key(), at(2000)).is_ok());
    assert_eq!(TokenError::NotYetValid.to_string(), "not yet valid");
    assert_eq!(TokenError::NotYetValid.reason(), AuthFailure::NotYetValid);
    // Expired is checked first.
    let t = hs256(r#"{"nbf":3000,"exp":2000}"#);
    assert_eq!(verify(&t, &key(), at(2500)), Err(TokenError::Expired));
}

#[test]
fn the_signature_is_checked_before_the_claims() {
    // An expired token under another key: the signature is what is wrong.
    let t = sign(
        r#"{"alg":"HS256"}"#,
        r#"{"exp":1}"#,
        "not the key, but long enough too",
    );
    assert_eq!(check(&t), Err(TokenError::BadSignature));
    // Junk payload under another key: still the signature.
    let t = sign(
        r#"{"alg":"HS256"}"#,
        "junk",
        "not the key, but long enough too",
    );
    assert_eq!(check(&t), Err(TokenError::BadSignature));
}

#[test]
fn size_caps_hold() {
    // The whole token.
    let pad = "x".repeat(MAX_TOKEN_BYTES);
    let t = hs256(&format!(r#"{{"sub":"{pad}"}}"#));
    assert_eq!(check(&t), Err(TokenError::TooLong));
    assert_eq!(
        check(&"a".repeat(MAX_TOKEN_BYTES + 1)),
        Err(TokenError::TooLong)
    );
    assert_eq!(
        TokenError::TooLong.to_string(),
        "malformed: token exceeds 7168 bytes"
    );
    // Selectors per list.
    let list = |n: usize| {
        (0..n)
            .map(|i| format!("\"t{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let ok = hs256(&format!(
        r#"{{"mercure":{{"subscribe":[{}]}}}}"#,
        list(MAX_SELECTORS)
    ));
    assert!(check(&ok).is_ok());
    for claim in ["subscribe", "publish"] {
        let t = hs256(&format!(
            r#"{{"mercure":{{"{claim}":[{}]}}}}"#,
            list(MAX_SELECTORS + 1)
        ));
        assert_eq!(check(&t), Err(TokenError::TooManySelectors), "{claim}");
    }
    // Bytes per selector.
    let long = "s".repeat(MAX_SELECTOR_BYTES);
    assert!(
        check(&hs256(&format!(
            r#"{{"mercure":{{"subscribe":["{long}"]}}}}"#
        )))
        .is_ok()
    );
    let t = hs256(&format!(r#"{{"mercure":{{"publish":["{long}x"]}}}}"#));
    assert_eq!(check(&t), Err(TokenError::SelectorTooLong));
    for e in [TokenError::TooManySelectors, TokenError::SelectorTooLong] {
        assert_eq!(e.reason(), AuthFailure::Malformed);
        assert!(e.to_string().starts_with("malformed: "));
    }
}

#[test]
fn the_key_is_never_shown() {
    let k = key();
    assert_eq!(format!("{k:?}"), "Key(HS256, ..)");
    assert_eq!(k.len(), KEY.len());
    assert!(!k.is_empty());
}

#[test]
fn every_message_is_one_short_line() {
    for e in [
        TokenError::TooLong,
        TokenError::Malformed("x"),
        TokenError::Malformed("header is not JSON, or repeats a name"),
        TokenError::Malformed("payload is not JSON, or repeats a name"),
        TokenError::Malformed("mercure.subscribe must be an array of strings"),
        TokenError::Malformed("exp must be a NumericDate (a number)"),
        TokenError::TooManySelectors,
        TokenError::SelectorTooLong,
        TokenError::NotAllowed("alg none"),
        TokenError::BadSignature,
        TokenError::Expired,
        TokenError::NotYetValid,
    ] {
        let text = e.to_string();
        assert!(!text.contains('\n') && text.len() < 80, "{text}");
    }
}

/// Each `(payload, reason)`: the payload, correctly signed, is refused as malformed with
/// this reason.
fn assert_refused(cases: &[(&str, &'static str)]) {
    for (payload, reason) in cases {
        assert_eq!(
            check(&hs256(payload)),
            Err(TokenError::Malformed(reason)),
            "{payload}"
        );
    }
}

#[test]
fn a_header_that_is_not_an_object_is_refused() {
    // #20: a header that is a JSON array, `["HS256",null]`, signed with the key, was read
    // as `{"alg":"HS256"}` (a serde-derived struct also reads a sequence). RFC 7515 §5.2.
    for header in [
        r#"["HS256",null]"#,
        r#"["HS256"]"#,
        r#""HS256""#,
        "null",
        "1",
    ] {
        let t = sign(header, r#"{"mercure":{"subscribe":["*"]}}"#, KEY);
        assert_eq!(
            check(&t),
            Err(TokenError::Malformed("header must be a JSON object")),
            "{header}"
        );
    }
}

#[test]
fn claims_that_are_not_an_object_are_refused() {
    // #20: claims as an array, `[{"subscribe":["*"],"publish":["*"]},null,null]`, were read
    // as `{"mercure":{…},"exp":null,"nbf":null}` and granted every topic; so was a
    // `mercure` claim that is an array of the two lists. RFC 7519 §7.2.
    assert_refused(&[
        (
            r#"[{"subscribe":["*"],"publish":["*"]},null,null]"#,
            "payload must be a JSON object",
        ),
        (r#"[{"subscribe":["*"]}]"#, "payload must be a JSON object"),
        ("null", "payload must be a JSON object"),
        (r#""{}""#, "payload must be a JSON object"),
        (
            r#"{"mercure":[["*"],["*"]]}"#,
            "mercure must be a JSON object",
        ),
        (r#"{"mercure":[["*"]]}"#, "mercure must be a JSON object"),
        (r#"{"mercure":null}"#, "mercure must be a JSON object"),
        (
            r#"{"mercure":{"subscribe":null}}"#,
            "mercure.subscribe must be an array of strings",
        ),
        (
            r#"{"mercure":{"publish":null}}"#,
            "mercure.publish must be an array of strings",
        ),
    ]);
}

#[test]
fn a_null_or_mistyped_numeric_date_is_refused_not_absent() {
    // #20: `"exp": null` read as a token that never expires, `"nbf": null` as one valid
    // at once. A NumericDate is a JSON number (RFC 7519 §2, §4.1.4-6); `iat` is checked
    // the same way, though its value is not used.
    for claim in ["exp", "nbf", "iat"] {
        let reason = match claim {
            "exp" => "exp must be a NumericDate (a number)",
            "nbf" => "nbf must be a NumericDate (a number)",
            _ => "iat must be a NumericDate (a number)",
        };
        for value in ["null", r#""4102444800""#, "true", "[1]", "{}"] {
            let payload = format!(r#"{{"{claim}":{value}}}"#);
            assert_eq!(
                check(&hs256(&payload)),
                Err(TokenError::Malformed(reason)),
                "{payload}"
            );
        }
    }
}

/// The hub's issuer and audience in the access-token tests.
const ISS: &str = "https://example.com";
const AUD: &str = "https://hub.example.com/.well-known/mercure";

/// [`key`] expecting [`ISS`] and [`AUD`].
fn hub_key() -> Key {
    key().expecting(Some(ISS.into()), Some(AUD.into()))
}

/// An `at+jwt` token of `payload` under [`KEY`], checked by [`hub_key`].
fn check_at(payload: &str) -> Result<Claims, TokenError> {
    let token = sign(r#"{"alg":"HS256","typ":"at+jwt"}"#, payload, KEY);
    verify(&token, &hub_key(), at(1_000_000))
}

/// A 1.0 payload with these `aud` JSON text and `authorization_details` JSON text.
fn access_payload(aud: &str, details: &str) -> String {
    format!(r#"{{"iss":"{ISS}","aud":{aud},"exp":2000000,"authorization_details":{details}}}"#)
}

const DETAILS: &str = r#"[
    {"type":"https://mercure.rocks/authorization-detail","actions":["subscribe"],
     "topics":[{"match":"orders/*"},{"match":"https://e.com/books/:id","match_type":"urlpattern"},
               {"match":"a/{x}","match_type":"exact"}]},
    {"type":"tenant","actions":{"read":true},"topics":"acme"},
    {"type":"https://mercure.rocks/authorization-detail","actions":["publish","other"],
     "topics":[{"match":"*"}],"payload":{"user":"u"}}]"#;

#[test]
fn access_tokens_grant_their_authorization_details() {
    for aud in [format!("\"{AUD}\""), format!("[\"other\",\"{AUD}\"]")] {
        let c = check_at(&access_payload(&aud, DETAILS)).unwrap();
        assert!(c.access_token);
        // `orders/*` and `a/{x}` are exact names, under either rules.
        for s in [c.subscribe.clone(), c.subscribe.mercure()] {
            assert!(s.matches(&topic("orders/*")));
            assert!(!s.matches(&topic("orders/1")));
            assert!(s.matches(&topic("a/{x}")));
            assert!(!s.matches(&topic("a/1")));
            assert!(s.matches(&topic("https://e.com/books/7")));
            assert!(!s.matches(&topic("https://e.com/books/7/x")));
        }
        assert!(c.publish.matches(&topic("anything")));
        assert_eq!(c.expires, Some(at(2_000_000)));
    }
    // `application/at+jwt` and any case mark an access token too.
    let token = sign(
        r#"{"alg":"HS256","typ":"Application/AT+JWT"}"#,
        &access_payload(&format!("\"{AUD}\""), DETAILS),
        KEY,
    );
    assert!(is_access_token(&token));
    assert!(
        verify(&token, &hub_key(), at(1_000_000))
            .unwrap()
            .access_token
    );
    assert!(!is_access_token(&hs256("{}")));
    assert!(!is_access_token("not a token"));
}

#[test]
fn access_tokens_refused_with_a_reason() {
    let aud = format!("\"{AUD}\"");
    let d = r#"[{"type":"https://mercure.rocks/authorization-detail","actions":["subscribe"],"topics":[{"match":"a"}]}]"#;
    let cases: &[(String, TokenError)] = &[
        (
            format!(r#"{{"aud":{aud},"exp":2000000,"authorization_details":{d}}}"#),
            TokenError::Malformed("an at+jwt token needs iss"),
        ),
        (
            format!(r#"{{"iss":"{ISS}","exp":2000000,"authorization_details":{d}}}"#),
            TokenError::Malformed("an at+jwt token needs aud"),
        ),
        (
            format!(r#"{{"iss":"{ISS}","aud":{aud},"authorization_details":{d}}}"#),
            TokenError::Malformed("an at+jwt token needs exp"),
        ),
        (
            format!(r#"{{"iss":"other","aud":{aud},"exp":2000000}}"#),
            TokenError::NotAllowed("iss is not this hub's issuer"),
        ),
        (
            access_payload("\"https://other/.well-known/mercure\"", d),
            TokenError::NotAllowed("aud does not name this hub"),
        ),
        (
            access_payload("[\"a\",\"b\"]", d),
            TokenError::NotAllowed("aud does not name this hub"),
        ),
        (
            access_payload("7", d),
            TokenError::Malformed("aud must be a string or an array of strings"),
        ),
        (
            format!(r#"{{"iss":7,"aud":{aud},"exp":2000000}}"#),
            TokenError::Malformed("iss must be a string"),
        ),
        (
            access_payload(&aud, "{}"),
            TokenError::Malformed("authorization_details must be an array"),
        ),
        (
            access_payload(&aud, "[7]"),
            TokenError::Malformed("authorization_details must hold JSON objects"),
        ),
        (
            access_payload(&aud, r#"[{"actions":["subscribe"]}]"#),
            TokenError::Malformed("authorization_details entries need a type"),
        ),
        (
            access_payload(
                &aud,
                r#"[{"type":"https://mercure.rocks/authorization-detail","actions":"subscribe"}]"#,
            ),
            TokenError::Malformed("authorization_details actions must be an array of strings"),
        ),
        (
            access_payload(
                &aud,
                r#"[{"type":"https://mercure.rocks/authorization-detail","topics":[{"match_type":"exact"}]}]"#,
            ),
            TokenError::Malformed("authorization_details topics need a match"),
        ),
        (
            access_payload(
                &aud,
                r#"[{"type":"https://mercure.rocks/authorization-detail","topics":[null]}]"#,
            ),
            TokenError::Malformed("authorization_details topics must hold JSON objects"),
        ),
        (
            access_payload(
                &aud,
                r#"[{"type":"https://mercure.rocks/authorization-detail","topics":[{"match":"a","match_type":"uritemplate"}]}]"#,
            ),
            TokenError::Malformed("authorization_details match_type must be exact or urlpattern"),
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(check_at(payload).unwrap_err(), *want, "{payload}");
    }
    // The same rights without `typ: at+jwt`: refused, not read as a 0.x token.
    let token = hs256(&access_payload(&aud, d));
    assert_eq!(
        verify(&token, &hub_key(), at(1_000_000)).unwrap_err(),
        TokenError::NotAllowed("authorization_details needs the header typ at+jwt (RFC 9068)")
    );
    // A hub given no issuer and audience takes no access token.
    let token = sign(
        r#"{"alg":"HS256","typ":"at+jwt"}"#,
        &access_payload(&aud, d),
        KEY,
    );
    assert_eq!(
        check(&token).unwrap_err(),
        TokenError::NotAllowed("at+jwt tokens need --jwt-issuer and --jwt-audience on the hub")
    );
    // `typ` of the wrong type.
    let token = sign(r#"{"alg":"HS256","typ":1}"#, "{}", KEY);
    assert_eq!(
        check(&token).unwrap_err(),
        TokenError::Malformed("typ must be a string")
    );
}

#[test]
fn payloads_are_any_json_kept_compact_and_bounded() {
    // 0.x: `mercure.payload`, for every subscription; minted by PyJWT.
    let c = verify(PYJWT_SUBSCRIBE, &key(), SystemTime::now()).unwrap();
    assert_eq!(c.payload_for("a").as_deref(), Some(r#"{"user":"x"}"#));
    assert_eq!(c.payload_for("zzz").as_deref(), Some(r#"{"user":"x"}"#));
    for (json, kept) in [
        (r#""label""#, Some(r#""label""#)),
        ("[1, 2.5, true]", Some("[1,2.5,true]")),
        ("null", None),
    ] {
        let c = check(&hs256(&format!(
            r#"{{"mercure":{{"subscribe":["a"],"payload":{json}}}}}"#
        )))
        .unwrap();
        assert_eq!(c.payload_for("a").as_deref(), kept, "{json}");
    }
    // Bounded as compact text: at the cap it is kept, one byte more refuses the token.
    let fill = "x".repeat(MAX_PAYLOAD_BYTES - 2);
    let at_cap = format!(r#"{{"mercure":{{"payload":"{fill}"}}}}"#);
    assert_eq!(
        check(&hs256(&at_cap)).unwrap().payloads[0].json.len(),
        MAX_PAYLOAD_BYTES
    );
    let over = format!(r#"{{"mercure":{{"payload":"{fill}x"}}}}"#);
    assert_eq!(check(&hs256(&over)), Err(TokenError::PayloadTooLong));
    assert_eq!(
        TokenError::PayloadTooLong.to_string(),
        format!("malformed: a payload exceeds {MAX_PAYLOAD_BYTES} bytes as compact JSON")
    );
    // A repeated name inside a payload is malformed, as anywhere in a token.
    assert!(matches!(
        check(&hs256(r#"{"mercure":{"payload":{"a":1,"a":2}}}"#)),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn a_1_0_payload_belongs_to_the_subscriptions_its_detail_covers() {
    let details = r#"[
        {"type":"https://mercure.rocks/authorization-detail","actions":["publish"],
         "topics":[{"match":"*"}],"payload":{"never":"a publish detail"}},
        {"type":"https://mercure.rocks/authorization-detail","actions":["subscribe"],
         "topics":[{"match":"https://e.com/books/:id","match_type":"urlpattern"}],
         "payload":{"kind":"books"}},
        {"type":"https://mercure.rocks/authorization-detail","actions":["subscribe"],
         "topics":[{"match":"news"}]},
        {"type":"https://mercure.rocks/authorization-detail","actions":["subscribe"],
         "topics":[{"match":"*"}],"payload":"default"}]"#;
    let c = check_at(&access_payload(&format!("\"{AUD}\""), details)).unwrap();
    assert_eq!(c.payloads.len(), 2);
    // The pattern's own text, and a topic it matches.
    for s in ["https://e.com/books/:id", "https://e.com/books/7"] {
        assert_eq!(c.payload_for(s).as_deref(), Some(r#"{"kind":"books"}"#));
    }
    // `news`'s detail has none: the first covering one with a payload is `*`'s.
    assert_eq!(c.payload_for("news").as_deref(), Some(r#""default""#));
}
