//! The fetcher's configuration: from options, or from the `external_account` credential
//! configuration that `gcloud iam workload-identity-pools create-cred-config --aws` writes
//! (AIP-4117; google-auth-library `AwsClient` / `BaseExternalAccountClient` options):
//!
//! ```json
//! {"type": "external_account", "audience": "//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/V",
//!  "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request", "token_url": "https://sts.googleapis.com/v1/token",
//!  "credential_source": {"environment_id": "aws1", "region_url": "…", "url": "…",
//!    "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
//!    "imdsv2_session_token_url": "…"},
//!  "service_account_impersonation_url": "…:generateAccessToken", "service_account_impersonation": {"token_lifetime_seconds": 3600},
//!  "universe_domain": "googleapis.com", "client_id": "…", "client_secret": "…", "quota_project_id": "…", "scopes": ["…"]}
//! ```
//!
//! Keys are snake_case; the camelCase aliases google-auth-library also accepts (`tokenUrl`…) work too.
//! Rules (each violation is `CONFIG_INVALID`, naming the file and the field, never a secret's value):
//! * `type` must be `external_account`; `subject_token_type` must be [`SUBJECT_TOKEN_TYPE`];
//! * `credential_source.environment_id` must be `aws<N>` with N = 1 (as google-auth-library:
//!   other versions are "not supported in the current build");
//! * `credential_source.region_url`, `url` and `imdsv2_session_token_url` are **ignored**: they name
//!   EC2 instance metadata, which in a container is unreachable (Fargate, awsvpc), hop-limited
//!   (IMDSv2 with hop limit 1) or hands out the *node's* role instead of the task's. The crate's own
//!   chain replaces them (environment → profile → web identity → container endpoint → IMDSv2), so
//!   the same file works on EC2, ECS, Fargate, EKS and App Runner. `regional_cred_verification_url`
//!   is kept ([`DEFAULT_VERIFICATION_URL`] if absent) and must name AWS STS's GetCallerIdentity:
//!   `https`, host `sts.amazonaws.com`, `sts.{region}.amazonaws.com`, their `sts-fips` forms or
//!   the `.amazonaws.com.cn` ones (`{region}` is substituted), no port, no path, no fragment, and
//!   a query of exactly `Action=GetCallerIdentity` and optionally `Version=2011-06-15`, each once,
//!   in any order, as written, nothing else (the gcloud URL
//!   `https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15` passes). The
//!   workload's AWS keys sign that request, so any other URL or parameter (a second `Action`, a
//!   `RoleArn`) would let a configuration obtain signed AWS requests of its choosing (this applies
//!   to options too);
//! * `token_url` defaults to `https://sts.{universe_domain}/v1/token`, `universe_domain` to
//!   [`DEFAULT_UNIVERSE_DOMAIN`], `scopes` to [`DEFAULT_SCOPE`]; token and impersonation URLs must
//!   be `https`, or `http` to loopback (tests, emulators): they receive the subject and STS tokens;
//! * **trust model**: a credential configuration *file or object* is not trusted (it may come from
//!   a less trusted place than the code: a mounted secret, an environment variable). Its
//!   `token_url` and `service_account_impersonation_url` receive the signed AWS proof and the
//!   tokens, so their hosts must be Google's: `googleapis.com` or a subdomain (Private Service
//!   Connect endpoints are `*.p.googleapis.com`), loopback (emulators), or a host the *code*
//!   allows with the `allowedEndpointHosts` option (exact host, or `.suffix`), e.g. for another
//!   universe or a private endpoint. Its `universe_domain` chooses hosts too: google-auth-library
//!   sends the service account's token to `iamcredentials.<universe_domain>`,
//!   `cloudresourcemanager.<universe_domain>`…, and the default `token_url` is under it; so every
//!   host under it must pass the same rule: it must be `googleapis.com` (or a subdomain), or at or
//!   under an allowed `.suffix` (an exact host entry allows one host, never a domain). Options
//!   passed in code (`new GoogleTokenFetcher({...})`, `universeDomain` included) come from the
//!   application and are not restricted beyond `https`;
//! * **messages** never quote a URL whole: they show it through [`crate::redact::url`] (no query
//!   value, no user information), or name the field;
//! * `service_account_impersonation.token_lifetime_seconds`: a whole number in 600..=43200, default 3600;
//! * `client_secret` needs `client_id`.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::redact::Secret;

use super::impersonation::{DEFAULT_LIFETIME, MAX_LIFETIME, MIN_LIFETIME};
pub use super::subject_token::{DEFAULT_VERIFICATION_URL, SUBJECT_TOKEN_TYPE};

pub const EXTERNAL_ACCOUNT_TYPE: &str = "external_account";
pub const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
pub const DEFAULT_UNIVERSE_DOMAIN: &str = "googleapis.com";
/// The variable naming the credential configuration file.
pub const ENV_CREDENTIALS_FILE: &str = "GOOGLE_APPLICATION_CREDENTIALS";

/// A validated fetcher configuration. `Debug` redacts `client_secret`, and shows URLs as
/// [`crate::redact::url`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct FetcherConfig {
  pub audience: String,
  pub token_url: String,
  pub service_account_impersonation_url: Option<String>,
  pub token_lifetime: Duration,
  pub scopes: Vec<String>,
  pub universe_domain: String,
  pub client_id: Option<String>,
  pub client_secret: Option<Secret>,
  pub quota_project_id: Option<String>,
  /// With `{region}` still in it.
  pub regional_cred_verification_url: String,
}

/// Raw options (from JavaScript or from a file), before validation and defaults. `Debug` as
/// [`FetcherConfig`]'s.
#[derive(Clone, Default)]
pub struct FetcherOptions {
  pub audience: String,
  pub token_url: Option<String>,
  pub service_account_impersonation_url: Option<String>,
  pub token_lifetime_seconds: Option<f64>,
  pub scopes: Option<Vec<String>>,
  pub universe_domain: Option<String>,
  pub client_id: Option<String>,
  pub client_secret: Option<Secret>,
  pub quota_project_id: Option<String>,
  pub regional_cred_verification_url: Option<String>,
}

impl std::fmt::Debug for FetcherConfig {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let url = |u: &String| crate::redact::url(u);
    f.debug_struct("FetcherConfig")
      .field("audience", &self.audience)
      .field("token_url", &url(&self.token_url))
      .field("service_account_impersonation_url", &self.service_account_impersonation_url.as_ref().map(url))
      .field("token_lifetime", &self.token_lifetime)
      .field("scopes", &self.scopes)
      .field("universe_domain", &self.universe_domain)
      .field("client_id", &self.client_id)
      .field("client_secret", &self.client_secret)
      .field("quota_project_id", &self.quota_project_id)
      .field("regional_cred_verification_url", &url(&self.regional_cred_verification_url))
      .finish()
  }
}

impl std::fmt::Debug for FetcherOptions {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let url = |u: &String| crate::redact::url(u);
    f.debug_struct("FetcherOptions")
      .field("audience", &self.audience)
      .field("token_url", &self.token_url.as_ref().map(url))
      .field("service_account_impersonation_url", &self.service_account_impersonation_url.as_ref().map(url))
      .field("token_lifetime_seconds", &self.token_lifetime_seconds)
      .field("scopes", &self.scopes)
      .field("universe_domain", &self.universe_domain)
      .field("client_id", &self.client_id)
      .field("client_secret", &self.client_secret)
      .field("quota_project_id", &self.quota_project_id)
      .field("regional_cred_verification_url", &self.regional_cred_verification_url.as_ref().map(url))
      .finish()
  }
}

fn invalid(msg: String) -> Error {
  Error::new(ErrorKind::ConfigInvalid, msg)
}

/// `https` anywhere, `http` to loopback only, no user information.
fn check_url(field: &str, url: &str, allow_loopback_http: bool) -> Result<()> {
  let bad = |why: &str| invalid(format!("{field} {why}"));
  // Refused before parsing (the URL parser silently drops tabs and newlines) and before the URL is
  // quoted in any message: a control character in a configured URL is never legitimate.
  if url.chars().any(char::is_control) {
    return Err(bad("contains a control character"));
  }
  let parsed = reqwest::Url::parse(url).map_err(|e| bad(&format!("is not a valid URL ({e})")))?;
  if !parsed.username().is_empty() || parsed.password().is_some() {
    return Err(bad("must not carry user information"));
  }
  let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("has no host"))?;
  let host = host.trim_start_matches('[').trim_end_matches(']');
  let loopback = host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
  match parsed.scheme() {
    "https" => Ok(()),
    "http" if loopback && allow_loopback_http => Ok(()),
    _ => Err(bad(&format!("must be an https URL (got {})", crate::redact::url(url)))),
  }
}

/// The AWS STS hosts a `regional_cred_verification_url` may name (after `{region}` substitution).
fn is_aws_sts_host(host: &str) -> bool {
  let h = host.to_ascii_lowercase();
  let rest = match h.strip_prefix("sts-fips.").or_else(|| h.strip_prefix("sts.")) {
    Some(r) => r,
    None => return false,
  };
  let rest = rest.strip_suffix(".amazonaws.com.cn").or_else(|| rest.strip_suffix(".amazonaws.com"));
  match rest {
    None => h == "sts.amazonaws.com" || h == "sts-fips.amazonaws.com",
    Some(region) => crate::aws::region::is_valid_region(region),
  }
}

/// `regional_cred_verification_url` must be AWS STS GetCallerIdentity (see the module docs).
fn check_verification_url(template: &str) -> Result<()> {
  const FIELD: &str = "credential_source.regional_cred_verification_url";
  let url = template.replace("{region}", "us-east-1");
  check_url(FIELD, &url, false)?;
  let parsed = reqwest::Url::parse(&url).map_err(|e| invalid(format!("{FIELD} is not a valid URL ({e})")))?;
  let host = parsed.host_str().unwrap_or_default();
  if !is_aws_sts_host(host) || parsed.port().is_some() {
    return Err(invalid(format!(
      "{FIELD} must be an AWS STS endpoint (sts.amazonaws.com, sts.{{region}}.amazonaws.com, their sts-fips and .amazonaws.com.cn forms), not {host}"
    )));
  }
  if !matches!(parsed.path(), "" | "/") || parsed.fragment().is_some() || !is_get_caller_identity_query(parsed.query()) {
    return Err(invalid(format!(
      "{FIELD} must be AWS STS's GetCallerIdentity: no path, and a query of Action=GetCallerIdentity and optionally \
       Version=2011-06-15 (each once, in any order) and nothing else"
    )));
  }
  Ok(())
}

/// The query of a GetCallerIdentity URL: exactly `Action=GetCallerIdentity`, and optionally
/// `Version=2011-06-15`, each once, in any order, as written (no percent-encoding), nothing else.
/// A query the workload signs is a request it makes: any other parameter (a second `Action`, a
/// `RoleArn`) would let a configuration choose another AWS call.
fn is_get_caller_identity_query(query: Option<&str>) -> bool {
  let Some(query) = query else { return false };
  let pairs: Vec<&str> = query.split('&').collect();
  let count = |p: &str| pairs.iter().filter(|q| **q == p).count();
  let (action, version) = (count("Action=GetCallerIdentity"), count("Version=2011-06-15"));
  action == 1 && version <= 1 && pairs.len() == action + version
}

/// The host rule for an untrusted configuration (see the module docs): may `name`, a host (or, with
/// `domain`, every host under a domain), receive the signed AWS proof and the tokens? Google's
/// (`googleapis.com` and its subdomains), loopback hosts, and what the application allows in code:
/// an exact host, or `.suffix` for the hosts under it. A domain is trusted when every host under it
/// would be: at or under `googleapis.com` or under an allowed `.suffix` (an exact host entry
/// allows that host only, so it never allows a domain).
fn trusted(name: &str, domain: bool, allowed: &[String]) -> bool {
  let name = name.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
  let at_or_under = |root: &str| name == root || name.ends_with(&format!(".{root}"));
  if at_or_under(DEFAULT_UNIVERSE_DOMAIN) {
    return true;
  }
  if !domain && (name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())) {
    return true;
  }
  allowed.iter().map(|a| a.trim().to_ascii_lowercase()).any(|a| match a.strip_prefix('.') {
    Some(suffix) if !suffix.is_empty() => {
      if domain {
        at_or_under(suffix)
      } else {
        name.ends_with(&a)
      }
    }
    Some(_) => false,
    None => !domain && !a.is_empty() && name == a,
  })
}

/// The trust rule for an endpoint URL named by an untrusted configuration.
fn check_google_host(field: &str, url: &str, allowed: &[String]) -> Result<()> {
  let Ok(parsed) = reqwest::Url::parse(url) else { return Ok(()) }; // check_url has reported it
  let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
  if trusted(&host, false, allowed) {
    return Ok(());
  }
  Err(
    invalid(format!(
      "{field} names {host}, which is not a Google endpoint ({DEFAULT_UNIVERSE_DOMAIN} or a subdomain): a credential configuration is not \
     trusted to send the signed AWS proof and tokens elsewhere"
    ))
    .with_hint(
      "if you trust this endpoint (Private Service Connect, another universe), allow its host in code with the allowedEndpointHosts option",
    ),
  )
}

/// The trust rule for the `universe_domain` of an untrusted configuration: google-auth-library
/// sends the service account's token to hosts under it (`iamcredentials.<universe_domain>` for
/// `sign()`, `cloudresourcemanager.<universe_domain>` for `getProjectId()`…), so every host under
/// it must pass the host rule.
fn check_universe_domain(domain: &str, allowed: &[String]) -> Result<()> {
  if trusted(domain, true, allowed) {
    return Ok(());
  }
  Err(
    invalid(format!(
      "universe_domain {domain} is not Google's ({DEFAULT_UNIVERSE_DOMAIN}): a credential configuration is not trusted to choose \
       the hosts that receive its tokens"
    ))
    .with_hint(format!(
      "if you trust this universe, allow the hosts under it in code with the allowedEndpointHosts option (['.{domain}'])"
    )),
  )
}

impl FetcherConfig {
  /// Validate options and fill in google-auth-library's defaults.
  pub fn from_options(o: FetcherOptions) -> Result<FetcherConfig> {
    let audience = o.audience.trim().to_string();
    if audience.is_empty() || audience.chars().any(char::is_control) {
      return Err(invalid(
        "audience must be the workload identity provider's resource name, \
        //iam.googleapis.com/projects/<PROJECT_NUMBER>/locations/global/workloadIdentityPools/<POOL_ID>/providers/<PROVIDER_ID>"
          .into(),
      ));
    }
    let universe_domain = o.universe_domain.unwrap_or_else(|| DEFAULT_UNIVERSE_DOMAIN.to_string());
    if universe_domain.is_empty() || !universe_domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
      return Err(invalid(format!("universe_domain {universe_domain:?} is not a domain name")));
    }
    let token_url = o.token_url.unwrap_or_else(|| format!("https://sts.{universe_domain}/v1/token"));
    check_url("token_url", &token_url, true)?;
    if let Some(url) = &o.service_account_impersonation_url {
      check_url("service_account_impersonation_url", url, true)?;
    }
    let verification = o.regional_cred_verification_url.unwrap_or_else(|| DEFAULT_VERIFICATION_URL.to_string());
    check_verification_url(&verification)?;
    let scopes = o.scopes.unwrap_or_else(|| vec![DEFAULT_SCOPE.to_string()]);
    if scopes.is_empty() || scopes.iter().any(|s| s.is_empty() || s.chars().any(char::is_whitespace)) {
      return Err(invalid("scopes must be a non-empty list of OAuth scopes without spaces".into()));
    }
    if o.client_secret.is_some() && o.client_id.is_none() {
      return Err(invalid("client_secret is set without client_id".into()));
    }
    Ok(FetcherConfig {
      audience,
      token_url,
      service_account_impersonation_url: o.service_account_impersonation_url,
      token_lifetime: lifetime(o.token_lifetime_seconds)?,
      scopes,
      universe_domain,
      client_id: o.client_id,
      client_secret: o.client_secret,
      quota_project_id: o.quota_project_id,
      regional_cred_verification_url: verification,
    })
  }

  /// Parse a credential configuration. `origin` (usually the path) prefixes every message. Its
  /// endpoints must be Google's (or loopback): see the trust model in the module docs.
  pub fn from_json(bytes: &[u8], origin: &str) -> Result<FetcherConfig> {
    Self::from_json_allowing(bytes, origin, &[])
  }

  /// As [`Self::from_json`], with further endpoint hosts the application trusts (`host`, `.suffix`).
  pub fn from_json_allowing(bytes: &[u8], origin: &str, allowed_hosts: &[String]) -> Result<FetcherConfig> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
      let what = if e.classify() == serde_json::error::Category::Eof { "truncated" } else { "syntax error" };
      invalid(format!("{origin} is not valid JSON ({what} at line {} column {})", e.line(), e.column()))
    })?;
    let config = parse_object(&value).map_err(|e| e.context(origin))?;
    // First: the default token_url is under the universe domain.
    check_universe_domain(&config.universe_domain, allowed_hosts).map_err(|e| e.context(origin))?;
    check_google_host("token_url", &config.token_url, allowed_hosts).map_err(|e| e.context(origin))?;
    if let Some(url) = &config.service_account_impersonation_url {
      check_google_host("service_account_impersonation_url", url, allowed_hosts).map_err(|e| e.context(origin))?;
    }
    Ok(config)
  }

  /// Read and parse the file at `path` through `ctx.fs`.
  pub fn load(ctx: &Context, path: &Path, allowed_hosts: &[String]) -> Result<FetcherConfig> {
    let shown = path.display().to_string();
    let bytes = ctx.fs.read(path).map_err(|e| {
      let kind = if e.kind() == std::io::ErrorKind::TimedOut { ErrorKind::Timeout } else { ErrorKind::ConfigInvalid };
      Error::new(kind, format!("cannot read the credential configuration {shown}: {e}"))
    })?;
    Self::from_json_allowing(&bytes, &format!("credential configuration {shown}"), allowed_hosts)
  }

  /// The path `GOOGLE_APPLICATION_CREDENTIALS` names, if set.
  pub fn path_from_env(ctx: &Context) -> Option<std::path::PathBuf> {
    ctx.env.get(ENV_CREDENTIALS_FILE).map(|p| std::path::PathBuf::from(p.trim()))
  }

  /// The file named by `GOOGLE_APPLICATION_CREDENTIALS`.
  pub fn from_context(ctx: &Context, allowed_hosts: &[String]) -> Result<FetcherConfig> {
    let path = ctx.env.get(ENV_CREDENTIALS_FILE).ok_or_else(|| {
      invalid(format!("{ENV_CREDENTIALS_FILE} is not set")).with_hint("pass the audience in the options, or point GOOGLE_APPLICATION_CREDENTIALS at the file from gcloud iam workload-identity-pools create-cred-config --aws")
    })?;
    Self::load(ctx, Path::new(path.trim()), allowed_hosts)
  }

  /// The service account being impersonated, if any.
  pub fn service_account_email(&self) -> Option<&str> {
    self.service_account_impersonation_url.as_deref().and_then(super::impersonation::service_account_email)
  }
}

fn lifetime(secs: Option<f64>) -> Result<Duration> {
  let Some(s) = secs else { return Ok(DEFAULT_LIFETIME) };
  let (min, max) = (MIN_LIFETIME.as_secs() as f64, MAX_LIFETIME.as_secs() as f64);
  if !(s.is_finite() && s.fract() == 0.0 && (min..=max).contains(&s)) {
    return Err(invalid(format!(
      "service_account_impersonation.token_lifetime_seconds must be a whole number from {min} to {max} (got {s})"
    )));
  }
  Ok(Duration::from_secs(s as u64))
}

/// `token_url` → `tokenUrl`.
fn camel(snake: &str) -> String {
  let mut parts = snake.split('_');
  let mut out = parts.next().unwrap_or_default().to_string();
  for p in parts {
    let mut c = p.chars();
    out.extend(c.next().map(|f| f.to_ascii_uppercase()));
    out.push_str(c.as_str());
  }
  out
}

fn get<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
  obj.get(key).or_else(|| obj.get(camel(key))).filter(|v| !v.is_null())
}

fn string(obj: &Value, key: &str) -> Result<Option<String>> {
  match get(obj, key) {
    None => Ok(None),
    Some(Value::String(s)) => Ok(Some(s.clone())),
    Some(_) => Err(invalid(format!("{key} must be a string"))),
  }
}

fn required(obj: &Value, key: &str) -> Result<String> {
  string(obj, key)?.filter(|s| !s.is_empty()).ok_or_else(|| invalid(format!("{key} is missing")))
}

fn scopes(obj: &Value) -> Result<Option<Vec<String>>> {
  match get(obj, "scopes") {
    None => Ok(None),
    Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
    Some(Value::Array(a)) => a
      .iter()
      .map(|v| v.as_str().map(str::to_string))
      .collect::<Option<Vec<_>>>()
      .map(Some)
      .ok_or_else(|| invalid("scopes must be a list of strings".into())),
    Some(_) => Err(invalid("scopes must be a list of strings".into())),
  }
}

fn token_lifetime(obj: &Value) -> Result<Option<f64>> {
  let Some(imp) = get(obj, "service_account_impersonation") else { return Ok(None) };
  match get(imp, "token_lifetime_seconds") {
    None => Ok(None),
    Some(v) => v.as_f64().map(Some).ok_or_else(|| invalid("service_account_impersonation.token_lifetime_seconds must be a number".into())),
  }
}

/// `aws1` → accepted; `aws2` → not supported; anything else → not AWS.
fn check_environment_id(source: &Value) -> Result<()> {
  let id = string(source, "environment_id").map_err(|e| e.context("credential_source"))?;
  let Some(id) = id else {
    return Err(invalid(
      "credential_source has no environment_id: this is not an AWS credential configuration \
      (file-, URL- and executable-sourced configurations are not supported)"
        .into(),
    ));
  };
  let version = id.strip_prefix("aws").filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
  match version {
    Some("1") => Ok(()),
    Some(v) => Err(invalid(format!("credential_source.environment_id {id:?}: AWS version {v} is not supported (only aws1)"))),
    None => Err(invalid(format!("credential_source.environment_id {id:?} is not an AWS environment (expected aws1)"))),
  }
}

fn parse_object(v: &Value) -> Result<FetcherConfig> {
  if !v.is_object() {
    return Err(invalid("the JSON is not an object".into()));
  }
  match string(v, "type")?.as_deref() {
    Some(EXTERNAL_ACCOUNT_TYPE) => {}
    Some(other) => return Err(invalid(format!("type is {other:?}, not {EXTERNAL_ACCOUNT_TYPE:?}"))),
    None => return Err(invalid(format!("type is missing (expected {EXTERNAL_ACCOUNT_TYPE:?})"))),
  }
  let subject_token_type = required(v, "subject_token_type")?;
  if subject_token_type != SUBJECT_TOKEN_TYPE {
    return Err(invalid(format!("subject_token_type is {subject_token_type:?}, not {SUBJECT_TOKEN_TYPE:?}")));
  }
  let source = get(v, "credential_source").filter(|s| s.is_object()).ok_or_else(|| invalid("credential_source is missing".into()))?;
  check_environment_id(source)?;
  FetcherConfig::from_options(FetcherOptions {
    audience: required(v, "audience")?,
    token_url: string(v, "token_url")?,
    service_account_impersonation_url: string(v, "service_account_impersonation_url")?,
    token_lifetime_seconds: token_lifetime(v)?,
    scopes: scopes(v)?,
    universe_domain: string(v, "universe_domain")?,
    client_id: string(v, "client_id")?,
    client_secret: string(v, "client_secret")?.map(Secret::new),
    quota_project_id: string(v, "quota_project_id")?,
    regional_cred_verification_url: string(source, "regional_cred_verification_url").map_err(|e| e.context("credential_source"))?,
  })
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::{EnvSnapshot, Fs, ManualClock};
  use std::sync::Arc;

  const GCLOUD: &str = r#"{
  "universe_domain": "googleapis.com",
  "type": "external_account",
  "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/aws",
  "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
  "token_url": "https://sts.googleapis.com/v1/token",
  "credential_source": {
    "environment_id": "aws1",
    "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
    "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
    "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
    "imdsv2_session_token_url": "http://169.254.169.254/latest/api/token"
  },
  "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken",
  "service_account_impersonation": { "token_lifetime_seconds": 1800 }
}"#;

  fn patched(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(GCLOUD).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
  }

  fn err_of(bytes: &[u8]) -> Error {
    FetcherConfig::from_json(bytes, "credential configuration /etc/wif.json").unwrap_err()
  }

  #[test]
  fn parses_the_gcloud_file() {
    let c = FetcherConfig::from_json(GCLOUD.as_bytes(), "f").unwrap();
    assert_eq!(c.audience, "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/aws");
    assert_eq!(c.token_url, "https://sts.googleapis.com/v1/token");
    assert_eq!(c.token_lifetime, Duration::from_secs(1800));
    assert_eq!(c.scopes, [DEFAULT_SCOPE]);
    assert_eq!(c.service_account_email(), Some("sa@p.iam.gserviceaccount.com"));
    assert_eq!(c.regional_cred_verification_url, DEFAULT_VERIFICATION_URL);
    assert_eq!(c.universe_domain, "googleapis.com");
  }

  #[test]
  fn options_defaults() {
    let c = FetcherConfig::from_options(FetcherOptions {
      audience: "//iam.googleapis.com/x/providers/y".into(),
      universe_domain: Some("example.test".into()),
      ..Default::default()
    })
    .unwrap();
    assert_eq!(c.token_url, "https://sts.example.test/v1/token");
    assert_eq!(c.token_lifetime, Duration::from_secs(3600));
    assert_eq!(c.scopes, ["https://www.googleapis.com/auth/cloud-platform"]);
    assert_eq!(c.service_account_impersonation_url, None);
    let c = FetcherConfig::from_options(FetcherOptions { audience: "a".into(), ..Default::default() }).unwrap();
    assert_eq!(c.token_url, "https://sts.googleapis.com/v1/token");
    assert_eq!(c.universe_domain, "googleapis.com");
  }

  #[test]
  fn camel_case_and_optional_fields() {
    let bytes = patched(|v| {
      let o = v.as_object_mut().unwrap();
      o.remove("token_url");
      o.insert("tokenUrl".into(), Value::String("http://127.0.0.1:9/v1/token".into()));
      o.insert("scopes".into(), serde_json::json!(["a", "b"]));
      o.insert("client_id".into(), "id".into());
      o.insert("client_secret".into(), "MARKER-CLIENT-SECRET".into());
      o.insert("quota_project_id".into(), "qp".into());
    });
    let c = FetcherConfig::from_json(&bytes, "f").unwrap();
    assert_eq!(c.token_url, "http://127.0.0.1:9/v1/token");
    assert_eq!(c.scopes, ["a", "b"]);
    assert_eq!(c.quota_project_id.as_deref(), Some("qp"));
    assert_eq!(c.client_secret.as_ref().unwrap().expose(), "MARKER-CLIENT-SECRET");
    assert!(!format!("{c:?}").contains("MARKER"));
  }

  /// Issue 18, defect 7 (a sibling): `Debug` shows no URL query or user information either.
  #[test]
  fn debug_shows_urls_redacted() {
    let o = FetcherOptions {
      audience: "//iam.googleapis.com/x".into(),
      token_url: Some("http://127.0.0.1:9/v1/token?key=MARKER-KEY".into()),
      service_account_impersonation_url: Some("https://u:MARKER-PW@iamcredentials.googleapis.com/v1/x:generateAccessToken".into()),
      client_id: Some("id".into()),
      client_secret: Some(Secret::new("MARKER-CLIENT-SECRET")),
      ..Default::default()
    };
    let text = format!("{o:?}");
    let o = FetcherOptions {
      service_account_impersonation_url: Some("https://iamcredentials.googleapis.com/v1/x:generateAccessToken?k=MARKER-KEY".into()),
      ..o
    };
    let c = FetcherConfig::from_options(o).unwrap();
    let text = format!("{text} {c:?}");
    assert!(!text.contains("MARKER"), "{text}");
    assert!(text.contains("token_url: \"http://127.0.0.1:9/v1/token?…\""), "{text}");
  }

  #[test]
  fn violations_are_named() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
      (patched(|v| v["type"] = "service_account".into()), "type is \"service_account\", not \"external_account\""),
      (
        patched(|v| {
          v.as_object_mut().unwrap().remove("type");
        }),
        "type is missing",
      ),
      (patched(|v| v["credential_source"]["environment_id"] = "aws2".into()), "\"aws2\": AWS version 2 is not supported (only aws1)"),
      (patched(|v| v["credential_source"]["environment_id"] = "azure1".into()), "\"azure1\" is not an AWS environment"),
      (patched(|v| v["credential_source"] = serde_json::json!({"file": "/t"})), "no environment_id"),
      (
        patched(|v| {
          v.as_object_mut().unwrap().remove("credential_source");
        }),
        "credential_source is missing",
      ),
      (
        patched(|v| v["subject_token_type"] = "urn:ietf:params:oauth:token-type:jwt".into()),
        "subject_token_type is \"urn:ietf:params:oauth:token-type:jwt\"",
      ),
      (patched(|v| v["service_account_impersonation"]["token_lifetime_seconds"] = 599.into()), "from 600 to 43200 (got 599)"),
      (patched(|v| v["service_account_impersonation"]["token_lifetime_seconds"] = 43201.into()), "(got 43201)"),
      (patched(|v| v["service_account_impersonation"]["token_lifetime_seconds"] = "1h".into()), "must be a number"),
      (patched(|v| v["audience"] = 5.into()), "audience must be a string"),
      (
        patched(|v| {
          v.as_object_mut().unwrap().remove("audience");
        }),
        "audience is missing",
      ),
      (patched(|v| v["token_url"] = "http://sts.example.com/v1/token".into()), "token_url must be an https URL"),
      (patched(|v| v["service_account_impersonation_url"] = "nope".into()), "service_account_impersonation_url is not a valid URL"),
      (
        patched(|v| v["credential_source"]["regional_cred_verification_url"] = "http://127.0.0.1/x".into()),
        "regional_cred_verification_url must be an https URL",
      ),
      (patched(|v| v["scopes"] = serde_json::json!([])), "scopes must be a non-empty list"),
      (patched(|v| v["scopes"] = serde_json::json!([1])), "scopes must be a list of strings"),
      (patched(|v| v["client_secret"] = "MARKER-CLIENT-SECRET".into()), "client_secret is set without client_id"),
      (patched(|v| v["universe_domain"] = "a/b".into()), "universe_domain \"a/b\" is not a domain name"),
      (b"[]".to_vec(), "not an object"),
      (b"{\"type\": \"external_account\", \"client_secret\": \"MARKER-CLIENT-SECRET".to_vec(), "not valid JSON (truncated at line 1"),
      (b"{\"client_secret\": MARKER-CLIENT-SECRET}".to_vec(), "not valid JSON (syntax error at line 1 column 19)"),
    ];
    for (bytes, expect) in cases {
      let e = err_of(&bytes);
      assert_eq!(e.code(), "CONFIG_INVALID");
      assert!(e.message().starts_with("credential configuration /etc/wif.json"), "{e}");
      assert!(e.message().contains(expect), "expected {expect:?} in {e}");
      assert!(!format!("{e} {e:?}").contains("MARKER"), "{e}");
    }
  }

  struct OneFile(&'static str, &'static str);
  impl Fs for OneFile {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
      if path == Path::new(self.0) {
        Ok(self.1.as_bytes().to_vec())
      } else {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
      }
    }
  }

  #[test]
  fn loads_through_the_context_fs() {
    let ctx = |vars: &[(&str, &str)]| {
      Context::new(
        EnvSnapshot::from_pairs(vars.iter().copied()),
        Arc::new(OneFile("/etc/wif.json", GCLOUD)),
        Arc::new(ManualClock::at_epoch_secs(0)),
      )
    };
    assert!(FetcherConfig::from_context(&ctx(&[(ENV_CREDENTIALS_FILE, "/etc/wif.json")]), &[]).is_ok());
    let e = FetcherConfig::load(&ctx(&[]), Path::new("/missing.json"), &[]).unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID");
    assert!(e.message().contains("/missing.json") && e.message().contains("no such file"), "{e}");
    assert!(FetcherConfig::from_context(&ctx(&[]), &[]).unwrap_err().message().contains(ENV_CREDENTIALS_FILE));
  }

  #[test]
  fn control_characters_in_urls_are_refused_unquoted() {
    // Found by fuzz/config_file: the URL parser drops "\n", so the URL was accepted or quoted raw.
    for url in ["https://sts.googleapis.com/v1/\ntoken", "http://sts.example\r\n.test/v1/token", "https://sts.googleapis.com/\u{7}"] {
      let e = check_url("token_url", url, true).unwrap_err();
      assert_eq!(e.message(), "token_url contains a control character", "{url:?}");
    }
  }

  #[test]
  fn camel_helper() {
    assert_eq!(camel("service_account_impersonation_url"), "serviceAccountImpersonationUrl");
    assert_eq!(camel("audience"), "audience");
  }

  /// Issue 12, defect 3: the signed GetCallerIdentity may only go to AWS STS.
  #[test]
  fn verification_url_must_be_aws_sts_get_caller_identity() {
    let with = |url: &str| {
      let url = url.to_string();
      FetcherConfig::from_json(&patched(move |v| v["credential_source"]["regional_cred_verification_url"] = url.into()), "f")
    };
    for ok in [
      "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
      "https://sts-fips.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
      "https://sts.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
      "https://sts.cn-north-1.amazonaws.com.cn/?Action=GetCallerIdentity&Version=2011-06-15",
      "https://sts.{region}.amazonaws.com.cn?Version=2011-06-15&Action=GetCallerIdentity",
      "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity",
    ] {
      assert!(with(ok).is_ok(), "{ok}: {:?}", with(ok).err());
    }
    for bad in [
      "https://evil.example/?Action=GetCallerIdentity",
      "https://sts.{region}.amazonaws.com.evil.example?Action=GetCallerIdentity",
      "https://s3.{region}.amazonaws.com?Action=GetCallerIdentity",
      "https://sts.{region}.amazonaws.com?Action=AssumeRole&RoleArn=x",
      "https://sts.{region}.amazonaws.com/other?Action=GetCallerIdentity",
      "https://sts.{region}.amazonaws.com:8443?Action=GetCallerIdentity",
      "http://sts.{region}.amazonaws.com?Action=GetCallerIdentity",
      "https://sts.not_a_region!.amazonaws.com?Action=GetCallerIdentity",
    ] {
      let e = with(bad).unwrap_err();
      assert_eq!(e.code(), "CONFIG_INVALID");
      assert!(e.message().contains("regional_cred_verification_url"), "{bad}: {e}");
    }
    // The same rule for options given in code.
    let o = FetcherOptions {
      audience: "//iam.googleapis.com/x".into(),
      regional_cred_verification_url: Some("https://attacker.example/?Action=GetCallerIdentity".into()),
      ..Default::default()
    };
    assert_eq!(FetcherConfig::from_options(o).unwrap_err().code(), "CONFIG_INVALID");
  }

  /// Issue 18, defect 3: the query is exactly Action=GetCallerIdentity and optionally
  /// Version=2011-06-15, each once, in any order, nothing else.
  #[test]
  fn verification_query_is_exactly_get_caller_identity() {
    let with = |url: &str| {
      let url = url.to_string();
      FetcherConfig::from_json(&patched(move |v| v["credential_source"]["regional_cred_verification_url"] = url.into()), "f")
    };
    const BASE: &str = "https://sts.{region}.amazonaws.com";
    for query in [
      // The reproduced one: a signed AssumeRole, with GetCallerIdentity last.
      "?Action=AssumeRole&RoleArn=arn:aws:iam::1:role/r&RoleSessionName=x&Version=2011-06-15&Action=GetCallerIdentity",
      "?Action=GetCallerIdentity&Action=AssumeRole",
      "?Action=GetCallerIdentity&Action=GetCallerIdentity",
      "?Action=GetCallerIdentity&Version=2011-06-15&Version=2011-06-15",
      "?Action=GetCallerIdentity&Version=2012-01-01",
      "?Action=GetCallerIdentity&RoleArn=x",
      "?Action=GetCallerIdentity&",
      "?&Action=GetCallerIdentity",
      "?Action=Get%43allerIdentity",
      "?action=GetCallerIdentity",
      "?Version=2011-06-15",
      "?",
      "",
      "?Action=GetCallerIdentity#MARKER-FRAGMENT",
      "?Action=GetCallerIdentity&X-Amz-Security-Token=MARKER-QUERY",
    ] {
      let e = with(&format!("{BASE}{query}")).unwrap_err();
      assert_eq!(e.code(), "CONFIG_INVALID", "{query}");
      assert!(e.message().contains("credential_source.regional_cred_verification_url"), "{query}: {e}");
      assert!(!format!("{e} {e:?}").contains("MARKER"), "{query}: {e}");
    }
    for query in
      ["?Action=GetCallerIdentity&Version=2011-06-15", "?Version=2011-06-15&Action=GetCallerIdentity", "?Action=GetCallerIdentity"]
    {
      assert!(with(&format!("{BASE}{query}")).is_ok(), "{query}");
    }
    assert!(FetcherConfig::from_json(GCLOUD.as_bytes(), "f").is_ok(), "the gcloud URL");
  }

  /// Issue 18, defect 7: no query value and no user information of a configured URL in any
  /// message or hint; the field is named, and the scheme, host, port and path are kept.
  #[test]
  fn messages_never_quote_a_query_or_user_information() {
    let e = err_of(&patched(|v| v["token_url"] = "http://sts.example.test:8080/v1/token?key=MARKER-KEY".into()));
    assert!(e.message().ends_with("token_url must be an https URL (got http://sts.example.test:8080/v1/token?…)"), "{e}");
    let cases = [
      patched(|v| v["token_url"] = "http://sts.example.test/v1/token?key=MARKER-KEY".into()),
      patched(|v| v["token_url"] = "https://user:MARKER-PASSWORD@sts.googleapis.com/v1/token".into()),
      patched(|v| v["token_url"] = "https://sts.attacker.example/v1/token?key=MARKER-KEY".into()),
      patched(|v| v["service_account_impersonation_url"] = "http://iam.example.test/x:generateAccessToken?key=MARKER-KEY".into()),
      patched(|v| v["service_account_impersonation_url"] = "https://MARKER-USER@iamcredentials.googleapis.com/x".into()),
      patched(|v| v["credential_source"]["regional_cred_verification_url"] = "http://sts.{region}.amazonaws.com?MARKER-QUERY".into()),
      patched(|v| {
        v["credential_source"]["regional_cred_verification_url"] =
          "https://u:MARKER-PW@sts.{region}.amazonaws.com?Action=GetCallerIdentity".into()
      }),
      patched(|v| {
        v["credential_source"]["regional_cred_verification_url"] = "https://evil.example?Action=GetCallerIdentity&k=MARKER-QUERY".into()
      }),
    ];
    for bytes in cases {
      let e = err_of(&bytes);
      assert_eq!(e.code(), "CONFIG_INVALID");
      let text = format!("{e} {e:?} {}", e.hint().unwrap_or_default());
      assert!(!text.contains("MARKER"), "{text}");
    }
  }

  /// Issue 12, defect 3: a configuration file's token and impersonation URLs must be Google's.
  #[test]
  fn configuration_files_may_only_send_tokens_to_google() {
    let token_url = |url: &'static str| patched(move |v| v["token_url"] = url.into());
    let sa_url = |url: &'static str| patched(move |v| v["service_account_impersonation_url"] = url.into());
    for ok in [
      token_url("https://sts.googleapis.com/v1/token"),
      token_url("https://sts-myendpoint.p.googleapis.com/v1/token"),
      token_url("http://127.0.0.1:9/v1/token"),
      sa_url("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/a@b.iam.gserviceaccount.com:generateAccessToken"),
    ] {
      assert!(FetcherConfig::from_json(&ok, "f").is_ok());
    }
    for (bad, field) in [
      (token_url("https://sts.attacker.example/v1/token"), "token_url"),
      (token_url("https://googleapis.com.attacker.example/v1/token"), "token_url"),
      (
        sa_url("https://attacker.example/v1/projects/-/serviceAccounts/a@b.iam.gserviceaccount.com:generateAccessToken"),
        "service_account_impersonation_url",
      ),
    ] {
      let e = FetcherConfig::from_json(&bad, "credential configuration f").unwrap_err();
      assert_eq!(e.code(), "CONFIG_INVALID");
      assert!(e.message().contains(field) && e.message().contains("not a Google endpoint"), "{e}");
      assert!(e.hint().unwrap_or_default().contains("allowedEndpointHosts"));
    }
    // Hosts the application allows in code.
    let psc = token_url("https://sts.private.corp.example/v1/token");
    assert!(FetcherConfig::from_json_allowing(&psc, "f", &["sts.private.corp.example".into()]).is_ok());
    assert!(FetcherConfig::from_json_allowing(&psc, "f", &[".corp.example".into()]).is_ok());
    assert!(FetcherConfig::from_json_allowing(&psc, "f", &["corp.example".into()]).is_err());
    // Options given in code are the application's own: not restricted beyond https.
    let o = FetcherOptions {
      audience: "//iam.googleapis.com/x".into(),
      token_url: Some("https://sts.private.corp.example/v1/token".into()),
      ..Default::default()
    };
    assert!(FetcherConfig::from_options(o).is_ok());
  }

  /// Issue 18, defect 9: a configuration's universe_domain chooses the hosts google-auth-library
  /// sends the service account's token to, so it follows the host rule.
  #[test]
  fn universe_domain_of_a_configuration_follows_the_host_rule() {
    let universe = |d: &'static str| patched(move |v| v["universe_domain"] = d.into());
    for ok in ["googleapis.com", "GoogleAPIs.com", "p.googleapis.com"] {
      assert!(FetcherConfig::from_json(&universe(ok), "f").is_ok(), "{ok}");
    }
    for bad in ["attacker.example", "googleapis.com.attacker.example", "localhost", "127.0.0.1", "com"] {
      let e = FetcherConfig::from_json(&universe(bad), "credential configuration f").unwrap_err();
      assert_eq!(e.code(), "CONFIG_INVALID", "{bad}");
      assert!(e.message().starts_with("credential configuration f: universe_domain"), "{bad}: {e}");
      assert!(e.hint().unwrap_or_default().contains("allowedEndpointHosts"), "{bad}");
    }
    // Without a token_url, the universe is named (not the token_url derived from it).
    let derived = patched(|v| {
      v["universe_domain"] = "attacker.example".into();
      v.as_object_mut().unwrap().remove("token_url");
    });
    assert!(FetcherConfig::from_json(&derived, "f").unwrap_err().message().contains("universe_domain attacker.example"));
    // What the application allows in code: the hosts under the universe (a `.suffix` at or above it).
    let corp = patched(|v| {
      v["universe_domain"] = "universe.corp.example".into();
      v["token_url"] = "https://sts.universe.corp.example/v1/token".into();
    });
    let allowing = |hosts: &[&str]| FetcherConfig::from_json_allowing(&corp, "f", &hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    assert!(allowing(&[".universe.corp.example"]).is_ok());
    assert!(allowing(&[".corp.example"]).is_ok());
    assert_eq!(allowing(&[".corp.example"]).unwrap().universe_domain, "universe.corp.example");
    for refused in [&[][..], &["universe.corp.example"], &["sts.universe.corp.example"], &[".other.example"], &["."]] {
      let e = allowing(refused).unwrap_err();
      assert!(e.message().contains("universe_domain universe.corp.example"), "{refused:?}: {e}");
    }
    // The same rule whether the configuration is a file or an object (both are from_json_allowing);
    // options given in code are the application's own, universeDomain included.
    let o = FetcherOptions {
      audience: "//iam.googleapis.com/x".into(),
      universe_domain: Some("universe.corp.example".into()),
      ..Default::default()
    };
    assert_eq!(FetcherConfig::from_options(o).unwrap().token_url, "https://sts.universe.corp.example/v1/token");
  }
}
