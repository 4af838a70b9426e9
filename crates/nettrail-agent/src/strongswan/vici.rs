//! The connection to charon: vici over a UNIX socket or TCP (rsvici), the tunnels
//! read from `list-conns`, the events subscribed to, and reconnection when charon
//! restarts.

use std::fmt;
use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::stream::{select_all, StreamExt};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::daemon::{connect_with_backoff, is_daemon_address};

use super::tracker::{TunnelConfig, TunnelLogEvent, TunnelTracker, ViciEvent};

/// The events the agent subscribes to.
const EVENTS: &[&str] = &[
    "log",
    "ike-updown",
    "child-updown",
    "ike-rekey",
    "child-rekey",
];

/// A vici message tree as JSON: values are strings (vici values are byte strings),
/// sections objects, lists arrays. serde_json's own `Value` cannot be read from vici
/// because vici values arrive as bytes.
struct ViciTree(Value);

impl<'de> Deserialize<'de> for ViciTree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TreeVisitor;
        impl<'de> Visitor<'de> for TreeVisitor {
            type Value = ViciTree;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a vici value, list or section")
            }
            fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<ViciTree, E> {
                Ok(ViciTree(Value::String(
                    String::from_utf8_lossy(b).into_owned(),
                )))
            }
            fn visit_byte_buf<E: de::Error>(self, b: Vec<u8>) -> Result<ViciTree, E> {
                self.visit_bytes(&b)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ViciTree, E> {
                Ok(ViciTree(Value::String(s.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ViciTree, A::Error> {
                let mut items = Vec::new();
                while let Some(ViciTree(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(ViciTree(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ViciTree, A::Error> {
                let mut object = Map::new();
                while let Some((key, ViciTree(value))) = map.next_entry::<String, ViciTree>()? {
                    object.insert(key, value);
                }
                Ok(ViciTree(Value::Object(object)))
            }
        }
        deserializer.deserialize_any(TreeVisitor)
    }
}

/// How a swanctl connection becomes a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelMapping {
    /// The swanctl connection name.
    pub connection: String,
    /// Its VPN connection id.
    pub vpn_connection_id: String,
    /// Its outside IP, when charon's `local_addrs` does not say (`%any`).
    pub outside_ip: Option<String>,
}

/// Why the strongSwan agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum ViciError {
    /// The vici address is neither `unix://PATH` nor `tcp://HOST:PORT`.
    #[error("vici address {0:?}: use unix:///PATH or tcp://HOST:PORT")]
    Address(String),
}

/// A VPN connection id for a connection nobody mapped: `vpn-` and 17 hex digits of a
/// hash of its name, stable across runs.
pub fn synthetic_vpn_connection_id(connection: &str) -> String {
    // FNV-1a, 64 bits, then 4 more bits from a second round: 17 hex digits as AWS's.
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in connection.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    format!("vpn-{:x}{:016x}", hash >> 60, hash)
}

/// Tunnel configurations from `list-conns` answers (one object per connection) and
/// the user's mappings.
pub fn tunnels_from_conns(
    conns: &[(String, Value)],
    mappings: &[TunnelMapping],
) -> Vec<TunnelConfig> {
    let first_addr = |conn: &Value, key: &str| -> Option<String> {
        let value = conn.get(key)?;
        let first = match value {
            Value::Array(items) => items.first()?.as_str()?,
            Value::String(s) => s.as_str(),
            _ => return None,
        };
        // `%any` and ranges name no single address.
        first
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| ip.to_string())
    };
    conns
        .iter()
        .map(|(name, conn)| {
            let mapping = mappings.iter().find(|m| &m.connection == name);
            let outside_ip = mapping
                .and_then(|m| m.outside_ip.clone())
                .or_else(|| first_addr(conn, "local_addrs"))
                .unwrap_or_else(|| {
                    tracing::warn!(
                        connection = name,
                        "connection has no single local address; set its outside_ip"
                    );
                    "0.0.0.0".to_owned()
                });
            let dpd_delay = conn
                .get("dpd_delay")
                .and_then(Value::as_str)
                .and_then(|s| s.trim_end_matches('s').parse::<u64>().ok())
                .unwrap_or(0);
            TunnelConfig {
                connection: name.clone(),
                vpn_connection_id: mapping
                    .map(|m| m.vpn_connection_id.clone())
                    .unwrap_or_else(|| synthetic_vpn_connection_id(name)),
                outside_ip,
                cgw_ip: first_addr(conn, "remote_addrs"),
                dpd_enabled: dpd_delay > 0,
            }
        })
        .collect()
}

async fn connect(address: &str) -> std::io::Result<rsvici::Client> {
    if let Some(path) = address.strip_prefix("unix://") {
        rsvici::unix::connect(path).await
    } else if let Some(addr) = address.strip_prefix("tcp://") {
        rsvici::tcp::connect(addr).await
    } else {
        rsvici::unix::connect(address).await
    }
}

async fn list_conns(client: &mut rsvici::Client) -> Result<Vec<(String, Value)>, rsvici::Error> {
    let mut conns = Vec::new();
    let stream = client.stream_request::<(), ViciTree>("list-conns", "list-conn", ());
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        if let Value::Object(map) = item?.0 {
            conns.extend(map);
        }
    }
    Ok(conns)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Follows charon at `address` until `shutdown` resolves, handing each tunnel activity
/// log event to `emit`. Reconnects (and re-reads the connections) whenever charon goes
/// away; a charon that is not there yet is waited for.
pub async fn run(
    address: &str,
    mappings: &[TunnelMapping],
    mut emit: impl FnMut(TunnelLogEvent),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ViciError> {
    if !is_daemon_address(address) {
        return Err(ViciError::Address(address.to_owned()));
    }
    tokio::pin!(shutdown);
    loop {
        // charon's listen backlog is small: EAGAIN while it is busy, ENOENT or
        // ECONNREFUSED while it (re)starts.
        let Some(mut client) =
            connect_with_backoff("charon", address, || connect(address), &mut shutdown).await
        else {
            return Ok(());
        };
        let conns = match list_conns(&mut client).await {
            Ok(conns) => conns,
            Err(e) => {
                tracing::warn!(vici = address, error = %e, "listing connections failed; reconnecting");
                continue;
            }
        };
        // rsvici's reader keeps running when the socket closes and only reports the
        // failure to its error handler, so charon going away is seen there.
        let mut errors = client.listen_for_errors();
        let mut tracker = TunnelTracker::new(tunnels_from_conns(&conns, mappings));
        tracing::info!(
            vici = address,
            tunnels = tracker.tunnels().count(),
            "following charon"
        );
        let streams = EVENTS
            .iter()
            .map(|name| {
                client
                    .subscribe::<ViciTree>(name)
                    .map(move |item| (*name, item))
                    .boxed()
            })
            .collect::<Vec<_>>();
        let mut merged = select_all(streams);
        let mut refresh = false;
        loop {
            let next = tokio::select! {
                next = merged.next() => next,
                Some(e) = errors.next() => {
                    if e.is_io() {
                        tracing::warn!(vici = address, error = %e, "charon went away; reconnecting");
                        break;
                    }
                    tracing::debug!(vici = address, error = %e, "unexpected vici packet");
                    continue;
                }
                () = &mut shutdown => return Ok(()),
            };
            match next {
                Some((name, Ok(ViciTree(body)))) => {
                    // A connection loaded later: read the connections again once this
                    // burst of events is handled.
                    if name == "log"
                        && body
                            .get("msg")
                            .and_then(Value::as_str)
                            .is_some_and(|m| m.starts_with("added vici connection: "))
                    {
                        refresh = true;
                    }
                    let event = ViciEvent {
                        name: name.to_owned(),
                        body,
                        received_ms: now_ms(),
                    };
                    for out in tracker.apply(&event) {
                        emit(out);
                    }
                }
                Some((name, Err(e))) => {
                    tracing::warn!(vici = address, event = name, error = %e, "charon went away; reconnecting");
                    break;
                }
                None => break,
            }
            if refresh {
                refresh = false;
                // On a second connection: this one's events must keep flowing while
                // the answer comes (rsvici hands both out through one reader).
                let listed = match connect(address).await {
                    Ok(mut side) => list_conns(&mut side).await,
                    Err(e) => Err(rsvici::Error::from(e)),
                };
                match listed {
                    Ok(conns) => {
                        for config in tunnels_from_conns(&conns, mappings) {
                            tracker.add_tunnel(config);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(vici = address, error = %e, "listing connections failed")
                    }
                }
            }
        }
        // The next connection starts a new tracker: charon's SAs and unique ids do
        // not survive its restart.
    }
}
