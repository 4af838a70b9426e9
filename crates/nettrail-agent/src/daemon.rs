//! What the VPN agents share about the daemon they follow (charon over vici, OpenVPN
//! over its management interface): the addresses they take, and connecting with
//! backoff until the daemon answers.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Whether `address` is one the agents take: `unix:///PATH`, `/PATH` or
/// `tcp://HOST:PORT`.
pub fn is_daemon_address(address: &str) -> bool {
    address.starts_with("unix://") || address.starts_with("tcp://") || address.starts_with('/')
}

/// Calls `connect` until it succeeds, waiting 100 ms after a failure and doubling
/// that up to 5 s (a daemon that is starting, restarting or busy refuses for a while;
/// only the first failure is logged). None when `shutdown` resolves first.
pub async fn connect_with_backoff<T, E, F, S>(
    daemon: &str,
    address: &str,
    mut connect: impl FnMut() -> F,
    shutdown: &mut Pin<&mut S>,
) -> Option<T>
where
    E: Display,
    F: Future<Output = Result<T, E>>,
    S: Future<Output = ()>,
{
    let mut wait = Duration::from_millis(100);
    let mut told_waiting = false;
    loop {
        let connected = tokio::select! {
            c = connect() => c,
            () = shutdown.as_mut() => return None,
        };
        match connected {
            Ok(connection) => return Some(connection),
            Err(e) => {
                if !told_waiting {
                    tracing::warn!(daemon, address, error = %e, "waiting for the daemon");
                    told_waiting = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.as_mut() => return None,
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
