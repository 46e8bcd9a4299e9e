//! Tests of the partition state machine, driven directly with virtual time.

use super::*;
use crate::partition::Ack;
use crate::spec::{EndpointSpec, EndpointTarget, FunctionSelector, HttpTarget, TransportSpec};
use crate::Error;
use eddy_protocol::reqreply::from_function::{
    DelayedInvocation, EgressMessage, ExpirationSpec, IncompleteInvocationContext,
    Invocation as OutgoingInvocation, PersistedValueMutation,
};
use eddy_protocol::{BuiltIn, FromFunction};
use proptest::prelude::*;
use tokio::sync::oneshot::error::TryRecvError;

fn endpoint(selector: FunctionSelector, max_batch: usize) -> EndpointSpec {
    EndpointSpec {
        document: 0,
        functions: selector,
        max_num_batch_requests: max_batch,
        target: EndpointTarget::Http(HttpTarget {
            url_path_template: "http://127.0.0.1:1/{function.name}".into(),
            transport: TransportSpec::default(),
        }),
    }
}

fn machine(max_batch: usize) -> Machine {
    machine_with_pool(max_batch, TransportSpec::default().pool_size, 1)
}

/// A machine whose endpoint has `pool_size` connections, shared by `workers` workers.
fn machine_with_pool(max_batch: usize, pool_size: usize, workers: usize) -> Machine {
    let mut spec = endpoint(FunctionSelector::Namespace("test".into()), max_batch);
    if let EndpointTarget::Http(http) = &mut spec.target {
        http.transport.pool_size = pool_size;
    }
    Machine::new(MachineConfig {
        catalog: Arc::new(Catalog::new(vec![spec])),
        egress_ids: Arc::new(HashSet::from(["test/out".to_string()])),
        workers,
    })
}

fn addr(text: &str) -> Address {
    Address::parse(text).expect("valid address")
}

fn msg(target: &str, n: i64) -> Message {
    Message {
        target: addr(target),
        caller: None,
        argument: BuiltIn::Long(n).into(),
    }
}

fn deliver(m: &mut Machine, now: u64, message: Message) -> Vec<Action> {
    let mut out = Vec::new();
    m.deliver(now, Envelope { message, ack: None }, &mut out);
    out
}

fn complete(
    m: &mut Machine,
    now: u64,
    address: &Address,
    batch_id: u64,
    result: Result<FromFunction, Error>,
) -> Vec<Action> {
    let mut out = Vec::new();
    m.complete(
        now,
        Completion {
            address: address.clone(),
            batch_id,
            result,
        },
        &mut out,
    );
    out
}

/// The invocations among `actions`, their requests decoded (HTTP endpoints get bytes).
fn invokes(actions: &[Action]) -> Vec<(u64, ToFunction)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Invoke {
                batch_id, request, ..
            } => Some((
                *batch_id,
                request.clone().into_proto().expect("a decodable request"),
            )),
            _ => None,
        })
        .collect()
}

fn only_invoke(actions: &[Action]) -> (u64, to_function::InvocationBatchRequest) {
    let found = invokes(actions);
    assert_eq!(found.len(), 1, "expected exactly one invoke in {actions:?}");
    let (batch_id, request) = found[0].clone();
    match request.request {
        Some(to_function::Request::Invocation(batch)) => (batch_id, batch),
        None => panic!("empty request"),
    }
}

fn arguments(batch: &to_function::InvocationBatchRequest) -> Vec<i64> {
    batch
        .invocations
        .iter()
        .map(|invocation| {
            let value = invocation.argument.as_ref().expect("argument");
            match BuiltIn::from_typed_value(value) {
                Ok(BuiltIn::Long(n)) => n,
                other => panic!("unexpected argument {other:?}"),
            }
        })
        .collect()
}

fn reply(response: InvocationResponse) -> Result<FromFunction, Error> {
    Ok(FromFunction {
        response: Some(from_function::Response::InvocationResult(response)),
    })
}

fn incomplete(specs: Vec<PersistedValueSpec>) -> Result<FromFunction, Error> {
    Ok(FromFunction {
        response: Some(from_function::Response::IncompleteInvocationContext(
            IncompleteInvocationContext {
                missing_values: specs,
            },
        )),
    })
}

fn spec(name: &str, mode: ExpireMode, millis: i64) -> PersistedValueSpec {
    PersistedValueSpec {
        state_name: name.into(),
        expiration_spec: Some(ExpirationSpec {
            mode: mode as i32,
            expire_after_millis: millis,
        }),
        type_typename: "io.statefun.types/long".into(),
    }
}

fn modify(name: &str, n: i64) -> PersistedValueMutation {
    PersistedValueMutation {
        mutation_type: MutationType::Modify as i32,
        state_name: name.into(),
        state_value: Some(BuiltIn::Long(n).to_typed_value()),
    }
}

fn state_value(batch: &to_function::InvocationBatchRequest, name: &str) -> Option<i64> {
    let value = batch
        .state
        .iter()
        .find(|v| v.state_name == name)
        .unwrap_or_else(|| panic!("state {name} not in request"))
        .state_value
        .as_ref()?;
    match BuiltIn::from_typed_value(value) {
        Ok(BuiltIn::Long(n)) => Some(n),
        other => panic!("unexpected state {other:?}"),
    }
}

fn proto_addr(text: &str) -> eddy_protocol::reqreply::Address {
    addr(text).to_proto()
}

fn dead_letters(actions: &[Action]) -> Vec<&DeadLetter> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::DeadLetter(letter) => Some(letter),
            _ => None,
        })
        .collect()
}

#[test]
fn first_message_is_invoked_at_once() {
    let mut m = machine(10);
    let actions = deliver(&mut m, 0, msg("test/f/a", 1));
    let (_, batch) = only_invoke(&actions);
    assert_eq!(batch.target, Some(proto_addr("test/f/a")));
    assert_eq!(arguments(&batch), vec![1]);
    assert!(batch.state.is_empty());
}

#[test]
fn messages_queue_while_in_flight_and_go_out_as_one_batch() {
    let mut m = machine(10);
    let a = addr("test/f/a");
    let (first, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    for n in 2..=4 {
        assert!(invokes(&deliver(&mut m, 0, msg("test/f/a", n))).is_empty());
    }
    // another address is not blocked by `a`
    let (_, other) = only_invoke(&deliver(&mut m, 0, msg("test/f/b", 9)));
    assert_eq!(arguments(&other), vec![9]);
    let actions = complete(&mut m, 1, &a, first, reply(InvocationResponse::default()));
    let (_, batch) = only_invoke(&actions);
    assert_eq!(arguments(&batch), vec![2, 3, 4]);
}

#[test]
fn batches_are_bounded_and_full_mailboxes_hold_their_senders() {
    let mut m = machine(2);
    let a = addr("test/f/a");
    let mut out = Vec::new();
    let mut receivers = Vec::new();
    for n in 1..=6 {
        let (ack, admitted) = Ack::new();
        m.deliver(
            0,
            Envelope {
                message: msg("test/f/a", n),
                ack: Some(ack),
            },
            &mut out,
        );
        receivers.push(admitted);
    }
    // 1 is in flight, 2 and 3 fill the mailbox, 4..6 wait.
    let (first, batch) = only_invoke(&out);
    assert_eq!(arguments(&batch), vec![1]);
    let mut states: Vec<bool> = receivers
        .iter_mut()
        .map(|r| !matches!(r.try_recv(), Err(TryRecvError::Empty)))
        .collect();
    assert_eq!(states, vec![true, true, true, false, false, false]);
    // Senders to another address are admitted immediately.
    let (ack, mut admitted) = Ack::new();
    m.deliver(
        0,
        Envelope {
            message: msg("test/f/b", 1),
            ack: Some(ack),
        },
        &mut Vec::new(),
    );
    assert!(admitted.try_recv().is_ok());

    let actions = complete(&mut m, 1, &a, first, reply(InvocationResponse::default()));
    let (second, batch) = only_invoke(&actions);
    assert_eq!(arguments(&batch), vec![2, 3]);
    states = receivers[3..]
        .iter_mut()
        .map(|r| !matches!(r.try_recv(), Err(TryRecvError::Empty)))
        .collect();
    assert_eq!(states, vec![true, true, false]);
    let actions = complete(&mut m, 2, &a, second, reply(InvocationResponse::default()));
    assert_eq!(arguments(&only_invoke(&actions).1), vec![4, 5]);
    assert!(receivers[5].try_recv().is_ok());
}

#[test]
fn missing_state_is_negotiated_then_carried_in_every_request() {
    let mut m = machine(10);
    let a = addr("test/f/a");
    let (first, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    let actions = complete(
        &mut m,
        1,
        &a,
        first,
        incomplete(vec![spec("count", ExpireMode::None, 0)]),
    );
    let (second, batch) = only_invoke(&actions);
    assert_eq!(arguments(&batch), vec![1], "same messages are re-sent");
    assert_eq!(
        state_value(&batch, "count"),
        None,
        "absent value is sent without value"
    );
    let actions = complete(
        &mut m,
        2,
        &a,
        second,
        reply(InvocationResponse {
            state_mutations: vec![modify("count", 1)],
            ..Default::default()
        }),
    );
    assert!(invokes(&actions).is_empty());
    // A different address of the same type gets the spec without negotiating.
    let (_, batch) = only_invoke(&deliver(&mut m, 3, msg("test/f/b", 5)));
    assert_eq!(state_value(&batch, "count"), None);
    let (_, batch) = only_invoke(&deliver(&mut m, 3, msg("test/f/a", 2)));
    assert_eq!(state_value(&batch, "count"), Some(1));
}

#[test]
fn negotiation_without_progress_is_a_failure() {
    let mut m = machine(10);
    let a = addr("test/f/a");
    let (first, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    let specs = vec![spec("count", ExpireMode::None, 0)];
    let (second, _) = only_invoke(&complete(&mut m, 1, &a, first, incomplete(specs.clone())));
    let actions = complete(&mut m, 2, &a, second, incomplete(specs));
    let letters = dead_letters(&actions);
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].error.contains("already carried"),
        "{}",
        letters[0].error
    );
    assert_eq!(letters[0].messages, vec![msg("test/f/a", 1)]);
}

#[test]
fn effects_apply_in_order_and_state_persists() {
    let mut m = machine(10);
    let a = addr("test/f/a");
    let (first, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    let actions = complete(
        &mut m,
        1,
        &a,
        first,
        reply(InvocationResponse {
            state_mutations: vec![modify("count", 7)],
            outgoing_messages: vec![OutgoingInvocation {
                target: Some(proto_addr("test/g/x")),
                argument: Some(BuiltIn::Long(3).to_typed_value()),
            }],
            delayed_invocations: vec![],
            outgoing_egresses: vec![EgressMessage {
                egress_namespace: "test".into(),
                egress_type: "out".into(),
                argument: Some(BuiltIn::String("hi".into()).to_typed_value()),
            }],
        }),
    );
    assert!(
        matches!(&actions[0], Action::Route(m) if m.target == addr("test/g/x") && m.caller == Some(a.clone()))
    );
    assert!(matches!(&actions[1], Action::Egress(r) if r.egress == "test/out"));
    assert_eq!(actions.len(), 2);
    assert_eq!(
        m.state_of(&a),
        vec![("count".to_string(), BuiltIn::Long(7).to_typed_value())]
    );
}

#[test]
fn failures_go_to_dead_letters_and_the_address_continues() {
    let mut m = machine(10);
    let a = addr("test/f/a");
    let (first, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    deliver(&mut m, 0, msg("test/f/a", 2));
    let actions = complete(
        &mut m,
        5,
        &a,
        first,
        Err(Error::Invocation {
            target: a.to_string(),
            url: "http://x".into(),
            attempts: 3,
            reason: "http 500".into(),
        }),
    );
    let letters = dead_letters(&actions);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].messages, vec![msg("test/f/a", 1)]);
    assert!(letters[0].error.contains("http 500"));
    assert_eq!(arguments(&only_invoke(&actions).1), vec![2]);
    assert_eq!(m.stats().failed_batches, 1);
}

#[test]
fn invalid_replies_apply_nothing() {
    let mut m = machine(10);
    let a = addr("test/f/a");
    for (bad, expected) in [
        (
            InvocationResponse {
                state_mutations: vec![modify("count", 1)],
                outgoing_egresses: vec![EgressMessage {
                    egress_namespace: "nope".into(),
                    egress_type: "x".into(),
                    argument: Some(TypedValue::default()),
                }],
                ..Default::default()
            },
            "unknown egress",
        ),
        (
            InvocationResponse {
                state_mutations: vec![modify("count", 1)],
                outgoing_messages: vec![OutgoingInvocation {
                    target: Some(proto_addr("unknown/g/x")),
                    argument: None,
                }],
                ..Default::default()
            },
            "no endpoint serves function type unknown/g",
        ),
        (
            InvocationResponse {
                delayed_invocations: vec![DelayedInvocation {
                    delay_in_ms: -5,
                    target: Some(proto_addr("test/f/a")),
                    ..Default::default()
                }],
                ..Default::default()
            },
            "negative delay",
        ),
    ] {
        let (batch_id, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
        let actions = complete(&mut m, 1, &a, batch_id, reply(bad));
        let letters = dead_letters(&actions);
        assert_eq!(letters.len(), 1, "{actions:?}");
        assert!(letters[0].error.contains(expected), "{}", letters[0].error);
        assert_eq!(actions.len(), 1, "nothing else applied: {actions:?}");
        assert!(m.state_of(&a).is_empty());
    }
}

#[test]
fn stale_completions_are_ignored() {
    let mut m = machine(10);
    let a = addr("test/f/a");
    let (first, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    let actions = complete(
        &mut m,
        1,
        &a,
        first + 100,
        reply(InvocationResponse::default()),
    );
    assert!(actions.is_empty());
    // the real one still completes
    let actions = complete(
        &mut m,
        1,
        &a,
        first,
        reply(InvocationResponse {
            state_mutations: vec![modify("v", 1)],
            ..Default::default()
        }),
    );
    assert!(actions.is_empty());
    assert_eq!(m.state_of(&a).len(), 1);
}

fn run_with_state(
    m: &mut Machine,
    now: u64,
    target: &str,
    mutations: Vec<PersistedValueMutation>,
) -> to_function::InvocationBatchRequest {
    let a = addr(target);
    let (batch_id, batch) = only_invoke(&deliver(m, now, msg(target, 0)));
    complete(
        m,
        now,
        &a,
        batch_id,
        reply(InvocationResponse {
            state_mutations: mutations,
            ..Default::default()
        }),
    );
    batch
}

#[test]
fn values_expire_after_write_and_after_invoke() {
    let mut m = machine(10);
    let a = addr("test/f/a");
    let (first, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    let (second, _) = only_invoke(&complete(
        &mut m,
        0,
        &a,
        first,
        incomplete(vec![
            spec("w", ExpireMode::AfterWrite, 1000),
            spec("i", ExpireMode::AfterInvoke, 1000),
        ]),
    ));
    complete(
        &mut m,
        0,
        &a,
        second,
        reply(InvocationResponse {
            state_mutations: vec![modify("w", 1), modify("i", 2)],
            ..Default::default()
        }),
    );
    // t=900: both alive; this invocation refreshes "i" but writes nothing.
    let batch = run_with_state(&mut m, 900, "test/f/a", vec![]);
    assert_eq!(
        (state_value(&batch, "w"), state_value(&batch, "i")),
        (Some(1), Some(2))
    );
    // t=1500: "w" expired 1000 after its write; "i" lives until 900 + 1000.
    let batch = run_with_state(&mut m, 1500, "test/f/a", vec![]);
    assert_eq!(
        (state_value(&batch, "w"), state_value(&batch, "i")),
        (None, Some(2))
    );
    // t=2600: "i" not invoked since 1500 + 1000 → expired.
    let batch = run_with_state(&mut m, 2600, "test/f/a", vec![]);
    assert_eq!(state_value(&batch, "i"), None);
}

fn delayed(target: &str, delay: i64, token: &str, n: i64) -> DelayedInvocation {
    DelayedInvocation {
        delay_in_ms: delay,
        target: Some(proto_addr(target)),
        argument: Some(BuiltIn::Long(n).to_typed_value()),
        is_cancellation_request: false,
        cancellation_token: token.into(),
    }
}

fn cancel(token: &str) -> DelayedInvocation {
    DelayedInvocation {
        is_cancellation_request: true,
        cancellation_token: token.into(),
        ..Default::default()
    }
}

fn reply_with_delays(m: &mut Machine, now: u64, delays: Vec<DelayedInvocation>) -> Vec<Action> {
    let a = addr("test/f/a");
    let (batch_id, _) = only_invoke(&deliver(m, now, msg("test/f/a", 0)));
    complete(
        m,
        now,
        &a,
        batch_id,
        reply(InvocationResponse {
            delayed_invocations: delays,
            ..Default::default()
        }),
    )
}

fn fire(m: &mut Machine, now: u64) -> Vec<i64> {
    let mut out = Vec::new();
    m.fire_timers(now, &mut out);
    out.iter()
        .map(|action| match action {
            Action::Route(message) => {
                match BuiltIn::from_typed_value(&message.argument.to_typed_value()) {
                    Ok(BuiltIn::Long(n)) => n,
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn delayed_messages_fire_in_due_order_and_can_be_cancelled() {
    let mut m = machine(10);
    reply_with_delays(
        &mut m,
        0,
        vec![
            delayed("test/g/x", 500, "a", 1),
            delayed("test/g/x", 100, "b", 2),
            delayed("test/g/x", 500, "", 3),
        ],
    );
    assert_eq!(m.next_timer(), Some(100));
    reply_with_delays(&mut m, 10, vec![cancel("a"), cancel("never-issued")]);
    assert_eq!(fire(&mut m, 99), Vec::<i64>::new());
    assert_eq!(fire(&mut m, 100), vec![2]);
    assert_eq!(fire(&mut m, 1000), vec![3]);
    assert_eq!(m.next_timer(), None);
}

#[test]
fn reusing_a_pending_token_fails_that_invocation_only() {
    let mut m = machine(10);
    reply_with_delays(&mut m, 0, vec![delayed("test/g/x", 500, "t", 1)]);
    let actions = reply_with_delays(&mut m, 1, vec![delayed("test/g/x", 500, "t", 2)]);
    let letters = dead_letters(&actions);
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].error.contains("reuses cancellation token"),
        "{}",
        letters[0].error
    );
    // Cancelling then reusing in one reply is fine; after firing, a token is free again.
    let actions = reply_with_delays(
        &mut m,
        2,
        vec![cancel("t"), delayed("test/g/x", 500, "t", 3)],
    );
    assert!(dead_letters(&actions).is_empty());
    assert_eq!(fire(&mut m, 1000), vec![3]);
    let actions = reply_with_delays(&mut m, 1001, vec![delayed("test/g/x", 5, "t", 4)]);
    assert!(dead_letters(&actions).is_empty());
}

#[test]
fn an_idle_address_holds_only_its_state_and_goes_when_the_state_does() {
    // The table entry of an address: two pointers beside the address.
    assert_eq!(std::mem::size_of::<(Address, Instance)>(), 48);
    let mut m = machine(10);
    let a = addr("test/f/a");
    let (first, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    assert!(m.instances[&a].busy.is_some());
    let second = deliver(&mut m, 1, msg("test/f/a", 2));
    assert!(second.is_empty(), "queued behind the batch in flight");
    let written = InvocationResponse {
        state_mutations: vec![modify("count", 7)],
        ..InvocationResponse::default()
    };
    let (next, _) = only_invoke(&complete(&mut m, 2, &a, first, reply(written)));
    let instance = &m.instances[&a];
    assert!(instance.busy.is_some() && instance.state.is_some());
    complete(&mut m, 3, &a, next, reply(InvocationResponse::default()));
    let instance = &m.instances[&a];
    assert!(
        instance.busy.is_none(),
        "nothing queued or in flight: no busy part"
    );
    assert_eq!(instance.values().len(), 1);
    assert_eq!(
        instance.last_invoke_ms(),
        2,
        "the second request was built at 2"
    );

    let (third, _) = only_invoke(&deliver(&mut m, 4, msg("test/f/a", 3)));
    let deleted = InvocationResponse {
        state_mutations: vec![PersistedValueMutation {
            mutation_type: MutationType::Delete as i32,
            state_name: "count".into(),
            state_value: None,
        }],
        ..InvocationResponse::default()
    };
    complete(&mut m, 5, &a, third, reply(deleted));
    assert_eq!(
        m.address_count(),
        0,
        "no state, nothing queued: the address is forgotten"
    );
}

#[test]
fn idle_addresses_without_state_are_dropped() {
    let mut m = machine(10);
    let a = addr("test/f/a");
    let (first, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    assert_eq!(m.address_count(), 1);
    complete(&mut m, 1, &a, first, reply(InvocationResponse::default()));
    assert_eq!(m.address_count(), 0);
}

#[test]
fn snapshot_restores_state_mailboxes_in_flight_and_timers() {
    let mut m = machine(10);
    let a = addr("test/f/a");
    let (first, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    let (second, _) = only_invoke(&complete(
        &mut m,
        0,
        &a,
        first,
        incomplete(vec![spec("count", ExpireMode::AfterWrite, 60_000)]),
    ));
    complete(
        &mut m,
        1,
        &a,
        second,
        reply(InvocationResponse {
            state_mutations: vec![modify("count", 5)],
            delayed_invocations: vec![delayed("test/g/x", 500, "t", 9)],
            ..Default::default()
        }),
    );
    deliver(&mut m, 2, msg("test/f/a", 2)); // in flight
    deliver(&mut m, 2, msg("test/f/a", 3)); // queued
    let snapshot = m.snapshot();
    assert_eq!(
        snapshot.addresses[0].messages,
        vec![msg("test/f/a", 2), msg("test/f/a", 3)]
    );

    let mut out = Vec::new();
    let mut restored = Machine::restore(m.config.clone(), snapshot.clone(), 3, &mut out);
    let (_, batch) = only_invoke(&out);
    assert_eq!(
        arguments(&batch),
        vec![2, 3],
        "pending messages are re-invoked"
    );
    assert_eq!(state_value(&batch, "count"), Some(5));
    assert_eq!(fire(&mut restored, 600), vec![9]);
    // Restored at the snapshot's own time, the machine's snapshot equals the original.
    let again = Machine::restore(m.config.clone(), snapshot.clone(), 2, &mut Vec::new()).snapshot();
    assert_eq!(again, snapshot);
}

/// One step of a random schedule.
#[derive(Debug, Clone)]
enum Step {
    Deliver {
        address: usize,
    },
    /// Several messages under one admission signal (an ingress batch), runs included.
    DeliverAll {
        addresses: Vec<usize>,
    },
    Complete {
        pick: usize,
        outcome: Outcome,
    },
}

#[derive(Debug, Clone)]
enum Outcome {
    Ok,
    Fail,
    Incomplete,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0usize..4).prop_map(|address| Step::Deliver { address }),
        1 => proptest::collection::vec(prop_oneof![3 => Just(0usize), 1 => 0usize..4], 1..8)
            .prop_map(|addresses| Step::DeliverAll { addresses }),
        2 => (any::<usize>(), prop_oneof![
            4 => Just(Outcome::Ok),
            1 => Just(Outcome::Fail),
            1 => Just(Outcome::Incomplete),
        ]).prop_map(|(pick, outcome)| Step::Complete { pick, outcome }),
    ]
}

proptest! {
    /// Per address: FIFO order, at most one invocation in flight, and every message ends in
    /// exactly one successful batch or dead letter — none lost, none duplicated — across
    /// batching, negotiation, failures and waiting for a slot; never more invocations in
    /// flight than the endpoint's pool.
    #[test]
    fn batching_keeps_order_and_loses_nothing(
        steps in proptest::collection::vec(step(), 1..200),
        max_batch in 1usize..5,
        pool_size in 1usize..6,
    ) {
        // Four addresses: a pool of fewer than four makes addresses wait for a slot.
        let mut m = machine_with_pool(max_batch, pool_size, 1);
        let addresses: Vec<Address> = (0..4).map(|i| addr(&format!("test/f/{i}"))).collect();
        let mut sent: Vec<Vec<i64>> = vec![Vec::new(); 4];
        let mut done: Vec<Vec<i64>> = vec![Vec::new(); 4];
        // in flight: address index -> (batch id, arguments)
        let mut in_flight: BTreeMap<usize, (u64, Vec<i64>)> = BTreeMap::new();
        let mut next = 0i64;
        let mut negotiated = false;
        let mut handled = 0u64;
        let mut now = 0;
        let mut pending_actions: Vec<Action>;
        let mut admissions = Vec::new();

        let absorb = |actions: Vec<Action>, in_flight: &mut BTreeMap<usize, (u64, Vec<i64>)>, done: &mut Vec<Vec<i64>>| -> Result<(), TestCaseError> {
            for action in actions {
                match action {
                    Action::Invoke { address, batch_id, request, .. } => {
                        let index = addresses.iter().position(|a| *a == address).expect("known");
                        prop_assert!(!in_flight.contains_key(&index), "two invocations in flight for {}", address);
                        let batch = match request.into_proto().expect("decodable").request { Some(to_function::Request::Invocation(b)) => b, None => unreachable!() };
                        prop_assert!(batch.invocations.len() <= max_batch);
                        in_flight.insert(index, (batch_id, arguments(&batch)));
                        prop_assert!(in_flight.len() <= pool_size, "more than {} invocations in flight", pool_size);
                    }
                    Action::DeadLetter(letter) => {
                        let index = addresses.iter().position(|a| *a == letter.address).expect("known");
                        for message in letter.messages {
                            match BuiltIn::from_typed_value(&message.argument.to_typed_value()) {
                                Ok(BuiltIn::Long(n)) => done[index].push(n),
                                _ => unreachable!(),
                            }
                        }
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            Ok(())
        };

        for step in steps {
            now += 1;
            match step {
                Step::Deliver { address } => {
                    next += 1;
                    sent[address].push(next);
                    pending_actions = deliver(&mut m, now, msg(&format!("test/f/{address}"), next));
                }
                Step::DeliverAll { addresses: targets } => {
                    let mut group = Vec::new();
                    for address in targets {
                        next += 1;
                        sent[address].push(next);
                        group.push(msg(&format!("test/f/{address}"), next));
                    }
                    let mut out = Vec::new();
                    let (ack, admitted) = Ack::new();
                    admissions.push(admitted);
                    m.deliver_all(now, group, Some(ack), &mut out);
                    pending_actions = out;
                }
                Step::Complete { pick, outcome } => {
                    if in_flight.is_empty() { continue; }
                    let index = *in_flight.keys().nth(pick % in_flight.len()).expect("non-empty");
                    let (batch_id, args) = in_flight.remove(&index).expect("present");
                    let result = match outcome {
                        Outcome::Ok => { handled += args.len() as u64; done[index].extend(&args); reply(InvocationResponse::default()) }
                        Outcome::Fail => Err(Error::Rejected("boom".into())),
                        Outcome::Incomplete if !negotiated => { negotiated = true; incomplete(vec![spec("s", ExpireMode::None, 0)]) }
                        Outcome::Incomplete => { handled += args.len() as u64; done[index].extend(&args); reply(InvocationResponse::default()) }
                    };
                    pending_actions = complete(&mut m, now, &addresses[index], batch_id, result);
                }
            }
            absorb(pending_actions, &mut in_flight, &mut done)?;
        }
        // Drain: complete everything successfully.
        while let Some((&index, _)) = in_flight.iter().next() {
            let (batch_id, args) = in_flight.remove(&index).expect("present");
            handled += args.len() as u64;
            done[index].extend(&args);
            let actions = complete(&mut m, now, &addresses[index], batch_id, reply(InvocationResponse::default()));
            absorb(actions, &mut in_flight, &mut done)?;
        }
        prop_assert_eq!(sent, done);
        prop_assert_eq!(m.stats().processed, handled);
        prop_assert!(m.is_quiescent());
        // Every group was admitted in the end: no sender is left waiting.
        for mut admitted in admissions {
            prop_assert_eq!(admitted.try_recv(), Ok(()));
        }
    }
}

#[test]
fn concurrent_negotiations_of_one_type_both_make_progress() {
    let mut m = machine(10);
    let (a, b) = (addr("test/f/a"), addr("test/f/b"));
    let (batch_a, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    let (batch_b, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/b", 2)));
    let specs = vec![spec("count", ExpireMode::None, 0)];
    let (_, resent_a) = only_invoke(&complete(&mut m, 1, &a, batch_a, incomplete(specs.clone())));
    // b's request was built before a registered "count": its identical answer is not a loop.
    let actions = complete(&mut m, 1, &b, batch_b, incomplete(specs));
    assert!(dead_letters(&actions).is_empty(), "{actions:?}");
    let (_, resent_b) = only_invoke(&actions);
    assert_eq!(state_value(&resent_a, "count"), None);
    assert_eq!(arguments(&resent_b), vec![2]);
}

#[test]
fn idle_addresses_give_expired_state_back() {
    let mut m = machine(10);
    let a = addr("test/f/a");
    let (first, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    let (second, _) = only_invoke(&complete(
        &mut m,
        0,
        &a,
        first,
        incomplete(vec![
            spec("w", ExpireMode::AfterWrite, 1000),
            spec("i", ExpireMode::AfterInvoke, 3000),
        ]),
    ));
    complete(
        &mut m,
        0,
        &a,
        second,
        reply(InvocationResponse {
            state_mutations: vec![modify("w", 1), modify("i", 2)],
            ..Default::default()
        }),
    );
    assert_eq!(m.next_timer(), Some(1000));
    m.fire_timers(999, &mut Vec::new());
    assert_eq!(m.state_of(&a).len(), 2);
    m.fire_timers(1000, &mut Vec::new());
    assert_eq!(
        m.state_of(&a),
        vec![("i".to_string(), BuiltIn::Long(2).to_typed_value())]
    );
    // An invocation at 2000 keeps "i" alive until 5000; the check due at 3000 reschedules.
    run_with_state(&mut m, 2000, "test/f/a", vec![]);
    m.fire_timers(3000, &mut Vec::new());
    assert_eq!(m.address_count(), 1);
    assert_eq!(m.next_timer(), Some(5000));
    m.fire_timers(5000, &mut Vec::new());
    assert_eq!(m.address_count(), 0, "the idle address is gone");
    assert_eq!(m.next_timer(), None);
}

proptest! {
    /// The bytes encoded straight from the machine's state (for HTTP endpoints) are exactly
    /// the prost encoding of the struct built for the other transports.
    #[test]
    fn encoded_requests_are_the_prost_encoding_of_built_ones(
        stored in proptest::collection::vec((any::<bool>(), "[a-z./]{0,12}", proptest::collection::vec(any::<u8>(), 0..300)), 0..4),
        messages in proptest::collection::vec(
            (proptest::option::of("[a-z]{1,4}/[a-z]{1,4}/[a-z0-9/]{1,6}"), "[a-z./]{0,12}", any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)),
            0..6,
        ),
        id in "[a-z0-9/]{1,200}",
    ) {
        let target = addr(&format!("test/f/{id}"));
        let mut names = Interner::default();
        let mut instance = Instance::default();
        let specs: Vec<ValueSpec> = (0..stored.len())
            .map(|i| ValueSpec {
                name: format!("state_{i}"),
                typename: "test/t".into(),
                expiration: Expiration::Never,
            })
            .collect();
        for (i, (present, typename, bytes)) in stored.iter().enumerate() {
            if *present {
                let value = TypedValue::new(typename.as_str(), bytes.clone());
                instance.state.get_or_insert_with(Box::default).values.push((names.intern(&specs[i].name), StoredValue::new(&value, 0, &mut names)));
            }
        }
        let invocations: Vec<Invocation> = messages
            .into_iter()
            .map(|(caller, typename, has_value, bytes)| Invocation {
                caller: caller.map(|text| Box::new(addr(&text))),
                argument: TypedValue { typename, has_value, value: bytes.into() }.into(),
            })
            .collect();
        let built = eddy_protocol::Message::encode_to_vec(&build_request(1, &target, &mut instance, &specs, &invocations));
        let encoded = encode_request(1, &target, &mut instance, &specs, &invocations);
        prop_assert_eq!(&encoded[..], &built[..]);
    }
}

#[test]
fn a_group_of_messages_is_admitted_as_a_whole() {
    let mut m = machine(2);
    let mut out = Vec::new();
    let (ack, mut admitted) = Ack::new();
    // a: 1 goes out, 2 and 3 fill the mailbox, 4 is beyond the bound; b: admitted at once.
    let messages = vec![
        msg("test/f/a", 1),
        msg("test/f/b", 1),
        msg("test/f/a", 2),
        msg("test/f/a", 3),
        msg("test/f/a", 4),
    ];
    m.deliver_all(0, messages, Some(ack), &mut out);
    assert_eq!(out.len(), 2, "one invocation per address: {out:?}");
    assert!(matches!(admitted.try_recv(), Err(TryRecvError::Empty)));
    // a's first batch completes: 2 and 3 go out, 4 moves within the bound.
    let a = addr("test/f/a");
    let first = out
        .iter()
        .find_map(|action| match action {
            Action::Invoke {
                address, batch_id, ..
            } if *address == a => Some(*batch_id),
            _ => None,
        })
        .expect("an invocation of a");
    let actions = complete(&mut m, 0, &a, first, reply(InvocationResponse::default()));
    let (_, batch) = only_invoke(&actions);
    assert_eq!(arguments(&batch), vec![2, 3]);
    assert_eq!(admitted.try_recv(), Ok(()));
}

#[test]
fn addresses_wait_for_a_free_slot_in_arrival_order_and_batch_meanwhile() {
    // pool_size 4 shared by 2 workers: this machine keeps 2 in flight.
    let mut m = machine_with_pool(10, 4, 2);
    let (a, b) = (addr("test/f/a"), addr("test/f/b"));
    let (batch_a, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    let (batch_b, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/b", 2)));
    // c and d wait; c's later messages join its mailbox.
    assert!(deliver(&mut m, 0, msg("test/f/c", 3)).is_empty());
    assert!(deliver(&mut m, 0, msg("test/f/d", 4)).is_empty());
    assert!(deliver(&mut m, 0, msg("test/f/c", 5)).is_empty());
    // a's next message waits too: the slot it will free belongs to c first.
    assert!(deliver(&mut m, 0, msg("test/f/a", 6)).is_empty());
    assert!(!m.is_quiescent());
    let actions = complete(&mut m, 1, &a, batch_a, reply(InvocationResponse::default()));
    let (batch_c, sent) = only_invoke(&actions);
    assert_eq!(target_of(&actions), addr("test/f/c"));
    assert_eq!(
        arguments(&sent),
        vec![3, 5],
        "c sends everything that arrived while waiting"
    );
    let actions = complete(&mut m, 1, &b, batch_b, reply(InvocationResponse::default()));
    assert_eq!(target_of(&actions), addr("test/f/d"));
    let (batch_d, _) = only_invoke(&actions);
    let actions = complete(
        &mut m,
        2,
        &addr("test/f/c"),
        batch_c,
        reply(InvocationResponse::default()),
    );
    assert_eq!(target_of(&actions), a);
    let (batch_a2, sent) = only_invoke(&actions);
    assert_eq!(arguments(&sent), vec![6]);
    assert!(complete(
        &mut m,
        3,
        &addr("test/f/d"),
        batch_d,
        reply(InvocationResponse::default())
    )
    .is_empty());
    assert!(complete(
        &mut m,
        3,
        &a,
        batch_a2,
        reply(InvocationResponse::default())
    )
    .is_empty());
    assert!(m.is_quiescent());
    assert_eq!(m.stats().processed, 6);
}

#[test]
fn a_failed_batch_and_a_negotiation_keep_the_slot_count_right() {
    let mut m = machine_with_pool(10, 1, 1);
    let a = addr("test/f/a");
    let (first, _) = only_invoke(&deliver(&mut m, 0, msg("test/f/a", 1)));
    assert!(deliver(&mut m, 0, msg("test/f/b", 2)).is_empty());
    // A negotiation re-sends a's batch in the same slot; b keeps waiting.
    let actions = complete(
        &mut m,
        1,
        &a,
        first,
        incomplete(vec![spec("s", ExpireMode::None, 0)]),
    );
    assert_eq!(target_of(&actions), a);
    let (resent, _) = only_invoke(&actions);
    // A failure frees the slot for b.
    let actions = complete(&mut m, 2, &a, resent, Err(Error::Rejected("boom".into())));
    assert_eq!(dead_letters(&actions).len(), 1);
    let invoked: Vec<Address> = actions
        .iter()
        .filter_map(|action| match action {
            Action::Invoke { address, .. } => Some(address.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(invoked, vec![addr("test/f/b")]);
}

fn target_of(actions: &[Action]) -> Address {
    actions
        .iter()
        .find_map(|action| match action {
            Action::Invoke { address, .. } => Some(address.clone()),
            _ => None,
        })
        .expect("an invocation")
}

#[test]
fn a_run_of_messages_for_an_idle_address_goes_out_as_one_batch() {
    let mut m = machine(3);
    let a = addr("test/f/a");
    let (ack, mut admitted) = Ack::new();
    let mut out = Vec::new();
    let run: Vec<Message> = (1..=5).map(|n| msg("test/f/a", n)).collect();
    m.deliver_all(0, run, Some(ack), &mut out);
    let (first, batch) = only_invoke(&out);
    assert_eq!(arguments(&batch), vec![1, 2, 3]);
    // 4 and 5 now sit within the bound: the group is admitted.
    assert_eq!(admitted.try_recv(), Ok(()));
    let actions = complete(&mut m, 1, &a, first, reply(InvocationResponse::default()));
    let (_, batch) = only_invoke(&actions);
    assert_eq!(arguments(&batch), vec![4, 5]);
}
