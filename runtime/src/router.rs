//! Routing of messages to the partition worker that owns their target.
//!
//! `address → key group → worker` through a precomputed table. Ingresses call
//! [`Router::send`], which rejects unknown function types at the door and waits until the
//! message is admitted to its address's mailbox (per-address backpressure). Workers call
//! [`Router::forward`] for messages between functions, which never waits: a cycle of functions
//! must not deadlock on itself.

use crate::address::{worker_of_key_group, Address, KEY_GROUPS};
use crate::catalog::Catalog;
use crate::message::Message;
use crate::partition::{Ack, Envelope, Event};
use crate::Error;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

/// A cheap, cloneable handle that delivers messages to their owning worker.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    workers: Vec<UnboundedSender<Event>>,
    owner_of_key_group: Vec<usize>,
    catalog: Arc<Catalog>,
}

impl Router {
    /// A router over the inboxes of `workers` (index = worker number).
    pub fn new(workers: Vec<UnboundedSender<Event>>, catalog: Arc<Catalog>) -> Router {
        let owner_of_key_group = (0..KEY_GROUPS)
            .map(|key_group| worker_of_key_group(key_group, workers.len()))
            .collect();
        Router {
            inner: Arc::new(Inner {
                workers,
                owner_of_key_group,
                catalog,
            }),
        }
    }

    /// The worker that owns `address`.
    pub fn worker_of(&self, address: &Address) -> usize {
        self.inner.owner_of_key_group[address.key_group() as usize]
    }

    /// The catalog of endpoints messages are checked against.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Checks that some endpoint serves the message's function type.
    pub fn check(&self, message: &Message) -> Result<(), Error> {
        if self
            .inner
            .catalog
            .resolve(&message.target.function_type)
            .is_none()
        {
            return Err(Error::Rejected(format!(
                "no endpoint serves function type {} (message for {}): declare it in module.yaml",
                message.target.function_type, message.target
            )));
        }
        Ok(())
    }

    /// Sends a message from outside (an ingress) and waits until it is admitted to its
    /// address's mailbox. Only senders to a full mailbox wait.
    pub async fn send(&self, message: Message) -> Result<(), Error> {
        let mut admission = self.submit(message)?;
        admission.admitted().await
    }

    /// Checks and delivers a message from outside at once, returning the admission to wait
    /// for. Messages submitted one after another reach their worker in that order.
    pub fn submit(&self, message: Message) -> Result<Admission, Error> {
        self.check(&message)?;
        let (ack, admitted) = Ack::new();
        self.deliver(Envelope {
            message,
            ack: Some(ack),
        })?;
        Ok(Admission(admitted))
    }

    /// Delivers messages from outside at once — one inbox event per worker, keeping their
    /// order — and returns the one admission that resolves when all of them are admitted.
    /// The caller has checked each with [`Router::check`] (so that its error can name the
    /// line); a message that slipped through anyway ends in the dead letters, never lost.
    pub fn submit_all(&self, messages: Vec<Message>) -> Result<Admission, Error> {
        let (ack, admitted) = Ack::new();
        // The owner of each message; consecutive messages for one address hash once.
        let mut last: Option<(&Address, usize)> = None;
        let owners: Vec<usize> = messages
            .iter()
            .map(|message| match last {
                _ if self.inner.workers.len() == 1 => 0,
                Some((target, owner)) if *target == message.target => owner,
                _ => {
                    let owner = self.worker_of(&message.target);
                    last = Some((&message.target, owner));
                    owner
                }
            })
            .collect();
        match owners.first() {
            // All for one worker (one key, or one worker): the batch goes as it is.
            Some(&worker) if owners.iter().all(|owner| *owner == worker) => {
                let ack = Some(ack.clone());
                self.to_worker(worker, Event::DeliverAll { messages, ack })?;
            }
            Some(_) => {
                let mut groups: Vec<Vec<Message>> = vec![Vec::new(); self.inner.workers.len()];
                for (message, owner) in messages.into_iter().zip(owners) {
                    groups[owner].push(message);
                }
                for (worker, messages) in groups.into_iter().enumerate() {
                    if !messages.is_empty() {
                        let ack = Some(ack.clone());
                        self.to_worker(worker, Event::DeliverAll { messages, ack })?;
                    }
                }
            }
            None => {}
        }
        ack.release();
        Ok(Admission(admitted))
    }

    /// Sends a message without waiting for admission (messages between functions, timers).
    pub fn forward(&self, message: Message) -> Result<(), Error> {
        self.deliver(Envelope { message, ack: None })
    }

    /// Hands an event to worker `worker`.
    pub fn to_worker(&self, worker: usize, event: Event) -> Result<(), Error> {
        self.inner
            .workers
            .get(worker)
            .ok_or(Error::ShuttingDown)?
            .send(event)
            .map_err(|_| Error::ShuttingDown)
    }

    fn deliver(&self, envelope: Envelope) -> Result<(), Error> {
        let worker = self.worker_of(&envelope.message.target);
        self.to_worker(worker, Event::Deliver(envelope))
    }
}

/// A submitted message's admission: resolves once the message sits within its address's
/// batch bound.
#[derive(Debug)]
pub struct Admission(oneshot::Receiver<()>);

impl Admission {
    /// Waits for admission; fails if the runtime stopped first. Cancel-safe: waiting again
    /// after a cancelled wait picks up where it left off (but not after it resolved).
    pub async fn admitted(&mut self) -> Result<(), Error> {
        (&mut self.0).await.map_err(|_| Error::ShuttingDown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::tests::example_catalog;
    use eddy_protocol::BuiltIn;
    use tokio::sync::mpsc;

    fn two_workers() -> (Router, [mpsc::UnboundedReceiver<Event>; 2]) {
        let (first, first_inbox) = mpsc::unbounded_channel();
        let (second, second_inbox) = mpsc::unbounded_channel();
        (
            Router::new(vec![first, second], example_catalog()),
            [first_inbox, second_inbox],
        )
    }

    fn message(id: &str, n: i64) -> Message {
        Message {
            target: Address::parse(&format!("com.example/f/{id}")).expect("address"),
            caller: None,
            argument: BuiltIn::Long(n).into(),
        }
    }

    /// (worker, messages) of every `DeliverAll` waiting in the inboxes; releases their acks.
    fn drain(inboxes: &mut [mpsc::UnboundedReceiver<Event>; 2]) -> Vec<(usize, Vec<Message>)> {
        let mut events = Vec::new();
        for (worker, inbox) in inboxes.iter_mut().enumerate() {
            while let Ok(event) = inbox.try_recv() {
                match event {
                    Event::DeliverAll { messages, ack } => {
                        ack.expect("an ack").release();
                        events.push((worker, messages));
                    }
                    other => panic!("expected DeliverAll, got {other:?}"),
                }
            }
        }
        events
    }

    #[test]
    fn a_batch_reaches_each_owner_once_in_order() {
        let (router, mut inboxes) = two_workers();
        // Ids until both workers own some.
        let ids: Vec<String> = (0..64).map(|i| format!("k{i}")).collect();
        let owner = |id: &str| router.worker_of(&message(id, 0).target);
        assert!(ids.iter().any(|id| owner(id) == 0) && ids.iter().any(|id| owner(id) == 1));
        let batch: Vec<Message> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| message(id, n as i64))
            .collect();
        let mut admission = router.submit_all(batch.clone()).expect("delivered");
        let events = drain(&mut inboxes);
        assert_eq!(events.len(), 2, "one event per worker");
        for (worker, messages) in events {
            let expected: Vec<Message> = batch
                .iter()
                .filter(|m| router.worker_of(&m.target) == worker)
                .cloned()
                .collect();
            assert_eq!(messages, expected);
        }
        assert!(
            admission.0.try_recv().is_ok(),
            "admitted once both released"
        );
    }

    #[test]
    fn a_batch_for_one_worker_goes_as_it_is() {
        let (router, mut inboxes) = two_workers();
        let batch: Vec<Message> = (0..5).map(|n| message("alice", n)).collect();
        router.submit_all(batch.clone()).expect("delivered");
        let owner = router.worker_of(&batch[0].target);
        assert_eq!(drain(&mut inboxes), vec![(owner, batch)]);
    }
}
