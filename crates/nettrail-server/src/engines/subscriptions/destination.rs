//! Where a subscription delivers: [`Destination`], resolved from a filter's
//! `destinationArn` (a URL, `topic:NAME`, or an AWS ARN bound in the configuration),
//! with the message AWS would answer when it cannot be.

use std::path::PathBuf;

use crate::config::ServerConfig;

/// Where a subscription's batches go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// POST of the Lambda event to this `http://` or `https://` URL.
    Http(hyper::Uri),
    /// Decoded documents appended to this file, one per line.
    File(PathBuf),
    /// A notification topic of the config: readable messages to people.
    Topic(String),
    /// A JetStream publish of the gzip document (as a Kinesis record carries it) to
    /// `subject` on the NATS server at `server` (`nats://HOST:PORT`).
    Nats {
        /// `nats://HOST:PORT`.
        server: String,
        /// The subject (a stream must capture it).
        subject: String,
    },
}

impl Destination {
    /// The destination of a `destinationArn`: a URL, or an ARN bound in the config.
    /// The error is the message of the InvalidParameterException AWS would answer.
    pub(crate) fn resolve(
        destination_arn: &str,
        config: &ServerConfig,
    ) -> Result<Destination, String> {
        let topic = |name: &str| -> Result<Destination, String> {
            if config.topics.contains_key(name) {
                Ok(Destination::Topic(name.to_owned()))
            } else {
                Err(format!("There is no notification topic {name:?} in the configuration ([topics.{name}])."))
            }
        };
        let target = match config.subscriptions.destinations.get(destination_arn) {
            Some(bound) => bound.as_str(),
            None if destination_arn.starts_with("arn:aws:sns:") => {
                // arn:aws:sns:REGION:ACCOUNT:NAME
                return topic(destination_arn.rsplit(':').next().unwrap_or_default());
            }
            None if destination_arn.starts_with("arn:") => {
                return Err(format!(
                    "Could not deliver test message to {destination_arn}: nettrail delivers to an AWS ARN only when the configuration binds it to a destination ([subscriptions.destinations])."
                ))
            }
            None => destination_arn,
        };
        if let Some(name) = target.strip_prefix("topic:") {
            return topic(name);
        }
        if let Some(path) = target.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "{target} is not a file URL with an absolute path (file:///PATH)."
                ));
            }
            return Ok(Destination::File(PathBuf::from(path)));
        }
        if target.starts_with("http://") || target.starts_with("https://") {
            return target
                .parse::<hyper::Uri>()
                .map(Destination::Http)
                .map_err(|e| format!("{target} is not a valid URL: {e}."));
        }
        if let Some(rest) = target.strip_prefix("nats://") {
            let (server, subject) = rest.split_once('/').unwrap_or((rest, ""));
            let subject_ok = !subject.is_empty()
                && !subject.contains(|c: char| c.is_whitespace() || c == '*' || c == '>')
                && !subject.starts_with('.')
                && !subject.ends_with('.')
                && !subject.contains("..");
            if server.is_empty() || !subject_ok {
                return Err(format!(
                    "{target} is not a NATS destination: nats://HOST:PORT/SUBJECT with a subject a JetStream stream captures (no wildcards)."
                ));
            }
            return Ok(Destination::Nats {
                server: format!("nats://{server}"),
                subject: subject.to_owned(),
            });
        }
        Err(format!(
            "{target} is not a destination nettrail can deliver to (http://…, file:///…, topic:NAME, or an ARN bound in [subscriptions.destinations])."
        ))
    }
}

/// How a destination is named in statuses and errors.
pub(crate) fn destination_label(destination: &Destination) -> String {
    match destination {
        Destination::Http(uri) => uri.to_string(),
        Destination::File(path) => path.display().to_string(),
        Destination::Topic(name) => format!("topic:{name}"),
        Destination::Nats { server, subject } => format!("{server}/{subject}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_urls_files_or_bound_arns() {
        let mut settings = ServerConfig::default();
        settings
            .topics
            .insert("vpn-alerts".into(), Default::default());
        settings.subscriptions.destinations.insert(
            "arn:aws:lambda:us-east-1:123456789012:function:notify".into(),
            "http://127.0.0.1:8080/hook".into(),
        );
        assert_eq!(
            Destination::resolve("http://127.0.0.1:9/x", &settings),
            Ok(Destination::Http("http://127.0.0.1:9/x".parse().unwrap()))
        );
        assert_eq!(
            Destination::resolve("file:///var/log/matches.jsonl", &settings),
            Ok(Destination::File("/var/log/matches.jsonl".into()))
        );
        assert_eq!(
            Destination::resolve(
                "arn:aws:lambda:us-east-1:123456789012:function:notify",
                &settings
            ),
            Ok(Destination::Http(
                "http://127.0.0.1:8080/hook".parse().unwrap()
            ))
        );
        for bad in [
            "arn:aws:kinesis:us-east-1:123456789012:stream/unbound",
            "file://relative/path",
            "ftp://x",
            "nats://127.0.0.1:4222",
            "nats://127.0.0.1:4222/cwl.*",
            "nats:///subject",
            "arn:aws:sns:us-east-1:123456789012:unknown-topic",
            "topic:unknown",
            "",
        ] {
            assert!(Destination::resolve(bad, &settings).is_err(), "{bad:?}");
        }
    }
}
