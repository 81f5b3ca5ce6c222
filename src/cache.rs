//! A refreshing, single-flight cache for one expiring value (AWS credentials, a region, a Google
//! access token).
//!
//! Policy (AWS SDKs' 5-minute refresh window, aws-c-auth PR #247; smithy `expiring_cache.rs`):
//! * A value is **fresh** until `refresh_at = expiration − margin − U[0, jitter)` (default margin
//!   5 min, jitter 0). The jitter spreads a fleet's refreshes over time, so processes that started
//!   together do not all refresh in the same minute (Google STS quotas are per project per
//!   minute). A value whose remaining life is shorter than margin + jitter is refreshed halfway
//!   through it. A value
//!   without expiration is re-checked after `no_expiry_ttl`.
//! * **One in-flight load** is shared by every concurrent caller, across threads and worker
//!   threads: the load runs as its own task and its result is broadcast to all waiters.
//! * **A failure is never cached**: the next call starts a new load.
//! * **Static stability**: if a refresh fails while the current value has not yet expired, the
//!   current value is served and the next attempt waits a jittered, growing backoff
//!   ([`RETRY_BASE`] doubling to [`RETRY_MAX`], never past the expiration).
//! * Background refresh (a caller served at once inside the margin while one load runs behind)
//!   is not the cache's: the token store decides it per call ([`crate::google::token_store`]).
//! * **Forced refreshes are rate-bound**: a consumer that saw the value rejected (an API's 401) may
//!   drop it at most once per [`FORCED_REFRESH_INTERVAL`] per cache ([`Cache::allow_forced_refresh`]);
//!   the caches are process-wide, so one caller in a loop of 401s cannot make every worker refetch.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::env::Clock;
use crate::error::{Error, ErrorKind, Result};

pub const DEFAULT_MARGIN: Duration = Duration::from_secs(300);
pub const RETRY_BASE: Duration = Duration::from_secs(5);
pub const RETRY_MAX: Duration = Duration::from_secs(60);
/// At most one forced refresh (a value dropped because a consumer saw it rejected) per this long.
pub const FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// How the cache refreshes.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
  pub margin: Duration,
  /// Extra random lead, uniform in `[0, jitter)`, drawn per value.
  pub jitter: Duration,
  pub no_expiry_ttl: Duration,
}

impl Default for Policy {
  fn default() -> Self {
    Policy { margin: DEFAULT_MARGIN, jitter: Duration::ZERO, no_expiry_ttl: Duration::from_secs(900) }
  }
}

/// A cached value with its timing.
#[derive(Debug, Clone)]
pub struct Entry<T> {
  pub value: T,
  pub expires_at: Option<SystemTime>,
  /// Callers may reuse `value` without asking the cache again until this instant.
  pub refresh_at: SystemTime,
}

type Shared<T> = Option<Result<Entry<T>>>;
type LoadFuture<T> = std::pin::Pin<Box<dyn Future<Output = Result<(T, Option<SystemTime>)>> + Send>>;
type Loader<T> = Box<dyn FnOnce() -> LoadFuture<T> + Send>;

struct State<T> {
  current: Option<Entry<T>>,
  /// After a failed refresh with a still-valid value: no new attempt before this.
  retry_at: Option<SystemTime>,
  failures: u32,
  inflight: Option<watch::Receiver<Shared<T>>>,
  /// When a consumer last forced a refresh ([`Cache::allow_forced_refresh`]).
  forced_at: Option<SystemTime>,
}

/// Clears the in-flight slot when the load task goes away, settled or not (a settled load has
/// already cleared it; then this does nothing).
struct InflightGuard<T: Clone + Send + Sync + 'static> {
  cache: Arc<Cache<T>>,
  rx: watch::Receiver<Shared<T>>,
}

impl<T: Clone + Send + Sync + 'static> Drop for InflightGuard<T> {
  fn drop(&mut self) {
    self.cache.clear_inflight(&self.rx);
  }
}

pub struct Cache<T> {
  policy: Policy,
  clock: Arc<dyn Clock>,
  state: Mutex<State<T>>,
}

impl<T> std::fmt::Debug for Cache<T> {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Cache").field("policy", &self.policy).finish_non_exhaustive()
  }
}

fn retry_delay(failures: u32) -> Duration {
  let exp = RETRY_BASE.saturating_mul(1u32 << failures.min(8)).min(RETRY_MAX);
  exp.mul_f64(0.5 + crate::http::jitter_fraction() * 0.5)
}

impl<T: Clone + Send + Sync + 'static> Cache<T> {
  pub fn new(policy: Policy, clock: Arc<dyn Clock>) -> Arc<Self> {
    Arc::new(Cache {
      policy,
      clock,
      state: Mutex::new(State { current: None, retry_at: None, failures: 0, inflight: None, forced_at: None }),
    })
  }

  fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
    // A panic while holding this lock cannot leave the state inconsistent (plain field writes), so
    // a poisoned lock is recovered rather than propagated.
    self.state.lock().unwrap_or_else(|p| p.into_inner())
  }

  fn refresh_at(&self, now: SystemTime, expires_at: Option<SystemTime>) -> SystemTime {
    match expires_at {
      None => now + self.policy.no_expiry_ttl,
      Some(exp) => {
        let life = exp.duration_since(now).unwrap_or_default();
        let lead = self.policy.margin + self.policy.jitter.mul_f64(crate::http::jitter_fraction());
        if life > self.policy.margin + self.policy.jitter {
          exp - lead
        } else {
          now + life / 2
        }
      }
    }
  }

  /// The value if it may be used now without any I/O (the synchronous fast path).
  pub fn peek(&self) -> Option<Entry<T>> {
    let now = self.clock.now();
    let st = self.lock();
    Self::usable(&st, now)
  }

  fn usable(st: &State<T>, now: SystemTime) -> Option<Entry<T>> {
    let cur = st.current.as_ref()?;
    if now < cur.refresh_at {
      return Some(cur.clone());
    }
    let valid = cur.expires_at.is_none_or(|e| now < e);
    if !valid {
      return None;
    }
    match st.retry_at {
      Some(retry) if now < retry => Some(Entry { refresh_at: retry, ..cur.clone() }),
      _ => None,
    }
  }

  /// Whether a consumer that saw the value rejected may force a refresh now: at most once per
  /// [`FORCED_REFRESH_INTERVAL`] (a `true` is recorded as that refresh). The caller then drops the
  /// value with [`Cache::invalidate`]; on `false` it keeps it, and its caller gets the rejection.
  pub fn allow_forced_refresh(&self) -> bool {
    let now = self.clock.now();
    let mut st = self.lock();
    let allowed = st.forced_at.is_none_or(|at| now.duration_since(at).map_or(true, |d| d >= FORCED_REFRESH_INTERVAL));
    if allowed {
      st.forced_at = Some(now);
    }
    allowed
  }

  /// Drop the current value (e.g. after the consumer saw it rejected).
  pub fn invalidate(&self) {
    let mut st = self.lock();
    st.current = None;
    st.retry_at = None;
  }

  /// Get the value, loading it if needed. `load` returns the value and its expiration.
  ///
  /// A load that ends without settling (its task dropped: a runtime shut down under it) must
  /// never leave the cache stuck: the slot is cleared when its task goes away ([`InflightGuard`]),
  /// and a waiter that sees the load abandoned starts a fresh one with its own `load`.
  ///
  /// Generic over the loader only in this thin wrapper: the loader is boxed, so the loop and its
  /// two task spawns below are compiled once per value type, not once per call site (the `.node`
  /// size is bounded).
  pub async fn get<F, Fut>(self: &Arc<Self>, load: F) -> Result<Entry<T>>
  where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(T, Option<SystemTime>)>> + Send + 'static,
  {
    self.get_boxed(Box::new(move || Box::pin(load()) as LoadFuture<T>)).await
  }

  async fn get_boxed(self: &Arc<Self>, load: Loader<T>) -> Result<Entry<T>> {
    let mut load = Some(load);
    loop {
      let mut rx = {
        let now = self.clock.now();
        let mut st = self.lock();
        let usable = Self::usable(&st, now);
        match (usable, &st.inflight) {
          (Some(e), _) => return Ok(e),
          (None, Some(rx)) => rx.clone(),
          (None, None) => {
            let Some(load) = load.take() else {
              return Err(Error::new(ErrorKind::Internal, "credential load was abandoned twice"));
            };
            let (tx, rx) = watch::channel(None);
            st.inflight = Some(rx.clone());
            drop(st);
            let guard = InflightGuard { cache: Arc::clone(self), rx: rx.clone() };
            tokio::spawn(async move {
              let outcome = match tokio::spawn(load()).await {
                Ok(r) => r,
                Err(join) if join.is_panic() => {
                  Err(Error::new(ErrorKind::Internal, "a bug: the credential load panicked; please report it"))
                }
                Err(join) => Err(Error::new(ErrorKind::Internal, format!("credential load task failed: {join}"))),
              };
              let shared = guard.cache.settle(outcome);
              let _ = tx.send(Some(shared));
              drop(guard);
            });
            rx
          }
        }
      };
      let settled = rx.wait_for(Option::is_some).await.ok().and_then(|v| v.clone());
      match settled {
        Some(outcome) => return outcome,
        // The sender is gone without a value: that load's task was dropped. Clear its slot (if
        // still there) and go round: a fresh load with our own `load`.
        None => self.clear_inflight(&rx),
      }
    }
  }

  /// Clear the in-flight slot if it still holds `rx`'s channel.
  fn clear_inflight(&self, rx: &watch::Receiver<Shared<T>>) {
    let mut st = self.lock();
    if st.inflight.as_ref().is_some_and(|cur| cur.same_channel(rx)) {
      st.inflight = None;
    }
  }

  /// Record the outcome of a load and decide what the waiters get.
  fn settle(&self, outcome: Result<(T, Option<SystemTime>)>) -> Result<Entry<T>> {
    let now = self.clock.now();
    let mut st = self.lock();
    st.inflight = None;
    match outcome {
      Ok((value, expires_at)) => {
        let entry = Entry { value, expires_at, refresh_at: self.refresh_at(now, expires_at) };
        st.current = Some(entry.clone());
        st.retry_at = None;
        st.failures = 0;
        Ok(entry)
      }
      Err(e) => {
        let still_valid = st.current.as_ref().filter(|c| c.expires_at.is_none_or(|x| now < x)).cloned();
        match still_valid {
          Some(cur) => {
            let mut retry = now + retry_delay(st.failures);
            if let Some(exp) = cur.expires_at {
              retry = retry.min(exp);
            }
            st.failures = st.failures.saturating_add(1);
            st.retry_at = Some(retry);
            Ok(Entry { refresh_at: retry, ..cur })
          }
          None => {
            st.current = None;
            st.retry_at = None;
            Err(e)
          }
        }
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::ManualClock;
  use std::sync::atomic::{AtomicUsize, Ordering};

  fn setup(policy: Policy) -> (Arc<Cache<u32>>, ManualClock) {
    let clock = ManualClock::at_epoch_secs(1_000_000);
    (Cache::new(policy, Arc::new(clock.clone())), clock)
  }

  type BoxedLoad = std::pin::Pin<Box<dyn Future<Output = Result<(u32, Option<SystemTime>)>> + Send>>;

  fn loader(
    calls: &Arc<AtomicUsize>,
    value: Result<u32>,
    life: Option<Duration>,
    clock: &ManualClock,
  ) -> impl FnOnce() -> BoxedLoad + Send + 'static {
    let calls = calls.clone();
    let exp = life.map(|l| clock.now() + l);
    move || {
      Box::pin(async move {
        calls.fetch_add(1, Ordering::SeqCst);
        value.map(|v| (v, exp))
      })
    }
  }

  const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

  #[test]
  fn forced_refreshes_are_bounded_in_time() {
    let (cache, clock) = setup(Policy::default());
    assert!(cache.allow_forced_refresh());
    for _ in 0..10 {
      assert!(!cache.allow_forced_refresh(), "at most one per interval");
    }
    clock.advance(FORCED_REFRESH_INTERVAL - Duration::from_secs(1));
    assert!(!cache.allow_forced_refresh());
    clock.advance(Duration::from_secs(1));
    assert!(cache.allow_forced_refresh(), "allowed again after the interval");
  }

  #[tokio::test]
  async fn caches_until_margin_then_refreshes() {
    let (cache, clock) = setup(Policy::default());
    let calls = Arc::new(AtomicUsize::new(0));
    assert_eq!(cache.get(loader(&calls, Ok(1), HOUR, &clock)).await.unwrap().value, 1);
    assert_eq!(cache.get(loader(&calls, Ok(2), HOUR, &clock)).await.unwrap().value, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(3600 - 301));
    assert_eq!(cache.get(loader(&calls, Ok(3), HOUR, &clock)).await.unwrap().value, 1, "still outside the margin");
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.get(loader(&calls, Ok(4), HOUR, &clock)).await.unwrap().value, 4, "inside the margin");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
  }

  #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
  async fn concurrent_callers_share_one_load() {
    let (cache, clock) = setup(Policy::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for _ in 0..1000 {
      let (cache, calls, gate) = (cache.clone(), calls.clone(), gate.clone());
      let exp = clock.now() + Duration::from_secs(3600);
      tasks.push(tokio::spawn(async move {
        cache
          .get(move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            gate.notified().await;
            Ok((7u32, Some(exp)))
          })
          .await
      }));
    }
    // Let every task reach the cache, then release the single load.
    while cache.lock().inflight.is_none() {
      tokio::task::yield_now().await;
    }
    for _ in 0..50 {
      tokio::task::yield_now().await;
    }
    gate.notify_one();
    for t in tasks {
      assert_eq!(t.await.unwrap().unwrap().value, 7);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
  }

  #[tokio::test]
  async fn failures_are_never_cached() {
    let (cache, clock) = setup(Policy::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let err = || Err(Error::new(ErrorKind::CredentialsEndpointError, "down"));
    assert!(cache.get(loader(&calls, err(), HOUR, &clock)).await.is_err());
    assert!(cache.get(loader(&calls, err(), HOUR, &clock)).await.is_err());
    assert_eq!(cache.get(loader(&calls, Ok(5), HOUR, &clock)).await.unwrap().value, 5);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
  }

  #[tokio::test]
  async fn failed_refresh_serves_valid_value_then_recovers() {
    let (cache, clock) = setup(Policy::default());
    let calls = Arc::new(AtomicUsize::new(0));
    cache.get(loader(&calls, Ok(1), HOUR, &clock)).await.unwrap();
    clock.advance(Duration::from_secs(3600 - 200)); // inside the margin, still valid
    let down = || Err(Error::new(ErrorKind::CredentialsEndpointError, "down"));
    let e = cache.get(loader(&calls, down(), HOUR, &clock)).await.unwrap();
    assert_eq!(e.value, 1, "stale but valid value is served");
    assert!(e.refresh_at > clock.now() && e.refresh_at <= clock.now() + RETRY_BASE);
    // Within the backoff no new attempt is made.
    assert_eq!(cache.get(loader(&calls, down(), HOUR, &clock)).await.unwrap().value, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    clock.advance(RETRY_BASE);
    assert_eq!(cache.get(loader(&calls, Ok(9), HOUR, &clock)).await.unwrap().value, 9, "recovers by itself");
    // Expired and still down: a clear error.
    clock.advance(Duration::from_secs(3600));
    let e = cache.get(loader(&calls, down(), HOUR, &clock)).await.unwrap_err();
    assert_eq!(e.code(), "CREDENTIALS_ENDPOINT_ERROR");
  }

  #[tokio::test]
  async fn jitter_spreads_refreshes_within_its_window() {
    let jitter = Duration::from_secs(600);
    let (cache, clock) = setup(Policy { jitter, ..Policy::default() });
    let calls = Arc::new(AtomicUsize::new(0));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
      cache.invalidate();
      let e = cache.get(loader(&calls, Ok(1), HOUR, &clock)).await.unwrap();
      let exp = e.expires_at.unwrap();
      assert!(e.refresh_at <= exp - DEFAULT_MARGIN && e.refresh_at > exp - DEFAULT_MARGIN - jitter, "{e:?}");
      seen.insert(e.refresh_at);
    }
    assert!(seen.len() > 1, "refresh instants must vary");
  }

  #[tokio::test]
  async fn short_lived_values_refresh_halfway() {
    let (cache, clock) = setup(Policy::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let e = cache.get(loader(&calls, Ok(1), Some(Duration::from_secs(120)), &clock)).await.unwrap();
    assert_eq!(e.refresh_at, clock.now() + Duration::from_secs(60));
    let e = cache.get(loader(&calls, Ok(1), None, &clock)).await.unwrap();
    assert_eq!(e.value, 1);
  }

  /// Defect 1 of issue 12: a load whose runtime shut down (napi-rs's, when the last environment
  /// went away) must not leave the cache answering "abandoned" for ever.
  #[test]
  fn a_load_dropped_with_its_runtime_does_not_outlive_it() {
    let (cache, clock) = setup(Policy::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let doomed = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let c = cache.clone();
    doomed.spawn(async move { c.get(|| std::future::pending::<Result<(u32, Option<SystemTime>)>>()).await });
    while cache.lock().inflight.is_none() {
      std::thread::yield_now();
    }
    // A waiter on another runtime joins the doomed load before it is dropped.
    let other = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (c, l) = (cache.clone(), loader(&calls, Ok(5), HOUR, &clock));
    let waiter = other.spawn(async move { c.get(l).await });
    drop(doomed);
    assert_eq!(other.block_on(waiter).unwrap().unwrap().value, 5, "the waiter started a fresh load");
    assert!(cache.lock().inflight.is_none());
    // And a caller after that is served from the cache.
    assert_eq!(other.block_on(cache.get(loader(&calls, Ok(6), HOUR, &clock))).unwrap().value, 5);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
  }

  #[test]
  fn the_slot_is_cleared_when_the_load_task_is_dropped() {
    let (cache, clock) = setup(Policy::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let doomed = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let c = cache.clone();
    doomed.spawn(async move { c.get(|| std::future::pending::<Result<(u32, Option<SystemTime>)>>()).await });
    // Drive the doomed runtime until the load has started.
    doomed.block_on(async {
      while cache.lock().inflight.is_none() {
        tokio::task::yield_now().await;
      }
    });
    drop(doomed);
    assert!(cache.lock().inflight.is_none(), "the guard cleared the slot");
    let fresh = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(fresh.block_on(cache.get(loader(&calls, Ok(8), HOUR, &clock))).unwrap().value, 8);
  }

  #[tokio::test]
  async fn a_panicking_load_is_an_internal_error_and_the_next_call_loads_again() {
    let (cache, clock) = setup(Policy::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let e = cache.get(|| async { panic!("dependency bug") as Result<(u32, Option<SystemTime>)> }).await.unwrap_err();
    assert_eq!(e.code(), "INTERNAL");
    assert_eq!(cache.get(loader(&calls, Ok(3), HOUR, &clock)).await.unwrap().value, 3);
  }
}
