//! Site-to-Site VPN tunnel activity logs (IKE, IPsec and DPD), one event per log line,
//! in AWS's JSON (the default `LogOutputFormat`) or text form.

use serde_json::Value;

use super::catalogue::{recognize, Recognized};
use super::VpnLogError;
use crate::json_object::OrderedObject;

/// An IKE phase's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelState {
    /// The SA is up.
    Established,
    /// The SA is being rekeyed.
    Rekeying,
    /// The SA is being negotiated.
    Negotiating,
    /// No SA.
    Down,
}

impl TunnelState {
    /// Reads a state in any letter case (AWS documents `Established`; users see
    /// `established`).
    pub fn parse(text: &str) -> Option<TunnelState> {
        match text.to_ascii_lowercase().as_str() {
            "established" => Some(TunnelState::Established),
            "rekeying" => Some(TunnelState::Rekeying),
            "negotiating" => Some(TunnelState::Negotiating),
            "down" => Some(TunnelState::Down),
            _ => None,
        }
    }

    /// The state as AWS writes it in logs (lowercase, as users report it).
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelState::Established => "established",
            TunnelState::Rekeying => "rekeying",
            TunnelState::Negotiating => "negotiating",
            TunnelState::Down => "down",
        }
    }
}

/// One tunnel activity log event. Values are kept as written (a state in unexpected
/// case, a boolean written as a string) so that an event reads back byte for byte; the
/// typed views interpret them.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelActivityLog {
    /// `event_timestamp`: creation time, epoch (seconds in older logs, milliseconds in
    /// newer ones).
    pub event_timestamp: i64,
    /// `timestamp`: the same, human-readable (`2025-11-08 05:40:29.641Z`; newer logs).
    pub timestamp: Option<String>,
    /// `details`: the IKE/IPsec/DPD message.
    pub details: String,
    /// `dpd_enabled`.
    pub dpd_enabled: bool,
    /// `nat_t_detected`.
    pub nat_t_detected: bool,
    /// `ike_phase1_state`, as written.
    pub ike_phase1_state: String,
    /// `ike_phase2_state`, as written.
    pub ike_phase2_state: String,
    /// The key order of the event as read (AWS's order for new events).
    key_order: Vec<String>,
    /// Keys this model does not know, kept.
    extra: Vec<(String, Value)>,
    /// How the booleans were written (JSON booleans, or strings such as `"True"`).
    booleans_as_text: bool,
}

/// The key order nettrail writes: the field order of AWS's vended-log schema for
/// Site-to-Site VPN connection logs.
const KEY_ORDER: &[&str] = &[
    "timestamp",
    "dpd_enabled",
    "nat_t_detected",
    "ike_phase1_state",
    "ike_phase2_state",
    "event_timestamp",
    "details",
];

impl TunnelActivityLog {
    /// A new event in AWS's key order.
    pub fn new(
        event_timestamp: i64,
        timestamp: Option<String>,
        dpd_enabled: bool,
        nat_t_detected: bool,
        phases: (TunnelState, TunnelState),
        details: String,
    ) -> TunnelActivityLog {
        TunnelActivityLog {
            event_timestamp,
            timestamp,
            details,
            dpd_enabled,
            nat_t_detected,
            ike_phase1_state: phases.0.as_str().into(),
            ike_phase2_state: phases.1.as_str().into(),
            key_order: KEY_ORDER.iter().map(|k| (*k).to_owned()).collect(),
            extra: Vec::new(),
            booleans_as_text: false,
        }
    }

    /// Phase 1's state, if it is one AWS documents.
    pub fn phase1(&self) -> Option<TunnelState> {
        TunnelState::parse(&self.ike_phase1_state)
    }

    /// Phase 2's state, if it is one AWS documents.
    pub fn phase2(&self) -> Option<TunnelState> {
        TunnelState::parse(&self.ike_phase2_state)
    }

    /// The `details` message, recognised against AWS's catalogue.
    pub fn recognize(&self) -> Recognized {
        recognize(&self.details)
    }

    /// Parses one JSON event.
    pub fn from_json(text: &str) -> Result<TunnelActivityLog, VpnLogError> {
        let object: OrderedObject = serde_json::from_str(text).map_err(VpnLogError::Json)?;
        let text_field = |key: &'static str| -> Result<Option<String>, VpnLogError> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(VpnLogError::Field(key, "not a string")),
            }
        };
        let mut booleans_as_text = false;
        let mut boolean = |key: &'static str| -> Result<bool, VpnLogError> {
            match object.get(key) {
                Some(Value::Bool(b)) => Ok(*b),
                Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => {
                    booleans_as_text = true;
                    Ok(true)
                }
                Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => {
                    booleans_as_text = true;
                    Ok(false)
                }
                None => Err(VpnLogError::Field(key, "missing")),
                Some(_) => Err(VpnLogError::Field(key, "not true or false")),
            }
        };
        let dpd_enabled = boolean("dpd_enabled")?;
        let nat_t_detected = boolean("nat_t_detected")?;
        let event_timestamp = match object.get("event_timestamp") {
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or(VpnLogError::Field("event_timestamp", "not an integer"))?,
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| VpnLogError::Field("event_timestamp", "not an integer"))?,
            None => return Err(VpnLogError::Field("event_timestamp", "missing")),
            Some(_) => return Err(VpnLogError::Field("event_timestamp", "not an integer")),
        };
        let log = TunnelActivityLog {
            event_timestamp,
            timestamp: text_field("timestamp")?,
            details: text_field("details")?.ok_or(VpnLogError::Field("details", "missing"))?,
            dpd_enabled,
            nat_t_detected,
            ike_phase1_state: text_field("ike_phase1_state")?
                .ok_or(VpnLogError::Field("ike_phase1_state", "missing"))?,
            ike_phase2_state: text_field("ike_phase2_state")?
                .ok_or(VpnLogError::Field("ike_phase2_state", "missing"))?,
            key_order: object.keys().map(str::to_owned).collect(),
            extra: object
                .0
                .iter()
                .filter(|(k, _)| !KEY_ORDER.contains(&k.as_str()))
                .cloned()
                .collect(),
            booleans_as_text,
        };
        // event_timestamp written as a string would not read back as written.
        if matches!(object.get("event_timestamp"), Some(Value::String(_))) {
            return Err(VpnLogError::Field(
                "event_timestamp",
                "a string, not a number",
            ));
        }
        Ok(log)
    }

    /// The event as compact JSON, keys in the order read (AWS's order for new events).
    pub fn to_json(&self) -> String {
        let mut entries = Vec::with_capacity(self.key_order.len());
        let boolean = |b: bool| {
            if self.booleans_as_text {
                Value::String(if b { "True" } else { "False" }.into())
            } else {
                Value::Bool(b)
            }
        };
        for key in &self.key_order {
            let value = match key.as_str() {
                "timestamp" => match &self.timestamp {
                    Some(t) => Value::String(t.clone()),
                    None => Value::Null,
                },
                "dpd_enabled" => boolean(self.dpd_enabled),
                "nat_t_detected" => boolean(self.nat_t_detected),
                "ike_phase1_state" => Value::String(self.ike_phase1_state.clone()),
                "ike_phase2_state" => Value::String(self.ike_phase2_state.clone()),
                "event_timestamp" => Value::from(self.event_timestamp),
                "details" => Value::String(self.details.clone()),
                other => match self.extra.iter().find(|(k, _)| k == other) {
                    Some((_, v)) => v.clone(),
                    None => continue,
                },
            };
            entries.push((key.clone(), value));
        }
        serde_json::to_string(&OrderedObject(entries)).expect("JSON values serialise")
    }

    /// The event in nettrail's text form (`LogOutputFormat=text`). AWS publishes no
    /// sample of its text form, so this one is nettrail's: `key=value` pairs in AWS's key
    /// order, `details` last and unquoted:
    /// `2025-11-08 05:40:29.641Z dpd_enabled=true nat_t_detected=false
    /// ike_phase1_state=established ike_phase2_state=established
    /// event_timestamp=1762580429641 details=AWS tunnel …` (one line).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(t) = &self.timestamp {
            out.push_str(t);
            out.push(' ');
        }
        out.push_str(&format!(
            "dpd_enabled={} nat_t_detected={} ike_phase1_state={} ike_phase2_state={} event_timestamp={} details={}",
            self.dpd_enabled, self.nat_t_detected, self.ike_phase1_state, self.ike_phase2_state, self.event_timestamp, self.details
        ));
        out
    }

    /// Reads nettrail's text form back.
    pub fn from_text(line: &str) -> Result<TunnelActivityLog, VpnLogError> {
        let at = line
            .find("dpd_enabled=")
            .ok_or(VpnLogError::Field("dpd_enabled", "missing"))?;
        let timestamp = line[..at].trim();
        let (pairs, details) = line[at..]
            .split_once(" details=")
            .ok_or(VpnLogError::Field("details", "missing"))?;
        let value = |key: &'static str| -> Result<&str, VpnLogError> {
            pairs
                .split(' ')
                .find_map(|p| p.strip_prefix(key).and_then(|p| p.strip_prefix('=')))
                .ok_or(VpnLogError::Field(key, "missing"))
        };
        let boolean = |text: &str, key: &'static str| match text {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(VpnLogError::Field(key, "not true or false")),
        };
        let dpd_enabled = boolean(value("dpd_enabled")?, "dpd_enabled")?;
        let nat_t_detected = boolean(value("nat_t_detected")?, "nat_t_detected")?;
        let phase1 = value("ike_phase1_state")?.to_owned();
        let phase2 = value("ike_phase2_state")?.to_owned();
        let event_timestamp = value("event_timestamp")?
            .parse()
            .map_err(|_| VpnLogError::Field("event_timestamp", "not an integer"))?;
        let mut log = TunnelActivityLog::new(
            event_timestamp,
            (!timestamp.is_empty()).then(|| timestamp.to_owned()),
            dpd_enabled,
            nat_t_detected,
            (TunnelState::Down, TunnelState::Down),
            details.to_owned(),
        );
        log.ike_phase1_state = phase1;
        log.ike_phase2_state = phase2;
        Ok(log)
    }
}

/// The log stream of a tunnel: AWS names it from the VPN connection id and the tunnel's
/// outside IP. The separator is not documented; the tunnel BGP log's `resource_id`
/// (`vpn-1234abcd_1.2.3.4`) uses `_`, and so does nettrail.
pub fn tunnel_stream_name(vpn_connection_id: &str, outside_ip: &str) -> String {
    format!("{vpn_connection_id}_{outside_ip}")
}

/// The VPN connection id and outside IP of a tunnel's stream name (`_` or `-` between
/// them).
pub fn parse_tunnel_stream_name(name: &str) -> Option<(&str, &str)> {
    let id_end = name
        .strip_prefix("vpn-")?
        .find(|c: char| !c.is_ascii_hexdigit())?
        + 4;
    let (id, rest) = name.split_at(id_end);
    let ip = rest.strip_prefix('_').or_else(|| rest.strip_prefix('-'))?;
    ip.parse::<std::net::IpAddr>().ok()?;
    Some((id, ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vpn::catalogue::TunnelEvent;

    #[test]
    fn new_events_use_aws_key_order_and_read_back() {
        let log = TunnelActivityLog::new(
            1_762_580_429_641,
            Some("2025-11-08 05:40:29.641Z".into()),
            true,
            false,
            (TunnelState::Established, TunnelState::Down),
            "AWS tunnel detected a pre-shared key mismatch with cgw: 198.51.100.9".into(),
        );
        let json = log.to_json();
        assert_eq!(
            json,
            r#"{"timestamp":"2025-11-08 05:40:29.641Z","dpd_enabled":true,"nat_t_detected":false,"ike_phase1_state":"established","ike_phase2_state":"down","event_timestamp":1762580429641,"details":"AWS tunnel detected a pre-shared key mismatch with cgw: 198.51.100.9"}"#
        );
        let back = TunnelActivityLog::from_json(&json).unwrap();
        assert_eq!(back, log);
        assert!(matches!(
            back.recognize(),
            Recognized::Known {
                event: TunnelEvent::PreSharedKeyMismatch,
                ..
            }
        ));
        assert_eq!(TunnelActivityLog::from_text(&log.to_text()).unwrap(), log);
    }

    #[test]
    fn events_as_others_wrote_them_read_back_byte_for_byte() {
        let text = r#"{"event_timestamp":1659000000,"details":"AWS tunnel DPD timed out after 3 retransmits","dpd_enabled":"True","nat_t_detected":"False","ike_phase1_state":"Established","ike_phase2_state":"Negotiating","vpn_connection_id":"vpn-0abc"}"#;
        let log = TunnelActivityLog::from_json(text).unwrap();
        assert_eq!(log.to_json(), text);
        assert_eq!(log.phase1(), Some(TunnelState::Established));
        assert_eq!(log.phase2(), Some(TunnelState::Negotiating));
        assert!(log.dpd_enabled && !log.nat_t_detected);
    }

    #[test]
    fn bad_events_name_the_field() {
        let err = TunnelActivityLog::from_json(r#"{"event_timestamp":1,"details":"x","dpd_enabled":"maybe","nat_t_detected":true,"ike_phase1_state":"down","ike_phase2_state":"down"}"#).unwrap_err();
        assert_eq!(err.to_string(), "field dpd_enabled: not true or false");
        assert!(TunnelActivityLog::from_json("[1]").is_err());
        assert!(TunnelActivityLog::from_json(r#"{"details":"x"}"#).is_err());
    }

    #[test]
    fn stream_names_carry_the_connection_and_the_outside_ip() {
        let name = tunnel_stream_name("vpn-0123456789abcdef0", "203.0.113.10");
        assert_eq!(name, "vpn-0123456789abcdef0_203.0.113.10");
        assert_eq!(
            parse_tunnel_stream_name(&name),
            Some(("vpn-0123456789abcdef0", "203.0.113.10"))
        );
        assert_eq!(
            parse_tunnel_stream_name("vpn-1234abcd-1.2.3.4"),
            Some(("vpn-1234abcd", "1.2.3.4"))
        );
        assert_eq!(parse_tunnel_stream_name("eni-1234-all"), None);
    }
}
