//! A test kit: run a function in-process on given state and messages, then inspect what it
//! did — no runtime, no sockets.
//!
//! A [`Harness`] holds the state of every address of one function type, as the runtime
//! would: each [`Harness::invoke`] sends one batch with the current state (every declared
//! value, present or absent), applies the reply's state mutations and returns the batch's
//! [`Effects`].
//!
//! ```
//! use eddy_sdk::testkit::{Call, Harness};
//! use eddy_sdk::{BoxError, Context, EgressMessage, Functions, LongType, Message, StringType, ValueSpec};
//!
//! const COUNT: ValueSpec<LongType> = ValueSpec::new("count", LongType);
//!
//! async fn counter(context: Context, _: Message) -> Result<(), BoxError> {
//!     let count = context.storage().get(&COUNT)?.unwrap_or(0) + 1;
//!     context.storage().set(&COUNT, &count)?;
//!     context.send_egress(EgressMessage::string("com.example/out", count.to_string())?);
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), eddy_sdk::Error> {
//! let functions = Functions::new().register("com.example/counter", &[&COUNT], counter)?;
//! let mut harness = Harness::new(&functions, "com.example/counter")?;
//! harness.set_state("alice", &COUNT, &41)?;
//! let effects = harness.invoke("alice", vec![Call::string("hi")]).await?;
//! assert_eq!(effects.egress[0].value(&StringType)?, "42");
//! assert_eq!(harness.state("alice", &COUNT)?, Some(42));
//! # Ok(()) }
//! ```

use crate::address::Address;
use crate::egress::EgressMessage;
use crate::message::OutgoingMessage;
use crate::storage::{read_cell, Cell, StateSpec, ValueSpec};
use crate::types::{StringType, Type};
use crate::{Error, Functions};
use eddy_protocol::reqreply::from_function::{persisted_value_mutation::MutationType, Response};
use eddy_protocol::reqreply::to_function::{
    Invocation, InvocationBatchRequest, PersistedValue, Request,
};
use eddy_protocol::{ToFunction, TypedValue};
use std::collections::HashMap;
use std::time::Duration;

/// One incoming message of a test batch: a typed value and an optional caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    caller: Option<Address>,
    argument: TypedValue,
}

impl Call {
    /// A message carrying `value` of type `ty`, from an ingress (no caller).
    pub fn new<T: Type + ?Sized>(ty: &T, value: &T::Value) -> Result<Call, Error> {
        Ok(Call {
            caller: None,
            argument: crate::types::to_typed_value(ty, value)?,
        })
    }

    /// A message carrying an `io.statefun.types/string`.
    pub fn string(value: impl Into<String>) -> Call {
        Call {
            caller: None,
            argument: crate::message::builtin_value(&StringType, &value.into()),
        }
    }

    /// A message carrying an already typed value.
    pub fn typed_value(argument: TypedValue) -> Call {
        Call {
            caller: None,
            argument,
        }
    }

    /// The same message, sent by `caller`.
    pub fn from(mut self, caller: Address) -> Call {
        self.caller = Some(caller);
        self
    }
}

/// A delayed message a batch sent.
#[derive(Debug, Clone, PartialEq)]
pub struct DelayedMessage {
    pub delay: Duration,
    /// The cancellation token, if any.
    pub token: Option<String>,
    pub message: OutgoingMessage,
}

/// What one batch did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Effects {
    /// Messages sent, in order.
    pub messages: Vec<OutgoingMessage>,
    /// Delayed messages sent, in order.
    pub delayed: Vec<DelayedMessage>,
    /// Tokens of the delayed messages cancelled, in order.
    pub cancellations: Vec<String>,
    /// Egress records, in order.
    pub egress: Vec<EgressMessage>,
    /// Names of the state values written (MODIFY), in declaration order.
    pub written: Vec<String>,
    /// Names of the state values removed (DELETE), in declaration order.
    pub removed: Vec<String>,
}

/// Runs one function type in-process with the state of its addresses.
#[derive(Debug)]
pub struct Harness {
    functions: Functions,
    typename: String,
    specs: Vec<StateSpec>,
    /// id → state name → value.
    state: HashMap<String, HashMap<String, TypedValue>>,
}

fn invalid_reply(what: String) -> Error {
    Error::UnexpectedReply(format!("the function replied {what}"))
}

fn address_of(address: Option<eddy_protocol::Address>, what: &str) -> Result<Address, Error> {
    address
        .map(Address::from_protocol)
        .ok_or_else(|| invalid_reply(format!("a {what} without a target")))
}

impl Harness {
    /// A harness for function type `typename` of `functions`.
    pub fn new(functions: &Functions, typename: &str) -> Result<Harness, Error> {
        let specs = functions.specs(typename).ok_or_else(|| {
            let (namespace, name) = typename.split_once('/').unwrap_or((typename, ""));
            functions.unknown(namespace, name)
        })?;
        Ok(Harness {
            functions: functions.clone(),
            typename: typename.to_string(),
            specs,
            state: HashMap::new(),
        })
    }

    fn spec_of<T: Type>(&self, spec: &ValueSpec<T>) -> Result<(), Error> {
        crate::storage::locate(&self.typename, &self.specs, spec).map(|_| ())
    }

    /// Sets the state value `spec` of address `id`.
    pub fn set_state<T: Type>(
        &mut self,
        id: &str,
        spec: &ValueSpec<T>,
        value: &T::Value,
    ) -> Result<(), Error> {
        self.spec_of(spec)?;
        let value = crate::types::to_typed_value(spec.ty(), value)?;
        self.state
            .entry(id.to_string())
            .or_default()
            .insert(spec.name().to_string(), value);
        Ok(())
    }

    /// The state value `spec` of address `id`, `None` if absent.
    pub fn state<T: Type>(&self, id: &str, spec: &ValueSpec<T>) -> Result<Option<T::Value>, Error> {
        self.spec_of(spec)?;
        let cell = Cell {
            value: self
                .state
                .get(id)
                .and_then(|values| values.get(spec.name()))
                .cloned(),
            dirty: false,
        };
        read_cell(&cell, spec)
    }

    /// Runs one batch of `calls` to address `id` with its current state; applies the state
    /// mutations and returns the effects. A failing handler returns its error and changes
    /// nothing.
    pub async fn invoke(&mut self, id: &str, calls: Vec<Call>) -> Result<Effects, Error> {
        let address = Address::new(&self.typename, id)?;
        let values = self.state.get(id);
        let request = ToFunction {
            request: Some(Request::Invocation(InvocationBatchRequest {
                target: Some(address.to_protocol()),
                state: self
                    .specs
                    .iter()
                    .map(|spec| PersistedValue {
                        state_name: spec.name.clone(),
                        state_value: values.and_then(|v| v.get(&spec.name)).cloned(),
                    })
                    .collect(),
                invocations: calls
                    .into_iter()
                    .map(|call| Invocation {
                        caller: call.caller.map(|a| a.to_protocol()),
                        argument: Some(call.argument),
                    })
                    .collect(),
            })),
        };
        let reply = self.functions.invoke(request).await?;
        let result = match reply.response {
            Some(Response::InvocationResult(result)) => result,
            None => return Ok(Effects::default()),
            Some(Response::IncompleteInvocationContext(context)) => {
                return Err(invalid_reply(format!(
                    "missing state although all of it was sent: {:?}",
                    context.missing_values
                )))
            }
        };
        let mut effects = Effects::default();
        for message in result.outgoing_messages {
            let target = address_of(message.target, "message")?;
            let argument = message.argument.unwrap_or_default();
            effects
                .messages
                .push(OutgoingMessage::from_typed_value(target, argument));
        }
        for delayed in result.delayed_invocations {
            if delayed.is_cancellation_request {
                effects.cancellations.push(delayed.cancellation_token);
                continue;
            }
            let target = address_of(delayed.target, "delayed message")?;
            effects.delayed.push(DelayedMessage {
                delay: Duration::from_millis(u64::try_from(delayed.delay_in_ms).unwrap_or(0)),
                token: (!delayed.cancellation_token.is_empty())
                    .then_some(delayed.cancellation_token),
                message: OutgoingMessage::from_typed_value(
                    target,
                    delayed.argument.unwrap_or_default(),
                ),
            });
        }
        for egress in result.outgoing_egresses {
            effects.egress.push(EgressMessage::from_typed_value(
                &format!("{}/{}", egress.egress_namespace, egress.egress_type),
                egress.argument.unwrap_or_default(),
            )?);
        }
        let values = self.state.entry(id.to_string()).or_default();
        for mutation in result.state_mutations {
            if mutation.mutation_type == MutationType::Modify as i32 {
                values.insert(
                    mutation.state_name.clone(),
                    mutation.state_value.unwrap_or_default(),
                );
                effects.written.push(mutation.state_name);
            } else {
                values.remove(&mutation.state_name);
                effects.removed.push(mutation.state_name);
            }
        }
        Ok(effects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BoxError, Context, IntType, LongType, Message};

    const N: ValueSpec<IntType> = ValueSpec::new("n", IntType);

    async fn handler(context: Context, message: Message) -> Result<(), BoxError> {
        match message.as_string()?.as_str() {
            "inc" => {
                let n = context.storage().get(&N)?.unwrap_or(0) + 1;
                context.storage().set(&N, &n)?;
            }
            "reset" => context.storage().remove(&N)?,
            "echo" => {
                let caller = context.caller().cloned().ok_or("echo needs a caller")?;
                context.send(OutgoingMessage::string(caller.clone(), "echo"));
                context.send_after(Duration::from_millis(5), OutgoingMessage::int(caller, 1))?;
                context.cancel_delayed_message("t")?;
            }
            other => return Err(format!("unknown command {other}").into()),
        }
        Ok(())
    }

    fn harness() -> Harness {
        let functions = Functions::new().register("t/h", &[&N], handler).unwrap();
        Harness::new(&functions, "t/h").unwrap()
    }

    #[tokio::test]
    async fn state_carries_over_between_batches_per_address() {
        let mut harness = harness();
        let effects = harness
            .invoke("a", vec![Call::string("inc"), Call::string("inc")])
            .await
            .unwrap();
        assert_eq!(effects.written, ["n"]);
        harness
            .invoke("a", vec![Call::string("inc")])
            .await
            .unwrap();
        assert_eq!(harness.state("a", &N).unwrap(), Some(3));
        assert_eq!(harness.state("b", &N).unwrap(), None);
        let effects = harness
            .invoke("a", vec![Call::string("reset")])
            .await
            .unwrap();
        assert_eq!(effects.removed, ["n"]);
        assert_eq!(harness.state("a", &N).unwrap(), None);
    }

    #[tokio::test]
    async fn messages_and_delays_are_reported() {
        let mut harness = harness();
        let caller = Address::new("t/other", "o").unwrap();
        let effects = harness
            .invoke("a", vec![Call::string("echo").from(caller.clone())])
            .await
            .unwrap();
        assert_eq!(effects.messages.len(), 1);
        assert_eq!(effects.messages[0].target(), &caller);
        assert_eq!(effects.delayed[0].delay, Duration::from_millis(5));
        assert_eq!(effects.delayed[0].token, None);
        assert_eq!(effects.cancellations, ["t"]);
    }

    #[tokio::test]
    async fn failures_change_nothing() {
        let mut harness = harness();
        harness.set_state("a", &N, &7).unwrap();
        let error = harness
            .invoke("a", vec![Call::string("inc"), Call::string("boom")])
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("unknown command boom"),
            "{error}"
        );
        assert_eq!(harness.state("a", &N).unwrap(), Some(7));
    }

    #[test]
    fn undeclared_or_mistyped_specs_are_rejected() {
        let mut harness = harness();
        let wrong_type = ValueSpec::new("n", LongType);
        assert!(harness.set_state("a", &wrong_type, &1).is_err());
        let unknown = ValueSpec::new("m", IntType);
        assert!(harness.state("a", &unknown).is_err());
        let functions = Functions::new();
        assert!(Harness::new(&functions, "t/h").is_err());
    }
}
