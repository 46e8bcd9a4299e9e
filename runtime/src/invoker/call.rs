//! The call loop shared by the remote transports ([`super::http`], [`super::lambda`]).
//!
//! One call = one permit of the endpoint's concurrency limit, held for all attempts and
//! backoffs, then attempts until one succeeds, one fails for good, the retries run out or the
//! call budget ends:
//! - the budget (`call`) bounds the wait for the permit, every attempt and every backoff; a
//!   backoff that would end after the deadline is not slept, the call fails at once with the
//!   last attempt's reason;
//! - a [`Verdict::Retry`] failure is retried after an exponential backoff with jitter
//!   (`initial_backoff` doubling up to `max_backoff`), at most `max_attempts` attempts in all;
//! - a [`Verdict::Fatal`] failure ends the call at once;
//! - a [`Verdict::Throttled`] failure (the platform says "too many requests") is backpressure,
//!   not failure: it is retried after its own backoff with jitter, uses up none of the
//!   `max_attempts`, and the time it costs (the throttled attempt and the wait) is added to the
//!   deadline. The address's batch simply stays in flight, so its mailbox fills and its senders
//!   wait. Only shutdown ends a throttled call: once the runtime is stopping, the next throttle
//!   fails the call (its batch then goes to dead letters, where it can be replayed).
//!
//! The final failure is an [`Error::Invocation`] whose reason is fit for a dead-letter record.

use crate::address::Address;
use crate::spec::RetrySpec;
use crate::{Error, Result};
use backon::{BackoffBuilder as _, ExponentialBuilder};
use std::future::Future;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::time::{timeout_at, Instant};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Another attempt may succeed: retry within `max_attempts` and the budget.
    Retry,
    /// Another attempt will fail the same way: stop now.
    Fatal,
    /// The platform asks us to slow down: back off and retry without counting an attempt.
    Throttled,
}

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) struct Failure {
    pub verdict: Verdict,
    pub reason: String,
    /// The status of the reply, when one arrived (for logs).
    pub status: Option<u16>,
}

impl Failure {
    pub fn retry(reason: impl Into<String>) -> Failure {
        Failure {
            verdict: Verdict::Retry,
            reason: reason.into(),
            status: None,
        }
    }

    pub fn fatal(reason: impl Into<String>) -> Failure {
        Failure {
            verdict: Verdict::Fatal,
            reason: reason.into(),
            status: None,
        }
    }

    pub fn throttled(reason: impl Into<String>) -> Failure {
        Failure {
            verdict: Verdict::Throttled,
            reason: reason.into(),
            status: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Failure {
        self.status = Some(status);
        self
    }
}

/// The limits of one call.
pub(crate) struct Policy<'a> {
    /// Budget of the whole call.
    pub call: Duration,
    pub retry: &'a RetrySpec,
    /// The endpoint's concurrency limit.
    pub permits: &'a Semaphore,
    /// The number of permits and the setting that sized them, for messages (`pool_size`,
    /// `maxConcurrency`).
    pub limit: (usize, &'a str),
    /// Flips to `true` when the runtime shuts down; ends throttled calls.
    pub shutdown: Option<watch::Receiver<bool>>,
}

/// Runs `attempt` under `policy` for `target` at `location` (a URL or a Lambda function, for
/// messages).
pub(crate) async fn call<T, F, Fut>(
    policy: Policy<'_>,
    target: &Address,
    location: &str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let Policy {
        call,
        retry,
        permits,
        limit: (limit, limit_name),
        mut shutdown,
    } = policy;
    let started = Instant::now();
    let mut deadline = started
        .checked_add(call)
        .unwrap_or_else(|| started + Duration::from_secs(10 * 365 * 24 * 3600));
    let fail = |attempts: u32, reason: String| {
        tracing::warn!(
            target = %target,
            url = %location,
            attempts,
            elapsed_ms = started.elapsed().as_millis() as u64,
            reason = %reason,
            "invocation failed"
        );
        Error::Invocation {
            target: target.to_string(),
            url: location.to_string(),
            attempts,
            reason,
        }
    };

    let _permit = match timeout_at(deadline, permits.acquire()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_closed)) => return Err(fail(0, "the transport is closed".into())),
        Err(_elapsed) => {
            return Err(fail(
                0,
                format!(
                    "timed out after {call:?} (call budget) waiting for one of the {limit} call \
                     slots of the endpoint ({limit_name})"
                ),
            ))
        }
    };

    let exponential = ExponentialBuilder::default()
        .with_min_delay(retry.initial_backoff)
        .with_max_delay(retry.max_backoff)
        .with_factor(2.0)
        .with_jitter();
    let mut backoffs = exponential
        .with_max_times(retry.max_attempts.saturating_sub(1) as usize)
        .build();
    let mut throttle_backoffs = exponential.without_max_times().build();
    let mut attempts: u32 = 0;
    let mut throttles: u32 = 0;
    let mut previous: Option<String> = None;
    loop {
        attempts += 1;
        let attempt_started = Instant::now();
        tracing::debug!(target = %target, url = %location, attempt = attempts, "invoking function");
        let failure = match timeout_at(deadline, attempt()).await {
            Ok(Ok(reply)) => {
                tracing::debug!(
                    target = %target,
                    url = %location,
                    attempt = attempts,
                    "function replied"
                );
                return Ok(reply);
            }
            Ok(Err(failure)) => failure,
            Err(_elapsed) => {
                let mut reason = format!("timed out after {call:?} (call budget)");
                if let Some(previous) = previous {
                    reason.push_str("; previous attempt: ");
                    reason.push_str(&previous);
                }
                return Err(fail(attempts, reason));
            }
        };
        tracing::debug!(
            target = %target,
            url = %location,
            attempt = attempts,
            status = failure.status,
            verdict = ?failure.verdict,
            reason = %failure.reason,
            "attempt failed"
        );
        match failure.verdict {
            Verdict::Fatal => return Err(fail(attempts, failure.reason)),
            Verdict::Throttled => {
                throttles += 1;
                let delay = throttle_backoffs.next().unwrap_or(retry.max_backoff);
                if throttles == 1 {
                    tracing::warn!(
                        target = %target,
                        url = %location,
                        reason = %failure.reason,
                        "function throttled, backing off (not counted as a failure)"
                    );
                }
                let stopping = |throttles: u32| {
                    format!(
                        "{}; the runtime is shutting down, gave up after {throttles} throttled \
                         attempt(s)",
                        failure.reason
                    )
                };
                if let Some(shutdown) = shutdown.as_mut() {
                    if *shutdown.borrow() {
                        return Err(fail(attempts, stopping(throttles)));
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        // A closed channel means the runtime is gone: stop as well.
                        _ = shutdown.wait_for(|stopping| *stopping) => {
                            return Err(fail(attempts, stopping(throttles)));
                        }
                    }
                } else {
                    tokio::time::sleep(delay).await;
                }
                // Throttling is not charged to the call budget: the throttled attempt and the
                // wait after it push the deadline back.
                let spent = attempt_started.elapsed();
                deadline = deadline.checked_add(spent).unwrap_or(deadline);
                previous = Some(failure.reason);
            }
            Verdict::Retry => {
                let Some(delay) = backoffs.next() else {
                    return Err(fail(attempts, failure.reason));
                };
                let wake = Instant::now() + delay;
                if wake >= deadline {
                    return Err(fail(
                        attempts,
                        format!(
                            "{}; the call budget of {call:?} leaves no time for another attempt",
                            failure.reason
                        ),
                    ));
                }
                tokio::time::sleep_until(wake).await;
                previous = Some(failure.reason);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    /// Waits until `condition` holds, polling; panics after 10 s.
    pub(crate) async fn wait_for(mut condition: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not met within 10s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
