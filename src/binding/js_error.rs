//! The single place where core errors become JavaScript errors.
//!
//! napi-rs sets `err.code` from its fixed `Status` set only, and async functions cannot choose
//! another code. So we build the JS `Error` ourselves on the JS thread and reject (or throw) with
//! that very object (napi-rs keeps the reference: `napi::Error::from(Unknown)`). Each error carries:
//!
//! * `code`: the stable code (`CREDENTIALS_NOT_FOUND`, `TIMEOUT`, …);
//! * `retryable`: whether trying again later may help;
//! * `status` (when an HTTP status caused it), `hint` (what to fix), and for Google errors
//!   `googleError` / `googleErrorDescription`.
//!
//! The message is the core error's `Display`, which never holds a secret.

use napi::bindgen_prelude::*;
use napi::{Env, Status};

use crate::error::Error as CoreError;

/// Build the JS error object.
pub fn js_error<'env>(env: &'env Env, e: &CoreError) -> Result<Object<'env>> {
  let mut obj = env.create_error(napi::Error::new(Status::GenericFailure, e.to_string()))?;
  obj.set("code", e.code())?;
  obj.set("retryable", e.is_retryable())?;
  if let Some(s) = e.status() {
    obj.set("status", s as u32)?;
  }
  if let Some(h) = e.hint() {
    obj.set("hint", h)?;
  }
  if let Some(r) = e.remote_error() {
    obj.set("googleError", r)?;
  }
  if let Some(d) = e.remote_description() {
    obj.set("googleErrorDescription", d)?;
  }
  Ok(obj)
}

/// As a `napi::Error` that throws/rejects with exactly that object.
pub fn to_napi(env: &Env, e: &CoreError) -> napi::Error {
  match js_error(env, e) {
    Ok(obj) => napi::Error::from(obj.to_unknown()),
    Err(fallback) => fallback,
  }
}

/// Spawn a core future on the addon's tokio runtime; resolve with `convert(value)` or reject
/// with our error object.
pub fn spawn<'env, T, V, F, C>(env: &'env Env, fut: F, convert: C) -> Result<PromiseRaw<'env, V>>
where
  T: Send + 'static,
  V: ToNapiValue + 'env,
  F: std::future::Future<Output = crate::error::Result<T>> + Send + 'static,
  C: FnOnce(T) -> V + 'static,
{
  env.spawn_future_with_callback(async move { Ok(fut.await) }, move |env, outcome| match outcome {
    Ok(v) => Ok(convert(v)),
    Err(e) => Err(to_napi(env, &e)),
  })
}
