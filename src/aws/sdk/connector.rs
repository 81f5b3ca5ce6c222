//! aws-config's HTTP client: an adapter from smithy's connector onto [`crate::http`] (see
//! [`super`]'s module docs: one HTTP stack, the same policy as every other request of the crate).

use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use crate::http::{Http, TransportError};

/// aws-config's HTTP client: smithy requests sent through [`crate::http::execute`] on the
/// context's [`Http`] (its trust and proxy decision). The connection pool lives in the
/// process-wide reqwest clients, so handing out a fresh connector is free.
#[derive(Debug, Clone)]
pub struct SdkHttp(pub Http);

impl HttpClient for SdkHttp {
  fn http_connector(&self, _settings: &HttpConnectorSettings, _components: &RuntimeComponents) -> SharedHttpConnector {
    // Our connect timeout (2 s) applies; the caller's overall deadline is enforced around the
    // whole provider call by [`super::provide`], so one attempt has no bound of its own below it.
    SharedHttpConnector::new(self.clone())
  }
}

impl HttpConnector for SdkHttp {
  fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
    HttpConnectorFuture::new(send_sdk_request(self.0.clone(), request))
  }
}

/// Headers whose values are credentials: marked sensitive so no layer below prints them.
const SENSITIVE_HEADERS: [&str; 2] = ["authorization", "x-amz-security-token"];

/// The bound of one aws-config attempt: the largest `timeoutMs` (the caller's own, smaller deadline
/// cuts the whole provider call in [`super::provide`]).
const SDK_ATTEMPT_BOUND: std::time::Duration = std::time::Duration::from_secs(300);

async fn send_sdk_request(http: Http, request: HttpRequest) -> std::result::Result<HttpResponse, ConnectorError> {
  let method = reqwest::Method::from_bytes(request.method().as_bytes()).map_err(|e| ConnectorError::user(e.into()))?;
  // AWS STS requests are small form bodies held in memory; a streaming body would be a bug.
  let body = request.body().bytes().ok_or_else(|| ConnectorError::user("a streaming request body cannot be sent".into()))?.to_vec();
  let mut builder = http.request_builder(method, request.uri(), &crate::http::Route::Env).map_err(connector_error)?;
  for (name, value) in request.headers().iter() {
    let sensitive = SENSITIVE_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s));
    let v = crate::http::header_value(name, value, sensitive).map_err(|e| ConnectorError::user(e.to_string().into()))?;
    builder = builder.header(name, v);
  }
  let raw = crate::http::execute(builder.body(body), SDK_ATTEMPT_BOUND).await.map_err(connector_error)?;
  let status = StatusCode::try_from(raw.status).map_err(|e| ConnectorError::other(e.into(), None))?;
  let mut response = HttpResponse::new(status, SdkBody::from(raw.body));
  for (name, value) in raw.headers.iter() {
    if let Ok(value) = value.to_str() {
      response.headers_mut().append(name.as_str().to_owned(), value.to_owned());
    }
  }
  Ok(response)
}

fn connector_error(e: TransportError) -> ConnectorError {
  let text = e.to_string();
  match e {
    TransportError::Timeout => ConnectorError::timeout(text.into()),
    TransportError::Connect(_) => ConnectorError::io(text.into()),
    TransportError::BodyTooLarge | TransportError::InvalidRequest(_) | TransportError::NoTrust(_) | TransportError::ProxyAuth => {
      ConnectorError::other(text.into(), None)
    }
  }
}
