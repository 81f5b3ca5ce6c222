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

/// Run a core future on the crate's runtime ([`crate::runtime`]) and return a promise of
/// `convert(value)`, or rejected with our error object. The promise is a napi deferred: it may be
/// settled after its environment (a terminated worker) is gone, in which case nothing happens.
pub fn spawn<'env, T, V, F, C>(env: &'env Env, fut: F, convert: C) -> Result<PromiseRaw<'env, V>>
where
  T: Send + 'static,
  V: ToNapiValue + 'static,
  F: std::future::Future<Output = crate::error::Result<T>> + Send + 'static,
  C: FnOnce(T) -> V + Send + 'static,
{
  let (deferred, promise) = env.create_deferred()?;
  let settle = move |outcome: crate::error::Result<T>| {
    deferred.resolve(move |env: Env| match outcome {
      Ok(v) => Ok(convert(v)),
      Err(e) => Err(to_napi(&env, &e)),
    })
  };
  crate::runtime::spawn(fut, settle).map_err(|e| to_napi(env, &e))?;
  Ok(PromiseRaw::new(env.raw(), promise.raw()))
}
