//! Partition workers: the owners of state, mailboxes and timers.
//!
//! Each worker owns a range of key groups and runs as one task with no locks on the hot path.
//! Its core is [`machine::Machine`], a state machine without I/O: it takes [`Event`]s and
//! returns [`machine::Action`]s. [`worker`] is the event loop that feeds it events from the
//! inbox, finished invocations and the clock, and carries out its actions (invoke, route,
//! egress, dead-letter).

pub mod machine;
mod wire;
pub mod worker;

use crate::address::Address;
use crate::message::Message;
use crate::Error;
use eddy_protocol::FromFunction;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;

/// What a worker's inbox receives.
#[derive(Debug)]
pub enum Event {
    /// A message for an address this worker owns.
    Deliver(Envelope),
    /// Messages for addresses this worker owns, in order, sharing one admission signal (an
    /// ingress request's messages for this worker: one inbox event instead of one per line).
    DeliverAll {
        messages: Vec<Message>,
        ack: Option<Ack>,
    },
}

/// A message plus, for senders that wait for admission, the signal that releases them.
#[derive(Debug)]
pub struct Envelope {
    pub message: Message,
    pub ack: Option<Ack>,
}

/// Admission signal: senders waiting on it are the only ones slowed by a full mailbox
/// (per-address backpressure).
///
/// One signal may cover many messages: every holder of a clone (a worker's batch, each
/// message parked beyond its address's batch bound) calls [`Ack::release`] when its part is
/// admitted, and the waiting sender is released once the last clone is gone. If any clone is
/// dropped without release (the worker stopped), the sender learns it as an error instead.
#[derive(Debug)]
pub struct Ack {
    shared: Arc<AckShared>,
    released: bool,
}

#[derive(Debug)]
struct AckShared {
    /// Set by a clone dropped without release.
    abandoned: AtomicBool,
    sender: Option<oneshot::Sender<()>>,
}

impl Drop for AckShared {
    fn drop(&mut self) {
        if !self.abandoned.load(Ordering::Acquire) {
            if let Some(sender) = self.sender.take() {
                let _ = sender.send(());
            }
        }
    }
}

impl Ack {
    /// A new admission signal and the receiver a sender waits on.
    pub fn new() -> (Ack, oneshot::Receiver<()>) {
        let (sender, receiver) = oneshot::channel();
        let shared = AckShared {
            abandoned: AtomicBool::new(false),
            sender: Some(sender),
        };
        (
            Ack {
                shared: Arc::new(shared),
                released: false,
            },
            receiver,
        )
    }

    /// This holder's part is admitted; the sender is released when no other holder remains
    /// (a no-op for the sender if it stopped waiting).
    pub fn release(mut self) {
        self.released = true;
    }
}

impl Clone for Ack {
    /// Another holder of the same signal (unreleased).
    fn clone(&self) -> Ack {
        Ack {
            shared: Arc::clone(&self.shared),
            released: false,
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if !self.released {
            self.shared.abandoned.store(true, Ordering::Release);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot::error::TryRecvError;

    #[test]
    fn a_shared_ack_releases_its_sender_after_the_last_holder() {
        let (ack, mut admitted) = Ack::new();
        let parked = [ack.clone(), ack.clone()];
        ack.release();
        assert_eq!(admitted.try_recv(), Err(TryRecvError::Empty));
        let [first, second] = parked;
        first.release();
        assert_eq!(admitted.try_recv(), Err(TryRecvError::Empty));
        second.release();
        assert_eq!(admitted.try_recv(), Ok(()));
    }

    #[test]
    fn a_holder_dropped_unreleased_fails_the_sender() {
        let (ack, mut admitted) = Ack::new();
        let parked = ack.clone();
        ack.release();
        drop(parked);
        assert_eq!(admitted.try_recv(), Err(TryRecvError::Closed));
    }

    #[test]
    fn a_sender_that_stopped_waiting_is_no_problem() {
        let (ack, admitted) = Ack::new();
        drop(admitted);
        ack.release();
    }
}
