//! VPC flow log records from packet capture.
//!
//! Frames are decoded to the outermost IP header ([`decode`]), counted into
//! unidirectional flows per interface, action and 5-tuple in capture windows aligned
//! to the aggregation interval ([`table`]), and each window's flows become records of
//! the configured format when the window closes ([`records`]), written to a
//! [`sink::RecordSink`]. With capture files ([`pcap_file`]) time is the packets' time: a
//! window closes once packets an interval past its end have been read (so that mildly
//! out-of-order captures still count each flow once), and every window at the end.

pub mod decode;
#[cfg(feature = "live-capture")]
pub mod live;
pub mod pcap_file;
pub mod records;
pub mod sink;
pub mod table;

use std::path::PathBuf;

use nettrail_formats::flow::cloudwatch::TrafficType;
use nettrail_formats::flow::LogFormat;

use decode::Skip;
use records::{InterfaceIdentity, RecordMaker};
use sink::{RecordSink, SinkError};
use table::{Action, ClosedWindow, FlowTable, TableCounters};

/// Records made and written at a time.
pub(crate) const RECORD_CHUNK: usize = 8192;

/// What an agent run needs besides its input and destination.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// The record format (`--log-format`).
    pub format: LogFormat,
    /// Which records to keep (`--traffic-type`).
    pub traffic_type: TrafficType,
    /// Capture window length in seconds (`--max-aggregation-interval`: 60 or 600).
    pub interval: i64,
    /// Flows held at most before the oldest window is closed early.
    pub max_flows: usize,
    /// The identity of every interface; `interface_id` is a template in which `{n}` is
    /// the interface's number in the input.
    pub identity: InterfaceIdentity,
}

impl FlowSettings {
    /// The identity of interface `n`.
    pub fn identity_of(&self, n: u32) -> InterfaceIdentity {
        InterfaceIdentity {
            interface_id: self.identity.interface_id.replace("{n}", &n.to_string()),
            ..self.identity.clone()
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Each input file and what reading it came to.
    pub files: Vec<(PathBuf, pcap_file::FileReport)>,
    /// Frames read.
    pub frames: u64,
    /// Frames that were not IP.
    pub not_ip: u64,
    /// Frames whose IP header was cut short or inconsistent.
    pub malformed: u64,
    /// Frames of a link type the decoder does not know.
    pub unknown_link: u64,
    /// Packets that arrived for a window already closed (written as a second record).
    pub late_packets: u64,
    /// Records written.
    pub records: u64,
    /// What the flow table did.
    pub table: TableCounters,
}

/// The capture files of `inputs`: files as given, folders' files in name order.
pub fn capture_files(inputs: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(input)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// Reads capture files in order into flow records written to `sink`.
pub fn run_capture_files(
    files: &[PathBuf],
    settings: &FlowSettings,
    sink: &mut dyn RecordSink,
) -> Result<RunReport, SinkError> {
    let maker = RecordMaker::new(
        settings.format.clone(),
        settings.traffic_type,
        settings.interval,
    );
    let mut table = FlowTable::new(settings.interval, settings.max_flows);
    let mut report = RunReport::default();
    let mut identities: Vec<InterfaceIdentity> = Vec::new();
    // Packet time seen so far, and the end of the last closed window.
    let mut newest_us = i64::MIN;
    let mut closed_until = i64::MIN;
    let mut pending: Vec<ClosedWindow> = Vec::new();
    let mut failure: Option<SinkError> = None;
    for path in files {
        let file_report = pcap_file::read_file(path, |frame| {
            if failure.is_some() {
                return;
            }
            report.frames += 1;
            let Some(link) = frame.link else {
                report.unknown_link += 1;
                return;
            };
            let packet = match decode::decode(link, frame.data) {
                Ok(p) => p,
                Err(Skip::NotIp) => {
                    report.not_ip += 1;
                    return;
                }
                Err(Skip::Malformed) => {
                    report.malformed += 1;
                    return;
                }
            };
            while identities.len() <= frame.interface as usize {
                identities.push(settings.identity_of(identities.len() as u32));
            }
            if frame.ts_us.div_euclid(1_000_000) < closed_until {
                report.late_packets += 1;
            }
            if let Some(early) = table.add(frame.interface, Action::Accept, &packet, frame.ts_us) {
                pending.push(early);
            }
            if frame.ts_us > newest_us {
                newest_us = frame.ts_us;
                // A window closes one interval after its end in packet time.
                let watermark = newest_us.div_euclid(1_000_000) - settings.interval;
                let boundary = table.window_of(watermark);
                if boundary > closed_until {
                    closed_until = boundary;
                    pending.extend(table.close_until(boundary));
                }
            }
            if !pending.is_empty() {
                if let Err(e) = write_windows(&maker, &identities, &mut pending, sink, &mut report)
                {
                    failure = Some(e);
                }
            }
        });
        if let Some(e) = failure.take() {
            return Err(e);
        }
        if let Some(error) = &file_report.error {
            tracing::warn!(file = %path.display(), error, "capture file read in part");
        }
        report.files.push((path.clone(), file_report));
    }
    pending.extend(table.close_all());
    write_windows(&maker, &identities, &mut pending, sink, &mut report)?;
    sink.finish()?;
    report.table = table.counters();
    Ok(report)
}

fn write_windows(
    maker: &RecordMaker,
    identities: &[InterfaceIdentity],
    pending: &mut Vec<ClosedWindow>,
    sink: &mut dyn RecordSink,
    report: &mut RunReport,
) -> Result<(), SinkError> {
    for window in pending.drain(..) {
        for chunk in window.flows.chunks(RECORD_CHUNK) {
            report.records += sink.write_flows(maker, chunk, identities)?;
        }
    }
    Ok(())
}

/// The default `interface-id` of capture file interfaces: AWS-shaped, numbered.
pub const DEFAULT_FILE_INTERFACE_ID: &str = "eni-pcap{n}";
