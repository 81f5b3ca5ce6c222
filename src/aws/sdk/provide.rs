//! Running an aws-config provider: within the caller's deadline, with its panics caught, its
//! errors mapped ([`super::error`]) and its credentials turned into ours.

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;

use crate::aws::credentials::AwsCredentials;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;
use crate::redact::Secret;

use super::error::map_error;

/// Run an aws-config provider within our deadline. `Ok(None)`: the provider was not configured.
pub async fn provide(
  provider: &(impl ProvideCredentials + ?Sized),
  link: &'static str,
  deadline: Deadline,
) -> Result<Option<AwsCredentials>> {
  provide_named(provider, link, link, deadline).await
}

/// [`provide`], with `label` (e.g. `profile sso-dev`) instead of the link's name in messages.
pub async fn provide_named(
  provider: &(impl ProvideCredentials + ?Sized),
  link: &'static str,
  label: &str,
  deadline: Deadline,
) -> Result<Option<AwsCredentials>> {
  let bound = deadline.remaining();
  // aws-config's SSO and login providers `expect` on the clock and on server fields: a panic there
  // is an INTERNAL error for this call that names the link (the runtime would also catch it, without
  // the name), and leaves nothing behind (providers are built per load).
  let creds = match tokio::time::timeout(bound, CatchUnwind(Box::pin(provider.provide_credentials()))).await {
    Err(_) => return Err(Error::new(ErrorKind::Timeout, format!("{label} credentials did not load within {} ms", bound.as_millis()))),
    Ok(Err(_panic)) => {
      return Err(Error::new(ErrorKind::Internal, format!("{label}: aws-config panicked while loading credentials; please report it")))
    }
    Ok(Ok(Err(CredentialsError::CredentialsNotLoaded(_)))) => return Ok(None),
    Ok(Ok(Err(e))) => return Err(map_error(&e, label)),
    Ok(Ok(Ok(c))) => c,
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

/// A future whose panic comes out as `Err` (the payload is dropped unread: it may quote a value).
struct CatchUnwind<'a, T>(std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>);

impl<T> std::future::Future for CatchUnwind<'_, T> {
  type Output = std::thread::Result<T>;
  fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
      Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
      Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
      Err(panic) => std::task::Poll::Ready(Err(panic)),
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[derive(Debug)]
  struct Panics;
  impl ProvideCredentials for Panics {
    fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
      Self: 'a,
    {
      aws_credential_types::provider::future::ProvideCredentials::new(async { panic!("expect failed in a dependency") })
    }
  }

  #[tokio::test]
  async fn a_panicking_provider_is_an_internal_error_for_that_call() {
    let deadline = Deadline::after(std::time::Duration::from_secs(1));
    for _ in 0..2 {
      let e = provide_named(&Panics, "profile", "profile sso-dev", deadline).await.unwrap_err();
      assert_eq!(e.code(), "INTERNAL", "{e}");
      assert!(e.message().starts_with("profile sso-dev: aws-config panicked"), "{e}");
    }
  }
}
