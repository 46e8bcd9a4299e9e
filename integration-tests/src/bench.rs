//! Pieces shared by the benchmark binaries (`eddy-bench`, `eddy-bench-deployments`): a
//! keep-alive HTTP/1.1 client, the pusher that feeds eddy's HTTP ingress, process probes
//! (`/proc` RSS and CPU time), graceful termination and medians.

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use bytes::Bytes;
use eddy_protocol::ingress::{IngressMessage, MessageBatch};
use eddy_protocol::Message as _;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::process::{Child, Command};

/// How long processes get to stop after SIGTERM.
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(30);

/// Aborts a task when dropped (an early return stops the pushing).
pub struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The body format of the pusher's batches (`POST /v1/messages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IngressFormat {
    /// JSON lines with `value_base64`.
    Json,
    /// `application/x-protobuf`: one `io.eddy.ingress.v1.MessageBatch`.
    Protobuf,
}

/// Posts messages number `first..end` (message i goes to key i % `keys`) to the HTTP ingress,
/// `concurrency` connections each posting chunks of `chunk` messages in `format`; each carries
/// its send time (8 bytes little-endian µs since the UNIX epoch) as `typename`. Returns the
/// time until the last chunk was admitted.
#[allow(clippy::too_many_arguments)]
pub async fn push(
    ingress: SocketAddr,
    (first, messages): (u64, u64),
    keys: u64,
    concurrency: usize,
    chunk: u64,
    target_prefix: &'static str,
    typename: &'static str,
    format: IngressFormat,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(first));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let next = next.clone();
        tasks.spawn(async move {
            let mut client = Client::new(ingress);
            let mut body = String::new();
            loop {
                let first = next.fetch_add(chunk, Ordering::Relaxed);
                if first >= messages {
                    return Ok::<_, anyhow::Error>(());
                }
                let end = (first + chunk).min(messages);
                let sent = now_micros().to_le_bytes();
                let (status, reply) = match format {
                    IngressFormat::Json => {
                        body.clear();
                        let sent = base64::engine::general_purpose::STANDARD.encode(sent);
                        for index in first..end {
                            let _ = writeln!(
                                body,
                                "{{\"target\":\"{target_prefix}{}\",\"typename\":\"{typename}\",\"value_base64\":\"{sent}\"}}",
                                index % keys
                            );
                        }
                        client
                            .request(Method::POST, "/v1/messages", Bytes::from(body.clone()))
                            .await?
                    }
                    IngressFormat::Protobuf => {
                        let value = Bytes::copy_from_slice(&sent);
                        let batch = MessageBatch {
                            messages: (first..end)
                                .map(|index| IngressMessage {
                                    target: format!("{target_prefix}{}", index % keys),
                                    typename: typename.to_string(),
                                    value: value.clone(),
                                })
                                .collect(),
                        };
                        client
                            .request_with(
                                Method::POST,
                                "/v1/messages",
                                Some("application/x-protobuf"),
                                Bytes::from(batch.encode_to_vec()),
                            )
                            .await?
                    }
                };
                if status != StatusCode::ACCEPTED {
                    bail!(
                        "POST /v1/messages: {status}: {}",
                        String::from_utf8_lossy(&reply)
                    );
                }
            }
        });
    }
    while let Some(task) = tasks.join_next().await {
        match task {
            Ok(result) => result?,
            Err(join) => bail!("a push connection failed: {join}"),
        }
    }
    Ok(started.elapsed())
}

pub async fn terminate(child: &mut Child) -> anyhow::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    if let Some(pid) = child.id() {
        // No signal crate in this workspace: the kill(1) utility sends SIGTERM.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
    }
    match tokio::time::timeout(PROCESS_DEADLINE, child.wait()).await {
        Ok(status) => Ok(status?),
        Err(_) => {
            child.kill().await?;
            bail!("did not exit within {PROCESS_DEADLINE:?} of SIGTERM: killed")
        }
    }
}

/// A free loopback port (bound then released: another process could take it in between).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// CPU time (user + system) of a process, in seconds (assumes USER_HZ = 100, as on Linux).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0)
}

/// The last `max` bytes of a log file, for error messages.
pub fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// One keep-alive HTTP/1.1 connection, reopened when it breaks.
pub struct Client {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr, sender: None }
    }

    async fn sender(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        let usable = match self.sender.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connecting to {}", self.addr))?;
            stream.set_nodelay(true)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| anyhow!("no connection to {}", self.addr))
    }

    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.request_with(method, path, None, body).await
    }

    /// [`Client::request`] with a content type (default `application/octet-stream`).
    pub async fn request_with(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let host = self.addr.to_string();
        let sender = self.sender().await?;
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(hyper::header::HOST, host)
            .header(
                hyper::header::CONTENT_TYPE,
                content_type.unwrap_or("application/octet-stream"),
            )
            .body(Full::new(body))?;
        let outcome = async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        match outcome {
            Ok(reply) => Ok(reply),
            Err(error) => {
                self.sender = None;
                Err(anyhow!("{method} http://{}{path}: {error}", self.addr))
            }
        }
    }

    pub async fn post(&mut self, path: &str, body: Bytes) -> anyhow::Result<Bytes> {
        let (status, reply) = self.request(Method::POST, path, body).await?;
        if !status.is_success() {
            bail!("POST {path}: {status}: {}", String::from_utf8_lossy(&reply));
        }
        Ok(reply)
    }
}

/// Microseconds since the UNIX epoch.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as u64)
        .unwrap_or(0)
}

/// The median of some numbers (mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

pub fn median_of<T>(runs: &[T], field: impl Fn(&T) -> f64) -> f64 {
    median(runs.iter().map(field).collect())
}

pub fn median_opt<T>(runs: &[T], field: impl Fn(&T) -> Option<f64>) -> Option<f64> {
    let values: Vec<f64> = runs.iter().filter_map(field).collect();
    (!values.is_empty()).then(|| median(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn proc_status_is_read() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_some());
        assert!(proc_status_kb(pid, "VmRSS").is_some_and(|kb| kb > 0));
        assert!(proc_status_kb(pid, "VmNope").is_none());
    }
}
