//! AWS Site-to-Site VPN logs (tunnel activity and, since 2025, tunnel BGP logs) and
//! AWS Client VPN connection logs.

pub mod bgp;
pub mod catalogue;
pub mod client_vpn;
pub mod columns;
pub mod tunnel;

/// What is wrong with a VPN log event.
#[derive(Debug, thiserror::Error)]
pub enum VpnLogError {
    /// Not JSON, or not an object.
    #[error("not a JSON object: {0}")]
    Json(serde_json::Error),
    /// A field that is missing or has the wrong type.
    #[error("field {0}: {1}")]
    Field(&'static str, &'static str),
}
