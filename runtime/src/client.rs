//! The client side of the HTTP ingress: what `eddy send` does.
//!
//! [`send`] encodes one value ([`ClientValue`]) with the JSON-lines rules of
//! [`crate::jsonl`] — scalars default to the matching built-in type, and with a non-built-in
//! typename a value is sent as its compact JSON text; [`ClientValue::Bytes`] is sent as is —
//! and POSTs it to `{ingress}/v1/messages/{namespace}/{type}/{id}` with the `eddy-typename`
//! header, over plain HTTP/1.1. It returns once the ingress has admitted the message.

use crate::address::Address;
use crate::ingress::http::TYPENAME_HEADER;
use crate::jsonl;
use crate::{Error, Result};
use bytes::Bytes;
use eddy_protocol::typed::{BOOL, DOUBLE, FLOAT, INT, LONG, STRING};
use eddy_protocol::TypedValue;
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::time::Duration;

/// How long connecting to the ingress may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of an error reply kept for the message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A value given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientValue {
    /// `--string`: `io.statefun.types/string` unless `--typename` says otherwise.
    String(String),
    /// `--long`: `io.statefun.types/long` by default.
    Long(i64),
    /// `--int`: `io.statefun.types/int` by default.
    Int(i32),
    /// `--bool`: `io.statefun.types/bool` by default.
    Bool(bool),
    /// `--double`: `io.statefun.types/double` by default (must be finite).
    Double(f64),
    /// `--float`: `io.statefun.types/float` by default (must be finite).
    Float(f32),
    /// `--json`: needs a typename; sent as compact JSON text (or converted to a built-in).
    Json(Value),
    /// `--base64`: needs a typename; sent as these exact bytes.
    Bytes(Vec<u8>),
}

/// Encodes `value` as a typed value: the typename defaults from the value's kind (scalars
/// only); the conversion follows the JSON-lines rules. Errors are [`Error::Rejected`].
pub fn encode(typename: Option<&str>, value: ClientValue) -> Result<TypedValue> {
    let reject = |message: String| Error::Rejected(message);
    let (default, json) = match value {
        ClientValue::Bytes(bytes) => {
            let typename = typename.ok_or_else(|| {
                reject("--typename is required with a --base64 value".to_string())
            })?;
            jsonl::validate_typename(typename)
                .map_err(|error| reject(format!("--typename: {error}")))?;
            return Ok(TypedValue::new(typename, bytes));
        }
        ClientValue::String(text) => (Some(STRING), Value::String(text)),
        ClientValue::Long(number) => (Some(LONG), Value::from(number)),
        ClientValue::Int(number) => (Some(INT), Value::from(number)),
        ClientValue::Bool(flag) => (Some(BOOL), Value::Bool(flag)),
        ClientValue::Double(number) => (
            Some(DOUBLE),
            serde_json::Number::from_f64(number)
                .map(Value::Number)
                .ok_or_else(|| reject(format!("--double {number}: not a finite number")))?,
        ),
        ClientValue::Float(number) => (
            Some(FLOAT),
            serde_json::Number::from_f64(f64::from(number))
                .map(Value::Number)
                .ok_or_else(|| reject(format!("--float {number}: not a finite number")))?,
        ),
        ClientValue::Json(json) => (None, json),
    };
    let typename = typename
        .or(default)
        .ok_or_else(|| reject("--typename is required with a --json value".to_string()))?;
    jsonl::typed_value_from_json(Some(typename), Some(&json), None)
        .map_err(|error| reject(format!("cannot encode the value as {typename}: {error}")))
}

/// Sends one message to `target` (`namespace/name/id`) through the HTTP ingress at `ingress`
/// (`http://host:port`) and waits until it is admitted.
///
/// Errors: [`Error::Rejected`] for a bad target, value or URL (https included) and for any
/// non-2xx reply (naming the URL, the status and the ingress's error text); [`Error::Io`]
/// naming the URL when the ingress cannot be reached.
pub async fn send(
    ingress: &str,
    target: &str,
    typename: Option<&str>,
    value: ClientValue,
) -> Result<(), Error> {
    let address =
        Address::parse(target).map_err(|error| Error::Rejected(format!("target: {error}")))?;
    let argument = encode(typename, value)?;
    let endpoint = Endpoint::parse(ingress)?;
    let path = format!(
        "{}/v1/messages/{}/{}/{}",
        endpoint.base_path,
        percent_encode(address.function_type.namespace()),
        percent_encode(address.function_type.name()),
        percent_encode(&address.id)
    );
    let url = format!("http://{}{path}", endpoint.authority);
    let request = Request::post(path.as_str())
        .header(header::HOST, endpoint.authority.as_str())
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(TYPENAME_HEADER, argument.typename.as_str())
        .body(Full::new(argument.value.clone()))
        .map_err(|error| Error::Rejected(format!("cannot build a request for {url}: {error}")))?;

    let unreachable = |error: std::io::Error| Error::io(format!("send to ingress {url}"), error);
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
    )
    .await
    .map_err(|_| {
        unreachable(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no connection after {CONNECT_TIMEOUT:?}"),
        ))
    })?
    .map_err(unreachable)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| unreachable(std::io::Error::other(error)))?;
    let connection = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| unreachable(std::io::Error::other(error)));
    let result = match response {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => {
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ERROR_BODY)
                .collect()
                .await
                .map(|collected| collected.to_bytes())
                .unwrap_or_default();
            Err(Error::Rejected(format!(
                "ingress {url} replied {}: {}",
                status_text(status),
                error_text(&body)
            )))
        }
        Err(error) => Err(error),
    };
    drop(sender);
    connection.abort();
    result
}

/// The parts of an `http://host[:port][/base]` ingress URL.
struct Endpoint {
    host: String,
    port: u16,
    authority: String,
    base_path: String,
}

impl Endpoint {
    fn parse(ingress: &str) -> Result<Endpoint> {
        let bad = |why: &str| {
            Error::Rejected(format!(
                "ingress URL {ingress:?}: {why} (expected http://host:port, e.g. http://127.0.0.1:8090)"
            ))
        };
        let uri: Uri = ingress.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(Error::Rejected(format!(
                    "ingress URL {ingress:?}: https is not supported by eddy send; the HTTP ingress serves plain http:// (use http://host:port)"
                )))
            }
            _ => return Err(bad("the scheme must be http://")),
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if uri.query().is_some() {
            return Err(bad("a query string is not allowed"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(Endpoint {
            host,
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_string(),
            base_path: uri.path().trim_end_matches('/').to_string(),
        })
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (so `/` in an id too).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The `error` of a JSON error reply, else the body as text.
fn error_text(body: &Bytes) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => match object.get("error") {
            Some(Value::String(error)) => error.clone(),
            _ => Value::Object(object).to_string(),
        },
        _ if body.is_empty() => "(empty body)".to_string(),
        _ => String::from_utf8_lossy(body).trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::tests::{admit_everything, router_with_inbox};
    use crate::ingress::Ingresses;
    use crate::spec::{HttpIngressSpec, IngressSpec};
    use eddy_protocol::BuiltIn;
    use serde_json::json;
    use tokio::sync::watch;

    #[test]
    fn encodes_scalars_as_builtins_by_default() {
        let cases = [
            (
                ClientValue::String("hi".into()),
                BuiltIn::String("hi".into()),
            ),
            (ClientValue::Long(-3), BuiltIn::Long(-3)),
            (ClientValue::Int(7), BuiltIn::Int(7)),
            (ClientValue::Bool(true), BuiltIn::Bool(true)),
            (ClientValue::Double(2.5), BuiltIn::Double(2.5)),
            (ClientValue::Float(0.1), BuiltIn::Float(0.1)),
        ];
        for (value, expected) in cases {
            assert_eq!(
                encode(None, value.clone()).expect("encode"),
                expected.to_typed_value(),
                "{value:?}"
            );
        }
    }

    #[test]
    fn explicit_typenames_follow_the_json_lines_rules() {
        assert_eq!(
            encode(Some(INT), ClientValue::Long(5)).expect("fits"),
            BuiltIn::Int(5).to_typed_value()
        );
        assert!(encode(Some(INT), ClientValue::Long(1 << 40)).is_err());
        assert!(encode(Some(BOOL), ClientValue::String("x".into())).is_err());
        assert_eq!(
            encode(
                Some("com.example/Greeting"),
                ClientValue::Json(json!({"b": 1, "a": [true]}))
            )
            .expect("json"),
            TypedValue::new("com.example/Greeting", &br#"{"a":[true],"b":1}"#[..])
        );
        assert_eq!(
            encode(Some("com.example/Text"), ClientValue::String("hi".into())).expect("text"),
            TypedValue::new("com.example/Text", &br#""hi""#[..])
        );
        assert_eq!(
            encode(Some("com.example/Blob"), ClientValue::Bytes(vec![0, 255])).expect("bytes"),
            TypedValue::new("com.example/Blob", vec![0, 255])
        );
        let error = encode(None, ClientValue::Json(json!({}))).expect_err("needs a typename");
        assert!(error.to_string().contains("--typename"), "{error}");
        assert!(encode(None, ClientValue::Bytes(vec![1])).is_err());
        assert!(encode(Some("bad"), ClientValue::Bytes(vec![1])).is_err());
        assert!(encode(None, ClientValue::Double(f64::NAN)).is_err());
        assert!(encode(None, ClientValue::Float(f32::INFINITY)).is_err());
    }

    #[test]
    fn urls_must_be_plain_http() {
        let endpoint = Endpoint::parse("http://127.0.0.1:8090/").expect("valid");
        assert_eq!((endpoint.host.as_str(), endpoint.port), ("127.0.0.1", 8090));
        assert_eq!(endpoint.base_path, "");
        let endpoint = Endpoint::parse("http://[::1]/eddy").expect("valid");
        assert_eq!((endpoint.host.as_str(), endpoint.port), ("::1", 80));
        assert_eq!(endpoint.base_path, "/eddy");
        let error = Endpoint::parse("https://example.com").err().expect("https");
        assert!(
            error.to_string().contains("https is not supported"),
            "{error}"
        );
        assert!(Endpoint::parse("127.0.0.1:8090").is_err());
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("not a url").is_err());
        assert_eq!(percent_encode("a/b c~é"), "a%2Fb%20c~%C3%A9");
    }

    async fn start_ingress(
        router: crate::router::Router,
    ) -> (Ingresses, String, watch::Sender<bool>) {
        let spec = IngressSpec::Http(HttpIngressSpec {
            document: 1,
            id: "com.example/http".into(),
            bind: "127.0.0.1:0".parse().expect("address"),
            default_typename: None,
        });
        let (stop, shutdown) = watch::channel(false);
        let ingresses = Ingresses::start(&[spec], router, shutdown, None)
            .await
            .expect("start");
        let url = format!("http://{}", ingresses.http_addresses()[0].1);
        (ingresses, url, stop)
    }

    #[tokio::test]
    async fn sends_through_the_http_ingress() {
        let (router, events) = router_with_inbox();
        let mut delivered = admit_everything(events);
        let (ingresses, url, stop) = start_ingress(router).await;

        send(
            &url,
            "com.example/greeter/a b/é",
            None,
            ClientValue::String("hello".into()),
        )
        .await
        .expect("accepted");
        let message = delivered.recv().await.expect("delivered");
        assert_eq!(message.target.to_string(), "com.example/greeter/a b/é");
        assert_eq!(
            message.argument,
            BuiltIn::String("hello".into()).to_typed_value()
        );

        send(
            &format!("{url}/"),
            "com.example/greeter/x",
            Some("com.example/Greeting"),
            ClientValue::Json(json!({"name": "x"})),
        )
        .await
        .expect("accepted");
        let message = delivered.recv().await.expect("delivered");
        assert_eq!(
            message.argument,
            TypedValue::new("com.example/Greeting", &br#"{"name":"x"}"#[..])
        );

        let error = send(&url, "other.ns/f/x", None, ClientValue::Long(1))
            .await
            .expect_err("unknown function type");
        let text = error.to_string();
        assert!(matches!(error, Error::Rejected(_)));
        assert!(text.contains(&url), "{text}");
        assert!(text.contains("400 Bad Request"), "{text}");
        assert!(
            text.contains("no endpoint serves function type other.ns/f"),
            "{text}"
        );

        assert!(send(&url, "not-an-address", None, ClientValue::Long(1))
            .await
            .is_err());

        stop.send_replace(true);
        ingresses.join().await;
    }

    #[tokio::test]
    async fn an_unreachable_ingress_is_an_io_error_naming_the_url() {
        // A port that was free a moment ago.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let url = format!("http://{address}");
        let error = send(&url, "com.example/f/a", None, ClientValue::Bool(true))
            .await
            .expect_err("unreachable");
        assert!(matches!(error, Error::Io { .. }), "{error}");
        assert!(error.to_string().contains(&address.to_string()), "{error}");
    }
}
