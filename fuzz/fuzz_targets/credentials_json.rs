//! `aws::credentials::parse_credentials_json`: the container endpoint / IMDS credentials document
//! (an untrusted body, and a secret in itself).
//!
//! Invariants: never panics; the secret we sent (the authorization token) is never echoed; an
//! INVALID_CREDENTIALS_RESPONSE names fields, never values (no byte of a secret field shows); a
//! success keeps the secret and token out of Debug; no control characters in messages.
#![no_main]
mod common;

use aws_wif_supplier::aws::credentials::parse_credentials_json;
use aws_wif_supplier::error::ErrorKind;
use aws_wif_supplier::redact::Secret;
use common::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
  let sent = Secret::new(SENT_SECRET);
  match parse_credentials_json(data, "container endpoint (http://127.0.0.1/v2/credentials/…)", "container", &[&sent]) {
    Ok(creds) => {
      let debug = format!("{creds:?}");
      assert!(!debug.contains(BODY_SECRET), "a secret in Debug: {debug}");
      assert!(!debug.contains(SENT_SECRET));
      // Debug does not depend on the secret key or the session token at all.
      let mut other = creds.clone();
      other.secret_access_key = Secret::new("x");
      other.session_token = other.session_token.as_ref().map(|_| Secret::new("y"));
      assert_eq!(debug, format!("{other:?}"), "Debug depends on a secret");
    }
    Err(e) => {
      assert_absent(&e, SENT_SECRET, "the sent authorization token");
      if e.kind() == ErrorKind::InvalidCredentialsResponse {
        // Field names only: nothing from the body, so no marker at all.
        assert_absent(&e, BODY_SECRET, "a body value");
      }
      assert_well_formed(&e);
    }
  }
});
