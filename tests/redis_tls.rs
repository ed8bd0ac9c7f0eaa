//! TLS to Redis (`rediss://`): a `redis-server --tls-port` with a CA and certificates
//! made here with Debian's `openssl`. The right CA connects (three nodes deliver as on
//! plain TCP); a wrong CA and an expired certificate are one-line errors at start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::redis::RedisServer;
use crate::support::{SseClient, publish_json, run_binary, start};

pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl must be installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`name.crt`, `name.key`) in `dir`.
pub(crate) fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

/// A certificate for localhost and 127.0.0.1 signed by CA `ca`, valid `days` (0: it
/// expires at once).
pub(crate) fn leaf(dir: &Path, ca: &str, name: &str, days: &str) {
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            days,
            "-extfile",
            "ext",
        ],
    );
}

fn tls_server(dir: &Path, cert: &str) -> (RedisServer, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let p = |f: &str| dir.join(f).display().to_string();
    let srv = RedisServer::start(&[
        "--tls-port",
        &port.to_string(),
        "--tls-cert-file",
        &p(&format!("{cert}.crt")),
        "--tls-key-file",
        &p(&format!("{cert}.key")),
        "--tls-ca-cert-file",
        &p("ca.crt"),
        "--tls-auth-clients",
        "optional",
    ]);
    (srv, port)
}

/// A fresh temporary directory for certificates.
pub(crate) fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ssehub-tls-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn rediss_with_the_right_ca_delivers_and_a_wrong_ca_or_an_expired_cert_is_one_line() {
    let d = dir();
    ca(&d, "ca");
    ca(&d, "other");
    leaf(&d, "ca", "server", "2");
    leaf(&d, "ca", "client", "2");
    let (_srv, port) = tls_server(&d, "server");
    let url = format!("rediss://localhost:{port}");
    let f = |n: &str| d.join(n).display().to_string();
    // The right CA, a client certificate: a node publishes and delivers through it.
    let (ca_path, cert, key) = (f("ca.crt"), f("client.crt"), f("client.key"));
    let node = start(&[
        "--no-demo",
        "--publish-token",
        "k",
        "--redis",
        &url,
        "--redis-ca",
        &ca_path,
        "--redis-cert",
        &cert,
        "--redis-key",
        &key,
    ]);
    let mut sub = SseClient::open(node.addr, "/stream");
    node.wait_subscribers(1, Duration::from_secs(2));
    let r = publish_json(node.addr, "k", &json!({"data": "over tls"}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(sub.expect_event().data, "over tls");
    // A CA that did not sign the server's certificate.
    let other = f("other.crt");
    let out = run_binary(&[
        "--no-demo",
        "--bind",
        "127.0.0.1:0",
        "--redis",
        &url,
        "--redis-ca",
        &other,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let err = out.stderr.trim();
    assert!(
        !err.contains('\n') && err.contains("UnknownIssuer"),
        "{err}"
    );
    // An expired server certificate.
    leaf(&d, "ca", "expired", "0");
    std::thread::sleep(Duration::from_millis(1100));
    let (_old, port) = tls_server(&d, "expired");
    let url = format!("rediss://localhost:{port}");
    let out = run_binary(&[
        "--no-demo",
        "--bind",
        "127.0.0.1:0",
        "--redis",
        &url,
        "--redis-ca",
        &ca_path,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let err = out.stderr.trim();
    assert!(
        !err.contains('\n') && err.contains("certificate expired"),
        "{err}"
    );
    // Plain redis:// with a CA flag is refused at start.
    let out = run_binary(&[
        "--no-demo",
        "--redis",
        "redis://127.0.0.1:1",
        "--redis-ca",
        &ca_path,
    ]);
    assert_eq!(
        out.status.code(),
        Some(2).or(out.status.code()),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("only with rediss://"), "{}", out.stderr);
    let _ = std::fs::remove_dir_all(&d);
}
