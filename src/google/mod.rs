//! Google side: the AWS subject token, the STS token exchange, service account impersonation,
//! the `external_account` credential configuration, and the fetcher that runs them in order.

pub mod encoding;
pub mod subject_token;
