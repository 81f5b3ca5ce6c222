//! The Node.js binding: thin `#[napi]` shapes over the core. No protocol logic lives here.

pub mod chain;
pub mod constants;
pub mod context;
pub mod errors;
pub mod fetcher;
pub mod js_error;
pub mod supplier;
pub mod trust;
pub mod warnings;
