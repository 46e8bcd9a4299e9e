//! The HTTP side: an HTTP/1.1 keep-alive server speaking the StateFun request-reply protocol.
//!
//! Routes:
//! - `POST /<anything>/<function>`: body = `ToFunction`, reply 200 with `FromFunction`
//!   (`application/octet-stream`); 404 for an unknown function, 400 for a body that does not
//!   decode or a request the function rejects.
//! - `GET /stats`: the [`Stats`] as JSON; `POST /stats/reset` zeroes them.
//! - any other method: 405.

use crate::logic::{self, EgressId, Function};
use crate::stats::Stats;
use bytes::Bytes;
use eddy_protocol::{Message, ToFunction};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// What every connection shares.
pub struct App {
    pub egress: Option<EgressId>,
    pub stats: Stats,
}

/// Accepts connections forever, one task per connection.
pub async fn serve(listener: TcpListener, app: Arc<App>) -> std::io::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: keep serving the open connections.
            Err(error) => {
                eprintln!("eddy-sample-counter: accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        app.stats
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        let app = app.clone();
        tokio::spawn(async move {
            let seen_epoch = Arc::new(AtomicU64::new(u64::MAX));
            let service = hyper::service::service_fn(move |request| {
                let app = app.clone();
                let seen_epoch = seen_epoch.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(handle(&app, &seen_epoch, request).await)
                }
            });
            // Connection errors (peer reset, bad HTTP) end only this connection.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    app: &App,
    seen_epoch: &AtomicU64,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    app.stats.requests.fetch_add(1, Ordering::Relaxed);
    let path = request.uri().path().to_string();
    match (request.method(), path.as_str()) {
        (&Method::GET, "/stats") => json(StatusCode::OK, app.stats.to_json()),
        (&Method::POST, "/stats/reset") => {
            app.stats.reset();
            json(StatusCode::OK, "{\"reset\":true}".to_string())
        }
        (&Method::POST, _) => {
            app.stats.note_connection(seen_epoch);
            invoke(app, &path, request.into_body()).await
        }
        (method, _) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {method} not allowed: POST a ToFunction to /<function>"),
        ),
    }
}

async fn invoke(app: &App, path: &str, body: Incoming) -> Response<Full<Bytes>> {
    let name = path.rsplit('/').next().unwrap_or("");
    let Some(function) = Function::from_name(name) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("unknown function {name:?} (known: counter, echo)"),
        );
    };
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(failure) => {
            return if failure.is::<http_body_util::LengthLimitError>() {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("body over {MAX_BODY} bytes"),
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    &format!("reading the body: {failure}"),
                )
            };
        }
    };
    let request = match ToFunction::decode(body) {
        Ok(request) => request,
        Err(failure) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("body is not a ToFunction: {failure}"),
            )
        }
    };
    let now = now_micros();
    let latency = &app.stats.latency_us;
    let mut record = |sent: u64| latency.record(now.saturating_sub(sent));
    match logic::invoke(function, &request, app.egress.as_ref(), &mut record) {
        Ok(outcome) => {
            if outcome.processed {
                let stats = &app.stats;
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats
                    .messages
                    .fetch_add(outcome.messages as u64, Ordering::Relaxed);
            }
            let mut response = Response::new(Full::new(Bytes::from(outcome.reply.encode_to_vec())));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
        Err(bad) => error(StatusCode::BAD_REQUEST, &bad.0),
    }
}

/// Microseconds since the UNIX epoch (0 if the clock is before it).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as u64)
        .unwrap_or(0)
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, format!("{{\"error\":\"{}\"}}", escape(message)))
}

/// `text` escaped for a JSON string literal.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            control if (control as u32) < 0x20 => {
                escaped.push_str(&format!("\\u{:04x}", control as u32))
            }
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::{COUNT_STATE, PING_TYPENAME};
    use eddy_protocol::reqreply::from_function;
    use eddy_protocol::reqreply::to_function::{
        self, Invocation, InvocationBatchRequest, PersistedValue,
    };
    use eddy_protocol::{Address, BuiltIn, FromFunction, TypedValue};
    use hyper::client::conn::http1::SendRequest;

    struct Server {
        addr: std::net::SocketAddr,
        app: Arc<App>,
    }

    async fn start(egress: Option<&str>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let app = Arc::new(App {
            egress: egress.map(|id| id.parse().expect("egress id")),
            stats: Stats::default(),
        });
        tokio::spawn(serve(listener, app.clone()));
        Server { addr, app }
    }

    async fn connect(server: &Server) -> SendRequest<Full<Bytes>> {
        let stream = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        sender
    }

    async fn call(
        sender: &mut SendRequest<Full<Bytes>>,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Bytes) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, body)
    }

    fn request(id: &str, count: Option<i64>, arguments: Vec<TypedValue>) -> Vec<u8> {
        ToFunction {
            request: Some(to_function::Request::Invocation(InvocationBatchRequest {
                target: Some(Address {
                    namespace: "eddy.demo".into(),
                    r#type: "counter".into(),
                    id: id.into(),
                }),
                state: count
                    .map(|count| PersistedValue {
                        state_name: COUNT_STATE.into(),
                        state_value: Some(BuiltIn::Long(count).to_typed_value()),
                    })
                    .into_iter()
                    .collect(),
                invocations: arguments
                    .into_iter()
                    .map(|argument| Invocation {
                        caller: None,
                        argument: Some(argument),
                    })
                    .collect(),
            })),
        }
        .encode_to_vec()
    }

    fn ping() -> TypedValue {
        TypedValue::new(PING_TYPENAME, (now_micros() - 1_000).to_le_bytes().to_vec())
    }

    #[tokio::test]
    async fn serves_counter_over_a_kept_alive_connection() {
        let server = start(Some("eddy.demo/greetings")).await;
        let mut sender = connect(&server).await;

        let (status, body) = call(
            &mut sender,
            Method::POST,
            "/counter",
            request("a", None, vec![ping()]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let reply = FromFunction::decode(body).expect("a FromFunction");
        assert!(matches!(
            reply.response,
            Some(from_function::Response::IncompleteInvocationContext(_))
        ));

        let (status, body) = call(
            &mut sender,
            Method::POST,
            "/fns/counter",
            request("a", Some(1), vec![ping(), ping()]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let Some(from_function::Response::InvocationResult(result)) =
            FromFunction::decode(body).expect("a FromFunction").response
        else {
            panic!("expected a result");
        };
        assert_eq!(result.outgoing_egresses.len(), 2);
        let count = result.state_mutations[0]
            .state_value
            .as_ref()
            .expect("value");
        assert_eq!(
            BuiltIn::from_typed_value(count).ok(),
            Some(BuiltIn::Long(3))
        );

        let (status, body) = call(
            &mut sender,
            Method::POST,
            "/echo",
            request("b", None, vec![ping()]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(FromFunction::decode(body).expect("decodes").response, None);

        let (status, body) = call(&mut sender, Method::GET, "/stats", Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(
            text.starts_with("{\"messages\":3,\"batches\":2,\"requests\":4,\"connections_used\":1,\"connections_accepted\":1,\"latency_us\":{\"count\":3,"),
            "{text}"
        );
        let summary = server.app.stats.latency_us.summary();
        assert!(summary.p50 >= 1_000, "{summary:?}");

        let (status, _) = call(&mut sender, Method::POST, "/stats/reset", Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(server.app.stats.messages.load(Ordering::Relaxed), 0);
        assert_eq!(server.app.stats.latency_us.summary().count, 0);
    }

    #[tokio::test]
    async fn rejects_bad_input_without_dying() {
        let server = start(None).await;
        let mut sender = connect(&server).await;
        let (status, body) = call(
            &mut sender,
            Method::POST,
            "/counter",
            vec![0xff, 0xff, 0xff],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&body).contains("not a ToFunction"));

        let (status, _) = call(&mut sender, Method::POST, "/counter", Vec::new()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "an empty ToFunction has no batch"
        );

        let (status, _) = call(
            &mut sender,
            Method::POST,
            "/nobody",
            request("a", None, vec![]),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (status, _) = call(&mut sender, Method::PUT, "/counter", Vec::new()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

        // Still serving on the same connection.
        let (status, _) = call(
            &mut sender,
            Method::POST,
            "/echo",
            request("a", None, vec![]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[test]
    fn error_messages_are_valid_json_strings() {
        assert_eq!(escape("a \"b\" \\ \n"), "a \\\"b\\\" \\\\ \\u000a");
        assert_eq!(
            error(StatusCode::BAD_REQUEST, "x").status(),
            StatusCode::BAD_REQUEST
        );
    }
}
