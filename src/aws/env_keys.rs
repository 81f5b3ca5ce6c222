//! Static keys from the environment (first link of the chain, as in every AWS SDK).
//!
//! `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`. Blank values
//! count as unset. Only one of the two keys set is a configuration error, not a silent fall-through.

use crate::env::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::redact::Secret;

use super::credentials::AwsCredentials;

pub fn load(ctx: &Context) -> Result<Option<AwsCredentials>> {
  match (ctx.env.get("AWS_ACCESS_KEY_ID"), ctx.env.get("AWS_SECRET_ACCESS_KEY")) {
    (None, None) => Ok(None),
    (Some(ak), Some(sk)) => Ok(Some(AwsCredentials {
      access_key_id: ak.trim().to_string(),
      secret_access_key: Secret::new(sk.trim()),
      session_token: ctx.env.get("AWS_SESSION_TOKEN").map(|t| Secret::new(t.trim())),
      expiration: None,
      account_id: None,
      source: "environment",
    })),
    (Some(_), None) => Err(Error::new(ErrorKind::ConfigInvalid, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")),
    (None, Some(_)) => Err(Error::new(ErrorKind::ConfigInvalid, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")),
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
    assert!(load(&ctx(&[])).unwrap().is_none());
    let c = load(&ctx(&[("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "MARKER")])).unwrap().unwrap();
    assert!(c.session_token.is_none());
    assert!(!format!("{c:?}").contains("MARKER"));
    let c = load(&ctx(&[("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_SESSION_TOKEN", "t")])).unwrap().unwrap();
    assert_eq!(c.session_token.unwrap().expose(), "t");
    let e = load(&ctx(&[("AWS_ACCESS_KEY_ID", "A")])).unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID");
  }
}
