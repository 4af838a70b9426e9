//! AWS Client VPN connection logs from OpenVPN: its management interface
//! (`--management … --management-client-auth`) read and answered ([`mgmt`]), its
//! clients followed into connection log entries ([`tracker`]).

pub mod mgmt;
pub mod tracker;

pub use mgmt::{run, ManagementError, ManagementOptions};
pub use tracker::{
    ClientEvent, ClientEventKind, ClientTracker, ConnectPolicy, Decision, MgmtMessage, MgmtParser,
};
