//! The connection to OpenVPN's management interface (UNIX socket or TCP): the
//! password if asked, `bytecount`, `hold release`, an answer to every CONNECT, and
//! reconnection when the server restarts.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nettrail_formats::vpn::client_vpn::ConnectionLogEntry;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::tracker::{decision_command, ClientTracker, ConnectPolicy, MgmtMessage, MgmtParser};

/// How the agent talks to OpenVPN.
#[derive(Debug, Clone)]
pub struct ManagementOptions {
    /// `unix:///PATH`, a path, or `tcp://HOST:PORT`.
    pub address: String,
    /// The management password (`management … pw-file`), if set.
    pub password: Option<String>,
    /// `client-vpn-endpoint-id` of the entries.
    pub endpoint_id: String,
    /// Who may connect.
    pub policy: ConnectPolicy,
    /// Seconds between updates of a connected client's entry.
    pub update_interval: u64,
    /// Seconds between OpenVPN's byte counts.
    pub bytecount_interval: u64,
}

/// Why the OpenVPN agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    /// The address is not `unix://PATH`, a path or `tcp://HOST:PORT`.
    #[error("management address {0:?}: use unix:///PATH or tcp://HOST:PORT")]
    Address(String),
    /// The interface refused the password.
    #[error("the management interface refused the password")]
    Password,
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(address: &str) -> std::io::Result<Box<dyn Stream>> {
    if let Some(addr) = address.strip_prefix("tcp://") {
        return Ok(Box::new(tokio::net::TcpStream::connect(addr).await?));
    }
    let path = address.strip_prefix("unix://").unwrap_or(address);
    Ok(Box::new(tokio::net::UnixStream::connect(path).await?))
}

/// How one management session ended.
enum SessionEnd {
    Shutdown,
    Closed,
}

/// Follows OpenVPN at `options.address` until `shutdown` resolves, handing each
/// connection log entry (with its time, Unix seconds) to `emit`.
pub async fn run(
    options: &ManagementOptions,
    mut emit: impl FnMut(i64, ConnectionLogEntry),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ManagementError> {
    let address = options.address.as_str();
    if !(address.starts_with("unix://")
        || address.starts_with("tcp://")
        || address.starts_with('/'))
    {
        return Err(ManagementError::Address(address.to_owned()));
    }
    tokio::pin!(shutdown);
    let mut wait = Duration::from_millis(100);
    let mut told_waiting = false;
    loop {
        let connected = tokio::select! {
            c = connect(address) => c,
            () = &mut shutdown => return Ok(()),
        };
        let stream = match connected {
            Ok(stream) => stream,
            Err(e) => {
                if !told_waiting {
                    tracing::warn!(management = address, error = %e, "waiting for openvpn");
                    told_waiting = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = &mut shutdown => return Ok(()),
                }
                wait = (wait * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        wait = Duration::from_millis(100);
        told_waiting = false;
        tracing::info!(management = address, "following openvpn");
        match session(stream, options, &mut emit, &mut shutdown).await? {
            SessionEnd::Shutdown => return Ok(()),
            SessionEnd::Closed => {
                tracing::warn!(
                    management = address,
                    "openvpn closed the management connection; reconnecting"
                );
            }
        }
    }
}

async fn session(
    stream: Box<dyn Stream>,
    options: &ManagementOptions,
    emit: &mut impl FnMut(i64, ConnectionLogEntry),
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<SessionEnd, ManagementError> {
    let (reader, mut writer) = tokio::io::split(stream);
    let mut lines = BufReader::new(reader).lines();
    let mut parser = MgmtParser::default();
    // Client ids start over with each server run, so each session has its own.
    let mut tracker = ClientTracker::new(&options.endpoint_id, options.policy.clone());
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut password_sent = false;
    let mut started = options.password.is_none();
    let start_commands = format!(
        "bytecount {}\nhold release\n",
        options.bytecount_interval.max(1)
    );
    if started && writer.write_all(start_commands.as_bytes()).await.is_err() {
        return Ok(SessionEnd::Closed);
    }
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line,
            _ = ticker.tick() => {
                for (time, entry) in tracker.periodic(now_seconds(), options.update_interval as i64) {
                    emit(time, entry);
                }
                continue;
            }
            () = shutdown.as_mut() => return Ok(SessionEnd::Shutdown),
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) | Err(_) => return Ok(SessionEnd::Closed),
        };
        let Some(message) = parser.line(&line) else {
            continue;
        };
        let mut reply = String::new();
        match message {
            MgmtMessage::PasswordPrompt => {
                if password_sent {
                    return Err(ManagementError::Password);
                }
                if let Some(password) = &options.password {
                    reply = format!("{password}\n");
                    password_sent = true;
                }
            }
            MgmtMessage::Other(text)
                if !started && text.starts_with("SUCCESS: password is correct") =>
            {
                started = true;
                reply = start_commands.clone();
            }
            MgmtMessage::Hold => reply = "hold release\n".into(),
            MgmtMessage::ByteCount {
                cid,
                bytes_in,
                bytes_out,
            } => tracker.on_bytecount(cid, bytes_in, bytes_out),
            MgmtMessage::Client(event) => {
                let (decision, entries) = tracker.on_client(&event, now_seconds());
                if let (Some(decision), Some(kid)) = (decision, event.kid) {
                    reply = format!("{}\n", decision_command(event.cid, kid, &decision));
                }
                for (time, entry) in entries {
                    emit(time, entry);
                }
            }
            MgmtMessage::Error(error) => {
                tracing::warn!(
                    management = options.address,
                    error,
                    "openvpn refused a command"
                );
            }
            MgmtMessage::Other(_) => {}
        }
        if !reply.is_empty() && writer.write_all(reply.as_bytes()).await.is_err() {
            return Ok(SessionEnd::Closed);
        }
    }
}
