//! Admission: a request takes a processing slot and reserves memory for its body
//! before the body is read, and is throttled when neither comes in time, so a flood of
//! requests waits and then is refused instead of growing the heap.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::error::ApiError;

/// A request's processing slot and body memory, released when dropped.
pub(super) struct Admission {
    _slot: tokio::sync::OwnedSemaphorePermit,
    _memory: tokio::sync::OwnedSemaphorePermit,
}

/// The slots and memory requests share.
pub(super) struct Gate {
    config: Arc<ServerConfig>,
    in_flight: Arc<Semaphore>,
    buffered_bytes: Arc<Semaphore>,
}

impl Gate {
    /// A gate sized by the configuration's limits.
    pub(super) fn new(config: Arc<ServerConfig>) -> Gate {
        let limits = &config.limits;
        let buffered = limits.max_buffered_bytes.min(Semaphore::MAX_PERMITS);
        Gate {
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            buffered_bytes: Arc::new(Semaphore::new(buffered)),
            config,
        }
    }

    /// Admits a request (a processing slot, memory for its body) and reads its body of
    /// at most `max_body_bytes`; a flood waits, then is throttled, instead of growing
    /// the heap. The returned guard holds the slot and the memory.
    pub(super) async fn admit(
        &self,
        req: Request<Incoming>,
        max_body_bytes: usize,
    ) -> Result<(http::request::Parts, Bytes, Admission), ApiError> {
        let limits = &self.config.limits;
        let slot = tokio::time::timeout(
            limits.throttle_wait(),
            Arc::clone(&self.in_flight).acquire_owned(),
        )
        .await
        .map_err(|_| ApiError::Throttling("Rate exceeded".into()))?
        .expect("never closed");

        let (parts, body) = req.into_parts();
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let too_large = || {
            ApiError::RequestTooLarge(format!(
                "Request body exceeds the limit of {max_body_bytes} bytes."
            ))
        };
        if declared.is_some_and(|n| n > max_body_bytes) {
            return Err(too_large());
        }
        let reserve = declared
            .unwrap_or(max_body_bytes)
            .clamp(1, u32::MAX as usize) as u32;
        let memory = tokio::time::timeout(
            limits.throttle_wait(),
            Arc::clone(&self.buffered_bytes).acquire_many_owned(reserve),
        )
        .await
        .map_err(|_| ApiError::Throttling("Rate exceeded".into()))?
        .map_err(|_| ApiError::Throttling("Rate exceeded".into()))?;
        let body = tokio::time::timeout(
            Duration::from_secs(limits.body_read_timeout_secs),
            Limited::new(body, max_body_bytes).collect(),
        )
        .await
        .map_err(|_| ApiError::RequestTimeout("The request body did not arrive in time.".into()))?
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                too_large()
            } else {
                ApiError::Serialization(format!("Could not read the request body: {e}"))
            }
        })?
        .to_bytes();
        Ok((
            parts,
            body,
            Admission {
                _slot: slot,
                _memory: memory,
            },
        ))
    }
}
