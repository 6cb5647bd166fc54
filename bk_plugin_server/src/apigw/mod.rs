//! The BlueKing API gateway from the plugin's side: registering the plugin's resources
//! (`sync-apigw`), the gateway's public key (`fetch-apigw-public-key`, and where `serve` finds
//! it), and the gateway manager client both use.

pub mod context;
pub mod manager;
pub mod public_key;
pub mod sync;
