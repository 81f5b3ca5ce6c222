//! Web identity token (third link): EKS IRSA, AWS STS `AssumeRoleWithWebIdentity`.
//!
//! Needs `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN` (one without the other: the link is
//! skipped, as in the JavaScript SDK and aws-config, and [`ignored`] says so); `AWS_ROLE_SESSION_NAME` is optional
//! (default `aws-sdk-js-session-<epoch millis>`, [`DEFAULT_SESSION_PREFIX`], the JavaScript SDK's).
//! The token file is read on every fetch (Kubernetes rotates it); one that cannot be read, or is
//! not UTF-8, is `CONFIG_INVALID` and nothing is sent. A profile with `web_identity_token_file` and
//! `role_arn` (and `role_session_name`, else `AWS_ROLE_SESSION_NAME`) is sent the same way (by the
//! profile link, [`super::profile`]), as the JavaScript SDK's ini provider hands such a profile to
//! the same `fromTokenFile`.
//!
//! Spec: AWS STS `AssumeRoleWithWebIdentity`, sent by [`super::sts::assume_role_with_web_identity`]
//! (the request, the endpoint and the retry are described there).

use crate::context::Context;
use crate::error::Result;
use crate::http::Deadline;

use super::credentials::AwsCredentials;
use super::link::{evidence, Description, Link, LinkContext, LoadFuture, Loaded, Plan, Role};

/// The link: the token file and the role, sent to AWS STS.
pub struct WebIdentity;

impl Link for WebIdentity {
  /// The token file and the role ARN.
  type Todo = (String, String);

  fn plan(&self, lc: &LinkContext<'_>, _: Role) -> Plan<Self::Todo> {
    let ctx = &lc.ctx;
    let todo = ctx.env.get(ENV_TOKEN_FILE).zip(ctx.env.get(ENV_ROLE_ARN)).map(|(f, r)| (f.to_string(), r.to_string()));
    Plan::new(describe(ctx), || todo.unwrap_or_default()).ignoring(ignored(ctx)).https(true)
  }

  fn load<'a>(&'a self, (file, role): &'a Self::Todo, lc: &'a LinkContext<'a>, deadline: Deadline) -> LoadFuture<'a> {
    Box::pin(async move {
      Ok(match load(&lc.ctx, lc.sts_region(), file, role, deadline).await? {
        Some(c) => Loaded::Found(c),
        None => Loaded::Passed("web identity: AWS STS gave no credentials".to_string()),
      })
    })
  }
}

pub const LINK: &str = "web identity";

pub fn describe(ctx: &Context) -> Description {
  match (ctx.env.get(ENV_TOKEN_FILE), ctx.env.get(ENV_ROLE_ARN)) {
    (Some(_), Some(_)) => Description::configured(
      LINK,
      "EKS IRSA (web identity)",
      evidence(ctx, &[ENV_TOKEN_FILE, ENV_ROLE_ARN, ENV_SESSION_NAME]),
      "web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (AWS STS AssumeRoleWithWebIdentity)",
    ),
    (Some(_), None) => Description::skipped(LINK, format!("web identity: {}", ignored(ctx).unwrap_or_default())),
    _ => Description::skipped(LINK, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set"),
  }
}

/// Why a token file that is set is not used: `AWS_ROLE_ARN` is not set.
pub fn ignored(ctx: &Context) -> Option<String> {
  match (ctx.env.get(ENV_TOKEN_FILE), ctx.env.get(ENV_ROLE_ARN)) {
    (Some(_), None) => Some(format!(
      "{ENV_TOKEN_FILE} is set but {ENV_ROLE_ARN} is not: web identity is skipped and the next credential source is used, as the AWS SDKs do"
    )),
    _ => None,
  }
}

pub const ENV_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
pub const ENV_ROLE_ARN: &str = "AWS_ROLE_ARN";
pub use super::sts::ENV_SESSION_NAME;
/// The session name prefix when none is configured (the JavaScript SDK's `fromWebToken`).
pub use super::sts::WEB_IDENTITY_SESSION_PREFIX as DEFAULT_SESSION_PREFIX;

/// `AssumeRoleWithWebIdentity` for `role` with the token in `file` (read now: Kubernetes rotates
/// it); `sts_region`: where AWS STS is called (the chain's region).
async fn load(ctx: &Context, sts_region: &str, file: &str, role: &str, deadline: Deadline) -> Result<Option<AwsCredentials>> {
  let token = super::credentials::read_token_file(ctx, ENV_TOKEN_FILE, file, None, deadline).await?;
  let source = "web identity (IRSA)";
  super::sts::assume_role_with_web_identity(ctx, sts_region, token, role, None, source, source, deadline).await
}
