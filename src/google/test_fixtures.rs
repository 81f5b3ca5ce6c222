//! Fixtures of the fetcher's tests (flow, token store, registry key, doctor): a loopback server
//! playing the container endpoint, STS and IAM Credentials, and a fetcher core aimed at it.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::Policy;
use crate::context::Context;
use crate::env::{EnvSnapshot, ManualClock, OsFs};
use crate::google::config_file::{FetcherConfig, FetcherOptions};
use crate::google::fetcher::FetcherCore;
use crate::google::test_server::{reply, Canned, Recorded, TestServer};
use crate::supplier::{SupplierCore, SupplierOptions};
use crate::time::format_rfc3339;

pub(crate) const CREDS: &str = r#"{"AccessKeyId":"ASIAMARKERKEY1234","SecretAccessKey":"MARKER-SECRET-KEY","Token":"MARKER-SESSION-TOKEN","Expiration":"2030-01-01T00:00:00Z","AccountId":"123456789012"}"#;
pub(crate) const STS_OK: &str = r#"{"access_token":"MARKER-STS-TOKEN","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}"#;
pub(crate) const IAM_PATH: &str = "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken";
pub(crate) const AUDIENCE: &str = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws";
pub(crate) const START: u64 = 1_700_000_000;
pub(crate) const MARKERS: [&str; 5] = ["MARKER-SECRET-KEY", "MARKER-SESSION-TOKEN", "MARKER-STS-TOKEN", "MARKER-SA-TOKEN", "MARKER-CLIENT"];

pub(crate) fn iam_ok() -> String {
  format!(
    r#"{{"accessToken":"MARKER-SA-TOKEN","expireTime":"{}"}}"#,
    format_rfc3339(crate::time::parse_rfc3339("2023-11-14T22:13:20Z").unwrap() + Duration::from_secs(3600))
  )
}

/// Routes: `/creds` (container endpoint), `/v1/token` (STS), [`IAM_PATH`]. `sts` decides STS answers.
pub(crate) async fn google(sts: impl Fn(usize) -> Canned + Send + Sync + 'static, iam: Canned) -> TestServer {
  TestServer::start(move |r: &Recorded, n| match r.path.as_str() {
    "/creds" => reply(200, CREDS),
    "/v1/token" => sts(n),
    IAM_PATH => iam.clone(),
    _ => reply(404, "{}"),
  })
  .await
}

pub(crate) fn setup(server: &TestServer, impersonate: bool, region: Option<&str>, policy: Policy) -> (FetcherCore, ManualClock) {
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
/// Poll `done` (bounded) while background tasks run.
pub(crate) async fn wait_for(done: impl Fn() -> bool) {
  for _ in 0..500 {
    if done() {
      return;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
  }
  panic!("condition not reached");
}
pub(crate) const ID_PATH: &str = "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateIdToken";

/// Routes of [`google`] plus generateIdToken answering a JWT for the requested audience, valid 1 h.
pub(crate) async fn with_id_tokens() -> TestServer {
  TestServer::start(move |r: &Recorded, n| match r.path.as_str() {
    "/creds" => reply(200, CREDS),
    "/v1/token" => reply(200, STS_OK),
    ID_PATH => {
      let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
      let claims = format!(r#"{{"aud":{},"n":{n},"exp":{}}}"#, body["audience"], START + 3600);
      reply(200, &format!(r#"{{"token":"{}"}}"#, crate::google::id_token::test_jwt(&claims)))
    }
    _ => reply(404, "{}"),
  })
  .await
}
/// STS answering MARKER-STS-TOKEN-<n>, generateAccessToken, and generateIdToken (which fails its
/// first call with a 401 when `id_fails_first`), each IAM call recording its bearer.
pub(crate) async fn sharing_server(id_fails_first: bool) -> TestServer {
  TestServer::start(move |r: &Recorded, n| match r.path.as_str() {
    "/creds" => reply(200, CREDS),
    "/v1/token" => reply(200, &STS_OK.replace("MARKER-STS-TOKEN", &format!("MARKER-STS-TOKEN-{n}"))),
    IAM_PATH => reply(200, &iam_ok()),
    ID_PATH if id_fails_first && n == 0 => reply(401, r#"{"error":{"code":401,"status":"UNAUTHENTICATED","message":"bad token"}}"#),
    ID_PATH => {
      let claims = format!(r#"{{"aud":"x","n":{n},"exp":{}}}"#, START + 3600);
      reply(200, &format!(r#"{{"token":"{}"}}"#, crate::google::id_token::test_jwt(&claims)))
    }
    _ => reply(404, "{}"),
  })
  .await
}

pub(crate) fn bearers(server: &TestServer) -> Vec<String> {
  server
    .requests()
    .iter()
    .filter(|r| r.path == IAM_PATH || r.path == ID_PATH)
    .map(|r| r.header("authorization").unwrap_or("").to_string())
    .collect()
}
