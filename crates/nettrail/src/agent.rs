//! `nettrail agent flows`: VPC flow log records from capture files, to stdout, a folder
//! in AWS's S3 layout, or a nettrail log group.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nettrail_agent::flows::records::InterfaceIdentity;
use nettrail_agent::flows::sink::{FolderSink, LogsSink, RecordSink, TextSink};
use nettrail_agent::flows::{self, FlowSettings};
use nettrail_formats::flow::cloudwatch::TrafficType;
use nettrail_formats::flow::s3::{FileFormat, Layout, S3Destination};
use nettrail_formats::flow::LogFormat;

/// `nettrail agent flows` options; names mirror AWS::EC2::FlowLog properties.
#[derive(clap::Args)]
pub struct FlowsArgs {
    /// Capture files (pcap or pcapng) or folders of them, read in order.
    #[arg(long, num_args = 1.., required_unless_present = "interface", conflicts_with = "interface")]
    pub pcap: Vec<PathBuf>,
    /// Network interfaces to capture on, live, until SIGINT or SIGTERM (needs a build
    /// with `--features live-capture`).
    #[arg(long, num_args = 1..)]
    pub interface: Vec<String>,
    /// Live capture: a BPF filter (tcpdump syntax) for every interface.
    #[arg(long)]
    pub filter: Option<String>,
    /// Live capture: the NFLOG group of the host firewall's drop rules (`log group N`);
    /// its packets become REJECT records.
    #[arg(long)]
    pub reject_nflog_group: Option<u16>,
    /// Live capture: how often the agent logs its counters, seconds.
    #[arg(long, default_value_t = 60)]
    pub stats_interval: u64,
    /// Where records go: `-` (stdout: the header line, then records, like an S3
    /// file's content), `logs:GROUP` (a nettrail log group, one stream per interface),
    /// or `dir:PATH` (files in AWS's S3 layout under PATH).
    #[arg(long, default_value = "-")]
    pub destination: String,
    /// The record format, `${field} ${field} …` [default: AWS's default format].
    #[arg(long)]
    pub log_format: Option<String>,
    /// Capture window in seconds: 60 or 600.
    #[arg(long, default_value_t = 600)]
    pub max_aggregation_interval: i64,
    /// ACCEPT, REJECT or ALL.
    #[arg(long, default_value = "ALL", value_parser = crate::parse_traffic_type)]
    pub traffic_type: TrafficType,
    /// `interface-id` of the records; `{n}` is the interface's number in the input,
    /// `{device}` its device name [default: eni-pcap{n} for files, the device name
    /// live].
    #[arg(long)]
    pub interface_id: Option<String>,
    /// `account-id` of the records.
    #[arg(long)]
    pub account_id: Option<String>,
    /// `vpc-id` of the records.
    #[arg(long)]
    pub vpc_id: Option<String>,
    /// `subnet-id` of the records.
    #[arg(long)]
    pub subnet_id: Option<String>,
    /// `instance-id` of the records.
    #[arg(long)]
    pub instance_id: Option<String>,
    /// `region` of the records (and of S3 keys).
    #[arg(long)]
    pub region: Option<String>,
    /// `az-id` of the records.
    #[arg(long)]
    pub az_id: Option<String>,
    /// The interface's own addresses, so that `flow-direction` says ingress or egress.
    #[arg(long, num_args = 1..)]
    pub interface_address: Vec<IpAddr>,
    /// Flows held at most; at the cap the oldest window is written early.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_flows: usize,
    /// `dir:` destinations: plain-text (gzip with header) or parquet.
    #[arg(long, default_value = "plain-text")]
    pub file_format: String,
    /// `dir:` destinations: Hive-compatible partition folders.
    #[arg(long)]
    pub hive_compatible_partitions: bool,
    /// `dir:` destinations: a folder per hour.
    #[arg(long)]
    pub per_hour_partition: bool,
    /// The flow log id in file names (`fl-…`).
    #[arg(long, default_value = "fl-0nettrail0agent")]
    pub flow_log_id: String,
    /// `logs:` destinations: where batches the server has not taken wait.
    #[arg(long, default_value = "./nettrail-agent-spool")]
    pub spool_dir: PathBuf,
    /// `logs:` destinations: the spool's size limit in bytes.
    #[arg(long, default_value_t = 1 << 30)]
    pub spool_max_bytes: u64,
    /// `logs:` destinations: how long to keep trying to deliver at the end, seconds.
    #[arg(long, default_value_t = 60)]
    pub drain_timeout: u64,
    /// The nettrail server (`logs:` destinations).
    #[arg(long, default_value = nettrail_client::DEFAULT_ENDPOINT_URL)]
    pub endpoint_url: String,
    /// AWS profile for credentials.
    #[arg(long)]
    pub profile: Option<String>,
    /// A summary of the run on stderr as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `nettrail agent flows`.
pub fn flows(args: FlowsArgs) -> Result<()> {
    let interval = args.max_aggregation_interval;
    if interval != 60 && interval != 600 {
        // AWS takes 60 or 600; shorter windows are for trying things out and tests.
        if interval < 5 || 3600 % interval != 0 {
            bail!("--max-aggregation-interval must be 60 or 600 (seconds), not {interval}");
        }
        tracing::warn!(
            interval,
            "aggregation interval other than AWS's 60 or 600 seconds"
        );
    }
    let live = !args.interface.is_empty();
    let interface_id = args.interface_id.clone().unwrap_or_else(|| {
        if live {
            "{device}".into()
        } else {
            flows::DEFAULT_FILE_INTERFACE_ID.into()
        }
    });
    let format = match &args.log_format {
        Some(spec) => LogFormat::parse(spec).context("--log-format")?,
        None => LogFormat::default_vpc(),
    };
    let settings = FlowSettings {
        format: format.clone(),
        traffic_type: args.traffic_type,
        interval: args.max_aggregation_interval,
        max_flows: args.max_flows,
        identity: InterfaceIdentity {
            interface_id: interface_id.clone(),
            account_id: args.account_id.clone(),
            vpc_id: args.vpc_id.clone(),
            subnet_id: args.subnet_id.clone(),
            instance_id: args.instance_id.clone(),
            region: args.region.clone(),
            az_id: args.az_id.clone(),
            addresses: args.interface_address.clone(),
        },
    };
    let mut sink: Box<dyn RecordSink> = if args.destination == "-" {
        // Stdout is line-buffered: a buffer in front of it makes a window's records a
        // few writes rather than one per record (the sink flushes at each window).
        Box::new(TextSink::new(
            std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
            format.clone(),
        )?)
    } else if let Some(path) = args.destination.strip_prefix("dir:") {
        let file_format = match args.file_format.as_str() {
            "plain-text" => FileFormat::PlainText,
            "parquet" => FileFormat::Parquet,
            other => bail!("--file-format must be plain-text or parquet, not {other:?}"),
        };
        let destination = S3Destination {
            prefix: String::new(),
            account_id: args
                .account_id
                .clone()
                .unwrap_or_else(|| "000000000000".into()),
            region: args.region.clone().unwrap_or_else(|| "us-east-1".into()),
            layout: Layout {
                hive_compatible_partitions: args.hive_compatible_partitions,
                per_hour_partition: args.per_hour_partition,
            },
            flow_log_id: args.flow_log_id.clone(),
            file_format,
        };
        Box::new(FolderSink::new(
            &PathBuf::from(path),
            destination,
            format.clone(),
        ))
    } else if let Some(group) = args.destination.strip_prefix("logs:") {
        // Few attempts per call: a batch the server does not take goes to the spool
        // and is sent again later, rather than holding the capture up.
        let client =
            nettrail_client::Client::from_environment(&args.endpoint_url, args.profile.as_deref())
                .map_err(|e| anyhow::anyhow!(e))?
                .with_attempts(2);
        Box::new(LogsSink::new(
            client,
            group,
            format.clone(),
            args.traffic_type,
            &interface_id,
            &args.spool_dir,
            args.spool_max_bytes,
            Duration::from_secs(args.drain_timeout),
        )?)
    } else {
        bail!(
            "--destination {:?}: use -, logs:GROUP or dir:PATH",
            args.destination
        );
    };
    let report = if live {
        run_live(&args, &settings, sink.as_mut())?
    } else {
        let files = flows::capture_files(&args.pcap).context("listing --pcap folders")?;
        if files.is_empty() {
            bail!("no capture files in {:?}", args.pcap);
        }
        flows::run_capture_files(&files, &settings, sink.as_mut())?
    };
    let damaged: Vec<String> = report
        .files
        .iter()
        .filter_map(|(path, r)| r.error.as_ref().map(|e| format!("{}: {e}", path.display())))
        .collect();
    let summary = serde_json::json!({
        "files": report.files.len(),
        "frames": report.frames,
        "notIp": report.not_ip,
        "malformed": report.malformed,
        "unknownLinkType": report.unknown_link,
        "latePackets": report.late_packets,
        "flows": report.table.flows,
        "earlyFlushedFlows": report.table.early_flushed_flows,
        "records": report.records,
        "damagedFiles": damaged,
    });
    if args.json {
        eprintln!("{summary}");
    } else {
        tracing::info!(
            files = report.files.len(),
            frames = report.frames,
            not_ip = report.not_ip,
            malformed = report.malformed,
            flows = report.table.flows,
            records = report.records,
            "flow agent finished"
        );
    }
    for line in &damaged {
        eprintln!("warning: {line}");
    }
    Ok(())
}

#[cfg(feature = "live-capture")]
fn run_live(
    args: &FlowsArgs,
    settings: &FlowSettings,
    sink: &mut dyn RecordSink,
) -> Result<flows::RunReport> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use nettrail_agent::flows::live::{LiveInterface, LiveOptions};

    let interfaces: Vec<LiveInterface> = args
        .interface
        .iter()
        .enumerate()
        .map(|(n, device)| {
            let mut identity = settings.identity_of(n as u32);
            identity.interface_id = identity.interface_id.replace("{device}", device);
            LiveInterface {
                device: device.clone(),
                identity,
            }
        })
        .collect();
    let options = LiveOptions {
        filter: args.filter.clone(),
        reject_nflog_group: args.reject_nflog_group,
        stats_interval: Duration::from_secs(args.stats_interval.max(1)),
        ..LiveOptions::default()
    };
    // SIGINT or SIGTERM: write the open windows and stop.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the signal handler")?;
        std::thread::spawn(move || {
            runtime.block_on(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            stop.store(true, Ordering::Relaxed);
        });
    }
    tracing::info!(interfaces = ?args.interface, "capturing");
    Ok(nettrail_agent::flows::live::run_live(
        &interfaces,
        settings,
        &options,
        sink,
        stop,
    )?)
}

#[cfg(not(feature = "live-capture"))]
fn run_live(
    _args: &FlowsArgs,
    _settings: &FlowSettings,
    _sink: &mut dyn RecordSink,
) -> Result<flows::RunReport> {
    bail!(
        "this nettrail was built without live capture: install libpcap-dev and build with --features live-capture"
    )
}
