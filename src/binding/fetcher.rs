//! `GoogleTokenFetcher`: the whole federation flow natively, and `diagnose` for the doctor.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use super::js_error::{spawn, to_napi};
use crate::cache::{Entry, Policy};
use crate::context::Context;
use crate::env::epoch_millis;
use crate::google::config_file::{FetcherConfig, FetcherOptions};
use crate::google::doctor::{self, StepOutcome, StepStatus};
use crate::google::fetcher::FetcherCore;
use crate::google::flow::AccessToken;
use crate::google::id_token::IdToken;
use crate::google::token_store::{self, Refresh};
use crate::supplier::{SupplierCore, SupplierOptions};

/// `service_account_impersonation` of the options.
#[napi(object, object_to_js = false)]
pub struct ServiceAccountImpersonationOptions {
  /// Lifetime of the impersonated token in seconds, 600 to 43200.
  /// @default 3600
  pub token_lifetime_seconds: Option<f64>,
}

/// How the fetcher finds AWS credentials and caches tokens (shared by every constructor).
#[napi(object, object_to_js = false)]
pub struct FetcherRuntimeOptions {
  /// AWS region for the GetCallerIdentity request; as `ContainerAwsCredentialsSupplierOptions.region`.
  pub region: Option<String>,
  /// Tokens (and AWS credentials) are refreshed this many seconds before they expire.
  /// @default 300
  pub refresh_margin_seconds: Option<f64>,
  /// Upper bound in milliseconds on the AWS lookups and on the Google calls of one fetch.
  /// @default 10000
  pub timeout_ms: Option<f64>,
  /// Each token is refreshed a further random 0 to this many seconds early, so that many processes
  /// started together do not all exchange tokens in the same minute (STS quotas are per minute).
  /// @default 300
  pub refresh_jitter_seconds: Option<f64>,
  /// Refresh in the background: inside the refresh margin callers get the current token at once
  /// while one refresh runs behind them.
  /// @default false
  pub background_refresh: Option<bool>,
  /// Hosts, besides `googleapis.com` and its subdomains (and loopback), to which a credential
  /// configuration *file or object* may send the signed AWS proof and tokens (its `token_url` and
  /// `service_account_impersonation_url`): an exact host, or `.suffix` for its subdomains. A
  /// configuration is not trusted to choose them: allow a Private Service Connect or other
  /// endpoint you trust here, in code. Ignored by `new GoogleTokenFetcher(options)`, whose
  /// options are the application's own.
  /// @example ['sts.private.example.com', '.p.example.com']
  pub allowed_endpoint_hosts: Option<Vec<String>>,
}

/// Options of `new GoogleTokenFetcher(options)`, mirroring google-auth-library's `AwsClientOptions`
/// (camelCase).
#[napi(object, object_to_js = false)]
pub struct GoogleTokenFetcherOptions {
  /// The workload identity provider:
  /// `//iam.googleapis.com/projects/<PROJECT_NUMBER>/locations/global/workloadIdentityPools/<POOL_ID>/providers/<PROVIDER_ID>`.
  pub audience: String,
  /// The STS token endpoint, used as given.
  /// @default 'https://sts.{universeDomain}/v1/token'
  pub token_url: Option<String>,
  /// `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/<EMAIL>:generateAccessToken`;
  /// when unset the federated STS token is returned as the access token.
  pub service_account_impersonation_url: Option<String>,
  /// Settings of the impersonated token.
  pub service_account_impersonation: Option<ServiceAccountImpersonationOptions>,
  /// OAuth scopes of the access token.
  /// @default ['https://www.googleapis.com/auth/cloud-platform']
  pub scopes: Option<Vec<String>>,
  /// The Google Cloud universe.
  /// @default 'googleapis.com'
  pub universe_domain: Option<String>,
  /// Project billed for quota, sent as `x-goog-user-project` by `getRequestHeaders()`.
  pub quota_project_id: Option<String>,
  /// AWS region for the GetCallerIdentity request; as `ContainerAwsCredentialsSupplierOptions.region`.
  pub region: Option<String>,
  /// Tokens (and AWS credentials) are refreshed this many seconds before they expire.
  /// @default 300
  pub refresh_margin_seconds: Option<f64>,
  /// Upper bound in milliseconds on the AWS lookups and on the Google calls of one fetch.
  /// @default 10000
  pub timeout_ms: Option<f64>,
  /// Each token is refreshed a further random 0 to this many seconds early, so that many processes
  /// started together do not all exchange tokens in the same minute (STS quotas are per minute).
  /// @default 300
  pub refresh_jitter_seconds: Option<f64>,
  /// Refresh in the background: inside the refresh margin callers get the current token at once
  /// while one refresh runs behind them.
  /// @default false
  pub background_refresh: Option<bool>,
}

/// A Google access token.
#[napi(object)]
pub struct GoogleAccessToken {
  /// The OAuth 2.0 access token, for `Authorization: Bearer <token>`.
  pub token: String,
  /// When it expires, in milliseconds since the epoch.
  pub expires_at: f64,
}

/// A token with the instant until which it may be reused (internal, for the JS wrapper).
#[napi(object)]
pub struct TokenLease {
  /// The token.
  pub token: GoogleAccessToken,
  /// Milliseconds since the epoch; reuse `token` until then.
  pub refresh_at: f64,
}

/// An OpenID Connect ID token.
#[napi(object)]
pub struct GoogleIdToken {
  /// The JWT, for `Authorization: Bearer <token>` (Cloud Run, IAP).
  pub token: String,
  /// Its `exp`, in milliseconds since the epoch.
  pub expires_at: f64,
}

/// An ID token with the instant until which it may be reused (internal, for the JS wrapper).
#[napi(object)]
pub struct IdTokenLease {
  /// The token.
  pub token: GoogleIdToken,
  /// Milliseconds since the epoch; reuse `token` until then.
  pub refresh_at: f64,
}

/// What the JS wrapper needs to build a google-auth-library client (internal; no secret).
#[napi(object)]
pub struct FetcherClientInfo {
  /// The workload identity provider.
  pub audience: String,
  /// The STS token endpoint.
  pub token_url: String,
  /// The generateAccessToken URL, when impersonating.
  pub service_account_impersonation_url: Option<String>,
  /// The Google Cloud universe.
  pub universe_domain: String,
  /// The quota project, if any.
  pub quota_project_id: Option<String>,
  /// The OAuth scopes of the access token.
  pub scopes: Vec<String>,
}

/// One step of `diagnose()`.
#[napi(object)]
pub struct DiagnosticStep {
  /// `config`, `region`, `credentials`, `subject_token`, `sts` or `impersonation`.
  pub step: String,
  /// `ok`, `failed` or `skipped`.
  pub status: String,
  /// What was found or done (never a secret).
  pub detail: String,
  /// The error code when the step failed.
  pub code: Option<String>,
  /// What to fix, when known.
  pub hint: Option<String>,
}

fn step_to_js(o: StepOutcome) -> DiagnosticStep {
  let status = match o.status {
    StepStatus::Ok => "ok",
    StepStatus::Failed => "failed",
    StepStatus::Skipped => "skipped",
  };
  DiagnosticStep {
    step: o.step.to_string(),
    status: status.to_string(),
    detail: o.detail,
    code: o.error.as_ref().map(|e| e.code().to_string()),
    hint: o.error.as_ref().and_then(|e| e.hint().map(str::to_string)),
  }
}

fn token_to_js(t: &AccessToken) -> GoogleAccessToken {
  GoogleAccessToken { token: t.token.expose().to_string(), expires_at: epoch_millis(t.expires_at) }
}

fn lease(e: Entry<AccessToken>) -> TokenLease {
  TokenLease { token: token_to_js(&e.value), refresh_at: epoch_millis(e.refresh_at) }
}

fn id_lease(e: Entry<IdToken>) -> IdTokenLease {
  IdTokenLease {
    token: GoogleIdToken { token: e.value.token.expose().to_string(), expires_at: epoch_millis(e.value.expires_at) },
    refresh_at: epoch_millis(e.refresh_at),
  }
}

/// The bound of a factory's read of its configuration file: `timeoutMs`, else the default (an
/// invalid `timeoutMs` is refused later, by [`build`]).
fn read_bound(rt: &FetcherRuntimeOptions) -> Duration {
  SupplierOptions::from_raw(None, None, rt.timeout_ms).map(|o| o.timeout).unwrap_or(crate::supplier::DEFAULT_TIMEOUT)
}

fn runtime(o: Option<FetcherRuntimeOptions>) -> FetcherRuntimeOptions {
  o.unwrap_or(FetcherRuntimeOptions {
    region: None,
    refresh_margin_seconds: None,
    refresh_jitter_seconds: None,
    timeout_ms: None,
    background_refresh: None,
    allowed_endpoint_hosts: None,
  })
}

/// The options object with each name in its camelCase spelling, by the rules of
/// [`crate::google::options`], then read as [`GoogleTokenFetcherOptions`]. Anything but an object is
/// left to that read (which refuses it).
fn fetcher_options(env: &Env, options: Unknown) -> Result<GoogleTokenFetcherOptions> {
  use crate::google::options::FETCHER_OPTIONS;
  let object = camel_case(env, options, FETCHER_OPTIONS, "options")?;
  unsafe { GoogleTokenFetcherOptions::from_napi_value(env.raw(), object) }
}

/// A copy of `object` under the camelCase names of `table` (see [`crate::google::options::normalise`]).
fn camel_case(env: &Env, object: Unknown, table: &[(&'static str, &'static str)], what: &str) -> Result<napi::sys::napi_value> {
  if object.get_type()? != ValueType::Object {
    return Ok(object.raw());
  }
  let object_ctor: Unknown = env.get_global()?.get_named_property("Object")?;
  let object_ctor: Object = unsafe { object_ctor.cast()? };
  let keys: Function<Unknown, Vec<String>> = object_ctor.get_named_property("keys")?;
  let given = keys.apply(object_ctor, object)?;
  let names = crate::google::options::normalise(&given, table, what).map_err(|e| to_napi(env, &e))?;
  let source: Object = unsafe { object.cast()? };
  let mut out = Object::new(env)?;
  for (name, camel) in names {
    let value: Unknown = source.get_named_property(&name)?;
    if camel == "serviceAccountImpersonation" {
      let nested = camel_case(env, value, crate::google::options::IMPERSONATION_OPTIONS, &format!("{what}.{name}"))?;
      out.set_named_property(camel, unsafe { Unknown::from_raw_unchecked(env.raw(), nested) })?;
    } else {
      out.set_named_property(camel, value)?;
    }
  }
  Ok(out.raw())
}

fn build(env: &Env, ctx: Context, config: crate::error::Result<FetcherConfig>, rt: FetcherRuntimeOptions) -> Result<GoogleTokenFetcher> {
  let config = config.map_err(|e| to_napi(env, &e))?;
  let opts = SupplierOptions::from_raw(rt.region, rt.refresh_margin_seconds, rt.timeout_ms).map_err(|e| to_napi(env, &e))?;
  let jitter = crate::google::options::refresh_jitter(rt.refresh_jitter_seconds).map_err(|e| to_napi(env, &e))?;
  // The refresh mode is the object's, not the cache's: one configuration is one cache whichever
  // way its callers refresh.
  let background = rt.background_refresh.unwrap_or(token_store::FETCHER_BACKGROUND_REFRESH);
  let policy = Policy { margin: opts.refresh_margin, jitter, ..Policy::default() };
  let supplier = SupplierCore::shared(ctx, opts);
  Ok(GoogleTokenFetcher { core: FetcherCore::shared(config, supplier, policy), background })
}

/// Gets Google access tokens for this AWS workload without google-auth-library: AWS credentials
/// (same chain and process-wide cache as `ContainerAwsCredentialsSupplier`) → SigV4-signed
/// GetCallerIdentity subject token → Google STS → optional service account impersonation.
/// Tokens are cached process-wide per configuration (all instances and worker threads), refreshed
/// 5 to 10 minutes before expiry (`refreshMarginSeconds` + `refreshJitterSeconds`); concurrent
/// callers share one fetch; failures are never cached.
#[napi]
pub struct GoogleTokenFetcher {
  core: Arc<FetcherCore>,
  /// `backgroundRefresh` of this object's options.
  background: bool,
}

#[napi]
impl GoogleTokenFetcher {
  /// @throws {Error} with `code: 'CONFIG_INVALID'` for invalid options.
  #[napi(constructor, ts_args_type = "options: GoogleTokenFetcherOptions")]
  pub fn new(env: Env, options: Unknown) -> Result<Self> {
    let o = fetcher_options(&env, options)?;
    let raw = FetcherOptions {
      audience: o.audience,
      token_url: o.token_url,
      service_account_impersonation_url: o.service_account_impersonation_url,
      token_lifetime_seconds: o.service_account_impersonation.and_then(|s| s.token_lifetime_seconds),
      scopes: o.scopes,
      universe_domain: o.universe_domain,
      quota_project_id: o.quota_project_id,
      ..FetcherOptions::default()
    };
    let rt = FetcherRuntimeOptions {
      region: o.region,
      refresh_margin_seconds: o.refresh_margin_seconds,
      refresh_jitter_seconds: o.refresh_jitter_seconds,
      timeout_ms: o.timeout_ms,
      background_refresh: o.background_refresh,
      allowed_endpoint_hosts: None,
    };
    build(&env, super::context::thread_context(&env)?, FetcherConfig::from_options(raw), rt)
  }

  /// From the `external_account` JSON written by
  /// `gcloud iam workload-identity-pools create-cred-config --aws`: a file path, or the parsed
  /// object. Its EC2-only `credential_source` URLs are replaced by the container-aware AWS chain;
  /// `environment_id` must be `aws1`.
  #[napi(factory, ts_args_type = "pathOrObject: string | object, options?: FetcherRuntimeOptions | undefined | null")]
  pub fn from_credential_config(env: Env, path_or_object: Unknown, options: Option<FetcherRuntimeOptions>) -> Result<Self> {
    let ctx = super::context::thread_context(&env)?;
    let rt = runtime(options);
    let allowed = rt.allowed_endpoint_hosts.clone().unwrap_or_default();
    let config = match path_or_object.get_type()? {
      ValueType::String => {
        let path: String = unsafe { path_or_object.cast()? };
        let path = std::path::PathBuf::from(path);
        // Read on a thread of its own within timeoutMs: a hung mount never hangs the constructor.
        let view = crate::file_read::preload_blocking(&ctx, [path.clone()], read_bound(&rt));
        FetcherConfig::load(&view, &path, &allowed)
      }
      ValueType::Object => {
        let json: Object = env.get_global()?.get_named_property("JSON")?;
        let stringify: Function<Unknown, String> = json.get_named_property("stringify")?;
        let text = stringify.apply(json, path_or_object)?;
        FetcherConfig::from_json_allowing(text.as_bytes(), "credential configuration object", &allowed)
      }
      _ => Err(crate::error::Error::new(
        crate::error::ErrorKind::ConfigInvalid,
        "fromCredentialConfig takes a file path or a parsed configuration object",
      )),
    };
    build(&env, ctx, config, rt)
  }

  /// From the credential configuration file named by `GOOGLE_APPLICATION_CREDENTIALS`.
  #[napi(factory)]
  pub fn from_env(env: Env, options: Option<FetcherRuntimeOptions>) -> Result<Self> {
    let ctx = super::context::thread_context(&env)?;
    let rt = runtime(options);
    let view = crate::file_read::preload_blocking(&ctx, FetcherConfig::path_from_env(&ctx), read_bound(&rt));
    let config = FetcherConfig::from_context(&view, rt.allowed_endpoint_hosts.as_deref().unwrap_or_default());
    build(&env, ctx, config, rt)
  }

  /// Token plus reuse deadline. Internal: the package's JavaScript wrapper builds
  /// `getAccessToken()` and `getRequestHeaders()` on it. `background` overrides the object's
  /// `backgroundRefresh` for this call. A token the store may hand out now
  /// ([`token_store::TokenStore::ready`], which also starts a background refresh when one is due)
  /// is answered here on the JS thread; otherwise the caller waits for one shared fetch.
  #[napi]
  pub fn token_lease<'env>(&self, env: &'env Env, background: Option<bool>) -> Result<PromiseRaw<'env, TokenLease>> {
    let refresh = Refresh::from_option(background, self.background);
    let tokens = self.core.tokens();
    if let Some(e) = tokens.ready(refresh) {
      return PromiseRaw::resolve(env, lease(e));
    }
    let tokens = tokens.clone();
    spawn(env, async move { tokens.access_token_with(refresh).await }, lease)
  }

  /// ID token plus reuse deadline. Internal: the JavaScript wrapper builds `getIdToken()` on it.
  #[napi]
  pub fn id_token_lease<'env>(
    &self,
    env: &'env Env,
    audience: String,
    include_email: Option<bool>,
  ) -> Result<PromiseRaw<'env, IdTokenLease>> {
    let include_email = include_email.unwrap_or(false);
    if let Some(e) = self.core.tokens().peek_id_token(&audience, include_email) {
      return PromiseRaw::resolve(env, id_lease(e));
    }
    let core = self.core.clone();
    spawn(env, async move { core.tokens().id_token(&audience, include_email).await }, id_lease)
  }

  /// Drop every cached token of this configuration (process-wide). Internal: `invalidate()` in
  /// JavaScript also drops this thread's memos.
  #[napi]
  pub fn invalidate(&self) {
    self.core.tokens().invalidate();
  }

  /// An API rejected `token` (401): whether to retry with another token (the core drops it within
  /// its forced-refresh bound). Internal (401 handling).
  #[napi]
  pub fn invalidate_token(&self, token: String) -> bool {
    self.core.tokens().invalidate_token(&token)
  }

  /// A service rejected the ID token `token` of (audience, includeEmail): whether to retry, as
  /// `invalidateToken`. Internal (401 handling).
  #[napi]
  pub fn invalidate_id_token(&self, audience: String, include_email: bool, token: String) -> bool {
    self.core.tokens().invalidate_id_token(&audience, include_email, &token)
  }

  /// Settings of the AWS chain that are set but ignored, each with why. Internal: the package's
  /// JavaScript warns once per message.
  #[napi(getter, skip_typescript)]
  pub fn ignored_settings(&self) -> Vec<String> {
    self.core.supplier().chain().ignored_settings()
  }

  /// `backgroundRefresh` of this object's options. Internal (the JavaScript memos).
  #[napi(getter)]
  pub fn background_refresh(&self) -> bool {
    self.background
  }

  /// Process-unique id of this configuration's cache. Internal (the JavaScript memos).
  #[napi(getter)]
  pub fn cache_id(&self) -> f64 {
    self.core.id() as f64
  }

  /// What a google-auth-library client needs. Internal (`authClient()`).
  #[napi(getter)]
  pub fn client_info(&self) -> FetcherClientInfo {
    let c = self.core.config();
    FetcherClientInfo {
      audience: c.audience.clone(),
      token_url: c.token_url.clone(),
      service_account_impersonation_url: c.service_account_impersonation_url.clone(),
      universe_domain: c.universe_domain.clone(),
      quota_project_id: c.quota_project_id.clone(),
      scopes: c.scopes.clone(),
    }
  }

  /// The project sent as `x-goog-user-project`, if any.
  #[napi(getter)]
  pub fn quota_project_id(&self) -> Option<String> {
    self.core.config().quota_project_id.clone()
  }

  /// Run every step once (config, region, credentials, subject token, STS, impersonation) and report
  /// each, without secrets. Used by `npx aws-wif-supplier doctor`.
  #[napi]
  pub fn diagnose<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<DiagnosticStep>>> {
    let core = self.core.clone();
    spawn(env, async move { Ok(core.diagnose().await) }, |steps| steps.into_iter().map(step_to_js).collect())
  }
}

/// Diagnose the AWS side only (region and credentials, with where each came from), for when no
/// Google configuration is at hand. Uses `region` and `timeoutMs` of the options.
#[napi]
pub fn diagnose_aws<'env>(env: &'env Env, options: Option<FetcherRuntimeOptions>) -> Result<PromiseRaw<'env, Vec<DiagnosticStep>>> {
  let rt = runtime(options);
  let opts = SupplierOptions::from_raw(rt.region, rt.refresh_margin_seconds, rt.timeout_ms).map_err(|e| to_napi(env, &e))?;
  let supplier = SupplierCore::shared(super::context::thread_context(env)?, opts);
  spawn(env, async move { Ok(doctor::diagnose_aws(&supplier).await) }, |steps| steps.into_iter().map(step_to_js).collect())
}
