//! The IMDSv2 client (session token, credentials, region) that the IMDS link ([`super`]) and the
//! region ([`crate::aws::region`]) share; the spec is in [`super`]'s module docs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::error::is_transient_status;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{self, Deadline, Http, Method, Request, Route, TransportError};
use crate::redact::Secret;

use crate::aws::credentials::{ensure_not_expired, parse_credentials_json, status_error, transport_error, AwsCredentials};

pub const ENV_DISABLED: &str = "AWS_EC2_METADATA_DISABLED";
pub const ENV_ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
pub const ENV_ENDPOINT_MODE: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE";
pub const ENV_V1_DISABLED: &str = "AWS_EC2_METADATA_V1_DISABLED";
pub const DEFAULT_ENDPOINT_V4: &str = "http://169.254.169.254";
pub const DEFAULT_ENDPOINT_V6: &str = "http://[fd00:ec2::254]";
pub const TOKEN_TTL_SECS: u64 = 21_600;
pub const TOKEN_REFRESH_BUFFER: Duration = Duration::from_secs(120);
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const CREDS_PATH: &str = "/latest/meta-data/iam/security-credentials/";
const REGION_PATH: &str = "/latest/meta-data/placement/region";

/// An IMDSv2 client bound to one endpoint, caching its session token.
pub struct Imds {
  endpoint: String,
  v1_fallback: bool,
  http: Http,
  /// The session token and until when to reuse it; `None` inside means IMDSv1 (no token).
  token: Mutex<Option<(Option<Secret>, Instant)>>,
}

impl std::fmt::Debug for Imds {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Imds")
      .field("endpoint", &crate::redact::url(&self.endpoint))
      .field("v1_fallback", &self.v1_fallback)
      .finish_non_exhaustive()
  }
}

/// What a lookup found.
pub enum Lookup<T> {
  Found(T),
  /// IMDS is disabled or does not answer: not an EC2 instance.
  Unavailable(String),
}

impl Imds {
  /// `None` when `AWS_EC2_METADATA_DISABLED=true`.
  pub fn from_env(ctx: &Context) -> Option<Imds> {
    if ctx.env.is_true(ENV_DISABLED) {
      return None;
    }
    let endpoint = match (ctx.env.get(ENV_ENDPOINT), ctx.env.get(ENV_ENDPOINT_MODE)) {
      (Some(e), _) => e.trim().trim_end_matches('/').to_string(),
      (None, Some(m)) if m.trim().eq_ignore_ascii_case("ipv6") => DEFAULT_ENDPOINT_V6.to_string(),
      _ => DEFAULT_ENDPOINT_V4.to_string(),
    };
    Some(Imds { endpoint, v1_fallback: !ctx.env.is_true(ENV_V1_DISABLED), http: ctx.http.clone(), token: Mutex::new(None) })
  }

  /// The cached session token slot (a panic elsewhere cannot leave it inconsistent: recover).
  fn token_slot(&self) -> std::sync::MutexGuard<'_, Option<(Option<Secret>, Instant)>> {
    self.token.lock().unwrap_or_else(|p| p.into_inner())
  }

  pub fn endpoint(&self) -> &str {
    &self.endpoint
  }

  fn origin(&self) -> String {
    format!("IMDS at {}", crate::redact::url(&self.endpoint))
  }

  /// The session token (`Found(None)`: IMDSv1 fallback, read without a token).
  async fn session_token(&self, deadline: Deadline) -> Result<Lookup<Option<Secret>>> {
    if let Some((t, until)) = self.token_slot().clone() {
      if Instant::now() < until {
        return Ok(Lookup::Found(t));
      }
    }
    let req = Request::new(Method::Put, format!("{}/latest/api/token", self.endpoint))
      .route(Route::DIRECT)
      .header("x-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECS.to_string());
    let probe = Deadline::after(deadline.remaining().min(PROBE_TIMEOUT));
    let mut resp = match self.http.send(&req, probe).await {
      Ok(r) => r,
      Err(TransportError::Timeout) | Err(TransportError::Connect(_)) => {
        return Ok(Lookup::Unavailable(format!("{} did not answer", self.origin())))
      }
      Err(e) => return Err(transport_error(&self.origin(), e, PROBE_TIMEOUT.as_millis())),
    };
    // Something answered: this is EC2 (or an emulator of it). Retry a transient answer.
    let mut attempt = 1;
    while is_transient_status(resp.status) && attempt < http::MAX_ATTEMPTS {
      let pause = http::backoff(attempt - 1);
      if pause >= deadline.remaining() {
        break;
      }
      tokio::time::sleep(pause).await;
      attempt += 1;
      let budget = deadline.remaining().as_millis();
      resp = self.http.send(&req, deadline).await.map_err(|e| transport_error(&self.origin(), e, budget))?;
    }
    let until = Instant::now() + Duration::from_secs(TOKEN_TTL_SECS) - TOKEN_REFRESH_BUFFER;
    if (403..=405).contains(&resp.status) && self.v1_fallback {
      *self.token_slot() = Some((None, until));
      return Ok(Lookup::Found(None));
    }
    if !resp.is_success() {
      return Err(status_error(&format!("{} (session token)", self.origin()), &resp, &[]));
    }
    let token = Some(Secret::new(resp.text().trim()));
    *self.token_slot() = Some((token.clone(), until));
    Ok(Lookup::Found(token))
  }

  async fn get(&self, path: &str, token: &Option<Secret>, deadline: Deadline) -> Result<http::Response> {
    let mut req = Request::new(Method::Get, format!("{}{path}", self.endpoint)).route(Route::DIRECT);
    if let Some(t) = token {
      req = req.sensitive_header("x-aws-ec2-metadata-token", t.expose());
    }
    let budget = deadline.remaining().as_millis();
    let resp = self.http.send_with_retry(&req, deadline).await.map_err(|e| transport_error(&self.origin(), e, budget))?;
    if resp.status == 401 {
      // The session token was revoked or expired early: drop it so the next call gets a new one.
      *self.token_slot() = None;
    }
    if !resp.is_success() {
      let sent: Vec<&Secret> = token.iter().collect();
      return Err(status_error(&format!("{} {path}", self.origin()), &resp, &sent));
    }
    Ok(resp)
  }

  /// Instance-profile credentials.
  pub async fn credentials(&self, ctx: &Context, deadline: Deadline) -> Result<Lookup<AwsCredentials>> {
    let token = match self.session_token(deadline).await? {
      Lookup::Found(t) => t,
      Lookup::Unavailable(why) => return Ok(Lookup::Unavailable(why)),
    };
    let roles = self.get(CREDS_PATH, &token, deadline).await.map_err(|e| {
      if e.status() == Some(404) {
        Error::new(ErrorKind::CredentialsNotFound, format!("{}: this instance has no IAM instance profile", self.origin()))
          .with_hint("attach an instance profile (IAM role) to the EC2 instance")
      } else {
        e
      }
    })?;
    let text = roles.text();
    let role = text
      .lines()
      .map(str::trim)
      .find(|l| !l.is_empty())
      .ok_or_else(|| Error::new(ErrorKind::InvalidCredentialsResponse, format!("{} listed no IAM role", self.origin())))?;
    if role.contains('/') || role.contains("..") {
      return Err(Error::new(ErrorKind::InvalidCredentialsResponse, format!("{} returned an invalid role name", self.origin())));
    }
    let resp = self.get(&format!("{CREDS_PATH}{role}"), &token, deadline).await?;
    let sent: Vec<&Secret> = token.iter().collect();
    let creds = parse_credentials_json(&resp.body, &self.origin(), "imds", &sent)?;
    ensure_not_expired(creds, ctx.clock.now(), &self.origin()).map(Lookup::Found)
  }

  /// The instance's region, as IMDS wrote it (trimmed; the caller checks that it is a region name).
  pub async fn region(&self, deadline: Deadline) -> Result<Lookup<String>> {
    let token = match self.session_token(deadline).await? {
      Lookup::Found(t) => t,
      Lookup::Unavailable(why) => return Ok(Lookup::Unavailable(why)),
    };
    let resp = self.get(REGION_PATH, &token, deadline).await?;
    Ok(Lookup::Found(resp.text().trim().to_string()))
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::{EnvSnapshot, ManualClock, OsFs};
  use std::sync::Arc;

  fn ctx(vars: &[(&str, &str)]) -> Context {
    Context::new(EnvSnapshot::from_pairs(vars.iter().copied()), Arc::new(OsFs), Arc::new(ManualClock::at_epoch_secs(0)))
  }

  #[test]
  fn endpoint_selection_and_disable_flag() {
    assert!(Imds::from_env(&ctx(&[(ENV_DISABLED, "TRUE")])).is_none());
    assert_eq!(Imds::from_env(&ctx(&[(ENV_DISABLED, "false")])).unwrap().endpoint(), DEFAULT_ENDPOINT_V4);
    assert_eq!(Imds::from_env(&ctx(&[(ENV_ENDPOINT_MODE, "IPv6")])).unwrap().endpoint(), DEFAULT_ENDPOINT_V6);
    assert_eq!(Imds::from_env(&ctx(&[(ENV_ENDPOINT, "http://127.0.0.1:9/")])).unwrap().endpoint(), "http://127.0.0.1:9");
  }

  /// Issue 18, defect 7 (a sibling): messages name the endpoint without user information or query.
  #[test]
  fn origin_hides_user_information_and_query() {
    let imds = Imds::from_env(&ctx(&[(ENV_ENDPOINT, "http://u:MARKER-PW@127.0.0.1:9/?k=MARKER-QUERY")])).unwrap();
    assert_eq!(imds.origin(), "IMDS at http://127.0.0.1:9/?… (credentials hidden)");
    assert!(!format!("{imds:?}").contains("MARKER"), "{imds:?}");
  }

  const CREDS: &str = r#"{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDSV1EXAMPLE","SecretAccessKey":"s","Token":"t","Expiration":"2030-01-01T00:00:00Z"}"#;

  /// An IMDS that answers the token PUT with `put_status` and serves one role otherwise.
  async fn imds_server(put_status: u16) -> crate::google::test_server::TestServer {
    use crate::google::test_server::{reply, TestServer};
    TestServer::start(move |r, _| match (r.method.as_str(), r.path.as_str()) {
      ("PUT", "/latest/api/token") => reply(put_status, if put_status == 200 { "session-token" } else { "" }),
      ("GET", "/latest/meta-data/iam/security-credentials/") => reply(200, "role-a\n"),
      ("GET", "/latest/meta-data/iam/security-credentials/role-a") => reply(200, CREDS),
      ("GET", "/latest/meta-data/placement/region") => reply(200, "eu-north-1"),
      _ => reply(404, ""),
    })
    .await
  }

  fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(5))
  }

  #[tokio::test]
  async fn imdsv2_sends_the_session_token() {
    let server = imds_server(200).await;
    let c = ctx(&[(ENV_ENDPOINT, &server.base)]);
    let imds = Imds::from_env(&c).unwrap();
    let Lookup::Found(creds) = imds.credentials(&c, deadline()).await.unwrap() else { panic!("no credentials") };
    assert_eq!(creds.access_key_id, "ASIAIMDSV1EXAMPLE");
    let gets: Vec<_> = server.requests().into_iter().filter(|r| r.method == "GET").collect();
    assert!(gets.iter().all(|r| r.header("x-aws-ec2-metadata-token") == Some("session-token")));
    assert!(matches!(imds.region(deadline()).await.unwrap(), Lookup::Found(r) if r == "eu-north-1"));
    assert_eq!(server.count("/latest/api/token"), 1, "the session token is reused");
  }

  #[tokio::test]
  async fn falls_back_to_imdsv1_when_the_token_request_is_refused() {
    for status in [403, 404, 405] {
      let server = imds_server(status).await;
      let c = ctx(&[(ENV_ENDPOINT, &server.base)]);
      let Lookup::Found(creds) = Imds::from_env(&c).unwrap().credentials(&c, deadline()).await.unwrap() else { panic!("no credentials") };
      assert_eq!(creds.source, "imds");
      assert!(server.requests().iter().all(|r| r.header("x-aws-ec2-metadata-token").is_none()), "{status}");
    }
  }

  #[tokio::test]
  async fn imdsv1_fallback_can_be_disabled() {
    let server = imds_server(403).await;
    let c = ctx(&[(ENV_ENDPOINT, &server.base), (ENV_V1_DISABLED, "true")]);
    let e = Imds::from_env(&c).unwrap().credentials(&c, deadline()).await.err().expect("an error");
    assert_eq!(e.code(), "CREDENTIALS_ENDPOINT_ERROR");
    assert_eq!(e.status(), Some(403));
    assert_eq!(server.count("/latest/meta-data/iam/security-credentials/"), 0);
  }
}
