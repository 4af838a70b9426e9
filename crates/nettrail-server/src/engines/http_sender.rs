//! [`HttpSender`]: the one HTTP client of the engines. Subscription deliveries to
//! `http://` and `https://` destinations, and notification webhooks (subscription
//! matches and alarm state changes), POST JSON through it; a 2xx answer acknowledges.

use std::time::Duration;

/// POSTs JSON bodies over HTTP or HTTPS, acknowledged by a 2xx answer.
#[derive(Clone)]
pub(crate) struct HttpSender {
    http: reqwest::Client,
    pub(crate) timeout: Duration,
}

impl HttpSender {
    /// A client that trusts the platform's roots and those of `ca_file` (PEM), if any.
    pub(crate) fn new(
        timeout: Duration,
        ca_file: Option<&std::path::Path>,
    ) -> Result<HttpSender, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading subscriptions.ca_file {}: {e}", path.display()))?;
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("subscriptions.ca_file {}: {e}", path.display()))?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpSender { http, timeout })
    }

    /// POSTs `body` to `url`; Ok on a 2xx answer.
    pub(crate) async fn post_json(&self, url: &str, body: String) -> Result<(), String> {
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| crate::error::with_causes(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.bytes().await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Err(format!("{url} answered {status}: {text}"))
    }
}
