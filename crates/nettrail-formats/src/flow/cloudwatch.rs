//! How VPC Flow Logs delivers records to CloudWatch Logs: one log stream per network
//! interface (`eni-…-all` for a flow log of traffic type ALL), the event timestamp is
//! the record's `start` in milliseconds, and the message is the record line itself,
//! single-spaced, with no header.

use std::borrow::Cow;

use super::fields::Field;
use super::format::LogFormat;

/// `TrafficType` of a flow log: which records it captures, and the suffix of its log
/// streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TrafficType {
    /// Accepted traffic only (`-accept` streams; AWS's suffix for this type is inferred,
    /// only `-all` is seen in real payloads).
    Accept,
    /// Rejected traffic only (`-reject` streams, inferred as for `Accept`).
    Reject,
    /// All traffic (`-all` streams).
    #[default]
    All,
}

impl TrafficType {
    /// Parses `ACCEPT`, `REJECT` or `ALL` (the property's values).
    pub fn parse(value: &str) -> Option<TrafficType> {
        match value {
            "ACCEPT" => Some(TrafficType::Accept),
            "REJECT" => Some(TrafficType::Reject),
            "ALL" => Some(TrafficType::All),
            _ => None,
        }
    }

    /// The property's value: `ACCEPT`, `REJECT` or `ALL`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficType::Accept => "ACCEPT",
            TrafficType::Reject => "REJECT",
            TrafficType::All => "ALL",
        }
    }

    /// The stream name suffix.
    pub fn stream_suffix(self) -> &'static str {
        match self {
            TrafficType::Accept => "-accept",
            TrafficType::Reject => "-reject",
            TrafficType::All => "-all",
        }
    }

    /// Whether a record with this `action` is captured (records without an action,
    /// NODATA and SKIPDATA, are kept by every type).
    pub fn captures(self, action: Option<&str>) -> bool {
        match (self, action) {
            (TrafficType::All, _) | (_, None) => true,
            (TrafficType::Accept, Some(a)) => a == "ACCEPT",
            (TrafficType::Reject, Some(a)) => a == "REJECT",
        }
    }
}

/// Maps records of one format to CloudWatch Logs events.
#[derive(Debug, Clone)]
pub struct CloudWatchMapping {
    traffic_type: TrafficType,
    /// Fields that name the stream, most specific first.
    resource_columns: Vec<usize>,
    start_column: Option<usize>,
    transit_gateway: bool,
}

/// A record as a CloudWatch Logs event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchEvent<'l> {
    /// The id the stream is named after (`eni-…`, a Transit Gateway attachment, a
    /// resource id), or `unknown` when the record has none.
    pub resource: &'l str,
    /// Event timestamp, Unix milliseconds.
    pub timestamp_ms: i64,
    /// The record line, single-spaced.
    pub message: Cow<'l, str>,
}

impl CloudWatchMapping {
    /// The mapping for records of `format` from a flow log of `traffic_type`.
    pub fn new(format: &LogFormat, traffic_type: TrafficType) -> CloudWatchMapping {
        let transit_gateway = format.is_transit_gateway();
        // VPC records: the interface, or for flows without one (regional NAT gateways)
        // the resource. Transit Gateway records: the attachment, else the gateway.
        let candidates: &[Field] = if transit_gateway {
            &[Field::TGW_ATTACHMENT_ID, Field::TGW_ID, Field::RESOURCE_ID]
        } else {
            &[Field::INTERFACE_ID, Field::RESOURCE_ID]
        };
        CloudWatchMapping {
            traffic_type,
            resource_columns: candidates
                .iter()
                .filter_map(|f| format.position(*f))
                .collect(),
            start_column: format.position(Field::START),
            transit_gateway,
        }
    }

    /// Whether these are Transit Gateway records (kept apart from VPC records).
    pub fn is_transit_gateway(&self) -> bool {
        self.transit_gateway
    }

    /// The event for a record: `line` as read, `tokens` its fields (from
    /// [`LogFormat::split_record`]). `fallback_ms` is the timestamp of a record without
    /// a `start` (the file's slot, say).
    pub fn event<'l>(
        &self,
        line: &'l str,
        tokens: &[&'l str],
        fallback_ms: i64,
    ) -> CloudWatchEvent<'l> {
        let resource = self
            .resource_columns
            .iter()
            .map(|&i| tokens[i])
            .find(|t| *t != "-")
            .unwrap_or("unknown");
        let timestamp_ms = self
            .start_column
            .and_then(|i| tokens[i].parse::<i64>().ok())
            .map_or(fallback_ms, |start| {
                // 13-digit starts are milliseconds already.
                if start > i64::from(i32::MAX) {
                    start
                } else {
                    start * 1000
                }
            });
        let single_spaced = tokens.iter().map(|t| t.len()).sum::<usize>()
            + tokens.len().saturating_sub(1)
            == line.len();
        let message = if single_spaced {
            Cow::Borrowed(line)
        } else {
            Cow::Owned(tokens.join(" "))
        };
        CloudWatchEvent {
            resource,
            timestamp_ms,
            message,
        }
    }

    /// The log stream of events about `resource`.
    pub fn stream_name(&self, resource: &str) -> String {
        format!("{resource}{}", self.traffic_type.stream_suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(format: &LogFormat, line: &str) -> (String, i64, String) {
        let mapping = CloudWatchMapping::new(format, TrafficType::All);
        let mut tokens = Vec::new();
        format.split_record(line, &mut tokens).unwrap();
        let e = mapping.event(line, &tokens, 7);
        (
            mapping.stream_name(e.resource),
            e.timestamp_ms,
            e.message.into_owned(),
        )
    }

    #[test]
    fn default_records_go_to_their_interface_stream_at_start() {
        let format = LogFormat::default_vpc();
        let line = "2 647604195155 eni-0c19436730cc350ae 10.5.81.140 10.90.0.45 53598 443 6 2 120 1702918083 1702918083 ACCEPT OK";
        assert_eq!(
            event(&format, line),
            (
                "eni-0c19436730cc350ae-all".into(),
                1_702_918_083_000,
                line.into()
            )
        );
    }

    #[test]
    fn records_without_an_interface_or_start_fall_back() {
        let format = LogFormat::parse("${srcaddr} ${dstaddr}").unwrap();
        assert_eq!(
            event(&format, "10.0.0.1  10.0.0.2"),
            ("unknown-all".into(), 7, "10.0.0.1 10.0.0.2".into())
        );
        let format = LogFormat::parse("${interface-id} ${resource-id} ${start}").unwrap();
        assert_eq!(
            event(&format, "- rnat-0abc 1702918083000").0,
            "rnat-0abc-all"
        );
        assert_eq!(
            event(&format, "- rnat-0abc 1702918083000").1,
            1_702_918_083_000
        );
    }

    #[test]
    fn transit_gateway_records_are_named_by_attachment() {
        let format =
            LogFormat::parse("${version} ${resource-type} ${tgw-id} ${tgw-attachment-id} ${start}")
                .unwrap();
        let mapping = CloudWatchMapping::new(&format, TrafficType::All);
        assert!(mapping.is_transit_gateway());
        assert_eq!(
            event(&format, "6 TransitGatewayAttachment tgw-1 tgw-attach-2 1").0,
            "tgw-attach-2-all"
        );
        assert_eq!(event(&format, "6 TransitGateway tgw-1 - 1").0, "tgw-1-all");
    }

    #[test]
    fn traffic_types_filter_and_name() {
        assert!(TrafficType::Accept.captures(Some("ACCEPT")));
        assert!(!TrafficType::Accept.captures(Some("REJECT")));
        assert!(TrafficType::Reject.captures(None));
        assert_eq!(
            TrafficType::parse("REJECT").unwrap().stream_suffix(),
            "-reject"
        );
        assert_eq!(TrafficType::parse("all"), None);
    }
}
