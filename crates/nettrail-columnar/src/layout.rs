//! Which columns a part has.
//!
//! Every part starts with the key columns: `timestamp` (Unix ms), `ingestion_time`
//! (Unix ms), `log_stream` and `event_seq` (the store-wide sequence number; with the
//! timestamp, the event's position in its group and the last part of its event id).
//! A flow-log part then has one column per field of its format, named as Athena names
//! them (`pkt_srcaddr`) and typed as AWS's Parquet delivery types them, and a nullable
//! `message` that is set only where the text is not what the columns regenerate. A
//! VPN log part (Client VPN connection logs, Site-to-Site VPN tunnel logs) has one
//! typed column per documented key of its JSON events (see
//! [`nettrail_formats::vpn::columns`]), null where an event lacks it, and `message` for
//! every event: the columns are for queries, the text is the event. A messages part
//! has `message` for every event.
//!
//! The layout is written into the file's key-value metadata under [`LAYOUT_KEY`], so a
//! part is read back without any other knowledge.

use std::sync::Arc;

use arrow_schema::{DataType, Field as ArrowField, Schema, SchemaRef, TimeUnit};
use nettrail_formats::flow::LogFormat;
use nettrail_formats::vpn::columns::{ColumnType, VpnLogKind};

use crate::error::PartError;

/// The key-value metadata key holding a part's layout.
pub const LAYOUT_KEY: &str = "nettrail.layout";

/// The key-value metadata key naming the order of a part's rows when it is not key
/// order (timestamp, then sequence number) from the first row to the last.
pub const ORDER_KEY: &str = "nettrail.order";

/// [`ORDER_KEY`]'s value for a flow part whose rejected records follow all the others:
/// two runs, each in key order, each in row groups of its own.
pub const ORDER_REJECTS_LAST: &str = "rejects-last";

/// The columns every part starts with, in order.
pub const KEY_COLUMNS: [&str; 4] = ["timestamp", "ingestion_time", "log_stream", "event_seq"];

/// The column holding raw message text.
pub const MESSAGE_COLUMN: &str = "message";

/// What a part's columns are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartLayout {
    /// The key columns and `message`.
    Messages,
    /// The key columns, one typed column per field of the flow-log format, and a
    /// nullable `message` for the events whose text the columns do not regenerate.
    Flow(LogFormat),
    /// The key columns, one typed column per documented key of a VPN log's JSON events,
    /// and `message` for every event.
    Vpn(VpnLogKind),
}

impl PartLayout {
    /// The Arrow schema of parts of this layout.
    pub fn schema(&self) -> SchemaRef {
        let mut fields = vec![
            ArrowField::new(KEY_COLUMNS[0], DataType::Int64, false),
            ArrowField::new(KEY_COLUMNS[1], DataType::Int64, false),
            ArrowField::new(KEY_COLUMNS[2], DataType::Utf8, false),
            ArrowField::new(KEY_COLUMNS[3], DataType::Int64, false),
        ];
        if let PartLayout::Flow(format) = self {
            let typed = nettrail_formats::flow::parquet::schema(format);
            fields.extend(typed.fields().iter().map(|f| f.as_ref().clone()));
        }
        if let PartLayout::Vpn(kind) = self {
            fields.extend(kind.columns().iter().map(|c| {
                let data_type = match c.column_type {
                    ColumnType::Text => DataType::Utf8,
                    ColumnType::Int32 => DataType::Int32,
                    ColumnType::Int64 => DataType::Int64,
                    ColumnType::Boolean => DataType::Boolean,
                    ColumnType::Timestamp => {
                        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
                    }
                };
                ArrowField::new(c.name, data_type, true)
            }));
        }
        fields.push(ArrowField::new(
            MESSAGE_COLUMN,
            DataType::Utf8,
            matches!(self, PartLayout::Flow(_)),
        ));
        Arc::new(Schema::new(fields))
    }

    /// The layout as written into a part's metadata.
    pub fn to_metadata(&self) -> String {
        match self {
            PartLayout::Messages => "messages".to_owned(),
            PartLayout::Flow(format) => format!("flow {}", format.to_spec()),
            PartLayout::Vpn(kind) => format!("vpn {}", kind.name()),
        }
    }

    /// The layout a part's metadata names.
    pub fn from_metadata(value: &str) -> Result<PartLayout, PartError> {
        if value == "messages" {
            return Ok(PartLayout::Messages);
        }
        if let Some(name) = value.strip_prefix("vpn ") {
            return VpnLogKind::from_name(name)
                .map(PartLayout::Vpn)
                .ok_or_else(|| PartError::NotAPart(format!("unknown VPN log `{name}`")));
        }
        let spec = value
            .strip_prefix("flow ")
            .ok_or_else(|| PartError::NotAPart(format!("unknown layout `{value}`")))?;
        LogFormat::parse(spec)
            .map(PartLayout::Flow)
            .map_err(|e| PartError::NotAPart(format!("layout `{value}`: {e}")))
    }

    /// The flow-log format of a flow-log part.
    pub fn flow_format(&self) -> Option<&LogFormat> {
        match self {
            PartLayout::Flow(format) => Some(format),
            PartLayout::Vpn(_) | PartLayout::Messages => None,
        }
    }

    /// The `aws-service=` Hive folder of parts of this layout (AWS's for flow logs).
    pub fn aws_service(&self) -> &'static str {
        match self {
            PartLayout::Flow(_) => "vpcflowlogs",
            PartLayout::Vpn(_) | PartLayout::Messages => "logs",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip_through_their_metadata() {
        for layout in [
            PartLayout::Messages,
            PartLayout::Flow(LogFormat::default_vpc()),
            PartLayout::Flow(LogFormat::all_vpc_fields()),
            PartLayout::Flow(LogFormat::default_transit_gateway()),
            PartLayout::Vpn(VpnLogKind::ClientVpn),
            PartLayout::Vpn(VpnLogKind::SiteToSiteVpn),
        ] {
            assert_eq!(
                PartLayout::from_metadata(&layout.to_metadata()).unwrap(),
                layout
            );
        }
        assert!(PartLayout::from_metadata("rows").is_err());
        assert!(PartLayout::from_metadata("vpn ipsec").is_err());
    }

    #[test]
    fn flow_parts_have_athenas_columns_after_the_key() {
        let schema = PartLayout::Flow(LogFormat::default_vpc()).schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "timestamp",
                "ingestion_time",
                "log_stream",
                "event_seq",
                "version",
                "account_id",
                "interface_id",
                "srcaddr",
                "dstaddr",
                "srcport",
                "dstport",
                "protocol",
                "packets",
                "bytes",
                "start",
                "end",
                "action",
                "log_status",
                "message"
            ]
        );
        assert_eq!(
            schema.field_with_name("protocol").unwrap().data_type(),
            &DataType::Int32
        );
    }
}
