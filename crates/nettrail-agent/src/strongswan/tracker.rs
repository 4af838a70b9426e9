//! From charon's vici events to tunnel activity log events: the IKE_SAs and CHILD_SAs
//! of each configured tunnel are followed from the `log` stream (every message the
//! mapping needs is there at level 1) and the `ike-updown`/`child-updown` events, and
//! each line that corresponds to something AWS reports becomes an event with AWS's
//! wording and the tunnel's phase states after it.
//!
//! What is not in AWS's documented catalogue (IKE_SA_INIT/IKE_AUTH/INFORMATIONAL
//! exchanges, SAs established, the proposals of a mismatch) is written in the same
//! style, so the log reads as one story. Deletes that belong to a rekey or a rekey
//! collision are not reported as the peer's deletes: an IKE_SA replaced by a rekey or
//! named redundant in a collision is superseded, and a CHILD_SA delete is the peer's
//! only when it takes the tunnel's last live CHILD_SA.
//!
//! The file is one piece on purpose: [`TunnelTracker`] is one state machine, and every
//! handler here (log lines, up/down events, rekeys, deletes, lines kept until their
//! IKE_SA is placed) reads and changes the same private maps of IKE_SAs by unique id and
//! CHILD_SAs by SPI; split across files, those maps would have to be exposed to all of
//! them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::LazyLock;

use nettrail_formats::vpn::catalogue::TunnelEvent;
use nettrail_formats::vpn::tunnel::{tunnel_stream_name, TunnelActivityLog, TunnelState};
use regex::Regex;
use serde_json::Value;

/// One tunnel: a swanctl connection on the AWS side of the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelConfig {
    /// The swanctl connection name (`connections.NAME`).
    pub connection: String,
    /// The VPN connection id the tunnel belongs to (`vpn-…`).
    pub vpn_connection_id: String,
    /// The tunnel's outside IP (charon's local address): names the stream, and places
    /// IKE_SAs that have no connection yet.
    pub outside_ip: String,
    /// The customer gateway's address, if known: places IKE_SAs that have no
    /// connection yet (a proposal mismatch, a half-open IKE_SA).
    pub cgw_ip: Option<String>,
    /// Whether DPD is configured (`dpd_delay` > 0).
    pub dpd_enabled: bool,
}

/// One vici event as received: its name (`log`, `ike-updown`, …), its message tree
/// (values as strings, sections as objects, lists as arrays), and when it arrived
/// (vici events carry no time of their own).
#[derive(Debug, Clone, PartialEq)]
pub struct ViciEvent {
    /// The event name.
    pub name: String,
    /// The message.
    pub body: Value,
    /// Milliseconds since the Unix epoch at receipt.
    pub received_ms: i64,
}

/// A tunnel activity log event for one tunnel's stream.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelLogEvent {
    /// The stream (`vpn-…_OUTSIDEIP`).
    pub stream: String,
    /// The event.
    pub log: TunnelActivityLog,
}

/// The state of an IKE_SA as far as the log tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IkeState {
    Connecting,
    Established,
    Gone,
}

#[derive(Debug, Default)]
struct IkeSa {
    tunnel: Option<usize>,
    state: Option<IkeState>,
    /// Replaced by a rekey, or redundant after a rekey collision: its DELETE is
    /// housekeeping, and it does not count for the tunnel's state.
    superseded: bool,
    /// An IKE rekey is under way on this SA.
    rekeying: bool,
    /// The outstanding request is a DPD (an empty INFORMATIONAL after `sending DPD
    /// request`).
    dpd_pending: bool,
    /// Message ids of the empty INFORMATIONAL requests (DPDs) last received and
    /// last sent, so that their empty responses read as DPD too.
    dpd_request_in: Option<String>,
    dpd_request_out: Option<String>,
    received_proposals: Option<String>,
    configured_proposals: Option<String>,
}

#[derive(Debug)]
struct ChildSa {
    spi_in: String,
    spi_out: String,
    /// This side is deleting it (after a rekey, a collision, or answering a DELETE).
    closing: bool,
}

#[derive(Debug)]
struct Tunnel {
    config: TunnelConfig,
    stream: String,
    nat_t_detected: bool,
    children: BTreeMap<u32, ChildSa>,
    child_negotiating: bool,
    child_rekeying: bool,
}

/// Follows the tunnels of one charon and turns its events into tunnel activity logs.
#[derive(Debug)]
pub struct TunnelTracker {
    tunnels: Vec<Tunnel>,
    ike_sas: HashMap<u32, IkeSa>,
    /// Log events of IKE_SAs not yet placed in a tunnel, kept until a later line
    /// places them: vici raises log events through a job queue, so the line that
    /// names the addresses may come after the first lines of a new IKE_SA.
    unplaced: HashMap<u32, Vec<ViciEvent>>,
    /// The order the unplaced IKE_SAs arrived in, to forget the oldest first.
    unplaced_order: VecDeque<u32>,
}

/// Unplaced log events kept per IKE_SA, and IKE_SAs kept, at most: an IKE_SA that no
/// line ever places (a peer nobody configured) must not grow the tracker.
const UNPLACED_EVENTS: usize = 32;
const UNPLACED_SAS: usize = 256;

macro_rules! regex {
    ($name:ident, $pattern:expr) => {
        static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new($pattern).expect("tracker patterns compile"));
    };
}

regex!(
    EXCHANGE,
    r"^(parsed|generating) (IKE_SA_INIT|IKE_AUTH|CREATE_CHILD_SA|INFORMATIONAL) (request|response) (\d+) \[ ?(.*?) ?\]$"
);
regex!(
    RECEIVED_PACKET,
    r"^received packet: from ([0-9a-fA-F.:]+)\[\d+\] to ([0-9a-fA-F.:]+)\[\d+\]"
);
regex!(INITIATING, r"^([0-9a-fA-F.:]+) is initiating an IKE_SA$");
regex!(
    WE_INITIATE,
    r"^initiating IKE_SA [^\[]+\[(\d+)\] to ([0-9a-fA-F.:]+)$"
);
regex!(
    PEER_CONFIGS,
    r"^looking for peer configs matching ([0-9a-fA-F.:]+)\[[^\]]*\]\.\.\.([0-9a-fA-F.:]+)\["
);
regex!(
    IKE_ESTABLISHED,
    r"^IKE_SA [^\[]+\[(\d+)\] established between [^\[]+\[[^\]]*\]\.\.\.([0-9a-fA-F.:]+)\["
);
regex!(IKE_REKEYED, r"^IKE_SA [^\[]+\[(\d+)\] rekeyed between");
regex!(
    CHILD_ESTABLISHED,
    r"^(inbound |outbound )?CHILD_SA [^\{]+\{(\d+)\} established with SPIs ([0-9a-f]+)_i ([0-9a-f]+)_o and TS (.+)$"
);
regex!(
    CHILD_CLOSING,
    r"^closing CHILD_SA [^\{]+\{(\d+)\} with SPIs ([0-9a-f]+)_i \([^)]*\) ([0-9a-f]+)_o"
);
regex!(
    DELETE_CHILD,
    r"^received DELETE for (?:ESP|AH) CHILD_SA with SPI ([0-9a-f]+)$"
);
regex!(DELETE_IKE, r"^received DELETE for IKE_SA [^\[]+\[(\d+)\]$");
regex!(
    PSK_MISMATCH,
    r"^tried \d+ shared keys? for '([^']*)' - '([^']*)', but MAC mismatched$"
);
regex!(GIVING_UP, r"^giving up after (\d+) retransmits$");
regex!(
    RETRANSMIT,
    r"^retransmit (\d+) of request with message ID (\d+)$"
);
regex!(
    HALF_OPEN,
    r"^deleting half open IKE_SA with ([0-9a-fA-F.:]+) after timeout$"
);
regex!(
    COLLISION,
    r"^detected (CHILD_REKEY|IKE_REKEY) collision with (\w+)$"
);
regex!(
    REDUNDANT_IKE,
    r"^IKE_SA rekey collision (won, waiting for delete for|lost, deleting) redundant IKE_SA [^\[]+\[(\d+)\]$"
);
regex!(TS_UNACCEPTABLE, r"^traffic selectors (.+) unacceptable$");

impl TunnelTracker {
    /// A tracker of `tunnels`.
    pub fn new(tunnels: Vec<TunnelConfig>) -> TunnelTracker {
        let mut tracker = TunnelTracker {
            tunnels: Vec::new(),
            ike_sas: HashMap::new(),
            unplaced: HashMap::new(),
            unplaced_order: VecDeque::new(),
        };
        for config in tunnels {
            tracker.add_tunnel(config);
        }
        tracker
    }

    /// Adds a tunnel (a connection loaded after the start); a known one is kept as is.
    pub fn add_tunnel(&mut self, config: TunnelConfig) {
        if self.tunnel_by_connection(&config.connection).is_some() {
            return;
        }
        self.tunnels.push(Tunnel {
            stream: tunnel_stream_name(&config.vpn_connection_id, &config.outside_ip),
            config,
            nat_t_detected: false,
            children: BTreeMap::new(),
            child_negotiating: false,
            child_rekeying: false,
        });
    }

    /// The configured tunnels.
    pub fn tunnels(&self) -> impl Iterator<Item = &TunnelConfig> {
        self.tunnels.iter().map(|t| &t.config)
    }

    /// Applies one event; returns the tunnel activity log events it makes.
    pub fn apply(&mut self, event: &ViciEvent) -> Vec<TunnelLogEvent> {
        match event.name.as_str() {
            "log" => self.apply_log(event),
            "ike-updown" => {
                self.apply_ike_updown(&event.body);
                Vec::new()
            }
            "child-updown" => {
                self.apply_child_updown(&event.body);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn tunnel_by_connection(&self, name: &str) -> Option<usize> {
        self.tunnels
            .iter()
            .position(|t| t.config.connection == name)
    }

    fn tunnel_by_addresses(&self, local: Option<&str>, remote: Option<&str>) -> Option<usize> {
        let matches = |t: &Tunnel| {
            let local_ok = local.is_none_or(|l| t.config.outside_ip == l);
            let remote_ok = match (remote, &t.config.cgw_ip) {
                (Some(r), Some(cgw)) => cgw == r,
                (Some(_), None) => local.is_some(),
                (None, _) => true,
            };
            local_ok && remote_ok && (local.is_some() || remote.is_some())
        };
        self.tunnels.iter().position(matches)
    }

    /// The tunnel's phase states, from its live IKE_SAs and CHILD_SAs.
    fn phases(&self, tunnel: usize) -> (TunnelState, TunnelState) {
        let live = self
            .ike_sas
            .values()
            .filter(|sa| sa.tunnel == Some(tunnel) && !sa.superseded);
        let mut phase1 = TunnelState::Down;
        for sa in live {
            match (sa.state, sa.rekeying) {
                (Some(IkeState::Established), true) => phase1 = TunnelState::Rekeying,
                (Some(IkeState::Established), false) if phase1 != TunnelState::Rekeying => {
                    phase1 = TunnelState::Established
                }
                (Some(IkeState::Connecting), _) if phase1 == TunnelState::Down => {
                    phase1 = TunnelState::Negotiating
                }
                _ => {}
            }
        }
        let t = &self.tunnels[tunnel];
        let phase2 = if phase1 == TunnelState::Down || phase1 == TunnelState::Negotiating {
            if t.child_negotiating && phase1 == TunnelState::Negotiating {
                TunnelState::Negotiating
            } else {
                TunnelState::Down
            }
        } else if t.children.values().any(|c| !c.closing) {
            if t.child_rekeying {
                TunnelState::Rekeying
            } else {
                TunnelState::Established
            }
        } else if t.child_negotiating || t.child_rekeying {
            TunnelState::Negotiating
        } else {
            TunnelState::Down
        };
        (phase1, phase2)
    }

    fn event(&self, tunnel: usize, at_ms: i64, details: String) -> TunnelLogEvent {
        let t = &self.tunnels[tunnel];
        TunnelLogEvent {
            stream: t.stream.clone(),
            log: TunnelActivityLog::new(
                at_ms,
                Some(aws_timestamp(at_ms)),
                t.config.dpd_enabled,
                t.nat_t_detected,
                self.phases(tunnel),
                details,
            ),
        }
    }

    /// Marks an IKE_SA gone; when it was the tunnel's last, its CHILD_SAs go too.
    fn ike_gone(&mut self, id: u32) {
        let Some(sa) = self.ike_sas.get_mut(&id) else {
            return;
        };
        sa.state = Some(IkeState::Gone);
        sa.rekeying = false;
        // A superseded IKE_SA's CHILD_SAs moved to the one that replaced it.
        if sa.superseded {
            return;
        }
        let Some(tunnel) = sa.tunnel else {
            return;
        };
        let others = self
            .ike_sas
            .values()
            .any(|s| s.tunnel == Some(tunnel) && !s.superseded && s.state != Some(IkeState::Gone));
        if !others {
            let t = &mut self.tunnels[tunnel];
            t.children.clear();
            t.child_negotiating = false;
            t.child_rekeying = false;
        }
    }

    fn apply_log(&mut self, event: &ViciEvent) -> Vec<TunnelLogEvent> {
        let body = &event.body;
        let Some(msg) = body.get("msg").and_then(Value::as_str) else {
            return Vec::new();
        };
        let id = body
            .get("ikesa-uniqueid")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u32>().ok());
        let name = body.get("ikesa-name").and_then(Value::as_str);
        let Some(id) = id else {
            return Vec::new();
        };

        // Which tunnel: the connection name once charon has chosen one, else what an
        // earlier line of this IKE_SA told, else the addresses in this line.
        let known = self.ike_sas.get(&id).and_then(|sa| sa.tunnel);
        let tunnel = name
            .and_then(|n| self.tunnel_by_connection(n))
            .or(known)
            .or_else(|| {
                if let Some(c) = RECEIVED_PACKET.captures(msg) {
                    self.tunnel_by_addresses(Some(&c[2]), Some(&c[1]))
                } else if let Some(c) = PEER_CONFIGS.captures(msg) {
                    self.tunnel_by_addresses(Some(&c[1]), Some(&c[2]))
                } else if let Some(c) = INITIATING.captures(msg) {
                    self.tunnel_by_addresses(None, Some(&c[1]))
                } else if let Some(c) = HALF_OPEN.captures(msg) {
                    self.tunnel_by_addresses(None, Some(&c[1]))
                } else {
                    None
                }
            });
        let Some(tunnel) = tunnel else {
            self.keep_unplaced(id, event);
            return Vec::new();
        };
        self.ike_sas.entry(id).or_default().tunnel = Some(tunnel);

        // What came before this line, now that the IKE_SA has a tunnel.
        let mut out = Vec::new();
        if let Some(earlier) = self.unplaced.remove(&id) {
            self.unplaced_order.retain(|u| *u != id);
            for e in &earlier {
                out.extend(self.apply_log(e));
            }
        }
        let at = event.received_ms;
        let mut say = |tracker: &TunnelTracker, details: String| {
            out.push(tracker.event(tunnel, at, details));
        };

        if let Some(c) = EXCHANGE.captures(msg) {
            let inbound = &c[1] == "parsed";
            let exchange = &c[2];
            let request = &c[3] == "request";
            let mid = &c[4];
            let payloads = &c[5];
            self.exchange_effects(id, tunnel, inbound, exchange, request, payloads);
            let specific = if !inbound && !request && payloads.contains("N(AUTH_FAILED)") {
                Some(TunnelEvent::AuthenticationFailed.render(&[]))
            } else if !inbound && !request && payloads.contains("N(NO_PROP)") {
                Some(TunnelEvent::NoProposalChosen.render(&[]))
            } else {
                None
            };
            let label = if self.is_dpd(id, exchange, inbound, request, mid, payloads) {
                "INFORMATIONAL (DPD)".to_owned()
            } else {
                exchange.to_owned()
            };
            let generic = match (inbound, request) {
                (true, true) => format!("AWS tunnel processed request (id={mid}) for {label}"),
                (false, false) => format!("AWS tunnel is sending response (id={mid}) for {label}"),
                (false, true) => format!("AWS tunnel is sending request (id={mid}) for {label}"),
                (true, false) => format!("AWS tunnel processed response (id={mid}) for {label}"),
            };
            say(self, specific.unwrap_or(generic));
            return out;
        }

        if msg == "remote host is behind NAT" {
            self.tunnels[tunnel].nat_t_detected = true;
        } else if INITIATING.is_match(msg) {
            let sa = self.ike_sas.entry(id).or_default();
            if sa.state.is_none() {
                sa.state = Some(IkeState::Connecting);
            }
        } else if let Some(c) = WE_INITIATE.captures(msg) {
            let new_id: u32 = c[1].parse().unwrap_or(id);
            let sa = self.ike_sas.entry(new_id).or_default();
            sa.tunnel = Some(tunnel);
            if sa.state.is_none() {
                sa.state = Some(IkeState::Connecting);
            }
        } else if let Some(c) = IKE_ESTABLISHED.captures(msg) {
            let new_id: u32 = c[1].parse().unwrap_or(id);
            let sa = self.ike_sas.entry(new_id).or_default();
            sa.tunnel = Some(tunnel);
            sa.state = Some(IkeState::Established);
            say(
                self,
                format!("AWS tunnel Phase 1 IKE_SA established with cgw: {}", &c[2]),
            );
        } else if let Some(c) = IKE_REKEYED.captures(msg) {
            // Logged on the old IKE_SA; the new one takes over the tunnel.
            let new_id: u32 = c[1].parse().unwrap_or(id);
            if new_id != id {
                let old = self.ike_sas.entry(id).or_default();
                old.superseded = true;
                old.rekeying = false;
            }
            let sa = self.ike_sas.entry(new_id).or_default();
            sa.tunnel = Some(tunnel);
            sa.state = Some(IkeState::Established);
            sa.rekeying = false;
            sa.superseded = false;
            say(self, "AWS tunnel Phase 1 IKE_SA rekeyed".to_owned());
        } else if let Some(c) = CHILD_ESTABLISHED.captures(msg) {
            let child: u32 = c[2].parse().unwrap_or(0);
            let t = &mut self.tunnels[tunnel];
            t.children.insert(
                child,
                ChildSa {
                    spi_in: c[3].to_owned(),
                    spi_out: c[4].to_owned(),
                    closing: false,
                },
            );
            let direction = c.get(1).map(|m| m.as_str().trim());
            if direction != Some("inbound") {
                t.child_negotiating = false;
                t.child_rekeying = false;
                say(
                    self,
                    format!(
                        "AWS tunnel Phase 2 SA established with SPI: {} and traffic selectors {}",
                        &c[3], &c[5]
                    ),
                );
            }
        } else if let Some(c) = CHILD_CLOSING.captures(msg) {
            let child: u32 = c[1].parse().unwrap_or(0);
            let t = &mut self.tunnels[tunnel];
            let entry = t.children.entry(child).or_insert_with(|| ChildSa {
                spi_in: c[2].to_owned(),
                spi_out: c[3].to_owned(),
                closing: true,
            });
            entry.closing = true;
        } else if msg == "CHILD_SA closed" {
            self.tunnels[tunnel].children.retain(|_, c| !c.closing);
        } else if let Some(c) = DELETE_CHILD.captures(msg) {
            let spi = &c[1];
            let t = &mut self.tunnels[tunnel];
            let deleted = t
                .children
                .iter()
                .find(|(_, child)| child.spi_out == spi || child.spi_in == spi)
                .map(|(n, child)| (*n, child.closing));
            // The peer's own delete takes the tunnel's last live CHILD_SA; a delete
            // while another one lives is the end of a rekey or a collision.
            let peer_delete = match deleted {
                Some((_, true)) => false,
                Some((n, false)) => !t.children.iter().any(|(m, c)| *m != n && !c.closing),
                None => true,
            };
            if let Some((n, _)) = deleted {
                if let Some(child) = t.children.get_mut(&n) {
                    child.closing = true;
                }
            }
            if peer_delete {
                say(self, TunnelEvent::DeletePhase2Sa.render(&[spi]));
            }
        } else if let Some(c) = DELETE_IKE.captures(msg) {
            let target: u32 = c[1].parse().unwrap_or(id);
            // An IKE_SA being rekeyed that the peer deletes is the peer finishing the
            // rekey (an IKE_REKEY collision with IKE_DELETE), not taking the tunnel
            // down.
            let housekeeping = self
                .ike_sas
                .get(&target)
                .is_some_and(|sa| sa.superseded || sa.rekeying);
            if housekeeping {
                if let Some(sa) = self.ike_sas.get_mut(&target) {
                    sa.superseded = true;
                    sa.rekeying = false;
                }
            } else {
                self.ike_gone(target);
                say(self, TunnelEvent::DeleteIkeSa.render(&[]));
            }
        } else if msg == "IKE_SA deleted" {
            self.ike_gone(id);
        } else if let Some(c) = PSK_MISMATCH.captures(msg) {
            say(self, TunnelEvent::PreSharedKeyMismatch.render(&[&c[2]]));
        } else if msg == "received AUTHENTICATION_FAILED notify error" {
            self.ike_gone(id);
            say(
                self,
                "AWS tunnel received AUTHENTICATION_FAILED from cgw".to_owned(),
            );
        } else if let Some(rest) = msg.strip_prefix("received proposals: ") {
            self.ike_sas.entry(id).or_default().received_proposals = Some(rest.to_owned());
        } else if let Some(rest) = msg.strip_prefix("configured proposals: ") {
            self.ike_sas.entry(id).or_default().configured_proposals = Some(rest.to_owned());
        } else if msg == "received proposals unacceptable" || msg == "no acceptable proposal found"
        {
            say(self, TunnelEvent::NoProposalMatchByAws.render(&[]));
            let sa = self.ike_sas.entry(id).or_default();
            if let (Some(received), Some(configured)) =
                (sa.received_proposals.take(), sa.configured_proposals.take())
            {
                let phase = if received.starts_with("IKE:") { 1 } else { 2 };
                say(
                    self,
                    format!(
                        "AWS tunnel Phase {phase} proposals not accepted: received {received}; allowed {configured}"
                    ),
                );
            }
        } else if msg == "received NO_PROPOSAL_CHOSEN notify error" {
            self.ike_gone(id);
            say(
                self,
                "AWS tunnel received NO_PROPOSAL_CHOSEN from cgw for Phase 1".to_owned(),
            );
        } else if msg == "received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built" {
            self.tunnels[tunnel].child_negotiating = false;
            say(
                self,
                "AWS tunnel received NO_PROPOSAL_CHOSEN from cgw for Phase 2".to_owned(),
            );
        } else if msg == "received TS_UNACCEPTABLE notify, no CHILD_SA built" {
            self.tunnels[tunnel].child_negotiating = false;
            say(self, TunnelEvent::TrafficSelectorUnacceptable.render(&[]));
        } else if let Some(c) = TS_UNACCEPTABLE.captures(msg) {
            say(
                self,
                format!(
                    "AWS: Traffic Selector: TS_UNACCEPTABLE: sent to cgw, its traffic selectors {} are not acceptable",
                    &c[1]
                ),
            );
        } else if msg == "failed to establish CHILD_SA, keeping IKE_SA" {
            let t = &mut self.tunnels[tunnel];
            t.child_negotiating = false;
            t.child_rekeying = false;
            say(self, TunnelEvent::Phase2FailedKeepingPhase1.render(&[]));
        } else if msg == "sending DPD request" {
            self.ike_sas.entry(id).or_default().dpd_pending = true;
        } else if let Some(c) = RETRANSMIT.captures(msg) {
            say(
                self,
                format!(
                    "AWS tunnel retransmit {} of request (id={}), no response from cgw",
                    &c[1], &c[2]
                ),
            );
        } else if let Some(c) = GIVING_UP.captures(msg) {
            let dpd = self.ike_sas.get(&id).is_some_and(|sa| sa.dpd_pending);
            self.ike_gone(id);
            if dpd {
                say(self, TunnelEvent::DpdTimedOut.render(&[&c[1]]));
            } else {
                say(
                    self,
                    format!(
                        "AWS tunnel gave up after {} retransmits, no response from cgw",
                        &c[1]
                    ),
                );
            }
        } else if let Some(c) = HALF_OPEN.captures(msg) {
            self.ike_gone(id);
            say(self, TunnelEvent::Phase1Timeout.render(&[&c[1]]));
        } else if msg == "establishing IKE_SA failed, peer not responding" {
            self.ike_gone(id);
            say(
                self,
                "AWS tunnel could not establish Phase 1: cgw not responding".to_owned(),
            );
        } else if let Some(c) = COLLISION.captures(msg) {
            let details = if &c[1] == "CHILD_REKEY" && &c[2] == "CHILD_DELETE" {
                TunnelEvent::ChildRekeyCollision.render(&[])
            } else {
                format!("AWS tunnel detected a ({}) collision as {}", &c[1], &c[2])
            };
            say(self, details);
        } else if msg.starts_with("CHILD_SA rekey collision lost, deleting redundant child")
            || msg.starts_with("CHILD_SA rekey/delete collision, deleting redundant child")
        {
            say(self, TunnelEvent::RedundantChildSaDeleted.render(&[]));
        } else if let Some(c) = REDUNDANT_IKE.captures(msg) {
            let redundant: u32 = c[2].parse().unwrap_or(0);
            let sa = self.ike_sas.entry(redundant).or_default();
            sa.superseded = true;
            sa.tunnel = Some(tunnel);
            if c[1].starts_with("lost") {
                say(
                    self,
                    "AWS tunnel (IKE_SA) redundant SA is being deleted due to detected collision"
                        .to_owned(),
                );
            }
        }
        out
    }

    fn keep_unplaced(&mut self, id: u32, event: &ViciEvent) {
        if !self.unplaced.contains_key(&id) {
            if self.unplaced_order.len() >= UNPLACED_SAS {
                if let Some(oldest) = self.unplaced_order.pop_front() {
                    self.unplaced.remove(&oldest);
                }
            }
            self.unplaced_order.push_back(id);
        }
        let kept = self.unplaced.entry(id).or_default();
        if kept.len() < UNPLACED_EVENTS {
            kept.push(event.clone());
        }
    }

    /// Whether an exchange line is a DPD: an empty INFORMATIONAL request, or the empty
    /// response to one (same direction pairing, same message id).
    fn is_dpd(
        &mut self,
        id: u32,
        exchange: &str,
        inbound: bool,
        request: bool,
        mid: &str,
        payloads: &str,
    ) -> bool {
        if exchange != "INFORMATIONAL" || !payloads.is_empty() {
            return false;
        }
        let sa = self.ike_sas.entry(id).or_default();
        // A request received is answered by a response sent, and the other way round.
        let slot = if inbound == request {
            &mut sa.dpd_request_in
        } else {
            &mut sa.dpd_request_out
        };
        if request {
            *slot = Some(mid.to_owned());
            true
        } else {
            slot.take().as_deref() == Some(mid)
        }
    }

    /// What an IKE exchange line changes: SAs negotiating, rekeys starting, DPD
    /// answered, SAs torn down by an error notify.
    fn exchange_effects(
        &mut self,
        id: u32,
        tunnel: usize,
        inbound: bool,
        exchange: &str,
        request: bool,
        payloads: &str,
    ) {
        let sa = self.ike_sas.entry(id).or_default();
        if inbound && !request {
            // Any answer means the peer is alive.
            sa.dpd_pending = false;
        }
        if exchange == "IKE_SA_INIT" && sa.state.is_none() {
            sa.state = Some(IkeState::Connecting);
        }
        let carries_child = payloads.contains("TSi");
        match exchange {
            "IKE_AUTH" if request && carries_child => {
                self.tunnels[tunnel].child_negotiating = true;
            }
            "CREATE_CHILD_SA" if request => {
                if payloads.contains("N(REKEY_SA)") {
                    self.tunnels[tunnel].child_rekeying = true;
                } else if carries_child {
                    self.tunnels[tunnel].child_negotiating = true;
                } else if payloads.contains("KE") {
                    // An IKE rekey: SA, nonce and KE, no traffic selectors.
                    sa.rekeying = true;
                }
            }
            _ => {}
        }
        let failed_ike = !inbound
            && !request
            && (payloads.contains("N(AUTH_FAILED)")
                || (exchange == "IKE_SA_INIT" && payloads.contains("N(NO_PROP)")));
        if failed_ike {
            self.ike_gone(id);
        }
        let failed_child = !inbound
            && !request
            && exchange != "IKE_SA_INIT"
            && (payloads.contains("N(NO_PROP)") || payloads.contains("N(TS_UNACCEPT)"));
        if failed_child {
            let t = &mut self.tunnels[tunnel];
            t.child_negotiating = false;
            t.child_rekeying = false;
        }
    }

    fn apply_ike_updown(&mut self, body: &Value) {
        let Some(sections) = body.as_object() else {
            return;
        };
        let up = sections.get("up").and_then(Value::as_str) == Some("yes");
        for (connection, sa) in sections {
            let Some(sa) = sa.as_object() else {
                continue;
            };
            let Some(id) = sa
                .get("uniqueid")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let tunnel = self.tunnel_by_connection(connection);
            let nat = sa.get("nat-remote").and_then(Value::as_str) == Some("yes");
            if let Some(tunnel) = tunnel {
                if nat {
                    self.tunnels[tunnel].nat_t_detected = true;
                }
            }
            if up {
                let entry = self.ike_sas.entry(id).or_default();
                entry.tunnel = entry.tunnel.or(tunnel);
                entry.state = Some(IkeState::Established);
            } else {
                if let Some(entry) = self.ike_sas.get_mut(&id) {
                    entry.tunnel = entry.tunnel.or(tunnel);
                }
                self.ike_gone(id);
            }
        }
    }

    fn apply_child_updown(&mut self, body: &Value) {
        let Some(sections) = body.as_object() else {
            return;
        };
        if sections.get("up").and_then(Value::as_str) == Some("yes") {
            return;
        }
        for (connection, sa) in sections {
            let Some(tunnel) = self.tunnel_by_connection(connection) else {
                continue;
            };
            let Some(children) = sa.get("child-sas").and_then(Value::as_object) else {
                continue;
            };
            for child in children.values() {
                if let Some(n) = child
                    .get("uniqueid")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    self.tunnels[tunnel].children.remove(&n);
                }
            }
        }
    }
}

/// `2025-11-08 05:40:29.641Z`, as AWS's newer tunnel logs write `timestamp`.
pub fn aws_timestamp(ms: i64) -> String {
    let t = nettrail_formats::time::UtcDateTime::from_unix(ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tracker() -> TunnelTracker {
        TunnelTracker::new(vec![TunnelConfig {
            connection: "ok".into(),
            vpn_connection_id: "vpn-0123456789abcdef0".into(),
            outside_ip: "10.200.0.1".into(),
            cgw_ip: Some("10.200.0.101".into()),
            dpd_enabled: true,
        }])
    }

    fn log(name: &str, id: u32, msg: &str) -> ViciEvent {
        ViciEvent {
            name: "log".into(),
            body: json!({"group": "IKE", "level": "1", "ikesa-name": name, "ikesa-uniqueid": id.to_string(), "msg": msg}),
            received_ms: 1_795_406_334_000,
        }
    }

    fn run(tracker: &mut TunnelTracker, events: &[ViciEvent]) -> Vec<String> {
        events
            .iter()
            .flat_map(|e| tracker.apply(e))
            .map(|e| {
                format!(
                    "{}/{} {}",
                    e.log.ike_phase1_state, e.log.ike_phase2_state, e.log.details
                )
            })
            .collect()
    }

    fn established(t: &mut TunnelTracker) {
        run(
            t,
            &[
                log("ok", 2, "IKE_SA ok[2] established between 10.200.0.1[10.200.0.1]...10.200.0.101[10.200.0.101]"),
                log("ok", 2, "CHILD_SA ok{1} established with SPIs aaaa0001_i bbbb0001_o and TS 10.201.0.0/24 === 10.202.0.0/24"),
            ],
        );
    }

    #[test]
    fn a_peer_delete_that_finishes_an_ike_rekey_collision_is_not_the_peers_delete() {
        // As a real charon logged it: both sides rekey, the peer deletes our
        // rekeying IKE_SA, and charon takes the peer's new one.
        let mut t = tracker();
        established(&mut t);
        let out = run(
            &mut t,
            &[
                log("ok", 2, "generating CREATE_CHILD_SA request 2 [ SA No KE ]"),
                log("ok", 2, "parsed CREATE_CHILD_SA request 2 [ SA No KE ]"),
                log("ok", 2, "10.200.0.101 is initiating an IKE_SA"),
                log("ok", 2, "detected IKE_REKEY collision with IKE_REKEY"),
                log("ok", 2, "parsed INFORMATIONAL request 3 [ D ]"),
                log("ok", 2, "received DELETE for IKE_SA ok[2]"),
                log("ok", 2, "deleting IKE_SA ok[2] between 10.200.0.1[10.200.0.1]...10.200.0.101[10.200.0.101]"),
                log("ok", 2, "IKE_SA deleted"),
                log("ok", 2, "detected IKE_REKEY collision with IKE_DELETE"),
                log("ok", 2, "IKE_SA ok[4] rekeyed between 10.200.0.1[10.200.0.1]...10.200.0.101[10.200.0.101]"),
            ],
        );
        assert!(
            !out.iter().any(|l| l.contains("DELETE for IKE_SA from CGW")),
            "{out:#?}"
        );
        assert_eq!(
            out.last().unwrap(),
            "established/established AWS tunnel Phase 1 IKE_SA rekeyed"
        );
    }

    #[test]
    fn lines_of_a_new_ike_sa_that_come_before_its_addresses_are_kept_until_placed() {
        let mut t = tracker();
        let out = run(
            &mut t,
            &[
                log(
                    "(unnamed)",
                    7,
                    "parsed IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) ]",
                ),
                log(
                    "(unnamed)",
                    7,
                    "received packet: from 10.200.0.101[500] to 10.200.0.1[500] (508 bytes)",
                ),
                log(
                    "(unnamed)",
                    7,
                    "generating IKE_SA_INIT response 0 [ SA KE No ]",
                ),
            ],
        );
        assert_eq!(
            out,
            [
                "negotiating/down AWS tunnel processed request (id=0) for IKE_SA_INIT",
                "negotiating/down AWS tunnel is sending response (id=0) for IKE_SA_INIT",
            ]
        );
        // Lines of an IKE_SA nothing places are bounded, never grow without end.
        for id in 0..(UNPLACED_SAS as u32 + 10) {
            for _ in 0..(UNPLACED_EVENTS + 5) {
                t.apply(&log(
                    "(unnamed)",
                    1000 + id,
                    "parsed IKE_SA_INIT request 0 [ SA ]",
                ));
            }
        }
        assert!(t.unplaced.len() <= UNPLACED_SAS);
        assert!(t.unplaced.values().all(|v| v.len() <= UNPLACED_EVENTS));
    }

    #[test]
    fn the_cgws_delete_of_the_last_child_is_reported_once_a_rekeys_is_not() {
        let mut t = tracker();
        established(&mut t);
        let out = run(
            &mut t,
            &[
                // A rekey: the new child comes, the old one is closed and its DELETE
                // answered.
                log("ok", 2, "inbound CHILD_SA ok{2} established with SPIs aaaa0002_i bbbb0002_o and TS 10.201.0.0/24 === 10.202.0.0/24"),
                log("ok", 2, "outbound CHILD_SA ok{2} established with SPIs aaaa0002_i bbbb0002_o and TS 10.201.0.0/24 === 10.202.0.0/24"),
                log("ok", 2, "closing CHILD_SA ok{1} with SPIs aaaa0001_i (0 bytes) bbbb0001_o (0 bytes) and TS 10.201.0.0/24 === 10.202.0.0/24"),
                log("ok", 2, "received DELETE for ESP CHILD_SA with SPI bbbb0001"),
                log("ok", 2, "CHILD_SA closed"),
                // The cgw takes the tunnel's only child down.
                log("ok", 2, "received DELETE for ESP CHILD_SA with SPI bbbb0002"),
                log("ok", 2, "closing CHILD_SA ok{2} with SPIs aaaa0002_i (0 bytes) bbbb0002_o (0 bytes) and TS 10.201.0.0/24 === 10.202.0.0/24"),
                log("ok", 2, "CHILD_SA closed"),
            ],
        );
        let deletes: Vec<_> = out
            .iter()
            .filter(|l| l.contains("DELETE for Phase 2"))
            .collect();
        assert_eq!(
            deletes,
            ["established/down AWS tunnel received DELETE for Phase 2 SA with SPI: bbbb0002"]
        );
    }
}
