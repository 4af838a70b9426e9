//! The management interface's lines (`>CLIENT:` notifications with their ENV blocks,
//! `>BYTECOUNT_CLI:`), and the clients they describe turned into Client VPN connection
//! log entries: a successful entry when a client is established, updates while it is
//! connected, the final one on disconnect, and a failed entry for a client the policy
//! denies. A client whose TLS handshake fails never reaches the management interface,
//! so, as on AWS, it makes no entry.

use std::collections::HashMap;

use nettrail_formats::time::UtcDateTime;
use nettrail_formats::vpn::client_vpn::{format_time, ConnectionLogEntry};

/// What a `>CLIENT:` notification reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEventKind {
    /// A client asks to connect (needs an answer).
    Connect,
    /// A client renegotiates (needs an answer).
    Reauth,
    /// A client is connected.
    Established,
    /// A client is gone.
    Disconnect,
    /// A client's virtual address.
    Address,
    /// A client's challenge-response (answered like a CONNECT).
    CrResponse,
}

/// One `>CLIENT:` notification, its ENV block read.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientEvent {
    /// What happened.
    pub kind: ClientEventKind,
    /// The client id.
    pub cid: u64,
    /// The key id (CONNECT, REAUTH, CR_RESPONSE).
    pub kid: Option<u64>,
    /// The address (ADDRESS).
    pub address: Option<String>,
    /// The ENV block, in order.
    pub env: Vec<(String, String)>,
}

impl ClientEvent {
    fn env(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A management interface message.
#[derive(Debug, Clone, PartialEq)]
pub enum MgmtMessage {
    /// A `>CLIENT:` notification with its ENV.
    Client(ClientEvent),
    /// `>BYTECOUNT_CLI:cid,bytes_in,bytes_out`.
    ByteCount {
        /// The client id.
        cid: u64,
        /// Bytes received from the client.
        bytes_in: u64,
        /// Bytes sent to the client.
        bytes_out: u64,
    },
    /// `>HOLD:`: the server waits for `hold release`.
    Hold,
    /// `ENTER PASSWORD:`: the interface wants its password.
    PasswordPrompt,
    /// `ERROR: …` answering a command.
    Error(String),
    /// Anything else (`>LOG:`, `>INFO:`, `SUCCESS:`, …).
    Other(String),
}

/// Reads management interface lines into messages, joining ENV blocks.
#[derive(Debug, Default)]
pub struct MgmtParser {
    pending: Option<ClientEvent>,
}

fn parse_kind(word: &str) -> Option<ClientEventKind> {
    Some(match word {
        "CONNECT" => ClientEventKind::Connect,
        "REAUTH" => ClientEventKind::Reauth,
        "ESTABLISHED" => ClientEventKind::Established,
        "DISCONNECT" => ClientEventKind::Disconnect,
        "ADDRESS" => ClientEventKind::Address,
        "CR_RESPONSE" => ClientEventKind::CrResponse,
        _ => return None,
    })
}

impl MgmtParser {
    /// Reads one line (without its line end); returns a message once it is complete.
    pub fn line(&mut self, line: &str) -> Option<MgmtMessage> {
        let line = line.trim_end_matches('\r');
        if let Some(env) = line.strip_prefix(">CLIENT:ENV,") {
            let Some(event) = self.pending.as_mut() else {
                return Some(MgmtMessage::Other(line.to_owned()));
            };
            if env == "END" {
                return self.pending.take().map(MgmtMessage::Client);
            }
            let (key, value) = env.split_once('=').unwrap_or((env, ""));
            event.env.push((key.to_owned(), value.to_owned()));
            return None;
        }
        if let Some(rest) = line.strip_prefix(">CLIENT:") {
            let mut parts = rest.split(',');
            let kind = parts.next().and_then(parse_kind);
            let cid = parts.next().and_then(|c| c.parse::<u64>().ok());
            let (Some(kind), Some(cid)) = (kind, cid) else {
                return Some(MgmtMessage::Other(line.to_owned()));
            };
            let second = parts.next();
            let mut event = ClientEvent {
                kind,
                cid,
                kid: None,
                address: None,
                env: Vec::new(),
            };
            match kind {
                ClientEventKind::Address => {
                    event.address = second.map(str::to_owned);
                    // ADDRESS has no ENV block.
                    return Some(MgmtMessage::Client(event));
                }
                ClientEventKind::Connect
                | ClientEventKind::Reauth
                | ClientEventKind::CrResponse => {
                    event.kid = second.and_then(|k| k.parse().ok());
                }
                _ => {}
            }
            self.pending = Some(event);
            return None;
        }
        if let Some(rest) = line.strip_prefix(">BYTECOUNT_CLI:") {
            let numbers: Vec<u64> = rest.split(',').filter_map(|n| n.parse().ok()).collect();
            if let [cid, bytes_in, bytes_out] = numbers[..] {
                return Some(MgmtMessage::ByteCount {
                    cid,
                    bytes_in,
                    bytes_out,
                });
            }
            return Some(MgmtMessage::Other(line.to_owned()));
        }
        if line.starts_with(">HOLD:") {
            return Some(MgmtMessage::Hold);
        }
        if line.starts_with("ENTER PASSWORD:") {
            return Some(MgmtMessage::PasswordPrompt);
        }
        if let Some(error) = line.strip_prefix("ERROR: ") {
            return Some(MgmtMessage::Error(error.to_owned()));
        }
        Some(MgmtMessage::Other(line.to_owned()))
    }
}

/// Who may connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectPolicy {
    /// Common names allowed (empty: everyone not denied).
    pub allow_common_names: Vec<String>,
    /// Common names denied.
    pub deny_common_names: Vec<String>,
}

/// The answer to a CONNECT or REAUTH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `client-auth-nt CID KID`.
    Allow,
    /// `client-deny CID KID "reason" "client reason"`.
    Deny {
        /// The reason logged (`connection-attempt-failure-reason`).
        reason: String,
        /// What the client is told.
        client_reason: String,
    },
}

impl ConnectPolicy {
    /// The decision for a client with this common name.
    pub fn decide(&self, common_name: &str) -> Decision {
        let denied = self.deny_common_names.iter().any(|c| c == common_name)
            || (!self.allow_common_names.is_empty()
                && !self.allow_common_names.iter().any(|c| c == common_name));
        if denied {
            // AWS's reason when a client connect handler prevents a connection.
            Decision::Deny {
                reason: "client-connect-failed".into(),
                client_reason: "connection denied by policy".into(),
            }
        } else {
            Decision::Allow
        }
    }
}

/// The management command that carries a decision.
pub fn decision_command(cid: u64, kid: u64, decision: &Decision) -> String {
    match decision {
        Decision::Allow => format!("client-auth-nt {cid} {kid}"),
        Decision::Deny {
            reason,
            client_reason,
        } => format!(
            "client-deny {cid} {kid} \"{}\" \"{}\"",
            reason.replace('"', "'"),
            client_reason.replace('"', "'")
        ),
    }
}

/// What is known of one client.
#[derive(Debug, Clone)]
struct Client {
    connect_env: Vec<(String, String)>,
    established_env: Vec<(String, String)>,
    address: Option<String>,
    start_unix: Option<i64>,
    bytes_in: u64,
    bytes_out: u64,
    denied: bool,
    last_update: i64,
}

impl Client {
    /// A client first heard of at `now`.
    fn new(now: i64) -> Client {
        Client {
            connect_env: Vec::new(),
            established_env: Vec::new(),
            address: None,
            start_unix: None,
            bytes_in: 0,
            bytes_out: 0,
            denied: false,
            last_update: now,
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.established_env
            .iter()
            .chain(self.connect_env.iter())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Follows the clients of one OpenVPN server.
#[derive(Debug)]
pub struct ClientTracker {
    endpoint_id: String,
    policy: ConnectPolicy,
    clients: HashMap<u64, Client>,
}

/// A connection log entry and when it was made (seconds).
pub type TimedEntry = (i64, ConnectionLogEntry);

/// `linux`, `mac`, `win`, `ios`, `android` as AWS writes them, from OpenVPN's IV_PLAT.
fn device_type(platform: Option<&str>) -> Option<String> {
    let platform = platform?;
    Some(
        match platform {
            "win" | "windows" => "win",
            "mac" | "macos" | "darwin" => "mac",
            other => other,
        }
        .to_owned(),
    )
}

/// `cvpn-connection-` and 17 hex digits, stable for one client of one server run.
fn connection_id(daemon_start: &str, cid: u64) -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in daemon_start
        .bytes()
        .chain(b":".iter().copied())
        .chain(cid.to_string().bytes())
    {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    // splitmix64's finalizer: ids of neighbouring clients look unrelated, as AWS's.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58476d1ce4e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d049bb133111eb);
    hash ^= hash >> 31;
    format!("cvpn-connection-{:x}{:016x}", hash >> 60, hash)
}

fn time_text(unix: i64) -> String {
    format_time(UtcDateTime::from_unix(unix))
}

impl ClientTracker {
    /// A tracker of the clients of endpoint `endpoint_id`, deciding with `policy`.
    pub fn new(endpoint_id: &str, policy: ConnectPolicy) -> ClientTracker {
        ClientTracker {
            endpoint_id: endpoint_id.to_owned(),
            policy,
            clients: HashMap::new(),
        }
    }

    /// Clients known now.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Forgets every client (the server restarted: client ids start over).
    pub fn reset(&mut self) {
        self.clients.clear();
    }

    /// Applies a `>CLIENT:` event at `now` (Unix seconds); returns the decision to
    /// send (for CONNECT, REAUTH and CR_RESPONSE) and the entries it makes.
    pub fn on_client(
        &mut self,
        event: &ClientEvent,
        now: i64,
    ) -> (Option<Decision>, Vec<TimedEntry>) {
        let cid = event.cid;
        match event.kind {
            ClientEventKind::Connect | ClientEventKind::Reauth | ClientEventKind::CrResponse => {
                let common_name = event.env("common_name").unwrap_or("");
                let decision = self.policy.decide(common_name);
                let reauth = event.kind == ClientEventKind::Reauth;
                let client = self.clients.entry(cid).or_insert_with(|| Client::new(now));
                if !reauth || client.connect_env.is_empty() {
                    client.connect_env = event.env.clone();
                }
                let mut entries = Vec::new();
                if let Decision::Deny { reason, .. } = &decision {
                    client.denied = true;
                    let client = client.clone();
                    entries.push((
                        now,
                        self.entry(cid, &client, EntryKind::Failed(reason), now),
                    ));
                }
                (Some(decision), entries)
            }
            ClientEventKind::Address => {
                if let Some(client) = self.clients.get_mut(&cid) {
                    client.address = event.address.clone();
                }
                (None, Vec::new())
            }
            ClientEventKind::Established => {
                let client = self.clients.entry(cid).or_insert_with(|| Client::new(now));
                client.established_env = event.env.clone();
                client.start_unix = event
                    .env("time_unix")
                    .and_then(|t| t.parse().ok())
                    .or(Some(now));
                client.last_update = now;
                let client = client.clone();
                (
                    None,
                    vec![(now, self.entry(cid, &client, EntryKind::Active, now))],
                )
            }
            ClientEventKind::Disconnect => {
                let Some(mut client) = self.clients.remove(&cid) else {
                    return (None, Vec::new());
                };
                // A denied client's DISCONNECT (with an empty ENV) ends nothing that
                // was logged as a connection.
                if client.denied || client.start_unix.is_none() {
                    return (None, Vec::new());
                }
                if let Some(bytes) = event.env("bytes_received").and_then(|b| b.parse().ok()) {
                    client.bytes_in = bytes;
                }
                if let Some(bytes) = event.env("bytes_sent").and_then(|b| b.parse().ok()) {
                    client.bytes_out = bytes;
                }
                let start = client.start_unix.unwrap_or(now);
                let end = match event
                    .env("time_duration")
                    .and_then(|d| d.parse::<i64>().ok())
                {
                    Some(duration) => start + duration,
                    None => now,
                };
                (
                    None,
                    vec![(now, self.entry(cid, &client, EntryKind::Ended(end), now))],
                )
            }
        }
    }

    /// Applies a byte count.
    pub fn on_bytecount(&mut self, cid: u64, bytes_in: u64, bytes_out: u64) {
        if let Some(client) = self.clients.get_mut(&cid) {
            client.bytes_in = bytes_in;
            client.bytes_out = bytes_out;
        }
    }

    /// Updated entries of the connected clients last logged `interval` seconds or
    /// more before `now`.
    pub fn periodic(&mut self, now: i64, interval: i64) -> Vec<TimedEntry> {
        let due: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, c)| c.start_unix.is_some() && !c.denied && now - c.last_update >= interval)
            .map(|(cid, _)| *cid)
            .collect();
        let mut entries = Vec::new();
        for cid in due {
            let Some(client) = self.clients.get_mut(&cid) else {
                continue;
            };
            client.last_update = now;
            let client = client.clone();
            entries.push((now, self.entry(cid, &client, EntryKind::Active, now)));
        }
        entries.sort_by(|a, b| a.1.get("connection-id").cmp(&b.1.get("connection-id")));
        entries
    }

    fn entry(&self, cid: u64, client: &Client, kind: EntryKind, now: i64) -> ConnectionLogEntry {
        let daemon_start = client.get("daemon_start_time").unwrap_or("0");
        let id = connection_id(daemon_start, cid);
        let transport = client
            .get("proto_1")
            .map(|p| if p.starts_with("tcp") { "tcp" } else { "udp" });
        let device_ip = client.get("trusted_ip").or(client.get("untrusted_ip"));
        let port = client.get("trusted_port").or(client.get("untrusted_port"));
        let client_ip = client
            .get("ifconfig_pool_remote_ip")
            .map(str::to_owned)
            .or(client.address.clone());
        let start = client.start_unix.map(time_text);
        let bytes_in = client.bytes_in.to_string();
        let bytes_out = client.bytes_out.to_string();
        let now_text = time_text(now);
        let (status, reason, start, end, duration, client_ip) = match &kind {
            EntryKind::Failed(reason) => {
                ("failed", Some(reason.to_string()), None, None, None, None)
            }
            EntryKind::Active => (
                "successful",
                None,
                start,
                None,
                Some((now - client.start_unix.unwrap_or(now)).max(0).to_string()),
                client_ip,
            ),
            EntryKind::Ended(end) => (
                "successful",
                None,
                start,
                Some(time_text(*end)),
                Some((end - client.start_unix.unwrap_or(*end)).max(0).to_string()),
                client_ip,
            ),
        };
        let last_update = match &kind {
            EntryKind::Ended(end) => time_text(*end),
            _ => now_text,
        };
        ConnectionLogEntry::new(&[
            ("connection-log-type", Some("connection-attempt")),
            ("connection-attempt-status", Some(status)),
            ("connection-attempt-failure-reason", reason.as_deref()),
            ("connection-id", Some(&id)),
            ("client-vpn-endpoint-id", Some(&self.endpoint_id)),
            ("transport-protocol", transport),
            ("connection-start-time", start.as_deref()),
            ("connection-last-update-time", Some(&last_update)),
            ("client-ip", client_ip.as_deref()),
            ("client-ip-v6", client.get("ifconfig_pool_remote_ip6")),
            ("common-name", client.get("common_name")),
            ("device-type", device_type(client.get("IV_PLAT")).as_deref()),
            ("device-ip", device_ip),
            ("port", port),
            ("ingress-bytes", Some(&bytes_in)),
            ("egress-bytes", Some(&bytes_out)),
            // OpenVPN counts no packets per client.
            ("ingress-packets", None),
            ("egress-packets", None),
            ("connection-end-time", end.as_deref()),
            ("connection-reset-status", None),
            ("username", client.get("username")),
            ("connection-duration-seconds", duration.as_deref()),
        ])
    }
}

enum EntryKind<'a> {
    Failed(&'a str),
    Active,
    Ended(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(parser: &mut MgmtParser, lines: &str) -> Vec<MgmtMessage> {
        lines.lines().filter_map(|l| parser.line(l)).collect()
    }

    #[test]
    fn env_blocks_are_joined_and_other_lines_pass() {
        let mut p = MgmtParser::default();
        let out = feed(
            &mut p,
            ">INFO:OpenVPN Management Interface Version 5\r\n>CLIENT:CONNECT,3,1\n>CLIENT:ENV,common_name=a.lab\n>CLIENT:ENV,password=\n>CLIENT:ENV,END\n>CLIENT:ADDRESS,3,10.250.0.9,1\n>BYTECOUNT_CLI:3,100,200\n>HOLD:Waiting for hold release:0\nERROR: unknown command\n>CLIENT:ENV,stray=1",
        );
        assert_eq!(out.len(), 7);
        assert_eq!(
            out[1],
            MgmtMessage::Client(ClientEvent {
                kind: ClientEventKind::Connect,
                cid: 3,
                kid: Some(1),
                address: None,
                env: vec![
                    ("common_name".into(), "a.lab".into()),
                    ("password".into(), "".into())
                ],
            })
        );
        assert!(
            matches!(&out[2], MgmtMessage::Client(e) if e.address.as_deref() == Some("10.250.0.9"))
        );
        assert_eq!(
            out[3],
            MgmtMessage::ByteCount {
                cid: 3,
                bytes_in: 100,
                bytes_out: 200
            }
        );
        assert_eq!(out[4], MgmtMessage::Hold);
        assert_eq!(out[5], MgmtMessage::Error("unknown command".into()));
        assert!(matches!(out[6], MgmtMessage::Other(_)));
        // Garbage never panics.
        for junk in [
            ">CLIENT:",
            ">CLIENT:CONNECT",
            ">CLIENT:CONNECT,x,y",
            ">BYTECOUNT_CLI:1",
            "",
        ] {
            let _ = MgmtParser::default().line(junk);
        }
    }

    #[test]
    fn policies_allow_and_deny_by_common_name() {
        let policy = ConnectPolicy {
            allow_common_names: vec!["a".into(), "b".into()],
            deny_common_names: vec!["b".into()],
        };
        assert_eq!(policy.decide("a"), Decision::Allow);
        assert!(matches!(policy.decide("b"), Decision::Deny { .. }));
        assert!(matches!(policy.decide("c"), Decision::Deny { .. }));
        assert_eq!(ConnectPolicy::default().decide("anyone"), Decision::Allow);
        assert_eq!(
            decision_command(2, 1, &policy.decide("c")),
            "client-deny 2 1 \"client-connect-failed\" \"connection denied by policy\""
        );
        assert_eq!(
            decision_command(0, 1, &Decision::Allow),
            "client-auth-nt 0 1"
        );
    }
}
