//! Invariants shared by the fuzz targets.
#![allow(dead_code)]

use aws_wif_supplier::error::Error;

/// A secret the code "sent" to the endpoint: it must never come back in an error.
pub const SENT_SECRET: &str = "FUZZ-SENT-SECRET-7f3a9c";
/// A marker seeds put inside secret response fields (tokens, keys): a 2xx body is never quoted.
pub const BODY_SECRET: &str = "FUZZ-BODY-SECRET";

/// Display and Debug of `e`, for the checks below.
pub fn shown(e: &Error) -> String {
  format!("{e}\n{e:?}\n{}\n{:?}\n{:?}", e.message(), e.remote_error(), e.remote_description())
}

/// `needle` is nowhere in the error's Display or Debug.
pub fn assert_absent(e: &Error, needle: &str, what: &str) {
  if needle.is_empty() {
    return;
  }
  let text = shown(e);
  assert!(!text.contains(needle), "{what} leaked into an error: {text}");
}

/// The message has a documented code and no control characters (no log or header injection).
pub fn assert_well_formed(e: &Error) {
  assert!(!e.code().is_empty());
  assert!(!e.message().is_empty(), "empty message");
  let display = e.to_string();
  assert!(!display.chars().any(char::is_control), "control character in an error message: {display:?}");
}
