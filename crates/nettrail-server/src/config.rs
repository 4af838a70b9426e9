//! Server configuration. Every option, with its default, is documented once in
//! `nettrail.example.toml` at the repository root; a test keeps that file and
//! [`ServerConfig::default`] in agreement.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The whole server configuration (`nettrail serve --config FILE`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the store keeps its data.
    pub data_dir: PathBuf,
    /// Region used in ARNs.
    pub region: String,
    /// Account id used in ARNs.
    pub account_id: String,
    /// Access keys whose SigV4 signatures are accepted. With none, the server accepts
    /// any credentials, and only on a loopback address.
    pub access_keys: Vec<AccessKey>,
    /// Protection against abuse and overload.
    pub limits: Limits,
    /// Store tuning.
    pub store: StoreSettings,
    /// SQL queries.
    pub queries: QuerySettings,
    /// Logs Insights queries.
    pub insights: InsightsSettings,
    /// The Firehose HTTP endpoint receiver.
    pub firehose: FirehoseSettings,
    /// Subscription filter delivery.
    pub subscriptions: SubscriptionSettings,
    /// Notification topics by name: readable messages to people.
    pub topics: BTreeMap<String, TopicSettings>,
    /// The mail server notification topics send through.
    pub smtp: SmtpSettings,
    /// Metric filters and their aggregates.
    pub metrics: MetricSettings,
    /// Alarms on metric filter metrics, by name.
    pub alarms: BTreeMap<String, AlarmSettings>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9750)),
            data_dir: PathBuf::from("./nettrail-data"),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            access_keys: Vec::new(),
            limits: Limits::default(),
            store: StoreSettings::default(),
            queries: QuerySettings::default(),
            insights: InsightsSettings::default(),
            firehose: FirehoseSettings::default(),
            subscriptions: SubscriptionSettings::default(),
            topics: BTreeMap::new(),
            smtp: SmtpSettings::default(),
            metrics: MetricSettings::default(),
            alarms: BTreeMap::new(),
        }
    }
}

/// One accepted access key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    /// The access key id clients sign with.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
}

/// Limits that keep a flood of requests from exhausting the server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Request bodies held in memory at once, in bytes, across all requests.
    pub max_buffered_bytes: usize,
    /// Requests processed at once.
    pub max_in_flight: usize,
    /// Open connections at once; further connections wait to be accepted.
    pub max_connections: usize,
    /// How long a request waits for a processing slot before ThrottlingException.
    pub throttle_wait_ms: u64,
    /// Time allowed to receive a request's headers.
    pub header_read_timeout_secs: u64,
    /// Time allowed to receive a request's body.
    pub body_read_timeout_secs: u64,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout_secs: u64,
    /// Clock difference allowed in signed requests.
    pub signature_max_skew_secs: i64,
    /// Log groups allowed in the store.
    pub max_log_groups: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_buffered_bytes: 512 << 20,
            max_in_flight: 256,
            max_connections: 4096,
            throttle_wait_ms: 1000,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 60,
            idle_timeout_secs: 120,
            signature_max_skew_secs: 300,
            max_log_groups: 1_000_000,
        }
    }
}

impl Limits {
    pub(crate) fn throttle_wait(&self) -> Duration {
        Duration::from_millis(self.throttle_wait_ms)
    }
}

/// The receiver of Amazon Data Firehose HTTP endpoint deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirehoseSettings {
    /// The path Firehose POSTs to.
    pub path: String,
    /// Access keys accepted in `X-Amz-Firehose-Access-Key`; with none, every delivery
    /// is refused.
    pub access_keys: Vec<String>,
    /// Log group of records that are not CloudWatch Logs subscription documents.
    pub log_group: String,
    /// Their log stream.
    pub log_stream: String,
    /// Largest delivery body (Firehose buffers up to 64 MiB), and largest once
    /// decompressed when sent with `Content-Encoding: gzip`.
    pub max_body_bytes: usize,
    /// How long a request id is remembered, so that a retried delivery is not stored
    /// twice (Firehose retries for at most two hours).
    pub dedup_hours: u64,
}

impl Default for FirehoseSettings {
    fn default() -> Self {
        FirehoseSettings {
            path: "/firehose".into(),
            access_keys: Vec::new(),
            log_group: "/firehose/records".into(),
            log_stream: "firehose".into(),
            max_body_bytes: 64 << 20,
            dedup_hours: 24,
        }
    }
}

/// A notification topic: where its readable messages go. A subscription filter reaches
/// it with `destinationArn` = `arn:aws:sns:REGION:ACCOUNT:NAME` or `topic:NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicSettings {
    /// Mail recipients.
    pub email: Vec<String>,
    /// URLs that get each notification as generic JSON.
    pub webhook: Vec<String>,
    /// Slack-compatible incoming webhook URLs (`{"text": …}`).
    pub slack: Vec<String>,
}

/// The SMTP server of email notifications.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// Host name or address (also the name its TLS certificate must carry).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `none` (plain SMTP), `starttls` (upgrade required; port 587) or `tls` (TLS from
    /// the first byte; port 465).
    pub tls: String,
    /// Extra root certificates (PEM) trusted for the server's certificate, besides the
    /// system's; unset by default.
    pub ca_file: Option<PathBuf>,
    /// The From address.
    pub from: String,
    /// Login, if the server wants one (with `password`).
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<String>,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: 25,
            tls: "none".into(),
            ca_file: None,
            from: "nettrail <nettrail@localhost>".into(),
            username: None,
            password: None,
        }
    }
}

/// Subscription filters and their delivery.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionSettings {
    /// Subscription filters per log group (AWS's quota is 2).
    pub max_filters_per_group: usize,
    /// How long a subscription waits after new events before reading them, so that a
    /// burst goes out as one batch.
    pub linger_ms: u64,
    /// Events per delivered batch at most.
    pub max_batch_events: usize,
    /// Message bytes per delivered batch at most (plus 26 per event).
    pub max_batch_bytes: usize,
    /// How long one delivery attempt may take.
    pub delivery_timeout_secs: u64,
    /// The longest wait between retries of a failing delivery.
    pub max_retry_backoff_secs: u64,
    /// Extra root certificates (PEM) trusted for `https://` destinations, besides the
    /// system's; unset by default.
    pub ca_file: Option<PathBuf>,
    /// AWS destination ARNs (`arn:aws:lambda:…`, `arn:aws:kinesis:…`,
    /// `arn:aws:firehose:…`) bound to a destination nettrail delivers to (`http://…`,
    /// `file:///…`), so templates and scripts written for AWS work unchanged.
    pub destinations: BTreeMap<String, String>,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        SubscriptionSettings {
            max_filters_per_group: 2,
            linger_ms: 20,
            max_batch_events: 10_000,
            max_batch_bytes: 1_048_576,
            delivery_timeout_secs: 10,
            max_retry_backoff_secs: 30,
            ca_file: None,
            destinations: BTreeMap::new(),
        }
    }
}

/// Metric filters and their aggregates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricSettings {
    /// Metric filters per log group (AWS's quota is 100).
    pub max_filters_per_group: usize,
    /// Days the one-minute aggregates are kept (CloudWatch keeps them 15 days).
    pub retention_days: u32,
    /// Metric series held at most; points of further series are dropped.
    pub max_series: usize,
    /// How often alarms are evaluated (CloudWatch: every minute).
    pub alarm_evaluation_interval_secs: u64,
}

impl Default for MetricSettings {
    fn default() -> Self {
        MetricSettings {
            max_filters_per_group: 100,
            retention_days: 15,
            max_series: 100_000,
            alarm_evaluation_interval_secs: 60,
        }
    }
}

/// An alarm on a metric that metric filters publish, declared as a CloudWatch
/// `AWS::CloudWatch::Alarm` is (the same properties, in snake case).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmSettings {
    /// The metric's namespace.
    pub namespace: String,
    /// The metric's name.
    pub metric_name: String,
    /// The metric's dimensions (exactly those of the series watched).
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// `SampleCount`, `Average`, `Sum`, `Minimum` or `Maximum`.
    pub statistic: String,
    /// Seconds per datapoint, a multiple of 60.
    #[serde(default = "default_period")]
    pub period: u64,
    /// Datapoints evaluated.
    #[serde(default = "default_evaluation_periods")]
    pub evaluation_periods: u32,
    /// Breaching datapoints (of `evaluation_periods`) that put the alarm in ALARM;
    /// all of them when unset.
    #[serde(default)]
    pub datapoints_to_alarm: Option<u32>,
    /// `GreaterThanThreshold`, `GreaterThanOrEqualToThreshold`, `LessThanThreshold`
    /// or `LessThanOrEqualToThreshold`.
    pub comparison_operator: String,
    /// The value compared with.
    pub threshold: f64,
    /// What a period without datapoint counts as: `missing` (the default), `ignore`,
    /// `breaching` or `notBreaching`.
    #[serde(default = "default_treat_missing_data")]
    pub treat_missing_data: String,
    /// Said in notifications.
    #[serde(default)]
    pub alarm_description: Option<String>,
    /// Notification topics told when the alarm enters ALARM (`NAME`, `topic:NAME` or
    /// `arn:aws:sns:REGION:ACCOUNT:NAME`).
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    /// Topics told when it enters OK.
    #[serde(default)]
    pub ok_actions: Vec<String>,
    /// Topics told when it enters INSUFFICIENT_DATA.
    #[serde(default)]
    pub insufficient_data_actions: Vec<String>,
}

fn default_period() -> u64 {
    60
}

fn default_evaluation_periods() -> u32 {
    1
}

fn default_treat_missing_data() -> String {
    "missing".into()
}

/// Store tuning.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// zstd compression level of event blocks (0 = uncompressed).
    pub zstd_level: i32,
    /// Seal a segment file at this size.
    pub segment_max_bytes: u64,
    /// Seal a segment file after this long (seconds, fractions allowed).
    pub segment_max_age_secs: f64,
    /// How often expired events are looked for and their space reclaimed, and sealed
    /// segments compacted (seconds, fractions allowed).
    pub retention_sweep_interval_secs: f64,
    /// Whether sealed segments are compacted into columnar parts (Parquet, one per log
    /// group and hour of event time).
    pub compaction: bool,
    /// zstd level of the parts' columns.
    pub part_zstd_level: i32,
    /// Rows per row group of a part at most.
    pub part_row_group_rows: usize,
    /// Segment bytes one compaction of a log group takes at most.
    pub compaction_max_bytes: u64,
    /// Where the parts are kept: empty for `DATA_DIR/lake/`, or `s3://BUCKET/PREFIX` for
    /// an S3 bucket (or an S3-compatible store at `lake_endpoint_url`), with the
    /// credentials and region of the AWS environment or `lake_profile`.
    pub lake: String,
    /// The S3-compatible endpoint of `lake` (MinIO, Ceph, …); empty for AWS's.
    pub lake_endpoint_url: String,
    /// The AWS profile whose credentials and region `lake` uses; empty for the
    /// environment's (`AWS_PROFILE`, `AWS_ACCESS_KEY_ID`, …).
    pub lake_profile: String,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            zstd_level: 1,
            segment_max_bytes: 64 << 20,
            segment_max_age_secs: 3600.0,
            retention_sweep_interval_secs: 60.0,
            compaction: true,
            part_zstd_level: 3,
            part_row_group_rows: 1 << 20,
            compaction_max_bytes: 64 << 20,
            lake: String::new(),
            lake_endpoint_url: String::new(),
            lake_profile: String::new(),
        }
    }
}

impl StoreSettings {
    /// Where `lake` says the parts go, with its bucket's client built.
    pub fn lake_config(&self) -> Result<nettrail_store::LakeConfig, String> {
        let lake = self.lake.trim();
        if lake.is_empty() {
            return Ok(nettrail_store::LakeConfig::DataDir);
        }
        let Some(bucket_and_prefix) = lake.strip_prefix("s3://") else {
            return Err(format!(
                "[store] lake = {lake:?}: give s3://BUCKET/PREFIX, or leave it empty to keep the parts in the data directory"
            ));
        };
        let non_empty = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
        let bucket = nettrail_client::s3::s3_bucket(
            bucket_and_prefix,
            non_empty(&self.lake_endpoint_url).as_deref(),
            non_empty(&self.lake_profile).as_deref(),
        )
        .map_err(|e| format!("[store] lake = {lake:?}: {e}"))?;
        Ok(nettrail_store::LakeConfig::ObjectStore(
            nettrail_store::ObjectLakeConfig {
                store: bucket.store,
                url: format!("s3://{}", bucket.name),
                prefix: bucket.prefix.trim_matches('/').to_owned(),
            },
        ))
    }

    /// The URL of the folder holding `group`'s parts, as engines outside nettrail name
    /// it (`file:///…/lake/<group>/` or `s3://BUCKET/PREFIX/lake/<group>/`).
    pub fn lake_location(&self, data_dir: &std::path::Path, group: &str) -> String {
        let folder = nettrail_store::lake_folder(group);
        let lake = self.lake.trim().trim_end_matches('/');
        if lake.is_empty() {
            let data_dir = std::fs::canonicalize(data_dir).unwrap_or(data_dir.to_owned());
            return format!("file://{}/", data_dir.join(folder).display());
        }
        format!("{lake}/{folder}/")
    }
}

/// SQL queries (the Athena-compatible API).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuerySettings {
    /// Queries running at once.
    pub max_concurrent: usize,
    /// Memory one query may hold, in bytes.
    pub memory_limit_bytes: usize,
    /// Rows a query may return at most.
    pub max_result_rows: usize,
    /// Finished executions remembered with their results.
    pub retained_executions: usize,
}

impl Default for QuerySettings {
    fn default() -> Self {
        QuerySettings {
            max_concurrent: 20,
            memory_limit_bytes: 2 << 30,
            max_result_rows: 1_000_000,
            retained_executions: 1000,
        }
    }
}

/// Logs Insights queries (StartQuery and the rest); AWS's quotas by default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InsightsSettings {
    /// Queries running at once (AWS: 100 per account).
    pub max_concurrent: usize,
    /// How long a query may run before its status becomes `Timeout` (AWS: 60 minutes).
    pub timeout_secs: f64,
    /// Log groups one query may read (AWS: 50).
    pub max_log_groups: usize,
    /// Finished queries remembered with their results (AWS keeps them 7 days).
    pub retained_queries: usize,
    /// Whether a flow-log query's `filter … | stats` is answered by the SQL engine
    /// from the columns (else every event is read and interpreted; the answers are
    /// the same).
    pub sql: bool,
}

impl Default for InsightsSettings {
    fn default() -> Self {
        InsightsSettings {
            max_concurrent: 100,
            timeout_secs: 3600.0,
            max_log_groups: 50,
            retained_queries: 1000,
            sql: true,
        }
    }
}

/// A duration of `secs` seconds, at least `min` (a non-number counts as `min`).
fn seconds(secs: f64, min: f64) -> Duration {
    let secs = if secs.is_finite() { secs.max(min) } else { min };
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

impl ServerConfig {
    /// The store configuration this server configuration implies (an error says which
    /// option cannot be used).
    pub fn store_config(&self) -> Result<nettrail_store::FileStoreConfig, String> {
        let mut config = nettrail_store::FileStoreConfig::new(&self.data_dir);
        config.zstd_level = self.store.zstd_level;
        config.segment_max_bytes = self.store.segment_max_bytes;
        config.segment_max_age = seconds(self.store.segment_max_age_secs, 0.001);
        config.sweep_interval = seconds(self.store.retention_sweep_interval_secs, 0.01);
        config.compaction = self.store.compaction;
        config.part_zstd_level = self.store.part_zstd_level;
        config.part_row_group_rows = self.store.part_row_group_rows.max(1);
        config.compaction_max_bytes = self.store.compaction_max_bytes.max(1);
        config.lake_account_id = self.account_id.clone();
        config.lake_region = self.region.clone();
        config.metric_retention =
            Duration::from_secs(u64::from(self.metrics.retention_days.max(1)) * 86_400);
        config.max_metric_series = self.metrics.max_series;
        config.lake = self.store.lake_config()?;
        Ok(config)
    }
}
