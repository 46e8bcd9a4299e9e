//! The event loop of one partition worker.
//!
//! It owns a [`Machine`] and feeds it: inbox events (messages), finished invocations, the
//! clock (delayed messages) and, at shutdown, a drain request. It carries out the machine's
//! actions: invocations on the [`Invoker`] are futures this worker's own task polls (a set of
//! at most the endpoints' slots, no task and no inbox round trip per call; an embedded one is
//! polled once in place and, when it finishes without waiting — the usual case — is applied
//! in the same turn; a slow embedded handler therefore holds up its partition, as linked-in
//! code does); messages for addresses this worker owns go straight back into the machine,
//! others through the [`Router`]; egress records and dead letters go to their writers. Each
//! turn takes in everything ready — finished invocations first (they free slots), then inbox
//! events — up to a turn's worth of each, then carries out the resulting actions.

use super::machine::{Action, Machine};
use super::{Completion, Envelope, Event};
use crate::deadletter::DeadLetters;
use crate::egress::Egresses;
use crate::invoker::Invoker;
use crate::metrics::Metrics;
use crate::router::Router;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use futures_util::FutureExt as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;

/// Most finished invocations taken in per turn.
const EVENTS_PER_TURN: usize = 512;

/// Messages from the inbox taken in per turn (at least one event): bounds a turn, so that a
/// burst from the ingress delays finished invocations and the clock by little.
const MESSAGES_PER_TURN: usize = 4096;

/// Everything a worker needs besides its machine.
pub struct WorkerContext {
    pub router: Router,
    pub invoker: Arc<Invoker>,
    pub egresses: Arc<Egresses>,
    pub dead_letters: Arc<DeadLetters>,
    pub metrics: Arc<Metrics>,
}

/// A request to finish the work in hand and stop.
pub struct Drain {
    /// Stop even with work pending at this point.
    pub deadline: tokio::time::Instant,
    /// Receives the number of messages that were still pending at the stop.
    pub done: oneshot::Sender<usize>,
}

/// One partition worker.
pub struct Worker {
    index: usize,
    machine: Machine,
    inbox: UnboundedReceiver<Event>,
    drain: oneshot::Receiver<Drain>,
    context: WorkerContext,
    /// Invocations in flight, polled by this worker's own task (no task or inbox round trip
    /// per call).
    invocations: FuturesUnordered<Invocation>,
}

/// One invocation in flight, ending in its completion.
type Invocation = Pin<Box<dyn Future<Output = Completion> + Send>>;

impl Worker {
    /// A worker with `machine`, reading `inbox`.
    pub fn new(
        index: usize,
        machine: Machine,
        inbox: UnboundedReceiver<Event>,
        drain: oneshot::Receiver<Drain>,
        context: WorkerContext,
    ) -> Worker {
        Worker {
            index,
            machine,
            inbox,
            drain,
            context,
            invocations: FuturesUnordered::new(),
        }
    }

    /// Runs until drained (or until every inbox sender is gone).
    pub async fn run(mut self) {
        let mut actions = Vec::new();
        let mut draining: Option<Drain> = None;
        loop {
            let next_timer = self.machine.next_timer().map(instant_of);
            let drain_deadline = draining.as_ref().map(|drain| drain.deadline);
            tokio::select! {
                // Shutdown first: a busy inbox (say, a cycle of functions that never ends)
                // must not hide the drain request or its deadline.
                biased;
                request = &mut self.drain, if draining.is_none() => {
                    match request {
                        Ok(request) => draining = Some(request),
                        Err(_) => break,
                    }
                }
                _ = sleep_until_opt(drain_deadline), if drain_deadline.is_some() => {
                    break;
                }
                event = self.inbox.recv() => {
                    let Some(event) = event else { break };
                    let _ = self.handle(now_ms(), event, &mut actions);
                }
                Some(completion) = self.invocations.next(), if !self.invocations.is_empty() => {
                    self.machine.complete(now_ms(), completion, &mut actions);
                }
                _ = sleep_until_opt(next_timer), if next_timer.is_some() => {}
            }
            // Whatever woke the worker, take in what else is ready: finished invocations
            // first (they free slots), then inbox events, each up to a turn's worth.
            let now = now_ms();
            for _ in 1..EVENTS_PER_TURN {
                match self.invocations.next().now_or_never() {
                    Some(Some(completion)) => self.machine.complete(now, completion, &mut actions),
                    _ => break,
                }
            }
            let mut messages = 0;
            while messages < MESSAGES_PER_TURN {
                match self.inbox.try_recv() {
                    Ok(event) => messages += self.handle(now, event, &mut actions),
                    Err(_) => break,
                }
            }
            self.machine.fire_timers(now, &mut actions);
            self.execute(now, &mut actions);
            if let Some(slot) = self.context.metrics.worker(self.index) {
                slot.publish(self.machine.stats(), self.machine.address_count());
            }
            if draining.is_some() && self.machine.is_quiescent() {
                break;
            }
        }
        let pending = self.machine.pending_messages();
        let stats = self.machine.stats();
        tracing::info!(
            worker = self.index,
            pending,
            messages = stats.messages,
            invocations = stats.invocations,
            failed_batches = stats.failed_batches,
            "partition worker stopped"
        );
        if let Some(drain) = draining {
            let _ = drain.done.send(pending);
        }
    }

    /// Hands an inbox event to the machine; returns how many messages it carried.
    fn handle(&mut self, now: u64, event: Event, actions: &mut Vec<Action>) -> usize {
        match event {
            Event::Deliver(envelope) => {
                self.machine.deliver(now, envelope, actions);
                1
            }
            Event::DeliverAll { messages, ack } => {
                let count = messages.len();
                self.machine.deliver_all(now, messages, ack, actions);
                count
            }
        }
    }

    /// Carries out actions until none are left (local routing can produce more).
    fn execute(&mut self, now: u64, actions: &mut Vec<Action>) {
        while !actions.is_empty() {
            let batch: Vec<Action> = std::mem::take(actions);
            for action in batch {
                match action {
                    Action::Invoke {
                        endpoint,
                        address,
                        batch_id,
                        request,
                    } => {
                        let invoker = Arc::clone(&self.context.invoker);
                        let in_process = invoker.is_in_process(endpoint);
                        let mut invocation: Invocation = Box::pin(async move {
                            let result = invoker.invoke(endpoint, &address, request).await;
                            Completion {
                                address,
                                batch_id,
                                result,
                            }
                        });
                        if in_process {
                            // An embedded function usually finishes without waiting: poll it
                            // once here and apply its reply in this turn. One that waits joins
                            // the others.
                            let mut context = std::task::Context::from_waker(Waker::noop());
                            if let Poll::Ready(completion) = invocation.as_mut().poll(&mut context)
                            {
                                self.machine.complete(now, completion, actions);
                                continue;
                            }
                        }
                        self.invocations.push(invocation);
                    }
                    Action::Route(message) => {
                        if self.context.router.worker_of(&message.target) == self.index {
                            self.machine
                                .deliver(now, Envelope { message, ack: None }, actions);
                        } else if let Err(error) = self.context.router.forward(message) {
                            tracing::warn!(%error, "message not routed");
                        }
                    }
                    Action::Egress(record) => {
                        if let Err(error) = self.context.egresses.send(record) {
                            tracing::error!(%error, "egress record not written");
                        }
                    }
                    Action::DeadLetter(letter) => self.context.dead_letters.write(letter),
                }
            }
        }
    }
}

/// Milliseconds since the UNIX epoch (the machine's clock; wall time so that delayed messages
/// keep their due time across restarts).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

fn instant_of(due_ms: u64) -> tokio::time::Instant {
    let now = now_ms();
    tokio::time::Instant::now() + Duration::from_millis(due_ms.saturating_sub(now))
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
