//! Flow log formats: which fields a record carries, in which order.

use std::fmt;

use super::error::FlowError;
use super::fields::Field;

/// The fields of a flow log record, in order: the `LogFormat` of a flow log
/// subscription, or the header line of an S3 text file.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LogFormat {
    fields: Vec<Field>,
}

/// The default VPC format (all version 2 fields, in table order).
const DEFAULT_FIELDS: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
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
    "log-status",
];

/// The Transit Gateway default format, as AWS lists it.
const TRANSIT_GATEWAY_DEFAULT_FIELDS: &[&str] = &[
    "version",
    "resource-type",
    "account-id",
    "tgw-id",
    "tgw-attachment-id",
    "tgw-src-vpc-account-id",
    "tgw-dst-vpc-account-id",
    "tgw-src-vpc-id",
    "tgw-dst-vpc-id",
    "tgw-src-subnet-id",
    "tgw-dst-subnet-id",
    "tgw-src-eni",
    "tgw-dst-eni",
    "tgw-src-az-id",
    "tgw-dst-az-id",
    "tgw-pair-attachment-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "log-status",
    "type",
    "packets-lost-no-route",
    "packets-lost-blackhole",
    "packets-lost-mtu-exceeded",
    "packets-lost-ttl-expired",
    "tcp-flags",
    "region",
    "flow-direction",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
];

fn named(names: &[&str]) -> LogFormat {
    LogFormat {
        fields: names
            .iter()
            .map(|n| Field::by_name(n).expect("a known field"))
            .collect(),
    }
}

impl LogFormat {
    /// The default VPC flow log format: the 14 version-2 fields.
    pub fn default_vpc() -> LogFormat {
        named(DEFAULT_FIELDS)
    }

    /// The default Transit Gateway flow log format: every version 2 to 6 field that
    /// Transit Gateway records carry.
    pub fn default_transit_gateway() -> LogFormat {
        named(TRANSIT_GATEWAY_DEFAULT_FIELDS)
    }

    /// A format of these fields, in this order.
    pub fn new(fields: Vec<Field>) -> Result<LogFormat, FlowError> {
        if fields.is_empty() {
            return Err(FlowError::EmptyFormat);
        }
        for (i, field) in fields.iter().enumerate() {
            if fields[..i].contains(field) {
                return Err(FlowError::DuplicateField(field.name().into()));
            }
        }
        Ok(LogFormat { fields })
    }

    /// Parses a `LogFormat` property: `${field}` tokens separated by spaces, as given to
    /// `aws ec2 create-flow-logs --log-format` and CloudFormation.
    pub fn parse(spec: &str) -> Result<LogFormat, FlowError> {
        let mut fields = Vec::new();
        for token in spec.split(' ').filter(|t| !t.is_empty()) {
            let name = token
                .strip_prefix("${")
                .and_then(|t| t.strip_suffix('}'))
                .ok_or_else(|| FlowError::BadFormatToken(token.into()))?;
            fields.push(Field::by_name(name).ok_or_else(|| FlowError::UnknownField(name.into()))?);
        }
        LogFormat::new(fields)
    }

    /// Reads the header line of an S3 text file: the bare field names, in format order,
    /// separated by single spaces.
    pub fn from_header(line: &str) -> Result<LogFormat, FlowError> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut fields = Vec::new();
        for name in line.split(' ').filter(|t| !t.is_empty()) {
            fields.push(Field::by_name(name).ok_or_else(|| FlowError::UnknownField(name.into()))?);
        }
        LogFormat::new(fields)
    }

    /// Whether `line` is a header line rather than a record: every token is a field
    /// name. No record can be: the first token of a record would have to be a field name
    /// that is also a value of its own field, and none of AWS's is.
    pub fn is_header(line: &str) -> bool {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut tokens = line.split(' ').filter(|t| !t.is_empty()).peekable();
        tokens.peek().is_some() && tokens.all(|t| Field::by_name(t).is_some())
    }

    /// The fields, in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// How many fields a record of this format has.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Never true: a format has at least one field. (For API symmetry with `len`.)
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Where `field` is in a record, if the format has it.
    pub fn position(&self, field: Field) -> Option<usize> {
        self.fields.iter().position(|f| *f == field)
    }

    /// The value of the `version` field for records of this format: the highest
    /// version among its fields (2 for the default format).
    pub fn version(&self) -> u8 {
        self.fields
            .iter()
            .map(|f| f.spec().version)
            .max()
            .unwrap_or(2)
    }

    /// Whether this is a Transit Gateway flow log format (it has a field only Transit
    /// Gateway records carry). Such records are kept apart from VPC records.
    pub fn is_transit_gateway(&self) -> bool {
        self.fields.iter().any(|f| f.spec().transit_gateway_only)
    }

    /// The header line of an S3 text file of this format (no newline).
    pub fn header(&self) -> String {
        let names: Vec<&str> = self.fields.iter().map(|f| f.name()).collect();
        names.join(" ")
    }

    /// The `LogFormat` property form: `${version} ${account-id} …`.
    pub fn to_spec(&self) -> String {
        let tokens: Vec<String> = self
            .fields
            .iter()
            .map(|f| format!("${{{}}}", f.name()))
            .collect();
        tokens.join(" ")
    }

    /// The fields in AWS's table order, as "all fields" formats list them.
    pub fn all_vpc_fields() -> LogFormat {
        LogFormat {
            fields: Field::all()
                .filter(|f| !f.spec().transit_gateway_only)
                .collect(),
        }
    }
}

impl fmt::Debug for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogFormat({})", self.header())
    }
}

impl Default for LogFormat {
    fn default() -> Self {
        LogFormat::default_vpc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_format_is_version_2_and_reads_back_from_its_spec_and_header() {
        let format = LogFormat::default_vpc();
        assert_eq!(format.version(), 2);
        assert_eq!(
            format.header(),
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
        );
        assert_eq!(LogFormat::parse(&format.to_spec()).unwrap(), format);
        assert_eq!(LogFormat::from_header(&format.header()).unwrap(), format);
        assert!(!format.is_transit_gateway());
    }

    #[test]
    fn the_version_is_the_highest_among_the_chosen_fields() {
        let spec = "${version} ${vpc-id} ${subnet-id} ${instance-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${tcp-flags} ${type} ${pkt-srcaddr} ${pkt-dstaddr}";
        assert_eq!(LogFormat::parse(spec).unwrap().version(), 3);
        assert_eq!(
            LogFormat::parse("${srcaddr} ${az-id}").unwrap().version(),
            4
        );
        assert_eq!(
            LogFormat::parse("${encryption-status}").unwrap().version(),
            10
        );
        assert_eq!(LogFormat::all_vpc_fields().version(), 11);
        assert_eq!(LogFormat::all_vpc_fields().len(), 54);
        assert_eq!(LogFormat::default_transit_gateway().version(), 6);
        assert!(LogFormat::default_transit_gateway().is_transit_gateway());
    }

    #[test]
    fn bad_formats_name_what_is_wrong() {
        let err = |s: &str| LogFormat::parse(s).unwrap_err().to_string();
        assert_eq!(err(""), "a log format needs at least one field");
        assert_eq!(
            err("${srcaddr} dstaddr"),
            "`dstaddr` is not a `${field}` token"
        );
        assert_eq!(err("${src-addr}"), "unknown flow log field `src-addr`");
        assert_eq!(err("${start} ${start}"), "field `start` appears twice");
    }

    #[test]
    fn headers_are_told_from_records() {
        assert!(LogFormat::is_header(
            "flow-direction traffic-path srcaddr dstaddr srcport dstport encryption-status"
        ));
        assert!(!LogFormat::is_header(
            "ingress - 10.0.133.8 10.0.128.55 43236 80 1"
        ));
        assert!(!LogFormat::is_header(
            "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA"
        ));
        assert!(!LogFormat::is_header(""));
    }
}
