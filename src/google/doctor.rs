//! The doctor report of the Google side: [`diagnose`] runs the steps of [`super::flow`] one by one,
//! fresh (AWS region and credentials through the supplier's caches, no token cache touched), and
//! reports each as a [`StepOutcome`]: its name (one of [`STEPS`], in order), ok / failed / skipped,
//! a non-secret detail, and the error. A step after a failed one is skipped. [`diagnose_aws`] is the
//! AWS half alone. What `describe_*` returns is what `npx aws-wif-supplier doctor` prints.

use std::time::Duration;

use crate::aws::credentials::{mask_key_id, AwsCredentials};
use crate::aws::region::ResolvedRegion;
use crate::error::{Error, Result};
use crate::http::Deadline;
use crate::supplier::SupplierCore;
use crate::time::format_rfc3339;

use super::config_file::FetcherConfig;
use super::flow;
use super::impersonation;
use super::sts::StsToken;
use super::subject_token::{self, SignedRequest};

/// The AWS half of [`diagnose`], for when there is no Google configuration: the
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

/// Run every step once, fresh (AWS region and credentials come through the supplier's caches),
/// and report each. The Google steps share one deadline of `timeout`. Never contains a secret.
pub async fn diagnose(config: &FetcherConfig, supplier: &SupplierCore, timeout: Duration) -> Vec<StepOutcome> {
  let mut report = Report::default();
  report.ok(STEP_CONFIG, describe_config(config));
  let _ = run_steps(config, supplier, timeout, &mut report).await;
  report.finish()
}

async fn run_steps(config: &FetcherConfig, supplier: &SupplierCore, timeout: Duration, report: &mut Report) -> Option<()> {
  let ctx = supplier.chain().context();
  let region = report.record(STEP_REGION, supplier.region().await, describe_region)?;
  let creds = report.record(STEP_CREDENTIALS, supplier.credentials().await.map(|e| e.value), describe_credentials)?;
  let signed = report.record(STEP_SUBJECT_TOKEN, flow::sign(ctx, config, &creds, &region.region), |s| describe_signed(s, &creds))?;
  let deadline = Deadline::after(timeout);
  let sts = report.record(STEP_STS, flow::exchange(ctx, config, &signed, &creds, &region.region, deadline).await, describe_sts)?;
  match &config.service_account_impersonation_url {
    None => report.push(STEP_IMPERSONATION, StepStatus::Skipped, "not configured: the STS token is the access token".into(), None),
    Some(url) => {
      let email = impersonation::service_account_email(url).map_or_else(|| crate::redact::url(url), str::to_string);
      report.record(STEP_IMPERSONATION, flow::impersonate(ctx, config, url, &sts.access_token, deadline).await, |t| {
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
  format!("audience {}; token_url {}; {imp}; scopes {}", c.audience, crate::redact::url(&c.token_url), c.scopes.join(" "))
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
  format!("{} {} (GetCallerIdentity); {auth}", subject_token::METHOD, crate::redact::url(&s.url))
}

fn describe_sts(t: &StsToken) -> String {
  let life = t.expires_in.map(|d| format!("expires in {} s", d.as_secs())).unwrap_or_else(|| "no expires_in".into());
  format!("{} token, {life}", t.token_type.as_deref().unwrap_or("untyped"))
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::cache::Policy;
  use crate::google::test_fixtures::*;
  use crate::google::test_server::reply;

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
    assert!(out[3].detail.starts_with("POST https://sts.us-east-2.amazonaws.com?… (GetCallerIdentity); AWS4-HMAC-SHA256 Credential=ASIA…1234/20231114/us-east-2/sts/aws4_request"), "{}", out[3].detail);
    assert_eq!(out[4].detail, "Bearer token, expires in 3600 s");
    assert!(out[5].detail.starts_with("sa@p.iam.gserviceaccount.com: token expires 2023-11-14T23:13:20Z"));
    assert!(out[0].detail.contains("impersonating sa@p.iam.gserviceaccount.com for 1200 s"));
    assert_no_secret(&out);
    assert!(fetcher.tokens().peek().is_none(), "diagnose does not fill the token cache");
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
