//! `describeAwsChain()`: what each link of the AWS credential chain sees, in order, as the chain
//! itself decides it (what `doctor` prints).

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::aws::chain::Chain;

/// One link of the AWS credential chain, as it sees the environment.
#[napi(object)]
pub struct AwsChainLink {
  /// `environment`, `profile`, `web identity`, `container` or `imds`, in chain order.
  pub link: String,
  /// Whether the chain will try this link.
  pub configured: bool,
  /// Whether this is the link the chain tries first (the first configured one).
  pub selected: bool,
  /// The runtime it points at (`ECS on Fargate`, `EKS Pod Identity`, `shared AWS profile`…); empty
  /// when not configured (IMDS says why when disabled).
  pub runtime: String,
  /// The names (never values) of the variables that say so.
  pub evidence: Vec<String>,
  /// What is configured, or why the link is skipped (no secret).
  pub detail: String,
}

/// Describe the AWS credential chain for the calling thread's environment, link by link, in the
/// order the chain tries them. Reads the environment and the shared profile files; sends nothing.
#[napi]
pub fn describe_aws_chain(env: Env) -> Result<Vec<AwsChainLink>> {
  let chain = Chain::new(super::context::thread_context(&env)?, None);
  let all = chain.describe();
  let selected = crate::aws::chain::selected(&all);
  Ok(
    all
      .into_iter()
      .map(|d| AwsChainLink {
        selected: d.link == selected.link,
        link: d.link.to_string(),
        configured: d.configured,
        runtime: d.runtime,
        evidence: d.evidence.into_iter().map(str::to_string).collect(),
        detail: d.detail,
      })
      .collect(),
  )
}
