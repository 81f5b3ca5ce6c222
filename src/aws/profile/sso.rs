//! SSO (`sso_session`, legacy `sso_start_url`) and `aws login` (`login_session`) profiles, also as
//! the base of a role chain: loaded by aws-config's `ProfileFileCredentialsProvider` (its `sso` and
//! `credentials-login` features) on our HTTP client ([`crate::aws::sdk`]); see [`super`]'s module
//! docs for what it reads and how its errors map.

#![allow(deprecated)] // aws-config still re-exports EnvConfigFiles only under its old name

use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;

use crate::aws::credentials::AwsCredentials;
use crate::context::Context;
use crate::error::Result;
use crate::http::Deadline;

use super::file::paths;
use super::plan::LINK;

/// aws-config's profile provider for `profile`, on the files that exist (it treats every file it
/// is given as required, so a missing ~/.aws/config beside an existing ~/.aws/credentials would
/// fail it).
pub async fn aws_config_profile(
  ctx: &Context,
  sdk: &ProviderConfig,
  profile: &str,
  label: &str,
  deadline: Deadline,
) -> Result<Option<AwsCredentials>> {
  let (config, credentials) = paths(ctx);
  let mut files = ProfileFiles::builder().include_default_config_file(false).include_default_credentials_file(false);
  for (kind, path) in [(ProfileFileKind::Config, config), (ProfileFileKind::Credentials, credentials)] {
    if let Some(p) = path {
      if super::file::read(ctx, &p)?.is_some() {
        files = files.with_file(kind, p);
      }
    }
  }
  let provider = ProfileFileCredentialsProvider::builder().configure(sdk).profile_files(files.build()).profile_name(profile).build();
  crate::aws::sdk::provide_named(&provider, LINK, label, deadline).await
}
