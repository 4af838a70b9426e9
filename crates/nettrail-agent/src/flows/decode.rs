//! From a captured frame to what a flow record needs: the outermost IP header's
//! addresses and protocol, the TCP/UDP ports of first fragments, the IP length, and
//! the TCP flags.
//!
//! The link layer is walked by hand: Ethernet with any number of 802.1Q / 802.1ad
//! tags, LLC/SNAP, MPLS label stacks, PPPoE sessions; Linux cooked captures (SLL and
//! SLL2); BSD NULL and LOOP; PPP; raw IP. The IP and transport headers are read at
//! their fixed offsets rather than through a general packet parser, because what VPC
//! semantics need differs from a full parse in three places: ports come from the
//! first fragment only (later fragments count with ports 0), an IPv4 total length of
//! 0 (a TSO super-frame) counts the captured length, and a header cut short by the
//! snap length still counts with what it has.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The link-layer header types (pcap `LINKTYPE_*` values) the decoder walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// BSD loopback: a 4-byte address family in host byte order.
    Null,
    /// Ethernet II (and 802.3 with LLC/SNAP).
    Ethernet,
    /// PPP, with or without the HDLC address and control bytes.
    Ppp,
    /// Raw IP, version from the first nibble.
    Raw,
    /// OpenBSD loopback: the address family in network byte order.
    Loop,
    /// Linux cooked capture v1 (16-byte header).
    LinuxSll,
    /// Linux cooked capture v2 (20-byte header).
    LinuxSll2,
    /// Raw IPv4.
    Ipv4,
    /// Raw IPv6.
    Ipv6,
    /// Linux NFLOG (netfilter `log group N`): a header, then TLVs, one of them the
    /// packet.
    Nflog,
}

impl LinkType {
    /// The decoder for a pcap link type number, if it has one.
    pub fn from_pcap(linktype: u32) -> Option<LinkType> {
        Some(match linktype {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            9 | 50 => LinkType::Ppp,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            239 => LinkType::Nflog,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }
}

/// What a flow record takes from one IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    /// Source address of the outermost IP header.
    pub src: IpAddr,
    /// Destination address of the outermost IP header.
    pub dst: IpAddr,
    /// TCP or UDP source port of a first fragment; 0 otherwise.
    pub src_port: u16,
    /// TCP or UDP destination port of a first fragment; 0 otherwise.
    pub dst_port: u16,
    /// IANA protocol number (for IPv6, the header after the extension headers).
    pub protocol: u8,
    /// IP bytes: IPv4 total length, IPv6 payload length + 40 (the captured length when
    /// the header says 0).
    pub bytes: u32,
    /// TCP flags with VPC semantics: FIN 1, SYN 2, RST 4, and 16 (ACK) only with SYN,
    /// so that a SYN-ACK reads 18.
    pub tcp_flags: u8,
}

/// Why a frame gives no packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not IP (ARP, LLDP, STP, an MPLS pseudowire …).
    NotIp,
    /// An IP header cut short or inconsistent.
    Malformed,
}

/// Decodes one frame of `link` type, `data` being the captured bytes.
pub fn decode(link: LinkType, data: &[u8]) -> Result<PacketMeta, Skip> {
    let offset = ip_offset(link, data)?;
    decode_ip(&data[offset..])
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

/// The offset of the outermost IP header in a frame.
fn ip_offset(link: LinkType, data: &[u8]) -> Result<usize, Skip> {
    match link {
        LinkType::Ethernet => ethernet(data, 0),
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => Ok(0),
        LinkType::Null | LinkType::Loop => {
            let family = data.get(..4).ok_or(Skip::Malformed)?;
            let family = if link == LinkType::Loop {
                u32::from_be_bytes(family.try_into().expect("4 bytes"))
            } else {
                // Host byte order of the capturing machine: whichever reads small.
                let le = u32::from_le_bytes(family.try_into().expect("4 bytes"));
                let be = u32::from_be_bytes(family.try_into().expect("4 bytes"));
                le.min(be)
            };
            // AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 by system.
            match family {
                2 | 10 | 24 | 28 | 30 => Ok(4),
                _ => Err(Skip::NotIp),
            }
        }
        LinkType::LinuxSll => ethertype(data, be16(data, 14).ok_or(Skip::Malformed)?, 16),
        LinkType::LinuxSll2 => ethertype(data, be16(data, 0).ok_or(Skip::Malformed)?, 20),
        LinkType::Ppp => {
            let start = if data.starts_with(&[0xff, 0x03]) {
                2
            } else {
                0
            };
            ppp(data, start)
        }
        LinkType::Nflog => nflog_tlvs(data)
            .find(|(kind, _, _)| *kind == NFULA_PAYLOAD)
            .map(|(_, at, _)| at)
            .ok_or(Skip::NotIp),
    }
}

const NFULA_TIMESTAMP: u16 = 3;
const NFULA_IFINDEX_INDEV: u16 = 4;
const NFULA_IFINDEX_OUTDEV: u16 = 5;
const NFULA_PAYLOAD: u16 = 9;

/// The TLVs of an NFLOG frame: (type, value offset, value length). Lengths and types
/// are in the capturing host's byte order; values are padded to 4 bytes.
fn nflog_tlvs(data: &[u8]) -> impl Iterator<Item = (u16, usize, usize)> + '_ {
    let mut at = 4;
    std::iter::from_fn(move || {
        let header = data.get(at..at + 4)?;
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let kind = u16::from_ne_bytes([header[2], header[3]]) & 0x7fff;
        if len < 4 || at + len > data.len() {
            return None;
        }
        let item = (kind, at + 4, len - 4);
        at += (len + 3) & !3;
        Some(item)
    })
}

/// The kernel's timestamp of the packet in an NFLOG frame, Unix microseconds: the
/// same clock as the interface capture's, whereas the frame reaches the reader only
/// when netlink flushes its batch (up to a second later).
pub fn nflog_timestamp(data: &[u8]) -> Option<i64> {
    let (_, at, _) =
        nflog_tlvs(data).find(|(kind, _, len)| *kind == NFULA_TIMESTAMP && *len >= 16)?;
    let seconds = i64::from_be_bytes(data[at..at + 8].try_into().ok()?);
    let micros = i64::from_be_bytes(data[at + 8..at + 16].try_into().ok()?);
    Some(seconds * 1_000_000 + micros)
}

/// The input and output interface indexes of an NFLOG frame (a packet dropped on
/// input has the first, one dropped on output the second).
pub fn nflog_devices(data: &[u8]) -> (Option<u32>, Option<u32>) {
    let mut devices = (None, None);
    for (kind, at, len) in nflog_tlvs(data) {
        if len < 4 {
            continue;
        }
        let index = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"));
        match kind {
            NFULA_IFINDEX_INDEV => devices.0 = Some(index),
            NFULA_IFINDEX_OUTDEV => devices.1 = Some(index),
            _ => {}
        }
    }
    devices
}

/// Ethernet from `at`: MAC addresses, then an ethertype or an 802.3 length.
fn ethernet(data: &[u8], at: usize) -> Result<usize, Skip> {
    let kind = be16(data, at + 12).ok_or(Skip::Malformed)?;
    ethertype(data, kind, at + 14)
}

/// Follows ethertype `kind` whose payload starts at `at` to an IP header.
fn ethertype(data: &[u8], mut kind: u16, mut at: usize) -> Result<usize, Skip> {
    // Tags and shims stack; a bound keeps hostile frames from looping long.
    for _ in 0..16 {
        match kind {
            0x0800 | 0x86dd => return Ok(at),
            // 802.1Q, 802.1ad, and the old QinQ types: TCI, then the inner type.
            0x8100 | 0x88a8 | 0x9100 | 0x9200 => {
                kind = be16(data, at + 2).ok_or(Skip::Malformed)?;
                at += 4;
            }
            // MPLS: labels until bottom of stack, then IP by its version nibble.
            0x8847 | 0x8848 => {
                loop {
                    let label = data.get(at..at + 4).ok_or(Skip::Malformed)?;
                    at += 4;
                    if label[2] & 0x01 != 0 {
                        break;
                    }
                }
                return match data.get(at).map(|b| b >> 4) {
                    Some(4) | Some(6) => Ok(at),
                    _ => Err(Skip::NotIp),
                };
            }
            // PPPoE session: 6-byte header, then PPP's protocol field.
            0x8864 => return ppp(data, at + 6),
            // An 802.3 length: LLC, and with SNAP (AA AA 03 + OUI) a type after it.
            len if len <= 1500 => {
                let llc = data.get(at..at + 8).ok_or(Skip::Malformed)?;
                if llc[..3] != [0xaa, 0xaa, 0x03] {
                    return Err(Skip::NotIp);
                }
                kind = u16::from_be_bytes([llc[6], llc[7]]);
                at += 8;
            }
            _ => return Err(Skip::NotIp),
        }
    }
    Err(Skip::NotIp)
}

/// PPP's protocol field at `at` (one byte when compressed), to an IP header.
fn ppp(data: &[u8], at: usize) -> Result<usize, Skip> {
    let first = *data.get(at).ok_or(Skip::Malformed)?;
    let (protocol, len) = if first & 0x01 == 1 {
        (u16::from(first), 1)
    } else {
        (be16(data, at).ok_or(Skip::Malformed)?, 2)
    };
    match protocol {
        0x0021 | 0x0057 => Ok(at + len),
        _ => Err(Skip::NotIp),
    }
}

/// Reads the IP header at the start of `ip`.
pub fn decode_ip(ip: &[u8]) -> Result<PacketMeta, Skip> {
    match ip.first().map(|b| b >> 4) {
        Some(4) => ipv4(ip),
        Some(6) => ipv6(ip),
        _ => Err(Skip::NotIp),
    }
}

fn ipv4(ip: &[u8]) -> Result<PacketMeta, Skip> {
    if ip.len() < 20 {
        return Err(Skip::Malformed);
    }
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    if header_len < 20 {
        return Err(Skip::Malformed);
    }
    let total = u32::from(be16(ip, 2).expect("20 bytes"));
    // TSO super-frames carry 0: count what was captured, as tshark does.
    let bytes = if total == 0 { ip.len() as u32 } else { total };
    let fragment_offset = be16(ip, 6).expect("20 bytes") & 0x1fff;
    let protocol = ip[9];
    let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
    // Not beyond the IP length: what follows is link-layer padding.
    let end = if total == 0 {
        ip.len()
    } else {
        (total as usize).min(ip.len())
    };
    let payload = ip.get(header_len..end).unwrap_or_default();
    Ok(with_transport(
        src,
        dst,
        protocol,
        bytes,
        fragment_offset == 0,
        payload,
    ))
}

fn ipv6(ip: &[u8]) -> Result<PacketMeta, Skip> {
    if ip.len() < 40 {
        return Err(Skip::Malformed);
    }
    let payload_len = u32::from(be16(ip, 4).expect("40 bytes"));
    let bytes = if payload_len == 0 {
        ip.len() as u32
    } else {
        payload_len + 40
    };
    let octets = |at: usize| -> [u8; 16] { ip[at..at + 16].try_into().expect("16 bytes") };
    let src = IpAddr::V6(Ipv6Addr::from(octets(8)));
    let dst = IpAddr::V6(Ipv6Addr::from(octets(24)));
    let mut next = ip[6];
    let mut at = 40;
    let mut first_fragment = true;
    // Hop-by-hop, routing, destination options and fragment headers, each once at
    // most; anything else (AH, ESP, TCP …) is the protocol.
    let mut seen = [false; 4];
    loop {
        let slot = match next {
            0 => 0,
            43 => 1,
            60 => 2,
            44 => 3,
            _ => break,
        };
        if seen[slot] {
            break;
        }
        let Some(header) = ip.get(at..at + 8) else {
            // Cut short by the snap length: the protocol is the last one known.
            break;
        };
        seen[slot] = true;
        if next == 44 {
            first_fragment = u16::from_be_bytes([header[2], header[3]]) >> 3 == 0;
            at += 8;
        } else {
            at += (usize::from(header[1]) + 1) * 8;
        }
        next = header[0];
    }
    let end = (bytes as usize).min(ip.len());
    let payload = ip.get(at..end).unwrap_or_default();
    Ok(with_transport(
        src,
        dst,
        next,
        bytes,
        first_fragment,
        payload,
    ))
}

fn with_transport(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    bytes: u32,
    first_fragment: bool,
    payload: &[u8],
) -> PacketMeta {
    let mut meta = PacketMeta {
        src,
        dst,
        src_port: 0,
        dst_port: 0,
        protocol,
        bytes,
        tcp_flags: 0,
    };
    if !first_fragment || !(protocol == 6 || protocol == 17) {
        return meta;
    }
    if let (Some(s), Some(d)) = (be16(payload, 0), be16(payload, 2)) {
        meta.src_port = s;
        meta.dst_port = d;
    }
    // Flags only from a TCP header whose data offset is sane (20 bytes or more), as a
    // dissector reads them, even when the header itself is cut short.
    if protocol == 6 && payload.len() >= 14 && payload[12] >> 4 >= 5 {
        meta.tcp_flags = vpc_tcp_flags(payload[13]);
    }
    meta
}

/// TCP flags as VPC Flow Logs reports them: FIN, SYN and RST as they are, ACK only
/// together with SYN (a SYN-ACK is 18); other flags are not reported.
pub fn vpc_tcp_flags(raw: u8) -> u8 {
    let mut flags = raw & 0x07;
    if raw & 0x02 != 0 && raw & 0x10 != 0 {
        flags |= 0x10;
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tcp(flags: u8, total_len: u16, fragment_offset: u16) -> Vec<u8> {
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&total_len.to_be_bytes());
        ip[6..8].copy_from_slice(&fragment_offset.to_be_bytes());
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&443u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&50000u16.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = flags;
        ip.extend(tcp);
        ip
    }

    fn ethernet_frame(tags: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; 12];
        for tag in tags {
            frame.extend(tag.to_be_bytes());
            frame.extend([0, 10]);
        }
        frame.extend(ethertype.to_be_bytes());
        frame.extend(payload);
        frame
    }

    #[test]
    fn tcp_over_tagged_ethernet() {
        let ip = ipv4_tcp(0x12, 40, 0);
        for tags in [&[][..], &[0x8100], &[0x88a8, 0x8100]] {
            let meta = decode(LinkType::Ethernet, &ethernet_frame(tags, 0x0800, &ip)).unwrap();
            assert_eq!(meta.src, "10.0.0.1".parse::<IpAddr>().unwrap());
            assert_eq!(
                (meta.src_port, meta.dst_port, meta.protocol),
                (443, 50000, 6)
            );
            assert_eq!((meta.bytes, meta.tcp_flags), (40, 18), "SYN-ACK reads 18");
        }
    }

    #[test]
    fn vpc_flag_rules() {
        assert_eq!(vpc_tcp_flags(0x02), 2, "SYN");
        assert_eq!(vpc_tcp_flags(0x12), 18, "SYN-ACK");
        assert_eq!(vpc_tcp_flags(0x11), 1, "FIN-ACK reports FIN only");
        assert_eq!(vpc_tcp_flags(0x10), 0, "a bare ACK reports nothing");
        assert_eq!(vpc_tcp_flags(0x14), 4, "RST-ACK reports RST");
        assert_eq!(vpc_tcp_flags(0x18), 0, "PSH-ACK reports nothing");
    }

    #[test]
    fn later_fragments_have_no_ports_and_tso_counts_the_capture() {
        let meta = decode_ip(&ipv4_tcp(0x02, 1500, 185)).unwrap();
        assert_eq!((meta.src_port, meta.dst_port, meta.tcp_flags), (0, 0, 0));
        let meta = decode_ip(&ipv4_tcp(0x10, 0, 0)).unwrap();
        assert_eq!(meta.bytes, 40);
    }

    #[test]
    fn mpls_pppoe_sll_and_null() {
        let ip = ipv4_tcp(0x02, 40, 0);
        let mut mpls = vec![0, 0, 0x10, 64, 0, 0, 0x21, 64];
        mpls.extend(&ip);
        assert!(decode(LinkType::Ethernet, &ethernet_frame(&[], 0x8847, &mpls)).is_ok());
        let mut pppoe = vec![0x11, 0, 0, 1, 0, 42, 0x00, 0x21];
        pppoe.extend(&ip);
        assert!(decode(
            LinkType::Ethernet,
            &ethernet_frame(&[0x8100], 0x8864, &pppoe)
        )
        .is_ok());
        let mut sll = vec![0u8; 14];
        sll.extend(0x0800u16.to_be_bytes());
        sll.extend(&ip);
        assert!(decode(LinkType::LinuxSll, &sll).is_ok());
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend(&ip);
        assert!(decode(LinkType::Null, &null).is_ok());
        let arp = ethernet_frame(&[], 0x0806, &[0; 28]);
        assert_eq!(decode(LinkType::Ethernet, &arp), Err(Skip::NotIp));
        assert_eq!(decode(LinkType::Raw, &[0x45, 0]), Err(Skip::Malformed));
    }

    #[test]
    fn nflog_frames_carry_the_packet_and_the_devices() {
        let ip = ipv4_tcp(0x02, 40, 0);
        let mut frame = vec![2, 0, 0, 5];
        let tlv = |kind: u16, value: &[u8]| {
            let mut t = ((value.len() + 4) as u16).to_ne_bytes().to_vec();
            t.extend(kind.to_ne_bytes());
            t.extend(value);
            while !t.len().is_multiple_of(4) {
                t.push(0);
            }
            t
        };
        frame.extend(tlv(1, &[8, 0, 1, 0]));
        frame.extend(tlv(4, &7u32.to_be_bytes()));
        let mut ts = 1_795_000_000i64.to_be_bytes().to_vec();
        ts.extend(250_000i64.to_be_bytes());
        frame.extend(tlv(3, &ts));
        frame.extend(tlv(10, b"drop\0"));
        frame.extend(tlv(9, &ip));
        let meta = decode(LinkType::Nflog, &frame).unwrap();
        assert_eq!((meta.dst_port, meta.tcp_flags), (50000, 2));
        assert_eq!(nflog_devices(&frame), (Some(7), None));
        assert_eq!(nflog_timestamp(&frame), Some(1_795_000_000_250_000));
    }

    #[test]
    fn ipv6_extension_headers_and_fragments() {
        let mut ip = vec![0x60, 0, 0, 0, 0, 0, 0, 64];
        ip.extend([0u8; 15]);
        ip.push(1);
        ip.extend([0u8; 15]);
        ip.push(2);
        // Hop-by-hop (8 bytes), then a first fragment header, then UDP.
        ip[6] = 0;
        ip.extend([44, 0, 0, 0, 0, 0, 0, 0]);
        ip.extend([17, 0, 0, 1, 0, 0, 0, 7]);
        ip.extend([0, 53, 0x30, 0x39, 0, 8, 0, 0]);
        let len = (ip.len() - 40) as u16;
        ip[4..6].copy_from_slice(&len.to_be_bytes());
        let meta = decode_ip(&ip).unwrap();
        assert_eq!(
            (meta.protocol, meta.src_port, meta.dst_port),
            (17, 53, 12345)
        );
        assert_eq!(meta.bytes, u32::from(len) + 40);
        // A later fragment: protocol kept, ports 0.
        let at = 40 + 8 + 2;
        ip[at..at + 2].copy_from_slice(&(100u16 << 3).to_be_bytes());
        let meta = decode_ip(&ip).unwrap();
        assert_eq!((meta.protocol, meta.src_port), (17, 0));
    }
}
