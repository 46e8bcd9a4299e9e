//! Ingresses: where messages enter the system.
//!
//! [`Ingresses::start`] binds every HTTP ingress ([`http`], `io.eddy.http.v1/ingress`; binary
//! batch bodies are read by [`protobuf`]) and
//! starts every file ingress ([`mod@file`], `io.eddy.file.v1/ingress`). Both turn outside input
//! into [`Message`]s with no caller and hand them to the [`Router`], which rejects unknown
//! function types at the door and makes the sender wait only while the target address's
//! mailbox is full. When the shutdown signal flips to `true`, HTTP servers stop accepting and
//! finish their in-flight requests, file readers stop reading, and [`Ingresses::join`] returns
//! once all of them are done.

pub mod file;
pub mod http;
pub mod protobuf;

use crate::message::Message;
use crate::metrics::Metrics;
use crate::router::{Admission, Router};
use crate::spec::IngressSpec;
use crate::{Error, Result};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Most admissions a file ingress keeps in flight.
pub const FILE_ADMISSION_WINDOW: usize = 1024;

/// The running ingresses of a module.
pub struct Ingresses {
    http: Vec<(String, SocketAddr)>,
    tasks: Vec<(String, JoinHandle<()>)>,
}

impl Ingresses {
    /// Binds every HTTP ingress (failing with [`Error::Io`] naming the address if it is taken)
    /// and opens every file ingress (failing with [`Error::Io`] naming the path), then starts
    /// serving and reading. Kafka and Kinesis ingresses are refused. Everything runs until
    /// `shutdown` turns `true` (or its sender is dropped).
    pub async fn start(
        specs: &[IngressSpec],
        router: Router,
        shutdown: watch::Receiver<bool>,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Ingresses> {
        // Acquire every resource first, so a failure leaves nothing running.
        let mut listeners = Vec::new();
        let mut files = Vec::new();
        for spec in specs {
            match spec {
                IngressSpec::Http(http_spec) => {
                    listeners.push((http_spec, http::bind(http_spec).await?));
                }
                IngressSpec::File(file_spec) => {
                    files.push((file_spec, file::open(file_spec)?));
                }
                IngressSpec::Kafka(kafka) => {
                    return Err(connector_unavailable(
                        kafka.document,
                        "io.statefun.kafka.v1/ingress",
                        &kafka.id,
                        "io.eddy.http.v1/ingress or io.eddy.file.v1/ingress",
                    ))
                }
                IngressSpec::Kinesis(kinesis) => {
                    return Err(connector_unavailable(
                        kinesis.document,
                        "io.statefun.kinesis.v1/ingress",
                        &kinesis.id,
                        "io.eddy.http.v1/ingress or io.eddy.file.v1/ingress",
                    ))
                }
            }
        }
        let mut ingresses = Ingresses {
            http: Vec::new(),
            tasks: Vec::new(),
        };
        for (spec, listener) in listeners {
            let address = listener.local_addr().map_err(|error| {
                Error::io(format!("http ingress {}: local address", spec.id), error)
            })?;
            tracing::info!(ingress = %spec.id, %address, "http ingress listening");
            ingresses.http.push((spec.id.clone(), address));
            let task = tokio::spawn(http::serve(
                listener,
                http::HttpIngress::new(spec, router.clone(), shutdown.clone())
                    .with_metrics(metrics.clone()),
            ));
            ingresses.tasks.push((spec.id.clone(), task));
        }
        for (spec, opened) in files {
            let task = tokio::spawn(file::run(
                spec.id.clone(),
                spec.path.clone(),
                opened,
                router.clone(),
                shutdown.clone(),
            ));
            ingresses.tasks.push((spec.id.clone(), task));
        }
        Ok(ingresses)
    }

    /// The id and bound address of every HTTP ingress (the real port when the spec asked for
    /// port 0).
    pub fn http_addresses(&self) -> Vec<(String, SocketAddr)> {
        self.http.clone()
    }

    /// Waits until every ingress task has finished: after shutdown, HTTP servers have
    /// answered their in-flight requests and file readers have stopped. File ingresses also
    /// finish on their own at the end of their file.
    pub async fn join(self) {
        for (id, task) in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(ingress = %id, %error, "ingress task failed");
            }
        }
    }
}

/// The error for a connector kind that is validated but cannot run yet.
pub(crate) fn connector_unavailable(document: usize, kind: &str, id: &str, instead: &str) -> Error {
    Error::Unsupported {
        file: PathBuf::from("module.yaml"),
        document,
        kind: kind.to_string(),
        message: format!("{id}: this connector is not available yet; use {instead}"),
    }
}

/// Resolves once `shutdown` is `true` or its sender is gone.
pub(crate) async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Sends messages in call order while keeping up to `window` admissions in flight.
///
/// [`Router::submit`] checks each message and hands it to its worker at once — so messages
/// reach their workers in call order, and so per address in order — and `Admissions` only
/// waits, for the oldest admission, when `window` of them are outstanding.
pub(crate) struct Admissions<'r> {
    router: &'r Router,
    pending: VecDeque<Admission>,
    window: usize,
}

impl<'r> Admissions<'r> {
    /// Admissions through `router` with at most `window` (at least 1) outstanding.
    pub(crate) fn new(router: &'r Router, window: usize) -> Admissions<'r> {
        Admissions {
            router,
            pending: VecDeque::new(),
            window: window.max(1),
        }
    }

    /// Delivers `message` now; waits first while `window` admissions are outstanding.
    /// Cancel-safe between messages: a cancelled wait leaves the outstanding ones in place.
    pub(crate) async fn send(&mut self, message: Message) -> Result<(), Error> {
        while self.pending.len() >= self.window {
            if let Some(oldest) = self.pending.front_mut() {
                oldest.admitted().await?;
            }
            self.pending.pop_front();
        }
        self.pending.push_back(self.router.submit(message)?);
        Ok(())
    }

    /// Waits for every outstanding admission; the first error wins.
    pub(crate) async fn finish(&mut self) -> Result<(), Error> {
        while let Some(oldest) = self.pending.front_mut() {
            oldest.admitted().await?;
            self.pending.pop_front();
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::address::Address;
    use crate::catalog::Catalog;
    use crate::partition::{Ack, Event};
    use crate::spec::{EndpointSpec, EndpointTarget, FunctionSelector, HttpTarget, TransportSpec};
    use eddy_protocol::BuiltIn;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::mpsc;

    /// A catalog serving `com.example/*` (over HTTP, never called in these tests).
    pub(crate) fn example_catalog() -> Arc<Catalog> {
        let endpoint = EndpointSpec {
            document: 0,
            functions: FunctionSelector::Namespace("com.example".into()),
            max_num_batch_requests: 1000,
            target: EndpointTarget::Http(HttpTarget {
                url_path_template: "http://127.0.0.1:1/{function.name}".into(),
                transport: TransportSpec::default(),
            }),
        };
        Arc::new(Catalog::new(vec![endpoint]))
    }

    /// A router with one worker whose inbox the test reads; functions of `com.example/*` exist.
    pub(crate) fn router_with_inbox() -> (Router, mpsc::UnboundedReceiver<Event>) {
        let (inbox, events) = mpsc::unbounded_channel();
        (Router::new(vec![inbox], example_catalog()), events)
    }

    /// The next delivered message and its admission signal, or a panic after 10 s.
    pub(crate) async fn next_delivery(
        events: &mut mpsc::UnboundedReceiver<Event>,
    ) -> (Message, Ack) {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("a delivery within 10 s")
            .expect("inbox open");
        match event {
            Event::Deliver(envelope) => (envelope.message, envelope.ack.expect("ingress ack")),
            other => panic!("expected a delivery, got {other:?}"),
        }
    }

    /// The next group of messages delivered under one admission signal, or a panic after 10 s.
    pub(crate) async fn next_deliveries(
        events: &mut mpsc::UnboundedReceiver<Event>,
    ) -> (Vec<Message>, Ack) {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("a delivery within 10 s")
            .expect("inbox open");
        match event {
            Event::DeliverAll { messages, ack } => (messages, ack.expect("ingress ack")),
            other => panic!("expected a group delivery, got {other:?}"),
        }
    }

    /// A worker stand-in that admits every message at once and reports it.
    pub(crate) fn admit_everything(
        mut events: mpsc::UnboundedReceiver<Event>,
    ) -> mpsc::UnboundedReceiver<Message> {
        let (report, reports) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    Event::Deliver(envelope) => {
                        if let Some(ack) = envelope.ack {
                            ack.release();
                        }
                        let _ = report.send(envelope.message);
                    }
                    Event::DeliverAll { messages, ack } => {
                        if let Some(ack) = ack {
                            ack.release();
                        }
                        for message in messages {
                            let _ = report.send(message);
                        }
                    }
                }
            }
        });
        reports
    }

    fn message(id: &str, n: i64) -> Message {
        Message {
            target: Address::parse(&format!("com.example/f/{id}")).expect("address"),
            caller: None,
            argument: BuiltIn::Long(n).into(),
        }
    }

    #[tokio::test]
    async fn admissions_keep_order_and_bound_the_window() {
        let (router, mut events) = router_with_inbox();
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        let sender = tokio::spawn(async move {
            let mut admissions = Admissions::new(&router, 4);
            for n in 0..10 {
                admissions.send(message("a", n)).await?;
                counter.store(n as usize + 1, std::sync::atomic::Ordering::SeqCst);
            }
            admissions.finish().await
        });
        // The sender delivers 4 without waiting, then waits for the oldest admission.
        let mut acks = VecDeque::new();
        for n in 0..4 {
            let (delivered, ack) = next_delivery(&mut events).await;
            assert_eq!(delivered, message("a", n));
            acks.push_back(ack);
        }
        // Current-thread runtime: one yield lets the sender run until it blocks.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert!(events.is_empty(), "window of 4 exceeded");
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 4);
        // Releasing the oldest lets exactly one more in.
        acks.pop_front().expect("ack").release();
        let (delivered, ack) = next_delivery(&mut events).await;
        assert_eq!(delivered, message("a", 4));
        acks.push_back(ack);
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert!(events.is_empty(), "window of 4 exceeded after one release");
        for ack in acks {
            ack.release();
        }
        for n in 5..10 {
            let (delivered, ack) = next_delivery(&mut events).await;
            assert_eq!(delivered, message("a", n));
            ack.release();
        }
        sender.await.expect("join").expect("all admitted");
    }

    #[tokio::test]
    async fn admissions_report_a_closed_worker() {
        let (router, events) = router_with_inbox();
        drop(events);
        let mut admissions = Admissions::new(&router, 4);
        assert!(matches!(
            admissions.send(message("a", 1)).await,
            Err(Error::ShuttingDown)
        ));
    }

    #[tokio::test]
    async fn admissions_fail_when_an_ack_is_dropped() {
        let (router, mut events) = router_with_inbox();
        let sender = tokio::spawn(async move {
            let mut admissions = Admissions::new(&router, 4);
            admissions.send(message("a", 1)).await?;
            admissions.finish().await
        });
        let (_, ack) = next_delivery(&mut events).await;
        drop(ack);
        assert!(matches!(
            sender.await.expect("join"),
            Err(Error::ShuttingDown)
        ));
    }
}
