//! The AWS region for the GetCallerIdentity request, in this order:
//!
//! 1. the `region` option;
//! 2. `AWS_REGION`;
//! 3. `AWS_DEFAULT_REGION`;
//! 4. the selected profile's `region` in the shared config/credentials files (as aws-config's
//!    region chain, and the `new STSClient({}).config.region()` of google-auth-library's sample);
//! 5. ECS task metadata v4: `GET ${ECS_CONTAINER_METADATA_URI_V4}/task`, the region field of
//!    `TaskARN` (`arn:aws:ecs:<region>:<account>:task/…`), else `AvailabilityZone` without its final
//!    letter (`us-east-1a` → `us-east-1`). ECS on EC2 agents older than 2026-04 set no region
//!    variable, so this matters there;
//! 6. IMDSv2 `placement/region`, unless `AWS_EC2_METADATA_DISABLED=true`;
//! 7. otherwise `REGION_NOT_FOUND`, naming each step and why it gave nothing.
//!
//! The caller caches the result for the life of the process (regions do not move).
//!
//! The region of the AWS STS calls the chain itself makes (profile roles, web identity) is
//! [`sts_region`], in the JavaScript SDK's order: the option, `AWS_REGION`, the profile's
//! `region`, then `us-east-1`; for a profile role chain [`role_chain_sts_region`] puts the
//! profile's `region` before `AWS_REGION`, as the JavaScript SDK does. Neither probes metadata. Both use one normalisation,
//! [`normalise`]: trimmed, lower-cased, and a region name ([`is_valid_region`]) or nothing.

use serde_json::Value;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Deadline, Http, Method, Request, Route};

use super::imds::client::{Imds, Lookup};

pub const ENV_REGION: &str = "AWS_REGION";
pub const ENV_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
pub const ENV_ECS_METADATA_V4: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// Where a region came from (shown by `doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRegion {
  pub region: String,
  pub source: &'static str,
}

/// `us-east-1`, `ap-northeast-1`, `us-gov-west-1`, `eu-isoe-west-1`…: lower-case letters, digits and dashes.
pub fn is_valid_region(r: &str) -> bool {
  !r.is_empty()
    && r.len() <= 32
    && r.contains('-')
    && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    && !r.starts_with('-')
    && !r.ends_with('-')
}

/// The one normalisation of a configured region: trimmed and lower-cased, if it is a region name.
pub fn normalise(value: &str) -> Option<String> {
  let v = value.trim().to_ascii_lowercase();
  is_valid_region(&v).then_some(v)
}

/// The region of an availability zone: `us-east-1a` → `us-east-1`. Local and Wavelength zones
/// name their parent region first: `us-west-2-lax-1a` → `us-west-2`,
/// `us-east-1-wl1-bos-wlz-1` → `us-east-1` (the prefix up to its first all-digit part).
pub fn region_from_zone(zone: &str) -> Option<String> {
  let z = zone.trim();
  let parts: Vec<&str> = z.split('-').collect();
  if let Some(i) = parts.iter().position(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
    if i + 1 < parts.len() {
      let region = parts.get(..=i)?.join("-");
      return is_valid_region(&region).then_some(region);
    }
  }
  let region = z.trim_end_matches(|c: char| c.is_ascii_lowercase());
  (region.len() < z.len() && is_valid_region(region)).then(|| region.to_string())
}

/// The region of the AWS STS calls made by the chain's links: the option, `AWS_REGION`, the
/// profile's `region`, then `us-east-1` (the JavaScript SDK's order). No metadata is probed.
pub fn sts_region(ctx: &Context, option: Option<&str>) -> String {
  option
    .and_then(normalise)
    .or_else(|| ctx.env.get(ENV_REGION).and_then(normalise))
    .or_else(|| super::profile::file::property(ctx, "region").ok().flatten().as_deref().and_then(normalise))
    .unwrap_or_else(|| DEFAULT_STS_REGION.to_string())
}

pub const DEFAULT_STS_REGION: &str = "us-east-1";

/// The region of AWS STS `AssumeRole` for a profile role chain: the option, the selected
/// profile's own `region` (`profile_region`, as the walk read it), `AWS_REGION`, then
/// `us-east-1`. The JavaScript SDK's ini provider hands the role profile's `region` to its role
/// assumer, where it comes before the STS default (`AWS_REGION`, the profile's `region`,
/// `us-east-1`).
pub fn role_chain_sts_region(ctx: &Context, option: Option<&str>, profile_region: Option<&str>) -> String {
  option
    .and_then(normalise)
    .or_else(|| profile_region.and_then(normalise))
    .or_else(|| ctx.env.get(ENV_REGION).and_then(normalise))
    .unwrap_or_else(|| DEFAULT_STS_REGION.to_string())
}

/// The region field of an ARN.
pub fn region_from_arn(arn: &str) -> Option<String> {
  let mut parts = arn.split(':');
  (parts.next()? == "arn").then_some(())?;
  let region = parts.nth(2)?;
  is_valid_region(region).then(|| region.to_string())
}

fn from_task_metadata(body: &[u8]) -> Option<String> {
  let v: Value = serde_json::from_slice(body).ok()?;
  let arn_region = ["TaskARN", "Cluster"].iter().find_map(|k| v.get(k).and_then(Value::as_str).and_then(region_from_arn));
  arn_region.or_else(|| v.get("AvailabilityZone").and_then(Value::as_str).and_then(region_from_zone))
}

async fn ecs_task_metadata(http: &Http, base: &str, deadline: Deadline) -> std::result::Result<String, String> {
  let url = format!("{}/task", base.trim().trim_end_matches('/'));
  let resp = http.send_with_retry(&Request::new(Method::Get, url).route(Route::DIRECT), deadline).await.map_err(|e| e.to_string())?;
  if !resp.is_success() {
    return Err(format!("HTTP {}", resp.status));
  }
  from_task_metadata(&resp.body).ok_or_else(|| "no TaskARN or AvailabilityZone with a region".to_string())
}

fn clean(value: &str, var: &str, tried: &mut Vec<String>) -> Option<String> {
  let r = normalise(value);
  if r.is_none() {
    tried.push(format!("{var} is set but is not a region name"));
  }
  r
}

/// Resolve the region. `imds` is `None` when IMDS is disabled.
pub async fn resolve(ctx: &Context, option: Option<&str>, imds: Option<&Imds>, deadline: Deadline) -> Result<ResolvedRegion> {
  let mut tried: Vec<String> = Vec::new();
  let found = |region: String, source: &'static str| Ok(ResolvedRegion { region, source });
  if let Some(r) = option.and_then(|o| clean(o, "the region option", &mut tried)) {
    return found(r, "option");
  }
  for var in [ENV_REGION, ENV_DEFAULT_REGION] {
    match ctx.env.get(var) {
      Some(v) => {
        if let Some(r) = clean(v, var, &mut tried) {
          return found(r, if var == ENV_REGION { "AWS_REGION" } else { "AWS_DEFAULT_REGION" });
        }
      }
      None => tried.push(format!("{var} is not set")),
    }
  }
  let profile = super::profile::file::profile_name(ctx).to_string();
  match super::profile::file::property(ctx, "region") {
    Ok(Some(v)) => {
      if let Some(r) = clean(&v, &format!("the region of profile {profile}"), &mut tried) {
        return found(r, "profile");
      }
    }
    Ok(None) => tried.push(format!("profile {profile} has no region")),
    Err(e) => tried.push(e.message().to_string()),
  }
  match ctx.env.get(ENV_ECS_METADATA_V4) {
    Some(base) => match ecs_task_metadata(&ctx.http, base, deadline).await {
      Ok(r) => return found(r, "ECS task metadata"),
      Err(why) => tried.push(format!("ECS task metadata: {why}")),
    },
    None => tried.push(format!("{ENV_ECS_METADATA_V4} is not set")),
  }
  match imds {
    None => tried.push("IMDS is disabled (AWS_EC2_METADATA_DISABLED=true)".into()),
    Some(imds) => match imds.region(deadline).await {
      Ok(Lookup::Found(r)) if is_valid_region(&r) => return found(r, "IMDS"),
      Ok(Lookup::Found(_)) => tried.push(format!("IMDS: IMDS at {} returned an invalid region", imds.endpoint())),
      Ok(Lookup::Unavailable(why)) => tried.push(why),
      Err(e) => tried.push(format!("IMDS: {}", e.message())),
    },
  }
  let timed_out = deadline.expired();
  let kind = if timed_out { ErrorKind::Timeout } else { ErrorKind::RegionNotFound };
  Err(
    Error::new(kind, format!("could not determine the AWS region; tried: {}", tried.join("; ")))
      .with_hint("set AWS_REGION (or pass { region } to the constructor)"),
  )
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::{EnvSnapshot, ManualClock, OsFs};
  use std::sync::Arc;

  fn ctx(vars: &[(&str, &str)]) -> Context {
    Context::new(EnvSnapshot::from_pairs(vars.iter().copied()), Arc::new(OsFs), Arc::new(ManualClock::at_epoch_secs(0)))
  }

  #[test]
  fn zone_and_arn_parsing() {
    assert_eq!(region_from_zone("us-east-1a").as_deref(), Some("us-east-1"));
    assert_eq!(region_from_zone(" ap-northeast-1c ").as_deref(), Some("ap-northeast-1"));
    assert_eq!(region_from_zone("us-east-1"), None);
    assert_eq!(region_from_zone("us-west-2-lax-1a").as_deref(), Some("us-west-2"), "local zone: the parent region");
    assert_eq!(region_from_zone("us-east-1-wl1-bos-wlz-1").as_deref(), Some("us-east-1"), "wavelength zone");
    assert_eq!(region_from_zone("us-gov-west-1a").as_deref(), Some("us-gov-west-1"));
    assert_eq!(region_from_zone(""), None);
    assert_eq!(region_from_arn("arn:aws:ecs:eu-west-3:123456789012:task/c/abc").as_deref(), Some("eu-west-3"));
    assert_eq!(region_from_arn("arn:aws:ecs::123:task/x"), None);
    assert_eq!(region_from_arn("nope"), None);
    assert_eq!(from_task_metadata(br#"{"AvailabilityZone":"sa-east-1b"}"#).as_deref(), Some("sa-east-1"));
    assert_eq!(
      from_task_metadata(br#"{"TaskARN":"arn:aws:ecs:us-west-2:1:task/a","AvailabilityZone":"eu-west-1a"}"#).as_deref(),
      Some("us-west-2")
    );
  }

  #[tokio::test]
  async fn precedence_option_then_region_then_default_region() {
    let d = Deadline::after(std::time::Duration::from_secs(1));
    let c = ctx(&[(ENV_REGION, "eu-west-1"), (ENV_DEFAULT_REGION, "us-west-2")]);
    assert_eq!(resolve(&c, Some("ap-south-1"), None, d).await.unwrap().region, "ap-south-1");
    assert_eq!(resolve(&c, None, None, d).await.unwrap(), ResolvedRegion { region: "eu-west-1".into(), source: "AWS_REGION" });
    let c = ctx(&[(ENV_DEFAULT_REGION, "us-west-2")]);
    assert_eq!(resolve(&c, None, None, d).await.unwrap().source, "AWS_DEFAULT_REGION");
  }

  #[tokio::test]
  async fn nothing_found_names_every_step() {
    let d = Deadline::after(std::time::Duration::from_secs(1));
    let e = resolve(&ctx(&[(ENV_REGION, "not a region!")]), None, None, d).await.unwrap_err();
    assert_eq!(e.code(), "REGION_NOT_FOUND");
    for part in [
      "AWS_REGION is set but",
      "AWS_DEFAULT_REGION is not set",
      "profile default has no region",
      "ECS_CONTAINER_METADATA_URI_V4 is not set",
      "IMDS is disabled",
    ] {
      assert!(e.message().contains(part), "{e}");
    }
  }

  #[tokio::test]
  async fn profile_region_after_the_environment_and_one_normalisation_for_sts() {
    let dir = std::env::temp_dir().join(format!("aws-wif-region-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(&config, "[default]\nregion = eu-north-1\n[profile dev]\nregion =  AP-Southeast-2 \n").unwrap();
    let cfg = config.to_str().unwrap();
    let d = Deadline::after(std::time::Duration::from_secs(1));
    let base = [("AWS_CONFIG_FILE", cfg), ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/k")];
    let with = |extra: &[(&'static str, &'static str)]| {
      let mut v: Vec<(&str, &str)> = base.to_vec();
      v.extend_from_slice(extra);
      ctx(&v)
    };
    assert_eq!(resolve(&with(&[]), None, None, d).await.unwrap(), ResolvedRegion { region: "eu-north-1".into(), source: "profile" });
    assert_eq!(resolve(&with(&[("AWS_PROFILE", "dev")]), None, None, d).await.unwrap().region, "ap-southeast-2");
    assert_eq!(resolve(&with(&[(ENV_DEFAULT_REGION, "us-west-1")]), None, None, d).await.unwrap().source, "AWS_DEFAULT_REGION");
    // The STS region: option, AWS_REGION, profile, us-east-1; normalised the same way.
    assert_eq!(sts_region(&with(&[(ENV_REGION, " EU-WEST-3 ")]), None), "eu-west-3");
    assert_eq!(sts_region(&with(&[(ENV_REGION, "not a region")]), None), "eu-north-1", "an invalid AWS_REGION is skipped");
    assert_eq!(sts_region(&with(&[(ENV_REGION, "eu-west-3")]), Some("ca-central-1")), "ca-central-1");
    assert_eq!(sts_region(&with(&[(ENV_DEFAULT_REGION, "us-west-1")]), None), "eu-north-1", "AWS_DEFAULT_REGION is not the JS SDK's");
    assert_eq!(sts_region(&ctx(&[("AWS_CONFIG_FILE", "/nonexistent/c")]), None), "us-east-1");
    std::fs::remove_dir_all(&dir).unwrap();
  }
}
