//! The HTTP front: connections, limits, authentication and dispatch of AWS JSON 1.1
//! requests (`POST /` with `X-Amz-Target: Logs_20140328.<Operation>`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use nettrail_sigv4::{RequestParts, SecretLookup};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::live_tail::{self, ChannelBody};
use crate::logs_api::LogsApi;

const TARGET_PREFIX: &str = "Logs_20140328.";
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// A request's processing slot and body memory, released when dropped.
struct Admission {
    _slot: tokio::sync::OwnedSemaphorePermit,
    _memory: tokio::sync::OwnedSemaphorePermit,
}

/// Shared state of the HTTP front.
pub(crate) struct Front {
    pub(crate) api: Arc<LogsApi>,
    pub(crate) firehose: Arc<crate::firehose::FirehoseReceiver>,
    pub(crate) config: Arc<ServerConfig>,
    keys: Keys,
    in_flight: Arc<Semaphore>,
    buffered_bytes: Arc<Semaphore>,
    /// Set when the server stops accepting connections: live tail sessions end.
    closing: tokio::sync::watch::Sender<bool>,
}

/// A response body: a whole one, or a live tail stream.
type ResponseBody = http_body_util::Either<Full<Bytes>, ChannelBody>;

/// The configured access keys; empty means any credentials are accepted.
struct Keys(HashMap<String, String>);

impl SecretLookup for Keys {
    fn secret(&self, access_key_id: &str) -> Option<&str> {
        self.0.get(access_key_id).map(String::as_str)
    }
}

impl Front {
    pub(crate) fn new(
        api: Arc<LogsApi>,
        firehose: Arc<crate::firehose::FirehoseReceiver>,
        config: Arc<ServerConfig>,
    ) -> Front {
        let keys = config
            .access_keys
            .iter()
            .map(|k| (k.access_key_id.clone(), k.secret_access_key.clone()))
            .collect();
        let limits = &config.limits;
        let buffered = limits.max_buffered_bytes.min(Semaphore::MAX_PERMITS);
        Front {
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            buffered_bytes: Arc::new(Semaphore::new(buffered)),
            keys: Keys(keys),
            api,
            firehose,
            config,
            closing: tokio::sync::watch::channel(false).0,
        }
    }

    /// Serves connections from `listener` until `shutdown` resolves, then lets open
    /// requests finish (up to `drain`).
    pub(crate) async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        drain: Duration,
    ) {
        let connections = Arc::new(Semaphore::new(self.config.limits.max_connections));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(
                self.config.limits.header_read_timeout_secs,
            ));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                permit = Arc::clone(&connections).acquire_owned() => permit.expect("never closed"),
            };
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let started = Instant::now();
            let activity = Arc::new(AtomicU64::new(0));
            let io = TokioIo::new(IdleTracked {
                inner: stream,
                started,
                activity: Arc::clone(&activity),
            });
            let front = Arc::clone(&self);
            let service = hyper::service::service_fn(move |req| {
                let front = Arc::clone(&front);
                async move { Ok::<_, Infallible>(front.route(req).await) }
            });
            let conn = builder.serve_connection(io, service).into_owned();
            let conn = graceful.watch(conn);
            let idle_timeout = Duration::from_secs(self.config.limits.idle_timeout_secs);
            tokio::spawn(async move {
                let _permit = permit;
                tokio::pin!(conn);
                let mut tick = tokio::time::interval(Duration::from_secs(1).min(idle_timeout));
                loop {
                    tokio::select! {
                        result = &mut conn => {
                            if let Err(e) = result {
                                tracing::debug!(%peer, error = %e, "connection ended with an error");
                            }
                            return;
                        }
                        _ = tick.tick() => {
                            let last = Duration::from_millis(activity.load(Ordering::Relaxed));
                            if started.elapsed().saturating_sub(last) > idle_timeout {
                                tracing::debug!(%peer, "closing idle connection");
                                return;
                            }
                        }
                    }
                }
            });
        }
        drop(listener);
        self.closing.send_replace(true);
        tracing::info!("no longer accepting connections; draining open requests");
        if tokio::time::timeout(drain, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                drain_secs = drain.as_secs(),
                "requests still open after the drain period"
            );
        }
    }

    /// StartLiveTail streams its answer; everything else is answered whole.
    async fn route(self: Arc<Self>, req: Request<Incoming>) -> Response<ResponseBody> {
        let live_tail = req.method() == Method::POST
            && req.uri().path() == "/"
            && req
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .and_then(|t| t.strip_prefix(TARGET_PREFIX))
                == Some("StartLiveTail");
        if live_tail {
            return self.live_tail(req).await;
        }
        self.handle(req).await.map(http_body_util::Either::Left)
    }

    /// StartLiveTail: the request is admitted, authenticated and validated like any
    /// other (errors answered as JSON), then its slot is released and the session
    /// streams for as long as the client stays.
    async fn live_tail(self: Arc<Self>, req: Request<Incoming>) -> Response<ResponseBody> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let planned = async {
            let (parts, body, admission) =
                self.admit(req, self.config.limits.max_body_bytes).await?;
            if !self.keys.0.is_empty() {
                self.authenticate(&parts, &body)?;
            }
            let api = Arc::clone(&self.api);
            let plan = tokio::task::spawn_blocking(move || api.live_tail_plan(&body))
                .await
                .map_err(|e| ApiError::Internal(format!("Internal error: {e}")))??;
            drop(admission);
            Ok::<_, ApiError>(plan)
        }
        .await;
        let response = match planned {
            Ok(plan) => {
                let body = live_tail::start(
                    self.api.store(),
                    plan,
                    request_id.clone(),
                    self.closing.subscribe(),
                );
                let mut response = Response::new(http_body_util::Either::Right(body));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/vnd.amazon.eventstream"),
                );
                response
            }
            Err(err) => error_response(&err).map(http_body_util::Either::Left),
        };
        let mut response = response;
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-amzn-requestid", value);
        }
        response
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        if req.method() == Method::POST && req.uri().path() == self.config.firehose.path {
            return with_request_id(Arc::clone(&self).firehose(req).await, &request_id);
        }
        if req.method() == Method::GET && req.uri().path() == "/metrics" {
            let api = Arc::clone(&self.api);
            let page = tokio::task::spawn_blocking(move || api.prometheus_metrics())
                .await
                .unwrap_or_default();
            let mut response = Response::new(Full::new(Bytes::from(page)));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return with_request_id(response, &request_id);
        }
        if req.method() == Method::GET && req.uri().path() == "/health" {
            return with_request_id(
                Response::new(Full::new(Bytes::from_static(b"ok\n"))),
                &request_id,
            );
        }
        let operation = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .map(|t| t.strip_prefix(TARGET_PREFIX).unwrap_or(t).to_owned());
        // A request is handled in its own task so that a panic becomes a 500 answer
        // instead of a dropped connection.
        let task = tokio::spawn(Arc::clone(&self).dispatch(req, operation.clone()));
        let result = match task.await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(request_id, error = %e, "request handler panicked");
                Err(ApiError::Internal(format!(
                    "Internal error; request id {request_id}."
                )))
            }
        };
        let op = operation.as_deref().unwrap_or("-");
        let elapsed_us = started.elapsed().as_micros() as u64;
        let response = match result {
            Ok(body) => {
                tracing::debug!(request_id, operation = op, elapsed_us, "request handled");
                json_response(StatusCode::OK, body.to_string())
            }
            Err(err) => {
                let status = err.status();
                if status.is_server_error() {
                    tracing::error!(request_id, operation = op, code = err.code(), error = %err, "request failed");
                } else {
                    tracing::debug!(request_id, operation = op, code = err.code(), error = %err, "request refused");
                }
                error_response(&err)
            }
        };
        with_request_id(response, &request_id)
    }

    async fn dispatch(
        self: Arc<Self>,
        req: Request<Incoming>,
        operation: Option<String>,
    ) -> Result<serde_json::Value, ApiError> {
        if req.method() != Method::POST || req.uri().path() != "/" {
            return Err(ApiError::UnknownOperation(format!(
                "No operation at {} {}; the API is POST / with an X-Amz-Target header.",
                req.method(),
                req.uri().path()
            )));
        }
        let Some(operation) = operation else {
            return Err(ApiError::UnknownOperation(
                "Missing X-Amz-Target header.".into(),
            ));
        };
        let (parts, body, _admission) = self.admit(req, self.config.limits.max_body_bytes).await?;

        if !self.keys.0.is_empty() {
            self.authenticate(&parts, &body)?;
        }
        let api = Arc::clone(&self.api);
        tokio::task::spawn_blocking(move || api.call(&operation, &body))
            .await
            .map_err(|e| ApiError::Internal(format!("Internal error: {e}")))?
    }

    /// Admits a request (a processing slot, memory for its body) and reads its body of
    /// at most `max_body_bytes`; a flood waits, then is throttled, instead of growing
    /// the heap. The returned guard holds the slot and the memory.
    async fn admit(
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

    /// A Firehose HTTP endpoint delivery: answered in the protocol's own shape.
    async fn firehose(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let header_request_id = req
            .headers()
            .get(nettrail_formats::firehose::REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let settings = &self.config.firehose;
        let (status, answer) = match self.admit(req, settings.max_body_bytes).await {
            Err(e) => (
                if matches!(e, ApiError::RequestTooLarge(_)) {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    e.status()
                },
                crate::firehose::refusal(&header_request_id, e.to_string()),
            ),
            Ok((parts, body, admission)) => {
                let receiver = Arc::clone(&self.firehose);
                let answer = tokio::task::spawn_blocking(move || {
                    let _admission = admission;
                    receiver.receive(&parts.headers, &body)
                })
                .await;
                match answer {
                    Ok(answer) => answer,
                    Err(e) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        crate::firehose::refusal(
                            &header_request_id,
                            format!("internal error: {e}"),
                        ),
                    ),
                }
            }
        };
        let mut response = Response::new(Full::new(Bytes::from(answer.to_json())));
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }

    fn authenticate(&self, parts: &http::request::Parts, body: &[u8]) -> Result<(), ApiError> {
        let headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
            .collect();
        let computed;
        let payload_hash = match parts
            .headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
        {
            Some("UNSIGNED-PAYLOAD") => "UNSIGNED-PAYLOAD",
            Some(claimed) => {
                computed = nettrail_sigv4::sha256_hex(body);
                if !claimed.eq_ignore_ascii_case(&computed) {
                    return Err(ApiError::Auth(nettrail_sigv4::SigV4Error::Mismatch));
                }
                claimed
            }
            None => {
                computed = nettrail_sigv4::sha256_hex(body);
                &computed
            }
        };
        let request = RequestParts {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
            payload_hash,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        nettrail_sigv4::verify(
            &request,
            "logs",
            &self.keys,
            now,
            self.config.limits.signature_max_skew_secs,
        )?;
        Ok(())
    }
}

/// An error as AWS JSON 1.1 answers it.
fn error_response(err: &ApiError) -> Response<Full<Bytes>> {
    let mut response = json_response(err.status(), err.body().to_string());
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(err.code()));
    response
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

fn with_request_id(mut response: Response<Full<Bytes>>, request_id: &str) -> Response<Full<Bytes>> {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// A TCP stream that records when it last moved bytes (ms since the connection began),
/// so idle connections can be closed.
struct IdleTracked {
    inner: TcpStream,
    started: Instant,
    activity: Arc<AtomicU64>,
}

impl IdleTracked {
    fn touch(&self) {
        self.activity
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for IdleTracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.touch();
        }
        result
    }
}

impl AsyncWrite for IdleTracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
