//! Which certificate authorities native HTTPS trusts: what Node trusts, plus the system store.
//!
//! Node verifies TLS against its own bundled Mozilla roots (`tls.rootCertificates`, ~145
//! certificates, identical on every platform) plus `NODE_EXTRA_CA_CERTS`, whatever the image's
//! `/etc/ssl/certs` holds. `node:*-slim` images ship an **empty** `/etc/ssl/certs`, so a native
//! client that trusts only the system store fails there while the JavaScript stack it replaces
//! works. So the root store of every native HTTPS client is:
//!
//! 1. **Node's set**, handed over by the package's JavaScript ([`set_node_roots`]): on Node with
//!    `tls.getCACertificates` (22.15+/23.5+) `getCACertificates('default')`, which is exactly what
//!    Node's own HTTPS uses (bundled, `NODE_EXTRA_CA_CERTS`, and the system store under
//!    `--use-system-ca`); before that `tls.rootCertificates` plus the PEM file named by
//!    `NODE_EXTRA_CA_CERTS`;
//! 2. **the system store** when it has certificates (`rustls-native-certs`: `SSL_CERT_FILE` /
//!    `SSL_CERT_DIR` as OpenSSL reads them, else the distribution's bundle), so a corporate CA
//!    installed there keeps working. **Not on macOS**: there the system store is the keychain, which
//!    Node itself reads only under `--use-system-ca` (and then hands it over in step 1); reading it
//!    natively would link Apple's Security framework, which the cross builds cannot link.
//!
//! A certificate that does not parse (in either set) is skipped, as Node skips it; it does not fail
//! the store. Only a store with no certificate at all is an error ([`TransportError::InvalidRequest`],
//! mapped to `CONFIG_INVALID` with a hint), reported for that call only: nothing is cached, and
//! the next call tries again. The store is built when the first https client is built, never at
//! import time and never for plain-http endpoints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::TransportError;

static NODE_ROOTS: Mutex<Option<Arc<Vec<String>>>> = Mutex::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Install ring as rustls's process-wide crypto provider (reqwest is built with
/// `rustls-no-provider`). An Err means a provider is already installed, which is fine.
pub fn install_crypto_provider() {
  let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Node's trusted certificates, as PEM texts (each may hold several certificates). Called by the
/// binding with what the JavaScript side read from `node:tls`. Setting the same set again is free;
/// a different set makes later https clients use it.
pub fn set_node_roots(pems: Vec<String>) {
  let mut cur = NODE_ROOTS.lock().unwrap_or_else(|p| p.into_inner());
  if cur.as_deref() == Some(&pems) {
    return;
  }
  *cur = Some(Arc::new(pems));
  GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Changes whenever the Node root set changes.
pub fn generation() -> u64 {
  GENERATION.load(Ordering::SeqCst)
}

fn node_roots() -> Option<Arc<Vec<String>>> {
  NODE_ROOTS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// What the store is made of (for `doctor`; counts only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustSummary {
  /// Certificates from Node's set that were added.
  pub node: usize,
  /// Certificates from the system store that were added.
  pub system: usize,
  /// Certificates (or files) skipped because they could not be read or parsed.
  pub skipped: usize,
  /// Whether the JavaScript side handed over Node's set.
  pub node_set_given: bool,
}

/// Add every certificate of the PEM texts that parses; count the rest.
fn add_pems(store: &mut rustls::RootCertStore, pems: &[String], skipped: &mut usize) -> usize {
  let mut added = 0;
  for pem in pems {
    for der in CertificateDer::pem_slice_iter(pem.as_bytes()) {
      match der.map(|d| store.add(d)) {
        Ok(Ok(())) => added += 1,
        _ => *skipped += 1,
      }
    }
  }
  added
}

#[cfg_attr(target_os = "macos", allow(dead_code))]
fn add_ders(store: &mut rustls::RootCertStore, ders: Vec<CertificateDer<'static>>, skipped: &mut usize) -> usize {
  let (added, ignored) = store.add_parsable_certificates(ders);
  *skipped += ignored;
  added
}

/// The root store: Node's set and the system's, with unparsable certificates skipped.
pub fn root_store() -> (rustls::RootCertStore, TrustSummary) {
  let mut store = rustls::RootCertStore::empty();
  let mut summary = TrustSummary::default();
  if let Some(pems) = node_roots() {
    summary.node_set_given = true;
    summary.node = add_pems(&mut store, &pems, &mut summary.skipped);
  }
  #[cfg(not(target_os = "macos"))]
  {
    let system = rustls_native_certs::load_native_certs();
    summary.skipped += system.errors.len();
    summary.system = add_ders(&mut store, system.certs, &mut summary.skipped);
  }
  (store, summary)
}

/// Counts of what an https client built now would trust.
pub fn summary() -> TrustSummary {
  root_store().1
}

/// The rustls configuration of the https clients.
pub fn client_config() -> Result<rustls::ClientConfig, TransportError> {
  install_crypto_provider();
  let (store, summary) = root_store();
  if store.is_empty() {
    return Err(TransportError::NoTrust(format!(
      "no trusted CA certificate: Node's root set was {} and the system store has none ({} unusable)",
      if summary.node_set_given { "empty" } else { "not handed over (the package was not loaded through its index.js)" },
      summary.skipped
    )));
  }
  let provider = Arc::new(rustls::crypto::ring::default_provider());
  let config = rustls::ClientConfig::builder_with_provider(provider)
    .with_safe_default_protocol_versions()
    .map_err(|e| TransportError::NoTrust(format!("TLS configuration failed: {e}")))?
    .with_root_certificates(store)
    .with_no_client_auth();
  Ok(config)
}

#[cfg(test)]
mod tests {
  use super::*;

  /// A self-signed test root (public certificate only; its key was discarded).
  const PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBqTCCAU+gAwIBAgIUYfzvCexi2TnHG9fpGpLnUvh/h2MwCgYIKoZIzj0EAwIw
KjEoMCYGA1UEAwwfYXdzLXdpZi1zdXBwbGllci11bml0LXRlc3Qtcm9vdDAeFw0y
NjExMzAwMTU2NTBaFw0zNjExMjcwMTU2NTBaMCoxKDAmBgNVBAMMH2F3cy13aWYt
c3VwcGxpZXItdW5pdC10ZXN0LXJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AAQl7wceW9kw6bO5d/Kbk3Uk8ctgGp28MNR1vG5dESsS1aoA72FL2kJMf3fhe/mc
4zXi8/9OVGtxBVp6qTBcjb3Uo1MwUTAdBgNVHQ4EFgQUDuH5ngwsT6Gvd4q9Mv9S
jtkWhvQwHwYDVR0jBBgwFoAUDuH5ngwsT6Gvd4q9Mv9SjtkWhvQwDwYDVR0TAQH/
BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBcd86GSaaDA1heUhrxKLYC6qjDlEs+
ZO21cH44HaP+ZwIhAN0IsV2h7aLV+u/v0ZP5qgJAfEWToxIlG2huoq3NyPaW
-----END CERTIFICATE-----
";

  #[test]
  fn unparsable_certificates_are_skipped_not_fatal() {
    let mut store = rustls::RootCertStore::empty();
    let mut skipped = 0;
    let garbage = "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n".to_string();
    let junk_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_string();
    let added = add_pems(&mut store, &[garbage, junk_der, PEM.to_string(), "no pem here".into()], &mut skipped);
    assert_eq!(added, 1, "the good certificate among bad ones is kept");
    assert!(skipped >= 1, "{skipped}");
    let added = add_ders(&mut store, vec![CertificateDer::from(vec![0u8, 1, 2])], &mut skipped);
    assert_eq!(added, 0);
  }
}
