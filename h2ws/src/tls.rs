//! Server TLS: a certificate chain and key from PEM, rustls with the `ring` provider (no
//! C/cmake build), ALPN `h2` + `http/1.1` over TCP and `h3` (TLS 1.3 only) over QUIC, and the
//! certificate's SPKI hash (for Chromium's `--ignore-certificate-errors-spki-list`). Generating a certificate is the devserver's job
//! (`h2ws-devserver`'s dev certificate), not the library's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing PEM in {what}: {source}")]
    Pem {
        what: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(String),
    #[error(transparent)]
    Certificate(#[from] crate::spki::CertificateError),
    #[error("building the TLS config: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A loaded certificate chain and key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// base64(sha256(SubjectPublicKeyInfo DER)) of the leaf.
    pub spki_sha256: String,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            spki_sha256: self.spki_sha256.clone(),
        }
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Identity")
            .field("chain", &self.chain.len())
            .field("spki_sha256", &self.spki_sha256)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// From a certificate chain file and a key file (PEM; they may be the same file, which is
    /// then read once so a concurrent rewrite cannot mix two generations).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_pem = read(cert)?;
        let key_pem = if key == cert {
            cert_pem.clone()
        } else {
            read(key)?
        };
        Self::from_pem_named(
            &cert_pem,
            &cert.display().to_string(),
            &key_pem,
            &key.display().to_string(),
        )
    }

    /// From PEM text: the chain (leaf first) and the private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        Self::from_pem_named(cert_pem, "the certificate", key_pem, "the key")
    }

    fn from_pem_named(
        cert_pem: &[u8],
        cert_name: &str,
        key_pem: &[u8],
        key_name: &str,
    ) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Pem {
                what: cert_name.to_string(),
                source,
            })?;
        let leaf = chain
            .first()
            .ok_or_else(|| TlsError::NoCertificate(cert_name.to_string()))?;
        let spki_sha256 = crate::spki::sha256_base64(leaf)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| TlsError::Pem {
            what: key_name.to_string(),
            source,
        })?;
        Ok(Identity {
            chain,
            key,
            spki_sha256,
        })
    }

    /// A rustls server config offering `h2` then `http/1.1`.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// A rustls server config for QUIC from the same certificate: TLS 1.3 only (QUIC has no
    /// other), ALPN `h3`, no 0-RTT (a replayed open could open a socket twice).
    pub fn quic_server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"h3".to_vec()];
        config.max_early_data_size = 0;
        Ok(Arc::new(config))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_pem_pair_and_builds_a_config() {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("generate");
        let identity =
            Identity::from_pem(cert.pem().as_bytes(), key_pair.serialize_pem().as_bytes())
                .expect("load");
        assert_eq!(identity.spki_sha256.len(), 44, "base64 of 32 bytes");
        identity.server_config().expect("rustls config");
        let quic = identity.quic_server_config().expect("QUIC rustls config");
        assert_eq!(quic.alpn_protocols, vec![b"h3".to_vec()]);
        quinn::crypto::rustls::QuicServerConfig::try_from(quic).expect("usable for QUIC");
        assert!(matches!(
            Identity::from_pem(b"", key_pair.serialize_pem().as_bytes()),
            Err(TlsError::NoCertificate(_))
        ));
    }
}
