//! Running functions as an AWS Lambda handler (feature `lambda`).
//!
//! The runtime invokes the Lambda function directly (`Invoke`, RequestResponse) with an API
//! Gateway proxy event whose body is the base64 `ToFunction`:
//!
//! ```json
//! {"httpMethod": "POST", "path": "/example/reminder",
//!  "headers": {"content-type": "application/octet-stream"},
//!  "body": "<base64 ToFunction>", "isBase64Encoded": true}
//! ```
//!
//! and the handler answers `{"statusCode": 200, "headers": {"content-type":
//! "application/octet-stream"}, "body": "<base64 FromFunction>", "isBase64Encoded": true}`.
//! Because that is the API Gateway proxy format, the same deployment also works behind a
//! Function URL or API Gateway (REST v1 and HTTP v2 events, `requestContext.http.method`).
//! Errors answer the status codes of the [`http`](crate::http) service (405, 415, 400, 404,
//! 500) with a text body; the runtime counts a non-200 status as a failed invocation.
//!
//! ```no_run
//! # async fn example(functions: eddy_sdk::Functions) -> Result<(), lambda_runtime::Error> {
//! eddy_sdk::lambda::run(functions).await
//! # }
//! ```

use crate::{Error, Functions};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Map, Value};

const CONTENT_TYPE_PROTOBUF: &str = "application/octet-stream";

/// An error envelope: `status` with a text body.
fn error_envelope(status: u16, message: String) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "text/plain; charset=utf-8"},
        "body": message,
        "isBase64Encoded": false,
    })
}

/// The HTTP method of an API Gateway v1 / v2 / Function URL event.
fn method(event: &Map<String, Value>) -> Option<&str> {
    event.get("httpMethod").and_then(Value::as_str).or_else(|| {
        event
            .get("requestContext")?
            .get("http")?
            .get("method")?
            .as_str()
    })
}

/// The value of header `name` (case-insensitive).
fn header<'a>(event: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    event
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))?
        .1
        .as_str()
}

/// Answers one Lambda event (the whole handler, without the Lambda runtime around it).
pub async fn handle_event(functions: &Functions, event: Value) -> Value {
    let Some(event) = event.as_object() else {
        return error_envelope(
            400,
            "the event is not a JSON object: invoke with an API Gateway proxy event".into(),
        );
    };
    let Some(method) = method(event) else {
        return error_envelope(
            400,
            "the event has no httpMethod (nor requestContext.http.method): invoke with an API \
             Gateway proxy event carrying the base64 ToFunction as body"
                .into(),
        );
    };
    if !method.eq_ignore_ascii_case("POST") {
        return error_envelope(
            405,
            format!("{method} is not allowed: StateFun functions take POST requests"),
        );
    }
    let content_type = header(event, "content-type");
    let is_protobuf = content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(CONTENT_TYPE_PROTOBUF));
    if !is_protobuf {
        return error_envelope(
            415,
            format!(
                "content type {:?} is not supported: send a protobuf ToFunction with \
                 content-type {CONTENT_TYPE_PROTOBUF}",
                content_type.unwrap_or("none")
            ),
        );
    }
    let body = event.get("body").and_then(Value::as_str).unwrap_or("");
    let base64 = event
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = if base64 {
        match BASE64.decode(body) {
            Ok(bytes) => bytes,
            Err(e) => {
                return error_envelope(
                    400,
                    format!("the body is marked isBase64Encoded but is not base64: {e}"),
                )
            }
        }
    } else {
        body.as_bytes().to_vec()
    };
    match functions.handle(&body).await {
        Ok(reply) => json!({
            "statusCode": 200,
            "headers": {"content-type": CONTENT_TYPE_PROTOBUF},
            "body": BASE64.encode(reply),
            "isBase64Encoded": true,
        }),
        Err(error) => {
            error.log();
            let status = error.status_code();
            error_envelope(status, error.to_string())
        }
    }
}

/// Checks the variables the Lambda runtime client needs, so that a missing one is an error
/// saying what to do rather than a panic inside the client.
fn check_environment(var: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
    let required = |variable: &'static str| {
        var(variable).ok_or(Error::LambdaEnvironment {
            variable,
            problem: "is not set".into(),
        })
    };
    let api = required("AWS_LAMBDA_RUNTIME_API")?;
    if let Err(e) = api.parse::<http::Uri>() {
        return Err(Error::LambdaEnvironment {
            variable: "AWS_LAMBDA_RUNTIME_API",
            problem: format!("is not a URI ({api:?}: {e}); a base path needs a scheme, e.g. http://127.0.0.1:9001/.rt/name"),
        });
    }
    required("AWS_LAMBDA_FUNCTION_NAME")?;
    required("AWS_LAMBDA_FUNCTION_VERSION")?;
    let memory = required("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")?;
    if memory.parse::<i32>().is_err() {
        return Err(Error::LambdaEnvironment {
            variable: "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            problem: format!("is not a number of megabytes ({memory:?})"),
        });
    }
    Ok(())
}

/// Runs `functions` as the Lambda function's handler, until the Lambda runtime ends it. Fails
/// at once, naming the variable, when the Lambda environment variables are missing.
pub async fn run(functions: Functions) -> Result<(), lambda_runtime::Error> {
    check_environment(|name| std::env::var(name).ok())?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let functions = functions.clone();
        async move { Ok::<Value, lambda_runtime::Error>(handle_event(&functions, event.payload).await) }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BoxError, Context, Message};
    use eddy_protocol::reqreply::from_function::Response;
    use eddy_protocol::reqreply::to_function::{Invocation, InvocationBatchRequest, Request};
    use eddy_protocol::{BuiltIn, FromFunction, Message as _, ToFunction};

    fn functions() -> Functions {
        Functions::new()
            .register("a/b", &[], |_: Context, message: Message| async move {
                match message.as_string()?.as_str() {
                    "fail" => Err::<(), BoxError>("asked to fail".into()),
                    _ => Ok(()),
                }
            })
            .unwrap()
    }

    fn request(text: &str) -> String {
        BASE64.encode(
            ToFunction {
                request: Some(Request::Invocation(InvocationBatchRequest {
                    target: Some(eddy_protocol::Address {
                        namespace: "a".into(),
                        r#type: "b".into(),
                        id: "x".into(),
                    }),
                    state: vec![],
                    invocations: vec![Invocation {
                        caller: None,
                        argument: Some(BuiltIn::String(text.into()).to_typed_value()),
                    }],
                })),
            }
            .encode_to_vec(),
        )
    }

    fn reply(envelope: &Value) -> FromFunction {
        assert_eq!(envelope["statusCode"], 200, "{envelope}");
        assert_eq!(envelope["isBase64Encoded"], true);
        assert_eq!(envelope["headers"]["content-type"], CONTENT_TYPE_PROTOBUF);
        let bytes = BASE64.decode(envelope["body"].as_str().unwrap()).unwrap();
        FromFunction::decode(&bytes[..]).unwrap()
    }

    #[tokio::test]
    async fn api_gateway_v1_events_are_answered_with_the_envelope() {
        let event = json!({
            "httpMethod": "POST",
            "path": "/a/b",
            "headers": {"content-type": "application/octet-stream"},
            "body": request("hi"),
            "isBase64Encoded": true,
        });
        let envelope = handle_event(&functions(), event).await;
        assert!(matches!(
            reply(&envelope).response,
            Some(Response::InvocationResult(_))
        ));
    }

    #[tokio::test]
    async fn function_url_events_are_answered_too() {
        let event = json!({
            "version": "2.0",
            "rawPath": "/a/b",
            "requestContext": {"http": {"method": "POST", "path": "/a/b"}},
            "headers": {"Content-Type": "application/octet-stream"},
            "body": request("hi"),
            "isBase64Encoded": true,
        });
        let envelope = handle_event(&functions(), event).await;
        reply(&envelope);
    }

    #[test]
    fn the_lambda_environment_is_checked_by_name() {
        let full = |name: &str| {
            Some(
                match name {
                    "AWS_LAMBDA_RUNTIME_API" => "127.0.0.1:9001",
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => "128",
                    _ => "x",
                }
                .to_string(),
            )
        };
        assert!(check_environment(full).is_ok());
        let with_path = |name: &str| match name {
            "AWS_LAMBDA_RUNTIME_API" => Some("http://127.0.0.1:9001/.rt/f".to_string()),
            other => full(other),
        };
        assert!(check_environment(with_path).is_ok());
        let error = check_environment(|name| {
            (name != "AWS_LAMBDA_RUNTIME_API")
                .then(|| full(name))
                .flatten()
        })
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("environment variable AWS_LAMBDA_RUNTIME_API is not set"),
            "{error}"
        );
        let error = check_environment(|name| match name {
            "AWS_LAMBDA_RUNTIME_API" => Some("127.0.0.1:9001/.rt/f".to_string()),
            other => full(other),
        })
        .unwrap_err();
        assert!(error.to_string().contains("needs a scheme"), "{error}");
        let error = check_environment(|name| match name {
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("lots".to_string()),
            other => full(other),
        })
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn errors_answer_error_envelopes() {
        let functions = functions();
        let base = json!({
            "httpMethod": "POST",
            "headers": {"content-type": "application/octet-stream"},
            "body": request("hi"),
            "isBase64Encoded": true,
        });
        let with = |key: &str, value: Value| {
            let mut event = base.clone();
            event[key] = value;
            event
        };
        let cases = [
            (json!([1, 2]), 400),
            (json!({"body": "x"}), 400),
            (with("httpMethod", json!("GET")), 405),
            (with("headers", json!({"content-type": "text/plain"})), 415),
            (with("headers", json!({})), 415),
            (with("body", json!("%%% not base64")), 400),
            (with("body", json!(BASE64.encode([0xff, 0xff]))), 400),
            (with("body", json!(request("fail"))), 500),
        ];
        for (event, status) in cases {
            let envelope = handle_event(&functions, event.clone()).await;
            assert_eq!(envelope["statusCode"], status, "{event} -> {envelope}");
            assert_eq!(envelope["isBase64Encoded"], false);
            assert!(envelope["body"].as_str().is_some_and(|b| !b.is_empty()));
        }
    }
}
