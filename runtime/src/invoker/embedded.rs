//! Embedded transport: calls `eddy-sdk` functions linked into the running binary
//! (`io.eddy.endpoints.v1/embedded`).
//!
//! The request goes to [`eddy_sdk::Functions::invoke`] as a struct: no protobuf encoding, no
//! socket. A handler's error fails the batch (it goes to dead letters under the same rules as
//! a remote failure); so does a panic (eddy-sdk reports a handler's panic as an error; any
//! other panic while invoking is caught here), so that the address is never left waiting for a
//! reply that never comes. There are no retries: an in-process function that failed would most
//! likely fail the same way again.
//!
//! Which typenames the functions serve is checked at start-up against the module
//! ([`check_selectors`]).

use crate::address::Address;
use crate::spec::{EndpointTarget, FunctionSelector, ModuleSpec};
use crate::{Error, Result};
use eddy_protocol::{FromFunction, ToFunction};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

/// What failures and logs call this transport's location.
const LOCATION: &str = "embedded";

/// Calls the functions linked into this binary.
pub struct EmbeddedTransport {
    functions: eddy_sdk::Functions,
}

impl EmbeddedTransport {
    pub fn new(functions: eddy_sdk::Functions) -> EmbeddedTransport {
        EmbeddedTransport { functions }
    }

    /// Runs `request` for `target` in-process.
    pub async fn invoke(&self, target: &Address, request: ToFunction) -> Result<FromFunction> {
        let outcome = CatchUnwind(Box::pin(self.functions.invoke(request))).await;
        let reason = match outcome {
            Ok(Ok(reply)) => return Ok(reply),
            Ok(Err(error)) => error.to_string(),
            Err(panic) => format!("the function panicked: {}", panic_message(&*panic)),
        };
        tracing::warn!(target = %target, url = LOCATION, reason = %reason, "invocation failed");
        Err(Error::Invocation {
            target: target.to_string(),
            url: LOCATION.to_string(),
            attempts: 1,
            reason,
        })
    }
}

/// Checks every embedded endpoint of `module` against the typenames of `functions`: each
/// selector must match at least one registered function, and there must be functions at all.
pub fn check_selectors(module: &ModuleSpec, functions: Option<&eddy_sdk::Functions>) -> Result<()> {
    for endpoint in &module.endpoints {
        if !matches!(endpoint.target, EndpointTarget::Embedded) {
            continue;
        }
        let error = |message: String| Error::Config {
            file: module.path.clone(),
            document: Some(endpoint.document),
            field: "spec.functions".to_string(),
            message,
        };
        let Some(functions) = functions else {
            return Err(error(format!(
                "`{}` is declared embedded, but this binary has no functions linked in (the \
                 plain `eddy` binary never has): build your own binary that calls \
                 `eddy_runtime::cli::main_with(Some(functions))` with your eddy-sdk functions, \
                 or serve these functions over http (io.statefun.endpoints.v2/http) or lambda \
                 (io.eddy.endpoints.v1/lambda)",
                endpoint.functions
            )));
        };
        let typenames = functions.typenames();
        let served = typenames.iter().any(|typename| {
            crate::address::FunctionType::parse(typename)
                .is_ok_and(|function_type| endpoint.functions.matches(&function_type))
        });
        if !served {
            let known = if typenames.is_empty() {
                "none".to_string()
            } else {
                typenames.join(", ")
            };
            let what = match &endpoint.functions {
                FunctionSelector::Exact(_) => "is not one of",
                FunctionSelector::Namespace(_) => "matches none of",
            };
            return Err(error(format!(
                "`{}` {what} the functions linked into this binary ({known}); fix the selector, \
                 or register the function with eddy_sdk::Functions::register in the binary",
                endpoint.functions
            )));
        }
    }
    Ok(())
}

/// A future that turns a panic while polling into an `Err` with the panic payload.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// The text of a panic payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::FunctionType;
    use eddy_protocol::reqreply::from_function::Response as ReplyKind;
    use eddy_protocol::reqreply::to_function::{
        Invocation, InvocationBatchRequest, PersistedValue, Request as RequestKind,
    };
    use eddy_protocol::BuiltIn;
    use eddy_sdk::{BoxError, Context as FnContext, LongType, Message, ValueSpec};
    use std::path::Path;

    const SEEN: ValueSpec<LongType> = ValueSpec::new("seen", LongType);

    async fn counter(context: FnContext, message: Message) -> Result<(), BoxError> {
        match message.as_string()?.as_str() {
            "boom" => Err("boom is not a greeting".into()),
            "panic" => panic!("the handler panicked on purpose"),
            _ => {
                let seen = context.storage().get(&SEEN)?.unwrap_or(0) + 1;
                context.storage().set(&SEEN, &seen)?;
                Ok(())
            }
        }
    }

    fn functions() -> eddy_sdk::Functions {
        eddy_sdk::Functions::new()
            .register("com.example/counter", &[&SEEN], counter)
            .expect("register")
    }

    fn address() -> Address {
        Address::new(FunctionType::new("com.example", "counter"), "a")
    }

    fn request(messages: &[&str]) -> ToFunction {
        ToFunction {
            request: Some(RequestKind::Invocation(InvocationBatchRequest {
                target: Some(eddy_protocol::Address {
                    namespace: "com.example".into(),
                    r#type: "counter".into(),
                    id: "a".into(),
                }),
                state: vec![PersistedValue {
                    state_name: "seen".into(),
                    state_value: Some(BuiltIn::Long(41).to_typed_value()),
                }],
                invocations: messages
                    .iter()
                    .map(|text| Invocation {
                        caller: None,
                        argument: Some(BuiltIn::String((*text).into()).to_typed_value()),
                    })
                    .collect(),
            })),
        }
    }

    fn failure(result: Result<FromFunction>) -> (String, u32, String) {
        match result {
            Err(Error::Invocation {
                url,
                attempts,
                reason,
                ..
            }) => (url, attempts, reason),
            other => panic!("expected an invocation failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn runs_the_linked_function() {
        let transport = EmbeddedTransport::new(functions());
        let reply = transport
            .invoke(&address(), request(&["hi", "hi"]))
            .await
            .expect("reply");
        let Some(ReplyKind::InvocationResult(result)) = reply.response else {
            panic!("expected a result, got {reply:?}");
        };
        let value = result.state_mutations[0]
            .state_value
            .as_ref()
            .expect("a value");
        assert_eq!(
            BuiltIn::from_typed_value(value).ok(),
            Some(BuiltIn::Long(43))
        );
    }

    #[tokio::test]
    async fn handler_errors_and_panics_fail_the_batch() {
        let transport = EmbeddedTransport::new(functions());
        let (url, attempts, reason) =
            failure(transport.invoke(&address(), request(&["hi", "boom"])).await);
        assert_eq!((url.as_str(), attempts), ("embedded", 1));
        assert!(reason.contains("boom is not a greeting"), "{reason}");

        let (_, _, reason) = failure(transport.invoke(&address(), request(&["panic"])).await);
        // eddy-sdk reports a handler's panic as its error; a panic anywhere else is caught here.
        assert!(
            reason.contains("panicked") && reason.ends_with("the handler panicked on purpose"),
            "{reason}"
        );
        // The transport still works after a panic.
        transport
            .invoke(&address(), request(&["hi"]))
            .await
            .expect("reply after a panic");
    }

    fn module(functions: &str) -> ModuleSpec {
        let text = format!(
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: other/*\n  \
             urlPathTemplate: http://h/{{function.name}}\n---\n\
             kind: io.eddy.endpoints.v1/embedded\nspec:\n  functions: {functions}\n"
        );
        crate::spec::parse_str(Path::new("/app/module.yaml"), &text).expect("valid module")
    }

    fn config_error(result: Result<()>) -> (Option<usize>, String, String) {
        match result {
            Err(Error::Config {
                document,
                field,
                message,
                ..
            }) => (document, field, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn selectors_must_match_linked_functions() {
        let functions = functions();
        check_selectors(&module("com.example/counter"), Some(&functions)).expect("exact");
        check_selectors(&module("com.example/*"), Some(&functions)).expect("namespace");

        let (document, field, message) = config_error(check_selectors(
            &module("com.example/greeter"),
            Some(&functions),
        ));
        assert_eq!((document, field.as_str()), (Some(1), "spec.functions"));
        assert!(
            message.starts_with(
                "`com.example/greeter` is not one of the functions linked into this binary \
                 (com.example/counter)"
            ),
            "{message}"
        );
        let (_, _, message) =
            config_error(check_selectors(&module("other.ns/*"), Some(&functions)));
        assert!(message.contains("matches none of"), "{message}");

        let (document, field, message) =
            config_error(check_selectors(&module("com.example/*"), None));
        assert_eq!((document, field.as_str()), (Some(1), "spec.functions"));
        assert!(message.contains("no functions linked in"), "{message}");
        assert!(
            message.contains("eddy_runtime::cli::main_with(Some(functions))"),
            "{message}"
        );
        // A module without embedded endpoints needs no functions.
        let http_only = crate::spec::parse_str(
            Path::new("/app/module.yaml"),
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://h/\n",
        )
        .expect("valid");
        check_selectors(&http_only, None).expect("no embedded endpoints");
    }
}
