//! The HTTP ingress (`io.eddy.http.v1/ingress`): messages POSTed over HTTP/1.1.
//!
//! - `POST /v1/messages/{namespace}/{type}/{id}`: the body is the raw value bytes; the
//!   typename comes from the `eddy-typename` header, else the spec's `valueType`. Built-in
//!   types take their protobuf wrapper encoding (JSON callers use the batch endpoint).
//!   Path parts are percent-decoded; the id is the rest of the path and may contain `/`.
//! - `POST /v1/messages`: the body is JSON lines ([`crate::jsonl`]). Every line is validated
//!   first (a bad line fails the whole request, naming the line, and nothing is sent); then all
//!   are sent in line order and the reply waits until all are admitted.
//! - `GET /v1/health`: `{"status":"ok"}`.
//! - `GET /v1/stats`: the runtime's counters ([`crate::metrics::Totals`]).
//!
//! Replies are JSON: 202 `{"accepted":n}`, or `{"error":"..."}` with 400 (bad input or unknown
//! function type), 404 (unknown path), 405 (wrong method), 413 (body over [`MAX_BODY_BYTES`])
//! or 503 (shutting down). A request waits only while its target's mailbox is full, so a slow
//! address never holds up requests for other addresses.

use super::{protobuf, shutdown_requested};
use crate::address::{Address, FunctionType};
use crate::jsonl;
use crate::message::{Argument, Message};
use crate::metrics::Metrics;
use crate::router::Router;
use crate::spec::HttpIngressSpec;
use crate::{Error, Result};
use bytes::Bytes;
use eddy_protocol::BuiltIn;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Largest request body accepted (16 MiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Header naming the typename of a single message's body.
pub const TYPENAME_HEADER: &str = "eddy-typename";

/// How long a connection may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP ingress: its settings and where it sends messages.
pub(crate) struct HttpIngress {
    id: String,
    default_typename: Option<String>,
    router: Router,
    shutdown: watch::Receiver<bool>,
    metrics: Option<Arc<Metrics>>,
    /// The function type of the last line of the last batch: the next batch's lines share it,
    /// so every message of a type carries one `Arc`, which the partitions compare by pointer.
    last_type: std::sync::Mutex<Option<FunctionType>>,
}

impl HttpIngress {
    pub(crate) fn new(
        spec: &HttpIngressSpec,
        router: Router,
        shutdown: watch::Receiver<bool>,
    ) -> HttpIngress {
        HttpIngress {
            id: spec.id.clone(),
            default_typename: spec.default_typename.clone(),
            router,
            shutdown,
            metrics: None,
            last_type: std::sync::Mutex::new(None),
        }
    }

    /// Serves the runtime's counters on `GET /v1/stats`.
    pub(crate) fn with_metrics(mut self, metrics: Option<Arc<Metrics>>) -> HttpIngress {
        self.metrics = metrics;
        self
    }
}

/// Binds the listener of `spec` (port 0 picks a free port).
pub(crate) async fn bind(spec: &HttpIngressSpec) -> Result<TcpListener> {
    TcpListener::bind(spec.bind).await.map_err(|error| {
        Error::io(
            format!("http ingress {}: cannot listen on {}", spec.id, spec.bind),
            error,
        )
    })
}

/// Accepts connections until shutdown, then lets every connection finish its in-flight
/// request and returns when all are closed.
pub(crate) async fn serve(listener: TcpListener, ingress: HttpIngress) {
    let ingress = Arc::new(ingress);
    let mut shutdown = ingress.shutdown.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, peer, ingress.clone()));
                }
                Err(error) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(ingress = %ingress.id, %error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown_requested(&mut shutdown) => break,
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    tracing::debug!(ingress = %ingress.id, open = connections.len(), "http ingress stopped accepting");
    while connections.join_next().await.is_some() {}
    tracing::info!(ingress = %ingress.id, "http ingress stopped");
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    ingress: Arc<HttpIngress>,
) {
    let mut shutdown = ingress.shutdown.clone();
    let service = service_fn(move |request| {
        let ingress = ingress.clone();
        async move { Ok::<_, Infallible>(handle(&ingress, request).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown_requested(&mut shutdown) => {
            // Finish the request in flight (if any), then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "http ingress connection ended with an error");
    }
}

/// Answers one request.
async fn handle(ingress: &HttpIngress, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let response = match path.as_str() {
        "/v1/health" => match method {
            Method::GET | Method::HEAD if *ingress.shutdown.borrow() => shutting_down(),
            Method::GET | Method::HEAD => reply(StatusCode::OK, json!({"status": "ok"})),
            _ => method_not_allowed("GET", &path),
        },
        "/v1/stats" => match (&method, &ingress.metrics) {
            (&Method::GET, Some(metrics)) => reply(StatusCode::OK, metrics.totals().to_json()),
            (&Method::GET, None) => error_reply(
                StatusCode::NOT_FOUND,
                "this ingress serves no stats".to_string(),
            ),
            _ => method_not_allowed("GET", &path),
        },
        "/v1/messages" | "/v1/messages/" => match method {
            Method::POST => handle_batch(ingress, request).await,
            _ => method_not_allowed("POST", &path),
        },
        _ => match path.strip_prefix("/v1/messages/") {
            Some(rest) => match method {
                Method::POST => handle_single(ingress, rest, request).await,
                _ => method_not_allowed("POST", &path),
            },
            None => error_reply(
                StatusCode::NOT_FOUND,
                format!(
                    "no such path {path}: use POST /v1/messages/{{namespace}}/{{type}}/{{id}}, POST /v1/messages or GET /v1/health"
                ),
            ),
        },
    };
    tracing::debug!(ingress = %ingress.id, %method, %path, status = response.status().as_u16(), "http ingress request");
    response
}

/// `POST /v1/messages/{namespace}/{type}/{id}`.
async fn handle_single(
    ingress: &HttpIngress,
    address_path: &str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if *ingress.shutdown.borrow() {
        return shutting_down();
    }
    let target = match parse_address_path(address_path) {
        Ok(target) => target,
        Err(message) => return error_reply(StatusCode::BAD_REQUEST, message),
    };
    let typename = match request.headers().get(TYPENAME_HEADER) {
        Some(value) => match value.to_str() {
            Ok(text) => text.to_string(),
            Err(_) => {
                return error_reply(
                    StatusCode::BAD_REQUEST,
                    format!("header `{TYPENAME_HEADER}`: not printable ASCII"),
                )
            }
        },
        None => match &ingress.default_typename {
            Some(typename) => typename.clone(),
            None => {
                return error_reply(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "no typename: set the `{TYPENAME_HEADER}` header (or valueType in the ingress spec)"
                    ),
                )
            }
        },
    };
    if let Err(message) = jsonl::validate_typename(&typename) {
        return error_reply(
            StatusCode::BAD_REQUEST,
            format!("header `{TYPENAME_HEADER}`: {message}"),
        );
    }
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if BuiltIn::is_builtin(&typename) {
        if let Err(error) = BuiltIn::decode(&typename, &body) {
            return error_reply(
                StatusCode::BAD_REQUEST,
                format!(
                    "body: {error}; built-in types take their protobuf wrapper encoding here — to send JSON values use POST /v1/messages or `eddy send`"
                ),
            );
        }
    }
    let message = Message {
        target,
        caller: None,
        argument: Argument::new(typename, body),
    };
    if let Err(error) = ingress.router.check(&message) {
        return error_reply(StatusCode::BAD_REQUEST, error.to_string());
    }
    match ingress.router.send(message).await {
        Ok(()) => reply(StatusCode::ACCEPTED, json!({"accepted": 1})),
        Err(error) => send_error(error),
    }
}

/// `POST /v1/messages` with a body of JSON lines.
async fn handle_batch(ingress: &HttpIngress, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if *ingress.shutdown.borrow() {
        return shutting_down();
    }
    let binary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(protobuf::CONTENT_TYPE));
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let last_type = ingress
        .last_type
        .lock()
        .map(|last| last.clone())
        .unwrap_or(None);
    let read = if binary {
        read_binary(ingress, &body, last_type)
    } else {
        read_lines(ingress, &body, last_type)
    };
    let messages = match read {
        Ok((messages, last_type)) => {
            if let Ok(mut last) = ingress.last_type.lock() {
                *last = last_type;
            }
            messages
        }
        Err(error) => return error_reply(StatusCode::BAD_REQUEST, error),
    };
    let count = messages.len();
    // One event per worker for the whole request; the reply waits until every line sits
    // within its address's batch bound (only lines to a full mailbox hold it back).
    let admitted = match ingress.router.submit_all(messages) {
        Ok(mut admission) => admission.admitted().await,
        Err(error) => Err(error),
    };
    match admitted {
        Ok(()) => reply(StatusCode::ACCEPTED, json!({"accepted": count})),
        Err(error) => send_error(error),
    }
}

/// The lines of a body, split at `\n` (a final line needs none).
fn lines_of(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(body);
    std::iter::from_fn(move || {
        let text = rest?;
        match memchr::memchr(b'\n', text) {
            Some(end) => {
                rest = Some(&text[end + 1..]);
                Some(&text[..end])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

/// The messages of a JSON-lines body, each checked against the catalog; errors name the line.
fn read_lines(
    ingress: &HttpIngress,
    body: &[u8],
    last_type: Option<FunctionType>,
) -> std::result::Result<(Vec<Message>, Option<FunctionType>), String> {
    // Sized once: a batch holds up to thousands of messages.
    let mut messages = Vec::with_capacity(memchr::memchr_iter(b'\n', body).count() + 1);
    let mut lines = jsonl::LineParser::continuing(last_type);
    // Lines of the type checked last need no new check (compared by pointer first).
    let mut checked: Option<FunctionType> = None;
    for (index, raw) in lines_of(body).enumerate() {
        let number = index + 1;
        let line = std::str::from_utf8(raw)
            .map_err(|error| format!("line {number}: not UTF-8: {error}"))?
            .trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let message = lines
            .parse(line)
            .map_err(|error| format!("line {number}: {error}"))?;
        if checked.as_ref() != Some(&message.target.function_type) {
            ingress
                .router
                .check(&message)
                .map_err(|error| format!("line {number}: {error}"))?;
            checked = Some(message.target.function_type.clone());
        }
        messages.push(message);
    }
    Ok((messages, lines.last_function_type()))
}

/// The messages of a binary (`application/x-protobuf`) body, each checked against the
/// catalog; errors name the message.
fn read_binary(
    ingress: &HttpIngress,
    body: &[u8],
    last_type: Option<FunctionType>,
) -> std::result::Result<(Vec<Message>, Option<FunctionType>), String> {
    let mut reader = protobuf::BatchReader::continuing(last_type);
    let messages = reader.read(body)?;
    let mut checked: Option<&FunctionType> = None;
    for (index, message) in messages.iter().enumerate() {
        if checked != Some(&message.target.function_type) {
            ingress
                .router
                .check(message)
                .map_err(|error| format!("message {}: {error}", index + 1))?;
            checked = Some(&message.target.function_type);
        }
    }
    Ok((messages, reader.last_function_type()))
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] with 413.
async fn read_body<B>(request: Request<B>) -> Result<Bytes, Response<Full<Bytes>>>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        error_reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {MAX_BODY_BYTES} bytes (16 MiB)"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(error) => Err(error_reply(
            StatusCode::BAD_REQUEST,
            format!("cannot read the body: {error}"),
        )),
    }
}

/// `namespace/type/id` from the path after `/v1/messages/`, each part percent-decoded.
fn parse_address_path(path: &str) -> Result<Address, String> {
    let mut parts = path.splitn(3, '/');
    let (Some(namespace), Some(name), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "path /v1/messages/{path}: expected /v1/messages/{{namespace}}/{{type}}/{{id}}"
        ));
    };
    let namespace = percent_decode(namespace)?;
    let name = percent_decode(name)?;
    let id = percent_decode(id)?;
    if namespace.is_empty() || name.is_empty() || id.is_empty() || name.contains('/') {
        return Err(format!(
            "path /v1/messages/{path}: namespace, type and id must all be non-empty"
        ));
    }
    Ok(Address::new(FunctionType::new(namespace, name), id))
}

/// Decodes `%XX` escapes (the result must be UTF-8).
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("path part {text:?}: bad percent escape"))?;
            out.push(hex);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("path part {text:?}: not UTF-8 once decoded"))
}

fn send_error(error: Error) -> Response<Full<Bytes>> {
    match error {
        Error::ShuttingDown => shutting_down(),
        Error::Rejected(_) => error_reply(StatusCode::BAD_REQUEST, error.to_string()),
        other => error_reply(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

fn shutting_down() -> Response<Full<Bytes>> {
    error_reply(
        StatusCode::SERVICE_UNAVAILABLE,
        Error::ShuttingDown.to_string(),
    )
}

fn method_not_allowed(allowed: &'static str, path: &str) -> Response<Full<Bytes>> {
    let mut response = error_reply(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{path} accepts only {allowed}"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

fn error_reply(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    reply(status, json!({ "error": message }))
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        admit_everything, next_deliveries, next_delivery, router_with_inbox,
    };
    use super::super::Ingresses;
    use super::*;
    use crate::spec::IngressSpec;
    use eddy_protocol::TypedValue;
    use serde_json::Value;
    use std::net::SocketAddr;

    struct Server {
        ingresses: Ingresses,
        address: SocketAddr,
        stop: watch::Sender<bool>,
    }

    async fn start(router: Router, default_typename: Option<&str>) -> Server {
        let spec = IngressSpec::Http(HttpIngressSpec {
            document: 1,
            id: "com.example/http".into(),
            bind: "127.0.0.1:0".parse().expect("address"),
            default_typename: default_typename.map(str::to_string),
        });
        let (stop, shutdown) = watch::channel(false);
        let ingresses = Ingresses::start(&[spec], router, shutdown, None)
            .await
            .expect("start");
        let addresses = ingresses.http_addresses();
        assert_eq!(addresses.len(), 1);
        assert_eq!(addresses[0].0, "com.example/http");
        assert_ne!(addresses[0].1.port(), 0);
        Server {
            address: addresses[0].1,
            ingresses,
            stop,
        }
    }

    /// One HTTP/1.1 request over a fresh connection: the status and the JSON body.
    async fn call(
        address: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> (StatusCode, Value) {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, address.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).expect("request");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json)
    }

    fn long(n: i64) -> TypedValue {
        BuiltIn::Long(n).into()
    }

    #[tokio::test]
    async fn health_unknown_paths_and_methods() {
        let (router, _events) = router_with_inbox();
        let server = start(router, None).await;
        let (status, body) = call(server.address, "GET", "/v1/health", &[], "").await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
        let (status, body) = call(server.address, "GET", "/v2/nothing", &[], "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body["error"]
            .as_str()
            .expect("error")
            .contains("/v2/nothing"));
        let (status, _) = call(server.address, "GET", "/v1/messages", &[], "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let (status, _) = call(server.address, "PUT", "/v1/messages/a/b/c", &[], "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let (status, _) = call(server.address, "POST", "/v1/health", &[], "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        server.stop.send_replace(true);
        server.ingresses.join().await;
    }

    #[tokio::test]
    async fn single_message_is_sent_with_its_typename() {
        let (router, events) = router_with_inbox();
        let mut delivered = admit_everything(events);
        let server = start(router, Some("com.example/Default")).await;

        let (status, body) = call(
            server.address,
            "POST",
            "/v1/messages/com.example/greeter/al%2Fice%20x",
            &[(TYPENAME_HEADER, "com.example/Greeting")],
            r#"{"name":"alice"}"#,
        )
        .await;
        assert_eq!(
            (status, body),
            (StatusCode::ACCEPTED, json!({"accepted": 1}))
        );
        let message = delivered.recv().await.expect("delivered");
        assert_eq!(message.target.to_string(), "com.example/greeter/al/ice x");
        assert_eq!(message.caller, None);
        assert_eq!(
            message.argument,
            TypedValue::new("com.example/Greeting", &br#"{"name":"alice"}"#[..])
        );

        // No header: the spec's valueType.
        let (status, _) = call(
            server.address,
            "POST",
            "/v1/messages/com.example/g/b",
            &[],
            "x",
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let message = delivered.recv().await.expect("delivered");
        assert_eq!(
            message.argument,
            TypedValue::new("com.example/Default", &b"x"[..])
        );

        // Built-in types take their wire encoding.
        let encoded = BuiltIn::Long(7).encode();
        let (status, _) = call(
            server.address,
            "POST",
            "/v1/messages/com.example/g/c",
            &[(TYPENAME_HEADER, "io.statefun.types/long")],
            encoded,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(delivered.recv().await.expect("delivered").argument, long(7));

        server.stop.send_replace(true);
        server.ingresses.join().await;
    }

    #[tokio::test]
    async fn bad_single_requests_are_400_and_send_nothing() {
        let (router, mut events) = router_with_inbox();
        let server = start(router, None).await;
        // (path, headers, body, text the error must contain)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: [Case; 6] = [
            ("/v1/messages/com.example/g/a", &[], "x", "typename"),
            (
                "/v1/messages/com.example/g/a",
                &[(TYPENAME_HEADER, "bad")],
                "x",
                TYPENAME_HEADER,
            ),
            (
                "/v1/messages/com.example/g",
                &[(TYPENAME_HEADER, "a/b")],
                "x",
                "expected",
            ),
            (
                "/v1/messages/com.example/g/%zz",
                &[(TYPENAME_HEADER, "a/b")],
                "x",
                "percent",
            ),
            (
                "/v1/messages/com.example/g/a",
                &[(TYPENAME_HEADER, "io.statefun.types/long")],
                "\u{9}\u{1}",
                "built-in",
            ),
            (
                "/v1/messages/other.ns/g/a",
                &[(TYPENAME_HEADER, "a/b")],
                "x",
                "no endpoint serves function type other.ns/g",
            ),
        ];
        for (path, headers, body, needle) in cases {
            let (status, reply) = call(server.address, "POST", path, headers, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {reply}");
            let error = reply["error"].as_str().expect("error text");
            assert!(error.contains(needle), "{path}: {error}");
        }
        assert!(events.try_recv().is_err(), "nothing may be delivered");
        server.stop.send_replace(true);
        server.ingresses.join().await;
    }

    /// `messages` are, in order, `long(n)` to `com.example/f/{id}` for each `(id, n)`.
    fn assert_delivered(messages: Vec<Message>, expected: &[(&str, i64)]) {
        let delivered: Vec<(String, TypedValue)> = messages
            .into_iter()
            .map(|message| {
                let argument = message.argument.to_typed_value();
                (message.target.to_string(), argument)
            })
            .collect();
        let expected: Vec<(String, TypedValue)> = expected
            .iter()
            .map(|(id, n)| (format!("com.example/f/{id}"), long(*n)))
            .collect();
        assert_eq!(delivered, expected);
    }

    /// The next delivery is one group of `expected` (see [`assert_delivered`]); once its
    /// admission is released, `request` is answered 202 with their count.
    async fn accept_one_group(
        events: &mut tokio::sync::mpsc::UnboundedReceiver<crate::partition::Event>,
        request: tokio::task::JoinHandle<(StatusCode, Value)>,
        expected: &[(&str, i64)],
    ) {
        let (messages, ack) = next_deliveries(events).await;
        assert_delivered(messages, expected);
        ack.release();
        let (status, reply) = request.await.expect("join");
        assert_eq!(
            (status, reply),
            (StatusCode::ACCEPTED, json!({"accepted": expected.len()}))
        );
    }

    #[tokio::test]
    async fn binary_batches_are_read_checked_and_sent_in_order() {
        use eddy_protocol::ingress::{IngressMessage, MessageBatch};
        use eddy_protocol::Message as _;
        let (router, mut events) = router_with_inbox();
        let server = start(router, None).await;
        let encode = |targets: &[&str]| {
            let messages = targets
                .iter()
                .enumerate()
                .map(|(n, target)| IngressMessage {
                    target: (*target).into(),
                    typename: BuiltIn::Long(0).typename().into(),
                    value: BuiltIn::Long(n as i64).encode(),
                })
                .collect();
            MessageBatch { messages }.encode_to_vec()
        };
        let binary = [(header::CONTENT_TYPE.as_str(), "application/x-protobuf")];
        let body = encode(&["com.example/f/a", "nobody/f/b"]);
        let (status, reply) = call(server.address, "POST", "/v1/messages", &binary, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let error = reply["error"].as_str().expect("error");
        assert!(
            error.starts_with(
                "message 2: message rejected: no endpoint serves function type nobody/f"
            ),
            "{error}"
        );
        let (status, reply) = call(
            server.address,
            "POST",
            "/v1/messages",
            &binary,
            &b"\xff\xff"[..],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
        assert!(events.try_recv().is_err(), "nothing may be delivered");

        let body = encode(&["com.example/f/a", "com.example/f/b", "com.example/f/a"]);
        let address = server.address;
        let request = tokio::spawn(async move {
            let binary = [(
                header::CONTENT_TYPE.as_str(),
                "application/x-protobuf; proto=x",
            )];
            call(address, "POST", "/v1/messages", &binary, body).await
        });
        accept_one_group(&mut events, request, &[("a", 0), ("b", 1), ("a", 2)]).await;
        server.stop.send_replace(true);
        server.ingresses.join().await;
    }

    #[tokio::test]
    async fn batch_is_validated_whole_then_sent_in_order() {
        let (router, mut events) = router_with_inbox();
        let server = start(router, None).await;

        let bad_third = "{\"target\":\"com.example/f/a\",\"value\":1}\n\
                         {\"target\":\"com.example/f/b\",\"value\":2}\n\
                         {\"target\":\"com.example/f/c\"}\n";
        let (status, reply) = call(server.address, "POST", "/v1/messages", &[], bad_third).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let error = reply["error"].as_str().expect("error");
        assert!(error.starts_with("line 3: field `value`"), "{error}");

        let unknown_type = "{\"target\":\"com.example/f/a\",\"value\":1}\n\
                            {\"target\":\"nobody/f/b\",\"value\":2}\n";
        let (status, reply) = call(server.address, "POST", "/v1/messages", &[], unknown_type).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            reply["error"]
                .as_str()
                .expect("error")
                .starts_with("line 2: "),
            "{reply}"
        );
        assert!(events.try_recv().is_err(), "nothing may be delivered");

        // Valid: blank lines and CRLF are fine; delivered in line order, 202 after all admitted.
        let body = "{\"target\":\"com.example/f/a\",\"value\":1}\r\n\n\
                    {\"target\":\"com.example/f/b\",\"value\":2}\n\
                    {\"target\":\"com.example/f/a\",\"value\":3}";
        let address = server.address;
        let request =
            tokio::spawn(async move { call(address, "POST", "/v1/messages", &[], body).await });
        // One worker: one group, in line order, under one admission signal.
        accept_one_group(&mut events, request, &[("a", 1), ("b", 2), ("a", 3)]).await;
        server.stop.send_replace(true);
        server.ingresses.join().await;
    }

    #[tokio::test]
    async fn a_full_mailbox_holds_only_its_own_sender() {
        let (router, mut events) = router_with_inbox();
        let server = start(router, None).await;
        let address = server.address;
        let headers = [(TYPENAME_HEADER, "com.example/T")];
        let slow = tokio::spawn(async move {
            call(
                address,
                "POST",
                "/v1/messages/com.example/f/slow",
                &headers,
                "1",
            )
            .await
        });
        let (message, slow_ack) = next_delivery(&mut events).await;
        assert_eq!(message.target.id, "slow");

        let (fast_status, _) = {
            let fast = tokio::spawn(async move {
                call(
                    address,
                    "POST",
                    "/v1/messages/com.example/f/fast",
                    &headers,
                    "2",
                )
                .await
            });
            let (message, fast_ack) = next_delivery(&mut events).await;
            assert_eq!(message.target.id, "fast");
            fast_ack.release();
            fast.await.expect("join")
        };
        assert_eq!(fast_status, StatusCode::ACCEPTED);
        assert!(!slow.is_finished(), "the slow request must still wait");

        // Shutdown now: the in-flight request still completes once admitted.
        server.stop.send_replace(true);
        let join = tokio::spawn(server.ingresses.join());
        slow_ack.release();
        let (status, _) = slow.await.expect("join");
        assert_eq!(status, StatusCode::ACCEPTED);
        tokio::time::timeout(Duration::from_secs(10), join)
            .await
            .expect("join within 10 s")
            .expect("join");
        assert!(
            tokio::net::TcpStream::connect(address).await.is_err(),
            "must stop listening"
        );
    }

    #[tokio::test]
    async fn closed_workers_give_503() {
        let (router, events) = router_with_inbox();
        drop(events);
        let server = start(router, None).await;
        let (status, _) = call(
            server.address,
            "POST",
            "/v1/messages/com.example/f/a",
            &[(TYPENAME_HEADER, "a/b")],
            "x",
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        server.stop.send_replace(true);
        server.ingresses.join().await;
    }

    #[tokio::test]
    async fn declared_bodies_over_16_mib_are_413() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (router, mut events) = router_with_inbox();
        let server = start(router, None).await;
        // Only the headers: the server must answer without reading the body.
        let mut stream = tokio::net::TcpStream::connect(server.address)
            .await
            .expect("connect");
        let head = format!(
            "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut received = Vec::new();
        while !received.windows(4).any(|window| window == b"\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            let read = stream.read(&mut chunk).await.expect("read");
            assert!(read > 0, "closed before a reply: {received:?}");
            received.extend_from_slice(&chunk[..read]);
        }
        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        assert!(events.try_recv().is_err());
        drop(stream);
        server.stop.send_replace(true);
        server.ingresses.join().await;
    }

    #[tokio::test]
    async fn streamed_bodies_over_16_mib_are_413() {
        let over = Request::new(Full::new(Bytes::from(vec![b' '; MAX_BODY_BYTES + 1])));
        let response = read_body(over).await.expect_err("too large");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let exact = Request::new(Full::new(Bytes::from(vec![b' '; MAX_BODY_BYTES])));
        assert_eq!(
            read_body(exact).await.expect("at the limit").len(),
            MAX_BODY_BYTES
        );
    }

    #[tokio::test]
    async fn a_taken_port_fails_naming_the_address() {
        let (router, _events) = router_with_inbox();
        let server = start(router.clone(), None).await;
        let spec = IngressSpec::Http(HttpIngressSpec {
            document: 2,
            id: "com.example/again".into(),
            bind: server.address,
            default_typename: None,
        });
        let (_stop, shutdown) = watch::channel(false);
        let error = Ingresses::start(&[spec], router, shutdown, None)
            .await
            .err()
            .expect("port taken");
        assert!(matches!(error, Error::Io { .. }));
        assert!(
            error.to_string().contains(&server.address.to_string()),
            "{error}"
        );
        server.stop.send_replace(true);
        server.ingresses.join().await;
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%20%C3%A9").expect("ok"), "a/b é");
        assert!(percent_decode("%2").is_err());
        assert!(percent_decode("%ff").is_err());
    }
}
