//! Node's trusted certificates, handed over by the package's JavaScript (see
//! [`crate::http::trust`]), and what the native HTTPS client would trust (for `doctor`).

use napi_derive::napi;

/// What native HTTPS trusts, in counts (never certificate contents).
#[napi(object)]
pub struct TrustSummary {
  /// Certificates taken from Node's set (`tls.getCACertificates('default')`, or
  /// `tls.rootCertificates` plus `NODE_EXTRA_CA_CERTS`).
  pub node: u32,
  /// Certificates taken from the system store (`SSL_CERT_FILE` / `SSL_CERT_DIR`, else the OS bundle).
  pub system: u32,
  /// Certificates or files skipped because they could not be read or parsed.
  pub skipped: u32,
  /// Whether the package's JavaScript handed over Node's set.
  pub node_set_given: bool,
}

/// Internal: called by the package's `lib/trust.js` with Node's trusted certificates (PEM texts).
#[napi(skip_typescript)]
pub fn set_node_trust(pems: Vec<String>) {
  crate::http::trust::set_node_roots(pems);
}

/// What native HTTPS would trust now: Node's set and the system store, in counts. Reads the
/// system store (a few milliseconds); `doctor` shows it.
#[napi]
pub fn trust_summary() -> TrustSummary {
  let s = crate::http::trust::summary();
  let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
  TrustSummary { node: n(s.node), system: n(s.system), skipped: n(s.skipped), node_set_given: s.node_set_given }
}

/// The proxy native HTTP uses for the calling thread's environment (`HTTPS_PROXY` … as
/// google-auth-library's gaxios reads them), without credentials; `none` when unset. For `doctor`.
#[napi]
pub fn describe_proxy(env: napi::Env) -> napi::Result<String> {
  let ctx = super::context::thread_context(&env)?;
  let p = ctx.http.proxy();
  let bypass = p.no_proxy();
  Ok(if p.is_set() && !bypass.is_empty() { format!("{}; NO_PROXY: {}", p.describe(), bypass.join(", ")) } else { p.describe() })
}
