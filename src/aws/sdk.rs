//! Glue to aws-config's own providers (the profile and web-identity links of the chain).
//!
//! Known limit: aws-config's `ProviderConfig` cannot be given our environment snapshot (its
//! `with_env` is crate-private), so these two links read the variables aws-config itself consults
//! (e.g. `AWS_ENDPOINT_URL_STS`, `AWS_PROFILE` for nested profiles) from the live process
//! environment at fetch time. The inputs that select the link (token file, role ARN, session name,
//! profile files and name) do come from the snapshot.
//!
//! aws-config is built without default features: no aws-lc C build, no SSO, no
//! `credential_process`. Its HTTP client (used for AWS STS by the web-identity and assume-role
//! providers) is aws-smithy-http-client on rustls with *ring*. aws-config's providers do not
//! cache (its identity cache lives in service clients), so our [`super::cache`] does.

use aws_config::provider_config::ProviderConfig;
use aws_config::Region;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;
use crate::redact::Secret;

use super::credentials::AwsCredentials;

/// A `ProviderConfig` with our TLS client and the given region (AWS STS needs one).
pub fn provider_config(region: &str) -> ProviderConfig {
  ProviderConfig::without_region()
    .with_http_client(aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https())
    .with_region(Some(Region::new(region.to_string())))
}

/// Run an aws-config provider within our deadline. `Ok(None)`: the provider was not configured.
pub async fn provide(
  provider: &(impl ProvideCredentials + ?Sized),
  link: &'static str,
  deadline: Deadline,
) -> Result<Option<AwsCredentials>> {
  let bound = deadline.remaining();
  let outcome = tokio::time::timeout(bound, provider.provide_credentials()).await;
  let creds = match outcome {
    Err(_) => return Err(Error::new(ErrorKind::Timeout, format!("{link} credentials did not load within {} ms", bound.as_millis()))),
    Ok(Err(CredentialsError::CredentialsNotLoaded(_))) => return Ok(None),
    Ok(Err(e)) => return Err(map_error(&e, link)),
    Ok(Ok(c)) => c,
  };
  Ok(Some(AwsCredentials {
    access_key_id: creds.access_key_id().to_string(),
    secret_access_key: Secret::new(creds.secret_access_key()),
    session_token: creds.session_token().map(Secret::new),
    expiration: creds.expiry(),
    account_id: creds.account_id().map(|a| a.as_str().to_string()),
    source: link,
  }))
}

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

fn map_error(e: &CredentialsError, link: &str) -> Error {
  let text = crate::redact::scrub_body(&chain_text(e), &[]);
  let kind = match e {
    CredentialsError::ProviderTimedOut(_) => ErrorKind::Timeout,
    CredentialsError::InvalidConfiguration(_) => ErrorKind::ConfigInvalid,
    _ => ErrorKind::CredentialsEndpointError,
  };
  let err = Error::new(kind, format!("{link}: {text}"));
  // AWS STS error codes that no retry will fix (the token, the role or its trust policy is wrong).
  const PERMANENT: [&str; 5] = ["InvalidIdentityToken", "AccessDenied", "ExpiredToken", "ValidationError", "IDPRejectedClaim"];
  if PERMANENT.iter().any(|c| text.contains(c)) {
    err.not_retryable().with_hint("check the role's trust policy for the identity provider, and the token file")
  } else {
    err
  }
}
