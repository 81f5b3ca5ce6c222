//! `ContainerAwsCredentialsSupplier`: google-auth-library's `AwsSecurityCredentialsSupplier`,
//! backed by the core's process-wide chain and caches.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use super::js_error::{spawn, to_napi};
use crate::aws::credentials::AwsCredentials;
use crate::cache::Entry;
use crate::env::epoch_millis;
use crate::supplier::{SupplierCore, SupplierOptions};

/// Options of `ContainerAwsCredentialsSupplier`. All are optional; `new ContainerAwsCredentialsSupplier()`
/// reads everything from the environment, as the AWS SDKs do.
#[napi(object, object_to_js = false)]
pub struct ContainerAwsCredentialsSupplierOptions {
  /// AWS region for the GetCallerIdentity request. When unset: `AWS_REGION`, then
  /// `AWS_DEFAULT_REGION`, then ECS task metadata v4, then EC2 IMDSv2.
  /// @example 'us-east-1'
  pub region: Option<String>,
  /// Cached credentials are refreshed when they are this close to their `Expiration`, in seconds
  /// (0 to 3600).
  /// @default 300
  pub refresh_margin_seconds: Option<f64>,
  /// Upper bound, in milliseconds, on one credentials or region lookup including its retries
  /// (1 to 300000). Past it the promise rejects with `code: 'TIMEOUT'`.
  /// @default 10000
  pub timeout_ms: Option<f64>,
}

/// AWS security credentials, exactly google-auth-library's `AwsSecurityCredentials`.
#[napi(object)]
pub struct AwsSecurityCredentials {
  /// The AWS access key id (`ASIA…` for temporary credentials).
  pub access_key_id: String,
  /// The AWS secret access key.
  pub secret_access_key: String,
  /// The session token of temporary credentials; absent for long-term keys.
  pub token: Option<String>,
}

/// Credentials with the time until which they may be reused without asking again (used by the
/// package's JavaScript wrapper to answer repeated calls without crossing into native code).
#[napi(object)]
pub struct CredentialsLease {
  /// The credentials.
  pub credentials: AwsSecurityCredentials,
  /// Milliseconds since the epoch; reuse `credentials` until then.
  pub refresh_at: f64,
  /// Milliseconds since the epoch when the credentials expire, if they do.
  pub expires_at: Option<f64>,
}

fn to_js(c: &AwsCredentials) -> AwsSecurityCredentials {
  AwsSecurityCredentials {
    access_key_id: c.access_key_id.clone(),
    secret_access_key: c.secret_access_key.expose().to_string(),
    token: c.session_token.as_ref().map(|t| t.expose().to_string()),
  }
}

fn lease(e: Entry<AwsCredentials>) -> CredentialsLease {
  CredentialsLease { credentials: to_js(&e.value), refresh_at: epoch_millis(e.refresh_at), expires_at: e.expires_at.map(epoch_millis) }
}

/// A drop-in `AwsSecurityCredentialsSupplier` for google-auth-library's `AwsClient`, for code
/// running in AWS containers (ECS, Fargate, App Runner, EKS) and on EC2.
///
/// Credentials come from the AWS default chain: environment keys, shared profile, web identity
/// (EKS IRSA), the container endpoint (ECS / App Runner / EKS Pod Identity) and EC2 IMDSv2. They are
/// cached process-wide, refreshed 5 minutes before they expire, with one fetch shared by all
/// concurrent callers; failures are never cached.
///
/// @example
/// ```js
/// const { AwsClient } = require('google-auth-library')
/// const { ContainerAwsCredentialsSupplier } = require('aws-wif-supplier')
/// const authClient = new AwsClient({
///   audience, subject_token_type: 'urn:ietf:params:aws:token-type:aws4_request',
///   token_url: 'https://sts.googleapis.com/v1/token', service_account_impersonation_url,
///   aws_security_credentials_supplier: new ContainerAwsCredentialsSupplier(),
/// })
/// ```
#[napi]
pub struct ContainerAwsCredentialsSupplier {
  core: Arc<SupplierCore>,
}

#[napi]
impl ContainerAwsCredentialsSupplier {
  /// Reads the environment now; nothing is fetched until the first call.
  /// @throws {Error} with `code: 'CONFIG_INVALID'` for invalid options.
  #[napi(constructor)]
  pub fn new(env: Env, options: Option<ContainerAwsCredentialsSupplierOptions>) -> Result<Self> {
    let o = options.unwrap_or(ContainerAwsCredentialsSupplierOptions { region: None, refresh_margin_seconds: None, timeout_ms: None });
    let opts = SupplierOptions::from_raw(o.region, o.refresh_margin_seconds, o.timeout_ms).map_err(|e| to_napi(&env, &e))?;
    Ok(ContainerAwsCredentialsSupplier { core: SupplierCore::shared(super::context::thread_context(&env)?, opts) })
  }

  /// The AWS region, resolved once per process and configuration.
  /// Rejects with `code: 'REGION_NOT_FOUND'` (or `'TIMEOUT'`) naming every source tried.
  /// @param context google-auth-library's `ExternalAccountSupplierContext`; accepted and ignored.
  #[napi(ts_args_type = "context?: unknown")]
  pub fn get_aws_region<'env>(&self, env: &'env Env, context: Option<Unknown<'env>>) -> Result<PromiseRaw<'env, String>> {
    let _ = context;
    if let Some(r) = self.core.peek_region() {
      return PromiseRaw::resolve(env, r.region);
    }
    let core = self.core.clone();
    spawn(env, async move { core.region().await }, |r| r.region)
  }

  /// Whether the chain may use native HTTPS (AWS STS for a profile or web-identity link, an https
  /// container endpoint). Internal: the package's JavaScript hands Node's trusted certificates over
  /// only then.
  #[napi(getter, skip_typescript)]
  pub fn may_use_https(&self) -> bool {
    self.core.chain().may_use_https()
  }

  /// Whether `AWS_PROFILE` makes the chain skip environment keys that are set too (the JavaScript
  /// SDK's chain does the same, with a warning). Internal: the package's JavaScript warns once.
  #[napi(getter, skip_typescript)]
  pub fn profile_overrides_env_keys(&self) -> bool {
    crate::aws::env_keys::skipped_for_profile(self.core.chain().context())
  }

  /// Settings that are set but ignored (one key of a pair), each with why. Internal: the package's
  /// JavaScript warns once per message.
  #[napi(getter, skip_typescript)]
  pub fn ignored_settings(&self) -> Vec<String> {
    self.core.chain().ignored_settings()
  }

  /// Credentials plus the instant until which they may be reused. Internal: the package's
  /// JavaScript wrapper builds `getAwsSecurityCredentials()` on it.
  #[napi]
  pub fn credentials_lease<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, CredentialsLease>> {
    if let Some(e) = self.core.peek_credentials() {
      return PromiseRaw::resolve(env, lease(e));
    }
    let core = self.core.clone();
    spawn(env, async move { core.credentials().await }, lease)
  }
}
