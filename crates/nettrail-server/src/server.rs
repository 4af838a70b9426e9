//! [`Server`]: opening the store, starting the engines, binding the listener, and
//! running the front until shutdown, then flushing the store.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use nettrail_store::{FileStore, LogStore};

use crate::api::firehose::FirehoseReceiver;
use crate::api::operations::LogsApi;
use crate::config::ServerConfig;
use crate::engines::Engines;
use crate::front::Front;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Without access keys the server must not be reachable from other machines.
    #[error("refusing to listen on {0} without access keys: anyone who can reach it could read and write logs. Configure access_keys in the config file or set NETTRAIL_ACCESS_KEY_ID and NETTRAIL_SECRET_ACCESS_KEY, or listen on a loopback address")]
    InsecureListen(SocketAddr),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An option of the configuration cannot be used.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The store could not be opened.
    #[error("cannot open the store")]
    Store(#[from] nettrail_store::StoreError),
}

/// A server bound to its address with its store open, ready to run.
pub struct Server {
    config: Arc<ServerConfig>,
    store: FileStore,
    listener: tokio::net::TcpListener,
    engines: Engines,
}

impl Server {
    /// Checks the configuration, opens the store and binds the listener.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServeError> {
        if config.access_keys.is_empty() && !config.listen.ip().is_loopback() {
            return Err(ServeError::InsecureListen(config.listen));
        }
        Engines::check_config(&config).map_err(ServeError::Config)?;
        let store_config = config.store_config().map_err(ServeError::Config)?;
        let store = tokio::task::spawn_blocking(move || FileStore::open(store_config))
            .await
            .expect("store open does not panic")?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.listen,
                source,
            })?;
        let config = Arc::new(config);
        let shared: Arc<dyn LogStore> = Arc::new(store.clone());
        let engines = Engines::start(shared, Arc::clone(&config)).map_err(ServeError::Config)?;
        Ok(Server {
            config,
            store,
            listener,
            engines,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, lets open requests finish, then flushes and
    /// closes the store.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        if self.config.access_keys.is_empty() {
            tracing::warn!(
                listen = %self.local_addr(),
                "no access keys configured: accepting any credentials (loopback only)"
            );
        }
        tracing::info!(
            listen = %self.local_addr(),
            data_dir = %self.config.data_dir.display(),
            "nettrail serving the CloudWatch Logs API"
        );
        let store: Arc<dyn LogStore> = Arc::new(self.store.clone());
        let engines = self.engines;
        let api = Arc::new(LogsApi::new(
            Arc::clone(&store),
            Arc::clone(&self.config),
            engines.clone(),
        ));
        let firehose = Arc::new(FirehoseReceiver::new(store, Arc::clone(&self.config)));
        if self.config.firehose.access_keys.is_empty() {
            tracing::info!(path = %self.config.firehose.path, "firehose receiver refuses every delivery: no firehose access key configured");
        }
        let front = Arc::new(Front::new(api, firehose, Arc::clone(&self.config)));
        front
            .serve(self.listener, shutdown, Duration::from_secs(10))
            .await;
        engines.shutdown();
        let store = self.store;
        let _ = tokio::task::spawn_blocking(move || store.shutdown()).await;
        tracing::info!("store flushed; shut down cleanly");
    }
}
