//! AWS STS `AssumeRole` for profile role chains: `role_arn` + `source_profile` profiles, one or
//! more hops, whatever their base (part of the profile link). [`plan`] walks the chain; the base
//! gives the first credentials and [`assume_chain`] assumes each role with them.
//!
//! Spec: the JavaScript SDK's ini provider (`@aws-sdk/credential-provider-ini`
//! `resolveAssumeRoleCredentials`, which `fromNodeProviderChain()` users replace): AWS STS
//! `AssumeRole` (`Action=AssumeRole`, `Version=2011-06-15`, `RoleArn`, `RoleSessionName`,
//! `ExternalId` when the profile has `external_id`, `DurationSeconds`), a form POST signed with
//! SigV4 (service `sts`) by the credentials of the hop before it.
//!
//! * **The walk** ([`plan`]), as aws-config's profile resolver and the JavaScript SDK follow it:
//!   from the selected profile, each profile with `role_arn` and `source_profile` is a hop; after
//!   the first profile, static keys (`aws_access_key_id` + `aws_secret_access_key`) end the chain;
//!   a profile that names itself as `source_profile` uses its own static keys. The base is then
//!   static keys ([`Base::StaticKeys`]), a `credential_source` ([`Base::CredentialSource`]:
//!   `Environment`, `EcsContainer`, `Ec2InstanceMetadata`, loaded by the chain's own links, with
//!   their bounds and checks), a web-identity profile ([`Base::WebIdentity`], sent by
//!   [`super::web_identity`]), a `credential_process` profile ([`Base::Process`], run by
//!   [`super::process`]), or any other profile ([`Base::Profile`]: SSO, `aws login`, which
//!   aws-config's profile provider loads on its own); each profile is tried in the JavaScript
//!   SDK's order (a hop, static keys, web identity, command, the rest; `source_profile` before
//!   `credential_source`). A selected profile that is web identity or a command is a plan without
//!   roles. A loop, a missing profile or unparsable files give no plan: aws-config then loads the
//!   selected profile and reports the problem, as it loads a single profile with static keys, SSO
//!   or `aws login`.
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

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::future::ProvideCredentials as ProvideFuture;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;

use crate::env::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;
use crate::redact::Secret;

use super::credentials::AwsCredentials;

/// The session name prefix when a profile has no `role_session_name` (the JavaScript SDK's).
pub const DEFAULT_SESSION_PREFIX: &str = "aws-sdk-js";

/// One role of a profile chain: the profile that has `role_arn`, and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleHop {
  pub profile: String,
  pub role_arn: String,
  pub external_id: Option<String>,
  pub session_name: Option<String>,
  /// The profile's `duration_seconds`, as written (checked by [`duration_seconds`]).
  pub duration_seconds: Option<String>,
  /// The profile's `mfa_serial` (refused by [`check_mfa`]).
  pub mfa_serial: Option<String>,
}

/// Where a role chain gets its first credentials (see the module docs).
#[derive(Clone)]
pub enum Base {
  /// A `credential_process` profile, and its command ([`super::process`] runs it).
  Process { profile: String, command: String },
  /// A profile's static keys.
  StaticKeys { profile: String, credentials: AwsCredentials },
  /// A web-identity profile ([`super::web_identity::load_profile`] sends it).
  WebIdentity(WebIdentityProfile),
  /// A profile's `credential_source`: `Environment`, `EcsContainer` or `Ec2InstanceMetadata`,
  /// which the chain's own links load ([`CREDENTIAL_SOURCES`]; anything else is
  /// `CONFIG_INVALID` when loaded).
  CredentialSource { profile: String, source: String },
  /// Any other profile, which aws-config's profile provider loads.
  Profile { profile: String },
}

impl Base {
  /// The profile the base comes from.
  pub fn profile(&self) -> &str {
    match self {
      Base::Process { profile, .. } | Base::StaticKeys { profile, .. } | Base::Profile { profile } => profile,
      Base::WebIdentity(w) => &w.profile,
      Base::CredentialSource { profile, .. } => profile,
    }
  }
}

/// `Debug` names the profile and the kind, never the command or the keys.
impl std::fmt::Debug for Base {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let kind = match self {
      Base::Process { .. } => "Process",
      Base::StaticKeys { .. } => "StaticKeys",
      Base::WebIdentity(_) => "WebIdentity",
      Base::CredentialSource { .. } => "CredentialSource",
      Base::Profile { .. } => "Profile",
    };
    f.debug_struct(kind).field("profile", &self.profile()).finish_non_exhaustive()
  }
}

/// A profile with `role_arn` and `web_identity_token_file`.
#[derive(Debug, Clone)]
pub struct WebIdentityProfile {
  pub profile: String,
  pub role_arn: String,
  pub token_file: String,
  pub session_name: Option<String>,
}

/// What the profile link of this crate does for the selected profile: the base, and the roles to
/// assume with its credentials, innermost (assumed first) first. No roles: the selected profile
/// is a `credential_process` or web-identity profile itself.
#[derive(Debug, Clone)]
pub struct Plan {
  pub base: Base,
  pub roles: Vec<RoleHop>,
}

/// Who loads the selected profile.
#[derive(Debug)]
pub enum Route {
  /// This crate, by the plan.
  Ours(Plan),
  /// aws-config's profile provider (static keys, SSO, `aws login`), which also reports what is
  /// wrong with a chain or the files.
  AwsConfig,
  /// Nobody: the profile exists but holds nothing the JavaScript SDK's ini provider recognises
  /// (e.g. only `region`, or a key without its secret). The JavaScript chain then passes to its next
  /// provider, and so does ours.
  NoCredentials,
}

impl Route {
  /// The plan, when the route is ours.
  pub fn ours(self) -> Option<Plan> {
    match self {
      Route::Ours(plan) => Some(plan),
      _ => None,
    }
  }
}

/// Who loads `profile` in the given files (read through the context), and how (see the module
/// docs).
pub async fn plan(ctx: &Context, config: Option<&Path>, credentials: Option<&Path>, profile: &str) -> Route {
  #![allow(deprecated)] // aws-config still re-exports EnvConfigFiles only under its old name
  use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
  let mut files = ProfileFiles::builder().include_default_config_file(false).include_default_credentials_file(false);
  let mut contents = std::collections::HashMap::new();
  for (kind, path) in [(ProfileFileKind::Config, config), (ProfileFileKind::Credentials, credentials)] {
    let Some(path) = path else { continue };
    let Ok(bytes) = ctx.fs.read(path) else { continue };
    contents.insert(path.to_string_lossy().into_owned(), bytes);
    files = files.with_file(kind, path);
  }
  if contents.is_empty() {
    return Route::AwsConfig;
  }
  let fs = aws_types::os_shim_internal::Fs::from_map(contents);
  let env = aws_types::os_shim_internal::Env::from(
    ctx.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::HashMap<_, _>>(),
  );
  match aws_config::profile::load(&fs, &env, &files.build(), Some(profile.to_string().into())).await {
    Ok(set) => match walk(&set, profile) {
      Some(plan) => Route::Ours(plan),
      None if set.get_profile(profile).is_some_and(|p| !recognised(|k| p.get(k).is_some())) => Route::NoCredentials,
      None => Route::AwsConfig,
    },
    Err(_) => Route::AwsConfig,
  }
}

/// Whether a profile is one of the kinds the JavaScript SDK's ini provider resolves (its
/// `isAssumeRoleProfile`, `isStaticCredsProfile`, `isWebIdentityProfile`, `isProcessProfile`,
/// `isSsoProfile`, `isLoginProfile`). `has` says whether the profile has a key.
pub fn recognised(has: impl Fn(&str) -> bool) -> bool {
  (has("role_arn") && (has("source_profile") || has("credential_source")))
    || (has("aws_access_key_id") && has("aws_secret_access_key"))
    || (has("role_arn") && has("web_identity_token_file"))
    || has(super::process::KEY)
    || ["sso_start_url", "sso_account_id", "sso_session", "sso_region", "sso_role_name"].iter().any(|k| has(k))
    || has("login_session")
}

/// The walk of [`plan`] over parsed profiles.
fn walk(set: &aws_config::profile::ProfileSet, selected: &str) -> Option<Plan> {
  let mut name = selected;
  let mut visited: Vec<&str> = Vec::new();
  let mut roles = Vec::new();
  let base = loop {
    let p = set.get_profile(name)?;
    if visited.contains(&name) {
      return None;
    }
    visited.push(name);
    let keys = static_keys(p);
    // After the first profile, static keys end the chain (aws-config and the JavaScript SDK agree).
    if visited.len() > 1 {
      if let Some(credentials) = keys {
        break Base::StaticKeys { profile: name.to_string(), credentials };
      }
    }
    // A hop, as the JavaScript SDK's `isAssumeRoleProfile`: `role_arn` with a source
    // (`source_profile` wins over `credential_source`, as there).
    let role_arn = p.get("role_arn");
    let (source_profile, credential_source) = (p.get("source_profile"), p.get("credential_source"));
    if let (Some(role_arn), true) = (role_arn, source_profile.is_some() || credential_source.is_some()) {
      roles.push(RoleHop {
        profile: name.to_string(),
        role_arn: role_arn.to_string(),
        external_id: p.get("external_id").map(str::to_string),
        session_name: p.get("role_session_name").map(str::to_string),
        duration_seconds: p.get("duration_seconds").map(str::to_string),
        mfa_serial: p.get("mfa_serial").map(str::to_string),
      });
      match (source_profile, credential_source) {
        // A profile that is its own source uses its own static keys.
        (Some(source), _) if source == name => break Base::StaticKeys { profile: name.to_string(), credentials: keys? },
        (Some(source), _) => {
          name = source;
          continue;
        }
        (None, Some(source)) => break Base::CredentialSource { profile: name.to_string(), source: source.to_string() },
        (None, None) => return None,
      }
    }
    // A source profile with only `credential_source` gives that source's credentials (the
    // JavaScript SDK's `isCredentialSourceWithoutRoleArn`).
    if let (Some(source), false) = (credential_source, visited.len() == 1) {
      break Base::CredentialSource { profile: name.to_string(), source: source.to_string() };
    }
    // Not a hop: the JavaScript SDK's order. Static keys (aws-config's when the profile is the
    // selected one), web identity, `credential_process`, then the rest (SSO, `aws login`).
    if keys.is_some() {
      return None;
    }
    if let (Some(role_arn), Some(token_file)) = (role_arn, p.get("web_identity_token_file")) {
      break Base::WebIdentity(WebIdentityProfile {
        profile: name.to_string(),
        role_arn: role_arn.to_string(),
        token_file: token_file.to_string(),
        session_name: p.get("role_session_name").map(str::to_string),
      });
    }
    if let Some(command) = p.get(super::process::KEY) {
      break Base::Process { profile: name.to_string(), command: command.to_string() };
    }
    if roles.is_empty() {
      return None;
    }
    break Base::Profile { profile: name.to_string() };
  };
  roles.reverse();
  Some(Plan { base, roles })
}

/// The `credential_source` values (the JavaScript SDK's and aws-config's): the chain's environment
/// keys, container endpoint or IMDS link.
pub const CREDENTIAL_SOURCES: [&str; 3] = ["Environment", "EcsContainer", "Ec2InstanceMetadata"];

/// A profile's static keys, as the JavaScript SDK's ini provider reads them (`aws_access_key_id`,
/// `aws_secret_access_key`, `aws_session_token`?, `aws_account_id`?).
fn static_keys(p: &aws_config::profile::Profile) -> Option<AwsCredentials> {
  let (id, secret) = (p.get("aws_access_key_id")?, p.get("aws_secret_access_key")?);
  Some(AwsCredentials {
    access_key_id: id.to_string(),
    secret_access_key: Secret::new(secret.to_string()),
    session_token: p.get("aws_session_token").filter(|t| !t.is_empty()).map(|t| Secret::new(t.to_string())),
    expiration: None,
    account_id: p.get("aws_account_id").map(str::to_string),
    source: STATIC_SOURCE,
  })
}

/// [`AwsCredentials::source`] of a profile's static keys.
pub const STATIC_SOURCE: &str = "profile";

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

/// The session length a hop asks for: its `duration_seconds` when set (AWS STS takes 900 to
/// 43200 s, capped by the role's maximum), else [`DEFAULT_DURATION_SECONDS`], as the JavaScript
/// SDK sends it. Anything but a whole number in that range is `CONFIG_INVALID` naming the profile.
pub fn duration_seconds(hop: &RoleHop) -> Result<i32> {
  let Some(raw) = hop.duration_seconds.as_deref() else { return Ok(DEFAULT_DURATION_SECONDS) };
  match raw.trim().parse::<i32>() {
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
  let chain = Chain {
    conf: super::sdk::sdk_config(ctx, sts_region),
    base: Credentials::new(
      base.access_key_id,
      base.secret_access_key.expose(),
      base.session_token.as_ref().map(|t| t.expose().to_string()),
      base.expiration,
      super::process::SOURCE,
    ),
    roles: roles.iter().map(|hop| Ok((hop.clone(), session_name(hop, ctx.clock.now()), duration_seconds(hop)?))).collect::<Result<_>>()?,
  };
  match super::sdk::provide_named(&chain, super::profile::LINK, &label, deadline).await? {
    Some(creds) => Ok(creds),
    None => Err(Error::new(ErrorKind::CredentialsNotFound, format!("{label}: AWS STS AssumeRole returned no credentials"))),
  }
}

/// The chain as one aws-config provider, so that [`super::sdk::provide_named`] bounds it and maps
/// its errors as for aws-config's own chains.
#[derive(Debug)]
struct Chain {
  conf: aws_config::SdkConfig,
  base: Credentials,
  /// Each hop with its session name and session length.
  roles: Vec<(RoleHop, String, i32)>,
}

impl Chain {
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

impl ProvideCredentials for Chain {
  fn provide_credentials<'a>(&'a self) -> ProvideFuture<'a>
  where
    Self: 'a,
  {
    ProvideFuture::new(self.assume())
  }
}

/// The credentials of an AWS STS answer, with the account of the assumed role's ARN
/// (`arn:aws:sts::<account>:assumed-role/...`), as aws-config's `sts::util::into_credentials`.
pub fn into_credentials(
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
  use crate::env::{EnvSnapshot, ManualClock, OsFs};
  use std::sync::Arc;

  /// [`plan`] for profile `app` of a config file with `text`.
  async fn plan_of(name: &str, text: &str) -> Option<Plan> {
    route_of(name, text).await.ours()
  }

  /// [`plan`] for profile `app` of a config file with `text`.
  async fn route_of(name: &str, text: &str) -> Route {
    let dir = std::env::temp_dir().join(format!("aws-wif-assume-role-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(&config, text).unwrap();
    let vars = [("AWS_CONFIG_FILE", config.to_str().unwrap().to_string()), ("AWS_PROFILE", "app".to_string())];
    let c = Context::new(EnvSnapshot::from_pairs(vars), Arc::new(OsFs), Arc::new(ManualClock::at_epoch_secs(1_700_000_000)));
    let route = plan(&c, Some(&config), None, "app").await;
    let _ = std::fs::remove_dir_all(&dir);
    route
  }

  /// The base's kind and profile, and each hop's profile and role, innermost first.
  fn shape(p: &Plan) -> (String, Vec<(&str, &str)>) {
    let kind = format!("{:?}", p.base);
    (kind, p.roles.iter().map(|r| (r.profile.as_str(), r.role_arn.as_str())).collect())
  }

  #[tokio::test]
  async fn a_role_chain_on_a_command_is_walked_innermost_role_first() {
    let p = plan_of(
      "process",
      "[profile app]\nrole_arn = arn:aws:iam::1:role/outer\nsource_profile = mid\nrole_session_name = s\n\
       [profile mid]\nrole_arn = arn:aws:iam::1:role/inner\nsource_profile = base\nexternal_id = ext-1\nduration_seconds = 7200\n\
       [profile base]\ncredential_process = helper --password MARKER\nregion = us-west-2\n",
    )
    .await
    .expect("a chain on a credential_process base");
    assert!(matches!(&p.base, Base::Process { profile, command } if profile == "base" && command == "helper --password MARKER"));
    let hops: Vec<_> =
      p.roles.iter().map(|r| (r.profile.as_str(), r.role_arn.as_str(), r.external_id.as_deref(), r.session_name.as_deref())).collect();
    assert_eq!(hops, [("mid", "arn:aws:iam::1:role/inner", Some("ext-1"), None), ("app", "arn:aws:iam::1:role/outer", None, Some("s"))]);
    assert_eq!(p.roles.iter().map(|r| r.duration_seconds.as_deref()).collect::<Vec<_>>(), [Some("7200"), None]);
    assert!(!format!("{p:?}").contains("MARKER"), "{p:?}");
  }

  #[tokio::test]
  async fn every_source_profile_base_is_walked() {
    let role = "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\n";
    let cases = [
      (
        "static keys end the chain after the first profile, before a command",
        format!("{role}[profile base]\ncredential_process = helper\naws_access_key_id = AKIDBASEEXAMPLE\naws_secret_access_key = MARKER-S\n"),
        "StaticKeys { profile: \"base\", .. }",
      ),
      (
        "static keys end the chain even on a profile with role_arn",
        format!("{role}[profile base]\nrole_arn = arn:aws:iam::1:role/m\nsource_profile = x\naws_access_key_id = AKIDBASEEXAMPLE\naws_secret_access_key = MARKER-S\n"),
        "StaticKeys { profile: \"base\", .. }",
      ),
      (
        "an SSO base is aws-config's to load",
        format!("{role}[profile base]\nsso_session = s\nsso_account_id = 1\nsso_role_name = r\n"),
        "Profile { profile: \"base\", .. }",
      ),
      (
        "a web identity base, before its command",
        format!("{role}[profile base]\nrole_arn = arn:aws:iam::1:role/w\nweb_identity_token_file = /t\ncredential_process = helper\n"),
        "WebIdentity { profile: \"base\", .. }",
      ),
      (
        "role_arn without a source is not a hop: the command runs (the JavaScript SDK's order)",
        format!("{role}[profile base]\nrole_arn = arn:aws:iam::1:role/w\ncredential_process = helper\n"),
        "Process { profile: \"base\", .. }",
      ),
      (
        "a login base is aws-config's to load",
        format!("{role}[profile base]\nlogin_session = arn:aws:iam::1:user/u\n"),
        "Profile { profile: \"base\", .. }",
      ),
    ];
    for (why, text, base) in cases {
      let p = plan_of("bases", &text).await.unwrap_or_else(|| panic!("{why}"));
      assert_eq!(shape(&p), (base.to_string(), vec![("app", "arn:aws:iam::1:role/r")]), "{why}");
      assert!(!format!("{p:?}").contains("MARKER"), "{why}: {p:?}");
    }
    for (why, text, shape_of) in [
      (
        "credential_source",
        "[profile app]\nrole_arn = arn:aws:iam::1:role/r\ncredential_source = Environment\n",
        ("CredentialSource { profile: \"app\", .. }", vec![("app", "arn:aws:iam::1:role/r")]),
      ),
      (
        "source_profile wins over credential_source (the JavaScript SDK's order)",
        "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\ncredential_source = Environment\n[profile base]\ncredential_process = helper\n",
        ("Process { profile: \"base\", .. }", vec![("app", "arn:aws:iam::1:role/r")]),
      ),
      (
        "credential_source further in",
        "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = mid\n[profile mid]\nrole_arn = arn:aws:iam::1:role/m\ncredential_source = EcsContainer\n",
        ("CredentialSource { profile: \"mid\", .. }", vec![("mid", "arn:aws:iam::1:role/m"), ("app", "arn:aws:iam::1:role/r")]),
      ),
      (
        "a source profile with only credential_source",
        "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = mid\n[profile mid]\ncredential_source = Ec2InstanceMetadata\n",
        ("CredentialSource { profile: \"mid\", .. }", vec![("app", "arn:aws:iam::1:role/r")]),
      ),
    ] {
      let p = plan_of("sources", text).await.unwrap_or_else(|| panic!("{why}"));
      assert_eq!(shape(&p), (shape_of.0.to_string(), shape_of.1), "{why}");
    }
    let p = plan_of("self", "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = app\naws_access_key_id = AKIDSELFEXAMPLE\naws_secret_access_key = MARKER-S\naws_session_token = MARKER-T\n")
      .await
      .expect("a profile that is its own source");
    assert_eq!(shape(&p), ("StaticKeys { profile: \"app\", .. }".to_string(), vec![("app", "arn:aws:iam::1:role/r")]));
    let Base::StaticKeys { credentials, .. } = &p.base else { unreachable!() };
    assert_eq!((credentials.access_key_id.as_str(), credentials.secret_access_key.expose()), ("AKIDSELFEXAMPLE", "MARKER-S"));
    assert_eq!(credentials.session_token.as_ref().map(|t| t.expose()), Some("MARKER-T"));
    assert!(!format!("{p:?}").contains("MARKER"), "{p:?}");
  }

  #[tokio::test]
  async fn a_web_identity_profile_is_sent_by_us_and_a_source_makes_it_a_hop() {
    let p = plan_of("web", "[profile app]\nrole_arn = arn:aws:iam::1:role/w\nweb_identity_token_file = /t\nrole_session_name = pod\n")
      .await
      .expect("a web identity profile");
    assert!(p.roles.is_empty());
    let Base::WebIdentity(w) = &p.base else { panic!("{p:?}") };
    assert_eq!(
      (w.profile.as_str(), w.role_arn.as_str(), w.token_file.as_str(), w.session_name.as_deref()),
      ("app", "arn:aws:iam::1:role/w", "/t", Some("pod"))
    );
    // The JavaScript SDK's isAssumeRoleProfile comes first: with a source_profile it is a hop.
    let p = plan_of(
      "web-hop",
      "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\nweb_identity_token_file = /t\n\
       [profile base]\naws_access_key_id = AKIDBASEEXAMPLE\naws_secret_access_key = s\n",
    )
    .await
    .expect("a hop");
    assert_eq!(shape(&p), ("StaticKeys { profile: \"base\", .. }".to_string(), vec![("app", "arn:aws:iam::1:role/r")]));
  }

  #[tokio::test]
  async fn other_profiles_stay_with_aws_config() {
    let base = "[profile base]\ncredential_process = helper\n";
    for (why, text) in [
      ("static keys alone", "[profile app]\naws_access_key_id = AKID\naws_secret_access_key = s\n".to_string()),
      ("SSO alone", "[profile app]\nsso_session = s\nsso_account_id = 1\nsso_role_name = r\n".to_string()),
      ("a loop", "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = mid\n[profile mid]\nrole_arn = arn:aws:iam::1:role/m\nsource_profile = app\n".to_string()),
      ("self reference without keys", "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = app\ncredential_process = helper\n".to_string()),
      ("a missing source", "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = nowhere\n".to_string()),
    ] {
      assert!(matches!(route_of("aws-config", &text).await, Route::AwsConfig), "{why}");
    }
    for (why, text) in [
      ("region only", "[profile app]\nregion = eu-west-1\n"),
      ("a key without its secret", "[profile app]\naws_access_key_id = AKID\n"),
      ("role_arn without a source or a token file", "[profile app]\nrole_arn = arn:aws:iam::1:role/r\n"),
    ] {
      assert!(matches!(route_of("nothing", text).await, Route::NoCredentials), "{why}: the next link answers, as in the JavaScript chain");
    }
  }

  #[tokio::test]
  async fn a_hop_with_mfa_serial_is_refused_before_anything_is_sent() {
    let p = plan_of(
      "mfa",
      "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = mid\n\
       [profile mid]\nrole_arn = arn:aws:iam::1:role/m\nsource_profile = base\nmfa_serial = arn:aws:iam::1:mfa/u\n\
       [profile base]\naws_access_key_id = AKIDBASEEXAMPLE\naws_secret_access_key = s\n",
    )
    .await
    .expect("a chain with MFA");
    let e = check_mfa(&p.roles).unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID", "{e}");
    assert!(e.message().starts_with("profile mid requires multi-factor authentication (mfa_serial)"), "{e}");
    assert!(check_mfa(&p.roles[..0]).is_ok());
  }

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
    for bad in ["899", "43201", "1h", "", "-1"] {
      let e = duration_seconds(&hop(Some(bad))).unwrap_err();
      assert_eq!(e.code(), "CONFIG_INVALID", "{bad}");
      assert!(e.message().starts_with("profile app: duration_seconds"), "{e}");
    }
  }
}
