//! What several subcommands share: the clock, the traffic type flag, an S3 bucket from
//! `BUCKET[/PREFIX]`, and the shutdown signal.

use anyhow::Result;
use nettrail_formats::flow::cloudwatch::TrafficType;

/// `--traffic-type`: ACCEPT, REJECT or ALL.
pub(crate) fn parse_traffic_type(value: &str) -> Result<TrafficType, String> {
    TrafficType::parse(value).ok_or_else(|| format!("{value:?} is not ACCEPT, REJECT or ALL"))
}

/// The wall clock in Unix ms.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The bucket of `BUCKET[/PREFIX]` (S3, or an S3-compatible store at `endpoint_url`)
/// with the credentials and region of the AWS environment or `profile`, and the prefix.
pub(crate) fn s3_bucket(
    bucket_and_prefix: &str,
    endpoint_url: Option<&str>,
    profile: Option<&str>,
) -> Result<(std::sync::Arc<dyn object_store::ObjectStore>, String)> {
    let bucket = nettrail_client::s3::s3_bucket(bucket_and_prefix, endpoint_url, profile)?;
    Ok((bucket.store, bucket.prefix))
}

/// Resolves on SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "shutting down"),
    }
}
