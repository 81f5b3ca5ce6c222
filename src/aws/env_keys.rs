//! Static keys from the environment (first link of the chain, as in every AWS SDK).
//!
//! `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`. Blank values
//! count as unset. Only one of the two keys set: the link is skipped and the next one answers, as
//! in both the JavaScript SDK (`fromEnv` passes to the next provider) and aws-config (its
//! environment provider says "not loaded"); [`ignored`] says so, and the package's JavaScript turns
//! that into a process warning, once.
//!
//! **`AWS_PROFILE` wins over these keys**, as in the JavaScript SDK's `fromNodeProviderChain()`
//! (its `fromEnv` is skipped when `AWS_PROFILE` is set, with a warning), which is what this
//! package replaces; aws-config would take the keys. The link is then skipped and says why.

use crate::context::Context;
use crate::http::Deadline;
use crate::redact::Secret;

use super::credentials::AwsCredentials;
use super::link::{evidence, Description, Link, LinkContext, LoadFuture, Loaded, Plan, Role};

pub const LINK: &str = "environment";
const VARS: [&str; 3] = [ENV_ACCESS_KEY_ID, ENV_SECRET_ACCESS_KEY, "AWS_SESSION_TOKEN"];
pub const ENV_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const ENV_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";

fn profile_overrides(ctx: &Context) -> bool {
  ctx.env.get(super::profile::file::ENV_PROFILE).is_some()
}

/// Keys are set but skipped because `AWS_PROFILE` is set (worth a warning, as the JS SDK gives).
pub fn skipped_for_profile(ctx: &Context) -> bool {
  profile_overrides(ctx) && ctx.env.get("AWS_ACCESS_KEY_ID").is_some()
}

/// Why keys that are set are not used, when only one of the two is (not when `AWS_PROFILE` is set:
/// see [`skipped_for_profile`]).
pub fn ignored(ctx: &Context) -> Option<String> {
  if profile_overrides(ctx) {
    return None;
  }
  let (set, unset) = match (ctx.env.get(ENV_ACCESS_KEY_ID), ctx.env.get(ENV_SECRET_ACCESS_KEY)) {
    (Some(_), None) => (ENV_ACCESS_KEY_ID, ENV_SECRET_ACCESS_KEY),
    (None, Some(_)) => (ENV_SECRET_ACCESS_KEY, ENV_ACCESS_KEY_ID),
    _ => return None,
  };
  Some(format!(
    "{set} is set but {unset} is not: the environment keys are ignored and the next credential source is used, as the AWS SDKs do"
  ))
}

pub fn describe(ctx: &Context) -> Description {
  let set = evidence(ctx, &VARS);
  if set.is_empty() {
    return Description::skipped(LINK, "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
  }
  if profile_overrides(ctx) {
    return Description::skipped(
      LINK,
      "environment: AWS_ACCESS_KEY_ID is set but skipped because AWS_PROFILE is set (as the JavaScript SDK's chain does)",
    );
  }
  if let Some(why) = ignored(ctx) {
    return Description::skipped(LINK, format!("environment: {why}"));
  }
  Description::configured(LINK, "static environment keys", set, "environment: static keys")
}

/// Why a profile's `credential_source = Environment` finds no keys.
const NOT_BOTH: &str = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set";

/// The link: the keys, read when planned.
pub struct Environment;

impl Link for Environment {
  /// The keys (`None` when only `AWS_SESSION_TOKEN` is set: described as configured, and passes).
  type Todo = Option<AwsCredentials>;
  const CREDENTIAL_SOURCE: Option<&'static str> = Some("Environment");

  /// In the chain, as [`describe`] says; as a profile's `credential_source = Environment`, the
  /// keys whether or not `AWS_PROFILE` is set.
  fn plan(&self, lc: &LinkContext<'_>, role: Role) -> Plan<Self::Todo> {
    let ctx = &lc.ctx;
    match role {
      Role::Chain => Plan::new(describe(ctx), || load(ctx)).ignoring(ignored(ctx)),
      Role::CredentialSource => match keys(ctx) {
        Some(k) => Plan::configured(Description::configured(LINK, "static environment keys", evidence(ctx, &VARS), "environment"), Some(k)),
        None => Plan::skipped(Description::skipped(LINK, NOT_BOTH)),
      },
    }
  }

  fn load<'a>(&'a self, todo: &'a Self::Todo, _: &'a LinkContext<'a>, _: Deadline) -> LoadFuture<'a> {
    let loaded = match todo {
      Some(k) => Loaded::Found(k.clone()),
      None => Loaded::Passed(NOT_BOTH.to_string()),
    };
    Box::pin(async move { Ok(loaded) })
  }
}

/// The keys (as the chain's link: `None` when `AWS_PROFILE` is set, see the module docs).
pub fn load(ctx: &Context) -> Option<AwsCredentials> {
  if profile_overrides(ctx) {
    return None;
  }
  keys(ctx)
}

/// The keys, whether or not `AWS_PROFILE` is set (a profile's `credential_source = Environment`
/// reads them).
fn keys(ctx: &Context) -> Option<AwsCredentials> {
  match (ctx.env.get("AWS_ACCESS_KEY_ID"), ctx.env.get("AWS_SECRET_ACCESS_KEY")) {
    (None, None) => None,
    (Some(ak), Some(sk)) => Some(AwsCredentials {
      access_key_id: ak.trim().to_string(),
      secret_access_key: Secret::new(sk.trim()),
      session_token: ctx.env.get("AWS_SESSION_TOKEN").map(|t| Secret::new(t.trim())),
      expiration: None,
      account_id: None,
      source: "environment",
    }),
    // Only one of the two: skipped ([`ignored`] says why).
    (Some(_), None) | (None, Some(_)) => None,
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::{EnvSnapshot, ManualClock, OsFs};
  use std::sync::Arc;

  fn ctx(vars: &[(&str, &str)]) -> Context {
    Context::new(EnvSnapshot::from_pairs(vars.iter().copied()), Arc::new(OsFs), Arc::new(ManualClock::at_epoch_secs(0)))
  }

  #[test]
  fn keys_with_and_without_token() {
    assert!(load(&ctx(&[])).is_none());
    let c = load(&ctx(&[("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "MARKER")])).unwrap();
    assert!(c.session_token.is_none());
    assert!(!format!("{c:?}").contains("MARKER"));
    let c = load(&ctx(&[("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_SESSION_TOKEN", "t")])).unwrap();
    assert_eq!(c.session_token.unwrap().expose(), "t");
    for (var, other) in [("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")] {
      let half = ctx(&[(var, "MARKER-HALF")]);
      assert!(load(&half).is_none(), "only {var}: the next link answers");
      let why = ignored(&half).expect("a reason");
      assert!(why.starts_with(&format!("{var} is set but {other} is not")), "{why}");
      assert!(!why.contains("MARKER"));
      assert!(!describe(&half).configured);
    }
    assert_eq!(ignored(&ctx(&[("AWS_ACCESS_KEY_ID", "A"), ("AWS_PROFILE", "p")])), None, "AWS_PROFILE has its own warning");
    assert_eq!(ignored(&ctx(&[("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "s")])), None);
  }
}
