//! Site-to-Site VPN tunnel BGP logs (November 2025): BGP session status and route
//! updates per tunnel, as JSON events, and AWS's catalogue of their messages.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::catalogue::template_regex;
use super::VpnLogError;

/// The kind of a BGP log event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BgpLogType {
    /// The BGP session's state.
    #[serde(rename = "BGPStatus")]
    BgpStatus,
    /// A route advertised, updated or withdrawn by the peer.
    #[serde(rename = "RouteStatus")]
    RouteStatus,
}

/// `status` of a `BGPStatus` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BgpStatus {
    /// The session is up.
    Up,
    /// The session is down.
    Down,
}

/// One BGP log event. Key order on the wire is AWS's: `resource_id`,
/// `event_timestamp`, `timestamp`, `type`, `status`, `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpLog {
    /// The tunnel: `vpn-1234abcd_1.2.3.4` (VPN connection id and outside IP).
    pub resource_id: String,
    /// Creation time, epoch milliseconds.
    pub event_timestamp: i64,
    /// Creation time, human-readable (`2025-11-08 05:40:29.641Z`).
    pub timestamp: String,
    /// BGPStatus or RouteStatus.
    #[serde(rename = "type")]
    pub log_type: BgpLogType,
    /// UP or DOWN (BGPStatus); ADVERTISED, UPDATED or WITHDRAWN (RouteStatus).
    pub status: String,
    /// Details; `null` is kept as `None`.
    pub message: Option<BgpMessage>,
}

/// The `message` object of a BGP log event (camelCase keys, in AWS's order).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BgpMessage {
    /// The route's prefix (RouteStatus).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prefix: Option<String>,
    /// Its AS path, as text (`"64512"`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub as_path: Option<String>,
    /// LOCAL_PREF.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub local_pref: Option<i64>,
    /// MED.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub med: Option<i64>,
    /// Next hop.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next_hop_ip: Option<String>,
    /// Weight.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub weight: Option<i64>,
    /// A status message (BGPStatus) or a route error (RouteStatus).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub details: Option<String>,
}

impl BgpLog {
    /// Parses one event (AWS writes them pretty-printed in its documentation and
    /// compact in logs; both read).
    pub fn from_json(text: &str) -> Result<BgpLog, VpnLogError> {
        serde_json::from_str(text).map_err(VpnLogError::Json)
    }

    /// The event as compact JSON in AWS's key order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serialisable")
    }

    /// The session status of a BGPStatus event.
    pub fn bgp_status(&self) -> Option<BgpStatus> {
        match (self.log_type, self.status.as_str()) {
            (BgpLogType::BgpStatus, "UP") => Some(BgpStatus::Up),
            (BgpLogType::BgpStatus, "DOWN") => Some(BgpStatus::Down),
            _ => None,
        }
    }
}

/// A documented BGPStatus message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BgpMessageSpec {
    /// The message, `{name}` for each variable part; ` • ` where AWS's page breaks the
    /// line (the separator in real logs is not documented).
    pub template: &'static str,
    /// The status AWS emits with it.
    pub status: BgpStatus,
    /// AWS's explanation.
    pub explanation: &'static str,
}

/// A documented RouteStatus `details` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMessageSpec {
    /// The message.
    pub details: &'static str,
    /// AWS's explanation.
    pub explanation: &'static str,
}

/// BGPStatus messages AWS documents, in AWS's order.
pub const BGP_STATUS_MESSAGES: &[BgpMessageSpec] = &[
    BgpMessageSpec { template: "AWS-side peer BGP session state has changed from Idle to Connect with neighbor {ip}", status: BgpStatus::Down, explanation: "BGP Connection state on the AWS side has been updated to Connect." },
    BgpMessageSpec { template: "AWS-side peer BGP session state has changed from Connect to OpenSent with neighbor {ip}", status: BgpStatus::Down, explanation: "BGP Connection state on the AWS side has been updated to OpenSent." },
    BgpMessageSpec { template: "AWS-side peer BGP session state has changed from OpenSent to OpenConfirm with neighbor {ip}", status: BgpStatus::Down, explanation: "BGP Connection state on the AWS side has been updated to OpenConfirm." },
    BgpMessageSpec { template: "AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor {ip}", status: BgpStatus::Up, explanation: "BGP Connection state on the AWS side has been updated to Established." },
    BgpMessageSpec { template: "AWS-side peer BGP session state has changed from Established to Idle with neighbor {ip}", status: BgpStatus::Down, explanation: "BGP Connection state on the AWS side has been updated to Idle." },
    BgpMessageSpec { template: "AWS-side peer BGP session state has changed from Connect to Active with neighbor {ip}", status: BgpStatus::Down, explanation: "BGP Connection state on the AWS side transitioned from Connect to Active. Check TCP port 179 availability on CGW if BGP session is stuck in Connect state." },
    BgpMessageSpec { template: "AWS-side peer is reporting a maximum prefix limit warning • received {prefixes} prefixes from neighbor {ip}, limit is {limit}", status: BgpStatus::Up, explanation: "The AWS side periodically generates a log message when the number of prefixes received from the CGW nears the allowed limit." },
    BgpMessageSpec { template: "AWS-side peer detected the maximum prefix limit was exceeded • received {prefixes} prefixes from neighbor {ip}, limit is {limit}", status: BgpStatus::Down, explanation: "The AWS side generates a log message when the number of prefixes received from the CGW exceeded the allowed limit." },
    BgpMessageSpec { template: "AWS-side peer sent a notification 6/1 (Cease/Maximum Number of Prefixes Reached) to neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side sent a notification to the CGW BGP peer to indicate that the BGP session was terminated due to a prefix limit violation." },
    BgpMessageSpec { template: "AWS-side peer received notification 6/1 (Cease/Maximum Number of Prefixes Reached) from neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side received a notification from the CGW peer to indicate that the BGP session was terminated due to a prefix limit violation." },
    BgpMessageSpec { template: "AWS-side peer sent a notification 6/2 (Cease/Administrative Shutdown) to neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side sent a notification to the CGW BGP peer to indicate that the BGP session was terminated." },
    BgpMessageSpec { template: "AWS-side peer received notification 6/2 (Cease/Administrative Shutdown) from neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side received a notification from the CGW peer to indicate that the BGP session was terminated." },
    BgpMessageSpec { template: "AWS-side peer sent a notification 6/3 (Cease/Peer Unconfigured) to neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side sent a notification to the CGW peer to indicate that the peer is not configured or has been removed from configuration." },
    BgpMessageSpec { template: "AWS-side peer received notification 6/3 (Cease/Peer Unconfigured) from neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side received a notification from the CGW peer to indicate that the peer is not configured or has been removed from configuration." },
    BgpMessageSpec { template: "AWS-side peer sent a notification 6/4 (Cease/Administrative Reset) to neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side sent a notification to the CGW BGP peer to indicate that the BGP session was reset." },
    BgpMessageSpec { template: "AWS-side peer received notification 6/4 (Cease/Administrative Reset) from neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side received a notification from the CGW peer to indicate that the BGP session was reset." },
    BgpMessageSpec { template: "AWS-side peer sent a notification 6/5 (Cease/Connection Rejected) to neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side sent a notification to the CGW BGP peer to indicate that the BGP session was rejected." },
    BgpMessageSpec { template: "AWS-side peer received notification 6/5 (Cease/Connection Rejected) from neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side received a notification from the CGW peer to indicate that the BGP session was rejected." },
    BgpMessageSpec { template: "AWS-side peer sent a notification 6/6 (Cease/Other Configuration Change) to neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side sent a notification to the CGW BGP peer to indicate that a BGP session configuration change took place." },
    BgpMessageSpec { template: "AWS-side peer received notification 6/6 (Cease/Other Configuration Change) from neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side received a notification from the CGW peer which indicates that a BGP session configuration change took place." },
    BgpMessageSpec { template: "AWS-side peer sent a notification 6/7 (Cease/Connection Collision Resolution) to neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side sent a notification to the CGW peer to resolve a connection collision when both peers attempt to establish a connection simultaneously." },
    BgpMessageSpec { template: "AWS-side peer received notification 6/7 (Cease/Connection Collision Resolution) from neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side received a notification from the CGW peer indicating resolution of a connection collision when both peers attempt to establish a connection simultaneously." },
    BgpMessageSpec { template: "AWS-side peer sent a Hold Timer Expired notification to neighbor {ip}", status: BgpStatus::Down, explanation: "The BGP hold timer expired and a notification was sent by the AWS side to the CGW." },
    BgpMessageSpec { template: "AWS-side peer detected a bad OPEN message from neighbor {ip} • remote AS is {remote_asn}, expected {expected_asn}", status: BgpStatus::Down, explanation: "The AWS side detected a bad OPEN message was received from the CGW peer which is indicative of a configuration mismatch." },
    BgpMessageSpec { template: "AWS-side peer received an OPEN message from neighbor {ip} • version 4, AS {asn}, holdtime {holdtime}, router-id {router_id}", status: BgpStatus::Down, explanation: "The AWS side received a BGP open message to initiate a BGP session with the CGW peer." },
    BgpMessageSpec { template: "AWS-side peer sent an OPEN message to neighbor {ip} • version 4, AS {asn}, holdtime {holdtime}, router-id {router_id}", status: BgpStatus::Down, explanation: "The CGW peer sent a BGP open message to initiate a BGP session with the AWS side BGP peer." },
    BgpMessageSpec { template: "AWS-side peer is initiating a connection (via Connect) to neighbor {ip}", status: BgpStatus::Down, explanation: "The AWS side is attempting to connect with the CGW BGP neighbor." },
    BgpMessageSpec { template: "AWS-side peer sent an End-of-RIB message to neighbor {ip}", status: BgpStatus::Up, explanation: "The AWS side has finished transmitting routes to the CGW after BGP session establishment." },
    BgpMessageSpec { template: "AWS-side peer received update with attributes from neighbor {ip} • AS path: {as_path}", status: BgpStatus::Up, explanation: "The AWS side received a BGP session attribute update from the neighbor." },
];

/// Route Status `details` messages AWS documents (only errors carry a `details`).
pub const ROUTE_STATUS_MESSAGES: &[RouteMessageSpec] = &[
    RouteMessageSpec { details: "DENIED due to: as-path contains our own AS", explanation: "BGP update messages for a new prefix from CGW was denied by AWS due to the route containing the AWS-side peers own AS." },
    RouteMessageSpec { details: "DENIED due to: non-connected next-hop", explanation: "AWS rejected a BGP route advertisement for the prefix from the CGW due to a non-connected next-hop validation failure. Ensure the route is reachable on the CGW side." },
];

static BGP_MATCHERS: LazyLock<Vec<(Regex, Vec<&'static str>)>> = LazyLock::new(|| {
    BGP_STATUS_MESSAGES
        .iter()
        .map(|spec| {
            template_regex(spec.template, separator_tolerant, |name| {
                if name == "as_path" {
                    "(.+?)"
                } else {
                    r"(\S+?)"
                }
            })
        })
        .collect()
});

/// The escaped text, where AWS's ` • ` line break may be any separator.
fn separator_tolerant(text: &str) -> String {
    text.split(" • ")
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(r"\s*[•,;:\-]?\s*")
}

/// Recognises a BGPStatus `details` text: the documented message and its variable
/// parts by name, or `None`.
pub fn recognize_bgp_status(
    details: &str,
) -> Option<(&'static BgpMessageSpec, Vec<(&'static str, String)>)> {
    let text = details.trim();
    BGP_STATUS_MESSAGES
        .iter()
        .zip(BGP_MATCHERS.iter())
        .find_map(|(spec, (regex, names))| {
            let captures = regex.captures(text)?;
            let values = names
                .iter()
                .enumerate()
                .map(|(i, name)| (*name, captures[i + 1].to_owned()))
                .collect();
            Some((spec, values))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: &str = r#"{
    "resource_id": "vpn-1234abcd_1.2.3.4",
    "event_timestamp": 1762580429641,
    "timestamp": "2025-11-08 05:40:29.641Z",
    "type": "BGPStatus",
    "status": "UP",
    "message": {
        "details": "AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.50.85"
    }
}"#;

    const ROUTE: &str = r#"{
    "resource_id": "vpn-1234abcd_1.2.3.4",
    "event_timestamp": 1762579573243,
    "timestamp": "2025-11-08 05:26:13.243Z",
    "type": "RouteStatus",
    "status": "UPDATED",
    "message": {
        "prefix": "172.31.0.0/16",
        "asPath": "64512",
        "localPref": 100,
        "med": 100,
        "nextHopIp": "169.254.50.85",
        "weight": 32768,
        "details": "DENIED due to: as-path contains our own AS"
    }
}"#;

    /// The compact form of a pretty-printed sample, keys in the same order (at every
    /// level): whitespace outside strings removed.
    fn compact(pretty: &str) -> String {
        let mut out = String::new();
        let mut in_string = false;
        let mut escaped = false;
        for c in pretty.chars() {
            if in_string {
                out.push(c);
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
            } else if c == '"' {
                in_string = true;
                out.push(c);
            } else if !c.is_whitespace() {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn aws_samples_read_and_write_back_in_aws_key_order() {
        for sample in [UP, ROUTE] {
            let log = BgpLog::from_json(sample).unwrap();
            assert_eq!(log.to_json(), compact(sample));
        }
        let up = BgpLog::from_json(UP).unwrap();
        assert_eq!(up.bgp_status(), Some(BgpStatus::Up));
        let details = up.message.unwrap().details.unwrap();
        let (spec, values) = recognize_bgp_status(&details).unwrap();
        assert_eq!(spec.status, BgpStatus::Up);
        assert_eq!(values, vec![("ip", "169.254.50.85".to_owned())]);
        let route = BgpLog::from_json(ROUTE).unwrap();
        let details = route.message.unwrap().details.unwrap();
        assert!(ROUTE_STATUS_MESSAGES.iter().any(|m| m.details == details));
    }

    #[test]
    fn every_documented_status_message_is_recognised() {
        for spec in BGP_STATUS_MESSAGES {
            let text = spec
                .template
                .replace("{ip}", "169.254.50.85")
                .replace("{prefixes}", "95")
                .replace("{limit}", "100")
                .replace("{remote_asn}", "65001")
                .replace("{expected_asn}", "65000")
                .replace("{asn}", "65000")
                .replace("{holdtime}", "30")
                .replace("{router_id}", "169.254.50.86")
                .replace("{as_path}", "65000 65010 65020")
                .replace(" • ", ", ");
            let (found, _) = recognize_bgp_status(&text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(found.template, spec.template);
        }
        assert!(recognize_bgp_status("something else").is_none());
    }

    #[test]
    fn null_messages_and_unknown_keys() {
        let log = BgpLog::from_json(r#"{"resource_id":"r","event_timestamp":1,"timestamp":"t","type":"BGPStatus","status":"DOWN","message":null}"#).unwrap();
        assert_eq!(log.message, None);
        assert_eq!(
            log.to_json(),
            r#"{"resource_id":"r","event_timestamp":1,"timestamp":"t","type":"BGPStatus","status":"DOWN","message":null}"#
        );
        assert!(BgpLog::from_json(r#"{"resource_id":"r"}"#).is_err());
    }
}
