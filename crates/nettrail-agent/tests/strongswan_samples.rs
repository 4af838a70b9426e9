//! The tunnel activity logs made from the vici events recorded from a real charon (the
//! AWS side of `../shared/labs/strongswan-lab.sh`): every scenario's events, pinned by
//! `testdata/strongswan/gw-tunnel-logs.expected`, and the facts each scenario must show.

use std::path::PathBuf;

use nettrail_agent::strongswan::{TunnelConfig, TunnelLogEvent, TunnelTracker, ViciEvent};
use nettrail_formats::vpn::catalogue::{Recognized, TunnelEvent};
use serde_json::Value;

fn manifest_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
}

fn samples() -> PathBuf {
    manifest_dir().join("../../../shared/samples/strongswan")
}

/// The lab's eight tunnels: gw 10.200.0.N, cgw 10.200.0.10N.
fn lab_tunnels() -> Vec<TunnelConfig> {
    [
        "ok", "pskbad", "ikeprop", "espprop", "tsbad", "dpd", "natt", "halfopen",
    ]
    .iter()
    .enumerate()
    .map(|(i, name)| TunnelConfig {
        connection: (*name).to_owned(),
        vpn_connection_id: format!("vpn-0{:016x}", i + 1),
        outside_ip: format!("10.200.0.{}", i + 1),
        cgw_ip: Some(format!("10.200.0.{}", i + 101)),
        dpd_enabled: true,
    })
    .collect()
}

fn replay(path: &std::path::Path) -> Vec<TunnelLogEvent> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} (shared/ must sit beside the repository): {e}",
            path.display()
        )
    });
    let mut tracker = TunnelTracker::new(lab_tunnels());
    let mut out = Vec::new();
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let seconds: f64 = record["ts"].as_str().unwrap().parse().unwrap();
        let event = ViciEvent {
            name: record["event"].as_str().unwrap().to_owned(),
            body: record["body"].clone(),
            received_ms: (seconds * 1000.0).round() as i64,
        };
        out.extend(tracker.apply(&event));
    }
    out
}

fn render(events: &[TunnelLogEvent]) -> String {
    let mut text = String::new();
    for e in events {
        text.push_str(&format!(
            "{} {} {}/{} nat={} {}\n",
            e.stream,
            e.log.timestamp.as_deref().unwrap_or("-"),
            e.log.ike_phase1_state,
            e.log.ike_phase2_state,
            e.log.nat_t_detected,
            e.log.details
        ));
    }
    text
}

fn of_tunnel<'a>(events: &'a [TunnelLogEvent], outside_ip: &str) -> Vec<&'a TunnelLogEvent> {
    events
        .iter()
        .filter(|e| e.stream.ends_with(&format!("_{outside_ip}")))
        .collect()
}

fn has(events: &[&TunnelLogEvent], event: TunnelEvent) -> bool {
    events
        .iter()
        .any(|e| matches!(e.log.recognize(), Recognized::Known { event: got, .. } if got == event))
}

#[test]
fn the_recorded_gateway_events_make_the_expected_tunnel_logs() {
    let events = replay(&samples().join("gw-vici-events.jsonl"));
    let expected_path = manifest_dir().join("testdata/strongswan/gw-tunnel-logs.expected");
    let got = render(&events);
    if std::env::var_os("NETTRAIL_BLESS").is_some() {
        std::fs::write(&expected_path, &got).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    assert!(
        got == expected,
        "tunnel logs differ from {} (NETTRAIL_BLESS=1 rewrites it; review the diff):\n{got}",
        expected_path.display()
    );
    // Every event is valid AWS JSON and reads back.
    for e in &events {
        let json = e.log.to_json();
        assert_eq!(
            nettrail_formats::vpn::tunnel::TunnelActivityLog::from_json(&json).unwrap(),
            e.log
        );
    }
}

#[test]
fn each_scenario_reports_its_cause_with_the_right_states() {
    let events = replay(&samples().join("gw-vici-events.jsonl"));

    let ok = of_tunnel(&events, "10.200.0.1");
    assert!(ok.iter().any(|e| e
        .log
        .details
        .starts_with("AWS tunnel Phase 2 SA established")
        && e.log.ike_phase1_state == "established"
        && e.log.ike_phase2_state == "established"));
    assert!(has(&ok, TunnelEvent::CreateChildSaRequestSent));
    assert!(has(&ok, TunnelEvent::CreateChildSaRequestReceived));
    assert!(has(&ok, TunnelEvent::CreateChildSaResponseSent));
    assert!(has(&ok, TunnelEvent::CreateChildSaResponseReceived));
    // DPD exchanges while idle.
    assert!(ok
        .iter()
        .any(|e| e.log.details == "AWS tunnel processed request (id=0) for INFORMATIONAL (DPD)"));
    // The rekeys' and collisions' deletes are housekeeping; the cgw's own two
    // deletes at the end are reported, once each.
    let child_deletes: Vec<_> = ok
        .iter()
        .filter(|e| {
            matches!(
                e.log.recognize(),
                Recognized::Known {
                    event: TunnelEvent::DeletePhase2Sa,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(
        child_deletes.len(),
        1,
        "{}",
        render(&ok.iter().map(|e| (*e).clone()).collect::<Vec<_>>())
    );
    assert_eq!(child_deletes[0].log.ike_phase2_state, "down");
    let ike_deletes: Vec<_> = ok
        .iter()
        .filter(|e| {
            matches!(
                e.log.recognize(),
                Recognized::Known {
                    event: TunnelEvent::DeleteIkeSa,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(ike_deletes.len(), 1);
    assert_eq!(ike_deletes[0].log.ike_phase1_state, "down");
    assert!(ok
        .iter()
        .any(|e| e.log.details == "AWS tunnel detected a (CHILD_REKEY) collision as CHILD_REKEY"));
    assert!(ok
        .iter()
        .any(|e| e.log.details == "AWS tunnel detected a (IKE_REKEY) collision as IKE_REKEY"));
    // NAT-T is known from the IKE_SA_INIT exchange on (libipsec always fakes NAT).
    assert!(!ok[0].log.nat_t_detected);
    assert!(ok[1..].iter().all(|e| e.log.nat_t_detected));

    let pskbad = of_tunnel(&events, "10.200.0.2");
    assert!(has(&pskbad, TunnelEvent::PreSharedKeyMismatch));
    assert!(has(&pskbad, TunnelEvent::AuthenticationFailed));
    assert_eq!(pskbad.last().unwrap().log.ike_phase1_state, "down");
    assert!(pskbad
        .iter()
        .any(|e| e.log.details
            == "AWS tunnel detected a pre-shared key mismatch with cgw: 10.200.0.102"));

    let ikeprop = of_tunnel(&events, "10.200.0.3");
    assert!(has(&ikeprop, TunnelEvent::NoProposalMatchByAws));
    assert!(has(&ikeprop, TunnelEvent::NoProposalChosen));
    assert!(ikeprop.iter().any(|e| e.log.details.starts_with(
        "AWS tunnel Phase 1 proposals not accepted: received IKE:AES_CBC_256/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/ECP_384; allowed IKE:AES_CBC_128"
    )));
    assert_eq!(ikeprop.last().unwrap().log.ike_phase1_state, "down");

    let espprop = of_tunnel(&events, "10.200.0.4");
    assert!(has(&espprop, TunnelEvent::NoProposalMatchByAws));
    assert!(has(&espprop, TunnelEvent::Phase2FailedKeepingPhase1));
    assert!(espprop.iter().any(|e| e.log.details.starts_with("AWS tunnel Phase 2 proposals not accepted: received ESP:AES_CBC_256/HMAC_SHA2_512_256/NO_EXT_SEQ")));
    let kept = espprop
        .iter()
        .find(|e| {
            matches!(
                e.log.recognize(),
                Recognized::Known {
                    event: TunnelEvent::Phase2FailedKeepingPhase1,
                    ..
                }
            )
        })
        .unwrap();
    assert_eq!(
        (
            kept.log.ike_phase1_state.as_str(),
            kept.log.ike_phase2_state.as_str()
        ),
        ("established", "down")
    );

    let tsbad = of_tunnel(&events, "10.200.0.5");
    assert!(tsbad.iter().any(|e| e
        .log
        .details
        .starts_with("AWS: Traffic Selector: TS_UNACCEPTABLE")
        && e.log.details.contains("10.227.0.0/24 === 10.218.0.0/24")));
    assert!(has(&tsbad, TunnelEvent::Phase2FailedKeepingPhase1));

    let dpd = of_tunnel(&events, "10.200.0.6");
    let timeout = dpd
        .iter()
        .find(|e| {
            matches!(
                e.log.recognize(),
                Recognized::Known {
                    event: TunnelEvent::DpdTimedOut,
                    ..
                }
            )
        })
        .expect("a DPD timeout");
    assert_eq!(
        timeout.log.details,
        "AWS tunnel DPD timed out after 3 retransmits"
    );
    assert_eq!(
        (
            timeout.log.ike_phase1_state.as_str(),
            timeout.log.ike_phase2_state.as_str()
        ),
        ("down", "down")
    );

    let halfopen = of_tunnel(&events, "10.200.0.8");
    assert!(halfopen.iter().any(|e| e.log.details
        == "AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: 10.200.0.108"));
    assert_eq!(halfopen.last().unwrap().log.ike_phase1_state, "down");

    let natt = of_tunnel(&events, "10.200.0.7");
    assert!(natt.iter().any(|e| e
        .log
        .details
        .starts_with("AWS tunnel Phase 2 SA established")));
    assert!(has(&natt, TunnelEvent::DeleteIkeSa));
}

/// The customer gateway's side of the same lab, read as if it were the AWS side: the
/// initiator's view of each failure.
#[test]
fn the_initiators_view_names_what_the_responder_refused() {
    let tunnels: Vec<TunnelConfig> = lab_tunnels()
        .into_iter()
        .map(|mut t| {
            let cgw = t.cgw_ip.take().unwrap();
            t.cgw_ip = Some(std::mem::replace(&mut t.outside_ip, cgw));
            t.vpn_connection_id = t.vpn_connection_id.replace("vpn-0", "vpn-1");
            t
        })
        .collect();
    let text = std::fs::read_to_string(samples().join("cgw-vici-events.jsonl")).unwrap();
    let mut tracker = TunnelTracker::new(tunnels);
    let mut events = Vec::new();
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let seconds: f64 = record["ts"].as_str().unwrap().parse().unwrap();
        events.extend(tracker.apply(&ViciEvent {
            name: record["event"].as_str().unwrap().to_owned(),
            body: record["body"].clone(),
            received_ms: (seconds * 1000.0).round() as i64,
        }));
    }
    let details = |ip: &str| -> Vec<String> {
        of_tunnel(&events, ip)
            .iter()
            .map(|e| e.log.details.clone())
            .collect()
    };
    assert!(details("10.200.0.102")
        .contains(&"AWS tunnel received AUTHENTICATION_FAILED from cgw".to_owned()));
    assert!(details("10.200.0.103")
        .contains(&"AWS tunnel received NO_PROPOSAL_CHOSEN from cgw for Phase 1".to_owned()));
    assert!(details("10.200.0.104")
        .contains(&"AWS tunnel received NO_PROPOSAL_CHOSEN from cgw for Phase 2".to_owned()));
    assert!(details("10.200.0.105").contains(&TunnelEvent::TrafficSelectorUnacceptable.render(&[])));
    let halfopen = details("10.200.0.108");
    assert!(
        halfopen
            .iter()
            .any(|d| d.starts_with("AWS tunnel gave up after 3 retransmits")),
        "{halfopen:?}"
    );
    // The initiator's own CREATE_CHILD_SA requests of the rekeys.
    assert!(details("10.200.0.101")
        .iter()
        .any(|d| d.starts_with("AWS tunnel is sending request (id=")
            && d.ends_with("for CREATE_CHILD_SA")));
}
