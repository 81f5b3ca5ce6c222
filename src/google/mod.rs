//! Google side: the AWS subject token, the STS token exchange, service account impersonation,
//! the `external_account` credential configuration, and the fetcher that runs them in order.
//!
//! * [`fetcher`]: `FetcherCore`, one configuration (config + supplier core + token store), shared
//!   process-wide through [`crate::registry`];
//! * [`flow`]: the steps of one fetch, in a `Context`; [`token_store`]: the token caches and the
//!   background-refresh decision; [`doctor`]: the steps one by one, reported;
//! * one file per Google endpoint, each through [`endpoint::Endpoint`]: [`sts`],
//!   [`impersonation`], [`id_token`]; the subject token is [`subject_token`];
//! * the configuration: [`config_file`] (the `external_account` JSON), [`options`] (option names),
//!   [`encoding`].

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
