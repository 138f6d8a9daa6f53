//! TLS: a cached self-signed certificate for localhost (or the user's cert/key), rustls with the
//! `ring` provider (no C/cmake build), ALPN `h2` + `http/1.1`, and the certificate's SPKI hash
//! (for Chromium's `--ignore-certificate-errors-spki-list`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Names the generated certificate is valid for.
const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// Certificate and key in one PEM file, so one atomic rename publishes a consistent pair
/// even when several servers start at once.
const PAIR_FILE: &str = "localhost.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing PEM in {path}: {source}")]
    Pem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("parsing the certificate: {0}")]
    X509(String),
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("building the TLS config: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("no per-user cache directory; pass --cert-dir")]
    NoCacheDir,
}

/// Where the certificate comes from.
#[derive(Clone, Debug)]
pub enum CertSource {
    /// Generate (once) a localhost certificate and keep it in this directory.
    Generated { dir: PathBuf },
    /// Use these PEM files.
    Files { cert: PathBuf, key: PathBuf },
}

impl CertSource {
    /// The default: generated, cached in `<per-user cache dir>/h2ws-devserver`.
    pub fn default_generated() -> Result<Self, TlsError> {
        let dir = dirs::cache_dir()
            .ok_or(TlsError::NoCacheDir)?
            .join("h2ws-devserver");
        Ok(CertSource::Generated { dir })
    }
}

/// A loaded certificate chain and key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// base64(sha256(SubjectPublicKeyInfo DER)) of the leaf.
    pub spki_sha256: String,
}

impl Identity {
    pub fn load(source: &CertSource) -> Result<Self, TlsError> {
        let (cert_path, key_path) = match source {
            CertSource::Files { cert, key } => (cert.clone(), key.clone()),
            CertSource::Generated { dir } => {
                let pair = dir.join(PAIR_FILE);
                if !pair.is_file() {
                    generate_into(dir, &pair)?;
                }
                (pair.clone(), pair)
            }
        };
        // Each file is read once: with --cert-dir shared by servers starting together, reading
        // the pair twice could mix a certificate and a key from two different generations.
        let cert_pem = read(&cert_path)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Pem {
                path: cert_path.clone(),
                source,
            })?;
        let leaf = chain
            .first()
            .ok_or_else(|| TlsError::NoCertificate(cert_path.clone()))?;
        let spki_sha256 = spki_sha256(leaf)?;
        let key_pem = if key_path == cert_path {
            cert_pem
        } else {
            read(&key_path)?
        };
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| TlsError::Pem {
            path: key_path.clone(),
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
}

/// base64(sha256(SPKI)) of a DER certificate.
pub fn spki_sha256(cert: &CertificateDer<'_>) -> Result<String, TlsError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| TlsError::X509(e.to_string()))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, parsed.public_key().raw);
    Ok(base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
}

fn generate_into(dir: &Path, pair: &Path) -> Result<(), TlsError> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let names: Vec<String> = LOCAL_NAMES.iter().map(|s| s.to_string()).collect();
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names)?;
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{PAIR_FILE}.{}.{n}", std::process::id()));
    let pem = format!("{}{}", cert.pem(), key_pair.serialize_pem());
    std::fs::write(&tmp, pem).map_err(|source| TlsError::Write {
        path: tmp.clone(),
        source,
    })?;
    // Publish with a hard link, which fails if the pair exists: the first generation wins and
    // every server sharing the directory serves the same certificate.
    let published = match std::fs::hard_link(&tmp, pair) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(TlsError::Write {
            path: pair.to_path_buf(),
            source,
        }),
    };
    let _ = std::fs::remove_file(&tmp);
    published
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
    fn generates_once_and_reuses() {
        let dir = std::env::temp_dir().join(format!("h2ws-tls-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let source = CertSource::Generated { dir: dir.clone() };
        let a = Identity::load(&source).expect("generate");
        let b = Identity::load(&source).expect("reuse");
        assert_eq!(a.spki_sha256, b.spki_sha256, "the cached cert is reused");
        assert_eq!(a.spki_sha256.len(), 44, "base64 of 32 bytes");
        a.server_config().expect("rustls config");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
