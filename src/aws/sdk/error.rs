//! aws-config's errors as ours: the kind, whether a retry can help, and a hint, decided from the
//! error's variant and the text of its `source()` chain (aws-config exposes no codes for these).

use aws_credential_types::provider::error::CredentialsError;

use crate::error::{Error, ErrorKind};

/// The full `source()` chain of an aws-config error, on one line. aws-config errors carry no
/// secrets (they name files, roles and AWS error codes).
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
  let mut parts: Vec<String> = Vec::new();
  let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
  while let Some(err) = cur {
    let s = err.to_string();
    if !parts.iter().any(|p| p.contains(&s)) {
      parts.push(s);
    }
    cur = err.source();
  }
  parts.join(": ")
}

pub(super) fn map_error(e: &CredentialsError, link: &str) -> Error {
  let text = crate::redact::scrub_body(&crate::redact::urls_in(&chain_text(e)), &[]);
  let kind = match e {
    CredentialsError::ProviderTimedOut(_) => ErrorKind::Timeout,
    CredentialsError::InvalidConfiguration(_) => ErrorKind::ConfigInvalid,
    _ => ErrorKind::CredentialsEndpointError,
  };
  // aws-config's SSO provider: a cached token past its expiry that cannot be refreshed.
  if text.contains("SSO token has expired") {
    return Error::new(ErrorKind::CredentialsExpired, format!("{link}: {text}"))
      .not_retryable()
      .with_hint("sign in again with `aws sso login` for this profile");
  }
  // aws-config's SSO provider: no cached token at all (`aws sso login` was never run for this
  // session, or the cache was cleared). Not worth a retry: the user must sign in.
  if text.contains("/sso/cache/") && (text.contains("failed to read") || text.contains("No such file")) {
    return Error::new(ErrorKind::CredentialsNotFound, format!("{link}: {text}"))
      .not_retryable()
      .with_hint("sign in with `aws sso login` for this profile (no cached SSO token was found)");
  }
  // aws-config's login provider (`aws login` sessions): the session is over, or its refresh was
  // refused by AWS Sign-In (AccessDeniedException: expired, password changed, no permission).
  if text.contains("cached Login token is expired")
    || (text.contains("failed to refresh cached Login token") && text.contains("AccessDenied"))
  {
    return Error::new(ErrorKind::CredentialsExpired, format!("{link}: {text}"))
      .not_retryable()
      .with_hint("sign in again with `aws login` for this profile");
  }
  let err = Error::new(kind, format!("{link}: {text}"));
  // AWS IAM Identity Center (SSO portal) refusals: the sign-in or the role assignment is wrong.
  const SSO_PERMANENT: [&str; 2] = ["UnauthorizedException", "ForbiddenException"];
  if SSO_PERMANENT.iter().any(|c| text.contains(c)) {
    return err.not_retryable().with_hint("sign in again with `aws sso login`, and check sso_account_id and sso_role_name");
  }
  // AWS STS error codes that no retry will fix (the token, the role or its trust policy is wrong).
  const PERMANENT: [&str; 5] = ["InvalidIdentityToken", "AccessDenied", "ExpiredToken", "ValidationError", "IDPRejectedClaim"];
  if PERMANENT.iter().any(|c| text.contains(c)) {
    err.not_retryable().with_hint("check the role's trust policy for the identity provider, and the token file")
  } else {
    err
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn sso_and_login_refusals_are_permanent_and_name_the_label() {
    let cases = [
      (
        "an error occurred while loading an access token: the SSO token has expired and cannot be refreshed",
        "CREDENTIALS_EXPIRED",
        "aws sso login",
      ),
      ("service error: unhandled error (ForbiddenException): No access", "CREDENTIALS_ENDPOINT_ERROR", "aws sso login"),
      (
        "an error occurred while loading an access token: failed to read `/home/.aws/sso/cache/dace00.json`: No such file or directory (os error 2)",
        "CREDENTIALS_NOT_FOUND",
        "aws sso login",
      ),
      (
        "failed to refresh cached Login token: Your session has expired. Please reauthenticate.: AccessDeniedException: expired",
        "CREDENTIALS_EXPIRED",
        "aws login",
      ),
      ("cached Login token is expired", "CREDENTIALS_EXPIRED", "aws login"),
    ];
    for (text, code, hint) in cases {
      let e = map_error(&CredentialsError::provider_error(text), "profile sso-dev");
      assert_eq!(e.code(), code, "{e}");
      assert!(!e.is_retryable(), "{e}");
      assert!(e.message().starts_with("profile sso-dev: "), "{e}");
      assert!(e.hint().is_some_and(|h| h.contains(hint)), "{e}");
    }
    let e = map_error(&CredentialsError::provider_error("dispatch failure: connection refused"), "profile p");
    assert_eq!(e.code(), "CREDENTIALS_ENDPOINT_ERROR");
    assert!(e.is_retryable());
  }
}
