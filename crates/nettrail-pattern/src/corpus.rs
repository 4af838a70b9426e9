//! Deterministic sample events for benchmarks and examples: VPC flow log lines (default
//! format), Site-to-Site VPN tunnel activity log JSON and Client VPN connection log
//! JSON, shaped like AWS's. Not part of the public API.

/// A small deterministic generator (xorshift), so runs are comparable.
pub struct Sampler(u64);

impl Sampler {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Sampler(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A default-format (version 2) flow log line, about 110 bytes; 10% REJECT.
    pub fn flow_line(&mut self) -> String {
        let eni = self.next();
        let (a, b, c, d) = (
            self.next() % 256,
            self.next() % 256,
            self.next() % 256,
            self.next() % 256,
        );
        let sport = 1024 + self.next() % 64_000;
        let dport = [22u64, 80, 443, 3389, 53, 8080][(self.next() % 6) as usize];
        let packets = 1 + self.next() % 200;
        let bytes = packets * (40 + self.next() % 1400);
        let action = if self.next().is_multiple_of(10) {
            "REJECT"
        } else {
            "ACCEPT"
        };
        let start = 1_763_000_000 + self.next() % 3600;
        format!("2 123456789010 eni-{eni:017x} 172.31.{a}.{b} 10.0.{c}.{d} {sport} {dport} 6 {packets} {bytes} {start} {} {action} OK", start + 60)
    }

    /// A tunnel activity log event in AWS's JSON form; 5% report phase 1 down.
    pub fn tunnel_json(&mut self) -> String {
        let down = self.next().is_multiple_of(20);
        let ts = 1_763_000_000_000 + self.next() % 3_600_000;
        let details = if down {
            "AWS tunnel phase 1 SA is DOWN: pre-shared key mismatch (AUTHENTICATION_FAILED)"
        } else {
            "AWS tunnel is sending DPD request to 203.0.113.5"
        };
        let state = if down { "down" } else { "established" };
        format!(
            r#"{{"event_timestamp":{ts},"timestamp":"2025-11-13 02:13:20.{:03}Z","details":"{details}","dpd_enabled":true,"nat_t_detected":false,"ike_phase1_state":"{state}","ike_phase2_state":"{state}"}}"#,
            ts % 1000
        )
    }

    /// A Client VPN connection log entry (single line, AWS's key order); 30% failed.
    pub fn connection_json(&mut self) -> String {
        let ok = self.next() % 10 >= 3;
        let id = self.next();
        format!(
            concat!(
                r#"{{"connection-log-type":"connection-attempt","connection-attempt-status":"{}","connection-reset-status":"NA","#,
                r#""connection-attempt-failure-reason":"{}","connection-id":"cvpn-connection-{:017x}","#,
                r#""client-vpn-endpoint-id":"cvpn-endpoint-aaa111bbb222ccc33","transport-protocol":"udp","#,
                r#""connection-start-time":"2026-09-24 22:22:25","connection-last-update-time":"2026-09-24 22:22:25","#,
                r#""client-ip":"10.0.1.{}","common-name":"client{}","device-type":"mac","device-ip":"98.247.202.{}","#,
                r#""port":"{}","ingress-bytes":"{}","egress-bytes":"{}","ingress-packets":"NA","egress-packets":"NA","#,
                r#""connection-end-time":"NA","username":"user{}"}}"#
            ),
            if ok { "successful" } else { "failed" },
            if ok { "NA" } else { "client-cert-revoked" },
            id,
            id % 250,
            id % 97,
            id % 250,
            1024 + id % 60000,
            id % 100_000,
            id % 300_000,
            id % 1000
        )
    }
}
