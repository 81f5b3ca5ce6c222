//! The credential chain, in the order of aws-config's `DefaultCredentialsChain`:
//!
//! 1. environment keys ([`super::env_keys`]);
//! 2. shared config/credentials profile ([`super::profile`], aws-config);
//! 3. web identity token file, EKS IRSA ([`super::web_identity`], aws-config);
//! 4. container endpoint: ECS, Fargate, App Runner, EKS Pod Identity ([`super::container`]);
//! 5. EC2 IMDSv2 ([`super::imds`]).
//!
//! Semantics as aws-config's chain: a link that is not configured passes to the next; a link that
//! is configured and fails stops the chain with its error (a broken container endpoint must not
//! silently fall through to IMDS). When no link applies the error is `CREDENTIALS_NOT_FOUND` and
//! says, link by link, why. The container and IMDS links are ours rather than aws-config's because
//! aws-config's ECS provider ignores its timeout settings, rejects token files that end in a
//! newline and has no body cap; see the module docs of each.

use crate::env::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;

use super::credentials::AwsCredentials;
use super::imds::{Imds, Lookup};

/// The chain, bound to one environment.
#[derive(Debug)]
pub struct Chain {
  ctx: Context,
  imds: Option<Imds>,
  /// Region for AWS STS calls made by the profile and web-identity links.
  sts_region: String,
  /// aws-config's configuration for those links (its HTTPS client loads the trust store), built on
  /// first use and kept for the life of the chain.
  sdk: once_cell::sync::OnceCell<aws_config::provider_config::ProviderConfig>,
}

impl Chain {
  pub fn new(ctx: Context, region_hint: Option<&str>) -> Self {
    let sts_region = super::region::sts_region(&ctx, region_hint);
    Chain { imds: Imds::from_env(&ctx), ctx, sts_region, sdk: once_cell::sync::OnceCell::new() }
  }

  pub fn context(&self) -> &Context {
    &self.ctx
  }

  fn sdk(&self) -> &aws_config::provider_config::ProviderConfig {
    self.sdk.get_or_init(|| super::sdk::provider_config(&self.ctx.http, &self.sts_region))
  }

  pub fn imds(&self) -> Option<&Imds> {
    self.imds.as_ref()
  }

  /// Which link would supply credentials, judged from variable names alone (no I/O). For `doctor`
  /// and for messages.
  pub fn configured_source(&self) -> &'static str {
    let env = &self.ctx.env;
    if env.get("AWS_ACCESS_KEY_ID").is_some() {
      "environment"
    } else if env.get("AWS_PROFILE").is_some() {
      "profile"
    } else if env.get("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
      "web identity (IRSA)"
    } else if env.get(super::container::ENV_RELATIVE_URI).is_some() || env.get(super::container::ENV_FULL_URI).is_some() {
      "container"
    } else if self.imds.is_some() {
      "imds"
    } else {
      "none"
    }
  }

  /// Whether loading may use HTTPS (and so the trust store): every link but environment keys,
  /// plain-http container endpoints and IMDS may call AWS STS or an https endpoint.
  pub fn may_use_https(&self) -> bool {
    match self.configured_source() {
      "environment" | "imds" | "none" => false,
      "container" => self.ctx.env.get(super::container::ENV_FULL_URI).is_some_and(|u| u.trim().to_ascii_lowercase().starts_with("https:")),
      _ => true,
    }
  }

  pub async fn load(&self, deadline: Deadline) -> Result<AwsCredentials> {
    let ctx = &self.ctx;
    let mut tried: Vec<String> = Vec::new();

    match super::env_keys::load(ctx) {
      Ok(Some(c)) => return Ok(c),
      Ok(None) => tried.push("environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set".into()),
      Err(e) => return Err(e.context("environment")),
    }
    match super::profile::load(ctx, || self.sdk(), deadline).await {
      Ok(Some(c)) => return Ok(c),
      Ok(None) => tried.push("profile: no shared config or credentials file with credentials".into()),
      Err(e) => return Err(e),
    }
    match super::web_identity::load(ctx, || self.sdk(), deadline).await {
      Ok(Some(c)) => return Ok(c),
      Ok(None) => tried.push("web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set".into()),
      Err(e) => return Err(e),
    }
    match super::container::load(ctx, deadline).await {
      Ok(Some(c)) => return Ok(c),
      Ok(None) => tried.push("container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set".into()),
      Err(e) => return Err(e),
    }
    match &self.imds {
      None => tried.push("IMDS: disabled by AWS_EC2_METADATA_DISABLED".into()),
      Some(imds) => match imds.credentials(ctx, deadline).await? {
        Lookup::Found(c) => return Ok(c),
        Lookup::Unavailable(why) => tried.push(format!("IMDS: {why}")),
      },
    }
    Err(Error::new(ErrorKind::CredentialsNotFound, format!("no AWS credentials found; tried: {}", tried.join("; "))).with_hint(
      "in ECS/Fargate/App Runner give the task or service an IAM role; in EKS set up Pod Identity or IRSA; \
       on EC2 attach an instance profile; elsewhere set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    ))
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::{EnvSnapshot, ManualClock, OsFs};
  use std::sync::Arc;
  use std::time::Duration;

  fn ctx(vars: &[(&str, &str)]) -> Context {
    let mut all =
      vec![("AWS_EC2_METADATA_DISABLED", "true"), ("AWS_CONFIG_FILE", "/nonexistent/c"), ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/k")];
    all.extend_from_slice(vars);
    Context::new(EnvSnapshot::from_pairs(all), Arc::new(OsFs), Arc::new(ManualClock::at_epoch_secs(1_700_000_000)))
  }

  #[tokio::test]
  async fn nothing_configured_explains_every_link() {
    let e = Chain::new(ctx(&[]), None).load(Deadline::after(Duration::from_secs(2))).await.unwrap_err();
    assert_eq!(e.code(), "CREDENTIALS_NOT_FOUND");
    for part in ["environment:", "profile:", "web identity:", "container:", "IMDS: disabled"] {
      assert!(e.message().contains(part), "{e}");
    }
  }

  #[tokio::test]
  async fn environment_keys_come_first() {
    let c = ctx(&[
      ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
      ("AWS_SECRET_ACCESS_KEY", "s"),
      ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/x"),
    ]);
    let chain = Chain::new(c, None);
    assert_eq!(chain.configured_source(), "environment");
    assert_eq!(chain.load(Deadline::after(Duration::from_secs(2))).await.unwrap().source, "environment");
  }

  #[tokio::test]
  async fn a_configured_link_that_fails_stops_the_chain() {
    let c = ctx(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/creds")]);
    let e = Chain::new(c, None).load(Deadline::after(Duration::from_secs(2))).await.unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID", "{e}");
  }
}
