//! What runs beside the API, each engine in its own module and none of them answering
//! requests:
//! - `subscriptions/`: delivery of subscription filter matches (the hub and its tasks,
//!   `destination.rs`, `sender.rs`);
//! - `notify.rs`: notification topics (mail, webhooks, Slack);
//! - `metric_filters.rs`: metric filter counting;
//! - `alarms.rs`: alarm evaluation and notifications;
//! - `http_sender.rs`: the HTTP client deliveries and notifications share;
//! - `queries.rs`: SQL query executions (the Athena-compatible API);
//! - `insights.rs`: Logs Insights queries.
//!
//! [`Engines`] starts them together and is what the operations reach them through.

pub(crate) mod alarms;
pub(crate) mod http_sender;
pub(crate) mod insights;
pub(crate) mod metric_filters;
pub(crate) mod notify;
pub(crate) mod queries;
pub(crate) mod subscriptions;

use std::sync::Arc;

use nettrail_store::LogStore;

use crate::config::ServerConfig;

use alarms::Alarms;
use insights::Insights;
use metric_filters::MetricEngine;
use queries::Queries;
use subscriptions::Hub;

/// The running engines of a server.
#[derive(Clone)]
pub(crate) struct Engines {
    pub(crate) subscriptions: Arc<Hub>,
    pub(crate) metric_filters: Arc<MetricEngine>,
    pub(crate) alarms: Arc<Alarms>,
    pub(crate) queries: Arc<Queries>,
    pub(crate) insights: Arc<Insights>,
}

impl Engines {
    /// Checks what the engines need of the configuration (alarms, SMTP) before anything
    /// starts; the error says what is wrong.
    pub(crate) fn check_config(config: &ServerConfig) -> Result<(), String> {
        alarms::validate(config)?;
        notify::check_smtp(&config.smtp)
    }

    /// Starts every engine on `store`: a delivery task per subscription filter, a
    /// counting task per group with metric filters, the alarm evaluator. Must be called
    /// from within the server's runtime.
    pub(crate) fn start(
        store: Arc<dyn LogStore>,
        config: Arc<ServerConfig>,
    ) -> Result<Engines, String> {
        let subscriptions = Hub::start(Arc::clone(&store), Arc::clone(&config))?;
        let metric_filters = MetricEngine::start(Arc::clone(&store));
        let queries = Arc::new(Queries::new(Arc::clone(&store), &config));
        let insights = Arc::new(Insights::new(
            Arc::clone(&store),
            config.insights.clone(),
            config.account_id.clone(),
            config.insights.sql.then(|| queries.engine().clone()),
        ));
        let alarms = Alarms::start(store, config, subscriptions.http_sender());
        Ok(Engines {
            subscriptions,
            metric_filters,
            alarms,
            queries,
            insights,
        })
    }

    /// Stops the delivery and counting tasks and the running Insights queries; the
    /// alarm evaluator ends with the runtime.
    pub(crate) fn shutdown(&self) {
        self.subscriptions.shutdown();
        self.metric_filters.shutdown();
        self.insights.stop_all();
    }
}
