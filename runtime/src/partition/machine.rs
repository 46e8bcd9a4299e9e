//! The partition state machine: state, mailboxes, timers and in-flight batches of the
//! addresses one worker owns — with no I/O.
//!
//! It takes events ([`Machine::deliver`], [`Machine::complete`], [`Machine::fire_timers`]) with
//! the current time in milliseconds since the UNIX epoch, and pushes [`Action`]s for the event
//! loop to carry out. Tests drive it directly with virtual time.
//!
//! The rules it keeps (StateFun's, plus Eddy's failure policy):
//! - Per address at most one invocation in flight; messages that arrive meanwhile queue in the
//!   mailbox and go out together as the next batch, at most `maxNumBatchRequests` of them.
//!   Senders waiting for admission ([`Ack`]) are released once their message sits
//!   within that bound, so only a full address's senders are slowed.
//! - Every request carries every registered state value of the function type (absent values
//!   without a value). `IncompleteInvocationContext` registers the listed specs and re-sends the
//!   same messages.
//! - A reply is validated as a whole before any effect applies; then effects apply in order:
//!   outgoing messages, delayed messages and cancellations, egress records, state mutations.
//! - A failed invocation (transport error after retries, or an invalid reply) sends its batch to
//!   the dead letters and the address continues with its next batch.
//! - State values expire after write or after invoke: checked when a batch is built, and by an
//!   expiry queue that frees the state (and the address) of idle addresses when it is due.
//! - Delayed messages are owned by the sender's worker; cancellation tokens are scoped to the
//!   sending address. An unknown token is a no-op; reusing a pending one fails that invocation.
//!
//! Everything is enumerable and restorable ([`Machine::snapshot`], [`Machine::restore`]), ready
//! for checkpoints.

use super::{wire, Ack, Completion, Envelope};
use crate::address::{Address, FunctionType};
use crate::catalog::Catalog;
use crate::deadletter::DeadLetter;
use crate::invoker::Request;
use crate::message::{Argument, EgressRecord, Invocation, Message, Payload};
use crate::spec::EndpointTarget;
use bytes::Bytes;
use eddy_protocol::reqreply::from_function::{
    expiration_spec::ExpireMode, persisted_value_mutation::MutationType, InvocationResponse,
    PersistedValueSpec,
};
use eddy_protocol::reqreply::{from_function, to_function};
use eddy_protocol::{ToFunction, TypedValue};
use smallvec::SmallVec;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// A hash map with foldhash's per-process random seed.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Most rounds of missing-state negotiation for one batch before it counts as failed.
const MAX_NEGOTIATION_ROUNDS: u32 = 8;

/// What the event loop must do.
#[derive(Debug)]
pub enum Action {
    /// Invoke `address` through endpoint `endpoint`; report back with `batch_id`.
    Invoke {
        endpoint: usize,
        address: Address,
        batch_id: u64,
        request: Request,
    },
    /// Deliver a message (to this worker or another).
    Route(Message),
    /// Write a record to an egress.
    Egress(EgressRecord),
    /// Record a failed batch.
    DeadLetter(DeadLetter),
}

/// How a state value expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiration {
    Never,
    AfterWrite(u64),
    AfterInvoke(u64),
}

/// A registered state value of a function type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueSpec {
    pub name: String,
    pub typename: String,
    pub expiration: Expiration,
}

/// Counters of what the machine has done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages delivered to addresses.
    pub messages: u64,
    /// Messages of batches whose reply was applied (the function has handled them).
    pub processed: u64,
    /// Requests sent to functions (negotiation re-sends included).
    pub invocations: u64,
    pub negotiations: u64,
    pub failed_batches: u64,
}

/// Per function type: where it is served and what state it declared.
#[derive(Debug, Clone)]
struct FunctionInfo {
    endpoint: usize,
    /// The endpoint's transport sends bytes: requests are encoded here (`wire.rs`).
    encoded: bool,
    max_batch: usize,
    specs: Vec<ValueSpec>,
    /// Bumped whenever `specs` changes, so a reply to an older request is told apart.
    specs_generation: u64,
}

/// A state value as held in memory: names and typenames are interned (shared by every
/// address), the bytes are a compact copy (never a slice of a larger reply buffer), inline
/// when small.
#[derive(Debug, Clone, PartialEq)]
struct StoredValue {
    typename: Arc<str>,
    bytes: Payload,
    written_ms: u64,
}

impl StoredValue {
    fn new(value: &TypedValue, written_ms: u64, names: &mut Interner) -> StoredValue {
        StoredValue {
            typename: names.intern(&value.typename),
            bytes: Payload::copy_from_slice(&value.value),
            written_ms,
        }
    }

    fn to_typed_value(&self) -> TypedValue {
        TypedValue {
            typename: self.typename.to_string(),
            has_value: true,
            value: self.bytes.to_bytes(),
        }
    }
}

/// Shares the few distinct state names and typenames among millions of addresses.
#[derive(Debug, Default)]
struct Interner(HashSet<Arc<str>>);

impl Interner {
    /// A reply's typed value as a message argument, its typename interned.
    fn argument(&mut self, value: TypedValue) -> Argument {
        Argument {
            typename: self.intern(&value.typename),
            has_value: value.has_value,
            value: Payload::from(value.value),
        }
    }

    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(existing) = self.0.get(text) {
            return Arc::clone(existing);
        }
        let interned: Arc<str> = Arc::from(text);
        self.0.insert(Arc::clone(&interned));
        interned
    }
}

#[derive(Debug)]
struct InFlight {
    batch_id: u64,
    /// The endpoint whose invocation slot the batch holds.
    endpoint: usize,
    invocations: Vec<Invocation>,
    negotiation_rounds: u32,
    /// The `specs_generation` the request was built with.
    specs_generation: u64,
}

/// One address: its state, and its mailbox and in-flight batch while it is busy.
///
/// Two pointers: most addresses are idle and hold only state, and a table entry (address
/// and instance) of 48 bytes keeps millions of them cheap and the lookup of a busy one within
/// a cache line.
#[derive(Debug, Default)]
struct Instance {
    /// `None` while the address holds no state value.
    state: Option<Box<State>>,
    /// `None` while nothing is queued, in flight or waiting for a slot.
    busy: Option<Box<Busy>>,
}

/// The state values of an address, and the clocks their expiration runs on. The first value
/// lives inside (most functions keep one), so reading an address's state is one allocation
/// away from its table entry.
#[derive(Debug, Default)]
struct State {
    values: SmallVec<[(Arc<str>, StoredValue); 1]>,
    /// When the last request was built (expire-after-invoke counts from it).
    last_invoke_ms: u64,
    /// The due time of this address's entry in `Machine::expiries` (0: none).
    expiry_check_ms: u64,
}

/// What an address holds while it has work: its mailbox, its batch in flight, the senders
/// of messages beyond the batch bound, and whether it waits for an invocation slot.
#[derive(Debug, Default)]
struct Busy {
    mailbox: VecDeque<Invocation>,
    in_flight: Option<InFlight>,
    /// The senders of mailbox messages beyond the batch bound; boxed, as they are rare.
    parked: Option<Box<Parked>>,
    /// Queued for a free invocation slot of its endpoint (see [`Slots`]).
    waiting: bool,
}

impl Busy {
    fn is_empty(&self) -> bool {
        self.mailbox.is_empty()
            && self.in_flight.is_none()
            && !self.waiting
            && self.parked.is_none()
    }
}

/// The admission signals of mailbox messages beyond the batch bound, by message sequence
/// number (counted from the mailbox's front when the first one parked).
#[derive(Debug, Default)]
struct Parked {
    /// The sequence number of the mailbox's first message.
    front: u64,
    acks: VecDeque<(u64, Ack)>,
}

impl Instance {
    /// Queues `message`; one beyond the batch bound keeps a clone of `ack` (if any) until it
    /// moves within the bound.
    fn enqueue(&mut self, message: Message, ack: Option<&Ack>, max_batch: usize) {
        let busy = self.busy.get_or_insert_with(Box::default);
        if let Some(ack) = ack.filter(|_| busy.mailbox.len() >= max_batch) {
            let parked = busy.parked.get_or_insert_with(Box::default);
            let sequence = parked.front + busy.mailbox.len() as u64;
            parked.acks.push_back((sequence, ack.clone()));
        }
        busy.mailbox.push_back(Invocation::of(message));
    }

    /// Takes the next batch (at most `max_batch` messages) out of the mailbox, releasing the
    /// senders of every message now within the bound.
    fn take_batch(&mut self, max_batch: usize) -> Vec<Invocation> {
        let Some(busy) = self.busy.as_deref_mut() else {
            return Vec::new();
        };
        let take = busy.mailbox.len().min(max_batch);
        let invocations: Vec<Invocation> = if take == busy.mailbox.len() {
            // The usual case: the whole mailbox, without copying it.
            Vec::from(std::mem::take(&mut busy.mailbox))
        } else {
            busy.mailbox.drain(..take).collect()
        };
        if let Some(parked) = busy.parked.as_mut() {
            parked.front += take as u64;
            let bound = parked.front + max_batch as u64;
            while parked
                .acks
                .front()
                .is_some_and(|(sequence, _)| *sequence < bound)
            {
                if let Some((_, ack)) = parked.acks.pop_front() {
                    ack.release();
                }
            }
            if parked.acks.is_empty() {
                busy.parked = None;
            }
        }
        invocations
    }

    /// True if the address holds nothing at all (and can be forgotten).
    fn is_idle_and_empty(&self) -> bool {
        self.state.is_none() && self.busy.is_none()
    }

    /// Gives back the busy part once nothing is queued, in flight or waiting.
    fn settle(&mut self) {
        if self.busy.as_ref().is_some_and(|busy| busy.is_empty()) {
            self.busy = None;
        }
    }

    fn mailbox_len(&self) -> usize {
        self.busy.as_ref().map_or(0, |busy| busy.mailbox.len())
    }

    fn in_flight(&self) -> Option<&InFlight> {
        self.busy.as_ref()?.in_flight.as_ref()
    }

    /// Nothing in flight and not waiting for a slot: a new message can be sent at once.
    fn is_ready(&self) -> bool {
        self.busy
            .as_ref()
            .is_none_or(|busy| busy.in_flight.is_none() && !busy.waiting)
    }

    fn values(&self) -> &[(Arc<str>, StoredValue)] {
        self.state.as_ref().map_or(&[], |state| &state.values)
    }

    fn last_invoke_ms(&self) -> u64 {
        self.state.as_ref().map_or(0, |state| state.last_invoke_ms)
    }

    fn expiry_check_ms(&self) -> u64 {
        self.state.as_ref().map_or(0, |state| state.expiry_check_ms)
    }

    fn value(&self, name: &str) -> Option<&StoredValue> {
        self.values()
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Timer {
    message: Message,
    token: Option<String>,
}

/// Delayed messages by due time, with an index of cancellation tokens per sender.
#[derive(Debug, Default)]
struct Timers {
    by_due: BTreeMap<(u64, u64), Timer>,
    by_token: HashMap<(Address, String), (u64, u64)>,
    next_seq: u64,
}

impl Timers {
    fn schedule(&mut self, due_ms: u64, timer: Timer) {
        let key = (due_ms, self.next_seq);
        self.next_seq += 1;
        if let (Some(token), Some(sender)) = (&timer.token, &timer.message.caller) {
            self.by_token.insert((sender.clone(), token.clone()), key);
        }
        self.by_due.insert(key, timer);
    }

    fn is_pending(&self, sender: &Address, token: &str) -> bool {
        self.by_token
            .contains_key(&(sender.clone(), token.to_string()))
    }

    fn cancel(&mut self, sender: &Address, token: &str) -> bool {
        match self.by_token.remove(&(sender.clone(), token.to_string())) {
            Some(key) => self.by_due.remove(&key).is_some(),
            None => false,
        }
    }

    fn pop_due(&mut self, now_ms: u64) -> Option<Timer> {
        let (&key, _) = self.by_due.first_key_value()?;
        if key.0 > now_ms {
            return None;
        }
        let timer = self.by_due.remove(&key)?;
        if let (Some(token), Some(sender)) = (&timer.token, &timer.message.caller) {
            self.by_token.remove(&(sender.clone(), token.clone()));
        }
        Some(timer)
    }
}

/// Settings of a machine.
#[derive(Clone)]
pub struct MachineConfig {
    pub catalog: Arc<Catalog>,
    /// The egress ids replies may write to.
    pub egress_ids: Arc<HashSet<String>>,
    /// How many partition workers share each endpoint's concurrency (`pool_size`,
    /// `maxConcurrency`): each machine keeps at most its share of invocations in flight.
    pub workers: usize,
}

/// The invocation slots of one endpoint in one machine: its share of the endpoint's
/// concurrency, and the addresses waiting for a slot, first come first served.
///
/// An address waits with its messages still in its mailbox, where later messages join them,
/// so the batch it sends once a slot frees up holds everything that arrived meanwhile (late
/// batching): under load batches grow instead of requests queueing up, and no more than
/// `limit` requests exist at any time.
#[derive(Debug)]
struct Slots {
    limit: usize,
    in_flight: usize,
    waiting: VecDeque<Address>,
}

/// The state machine of one partition worker.
pub struct Machine {
    config: MachineConfig,
    /// Keyed with foldhash (randomly seeded): much cheaper than SipHash per message, and
    /// still seeded per process, so addresses chosen from outside cannot be aimed at one bucket.
    functions: FastMap<FunctionType, FunctionInfo>,
    instances: FastMap<Address, Instance>,
    timers: Timers,
    /// (when, address): addresses to look at for expired state, so that idle addresses give
    /// their memory back. Entries may be stale; they are re-checked when due.
    expiries: BTreeSet<(u64, Address)>,
    names: Interner,
    /// By endpoint index.
    slots: Vec<Slots>,
    next_batch_id: u64,
    stats: Stats,
}

impl Machine {
    /// An empty machine.
    pub fn new(config: MachineConfig) -> Machine {
        Machine {
            config,
            functions: FastMap::default(),
            instances: FastMap::default(),
            timers: Timers::default(),
            expiries: BTreeSet::new(),
            names: Interner::default(),
            slots: Vec::new(),
            next_batch_id: 1,
            stats: Stats::default(),
        }
    }

    /// What the machine has done so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of addresses with state, queued messages or an invocation in flight.
    pub fn address_count(&self) -> usize {
        self.instances.len()
    }

    /// True if nothing is queued or in flight (pending timers do not count).
    pub fn is_quiescent(&self) -> bool {
        self.instances
            .values()
            .all(|instance| instance.mailbox_len() == 0 && instance.in_flight().is_none())
    }

    /// Messages queued or in flight (for shutdown reports).
    pub fn pending_messages(&self) -> usize {
        self.instances
            .values()
            .map(|instance| {
                instance.mailbox_len()
                    + instance
                        .in_flight()
                        .map_or(0, |in_flight| in_flight.invocations.len())
            })
            .sum()
    }

    /// When the earliest delayed message is due, in ms since the epoch.
    pub fn next_timer(&self) -> Option<u64> {
        let timer = self.timers.by_due.keys().next().map(|(due, _)| *due);
        let expiry = self.expiries.first().map(|(due, _)| *due);
        match (timer, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The current state of `address` (name → value), expired values included until the next
    /// batch purges them.
    pub fn state_of(&self, address: &Address) -> Vec<(String, TypedValue)> {
        self.instances
            .get(address)
            .map(|instance| {
                instance
                    .values()
                    .iter()
                    .map(|(name, stored)| (name.to_string(), stored.to_typed_value()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A message arrived for an address this machine owns.
    pub fn deliver(&mut self, now_ms: u64, envelope: Envelope, out: &mut Vec<Action>) {
        let Envelope { message, ack } = envelope;
        self.admit_run(now_ms, message, std::iter::empty(), ack.as_ref(), out);
        if let Some(ack) = ack {
            ack.release();
        }
    }

    /// Messages arrived for addresses this machine owns, in order, under one admission
    /// signal: it is released once every one of them sits within its address's batch bound.
    pub fn deliver_all(
        &mut self,
        now_ms: u64,
        messages: Vec<Message>,
        ack: Option<Ack>,
        out: &mut Vec<Action>,
    ) {
        // Consecutive messages for one address (all of them, when a producer writes to one
        // key) are admitted together: one lookup for the run, not one per message.
        let mut runs = Vec::new();
        let mut start = 0;
        for index in 1..=messages.len() {
            if index == messages.len() || messages[index].target != messages[start].target {
                runs.push(index - start);
                start = index;
            }
        }
        let mut messages = messages.into_iter();
        for length in runs {
            if let Some(first) = messages.next() {
                let rest = messages.by_ref().take(length - 1);
                self.admit_run(now_ms, first, rest, ack.as_ref(), out);
            }
        }
        if let Some(ack) = ack {
            ack.release();
        }
    }

    /// Queues `first` and `rest` (messages for the same address, in order) in the address's
    /// mailbox, dispatching if the address is idle. A message beyond the batch bound keeps a
    /// clone of `ack`, so its sender waits for it.
    fn admit_run(
        &mut self,
        now_ms: u64,
        first: Message,
        rest: impl Iterator<Item = Message>,
        ack: Option<&Ack>,
        out: &mut Vec<Action>,
    ) {
        let target = &first.target;
        if !self.functions.contains_key(&target.function_type)
            && self.function_info(&target.function_type).is_none()
        {
            // The router rejects these at the door and replies are validated, so this only
            // happens if the module changed underneath a message. Nothing is silently lost.
            for message in std::iter::once(first).chain(rest) {
                self.stats.messages += 1;
                self.stats.failed_batches += 1;
                let address = message.target.clone();
                out.push(Action::DeadLetter(DeadLetter {
                    error: format!("no endpoint serves function type {}", address.function_type),
                    address,
                    messages: vec![message],
                    time: UNIX_EPOCH + Duration::from_millis(now_ms),
                }));
            }
            return;
        }
        let instance = match self.instances.get_mut(target) {
            Some(instance) => instance,
            None => {
                // Keys share one `Arc` per function type (the machine's), not the message's.
                let function_type = self
                    .functions
                    .get_key_value(&target.function_type)
                    .map_or_else(|| target.function_type.clone(), |(key, _)| key.clone());
                self.instances
                    .entry(Address::new(function_type, target.id.clone()))
                    .or_default()
            }
        };
        let Some(info) = self.functions.get(&target.function_type) else {
            return;
        };
        let idle = instance.is_ready();
        let address = idle.then(|| first.target.clone());
        for message in std::iter::once(first).chain(rest) {
            self.stats.messages += 1;
            instance.enqueue(message, ack, info.max_batch);
        }
        if let Some(address) = address {
            let slots = slots_of(&mut self.slots, &self.config, info.endpoint);
            let counters = (&mut self.next_batch_id, &mut self.stats);
            send_or_queue(now_ms, address, instance, info, slots, counters, out);
        }
    }

    /// An invocation finished.
    pub fn complete(&mut self, now_ms: u64, completion: Completion, out: &mut Vec<Action>) {
        let Completion {
            address,
            batch_id,
            result,
        } = completion;
        let Some(instance) = self.instances.get_mut(&address) else {
            tracing::warn!(%address, batch_id, "completion for an unknown address ignored");
            return;
        };
        let Some(in_flight) = instance.busy.as_mut().and_then(|busy| {
            busy.in_flight
                .take_if(|in_flight| in_flight.batch_id == batch_id)
        }) else {
            tracing::warn!(%address, batch_id, "stale completion ignored");
            return;
        };
        // The slot is free again (a negotiation re-send takes it back at once).
        let endpoint = in_flight.endpoint;
        if let Some(slots) = self.slots.get_mut(endpoint) {
            slots.in_flight = slots.in_flight.saturating_sub(1);
        }
        match result {
            Err(error) => self.fail(
                now_ms,
                &address,
                &in_flight.invocations,
                error.to_string(),
                out,
            ),
            Ok(reply) => match reply.response {
                None => {
                    self.stats.processed += in_flight.invocations.len() as u64;
                    self.succeed(now_ms, &address, InvocationResponse::default(), out)
                }
                Some(from_function::Response::InvocationResult(response)) => {
                    match self.validate(&address, &response) {
                        Ok(()) => {
                            self.stats.processed += in_flight.invocations.len() as u64;
                            self.succeed(now_ms, &address, response, out)
                        }
                        Err(reason) => self.fail(
                            now_ms,
                            &address,
                            &in_flight.invocations,
                            format!("invalid reply: {reason}"),
                            out,
                        ),
                    }
                }
                Some(from_function::Response::IncompleteInvocationContext(context)) => {
                    self.negotiate(now_ms, &address, in_flight, context.missing_values, out)
                }
            },
        }
        self.schedule_expiry(&address);
        self.dispatch(now_ms, &address, out);
        self.fill_slots(now_ms, endpoint, out);
    }

    /// Fires every delayed message due at `now_ms`.
    pub fn fire_timers(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        while let Some(timer) = self.timers.pop_due(now_ms) {
            out.push(Action::Route(timer.message));
        }
        while self.expiries.first().is_some_and(|(due, _)| *due <= now_ms) {
            let Some((due, address)) = self.expiries.pop_first() else {
                break;
            };
            // An entry superseded by an earlier one is stale.
            if self
                .instances
                .get(&address)
                .is_some_and(|instance| instance.expiry_check_ms() == due)
            {
                self.expire(now_ms, &address);
            }
        }
    }

    /// Drops the expired values of `address`, and the address itself once it holds nothing.
    fn expire(&mut self, now_ms: u64, address: &Address) {
        let (Some(instance), Some(info)) = (
            self.instances.get_mut(address),
            self.functions.get(&address.function_type),
        ) else {
            return;
        };
        // Values of an address with a batch in flight are looked at when its reply applies.
        let Some(state) = instance.state.as_deref_mut() else {
            return;
        };
        state.expiry_check_ms = 0;
        if instance.in_flight().is_some() {
            return;
        }
        if let Some(next) = purge_expired(now_ms, instance, &info.specs) {
            if let Some(state) = instance.state.as_deref_mut() {
                state.expiry_check_ms = next;
                self.expiries.insert((next, address.clone()));
            }
        } else if instance.is_idle_and_empty() {
            self.instances.remove(address);
        }
    }

    /// Notes when `address`'s earliest expiring value is due, if it has one.
    fn schedule_expiry(&mut self, address: &Address) {
        let Some(info) = self.functions.get(&address.function_type) else {
            return;
        };
        if info
            .specs
            .iter()
            .all(|spec| spec.expiration == Expiration::Never)
        {
            return;
        }
        let Some(state) = self
            .instances
            .get_mut(address)
            .and_then(|instance| instance.state.as_deref_mut())
        else {
            return;
        };
        let next = state
            .values
            .iter()
            .filter_map(|(name, stored)| {
                expires_at(&info.specs, name, stored, state.last_invoke_ms)
            })
            .min();
        // An earlier check is enough: it reschedules when it finds the values still alive.
        if let Some(next) =
            next.filter(|next| state.expiry_check_ms == 0 || *next < state.expiry_check_ms)
        {
            state.expiry_check_ms = next;
            self.expiries.insert((next, address.clone()));
        }
    }

    fn function_info(&mut self, function_type: &FunctionType) -> Option<&mut FunctionInfo> {
        if !self.functions.contains_key(function_type) {
            let endpoint = self.config.catalog.resolve(function_type)?;
            let spec = self.config.catalog.endpoint(endpoint);
            let max_batch = spec.map_or(1000, |spec| spec.max_num_batch_requests.max(1));
            let encoded = spec.is_some_and(|spec| matches!(spec.target, EndpointTarget::Http(_)));
            self.functions.insert(
                function_type.clone(),
                FunctionInfo {
                    endpoint,
                    encoded,
                    max_batch,
                    specs: Vec::new(),
                    specs_generation: 0,
                },
            );
        }
        self.functions.get_mut(function_type)
    }

    /// Sends the next batch of `address` if it has queued messages and nothing in flight — or,
    /// when its endpoint has no free slot (or others are already waiting for one), queues the
    /// address for the next free slot.
    fn dispatch(&mut self, now_ms: u64, address: &Address, out: &mut Vec<Action>) {
        let Some(instance) = self.instances.get_mut(address) else {
            return;
        };
        if !instance.is_ready() {
            return;
        }
        if instance.mailbox_len() == 0 {
            // Idle addresses far outnumber busy ones: give the busy part back.
            instance.settle();
            if instance.is_idle_and_empty() {
                self.instances.remove(address);
            }
            return;
        }
        let Some(info) = self.functions.get(&address.function_type) else {
            return;
        };
        let slots = slots_of(&mut self.slots, &self.config, info.endpoint);
        let counters = (&mut self.next_batch_id, &mut self.stats);
        send_or_queue(
            now_ms,
            address.clone(),
            instance,
            info,
            slots,
            counters,
            out,
        );
    }

    /// Gives free slots of `endpoint` to waiting addresses, longest waiting first.
    fn fill_slots(&mut self, now_ms: u64, endpoint: usize, out: &mut Vec<Action>) {
        loop {
            let Some(slots) = self.slots.get_mut(endpoint) else {
                return;
            };
            if slots.in_flight >= slots.limit {
                return;
            }
            let Some(address) = slots.waiting.pop_front() else {
                return;
            };
            let (Some(instance), Some(info)) = (
                self.instances.get_mut(&address),
                self.functions.get(&address.function_type),
            ) else {
                continue;
            };
            if let Some(busy) = instance.busy.as_deref_mut() {
                busy.waiting = false;
            }
            if instance.in_flight().is_some() || instance.mailbox_len() == 0 {
                instance.settle();
                if instance.is_idle_and_empty() {
                    self.instances.remove(&address);
                }
                continue;
            }
            let counters = (&mut self.next_batch_id, &mut self.stats);
            send_batch(now_ms, address, instance, info, slots, counters, out);
        }
    }

    fn fail(
        &mut self,
        now_ms: u64,
        address: &Address,
        invocations: &[Invocation],
        error: String,
        out: &mut Vec<Action>,
    ) {
        self.stats.failed_batches += 1;
        tracing::warn!(%address, messages = invocations.len(), %error, "batch failed, sent to dead letters");
        out.push(Action::DeadLetter(DeadLetter {
            address: address.clone(),
            messages: invocations
                .iter()
                .map(|invocation| invocation.to_message(address))
                .collect(),
            error,
            time: UNIX_EPOCH + Duration::from_millis(now_ms),
        }));
    }

    /// Checks a reply as a whole, so that either every effect applies or none.
    fn validate(&self, address: &Address, response: &InvocationResponse) -> Result<(), String> {
        for (index, message) in response.outgoing_messages.iter().enumerate() {
            self.check_target(message.target.as_ref())
                .map_err(|e| format!("outgoing_messages[{index}]: {e}"))?;
        }
        let mut tokens: HashSet<&str> = HashSet::new();
        let mut cancelled: HashSet<&str> = HashSet::new();
        for (index, delayed) in response.delayed_invocations.iter().enumerate() {
            let token = delayed.cancellation_token.as_str();
            if delayed.is_cancellation_request {
                if token.is_empty() {
                    return Err(format!(
                        "delayed_invocations[{index}] is a cancellation without a cancellation_token"
                    ));
                }
                tokens.remove(token);
                cancelled.insert(token);
                continue;
            }
            if delayed.delay_in_ms < 0 {
                return Err(format!(
                    "delayed_invocations[{index}] has a negative delay ({} ms)",
                    delayed.delay_in_ms
                ));
            }
            self.check_target(delayed.target.as_ref())
                .map_err(|e| format!("delayed_invocations[{index}]: {e}"))?;
            if !token.is_empty() {
                let pending = self.timers.is_pending(address, token) && !cancelled.contains(token);
                if pending || !tokens.insert(token) {
                    return Err(format!(
                        "delayed_invocations[{index}] reuses cancellation token {token:?} of a delayed message that is still pending; tokens must be unique per sender until the message fires or is cancelled"
                    ));
                }
            }
        }
        for (index, egress) in response.outgoing_egresses.iter().enumerate() {
            let id = format!("{}/{}", egress.egress_namespace, egress.egress_type);
            if !self.config.egress_ids.contains(&id) {
                let mut known: Vec<&str> =
                    self.config.egress_ids.iter().map(String::as_str).collect();
                known.sort_unstable();
                return Err(format!(
                    "outgoing_egresses[{index}] targets unknown egress {id:?} (declared: {known:?})"
                ));
            }
            if egress.argument.is_none() {
                return Err(format!("outgoing_egresses[{index}] has no argument"));
            }
        }
        for (index, mutation) in response.state_mutations.iter().enumerate() {
            if mutation.state_name.is_empty() {
                return Err(format!("state_mutations[{index}] has an empty state_name"));
            }
            let is_modify = mutation.mutation_type == MutationType::Modify as i32;
            if !is_modify && mutation.mutation_type != MutationType::Delete as i32 {
                return Err(format!(
                    "state_mutations[{index}] has unknown mutation_type {}",
                    mutation.mutation_type
                ));
            }
            if is_modify && mutation.state_value.is_none() {
                return Err(format!(
                    "state_mutations[{index}] modifies {:?} without a state_value",
                    mutation.state_name
                ));
            }
        }
        Ok(())
    }

    /// Checks the target of an outgoing or delayed message: present, well formed, and served
    /// by some endpoint.
    fn check_target(&self, target: Option<&eddy_protocol::Address>) -> Result<(), String> {
        let target = Address::from_proto(target.ok_or("has no target")?)?;
        if self.functions.contains_key(&target.function_type)
            || self.config.catalog.resolve(&target.function_type).is_some()
        {
            Ok(())
        } else {
            Err(format!(
                "no endpoint serves function type {} (target {target})",
                target.function_type
            ))
        }
    }

    /// Applies a validated reply in StateFun's order.
    fn succeed(
        &mut self,
        now_ms: u64,
        address: &Address,
        response: InvocationResponse,
        out: &mut Vec<Action>,
    ) {
        let InvocationResponse {
            state_mutations,
            outgoing_messages,
            delayed_invocations,
            outgoing_egresses,
        } = response;
        for message in outgoing_messages {
            if let Some(target) = message
                .target
                .as_ref()
                .and_then(|t| Address::from_proto(t).ok())
            {
                out.push(Action::Route(Message {
                    target,
                    caller: Some(address.clone()),
                    argument: self.names.argument(message.argument.unwrap_or_default()),
                }));
            }
        }
        for delayed in delayed_invocations {
            if delayed.is_cancellation_request {
                let found = self.timers.cancel(address, &delayed.cancellation_token);
                tracing::debug!(%address, token = %delayed.cancellation_token, found, "delayed message cancelled");
                continue;
            }
            let Some(target) = delayed
                .target
                .as_ref()
                .and_then(|t| Address::from_proto(t).ok())
            else {
                continue;
            };
            let token = Some(delayed.cancellation_token).filter(|token: &String| !token.is_empty());
            let due = now_ms.saturating_add(delayed.delay_in_ms.max(0) as u64);
            self.timers.schedule(
                due,
                Timer {
                    message: Message {
                        target,
                        caller: Some(address.clone()),
                        argument: self.names.argument(delayed.argument.unwrap_or_default()),
                    },
                    token,
                },
            );
        }
        for egress in outgoing_egresses {
            out.push(Action::Egress(EgressRecord {
                egress: format!("{}/{}", egress.egress_namespace, egress.egress_type),
                value: egress.argument.unwrap_or_default(),
            }));
        }
        if let Some(instance) = self.instances.get_mut(address) {
            for mutation in state_mutations {
                let slot = instance
                    .values()
                    .iter()
                    .position(|(name, _)| **name == *mutation.state_name);
                match (mutation.mutation_type == MutationType::Modify as i32, slot) {
                    (true, slot) => {
                        let value = mutation.state_value.unwrap_or_default();
                        let stored = StoredValue::new(&value, now_ms, &mut self.names);
                        // A first value: its write time is after the request's, so expiring
                        // after invoke counts from the write until the next request.
                        let state = instance.state.get_or_insert_with(Box::default);
                        match slot {
                            Some(slot) => state.values[slot].1 = stored,
                            None => {
                                // Most functions hold one or two values: grow one at a time.
                                state.values.reserve_exact(1);
                                state
                                    .values
                                    .push((self.names.intern(&mutation.state_name), stored));
                            }
                        }
                    }
                    (false, Some(slot)) => {
                        if let Some(state) = instance.state.as_deref_mut() {
                            state.values.swap_remove(slot);
                        }
                    }
                    (false, None) => {}
                }
            }
            if instance.values().is_empty() {
                instance.state = None;
            }
        }
    }

    /// Registers the specs a function asked for and re-sends the same messages.
    fn negotiate(
        &mut self,
        now_ms: u64,
        address: &Address,
        in_flight: InFlight,
        missing: Vec<PersistedValueSpec>,
        out: &mut Vec<Action>,
    ) {
        self.stats.negotiations += 1;
        let mut changed = false;
        let mut problem = None;
        if let Some(info) = self.functions.get_mut(&address.function_type) {
            // Another address of the same type may have registered these specs since this
            // request was built: re-sending with them is progress too.
            let stale = info.specs_generation != in_flight.specs_generation;
            let mut registered = false;
            for spec in missing {
                match value_spec(&spec) {
                    Ok(spec) => match info.specs.iter_mut().find(|s| s.name == spec.name) {
                        Some(existing) if *existing == spec => {}
                        Some(existing) => {
                            *existing = spec;
                            registered = true;
                        }
                        None => {
                            info.specs.push(spec);
                            registered = true;
                        }
                    },
                    Err(reason) => problem = Some(reason),
                }
            }
            if registered {
                info.specs_generation += 1;
            }
            changed = stale || registered;
        }
        let rounds = in_flight.negotiation_rounds + 1;
        let failure = if let Some(reason) = problem {
            Some(format!("invalid missing-state spec: {reason}"))
        } else if !changed {
            Some("the function reported missing state that the request already carried (IncompleteInvocationContext without new specs)".to_string())
        } else if rounds > MAX_NEGOTIATION_ROUNDS {
            Some(format!(
                "missing-state negotiation did not settle after {MAX_NEGOTIATION_ROUNDS} rounds"
            ))
        } else {
            None
        };
        if let Some(error) = failure {
            self.fail(now_ms, address, &in_flight.invocations, error, out);
            return;
        }
        let (Some(info), Some(instance)) = (
            self.functions.get(&address.function_type),
            self.instances.get_mut(address),
        ) else {
            return;
        };
        slots_of(&mut self.slots, &self.config, info.endpoint).in_flight += 1;
        out.push(begin_invocation(
            now_ms,
            (&mut self.next_batch_id, &mut self.stats),
            address.clone(),
            instance,
            info,
            in_flight.invocations,
            rounds,
        ));
    }

    /// A plain-data copy of everything this machine holds. In-flight batches are recorded as
    /// pending messages at the head of their mailbox (they are re-invoked on restore).
    pub fn snapshot(&self) -> MachineSnapshot {
        let mut functions: Vec<(FunctionType, Vec<ValueSpec>)> = self
            .functions
            .iter()
            .filter(|(_, info)| !info.specs.is_empty())
            .map(|(function_type, info)| (function_type.clone(), info.specs.clone()))
            .collect();
        functions.sort_by(|a, b| a.0.cmp(&b.0));
        let mut addresses: Vec<AddressSnapshot> = self
            .instances
            .iter()
            .map(|(address, instance)| {
                let (in_flight, mailbox) =
                    instance.busy.as_deref().map_or((&[][..], None), |busy| {
                        let in_flight = busy
                            .in_flight
                            .as_ref()
                            .map_or(&[][..], |in_flight| &in_flight.invocations[..]);
                        (in_flight, Some(&busy.mailbox))
                    });
                let messages: Vec<Message> = in_flight
                    .iter()
                    .chain(mailbox.into_iter().flatten())
                    .map(|invocation| invocation.to_message(address))
                    .collect();
                let mut values: Vec<(String, TypedValue, u64)> = instance
                    .values()
                    .iter()
                    .map(|(name, stored)| {
                        (name.to_string(), stored.to_typed_value(), stored.written_ms)
                    })
                    .collect();
                values.sort_by(|a, b| a.0.cmp(&b.0));
                AddressSnapshot {
                    address: address.clone(),
                    values,
                    last_invoke_ms: instance.last_invoke_ms(),
                    messages,
                }
            })
            .collect();
        addresses.sort_by(|a, b| a.address.cmp(&b.address));
        let timers = self
            .timers
            .by_due
            .iter()
            .map(|((due, _), timer)| TimerSnapshot {
                due_ms: *due,
                message: timer.message.clone(),
                token: timer.token.clone(),
            })
            .collect();
        MachineSnapshot {
            functions,
            addresses,
            timers,
        }
    }

    /// A machine holding `snapshot`; pending messages are dispatched at once.
    pub fn restore(
        config: MachineConfig,
        snapshot: MachineSnapshot,
        now_ms: u64,
        out: &mut Vec<Action>,
    ) -> Machine {
        let mut machine = Machine::new(config);
        for (function_type, specs) in snapshot.functions {
            if let Some(info) = machine.function_info(&function_type) {
                info.specs = specs;
            }
        }
        let mut pending = Vec::new();
        for address in snapshot.addresses {
            let _ = machine.function_info(&address.address.function_type);
            let instance = machine
                .instances
                .entry(address.address.clone())
                .or_default();
            let values: SmallVec<_> = address
                .values
                .into_iter()
                .map(|(name, value, written_ms)| {
                    (
                        machine.names.intern(&name),
                        StoredValue::new(&value, written_ms, &mut machine.names),
                    )
                })
                .collect();
            instance.state = (!values.is_empty()).then(|| {
                Box::new(State {
                    values,
                    last_invoke_ms: address.last_invoke_ms,
                    expiry_check_ms: 0,
                })
            });
            instance.busy = (!address.messages.is_empty()).then(|| {
                Box::new(Busy {
                    mailbox: address.messages.into_iter().map(Invocation::of).collect(),
                    ..Busy::default()
                })
            });
            pending.push(address.address);
        }
        for timer in snapshot.timers {
            machine.timers.schedule(
                timer.due_ms,
                Timer {
                    message: timer.message,
                    token: timer.token,
                },
            );
        }
        for address in pending {
            machine.schedule_expiry(&address);
            machine.dispatch(now_ms, &address, out);
        }
        machine
    }
}

/// Everything a machine holds, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineSnapshot {
    pub functions: Vec<(FunctionType, Vec<ValueSpec>)>,
    pub addresses: Vec<AddressSnapshot>,
    pub timers: Vec<TimerSnapshot>,
}

/// One address in a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressSnapshot {
    pub address: Address,
    /// (name, value, written at ms)
    pub values: Vec<(String, TypedValue, u64)>,
    pub last_invoke_ms: u64,
    /// In-flight messages first, then the mailbox, in order.
    pub messages: Vec<Message>,
}

/// One delayed message in a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerSnapshot {
    pub due_ms: u64,
    pub message: Message,
    pub token: Option<String>,
}

fn value_spec(spec: &PersistedValueSpec) -> Result<ValueSpec, String> {
    if spec.state_name.is_empty() {
        return Err("a missing value has an empty state_name".into());
    }
    let expiration = match spec.expiration_spec.as_ref() {
        None => Expiration::Never,
        Some(expiration) => {
            let millis = u64::try_from(expiration.expire_after_millis).map_err(|_| {
                format!(
                    "state {:?} has a negative expire_after_millis",
                    spec.state_name
                )
            })?;
            match ExpireMode::try_from(expiration.mode) {
                Ok(ExpireMode::None) => Expiration::Never,
                Ok(_) if millis == 0 => Expiration::Never,
                Ok(ExpireMode::AfterWrite) => Expiration::AfterWrite(millis),
                Ok(ExpireMode::AfterInvoke) => Expiration::AfterInvoke(millis),
                Err(_) => {
                    return Err(format!(
                        "state {:?} has unknown expiration mode {}",
                        spec.state_name, expiration.mode
                    ))
                }
            }
        }
    };
    Ok(ValueSpec {
        name: spec.state_name.clone(),
        typename: spec.type_typename.clone(),
        expiration,
    })
}

/// When a stored value expires under `specs`, if ever.
fn expires_at(
    specs: &[ValueSpec],
    name: &str,
    stored: &StoredValue,
    last_invoke: u64,
) -> Option<u64> {
    match specs
        .iter()
        .find(|spec| *spec.name == *name)
        .map_or(Expiration::Never, |spec| spec.expiration)
    {
        Expiration::Never => None,
        Expiration::AfterWrite(ttl) => Some(stored.written_ms.saturating_add(ttl)),
        Expiration::AfterInvoke(ttl) => {
            Some(stored.written_ms.max(last_invoke).saturating_add(ttl))
        }
    }
}

/// Drops the values of `instance` that have expired at `now_ms` (and its state, when none is
/// left); returns when the earliest remaining one expires.
fn purge_expired(now_ms: u64, instance: &mut Instance, specs: &[ValueSpec]) -> Option<u64> {
    let state = instance.state.as_deref_mut()?;
    let last_invoke = state.last_invoke_ms;
    let mut next = None::<u64>;
    state.values.retain(
        |(name, stored)| match expires_at(specs, name, stored, last_invoke) {
            None => true,
            Some(at) if at <= now_ms => false,
            Some(at) => {
                next = Some(next.map_or(at, |next| next.min(at)));
                true
            }
        },
    );
    if state.values.is_empty() {
        instance.state = None;
    }
    next
}

/// The slots of `endpoint`, set up on first use: the endpoint's concurrency divided among the
/// workers (rounded up), or no bound.
fn slots_of<'s>(
    slots: &'s mut Vec<Slots>,
    config: &MachineConfig,
    endpoint: usize,
) -> &'s mut Slots {
    while slots.len() <= endpoint {
        let limit = config
            .catalog
            .endpoint(slots.len())
            .and_then(|spec| spec.max_in_flight())
            .map_or(usize::MAX, |limit| limit.div_ceil(config.workers.max(1)));
        slots.push(Slots {
            limit,
            in_flight: 0,
            waiting: VecDeque::new(),
        });
    }
    &mut slots[endpoint]
}

/// Sends the next batch of `address` (queued messages, nothing in flight) if its endpoint has
/// a free slot and nobody is waiting for one; otherwise queues the address for a slot.
fn send_or_queue(
    now_ms: u64,
    address: Address,
    instance: &mut Instance,
    info: &FunctionInfo,
    slots: &mut Slots,
    counters: (&mut u64, &mut Stats),
    out: &mut Vec<Action>,
) {
    if slots.in_flight >= slots.limit || !slots.waiting.is_empty() {
        instance.busy.get_or_insert_with(Box::default).waiting = true;
        slots.waiting.push_back(address);
    } else {
        send_batch(now_ms, address, instance, info, slots, counters, out);
    }
}

/// Takes a slot and sends the next batch of `address`.
fn send_batch(
    now_ms: u64,
    address: Address,
    instance: &mut Instance,
    info: &FunctionInfo,
    slots: &mut Slots,
    counters: (&mut u64, &mut Stats),
    out: &mut Vec<Action>,
) {
    slots.in_flight += 1;
    let invocations = instance.take_batch(info.max_batch);
    out.push(begin_invocation(
        now_ms,
        counters,
        address,
        instance,
        info,
        invocations,
        0,
    ));
}

/// Records `messages` as the in-flight batch of `address` and returns the action that sends
/// them. `counters` are the machine's next batch id and stats.
fn begin_invocation(
    now_ms: u64,
    counters: (&mut u64, &mut Stats),
    address: Address,
    instance: &mut Instance,
    info: &FunctionInfo,
    invocations: Vec<Invocation>,
    negotiation_rounds: u32,
) -> Action {
    let (next_batch_id, stats) = counters;
    let batch_id = *next_batch_id;
    *next_batch_id += 1;
    stats.invocations += 1;
    let request = if info.encoded {
        Request::Encoded(encode_request(
            now_ms,
            &address,
            instance,
            &info.specs,
            &invocations,
        ))
    } else {
        Request::Proto(build_request(
            now_ms,
            &address,
            instance,
            &info.specs,
            &invocations,
        ))
    };
    instance.busy.get_or_insert_with(Box::default).in_flight = Some(InFlight {
        batch_id,
        endpoint: info.endpoint,
        invocations,
        negotiation_rounds,
        specs_generation: info.specs_generation,
    });
    Action::Invoke {
        endpoint: info.endpoint,
        address,
        batch_id,
        request,
    }
}

/// Purges expired values, marks the address invoked, and builds the request.
/// What building a request does to the instance, whichever form the request takes: expired
/// values go, and the invocation time is recorded (expire-after-invoke counts from it).
fn start_request(now_ms: u64, instance: &mut Instance, specs: &[ValueSpec]) {
    purge_expired(now_ms, instance, specs);
    if let Some(state) = instance.state.as_deref_mut() {
        state.last_invoke_ms = now_ms;
    }
}

/// The request of a batch, encoded straight into bytes: the same bytes as
/// `build_request(..).encode_to_vec()`, without the intermediate structs.
fn encode_request(
    now_ms: u64,
    address: &Address,
    instance: &mut Instance,
    specs: &[ValueSpec],
    invocations: &[Invocation],
) -> Bytes {
    start_request(now_ms, instance, specs);
    let state: Vec<wire::State<'_>> = specs
        .iter()
        .map(|spec| wire::State {
            name: &spec.name,
            value: instance.value(&spec.name).map(|stored| wire::Value {
                typename: &stored.typename,
                has_value: true,
                bytes: &stored.bytes,
            }),
        })
        .collect();
    wire::encode_request(address, &state, invocations)
}

fn build_request(
    now_ms: u64,
    address: &Address,
    instance: &mut Instance,
    specs: &[ValueSpec],
    invocations: &[Invocation],
) -> ToFunction {
    start_request(now_ms, instance, specs);
    let state = specs
        .iter()
        .map(|spec| to_function::PersistedValue {
            state_name: spec.name.clone(),
            state_value: instance.value(&spec.name).map(StoredValue::to_typed_value),
        })
        .collect();
    let invocations = invocations
        .iter()
        .map(|invocation| to_function::Invocation {
            caller: invocation.caller.as_deref().map(Address::to_proto),
            argument: Some(invocation.argument.to_typed_value()),
        })
        .collect();
    ToFunction {
        request: Some(to_function::Request::Invocation(
            to_function::InvocationBatchRequest {
                target: Some(address.to_proto()),
                state,
                invocations,
            },
        )),
    }
}

#[cfg(test)]
mod tests;
