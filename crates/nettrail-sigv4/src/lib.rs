//! AWS Signature Version 4, both sides: signing a request (nettrail's own clients: the
//! agents, the CLI, the load generator) and verifying a signed request (the server).
//!
//! Only the header form (`Authorization: AWS4-HMAC-SHA256 …`) is implemented; SDKs use
//! it for every CloudWatch Logs operation. Both sides share [`canonical_request`] and
//! [`signature`], so a request this crate signs is one it verifies, and the test vectors
//! below pin both to what botocore produces.

#![warn(missing_docs)]

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The only algorithm SigV4 defines for HMAC-SHA256 signatures.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// The request carries no `Authorization` header.
    #[error("Missing Authentication Token")]
    Missing,
    /// The `Authorization` header or the date is malformed; the text says which part.
    #[error("{0}")]
    Incomplete(String),
    /// The access key id is not one the server knows.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    /// The credential scope names another service or a malformed scope.
    #[error("{0}")]
    BadScope(String),
    /// The request date is more than the allowed skew away from the server's clock.
    #[error("{0}")]
    Skewed(String),
    /// The signature does not match.
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    Mismatch,
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id.
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    /// Region of the credential scope.
    pub region: String,
    /// Service of the credential scope.
    pub service: String,
    /// Lower-case names of the signed headers, in the order given.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

impl Authorization {
    /// Parses `AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/logs/aws4_request,
    /// SignedHeaders=a;b, Signature=hex`.
    pub fn parse(header: &str) -> Result<Authorization, SigV4Error> {
        let rest = header.strip_prefix(ALGORITHM).ok_or_else(|| {
            SigV4Error::Incomplete(format!(
                "Authorization header requires the {ALGORITHM} algorithm"
            ))
        })?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        let missing = |what: &str| {
            SigV4Error::Incomplete(format!(
                "Authorization header requires '{what}' parameter. Authorization={header}"
            ))
        };
        let credential = credential.ok_or_else(|| missing("Credential"))?;
        let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
        let signature = signature.ok_or_else(|| missing("Signature"))?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [key, date, region, service, terminator] = scope[..] else {
            return Err(SigV4Error::BadScope(format!(
                "Credential should be scoped to a valid region, service and 'aws4_request'. Credential={credential}"
            )));
        };
        if terminator != "aws4_request" {
            return Err(SigV4Error::BadScope(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
            )));
        }
        if key.is_empty() || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SigV4Error::Incomplete(format!(
                "Invalid credential scope: {credential}"
            )));
        }
        let signed_headers: Vec<String> = signed.split(';').map(str::to_ascii_lowercase).collect();
        if signed_headers.iter().any(String::is_empty) {
            return Err(SigV4Error::Incomplete(format!(
                "Invalid SignedHeaders: {signed}"
            )));
        }
        Ok(Authorization {
            access_key_id: key.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers,
            signature: signature.to_owned(),
        })
    }

    /// The credential scope string `date/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// The parts of an HTTP request that SigV4 covers.
#[derive(Debug, Clone)]
pub struct RequestParts<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// The path as sent on the wire (percent-encoded as the client sent it).
    pub path: &'a str,
    /// The raw query string without `?` (may be empty).
    pub query: &'a str,
    /// Every header of the request as (name, value); names in any case, repeated names
    /// allowed.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    pub payload_hash: &'a str,
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The canonical request over the headers named in `signed_headers` (lower case).
pub fn canonical_request(parts: &RequestParts<'_>, signed_headers: &[String]) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(parts.method);
    out.push('\n');
    out.push_str(&canonical_uri(parts.path));
    out.push('\n');
    out.push_str(&canonical_query(parts.query));
    out.push('\n');
    let mut names: Vec<&String> = signed_headers.iter().collect();
    names.sort();
    for name in &names {
        let values: Vec<String> = parts
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(
        &names
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(";"),
    );
    out.push('\n');
    out.push_str(parts.payload_hash);
    out
}

/// The string to sign for a canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The hex signature of `string_to_sign` with the key derived from the secret and scope.
pub fn signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex(&hmac(&k_signing, string_to_sign.as_bytes()))
}

/// Credentials to sign with.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials, sent as `x-amz-security-token`.
    pub session_token: Option<String>,
}

/// Signs a request: returns the headers to add (`x-amz-date`, optionally
/// `x-amz-security-token`, and `authorization`). Every header in `parts.headers` is
/// signed, plus the added date and token; include `host`.
pub fn sign(
    parts: &RequestParts<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    unix_secs: i64,
) -> Vec<(&'static str, String)> {
    let amz_date = format_amz_date(unix_secs);
    let date = &amz_date[..8];
    let mut added: Vec<(&'static str, String)> = vec![("x-amz-date", amz_date.clone())];
    if let Some(token) = &credentials.session_token {
        added.push(("x-amz-security-token", token.clone()));
    }
    let mut all: Vec<(&str, &str)> = parts.headers.to_vec();
    all.extend(added.iter().map(|(n, v)| (*n, v.as_str())));
    let mut signed: Vec<String> = all.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    signed.sort();
    signed.dedup();
    let with_all = RequestParts {
        headers: &all,
        ..parts.clone()
    };
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let canonical = canonical_request(&with_all, &signed);
    let sig = signature(
        &credentials.secret_access_key,
        date,
        region,
        service,
        &string_to_sign(&amz_date, &scope, &canonical),
    );
    added.push((
        "authorization",
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={sig}",
            credentials.access_key_id,
            signed.join(";")
        ),
    ));
    added
}

/// What the verifier needs to know about the server's configuration.
pub trait SecretLookup {
    /// The secret for an access key id, if the key is known.
    fn secret(&self, access_key_id: &str) -> Option<&str>;
}

/// Verifies a signed request for `service` at time `now_secs`, allowing
/// `max_skew_secs` of clock difference. Returns the access key id on success.
pub fn verify(
    parts: &RequestParts<'_>,
    service: &str,
    keys: &dyn SecretLookup,
    now_secs: i64,
    max_skew_secs: i64,
) -> Result<String, SigV4Error> {
    let header = |name: &str| {
        parts
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let auth = Authorization::parse(header("authorization").ok_or(SigV4Error::Missing)?)?;
    let secret = keys
        .secret(&auth.access_key_id)
        .ok_or(SigV4Error::UnknownAccessKey)?;
    if auth.service != service {
        return Err(SigV4Error::BadScope(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    let amz_date = header("x-amz-date").ok_or_else(|| {
        SigV4Error::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        )
    })?;
    let request_secs = parse_amz_date(amz_date).ok_or_else(|| {
        SigV4Error::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
        ))
    })?;
    if !amz_date.starts_with(&auth.date) {
        return Err(SigV4Error::BadScope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            auth.date,
            &amz_date[..8]
        )));
    }
    if request_secs < now_secs - max_skew_secs {
        return Err(SigV4Error::Skewed(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - {} min.)",
            format_amz_date(now_secs - max_skew_secs),
            format_amz_date(now_secs),
            max_skew_secs / 60
        )));
    }
    if request_secs > now_secs + max_skew_secs {
        return Err(SigV4Error::Skewed(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + {} min.)",
            format_amz_date(now_secs + max_skew_secs),
            format_amz_date(now_secs),
            max_skew_secs / 60
        )));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Incomplete(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let canonical = canonical_request(parts, &auth.signed_headers);
    let expected = signature(
        secret,
        &auth.date,
        &auth.region,
        &auth.service,
        &string_to_sign(amz_date, &auth.scope(), &canonical),
    );
    if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        Ok(auth.access_key_id)
    } else {
        Err(SigV4Error::Mismatch)
    }
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'` into Unix seconds.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Formats Unix seconds as `YYYYMMDD'T'HHMMSS'Z'`.
pub fn format_amz_date(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

// Howard Hinnant's civil calendar algorithms (public domain).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    // Non-S3 services encode the (already encoded) path segments once more.
    path.split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `s` with its `%XX` escapes decoded and `+` as a space, as a query string or a path
/// segment of a request is written (invalid UTF-8 replaced).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hexval = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OneKey;
    impl SecretLookup for OneKey {
        fn secret(&self, id: &str) -> Option<&str> {
            (id == "AKIDEXAMPLE").then_some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        }
    }

    /// The "get-vanilla" vector of AWS's SigV4 test suite.
    #[test]
    fn matches_the_aws_get_vanilla_vector() {
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let parts = RequestParts {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            payload_hash: &sha256_hex(b""),
        };
        let signed = vec!["host".to_owned(), "x-amz-date".to_owned()];
        let canonical = canonical_request(&parts, &signed);
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            &canonical,
        );
        assert_eq!(
            signature(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "20150830",
                "us-east-1",
                "service",
                &sts
            ),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn what_sign_produces_verify_accepts_and_tampering_is_refused() {
        let now = parse_amz_date("20261123T033158Z").unwrap();
        let body = br#"{"logGroupName": "/demo/app"}"#;
        let hash = sha256_hex(body);
        let base = [
            ("host", "127.0.0.1:9750"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Logs_20140328.CreateLogGroup"),
        ];
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let parts = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: &base,
            payload_hash: &hash,
        };
        let added = sign(&parts, &creds, "us-east-1", "logs", now);
        let mut all: Vec<(&str, &str)> = base.to_vec();
        all.extend(added.iter().map(|(n, v)| (*n, v.as_str())));
        all.push(("amz-sdk-request", "attempt=1")); // unsigned headers are ignored
        let signed = RequestParts {
            headers: &all,
            ..parts.clone()
        };
        assert_eq!(
            verify(&signed, "logs", &OneKey, now + 30, 300),
            Ok("AKIDEXAMPLE".into())
        );
        assert!(matches!(
            verify(&signed, "logs", &OneKey, now + 301, 300),
            Err(SigV4Error::Skewed(_))
        ));
        assert!(matches!(
            verify(&signed, "logs", &OneKey, now - 301, 300),
            Err(SigV4Error::Skewed(_))
        ));
        let other_hash = sha256_hex(b"{}");
        let tampered = RequestParts {
            payload_hash: &other_hash,
            ..signed.clone()
        };
        assert_eq!(
            verify(&tampered, "logs", &OneKey, now, 300),
            Err(SigV4Error::Mismatch)
        );
        assert!(matches!(
            verify(&signed, "firehose", &OneKey, now, 300),
            Err(SigV4Error::BadScope(_))
        ));
        let unsigned = RequestParts {
            headers: &base,
            ..parts
        };
        assert_eq!(
            verify(&unsigned, "logs", &OneKey, now, 300),
            Err(SigV4Error::Missing)
        );
    }

    #[test]
    fn dates_round_trip() {
        for s in [
            "19700101T000000Z",
            "20000229T235959Z",
            "20261123T033158Z",
            "21000301T120000Z",
        ] {
            assert_eq!(format_amz_date(parse_amz_date(s).unwrap()), s);
        }
        assert_eq!(parse_amz_date("20261123T033158Z"), Some(1_795_404_718));
        for bad in [
            "",
            "20261123T033158",
            "2026112XT033158Z",
            "20261323T033158Z",
            "20261123 033158Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn malformed_authorization_headers_are_refused_with_a_reason() {
        for bad in [
            "Basic abc",
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/2026/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20261123/us-east-1/logs, SignedHeaders=host, Signature=00",
        ] {
            assert!(Authorization::parse(bad).is_err(), "{bad}");
        }
    }
}
