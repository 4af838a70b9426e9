//! What every operation handler works with: [`ApiContext`] (the store, the server's
//! configuration and identity, the background engines), request body parsing with
//! AWS's errors, and the few answers several domains share (a log group named by name or
//! ARN, an invalid `nextToken`, optional members).

use std::sync::Arc;

use nettrail_store::LogStore;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::ServerConfig;
use crate::engines::Engines;
use crate::error::{ApiError, ApiResult};

/// The operations' view of the server: its store, configuration and engines.
pub(crate) struct ApiContext {
    pub(crate) store: Arc<dyn LogStore>,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) engines: Engines,
}

impl ApiContext {
    pub(crate) fn group_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{name}",
            self.config.region, self.config.account_id
        )
    }

    /// Resolves `logGroupName` / `logGroupIdentifier` (exactly one must be given) to a
    /// log group name.
    pub(crate) fn resolve_group(
        &self,
        name: Option<String>,
        identifier: Option<String>,
    ) -> ApiResult<String> {
        match (name, identifier) {
            (Some(name), None) => Ok(name),
            (None, Some(identifier)) => Ok(self.group_name_from_identifier(&identifier)),
            _ => Err(ApiError::InvalidParameter(
                "You must include either logGroupIdentifier or logGroupName, but not both.".into(),
            )),
        }
    }

    /// A log group name from a name or a log group ARN (with or without `:*`).
    pub(crate) fn group_name_from_identifier(&self, identifier: &str) -> String {
        if !identifier.starts_with("arn:") {
            return identifier.to_owned();
        }
        match identifier.split_once(":log-group:") {
            Some((_, rest)) => rest.strip_suffix(":*").unwrap_or(rest).to_owned(),
            None => identifier.to_owned(),
        }
    }
}

/// Parses a request body. Members a request shape does not list (newer SDK members, and
/// ones accepted but without effect here such as `unmask`, `interleaved` and
/// `includeLinkedAccounts`) are ignored, and JSON `null` reads as absent.
pub(crate) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> ApiResult<T> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::Serialization(format!("Could not parse the request body: {e}")))
}

/// Inserts `value` under `key` only when it is present, so absent members are omitted.
pub(crate) fn put_opt<T: Into<Value>>(map: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value.into());
    }
}

/// The answer to a `nextToken` this server did not hand out.
pub(crate) fn invalid_token() -> ApiError {
    ApiError::InvalidParameter("The specified nextToken is invalid.".into())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupNameRequest {
    pub(crate) log_group_name: Option<String>,
}
