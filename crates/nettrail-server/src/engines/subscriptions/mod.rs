//! Subscription filters: the events of a log group that match a filter, delivered to
//! its destination as CloudWatch Logs delivers them, within a fraction of a second.
//!
//! Each filter has a task. It reads the group in commit order from its cursor
//! ([`LogStore::read_committed`]), keeps the events its pattern matches, sends them as
//! one DATA_MESSAGE per log stream (in order, retrying a failing destination with
//! exponential backoff and jitter until it accepts), and only then moves its durable
//! cursor ([`LogStore::set_cursor`]) past them. So delivery is at least once: after a
//! crash the task re-sends at most what it had read but not yet acknowledged. A task
//! sleeps until the store reports a commit, then lingers a few milliseconds so that a
//! burst of events goes out as one batch.
//!
//! Destinations: `http://` and `https://` URLs (a POST of the Lambda event
//! `{"awslogs":{"data":BASE64(GZIP(JSON))}}`, acknowledged by any 2xx),
//! `nats://HOST:PORT/SUBJECT` (a JetStream publish of the gzip document, as a Kinesis
//! record carries it, acknowledged by JetStream), `file:///PATH` (the decoded JSON
//! documents appended one per line, acknowledged once fsynced), notification topics
//! (`notify.rs`), and AWS ARNs bound to one of those in the configuration.

pub(crate) mod destination;
mod sender;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nettrail_formats::subscription::{MessageType, SubscriptionEvent, SubscriptionMessage};
use nettrail_pattern::FilterPattern;
use nettrail_store::{
    CommittedPage, LogStore, PageLimit, ScannedEvent, StoreError, SubscriptionFilter,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common::{event_id, now_ms, EVENT_OVERHEAD_BYTES};
use crate::config::ServerConfig;
use crate::engines::http_sender::HttpSender;

use destination::{destination_label, Destination};
use sender::Sender;

/// How one subscription is doing, for `nettrail subscriptions status` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeliveryStatus {
    /// Where it delivers (the resolved destination).
    pub(crate) destination: String,
    /// Events and batches acknowledged since the server started.
    pub(crate) delivered_events: u64,
    pub(crate) delivered_batches: u64,
    /// Delivery attempts that failed since the server started.
    pub(crate) failed_attempts: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) last_error_time: Option<i64>,
    pub(crate) last_delivery_time: Option<i64>,
    /// The sequence number up to which the group has been read and delivered.
    pub(crate) cursor: u64,
}

/// The running subscriptions of a server.
pub(crate) struct Hub {
    store: Arc<dyn LogStore>,
    config: Arc<ServerConfig>,
    sender: Sender,
    /// Bumped after every store commit; tasks wait on it.
    commits: watch::Sender<u64>,
    tasks: Mutex<HashMap<(String, String), JoinHandle<()>>>,
    statuses: Mutex<HashMap<(String, String), DeliveryStatus>>,
    runtime: tokio::runtime::Handle,
}

impl Hub {
    /// Starts a task for every subscription filter in the store. Must be called from
    /// within the server's runtime.
    pub(crate) fn start(
        store: Arc<dyn LogStore>,
        config: Arc<ServerConfig>,
    ) -> Result<Arc<Hub>, String> {
        let (commits, _) = watch::channel(0u64);
        let sender = Sender {
            http: HttpSender::new(
                Duration::from_secs(config.subscriptions.delivery_timeout_secs.max(1)),
                config.subscriptions.ca_file.as_deref(),
            )?,
            config: Arc::clone(&config),
            nats: Arc::default(),
        };
        let hub = Arc::new(Hub {
            store: Arc::clone(&store),
            config,
            sender,
            commits,
            tasks: Mutex::new(HashMap::new()),
            statuses: Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::current(),
        });
        let notify = hub.commits.clone();
        store.on_commit(Arc::new(move || {
            notify.send_modify(|n| *n = n.wrapping_add(1));
        }));
        for (group, filter) in store.all_subscription_filters() {
            hub.run(group, filter);
        }
        Ok(hub)
    }

    /// The HTTP client deliveries use (alarms notify through it too).
    pub(crate) fn http_sender(&self) -> HttpSender {
        self.sender.http.clone()
    }

    /// Sends the CONTROL_MESSAGE AWS sends when a subscription is created, waiting for
    /// the destination to acknowledge it. Called from a blocking thread.
    pub(crate) fn check_destination(&self, destination: &Destination) -> Result<(), String> {
        let message = SubscriptionMessage::control(&destination_label(destination), now_ms());
        self.runtime
            .block_on(self.sender.send(destination, &message))
    }

    /// (Re)starts the delivery task of `filter` in `group`.
    pub(crate) fn run(self: &Arc<Self>, group: String, filter: SubscriptionFilter) {
        let key = (group.clone(), filter.filter_name.clone());
        let task = {
            let hub = Arc::clone(self);
            self.runtime
                .spawn(async move { hub.deliver_forever(group, filter).await })
        };
        if let Some(old) = self.tasks.lock().expect("tasks lock").insert(key, task) {
            old.abort();
        }
    }

    /// Stops the delivery task of a filter (deleted, or its group deleted).
    pub(crate) fn stop(&self, group: &str, name: &str) {
        let key = (group.to_owned(), name.to_owned());
        if let Some(task) = self.tasks.lock().expect("tasks lock").remove(&key) {
            task.abort();
        }
        self.statuses.lock().expect("statuses lock").remove(&key);
    }

    /// Stops the tasks of every filter of a deleted group.
    pub(crate) fn stop_group(&self, group: &str) {
        let mut tasks = self.tasks.lock().expect("tasks lock");
        tasks.retain(|(g, _), task| {
            if g == group {
                task.abort();
            }
            g != group
        });
        self.statuses
            .lock()
            .expect("statuses lock")
            .retain(|(g, _), _| g != group);
    }

    /// The status of every subscription (of `group` only, if given), by group and name.
    pub(crate) fn statuses(&self, group: Option<&str>) -> Vec<((String, String), DeliveryStatus)> {
        let mut all: Vec<_> = self
            .statuses
            .lock()
            .expect("statuses lock")
            .iter()
            .filter(|((g, _), _)| group.is_none_or(|want| want == g))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn update_status(&self, group: &str, name: &str, f: impl FnOnce(&mut DeliveryStatus)) {
        let key = (group.to_owned(), name.to_owned());
        if let Some(status) = self.statuses.lock().expect("statuses lock").get_mut(&key) {
            f(status);
        }
    }

    /// Stops every task (server shutdown); cursors are as durable as the last
    /// acknowledged batch.
    pub(crate) fn shutdown(&self) {
        for (_, task) in self.tasks.lock().expect("tasks lock").drain() {
            task.abort();
        }
    }

    async fn deliver_forever(self: Arc<Self>, group: String, filter: SubscriptionFilter) {
        let name = filter.filter_name.clone();
        let settings = &self.config.subscriptions;
        let pattern = match FilterPattern::parse(&filter.filter_pattern) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(group, filter = name, error = %e, "subscription filter pattern no longer parses; not delivering");
                return;
            }
        };
        let destination = match Destination::resolve(&filter.destination_arn, &self.config) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(group, filter = name, error = %e, "subscription destination cannot be resolved; not delivering");
                return;
            }
        };
        let limit = PageLimit {
            max_events: settings.max_batch_events.max(1),
            max_bytes: settings.max_batch_bytes.max(1),
            overhead_per_event: EVENT_OVERHEAD_BYTES,
        };
        let linger = Duration::from_millis(settings.linger_ms);
        let mut commits = self.commits.subscribe();
        let (group_c, name_c) = (group.clone(), name.clone());
        let mut after = match self.blocking(move |s| s.cursor(&group_c, &name_c)).await {
            Ok(cursor) => cursor.unwrap_or(filter.start_after),
            Err(e) => {
                tracing::error!(group, filter = name, error = %e, "cannot read subscription cursor; not delivering");
                return;
            }
        };
        self.statuses.lock().expect("statuses lock").insert(
            (group.clone(), name.clone()),
            DeliveryStatus {
                destination: destination_label(&destination),
                cursor: after,
                ..DeliveryStatus::default()
            },
        );
        tracing::info!(group, filter = name, after, "subscription delivering");
        loop {
            // Marked before reading: a commit after this point wakes the wait below.
            commits.borrow_and_update();
            let (group_c, after_c) = (group.clone(), after);
            let page = self
                .blocking(move |s| s.read_committed(&group_c, after_c, limit))
                .await;
            let page: CommittedPage = match page {
                Ok(page) => page,
                Err(StoreError::GroupNotFound(_)) => return,
                Err(e) => {
                    tracing::error!(group, filter = name, error = %e, "subscription cannot read its log group; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if page.events.is_empty() {
                after = after.max(page.read_to);
                self.update_status(&group, &name, |st| st.cursor = after);
                if commits.changed().await.is_err() {
                    return;
                }
                tokio::time::sleep(linger).await;
                continue;
            }
            for (stream, events) in batches_by_stream(&page.events, &pattern) {
                let message = SubscriptionMessage {
                    message_type: MessageType::Data,
                    owner: self.config.account_id.clone(),
                    log_group: group.clone(),
                    log_stream: stream.to_string(),
                    subscription_filters: vec![name.clone()],
                    log_events: events
                        .iter()
                        .map(|e| SubscriptionEvent {
                            id: event_id(e.key, e.ingestion_time),
                            timestamp: e.key.timestamp,
                            message: e.message.clone(),
                        })
                        .collect(),
                };
                self.send_until_acknowledged(&group, &name, &destination, &message)
                    .await;
                let delivered = message.log_events.len() as u64;
                self.update_status(&group, &name, |st| {
                    st.delivered_events += delivered;
                    st.delivered_batches += 1;
                    st.last_delivery_time = Some(now_ms());
                });
            }
            after = page.read_to;
            self.update_status(&group, &name, |st| st.cursor = after);
            let (group_c, name_c) = (group.clone(), name.clone());
            if let Err(e) = self
                .blocking(move |s| s.set_cursor(&group_c, &name_c, Some(after)))
                .await
            {
                // Delivered but not recorded: the batch may be sent again after a
                // restart, which at-least-once allows.
                tracing::error!(group, filter = name, error = %e, "cannot save subscription cursor");
            }
        }
    }

    /// Sends until the destination acknowledges, waiting longer after each failure.
    async fn send_until_acknowledged(
        &self,
        group: &str,
        name: &str,
        destination: &Destination,
        message: &SubscriptionMessage,
    ) {
        let max_backoff =
            Duration::from_secs(self.config.subscriptions.max_retry_backoff_secs.max(1));
        let mut backoff = Duration::from_millis(100);
        let mut attempt = 1u32;
        loop {
            match self.sender.send(destination, message).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(group, filter = name, attempt, error = %e, "subscription delivery failed; retrying");
                    self.update_status(group, name, |st| {
                        st.failed_attempts += 1;
                        st.last_error = Some(e.clone());
                        st.last_error_time = Some(now_ms());
                    });
                    tokio::time::sleep(backoff + jitter(backoff)).await;
                    backoff = (backoff * 2).min(max_backoff);
                    attempt += 1;
                }
            }
        }
    }

    /// Runs a store call on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn LogStore) -> nettrail_store::Result<T> + Send + 'static,
    ) -> nettrail_store::Result<T> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .unwrap_or(Err(StoreError::Closed))
    }
}

/// The events `pattern` matches, one batch per log stream (in the order the streams
/// first appear), each in commit order.
fn batches_by_stream<'a>(
    events: &'a [ScannedEvent],
    pattern: &FilterPattern,
) -> Vec<(&'a str, Vec<&'a ScannedEvent>)> {
    let mut batches: Vec<(&str, Vec<&ScannedEvent>)> = Vec::new();
    for event in events.iter().filter(|e| pattern.matches(&e.message)) {
        match batches.iter_mut().find(|(s, _)| *s == &*event.stream) {
            Some((_, list)) => list.push(event),
            None => batches.push((&event.stream, vec![event])),
        }
    }
    batches
}

/// Up to half of `base`, so that retries of many subscriptions spread out.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    base.mul_f64(f64::from(nanos % 1000) / 2000.0)
}
