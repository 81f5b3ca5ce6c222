//! Shared config and credentials files (second link): the JavaScript SDK's walk over them
//! ([`walk`]), and aws-config's `ProfileFileCredentialsProvider` for SSO and
//! `aws login` profiles.
//!
//! Files: `AWS_CONFIG_FILE` (default `~/.aws/config`) and `AWS_SHARED_CREDENTIALS_FILE` (default
//! `~/.aws/credentials`); profile `AWS_PROFILE` (default `default`). When neither file exists and
//! `AWS_PROFILE` is unset the link is skipped without touching aws-config. Which credentials the
//! selected profile gives is [`walk`]'s answer: static keys are used as they are,
//! `web_identity_token_file` profiles are sent by [`crate::aws::sts`], a
//! `credential_source` comes from the chain's own environment, container or IMDS link.
//! A profile whose credentials come from `credential_process` (by the JavaScript SDK's order) is
//! run by [`process`] instead (aws-config's own process provider is not compiled in).
//! `role_arn` + `source_profile` chains are ours whatever their base ([`crate::aws::sts`]:
//! the JavaScript SDK's requests, region and `mfa_serial` refusal); an SSO or login base is loaded
//! by aws-config as a profile of its own. SSO
//! profiles (`sso_session` and the legacy `sso_start_url` form) go through aws-config's SSO
//! provider (its `sso` feature) on our HTTP client; it reads the cached token from
//! `~/.aws/sso/cache` under the process environment's `HOME` (see [`crate::aws::sdk`]). Errors name the
//! profile; an SSO token that expired and cannot be refreshed is `CREDENTIALS_EXPIRED`.
//! `login_session` profiles (`aws login`) go through aws-config's login provider (its
//! `credentials-login` feature), also on our HTTP client; a session that is over, or whose refresh
//! AWS Sign-In refuses, is `CREDENTIALS_EXPIRED`.

//!
//! The folder: [`plan`] (the walk's outcome as data, a leaf), [`walk`] (the walk), [`file`] (paths,
//! the selected profile, single properties), [`process`] (`credential_process`), [`sso`] (SSO and
//! `aws login` through aws-config); the AWS STS calls are [`crate::aws::sts`].

pub mod file;
pub mod plan;
pub mod process;
mod sso;
pub mod walk;

use crate::aws::credentials::AwsCredentials;
use crate::aws::link::{evidence, Description, Link, LinkContext, LoadFuture, Loaded, Plan, Role};
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;

pub use file::paths;
use file::{profile_name, ENV_CONFIG_FILE, ENV_CREDENTIALS_FILE, ENV_PROFILE};
pub use plan::LINK;
use plan::{Base, Walk, WebIdentityProfile};
use sso::aws_config_profile;
use walk::walk_selected;

/// The link: the walk, planned once per load.
pub struct Profile;

impl Link for Profile {
  /// The walk of the selected profile (an error: files that exist but cannot be read).
  type Todo = Result<Walk>;

  fn plan(&self, lc: &LinkContext<'_>, _: Role) -> Plan<Self::Todo> {
    let walk = walk_selected(&lc.ctx);
    Plan::new(describe(&lc.ctx, &walk), || walk).https(true)
  }

  fn load<'a>(&'a self, todo: &'a Self::Todo, lc: &'a LinkContext<'a>, deadline: Deadline) -> LoadFuture<'a> {
    Box::pin(async move {
      Ok(match load(lc, todo, deadline).await? {
        Some(c) => Loaded::Found(c),
        None => Loaded::Passed(format!("profile {}: no credentials", profile_name(&lc.ctx))),
      })
    })
  }
}

/// Configured when the selected profile gives credentials by the JavaScript SDK's walk
/// ([`walk`], the one [`load`] follows), with what they are; skipped when it gives
/// none (the next link answers, as in both AWS SDKs).
fn describe(ctx: &Context, walk: &Result<Walk>) -> Description {
  let name = profile_name(ctx).to_string();
  let names = [ENV_PROFILE, ENV_CONFIG_FILE, ENV_CREDENTIALS_FILE];
  let what = match walk {
    Err(e) => {
      return Description::configured(LINK, "shared AWS profile", evidence(ctx, &names), format!("profile {name}: {}", e.message()))
    }
    Ok(Walk::NoCredentials) => None,
    Ok(Walk::Ours(plan)) if plan.roles.is_empty() => Some(plan.base.what()),
    Ok(Walk::Ours(plan)) => Some(format!("assume role{}", via(&plan.via, &plan.base.what()))),
    Ok(Walk::AwsConfig { via: None, what }) => Some(what.clone()),
    Ok(Walk::AwsConfig { via: Some(profiles), what }) => Some(format!("assume role{}", via(profiles, what))),
  };
  match (what, ctx.env.get(ENV_PROFILE).is_some()) {
    (Some(what), _) => Description::configured(LINK, "shared AWS profile", evidence(ctx, &names), format!("profile {name}: {what}")),
    // As the JavaScript chain (and aws-config), a profile with no credentials passes to the next source.
    (None, true) => Description::skipped(
      LINK,
      format!("profile {name} (AWS_PROFILE): no credentials for it in the shared files, so the next source is used"),
    ),
    (None, false) => {
      Description::skipped(LINK, format!("profile: no shared config or credentials file with credentials for profile {name}"))
    }
  }
}

/// For `doctor`: ` via profiles mid, base (credential_process)`.
fn via(profiles: &[String], base: &str) -> String {
  match profiles {
    [] => format!(" ({base})"),
    [one] => format!(" via profile {one} ({base})"),
    many => format!(" via profiles {} ({base})", many.join(", ")),
  }
}

/// Load what the walk found. aws-config's configuration ([`LinkContext::sdk`]) is only built when
/// aws-config loads a profile; a role chain's AWS STS region puts the `region` option first
/// ([`crate::aws::region::role_chain_sts_region`]).
async fn load(lc: &LinkContext<'_>, walk: &Result<Walk>, deadline: Deadline) -> Result<Option<AwsCredentials>> {
  let ctx = &lc.ctx;
  let selected = profile_name(ctx);
  let label = format!("profile {selected}");
  // aws-config loads SSO and `aws login` profiles, and reports what is wrong with a chain; this
  // crate everything else (src/aws/profile/walk.rs).
  let plan = match walk.as_ref().map_err(Clone::clone)? {
    Walk::Ours(plan) => plan,
    // Nothing the JavaScript SDK would use: its chain passes to the next provider, and so do we.
    Walk::NoCredentials => return Ok(None),
    Walk::AwsConfig { .. } => return aws_config_profile(ctx, lc.sdk(), selected, &label, deadline).await,
  };
  crate::aws::sts::check_mfa(&plan.roles)?;
  let base = match &plan.base {
    Base::Process { profile, command } => process::load(ctx, profile, command, deadline).await?,
    Base::StaticKeys { credentials, .. } => credentials.clone(),
    Base::WebIdentity(w) => found(web_identity(ctx, lc.sts_region(), w, deadline).await?, &label)?,
    Base::CredentialSource { profile, source } => credential_source(lc, profile, source, deadline).await?,
    Base::Profile { profile, .. } => {
      let base_label = format!("{label} (its source profile {profile})");
      found(aws_config_profile(ctx, lc.sdk(), profile, &base_label, deadline).await?, &base_label)?
    }
  };
  if plan.roles.is_empty() {
    return Ok(Some(base));
  }
  let region = crate::aws::region::role_chain_sts_region(ctx, lc.region_option, plan.region.as_deref());
  crate::aws::sts::assume_chain(ctx, &region, selected, base, &plan.roles, deadline).await.map(Some)
}

/// A web-identity profile: `profile`'s `role_arn`, `web_identity_token_file` and
/// `role_session_name`, sent as from the environment ([`crate::aws::sts`]); errors name the profile.
async fn web_identity(ctx: &Context, sts_region: &str, profile: &WebIdentityProfile, deadline: Deadline) -> Result<Option<AwsCredentials>> {
  let label = format!("profile {}", profile.profile);
  let token =
    crate::aws::credentials::read_token_file(ctx, &format!("{label}: web_identity_token_file"), &profile.token_file, None, deadline)
      .await?;
  // The JavaScript SDK's `fromTokenFile`: the profile's `role_session_name`, else AWS_ROLE_SESSION_NAME.
  let session_name = profile.session_name.as_deref();
  crate::aws::sts::assume_role_with_web_identity(ctx, sts_region, token, &profile.role_arn, session_name, LINK, &label, deadline).await
}

/// The credentials of `profile`'s `credential_source`, from the chain's own link for it (the
/// JavaScript SDK's `fromEnv`, container and instance-metadata providers; see
/// [`LinkContext::credential_source`]).
async fn credential_source(lc: &LinkContext<'_>, profile: &str, source: &str, deadline: Deadline) -> Result<AwsCredentials> {
  match lc.credential_source(source, deadline).await {
    Some(loaded) => match loaded? {
      Loaded::Found(c) => Ok(c),
      Loaded::Passed(why) => {
        Err(Error::new(ErrorKind::CredentialsNotFound, format!("profile {profile}: credential_source {source}: {why}")))
      }
    },
    None => Err(
      Error::new(
        ErrorKind::ConfigInvalid,
        format!("profile {profile}: credential_source {source:?} is not one of {}", lc.credential_sources().join(", ")),
      )
      .not_retryable(),
    ),
  }
}

/// The credentials a provider gave, or `CREDENTIALS_NOT_FOUND` naming `label`.
fn found(credentials: Option<AwsCredentials>, label: &str) -> Result<AwsCredentials> {
  credentials.ok_or_else(|| Error::new(ErrorKind::CredentialsNotFound, format!("{label}: no credentials")))
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::{EnvSnapshot, ManualClock, OsFs};
  use std::sync::Arc;
  use std::time::Duration;

  fn ctx(vars: &[(&str, &str)]) -> Context {
    Context::new(EnvSnapshot::from_pairs(vars.iter().copied()), Arc::new(OsFs), Arc::new(ManualClock::at_epoch_secs(1_700_000_000)))
  }

  #[test]
  fn describe_names_where_a_role_chain_starts() {
    let dir = std::env::temp_dir().join(format!("aws-wif-profile-describe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(
      &config,
      "[profile app]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = mid\n\
       [profile mid]\nrole_arn = arn:aws:iam::1:role/m\nsource_profile = base\n\
       [profile base]\ncredential_process = helper --secret MARKER\n\
       [profile one]\nrole_arn = arn:aws:iam::1:role/o\nsource_profile = keys\n\
       [profile keys]\nrole_arn = arn:aws:iam::1:role/k\nsource_profile = x\naws_access_key_id = AKID\naws_secret_access_key = MARKER\n\
       [profile ecs]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = EcsContainer\n\
       [profile loop]\nrole_arn = arn:aws:iam::1:role/l\nsource_profile = loop2\n\
       [profile loop2]\nrole_arn = arn:aws:iam::1:role/l2\nsource_profile = loop\n\
       [profile lost]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = nowhere\n",
    )
    .unwrap();
    let missing = dir.join("none");
    for (profile, detail) in [
      ("app", "profile app: assume role via profiles mid, base (credential_process)"),
      ("one", "profile one: assume role via profile keys (static keys)"),
      ("ecs", "profile ecs: assume role (credential_source EcsContainer)"),
      ("loop", "profile loop: assume role via profiles loop2, loop (a source_profile loop)"),
      ("lost", "profile lost: assume role via profile nowhere (no such profile)"),
    ] {
      let c = ctx(&[
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("AWS_SHARED_CREDENTIALS_FILE", missing.to_str().unwrap()),
        ("AWS_PROFILE", profile),
      ]);
      let d = describe(&c, &walk_selected(&c));
      assert!(d.configured);
      assert_eq!(d.detail, detail);
      assert!(!d.detail.contains("MARKER"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
  }

  #[tokio::test]
  async fn a_credentials_file_alone_is_enough() {
    let dir = std::env::temp_dir().join(format!("aws-wif-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("credentials");
    std::fs::write(&file, "[default]\naws_access_key_id = AKIDPROFILEEXAMPLE\naws_secret_access_key = MARKER-PROFILE-SECRET\n").unwrap();
    let missing = dir.join("no-config");
    let c = ctx(&[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()), ("AWS_CONFIG_FILE", missing.to_str().unwrap())]);
    let chain = crate::aws::chain::Chain::new(c, None);
    let creds = chain.load_only(LINK, Deadline::after(Duration::from_secs(5))).await.unwrap().expect("profile credentials");
    assert!(!chain.sdk_built(), "static keys need no aws-config");
    assert_eq!(creds.access_key_id, "AKIDPROFILEEXAMPLE");
    assert_eq!(creds.source, "profile");
    assert!(!format!("{creds:?}").contains("MARKER-PROFILE-SECRET"));
    let none = ctx(&[("AWS_SHARED_CREDENTIALS_FILE", missing.to_str().unwrap()), ("AWS_CONFIG_FILE", missing.to_str().unwrap())]);
    let chain = crate::aws::chain::Chain::new(none, None);
    assert!(chain.load_only(LINK, Deadline::after(Duration::from_secs(5))).await.unwrap().is_none());
    assert!(!chain.sdk_built(), "aws-config must not be built");
    std::fs::remove_dir_all(&dir).unwrap();
  }
}
