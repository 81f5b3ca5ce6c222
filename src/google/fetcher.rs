//! The token fetcher core: a Google access token (or ID token) for this AWS workload, napi-free.
//!
//! A [`FetcherCore`] is one configuration: a [`FetcherConfig`], the [`SupplierCore`] it takes the
//! AWS region and credentials from, and its [`TokenStore`] (the access, federated and ID-token
//! caches, and the background-refresh decision). The parts, one file each:
//! * [`super::flow`]: the steps of one fetch (subject token → STS → impersonation), in a `Context`;
//! * [`super::token_store`]: the caches and when to refresh them, with the defaults
//!   ([`super::token_store::FETCHER_BACKGROUND_REFRESH`], …,
//!   [`super::token_store::MAX_ID_TOKEN_AUDIENCES`]);
//! * [`super::doctor`]: the same steps one by one for `doctor` ([`FetcherCore::diagnose`]);
//! * [`crate::registry`]: [`FetcherCore::shared`] keeps one core per configuration for the process,
//!   under a typed key (`FetcherKey`: no secret in clear) in a registry bounded by
//!   [`MAX_SHARED_FETCHERS`] (entries no one holds are evicted beyond it).
//!
//! Google steps share one deadline of the supplier's timeout (10 s by default).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cache::Policy;
use crate::registry::{secret_digest, ByAddress, Registry};
use crate::supplier::SupplierCore;

use super::config_file::FetcherConfig;
use super::doctor::{self, StepOutcome};
use super::token_store::TokenStore;

/// Beyond this many configurations, [`FetcherCore::shared`] evicts the ones nobody holds.
pub const MAX_SHARED_FETCHERS: usize = 64;

/// The key of [`FetcherCore::shared`]'s registry: every field of the configuration and of the
/// caching policy that changes what is fetched or when, as typed values. Built by destructuring
/// without `..`, so a field added to [`FetcherConfig`] or [`Policy`] fails to compile here until it
/// is either keyed or explicitly ignored (a forgotten field would silently merge two caches).
/// `client_secret` is kept only as a keyed digest ([`secret_digest`]).
#[derive(Clone, PartialEq, Eq, Hash)]
struct FetcherKey {
  /// The supplier core, by identity.
  supplier: ByAddress<SupplierCore>,
  audience: String,
  token_url: String,
  service_account_impersonation_url: Option<String>,
  token_lifetime: Duration,
  scopes: Vec<String>,
  universe_domain: String,
  client_id: Option<String>,
  client_secret_digest: Option<String>,
  quota_project_id: Option<String>,
  regional_cred_verification_url: String,
  margin: Duration,
  jitter: Duration,
  no_expiry_ttl: Duration,
}

impl FetcherKey {
  fn new(config: &FetcherConfig, supplier: &Arc<SupplierCore>, policy: &Policy) -> Self {
    let FetcherConfig {
      audience,
      token_url,
      service_account_impersonation_url,
      token_lifetime,
      scopes,
      universe_domain,
      client_id,
      client_secret,
      quota_project_id,
      regional_cred_verification_url,
    } = config;
    let Policy { margin, jitter, no_expiry_ttl } = *policy;
    FetcherKey {
      supplier: ByAddress(supplier.clone()),
      audience: audience.clone(),
      token_url: token_url.clone(),
      service_account_impersonation_url: service_account_impersonation_url.clone(),
      token_lifetime: *token_lifetime,
      scopes: scopes.clone(),
      universe_domain: universe_domain.clone(),
      client_id: client_id.clone(),
      client_secret_digest: client_secret.as_ref().map(secret_digest),
      quota_project_id: quota_project_id.clone(),
      regional_cred_verification_url: regional_cred_verification_url.clone(),
      margin,
      jitter,
      no_expiry_ttl,
    }
  }
}

/// The fetcher: configuration, the supplier core it takes AWS credentials from, and its token store.
pub struct FetcherCore {
  /// Process-unique, for the JavaScript memos of one configuration.
  id: u64,
  config: Arc<FetcherConfig>,
  supplier: Arc<SupplierCore>,
  tokens: Arc<TokenStore>,
}

impl std::fmt::Debug for FetcherCore {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("FetcherCore").field("config", &self.config).field("supplier", &self.supplier).finish_non_exhaustive()
  }
}

impl FetcherCore {
  /// A fetcher using `supplier` for the region and AWS credentials, caching tokens by `policy`.
  pub fn new(config: FetcherConfig, supplier: Arc<SupplierCore>, policy: Policy) -> Self {
    static IDS: AtomicU64 = AtomicU64::new(1);
    let timeout = supplier.options().timeout;
    let config = Arc::new(config);
    FetcherCore {
      id: IDS.fetch_add(1, Ordering::Relaxed),
      tokens: Arc::new(TokenStore::new(config.clone(), supplier.clone(), policy, timeout)),
      config,
      supplier,
    }
  }

  /// The process-wide fetcher for this configuration, supplier core and policy: every instance and
  /// every worker thread with the same setup shares one token store, and so one exchange per expiry.
  /// How callers refresh is theirs ([`super::token_store::Refresh`]), not part of the key.
  pub fn shared(config: FetcherConfig, supplier: Arc<SupplierCore>, policy: Policy) -> Arc<FetcherCore> {
    static REGISTRY: once_cell::sync::Lazy<Registry<FetcherKey, FetcherCore>> =
      once_cell::sync::Lazy::new(|| Registry::new(MAX_SHARED_FETCHERS));
    let key = FetcherKey::new(&config, &supplier, &policy);
    REGISTRY.get_or_insert(key, || Arc::new(FetcherCore::new(config, supplier, policy)))
  }

  /// Bound the Google steps (STS and impersonation together) by `timeout` instead of the supplier's.
  /// For a core just made by [`Self::new`] (no one else holds its token store yet).
  pub fn with_timeout(mut self, timeout: Duration) -> Self {
    if let Some(tokens) = Arc::get_mut(&mut self.tokens) {
      tokens.set_timeout(timeout);
    }
    self
  }

  /// Process-unique id of this core (one per configuration).
  pub fn id(&self) -> u64 {
    self.id
  }

  pub fn config(&self) -> &FetcherConfig {
    &self.config
  }

  pub fn supplier(&self) -> &Arc<SupplierCore> {
    &self.supplier
  }

  /// The token caches of this configuration: every token and every invalidation goes through them.
  pub fn tokens(&self) -> &Arc<TokenStore> {
    &self.tokens
  }

  /// Run every step once, fresh (AWS region and credentials come through the supplier's caches),
  /// and report each ([`super::doctor`]). Never contains a secret; touches no token cache.
  pub async fn diagnose(&self) -> Vec<StepOutcome> {
    doctor::diagnose(&self.config, &self.supplier, self.tokens.timeout()).await
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::context::Context;
  use crate::google::config_file::FetcherOptions;
  use crate::google::test_fixtures::AUDIENCE;
  use crate::redact::Secret;
  use crate::supplier::SupplierOptions;

  fn config(secret: Option<&str>) -> FetcherConfig {
    FetcherConfig::from_options(FetcherOptions {
      audience: AUDIENCE.into(),
      client_id: secret.map(|_| "client".to_string()),
      client_secret: secret.map(Secret::new),
      ..Default::default()
    })
    .unwrap()
  }

  #[test]
  fn the_registry_key_is_typed_and_holds_no_secret_in_clear() {
    let supplier = SupplierCore::new(Context::from_process(), SupplierOptions::default());
    let p = Policy::default();
    let key = |secret, policy: &Policy| FetcherKey::new(&config(secret), &supplier, policy);
    assert!(key(Some("MARKER-CLIENT-1"), &p) == key(Some("MARKER-CLIENT-1"), &p));
    assert!(key(Some("MARKER-CLIENT-1"), &p) != key(Some("MARKER-CLIENT-2"), &p), "secrets are told apart");
    assert!(key(None, &p) != key(Some("MARKER-CLIENT-1"), &p));
    assert!(key(None, &p) != key(None, &Policy { margin: Duration::from_secs(1), ..p }));
    let digest = key(Some("MARKER-CLIENT-1"), &p).client_secret_digest.unwrap();
    assert_eq!(digest.len(), 64, "HMAC-SHA256, hex");
    assert!(!digest.contains("MARKER"));
    let other = SupplierCore::new(Context::from_process(), SupplierOptions::default());
    assert!(FetcherKey::new(&config(None), &other, &p) != key(None, &p), "another supplier core is another cache");
  }

  #[test]
  fn shared_fetchers_are_one_per_configuration() {
    let supplier = SupplierCore::new(Context::from_process(), SupplierOptions::default());
    let a = FetcherCore::shared(config(Some("MARKER-CLIENT-X")), supplier.clone(), Policy::default());
    let b = FetcherCore::shared(config(Some("MARKER-CLIENT-X")), supplier.clone(), Policy::default());
    assert!(Arc::ptr_eq(&a, &b));
    let c = FetcherCore::shared(config(Some("MARKER-CLIENT-Y")), supplier, Policy::default());
    assert!(!Arc::ptr_eq(&a, &c));
  }
}
