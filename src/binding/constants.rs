//! Numbers and defaults that the package's JavaScript needs and Rust decides, so that JavaScript
//! restates none of them. All internal (no TypeScript; `index.js` does not export them):
//!
//! * `__maxIdTokenAudiences()`: the bound of the ID-token caches per configuration
//!   ([`token_store::MAX_ID_TOKEN_AUDIENCES`]); the JavaScript memos use the same one;
//! * `__authClientBackgroundRefresh(option?)`: whether an `authClient()` refreshes in the
//!   background, given its `backgroundRefresh` option (default [`token_store::AUTH_CLIENT_BACKGROUND_REFRESH`]);
//! * `__metadataServerBackgroundRefresh()`: whether the metadata server's fetchers do
//!   ([`token_store::METADATA_SERVER_BACKGROUND_REFRESH`]);
//! * `__credentialsPath()`: the file `GOOGLE_APPLICATION_CREDENTIALS` names in the calling
//!   thread's environment, as `GoogleTokenFetcher.fromEnv()` reads it (trimmed; null when unset or
//!   blank);
//! * `__subjectTokenType()`: the `subject_token_type` of the native flow
//!   ([`crate::google::subject_token::SUBJECT_TOKEN_TYPE`]), which `authClient()` declares to
//!   google-auth-library;
//! * `__googleSteps()`: the doctor's steps that need a loaded Google configuration (the last three
//!   of [`crate::google::doctor::STEPS`]), which `doctor` lists as not run when it cannot load one.

use napi::Env;
use napi_derive::napi;

use crate::google::token_store::{self, Refresh};

/// The most ID-token audiences cached per configuration.
#[napi(js_name = "__maxIdTokenAudiences", skip_typescript)]
pub fn max_id_token_audiences() -> u32 {
  u32::try_from(token_store::MAX_ID_TOKEN_AUDIENCES).unwrap_or(u32::MAX)
}

/// Whether an `authClient()` with this `backgroundRefresh` option refreshes in the background.
#[napi(js_name = "__authClientBackgroundRefresh", skip_typescript)]
pub fn auth_client_background_refresh(option: Option<bool>) -> bool {
  Refresh::from_option(option, token_store::AUTH_CLIENT_BACKGROUND_REFRESH) == Refresh::Background
}

/// Whether the metadata server's fetchers refresh in the background.
#[napi(js_name = "__metadataServerBackgroundRefresh", skip_typescript)]
pub fn metadata_server_background_refresh() -> bool {
  token_store::METADATA_SERVER_BACKGROUND_REFRESH
}

/// The credential configuration file of the calling thread's environment, if named.
#[napi(js_name = "__credentialsPath", skip_typescript)]
pub fn credentials_path(env: Env) -> napi::Result<Option<String>> {
  let ctx = super::context::thread_context(&env)?;
  Ok(crate::google::config_file::FetcherConfig::path_from_env(&ctx).map(|p| p.to_string_lossy().into_owned()))
}

/// The steps of `diagnose()` after the AWS ones: they need a loaded configuration.
#[napi(js_name = "__googleSteps", skip_typescript)]
pub fn google_steps() -> Vec<&'static str> {
  use crate::google::doctor::{STEPS, STEP_SUBJECT_TOKEN};
  STEPS.iter().copied().skip_while(|s| *s != STEP_SUBJECT_TOKEN).collect()
}

/// The subject token type the native flow sends to Google STS.
#[napi(js_name = "__subjectTokenType", skip_typescript)]
pub fn subject_token_type() -> &'static str {
  crate::google::subject_token::SUBJECT_TOKEN_TYPE
}
