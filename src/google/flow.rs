//! The federation flow: the steps that turn AWS credentials into a Google token, in one
//! [`Context`] (its clock and its HTTP client), without caching (the caches are
//! [`super::token_store`]'s).
//!
//! One fetch runs, in order (google-auth-library `BaseExternalAccountClient.refreshAccessTokenAsync`):
//! 1. `region`: the AWS region from the [`SupplierCore`] (option → `AWS_REGION` → … → IMDS, cached for
//!    the process);
//! 2. `credentials`: AWS credentials from the same core, i.e. the same chain and the same
//!    process-wide credential cache the supplier uses;
//! 3. `subject_token`: the signed GetCallerIdentity request ([`sign`], [`super::subject_token`]);
//! 4. `sts`: the token exchange ([`exchange`], [`super::sts`]). Scope: `cloud-platform` when
//!    impersonating (what `generateAccessToken` needs), else the configured scopes;
//! 5. `impersonation` (only with `service_account_impersonation_url`): `generateAccessToken` with the
//!    configured scopes and lifetime ([`impersonate`], [`super::impersonation`]); or, for an ID
//!    token, `generateIdToken` ([`generate_id_token`], [`super::id_token`]).
//!
//! Steps 1–4 together are [`federate`]: one fetch under one [`Deadline`] (the supplier's timeout,
//! 10 s by default). Expiry of a federated token: `now + expires_in`; an STS answer without
//! `expires_in` is assumed to live [`ASSUMED_LIFETIME`] (google-auth-library would never refresh
//! it). The doctor ([`super::doctor`]) runs the same steps one by one.
//!
//! A Google endpoint is a file in `src/google/` (its request and answer through
//! [`super::endpoint::Endpoint`]) and one function here that calls it.

use std::time::{Duration, SystemTime};

use crate::aws::credentials::{mask_key_id, AwsCredentials};
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;
use crate::redact::Secret;
use crate::supplier::SupplierCore;
use crate::time::format_rfc3339;

use super::config_file::{FetcherConfig, DEFAULT_SCOPE};
use super::id_token::{self, IdToken, IdTokenRequest};
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

/// Step 3: the signed GetCallerIdentity request (the subject token).
pub fn sign(ctx: &Context, config: &FetcherConfig, creds: &AwsCredentials, region: &str) -> Result<SignedRequest> {
  let url = subject_token::verification_url(&config.regional_cred_verification_url, region);
  subject_token::sign_request(creds, &url, region, &config.audience, ctx.clock.now())
}

/// Step 4: the token exchange, with the scopes the module doc gives.
pub async fn exchange(
  ctx: &Context,
  config: &FetcherConfig,
  signed: &SignedRequest,
  creds: &AwsCredentials,
  region: &str,
  deadline: Deadline,
) -> Result<StsToken> {
  let scopes = match config.service_account_impersonation_url {
    Some(_) => vec![DEFAULT_SCOPE.to_string()],
    None => config.scopes.clone(),
  };
  let subject = signed.serialize();
  let req = StsRequest {
    token_url: &config.token_url,
    audience: &config.audience,
    scopes: &scopes,
    subject_token: &subject,
    client_id: config.client_id.as_deref(),
    client_secret: config.client_secret.as_ref(),
  };
  let aws_secrets: Vec<&Secret> = creds.session_token.iter().chain([&creds.secret_access_key]).collect();
  sts::exchange(&ctx.http, &req, &aws_secrets, deadline).await.map_err(|e| {
    e.context(format!("token exchange with AWS credentials from {} ({}) in {region}", creds.source, mask_key_id(&creds.access_key_id)))
  })
}

/// Step 5 for an access token: `generateAccessToken` at `url` with the federated token as bearer.
pub async fn impersonate(
  ctx: &Context,
  config: &FetcherConfig,
  url: &str,
  sts_token: &Secret,
  deadline: Deadline,
) -> Result<ImpersonatedToken> {
  let req = ImpersonationRequest { url, sts_token, scopes: &config.scopes, lifetime: config.token_lifetime };
  impersonation::generate_access_token(&ctx.http, &req, deadline).await
}

/// Step 5 for an ID token: `generateIdToken` at `url` for `audience`, with the federated token as bearer.
pub async fn generate_id_token(
  ctx: &Context,
  url: &str,
  sts_token: &Secret,
  audience: &str,
  include_email: bool,
  deadline: Deadline,
) -> Result<IdToken> {
  let req = IdTokenRequest { url, sts_token, audience, include_email };
  id_token::generate_id_token(&ctx.http, &req, deadline).await
}

/// An STS answer as an access token, with the expiry rule of the module doc.
pub fn federated_token(ctx: &Context, sts: StsToken) -> AccessToken {
  AccessToken { token: sts.access_token, expires_at: ctx.clock.now() + sts.expires_in.unwrap_or(ASSUMED_LIFETIME) }
}

/// Steps 1–4: region, credentials, subject token and STS exchange, in `supplier`'s context. One
/// fetch under one bound: the region, the AWS credentials and the Google calls together finish by
/// `deadline` (the region and credentials come from shared caches, whose loads may go on for other
/// callers; this fetch stops waiting at its deadline).
pub async fn federate(config: &FetcherConfig, supplier: &SupplierCore, deadline: Deadline) -> Result<StsToken> {
  let ctx = supplier.chain().context();
  let region = within(deadline, "the AWS region", supplier.region()).await?.region;
  let creds = within(deadline, "the AWS credentials", supplier.credentials()).await?.value;
  let signed = sign(ctx, config, &creds, &region)?;
  exchange(ctx, config, &signed, &creds, &region, deadline).await
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

/// Through the fetcher: one fetch's steps, their requests and their one time bound.
#[cfg(test)]
mod tests {
  use crate::cache::Policy;
  use crate::env::Clock;
  use crate::google::config_file::DEFAULT_SCOPE;
  use crate::google::test_fixtures::*;
  use crate::google::test_server::{percent_decode, reply, Canned, Recorded, TestServer};
  use std::time::Duration;

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
    let e = fetcher.tokens().access_token().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.code(), "TIMEOUT", "{e}");
    assert!(took >= Duration::from_millis(650) && took < Duration::from_millis(1000), "one bound of 700 ms, took {took:?}");
  }

  #[tokio::test]
  async fn full_flow_with_impersonation_then_cache_then_refresh() {
    let server = google(|_| reply(200, STS_OK), reply(200, &iam_ok())).await;
    let (fetcher, clock) = setup(&server, true, Some("us-east-2"), Policy::default());
    let entry = fetcher.tokens().access_token().await.unwrap();
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

    assert_eq!(fetcher.tokens().access_token().await.unwrap().value.token.expose(), "MARKER-SA-TOKEN");
    assert_eq!((server.count("/creds"), server.count("/v1/token"), server.count(IAM_PATH)), (1, 1, 1), "served from cache");
    clock.advance(Duration::from_secs(3301));
    fetcher.tokens().access_token().await.unwrap();
    assert_eq!(
      (server.count("/creds"), server.count("/v1/token"), server.count(IAM_PATH)),
      (1, 2, 2),
      "refreshed; AWS credentials still cached"
    );
    assert!(!format!("{fetcher:?} {:?}", fetcher.tokens().peek()).contains("MARKER"));
  }

  #[tokio::test]
  async fn without_impersonation_the_sts_token_is_used_with_the_configured_scopes() {
    let server = google(|_| reply(200, STS_OK), reply(500, "{}")).await;
    let (fetcher, clock) = setup(&server, false, Some("eu-west-1"), Policy::default());
    let entry = fetcher.tokens().access_token().await.unwrap();
    assert_eq!(entry.value.token.expose(), "MARKER-STS-TOKEN");
    assert_eq!(entry.value.expires_at, clock.now() + Duration::from_secs(3600));
    let sts = &server.requests()[1];
    assert_eq!(sts.form_field("scope").as_deref(), Some("https://www.googleapis.com/auth/bigquery"));
    assert_eq!(server.count(IAM_PATH), 0);
  }

  #[tokio::test]
  async fn failures_are_not_cached_and_carry_context() {
    let denied = r#"{"error":"invalid_grant","error_description":"Received invalid AWS response of type SignatureDoesNotMatch"}"#;
    let server = google(move |n| if n == 0 { reply(400, denied) } else { reply(200, STS_OK) }, reply(200, &iam_ok())).await;
    let (fetcher, _) = setup(&server, true, Some("us-east-2"), Policy::default());
    let e = fetcher.tokens().access_token().await.unwrap_err();
    assert_eq!(e.code(), "STS_EXCHANGE_FAILED");
    assert!(e.message().starts_with("token exchange with AWS credentials from container (ASIA…1234) in us-east-2: Google STS"), "{e}");
    assert!(e.hint().unwrap().contains("AWS account id"));
    assert!(!MARKERS.iter().any(|m| format!("{e} {e:?}").contains(m)));
    assert_eq!(fetcher.tokens().access_token().await.unwrap().value.token.expose(), "MARKER-SA-TOKEN");
    assert_eq!(server.count("/v1/token"), 2);
  }
}
