//! aws-wif-supplier: AWS credentials for Google Workload Identity Federation, natively.
//!
//! The core (everything but [`binding`]) knows nothing of Node.js: it returns [`error::Error`],
//! and [`binding`] is the one place where values and errors become JavaScript.
#![deny(clippy::all)]
// No panic reachable from a request path: outside tests, `unwrap`, `expect`, `panic!` and friends
// are compile errors under `cargo clippy` (run by .ci/run). A failure is a coded error instead.
#![cfg_attr(
  not(test),
  deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    clippy::indexing_slicing
  )
)]

pub mod aws;
pub mod cache;
pub mod context;
pub mod env;
pub mod error;
pub mod file_read;
pub mod google;
pub mod http;
pub mod log;
pub mod redact;
pub mod registry;
pub mod runtime;
pub mod supplier;
pub mod time;

#[cfg(feature = "node")]
pub mod binding;
