//! Which requests go through a proxy: google-auth-library's rules (gaxios 7
//! `#urlMayUseProxy`), plus the metadata endpoints that never may.
//!
//! * **The proxy**: the first non-empty of `HTTPS_PROXY`, `https_proxy`, `HTTP_PROXY`,
//!   `http_proxy` (gaxios's order), for every URL, http or https alike (gaxios hands both to one
//!   `HttpsProxyAgent`: CONNECT tunnels). A URL without a scheme is taken as `http://`. A
//!   `user:password@` in it is sent as `Proxy-Authorization: Basic`, and never shown: [`Debug`]
//!   and [`ProxyConfig::describe`] print the URL without it.
//! * **Bypass** (`NO_PROXY`, else `no_proxy`; comma-separated, trimmed): an entry starting with
//!   `.` or `*.` matches host names ending in `.suffix` (not the bare suffix itself); any other
//!   entry matches the URL's origin (`https://host:port`), host name, or whole href exactly. As in
//!   gaxios there is no bare `*` wildcard and no CIDR.
//! * **Never proxied**, whatever the variables say: loopback (`localhost`, `127.0.0.0/8`, `::1`),
//!   link-local (`169.254.0.0/16`: IMDS 169.254.169.254, ECS 169.254.170.2, EKS Pod Identity
//!   169.254.170.23; `fe80::/10`), and `fd00:ec2::/32` (IMDS and EKS over IPv6). A metadata request
//!   through a proxy would fail or hand the container's token to the proxy. (gaxios would send
//!   IMDS through the proxy unless `NO_PROXY` lists it; the AWS SDK for JavaScript sends nothing
//!   through a proxy. Ours is the safe intersection.)
//!
//! The decision is made from the environment of the thread that built the supplier or fetcher,
//! for every request by its host, whichever code sends it: our own calls and aws-config's AWS STS
//! calls alike (they share [`super::Http`]).

use std::net::IpAddr;

use crate::env::EnvSnapshot;

/// Variables read, in gaxios's order.
pub const PROXY_VARS: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"];
pub const NO_PROXY_VARS: [&str; 2] = ["NO_PROXY", "no_proxy"];

/// The proxy settings of one environment.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ProxyConfig {
  /// The proxy URL, normalised to carry a scheme.
  url: Option<String>,
  /// The variable it came from.
  from: Option<&'static str>,
  no_proxy: Vec<String>,
}

impl std::fmt::Debug for ProxyConfig {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("ProxyConfig").field("url", &self.describe()).field("no_proxy", &self.no_proxy).finish()
  }
}

impl ProxyConfig {
  pub fn from_env(env: &EnvSnapshot) -> Self {
    let found = PROXY_VARS.iter().find_map(|k| env.get(k).map(|v| (*k, v.trim().to_string())));
    let (from, url) = match found {
      Some((k, v)) => (Some(k), Some(if v.contains("://") { v } else { format!("http://{v}") })),
      None => (None, None),
    };
    // gaxios: `NO_PROXY ?? no_proxy`: a set (even empty) NO_PROXY hides no_proxy.
    let raw = env.get_raw("NO_PROXY").or_else(|| env.get_raw("no_proxy")).unwrap_or("");
    let no_proxy = raw.split(',').map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect();
    ProxyConfig { url, from, no_proxy }
  }

  /// Whether a proxy is configured at all.
  pub fn is_set(&self) -> bool {
    self.url.is_some()
  }

  /// For `doctor` and logs: the proxy without credentials, and where it came from.
  pub fn describe(&self) -> String {
    match (&self.url, self.from) {
      (Some(u), Some(from)) => format!("{} (from {from})", crate::redact::url(u)),
      _ => "none".to_string(),
    }
  }

  pub fn no_proxy(&self) -> &[String] {
    &self.no_proxy
  }

  /// The proxy URL to use for `url`, or None to connect directly.
  pub fn proxy_for(&self, url: &reqwest::Url) -> Option<&str> {
    let proxy = self.url.as_deref()?;
    if never_proxied(url) || self.bypassed(url) {
      return None;
    }
    Some(proxy)
  }

  fn bypassed(&self, url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let origin = url.origin().ascii_serialization();
    self.no_proxy.iter().any(|rule| {
      if let Some(suffix) = rule.strip_prefix("*.").map(|s| format!(".{s}")).or_else(|| rule.starts_with('.').then(|| rule.clone())) {
        host.ends_with(&suffix)
      } else {
        *rule == origin || *rule == host || *rule == url.as_str()
      }
    })
  }
}

/// Loopback, link-local and the EC2 IPv6 metadata range: never through a proxy.
pub fn never_proxied(url: &reqwest::Url) -> bool {
  let Some(host) = url.host_str() else { return true };
  let bare = host.trim_start_matches('[').trim_end_matches(']');
  match bare.parse::<IpAddr>() {
    Ok(ip) => is_local(ip),
    Err(_) => {
      let d = host.trim_end_matches('.').to_ascii_lowercase();
      d == "localhost" || d.ends_with(".localhost")
    }
  }
}

fn is_local(ip: IpAddr) -> bool {
  match ip {
    IpAddr::V4(a) => a.is_loopback() || a.is_link_local() || a.is_unspecified(),
    IpAddr::V6(a) => {
      if let Some(v4) = a.to_ipv4_mapped() {
        return is_local(IpAddr::V4(v4));
      }
      let s = a.segments();
      a.is_loopback() || a.is_unspecified() || (s[0] & 0xffc0) == 0xfe80 || (s[0] == 0xfd00 && s[1] == 0x0ec2)
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn cfg(vars: &[(&str, &str)]) -> ProxyConfig {
    ProxyConfig::from_env(&EnvSnapshot::from_pairs(vars.iter().copied()))
  }
  fn via(c: &ProxyConfig, url: &str) -> Option<String> {
    c.proxy_for(&reqwest::Url::parse(url).unwrap()).map(str::to_string)
  }

  #[test]
  fn gaxios_variable_order() {
    let all = [("http_proxy", "http://d:1"), ("HTTP_PROXY", "http://c:1"), ("https_proxy", "http://b:1"), ("HTTPS_PROXY", "http://a:1")];
    assert_eq!(via(&cfg(&all), "https://sts.googleapis.com/v1/token").as_deref(), Some("http://a:1"));
    assert_eq!(via(&cfg(&all[..3]), "https://x.googleapis.com").as_deref(), Some("http://b:1"));
    assert_eq!(via(&cfg(&all[..2]), "https://x.googleapis.com").as_deref(), Some("http://c:1"), "HTTP_PROXY serves https URLs too");
    assert_eq!(via(&cfg(&all[..1]), "http://x.example").as_deref(), Some("http://d:1"));
    assert_eq!(via(&cfg(&[("HTTPS_PROXY", "proxy.corp:3128")]), "https://a.example").as_deref(), Some("http://proxy.corp:3128"));
    assert_eq!(via(&cfg(&[("HTTPS_PROXY", "  ")]), "https://a.example"), None, "blank is unset");
    assert_eq!(via(&cfg(&[]), "https://a.example"), None);
  }

  #[test]
  fn no_proxy_matching_as_gaxios() {
    let c = cfg(&[
      ("HTTPS_PROXY", "http://p:3128"),
      ("NO_PROXY", " .internal.example, *.corp.example,exact.example, https://origin.example:8443,http://href.example/path"),
    ]);
    for bypass in [
      "https://a.internal.example/x",
      "https://deep.b.corp.example",
      "https://exact.example/v1/token",
      "https://origin.example:8443/x",
      "http://href.example/path",
    ] {
      assert_eq!(via(&c, bypass), None, "{bypass}");
    }
    for proxied in [
      "https://internal.example",   // `.suffix` does not match the bare suffix
      "https://corp.example",       // nor does `*.suffix`
      "https://notexact.example",   // exact host only
      "https://origin.example/x",   // other port: other origin
      "http://href.example/other",  // href must match whole
      "https://sts.googleapis.com", // unrelated
    ] {
      assert!(via(&c, proxied).is_some(), "{proxied}");
    }
    assert!(via(&cfg(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "*")]), "https://a.example").is_some(), "no bare * wildcard");
    // NO_PROXY set (even empty) hides no_proxy, as `??` does.
    let c = cfg(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "a.example")]);
    assert_eq!(via(&c, "https://a.example"), None);
  }

  #[test]
  fn metadata_and_loopback_never_go_through_a_proxy() {
    let c = cfg(&[("HTTP_PROXY", "http://p:3128"), ("HTTPS_PROXY", "http://p:3128")]);
    for local in [
      "http://169.254.169.254/latest/api/token",
      "http://169.254.170.2/v2/credentials/x",
      "http://169.254.170.23/v1/credentials",
      "http://[fd00:ec2::254]/latest/api/token",
      "http://[fd00:ec2::23]/v1/credentials",
      "http://127.0.0.1:8080/x",
      "http://127.9.9.9/x",
      "http://localhost:1/x",
      "http://[::1]:9/x",
      "http://[fe80::1]/x",
    ] {
      assert_eq!(via(&c, local), None, "{local}");
    }
  }

  #[test]
  fn credentials_never_shown() {
    let c = cfg(&[("HTTPS_PROXY", "http://alice:MARKER-PROXY-PASSWORD@proxy.corp:3128")]);
    for text in [format!("{c:?}"), c.describe()] {
      assert!(!text.contains("MARKER-PROXY-PASSWORD"), "{text}");
      assert!(!text.contains("alice"), "{text}");
      assert!(text.contains("proxy.corp:3128") && text.contains("credentials hidden"), "{text}");
    }
    assert_eq!(via(&c, "https://a.example").as_deref(), Some("http://alice:MARKER-PROXY-PASSWORD@proxy.corp:3128"));
  }
}
