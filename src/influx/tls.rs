//! HTTPS to InfluxDB with rustls: certificates are always checked, against Mozilla's root
//! certificates plus, when `influx_ca_file` names one, the operator's own CA.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::crypto::ring;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Builds `awc` clients (which are not `Send`: one per actor or HTTP worker) that share one TLS
/// configuration.
#[derive(Clone, Debug)]
pub struct HttpClients {
    tls: Arc<ClientConfig>,
}

impl HttpClients {
    pub fn new(ca_file: Option<&Path>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = ca_file {
            let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certificates| certificates.collect())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if certificates.is_empty() {
                return Err(format!("{} holds no PEM certificate", path.display()));
            }
            for certificate in certificates {
                roots
                    .add(certificate)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let mut tls = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        assert!(HttpClients::new(None).is_ok());
        let empty = tempfile::NamedTempFile::new().unwrap();
        let error = HttpClients::new(Some(empty.path())).unwrap_err();
        assert!(error.contains("no PEM certificate"), "{error}");
        let error = HttpClients::new(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    }
}
