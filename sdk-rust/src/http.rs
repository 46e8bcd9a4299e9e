//! Serving functions over HTTP (feature `http`).
//!
//! [`HttpService`] answers the StateFun request-reply protocol: `POST` with a `ToFunction`
//! body and `Content-Type: application/octet-stream`, any path (the target is inside the
//! request). It is a hyper 1 service and a tower service, so it runs on a bare hyper
//! connection, in [`serve`], or mounted in axum (`Router::new().route_service("/{*fn}",
//! HttpService::new(functions))`).
//!
//! Status codes: 200 with the `FromFunction`; 405 for another method; 415 for another content
//! type (or a compressed body); 413 for a body over the limit; 400 for a body that is not a
//! usable `ToFunction`; 404 for a function type not registered here; 500 when a handler fails
//! or panics (logged with `tracing`; the runtime retries or dead-letters the batch).

use crate::Functions;
use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_ENCODING, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use tokio::net::TcpListener;

/// The protocol's content type.
pub const CONTENT_TYPE_PROTOBUF: &str = "application/octet-stream";

/// The default largest request body: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The HTTP face of [`Functions`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpService {
    functions: Functions,
    max_body_bytes: usize,
}

/// True if `value` is `application/octet-stream`, parameters and case aside.
fn is_protobuf_content_type(value: Option<&HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(CONTENT_TYPE_PROTOBUF))
}

fn text(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message + "\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl HttpService {
    /// A service answering for `functions`, with a body limit of
    /// [`DEFAULT_MAX_BODY_BYTES`].
    pub fn new(functions: Functions) -> HttpService {
        HttpService {
            functions,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Sets the largest request body accepted (larger ones get 413).
    pub fn max_body_bytes(mut self, limit: usize) -> HttpService {
        self.max_body_bytes = limit;
        self
    }

    /// Answers one request.
    pub async fn respond<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        if request.method() != Method::POST {
            let mut response = text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} is not allowed: StateFun functions take POST requests",
                    request.method()
                ),
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        if !is_protobuf_content_type(request.headers().get(CONTENT_TYPE)) {
            let got = request
                .headers()
                .get(CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_else(|| "none".into());
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content type {got:?} is not supported: send a protobuf ToFunction with \
                     content-type {CONTENT_TYPE_PROTOBUF}"
                ),
            );
        }
        if let Some(encoding) = request.headers().get(CONTENT_ENCODING) {
            if !encoding.as_bytes().eq_ignore_ascii_case(b"identity") {
                return text(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "content encoding {:?} is not supported: send the ToFunction uncompressed",
                        String::from_utf8_lossy(encoding.as_bytes())
                    ),
                );
            }
        }
        let body = match Limited::new(request.into_body(), self.max_body_bytes)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the request body exceeds {} bytes; raise the limit with \
                         HttpService::max_body_bytes or send smaller batches \
                         (maxNumBatchRequests)",
                        self.max_body_bytes
                    ),
                )
            }
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("the request body could not be read: {e}"),
                )
            }
        };
        match self.functions.handle(&body).await {
            Ok(reply) => {
                let mut response = Response::new(Full::new(Bytes::from(reply)));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(CONTENT_TYPE_PROTOBUF),
                );
                response
            }
            Err(error) => {
                error.log();
                let status = StatusCode::from_u16(error.status_code())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                text(status, error.to_string())
            }
        }
    }
}

/// The boxed future of the service calls.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

impl<B> hyper::service::Service<Request<B>> for HttpService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move { Ok(service.respond(request).await) })
    }
}

impl<B> tower_service::Service<Request<B>> for HttpService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        hyper::service::Service::call(self, request)
    }
}

/// Serves `functions` on `listener` (HTTP/1.1) until the process ends.
pub async fn serve(listener: TcpListener, functions: Functions) -> std::io::Result<()> {
    serve_with_shutdown(listener, functions, std::future::pending()).await
}

/// Serves `functions` on `listener` until `shutdown` completes; then stops accepting
/// connections (requests in progress finish on their own tasks).
pub async fn serve_with_shutdown(
    listener: TcpListener,
    functions: Functions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let service = HttpService::new(functions);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: say so, give the system a moment
                    // (a pause, not a synchronisation) and keep serving.
                    tracing::warn!(error = %error, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let service = service.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(peer = %peer, error = %error, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BoxError, Context, Message};
    use eddy_protocol::reqreply::to_function::{
        Invocation, InvocationBatchRequest, Request as Req,
    };
    use eddy_protocol::{BuiltIn, Message as _, ToFunction};

    fn service() -> HttpService {
        let functions = Functions::new()
            .register("a/b", &[], |_: Context, message: Message| async move {
                match message.as_string()?.as_str() {
                    "fail" => Err::<(), BoxError>("asked to fail".into()),
                    _ => Ok(()),
                }
            })
            .unwrap();
        HttpService::new(functions)
    }

    fn body(typename: &str, text: &str) -> Vec<u8> {
        let (namespace, name) = typename.split_once('/').unwrap();
        ToFunction {
            request: Some(Req::Invocation(InvocationBatchRequest {
                target: Some(eddy_protocol::Address {
                    namespace: namespace.into(),
                    r#type: name.into(),
                    id: "x".into(),
                }),
                state: vec![],
                invocations: vec![Invocation {
                    caller: None,
                    argument: Some(BuiltIn::String(text.into()).to_typed_value()),
                }],
            })),
        }
        .encode_to_vec()
    }

    async fn call(method: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, String) {
        let mut request = Request::builder().method(method).uri("/b");
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        let response = service().max_body_bytes(1024).respond(request).await;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn status_codes_follow_the_protocol() {
        let ok = call("POST", Some(CONTENT_TYPE_PROTOBUF), body("a/b", "hi")).await;
        assert_eq!(ok.0, 200);
        let with_params = call(
            "POST",
            Some("Application/Octet-Stream; x=1"),
            body("a/b", "hi"),
        )
        .await;
        assert_eq!(with_params.0, 200);
        assert_eq!(call("GET", None, vec![]).await.0, 405);
        let (status, message) = call("POST", Some("application/json"), body("a/b", "hi")).await;
        assert_eq!(status, 415);
        assert!(message.contains("application/octet-stream"), "{message}");
        assert_eq!(call("POST", None, body("a/b", "hi")).await.0, 415);
        assert_eq!(
            call("POST", Some(CONTENT_TYPE_PROTOBUF), vec![0xff, 0xff])
                .await
                .0,
            400
        );
        assert_eq!(
            call("POST", Some(CONTENT_TYPE_PROTOBUF), body("a/zz", "hi"))
                .await
                .0,
            404
        );
        let (status, message) =
            call("POST", Some(CONTENT_TYPE_PROTOBUF), body("a/b", "fail")).await;
        assert_eq!(status, 500);
        assert!(message.contains("asked to fail"), "{message}");
        assert_eq!(
            call("POST", Some(CONTENT_TYPE_PROTOBUF), vec![0; 2048])
                .await
                .0,
            413
        );
    }

    #[tokio::test]
    async fn compressed_bodies_are_refused_by_name() {
        let request = Request::builder()
            .method("POST")
            .header(CONTENT_TYPE, CONTENT_TYPE_PROTOBUF)
            .header(CONTENT_ENCODING, "gzip")
            .body(Full::new(Bytes::from(body("a/b", "hi"))))
            .unwrap();
        let response = service().respond(request).await;
        assert_eq!(response.status(), 415);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&bytes).contains("\"gzip\""));
    }

    #[tokio::test]
    async fn the_service_is_a_tower_service_for_axum_and_friends() {
        fn check<S>(_: &S)
        where
            S: tower_service::Service<Request<Full<Bytes>>, Error = Infallible>
                + Clone
                + Send
                + Sync
                + 'static,
            S::Future: Send + 'static,
        {
        }
        let mut service = service();
        check(&service);
        std::future::poll_fn(|cx| {
            tower_service::Service::<Request<Full<Bytes>>>::poll_ready(&mut service, cx)
        })
        .await
        .unwrap();
        let request = Request::builder()
            .method("POST")
            .header(CONTENT_TYPE, CONTENT_TYPE_PROTOBUF)
            .body(Full::new(Bytes::from(body("a/b", "hi"))))
            .unwrap();
        let response = tower_service::Service::call(&mut service, request)
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn serve_answers_over_a_real_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let functions = service().functions;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with_shutdown(listener, functions, async move {
            let _ = stopped.await;
        }));
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let request = Request::builder()
            .method("POST")
            .uri("/b")
            .header(CONTENT_TYPE, CONTENT_TYPE_PROTOBUF)
            .body(Full::new(Bytes::from(body("a/b", "hi"))))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[CONTENT_TYPE], CONTENT_TYPE_PROTOBUF);
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
