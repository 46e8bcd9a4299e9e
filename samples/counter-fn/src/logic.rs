//! The functions themselves: pure `ToFunction` → `FromFunction` logic, no I/O.
//!
//! - `counter` keeps a `count` state (`io.statefun.types/long`). A request without that state
//!   gets an `IncompleteInvocationContext` asking for it (the missing-state negotiation of
//!   Apache's SDKs); otherwise each message adds one, optionally writes a greeting to an
//!   egress, and the reply carries one `MODIFY` of the final count.
//! - `echo` replies "no side effects": the bare-transport baseline of the benchmark.
//!
//! Both report `eddy.bench/ping` arguments (8 bytes little-endian: send time in microseconds
//! since the UNIX epoch) to a caller-supplied sink, so the server can record latencies.

use eddy_protocol::reqreply::from_function::{
    self, expiration_spec::ExpireMode, persisted_value_mutation::MutationType, EgressMessage,
    ExpirationSpec, IncompleteInvocationContext, InvocationResponse, PersistedValueMutation,
    PersistedValueSpec,
};
use eddy_protocol::reqreply::to_function::{self, InvocationBatchRequest};
use eddy_protocol::{typed, BuiltIn, FromFunction, ToFunction, TypedValue};

/// Name of the counter's state value.
pub const COUNT_STATE: &str = "count";
/// Typename of a benchmark ping (8 bytes little-endian, microseconds since the UNIX epoch).
pub const PING_TYPENAME: &str = "eddy.bench/ping";

/// The functions this server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Counter,
    Echo,
}

impl Function {
    /// The function called `name` (the last segment of the request path).
    pub fn from_name(name: &str) -> Option<Function> {
        match name {
            "counter" => Some(Function::Counter),
            "echo" => Some(Function::Echo),
            _ => None,
        }
    }
}

/// An egress id `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressId {
    pub namespace: String,
    pub name: String,
}

impl std::str::FromStr for EgressId {
    type Err = String;

    fn from_str(text: &str) -> Result<EgressId, String> {
        match text.split_once('/') {
            Some((namespace, name))
                if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
            {
                Ok(EgressId {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(format!(
                "egress id {text:?} is not of the form namespace/name"
            )),
        }
    }
}

/// What a request did, for the server's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub reply: FromFunction,
    /// Messages processed (0 for a negotiation reply).
    pub messages: usize,
    /// True if a batch was processed (false for a negotiation reply).
    pub processed: bool,
}

/// Why a request could not be served (becomes a 400 with this message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs `function` on `request`. `ping` receives the send time (µs) of each
/// `eddy.bench/ping` argument of a processed batch.
pub fn invoke(
    function: Function,
    request: &ToFunction,
    egress: Option<&EgressId>,
    ping: &mut dyn FnMut(u64),
) -> Result<Outcome, BadRequest> {
    let batch = match &request.request {
        Some(to_function::Request::Invocation(batch)) => batch,
        None => {
            return Err(BadRequest(
                "ToFunction carries no invocation batch request".into(),
            ))
        }
    };
    match function {
        Function::Counter => counter(batch, egress, ping),
        Function::Echo => {
            report_pings(batch, ping);
            Ok(Outcome {
                reply: FromFunction { response: None },
                messages: batch.invocations.len(),
                processed: true,
            })
        }
    }
}

fn report_pings(batch: &InvocationBatchRequest, ping: &mut dyn FnMut(u64)) {
    for invocation in &batch.invocations {
        if let Some(sent) = invocation.argument.as_ref().and_then(ping_time) {
            ping(sent);
        }
    }
}

/// The send time of a ping argument, if `argument` is one (wrong lengths are ignored).
fn ping_time(argument: &TypedValue) -> Option<u64> {
    if argument.typename != PING_TYPENAME {
        return None;
    }
    let bytes: [u8; 8] = argument.value.as_ref().try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

fn counter(
    batch: &InvocationBatchRequest,
    egress: Option<&EgressId>,
    ping: &mut dyn FnMut(u64),
) -> Result<Outcome, BadRequest> {
    let Some(state) = batch
        .state
        .iter()
        .find(|value| value.state_name == COUNT_STATE)
    else {
        return Ok(Outcome {
            reply: missing_count(),
            messages: 0,
            processed: false,
        });
    };
    let mut count = current_count(state)?;
    let id = batch
        .target
        .as_ref()
        .map(|target| target.id.as_str())
        .unwrap_or("");
    let mut egresses = Vec::new();
    for invocation in &batch.invocations {
        count = count.wrapping_add(1);
        if let Some(egress) = egress {
            egresses.push(EgressMessage {
                egress_namespace: egress.namespace.clone(),
                egress_type: egress.name.clone(),
                argument: Some(
                    BuiltIn::String(format!("Hello {id}! You are visitor #{count}."))
                        .to_typed_value(),
                ),
            });
        }
        if let Some(sent) = invocation.argument.as_ref().and_then(ping_time) {
            ping(sent);
        }
    }
    let response = InvocationResponse {
        state_mutations: vec![PersistedValueMutation {
            mutation_type: MutationType::Modify as i32,
            state_name: COUNT_STATE.to_string(),
            state_value: Some(BuiltIn::Long(count).to_typed_value()),
        }],
        outgoing_messages: Vec::new(),
        delayed_invocations: Vec::new(),
        outgoing_egresses: egresses,
    };
    Ok(Outcome {
        reply: FromFunction {
            response: Some(from_function::Response::InvocationResult(response)),
        },
        messages: batch.invocations.len(),
        processed: true,
    })
}

/// The count held by the `count` state value (0 when absent).
fn current_count(state: &to_function::PersistedValue) -> Result<i64, BadRequest> {
    let Some(value) = state.state_value.as_ref().filter(|value| value.has_value) else {
        return Ok(0);
    };
    match BuiltIn::decode(&value.typename, &value.value) {
        Ok(BuiltIn::Long(count)) => Ok(count),
        Ok(_) => Err(BadRequest(format!(
            "state `{COUNT_STATE}` has type {}, expected {}",
            value.typename,
            typed::LONG
        ))),
        Err(error) => Err(BadRequest(format!("state `{COUNT_STATE}`: {error}"))),
    }
}

/// "Register `count` (a long, never expiring) and send the batch again."
fn missing_count() -> FromFunction {
    FromFunction {
        response: Some(from_function::Response::IncompleteInvocationContext(
            IncompleteInvocationContext {
                missing_values: vec![PersistedValueSpec {
                    state_name: COUNT_STATE.to_string(),
                    expiration_spec: Some(ExpirationSpec {
                        mode: ExpireMode::None as i32,
                        expire_after_millis: 0,
                    }),
                    type_typename: typed::LONG.to_string(),
                }],
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_protocol::reqreply::to_function::{Invocation, PersistedValue};
    use eddy_protocol::Address;

    fn batch(id: &str, state: Option<Option<i64>>, arguments: Vec<TypedValue>) -> ToFunction {
        ToFunction {
            request: Some(to_function::Request::Invocation(InvocationBatchRequest {
                target: Some(Address {
                    namespace: "eddy.demo".into(),
                    r#type: "counter".into(),
                    id: id.into(),
                }),
                state: state
                    .map(|value| PersistedValue {
                        state_name: COUNT_STATE.into(),
                        state_value: value.map(|count| BuiltIn::Long(count).to_typed_value()),
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
    }

    fn hello() -> TypedValue {
        BuiltIn::String("hi".into()).to_typed_value()
    }

    fn ping(sent: u64) -> TypedValue {
        TypedValue::new(PING_TYPENAME, sent.to_le_bytes().to_vec())
    }

    fn result(outcome: &Outcome) -> &InvocationResponse {
        match &outcome.reply.response {
            Some(from_function::Response::InvocationResult(result)) => result,
            other => panic!("expected an invocation result, got {other:?}"),
        }
    }

    fn no_ping() -> impl FnMut(u64) {
        |_| panic!("no ping expected")
    }

    #[test]
    fn missing_state_is_negotiated() {
        let request = batch("alice", None, vec![hello()]);
        let outcome =
            invoke(Function::Counter, &request, None, &mut no_ping()).expect("valid request");
        assert!(!outcome.processed);
        assert_eq!(outcome.messages, 0);
        let Some(from_function::Response::IncompleteInvocationContext(context)) =
            outcome.reply.response
        else {
            panic!("expected an incomplete invocation context");
        };
        assert_eq!(context.missing_values.len(), 1);
        assert_eq!(context.missing_values[0].state_name, "count");
        assert_eq!(context.missing_values[0].type_typename, typed::LONG);
    }

    #[test]
    fn absent_value_counts_from_zero_and_batches_add_up() {
        let request = batch("alice", Some(None), vec![hello(), hello(), hello()]);
        let outcome =
            invoke(Function::Counter, &request, None, &mut no_ping()).expect("valid request");
        assert!(outcome.processed);
        assert_eq!(outcome.messages, 3);
        let result = result(&outcome);
        assert!(result.outgoing_egresses.is_empty());
        assert_eq!(result.state_mutations.len(), 1);
        let mutation = &result.state_mutations[0];
        assert_eq!(mutation.mutation_type, MutationType::Modify as i32);
        assert_eq!(mutation.state_name, "count");
        let value = mutation.state_value.as_ref().expect("a value");
        assert_eq!(
            BuiltIn::from_typed_value(value).ok(),
            Some(BuiltIn::Long(3))
        );
    }

    #[test]
    fn egress_greets_each_visitor_in_order() {
        let egress: EgressId = "eddy.demo/greetings".parse().expect("valid id");
        let request = batch("bob", Some(Some(5)), vec![hello(), hello()]);
        let outcome = invoke(Function::Counter, &request, Some(&egress), &mut no_ping())
            .expect("valid request");
        let result = result(&outcome);
        let greetings: Vec<_> = result
            .outgoing_egresses
            .iter()
            .map(|record| {
                assert_eq!(record.egress_namespace, "eddy.demo");
                assert_eq!(record.egress_type, "greetings");
                let argument = record.argument.as_ref().expect("an argument");
                assert_eq!(argument.typename, typed::STRING);
                BuiltIn::from_typed_value(argument).expect("a string")
            })
            .collect();
        assert_eq!(
            greetings,
            vec![
                BuiltIn::String("Hello bob! You are visitor #6.".into()),
                BuiltIn::String("Hello bob! You are visitor #7.".into()),
            ]
        );
        let value = result.state_mutations[0]
            .state_value
            .as_ref()
            .expect("a value");
        assert_eq!(
            BuiltIn::from_typed_value(value).ok(),
            Some(BuiltIn::Long(7))
        );
    }

    #[test]
    fn pings_are_reported_by_both_functions() {
        for function in [Function::Counter, Function::Echo] {
            let request = batch(
                "k",
                Some(Some(0)),
                vec![
                    ping(11),
                    hello(),
                    ping(22),
                    TypedValue::new(PING_TYPENAME, vec![1, 2]),
                ],
            );
            let mut seen = Vec::new();
            let outcome =
                invoke(function, &request, None, &mut |sent| seen.push(sent)).expect("valid");
            assert_eq!(seen, vec![11, 22], "{function:?}");
            assert_eq!(outcome.messages, 4);
        }
    }

    #[test]
    fn echo_has_no_side_effects_and_needs_no_state() {
        let request = batch("k", None, vec![hello(), hello()]);
        let outcome = invoke(Function::Echo, &request, None, &mut no_ping()).expect("valid");
        assert_eq!(outcome.reply, FromFunction { response: None });
        assert!(outcome.processed);
        assert_eq!(outcome.messages, 2);
    }

    #[test]
    fn bad_requests_are_errors_not_panics() {
        let empty = ToFunction { request: None };
        assert!(invoke(Function::Counter, &empty, None, &mut no_ping()).is_err());
        let mut wrong_type = batch("k", Some(None), vec![hello()]);
        if let Some(to_function::Request::Invocation(batch)) = &mut wrong_type.request {
            batch.state[0].state_value = Some(hello());
        }
        let error = invoke(Function::Counter, &wrong_type, None, &mut no_ping())
            .expect_err("a string count is rejected");
        assert!(
            error.0.contains("expected io.statefun.types/long"),
            "{error}"
        );
    }

    #[test]
    fn egress_ids_are_parsed() {
        assert!("a/b".parse::<EgressId>().is_ok());
        for bad in ["", "a", "/b", "a/", "a/b/c"] {
            assert!(bad.parse::<EgressId>().is_err(), "{bad}");
        }
        assert_eq!(Function::from_name("counter"), Some(Function::Counter));
        assert_eq!(Function::from_name("nope"), None);
    }
}
