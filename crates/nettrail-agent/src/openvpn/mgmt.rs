//! The connection to OpenVPN's management interface (UNIX socket or TCP): the
//! password if asked, `bytecount`, `hold release`, an answer to every CONNECT, and
//! reconnection when the server restarts.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nettrail_formats::vpn::client_vpn::ConnectionLogEntry;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::daemon::{connect_with_backoff, is_daemon_address};

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

/// The longest line kept whole; a longer one (never sent by OpenVPN) is cut there.
const MAX_LINE: usize = 64 * 1024;

/// Lines of the management interface. Its password prompt, `ENTER PASSWORD:`, ends
/// with no line break, so it counts as a line as soon as it is there.
struct LineReader<R> {
    reader: R,
    buffer: Vec<u8>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(reader: R) -> Self {
        LineReader {
            reader,
            buffer: Vec::new(),
        }
    }

    /// The next line without its line end; None at the end of the stream. Cancel-safe:
    /// bytes read are kept in the buffer.
    async fn next_line(&mut self) -> std::io::Result<Option<String>> {
        const PROMPT: &[u8] = b"ENTER PASSWORD:";
        loop {
            let end = match self.buffer.iter().position(|b| *b == b'\n') {
                Some(newline) => Some((newline, newline + 1)),
                None if self.buffer.starts_with(PROMPT) => Some((PROMPT.len(), PROMPT.len())),
                None if self.buffer.len() >= MAX_LINE => Some((MAX_LINE, MAX_LINE)),
                None => None,
            };
            if let Some((line_end, consumed)) = end {
                let line = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
                self.buffer.drain(..consumed);
                return Ok(Some(line));
            }
            let mut chunk = [0u8; 4096];
            let n = self.reader.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }
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
    if !is_daemon_address(address) {
        return Err(ManagementError::Address(address.to_owned()));
    }
    tokio::pin!(shutdown);
    loop {
        let Some(stream) =
            connect_with_backoff("openvpn", address, || connect(address), &mut shutdown).await
        else {
            return Ok(());
        };
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
    let mut lines = LineReader::new(reader);
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
            // The interface greets once it accepts commands: after the password, or at
            // once when it has none (a password configured here but not there).
            MgmtMessage::Other(text)
                if !started
                    && (text.starts_with("SUCCESS: password is correct")
                        || text.starts_with(">INFO:")) =>
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A management interface over TCP that asks for a password, holds, and sends one
    /// client's CONNECT and ESTABLISHED: the agent answers each in turn.
    #[tokio::test]
    async fn a_tcp_session_with_a_password_is_answered_and_logged() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut said = String::new();
            let read_until =
                async |socket: &mut tokio::net::TcpStream, said: &mut String, want: &str| {
                    let mut buf = [0u8; 512];
                    while !said.contains(want) {
                        let n = socket.read(&mut buf).await.unwrap();
                        assert!(n > 0, "the agent closed the session; it said {said:?}");
                        said.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                };
            socket.write_all(b"ENTER PASSWORD:").await.unwrap();
            read_until(&mut socket, &mut said, "secret\n").await;
            socket
                .write_all(b"SUCCESS: password is correct\r\n>HOLD:Waiting for hold release:0\r\n")
                .await
                .unwrap();
            read_until(&mut socket, &mut said, "hold release\n").await;
            socket
                .write_all(
                    b">CLIENT:CONNECT,0,1\r\n>CLIENT:ENV,common_name=c1\r\n>CLIENT:ENV,untrusted_ip=192.0.2.7\r\n>CLIENT:ENV,untrusted_port=5000\r\n>CLIENT:ENV,proto_1=tcp4-server\r\n>CLIENT:ENV,END\r\n",
                )
                .await
                .unwrap();
            read_until(&mut socket, &mut said, "client-auth-nt 0 1\n").await;
            socket
                .write_all(b">CLIENT:ESTABLISHED,0\r\n>CLIENT:ENV,common_name=c1\r\n>CLIENT:ENV,trusted_ip=192.0.2.7\r\n>CLIENT:ENV,trusted_port=5000\r\n>CLIENT:ENV,ifconfig_pool_remote_ip=10.8.0.2\r\n>CLIENT:ENV,time_unix=1795406424\r\n>CLIENT:ENV,END\r\n")
                .await
                .unwrap();
            // Keep the session open until the test is done with it.
            let mut rest = [0u8; 64];
            let _ = socket.read(&mut rest).await;
            said
        });
        let options = ManagementOptions {
            address: format!("tcp://127.0.0.1:{port}"),
            password: Some("secret".into()),
            endpoint_id: "cvpn-endpoint-0123456789abcdef0".into(),
            policy: ConnectPolicy::default(),
            update_interval: 3600,
            bytecount_interval: 5,
        };
        let (entries_tx, mut entries_rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let agent = tokio::spawn(async move {
            run(
                &options,
                |_, entry| {
                    let _ = entries_tx.send(entry);
                },
                async {
                    let _ = stop_rx.await;
                },
            )
            .await
        });
        let entry = tokio::time::timeout(Duration::from_secs(10), entries_rx.recv())
            .await
            .expect("an entry within 10 s")
            .unwrap();
        assert_eq!(entry.get("connection-attempt-status"), Some("successful"));
        assert_eq!(entry.get("transport-protocol"), Some("tcp"));
        assert_eq!(entry.get("client-ip"), Some("10.8.0.2"));
        assert_eq!(entry.get("device-ip"), Some("192.0.2.7"));
        assert_eq!(
            entry.get("connection-start-time"),
            Some("2026-11-23 04:00:24")
        );
        stop_tx.send(()).unwrap();
        agent.await.unwrap().unwrap();
        let said = server.await.unwrap();
        assert!(
            said.starts_with("secret\nbytecount 5\nhold release\n"),
            "{said:?}"
        );
    }

    #[tokio::test]
    async fn lines_end_at_line_breaks_the_prompt_at_its_colon_and_long_ones_are_cut() {
        let mut input = b"one\r\ntwo\nENTER PASSWORD:".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        let mut lines = LineReader::new(&input[..]);
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("one\r"));
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("two"));
        assert_eq!(
            lines.next_line().await.unwrap().as_deref(),
            Some("ENTER PASSWORD:")
        );
        assert_eq!(
            lines.next_line().await.unwrap().map(|l| l.len()),
            Some(MAX_LINE)
        );
        // What is left without a line break at the end of the stream is dropped.
        assert_eq!(lines.next_line().await.unwrap(), None);
    }

    /// A password set here but not there: the interface's greeting starts the session.
    #[tokio::test]
    async fn an_interface_without_a_password_is_started_by_its_greeting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket
                .write_all(b">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n")
                .await
                .unwrap();
            let mut said = Vec::new();
            let mut buf = [0u8; 256];
            while !said.ends_with(b"hold release\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0);
                said.extend_from_slice(&buf[..n]);
            }
            String::from_utf8(said).unwrap()
        });
        let options = ManagementOptions {
            address: format!("tcp://127.0.0.1:{port}"),
            password: Some("unused".into()),
            endpoint_id: "cvpn-endpoint-0".into(),
            policy: ConnectPolicy::default(),
            update_interval: 60,
            bytecount_interval: 2,
        };
        let said = tokio::time::timeout(Duration::from_secs(10), async {
            let agent = run(&options, |_, _| {}, std::future::pending());
            tokio::select! {
                said = server => said.unwrap(),
                _ = agent => panic!("the agent stopped"),
            }
        })
        .await
        .expect("the agent started the session within 10 s");
        assert_eq!(said, "bytecount 2\nhold release\n");
    }

    #[tokio::test]
    async fn a_bad_address_is_refused() {
        let options = ManagementOptions {
            address: "mgmt.sock".into(),
            password: None,
            endpoint_id: "cvpn-endpoint-0".into(),
            policy: ConnectPolicy::default(),
            update_interval: 60,
            bytecount_interval: 5,
        };
        let err = run(&options, |_, _| {}, async {}).await.unwrap_err();
        assert!(err.to_string().contains("unix:///PATH"), "{err}");
    }
}
