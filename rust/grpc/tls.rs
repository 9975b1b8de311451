//! TLS for the gRPC transport: rustls (ring) through tonic, configured from the PEM bytes of
//! `--grpc_tls_cert`, `--grpc_tls_key` and, optionally, `--grpc_tls_client_ca` (which makes client
//! certificates signed by that CA required, as grpcio's `require_client_auth=True`).
//!
//! Everything is checked when the server is built, so a bad file stops start-up with a message
//! rather than failing every handshake later.

use std::error::Error as _;
use std::time::Duration;

use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// The PEM files' contents, as read by Python.
pub struct TlsPem<'a> {
    pub cert: &'a [u8],
    pub key: &'a [u8],
    pub client_ca: Option<&'a [u8]>,
}

// grpc-core's default server handshake timeout: a client that connects and never finishes its
// handshake holds its socket no longer than this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(120);

const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// `server` serving TLS with `pem`, or what is wrong with the files.
pub fn with_tls(server: Server, pem: &TlsPem<'_>) -> Result<Server, String> {
    // rustls skips PEM sections of other kinds, so a key (or anything) given as the certificate
    // would otherwise surface as the confusing "peer sent no certificates".
    if !contains(pem.cert, PEM_CERTIFICATE) {
        return Err("the certificate file holds no PEM certificate".into());
    }
    let identity = ServerTlsConfig::new()
        .identity(Identity::from_pem(pem.cert, pem.key))
        .timeout(HANDSHAKE_TIMEOUT);
    // The identity alone first, so that an error is blamed on the right file.
    Server::builder()
        .tls_config(identity.clone())
        .map_err(|e| format!("the certificate and key are not usable: {}", causes(&e)))?;
    let config = match pem.client_ca {
        None => identity,
        Some(ca) if !contains(ca, PEM_CERTIFICATE) => {
            return Err("the client CA file holds no PEM certificate".into())
        }
        Some(ca) => identity.client_ca_root(Certificate::from_pem(ca)),
    };
    server
        .tls_config(config)
        .map_err(|e| format!("the client CA is not usable: {}", causes(&e)))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// tonic's error says only "transport error"; the reason is in its sources.
fn causes(err: &tonic::transport::Error) -> String {
    let mut text = Vec::new();
    let mut source = err.source();
    while let Some(e) = source {
        text.push(e.to_string());
        source = e.source();
    }
    if text.is_empty() {
        err.to_string()
    } else {
        text.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cert: &[u8], key: &[u8], client_ca: Option<&[u8]>) -> Result<(), String> {
        let pem = TlsPem {
            cert,
            key,
            client_ca,
        };
        with_tls(Server::builder(), &pem).map(|_| ())
    }

    #[test]
    fn files_without_certificates_are_named() {
        let err = check(b"not pem", b"", None).unwrap_err();
        assert_eq!(err, "the certificate file holds no PEM certificate");
    }

    #[test]
    fn garbage_certificate_is_refused() {
        let cert = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let err = check(cert, b"", None).unwrap_err();
        assert!(
            err.starts_with("the certificate and key are not usable: "),
            "{err}"
        );
    }
}
