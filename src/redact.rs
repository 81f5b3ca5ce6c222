//! Redaction: keep secrets out of `Debug`, `Display`, error messages and logs.
//!
//! * [`Secret`] wraps a secret string. Its `Debug` and `Display` print `** redacted **`; the value
//!   is reachable only through [`Secret::expose`], so every use of a secret is greppable.
//! * [`scrub_body`] prepares a remote response body for an error message: it keeps at most
//!   [`MAX_BODY_IN_MESSAGE`] characters, drops control characters and replaces every occurrence of a
//!   known secret with `** redacted **`. Credential-endpoint bodies (which *are* secrets) are never
//!   passed to it: their errors name the missing or malformed field instead.
//! * [`url`] is the one way a URL reaches text a person sees (error messages, hints, logs,
//!   `doctor`, `describeAwsChain()`, `describeProxy()`): it keeps the scheme, host, port and path,
//!   shows a query as `?…` and a fragment as `#…` (their values are never shown: a FULL_URI, a
//!   token URL or a proxy URL may carry a key or a signature there), and drops user information
//!   (`user:password@`), saying ` (credentials hidden)`. A text that does not parse as a URL is not
//!   quoted at all.

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

/// A URL for text a person sees (see the module docs): `https://user:pw@host:8443/p?k=v#f` →
/// `https://host:8443/p?…#… (credentials hidden)`.
pub fn url(raw: &str) -> String {
  let Ok(parsed) = reqwest::Url::parse(raw.trim()) else {
    return "(an unparsable URL)".to_string();
  };
  let Some(host) = parsed.host_str() else {
    return format!("(a {} URL without a host)", parsed.scheme());
  };
  let mut out = format!("{}://{host}", parsed.scheme());
  if let Some(port) = parsed.port() {
    out.push_str(&format!(":{port}"));
  }
  // The parser turns `https://host` into `https://host/`; keep what was written.
  let before_query = raw.trim().split(['?', '#']).next().unwrap_or_default();
  if parsed.path() != "/" || before_query.ends_with('/') {
    out.push_str(parsed.path());
  }
  if parsed.query().is_some() {
    out.push_str("?…");
  }
  if parsed.fragment().is_some() {
    out.push_str("#…");
  }
  if !parsed.username().is_empty() || parsed.password().is_some() {
    out.push_str(" (credentials hidden)");
  }
  out
}

/// `text` with every `http://` or `https://` URL in it passed through [`url`] (for text a
/// dependency wrote, such as aws-config's errors, which may quote an endpoint with its query).
pub fn urls_in(text: &str) -> String {
  let mut out = String::with_capacity(text.len());
  let mut rest = text;
  loop {
    let next = ["https://", "http://"].iter().filter_map(|p| rest.find(p)).min();
    let Some(start) = next else {
      out.push_str(rest);
      return out;
    };
    out.push_str(&rest[..start]);
    let tail = &rest[start..];
    let end = tail.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']' | '`')).unwrap_or(tail.len());
    let found = &tail[..end];
    out.push_str(&url(found));
    rest = &tail[end..];
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn urls_in_text_lose_their_query_and_user_info() {
    let text = "dispatch failure (https://sts.example.com/?X-Amz-Signature=MARKER-SIG) and http://user:MARKER-PW@h:8/p, then";
    let out = urls_in(text);
    assert!(!out.contains("MARKER"), "{out}");
    assert_eq!(out, "dispatch failure (https://sts.example.com/?…) and http://h:8/p, (credentials hidden) then");
    assert_eq!(urls_in("no url here"), "no url here");
  }

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

  #[test]
  fn urls_keep_scheme_host_port_and_path_only() {
    for (raw, shown) in [
      ("https://sts.googleapis.com/v1/token", "https://sts.googleapis.com/v1/token"),
      ("https://sts.googleapis.com", "https://sts.googleapis.com"),
      ("https://sts.googleapis.com/", "https://sts.googleapis.com/"),
      ("http://127.0.0.1:9/x?sig=MARKER-QUERY", "http://127.0.0.1:9/x?…"),
      ("https://sts.us-east-1.amazonaws.com?Action=GetCallerIdentity", "https://sts.us-east-1.amazonaws.com?…"),
      ("https://svc:MARKER-PASSWORD@creds.example/v1", "https://creds.example/v1 (credentials hidden)"),
      ("http://MARKER-USER@[::1]:8080/p#MARKER-FRAGMENT", "http://[::1]:8080/p#… (credentials hidden)"),
      ("https://h.example:443/p?", "https://h.example/p?…"),
      ("http://proxy.corp:3128", "http://proxy.corp:3128"),
      ("http://MARKER-USER:MARKER-PW@[bad", "(an unparsable URL)"),
      ("not a url MARKER", "(an unparsable URL)"),
      ("mailto:MARKER@example.com", "(a mailto URL without a host)"),
    ] {
      assert_eq!(url(raw), shown, "{raw}");
      assert!(!url(raw).contains("MARKER"));
    }
  }
}
