//! AWS credentials as the crate holds them, the JSON document that container endpoints and IMDS
//! return, and those endpoints' errors ([`transport_error`], [`status_error`]).
//!
//! JSON shape (aws-config `json_credentials.rs`; ECS agent; EKS Pod Identity agent; IMDS):
//! `{"Code"?: "Success", "AccessKeyId", "SecretAccessKey", "Token" | "SessionToken",
//!   "Expiration" | "ExpiresAt": RFC 3339, "AccountId"?, "RoleArn"?, "Type"?, "LastUpdated"?}`.
//! Keys are matched case-insensitively. `Token` and `Expiration` are required (static credentials
//! from an endpoint are not supported, as in aws-config). A `Code` other than `Success` is an error.
//! Error messages name fields, never values: the body is a secret.

use std::time::SystemTime;

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::http::{self, TransportError};
use crate::redact::Secret;

/// A set of AWS credentials. `Debug` shows a masked access key id and nothing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
  pub access_key_id: String,
  pub secret_access_key: Secret,
  pub session_token: Option<Secret>,
  pub expiration: Option<SystemTime>,
  pub account_id: Option<String>,
  /// Which chain link produced them (`environment`, `container`, …).
  pub source: &'static str,
}

/// `ASIA…WXYZ`-style masking: enough to tell keys apart in a log, not enough to use.
pub fn mask_key_id(id: &str) -> String {
  if id.len() <= 8 || !id.is_ascii() {
    return "****".to_string();
  }
  format!("{}…{}", &id[..4], &id[id.len() - 4..])
}

impl std::fmt::Debug for AwsCredentials {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("AwsCredentials")
      .field("access_key_id", &mask_key_id(&self.access_key_id))
      .field("secret_access_key", &self.secret_access_key)
      .field("session_token", &self.session_token)
      .field("expiration", &self.expiration.map(crate::time::format_rfc3339))
      .field("source", &self.source)
      .finish()
  }
}

pub(super) fn field<'a>(obj: &'a serde_json::Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
  obj.iter().find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n))).map(|(_, v)| v)
}

pub(super) fn string_field(obj: &serde_json::Map<String, Value>, names: &[&str], what: &str) -> Result<Option<String>> {
  match field(obj, names) {
    None | Some(Value::Null) => Ok(None),
    Some(Value::String(s)) if s.is_empty() => Ok(None),
    Some(Value::String(s)) => Ok(Some(s.clone())),
    Some(_) => Err(invalid(format!("field {what} is not a string"))),
  }
}

fn invalid(msg: String) -> Error {
  Error::new(ErrorKind::InvalidCredentialsResponse, msg)
}

/// Parse a container-endpoint / IMDS credentials document. `origin` names the endpoint for messages;
/// `sent` are the secrets we sent it (an endpoint may echo them in its `Message`).
pub fn parse_credentials_json(body: &[u8], origin: &str, source: &'static str, sent: &[&Secret]) -> Result<AwsCredentials> {
  let value: Value = serde_json::from_slice(body).map_err(|e| {
    invalid(format!(
      "{origin} returned a body that is not valid JSON ({} at line {} column {})",
      match e.classify() {
        serde_json::error::Category::Eof => "truncated",
        _ => "syntax error",
      },
      e.line(),
      e.column()
    ))
  })?;
  let Value::Object(obj) = value else {
    return Err(invalid(format!("{origin} returned JSON that is not an object")));
  };
  if let Some(code) = string_field(&obj, &["Code"], "Code")? {
    if code != "Success" {
      let message = string_field(&obj, &["Message"], "Message")?.unwrap_or_default();
      return Err(Error::new(
        ErrorKind::CredentialsEndpointError,
        format!("{origin} reported an error: {}: {}", crate::redact::scrub_body(&code, sent), crate::redact::scrub_body(&message, sent)),
      ));
    }
  }
  let ak = string_field(&obj, &["AccessKeyId"], "AccessKeyId")?;
  let sk = string_field(&obj, &["SecretAccessKey"], "SecretAccessKey")?;
  let token = string_field(&obj, &["Token", "SessionToken"], "Token")?;
  let exp = string_field(&obj, &["Expiration", "ExpiresAt"], "Expiration")?;
  let missing: Vec<&str> =
    [("AccessKeyId", ak.is_none()), ("SecretAccessKey", sk.is_none()), ("Token", token.is_none()), ("Expiration", exp.is_none())]
      .iter()
      .filter(|(_, m)| *m)
      .map(|(n, _)| *n)
      .collect();
  if !missing.is_empty() {
    return Err(invalid(format!("{origin} returned credentials without {}", missing.join(", "))));
  }
  let exp_text = exp.unwrap_or_default();
  let expiration = crate::time::parse_rfc3339(&exp_text)
    .ok_or_else(|| invalid(format!("{origin} returned an Expiration that is not an RFC 3339 date-time")))?;
  Ok(AwsCredentials {
    access_key_id: ak.unwrap_or_default(),
    secret_access_key: Secret::new(sk.unwrap_or_default()),
    session_token: token.map(Secret::new),
    expiration: Some(expiration),
    account_id: string_field(&obj, &["AccountId"], "AccountId")?,
    source,
  })
}

/// The text of a token file named by the variable `var` (read on every fetch: tokens rotate),
/// within `deadline` and off the async workers ([`crate::file_read::read`]: a read that does not
/// finish in time is `TIMEOUT` naming `var`). A file that cannot be read (with `read_hint`, if any)
/// or is not UTF-8 is `CONFIG_INVALID` naming the variable and the path; the contents are never shown.
pub async fn read_token_file(
  ctx: &crate::context::Context,
  var: &str,
  path: &str,
  read_hint: Option<&str>,
  deadline: crate::http::Deadline,
) -> Result<String> {
  let read = crate::file_read::read(&ctx.fs, std::path::Path::new(path), deadline).await.map_err(|e| e.context(var))?;
  let bytes = read.map_err(|e| {
    let err = Error::new(ErrorKind::ConfigInvalid, format!("cannot read {var} ({path}): {e}"));
    match read_hint {
      Some(hint) => err.with_hint(hint),
      None => err,
    }
  })?;
  String::from_utf8(bytes).map_err(|_| Error::new(ErrorKind::ConfigInvalid, format!("{var} ({path}) is not UTF-8 text")))
}

/// Reject credentials that are already past their expiration.
pub fn ensure_not_expired(creds: AwsCredentials, now: SystemTime, origin: &str) -> Result<AwsCredentials> {
  match creds.expiration {
    Some(exp) if exp <= now => Err(
      Error::new(
        ErrorKind::CredentialsExpired,
        format!(
          "{origin} returned credentials that expired at {} (now {})",
          crate::time::format_rfc3339(exp),
          crate::time::format_rfc3339(now)
        ),
      )
      .with_hint("check the clock of this host and of the credential endpoint"),
    ),
    _ => Ok(creds),
  }
}

/// Map a transport failure of a credential endpoint to our error.
pub fn transport_error(origin: &str, e: TransportError, deadline_ms: u128) -> Error {
  match e {
    TransportError::Timeout => Error::new(ErrorKind::Timeout, format!("{origin} did not answer in time (bound {deadline_ms} ms)")),
    TransportError::BodyTooLarge => Error::new(ErrorKind::InvalidCredentialsResponse, format!("{origin}: {e}")),
    TransportError::InvalidRequest(_) => Error::new(ErrorKind::ConfigInvalid, format!("{origin}: {e}")),
    TransportError::ProxyAuth => Error::new(ErrorKind::ConfigInvalid, format!("{origin}: {e}")).with_hint("the proxy in HTTPS_PROXY / HTTP_PROXY refused its credentials: check the user and password in its URL, or list this host in NO_PROXY"),
    TransportError::NoTrust(_) => Error::new(ErrorKind::ConfigInvalid, format!("{origin}: {e}")).with_hint("native HTTPS trusts Node's root certificates (handed over when the package is loaded through its main entry), NODE_EXTRA_CA_CERTS and the system store; install ca-certificates or set NODE_EXTRA_CA_CERTS"),
    TransportError::Connect(_) => Error::new(ErrorKind::CredentialsEndpointError, format!("{origin}: {e}")),
  }
}

/// A non-2xx answer from a credential endpoint: keep its `Code`/`Message` (scrubbed), drop the rest.
pub fn status_error(origin: &str, resp: &http::Response, secrets: &[&Secret]) -> Error {
  let detail = serde_json::from_slice::<serde_json::Value>(&resp.body)
    .ok()
    .and_then(|v| {
      let obj = v.as_object()?;
      let get = |k: &str| obj.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).and_then(|(_, v)| v.as_str()).map(str::to_string);
      Some(format!("{}: {}", get("code").unwrap_or_default(), get("message").unwrap_or_default()))
    })
    .map(|d| format!(" ({})", crate::redact::scrub_body(&d, secrets)))
    .unwrap_or_default();
  let hint = match resp.status {
    400 | 401 | 403 => {
      "the endpoint refused the request: on EKS Pod Identity check the token file and the pod's service account association"
    }
    404 => "the credentials path is unknown to the agent: is the task role (or pod association) configured?",
    _ => "the credential agent may be starting or overloaded; the supplier retries on the next call",
  };
  Error::http_status(ErrorKind::CredentialsEndpointError, resp.status, format!("{origin} answered HTTP {}{detail}", resp.status))
    .with_hint(hint)
}

#[cfg(test)]
mod tests {
  use super::*;

  const MARKERS: [&str; 2] = ["MARKER-SECRET-KEY", "MARKER-SESSION-TOKEN"];

  fn assert_no_marker(s: &str) {
    for m in MARKERS {
      assert!(!s.contains(m), "secret leaked into: {s}");
    }
  }

  #[test]
  fn parses_ecs_and_imds_shapes_case_insensitively() {
    let ecs = br#"{"RoleArn":"arn:aws:iam::1:role/r","AccessKeyId":"ASIAEXAMPLEEXAMPLE","SecretAccessKey":"MARKER-SECRET-KEY","Token":"MARKER-SESSION-TOKEN","Expiration":"2009-02-13T23:31:30Z","AccountId":"012345678901"}"#;
    let c = parse_credentials_json(ecs, "endpoint", "container", &[]).unwrap();
    assert_eq!(c.access_key_id, "ASIAEXAMPLEEXAMPLE");
    assert_eq!(c.session_token.as_ref().unwrap().expose(), "MARKER-SESSION-TOKEN");
    assert_eq!(c.account_id.as_deref(), Some("012345678901"));
    assert_no_marker(&format!("{c:?}"));
    let imds = br#"{"code":"Success","type":"AWS-HMAC","accesskeyid":"ASIAEXAMPLEEXAMPLE","secretaccesskey":"s","sessiontoken":"t","expiresat":"2009-02-13T23:31:30Z"}"#;
    assert!(parse_credentials_json(imds, "imds", "imds", &[]).is_ok());
  }

  #[test]
  fn errors_name_fields_never_values() {
    let cases: &[(&[u8], &str)] = &[
      (br#"{"AccessKeyId":"A","SecretAccessKey":"MARKER-SECRET-KEY"}"#, "without Token, Expiration"),
      (
        br#"{"AccessKeyId":"A","SecretAccessKey":"MARKER-SECRET-KEY","Token":"MARKER-SESSION-TOKEN","Expiration":"soon"}"#,
        "not an RFC 3339",
      ),
      (br#"{"AccessKeyId":"A","SecretAccessKey":"MARKER-SECRET-KEY","Token""#, "truncated"),
      (b"<html>MARKER-SECRET-KEY</html>", "not valid JSON"),
      (b"[1,2]", "not an object"),
      (br#"{"AccessKeyId":1}"#, "AccessKeyId is not a string"),
    ];
    for (body, expect) in cases {
      let e = parse_credentials_json(body, "endpoint", "container", &[]).unwrap_err();
      assert_eq!(e.kind(), ErrorKind::InvalidCredentialsResponse);
      assert!(e.to_string().contains(expect), "{e}");
      assert_no_marker(&e.to_string());
      assert_no_marker(&format!("{e:?}"));
    }
  }

  #[test]
  fn echoed_secrets_are_redacted_from_endpoint_messages() {
    let sent = Secret::new("MARKER-AUTH-TOKEN");
    let body = br#"{"Code":"CredentialsUninitialized","Message":"token MARKER-AUTH-TOKEN is not valid yet"}"#;
    let e = parse_credentials_json(body, "ep", "container", &[&sent]).unwrap_err();
    assert!(!e.to_string().contains("MARKER-AUTH-TOKEN"), "{e}");
    assert!(e.to_string().contains("is not valid yet"), "{e}");
  }

  #[test]
  fn non_success_code_is_an_endpoint_error() {
    let e =
      parse_credentials_json(br#"{"Code":"CredentialsUninitialized","Message":"agent restarting"}"#, "ep", "container", &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CredentialsEndpointError);
    assert!(e.to_string().contains("CredentialsUninitialized: agent restarting"));
  }

  #[test]
  fn expired_credentials_are_rejected() {
    let c = parse_credentials_json(
      br#"{"AccessKeyId":"A","SecretAccessKey":"s","Token":"t","Expiration":"2009-02-13T23:31:30Z"}"#,
      "ep",
      "container",
      &[],
    )
    .unwrap();
    let e = ensure_not_expired(c, SystemTime::now(), "ep").unwrap_err();
    assert_eq!(e.code(), "CREDENTIALS_EXPIRED");
  }
}
