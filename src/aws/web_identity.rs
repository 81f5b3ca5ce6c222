//! Web identity token (third link): EKS IRSA, AWS STS `AssumeRoleWithWebIdentity`.
//!
//! Needs `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN` (one without the other: the link is
//! skipped, as in the JavaScript SDK and aws-config, and [`ignored`] says so); `AWS_ROLE_SESSION_NAME` is optional
//! (default `aws-sdk-js-session-<epoch millis>`, [`DEFAULT_SESSION_PREFIX`], the JavaScript SDK's).
//! The token file is read on every fetch (Kubernetes rotates it); one that cannot be read, or is
//! not UTF-8, is `CONFIG_INVALID` and nothing is sent. A profile with `web_identity_token_file` and
//! `role_arn` (and `role_session_name`, else `AWS_ROLE_SESSION_NAME`) is sent the same way ([`load_profile`], for the profile
//! link), as the JavaScript SDK's ini provider hands such a profile to the same `fromTokenFile`.
//!
//! Spec: AWS STS `AssumeRoleWithWebIdentity` (`Action=AssumeRoleWithWebIdentity`,
//! `Version=2011-06-15`, `RoleArn`, `RoleSessionName`, `WebIdentityToken`; unsigned, HTTPS), sent
//! by the AWS STS client aws-config's own web-identity provider uses, called the same way, on our
//! HTTP client with aws-config's standard retry. The endpoint comes from the context
//! ([`super::sdk::sts_endpoint_override`]: `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, the profile's
//! `endpoint_url`), else the regional endpoint of the chain's AWS STS region. Unlike aws-config's
//! provider (which reads the endpoint variables from the OS environment), a worker thread started
//! with its own `env` gets its own endpoint, as it does with the JavaScript SDK.

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::future::ProvideCredentials as ProvideFuture;
use aws_credential_types::provider::ProvideCredentials;

use crate::context::Context;
use crate::env::epoch_millis;
use crate::error::Result;
use crate::http::Deadline;

use super::credentials::AwsCredentials;
use super::link::{evidence, Description};

pub const LINK: &str = "web identity";

pub fn describe(ctx: &Context) -> Description {
  match (ctx.env.get(ENV_TOKEN_FILE), ctx.env.get(ENV_ROLE_ARN)) {
    (Some(_), Some(_)) => Description::configured(
      LINK,
      "EKS IRSA (web identity)",
      evidence(ctx, &[ENV_TOKEN_FILE, ENV_ROLE_ARN, ENV_SESSION_NAME]),
      "web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (AWS STS AssumeRoleWithWebIdentity)",
    ),
    (Some(_), None) => Description::skipped(LINK, format!("web identity: {}", ignored(ctx).unwrap_or_default())),
    _ => Description::skipped(LINK, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set"),
  }
}

/// Why a token file that is set is not used: `AWS_ROLE_ARN` is not set.
pub fn ignored(ctx: &Context) -> Option<String> {
  match (ctx.env.get(ENV_TOKEN_FILE), ctx.env.get(ENV_ROLE_ARN)) {
    (Some(_), None) => Some(format!(
      "{ENV_TOKEN_FILE} is set but {ENV_ROLE_ARN} is not: web identity is skipped and the next credential source is used, as the AWS SDKs do"
    )),
    _ => None,
  }
}

pub const ENV_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
pub const ENV_ROLE_ARN: &str = "AWS_ROLE_ARN";
pub const ENV_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";
/// The session name prefix when none is configured (the JavaScript SDK's `fromWebToken`).
pub const DEFAULT_SESSION_PREFIX: &str = "aws-sdk-js-session";

/// `sts_region`: where AWS STS is called (the chain's region).
pub async fn load(ctx: &Context, sts_region: &str, deadline: Deadline) -> Result<Option<AwsCredentials>> {
  let (file, role) = match (ctx.env.get(ENV_TOKEN_FILE), ctx.env.get(ENV_ROLE_ARN)) {
    (None, None) => return Ok(None),
    (Some(f), Some(r)) => (f, r),
    (Some(_), None) => return Ok(None), // skipped, as the AWS SDKs do ([`ignored`] says why)
    (None, Some(_)) => return Ok(None), // AWS_ROLE_ARN alone is used by other tools; not ours to reject
  };
  let token = super::credentials::read_token_file(ctx, ENV_TOKEN_FILE, file, None, deadline).await?;
  let provider = WebIdentity::new(ctx, sts_region, token, role, ctx.env.get(ENV_SESSION_NAME));
  super::sdk::provide(&provider, "web identity (IRSA)", deadline).await
}

/// A web-identity profile: `profile`'s `role_arn`, `web_identity_token_file` and
/// `role_session_name`, sent as from the environment; errors name the profile.
pub async fn load_profile(
  ctx: &Context,
  sts_region: &str,
  profile: &super::profile_walk::WebIdentityProfile,
  deadline: Deadline,
) -> Result<Option<AwsCredentials>> {
  let label = format!("profile {}", profile.profile);
  let token =
    super::credentials::read_token_file(ctx, &format!("{label}: web_identity_token_file"), &profile.token_file, None, deadline).await?;
  // The JavaScript SDK's `fromTokenFile`: the profile's `role_session_name`, else AWS_ROLE_SESSION_NAME.
  let session_name = profile.session_name.as_deref().or_else(|| ctx.env.get(ENV_SESSION_NAME));
  let provider = WebIdentity::new(ctx, sts_region, token, &profile.role_arn, session_name);
  super::sdk::provide_named(&provider, super::profile::LINK, &label, deadline).await
}

/// One `AssumeRoleWithWebIdentity` call as an aws-config provider, so that
/// [`super::sdk::provide`] bounds it and maps AWS STS errors as for aws-config's providers.
#[derive(Debug)]
struct WebIdentity {
  conf: aws_config::SdkConfig,
  token: crate::redact::Secret,
  role_arn: String,
  session_name: String,
}

impl WebIdentity {
  fn new(ctx: &Context, sts_region: &str, token: String, role_arn: &str, session_name: Option<&str>) -> Self {
    WebIdentity {
      conf: super::sdk::sdk_config(ctx, sts_region),
      token: crate::redact::Secret::new(token),
      role_arn: role_arn.to_string(),
      session_name: session_name
        .map(str::to_string)
        .unwrap_or_else(|| format!("{DEFAULT_SESSION_PREFIX}-{}", epoch_millis(ctx.clock.now()) as u64)),
    }
  }

  async fn assume(&self) -> std::result::Result<aws_credential_types::Credentials, CredentialsError> {
    let out = aws_sdk_sts::Client::new(&self.conf)
      .assume_role_with_web_identity()
      .role_arn(&self.role_arn)
      .role_session_name(&self.session_name)
      .web_identity_token(self.token.expose())
      .send()
      .await
      .map_err(CredentialsError::provider_error)?;
    super::assume_role::into_credentials(out.credentials, out.assumed_role_user, "WebIdentityToken")
  }
}

impl ProvideCredentials for WebIdentity {
  fn provide_credentials<'a>(&'a self) -> ProvideFuture<'a>
  where
    Self: 'a,
  {
    ProvideFuture::new(self.assume())
  }
}
