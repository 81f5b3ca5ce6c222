//! A stand-in for `rustls-platform-verifier` 0.7 with the API reqwest 0.13 calls
//! (`Verifier::new`, `Verifier::new_with_extra_roots`), whose constructors always fail: a client
//! that would use it cannot be built, so nothing is ever verified by it. aws-wif-supplier hands
//! reqwest a complete rustls configuration of its own for every TLS client (`tls_backend_preconfigured`)
//! and `tls_certs_only` for plain-HTTP ones, so reqwest never asks for a platform verifier.
//! See the package's Cargo.toml for why the real crate is replaced.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error as TlsError, SignatureScheme};

const NOT_BUILT: &str = "aws-wif-supplier builds its own TLS configuration; the platform verifier is not built in";

/// Never constructed: both constructors fail.
#[derive(Debug)]
pub struct Verifier(());

impl Verifier {
  pub fn new(_crypto_provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
    Err(TlsError::General(NOT_BUILT.into()))
  }

  pub fn new_with_extra_roots(
    _extra_roots: impl IntoIterator<Item = CertificateDer<'static>>,
    _crypto_provider: Arc<CryptoProvider>,
  ) -> Result<Self, TlsError> {
    Err(TlsError::General(NOT_BUILT.into()))
  }
}

impl ServerCertVerifier for Verifier {
  fn verify_server_cert(
    &self,
    _end_entity: &CertificateDer<'_>,
    _intermediates: &[CertificateDer<'_>],
    _server_name: &ServerName<'_>,
    _ocsp_response: &[u8],
    _now: UnixTime,
  ) -> Result<ServerCertVerified, TlsError> {
    Err(TlsError::General(NOT_BUILT.into()))
  }

  fn verify_tls12_signature(&self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, TlsError> {
    Err(TlsError::General(NOT_BUILT.into()))
  }

  fn verify_tls13_signature(&self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, TlsError> {
    Err(TlsError::General(NOT_BUILT.into()))
  }

  fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
    Vec::new()
  }
}
