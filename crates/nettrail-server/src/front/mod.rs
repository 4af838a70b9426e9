//! The HTTP front: connections (HTTP/1.1 and HTTP/2, idle and header timeouts, a cap
//! on connections), admission (`admission.rs`), SigV4 (`auth.rs`), and routing: AWS
//! JSON 1.1 requests (`POST /` with `X-Amz-Target`) to the operation table
//! ([`LogsApi`]) on a blocking thread, StartLiveTail to its stream, the Firehose
//! endpoint to its receiver, and `GET /metrics` and `GET /health`. A handler that panics
//! is answered 500; the front never runs an operation itself.

mod admission;
mod auth;
mod idle;
mod response;

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::api::athena::{self, ATHENA_TARGET_PREFIX};
use crate::api::firehose::{self, FirehoseReceiver};
use crate::api::live_tail::{self, ChannelBody};
use crate::api::nettrail::prometheus;
use crate::api::operations::LogsApi;
use crate::common::now_ms;
use crate::config::ServerConfig;
use crate::error::ApiError;

use admission::Gate;
use auth::{authenticate, Keys};
use idle::IdleTracked;
use response::{error_response, json_response, with_request_id};

/// The `X-Amz-Target` prefix of CloudWatch Logs operations.
const TARGET_PREFIX: &str = "Logs_20140328.";

/// Shared state of the HTTP front.
pub(crate) struct Front {
    api: Arc<LogsApi>,
    firehose: Arc<FirehoseReceiver>,
    config: Arc<ServerConfig>,
    keys: Keys,
    gate: Gate,
    /// Set when the server stops accepting connections: live tail sessions end.
    closing: tokio::sync::watch::Sender<bool>,
}

/// A response body: a whole one, or a live tail stream.
type ResponseBody = http_body_util::Either<Full<Bytes>, ChannelBody>;

impl Front {
    /// A front for `api` and `firehose`, with the limits and keys of `config`.
    pub(crate) fn new(
        api: Arc<LogsApi>,
        firehose: Arc<FirehoseReceiver>,
        config: Arc<ServerConfig>,
    ) -> Front {
        Front {
            keys: Keys::new(&config),
            gate: Gate::new(Arc::clone(&config)),
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
            let (parts, body, admission) = self
                .gate
                .admit(req, self.config.limits.max_body_bytes)
                .await?;
            authenticate(
                &self.keys,
                self.config.limits.signature_max_skew_secs,
                &parts,
                &body,
                "logs",
            )?;
            let api = Arc::clone(&self.api);
            let plan = tokio::task::spawn_blocking(move || live_tail::plan(api.context(), &body))
                .await
                .map_err(|e| ApiError::Internal(format!("Internal error: {e}")))??;
            drop(admission);
            Ok::<_, ApiError>(plan)
        }
        .await;
        let response = match planned {
            Ok(plan) => {
                let body = live_tail::start(
                    Arc::clone(&self.api.context().store),
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
            let page = tokio::task::spawn_blocking(move || {
                let context = api.context();
                prometheus::render(context.store.as_ref(), &context.engines, now_ms())
            })
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
        // Athena's REST-JSON protocol names the operation by method and path; every
        // other operation comes as POST / with X-Amz-Target.
        let rest = athena::rest_route(req.method(), req.uri().path(), req.uri().query());
        let operation = match &rest {
            Some(route) => Some(format!("{ATHENA_TARGET_PREFIX}{}", route.operation)),
            None => req
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .map(|t| t.strip_prefix(TARGET_PREFIX).unwrap_or(t).to_owned()),
        };
        let rest_members = rest.map(|route| route.members);
        // A request is handled in its own task so that a panic becomes a 500 answer
        // instead of a dropped connection.
        let task = tokio::spawn(Arc::clone(&self).dispatch(req, operation.clone(), rest_members));
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
        rest_members: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<serde_json::Value, ApiError> {
        if rest_members.is_none() && (req.method() != Method::POST || req.uri().path() != "/") {
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
        let (parts, body, _admission) = self
            .gate
            .admit(req, self.config.limits.max_body_bytes)
            .await?;

        // Athena's operations are signed for their own service.
        let service = if operation.starts_with(ATHENA_TARGET_PREFIX) {
            "athena"
        } else {
            "logs"
        };
        authenticate(
            &self.keys,
            self.config.limits.signature_max_skew_secs,
            &parts,
            &body,
            service,
        )?;
        let body = match rest_members {
            Some(members) => Bytes::from(athena::merge_rest_members(&body, members)?),
            None => body,
        };
        let api = Arc::clone(&self.api);
        tokio::task::spawn_blocking(move || api.call(&operation, &body))
            .await
            .map_err(|e| ApiError::Internal(format!("Internal error: {e}")))?
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
        let (status, answer) = match self.gate.admit(req, settings.max_body_bytes).await {
            Err(e) => (
                if matches!(e, ApiError::RequestTooLarge(_)) {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    e.status()
                },
                firehose::refusal(&header_request_id, e.to_string()),
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
                        firehose::refusal(&header_request_id, format!("internal error: {e}")),
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
}
