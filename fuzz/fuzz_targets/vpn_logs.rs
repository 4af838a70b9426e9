//! Site-to-Site VPN tunnel and BGP logs and Client VPN connection logs: any input is
//! parsed or refused, never a panic; what parses writes back and reads back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nettrail_formats::vpn::bgp::{recognize_bgp_status, BgpLog};
use nettrail_formats::vpn::catalogue::recognize;
use nettrail_formats::vpn::client_vpn::ConnectionLogEntry;
use nettrail_formats::vpn::tunnel::TunnelActivityLog;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = recognize(text);
    let _ = recognize_bgp_status(text);
    if let Ok(log) = TunnelActivityLog::from_json(text) {
        assert_eq!(TunnelActivityLog::from_json(&log.to_json()).unwrap(), log);
    }
    if let Ok(log) = TunnelActivityLog::from_text(text) {
        let _ = log.to_text();
    }
    if let Ok(log) = BgpLog::from_json(text) {
        assert_eq!(BgpLog::from_json(&log.to_json()).unwrap(), log);
    }
    if let Ok(entry) = ConnectionLogEntry::from_json(text) {
        assert_eq!(ConnectionLogEntry::from_json(&entry.to_json()).unwrap(), entry);
    }
});
