//! A client of nettrail's API, for the CLI, the importer, the agents and the benches:
//! SigV4-signed AWS JSON 1.1 calls (`POST /` with `X-Amz-Target`), with credentials and
//! region found the way the AWS CLI finds them, and retries of what the server says is
//! safe to retry; and an S3 bucket with the same credentials ([`s3`]).

mod credentials;
pub mod s3;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub use credentials::{resolve_profile, AwsProfile, CredentialsError};
pub use nettrail_sigv4::Credentials;

/// The endpoint the CLI talks to unless told otherwise.
pub const DEFAULT_ENDPOINT_URL: &str = "http://127.0.0.1:9750";

/// The `X-Amz-Target` prefix of the CloudWatch Logs operations.
pub const LOGS_TARGET_PREFIX: &str = "Logs_20140328.";

/// The `X-Amz-Target` prefix of nettrail's own operations.
pub const NETTRAIL_TARGET_PREFIX: &str = "Nettrail_20261123.";

/// The `X-Amz-Target` prefix of Athena's operations.
pub const ATHENA_TARGET_PREFIX: &str = "AmazonAthena.";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint URL cannot be used.
    #[error("invalid endpoint URL {url:?}: {reason}")]
    InvalidEndpoint {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The server could not be reached or the connection failed.
    #[error("cannot reach {endpoint}")]
    Connection {
        /// The endpoint.
        endpoint: String,
        /// What failed (in the error's source chain).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server answered with an error.
    #[error("{operation} failed: {code}: {message}")]
    Api {
        /// The operation.
        operation: String,
        /// HTTP status.
        status: u16,
        /// The error's `__type` (`ResourceNotFoundException`).
        code: String,
        /// The error's message.
        message: String,
    },
    /// The server's answer is not the JSON it should be.
    #[error("{operation}: the server's answer is not JSON: {source}")]
    BadResponse {
        /// The operation.
        operation: String,
        /// Why.
        source: serde_json::Error,
    },
}

impl ClientError {
    /// The error's `__type` when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether retrying the same request can succeed and cannot do harm: the server was
    /// not reached, or it said it did nothing (throttled, unavailable).
    fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connection { .. } => true,
            ClientError::Api { code, status, .. } => {
                code == "ThrottlingException"
                    || code == "ServiceUnavailableException"
                    || *status == 503
            }
            _ => false,
        }
    }
}

/// A connection pool to one endpoint, with the credentials to sign with.
#[derive(Clone)]
pub struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    endpoint: String,
    host: String,
    credentials: Credentials,
    region: String,
    /// Attempts for a retryable failure (1 = no retry).
    attempts: u32,
}

impl Client {
    /// A client of `endpoint_url` (`http://host:port`) signing with `credentials` for
    /// `region`.
    pub fn new(
        endpoint_url: &str,
        credentials: Credentials,
        region: &str,
    ) -> Result<Client, ClientError> {
        let invalid = |reason| ClientError::InvalidEndpoint {
            url: endpoint_url.to_owned(),
            reason,
        };
        let endpoint = endpoint_url.trim_end_matches('/');
        let rest = endpoint.strip_prefix("http://").ok_or_else(|| {
            invalid("only http:// endpoints are supported (put TLS in front with a proxy)")
        })?;
        if rest.is_empty() || rest.contains('/') {
            return Err(invalid("expected http://HOST[:PORT] with no path"));
        }
        Ok(Client {
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
            endpoint: endpoint.to_owned(),
            host: rest.to_owned(),
            credentials,
            region: region.to_owned(),
            attempts: 6,
        })
    }

    /// A client for the endpoint with credentials and region from the AWS environment
    /// and the named (or default) profile.
    pub fn from_environment(
        endpoint_url: &str,
        profile: Option<&str>,
    ) -> Result<Client, Box<dyn std::error::Error + Send + Sync>> {
        let profile = resolve_profile(profile)?;
        Ok(Client::new(
            endpoint_url,
            profile.credentials,
            &profile.region,
        )?)
    }

    /// How many times a retryable failure is attempted (default 6, with exponential
    /// backoff and jitter from 100 ms).
    pub fn with_attempts(mut self, attempts: u32) -> Client {
        self.attempts = attempts.max(1);
        self
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Calls a CloudWatch Logs operation (`PutLogEvents`) with a JSON body.
    pub async fn logs(&self, operation: &str, body: &Value) -> Result<Value, ClientError> {
        self.call_json(&format!("{LOGS_TARGET_PREFIX}{operation}"), body)
            .await
    }

    /// Calls an Athena operation (`StartQueryExecution`) with a JSON body, signed for
    /// the `athena` service.
    pub async fn athena(&self, operation: &str, body: &Value) -> Result<Value, ClientError> {
        self.call_json(&format!("{ATHENA_TARGET_PREFIX}{operation}"), body)
            .await
    }

    /// Calls one of nettrail's own operations (`ImportLogEvents`) with a JSON body.
    pub async fn nettrail(&self, operation: &str, body: &Value) -> Result<Value, ClientError> {
        self.call_json(&format!("{NETTRAIL_TARGET_PREFIX}{operation}"), body)
            .await
    }

    /// Calls one of nettrail's own operations with a body already serialised as JSON
    /// (for bulk requests, where building a `Value` tree would cost more than the call).
    pub async fn nettrail_raw(&self, operation: &str, body: Vec<u8>) -> Result<Value, ClientError> {
        self.call_bytes(
            &format!("{NETTRAIL_TARGET_PREFIX}{operation}"),
            Bytes::from(body),
        )
        .await
    }

    async fn call_json(&self, target: &str, body: &Value) -> Result<Value, ClientError> {
        let body = Bytes::from(serde_json::to_vec(body).expect("a JSON value serialises"));
        self.call_bytes(target, body).await
    }

    async fn call_bytes(&self, target: &str, body: Bytes) -> Result<Value, ClientError> {
        let hash = nettrail_sigv4::sha256_hex(&body);
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            match self.call_once(target, body.clone(), &hash).await {
                Err(e) if attempt < self.attempts && e.is_retryable() => {
                    tracing::debug!(target, attempt, error = %e, "retrying");
                    tokio::time::sleep(delay + jitter(delay)).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn call_once(&self, target: &str, body: Bytes, hash: &str) -> Result<Value, ClientError> {
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        let (status, bytes) = self.call_raw(target, body, hash).await?;
        if status == 200 {
            return serde_json::from_slice(&bytes)
                .map_err(|source| ClientError::BadResponse { operation, source });
        }
        let error: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = error["__type"]
            .as_str()
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned());
        let message = error["message"]
            .as_str()
            .or_else(|| error["Message"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        Err(ClientError::Api {
            operation,
            status,
            code: code.unwrap_or_else(|| format!("HTTP {status}")),
            message,
        })
    }

    /// Sends one signed request with a body whose SHA-256 (hex) is `body_hash`, and
    /// returns the status and body, without retrying or interpreting them. For
    /// benchmarks that want to hash outside the timed part.
    pub async fn call_raw(
        &self,
        target: &str,
        body: Bytes,
        body_hash: &str,
    ) -> Result<(u16, Bytes), ClientError> {
        let headers = [
            ("host", self.host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target),
        ];
        let parts = nettrail_sigv4::RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            payload_hash: body_hash,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let service = if target.starts_with(ATHENA_TARGET_PREFIX) {
            "athena"
        } else {
            "logs"
        };
        let signed = nettrail_sigv4::sign(&parts, &self.credentials, &self.region, service, now);
        let mut request = hyper::Request::post(format!("{}/", self.endpoint));
        for (name, value) in headers.iter().skip(1) {
            request = request.header(*name, *value);
        }
        for (name, value) in &signed {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(body)).expect("valid request parts");
        let connection =
            |source: Box<dyn std::error::Error + Send + Sync>| ClientError::Connection {
                endpoint: self.endpoint.clone(),
                source,
            };
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| connection(Box::new(e)))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| connection(Box::new(e)))?
            .to_bytes();
        Ok((status, bytes))
    }
}

/// Up to half of `delay`, from the clock's low bits (enough to spread retries of
/// concurrent callers; not for anything that needs real randomness).
fn jitter(delay: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    delay.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        }
    }

    #[test]
    fn endpoints_must_be_plain_http_without_a_path() {
        assert!(Client::new("http://127.0.0.1:9750/", credentials(), "us-east-1").is_ok());
        let err = |url: &str| {
            Client::new(url, credentials(), "us-east-1")
                .err()
                .unwrap()
                .to_string()
        };
        assert!(err("https://logs.example").contains("only http://"));
        assert!(err("http://host/path").contains("no path"));
        assert!(err("127.0.0.1:9750").contains("only http://"));
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_connection_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = Client::new(
            &format!("http://127.0.0.1:{port}"),
            credentials(),
            "us-east-1",
        )
        .unwrap()
        .with_attempts(1);
        let err = client
            .logs("DescribeLogGroups", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Connection { .. }), "{err}");
    }
}
