//! # eddy-protocol
//!
//! The wire contract between Eddy's state tier and remote functions: the StateFun 3.x
//! request-reply protocol, StateFun's built-in types and the Kafka/Kinesis egress records,
//! generated from the `.proto` files in `proto/` (the single source of truth).
//!
//! Module map:
//! - [`reqreply`]: `ToFunction` / `FromFunction` and the messages inside them.
//! - [`types`]: the wrapper messages of `io.statefun.types/*`.
//! - [`egress`]: `KafkaProducerRecord` and `KinesisEgressRecord`.
//! - [`ingress`]: `MessageBatch`, Eddy's binary body for `POST /v1/messages`.
//! - [`typed`]: typenames and helpers to build and read [`TypedValue`]s of the built-in types.
//!
//! The golden vectors in `protocol/testdata/` pin the encoding byte for byte; the Rust and
//! Python SDKs test against the same files.

pub mod typed;

/// The request-reply protocol (`io.statefun.sdk.reqreply`).
pub mod reqreply {
    include!(concat!(env!("OUT_DIR"), "/io.statefun.sdk.reqreply.rs"));
}

/// The built-in wrapper types (`io.statefun.sdk.types`).
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/io.statefun.sdk.types.rs"));
}

/// The egress records (`io.statefun.sdk.egress`).
pub mod egress {
    include!(concat!(env!("OUT_DIR"), "/io.statefun.sdk.egress.rs"));
}

/// Eddy's binary batch of messages for the HTTP ingress (`io.eddy.ingress.v1`).
pub mod ingress {
    include!(concat!(env!("OUT_DIR"), "/io.eddy.ingress.v1.rs"));
}

pub use prost::Message;
pub use reqreply::{from_function, to_function, Address, FromFunction, ToFunction, TypedValue};
pub use typed::{BuiltIn, Error};
