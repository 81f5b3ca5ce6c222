//! The one "process-wide, bounded, shared by configuration" map: the supplier cores
//! ([`crate::supplier::SupplierCore::shared`], bound [`crate::supplier::MAX_IDLE_CONFIGURATIONS`]) and
//! the fetcher cores ([`crate::google::fetcher::FetcherCore::shared`], bound
//! [`crate::google::fetcher::MAX_SHARED_FETCHERS`]) each live in a [`Registry`].
//!
//! Spec:
//! * One value per key for the whole process: every instance and every worker thread (the addon
//!   is loaded once per process) with the same configuration gets the same `Arc`, and so one cache
//!   and one fetch per expiry.
//! * An entry stays after its last user lets go, so that re-creating an object of the same
//!   configuration (per request, per worker) does not fetch again.
//! * Bounded: when an insertion finds `cap` entries, the entries nobody but the registry holds
//!   (`Arc::strong_count == 1`) are dropped first. Entries in use are never dropped (two objects of
//!   one configuration would otherwise get two caches and two exchanges), so the map exceeds `cap`
//!   only while more than `cap` entries are in use.
//! * Keys hold no secret in clear: a secret that must tell configurations apart is keyed by
//!   [`secret_digest`] (HMAC-SHA256 under a random per-process key); a core a key depends on is
//!   keyed by identity ([`ByAddress`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::redact::Secret;

/// A process-wide map from configuration to shared value, bounded as the module doc says.
pub struct Registry<K, V> {
  cap: usize,
  map: Mutex<HashMap<K, Arc<V>>>,
}

impl<K: Hash + Eq, V> Registry<K, V> {
  pub fn new(cap: usize) -> Self {
    Registry { cap, map: Mutex::new(HashMap::new()) }
  }

  fn lock(&self) -> MutexGuard<'_, HashMap<K, Arc<V>>> {
    // The critical sections are plain map operations: a panic cannot leave them half done.
    self.map.lock().unwrap_or_else(|p| p.into_inner())
  }

  /// The value of `key`, made by `make` (under the registry's lock) when there is none.
  pub fn get_or_insert(&self, key: K, make: impl FnOnce() -> Arc<V>) -> Arc<V> {
    let mut map = self.lock();
    if let Some(v) = map.get(&key) {
      return v.clone();
    }
    if map.len() >= self.cap {
      map.retain(|_, v| Arc::strong_count(v) > 1);
    }
    let v = make();
    map.insert(key, v.clone());
    v
  }

  /// How many entries the registry holds (tests).
  pub fn len(&self) -> usize {
    self.lock().len()
  }

  pub fn is_empty(&self) -> bool {
    self.len() == 0
  }
}

/// An `Arc` compared and hashed by address. A key that holds it keeps the value alive, so the
/// address cannot be reused by another value while the key exists.
pub struct ByAddress<T>(pub Arc<T>);

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
impl<T> Hash for ByAddress<T> {
  fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
    std::ptr::hash(Arc::as_ptr(&self.0), state)
  }
}

/// HMAC-SHA256 of a secret under a random key drawn once per process: equal secrets give equal
/// digests within the process, and the digest reveals nothing usable about the secret.
pub fn secret_digest(secret: &Secret) -> String {
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

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_registry_evicts_only_unheld_entries_beyond_its_cap() {
    let reg: Registry<u32, String> = Registry::new(4);
    let held: Vec<_> = (0..3).map(|i| reg.get_or_insert(i, || Arc::new(format!("v{i}")))).collect();
    for i in 3..10 {
      drop(reg.get_or_insert(i, || Arc::new(format!("v{i}"))));
    }
    assert!(reg.len() <= 4, "{}", reg.len());
    for (i, v) in held.iter().enumerate() {
      assert!(Arc::ptr_eq(v, &reg.get_or_insert(i as u32, || unreachable!())), "held entries stay");
    }
    let more: Vec<_> = (10..20).map(|i| reg.get_or_insert(i, || Arc::new(format!("v{i}")))).collect();
    assert_eq!(reg.len(), 13, "beyond the cap only while entries are held");
    drop(more);
    drop(reg.get_or_insert(99, || Arc::new(String::new())));
    assert_eq!(reg.len(), 4, "the unheld ones go at the next insertion");
  }

  #[test]
  fn secret_digests_tell_secrets_apart_and_hide_them() {
    let a = secret_digest(&Secret::new("MARKER-CLIENT-1"));
    assert_eq!(a, secret_digest(&Secret::new("MARKER-CLIENT-1")));
    assert_ne!(a, secret_digest(&Secret::new("MARKER-CLIENT-2")));
    assert_eq!(a.len(), 64, "HMAC-SHA256, hex");
    assert!(!a.contains("MARKER"));
  }

  #[test]
  fn by_address_is_identity() {
    let a = Arc::new(1);
    assert!(ByAddress(a.clone()) == ByAddress(a.clone()));
    assert!(ByAddress(a) != ByAddress(Arc::new(1)));
  }
}
