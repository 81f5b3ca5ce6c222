//! The shape every credential source (link) of the chain shares.
//!
//! Each link is a file in `src/aws/` with the same two functions:
//! * `describe(ctx) -> Description`: whether the environment configures this link, the runtime
//!   it points at, the variable *names* that say so (never values), and why not when it does not;
//!   no I/O but reading the profile files;
//! * `load(ctx, …, deadline) -> Result<Option<AwsCredentials>>`: `Ok(None)` when not configured,
//!   an error when configured and failing (a configured link never silently falls through).
//!
//! [`super::chain::Chain`] is the list of links in order: `load` tries them in that order and
//! `describe` is what `doctor` prints, so "which source" has one answer.

use crate::context::Context;

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
