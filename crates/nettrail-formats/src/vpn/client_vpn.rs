//! AWS Client VPN connection logs: one JSON object per connection event, every scalar a
//! string, `"NA"` for not applicable. Key order differs between AWS's own samples, so
//! an entry keeps the order it was read in; new entries use the order of AWS's 2026
//! samples.

use serde_json::Value;

use super::VpnLogError;
use crate::json_object::OrderedObject;
use crate::time::UtcDateTime;

/// The key order nettrail writes (AWS's 2026 samples; keys those samples lack are
/// placed where AWS's older samples put them, near the end).
pub const KEY_ORDER: &[&str] = &[
    "connection-log-type",
    "connection-attempt-status",
    "connection-attempt-failure-reason",
    "connection-id",
    "client-vpn-endpoint-id",
    "transport-protocol",
    "connection-start-time",
    "connection-last-update-time",
    "client-ip",
    "client-ip-v6",
    "common-name",
    "device-type",
    "device-ip",
    "port",
    "ingress-bytes",
    "egress-bytes",
    "ingress-packets",
    "egress-packets",
    "authorization-policy-evaluation",
    "posture-compliance-statuses",
    "connection-end-time",
    "connection-reset-status",
    "username",
    "connection-duration-seconds",
];

/// Keys whose value is not a string.
const STRUCTURED_KEYS: &[&str] = &[
    "authorization-policy-evaluation",
    "posture-compliance-statuses",
];

/// `connection-log-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryType {
    /// `connection-attempt`: a client connects or tries to.
    Attempt,
    /// `connection-reset`: a connection ended (with its final counters).
    Reset,
}

/// `connection-attempt-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptStatus {
    /// `successful`.
    Successful,
    /// `failed`.
    Failed,
    /// `waiting-for-assertion` (SAML).
    WaitingForAssertion,
}

/// One connection log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionLogEntry {
    object: OrderedObject,
}

/// The time format of connection logs: `2020-03-26 20:37:15` (UTC).
pub fn parse_time(text: &str) -> Option<UtcDateTime> {
    let b = text.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = &text[range];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let time = UtcDateTime {
        year: number(0..4)? as i32,
        month: number(5..7)? as u8,
        day: number(8..10)? as u8,
        hour: number(11..13)? as u8,
        minute: number(14..16)? as u8,
        second: number(17..19)? as u8,
    };
    time.to_unix().map(|_| time)
}

/// Writes a time as connection logs do.
pub fn format_time(time: UtcDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        time.year, time.month, time.day, time.hour, time.minute, time.second
    )
}

impl ConnectionLogEntry {
    /// Parses one entry (compact or pretty JSON).
    pub fn from_json(text: &str) -> Result<ConnectionLogEntry, VpnLogError> {
        let object: OrderedObject = serde_json::from_str(text).map_err(VpnLogError::Json)?;
        for (key, value) in &object.0 {
            if STRUCTURED_KEYS.contains(&key.as_str()) {
                continue;
            }
            if !value.is_string() {
                return Err(VpnLogError::Field(
                    KEY_ORDER
                        .iter()
                        .find(|k| **k == key)
                        .copied()
                        .unwrap_or("(unknown key)"),
                    "not a string",
                ));
            }
        }
        for key in [
            "connection-log-type",
            "connection-id",
            "client-vpn-endpoint-id",
        ] {
            if object.get(key).is_none() {
                return Err(VpnLogError::Field(key, "missing"));
            }
        }
        Ok(ConnectionLogEntry { object })
    }

    /// A new entry from (key, value) pairs, written in AWS's key order; `None` values are
    /// written as `"NA"`. Keys nettrail does not know go last, in the order given.
    pub fn new(fields: &[(&str, Option<&str>)]) -> ConnectionLogEntry {
        let mut entries: Vec<(String, Value)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.unwrap_or("NA").to_owned())))
            .collect();
        entries.sort_by_key(|(k, _)| {
            KEY_ORDER
                .iter()
                .position(|o| o == k)
                .unwrap_or(KEY_ORDER.len())
        });
        ConnectionLogEntry {
            object: OrderedObject(entries),
        }
    }

    /// Sets a structured value (`authorization-policy-evaluation`), in AWS's place.
    pub fn with_structured(mut self, key: &str, value: Value) -> ConnectionLogEntry {
        self.object.0.retain(|(k, _)| k != key);
        let rank = |k: &str| {
            KEY_ORDER
                .iter()
                .position(|o| *o == k)
                .unwrap_or(KEY_ORDER.len())
        };
        let at = self
            .object
            .0
            .iter()
            .position(|(k, _)| rank(k) > rank(key))
            .unwrap_or(self.object.0.len());
        self.object.0.insert(at, (key.to_owned(), value));
        self
    }

    /// The entry as compact JSON, keys in order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.object).expect("serialisable")
    }

    /// A key's value as written (`"NA"` included), if present.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.object.get(key).and_then(Value::as_str)
    }

    /// A key's value, `None` when absent or `"NA"`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw(key).filter(|v| *v != "NA")
    }

    /// A counter or port, `None` when absent, `"NA"` or not a number.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.get(key)?.parse().ok()
    }

    /// A time key (`connection-start-time`…), `None` when absent, `"NA"` or malformed.
    pub fn time(&self, key: &str) -> Option<UtcDateTime> {
        parse_time(self.get(key)?)
    }

    /// `connection-log-type`.
    pub fn entry_type(&self) -> Option<EntryType> {
        match self.get("connection-log-type")? {
            "connection-attempt" => Some(EntryType::Attempt),
            "connection-reset" => Some(EntryType::Reset),
            _ => None,
        }
    }

    /// `connection-attempt-status`.
    pub fn attempt_status(&self) -> Option<AttemptStatus> {
        match self.get("connection-attempt-status")? {
            "successful" => Some(AttemptStatus::Successful),
            "failed" => Some(AttemptStatus::Failed),
            "waiting-for-assertion" => Some(AttemptStatus::WaitingForAssertion),
            _ => None,
        }
    }

    /// `authorization-policy-evaluation`, when present.
    pub fn authorization_policy_evaluation(&self) -> Option<&Value> {
        self.object.get("authorization-policy-evaluation")
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.object.keys()
    }
}

/// The log stream AWS creates when none is configured:
/// `cvpn-endpoint-…-REGION-YYYY/MM/DD-RANDOM12`.
pub fn default_stream_name(
    endpoint_id: &str,
    region: &str,
    date: UtcDateTime,
    random12: &str,
) -> String {
    format!(
        "{endpoint_id}-{region}-{:04}/{:02}/{:02}-{random12}",
        date.year, date.month, date.day
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_and_write() {
        let t = parse_time("2026-09-24 22:22:25").unwrap();
        assert_eq!(format_time(t), "2026-09-24 22:22:25");
        assert!(parse_time("NA").is_none());
        assert!(parse_time("2026-02-30 00:00:00").is_none());
        assert!(parse_time("2026-09-24T22:22:25").is_none());
    }

    #[test]
    fn new_entries_use_aws_key_order_and_na() {
        let entry = ConnectionLogEntry::new(&[
            ("connection-id", Some("cvpn-connection-abc123abc123abc12")),
            ("connection-log-type", Some("connection-attempt")),
            (
                "client-vpn-endpoint-id",
                Some("cvpn-endpoint-aaa111bbb222ccc33"),
            ),
            ("connection-end-time", None),
        ]);
        assert_eq!(
            entry.to_json(),
            r#"{"connection-log-type":"connection-attempt","connection-id":"cvpn-connection-abc123abc123abc12","client-vpn-endpoint-id":"cvpn-endpoint-aaa111bbb222ccc33","connection-end-time":"NA"}"#
        );
        assert_eq!(entry.get("connection-end-time"), None);
        assert_eq!(entry.raw("connection-end-time"), Some("NA"));
        let entry = entry.with_structured(
            "authorization-policy-evaluation",
            serde_json::json!({"result": "permit"}),
        );
        let keys: Vec<&str> = entry.keys().collect();
        assert_eq!(keys[3], "authorization-policy-evaluation");
    }

    #[test]
    fn bad_entries_name_the_field() {
        let err = ConnectionLogEntry::from_json(r#"{"connection-log-type":"connection-attempt","connection-id":"c","client-vpn-endpoint-id":"e","port":50096}"#).unwrap_err();
        assert_eq!(err.to_string(), "field port: not a string");
        let err = ConnectionLogEntry::from_json(r#"{"connection-log-type":"connection-attempt"}"#)
            .unwrap_err();
        assert_eq!(err.to_string(), "field connection-id: missing");
    }

    #[test]
    fn the_default_stream_name_matches_aws_example() {
        let date = parse_time("2020-11-13 00:00:00").unwrap();
        assert_eq!(
            default_stream_name(
                "cvpn-endpoint-123456789123abcde",
                "ap-south-1",
                date,
                "FCD8HEMVaCcw"
            ),
            "cvpn-endpoint-123456789123abcde-ap-south-1-2020/11/13-FCD8HEMVaCcw"
        );
    }
}
