//! The one JSON-lines writer behind every stdout/file egress and the dead-letter file.
//!
//! A [`LineSink`] is a cheap, cloneable handle on one writer task. The task owns a buffered
//! writer and an unbounded channel: [`LineSink::send`] never waits, the item is rendered to
//! JSON by the task (off the caller's hot path), and the buffer is flushed whenever the
//! channel is momentarily empty (or every [`MAX_LINES_PER_FLUSH`] lines under load). So a
//! reader tailing the file sees lines promptly, and a busy sink still writes in large chunks.
//!
//! Write errors are logged with the destination and counted; the task never panics and keeps
//! going (a full disk may recover). [`LineSink::close`] flushes everything sent before it.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};

/// Most lines written between two explicit flushes while the channel stays busy.
pub const MAX_LINES_PER_FLUSH: usize = 1024;

/// Buffer size of a sink's writer.
const BUFFER_BYTES: usize = 64 * 1024;

/// Something a [`LineSink`] writes as one line.
pub trait JsonLine: Send + 'static {
    /// Appends this item as one line of compact JSON to `out`, without the newline.
    fn write_line(&self, out: &mut Vec<u8>);
}

/// Where a sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Stdout => write!(f, "stdout"),
            Destination::File(path) => write!(f, "{}", path.display()),
        }
    }
}

enum Command<T> {
    Line(T),
    /// Flush, reply, and stop.
    Close(oneshot::Sender<()>),
}

#[derive(Default)]
struct Stats {
    written: AtomicU64,
    failed: AtomicU64,
}

/// A handle on one JSON-lines writer task (clones share the task).
pub struct LineSink<T> {
    commands: mpsc::UnboundedSender<Command<T>>,
    stats: Arc<Stats>,
    destination: Arc<Destination>,
}

impl<T> Clone for LineSink<T> {
    fn clone(&self) -> LineSink<T> {
        LineSink {
            commands: self.commands.clone(),
            stats: self.stats.clone(),
            destination: self.destination.clone(),
        }
    }
}

impl<T: JsonLine> LineSink<T> {
    /// A sink writing to standard output (through a duplicate of its descriptor). Must be
    /// called inside a tokio runtime.
    pub fn stdout() -> Result<LineSink<T>> {
        let file = duplicate_stdout().map_err(|error| Error::io("duplicate stdout", error))?;
        Ok(LineSink::spawn(
            Destination::Stdout,
            tokio::fs::File::from_std(file),
        ))
    }

    /// A sink appending to the file at `path`, creating it and its parent folders. Fails at
    /// once (naming the path) if the file cannot be opened. Must be called inside a tokio
    /// runtime.
    pub fn file(path: &Path) -> Result<LineSink<T>> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|error| Error::io(format!("create folder {}", parent.display()), error))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| Error::io(format!("open {} for appending", path.display()), error))?;
        Ok(LineSink::spawn(
            Destination::File(path.to_path_buf()),
            tokio::fs::File::from_std(file),
        ))
    }

    fn spawn<W>(destination: Destination, writer: W) -> LineSink<T>
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (commands, receiver) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        let destination = Arc::new(destination);
        tokio::spawn(run(
            receiver,
            BufWriter::with_capacity(BUFFER_BYTES, writer),
            destination.clone(),
            stats.clone(),
        ));
        LineSink {
            commands,
            stats,
            destination,
        }
    }

    /// Queues `item` for writing without waiting. Gives it back if the sink is closed.
    pub fn send(&self, item: T) -> Result<(), T> {
        self.commands
            .send(Command::Line(item))
            .map_err(|error| match error.0 {
                Command::Line(item) => item,
                Command::Close(_) => unreachable!("a line was sent"),
            })
    }

    /// Lines written and flushed so far.
    pub fn written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }

    /// Lines lost to write errors so far.
    pub fn failed(&self) -> u64 {
        self.stats.failed.load(Ordering::Relaxed)
    }

    /// Where this sink writes.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Writes and flushes every line sent before this call, then stops the task. Lines sent
    /// afterwards (through other clones) are refused. Calling it again is harmless.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.commands.send(Command::Close(done)).is_ok() {
            // An error means the task already stopped, after its last flush.
            let _ = closed.await;
        }
    }
}

/// Standard output as a file of its own (tokio's `io-std` feature is not enabled).
fn duplicate_stdout() -> std::io::Result<std::fs::File> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        Ok(std::fs::File::from(
            std::io::stdout().as_fd().try_clone_to_owned()?,
        ))
    }
    #[cfg(windows)]
    {
        use std::os::windows::io::AsHandle;
        Ok(std::fs::File::from(
            std::io::stdout().as_handle().try_clone_to_owned()?,
        ))
    }
}

/// The writer task: renders, writes, and flushes whenever the channel runs dry.
async fn run<T, W>(
    mut commands: mpsc::UnboundedReceiver<Command<T>>,
    mut writer: BufWriter<W>,
    destination: Arc<Destination>,
    stats: Arc<Stats>,
) where
    T: JsonLine,
    W: AsyncWrite + Unpin,
{
    let mut line = Vec::with_capacity(512);
    while let Some(first) = commands.recv().await {
        let mut buffered = 0u64;
        let mut closing = None;
        let mut next = Some(first);
        let mut lines = 0usize;
        while let Some(command) = next.take() {
            match command {
                Command::Line(item) => {
                    line.clear();
                    item.write_line(&mut line);
                    line.push(b'\n');
                    match writer.write_all(&line).await {
                        Ok(()) => buffered += 1,
                        Err(error) => {
                            stats.failed.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(destination = %destination, %error, "cannot write a line");
                        }
                    }
                    lines += 1;
                }
                Command::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if lines < MAX_LINES_PER_FLUSH {
                next = commands.try_recv().ok();
            }
        }
        match writer.flush().await {
            Ok(()) => {
                stats.written.fetch_add(buffered, Ordering::Relaxed);
            }
            Err(error) => {
                stats.failed.fetch_add(buffered, Ordering::Relaxed);
                tracing::error!(destination = %destination, %error, lines = buffered, "cannot flush lines");
            }
        }
        if let Some(done) = closing {
            let _ = done.send(());
            return;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A fresh, unique folder under the system temp dir for one test.
    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = format!(
            "eddy-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(unique);
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Waits until the file at `path` holds at least `count` lines, or panics after 10 s.
    pub(crate) async fn wait_for_lines(path: &Path, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.len() >= count {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {count} lines in {}: have {lines:?}",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    struct Text(String);

    impl JsonLine for Text {
        fn write_line(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(
                serde_json::to_string(&self.0)
                    .expect("string to json")
                    .as_bytes(),
            );
        }
    }

    #[tokio::test]
    async fn lines_appear_promptly_and_close_flushes() {
        let path = temp_dir("sink").join("nested/out.jsonl");
        let sink = LineSink::<Text>::file(&path).expect("open");
        assert!(sink.send(Text("a".into())).is_ok());
        assert_eq!(wait_for_lines(&path, 1).await, vec!["\"a\""]);
        for index in 0..5000 {
            assert!(sink.send(Text(index.to_string())).is_ok());
        }
        sink.close().await;
        assert_eq!(sink.written(), 5001);
        assert_eq!(sink.failed(), 0);
        let lines = wait_for_lines(&path, 5001).await;
        assert_eq!(lines[5000], "\"4999\"");
        assert!(sink.send(Text("late".into())).is_err());
        sink.close().await; // a second close returns at once

        // Appends to an existing file.
        let again = LineSink::<Text>::file(&path).expect("reopen");
        assert!(again.send(Text("more".into())).is_ok());
        again.close().await;
        assert_eq!(wait_for_lines(&path, 5002).await[5001], "\"more\"");
        let _ = std::fs::remove_dir_all(path.parent().and_then(Path::parent).expect("dir"));
    }

    #[tokio::test]
    async fn unopenable_file_names_the_path() {
        let dir = temp_dir("sink-bad");
        std::fs::create_dir_all(&dir).expect("mkdir");
        // The path is a folder: opening it for appending fails.
        let error = LineSink::<Text>::file(&dir).err().expect("must fail");
        assert!(
            error.to_string().contains(&dir.display().to_string()),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
