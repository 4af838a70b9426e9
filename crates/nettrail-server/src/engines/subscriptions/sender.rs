//! Sending one subscription document to its destination and waiting for the
//! acknowledgement: an HTTP 2xx, an fsync of the file, a JetStream ack, or every
//! endpoint of a notification topic.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use nettrail_formats::subscription::{MessageType, SubscriptionMessage};

use crate::config::ServerConfig;
use crate::engines::http_sender::HttpSender;
use crate::engines::notify;

use super::destination::{destination_label, Destination};

/// Delivers documents to destinations.
#[derive(Clone)]
pub(crate) struct Sender {
    pub(crate) http: HttpSender,
    pub(crate) config: Arc<ServerConfig>,
    /// JetStream contexts by server URL, connected on first use (and reconnecting by
    /// themselves when a connection drops).
    pub(crate) nats: Arc<tokio::sync::Mutex<HashMap<String, async_nats::jetstream::Context>>>,
}

impl Sender {
    /// Sends one document; Ok once the destination has acknowledged it.
    pub(crate) async fn send(
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
                notify::send(name, topic, &self.config.smtp, message, &self.http).await
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
