//! The keep-alive connection pool of one HTTP endpoint.
//!
//! Each connection is a hyper HTTP/1.1 client connection (`hyper::client::conn::http1`) over
//! TCP, or over TLS (rustls) for `https://` URLs; its I/O runs in a task of its own. A call
//! takes an idle connection of the URL's origin (scheme, host and port) or opens one, sends
//! one request on it and gives it back once the reply body has been read to its end; a
//! connection whose reply was not read to the end, that failed, or that the server closed is
//! dropped instead. Because the caller's permit (`pool_size`) bounds calls in flight and a
//! connection is only ever handed to one call at a time, an endpoint never holds more than
//! `pool_size` connections, and finished connections are reused at once (hyper-util's legacy
//! pool returned them asynchronously and opened extra connections under load).
//!
//! Idle connections older than `pool_ttl` are closed: when a call looks for one, and by a
//! sweep every `pool_ttl` while the pool is alive.

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A connection's request handle.
pub type Sender = SendRequest<Full<Bytes>>;

/// Where a connection goes: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute `http`/`https` URI.
    pub fn of(uri: &Uri) -> Result<Origin, String> {
        let https = match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => true,
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => false,
            _ => {
                return Err(format!(
                    "{uri}: only http:// and https:// URLs are supported"
                ))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("{uri}: the URL has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Origin { https, host, port })
    }

    /// `host:port`, as messages name it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why no connection could be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// TCP connect (or name resolution) failed or timed out.
    Tcp(std::io::Error),
    /// The TLS handshake failed.
    Tls(std::io::Error),
    /// The HTTP/1.1 handshake failed.
    Http(hyper::Error),
}

struct Idle {
    sender: Sender,
    since: Instant,
}

/// The idle connections of one endpoint, by origin.
pub struct Pool {
    idle: Mutex<HashMap<Origin, Vec<Idle>>>,
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
    ttl: Duration,
}

impl Pool {
    /// An empty pool; when called inside a tokio runtime it also starts the idle sweep.
    pub fn new(
        tls: Arc<rustls::ClientConfig>,
        connect_timeout: Duration,
        ttl: Duration,
    ) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            idle: Mutex::new(HashMap::new()),
            tls,
            connect_timeout,
            ttl,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep(
                Arc::downgrade(&pool),
                ttl.max(Duration::from_millis(100)),
            ));
        }
        pool
    }

    /// An idle connection to `origin` that is still usable, or a new one.
    pub async fn checkout(&self, origin: &Origin) -> Result<Sender, ConnectError> {
        while let Some(mut sender) = self.take_idle(origin) {
            // Ready at once unless the connection is still finishing its last exchange.
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        // Boxed: connecting (TCP + TLS + handshake) is rare next to reuse, and its future is
        // large; inline it would enlarge every invocation's future.
        Box::pin(self.connect(origin)).await
    }

    /// Gives back a connection whose last reply was read to its end.
    pub fn checkin(&self, origin: &Origin, sender: Sender) {
        // `pool_ttl: 0` keeps no idle connection: dropping the sender closes it.
        if sender.is_closed() || self.ttl.is_zero() {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        idle.entry(origin.clone()).or_default().push(Idle {
            sender,
            since: Instant::now(),
        });
    }

    /// The most recently used idle connection of `origin` (dropping expired and closed ones).
    fn take_idle(&self, origin: &Origin) -> Option<Sender> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(origin)?;
        let now = Instant::now();
        // Oldest first: expired ones are at the front.
        let expired = list
            .iter()
            .take_while(|entry| now.duration_since(entry.since) > self.ttl)
            .count();
        list.drain(..expired);
        while let Some(entry) = list.pop() {
            if !entry.sender.is_closed() {
                return Some(entry.sender);
            }
        }
        None
    }

    /// Closes idle connections older than the TTL; returns how many are left.
    fn sweep_expired(&self) -> usize {
        let Ok(mut idle) = self.idle.lock() else {
            return 0;
        };
        let now = Instant::now();
        let mut left = 0;
        for list in idle.values_mut() {
            list.retain(|entry| {
                now.duration_since(entry.since) <= self.ttl && !entry.sender.is_closed()
            });
            left += list.len();
        }
        idle.retain(|_, list| !list.is_empty());
        left
    }

    /// A new connection to `origin`.
    pub async fn connect(&self, origin: &Origin) -> Result<Sender, ConnectError> {
        let address = (origin.host.as_str(), origin.port);
        let tcp =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
                Ok(Ok(tcp)) => tcp,
                Ok(Err(error)) => return Err(ConnectError::Tcp(error)),
                Err(_elapsed) => {
                    return Err(ConnectError::Tcp(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "no connection within {:?} (transport timeout connect)",
                            self.connect_timeout
                        ),
                    )))
                }
            };
        // Requests are small and latency matters more than segment count.
        let _ = tcp.set_nodelay(true);
        if origin.https {
            let name = ServerName::try_from(origin.host.clone()).map_err(|error| {
                ConnectError::Tls(std::io::Error::new(std::io::ErrorKind::InvalidInput, error))
            })?;
            let tls = TlsConnector::from(Arc::clone(&self.tls))
                .connect(name, tcp)
                .await
                .map_err(ConnectError::Tls)?;
            let (sender, connection) = http1::handshake(TokioIo::new(tls))
                .await
                .map_err(ConnectError::Http)?;
            tokio::spawn(drive(connection));
            Ok(sender)
        } else {
            let (sender, connection) = http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(ConnectError::Http)?;
            tokio::spawn(drive(connection));
            Ok(sender)
        }
    }
}

/// Runs one connection's I/O until it closes.
async fn drive<C>(connection: C)
where
    C: std::future::Future<Output = hyper::Result<()>>,
{
    if let Err(error) = connection.await {
        tracing::debug!(%error, "function connection closed");
    }
}

/// Every `every`, closes the expired idle connections, until the pool is dropped.
async fn sweep(pool: Weak<Pool>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        pool.sweep_expired();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_urls() {
        let of = |url: &str| Origin::of(&url.parse::<Uri>().expect("uri"));
        let origin = of("http://127.0.0.1:9000/fn/x").expect("origin");
        assert_eq!(
            origin,
            Origin {
                https: false,
                host: "127.0.0.1".into(),
                port: 9000
            }
        );
        assert_eq!(origin.authority(), "127.0.0.1:9000");
        assert_eq!(of("https://example.com/x").expect("origin").port, 443);
        assert_eq!(of("HTTP://example.com/x").expect("origin").port, 80);
        let v6 = of("http://[::1]:8080/").expect("origin");
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.authority(), "[::1]:8080");
        assert!(of("ftp://example.com/").is_err());
    }
}
