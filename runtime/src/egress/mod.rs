//! Egresses: where function output leaves the system.
//!
//! [`Egresses`] holds one writer per destination for the `io.eddy.stdout.v1/egress` and
//! `io.eddy.file.v1/egress` kinds and routes each [`EgressRecord`] by its egress id. Every
//! record becomes one JSON line (see [`crate::jsonl`] for the value rules):
//!
//! ```text
//! {"egress":"com.example/out","typename":"io.statefun.types/string","value":"Hello alice"}
//! ```
//!
//! Sending never waits: the line is rendered and written by the destination's [`sink`] task.
//! All stdout egresses share one writer (so lines never interleave), as do file egresses with
//! the same path.

pub mod sink;

use crate::ingress::connector_unavailable;
use crate::jsonl;
use crate::message::EgressRecord;
use crate::spec::EgressSpec;
use crate::{Error, Result};
use serde_json::{Map, Value};
use sink::{Destination, JsonLine, LineSink};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The egress kinds that run today.
const STDOUT_OR_FILE: &str = "io.eddy.stdout.v1/egress or io.eddy.file.v1/egress";

/// Field order of an egress line.
const EGRESS_FIELDS: [&str; 4] = ["egress", "typename", "value", "value_base64"];

impl JsonLine for EgressRecord {
    fn write_line(&self, out: &mut Vec<u8>) {
        let mut object = Map::new();
        object.insert("egress".into(), Value::String(self.egress.clone()));
        jsonl::render_typed_value(&self.value, &mut object);
        jsonl::write_object_ordered(&object, &EGRESS_FIELDS, out);
    }
}

/// The running egresses of a module: a cheap, cloneable handle (clones share the writers).
#[derive(Clone)]
pub struct Egresses {
    inner: Arc<Inner>,
}

struct Inner {
    /// Egress id → index into `sinks`.
    routes: BTreeMap<String, usize>,
    sinks: Vec<LineSink<EgressRecord>>,
}

impl Egresses {
    /// Opens every stdout and file egress of `specs` (file egresses create their folders and
    /// append). Kafka and Kinesis egresses are refused. Must be called inside a tokio runtime.
    pub fn start(specs: &[EgressSpec]) -> Result<Egresses> {
        let mut routes = BTreeMap::new();
        let mut sinks: Vec<LineSink<EgressRecord>> = Vec::new();
        for spec in specs {
            let destination = match spec {
                EgressSpec::Stdout { .. } => Destination::Stdout,
                EgressSpec::File { path, .. } => Destination::File(path.clone()),
                EgressSpec::Kafka(kafka) => {
                    return Err(connector_unavailable(
                        kafka.document,
                        "io.statefun.kafka.v1/egress",
                        &kafka.id,
                        STDOUT_OR_FILE,
                    ))
                }
                EgressSpec::Kinesis(kinesis) => {
                    return Err(connector_unavailable(
                        kinesis.document,
                        "io.statefun.kinesis.v1/egress",
                        &kinesis.id,
                        STDOUT_OR_FILE,
                    ))
                }
            };
            let index = match sinks
                .iter()
                .position(|sink| *sink.destination() == destination)
            {
                Some(index) => index,
                None => {
                    let sink = match &destination {
                        Destination::Stdout => LineSink::stdout()?,
                        Destination::File(path) => LineSink::file(path)?,
                    };
                    tracing::info!(egress = spec.id(), destination = %destination, "egress open");
                    sinks.push(sink);
                    sinks.len() - 1
                }
            };
            routes.insert(spec.id().to_string(), index);
        }
        Ok(Egresses {
            inner: Arc::new(Inner { routes, sinks }),
        })
    }

    /// True if an egress with this id is open.
    pub fn contains(&self, id: &str) -> bool {
        self.inner.routes.contains_key(id)
    }

    /// The ids of the open egresses, sorted.
    pub fn ids(&self) -> Vec<&str> {
        self.inner.routes.keys().map(String::as_str).collect()
    }

    /// Queues `record` for its egress without waiting. An unknown egress id is
    /// [`Error::Rejected`] (naming the known ids); a closed egress is [`Error::ShuttingDown`].
    pub fn send(&self, record: EgressRecord) -> Result<(), Error> {
        let Some(&index) = self.inner.routes.get(&record.egress) else {
            let known = self.ids();
            return Err(Error::Rejected(format!(
                "no egress with id {:?}: declared egresses are [{}]",
                record.egress,
                known.join(", ")
            )));
        };
        self.inner.sinks[index]
            .send(record)
            .map_err(|_| Error::ShuttingDown)
    }

    /// Records written and flushed so far, over all egresses.
    pub fn written(&self) -> u64 {
        self.inner.sinks.iter().map(LineSink::written).sum()
    }

    /// Records lost to write errors so far (each was logged with its destination).
    pub fn failed(&self) -> u64 {
        self.inner.sinks.iter().map(LineSink::failed).sum()
    }

    /// The file paths of the file egresses.
    pub fn files(&self) -> Vec<PathBuf> {
        self.inner
            .sinks
            .iter()
            .filter_map(|sink| match sink.destination() {
                Destination::File(path) => Some(path.clone()),
                Destination::Stdout => None,
            })
            .collect()
    }

    /// Writes and flushes every record sent so far, then closes every egress (for all clones:
    /// later sends fail with [`Error::ShuttingDown`]).
    pub async fn shutdown(self) {
        for sink in &self.inner.sinks {
            sink.close().await;
        }
        tracing::debug!(
            written = self.written(),
            failed = self.failed(),
            "egresses closed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::sink::tests::{temp_dir, wait_for_lines};
    use super::*;
    use eddy_protocol::{BuiltIn, TypedValue};
    use serde_json::json;

    fn record(egress: &str, value: TypedValue) -> EgressRecord {
        EgressRecord {
            egress: egress.to_string(),
            value,
        }
    }

    #[tokio::test]
    async fn writes_one_json_line_per_record() {
        let dir = temp_dir("egress");
        let path = dir.join("out/out.jsonl");
        let specs = vec![
            EgressSpec::File {
                document: 1,
                id: "com.example/out".into(),
                path: path.clone(),
            },
            EgressSpec::File {
                document: 2,
                id: "com.example/same-file".into(),
                path: path.clone(),
            },
            EgressSpec::Stdout {
                document: 3,
                id: "com.example/stdout".into(),
            },
        ];
        let egresses = Egresses::start(&specs).expect("start");
        assert!(egresses.contains("com.example/out"));
        assert!(egresses.contains("com.example/stdout"));
        assert!(!egresses.contains("com.example/nope"));
        assert_eq!(egresses.files(), vec![path.clone()]);

        egresses
            .send(record(
                "com.example/out",
                BuiltIn::String("Hello alice".into()).into(),
            ))
            .expect("send");
        let lines = wait_for_lines(&path, 1).await;
        assert_eq!(
            lines[0],
            r#"{"egress":"com.example/out","typename":"io.statefun.types/string","value":"Hello alice"}"#
        );

        egresses
            .send(record(
                "com.example/same-file",
                TypedValue::new("com.example/Blob", vec![0xff, 0x00]),
            ))
            .expect("send");
        egresses
            .send(record(
                "com.example/out",
                TypedValue::new("com.example/Json", &br#"{"a":[1,2]}"#[..]),
            ))
            .expect("send");
        let lines = wait_for_lines(&path, 3).await;
        let parsed: Vec<Value> = lines
            .iter()
            .map(|line| serde_json::from_str(line).expect("json line"))
            .collect();
        assert_eq!(
            parsed[1],
            json!({"egress": "com.example/same-file", "typename": "com.example/Blob", "value_base64": "/wA="})
        );
        assert_eq!(parsed[2]["value"], json!({"a": [1, 2]}));

        let error = egresses
            .send(record("com.example/nope", BuiltIn::Bool(true).into()))
            .expect_err("unknown egress");
        assert!(matches!(error, Error::Rejected(_)));
        let text = error.to_string();
        assert!(
            text.contains("com.example/nope") && text.contains("com.example/out"),
            "{text}"
        );

        let clone = egresses.clone();
        egresses.shutdown().await;
        assert!(matches!(
            clone.send(record("com.example/out", BuiltIn::Bool(true).into())),
            Err(Error::ShuttingDown)
        ));
        assert_eq!(clone.written(), 3);
        assert_eq!(clone.failed(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
