//! API errors, and the one place where an error becomes an HTTP status and a CloudWatch
//! `__type`.

use http::StatusCode;
use nettrail_sigv4::SigV4Error;
use nettrail_store::StoreError;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter is invalid (Coral-style validation text, or AWS's own wording).
    #[error("{0}")]
    InvalidParameter(String),
    /// A log group, stream or policy does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// A log group or stream exists already.
    #[error("{0}")]
    ResourceAlreadyExists(String),
    /// A quota was reached.
    #[error("{0}")]
    LimitExceeded(String),
    /// A concurrent or conflicting modification.
    #[error("{0}")]
    OperationAborted(String),
    /// The request is valid but not allowed in the resource's current state.
    #[error("{0}")]
    Validation(String),
    /// A resource would get more than 50 tags.
    #[error("{message}")]
    TooManyTags {
        /// Text for the client.
        message: String,
        /// The resource.
        resource_name: String,
    },
    /// Athena: the request is invalid (a missing or unknown query execution, a bad
    /// page token, a query not finished).
    #[error("{0}")]
    InvalidRequest(String),
    /// Athena: too many queries at once.
    #[error("{0}")]
    TooManyRequests(String),
    /// A Logs Insights query that does not compile, with where (character offsets).
    #[error("{message}")]
    MalformedQuery {
        /// What is wrong.
        message: String,
        /// Start of the offending text.
        start: usize,
        /// End of the offending text.
        end: usize,
    },
    /// The server is busy; the client should retry later.
    #[error("{0}")]
    Throttling(String),
    /// The body is not a JSON object of the expected shape.
    #[error("{0}")]
    Serialization(String),
    /// The `X-Amz-Target` names no operation this server knows.
    #[error("{0}")]
    UnknownOperation(String),
    /// The body exceeds the configured limit.
    #[error("{0}")]
    RequestTooLarge(String),
    /// The request did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// A signature problem.
    #[error(transparent)]
    Auth(#[from] SigV4Error),
    /// The store could not serve the request (disk, corruption, shutdown).
    #[error("{0}")]
    ServiceUnavailable(String),
    /// A bug: a panic or an impossible state. Logged with the request id.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The CloudWatch error code (`__type` and `x-amzn-ErrorType`).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidParameter(_) => "InvalidParameterException",
            ApiError::ResourceNotFound(_) => "ResourceNotFoundException",
            ApiError::ResourceAlreadyExists(_) => "ResourceAlreadyExistsException",
            ApiError::LimitExceeded(_) => "LimitExceededException",
            ApiError::OperationAborted(_) => "OperationAbortedException",
            ApiError::Validation(_) => "ValidationException",
            ApiError::TooManyTags { .. } => "TooManyTagsException",
            ApiError::Throttling(_) => "ThrottlingException",
            ApiError::MalformedQuery { .. } => "MalformedQueryException",
            ApiError::InvalidRequest(_) => "InvalidRequestException",
            ApiError::TooManyRequests(_) => "TooManyRequestsException",
            ApiError::Serialization(_) => "SerializationException",
            ApiError::UnknownOperation(_) => "UnknownOperationException",
            ApiError::RequestTooLarge(_) => "RequestEntityTooLargeException",
            ApiError::RequestTimeout(_) => "RequestTimeoutException",
            ApiError::Auth(SigV4Error::Missing) => "MissingAuthenticationTokenException",
            ApiError::Auth(SigV4Error::Incomplete(_)) => "IncompleteSignatureException",
            ApiError::Auth(SigV4Error::UnknownAccessKey) => "UnrecognizedClientException",
            ApiError::Auth(
                SigV4Error::BadScope(_) | SigV4Error::Skewed(_) | SigV4Error::Mismatch,
            ) => "InvalidSignatureException",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailableException",
            ApiError::Internal(_) => "InternalServerException",
        }
    }

    /// The HTTP status: 400 for every client error (SDKs retry 5xx, so a client's
    /// mistake must never be one) and 500 only for faults of the server, as CloudWatch
    /// Logs does.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::ServiceUnavailable(_) | ApiError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The JSON body: `{"__type": code, "message": text}` plus modeled extra members.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "__type": self.code(), "message": self.to_string() });
        if let ApiError::TooManyTags { resource_name, .. } = self {
            body["resourceName"] = serde_json::Value::String(resource_name.clone());
        }
        if let ApiError::MalformedQuery {
            message,
            start,
            end,
        } = self
        {
            body["queryCompileError"] = serde_json::json!({
                "location": { "startCharOffset": start, "endCharOffset": end },
                "message": message,
            });
        }
        body
    }
}

impl From<nettrail_insights::QueryError> for ApiError {
    fn from(err: nettrail_insights::QueryError) -> Self {
        ApiError::MalformedQuery {
            message: err.message,
            start: err.start,
            end: err.end,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::GroupNotFound(_) => {
                ApiError::ResourceNotFound("The specified log group does not exist.".into())
            }
            StoreError::StreamNotFound { .. } => {
                ApiError::ResourceNotFound("The specified log stream does not exist.".into())
            }
            StoreError::GroupExists(_) => {
                ApiError::ResourceAlreadyExists("The specified log group already exists".into())
            }
            StoreError::StreamExists { .. } => {
                ApiError::ResourceAlreadyExists("The specified log stream already exists".into())
            }
            StoreError::PolicyNotFound(key) => {
                ApiError::ResourceNotFound(format!("Policy {key} does not exist"))
            }
            fault @ (StoreError::Io { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Part { .. }
            | StoreError::Lake { .. }
            | StoreError::Locked(_)
            | StoreError::Closed) => {
                tracing::error!(error = %fault, "store fault");
                ApiError::ServiceUnavailable(format!(
                    "The service cannot complete the request: {fault}"
                ))
            }
        }
    }
}

/// The result type of API handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// An error and its causes, `outer: cause: root cause`: the clients nettrail calls
/// (reqwest, lettre) say only the outermost part in their Display, and the cause is
/// what tells a user why a delivery failed.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
