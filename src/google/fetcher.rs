//! The token fetcher core: a Google access token for this AWS workload, napi-free.
//!
//! One fetch runs, in order (google-auth-library `BaseExternalAccountClient.refreshAccessTokenAsync`):
//! 1. `region`: the AWS region from the [`SupplierCore`] (option → `AWS_REGION` → … → IMDS, cached for
//!    the process);
//! 2. `credentials`: AWS credentials from the same core, i.e. the same chain and the same
//!    process-wide credential cache the supplier uses;
//! 3. `subject_token`: the signed GetCallerIdentity request ([`super::subject_token`]);
//! 4. `sts`: the token exchange ([`super::sts`]). Scope: `cloud-platform` when impersonating (what
//!    `generateAccessToken` needs), else the configured scopes;
//! 5. `impersonation` (only with `service_account_impersonation_url`): `generateAccessToken` with the
//!    configured scopes and lifetime ([`super::impersonation`]).
//!
//! Expiry: the impersonated token's `expireTime`; else `now + expires_in`; an STS answer without
//! `expires_in` is assumed to live [`ASSUMED_LIFETIME`] (google-auth-library would never refresh it).
//! The result is cached in a [`Cache`]: fresh until 5 minutes (the policy's margin, like
//! google-auth-library's `eagerRefreshThresholdMillis`) before expiry, one in-flight fetch shared
//! by all callers, failures never cached. Background refresh is a per-call choice ([`Refresh`]),
//! not part of the cache or of its key: inside the refresh window a [`Refresh::Background`] caller
//! gets the still-valid token at once and one refresh runs behind it ([`FetcherCore::refresh_once`]).
//! Google steps share one deadline of the supplier's timeout (10 s by default).
//!
//! ID tokens ([`FetcherCore::id_token`]): the same steps 1–4, then IAM Credentials
//! `generateIdToken` with the STS token as bearer ([`super::id_token`]); cached per (audience,
//! include_email) in a [`Cache`] of their own with the same policy, at most
//! [`MAX_ID_TOKEN_AUDIENCES`] per configuration (least recently used evicted).
//!
//! The federated token (steps 1–4) of a configuration with impersonation is cached too, in a
//! [`Cache`] of its own with the same policy, until `expires_in` (the STS default is 1 hour): the
//! access token and every ID token of the configuration call IAM Credentials with it, so they share
//! one STS exchange per federated-token lifetime (STS quotas are per project). An IAM call that
//! answers 401 drops the federated token it used (if it is still the cached one), so the next fetch
//! exchanges afresh. An API's rejection of the access token ([`FetcherCore::invalidate_token`])
//! drops only the access token, never a still-valid federated token. Both drops are forced
//! refreshes, at most one per [`crate::cache::FORCED_REFRESH_INTERVAL`] per cache, process-wide.
//! Without impersonation the STS token is the access token and is cached as such.
//!
//! [`FetcherCore::shared`] keeps one core per configuration for the process, under a typed key
//! (`FetcherKey`: no secret in clear) in a registry bounded by [`MAX_SHARED_FETCHERS`] (entries no
//! one holds are evicted beyond it).
//!
//! [`FetcherCore::diagnose`] runs the same steps one by one for a `doctor` tool and reports each
//! (name, ok / failed / skipped, a non-secret detail, the error), without touching the token cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::aws::credentials::{mask_key_id, AwsCredentials};
use crate::aws::region::ResolvedRegion;
use crate::cache::{Cache, Entry, Policy};
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;
use crate::redact::Secret;
use crate::supplier::SupplierCore;
use crate::time::format_rfc3339;

use super::config_file::{FetcherConfig, DEFAULT_SCOPE};
use super::id_token::{self, IdToken, IdTokenRequest};
use super::impersonation::{self, ImpersonatedToken, ImpersonationRequest};
use super::sts::{self, StsRequest, StsToken};
use super::subject_token::{self, SignedRequest};

/// How long an STS token without `expires_in` is assumed to live.
pub const ASSUMED_LIFETIME: Duration = Duration::from_secs(900);

/// A Google access token. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
  pub token: Secret,
  pub expires_at: SystemTime,
}

impl std::fmt::Debug for AccessToken {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("AccessToken").field("token", &self.token).field("expires_at", &format_rfc3339(self.expires_at)).finish()
  }
}

/// The steps of one fetch, bound to a configuration and a supplier core.
#[derive(Clone)]
struct Steps {
  config: Arc<FetcherConfig>,
  supplier: Arc<SupplierCore>,
  timeout: Duration,
  /// The federated token for the IAM calls, shared by the access token and the ID tokens.
  federated: Arc<Cache<AccessToken>>,
}

impl Steps {
  fn now(&self) -> SystemTime {
    self.supplier.chain().context().clock.now()
  }

  fn sign(&self, creds: &AwsCredentials, region: &str) -> Result<SignedRequest> {
    let url = subject_token::verification_url(&self.config.regional_cred_verification_url, region);
    subject_token::sign_request(creds, &url, region, &self.config.audience, self.now())
  }

  async fn sts(&self, signed: &SignedRequest, creds: &AwsCredentials, region: &str, deadline: Deadline) -> Result<StsToken> {
    let c = &self.config;
    let scopes = match c.service_account_impersonation_url {
      Some(_) => vec![DEFAULT_SCOPE.to_string()],
      None => c.scopes.clone(),
    };
    let subject = signed.serialize();
    let req = StsRequest {
      token_url: &c.token_url,
      audience: &c.audience,
      scopes: &scopes,
      subject_token: &subject,
      client_id: c.client_id.as_deref(),
      client_secret: c.client_secret.as_ref(),
    };
    let aws_secrets: Vec<&Secret> = creds.session_token.iter().chain([&creds.secret_access_key]).collect();
    sts::exchange(&self.supplier.chain().context().http, &req, &aws_secrets, deadline).await.map_err(|e| {
      e.context(format!("token exchange with AWS credentials from {} ({}) in {region}", creds.source, mask_key_id(&creds.access_key_id)))
    })
  }

  async fn impersonate(&self, url: &str, sts_token: &Secret, deadline: Deadline) -> Result<ImpersonatedToken> {
    let req = ImpersonationRequest { url, sts_token, scopes: &self.config.scopes, lifetime: self.config.token_lifetime };
    impersonation::generate_access_token(&self.supplier.chain().context().http, &req, deadline).await
  }

  fn sts_token(&self, sts: StsToken) -> AccessToken {
    AccessToken { token: sts.access_token, expires_at: self.now() + sts.expires_in.unwrap_or(ASSUMED_LIFETIME) }
  }

  /// Region, credentials, subject token and STS exchange: the federated token. One fetch under one
  /// bound: the region, the AWS credentials and the Google calls together finish by `deadline` (the
  /// region and credentials come from shared caches, whose loads may go on for other callers; this
  /// fetch stops waiting at its deadline).
  async fn federated(&self, deadline: Deadline) -> Result<StsToken> {
    let region = within(deadline, "the AWS region", self.supplier.region()).await?.region;
    let creds = within(deadline, "the AWS credentials", self.supplier.credentials()).await?.value;
    let signed = self.sign(&creds, &region)?;
    self.sts(&signed, &creds, &region, deadline).await
  }

  /// The federated token for an IAM call, from the configuration's federated-token cache (one
  /// exchange shared by the access token and the ID tokens). The load runs under the deadline of
  /// the fetch that starts it; a fetch that joins it started later, so its own deadline is later.
  async fn federated_cached(&self, deadline: Deadline) -> Result<Secret> {
    let steps = self.clone();
    let load = move || async move {
      let token = steps.sts_token(steps.federated(deadline).await?);
      let exp = token.expires_at;
      Ok((token, Some(exp)))
    };
    Ok(self.federated.get(load).await?.value.token)
  }

  /// IAM Credentials failed with `token`. Only a 401 says the federated token itself was refused:
  /// then it is dropped, if it is still the cached one and the forced-refresh bound allows
  /// ([`Cache::allow_forced_refresh`]), so the next fetch exchanges afresh. Any other failure (a
  /// 403 for a missing binding, a 5xx) keeps it: a new exchange would not help.
  fn drop_federated(&self, token: &Secret, error: &Error) {
    if error.status() == Some(401)
      && self.federated.peek().is_some_and(|e| e.value.token == *token)
      && self.federated.allow_forced_refresh()
    {
      self.federated.invalidate();
    }
  }

  /// An ID token for `audience` from `generateIdToken` (`url`), with the federated token as bearer.
  async fn fetch_id_token(self, url: String, audience: String, include_email: bool) -> Result<IdToken> {
    let deadline = Deadline::after(self.timeout);
    let sts_token = self.federated_cached(deadline).await?;
    let req = IdTokenRequest { url: &url, sts_token: &sts_token, audience: &audience, include_email };
    let token = id_token::generate_id_token(&self.supplier.chain().context().http, &req, deadline).await;
    token.inspect_err(|e| self.drop_federated(&sts_token, e))
  }

  async fn fetch(self) -> Result<AccessToken> {
    let deadline = Deadline::after(self.timeout);
    match &self.config.service_account_impersonation_url {
      None => Ok(self.sts_token(self.federated(deadline).await?)),
      Some(url) => {
        let sts_token = self.federated_cached(deadline).await?;
        let t = self.impersonate(url, &sts_token, deadline).await.inspect_err(|e| self.drop_federated(&sts_token, e))?;
        Ok(AccessToken { token: t.access_token, expires_at: t.expire_time })
      }
    }
  }
}

/// `fut`, or `TIMEOUT` when `deadline` passes first.
async fn within<T>(deadline: Deadline, what: &str, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
  let bound = deadline.remaining();
  match tokio::time::timeout(bound, fut).await {
    Ok(r) => r,
    Err(_) => {
      Err(Error::new(ErrorKind::Timeout, format!("{what} did not load within the fetch's time bound ({} ms left)", bound.as_millis())))
    }
  }
}

/// Inside the refresh window, how long a [`Refresh::Background`] caller may reuse the still-valid
/// token before asking again (the refresh runs behind it meanwhile).
pub const BACKGROUND_RECHECK: Duration = Duration::from_millis(100);

/// At most this many ID-token audiences (× `includeEmail`) are cached per configuration.
pub const MAX_ID_TOKEN_AUDIENCES: usize = 64;
/// Beyond this many configurations, [`FetcherCore::shared`] evicts the ones nobody holds.
pub const MAX_SHARED_FETCHERS: usize = 64;

/// How a caller wants an access token refreshed. The choice is per call, not part of the
/// configuration: one configuration is one cache and one exchange, whichever way its callers refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
  /// Inside the refresh window, wait for the refreshed token (one shared exchange).
  Wait,
  /// Inside the refresh window, get the still-valid token at once while one refresh runs behind.
  Background,
}

/// (audience, include_email).
type IdTokenKey = (String, bool);

/// The ID-token caches of one configuration, per (audience, include_email), with a use counter for
/// evicting the least recently used entry beyond [`MAX_ID_TOKEN_AUDIENCES`].
#[derive(Default)]
struct IdTokenCaches {
  entries: HashMap<IdTokenKey, (Arc<Cache<IdToken>>, u64)>,
  uses: u64,
}

/// The fetcher: configuration, the supplier core it takes AWS credentials from, and its token caches.
pub struct FetcherCore {
  /// Process-unique, for the JavaScript memos of one configuration.
  id: u64,
  config: Arc<FetcherConfig>,
  supplier: Arc<SupplierCore>,
  /// Never in background mode: background is a per-call choice ([`Refresh`]).
  cache: Arc<Cache<AccessToken>>,
  /// The federated token, with impersonation (see the module doc).
  federated: Arc<Cache<AccessToken>>,
  /// The last token the cache handed out, so that a [`Refresh::Background`] caller can be served
  /// inside the refresh window (the cache itself answers only with values usable now).
  last: Mutex<Option<Entry<AccessToken>>>,
  /// A background refresh is running.
  refreshing: Arc<AtomicBool>,
  id_tokens: Mutex<IdTokenCaches>,
  policy: Policy,
  timeout: Duration,
}

impl std::fmt::Debug for FetcherCore {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("FetcherCore").field("config", &self.config).field("supplier", &self.supplier).finish_non_exhaustive()
  }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
  // Every critical section below is a few plain field writes: a panic cannot leave them half done.
  m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Clears the background-refresh flag when the refresh ends, however it ends (also when its task
/// is dropped with a runtime that shuts down).
struct RefreshGuard(Arc<AtomicBool>);

impl Drop for RefreshGuard {
  fn drop(&mut self) {
    self.0.store(false, Ordering::Release);
  }
}

/// The key of [`FetcherCore::shared`]'s registry: every field of the configuration and of the
/// caching policy that changes what is fetched or when, as typed values. Built by destructuring
/// without `..`, so a field added to [`FetcherConfig`] or [`Policy`] fails to compile here until it
/// is either keyed or explicitly ignored (a forgotten field would silently merge two caches).
/// `client_secret` is kept only as a keyed digest; `Policy::background` is ignored on purpose.
#[derive(Clone, PartialEq, Eq, Hash)]
struct FetcherKey {
  /// The supplier core, by identity. The key holds the `Arc`, so the address cannot be reused by
  /// another core while the key exists.
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
    let Policy { margin, jitter, no_expiry_ttl, background: _ } = *policy;
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

/// An `Arc` compared and hashed by address.
struct ByAddress<T>(Arc<T>);

impl<T> Clone for ByAddress<T> {
  fn clone(&self) -> Self {
    ByAddress(self.0.clone())
  }
}
impl<T> PartialEq for ByAddress<T> {
  fn eq(&self, other: &Self) -> bool {
    Arc::ptr_eq(&self.0, &other.0)
  }
}
impl<T> Eq for ByAddress<T> {}
impl<T> std::hash::Hash for ByAddress<T> {
  fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
    std::ptr::hash(Arc::as_ptr(&self.0), state)
  }
}

/// HMAC-SHA256 of a secret under a random key drawn once per process: equal secrets give equal
/// digests within the process, and the digest reveals nothing usable about the secret.
fn secret_digest(secret: &Secret) -> String {
  use std::hash::{BuildHasher, Hasher};
  static KEY: once_cell::sync::Lazy<[u8; 32]> = once_cell::sync::Lazy::new(|| {
    let mut key = [0u8; 32];
    for (i, chunk) in key.chunks_mut(8).enumerate() {
      let mut h = std::collections::hash_map::RandomState::new().build_hasher();
      h.write_usize(i);
      chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    key
  });
  aws_sigv4::sign::v4::calculate_signature(*KEY, secret.expose().as_bytes())
}

/// A map whose entries beyond `cap` are evicted when nobody but the map holds them.
///
/// Why this bound: an entry held elsewhere (a JavaScript fetcher object, a running fetch) must stay,
/// or two objects of one configuration would get two caches and two exchanges; an entry nobody
/// holds costs only memory, but evicting it loses its cached token, which a program that creates
/// and drops fetchers for the same few configurations would then exchange again. So entries are
/// kept up to `cap` whatever their holders, and only beyond it are the unheld ones
/// (`Arc::strong_count == 1`) dropped. The map can exceed `cap` only while more than `cap` entries
/// are held, i.e. in use.
struct Registry<K, V> {
  cap: usize,
  map: HashMap<K, Arc<V>>,
}

impl<K: std::hash::Hash + Eq, V> Registry<K, V> {
  fn new(cap: usize) -> Self {
    Registry { cap, map: HashMap::new() }
  }

  fn get_or_insert(&mut self, key: K, make: impl FnOnce() -> V) -> Arc<V> {
    if let Some(v) = self.map.get(&key) {
      return v.clone();
    }
    if self.map.len() >= self.cap {
      self.map.retain(|_, v| Arc::strong_count(v) > 1);
    }
    let v = Arc::new(make());
    self.map.insert(key, v.clone());
    v
  }

  #[cfg(test)]
  fn len(&self) -> usize {
    self.map.len()
  }
}

impl FetcherCore {
  /// A fetcher using `supplier` for the region and AWS credentials, caching tokens by `policy`
  /// (whose `background` is ignored: see [`Refresh`]).
  pub fn new(config: FetcherConfig, supplier: Arc<SupplierCore>, policy: Policy) -> Self {
    static IDS: AtomicU64 = AtomicU64::new(1);
    let clock = supplier.chain().context().clock.clone();
    let timeout = supplier.options().timeout;
    let policy = Policy { background: false, ..policy };
    FetcherCore {
      id: IDS.fetch_add(1, Ordering::Relaxed),
      config: Arc::new(config),
      supplier,
      cache: Cache::new(policy, clock.clone()),
      federated: Cache::new(policy, clock),
      last: Mutex::new(None),
      refreshing: Arc::new(AtomicBool::new(false)),
      id_tokens: Mutex::new(IdTokenCaches::default()),
      policy,
      timeout,
    }
  }

  /// The process-wide fetcher for this configuration, supplier core and policy: every instance and
  /// every worker thread with the same setup shares one token cache, and so one exchange per expiry.
  /// `policy.background` is not part of the key (see [`Refresh`]).
  pub fn shared(config: FetcherConfig, supplier: Arc<SupplierCore>, policy: Policy) -> Arc<FetcherCore> {
    static REGISTRY: once_cell::sync::Lazy<Mutex<Registry<FetcherKey, FetcherCore>>> =
      once_cell::sync::Lazy::new(|| Mutex::new(Registry::new(MAX_SHARED_FETCHERS)));
    let key = FetcherKey::new(&config, &supplier, &policy);
    lock(&REGISTRY).get_or_insert(key, || FetcherCore::new(config, supplier, policy))
  }

  /// Bound the Google steps (STS and impersonation together) by `timeout` instead of the supplier's.
  pub fn with_timeout(mut self, timeout: Duration) -> Self {
    self.timeout = timeout;
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

  fn now(&self) -> SystemTime {
    self.supplier.chain().context().clock.now()
  }

  /// A cached token usable now, without I/O.
  pub fn peek(&self) -> Option<Entry<AccessToken>> {
    self.cache.peek()
  }

  /// A cached token for a [`Refresh::Background`] caller, without I/O: usable now, or still valid
  /// inside the refresh window (then a refresh is due: [`FetcherCore::refresh_behind`], and
  /// `refresh_at` is [`BACKGROUND_RECHECK`] from now, or the expiry if sooner: callers that reuse
  /// it until then pick up the refreshed token at most that late, and meanwhile ask nobody). The
  /// `bool` says whether a refresh is due.
  pub fn peek_background(&self) -> Option<(Entry<AccessToken>, bool)> {
    if let Some(e) = self.cache.peek() {
      return Some((e, false));
    }
    let now = self.now();
    let last = lock(&self.last).clone().filter(|e| now < e.value.expires_at)?;
    let refresh_at = (now + BACKGROUND_RECHECK).min(last.value.expires_at);
    Some((Entry { refresh_at, ..last }, true))
  }

  /// Forget every cached token of this configuration: the access token and the ID tokens (e.g.
  /// after the caller learnt they were revoked). A fetch in flight still lands.
  pub fn invalidate(&self) {
    self.cache.invalidate();
    self.federated.invalidate();
    *lock(&self.last) = None;
    let caches = std::mem::take(&mut lock(&self.id_tokens).entries);
    for (cache, _) in caches.values() {
      cache.invalidate();
    }
  }

  /// An API rejected `token` (a 401). Returns whether the caller may retry with another token:
  /// * `token` is no longer the cached one (a refresh replaced it, or nothing is cached): yes,
  ///   nothing is dropped;
  /// * it is, and no forced refresh of this configuration happened in the last
  ///   [`crate::cache::FORCED_REFRESH_INTERVAL`] (process-wide): it is dropped, and yes;
  /// * otherwise no: the token stays and the caller returns the 401.
  ///
  /// The federated token stays: an API's 401 says nothing about it (IAM answered with it), so the
  /// fresh access token comes from IAM Credentials with the cached federated token. google-auth-library
  /// refreshes on a 401 only with `forceRefreshOnFailure`; this bound keeps our retry from turning a
  /// misconfigured URL into one refresh per request for every worker.
  pub fn invalidate_token(&self, token: &str) -> bool {
    let mut last = lock(&self.last);
    let cached = match self.cache.peek() {
      Some(current) => Some(current.value.token.expose() == token),
      None => last.as_ref().map(|l| l.value.token.expose() == token),
    };
    match cached {
      Some(true) if self.cache.allow_forced_refresh() => {
        self.cache.invalidate();
        *last = None;
        true
      }
      Some(true) => false,
      Some(false) | None => true,
    }
  }

  fn steps(&self) -> Steps {
    Steps { config: self.config.clone(), supplier: self.supplier.clone(), timeout: self.timeout, federated: self.federated.clone() }
  }

  /// The access token, from the cache or from one shared fetch ([`Refresh::Wait`]).
  pub async fn access_token(&self) -> Result<Entry<AccessToken>> {
    let steps = self.steps();
    let entry = self
      .cache
      .get(move || async move {
        let token = steps.fetch().await?;
        let exp = token.expires_at;
        Ok((token, Some(exp)))
      })
      .await?;
    let mut last = lock(&self.last);
    if last.as_ref().is_none_or(|l| l.value.expires_at <= entry.value.expires_at) {
      *last = Some(entry.clone());
    }
    Ok(entry)
  }

  /// The access token, refreshed the way the caller asks.
  pub async fn access_token_with(self: &Arc<Self>, refresh: Refresh) -> Result<Entry<AccessToken>> {
    if refresh == Refresh::Background {
      if let Some((entry, due)) = self.peek_background() {
        if !due || self.refresh_behind() {
          return Ok(entry);
        }
      }
    }
    self.access_token().await
  }

  /// Start one refresh as its own task, unless one is running; its failure is kept by the cache
  /// (the valid token is served, the next attempt backs off). Returns false when no task can be
  /// started (no tokio runtime here): the caller then waits for the refresh instead.
  pub fn refresh_behind(self: &Arc<Self>) -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return false };
    if !self.is_refreshing() {
      let this = self.clone();
      runtime.spawn(async move { this.refresh_once().await });
    }
    true
  }

  /// Whether a background refresh is running.
  pub fn is_refreshing(&self) -> bool {
    self.refreshing.load(Ordering::Acquire)
  }

  /// Refresh the access token once, unless a background refresh is already running. For a caller
  /// that does not wait on it (the binding spawns it and drops the promise); its outcome lands in
  /// the cache.
  pub async fn refresh_once(&self) {
    if self.refreshing.swap(true, Ordering::AcqRel) {
      return;
    }
    let _guard = RefreshGuard(self.refreshing.clone());
    let _ = self.access_token().await;
  }

  /// The `generateIdToken` URL, or `CONFIG_INVALID` without impersonation.
  fn id_token_url(&self) -> Result<String> {
    let no_sa = || {
      Error::new(crate::error::ErrorKind::ConfigInvalid, "ID tokens need a service account: service_account_impersonation_url is not set")
        .with_hint(
          "set serviceAccountImpersonationUrl (service_account_impersonation_url in the credential configuration) to the \
           generateAccessToken URL of the service account whose ID tokens you need; that account must grant the federated \
           principal roles/iam.workloadIdentityUser",
        )
    };
    let url = self.config.service_account_impersonation_url.as_deref().ok_or_else(no_sa)?;
    id_token::id_token_url(url).ok_or_else(|| {
      Error::new(
        crate::error::ErrorKind::ConfigInvalid,
        "service_account_impersonation_url does not end in serviceAccounts/<EMAIL>:generateAccessToken, so no generateIdToken URL can be derived from it",
      )
    })
  }

  /// The cache of one (audience, include_email), if it exists; counts as a use.
  fn id_token_cache(&self, audience: &str, include_email: bool, create: bool) -> Option<Arc<Cache<IdToken>>> {
    let mut caches = lock(&self.id_tokens);
    caches.uses += 1;
    let uses = caches.uses;
    let key = (audience.to_string(), include_email);
    if let Some((cache, used)) = caches.entries.get_mut(&key) {
      *used = uses;
      return Some(cache.clone());
    }
    if !create {
      return None;
    }
    if caches.entries.len() >= MAX_ID_TOKEN_AUDIENCES {
      // Evict the least recently used entry that no call holds; if every one is in use, this
      // audience goes uncached (fetched, not kept) rather than growing the map.
      let victim =
        caches.entries.iter().filter(|(_, (c, _))| Arc::strong_count(c) == 1).min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone());
      match victim {
        Some(k) => {
          caches.entries.remove(&k);
        }
        None => return Some(Cache::new(self.policy, self.supplier.chain().context().clock.clone())),
      }
    }
    let cache = Cache::new(self.policy, self.supplier.chain().context().clock.clone());
    caches.entries.insert(key, (cache.clone(), uses));
    Some(cache)
  }

  /// A service rejected the ID token `token` of (audience, include_email): as
  /// [`Self::invalidate_token`], per audience. Returns whether the caller may retry.
  pub fn invalidate_id_token(&self, audience: &str, include_email: bool, token: &str) -> bool {
    let Some(cache) = self.id_token_cache(audience, include_email, false) else { return true };
    match cache.peek().map(|e| e.value.token.expose() == token) {
      Some(true) if cache.allow_forced_refresh() => {
        cache.invalidate();
        true
      }
      Some(true) => false,
      Some(false) | None => true,
    }
  }

  /// A cached ID token usable now, without I/O.
  pub fn peek_id_token(&self, audience: &str, include_email: bool) -> Option<Entry<IdToken>> {
    self.id_token_cache(audience, include_email, false)?.peek()
  }

  /// An OpenID Connect ID token of the impersonated service account for `audience`, cached per
  /// (audience, include_email) with the access token's policy. `CONFIG_INVALID` without impersonation.
  pub async fn id_token(&self, audience: &str, include_email: bool) -> Result<Entry<IdToken>> {
    let url = self.id_token_url()?;
    id_token::check_audience(audience)?;
    let cache = self
      .id_token_cache(audience, include_email, true)
      .ok_or_else(|| Error::new(crate::error::ErrorKind::Internal, "no ID token cache"))?;
    let steps = self.steps();
    let audience = audience.to_string();
    cache
      .get(move || async move {
        let token = steps.fetch_id_token(url, audience, include_email).await?;
        let exp = token.expires_at;
        Ok((token, Some(exp)))
      })
      .await
  }

  /// How many ID-token caches this configuration holds (tests).
  #[cfg(test)]
  fn id_token_cache_count(&self) -> usize {
    lock(&self.id_tokens).entries.len()
  }

  /// Run every step once, fresh (AWS region and credentials come through the supplier's caches),
  /// and report each. Never contains a secret.
  pub async fn diagnose(&self) -> Vec<StepOutcome> {
    let mut report = Report::default();
    report.ok(STEP_CONFIG, describe_config(&self.config));
    let _ = run_steps(&self.steps(), &mut report).await;
    report.finish()
  }
}

/// The AWS half of [`FetcherCore::diagnose`], for when there is no Google configuration: the
/// region and the credentials, each with where it came from.
pub async fn diagnose_aws(supplier: &SupplierCore) -> Vec<StepOutcome> {
  let mut report = Report::default();
  if report.record(STEP_REGION, supplier.region().await, describe_region).is_some() {
    report.record(STEP_CREDENTIALS, supplier.credentials().await.map(|e| e.value), describe_credentials);
  } else {
    report.push(STEP_CREDENTIALS, StepStatus::Skipped, "not run: an earlier step failed".into(), None);
  }
  report.0
}

pub const STEP_CONFIG: &str = "config";
pub const STEP_REGION: &str = "region";
pub const STEP_CREDENTIALS: &str = "credentials";
pub const STEP_SUBJECT_TOKEN: &str = "subject_token";
pub const STEP_STS: &str = "sts";
pub const STEP_IMPERSONATION: &str = "impersonation";
/// Every step, in order.
pub const STEPS: [&str; 6] = [STEP_CONFIG, STEP_REGION, STEP_CREDENTIALS, STEP_SUBJECT_TOKEN, STEP_STS, STEP_IMPERSONATION];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
  Ok,
  Failed,
  /// Not configured, or not run because an earlier step failed.
  Skipped,
}

/// The outcome of one step. `detail` and `error` hold no secret.
#[derive(Debug, Clone)]
pub struct StepOutcome {
  pub step: &'static str,
  pub status: StepStatus,
  pub detail: String,
  pub error: Option<Error>,
}

#[derive(Default)]
struct Report(Vec<StepOutcome>);

impl Report {
  fn push(&mut self, step: &'static str, status: StepStatus, detail: String, error: Option<Error>) {
    self.0.push(StepOutcome { step, status, detail, error });
  }

  fn ok(&mut self, step: &'static str, detail: String) {
    self.push(step, StepStatus::Ok, detail, None);
  }

  /// Record a step's result; `Some(value)` lets the next step run.
  fn record<T>(&mut self, step: &'static str, result: Result<T>, detail: impl FnOnce(&T) -> String) -> Option<T> {
    match result {
      Ok(v) => {
        self.ok(step, detail(&v));
        Some(v)
      }
      Err(e) => {
        self.push(step, StepStatus::Failed, format!("{}: {}", e.code(), e.message()), Some(e));
        None
      }
    }
  }

  /// Mark every step not yet reported as skipped.
  fn finish(mut self) -> Vec<StepOutcome> {
    for step in STEPS {
      if !self.0.iter().any(|o| o.step == step) {
        self.push(step, StepStatus::Skipped, "not run: an earlier step failed".into(), None);
      }
    }
    self.0
  }
}

async fn run_steps(steps: &Steps, report: &mut Report) -> Option<()> {
  let region = report.record(STEP_REGION, steps.supplier.region().await, describe_region)?;
  let creds = report.record(STEP_CREDENTIALS, steps.supplier.credentials().await.map(|e| e.value), describe_credentials)?;
  let signed = report.record(STEP_SUBJECT_TOKEN, steps.sign(&creds, &region.region), |s| describe_signed(s, &creds))?;
  let deadline = Deadline::after(steps.timeout);
  let sts = report.record(STEP_STS, steps.sts(&signed, &creds, &region.region, deadline).await, describe_sts)?;
  match &steps.config.service_account_impersonation_url {
    None => report.push(STEP_IMPERSONATION, StepStatus::Skipped, "not configured: the STS token is the access token".into(), None),
    Some(url) => {
      let email = impersonation::service_account_email(url).map_or_else(|| crate::redact::url(url), str::to_string);
      report.record(STEP_IMPERSONATION, steps.impersonate(url, &sts.access_token, deadline).await, |t| {
        format!("{email}: token expires {}", format_rfc3339(t.expire_time))
      })?;
    }
  }
  Some(())
}

fn describe_config(c: &FetcherConfig) -> String {
  let imp = match c.service_account_email() {
    Some(email) => format!("impersonating {email} for {} s", c.token_lifetime.as_secs()),
    None => "no impersonation".to_string(),
  };
  format!("audience {}; token_url {}; {imp}; scopes {}", c.audience, crate::redact::url(&c.token_url), c.scopes.join(" "))
}

fn describe_region(r: &ResolvedRegion) -> String {
  format!("{} (from {})", r.region, r.source)
}

fn describe_credentials(c: &AwsCredentials) -> String {
  let expiry = c.expiration.map(|e| format!("expire {}", format_rfc3339(e))).unwrap_or_else(|| "do not expire".into());
  let account = c.account_id.as_deref().map(|a| format!(", account {a}")).unwrap_or_default();
  let kind = if c.session_token.is_some() { "temporary" } else { "long-term" };
  format!("{kind} credentials from {}, access key {}{account}, {expiry}", c.source, mask_key_id(&c.access_key_id))
}

fn describe_signed(s: &SignedRequest, c: &AwsCredentials) -> String {
  let auth = s.authorization_summary().replace(&c.access_key_id, &mask_key_id(&c.access_key_id));
  format!("{} {} (GetCallerIdentity); {auth}", subject_token::METHOD, crate::redact::url(&s.url))
}

fn describe_sts(t: &StsToken) -> String {
  let life = t.expires_in.map(|d| format!("expires in {} s", d.as_secs())).unwrap_or_else(|| "no expires_in".into());
  format!("{} token, {life}", t.token_type.as_deref().unwrap_or("untyped"))
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::context::Context;
  use crate::env::{Clock, EnvSnapshot, ManualClock, OsFs};
  use crate::google::config_file::FetcherOptions;
  use crate::google::test_server::{percent_decode, reply, Canned, Recorded, TestServer};
  use crate::redact::Secret;
  use crate::supplier::SupplierOptions;

  const CREDS: &str = r#"{"AccessKeyId":"ASIAMARKERKEY1234","SecretAccessKey":"MARKER-SECRET-KEY","Token":"MARKER-SESSION-TOKEN","Expiration":"2030-01-01T00:00:00Z","AccountId":"123456789012"}"#;
  const STS_OK: &str = r#"{"access_token":"MARKER-STS-TOKEN","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}"#;
  const IAM_PATH: &str = "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken";
  const AUDIENCE: &str = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws";
  const START: u64 = 1_700_000_000;
  const MARKERS: [&str; 5] = ["MARKER-SECRET-KEY", "MARKER-SESSION-TOKEN", "MARKER-STS-TOKEN", "MARKER-SA-TOKEN", "MARKER-CLIENT"];

  fn iam_ok() -> String {
    format!(
      r#"{{"accessToken":"MARKER-SA-TOKEN","expireTime":"{}"}}"#,
      format_rfc3339(crate::time::parse_rfc3339("2023-11-14T22:13:20Z").unwrap() + Duration::from_secs(3600))
    )
  }

  /// Routes: `/creds` (container endpoint), `/v1/token` (STS), [`IAM_PATH`]. `sts` decides STS answers.
  async fn google(sts: impl Fn(usize) -> Canned + Send + Sync + 'static, iam: Canned) -> TestServer {
    TestServer::start(move |r: &Recorded, n| match r.path.as_str() {
      "/creds" => reply(200, CREDS),
      "/v1/token" => sts(n),
      IAM_PATH => iam.clone(),
      _ => reply(404, "{}"),
    })
    .await
  }

  fn setup(server: &TestServer, impersonate: bool, region: Option<&str>, policy: Policy) -> (FetcherCore, ManualClock) {
    let clock = ManualClock::at_epoch_secs(START);
    let full_uri = server.url("/creds");
    let mut vars = vec![
      ("AWS_EC2_METADATA_DISABLED", "true"),
      ("AWS_CONFIG_FILE", "/nonexistent/c"),
      ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/k"),
      ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.as_str()),
    ];
    vars.extend(region.map(|r| ("AWS_REGION", r)));
    let ctx = Context::new(EnvSnapshot::from_pairs(vars), Arc::new(OsFs), Arc::new(clock.clone()));
    let supplier = SupplierCore::new(ctx, SupplierOptions::default());
    let config = FetcherConfig::from_options(FetcherOptions {
      audience: AUDIENCE.into(),
      token_url: Some(server.url("/v1/token")),
      service_account_impersonation_url: impersonate.then(|| server.url(IAM_PATH)),
      scopes: Some(vec!["https://www.googleapis.com/auth/bigquery".into()]),
      token_lifetime_seconds: Some(1200.0),
      ..Default::default()
    })
    .unwrap();
    (FetcherCore::new(config, supplier, policy).with_timeout(Duration::from_secs(5)), clock)
  }

  /// Issue 12, defect 2: region, credentials and the Google calls share one `timeoutMs`.
  #[tokio::test]
  async fn one_fetch_honours_one_time_bound() {
    let slow = |status, body: &str, ms| Canned { delay: Duration::from_millis(ms), ..reply(status, body) };
    let creds = slow(200, CREDS, 400);
    let sts = slow(200, STS_OK, 3000);
    let server = TestServer::start(move |r: &Recorded, _| match r.path.as_str() {
      "/creds" => creds.clone(),
      "/v1/token" => sts.clone(),
      _ => reply(404, "{}"),
    })
    .await;
    let (fetcher, _clock) = setup(&server, false, Some("us-east-1"), Policy::default());
    let fetcher = fetcher.with_timeout(Duration::from_millis(700));
    let started = std::time::Instant::now();
    let e = fetcher.access_token().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.code(), "TIMEOUT", "{e}");
    assert!(took >= Duration::from_millis(650) && took < Duration::from_millis(1000), "one bound of 700 ms, took {took:?}");
  }

  #[tokio::test]
  async fn full_flow_with_impersonation_then_cache_then_refresh() {
    let server = google(|_| reply(200, STS_OK), reply(200, &iam_ok())).await;
    let (fetcher, clock) = setup(&server, true, Some("us-east-2"), Policy::default());
    let entry = fetcher.access_token().await.unwrap();
    assert_eq!(entry.value.token.expose(), "MARKER-SA-TOKEN");
    assert_eq!(entry.value.expires_at, clock.now() + Duration::from_secs(3600));
    assert_eq!(entry.refresh_at, clock.now() + Duration::from_secs(3300), "refresh 5 minutes early");

    let reqs = server.requests();
    let sts = reqs.iter().find(|r| r.path == "/v1/token").unwrap();
    assert_eq!(sts.form_field("scope").as_deref(), Some(DEFAULT_SCOPE), "STS gets cloud-platform when impersonating");
    assert_eq!(sts.form_field("audience").as_deref(), Some(AUDIENCE));
    let subject: serde_json::Value = serde_json::from_str(&percent_decode(&sts.form_field("subject_token").unwrap())).unwrap();
    assert_eq!(subject["url"], "https://sts.us-east-2.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15");
    assert_eq!(subject["method"], "POST");
    let headers: Vec<(&str, &str)> =
      subject["headers"].as_array().unwrap().iter().map(|h| (h["key"].as_str().unwrap(), h["value"].as_str().unwrap())).collect();
    assert_eq!(
      headers.iter().map(|h| h.0).collect::<Vec<_>>(),
      ["authorization", "host", "x-amz-date", "x-amz-security-token", "x-goog-cloud-target-resource"]
    );
    assert_eq!(headers[3].1, "MARKER-SESSION-TOKEN");
    assert_eq!(headers[4].1, AUDIENCE);
    assert!(headers[0].1.starts_with("AWS4-HMAC-SHA256 Credential=ASIAMARKERKEY1234/20231114/us-east-2/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature="));
    let iam = reqs.iter().find(|r| r.path == IAM_PATH).unwrap();
    assert_eq!(iam.header("authorization"), Some("Bearer MARKER-STS-TOKEN"));
    assert_eq!(iam.body, r#"{"scope":["https://www.googleapis.com/auth/bigquery"],"lifetime":"1200s"}"#);

    assert_eq!(fetcher.access_token().await.unwrap().value.token.expose(), "MARKER-SA-TOKEN");
    assert_eq!((server.count("/creds"), server.count("/v1/token"), server.count(IAM_PATH)), (1, 1, 1), "served from cache");
    clock.advance(Duration::from_secs(3301));
    fetcher.access_token().await.unwrap();
    assert_eq!(
      (server.count("/creds"), server.count("/v1/token"), server.count(IAM_PATH)),
      (1, 2, 2),
      "refreshed; AWS credentials still cached"
    );
    assert!(!format!("{fetcher:?} {:?}", fetcher.peek()).contains("MARKER"));
  }

  #[tokio::test]
  async fn without_impersonation_the_sts_token_is_used_with_the_configured_scopes() {
    let server = google(|_| reply(200, STS_OK), reply(500, "{}")).await;
    let (fetcher, clock) = setup(&server, false, Some("eu-west-1"), Policy::default());
    let entry = fetcher.access_token().await.unwrap();
    assert_eq!(entry.value.token.expose(), "MARKER-STS-TOKEN");
    assert_eq!(entry.value.expires_at, clock.now() + Duration::from_secs(3600));
    let sts = &server.requests()[1];
    assert_eq!(sts.form_field("scope").as_deref(), Some("https://www.googleapis.com/auth/bigquery"));
    assert_eq!(server.count(IAM_PATH), 0);
  }

  #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
  async fn concurrent_callers_share_one_fetch() {
    let server = google(|_| Canned { delay: Duration::from_millis(200), ..reply(200, STS_OK) }, reply(200, &iam_ok())).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    let tasks: Vec<_> = (0..50)
      .map(|_| {
        let f = fetcher.clone();
        tokio::spawn(async move { f.access_token().await })
      })
      .collect();
    for t in tasks {
      assert_eq!(t.await.unwrap().unwrap().value.token.expose(), "MARKER-SA-TOKEN");
    }
    assert_eq!((server.count("/v1/token"), server.count(IAM_PATH)), (1, 1));
  }

  #[tokio::test]
  async fn failures_are_not_cached_and_carry_context() {
    let denied = r#"{"error":"invalid_grant","error_description":"Received invalid AWS response of type SignatureDoesNotMatch"}"#;
    let server = google(move |n| if n == 0 { reply(400, denied) } else { reply(200, STS_OK) }, reply(200, &iam_ok())).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let e = fetcher.access_token().await.unwrap_err();
    assert_eq!(e.code(), "STS_EXCHANGE_FAILED");
    assert!(e.message().starts_with("token exchange with AWS credentials from container (ASIA…1234) in us-east-2: Google STS"), "{e}");
    assert!(e.hint().unwrap().contains("AWS account id"));
    assert!(!MARKERS.iter().any(|m| format!("{e} {e:?}").contains(m)));
    assert_eq!(fetcher.access_token().await.unwrap().value.token.expose(), "MARKER-SA-TOKEN");
    assert_eq!(server.count("/v1/token"), 2);
  }

  #[tokio::test]
  async fn background_refresh_serves_the_current_token() {
    let server = google(|n| reply(200, &STS_OK.replace("MARKER-STS-TOKEN", &format!("MARKER-STS-TOKEN-{n}"))), reply(500, "{}")).await;
    let (fetcher, clock) = setup(&server, false, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    assert_eq!(fetcher.access_token_with(Refresh::Background).await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-0");
    clock.advance(Duration::from_secs(3400));
    let served = fetcher.access_token_with(Refresh::Background).await.unwrap();
    assert_eq!(served.value.token.expose(), "MARKER-STS-TOKEN-0", "answered at once");
    assert_eq!(served.refresh_at, clock.now() + BACKGROUND_RECHECK, "reuse it only briefly");
    wait_for(|| fetcher.peek().is_some_and(|e| e.value.token.expose() == "MARKER-STS-TOKEN-1")).await;
    assert_eq!(server.count("/v1/token"), 2, "one refresh");
  }

  /// Poll `done` (bounded) while background tasks run.
  async fn wait_for(done: impl Fn() -> bool) {
    for _ in 0..500 {
      if done() {
        return;
      }
      tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
  }

  #[tokio::test]
  async fn inside_the_window_100_background_callers_are_answered_at_once_behind_one_refresh() {
    let server = google(|n| reply(200, &STS_OK.replace("MARKER-STS-TOKEN", &format!("MARKER-STS-TOKEN-{n}"))), reply(500, "{}")).await;
    let (fetcher, clock) = setup(&server, false, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    fetcher.access_token().await.unwrap();
    clock.advance(Duration::from_secs(3400));
    // 100 background callers inside the window: all answered with the valid token, one refresh.
    for _ in 0..100 {
      assert_eq!(fetcher.access_token_with(Refresh::Background).await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-0");
    }
    wait_for(|| fetcher.peek().is_some()).await;
    assert_eq!(server.count("/v1/token"), 2, "one refresh behind 100 callers");
  }

  #[tokio::test]
  async fn a_failed_background_refresh_keeps_serving_the_valid_token() {
    let server = google(|n| if n == 0 { reply(200, STS_OK) } else { reply(400, r#"{"error":"invalid_grant"}"#) }, reply(500, "{}")).await;
    let (fetcher, clock) = setup(&server, false, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    fetcher.access_token().await.unwrap();
    clock.advance(Duration::from_secs(3400));
    assert_eq!(fetcher.access_token_with(Refresh::Background).await.unwrap().value.token.expose(), "MARKER-STS-TOKEN");
    wait_for(|| server.count("/v1/token") == 2 && !fetcher.refreshing.load(Ordering::Acquire)).await;
    let e = fetcher.access_token_with(Refresh::Background).await.unwrap();
    assert_eq!(e.value.token.expose(), "MARKER-STS-TOKEN", "still served after the refresh failed");
    assert!(e.refresh_at > clock.now(), "the retry backs off");
    assert_eq!(fetcher.access_token().await.unwrap().value.token.expose(), "MARKER-STS-TOKEN", "a waiting caller too, during the backoff");
  }

  #[tokio::test]
  async fn refresh_once_runs_one_refresh_at_a_time_and_clears_its_flag() {
    let server = google(
      |n| Canned { delay: Duration::from_millis(100), ..reply(200, &STS_OK.replace("MARKER-STS-TOKEN", &format!("MARKER-STS-TOKEN-{n}"))) },
      reply(500, "{}"),
    )
    .await;
    let (fetcher, clock) = setup(&server, false, Some("us-east-2"), Policy::default());
    fetcher.access_token().await.unwrap();
    clock.advance(Duration::from_secs(3400));
    assert!(fetcher.peek().is_none() && !fetcher.is_refreshing());
    tokio::join!(fetcher.refresh_once(), fetcher.refresh_once(), fetcher.refresh_once());
    assert_eq!(server.count("/v1/token"), 2, "one refresh for three callers");
    assert!(!fetcher.is_refreshing(), "the flag is cleared");
    assert_eq!(fetcher.peek().unwrap().value.token.expose(), "MARKER-STS-TOKEN-1");
  }

  #[tokio::test]
  async fn invalidate_drops_tokens_and_invalidate_token_only_the_rejected_one() {
    let server = google(|n| reply(200, &STS_OK.replace("MARKER-STS-TOKEN", &format!("MARKER-STS-TOKEN-{n}"))), reply(500, "{}")).await;
    let (fetcher, _) = setup(&server, false, Some("us-east-2"), Policy::default());
    assert_eq!(fetcher.access_token().await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-0");
    assert!(fetcher.invalidate_token("MARKER-STS-TOKEN-other"), "not the cached token: retry with the cached one");
    assert_eq!(fetcher.peek().unwrap().value.token.expose(), "MARKER-STS-TOKEN-0", "and it stays");
    assert!(fetcher.invalidate_token("MARKER-STS-TOKEN-0"));
    assert!(fetcher.peek().is_none() && fetcher.peek_background().is_none());
    assert_eq!(fetcher.access_token().await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-1");
    assert!(fetcher.invalidate_token("MARKER-STS-TOKEN-0"), "already replaced: retry with the new token");
    assert_eq!(fetcher.peek().unwrap().value.token.expose(), "MARKER-STS-TOKEN-1", "which stays");
    fetcher.invalidate();
    assert!(fetcher.peek().is_none() && fetcher.peek_background().is_none());
    assert_eq!(fetcher.access_token().await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-2");
    assert_eq!(server.count("/v1/token"), 3);
  }

  const ID_PATH: &str = "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateIdToken";

  /// Routes of [`google`] plus generateIdToken answering a JWT for the requested audience, valid 1 h.
  async fn with_id_tokens() -> TestServer {
    TestServer::start(move |r: &Recorded, n| match r.path.as_str() {
      "/creds" => reply(200, CREDS),
      "/v1/token" => reply(200, STS_OK),
      ID_PATH => {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let claims = format!(r#"{{"aud":{},"n":{n},"exp":{}}}"#, body["audience"], START + 3600);
        reply(200, &format!(r#"{{"token":"{}"}}"#, crate::google::id_token::test_jwt(&claims)))
      }
      _ => reply(404, "{}"),
    })
    .await
  }

  #[tokio::test]
  async fn id_tokens_are_cached_per_audience_and_include_email() {
    let server = with_id_tokens().await;
    let (fetcher, clock) = setup(&server, true, Some("us-east-2"), Policy::default());
    let a = fetcher.id_token("https://a.example", false).await.unwrap();
    assert_eq!(a.value.expires_at, clock.now() + Duration::from_secs(3600));
    assert_eq!(a.refresh_at, clock.now() + Duration::from_secs(3300));
    assert!(!format!("{a:?}").contains(a.value.token.expose()), "Debug shows no token");
    let iam = server.requests().into_iter().find(|r| r.path == ID_PATH).unwrap();
    assert_eq!(iam.header("authorization"), Some("Bearer MARKER-STS-TOKEN"), "the federated token is the bearer");
    assert_eq!(iam.body, r#"{"audience":"https://a.example","includeEmail":false}"#);
    assert_eq!(fetcher.id_token("https://a.example", false).await.unwrap().value, a.value, "cached");
    assert_eq!(fetcher.peek_id_token("https://a.example", false).unwrap().value, a.value);
    assert!(fetcher.peek_id_token("https://a.example", true).is_none());
    let b = fetcher.id_token("https://a.example", true).await.unwrap();
    assert_ne!(b.value, a.value, "includeEmail is part of the key");
    fetcher.id_token("https://b.example", false).await.unwrap();
    assert_eq!(server.count(ID_PATH), 3);
    clock.advance(Duration::from_secs(3301));
    assert_ne!(fetcher.id_token("https://a.example", false).await.unwrap().value, a.value, "refreshed before exp");
    assert_eq!(server.count(ID_PATH), 4);
    // The refreshed token of a.example: dropped only when it is the rejected one.
    let fresh = fetcher.peek_id_token("https://a.example", false).unwrap().value.token;
    assert!(fetcher.invalidate_id_token("https://a.example", false, a.value.token.expose()), "the old token was already replaced: retry");
    assert!(fetcher.peek_id_token("https://a.example", false).is_some(), "and the new one stays");
    assert!(fetcher.invalidate_id_token("https://a.example", true, fresh.expose()), "another key: nothing cached there to drop");
    assert!(fetcher.invalidate_id_token("https://a.example", false, fresh.expose()));
    assert!(fetcher.peek_id_token("https://a.example", false).is_none());
    fetcher.id_token("https://a.example", false).await.unwrap();
    let again = fetcher.peek_id_token("https://a.example", false).unwrap().value.token;
    assert!(
      !fetcher.invalidate_id_token("https://a.example", false, again.expose()),
      "a second forced refresh within the bound is refused"
    );
    assert!(fetcher.peek_id_token("https://a.example", false).is_some());
    fetcher.id_token("https://a.example", true).await.unwrap();
    assert!(fetcher.peek_id_token("https://a.example", true).is_some());
    fetcher.invalidate();
    assert!(fetcher.peek_id_token("https://a.example", true).is_none(), "invalidate drops ID tokens too");
  }

  #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
  async fn id_tokens_single_flight_and_a_bounded_cache() {
    let server = with_id_tokens().await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    let tasks: Vec<_> = (0..20)
      .map(|_| {
        let f = fetcher.clone();
        tokio::spawn(async move { f.id_token("https://same.example", false).await.unwrap().value })
      })
      .collect();
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
      tokens.insert(t.await.unwrap().token.expose().to_string());
    }
    assert_eq!((tokens.len(), server.count(ID_PATH)), (1, 1), "one fetch for 20 concurrent callers");
    for i in 0..MAX_ID_TOKEN_AUDIENCES + 10 {
      fetcher.id_token(&format!("https://svc-{i}.example"), false).await.unwrap();
    }
    assert_eq!(fetcher.id_token_cache_count(), MAX_ID_TOKEN_AUDIENCES, "bounded");
    assert!(fetcher.peek_id_token("https://same.example", false).is_none(), "the least recently used was evicted");
    assert!(fetcher.peek_id_token(&format!("https://svc-{}.example", MAX_ID_TOKEN_AUDIENCES + 9), false).is_some());
  }

  /// STS answering MARKER-STS-TOKEN-<n>, generateAccessToken, and generateIdToken (which fails its
  /// first call with a 401 when `id_fails_first`), each IAM call recording its bearer.
  async fn sharing_server(id_fails_first: bool) -> TestServer {
    TestServer::start(move |r: &Recorded, n| match r.path.as_str() {
      "/creds" => reply(200, CREDS),
      "/v1/token" => reply(200, &STS_OK.replace("MARKER-STS-TOKEN", &format!("MARKER-STS-TOKEN-{n}"))),
      IAM_PATH => reply(200, &iam_ok()),
      ID_PATH if id_fails_first && n == 0 => reply(401, r#"{"error":{"code":401,"status":"UNAUTHENTICATED","message":"bad token"}}"#),
      ID_PATH => {
        let claims = format!(r#"{{"aud":"x","n":{n},"exp":{}}}"#, START + 3600);
        reply(200, &format!(r#"{{"token":"{}"}}"#, crate::google::id_token::test_jwt(&claims)))
      }
      _ => reply(404, "{}"),
    })
    .await
  }

  fn bearers(server: &TestServer) -> Vec<String> {
    server
      .requests()
      .iter()
      .filter(|r| r.path == IAM_PATH || r.path == ID_PATH)
      .map(|r| r.header("authorization").unwrap_or("").to_string())
      .collect()
  }

  #[tokio::test]
  async fn access_and_id_tokens_share_one_federated_token_per_its_lifetime() {
    let server = sharing_server(false).await;
    let (fetcher, clock) = setup(&server, true, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    let (a, b, c) =
      tokio::join!(fetcher.access_token(), fetcher.id_token("https://a.example", false), fetcher.id_token("https://b.example", true));
    let (_, _, _) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(
      (server.count("/v1/token"), server.count(IAM_PATH), server.count(ID_PATH)),
      (1, 1, 2),
      "one STS exchange for three IAM calls"
    );
    assert_eq!(bearers(&server), ["Bearer MARKER-STS-TOKEN-0"; 3]);
    fetcher.id_token("https://c.example", false).await.unwrap();
    assert_eq!(server.count("/v1/token"), 1, "a new audience later in the hour reuses it");
    // Inside the federated token's refresh window (55 min of 60), the next IAM call exchanges again.
    clock.advance(Duration::from_secs(3301));
    fetcher.access_token().await.unwrap();
    fetcher.id_token("https://a.example", false).await.unwrap();
    assert_eq!(server.count("/v1/token"), 2);
    assert_eq!(bearers(&server)[4..], ["Bearer MARKER-STS-TOKEN-1"; 2]);
    // invalidate() drops it with every other token of the configuration.
    fetcher.invalidate();
    fetcher.id_token("https://a.example", false).await.unwrap();
    assert_eq!(server.count("/v1/token"), 3);
    assert!(!format!("{fetcher:?}").contains("MARKER"));
  }

  #[tokio::test]
  async fn a_failed_iam_call_drops_the_federated_token_it_used() {
    let server = sharing_server(true).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let e = fetcher.id_token("https://a.example", false).await.unwrap_err();
    assert_eq!(e.code(), "IMPERSONATION_FAILED", "{e}");
    fetcher.id_token("https://a.example", false).await.unwrap();
    assert_eq!(bearers(&server), ["Bearer MARKER-STS-TOKEN-0", "Bearer MARKER-STS-TOKEN-1"], "the retry exchanged afresh");
    fetcher.access_token().await.unwrap();
    assert_eq!(server.count("/v1/token"), 2, "and the fresh one is shared");
  }

  #[tokio::test]
  async fn an_api_401_refreshes_once_per_interval_and_keeps_the_federated_token() {
    // Issue 18, defect 2: ten 401s in a row cost one forced refresh (an IAM call), no exchange.
    let server = sharing_server(true).await;
    let (fetcher, clock) = setup(&server, true, Some("us-east-2"), Policy::default());
    let first = fetcher.access_token().await.unwrap().value.token;
    assert!(fetcher.invalidate_token(first.expose()), "the first 401 may refresh");
    let mut current = fetcher.access_token().await.unwrap().value.token;
    for _ in 0..9 {
      assert!(!fetcher.invalidate_token(current.expose()), "later 401s within the bound get the 401 back");
      current = fetcher.access_token().await.unwrap().value.token;
    }
    assert_eq!((server.count("/v1/token"), server.count(IAM_PATH)), (1, 2), "1 STS, 2 generateAccessToken");
    clock.advance(crate::cache::FORCED_REFRESH_INTERVAL);
    assert!(fetcher.invalidate_token(current.expose()), "allowed again after the interval");
    fetcher.access_token().await.unwrap();
    assert_eq!((server.count("/v1/token"), server.count(IAM_PATH)), (1, 3), "the federated token is still used");
  }

  #[tokio::test]
  async fn without_impersonation_no_federated_token_is_kept_apart() {
    let server = sharing_server(false).await;
    let (fetcher, _) = setup(&server, false, Some("us-east-2"), Policy::default());
    fetcher.access_token().await.unwrap();
    fetcher.invalidate_token("MARKER-STS-TOKEN-0");
    assert_eq!(fetcher.access_token().await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-1", "the access token is the STS token");
  }

  #[tokio::test]
  async fn id_tokens_need_a_service_account_and_a_valid_audience() {
    let server = with_id_tokens().await;
    let (fetcher, _) = setup(&server, false, Some("us-east-2"), Policy::default());
    let e = fetcher.id_token("https://a.example", false).await.unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID");
    assert!(e.message().contains("ID tokens need a service account"), "{e}");
    assert!(e.hint().unwrap().contains("serviceAccountImpersonationUrl"));
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    assert_eq!(fetcher.id_token("", false).await.unwrap_err().code(), "CONFIG_INVALID");
    assert_eq!(server.requests().len(), 0, "nothing fetched for an invalid call");
  }

  #[tokio::test]
  async fn id_token_failures_are_coded_and_carry_no_secret() {
    let server = google(|_| reply(200, STS_OK), reply(200, &iam_ok())).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    // The test server answers 404 for generateIdToken here (only generateAccessToken is routed).
    let e = fetcher.id_token("https://a.example", true).await.unwrap_err();
    assert_eq!((e.code(), e.status()), ("IMPERSONATION_FAILED", Some(404)));
    assert!(e.hint().unwrap().contains("sa@p.iam.gserviceaccount.com"), "{e}");
    assert!(!MARKERS.iter().any(|m| format!("{e} {e:?}").contains(m)), "{e:?}");
  }

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
    assert!(key(None, &p) == key(None, &Policy { background: true, ..p }), "background does not split the cache");
    assert!(key(None, &p) != key(None, &Policy { margin: Duration::from_secs(1), ..p }));
    let digest = key(Some("MARKER-CLIENT-1"), &p).client_secret_digest.unwrap();
    assert_eq!(digest.len(), 64, "HMAC-SHA256, hex");
    assert!(!digest.contains("MARKER"));
    let other = SupplierCore::new(Context::from_process(), SupplierOptions::default());
    assert!(FetcherKey::new(&config(None), &other, &p) != key(None, &p), "another supplier core is another cache");
  }

  #[test]
  fn shared_fetchers_are_one_per_configuration_whatever_the_refresh_mode() {
    let supplier = SupplierCore::new(Context::from_process(), SupplierOptions::default());
    let a = FetcherCore::shared(config(Some("MARKER-CLIENT-X")), supplier.clone(), Policy::default());
    let b = FetcherCore::shared(config(Some("MARKER-CLIENT-X")), supplier.clone(), Policy { background: true, ..Policy::default() });
    assert!(Arc::ptr_eq(&a, &b));
    let c = FetcherCore::shared(config(Some("MARKER-CLIENT-Y")), supplier, Policy::default());
    assert!(!Arc::ptr_eq(&a, &c));
  }

  #[test]
  fn the_registry_evicts_only_unheld_entries_beyond_its_cap() {
    let mut reg: Registry<u32, String> = Registry::new(4);
    let held: Vec<_> = (0..3).map(|i| reg.get_or_insert(i, || format!("v{i}"))).collect();
    for i in 3..10 {
      drop(reg.get_or_insert(i, || format!("v{i}")));
    }
    assert!(reg.len() <= 4, "{}", reg.len());
    for (i, v) in held.iter().enumerate() {
      assert!(Arc::ptr_eq(v, &reg.get_or_insert(i as u32, || unreachable!())), "held entries stay");
    }
    let more: Vec<_> = (10..20).map(|i| reg.get_or_insert(i, || format!("v{i}"))).collect();
    assert_eq!(reg.len(), 13, "beyond the cap only while entries are held");
    drop(more);
    drop(reg.get_or_insert(99, String::new));
    assert_eq!(reg.len(), 4, "the unheld ones go at the next insertion");
  }

  fn statuses(outcomes: &[StepOutcome]) -> Vec<(&str, StepStatus)> {
    outcomes.iter().map(|o| (o.step, o.status)).collect()
  }

  fn assert_no_secret(outcomes: &[StepOutcome]) {
    let shown = format!("{outcomes:?}");
    for m in MARKERS {
      assert!(!shown.contains(m), "{m} leaked: {shown}");
    }
    assert!(!shown.contains("ASIAMARKERKEY1234"), "unmasked key id: {shown}");
  }

  #[tokio::test]
  async fn diagnose_reports_every_step() {
    use StepStatus::*;
    let server = google(|_| reply(200, STS_OK), reply(200, &iam_ok())).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let out = fetcher.diagnose().await;
    assert_eq!(
      statuses(&out),
      [("config", Ok), ("region", Ok), ("credentials", Ok), ("subject_token", Ok), ("sts", Ok), ("impersonation", Ok)]
    );
    assert_eq!(out[1].detail, "us-east-2 (from AWS_REGION)");
    assert_eq!(
      out[2].detail,
      "temporary credentials from container, access key ASIA…1234, account 123456789012, expire 2030-01-01T00:00:00Z"
    );
    assert!(out[3].detail.starts_with("POST https://sts.us-east-2.amazonaws.com?… (GetCallerIdentity); AWS4-HMAC-SHA256 Credential=ASIA…1234/20231114/us-east-2/sts/aws4_request"), "{}", out[3].detail);
    assert_eq!(out[4].detail, "Bearer token, expires in 3600 s");
    assert!(out[5].detail.starts_with("sa@p.iam.gserviceaccount.com: token expires 2023-11-14T23:13:20Z"));
    assert!(out[0].detail.contains("impersonating sa@p.iam.gserviceaccount.com for 1200 s"));
    assert_no_secret(&out);
    assert!(fetcher.peek().is_none(), "diagnose does not fill the token cache");
  }

  #[tokio::test]
  async fn diagnose_stops_at_the_first_failure() {
    use StepStatus::*;
    let denied = r#"{"error":{"code":403,"message":"Permission denied MARKER-STS-TOKEN","status":"PERMISSION_DENIED"}}"#;
    let server = google(|_| reply(200, STS_OK), reply(403, denied)).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let out = fetcher.diagnose().await;
    assert_eq!(out[5].status, Failed);
    let e = out[5].error.as_ref().unwrap();
    assert_eq!(e.code(), "IMPERSONATION_FAILED");
    assert!(e.hint().unwrap().contains("roles/iam.workloadIdentityUser"));
    assert_no_secret(&out);

    let (fetcher, _) = setup(&server, false, None, Policy::default());
    let out = fetcher.diagnose().await;
    assert_eq!(
      statuses(&out),
      [
        ("config", Ok),
        ("region", Failed),
        ("credentials", Skipped),
        ("subject_token", Skipped),
        ("sts", Skipped),
        ("impersonation", Skipped)
      ]
    );
    assert!(out[1].detail.starts_with("REGION_NOT_FOUND: could not determine the AWS region"), "{}", out[1].detail);
    let (fetcher, _) = setup(&server, false, Some("us-east-2"), Policy::default());
    assert_eq!(fetcher.diagnose().await[5].status, Skipped);
  }
}
