//! Google STS token exchange (RFC 8693 as Google implements it; google-auth-library
//! `StsCredentials.exchangeToken`).
//!
//! `POST {token_url}` (default `https://sts.googleapis.com/v1/token`) with
//! `content-type: application/x-www-form-urlencoded` and the form, in google-auth-library's order:
//! `grant_type=`[`GRANT_TYPE`], `audience`, `scope` (space-separated), `requested_token_type=`
//! [`REQUESTED_TOKEN_TYPE`], `subject_token`, `subject_token_type=`[`SUBJECT_TOKEN_TYPE`].
//! With `client_id` (and optionally `client_secret`) the client authenticates with HTTP Basic,
//! `base64(client_id ":" client_secret)` (RFC 7617; google-auth-library `OAuthClientAuthHandler`).
//!
//! Success: `{"access_token", "issued_token_type", "token_type": "Bearer", "expires_in": seconds}`;
//! a 2xx without a usable `access_token` or with a nonsensical `expires_in` is
//! `INVALID_TOKEN_RESPONSE`. Failure: RFC 6749 §5.2 `{"error", "error_description", "error_uri"?}`
//! or, when the API is disabled or the project unknown, Google RPC `{"error": {"status", "message"}}`
//! (both read by [`Endpoint::remote_error`]), kept scrubbed as the remote error of an `STS_EXCHANGE_FAILED`, with a hint where the cause is
//! known (see [`hint`]). 408, 429, 5xx and connection failures are retried by [`crate::http`].

use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::http::{Deadline, Http, Method, Request, Response};
use crate::redact::Secret;

use super::encoding::{base64, form_urlencode};
use super::endpoint::Endpoint;
pub use super::subject_token::SUBJECT_TOKEN_TYPE;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const REQUESTED_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// One token exchange.
#[derive(Debug, Clone)]
pub struct StsRequest<'a> {
  pub token_url: &'a str,
  pub audience: &'a str,
  pub scopes: &'a [String],
  pub subject_token: &'a Secret,
  pub client_id: Option<&'a str>,
  pub client_secret: Option<&'a Secret>,
}

/// What STS returned. `Debug` redacts the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsToken {
  pub access_token: Secret,
  pub issued_token_type: Option<String>,
  pub token_type: Option<String>,
  pub expires_in: Option<Duration>,
}

/// The form body (a secret: it carries the subject token).
pub fn form_body(req: &StsRequest<'_>) -> Secret {
  let scope = req.scopes.join(" ");
  Secret::new(form_urlencode(&[
    ("grant_type", GRANT_TYPE),
    ("audience", req.audience),
    ("scope", &scope),
    ("requested_token_type", REQUESTED_TOKEN_TYPE),
    ("subject_token", req.subject_token.expose()),
    ("subject_token_type", SUBJECT_TOKEN_TYPE),
  ]))
}

/// `Basic base64(id:secret)`.
pub fn basic_auth(client_id: &str, client_secret: Option<&Secret>) -> Secret {
  let secret = client_secret.map(Secret::expose).unwrap_or_default();
  Secret::new(format!("Basic {}", base64(format!("{client_id}:{secret}").as_bytes())))
}

/// Exchange the subject token. `also_redact`: further values to keep out of messages (e.g. the
/// AWS session token inside the subject token).
pub async fn exchange(http: &Http, req: &StsRequest<'_>, also_redact: &[&Secret], deadline: Deadline) -> Result<StsToken> {
  let mut secrets: Vec<&Secret> = vec![req.subject_token];
  secrets.extend(req.client_secret);
  secrets.extend_from_slice(also_redact);
  let ep = Endpoint { name: "Google STS", url: req.token_url, kind: ErrorKind::StsExchangeFailed, secrets: &secrets };
  let mut http_req = Request::new(Method::Post, req.token_url)
    .header("content-type", CONTENT_TYPE)
    .header("accept", "application/json")
    .body(form_body(req).expose().as_bytes().to_vec());
  if let Some(id) = req.client_id {
    http_req = http_req.sensitive_header("authorization", basic_auth(id, req.client_secret).expose());
  }
  let resp = ep.send(http, &http_req, deadline).await?;
  parse_response(&ep, &resp)
}

/// Parse an STS answer (pure: no I/O): the token of a 2xx, or the error of any other status.
/// `exchange` uses it on every response; so does the `sts_response` fuzz target.
pub fn parse_response(ep: &Endpoint<'_>, resp: &Response) -> Result<StsToken> {
  let obj = ep.parse(resp, status_error)?;
  let access_token = Secret::new(ep.required_str(&obj, "access_token")?);
  let expires_in = match obj.get("expires_in") {
    None | Some(Value::Null) => None,
    Some(v) => Some(expires_in(v).ok_or_else(|| {
      Error::new(
        ErrorKind::InvalidTokenResponse,
        format!("{} answered 2xx with an expires_in that is not a positive number of seconds", ep.origin()),
      )
    })?),
  };
  Ok(StsToken {
    access_token,
    issued_token_type: ep.optional_str(&obj, "issued_token_type"),
    token_type: ep.optional_str(&obj, "token_type"),
    expires_in,
  })
}

/// `expires_in` as a number of seconds (a number, or a string of digits as some proxies send).
fn expires_in(v: &Value) -> Option<Duration> {
  let secs = match v {
    Value::Number(n) => n.as_f64()?,
    Value::String(s) => s.trim().parse::<f64>().ok()?,
    _ => return None,
  };
  (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// The error of a non-2xx STS answer: Google's error code and description kept (scrubbed, in either
/// shape: [`Endpoint::remote_error`]), plus a hint.
fn status_error(ep: &Endpoint<'_>, status: u16, json: Option<&Value>, text: &str) -> Error {
  let remote = ep.remote_error(json, text);
  let mut err = Error::http_status(ErrorKind::StsExchangeFailed, status, ep.status_message(status, &remote.detail))
    .with_remote(remote.code.clone(), remote.description.clone());
  if let Some(h) = hint(remote.code.as_deref().unwrap_or_default(), remote.description.as_deref().unwrap_or_default()) {
    err = err.with_hint(h);
  }
  err
}

/// A hint for the STS errors whose cause is known.
pub fn hint(error: &str, description: &str) -> Option<&'static str> {
  let d = description.to_ascii_lowercase();
  let mentions = |words: &[&str]| words.iter().any(|w| d.contains(w));
  if mentions(&["attribute condition"]) {
    return Some("the workload identity provider's attribute condition rejected these AWS credentials: check the condition against the caller's assumed-role ARN");
  }
  if mentions(&["has not been used", "service_disabled"]) {
    return Some("enable the Security Token Service API (sts.googleapis.com) in the project of the workload identity pool, then retry after a few minutes");
  }
  match error {
    "invalid_grant" if mentions(&["aws", "signature", "invalidclienttokenid", "expiredtoken", "getcalleridentity"]) => Some(
      "Google could not verify the signed AWS GetCallerIdentity request: check that the AWS credentials are valid and not expired, \
       that the region is right, and that the workload identity provider's AWS account id is the account of these credentials",
    ),
    "invalid_target" => Some(
      "check the audience: //iam.googleapis.com/projects/<PROJECT_NUMBER>/locations/global/workloadIdentityPools/<POOL_ID>/providers/<PROVIDER_ID> \
       (the project number, not the id); the pool and the provider must exist and be enabled",
    ),
    "invalid_request" | "invalid_grant" if mentions(&["audience", "provider", "pool"]) => Some(
      "check the audience (the workload identity provider's full resource name) and that the provider is an AWS provider",
    ),
    "invalid_scope" => Some("check the scopes: space-free OAuth scope URLs such as https://www.googleapis.com/auth/cloud-platform"),
    "invalid_client" | "unauthorized_client" => Some("check client_id and client_secret, or remove them: AWS workload identity federation does not need them"),
    _ => None,
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::google::test_server::{reply, Canned, TestServer};

  const AUDIENCE: &str = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/POOL_ID/providers/PROVIDER_ID";
  const OK: &str = r#"{"access_token":"MARKER-ACCESS-TOKEN","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}"#;

  fn scopes() -> Vec<String> {
    vec!["https://www.googleapis.com/auth/cloud-platform".into(), "https://www.googleapis.com/auth/bigquery".into()]
  }

  async fn run(server: &TestServer, client: Option<(&str, &Secret)>, deadline: Duration) -> Result<StsToken> {
    let subject = Secret::new("%7B%22url%22MARKER-SUBJECT");
    let scopes = scopes();
    let url = server.url("/v1/token");
    let req = StsRequest {
      token_url: &url,
      audience: AUDIENCE,
      scopes: &scopes,
      subject_token: &subject,
      client_id: client.map(|c| c.0),
      client_secret: client.map(|c| c.1),
    };
    exchange(&Http::default(), &req, &[], Deadline::after(deadline)).await
  }

  const SECOND: Duration = Duration::from_secs(5);

  #[tokio::test]
  async fn sends_the_exact_form_and_parses_the_token() {
    let server = TestServer::start(|_, _| reply(200, OK)).await;
    let token = run(&server, None, SECOND).await.unwrap();
    assert_eq!(token.access_token.expose(), "MARKER-ACCESS-TOKEN");
    assert_eq!(token.expires_in, Some(Duration::from_secs(3600)));
    assert_eq!(token.token_type.as_deref(), Some("Bearer"));
    assert!(!format!("{token:?}").contains("MARKER"));
    let [r] = server.requests().try_into().unwrap();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/token"));
    assert_eq!(r.header("content-type"), Some(CONTENT_TYPE));
    assert_eq!(r.header("authorization"), None);
    let form: Vec<(String, String)> = r.form();
    let expected = [
      ("grant_type", GRANT_TYPE),
      ("audience", AUDIENCE),
      ("scope", "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/bigquery"),
      ("requested_token_type", REQUESTED_TOKEN_TYPE),
      ("subject_token", "%7B%22url%22MARKER-SUBJECT"),
      ("subject_token_type", "urn:ietf:params:aws:token-type:aws4_request"),
    ];
    assert_eq!(form, expected.map(|(k, v)| (k.to_string(), v.to_string())));
    assert!(r.body.contains("scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform+https"), "{}", r.body);
  }

  #[tokio::test]
  async fn client_credentials_go_in_basic_auth() {
    let server = TestServer::start(|_, _| reply(200, OK)).await;
    let secret = Secret::new("MARKER-CLIENT-SECRET");
    run(&server, Some(("my-client", &secret)), SECOND).await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(r.header("authorization"), Some(format!("Basic {}", base64(b"my-client:MARKER-CLIENT-SECRET")).as_str()));
    assert_eq!(r.form_field("client_secret"), None);
    assert_eq!(basic_auth("id", None).expose(), "Basic aWQ6");
  }

  #[tokio::test]
  async fn google_errors_are_kept_scrubbed_with_hints() {
    let body = r#"{"error":"invalid_grant","error_description":"Received invalid AWS response of type InvalidClientTokenId for %7B%22url%22MARKER-SUBJECT"}"#;
    let server = TestServer::start(move |_, _| reply(400, body)).await;
    let e = run(&server, None, SECOND).await.unwrap_err();
    assert_eq!(e.code(), "STS_EXCHANGE_FAILED");
    assert_eq!(e.status(), Some(400));
    assert!(!e.is_retryable());
    assert_eq!(e.remote_error(), Some("invalid_grant"));
    assert_eq!(e.remote_description(), Some("Received invalid AWS response of type InvalidClientTokenId for ** redacted **"));
    assert!(e.hint().unwrap().contains("AWS account id"), "{e}");
    assert!(e.message().contains("answered HTTP 400: invalid_grant: Received invalid AWS response"), "{e}");
    assert!(!format!("{e} {e:?}").contains("MARKER"));
    assert_eq!(server.count("/v1/token"), 1, "4xx is not retried");
  }

  #[test]
  fn hints_for_known_causes() {
    assert!(hint("invalid_target", "The target service indicated by the \"audience\" parameters is invalid.")
      .unwrap()
      .contains("PROJECT_NUMBER"));
    assert!(hint("invalid_grant", "The given credential is rejected by the attribute condition.").unwrap().contains("attribute condition"));
    assert!(hint("invalid_request", "Invalid value for \"audience\".").unwrap().contains("audience"));
    assert!(hint("invalid_client", "").unwrap().contains("client_id"));
    assert!(hint("invalid_grant", "something else").is_none());
    assert!(hint("server_error", "").is_none());
  }

  #[tokio::test]
  async fn non_json_errors_quote_the_scrubbed_body() {
    let server = TestServer::start(|_, _| reply(403, "<html>denied %7B%22url%22MARKER-SUBJECT</html>")).await;
    let e = run(&server, None, SECOND).await.unwrap_err();
    assert!(e.message().ends_with("answered HTTP 403: <html>denied ** redacted **</html>"), "{e}");
    assert_eq!(e.remote_error(), None);
  }

  #[tokio::test]
  async fn transient_failures_are_retried() {
    let server = TestServer::start(|_, n| if n == 0 { reply(503, "busy") } else { reply(200, OK) }).await;
    assert!(run(&server, None, SECOND).await.is_ok());
    assert_eq!(server.count("/v1/token"), 2);
    let server = TestServer::start(|_, _| reply(500, r#"{"error":"server_error"}"#)).await;
    let e = run(&server, None, SECOND).await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(server.count("/v1/token"), crate::http::MAX_ATTEMPTS as usize);
  }

  #[tokio::test]
  async fn slow_answers_time_out() {
    let server = TestServer::start(|_, _| Canned { delay: Duration::from_secs(3), ..reply(200, OK) }).await;
    let e = run(&server, None, Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(e.code(), "TIMEOUT");
  }

  #[tokio::test]
  async fn unusable_success_bodies() {
    for body in [
      "not json MARKER-ACCESS-TOKEN",
      "[]",
      r#"{"token_type":"Bearer"}"#,
      r#"{"access_token":7}"#,
      r#"{"access_token":"MARKER-ACCESS-TOKEN","expires_in":-5}"#,
      r#"{"access_token":"MARKER-ACCESS-TOKEN","expires_in":"soon"}"#,
    ] {
      let server = TestServer::start(move |_, _| reply(200, body)).await;
      let e = run(&server, None, SECOND).await.unwrap_err();
      assert_eq!(e.code(), "INVALID_TOKEN_RESPONSE", "{body}: {e}");
      assert!(!format!("{e} {e:?}").contains("MARKER"), "{e}");
    }
    let server = TestServer::start(|_, _| reply(200, r#"{"access_token":"t","expires_in":"120"}"#)).await;
    assert_eq!(run(&server, None, SECOND).await.unwrap().expires_in, Some(Duration::from_secs(120)));
  }

  #[tokio::test]
  async fn unreachable_and_bad_urls() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/v1/token", listener.local_addr().unwrap());
    drop(listener);
    let subject = Secret::new("s");
    let req =
      StsRequest { token_url: &closed, audience: AUDIENCE, scopes: &[], subject_token: &subject, client_id: None, client_secret: None };
    let e = exchange(&Http::default(), &req, &[], Deadline::after(SECOND)).await.unwrap_err();
    assert_eq!(e.code(), "STS_EXCHANGE_FAILED", "{e}");
    let req = StsRequest { token_url: "not a url", ..req };
    assert_eq!(exchange(&Http::default(), &req, &[], Deadline::after(SECOND)).await.unwrap_err().code(), "CONFIG_INVALID");
  }

  #[test]
  fn parse_response_is_pure() {
    let secret = Secret::new("MARKER-SUBJECT");
    let ep =
      Endpoint { name: "Google STS", url: "https://sts.googleapis.com/v1/token", kind: ErrorKind::StsExchangeFailed, secrets: &[&secret] };
    let resp = |status, body: &str| Response { status, content_type: Some("application/json".into()), body: body.as_bytes().to_vec() };
    assert_eq!(parse_response(&ep, &resp(200, OK)).unwrap().expires_in, Some(Duration::from_secs(3600)));
    let e = parse_response(&ep, &resp(400, r#"{"error":"invalid_grant","error_description":"MARKER-SUBJECT"}"#)).unwrap_err();
    assert_eq!((e.code(), e.status(), e.remote_description()), ("STS_EXCHANGE_FAILED", Some(400), Some("** redacted **")));
    assert_eq!(parse_response(&ep, &resp(200, "[]")).unwrap_err().code(), "INVALID_TOKEN_RESPONSE");
  }
}
