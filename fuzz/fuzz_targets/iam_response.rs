//! `google::impersonation::parse_response`: what IAM Credentials generateAccessToken answers.
//! Input: first byte picks the status, the rest is the body.
//!
//! Invariants: as for `sts_response` (the STS access token we sent as Bearer is never echoed).
#![no_main]
mod common;

use std::time::UNIX_EPOCH;

use aws_wif_supplier::error::ErrorKind;
use aws_wif_supplier::google::endpoint::Endpoint;
use aws_wif_supplier::google::impersonation::parse_response;
use aws_wif_supplier::http::Response;
use aws_wif_supplier::redact::{Secret, MAX_BODY_IN_MESSAGE};
use common::*;
use libfuzzer_sys::fuzz_target;

pub const STATUSES: [u16; 16] = [200, 201, 204, 299, 300, 302, 400, 401, 403, 404, 408, 429, 500, 502, 503, 504];
const URL: &str = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken";

fuzz_target!(|data: &[u8]| {
  let Some((&first, body)) = data.split_first() else { return };
  let status = STATUSES[(first & 0x0f) as usize];
  let sent = Secret::new(SENT_SECRET);
  let secrets = [&sent];
  let ep = Endpoint { name: "IAM Credentials generateAccessToken", url: URL, kind: ErrorKind::ImpersonationFailed, secrets: &secrets };
  let content_type = if first & 0x10 != 0 { None } else { Some("application/json".to_string()) };
  let resp = Response { status, content_type, body: body.to_vec() };
  match parse_response(&ep, &resp) {
    Ok(token) => {
      assert!((200..300).contains(&status));
      assert!(token.expire_time >= UNIX_EPOCH);
      let debug = format!("{token:?}");
      let mut other = token.clone();
      other.access_token = Secret::new("x");
      assert_eq!(debug, format!("{other:?}"), "Debug depends on the access token");
    }
    Err(e) => {
      assert_absent(&e, SENT_SECRET, "the STS token sent as Bearer");
      assert_well_formed(&e);
      if (200..300).contains(&status) {
        assert_eq!(e.kind(), ErrorKind::InvalidTokenResponse, "{e}");
        assert_absent(&e, BODY_SECRET, "a 2xx body value");
      } else {
        assert_eq!(e.kind(), ErrorKind::ImpersonationFailed, "{e}");
        assert_eq!(e.status(), Some(status));
        assert!(e.message().chars().count() < 250 + 2 * (MAX_BODY_IN_MESSAGE + 1) + 8, "message too long: {} chars", e.message().len());
      }
    }
  }
});
