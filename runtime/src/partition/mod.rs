//! Partition workers: the owners of state, mailboxes and timers.
//!
//! Each worker owns a range of key groups and runs as one task with no locks on the hot path.
//! Its core is [`machine::Machine`], a state machine without I/O: it takes [`Event`]s and
//! returns [`machine::Action`]s. [`worker`] is the event loop that feeds it events from the
//! inbox and the clock and carries out its actions (invoke, route, egress, dead-letter).

pub mod machine;
mod wire;
pub mod worker;

use crate::address::Address;
use crate::message::Message;
use crate::Error;
use eddy_protocol::FromFunction;
use tokio::sync::oneshot;

/// What a worker's inbox receives.
#[derive(Debug)]
pub enum Event {
    /// A message for an address this worker owns.
    Deliver(Envelope),
    /// The outcome of an invocation this worker started.
    Completed(Completion),
}

/// A message plus, for senders that wait for admission, the signal that releases them.
#[derive(Debug)]
pub struct Envelope {
    pub message: Message,
    pub ack: Option<Ack>,
}

/// Admission signal: sent once the message sits within its address's batch bound. Senders
/// waiting on it are the only ones slowed by a full mailbox (per-address backpressure).
#[derive(Debug)]
pub struct Ack(pub oneshot::Sender<()>);

impl Ack {
    /// A new admission signal and the receiver a sender waits on.
    pub fn new() -> (Ack, oneshot::Receiver<()>) {
        let (sender, receiver) = oneshot::channel();
        (Ack(sender), receiver)
    }

    /// Releases the waiting sender (a no-op if it stopped waiting).
    pub fn release(self) {
        let _ = self.0.send(());
    }
}

/// The outcome of one invocation of one address.
#[derive(Debug)]
pub struct Completion {
    pub address: Address,
    /// Identifies the batch, so late or duplicate completions are recognised.
    pub batch_id: u64,
    pub result: Result<FromFunction, Error>,
}
