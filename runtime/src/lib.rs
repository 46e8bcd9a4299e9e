//! # eddy-runtime
//!
//! Eddy's state tier: it owns keyed state, mailboxes and timers, invokes remote functions
//! with batches of messages plus their state (the StateFun request-reply protocol), applies
//! their replies, routes their messages and writes their egress records.
//!
//! One message, from ingress to egress:
//! 1. [`ingress`] turns an outside record (HTTP request — JSON lines or a binary batch —, file
//!    line) into a [`message::Message`] and hands it to the [`router`].
//! 2. The [`router`] hashes the target [`address::Address`] to a key group and delivers it to
//!    the owning [`partition`] worker (a request's messages as one event per worker), waiting
//!    for admission if that address's mailbox is full.
//! 3. The worker's [`partition::machine`] queues it in the address's mailbox; when the address
//!    has nothing in flight and its endpoint a free invocation slot, it emits an `Invoke`
//!    action with the batch and the state (otherwise the address waits for a slot and keeps
//!    batching).
//! 4. The worker's event loop ([`partition::worker`]) starts the call on the [`invoker`] and
//!    polls it among its invocations in flight: over HTTP (our own HTTP/1.1 connections,
//!    retries, timeouts, TLS), on AWS Lambda (`Invoke`, the same retry loop, throttling as
//!    backpressure, batches split under the 6 MB limit) or in-process (`eddy-sdk` functions
//!    linked into the binary); the reply comes back as the invocation's completion.
//! 5. The machine applies the reply in order — outgoing messages (back to step 2), delayed
//!    messages ([`partition::machine`] timers), egress records ([`egress`]), state mutations —
//!    then sends the next queued batch. Failed batches go to [`deadletter`].
//!
//! Other modules: [`spec`] reads `module.yaml`; [`catalog`] maps function types to endpoints;
//! [`jsonl`] is the JSON-lines form of messages shared by file ingress, egress and dead
//! letters; [`runtime`] assembles everything (`Options` → `build()` → `run()` + `Handle`);
//! [`cli`] is the `eddy` command line as a function, so that a program can link its own
//! functions in (`eddy_runtime::cli::main_with(Some(functions))`).

pub mod address;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod deadletter;
pub mod egress;
pub mod error;
pub mod ingress;
pub mod invoker;
pub mod jsonl;
pub mod message;
pub mod metrics;
pub mod partition;
pub mod router;
pub mod runtime;
pub mod spec;

pub use error::{Error, Result};
