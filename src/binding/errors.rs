//! The package's JavaScript asks here for its errors, so that every error it throws has the shape
//! [`super::js_error`] gives core errors, and every rule about codes and arguments is Rust's:
//!
//! * `__errorCodes()`: every `err.code` the package uses ([`ErrorKind::ALL`]), for the tests;
//! * `__configInvalid(message, hint?)`: a `CONFIG_INVALID` error for the JavaScript-only checks
//!   (which google-auth-library module to extend, an ID-token client's fixed audience);
//! * `__optionsError(caught)`: what a native constructor's failure becomes: our own errors as they
//!   are, napi-rs's argument conversion errors (codes like `StringExpected`, for options of the
//!   wrong shape) as `CONFIG_INVALID` (`invalid options: …`), like every other invalid option;
//! * `__checkAudience(audience, method, whole?)`: a `CONFIG_INVALID` throw unless `audience` is a
//!   string (and, with `whole`, one the ID-token flow accepts: [`crate::google::id_token::check_audience`]).
//!
//! All are internal (no TypeScript; `index.js` does not export them); lib/ uses them.

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use super::js_error::{js_error, to_napi};
use crate::error::{Error as CoreError, ErrorKind};

fn config_invalid(message: String, hint: Option<String>) -> CoreError {
  let e = CoreError::new(ErrorKind::ConfigInvalid, message);
  match hint {
    Some(h) => e.with_hint(h),
    None => e,
  }
}

/// Every error code, in [`ErrorKind::ALL`] order.
#[napi(js_name = "__errorCodes", skip_typescript)]
pub fn error_codes() -> Vec<&'static str> {
  ErrorKind::ALL.iter().map(|k| k.code()).collect()
}

/// A `CONFIG_INVALID` error object (not thrown: the caller throws or rejects with it).
#[napi(js_name = "__configInvalid", skip_typescript)]
pub fn config_invalid_error(env: &Env, message: String, hint: Option<String>) -> Result<Object<'_>> {
  js_error(env, &config_invalid(message, hint))
}

/// `caught` if it is one of our errors, else a `CONFIG_INVALID` error saying the options are invalid.
#[napi(js_name = "__optionsError", skip_typescript)]
pub fn options_error<'env>(env: &'env Env, caught: Unknown<'env>) -> Result<Unknown<'env>> {
  let mut message = String::from("undefined");
  if caught.get_type()? == ValueType::Object {
    let object: Object = unsafe { caught.cast()? };
    if let Some(code) = object.get::<Unknown>("code")? {
      if code.get_type()? == ValueType::String {
        let code: String = unsafe { code.cast()? };
        if ErrorKind::ALL.iter().any(|k| k.code() == code) {
          return Ok(caught);
        }
      }
    }
    if let Some(m) = object.get::<Unknown>("message")? {
      message = m.coerce_to_string()?.into_utf8()?.into_owned()?;
    }
  }
  Ok(js_error(env, &config_invalid(format!("invalid options: {message}"), None))?.to_unknown())
}

/// Throw `CONFIG_INVALID` unless `audience` is a string (with `whole`: a usable one).
#[napi(js_name = "__checkAudience", skip_typescript)]
pub fn check_audience(env: &Env, audience: Unknown, method: String, whole: Option<bool>) -> Result<()> {
  const WHAT: &str = "(the URL of the Cloud Run service, or the IAP OAuth client id)";
  if audience.get_type()? != ValueType::String {
    let kind = if whole.unwrap_or(false) { "a non-empty string" } else { "a string" };
    return Err(to_napi(env, &config_invalid(format!("{method}(audience): audience must be {kind} {WHAT}"), None)));
  }
  if whole.unwrap_or(false) {
    let audience: String = unsafe { audience.cast()? };
    crate::google::id_token::check_audience(&audience).map_err(|e| to_napi(env, &e.context(format!("{method}(audience)"))))?;
  }
  Ok(())
}
