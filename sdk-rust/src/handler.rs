//! The batch algorithm: one `ToFunction` in, one `FromFunction` out.
//!
//! 1. Find the function of the target address.
//! 2. If a declared state value is missing from the request (the runtime does not know it
//!    yet), answer `IncompleteInvocationContext` listing the missing specs, in declaration
//!    order; the runtime registers them and re-sends the same batch with the state.
//! 3. Otherwise run the invocations in order against one storage view and answer an
//!    `InvocationResponse` with the outgoing messages, delayed messages and cancellations,
//!    egress records and the mutations of the values written or removed. A failing handler
//!    fails the whole batch: no partial effects. A panicking handler counts as a failing one
//!    (the panic is caught and reported as [`Error::Handler`]).

use crate::address::Address;
use crate::context::{Batch, Context, Effects};
use crate::error::BoxError;
use crate::functions::{Functions, HandlerFuture};
use crate::message::Message;
use crate::storage::{Cell, Cells};
use crate::Error;
use eddy_protocol::reqreply::from_function::{
    IncompleteInvocationContext, InvocationResponse, Response,
};
use eddy_protocol::reqreply::to_function::Request;
use eddy_protocol::{FromFunction, ToFunction};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a non-text panic payload".to_string()
    }
}

/// Polls a handler future, turning a panic into an error (the batch fails, the server lives).
struct CatchPanic(HandlerFuture);

impl Future for CatchPanic {
    type Output = Result<(), BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let future = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => Poll::Ready(Err(format!(
                "the handler panicked: {}",
                panic_message(&*panic)
            )
            .into())),
        }
    }
}

/// An address with every field empty means "no caller" (how Apache's SDKs read it).
fn caller(address: Option<eddy_protocol::Address>) -> Option<Address> {
    address
        .filter(|a| !(a.namespace.is_empty() && a.r#type.is_empty() && a.id.is_empty()))
        .map(Address::from_protocol)
}

pub(crate) async fn invoke(
    functions: &Functions,
    request: ToFunction,
) -> Result<FromFunction, Error> {
    let Some(Request::Invocation(batch)) = request.request else {
        return Err(Error::InvalidRequest(
            "the ToFunction message carries no invocation batch".into(),
        ));
    };
    let Some(target) = batch.target else {
        return Err(Error::InvalidRequest(
            "the invocation batch has no target address".into(),
        ));
    };
    let function = functions
        .lookup(&target.namespace, &target.r#type)
        .ok_or_else(|| functions.unknown(&target.namespace, &target.r#type))?
        .clone();

    // Resolve the declared state against the received values.
    let specs = &function.specs;
    let mut received: Vec<Option<Cell>> = vec![None; specs.len()];
    for value in batch.state {
        if let Some(index) = specs.iter().position(|s| s.name == value.state_name) {
            received[index] = Some(Cell {
                value: value.state_value,
                dirty: false,
            });
        }
    }
    if received.iter().any(Option::is_none) {
        let missing_values = specs
            .iter()
            .zip(&received)
            .filter(|(_, cell)| cell.is_none())
            .map(|(spec, _)| spec.to_protocol())
            .collect();
        return Ok(FromFunction {
            response: Some(Response::IncompleteInvocationContext(
                IncompleteInvocationContext { missing_values },
            )),
        });
    }
    let cells = Cells {
        cells: received.into_iter().flatten().collect(),
    };

    // Check every invocation before running any.
    let mut invocations = Vec::with_capacity(batch.invocations.len());
    for (index, invocation) in batch.invocations.into_iter().enumerate() {
        let argument = invocation.argument.ok_or_else(|| {
            Error::InvalidRequest(format!(
                "invocation {index} of the batch for {}/{}/{} has no argument",
                target.namespace, target.r#type, target.id
            ))
        })?;
        invocations.push((caller(invocation.caller), Message::new(argument)));
    }

    let batch = Arc::new(Batch {
        function: function.clone(),
        address: Address::from_protocol(target),
        effects: Mutex::new(Effects {
            cells,
            ..Effects::default()
        }),
    });
    for (caller, message) in invocations {
        let context = Context {
            batch: batch.clone(),
            caller,
        };
        if let Err(source) = CatchPanic(function.handler.call(context, message)).await {
            return Err(Error::Handler {
                function: function.typename.clone(),
                id: batch.address.id().to_string(),
                source,
            });
        }
    }
    let effects = std::mem::take(&mut *batch.lock());
    Ok(FromFunction {
        response: Some(Response::InvocationResult(InvocationResponse {
            state_mutations: effects.cells.into_mutations(specs),
            outgoing_messages: effects.outgoing,
            delayed_invocations: effects.delayed,
            outgoing_egresses: effects.egress,
        })),
    })
}

#[cfg(test)]
mod tests {
    use crate::{
        Address, BoxError, Context, EgressMessage, Error, Functions, IntType, Message,
        OutgoingMessage, StringType, ValueSpec,
    };
    use eddy_protocol::reqreply::from_function::{
        persisted_value_mutation::MutationType, Response,
    };
    use eddy_protocol::reqreply::to_function::{
        Invocation, InvocationBatchRequest, PersistedValue, Request,
    };
    use eddy_protocol::{BuiltIn, FromFunction, Message as _, ToFunction, TypedValue};
    use std::time::Duration;

    const COUNT: ValueSpec<IntType> = ValueSpec::new("count", IntType);
    const NAME: ValueSpec<StringType> = ValueSpec::new("name", StringType);

    fn address(typename: &str, id: &str) -> eddy_protocol::Address {
        let (namespace, name) = typename.split_once('/').unwrap();
        eddy_protocol::Address {
            namespace: namespace.into(),
            r#type: name.into(),
            id: id.into(),
        }
    }

    fn request(
        target: &str,
        state: Vec<(&str, Option<TypedValue>)>,
        messages: Vec<(Option<eddy_protocol::Address>, TypedValue)>,
    ) -> ToFunction {
        let (typename, id) = target.rsplit_once('/').unwrap();
        ToFunction {
            request: Some(Request::Invocation(InvocationBatchRequest {
                target: Some(address(typename, id)),
                state: state
                    .into_iter()
                    .map(|(name, value)| PersistedValue {
                        state_name: name.into(),
                        state_value: value,
                    })
                    .collect(),
                invocations: messages
                    .into_iter()
                    .map(|(caller, argument)| Invocation {
                        caller,
                        argument: Some(argument),
                    })
                    .collect(),
            })),
        }
    }

    fn string(value: &str) -> TypedValue {
        BuiltIn::String(value.into()).to_typed_value()
    }

    /// Counts messages; "fail" fails; "greet" sends, delays, cancels and egresses.
    async fn counter(context: Context, message: Message) -> Result<(), BoxError> {
        let text = message.as_string()?;
        if text == "fail" {
            return Err("asked to fail".into());
        }
        let count = context.storage().get(&COUNT)?.unwrap_or(0) + 1;
        context.storage().set(&COUNT, &count)?;
        if text == "greet" {
            let caller = context.caller().cloned().ok_or("greet needs a caller")?;
            context.send(OutgoingMessage::string(caller, format!("hi #{count}")));
            let me = context.address().clone();
            context.send_after_with_token(
                Duration::from_millis(1500),
                "t",
                OutgoingMessage::long(me, 1),
            )?;
            context.cancel_delayed_message("old")?;
            context.send_egress(EgressMessage::string("a/out", context.address().id())?);
        }
        if text == "forget" {
            context.storage().remove(&NAME)?;
        }
        Ok(())
    }

    fn functions() -> Functions {
        Functions::new()
            .register("a/counter", &[&COUNT, &NAME], counter)
            .unwrap()
    }

    fn invocation_result(
        reply: FromFunction,
    ) -> eddy_protocol::reqreply::from_function::InvocationResponse {
        match reply.response {
            Some(Response::InvocationResult(result)) => result,
            other => panic!("expected an invocation result, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn missing_state_answers_the_missing_specs_in_order() {
        let reply = functions()
            .invoke(request(
                "a/counter/x",
                vec![("name", None)],
                vec![(None, string("hi"))],
            ))
            .await
            .unwrap();
        match reply.response {
            Some(Response::IncompleteInvocationContext(context)) => {
                let names: Vec<_> = context
                    .missing_values
                    .iter()
                    .map(|s| (s.state_name.as_str(), s.type_typename.as_str()))
                    .collect();
                assert_eq!(names, [("count", "io.statefun.types/int")]);
            }
            other => panic!("expected missing state, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn invocations_share_one_storage_view_in_order() {
        let state = vec![
            ("count", Some(BuiltIn::Int(3).to_typed_value())),
            ("name", None),
            ("unknown_old_value", Some(string("ignored"))),
        ];
        let reply = functions()
            .invoke(request(
                "a/counter/x",
                state,
                vec![(None, string("a")), (None, string("b"))],
            ))
            .await
            .unwrap();
        let result = invocation_result(reply);
        assert_eq!(result.state_mutations.len(), 1, "only count changed");
        let mutation = &result.state_mutations[0];
        assert_eq!(mutation.state_name, "count");
        assert_eq!(mutation.mutation_type, MutationType::Modify as i32);
        assert_eq!(mutation.state_value, Some(BuiltIn::Int(5).to_typed_value()));
    }

    #[tokio::test]
    async fn effects_are_collected_with_the_caller() {
        let bob = address("a/greeter", "bob");
        let reply = functions()
            .invoke(request(
                "a/counter/x",
                vec![("count", None), ("name", Some(string("n")))],
                vec![
                    (Some(bob.clone()), string("greet")),
                    (None, string("forget")),
                ],
            ))
            .await
            .unwrap();
        let result = invocation_result(reply);
        assert_eq!(result.outgoing_messages.len(), 1);
        assert_eq!(result.outgoing_messages[0].target, Some(bob));
        assert_eq!(result.outgoing_messages[0].argument, Some(string("hi #1")));
        assert_eq!(result.delayed_invocations.len(), 2);
        assert_eq!(result.delayed_invocations[0].delay_in_ms, 1500);
        assert_eq!(result.delayed_invocations[0].cancellation_token, "t");
        assert!(result.delayed_invocations[1].is_cancellation_request);
        assert_eq!(result.outgoing_egresses.len(), 1);
        assert_eq!(result.outgoing_egresses[0].egress_type, "out");
        let kinds: Vec<_> = result
            .state_mutations
            .iter()
            .map(|m| (m.state_name.as_str(), m.mutation_type))
            .collect();
        assert_eq!(
            kinds,
            [
                ("count", MutationType::Modify as i32),
                ("name", MutationType::Delete as i32)
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_handler_fails_the_whole_batch() {
        let error = functions()
            .invoke(request(
                "a/counter/x",
                vec![("count", None), ("name", None)],
                vec![(None, string("a")), (None, string("fail"))],
            ))
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "function a/counter failed for id \"x\": asked to fail"
        );
    }

    #[tokio::test]
    async fn a_panicking_handler_fails_the_batch_without_unwinding_the_caller() {
        let functions = Functions::new()
            .register(
                "a/sync",
                &[],
                |_: Context, _: Message| -> std::future::Ready<Result<(), BoxError>> {
                    panic!("before the future")
                },
            )
            .and_then(|f| {
                f.register("a/async", &[], |_: Context, message: Message| async move {
                    if message.as_string()? == "boom" {
                        panic!("inside the future: {}", 42);
                    }
                    Ok::<(), BoxError>(())
                })
            })
            .unwrap();
        let error = functions
            .invoke(request("a/sync/x", vec![], vec![(None, string("a"))]))
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "function a/sync failed for id \"x\": the handler panicked: before the future"
        );
        let error = functions
            .invoke(request(
                "a/async/x",
                vec![],
                vec![(None, string("ok")), (None, string("boom"))],
            ))
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "function a/async failed for id \"x\": the handler panicked: inside the future: 42"
        );
    }

    #[tokio::test]
    async fn a_typename_mismatch_in_a_handler_is_a_failure_naming_both_types() {
        let error = functions()
            .invoke(request(
                "a/counter/x",
                vec![("count", None), ("name", None)],
                vec![(None, BuiltIn::Long(1).to_typed_value())],
            ))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains(
                "expected a value of type io.statefun.types/string, got io.statefun.types/long"
            ),
            "{error}"
        );
    }

    #[tokio::test]
    async fn stored_values_of_another_type_are_reported() {
        let error = functions()
            .invoke(request(
                "a/counter/x",
                vec![("count", Some(string("3"))), ("name", None)],
                vec![(None, string("a"))],
            ))
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("state value \"count\": expected a value of type io.statefun.types/int"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn undeclared_state_is_an_error_naming_the_declared_values() {
        const OTHER: ValueSpec<IntType> = ValueSpec::new("other", IntType);
        let functions = Functions::new()
            .register("a/b", &[&COUNT], |context: Context, _| async move {
                context.storage().get(&OTHER).map(|_| ())
            })
            .unwrap();
        let error = functions
            .invoke(request(
                "a/b/x",
                vec![("count", None)],
                vec![(None, string("a"))],
            ))
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("has no value spec \"other\" (declared: count)"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn bad_requests_are_reported() {
        let functions = functions();
        let error = functions
            .invoke(ToFunction { request: None })
            .await
            .unwrap_err();
        assert!(error.is_bad_request(), "{error}");
        let error = functions
            .invoke(request("a/nope/x", vec![], vec![]))
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "no function of type a/nope is registered here (registered: a/counter); register it \
             with Functions::register or route the type to another endpoint in module.yaml"
        );
        let error = functions.handle(b"\xff\xff\xff").await.unwrap_err();
        assert!(matches!(error, Error::Decode(_)), "{error}");
    }

    #[tokio::test]
    async fn empty_addresses_are_no_caller() {
        let functions = Functions::new()
            .register("a/b", &[], |context: Context, _| async move {
                match context.caller() {
                    None => Ok(()),
                    Some(caller) => Err(format!("unexpected caller {caller}")),
                }
            })
            .unwrap();
        let reply = functions
            .invoke(request(
                "a/b/x",
                vec![],
                vec![(Some(eddy_protocol::Address::default()), string("a"))],
            ))
            .await
            .unwrap();
        assert_eq!(invocation_result(reply), Default::default());
        let _ = Address::new("a/b", "x").unwrap();
    }

    proptest::proptest! {
        /// Any sequence of writes, removes and reads over a batch: each invocation sees what
        /// the previous ones left, and the reply holds one mutation per touched value with
        /// its final state (none for untouched values).
        #[test]
        fn batches_apply_in_order_and_reply_the_final_state(
            initial in proptest::option::of(proptest::prelude::any::<i32>()),
            ops in proptest::collection::vec(proptest::option::of(proptest::option::of(proptest::prelude::any::<i32>())), 0..12),
        ) {
            // Each op: None = read only, Some(None) = remove, Some(Some(v)) = write v. The
            // handler checks that it reads what the model says, then applies the op.
            let functions = Functions::new()
                .register("p/model", &[&COUNT], |context: Context, message: Message| async move {
                    let command = message.as_string()?;
                    let (expected, op) = command.split_once('|').ok_or("bad command")?;
                    let seen = context.storage().get(&COUNT)?;
                    if format!("{seen:?}") != expected {
                        return Err(format!("read {seen:?}, expected {expected}").into());
                    }
                    match op {
                        "read" => {}
                        "remove" => context.storage().remove(&COUNT)?,
                        value => context.storage().set(&COUNT, &value.parse::<i32>()?)?,
                    }
                    Ok::<(), BoxError>(())
                })
                .unwrap();
            let mut model = initial;
            let mut touched = false;
            let mut messages = Vec::new();
            for op in &ops {
                let text = match op {
                    None => "read".to_string(),
                    Some(None) => "remove".to_string(),
                    Some(Some(v)) => v.to_string(),
                };
                messages.push((None, string(&format!("{model:?}|{text}"))));
                if let Some(next) = op {
                    model = *next;
                    touched = true;
                }
            }
            let state = vec![("count", initial.map(|v| BuiltIn::Int(v).to_typed_value()))];
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let reply = runtime
                .block_on(functions.invoke(request("p/model/x", state, messages)))
                .unwrap();
            let result = invocation_result(reply);
            if !touched {
                proptest::prop_assert!(result.state_mutations.is_empty());
            } else {
                proptest::prop_assert_eq!(result.state_mutations.len(), 1);
                let mutation = &result.state_mutations[0];
                match model {
                    Some(v) => {
                        proptest::prop_assert_eq!(mutation.mutation_type, MutationType::Modify as i32);
                        proptest::prop_assert_eq!(
                            mutation.state_value.clone(),
                            Some(BuiltIn::Int(v).to_typed_value())
                        );
                    }
                    None => {
                        proptest::prop_assert_eq!(mutation.mutation_type, MutationType::Delete as i32);
                        proptest::prop_assert!(mutation.state_value.is_none());
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn handle_round_trips_bytes() {
        let body = request(
            "a/counter/x",
            vec![("count", None), ("name", None)],
            vec![(None, string("a"))],
        )
        .encode_to_vec();
        let reply = functions().handle(&body).await.unwrap();
        let reply = FromFunction::decode(&reply[..]).unwrap();
        assert_eq!(invocation_result(reply).state_mutations.len(), 1);
    }
}
