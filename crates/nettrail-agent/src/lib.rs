//! nettrail's producers: the records AWS would write, made from real Linux networks,
//! and their shipping to where AWS would put them.
//!
//! - [`flows`]: VPC flow log records from capture files and live interfaces: frames
//!   decoded to the outermost IP header, aggregated per interface, 5-tuple and capture
//!   window with VPC semantics, written in any flow log format to stdout, a folder in
//!   AWS's S3 layout, or a nettrail log group.
//! - [`strongswan`]: Site-to-Site VPN tunnel activity logs from charon's vici events.
//! - [`openvpn`]: Client VPN connection logs from OpenVPN's management interface.
//! - [`daemon`]: the VPN agents' daemon addresses and reconnection.
//! - [`ship`]: the one path to a nettrail log group (batches, SigV4, spool) that
//!   every producer uses.

#![warn(missing_docs)]

pub mod daemon;
pub mod flows;
pub mod openvpn;
pub mod ship;
pub mod strongswan;
