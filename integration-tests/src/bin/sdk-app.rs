//! `sdk-app`: the end-to-end test functions written with Eddy's Rust SDK (`eddy-sdk`), served
//! with the SDK's HTTP service.
//!
//! The same function types and behaviour as `functions/statefun_app.py` (Apache's Python SDK),
//! so the scenarios of `src/scenarios.rs` run unchanged against either app, and the two can
//! serve function types of one module side by side. Every function lives in namespace `e2e` and
//! writes its observations to the egress `e2e/out` as strings.
//!
//! `sdk-app --port 0` picks a free port and prints `sdk-app: serving on 127.0.0.1:<port>` on
//! stderr once it listens; `sdk-app --lambda` serves the same functions as a Lambda handler
//! (`eddy_sdk::lambda::run`, the Runtime API from `AWS_LAMBDA_RUNTIME_API`). Any path works:
//! the target is inside the request. Ping and pong log each ball they catch (`function=e2e/ping id=... n=...`), so mixed-deployment tests can tell
//! which app served which type.

use anyhow::Context as _;
use clap::Parser;
use eddy_sdk::{
    BoolType, BoxError, Context, DoubleType, EgressMessage, FloatType, Functions, IntType,
    JsonType, LongType, Message, OutgoingMessage, StringType, ValueSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

const EGRESS: &str = "e2e/out";

/// Writes one string record to the test egress.
fn emit(context: &Context, text: impl AsRef<str>) -> Result<(), BoxError> {
    context.send_egress(EgressMessage::string(EGRESS, text)?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// e2e/counter: counts the messages of each address (of any type); egresses "<id>:<count>".
// ---------------------------------------------------------------------------------------------
const COUNT: ValueSpec<IntType> = ValueSpec::new("count", IntType);

async fn counter(context: Context, _message: Message) -> Result<(), BoxError> {
    let count = context.storage().get(&COUNT)?.unwrap_or(0) + 1;
    context.storage().set(&COUNT, &count)?;
    emit(&context, format!("{}:{count}", context.address().id()))
}

// ---------------------------------------------------------------------------------------------
// e2e/types: one state value of every built-in type plus a JSON type. Each message (a long n)
// updates all of them deterministically; n == 0 deletes them all. Egresses a JSON summary with
// the exact bits of the float and the double.
// ---------------------------------------------------------------------------------------------
#[derive(Debug, Default, Serialize, Deserialize)]
struct Summary {
    count: u64,
    history: Vec<i64>,
}

const I: ValueSpec<IntType> = ValueSpec::new("i", IntType);
const L: ValueSpec<LongType> = ValueSpec::new("l", LongType);
const F: ValueSpec<FloatType> = ValueSpec::new("f", FloatType);
const D: ValueSpec<DoubleType> = ValueSpec::new("d", DoubleType);
const B: ValueSpec<BoolType> = ValueSpec::new("b", BoolType);
const S: ValueSpec<StringType> = ValueSpec::new("s", StringType);
const J: ValueSpec<JsonType<Summary>> = ValueSpec::new("j", JsonType::new("e2e/summary"));

async fn types(context: Context, message: Message) -> Result<(), BoxError> {
    let n = message.as_long()?;
    let storage = context.storage();
    let id = context.address().id();
    if n == 0 {
        storage.remove(&I)?;
        storage.remove(&L)?;
        storage.remove(&F)?;
        storage.remove(&D)?;
        storage.remove(&B)?;
        storage.remove(&S)?;
        storage.remove(&J)?;
        return emit(&context, json!({"id": id, "reset": true}).to_string());
    }
    let i = storage.get(&I)?.unwrap_or(0) + i32::try_from(n)?;
    let l = storage.get(&L)?.unwrap_or(0) + n * 10_000_000_000;
    let f = storage.get(&F)?.unwrap_or(0.0) + 0.5;
    let d = storage.get(&D)?.unwrap_or(0.0) + 0.1;
    let b = !storage.get(&B)?.unwrap_or(false);
    let s = storage.get(&S)?.unwrap_or_default() + &format!("{n}\u{e9};");
    let mut j = storage.get(&J)?.unwrap_or_default();
    j.count += 1;
    j.history.push(n);
    storage.set(&I, &i)?;
    storage.set(&L, &l)?;
    storage.set(&F, &f)?;
    storage.set(&D, &d)?;
    storage.set(&B, &b)?;
    storage.set(&S, &s)?;
    storage.set(&J, &j)?;
    let summary = json!({
        "id": id, "i": i, "l": l, "f": f, "d": d, "b": b, "s": s, "j": j,
        "f_bits": f.to_bits(), "d_bits": d.to_bits(),
    });
    emit(&context, summary.to_string())
}

// ---------------------------------------------------------------------------------------------
// e2e/expiring: "write" increments both counters, "read" only reads them. `written` expires 1 s
// after its last write, `called` 1 s after the last call. Egresses "w=<n>,c=<n>" (0 = absent).
// ---------------------------------------------------------------------------------------------
const WRITTEN: ValueSpec<IntType> =
    ValueSpec::new("written", IntType).expire_after_write(Duration::from_secs(1));
const CALLED: ValueSpec<IntType> =
    ValueSpec::new("called", IntType).expire_after_call(Duration::from_secs(1));

async fn expiring(context: Context, message: Message) -> Result<(), BoxError> {
    let storage = context.storage();
    match message.as_string()?.as_str() {
        "write" => {
            storage.set(&WRITTEN, &(storage.get(&WRITTEN)?.unwrap_or(0) + 1))?;
            storage.set(&CALLED, &(storage.get(&CALLED)?.unwrap_or(0) + 1))?;
        }
        "read" => {}
        other => return Err(format!("unknown command {other:?}").into()),
    }
    let written = storage.get(&WRITTEN)?.unwrap_or(0);
    let called = storage.get(&CALLED)?.unwrap_or(0);
    emit(&context, format!("w={written},c={called}"))
}

// ---------------------------------------------------------------------------------------------
// e2e/delayed: "schedule:<token>:<ms>" sends itself "fire:<token>" after <ms> with cancellation
// token <token>; "cancel:<token>" cancels it; "fire:<token>" egresses "fired:<token>".
// Schedules and cancels are acknowledged with "scheduled:<token>" / "cancelled:<token>".
// ---------------------------------------------------------------------------------------------
async fn delayed(context: Context, message: Message) -> Result<(), BoxError> {
    let command = message.as_string()?;
    let (verb, rest) = command.split_once(':').unwrap_or((command.as_str(), ""));
    match verb {
        "schedule" => {
            let (token, millis) = rest
                .split_once(':')
                .ok_or_else(|| format!("expected schedule:<token>:<ms>, got {command:?}"))?;
            let fire = OutgoingMessage::string(context.address().clone(), format!("fire:{token}"));
            context.send_after_with_token(Duration::from_millis(millis.parse()?), token, fire)?;
            emit(&context, format!("scheduled:{token}"))
        }
        "cancel" => {
            context.cancel_delayed_message(rest)?;
            emit(&context, format!("cancelled:{rest}"))
        }
        "fire" => emit(&context, format!("fired:{rest}")),
        _ => Err(format!("unknown command {command:?}").into()),
    }
}

// ---------------------------------------------------------------------------------------------
// e2e/ping <-> e2e/pong: a ball {"n": n, "limit": L} goes back and forth with n + 1 each hop
// until ping holds n >= L; ping then egresses "done:<id>:<n>:<hits>" where hits counts the
// ping's own invocations. Each side checks that the caller is the other side, same id.
// ---------------------------------------------------------------------------------------------
#[derive(Debug, Serialize, Deserialize)]
struct Ball {
    n: i64,
    limit: i64,
}

const BALL: JsonType<Ball> = JsonType::new("e2e/ball");
const HITS: ValueSpec<LongType> = ValueSpec::new("hits", LongType);

fn check_caller(context: &Context, expected: &str) -> Result<(), BoxError> {
    match context.caller() {
        Some(caller) if caller.is_type(expected) && caller.id() == context.address().id() => Ok(()),
        other => Err(format!(
            "unexpected caller {other:?}, expected {expected}/{}",
            context.address().id()
        )
        .into()),
    }
}

async fn ping(context: Context, message: Message) -> Result<(), BoxError> {
    let mut ball = message.as_type(&BALL)?;
    if ball.n > 0 {
        check_caller(&context, "e2e/pong")?;
    } else if let Some(caller) = context.caller() {
        return Err(format!("the first ball comes from an ingress, not from {caller}").into());
    }
    let hits = context.storage().get(&HITS)?.unwrap_or(0) + 1;
    context.storage().set(&HITS, &hits)?;
    let id = context.address().id().to_string();
    tracing::info!(function = %"e2e/ping", id = %id, n = ball.n, "caught the ball");
    if ball.n >= ball.limit {
        return emit(&context, format!("done:{id}:{}:{hits}", ball.n));
    }
    ball.n += 1;
    let to = eddy_sdk::Address::new("e2e/pong", id)?;
    context.send(OutgoingMessage::new(to, &BALL, &ball)?);
    Ok(())
}

async fn pong(context: Context, message: Message) -> Result<(), BoxError> {
    check_caller(&context, "e2e/ping")?;
    let mut ball = message.as_type(&BALL)?;
    tracing::info!(function = %"e2e/pong", id = %context.address().id(), n = ball.n, "caught the ball");
    ball.n += 1;
    let to = eddy_sdk::Address::new("e2e/ping", context.address().id())?;
    context.send(OutgoingMessage::new(to, &BALL, &ball)?);
    Ok(())
}

/// Every function of the app.
fn functions() -> Result<Functions, eddy_sdk::Error> {
    Functions::new()
        .register("e2e/counter", &[&COUNT], counter)?
        .register("e2e/types", &[&I, &L, &F, &D, &B, &S, &J], types)?
        .register("e2e/expiring", &[&WRITTEN, &CALLED], expiring)?
        .register("e2e/delayed", &[], delayed)?
        .register("e2e/ping", &[&HITS], ping)?
        .register("e2e/pong", &[], pong)
}

/// The end-to-end test functions, written with eddy-sdk, served over HTTP (or as a Lambda
/// handler with --lambda).
#[derive(Debug, Parser)]
#[command(name = "sdk-app")]
struct Cli {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Serve as an AWS Lambda handler (the Runtime API in AWS_LAMBDA_RUNTIME_API) instead.
    #[arg(long)]
    lambda: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let functions = functions().context("registering the functions")?;
    if cli.lambda {
        eprintln!("sdk-app: serving the lambda runtime api");
        return eddy_sdk::lambda::run(functions)
            .await
            .map_err(anyhow::Error::from_boxed);
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", cli.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", cli.port))?;
    let local = listener.local_addr().context("reading the bound address")?;
    eprintln!("sdk-app: serving on {local}");
    eddy_sdk::http::serve(listener, functions)
        .await
        .context("serving HTTP")
}
