//! The context of one invocation: who is invoked, by whom, and what the invocation does.
//!
//! A [`Context`] is handed to the handler with each message. Everything the handler does
//! through it — messages, delayed messages and their cancellation, egress records, state writes
//! — is collected and returned to the runtime in one reply for the whole batch, so nothing
//! takes effect unless every invocation of the batch succeeds.

use crate::address::Address;
use crate::egress::EgressMessage;
use crate::functions::Registered;
use crate::message::OutgoingMessage;
use crate::storage::{locate, Cell, Cells, Storage, ValueSpec};
use crate::types::Type;
use crate::Error;
use eddy_protocol::reqreply::from_function::{self, DelayedInvocation};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Everything a batch produced so far.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) cells: Cells,
    pub(crate) outgoing: Vec<from_function::Invocation>,
    pub(crate) delayed: Vec<DelayedInvocation>,
    pub(crate) egress: Vec<from_function::EgressMessage>,
}

/// One batch under way: the function, the address, the effects.
pub(crate) struct Batch {
    pub(crate) function: Arc<Registered>,
    pub(crate) address: Address,
    pub(crate) effects: Mutex<Effects>,
}

impl Batch {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Effects> {
        // Only SDK code holds the lock, never across an await or user code: a poisoned lock
        // cannot hold half-done work, so its content is still consistent.
        self.effects.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The context of one invocation. Cheap to clone; effects recorded after the handler returned
/// are ignored (the reply is gone by then).
#[derive(Clone)]
pub struct Context {
    pub(crate) batch: Arc<Batch>,
    pub(crate) caller: Option<Address>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("address", &self.batch.address)
            .field("caller", &self.caller)
            .finish()
    }
}

/// The delay of a delayed message in milliseconds, as the protocol carries it.
fn delay_millis(delay: Duration) -> Result<i64, Error> {
    i64::try_from(delay.as_millis()).map_err(|_| {
        Error::InvalidDelay(format!(
            "a delay of {delay:?} does not fit the protocol's 64-bit milliseconds; give a shorter delay"
        ))
    })
}

impl Context {
    /// The address under invocation.
    pub fn address(&self) -> &Address {
        &self.batch.address
    }

    /// The function that sent the message, `None` if it came from an ingress (or a delayed
    /// message from outside a function).
    pub fn caller(&self) -> Option<&Address> {
        self.caller.as_ref()
    }

    /// The typed state of this address.
    pub fn storage(&self) -> Storage<'_> {
        Storage { context: self }
    }

    /// Sends `message` (delivered after this batch succeeds).
    pub fn send(&self, message: OutgoingMessage) {
        let (target, argument) = message.into_parts();
        self.batch.lock().outgoing.push(from_function::Invocation {
            target: Some(target.to_protocol()),
            argument: Some(argument),
        });
    }

    /// Sends `message` after `delay`. Fails only for a delay beyond 64-bit milliseconds.
    pub fn send_after(&self, delay: Duration, message: OutgoingMessage) -> Result<(), Error> {
        self.push_delayed(delay, message, String::new())
    }

    /// Sends `message` after `delay`, cancellable with
    /// [`cancel_delayed_message`](Context::cancel_delayed_message)`(token)`. Tokens are scoped
    /// to this address; reusing a token of a pending message is an invocation failure in the
    /// runtime. Fails for an empty token.
    pub fn send_after_with_token(
        &self,
        delay: Duration,
        token: impl Into<String>,
        message: OutgoingMessage,
    ) -> Result<(), Error> {
        let token = token.into();
        if token.is_empty() {
            return Err(Error::InvalidDelay(
                "the cancellation token is empty; give a non-empty token or use send_after".into(),
            ));
        }
        self.push_delayed(delay, message, token)
    }

    fn push_delayed(
        &self,
        delay: Duration,
        message: OutgoingMessage,
        token: String,
    ) -> Result<(), Error> {
        let delay_in_ms = delay_millis(delay)?;
        let (target, argument) = message.into_parts();
        self.batch.lock().delayed.push(DelayedInvocation {
            delay_in_ms,
            target: Some(target.to_protocol()),
            argument: Some(argument),
            is_cancellation_request: false,
            cancellation_token: token,
        });
        Ok(())
    }

    /// Cancels the delayed message sent with `token` by this address (a no-op if it was
    /// delivered already or never existed). Fails for an empty token.
    pub fn cancel_delayed_message(&self, token: impl Into<String>) -> Result<(), Error> {
        let token = token.into();
        if token.is_empty() {
            return Err(Error::InvalidDelay(
                "the cancellation token is empty; give the token the message was sent with".into(),
            ));
        }
        self.batch.lock().delayed.push(DelayedInvocation {
            delay_in_ms: 0,
            target: None,
            argument: None,
            is_cancellation_request: true,
            cancellation_token: token,
        });
        Ok(())
    }

    /// Writes `record` to its egress (after this batch succeeds).
    pub fn send_egress(&self, record: EgressMessage) {
        self.batch.lock().egress.push(record.into_protocol());
    }

    /// Runs `f` on the cell of `spec`, after checking it is declared with the same type.
    pub(crate) fn with_cell<T: Type, R>(
        &self,
        spec: &ValueSpec<T>,
        f: impl FnOnce(&mut Cell) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let function = &self.batch.function;
        let index = locate(&function.typename, &function.specs, spec)?;
        let mut effects = self.batch.lock();
        match effects.cells.cells.get_mut(index) {
            Some(cell) => f(cell),
            // Cells are built from the same specs: this cannot happen, but say so if it does.
            None => Err(Error::UnknownState {
                function: function.typename.clone(),
                name: spec.name().to_string(),
                declared: String::from("(state not loaded)"),
            }),
        }
    }
}
