//! The [`Context`] of the JavaScript thread that constructs a supplier or fetcher.
//!
//! A `worker_thread`'s `process.env` is its own copy (filled from `new Worker(file, { env })`,
//! by default a copy of its parent's at spawn), while native code's `getenv` sees the process
//! environment. So the environment snapshot is read from the calling thread's `process.env`
//! object, for exactly [`RELEVANT_VARS`]: a worker started with its own `env` gets its own region,
//! credentials and proxy, and the process-wide caches stay keyed by that configuration.
//!
//! Still read from the process environment, by dependencies: `SSL_CERT_FILE` / `SSL_CERT_DIR` (the
//! system trust store), and what aws-config's providers read themselves (`AWS_ENDPOINT_URL_STS`,
//! `AWS_ENDPOINT_URL_SSO`, `AWS_ENDPOINT_URL`, and `HOME` for the SSO token cache): see
//! `src/aws/sdk/`. Web identity and role chains on a `credential_process` are not aws-config's
//! providers: their AWS STS endpoint comes from the snapshot. `NODE_EXTRA_CA_CERTS` is Node's own, read once at start-up.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::Env;

use crate::context::Context;
use crate::env::{EnvSnapshot, OsFs, SystemClock, RELEVANT_VARS};

/// The calling thread's `process.env`, for [`RELEVANT_VARS`]; the OS environment when there is
/// no `process.env` object (an embedder without one).
pub fn thread_env(env: &Env) -> Result<EnvSnapshot> {
  let global = env.get_global()?;
  let process: Unknown = global.get_named_property("process")?;
  if process.get_type()? != ValueType::Object {
    return Ok(EnvSnapshot::from_process());
  }
  let process: Object = unsafe { process.cast()? };
  let vars: Unknown = process.get_named_property("env")?;
  if vars.get_type()? != ValueType::Object {
    return Ok(EnvSnapshot::from_process());
  }
  let vars: Object = unsafe { vars.cast()? };
  let mut pairs = Vec::new();
  for name in RELEVANT_VARS {
    if let Some(value) = vars.get::<Unknown>(name)? {
      if value.get_type()? == ValueType::String {
        pairs.push((name.to_string(), unsafe { value.cast::<String>()? }));
      }
    }
  }
  Ok(EnvSnapshot::from_pairs(pairs))
}

/// The context of the calling thread: its environment, the OS filesystem, the system clock.
pub fn thread_context(env: &Env) -> Result<Context> {
  Ok(Context::new(thread_env(env)?, Arc::new(OsFs), Arc::new(SystemClock)))
}
