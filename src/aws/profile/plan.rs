//! What the profile link will do, as data: the outcome of the walk ([`super::walk`]) and the
//! names the profile modules share. A leaf: it imports nothing from its siblings, so that the walk,
//! `credential_process` ([`super::process`]), the AWS STS calls ([`crate::aws::sts`]) and the link
//! ([`super`]) can all name these types without importing one another.

use crate::aws::credentials::AwsCredentials;

/// The link's name (in `doctor`, messages and [`AwsCredentials::source`] of what aws-config loads).
pub const LINK: &str = "profile";
/// The profile key that holds a `credential_process` command.
pub const PROCESS_KEY: &str = "credential_process";
/// [`AwsCredentials::source`] of credentials from a `credential_process` command.
pub const PROCESS_SOURCE: &str = "credential_process";

/// [`AwsCredentials::source`] of a profile's static keys.
pub const STATIC_SOURCE: &str = "profile";

/// Where a role chain gets its first credentials, or what the selected profile itself gives.
#[derive(Clone)]
pub enum Base {
  /// A `credential_process` profile, and its command ([`super::process`] runs it).
  Process { profile: String, command: String },
  /// A profile's static keys.
  StaticKeys { profile: String, credentials: AwsCredentials },
  /// A web-identity profile ([`super::load`] sends it through [`crate::aws::sts`]).
  WebIdentity(WebIdentityProfile),
  /// A profile's `credential_source`, which the chain's own link of that name loads
  /// (`Environment`, `EcsContainer`, `Ec2InstanceMetadata`: each link's
  /// `Link::CREDENTIAL_SOURCE`; anything else is `CONFIG_INVALID` when loaded).
  CredentialSource { profile: String, source: String },
  /// An SSO or `aws login` profile, which aws-config's profile provider loads; `what` it is.
  Profile { profile: String, what: &'static str },
}

impl Base {
  /// The profile the base comes from.
  pub fn profile(&self) -> &str {
    match self {
      Base::Process { profile, .. }
      | Base::StaticKeys { profile, .. }
      | Base::CredentialSource { profile, .. }
      | Base::Profile { profile, .. } => profile,
      Base::WebIdentity(w) => &w.profile,
    }
  }

  /// What it is, for `doctor`: `static keys`, `credential_process`, `credential_source EcsContainer`…
  pub fn what(&self) -> String {
    match self {
      Base::Process { .. } => "credential_process".to_string(),
      Base::StaticKeys { .. } => "static keys".to_string(),
      Base::WebIdentity(_) => "web identity".to_string(),
      Base::CredentialSource { source, .. } => format!("credential_source {source}"),
      Base::Profile { what, .. } => what.to_string(),
    }
  }
}

/// `Debug` names the profile and the kind, never the command or the keys.
impl std::fmt::Debug for Base {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let kind = match self {
      Base::Process { .. } => "Process",
      Base::StaticKeys { .. } => "StaticKeys",
      Base::WebIdentity(_) => "WebIdentity",
      Base::CredentialSource { .. } => "CredentialSource",
      Base::Profile { .. } => "Profile",
    };
    f.debug_struct(kind).field("profile", &self.profile()).finish_non_exhaustive()
  }
}

/// A profile with `role_arn` and `web_identity_token_file`.
#[derive(Debug, Clone)]
pub struct WebIdentityProfile {
  pub profile: String,
  pub role_arn: String,
  pub token_file: String,
  pub session_name: Option<String>,
}

/// What this crate does for the selected profile: the base, and the roles to assume with its
/// credentials, innermost (assumed first) first. No roles: the base is the selected profile's own.
#[derive(Debug, Clone)]
pub struct Plan {
  pub base: Base,
  pub roles: Vec<RoleHop>,
  /// The source profiles followed, in order (for `doctor`).
  pub via: Vec<String>,
  /// The selected profile's `region` (a role chain's AWS STS region may come from it).
  pub region: Option<String>,
}

/// The outcome of the walk (see the module docs).
#[derive(Debug)]
pub enum Walk {
  /// This crate loads the profile, by the plan.
  Ours(Plan),
  /// aws-config's profile provider loads the selected profile, or reports what is wrong with it.
  /// `via`: the source profiles followed when it is a role chain (`None`: a single profile);
  /// `what`: what the profile is, or what is wrong (for `doctor`).
  AwsConfig { via: Option<Vec<String>>, what: String },
  /// Nothing the JavaScript SDK would use: the chain passes to its next link.
  NoCredentials,
}

/// One role of a profile chain: the profile that has `role_arn`, and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleHop {
  pub profile: String,
  pub role_arn: String,
  pub external_id: Option<String>,
  pub session_name: Option<String>,
  /// The profile's `duration_seconds`, as written (checked by [`crate::aws::sts::duration_seconds`]).
  pub duration_seconds: Option<String>,
  /// The profile's `mfa_serial` (refused by [`crate::aws::sts::check_mfa`]).
  pub mfa_serial: Option<String>,
}
