//! Service account impersonation: IAM Credentials `projects.serviceAccounts.generateAccessToken`
//! (google-auth-library `BaseExternalAccountClient.getImpersonatedAccessToken`).
//!
//! `POST {service_account_impersonation_url}`
//! (`https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{EMAIL}:generateAccessToken`)
//! with `authorization: Bearer <STS access token>` (a sensitive header), `content-type:
//! application/json` and the body `{"scope":[…],"lifetime":"<N>s"}` (keys in that order, as Node
//! sends them). The STS token must carry the `cloud-platform` (or `iam`) scope; the caller's scopes
//! go here. Lifetimes: 600..=43200 s, default 3600; above 3600 needs the organization policy
//! `constraints/iam.allowServiceAccountCredentialLifetimeExtension`.
//!
//! Success: `{"accessToken", "expireTime": RFC 3339}`; anything else in a 2xx is
//! `INVALID_TOKEN_RESPONSE`. Failure: Google RPC `{"error": {"code", "message", "status"}}` (or the
//! OAuth shape: both read by [`super::endpoint::Endpoint::remote_error`]), kept
//! (scrubbed) as the remote error of an `IMPERSONATION_FAILED`, with a hint for `PERMISSION_DENIED`,
//! `NOT_FOUND`, `UNAUTHENTICATED` and lifetime refusals.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::http::{Deadline, Http, Method, Request, Response};
use crate::redact::Secret;

use super::endpoint::Endpoint;

pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
pub const MIN_LIFETIME: Duration = Duration::from_secs(600);
pub const MAX_LIFETIME: Duration = Duration::from_secs(43_200);

/// One `generateAccessToken` call.
#[derive(Debug, Clone)]
pub struct ImpersonationRequest<'a> {
  pub url: &'a str,
  pub sts_token: &'a Secret,
  pub scopes: &'a [String],
  pub lifetime: Duration,
}

/// The service account's access token. `Debug` redacts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpersonatedToken {
  pub access_token: Secret,
  pub expire_time: SystemTime,
}

/// `{"scope":[…],"lifetime":"3600s"}`.
pub fn request_body(scopes: &[String], lifetime: Duration) -> String {
  format!("{{\"scope\":{},\"lifetime\":\"{}s\"}}", Value::from(scopes.to_vec()), lifetime.as_secs())
}

/// The service account email of an impersonation URL (`…/serviceAccounts/{EMAIL}:generateAccessToken`).
pub fn service_account_email(url: &str) -> Option<&str> {
  let path = url.split(['?', '#']).next()?;
  let rest = &path[path.rfind("/serviceAccounts/")? + "/serviceAccounts/".len()..];
  let email = rest.strip_suffix(":generateAccessToken")?;
  (!email.is_empty() && !email.contains([':', '/'])).then_some(email)
}

/// An IAM Credentials call: `POST url` with a JSON `body` and the federated token as bearer.
pub fn iam_request(url: &str, sts_token: &Secret, body: String) -> Request {
  Request::new(Method::Post, url)
    .header("content-type", "application/json")
    .header("accept", "application/json")
    .sensitive_header("authorization", format!("Bearer {}", sts_token.expose()))
    .body(body)
}

pub async fn generate_access_token(http: &Http, req: &ImpersonationRequest<'_>, deadline: Deadline) -> Result<ImpersonatedToken> {
  let secrets = [req.sts_token];
  let ep = Endpoint { name: "IAM Credentials generateAccessToken", url: req.url, kind: ErrorKind::ImpersonationFailed, secrets: &secrets };
  let http_req = iam_request(req.url, req.sts_token, request_body(req.scopes, req.lifetime));
  let resp = ep.send(http, &http_req, deadline).await?;
  parse_response(&ep, &resp)
}

/// Parse a generateAccessToken answer (pure: no I/O): the token of a 2xx, or the error of any
/// other status. `generate_access_token` uses it; so does the `iam_response` fuzz target.
pub fn parse_response(ep: &Endpoint<'_>, resp: &Response) -> Result<ImpersonatedToken> {
  let obj = ep.parse(resp, status_error)?;
  let access_token = Secret::new(ep.required_str(&obj, "accessToken")?);
  let expire_time = crate::time::parse_rfc3339(&ep.required_str(&obj, "expireTime")?).ok_or_else(|| {
    Error::new(
      ErrorKind::InvalidTokenResponse,
      format!("{} answered 2xx with an expireTime that is not an RFC 3339 date-time", ep.origin()),
    )
  })?;
  Ok(ImpersonatedToken { access_token, expire_time })
}

fn status_error(ep: &Endpoint<'_>, status: u16, json: Option<&Value>, text: &str) -> Error {
  iam_status_error(ep, status, json, text, service_account_email(ep.url).unwrap_or("the service account"))
}

/// A non-2xx answer of an IAM Credentials method (`generateAccessToken`, `generateIdToken`):
/// `IMPERSONATION_FAILED` with Google's RPC `status` and `message` (scrubbed), and a hint naming
/// `email` for the causes we know.
pub fn iam_status_error(ep: &Endpoint<'_>, status: u16, json: Option<&Value>, text: &str, email: &str) -> Error {
  let remote = ep.remote_error(json, text);
  let mut err = Error::http_status(ErrorKind::ImpersonationFailed, status, ep.status_message(status, &remote.detail))
    .with_remote(remote.code.clone(), remote.description.clone());
  if let Some(h) = hint(status, remote.code.as_deref().unwrap_or_default(), remote.description.as_deref().unwrap_or_default(), email) {
    err = err.with_hint(h);
  }
  err
}

/// A hint for the causes we know.
pub fn hint(status: u16, rpc_status: &str, message: &str, email: &str) -> Option<String> {
  let m = message.to_ascii_lowercase();
  if rpc_status == "INVALID_ARGUMENT" && m.contains("lifetime") {
    return Some("token lifetimes above 3600 s need the organization policy constraints/iam.allowServiceAccountCredentialLifetimeExtension; otherwise use 600..3600".into());
  }
  match (status, rpc_status) {
    (403, _) | (_, "PERMISSION_DENIED") => Some(format!(
      "grant the federated principal roles/iam.workloadIdentityUser (or roles/iam.serviceAccountTokenCreator) on {email}, e.g. \
       principalSet://iam.googleapis.com/projects/<PROJECT_NUMBER>/locations/global/workloadIdentityPools/<POOL_ID>/attribute.aws_role/arn:aws:sts::<AWS_ACCOUNT_ID>:assumed-role/<ROLE_NAME>; \
       bindings take a few minutes to apply, and Google gives the same answer when the service account does not exist"
    )),
    (404, _) | (_, "NOT_FOUND") => Some(format!("{email} was not found: check the service account email in service_account_impersonation_url")),
    (401, _) | (_, "UNAUTHENTICATED") => Some("the STS token was refused: it must be fresh and carry the cloud-platform scope".into()),
    _ => None,
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::google::test_server::{reply, TestServer};
  use crate::time::parse_rfc3339;

  const PATH: &str = "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken";
  const OK: &str = r#"{"accessToken":"MARKER-SA-TOKEN","expireTime":"2020-08-11T07:55:22Z"}"#;

  async fn run(server: &TestServer) -> Result<ImpersonatedToken> {
    let sts = Secret::new("MARKER-STS-TOKEN");
    let scopes = vec!["https://www.googleapis.com/auth/cloud-platform".to_string()];
    let url = server.url(PATH);
    let req = ImpersonationRequest { url: &url, sts_token: &sts, scopes: &scopes, lifetime: Duration::from_secs(1800) };
    generate_access_token(&Http::default(), &req, Deadline::after(Duration::from_secs(5))).await
  }

  #[tokio::test]
  async fn sends_bearer_and_json_and_parses_the_token() {
    let server = TestServer::start(|_, _| reply(200, OK)).await;
    let t = run(&server).await.unwrap();
    assert_eq!(t.access_token.expose(), "MARKER-SA-TOKEN");
    assert_eq!(t.expire_time, parse_rfc3339("2020-08-11T07:55:22Z").unwrap());
    assert!(!format!("{t:?}").contains("MARKER"));
    let [r] = server.requests().try_into().unwrap();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", PATH));
    assert_eq!(r.header("authorization"), Some("Bearer MARKER-STS-TOKEN"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, r#"{"scope":["https://www.googleapis.com/auth/cloud-platform"],"lifetime":"1800s"}"#);
  }

  #[tokio::test]
  async fn rpc_errors_are_kept_with_hints() {
    let denied = r#"{"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist). MARKER-STS-TOKEN","status":"PERMISSION_DENIED"}}"#;
    let server = TestServer::start(move |_, _| reply(403, denied)).await;
    let e = run(&server).await.unwrap_err();
    assert_eq!(e.code(), "IMPERSONATION_FAILED");
    assert_eq!(e.remote_error(), Some("PERMISSION_DENIED"));
    assert!(e.remote_description().unwrap().ends_with("(or it may not exist). ** redacted **"));
    assert!(
      e.hint().unwrap().contains("roles/iam.workloadIdentityUser") && e.hint().unwrap().contains("sa@p.iam.gserviceaccount.com"),
      "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("MARKER"));
    let missing =
      r#"{"error":{"code":404,"message":"Not found; Gaia id not found for email x@p.iam.gserviceaccount.com","status":"NOT_FOUND"}}"#;
    let server = TestServer::start(move |_, _| reply(404, missing)).await;
    let e = run(&server).await.unwrap_err();
    assert!(e.hint().unwrap().contains("check the service account email"), "{e}");
    assert_eq!(e.status(), Some(404));
  }

  #[test]
  fn other_hints() {
    assert!(hint(400, "INVALID_ARGUMENT", "Requested lifetime 7200s exceeds the maximum", "x")
      .unwrap()
      .contains("allowServiceAccountCredentialLifetimeExtension"));
    assert!(hint(401, "UNAUTHENTICATED", "", "x").unwrap().contains("cloud-platform"));
    assert!(hint(500, "INTERNAL", "", "x").is_none());
  }

  #[tokio::test]
  async fn unusable_success_bodies_and_retries() {
    for body in [
      "<html>MARKER-SA-TOKEN",
      r#"{"accessToken":"MARKER-SA-TOKEN"}"#,
      r#"{"accessToken":"MARKER-SA-TOKEN","expireTime":"tomorrow"}"#,
      r#"{"expireTime":"2020-08-11T07:55:22Z"}"#,
    ] {
      let server = TestServer::start(move |_, _| reply(200, body)).await;
      let e = run(&server).await.unwrap_err();
      assert_eq!(e.code(), "INVALID_TOKEN_RESPONSE", "{body}");
      assert!(!format!("{e} {e:?}").contains("MARKER"));
    }
    let server = TestServer::start(|_, n| if n == 0 { reply(500, "{}") } else { reply(200, OK) }).await;
    assert!(run(&server).await.is_ok());
    assert_eq!(server.count(PATH), 2);
  }

  #[test]
  fn email_and_body() {
    assert_eq!(
      service_account_email(
        "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/a@b.iam.gserviceaccount.com:generateAccessToken"
      ),
      Some("a@b.iam.gserviceaccount.com")
    );
    assert_eq!(service_account_email("https://example.com/v1/token"), None);
    assert_eq!(service_account_email("https://x/serviceAccounts/:generateAccessToken"), None);
    assert_eq!(request_body(&["a".into(), "b\"c".into()], DEFAULT_LIFETIME), r#"{"scope":["a","b\"c"],"lifetime":"3600s"}"#);
  }

  #[test]
  fn parse_response_is_pure() {
    let sts = Secret::new("MARKER-STS-TOKEN");
    let url = format!("https://iamcredentials.googleapis.com{PATH}");
    let ep = Endpoint { name: "IAM Credentials generateAccessToken", url: &url, kind: ErrorKind::ImpersonationFailed, secrets: &[&sts] };
    let resp = |status, body: &str| Response { status, content_type: Some("application/json".into()), body: body.as_bytes().to_vec() };
    assert_eq!(parse_response(&ep, &resp(200, OK)).unwrap().expire_time, parse_rfc3339("2020-08-11T07:55:22Z").unwrap());
    let e = parse_response(&ep, &resp(403, r#"{"error":{"status":"PERMISSION_DENIED","message":"MARKER-STS-TOKEN"}}"#)).unwrap_err();
    assert_eq!((e.code(), e.status(), e.remote_error()), ("IMPERSONATION_FAILED", Some(403), Some("PERMISSION_DENIED")));
    assert!(!format!("{e} {e:?}").contains("MARKER"));
    assert_eq!(parse_response(&ep, &resp(200, "{}")).unwrap_err().code(), "INVALID_TOKEN_RESPONSE");
  }
}
