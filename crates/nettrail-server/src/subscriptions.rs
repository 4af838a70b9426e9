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

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use nettrail_formats::subscription::{MessageType, SubscriptionEvent, SubscriptionMessage};
use nettrail_pattern::FilterPattern;
use nettrail_store::{
    CommittedPage, LogStore, PageLimit, ScannedEvent, StoreError, SubscriptionFilter,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::logs_api::event_id;
use crate::EVENT_OVERHEAD_BYTES;

/// Where a subscription's batches go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// POST of the Lambda event to this `http://` or `https://` URL.
    Http(hyper::Uri),
    /// Decoded documents appended to this file, one per line.
    File(PathBuf),
    /// A notification topic of the config: readable messages to people.
    Topic(String),
    /// A JetStream publish of the gzip document (as a Kinesis record carries it) to
    /// `subject` on the NATS server at `server` (`nats://HOST:PORT`).
    Nats {
        /// `nats://HOST:PORT`.
        server: String,
        /// The subject (a stream must capture it).
        subject: String,
    },
}

impl Destination {
    /// The destination of a `destinationArn`: a URL, or an ARN bound in the config.
    /// The error is the message of the InvalidParameterException AWS would answer.
    pub(crate) fn resolve(
        destination_arn: &str,
        config: &ServerConfig,
    ) -> Result<Destination, String> {
        let topic = |name: &str| -> Result<Destination, String> {
            if config.topics.contains_key(name) {
                Ok(Destination::Topic(name.to_owned()))
            } else {
                Err(format!("There is no notification topic {name:?} in the configuration ([topics.{name}])."))
            }
        };
        let target = match config.subscriptions.destinations.get(destination_arn) {
            Some(bound) => bound.as_str(),
            None if destination_arn.starts_with("arn:aws:sns:") => {
                // arn:aws:sns:REGION:ACCOUNT:NAME
                return topic(destination_arn.rsplit(':').next().unwrap_or_default());
            }
            None if destination_arn.starts_with("arn:") => {
                return Err(format!(
                    "Could not deliver test message to {destination_arn}: nettrail delivers to an AWS ARN only when the configuration binds it to a destination ([subscriptions.destinations])."
                ))
            }
            None => destination_arn,
        };
        if let Some(name) = target.strip_prefix("topic:") {
            return topic(name);
        }
        if let Some(path) = target.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "{target} is not a file URL with an absolute path (file:///PATH)."
                ));
            }
            return Ok(Destination::File(PathBuf::from(path)));
        }
        if target.starts_with("http://") || target.starts_with("https://") {
            return target
                .parse::<hyper::Uri>()
                .map(Destination::Http)
                .map_err(|e| format!("{target} is not a valid URL: {e}."));
        }
        if let Some(rest) = target.strip_prefix("nats://") {
            let (server, subject) = rest.split_once('/').unwrap_or((rest, ""));
            let subject_ok = !subject.is_empty()
                && !subject.contains(|c: char| c.is_whitespace() || c == '*' || c == '>')
                && !subject.starts_with('.')
                && !subject.ends_with('.')
                && !subject.contains("..");
            if server.is_empty() || !subject_ok {
                return Err(format!(
                    "{target} is not a NATS destination: nats://HOST:PORT/SUBJECT with a subject a JetStream stream captures (no wildcards)."
                ));
            }
            return Ok(Destination::Nats {
                server: format!("nats://{server}"),
                subject: subject.to_owned(),
            });
        }
        Err(format!(
            "{target} is not a destination nettrail can deliver to (http://…, file:///…, topic:NAME, or an ARN bound in [subscriptions.destinations])."
        ))
    }
}

/// POSTs JSON bodies over HTTP or HTTPS, acknowledged by a 2xx answer.
#[derive(Clone)]
pub(crate) struct HttpSender {
    http: reqwest::Client,
    pub(crate) timeout: Duration,
}

impl HttpSender {
    /// A client that trusts the platform's roots and those of `ca_file` (PEM), if any.
    fn new(timeout: Duration, ca_file: Option<&std::path::Path>) -> Result<HttpSender, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading subscriptions.ca_file {}: {e}", path.display()))?;
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("subscriptions.ca_file {}: {e}", path.display()))?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpSender { http, timeout })
    }

    /// POSTs `body` to `url`; Ok on a 2xx answer.
    pub(crate) async fn post_json(&self, url: &str, body: String) -> Result<(), String> {
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| crate::error::with_causes(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.bytes().await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Err(format!("{url} answered {status}: {text}"))
    }
}

/// Delivers documents to destinations.
#[derive(Clone)]
struct Sender {
    http: HttpSender,
    config: Arc<ServerConfig>,
    /// JetStream contexts by server URL, connected on first use (and reconnecting by
    /// themselves when a connection drops).
    nats: Arc<tokio::sync::Mutex<HashMap<String, async_nats::jetstream::Context>>>,
}

impl Sender {
    /// Sends one document; Ok once the destination has acknowledged it.
    async fn send(
        &self,
        destination: &Destination,
        message: &SubscriptionMessage,
    ) -> Result<(), String> {
        match destination {
            Destination::Http(uri) => {
                self.http
                    .post_json(&uri.to_string(), message.to_lambda_event())
                    .await
            }
            Destination::File(path) => {
                let path = path.clone();
                let line = message.to_json();
                tokio::task::spawn_blocking(move || {
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)?;
                    file.write_all(format!("{line}\n").as_bytes())?;
                    file.sync_data()
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("appending to {}: {e}", destination_label(destination)))
            }
            Destination::Nats { server, subject } => {
                let jetstream = self.jetstream(server).await?;
                let ack = tokio::time::timeout(self.http.timeout, async {
                    jetstream
                        .publish(subject.clone(), Bytes::from(message.to_gzip()))
                        .await
                        .map_err(|e| e.to_string())?
                        .await
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|_| {
                    format!(
                        "no JetStream acknowledgement within {:?}",
                        self.http.timeout
                    )
                })?;
                ack.map(|_| ())
                    .map_err(|e| format!("publishing to {subject} on {server}: {e}"))
            }
            Destination::Topic(name) => {
                // People get matches, not the reachability check.
                if message.message_type == MessageType::Control {
                    return Ok(());
                }
                let Some(topic) = self.config.topics.get(name) else {
                    return Err(format!(
                        "notification topic {name:?} is no longer configured"
                    ));
                };
                crate::notify::send(name, topic, &self.config.smtp, message, &self.http).await
            }
        }
    }
}

impl Sender {
    async fn jetstream(&self, server: &str) -> Result<async_nats::jetstream::Context, String> {
        let mut connections = self.nats.lock().await;
        if let Some(context) = connections.get(server) {
            return Ok(context.clone());
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(self.http.timeout)
            .connect(server)
            .await
            .map_err(|e| format!("connecting to {server}: {e}"))?;
        let context = async_nats::jetstream::new(client);
        connections.insert(server.to_owned(), context.clone());
        Ok(context)
    }
}

fn destination_label(destination: &Destination) -> String {
    match destination {
        Destination::Http(uri) => uri.to_string(),
        Destination::File(path) => path.display().to_string(),
        Destination::Topic(name) => format!("topic:{name}"),
        Destination::Nats { server, subject } => format!("{server}/{subject}"),
    }
}

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
        let message = SubscriptionMessage::control(
            &destination_label(destination),
            crate::logs_api::now_ms(),
        );
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
                    st.last_delivery_time = Some(crate::logs_api::now_ms());
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
                        st.last_error_time = Some(crate::logs_api::now_ms());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_urls_files_or_bound_arns() {
        let mut settings = ServerConfig::default();
        settings
            .topics
            .insert("vpn-alerts".into(), Default::default());
        settings.subscriptions.destinations.insert(
            "arn:aws:lambda:us-east-1:123456789012:function:notify".into(),
            "http://127.0.0.1:8080/hook".into(),
        );
        assert_eq!(
            Destination::resolve("http://127.0.0.1:9/x", &settings),
            Ok(Destination::Http("http://127.0.0.1:9/x".parse().unwrap()))
        );
        assert_eq!(
            Destination::resolve("file:///var/log/matches.jsonl", &settings),
            Ok(Destination::File("/var/log/matches.jsonl".into()))
        );
        assert_eq!(
            Destination::resolve(
                "arn:aws:lambda:us-east-1:123456789012:function:notify",
                &settings
            ),
            Ok(Destination::Http(
                "http://127.0.0.1:8080/hook".parse().unwrap()
            ))
        );
        for bad in [
            "arn:aws:kinesis:us-east-1:123456789012:stream/unbound",
            "file://relative/path",
            "ftp://x",
            "nats://127.0.0.1:4222",
            "nats://127.0.0.1:4222/cwl.*",
            "nats:///subject",
            "arn:aws:sns:us-east-1:123456789012:unknown-topic",
            "topic:unknown",
            "",
        ] {
            assert!(Destination::resolve(bad, &settings).is_err(), "{bad:?}");
        }
    }
}
