//! `google::subject_token::build`: the SigV4-signed GetCallerIdentity request, with arbitrary
//! region, audience and credential strings (they come from the environment, a container endpoint
//! or a configuration). Input: five NUL-separated fields (region, audience, access key id, secret
//! key, session token) and 8 bytes of time.
//!
//! Invariants: never panics (errors are fine); the secret key never appears in the result or in
//! an error, and the session token never in an error, unless the same text is in a non-secret field.
#![no_main]
mod common;

use std::time::{Duration, UNIX_EPOCH};

use aws_wif_supplier::aws::credentials::AwsCredentials;
use aws_wif_supplier::google::subject_token::build;
use aws_wif_supplier::redact::Secret;
use common::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
  if data.len() < 8 {
    return;
  }
  let (time, rest) = data.split_at(8);
  // Any instant from 1970 to ~2106 (SystemTime arithmetic on Linux handles it).
  let now = UNIX_EPOCH + Duration::from_secs(u64::from_le_bytes(time.try_into().unwrap()) % (1 << 32));
  let text = String::from_utf8_lossy(rest);
  let mut f = text.split('\0');
  let (region, audience, key_id, secret, token) = (f.next().unwrap_or(""), f.next().unwrap_or(""), f.next().unwrap_or(""), f.next().unwrap_or(""), f.next());
  let creds = AwsCredentials {
    access_key_id: key_id.to_string(),
    secret_access_key: Secret::new(secret),
    session_token: token.map(Secret::new),
    expiration: None,
    account_id: None,
    source: "fuzz",
  };
  let url = aws_wif_supplier::google::subject_token::sts_url(region);
  let public = [region, audience, key_id, url.as_str()];
  // Long enough, not hex or digits only (the signature and the date are), and in no public text.
  const FIXED: &str = "POST AWS4-HMAC-SHA256 Credential= SignedHeaders= Signature= /sts/aws4_request url method headers key value \
    authorization x-amz-date x-amz-security-token x-goog-cloud-target-resource host https://sts..amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15";
  let unique = |s: &str| {
    // (No backslash or U+FFFD: Debug escapes and lossy decoding make those appear from other bytes.)
    s.len() >= 10 && !s.contains(['\\', '\u{fffd}']) && !s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'T' || b == b'Z') && !public.iter().any(|p| p.contains(s)) && !FIXED.contains(s)
  };
  match build(&creds, region, audience, now) {
    Ok(subject) => {
      assert_eq!(format!("{subject:?}"), "** redacted **");
      if unique(secret) && !token.is_some_and(|t| t.contains(secret)) {
        // The subject token is percent-encoded JSON: decode the simple case (ASCII alphanumerics survive).
        if secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
          assert!(!subject.expose().contains(secret), "the secret key is inside the subject token");
        }
      }
    }
    Err(e) => {
      // Regions are validated before they reach `build` (region::is_valid_region) and the audience
      // is refused with control characters (config_file), so only messages from such inputs must be clean.
      if !region.contains(char::is_control) && !audience.contains(char::is_control) {
        assert_well_formed(&e);
      }
      if unique(secret) {
        assert_absent(&e, secret, "the secret access key");
      }
      if let Some(t) = token.filter(|t| unique(t)) {
        assert_absent(&e, t, "the session token");
      }
    }
  }
});
