//! Redaction: keep secrets out of `Debug`, `Display`, error messages and logs.
//!
//! * [`Secret`] wraps a secret string. Its `Debug` and `Display` print `** redacted **`; the value
//!   is reachable only through [`Secret::expose`], so every use of a secret is greppable.
//! * [`scrub_body`] prepares a remote response body for an error message: it keeps at most
//!   [`MAX_BODY_IN_MESSAGE`] characters, drops control characters and replaces every occurrence of a
//!   known secret with `** redacted **`. Credential-endpoint bodies (which *are* secrets) are never
//!   passed to it: their errors name the missing or malformed field instead.

use std::fmt;

/// What a redacted value prints as.
pub const REDACTED: &str = "** redacted **";

/// At most this many characters of a remote body go into an error message.
pub const MAX_BODY_IN_MESSAGE: usize = 300;

/// A secret string (secret access key, session token, auth token, OAuth access token).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
  pub fn new(value: impl Into<String>) -> Self {
    Secret(value.into())
  }
  /// The secret value. Call only where the value must leave the process (a header, the JS result).
  pub fn expose(&self) -> &str {
    &self.0
  }
  pub fn is_empty(&self) -> bool {
    self.0.is_empty()
  }
}

impl fmt::Debug for Secret {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(REDACTED)
  }
}

impl fmt::Display for Secret {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(REDACTED)
  }
}

impl From<String> for Secret {
  fn from(value: String) -> Self {
    Secret(value)
  }
}

/// Make a remote body safe and short enough for an error message.
pub fn scrub_body(body: &str, secrets: &[&Secret]) -> String {
  let mut text: String = body.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
  for secret in secrets {
    if secret.expose().len() >= 4 {
      text = text.replace(secret.expose(), REDACTED);
    }
  }
  let text = text.trim();
  if text.chars().count() > MAX_BODY_IN_MESSAGE {
    let cut: String = text.chars().take(MAX_BODY_IN_MESSAGE).collect();
    format!("{cut}…")
  } else {
    text.to_string()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn secret_never_prints() {
    let s = Secret::new("MARKER-SECRET-123");
    assert_eq!(format!("{s:?}"), REDACTED);
    assert_eq!(format!("{s}"), REDACTED);
    assert_eq!(s.expose(), "MARKER-SECRET-123");
  }

  #[test]
  fn scrub_removes_secrets_controls_and_caps_length() {
    let s = Secret::new("MARKER-SECRET-123");
    let out = scrub_body("bad\r\ntoken MARKER-SECRET-123 here", &[&s]);
    assert_eq!(out, format!("bad  token {REDACTED} here"));
    let long = "x".repeat(1000);
    assert_eq!(scrub_body(&long, &[]).chars().count(), MAX_BODY_IN_MESSAGE + 1);
  }
}
