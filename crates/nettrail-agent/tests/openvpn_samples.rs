//! Client VPN connection log entries made from what a real OpenVPN 2.6 management
//! interface said (`../shared/samples/openvpn/mgmt-events.jsonl`, recorded by
//! `../shared/labs/openvpn-lab.sh`): the recording is turned back into the protocol's
//! lines and fed through the parser and the tracker, with the recorded times.

use std::path::PathBuf;

use nettrail_agent::openvpn::{ClientTracker, ConnectPolicy, Decision, MgmtMessage, MgmtParser};
use nettrail_formats::vpn::client_vpn::ConnectionLogEntry;
use serde_json::Value;

fn recording() -> Vec<Value> {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../../../shared/samples/openvpn/mgmt-events.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} (shared/ must sit beside the repository): {e}",
            path.display()
        )
    });
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The management protocol lines of one recorded item.
fn protocol_lines(item: &Value) -> Vec<String> {
    let s = |k: &str| item[k].as_str().unwrap_or_default().to_owned();
    match item["kind"].as_str().unwrap() {
        "client" => {
            let event = s("event");
            if event == "ADDRESS" {
                return vec![format!(
                    ">CLIENT:ADDRESS,{},{},{}",
                    s("cid"),
                    s("addr"),
                    s("primary")
                )];
            }
            let mut lines = vec![match item.get("kid") {
                Some(kid) => format!(">CLIENT:{event},{},{}", s("cid"), kid.as_str().unwrap()),
                None => format!(">CLIENT:{event},{}", s("cid")),
            }];
            for (k, v) in item["env"].as_object().into_iter().flatten() {
                lines.push(format!(">CLIENT:ENV,{k}={}", v.as_str().unwrap()));
            }
            lines.push(">CLIENT:ENV,END".into());
            lines
        }
        "bytecount" => vec![format!(
            ">BYTECOUNT_CLI:{},{},{}",
            s("cid"),
            item["bytes_in"],
            item["bytes_out"]
        )],
        "log" => vec![format!(">LOG:{},{},{}", s("time"), s("flags"), s("msg"))],
        "notification" => vec![s("raw")],
        _ => Vec::new(),
    }
}

struct Replay {
    entries: Vec<(i64, ConnectionLogEntry)>,
    decisions: Vec<(u64, Decision)>,
}

fn replay(update_interval: i64) -> Replay {
    let policy = ConnectPolicy {
        allow_common_names: Vec::new(),
        deny_common_names: vec!["denied.lab".into()],
    };
    let mut tracker = ClientTracker::new("cvpn-endpoint-0123456789abcdef0", policy);
    let mut parser = MgmtParser::default();
    let mut out = Replay {
        entries: Vec::new(),
        decisions: Vec::new(),
    };
    for item in recording() {
        let now = item["ts"].as_f64().unwrap() as i64;
        out.entries.extend(tracker.periodic(now, update_interval));
        for line in protocol_lines(&item) {
            match parser.line(&line) {
                Some(MgmtMessage::Client(event)) => {
                    let (decision, entries) = tracker.on_client(&event, now);
                    if let Some(d) = decision {
                        out.decisions.push((event.cid, d));
                    }
                    out.entries.extend(entries);
                }
                Some(MgmtMessage::ByteCount {
                    cid,
                    bytes_in,
                    bytes_out,
                }) => tracker.on_bytecount(cid, bytes_in, bytes_out),
                _ => {}
            }
        }
    }
    out
}

fn of<'a>(entries: &'a [(i64, ConnectionLogEntry)], cn: &str) -> Vec<&'a ConnectionLogEntry> {
    entries
        .iter()
        .filter(|(_, e)| e.get("common-name") == Some(cn))
        .map(|(_, e)| e)
        .collect()
}

#[test]
fn the_good_client_is_logged_connected_updated_and_ended() {
    let r = replay(2);
    let client1 = of(&r.entries, "client1.lab");
    assert!(
        client1.len() >= 3,
        "established, an update, the end: {client1:?}"
    );
    let first = client1[0];
    assert_eq!(
        first.to_json(),
        r#"{"connection-log-type":"connection-attempt","connection-attempt-status":"successful","connection-attempt-failure-reason":"NA","connection-id":"cvpn-connection-88b1dcad30571c0af","client-vpn-endpoint-id":"cvpn-endpoint-0123456789abcdef0","transport-protocol":"udp","connection-start-time":"2026-11-23 04:00:24","connection-last-update-time":"2026-11-23 04:00:25","client-ip":"10.250.0.2","client-ip-v6":"NA","common-name":"client1.lab","device-type":"linux","device-ip":"10.210.0.2","port":"58383","ingress-bytes":"0","egress-bytes":"0","ingress-packets":"NA","egress-packets":"NA","connection-end-time":"NA","connection-reset-status":"NA","username":"NA","connection-duration-seconds":"1"}"#
    );
    // Byte counts grow in the updates; one connection id throughout.
    let bytes: Vec<u64> = client1
        .iter()
        .map(|e| e.number("ingress-bytes").unwrap())
        .collect();
    assert!(
        bytes.windows(2).all(|w| w[0] <= w[1]) && bytes.last() > bytes.first(),
        "{bytes:?}"
    );
    assert!(client1
        .iter()
        .all(|e| e.get("connection-id") == first.get("connection-id")));
    let last = client1.last().unwrap();
    assert_eq!(last.get("connection-end-time"), Some("2026-11-23 04:00:33"));
    assert_eq!(last.get("connection-duration-seconds"), Some("9"));
    assert_eq!(last.get("ingress-bytes"), Some("2965"));
    // The client that vanished (SIGKILL) is ended when the server gives up on it.
    let client2 = of(&r.entries, "client2.lab");
    assert_eq!(
        client2.last().unwrap().get("connection-duration-seconds"),
        Some("20")
    );
    assert_ne!(client2[0].get("connection-id"), first.get("connection-id"));
}

#[test]
fn a_denied_client_is_one_failed_entry_and_other_cas_make_none() {
    let r = replay(60);
    let denied = of(&r.entries, "denied.lab");
    assert_eq!(
        denied.len(),
        1,
        "the env-less DISCONNECT adds nothing: {denied:?}"
    );
    let e = denied[0];
    assert_eq!(e.get("connection-attempt-status"), Some("failed"));
    assert_eq!(
        e.get("connection-attempt-failure-reason"),
        Some("client-connect-failed")
    );
    // `raw` shows "NA" as written (`get` reads it as absent).
    assert_eq!(e.raw("connection-start-time"), Some("NA"));
    assert_eq!(e.raw("client-ip"), Some("NA"));
    assert_eq!(e.raw("connection-duration-seconds"), Some("NA"));
    assert_eq!(e.raw("connection-end-time"), Some("NA"));
    assert!(matches!(
        r.decisions.iter().find(|(cid, _)| *cid == 2),
        Some((_, Decision::Deny { .. }))
    ));
    assert_eq!(
        r.decisions
            .iter()
            .filter(|(_, d)| *d == Decision::Allow)
            .count(),
        2
    );
    // The rogue CA's and the revoked certificate's clients never reached the
    // management interface: no entry, as on AWS.
    assert!(of(&r.entries, "rogue.lab").is_empty());
    assert!(of(&r.entries, "revoked.lab").is_empty());
    // Every entry is valid connection log JSON.
    for (_, entry) in &r.entries {
        ConnectionLogEntry::from_json(&entry.to_json()).unwrap();
    }
}
