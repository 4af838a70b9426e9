//! [`LogStore`]: the operations the API layer needs from a store. Every backend
//! implements it; the server holds only an `Arc<dyn LogStore>`.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::model::{
    AppendAck, Backlog, CommittedPage, GroupInfo, ImportCheckpoint, MetricCommit, MetricFilter,
    MetricId, MetricPoint, Millis, MinuteStats, NewEvent, NewGroup, PageLimit, ResourcePolicy,
    ScanHint, ScanPage, ScanRequest, StoreCounters, StreamInfo, SubscriptionFilter,
};
use crate::snapshot::TierSnapshot;

/// The operations the API layer needs from a log store.
///
/// All methods block; they are safe to call from many threads at once.
pub trait LogStore: Send + Sync {
    /// Creates a log group.
    fn create_group(&self, group: NewGroup, now: Millis) -> Result<()>;
    /// Deletes a log group, its streams and events.
    fn delete_group(&self, name: &str) -> Result<()>;
    /// Describes one log group.
    fn group(&self, name: &str) -> Result<GroupInfo>;
    /// How many log groups exist.
    fn group_count(&self) -> usize;
    /// Visits groups in name order, starting strictly after `after`, until `visit`
    /// returns false.
    fn visit_groups(&self, after: Option<&str>, visit: &mut dyn FnMut(GroupInfo) -> bool);
    /// Sets (`Some`) or removes (`None`) the retention policy.
    fn set_retention(&self, group: &str, days: Option<u32>) -> Result<()>;
    /// Replaces the tags of a group.
    fn set_tags(&self, group: &str, tags: BTreeMap<String, String>) -> Result<()>;
    /// Records the flow-log format (`${version} ${account-id} …`) of a group's events,
    /// as the writer that knows it says (`None` forgets it); compactions from then on
    /// give its records typed columns. Setting the format it has writes nothing.
    fn set_flow_log_format(&self, group: &str, format: Option<&str>) -> Result<()>;

    /// Creates a log stream.
    fn create_stream(&self, group: &str, stream: &str, now: Millis) -> Result<()>;
    /// Deletes a log stream and its events.
    fn delete_stream(&self, group: &str, stream: &str) -> Result<()>;
    /// Describes one stream.
    fn stream(&self, group: &str, stream: &str) -> Result<StreamInfo>;
    /// Describes every stream of a group, in name order.
    fn streams(&self, group: &str) -> Result<Vec<StreamInfo>>;

    /// Appends events to a stream (in any order; they are sorted by timestamp), and
    /// returns once they are durable.
    fn append(&self, group: &str, stream: &str, events: &[NewEvent<'_>]) -> Result<AppendAck>;
    /// Appends events to several streams of one group, all or none (one commit), and
    /// returns an acknowledgement per stream, in order, once they are durable.
    fn append_many(
        &self,
        group: &str,
        streams: &[(&str, &[NewEvent<'_>])],
    ) -> Result<Vec<AppendAck>>;
    /// Like [`LogStore::append_many`], and records the checkpoint of `object` of
    /// `source` in the same commit: after a crash, either the events and the checkpoint
    /// are both stored or neither is, so an import resumed from its checkpoints stores
    /// nothing twice. `streams` may be empty (a part whose events all expired).
    fn import_many(
        &self,
        group: &str,
        streams: &[(&str, &[NewEvent<'_>])],
        source: &str,
        object: &str,
        checkpoint: ImportCheckpoint,
    ) -> Result<Vec<AppendAck>>;
    /// Reads one page of the events that `filter` accepts, in key order in the request's
    /// direction. Events older than the group's retention are never returned.
    fn scan(
        &self,
        request: &ScanRequest,
        filter: &dyn Fn(&str) -> bool,
        limit: PageLimit,
    ) -> Result<ScanPage> {
        self.scan_with_hint(request, filter, &ScanHint::default(), limit)
    }
    /// [`scan`](Self::scan) told what `filter` admits (see [`ScanHint`]), so it may skip
    /// data that holds no such event; the page is the same.
    fn scan_with_hint(
        &self,
        request: &ScanRequest,
        filter: &dyn Fn(&str) -> bool,
        hint: &ScanHint<'_>,
        limit: PageLimit,
    ) -> Result<ScanPage>;

    /// The import checkpoints of `source` in `group`, by object.
    fn import_checkpoints(
        &self,
        group: &str,
        source: &str,
    ) -> Result<BTreeMap<String, ImportCheckpoint>>;
    /// Records how far the import of `object` of `source` into `group` has come; durable
    /// when it returns. Deleting the group deletes its checkpoints.
    fn set_import_checkpoint(
        &self,
        group: &str,
        source: &str,
        object: &str,
        checkpoint: ImportCheckpoint,
    ) -> Result<()>;

    /// Forgets the checkpoint of `object` of `source` in `group` (nothing if none).
    fn remove_import_checkpoint(&self, group: &str, source: &str, object: &str) -> Result<()>;

    /// Creates or replaces a resource policy (keyed by [`ResourcePolicy::key`]).
    fn put_policy(&self, policy: ResourcePolicy) -> Result<()>;
    /// Deletes a resource policy by key.
    fn delete_policy(&self, key: &str) -> Result<()>;
    /// Every resource policy, in key order.
    fn policies(&self) -> Vec<ResourcePolicy>;

    /// Creates or replaces a subscription filter of `group` (by name).
    fn put_subscription_filter(&self, group: &str, filter: SubscriptionFilter) -> Result<()>;
    /// Deletes a subscription filter; false if `group` had none of that name.
    fn delete_subscription_filter(&self, group: &str, name: &str) -> Result<bool>;
    /// The subscription filters of `group`, by name.
    fn subscription_filters(&self, group: &str) -> Result<Vec<SubscriptionFilter>>;
    /// Every subscription filter, with its group.
    fn all_subscription_filters(&self) -> Vec<(String, SubscriptionFilter)>;
    /// Creates or replaces a metric filter of `group` (by name).
    fn put_metric_filter(&self, group: &str, filter: MetricFilter) -> Result<()>;
    /// Deletes a metric filter; false if `group` had none of that name.
    fn delete_metric_filter(&self, group: &str, name: &str) -> Result<bool>;
    /// The metric filters of `group`, by name.
    fn metric_filters(&self, group: &str) -> Result<Vec<MetricFilter>>;
    /// Every metric filter, with its group.
    fn all_metric_filters(&self) -> Vec<(String, MetricFilter)>;
    /// How far the metric filters of `group` have counted (a sequence number).
    fn metric_cursor(&self, group: &str) -> Result<Option<u64>>;
    /// Adds `points` to the per-minute metric aggregates and moves the metric cursor of
    /// `group` to `cursor`, both in one durable record: after a crash either both
    /// happened or neither did, so no event is counted twice or missed.
    fn commit_metrics(
        &self,
        group: &str,
        cursor: u64,
        points: Vec<MetricPoint>,
    ) -> Result<MetricCommit>;
    /// The per-minute aggregates of `metric` with `start <= minute < end`, in order.
    fn metric_minutes(
        &self,
        metric: &MetricId,
        start: Millis,
        end: Millis,
    ) -> Vec<(Millis, MinuteStats)>;
    /// Every metric series held, with its unit, in order.
    fn metric_series(&self) -> Vec<(MetricId, Option<String>)>;
    /// The highest sequence number committed so far.
    fn committed_seq(&self) -> u64;

    /// Reads the events of `group` with sequence numbers above `after`, in commit order,
    /// within `limit` (at least one event when there is one). Expired events are skipped.
    fn read_committed(&self, group: &str, after: u64, limit: PageLimit) -> Result<CommittedPage>;
    /// The events of `group` after sequence number `after` (a subscription's lag),
    /// counted from block headers without reading blocks.
    fn backlog(&self, group: &str, after: u64) -> Result<Backlog>;
    /// The group across both tiers at one moment, for the query engine.
    fn tier_snapshot(&self, group: &str) -> Result<TierSnapshot>;
    /// What the store has taken in since it opened.
    fn counters(&self) -> StoreCounters;
    /// Calls `listener` after every commit, before the commit is acknowledged (on the
    /// writer's thread: it must be quick).
    fn on_commit(&self, listener: std::sync::Arc<dyn Fn() + Send + Sync>);
    /// The cursor `name` of `group` (how far a subscription has delivered).
    fn cursor(&self, group: &str, name: &str) -> Result<Option<u64>>;
    /// Sets (or with `None` removes) the cursor `name` of `group`; durable when it
    /// returns. Deleting the group deletes its cursors.
    fn set_cursor(&self, group: &str, name: &str, seq: Option<u64>) -> Result<()>;

    /// Makes everything written so far durable and stops background work.
    fn shutdown(&self);
}
