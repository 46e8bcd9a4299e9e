//! The keep-alive connection pool of one HTTP endpoint.
//!
//! Each connection is one of our own HTTP/1.1 client connections ([`super::conn`]) over TCP,
//! or over TLS (rustls) for `https://` URLs; it has no task of its own. A call takes an idle
//! connection of its origin (scheme, host and port; a [`Slot`] per origin) or opens one, sends
//! one request on it and gives it back once the reply body has been read to its end; a
//! connection whose reply was not read to the end, that failed, or that the server asked to
//! close is dropped instead. Because the caller's permit (`pool_size`) bounds calls in flight
//! and a connection is only ever handed to one call at a time, an endpoint never holds more
//! than `pool_size` connections, and finished connections are reused at once.
//!
//! Before an idle connection is handed out, one non-blocking read checks that the server has
//! not closed it meanwhile (a closed one is dropped and the next one tried). Idle connections
//! older than `pool_ttl` are closed: when a call looks for one, and by a sweep every `pool_ttl`
//! while the pool is alive (which also drops the ones the server closed). `pool_ttl: 0` keeps
//! no idle connection.

use crate::invoker::conn::{Connection, Stream};
use http::Uri;
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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
}

struct Idle {
    connection: Connection,
    since: Instant,
}

/// The idle connections of one origin.
pub struct Slot {
    origin: Origin,
    /// Oldest first.
    idle: Mutex<Vec<Idle>>,
}

impl Slot {
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// How many idle connections wait in this slot.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }
}

/// The idle connections of one endpoint, by origin.
pub struct Pool {
    slots: Mutex<HashMap<Origin, Arc<Slot>>>,
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
            slots: Mutex::new(HashMap::new()),
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

    /// The slot of `origin` (callers keep it: looking it up hashes the origin).
    pub fn slot(&self, origin: &Origin) -> Arc<Slot> {
        let new = || {
            Arc::new(Slot {
                origin: origin.clone(),
                idle: Mutex::new(Vec::new()),
            })
        };
        match self.slots.lock() {
            Ok(mut slots) => Arc::clone(slots.entry(origin.clone()).or_insert_with(new)),
            // A poisoned map: a slot of its own still works, it is just not shared.
            Err(_) => new(),
        }
    }

    /// An idle connection of `slot` that is still usable (`true`: reused), or a new one.
    pub async fn checkout(&self, slot: &Slot) -> Result<(Connection, bool), ConnectError> {
        while let Some(mut connection) = self.take_idle(slot) {
            if connection.is_idle_usable() {
                return Ok((connection, true));
            }
            tracing::debug!(
                origin = %slot.origin.authority(),
                "dropping an idle connection the server closed"
            );
        }
        // Boxed: connecting (TCP + TLS) is rare next to reuse, and its future is large;
        // inline it would enlarge every attempt's future.
        let connection = Box::pin(self.connect(&slot.origin)).await?;
        Ok((connection, false))
    }

    /// Gives back a connection after a call: kept if its last reply was read to its end and
    /// the server allows another request, else closed.
    pub fn checkin(&self, slot: &Slot, connection: Connection) {
        // `pool_ttl: 0` keeps no idle connection: dropping it closes it.
        if !connection.is_reusable() || self.ttl.is_zero() {
            return;
        }
        let Ok(mut idle) = slot.idle.lock() else {
            return;
        };
        idle.push(Idle {
            connection,
            since: Instant::now(),
        });
    }

    /// The most recently used idle connection of `slot`, dropping expired ones.
    fn take_idle(&self, slot: &Slot) -> Option<Connection> {
        let mut expired = Vec::new();
        let taken = {
            let mut idle = slot.idle.lock().ok()?;
            let now = Instant::now();
            let count = idle
                .iter()
                .take_while(|entry| now.duration_since(entry.since) > self.ttl)
                .count();
            if count > 0 {
                expired.extend(idle.drain(..count));
            }
            idle.pop()
        };
        // Closed outside the lock.
        drop(expired);
        taken.map(|entry| entry.connection)
    }

    /// Closes idle connections older than the TTL or that the server closed, and forgets
    /// origins nobody uses; returns how many idle connections are left.
    fn sweep_expired(&self) -> usize {
        let slots: Vec<Arc<Slot>> = match self.slots.lock() {
            Ok(mut slots) => {
                // Only the map holds these, and they have nothing idle.
                slots.retain(|_, slot| Arc::strong_count(slot) > 1 || slot.idle_count() > 0);
                slots.values().cloned().collect()
            }
            Err(_) => return 0,
        };
        let now = Instant::now();
        let mut left = 0;
        for slot in slots {
            let Ok(mut idle) = slot.idle.lock() else {
                continue;
            };
            let taken = std::mem::take(&mut *idle);
            drop(idle);
            // Checked (and closed) outside the lock.
            let kept: Vec<Idle> = taken
                .into_iter()
                .filter_map(|mut entry| {
                    let fresh = now.duration_since(entry.since) <= self.ttl;
                    (fresh && entry.connection.is_idle_usable()).then_some(entry)
                })
                .collect();
            let Ok(mut idle) = slot.idle.lock() else {
                continue;
            };
            // Connections given back meanwhile are newer: they go after the kept ones.
            let newer = std::mem::replace(&mut *idle, kept);
            idle.extend(newer);
            left += idle.len();
        }
        left
    }

    /// A new connection to `origin`.
    pub async fn connect(&self, origin: &Origin) -> Result<Connection, ConnectError> {
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
        let stream = if origin.https {
            let name = ServerName::try_from(origin.host.clone()).map_err(|error| {
                ConnectError::Tls(std::io::Error::new(std::io::ErrorKind::InvalidInput, error))
            })?;
            let tls = TlsConnector::from(Arc::clone(&self.tls))
                .connect(name, tcp)
                .await
                .map_err(ConnectError::Tls)?;
            Stream::Tls(Box::new(tls))
        } else {
            Stream::Plain(tcp)
        };
        tracing::debug!(origin = %origin.authority(), "opened a function connection");
        Ok(Connection::new(stream))
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
    use crate::invoker::call::tests::wait_for;
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    /// The connection tests' server: an empty `200` for every request, closing the connection
    /// after the reply when `close` is set (without saying so). Counts the connections it
    /// accepted.
    async fn server(close: bool) -> (Origin, Arc<AtomicUsize>) {
        let mode = if close { "close" } else { "keep" };
        let (addr, accepted) = crate::invoker::conn::tests::tcp_server(mode).await;
        let origin = Origin {
            https: false,
            host: "127.0.0.1".into(),
            port: addr.port(),
        };
        (origin, accepted)
    }

    fn pool(ttl: Duration) -> Arc<Pool> {
        let tls = crate::invoker::tls::client_config(&crate::spec::TlsSpec::default(), false)
            .expect("tls config");
        Pool::new(Arc::new(tls), Duration::from_secs(1), ttl)
    }

    /// One call through the pool; true if it reused a connection.
    async fn call(pool: &Pool, slot: &Slot) -> bool {
        let (mut connection, reused) = pool.checkout(slot).await.expect("connection");
        crate::invoker::conn::tests::exchange(&mut connection).await;
        pool.checkin(slot, connection);
        reused
    }

    #[tokio::test]
    async fn connections_are_reused_at_once() {
        let (origin, accepted) = server(false).await;
        let pool = pool(Duration::from_secs(10));
        let slot = pool.slot(&origin);
        assert!(
            Arc::ptr_eq(&slot, &pool.slot(&origin)),
            "one slot per origin"
        );
        assert!(!call(&pool, &slot).await);
        for _ in 0..5 {
            assert!(call(&pool, &slot).await);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(slot.idle_count(), 1);

        // Two calls at once need two connections; both are kept afterwards.
        let (first, _) = pool.checkout(&slot).await.expect("first");
        let (second, reused) = pool.checkout(&slot).await.expect("second");
        assert!(!reused);
        wait_for(|| accepted.load(Ordering::SeqCst) == 2).await;
        // The reused one is still clean and is kept; the new one never read a reply and is
        // closed, as is one whose request was sent but whose reply was not read.
        pool.checkin(&slot, first);
        pool.checkin(&slot, second);
        assert_eq!(slot.idle_count(), 1);
        let (mut third, reused) = pool.checkout(&slot).await.expect("third");
        assert!(reused);
        third
            .send(b"POST / HTTP/1.1\r\nHost: test\r\n", b"")
            .await
            .expect("sent");
        pool.checkin(&slot, third);
        assert_eq!(slot.idle_count(), 0);
    }

    #[tokio::test]
    async fn pool_ttl_zero_keeps_no_connection() {
        let (origin, accepted) = server(false).await;
        let pool = pool(Duration::ZERO);
        let slot = pool.slot(&origin);
        for _ in 0..3 {
            assert!(!call(&pool, &slot).await);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert_eq!(slot.idle_count(), 0);
    }

    #[tokio::test]
    async fn expired_idle_connections_are_not_reused_and_are_swept() {
        let (origin, accepted) = server(false).await;
        let pool = pool(Duration::from_millis(30));
        let slot = pool.slot(&origin);
        call(&pool, &slot).await;
        assert_eq!(pool.sweep_expired(), 1);
        // The behaviour under test is the passing of time itself: idle past the TTL.
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(
            !call(&pool, &slot).await,
            "the expired connection was reused"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(pool.sweep_expired(), 0);
        assert_eq!(slot.idle_count(), 0);
    }

    #[tokio::test]
    async fn idle_connections_the_server_closed_are_replaced() {
        let (origin, accepted) = server(true).await;
        let pool = pool(Duration::from_secs(10));
        let slot = pool.slot(&origin);
        call(&pool, &slot).await;
        assert_eq!(slot.idle_count(), 1);
        // Once the close has arrived, the idle check drops the connection.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!call(&pool, &slot).await, "a closed connection was reused");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // And the sweep drops the ones closed while idle.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.sweep_expired(), 0);
    }

    #[tokio::test]
    async fn unused_origins_are_forgotten() {
        let (origin, _) = server(false).await;
        let pool = pool(Duration::from_secs(10));
        let slot = pool.slot(&origin);
        pool.sweep_expired();
        assert!(Arc::ptr_eq(&slot, &pool.slot(&origin)), "a held slot stays");
        drop(slot);
        pool.sweep_expired();
        let count = pool
            .slots
            .lock()
            .map(|slots| slots.len())
            .unwrap_or_default();
        assert_eq!(count, 0);
    }
}
