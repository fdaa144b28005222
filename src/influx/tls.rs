//! HTTPS to InfluxDB with rustls: certificates are always checked, against the system's CA store
//! (as curl and Telegraf do: on Debian `/etc/ssl/certs`, where `update-ca-certificates` puts an
//! operator's own CA; `SSL_CERT_FILE` and `SSL_CERT_DIR` override it) plus, when `influx_ca_file`
//! names one, the CAs of that file. A system without a CA store (a bare container) gets
//! Mozilla's root certificates instead.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::crypto::ring;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {source}")]
    Certificate {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("{0}")]
    Protocols(#[source] rustls::Error),
}

/// Builds `awc` clients (which are not `Send`: one per actor or HTTP worker) that share one TLS
/// configuration.
#[derive(Clone, Debug)]
pub struct HttpClients {
    tls: Arc<ClientConfig>,
}

impl HttpClients {
    /// `https`: whether InfluxDB's URL is one. Only then is the system's store read (and a
    /// missing one worth a warning); plain http gets Mozilla's roots, never used.
    pub fn new(https: bool, ca_file: Option<&Path>) -> Result<Self, TlsError> {
        let mut roots = if https {
            system_roots()
        } else {
            mozilla_roots()
        };
        if let Some(path) = ca_file {
            let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certificates| certificates.collect())
                .map_err(|source| TlsError::Read {
                    path: path.to_owned(),
                    source,
                })?;
            if certificates.is_empty() {
                return Err(TlsError::NoCertificate {
                    path: path.to_owned(),
                });
            }
            for certificate in certificates {
                roots
                    .add(certificate)
                    .map_err(|source| TlsError::Certificate {
                        path: path.to_owned(),
                        source,
                    })?;
            }
        }
        let mut tls = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Protocols)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpClients { tls: Arc::new(tls) })
    }

    pub fn client(&self) -> awc::Client {
        awc::Client::builder()
            .connector(awc::Connector::new().rustls_0_23(self.tls.clone()))
            .finish()
    }
}

/// The system's CA certificates; Mozilla's when the system has none it can read.
fn system_roots() -> rustls::RootCertStore {
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "a CA certificate of the system store cannot be read");
    }
    trusted_roots(native.certs)
}

fn trusted_roots(system: Vec<CertificateDer<'static>>) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(system);
    if ignored > 0 {
        tracing::warn!(
            ignored,
            "CA certificates of the system store rustls cannot use"
        );
    }
    if added == 0 {
        tracing::warn!(
            "no CA certificate in the system store: trusting Mozilla's root certificates"
        );
        return mozilla_roots();
    }
    roots
}

fn mozilla_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        assert!(HttpClients::new(true, None).is_ok());
        let empty = tempfile::NamedTempFile::new().unwrap();
        let error = HttpClients::new(true, Some(empty.path())).unwrap_err();
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
        let error = HttpClients::new(true, Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn no_system_store_means_mozillas_roots() {
        let roots = trusted_roots(Vec::new());
        assert_eq!(roots.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        let unusable = vec![CertificateDer::from(b"not a certificate".to_vec())];
        assert_eq!(
            trusted_roots(unusable).len(),
            webpki_roots::TLS_SERVER_ROOTS.len()
        );
    }
}
