//! Properties of the VPN log codecs: what is written reads back equal, and no input
//! makes a parser panic.

use nettrail_formats::vpn::bgp::{BgpLog, BgpLogType, BgpMessage};
use nettrail_formats::vpn::catalogue::{recognize, Recognized, CATALOGUE};
use nettrail_formats::vpn::client_vpn::{ConnectionLogEntry, KEY_ORDER};
use nettrail_formats::vpn::tunnel::{TunnelActivityLog, TunnelState};
use proptest::prelude::*;

fn state() -> impl Strategy<Value = TunnelState> {
    prop_oneof![
        Just(TunnelState::Established),
        Just(TunnelState::Rekeying),
        Just(TunnelState::Negotiating),
        Just(TunnelState::Down)
    ]
}

proptest! {
    #[test]
    fn tunnel_events_read_back_equal(
        event_timestamp in 0i64..4_000_000_000_000,
        timestamp in proptest::option::of("[0-9: .Z-]{1,30}"),
        dpd in any::<bool>(),
        nat in any::<bool>(),
        phases in (state(), state()),
        details in "[^\\n]{1,200}",
    ) {
        let timestamp = timestamp.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty() && !t.contains("dpd_enabled="));
        prop_assume!(!details.contains(" details="));
        let log = TunnelActivityLog::new(event_timestamp, timestamp, dpd, nat, phases, details);
        prop_assert_eq!(&TunnelActivityLog::from_json(&log.to_json()).unwrap(), &log);
        prop_assert_eq!(&TunnelActivityLog::from_text(&log.to_text()).unwrap(), &log);
    }

    #[test]
    fn bgp_events_read_back_equal(
        resource in "vpn-[0-9a-f]{8}_[0-9.]{7,15}",
        event_timestamp in 0i64..4_000_000_000_000,
        route in any::<bool>(),
        status in "[A-Z]{2,10}",
        prefix in proptest::option::of("[0-9./]{9,18}"),
        local_pref in proptest::option::of(0i64..1000),
        details in proptest::option::of("[^\\n]{0,100}"),
    ) {
        let log = BgpLog {
            resource_id: resource,
            event_timestamp,
            timestamp: "2025-11-08 05:40:29.641Z".into(),
            log_type: if route { BgpLogType::RouteStatus } else { BgpLogType::BgpStatus },
            status,
            message: Some(BgpMessage { prefix, local_pref, details, ..BgpMessage::default() }),
        };
        prop_assert_eq!(BgpLog::from_json(&log.to_json()).unwrap(), log);
    }

    #[test]
    fn connection_entries_read_back_equal(values in proptest::collection::vec(proptest::option::of("[ -~]{0,40}"), KEY_ORDER.len())) {
        let fields: Vec<(&str, Option<&str>)> = KEY_ORDER
            .iter()
            .zip(&values)
            .filter(|(k, _)| !k.starts_with("authorization") && !k.starts_with("posture"))
            .map(|(k, v)| (*k, v.as_deref()))
            .collect();
        let entry = ConnectionLogEntry::new(&fields);
        let json = entry.to_json();
        let back = ConnectionLogEntry::from_json(&json).unwrap();
        prop_assert_eq!(back.to_json(), json);
    }

    #[test]
    fn recognition_takes_any_text(text in "\\PC{0,200}") {
        match recognize(&text) {
            Recognized::Unknown(kept) => prop_assert_eq!(kept, text),
            Recognized::Known { event, values } => {
                let rendered = event.render(&values.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>());
                prop_assert!(CATALOGUE.iter().any(|m| m.event == event));
                prop_assert!(!rendered.is_empty());
            }
        }
    }

    #[test]
    fn any_text_is_parsed_or_refused(text in "\\PC{0,300}") {
        let _ = TunnelActivityLog::from_json(&text);
        let _ = TunnelActivityLog::from_text(&text);
        let _ = BgpLog::from_json(&text);
        let _ = ConnectionLogEntry::from_json(&text);
    }
}
