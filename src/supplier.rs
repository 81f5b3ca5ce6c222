//! The supplier core: the credential chain and the region behind process-wide caches.
//!
//! Spec:
//! * **Shared by configuration.** Suppliers built from the same configuration (the same relevant
//!   environment variables and the same options) share one [`SupplierCore`] for the whole process,
//!   and so one cache: every instance and every `worker_thread` (the addon is loaded once per
//!   process) sees one fetch per expiry. This is what google-auth-library asks of a supplier
//!   ("these are not cached by the calling AwsClient, so caching should be included in the
//!   implementation"). The cores live in a [`Registry`] bounded by [`MAX_IDLE_CONFIGURATIONS`]
//!   (cores no supplier or fetcher holds are dropped beyond it).
//! * **Credentials** are cached by the [`Cache`] policy: refreshed `refreshMarginSeconds` (default
//!   [`crate::cache::DEFAULT_MARGIN`], at most [`MAX_MARGIN`]) before they expire, one load shared
//!   by all callers, failures never cached. The **region** is resolved once and kept for the process.
//! * **Bounded.** Each load runs under one deadline of `timeoutMs` (default [`DEFAULT_TIMEOUT`]); a
//!   caller that joined a load started by another waits at most its own `timeoutMs` plus
//!   [`WAIT_GRACE`].
//! * The Google fetcher ([`crate::google::fetcher`]) takes its region and AWS credentials from the
//!   same core, so the supplier and the fetcher of one environment share one credential cache.

use std::sync::Arc;
use std::time::Duration;

use once_cell::sync::Lazy;

use crate::aws::chain::Chain;
use crate::aws::credentials::{mask_key_id, AwsCredentials};
use crate::aws::region::{self, ResolvedRegion};
use crate::cache::{Cache, Entry, Policy};
use crate::context::Context;
use crate::env::EnvSnapshot;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;
use crate::log::{Level, Logger};
use crate::registry::Registry;
use crate::time::format_rfc3339;

/// The default `timeoutMs` (its home is [`crate::http`], beside [`Deadline`]).
pub use crate::http::DEFAULT_TIMEOUT;
pub const MAX_MARGIN: Duration = Duration::from_secs(3600);

/// Options of a supplier (validated).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SupplierOptions {
  pub region: Option<String>,
  pub refresh_margin: Duration,
  pub timeout: Duration,
}

impl Default for SupplierOptions {
  fn default() -> Self {
    SupplierOptions { region: None, refresh_margin: crate::cache::DEFAULT_MARGIN, timeout: DEFAULT_TIMEOUT }
  }
}

impl SupplierOptions {
  /// Build from raw option values, refusing nonsense with `CONFIG_INVALID`.
  pub fn from_raw(region: Option<String>, margin_secs: Option<f64>, timeout_ms: Option<f64>) -> Result<Self> {
    let mut o = SupplierOptions::default();
    if let Some(r) = region {
      let r = region::normalise(&r)
        .ok_or_else(|| Error::new(ErrorKind::ConfigInvalid, "options.region is not an AWS region name (like us-east-1)"))?;
      o.region = Some(r);
    }
    if let Some(m) = margin_secs {
      if !m.is_finite() || m < 0.0 || m > MAX_MARGIN.as_secs_f64() {
        return Err(Error::new(ErrorKind::ConfigInvalid, "options.refreshMarginSeconds must be between 0 and 3600"));
      }
      o.refresh_margin = Duration::from_secs_f64(m);
    }
    if let Some(t) = timeout_ms {
      if !t.is_finite() || !(1.0..=300_000.0).contains(&t) {
        return Err(Error::new(ErrorKind::ConfigInvalid, "options.timeoutMs must be between 1 and 300000"));
      }
      o.timeout = Duration::from_millis(t as u64);
    }
    Ok(o)
  }
}

pub struct SupplierCore {
  options: SupplierOptions,
  chain: Arc<Chain>,
  credentials: Arc<Cache<AwsCredentials>>,
  region: Arc<Cache<ResolvedRegion>>,
  log: Logger,
}

impl std::fmt::Debug for SupplierCore {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("SupplierCore").field("options", &self.options).field("chain", &self.chain).finish_non_exhaustive()
  }
}

/// The process-wide cores, one per (environment snapshot, options): a [`Registry`], which keeps a
/// configuration's core (and so its cache) after the last supplier of it is garbage-collected, so
/// that re-constructing one (per request, per worker) does not refetch.
static REGISTRY: Lazy<Registry<(EnvSnapshot, SupplierOptions), SupplierCore>> = Lazy::new(|| Registry::new(MAX_IDLE_CONFIGURATIONS));

/// The bound of the registry: past this many entries, those that no live supplier or fetcher holds
/// are dropped. Cores in use are never dropped (each is one environment's cache, a few hundred
/// bytes), so the bound is on forgotten ones.
pub const MAX_IDLE_CONFIGURATIONS: usize = 64;

impl SupplierCore {
  pub fn new(ctx: Context, options: SupplierOptions) -> Arc<Self> {
    let clock = ctx.clock.clone();
    let ctx_env = ctx.env.clone();
    let policy = Policy { margin: options.refresh_margin, ..Policy::default() };
    let forever = Policy { margin: Duration::ZERO, jitter: Duration::ZERO, no_expiry_ttl: Duration::from_secs(100 * 365 * 86_400) };
    Arc::new(SupplierCore {
      chain: Arc::new(Chain::with_timeout(ctx, options.region.as_deref(), options.timeout)),
      credentials: Cache::new(policy, clock.clone()),
      region: Cache::new(forever, clock),
      log: Logger(Level::from_env(&ctx_env)),
      options,
    })
  }

  /// The process-wide core for this environment and these options.
  pub fn shared(ctx: Context, options: SupplierOptions) -> Arc<Self> {
    REGISTRY.get_or_insert((ctx.env.clone(), options.clone()), || SupplierCore::new(ctx, options))
  }

  pub fn options(&self) -> &SupplierOptions {
    &self.options
  }

  pub fn chain(&self) -> &Chain {
    &self.chain
  }

  /// Cached credentials usable now, without I/O.
  pub fn peek_credentials(&self) -> Option<Entry<AwsCredentials>> {
    self.credentials.peek()
  }

  pub async fn credentials(&self) -> Result<Entry<AwsCredentials>> {
    let chain = self.chain.clone();
    let timeout = self.options.timeout;
    let log = self.log;
    let load = self.credentials.get(move || async move {
      let deadline = Deadline::after(timeout);
      match chain.load(deadline, log).await {
        Ok(creds) => {
          log.info(|| {
            format!(
              "AWS credentials from {} ({}), expire {}",
              creds.source,
              mask_key_id(&creds.access_key_id),
              creds.expiration.map(format_rfc3339).unwrap_or_else(|| "never".into())
            )
          });
          let exp = creds.expiration;
          Ok((creds, exp))
        }
        Err(e) => {
          log.info(|| format!("AWS credentials failed: {} {e}", e.code()));
          Err(e)
        }
      }
    });
    bounded(timeout, "AWS credentials", load).await
  }

  pub fn peek_region(&self) -> Option<ResolvedRegion> {
    self.region.peek().map(|e| e.value)
  }

  pub async fn region(&self) -> Result<ResolvedRegion> {
    let chain = self.chain.clone();
    let option = self.options.region.clone();
    let timeout = self.options.timeout;
    let log = self.log;
    let load = self.region.get(move || async move {
      let deadline = Deadline::after(timeout);
      let ctx = chain.with_profile_files(deadline).await?;
      let r = region::resolve(&ctx, option.as_deref(), chain.imds(), deadline).await;
      match &r {
        Ok(r) => log.info(|| format!("AWS region {} (from {})", r.region, r.source)),
        Err(e) => log.info(|| format!("AWS region failed: {} {e}", e.code())),
      }
      Ok((r?, None))
    });
    Ok(bounded(timeout, "the AWS region", load).await?.value)
  }
}

/// A waiter's grace past its `timeoutMs`: a load that keeps its own deadline settles first, with
/// its own, more telling error (which file, which endpoint).
pub const WAIT_GRACE: Duration = Duration::from_millis(250);

/// Wait for a (possibly shared) load at most `timeout` + [`WAIT_GRACE`]: a caller that joined a
/// load started by another never waits past its own bound, whatever that load does.
async fn bounded<T>(timeout: Duration, what: &str, load: impl std::future::Future<Output = Result<T>>) -> Result<T> {
  match tokio::time::timeout(timeout + WAIT_GRACE, load).await {
    Ok(r) => r,
    Err(_) => Err(
      Error::new(ErrorKind::Timeout, format!("{what} did not arrive in time (bound {} ms)", timeout.as_millis()))
        .with_hint("raise timeoutMs, or run `npx aws-wif-supplier doctor` to see which source is slow"),
    ),
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::{ManualClock, OsFs};

  fn ctx(vars: &[(&str, &str)]) -> Context {
    let mut all =
      vec![("AWS_EC2_METADATA_DISABLED", "true"), ("AWS_CONFIG_FILE", "/nonexistent/c"), ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/k")];
    all.extend_from_slice(vars);
    Context::new(EnvSnapshot::from_pairs(all), Arc::new(OsFs), Arc::new(ManualClock::at_epoch_secs(1_700_000_000)))
  }

  #[test]
  fn options_are_validated() {
    assert!(SupplierOptions::from_raw(Some("US-EAST-1".into()), Some(60.0), Some(500.0)).is_ok());
    for (r, m, t) in [(Some("bad region"), None, None), (None, Some(-1.0), None), (None, Some(f64::NAN), None), (None, None, Some(0.0))] {
      let e = SupplierOptions::from_raw(r.map(str::to_string), m, t).unwrap_err();
      assert_eq!(e.code(), "CONFIG_INVALID");
    }
  }

  #[test]
  fn same_configuration_shares_one_core() {
    let a = SupplierCore::shared(ctx(&[("AWS_REGION", "eu-west-1")]), SupplierOptions::default());
    let b = SupplierCore::shared(ctx(&[("AWS_REGION", "eu-west-1")]), SupplierOptions::default());
    let c = SupplierCore::shared(ctx(&[("AWS_REGION", "eu-west-2")]), SupplierOptions::default());
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!Arc::ptr_eq(&a, &c));
  }

  #[test]
  fn the_registry_forgets_unused_configurations_past_its_bound() {
    let held = SupplierCore::shared(ctx(&[("AWS_REGION", "sa-east-1"), ("AWS_PROFILE", "held")]), SupplierOptions::default());
    for i in 0..(MAX_IDLE_CONFIGURATIONS * 2) {
      let name = format!("unused-{i}");
      drop(SupplierCore::shared(ctx(&[("AWS_PROFILE", name.as_str())]), SupplierOptions::default()));
    }
    let len = REGISTRY.len();
    assert!(len <= MAX_IDLE_CONFIGURATIONS + 8, "{len}"); // (+ other tests' live cores)
    let again = SupplierCore::shared(ctx(&[("AWS_REGION", "sa-east-1"), ("AWS_PROFILE", "held")]), SupplierOptions::default());
    assert!(Arc::ptr_eq(&held, &again), "a core in use is never dropped");
  }

  #[tokio::test]
  async fn static_keys_and_env_region() {
    let core = SupplierCore::new(
      ctx(&[("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_DEFAULT_REGION", "ap-northeast-1")]),
      SupplierOptions::default(),
    );
    assert_eq!(core.credentials().await.unwrap().value.access_key_id, "AKIDEXAMPLE");
    assert_eq!(core.region().await.unwrap().region, "ap-northeast-1");
    assert!(core.peek_credentials().is_some());
  }
}
