//! The `nettrail` command: one binary for every role.
//!
//! - `nettrail serve`: the CloudWatch-Logs-compatible server with its embedded store.
//! - `nettrail import s3`: VPC flow log files as AWS wrote them to S3, into a log group.
//! - `nettrail flows convert`: a flow log file between AWS's text and Parquet formats.
//! - `nettrail logs tail`: a log group's events as they arrive, like `aws logs tail`.
//! - `nettrail logs query "…"`: a Logs Insights query over log groups.
//! - `nettrail subscriptions status`: every subscription's deliveries, errors and lag.
//! - `nettrail metrics get|list`: what metric filters have published.
//! - `nettrail alarms describe`: where every alarm stands.
//! - `nettrail agent flows`: VPC flow log records from capture files and interfaces.
//! - `nettrail agent strongswan`: tunnel activity logs from charon's vici events.
//! - `nettrail agent openvpn`: Client VPN connection logs from OpenVPN.
//! - `nettrail vpn diagnose`: per tunnel, where it stands and what to fix.
//! - `nettrail sql "…"`: SQL over the log groups through the server's Athena API;
//!   `nettrail sql ddl`: the CREATE EXTERNAL TABLE for a group's Parquet parts.
//!
//! Later subcommands (the console) join here as their issues land.

mod agent;
mod common;
mod flows;
mod import;
mod metrics;
mod query;
mod sql;
mod tail;
mod vpn;
mod vpn_agents;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use nettrail_formats::flow::cloudwatch::TrafficType;
use nettrail_server::{AccessKey, Server, ServerConfig};

use common::{now_ms, parse_traffic_type, s3_bucket, shutdown_signal};

#[derive(Parser)]
#[command(
    name = "nettrail",
    version,
    about = "AWS network activity logs for any network"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the CloudWatch-Logs-compatible server.
    Serve(ServeArgs),
    /// Import what AWS already wrote.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Work with VPC flow log files.
    #[command(subcommand)]
    Flows(FlowsCommand),
    /// Read log groups.
    #[command(subcommand)]
    Logs(LogsCommand),
    /// Subscription filters.
    #[command(subcommand)]
    Subscriptions(SubscriptionsCommand),
    /// What metric filters publish (one-minute aggregates kept 15 days).
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// Alarms on metric filter metrics (declared in the server's configuration).
    #[command(subcommand)]
    Alarms(AlarmsCommand),
    /// Producers of AWS's network logs.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Explain VPN logs.
    #[command(subcommand)]
    Vpn(VpnCommand),
    /// SQL over the log groups (each group a table, flow logs with Athena's columns).
    Sql(SqlArgs),
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct SqlArgs {
    /// The query: one SELECT. A log group is a table named as the group, quoted
    /// ("/vpc/flows"), or by its alias of letters, digits and underscores (vpc_flows).
    query: Option<String>,
    /// Print CSV.
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    #[command(subcommand)]
    command: Option<SqlCommand>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand)]
enum SqlCommand {
    /// The CREATE EXTERNAL TABLE statement for Athena, Trino or Spark over a log
    /// group's Parquet parts.
    Ddl(SqlDdlArgs),
}

#[derive(clap::Args)]
struct SqlDdlArgs {
    /// The log group.
    #[arg(long)]
    log_group: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand)]
enum VpnCommand {
    /// Per tunnel of a tunnel activity log group: the phase states and since when,
    /// flaps, DPD timeouts, the last errors explained, and what to fix. Exits with 3
    /// when a tunnel is down.
    Diagnose(VpnDiagnoseArgs),
}

#[derive(clap::Args)]
struct VpnDiagnoseArgs {
    /// The log group of the tunnel activity logs.
    #[arg(long)]
    log_group: String,
    /// Only this tunnel: its stream name, VPN connection id or outside IP.
    #[arg(long)]
    tunnel: Option<String>,
    /// From: a relative time (30m, 2h, 1d) or an ISO 8601 time.
    #[arg(long, default_value = "1d")]
    since: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand)]
enum AgentCommand {
    /// VPC flow log records from capture files (pcap, pcapng).
    Flows(Box<agent::FlowsArgs>),
    /// Site-to-Site VPN tunnel activity logs from strongSwan (charon's vici socket).
    Strongswan(Box<vpn_agents::StrongswanArgs>),
    /// Client VPN connection logs from OpenVPN (its management interface).
    Openvpn(Box<vpn_agents::OpenvpnArgs>),
}

#[derive(Subcommand)]
enum MetricsCommand {
    /// Statistics of one metric per period, like `aws cloudwatch get-metric-statistics`.
    Get(MetricsGetArgs),
    /// The metrics that metric filters have published, like `aws cloudwatch
    /// list-metrics`.
    List(MetricsListArgs),
}

#[derive(clap::Args)]
struct MetricsGetArgs {
    /// The metric's namespace.
    #[arg(long)]
    namespace: String,
    /// The metric's name.
    #[arg(long)]
    metric_name: String,
    /// The metric's dimensions: `Name=N,Value=V` or `N=V`, one per value.
    #[arg(long, num_args = 1.., value_parser = metrics::parse_dimension)]
    dimensions: Vec<(String, String)>,
    /// Statistics to show (SampleCount, Average, Sum, Minimum, Maximum).
    #[arg(long, num_args = 1.., default_values_t = ["Sum".to_string(), "SampleCount".to_string()])]
    statistics: Vec<String>,
    /// Seconds per datapoint, a multiple of 60.
    #[arg(long, default_value_t = 60)]
    period: i64,
    /// From: a relative time (30m, 2h, 1d) or an ISO 8601 time.
    #[arg(long, default_value = "1h")]
    start_time: String,
    /// Until: a relative time or an ISO 8601 time [default: now].
    #[arg(long)]
    end_time: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args)]
struct MetricsListArgs {
    /// Only metrics of this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Only metrics of this name.
    #[arg(long)]
    metric_name: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand)]
enum AlarmsCommand {
    /// Every alarm's state, since when and why.
    Describe(AlarmsDescribeArgs),
}

#[derive(clap::Args)]
struct AlarmsDescribeArgs {
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand)]
enum SubscriptionsCommand {
    /// Every subscription's deliveries, errors and lag (events not yet delivered, and
    /// how long the oldest has waited).
    Status(SubscriptionStatusArgs),
}

#[derive(clap::Args)]
struct SubscriptionStatusArgs {
    /// Only the subscriptions of this log group.
    #[arg(long)]
    log_group: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand)]
enum LogsCommand {
    /// Print a log group's events, and with --follow the events that arrive after, in
    /// the formats of `aws logs tail`.
    Tail(TailArgs),
    /// Declare the flow-log format of a log group's events (what `--log-format` wrote
    /// them with), so the columnar tier stores records of a custom format as typed
    /// columns. The agent and the importer declare it themselves; the default VPC and
    /// Transit Gateway formats are recognised without it.
    SetFlowLogFormat(SetFlowLogFormatArgs),
    /// Run a Logs Insights query (StartQuery, then GetQueryResults) and print its rows;
    /// Ctrl-C stops it and prints what it had found.
    Query(QueryArgs),
}

#[derive(clap::Args)]
struct QueryArgs {
    /// The query, in the Logs Insights query language.
    query_string: String,
    /// A log group to query (repeat for several; none when the query starts with SOURCE).
    #[arg(long = "log-group-name", alias = "log-group")]
    log_group_names: Vec<String>,
    /// Where the time range starts: 30s, 10m, 2h, 1d, 1w ago, or an ISO 8601 time.
    #[arg(long, default_value = "1h", conflicts_with = "start_time")]
    since: String,
    /// Where the time range starts (relative or ISO 8601), instead of --since.
    #[arg(long)]
    start_time: Option<String>,
    /// Where the time range ends (relative or ISO 8601); now by default.
    #[arg(long)]
    end_time: Option<String>,
    /// Rows at most (StartQuery's limit: up to 100,000; 10,000 by default).
    #[arg(long)]
    limit: Option<u32>,
    /// Fetch every row, past the 10,000 one GetQueryResults page holds.
    #[arg(long)]
    all: bool,
    /// How to print the rows (--json is the same as --output json).
    #[arg(long, value_enum, default_value = "table")]
    output: sql::OutputFormat,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args)]
struct SetFlowLogFormatArgs {
    /// The log group.
    #[arg(long)]
    log_group_name: String,
    /// `${version} ${account-id} …`, as given to the flow log.
    #[arg(long, required_unless_present = "clear", conflicts_with = "clear")]
    log_format: Option<String>,
    /// Forget the group's format.
    #[arg(long)]
    clear: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args)]
struct TailArgs {
    /// The log group.
    log_group_name: String,
    /// Where to start: a relative time (30s, 10m, 2h, 1d, 1w) or an ISO 8601 time.
    #[arg(long, default_value = "10m")]
    since: String,
    /// Keep printing events as they arrive, until Ctrl-C.
    #[arg(long)]
    follow: bool,
    /// Only events that match this filter pattern.
    #[arg(long)]
    filter_pattern: Option<String>,
    /// Only events of these streams.
    #[arg(long, num_args = 1..)]
    log_stream_names: Option<Vec<String>>,
    /// Only events of streams whose names start with this.
    #[arg(long)]
    log_stream_name_prefix: Option<String>,
    /// How to print events (--json is the same as --format none).
    #[arg(long, value_enum, default_value = "detailed")]
    format: tail::TailFormat,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand)]
enum FlowsCommand {
    /// Convert a flow log file between gzip text (with its header line) and Parquet, as
    /// VPC Flow Logs writes them to S3; the file names decide (`.parquet`, `.gz`, else
    /// plain text).
    Convert {
        /// The file to read.
        input: PathBuf,
        /// The file to write.
        output: PathBuf,
        /// The `${field}` format of a text file without a header line [default: the
        /// default format].
        #[arg(long)]
        log_format: Option<String>,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// VPC flow log files in any of the S3 key layouts (plain or Hive-compatible, per
    /// day or per hour), from a local copy of a bucket, into a log group.
    S3(ImportS3Args),
}

/// Options of every subcommand that talks to a nettrail server.
#[derive(clap::Args)]
struct ServerArgs {
    /// The nettrail server.
    #[arg(long, default_value = nettrail_client::DEFAULT_ENDPOINT_URL)]
    endpoint_url: String,
    /// AWS profile for credentials and region (else the AWS environment, AWS_PROFILE,
    /// the default profile).
    #[arg(long)]
    profile: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ImportS3Args {
    /// `s3://BUCKET[/PREFIX]` (S3 or an S3-compatible store), or a folder holding a copy
    /// of a bucket or part of one (keys under it keep their AWSLogs/… layout).
    source: String,
    /// The S3 endpoint, for S3-compatible stores (MinIO, Ceph, moto…) [default: AWS's,
    /// for the region of the profile or environment].
    #[arg(long)]
    s3_endpoint_url: Option<String>,
    /// The log group to import into (created when missing).
    #[arg(long)]
    log_group: String,
    /// The flow log's traffic type (ACCEPT, REJECT, ALL): names the streams
    /// (`eni-…-all`) and filters the records.
    #[arg(long, default_value = "ALL", value_parser = parse_traffic_type)]
    traffic_type: TrafficType,
    /// List what would be imported, import nothing.
    #[arg(long)]
    dry_run: bool,
    /// Files read in parallel [default: the number of CPUs].
    #[arg(long)]
    workers: Option<usize>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (TOML); see nettrail.example.toml for every option.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:9750].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory [default: ./nettrail-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NETTRAIL_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: logs collected from a file or journal stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Import(ImportCommand::S3(args)) => import_s3(args),
        Command::Logs(LogsCommand::Tail(args)) => logs_tail(args),
        Command::Logs(LogsCommand::SetFlowLogFormat(args)) => set_flow_log_format(args),
        Command::Logs(LogsCommand::Query(args)) => logs_query(args),
        Command::Subscriptions(SubscriptionsCommand::Status(args)) => subscriptions_status(args),
        Command::Metrics(MetricsCommand::Get(args)) => metrics_get(args),
        Command::Metrics(MetricsCommand::List(args)) => metrics_list(args),
        Command::Alarms(AlarmsCommand::Describe(args)) => alarms_describe(args),
        Command::Agent(AgentCommand::Flows(args)) => agent::flows(*args),
        Command::Agent(AgentCommand::Strongswan(args)) => vpn_agents::strongswan(*args),
        Command::Agent(AgentCommand::Openvpn(args)) => vpn_agents::openvpn(*args),
        Command::Vpn(VpnCommand::Diagnose(args)) => vpn_diagnose(args),
        Command::Sql(args) => sql_command(args),
        Command::Flows(FlowsCommand::Convert {
            input,
            output,
            log_format,
        }) => (|| {
            let format = log_format
                .as_deref()
                .map(nettrail_formats::flow::LogFormat::parse)
                .transpose()
                .context("--log-format")?;
            let written = flows::convert(&input, &output, format.as_ref())?;
            eprintln!("{written} records written to {}", output.display());
            Ok(())
        })(),
    };
    if let Err(err) = result {
        eprintln!("nettrail: {err:#}");
        std::process::exit(1);
    }
}

/// Reads a configuration file; unknown keys are errors, so a typo is not silently
/// ignored.
fn load_config(path: &Path) -> Result<ServerConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

fn serve(args: ServeArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => load_config(path)?,
        None => ServerConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    match (
        std::env::var("NETTRAIL_ACCESS_KEY_ID"),
        std::env::var("NETTRAIL_SECRET_ACCESS_KEY"),
    ) {
        (Ok(id), Ok(secret)) if !id.is_empty() => config.access_keys.push(AccessKey {
            access_key_id: id,
            secret_access_key: secret,
        }),
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
            anyhow::bail!(
                "set both NETTRAIL_ACCESS_KEY_ID and NETTRAIL_SECRET_ACCESS_KEY, or neither"
            )
        }
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(config).await?;
        server.run(shutdown_signal()).await;
        Ok(())
    })
}

fn logs_tail(args: TailArgs) -> Result<()> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let since_ms =
        tail::parse_since(&args.since, now_ms).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let options = tail::TailOptions {
        group: args.log_group_name,
        since_ms,
        follow: args.follow,
        filter_pattern: args.filter_pattern,
        log_stream_names: args.log_stream_names,
        log_stream_name_prefix: args.log_stream_name_prefix,
        format: if args.server.json {
            tail::TailFormat::None
        } else {
            args.format
        },
    };
    let (client, runtime) = server_client(&args.server)?;
    let mut out = std::io::stdout().lock();
    runtime.block_on(tail::run(&client, &options, &mut out))
}

fn logs_query(args: QueryArgs) -> Result<()> {
    let (start, end) = query::time_range(
        &args.since,
        args.start_time.as_deref(),
        args.end_time.as_deref(),
    )?;
    let options = query::QueryOptions {
        groups: args.log_group_names,
        query: args.query_string,
        start,
        end,
        limit: args.limit,
        all: args.all,
        format: if args.server.json {
            sql::OutputFormat::Json
        } else {
            args.output
        },
    };
    let (client, runtime) = server_client(&args.server)?;
    runtime.block_on(query::run(&client, &options))
}

/// A client of the server `args` name, with a runtime to drive it on this thread.
fn server_client(args: &ServerArgs) -> Result<(nettrail_client::Client, tokio::runtime::Runtime)> {
    let client =
        nettrail_client::Client::from_environment(&args.endpoint_url, args.profile.as_deref())
            .map_err(|e| anyhow::anyhow!(e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok((client, runtime))
}

fn sql_command(args: SqlArgs) -> Result<()> {
    if let Some(SqlCommand::Ddl(ddl)) = args.command {
        let (client, runtime) = server_client(&ddl.server)?;
        let answer = runtime.block_on(client.nettrail(
            "GetLakeTable",
            &serde_json::json!({ "logGroupName": ddl.log_group }),
        ))?;
        if ddl.server.json {
            println!("{answer}");
        } else {
            print!("{}", answer["createTable"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    let Some(query) = args.query else {
        anyhow::bail!(
            "give a query: nettrail sql \"SELECT …\" (or nettrail sql ddl --log-group G)"
        );
    };
    let format = if args.csv {
        sql::OutputFormat::Csv
    } else if args.server.json {
        sql::OutputFormat::Json
    } else {
        sql::OutputFormat::Table
    };
    let (client, runtime) = server_client(&args.server)?;
    runtime.block_on(sql::run(&client, &query, format))
}

fn subscriptions_status(args: SubscriptionStatusArgs) -> Result<()> {
    let (client, runtime) = server_client(&args.server)?;
    let mut request = serde_json::json!({});
    if let Some(group) = &args.log_group {
        request["logGroupName"] = group.as_str().into();
    }
    let answer = runtime.block_on(client.nettrail("GetSubscriptionStatus", &request))?;
    if args.server.json {
        println!("{answer}");
        return Ok(());
    }
    let rows = answer["subscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if rows.is_empty() {
        println!("no subscription filters");
        return Ok(());
    }
    println!(
        "{:<28} {:<20} {:>10} {:>10} {:>9}  {:<30} LAST ERROR",
        "LOG GROUP", "FILTER", "DELIVERED", "LAG", "LAG (s)", "DESTINATION"
    );
    for row in rows {
        println!(
            "{:<28} {:<20} {:>10} {:>10} {:>9.1}  {:<30} {}",
            row["logGroupName"].as_str().unwrap_or_default(),
            row["filterName"].as_str().unwrap_or_default(),
            row["deliveredEvents"].as_u64().unwrap_or(0),
            row["lagEvents"].as_u64().unwrap_or(0),
            row["lagSeconds"].as_f64().unwrap_or(0.0),
            row["destination"].as_str().unwrap_or_default(),
            row["lastError"].as_str().unwrap_or("-"),
        );
    }
    Ok(())
}

fn metrics_get(args: MetricsGetArgs) -> Result<()> {
    let now = now_ms();
    let start = tail::parse_since(&args.start_time, now)
        .map_err(|e| anyhow::anyhow!("--start-time: {e}"))?;
    let end = match &args.end_time {
        Some(t) => tail::parse_since(t, now).map_err(|e| anyhow::anyhow!("--end-time: {e}"))?,
        None => now,
    };
    let request = metrics::statistics_request(
        &args.namespace,
        &args.metric_name,
        &args.dimensions,
        &args.statistics,
        args.period,
        start,
        end,
    )?;
    let (client, runtime) = server_client(&args.server)?;
    let answer = runtime.block_on(client.nettrail("GetMetricStatistics", &request))?;
    if args.server.json {
        println!("{answer}");
    } else {
        print!("{}", metrics::format_statistics(&answer, &args.statistics));
    }
    Ok(())
}

/// Exit status of `nettrail vpn diagnose` when a tunnel is down (1 is an error).
const EXIT_TUNNEL_DOWN: i32 = 3;

fn vpn_diagnose(args: VpnDiagnoseArgs) -> Result<()> {
    let now = now_ms();
    let since = tail::parse_since(&args.since, now).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let (client, runtime) = server_client(&args.server)?;
    let (by_stream, unreadable) = runtime.block_on(vpn::tunnel_logs(
        &client,
        &args.log_group,
        since,
        args.tunnel.as_deref(),
    ))?;
    if unreadable > 0 {
        tracing::warn!(
            events = unreadable,
            "events that are not tunnel activity logs were skipped"
        );
    }
    if by_stream.is_empty() {
        anyhow::bail!(
            "no tunnel activity log events in {}{} since {}",
            args.log_group,
            args.tunnel
                .as_deref()
                .map(|t| format!(" for tunnel {t}"))
                .unwrap_or_default(),
            args.since
        );
    }
    let reports: Vec<vpn::TunnelReport> = by_stream
        .into_iter()
        .map(|(stream, mut events)| {
            events.sort_by_key(|(t, _)| *t);
            vpn::diagnose(&stream, &events)
        })
        .collect();
    if args.server.json {
        println!("{}", vpn::reports_json(&reports, now));
    } else {
        print!("{}", vpn::format_reports(&reports, now));
    }
    if reports.iter().any(|r| !r.up) {
        std::process::exit(EXIT_TUNNEL_DOWN);
    }
    Ok(())
}

fn metrics_list(args: MetricsListArgs) -> Result<()> {
    let mut request = serde_json::json!({});
    if let Some(namespace) = &args.namespace {
        request["Namespace"] = namespace.as_str().into();
    }
    if let Some(name) = &args.metric_name {
        request["MetricName"] = name.as_str().into();
    }
    let (client, runtime) = server_client(&args.server)?;
    let answer = runtime.block_on(client.nettrail("ListMetrics", &request))?;
    if args.server.json {
        println!("{answer}");
    } else {
        print!("{}", metrics::format_metrics(&answer));
    }
    Ok(())
}

fn set_flow_log_format(args: SetFlowLogFormatArgs) -> Result<()> {
    let (client, runtime) = server_client(&args.server)?;
    let answer = runtime.block_on(client.nettrail(
        "SetFlowLogFormat",
        &serde_json::json!({
            "logGroupName": args.log_group_name,
            "logFormat": args.log_format.unwrap_or_default(),
        }),
    ))?;
    if args.server.json {
        println!("{answer}");
    }
    Ok(())
}

fn alarms_describe(args: AlarmsDescribeArgs) -> Result<()> {
    let (client, runtime) = server_client(&args.server)?;
    let answer = runtime.block_on(client.nettrail("DescribeAlarms", &serde_json::json!({})))?;
    if args.server.json {
        println!("{answer}");
    } else {
        print!("{}", metrics::format_alarms(&answer));
    }
    Ok(())
}

fn import_s3(args: ImportS3Args) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let client = if args.dry_run {
        None
    } else {
        let client = nettrail_client::Client::from_environment(
            &args.server.endpoint_url,
            args.server.profile.as_deref(),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        Some(client)
    };
    let source = match args.source.strip_prefix("s3://") {
        Some(rest) => s3_source(
            rest,
            args.s3_endpoint_url.as_deref(),
            args.server.profile.as_deref(),
        )?,
        None => import::Source::Folder(PathBuf::from(&args.source)),
    };
    let options = import::ImportOptions {
        source,
        log_group: args.log_group,
        traffic_type: args.traffic_type,
        dry_run: args.dry_run,
        workers: args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
    };
    let (summary, problems) = import::run(&options, client, &runtime)?;
    if !args.dry_run {
        import::report(&summary, &problems, args.server.json);
    }
    if summary.files_failed > 0 {
        anyhow::bail!(
            "{} file(s) failed; run the import again once they are fixed",
            summary.files_failed
        );
    }
    Ok(())
}

/// A bucket source from `BUCKET[/PREFIX]`, with credentials and region as the AWS CLI
/// finds them.
fn s3_source(
    bucket_and_prefix: &str,
    endpoint_url: Option<&str>,
    profile: Option<&str>,
) -> Result<import::Source> {
    let (store, prefix) = s3_bucket(bucket_and_prefix, endpoint_url, profile)?;
    Ok(import::Source::S3 { store, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example file documents every option with its default; keep them in step.
    #[test]
    fn the_example_config_is_valid_and_states_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../nettrail.example.toml");
        let config = load_config(&path).unwrap();
        assert_eq!(config, ServerConfig::default());
    }

    #[test]
    fn unknown_config_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listne = \"127.0.0.1:1\"\n").unwrap();
        let err = load_config(&path).unwrap_err();
        assert!(format!("{err:#}").contains("listne"), "{err:#}");
    }
}
