//! Every VPC and Transit Gateway flow log field, in AWS's table order.

use std::fmt;

/// How a field's value is typed (AWS's "Parquet data type"; plain text files carry
/// every field as a string, `-` when not applicable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// A 32-bit integer (`INT_32`).
    Int32,
    /// A 64-bit integer (`INT_64`).
    Int64,
    /// A string without spaces (`STRING`).
    String,
}

impl FieldKind {
    /// Whether values are integers.
    pub fn is_integer(self) -> bool {
        !matches!(self, FieldKind::String)
    }
}

/// What AWS documents about one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// The name in a log format and in a file header (`pkt-srcaddr`).
    pub name: &'static str,
    /// The flow log version that introduced it (6 for the Transit Gateway fields).
    pub version: u8,
    /// Its type.
    pub kind: FieldKind,
    /// Whether only Transit Gateway flow logs carry it.
    pub transit_gateway_only: bool,
}

const fn spec(name: &'static str, version: u8, kind: FieldKind, tgw: bool) -> FieldSpec {
    FieldSpec {
        name,
        version,
        kind,
        transit_gateway_only: tgw,
    }
}

/// The fields, in the order of AWS's "available fields" tables (VPC, then the
/// Transit Gateway-only ones). Generated from `../shared/specs/flowlog-fields.tsv`; a
/// test keeps the two equal.
pub const FIELDS: &[FieldSpec] = &[
    spec("version", 2, FieldKind::Int32, false),
    spec("account-id", 2, FieldKind::String, false),
    spec("interface-id", 2, FieldKind::String, false),
    spec("srcaddr", 2, FieldKind::String, false),
    spec("dstaddr", 2, FieldKind::String, false),
    spec("srcport", 2, FieldKind::Int32, false),
    spec("dstport", 2, FieldKind::Int32, false),
    spec("protocol", 2, FieldKind::Int32, false),
    spec("packets", 2, FieldKind::Int64, false),
    spec("bytes", 2, FieldKind::Int64, false),
    spec("start", 2, FieldKind::Int64, false),
    spec("end", 2, FieldKind::Int64, false),
    spec("action", 2, FieldKind::String, false),
    spec("log-status", 2, FieldKind::String, false),
    spec("vpc-id", 3, FieldKind::String, false),
    spec("subnet-id", 3, FieldKind::String, false),
    spec("instance-id", 3, FieldKind::String, false),
    spec("tcp-flags", 3, FieldKind::Int32, false),
    spec("type", 3, FieldKind::String, false),
    spec("pkt-srcaddr", 3, FieldKind::String, false),
    spec("pkt-dstaddr", 3, FieldKind::String, false),
    spec("region", 4, FieldKind::String, false),
    spec("az-id", 4, FieldKind::String, false),
    spec("sublocation-type", 4, FieldKind::String, false),
    spec("sublocation-id", 4, FieldKind::String, false),
    spec("pkt-src-aws-service", 5, FieldKind::String, false),
    spec("pkt-dst-aws-service", 5, FieldKind::String, false),
    spec("flow-direction", 5, FieldKind::String, false),
    spec("traffic-path", 5, FieldKind::Int32, false),
    spec("ecs-cluster-arn", 7, FieldKind::String, false),
    spec("ecs-cluster-name", 7, FieldKind::String, false),
    spec("ecs-container-instance-arn", 7, FieldKind::String, false),
    spec("ecs-container-instance-id", 7, FieldKind::String, false),
    spec("ecs-container-id", 7, FieldKind::String, false),
    spec("ecs-second-container-id", 7, FieldKind::String, false),
    spec("ecs-service-name", 7, FieldKind::String, false),
    spec("ecs-task-definition-arn", 7, FieldKind::String, false),
    spec("ecs-task-arn", 7, FieldKind::String, false),
    spec("ecs-task-id", 7, FieldKind::String, false),
    spec("reject-reason", 8, FieldKind::String, false),
    spec("resource-id", 9, FieldKind::String, false),
    spec("encryption-status", 10, FieldKind::Int32, false),
    spec("instance-tag", 11, FieldKind::String, false),
    spec("instance-tag-2", 11, FieldKind::String, false),
    spec("interface-tag", 11, FieldKind::String, false),
    spec("interface-tag-2", 11, FieldKind::String, false),
    spec("asg-tag", 11, FieldKind::String, false),
    spec("asg-tag-2", 11, FieldKind::String, false),
    spec("interface-type", 11, FieldKind::String, false),
    spec("next-hop-interface-id", 11, FieldKind::String, false),
    spec("next-hop-subnet-id", 11, FieldKind::String, false),
    spec("next-hop-az-id", 11, FieldKind::String, false),
    spec("next-hop-vpc-id", 11, FieldKind::String, false),
    spec("next-hop-interface-type", 11, FieldKind::String, false),
    spec("resource-type", 6, FieldKind::String, true),
    spec("tgw-id", 6, FieldKind::String, true),
    spec("tgw-attachment-id", 6, FieldKind::String, true),
    spec("tgw-src-vpc-account-id", 6, FieldKind::String, true),
    spec("tgw-dst-vpc-account-id", 6, FieldKind::String, true),
    spec("tgw-src-vpc-id", 6, FieldKind::String, true),
    spec("tgw-dst-vpc-id", 6, FieldKind::String, true),
    spec("tgw-src-subnet-id", 6, FieldKind::String, true),
    spec("tgw-dst-subnet-id", 6, FieldKind::String, true),
    spec("tgw-src-eni", 6, FieldKind::String, true),
    spec("tgw-dst-eni", 6, FieldKind::String, true),
    spec("tgw-src-az-id", 6, FieldKind::String, true),
    spec("tgw-dst-az-id", 6, FieldKind::String, true),
    spec("tgw-pair-attachment-id", 6, FieldKind::String, true),
    spec("packets-lost-no-route", 6, FieldKind::Int64, true),
    spec("packets-lost-blackhole", 6, FieldKind::Int64, true),
    spec("packets-lost-mtu-exceeded", 6, FieldKind::Int64, true),
    spec("packets-lost-ttl-expired", 6, FieldKind::Int64, true),
];

/// One flow log field: an index into [`FIELDS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Field(u8);

macro_rules! field_constants {
    ($($constant:ident = $index:expr, $name:literal;)*) => {
        impl Field {
            $(
                #[doc = concat!("`", $name, "`")]
                pub const $constant: Field = Field($index);
            )*
        }
        #[cfg(test)]
        pub(crate) const NAMED: &[(Field, &str)] = &[$((Field::$constant, $name)),*];
    };
}

field_constants! {
    VERSION = 0, "version";
    ACCOUNT_ID = 1, "account-id";
    INTERFACE_ID = 2, "interface-id";
    SRCADDR = 3, "srcaddr";
    DSTADDR = 4, "dstaddr";
    SRCPORT = 5, "srcport";
    DSTPORT = 6, "dstport";
    PROTOCOL = 7, "protocol";
    PACKETS = 8, "packets";
    BYTES = 9, "bytes";
    START = 10, "start";
    END = 11, "end";
    ACTION = 12, "action";
    LOG_STATUS = 13, "log-status";
    VPC_ID = 14, "vpc-id";
    SUBNET_ID = 15, "subnet-id";
    INSTANCE_ID = 16, "instance-id";
    TCP_FLAGS = 17, "tcp-flags";
    TYPE = 18, "type";
    PKT_SRCADDR = 19, "pkt-srcaddr";
    PKT_DSTADDR = 20, "pkt-dstaddr";
    REGION = 21, "region";
    AZ_ID = 22, "az-id";
    SUBLOCATION_TYPE = 23, "sublocation-type";
    SUBLOCATION_ID = 24, "sublocation-id";
    PKT_SRC_AWS_SERVICE = 25, "pkt-src-aws-service";
    PKT_DST_AWS_SERVICE = 26, "pkt-dst-aws-service";
    FLOW_DIRECTION = 27, "flow-direction";
    TRAFFIC_PATH = 28, "traffic-path";
    REJECT_REASON = 39, "reject-reason";
    RESOURCE_ID = 40, "resource-id";
    ENCRYPTION_STATUS = 41, "encryption-status";
    RESOURCE_TYPE = 54, "resource-type";
    TGW_ID = 55, "tgw-id";
    TGW_ATTACHMENT_ID = 56, "tgw-attachment-id";
}

impl Field {
    /// Every field, in table order.
    pub fn all() -> impl Iterator<Item = Field> {
        (0..FIELDS.len() as u8).map(Field)
    }

    /// The field named `name` in a log format or header (`pkt-srcaddr`).
    pub fn by_name(name: &str) -> Option<Field> {
        FIELDS
            .iter()
            .position(|f| f.name == name)
            .map(|i| Field(i as u8))
    }

    /// The field whose Parquet/Athena column is `column` (`pkt_srcaddr`).
    pub fn by_column(column: &str) -> Option<Field> {
        Field::all().find(|f| {
            let name = f.name();
            name.len() == column.len()
                && name
                    .bytes()
                    .zip(column.bytes())
                    .all(|(n, c)| n == c || (n == b'-' && c == b'_'))
        })
    }

    /// What AWS documents about it.
    pub fn spec(self) -> &'static FieldSpec {
        &FIELDS[usize::from(self.0)]
    }

    /// Its name (`pkt-srcaddr`).
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Its Parquet and Athena column name: hyphens become underscores (`pkt_srcaddr`).
    pub fn column(self) -> String {
        self.name().replace('-', "_")
    }

    /// Its type.
    pub fn kind(self) -> FieldKind {
        self.spec().kind
    }
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Field({})", self.name())
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_the_spec_tsv() {
        let tsv = include_str!("../../tests/data/flowlog-fields.tsv");
        let rows: Vec<Vec<&str>> = tsv
            .lines()
            .skip(1)
            .map(|l| l.split('\t').collect())
            .collect();
        assert_eq!(rows.len(), FIELDS.len());
        for (row, spec) in rows.iter().zip(FIELDS) {
            assert_eq!(row[0], spec.name);
            assert!(
                row[1].starts_with(&spec.version.to_string()),
                "{}",
                spec.name
            );
            assert_eq!(
                row[1].contains("TGW"),
                spec.transit_gateway_only,
                "{}",
                spec.name
            );
            let kind = match row[2].trim_end_matches('?') {
                "INT_32" => FieldKind::Int32,
                "INT_64" => FieldKind::Int64,
                _ => FieldKind::String,
            };
            assert_eq!(kind, spec.kind, "{}", spec.name);
        }
    }

    #[test]
    fn named_constants_point_at_their_fields() {
        for (field, name) in NAMED {
            assert_eq!(field.name(), *name);
        }
    }

    #[test]
    fn columns_use_underscores_and_resolve_back() {
        assert_eq!(Field::PKT_SRC_AWS_SERVICE.column(), "pkt_src_aws_service");
        for field in Field::all() {
            assert_eq!(Field::by_column(&field.column()), Some(field));
            assert_eq!(Field::by_name(field.name()), Some(field));
        }
        assert_eq!(Field::by_name("pkt_srcaddr"), None);
    }
}
