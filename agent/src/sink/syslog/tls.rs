//! TLS for remote syslog (RFC 5425): the rustls client configuration from
//! the destination's files, and certificate errors an operator can act on.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{read_trusted, Syslog, MAX_TLS_FILE_BYTES};

/// The CA bundle of Debian's ca-certificates, used when `ca_file` is unset.
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A TLS failure as an operator can act on it.
pub(super) fn tls_error(host: &str, c: &Syslog, e: io::Error) -> io::Error {
    let ca = c
        .ca_file
        .as_deref()
        .unwrap_or(Path::new(SYSTEM_CA_FILE))
        .display()
        .to_string();
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let text = match inner {
        Some(rustls::Error::InvalidCertificate(cert)) => {
            let why = match cert {
                rustls::CertificateError::UnknownIssuer => {
                    format!("it is not signed by a CA in {ca}")
                }
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. } => {
                    format!("it is not issued for the name {host:?}")
                }
                rustls::CertificateError::Expired
                | rustls::CertificateError::ExpiredContext { .. } => "it has expired".into(),
                other => other.to_string(),
            };
            format!("TLS: the certificate of {host} is refused: {why}")
        }
        Some(other) => format!("TLS handshake with {host} failed: {other}"),
        None => format!("TLS handshake with {host} failed: {e}"),
    };
    io::Error::new(io::ErrorKind::PermissionDenied, text)
}

/// Why a TLS destination cannot be set up from its files.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{key} {}: cannot read certificates: {error}", path.display())]
    ReadCerts {
        key: &'static str,
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error("{key} {}: {why}", path.display())]
    Untrusted {
        key: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("{key} {}: holds no PEM certificate", path.display())]
    NoCerts { key: &'static str, path: PathBuf },
    #[error("ca_file {}: no usable CA certificate in it", .0.display())]
    NoUsableCa(PathBuf),
    #[error("{0}")]
    Protocol(rustls::Error),
    #[error("client_key {}: no private key read: {error}", path.display())]
    Key {
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error("client_cert and client_key do not go together: {0}")]
    KeyMismatch(rustls::Error),
}

pub(super) fn tls_config(c: &Syslog) -> Result<rustls::ClientConfig, TlsSetupError> {
    let ca_file: PathBuf = c
        .ca_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_FILE));
    let mut roots = rustls::RootCertStore::empty();
    let certs = read_certs(&ca_file, "ca_file")?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsSetupError::NoUsableCa(ca_file));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Protocol)?
        .with_root_certificates(roots);
    match (&c.client_cert, &c.client_key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "client_cert")?;
            let pem = read_pem(key, "client_key")?;
            let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|error| TlsSetupError::Key {
                path: key.clone(),
                error,
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsSetupError::KeyMismatch)
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// A TLS file, read only if no one but root could have written it.
fn read_pem(path: &Path, key: &'static str) -> Result<Vec<u8>, TlsSetupError> {
    read_trusted(path, MAX_TLS_FILE_BYTES).map_err(|why| TlsSetupError::Untrusted {
        key,
        path: path.to_path_buf(),
        why,
    })
}

fn read_certs(
    path: &Path,
    key: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read_pem(path, key)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsSetupError::ReadCerts {
            key,
            path: path.to_path_buf(),
            error,
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCerts {
            key,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}
