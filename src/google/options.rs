//! The option rules of `new GoogleTokenFetcher(options)`: its names (google-auth-library's
//! `AwsClient` options, in either spelling, as `AwsClient` takes them: google-auth-library 10+ reads
//! the camelCase and the snake_case name of each option alike) and the values of its own options
//! (the ones shared with the supplier, `region`, `refreshMarginSeconds` and `timeoutMs`, are
//! [`crate::supplier::SupplierOptions::from_raw`]'s; the credential configuration's are
//! [`super::config_file`]'s).
//!
//! Rules, decided here for the binding:
//! * `refreshJitterSeconds`: 0 to [`MAX_JITTER`] seconds, default
//!   [`super::token_store::DEFAULT_JITTER`] ([`refresh_jitter`]);
//! * Each option of [`FETCHER_OPTIONS`] (and of [`IMPERSONATION_OPTIONS`] inside
//!   `serviceAccountImpersonation`) may be given as its camelCase or its snake_case name; giving
//!   both is `CONFIG_INVALID` (which one would win is a guess).
//! * `AwsClient` options that say how to find AWS credentials or what the client is
//!   ([`IGNORED_AWS_CLIENT_OPTIONS`]: `type`, `subject_token_type`, `credential_source`) are passed
//!   over: the fetcher finds AWS credentials with its own chain.
//! * Any other name is `CONFIG_INVALID` naming it: an option that is dropped instead of used would
//!   silently change what the fetcher does (without `serviceAccountImpersonationUrl` it hands out
//!   the federated token).

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// The largest `refreshJitterSeconds`.
pub const MAX_JITTER: Duration = Duration::from_secs(3600);

/// `refreshJitterSeconds`, checked, as a duration (the default when unset).
pub fn refresh_jitter(option: Option<f64>) -> Result<Duration> {
  match option {
    None => Ok(super::token_store::DEFAULT_JITTER),
    Some(j) if j.is_finite() && (0.0..=MAX_JITTER.as_secs_f64()).contains(&j) => Ok(Duration::from_secs_f64(j)),
    Some(_) => Err(Error::new(ErrorKind::ConfigInvalid, format!("refreshJitterSeconds must be between 0 and {}", MAX_JITTER.as_secs()))),
  }
}

/// (camelCase, snake_case) names of the fetcher's options.
pub const FETCHER_OPTIONS: &[(&str, &str)] = &[
  ("audience", "audience"),
  ("tokenUrl", "token_url"),
  ("serviceAccountImpersonationUrl", "service_account_impersonation_url"),
  ("serviceAccountImpersonation", "service_account_impersonation"),
  ("scopes", "scopes"),
  ("universeDomain", "universe_domain"),
  ("quotaProjectId", "quota_project_id"),
  ("region", "region"),
  ("refreshMarginSeconds", "refresh_margin_seconds"),
  ("timeoutMs", "timeout_ms"),
  ("refreshJitterSeconds", "refresh_jitter_seconds"),
  ("backgroundRefresh", "background_refresh"),
];

/// (camelCase, snake_case) names inside `serviceAccountImpersonation`.
pub const IMPERSONATION_OPTIONS: &[(&str, &str)] = &[("tokenLifetimeSeconds", "token_lifetime_seconds")];

/// `AwsClient` options with no meaning here (passed over).
pub const IGNORED_AWS_CLIENT_OPTIONS: &[&str] =
  &["type", "subject_token_type", "subjectTokenType", "credential_source", "credentialSource"];

/// For each given name of `given` that is an option of `table`: (the given name, its camelCase
/// name). Names in [`IGNORED_AWS_CLIENT_OPTIONS`] are left out; anything else is refused. `what`
/// names the object in messages (`options`, `options.serviceAccountImpersonation`).
pub fn normalise(given: &[String], table: &[(&'static str, &'static str)], what: &str) -> Result<Vec<(String, &'static str)>> {
  let mut out: Vec<(String, &'static str)> = Vec::with_capacity(given.len());
  for name in given {
    if let Some((camel, _)) = table.iter().find(|(c, s)| name == c || name == s) {
      if let Some((other, _)) = out.iter().find(|(_, c)| c == camel) {
        return Err(
          Error::new(ErrorKind::ConfigInvalid, format!("{what}.{other} and {what}.{name} are the same option, given twice"))
            .with_hint("give each option once, in either spelling"),
        );
      }
      out.push((name.clone(), camel));
    } else if IGNORED_AWS_CLIENT_OPTIONS.contains(&name.as_str()) {
      continue;
    } else if name == "aws_security_credentials_supplier" || name == "awsSecurityCredentialsSupplier" {
      return Err(
        Error::new(
          ErrorKind::ConfigInvalid,
          format!("{what}.{name} is not an option of GoogleTokenFetcher: it finds AWS credentials itself"),
        )
        .with_hint(
          "for a supplier of your own, use google-auth-library's AwsClient with it (ContainerAwsCredentialsSupplier is this package's)",
        ),
      );
    } else {
      let names: Vec<&str> = table.iter().map(|(c, _)| *c).collect();
      return Err(
        Error::new(
          ErrorKind::ConfigInvalid,
          format!("{what}.{} is not an option of GoogleTokenFetcher", crate::redact::scrub_body(name, &[])),
        )
        .with_hint(format!("the options are {} (camelCase or snake_case)", names.join(", "))),
      );
    }
  }
  Ok(out)
}

#[cfg(test)]
mod tests {
  use super::*;

  fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
  }

  #[test]
  fn refresh_jitter_is_0_to_3600_seconds() {
    assert_eq!(refresh_jitter(None).unwrap(), crate::google::token_store::DEFAULT_JITTER);
    assert_eq!(refresh_jitter(Some(0.0)).unwrap(), Duration::ZERO);
    assert_eq!(refresh_jitter(Some(3600.0)).unwrap(), Duration::from_secs(3600));
    for bad in [-1.0, 3600.5, f64::NAN, f64::INFINITY] {
      let e = refresh_jitter(Some(bad)).unwrap_err();
      assert_eq!((e.code(), e.message()), ("CONFIG_INVALID", "refreshJitterSeconds must be between 0 and 3600"));
    }
  }

  #[test]
  fn both_spellings_once_each_and_nothing_unknown() {
    let got =
      normalise(&names(&["audience", "service_account_impersonation_url", "quotaProjectId", "type"]), FETCHER_OPTIONS, "options").unwrap();
    assert_eq!(
      got,
      vec![
        ("audience".to_string(), "audience"),
        ("service_account_impersonation_url".to_string(), "serviceAccountImpersonationUrl"),
        ("quotaProjectId".to_string(), "quotaProjectId")
      ]
    );
    let e = normalise(&names(&["tokenUrl", "token_url"]), FETCHER_OPTIONS, "options").unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID");
    assert!(e.message().contains("options.tokenUrl and options.token_url"), "{e}");
    let e = normalise(&names(&["audience", "serviceAccountImpersonationURL"]), FETCHER_OPTIONS, "options").unwrap_err();
    assert!(e.message().contains("options.serviceAccountImpersonationURL is not an option"), "{e}");
    let e = normalise(&names(&["aws_security_credentials_supplier"]), FETCHER_OPTIONS, "options").unwrap_err();
    assert!(e.hint().unwrap().contains("AwsClient"), "{e}");
    let got = normalise(&names(&["token_lifetime_seconds"]), IMPERSONATION_OPTIONS, "options.service_account_impersonation").unwrap();
    assert_eq!(got, vec![("token_lifetime_seconds".to_string(), "tokenLifetimeSeconds")]);
  }
}
