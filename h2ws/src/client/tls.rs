//! TLS for the client: which server certificates to trust, and the rustls config per ALPN.
//!
//! A development server (h2ws-devserver) runs on a self-signed local certificate, so besides ordinary root stores the
//! client can pin that certificate (byte-equal DER) or its SubjectPublicKeyInfo hash (the value
//! the devserver prints for Chromium's `--ignore-certificate-errors-spki-list`).

use std::sync::Arc;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::Error;

/// ALPN id of HTTP/2.
pub(crate) const ALPN_H2: &[u8] = b"h2";
/// ALPN id of HTTP/1.1.
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Which server certificates the client accepts.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Accept a server whose end-entity certificate is byte-equal to one of these (DER).
    /// Host names and validity dates are not checked: the pin is the identity.
    Certificates(Vec<CertificateDer<'static>>),
    /// Accept a server whose certificate's SubjectPublicKeyInfo has one of these SHA-256 hashes.
    SpkiSha256(Vec<[u8; 32]>),
    /// Ordinary WebPKI verification (chain, name, dates) against these roots.
    Roots(Arc<RootCertStore>),
}

impl Trust {
    /// Pin one DER certificate.
    pub fn certificate_der(der: impl Into<Vec<u8>>) -> Self {
        Trust::Certificates(vec![CertificateDer::from(der.into())])
    }

    /// Pin every certificate in a PEM document (e.g. the devserver's `cert.pem`).
    pub fn certificates_pem(pem: &[u8]) -> Result<Self, Error> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::TlsConfig(format!("PEM: {e}")))?;
        if certs.is_empty() {
            return Err(Error::TlsConfig("PEM holds no certificate".into()));
        }
        Ok(Trust::Certificates(certs))
    }

    /// Pin an SPKI SHA-256 hash given in base64 (standard alphabet, as the devserver prints it).
    pub fn spki_sha256_base64(b64: &str) -> Result<Self, Error> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| Error::TlsConfig(format!("SPKI pin is not base64: {e}")))?;
        let hash: [u8; 32] = raw
            .try_into()
            .map_err(|_| Error::TlsConfig("SPKI pin is not 32 bytes".into()))?;
        Ok(Trust::SpkiSha256(vec![hash]))
    }
}

/// The SHA-256 of a certificate's SubjectPublicKeyInfo, base64 (the Chromium pin format).
pub fn spki_sha256_base64(cert_der: &[u8]) -> Result<String, Error> {
    crate::spki::sha256_base64(cert_der).map_err(|e| Error::TlsConfig(e.to_string()))
}

fn spki_sha256(cert_der: &[u8]) -> Result<[u8; 32], Error> {
    crate::spki::sha256(cert_der).map_err(|e| Error::TlsConfig(e.to_string()))
}

/// The ring provider, named explicitly so that a second provider feature enabled elsewhere in the
/// dependency graph cannot make rustls' process-wide default ambiguous.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client config for `trust`, offering exactly `alpn`.
pub(crate) fn client_config(
    trust: &Trust,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::TlsConfig(e.to_string()))?;
    let mut config = match trust {
        Trust::Roots(roots) => builder
            .with_root_certificates(roots.clone())
            .with_no_client_auth(),
        Trust::Certificates(_) | Trust::SpkiSha256(_) => {
            let verifier = PinVerifier::new(trust, provider.signature_verification_algorithms)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Accepts exactly the pinned certificates or keys; still checks the handshake signatures, so
/// the peer must hold the private key.
#[derive(Debug)]
struct PinVerifier {
    certs: Vec<CertificateDer<'static>>,
    spki: Vec<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinVerifier {
    fn new(trust: &Trust, algorithms: WebPkiSupportedAlgorithms) -> Result<Self, Error> {
        let (certs, spki) = match trust {
            Trust::Certificates(c) => (c.clone(), Vec::new()),
            Trust::SpkiSha256(s) => (Vec::new(), s.clone()),
            Trust::Roots(_) => return Err(Error::TlsConfig("roots are not pins".into())),
        };
        Ok(PinVerifier {
            certs,
            spki,
            algorithms,
        })
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        if !self.spki.is_empty() {
            let hash = spki_sha256(end_entity).map_err(|_| {
                rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
            })?;
            if self.spki.contains(&hash) {
                return Ok(ServerCertVerified::assertion());
            }
        }
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> rcgen::CertifiedKey {
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap()
    }

    #[test]
    fn a_printed_pin_parses_back_into_trust() {
        let ck = cert();
        let ours = spki_sha256_base64(ck.cert.der()).unwrap();
        assert!(matches!(
            Trust::spki_sha256_base64(&ours),
            Ok(Trust::SpkiSha256(v)) if v.len() == 1
        ));
    }

    #[test]
    fn bad_pins_and_pem_are_config_errors() {
        assert!(matches!(
            Trust::spki_sha256_base64("not base64!"),
            Err(Error::TlsConfig(_))
        ));
        assert!(matches!(
            Trust::spki_sha256_base64("AAAA"),
            Err(Error::TlsConfig(_))
        ));
        assert!(matches!(
            Trust::certificates_pem(b"no pem here"),
            Err(Error::TlsConfig(_))
        ));
        let ck = cert();
        assert!(matches!(
            Trust::certificates_pem(ck.cert.pem().as_bytes()),
            Ok(Trust::Certificates(v)) if v.len() == 1 && v[0].as_ref() == ck.cert.der().as_ref()
        ));
    }

    #[test]
    fn pin_verifier_accepts_only_the_pin() {
        let (a, b) = (cert(), cert());
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        let name = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::now();
        let by_cert =
            PinVerifier::new(&Trust::certificate_der(a.cert.der().to_vec()), algs).unwrap();
        assert!(by_cert
            .verify_server_cert(a.cert.der(), &[], &name, &[], now)
            .is_ok());
        assert!(by_cert
            .verify_server_cert(b.cert.der(), &[], &name, &[], now)
            .is_err());
        let pin = spki_sha256_base64(b.cert.der()).unwrap();
        let by_spki = PinVerifier::new(&Trust::spki_sha256_base64(&pin).unwrap(), algs).unwrap();
        assert!(by_spki
            .verify_server_cert(b.cert.der(), &[], &name, &[], now)
            .is_ok());
        assert!(by_spki
            .verify_server_cert(a.cert.der(), &[], &name, &[], now)
            .is_err());
        // Garbage is refused, not a panic.
        let junk = CertificateDer::from(vec![0x30, 0x03, 1, 2, 3]);
        assert!(by_spki
            .verify_server_cert(&junk, &[], &name, &[], now)
            .is_err());
    }
}
