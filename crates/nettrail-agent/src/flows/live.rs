//! Live capture: packets from network interfaces through libpcap (AF_PACKET with a
//! TPACKET_V3 ring), and the packets the host firewall drops from an NFLOG group.
//!
//! Each interface has a capture thread. Its handle is non-blocking and polled, because
//! with TPACKET_V3 a blocking read does not return on a silent interface until a packet
//! arrives; the thread decodes frames and sends what flows need to the aggregator
//! (the calling thread), and reports the kernel's drop count once a second. The
//! aggregator closes windows on the wall clock: a window's records are written two
//! seconds after it ends, with NODATA for an interface that had no traffic in it and SKIPDATA
//! for one whose capture dropped packets. Packets logged by netfilter (`log group N`
//! on a drop rule) become REJECT records; one dropped on input was also seen by the
//! interface's capture, so it is taken off the ACCEPT flow.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::decode::{self, LinkType, PacketMeta};
use super::records::{InterfaceIdentity, InterfaceRecord, RecordMaker};
use super::sink::{RecordSink, SinkError};
use super::table::{Action, ClosedWindow, FlowTable};
use super::{FlowSettings, RunReport};

/// An interface to capture on.
#[derive(Debug, Clone)]
pub struct LiveInterface {
    /// The device name (`eth0`).
    pub device: String,
    /// Who it is in the records.
    pub identity: InterfaceIdentity,
}

/// Capture options.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// A BPF filter for every interface (tcpdump syntax).
    pub filter: Option<String>,
    /// The NFLOG group whose packets are REJECTs.
    pub reject_nflog_group: Option<u16>,
    /// Bytes captured per packet (headers are enough).
    pub snaplen: i32,
    /// Kernel ring per interface, bytes.
    pub buffer_bytes: i32,
    /// How often counters are logged.
    pub stats_interval: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            filter: None,
            reject_nflog_group: None,
            snaplen: 256,
            buffer_bytes: 64 << 20,
            stats_interval: Duration::from_secs(60),
        }
    }
}

/// Why live capture could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A device could not be opened or configured.
    #[error("capturing on {device}: {message}")]
    Capture {
        /// The device.
        device: String,
        /// libpcap's message.
        message: String,
    },
    /// Records could not be written.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// How long after its end a window is closed, microseconds.
const CLOSE_DELAY_US: i64 = 2_000_000;

enum CaptureEvent {
    Packet {
        interface: u32,
        meta: PacketMeta,
        ts_us: i64,
    },
    Rejected {
        interface: u32,
        meta: PacketMeta,
        ts_us: i64,
        seen_as_accepted: bool,
    },
    Dropped {
        interface: u32,
        packets: u64,
    },
    Failed {
        device: String,
        message: String,
    },
}

fn open(
    device: &str,
    options: &LiveOptions,
    snaplen: i32,
    filter: Option<&str>,
) -> Result<pcap::Capture<pcap::Active>, String> {
    let mut capture = pcap::Capture::from_device(device)
        .map_err(|e| e.to_string())?
        .snaplen(snaplen)
        .buffer_size(options.buffer_bytes)
        .immediate_mode(true)
        .timeout(100)
        .open()
        .map_err(|e| e.to_string())?
        .setnonblock()
        .map_err(|e| e.to_string())?;
    if let Some(program) = filter {
        capture
            .filter(program, true)
            .map_err(|e| format!("filter {program:?}: {e}"))?;
    }
    Ok(capture)
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Waits up to 100 ms for the handle to have something to read.
fn poll_readable(fd: i32) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe {
        libc::poll(&mut pfd, 1, 100);
    }
}

/// The capture loop of one handle: `classify` turns a frame into an event.
#[allow(clippy::too_many_arguments)]
fn capture_loop(
    mut capture: pcap::Capture<pcap::Active>,
    device: String,
    pipeline: usize,
    interface: u32,
    events: SyncSender<(usize, CaptureEvent)>,
    stop: Arc<AtomicBool>,
    classify: impl Fn(&[u8], i64) -> Option<Vec<(usize, CaptureEvent)>>,
) {
    let fd = capture.as_raw_fd();
    let mut dropped = 0u64;
    let mut last_stats = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        poll_readable(fd);
        loop {
            match capture.next_packet() {
                Ok(packet) => {
                    let ts = packet.header.ts;
                    let ts_us = ts.tv_sec * 1_000_000 + ts.tv_usec;
                    for event in classify(packet.data, ts_us).into_iter().flatten() {
                        if events.send(event).is_err() {
                            return;
                        }
                    }
                }
                Err(pcap::Error::TimeoutExpired) => break,
                // A non-blocking NFLOG handle says so with EAGAIN rather than a timeout.
                Err(pcap::Error::PcapError(message))
                    if message.contains("temporarily unavailable") =>
                {
                    break
                }
                Err(e) => {
                    let _ = events.send((
                        0,
                        CaptureEvent::Failed {
                            device,
                            message: e.to_string(),
                        },
                    ));
                    return;
                }
            }
        }
        if last_stats.elapsed() >= Duration::from_secs(1) {
            last_stats = Instant::now();
            if let Ok(stats) = capture.stats() {
                let now = u64::from(stats.dropped) + u64::from(stats.if_dropped);
                if now > dropped {
                    let _ = events.send((
                        pipeline,
                        CaptureEvent::Dropped {
                            interface,
                            packets: now - dropped,
                        },
                    ));
                    dropped = now;
                }
            }
        }
    }
}

fn ifindex(device: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{device}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// One flow log: interfaces, its settings, and where its records go.
pub struct LivePipeline<'s> {
    /// The interfaces it captures on.
    pub interfaces: Vec<LiveInterface>,
    /// Its format, traffic type, interval and cap.
    pub settings: FlowSettings,
    /// Its destination.
    pub sink: &'s mut dyn RecordSink,
}

/// Captures on `interfaces` until `stop` is set, writing each window's records to
/// `sink` when it closes; at the stop, the open windows are written too.
pub fn run_live(
    interfaces: &[LiveInterface],
    settings: &FlowSettings,
    options: &LiveOptions,
    sink: &mut dyn RecordSink,
    stop: Arc<AtomicBool>,
) -> Result<RunReport, LiveError> {
    let mut pipelines = [LivePipeline {
        interfaces: interfaces.to_vec(),
        settings: settings.clone(),
        sink,
    }];
    let mut reports = run_pipelines(&mut pipelines, options, stop)?;
    Ok(reports.pop().unwrap_or_default())
}

/// Runs several flow logs at once (each its own captures, windows and destination;
/// one NFLOG reader for all), until `stop` is set; returns a report per flow log.
pub fn run_pipelines(
    pipelines: &mut [LivePipeline<'_>],
    options: &LiveOptions,
    stop: Arc<AtomicBool>,
) -> Result<Vec<RunReport>, LiveError> {
    let (tx, rx) = sync_channel::<(usize, CaptureEvent)>(1 << 16);
    let mut threads = Vec::new();
    // Open everything first, so that a bad device name fails before any capture runs.
    let mut handles = Vec::new();
    for (p, pipeline) in pipelines.iter().enumerate() {
        for (n, interface) in pipeline.interfaces.iter().enumerate() {
            let capture = open(
                &interface.device,
                options,
                options.snaplen,
                options.filter.as_deref(),
            )
            .map_err(|message| LiveError::Capture {
                device: interface.device.clone(),
                message,
            })?;
            let link = LinkType::from_pcap(capture.get_datalink().0 as u32).ok_or_else(|| {
                LiveError::Capture {
                    device: interface.device.clone(),
                    message: format!("link type {:?} is not decoded", capture.get_datalink()),
                }
            })?;
            handles.push((p, n as u32, interface.device.clone(), capture, link));
        }
    }
    let nflog = match options.reject_nflog_group {
        Some(group) => {
            let device = format!("nflog:{group}");
            // libpcap reads whole netlink messages (headers and TLVs) into snaplen.
            Some(
                open(&device, options, 65_535, None)
                    .map_err(|message| LiveError::Capture { device, message })?,
            )
        }
        None => None,
    };
    for (p, n, device, capture, link) in handles {
        let (tx, stop) = (tx.clone(), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            capture_loop(capture, device, p, n, tx, stop, |frame, ts_us| {
                let meta = decode::decode(link, frame).ok()?;
                Some(vec![(
                    p,
                    CaptureEvent::Packet {
                        interface: n,
                        meta,
                        ts_us,
                    },
                )])
            })
        }));
    }
    if let Some(capture) = nflog {
        // (pipeline, interface number, ifindex) of every interface.
        let indexes: Vec<(usize, u32, Option<u32>)> = pipelines
            .iter()
            .enumerate()
            .flat_map(|(p, pipeline)| {
                pipeline
                    .interfaces
                    .iter()
                    .enumerate()
                    .map(move |(n, i)| (p, n as u32, ifindex(&i.device)))
            })
            .collect();
        let (tx, stop) = (tx.clone(), Arc::clone(&stop));
        let device = format!("nflog:{}", options.reject_nflog_group.unwrap_or_default());
        threads.push(std::thread::spawn(move || {
            capture_loop(capture, device, 0, u32::MAX, tx, stop, |frame, ts_us| {
                let meta = decode::decode(LinkType::Nflog, frame).ok()?;
                let (input, output) = decode::nflog_devices(frame);
                let ts_us = decode::nflog_timestamp(frame).unwrap_or(ts_us);
                // Dropped on input: the interface's capture saw it arrive. Dropped on
                // output: it never reached the interface.
                let events: Vec<(usize, CaptureEvent)> = indexes
                    .iter()
                    .filter_map(|&(p, n, index)| {
                        let seen_as_accepted = match index {
                            Some(i) if input == Some(i) => true,
                            Some(i) if output == Some(i) => false,
                            _ => return None,
                        };
                        Some((
                            p,
                            CaptureEvent::Rejected {
                                interface: n,
                                meta,
                                ts_us,
                                seen_as_accepted,
                            },
                        ))
                    })
                    .collect();
                Some(events)
            })
        }));
    }
    drop(tx);
    let result = aggregate(&rx, pipelines, options, &stop);
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    for thread in threads {
        let _ = thread.join();
    }
    result
}

/// What the aggregator keeps per flow log.
struct PipelineState {
    maker: RecordMaker,
    identities: Vec<InterfaceIdentity>,
    table: FlowTable,
    report: RunReport,
    /// Windows (start) in which an interface's capture dropped packets.
    skipped: std::collections::BTreeSet<(i64, u32)>,
    next_close: i64,
    interval: i64,
}

fn aggregate(
    events: &Receiver<(usize, CaptureEvent)>,
    pipelines: &mut [LivePipeline<'_>],
    options: &LiveOptions,
    stop: &AtomicBool,
) -> Result<Vec<RunReport>, LiveError> {
    let mut states: Vec<PipelineState> = pipelines
        .iter()
        .map(|p| {
            let table = FlowTable::new(p.settings.interval, p.settings.max_flows);
            PipelineState {
                maker: RecordMaker::new(
                    p.settings.format.clone(),
                    p.settings.traffic_type,
                    p.settings.interval,
                ),
                identities: p.interfaces.iter().map(|i| i.identity.clone()).collect(),
                next_close: table.window_of(now_us() / 1_000_000),
                table,
                report: RunReport::default(),
                skipped: Default::default(),
                interval: p.settings.interval,
            }
        })
        .collect();
    let mut last_stats = Instant::now();
    let mut dropped_total = 0u64;
    loop {
        match events.recv_timeout(Duration::from_millis(200)) {
            Ok((p, event)) => {
                let state = &mut states[p];
                let sink = &mut *pipelines[p].sink;
                let early = match event {
                    CaptureEvent::Packet {
                        interface,
                        meta,
                        ts_us,
                    } => {
                        state.report.frames += 1;
                        state.table.add(interface, Action::Accept, &meta, ts_us)
                    }
                    CaptureEvent::Rejected {
                        interface,
                        meta,
                        ts_us,
                        seen_as_accepted,
                    } => {
                        state.report.frames += 1;
                        state
                            .table
                            .add_rejected(interface, &meta, ts_us, seen_as_accepted)
                    }
                    CaptureEvent::Dropped { interface, packets } => {
                        dropped_total += packets;
                        // The NFLOG reader's own drops belong to no interface.
                        if interface != u32::MAX {
                            let window = state.table.window_of(now_us() / 1_000_000);
                            state.skipped.insert((window, interface));
                        }
                        tracing::warn!(
                            interface,
                            packets,
                            "capture dropped packets; the window is marked SKIPDATA"
                        );
                        None
                    }
                    CaptureEvent::Failed { device, message } => {
                        return Err(LiveError::Capture { device, message });
                    }
                };
                if let Some(early) = early {
                    state.write_closed(early, false, sink)?;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // Windows close on the wall clock, a little after their end: netfilter hands
        // logged packets over in batches up to a second late.
        let now_s = (now_us() - CLOSE_DELAY_US) / 1_000_000;
        for (state, pipeline) in states.iter_mut().zip(pipelines.iter_mut()) {
            state.close_due(now_s, &mut *pipeline.sink)?;
        }
        if last_stats.elapsed() >= options.stats_interval {
            last_stats = Instant::now();
            for (p, state) in states.iter().enumerate() {
                let counters = state.table.counters();
                tracing::info!(
                    flow_log = p,
                    packets = counters.packets,
                    dropped = dropped_total,
                    flows = counters.flows,
                    live_flows = state.table.live_flows(),
                    early_flushed_flows = counters.early_flushed_flows,
                    records = state.report.records,
                    "flow agent counters"
                );
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    let mut reports = Vec::new();
    for (mut state, pipeline) in states.into_iter().zip(pipelines.iter_mut()) {
        for window in state.table.close_all() {
            state.write_closed(window, false, &mut *pipeline.sink)?;
        }
        pipeline.sink.finish()?;
        state.report.table = state.table.counters();
        reports.push(state.report);
    }
    Ok(reports)
}

impl PipelineState {
    /// Closes and writes every window that ended by `now_s` (with NODATA where an
    /// interface was silent), then flushes: records leave when their window closes.
    fn close_due(&mut self, now_s: i64, sink: &mut dyn RecordSink) -> Result<(), SinkError> {
        let mut wrote = false;
        while self.next_close + self.interval <= now_s {
            let end = self.next_close + self.interval;
            let mut closed = self.table.close_until(end);
            if closed.last().is_none_or(|w| w.start != self.next_close) {
                closed.push(ClosedWindow {
                    start: self.next_close,
                    flows: Vec::new(),
                    early: false,
                });
            }
            for window in closed {
                self.write_closed(window, true, sink)?;
            }
            self.skipped.retain(|(start, _)| *start >= end);
            self.next_close = end;
            wrote = true;
        }
        if wrote {
            sink.flush()?;
        }
        Ok(())
    }

    fn write_closed(
        &mut self,
        window: ClosedWindow,
        complete: bool,
        sink: &mut dyn RecordSink,
    ) -> Result<(), SinkError> {
        write_closed(
            &self.maker,
            &self.identities,
            window,
            &self.skipped,
            complete,
            sink,
            &mut self.report,
        )
    }
}

/// Writes a closed window: its flows, and with `complete` (a whole window the agent
/// watched) NODATA for every interface without flows; SKIPDATA for interfaces whose
/// capture dropped packets in it.
fn write_closed(
    maker: &RecordMaker,
    identities: &[InterfaceIdentity],
    window: ClosedWindow,
    skipped: &std::collections::BTreeSet<(i64, u32)>,
    complete: bool,
    sink: &mut dyn RecordSink,
    report: &mut RunReport,
) -> Result<(), SinkError> {
    for chunk in window.flows.chunks(super::RECORD_CHUNK) {
        report.records += sink.write_flows(maker, chunk, identities)?;
    }
    let mut records = Vec::new();
    for (n, who) in identities.iter().enumerate() {
        let n = n as u32;
        if skipped.contains(&(window.start, n)) {
            records.push(InterfaceRecord {
                interface: n,
                record: maker.no_flows(window.start, who, "SKIPDATA"),
            });
        } else if complete && !window.flows.iter().any(|(k, _)| k.interface == n) {
            records.push(InterfaceRecord {
                interface: n,
                record: maker.no_flows(window.start, who, "NODATA"),
            });
        }
    }
    report.records += records.len() as u64;
    sink.write(&records)
}
