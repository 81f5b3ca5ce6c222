//! Glue to aws-config's own providers (the profile link of the chain), and the `SdkConfig` the
//! AWS STS calls we make ourselves use ([`sdk_config`]: web identity from the environment or a
//! profile, `source_profile` role chains), whose endpoint comes from the context.
//!
//! aws-config's `ProviderConfig` cannot be given our environment snapshot (its `with_env` is
//! crate-private). What it does accept comes from the snapshot of the constructing thread: the
//! inputs that select the link (token file, role ARN, session name, profile files and name), the
//! region, the HTTP client (trust, proxy) and FIPS / dual-stack selection
//! (`AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`). **Still read from the process
//! environment** by aws-config itself (SSO and `aws login` profiles, also as the base of a role
//! chain): the endpoint overrides `AWS_ENDPOINT_URL_STS`,
//! `AWS_ENDPOINT_URL_SSO`, `AWS_ENDPOINT_URL_SSO_OIDC`, `AWS_ENDPOINT_URL_SIGNIN` and
//! `AWS_ENDPOINT_URL` (an override cannot be applied after the fact: AWS STS `AssumeRole`
//! requests are signed for their host); `HOME` where the SSO provider looks for
//! `~/.aws/sso/cache/<sha1 of the sso_session name, or of the start URL>.json`; and `HOME` or
//! `AWS_LOGIN_CACHE_DIRECTORY` where the login provider keeps `~/.aws/login/cache/<sha256 of the
//! session ARN>.json` (rewritten after a refresh, as the AWS CLI and the JavaScript SDK do). A
//! worker that needs other values for these must run in a process whose environment has them
//! (README, "Worker threads").
//!
//! aws-config is built without default features, plus `sso` and `credentials-login`: no aws-lc C build, no
//! `credential_process` (ours: [`super::process`]), and no HTTP client of its own. The client it is
//! given ([`SdkHttp`], used for our own AWS STS calls, and for the SSO portal (`GetRoleCredentials`)
//! and SSO OIDC token refresh by the SSO provider, and for AWS Sign-In `CreateOAuth2Token` by the
//! login provider, whose clients are all built from the same `ProviderConfig`) is an adapter onto
//! [`crate::http`]: the same reqwest clients, rustls on *ring*, and the same policy as every other
//! request of the crate (the proxy rules of [`crate::http::proxy`], no redirects, 2 s connect, 64 KiB
//! body cap, the caller's deadline around the whole call). One HTTP stack instead of two: no second hyper client, no HTTP/2. aws-config's providers do not cache (its identity
//! cache lives in service clients), so our [`crate::cache`] does.

use aws_config::provider_config::ProviderConfig;
use aws_config::Region;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_runtime_api::client::http::{
  HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Deadline, Http, TransportError};
use crate::redact::Secret;

use super::credentials::AwsCredentials;

/// A `ProviderConfig` for `ctx`: our HTTP client ([`SdkHttp`], with the context's trust and
/// proxy), the given region (AWS STS needs one), and FIPS / dual-stack endpoint selection from the
/// context's `AWS_USE_FIPS_ENDPOINT` / `AWS_USE_DUALSTACK_ENDPOINT`, else the selected profile's
/// `use_fips_endpoint` / `use_dualstack_endpoint` (aws-config's `ProviderConfig` reads neither by
/// itself: without this they would be off).
pub fn provider_config(ctx: &Context, region: &str) -> ProviderConfig {
  let settings = Settings::new(ctx);
  ProviderConfig::without_region()
    .with_http_client(SharedHttpClient::new(SdkHttp(ctx.http.clone())))
    .with_region(Some(Region::new(region.to_string())))
    .with_use_fips(settings.flag(ENV_USE_FIPS, "use_fips_endpoint"))
    .with_use_dual_stack(settings.flag(ENV_USE_DUAL_STACK, "use_dualstack_endpoint"))
}

/// An `SdkConfig` for the AWS STS calls this crate sends itself with `aws-sdk-sts`
/// ([`super::assume_role`], [`super::web_identity`]): the same HTTP client, region and FIPS /
/// dual-stack selection as [`provider_config`], aws-config's standard retry, and the AWS STS
/// endpoint override of [`sts_endpoint_override`], read from the context.
pub fn sdk_config(ctx: &Context, region: &str) -> aws_config::SdkConfig {
  let settings = Settings::new(ctx);
  let mut builder = aws_config::SdkConfig::builder()
    .http_client(SharedHttpClient::new(SdkHttp(ctx.http.clone())))
    .region(Region::new(region.to_string()))
    .time_source(aws_types::sdk_config::SharedTimeSource::default())
    .retry_config(aws_types::sdk_config::RetryConfig::standard())
    .behavior_version(aws_config::BehaviorVersion::latest())
    .use_fips(settings.flag(ENV_USE_FIPS, "use_fips_endpoint").unwrap_or(false))
    .use_dual_stack(settings.flag(ENV_USE_DUAL_STACK, "use_dualstack_endpoint").unwrap_or(false));
  if let Some(url) = settings.sts_endpoint_override() {
    builder = builder.endpoint_url(url);
  }
  builder.build()
}

/// The AWS STS endpoint a user configured, in the AWS SDKs' order: `AWS_ENDPOINT_URL_STS`, then
/// `AWS_ENDPOINT_URL`, then the selected profile's `endpoint_url`; none when
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true. (A profile's `services` section is not read.)
pub fn sts_endpoint_override(ctx: &Context) -> Option<String> {
  Settings::new(ctx).sts_endpoint_override()
}

/// Settings read from the context's variables, else the selected profile; the profile files are
/// read at most once, and only when a variable is not set.
struct Settings<'a> {
  ctx: &'a Context,
  profiles: once_cell::unsync::OnceCell<Option<super::profile_file::Profiles>>,
}

impl<'a> Settings<'a> {
  fn new(ctx: &'a Context) -> Self {
    Settings { ctx, profiles: once_cell::unsync::OnceCell::new() }
  }

  /// The selected profile's `key` (unreadable files count as unset).
  fn profile(&self, key: &str) -> Option<String> {
    self.profiles.get_or_init(|| super::profile_file::Profiles::load(self.ctx).ok()).as_ref().and_then(|p| p.get(key))
  }

  /// The variable `var`, else the selected profile's `key`.
  fn get(&self, var: &str, key: &str) -> Option<String> {
    self.ctx.env.get(var).map(str::to_string).or_else(|| self.profile(key))
  }

  /// A boolean setting; `None` when it is neither `true` nor `false`.
  fn flag(&self, var: &str, key: &str) -> Option<bool> {
    match self.get(var, key)?.trim().to_ascii_lowercase().as_str() {
      "true" => Some(true),
      "false" => Some(false),
      _ => None,
    }
  }

  fn sts_endpoint_override(&self) -> Option<String> {
    if self.flag(ENV_IGNORE_ENDPOINT_URLS, "ignore_configured_endpoint_urls") == Some(true) {
      return None;
    }
    [ENV_ENDPOINT_URL_STS, ENV_ENDPOINT_URL]
      .iter()
      .find_map(|v| self.ctx.env.get(v))
      .map(str::to_string)
      .or_else(|| self.profile("endpoint_url"))
      .map(|s| s.trim().to_string())
      .filter(|s| !s.is_empty())
  }
}

pub const ENV_USE_FIPS: &str = "AWS_USE_FIPS_ENDPOINT";
pub const ENV_USE_DUAL_STACK: &str = "AWS_USE_DUALSTACK_ENDPOINT";
pub const ENV_ENDPOINT_URL_STS: &str = "AWS_ENDPOINT_URL_STS";
pub const ENV_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
pub const ENV_IGNORE_ENDPOINT_URLS: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

/// aws-config's HTTP client: smithy requests sent through [`crate::http::execute`] on the
/// context's [`Http`] (its trust and proxy decision). The connection pool lives in the
/// process-wide reqwest clients, so handing out a fresh connector is free.
#[derive(Debug, Clone)]
pub struct SdkHttp(pub Http);

impl HttpClient for SdkHttp {
  fn http_connector(&self, _settings: &HttpConnectorSettings, _components: &RuntimeComponents) -> SharedHttpConnector {
    // Our connect timeout (2 s) applies; the caller's overall deadline is enforced around the
    // whole provider call by [`provide`], so one attempt has no bound of its own below it.
    SharedHttpConnector::new(self.clone())
  }
}

impl HttpConnector for SdkHttp {
  fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
    HttpConnectorFuture::new(send_sdk_request(self.0.clone(), request))
  }
}

/// Headers whose values are credentials: marked sensitive so no layer below prints them.
const SENSITIVE_HEADERS: [&str; 2] = ["authorization", "x-amz-security-token"];

/// The bound of one aws-config attempt: the largest `timeoutMs` (the caller's own, smaller deadline
/// cuts the whole provider call in [`provide`]).
const SDK_ATTEMPT_BOUND: std::time::Duration = std::time::Duration::from_secs(300);

async fn send_sdk_request(http: Http, request: HttpRequest) -> std::result::Result<HttpResponse, ConnectorError> {
  let method = reqwest::Method::from_bytes(request.method().as_bytes()).map_err(|e| ConnectorError::user(e.into()))?;
  // AWS STS requests are small form bodies held in memory; a streaming body would be a bug.
  let body = request.body().bytes().ok_or_else(|| ConnectorError::user("a streaming request body cannot be sent".into()))?.to_vec();
  let mut builder = http.request_builder(method, request.uri(), &crate::http::Route::Env).map_err(connector_error)?;
  for (name, value) in request.headers().iter() {
    let sensitive = SENSITIVE_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s));
    let v = crate::http::header_value(name, value, sensitive).map_err(|e| ConnectorError::user(e.to_string().into()))?;
    builder = builder.header(name, v);
  }
  let raw = crate::http::execute(builder.body(body), SDK_ATTEMPT_BOUND).await.map_err(connector_error)?;
  let status = StatusCode::try_from(raw.status).map_err(|e| ConnectorError::other(e.into(), None))?;
  let mut response = HttpResponse::new(status, SdkBody::from(raw.body));
  for (name, value) in raw.headers.iter() {
    if let Ok(value) = value.to_str() {
      response.headers_mut().append(name.as_str().to_owned(), value.to_owned());
    }
  }
  Ok(response)
}

fn connector_error(e: TransportError) -> ConnectorError {
  let text = e.to_string();
  match e {
    TransportError::Timeout => ConnectorError::timeout(text.into()),
    TransportError::Connect(_) => ConnectorError::io(text.into()),
    TransportError::BodyTooLarge | TransportError::InvalidRequest(_) | TransportError::NoTrust(_) | TransportError::ProxyAuth => {
      ConnectorError::other(text.into(), None)
    }
  }
}

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

  #[test]
  fn the_sts_endpoint_override_comes_from_the_context_in_the_sdks_order() {
    use crate::env::{EnvSnapshot, ManualClock, OsFs};
    let dir = std::env::temp_dir().join(format!("aws-wif-sdk-endpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(&config, "[default]\nendpoint_url = http://127.0.0.1:3/profile\n").unwrap();
    let config = config.to_str().unwrap().to_string();
    let ctx = |vars: &[(&str, &str)]| {
      let mut all = vec![("AWS_CONFIG_FILE", config.as_str())];
      all.extend_from_slice(vars);
      Context::new(EnvSnapshot::from_pairs(all), std::sync::Arc::new(OsFs), std::sync::Arc::new(ManualClock::at_epoch_secs(1)))
    };
    let sts = ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1/sts");
    let all = ("AWS_ENDPOINT_URL", "http://127.0.0.1:2/all");
    assert_eq!(sts_endpoint_override(&ctx(&[sts, all])).as_deref(), Some("http://127.0.0.1:1/sts"));
    assert_eq!(sts_endpoint_override(&ctx(&[all])).as_deref(), Some("http://127.0.0.1:2/all"));
    assert_eq!(sts_endpoint_override(&ctx(&[])).as_deref(), Some("http://127.0.0.1:3/profile"));
    assert_eq!(sts_endpoint_override(&ctx(&[sts, ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")])), None);
    assert_eq!(sdk_config(&ctx(&[sts]), "eu-west-1").endpoint_url(), Some("http://127.0.0.1:1/sts"));
    std::fs::remove_dir_all(&dir).unwrap();
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
