//! PutLogEvents load generator.
//!
//! Sends SigV4-signed PutLogEvents batches of realistic VPC flow log lines from N
//! concurrent clients (one log stream each) to a CloudWatch-Logs-compatible endpoint,
//! and prints payload MB/s, events/s, MB/s per server CPU-second, p50/p99/max
//! acknowledgement latency and the server's peak RSS (read from /proc when `--server-pid`
//! is given, so the server must run on this machine).
//!
//! A batch holds `--events-per-batch` events, capped at what fits PutLogEvents' limit of
//! 1,048,576 bytes (message bytes + 26 per event): with ~110-byte lines that is about
//! 7,700 events, not 10,000.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use bytes::Bytes;
use clap::Parser;
use nettrail_client::{Client, Credentials, LOGS_TARGET_PREFIX};

#[derive(Parser, Clone)]
#[command(about = "PutLogEvents load generator")]
struct Args {
    /// Endpoint, e.g. http://127.0.0.1:9750
    #[arg(long, default_value = "http://127.0.0.1:9750")]
    endpoint_url: String,
    /// Concurrent clients, one log stream each.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// How long to send, seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Events per batch (capped by the 1 MiB batch limit).
    #[arg(long, default_value_t = 10_000)]
    events_per_batch: usize,
    /// PID of the server, to read its CPU time and peak RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Log group to write to (created if missing); default a fresh one per run.
    #[arg(long)]
    log_group: Option<String>,
    /// A label for the output.
    #[arg(long, default_value = "server")]
    label: String,
    /// Access key (falls back to AWS_ACCESS_KEY_ID).
    #[arg(
        long,
        env = "AWS_ACCESS_KEY_ID",
        default_value = "AKIAIOSFODNN7EXAMPLE"
    )]
    access_key_id: String,
    /// Secret key (falls back to AWS_SECRET_ACCESS_KEY).
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    )]
    secret_access_key: String,
}

const MAX_BATCH_BYTES: usize = 1_048_576;
const EVENT_OVERHEAD: usize = 26;

/// Creates a log group or stream, tolerating that it exists.
async fn create(client: &Client, operation: &str, body: serde_json::Value) -> Result<()> {
    match client.logs(operation, &body).await {
        Err(e) if e.code() != Some("ResourceAlreadyExistsException") => Err(e.into()),
        _ => Ok(()),
    }
}

/// A realistic default-format (version 2) flow log line, about 110 bytes.
fn flow_line(rng: &mut u64, now_s: i64) -> String {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let eni = next(); // printed as 17 hex digits, like eni-0a1b2c3d4e5f60718
    let (a, b, c) = (next() % 256, next() % 256, next() % 256);
    let sport = 1024 + next() % 64_000;
    let dport = [22u64, 80, 443, 3389, 53, 8080][(next() % 6) as usize];
    let packets = 1 + next() % 200;
    let bytes = packets * (40 + next() % 1400);
    let action = if next() % 10 == 0 { "REJECT" } else { "ACCEPT" };
    format!(
        "2 123456789010 eni-{eni:017x} 172.31.{a}.{b} 10.0.{c}.{} {sport} {dport} 6 {packets} {bytes} {} {} {action} OK",
        next() % 256,
        now_s - 60,
        now_s
    )
}

/// Pre-built request bodies for one stream, with their payload sizes and hashes.
struct Batch {
    body: Bytes,
    hash: String,
    events: usize,
    payload_bytes: usize,
}

fn build_batches(
    group: &str,
    stream: &str,
    per_batch: usize,
    count: usize,
    seed: u64,
) -> Vec<Batch> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut rng = seed | 1;
    (0..count)
        .map(|_| {
            let mut events = Vec::new();
            let mut size = 0;
            while events.len() < per_batch {
                let line = flow_line(&mut rng, now_ms / 1000);
                if size + line.len() + EVENT_OVERHEAD > MAX_BATCH_BYTES {
                    break;
                }
                size += line.len() + EVENT_OVERHEAD;
                events.push(line);
            }
            let payload_bytes = events.iter().map(String::len).sum();
            let log_events: Vec<serde_json::Value> = events
                .iter()
                .enumerate()
                .map(|(i, m)| serde_json::json!({ "timestamp": now_ms - 60_000 + (i as i64 / 1000), "message": m }))
                .collect();
            let body = serde_json::json!({ "logGroupName": group, "logStreamName": stream, "logEvents": log_events });
            let body = Bytes::from(body.to_string());
            Batch {
                hash: nettrail_sigv4::sha256_hex(&body),
                body,
                events: events.len(),
                payload_bytes,
            }
        })
        .collect()
}

/// utime + stime of a process in seconds, and its peak RSS in KiB.
fn process_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks / 100.0, hwm))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let target = Arc::new(Client::new(
        &args.endpoint_url,
        Credentials {
            access_key_id: args.access_key_id.clone(),
            secret_access_key: args.secret_access_key.clone(),
            session_token: None,
        },
        "us-east-1",
    )?);
    let group = args
        .log_group
        .clone()
        .unwrap_or_else(|| format!("/bench/put-{}", std::process::id()));
    create(
        &target,
        "CreateLogGroup",
        serde_json::json!({ "logGroupName": group }),
    )
    .await?;
    let mut prepared = Vec::new();
    for c in 0..args.clients {
        let stream = format!("eni-bench{c:04}-all");
        create(
            &target,
            "CreateLogStream",
            serde_json::json!({ "logGroupName": group, "logStreamName": stream }),
        )
        .await?;
        prepared.push(build_batches(
            &group,
            &stream,
            args.events_per_batch,
            8,
            0x9e37_79b9_7f4a_7c15 ^ c as u64,
        ));
    }
    let events_per_batch = prepared[0][0].events;

    let before = args.server_pid.and_then(process_usage);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::new();
    for batches in prepared {
        let target = Arc::clone(&target);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut events, mut bytes, mut errors) = (0usize, 0usize, 0usize);
            let mut i = 0;
            while Instant::now() < deadline {
                let batch = &batches[i % batches.len()];
                i += 1;
                let sent = Instant::now();
                match target
                    .call_raw(
                        &format!("{LOGS_TARGET_PREFIX}PutLogEvents"),
                        batch.body.clone(),
                        &batch.hash,
                    )
                    .await
                {
                    Ok((200, _)) => {
                        latencies.push(sent.elapsed());
                        events += batch.events;
                        bytes += batch.payload_bytes;
                    }
                    Ok((status, body)) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!(
                                "PutLogEvents answered {status}: {}",
                                String::from_utf8_lossy(&body)
                            );
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("PutLogEvents failed: {e}");
                        }
                    }
                }
            }
            (latencies, events, bytes, errors)
        }));
    }
    let mut latencies = Vec::new();
    let (mut events, mut bytes, mut errors) = (0usize, 0usize, 0usize);
    for task in tasks {
        let (l, e, b, err) = task.await?;
        latencies.extend(l);
        events += e;
        bytes += b;
        errors += err;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = args.server_pid.and_then(process_usage);
    latencies.sort();
    let mb = bytes as f64 / 1e6;
    let cpu = match (before, after) {
        (Some((b, _)), Some((a, _))) => Some(a - b),
        _ => None,
    };
    let result = serde_json::json!({
        "label": args.label,
        "clients": args.clients,
        "events_per_batch": events_per_batch,
        "batches": latencies.len(),
        "errors": errors,
        "elapsed_s": elapsed,
        "payload_mb": mb,
        "payload_mb_per_s": mb / elapsed,
        "events_per_s": events as f64 / elapsed,
        "server_cpu_s": cpu,
        "payload_mb_per_server_cpu_s": cpu.map(|c| if c > 0.0 { mb / c } else { 0.0 }),
        "p50_ms": percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        "p99_ms": percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        "max_ms": latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        "server_peak_rss_mib": after.map(|(_, kib)| kib as f64 / 1024.0),
    });
    println!("{result}");
    Ok(())
}
