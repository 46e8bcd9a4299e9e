//! The file ingress (`io.eddy.file.v1/ingress`): a file of JSON lines, read once at start-up.
//!
//! Lines are read in order and sent in order ([`crate::jsonl`] format), keeping up to
//! [`super::FILE_ADMISSION_WINDOW`] admissions in flight rather than one at a time. An invalid
//! line (bad JSON, bad field, unknown function type) is logged with the path and line number
//! and skipped; blank lines are ignored. At the end a summary is logged (sent N, skipped M).
//! Reading stops early when the runtime shuts down.

use super::{shutdown_requested, Admissions, FILE_ADMISSION_WINDOW};
use crate::jsonl;
use crate::router::Router;
use crate::spec::FileIngressSpec;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

/// Opens the file of `spec` (at once, so a missing file fails start-up naming the path).
pub(crate) fn open(spec: &FileIngressSpec) -> Result<tokio::fs::File> {
    std::fs::File::open(&spec.path)
        .map(tokio::fs::File::from_std)
        .map_err(|error| {
            Error::io(
                format!(
                    "file ingress {}: cannot open {}",
                    spec.id,
                    spec.path.display()
                ),
                error,
            )
        })
}

/// What one run of a file ingress did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Messages sent (and admitted, unless stopped by shutdown).
    pub sent: u64,
    /// Invalid lines skipped.
    pub skipped: u64,
    /// True if shutdown or a closed runtime cut the reading short.
    pub stopped_early: bool,
}

/// Reads `file` to its end (or until shutdown), sending every valid line, then logs a summary.
pub(crate) async fn run(
    id: String,
    path: PathBuf,
    file: tokio::fs::File,
    router: Router,
    shutdown: watch::Receiver<bool>,
) {
    let summary = read_and_send(&id, &path, file, &router, shutdown).await;
    tracing::info!(
        ingress = %id,
        path = %path.display(),
        sent = summary.sent,
        skipped = summary.skipped,
        stopped_early = summary.stopped_early,
        "file ingress done"
    );
}

async fn read_and_send(
    id: &str,
    path: &Path,
    file: tokio::fs::File,
    router: &Router,
    mut shutdown: watch::Receiver<bool>,
) -> Summary {
    let mut summary = Summary::default();
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut admissions = Admissions::new(router, FILE_ADMISSION_WINDOW);
    let mut raw = Vec::new();
    let mut lines = jsonl::LineParser::default();
    let mut number = 0u64;
    loop {
        if *shutdown.borrow() {
            summary.stopped_early = true;
            return summary;
        }
        raw.clear();
        match reader.read_until(b'\n', &mut raw).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                tracing::error!(ingress = %id, path = %path.display(), line = number + 1, %error, "cannot read the file; stopping");
                summary.stopped_early = true;
                break;
            }
        }
        number += 1;
        let line = match std::str::from_utf8(&raw) {
            Ok(line) => line.trim_end_matches(['\n', '\r']),
            Err(error) => {
                skip(
                    id,
                    path,
                    number,
                    &format!("not UTF-8: {error}"),
                    &mut summary,
                );
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let message = match lines.parse(line) {
            Ok(message) => message,
            Err(error) => {
                skip(id, path, number, &error, &mut summary);
                continue;
            }
        };
        if let Err(error) = router.check(&message) {
            skip(id, path, number, &error.to_string(), &mut summary);
            continue;
        }
        let sent = tokio::select! {
            sent = admissions.send(message) => sent,
            _ = shutdown_requested(&mut shutdown) => {
                summary.stopped_early = true;
                return summary;
            }
        };
        if let Err(error) = sent {
            tracing::warn!(ingress = %id, path = %path.display(), line = number, %error, "file ingress stopped");
            summary.stopped_early = true;
            return summary;
        }
        summary.sent += 1;
    }
    let finished = tokio::select! {
        finished = admissions.finish() => finished,
        _ = shutdown_requested(&mut shutdown) => Err(Error::ShuttingDown),
    };
    if let Err(error) = finished {
        tracing::warn!(ingress = %id, path = %path.display(), %error, "file ingress stopped before every message was admitted");
        summary.stopped_early = true;
    }
    summary
}

fn skip(id: &str, path: &Path, number: u64, error: &str, summary: &mut Summary) {
    tracing::warn!(ingress = %id, path = %path.display(), line = number, %error, "skipping an invalid line");
    summary.skipped += 1;
}

#[cfg(test)]
mod tests {
    use super::super::tests::{admit_everything, next_delivery, router_with_inbox};
    use super::super::Ingresses;
    use super::*;
    use crate::egress::sink::tests::temp_dir;
    use crate::message::Argument;
    use crate::spec::IngressSpec;
    use eddy_protocol::{BuiltIn, TypedValue};

    fn spec(path: &Path) -> FileIngressSpec {
        FileIngressSpec {
            document: 1,
            id: "com.example/file".into(),
            path: path.to_path_buf(),
        }
    }

    fn write_file(name: &str, content: &[u8]) -> PathBuf {
        let dir = temp_dir(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("in.jsonl");
        std::fs::write(&path, content).expect("write");
        path
    }

    #[tokio::test]
    async fn sends_valid_lines_in_order_and_skips_the_rest() {
        let mut content = Vec::new();
        content.extend_from_slice(b"{\"target\":\"com.example/f/a\",\"value\":1}\n");
        content.extend_from_slice(b"not json\n");
        content.extend_from_slice(b"\n");
        content.extend_from_slice(b"{\"target\":\"nobody/f/a\",\"value\":2}\n");
        content.extend_from_slice(b"\xff\xfe\n");
        content.extend_from_slice(b"{\"target\":\"com.example/f/b\",\"typename\":\"com.example/T\",\"value\":{\"k\":true}}\r\n");
        content
            .extend_from_slice(b"{\"target\":\"com.example/f/a\",\"value\":\"last, no newline\"}");
        let path = write_file("file-ingress", &content);
        let (router, events) = router_with_inbox();
        let mut delivered = admit_everything(events);
        let (_stop, shutdown) = watch::channel(false);
        let file = open(&spec(&path)).expect("open");
        let summary = read_and_send("com.example/file", &path, file, &router, shutdown).await;
        assert_eq!(
            summary,
            Summary {
                sent: 3,
                skipped: 3,
                stopped_early: false
            }
        );
        let expected: [(&str, TypedValue); 3] = [
            ("com.example/f/a", BuiltIn::Long(1).into()),
            (
                "com.example/f/b",
                TypedValue::new("com.example/T", &br#"{"k":true}"#[..]),
            ),
            (
                "com.example/f/a",
                BuiltIn::String("last, no newline".into()).into(),
            ),
        ];
        for (target, argument) in expected {
            let message = delivered.recv().await.expect("delivered");
            assert_eq!(message.target.to_string(), target);
            assert_eq!(message.caller, None);
            assert_eq!(message.argument, argument);
        }
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[tokio::test]
    async fn keeps_a_window_of_admissions_and_joins_at_the_end() {
        let lines = FILE_ADMISSION_WINDOW + 500;
        let content: String = (0..lines)
            .map(|n| format!("{{\"target\":\"com.example/f/a\",\"value\":{n}}}\n"))
            .collect();
        let path = write_file("file-window", content.as_bytes());
        let (router, mut events) = router_with_inbox();
        let (_stop, shutdown) = watch::channel(false);
        let ingresses = Ingresses::start(&[IngressSpec::File(spec(&path))], router, shutdown, None)
            .await
            .expect("start");
        // The whole window arrives before any admission is released.
        let mut acks = Vec::new();
        for n in 0..FILE_ADMISSION_WINDOW {
            let (message, ack) = next_delivery(&mut events).await;
            assert_eq!(message.argument, Argument::from(BuiltIn::Long(n as i64)));
            acks.push(ack);
        }
        for ack in acks {
            ack.release();
        }
        for n in FILE_ADMISSION_WINDOW..lines {
            let (message, ack) = next_delivery(&mut events).await;
            assert_eq!(message.argument, Argument::from(BuiltIn::Long(n as i64)));
            ack.release();
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), ingresses.join())
            .await
            .expect("the file ingress finishes at the end of its file");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[tokio::test]
    async fn shutdown_stops_a_blocked_reader() {
        let content: String = (0..FILE_ADMISSION_WINDOW + 10)
            .map(|n| format!("{{\"target\":\"com.example/f/a\",\"value\":{n}}}\n"))
            .collect();
        let path = write_file("file-stop", content.as_bytes());
        let (router, mut events) = router_with_inbox();
        let (stop, shutdown) = watch::channel(false);
        let ingresses = Ingresses::start(&[IngressSpec::File(spec(&path))], router, shutdown, None)
            .await
            .expect("start");
        let mut acks = Vec::new();
        for _ in 0..FILE_ADMISSION_WINDOW {
            acks.push(next_delivery(&mut events).await.1);
        }
        // The window is full and nothing is released: only shutdown ends the reader.
        stop.send_replace(true);
        tokio::time::timeout(std::time::Duration::from_secs(10), ingresses.join())
            .await
            .expect("stops on shutdown");
        drop(acks);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[tokio::test]
    async fn a_missing_file_fails_start_naming_the_path() {
        let path = temp_dir("file-missing").join("nope.jsonl");
        let (router, _events) = router_with_inbox();
        let (_stop, shutdown) = watch::channel(false);
        let error = Ingresses::start(&[IngressSpec::File(spec(&path))], router, shutdown, None)
            .await
            .err()
            .expect("missing file");
        assert!(matches!(error, Error::Io { .. }));
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }
}
