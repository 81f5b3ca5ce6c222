//! The crate's own async runtime: a small tokio runtime, created on first use.
//!
//! napi-rs's `tokio_rt` feature builds a multi-thread runtime with one worker per core when the
//! module registers, i.e. at `require()` time: 64 threads on a 64-core host before anything is
//! fetched, for a workload of a few HTTP requests an hour. It also shuts that runtime down when
//! the last Node environment that loaded the addon goes away (a worker-only process whose worker
//! is terminated), dropping every task on it, including a process-wide cache's in-flight load.
//!
//! So the crate runs on this runtime instead (napi is built without `tokio_rt`):
//! * **Nothing at import**: the runtime is built by the first call that needs I/O.
//! * [`WORKER_THREADS`] workers at most (fewer on a 1-core host), whatever the core count.
//! * Blocking pool (DNS lookups through `getaddrinfo`) of at most [`MAX_BLOCKING_THREADS`]
//!   threads, each let go after [`BLOCKING_KEEP_ALIVE`] idle: one hung lookup holds one thread,
//!   not the others.
//! * **It lives as long as the process**: it is never shut down, so a task started for one
//!   environment (a worker thread) still finishes, settles the shared cache, and leaves pooled
//!   connections usable, after that environment is gone. Promises are settled through napi
//!   deferreds, which napi-rs makes safe to settle after their environment tore down.
//! * A runtime that cannot be built (no thread could be started) is an `INTERNAL` error for that
//!   call; nothing is stored, and the next call tries again.
//! * [`spawn`] runs each future as its own task and turns a panic inside it (ours or a
//!   dependency's) into an `INTERNAL` error for that call; the runtime and the next call are
//!   unaffected (the release profile keeps unwinding for this).

use std::future::Future;
use std::time::Duration;

use once_cell::sync::OnceCell;

use crate::error::{Error, ErrorKind, Result};

pub const WORKER_THREADS: usize = 2;
pub const MAX_BLOCKING_THREADS: usize = 16;
pub const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(10);
pub const THREAD_NAME: &str = "aws-wif-supplier";

static RUNTIME: OnceCell<tokio::runtime::Runtime> = OnceCell::new();

/// The runtime's handle, building the runtime on first use.
pub fn handle() -> Result<tokio::runtime::Handle> {
  RUNTIME
    .get_or_try_init(|| {
      let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, WORKER_THREADS);
      tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .thread_name(THREAD_NAME)
        .enable_all()
        .build()
    })
    .map(|rt| rt.handle().clone())
    .map_err(|e| Error::new(ErrorKind::Internal, format!("the async runtime could not be started: {e}")))
}

/// Whether the runtime has been built (tests of "nothing at import").
pub fn started() -> bool {
  RUNTIME.get().is_some()
}

/// Run `fut` on the runtime and hand its outcome to `done` (on a runtime thread). A panic in
/// `fut` reaches `done` as an `INTERNAL` error. Errors only when the runtime cannot be built.
pub fn spawn<T, F, D>(fut: F, done: D) -> Result<()>
where
  T: Send + 'static,
  F: Future<Output = Result<T>> + Send + 'static,
  D: FnOnce(Result<T>) + Send + 'static,
{
  spawn_boxed(Box::pin(fut), Box::new(done))
}

/// [`spawn`] with the future and the callback boxed: its two tasks are compiled once per output
/// type rather than once per call site (the `.node` size is bounded).
#[allow(clippy::type_complexity)]
fn spawn_boxed<T: Send + 'static>(
  fut: std::pin::Pin<Box<dyn Future<Output = Result<T>> + Send>>,
  done: Box<dyn FnOnce(Result<T>) + Send>,
) -> Result<()> {
  let handle = handle()?;
  let inner = handle.clone();
  handle.spawn(async move {
    let outcome = match inner.spawn(fut).await {
      Ok(r) => r,
      Err(join) if join.is_panic() => Err(Error::new(ErrorKind::Internal, "a bug: the operation panicked; please report it")),
      Err(_) => Err(Error::new(ErrorKind::Internal, "the operation was cancelled")),
    };
    done(outcome);
  });
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn panics_become_internal_errors_and_the_runtime_survives() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    spawn(async { panic!("boom") as Result<u32> }, move |r| tx.send(r.map_err(|e| e.code())).unwrap()).unwrap();
    assert_eq!(rx.recv().unwrap(), Err("INTERNAL"));
    spawn(async { Ok(7u32) }, move |r| tx2.send(r.map_err(|e| e.code())).unwrap()).unwrap();
    assert_eq!(rx.recv().unwrap(), Ok(7));
    assert!(started());
  }
}
