//! AWS side: where credentials and the region come from.

pub mod chain;
pub mod container;
pub mod credentials;
pub mod env_keys;
pub mod imds;
pub mod link;
pub mod profile;
pub mod region;
pub mod sdk;
pub mod sts;
pub mod web_identity;
