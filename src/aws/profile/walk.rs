//! Which credentials the selected profile gives, and how: the walk of the JavaScript SDK's ini
//! provider over the shared config and credentials files (part of the profile link). One walk for
//! loading ([`super::load`]) and for `doctor` ([`super::describe`]).
//!
//! Spec: `@aws-sdk/credential-provider-ini` `resolveProfileData` / `resolveAssumeRoleCredentials`
//! (what `fromNodeProviderChain()` users replace), over the files as aws-config's parser reads them
//! (`[profile NAME]` / `[default]` in the config file, `[NAME]` in the credentials file, the
//! credentials file winning key by key, `[default]` ignored when `[profile default]` exists, as in
//! both SDKs). An **empty value counts as unset**: the JavaScript SDK's ini parser never stores
//! `key =` (it opens a sub-section).
//!
//! For each profile, in order:
//! 1. After the first profile, **static keys** (`aws_access_key_id` + `aws_secret_access_key`,
//!    optional `aws_session_token`) end the chain.
//! 2. A **hop** (`isAssumeRoleProfile`): `role_arn` with exactly one of `source_profile` and
//!    `credential_source` (with both it is no hop, as there). `source_profile` is followed; a
//!    source profile already followed is a loop (the selected profile is not counted until it is
//!    reached again, so `a` → `b` → `a` ends at `a`'s static keys if it has them, as in the
//!    JavaScript SDK). `credential_source` (`Environment`, `EcsContainer`,
//!    `Ec2InstanceMetadata`) ends the chain: the chain's own link for it gives the credentials. A
//!    source profile with `credential_source` and no `role_arn` gives that source's credentials
//!    without assuming a role (`isCredentialSourceWithoutRoleArn`).
//! 3. Otherwise, the profile's own credentials: static keys, then web identity (`role_arn` +
//!    `web_identity_token_file`), then `credential_process`, then SSO (`sso_session`,
//!    `sso_start_url`, any `sso_*` key) and `login_session` (`aws login`), which aws-config's
//!    providers load.
//!
//! The outcome ([`Walk`], in [`super::plan`]): a [`Plan`] this crate runs (its [`Base`] and the roles to assume,
//! innermost first); aws-config's, for a selected profile that is SSO or `aws login` and for a
//! chain it should report (a loop, a missing or empty source profile, unparsable files); or no
//! credentials at all (a profile with only a `region`, a key without its secret, or no such
//! profile), where the JavaScript chain passes to its next provider, and so does ours.

#![allow(deprecated)] // aws-config still re-exports EnvConfigFiles only under its old name

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::task::{Poll, Waker};

use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::profile::ProfileSet;

use crate::context::Context;
use crate::error::Result;
use crate::redact::Secret;

use crate::aws::credentials::AwsCredentials;

use super::plan::{Base, Plan, RoleHop, Walk, WebIdentityProfile, PROCESS_KEY, STATIC_SOURCE};

/// The keys that make a profile an SSO profile (the JavaScript SDK's `isSsoProfile`).
const SSO_KEYS: [&str; 5] = ["sso_session", "sso_start_url", "sso_account_id", "sso_region", "sso_role_name"];

/// The walk for the selected profile of the context's files. Files that do not exist are skipped;
/// one that exists but cannot be read is an error (`CONFIG_INVALID` naming it).
pub fn walk_selected(ctx: &Context) -> Result<Walk> {
  let (config, credentials) = super::file::paths(ctx);
  let existing = |p: Option<PathBuf>| -> Result<Option<(PathBuf, String)>> {
    match p {
      Some(p) => Ok(super::file::read(ctx, &p)?.map(|text| (p, text))),
      None => Ok(None),
    }
  };
  let (config, credentials) = (existing(config)?, existing(credentials)?);
  if config.is_none() && credentials.is_none() {
    return Ok(Walk::NoCredentials);
  }
  let selected = super::file::profile_name(ctx);
  Ok(match parse(ctx, config, credentials, selected) {
    Ok(set) => walk(&set, selected),
    Err(why) => Walk::AwsConfig { via: None, what: format!("the shared files cannot be parsed ({why})") },
  })
}

/// The files as aws-config's parser reads them, from texts already read. The parser is an `async
/// fn` whose only await is the read of the in-memory files handed to it; it is polled once, and a
/// parser that would ever wait is reported as an error instead of blocking.
fn parse(
  ctx: &Context,
  config: Option<(PathBuf, String)>,
  credentials: Option<(PathBuf, String)>,
  selected: &str,
) -> std::result::Result<ProfileSet, String> {
  let mut files = ProfileFiles::builder().include_default_config_file(false).include_default_credentials_file(false);
  let mut contents = HashMap::new();
  for (kind, file) in [(ProfileFileKind::Config, config), (ProfileFileKind::Credentials, credentials)] {
    let Some((path, text)) = file else { continue };
    files = files.with_file(kind, &path);
    contents.insert(path.to_string_lossy().into_owned(), text.into_bytes());
  }
  let fs = aws_types::os_shim_internal::Fs::from_map(contents);
  let env = aws_types::os_shim_internal::Env::from(ctx.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>());
  let files = files.build();
  let future = aws_config::profile::load(&fs, &env, &files, Some(selected.to_string().into()));
  let mut future = std::pin::pin!(future);
  match future.as_mut().poll(&mut std::task::Context::from_waker(Waker::noop())) {
    Poll::Ready(Ok(set)) => Ok(set),
    Poll::Ready(Err(e)) => Err(e.to_string()),
    Poll::Pending => Err("the profile parser did not finish at once".to_string()),
  }
}

/// A profile's non-empty value for `key`.
fn value<'a>(set: &'a ProfileSet, profile: &str, key: &str) -> Option<&'a str> {
  set.get_profile(profile)?.get(key).filter(|v| !v.is_empty())
}

/// The walk over parsed profiles (see the module docs).
pub fn walk(set: &ProfileSet, selected: &str) -> Walk {
  let mut name = selected.to_string();
  // The JavaScript SDK's `visitedProfiles`: the source profiles followed so far.
  let mut visited: Vec<String> = Vec::new();
  let mut roles: Vec<RoleHop> = Vec::new();
  // The JavaScript SDK's `isAssumeRoleRecursiveCall`: a source profile with `credential_source`
  // and no `role_arn`.
  let mut source_only = false;
  let base = loop {
    let chain = |what: String, visited: Vec<String>, roles: &[RoleHop]| {
      if roles.is_empty() {
        Walk::AwsConfig { via: None, what }
      } else {
        Walk::AwsConfig { via: Some(visited), what }
      }
    };
    if set.get_profile(&name).is_none() {
      return if roles.is_empty() { Walk::NoCredentials } else { chain("no such profile".to_string(), visited, &roles) };
    }
    let get = |key: &str| value(set, &name, key);
    let keys = static_keys(get("aws_access_key_id"), get("aws_secret_access_key"), get("aws_session_token"), get("aws_account_id"));
    if !visited.is_empty() {
      if let Some(credentials) = keys.clone() {
        break Base::StaticKeys { profile: name, credentials };
      }
    }
    let (role_arn, source_profile, credential_source) = (get("role_arn"), get("source_profile"), get("credential_source"));
    // A hop (`isAssumeRoleProfile`: `role_arn` with exactly one source), or a pass-through source
    // profile (`credential_source` and no `role_arn`: its source's credentials, no role of its own).
    let hop = role_arn.filter(|_| source_profile.is_some() != credential_source.is_some());
    if let Some(role_arn) = hop {
      roles.push(RoleHop {
        profile: name.clone(),
        role_arn: role_arn.to_string(),
        external_id: get("external_id").map(str::to_string),
        session_name: get("role_session_name").map(str::to_string),
        duration_seconds: get("duration_seconds").map(str::to_string),
        mfa_serial: get("mfa_serial").map(str::to_string),
      });
    }
    if hop.is_some() || source_only {
      match (source_profile, credential_source) {
        (Some(next), _) => {
          if visited.iter().any(|v| v == next) {
            return chain("a source_profile loop".to_string(), visited, &roles);
          }
          source_only = is_source_only(set, next);
          visited.push(next.to_string());
          name = next.to_string();
          continue;
        }
        (None, Some(source)) => break Base::CredentialSource { profile: name.clone(), source: source.to_string() },
        // Not reached: a hop has a source, and a pass-through profile has `credential_source`.
        (None, None) => return chain("no credentials found for it".to_string(), visited, &roles),
      }
    }
    if let Some(credentials) = keys {
      break Base::StaticKeys { profile: name, credentials };
    }
    if let (Some(role_arn), Some(token_file)) = (role_arn, get("web_identity_token_file")) {
      break Base::WebIdentity(WebIdentityProfile {
        profile: name.clone(),
        role_arn: role_arn.to_string(),
        token_file: token_file.to_string(),
        session_name: get("role_session_name").map(str::to_string),
      });
    }
    if let Some(command) = get(PROCESS_KEY) {
      break Base::Process { profile: name.clone(), command: command.to_string() };
    }
    let what = if get("sso_session").is_some() {
      Some("SSO")
    } else if get("sso_start_url").is_some() {
      Some("SSO (legacy)")
    } else if SSO_KEYS.iter().any(|k| get(k).is_some()) {
      Some("SSO")
    } else if get("login_session").is_some() {
      Some("aws login session")
    } else {
      None
    };
    match (what, roles.is_empty()) {
      (Some(what), true) => return Walk::AwsConfig { via: None, what: what.to_string() },
      (Some(what), false) => break Base::Profile { profile: name.clone(), what },
      (None, true) => return Walk::NoCredentials,
      (None, false) => return chain("no credentials found for it".to_string(), visited, &roles),
    }
  };
  roles.reverse();
  Walk::Ours(Plan { base, roles, via: visited, region: value(set, selected, "region").map(str::to_string) })
}

/// The JavaScript SDK's `isCredentialSourceWithoutRoleArn`.
fn is_source_only(set: &ProfileSet, profile: &str) -> bool {
  value(set, profile, "role_arn").is_none() && value(set, profile, "credential_source").is_some()
}

/// Static keys, as the JavaScript SDK's ini provider reads them.
fn static_keys(id: Option<&str>, secret: Option<&str>, token: Option<&str>, account: Option<&str>) -> Option<AwsCredentials> {
  Some(AwsCredentials {
    access_key_id: id?.to_string(),
    secret_access_key: Secret::new(secret?.to_string()),
    session_token: token.map(|t| Secret::new(t.to_string())),
    expiration: None,
    account_id: account.map(str::to_string),
    source: STATIC_SOURCE,
  })
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::{EnvSnapshot, ManualClock, OsFs};
  use std::sync::Arc;

  /// The walk for profile `profile` of a config file with `config` (and a credentials file with
  /// `credentials`).
  fn walk_of(profile: &str, config: &str, credentials: Option<&str>) -> Walk {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("aws-wif-walk-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config"), config).unwrap();
    if let Some(text) = credentials {
      std::fs::write(dir.join("credentials"), text).unwrap();
    }
    let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let vars =
      [("AWS_CONFIG_FILE", path("config")), ("AWS_SHARED_CREDENTIALS_FILE", path("credentials")), ("AWS_PROFILE", profile.to_string())];
    let c = Context::new(EnvSnapshot::from_pairs(vars), Arc::new(OsFs), Arc::new(ManualClock::at_epoch_secs(1_700_000_000)));
    let walk = walk_selected(&c).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    walk
  }

  /// A walk in one line: `ours StaticKeys(base) mid:m app:r`, `aws-config [mid] a loop`, `none`.
  fn shape(w: &Walk) -> String {
    match w {
      Walk::Ours(p) => {
        let roles: Vec<String> =
          p.roles.iter().map(|r| format!(" {}:{}", r.profile, r.role_arn.rsplit('/').next().unwrap_or_default())).collect();
        let kind = format!("{:?}", p.base);
        format!("ours {}({}){}", kind.split(' ').next().unwrap_or_default(), p.base.profile(), roles.concat())
      }
      Walk::AwsConfig { via: None, what } => format!("aws-config {what}"),
      Walk::AwsConfig { via: Some(via), what } => format!("aws-config [{}] {what}", via.join(",")),
      Walk::NoCredentials => "none".to_string(),
    }
  }

  fn app(text: &str) -> String {
    shape(&walk_of("app", text, None))
  }

  #[test]
  fn a_role_chain_on_a_command_is_walked_innermost_role_first() {
    let w = walk_of(
      "app",
      "[profile app]\nrole_arn = arn:aws:iam::1:role/outer\nsource_profile = mid\nrole_session_name = s\n\
       [profile mid]\nrole_arn = arn:aws:iam::1:role/inner\nsource_profile = base\nexternal_id = ext-1\nduration_seconds = 7200\n\
       [profile base]\ncredential_process = helper --password MARKER\nregion = us-west-2\n",
      None,
    );
    let Walk::Ours(p) = &w else { panic!("{w:?}") };
    assert!(matches!(&p.base, Base::Process { profile, command } if profile == "base" && command == "helper --password MARKER"));
    let hops: Vec<_> =
      p.roles.iter().map(|r| (r.profile.as_str(), r.role_arn.as_str(), r.external_id.as_deref(), r.session_name.as_deref())).collect();
    assert_eq!(hops, [("mid", "arn:aws:iam::1:role/inner", Some("ext-1"), None), ("app", "arn:aws:iam::1:role/outer", None, Some("s"))]);
    assert_eq!(p.roles.iter().map(|r| r.duration_seconds.as_deref()).collect::<Vec<_>>(), [Some("7200"), None]);
    assert_eq!(p.via, ["mid", "base"]);
    assert!(!format!("{w:?}").contains("MARKER"), "{w:?}");
  }

  #[test]
  fn bases_in_the_javascript_sdks_order() {
    let role = "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\n";
    for (why, base, expected) in [
      (
        "static keys before a command",
        "credential_process = helper\naws_access_key_id = AKIDBASEEXAMPLE\naws_secret_access_key = MARKER-S\n",
        "ours StaticKeys(base) app:r",
      ),
      (
        "static keys end the chain on a role profile",
        "role_arn = arn:aws:iam::1:role/m\nsource_profile = x\naws_access_key_id = AKIDBASEEXAMPLE\naws_secret_access_key = MARKER-S\n",
        "ours StaticKeys(base) app:r",
      ),
      ("SSO: aws-config loads the base", "sso_session = s\nsso_account_id = 1\nsso_role_name = r\n", "ours Profile(base) app:r"),
      ("aws login: aws-config loads the base", "login_session = arn:aws:iam::1:user/u\n", "ours Profile(base) app:r"),
      (
        "web identity before a command",
        "role_arn = arn:aws:iam::1:role/w\nweb_identity_token_file = /t\ncredential_process = helper\n",
        "ours WebIdentity(base) app:r",
      ),
      (
        "role_arn without a source is no hop: the command runs",
        "role_arn = arn:aws:iam::1:role/w\ncredential_process = helper\n",
        "ours Process(base) app:r",
      ),
      (
        "credential_source without role_arn: the source's credentials",
        "credential_source = Ec2InstanceMetadata\n",
        "ours CredentialSource(base) app:r",
      ),
      ("nothing usable: aws-config reports it", "region = eu-west-1\n", "aws-config [base] no credentials found for it"),
    ] {
      assert_eq!(app(&format!("{role}[profile base]\n{base}")), expected, "{why}");
    }
  }

  #[test]
  fn hops_follow_is_assume_role_profile() {
    for (why, text, expected) in [
      ("credential_source", "[profile app]\nrole_arn = arn:aws:iam::1:role/r\ncredential_source = Environment\n", "ours CredentialSource(app) app:r"),
      (
        "both sources: no hop (isAssumeRoleProfile wants exactly one), nothing else",
        "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\ncredential_source = Environment\n[profile base]\ncredential_process = helper\n",
        "none",
      ),
      (
        "credential_source further in",
        "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = mid\n[profile mid]\nrole_arn = arn:aws:iam::1:role/m\ncredential_source = EcsContainer\n",
        "ours CredentialSource(mid) mid:m app:r",
      ),
      (
        "its own source, with keys",
        "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = app\naws_access_key_id = AKIDSELFEXAMPLE\naws_secret_access_key = MARKER-S\n",
        "ours StaticKeys(app) app:r",
      ),
      (
        "its own source, without keys: a loop",
        "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = app\ncredential_process = helper\n",
        "aws-config [app] a source_profile loop",
      ),
      (
        "back to the selected profile, which has keys (the JavaScript SDK does not count it as visited)",
        "[profile app]\nrole_arn = arn:aws:iam::1:role/outer\nsource_profile = mid\naws_access_key_id = AKIDAPPEXAMPLE\naws_secret_access_key = MARKER-S\n\
         [profile mid]\nrole_arn = arn:aws:iam::1:role/m\nsource_profile = app\n",
        "ours StaticKeys(app) mid:m app:outer",
      ),
      (
        "a loop without keys",
        "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = mid\n[profile mid]\nrole_arn = arn:aws:iam::1:role/m\nsource_profile = app\n",
        "aws-config [mid,app] a source_profile loop",
      ),
      ("a missing source", "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = nowhere\n", "aws-config [nowhere] no such profile"),
      ("web identity with a source is a hop", "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\nweb_identity_token_file = /t\n[profile base]\naws_access_key_id = AKID\naws_secret_access_key = s\n", "ours StaticKeys(base) app:r"),
    ] {
      assert_eq!(app(text), expected, "{why}");
    }
  }

  #[test]
  fn a_single_profile() {
    for (why, text, expected) in [
      ("static keys", "[profile app]\naws_access_key_id = AKID\naws_secret_access_key = MARKER-S\n", "ours StaticKeys(app)"),
      ("web identity", "[profile app]\nrole_arn = arn:aws:iam::1:role/w\nweb_identity_token_file = /t\n", "ours WebIdentity(app)"),
      ("a command", "[profile app]\ncredential_process = helper\n", "ours Process(app)"),
      ("SSO", "[profile app]\nsso_session = s\nsso_account_id = 1\nsso_role_name = r\n", "aws-config SSO"),
      ("legacy SSO", "[profile app]\nsso_start_url = https://x.awsapps.com/start\nsso_region = us-east-1\n", "aws-config SSO (legacy)"),
      ("aws login", "[profile app]\nlogin_session = arn:aws:iam::1:user/u\n", "aws-config aws login session"),
      ("only a region", "[profile app]\nregion = eu-west-1\n", "none"),
      ("a key without its secret", "[profile app]\naws_access_key_id = AKID\n", "none"),
      ("role_arn alone", "[profile app]\nrole_arn = arn:aws:iam::1:role/r\n", "none"),
      ("no such profile", "[profile other]\ncredential_process = helper\n", "none"),
      ("keys beside a command, SSO or login: the keys (static keys come first)", "[profile app]\naws_access_key_id = AKID\naws_secret_access_key = s\ncredential_process = helper\nsso_region = us-east-1\nlogin_session = arn:aws:iam::1:user/u\n", "ours StaticKeys(app)"),
    ] {
      assert_eq!(app(text), expected, "{why}");
    }
    // The files merge: keys in the credentials file, a command in the config file.
    let w = walk_of(
      "default",
      "[default]\ncredential_process = helper\n",
      Some("[default]\naws_access_key_id = AKID\naws_secret_access_key = MARKER-S\n"),
    );
    assert_eq!(shape(&w), "ours StaticKeys(default)");
  }

  #[test]
  fn empty_values_count_as_unset_as_in_the_javascript_parser() {
    assert_eq!(app("[profile app]\ncredential_process =\n"), "none");
    assert_eq!(app("[profile app]\naws_access_key_id =\naws_secret_access_key =\n"), "none");
    let w = walk_of(
      "app",
      "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\nmfa_serial =\nduration_seconds =\nrole_session_name =\nexternal_id =\n\
       [profile base]\naws_access_key_id = AKID\naws_secret_access_key = s\n",
      None,
    );
    let Walk::Ours(p) = &w else { panic!("{w:?}") };
    let hop = &p.roles[0];
    assert_eq!((&hop.mfa_serial, &hop.duration_seconds, &hop.session_name, &hop.external_id), (&None, &None, &None, &None));
  }

  #[test]
  fn profile_default_hides_default_in_the_config_file() {
    let w = walk_of("default", "[default]\ncredential_process = helper\n[profile default]\nregion = eu-west-1\n", None);
    assert_eq!(shape(&w), "none");
    let w = walk_of("default", "[default]\nregion = eu-west-1\n", None);
    assert_eq!(shape(&w), "none");
    let w = walk_of("default", "[default]\ncredential_process = helper\n", None);
    assert_eq!(shape(&w), "ours Process(default)");
  }

  #[test]
  fn a_hop_with_mfa_serial_is_refused_before_anything_is_sent() {
    let w = walk_of(
      "app",
      "[profile app]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = mid\n\
       [profile mid]\nrole_arn = arn:aws:iam::1:role/m\nsource_profile = base\nmfa_serial = arn:aws:iam::1:mfa/u\n\
       [profile base]\naws_access_key_id = AKIDBASEEXAMPLE\naws_secret_access_key = s\n",
      None,
    );
    let Walk::Ours(p) = w else { panic!() };
    let e = crate::aws::sts::check_mfa(&p.roles).unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID", "{e}");
    assert!(e.message().starts_with("profile mid requires multi-factor authentication (mfa_serial)"), "{e}");
    assert!(crate::aws::sts::check_mfa(&p.roles[..0]).is_ok());
  }

  #[test]
  fn debug_never_shows_a_command_or_a_key() {
    let w = walk_of("app", "[profile app]\ncredential_process = helper --password MARKER-CMD\n", None);
    assert!(!format!("{w:?}").contains("MARKER"), "{w:?}");
    let w = walk_of(
      "app",
      "[profile app]\naws_access_key_id = AKIDMARKERKEY\naws_secret_access_key = MARKER-S\naws_session_token = MARKER-T\n",
      None,
    );
    let text = format!("{w:?}");
    assert!(!text.contains("MARKER") && !text.contains("AKIDMARKERKEY"), "{text}");
  }
}
