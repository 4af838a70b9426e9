//! Record models and codecs for AWS's network activity logs, byte-compatible with what
//! AWS writes: VPC and Transit Gateway flow logs (fields of versions 2 to 11, default and
//! custom formats, text files with their header line, S3 object key layouts, delivery
//! to CloudWatch Logs), Site-to-Site VPN tunnel activity and BGP logs with AWS's message
//! catalogues, Client VPN connection logs, CloudWatch Logs subscription payloads and the Firehose HTTP
//! endpoint protocol, and the time arithmetic they share. No I/O beyond readers and writers over caller-provided
//! streams.

pub mod firehose;
pub mod flow;
pub mod json_object;
pub mod subscription;
pub mod time;
pub mod vpn;
