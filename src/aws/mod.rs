//! AWS side: where credentials and the region come from.

pub mod assume_role;
pub mod chain;
pub mod container;
pub mod credentials;
pub mod env_keys;
pub mod imds;
pub mod link;
pub mod process;
pub mod profile;
pub mod profile_file;
pub mod profile_walk;
pub mod region;
pub mod sdk;
pub mod web_identity;
