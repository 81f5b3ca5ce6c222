//! The credential chain, in the order of aws-config's `DefaultCredentialsChain`:
//!
//! 1. environment keys ([`super::env_keys`]);
//! 2. shared config/credentials profile ([`super::profile`], aws-config);
//! 3. web identity token file, EKS IRSA ([`super::web_identity`], aws-config);
//! 4. container endpoint: ECS, Fargate, App Runner, EKS Pod Identity ([`super::container`]);
//! 5. EC2 IMDSv2 ([`super::imds`]).
//!
//! The chain is the list [`LINKS`]; each link is a file with a type implementing
//! [`super::link::Link`] (`plan`, then `load`), and `doctor` prints [`Chain::describe`] (the
//! plans' descriptions), so there is one answer to "which source". One difference from aws-config, on purpose: `AWS_PROFILE` set beside environment keys
//! selects the profile, as the JavaScript SDK's chain does (see [`super::env_keys`]).
//!
//! Semantics as aws-config's chain: a link that is not configured passes to the next; a link that
//! is configured and fails stops the chain with its error (a broken container endpoint must not
//! silently fall through to IMDS). When no link applies the error is `CREDENTIALS_NOT_FOUND` and
//! says, link by link, why. The container and IMDS links are ours rather than aws-config's because
//! aws-config's ECS provider ignores its timeout settings, rejects token files that end in a
//! newline and has no body cap; see the module docs of each.

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;
use crate::log::Logger;

use super::credentials::AwsCredentials;
use super::imds::client::Imds;
use super::link::{AnyPlan, Description, DynLink, LinkContext, Loaded, Role};
use super::{container, env_keys, imds, profile, web_identity};

/// The chain, in order: the JavaScript SDK's `fromNodeProviderChain()` and aws-config's default
/// chain agree on it (environment, shared profile, web identity, container, IMDS). A new source is
/// a file with a type implementing [`super::link::Link`], and one line here.
pub static LINKS: [&dyn DynLink; 5] =
  [&env_keys::Environment, &profile::Profile, &web_identity::WebIdentity, &container::Container, &imds::InstanceMetadata];

/// The link a chain with these descriptions (in chain order) tries first: the first configured
/// one, or, when none is, the last one's description of why not.
pub fn selected(all: &[Description]) -> Description {
  all.iter().find(|d| d.configured).or(all.last()).cloned().unwrap_or_else(|| Description::skipped("none", "no link"))
}

/// The chain, bound to one environment.
#[derive(Debug)]
pub struct Chain {
  ctx: Context,
  imds: Option<Imds>,
  /// Region for AWS STS calls made by the profile and web-identity links, decided at the first
  /// load (it may come from the profile files, which are read only within a call's bound).
  sts_region: once_cell::sync::OnceCell<String>,
  /// The bound of the synchronous reads of the profile files ([`Self::view`]).
  timeout: std::time::Duration,
  /// The `region` option, for the region of a profile role chain
  /// ([`super::region::role_chain_sts_region`]).
  region_option: Option<String>,
  /// aws-config's configuration for those links (its HTTPS client loads the trust store), built on
  /// first use and kept for the life of the chain.
  sdk: once_cell::sync::OnceCell<aws_config::provider_config::ProviderConfig>,
  /// [`Self::may_use_https`] and [`Self::ignored_settings`], decided together once per chain from
  /// one planning (it reads the profile files): suppliers of one configuration share the chain,
  /// and each construction asks both.
  construction: once_cell::sync::OnceCell<(bool, Vec<String>)>,
}

impl Chain {
  /// A chain with the default bound ([`crate::http::DEFAULT_TIMEOUT`]) on its synchronous reads.
  pub fn new(ctx: Context, region_hint: Option<&str>) -> Self {
    Chain::with_timeout(ctx, region_hint, crate::http::DEFAULT_TIMEOUT)
  }

  /// Constructing reads nothing: the profile files are read by each load within its deadline, and
  /// by [`Self::describe`] and its kin within `timeout`.
  pub fn with_timeout(ctx: Context, region_hint: Option<&str>, timeout: std::time::Duration) -> Self {
    Chain {
      imds: Imds::from_env(&ctx),
      ctx,
      sts_region: once_cell::sync::OnceCell::new(),
      timeout,
      region_option: region_hint.map(str::to_string),
      sdk: once_cell::sync::OnceCell::new(),
      construction: once_cell::sync::OnceCell::new(),
    }
  }

  pub fn context(&self) -> &Context {
    &self.ctx
  }

  /// What the links work with: `ctx` (this chain's context with the profile files read) and
  /// what the chain keeps.
  fn link_context(&self, ctx: Context) -> LinkContext<'_> {
    LinkContext::new(ctx, self.imds.as_ref(), self.region_option.as_deref(), &self.sts_region, &self.sdk, &LINKS)
  }

  /// This chain's context with the profile files read on the calling thread within the chain's
  /// timeout ([`crate::file_read::preload_blocking`]): for the synchronous answers below, which
  /// run on the JavaScript thread. A file that does not answer in time reads as unreadable.
  fn view(&self) -> Context {
    let (config, credentials) = super::profile::file::paths(&self.ctx);
    crate::file_read::preload_blocking(&self.ctx, config.into_iter().chain(credentials), self.timeout)
  }

  /// Each link's plan, in chain order, on the profile files as [`Self::view`] reads them.
  fn plans(&self) -> Vec<AnyPlan> {
    let lc = self.link_context(self.view());
    LINKS.iter().map(|l| l.plan(&lc, Role::Chain)).collect()
  }

  pub fn imds(&self) -> Option<&Imds> {
    self.imds.as_ref()
  }

  /// What each link sees, in chain order (what `doctor` prints).
  pub fn describe(&self) -> Vec<Description> {
    self.plans().into_iter().map(|p| p.description).collect()
  }

  /// The link `load` will try first: the first configured one (or, when none is, IMDS's
  /// description of why not).
  pub fn selected(&self) -> Description {
    selected(&self.describe())
  }

  /// Whether loading may use HTTPS (and so the trust store): what the first configured link's
  /// plan says (environment keys, plain-http container endpoints and IMDS do not).
  pub fn may_use_https(&self) -> bool {
    self.construction().0
  }

  /// Settings of this chain's environment that are set but ignored (half of a pair), each with
  /// why, from every link's plan; the package's JavaScript warns once per message.
  pub fn ignored_settings(&self) -> Vec<String> {
    self.construction().1.clone()
  }

  /// What a construction asks ([`Self::may_use_https`], [`Self::ignored_settings`]), from one
  /// planning, once per chain.
  fn construction(&self) -> &(bool, Vec<String>) {
    self.construction.get_or_init(|| {
      let plans = self.plans();
      let https = plans.iter().find(|p| p.description.configured).is_some_and(|p| p.may_use_https);
      (https, plans.into_iter().filter_map(|p| p.ignored).collect())
    })
  }

  /// Try the links in order: the first that is configured answers (credentials or its error).
  /// The shared profile files are read first, once, within `deadline` and off the async workers
  /// ([`crate::file_read::preload`]); the links read them from memory.
  /// `log` says, at debug level, which link the plans select before it loads.
  pub async fn load(&self, deadline: Deadline, log: Logger) -> Result<AwsCredentials> {
    let lc = self.link_context(self.with_profile_files(deadline).await?);
    let plans: Vec<AnyPlan> = LINKS.iter().map(|l| l.plan(&lc, Role::Chain)).collect();
    log.debug(|| {
      let source = plans.iter().find(|p| p.description.configured).map_or("none", |p| p.description.link);
      format!("loading AWS credentials (likely source: {source}; variables set: {})", self.ctx.env.names().join(", "))
    });
    let mut tried: Vec<String> = Vec::new();
    for (link, plan) in LINKS.iter().zip(plans) {
      if plan.description.configured {
        if let Loaded::Found(c) = link.load(&plan, &lc, deadline).await? {
          return Ok(c);
        }
      }
      tried.push(plan.description.detail);
    }
    Err(Error::new(ErrorKind::CredentialsNotFound, format!("no AWS credentials found; tried: {}", tried.join("; "))).with_hint(
      "in ECS/Fargate (Express Mode too)/App Runner give the task or service an IAM role; in EKS set up Pod Identity or IRSA; \
       on EC2 attach an instance profile; elsewhere set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    ))
  }

  /// This chain's context with the shared config and credentials files read within `deadline`.
  pub async fn with_profile_files(&self, deadline: Deadline) -> Result<Context> {
    let (config, credentials) = super::profile::file::paths(&self.ctx);
    crate::file_read::preload(&self.ctx, config.into_iter().chain(credentials), deadline).await
  }

  /// One link alone, by name (tests of a link that must not fall through to the next ones).
  #[cfg(test)]
  pub async fn load_only(&self, name: &str, deadline: Deadline) -> Result<Option<AwsCredentials>> {
    let lc = self.link_context(self.with_profile_files(deadline).await?);
    let Some(link) = LINKS.iter().find(|l| l.plan(&lc, Role::Chain).description.link == name) else { return Ok(None) };
    let plan = link.plan(&lc, Role::Chain);
    Ok(match link.load(&plan, &lc, deadline).await? {
      Loaded::Found(c) => Some(c),
      Loaded::Passed(_) => None,
    })
  }

  /// Whether aws-config's configuration was built (tests: only loads that need it build it).
  #[cfg(test)]
  pub fn sdk_built(&self) -> bool {
    self.sdk.get().is_some()
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
    let e = Chain::new(ctx(&[]), None).load(Deadline::after(Duration::from_secs(2)), Logger::default()).await.unwrap_err();
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
    assert_eq!(chain.selected().link, "environment");
    assert_eq!(chain.load(Deadline::after(Duration::from_secs(2)), Logger::default()).await.unwrap().source, "environment");
  }

  #[tokio::test]
  async fn a_configured_link_that_fails_stops_the_chain() {
    let c = ctx(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/creds")]);
    let e = Chain::new(c, None).load(Deadline::after(Duration::from_secs(2)), Logger::default()).await.unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID", "{e}");
  }

  #[tokio::test]
  async fn aws_profile_beside_environment_keys_selects_the_profile_as_the_js_chain_does() {
    let dir = std::env::temp_dir().join(format!("aws-wif-chain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let creds = dir.join("credentials");
    std::fs::write(&creds, "[dev]\naws_access_key_id = AKIDPROFILEDEV\naws_secret_access_key = s\n").unwrap();
    let c = Context::new(
      EnvSnapshot::from_pairs([
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/c"),
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_PROFILE", "dev"),
        ("AWS_ACCESS_KEY_ID", "AKIDENVIRONMENT"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
      ]),
      Arc::new(OsFs),
      Arc::new(ManualClock::at_epoch_secs(1_700_000_000)),
    );
    let chain = Chain::new(c, None);
    let d = chain.describe();
    assert!(!d[0].configured && d[0].detail.contains("AWS_PROFILE is set"), "{:?}", d[0]);
    assert_eq!(chain.selected().link, "profile");
    assert_eq!(chain.selected().detail, "profile dev: static keys");
    let got = chain.load(Deadline::after(Duration::from_secs(5)), Logger::default()).await.unwrap();
    assert_eq!(got.access_key_id, "AKIDPROFILEDEV");
    std::fs::remove_dir_all(&dir).unwrap();
  }

  #[test]
  fn describe_names_the_runtime_and_its_evidence() {
    let cases: [(&[(&str, &str)], &str, &str, &[&str]); 5] = [
      (
        &[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/x")],
        "container",
        "ECS or App Runner (no task metadata variables)",
        &["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"],
      ),
      (
        &[
          ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/x"),
          ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/x"),
          ("AWS_EXECUTION_ENV", "AWS_ECS_FARGATE"),
        ],
        "container",
        "ECS on Fargate (also ECS Express Mode)",
        &["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "ECS_CONTAINER_METADATA_URI_V4", "AWS_EXECUTION_ENV"],
      ),
      (
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials")],
        "container",
        "EKS Pod Identity",
        &["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
      ),
      (
        &[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"), ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r")],
        "web identity",
        "EKS IRSA (web identity)",
        &["AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"],
      ),
      (&[], "imds", "none found (IMDS disabled)", &["AWS_EC2_METADATA_DISABLED"]),
    ];
    for (vars, link, runtime, evidence) in cases {
      let s = Chain::new(ctx(vars), None).selected();
      assert_eq!((s.link, s.runtime.as_str(), s.evidence.as_slice()), (link, runtime, evidence), "{vars:?}");
    }
  }

  /// A profile's `credential_source` is the chain's own link of that name, planned as a source
  /// (what it lacks is in the profile's error, before anything is sent); the names come from the
  /// list.
  #[tokio::test]
  async fn credential_source_comes_from_the_chains_links() {
    let dir = std::env::temp_dir().join(format!("aws-wif-chain-source-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    let config = config.to_str().unwrap();
    for (source, code, message) in [
      ("Environment", "CREDENTIALS_NOT_FOUND", "profile app: credential_source Environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set"),
      (
        "EcsContainer",
        "CREDENTIALS_NOT_FOUND",
        "profile app: credential_source EcsContainer: neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set",
      ),
      (
        "Ec2InstanceMetadata",
        "CREDENTIALS_NOT_FOUND",
        "profile app: credential_source Ec2InstanceMetadata: instance metadata is disabled (AWS_EC2_METADATA_DISABLED)",
      ),
      (
        "Imds",
        "CONFIG_INVALID",
        "profile app: credential_source \"Imds\" is not one of Environment, EcsContainer, Ec2InstanceMetadata",
      ),
    ] {
      std::fs::write(config, format!("[profile app]\nrole_arn = arn:aws:iam::1:role/r\ncredential_source = {source}\n")).unwrap();
      let c = ctx(&[("AWS_CONFIG_FILE", config), ("AWS_PROFILE", "app"), ("AWS_ACCESS_KEY_ID", "AKIDHALF")]);
      let e = Chain::new(c, None).load(Deadline::after(Duration::from_secs(2)), Logger::default()).await.unwrap_err();
      assert_eq!((e.code(), e.message()), (code, message), "{source}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
  }
}
