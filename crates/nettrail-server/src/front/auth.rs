//! Authentication: the configured access keys, and SigV4 verification of a request.

use std::collections::HashMap;

use nettrail_sigv4::{RequestParts, SecretLookup};

use crate::config::ServerConfig;
use crate::error::ApiError;

/// The configured access keys; empty means any credentials are accepted.
pub(super) struct Keys(HashMap<String, String>);

impl Keys {
    /// The access keys of the configuration.
    pub(super) fn new(config: &ServerConfig) -> Keys {
        Keys(
            config
                .access_keys
                .iter()
                .map(|k| (k.access_key_id.clone(), k.secret_access_key.clone()))
                .collect(),
        )
    }

    /// Whether no key is configured (then any credentials are accepted).
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl SecretLookup for Keys {
    fn secret(&self, access_key_id: &str) -> Option<&str> {
        self.0.get(access_key_id).map(String::as_str)
    }
}

/// Verifies the request's SigV4 signature (and its payload hash) against `keys`; with
/// no key configured, any credentials are accepted.
pub(super) fn authenticate(
    keys: &Keys,
    max_skew_secs: i64,
    parts: &http::request::Parts,
    body: &[u8],
    service: &str,
) -> Result<(), ApiError> {
    if keys.is_empty() {
        return Ok(());
    }
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
    nettrail_sigv4::verify(&request, service, keys, now, max_skew_secs)?;
    Ok(())
}
