//! VPN log events as typed columns, for the columnar tier and SQL.
//!
//! A Client VPN connection log entry and a Site-to-Site VPN tunnel event (activity or
//! BGP) are JSON objects whose keys AWS documents. [`VpnLogKind::columns`] names one
//! column per key, with the key's hyphens turned into underscores as Athena and Glue
//! do, and a type that fits what AWS writes: Client VPN writes every scalar as a string
//! (`"port": "50096"`) and `"NA"` for not applicable, so counters become integers,
//! times become UTC timestamps and `"NA"` becomes null. A Site-to-Site VPN log group
//! holds both tunnel activity and BGP events (one stream of each per tunnel), so its
//! columns are the union of the two, null where an event has no such key.
//!
//! The columns are a view: the event's JSON text stays the event, since JSON's key
//! order and spacing are not fixed and an event must read back byte for byte.

use serde_json::{Map, Value};

use super::client_vpn::parse_time;

/// Which VPN log a log group holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VpnLogKind {
    /// AWS Client VPN connection logs.
    ClientVpn,
    /// AWS Site-to-Site VPN tunnel logs: tunnel activity and tunnel BGP events.
    SiteToSiteVpn,
}

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Text.
    Text,
    /// A 32-bit integer.
    Int32,
    /// A 64-bit integer.
    Int64,
    /// True or false.
    Boolean,
    /// A UTC time, Unix milliseconds.
    Timestamp,
}

/// One column of a VPN log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VpnColumn {
    /// The column's name.
    pub name: &'static str,
    /// Where its value is: a key path into the event, the first one present wins.
    pub paths: &'static [&'static [&'static str]],
    /// Its type.
    pub column_type: ColumnType,
}

/// A column's value in one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnValue {
    /// Absent, `null`, `"NA"`, or not a value of the column's type.
    Null,
    /// A text value.
    Text(String),
    /// An integer (and a timestamp, in Unix milliseconds).
    Int(i64),
    /// A boolean.
    Bool(bool),
}

const fn column(
    name: &'static str,
    paths: &'static [&'static [&'static str]],
    column_type: ColumnType,
) -> VpnColumn {
    VpnColumn {
        name,
        paths,
        column_type,
    }
}

use ColumnType::{Boolean, Int32, Int64, Text, Timestamp};

/// Client VPN's documented keys, in the order of AWS's 2026 samples.
const CLIENT_VPN: &[VpnColumn] = &[
    column("connection_log_type", &[&["connection-log-type"]], Text),
    column(
        "connection_attempt_status",
        &[&["connection-attempt-status"]],
        Text,
    ),
    column(
        "connection_attempt_failure_reason",
        &[&["connection-attempt-failure-reason"]],
        Text,
    ),
    column("connection_id", &[&["connection-id"]], Text),
    column(
        "client_vpn_endpoint_id",
        &[&["client-vpn-endpoint-id"]],
        Text,
    ),
    column("transport_protocol", &[&["transport-protocol"]], Text),
    column(
        "connection_start_time",
        &[&["connection-start-time"]],
        Timestamp,
    ),
    column(
        "connection_last_update_time",
        &[&["connection-last-update-time"]],
        Timestamp,
    ),
    column("client_ip", &[&["client-ip"]], Text),
    column("client_ip_v6", &[&["client-ip-v6"]], Text),
    column("common_name", &[&["common-name"]], Text),
    column("device_type", &[&["device-type"]], Text),
    column("device_ip", &[&["device-ip"]], Text),
    column("port", &[&["port"]], Int32),
    column("ingress_bytes", &[&["ingress-bytes"]], Int64),
    column("egress_bytes", &[&["egress-bytes"]], Int64),
    column("ingress_packets", &[&["ingress-packets"]], Int64),
    column("egress_packets", &[&["egress-packets"]], Int64),
    column(
        "authorization_policy_result",
        &[&["authorization-policy-evaluation", "result"]],
        Text,
    ),
    column(
        "posture_compliance_statuses",
        &[&["posture-compliance-statuses"]],
        Text,
    ),
    column(
        "connection_end_time",
        &[&["connection-end-time"]],
        Timestamp,
    ),
    column(
        "connection_reset_status",
        &[&["connection-reset-status"]],
        Text,
    ),
    column("username", &[&["username"]], Text),
    column(
        "connection_duration_seconds",
        &[&["connection-duration-seconds"]],
        Int64,
    ),
];

/// Site-to-Site VPN tunnel activity keys, then tunnel BGP keys. `details` is the
/// activity event's `details` or the BGP event's `message.details`.
const SITE_TO_SITE_VPN: &[VpnColumn] = &[
    column("event_timestamp", &[&["event_timestamp"]], Int64),
    column("dpd_enabled", &[&["dpd_enabled"]], Boolean),
    column("nat_t_detected", &[&["nat_t_detected"]], Boolean),
    column("ike_phase1_state", &[&["ike_phase1_state"]], Text),
    column("ike_phase2_state", &[&["ike_phase2_state"]], Text),
    column("details", &[&["details"], &["message", "details"]], Text),
    column("resource_id", &[&["resource_id"]], Text),
    column("type", &[&["type"]], Text),
    column("status", &[&["status"]], Text),
    column("prefix", &[&["message", "prefix"]], Text),
    column("as_path", &[&["message", "asPath"]], Text),
    column("local_pref", &[&["message", "localPref"]], Int64),
    column("med", &[&["message", "med"]], Int64),
    column("next_hop_ip", &[&["message", "nextHopIp"]], Text),
    column("weight", &[&["message", "weight"]], Int64),
];

impl VpnLogKind {
    /// The kind's columns.
    pub fn columns(self) -> &'static [VpnColumn] {
        match self {
            VpnLogKind::ClientVpn => CLIENT_VPN,
            VpnLogKind::SiteToSiteVpn => SITE_TO_SITE_VPN,
        }
    }

    /// The kind's name in a part's metadata.
    pub fn name(self) -> &'static str {
        match self {
            VpnLogKind::ClientVpn => "clientvpn",
            VpnLogKind::SiteToSiteVpn => "sitetositevpn",
        }
    }

    /// The kind a name from [`VpnLogKind::name`] names.
    pub fn from_name(name: &str) -> Option<VpnLogKind> {
        [VpnLogKind::ClientVpn, VpnLogKind::SiteToSiteVpn]
            .into_iter()
            .find(|k| k.name() == name)
    }

    /// The kind of VPN log `message` is an event of, if any: a JSON object with a key
    /// only that log has.
    pub fn recognize(message: &str) -> Option<VpnLogKind> {
        let object = json_object(message)?;
        VpnLogKind::of_object(&object)
    }

    fn of_object(object: &Map<String, Value>) -> Option<VpnLogKind> {
        let has = |key: &str| object.contains_key(key);
        if has("connection-log-type") || has("client-vpn-endpoint-id") {
            return Some(VpnLogKind::ClientVpn);
        }
        let tunnel_activity = has("ike_phase1_state") || has("ike_phase2_state");
        let tunnel_bgp = has("resource_id") && has("event_timestamp") && has("type");
        (tunnel_activity || tunnel_bgp).then_some(VpnLogKind::SiteToSiteVpn)
    }

    /// The values of the kind's columns in `message`, in column order; None when
    /// `message` is not a JSON object of this kind.
    pub fn values(self, message: &str) -> Option<Vec<ColumnValue>> {
        let object = json_object(message)?;
        if VpnLogKind::of_object(&object) != Some(self) {
            return None;
        }
        let not_applicable = self == VpnLogKind::ClientVpn;
        Some(
            self.columns()
                .iter()
                .map(|column| {
                    let value = column.paths.iter().find_map(|path| lookup(&object, path));
                    value.map_or(ColumnValue::Null, |v| {
                        convert(v, column.column_type, not_applicable)
                    })
                })
                .collect(),
        )
    }
}

fn json_object(message: &str) -> Option<Map<String, Value>> {
    // Cheap refusal of the plain text most log groups hold.
    if !message.trim_start().starts_with('{') {
        return None;
    }
    match serde_json::from_str(message) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

fn lookup<'v>(object: &'v Map<String, Value>, path: &[&str]) -> Option<&'v Value> {
    let (first, rest) = path.split_first()?;
    let mut value = object.get(*first)?;
    for key in rest {
        value = value.as_object()?.get(*key)?;
    }
    Some(value)
}

/// `value` as a value of `column_type`; `"NA"` is null where `not_applicable`.
fn convert(value: &Value, column_type: ColumnType, not_applicable: bool) -> ColumnValue {
    if value.is_null() || (not_applicable && value.as_str() == Some("NA")) {
        return ColumnValue::Null;
    }
    let integer = || match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let converted = match column_type {
        ColumnType::Text => Some(ColumnValue::Text(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
        ColumnType::Int64 => integer().map(ColumnValue::Int),
        ColumnType::Int32 => integer()
            .filter(|n| i32::try_from(*n).is_ok())
            .map(ColumnValue::Int),
        ColumnType::Boolean => match value {
            Value::Bool(b) => Some(ColumnValue::Bool(*b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(ColumnValue::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(ColumnValue::Bool(false)),
            _ => None,
        },
        ColumnType::Timestamp => value
            .as_str()
            .and_then(parse_time)
            .and_then(|t| t.to_unix())
            .map(|seconds| ColumnValue::Int(seconds * 1000)),
    };
    converted.unwrap_or(ColumnValue::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documentation sample (network-log-formats C.3), on one line.
    const CLIENT_VPN_SAMPLE: &str = r#"{"connection-log-type": "connection-attempt", "connection-attempt-status": "successful", "connection-reset-status": "NA", "connection-attempt-failure-reason": "NA", "connection-id": "cvpn-connection-abc123abc123abc12", "client-vpn-endpoint-id": "cvpn-endpoint-aaa111bbb222ccc33", "transport-protocol": "udp", "connection-start-time": "2020-03-26 20:37:15", "connection-last-update-time": "2020-03-26 20:37:15", "client-ip": "10.0.1.2", "common-name": "client1", "device-type": "mac", "device-ip": "98.247.202.82", "port": "50096", "ingress-bytes": "0", "egress-bytes": "0", "ingress-packets": "0", "egress-packets": "0", "connection-end-time": "NA", "username": "joe"}"#;

    fn value(kind: VpnLogKind, message: &str, name: &str) -> ColumnValue {
        let index = kind.columns().iter().position(|c| c.name == name).unwrap();
        kind.values(message).unwrap()[index].clone()
    }

    #[test]
    fn client_vpn_entries_get_typed_values_and_na_is_null() {
        let kind = VpnLogKind::recognize(CLIENT_VPN_SAMPLE).unwrap();
        assert_eq!(kind, VpnLogKind::ClientVpn);
        let v = |name| value(kind, CLIENT_VPN_SAMPLE, name);
        assert_eq!(v("port"), ColumnValue::Int(50096));
        assert_eq!(v("common_name"), ColumnValue::Text("client1".into()));
        assert_eq!(v("connection_end_time"), ColumnValue::Null);
        assert_eq!(v("connection_reset_status"), ColumnValue::Null);
        assert_eq!(v("client_ip_v6"), ColumnValue::Null);
        // 2020-03-26 20:37:15 UTC.
        assert_eq!(
            v("connection_start_time"),
            ColumnValue::Int(1_585_255_035_000)
        );
    }

    #[test]
    fn nested_and_structured_client_vpn_values_are_text() {
        let entry = r#"{"connection-log-type":"connection-attempt","authorization-policy-evaluation":{"result":"deny","reason":"policy-deny"},"posture-compliance-statuses":["compliant"],"port":"99999999999"}"#;
        let v = |name| value(VpnLogKind::ClientVpn, entry, name);
        assert_eq!(
            v("authorization_policy_result"),
            ColumnValue::Text("deny".into())
        );
        assert_eq!(
            v("posture_compliance_statuses"),
            ColumnValue::Text(r#"["compliant"]"#.into())
        );
        // Out of an INT32's range: null, the text still has it.
        assert_eq!(v("port"), ColumnValue::Null);
    }

    #[test]
    fn tunnel_activity_and_bgp_events_share_one_kind() {
        let activity = r#"{"event_timestamp":1762580429,"details":"Sending DPD request","dpd_enabled":"True","nat_t_detected":false,"ike_phase1_state":"established","ike_phase2_state":"established"}"#;
        let bgp = r#"{"resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":1762579573243,"timestamp":"2025-11-08 05:26:13.243Z","type":"RouteStatus","status":"UPDATED","message":{"prefix":"172.31.0.0/16","asPath":"64512","localPref":100,"med":0,"nextHopIp":"169.254.50.85","weight":32768,"details":"route updated"}}"#;
        for event in [activity, bgp] {
            assert_eq!(
                VpnLogKind::recognize(event),
                Some(VpnLogKind::SiteToSiteVpn)
            );
        }
        let kind = VpnLogKind::SiteToSiteVpn;
        assert_eq!(
            value(kind, activity, "dpd_enabled"),
            ColumnValue::Bool(true)
        );
        assert_eq!(
            value(kind, activity, "nat_t_detected"),
            ColumnValue::Bool(false)
        );
        assert_eq!(
            value(kind, activity, "details"),
            ColumnValue::Text("Sending DPD request".into())
        );
        assert_eq!(value(kind, activity, "prefix"), ColumnValue::Null);
        assert_eq!(
            value(kind, bgp, "details"),
            ColumnValue::Text("route updated".into())
        );
        assert_eq!(value(kind, bgp, "weight"), ColumnValue::Int(32768));
        assert_eq!(
            value(kind, bgp, "type"),
            ColumnValue::Text("RouteStatus".into())
        );
    }

    #[test]
    fn other_text_is_no_vpn_log() {
        for message in [
            "2 123456789010 eni-1 - - - - - - - - - - NODATA",
            r#"{"level":"info","msg":"hello"}"#,
            "[1, 2]",
            "{not json",
        ] {
            assert_eq!(VpnLogKind::recognize(message), None, "{message}");
        }
        assert_eq!(VpnLogKind::ClientVpn.values(r#"{"type":"x"}"#), None);
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in [VpnLogKind::ClientVpn, VpnLogKind::SiteToSiteVpn] {
            assert_eq!(VpnLogKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(VpnLogKind::from_name("flow"), None);
    }
}
