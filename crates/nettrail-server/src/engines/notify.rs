//! Notification topics: subscription matches and alarm state changes turned into
//! messages people read (never base64 or gzip), sent by email (SMTP, with STARTTLS or
//! TLS), to generic JSON webhooks and to Slack-compatible webhooks.
//!
//! A Client VPN connection log entry reads as one summary line (status, common name,
//! client IP, device IP, endpoint, time) followed by every field; a tunnel activity log
//! event as the tunnel, its IKE states and the detail message with AWS's explanation
//! and what to do; anything else as the message itself.

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use nettrail_formats::subscription::SubscriptionMessage;
use nettrail_formats::vpn::catalogue::Recognized;
use nettrail_formats::vpn::client_vpn::ConnectionLogEntry;
use nettrail_formats::vpn::tunnel::{parse_tunnel_stream_name, TunnelActivityLog};
use serde_json::{json, Value};

use crate::config::{SmtpSettings, TopicSettings};
use crate::engines::http_sender::HttpSender;

/// A notification: a subject and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notification {
    pub(crate) subject: String,
    pub(crate) body: String,
}

/// The notification for one DATA_MESSAGE batch of a subscription.
pub(crate) fn render(message: &SubscriptionMessage) -> Notification {
    let filter = message.subscription_filters.join(", ");
    let events: Vec<(String, String)> = message
        .log_events
        .iter()
        .map(|e| describe_event(&message.log_stream, &e.message))
        .collect();
    let subject = match events.as_slice() {
        [(summary, _)] => format!("[nettrail] {summary}"),
        _ => format!(
            "[nettrail] {} events matched {filter} in {}",
            events.len(),
            message.log_group
        ),
    };
    let mut body = String::new();
    for (i, ((summary, detail), event)) in events.iter().zip(&message.log_events).enumerate() {
        if i > 0 {
            body.push_str("\n\n");
        }
        body.push_str(summary);
        body.push('\n');
        body.push_str(detail);
        body.push_str(&format!(
            "\n  (event time {}, log stream {})",
            utc(event.timestamp),
            message.log_stream
        ));
    }
    body.push_str(&format!(
        "\n\n-- \nSubscription filter {filter} on log group {} (account {}).\n",
        message.log_group, message.owner
    ));
    Notification { subject, body }
}

/// A summary line and the details of one event.
fn describe_event(stream: &str, text: &str) -> (String, String) {
    if let Ok(entry) = ConnectionLogEntry::from_json(text) {
        if entry.get("connection-log-type").is_some() {
            return describe_connection(&entry);
        }
    }
    if let Ok(event) = TunnelActivityLog::from_json(text) {
        return describe_tunnel(stream, &event);
    }
    (
        text.lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect(),
        text.to_owned(),
    )
}

fn describe_connection(entry: &ConnectionLogEntry) -> (String, String) {
    let field = |key: &str| entry.raw(key).unwrap_or("NA").to_owned();
    let kind = match field("connection-log-type").as_str() {
        "connection-attempt" => "connection attempt",
        "connection-reset" => "connection reset",
        other => return (format!("Client VPN {other}"), fields(entry)),
    };
    let time = match field("connection-last-update-time").as_str() {
        "NA" => field("connection-start-time"),
        t => t.to_owned(),
    };
    let summary = format!(
        "Client VPN {kind} {}: common name {}, client IP {}, device IP {}, endpoint {}, at {} UTC",
        field("connection-attempt-status"),
        field("common-name"),
        field("client-ip"),
        field("device-ip"),
        field("client-vpn-endpoint-id"),
        time,
    );
    (summary, fields(entry))
}

/// Every field of a connection log entry, one per line, in the entry's order.
fn fields(entry: &ConnectionLogEntry) -> String {
    let object: Value = serde_json::from_str(&entry.to_json()).unwrap_or(Value::Null);
    let mut out = String::new();
    for key in entry.keys() {
        let value = match &object[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!("  {key}: {value}\n"));
    }
    out.trim_end().to_owned()
}

fn describe_tunnel(stream: &str, event: &TunnelActivityLog) -> (String, String) {
    let tunnel = match parse_tunnel_stream_name(stream) {
        Some((connection, outside_ip)) => format!("{connection} tunnel {outside_ip}"),
        None => format!("tunnel {stream}"),
    };
    let summary = format!(
        "VPN {tunnel}: IKE phase 1 {}, phase 2 {}: {}",
        event.ike_phase1_state, event.ike_phase2_state, event.details
    );
    let mut detail = format!(
        "  tunnel: {tunnel}\n  IKE phase 1: {}\n  IKE phase 2: {}\n  DPD enabled: {}\n  NAT-T detected: {}\n  message: {}",
        event.ike_phase1_state,
        event.ike_phase2_state,
        event.dpd_enabled,
        event.nat_t_detected,
        event.details
    );
    if let Recognized::Known { event: known, .. } = event.recognize() {
        let spec = known.spec();
        detail.push_str(&format!(
            "\n  what it means: {}\n  what to do: {}",
            spec.explanation, spec.remediation
        ));
    }
    (summary, detail)
}

/// `2026-09-24 22:22:25 UTC` for Unix ms.
fn utc(ms: i64) -> String {
    let t = nettrail_formats::time::UtcDateTime::from_unix(ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// Sends the notification of a subscription batch to every endpoint of a topic; Ok
/// once all of them took it.
pub(crate) async fn send(
    topic_name: &str,
    topic: &TopicSettings,
    smtp: &SmtpSettings,
    message: &SubscriptionMessage,
    http: &HttpSender,
) -> Result<(), String> {
    let note = render(message);
    let webhook_body = json!({
        "topic": topic_name,
        "subject": note.subject,
        "message": note.body,
        "logGroup": message.log_group,
        "logStream": message.log_stream,
        "subscriptionFilters": message.subscription_filters,
        "logEvents": message.log_events,
    });
    deliver(topic, smtp, &note, &webhook_body, http).await
}

/// Sends `note` to every endpoint of `topic`: a mail to its email addresses, `webhook_body`
/// to its generic webhooks, the note as Slack text to its Slack webhooks.
pub(crate) async fn deliver(
    topic: &TopicSettings,
    smtp: &SmtpSettings,
    note: &Notification,
    webhook_body: &Value,
    http: &HttpSender,
) -> Result<(), String> {
    if !topic.email.is_empty() {
        send_mail(note, &topic.email, smtp).await?;
    }
    for url in &topic.webhook {
        http.post_json(url, webhook_body.to_string()).await?;
    }
    for url in &topic.slack {
        let text = format!("*{}*\n```\n{}\n```", note.subject, note.body.trim_end());
        http.post_json(url, json!({ "text": text }).to_string())
            .await?;
    }
    Ok(())
}

/// Checks the SMTP settings at start: the TLS mode, and the CA file if one is named.
pub(crate) fn check_smtp(smtp: &SmtpSettings) -> Result<(), String> {
    smtp_transport(smtp).map(|_| ())
}

/// The transport the settings describe.
fn smtp_transport(smtp: &SmtpSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let tls = || -> Result<TlsParameters, String> {
        let mut builder = TlsParameters::builder(smtp.host.clone());
        if let Some(path) = &smtp.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading smtp.ca_file {}: {e}", path.display()))?;
            let certificate = Certificate::from_pem(&pem)
                .map_err(|e| format!("smtp.ca_file {}: {e}", path.display()))?;
            builder = builder.add_root_certificate(certificate);
        }
        builder
            .build_rustls()
            .map_err(|e| format!("smtp TLS settings: {e}"))
    };
    let mode = match smtp.tls.as_str() {
        "none" => Tls::None,
        "starttls" => Tls::Required(tls()?),
        "tls" => Tls::Wrapper(tls()?),
        other => {
            return Err(format!(
                "smtp.tls is {other:?}; it must be \"none\", \"starttls\" or \"tls\""
            ))
        }
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .port(smtp.port)
        .tls(mode);
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(transport.build())
}

async fn send_mail(note: &Notification, to: &[String], smtp: &SmtpSettings) -> Result<(), String> {
    let mut builder = Message::builder()
        .from(
            smtp.from
                .parse()
                .map_err(|e| format!("smtp.from {:?}: {e}", smtp.from))?,
        )
        .subject(&note.subject)
        .header(ContentType::TEXT_PLAIN);
    for address in to {
        builder = builder.to(address
            .parse()
            .map_err(|e| format!("email address {address:?}: {e}"))?);
    }
    let mail = builder
        .body(note.body.clone())
        .map_err(|e| format!("building the mail: {e}"))?;
    smtp_transport(smtp)?
        .send(mail)
        .await
        .map(|_| ())
        .map_err(|e| {
            let text = crate::error::with_causes(&e);
            format!("SMTP {}:{}: {text}", smtp.host, smtp.port)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nettrail_formats::subscription::{MessageType, SubscriptionEvent};

    fn batch(stream: &str, messages: &[&str]) -> SubscriptionMessage {
        SubscriptionMessage {
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            log_group: "/vpn".into(),
            log_stream: stream.into(),
            subscription_filters: vec!["alert".into()],
            log_events: messages
                .iter()
                .map(|m| SubscriptionEvent {
                    id: "1".into(),
                    timestamp: 1_790_000_000_000,
                    message: (*m).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_client_vpn_connection_reads_as_a_sentence_and_its_fields() {
        let entry = r#"{"connection-log-type":"connection-attempt","connection-attempt-status":"successful","connection-attempt-failure-reason":"NA","connection-id":"cvpn-connection-1","client-vpn-endpoint-id":"cvpn-endpoint-0f2d58d4869ece501","transport-protocol":"udp","connection-start-time":"2026-09-24 22:22:25","connection-last-update-time":"2026-09-24 22:22:25","client-ip":"172.1.0.162","common-name":"client1.domain.tld","device-type":"linux","device-ip":"72.21.198.66","port":"5567"}"#;
        let note = render(&batch(
            "cvpn-endpoint-0f2d58d4869ece501-us-east-1-2026/09/24-x",
            &[entry],
        ));
        assert_eq!(
            note.subject,
            "[nettrail] Client VPN connection attempt successful: common name client1.domain.tld, client IP 172.1.0.162, device IP 72.21.198.66, endpoint cvpn-endpoint-0f2d58d4869ece501, at 2026-09-24 22:22:25 UTC"
        );
        assert!(note.body.contains("\n  common-name: client1.domain.tld\n"));
        assert!(note.body.contains("  port: 5567"));
        assert!(!note.body.contains("H4sI"), "no gzip or base64");
    }

    #[test]
    fn a_tunnel_event_reads_with_its_explanation() {
        let event = r#"{"event_timestamp":1729022466,"details":"AWS tunnel detected a pre-shared key mismatch with cgw: 203.0.113.10","dpd_enabled":true,"nat_t_detected":false,"ike_phase1_state":"down","ike_phase2_state":"down"}"#;
        let note = render(&batch(
            "vpn-0123456789abcdef0-198.51.100.5",
            &[event, event],
        ));
        assert_eq!(note.subject, "[nettrail] 2 events matched alert in /vpn");
        assert!(
            note.body.starts_with(
                "VPN vpn-0123456789abcdef0 tunnel 198.51.100.5: IKE phase 1 down, phase 2 down:"
            ),
            "{}",
            note.body
        );
        assert!(note.body.contains("what it means:"), "{}", note.body);
        assert!(note.body.contains("what to do:"));
    }
}
