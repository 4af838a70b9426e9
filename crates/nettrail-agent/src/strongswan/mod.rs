//! Site-to-Site VPN tunnel activity logs from strongSwan: charon's vici events (the
//! `log` stream, IKE and CHILD_SA up/down and rekeys) followed per tunnel
//! ([`tracker`]), read from a live charon over vici with reconnection ([`vici`]).
//!
//! The AWS side of a tunnel is the charon this agent talks to; each swanctl
//! connection is a tunnel, named by its VPN connection id and outside IP.

pub mod tracker;
pub mod vici;

pub use tracker::{aws_timestamp, TunnelConfig, TunnelLogEvent, TunnelTracker, ViciEvent};
pub use vici::{run, synthetic_vpn_connection_id, tunnels_from_conns, TunnelMapping, ViciError};
