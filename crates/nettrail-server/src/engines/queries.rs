//! SQL query executions, as Athena runs them: a query is started, runs in the
//! background on the server's runtime, and is looked at, paged through or stopped by
//! its id. The executions and their results are held in memory (the newest
//! `retained_executions`), so they do not outlive the server.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use nettrail_query::{QueryEngine, QueryError, QueryOptions, QueryOutput};
use nettrail_store::LogStore;

use crate::config::ServerConfig;

/// An execution's state, as Athena names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl QueryState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            QueryState::Queued => "QUEUED",
            QueryState::Running => "RUNNING",
            QueryState::Succeeded => "SUCCEEDED",
            QueryState::Failed => "FAILED",
            QueryState::Cancelled => "CANCELLED",
        }
    }

    fn is_done(self) -> bool {
        matches!(
            self,
            QueryState::Succeeded | QueryState::Failed | QueryState::Cancelled
        )
    }
}

/// Why a query failed, in Athena's terms.
#[derive(Debug, Clone)]
pub(crate) struct QueryFailure {
    /// 1 system, 2 user, 3 other.
    pub(crate) category: u8,
    pub(crate) message: String,
}

/// What changes as an execution runs.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    pub(crate) state: QueryState,
    pub(crate) failure: Option<QueryFailure>,
    /// Unix seconds.
    pub(crate) completed: Option<f64>,
    pub(crate) engine_ms: u64,
    pub(crate) output: Option<Arc<QueryOutput>>,
}

/// One query execution.
#[derive(Debug)]
pub(crate) struct Execution {
    pub(crate) id: String,
    pub(crate) query: String,
    pub(crate) database: String,
    pub(crate) catalog: String,
    pub(crate) work_group: String,
    pub(crate) output_location: Option<String>,
    /// Unix seconds.
    pub(crate) submitted: f64,
    progress: Mutex<Progress>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Execution {
    pub(crate) fn progress(&self) -> Progress {
        self.progress.lock().expect("progress lock").clone()
    }
}

/// What a new execution is.
pub(crate) struct NewExecution {
    pub(crate) query: String,
    pub(crate) database: String,
    pub(crate) catalog: String,
    pub(crate) work_group: String,
    pub(crate) output_location: Option<String>,
    pub(crate) client_request_token: Option<String>,
}

/// Why an execution could not start.
pub(crate) enum StartError {
    /// `max_concurrent` queries are running.
    TooMany(usize),
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<String, Arc<Execution>>,
    /// Ids, oldest first.
    order: VecDeque<String>,
    /// Client request tokens to the execution they started.
    tokens: HashMap<String, String>,
}

/// The query executions of a server.
pub(crate) struct Queries {
    engine: QueryEngine,
    max_concurrent: usize,
    retained: usize,
    registry: Mutex<Registry>,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}

impl Queries {
    pub(crate) fn new(store: Arc<dyn LogStore>, config: &ServerConfig) -> Queries {
        let settings = &config.queries;
        let options = QueryOptions {
            account_id: config.account_id.clone(),
            region: config.region.clone(),
            memory_limit: settings.memory_limit_bytes,
            max_result_rows: settings.max_result_rows,
            ..QueryOptions::default()
        };
        Queries {
            engine: QueryEngine::new(store, options),
            max_concurrent: settings.max_concurrent.max(1),
            retained: settings.retained_executions.max(1),
            registry: Mutex::new(Registry::default()),
        }
    }

    /// Starts an execution on `runtime` (or returns the one its client request token
    /// started before).
    pub(crate) fn start(
        self: &Arc<Self>,
        new: NewExecution,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Arc<Execution>, StartError> {
        let mut registry = self.registry.lock().expect("registry lock");
        if let Some(id) = new
            .client_request_token
            .as_ref()
            .and_then(|t| registry.tokens.get(t))
        {
            if let Some(existing) = registry.by_id.get(id) {
                return Ok(Arc::clone(existing));
            }
        }
        let running = registry
            .by_id
            .values()
            .filter(|e| !e.progress().state.is_done())
            .count();
        if running >= self.max_concurrent {
            return Err(StartError::TooMany(self.max_concurrent));
        }
        let execution = Arc::new(Execution {
            id: uuid::Uuid::new_v4().to_string(),
            query: new.query,
            database: new.database,
            catalog: new.catalog,
            work_group: new.work_group,
            output_location: new.output_location,
            submitted: unix_now(),
            progress: Mutex::new(Progress {
                state: QueryState::Queued,
                failure: None,
                completed: None,
                engine_ms: 0,
                output: None,
            }),
            task: Mutex::new(None),
        });
        if let Some(token) = new.client_request_token {
            registry.tokens.insert(token, execution.id.clone());
        }
        registry
            .by_id
            .insert(execution.id.clone(), Arc::clone(&execution));
        registry.order.push_back(execution.id.clone());
        self.forget_old(&mut registry);
        drop(registry);

        let engine = self.engine.clone();
        let running = Arc::clone(&execution);
        let handle = runtime.spawn(async move {
            let started = Instant::now();
            running.progress.lock().expect("progress lock").state = QueryState::Running;
            tracing::debug!(query_execution_id = %running.id, "query started");
            let result = engine.run(&running.query).await;
            let mut progress = running.progress.lock().expect("progress lock");
            if progress.state == QueryState::Cancelled {
                return;
            }
            progress.engine_ms = started.elapsed().as_millis() as u64;
            progress.completed = Some(unix_now());
            match result {
                Ok(output) => {
                    progress.state = QueryState::Succeeded;
                    progress.output = Some(Arc::new(output));
                }
                Err(e) => {
                    tracing::debug!(query_execution_id = %running.id, error = %e, "query failed");
                    progress.state = QueryState::Failed;
                    progress.failure = Some(QueryFailure {
                        category: match e {
                            QueryError::Invalid(_) => 2,
                            QueryError::Failed(_) | QueryError::Cancelled => 1,
                        },
                        message: e.to_string(),
                    });
                }
            }
        });
        *execution.task.lock().expect("task lock") = Some(handle.abort_handle());
        Ok(execution)
    }

    /// Drops the oldest finished executions beyond the retained number.
    fn forget_old(&self, registry: &mut Registry) {
        let forgotten = crate::common::forget_oldest_done(
            &mut registry.order,
            &mut registry.by_id,
            self.retained,
            |e| e.progress().state.is_done(),
        );
        registry.tokens.retain(|_, v| !forgotten.contains(v));
    }

    /// The SQL engine, for the Logs Insights queries it can answer.
    pub(crate) fn engine(&self) -> &QueryEngine {
        &self.engine
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Execution>> {
        self.registry
            .lock()
            .expect("registry lock")
            .by_id
            .get(id)
            .cloned()
    }

    /// Stops an execution; one already finished stays as it is.
    pub(crate) fn stop(&self, execution: &Execution) {
        let mut progress = execution.progress.lock().expect("progress lock");
        if progress.state.is_done() {
            return;
        }
        progress.state = QueryState::Cancelled;
        progress.completed = Some(unix_now());
        if let Some(task) = execution.task.lock().expect("task lock").take() {
            task.abort();
        }
    }

    /// Execution ids, newest first.
    pub(crate) fn ids(&self) -> Vec<String> {
        let registry = self.registry.lock().expect("registry lock");
        registry.order.iter().rev().cloned().collect()
    }
}
