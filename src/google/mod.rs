//! Google side: the AWS subject token, the STS token exchange, service account impersonation,
//! the `external_account` credential configuration, and the fetcher that runs them in order.

pub mod config_file;
pub mod doctor;
pub mod encoding;
pub mod endpoint;
pub mod fetcher;
pub mod flow;
pub mod id_token;
pub mod impersonation;
pub mod options;
pub mod sts;
pub mod subject_token;
pub mod token_store;

#[cfg(test)]
pub(crate) mod test_fixtures;
#[cfg(test)]
pub(crate) mod test_server;
