//! The process warnings the package's JavaScript emits (once per process thread each), worded here,
//! beside the rules that cause them, so that JavaScript only emits:
//!
//! * `AWS_WIF_SUPPLIER_IGNORED_SETTING`: each message of a chain's `ignoredSettings`;
//! * `AWS_WIF_SUPPLIER_PROFILE_OVER_ENV_KEYS`: `AWS_PROFILE` makes the chain skip environment keys
//!   that are set too (`profileOverridesEnvKeys`, [`crate::aws::env_keys::skipped_for_profile`]).
//!
//! Internal: `__warnings()` (no TypeScript; `index.js` does not export it) gives
//! `{ ignoredSetting: { code }, profileOverEnvKeys: { code, message } }`.

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

/// The code of the warning for a setting the chain ignores (its message is the chain's).
pub const IGNORED_SETTING: &str = "AWS_WIF_SUPPLIER_IGNORED_SETTING";
/// The code of the warning for `AWS_PROFILE` over environment keys.
pub const PROFILE_OVER_ENV_KEYS: &str = "AWS_WIF_SUPPLIER_PROFILE_OVER_ENV_KEYS";
/// Its message.
pub const PROFILE_OVER_ENV_KEYS_MESSAGE: &str = "Both AWS_PROFILE and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are set: the AWS_PROFILE profile is used and the keys are ignored, as the AWS SDK for JavaScript does. Unset one of them.";

/// The warnings' codes and fixed messages.
#[napi(js_name = "__warnings", skip_typescript)]
pub fn warnings(env: &Env) -> Result<Object<'_>> {
  let mut ignored = Object::new(env)?;
  ignored.set("code", IGNORED_SETTING)?;
  let mut profile = Object::new(env)?;
  profile.set("code", PROFILE_OVER_ENV_KEYS)?;
  profile.set("message", PROFILE_OVER_ENV_KEYS_MESSAGE)?;
  let mut all = Object::new(env)?;
  all.set("ignoredSetting", ignored)?;
  all.set("profileOverEnvKeys", profile)?;
  Ok(all)
}
