//! `nettrail agent strongswan` and `nettrail agent openvpn`: the VPN producers, with
//! one output path for both (stdout, or a log group through the shared shipper).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nettrail_agent::ship::{LogShipper, ShipperThread};
use nettrail_agent::strongswan::TunnelMapping;

/// Where a VPN agent's events go, and how they get to a server.
#[derive(clap::Args, Debug)]
pub struct VpnOutputArgs {
    /// `-` (stdout: the stream name, a tab, the event) or `logs:GROUP` (a nettrail
    /// log group, one stream per tunnel or endpoint).
    #[arg(long, default_value = "-")]
    pub destination: String,
    /// `logs:` destinations: where batches the server has not taken wait.
    #[arg(long, default_value = "./nettrail-agent-spool")]
    pub spool_dir: PathBuf,
    /// `logs:` destinations: the spool's size limit in bytes.
    #[arg(long, default_value_t = 1 << 30)]
    pub spool_max_bytes: u64,
    /// `logs:` destinations: how long to keep trying to deliver at the end, seconds.
    #[arg(long, default_value_t = 30)]
    pub drain_timeout: u64,
    /// The nettrail server (`logs:` destinations).
    #[arg(long, default_value = nettrail_client::DEFAULT_ENDPOINT_URL)]
    pub endpoint_url: String,
    /// AWS profile for credentials.
    #[arg(long)]
    pub profile: Option<String>,
}

/// An agent's output: lines on stdout, or events shipped to a log group.
pub enum EventOutput {
    /// `-`.
    Stdout,
    /// `logs:GROUP`.
    Logs(ShipperThread),
}

/// How long events gather before a batch goes to the server: short, so that a
/// tunnel going down is in the log group within a second.
const LINGER: Duration = Duration::from_millis(200);

impl EventOutput {
    /// The output `args` name; `spool_name` keeps agents' spools apart.
    pub fn open(args: &VpnOutputArgs, spool_name: &str) -> Result<EventOutput> {
        if args.destination == "-" {
            return Ok(EventOutput::Stdout);
        }
        let Some(group) = args.destination.strip_prefix("logs:") else {
            bail!("--destination {:?}: use - or logs:GROUP", args.destination);
        };
        if group.is_empty() {
            bail!("--destination logs: needs a log group name");
        }
        // Few attempts per call: what the server does not take goes to the spool.
        let client =
            nettrail_client::Client::from_environment(&args.endpoint_url, args.profile.as_deref())
                .map_err(|e| anyhow::anyhow!(e))?
                .with_attempts(2);
        let shipper = LogShipper::new(
            client,
            group,
            &args.spool_dir.join(spool_name),
            args.spool_max_bytes,
            Duration::from_secs(args.drain_timeout),
        )?;
        Ok(EventOutput::Logs(ShipperThread::start(shipper, LINGER)))
    }

    /// Writes one event of `stream`.
    pub fn emit(&self, stream: &str, timestamp_ms: i64, message: String) {
        match self {
            EventOutput::Stdout => {
                let mut out = std::io::stdout().lock();
                // A closed stdout (a pipe whose reader left) ends nothing else.
                let _ = writeln!(out, "{stream}\t{message}");
                let _ = out.flush();
            }
            EventOutput::Logs(shipper) => shipper.send(stream, timestamp_ms, message),
        }
    }

    /// Delivers what is left.
    pub fn finish(self) -> Result<()> {
        match self {
            EventOutput::Stdout => Ok(()),
            EventOutput::Logs(shipper) => Ok(shipper.finish()?),
        }
    }
}

/// `nettrail agent strongswan`.
#[derive(clap::Args, Debug)]
pub struct StrongswanArgs {
    /// charon's vici socket: `unix:///PATH` or `tcp://HOST:PORT`.
    #[arg(long, default_value = "unix:///var/run/charon.vici")]
    pub vici: String,
    /// A tunnel: `CONNECTION=VPN_CONNECTION_ID` or `CONNECTION=VPN_CONNECTION_ID@OUTSIDE_IP`
    /// (the outside IP when the connection's local address is `%any`). Connections
    /// not named get a stable synthetic id.
    #[arg(long = "tunnel", value_parser = parse_tunnel_mapping)]
    pub tunnels: Vec<TunnelMapping>,
    /// `json` (AWS's default) or `text`.
    #[arg(long, default_value = "json")]
    pub log_output_format: String,
    /// A TOML file of tunnels (`[[tunnels]]` with `connection`, `vpn_connection_id`
    /// and optionally `outside_ip`), added to those of `--tunnel`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub output: VpnOutputArgs,
}

/// The tunnels file of `nettrail agent strongswan --config`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StrongswanConfig {
    #[serde(default)]
    tunnels: Vec<TunnelSpec>,
}

/// One tunnel of the tunnels file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TunnelSpec {
    connection: String,
    vpn_connection_id: String,
    outside_ip: Option<String>,
}

/// The tunnels of a tunnels file, checked like `--tunnel`.
fn tunnels_of_config(text: &str) -> Result<Vec<TunnelMapping>> {
    let config: StrongswanConfig = toml::from_str(text)?;
    config
        .tunnels
        .iter()
        .map(|t| {
            let mut spec = format!("{}={}", t.connection, t.vpn_connection_id);
            if let Some(ip) = &t.outside_ip {
                spec.push('@');
                spec.push_str(ip);
            }
            parse_tunnel_mapping(&spec).map_err(|e| anyhow::anyhow!("tunnel {}: {e}", t.connection))
        })
        .collect()
}

/// Reads `CONNECTION=VPN_ID[@OUTSIDE_IP]`.
pub fn parse_tunnel_mapping(text: &str) -> Result<TunnelMapping, String> {
    let (connection, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: use CONNECTION=VPN_CONNECTION_ID[@OUTSIDE_IP]"))?;
    let (id, outside_ip) = match rest.split_once('@') {
        Some((id, ip)) => {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("{text:?}: {ip:?} is not an IP address"))?;
            (id, Some(ip.to_owned()))
        }
        None => (rest, None),
    };
    let valid_id = id
        .strip_prefix("vpn-")
        .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()));
    if connection.is_empty() || !valid_id {
        return Err(format!(
            "{text:?}: the VPN connection id is vpn- and hex digits (vpn-0123456789abcdef0)"
        ));
    }
    Ok(TunnelMapping {
        connection: connection.to_owned(),
        vpn_connection_id: id.to_owned(),
        outside_ip,
    })
}

/// Runs an agent's future to its end on a runtime of the calling thread.
fn block_on<F: std::future::Future>(agent: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(agent))
}

/// Runs `nettrail agent strongswan` until SIGTERM or SIGINT.
pub fn strongswan(args: StrongswanArgs) -> Result<()> {
    let text = match args.log_output_format.as_str() {
        "json" => false,
        "text" => true,
        other => bail!("--log-output-format {other:?}: use json or text"),
    };
    let mut tunnels = args.tunnels.clone();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        tunnels.extend(
            tunnels_of_config(&text)
                .with_context(|| format!("invalid config file {}", path.display()))?,
        );
    }
    let output = EventOutput::open(&args.output, "strongswan")?;
    let result = block_on(nettrail_agent::strongswan::run(
        &args.vici,
        &tunnels,
        |event| {
            let message = if text {
                event.log.to_text()
            } else {
                event.log.to_json()
            };
            output.emit(&event.stream, event.log.event_timestamp, message);
        },
        crate::common::shutdown_signal(),
    ))?;
    let finished = output.finish();
    result?;
    finished
}

/// `nettrail agent openvpn`.
#[derive(clap::Args, Debug)]
pub struct OpenvpnArgs {
    /// OpenVPN's management interface: `unix:///PATH` or `tcp://HOST:PORT`. OpenVPN
    /// must run with `--management-client-auth` (and, with 2.6,
    /// `--auth-user-pass-optional`): the agent answers every client's CONNECT.
    #[arg(long)]
    pub management: String,
    /// A file holding the management password (OpenVPN's `management ... pw-file`).
    #[arg(long)]
    pub management_password_file: Option<PathBuf>,
    /// The Client VPN endpoint id of the entries (`cvpn-endpoint-…`).
    #[arg(long)]
    pub endpoint_id: String,
    /// The log stream [default: as AWS names it, ENDPOINT-REGION-YYYY/MM/DD-RANDOM].
    #[arg(long)]
    pub log_stream: Option<String>,
    /// The region in the default stream name [default: AWS_REGION, else us-east-1].
    #[arg(long)]
    pub region: Option<String>,
    /// Only these common names may connect (repeat; default: everyone not denied).
    #[arg(long = "allow-common-name")]
    pub allow_common_names: Vec<String>,
    /// These common names may not connect (repeat).
    #[arg(long = "deny-common-name")]
    pub deny_common_names: Vec<String>,
    /// Seconds between updates of a connected client's entry.
    #[arg(long, default_value_t = 60)]
    pub update_interval: u64,
    /// Seconds between OpenVPN's byte counts.
    #[arg(long, default_value_t = 5)]
    pub bytecount_interval: u64,
    #[command(flatten)]
    pub output: VpnOutputArgs,
}

/// Twelve letters and digits for a default stream name (AWS's are random too).
fn random12() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 32;
    (0..12)
        .map(|_| {
            // xorshift64: enough to tell two agents' streams apart.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// Runs `nettrail agent openvpn` until SIGTERM or SIGINT.
pub fn openvpn(args: OpenvpnArgs) -> Result<()> {
    let valid_endpoint = args
        .endpoint_id
        .strip_prefix("cvpn-endpoint-")
        .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid_endpoint {
        bail!(
            "--endpoint-id {:?}: a Client VPN endpoint id is cvpn-endpoint- and hex digits",
            args.endpoint_id
        );
    }
    let password = match &args.management_password_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        ),
        None => None,
    };
    let stream = match &args.log_stream {
        Some(stream) => stream.clone(),
        None => {
            let region = args
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                .unwrap_or_else(|| "us-east-1".into());
            let today =
                nettrail_formats::time::UtcDateTime::from_unix(crate::common::now_ms() / 1000);
            nettrail_formats::vpn::client_vpn::default_stream_name(
                &args.endpoint_id,
                &region,
                today,
                &random12(),
            )
        }
    };
    let options = nettrail_agent::openvpn::ManagementOptions {
        address: args.management.clone(),
        password,
        endpoint_id: args.endpoint_id.clone(),
        policy: nettrail_agent::openvpn::ConnectPolicy {
            allow_common_names: args.allow_common_names.clone(),
            deny_common_names: args.deny_common_names.clone(),
        },
        update_interval: args.update_interval.max(1),
        bytecount_interval: args.bytecount_interval.max(1),
    };
    let output = EventOutput::open(&args.output, "openvpn")?;
    let result = block_on(nettrail_agent::openvpn::run(
        &options,
        |time, entry| output.emit(&stream, time * 1000, entry.to_json()),
        crate::common::shutdown_signal(),
    ))?;
    let finished = output.finish();
    result?;
    finished
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_mappings_read_and_mistakes_are_named() {
        assert_eq!(
            parse_tunnel_mapping("ok=vpn-0123456789abcdef0@203.0.113.10").unwrap(),
            TunnelMapping {
                connection: "ok".into(),
                vpn_connection_id: "vpn-0123456789abcdef0".into(),
                outside_ip: Some("203.0.113.10".into()),
            }
        );
        assert_eq!(parse_tunnel_mapping("ok=vpn-1a").unwrap().outside_ip, None);
        assert!(parse_tunnel_mapping("ok")
            .unwrap_err()
            .contains("CONNECTION="));
        assert!(parse_tunnel_mapping("ok=tunnel-1")
            .unwrap_err()
            .contains("vpn-"));
        assert!(parse_tunnel_mapping("ok=vpn-1@nowhere")
            .unwrap_err()
            .contains("not an IP"));
    }

    #[test]
    fn a_tunnels_file_reads_and_its_mistakes_are_named() {
        let tunnels = tunnels_of_config(
            "[[tunnels]]\nconnection = \"aws-1\"\nvpn_connection_id = \"vpn-0123456789abcdef0\"\noutside_ip = \"203.0.113.10\"\n\n[[tunnels]]\nconnection = \"aws-2\"\nvpn_connection_id = \"vpn-0123456789abcdef0\"\n",
        )
        .unwrap();
        assert_eq!(tunnels.len(), 2);
        assert_eq!(tunnels[0].outside_ip.as_deref(), Some("203.0.113.10"));
        assert_eq!(tunnels[1].outside_ip, None);
        let err = tunnels_of_config(
            "[[tunnels]]\nconnection = \"x\"\nvpn_connection_id = \"tunnel-1\"\n",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("tunnel x"), "{err:#}");
        assert!(tunnels_of_config("[[tunnels]]\nconection = \"x\"\n").is_err());
    }
}
