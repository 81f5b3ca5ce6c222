//! EC2 Instance Metadata Service: IMDSv2, with the JavaScript SDK's IMDSv1 fallback.
//!
//! Spec (AWS "Use IMDSv2"; aws-config `imds/client.rs`):
//! * Endpoint: `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`
//!   → `http://[fd00:ec2::254]`, else `http://169.254.169.254`.
//! * `AWS_EC2_METADATA_DISABLED=true` turns the whole service off (credentials and region).
//! * Session: `PUT /latest/api/token` with `x-aws-ec2-metadata-token-ttl-seconds: 21600`; every
//!   `GET` sends `x-aws-ec2-metadata-token`. The token is reused until 120 s before its TTL ends.
//! * Credentials: `GET /latest/meta-data/iam/security-credentials/` → role name (first line), then
//!   `GET …/security-credentials/<role>` → JSON (see [`crate::aws::credentials`]).
//! * Region: `GET /latest/meta-data/placement/region`.
//! * IMDSv1 fallback, as the AWS SDK for JavaScript does: when the token request is answered 403,
//!   404 or 405 (an IMDSv1-only endpoint, or a proxy that forbids PUT), metadata is read without
//!   a session token, unless `AWS_EC2_METADATA_V1_DISABLED=true`.
//! * Off EC2 nothing answers: the token request's first attempt gets at most [`client::PROBE_TIMEOUT`],
//!   and a connect error or timeout there means "no IMDS here" (the chain moves on) rather than
//!   an error, so chains off EC2 do not get slower. A token request that *is* answered with a
//!   transient status (5xx, 429, 408) is retried, as aws-config retries it, up to
//!   [`crate::http::MAX_ATTEMPTS`] attempts in all, with backoff, within the caller's deadline.
//!   Once the token is obtained, failures are real errors.

pub mod client;

use crate::context::Context;
use crate::http::Deadline;

use super::link::{evidence, Description, Link, LinkContext, LoadFuture, Loaded, Plan, Role};
use client::{Lookup, ENV_DISABLED, ENV_ENDPOINT, ENV_ENDPOINT_MODE};

pub const LINK: &str = "imds";

/// IMDS is tried whenever it is not disabled: only a request tells whether this is EC2.
pub fn describe(ctx: &Context) -> Description {
  if ctx.env.is_true(ENV_DISABLED) {
    let mut d = Description::skipped(LINK, "IMDS: disabled by AWS_EC2_METADATA_DISABLED");
    d.runtime = "none found (IMDS disabled)".into();
    d.evidence = vec![ENV_DISABLED];
    return d;
  }
  Description::configured(
    LINK,
    "EC2 instance metadata (IMDSv2), if this is an EC2 instance",
    evidence(ctx, &[ENV_ENDPOINT, ENV_ENDPOINT_MODE]),
    "IMDS: tried last (answers only on EC2)",
  )
}

/// The link: the chain's IMDS client ([`LinkContext::imds`]), which keeps its session token.
pub struct InstanceMetadata;

impl Link for InstanceMetadata {
  type Todo = ();
  const CREDENTIAL_SOURCE: Option<&'static str> = Some("Ec2InstanceMetadata");

  fn plan(&self, lc: &LinkContext<'_>, role: Role) -> Plan<Self::Todo> {
    match role {
      Role::CredentialSource if lc.imds.is_none() => {
        Plan::skipped(Description::skipped(LINK, "instance metadata is disabled (AWS_EC2_METADATA_DISABLED)"))
      }
      _ => Plan::new(describe(&lc.ctx), || ()),
    }
  }

  /// Off EC2 nothing answers: the link passes, saying why.
  fn load<'a>(&'a self, _: &'a (), lc: &'a LinkContext<'a>, deadline: Deadline) -> LoadFuture<'a> {
    Box::pin(async move {
      let Some(imds) = lc.imds else { return Ok(Loaded::Passed("instance metadata is disabled (AWS_EC2_METADATA_DISABLED)".into())) };
      Ok(match imds.credentials(&lc.ctx, deadline).await? {
        Lookup::Found(c) => Loaded::Found(c),
        Lookup::Unavailable(why) => Loaded::Passed(why),
      })
    })
  }
}
