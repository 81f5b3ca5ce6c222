//! Web identity token (third link): EKS IRSA, through aws-config's
//! `WebIdentityTokenCredentialsProvider`.
//!
//! Needs `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`; `AWS_ROLE_SESSION_NAME` is optional
//! (default `aws-wif-supplier-<epoch millis>`). The token file is read on every fetch (Kubernetes
//! rotates it). aws-config calls AWS STS `AssumeRoleWithWebIdentity` (unsigned, HTTPS), at the
//! endpoint `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL` if set, else the regional STS endpoint.

use std::path::PathBuf;

use aws_config::provider_config::ProviderConfig;
use aws_config::web_identity_token::{StaticConfiguration, WebIdentityTokenCredentialsProvider};

use crate::env::{epoch_millis, Context};
use crate::error::{Error, ErrorKind, Result};
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
    (Some(_), None) => Description::configured(
      LINK,
      "EKS IRSA (web identity), misconfigured",
      evidence(ctx, &[ENV_TOKEN_FILE]),
      format!("web identity: {ENV_TOKEN_FILE} is set but {ENV_ROLE_ARN} is not"),
    ),
    _ => Description::skipped(LINK, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set"),
  }
}

pub const ENV_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
pub const ENV_ROLE_ARN: &str = "AWS_ROLE_ARN";
pub const ENV_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";

/// `sdk` gives aws-config's configuration; it is only asked for when the link is configured.
pub async fn load<'a>(ctx: &Context, sdk: impl FnOnce() -> &'a ProviderConfig, deadline: Deadline) -> Result<Option<AwsCredentials>> {
  let (file, role) = match (ctx.env.get(ENV_TOKEN_FILE), ctx.env.get(ENV_ROLE_ARN)) {
    (None, None) => return Ok(None),
    (Some(f), Some(r)) => (f, r),
    (Some(_), None) => return Err(Error::new(ErrorKind::ConfigInvalid, format!("{ENV_TOKEN_FILE} is set but {ENV_ROLE_ARN} is not"))),
    (None, Some(_)) => return Ok(None), // AWS_ROLE_ARN alone is used by other tools; not ours to reject
  };
  let session_name = ctx
    .env
    .get(ENV_SESSION_NAME)
    .map(str::to_string)
    .unwrap_or_else(|| format!("aws-wif-supplier-{}", epoch_millis(ctx.clock.now()) as u64));
  let provider = WebIdentityTokenCredentialsProvider::builder()
    .configure(sdk())
    .static_configuration(StaticConfiguration { web_identity_token_file: PathBuf::from(file), role_arn: role.to_string(), session_name })
    .build();
  super::sdk::provide(&provider, "web identity (IRSA)", deadline).await
}
