//! # eddy-sdk
//!
//! Write Eddy / Apache Flink StateFun functions in Rust once, then run
//! them three ways: **embedded** in the Eddy runtime, over **HTTP**, or as an **AWS Lambda**
//! handler. The SDK speaks the StateFun 3.x request-reply protocol byte for byte, so the same
//! functions also serve Apache StateFun.
//!
//! A function is an async handler of a [`Context`] and a [`Message`], registered under a
//! typename (`namespace/name`) with the state it keeps ([`ValueSpec`]s). For each address
//! (`namespace/name/id`) the runtime sends a batch of messages together with the address's
//! state; the handler runs once per message, in order, reading and writing state through
//! [`Context::storage`], sending messages ([`Context::send`], [`Context::send_after`]),
//! cancelling delayed ones ([`Context::cancel_delayed_message`]) and writing egress records
//! ([`Context::send_egress`]). The SDK answers with all of it in one reply.
//!
//! ## A function
//!
//! ```
//! use eddy_sdk::{
//!     BoxError, Context, EgressMessage, Functions, LongType, Message, OutgoingMessage, ValueSpec,
//! };
//! use std::time::Duration;
//!
//! /// The state: how many greetings this address has seen.
//! const SEEN: ValueSpec<LongType> = ValueSpec::new("seen", LongType);
//!
//! async fn greeter(context: Context, message: Message) -> Result<(), BoxError> {
//!     let name = message.as_string()?; // fails clearly if the message is not a string
//!     let seen = context.storage().get(&SEEN)?.unwrap_or(0) + 1;
//!     context.storage().set(&SEEN, &seen)?;
//!     context.send_egress(EgressMessage::string(
//!         "com.example/greetings",
//!         format!("hello {name}, visit {seen}"),
//!     )?);
//!     if seen == 1 {
//!         // Remind ourselves in an hour, unless cancelled with the token.
//!         let me = context.address().clone();
//!         context.send_after_with_token(
//!             Duration::from_secs(3600),
//!             format!("remind-{}", me.id()),
//!             OutgoingMessage::string(me, "reminder"),
//!         )?;
//!     }
//!     Ok(())
//! }
//!
//! pub fn functions() -> Result<Functions, eddy_sdk::Error> {
//!     Functions::new().register("com.example/greeter", &[&SEEN], greeter)
//! }
//! # functions().unwrap();
//! ```
//!
//! ## Deployment 1: embedded in the runtime
//!
//! The runtime calls [`Functions::invoke`] in-process: no socket, no protobuf encoding. Build
//! your own `eddy` binary with your functions linked in (crate `eddy-runtime`):
//!
//! ```ignore
//! // src/bin/my-eddy.rs — the whole eddy CLI (run, validate, send) with `functions()` inside.
//! fn main() -> std::process::ExitCode {
//!     eddy_runtime::cli::main_with(Some(my_app::functions()))
//! }
//! ```
//!
//! and route the function types to it in `module.yaml`:
//!
//! ```yaml
//! kind: io.eddy.endpoints.v1/embedded
//! spec:
//!   functions: com.example/*
//! ```
//!
//! What the runtime does with each batch, shown directly:
//!
//! ```
//! # use eddy_sdk::{BoxError, Context, Functions, Message};
//! use eddy_sdk::protocol::reqreply::to_function::{Invocation, InvocationBatchRequest, Request};
//! use eddy_sdk::protocol::{from_function, Address, BuiltIn, ToFunction};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), eddy_sdk::Error> {
//! let functions = Functions::new().register("com.example/echo", &[], |_: Context, _: Message| async {
//!     Ok::<(), BoxError>(())
//! })?;
//! let request = ToFunction {
//!     request: Some(Request::Invocation(InvocationBatchRequest {
//!         target: Some(Address { namespace: "com.example".into(), r#type: "echo".into(), id: "a".into() }),
//!         state: vec![],
//!         invocations: vec![Invocation {
//!             caller: None,
//!             argument: Some(BuiltIn::String("hi".into()).to_typed_value()),
//!         }],
//!     })),
//! };
//! let reply = functions.invoke(request).await?;
//! assert!(matches!(reply.response, Some(from_function::Response::InvocationResult(_))));
//! # Ok(()) }
//! ```
//!
//! ## Deployment 2: over HTTP (feature `http`)
//!
//! [`http::serve`] runs a hyper server; [`http::HttpService`] is a hyper and tower service for
//! your own server or axum router.
//!
//! ```no_run
//! # #[cfg(feature = "http")]
//! # async fn serve(functions: eddy_sdk::Functions) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
//! eddy_sdk::http::serve(listener, functions).await
//! # }
//! ```
//!
//! ```yaml
//! kind: io.statefun.endpoints.v2/http
//! spec:
//!   functions: com.example/*
//!   urlPathTemplate: http://127.0.0.1:9000/{function.name}
//! ```
//!
//! ## Deployment 3: AWS Lambda (feature `lambda`)
//!
//! [`lambda::run`] is the whole `main` of a Lambda function (build it with `cargo lambda
//! build`, try it locally with `cargo lambda watch`). It answers the API Gateway proxy
//! envelope, so it also works behind a Function URL or API Gateway.
//!
//! ```no_run
//! # #[cfg(feature = "lambda")]
//! # async fn run(functions: eddy_sdk::Functions) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! eddy_sdk::lambda::run(functions).await
//! # }
//! ```
//!
//! ```yaml
//! kind: io.eddy.endpoints.v1/lambda
//! spec:
//!   functions: com.example/*
//!   functionName: my-function     # name, partial ARN or ARN
//!   qualifier: live               # optional version or alias
//! ```
//!
//! ## Testing
//!
//! [`testkit::Harness`] runs a function in-process on given state and messages and returns
//! its effects, with no runtime.
//!
//! ## Module map
//!
//! | module | what |
//! |---|---|
//! | [`Functions`] (`functions.rs`) | the registry: typename → value specs + handler; `invoke`, `handle` |
//! | [`Context`] (`context.rs`) | address, caller, send, send_after, cancel, egress, storage |
//! | [`storage`] | [`ValueSpec`], [`Expiration`], typed [`Storage`] with dirty tracking |
//! | [`types`] | [`Type`]: built-ins, [`JsonType`], [`ProtobufType`], [`RawType`], your own |
//! | [`Message`], [`OutgoingMessage`] (`message.rs`) | typed accessors and builders |
//! | [`egress`] | [`EgressMessage`], [`KafkaRecord`], [`KinesisRecord`] |
//! | [`Address`] (`address.rs`) | `namespace/name/id` |
//! | `handler.rs` | the batch algorithm (missing state, ordered invocations, effects) |
//! | [`http`] | feature `http`: hyper/tower service and `serve` |
//! | [`lambda`] | feature `lambda`: Lambda handler with the API Gateway proxy envelope |
//! | [`testkit`] | run functions in tests |
//! | [`Error`] | the one error type |
//!
//! Features: `http` and `lambda` (both default). With `default-features = false` only the
//! core is compiled (no hyper server, no `lambda_runtime`): that is how the runtime embeds it.

mod address;
mod context;
pub mod egress;
mod error;
mod functions;
mod handler;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "lambda")]
pub mod lambda;
mod message;
pub mod storage;
pub mod testkit;
pub mod types;

pub use address::Address;
pub use context::Context;
pub use egress::{EgressMessage, KafkaRecord, KinesisRecord};
pub use error::{BoxError, Error};
pub use functions::Functions;
pub use message::{Message, OutgoingMessage};
pub use storage::{AnyValueSpec, Expiration, StateSpec, Storage, ValueSpec};
pub use types::{
    BoolType, DoubleType, FloatType, IntType, JsonType, LongType, ProtobufType, RawType,
    StringType, Type,
};

/// The protocol crate, re-exported: `ToFunction`, `FromFunction`, `TypedValue`, ...
pub use eddy_protocol as protocol;
