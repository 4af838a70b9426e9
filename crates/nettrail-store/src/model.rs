//! The values the store takes and gives: log groups, streams and events as the API
//! sees them, read requests and pages, import checkpoints, subscription and metric
//! filters, metric aggregates and resource policies. Plain data, no I/O: every backend
//! and every caller shares these shapes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, the unit of every timestamp in CloudWatch Logs.
pub type Millis = i64;

/// What is needed to create a log group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewGroup {
    /// The log group name (already validated by the caller).
    pub name: String,
    /// `STANDARD`, `INFREQUENT_ACCESS` or `DELIVERY`.
    pub class: String,
    /// The KMS key ARN, recorded and reported but not used for encryption.
    pub kms_key_id: Option<String>,
    /// Initial tags.
    pub tags: BTreeMap<String, String>,
    /// Whether deletion protection is on.
    pub deletion_protection: bool,
}

/// A log group as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The log group name.
    pub name: String,
    /// When it was created, Unix ms.
    pub creation_time: Millis,
    /// The retention policy in days, `None` for never expire.
    pub retention_days: Option<u32>,
    /// Bytes of unexpired events on disk (compressed, with block headers).
    pub stored_bytes: u64,
    /// The log group class.
    pub class: String,
    /// The KMS key ARN, if one was given.
    pub kms_key_id: Option<String>,
    /// The group's tags.
    pub tags: BTreeMap<String, String>,
    /// Whether deletion protection is on.
    pub deletion_protection: bool,
    /// The flow-log format its writers declared (see
    /// [`LogStore::set_flow_log_format`](crate::LogStore::set_flow_log_format)).
    pub flow_log_format: Option<String>,
}

/// A log stream as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The log stream name.
    pub name: String,
    /// When it was created, Unix ms.
    pub creation_time: Millis,
    /// Timestamp of the earliest event, if any.
    pub first_event_timestamp: Option<Millis>,
    /// Timestamp of the latest event, if any.
    pub last_event_timestamp: Option<Millis>,
    /// When the latest write was ingested, if any.
    pub last_ingestion_time: Option<Millis>,
    /// Bytes on disk of the stream's blocks.
    pub stored_bytes: u64,
}

/// An event to append. The message may borrow from the request it came in, so that a
/// large batch is not copied message by message before it is compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent<'a> {
    /// Event timestamp, Unix ms.
    pub timestamp: Millis,
    /// The message (non-empty).
    pub message: Cow<'a, str>,
}

/// What an acknowledged append returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendAck {
    /// Sequence number of the first event of the write; the others follow consecutively.
    pub first_seq: u64,
    /// When the write was committed, Unix ms.
    pub ingestion_time: Millis,
}

/// The total order of events within a log group: by timestamp, then by sequence number
/// (which follows ingestion order). Used as the position in paginated reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    /// Event timestamp, Unix ms.
    pub timestamp: Millis,
    /// Store-wide sequence number.
    pub seq: u64,
}

impl EventKey {
    /// The smallest possible key.
    pub const MIN: EventKey = EventKey {
        timestamp: i64::MIN,
        seq: 0,
    };
    /// The largest possible key.
    pub const MAX: EventKey = EventKey {
        timestamp: i64::MAX,
        seq: u64::MAX,
    };
}

/// One event as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedEvent {
    /// The stream it belongs to.
    pub stream: std::sync::Arc<str>,
    /// Its position in the group's order.
    pub key: EventKey,
    /// When it was ingested, Unix ms.
    pub ingestion_time: Millis,
    /// The message.
    pub message: String,
}

/// Events of one group in commit order (for subscriptions), from
/// [`LogStore::read_committed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedPage {
    /// Events, ScannedEvent keys carrying their sequence numbers, in sequence order.
    pub events: Vec<ScannedEvent>,
    /// Every sequence number up to this one has been read (events not on the page
    /// belong to other groups, or have expired): the `after` of the next read.
    pub read_to: u64,
}

/// How large a page of events may be. The store keeps at most `max_events` events, and
/// no more events than are needed to reach `max_bytes` (each counted as its message
/// length plus `overhead_per_event`), so the memory a read takes is bounded by its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit {
    /// Events on a page at most.
    pub max_events: usize,
    /// Bytes after which a page is full.
    pub max_bytes: usize,
    /// Bytes counted per event on top of its message.
    pub overhead_per_event: usize,
}

impl PageLimit {
    /// No limit: every matching event (for tests and small reads).
    pub const UNLIMITED: PageLimit = PageLimit {
        max_events: usize::MAX,
        max_bytes: usize::MAX,
        overhead_per_event: 0,
    };
}

/// A page of events, in ascending key order whatever the direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    /// The events: the first matching ones in the scan's direction.
    pub events: Vec<ScannedEvent>,
    /// Whether more matching events may exist beyond the page (a following page may
    /// still turn out empty).
    pub more: bool,
    /// What the scan did.
    pub stats: ScanStats,
}

/// Which streams a scan covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSelector {
    /// Every stream of the group.
    All,
    /// The named streams (names that do not exist are ignored).
    Names(Vec<String>),
    /// Streams whose name starts with the prefix.
    Prefix(String),
}

/// Which way a scan walks the event order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending keys.
    Forward,
    /// Descending keys.
    Backward,
}

/// A read of events from one log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    /// The log group name.
    pub group: String,
    /// Which streams to read.
    pub streams: StreamSelector,
    /// Only events with `start <= timestamp`.
    pub start_time: Option<Millis>,
    /// Only events with `timestamp < end`.
    pub end_time: Option<Millis>,
    /// Only events strictly after this key (forward) or strictly before it (backward).
    pub from: Option<EventKey>,
    /// Walk order.
    pub direction: Direction,
}

/// What a scan may assume about its filter, so that it can skip data the filter
/// admits nothing of (the columnar tier skips row groups, and typed rows before their
/// text is built).
#[derive(Clone, Copy, Default)]
pub struct ScanHint<'a> {
    /// Every event the filter admits contains each of these (case-sensitive).
    pub must_contain: &'a [String],
    /// What the filter requires of the space-separated fields of the messages it
    /// admits, if it says anything field by field.
    pub fields: Option<&'a dyn FieldConditions>,
}

impl std::fmt::Debug for ScanHint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanHint")
            .field("must_contain", &self.must_contain)
            .field("fields", &self.fields.is_some())
            .finish()
    }
}

/// What a filter requires, field by field, of the messages it admits that are
/// space-separated fields (as flow records are).
pub trait FieldConditions: Sync {
    /// For a message of exactly `width` fields: conditions that each of its fields
    /// must pass for the filter to admit it (necessary, not sufficient; empty when
    /// nothing is known). A field is a run of non-blank characters that does not begin
    /// with `"` or `[`; the caller does not ask about other fields.
    fn of_width(&self, width: usize) -> Vec<FieldCondition<'_>>;
}

/// A condition on one field of a message (see [`FieldConditions`]).
pub struct FieldCondition<'a> {
    /// The field, counted from 0.
    pub field: usize,
    /// Whether the field's text passes.
    pub holds: Box<dyn Fn(&str) -> bool + Sync + 'a>,
}

/// What a scan did, for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Blocks of the selected streams.
    pub blocks_total: u64,
    /// Blocks decompressed and read.
    pub blocks_read: u64,
    /// Bytes produced by decompression (for parts: message bytes produced).
    pub bytes_decompressed: u64,
    /// Columnar parts of the selected streams' group.
    pub parts_total: u64,
    /// Row groups of parts decoded.
    pub row_groups_read: u64,
    /// Row groups of parts left out because the [`ScanHint`] says none of their rows
    /// can match (their text columns were read to tell).
    pub row_groups_skipped: u64,
    /// Typed rows of parts left out by the hint (a field condition failing, or a
    /// needle in none of the row's text fields) before their message was built.
    pub rows_skipped_by_fields: u64,
    /// Compressed bytes of parts' column chunks read (whole row groups, or the text
    /// columns of skipped ones).
    pub part_bytes_read: u64,
}

/// How far the import of one source object (a file of a bucket, say) into a log group
/// has come, so that importing the same source again skips what is already in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCheckpoint {
    /// The object's version as the importer saw it (ETag, or size and modification
    /// time): a changed object is imported again.
    pub version: String,
    /// Parts (batches, in the importer's deterministic order) already stored.
    pub parts: u64,
    /// Whether every part is stored.
    pub complete: bool,
}

/// A subscription filter of a log group, as PutSubscriptionFilter defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionFilter {
    /// Its name, unique within the group.
    pub filter_name: String,
    /// The filter pattern events must match.
    pub filter_pattern: String,
    /// Where matches go (a URL or an ARN, as given).
    pub destination_arn: String,
    /// The IAM role, kept for DescribeSubscriptionFilters.
    pub role_arn: Option<String>,
    /// `ByLogStream` or `Random`.
    pub distribution: String,
    /// Kept for DescribeSubscriptionFilters.
    pub apply_on_transformed_logs: bool,
    /// Kept for DescribeSubscriptionFilters.
    pub field_selection_criteria: Option<String>,
    /// Kept for DescribeSubscriptionFilters.
    pub emit_system_fields: Vec<String>,
    /// When it was created, Unix ms.
    pub creation_time: Millis,
    /// Delivery starts after this store sequence number (what was committed when the
    /// filter was created).
    pub start_after: u64,
}

/// A metric filter of a log group, as PutMetricFilter defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFilter {
    /// Its name, unique within the group.
    pub filter_name: String,
    /// The filter pattern events must match.
    pub filter_pattern: String,
    /// What a matching event publishes (AWS allows exactly one).
    pub metric_transformations: Vec<MetricTransformationDef>,
    /// Kept for DescribeMetricFilters.
    pub apply_on_transformed_logs: bool,
    /// Kept for DescribeMetricFilters.
    pub field_selection_criteria: Option<String>,
    /// Kept for DescribeMetricFilters.
    pub emit_system_field_dimensions: Vec<String>,
    /// When it was created, Unix ms.
    pub creation_time: Millis,
    /// The filter counts the events committed after this store sequence number (what
    /// was committed when it was created): like AWS, a new filter does not look back.
    pub start_after: u64,
}

/// One `metricTransformations` entry of a [`MetricFilter`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricTransformationDef {
    /// The metric's name.
    pub metric_name: String,
    /// The metric's namespace.
    pub metric_namespace: String,
    /// A number, or a selector of the pattern (`$.path`, `$name`, `$N`).
    pub metric_value: String,
    /// Published for a minute in which the filter saw events but none matched.
    #[serde(default)]
    pub default_value: Option<f64>,
    /// Dimension name to selector.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// The unit (a CloudWatch `StandardUnit`), if given.
    #[serde(default)]
    pub unit: Option<String>,
}

/// Names one metric series: a namespace, a metric name and its dimension values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MetricId {
    /// The namespace.
    pub namespace: String,
    /// The metric name.
    pub name: String,
    /// Dimension name to value (empty for a metric without dimensions).
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
}

/// The aggregate of one metric series over one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteStats {
    /// Values published (matching events with a numeric value).
    pub samples: u64,
    /// Their sum.
    pub sum: f64,
    /// Their minimum (meaningless when `samples` is 0).
    pub min: f64,
    /// Their maximum (meaningless when `samples` is 0).
    pub max: f64,
    /// Events the publishing filters looked at in the minute, matching or not.
    pub seen: u64,
    /// The filters' `defaultValue`, the datapoint of a minute with events seen but no
    /// samples.
    #[serde(default)]
    pub default_value: Option<f64>,
}

impl MinuteStats {
    /// One published value.
    pub fn sample(value: f64) -> MinuteStats {
        MinuteStats {
            samples: 1,
            sum: value,
            min: value,
            max: value,
            seen: 0,
            default_value: None,
        }
    }

    /// Adds `other` (of the same series, the same or another minute) to this aggregate.
    pub fn merge(&mut self, other: &MinuteStats) {
        if other.samples > 0 {
            if self.samples == 0 {
                self.min = other.min;
                self.max = other.max;
            } else {
                self.min = self.min.min(other.min);
                self.max = self.max.max(other.max);
            }
            self.samples += other.samples;
            self.sum += other.sum;
        }
        self.seen += other.seen;
        if other.default_value.is_some() {
            self.default_value = other.default_value;
        }
    }

    /// The datapoint as CloudWatch reports it: the samples' statistics, or for a period
    /// without samples in which events were seen, the default value once; `None` when
    /// there is no datapoint.
    pub fn datapoint(&self) -> Option<MinuteStats> {
        if self.samples > 0 {
            return Some(*self);
        }
        match self.default_value {
            Some(value) if self.seen > 0 => Some(MinuteStats {
                seen: self.seen,
                ..MinuteStats::sample(value)
            }),
            _ => None,
        }
    }
}

/// What one minute of one series gained: an entry of [`LogStore::commit_metrics`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// The series.
    pub metric: MetricId,
    /// The unit of its values, if the filter named one.
    #[serde(default)]
    pub unit: Option<String>,
    /// Start of the minute, Unix ms (a multiple of 60,000).
    pub minute: Millis,
    /// What the minute gained.
    pub stats: MinuteStats,
}

/// What [`LogStore::commit_metrics`] did with the points it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricCommit {
    /// Points of new series refused because the store holds its maximum of series.
    pub dropped_new_series: usize,
    /// Points older than the metric retention, dropped.
    pub dropped_expired: usize,
}

/// What the store has taken in since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounters {
    /// Events committed.
    pub ingested_events: u64,
    /// Their bytes before compression (messages and per-event framing).
    pub ingested_bytes: u64,
}

/// The events of a group after a cursor, from block headers alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Unexpired events after the cursor.
    pub events: u64,
    /// When the oldest of them was ingested, Unix ms.
    pub oldest_ingestion_time: Option<Millis>,
}

/// A CloudWatch Logs resource policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourcePolicy {
    /// The policy name.
    pub name: String,
    /// The policy document (JSON text).
    pub document: String,
    /// When it was last written, Unix ms.
    pub last_updated: Millis,
    /// The log group ARN for a resource-scoped policy; `None` for an account policy.
    pub resource_arn: Option<String>,
    /// Changes on every write, for optimistic concurrency.
    pub revision_id: String,
}

impl ResourcePolicy {
    /// The key a policy is stored under: its resource ARN when it has one (one policy per
    /// resource), its name otherwise.
    pub fn key(&self) -> String {
        policy_key(self.resource_arn.as_deref(), &self.name)
    }
}

/// The storage key of a policy given its resource ARN and name.
pub fn policy_key(resource_arn: Option<&str>, name: &str) -> String {
    match resource_arn {
        Some(arn) => format!("resource:{arn}"),
        None => format!("account:{name}"),
    }
}
