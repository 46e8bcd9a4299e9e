//! HTTP transport: invokes the remote functions of one HTTP endpoint (StateFun's request-reply
//! protocol over HTTP/1.1, plain or TLS).
//!
//! One [`HttpTransport`] per endpoint holds a keep-alive connection pool ([`super::pool`]: our
//! own HTTP/1.1 client connections, [`super::conn`], over TCP, or TLS for `https://`) and a
//! semaphore of `pool_size` permits that bounds the calls in flight to the endpoint — and so
//! its connections. A call holds its permit for all its attempts and backoffs. The calling
//! future does the I/O itself: no task per connection.
//!
//! What depends only on the function type — the URL from the template, its origin (the pool
//! slot) and the request head up to `Content-Length` — is prepared once per function type and
//! cached (up to [`MAX_PREPARED`] types; beyond that it is prepared per call).
//!
//! One call = `POST <url>` with the encoded `ToFunction`, `Content-Type:
//! application/octet-stream`, `Accept-Encoding: gzip`, `User-Agent: eddy/<version>` and
//! `Content-Length`. The reply must be `200`, typed `application/octet-stream` (a missing
//! `Content-Type` is accepted), at most `payload_max_bytes` (checked against `Content-Length`,
//! while reading, and again after gunzip) and decode as a `FromFunction` (a reply with no oneof
//! set means "no side effects").
//!
//! Time limits:
//! - `call` bounds the whole call: every attempt and every backoff. A backoff that would end
//!   after the deadline is not slept: the call fails at once with the last attempt's reason.
//! - `connect` bounds each TCP connect (the TLS handshake after it counts against the attempt
//!   and call limits).
//! - `write` and `read`, when either is set, bound one attempt: the wait for the response head
//!   (connection set-up, sending the request and the function's work) is at most
//!   `write + read` (an unset one counts as zero),
//!   and `read` also bounds each wait for more bytes of the reply body. A timed-out attempt is
//!   retried.
//!
//! Retries (the call loop shared with the Lambda transport, `invoker/call.rs`: at most
//! `max_attempts` attempts, exponential backoff with jitter from `backon`, `initial_backoff`
//! doubling up to `max_backoff`): transport errors (connect, TLS, reset, malformed or oversize
//! reply heads), timed-out attempts, HTTP 408, 429 and 5xx, and bad replies (wrong content
//! type, oversize, not a `FromFunction`). Any other status fails the call at once. A request on
//! a pooled connection whose write failed, or whose connection ended or was reset before any
//! byte of the reply arrived (the server had closed the idle connection, racing the idle check
//! of the pool), is repeated once on a new connection without spending an attempt; a reply of
//! which anything was read never is. The final failure is an [`Error::Invocation`] whose reason
//! is fit for a dead-letter record.

use crate::address::{Address, FunctionType};
use crate::invoker::call::{self, Failure, Policy};
use crate::invoker::conn::{ConnError, Connection, Head};
use crate::invoker::pool::{ConnectError, Origin, Pool, Slot};
use crate::invoker::tls;
use crate::spec::{HttpTarget, TransportSpec};
use crate::{Error, Result};
use bytes::{Bytes, BytesMut};
use eddy_protocol::{FromFunction, Message as _};
use http::{StatusCode, Uri};
use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::timeout;

/// The only content type of requests and replies.
const OCTET_STREAM: &str = "application/octet-stream";
/// The `User-Agent` of requests.
const USER_AGENT_VALUE: &str = concat!("eddy/", env!("CARGO_PKG_VERSION"));
/// How many bytes of an error reply's body go into the failure reason.
const SNIPPET_BYTES: usize = 200;
/// Most bytes read from an error reply's body to find its snippet.
const SNIPPET_READ_LIMIT: usize = 64 * 1024;
/// Compressed bodies above this size are inflated on the blocking pool.
const INLINE_GUNZIP_LIMIT: usize = 256 * 1024;
/// Most function types whose request preparation is cached per endpoint (an `ns/*` endpoint
/// serves any name, so the cache is bounded).
pub const MAX_PREPARED: usize = 4096;

/// What a call to one function type needs besides the body, prepared once.
struct Prepared {
    /// The URL, for messages.
    url: String,
    /// The pool slot of the URL's origin.
    slot: Arc<Slot>,
    /// `POST <path> HTTP/1.1` and the fixed headers, each line ending in CRLF.
    head: Box<[u8]>,
}

/// Calls functions of one HTTP endpoint.
pub struct HttpTransport {
    target: HttpTarget,
    pool: Arc<Pool>,
    /// One permit per call in flight (`pool_size`).
    permits: Semaphore,
    /// Prepared requests by function type (foldhash, randomly seeded: cheaper than SipHash on
    /// every call).
    prepared: RwLock<HashMap<FunctionType, Arc<Prepared>, foldhash::fast::RandomState>>,
}

impl HttpTransport {
    /// A transport for `target` (loads its TLS material, so it can fail).
    pub fn new(target: &HttpTarget) -> Result<HttpTransport> {
        let transport = &target.transport;
        let https = target
            .url_path_template
            .trim_start()
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        let tls_config = tls::client_config(&transport.tls, https)?;
        let pool = Pool::new(Arc::new(tls_config), transport.connect, transport.pool_ttl);
        let permits = Semaphore::new(transport.pool_size.clamp(1, Semaphore::MAX_PERMITS));
        Ok(HttpTransport {
            target: target.clone(),
            pool,
            permits,
            prepared: RwLock::new(HashMap::default()),
        })
    }

    /// POSTs `body` (an encoded `ToFunction`) for `target` and decodes the reply.
    ///
    /// Retries inside the `call` budget as described in the module docs (the loop is
    /// `invoker/call.rs`); the final failure is an [`Error::Invocation`].
    pub async fn invoke(&self, target: &Address, body: Bytes) -> Result<FromFunction> {
        let transport = &self.target.transport;
        let prepared = match self.prepare(&target.function_type) {
            Ok(prepared) => prepared,
            Err((url, reason)) => {
                tracing::warn!(target = %target, url = %url, reason = %reason, "invocation failed");
                return Err(Error::Invocation {
                    target: target.to_string(),
                    url,
                    attempts: 0,
                    reason,
                });
            }
        };
        let policy = Policy {
            call: transport.call,
            retry: &transport.retry,
            permits: &self.permits,
            limit: (transport.pool_size, "pool_size"),
            shutdown: None,
        };
        let (prepared, body) = (&*prepared, &body[..]);
        // Each attempt is boxed: a call waiting for a permit (or backing off) then holds only
        // the loop's state, not the attempt's, and thousands of calls may be waiting.
        call::call(policy, target, &prepared.url, move || {
            Box::pin(self.attempt(prepared, body))
        })
        .await
    }

    /// The prepared request of `function_type` (cached), or `(url, reason)` if its URL is
    /// unusable.
    fn prepare(&self, function_type: &FunctionType) -> Result<Arc<Prepared>, (String, String)> {
        if let Ok(cache) = self.prepared.read() {
            if let Some(prepared) = cache.get(function_type) {
                return Ok(Arc::clone(prepared));
            }
        }
        let url = self.target.url_for(function_type);
        let parsed = parse_url(&url).and_then(|uri| Ok((Origin::of(&uri)?, uri)));
        let (origin, uri) = match parsed {
            Ok(parsed) => parsed,
            Err(reason) => return Err((url, reason)),
        };
        let prepared = Arc::new(Prepared {
            head: request_head(&uri),
            slot: self.pool.slot(&origin),
            url,
        });
        if let Ok(mut cache) = self.prepared.write() {
            if cache.len() < MAX_PREPARED {
                cache.insert(function_type.clone(), Arc::clone(&prepared));
            }
        }
        Ok(prepared)
    }

    /// One attempt: send the request, check and decode the reply.
    async fn attempt(&self, prepared: &Prepared, body: &[u8]) -> Result<FromFunction, Failure> {
        let transport = &self.target.transport;
        let slot = &*prepared.slot;
        let origin = slot.origin();
        let sent = async {
            let (mut connection, reused) = self
                .pool
                .checkout(slot)
                .await
                .map_err(|error| Failure::retry(describe_connect_error(&error, origin)))?;
            match exchange(&mut connection, &prepared.head, body).await {
                Ok(head) => Ok((connection, head)),
                // A pooled connection the server had closed while idle: nothing of a reply
                // arrived. One fresh connection, without spending an attempt.
                Err(error) if reused && error.before_reply() => {
                    tracing::debug!(
                        origin = %origin.authority(),
                        error = %error_chain(&error),
                        "pooled connection closed by the server, retrying on a new one"
                    );
                    drop(connection);
                    let mut connection = Box::pin(self.pool.connect(origin))
                        .await
                        .map_err(|error| Failure::retry(describe_connect_error(&error, origin)))?;
                    let head = exchange(&mut connection, &prepared.head, body)
                        .await
                        .map_err(|error| request_failure(&error))?;
                    Ok((connection, head))
                }
                Err(error) => Err(request_failure(&error)),
            }
        };
        let (mut connection, head) = match head_timeout(transport) {
            Some(limit) => match timeout(limit, sent).await {
                Ok(sent) => sent,
                Err(_elapsed) => {
                    return Err(Failure::retry(format!(
                        "no response within {limit:?} (transport timeouts write + read)"
                    )))
                }
            },
            None => sent.await,
        }?;

        let status = head.status;
        if status != 200 {
            let snippet = error_snippet(&mut connection, &head, transport.read).await;
            let reason = if snippet.is_empty() {
                format!("http {status}")
            } else {
                format!("http {status}: {snippet}")
            };
            let failure = if retryable_code(status) {
                Failure::retry(reason)
            } else {
                Failure::fatal(reason)
            };
            return Err(failure.with_status(status));
        }
        let status_failure = |reason: String| Failure::retry(reason).with_status(status);

        if let Some(content_type) = &head.content_type {
            let essence = content_type.split(';').next().unwrap_or_default().trim();
            if !essence.eq_ignore_ascii_case(OCTET_STREAM) {
                let snippet = error_snippet(&mut connection, &head, transport.read).await;
                let mut reason =
                    format!("reply content-type {content_type}, expected {OCTET_STREAM}");
                if !snippet.is_empty() {
                    reason.push_str(": ");
                    reason.push_str(&snippet);
                }
                return Err(status_failure(reason));
            }
        }
        let gzip = match content_encoding(&head.content_encoding) {
            Ok(gzip) => gzip,
            Err(reason) => return Err(status_failure(reason)),
        };
        let max = transport.payload_max_bytes;
        if let Some(length) = head.content_length {
            if length > max as u64 {
                return Err(status_failure(format!(
                    "reply of {length} bytes exceeds payload_max_bytes {max}"
                )));
            }
        }

        let mut buffer = BytesMut::new();
        match connection
            .read_body(&head, &mut buffer, max, transport.read)
            .await
        {
            // The reply was read to its end: the connection can serve the next call.
            Ok(()) => self.pool.checkin(slot, connection),
            Err(ConnError::BodyTooLarge(_)) => {
                return Err(status_failure(format!(
                    "reply exceeds payload_max_bytes {max} (more than {max} bytes received)"
                )))
            }
            Err(ConnError::Stalled(limit)) => {
                return Err(status_failure(format!(
                    "reply body stalled: no bytes within {limit:?} (transport timeout read)"
                )))
            }
            Err(error) => {
                return Err(status_failure(format!(
                    "reading the reply body failed: {}",
                    error_chain(&error)
                )))
            }
        }
        let payload = if gzip {
            gunzip_reply(buffer.freeze(), max)
                .await
                .map_err(status_failure)?
        } else {
            buffer.freeze()
        };
        FromFunction::decode(payload.clone()).map_err(|error| {
            status_failure(format!(
                "reply is not a FromFunction protobuf: {error} ({} bytes, starting {})",
                payload.len(),
                hex_prefix(&payload)
            ))
        })
    }
}

/// Sends one request on `connection` and reads the reply head.
async fn exchange(
    connection: &mut Connection,
    head: &[u8],
    body: &[u8],
) -> Result<Head, ConnError> {
    connection.send(head, body).await?;
    connection.read_head().await
}

/// A failed exchange as a retryable failure.
fn request_failure(error: &ConnError) -> Failure {
    let mut tls = false;
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        tls |= is_tls_error(cause);
        source = cause.source();
    }
    let layer = if tls { "tls: " } else { "" };
    Failure::retry(format!("request failed: {layer}{}", error_chain(error)))
}

/// The request head of `uri` up to (not including) `Content-Length`.
fn request_head(uri: &Uri) -> Box<[u8]> {
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let path = if path.is_empty() { "/" } else { path };
    let host = uri.authority().map_or("", |authority| {
        let text = authority.as_str();
        // Never the user information of the URL.
        text.rsplit_once('@').map_or(text, |(_, host)| host)
    });
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {OCTET_STREAM}\r\n\
         Accept-Encoding: gzip\r\nUser-Agent: {USER_AGENT_VALUE}\r\n"
    )
    .into_bytes()
    .into_boxed_slice()
}

/// Parses and checks an endpoint URL.
fn parse_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|error| format!("invalid url {url:?}: {error}"))?;
    match uri.scheme_str() {
        Some(scheme)
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {}
        Some(scheme) => {
            return Err(format!(
                "unsupported url scheme {scheme:?}, expected http or https"
            ))
        }
        None => {
            return Err(format!(
                "invalid url {url:?}: no http:// or https:// scheme"
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("invalid url {url:?}: no host"));
    }
    Ok(uri)
}

/// How long one attempt waits for the response head, when `read` or `write` is set.
fn head_timeout(transport: &TransportSpec) -> Option<Duration> {
    match (transport.write, transport.read) {
        (None, None) => None,
        (write, read) => Some(write.unwrap_or_default() + read.unwrap_or_default()),
    }
}

/// Statuses worth another attempt: 408, 429 and 5xx.
pub(super) fn retryable_status(status: StatusCode) -> bool {
    retryable_code(status.as_u16())
}

/// [`retryable_status`] of a status code.
fn retryable_code(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// `Ok(true)` for a gzip body, `Ok(false)` for identity, `Err` for anything else; `values`
/// are the `Content-Encoding` header values.
fn content_encoding(values: &[String]) -> Result<bool, String> {
    let mut gzip = false;
    for value in values {
        for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                if gzip {
                    return Err("reply is gzip-encoded twice".into());
                }
                gzip = true;
            } else if !coding.eq_ignore_ascii_case("identity") {
                return Err(format!(
                    "unsupported reply content-encoding {coding} (only gzip is accepted)"
                ));
            }
        }
    }
    Ok(gzip)
}

/// Inflates a gzip reply body of at most `max` bytes once inflated.
async fn gunzip_reply(compressed: Bytes, max: usize) -> Result<Bytes, String> {
    if compressed.len() <= INLINE_GUNZIP_LIMIT {
        return gunzip(&compressed, max);
    }
    tokio::task::spawn_blocking(move || gunzip(&compressed, max))
        .await
        .map_err(|error| format!("inflating the gzip reply failed: {error}"))?
}

fn gunzip(compressed: &[u8], max: usize) -> Result<Bytes, String> {
    let mut inflated = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed)
        .take(max as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|error| format!("reply is not valid gzip: {error}"))?;
    if inflated.len() > max {
        return Err(format!(
            "gzip reply inflates to more than {max} bytes, exceeds payload_max_bytes {max}"
        ));
    }
    Ok(Bytes::from(inflated))
}

/// The first bytes of a reply body as one line of text, for failure reasons. Best effort:
/// whatever could be read (and inflated) before an error or the size cap.
async fn error_snippet(connection: &mut Connection, head: &Head, read: Option<Duration>) -> String {
    let mut buffer = BytesMut::new();
    // An error here only cuts the snippet short.
    let _ = connection
        .read_body(head, &mut buffer, SNIPPET_READ_LIMIT, read)
        .await;
    let bytes = if content_encoding(&head.content_encoding) == Ok(true) {
        let mut inflated = Vec::new();
        // Keeps what was inflated before any error.
        let _ = flate2::read::MultiGzDecoder::new(&buffer[..])
            .take(SNIPPET_BYTES as u64 + 1)
            .read_to_end(&mut inflated);
        inflated
    } else {
        buffer.to_vec()
    };
    snippet(&bytes)
}

/// At most [`SNIPPET_BYTES`] of `bytes` as text on one line.
pub(super) fn snippet(bytes: &[u8]) -> String {
    let cut = bytes.len().min(SNIPPET_BYTES);
    // Text stays readable; anything else is escaped (`\xff`) rather than turned into U+FFFD.
    let valid = match std::str::from_utf8(&bytes[..cut]) {
        Ok(text) => Ok(text),
        // The cut fell inside a character: keep the text before it.
        Err(error) if error.error_len().is_none() => {
            Ok(std::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or_default())
        }
        Err(error) => Err(error),
    };
    let text: String = match valid {
        Ok(text) => text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
        Err(_) => bytes[..cut].escape_ascii().to_string(),
    };
    let mut text = text.trim().to_string();
    if bytes.len() > SNIPPET_BYTES {
        text.push_str("...");
    }
    text
}

/// The first bytes of a payload in hex, for "not a protobuf" reasons.
pub(super) fn hex_prefix(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "empty".into();
    }
    let mut text: String = bytes
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if bytes.len() > 16 {
        text.push_str("...");
    }
    text
}

/// A failed connection set-up as a reason: where to, what failed and the chain of causes.
fn describe_connect_error(error: &ConnectError, origin: &Origin) -> String {
    let (tls, chain) = match error {
        ConnectError::Tcp(error) => (is_tls_error(error), error_chain(error)),
        ConnectError::Tls(error) => (true, error_chain(error)),
    };
    let layer = if tls { "tls: " } else { "" };
    let mut reason = format!("connect to {} failed: {layer}{chain}", origin.authority());
    if tls && reason.contains("UnknownIssuer") {
        reason.push_str(
            " (the server certificate is not signed by a trusted CA: check trust_cacerts)",
        );
    }
    reason
}

/// True if `error` is a rustls error, or an I/O error wrapping one (at any depth: the TLS
/// connector wraps rustls errors in I/O errors twice, and `io::Error::source` skips a level).
fn is_tls_error(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<rustls::Error>() {
        return true;
    }
    match error
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => is_tls_error(inner),
        None => false,
    }
}

/// An error and its causes, joined by `: `.
pub(super) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::FunctionType;
    use crate::spec::{RetrySpec, TlsSpec};
    use eddy_protocol::reqreply::from_function::{
        persisted_value_mutation::MutationType, InvocationResponse, PersistedValueMutation,
        Response as ReplyKind,
    };
    use eddy_protocol::TypedValue;
    use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
    use http::{HeaderMap, HeaderValue, Method, Request, Response};
    use http_body_util::combinators::BoxBody;
    use http_body_util::{BodyExt as _, Full};
    use hyper::body::{Body, Frame, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::convert::Infallible;
    use std::future::Future;
    use std::io::Write as _;
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    type Reply = Response<BoxBody<Bytes, Infallible>>;

    /// What the test server received.
    struct Received {
        /// 1-based number of the request.
        hit: usize,
        method: Method,
        path: String,
        headers: HeaderMap,
        body: Bytes,
    }

    /// A small HTTP/1.1 server on 127.0.0.1, plain or TLS.
    struct TestServer {
        addr: SocketAddr,
        hits: Arc<AtomicUsize>,
        connections: Arc<AtomicUsize>,
        task: JoinHandle<()>,
    }

    impl TestServer {
        fn url(&self, scheme: &str) -> String {
            format!("{scheme}://{}/fn/{{function.name}}", self.addr)
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }

        /// Connections accepted so far.
        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn serve<F, Fut>(tls: Option<tokio_rustls::TlsAcceptor>, handler: F) -> TestServer
    where
        F: Fn(Received) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let task = tokio::spawn({
            let (hits, connections) = (hits.clone(), connections.clone());
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (handler, hits, tls) = (handler.clone(), hits.clone(), tls.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<Incoming>| {
                            let (handler, hits) = (handler.clone(), hits.clone());
                            async move {
                                let (head, body) = request.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|collected| collected.to_bytes())
                                    .unwrap_or_default();
                                let hit = hits.fetch_add(1, Ordering::SeqCst) + 1;
                                let received = Received {
                                    hit,
                                    method: head.method,
                                    path: head.uri.path().to_string(),
                                    headers: head.headers,
                                    body,
                                };
                                Ok::<_, Infallible>(handler(received).await)
                            }
                        });
                        match tls {
                            None => {
                                let io = TokioIo::new(stream);
                                let _ = http1::Builder::new().serve_connection(io, service).await;
                            }
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    let io = TokioIo::new(stream);
                                    let _ =
                                        http1::Builder::new().serve_connection(io, service).await;
                                }
                            }
                        }
                    });
                }
            }
        });
        TestServer {
            addr,
            hits,
            connections,
            task,
        }
    }

    /// A body sent in chunks with no Content-Length (chunked transfer encoding).
    struct Chunked(Vec<Bytes>);

    impl Body for Chunked {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.0.is_empty() {
                Poll::Ready(None)
            } else {
                let chunk = self.0.remove(0);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
        }
    }

    fn sample_reply() -> FromFunction {
        FromFunction {
            response: Some(ReplyKind::InvocationResult(InvocationResponse {
                state_mutations: vec![PersistedValueMutation {
                    mutation_type: MutationType::Modify as i32,
                    state_name: "seen".into(),
                    state_value: Some(TypedValue {
                        typename: "io.statefun.types/int".into(),
                        has_value: true,
                        value: Bytes::from_static(&[0x0d, 1, 0, 0, 0]),
                    }),
                }],
                ..InvocationResponse::default()
            })),
        }
    }

    fn full(bytes: impl Into<Bytes>) -> BoxBody<Bytes, Infallible> {
        Full::new(bytes.into()).boxed()
    }

    fn proto_reply(reply: &FromFunction) -> Reply {
        Response::builder()
            .header(CONTENT_TYPE, OCTET_STREAM)
            .body(full(reply.encode_to_vec()))
            .expect("reply")
    }

    fn status_reply(status: u16, text: &'static str) -> Reply {
        Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "text/plain")
            .body(full(text))
            .expect("reply")
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    fn address() -> Address {
        Address::new(FunctionType::new("com.example", "greeter"), "alice")
    }

    /// Fast settings: 3 attempts, short backoffs, 5 s budget.
    fn target(url: String, configure: impl FnOnce(&mut TransportSpec)) -> HttpTarget {
        let mut transport = TransportSpec {
            call: Duration::from_secs(5),
            connect: Duration::from_secs(1),
            retry: RetrySpec {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(20),
            },
            ..TransportSpec::default()
        };
        configure(&mut transport);
        HttpTarget {
            url_path_template: url,
            transport,
        }
    }

    fn request_body() -> Bytes {
        Bytes::from_static(b"\xa2\x06\x00")
    }

    async fn invoke(target: &HttpTarget) -> Result<FromFunction> {
        HttpTransport::new(target)
            .expect("transport")
            .invoke(&address(), request_body())
            .await
    }

    /// The `(attempts, reason)` of an invocation failure.
    fn invocation_failure(result: Result<FromFunction>) -> (u32, String) {
        match result {
            Err(Error::Invocation {
                attempts,
                reason,
                target,
                url,
            }) => {
                assert_eq!(target, "com.example/greeter/alice");
                assert!(url.ends_with("/fn/greeter"), "{url}");
                (attempts, reason)
            }
            Err(other) => panic!("expected an invocation error, got {other}"),
            Ok(reply) => panic!("expected an invocation error, got {reply:?}"),
        }
    }

    #[tokio::test]
    async fn posts_the_request_and_decodes_the_reply() {
        let server = serve(None, |received: Received| async move {
            let ok = received.method == Method::POST
                && received.path == "/fn/greeter"
                && received.headers.get(CONTENT_TYPE)
                    == Some(&HeaderValue::from_static(OCTET_STREAM))
                && received.headers.get(ACCEPT_ENCODING) == Some(&HeaderValue::from_static("gzip"))
                && received.headers.get(USER_AGENT)
                    == Some(&HeaderValue::from_static(USER_AGENT_VALUE))
                && received.body == request_body();
            if ok {
                proto_reply(&sample_reply())
            } else {
                status_reply(400, "unexpected request")
            }
        })
        .await;
        let reply = invoke(&target(server.url("http"), |_| {}))
            .await
            .expect("reply");
        assert_eq!(reply, sample_reply());
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn empty_reply_means_no_side_effects() {
        let server = serve(None, |_| async {
            // No Content-Type at all: accepted.
            Response::new(full(Bytes::new()))
        })
        .await;
        let reply = invoke(&target(server.url("http"), |_| {}))
            .await
            .expect("reply");
        assert_eq!(reply, FromFunction::default());
    }

    #[tokio::test]
    async fn content_type_with_parameters_is_accepted() {
        let server = serve(None, |_| async {
            Response::builder()
                .header(CONTENT_TYPE, "Application/Octet-Stream; charset=binary")
                .body(full(sample_reply().encode_to_vec()))
                .expect("reply")
        })
        .await;
        let reply = invoke(&target(server.url("http"), |_| {}))
            .await
            .expect("reply");
        assert_eq!(reply, sample_reply());
    }

    #[tokio::test]
    async fn retries_a_500_then_succeeds() {
        let server = serve(None, |received: Received| async move {
            if received.hit < 3 {
                status_reply(500, "boom")
            } else {
                proto_reply(&sample_reply())
            }
        })
        .await;
        let reply = invoke(&target(server.url("http"), |_| {}))
            .await
            .expect("reply");
        assert_eq!(reply, sample_reply());
        assert_eq!(server.hits(), 3);
    }

    #[tokio::test]
    async fn persistent_500_fails_after_max_attempts_with_the_body() {
        let server = serve(None, |_| async { status_reply(500, "boom\nat line 3") }).await;
        let (attempts, reason) =
            invocation_failure(invoke(&target(server.url("http"), |_| {})).await);
        assert_eq!(attempts, 3);
        assert_eq!(server.hits(), 3);
        assert_eq!(reason, "http 500: boom at line 3");
    }

    #[tokio::test]
    async fn retries_429_and_408() {
        let server = serve(None, |received: Received| async move {
            match received.hit {
                1 => status_reply(429, "slow down"),
                2 => status_reply(408, "too slow"),
                _ => proto_reply(&sample_reply()),
            }
        })
        .await;
        let reply = invoke(&target(server.url("http"), |_| {}))
            .await
            .expect("reply");
        assert_eq!(reply, sample_reply());
        assert_eq!(server.hits(), 3);
    }

    #[tokio::test]
    async fn does_not_retry_404() {
        let server = serve(None, |_| async { status_reply(404, "no such function") }).await;
        let (attempts, reason) =
            invocation_failure(invoke(&target(server.url("http"), |_| {})).await);
        assert_eq!(attempts, 1);
        assert_eq!(server.hits(), 1);
        assert_eq!(reason, "http 404: no such function");
    }

    #[tokio::test]
    async fn long_error_bodies_are_cut() {
        let server = serve(None, |_| async {
            Response::builder()
                .status(400)
                .body(full("x".repeat(1000)))
                .expect("reply")
        })
        .await;
        let (_, reason) = invocation_failure(invoke(&target(server.url("http"), |_| {})).await);
        assert_eq!(
            reason,
            format!("http 400: {}...", "x".repeat(SNIPPET_BYTES))
        );
    }

    #[tokio::test]
    async fn call_budget_bounds_a_server_that_never_answers() {
        let server = serve(None, |_| std::future::pending::<Reply>()).await;
        let budget = Duration::from_millis(300);
        let target = target(server.url("http"), |transport| transport.call = budget);
        let started = std::time::Instant::now();
        let (attempts, reason) = invocation_failure(invoke(&target).await);
        let elapsed = started.elapsed();
        assert!(elapsed >= budget, "failed early, after {elapsed:?}");
        assert!(
            elapsed < budget + Duration::from_secs(1),
            "took {elapsed:?}"
        );
        assert_eq!(attempts, 1);
        assert_eq!(reason, "timed out after 300ms (call budget)");
    }

    #[tokio::test]
    async fn read_timeout_bounds_one_attempt_and_is_retried() {
        let server = serve(None, |received: Received| async move {
            if received.hit == 1 {
                std::future::pending::<Reply>().await
            } else {
                proto_reply(&sample_reply())
            }
        })
        .await;
        let target = target(server.url("http"), |transport| {
            transport.read = Some(Duration::from_millis(100));
        });
        let reply = invoke(&target).await.expect("reply");
        assert_eq!(reply, sample_reply());
        assert_eq!(server.hits(), 2);
    }

    #[tokio::test]
    async fn read_timeouts_until_attempts_run_out() {
        let server = serve(None, |_| std::future::pending::<Reply>()).await;
        let target = target(server.url("http"), |transport| {
            transport.read = Some(Duration::from_millis(50));
            transport.retry.max_attempts = 2;
        });
        let (attempts, reason) = invocation_failure(invoke(&target).await);
        assert_eq!(attempts, 2);
        assert_eq!(
            reason,
            "no response within 50ms (transport timeouts write + read)"
        );
    }

    #[tokio::test]
    async fn backoff_never_sleeps_past_the_call_deadline() {
        let server = serve(None, |_| async { status_reply(503, "unavailable") }).await;
        let target = target(server.url("http"), |transport| {
            transport.call = Duration::from_secs(2);
            transport.retry.initial_backoff = Duration::from_secs(10);
            transport.retry.max_backoff = Duration::from_secs(10);
        });
        let started = std::time::Instant::now();
        let (attempts, reason) = invocation_failure(invoke(&target).await);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "slept past the deadline"
        );
        assert_eq!(attempts, 1);
        assert_eq!(
            reason,
            "http 503: unavailable; the call budget of 2s leaves no time for another attempt"
        );
    }

    #[tokio::test]
    async fn decodes_gzip_replies() {
        let server = serve(None, |_| async {
            Response::builder()
                .header(CONTENT_TYPE, OCTET_STREAM)
                .header(CONTENT_ENCODING, "gzip")
                .body(full(gzip(&sample_reply().encode_to_vec())))
                .expect("reply")
        })
        .await;
        let reply = invoke(&target(server.url("http"), |_| {}))
            .await
            .expect("reply");
        assert_eq!(reply, sample_reply());
    }

    #[tokio::test]
    async fn wrong_content_type_fails_after_max_attempts() {
        let server = serve(None, |_| async {
            Response::builder()
                .header(CONTENT_TYPE, "text/html; charset=utf-8")
                .body(full("<html>proxy error</html>"))
                .expect("reply")
        })
        .await;
        let (attempts, reason) =
            invocation_failure(invoke(&target(server.url("http"), |_| {})).await);
        assert_eq!(attempts, 3);
        assert_eq!(server.hits(), 3);
        assert_eq!(
            reason,
            "reply content-type text/html; charset=utf-8, expected application/octet-stream: \
             <html>proxy error</html>"
        );
    }

    #[tokio::test]
    async fn garbage_body_fails_after_max_attempts() {
        let server = serve(None, |_| async {
            Response::builder()
                .header(CONTENT_TYPE, OCTET_STREAM)
                .body(full(vec![0xff; 8]))
                .expect("reply")
        })
        .await;
        let (attempts, reason) =
            invocation_failure(invoke(&target(server.url("http"), |_| {})).await);
        assert_eq!(attempts, 3);
        assert_eq!(server.hits(), 3);
        assert!(
            reason.starts_with("reply is not a FromFunction protobuf: "),
            "{reason}"
        );
        assert!(
            reason.ends_with("(8 bytes, starting ffffffffffffffff)"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn oversize_reply_is_rejected_by_content_length() {
        let server = serve(None, |_| async {
            Response::builder()
                .header(CONTENT_TYPE, OCTET_STREAM)
                .body(full(vec![0u8; 4096]))
                .expect("reply")
        })
        .await;
        let target = target(server.url("http"), |transport| {
            transport.payload_max_bytes = 1024;
            transport.retry.max_attempts = 2;
        });
        let (attempts, reason) = invocation_failure(invoke(&target).await);
        assert_eq!(attempts, 2);
        assert_eq!(reason, "reply of 4096 bytes exceeds payload_max_bytes 1024");
    }

    #[tokio::test]
    async fn oversize_chunked_reply_is_rejected_while_reading() {
        let server = serve(None, |_| async {
            let chunks = vec![Bytes::from(vec![0u8; 800]), Bytes::from(vec![0u8; 800])];
            Response::builder()
                .header(CONTENT_TYPE, OCTET_STREAM)
                .body(Chunked(chunks).boxed())
                .expect("reply")
        })
        .await;
        let target = target(server.url("http"), |transport| {
            transport.payload_max_bytes = 1024;
            transport.retry.max_attempts = 1;
        });
        let (attempts, reason) = invocation_failure(invoke(&target).await);
        assert_eq!(attempts, 1);
        assert_eq!(
            reason,
            "reply exceeds payload_max_bytes 1024 (more than 1024 bytes received)"
        );
    }

    #[tokio::test]
    async fn oversize_reply_is_rejected_after_gunzip() {
        let server = serve(None, |_| async {
            Response::builder()
                .header(CONTENT_TYPE, OCTET_STREAM)
                .header(CONTENT_ENCODING, "gzip")
                .body(full(gzip(&[0u8; 100_000])))
                .expect("reply")
        })
        .await;
        let target = target(server.url("http"), |transport| {
            transport.payload_max_bytes = 1024;
            transport.retry.max_attempts = 1;
        });
        let (_, reason) = invocation_failure(invoke(&target).await);
        assert_eq!(
            reason,
            "gzip reply inflates to more than 1024 bytes, exceeds payload_max_bytes 1024"
        );
    }

    #[tokio::test]
    async fn connection_refused_is_retried_then_fails() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        drop(listener);
        let target = target(format!("http://{addr}/fn/{{function.name}}"), |_| {});
        let (attempts, reason) = invocation_failure(invoke(&target).await);
        assert_eq!(attempts, 3);
        assert!(
            reason.starts_with(&format!("connect to {addr} failed: ")),
            "{reason}"
        );
        assert!(reason.to_lowercase().contains("refused"), "{reason}");
    }

    #[tokio::test]
    async fn concurrency_is_bounded_by_pool_size() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let server = serve(None, {
            let (in_flight, most) = (in_flight.clone(), most.clone());
            move |_| {
                let (in_flight, most) = (in_flight.clone(), most.clone());
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Hold the request a little so that calls overlap.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    proto_reply(&sample_reply())
                }
            }
        })
        .await;
        let transport = Arc::new(
            HttpTransport::new(&target(server.url("http"), |transport| {
                transport.pool_size = 2;
            }))
            .expect("transport"),
        );
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let transport = transport.clone();
                tokio::spawn(async move { transport.invoke(&address(), request_body()).await })
            })
            .collect();
        for call in calls {
            call.await.expect("join").expect("reply");
        }
        assert_eq!(server.hits(), 6);
        assert!(most.load(Ordering::SeqCst) <= 2, "{most:?} calls in flight");
        assert!(
            server.connections() <= 2,
            "{} connections",
            server.connections()
        );
        // Finished connections are reused: sequential calls open none.
        let before = server.connections();
        for _ in 0..5 {
            transport
                .invoke(&address(), request_body())
                .await
                .expect("reply");
        }
        assert_eq!(server.connections(), before);
    }

    #[tokio::test]
    async fn connections_the_server_closes_are_replaced() {
        let server = serve(None, |_| async {
            let mut reply = proto_reply(&sample_reply());
            reply
                .headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            reply
        })
        .await;
        let transport = HttpTransport::new(&target(server.url("http"), |transport| {
            transport.retry.max_attempts = 1;
        }))
        .expect("transport");
        for _ in 0..3 {
            let reply = transport.invoke(&address(), request_body()).await;
            assert_eq!(reply.expect("reply"), sample_reply());
        }
        assert_eq!(server.connections(), 3);
    }

    /// A raw HTTP/1.1 server that answers one request per connection with `reply` and then
    /// closes the socket without saying so (no `Connection: close`), as a server whose idle
    /// timeout fires does. Returns its address and its connection count.
    async fn one_shot_server(reply: Vec<u8>) -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Read the head, then as many body bytes as Content-Length says.
                    let (head_end, length) = loop {
                        let Ok(read) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if read == 0 {
                            return;
                        }
                        seen.extend_from_slice(&chunk[..read]);
                        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&seen[..end]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|line| line.strip_prefix("content-length:"))
                                .and_then(|value| value.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                    };
                    while seen.len() < head_end + length {
                        let Ok(read) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if read == 0 {
                            return;
                        }
                        seen.extend_from_slice(&chunk[..read]);
                    }
                    let mut response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
                        reply.len()
                    )
                    .into_bytes();
                    response.extend_from_slice(&reply);
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (addr, connections, task)
    }

    /// A raw server that answers every request with `reply` (bytes as they are) and closes.
    async fn raw_server(reply: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => seen.extend_from_slice(&chunk[..read]),
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.write_all(reply).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (addr, requests, task)
    }

    #[tokio::test]
    async fn malformed_reply_heads_are_retried() {
        let (addr, requests, task) = raw_server(b"HTTP/1.1 2OO OK\r\n\r\n").await;
        let target = target(format!("http://{addr}/fn/{{function.name}}"), |_| {});
        let (attempts, reason) = invocation_failure(invoke(&target).await);
        assert_eq!(attempts, 3);
        assert_eq!(requests.load(Ordering::SeqCst), 3);
        assert_eq!(
            reason,
            "request failed: malformed reply: invalid response status in the head"
        );
        task.abort();
    }

    #[tokio::test]
    async fn interim_replies_and_chunked_bodies_from_a_raw_server() {
        let (addr, _, task) = raw_server(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\
              Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
              0;no-data\r\nX-Trailer: 1\r\n\r\n",
        )
        .await;
        let target = target(format!("http://{addr}/fn/{{function.name}}"), |_| {});
        let reply = invoke(&target).await.expect("reply");
        assert_eq!(reply, FromFunction::default());
        task.abort();
    }

    #[tokio::test]
    async fn chunked_replies_keep_the_connection() {
        let server = serve(None, |_| async {
            let encoded = Bytes::from(sample_reply().encode_to_vec());
            let chunks = vec![encoded.slice(..3), encoded.slice(3..)];
            Response::builder()
                .header(CONTENT_TYPE, OCTET_STREAM)
                .body(Chunked(chunks).boxed())
                .expect("reply")
        })
        .await;
        let transport = HttpTransport::new(&target(server.url("http"), |_| {})).expect("transport");
        for _ in 0..3 {
            let reply = transport.invoke(&address(), request_body()).await;
            assert_eq!(reply.expect("reply"), sample_reply());
        }
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn large_gzip_replies_are_inflated() {
        // Incompressible bytes: the gzip body is over INLINE_GUNZIP_LIMIT, so it is inflated
        // on the blocking pool.
        let mut noise = vec![0u8; INLINE_GUNZIP_LIMIT + 4096];
        let mut rng = fastrand::Rng::with_seed(7);
        rng.fill(&mut noise);
        let mut large = sample_reply();
        if let Some(ReplyKind::InvocationResult(result)) = large.response.as_mut() {
            if let Some(value) = result.state_mutations[0].state_value.as_mut() {
                value.value = Bytes::from(noise);
            }
        }
        let compressed = gzip(&large.encode_to_vec());
        assert!(compressed.len() > INLINE_GUNZIP_LIMIT);
        let server = serve(None, move |_| {
            let compressed = compressed.clone();
            async move {
                Response::builder()
                    .header(CONTENT_TYPE, OCTET_STREAM)
                    .header(CONTENT_ENCODING, "gzip")
                    .body(full(compressed))
                    .expect("reply")
            }
        })
        .await;
        let transport = HttpTransport::new(&target(server.url("http"), |_| {})).expect("transport");
        for _ in 0..2 {
            let reply = transport.invoke(&address(), request_body()).await;
            assert_eq!(reply.expect("reply"), large);
        }
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn requests_are_prepared_once_per_function_type() {
        let server = serve(None, |received: Received| async move {
            if received.path == "/fn/greeter" || received.path == "/fn/other" {
                proto_reply(&sample_reply())
            } else {
                status_reply(404, "unknown")
            }
        })
        .await;
        let transport = HttpTransport::new(&target(server.url("http"), |_| {})).expect("transport");
        let other = Address::new(FunctionType::new("com.example", "other"), "bob");
        for _ in 0..2 {
            transport
                .invoke(&address(), request_body())
                .await
                .expect("reply");
            transport
                .invoke(&other, request_body())
                .await
                .expect("reply");
        }
        let cached = transport
            .prepared
            .read()
            .map(|cache| cache.len())
            .unwrap_or_default();
        assert_eq!(cached, 2);
        // One origin: both types share its connection.
        assert_eq!(server.connections(), 1);
        let prepared = transport.prepare(&other.function_type).expect("prepared");
        assert_eq!(
            String::from_utf8_lossy(&prepared.head),
            format!(
                "POST /fn/other HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
                 Accept-Encoding: gzip\r\nUser-Agent: {USER_AGENT_VALUE}\r\n",
                server.addr
            )
        );
    }

    #[tokio::test]
    async fn idle_connections_the_server_dropped_cost_no_attempt() {
        let (addr, connections, task) = one_shot_server(sample_reply().encode_to_vec()).await;
        let transport = HttpTransport::new(&target(
            format!("http://{addr}/fn/{{function.name}}"),
            |transport| transport.retry.max_attempts = 1,
        ))
        .expect("transport");
        for _ in 0..4 {
            let reply = transport.invoke(&address(), request_body()).await;
            assert_eq!(reply.expect("reply"), sample_reply());
        }
        assert_eq!(connections.load(Ordering::SeqCst), 4);
        task.abort();
    }

    #[tokio::test]
    async fn connections_after_an_error_reply_are_not_reused() {
        let server = serve(None, |received| async move {
            if received.hit == 1 {
                status_reply(500, "try again")
            } else {
                proto_reply(&sample_reply())
            }
        })
        .await;
        let transport = HttpTransport::new(&target(server.url("http"), |_| {})).expect("transport");
        let reply = transport.invoke(&address(), request_body()).await;
        assert_eq!(reply.expect("reply"), sample_reply());
        assert_eq!(server.hits(), 2);
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn pool_ttl_zero_opens_a_connection_per_call() {
        let server = serve(None, |_| async { proto_reply(&sample_reply()) }).await;
        let transport = HttpTransport::new(&target(server.url("http"), |transport| {
            transport.pool_ttl = Duration::ZERO;
        }))
        .expect("transport");
        for _ in 0..3 {
            transport
                .invoke(&address(), request_body())
                .await
                .expect("reply");
        }
        assert_eq!(server.connections(), 3);
    }

    #[tokio::test]
    async fn idle_connections_expire_after_pool_ttl() {
        let server = serve(None, |_| async { proto_reply(&sample_reply()) }).await;
        let transport = HttpTransport::new(&target(server.url("http"), |transport| {
            transport.pool_ttl = Duration::from_millis(30);
        }))
        .expect("transport");
        transport
            .invoke(&address(), request_body())
            .await
            .expect("reply");
        transport
            .invoke(&address(), request_body())
            .await
            .expect("reply");
        assert_eq!(server.connections(), 1);
        // The behaviour under test is the passing of time itself: idle past the TTL.
        tokio::time::sleep(Duration::from_millis(60)).await;
        transport
            .invoke(&address(), request_body())
            .await
            .expect("reply");
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn invalid_url_fails_without_attempts() {
        let target = target("ftp://127.0.0.1/{function.name}".into(), |_| {});
        let (attempts, reason) = match invoke(&target).await {
            Err(Error::Invocation {
                attempts, reason, ..
            }) => (attempts, reason),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(attempts, 0);
        assert_eq!(
            reason,
            "unsupported url scheme \"ftp\", expected http or https"
        );
    }

    // ---- TLS ----

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/invoker/testdata")
            .join(name)
    }

    fn ring() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// The test server's TLS: `server.pem`, and client certificates signed by `ca.pem` required
    /// when `mutual`.
    fn acceptor(mutual: bool) -> tokio_rustls::TlsAcceptor {
        let certs = CertificateDer::pem_file_iter(fixture("server.pem"))
            .expect("server.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("server.pem");
        let key = PrivateKeyDer::from_pem_file(fixture("server-key.pem")).expect("server key");
        let builder = rustls::ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = if mutual {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_file(fixture("ca.pem")).expect("ca.pem"))
                .expect("ca");
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), ring())
                    .build()
                    .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder.with_single_cert(certs, key).expect("server config");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    fn tls_target(server: &TestServer, tls: TlsSpec) -> HttpTarget {
        target(server.url("https"), |transport| {
            transport.tls = tls;
            transport.retry.max_attempts = 2;
        })
    }

    #[tokio::test]
    async fn https_with_trusted_ca() {
        let server = serve(Some(acceptor(false)), |_| async {
            proto_reply(&sample_reply())
        })
        .await;
        let tls = TlsSpec {
            trust_cacerts: Some(fixture("ca.pem")),
            ..TlsSpec::default()
        };
        let reply = invoke(&tls_target(&server, tls)).await.expect("reply");
        assert_eq!(reply, sample_reply());
    }

    #[tokio::test]
    async fn https_with_localhost_name() {
        let server = serve(Some(acceptor(false)), |_| async {
            proto_reply(&sample_reply())
        })
        .await;
        let mut target = tls_target(
            &server,
            TlsSpec {
                trust_cacerts: Some(fixture("ca.pem")),
                ..TlsSpec::default()
            },
        );
        target.url_path_template = format!(
            "https://localhost:{}/fn/{{function.name}}",
            server.addr.port()
        );
        let reply = invoke(&target).await.expect("reply");
        assert_eq!(reply, sample_reply());
    }

    #[tokio::test]
    async fn mutual_tls_with_client_certificate() {
        let server = serve(Some(acceptor(true)), |_| async {
            proto_reply(&sample_reply())
        })
        .await;
        let tls = TlsSpec {
            trust_cacerts: Some(fixture("ca.pem")),
            client_cert: Some(fixture("client.pem")),
            client_key: Some(fixture("client-key.pem")),
            client_key_password: None,
        };
        let reply = invoke(&tls_target(&server, tls)).await.expect("reply");
        assert_eq!(reply, sample_reply());
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn mutual_tls_without_client_certificate_fails() {
        let server = serve(Some(acceptor(true)), |_| async {
            proto_reply(&sample_reply())
        })
        .await;
        let tls = TlsSpec {
            trust_cacerts: Some(fixture("ca.pem")),
            ..TlsSpec::default()
        };
        let (attempts, reason) = invocation_failure(invoke(&tls_target(&server, tls)).await);
        assert_eq!(attempts, 2);
        assert_eq!(server.hits(), 0);
        eprintln!("mutual tls without a client certificate: {reason}");
        assert!(
            reason.contains("request failed") || reason.contains("tls"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn wrong_ca_fails_with_a_tls_reason() {
        let server = serve(Some(acceptor(false)), |_| async {
            proto_reply(&sample_reply())
        })
        .await;
        let tls = TlsSpec {
            trust_cacerts: Some(fixture("other-ca.pem")),
            ..TlsSpec::default()
        };
        let (attempts, reason) = invocation_failure(invoke(&tls_target(&server, tls)).await);
        assert_eq!(attempts, 2);
        assert_eq!(server.hits(), 0);
        assert!(reason.contains(": tls: "), "{reason}");
        assert!(reason.contains("UnknownIssuer"), "{reason}");
        assert!(reason.contains("check trust_cacerts"), "{reason}");
    }

    #[tokio::test]
    async fn plain_http_works_with_tls_settings() {
        let server = serve(None, |_| async { proto_reply(&sample_reply()) }).await;
        let target = target(server.url("http"), |transport| {
            transport.tls.trust_cacerts = Some(fixture("ca.pem"));
        });
        let reply = invoke(&target).await.expect("reply");
        assert_eq!(reply, sample_reply());
    }
}
