//! The one error type of the core.
//!
//! Every failure in the crate is an [`Error`] with a stable [`ErrorKind`]. The kind decides the
//! public `code` string (what JavaScript sees as `err.code`) and whether retrying can help.
//! Retryability is decided here and nowhere else ([`is_transient_status`], [`ErrorKind::is_retryable`]).
//!
//! Messages say what was tried and what to fix. They never contain a secret: constructors take
//! only values that are safe to show (URLs without credentials, variable *names*, status codes,
//! and response bodies passed through [`crate::redact::scrub_body`]).

use std::fmt;

/// The stable, finite set of failure kinds. The `code` strings are part of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
  /// No region from options, `AWS_REGION`, `AWS_DEFAULT_REGION`, ECS task metadata or IMDS.
  RegionNotFound,
  /// No credential source in the chain was configured or had credentials.
  CredentialsNotFound,
  /// A credential endpoint (container, IMDS, AWS STS) answered with an error or could not be reached.
  CredentialsEndpointError,
  /// A credential endpoint answered 2xx with a body we cannot use.
  InvalidCredentialsResponse,
  /// The credentials obtained (or still cached) are past their expiration.
  CredentialsExpired,
  /// A lookup did not finish within its time bound.
  Timeout,
  /// The configuration (options, environment, token file, config file) is invalid.
  ConfigInvalid,
  /// Google STS refused the token exchange.
  StsExchangeFailed,
  /// IAM Credentials `generateAccessToken` failed.
  ImpersonationFailed,
  /// Google answered 2xx with a body we cannot use.
  InvalidTokenResponse,
  /// A bug: a panic or an impossible state. Please report it.
  Internal,
}

impl ErrorKind {
  /// The stable code string, e.g. `CREDENTIALS_NOT_FOUND`.
  pub const fn code(self) -> &'static str {
    match self {
      ErrorKind::RegionNotFound => "REGION_NOT_FOUND",
      ErrorKind::CredentialsNotFound => "CREDENTIALS_NOT_FOUND",
      ErrorKind::CredentialsEndpointError => "CREDENTIALS_ENDPOINT_ERROR",
      ErrorKind::InvalidCredentialsResponse => "INVALID_CREDENTIALS_RESPONSE",
      ErrorKind::CredentialsExpired => "CREDENTIALS_EXPIRED",
      ErrorKind::Timeout => "TIMEOUT",
      ErrorKind::ConfigInvalid => "CONFIG_INVALID",
      ErrorKind::StsExchangeFailed => "STS_EXCHANGE_FAILED",
      ErrorKind::ImpersonationFailed => "IMPERSONATION_FAILED",
      ErrorKind::InvalidTokenResponse => "INVALID_TOKEN_RESPONSE",
      ErrorKind::Internal => "INTERNAL",
    }
  }

  /// Whether a later attempt may succeed without any change of configuration.
  pub const fn is_retryable(self) -> bool {
    matches!(self, ErrorKind::CredentialsEndpointError | ErrorKind::Timeout | ErrorKind::InvalidCredentialsResponse)
  }

  /// All kinds, for documentation tests.
  pub const ALL: [ErrorKind; 11] = [
    ErrorKind::RegionNotFound,
    ErrorKind::CredentialsNotFound,
    ErrorKind::CredentialsEndpointError,
    ErrorKind::InvalidCredentialsResponse,
    ErrorKind::CredentialsExpired,
    ErrorKind::Timeout,
    ErrorKind::ConfigInvalid,
    ErrorKind::StsExchangeFailed,
    ErrorKind::ImpersonationFailed,
    ErrorKind::InvalidTokenResponse,
    ErrorKind::Internal,
  ];
}

/// HTTP statuses worth another attempt: 408, 429 and 5xx.
pub const fn is_transient_status(status: u16) -> bool {
  status == 408 || status == 429 || status >= 500
}

/// The crate's error. Cheap to clone, so one failed in-flight fetch can be handed to every waiter.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
  kind: ErrorKind,
  message: String,
  retryable: bool,
  status: Option<u16>,
  /// Google's OAuth `error` / RPC `status` (e.g. `invalid_grant`, `PERMISSION_DENIED`).
  remote_error: Option<String>,
  /// Google's `error_description` / RPC `message`, scrubbed.
  remote_description: Option<String>,
  hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
  pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
    Error {
      kind,
      message: message.into(),
      retryable: kind.is_retryable(),
      status: None,
      remote_error: None,
      remote_description: None,
      hint: None,
    }
  }

  /// An error for a non-success HTTP status; retryability follows [`is_transient_status`].
  pub fn http_status(kind: ErrorKind, status: u16, message: impl Into<String>) -> Self {
    let mut e = Error::new(kind, message);
    e.status = Some(status);
    e.retryable = is_transient_status(status);
    e
  }

  /// Mark as transient: trying again later may help (a connection failure, whatever the kind).
  pub fn transient(mut self) -> Self {
    self.retryable = true;
    self
  }

  /// Mark as permanent: retrying without a change of configuration cannot help.
  pub fn not_retryable(mut self) -> Self {
    self.retryable = false;
    self
  }

  pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
    self.hint = Some(hint.into());
    self
  }

  pub fn with_remote(mut self, error: Option<String>, description: Option<String>) -> Self {
    self.remote_error = error;
    self.remote_description = description;
    self
  }

  /// Prefix the message with context, e.g. the name of the chain link that failed.
  pub fn context(mut self, context: impl fmt::Display) -> Self {
    self.message = format!("{context}: {}", self.message);
    self
  }

  pub fn kind(&self) -> ErrorKind {
    self.kind
  }
  pub fn code(&self) -> &'static str {
    self.kind.code()
  }
  pub fn message(&self) -> &str {
    &self.message
  }
  pub fn is_retryable(&self) -> bool {
    self.retryable
  }
  pub fn status(&self) -> Option<u16> {
    self.status
  }
  pub fn remote_error(&self) -> Option<&str> {
    self.remote_error.as_deref()
  }
  pub fn remote_description(&self) -> Option<&str> {
    self.remote_description.as_deref()
  }
  pub fn hint(&self) -> Option<&str> {
    self.hint.as_deref()
  }
}

impl fmt::Display for Error {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(&self.message)?;
    if let Some(hint) = &self.hint {
      write!(f, " Hint: {hint}")?;
    }
    Ok(())
  }
}

impl fmt::Debug for Error {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("Error")
      .field("code", &self.code())
      .field("message", &self.message)
      .field("retryable", &self.retryable)
      .field("status", &self.status)
      .field("remote_error", &self.remote_error)
      .field("hint", &self.hint)
      .finish()
  }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn codes_are_stable_and_unique() {
    let codes: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
    assert_eq!(codes.len(), ErrorKind::ALL.len());
    assert_eq!(ErrorKind::Timeout.code(), "TIMEOUT");
    assert_eq!(ErrorKind::CredentialsNotFound.code(), "CREDENTIALS_NOT_FOUND");
  }

  #[test]
  fn retryability_is_decided_by_status() {
    for s in [408, 429, 500, 502, 503, 504] {
      assert!(Error::http_status(ErrorKind::CredentialsEndpointError, s, "x").is_retryable(), "{s}");
    }
    for s in [400, 401, 403, 404] {
      assert!(!Error::http_status(ErrorKind::CredentialsEndpointError, s, "x").is_retryable(), "{s}");
    }
    assert!(!Error::new(ErrorKind::ConfigInvalid, "x").is_retryable());
  }

  #[test]
  fn display_appends_hint() {
    let e = Error::new(ErrorKind::RegionNotFound, "no region").with_hint("set AWS_REGION");
    assert_eq!(e.to_string(), "no region Hint: set AWS_REGION");
  }
}
