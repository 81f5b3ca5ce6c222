//! Glue to aws-config's own providers (the profile link of the chain), and the `SdkConfig` the
//! AWS STS calls we make ourselves use ([`sdk_config`]: web identity from the environment or a
//! profile, `source_profile` role chains), whose endpoint comes from the context.
//!
//! aws-config's `ProviderConfig` cannot be given our environment snapshot (its `with_env` is
//! crate-private). What it does accept comes from the snapshot of the constructing thread: the
//! inputs that select the link (token file, role ARN, session name, profile files and name), the
//! region, the HTTP client (trust, proxy) and FIPS / dual-stack selection
//! (`AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`). **Still read from the process
//! environment** by aws-config itself (SSO and `aws login` profiles, also as the base of a role
//! chain): the endpoint overrides `AWS_ENDPOINT_URL_STS`,
//! `AWS_ENDPOINT_URL_SSO`, `AWS_ENDPOINT_URL_SSO_OIDC`, `AWS_ENDPOINT_URL_SIGNIN` and
//! `AWS_ENDPOINT_URL` (an override cannot be applied after the fact: AWS STS `AssumeRole`
//! requests are signed for their host); `HOME` where the SSO provider looks for
//! `~/.aws/sso/cache/<sha1 of the sso_session name, or of the start URL>.json`; and `HOME` or
//! `AWS_LOGIN_CACHE_DIRECTORY` where the login provider keeps `~/.aws/login/cache/<sha256 of the
//! session ARN>.json` (rewritten after a refresh, as the AWS CLI and the JavaScript SDK do). A
//! worker that needs other values for these must run in a process whose environment has them
//! (README, "Worker threads").
//!
//! aws-config is built without default features, plus `sso` and `credentials-login`: no aws-lc C build, no
//! `credential_process` (ours: [`crate::aws::profile::process`]), and no HTTP client of its own. The client it is
//! given ([`SdkHttp`], used for our own AWS STS calls, and for the SSO portal (`GetRoleCredentials`)
//! and SSO OIDC token refresh by the SSO provider, and for AWS Sign-In `CreateOAuth2Token` by the
//! login provider, whose clients are all built from the same `ProviderConfig`) is an adapter onto
//! [`crate::http`]: the same reqwest clients, rustls on *ring*, and the same policy as every other
//! request of the crate (the proxy rules of [`crate::http::proxy`], no redirects, 2 s connect, 64 KiB
//! body cap, the caller's deadline around the whole call). One HTTP stack instead of two: no second hyper client, no HTTP/2. aws-config's providers do not cache (its identity
//! cache lives in service clients), so our [`crate::cache`] does.
//!
//! The folder: this file builds the configurations ([`provider_config`], [`sdk_config`]);
//! [`connector`] is the HTTP adapter; [`provide`] runs a provider within a deadline and catches its
//! panics; [`error`] maps aws-config's errors to ours.

mod connector;
mod error;
mod provide;

use aws_config::provider_config::ProviderConfig;
use aws_config::Region;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::context::Context;

pub use connector::SdkHttp;
pub use provide::{provide, provide_named};

/// A `ProviderConfig` for `ctx`: our HTTP client ([`SdkHttp`], with the context's trust and
/// proxy), the given region (AWS STS needs one), and FIPS / dual-stack endpoint selection from the
/// context's `AWS_USE_FIPS_ENDPOINT` / `AWS_USE_DUALSTACK_ENDPOINT`, else the selected profile's
/// `use_fips_endpoint` / `use_dualstack_endpoint` (aws-config's `ProviderConfig` reads neither by
/// itself: without this they would be off).
pub fn provider_config(ctx: &Context, region: &str) -> ProviderConfig {
  let settings = Settings::new(ctx);
  ProviderConfig::without_region()
    .with_http_client(SharedHttpClient::new(SdkHttp(ctx.http.clone())))
    .with_region(Some(Region::new(region.to_string())))
    .with_use_fips(settings.flag(ENV_USE_FIPS, "use_fips_endpoint"))
    .with_use_dual_stack(settings.flag(ENV_USE_DUAL_STACK, "use_dualstack_endpoint"))
}

/// An `SdkConfig` for the AWS STS calls this crate sends itself with `aws-sdk-sts`
/// ([`crate::aws::sts`]): the same HTTP client, region and FIPS /
/// dual-stack selection as [`provider_config`], aws-config's standard retry, and the AWS STS
/// endpoint override of [`sts_endpoint_override`], read from the context.
pub fn sdk_config(ctx: &Context, region: &str) -> aws_config::SdkConfig {
  let settings = Settings::new(ctx);
  let mut builder = aws_config::SdkConfig::builder()
    .http_client(SharedHttpClient::new(SdkHttp(ctx.http.clone())))
    .region(Region::new(region.to_string()))
    .time_source(aws_types::sdk_config::SharedTimeSource::default())
    .retry_config(aws_types::sdk_config::RetryConfig::standard())
    .behavior_version(aws_config::BehaviorVersion::latest())
    .use_fips(settings.flag(ENV_USE_FIPS, "use_fips_endpoint").unwrap_or(false))
    .use_dual_stack(settings.flag(ENV_USE_DUAL_STACK, "use_dualstack_endpoint").unwrap_or(false));
  if let Some(url) = settings.sts_endpoint_override() {
    builder = builder.endpoint_url(url);
  }
  builder.build()
}

/// The AWS STS endpoint a user configured, in the AWS SDKs' order: `AWS_ENDPOINT_URL_STS`, then
/// `AWS_ENDPOINT_URL`, then the selected profile's `endpoint_url`; none when
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true. (A profile's `services` section is not read.)
pub fn sts_endpoint_override(ctx: &Context) -> Option<String> {
  Settings::new(ctx).sts_endpoint_override()
}

/// Settings read from the context's variables, else the selected profile; the profile files are
/// read at most once, and only when a variable is not set.
struct Settings<'a> {
  ctx: &'a Context,
  profiles: once_cell::unsync::OnceCell<Option<crate::aws::profile::file::Profiles>>,
}

impl<'a> Settings<'a> {
  fn new(ctx: &'a Context) -> Self {
    Settings { ctx, profiles: once_cell::unsync::OnceCell::new() }
  }

  /// The selected profile's `key` (unreadable files count as unset).
  fn profile(&self, key: &str) -> Option<String> {
    self.profiles.get_or_init(|| crate::aws::profile::file::Profiles::load(self.ctx).ok()).as_ref().and_then(|p| p.get(key))
  }

  /// The variable `var`, else the selected profile's `key`.
  fn get(&self, var: &str, key: &str) -> Option<String> {
    self.ctx.env.get(var).map(str::to_string).or_else(|| self.profile(key))
  }

  /// A boolean setting; `None` when it is neither `true` nor `false`.
  fn flag(&self, var: &str, key: &str) -> Option<bool> {
    match self.get(var, key)?.trim().to_ascii_lowercase().as_str() {
      "true" => Some(true),
      "false" => Some(false),
      _ => None,
    }
  }

  fn sts_endpoint_override(&self) -> Option<String> {
    if self.flag(ENV_IGNORE_ENDPOINT_URLS, "ignore_configured_endpoint_urls") == Some(true) {
      return None;
    }
    [ENV_ENDPOINT_URL_STS, ENV_ENDPOINT_URL]
      .iter()
      .find_map(|v| self.ctx.env.get(v))
      .map(str::to_string)
      .or_else(|| self.profile("endpoint_url"))
      .map(|s| s.trim().to_string())
      .filter(|s| !s.is_empty())
  }
}

pub const ENV_USE_FIPS: &str = "AWS_USE_FIPS_ENDPOINT";
pub const ENV_USE_DUAL_STACK: &str = "AWS_USE_DUALSTACK_ENDPOINT";
pub const ENV_ENDPOINT_URL_STS: &str = "AWS_ENDPOINT_URL_STS";
pub const ENV_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
pub const ENV_IGNORE_ENDPOINT_URLS: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_sts_endpoint_override_comes_from_the_context_in_the_sdks_order() {
    use crate::env::{EnvSnapshot, ManualClock, OsFs};
    let dir = std::env::temp_dir().join(format!("aws-wif-sdk-endpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(&config, "[default]\nendpoint_url = http://127.0.0.1:3/profile\n").unwrap();
    let config = config.to_str().unwrap().to_string();
    let ctx = |vars: &[(&str, &str)]| {
      let mut all = vec![("AWS_CONFIG_FILE", config.as_str())];
      all.extend_from_slice(vars);
      Context::new(EnvSnapshot::from_pairs(all), std::sync::Arc::new(OsFs), std::sync::Arc::new(ManualClock::at_epoch_secs(1)))
    };
    let sts = ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1/sts");
    let all = ("AWS_ENDPOINT_URL", "http://127.0.0.1:2/all");
    assert_eq!(sts_endpoint_override(&ctx(&[sts, all])).as_deref(), Some("http://127.0.0.1:1/sts"));
    assert_eq!(sts_endpoint_override(&ctx(&[all])).as_deref(), Some("http://127.0.0.1:2/all"));
    assert_eq!(sts_endpoint_override(&ctx(&[])).as_deref(), Some("http://127.0.0.1:3/profile"));
    assert_eq!(sts_endpoint_override(&ctx(&[sts, ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")])), None);
    assert_eq!(sdk_config(&ctx(&[sts]), "eu-west-1").endpoint_url(), Some("http://127.0.0.1:1/sts"));
    std::fs::remove_dir_all(&dir).unwrap();
  }
}
