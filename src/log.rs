//! Opt-in diagnostics on stderr: `AWS_WIF_SUPPLIER_LOG=info` or `=debug` (off by default).
//!
//! Lines look like `[aws-wif-supplier] info: credentials from container (ASIA…WXYZ), expire 2026-…`.
//! Only values that are safe to show are ever formatted: variable *names*, URLs without queries,
//! masked access key ids, expirations, error codes and error messages (which hold no secrets, see
//! [`crate::error`]). Tests run with `debug` and marker secrets to prove it.

use crate::env::EnvSnapshot;

pub const ENV_LOG: &str = "AWS_WIF_SUPPLIER_LOG";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
  #[default]
  Off,
  Info,
  Debug,
}

impl Level {
  pub fn from_env(env: &EnvSnapshot) -> Level {
    match env.get(ENV_LOG).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
      Some("debug") | Some("trace") => Level::Debug,
      Some("info") | Some("1") | Some("true") => Level::Info,
      _ => Level::Off,
    }
  }
}

/// A logger bound to a level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Logger(pub Level);

impl Logger {
  pub fn info(&self, msg: impl FnOnce() -> String) {
    self.emit(Level::Info, "info", msg)
  }
  pub fn debug(&self, msg: impl FnOnce() -> String) {
    self.emit(Level::Debug, "debug", msg)
  }
  fn emit(&self, at: Level, tag: &str, msg: impl FnOnce() -> String) {
    if self.0 >= at {
      eprintln!("[aws-wif-supplier] {tag}: {}", msg());
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn levels_from_env() {
    let l = |v: &str| Level::from_env(&EnvSnapshot::from_pairs([(ENV_LOG, v)]));
    assert_eq!(l("debug"), Level::Debug);
    assert_eq!(l("INFO"), Level::Info);
    assert_eq!(l("nonsense"), Level::Off);
    assert_eq!(Level::from_env(&EnvSnapshot::default()), Level::Off);
  }
}
