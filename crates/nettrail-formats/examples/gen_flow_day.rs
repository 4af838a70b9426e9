//! Writes one UTC day (2024-06-11) of VPC flow logs as VPC Flow Logs writes them to S3
//! (gzip text with a header, one object per flow-log subscription per 5 minutes), with
//! the traffic shape that `shared/specs/flow-analytics.md` §1 describes, for the SQL
//! benchmark (bench/sql-vs-duckdb):
//!
//!     cargo run --release -p nettrail-formats --example gen_flow_day -- DIR RECORDS [default|v5]
//!
//! The estate: 4 accounts, 6 VPCs (each its own subscription) in 2 regions, 9 subnets
//! per VPC in 3 AZs, 2,000 ENIs (90 % instances, NAT gateways, load balancers,
//! endpoints, Lambda), 20 % dual-stack. Traffic: Zipf-like popularity of ENIs, internal
//! servers, 200k internet hosts and 8k AWS endpoints; persistent flows repeating their
//! 5-tuple window after window; one-off and heavy scanners rejected; a request and a
//! response record per conversation and window at each observing ENI (both ends when
//! both are in the estate); 60 s and 600 s capture windows with their own phases;
//! heavy-tailed volumes; NODATA and SKIPDATA lines; a daily rhythm; the needle
//! 198.51.100.23 in exactly 12 records. Deterministic: the same arguments give the same
//! files.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::write::GzEncoder;
use flate2::Compression;
use nettrail_formats::flow::s3::{FileFormat, Layout, ObjectKey, S3Destination};
use nettrail_formats::flow::LogFormat;

/// 2024-06-11T00:00:00Z.
const DAY: i64 = 1_718_064_000;
const SLOTS: i64 = 288;
const ENIS: usize = 2000;
const VPCS: usize = 6;
const INTERNET_HOSTS: u64 = 200_000;
const AWS_ENDPOINTS: u64 = 8_000;
const HEAVY_SCANNERS: u64 = 5_000;
const NEEDLE: &str = "198.51.100.23";
const NEEDLE_RECORDS: usize = 12;

/// xorshift64: fast, deterministic, good enough for traffic shapes.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// A rank in `0..n`, Zipf-like (exponent ~1): rank r has weight ~ 1/(r+1).
    fn zipf(&mut self, n: u64) -> u64 {
        let x = ((n as f64 + 1.0).ln() * self.unit()).exp() - 1.0;
        (x as u64).min(n - 1)
    }
    /// Log-normal with the given median and sigma.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (sigma * normal).exp()
    }
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Instance,
    Nat,
    LoadBalancer,
    Endpoint,
    Lambda,
}

struct Eni {
    id: u64,
    vpc: usize,
    subnet: usize,
    ip: [u8; 4],
    ipv6: Option<u16>,
    kind: Kind,
    /// Capture window, seconds, and its phase.
    window: i64,
    phase: i64,
    /// The port it serves, if it is a server.
    serves: Option<u16>,
    eks: bool,
    /// Persistent flows: (peer ENI, peer port).
    persistent: Vec<(usize, u16)>,
}

struct Estate {
    enis: Vec<Eni>,
    servers: Vec<usize>,
    accounts: [&'static str; 4],
}

const SERVER_PORTS: [u16; 13] = [
    443, 8080, 5432, 53, 80, 3306, 6379, 8443, 9092, 22, 9100, 3389, 123,
];
const SCAN_PORTS: [u16; 10] = [22, 23, 3389, 445, 8080, 80, 1433, 5900, 25, 8443];
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const AZ_IDS: [[&str; 3]; 2] = [
    ["use1-az1", "use1-az2", "use1-az6"],
    ["euw1-az1", "euw1-az2", "euw1-az3"],
];

fn estate() -> Estate {
    let mut rng = Rng::new(42);
    let mut enis = Vec::with_capacity(ENIS);
    for i in 0..ENIS {
        let vpc = i % VPCS;
        let subnet = rng.below(9) as usize;
        let kind = match rng.below(100) {
            0..=89 => Kind::Instance,
            90..=91 => Kind::Nat,
            92..=94 => Kind::LoadBalancer,
            95..=97 => Kind::Endpoint,
            _ => Kind::Lambda,
        };
        let host = rng.below(4000) + 4;
        enis.push(Eni {
            id: mix(i as u64 + 1) >> 4,
            vpc,
            subnet,
            ip: [
                10,
                (vpc * 8) as u8,
                (subnet as u64 * 16 + host / 256) as u8,
                (host % 256) as u8,
            ],
            ipv6: rng.chance(0.2).then(|| rng.below(0xffff) as u16),
            kind,
            window: if rng.chance(0.75) { 60 } else { 600 },
            phase: rng.below(600) as i64,
            serves: (kind == Kind::LoadBalancer || (kind == Kind::Instance && rng.chance(0.3)))
                .then(|| SERVER_PORTS[rng.zipf(SERVER_PORTS.len() as u64) as usize]),
            eks: kind == Kind::Instance && rng.chance(0.12 * 0.5),
            persistent: Vec::new(),
        });
    }
    let servers: Vec<usize> = (0..ENIS).filter(|&i| enis[i].serves.is_some()).collect();
    for i in 0..ENIS {
        let flows = rng.below(4) as usize;
        for _ in 0..flows {
            let peer = servers[rng.zipf(servers.len() as u64) as usize];
            if peer != i {
                let port = enis[peer].serves.unwrap_or(443);
                enis[i].persistent.push((peer, port));
            }
        }
    }
    Estate {
        enis,
        servers,
        accounts: [
            "210987654321",
            "123456789012",
            "345678901234",
            "456789012345",
        ],
    }
}

/// A public IPv4 address for host `n` of a pool (never private, never the needle).
fn public_ip(pool: u64, n: u64) -> String {
    let h = mix(pool << 40 ^ n);
    let mut a = 1 + (h % 222) as u8;
    if matches!(a, 10 | 100 | 127 | 169 | 172 | 192 | 198) {
        a += 1;
    }
    format!(
        "{a}.{}.{}.{}",
        (h >> 8) as u8,
        (h >> 16) as u8,
        (h >> 24) as u8
    )
}

fn aws_ip(n: u64) -> String {
    let h = mix(0xa75 ^ n);
    let first = [52u8, 54, 3, 18][(h % 4) as usize];
    format!(
        "{first}.{}.{}.{}",
        (h >> 8) as u8,
        (h >> 16) as u8,
        (h >> 24) as u8
    )
}

fn ip_text(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

/// One side of a conversation as one ENI records it.
struct Record<'a> {
    eni: &'a Eni,
    src: String,
    dst: String,
    sport: u16,
    dport: u16,
    protocol: u8,
    packets: u64,
    bytes: u64,
    start: i64,
    end: i64,
    reject: bool,
    tcp_flags: u8,
    pkt_src: Option<String>,
    pkt_dst: Option<String>,
    src_service: Option<&'static str>,
    dst_service: Option<&'static str>,
    ingress: bool,
    traffic_path: Option<u8>,
}

struct Writer<'e> {
    estate: &'e Estate,
    v5: bool,
    /// The slot's lines per VPC.
    lines: Vec<String>,
    records: u64,
}

impl Writer<'_> {
    fn push(&mut self, r: &Record<'_>) {
        let e = r.eni;
        let out = &mut self.lines[e.vpc];
        let account = self.estate.accounts[e.vpc % 4];
        let version = if self.v5 { 5 } else { 2 };
        let _ = write!(
            out,
            "{version} {account} eni-{:017x} {} {} {} {} {} {} {} {} {} {} OK",
            e.id,
            r.src,
            r.dst,
            r.sport,
            r.dport,
            r.protocol,
            r.packets,
            r.bytes,
            r.start,
            r.end,
            if r.reject { "REJECT" } else { "ACCEPT" },
        );
        if self.v5 {
            self.v5_fields(e, Some(r));
        }
        self.lines[e.vpc].push('\n');
        self.records += 1;
    }

    fn v5_fields(&mut self, e: &Eni, r: Option<&Record<'_>>) {
        let region = e.vpc % 2;
        let out = &mut self.lines[e.vpc];
        let instance = if e.kind == Kind::Instance {
            format!("i-{:017x}", e.id ^ 0x5a5a)
        } else {
            "-".into()
        };
        let _ = write!(
            out,
            " vpc-{:017x} subnet-{:017x} {instance}",
            mix(e.vpc as u64) >> 4,
            mix((e.vpc * 16 + e.subnet) as u64 + 99) >> 4
        );
        let Some(r) = r else {
            out.push_str(" - - - - - - - - - - - -");
            return;
        };
        let _ = write!(
            out,
            " {} {} {} {} {} {} - - {} {} {} {}",
            r.tcp_flags,
            if r.src.contains(':') { "IPv6" } else { "IPv4" },
            r.pkt_src.as_deref().unwrap_or(&r.src),
            r.pkt_dst.as_deref().unwrap_or(&r.dst),
            REGIONS[region],
            AZ_IDS[region][e.subnet % 3],
            r.src_service.unwrap_or("-"),
            r.dst_service.unwrap_or("-"),
            if r.ingress { "ingress" } else { "egress" },
            r.traffic_path.map_or("-".to_owned(), |p| p.to_string()),
        );
    }

    fn status_line(&mut self, e: &Eni, start: i64, end: i64, status: &str) {
        let account = self.estate.accounts[e.vpc % 4];
        let version = if self.v5 { 5 } else { 2 };
        let out = &mut self.lines[e.vpc];
        let _ = write!(
            out,
            "{version} {account} eni-{:017x} - - - - - - - {start} {end} - {status}",
            e.id
        );
        if self.v5 {
            self.v5_fields(e, None);
        }
        self.lines[e.vpc].push('\n');
        self.records += 1;
    }
}

/// The capture window of `eni` holding time `t`: shared start and end (a few seconds
/// of jitter, the same for every record of that window).
fn window(eni: &Eni, t: i64) -> (i64, i64) {
    let w = (t - eni.phase).div_euclid(eni.window);
    let open = eni.phase + w * eni.window;
    let jitter = mix(eni.id ^ w as u64);
    let start = open + (jitter % 3) as i64;
    let end = open + eni.window - 4 + ((jitter >> 8) % 8) as i64;
    (start, end.max(start + 1))
}

fn volumes(rng: &mut Rng) -> (u64, u64) {
    let bytes = rng.lognormal(440.0, 1.9).clamp(40.0, 305e6) as u64;
    let size = 40 + rng.below(1400);
    (bytes.div_ceil(size).max(1), bytes)
}

const TCP_FLAGS: [u8; 7] = [2, 18, 3, 19, 1, 4, 0];

/// Writes slot `slot`'s records (about `target`) into `lines`.
fn slot_records(w: &mut Writer<'_>, slot: i64, target: u64, needle_here: usize) {
    let estate = w.estate;
    let mut rng = Rng::new(0x5107 ^ (slot as u64) << 20);
    let slot_start = DAY + slot * 300;
    let skip_burst = [31, 77, 140, 190, 230, 270].contains(&slot);
    let mut needles = needle_here;
    while w.records < target {
        let i = rng.zipf(ENIS as u64) as usize;
        // A background floor: every ENI shows up now and then.
        let i = if rng.chance(0.15) {
            rng.below(ENIS as u64) as usize
        } else {
            i
        };
        let e = &estate.enis[i];
        let t = slot_start + rng.below(300) as i64;
        let (wstart, wend) = window(e, t);
        if rng.chance(0.017) {
            w.status_line(e, wstart, wend, "NODATA");
            continue;
        }
        if rng.chance(if skip_burst { 0.05 } else { 0.0001 }) {
            w.status_line(e, wstart, wend, "SKIPDATA");
            continue;
        }
        // Flows that began inside the window start at their first packet.
        let start = if rng.chance(0.3) {
            (t).clamp(wstart, wend - 1)
        } else {
            wstart
        };
        let local = e.ipv6.filter(|_| rng.chance(0.045)).map_or_else(
            || ip_text(e.ip),
            |h| format!("2600:1f18:{:x}:{:x}::{h:x}", e.vpc, e.subnet),
        );
        let v6 = local.contains(':');
        let ephemeral = match rng.below(10) {
            0..=6 => 32768 + rng.below(28232),
            7..=8 => 49152 + rng.below(16384),
            _ => 1024 + rng.below(31744),
        } as u16;
        let protocol = match rng.below(1000) {
            0..=869 => 6u8,
            870..=963 => 17,
            _ => 1,
        };
        let base = Record {
            eni: e,
            src: String::new(),
            dst: String::new(),
            sport: 0,
            dport: 0,
            protocol,
            packets: 0,
            bytes: 0,
            start,
            end: wend,
            reject: false,
            tcp_flags: 0,
            pkt_src: None,
            pkt_dst: None,
            src_service: None,
            dst_service: None,
            ingress: false,
            traffic_path: None,
        };
        if needles > 0 && rng.chance(0.01) {
            needles -= 1;
            let (packets, bytes) = volumes(&mut rng);
            w.push(&Record {
                src: NEEDLE.into(),
                dst: ip_text(e.ip),
                sport: ephemeral,
                dport: 443,
                protocol: 6,
                packets,
                bytes,
                ingress: true,
                tcp_flags: 2,
                ..base
            });
            continue;
        }
        let roll = rng.below(1000);
        if roll < 65 {
            // Scanners, rejected: one-off (1M pool) or heavy (5k, Zipf).
            let scanner = if rng.chance(0.6) {
                public_ip(3, rng.below(1_000_000))
            } else {
                public_ip(4, rng.zipf(HEAVY_SCANNERS))
            };
            let internal_reject = rng.chance(0.08 / 0.065 * 0.1);
            let src = if internal_reject {
                ip_text(estate.enis[rng.below(ENIS as u64) as usize].ip)
            } else {
                scanner
            };
            w.push(&Record {
                src,
                dst: ip_text(e.ip),
                sport: 1024 + rng.below(64000) as u16,
                dport: SCAN_PORTS[rng.zipf(SCAN_PORTS.len() as u64) as usize],
                protocol: 6,
                packets: 1,
                bytes: 40 + rng.below(4) * 4,
                reject: true,
                tcp_flags: 2,
                ingress: true,
                ..base
            });
            continue;
        }
        // A conversation: (peer address, peer port, peer ENI if in the estate, AWS service).
        let (peer, port, peer_eni, service, client_is_local) =
            if roll < 300 && !e.persistent.is_empty() {
                let (p, port) = e.persistent[rng.below(e.persistent.len() as u64) as usize];
                (ip_text(estate.enis[p].ip), port, Some(p), None, true)
            } else if roll < 500 {
                let p = estate.servers[rng.zipf(estate.servers.len() as u64) as usize];
                let port = estate.enis[p].serves.unwrap_or(443);
                (ip_text(estate.enis[p].ip), port, Some(p), None, true)
            } else if roll < 650 {
                let n = rng.zipf(AWS_ENDPOINTS);
                (
                    aws_ip(n),
                    443,
                    None,
                    Some(["AMAZON", "S3", "DYNAMODB", "EC2"][(n % 4) as usize]),
                    true,
                )
            } else if roll < 850 || e.serves.is_none() {
                let n = rng.zipf(INTERNET_HOSTS);
                let service = n.is_multiple_of(4).then_some("AMAZON");
                let port = [443, 443, 443, 80, 123, 53][rng.below(6) as usize];
                (public_ip(1, n), port, None, service, true)
            } else {
                let n = rng.zipf(INTERNET_HOSTS);
                (public_ip(2, n), e.serves.unwrap_or(443), None, None, false)
            };
        let peer = if v6 && peer_eni.is_none() {
            format!(
                "2001:db8:{:x}::{:x}",
                mix(peer.len() as u64) % 0xffff,
                rng.below(0xffff)
            )
        } else {
            peer
        };
        let protocol = match port {
            53 | 123 => 17,
            _ => protocol,
        };
        // ICMP records have no ports.
        let (local_port, peer_port) = if protocol == 1 {
            (0, 0)
        } else if client_is_local {
            (ephemeral, port)
        } else {
            (port, ephemeral)
        };
        let (req_packets, req_bytes) = volumes(&mut rng);
        let (resp_packets, resp_bytes) = volumes(&mut rng);
        let flags = TCP_FLAGS[rng.below(7) as usize];
        let nat = e.kind == Kind::Nat;
        let pod = e.eks.then(|| {
            format!(
                "10.{}.{}.{}",
                e.vpc * 8 + 4,
                rng.below(64),
                rng.below(250) + 2
            )
        });
        let local_addr = local.clone();
        let (src_service, dst_service) = (
            service.filter(|_| !client_is_local),
            service.filter(|_| client_is_local),
        );
        // At the local ENI: the request and the response.
        let out_rec = Record {
            src: local_addr.clone(),
            dst: peer.clone(),
            sport: local_port,
            dport: peer_port,
            protocol,
            packets: if client_is_local {
                req_packets
            } else {
                resp_packets
            },
            bytes: if client_is_local {
                req_bytes
            } else {
                resp_bytes
            },
            tcp_flags: if protocol == 6 { flags } else { 0 },
            pkt_src: if nat {
                Some(ip_text(estate.enis[rng.below(ENIS as u64) as usize].ip))
            } else {
                pod.clone()
            },
            dst_service,
            ingress: false,
            traffic_path: (peer_eni.is_none()).then(|| if service.is_some() { 7 } else { 8 }),
            ..base
        };
        let in_rec = Record {
            src: peer.clone(),
            dst: local_addr,
            sport: peer_port,
            dport: local_port,
            protocol,
            packets: if client_is_local {
                resp_packets
            } else {
                req_packets
            },
            bytes: if client_is_local {
                resp_bytes
            } else {
                req_bytes
            },
            tcp_flags: if protocol == 6 { flags | 16 } else { 0 },
            pkt_dst: pod,
            src_service,
            ingress: true,
            ..base
        };
        if client_is_local {
            w.push(&out_rec);
            w.push(&in_rec);
        } else {
            w.push(&in_rec);
            w.push(&out_rec);
        }
        // The peer ENI records the conversation too, in its own window.
        if let Some(p) = peer_eni {
            let pe = &estate.enis[p];
            let (ps, pend) = window(pe, t);
            let at_peer = |r: &Record<'_>, ingress: bool| Record {
                eni: pe,
                src: r.src.clone(),
                dst: r.dst.clone(),
                pkt_src: None,
                pkt_dst: None,
                start: ps,
                end: pend,
                ingress,
                traffic_path: None,
                ..*r
            };
            w.push(&at_peer(&out_rec, true));
            w.push(&at_peer(&in_rec, false));
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("DIR"));
    let records: u64 = args.next().expect("RECORDS").parse().expect("a number");
    let v5 = match args.next().as_deref() {
        None | Some("default") => false,
        Some("v5") => true,
        Some(other) => panic!("format {other:?}: default or v5"),
    };
    let format = if v5 {
        LogFormat::parse(
            &"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path"
                .split(' ')
                .map(|f| format!("${{{f}}}"))
                .collect::<Vec<_>>()
                .join(" "),
        )
        .expect("the v5 format")
    } else {
        LogFormat::default_vpc()
    };
    let header = format.header();
    let estate = estate();
    // The daily rhythm (±40 %), and where the needle's 12 records go.
    let rhythm: Vec<f64> = (0..SLOTS)
        .map(|s| 1.0 + 0.4 * (std::f64::consts::TAU * (s as f64 / SLOTS as f64 - 0.3)).sin())
        .collect();
    let total: f64 = rhythm.iter().sum();
    let mut needle_slots = vec![0usize; SLOTS as usize];
    let mut rng = Rng::new(12);
    for _ in 0..NEEDLE_RECORDS {
        needle_slots[rng.below(SLOTS as u64) as usize] += 1;
    }
    let written = AtomicU64::new(0);
    let produced = AtomicU64::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (estate, rhythm, needle_slots, header, dir) =
                (&estate, &rhythm, &needle_slots, &header, &dir);
            let (written, produced) = (&written, &produced);
            scope.spawn(move || {
                for slot in (thread..SLOTS).step_by(threads as usize) {
                    let target = (records as f64 * rhythm[slot as usize] / total).round() as u64;
                    let mut w = Writer {
                        estate,
                        v5,
                        lines: vec![String::new(); VPCS],
                        records: 0,
                    };
                    slot_records(&mut w, slot, target, needle_slots[slot as usize]);
                    produced.fetch_add(w.records, Ordering::Relaxed);
                    for (vpc, lines) in w.lines.iter().enumerate() {
                        written.fetch_add(
                            write_file(dir, header, vpc, slot, lines),
                            Ordering::Relaxed,
                        );
                    }
                }
            });
        }
    });
    println!(
        "{} records, {} files, {:.1} MB gzip in {}",
        produced.into_inner(),
        SLOTS as usize * VPCS,
        written.into_inner() as f64 / 1e6,
        dir.display()
    );
}

/// One object: VPC `vpc`'s subscription, 5-minute slot `slot`.
fn write_file(dir: &Path, header: &str, vpc: usize, slot: i64, lines: &str) -> u64 {
    let destination = S3Destination {
        prefix: String::new(),
        account_id: [
            "210987654321",
            "123456789012",
            "345678901234",
            "456789012345",
        ][vpc % 4]
            .into(),
        region: REGIONS[vpc % 2].into(),
        layout: Layout::default(),
        flow_log_id: format!("fl-{:017x}", mix(vpc as u64 + 7) >> 4),
        file_format: FileFormat::PlainText,
    };
    let key = ObjectKey::for_slot(
        &destination,
        DAY + slot * 300,
        &format!("{:08x}", mix(slot as u64 * 31 + vpc as u64) as u32),
    );
    let path = dir.join(key.key());
    std::fs::create_dir_all(path.parent().expect("keys have folders")).expect("create folders");
    let file = std::fs::File::create(&path).expect("create file");
    let mut out = GzEncoder::new(std::io::BufWriter::new(file), Compression::default());
    writeln!(out, "{header}").expect("write");
    out.write_all(lines.as_bytes()).expect("write");
    out.finish().expect("finish gzip").flush().expect("flush");
    std::fs::metadata(&path).expect("stat").len()
}
