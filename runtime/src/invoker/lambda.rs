//! AWS Lambda transport: invokes the functions of one `io.eddy.endpoints.v1/lambda` endpoint
//! with the Lambda `Invoke` API (`RequestResponse`), through `aws-sdk-lambda`.
//!
//! The payload is the API Gateway proxy envelope (design.md §3), so the same function also
//! works behind a Function URL or API Gateway:
//! request `{"httpMethod":"POST","path":"/<namespace>/<name>","headers":{"content-type":
//! "application/octet-stream"},"isBase64Encoded":true,"body":"<base64 ToFunction>"}`, reply
//! `{"statusCode":200,"headers":{...},"body":"<base64 FromFunction>","isBase64Encoded":true}`.
//!
//! Credentials and (unless the spec names one) the region come from the standard AWS chain
//! (aws-config: environment, profile, web identity, ECS, EC2 instance metadata). The SDK's own
//! retries are off: the call loop shared with the HTTP transport (`invoker/call.rs`) owns the
//! budget, the retries and the concurrency limit (`maxConcurrency`):
//! - a function error (`FunctionError` set), an envelope `statusCode` of 408, 429 or 5xx, a
//!   reply that is not an envelope or whose body is not a `FromFunction`, an unreachable API, a
//!   timed-out attempt and a Lambda 5xx are retried, then fail the batch (dead letters);
//! - any other envelope status and Lambda 4xx errors (unknown function, bad request, access
//!   denied) fail at once;
//! - throttling (HTTP 429, `TooManyRequestsException`) is backpressure: backed off with jitter,
//!   never counted as an attempt, ended only by shutdown.
//!
//! Lambda takes at most 6 MB (6,291,456 bytes) per synchronous request. A batch whose request
//! would be larger is split here into sequential sub-batches: each carries as many messages as
//! fit, with the state as updated by the previous sub-batches' mutations, and their replies are
//! merged in order into one `FromFunction`, so the partition machine sees one reply for one
//! batch. If any sub-batch answers `IncompleteInvocationContext`, that is the answer (the
//! machine registers the specs and re-sends the whole batch; nothing of the earlier sub-batches
//! was applied). An address whose state alone, with one message, exceeds the limit fails with
//! an error naming the address and the sizes, and its batch goes to dead letters.

use crate::address::{Address, FunctionType};
use crate::invoker::call::{self, Failure, Policy};
use crate::invoker::http::{error_chain, hex_prefix, retryable_status, snippet};
use crate::spec::LambdaTarget;
use crate::{Error, Result};
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::config::Region;
use aws_sdk_lambda::error::{ProvideErrorMetadata as _, SdkError};
use aws_sdk_lambda::operation::invoke::{InvokeError, InvokeOutput};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use base64::Engine as _;
use eddy_protocol::reqreply::from_function::persisted_value_mutation::MutationType;
use eddy_protocol::reqreply::from_function::{
    InvocationResponse, PersistedValueMutation, Response as ReplyKind,
};
use eddy_protocol::reqreply::to_function::{InvocationBatchRequest, Request as RequestKind};
use eddy_protocol::{FromFunction, Message as _, ToFunction};
use prost::encoding::{encoded_len_varint, key_len};
use tokio::sync::{watch, Semaphore};

/// Lambda's limit on a synchronous request payload: 6 MB.
pub const LAMBDA_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
/// The only content type of the envelope's body.
const OCTET_STREAM: &str = "application/octet-stream";
/// Field number of `ToFunction.invocation`.
const TO_FUNCTION_INVOCATION_FIELD: u32 = 100;
/// Field number of `InvocationBatchRequest.invocations`.
const INVOCATIONS_FIELD: u32 = 3;

/// The HTTPS client of the AWS SDK: hyper 1 on rustls with ring (the TLS stack the HTTP
/// transport uses; the SDK's default is aws-lc-rs, a C build).
pub fn https_client() -> aws_sdk_lambda::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Calls the functions of one Lambda endpoint.
pub struct LambdaTransport {
    target: LambdaTarget,
    client: aws_sdk_lambda::Client,
    /// One permit per invocation in flight (`maxConcurrency`).
    permits: Semaphore,
    shutdown: Option<watch::Receiver<bool>>,
    /// Largest request payload (Lambda's 6 MB; smaller in tests).
    request_limit: usize,
}

impl LambdaTransport {
    /// A transport for `target` from the shared AWS configuration `base` (credentials, region
    /// chain, HTTP client). Fails with a message (for the caller to place in the module file)
    /// when no region is known.
    pub fn new(
        target: &LambdaTarget,
        base: &aws_config::SdkConfig,
        shutdown: Option<watch::Receiver<bool>>,
    ) -> Result<LambdaTransport, String> {
        let mut builder = aws_sdk_lambda::config::Builder::from(base)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(target.connect)
                    .build(),
            );
        if let Some(region) = &target.region {
            builder = builder.region(Region::new(region.clone()));
        }
        if let Some(url) = &target.endpoint_url {
            builder = builder.endpoint_url(url.clone());
        }
        let config = builder.build();
        if config.region().is_none() {
            return Err(
                "no AWS region: set `region` here (e.g. `us-east-1`), or AWS_REGION in the \
                 environment, or `region` in the AWS profile"
                    .to_string(),
            );
        }
        Ok(LambdaTransport {
            target: target.clone(),
            client: aws_sdk_lambda::Client::from_conf(config),
            permits: Semaphore::new(target.max_concurrency.clamp(1, Semaphore::MAX_PERMITS)),
            shutdown,
            request_limit: LAMBDA_PAYLOAD_LIMIT,
        })
    }

    /// Lowers the request payload limit (tests of batch splitting without 6 MB payloads).
    #[cfg(test)]
    fn with_request_limit(mut self, limit: usize) -> LambdaTransport {
        self.request_limit = limit;
        self
    }

    /// Where calls for `function_type` go, for messages and dead letters.
    fn location(&self, function_type: &FunctionType) -> String {
        let mut text = format!(
            "lambda function {}",
            self.target.function_name_for(function_type)
        );
        if let Some(qualifier) = &self.target.qualifier {
            text.push(':');
            text.push_str(qualifier);
        }
        if let Some(url) = &self.target.endpoint_url {
            text.push_str(" via ");
            text.push_str(url);
        }
        text
    }

    /// Invokes `target` with `request`, splitting it into sub-batches when it exceeds the
    /// payload limit (see the module docs).
    pub async fn invoke(&self, target: &Address, request: ToFunction) -> Result<FromFunction> {
        let envelope = Envelope::new(&target.function_type);
        let location = self.location(&target.function_type);
        let size = envelope.size(request.encoded_len());
        let batch = match request.request {
            Some(RequestKind::Invocation(batch)) if size > self.request_limit => batch,
            request => {
                let request = ToFunction { request };
                return self
                    .invoke_once(target, &location, &envelope, &request)
                    .await;
            }
        };
        self.invoke_split(target, &location, &envelope, batch).await
    }

    /// Sends `batch` as sequential sub-batches that each fit the payload limit.
    async fn invoke_split(
        &self,
        target: &Address,
        location: &str,
        envelope: &Envelope,
        batch: InvocationBatchRequest,
    ) -> Result<FromFunction> {
        let InvocationBatchRequest {
            target: address,
            mut state,
            invocations,
        } = batch;
        let total = invocations.len();
        let sizes: Vec<usize> = invocations
            .iter()
            .map(|invocation| {
                let length = invocation.encoded_len();
                key_len(INVOCATIONS_FIELD) + encoded_len_varint(length as u64) + length
            })
            .collect();
        let mut merged = Merged::default();
        let mut next = 0;
        let mut sub_batches = 0;
        while next < total {
            let head = InvocationBatchRequest {
                target: address.clone(),
                state: state.clone(),
                invocations: Vec::new(),
            };
            let head_len = head.encoded_len();
            let request_size = |batch_len: usize| {
                envelope.size(
                    key_len(TO_FUNCTION_INVOCATION_FIELD)
                        + encoded_len_varint(batch_len as u64)
                        + batch_len,
                )
            };
            let mut end = next;
            let mut batch_len = head_len;
            while end < total && request_size(batch_len + sizes[end]) <= self.request_limit {
                batch_len += sizes[end];
                end += 1;
            }
            if end == next {
                let state_bytes: usize = head.state.iter().map(|value| value.encoded_len()).sum();
                let reason = format!(
                    "the request for {target} is {} bytes with a single message, over the Lambda \
                     synchronous payload limit of {} bytes: its state is {state_bytes} bytes in \
                     {} value(s) and the message {} bytes (the request is base64 inside a JSON \
                     envelope, 4/3 of the protobuf size); keep less state per address, or serve \
                     this function type over http",
                    request_size(head_len + sizes[next]),
                    self.request_limit,
                    head.state.len(),
                    invocations[next].encoded_len(),
                );
                tracing::warn!(target = %target, url = %location, reason = %reason, "invocation failed");
                return Err(Error::Invocation {
                    target: target.to_string(),
                    url: location.to_string(),
                    attempts: 0,
                    reason,
                });
            }
            sub_batches += 1;
            tracing::debug!(
                target = %target,
                url = %location,
                sub_batch = sub_batches,
                first = next,
                messages = end - next,
                total,
                "invoking a sub-batch (the batch exceeds the lambda payload limit)"
            );
            let request = ToFunction {
                request: Some(RequestKind::Invocation(InvocationBatchRequest {
                    invocations: invocations[next..end].to_vec(),
                    ..head
                })),
            };
            let reply = self
                .invoke_once(target, location, envelope, &request)
                .await
                .map_err(|error| match error {
                    Error::Invocation {
                        target,
                        url,
                        attempts,
                        reason,
                    } => Error::Invocation {
                        target,
                        url,
                        attempts,
                        reason: format!(
                            "sub-batch {sub_batches} (messages {}..={} of {total}, split to stay \
                             under the {}-byte Lambda payload limit): {reason}",
                            next + 1,
                            end,
                            self.request_limit
                        ),
                    },
                    other => other,
                })?;
            match reply.response {
                None => {}
                Some(ReplyKind::InvocationResult(response)) => {
                    if end < total {
                        apply_mutations(&mut state, &response.state_mutations);
                    }
                    merged.add(response);
                }
                Some(incomplete @ ReplyKind::IncompleteInvocationContext(_)) => {
                    return Ok(FromFunction {
                        response: Some(incomplete),
                    });
                }
            }
            next = end;
        }
        tracing::debug!(target = %target, url = %location, sub_batches, total, "split batch done");
        Ok(merged.into_reply())
    }

    /// One request under the call loop (retries, budget, throttling, concurrency limit).
    async fn invoke_once(
        &self,
        target: &Address,
        location: &str,
        envelope: &Envelope,
        request: &ToFunction,
    ) -> Result<FromFunction> {
        let payload = Blob::new(envelope.wrap(&request.encode_to_vec()));
        let function_name = self.target.function_name_for(&target.function_type);
        let policy = Policy {
            call: self.target.call,
            retry: &self.target.retry,
            permits: &self.permits,
            limit: (self.target.max_concurrency, "maxConcurrency"),
            shutdown: self.shutdown.clone(),
        };
        call::call(policy, target, location, || {
            self.attempt(&function_name, payload.clone())
        })
        .await
    }

    /// One `Invoke`: send, classify the outcome, decode the envelope.
    async fn attempt(&self, function_name: &str, payload: Blob) -> Result<FromFunction, Failure> {
        let sent = self
            .client
            .invoke()
            .function_name(function_name)
            .set_qualifier(self.target.qualifier.clone())
            .invocation_type(InvocationType::RequestResponse)
            .payload(payload)
            .send();
        let outcome = match self.target.read {
            Some(read) => match tokio::time::timeout(read, sent).await {
                Ok(outcome) => outcome,
                Err(_elapsed) => {
                    return Err(Failure::retry(format!(
                        "no reply within {read:?} (timeouts.read)"
                    )))
                }
            },
            None => sent.await,
        };
        match outcome {
            Ok(output) => decode_output(output),
            Err(error) => Err(classify_error(&error)),
        }
    }
}

/// The API Gateway proxy envelope of one function type's requests: a fixed prefix and suffix
/// around the base64 body, so the size of a request is known before it is built.
struct Envelope {
    prefix: String,
}

/// What follows the base64 body.
const ENVELOPE_SUFFIX: &str = "\"}";

impl Envelope {
    fn new(function_type: &FunctionType) -> Envelope {
        let path = format!("/{}/{}", function_type.namespace(), function_type.name());
        // A JSON string literal of the path (quotes, backslashes and controls escaped).
        let path = serde_json::Value::String(path).to_string();
        Envelope {
            prefix: format!(
                "{{\"httpMethod\":\"POST\",\"path\":{path},\"headers\":{{\"content-type\":\
                 \"{OCTET_STREAM}\"}},\"isBase64Encoded\":true,\"body\":\""
            ),
        }
    }

    /// Bytes of the envelope around a protobuf of `protobuf_len` bytes.
    fn size(&self, protobuf_len: usize) -> usize {
        self.prefix.len() + protobuf_len.div_ceil(3) * 4 + ENVELOPE_SUFFIX.len()
    }

    /// The envelope around `protobuf`.
    fn wrap(&self, protobuf: &[u8]) -> Vec<u8> {
        let mut text = String::with_capacity(self.size(protobuf.len()));
        text.push_str(&self.prefix);
        base64::engine::general_purpose::STANDARD.encode_string(protobuf, &mut text);
        text.push_str(ENVELOPE_SUFFIX);
        text.into_bytes()
    }
}

/// A successful `Invoke`: the function's error, or its envelope, checked and decoded.
fn decode_output(output: InvokeOutput) -> Result<FromFunction, Failure> {
    let status = u16::try_from(output.status_code()).unwrap_or(0);
    let payload = output
        .payload()
        .map(|blob| blob.as_ref())
        .unwrap_or_default();
    if let Some(kind) = output.function_error() {
        return Err(Failure::retry(format!(
            "function error ({kind}): {}",
            describe_function_error(payload)
        ))
        .with_status(status));
    }
    if status != 200 {
        return Err(Failure::retry(format!(
            "lambda answered status {status} to a RequestResponse invocation: {}",
            snippet(payload)
        ))
        .with_status(status));
    }
    let envelope: serde_json::Value = serde_json::from_slice(payload).map_err(|error| {
        Failure::retry(format!(
            "reply is not an API Gateway proxy envelope (not JSON: {error}): {}",
            snippet(payload)
        ))
    })?;
    let Some(status_code) = envelope.get("statusCode").and_then(json_status) else {
        return Err(Failure::retry(format!(
            "reply is not an API Gateway proxy envelope (no numeric statusCode): {}; answer \
             {{\"statusCode\":200,\"headers\":{{\"content-type\":\"{OCTET_STREAM}\"}},\
             \"body\":\"<base64 FromFunction>\",\"isBase64Encoded\":true}}",
            snippet(payload)
        )));
    };
    let body = match envelope.get("body") {
        None | Some(serde_json::Value::Null) => "",
        Some(serde_json::Value::String(body)) => body.as_str(),
        Some(other) => {
            return Err(Failure::retry(format!(
                "reply envelope body is not a string: {}",
                snippet(other.to_string().as_bytes())
            )))
        }
    };
    if status_code != 200 {
        let reason = format!(
            "function replied statusCode {status_code}: {}",
            snippet(body.as_bytes())
        );
        let retry = http::StatusCode::from_u16(status_code).map_or(true, retryable_status);
        let failure = if retry {
            Failure::retry(reason)
        } else {
            Failure::fatal(reason)
        };
        return Err(failure.with_status(status_code));
    }
    if let Some(content_type) = envelope
        .get("headers")
        .and_then(serde_json::Value::as_object)
        .and_then(|headers| {
            headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        })
        .and_then(|(_, value)| value.as_str())
    {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case(OCTET_STREAM) {
            return Err(Failure::retry(format!(
                "reply content-type {content_type}, expected {OCTET_STREAM}: {}",
                snippet(body.as_bytes())
            )));
        }
    }
    let base64 = envelope
        .get("isBase64Encoded")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let bytes = if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|error| {
                Failure::retry(format!(
                    "reply envelope body is not valid base64 ({error}): {}",
                    snippet(body.as_bytes())
                ))
            })?
    } else {
        body.as_bytes().to_vec()
    };
    FromFunction::decode(bytes.as_slice()).map_err(|error| {
        Failure::retry(format!(
            "reply is not a FromFunction protobuf: {error} ({} bytes, starting {})",
            bytes.len(),
            hex_prefix(&bytes)
        ))
    })
}

/// A JSON status code: a number, or text holding one.
fn json_status(value: &serde_json::Value) -> Option<u16> {
    match value {
        serde_json::Value::Number(number) => number.as_u64().and_then(|n| u16::try_from(n).ok()),
        serde_json::Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// True if `payload` is a Lambda function error document (`errorMessage`, `errorType`).
fn is_function_error(payload: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|value| {
            value
                .as_object()
                .map(|object| object.contains_key("errorMessage"))
        })
        .unwrap_or(false)
}

/// `errorType: errorMessage` of a Lambda function error payload, or its first bytes.
fn describe_function_error(payload: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|value| value.get(name))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    match (field("errorType"), field("errorMessage")) {
        (Some(kind), Some(message)) => snippet(format!("{kind}: {message}").as_bytes()),
        (None, Some(message)) => snippet(message.as_bytes()),
        _ if payload.is_empty() => "no details".to_string(),
        _ => snippet(payload),
    }
}

/// The verdict on an `Invoke` that did not return an output.
fn classify_error(error: &SdkError<InvokeError, HttpResponse>) -> Failure {
    match error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let error = context.err();
            let mut reason = format!("lambda api {status}");
            if let Some(code) = error.code() {
                reason.push(' ');
                reason.push_str(code);
            }
            let body = context.raw().body().bytes().unwrap_or_default();
            if error.code().is_none() && is_function_error(body) {
                // Local emulators (cargo lambda) answer a function error with a 5xx status and
                // the error document, where AWS answers 200 with `FunctionError` set.
                let reason = format!(
                    "function error (lambda api {status}): {}",
                    describe_function_error(body)
                );
                return Failure::retry(reason).with_status(status);
            }
            let detail = match error.message() {
                Some(message) => message.to_string(),
                None => snippet(body),
            };
            if !detail.is_empty() {
                reason.push_str(": ");
                reason.push_str(&detail);
            }
            if context.err().is_too_many_requests_exception() || status == 429 {
                Failure::throttled(reason).with_status(status)
            } else if http::StatusCode::from_u16(status).map_or(true, retryable_status) {
                Failure::retry(reason).with_status(status)
            } else {
                Failure::fatal(reason).with_status(status)
            }
        }
        SdkError::TimeoutError(_) => {
            Failure::retry(format!("lambda api timeout: {}", error_chain(error)))
        }
        SdkError::DispatchFailure(_) => Failure::retry(format!(
            "cannot reach the lambda api: {}",
            error_chain(error)
        )),
        _ => Failure::retry(error_chain(error)),
    }
}

/// Applies `mutations` to `state` for the next sub-batch (names the request does not carry
/// are left out, as the partition machine would leave them out).
fn apply_mutations(
    state: &mut [eddy_protocol::reqreply::to_function::PersistedValue],
    mutations: &[PersistedValueMutation],
) {
    for mutation in mutations {
        let Some(slot) = state
            .iter_mut()
            .find(|value| value.state_name == mutation.state_name)
        else {
            continue;
        };
        slot.state_value = if mutation.mutation_type == MutationType::Modify as i32 {
            mutation.state_value.clone()
        } else {
            None
        };
    }
}

/// The replies of sub-batches, merged in order.
#[derive(Default)]
struct Merged {
    response: Option<InvocationResponse>,
}

impl Merged {
    fn add(&mut self, response: InvocationResponse) {
        match &mut self.response {
            None => self.response = Some(response),
            Some(merged) => {
                merged.outgoing_messages.extend(response.outgoing_messages);
                merged
                    .delayed_invocations
                    .extend(response.delayed_invocations);
                merged.outgoing_egresses.extend(response.outgoing_egresses);
                for mutation in response.state_mutations {
                    // The last mutation of a name wins, at the place of the first.
                    match merged
                        .state_mutations
                        .iter_mut()
                        .find(|earlier| earlier.state_name == mutation.state_name)
                    {
                        Some(earlier) => *earlier = mutation,
                        None => merged.state_mutations.push(mutation),
                    }
                }
            }
        }
    }

    fn into_reply(self) -> FromFunction {
        FromFunction {
            response: self.response.map(ReplyKind::InvocationResult),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RetrySpec;
    use aws_sdk_lambda::config::Credentials;
    use bytes::Bytes;
    use eddy_protocol::reqreply::from_function::Invocation as Outgoing;
    use eddy_protocol::reqreply::from_function::{
        EgressMessage, IncompleteInvocationContext, PersistedValueSpec,
    };
    use eddy_protocol::reqreply::to_function::{Invocation, PersistedValue};
    use eddy_protocol::TypedValue;
    use http::{Request, Response};
    use http_body_util::{BodyExt as _, Full};
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    /// One `Invoke` request as the test server saw it.
    #[derive(Debug, Clone)]
    struct Received {
        /// 1-based number of the request.
        hit: usize,
        path: String,
        query: Option<String>,
        /// The raw payload (the envelope).
        payload: Bytes,
    }

    impl Received {
        /// The envelope, checked, and the `ToFunction` inside it.
        fn to_function(&self) -> ToFunction {
            let envelope: serde_json::Value =
                serde_json::from_slice(&self.payload).expect("the payload is JSON");
            assert_eq!(envelope["httpMethod"], "POST");
            assert_eq!(envelope["headers"]["content-type"], OCTET_STREAM);
            assert_eq!(envelope["isBase64Encoded"], true);
            assert_eq!(envelope["path"], "/com.example/greeter");
            let body = base64::engine::general_purpose::STANDARD
                .decode(envelope["body"].as_str().expect("body"))
                .expect("base64 body");
            ToFunction::decode(body.as_slice()).expect("a ToFunction")
        }

        fn batch(&self) -> InvocationBatchRequest {
            match self.to_function().request {
                Some(RequestKind::Invocation(batch)) => batch,
                None => panic!("no batch"),
            }
        }
    }

    /// A small HTTP/1.1 server on 127.0.0.1 playing the Lambda Invoke API.
    struct LambdaApi {
        url: String,
        received: Arc<Mutex<Vec<Received>>>,
        task: JoinHandle<()>,
    }

    impl LambdaApi {
        fn received(&self) -> Vec<Received> {
            self.received.lock().expect("lock").clone()
        }

        fn hits(&self) -> usize {
            self.received.lock().expect("lock").len()
        }
    }

    impl Drop for LambdaApi {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    type Reply = Response<Full<Bytes>>;

    async fn lambda_api<F>(handler: F) -> LambdaApi
    where
        F: Fn(&Received) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let task = tokio::spawn({
            let received = received.clone();
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (handler, received, hits) =
                        (handler.clone(), received.clone(), hits.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<Incoming>| {
                            let (handler, received, hits) =
                                (handler.clone(), received.clone(), hits.clone());
                            async move {
                                let (head, body) = request.into_parts();
                                let payload = body
                                    .collect()
                                    .await
                                    .map(|collected| collected.to_bytes())
                                    .unwrap_or_default();
                                let request = Received {
                                    hit: hits.fetch_add(1, Ordering::SeqCst) + 1,
                                    path: head.uri.path().to_string(),
                                    query: head.uri.query().map(str::to_string),
                                    payload,
                                };
                                let reply = handler(&request);
                                received.lock().expect("lock").push(request);
                                Ok::<_, Infallible>(reply)
                            }
                        });
                        let io = TokioIo::new(stream);
                        let _ = http1::Builder::new().serve_connection(io, service).await;
                    });
                }
            }
        });
        LambdaApi {
            url: format!("http://{addr}"),
            received,
            task,
        }
    }

    /// The Invoke API's answer carrying `payload`.
    fn invoke_reply(payload: impl Into<Bytes>) -> Reply {
        Response::builder()
            .header("content-type", "application/json")
            .header("x-amz-executed-version", "$LATEST")
            .body(Full::new(payload.into()))
            .expect("reply")
    }

    /// An envelope around `reply`.
    fn envelope_reply(reply: &FromFunction) -> Reply {
        let body = base64::engine::general_purpose::STANDARD.encode(reply.encode_to_vec());
        invoke_reply(
            serde_json::json!({
                "statusCode": 200,
                "headers": {"Content-Type": OCTET_STREAM},
                "body": body,
                "isBase64Encoded": true,
            })
            .to_string(),
        )
    }

    fn throttled() -> Reply {
        Response::builder()
            .status(429)
            .header("content-type", "application/json")
            .header("x-amzn-errortype", "TooManyRequestsException")
            .body(Full::new(Bytes::from_static(
                br#"{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}"#,
            )))
            .expect("reply")
    }

    fn long(value: i64) -> TypedValue {
        eddy_protocol::BuiltIn::Long(value).to_typed_value()
    }

    fn long_of(value: &TypedValue) -> i64 {
        match eddy_protocol::BuiltIn::decode(&value.typename, &value.value) {
            Ok(eddy_protocol::BuiltIn::Long(value)) => value,
            other => panic!("not a long: {other:?}"),
        }
    }

    fn address() -> Address {
        Address::new(FunctionType::new("com.example", "greeter"), "alice")
    }

    fn string(text: &str) -> TypedValue {
        eddy_protocol::BuiltIn::String(text.into()).to_typed_value()
    }

    /// A request for alice with `count` state and `messages` string messages.
    fn request(count: Option<i64>, messages: &[String]) -> ToFunction {
        ToFunction {
            request: Some(RequestKind::Invocation(InvocationBatchRequest {
                target: Some(eddy_protocol::Address {
                    namespace: "com.example".into(),
                    r#type: "greeter".into(),
                    id: "alice".into(),
                }),
                state: vec![PersistedValue {
                    state_name: "count".into(),
                    state_value: count.map(long),
                }],
                invocations: messages
                    .iter()
                    .map(|text| Invocation {
                        caller: None,
                        argument: Some(string(text)),
                    })
                    .collect(),
            })),
        }
    }

    fn sample_reply() -> FromFunction {
        FromFunction {
            response: Some(ReplyKind::InvocationResult(InvocationResponse {
                state_mutations: vec![PersistedValueMutation {
                    mutation_type: MutationType::Modify as i32,
                    state_name: "count".into(),
                    state_value: Some(long(1)),
                }],
                ..InvocationResponse::default()
            })),
        }
    }

    /// Fast settings: 3 attempts, short backoffs, 5 s budget.
    fn target(api: &LambdaApi, configure: impl FnOnce(&mut LambdaTarget)) -> LambdaTarget {
        let mut target = LambdaTarget::new("eddy-{function.name}");
        target.endpoint_url = Some(api.url.clone());
        target.region = Some("us-east-1".into());
        target.call = Duration::from_secs(5);
        target.connect = Duration::from_secs(1);
        target.retry = RetrySpec {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        };
        configure(&mut target);
        target
    }

    /// An AWS configuration with static test credentials (no provider chain).
    async fn aws() -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
            .http_client(https_client())
            .load()
            .await
    }

    async fn transport(target: &LambdaTarget) -> LambdaTransport {
        LambdaTransport::new(target, &aws().await, None).expect("transport")
    }

    /// The `(attempts, reason)` of an invocation failure.
    fn invocation_failure(result: Result<FromFunction>) -> (u32, String) {
        match result {
            Err(Error::Invocation {
                attempts, reason, ..
            }) => (attempts, reason),
            other => panic!("expected an invocation failure, got {other:?}"),
        }
    }

    fn messages(count: usize, size: usize) -> Vec<String> {
        (0..count)
            .map(|index| format!("{index:04}{}", "x".repeat(size)))
            .collect()
    }

    #[tokio::test]
    async fn invokes_with_the_envelope_and_decodes_the_reply() {
        let api = lambda_api(|_| envelope_reply(&sample_reply())).await;
        let target = target(&api, |target| target.qualifier = Some("live".into()));
        let request = request(Some(41), &messages(2, 3));
        let reply = transport(&target)
            .await
            .invoke(&address(), request.clone())
            .await
            .expect("reply");
        assert_eq!(reply, sample_reply());
        let received = api.received();
        assert_eq!(received.len(), 1);
        assert_eq!(
            received[0].path,
            "/2015-03-31/functions/eddy-greeter/invocations"
        );
        assert_eq!(received[0].query.as_deref(), Some("Qualifier=live"));
        assert_eq!(received[0].to_function(), request);
    }

    #[tokio::test]
    async fn accepts_an_empty_reply_and_a_plain_body() {
        let api = lambda_api(|received| {
            if received.hit == 1 {
                invoke_reply(r#"{"statusCode":200}"#)
            } else {
                invoke_reply(r#"{"statusCode":"200","body":"","isBase64Encoded":false}"#)
            }
        })
        .await;
        let transport = transport(&target(&api, |_| {})).await;
        for _ in 0..2 {
            let reply = transport
                .invoke(&address(), request(None, &messages(1, 1)))
                .await
                .expect("reply");
            assert_eq!(reply, FromFunction::default());
        }
    }

    #[tokio::test]
    async fn function_error_is_retried_then_fails() {
        let api = lambda_api(|_| {
            let mut reply = invoke_reply(r#"{"errorType":"Boom","errorMessage":"bad input"}"#);
            reply.headers_mut().insert(
                "x-amz-function-error",
                http::HeaderValue::from_static("Unhandled"),
            );
            reply
        })
        .await;
        let result = transport(&target(&api, |_| {}))
            .await
            .invoke(&address(), request(None, &messages(1, 1)))
            .await;
        let error = result.as_ref().map(|_| ()).expect_err("fails").to_string();
        assert!(
            error.starts_with("invocation of com.example/greeter/alice at lambda function eddy-greeter via http://127.0.0.1:"),
            "{error}"
        );
        let (attempts, reason) = invocation_failure(result);
        assert_eq!((attempts, api.hits()), (3, 3));
        assert_eq!(reason, "function error (Unhandled): Boom: bad input");
    }

    #[tokio::test]
    async fn emulator_function_errors_are_retried_then_fail() {
        // cargo lambda answers a function error with 500 and the error document.
        let api = lambda_api(|_| {
            Response::builder()
                .status(500)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(
                    br#"{"errorType":"Boom","errorMessage":"bad input"}"#,
                )))
                .expect("reply")
        })
        .await;
        let (attempts, reason) = invocation_failure(
            transport(&target(&api, |_| {}))
                .await
                .invoke(&address(), request(None, &[]))
                .await,
        );
        assert_eq!((attempts, api.hits()), (3, 3));
        assert_eq!(reason, "function error (lambda api 500): Boom: bad input");
    }

    #[tokio::test]
    async fn envelope_status_follows_the_http_rules() {
        let api = lambda_api(|received| {
            let status = if received.hit <= 2 { 503 } else { 404 };
            invoke_reply(
                serde_json::json!({"statusCode": status, "body": "no such thing"}).to_string(),
            )
        })
        .await;
        let transport = transport(&target(&api, |target| target.retry.max_attempts = 5)).await;
        let (attempts, reason) =
            invocation_failure(transport.invoke(&address(), request(None, &[])).await);
        // Two retried 503s, then a 404 ends the call at once.
        assert_eq!(attempts, 3);
        assert_eq!(reason, "function replied statusCode 404: no such thing");
    }

    #[tokio::test]
    async fn undecodable_replies_are_failures() {
        let api = lambda_api(|received| match received.hit {
            1 => invoke_reply("not json"),
            2 => invoke_reply(r#"{"hello":"world"}"#),
            _ => invoke_reply(
                r#"{"statusCode":200,"body":"//8=","isBase64Encoded":true,"headers":{"content-type":"application/octet-stream"}}"#,
            ),
        })
        .await;
        let (attempts, reason) = invocation_failure(
            transport(&target(&api, |_| {}))
                .await
                .invoke(&address(), request(None, &[]))
                .await,
        );
        assert_eq!(attempts, 3);
        assert!(
            reason.starts_with("reply is not a FromFunction protobuf: "),
            "{reason}"
        );
        assert!(reason.ends_with("(2 bytes, starting ffff)"), "{reason}");
    }

    #[tokio::test]
    async fn unknown_function_fails_at_once() {
        let api = lambda_api(|_| {
            Response::builder()
                .status(404)
                .header("x-amzn-errortype", "ResourceNotFoundException")
                .body(Full::new(Bytes::from_static(
                    br#"{"Type":"User","message":"Function not found: eddy-greeter"}"#,
                )))
                .expect("reply")
        })
        .await;
        let (attempts, reason) = invocation_failure(
            transport(&target(&api, |_| {}))
                .await
                .invoke(&address(), request(None, &[]))
                .await,
        );
        assert_eq!(attempts, 1);
        assert_eq!(
            reason,
            "lambda api 404 ResourceNotFoundException: Function not found: eddy-greeter"
        );
    }

    #[tokio::test]
    async fn throttling_backs_off_without_using_attempts() {
        // Five throttles, then a reply: more throttles than max_attempts (2) allows failures.
        let api = lambda_api(|received| {
            if received.hit <= 5 {
                throttled()
            } else {
                envelope_reply(&sample_reply())
            }
        })
        .await;
        let transport = transport(&target(&api, |target| {
            target.retry.max_attempts = 2;
            // A budget smaller than the throttled time: throttling is not charged to it.
            target.call = Duration::from_millis(100);
            target.retry.initial_backoff = Duration::from_millis(20);
            target.retry.max_backoff = Duration::from_millis(40);
        }))
        .await;
        let started = std::time::Instant::now();
        let reply = transport
            .invoke(&address(), request(None, &messages(1, 1)))
            .await
            .expect("a reply after the throttles");
        assert_eq!(reply, sample_reply());
        assert_eq!(api.hits(), 6);
        // Five backoffs of at least initial_backoff: the throttles were waited out.
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn throttling_ends_at_shutdown() {
        let api = lambda_api(|_| throttled()).await;
        let (stop, stopping) = watch::channel(false);
        let target = target(&api, |_| {});
        let transport = Arc::new(
            LambdaTransport::new(&target, &aws().await, Some(stopping)).expect("transport"),
        );
        let call = tokio::spawn({
            let transport = transport.clone();
            async move { transport.invoke(&address(), request(None, &[])).await }
        });
        // Shut down once the call has been throttled a few times (more than max_attempts).
        crate::invoker::call::tests::wait_for(|| api.hits() >= 4).await;
        assert!(!call.is_finished(), "a throttled call must wait, not fail");
        stop.send(true).expect("send");
        let (attempts, reason) = invocation_failure(call.await.expect("join"));
        assert!(attempts >= 4, "{attempts}");
        assert!(reason.contains("TooManyRequestsException"), "{reason}");
        assert!(
            reason.contains("the runtime is shutting down, gave up after"),
            "{reason}"
        );
    }

    /// A function that counts: `count += messages`, one outgoing message and one egress record
    /// per message (carrying the message), answering `Incomplete` when `count` is not sent.
    fn counting_function(received: &Received) -> Reply {
        let batch = received.batch();
        let Some(count) = batch.state.iter().find(|value| value.state_name == "count") else {
            return envelope_reply(&FromFunction {
                response: Some(ReplyKind::IncompleteInvocationContext(
                    IncompleteInvocationContext {
                        missing_values: vec![PersistedValueSpec {
                            state_name: "count".into(),
                            expiration_spec: None,
                            type_typename: "io.statefun.types/long".into(),
                        }],
                    },
                )),
            });
        };
        let before = count.state_value.as_ref().map_or(0, long_of);
        let after = before + batch.invocations.len() as i64;
        envelope_reply(&FromFunction {
            response: Some(ReplyKind::InvocationResult(InvocationResponse {
                state_mutations: vec![PersistedValueMutation {
                    mutation_type: MutationType::Modify as i32,
                    state_name: "count".into(),
                    state_value: Some(long(after)),
                }],
                outgoing_messages: batch
                    .invocations
                    .iter()
                    .map(|invocation| Outgoing {
                        target: batch.target.clone(),
                        argument: invocation.argument.clone(),
                    })
                    .collect(),
                outgoing_egresses: batch
                    .invocations
                    .iter()
                    .map(|invocation| EgressMessage {
                        egress_namespace: "com.example".into(),
                        egress_type: "out".into(),
                        argument: invocation.argument.clone(),
                    })
                    .collect(),
                delayed_invocations: Vec::new(),
            })),
        })
    }

    #[tokio::test]
    async fn oversize_batches_are_split_with_the_state_threaded() {
        let api = lambda_api(counting_function).await;
        let limit = 2_000;
        let transport = transport(&target(&api, |_| {}))
            .await
            .with_request_limit(limit);
        let texts = messages(20, 200);
        let reply = transport
            .invoke(&address(), request(Some(100), &texts))
            .await
            .expect("reply");

        let received = api.received();
        assert!(received.len() > 2, "{} requests", received.len());
        let mut expected_count = 100;
        let mut seen = Vec::new();
        for request in &received {
            assert!(
                request.payload.len() <= limit,
                "{} bytes",
                request.payload.len()
            );
            let batch = request.batch();
            // Each sub-batch carries the state left by the previous ones.
            assert_eq!(
                batch.state[0].state_value.as_ref().map(long_of),
                Some(expected_count)
            );
            assert!(!batch.invocations.is_empty());
            expected_count += batch.invocations.len() as i64;
            seen.extend(batch.invocations.into_iter().map(|i| i.argument));
        }
        let all: Vec<_> = texts.iter().map(|text| Some(string(text))).collect();
        assert_eq!(seen, all, "every message once, in order");

        let Some(ReplyKind::InvocationResult(merged)) = reply.response else {
            panic!("expected a merged result, got {reply:?}");
        };
        assert_eq!(merged.state_mutations.len(), 1);
        assert_eq!(
            merged.state_mutations[0].state_value.as_ref().map(long_of),
            Some(120)
        );
        let outgoing: Vec<_> = merged
            .outgoing_messages
            .into_iter()
            .map(|message| message.argument)
            .collect();
        assert_eq!(outgoing, all);
        let egress: Vec<_> = merged
            .outgoing_egresses
            .into_iter()
            .map(|record| record.argument)
            .collect();
        assert_eq!(egress, all);
    }

    #[tokio::test]
    async fn a_batch_under_the_limit_is_one_request() {
        let api = lambda_api(counting_function).await;
        let transport = transport(&target(&api, |_| {}))
            .await
            .with_request_limit(100_000);
        transport
            .invoke(&address(), request(Some(1), &messages(20, 200)))
            .await
            .expect("reply");
        assert_eq!(api.hits(), 1);
    }

    #[tokio::test]
    async fn incomplete_context_in_a_sub_batch_is_the_answer() {
        let api = lambda_api(counting_function).await;
        let transport = transport(&target(&api, |_| {}))
            .await
            .with_request_limit(2_000);
        let mut without_state = request(None, &messages(20, 200));
        if let Some(RequestKind::Invocation(batch)) = &mut without_state.request {
            batch.state.clear();
        }
        let reply = transport
            .invoke(&address(), without_state)
            .await
            .expect("reply");
        assert!(
            matches!(
                reply.response,
                Some(ReplyKind::IncompleteInvocationContext(_))
            ),
            "{reply:?}"
        );
        assert_eq!(api.hits(), 1);
    }

    #[tokio::test]
    async fn state_too_large_for_one_message_is_a_clear_failure() {
        let api = lambda_api(counting_function).await;
        let limit = 2_000;
        let transport = transport(&target(&api, |_| {}))
            .await
            .with_request_limit(limit);
        let mut big = request(None, &messages(3, 10));
        let Some(RequestKind::Invocation(batch)) = &mut big.request else {
            panic!("no batch");
        };
        batch.state[0].state_value = Some(string(&"s".repeat(1_600)));
        let state_bytes = batch.state[0].encoded_len();
        let message_bytes = batch.invocations[0].encoded_len();
        let single = ToFunction {
            request: Some(RequestKind::Invocation(InvocationBatchRequest {
                invocations: batch.invocations[..1].to_vec(),
                ..batch.clone()
            })),
        };
        let request_bytes = Envelope::new(&address().function_type).size(single.encoded_len());
        assert!(request_bytes > limit && state_bytes < limit);

        let (attempts, reason) = invocation_failure(transport.invoke(&address(), big).await);
        assert_eq!(attempts, 0);
        assert_eq!(api.hits(), 0);
        let expected = format!(
            "the request for com.example/greeter/alice is {request_bytes} bytes with a single \
             message, over the Lambda synchronous payload limit of 2000 bytes: its state is \
             {state_bytes} bytes in 1 value(s) and the message {message_bytes} bytes"
        );
        assert!(reason.starts_with(&expected), "{reason}");
    }

    #[tokio::test]
    async fn sub_batch_failures_say_which_messages() {
        let api = lambda_api(|received| {
            if received.hit == 1 {
                counting_function(received)
            } else {
                invoke_reply(r#"{"statusCode":400,"body":"no"}"#)
            }
        })
        .await;
        let transport = transport(&target(&api, |_| {}))
            .await
            .with_request_limit(2_000);
        let (_, reason) = invocation_failure(
            transport
                .invoke(&address(), request(Some(0), &messages(20, 200)))
                .await,
        );
        assert!(reason.starts_with("sub-batch 2 (messages "), "{reason}");
        assert!(
            reason.ends_with("of 20, split to stay under the 2000-byte Lambda payload limit): function replied statusCode 400: no"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn concurrency_is_bounded_by_max_concurrency() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let api = lambda_api({
            let (in_flight, most) = (in_flight.clone(), most.clone());
            move |_| {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Hold the request a little so that calls overlap (the handler is synchronous).
                std::thread::sleep(Duration::from_millis(20));
                in_flight.fetch_sub(1, Ordering::SeqCst);
                envelope_reply(&sample_reply())
            }
        })
        .await;
        let transport =
            Arc::new(transport(&target(&api, |target| target.max_concurrency = 2)).await);
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let transport = transport.clone();
                tokio::spawn(async move { transport.invoke(&address(), request(None, &[])).await })
            })
            .collect();
        for call in calls {
            call.await.expect("join").expect("reply");
        }
        assert_eq!(api.hits(), 6);
        assert!(most.load(Ordering::SeqCst) <= 2, "{most:?} calls in flight");
    }

    #[test]
    fn envelope_size_is_exact() {
        let envelope = Envelope::new(&FunctionType::new("com.example", "gr\"eeter"));
        for len in [0, 1, 2, 3, 4, 100, 1001] {
            let bytes = vec![7u8; len];
            let wrapped = envelope.wrap(&bytes);
            assert_eq!(wrapped.len(), envelope.size(len));
            let json: serde_json::Value = serde_json::from_slice(&wrapped).expect("JSON");
            assert_eq!(json["path"], "/com.example/gr\"eeter");
        }
    }

    #[tokio::test]
    async fn no_region_is_a_clear_error() {
        let base = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let error = LambdaTransport::new(&LambdaTarget::new("f"), &base, None)
            .err()
            .expect("no region");
        assert!(
            error.starts_with("no AWS region: set `region` here"),
            "{error}"
        );
    }
}
