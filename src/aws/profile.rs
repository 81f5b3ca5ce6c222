//! Shared config and credentials files (second link), through aws-config's
//! `ProfileFileCredentialsProvider`.
//!
//! Files: `AWS_CONFIG_FILE` (default `~/.aws/config`) and `AWS_SHARED_CREDENTIALS_FILE` (default
//! `~/.aws/credentials`); profile `AWS_PROFILE` (default `default`). When neither file exists and
//! `AWS_PROFILE` is unset the link is skipped without touching aws-config. Static keys,
//! `role_arn` + `source_profile`, `credential_source` and `web_identity_token_file` profiles work;
//! SSO and `credential_process` profiles are refused (`CONFIG_INVALID`): those aws-config features
//! are not compiled in, as a container has no use for them.

#![allow(deprecated)] // aws-config still re-exports EnvConfigFiles only under its old name

use std::path::PathBuf;

use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;

use crate::env::Context;
use crate::error::Result;
use crate::http::Deadline;

use super::credentials::AwsCredentials;

/// The config and credentials file paths this environment points at.
pub fn paths(ctx: &Context) -> (Option<PathBuf>, Option<PathBuf>) {
  let home = ctx.env.get("HOME").map(PathBuf::from);
  let pick = |var: &str, default: &str| ctx.env.get(var).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(default)));
  (pick("AWS_CONFIG_FILE", ".aws/config"), pick("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"))
}

/// `sdk` gives aws-config's configuration; it is only asked for when a profile file exists.
pub async fn load<'a>(ctx: &Context, sdk: impl FnOnce() -> &'a ProviderConfig, deadline: Deadline) -> Result<Option<AwsCredentials>> {
  let (config, credentials) = paths(ctx);
  let exists = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| ctx.fs.read(p).is_ok());
  let profile = ctx.env.get("AWS_PROFILE");
  if !exists(&config) && !exists(&credentials) && profile.is_none() {
    return Ok(None);
  }
  let mut files = ProfileFiles::builder();
  if let Some(p) = config {
    files = files.with_file(ProfileFileKind::Config, p);
  }
  if let Some(p) = credentials {
    files = files.with_file(ProfileFileKind::Credentials, p);
  }
  let provider = ProfileFileCredentialsProvider::builder()
    .configure(sdk())
    .profile_files(files.build())
    .profile_name(profile.unwrap_or("default"))
    .build();
  super::sdk::provide(&provider, "profile", deadline).await
}
