//! Closed flows as flow log records of any format: the values capture gives (addresses,
//! ports, counts, times, flags, direction) and the identity an interface is configured
//! with (account, interface, VPC, subnet, instance, region, zone).

use std::net::IpAddr;

use nettrail_formats::flow::cloudwatch::TrafficType;
use nettrail_formats::flow::{Field, FieldValue, FlowRecord, LogFormat};

use super::table::{ClosedWindow, FlowKey, FlowStats};

/// Who an interface is, in AWS's terms; `None` prints `-`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceIdentity {
    /// `interface-id` (also names the interface's log stream).
    pub interface_id: String,
    /// `account-id`.
    pub account_id: Option<String>,
    /// `vpc-id`.
    pub vpc_id: Option<String>,
    /// `subnet-id`.
    pub subnet_id: Option<String>,
    /// `instance-id`.
    pub instance_id: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `az-id`.
    pub az_id: Option<String>,
    /// The interface's own addresses, for `flow-direction` (unknown when empty).
    pub addresses: Vec<IpAddr>,
}

/// One record and the interface it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceRecord {
    /// Index of the interface.
    pub interface: u32,
    /// The record, in the writer's format.
    pub record: FlowRecord,
}

/// Makes records of one format.
pub struct RecordMaker {
    format: LogFormat,
    traffic_type: TrafficType,
    interval: i64,
}

impl RecordMaker {
    /// Records of `format`, keeping only flows `traffic_type` captures, for windows of
    /// `interval` seconds.
    pub fn new(format: LogFormat, traffic_type: TrafficType, interval: i64) -> RecordMaker {
        RecordMaker {
            format,
            traffic_type,
            interval,
        }
    }

    /// The format records are made in.
    pub fn format(&self) -> &LogFormat {
        &self.format
    }

    /// The records of a closed window, in its order (first packet time).
    pub fn window(
        &self,
        window: &ClosedWindow,
        identities: &[InterfaceIdentity],
    ) -> Vec<InterfaceRecord> {
        self.flows(&window.flows, identities)
    }

    /// The records of some flows of a window (a window's records are made a chunk at a
    /// time, so that a window of a million flows does not hold a million records).
    pub fn flows(
        &self,
        flows: &[(FlowKey, FlowStats)],
        identities: &[InterfaceIdentity],
    ) -> Vec<InterfaceRecord> {
        flows
            .iter()
            .filter(|(key, _)| self.keeps(key.action))
            .map(|(key, stats)| InterfaceRecord {
                interface: key.interface,
                record: self.flow(key, stats, identity(identities, key.interface)),
            })
            .collect()
    }

    /// The record of one flow.
    pub fn flow(&self, key: &FlowKey, stats: &FlowStats, who: &InterfaceIdentity) -> FlowRecord {
        let mut values = Vec::with_capacity(self.format.len());
        self.flow_values(key, stats, who, |value| {
            values.push(match value {
                Value::Int(v) => FieldValue::Int(v),
                Value::Text(t) => FieldValue::Text(t.to_owned()),
                Value::Ip(ip) => FieldValue::Text(ip.to_string()),
                Value::Missing => FieldValue::Missing,
            })
        });
        FlowRecord { values }
    }

    /// Appends the text line of one flow's record (no newline) to `out`: the same as
    /// writing [`RecordMaker::flow`]'s record, without building it (the hot path of
    /// text output).
    pub fn write_flow_line(
        &self,
        key: &FlowKey,
        stats: &FlowStats,
        who: &InterfaceIdentity,
        out: &mut String,
    ) {
        let mut first = true;
        self.flow_values(key, stats, who, |value| {
            if !first {
                out.push(' ');
            }
            first = false;
            match value {
                Value::Int(v) => push_int(out, v),
                Value::Text(t) => out.push_str(t),
                Value::Ip(IpAddr::V4(ip)) => {
                    let [a, b, c, d] = ip.octets();
                    for (i, octet) in [a, b, c, d].into_iter().enumerate() {
                        if i > 0 {
                            out.push('.');
                        }
                        push_int(out, i64::from(octet));
                    }
                }
                Value::Ip(ip) => {
                    use std::fmt::Write;
                    let _ = write!(out, "{ip}");
                }
                Value::Missing => out.push('-'),
            }
        });
    }

    /// Whether records of flows with `action` are kept (the traffic type).
    pub fn keeps(&self, action: super::table::Action) -> bool {
        self.traffic_type.captures(Some(action.as_str()))
    }

    /// Every field's value of one flow's record, in the format's order: the one place
    /// that says what capture puts in each field.
    fn flow_values(
        &self,
        key: &FlowKey,
        stats: &FlowStats,
        who: &InterfaceIdentity,
        mut emit: impl FnMut(Value<'_>),
    ) {
        for &field in self.format.fields() {
            emit(match field {
                Field::VERSION => Value::Int(i64::from(self.format.version())),
                Field::SRCADDR | Field::PKT_SRCADDR => Value::Ip(key.src),
                Field::DSTADDR | Field::PKT_DSTADDR => Value::Ip(key.dst),
                Field::SRCPORT => Value::Int(i64::from(key.src_port)),
                Field::DSTPORT => Value::Int(i64::from(key.dst_port)),
                Field::PROTOCOL => Value::Int(i64::from(key.protocol)),
                Field::PACKETS => Value::Int(stats.packets as i64),
                Field::BYTES => Value::Int(stats.bytes as i64),
                Field::START => Value::Int(stats.first_us.div_euclid(1_000_000)),
                Field::END => Value::Int(stats.last_us.div_euclid(1_000_000)),
                Field::ACTION => Value::Text(key.action.as_str()),
                Field::LOG_STATUS => Value::Text("OK"),
                Field::TCP_FLAGS => Value::Int(i64::from(stats.tcp_flags)),
                Field::TYPE => Value::Text(if key.src.is_ipv6() { "IPv6" } else { "IPv4" }),
                Field::FLOW_DIRECTION if who.addresses.contains(&key.dst) => Value::Text("ingress"),
                Field::FLOW_DIRECTION if who.addresses.contains(&key.src) => Value::Text("egress"),
                other => identity_field(other, who),
            });
        }
    }

    /// The NODATA record of an interface that saw no traffic in the window starting
    /// at `start` (or SKIPDATA when the capture dropped packets in it).
    pub fn no_flows(&self, start: i64, who: &InterfaceIdentity, status: &str) -> FlowRecord {
        let values = self
            .format
            .fields()
            .iter()
            .map(|&field| match field {
                Field::VERSION => FieldValue::Int(i64::from(self.format.version())),
                Field::START => FieldValue::Int(start),
                Field::END => FieldValue::Int(start + self.interval),
                Field::LOG_STATUS => FieldValue::Text(status.into()),
                other => self.identity_value(other, who),
            })
            .collect();
        FlowRecord { values }
    }

    fn identity_value(&self, field: Field, who: &InterfaceIdentity) -> FieldValue {
        match identity_field(field, who) {
            Value::Text(t) => FieldValue::Text(t.to_owned()),
            _ => FieldValue::Missing,
        }
    }
}

/// A field's value as [`RecordMaker::flow_values`] hands it out.
enum Value<'a> {
    Int(i64),
    Text(&'a str),
    Ip(IpAddr),
    Missing,
}

/// The value of an identity field (`-` for what is not configured, and for what a
/// plain host cannot know: AWS services, sublocations, ECS, tags, next hops).
fn identity_field(field: Field, who: &InterfaceIdentity) -> Value<'_> {
    let configured = match field {
        Field::INTERFACE_ID => return Value::Text(&who.interface_id),
        Field::ACCOUNT_ID => &who.account_id,
        Field::VPC_ID => &who.vpc_id,
        Field::SUBNET_ID => &who.subnet_id,
        Field::INSTANCE_ID => &who.instance_id,
        Field::REGION => &who.region,
        Field::AZ_ID => &who.az_id,
        _ => return Value::Missing,
    };
    match configured.as_deref() {
        Some(t) if !t.is_empty() && t != "-" => Value::Text(t),
        _ => Value::Missing,
    }
}

/// Appends a decimal integer without going through `fmt`.
fn push_int(out: &mut String, value: i64) {
    let mut buf = [0u8; 20];
    let mut n = value.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if value < 0 {
        out.push('-');
    }
    out.extend(buf[at..].iter().map(|&digit| char::from(digit)));
}

/// The identity of interface `interface`.
pub fn identity(identities: &[InterfaceIdentity], interface: u32) -> &InterfaceIdentity {
    static UNKNOWN: std::sync::OnceLock<InterfaceIdentity> = std::sync::OnceLock::new();
    identities.get(interface as usize).unwrap_or_else(|| {
        UNKNOWN.get_or_init(|| InterfaceIdentity {
            interface_id: "unknown".into(),
            ..InterfaceIdentity::default()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::decode::PacketMeta;
    use crate::flows::table::{Action, FlowTable};

    #[test]
    fn a_flow_reads_as_the_default_format_does() {
        let mut table = FlowTable::new(600, 10);
        let packet = PacketMeta {
            src: "172.31.16.139".parse().unwrap(),
            dst: "172.31.16.21".parse().unwrap(),
            src_port: 20641,
            dst_port: 22,
            protocol: 6,
            bytes: 4249,
            tcp_flags: 2,
        };
        table.add(0, Action::Accept, &packet, 1_418_530_010_000_000);
        let windows = table.close_all();
        let who = InterfaceIdentity {
            interface_id: "eni-1235b8ca123456789".into(),
            account_id: Some("123456789010".into()),
            addresses: vec!["172.31.16.21".parse().unwrap()],
            ..InterfaceIdentity::default()
        };
        let maker = RecordMaker::new(LogFormat::default_vpc(), TrafficType::All, 600);
        let records = maker.window(&windows[0], std::slice::from_ref(&who));
        assert_eq!(
            maker.format().record_line(&records[0].record),
            "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 1 4249 1418530010 1418530010 ACCEPT OK"
        );
        let custom = LogFormat::parse("${version} ${vpc-id} ${type} ${tcp-flags} ${flow-direction} ${pkt-dstaddr} ${log-status}").unwrap();
        let maker = RecordMaker::new(custom, TrafficType::All, 600);
        let records = maker.window(&windows[0], std::slice::from_ref(&who));
        assert_eq!(
            maker.format().record_line(&records[0].record),
            "5 - IPv4 2 ingress 172.31.16.21 OK"
        );
        assert_eq!(
            maker
                .format()
                .record_line(&maker.no_flows(1_418_530_000, &who, "NODATA")),
            "5 - - - - - NODATA"
        );
        // The text fast path writes what the record writes.
        let mut line = String::new();
        let (key, stats) = &windows[0].flows[0];
        maker.write_flow_line(key, stats, &who, &mut line);
        assert_eq!(line, maker.format().record_line(&records[0].record));
        // REJECT-only output drops accepted flows.
        let maker = RecordMaker::new(LogFormat::default_vpc(), TrafficType::Reject, 600);
        assert!(maker.window(&windows[0], &[who]).is_empty());
    }
}
