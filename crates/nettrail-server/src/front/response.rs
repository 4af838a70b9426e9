//! Answers in AWS JSON 1.1: a JSON body with its content type, an error as its
//! `__type` body and `x-amzn-errortype` header, and the request id every answer carries.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::error::ApiError;

const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// An error as AWS JSON 1.1 answers it.
pub(super) fn error_response(err: &ApiError) -> Response<Full<Bytes>> {
    let mut response = json_response(err.status(), err.body().to_string());
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(err.code()));
    response
}

/// A JSON answer with AWS JSON 1.1's content type.
pub(super) fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

/// Sets the `x-amzn-requestid` header.
pub(super) fn with_request_id(
    mut response: Response<Full<Bytes>>,
    request_id: &str,
) -> Response<Full<Bytes>> {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}
