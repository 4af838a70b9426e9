//! The `nettrail` command: one binary for every role.
//!
//! - `nettrail serve`: the CloudWatch-Logs-compatible server with its embedded store.
//!
//! Later subcommands (agents, import, logs, vpn) join here as their issues land.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use nettrail_server::{AccessKey, Server, ServerConfig};

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

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "shutting down"),
    }
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
