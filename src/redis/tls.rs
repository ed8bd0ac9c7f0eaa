//! TLS to Redis (`rediss://`), with rustls on ring: the server's certificate is checked
//! against the system's roots (`rustls-native-certs`: the trust store the machine keeps
//! up to date) or the CA of `--redis-ca`, for the host name in the URL (SNI); a client
//! certificate is sent when `--redis-cert` and `--redis-key` name one. No crypto of ours.
//!
//! Why system roots and not compiled-in ones (`webpki-roots`): the binary stays smaller
//! and a root removed by the system's updates is removed here too; a `FROM scratch`
//! image has no trust store, and there `--redis-ca` names the CA (managed Redis
//! services publish theirs).

use std::io;
use std::sync::Arc;

use async_net::TcpStream;
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use futures_rustls::pki_types::pem::PemObject;
use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use futures_rustls::rustls::{ClientConfig, RootCertStore};

pub use super::url::TlsFiles;

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// The rustls client configuration for `files`.
///
/// # Errors
///
/// One line: a file that cannot be read or holds no certificate or key, no system roots.
pub fn client_config(files: &TlsFiles) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    match &files.ca {
        Some(ca) => {
            let certs = CertificateDer::pem_file_iter(ca)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| invalid(format!("--redis-ca {}: {e}", ca.display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(invalid(format!(
                    "--redis-ca {}: no certificate",
                    ca.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(invalid(
                    "no system CA certificates found: name the CA with --redis-ca".into(),
                ));
            }
        }
    }
    // ring, not rustls's default aws-lc-rs: no cmake and C toolchain to build it, and a
    // smaller static binary. (Deprecated only for lacking post-quantum key exchange.)
    #[allow(deprecated)]
    let provider = Arc::new(futures_rustls::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| invalid(format!("--redis-cert {}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| invalid(format!("--redis-key {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| invalid(format!("--redis-cert/--redis-key: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(invalid("--redis-cert and --redis-key go together".into()));
        }
    };
    Ok(Arc::new(config))
}

/// The TLS handshake on `tcp` for `host` (SNI and the name the certificate must carry).
///
/// # Errors
///
/// The configuration's or the handshake's failure, one line (e.g. `invalid peer
/// certificate: UnknownIssuer`, `… Expired`).
pub async fn handshake(
    tcp: TcpStream,
    host: &str,
    files: &TlsFiles,
) -> io::Result<TlsStream<TcpStream>> {
    let config = client_config(files)?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| invalid(format!("TLS name {host:?}: {e}")))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("TLS to {host}: {e}")))
}
