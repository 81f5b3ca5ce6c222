//! One request to a Google endpoint (STS `token`, IAM Credentials `generateAccessToken`), through
//! [`crate::http::Http::send_with_retry`] (deadline, 64 KiB body cap, retries of transient failures only).
//!
//! Mapping to [`Error`]:
//! * no answer in time → `TIMEOUT`; connection failure → the endpoint's kind
//!   (`STS_EXCHANGE_FAILED` / `IMPERSONATION_FAILED`); unusable URL or header → `CONFIG_INVALID`;
//! * a non-2xx answer is left to the caller (which knows its endpoint's hints), with the body read
//!   by [`Endpoint::remote_error`] in **both** Google error shapes, whichever endpoint sent it:
//!   OAuth 2.0 (RFC 6749 §5.2, `{"error": "invalid_grant", "error_description": "…"}`, STS's usual
//!   shape) and Google RPC (`{"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "…"}}`,
//!   IAM's, and STS's when the API is disabled or the project is unknown); a body in neither shape
//!   is quoted as text (scrubbed and cut: [`crate::redact::scrub_body`]);
//! * a 2xx body that is not a JSON object, is too large, or lacks a field → `INVALID_TOKEN_RESPONSE`,
//!   naming the field and never quoting the body (it may hold a token).
//!
//! Every text taken from a response goes through [`scrub_body`] with the request's secrets.

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::http::{Deadline, Http, Request, Response, TransportError};
use crate::redact::{scrub_body, Secret};

pub type JsonObject = serde_json::Map<String, Value>;

/// What a non-2xx answer said, in either Google error shape (all text scrubbed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteError {
  /// OAuth `error` (`invalid_grant`) or RPC `status` (`PERMISSION_DENIED`).
  pub code: Option<String>,
  /// OAuth `error_description` or RPC `message`.
  pub description: Option<String>,
  /// For the message: `code: description`, one of them, or the quoted body.
  pub detail: String,
}

/// Who is being called, for messages and error kinds.
pub struct Endpoint<'a> {
  /// e.g. `Google STS`.
  pub name: &'static str,
  pub url: &'a str,
  /// The kind of a failed call.
  pub kind: ErrorKind,
  /// Values to remove from any text quoted from a response.
  pub secrets: &'a [&'a Secret],
}

impl Endpoint<'_> {
  /// `Google STS (https://sts.googleapis.com/v1/token)`.
  pub fn origin(&self) -> String {
    format!("{} ({})", self.name, crate::redact::url(self.url))
  }

  pub fn scrub(&self, text: &str) -> String {
    scrub_body(text, self.secrets)
  }

  /// Send `req`, retrying transient failures, and map transport failures.
  pub async fn send(&self, http: &Http, req: &Request, deadline: Deadline) -> Result<Response> {
    let budget = deadline.remaining().as_millis();
    http.send_with_retry(req, deadline).await.map_err(|e| self.transport_error(e, budget))
  }

  fn transport_error(&self, e: TransportError, budget_ms: u128) -> Error {
    let origin = self.origin();
    match e {
      TransportError::Timeout => Error::new(ErrorKind::Timeout, format!("{origin} did not answer in time (bound {budget_ms} ms)")),
      TransportError::BodyTooLarge => Error::new(ErrorKind::InvalidTokenResponse, format!("{origin}: {e}")),
      TransportError::InvalidRequest(_) => Error::new(ErrorKind::ConfigInvalid, format!("{origin}: {e}")),
    TransportError::ProxyAuth => Error::new(ErrorKind::ConfigInvalid, format!("{origin}: {e}")).with_hint("the proxy in HTTPS_PROXY / HTTP_PROXY refused its credentials: check the user and password in its URL, or list this host in NO_PROXY"),
    TransportError::NoTrust(_) => Error::new(ErrorKind::ConfigInvalid, format!("{origin}: {e}")).with_hint("native HTTPS trusts Node's root certificates (handed over when the package is loaded through its main entry), NODE_EXTRA_CA_CERTS and the system store; install ca-certificates or set NODE_EXTRA_CA_CERTS"),
      // A connection failure is transient (retryable), although STS_EXCHANGE_FAILED and
      // IMPERSONATION_FAILED are not by default: as for the container endpoint's connection errors.
      TransportError::Connect(_) => Error::new(self.kind, format!("{origin}: {e}"))
        .transient()
        .with_hint("check network access (egress, DNS, proxy or VPC endpoint) to this URL"),
    }
  }

  fn invalid(&self, what: String) -> Error {
    Error::new(ErrorKind::InvalidTokenResponse, format!("{} answered 2xx with {what}", self.origin()))
  }

  /// The JSON object of a 2xx answer.
  pub fn success_object(&self, resp: &Response) -> Result<JsonObject> {
    match serde_json::from_slice::<Value>(&resp.body) {
      Ok(Value::Object(obj)) => Ok(obj),
      Ok(_) => Err(self.invalid("JSON that is not an object".into())),
      Err(_) => Err(self.invalid(format!(
        "a body that is not JSON ({} bytes, content-type {})",
        resp.body.len(),
        resp.content_type.as_deref().unwrap_or("none")
      ))),
    }
  }

  /// A required, non-empty string field of a 2xx answer.
  pub fn required_str(&self, obj: &JsonObject, field: &str) -> Result<String> {
    match obj.get(field) {
      Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
      Some(Value::String(_)) | None | Some(Value::Null) => Err(self.invalid(format!("no {field}"))),
      Some(_) => Err(self.invalid(format!("a {field} that is not a string"))),
    }
  }

  /// An optional string field (absent, null or not a string: `None`), scrubbed.
  pub fn optional_str(&self, obj: &JsonObject, field: &str) -> Option<String> {
    obj.get(field).and_then(Value::as_str).map(|s| self.scrub(s))
  }

  /// The message for a non-2xx answer: `<origin> answered HTTP <status>: <detail>`.
  pub fn status_message(&self, status: u16, detail: &str) -> String {
    if detail.is_empty() {
      format!("{} answered HTTP {status}", self.origin())
    } else {
      format!("{} answered HTTP {status}: {detail}", self.origin())
    }
  }

  /// Send `req` and return the JSON object of a 2xx answer. A non-2xx answer becomes
  /// `on_status(self, status, body as JSON if it is JSON, scrubbed body text otherwise)`.
  pub async fn call(
    &self,
    http: &Http,
    req: &Request,
    deadline: Deadline,
    on_status: impl FnOnce(&Self, u16, Option<&Value>, &str) -> Error,
  ) -> Result<JsonObject> {
    let resp = self.send(http, req, deadline).await?;
    self.parse(&resp, on_status)
  }

  /// The pure half of [`Endpoint::call`] (no I/O): the JSON object of a 2xx answer, or
  /// `on_status(…)` for any other status. Used by the response parsers and the fuzz targets.
  pub fn parse(&self, resp: &Response, on_status: impl FnOnce(&Self, u16, Option<&Value>, &str) -> Error) -> Result<JsonObject> {
    if !resp.is_success() {
      let (json, text) = self.error_body(resp);
      return Err(on_status(self, resp.status, json.as_ref(), &text));
    }
    self.success_object(resp)
  }

  /// The body of a non-2xx answer, as JSON if it is JSON, else as scrubbed text.
  pub fn error_body(&self, resp: &Response) -> (Option<Value>, String) {
    match serde_json::from_slice::<Value>(&resp.body) {
      Ok(v) => (Some(v), String::new()),
      Err(_) => (None, self.scrub(&resp.text())),
    }
  }

  /// Read a non-2xx body in either Google error shape (see the module doc).
  pub fn remote_error(&self, json: Option<&Value>, text: &str) -> RemoteError {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(|s| self.scrub(s));
    let (code, description) = match json.and_then(|j| j.get("error")) {
      Some(Value::String(_)) => (s(json.and_then(|j| j.get("error"))), s(json.and_then(|j| j.get("error_description")))),
      Some(rpc @ Value::Object(_)) => (s(rpc.get("status")), s(rpc.get("message"))),
      _ => (None, None),
    };
    let detail = match (&code, &description) {
      (Some(c), Some(d)) => format!("{c}: {d}"),
      (Some(c), None) => c.clone(),
      (None, Some(d)) => d.clone(),
      (None, None) if !text.is_empty() => text.to_string(),
      (None, None) => json.map(|j| self.scrub(&j.to_string())).unwrap_or_default(),
    };
    RemoteError { code, description, detail }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn resp(body: &str) -> Response {
    Response { status: 200, content_type: Some("text/html".into()), body: body.as_bytes().to_vec() }
  }

  #[test]
  fn unusable_success_bodies_name_fields_never_values() {
    let secret = Secret::new("MARKER-TOKEN");
    let ep = Endpoint {
      name: "Google STS",
      url: "https://sts.googleapis.com/v1/token?x=1",
      kind: ErrorKind::StsExchangeFailed,
      secrets: &[&secret],
    };
    let e = ep.success_object(&resp("<html>MARKER-TOKEN</html>")).unwrap_err();
    assert_eq!(e.code(), "INVALID_TOKEN_RESPONSE");
    assert!(e.message().contains("not JSON (25 bytes, content-type text/html)"), "{e}");
    assert!(e.message().contains("(https://sts.googleapis.com/v1/token?…)"), "{e}");
    assert_eq!(ep.success_object(&resp("[1]")).unwrap_err().code(), "INVALID_TOKEN_RESPONSE");
    let obj = ep.success_object(&resp(r#"{"a":"","b":1,"c":"MARKER-TOKEN x"}"#)).unwrap();
    for (field, expect) in [("a", "no a"), ("b", "a b that is not a string"), ("z", "no z")] {
      let e = ep.required_str(&obj, field).unwrap_err();
      assert!(e.message().ends_with(expect), "{e}");
    }
    assert_eq!(ep.optional_str(&obj, "c").unwrap(), "** redacted ** x");
    let (json, text) = ep.error_body(&Response { status: 502, content_type: None, body: b"bad MARKER-TOKEN".to_vec() });
    assert!(json.is_none());
    assert_eq!(text, "bad ** redacted **");
  }

  #[test]
  fn both_google_error_shapes_are_read_on_any_endpoint() {
    let secret = Secret::new("MARKER-TOKEN");
    let ep =
      Endpoint { name: "Google STS", url: "https://sts.googleapis.com/v1/token", kind: ErrorKind::StsExchangeFailed, secrets: &[&secret] };
    let read = |body: &str| {
      let (json, text) = ep.error_body(&Response { status: 403, content_type: None, body: body.as_bytes().to_vec() });
      ep.remote_error(json.as_ref(), &text)
    };
    let oauth = read(r#"{"error":"invalid_grant","error_description":"bad MARKER-TOKEN"}"#);
    assert_eq!((oauth.code.as_deref(), oauth.description.as_deref()), (Some("invalid_grant"), Some("bad ** redacted **")));
    assert_eq!(oauth.detail, "invalid_grant: bad ** redacted **");
    let rpc = read(r#"{"error":{"code":403,"message":"Security Token Service API has not been used","status":"PERMISSION_DENIED"}}"#);
    assert_eq!(
      (rpc.code.as_deref(), rpc.description.as_deref()),
      (Some("PERMISSION_DENIED"), Some("Security Token Service API has not been used"))
    );
    assert_eq!(rpc.detail, "PERMISSION_DENIED: Security Token Service API has not been used");
    let other = read(r#"{"message":"MARKER-TOKEN went wrong"}"#);
    assert_eq!((other.code, other.description), (None, None));
    assert_eq!(other.detail, r#"{"message":"** redacted ** went wrong"}"#);
    let long = read(&"x".repeat(5000));
    assert_eq!(long.detail.chars().count(), crate::redact::MAX_BODY_IN_MESSAGE + 1, "quoted bodies are cut");
  }

  #[test]
  fn connection_failures_are_retryable_other_transport_errors_keep_their_kind() {
    let ep = Endpoint { name: "Google STS", url: "https://sts.googleapis.com/v1/token", kind: ErrorKind::StsExchangeFailed, secrets: &[] };
    let e = ep.transport_error(TransportError::Connect("connection reset".into()), 1000);
    assert_eq!((e.code(), e.is_retryable()), ("STS_EXCHANGE_FAILED", true));
    assert!(ep.transport_error(TransportError::Timeout, 1000).is_retryable());
    assert!(!ep.transport_error(TransportError::InvalidRequest("bad header".into()), 1000).is_retryable());
  }
}
