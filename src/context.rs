//! The one [`Context`] a credential source and the token flow see: the environment snapshot, the
//! filesystem and the clock ([`crate::env`]) and the HTTP client of that environment
//! ([`crate::http`]). It sits above both, so neither imports the other.

use std::sync::Arc;

use crate::env::{Clock, EnvSnapshot, Fs, OsFs, SystemClock};

/// Everything a credential source may look at.
#[derive(Clone)]
pub struct Context {
  pub env: EnvSnapshot,
  pub fs: Arc<dyn Fs>,
  pub clock: Arc<dyn Clock>,
  /// The HTTP client: trust and the proxy decision of this environment ([`crate::http`]).
  pub http: crate::http::Http,
}

impl Context {
  /// A context whose HTTP client follows `env`'s proxy variables.
  pub fn new(env: EnvSnapshot, fs: Arc<dyn Fs>, clock: Arc<dyn Clock>) -> Self {
    let http = crate::http::Http::from_env(&env);
    Context { env, fs, clock, http }
  }

  /// The same context with another HTTP client (tests).
  pub fn with_http(mut self, http: crate::http::Http) -> Self {
    self.http = http;
    self
  }

  /// The real process: its environment now, the OS filesystem and the system clock.
  pub fn from_process() -> Self {
    Context::new(EnvSnapshot::from_process(), Arc::new(OsFs), Arc::new(SystemClock))
  }
}

impl std::fmt::Debug for Context {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Context").field("env", &self.env).field("http", &self.http).finish_non_exhaustive()
  }
}
