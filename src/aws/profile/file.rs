//! The shared config and credentials files, read by us for what aws-config is not asked for: which
//! files exist, which profile is selected, and single properties (`region`, `credential_process`…).
//!
//! Spec (AWS SDKs and Tools reference, "Shared config and credentials files"; aws-config
//! `profile/parser`; the JavaScript SDK's `@smithy/shared-ini-file-loader`):
//! * Paths: `AWS_CONFIG_FILE` (default `~/.aws/config`) and `AWS_SHARED_CREDENTIALS_FILE`
//!   (default `~/.aws/credentials`). A leading `~` (`~`, `~/…`, `~\…`) is the home directory, as
//!   aws-config expands it.
//! * Home: `HOME`, else `USERPROFILE` (Windows), else `HOMEDRIVE` + `HOMEPATH`.
//! * Profile: `AWS_PROFILE`, else [`DEFAULT_PROFILE`]. In the config file a profile is
//!   `[profile NAME]` (`[default]` or `[profile default]` for the default one); in the
//!   credentials file it is `[NAME]`. The credentials file wins for a property in both.
//! * Lines: `key = value`; `#` and `;` start comments (a `;` or `#` inside a value only after
//!   whitespace); keys are compared case-insensitively; indented lines continue a value (only
//!   the first line matters for the properties read here).
//! * A file that does not exist is absent. A file that exists but cannot be read (permissions, a
//!   directory) is **not** silently skipped: [`read`] reports it, and the profile link fails with
//!   `CONFIG_INVALID` naming the path.

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};

pub const ENV_CONFIG_FILE: &str = "AWS_CONFIG_FILE";
pub const ENV_CREDENTIALS_FILE: &str = "AWS_SHARED_CREDENTIALS_FILE";
pub const ENV_PROFILE: &str = "AWS_PROFILE";
pub const DEFAULT_PROFILE: &str = "default";

/// The home directory of this environment.
pub fn home(ctx: &Context) -> Option<PathBuf> {
  if let Some(h) = ctx.env.get("HOME") {
    return Some(PathBuf::from(h));
  }
  if let Some(h) = ctx.env.get("USERPROFILE") {
    return Some(PathBuf::from(h));
  }
  match (ctx.env.get("HOMEDRIVE"), ctx.env.get("HOMEPATH")) {
    (Some(d), Some(p)) => Some(PathBuf::from(format!("{d}{p}"))),
    _ => None,
  }
}

/// `~`, `~/x` and `~\x` expanded against `home`; anything else as given.
pub fn expand_home(path: &str, home: Option<&Path>) -> Option<PathBuf> {
  let rest = if path == "~" { Some("") } else { path.strip_prefix("~/").or_else(|| path.strip_prefix("~\\")) };
  match rest {
    Some(r) => home.map(|h| if r.is_empty() { h.to_path_buf() } else { h.join(r) }),
    None => Some(PathBuf::from(path)),
  }
}

/// The config and credentials file paths this environment points at.
pub fn paths(ctx: &Context) -> (Option<PathBuf>, Option<PathBuf>) {
  let home = home(ctx);
  let pick = |var: &str, default: &str| match ctx.env.get(var) {
    Some(p) => expand_home(p.trim(), home.as_deref()),
    None => home.as_ref().map(|h| h.join(default)),
  };
  (pick(ENV_CONFIG_FILE, ".aws/config"), pick(ENV_CREDENTIALS_FILE, ".aws/credentials"))
}

/// The selected profile's name.
pub fn profile_name(ctx: &Context) -> &str {
  ctx.env.get(ENV_PROFILE).map(str::trim).unwrap_or(DEFAULT_PROFILE)
}

/// The file's contents; `Ok(None)` when it does not exist; an error when it exists but cannot be read.
pub fn read(ctx: &Context, path: &Path) -> Result<Option<String>> {
  match ctx.fs.read(path) {
    Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
    Err(e) => Err(
      Error::new(ErrorKind::ConfigInvalid, format!("the AWS shared profile file {} cannot be read: {e}", path.display()))
        .with_hint("fix its permissions, or point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE elsewhere"),
    ),
  }
}

/// Which section names `profile` in a file of this kind.
fn section_matches(header: &str, profile: &str, config_file: bool) -> bool {
  let words: Vec<&str> = header.split_whitespace().collect();
  match (config_file, words.as_slice()) {
    (true, ["profile", name]) => *name == profile,
    (true, [name]) => *name == DEFAULT_PROFILE && profile == DEFAULT_PROFILE,
    (false, [name]) => *name == profile,
    _ => false,
  }
}

/// The value of `key` in `profile`'s section of one file's text (an empty value counts as unset,
/// as the JavaScript SDK's parser never stores one). In the config file, `[default]` is ignored
/// when `[profile default]` exists, as in both SDKs.
pub fn property_in(text: &str, profile: &str, key: &str, config_file: bool) -> Option<String> {
  let profile_default = config_file
    && profile == DEFAULT_PROFILE
    && text.lines().any(|l| {
      let t = l.trim();
      t.starts_with('[')
        && t.trim_start_matches('[').split(']').next().is_some_and(|h| h.split_whitespace().eq(["profile", DEFAULT_PROFILE]))
    });
  let mut in_section = false;
  let mut found = None;
  for raw in text.lines() {
    let line = raw.trim_end();
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
      continue;
    }
    if let Some(header) = trimmed.strip_prefix('[') {
      let header = header.split(']').next().unwrap_or_default().trim();
      in_section = section_matches(header, profile, config_file) && !(profile_default && header == DEFAULT_PROFILE);
      continue;
    }
    if !in_section || line.starts_with(char::is_whitespace) {
      continue; // another section, or a continuation / sub-property line
    }
    let Some((k, v)) = trimmed.split_once('=') else { continue };
    if k.trim().eq_ignore_ascii_case(key) {
      let v = strip_comment(v.trim());
      found = (!v.is_empty()).then(|| v.to_string());
    }
  }
  found
}

/// A ` #…` or ` ;…` comment after a value (only after whitespace, as the SDKs parse it).
fn strip_comment(v: &str) -> &str {
  let mut prev_ws = false;
  for (i, c) in v.char_indices() {
    if (c == '#' || c == ';') && prev_ws {
      return v[..i].trim_end();
    }
    prev_ws = c.is_whitespace();
  }
  v
}

/// The selected profile's sections, read once: the credentials file and the config file.
pub struct Profiles {
  profile: String,
  credentials: Option<String>,
  config: Option<String>,
}

impl Profiles {
  /// Read both files. Unreadable files are errors; missing ones are skipped.
  pub fn load(ctx: &Context) -> Result<Profiles> {
    let (config, credentials) = paths(ctx);
    let read_opt = |p: Option<PathBuf>| -> Result<Option<String>> {
      match p {
        Some(p) => read(ctx, &p),
        None => Ok(None),
      }
    };
    Ok(Profiles { profile: profile_name(ctx).to_string(), credentials: read_opt(credentials)?, config: read_opt(config)? })
  }

  /// The selected profile's `key`, from the credentials file, else the config file.
  pub fn get(&self, key: &str) -> Option<String> {
    self.get_in(&self.profile, key)
  }

  /// Profile `name`'s `key`, from the credentials file, else the config file.
  pub fn get_in(&self, name: &str, key: &str) -> Option<String> {
    let from = |text: &Option<String>, config_file: bool| text.as_deref().and_then(|t| property_in(t, name, key, config_file));
    from(&self.credentials, false).or_else(|| from(&self.config, true))
  }
}

/// The selected profile's `key`, from the credentials file, else the config file. Unreadable
/// files are errors; missing ones are skipped.
pub fn property(ctx: &Context, key: &str) -> Result<Option<String>> {
  Ok(Profiles::load(ctx)?.get(key))
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
  fn profile_default_hides_default_in_the_config_file_and_empty_values_are_unset() {
    assert_eq!(property_in("[default]\nregion = eu-west-1\n", "default", "region", true).as_deref(), Some("eu-west-1"));
    let both = "[default]\nregion = eu-west-1\n[profile default]\noutput = json\n";
    assert_eq!(property_in(both, "default", "region", true), None, "[profile default] wins");
    assert_eq!(
      property_in("[ profile  default ]\nregion = us-west-2\n[default]\nregion = eu-west-1\n", "default", "region", true).as_deref(),
      Some("us-west-2")
    );
    assert_eq!(
      property_in("[default]\nregion = eu-west-1\n[profile default]\n", "default", "region", false).as_deref(),
      Some("eu-west-1"),
      "credentials file: [default] is the profile"
    );
    assert_eq!(property_in("[profile app]\nregion =\n", "app", "region", true), None);
  }

  #[test]
  fn paths_expand_tilde_and_fall_back_to_userprofile() {
    let c = ctx(&[("HOME", "/home/u"), ("AWS_CONFIG_FILE", "~/cfg/aws"), ("AWS_SHARED_CREDENTIALS_FILE", "~")]);
    assert_eq!(paths(&c), (Some(PathBuf::from("/home/u/cfg/aws")), Some(PathBuf::from("/home/u"))));
    let c = ctx(&[("USERPROFILE", "C:\\Users\\u")]);
    assert_eq!(paths(&c).0, Some(PathBuf::from("C:\\Users\\u").join(".aws/config")));
    let c = ctx(&[("HOMEDRIVE", "D:"), ("HOMEPATH", "\\u")]);
    assert_eq!(paths(&c).1, Some(PathBuf::from("D:\\u").join(".aws/credentials")));
    let c = ctx(&[("AWS_CONFIG_FILE", "/abs/config")]);
    assert_eq!(paths(&c), (Some(PathBuf::from("/abs/config")), None));
  }

  #[test]
  fn properties_by_profile_and_file_kind() {
    let config = "[default]\nregion = us-east-1\n[profile dev]\nRegion=eu-west-1 ; comment\ns3 =\n  region = nested-ignored\n[dev]\nregion = not-in-config-syntax\n";
    assert_eq!(property_in(config, "default", "region", true).as_deref(), Some("us-east-1"));
    assert_eq!(property_in(config, "dev", "region", true).as_deref(), Some("eu-west-1"));
    assert_eq!(property_in(config, "other", "region", true), None);
    let creds = "[dev]\naws_access_key_id = AKID\n[default]\nregion = ap-south-1\n";
    assert_eq!(property_in(creds, "dev", "aws_access_key_id", false).as_deref(), Some("AKID"));
    assert_eq!(property_in(creds, "default", "region", false).as_deref(), Some("ap-south-1"));
    assert_eq!(strip_comment("a#b # c"), "a#b");
  }

  #[test]
  fn unreadable_files_are_reported_not_skipped() {
    let dir = std::env::temp_dir().join(format!("aws-wif-pf-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("config")).unwrap(); // a directory where a file is expected
    let c = ctx(&[("AWS_CONFIG_FILE", dir.join("config").to_str().unwrap()), ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/x")]);
    let e = property(&c, "region").unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID");
    assert!(e.message().contains("cannot be read"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
  }
}
