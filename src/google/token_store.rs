//! The token store of one configuration: the access-token, federated-token and ID-token caches,
//! and the one place that decides background refresh ([`TokenStore::ready`]) and its defaults.
//!
//! Caching (each cache is a [`Cache`], see [`crate::cache`]): a token is fresh until 5 minutes
//! (the policy's margin, like google-auth-library's `eagerRefreshThresholdMillis`) plus up to
//! [`DEFAULT_JITTER`] before expiry; one in-flight fetch is shared by all callers; failures are
//! never cached.
//! * **Access token**: the impersonated token (expiry: its `expireTime`), or without impersonation
//!   the STS token itself.
//! * **Federated token** (with impersonation): the STS token, cached until `expires_in` (the STS
//!   default is 1 hour). The access token and every ID token of the configuration call IAM
//!   Credentials with it, so they share one STS exchange per federated-token lifetime (STS quotas
//!   are per project). An IAM call that answers 401 drops the federated token it used (if it is
//!   still the cached one), so the next fetch exchanges afresh.
//! * **ID tokens**: per (audience, include_email), at most [`MAX_ID_TOKEN_AUDIENCES`] per
//!   configuration (least recently used evicted), with the same policy.
//! * An API's rejection of a token ([`TokenStore::invalidate_token`],
//!   [`TokenStore::invalidate_id_token`]) drops only that token, never a still-valid federated
//!   token. Every drop is a forced refresh, at most one per [`crate::cache::FORCED_REFRESH_INTERVAL`]
//!   per cache, process-wide.
//!
//! Background refresh is a per-call choice ([`Refresh`]), not part of the caches or of their key:
//! one configuration is one cache and one exchange, whichever way its callers refresh. Inside the
//! refresh window a [`Refresh::Background`] caller gets the still-valid token at once, reusable for
//! [`BACKGROUND_RECHECK`], and one refresh runs behind it ([`TokenStore::refresh_once`]); a failed
//! background refresh keeps the valid token served and backs off. The defaults of each entry point
//! are here too: [`FETCHER_BACKGROUND_REFRESH`], [`AUTH_CLIENT_BACKGROUND_REFRESH`],
//! [`METADATA_SERVER_BACKGROUND_REFRESH`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::cache::{Cache, Entry, Policy};
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;
use crate::redact::Secret;
use crate::supplier::SupplierCore;

use super::config_file::FetcherConfig;
use super::flow::{self, AccessToken};
use super::id_token::{self, IdToken};

/// Inside the refresh window, how long a [`Refresh::Background`] caller may reuse the still-valid
/// token before asking again (the refresh runs behind it meanwhile).
pub const BACKGROUND_RECHECK: Duration = Duration::from_millis(100);
/// At most this many ID-token audiences (× `includeEmail`) are cached per configuration; the
/// JavaScript memos of one thread keep the same bound.
pub const MAX_ID_TOKEN_AUDIENCES: usize = 64;
/// The default spread of token refreshes (`refreshJitterSeconds`): each token is refreshed a further
/// random 0 to this long early, so that processes started together do not exchange in the same minute.
pub const DEFAULT_JITTER: Duration = Duration::from_secs(300);
/// `backgroundRefresh` of a `GoogleTokenFetcher` whose options leave it unset: callers wait for
/// the refreshed token (as google-auth-library's own clients do).
pub const FETCHER_BACKGROUND_REFRESH: bool = false;
/// `backgroundRefresh` of `fetcher.authClient()` when its options leave it unset: a client sends
/// requests, which should not stall on a refresh while a valid token is at hand.
pub const AUTH_CLIENT_BACKGROUND_REFRESH: bool = true;
/// The metadata server's fetchers always refresh in the background (its clients cache tokens on
/// their own and must get an answer at once).
pub const METADATA_SERVER_BACKGROUND_REFRESH: bool = true;

/// How a caller wants an access token refreshed. The choice is per call, not part of the
/// configuration: one configuration is one cache and one exchange, whichever way its callers refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
  /// Inside the refresh window, wait for the refreshed token (one shared exchange).
  Wait,
  /// Inside the refresh window, get the still-valid token at once while one refresh runs behind.
  Background,
}

impl Refresh {
  /// The mode of a `backgroundRefresh` option: `option`, else `default` (one of the defaults above).
  pub fn from_option(option: Option<bool>, default: bool) -> Refresh {
    if option.unwrap_or(default) {
      Refresh::Background
    } else {
      Refresh::Wait
    }
  }
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
  // Every critical section below is a few plain field writes: a panic cannot leave them half done.
  m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a cache load needs, owned (a load runs as its own task): the configuration, the supplier
/// core (context, region, AWS credentials), the time bound of one fetch, and the federated cache.
#[derive(Clone)]
struct Loader {
  config: Arc<FetcherConfig>,
  supplier: Arc<SupplierCore>,
  timeout: Duration,
  federated: Arc<Cache<AccessToken>>,
}

impl Loader {
  fn ctx(&self) -> &crate::context::Context {
    self.supplier.chain().context()
  }

  /// The federated token for an IAM call, from the federated-token cache. The load runs under the
  /// deadline of the fetch that starts it; a fetch that joins it started later, so its own
  /// deadline is later.
  async fn federated(&self, deadline: Deadline) -> Result<Secret> {
    let this = self.clone();
    let load = move || async move {
      let token = flow::federated_token(this.ctx(), flow::federate(&this.config, &this.supplier, deadline).await?);
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

  async fn access_token(self) -> Result<AccessToken> {
    let deadline = Deadline::after(self.timeout);
    match &self.config.service_account_impersonation_url {
      None => Ok(flow::federated_token(self.ctx(), flow::federate(&self.config, &self.supplier, deadline).await?)),
      Some(url) => {
        let sts_token = self.federated(deadline).await?;
        let t = flow::impersonate(self.ctx(), &self.config, url, &sts_token, deadline)
          .await
          .inspect_err(|e| self.drop_federated(&sts_token, e))?;
        Ok(AccessToken { token: t.access_token, expires_at: t.expire_time })
      }
    }
  }

  async fn id_token(self, url: String, audience: String, include_email: bool) -> Result<IdToken> {
    let deadline = Deadline::after(self.timeout);
    let sts_token = self.federated(deadline).await?;
    let token = flow::generate_id_token(self.ctx(), &url, &sts_token, &audience, include_email, deadline).await;
    token.inspect_err(|e| self.drop_federated(&sts_token, e))
  }
}

/// Clears the background-refresh flag when the refresh ends, however it ends (also when its task
/// is dropped with a runtime that shuts down).
struct RefreshGuard(Arc<AtomicBool>);

impl Drop for RefreshGuard {
  fn drop(&mut self) {
    self.0.store(false, Ordering::Release);
  }
}

/// Every token cache of one configuration (see the module doc).
pub struct TokenStore {
  loader: Loader,
  /// Never in background mode: background is a per-call choice ([`Refresh`]).
  access: Arc<Cache<AccessToken>>,
  /// The last token the access cache handed out, so that a [`Refresh::Background`] caller can be
  /// served inside the refresh window (the cache itself answers only with values usable now).
  last: Mutex<Option<Entry<AccessToken>>>,
  /// A background refresh is running.
  refreshing: Arc<AtomicBool>,
  id_tokens: Mutex<IdTokenCaches>,
  policy: Policy,
}

impl TokenStore {
  /// The caches of `config`, whose tokens come through `supplier`, cached by `policy`; one fetch
  /// is bounded by `timeout`.
  pub fn new(config: Arc<FetcherConfig>, supplier: Arc<SupplierCore>, policy: Policy, timeout: Duration) -> Self {
    let clock = supplier.chain().context().clock.clone();
    let federated = Cache::new(policy, clock.clone());
    TokenStore {
      loader: Loader { config, supplier, timeout, federated },
      access: Cache::new(policy, clock),
      last: Mutex::new(None),
      refreshing: Arc::new(AtomicBool::new(false)),
      id_tokens: Mutex::new(IdTokenCaches::default()),
      policy,
    }
  }

  /// Bound one fetch (STS and impersonation together) by `timeout`.
  pub fn set_timeout(&mut self, timeout: Duration) {
    self.loader.timeout = timeout;
  }

  /// The bound of one fetch.
  pub fn timeout(&self) -> Duration {
    self.loader.timeout
  }

  /// A cached access token usable now, without I/O.
  pub fn peek(&self) -> Option<Entry<AccessToken>> {
    self.access.peek()
  }

  /// The one background-refresh decision: a token this caller may have now, without waiting.
  /// * Usable now: it, whatever the mode.
  /// * [`Refresh::Background`], and a token still valid inside the refresh window: it, with
  ///   `refresh_at` [`BACKGROUND_RECHECK`] from now (or its expiry if sooner: callers that reuse it
  ///   until then pick up the refreshed token at most that late, and meanwhile ask nobody), and one
  ///   refresh started behind it, unless one is running.
  /// * Otherwise `None`: the caller waits for [`Self::access_token`].
  pub fn ready(self: &Arc<Self>, refresh: Refresh) -> Option<Entry<AccessToken>> {
    if let Some(e) = self.access.peek() {
      return Some(e);
    }
    if refresh == Refresh::Wait {
      return None;
    }
    let now = self.loader.ctx().clock.now();
    let last = lock(&self.last).clone().filter(|e| now < e.value.expires_at)?;
    self.refresh_behind();
    let refresh_at = (now + BACKGROUND_RECHECK).min(last.value.expires_at);
    Some(Entry { refresh_at, ..last })
  }

  /// Start one refresh as its own task (on the current tokio runtime, else the crate's
  /// [`crate::runtime`]), unless one is running. Its failure is kept by the cache (the valid token
  /// is served, the next attempt backs off); a runtime that cannot start it leaves the next caller
  /// to try again.
  fn refresh_behind(self: &Arc<Self>) {
    if self.is_refreshing() {
      return;
    }
    let handle = tokio::runtime::Handle::try_current().or_else(|_| crate::runtime::handle());
    if let Ok(handle) = handle {
      let this = self.clone();
      handle.spawn(async move { this.refresh_once().await });
    }
  }

  /// The access token, from the cache or from one shared fetch ([`Refresh::Wait`]).
  pub async fn access_token(&self) -> Result<Entry<AccessToken>> {
    let loader = self.loader.clone();
    let entry = self
      .access
      .get(move || async move {
        let token = loader.access_token().await?;
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

  /// The access token, refreshed the way the caller asks ([`Self::ready`], else wait).
  pub async fn access_token_with(self: &Arc<Self>, refresh: Refresh) -> Result<Entry<AccessToken>> {
    match self.ready(refresh) {
      Some(e) => Ok(e),
      None => self.access_token().await,
    }
  }

  /// Whether a background refresh is running.
  pub fn is_refreshing(&self) -> bool {
    self.refreshing.load(Ordering::Acquire)
  }

  /// Refresh the access token once, unless a background refresh is already running. For a caller
  /// that does not wait on it; its outcome lands in the cache.
  pub async fn refresh_once(&self) {
    if self.refreshing.swap(true, Ordering::AcqRel) {
      return;
    }
    let _guard = RefreshGuard(self.refreshing.clone());
    let _ = self.access_token().await;
  }

  /// Forget every cached token: the access token, the federated token and the ID tokens. A fetch
  /// in flight still lands.
  pub fn invalidate(&self) {
    self.access.invalidate();
    self.loader.federated.invalidate();
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
    let cached = match self.access.peek() {
      Some(current) => Some(current.value.token.expose() == token),
      None => last.as_ref().map(|l| l.value.token.expose() == token),
    };
    match cached {
      Some(true) if self.access.allow_forced_refresh() => {
        self.access.invalidate();
        *last = None;
        true
      }
      Some(true) => false,
      Some(false) | None => true,
    }
  }

  /// The `generateIdToken` URL, or `CONFIG_INVALID` without impersonation.
  fn id_token_url(&self) -> Result<String> {
    let no_sa = || {
      Error::new(ErrorKind::ConfigInvalid, "ID tokens need a service account: service_account_impersonation_url is not set").with_hint(
        "set serviceAccountImpersonationUrl (service_account_impersonation_url in the credential configuration) to the \
         generateAccessToken URL of the service account whose ID tokens you need; that account must grant the federated \
         principal roles/iam.workloadIdentityUser",
      )
    };
    let url = self.loader.config.service_account_impersonation_url.as_deref().ok_or_else(no_sa)?;
    id_token::id_token_url(url).ok_or_else(|| {
      Error::new(
        ErrorKind::ConfigInvalid,
        "service_account_impersonation_url does not end in serviceAccounts/<EMAIL>:generateAccessToken, so no generateIdToken URL can be derived from it",
      )
    })
  }

  fn new_id_cache(&self) -> Arc<Cache<IdToken>> {
    Cache::new(self.policy, self.loader.ctx().clock.clone())
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
        None => return Some(self.new_id_cache()),
      }
    }
    let cache = self.new_id_cache();
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
  /// (audience, include_email). `CONFIG_INVALID` without impersonation.
  pub async fn id_token(&self, audience: &str, include_email: bool) -> Result<Entry<IdToken>> {
    let url = self.id_token_url()?;
    id_token::check_audience(audience)?;
    let cache = self.id_token_cache(audience, include_email, true).ok_or_else(|| Error::new(ErrorKind::Internal, "no ID token cache"))?;
    let loader = self.loader.clone();
    let audience = audience.to_string();
    cache
      .get(move || async move {
        let token = loader.id_token(url, audience, include_email).await?;
        let exp = token.expires_at;
        Ok((token, Some(exp)))
      })
      .await
  }

  /// How many ID-token caches this configuration holds (tests).
  #[cfg(test)]
  pub(crate) fn id_token_cache_count(&self) -> usize {
    lock(&self.id_tokens).entries.len()
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::cache::Policy;
  use crate::env::Clock;
  use crate::google::test_fixtures::*;
  use crate::google::test_server::{reply, Canned};
  use std::sync::Arc;
  use std::time::Duration;

  #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
  async fn concurrent_callers_share_one_fetch() {
    let server = google(|_| Canned { delay: Duration::from_millis(200), ..reply(200, STS_OK) }, reply(200, &iam_ok())).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    let tasks: Vec<_> = (0..50)
      .map(|_| {
        let f = fetcher.clone();
        tokio::spawn(async move { f.tokens().access_token().await })
      })
      .collect();
    for t in tasks {
      assert_eq!(t.await.unwrap().unwrap().value.token.expose(), "MARKER-SA-TOKEN");
    }
    assert_eq!((server.count("/v1/token"), server.count(IAM_PATH)), (1, 1));
  }

  #[tokio::test]
  async fn background_refresh_serves_the_current_token() {
    let server = google(|n| reply(200, &STS_OK.replace("MARKER-STS-TOKEN", &format!("MARKER-STS-TOKEN-{n}"))), reply(500, "{}")).await;
    let (fetcher, clock) = setup(&server, false, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    assert_eq!(fetcher.tokens().access_token_with(Refresh::Background).await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-0");
    clock.advance(Duration::from_secs(3400));
    let served = fetcher.tokens().access_token_with(Refresh::Background).await.unwrap();
    assert_eq!(served.value.token.expose(), "MARKER-STS-TOKEN-0", "answered at once");
    assert_eq!(served.refresh_at, clock.now() + BACKGROUND_RECHECK, "reuse it only briefly");
    wait_for(|| fetcher.tokens().peek().is_some_and(|e| e.value.token.expose() == "MARKER-STS-TOKEN-1")).await;
    assert_eq!(server.count("/v1/token"), 2, "one refresh");
  }

  #[tokio::test]
  async fn inside_the_window_100_background_callers_are_answered_at_once_behind_one_refresh() {
    let server = google(|n| reply(200, &STS_OK.replace("MARKER-STS-TOKEN", &format!("MARKER-STS-TOKEN-{n}"))), reply(500, "{}")).await;
    let (fetcher, clock) = setup(&server, false, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    fetcher.tokens().access_token().await.unwrap();
    clock.advance(Duration::from_secs(3400));
    // 100 background callers inside the window: all answered with the valid token, one refresh.
    for _ in 0..100 {
      assert_eq!(fetcher.tokens().access_token_with(Refresh::Background).await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-0");
    }
    wait_for(|| fetcher.tokens().peek().is_some()).await;
    assert_eq!(server.count("/v1/token"), 2, "one refresh behind 100 callers");
  }

  #[tokio::test]
  async fn a_failed_background_refresh_keeps_serving_the_valid_token() {
    let server = google(|n| if n == 0 { reply(200, STS_OK) } else { reply(400, r#"{"error":"invalid_grant"}"#) }, reply(500, "{}")).await;
    let (fetcher, clock) = setup(&server, false, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    fetcher.tokens().access_token().await.unwrap();
    clock.advance(Duration::from_secs(3400));
    assert_eq!(fetcher.tokens().access_token_with(Refresh::Background).await.unwrap().value.token.expose(), "MARKER-STS-TOKEN");
    wait_for(|| server.count("/v1/token") == 2 && !fetcher.tokens().is_refreshing()).await;
    let e = fetcher.tokens().access_token_with(Refresh::Background).await.unwrap();
    assert_eq!(e.value.token.expose(), "MARKER-STS-TOKEN", "still served after the refresh failed");
    assert!(e.refresh_at > clock.now(), "the retry backs off");
    assert_eq!(
      fetcher.tokens().access_token().await.unwrap().value.token.expose(),
      "MARKER-STS-TOKEN",
      "a waiting caller too, during the backoff"
    );
  }

  #[tokio::test]
  async fn refresh_once_runs_one_refresh_at_a_time_and_clears_its_flag() {
    let server = google(
      |n| Canned { delay: Duration::from_millis(100), ..reply(200, &STS_OK.replace("MARKER-STS-TOKEN", &format!("MARKER-STS-TOKEN-{n}"))) },
      reply(500, "{}"),
    )
    .await;
    let (fetcher, clock) = setup(&server, false, Some("us-east-2"), Policy::default());
    fetcher.tokens().access_token().await.unwrap();
    clock.advance(Duration::from_secs(3400));
    assert!(fetcher.tokens().peek().is_none() && !fetcher.tokens().is_refreshing());
    tokio::join!(fetcher.tokens().refresh_once(), fetcher.tokens().refresh_once(), fetcher.tokens().refresh_once());
    assert_eq!(server.count("/v1/token"), 2, "one refresh for three callers");
    assert!(!fetcher.tokens().is_refreshing(), "the flag is cleared");
    assert_eq!(fetcher.tokens().peek().unwrap().value.token.expose(), "MARKER-STS-TOKEN-1");
  }

  #[tokio::test]
  async fn invalidate_drops_tokens_and_invalidate_token_only_the_rejected_one() {
    let server = google(|n| reply(200, &STS_OK.replace("MARKER-STS-TOKEN", &format!("MARKER-STS-TOKEN-{n}"))), reply(500, "{}")).await;
    let (fetcher, _) = setup(&server, false, Some("us-east-2"), Policy::default());
    assert_eq!(fetcher.tokens().access_token().await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-0");
    assert!(fetcher.tokens().invalidate_token("MARKER-STS-TOKEN-other"), "not the cached token: retry with the cached one");
    assert_eq!(fetcher.tokens().peek().unwrap().value.token.expose(), "MARKER-STS-TOKEN-0", "and it stays");
    assert!(fetcher.tokens().invalidate_token("MARKER-STS-TOKEN-0"));
    assert!(fetcher.tokens().peek().is_none() && fetcher.tokens().ready(Refresh::Background).is_none());
    assert_eq!(fetcher.tokens().access_token().await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-1");
    assert!(fetcher.tokens().invalidate_token("MARKER-STS-TOKEN-0"), "already replaced: retry with the new token");
    assert_eq!(fetcher.tokens().peek().unwrap().value.token.expose(), "MARKER-STS-TOKEN-1", "which stays");
    fetcher.tokens().invalidate();
    assert!(fetcher.tokens().peek().is_none() && fetcher.tokens().ready(Refresh::Background).is_none());
    assert_eq!(fetcher.tokens().access_token().await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-2");
    assert_eq!(server.count("/v1/token"), 3);
  }

  #[tokio::test]
  async fn id_tokens_are_cached_per_audience_and_include_email() {
    let server = with_id_tokens().await;
    let (fetcher, clock) = setup(&server, true, Some("us-east-2"), Policy::default());
    let a = fetcher.tokens().id_token("https://a.example", false).await.unwrap();
    assert_eq!(a.value.expires_at, clock.now() + Duration::from_secs(3600));
    assert_eq!(a.refresh_at, clock.now() + Duration::from_secs(3300));
    assert!(!format!("{a:?}").contains(a.value.token.expose()), "Debug shows no token");
    let iam = server.requests().into_iter().find(|r| r.path == ID_PATH).unwrap();
    assert_eq!(iam.header("authorization"), Some("Bearer MARKER-STS-TOKEN"), "the federated token is the bearer");
    assert_eq!(iam.body, r#"{"audience":"https://a.example","includeEmail":false}"#);
    assert_eq!(fetcher.tokens().id_token("https://a.example", false).await.unwrap().value, a.value, "cached");
    assert_eq!(fetcher.tokens().peek_id_token("https://a.example", false).unwrap().value, a.value);
    assert!(fetcher.tokens().peek_id_token("https://a.example", true).is_none());
    let b = fetcher.tokens().id_token("https://a.example", true).await.unwrap();
    assert_ne!(b.value, a.value, "includeEmail is part of the key");
    fetcher.tokens().id_token("https://b.example", false).await.unwrap();
    assert_eq!(server.count(ID_PATH), 3);
    clock.advance(Duration::from_secs(3301));
    assert_ne!(fetcher.tokens().id_token("https://a.example", false).await.unwrap().value, a.value, "refreshed before exp");
    assert_eq!(server.count(ID_PATH), 4);
    // The refreshed token of a.example: dropped only when it is the rejected one.
    let fresh = fetcher.tokens().peek_id_token("https://a.example", false).unwrap().value.token;
    assert!(
      fetcher.tokens().invalidate_id_token("https://a.example", false, a.value.token.expose()),
      "the old token was already replaced: retry"
    );
    assert!(fetcher.tokens().peek_id_token("https://a.example", false).is_some(), "and the new one stays");
    assert!(fetcher.tokens().invalidate_id_token("https://a.example", true, fresh.expose()), "another key: nothing cached there to drop");
    assert!(fetcher.tokens().invalidate_id_token("https://a.example", false, fresh.expose()));
    assert!(fetcher.tokens().peek_id_token("https://a.example", false).is_none());
    fetcher.tokens().id_token("https://a.example", false).await.unwrap();
    let again = fetcher.tokens().peek_id_token("https://a.example", false).unwrap().value.token;
    assert!(
      !fetcher.tokens().invalidate_id_token("https://a.example", false, again.expose()),
      "a second forced refresh within the bound is refused"
    );
    assert!(fetcher.tokens().peek_id_token("https://a.example", false).is_some());
    fetcher.tokens().id_token("https://a.example", true).await.unwrap();
    assert!(fetcher.tokens().peek_id_token("https://a.example", true).is_some());
    fetcher.tokens().invalidate();
    assert!(fetcher.tokens().peek_id_token("https://a.example", true).is_none(), "invalidate drops ID tokens too");
  }

  #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
  async fn id_tokens_single_flight_and_a_bounded_cache() {
    let server = with_id_tokens().await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    let tasks: Vec<_> = (0..20)
      .map(|_| {
        let f = fetcher.clone();
        tokio::spawn(async move { f.tokens().id_token("https://same.example", false).await.unwrap().value })
      })
      .collect();
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
      tokens.insert(t.await.unwrap().token.expose().to_string());
    }
    assert_eq!((tokens.len(), server.count(ID_PATH)), (1, 1), "one fetch for 20 concurrent callers");
    for i in 0..MAX_ID_TOKEN_AUDIENCES + 10 {
      fetcher.tokens().id_token(&format!("https://svc-{i}.example"), false).await.unwrap();
    }
    assert_eq!(fetcher.tokens().id_token_cache_count(), MAX_ID_TOKEN_AUDIENCES, "bounded");
    assert!(fetcher.tokens().peek_id_token("https://same.example", false).is_none(), "the least recently used was evicted");
    assert!(fetcher.tokens().peek_id_token(&format!("https://svc-{}.example", MAX_ID_TOKEN_AUDIENCES + 9), false).is_some());
  }

  #[tokio::test]
  async fn access_and_id_tokens_share_one_federated_token_per_its_lifetime() {
    let server = sharing_server(false).await;
    let (fetcher, clock) = setup(&server, true, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    let (a, b, c) = tokio::join!(
      fetcher.tokens().access_token(),
      fetcher.tokens().id_token("https://a.example", false),
      fetcher.tokens().id_token("https://b.example", true)
    );
    let (_, _, _) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(
      (server.count("/v1/token"), server.count(IAM_PATH), server.count(ID_PATH)),
      (1, 1, 2),
      "one STS exchange for three IAM calls"
    );
    assert_eq!(bearers(&server), ["Bearer MARKER-STS-TOKEN-0"; 3]);
    fetcher.tokens().id_token("https://c.example", false).await.unwrap();
    assert_eq!(server.count("/v1/token"), 1, "a new audience later in the hour reuses it");
    // Inside the federated token's refresh window (55 min of 60), the next IAM call exchanges again.
    clock.advance(Duration::from_secs(3301));
    fetcher.tokens().access_token().await.unwrap();
    fetcher.tokens().id_token("https://a.example", false).await.unwrap();
    assert_eq!(server.count("/v1/token"), 2);
    assert_eq!(bearers(&server)[4..], ["Bearer MARKER-STS-TOKEN-1"; 2]);
    // invalidate() drops it with every other token of the configuration.
    fetcher.tokens().invalidate();
    fetcher.tokens().id_token("https://a.example", false).await.unwrap();
    assert_eq!(server.count("/v1/token"), 3);
    assert!(!format!("{fetcher:?}").contains("MARKER"));
  }

  #[tokio::test]
  async fn a_failed_iam_call_drops_the_federated_token_it_used() {
    let server = sharing_server(true).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let e = fetcher.tokens().id_token("https://a.example", false).await.unwrap_err();
    assert_eq!(e.code(), "IMPERSONATION_FAILED", "{e}");
    fetcher.tokens().id_token("https://a.example", false).await.unwrap();
    assert_eq!(bearers(&server), ["Bearer MARKER-STS-TOKEN-0", "Bearer MARKER-STS-TOKEN-1"], "the retry exchanged afresh");
    fetcher.tokens().access_token().await.unwrap();
    assert_eq!(server.count("/v1/token"), 2, "and the fresh one is shared");
  }

  #[tokio::test]
  async fn an_api_401_refreshes_once_per_interval_and_keeps_the_federated_token() {
    // Issue 18, defect 2: ten 401s in a row cost one forced refresh (an IAM call), no exchange.
    let server = sharing_server(true).await;
    let (fetcher, clock) = setup(&server, true, Some("us-east-2"), Policy::default());
    let first = fetcher.tokens().access_token().await.unwrap().value.token;
    assert!(fetcher.tokens().invalidate_token(first.expose()), "the first 401 may refresh");
    let mut current = fetcher.tokens().access_token().await.unwrap().value.token;
    for _ in 0..9 {
      assert!(!fetcher.tokens().invalidate_token(current.expose()), "later 401s within the bound get the 401 back");
      current = fetcher.tokens().access_token().await.unwrap().value.token;
    }
    assert_eq!((server.count("/v1/token"), server.count(IAM_PATH)), (1, 2), "1 STS, 2 generateAccessToken");
    clock.advance(crate::cache::FORCED_REFRESH_INTERVAL);
    assert!(fetcher.tokens().invalidate_token(current.expose()), "allowed again after the interval");
    fetcher.tokens().access_token().await.unwrap();
    assert_eq!((server.count("/v1/token"), server.count(IAM_PATH)), (1, 3), "the federated token is still used");
  }

  #[tokio::test]
  async fn without_impersonation_no_federated_token_is_kept_apart() {
    let server = sharing_server(false).await;
    let (fetcher, _) = setup(&server, false, Some("us-east-2"), Policy::default());
    fetcher.tokens().access_token().await.unwrap();
    fetcher.tokens().invalidate_token("MARKER-STS-TOKEN-0");
    assert_eq!(
      fetcher.tokens().access_token().await.unwrap().value.token.expose(),
      "MARKER-STS-TOKEN-1",
      "the access token is the STS token"
    );
  }

  #[tokio::test]
  async fn id_tokens_need_a_service_account_and_a_valid_audience() {
    let server = with_id_tokens().await;
    let (fetcher, _) = setup(&server, false, Some("us-east-2"), Policy::default());
    let e = fetcher.tokens().id_token("https://a.example", false).await.unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID");
    assert!(e.message().contains("ID tokens need a service account"), "{e}");
    assert!(e.hint().unwrap().contains("serviceAccountImpersonationUrl"));
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    assert_eq!(fetcher.tokens().id_token("", false).await.unwrap_err().code(), "CONFIG_INVALID");
    assert_eq!(server.requests().len(), 0, "nothing fetched for an invalid call");
  }

  #[tokio::test]
  async fn id_token_failures_are_coded_and_carry_no_secret() {
    let server = google(|_| reply(200, STS_OK), reply(200, &iam_ok())).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    // The test server answers 404 for generateIdToken here (only generateAccessToken is routed).
    let e = fetcher.tokens().id_token("https://a.example", true).await.unwrap_err();
    assert_eq!((e.code(), e.status()), ("IMPERSONATION_FAILED", Some(404)));
    assert!(e.hint().unwrap().contains("sa@p.iam.gserviceaccount.com"), "{e}");
    assert!(!MARKERS.iter().any(|m| format!("{e} {e:?}").contains(m)), "{e:?}");
  }
}
