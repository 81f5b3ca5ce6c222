//! The outside world, injected: environment variables, files and the clock ([`crate::context`]
//! bundles them with the HTTP client).
//!
//! Nothing below the binding reads `std::env`, the filesystem or `SystemTime::now()` directly.
//! The binding takes an [`EnvSnapshot`] of the process environment once, when a supplier or
//! fetcher is constructed, and passes it down with [`OsFs`] and [`SystemClock`]. Tests pass maps,
//! in-memory files and a manual clock instead.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable names the crate reads. Only these are captured by
/// [`EnvSnapshot::from_process`], so the snapshot (and the process-wide cache key derived from it)
/// never holds unrelated values.
pub const RELEVANT_VARS: &[&str] = &[
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_PROFILE",
  "AWS_CONFIG_FILE",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_ROLE_ARN",
  "AWS_ROLE_SESSION_NAME",
  "AWS_ENDPOINT_URL",
  "AWS_ENDPOINT_URL_STS",
  "AWS_ENDPOINT_URL_SSO",
  "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
  "AWS_USE_FIPS_ENDPOINT",
  "AWS_USE_DUALSTACK_ENDPOINT",
  "HOMEDRIVE",
  "HOMEPATH",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
  "AWS_EC2_METADATA_DISABLED",
  "AWS_EC2_METADATA_SERVICE_ENDPOINT",
  "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
  "AWS_EC2_METADATA_V1_DISABLED",
  "AWS_EXECUTION_ENV",
  "ECS_CONTAINER_METADATA_URI_V4",
  "ECS_CONTAINER_METADATA_URI",
  "GOOGLE_APPLICATION_CREDENTIALS",
  "AWS_WIF_SUPPLIER_LOG",
  "HOME",
  "USERPROFILE",
  "HTTPS_PROXY",
  "https_proxy",
  "HTTP_PROXY",
  "http_proxy",
  "NO_PROXY",
  "no_proxy",
];

/// An immutable snapshot of environment variables.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct EnvSnapshot {
  vars: BTreeMap<String, String>,
}

impl EnvSnapshot {
  /// Capture the [`RELEVANT_VARS`] of the current process.
  pub fn from_process() -> Self {
    let vars = RELEVANT_VARS.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))).collect();
    EnvSnapshot { vars }
  }

  pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
    EnvSnapshot { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
  }

  /// The value of `key`, with blank (whitespace-only) values treated as unset, as the AWS SDKs do.
  pub fn get(&self, key: &str) -> Option<&str> {
    self.vars.get(key).map(String::as_str).filter(|v| !v.trim().is_empty())
  }

  /// The value of `key` even when blank (for variables where set-but-empty means something).
  pub fn get_raw(&self, key: &str) -> Option<&str> {
    self.vars.get(key).map(String::as_str)
  }

  /// True when `key` is set to `true` (any case).
  pub fn is_true(&self, key: &str) -> bool {
    self.get(key).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
  }

  /// Names (never values) of the variables that are set: safe to log and to show in errors.
  pub fn names(&self) -> Vec<&str> {
    self.vars.iter().filter(|(_, v)| !v.trim().is_empty()).map(|(k, _)| k.as_str()).collect()
  }

  /// Iterate over all captured pairs (for handing the environment to aws-config).
  pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
    self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
  }
}

impl std::fmt::Debug for EnvSnapshot {
  /// Names only: values may be secrets (`AWS_SECRET_ACCESS_KEY`, `AWS_CONTAINER_AUTHORIZATION_TOKEN`).
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("EnvSnapshot").field("set", &self.names()).finish()
  }
}

/// Read access to files (token files, profile files, credential configs).
pub trait Fs: Send + Sync {
  fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFs;

impl Fs for OsFs {
  fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
  }
}

/// The wall clock, injectable.
pub trait Clock: Send + Sync {
  fn now(&self) -> SystemTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
  fn now(&self) -> SystemTime {
    SystemTime::now()
  }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
  pub fn at_epoch_secs(secs: u64) -> Self {
    ManualClock(Arc::new(AtomicU64::new(secs * 1000)))
  }
  pub fn advance(&self, by: Duration) {
    self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
  }
}

impl Clock for ManualClock {
  fn now(&self) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::SeqCst))
  }
}

/// Milliseconds since the Unix epoch (saturating at 0 before it).
pub fn epoch_millis(t: SystemTime) -> f64 {
  t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as f64).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn blank_values_are_unset_and_debug_shows_names_only() {
    let env = EnvSnapshot::from_pairs([("AWS_REGION", "  "), ("AWS_SECRET_ACCESS_KEY", "MARKER-S3CRET")]);
    assert_eq!(env.get("AWS_REGION"), None);
    let dbg = format!("{env:?}");
    assert!(dbg.contains("AWS_SECRET_ACCESS_KEY"));
    assert!(!dbg.contains("MARKER-S3CRET"));
  }

  #[test]
  fn manual_clock_moves_only_when_told() {
    let c = ManualClock::at_epoch_secs(1000);
    assert_eq!(epoch_millis(c.now()), 1_000_000.0);
    c.advance(Duration::from_secs(2));
    assert_eq!(epoch_millis(c.now()), 1_002_000.0);
  }
}
