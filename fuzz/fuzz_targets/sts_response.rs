//! `google::sts::parse_response`: what Google STS (or anything at `token_url`) answers.
//! Input: first byte picks the status, the rest is the body.
//!
//! Invariants: never panics; the subject token we sent is never echoed; a 2xx body is never quoted
//! (its errors name fields); non-2xx text is scrubbed and capped; no control characters; a success
//! keeps the access token out of Debug.
#![no_main]
mod common;

use aws_wif_supplier::error::ErrorKind;
use aws_wif_supplier::google::endpoint::Endpoint;
use aws_wif_supplier::google::sts::parse_response;
use aws_wif_supplier::http::Response;
use aws_wif_supplier::redact::{Secret, MAX_BODY_IN_MESSAGE};
use common::*;
use libfuzzer_sys::fuzz_target;

pub const STATUSES: [u16; 16] = [200, 201, 204, 299, 300, 302, 400, 401, 403, 404, 408, 429, 500, 502, 503, 504];

fuzz_target!(|data: &[u8]| {
  let Some((&first, body)) = data.split_first() else { return };
  let status = STATUSES[(first & 0x0f) as usize];
  let sent = Secret::new(SENT_SECRET);
  let secrets = [&sent];
  let ep = Endpoint { name: "Google STS", url: "https://sts.googleapis.com/v1/token", kind: ErrorKind::StsExchangeFailed, secrets: &secrets };
  let content_type = if first & 0x10 != 0 { Some("text/html".to_string()) } else { Some("application/json".to_string()) };
  let resp = Response { status, content_type, body: body.to_vec() };
  match parse_response(&ep, &resp) {
    Ok(token) => {
      assert!((200..300).contains(&status));
      let debug = format!("{token:?}");
      assert!(!debug.contains(SENT_SECRET));
      let mut other = token.clone();
      other.access_token = Secret::new("x");
      assert_eq!(debug, format!("{other:?}"), "Debug depends on the access token");
      if let Some(d) = token.expires_in {
        assert!(d.as_secs_f64() > 0.0 && d.as_secs_f64() < 1e9);
      }
    }
    Err(e) => {
      assert_absent(&e, SENT_SECRET, "the subject token");
      assert_well_formed(&e);
      if (200..300).contains(&status) {
        assert_eq!(e.kind(), ErrorKind::InvalidTokenResponse, "{e}");
        assert_absent(&e, BODY_SECRET, "a 2xx body value");
      } else {
        assert_eq!(e.kind(), ErrorKind::StsExchangeFailed, "{e}");
        assert_eq!(e.status(), Some(status));
        // Quoted text is capped: message = prefix + at most 2 scrubbed fields of the cap each.
        assert!(e.message().chars().count() < 200 + 2 * (MAX_BODY_IN_MESSAGE + 1) + 8, "message too long: {} chars", e.message().len());
      }
    }
  }
});
