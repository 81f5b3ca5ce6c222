//! Container credentials endpoint: ECS, Fargate (and ECS Express Mode, which runs on it), App
//! Runner (task role) and EKS Pod Identity.
//!
//! Spec (AWS SDKs "Container credential provider"; smithy-rs aws-config `ecs.rs`):
//! * `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` wins: `GET http://169.254.170.2` + relative URI.
//! * Else `AWS_CONTAINER_CREDENTIALS_FULL_URI`. `https` may name any host. `http` may only reach
//!   loopback, `169.254.170.2` (ECS), `169.254.170.23` or `[fd00:ec2::23]` (EKS Pod Identity). A
//!   host name is resolved and **every** address must be allowed. Anything else is refused
//!   (`CONFIG_INVALID`) before a request, and so before the authorization token is sent.
//! * `Authorization` header: `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` wins over
//!   `AWS_CONTAINER_AUTHORIZATION_TOKEN`. The file is **re-read on every fetch** (EKS rotates it).
//!   Trailing whitespace (a final newline written by `echo` or a Kubernetes secret) is trimmed; any
//!   other control character (CR, LF, NUL…) refuses the token (`CONFIG_INVALID`).
//! * `GET` with `Accept: application/json`. Connect timeout 2 s; an attempt may use what is left of
//!   the caller's deadline; up to 3 attempts on connect errors, timeouts, 408, 429 and 5xx, with
//!   jittered backoff (see [`crate::http`]). Body capped at 64 KiB.
//! * Body: see [`super::credentials`]. A non-2xx answer is `CREDENTIALS_ENDPOINT_ERROR` with the
//!   status and the endpoint's `Code`/`Message`; unusable 2xx bodies are `INVALID_CREDENTIALS_RESPONSE`.
//! * Neither variable set: the link is not configured and the chain moves on.
//! * **Never through a proxy**, whatever the URL's form (as the AWS SDK for JavaScript): every
//!   request goes [`Route::Direct`], and for an http host name it connects only to the addresses
//!   that were resolved and checked above, so neither a proxy nor a second DNS answer decides where
//!   the authorization token goes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Deadline, Method, Request, Route};
use crate::redact::Secret;

use super::credentials::{ensure_not_expired, parse_credentials_json, status_error, transport_error, AwsCredentials};
use super::link::{evidence, Description, Link, LinkContext, LoadFuture, Loaded, Plan, Role};

pub const ENV_RELATIVE_URI: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
pub const ENV_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
pub const ENV_AUTH_TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
pub const ENV_AUTH_TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
pub const ECS_BASE: &str = "http://169.254.170.2";
pub const ECS_IPV4: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);
pub const EKS_IPV4: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 23);
pub const EKS_IPV6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x23);

/// Is this address one an `http` FULL_URI may reach?
pub fn is_allowed_ip(ip: IpAddr) -> bool {
  ip.is_loopback()
    || ip == IpAddr::V4(ECS_IPV4)
    || ip == IpAddr::V4(EKS_IPV4)
    || ip == IpAddr::V6(EKS_IPV6)
    || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| is_allowed_ip(IpAddr::V4(v4))))
}

/// Where the endpoint is, as the environment says. `Debug` shows a FULL_URI as
/// [`crate::redact::url`] does.
#[derive(Clone, PartialEq, Eq)]
pub enum Endpoint {
  Relative(String),
  Full(String),
}

impl std::fmt::Debug for Endpoint {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let kind = if matches!(self, Endpoint::Relative(_)) { "Relative" } else { "Full" };
    f.debug_tuple(kind).field(&crate::redact::url(&self.url())).finish()
  }
}

impl Endpoint {
  pub fn from_env(ctx: &Context) -> Option<Endpoint> {
    if let Some(rel) = ctx.env.get(ENV_RELATIVE_URI) {
      return Some(Endpoint::Relative(rel.trim().to_string()));
    }
    ctx.env.get(ENV_FULL_URI).map(|full| Endpoint::Full(full.trim().to_string()))
  }

  pub fn url(&self) -> String {
    match self {
      Endpoint::Relative(rel) if rel.starts_with('/') => format!("{ECS_BASE}{rel}"),
      Endpoint::Relative(rel) => format!("{ECS_BASE}/{rel}"),
      Endpoint::Full(full) => full.clone(),
    }
  }
}

/// Validate a FULL_URI as the AWS SDKs do, and decide its route: direct, pinned to the checked
/// addresses when the host is a name. `resolve` maps a host name to its addresses; it is bounded
/// by `deadline`: a DNS lookup that does not finish in time is `TIMEOUT`.
pub async fn validate_full_uri<F, Fut>(uri: &str, resolve: F, deadline: Deadline) -> Result<Route>
where
  F: FnOnce(String) -> Fut,
  Fut: std::future::Future<Output = std::io::Result<Vec<IpAddr>>>,
{
  let bad = |why: String| {
    Error::new(ErrorKind::ConfigInvalid, format!("{ENV_FULL_URI} is not allowed: {why}"))
      .with_hint("use https, or http to loopback, 169.254.170.2, 169.254.170.23 or [fd00:ec2::23]")
  };
  let url = reqwest::Url::parse(uri).map_err(|e| bad(format!("not a valid URL ({e})")))?;
  if !url.username().is_empty() || url.password().is_some() {
    return Err(bad("it must not carry user information".into()));
  }
  match url.scheme() {
    "https" => return Ok(Route::DIRECT),
    "http" => {}
    other => return Err(bad(format!("scheme {other} is not http or https"))),
  }
  let host = match url.host_str() {
    Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']').to_string(),
    _ => return Err(bad("it has no host".into())),
  };
  if let Ok(ip) = host.parse::<IpAddr>() {
    return check_ips(&[ip], &crate::redact::url(uri)).map(|()| Route::DIRECT).map_err(bad);
  }
  let bound = deadline.remaining();
  let ips = match tokio::time::timeout(bound, resolve(host.clone())).await {
    Err(_) => {
      return Err(Error::new(
        ErrorKind::Timeout,
        format!("{ENV_FULL_URI}: the DNS lookup of {host} did not finish in time (bound {} ms)", bound.as_millis()),
      ))
    }
    Ok(r) => r.map_err(|e| bad(format!("host {host} could not be resolved ({e})")))?,
  };
  if ips.is_empty() {
    return Err(bad(format!("host {host} resolved to no address")));
  }
  check_ips(&ips, &host).map_err(bad)?;
  let port = url.port_or_known_default().unwrap_or(80);
  Ok(Route::Direct { pin: Some(ips.into_iter().map(|ip| std::net::SocketAddr::new(ip, port)).collect()) })
}

fn check_ips(ips: &[IpAddr], what: &str) -> std::result::Result<(), String> {
  match ips.iter().find(|ip| !is_allowed_ip(**ip)) {
    None => Ok(()),
    Some(ip) => Err(format!("{what} reaches {ip}, which is not loopback or a container credentials address")),
  }
}

async fn resolve_with_tokio(host: String) -> std::io::Result<Vec<IpAddr>> {
  Ok(tokio::net::lookup_host((host.as_str(), 80)).await?.map(|a| a.ip()).collect())
}

/// The `Authorization` value, read fresh on every fetch (a token file within `deadline`).
pub async fn auth_token(ctx: &Context, deadline: Deadline) -> Result<Option<Secret>> {
  let raw = if let Some(path) = ctx.env.get(ENV_AUTH_TOKEN_FILE) {
    super::credentials::read_token_file(
      ctx,
      ENV_AUTH_TOKEN_FILE,
      path,
      Some("on EKS, check that the Pod Identity token volume is mounted"),
      deadline,
    )
    .await?
  } else if let Some(token) = ctx.env.get(ENV_AUTH_TOKEN) {
    token.to_string()
  } else {
    return Ok(None);
  };
  let token = raw.trim_end_matches([' ', '\t', '\r', '\n']);
  if token.chars().any(|c| c.is_control()) {
    return Err(Error::new(
      ErrorKind::ConfigInvalid,
      "the container authorization token contains control characters (CR, LF or similar) and cannot be sent as a header",
    ));
  }
  if token.is_empty() {
    return Err(Error::new(ErrorKind::ConfigInvalid, "the container authorization token is empty"));
  }
  Ok(Some(Secret::new(token)))
}

pub const LINK: &str = "container";

/// The link: the endpoint the variables name.
pub struct Container;

impl Link for Container {
  type Todo = Endpoint;
  const CREDENTIAL_SOURCE: Option<&'static str> = Some("EcsContainer");

  /// Configured when either variable is set; HTTPS only for an `https` FULL_URI.
  fn plan(&self, lc: &LinkContext<'_>, role: Role) -> Plan<Self::Todo> {
    let ctx = &lc.ctx;
    let https = ctx.env.get(ENV_FULL_URI).is_some_and(|u| u.trim().to_ascii_lowercase().starts_with("https:"));
    let plan = match (Endpoint::from_env(ctx), role) {
      (Some(endpoint), _) => Plan::configured(describe(ctx), endpoint),
      (None, Role::Chain) => Plan::skipped(describe(ctx)),
      (None, Role::CredentialSource) => Plan::skipped(Description::skipped(
        LINK,
        "neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set",
      )),
    };
    plan.https(https)
  }

  fn load<'a>(&'a self, endpoint: &'a Endpoint, lc: &'a LinkContext<'a>, deadline: Deadline) -> LoadFuture<'a> {
    Box::pin(async move { load(&lc.ctx, endpoint, deadline).await.map(Loaded::Found) })
  }
}

/// Which runtime the container variables point at (App Runner, ECS, EKS Pod Identity).
pub fn describe(ctx: &Context) -> Description {
  const ECS_META: [&str; 2] = ["ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI"];
  match Endpoint::from_env(ctx) {
    None => Description::skipped(LINK, "container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set"),
    Some(Endpoint::Relative(_)) => {
      let ecs = ECS_META.iter().any(|v| ctx.env.get(v).is_some());
      let runtime = match (ecs, ctx.env.get("AWS_EXECUTION_ENV").map(str::trim)) {
        (false, _) => "ECS or App Runner (no task metadata variables)",
        (true, Some("AWS_ECS_FARGATE")) => "ECS on Fargate (also ECS Express Mode)",
        (true, Some("AWS_ECS_EC2")) => "ECS on EC2",
        (true, _) => "ECS / Fargate",
      };
      Description::configured(
        LINK,
        runtime,
        evidence(ctx, &[ENV_RELATIVE_URI, ECS_META[0], ECS_META[1], "AWS_EXECUTION_ENV"]),
        format!("container: {ECS_BASE} + AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
      )
    }
    Some(Endpoint::Full(full)) => {
      let host =
        reqwest::Url::parse(&full).ok().and_then(|u| u.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string()));
      let eks =
        host.as_deref().and_then(|h| h.parse::<IpAddr>().ok()).is_some_and(|ip| ip == IpAddr::V4(EKS_IPV4) || ip == IpAddr::V6(EKS_IPV6));
      Description::configured(
        LINK,
        if eks { "EKS Pod Identity" } else { "container credentials endpoint (FULL_URI)" },
        evidence(ctx, &[ENV_FULL_URI, ENV_AUTH_TOKEN_FILE, ENV_AUTH_TOKEN]),
        format!("container: {}", crate::redact::url(&full)),
      )
    }
  }
}

/// Fetch credentials from the container endpoint.
async fn load(ctx: &Context, endpoint: &Endpoint, deadline: Deadline) -> Result<AwsCredentials> {
  let url = endpoint.url();
  let route = match endpoint {
    Endpoint::Full(full) => validate_full_uri(full, resolve_with_tokio, deadline).await?,
    Endpoint::Relative(_) => Route::DIRECT,
  };
  let origin = format!("container credentials endpoint {}", crate::redact::url(&url));
  let token = auth_token(ctx, deadline).await?;
  let mut req = Request::new(Method::Get, url).header("accept", "application/json").route(route);
  if let Some(t) = &token {
    req = req.sensitive_header("authorization", t.expose());
  }
  let budget = deadline.remaining().as_millis();
  let resp = ctx.http.send_with_retry(&req, deadline).await.map_err(|e| transport_error(&origin, e, budget))?;
  let secrets: Vec<&Secret> = token.iter().collect();
  if !resp.is_success() {
    return Err(status_error(&origin, &resp, &secrets));
  }
  let creds = parse_credentials_json(&resp.body, &origin, "container", &secrets)?;
  ensure_not_expired(creds, ctx.clock.now(), &origin)
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::{EnvSnapshot, ManualClock};
  use std::collections::HashMap;
  use std::path::{Path, PathBuf};
  use std::sync::Arc;
  use std::time::Duration;

  struct MemFs(HashMap<PathBuf, Vec<u8>>);
  impl crate::env::Fs for MemFs {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
      self.0.get(path).cloned().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }
  }

  fn ctx(vars: &[(&str, &str)], files: &[(&str, &[u8])]) -> Context {
    Context::new(
      EnvSnapshot::from_pairs(vars.iter().copied()),
      Arc::new(MemFs(files.iter().map(|(p, b)| (PathBuf::from(p), b.to_vec())).collect())),
      Arc::new(ManualClock::at_epoch_secs(1_700_000_000)),
    )
  }

  #[test]
  fn relative_uri_wins_over_full_uri() {
    let c = ctx(&[(ENV_RELATIVE_URI, "/v2/credentials/abc"), (ENV_FULL_URI, "http://127.0.0.1/x")], &[]);
    assert_eq!(Endpoint::from_env(&c).unwrap().url(), "http://169.254.170.2/v2/credentials/abc");
    let c = ctx(&[(ENV_FULL_URI, "http://169.254.170.23/v1/credentials")], &[]);
    assert_eq!(Endpoint::from_env(&c).unwrap().url(), "http://169.254.170.23/v1/credentials");
    assert!(Endpoint::from_env(&ctx(&[], &[])).is_none());
  }

  #[tokio::test]
  async fn token_file_wins_is_trimmed_and_control_chars_refused() {
    let d = || Deadline::after(Duration::from_secs(2));
    let c = ctx(&[(ENV_AUTH_TOKEN_FILE, "/t"), (ENV_AUTH_TOKEN, "from-env")], &[("/t", b"from-file\n")]);
    assert_eq!(auth_token(&c, d()).await.unwrap().unwrap().expose(), "from-file");
    let c = ctx(&[(ENV_AUTH_TOKEN, "from-env")], &[]);
    assert_eq!(auth_token(&c, d()).await.unwrap().unwrap().expose(), "from-env");
    let c = ctx(&[(ENV_AUTH_TOKEN_FILE, "/t")], &[("/t", b"MARKER\r\nX-Injected: 1")]);
    let e = auth_token(&c, d()).await.unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID");
    assert!(!e.to_string().contains("MARKER"));
    let c = ctx(&[(ENV_AUTH_TOKEN_FILE, "/missing")], &[]);
    assert_eq!(auth_token(&c, d()).await.unwrap_err().code(), "CONFIG_INVALID");
    assert!(auth_token(&ctx(&[], &[]), d()).await.unwrap().is_none());
  }

  async fn no_dns(_: String) -> std::io::Result<Vec<IpAddr>> {
    panic!("must not resolve")
  }

  #[tokio::test]
  async fn full_uri_host_rules() {
    for ok in [
      "https://example.com/creds",
      "http://127.0.0.1:8080/x",
      "http://127.9.9.9/x",
      "http://[::1]/x",
      "http://169.254.170.2/x",
      "http://169.254.170.23/v1/credentials",
      "http://[fd00:ec2::23]/v1/credentials",
    ] {
      assert!(validate_full_uri(ok, no_dns, Deadline::after(Duration::from_secs(2))).await.is_ok(), "{ok}");
    }
    for bad in [
      "http://10.0.0.5/x",
      "http://169.254.169.254/x",
      "http://8.8.8.8/x",
      "ftp://127.0.0.1/x",
      "http://user:pw@127.0.0.1/x",
      "not a url",
      "http://[fd00:ec2::254]/x",
    ] {
      let e = validate_full_uri(bad, no_dns, Deadline::after(Duration::from_secs(2))).await.unwrap_err();
      assert_eq!(e.code(), "CONFIG_INVALID", "{bad}");
    }
  }

  #[tokio::test]
  async fn host_names_must_resolve_only_to_allowed_addresses() {
    let loopback = |_h: String| async { Ok(vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()]) };
    let route = validate_full_uri("http://localhost:8080/x", loopback, Deadline::after(Duration::from_secs(2))).await.unwrap();
    assert_eq!(
      route,
      Route::Direct { pin: Some(vec!["127.0.0.1:8080".parse().unwrap(), "[::1]:8080".parse().unwrap()]) },
      "pinned to what was checked"
    );
    let literal = validate_full_uri("http://127.0.0.1:9/x", no_dns, Deadline::after(Duration::from_secs(2))).await.unwrap();
    assert_eq!(literal, Route::DIRECT);
    assert_eq!(validate_full_uri("https://creds.example/x", no_dns, Deadline::after(Duration::from_secs(2))).await.unwrap(), Route::DIRECT);
    let mixed = |_h: String| async { Ok(vec!["127.0.0.1".parse().unwrap(), "10.1.2.3".parse().unwrap()]) };
    let e = validate_full_uri("http://evil.example/x", mixed, Deadline::after(Duration::from_secs(2))).await.unwrap_err();
    assert!(e.to_string().contains("10.1.2.3"), "{e}");
    let none = |_h: String| async { Ok(vec![]) };
    assert!(validate_full_uri("http://nothing.example/x", none, Deadline::after(Duration::from_secs(2))).await.is_err());
    // A lookup that never finishes is cut at the deadline (issue 12, defect 2).
    let hang = |_h: String| std::future::pending::<std::io::Result<Vec<IpAddr>>>();
    let started = std::time::Instant::now();
    let e = validate_full_uri("http://hang.example/x", hang, Deadline::after(Duration::from_millis(200))).await.unwrap_err();
    assert_eq!(e.code(), "TIMEOUT", "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
  }

  /// Issue 18, defect 7: doctor and describeAwsChain() show a FULL_URI without its user information
  /// or query, even one that loading would refuse.
  #[test]
  fn described_full_uri_hides_user_information_and_query() {
    let c = ctx(&[(ENV_FULL_URI, "https://svc:MARKER-PASSWORD@creds.example:8443/v1/creds?sig=MARKER-SIG")], &[]);
    let d = describe(&c);
    assert_eq!(d.detail, "container: https://creds.example:8443/v1/creds?… (credentials hidden)");
    assert!(!format!("{d:?}").contains("MARKER"), "{d:?}");
    let endpoint = format!("{:?}", Endpoint::from_env(&c).unwrap());
    assert_eq!(endpoint, r#"Full("https://creds.example:8443/v1/creds?… (credentials hidden)")"#);
  }
}
