//! The shape every credential source (link) of the chain shares: one file, one type that
//! implements [`Link`].
//!
//! * [`Link::plan`] decides, once per load (or per `doctor`), whether the environment configures
//!   the link and what it will do: a [`Plan`], whose [`Description`] is what `doctor` prints
//!   (the runtime it points at, the variable *names* that say so, never values, and why not when
//!   it is not configured), with the settings it ignores and whether loading may use HTTPS. No
//!   I/O but reading the profile files (already in memory: see [`LinkContext::ctx`]).
//! * [`Link::load`] does what the plan says, within the deadline: credentials, or
//!   [`Loaded::Passed`] when a configured source gives none (IMDS off EC2), or an error (a
//!   configured link never silently falls through on an error).
//!
//! [`super::chain`] is the list of links in order ([`super::chain::LINKS`]): load, describe, the
//! ignored settings and "needs HTTPS" are folds over it, so "which source" has one answer. A link
//! that needs another source (a profile's `credential_source`) asks the chain for it through
//! [`LinkContext::credential_source`]; a link that can be such a source names itself in
//! [`Link::CREDENTIAL_SOURCE`] and plans for [`Role::CredentialSource`].

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use aws_config::provider_config::ProviderConfig;
use once_cell::sync::OnceCell;

use crate::context::Context;
use crate::error::Result;
use crate::http::Deadline;

use super::credentials::AwsCredentials;
use super::imds::client::Imds;

/// What a link sees in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
  /// `environment`, `profile`, `web identity`, `container`, `imds`.
  pub link: &'static str,
  /// Whether the chain will try this link.
  pub configured: bool,
  /// The runtime this looks like (`EKS Pod Identity`, `ECS on Fargate`…), or why not configured.
  pub runtime: String,
  /// The variables (names) that say so.
  pub evidence: Vec<&'static str>,
  /// One line for messages and `doctor`: what is configured, or why the link is skipped.
  pub detail: String,
}

impl Description {
  pub fn configured(link: &'static str, runtime: impl Into<String>, evidence: Vec<&'static str>, detail: impl Into<String>) -> Self {
    Description { link, configured: true, runtime: runtime.into(), evidence, detail: detail.into() }
  }
  pub fn skipped(link: &'static str, why: impl Into<String>) -> Self {
    let why = why.into();
    Description { link, configured: false, runtime: String::new(), evidence: Vec::new(), detail: why }
  }
}

/// The names among `names` that are set (non-blank) in the environment.
pub fn evidence(ctx: &Context, names: &[&'static str]) -> Vec<&'static str> {
  names.iter().copied().filter(|n| ctx.env.get(n).is_some()).collect()
}

/// What a link decided ([`Link::plan`]). `todo` is what [`Link::load`] will do: `Some` exactly
/// when the description says the link is configured.
pub struct Plan<T> {
  pub description: Description,
  /// A setting that is set but ignored (half of a pair), with why; the package's JavaScript warns.
  pub ignored: Option<String>,
  /// Whether loading may use HTTPS (and so the trust store).
  pub may_use_https: bool,
  pub todo: Option<T>,
}

impl<T> Plan<T> {
  /// A configured link (`description.configured` must be true) that will do `todo`.
  pub fn configured(description: Description, todo: T) -> Self {
    Plan { description, ignored: None, may_use_https: false, todo: Some(todo) }
  }
  /// A link that is not configured: the chain passes to the next one.
  pub fn skipped(description: Description) -> Self {
    Plan { description, ignored: None, may_use_https: false, todo: None }
  }
  /// `configured(description, todo)` when the description says so, else `skipped`.
  pub fn new(description: Description, todo: impl FnOnce() -> T) -> Self {
    if description.configured {
      Plan::configured(description, todo())
    } else {
      Plan::skipped(description)
    }
  }
  pub fn ignoring(mut self, ignored: Option<String>) -> Self {
    self.ignored = ignored;
    self
  }
  pub fn https(mut self, may_use_https: bool) -> Self {
    self.may_use_https = may_use_https;
    self
  }
  fn map<U>(self, f: impl FnOnce(T) -> U) -> Plan<U> {
    Plan { description: self.description, ignored: self.ignored, may_use_https: self.may_use_https, todo: self.todo.map(f) }
  }
}

/// What a load gave.
#[derive(Debug)]
pub enum Loaded {
  Found(AwsCredentials),
  /// The link is configured but gave no credentials (IMDS that does not answer, an aws-config
  /// provider that loaded nothing): the chain tries the next link. Why, for a profile whose
  /// `credential_source` names this link.
  Passed(String),
}

/// Why the chain asks a link for a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
  /// Its own turn in the chain (and `doctor`).
  Chain,
  /// A profile's `credential_source` names it ([`Link::CREDENTIAL_SOURCE`]); a plan that is not
  /// configured says why in its detail, which the profile link puts in its error.
  CredentialSource,
}

/// A load in progress (a boxed future: links are called through the chain's list).
pub type LoadFuture<'a> = Pin<Box<dyn Future<Output = Result<Loaded>> + Send + 'a>>;

/// A credential source of the chain.
pub trait Link: Sync + 'static {
  /// What [`Self::plan`] decided and [`Self::load`] does: this link's own data.
  type Todo: Send + Sync + 'static;
  /// The profile `credential_source` value that names this link (`Environment`…), if any.
  const CREDENTIAL_SOURCE: Option<&'static str> = None;
  /// Decide whether this link is configured and what it will do (see the module docs).
  fn plan(&self, lc: &LinkContext<'_>, role: Role) -> Plan<Self::Todo>;
  /// Do it, within `deadline`. Called only with the `todo` of a configured plan.
  fn load<'a>(&'a self, todo: &'a Self::Todo, lc: &'a LinkContext<'a>, deadline: Deadline) -> LoadFuture<'a>;
}

/// A plan whose `todo` is any link's.
pub type AnyPlan = Plan<Box<dyn Any + Send + Sync>>;

/// [`Link`] with its `Todo` type erased, so that the chain can hold the links in one list.
pub trait DynLink: Sync {
  fn credential_source(&self) -> Option<&'static str>;
  fn plan(&self, lc: &LinkContext<'_>, role: Role) -> AnyPlan;
  fn load<'a>(&'a self, plan: &'a AnyPlan, lc: &'a LinkContext<'a>, deadline: Deadline) -> LoadFuture<'a>;
}

impl<L: Link> DynLink for L {
  fn credential_source(&self) -> Option<&'static str> {
    L::CREDENTIAL_SOURCE
  }
  fn plan(&self, lc: &LinkContext<'_>, role: Role) -> AnyPlan {
    Link::plan(self, lc, role).map(|todo| Box::new(todo) as Box<dyn Any + Send + Sync>)
  }
  fn load<'a>(&'a self, plan: &'a AnyPlan, lc: &'a LinkContext<'a>, deadline: Deadline) -> LoadFuture<'a> {
    match plan.todo.as_ref().and_then(|t| t.downcast_ref::<L::Todo>()) {
      Some(todo) => Link::load(self, todo, lc, deadline),
      // Not configured (or another link's plan): nothing to do.
      None => {
        let why = plan.description.detail.clone();
        Box::pin(async move { Ok(Loaded::Passed(why)) })
      }
    }
  }
}

/// What a link works with: the environment with the shared profile files read, and what the
/// chain keeps for the life of its configuration.
pub struct LinkContext<'a> {
  /// The chain's context, with the shared config and credentials files already read.
  pub ctx: Context,
  /// The chain's IMDS client (`None`: disabled); it keeps its session token across loads.
  pub imds: Option<&'a Imds>,
  /// The `region` option (a profile role chain's AWS STS region comes from it first).
  pub region_option: Option<&'a str>,
  sts_region: &'a OnceCell<String>,
  sdk: &'a OnceCell<ProviderConfig>,
  links: &'a [&'static dyn DynLink],
}

impl<'a> LinkContext<'a> {
  /// `sts_region` and `sdk` are decided at first use and kept by the chain; `links` is the chain.
  pub fn new(
    ctx: Context,
    imds: Option<&'a Imds>,
    region_option: Option<&'a str>,
    sts_region: &'a OnceCell<String>,
    sdk: &'a OnceCell<ProviderConfig>,
    links: &'a [&'static dyn DynLink],
  ) -> Self {
    LinkContext { ctx, imds, region_option, sts_region, sdk, links }
  }

  /// The region of the AWS STS calls of the profile and web-identity links
  /// ([`super::region::sts_region`]), decided at the chain's first use.
  pub fn sts_region(&self) -> &str {
    self.sts_region.get_or_init(|| super::region::sts_region(&self.ctx, self.region_option))
  }

  /// aws-config's configuration (its HTTPS client loads the trust store), built on first use and
  /// kept for the life of the chain.
  pub fn sdk(&self) -> &ProviderConfig {
    self.sdk.get_or_init(|| super::sdk::provider_config(&self.ctx, self.sts_region()))
  }

  /// The `credential_source` values the chain's links answer to, in chain order.
  pub fn credential_sources(&self) -> Vec<&'static str> {
    self.links.iter().filter_map(|l| l.credential_source()).collect()
  }

  /// The credentials of the link a profile's `credential_source = name` names, planned for
  /// [`Role::CredentialSource`] (a link that is not configured passes, saying why); `None` when
  /// no link answers to `name`.
  pub async fn credential_source(&self, name: &str, deadline: Deadline) -> Option<Result<Loaded>> {
    let link = self.links.iter().find(|l| l.credential_source() == Some(name))?;
    let plan = link.plan(self, Role::CredentialSource);
    Some(link.load(&plan, self, deadline).await)
  }
}
