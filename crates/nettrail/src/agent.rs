//! `nettrail agent flows`: VPC flow log records from capture files, to stdout, a folder
//! in AWS's S3 layout, or a nettrail log group.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nettrail_agent::flows::records::InterfaceIdentity;
use nettrail_agent::flows::sink::{FolderSink, LogsSink, RecordSink, SinkError, TextSink};
use nettrail_agent::flows::{self, FlowSettings};
use nettrail_formats::flow::cloudwatch::TrafficType;
use nettrail_formats::flow::s3::{FileFormat, Layout, S3Destination};
use nettrail_formats::flow::LogFormat;
use serde::Deserialize;

/// `nettrail agent flows` options; names mirror AWS::EC2::FlowLog properties.
#[derive(clap::Args)]
pub struct FlowsArgs {
    /// Capture files (pcap or pcapng) or folders of them, read in order.
    #[arg(long, num_args = 1.., required_unless_present_any = ["interface", "config"], conflicts_with_all = ["interface", "config"])]
    pub pcap: Vec<PathBuf>,
    /// Several flow logs, AWS::EC2::FlowLog-shaped, in a TOML file (see
    /// flowlogs.example.toml): live capture on each one's interface.
    #[arg(long, conflicts_with = "interface")]
    pub config: Option<PathBuf>,
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
    /// `dir:PATH` (files in AWS's S3 layout under PATH) or `s3://BUCKET/PREFIX` (the
    /// same files uploaded to a bucket as each is complete).
    #[arg(long, default_value = "-")]
    pub destination: String,
    /// The record format, `${field} ${field} …` [default: AWS's default format].
    #[arg(long)]
    pub log_format: Option<String>,
    /// Capture window in seconds: 60 or 600.
    #[arg(long, default_value_t = 600)]
    pub max_aggregation_interval: i64,
    /// ACCEPT, REJECT or ALL.
    #[arg(long, default_value = "ALL", value_parser = crate::common::parse_traffic_type)]
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
    /// `s3://` destinations: the endpoint of an S3-compatible store [default: AWS's].
    #[arg(long)]
    pub s3_endpoint_url: Option<String>,
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

/// One flow log as AWS::EC2::FlowLog describes it (properties in snake case), plus
/// the identity its records carry. The command line makes one; `--config` many.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowLogSpec {
    /// `NetworkInterface` (the only kind a host has).
    #[serde(default = "network_interface")]
    pub resource_type: String,
    /// The interface: a device name (`eth0`).
    #[serde(default)]
    pub resource_id: String,
    /// ACCEPT, REJECT or ALL.
    #[serde(default = "all")]
    pub traffic_type: String,
    /// `cloud-watch-logs`, `s3` or `stdout`.
    pub log_destination_type: String,
    /// A log group name (or its ARN) for `cloud-watch-logs`; a folder (or `dir:PATH`)
    /// for `s3`; nothing for `stdout`.
    #[serde(default)]
    pub log_destination: String,
    /// The record format [default: AWS's default format].
    #[serde(default)]
    pub log_format: Option<String>,
    /// 60 or 600 seconds.
    #[serde(default = "six_hundred")]
    pub max_aggregation_interval: i64,
    /// File format and partitions of `s3` destinations.
    #[serde(default)]
    pub destination_options: DestinationOptions,
    /// The flow log id in file names.
    #[serde(default = "default_flow_log_id")]
    pub flow_log_id: String,
    /// Flows held at most.
    #[serde(default = "million")]
    pub max_flows: usize,
    /// `interface-id` [default: the device name].
    #[serde(default)]
    pub interface_id: Option<String>,
    /// `account-id`.
    #[serde(default)]
    pub account_id: Option<String>,
    /// `vpc-id`.
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// `subnet-id`.
    #[serde(default)]
    pub subnet_id: Option<String>,
    /// `instance-id`.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// `region`.
    #[serde(default)]
    pub region: Option<String>,
    /// `az-id`.
    #[serde(default)]
    pub az_id: Option<String>,
    /// The interface's own addresses, for `flow-direction`.
    #[serde(default)]
    pub interface_addresses: Vec<IpAddr>,
}

/// `DestinationOptions` of an S3 flow log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationOptions {
    /// `plain-text` or `parquet`.
    #[serde(default)]
    pub file_format: Option<String>,
    /// Hive-compatible partition folders.
    #[serde(default)]
    pub hive_compatible_partitions: bool,
    /// A folder per hour.
    #[serde(default)]
    pub per_hour_partition: bool,
}

fn network_interface() -> String {
    "NetworkInterface".into()
}
fn all() -> String {
    "ALL".into()
}
fn six_hundred() -> i64 {
    600
}
fn million() -> usize {
    1_000_000
}
fn default_flow_log_id() -> String {
    "fl-0nettrail0agent".into()
}

/// A `--config` file: what every flow log shares, and the flow logs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentConfig {
    #[serde(default)]
    agent: SharedSettings,
    flow_logs: Vec<FlowLogSpec>,
}

/// What every flow log of a config shares.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SharedSettings {
    endpoint_url: Option<String>,
    s3_endpoint_url: Option<String>,
    profile: Option<String>,
    spool_dir: Option<PathBuf>,
    spool_max_bytes: Option<u64>,
    reject_nflog_group: Option<u16>,
    filter: Option<String>,
    stats_interval: Option<u64>,
}

impl FlowsArgs {
    /// The flow log the command line describes.
    fn spec(&self) -> Result<FlowLogSpec> {
        let (log_destination_type, log_destination) = if self.destination == "-" {
            ("stdout", String::new())
        } else if let Some(path) = self.destination.strip_prefix("dir:") {
            ("s3", path.to_owned())
        } else if self.destination.starts_with("s3://") {
            ("s3", self.destination.clone())
        } else if let Some(group) = self.destination.strip_prefix("logs:") {
            ("cloud-watch-logs", group.to_owned())
        } else {
            bail!(
                "--destination {:?}: use -, logs:GROUP or dir:PATH",
                self.destination
            );
        };
        Ok(FlowLogSpec {
            resource_type: network_interface(),
            resource_id: self.interface.first().cloned().unwrap_or_default(),
            traffic_type: self.traffic_type.as_str().to_owned(),
            log_destination_type: log_destination_type.into(),
            log_destination,
            log_format: self.log_format.clone(),
            max_aggregation_interval: self.max_aggregation_interval,
            destination_options: DestinationOptions {
                file_format: Some(self.file_format.clone()),
                hive_compatible_partitions: self.hive_compatible_partitions,
                per_hour_partition: self.per_hour_partition,
            },
            flow_log_id: self.flow_log_id.clone(),
            max_flows: self.max_flows,
            interface_id: self.interface_id.clone(),
            account_id: self.account_id.clone(),
            vpc_id: self.vpc_id.clone(),
            subnet_id: self.subnet_id.clone(),
            instance_id: self.instance_id.clone(),
            region: self.region.clone(),
            az_id: self.az_id.clone(),
            interface_addresses: self.interface_address.clone(),
        })
    }
}

/// Where clients and spools of `cloud-watch-logs` destinations point.
struct Shipping {
    endpoint_url: String,
    s3_endpoint_url: Option<String>,
    profile: Option<String>,
    spool_dir: PathBuf,
    spool_max_bytes: u64,
    drain_timeout: Duration,
}

/// The settings of a flow log, with `default_interface_id` when it names none.
fn settings_of(spec: &FlowLogSpec, default_interface_id: &str) -> Result<FlowSettings> {
    let interval = spec.max_aggregation_interval;
    if interval != 60 && interval != 600 {
        // AWS takes 60 or 600; shorter windows are for trying things out and tests.
        if interval < 5 || 3600 % interval != 0 {
            bail!("max aggregation interval must be 60 or 600 (seconds), not {interval}");
        }
        tracing::warn!(
            interval,
            "aggregation interval other than AWS's 60 or 600 seconds"
        );
    }
    if spec.resource_type != "NetworkInterface" {
        bail!(
            "resource_type {:?}: a host's flow logs are of NetworkInterface resources",
            spec.resource_type
        );
    }
    let format = match &spec.log_format {
        Some(format) => LogFormat::parse(format).context("log format")?,
        None => LogFormat::default_vpc(),
    };
    let traffic_type =
        crate::common::parse_traffic_type(&spec.traffic_type).map_err(anyhow::Error::msg)?;
    Ok(FlowSettings {
        format,
        traffic_type,
        interval,
        max_flows: spec.max_flows,
        identity: InterfaceIdentity {
            interface_id: spec
                .interface_id
                .clone()
                .unwrap_or_else(|| default_interface_id.to_owned()),
            account_id: spec.account_id.clone(),
            vpc_id: spec.vpc_id.clone(),
            subnet_id: spec.subnet_id.clone(),
            instance_id: spec.instance_id.clone(),
            region: spec.region.clone(),
            az_id: spec.az_id.clone(),
            addresses: spec.interface_addresses.clone(),
        },
    })
}

/// The destination of a flow log. `spool_name` keeps the spools of several flow logs
/// apart.
fn sink_of(
    spec: &FlowLogSpec,
    settings: &FlowSettings,
    shipping: &Shipping,
    spool_name: &str,
) -> Result<Box<dyn RecordSink>> {
    let format = settings.format.clone();
    Ok(match spec.log_destination_type.as_str() {
        "stdout" => {
            // Stdout is line-buffered: a buffer in front of it makes a window's records
            // a few writes rather than one per record.
            Box::new(TextSink::new(
                std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
                format,
            )?)
        }
        "s3" => {
            // A bucket: `s3://BUCKET/PREFIX` or AWS's `arn:aws:s3:::BUCKET/PREFIX`.
            let bucket = spec
                .log_destination
                .strip_prefix("s3://")
                .or_else(|| spec.log_destination.strip_prefix("arn:aws:s3:::"));
            let path = match bucket {
                Some(_) => shipping.spool_dir.join(spool_name).join("s3-staging"),
                None => PathBuf::from(
                    spec.log_destination
                        .strip_prefix("dir:")
                        .unwrap_or(&spec.log_destination),
                ),
            };
            if path.as_os_str().is_empty() {
                bail!("an s3 flow log needs log_destination: s3://BUCKET/PREFIX, an S3 ARN or dir:PATH");
            }
            let file_format = match spec.destination_options.file_format.as_deref() {
                None | Some("plain-text") => FileFormat::PlainText,
                Some("parquet") => FileFormat::Parquet,
                Some(other) => bail!("file format must be plain-text or parquet, not {other:?}"),
            };
            let destination = S3Destination {
                prefix: String::new(),
                account_id: spec
                    .account_id
                    .clone()
                    .unwrap_or_else(|| "000000000000".into()),
                region: spec.region.clone().unwrap_or_else(|| "us-east-1".into()),
                layout: Layout {
                    hive_compatible_partitions: spec.destination_options.hive_compatible_partitions,
                    per_hour_partition: spec.destination_options.per_hour_partition,
                },
                flow_log_id: spec.flow_log_id.clone(),
                file_format,
            };
            let folder = FolderSink::new(&path, destination, format);
            match bucket {
                Some(bucket) => {
                    let (store, prefix) = crate::common::s3_bucket(
                        bucket,
                        shipping.s3_endpoint_url.as_deref(),
                        shipping.profile.as_deref(),
                    )?;
                    Box::new(UploadingSink::new(folder, path, store, &prefix)?)
                }
                None => Box::new(folder),
            }
        }
        "cloud-watch-logs" => {
            // A log group ARN names its group after `:log-group:`.
            let group = match spec.log_destination.split_once(":log-group:") {
                Some((_, rest)) => rest.trim_end_matches(":*"),
                None => spec.log_destination.as_str(),
            };
            if group.is_empty() {
                bail!("a cloud-watch-logs flow log needs its log group in log_destination");
            }
            // Few attempts per call: a batch the server does not take goes to the spool
            // and is sent again later, rather than holding the capture up.
            let client = nettrail_client::Client::from_environment(
                &shipping.endpoint_url,
                shipping.profile.as_deref(),
            )
            .map_err(|e| anyhow::anyhow!(e))?
            .with_attempts(2);
            Box::new(LogsSink::new(
                client,
                group,
                format,
                settings.traffic_type,
                &settings.identity.interface_id,
                &shipping.spool_dir.join(spool_name),
                shipping.spool_max_bytes,
                shipping.drain_timeout,
            )?)
        }
        other => bail!("log destination type {other:?}: use cloud-watch-logs, s3 or stdout"),
    })
}

/// Runs `nettrail agent flows`.
pub fn flows(args: FlowsArgs) -> Result<()> {
    if let Some(path) = &args.config {
        return run_config(&args, path);
    }
    let live = !args.interface.is_empty();
    let spec = args.spec()?;
    let default_id = if live {
        "{device}"
    } else {
        flows::DEFAULT_FILE_INTERFACE_ID
    };
    let settings = settings_of(&spec, default_id)?;
    let shipping = Shipping {
        endpoint_url: args.endpoint_url.clone(),
        s3_endpoint_url: args.s3_endpoint_url.clone(),
        profile: args.profile.clone(),
        spool_dir: args.spool_dir.clone(),
        spool_max_bytes: args.spool_max_bytes,
        drain_timeout: Duration::from_secs(args.drain_timeout),
    };
    // One flow log's spool is the spool folder itself (what earlier runs left there
    // goes first).
    let mut sink = sink_of(&spec, &settings, &shipping, "")?;
    let report = if live {
        let interfaces = args
            .interface
            .iter()
            .enumerate()
            .map(|(n, device)| live_interface(&settings, n as u32, device))
            .collect();
        let options = live_options(
            args.filter.clone(),
            args.reject_nflog_group,
            args.stats_interval,
        );
        run_live(vec![(interfaces, settings, sink)], options)?
            .pop()
            .unwrap_or_default()
    } else {
        let files = flows::capture_files(&args.pcap).context("listing --pcap folders")?;
        if files.is_empty() {
            bail!("no capture files in {:?}", args.pcap);
        }
        flows::run_capture_files(&files, &settings, sink.as_mut())?
    };
    let mut damaged: Vec<String> = report
        .files
        .iter()
        .filter_map(|(path, r)| r.error.as_ref().map(|e| format!("{}: {e}", path.display())))
        .collect();
    damaged.extend(
        report
            .files
            .iter()
            .filter(|(_, r)| r.resyncs > 0)
            .map(|(path, r)| {
                format!(
                    "{}: {} damaged stretches ({} bytes) skipped to the next readable record",
                    path.display(),
                    r.resyncs,
                    r.skipped_bytes
                )
            }),
    );
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

/// Flow log files written to a local staging folder in AWS's S3 layout, each uploaded
/// to the bucket under the same key once complete, then removed locally. A file that
/// cannot be uploaded stays staged and is tried again after the next write and at the
/// end.
struct UploadingSink {
    folder: FolderSink,
    staging: PathBuf,
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    prefix: String,
    runtime: tokio::runtime::Runtime,
    /// Files of `folder` already uploaded.
    uploaded: usize,
}

impl UploadingSink {
    fn new(
        folder: FolderSink,
        staging: PathBuf,
        store: std::sync::Arc<dyn object_store::ObjectStore>,
        prefix: &str,
    ) -> Result<UploadingSink> {
        let mut prefix = prefix.trim_start_matches('/').to_owned();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(UploadingSink {
            folder,
            staging,
            store,
            prefix,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?,
            uploaded: 0,
        })
    }

    /// Uploads the files closed since the last call, in order.
    fn upload_closed(&mut self) -> Result<(), SinkError> {
        use object_store::ObjectStoreExt;
        while let Some(path) = self.folder.files().get(self.uploaded).cloned() {
            let key = path
                .strip_prefix(&self.staging)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let object = object_store::path::Path::from(format!("{}{key}", self.prefix));
            let bytes = std::fs::read(&path).map_err(|source| SinkError::Io {
                what: "reading staged file",
                path: path.display().to_string(),
                source,
            })?;
            self.runtime
                .block_on(self.store.put(&object, bytes.into()))
                .map_err(|e| SinkError::Server(format!("uploading {object}: {e}")))?;
            let _ = std::fs::remove_file(&path);
            self.uploaded += 1;
        }
        Ok(())
    }
}

impl RecordSink for UploadingSink {
    fn write(
        &mut self,
        records: &[nettrail_agent::flows::records::InterfaceRecord],
    ) -> Result<(), SinkError> {
        self.folder.write(records)?;
        if let Err(e) = self.upload_closed() {
            tracing::warn!(error = %e, "upload failed; the file stays staged and is tried again");
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.folder.finish()?;
        let mut wait = Duration::from_millis(500);
        for attempt in 1.. {
            match self.upload_closed() {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= 5 => {
                    return Err(SinkError::Server(format!(
                        "{e}; the files not uploaded are in {}",
                        self.staging.display()
                    )))
                }
                Err(_) => {
                    std::thread::sleep(wait);
                    wait *= 2;
                }
            }
        }
        Ok(())
    }
}

/// The identity of live interface `n` on `device`.
fn live_interface(settings: &FlowSettings, n: u32, device: &str) -> LiveInterfaceSpec {
    let mut identity = settings.identity_of(n);
    identity.interface_id = identity.interface_id.replace("{device}", device);
    LiveInterfaceSpec {
        device: device.to_owned(),
        identity,
    }
}

/// An interface to capture on, and who it is.
#[cfg_attr(not(feature = "live-capture"), allow(dead_code))]
pub struct LiveInterfaceSpec {
    device: String,
    identity: InterfaceIdentity,
}

/// Capture options shared by every flow log of a run.
#[cfg_attr(not(feature = "live-capture"), allow(dead_code))]
pub struct LiveOptionsSpec {
    filter: Option<String>,
    reject_nflog_group: Option<u16>,
    stats_interval: u64,
}

fn live_options(
    filter: Option<String>,
    reject_nflog_group: Option<u16>,
    stats_interval: u64,
) -> LiveOptionsSpec {
    LiveOptionsSpec {
        filter,
        reject_nflog_group,
        stats_interval,
    }
}

/// Runs the flow logs of a `--config` file, live, until SIGINT or SIGTERM.
fn run_config(args: &FlowsArgs, path: &std::path::Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: AgentConfig = toml::from_str(&text)
        .with_context(|| format!("{} is not a flow log configuration", path.display()))?;
    if config.flow_logs.is_empty() {
        bail!("{} has no [[flow_logs]]", path.display());
    }
    let shared = &config.agent;
    let shipping = Shipping {
        endpoint_url: shared
            .endpoint_url
            .clone()
            .unwrap_or_else(|| args.endpoint_url.clone()),
        s3_endpoint_url: shared
            .s3_endpoint_url
            .clone()
            .or_else(|| args.s3_endpoint_url.clone()),
        profile: shared.profile.clone().or_else(|| args.profile.clone()),
        spool_dir: shared
            .spool_dir
            .clone()
            .unwrap_or_else(|| args.spool_dir.clone()),
        spool_max_bytes: shared.spool_max_bytes.unwrap_or(args.spool_max_bytes),
        drain_timeout: Duration::from_secs(args.drain_timeout),
    };
    let mut pipelines = Vec::new();
    let mut stdout_used = false;
    for (i, spec) in config.flow_logs.iter().enumerate() {
        let context = || format!("flow log {} ({})", i + 1, spec.resource_id);
        if spec.resource_id.is_empty() {
            bail!("{}: resource_id (the interface) is missing", context());
        }
        if spec.log_destination_type == "stdout" {
            if stdout_used {
                bail!("{}: only one flow log can write to stdout", context());
            }
            stdout_used = true;
        }
        let settings = settings_of(spec, "{device}").with_context(context)?;
        let sink = sink_of(spec, &settings, &shipping, &format!("flow-log-{}", i + 1))
            .with_context(context)?;
        let interface = live_interface(&settings, 0, &spec.resource_id);
        pipelines.push((vec![interface], settings, sink));
    }
    let options = live_options(
        shared.filter.clone().or_else(|| args.filter.clone()),
        shared.reject_nflog_group.or(args.reject_nflog_group),
        shared.stats_interval.unwrap_or(args.stats_interval),
    );
    let reports = run_live(pipelines, options)?;
    for (spec, report) in config.flow_logs.iter().zip(&reports) {
        tracing::info!(
            interface = spec.resource_id,
            packets = report.frames,
            flows = report.table.flows,
            records = report.records,
            "flow log stopped"
        );
    }
    Ok(())
}

type Pipeline = (Vec<LiveInterfaceSpec>, FlowSettings, Box<dyn RecordSink>);

#[cfg(feature = "live-capture")]
fn run_live(pipelines: Vec<Pipeline>, options: LiveOptionsSpec) -> Result<Vec<flows::RunReport>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use nettrail_agent::flows::live::{LiveInterface, LiveOptions, LivePipeline};

    let options = LiveOptions {
        filter: options.filter,
        reject_nflog_group: options.reject_nflog_group,
        stats_interval: Duration::from_secs(options.stats_interval.max(1)),
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
    let mut owned: Vec<(Vec<LiveInterface>, FlowSettings, Box<dyn RecordSink>)> = pipelines
        .into_iter()
        .map(|(interfaces, settings, sink)| {
            let interfaces = interfaces
                .into_iter()
                .map(|i| LiveInterface {
                    device: i.device,
                    identity: i.identity,
                })
                .collect();
            (interfaces, settings, sink)
        })
        .collect();
    let devices: Vec<&str> = owned
        .iter()
        .flat_map(|(i, _, _)| i.iter().map(|i| i.device.as_str()))
        .collect();
    tracing::info!(interfaces = ?devices, "capturing");
    let mut live: Vec<LivePipeline<'_>> = owned
        .iter_mut()
        .map(|(interfaces, settings, sink)| LivePipeline {
            interfaces: interfaces.clone(),
            settings: settings.clone(),
            sink: sink.as_mut(),
        })
        .collect();
    Ok(nettrail_agent::flows::live::run_pipelines(
        &mut live, &options, stop,
    )?)
}

#[cfg(not(feature = "live-capture"))]
fn run_live(_pipelines: Vec<Pipeline>, _options: LiveOptionsSpec) -> Result<Vec<flows::RunReport>> {
    bail!(
        "this nettrail was built without live capture: install libpcap-dev and build with --features live-capture"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_reads() {
        let text = include_str!("../../../flowlogs.example.toml");
        let config: AgentConfig = toml::from_str(text).expect("the example parses");
        assert_eq!(config.flow_logs.len(), 2);
        assert_eq!(config.agent.reject_nflog_group, Some(5));
        for spec in &config.flow_logs {
            let settings = settings_of(spec, "{device}").expect("valid flow log");
            assert!(!settings.identity.interface_id.is_empty());
        }
        let rejects = settings_of(&config.flow_logs[1], "{device}").unwrap();
        assert_eq!(rejects.traffic_type, TrafficType::Reject);
        assert_eq!(rejects.interval, 60);
        let bad =
            "[[flow_logs]]\nresource_id = \"eth0\"\nlog_destination_type = \"s3\"\nbogus = 1\n";
        assert!(
            toml::from_str::<AgentConfig>(bad).is_err(),
            "unknown keys are errors"
        );
    }
}
