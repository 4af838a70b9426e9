//! The flow table: packets aggregated into unidirectional flows per interface, action
//! and 5-tuple, one set of flows per capture window.
//!
//! Windows are aligned to multiples of the aggregation interval in Unix time, as VPC
//! Flow Logs aligns its capture windows. A window is closed (its flows handed out)
//! when the caller says time has passed its end; the table never decides that by
//! itself, so that files (packet time) and live capture (wall-clock time) drive it
//! alike. The number of live flows is capped: at the cap the oldest window is closed
//! early, so memory stays bounded whatever the traffic; such closes are counted.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::decode::PacketMeta;

/// Whether the host let a packet through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Accepted (every captured packet, unless the firewall says otherwise).
    Accept,
    /// Dropped by the host firewall.
    Reject,
}

impl Action {
    /// `ACCEPT` or `REJECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "ACCEPT",
            Action::Reject => "REJECT",
        }
    }
}

/// What identifies a flow within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Index of the interface (as the input numbers them).
    pub interface: u32,
    /// Accepted or rejected.
    pub action: Action,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (0 where there is none).
    pub src_port: u16,
    /// Destination port (0 where there is none).
    pub dst_port: u16,
    /// IANA protocol number.
    pub protocol: u8,
}

/// What a flow has counted in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowStats {
    /// Packets.
    pub packets: u64,
    /// IP bytes.
    pub bytes: u64,
    /// Time of the first packet, Unix microseconds.
    pub first_us: i64,
    /// Time of the last packet, Unix microseconds.
    pub last_us: i64,
    /// TCP flags OR-ed, VPC semantics.
    pub tcp_flags: u8,
}

/// A window's flows, handed out when it closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedWindow {
    /// Window start, Unix seconds.
    pub start: i64,
    /// The flows, ordered by first packet time, then key.
    pub flows: Vec<(FlowKey, FlowStats)>,
    /// Closed before its time because the table was full.
    pub early: bool,
}

/// What the table has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounters {
    /// Packets added.
    pub packets: u64,
    /// Flows started (a flow in two windows counts twice).
    pub flows: u64,
    /// Flows handed out by early closes at the cap.
    pub early_flushed_flows: u64,
    /// Windows closed.
    pub windows_closed: u64,
}

/// One capture window.
#[derive(Default)]
struct Window {
    flows: FxHashMap<FlowKey, FlowStats>,
    /// Packets and bytes to take off accepted flows at close: packets the firewall
    /// dropped on input, which the capture saw (and counted as accepted) first.
    debits: FxHashMap<FlowKey, (u64, u64)>,
}

/// Flows being counted.
pub struct FlowTable {
    interval: i64,
    max_flows: usize,
    windows: BTreeMap<i64, Window>,
    live: usize,
    counters: TableCounters,
}

impl FlowTable {
    /// A table with windows of `interval_seconds` holding at most `max_flows` flows.
    pub fn new(interval_seconds: i64, max_flows: usize) -> FlowTable {
        FlowTable {
            interval: interval_seconds.max(1),
            max_flows: max_flows.max(1),
            windows: BTreeMap::new(),
            live: 0,
            counters: TableCounters::default(),
        }
    }

    /// The aggregation interval, seconds.
    pub fn interval(&self) -> i64 {
        self.interval
    }

    /// The start of the window holding Unix time `seconds`.
    pub fn window_of(&self, seconds: i64) -> i64 {
        seconds.div_euclid(self.interval) * self.interval
    }

    /// Counts a packet seen at `ts_us` (Unix microseconds). When the table is full the
    /// oldest window is closed early and returned.
    pub fn add(
        &mut self,
        interface: u32,
        action: Action,
        packet: &PacketMeta,
        ts_us: i64,
    ) -> Option<ClosedWindow> {
        self.counters.packets += 1;
        let window = self.window_of(ts_us.div_euclid(1_000_000));
        let key = FlowKey {
            interface,
            action,
            src: packet.src,
            dst: packet.dst,
            src_port: packet.src_port,
            dst_port: packet.dst_port,
            protocol: packet.protocol,
        };
        let flows = &mut self.windows.entry(window).or_default().flows;
        if let Some(stats) = flows.get_mut(&key) {
            stats.packets += 1;
            stats.bytes += u64::from(packet.bytes);
            stats.first_us = stats.first_us.min(ts_us);
            stats.last_us = stats.last_us.max(ts_us);
            stats.tcp_flags |= packet.tcp_flags;
            return None;
        }
        flows.insert(
            key,
            FlowStats {
                packets: 1,
                bytes: u64::from(packet.bytes),
                first_us: ts_us,
                last_us: ts_us,
                tcp_flags: packet.tcp_flags,
            },
        );
        self.live += 1;
        self.counters.flows += 1;
        if self.live <= self.max_flows {
            return None;
        }
        let (&oldest, _) = self
            .windows
            .iter()
            .next()
            .expect("a window holds the new flow");
        let closed = self.close(oldest, true);
        self.counters.early_flushed_flows += closed.flows.len() as u64;
        Some(closed)
    }

    /// Counts a packet the host firewall dropped (a REJECT), and when the capture saw
    /// it too (`seen_as_accepted`: dropped on input, after the capture point), takes it
    /// off the accepted flow of the same 5-tuple when the window closes.
    pub fn add_rejected(
        &mut self,
        interface: u32,
        packet: &PacketMeta,
        ts_us: i64,
        seen_as_accepted: bool,
    ) -> Option<ClosedWindow> {
        if seen_as_accepted {
            let window = self.window_of(ts_us.div_euclid(1_000_000));
            let accepted = FlowKey {
                interface,
                action: Action::Accept,
                src: packet.src,
                dst: packet.dst,
                src_port: packet.src_port,
                dst_port: packet.dst_port,
                protocol: packet.protocol,
            };
            let debit = self
                .windows
                .entry(window)
                .or_default()
                .debits
                .entry(accepted)
                .or_default();
            debit.0 += 1;
            debit.1 += u64::from(packet.bytes);
        }
        self.add(interface, Action::Reject, packet, ts_us)
    }

    /// Closes every window that ends at or before `seconds` (Unix), oldest first.
    pub fn close_until(&mut self, seconds: i64) -> Vec<ClosedWindow> {
        let mut closed = Vec::new();
        while let Some((&start, _)) = self.windows.iter().next() {
            if start + self.interval > seconds {
                break;
            }
            closed.push(self.close(start, false));
        }
        closed
    }

    /// Closes every window (end of input).
    pub fn close_all(&mut self) -> Vec<ClosedWindow> {
        self.close_until(i64::MAX - self.interval)
    }

    /// Flows being counted now.
    pub fn live_flows(&self) -> usize {
        self.live
    }

    /// What the table has done so far.
    pub fn counters(&self) -> TableCounters {
        self.counters
    }

    fn close(&mut self, start: i64, early: bool) -> ClosedWindow {
        let Window { mut flows, debits } = self.windows.remove(&start).unwrap_or_default();
        self.live -= flows.len();
        self.counters.windows_closed += 1;
        for (key, (packets, bytes)) in debits {
            if let Some(stats) = flows.get_mut(&key) {
                stats.packets = stats.packets.saturating_sub(packets);
                stats.bytes = stats.bytes.saturating_sub(bytes);
                if stats.packets == 0 {
                    flows.remove(&key);
                }
            }
        }
        let mut flows: Vec<(FlowKey, FlowStats)> = flows.into_iter().collect();
        flows.sort_unstable_by_key(|(key, stats)| (stats.first_us, *key));
        ClosedWindow {
            start,
            flows,
            early,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(src: &str, dst: &str, port: u16, bytes: u32, flags: u8) -> PacketMeta {
        PacketMeta {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: 40000,
            dst_port: port,
            protocol: 6,
            bytes,
            tcp_flags: flags,
        }
    }

    const T: i64 = 1_795_098_600; // a multiple of 600

    #[test]
    fn packets_of_a_flow_add_up_within_a_window_and_split_across_windows() {
        let mut table = FlowTable::new(60, 100);
        let syn = packet("10.0.0.1", "10.0.0.2", 22, 60, 2);
        let ack = packet("10.0.0.1", "10.0.0.2", 22, 52, 0);
        let fin = packet("10.0.0.1", "10.0.0.2", 22, 52, 1);
        assert!(table
            .add(0, Action::Accept, &syn, (T + 1) * 1_000_000 + 5)
            .is_none());
        table.add(0, Action::Accept, &ack, (T + 30) * 1_000_000);
        table.add(0, Action::Accept, &fin, (T + 61) * 1_000_000);
        // The reverse direction is its own flow.
        table.add(
            0,
            Action::Accept,
            &packet("10.0.0.2", "10.0.0.1", 40000, 60, 18),
            (T + 2) * 1_000_000,
        );
        assert!(table.close_until(T + 59).is_empty());
        let closed = table.close_until(T + 60);
        assert_eq!(closed.len(), 1);
        let flows = &closed[0].flows;
        assert_eq!(flows.len(), 2);
        assert_eq!(flows[0].1.packets, 2);
        assert_eq!(flows[0].1.bytes, 112);
        assert_eq!(flows[0].1.tcp_flags, 2);
        assert_eq!(flows[1].1.tcp_flags, 18);
        let rest = table.close_all();
        assert_eq!(rest[0].start, T + 60);
        assert_eq!(rest[0].flows[0].1.tcp_flags, 1);
        assert_eq!(table.live_flows(), 0);
    }

    #[test]
    fn the_cap_closes_the_oldest_window_early() {
        let mut table = FlowTable::new(60, 3);
        for i in 0..3u16 {
            let p = packet("10.0.0.1", "10.0.0.2", 1000 + i, 40, 0);
            assert!(table.add(0, Action::Accept, &p, T * 1_000_000).is_none());
        }
        let p = packet("10.0.0.1", "10.0.0.2", 2000, 40, 0);
        let early = table
            .add(0, Action::Accept, &p, (T + 60) * 1_000_000)
            .unwrap();
        assert!(early.early);
        assert_eq!((early.start, early.flows.len()), (T, 3));
        assert_eq!(table.live_flows(), 1);
        assert_eq!(table.counters().early_flushed_flows, 3);
    }

    #[test]
    fn a_packet_dropped_on_input_is_a_reject_not_an_accept() {
        let mut table = FlowTable::new(60, 100);
        let p = packet("10.0.0.1", "10.0.0.2", 9999, 40, 0);
        let ok = packet("10.0.0.1", "10.0.0.2", 53, 40, 0);
        for i in 0..3 {
            table.add(0, Action::Accept, &p, T * 1_000_000 + i);
        }
        table.add(0, Action::Accept, &ok, T * 1_000_000);
        // Two of the three were dropped on input; the firewall's word may come first.
        table.add_rejected(0, &p, T * 1_000_000 + 1, true);
        table.add_rejected(0, &p, T * 1_000_000 + 2, true);
        let closed = table.close_all();
        let got: Vec<(Action, u16, u64)> = closed[0]
            .flows
            .iter()
            .map(|(k, s)| (k.action, k.dst_port, s.packets))
            .collect();
        assert!(got.contains(&(Action::Accept, 9999, 1)), "{got:?}");
        assert!(got.contains(&(Action::Reject, 9999, 2)), "{got:?}");
        assert!(got.contains(&(Action::Accept, 53, 1)), "{got:?}");
    }
}
