//! The token fetcher core: a Google access token for this AWS workload, napi-free.
//!
//! One fetch runs, in order (google-auth-library `BaseExternalAccountClient.refreshAccessTokenAsync`):
//! 1. `region`: the AWS region from the [`SupplierCore`] (option → `AWS_REGION` → … → IMDS, cached for
//!    the process);
//! 2. `credentials`: AWS credentials from the same core, i.e. the same chain and the same
//!    process-wide credential cache the supplier uses;
//! 3. `subject_token`: the signed GetCallerIdentity request ([`super::subject_token`]);
//! 4. `sts`: the token exchange ([`super::sts`]). Scope: `cloud-platform` when impersonating (what
//!    `generateAccessToken` needs), else the configured scopes;
//! 5. `impersonation` (only with `service_account_impersonation_url`): `generateAccessToken` with the
//!    configured scopes and lifetime ([`super::impersonation`]).
//!
//! Expiry: the impersonated token's `expireTime`; else `now + expires_in`; an STS answer without
//! `expires_in` is assumed to live [`ASSUMED_LIFETIME`] (google-auth-library would never refresh it).
//! The result is cached in a [`Cache`]: fresh until 5 minutes (the policy's margin, like
//! google-auth-library's `eagerRefreshThresholdMillis`) before expiry, one in-flight fetch shared
//! by all callers, failures never cached, optional background refresh (`Policy.background`).
//! Google steps share one deadline of the supplier's timeout (10 s by default).
//!
//! [`FetcherCore::diagnose`] runs the same steps one by one for a `doctor` tool and reports each
//! (name, ok / failed / skipped, a non-secret detail, the error), without touching the token cache.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::aws::credentials::{mask_key_id, AwsCredentials};
use crate::aws::region::ResolvedRegion;
use crate::cache::{Cache, Entry, Policy};
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;
use crate::redact::Secret;
use crate::supplier::SupplierCore;
use crate::time::format_rfc3339;

use super::config_file::{FetcherConfig, DEFAULT_SCOPE};
use super::impersonation::{self, ImpersonatedToken, ImpersonationRequest};
use super::sts::{self, StsRequest, StsToken};
use super::subject_token::{self, SignedRequest};

/// How long an STS token without `expires_in` is assumed to live.
pub const ASSUMED_LIFETIME: Duration = Duration::from_secs(900);

/// A Google access token. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
  pub token: Secret,
  pub expires_at: SystemTime,
}

impl std::fmt::Debug for AccessToken {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("AccessToken").field("token", &self.token).field("expires_at", &format_rfc3339(self.expires_at)).finish()
  }
}

/// The steps of one fetch, bound to a configuration and a supplier core.
#[derive(Clone)]
struct Steps {
  config: Arc<FetcherConfig>,
  supplier: Arc<SupplierCore>,
  timeout: Duration,
}

impl Steps {
  fn now(&self) -> SystemTime {
    self.supplier.chain().context().clock.now()
  }

  fn sign(&self, creds: &AwsCredentials, region: &str) -> Result<SignedRequest> {
    let url = subject_token::verification_url(&self.config.regional_cred_verification_url, region);
    subject_token::sign_request(creds, &url, region, &self.config.audience, self.now())
  }

  async fn sts(&self, signed: &SignedRequest, creds: &AwsCredentials, region: &str, deadline: Deadline) -> Result<StsToken> {
    let c = &self.config;
    let scopes = match c.service_account_impersonation_url {
      Some(_) => vec![DEFAULT_SCOPE.to_string()],
      None => c.scopes.clone(),
    };
    let subject = signed.serialize();
    let req = StsRequest {
      token_url: &c.token_url,
      audience: &c.audience,
      scopes: &scopes,
      subject_token: &subject,
      client_id: c.client_id.as_deref(),
      client_secret: c.client_secret.as_ref(),
    };
    let aws_secrets: Vec<&Secret> = creds.session_token.iter().chain([&creds.secret_access_key]).collect();
    sts::exchange(&self.supplier.chain().context().http, &req, &aws_secrets, deadline).await.map_err(|e| {
      e.context(format!("token exchange with AWS credentials from {} ({}) in {region}", creds.source, mask_key_id(&creds.access_key_id)))
    })
  }

  async fn impersonate(&self, url: &str, sts: &StsToken, deadline: Deadline) -> Result<ImpersonatedToken> {
    let req = ImpersonationRequest { url, sts_token: &sts.access_token, scopes: &self.config.scopes, lifetime: self.config.token_lifetime };
    impersonation::generate_access_token(&self.supplier.chain().context().http, &req, deadline).await
  }

  fn sts_token(&self, sts: StsToken) -> AccessToken {
    AccessToken { token: sts.access_token, expires_at: self.now() + sts.expires_in.unwrap_or(ASSUMED_LIFETIME) }
  }

  /// One fetch under one bound: the region, the AWS credentials and the Google calls together
  /// take at most `timeout` (the region and credentials come from shared caches, whose loads may
  /// go on for other callers; this fetch stops waiting at its deadline).
  async fn fetch(self) -> Result<AccessToken> {
    let deadline = Deadline::after(self.timeout);
    let region = within(deadline, "the AWS region", self.supplier.region()).await?.region;
    let creds = within(deadline, "the AWS credentials", self.supplier.credentials()).await?.value;
    let signed = self.sign(&creds, &region)?;
    let sts = self.sts(&signed, &creds, &region, deadline).await?;
    match &self.config.service_account_impersonation_url {
      None => Ok(self.sts_token(sts)),
      Some(url) => {
        let t = self.impersonate(url, &sts, deadline).await?;
        Ok(AccessToken { token: t.access_token, expires_at: t.expire_time })
      }
    }
  }
}

/// `fut`, or `TIMEOUT` when `deadline` passes first.
async fn within<T>(deadline: Deadline, what: &str, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
  let bound = deadline.remaining();
  match tokio::time::timeout(bound, fut).await {
    Ok(r) => r,
    Err(_) => {
      Err(Error::new(ErrorKind::Timeout, format!("{what} did not load within the fetch's time bound ({} ms left)", bound.as_millis())))
    }
  }
}

/// The fetcher: configuration, the supplier core it takes AWS credentials from, and its token cache.
pub struct FetcherCore {
  config: Arc<FetcherConfig>,
  supplier: Arc<SupplierCore>,
  cache: Arc<Cache<AccessToken>>,
  timeout: Duration,
}

impl std::fmt::Debug for FetcherCore {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("FetcherCore").field("config", &self.config).field("supplier", &self.supplier).finish_non_exhaustive()
  }
}

impl FetcherCore {
  /// A fetcher using `supplier` for the region and AWS credentials, caching tokens by `policy`.
  pub fn new(config: FetcherConfig, supplier: Arc<SupplierCore>, policy: Policy) -> Self {
    let clock = supplier.chain().context().clock.clone();
    let timeout = supplier.options().timeout;
    FetcherCore { config: Arc::new(config), supplier, cache: Cache::new(policy, clock), timeout }
  }

  /// The process-wide fetcher for this configuration, supplier core and policy: every instance and
  /// every worker thread with the same setup shares one token cache, and so one exchange per expiry.
  pub fn shared(config: FetcherConfig, supplier: Arc<SupplierCore>, policy: Policy) -> Arc<FetcherCore> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static REGISTRY: once_cell::sync::Lazy<Mutex<HashMap<String, Arc<FetcherCore>>>> = once_cell::sync::Lazy::new(Default::default);
    let c = &config;
    let key = format!(
      "{:p}|{}|{}|{:?}|{}|{}|{}|{:?}|{:?}|{:?}|{}|{:?}|{:?}|{}",
      Arc::as_ptr(&supplier),
      c.audience,
      c.token_url,
      c.service_account_impersonation_url,
      c.token_lifetime.as_secs(),
      c.scopes.join(" "),
      c.universe_domain,
      c.client_id,
      c.client_secret.as_ref().map(Secret::expose),
      c.quota_project_id,
      c.regional_cred_verification_url,
      policy.margin,
      policy.jitter,
      policy.background,
    );
    let mut reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    reg.entry(key).or_insert_with(|| Arc::new(FetcherCore::new(config, supplier, policy))).clone()
  }

  /// Bound the Google steps (STS and impersonation together) by `timeout` instead of the supplier's.
  pub fn with_timeout(mut self, timeout: Duration) -> Self {
    self.timeout = timeout;
    self
  }

  pub fn config(&self) -> &FetcherConfig {
    &self.config
  }

  pub fn supplier(&self) -> &Arc<SupplierCore> {
    &self.supplier
  }

  /// A cached token usable now, without I/O.
  pub fn peek(&self) -> Option<Entry<AccessToken>> {
    self.cache.peek()
  }

  /// Forget the cached token (e.g. after an API rejected it).
  pub fn invalidate(&self) {
    self.cache.invalidate();
  }

  fn steps(&self) -> Steps {
    Steps { config: self.config.clone(), supplier: self.supplier.clone(), timeout: self.timeout }
  }

  /// The access token, from the cache or from one shared fetch.
  pub async fn access_token(&self) -> Result<Entry<AccessToken>> {
    let steps = self.steps();
    self
      .cache
      .get(move || async move {
        let token = steps.fetch().await?;
        let exp = token.expires_at;
        Ok((token, Some(exp)))
      })
      .await
  }

  /// Run every step once, fresh (AWS region and credentials come through the supplier's caches),
  /// and report each. Never contains a secret.
  pub async fn diagnose(&self) -> Vec<StepOutcome> {
    let mut report = Report::default();
    report.ok(STEP_CONFIG, describe_config(&self.config));
    let _ = run_steps(&self.steps(), &mut report).await;
    report.finish()
  }
}

/// The AWS half of [`FetcherCore::diagnose`], for when there is no Google configuration: the
/// region and the credentials, each with where it came from.
pub async fn diagnose_aws(supplier: &SupplierCore) -> Vec<StepOutcome> {
  let mut report = Report::default();
  if report.record(STEP_REGION, supplier.region().await, describe_region).is_some() {
    report.record(STEP_CREDENTIALS, supplier.credentials().await.map(|e| e.value), describe_credentials);
  } else {
    report.push(STEP_CREDENTIALS, StepStatus::Skipped, "not run: an earlier step failed".into(), None);
  }
  report.0
}

pub const STEP_CONFIG: &str = "config";
pub const STEP_REGION: &str = "region";
pub const STEP_CREDENTIALS: &str = "credentials";
pub const STEP_SUBJECT_TOKEN: &str = "subject_token";
pub const STEP_STS: &str = "sts";
pub const STEP_IMPERSONATION: &str = "impersonation";
/// Every step, in order.
pub const STEPS: [&str; 6] = [STEP_CONFIG, STEP_REGION, STEP_CREDENTIALS, STEP_SUBJECT_TOKEN, STEP_STS, STEP_IMPERSONATION];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
  Ok,
  Failed,
  /// Not configured, or not run because an earlier step failed.
  Skipped,
}

/// The outcome of one step. `detail` and `error` hold no secret.
#[derive(Debug, Clone)]
pub struct StepOutcome {
  pub step: &'static str,
  pub status: StepStatus,
  pub detail: String,
  pub error: Option<Error>,
}

#[derive(Default)]
struct Report(Vec<StepOutcome>);

impl Report {
  fn push(&mut self, step: &'static str, status: StepStatus, detail: String, error: Option<Error>) {
    self.0.push(StepOutcome { step, status, detail, error });
  }

  fn ok(&mut self, step: &'static str, detail: String) {
    self.push(step, StepStatus::Ok, detail, None);
  }

  /// Record a step's result; `Some(value)` lets the next step run.
  fn record<T>(&mut self, step: &'static str, result: Result<T>, detail: impl FnOnce(&T) -> String) -> Option<T> {
    match result {
      Ok(v) => {
        self.ok(step, detail(&v));
        Some(v)
      }
      Err(e) => {
        self.push(step, StepStatus::Failed, format!("{}: {}", e.code(), e.message()), Some(e));
        None
      }
    }
  }

  /// Mark every step not yet reported as skipped.
  fn finish(mut self) -> Vec<StepOutcome> {
    for step in STEPS {
      if !self.0.iter().any(|o| o.step == step) {
        self.push(step, StepStatus::Skipped, "not run: an earlier step failed".into(), None);
      }
    }
    self.0
  }
}

async fn run_steps(steps: &Steps, report: &mut Report) -> Option<()> {
  let region = report.record(STEP_REGION, steps.supplier.region().await, describe_region)?;
  let creds = report.record(STEP_CREDENTIALS, steps.supplier.credentials().await.map(|e| e.value), describe_credentials)?;
  let signed = report.record(STEP_SUBJECT_TOKEN, steps.sign(&creds, &region.region), |s| describe_signed(s, &creds))?;
  let deadline = Deadline::after(steps.timeout);
  let sts = report.record(STEP_STS, steps.sts(&signed, &creds, &region.region, deadline).await, describe_sts)?;
  match &steps.config.service_account_impersonation_url {
    None => report.push(STEP_IMPERSONATION, StepStatus::Skipped, "not configured: the STS token is the access token".into(), None),
    Some(url) => {
      let email = impersonation::service_account_email(url).unwrap_or(url).to_string();
      report.record(STEP_IMPERSONATION, steps.impersonate(url, &sts, deadline).await, |t| {
        format!("{email}: token expires {}", format_rfc3339(t.expire_time))
      })?;
    }
  }
  Some(())
}

fn describe_config(c: &FetcherConfig) -> String {
  let imp = match c.service_account_email() {
    Some(email) => format!("impersonating {email} for {} s", c.token_lifetime.as_secs()),
    None => "no impersonation".to_string(),
  };
  format!("audience {}; token_url {}; {imp}; scopes {}", c.audience, c.token_url, c.scopes.join(" "))
}

fn describe_region(r: &ResolvedRegion) -> String {
  format!("{} (from {})", r.region, r.source)
}

fn describe_credentials(c: &AwsCredentials) -> String {
  let expiry = c.expiration.map(|e| format!("expire {}", format_rfc3339(e))).unwrap_or_else(|| "do not expire".into());
  let account = c.account_id.as_deref().map(|a| format!(", account {a}")).unwrap_or_default();
  let kind = if c.session_token.is_some() { "temporary" } else { "long-term" };
  format!("{kind} credentials from {}, access key {}{account}, {expiry}", c.source, mask_key_id(&c.access_key_id))
}

fn describe_signed(s: &SignedRequest, c: &AwsCredentials) -> String {
  let auth = s.authorization_summary().replace(&c.access_key_id, &mask_key_id(&c.access_key_id));
  format!("{} {}; {auth}", subject_token::METHOD, s.url)
}

fn describe_sts(t: &StsToken) -> String {
  let life = t.expires_in.map(|d| format!("expires in {} s", d.as_secs())).unwrap_or_else(|| "no expires_in".into());
  format!("{} token, {life}", t.token_type.as_deref().unwrap_or("untyped"))
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::{Clock, Context, EnvSnapshot, ManualClock, OsFs};
  use crate::google::config_file::FetcherOptions;
  use crate::google::test_server::{percent_decode, reply, Canned, Recorded, TestServer};
  use crate::supplier::SupplierOptions;

  const CREDS: &str = r#"{"AccessKeyId":"ASIAMARKERKEY1234","SecretAccessKey":"MARKER-SECRET-KEY","Token":"MARKER-SESSION-TOKEN","Expiration":"2030-01-01T00:00:00Z","AccountId":"123456789012"}"#;
  const STS_OK: &str = r#"{"access_token":"MARKER-STS-TOKEN","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}"#;
  const IAM_PATH: &str = "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken";
  const AUDIENCE: &str = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws";
  const START: u64 = 1_700_000_000;
  const MARKERS: [&str; 5] = ["MARKER-SECRET-KEY", "MARKER-SESSION-TOKEN", "MARKER-STS-TOKEN", "MARKER-SA-TOKEN", "MARKER-CLIENT"];

  fn iam_ok() -> String {
    format!(
      r#"{{"accessToken":"MARKER-SA-TOKEN","expireTime":"{}"}}"#,
      format_rfc3339(crate::time::parse_rfc3339("2023-11-14T22:13:20Z").unwrap() + Duration::from_secs(3600))
    )
  }

  /// Routes: `/creds` (container endpoint), `/v1/token` (STS), [`IAM_PATH`]. `sts` decides STS answers.
  async fn google(sts: impl Fn(usize) -> Canned + Send + Sync + 'static, iam: Canned) -> TestServer {
    TestServer::start(move |r: &Recorded, n| match r.path.as_str() {
      "/creds" => reply(200, CREDS),
      "/v1/token" => sts(n),
      IAM_PATH => iam.clone(),
      _ => reply(404, "{}"),
    })
    .await
  }

  fn setup(server: &TestServer, impersonate: bool, region: Option<&str>, policy: Policy) -> (FetcherCore, ManualClock) {
    let clock = ManualClock::at_epoch_secs(START);
    let full_uri = server.url("/creds");
    let mut vars = vec![
      ("AWS_EC2_METADATA_DISABLED", "true"),
      ("AWS_CONFIG_FILE", "/nonexistent/c"),
      ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/k"),
      ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.as_str()),
    ];
    vars.extend(region.map(|r| ("AWS_REGION", r)));
    let ctx = Context::new(EnvSnapshot::from_pairs(vars), Arc::new(OsFs), Arc::new(clock.clone()));
    let supplier = SupplierCore::new(ctx, SupplierOptions::default());
    let config = FetcherConfig::from_options(FetcherOptions {
      audience: AUDIENCE.into(),
      token_url: Some(server.url("/v1/token")),
      service_account_impersonation_url: impersonate.then(|| server.url(IAM_PATH)),
      scopes: Some(vec!["https://www.googleapis.com/auth/bigquery".into()]),
      token_lifetime_seconds: Some(1200.0),
      ..Default::default()
    })
    .unwrap();
    (FetcherCore::new(config, supplier, policy).with_timeout(Duration::from_secs(5)), clock)
  }

  /// Issue 12, defect 2: region, credentials and the Google calls share one `timeoutMs`.
  #[tokio::test]
  async fn one_fetch_honours_one_time_bound() {
    let slow = |status, body: &str, ms| Canned { delay: Duration::from_millis(ms), ..reply(status, body) };
    let creds = slow(200, CREDS, 400);
    let sts = slow(200, STS_OK, 3000);
    let server = TestServer::start(move |r: &Recorded, _| match r.path.as_str() {
      "/creds" => creds.clone(),
      "/v1/token" => sts.clone(),
      _ => reply(404, "{}"),
    })
    .await;
    let (fetcher, _clock) = setup(&server, false, Some("us-east-1"), Policy::default());
    let fetcher = fetcher.with_timeout(Duration::from_millis(700));
    let started = std::time::Instant::now();
    let e = fetcher.access_token().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.code(), "TIMEOUT", "{e}");
    assert!(took >= Duration::from_millis(650) && took < Duration::from_millis(1000), "one bound of 700 ms, took {took:?}");
  }

  #[tokio::test]
  async fn full_flow_with_impersonation_then_cache_then_refresh() {
    let server = google(|_| reply(200, STS_OK), reply(200, &iam_ok())).await;
    let (fetcher, clock) = setup(&server, true, Some("us-east-2"), Policy::default());
    let entry = fetcher.access_token().await.unwrap();
    assert_eq!(entry.value.token.expose(), "MARKER-SA-TOKEN");
    assert_eq!(entry.value.expires_at, clock.now() + Duration::from_secs(3600));
    assert_eq!(entry.refresh_at, clock.now() + Duration::from_secs(3300), "refresh 5 minutes early");

    let reqs = server.requests();
    let sts = reqs.iter().find(|r| r.path == "/v1/token").unwrap();
    assert_eq!(sts.form_field("scope").as_deref(), Some(DEFAULT_SCOPE), "STS gets cloud-platform when impersonating");
    assert_eq!(sts.form_field("audience").as_deref(), Some(AUDIENCE));
    let subject: serde_json::Value = serde_json::from_str(&percent_decode(&sts.form_field("subject_token").unwrap())).unwrap();
    assert_eq!(subject["url"], "https://sts.us-east-2.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15");
    assert_eq!(subject["method"], "POST");
    let headers: Vec<(&str, &str)> =
      subject["headers"].as_array().unwrap().iter().map(|h| (h["key"].as_str().unwrap(), h["value"].as_str().unwrap())).collect();
    assert_eq!(
      headers.iter().map(|h| h.0).collect::<Vec<_>>(),
      ["authorization", "host", "x-amz-date", "x-amz-security-token", "x-goog-cloud-target-resource"]
    );
    assert_eq!(headers[3].1, "MARKER-SESSION-TOKEN");
    assert_eq!(headers[4].1, AUDIENCE);
    assert!(headers[0].1.starts_with("AWS4-HMAC-SHA256 Credential=ASIAMARKERKEY1234/20231114/us-east-2/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature="));
    let iam = reqs.iter().find(|r| r.path == IAM_PATH).unwrap();
    assert_eq!(iam.header("authorization"), Some("Bearer MARKER-STS-TOKEN"));
    assert_eq!(iam.body, r#"{"scope":["https://www.googleapis.com/auth/bigquery"],"lifetime":"1200s"}"#);

    assert_eq!(fetcher.access_token().await.unwrap().value.token.expose(), "MARKER-SA-TOKEN");
    assert_eq!((server.count("/creds"), server.count("/v1/token"), server.count(IAM_PATH)), (1, 1, 1), "served from cache");
    clock.advance(Duration::from_secs(3301));
    fetcher.access_token().await.unwrap();
    assert_eq!(
      (server.count("/creds"), server.count("/v1/token"), server.count(IAM_PATH)),
      (1, 2, 2),
      "refreshed; AWS credentials still cached"
    );
    assert!(!format!("{fetcher:?} {:?}", fetcher.peek()).contains("MARKER"));
  }

  #[tokio::test]
  async fn without_impersonation_the_sts_token_is_used_with_the_configured_scopes() {
    let server = google(|_| reply(200, STS_OK), reply(500, "{}")).await;
    let (fetcher, clock) = setup(&server, false, Some("eu-west-1"), Policy::default());
    let entry = fetcher.access_token().await.unwrap();
    assert_eq!(entry.value.token.expose(), "MARKER-STS-TOKEN");
    assert_eq!(entry.value.expires_at, clock.now() + Duration::from_secs(3600));
    let sts = &server.requests()[1];
    assert_eq!(sts.form_field("scope").as_deref(), Some("https://www.googleapis.com/auth/bigquery"));
    assert_eq!(server.count(IAM_PATH), 0);
  }

  #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
  async fn concurrent_callers_share_one_fetch() {
    let server = google(|_| Canned { delay: Duration::from_millis(200), ..reply(200, STS_OK) }, reply(200, &iam_ok())).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let fetcher = Arc::new(fetcher);
    let tasks: Vec<_> = (0..50)
      .map(|_| {
        let f = fetcher.clone();
        tokio::spawn(async move { f.access_token().await })
      })
      .collect();
    for t in tasks {
      assert_eq!(t.await.unwrap().unwrap().value.token.expose(), "MARKER-SA-TOKEN");
    }
    assert_eq!((server.count("/v1/token"), server.count(IAM_PATH)), (1, 1));
  }

  #[tokio::test]
  async fn failures_are_not_cached_and_carry_context() {
    let denied = r#"{"error":"invalid_grant","error_description":"Received invalid AWS response of type SignatureDoesNotMatch"}"#;
    let server = google(move |n| if n == 0 { reply(400, denied) } else { reply(200, STS_OK) }, reply(200, &iam_ok())).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let e = fetcher.access_token().await.unwrap_err();
    assert_eq!(e.code(), "STS_EXCHANGE_FAILED");
    assert!(e.message().starts_with("token exchange with AWS credentials from container (ASIA…1234) in us-east-2: Google STS"), "{e}");
    assert!(e.hint().unwrap().contains("AWS account id"));
    assert!(!MARKERS.iter().any(|m| format!("{e} {e:?}").contains(m)));
    assert_eq!(fetcher.access_token().await.unwrap().value.token.expose(), "MARKER-SA-TOKEN");
    assert_eq!(server.count("/v1/token"), 2);
  }

  #[tokio::test]
  async fn background_refresh_serves_the_current_token() {
    let server = google(|n| reply(200, &STS_OK.replace("MARKER-STS-TOKEN", &format!("MARKER-STS-TOKEN-{n}"))), reply(500, "{}")).await;
    let (fetcher, clock) = setup(&server, false, Some("us-east-2"), Policy { background: true, ..Policy::default() });
    assert_eq!(fetcher.access_token().await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-0");
    clock.advance(Duration::from_secs(3400));
    assert_eq!(fetcher.access_token().await.unwrap().value.token.expose(), "MARKER-STS-TOKEN-0", "answered at once");
    for _ in 0..200 {
      if fetcher.peek().is_some_and(|e| e.value.token.expose() == "MARKER-STS-TOKEN-1") {
        return;
      }
      tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the background refresh did not land");
  }

  fn statuses(outcomes: &[StepOutcome]) -> Vec<(&str, StepStatus)> {
    outcomes.iter().map(|o| (o.step, o.status)).collect()
  }

  fn assert_no_secret(outcomes: &[StepOutcome]) {
    let shown = format!("{outcomes:?}");
    for m in MARKERS {
      assert!(!shown.contains(m), "{m} leaked: {shown}");
    }
    assert!(!shown.contains("ASIAMARKERKEY1234"), "unmasked key id: {shown}");
  }

  #[tokio::test]
  async fn diagnose_reports_every_step() {
    use StepStatus::*;
    let server = google(|_| reply(200, STS_OK), reply(200, &iam_ok())).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let out = fetcher.diagnose().await;
    assert_eq!(
      statuses(&out),
      [("config", Ok), ("region", Ok), ("credentials", Ok), ("subject_token", Ok), ("sts", Ok), ("impersonation", Ok)]
    );
    assert_eq!(out[1].detail, "us-east-2 (from AWS_REGION)");
    assert_eq!(
      out[2].detail,
      "temporary credentials from container, access key ASIA…1234, account 123456789012, expire 2030-01-01T00:00:00Z"
    );
    assert!(out[3].detail.starts_with("POST https://sts.us-east-2.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15; AWS4-HMAC-SHA256 Credential=ASIA…1234/20231114/us-east-2/sts/aws4_request"), "{}", out[3].detail);
    assert_eq!(out[4].detail, "Bearer token, expires in 3600 s");
    assert!(out[5].detail.starts_with("sa@p.iam.gserviceaccount.com: token expires 2023-11-14T23:13:20Z"));
    assert!(out[0].detail.contains("impersonating sa@p.iam.gserviceaccount.com for 1200 s"));
    assert_no_secret(&out);
    assert!(fetcher.peek().is_none(), "diagnose does not fill the token cache");
  }

  #[tokio::test]
  async fn diagnose_stops_at_the_first_failure() {
    use StepStatus::*;
    let denied = r#"{"error":{"code":403,"message":"Permission denied MARKER-STS-TOKEN","status":"PERMISSION_DENIED"}}"#;
    let server = google(|_| reply(200, STS_OK), reply(403, denied)).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let out = fetcher.diagnose().await;
    assert_eq!(out[5].status, Failed);
    let e = out[5].error.as_ref().unwrap();
    assert_eq!(e.code(), "IMPERSONATION_FAILED");
    assert!(e.hint().unwrap().contains("roles/iam.workloadIdentityUser"));
    assert_no_secret(&out);

    let (fetcher, _) = setup(&server, false, None, Policy::default());
    let out = fetcher.diagnose().await;
    assert_eq!(
      statuses(&out),
      [
        ("config", Ok),
        ("region", Failed),
        ("credentials", Skipped),
        ("subject_token", Skipped),
        ("sts", Skipped),
        ("impersonation", Skipped)
      ]
    );
    assert!(out[1].detail.starts_with("REGION_NOT_FOUND: could not determine the AWS region"), "{}", out[1].detail);
    let (fetcher, _) = setup(&server, false, Some("us-east-2"), Policy::default());
    assert_eq!(fetcher.diagnose().await[5].status, Skipped);
  }
}
