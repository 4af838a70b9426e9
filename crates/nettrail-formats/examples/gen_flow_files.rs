//! Writes a folder of realistic VPC flow log files as VPC Flow Logs writes them to S3
//! (gzip text with a header, plain daily layout, 5-minute slots), for the import
//! benchmark (bench/import-throughput).
//!
//!     cargo run --release -p nettrail-formats --example gen_flow_files -- DIR MEGABYTES
//!
//! MEGABYTES is the compressed size to reach, roughly (files of about 8 MB, 300,000
//! records each). Records: 400 interfaces, private and public peers, common ports,
//! 10 % REJECT, 0.5 % NODATA.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::write::GzEncoder;
use flate2::Compression;
use nettrail_formats::flow::s3::{FileFormat, Layout, ObjectKey, S3Destination};
use nettrail_formats::flow::LogFormat;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const RECORDS_PER_FILE: usize = 300_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("DIR"));
    let megabytes: u64 = args.next().expect("MEGABYTES").parse().expect("a number");
    let destination = S3Destination {
        prefix: String::new(),
        account_id: "123456789012".into(),
        region: "us-east-1".into(),
        layout: Layout::default(),
        flow_log_id: "fl-0bench0000000000".into(),
        file_format: FileFormat::PlainText,
    };
    let header = LogFormat::default_vpc().header();
    let file_count = (megabytes / 8).max(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let first_slot = 1_700_000_000 - 1_700_000_000 % 300;
    let written = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (destination, header, dir, written) = (&destination, &header, &dir, &written);
            scope.spawn(move || {
                for n in (thread..file_count).step_by(threads as usize) {
                    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (n + 1).wrapping_mul(0x9e37_79b9));
                    // Three files per 5-minute slot, like a busy VPC.
                    let slot = first_slot + (n / 3) as i64 * 300;
                    let bytes = write_file(destination, header, dir, slot, &mut rng);
                    written.fetch_add(bytes, Ordering::Relaxed);
                }
            });
        }
    });
    println!(
        "{file_count} files, {:.1} MB compressed in {}",
        written.into_inner() as f64 / 1e6,
        dir.display()
    );
}

fn write_file(
    destination: &S3Destination,
    header: &str,
    dir: &Path,
    slot: i64,
    rng: &mut Rng,
) -> u64 {
    let key = ObjectKey::for_slot(destination, slot, &format!("{:08x}", rng.next() as u32));
    let path = dir.join(key.key());
    std::fs::create_dir_all(path.parent().expect("keys have folders")).expect("create folders");
    let file = std::fs::File::create(&path).expect("create file");
    let mut out = GzEncoder::new(std::io::BufWriter::new(file), Compression::default());
    writeln!(out, "{header}").expect("write");
    let mut line = String::with_capacity(160);
    for _ in 0..RECORDS_PER_FILE {
        line.clear();
        let eni = rng.below(400);
        let end = slot + rng.below(300) as i64;
        let start = end - rng.below(60) as i64;
        if rng.below(200) == 0 {
            let _ = write!(
                line,
                "2 123456789012 eni-{eni:017x} - - - - - - - {start} {end} - NODATA"
            );
        } else {
            let local = format!("10.0.{}.{}", eni % 256, 1 + eni / 256);
            let peer = if rng.below(3) == 0 {
                let (a, b, c, d) = (
                    1 + rng.below(223),
                    rng.below(256),
                    rng.below(256),
                    rng.below(256),
                );
                format!("{a}.{b}.{c}.{d}")
            } else {
                format!("10.{}.{}.{}", rng.below(4), rng.below(256), rng.below(256))
            };
            let port = [443, 80, 22, 53, 3389, 8080, 5432, 6379][rng.below(8) as usize];
            let ephemeral = 32768 + rng.below(28000);
            let (src, dst, sport, dport) = if rng.below(2) == 0 {
                (&local, &peer, ephemeral, port)
            } else {
                (&peer, &local, port, ephemeral)
            };
            let protocol = if port == 53 { 17 } else { 6 };
            let packets = 1 + rng.below(400);
            let bytes = packets * (40 + rng.below(1400));
            let action = if rng.below(10) == 0 {
                "REJECT"
            } else {
                "ACCEPT"
            };
            let _ = write!(
                line,
                "2 123456789012 eni-{eni:017x} {src} {dst} {sport} {dport} {protocol} {packets} {bytes} {start} {end} {action} OK"
            );
        }
        writeln!(out, "{line}").expect("write");
    }
    out.finish().expect("finish gzip").flush().expect("flush");
    std::fs::metadata(&path).expect("stat").len()
}
