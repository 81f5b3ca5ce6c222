//! Every AWS STS call the chain makes itself: `AssumeRole` for profile role chains
//! ([`assume_chain`]) and `AssumeRoleWithWebIdentity` for web identity from the environment or a
//! profile ([`assume_role_with_web_identity`]). Both go through the AWS STS client aws-config's own
//! providers use (`aws-sdk-sts`, called the same way) on our HTTP client ([`super::sdk`]), wrapped
//! as aws-config providers so that [`super::sdk::provide_named`] bounds them and maps their errors.
//!
//! ## `AssumeRole` (profile role chains)
//!
//! [`crate::aws::profile::walk`] finds the roles and the base, whose credentials [`assume_chain`]
//! uses to assume each role in turn.
//!
//! Spec: the JavaScript SDK's ini provider (`@aws-sdk/credential-provider-ini`
//! `resolveAssumeRoleCredentials`, which `fromNodeProviderChain()` users replace): AWS STS
//! `AssumeRole` (`Action=AssumeRole`, `Version=2011-06-15`, `RoleArn`, `RoleSessionName`,
//! `ExternalId` when the profile has `external_id`, `DurationSeconds`), a form POST signed with
//! SigV4 (service `sts`) by the credentials of the hop before it.
//!
//! * **Calls**: one per role, innermost first: the base's credentials assume the role of the
//!   profile that names it as `source_profile`, those credentials the next role, up to the selected
//!   profile. Sent by the AWS STS client aws-config's own profile chains use (`aws-sdk-sts`, called
//!   the same way) on our HTTP client ([`super::sdk::SdkHttp`]: trust, proxy, attempt bounds) with
//!   aws-config's standard retry (3 attempts); the whole chain runs within the chain's
//!   [`Deadline`].
//! * **Session name**: the profile's `role_session_name`, else `aws-sdk-js-<unix millis>`
//!   ([`DEFAULT_SESSION_PREFIX`], the JavaScript SDK's default, so that sessions are named as under
//!   the stack this package replaces; aws-config would say `assume-role-from-profile-<millis>`).
//! * **Region** ([`super::region::role_chain_sts_region`]): the `region` option, else the selected
//!   profile's own `region`, else `AWS_REGION`, else `us-east-1`: the JavaScript SDK hands the role
//!   profile's `region` to its role assumer ahead of `AWS_REGION`.
//! * **Endpoint**: from the context ([`super::sdk::sts_endpoint_override`]: `AWS_ENDPOINT_URL_STS`,
//!   `AWS_ENDPOINT_URL`, the profile's `endpoint_url`), else the regional endpoint (FIPS /
//!   dual-stack from the context or the profile).
//! * **Session length**: `DurationSeconds` is the profile's `duration_seconds`, else
//!   [`DEFAULT_DURATION_SECONDS`] (3600, AWS STS's own default), as the JavaScript SDK sends it
//!   ([`duration_seconds`]; aws-config's own chains never send it).
//! * **MFA**: a hop with `mfa_serial` is `CONFIG_INVALID` before anything is sent ([`check_mfa`]):
//!   AWS STS would want a code typed from the device, which a service cannot ask for. The
//!   JavaScript SDK refuses such a profile too when no `mfaCodeProvider` is given (as from
//!   `fromNodeProviderChain()`); aws-config would send the request without the code.
//! * **Errors** name the selected profile; AWS STS refusals map as for aws-config's chains
//!   ([`super::sdk::provide_named`]).
//!
//! ## `AssumeRoleWithWebIdentity`
//!
//! Spec: `Action=AssumeRoleWithWebIdentity`, `Version=2011-06-15`, `RoleArn`, `RoleSessionName`,
//! `WebIdentityToken`; unsigned, HTTPS, with aws-config's standard retry. The endpoint comes from
//! the context ([`super::sdk::sts_endpoint_override`]: `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`,
//! the profile's `endpoint_url`), else the regional endpoint of the chain's AWS STS region. Unlike
//! aws-config's provider (which reads the endpoint variables from the OS environment), a worker
//! thread started with its own `env` gets its own endpoint, as it does with the JavaScript SDK.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::future::ProvideCredentials as ProvideFuture;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;

use crate::context::Context;
use crate::env::epoch_millis;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;

use super::credentials::AwsCredentials;
use super::profile::plan::{RoleHop, LINK as PROFILE_LINK, PROCESS_SOURCE};

/// The session name prefix when a profile has no `role_session_name` (the JavaScript SDK's).
pub const DEFAULT_SESSION_PREFIX: &str = "aws-sdk-js";

/// `CONFIG_INVALID` when a hop has `mfa_serial` (see the module docs); nothing has been sent.
pub fn check_mfa(roles: &[RoleHop]) -> Result<()> {
  match roles.iter().rev().find(|hop| hop.mfa_serial.is_some()) {
    None => Ok(()),
    Some(hop) => Err(
      Error::new(
        ErrorKind::ConfigInvalid,
        format!(
          "profile {} requires multi-factor authentication (mfa_serial): AWS STS AssumeRole would need a code from the MFA \
           device, which this library cannot ask for (nor can the JavaScript SDK's provider chain without an MFA code callback); \
           use a profile without mfa_serial, e.g. SSO, `aws login` or credential_process",
          hop.profile
        ),
      )
      .not_retryable(),
    ),
  }
}

/// The session length a hop asks for: its `duration_seconds` when set, read as the JavaScript
/// SDK's `parseInt` reads it (the leading digits: `7200s` is 7200), else
/// [`DEFAULT_DURATION_SECONDS`]. AWS STS takes 900 to 43200 s (capped by the role's maximum);
/// anything else is `CONFIG_INVALID` naming the profile, before anything is sent.
pub fn duration_seconds(hop: &RoleHop) -> Result<i32> {
  let Some(raw) = hop.duration_seconds.as_deref() else { return Ok(DEFAULT_DURATION_SECONDS) };
  let digits: String = raw.trim().chars().take_while(char::is_ascii_digit).take(9).collect();
  match digits.parse::<i32>() {
    Ok(n) if (MIN_DURATION_SECONDS..=MAX_DURATION_SECONDS).contains(&n) => Ok(n),
    _ => Err(
      Error::new(
        ErrorKind::ConfigInvalid,
        format!(
          "profile {}: duration_seconds {raw:?} is not a whole number of seconds from {MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS}",
          hop.profile
        ),
      )
      .not_retryable(),
    ),
  }
}

/// The session length asked for when a profile has no `duration_seconds` (the JavaScript SDK's,
/// and AWS STS's own default; the most a role-chained session may have).
pub const DEFAULT_DURATION_SECONDS: i32 = 3600;
/// The session lengths AWS STS `AssumeRole` accepts.
pub const MIN_DURATION_SECONDS: i32 = 900;
pub const MAX_DURATION_SECONDS: i32 = 43_200;

/// The session name of a hop: its `role_session_name`, else the default at `now`.
pub fn session_name(hop: &RoleHop, now: SystemTime) -> String {
  hop.session_name.clone().unwrap_or_else(|| {
    let millis = now.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("{DEFAULT_SESSION_PREFIX}-{millis}")
  })
}

/// Assume `roles` (innermost first) starting from `base`, within `deadline`. `selected` is the
/// profile the user selected, named in errors.
pub async fn assume_chain(
  ctx: &Context,
  sts_region: &str,
  selected: &str,
  base: AwsCredentials,
  roles: &[RoleHop],
  deadline: Deadline,
) -> Result<AwsCredentials> {
  let label = format!("profile {selected}");
  let chain = RoleChain {
    conf: super::sdk::sdk_config(ctx, sts_region),
    base: Credentials::new(
      base.access_key_id,
      base.secret_access_key.expose(),
      base.session_token.as_ref().map(|t| t.expose().to_string()),
      base.expiration,
      PROCESS_SOURCE,
    ),
    roles: roles.iter().map(|hop| Ok((hop.clone(), session_name(hop, ctx.clock.now()), duration_seconds(hop)?))).collect::<Result<_>>()?,
  };
  match super::sdk::provide_named(&chain, PROFILE_LINK, &label, deadline).await? {
    Some(creds) => Ok(creds),
    None => Err(Error::new(ErrorKind::CredentialsNotFound, format!("{label}: AWS STS AssumeRole returned no credentials"))),
  }
}

/// The role chain as one aws-config provider, so that [`super::sdk::provide_named`] bounds it and maps
/// its errors as for aws-config's own chains.
#[derive(Debug)]
struct RoleChain {
  conf: aws_config::SdkConfig,
  base: Credentials,
  /// Each hop with its session name and session length.
  roles: Vec<(RoleHop, String, i32)>,
}

impl RoleChain {
  async fn assume(&self) -> std::result::Result<Credentials, CredentialsError> {
    let mut creds = self.base.clone();
    for (hop, session, duration) in &self.roles {
      let conf = self.conf.to_builder().credentials_provider(SharedCredentialsProvider::new(creds)).build();
      let out = aws_sdk_sts::Client::new(&conf)
        .assume_role()
        .role_arn(&hop.role_arn)
        .set_external_id(hop.external_id.clone())
        .role_session_name(session)
        .duration_seconds(*duration)
        .send()
        .await
        .map_err(CredentialsError::provider_error)?;
      creds = into_credentials(out.credentials, out.assumed_role_user, "AssumeRole")?;
    }
    Ok(creds)
  }
}

impl ProvideCredentials for RoleChain {
  fn provide_credentials<'a>(&'a self) -> ProvideFuture<'a>
  where
    Self: 'a,
  {
    ProvideFuture::new(self.assume())
  }
}

/// The session name prefix of `AssumeRoleWithWebIdentity` when none is configured (the
/// JavaScript SDK's `fromWebToken`).
pub const WEB_IDENTITY_SESSION_PREFIX: &str = "aws-sdk-js-session";
/// The session name of `AssumeRoleWithWebIdentity` when the caller gives none.
pub const ENV_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";

/// One `AssumeRoleWithWebIdentity` call for `role_arn` with `token`, in `sts_region`, within
/// `deadline`; the session name is `session_name` (a profile's `role_session_name`), else
/// `AWS_ROLE_SESSION_NAME` ([`ENV_SESSION_NAME`], as the JavaScript SDK's `fromTokenFile`), else
/// [`WEB_IDENTITY_SESSION_PREFIX`]`-<millis>`.
/// `source` names where the credentials came from, `label` the caller in messages.
#[allow(clippy::too_many_arguments)]
pub async fn assume_role_with_web_identity(
  ctx: &Context,
  sts_region: &str,
  token: String,
  role_arn: &str,
  session_name: Option<&str>,
  source: &'static str,
  label: &str,
  deadline: Deadline,
) -> Result<Option<AwsCredentials>> {
  let provider = WebIdentity {
    conf: super::sdk::sdk_config(ctx, sts_region),
    token: crate::redact::Secret::new(token),
    role_arn: role_arn.to_string(),
    session_name: session_name
      .or_else(|| ctx.env.get(ENV_SESSION_NAME))
      .map(str::to_string)
      .unwrap_or_else(|| format!("{WEB_IDENTITY_SESSION_PREFIX}-{}", epoch_millis(ctx.clock.now()) as u64)),
  };
  super::sdk::provide_named(&provider, source, label, deadline).await
}

/// One `AssumeRoleWithWebIdentity` call as an aws-config provider, so that
/// [`super::sdk::provide_named`] bounds it and maps AWS STS errors as for aws-config's providers.
#[derive(Debug)]
struct WebIdentity {
  conf: aws_config::SdkConfig,
  token: crate::redact::Secret,
  role_arn: String,
  session_name: String,
}

impl WebIdentity {
  async fn assume(&self) -> std::result::Result<Credentials, CredentialsError> {
    let out = aws_sdk_sts::Client::new(&self.conf)
      .assume_role_with_web_identity()
      .role_arn(&self.role_arn)
      .role_session_name(&self.session_name)
      .web_identity_token(self.token.expose())
      .send()
      .await
      .map_err(CredentialsError::provider_error)?;
    into_credentials(out.credentials, out.assumed_role_user, "WebIdentityToken")
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

/// The credentials of an AWS STS answer, with the account of the assumed role's ARN
/// (`arn:aws:sts::<account>:assumed-role/...`), as aws-config's `sts::util::into_credentials`.
fn into_credentials(
  credentials: Option<aws_sdk_sts::types::Credentials>,
  user: Option<aws_sdk_sts::types::AssumedRoleUser>,
  provider: &'static str,
) -> std::result::Result<Credentials, CredentialsError> {
  let Some(c) = credentials else {
    return Err(CredentialsError::unhandled("AWS STS returned no credentials"));
  };
  let expiry =
    SystemTime::try_from(c.expiration).map_err(|_| CredentialsError::unhandled("AWS STS returned an Expiration out of range"))?;
  let mut builder = Credentials::builder()
    .access_key_id(c.access_key_id)
    .secret_access_key(c.secret_access_key)
    .session_token(c.session_token)
    .expiry(expiry)
    .provider_name(provider);
  if let Some(account) = user.as_ref().and_then(|u| u.arn.split(':').nth(4)).filter(|a| !a.is_empty()) {
    builder = builder.account_id(account);
  }
  Ok(builder.build())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_session_name_is_the_profiles_or_the_default() {
    let mut hop = RoleHop {
      profile: "app".into(),
      role_arn: "arn:aws:iam::1:role/r".into(),
      external_id: None,
      session_name: None,
      duration_seconds: None,
      mfa_serial: None,
    };
    let now = UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
    assert_eq!(session_name(&hop, now), "aws-sdk-js-1700000000123");
    hop.session_name = Some("mine".into());
    assert_eq!(session_name(&hop, now), "mine");
  }

  #[test]
  fn duration_seconds_is_sent_when_set_and_checked() {
    let hop = |d: Option<&str>| RoleHop {
      profile: "app".into(),
      role_arn: "arn:aws:iam::1:role/r".into(),
      external_id: None,
      session_name: None,
      duration_seconds: d.map(str::to_string),
      mfa_serial: None,
    };
    assert_eq!(duration_seconds(&hop(None)).unwrap(), 3600);
    assert_eq!(duration_seconds(&hop(Some("43200"))).unwrap(), 43_200);
    assert_eq!(duration_seconds(&hop(Some(" 900 "))).unwrap(), 900);
    assert_eq!(duration_seconds(&hop(Some("7200s"))).unwrap(), 7200, "parseInt reads the leading digits");
    for bad in ["899", "43201", "1h", "", "-1", "99999999999999999999"] {
      let e = duration_seconds(&hop(Some(bad))).unwrap_err();
      assert_eq!(e.code(), "CONFIG_INVALID", "{bad}");
      assert!(e.message().starts_with("profile app: duration_seconds"), "{e}");
    }
  }
}
