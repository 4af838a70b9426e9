//! Capture files, pcap and pcapng, read with `pcap-parser` (pure Rust, streaming,
//! zero-copy). pcapng interfaces keep their own link type and timestamp resolution and
//! offset; a legacy pcap file has one interface. A file that turns bad part way is read
//! up to the damage and the damage reported, not a panic and not silence.

use std::fs::File;
use std::path::Path;

use pcap_parser::pcapng::Block;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};

use super::decode::LinkType;

/// Reader buffer; grown (up to [`MAX_BUFFER`]) for a block that does not fit.
const BUFFER: usize = 1 << 20;
const MAX_BUFFER: usize = 64 << 20;

/// One captured frame.
pub struct Frame<'a> {
    /// The interface it was captured on, numbered from 0 within the file (pcapng
    /// sections restart the numbering; their interfaces continue it here).
    pub interface: u32,
    /// The interface's link type, if the decoder knows it.
    pub link: Option<LinkType>,
    /// Capture time, Unix microseconds.
    pub ts_us: i64,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// What reading one file came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// Frames read.
    pub frames: u64,
    /// Interfaces described in the file.
    pub interfaces: u32,
    /// Why reading stopped before the end, if it did.
    pub error: Option<String>,
    /// Damaged stretches of a pcap file that were skipped to the next readable record.
    pub resyncs: u32,
    /// Bytes skipped in them.
    pub skipped_bytes: u64,
}

struct Interface {
    link: Option<LinkType>,
    /// Units per second of the timestamps.
    resolution: u64,
    /// Seconds added to every timestamp.
    offset: i64,
}

/// Calls `visit` for every frame of the capture file at `path`, in file order.
pub fn read_file(path: &Path, mut visit: impl FnMut(Frame<'_>)) -> FileReport {
    let mut report = FileReport::default();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            report.error = Some(format!("cannot open: {e}"));
            return report;
        }
    };
    let mut reader = match create_reader(BUFFER, file) {
        Ok(r) => r,
        Err(PcapError::Eof) => return report,
        Err(e) => {
            report.error = Some(format!("not a pcap or pcapng file: {e:?}"));
            return report;
        }
    };
    // Interfaces of the whole file; `section_base` is where the current pcapng
    // section's numbering starts.
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut section_base = 0usize;
    let mut legacy_nanos = false;
    // How records are framed, once the file's header (or section) says: what damage
    // is recognised and skipped by.
    let mut framing: Option<Framing> = None;
    loop {
        // A record or block whose length none can have is damage: skip to the next one
        // that reads as one, instead of giving up on the file.
        if let Some(f) = framing.filter(|f| f.damaged(reader.data())) {
            if skip_damage(reader.as_mut(), f, &mut report, None) {
                continue;
            }
            break;
        }
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(header) => {
                        legacy_nanos = header.is_nanosecond_precision();
                        framing = Some(Framing::Legacy {
                            big_endian: header.is_bigendian(),
                            last_seconds: None,
                        });
                        interfaces.push(Interface {
                            link: LinkType::from_pcap(header.network.0 as u32),
                            resolution: if legacy_nanos {
                                1_000_000_000
                            } else {
                                1_000_000
                            },
                            offset: 0,
                        });
                    }
                    PcapBlockOwned::Legacy(packet) => {
                        let fraction = if legacy_nanos {
                            i64::from(packet.ts_usec) / 1000
                        } else {
                            i64::from(packet.ts_usec)
                        };
                        let caplen = (packet.caplen as usize).min(packet.data.len());
                        report.frames += 1;
                        if let Some(Framing::Legacy { last_seconds, .. }) = framing.as_mut() {
                            *last_seconds = Some(packet.ts_sec);
                        }
                        visit(Frame {
                            interface: 0,
                            link: interfaces.first().and_then(|i| i.link),
                            ts_us: i64::from(packet.ts_sec) * 1_000_000 + fraction,
                            data: &packet.data[..caplen],
                        });
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                        section_base = interfaces.len();
                        framing = Some(Framing::Blocks {
                            big_endian: shb.big_endian(),
                        });
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        interfaces.push(Interface {
                            link: LinkType::from_pcap(idb.linktype.0 as u32),
                            resolution: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                            offset: idb.ts_offset(),
                        });
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let index = section_base + epb.if_id as usize;
                        if let Some(interface) = interfaces.get(index) {
                            let raw = (u128::from(epb.ts_high) << 32) | u128::from(epb.ts_low);
                            let micros = raw * 1_000_000 / u128::from(interface.resolution);
                            let ts_us = i64::try_from(micros).unwrap_or(i64::MAX)
                                + interface.offset * 1_000_000;
                            let caplen = (epb.caplen as usize).min(epb.data.len());
                            report.frames += 1;
                            visit(Frame {
                                interface: index as u32,
                                link: interface.link,
                                ts_us,
                                data: &epb.data[..caplen],
                            });
                        }
                    }
                    // Simple packets have no timestamp: nothing to put in a window.
                    PcapBlockOwned::NG(_) => {}
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if reader.refill().is_err() {
                    report.error = Some("read error".into());
                    break;
                }
            }
            Err(PcapError::BufferTooSmall) => {
                let size = reader.data().len().max(BUFFER) * 2;
                if size > MAX_BUFFER || !reader.grow(size) {
                    report.error = Some(format!(
                        "a record larger than {} MiB at byte {}",
                        MAX_BUFFER >> 20,
                        reader.consumed()
                    ));
                    break;
                }
            }
            Err(PcapError::UnexpectedEof) => {
                report.error = Some(format!(
                    "cut short: the last record (at byte {}) is incomplete",
                    reader.consumed()
                ));
                break;
            }
            Err(e) => {
                let what = format!("{e:?}");
                let at = reader.consumed();
                // In pcapng a block that does not parse (its length not repeated at its
                // end, say) is skipped like one with an impossible length.
                if let Some(f @ Framing::Blocks { .. }) = framing {
                    if skip_damage(reader.as_mut(), f, &mut report, Some(&what)) {
                        continue;
                    }
                    break;
                }
                report.error = Some(format!(
                    "damaged at byte {at}: {what}; frames before it were read"
                ));
                break;
            }
        }
    }
    report.interfaces = interfaces.len() as u32;
    report
}

/// libpcap's largest snapshot length: no record of a real capture holds more.
const MAX_FRAME: usize = 262_144;

/// A legacy pcap record header.
struct LegacyHeader {
    seconds: u32,
    fraction: u32,
    caplen: u32,
    origlen: u32,
}

/// The 32-bit word at byte `i` of `bytes`, in the file's byte order.
fn word_at(bytes: &[u8], i: usize, big_endian: bool) -> Option<u32> {
    let b: [u8; 4] = bytes.get(i..i + 4)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

/// The record header at the start of `bytes`, if 16 bytes are there.
fn legacy_header(bytes: &[u8], big_endian: bool) -> Option<LegacyHeader> {
    let word = |i: usize| word_at(bytes, i, big_endian);
    Some(LegacyHeader {
        seconds: word(0)?,
        fraction: word(4)?,
        caplen: word(8)?,
        origlen: word(12)?,
    })
}

/// Whether a record can start at `at` in `data`: sane lengths, a fraction below one
/// second (in nanoseconds at most), a time within a day of the last good record, and
/// the record after it sane too (unless the buffered data ends first).
fn plausible_record(data: &[u8], at: usize, big_endian: bool, last_seconds: Option<u32>) -> bool {
    let sane = |h: &LegacyHeader| {
        h.caplen as usize <= MAX_FRAME
            && h.caplen <= h.origlen
            && h.origlen <= 1 << 20
            && h.fraction < 1_000_000_000
            && last_seconds.is_none_or(|last| h.seconds.abs_diff(last) <= 86_400)
    };
    let Some(header) = legacy_header(&data[at.min(data.len())..], big_endian) else {
        return false;
    };
    if !sane(&header) {
        return false;
    }
    let next = at + 16 + header.caplen as usize;
    match data.get(next..) {
        Some(rest) if rest.len() >= 16 => legacy_header(rest, big_endian).is_some_and(|h| sane(&h)),
        _ => true,
    }
}

/// The type and total length of the pcapng block at the start of `bytes`.
fn block_header(bytes: &[u8], big_endian: bool) -> Option<(u32, u32)> {
    Some((
        word_at(bytes, 0, big_endian)?,
        word_at(bytes, 4, big_endian)?,
    ))
}

/// Whether a pcapng block can be this long: the 12 bytes of type and both lengths at
/// least, a multiple of 4, and no larger than the reader's largest buffer.
fn sane_block_length(length: u32) -> bool {
    length >= 12 && length.is_multiple_of(4) && length as usize <= MAX_BUFFER
}

/// Whether a pcapng block can start at `at` in `data`: a type pcapng defines, a sane
/// length, and that length repeated at the block's end (unless the buffered data
/// ends first).
fn plausible_block(data: &[u8], at: usize, big_endian: bool) -> bool {
    const KNOWN: &[u32] = &[
        0x0A0D_0D0A, // section header
        0x0000_0001, // interface description
        0x0000_0003, // simple packet
        0x0000_0004, // name resolution
        0x0000_0005, // interface statistics
        0x0000_0006, // enhanced packet
        0x0000_000A, // decryption secrets
        0x0000_0BAD, // custom
        0x4000_0BAD, // custom, not to be copied
    ];
    let Some((kind, length)) = block_header(&data[at.min(data.len())..], big_endian) else {
        return false;
    };
    if !KNOWN.contains(&kind) || !sane_block_length(length) {
        return false;
    }
    let end = at + length as usize;
    match data.get(end - 4..end) {
        Some(trailer) => word_at(trailer, 0, big_endian) == Some(length),
        None => true,
    }
}

/// How a file's records are framed, for recognising damage and the next readable
/// record after it.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// Legacy pcap records: a 16-byte header each and no markers, so a record is
    /// recognised by sane lengths and times, as pcapfix does.
    Legacy {
        big_endian: bool,
        /// Seconds of the last good record (a record found after damage must be near).
        last_seconds: Option<u32>,
    },
    /// pcapng blocks: type, length, body, length again.
    Blocks { big_endian: bool },
}

impl Framing {
    /// Whether what starts `data` has a length no record or block can have.
    fn damaged(self, data: &[u8]) -> bool {
        match self {
            Framing::Legacy { big_endian, .. } => {
                legacy_header(data, big_endian).is_some_and(|h| h.caplen as usize > MAX_FRAME)
            }
            Framing::Blocks { big_endian } => {
                block_header(data, big_endian).is_some_and(|(_, length)| !sane_block_length(length))
            }
        }
    }

    /// Whether a record or block can start at `at` in `data`.
    fn plausible(self, data: &[u8], at: usize) -> bool {
        match self {
            Framing::Legacy {
                big_endian,
                last_seconds,
            } => plausible_record(data, at, big_endian, last_seconds),
            Framing::Blocks { big_endian } => plausible_block(data, at, big_endian),
        }
    }

    /// Bytes between candidate starts (pcapng blocks are 4-byte aligned).
    fn step(self) -> usize {
        match self {
            Framing::Legacy { .. } => 1,
            Framing::Blocks { .. } => 4,
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Framing::Legacy { .. } => "record",
            Framing::Blocks { .. } => "block",
        }
    }
}

/// Skips the damage at the reader's position to the next readable record or block
/// and counts it (true), or says where reading stopped (false); `what` is the parse
/// error, when one found the damage.
fn skip_damage(
    reader: &mut dyn pcap_parser::traits::PcapReaderIterator,
    framing: Framing,
    report: &mut FileReport,
    what: Option<&str>,
) -> bool {
    let at = reader.consumed();
    match resync(reader, framing.step(), |data, at| {
        framing.plausible(data, at)
    }) {
        Some(skipped) => {
            report.resyncs += 1;
            report.skipped_bytes += skipped as u64;
            tracing::debug!(
                byte = at,
                skipped,
                error = what,
                unit = framing.unit(),
                "damage skipped"
            );
            true
        }
        None => {
            report.error = Some(match what {
                Some(what) => format!("damaged at byte {at}: {what}; frames before it were read"),
                None => format!(
                    "damaged at byte {at}: no readable {} after it; frames before it were read",
                    framing.unit()
                ),
            });
            false
        }
    }
}

/// Skips from damage to the next position (a multiple of `step` bytes on) where
/// `plausible` says a record or block starts; returns the bytes skipped, or None when
/// the file ends first.
fn resync(
    reader: &mut dyn pcap_parser::traits::PcapReaderIterator,
    step: usize,
    plausible: impl Fn(&[u8], usize) -> bool,
) -> Option<usize> {
    let mut skipped = 0usize;
    loop {
        let data = reader.data();
        let found = (step..data.len().saturating_sub(15))
            .step_by(step)
            .find(|&at| plausible(data, at));
        if let Some(at) = found {
            reader.consume(at);
            return Some(skipped + at);
        }
        // Keep the last bytes that may hold the start of a header across the refill,
        // rounded to the step so that alignment is kept.
        let keep = 16usize.div_ceil(step) * step;
        let drop = data.len().saturating_sub(keep) / step * step;
        let drop = if drop == 0 {
            step.min(data.len())
        } else {
            drop
        };
        if drop == 0 || (reader.reader_exhausted() && data.len() <= keep) {
            return None;
        }
        reader.consume(drop);
        skipped += drop;
        let before = reader.data().len();
        if reader.refill().is_err()
            || (reader.reader_exhausted() && reader.data().len() == before && before <= keep)
        {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A legacy pcap file of Ethernet frames: (seconds, microseconds field, frame).
    fn pcap(records: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        out.extend(2u16.to_le_bytes());
        out.extend(4u16.to_le_bytes());
        out.extend([0u8; 8]);
        out.extend(65535u32.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        for (sec, usec, frame) in records {
            out.extend(sec.to_le_bytes());
            out.extend(usec.to_le_bytes());
            out.extend((frame.len() as u32).to_le_bytes());
            out.extend((frame.len() as u32).to_le_bytes());
            out.extend(frame);
        }
        out
    }

    fn frames(bytes: &[u8]) -> (Vec<i64>, FileReport) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pcap");
        std::fs::write(&path, bytes).unwrap();
        let mut times = Vec::new();
        let report = read_file(&path, |f| times.push(f.ts_us));
        (times, report)
    }

    #[test]
    fn an_odd_record_is_read_past_and_a_cut_file_keeps_what_came_before() {
        let frame = vec![0u8; 60];
        // The middle record's microseconds field is out of range (as some tools write
        // it): read on, as libpcap and tshark do.
        let file = pcap(&[
            (1_000, 5, frame.clone()),
            (1_001, 4_293_562_680, frame.clone()),
            (1_002, 7, frame.clone()),
        ]);
        let (times, report) = frames(&file);
        assert_eq!(times.len(), 3);
        assert_eq!((times[0], times[2]), (1_000_000_005, 1_002_000_007));
        assert_eq!(report.error, None);
        // Cut in the last record: the first two are read, and the cut is reported.
        let (times, report) = frames(&file[..file.len() - 10]);
        assert_eq!(times.len(), 2);
        assert!(report.error.unwrap().contains("cut short"));
        // Not a capture at all.
        let (times, report) = frames(b"hello, this is not a capture file at all......");
        assert!(times.is_empty() && report.error.unwrap().contains("not a pcap"));
    }

    #[test]
    fn a_record_with_garbage_lengths_is_skipped_to_the_next_readable_one() {
        let frame = vec![0u8; 60];
        let mut file = pcap(&[(1_000, 5, frame.clone()), (1_001, 6, frame.clone())]);
        // Damage: a header whose lengths no capture has, and junk after it.
        file.extend(1_002u32.to_le_bytes());
        file.extend(0u32.to_le_bytes());
        file.extend(0xffff_ff00u32.to_le_bytes());
        file.extend(0xffff_ff00u32.to_le_bytes());
        file.extend([0xa5u8; 37]);
        let good = pcap(&[(1_003, 7, frame.clone()), (1_004, 8, frame.clone())]);
        file.extend(&good[24..]);
        let (times, report) = frames(&file);
        assert_eq!(
            times,
            [1_000_000_005, 1_001_000_006, 1_003_000_007, 1_004_000_008]
        );
        assert_eq!(
            (report.resyncs, report.skipped_bytes, report.error),
            (1, 16 + 37, None)
        );
        // Damage that runs to the end: what came before is kept, and it is said.
        let cut = file.len() - good.len() + 24;
        let (times, report) = frames(&file[..cut]);
        assert_eq!(times.len(), 2);
        assert!(report
            .error
            .unwrap()
            .contains("no readable record after it"));
    }

    /// A pcapng file: section header, one Ethernet interface (microseconds), then an
    /// enhanced packet per (seconds, frame).
    fn pcapng(packets: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let block = |kind: u32, body: &[u8]| {
            let length = (12 + body.len()) as u32;
            let mut out = kind.to_le_bytes().to_vec();
            out.extend(length.to_le_bytes());
            out.extend(body);
            out.extend(length.to_le_bytes());
            out
        };
        let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
        shb.extend(1u16.to_le_bytes());
        shb.extend(0u16.to_le_bytes());
        shb.extend((-1i64).to_le_bytes());
        let mut out = block(0x0A0D_0D0A, &shb);
        let mut idb = 1u16.to_le_bytes().to_vec();
        idb.extend(0u16.to_le_bytes());
        idb.extend(65535u32.to_le_bytes());
        out.extend(block(1, &idb));
        for (seconds, frame) in packets {
            let micros = u64::from(*seconds) * 1_000_000;
            let mut epb = 0u32.to_le_bytes().to_vec();
            epb.extend(((micros >> 32) as u32).to_le_bytes());
            epb.extend((micros as u32).to_le_bytes());
            epb.extend((frame.len() as u32).to_le_bytes());
            epb.extend((frame.len() as u32).to_le_bytes());
            epb.extend(frame);
            while !epb.len().is_multiple_of(4) {
                epb.push(0);
            }
            out.extend(block(6, &epb));
        }
        out
    }

    #[test]
    fn a_damaged_pcapng_block_is_skipped_to_the_next_block() {
        let frame = vec![0u8; 62];
        let good = pcapng(&[
            (1_000, frame.clone()),
            (1_001, frame.clone()),
            (1_002, frame.clone()),
        ]);
        let (times, report) = frames(&good);
        assert_eq!(times.len(), 3);
        assert_eq!(report.error, None);
        // The second packet's block: its length made impossible.
        let second = 28 + 20 + 96;
        let mut bad_length = good.clone();
        bad_length[second + 4..second + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        let (times, report) = frames(&bad_length);
        assert_eq!(times, [1_000_000_000, 1_002_000_000]);
        assert_eq!((report.resyncs, report.error), (1, None));
        // Its trailing length no longer matching: the block does not parse.
        let mut bad_trailer = good.clone();
        bad_trailer[second + 92..second + 96].copy_from_slice(&7u32.to_le_bytes());
        let (times, report) = frames(&bad_trailer);
        assert_eq!(times, [1_000_000_000, 1_002_000_000]);
        assert_eq!(report.resyncs, 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever follows a valid header (damage, junk, cut records), reading ends
        /// without a panic and never makes more frames than there are bytes for.
        #[test]
        fn any_bytes_after_a_header_are_read_without_panicking(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            good in 0usize..4,
        ) {
            let frame = vec![0u8; 60];
            let records: Vec<(u32, u32, Vec<u8>)> = (0..good).map(|i| (1_000 + i as u32, 0, frame.clone())).collect();
            let mut file = pcap(&records);
            file.extend(&tail);
            let (times, report) = frames(&file);
            proptest::prop_assert!(times.len() >= good);
            proptest::prop_assert!(times.len() <= good + tail.len() / 16);
            proptest::prop_assert!(report.skipped_bytes as usize <= tail.len());
        }

        /// The same after a pcapng section and interface.
        #[test]
        fn any_bytes_after_a_pcapng_header_are_read_without_panicking(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            good in 0usize..4,
        ) {
            let packets: Vec<(u32, Vec<u8>)> = (0..good).map(|i| (1_000 + i as u32, vec![0u8; 60])).collect();
            let mut file = pcapng(&packets);
            file.extend(&tail);
            let (times, report) = frames(&file);
            proptest::prop_assert!(times.len() >= good);
            proptest::prop_assert!(times.len() <= good + tail.len() / 32);
            proptest::prop_assert!(report.skipped_bytes as usize <= tail.len());
        }
    }
}
