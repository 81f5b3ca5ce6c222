//! `credential_process` profiles (part of the profile link): the command is run here, not by
//! aws-config.
//!
//! aws-config 1.13's provider (its `credentials-process` feature, not compiled in) has no time
//! bound, does not kill the command when the call is dropped, and copies the command's stderr into
//! its error text. This one follows the JavaScript SDK (`@aws-sdk/credential-provider-process`,
//! what users of `fromNodeProviderChain()` replace) and adds the bounds.
//!
//! * **Which profile**: the selected one, `AWS_PROFILE` or `default` (config file `[profile NAME]`
//!   / `[default]`, credentials file `[NAME]`, the credentials file winning key by key), parsed by
//!   aws-config's own profile parser over the snapshot's files and variables. The command runs
//!   when the profile has `credential_process` ([`KEY`]) and none of what the JavaScript SDK's ini
//!   provider tries before it (a role hop, static keys, web identity: [`super::walk`]
//!   walks the profiles in that order). The JavaScript SDK tries `credential_process` before SSO
//!   and `login_session`, so a profile that has both runs the command (aws-config would use SSO).
//! * **Reached through `source_profile`**: the base of a role chain ([`super::walk`]
//!   walks the chain, [`crate::aws::sts`] assumes its roles; the command's credentials sign the first `AssumeRole`).
//! * **How it runs**: as the JavaScript SDK's `child_process.exec` runs it, through a shell:
//!   `/bin/sh -c <command>` on Unix (aws-config 1.13 also uses `sh -c`), `cmd.exe /d /s /c
//!   "<command>"` on Windows. Quotes, variables and pipes are the shell's. On Unix the command is the
//!   leader of its own process group, so that the whole group can be killed; a consequence is that
//!   it cannot read from the terminal (stdin is `/dev/null` anyway).
//! * **Environment**: the OS process environment and working directory, as `exec` passes them.
//!   Not the environment snapshot: a worker thread started with its own `env` does not hand it to
//!   the command (the JavaScript SDK would pass that thread's `process.env`).
//! * **Output**: stdout, at most [`MAX_OUTPUT_BYTES`] (more is an error and the command is killed),
//!   trimmed, then the JSON document
//!   `{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken"?, "Expiration"?: RFC 3339,
//!   "AccountId"?}`; keys case-insensitive as in aws-config, `Version` must be a JSON number equal
//!   to 1 (`1`, `1.0`: the JavaScript SDK checks `Version !== 1`, botocore accepts `1.0` too),
//!   credentials already expired are refused. stderr is discarded (`/dev/null`): it is never read,
//!   so it can never reach a message or a log. Nothing the command prints is ever shown.
//! * **Time**: the chain's [`Deadline`]. The command runs on a blocking thread (std::process, not
//!   tokio's `process` feature, whose SIGCHLD handler would compete with libuv's) that polls it
//!   every [`POLL_INTERVAL`], reading its stdout without blocking.
//! * **When the command is done, and the process group**: the command is *done* when its leader
//!   (the shell) has exited. Its output is *complete* when, after that, stdout is at end of file,
//!   or, on Unix, stdout has nothing more to read now and what was read is one JSON document (a
//!   process the command left behind may have inherited stdout and keep it open: `helper &`; what
//!   the leader printed is then used at once). A leader that exits with a non-zero status fails
//!   the call at once. Whatever ends the call (the leader exiting, the deadline, the load being
//!   dropped), on Unix the whole process group is killed (`kill(-pgid, SIGKILL)`) before the
//!   leader is reaped: its exit is first observed with `waitid(WNOWAIT)`, which leaves it a zombie,
//!   so the group id (its pid) cannot have been reused when the group is signalled. Nothing the
//!   command started in its group outlives the call; only a process that left the group (`setsid`)
//!   can. On Windows only the shell is killed.
//! * **Errors**, each naming the profile (never the command, which may hold secrets):
//!   `CONFIG_INVALID` (empty command, no shell to run it), `CREDENTIALS_ENDPOINT_ERROR` (non-zero
//!   exit or killed by a signal), `INVALID_CREDENTIALS_RESPONSE` (too much output, not JSON, wrong
//!   Version, missing or malformed fields), `CREDENTIALS_EXPIRED`, `TIMEOUT`.

mod child;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::aws::credentials::{ensure_not_expired, field, string_field, AwsCredentials};
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;
use crate::redact::Secret;

/// The profile key that holds the command, and the source of its credentials.
pub use super::plan::{PROCESS_KEY as KEY, PROCESS_SOURCE as SOURCE};
use child::{run, Failure};

/// The most stdout a command may print (a credentials document is a few hundred bytes).
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;
/// How often the blocking thread checks the command, the deadline and cancellation.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Run `command`, the `credential_process` of `profile`, and read its credentials, within
/// `deadline`. The command is never shown.
pub async fn load(ctx: &Context, profile: &str, command: &str, deadline: Deadline) -> Result<AwsCredentials> {
  let origin = format!("profile {profile}: {KEY}");
  if command.trim().is_empty() {
    return Err(Error::new(ErrorKind::ConfigInvalid, format!("{origin} is empty")));
  }
  let bound = deadline.remaining();
  if bound.is_zero() {
    return Err(Error::new(ErrorKind::Timeout, format!("{origin} was not started: no time left")));
  }
  let cancel = Arc::new(AtomicBool::new(false));
  let _cancel_on_drop = CancelOnDrop(cancel.clone());
  let command = command.to_string();
  let outcome = tokio::task::spawn_blocking(move || run(&command, deadline, &cancel))
    .await
    .map_err(|_| Error::new(ErrorKind::Internal, format!("{origin}: the thread that ran the command failed")))?;
  let stdout = match outcome {
    Ok(stdout) => stdout,
    Err(Failure::TimedOut | Failure::Cancelled) => {
      return Err(Error::new(ErrorKind::Timeout, format!("{origin} did not finish within {} ms and was killed", bound.as_millis())))
    }
    Err(Failure::Start(why)) => {
      return Err(Error::new(ErrorKind::ConfigInvalid, format!("{origin} could not be started ({why})")).not_retryable())
    }
    Err(Failure::TooLarge) => {
      return Err(Error::new(ErrorKind::InvalidCredentialsResponse, format!("{origin} printed more than {MAX_OUTPUT_BYTES} bytes")))
    }
    Err(Failure::Exit(code)) => {
      let how = match code {
        Some(c) => format!("exited with status {c}"),
        None => "was killed by a signal".to_string(),
      };
      let err = Error::new(ErrorKind::CredentialsEndpointError, format!("{origin} {how} (its output is not shown: it may hold secrets)"));
      return Err(match code {
        Some(126 | 127) => err.with_hint("the shell could not find or execute the command; check the path in credential_process"),
        _ => err,
      });
    }
  };
  parse_output(&stdout, profile, ctx.clock.now())
}

/// Parse what a command printed (see the module docs for the shape).
pub fn parse_output(stdout: &[u8], profile: &str, now: SystemTime) -> Result<AwsCredentials> {
  let origin = format!("profile {profile}: {KEY}");
  let invalid = |what: &str| Error::new(ErrorKind::InvalidCredentialsResponse, format!("{origin} {what}"));
  let text = std::str::from_utf8(stdout).map_err(|_| invalid("printed output that is not UTF-8"))?;
  let value: Value = serde_json::from_str(text.trim()).map_err(|_| invalid("printed output that is not a JSON document"))?;
  let Value::Object(obj) = value else {
    return Err(invalid("printed JSON that is not an object"));
  };
  match field(&obj, &["Version"]) {
    Some(Value::Number(n)) if n.as_f64() == Some(1.0) => {}
    Some(Value::Number(n)) => return Err(invalid(&format!("printed Version {n}; only Version 1 is supported"))),
    Some(_) => return Err(invalid("printed a Version that is not a number; only Version 1 is supported")),
    None => return Err(invalid("printed no Version; only Version 1 is supported")),
  }
  let strings = |names: &[&str], what: &str| string_field(&obj, names, what).map_err(|e| e.context(&origin));
  let ak = strings(&["AccessKeyId"], "AccessKeyId")?;
  let sk = strings(&["SecretAccessKey"], "SecretAccessKey")?;
  let (Some(ak), Some(sk)) = (ak, sk) else {
    return Err(invalid("printed credentials without AccessKeyId or SecretAccessKey"));
  };
  let expiration = match strings(&["Expiration"], "Expiration")? {
    None => None,
    Some(e) => Some(crate::time::parse_rfc3339(&e).ok_or_else(|| invalid("printed an Expiration that is not an RFC 3339 date-time"))?),
  };
  let creds = AwsCredentials {
    access_key_id: ak,
    secret_access_key: Secret::new(sk),
    session_token: strings(&["SessionToken"], "SessionToken")?.map(Secret::new),
    expiration,
    account_id: strings(&["AccountId"], "AccountId")?,
    source: SOURCE,
  };
  ensure_not_expired(creds, now, &origin)
}

/// Sets the flag the blocking thread polls when the load is dropped (or done).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
  fn drop(&mut self) {
    self.0.store(true, Ordering::SeqCst);
  }
}

#[cfg(unix)]
#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::{EnvSnapshot, ManualClock, OsFs};
  use std::os::unix::fs::PermissionsExt;
  use std::path::PathBuf;

  const NOW: u64 = 1_700_000_000;

  struct Dir(PathBuf);
  impl Drop for Dir {
    fn drop(&mut self) {
      let _ = std::fs::remove_dir_all(&self.0);
    }
  }

  fn dir(name: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("aws-wif-process-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Dir(d)
  }

  /// Writes an executable script and a config whose profile `proc` runs it.
  fn setup(d: &Dir, script: &str, extra: &str) -> Context {
    let path = d.0.join("cred helper.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = d.0.join("config");
    std::fs::write(&config, format!("[profile proc]\ncredential_process = \"{}\" --flag 'two words'\n{extra}", path.display())).unwrap();
    let vars = [
      ("AWS_CONFIG_FILE", config.to_str().unwrap().to_string()),
      ("AWS_SHARED_CREDENTIALS_FILE", d.0.join("none").to_str().unwrap().to_string()),
      ("AWS_PROFILE", "proc".to_string()),
    ];
    Context::new(EnvSnapshot::from_pairs(vars), Arc::new(OsFs), Arc::new(ManualClock::at_epoch_secs(NOW)))
  }

  async fn load_profile(c: &Context, secs: u64) -> Result<Option<AwsCredentials>> {
    let chain = crate::aws::chain::Chain::new(c.clone(), None);
    chain.load_only(crate::aws::profile::LINK, Deadline::after(Duration::from_secs(secs))).await
  }

  fn assert_clean(e: &Error) {
    for text in [e.to_string(), format!("{e:?}")] {
      assert!(!text.contains("MARKER"), "output leaked: {text}");
      assert!(!text.contains("cred helper"), "command leaked: {text}");
      assert!(text.contains("profile proc"), "profile not named: {text}");
    }
  }

  /// Whether `pid` is gone (or a zombie nobody has reaped yet: it no longer runs).
  fn gone(pid: &str) -> bool {
    for _ in 0..200 {
      match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => return true,
        Ok(s) if s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')) => return true,
        Ok(_) => std::thread::sleep(Duration::from_millis(10)),
      }
    }
    false
  }

  #[tokio::test]
  async fn runs_the_command_through_the_shell_with_its_arguments() {
    let d = dir("ok");
    let c = setup(
      &d,
      r#"[ "$1 $2" = "--flag two words" ] || exit 9
echo 'noise on stderr MARKER-STDERR' >&2
printf '  {"Version": 1, "AccessKeyId": "ASIAPROCESSEXAMPLE", "SecretAccessKey": "MARKER-PROCESS-SECRET", "SessionToken": "MARKER-PROCESS-TOKEN", "Expiration": "2030-01-01T00:00:00Z", "AccountId": "123456789012"}\n\n'"#,
      "",
    );
    let creds = load_profile(&c, 5).await.unwrap().unwrap();
    assert_eq!(creds.access_key_id, "ASIAPROCESSEXAMPLE");
    assert_eq!(creds.secret_access_key.expose(), "MARKER-PROCESS-SECRET");
    assert_eq!(creds.session_token.as_ref().unwrap().expose(), "MARKER-PROCESS-TOKEN");
    assert_eq!(creds.account_id.as_deref(), Some("123456789012"));
    assert_eq!(creds.source, SOURCE);
    assert!(creds.expiration.is_some());
    assert!(!format!("{creds:?}").contains("MARKER"));
  }

  #[tokio::test]
  async fn static_credentials_without_session_token_or_expiration() {
    let d = dir("static");
    let c = setup(&d, r#"echo '{"Version":1,"AccessKeyId":"AKIDPROCESSEXAMPLE","SecretAccessKey":"s"}'"#, "");
    let creds = load_profile(&c, 5).await.unwrap().unwrap();
    assert_eq!(creds.session_token, None);
    assert_eq!(creds.expiration, None);
  }

  #[tokio::test]
  async fn a_failing_command_is_an_endpoint_error_without_its_output() {
    let d = dir("exit");
    let c = setup(&d, "echo MARKER-STDOUT-SECRET\necho MARKER-STDERR-SECRET >&2\nexit 3", "");
    let e = load_profile(&c, 5).await.unwrap_err();
    assert_eq!(e.code(), "CREDENTIALS_ENDPOINT_ERROR", "{e}");
    assert!(e.message().contains("exited with status 3"), "{e}");
    assert_clean(&e);
  }

  #[tokio::test]
  async fn a_hung_command_times_out_and_is_killed() {
    let d = dir("hang");
    let pids = d.0.join("pids");
    let c = setup(&d, &format!("echo $$ > '{}'\nsleep 30 &\necho $! >> '{}'\nwait", pids.display(), pids.display()), "");
    let started = std::time::Instant::now();
    let e = load_profile(&c, 1).await.unwrap_err();
    assert_eq!(e.code(), "TIMEOUT", "{e}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_clean(&e);
    let pids = std::fs::read_to_string(&pids).unwrap();
    assert_eq!(pids.lines().count(), 2, "{pids}");
    for pid in pids.lines() {
      assert!(gone(pid), "process {pid} still runs");
    }
  }

  #[tokio::test]
  async fn a_dropped_load_kills_the_command() {
    let d = dir("drop");
    let pids = d.0.join("pids");
    let c = setup(&d, &format!("echo $$ > '{}'\nexec sleep 30", pids.display()), "");
    let dropped = tokio::time::timeout(Duration::from_millis(500), load_profile(&c, 20)).await;
    assert!(dropped.is_err());
    let pid = std::fs::read_to_string(&pids).unwrap();
    assert!(gone(pid.trim()), "process {pid} still runs");
  }

  /// Issue 18, defect 6: a process the command left in the background, holding its stdout, does not
  /// hold up the call or outlive it, and what the command printed is used.
  #[tokio::test]
  async fn a_background_process_is_killed_and_the_printed_credentials_used() {
    let d = dir("background");
    let pids = d.0.join("pids");
    let c = setup(
      &d,
      &format!(
        r#"sleep 37 &
echo $! > '{}'
echo '{{"Version": 1, "AccessKeyId": "ASIABACKGROUNDEXAMPLE", "SecretAccessKey": "s"}}'
exit 0"#,
        pids.display()
      ),
      "",
    );
    let started = std::time::Instant::now();
    let creds = load_profile(&c, 20).await.unwrap().unwrap();
    assert_eq!(creds.access_key_id, "ASIABACKGROUNDEXAMPLE");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let pid = std::fs::read_to_string(&pids).unwrap();
    assert!(gone(pid.trim()), "background process {pid} still runs");

    // Not a JSON document: the group is killed when the leader exits, and the call fails at once
    // (stdout reaches its end) instead of at the deadline.
    let d = dir("background-junk");
    let pids = d.0.join("pids");
    let c = setup(&d, &format!("sleep 37 &\necho $! > '{}'\necho MARKER-NOT-JSON\nexit 0", pids.display()), "");
    let started = std::time::Instant::now();
    let e = load_profile(&c, 20).await.unwrap_err();
    assert_eq!(e.code(), "INVALID_CREDENTIALS_RESPONSE", "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_clean(&e);
    let pid = std::fs::read_to_string(&pids).unwrap();
    assert!(gone(pid.trim()), "background process {pid} still runs");
  }

  /// Issue 18, defect 8: `"Version": 1.0` is Version 1 (as in the JavaScript SDK and botocore).
  #[test]
  fn version_is_any_number_equal_to_one() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
    for version in ["1", "1.0", "1e0", "1.00"] {
      let out = format!(r#"{{"Version": {version}, "AccessKeyId": "A", "SecretAccessKey": "s"}}"#);
      assert!(parse_output(out.as_bytes(), "proc", now).is_ok(), "{version}");
    }
    for version in ["2", "1.5", "0", "-1", "\"1\""] {
      let out = format!(r#"{{"Version": {version}, "AccessKeyId": "A", "SecretAccessKey": "s"}}"#);
      let e = parse_output(out.as_bytes(), "proc", now).unwrap_err();
      assert_eq!(e.code(), "INVALID_CREDENTIALS_RESPONSE", "{version}");
      assert!(e.message().contains("only Version 1 is supported"), "{version}: {e}");
    }
  }

  #[tokio::test]
  async fn oversized_output_is_refused() {
    let d = dir("big");
    let c = setup(&d, "head -c 200000 /dev/zero | tr '\\0' 'M'\necho MARKER", "");
    let e = load_profile(&c, 5).await.unwrap_err();
    assert_eq!(e.code(), "INVALID_CREDENTIALS_RESPONSE", "{e}");
    assert!(e.message().contains("more than 65536 bytes"), "{e}");
    assert_clean(&e);
  }

  #[tokio::test]
  async fn bad_json_and_other_versions_are_refused() {
    for (script, expect) in [
      ("echo '{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"MARKER-S\"'", "not a JSON document"),
      ("echo 'MARKER-NOT-JSON'", "not a JSON document"),
      (r#"echo '{"Version":2,"AccessKeyId":"A","SecretAccessKey":"MARKER-S"}'"#, "Version 2"),
      (r#"echo '{"Version":"1","AccessKeyId":"A","SecretAccessKey":"MARKER-S"}'"#, "not a number"),
      (r#"echo '{"Version":1,"SecretAccessKey":"MARKER-S"}'"#, "without AccessKeyId"),
      (r#"echo '{"Version":1,"AccessKeyId":"A","SecretAccessKey":"MARKER-S","Expiration":"MARKER-soon"}'"#, "RFC 3339"),
    ] {
      let d = dir("json");
      let c = setup(&d, script, "");
      let e = load_profile(&c, 5).await.unwrap_err();
      assert_eq!(e.code(), "INVALID_CREDENTIALS_RESPONSE", "{e}");
      assert!(e.message().contains(expect), "{expect}: {e}");
      assert_clean(&e);
    }
  }

  #[tokio::test]
  async fn expired_credentials_are_refused() {
    let d = dir("expired");
    let c = setup(&d, r#"echo '{"Version":1,"AccessKeyId":"A","SecretAccessKey":"MARKER-S","Expiration":"2020-01-01T00:00:00Z"}'"#, "");
    let e = load_profile(&c, 5).await.unwrap_err();
    assert_eq!(e.code(), "CREDENTIALS_EXPIRED", "{e}");
    assert_clean(&e);
  }

  #[tokio::test]
  async fn what_the_javascript_sdk_tries_before_the_command_wins() {
    for extra in [
      "aws_access_key_id = AKIDSTATICEXAMPLE\naws_secret_access_key = s\n",
      "role_arn = arn:aws:iam::1:role/r\nsource_profile = other\n",
      "web_identity_token_file = /t\nrole_arn = arn:aws:iam::1:role/r\n",
    ] {
      let d = dir("before");
      let c = setup(&d, "exit 1", extra);
      use crate::aws::profile::plan::{Base, Plan, Walk};
      use crate::aws::profile::walk::walk_selected;
      let walk = walk_selected(&c).unwrap();
      assert!(!matches!(walk, Walk::Ours(Plan { base: Base::Process { .. }, .. })), "{extra}: {walk:?}");
    }
    let d = dir("sso-too");
    let c = setup(
      &d,
      r#"echo '{"Version":1,"AccessKeyId":"AKIDPROCESSEXAMPLE","SecretAccessKey":"s"}'"#,
      "sso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 1\nsso_role_name = r\n",
    );
    assert_eq!(load_profile(&c, 5).await.unwrap().unwrap().source, SOURCE, "the JavaScript SDK runs the command before SSO");
  }

  #[tokio::test]
  async fn an_empty_command_is_no_command() {
    // The JavaScript SDK's parser never stores `key =`: the profile has no credentials, and the
    // next link answers.
    let d = dir("empty");
    let c = setup(&d, "", "");
    let config = d.0.join("config");
    std::fs::write(&config, "[profile proc]\ncredential_process =\n").unwrap();
    assert!(load_profile(&c, 5).await.unwrap().is_none());
    // A command that is only blanks inside quotes reaches the loader, which refuses it.
    let e = load(&c, "proc", "  ", Deadline::after(Duration::from_secs(5))).await.unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID", "{e}");
    assert!(e.message().contains("profile proc"), "{e}");
  }
}
