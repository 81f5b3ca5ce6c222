//! `google::config_file::FetcherConfig::from_json`: the `external_account` credential configuration
//! (GOOGLE_APPLICATION_CREDENTIALS or `fromCredentialConfig`; a file we do not trust).
//!
//! Invariants: never panics; `client_secret` (the one secret a configuration may hold) never
//! shows: the Display/Debug of the outcome does not depend on its value; no control characters in messages; an accepted configuration is self-consistent
//! (https or loopback-http URLs, non-empty scopes without spaces, lifetime within 600..43200 s).
#![no_main]
mod common;

use std::time::Duration;

use aws_wif_supplier::google::config_file::FetcherConfig;
use common::*;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// `v` with every top-level client secret string replaced by `with`.
fn with_secret(v: &Value, with: &str) -> Value {
  let mut v = v.clone();
  if let Some(o) = v.as_object_mut() {
    for k in ["client_secret", "clientSecret"] {
      if let Some(x) = o.get_mut(k).filter(|x| x.is_string()) {
        *x = Value::String(with.to_string());
      }
    }
  }
  v
}

fn shown_result(r: &Result<FetcherConfig, aws_wif_supplier::error::Error>) -> String {
  match r {
    Ok(c) => format!("{c:?}"),
    Err(e) => shown(e),
  }
}

fuzz_target!(|data: &[u8]| {
  let origin = "credential configuration /fuzz/config.json";
  let result = FetcherConfig::from_json(data, origin);
  // The client secret never shows: with a different (non-empty) secret, the outcome is displayed
  // identically.
  if let Ok(v) = serde_json::from_slice::<Value>(data) {
    let a = serde_json::to_vec(&with_secret(&v, "FUZZ-CLIENT-SECRET-A")).unwrap();
    let b = serde_json::to_vec(&with_secret(&v, "fuzz-client-secret-b")).unwrap();
    let (ra, rb) = (FetcherConfig::from_json(&a, origin), FetcherConfig::from_json(&b, origin));
    let (sa, sb) = (shown_result(&ra), shown_result(&rb));
    assert_eq!(sa, sb, "the outcome depends on client_secret's value");
    assert!(!sa.contains("FUZZ-CLIENT-SECRET-A"), "client_secret shown: {sa}");
  }
  match result {
    Ok(config) => {
      assert!(!config.audience.is_empty());
      assert!(!config.scopes.is_empty() && config.scopes.iter().all(|s| !s.is_empty() && !s.contains(char::is_whitespace)));
      assert!(config.token_lifetime >= Duration::from_secs(600) && config.token_lifetime <= Duration::from_secs(43200));
      for url in std::iter::once(&config.token_url).chain(config.service_account_impersonation_url.as_ref()) {
        // (Kept as written: the URL parser trims leading and trailing spaces, so " https://…" is valid.)
        assert!(url.trim_start().to_ascii_lowercase().starts_with("http"), "{url}");
      }
      assert!(config.client_secret.is_none() || config.client_id.is_some());
    }
    Err(e) => {
      assert_eq!(e.code(), "CONFIG_INVALID");
      assert_well_formed(&e);
    }
  }
});
