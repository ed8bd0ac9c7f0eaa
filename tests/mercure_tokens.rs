//! Mercure 1.0 access tokens (RFC 9068, `typ: at+jwt`) on the Mercure path and on
//! `/stream`, minted by PyJWT and Node's `jsonwebtoken` (never our own code): rights in
//! `authorization_details`, the `__Secure-mercure_access_token` cookie, and every
//! refusal with its RFC 6750 answer (`401 invalid_token`, `403 insufficient_scope`,
//! `400 invalid_request`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::mercure::{HUB, enc, form_post, get, hub_url};
use crate::support::{Response, SseClient, TestServer, start};

const KEY: &str = "mercure 1.0 test key, at least 32 bytes";
const ISS: &str = "https://example.com";
const AUD: &str = "https://hub.example.com/.well-known/mercure";
const QUIET: Duration = Duration::from_millis(300);
/// The type of Mercure's authorization detail entries.
const DETAIL: &str = "https://mercure.rocks/authorization-detail";

/// A hub taking HS256 access tokens for [`ISS`] and [`AUD`], and `extra` flags.
fn hub(extra: &[&str]) -> TestServer {
    let mut args = vec![
        "--no-demo",
        "--heartbeat",
        "0",
        "--jwt-issuer",
        ISS,
        "--jwt-audience",
        AUD,
    ];
    args.extend_from_slice(extra);
    start(&args)
}

/// An hour from now, as a NumericDate.
fn exp() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600
}

/// The claims of an access token with `subscribe` and `publish` matches (exact).
pub(crate) fn claims(subscribe: &[&str], publish: &[&str]) -> Value {
    let topics = |list: &[&str]| list.iter().map(|m| json!({"match": m})).collect::<Vec<_>>();
    json!({
        "iss": ISS, "aud": [AUD, "https://other.example.com"], "exp": exp(), "sub": "u1",
        "authorization_details": [
            {"type": DETAIL, "actions": ["subscribe"], "topics": topics(subscribe),
             "payload": {"user": "u1"}},
            {"type": "https://example.com/other-detail", "actions": {"read": true}},
            {"type": DETAIL, "actions": ["publish"], "topics": topics(publish)},
        ],
    })
}

/// Runs a minter; its one line of output.
fn mint(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}); scripts/test.sh installs it"));
    assert!(
        out.status.success(),
        "{what} failed; scripts/test.sh installs it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A token of `claims` signed by PyJWT with `alg` and `key` (a secret or a PEM private
/// key), its header's `typ` being `typ` (`None`: PyJWT's default `JWT`).
pub(crate) fn pyjwt(claims: &Value, key: &str, alg: &str, typ: Option<&str>) -> String {
    let script = "import jwt, json, sys\n\
        h = {'typ': sys.argv[4]} if sys.argv[4] else None\n\
        print(jwt.encode(json.loads(sys.argv[1]), sys.argv[2], algorithm=sys.argv[3], headers=h))";
    mint(
        Command::new("python3")
            .args(["-W", "ignore", "-c", script])
            .args([&claims.to_string(), key, alg, typ.unwrap_or("")]),
        "python3 with PyJWT (and cryptography for RS256/ES256)",
    )
}

/// The same by Node's `jsonwebtoken` (from tests/browser/node_modules).
pub(crate) fn node_jwt(claims: &Value, key: &str, alg: &str, typ: Option<&str>) -> String {
    let script = "const jwt = require('jsonwebtoken'); \
        const [claims, key, algorithm, typ] = process.argv.slice(1); \
        const options = typ ? { algorithm, header: { typ } } : { algorithm }; \
        console.log(jwt.sign(JSON.parse(claims), key, options));";
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    mint(
        Command::new("node")
            .current_dir(dir)
            .args(["-e", script])
            .args([&claims.to_string(), key, alg, typ.unwrap_or("")]),
        "node with jsonwebtoken",
    )
}

/// A subscribe on the hub path to `topic` with `headers`: its refusal.
fn refused(t: &TestServer, path: &str, headers: &[(&str, &str)]) -> Response {
    let r = get(t, path, headers);
    assert_ne!(r.status, 200, "{path}: expected a refusal");
    r
}

/// Asserts a `401 invalid_token` whose body names `why`.
fn assert_invalid_token(r: &Response, why: &str) {
    assert_eq!(r.status, 401, "{}", r.body_text());
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    assert!(r.body_text().contains(why), "{}", r.body_text());
}

/// A private `topic` update published through the hub path with `token`: the answer.
fn publish(t: &TestServer, token: &str, topic: &str, data: &str) -> Response {
    let bearer = format!("Bearer {token}");
    form_post(
        t,
        &[("Authorization", &bearer)],
        &[("topic", topic), ("private", "on"), ("data", data)],
    )
}

/// Both minters' access tokens read private updates (bearer and 1.0 cookie) and
/// publish them, by `alg` under `key` (`verify` checks them with the hub's own flags).
pub(crate) fn access_tokens_work(t: &TestServer, key: &str, alg: &str) {
    let by_py = pyjwt(&claims(&["private/a"], &[]), key, alg, Some("at+jwt"));
    let by_node = node_jwt(&claims(&["private/a"], &[]), key, alg, Some("at+jwt"));
    let bearer = format!("Bearer {by_py}");
    let mut header = SseClient::connect(
        t.addr,
        &hub_url(&[("topic", "private/a")]),
        &[("Authorization", &bearer)],
    );
    let cookie = format!("other=1; __Secure-mercure_access_token={by_node}");
    let mut cookied = SseClient::connect(
        t.addr,
        &hub_url(&[("match", "private/a")]),
        &[("Cookie", &cookie)],
    );
    // On /stream as well: one token for both paths.
    let mut native = SseClient::connect(
        t.addr,
        "/stream?topic=private/a",
        &[("Authorization", &bearer)],
    );
    let mut anon = SseClient::open(t.addr, &hub_url(&[("topic", "private/a")]));
    t.wait_subscribers(4, Duration::from_secs(5));
    for (minter, publisher) in [
        (
            "pyjwt",
            pyjwt(&claims(&[], &["private/a"]), key, alg, Some("at+jwt")),
        ),
        (
            "node",
            node_jwt(&claims(&[], &["private/a"]), key, alg, Some("at+jwt")),
        ),
    ] {
        let r = publish(t, &publisher, "private/a", minter);
        assert_eq!(r.status, 200, "{alg} {minter}: {}", r.body_text());
    }
    for sub in [&mut header, &mut cookied, &mut native] {
        let got: Vec<String> = sub.expect_events(2).into_iter().map(|e| e.data).collect();
        assert_eq!(got, ["pyjwt", "node"], "{alg}");
    }
    anon.assert_no_event(QUIET);
}

#[test]
fn hs256_access_tokens_from_pyjwt_and_jsonwebtoken_subscribe_and_publish() {
    let t = hub(&["--jwt-key", KEY]);
    access_tokens_work(&t, KEY, "HS256");
}

#[test]
fn access_token_refusals_answer_as_rfc_6750_says() {
    let t = hub(&["--jwt-key", KEY]);
    let path = hub_url(&[("topic", "private/a")]);
    let at = |claims: &Value| pyjwt(claims, KEY, "HS256", Some("at+jwt"));
    let bearer = |token: &str| format!("Bearer {token}");
    let good = claims(&["private/a"], &[]);

    // Wrong `aud`: a string, and an array without this hub.
    for aud in [json!("https://other.example.com"), json!(["a", "b"])] {
        let mut c = good.clone();
        c["aud"] = aud;
        let r = refused(&t, &path, &[("Authorization", &bearer(&at(&c)))]);
        assert_invalid_token(&r, "aud does not name this hub");
    }
    // Another issuer.
    let mut c = good.clone();
    c["iss"] = json!("https://evil.example.com");
    let r = refused(&t, &path, &[("Authorization", &bearer(&at(&c)))]);
    assert_invalid_token(&r, "iss is not this hub's issuer");
    // Missing `iss`, `aud`, `exp`.
    for (claim, why) in [
        ("iss", "an at+jwt token needs iss"),
        ("aud", "an at+jwt token needs aud"),
        ("exp", "an at+jwt token needs exp"),
    ] {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(claim);
        let r = refused(&t, &path, &[("Authorization", &bearer(&at(&c)))]);
        assert_invalid_token(&r, why);
    }
    // The 1.0 shape without `typ: at+jwt` (PyJWT's default `JWT`, and Node's).
    for token in [
        pyjwt(&good, KEY, "HS256", None),
        node_jwt(&good, KEY, "HS256", None),
    ] {
        let r = refused(&t, &path, &[("Authorization", &bearer(&token))]);
        assert_invalid_token(&r, "authorization_details needs the header typ at+jwt");
    }
    // A wrong type is refused with a reason, never read as absent.
    let mut c = good.clone();
    c["aud"] = json!(7);
    let r = refused(&t, &path, &[("Authorization", &bearer(&at(&c)))]);
    assert_invalid_token(&r, "aud must be a string or an array of strings");
    // An `alg` other than the pinned one (HS512 with the same key).
    let token = pyjwt(&good, KEY, "HS512", Some("at+jwt"));
    let r = refused(&t, &path, &[("Authorization", &bearer(&token))]);
    assert_invalid_token(&r, "alg must be HS256");

    // A 1.0 token in the query: 400 invalid_request, on the hub path and /stream, even
    // a valid one, before its signature is looked at.
    let valid = at(&good);
    for path in [
        hub_url(&[("topic", "private/a"), ("authorization", &valid)]),
        format!("/stream?topic=private/a&authorization={}", enc(&valid)),
    ] {
        let r = refused(&t, &path, &[]);
        assert_eq!(r.status, 400, "{path}: {}", r.body_text());
        assert_eq!(
            r.header("WWW-Authenticate"),
            Some("Bearer error=\"invalid_request\"")
        );
    }
    let r = form_post(
        &t,
        &[],
        &[("topic", "x"), ("data", "d"), ("authorization", &valid)],
    );
    // (the form's `authorization` is not the query's: no token at all here)
    assert_eq!(r.status, 401);
    let r = t.client().request(
        format!(
            "POST {HUB}?authorization={} HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\n\r\ntopic=",
            enc(&valid)
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.body_text());
    // A 0.x token in the query still works.
    let legacy = crate::auth::pyjwt(&json!({"mercure": {"subscribe": ["x"]}}), KEY, "HS256");
    let mut sub = SseClient::open(
        t.addr,
        &hub_url(&[("topic", "x"), ("authorization", &legacy)]),
    );
    t.wait_subscribers(1, Duration::from_secs(5));
    sub.assert_no_event(Duration::from_millis(50));

    // Valid, but may not publish there: 403 insufficient_scope.
    let publisher = at(&claims(&[], &["private/b"]));
    let r = publish(&t, &publisher, "private/a", "no");
    assert_eq!(r.status, 403, "{}", r.body_text());
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Bearer error=\"insufficient_scope\"")
    );
    let reader = at(&claims(&["private/a"], &[]));
    let r = publish(&t, &reader, "private/a", "no");
    assert_eq!(r.status, 403, "{}", r.body_text());
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Bearer error=\"insufficient_scope\"")
    );
}

#[test]
fn a_hub_without_issuer_and_audience_refuses_access_tokens() {
    let t = start(&["--no-demo", "--heartbeat", "0", "--jwt-key", KEY]);
    let token = pyjwt(&claims(&["a"], &[]), KEY, "HS256", Some("at+jwt"));
    let r = refused(
        &t,
        &hub_url(&[("topic", "a")]),
        &[("Authorization", &format!("Bearer {token}"))],
    );
    assert_invalid_token(&r, "at+jwt tokens need --jwt-issuer and --jwt-audience");
}

#[test]
fn an_access_tokens_orders_star_is_a_literal_on_both_paths() {
    let t = hub(&["--jwt-key", KEY]);
    let reader = pyjwt(&claims(&["orders/*"], &[]), KEY, "HS256", Some("at+jwt"));
    let bearer = format!("Bearer {reader}");
    let headers = [("Authorization", bearer.as_str())];
    let mut mercure = SseClient::connect(
        t.addr,
        &hub_url(&[("topic", "orders/1"), ("topic", "orders/*")]),
        &headers,
    );
    let mut native = SseClient::connect(t.addr, "/stream?topic=orders/1&topic=orders/*", &headers);
    t.wait_subscribers(2, Duration::from_secs(5));
    let publisher = pyjwt(&claims(&[], &["*"]), KEY, "HS256", Some("at+jwt"));
    assert_eq!(publish(&t, &publisher, "orders/1", "secret").status, 200);
    assert_eq!(publish(&t, &publisher, "orders/*", "literal").status, 200);
    for sub in [&mut mercure, &mut native] {
        assert_eq!(sub.expect_event().data, "literal");
        sub.assert_no_event(QUIET);
    }
}

/// A key pair made by Debian's `openssl` in a fresh directory: the private key's PEM
/// text (for the minters) and the public key's path (for the hub).
pub(crate) fn key_pair(alg: &str) -> (String, String) {
    let dir = std::env::temp_dir().join(format!(
        "ssehub-{alg}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let private = dir.join("private.pem");
    let public = dir.join("public.pem");
    let params: &[&str] = match alg {
        "RS256" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        _ => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl ({e}); scripts/test.sh installs it"));
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let private_path = private.to_str().unwrap();
    let mut genpkey = vec!["genpkey"];
    genpkey.extend_from_slice(params);
    genpkey.extend(["-out", private_path]);
    openssl(&genpkey);
    openssl(&[
        "pkey",
        "-in",
        private_path,
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    // No private key is left on disk; the public one stays for the hub to read.
    let pair = (
        std::fs::read_to_string(&private).unwrap(),
        public.to_str().unwrap().to_owned(),
    );
    std::fs::remove_file(&private).unwrap();
    pair
}

/// A hub whose tokens are `alg`-signed, checked with the public key at `public`.
fn hub_pinned(alg: &str, public: &str) -> TestServer {
    hub(&["--jwt-alg", alg, "--jwt-public-key-file", public])
}

#[test]
fn rs256_and_es256_access_tokens_from_pyjwt_and_jsonwebtoken() {
    for alg in ["RS256", "ES256"] {
        let (private, public) = key_pair(alg);
        let t = hub_pinned(alg, &public);
        access_tokens_work(&t, &private, alg);
        // A 0.x token signed the same way works too.
        let legacy = crate::auth::pyjwt(&json!({"mercure": {"subscribe": ["x"]}}), &private, alg);
        let bearer = format!("Bearer {legacy}");
        let mut sub = SseClient::connect(
            t.addr,
            &hub_url(&[("topic", "x")]),
            &[("Authorization", &bearer)],
        );
        t.wait_subscribers(1, Duration::from_secs(5));
        sub.assert_no_event(Duration::from_millis(50));
    }
}

#[test]
fn a_token_whose_alg_is_not_the_pinned_one_is_refused() {
    let (rsa_private, rsa_public) = key_pair("RS256");
    let (ec_private, ec_public) = key_pair("ES256");
    let path = hub_url(&[("topic", "a")]);
    let good = claims(&["a"], &[]);
    let rs = hub_pinned("RS256", &rsa_public);
    let es = hub_pinned("ES256", &ec_public);
    // ES256 on an RS256 hub and the reverse, however valid.
    let es_token = pyjwt(&good, &ec_private, "ES256", Some("at+jwt"));
    let r = refused(
        &rs,
        &path,
        &[("Authorization", &format!("Bearer {es_token}"))],
    );
    assert_invalid_token(&r, "alg must be RS256");
    let rs_token = node_jwt(&good, &rsa_private, "RS256", Some("at+jwt"));
    let r = refused(
        &es,
        &path,
        &[("Authorization", &format!("Bearer {rs_token}"))],
    );
    assert_invalid_token(&r, "alg must be ES256");
    // The key confusion attack: HS256 with the public key's PEM text as the secret
    // (signed with Python's hmac: PyJWT itself refuses to).
    let public_pem = std::fs::read_to_string(&rsa_public).unwrap();
    let script = "import base64, hashlib, hmac, sys\n\
        b = lambda s: base64.urlsafe_b64encode(s).rstrip(b'=').decode()\n\
        i = b(sys.argv[1].encode()) + '.' + b(sys.argv[2].encode())\n\
        print(i + '.' + b(hmac.new(sys.argv[3].encode(), i.encode(), hashlib.sha256).digest()))";
    let forged = mint(
        Command::new("python3").args([
            "-c",
            script,
            r#"{"alg":"HS256","typ":"at+jwt"}"#,
            &good.to_string(),
            &public_pem,
        ]),
        "python3",
    );
    let r = refused(
        &rs,
        &path,
        &[("Authorization", &format!("Bearer {forged}"))],
    );
    assert_invalid_token(&r, "alg must be RS256");
    // Signed by another key of the right algorithm.
    let (other_private, _) = key_pair("ES256");
    let token = pyjwt(&good, &other_private, "ES256", Some("at+jwt"));
    let r = refused(&es, &path, &[("Authorization", &format!("Bearer {token}"))]);
    assert_invalid_token(&r, "bad signature");
}
