//! OpenID Connect ID tokens for the impersonated service account: IAM Credentials
//! `projects.serviceAccounts.generateIdToken` (what Cloud Run and IAP accept as
//! `Authorization: Bearer <ID token>`). google-auth-library's external-account clients have no
//! ID tokens (googleapis/google-auth-library-nodejs#1197).
//!
//! `POST {prefix}:generateIdToken`, where `{prefix}` is the configured
//! `service_account_impersonation_url` without its `:generateAccessToken` suffix
//! (`https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{EMAIL}:generateIdToken`
//! for the usual URL; a Private Service Connect or emulator host is kept), with
//! `authorization: Bearer <STS access token>` (the federated token, as for `generateAccessToken`:
//! the federated principal holds `roles/iam.workloadIdentityUser`, which grants
//! `iam.serviceAccounts.getOpenIdToken`), `content-type: application/json` and the body
//! `{"audience":"…","includeEmail":true|false}` (keys in that order).
//!
//! Success: `{"token": "<JWT>"}`. The expiry is the JWT payload's `exp` (seconds since the epoch,
//! read from the base64url payload; the signature is not checked: the token comes straight from
//! Google over TLS and is only passed on). A 2xx without a `token`, or with one that is not a JWT
//! with a numeric `exp`, is `INVALID_TOKEN_RESPONSE`. Failure: Google RPC `{"error": {"code",
//! "message", "status"}}`, kept (scrubbed) as the remote error of an `IMPERSONATION_FAILED`, with the
//! hints of [`super::impersonation::hint`].
//!
//! Audiences: non-empty, at most [`MAX_AUDIENCE_LEN`] bytes, no control characters
//! (`CONFIG_INVALID` otherwise). The token never appears in an error, `Debug` or a log.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::http::{Deadline, Http, Response};
use crate::redact::Secret;

use super::endpoint::Endpoint;
use super::impersonation;

/// The suffix of the impersonation URL this module replaces.
pub const ACCESS_TOKEN_SUFFIX: &str = ":generateAccessToken";
pub const ID_TOKEN_SUFFIX: &str = ":generateIdToken";
/// Longest audience accepted (Cloud Run URLs and IAP client ids are far shorter).
pub const MAX_AUDIENCE_LEN: usize = 2048;
/// Largest JWT payload we decode (a Google ID token's is well under 1 KiB).
const MAX_PAYLOAD_LEN: usize = 16 * 1024;

/// One `generateIdToken` call.
#[derive(Debug, Clone)]
pub struct IdTokenRequest<'a> {
  pub url: &'a str,
  pub sts_token: &'a Secret,
  pub audience: &'a str,
  pub include_email: bool,
}

/// An OpenID Connect ID token. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct IdToken {
  pub token: Secret,
  pub expires_at: SystemTime,
}

impl std::fmt::Debug for IdToken {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("IdToken").field("token", &self.token).field("expires_at", &crate::time::format_rfc3339(self.expires_at)).finish()
  }
}

/// The `generateIdToken` URL for an impersonation URL (`…/serviceAccounts/{EMAIL}:generateAccessToken`).
pub fn id_token_url(impersonation_url: &str) -> Option<String> {
  impersonation::service_account_email(impersonation_url)?;
  let (path, rest) = match impersonation_url.find(['?', '#']) {
    Some(i) => impersonation_url.split_at(i),
    None => (impersonation_url, ""),
  };
  let prefix = path.strip_suffix(ACCESS_TOKEN_SUFFIX)?;
  Some(format!("{prefix}{ID_TOKEN_SUFFIX}{rest}"))
}

/// `CONFIG_INVALID` unless `audience` is usable.
pub fn check_audience(audience: &str) -> Result<()> {
  if audience.is_empty() || audience.len() > MAX_AUDIENCE_LEN || audience.chars().any(char::is_control) {
    return Err(
      Error::new(
        ErrorKind::ConfigInvalid,
        format!("the ID token audience must be a non-empty string of at most {MAX_AUDIENCE_LEN} bytes without control characters"),
      )
      .with_hint("use the URL of the Cloud Run service (e.g. https://my-service-abc123-uc.a.run.app) or the IAP OAuth client id"),
    );
  }
  Ok(())
}

/// `{"audience":"…","includeEmail":false}`.
pub fn request_body(audience: &str, include_email: bool) -> String {
  format!("{{\"audience\":{},\"includeEmail\":{include_email}}}", Value::from(audience))
}

pub async fn generate_id_token(http: &Http, req: &IdTokenRequest<'_>, deadline: Deadline) -> Result<IdToken> {
  let secrets = [req.sts_token];
  let ep = Endpoint { name: "IAM Credentials generateIdToken", url: req.url, kind: ErrorKind::ImpersonationFailed, secrets: &secrets };
  let http_req = impersonation::iam_request(req.url, req.sts_token, request_body(req.audience, req.include_email));
  let resp = ep.send(http, &http_req, deadline).await?;
  parse_response(&ep, &resp)
}

/// Parse a generateIdToken answer (pure: no I/O).
pub fn parse_response(ep: &Endpoint<'_>, resp: &Response) -> Result<IdToken> {
  let obj = ep.parse(resp, status_error)?;
  let token = Secret::new(ep.required_str(&obj, "token")?);
  let expires_at = jwt_expiry(token.expose()).ok_or_else(|| {
    Error::new(
      ErrorKind::InvalidTokenResponse,
      format!("{} answered 2xx with a token that is not a JWT with a numeric exp claim", ep.origin()),
    )
  })?;
  Ok(IdToken { token, expires_at })
}

fn status_error(ep: &Endpoint<'_>, status: u16, json: Option<&Value>, text: &str) -> Error {
  let email = impersonation::service_account_email(&ep.url.replace(ID_TOKEN_SUFFIX, ACCESS_TOKEN_SUFFIX)).map(str::to_string);
  impersonation::iam_status_error(ep, status, json, text, email.as_deref().unwrap_or("the service account"))
}

/// The `exp` claim of a JWT (`header.payload.signature`, base64url), without checking the signature.
pub fn jwt_expiry(jwt: &str) -> Option<SystemTime> {
  let mut parts = jwt.split('.');
  let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else { return None };
  if payload.len() > MAX_PAYLOAD_LEN {
    return None;
  }
  let claims: Value = serde_json::from_slice(&base64url_decode(payload)?).ok()?;
  let exp = claims.get("exp")?.as_f64().filter(|e| e.is_finite() && *e > 0.0 && *e < 1e11)?;
  UNIX_EPOCH.checked_add(Duration::from_secs_f64(exp))
}

/// RFC 4648 §5 base64url, padding optional.
pub fn base64url_decode(input: &str) -> Option<Vec<u8>> {
  let input = input.trim_end_matches('=');
  let mut out = Vec::with_capacity(input.len() * 3 / 4);
  let (mut acc, mut bits) = (0u32, 0u32);
  for b in input.bytes() {
    let v = match b {
      b'A'..=b'Z' => b - b'A',
      b'a'..=b'z' => b - b'a' + 26,
      b'0'..=b'9' => b - b'0' + 52,
      b'-' => 62,
      b'_' => 63,
      _ => return None,
    };
    acc = (acc << 6) | u32::from(v);
    bits += 6;
    if bits >= 8 {
      bits -= 8;
      out.push((acc >> bits) as u8);
      acc &= (1 << bits) - 1;
    }
  }
  // A single leftover character (6 bits) cannot end a valid encoding.
  (bits < 6).then_some(out)
}

/// An unsigned JWT with these claims and a marker as its signature (tests).
#[cfg(test)]
pub(crate) fn test_jwt(claims: &str) -> String {
  let b64url = |s: &str| crate::google::encoding::base64(s.as_bytes()).trim_end_matches('=').replace('+', "-").replace('/', "_");
  format!("{}.{}.MARKER-ID-SIGNATURE", b64url(r#"{"alg":"RS256","typ":"JWT"}"#), b64url(claims))
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::google::test_server::{reply, TestServer};
  use test_jwt as jwt;

  const PATH: &str = "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateIdToken";
  const IMPERSONATION: &str = "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken";

  async fn run(server: &TestServer, audience: &str, include_email: bool) -> Result<IdToken> {
    let sts = Secret::new("MARKER-STS-TOKEN");
    let url = server.url(PATH);
    let req = IdTokenRequest { url: &url, sts_token: &sts, audience, include_email };
    generate_id_token(&Http::default(), &req, Deadline::after(Duration::from_secs(5))).await
  }

  #[tokio::test]
  async fn sends_bearer_and_json_and_reads_exp() {
    let token = jwt(r#"{"aud":"https://svc.example","exp":1700003600,"iat":1700000000}"#);
    let body = format!(r#"{{"token":"{token}"}}"#);
    let server = TestServer::start(move |_, _| reply(200, &body)).await;
    let t = run(&server, "https://svc.example", true).await.unwrap();
    assert_eq!(t.token.expose(), token);
    assert_eq!(t.expires_at, UNIX_EPOCH + Duration::from_secs(1_700_003_600));
    assert!(!format!("{t:?}").contains("MARKER"), "{t:?}");
    let [r] = server.requests().try_into().unwrap();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", PATH));
    assert_eq!(r.header("authorization"), Some("Bearer MARKER-STS-TOKEN"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, r#"{"audience":"https://svc.example","includeEmail":true}"#);
  }

  #[tokio::test]
  async fn unusable_success_bodies_are_invalid_token_responses_without_the_token() {
    for body in [
      r#"{}"#.to_string(),
      r#"{"token":""}"#.to_string(),
      r#"{"token":"MARKER-NOT-A-JWT"}"#.to_string(),
      format!(r#"{{"token":"{}"}}"#, jwt(r#"{"aud":"x"}"#)),
      format!(r#"{{"token":"{}"}}"#, jwt(r#"{"exp":"tomorrow"}"#)),
      "<html>MARKER</html>".to_string(),
    ] {
      let b = body.clone();
      let server = TestServer::start(move |_, _| reply(200, &b)).await;
      let e = run(&server, "aud", false).await.unwrap_err();
      assert_eq!(e.code(), "INVALID_TOKEN_RESPONSE", "{body}");
      assert!(!format!("{e} {e:?}").contains("MARKER"), "{e}");
    }
  }

  #[tokio::test]
  async fn rpc_errors_are_impersonation_failures_with_hints_and_no_secret() {
    let denied = r#"{"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getOpenIdToken' denied MARKER-STS-TOKEN","status":"PERMISSION_DENIED"}}"#;
    let server = TestServer::start(move |_, _| reply(403, denied)).await;
    let e = run(&server, "aud", false).await.unwrap_err();
    assert_eq!((e.code(), e.status(), e.remote_error()), ("IMPERSONATION_FAILED", Some(403), Some("PERMISSION_DENIED")));
    assert!(e.message().contains("IAM Credentials generateIdToken"), "{e}");
    let hint = e.hint().unwrap();
    assert!(hint.contains("roles/iam.workloadIdentityUser") && hint.contains("sa@p.iam.gserviceaccount.com"), "{hint}");
    assert!(!format!("{e} {e:?}").contains("MARKER"), "{e}");
  }

  #[test]
  fn url_audience_body() {
    assert_eq!(
      id_token_url(&format!("https://iamcredentials.googleapis.com{IMPERSONATION}")).as_deref(),
      Some(format!("https://iamcredentials.googleapis.com{PATH}").as_str())
    );
    assert_eq!(
      id_token_url(&format!("http://127.0.0.1:9{IMPERSONATION}?x=1")).as_deref(),
      Some(format!("http://127.0.0.1:9{PATH}?x=1").as_str())
    );
    assert_eq!(id_token_url("https://example.com/v1/token"), None);
    assert_eq!(request_body("a\"b", false), r#"{"audience":"a\"b","includeEmail":false}"#);
    for bad in ["", "a\nb", &"x".repeat(MAX_AUDIENCE_LEN + 1)] {
      assert_eq!(check_audience(bad).unwrap_err().code(), "CONFIG_INVALID");
    }
    check_audience("https://svc-abc-uc.a.run.app").unwrap();
  }

  #[test]
  fn base64url_and_exp() {
    assert_eq!(base64url_decode("aGk").unwrap(), b"hi");
    assert_eq!(base64url_decode("aGk=").unwrap(), b"hi");
    assert_eq!(base64url_decode("-_8").unwrap(), [0xfb, 0xff]);
    assert!(base64url_decode("a").is_none());
    assert!(base64url_decode("a+b").is_none());
    assert_eq!(jwt_expiry(&jwt(r#"{"exp":10}"#)), Some(UNIX_EPOCH + Duration::from_secs(10)));
    assert_eq!(jwt_expiry("a.b"), None);
    assert_eq!(jwt_expiry(&format!("{}.x", jwt(r#"{"exp":10}"#))), None, "four parts");
    assert_eq!(jwt_expiry(&jwt(r#"{"exp":-1}"#)), None);
  }
}
