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

fn text(value: &Option<String>) -> FieldValue {
    match value {
        Some(v) if !v.is_empty() && v != "-" => FieldValue::Text(v.clone()),
        _ => FieldValue::Missing,
    }
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
        window
            .flows
            .iter()
            .filter(|(key, _)| self.traffic_type.captures(Some(key.action.as_str())))
            .map(|(key, stats)| InterfaceRecord {
                interface: key.interface,
                record: self.flow(key, stats, identity(identities, key.interface)),
            })
            .collect()
    }

    /// The record of one flow.
    pub fn flow(&self, key: &FlowKey, stats: &FlowStats, who: &InterfaceIdentity) -> FlowRecord {
        let v6 = key.src.is_ipv6();
        let direction = if who.addresses.contains(&key.dst) {
            FieldValue::Text("ingress".into())
        } else if who.addresses.contains(&key.src) {
            FieldValue::Text("egress".into())
        } else {
            FieldValue::Missing
        };
        let values = self
            .format
            .fields()
            .iter()
            .map(|&field| match field {
                Field::VERSION => FieldValue::Int(i64::from(self.format.version())),
                Field::SRCADDR | Field::PKT_SRCADDR => FieldValue::Text(key.src.to_string()),
                Field::DSTADDR | Field::PKT_DSTADDR => FieldValue::Text(key.dst.to_string()),
                Field::SRCPORT => FieldValue::Int(i64::from(key.src_port)),
                Field::DSTPORT => FieldValue::Int(i64::from(key.dst_port)),
                Field::PROTOCOL => FieldValue::Int(i64::from(key.protocol)),
                Field::PACKETS => FieldValue::Int(stats.packets as i64),
                Field::BYTES => FieldValue::Int(stats.bytes as i64),
                Field::START => FieldValue::Int(stats.first_us.div_euclid(1_000_000)),
                Field::END => FieldValue::Int(stats.last_us.div_euclid(1_000_000)),
                Field::ACTION => FieldValue::Text(key.action.as_str().into()),
                Field::LOG_STATUS => FieldValue::Text("OK".into()),
                Field::TCP_FLAGS => FieldValue::Int(i64::from(stats.tcp_flags)),
                Field::TYPE => FieldValue::Text(if v6 { "IPv6" } else { "IPv4" }.into()),
                Field::FLOW_DIRECTION => direction.clone(),
                other => self.identity_value(other, who),
            })
            .collect();
        FlowRecord { values }
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
        match field {
            Field::ACCOUNT_ID => text(&who.account_id),
            Field::INTERFACE_ID => FieldValue::Text(who.interface_id.clone()),
            Field::VPC_ID => text(&who.vpc_id),
            Field::SUBNET_ID => text(&who.subnet_id),
            Field::INSTANCE_ID => text(&who.instance_id),
            Field::REGION => text(&who.region),
            Field::AZ_ID => text(&who.az_id),
            // Nothing on a plain host knows the rest (AWS services, sublocations,
            // ECS, tags, next hops): `-`, as AWS prints what does not apply.
            _ => FieldValue::Missing,
        }
    }
}

fn identity(identities: &[InterfaceIdentity], interface: u32) -> &InterfaceIdentity {
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
        // REJECT-only output drops accepted flows.
        let maker = RecordMaker::new(LogFormat::default_vpc(), TrafficType::Reject, 600);
        assert!(maker.window(&windows[0], &[who]).is_empty());
    }
}
