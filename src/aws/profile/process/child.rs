//! Running a `credential_process` command: the shell, the process group, the non-blocking read
//! of its stdout and the polling loop (see [`super`]'s module docs for the rules).

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::http::Deadline;

use super::{MAX_OUTPUT_BYTES, POLL_INTERVAL};

/// Why a command gave no usable stdout. Carries no output.
#[derive(Debug)]
pub(super) enum Failure {
  Start(String),
  TimedOut,
  Cancelled,
  TooLarge,
  Exit(Option<i32>),
}

/// The command, run through the platform's shell as `child_process.exec` does.
fn shell(command: &str) -> Command {
  #[cfg(windows)]
  {
    use std::os::windows::process::CommandExt;
    let mut c = Command::new("cmd.exe");
    c.args(["/d", "/s", "/c"]).raw_arg(format!("\"{command}\""));
    c
  }
  #[cfg(not(windows))]
  {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(command);
    #[cfg(unix)]
    {
      use std::os::unix::process::CommandExt;
      c.process_group(0);
    }
    c
  }
}

/// A started command. Its leader is reaped only after its process group was killed; dropping it
/// before then kills the group and reaps the leader.
struct Running {
  child: Child,
  reaped: bool,
}

impl Running {
  /// The leader's exit status, once it has exited. On Unix the group is killed first (see the
  /// module docs), while the unreaped leader still holds the group id.
  fn finished(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
    if self.reaped {
      return Ok(None);
    }
    #[cfg(unix)]
    {
      if !leader_exited(self.child.id())? {
        return Ok(None);
      }
      self.kill_group();
    }
    let status = self.child.try_wait()?;
    self.reaped = status.is_some();
    Ok(status)
  }

  /// SIGKILL to the process group this (not yet reaped) child leads.
  fn kill_group(&self) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(self.child.id()) {
      if !self.reaped && pid > 0 {
        // SAFETY: kill(2) on the process group this child leads; the child is not reaped yet, so
        // its group id cannot have been reused.
        unsafe {
          libc::kill(-pid, libc::SIGKILL);
        }
      }
    }
  }
}

impl Drop for Running {
  fn drop(&mut self) {
    if self.reaped {
      return; // `finished` killed the group before it reaped the leader.
    }
    self.kill_group();
    let _ = self.child.kill();
    let _ = self.child.wait();
    self.reaped = true;
  }
}

/// Whether the leader `pid` has exited, without reaping it (`waitid` with `WNOWAIT`).
#[cfg(unix)]
fn leader_exited(pid: u32) -> std::io::Result<bool> {
  // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
  let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
  // SAFETY: waitid(2) on our own child, writing into `info`, which lives across the call.
  let r = unsafe { libc::waitid(libc::P_PID, libc::id_t::from(pid), &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
  if r == -1 {
    let e = std::io::Error::last_os_error();
    return if e.kind() == std::io::ErrorKind::Interrupted { Ok(false) } else { Err(e) };
  }
  // With WNOHANG and no exited child, waitid returns 0 and leaves si_signo 0 (POSIX).
  Ok(info.si_signo != 0)
}

/// The command's stdout, read as it arrives.
struct Output {
  bytes: Vec<u8>,
  eof: bool,
  source: OutputSource,
}

/// Unix: the pipe, non-blocking, read by the polling thread itself (so that "nothing more to read
/// now" is known exactly).
#[cfg(unix)]
type OutputSource = std::fs::File;

/// Elsewhere: chunks from a reader thread (an empty chunk is the end of file). If a process the
/// command started keeps the pipe open, that thread lingers until it closes; the load does not
/// wait for it.
#[cfg(not(unix))]
type OutputSource = std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>;

impl Output {
  #[cfg(unix)]
  fn start(pipe: std::process::ChildStdout) -> std::result::Result<Output, Failure> {
    let fd = std::os::fd::OwnedFd::from(pipe);
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl(2) on a descriptor we own.
    let ok = unsafe {
      let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
      flags != -1 && libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) != -1
    };
    if !ok {
      return Err(Failure::Start(format!("its output could not be read: {}", std::io::Error::last_os_error().kind())));
    }
    Ok(Output { bytes: Vec::new(), eof: false, source: std::fs::File::from(fd) })
  }

  #[cfg(not(unix))]
  fn start(mut pipe: std::process::ChildStdout) -> std::result::Result<Output, Failure> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
      .name("aws-wif-supplier-process".into())
      .spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
          match pipe.read(&mut buf) {
            Ok(0) => {
              let _ = tx.send(Ok(Vec::new()));
              return;
            }
            Ok(n) => {
              if tx.send(Ok(buf.get(..n).unwrap_or_default().to_vec())).is_err() {
                return;
              }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
              let _ = tx.send(Err(e));
              return;
            }
          }
        }
      })
      .map_err(|e| Failure::Start(format!("no thread to read its output: {e}")))?;
    Ok(Output { bytes: Vec::new(), eof: false, source: rx })
  }

  fn add(&mut self, chunk: &[u8]) -> std::result::Result<(), Failure> {
    self.bytes.extend_from_slice(chunk);
    if self.bytes.len() > MAX_OUTPUT_BYTES {
      return Err(Failure::TooLarge);
    }
    Ok(())
  }

  /// Take in everything that can be read now.
  #[cfg(unix)]
  fn pump(&mut self) -> std::result::Result<(), Failure> {
    let mut buf = [0u8; 8192];
    while !self.eof {
      match self.source.read(&mut buf) {
        Ok(0) => self.eof = true,
        Ok(n) => self.add(buf.get(..n).unwrap_or_default())?,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
        Err(e) => return Err(Failure::Start(format!("its output could not be read: {}", e.kind()))),
      }
    }
    Ok(())
  }

  /// Take in everything the reader thread has sent.
  #[cfg(not(unix))]
  fn pump(&mut self) -> std::result::Result<(), Failure> {
    while !self.eof {
      match self.source.try_recv() {
        Ok(Ok(chunk)) if chunk.is_empty() => self.eof = true,
        Ok(Ok(chunk)) => self.add(&chunk)?,
        Ok(Err(e)) => return Err(Failure::Start(format!("its output could not be read: {}", e.kind()))),
        Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(()),
        Err(std::sync::mpsc::TryRecvError::Disconnected) => return Err(Failure::Start("its output could not be read".into())),
      }
    }
    Ok(())
  }

  /// Called after the leader exited and a [`Self::pump`]: is the output complete (module docs)?
  fn complete(&self) -> bool {
    self.eof || (cfg!(unix) && serde_json::from_slice::<Value>(self.bytes.trim_ascii()).is_ok())
  }
}

/// Run the command to completion on this (blocking) thread. Returns its stdout.
pub(super) fn run(command: &str, deadline: Deadline, cancel: &AtomicBool) -> std::result::Result<Vec<u8>, Failure> {
  let mut cmd = shell(command);
  cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
  let child = cmd.spawn().map_err(|e| Failure::Start(e.kind().to_string()))?;
  let mut running = Running { child, reaped: false };
  let pipe = running.child.stdout.take().ok_or_else(|| Failure::Start("no stdout pipe".into()))?;
  let mut output = Output::start(pipe)?;
  let mut status: Option<std::process::ExitStatus> = None;
  loop {
    if cancel.load(Ordering::SeqCst) {
      return Err(Failure::Cancelled);
    }
    if status.is_none() {
      status = running.finished().map_err(|e| Failure::Start(format!("it could not be waited for: {}", e.kind())))?;
    }
    // After `finished`: once the leader has exited, everything it printed is in the pipe.
    output.pump()?;
    if let Some(s) = status {
      if !s.success() {
        return Err(Failure::Exit(s.code()));
      }
      if output.complete() {
        return Ok(std::mem::take(&mut output.bytes));
      }
    }
    if deadline.expired() {
      return Err(Failure::TimedOut);
    }
    std::thread::sleep(POLL_INTERVAL.min(deadline.remaining()));
  }
}
