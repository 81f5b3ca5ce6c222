//! File reads under a caller's deadline, off the async workers.
//!
//! A token or profile file may sit on a hung NFS or EFS mount, or be a FIFO with no writer: a
//! plain `read` would then block the runtime worker that runs it, and every caller waiting on that
//! load with it. So a read that happens during a load goes through [`read`]:
//! * it runs on the runtime's blocking pool (`spawn_blocking`), never on an async worker;
//! * the caller waits at most until its [`Deadline`]: then it gets `TIMEOUT` naming the path;
//! * **one read per path at a time**: callers asking for a path whose read has not finished share
//!   it, so a stuck file holds one blocking thread however often it is asked for;
//! * at most [`MAX_STUCK_READS`] distinct paths **stuck** (pending longer than [`STUCK_AFTER`]) at
//!   once (a quarter of the blocking pool, [`crate::runtime::MAX_BLOCKING_THREADS`]; reads that
//!   answer and DNS lookups use the rest): past that a new read is `TIMEOUT` at once rather than
//!   queued behind stuck ones;
//! * a read that finishes late still clears its slot, so the next call reads afresh.
//!
//! [`Preloaded`] is a [`Fs`] over files read that way up front: a load reads the shared profile
//! files once, within its deadline, and the synchronous profile logic then reads them from memory.
//!
//! Synchronous callers (a constructor's plan, `describeAwsChain()`, a credential configuration
//! file named to a factory) run on the JavaScript thread, outside the runtime: [`read_blocking`]
//! reads on a thread of its own and waits at most its timeout, after which the path answers
//! `TimedOut` (one such thread per path at a time; at most [`MAX_STUCK_READS`] stuck).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use once_cell::sync::Lazy;
use tokio::sync::watch;

use crate::context::Context;
use crate::env::Fs;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Deadline;

/// At most this many distinct paths may have a stuck read.
pub const MAX_STUCK_READS: usize = 4;
/// A read pending this long counts as stuck.
pub const STUCK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

type Outcome = std::result::Result<Vec<u8>, (io::ErrorKind, String)>;
type Key = (usize, PathBuf);
/// A batch of paths read in one blocking task, keyed by the `Fs` and the paths.
type BatchKey = (usize, Vec<PathBuf>);
type Pending = HashMap<BatchKey, (watch::Receiver<Option<Vec<Outcome>>>, std::time::Instant)>;

static PENDING: Lazy<Mutex<Pending>> = Lazy::new(Default::default);

fn pending() -> std::sync::MutexGuard<'static, Pending> {
  PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

fn shown(paths: &[PathBuf]) -> String {
  paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Read `path` through `fs` within `deadline` (see the module doc). The outer error is `TIMEOUT`
/// (or `INTERNAL` if the runtime dropped the read); the inner one is the file's own.
pub async fn read(fs: &Arc<dyn Fs>, path: &Path, deadline: Deadline) -> Result<io::Result<Vec<u8>>> {
  let mut all = read_batch(fs, vec![path.to_path_buf()], deadline).await?;
  all.pop().ok_or_else(|| Error::new(ErrorKind::Internal, format!("the read of {} settled without a value", path.display())))
}

/// Read `paths` one after another in **one** blocking task (one thread, however many files), within
/// `deadline`; callers asking for the same batch share it. Outcomes in the order of `paths`.
pub async fn read_batch(fs: &Arc<dyn Fs>, paths: Vec<PathBuf>, deadline: Deadline) -> Result<Vec<io::Result<Vec<u8>>>> {
  let key: BatchKey = (Arc::as_ptr(fs) as *const () as usize, paths.clone());
  let mut rx = {
    let mut map = pending();
    match map.get(&key) {
      Some((rx, _)) => rx.clone(),
      None => {
        if map.values().filter(|(_, since)| since.elapsed() >= STUCK_AFTER).count() >= MAX_STUCK_READS {
          return Err(
            Error::new(
              ErrorKind::Timeout,
              format!("reading {} was not started: {MAX_STUCK_READS} earlier file reads have not finished", shown(&paths)),
            )
            .with_hint("a filesystem of this host does not answer (a hung NFS or EFS mount, or a FIFO with no writer)"),
          );
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.clone(), (rx.clone(), std::time::Instant::now()));
        let (fs, owned) = (fs.clone(), paths.clone());
        tokio::task::spawn_blocking(move || {
          let outcomes: Vec<Outcome> = owned.iter().map(|p| fs.read(p).map_err(|e| (e.kind(), e.to_string()))).collect();
          let mut map = pending();
          if map.get(&key).is_some_and(|(r, _)| r.same_channel(&tx.subscribe())) {
            map.remove(&key);
          }
          drop(map);
          let _ = tx.send(Some(outcomes));
        });
        rx
      }
    }
  };
  let bound = deadline.remaining();
  let settled = tokio::time::timeout(bound, rx.wait_for(Option::is_some)).await.map(|r| r.map(|v| v.clone()));
  match settled {
    Err(_) => Err(
      Error::new(ErrorKind::Timeout, format!("reading {} did not finish in time (bound {} ms)", shown(&paths), bound.as_millis()))
        .with_hint("a filesystem of this host does not answer (a hung NFS or EFS mount, or a FIFO with no writer)"),
    ),
    Ok(Ok(Some(outcomes))) => Ok(outcomes.into_iter().map(|o| o.map_err(|(kind, msg)| io::Error::new(kind, msg))).collect()),
    Ok(Ok(None)) | Ok(Err(_)) => Err(Error::new(ErrorKind::Internal, format!("the read of {} was dropped", shown(&paths)))),
  }
}

type SyncPending = HashMap<Key, std::time::Instant>;
static SYNC_PENDING: Lazy<Mutex<SyncPending>> = Lazy::new(Default::default);

fn sync_pending() -> std::sync::MutexGuard<'static, SyncPending> {
  SYNC_PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Read `path` through `fs` on a thread of its own, waiting at most `timeout` (see the module
/// doc); a read that does not finish in time is `TimedOut`, and so is a path whose earlier read
/// has not finished. The thread is joined when it answers in time, so no thread outlives a read
/// that answered.
pub fn read_blocking(fs: &Arc<dyn Fs>, path: &Path, timeout: std::time::Duration) -> io::Result<Vec<u8>> {
  let timed_out = |why: String| io::Error::new(io::ErrorKind::TimedOut, why);
  let key: Key = (Arc::as_ptr(fs) as *const () as usize, path.to_path_buf());
  {
    let mut map = sync_pending();
    if map.contains_key(&key) {
      return Err(timed_out("an earlier read of this file has not finished".into()));
    }
    if map.values().filter(|since| since.elapsed() >= STUCK_AFTER).count() >= MAX_STUCK_READS {
      return Err(timed_out(format!("{MAX_STUCK_READS} earlier file reads have not finished")));
    }
    map.insert(key.clone(), std::time::Instant::now());
  }
  let (tx, rx) = std::sync::mpsc::channel();
  let (fs, owned, slot) = (fs.clone(), path.to_path_buf(), key.clone());
  let spawned = std::thread::Builder::new().name("aws-wif-supplier-read".into()).spawn(move || {
    let outcome = fs.read(&owned);
    sync_pending().remove(&slot);
    let _ = tx.send(outcome);
  });
  let handle = match spawned {
    Ok(h) => h,
    Err(e) => {
      sync_pending().remove(&key);
      return Err(io::Error::other(format!("no thread could be started to read it ({e})")));
    }
  };
  match rx.recv_timeout(timeout) {
    Ok(outcome) => {
      let _ = handle.join();
      outcome
    }
    Err(_) => Err(timed_out(format!("it did not answer within {} ms (a hung filesystem?)", timeout.as_millis()))),
  }
}

/// `ctx` with `paths` read up front by [`read_blocking`], each within `timeout`: a path that did
/// not answer reads as `TimedOut` (the profile logic reports it like any unreadable file).
pub fn preload_blocking(ctx: &Context, paths: impl IntoIterator<Item = PathBuf>, timeout: std::time::Duration) -> Context {
  let started = std::time::Instant::now();
  let mut files = HashMap::new();
  for path in paths {
    if files.contains_key(&path) {
      continue;
    }
    let left = timeout.saturating_sub(started.elapsed());
    let outcome = read_blocking(&ctx.fs, &path, left).map_err(|e| (e.kind(), e.to_string()));
    files.insert(path, outcome);
  }
  let mut out = ctx.clone();
  out.fs = Arc::new(Preloaded { files, fallback: ctx.fs.clone() });
  out
}

/// `ctx` with `paths` read up front within `deadline` ([`Preloaded`]): the synchronous code that
/// then reads them gets them from memory.
pub async fn preload(ctx: &Context, paths: impl IntoIterator<Item = PathBuf>, deadline: Deadline) -> Result<Context> {
  let files = Preloaded::read_all(&ctx.fs, paths, deadline).await?;
  let mut out = ctx.clone();
  out.fs = Arc::new(files);
  Ok(out)
}

/// An [`Fs`] that answers some paths from reads made up front, and the rest from `fallback`.
pub struct Preloaded {
  files: HashMap<PathBuf, Outcome>,
  fallback: Arc<dyn Fs>,
}

impl Preloaded {
  /// Read each of `paths` (once; duplicates skipped) within `deadline`, in one blocking task.
  pub async fn read_all(fallback: &Arc<dyn Fs>, paths: impl IntoIterator<Item = PathBuf>, deadline: Deadline) -> Result<Preloaded> {
    let mut unique: Vec<PathBuf> = Vec::new();
    for path in paths {
      if !unique.contains(&path) {
        unique.push(path);
      }
    }
    let outcomes = read_batch(fallback, unique.clone(), deadline).await?;
    let files = unique.into_iter().zip(outcomes).map(|(p, o)| (p, o.map_err(|e| (e.kind(), e.to_string())))).collect();
    Ok(Preloaded { files, fallback: fallback.clone() })
  }
}

impl Fs for Preloaded {
  fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
    match self.files.get(path) {
      Some(Ok(bytes)) => Ok(bytes.clone()),
      Some(Err((kind, msg))) => Err(io::Error::new(*kind, msg.clone())),
      None => self.fallback.read(path),
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::atomic::{AtomicUsize, Ordering};
  use std::time::Duration;

  /// Reads of `/stuck/*` block until the test lets them go; others answer at once.
  struct StuckFs {
    reads: AtomicUsize,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
  }
  impl Fs for StuckFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
      self.reads.fetch_add(1, Ordering::SeqCst);
      if path.starts_with("/stuck") {
        let _ = self.release.lock().unwrap().recv();
      }
      Ok(path.to_string_lossy().as_bytes().to_vec())
    }
  }

  #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
  async fn a_stuck_read_is_cut_at_the_deadline_shared_and_delays_no_other_path() {
    let (release, rx) = std::sync::mpsc::channel();
    let stuck = Arc::new(StuckFs { reads: AtomicUsize::new(0), release: Mutex::new(rx) });
    let fs: Arc<dyn Fs> = stuck.clone();
    let started = std::time::Instant::now();
    let e = read(&fs, Path::new("/stuck/a"), Deadline::after(Duration::from_millis(200))).await.unwrap_err();
    assert_eq!(e.code(), "TIMEOUT", "{e}");
    assert!(e.message().contains("/stuck/a"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A second caller of the same path joins the pending read: no second blocking read.
    let e = read(&fs, Path::new("/stuck/a"), Deadline::after(Duration::from_millis(100))).await.unwrap_err();
    assert_eq!(e.code(), "TIMEOUT");
    assert_eq!(stuck.reads.load(Ordering::SeqCst), 1);
    // Another path is read at once.
    let other = read(&fs, Path::new("/fine"), Deadline::after(Duration::from_secs(2))).await.unwrap().unwrap();
    assert_eq!(other, b"/fine");
    // Once the stuck read ends, its slot is cleared and the next call reads afresh.
    release.send(()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pending().keys().any(|(_, p)| p.iter().any(|p| p == Path::new("/stuck/a"))) {
      assert!(std::time::Instant::now() < deadline, "the slot was not cleared");
      tokio::task::yield_now().await;
    }
    drop(release);
    assert_eq!(read(&fs, Path::new("/stuck/a"), Deadline::after(Duration::from_secs(2))).await.unwrap().unwrap(), b"/stuck/a");
  }

  #[test]
  fn a_blocking_read_is_cut_at_its_timeout_and_joined_when_it_answers() {
    let (release, rx) = std::sync::mpsc::channel();
    let stuck = Arc::new(StuckFs { reads: AtomicUsize::new(0), release: Mutex::new(rx) });
    let fs: Arc<dyn Fs> = stuck.clone();
    let started = std::time::Instant::now();
    let e = read_blocking(&fs, Path::new("/stuck/sync"), Duration::from_millis(200)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(2));
    let e = read_blocking(&fs, Path::new("/stuck/sync"), Duration::from_secs(5)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "a path whose read is pending answers at once");
    assert_eq!(stuck.reads.load(Ordering::SeqCst), 1);
    assert_eq!(read_blocking(&fs, Path::new("/fine"), Duration::from_secs(2)).unwrap(), b"/fine");
    let view = preload_blocking(
      &Context::new(crate::env::EnvSnapshot::default(), fs.clone(), Arc::new(crate::env::SystemClock)),
      [PathBuf::from("/stuck/sync"), PathBuf::from("/fine")],
      Duration::from_millis(100),
    );
    assert_eq!(view.fs.read(Path::new("/stuck/sync")).unwrap_err().kind(), io::ErrorKind::TimedOut);
    assert_eq!(view.fs.read(Path::new("/fine")).unwrap(), b"/fine");
    release.send(()).unwrap();
  }

  #[tokio::test]
  async fn preloaded_answers_from_memory_and_keeps_not_found() {
    struct Counting(AtomicUsize);
    impl Fs for Counting {
      fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if path == Path::new("/missing") {
          return Err(io::Error::new(io::ErrorKind::NotFound, "no such file"));
        }
        Ok(b"x".to_vec())
      }
    }
    let counting = Arc::new(Counting(AtomicUsize::new(0)));
    let fs: Arc<dyn Fs> = counting.clone();
    let pre = Preloaded::read_all(
      &fs,
      [PathBuf::from("/a"), PathBuf::from("/missing"), PathBuf::from("/a")],
      Deadline::after(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    assert_eq!(counting.0.load(Ordering::SeqCst), 2, "each path once, in one batch");
    assert_eq!(pre.read(Path::new("/a")).unwrap(), b"x");
    assert_eq!(pre.read(Path::new("/missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(counting.0.load(Ordering::SeqCst), 2, "from memory");
    pre.read(Path::new("/other")).unwrap();
    assert_eq!(counting.0.load(Ordering::SeqCst), 3, "others from the fallback");
  }
}
