//! One small HTTP layer for every endpoint the crate talks to.
//!
//! * [`Http`] is the client a [`crate::context::Context`] carries: it is built from the environment
//!   snapshot of the thread that constructed the supplier or fetcher, so its proxy decision
//!   ([`proxy`]) is that thread's, and tests inject their own.
//! * **Each request carries its [`Route`]**, set by the code that chose and validated its
//!   destination: [`Route::Env`] (Google and AWS STS endpoints) follows the environment's proxy
//!   rules; [`Route::Direct`] (container, EKS Pod Identity, IMDS and task-metadata endpoints) never
//!   goes through a proxy, whatever the URL's form, and, when the link resolved and checked the
//!   host's addresses, connects only to those addresses (no second lookup, by us or a proxy).
//! * Underneath, process-wide `reqwest` clients, one per (plain or TLS, proxy): rustls on *ring*
//!   (no OpenSSL, no aws-lc C build), **no redirects** (a redirect must never carry an
//!   `Authorization` header elsewhere), connect timeout [`CONNECT_TIMEOUT`]. They are built
//!   fallibly on first use and kept only once built: a client that cannot be built (no trusted CA
//!   certificate at all, an unusable proxy URL) is an error for that call, and the next call
//!   tries again. Nothing here panics or poisons a static.
//! * Trust ([`trust`]): Node's root set (handed over by the package's JavaScript: `tls`'s roots
//!   plus `NODE_EXTRA_CA_CERTS`) together with the system store when it has certificates. The
//!   trust store is loaded only when an https URL is first used, so plain-HTTP container and IMDS
//!   fetches never read it.
//! * Every request carries a [`Deadline`], the caller's `timeoutMs`: one attempt may use all that is
//!   left of it (a slow but answering endpoint is waited for, as google-auth-library waits), and a
//!   retry comes only after a failure, within what is left.
//! * Response bodies are capped at [`MAX_BODY_BYTES`] (64 KiB). A larger 2xx body is an error; a
//!   larger error body is cut at the cap and keeps its status, so that retries and error mapping
//!   work as for a small one.
//! * [`Http::send_with_retry`] retries only transient failures (connect errors, timeouts, 408, 429,
//!   5xx), at most [`MAX_ATTEMPTS`] times, with equal-jitter exponential backoff from [`BACKOFF_BASE`].

pub mod proxy;
pub mod trust;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::env::EnvSnapshot;
use crate::error::is_transient_status;

pub use proxy::ProxyConfig;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default bound of one call (`timeoutMs`: 10 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_ATTEMPTS: u32 = 3;
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Idle pooled connections are closed after this long (a refresh comes every ~55 minutes; the pool
/// only helps the few requests of one fetch).
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many idle connections are kept per host: requests to one endpoint come one fetch
/// at a time, so more would only hold file descriptors.
pub const POOL_MAX_IDLE_PER_HOST: usize = 1;

fn builder() -> reqwest::ClientBuilder {
  reqwest::Client::builder()
    .connect_timeout(CONNECT_TIMEOUT)
    .redirect(reqwest::redirect::Policy::none())
    .pool_idle_timeout(POOL_IDLE_TIMEOUT)
    .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
    .no_proxy()
    .user_agent(concat!("aws-wif-supplier/", env!("CARGO_PKG_VERSION")))
}

/// How a request reaches its destination, decided by the code that validated the destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Route {
  /// The environment's proxy rules ([`proxy`]): Google and AWS STS endpoints.
  #[default]
  Env,
  /// Never through a proxy. `pin`: the addresses the host name was resolved to and checked against,
  /// the only ones connected to.
  Direct { pin: Option<Vec<std::net::SocketAddr>> },
}

impl Route {
  /// Direct, with no pinned addresses (an IP literal, or a destination that needs no check).
  pub const DIRECT: Route = Route::Direct { pin: None };
}

/// What distinguishes one process-wide client from another.
#[derive(Clone, PartialEq, Eq)]
struct ClientKey {
  tls: bool,
  /// The proxy URL (may hold `user:password@`: never printed).
  proxy: Option<String>,
  /// A host name and the only addresses it may connect to ([`Route::Direct`]).
  pin: Option<(String, Vec<std::net::SocketAddr>)>,
  /// [`trust::generation`] when the client was built: new roots from JavaScript mean a new client.
  trust_generation: u64,
}

/// Built clients. A failed build stores nothing, so the next call tries again.
static CLIENTS: Mutex<Vec<(ClientKey, reqwest::Client)>> = Mutex::new(Vec::new());
/// At most this many clients are kept (plain and TLS, times the distinct proxies in use).
const MAX_CLIENTS: usize = 16;

fn build_client(key: &ClientKey) -> Result<reqwest::Client, TransportError> {
  let mut b = builder();
  if key.tls {
    b = b.https_only(true).tls_backend_preconfigured(trust::client_config()?);
  } else {
    // No trust store is loaded for plain http (container endpoints, IMDS, loopback).
    trust::install_crypto_provider();
    b = b.tls_certs_only(std::iter::empty());
  }
  if let Some((host, addrs)) = &key.pin {
    b = b.resolve_to_addrs(host, addrs);
  }
  if let Some(p) = &key.proxy {
    let scheme = reqwest::Url::parse(p).map(|u| u.scheme().to_string()).unwrap_or_default();
    if scheme != "http" && scheme != "https" {
      return Err(TransportError::InvalidRequest("the proxy URL (HTTPS_PROXY / HTTP_PROXY) must be http:// or https://".into()));
    }
    let proxy = reqwest::Proxy::all(p.as_str())
      .map_err(|_| TransportError::InvalidRequest("the proxy URL (HTTPS_PROXY / HTTP_PROXY) is not usable".into()))?;
    b = b.proxy(proxy);
  }
  b.build().map_err(|e| TransportError::InvalidRequest(format!("the HTTP client could not be built: {}", describe(&e.without_url()))))
}

fn client(key: ClientKey) -> Result<reqwest::Client, TransportError> {
  let mut clients = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
  if let Some((_, c)) = clients.iter().find(|(k, _)| *k == key) {
    return Ok(c.clone());
  }
  let built = build_client(&key)?;
  clients.retain(|(k, _)| k.trust_generation == key.trust_generation || !k.tls);
  if clients.len() >= MAX_CLIENTS {
    clients.remove(0);
  }
  clients.push((key, built.clone()));
  Ok(built)
}

/// The HTTP client of one [`crate::context::Context`]: the proxy decision of its environment, on the
/// process-wide connection pools.
#[derive(Clone, Default)]
pub struct Http {
  proxy: Arc<ProxyConfig>,
}

impl std::fmt::Debug for Http {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Http").field("proxy", &self.proxy).finish()
  }
}

impl Http {
  /// The client for this environment (its `HTTPS_PROXY`, `NO_PROXY`… variables).
  pub fn from_env(env: &EnvSnapshot) -> Self {
    Http { proxy: Arc::new(ProxyConfig::from_env(env)) }
  }

  pub fn with_proxy(proxy: ProxyConfig) -> Self {
    Http { proxy: Arc::new(proxy) }
  }

  pub fn proxy(&self) -> &ProxyConfig {
    &self.proxy
  }

  /// A request builder on the right client for `url` and `route` (TLS or plain, through the proxy
  /// or not, pinned or not).
  pub(crate) fn request_builder(
    &self,
    method: reqwest::Method,
    url: &str,
    route: &Route,
  ) -> Result<reqwest::RequestBuilder, TransportError> {
    let url = reqwest::Url::parse(url).map_err(|e| TransportError::InvalidRequest(format!("bad URL: {e}")))?;
    let (proxy, pin) = match route {
      Route::Env => (self.proxy.proxy_for(&url).map(str::to_string), None),
      Route::Direct { pin } => (None, pin.clone().and_then(|addrs| Some((url.host_str()?.to_string(), addrs)))),
    };
    let key = ClientKey {
      tls: url.scheme() == "https",
      proxy,
      pin,
      trust_generation: if url.scheme() == "https" { trust::generation() } else { 0 },
    };
    Ok(client(key)?.request(method, url))
  }

  /// One attempt.
  pub async fn send(&self, req: &Request, deadline: Deadline) -> Result<Response, TransportError> {
    let timeout = deadline.attempt_timeout();
    if timeout.is_zero() {
      return Err(TransportError::Timeout);
    }
    let method = match req.method {
      Method::Get => reqwest::Method::GET,
      Method::Put => reqwest::Method::PUT,
      Method::Post => reqwest::Method::POST,
    };
    let mut builder = self.request_builder(method, &req.url, &req.route)?;
    for (name, value, sensitive) in &req.headers {
      builder = builder.header(*name, header_value(name, value, *sensitive)?);
    }
    if let Some(body) = &req.body {
      builder = builder.body(body.clone());
    }
    let raw = execute(builder, timeout).await?;
    let content_type = raw.headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    Ok(Response { status: raw.status, content_type, body: raw.body })
  }

  /// Send with bounded retries of transient failures. Returns the last outcome, whatever it is.
  pub async fn send_with_retry(&self, req: &Request, deadline: Deadline) -> Result<Response, TransportError> {
    let mut attempt = 0;
    loop {
      let outcome = self.send(req, deadline).await;
      attempt += 1;
      if attempt >= MAX_ATTEMPTS || !is_transient(&outcome) {
        return outcome;
      }
      let pause = backoff(attempt - 1);
      if pause >= deadline.remaining() {
        return outcome;
      }
      tokio::time::sleep(pause).await;
    }
  }
}

/// The overall time bound of one logical operation (all attempts together).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
  pub fn after(d: Duration) -> Self {
    Deadline(Instant::now() + d)
  }
  pub fn remaining(&self) -> Duration {
    self.0.saturating_duration_since(Instant::now())
  }
  pub fn expired(&self) -> bool {
    self.remaining().is_zero()
  }
  /// The bound for one attempt: all that is left.
  pub fn attempt_timeout(&self) -> Duration {
    self.remaining()
  }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
  Get,
  Put,
  Post,
}

/// A request. Header values marked sensitive are never logged.
#[derive(Clone)]
pub struct Request {
  pub method: Method,
  pub url: String,
  pub headers: Vec<(&'static str, String, bool)>,
  pub body: Option<Vec<u8>>,
  pub route: Route,
}

impl Request {
  pub fn new(method: Method, url: impl Into<String>) -> Self {
    Request { method, url: url.into(), headers: Vec::new(), body: None, route: Route::Env }
  }
  /// Send it by `route` (see [`Route`]).
  pub fn route(mut self, route: Route) -> Self {
    self.route = route;
    self
  }
  pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
    self.headers.push((name, value.into(), false));
    self
  }
  pub fn sensitive_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
    self.headers.push((name, value.into(), true));
    self
  }
  pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
    self.body = Some(body.into());
    self
  }
}

#[derive(Debug, Clone)]
pub struct Response {
  pub status: u16,
  pub content_type: Option<String>,
  pub body: Vec<u8>,
}

impl Response {
  pub fn is_success(&self) -> bool {
    (200..300).contains(&self.status)
  }
  pub fn text(&self) -> String {
    String::from_utf8_lossy(&self.body).into_owned()
  }
}

/// Why no response came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
  /// The attempt or the overall deadline ran out.
  Timeout,
  /// Connection refused, reset, DNS failure, TLS failure… (message has no secrets: no headers).
  Connect(String),
  /// The body exceeded [`MAX_BODY_BYTES`].
  BodyTooLarge,
  /// The URL or a header value could not be used.
  InvalidRequest(String),
  /// No HTTPS client could be built: no trusted CA certificate at all (see [`trust`]).
  NoTrust(String),
  /// The proxy refused to open the tunnel with the credentials it was given (HTTP 407): a
  /// configuration error, not worth a retry.
  ProxyAuth,
}

impl std::fmt::Display for TransportError {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    match self {
      TransportError::Timeout => f.write_str("timed out"),
      TransportError::Connect(m) => write!(f, "connection failed ({m})"),
      TransportError::BodyTooLarge => write!(f, "response body larger than {MAX_BODY_BYTES} bytes"),
      TransportError::InvalidRequest(m) => write!(f, "invalid request ({m})"),
      TransportError::NoTrust(m) => write!(f, "HTTPS unavailable: {m}"),
      TransportError::ProxyAuth => f.write_str("the proxy refused the request (HTTP 407 Proxy Authentication Required)"),
    }
  }
}

fn describe(e: &reqwest::Error) -> String {
  // Called on errors stripped of their URL (`without_url`). Walk the source chain for the useful
  // part ("Connection refused", "dns error"…).
  let mut msg = String::new();
  let mut source: Option<&dyn std::error::Error> = Some(e);
  while let Some(s) = source {
    let part = s.to_string();
    if !msg.contains(&part) {
      if !msg.is_empty() {
        msg.push_str(": ");
      }
      msg.push_str(&part);
    }
    source = s.source();
  }
  msg
}

/// A header value; `sensitive` keeps it out of every layer's debug output.
pub(crate) fn header_value(name: &str, value: &str, sensitive: bool) -> Result<reqwest::header::HeaderValue, TransportError> {
  let mut v = reqwest::header::HeaderValue::from_str(value)
    .map_err(|_| TransportError::InvalidRequest(format!("header {name} has characters not allowed in HTTP")))?;
  v.set_sensitive(sensitive);
  Ok(v)
}

/// What came back from one attempt, before it is turned into a [`Response`].
pub(crate) struct RawResponse {
  pub status: u16,
  pub headers: reqwest::header::HeaderMap,
  pub body: Vec<u8>,
}

/// Send a built request and read its body under [`MAX_BODY_BYTES`], all within `timeout` (non-zero:
/// [`send`] checks its deadline first). The one place a request goes out: [`send`] and aws-config's
/// client ([`crate::aws::sdk`]) both use it.
pub(crate) async fn execute(builder: reqwest::RequestBuilder, timeout: Duration) -> Result<RawResponse, TransportError> {
  let run = async {
    let mut resp = builder.send().await.map_err(map_reqwest)?;
    let status = resp.status().as_u16();
    let success = (200..300).contains(&status);
    if success && resp.content_length().is_some_and(|n| n as usize > MAX_BODY_BYTES) {
      return Err(TransportError::BodyTooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(map_reqwest)? {
      if body.len() + chunk.len() > MAX_BODY_BYTES {
        if success {
          return Err(TransportError::BodyTooLarge);
        }
        // An error answer keeps its status: its first bytes are enough for the message.
        body.extend_from_slice(chunk.get(..MAX_BODY_BYTES - body.len()).unwrap_or_default());
        break;
      }
      body.extend_from_slice(&chunk);
    }
    Ok(RawResponse { status, headers: std::mem::take(resp.headers_mut()), body })
  };
  match tokio::time::timeout(timeout, run).await {
    Ok(r) => r,
    Err(_) => Err(TransportError::Timeout),
  }
}

fn map_reqwest(e: reqwest::Error) -> TransportError {
  // The URL may carry secrets in its query (a FULL_URI with a signature): never let it into text.
  let e = &e.without_url();
  let text = describe(e);
  if text.contains("proxy authorization required") {
    TransportError::ProxyAuth
  } else if e.is_timeout() {
    TransportError::Timeout
  } else if e.is_builder() {
    TransportError::InvalidRequest(text)
  } else {
    TransportError::Connect(text)
  }
}

/// Whether an outcome is worth another attempt.
pub fn is_transient(outcome: &Result<Response, TransportError>) -> bool {
  match outcome {
    Ok(r) => is_transient_status(r.status),
    Err(TransportError::Timeout) | Err(TransportError::Connect(_)) => true,
    Err(_) => false,
  }
}

/// Equal-jitter exponential backoff for attempt `n` (0-based): uniform in [0.5, 1.0] × base × 2^n.
pub fn backoff(n: u32) -> Duration {
  let exp = BACKOFF_BASE.saturating_mul(1u32 << n.min(10)).min(BACKOFF_MAX);
  let frac = 0.5 + jitter_fraction() * 0.5;
  exp.mul_f64(frac)
}

/// A uniform fraction in [0, 1) from the standard library's per-process random keys.
pub fn jitter_fraction() -> f64 {
  use std::hash::{BuildHasher, Hasher};
  let mut h = std::collections::hash_map::RandomState::new().build_hasher();
  h.write_u128(Instant::now().elapsed().as_nanos());
  (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn backoff_is_bounded_and_jittered() {
    for n in 0..20 {
      let b = backoff(n);
      assert!(b <= BACKOFF_MAX, "{n}: {b:?}");
      assert!(b >= BACKOFF_BASE / 2, "{n}: {b:?}");
    }
    let f: Vec<f64> = (0..50).map(|_| jitter_fraction()).collect();
    assert!(f.iter().all(|x| (0.0..1.0).contains(x)));
    assert!(f.iter().any(|x| (x - f[0]).abs() > 1e-9), "jitter must vary");
  }

  use crate::google::test_server::{reply, Canned, TestServer};

  #[tokio::test]
  async fn a_large_error_body_keeps_its_status_and_its_retry() {
    // 503 with a 70,000-byte body, then 200: retried and recovered (issue 18, defect 13).
    let server = TestServer::start(|_, n| if n == 0 { reply(503, &"x".repeat(70_000)) } else { reply(200, "{}") }).await;
    let req = Request::new(Method::Get, server.url("/big"));
    let r = Http::default().send_with_retry(&req, Deadline::after(Duration::from_secs(5))).await.unwrap();
    assert_eq!((r.status, server.count("/big")), (200, 2));
    // Alone, the error answer is cut at the cap and keeps its status.
    let server = TestServer::start(|_, _| reply(404, &"y".repeat(70_000))).await;
    let r = Http::default().send(&Request::new(Method::Get, server.url("/big")), Deadline::after(Duration::from_secs(5))).await.unwrap();
    assert_eq!((r.status, r.body.len()), (404, MAX_BODY_BYTES));
    // A 2xx body over the cap is still refused.
    let server = TestServer::start(|_, _| reply(200, &"z".repeat(70_000))).await;
    let e =
      Http::default().send(&Request::new(Method::Get, server.url("/big")), Deadline::after(Duration::from_secs(5))).await.unwrap_err();
    assert_eq!(e, TransportError::BodyTooLarge);
  }

  #[tokio::test]
  async fn one_attempt_may_use_the_whole_deadline() {
    // An answer after 6 s with a 10 s bound: one request, answered (issue 18, defect 11: attempts
    // were cut at 5 s, and retried).
    tokio::time::pause();
    let server = TestServer::start(|_, _| Canned { delay: Duration::from_secs(6), ..reply(200, "{}") }).await;
    let req = Request::new(Method::Get, server.url("/slow"));
    let r = Http::default().send_with_retry(&req, Deadline::after(Duration::from_secs(10))).await.unwrap();
    assert_eq!((r.status, server.count("/slow")), (200, 1));
  }

  #[test]
  fn transient_classification() {
    let ok = |s| Ok(Response { status: s, content_type: None, body: vec![] });
    assert!(is_transient(&ok(500)));
    assert!(is_transient(&ok(429)));
    assert!(!is_transient(&ok(404)));
    assert!(!is_transient(&ok(200)));
    assert!(is_transient(&Err(TransportError::Timeout)));
    assert!(!is_transient(&Err(TransportError::BodyTooLarge)));
    assert!(!is_transient(&Err(TransportError::ProxyAuth)), "a 407 from the proxy is not retried");
  }
}
