//! aws-wif-supplier: AWS credentials for Google Workload Identity Federation, natively.
//!
//! The core (everything but [`binding`]) knows nothing of Node.js: it returns [`error::Error`],
//! and [`binding`] is the one place where values and errors become JavaScript.
#![deny(clippy::all)]

pub mod aws;
pub mod cache;
pub mod env;
pub mod error;
pub mod google;
pub mod http;
pub mod log;
pub mod redact;
pub mod runtime;
pub mod supplier;
pub mod time;

#[cfg(feature = "node")]
pub mod binding;
