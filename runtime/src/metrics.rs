//! Counters of what the runtime has done, readable while it runs.
//!
//! Each partition worker publishes its machine's counters after every turn with relaxed
//! atomic stores (no locks, no contention: one writer per slot). Readers — `GET /v1/stats` on
//! an HTTP ingress, the shutdown log — add the slots up and include the egress and
//! dead-letter writers' own counters.

use crate::deadletter::DeadLetters;
use crate::egress::Egresses;
use crate::partition::machine::Stats;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// One worker's published counters.
#[derive(Debug, Default)]
pub struct WorkerSlot {
    messages: AtomicU64,
    processed: AtomicU64,
    invocations: AtomicU64,
    negotiations: AtomicU64,
    failed_batches: AtomicU64,
    addresses: AtomicU64,
}

impl WorkerSlot {
    /// Publishes a worker's current counters.
    pub fn publish(&self, stats: &Stats, addresses: usize) {
        self.messages.store(stats.messages, Ordering::Relaxed);
        self.processed.store(stats.processed, Ordering::Relaxed);
        self.invocations.store(stats.invocations, Ordering::Relaxed);
        self.negotiations
            .store(stats.negotiations, Ordering::Relaxed);
        self.failed_batches
            .store(stats.failed_batches, Ordering::Relaxed);
        self.addresses.store(addresses as u64, Ordering::Relaxed);
    }
}

/// The runtime's counters.
pub struct Metrics {
    workers: Vec<WorkerSlot>,
    egresses: Egresses,
    dead_letters: DeadLetters,
}

impl Metrics {
    /// Counters for `workers` workers plus the given writers.
    pub fn new(workers: usize, egresses: Egresses, dead_letters: DeadLetters) -> Metrics {
        Metrics {
            workers: (0..workers).map(|_| WorkerSlot::default()).collect(),
            egresses,
            dead_letters,
        }
    }

    /// The slot of worker `index`.
    pub fn worker(&self, index: usize) -> Option<&WorkerSlot> {
        self.workers.get(index)
    }

    /// Sums of every counter.
    pub fn totals(&self) -> Totals {
        let sum = |field: fn(&WorkerSlot) -> &AtomicU64| -> u64 {
            self.workers
                .iter()
                .map(|slot| field(slot).load(Ordering::Relaxed))
                .sum()
        };
        Totals {
            messages: sum(|slot| &slot.messages),
            processed: sum(|slot| &slot.processed),
            invocations: sum(|slot| &slot.invocations),
            negotiations: sum(|slot| &slot.negotiations),
            failed_batches: sum(|slot| &slot.failed_batches),
            addresses: sum(|slot| &slot.addresses),
            egress_records: self.egresses.written(),
            egress_failures: self.egresses.failed(),
            dead_letters: self.dead_letters.count(),
        }
    }
}

/// The runtime's counters, added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Messages delivered to addresses (from ingresses, functions and timers).
    pub messages: u64,
    /// Messages the functions have handled (their batch's reply was applied).
    pub processed: u64,
    /// Requests sent to functions (negotiation re-sends included).
    pub invocations: u64,
    /// Missing-state negotiations.
    pub negotiations: u64,
    /// Batches that failed and went to the dead letters.
    pub failed_batches: u64,
    /// Addresses with state, queued messages or an invocation in flight.
    pub addresses: u64,
    /// Egress records written.
    pub egress_records: u64,
    /// Egress records that could not be written.
    pub egress_failures: u64,
    /// Dead letters written.
    pub dead_letters: u64,
}

impl Totals {
    /// The JSON form served by `GET /v1/stats`.
    pub fn to_json(&self) -> Value {
        json!({
            "messages": self.messages,
            "processed": self.processed,
            "invocations": self.invocations,
            "negotiations": self.negotiations,
            "failed_batches": self.failed_batches,
            "addresses": self.addresses,
            "egress_records": self.egress_records,
            "egress_failures": self.egress_failures,
            "dead_letters": self.dead_letters,
        })
    }
}
