//! The Node.js binding: thin `#[napi]` shapes over the core. No protocol logic lives here.

pub mod chain;
pub mod context;
pub mod fetcher;
pub mod js_error;
pub mod supplier;
pub mod trust;
