//! The BlueKing API gateway from the plugin's side: registering the plugin's resources
//! (`sync-apigw`), the gateway's public key (`fetch-apigw-public-key`, and where `serve` finds
//! it), and the gateway manager client both use.

pub(crate) mod context;
pub(crate) mod manager;
pub(crate) mod public_key;
pub(crate) mod sync;
