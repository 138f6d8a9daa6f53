//! The SHA-256 of a certificate's SubjectPublicKeyInfo: the pin the server prints at start
//! (`spki-sha256 BASE64`, the format of Chromium's `--ignore-certificate-errors-spki-list`) and
//! the client's [`Trust::SpkiSha256`](crate::client::Trust) checks. One computation for both
//! sides, so a printed pin always matches what the client compares.

use base64::Engine as _;

/// The certificate could not be parsed (not DER X.509 v3).
#[derive(Debug, thiserror::Error)]
#[error("parsing the certificate: {0}")]
pub struct CertificateError(webpki::Error);

/// sha256(SubjectPublicKeyInfo DER) of a DER certificate.
pub fn sha256(cert_der: &[u8]) -> Result<[u8; 32], CertificateError> {
    let der = rustls_pki_types::CertificateDer::from(cert_der);
    let cert = webpki::EndEntityCert::try_from(&der).map_err(CertificateError)?;
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        cert.subject_public_key_info().as_ref(),
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    Ok(out)
}

/// base64(sha256(SubjectPublicKeyInfo DER)), standard alphabet.
pub fn sha256_base64(cert_der: &[u8]) -> Result<String, CertificateError> {
    Ok(base64::engine::general_purpose::STANDARD.encode(sha256(cert_der)?))
}
