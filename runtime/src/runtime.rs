//! Assembly of the runtime: [`Options`] → [`Options::build`] → [`Runtime::run`], plus a cheap
//! [`Handle`] to send messages from the embedding program.
//!
//! `build` checks the module for kinds that cannot run yet and its embedded endpoints against
//! the linked-in functions, opens the dead-letter file, starts the egress writers, builds one
//! transport per endpoint (HTTP, Lambda, embedded), creates the partition workers and
//! binds the ingresses — so every configuration problem surfaces before `run`. `run` works
//! until its shutdown future resolves, then stops the ingresses, lets the workers finish the
//! work in hand (bounded by the drain timeout) and flushes egresses and dead letters.

use crate::catalog::Catalog;
use crate::deadletter::DeadLetters;
use crate::egress::Egresses;
use crate::ingress::Ingresses;
use crate::invoker::{embedded, Invoker, InvokerSetup};
use crate::message::Message;
use crate::metrics::{Metrics, Totals};
use crate::partition::machine::{Machine, MachineConfig};
use crate::partition::worker::{Drain, Worker, WorkerContext};
use crate::router::Router;
use crate::spec::{EgressSpec, IngressSpec, ModuleSpec};
use crate::{Error, Result};
use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Default dead-letter file, relative to the working directory.
pub const DEFAULT_DEAD_LETTERS: &str = "dead-letters.jsonl";

/// How to build a runtime.
#[derive(Debug, Clone)]
pub struct Options {
    pub module: ModuleSpec,
    /// Overrides the module's dead-letter path.
    pub dead_letters: Option<PathBuf>,
    /// Overrides the module's number of partition workers.
    pub workers: Option<usize>,
    /// Longest wait at shutdown for queued and in-flight work to finish.
    pub drain_timeout: Duration,
    /// The `eddy-sdk` functions linked into this binary, served by the module's
    /// `io.eddy.endpoints.v1/embedded` endpoints.
    pub embedded: Option<eddy_sdk::Functions>,
}

impl Options {
    /// Options for `module` with defaults for everything else.
    pub fn new(module: ModuleSpec) -> Options {
        Options {
            module,
            dead_letters: None,
            workers: None,
            drain_timeout: Duration::from_secs(30),
            embedded: None,
        }
    }

    /// Validates what can only be checked at start-up and wires every component.
    pub async fn build(self) -> Result<Runtime> {
        let module = self.module;
        reject_unsupported(&module)?;
        embedded::check_selectors(&module, self.embedded.as_ref())?;
        let workers = self
            .workers
            .or(module.runtime.workers)
            .unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            })
            .max(1);
        let dead_letter_path = self
            .dead_letters
            .or_else(|| module.runtime.dead_letters.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DEAD_LETTERS));
        let dead_letters = Arc::new(DeadLetters::open(&dead_letter_path)?);
        let egresses = Arc::new(Egresses::start(&module.egresses)?);
        let catalog = Arc::new(Catalog::new(module.endpoints.clone()));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let invoker = Arc::new(
            Invoker::new(
                &catalog,
                InvokerSetup {
                    module_path: module.path.clone(),
                    embedded: self.embedded,
                    shutdown: Some(shutdown_rx.clone()),
                    aws: None,
                },
            )
            .await?,
        );
        let egress_ids: Arc<HashSet<String>> = Arc::new(
            module
                .egresses
                .iter()
                .map(|egress| egress.id().to_string())
                .collect(),
        );

        let metrics = Arc::new(Metrics::new(
            workers,
            (*egresses).clone(),
            (*dead_letters).clone(),
        ));
        let (senders, inboxes): (Vec<_>, Vec<_>) =
            (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
        let router = Router::new(senders, Arc::clone(&catalog));
        let mut drains = Vec::with_capacity(workers);
        let mut partition_workers = Vec::with_capacity(workers);
        for (index, inbox) in inboxes.into_iter().enumerate() {
            let (drain_tx, drain_rx) = oneshot::channel();
            drains.push(drain_tx);
            let machine = Machine::new(MachineConfig {
                catalog: Arc::clone(&catalog),
                egress_ids: Arc::clone(&egress_ids),
                workers,
            });
            partition_workers.push(Worker::new(
                index,
                machine,
                inbox,
                drain_rx,
                WorkerContext {
                    router: router.clone(),
                    invoker: Arc::clone(&invoker),
                    egresses: Arc::clone(&egresses),
                    dead_letters: Arc::clone(&dead_letters),
                    metrics: Arc::clone(&metrics),
                },
            ));
        }

        let ingresses = Ingresses::start(
            &module.ingresses,
            router.clone(),
            shutdown_rx,
            Some(Arc::clone(&metrics)),
        )
        .await?;
        let handle = Handle {
            router,
            metrics,
            ingress_addresses: Arc::new(ingresses.http_addresses()),
        };
        tracing::info!(
            module = %module.path.display(),
            workers,
            endpoints = module.endpoints.len(),
            ingresses = module.ingresses.len(),
            egresses = module.egresses.len(),
            dead_letters = %dead_letter_path.display(),
            "runtime built"
        );
        Ok(Runtime {
            workers: partition_workers,
            drains,
            ingresses,
            egresses,
            dead_letters,
            shutdown_tx,
            drain_timeout: self.drain_timeout,
            handle,
        })
    }
}

/// Kafka and Kinesis connectors arrive in a later release: refuse to start rather than
/// silently ignoring a declared source or sink.
fn reject_unsupported(module: &ModuleSpec) -> Result<()> {
    let unsupported = |document: usize, kind: &str| {
        Error::Unsupported {
        file: module.path.clone(),
        document,
        kind: kind.to_string(),
        message: "this connector is not supported yet by `eddy run` (the file is valid; `eddy validate` accepts it). Use io.eddy.http.v1/ingress or io.eddy.file.v1/ingress, and io.eddy.stdout.v1/egress or io.eddy.file.v1/egress for now".to_string(),
    }
    };
    for ingress in &module.ingresses {
        match ingress {
            IngressSpec::Kafka(spec) => {
                return Err(unsupported(spec.document, "io.statefun.kafka.v1/ingress"))
            }
            IngressSpec::Kinesis(spec) => {
                return Err(unsupported(spec.document, "io.statefun.kinesis.v1/ingress"))
            }
            IngressSpec::Http(_) | IngressSpec::File(_) => {}
        }
    }
    for egress in &module.egresses {
        match egress {
            EgressSpec::Kafka(spec) => {
                return Err(unsupported(spec.document, "io.statefun.kafka.v1/egress"))
            }
            EgressSpec::Kinesis(spec) => {
                return Err(unsupported(spec.document, "io.statefun.kinesis.v1/egress"))
            }
            EgressSpec::Stdout { .. } | EgressSpec::File { .. } => {}
        }
    }
    Ok(())
}

/// A built runtime, ready to run.
pub struct Runtime {
    workers: Vec<Worker>,
    drains: Vec<oneshot::Sender<Drain>>,
    ingresses: Ingresses,
    egresses: Arc<Egresses>,
    dead_letters: Arc<DeadLetters>,
    shutdown_tx: watch::Sender<bool>,
    drain_timeout: Duration,
    handle: Handle,
}

impl Runtime {
    /// A handle to send messages and look up bound addresses.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Runs until `shutdown` resolves, then stops gracefully.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let Runtime {
            workers,
            drains,
            ingresses,
            egresses,
            dead_letters,
            shutdown_tx,
            drain_timeout,
            handle,
        } = self;
        let tasks: Vec<_> = workers
            .into_iter()
            .map(|worker| tokio::spawn(worker.run()))
            .collect();
        shutdown.await;
        tracing::info!("shutting down: stopping ingresses");
        let _ = shutdown_tx.send(true);
        ingresses.join().await;
        tracing::info!(timeout = ?drain_timeout, "draining partition workers");
        let deadline = tokio::time::Instant::now() + drain_timeout;
        let mut waits = Vec::new();
        for drain in drains {
            let (done, pending) = oneshot::channel();
            if drain.send(Drain { deadline, done }).is_ok() {
                waits.push(pending);
            }
        }
        let mut pending = 0;
        for wait in waits {
            pending += wait.await.unwrap_or(0);
        }
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "partition worker panicked");
            }
        }
        if pending > 0 {
            tracing::warn!(
                pending,
                "stopped with messages still queued or in flight (drain timeout reached)"
            );
        }
        match Arc::try_unwrap(egresses) {
            Ok(egresses) => egresses.shutdown().await,
            Err(_) => tracing::warn!("egress writers still referenced at shutdown"),
        }
        match Arc::try_unwrap(dead_letters) {
            Ok(dead_letters) => dead_letters.shutdown().await,
            Err(_) => tracing::warn!("dead-letter writer still referenced at shutdown"),
        }
        let totals = handle.metrics();
        tracing::info!(
            messages = totals.messages,
            invocations = totals.invocations,
            failed_batches = totals.failed_batches,
            egress_records = totals.egress_records,
            dead_letters = totals.dead_letters,
            "runtime stopped"
        );
        Ok(())
    }
}

/// A cheap handle to a runtime.
#[derive(Clone)]
pub struct Handle {
    router: Router,
    metrics: Arc<Metrics>,
    ingress_addresses: Arc<Vec<(String, SocketAddr)>>,
}

impl Handle {
    /// Sends a message as an ingress would; waits while its address's mailbox is full.
    pub async fn send(&self, message: Message) -> Result<()> {
        self.router.send(message).await
    }

    /// The runtime's counters so far.
    pub fn metrics(&self) -> Totals {
        self.metrics.totals()
    }

    /// The bound address of each HTTP ingress, by ingress id.
    pub fn http_ingress_addresses(&self) -> &[(String, SocketAddr)] {
        &self.ingress_addresses
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use eddy_protocol::BuiltIn;
    use eddy_sdk::{BoxError, Functions, LongType, ValueSpec};
    use std::path::Path;
    use std::sync::Mutex;
    use std::time::Instant;

    const SEEN: ValueSpec<LongType> = ValueSpec::new("seen", LongType);

    /// Embedded invocations that finish on their first poll are applied inline by the worker;
    /// those that wait continue as tasks. Mixed on the same addresses, neither kind may break
    /// per-address order, run twice or be lost, and state threads through both.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_invocations_inline_or_waiting_keep_order_and_state() {
        type Log = Arc<Mutex<Vec<(String, i64, i64)>>>;
        let log: Log = Arc::default();
        let recorder = Arc::clone(&log);
        let functions = Functions::new()
            .register("test/count", &[&SEEN], move |context, message| {
                let log = Arc::clone(&recorder);
                async move {
                    let n = message.as_type(&LongType)?;
                    if n % 3 == 0 {
                        // Pending once: this invocation continues as a task.
                        tokio::task::yield_now().await;
                    }
                    if n % 7 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    let storage = context.storage();
                    let seen = storage.get(&SEEN)?.unwrap_or(0) + 1;
                    storage.set(&SEEN, &seen)?;
                    let id = context.address().id().to_string();
                    log.lock().map_err(|_| "log poisoned")?.push((id, n, seen));
                    Ok::<(), BoxError>(())
                }
            })
            .expect("register test/count");
        let module = crate::spec::parse_str(
            Path::new("module.yaml"),
            "kind: io.eddy.endpoints.v1/embedded\nspec:\n  functions: test/*\n  maxNumBatchRequests: 4\n",
        )
        .expect("module");
        let dir = std::env::temp_dir().join(format!("eddy-embedded-inline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut options = Options::new(module);
        options.embedded = Some(functions);
        options.workers = Some(2);
        options.dead_letters = Some(dir.join("dead-letters.jsonl"));
        let runtime = options.build().await.expect("build");
        let handle = runtime.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let running = tokio::spawn(runtime.run(async {
            let _ = stopped.await;
        }));

        const KEYS: i64 = 5;
        const PER_KEY: i64 = 60;
        for n in 0..KEYS * PER_KEY {
            let target = Address::parse(&format!("test/count/k{}", n % KEYS)).expect("address");
            let message = Message {
                target,
                caller: None,
                argument: BuiltIn::Long(n).into(),
            };
            handle.send(message).await.expect("send");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while handle.metrics().processed < (KEYS * PER_KEY) as u64 {
            assert!(
                Instant::now() < deadline,
                "only {} of {} processed",
                handle.metrics().processed,
                KEYS * PER_KEY
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = stop.send(());
        running.await.expect("join").expect("run");
        let _ = std::fs::remove_dir_all(&dir);

        let log = log.lock().expect("log").clone();
        for key in 0..KEYS {
            let id = format!("k{key}");
            let seen: Vec<(i64, i64)> = log
                .iter()
                .filter(|(entry, _, _)| *entry == id)
                .map(|(_, n, seen)| (*n, *seen))
                .collect();
            let expected: Vec<(i64, i64)> = (0..PER_KEY).map(|i| (i * KEYS + key, i + 1)).collect();
            assert_eq!(seen, expected, "messages and state of {id}");
        }
        assert_eq!(handle.metrics().failed_batches, 0);
    }
}
