//! Dead letters: batches that failed after their retries, kept with their full context.
//!
//! Each failed batch becomes exactly one JSON line in the dead-letter file (default
//! `dead-letters.jsonl`), holding exactly that batch's messages in the JSON-lines message form
//! of [`crate::jsonl`], so they can be replayed through a file ingress or the HTTP ingress:
//!
//! ```text
//! {"time":"2026-11-21T20:00:00.123Z","address":"com.example/counter/alice","error":"...",
//!  "messages":[{"target":"com.example/counter/alice","caller":null,"typename":"...","value":...}]}
//! ```
//!
//! Writing never waits: lines go through the shared JSON-lines writer ([`LineSink`]), flushed
//! promptly.

use crate::address::Address;
use crate::egress::sink::{JsonLine, LineSink};
use crate::jsonl;
use crate::message::Message;
use crate::Result;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A batch that failed after its retries, with the reason.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub address: Address,
    pub messages: Vec<Message>,
    pub error: String,
    pub time: std::time::SystemTime,
}

impl JsonLine for DeadLetter {
    fn write_line(&self, out: &mut Vec<u8>) {
        // Serialising strings into a Vec cannot fail.
        out.extend_from_slice(b"{\"time\":");
        let _ = serde_json::to_writer(&mut *out, &format_rfc3339_millis(self.time));
        out.extend_from_slice(b",\"address\":");
        let _ = serde_json::to_writer(&mut *out, &self.address.to_string());
        out.extend_from_slice(b",\"error\":");
        let _ = serde_json::to_writer(&mut *out, &self.error);
        out.extend_from_slice(b",\"messages\":[");
        for (index, message) in self.messages.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            jsonl::write_message(message, out);
        }
        out.extend_from_slice(b"]}");
    }
}

/// The dead-letter file: a cheap, cloneable handle (clones share the writer).
#[derive(Clone)]
pub struct DeadLetters {
    sink: LineSink<DeadLetter>,
    path: PathBuf,
}

impl DeadLetters {
    /// Opens (creating folders and file, appending) the dead-letter file at `path`. Fails at
    /// once with [`crate::Error::Io`] naming the path. Must be called inside a tokio runtime.
    pub fn open(path: &Path) -> Result<DeadLetters> {
        Ok(DeadLetters {
            sink: LineSink::file(path)?,
            path: path.to_path_buf(),
        })
    }

    /// The dead-letter file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `letter` for writing without waiting. If the file is already closed the letter
    /// is logged (with its address and error) instead of written.
    pub fn write(&self, letter: DeadLetter) {
        if let Err(letter) = self.sink.send(letter) {
            tracing::error!(
                path = %self.path.display(),
                address = %letter.address,
                messages = letter.messages.len(),
                error = %letter.error,
                "dead letter lost: the dead-letter file is closed"
            );
        }
    }

    /// Dead letters written and flushed so far.
    pub fn count(&self) -> u64 {
        self.sink.written()
    }

    /// Dead letters lost to write errors so far (each was logged with the path).
    pub fn failed(&self) -> u64 {
        self.sink.failed()
    }

    /// Writes and flushes every letter queued so far, then closes the file (for all clones).
    pub async fn shutdown(self) {
        self.sink.close().await;
    }
}

/// `time` as RFC 3339 in UTC with milliseconds, e.g. `2026-11-21T20:00:00.123Z` (times before
/// 1970 are written as the epoch).
pub fn format_rfc3339_millis(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let millis = since_epoch.subsec_millis();
    let days = (seconds / 86_400) as i64;
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// The proleptic Gregorian date (year, month 1-12, day 1-31) of `days` since 1970-01-01
/// (Howard Hinnant's civil-from-days, shifted to years starting in March).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11], 0 = March
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::sink::tests::{temp_dir, wait_for_lines};
    use crate::message::Argument;
    use eddy_protocol::BuiltIn;
    use serde_json::{json, Value};
    use std::time::Duration;

    fn at(seconds: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis)
    }

    #[test]
    fn formats_rfc3339_utc_with_millis() {
        assert_eq!(format_rfc3339_millis(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_millis(at(951_782_400, 5)),
            "2000-02-29T00:00:00.005Z"
        );
        assert_eq!(
            format_rfc3339_millis(at(1_700_000_000, 123)),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            format_rfc3339_millis(at(4_107_542_399, 999)),
            "2100-02-28T23:59:59.999Z"
        );
        assert_eq!(
            format_rfc3339_millis(at(4_107_542_400, 0)),
            "2100-03-01T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339_millis(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn civil_from_days_matches_a_day_by_day_walk() {
        let month_lengths = |year: i64| {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ]
        };
        let (mut year, mut month, mut day) = (1970i64, 1u32, 1u32);
        for days in 0..(200 * 366) {
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
            day += 1;
            if day > month_lengths(year)[month as usize - 1] {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
    }

    #[tokio::test]
    async fn writes_one_line_per_letter_that_replays() {
        let dir = temp_dir("deadletters");
        let path = dir.join("sub/dead-letters.jsonl");
        let letters = DeadLetters::open(&path).expect("open");
        let address = Address::parse("com.example/counter/alice").expect("address");
        let messages = vec![
            Message {
                target: address.clone(),
                caller: None,
                argument: BuiltIn::String("hello".into()).into(),
            },
            Message {
                target: address.clone(),
                caller: Some(Address::parse("com.example/other/bob").expect("address")),
                argument: Argument::new("com.example/Blob", vec![1, 2, 3]),
            },
        ];
        letters.write(DeadLetter {
            address: address.clone(),
            messages: messages.clone(),
            error: "invocation failed: \"boom\"\nsecond line".into(),
            time: at(1_700_000_000, 123),
        });
        let lines = wait_for_lines(&path, 1).await;
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with(
                r#"{"time":"2023-11-14T22:13:20.123Z","address":"com.example/counter/alice","error":"#
            ),
            "{}",
            lines[0]
        );
        let parsed: Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(
            parsed["error"],
            json!("invocation failed: \"boom\"\nsecond line")
        );
        assert_eq!(
            parsed["messages"][0],
            json!({"target": "com.example/counter/alice", "caller": null,
                   "typename": "io.statefun.types/string", "value": "hello"})
        );
        // Each message replays through the JSON-lines reader unchanged.
        let replayed: Vec<Message> = parsed["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|message| jsonl::parse_message_line(&message.to_string()).expect("replay"))
            .collect();
        assert_eq!(replayed, messages);

        let clone = letters.clone();
        letters.write(DeadLetter {
            address: address.clone(),
            messages: Vec::new(),
            error: "second".into(),
            time: at(0, 0),
        });
        letters.shutdown().await;
        assert_eq!(clone.count(), 2);
        assert_eq!(wait_for_lines(&path, 2).await.len(), 2);
        // Closed: the letter is logged, not written, and nothing panics.
        clone.write(DeadLetter {
            address,
            messages: Vec::new(),
            error: "late".into(),
            time: at(0, 0),
        });
        assert_eq!(clone.count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn open_fails_naming_the_path() {
        let dir = temp_dir("deadletters-bad");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let blocker = dir.join("file");
        std::fs::write(&blocker, b"x").expect("write");
        // A folder cannot be created below a file.
        let path = blocker.join("dead-letters.jsonl");
        let error = DeadLetters::open(&path).err().expect("must fail");
        assert!(matches!(error, crate::Error::Io { .. }));
        assert!(
            error.to_string().contains(&blocker.display().to_string()),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
