//! The dev certificate: a self-signed certificate for localhost, generated once and cached per
//! user (or in `--cert-dir`), or the user's `--cert`/`--key`; loaded into an
//! [`h2ws::Identity`] for the server's TLS listener.

use std::path::{Path, PathBuf};

use h2ws::Identity;

/// Names the generated certificate is valid for.
const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// Certificate and key in one PEM file, so one atomic rename publishes a consistent pair
/// even when several servers start at once.
const PAIR_FILE: &str = "localhost.pem";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("no per-user cache directory; pass --cert-dir")]
    NoCacheDir,
    #[error(transparent)]
    Load(#[from] h2ws::TlsError),
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
    pub fn default_generated() -> Result<Self, CertError> {
        let dir = dirs::cache_dir()
            .ok_or(CertError::NoCacheDir)?
            .join("h2ws-devserver");
        Ok(CertSource::Generated { dir })
    }

    /// The certificate and key, generated first if needed.
    pub fn load(&self) -> Result<Identity, CertError> {
        let (cert, key) = match self {
            CertSource::Files { cert, key } => (cert.clone(), key.clone()),
            CertSource::Generated { dir } => {
                let pair = dir.join(PAIR_FILE);
                if !pair.is_file() {
                    generate_into(dir, &pair)?;
                }
                (pair.clone(), pair)
            }
        };
        Ok(Identity::from_pem_files(&cert, &key)?)
    }
}

fn generate_into(dir: &Path, pair: &Path) -> Result<(), CertError> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let names: Vec<String> = LOCAL_NAMES.iter().map(|s| s.to_string()).collect();
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names)?;
    std::fs::create_dir_all(dir).map_err(|source| CertError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{PAIR_FILE}.{}.{n}", std::process::id()));
    let pem = format!("{}{}", cert.pem(), key_pair.serialize_pem());
    std::fs::write(&tmp, pem).map_err(|source| CertError::Write {
        path: tmp.clone(),
        source,
    })?;
    // Publish with a hard link, which fails if the pair exists: the first generation wins and
    // every server sharing the directory serves the same certificate.
    let published = match std::fs::hard_link(&tmp, pair) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(CertError::Write {
            path: pair.to_path_buf(),
            source,
        }),
    };
    let _ = std::fs::remove_file(&tmp);
    published
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let dir = std::env::temp_dir().join(format!("h2ws-tls-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let source = CertSource::Generated { dir: dir.clone() };
        let a = source.load().expect("generate");
        let b = source.load().expect("reuse");
        assert_eq!(a.spki_sha256, b.spki_sha256, "the cached cert is reused");
        assert_eq!(a.spki_sha256.len(), 44, "base64 of 32 bytes");
        a.server_config().expect("rustls config");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The library's SPKI pin (rustls-webpki) is the SPKI as x509-parser sees it: what
    /// Chromium's `--ignore-certificate-errors-spki-list` expects.
    #[test]
    fn spki_pin_matches_x509_parser() {
        let rcgen::CertifiedKey { cert, .. } =
            rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("generate");
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).expect("parse");
        let digest = ring::digest::digest(&ring::digest::SHA256, parsed.public_key().raw);
        assert_eq!(
            h2ws::spki::sha256(cert.der()).expect("pin"),
            digest.as_ref()
        );
    }
}
